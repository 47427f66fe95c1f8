"""Evaluating unsupervised landmarks by the standard protocol (``book/ch03-fse``; Thewlis
et al., ICCV 2017, Sec. 4).

Unsupervised landmarks have no names, so they cannot be compared with annotations
directly. The protocol fits a *linear regressor without bias* from the ``K`` learned
landmarks to the ``L`` annotated ones on a training split, then measures the regressed
points on a separate test split, as the mean point-to-point error divided by the
inter-ocular distance (NME, in % of it).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .. import checks
from ..metrics import nme as _nme

__all__ = ["fit_regressor", "apply_regressor", "regression_nme", "inter_ocular"]


def _as_np(x, name: str, allow_nan: bool = False) -> np.ndarray:
    """Landmarks ``(N, K, 2)`` as float64 (:func:`kpedu.checks.points`); NaN, a missing
    prediction, only where ``allow_nan``."""
    return checks.points(x, name, ndim=3, allow_nan=allow_nan, backend="numpy", shape_text="(N, K, 2)")


def _missing(x: np.ndarray) -> np.ndarray:
    """``(N,)``: True for the images with at least one missing (NaN) landmark."""
    return np.isnan(x).any(axis=(1, 2))


def _per_image_nme(pred: np.ndarray, gt: np.ndarray, iod: np.ndarray, what: str) -> np.ndarray:
    """Per-image NME (a fraction of the inter-ocular distance): ``inf`` for an image with a
    missing (NaN) prediction, with a ``RuntimeWarning`` saying how many (a missing
    prediction is a miss, never dropped)."""
    lost = _missing(pred)
    out = np.full(len(pred), np.inf)
    if lost.any():
        warnings.warn(f"regression_nme: {int(lost.sum())} of {len(pred)} {what} images have a missing (NaN) learned "
                      "landmark; their error counts as infinite", RuntimeWarning, stacklevel=3)
    if (~lost).any():
        out[~lost] = _nme(pred[~lost], gt[~lost], iod[~lost], reduce="none")
    return out


def fit_regressor(learned, annotated, ridge: float = 0.0) -> np.ndarray:
    """Least-squares linear map (no bias) from learned to annotated landmarks.

    Args:
        learned: ``(N, K, 2)`` learned landmarks (pixels).
        annotated: ``(N, L, 2)`` annotated landmarks of the same images.
        ridge: optional Tikhonov weight (0: plain least squares, the protocol).

    An image with a missing (NaN) learned landmark cannot be used for the fit: it is left
    out, with a ``RuntimeWarning`` saying how many were.

    Returns:
        ``R`` ``(2K, 2L)`` with ``annotated.reshape(N, 2L) ~ learned.reshape(N, 2K) @ R``.
        Without a bias, a regressed point is a weighted sum of learned coordinates, which
        is translation-equivariant when each output's weights sum to one.
    """
    x, y = _as_np(learned, "learned", allow_nan=True), _as_np(annotated, "annotated")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"learned and annotated need the same number of images, got {x.shape[0]} and {y.shape[0]}")
    ridge = checks.number(ridge, "ridge", minimum=0)
    n, k = x.shape[:2]
    lost = _missing(x)
    if lost.any():
        if n - lost.sum() >= 2 * k:
            warnings.warn(f"fit_regressor: {int(lost.sum())} of {n} images have a missing (NaN) learned landmark "
                          "and are left out of the fit", RuntimeWarning, stacklevel=2)
        x, y = x[~lost], y[~lost]
    if len(x) < 2 * k:
        missing = f" ({int(lost.sum())} of {n} have a NaN, missing, learned landmark)" if lost.any() else ""
        raise ValueError(f"need at least 2K = {2 * k} training images to fit the regressor, got {len(x)} usable"
                         f"{missing}")
    n = len(x)
    a = x.reshape(n, -1)
    b = y.reshape(n, -1)
    if ridge > 0:
        return np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ b)
    return np.linalg.lstsq(a, b, rcond=None)[0]


def apply_regressor(learned, regressor: np.ndarray) -> np.ndarray:
    """Regressed landmarks ``(N, L, 2)`` from learned ones ``(N, K, 2)`` and ``R`` ``(2K, 2L)``.

    An image with a missing (NaN) learned landmark gets missing (NaN) regressed landmarks."""
    x = _as_np(learned, "learned", allow_nan=True)
    r = checks.as_array(regressor, "regressor")
    if not np.isfinite(r).all():
        raise ValueError(f"regressor must be finite, got {'NaN' if np.isnan(r).any() else 'inf'}")
    if r.ndim != 2 or r.shape[0] != x.shape[1] * 2 or r.shape[1] % 2:
        raise ValueError(f"regressor must have shape (2K, 2L) = ({2 * x.shape[1]}, 2L), got {r.shape}")
    lost = _missing(x)
    if not lost.any():
        return (x.reshape(x.shape[0], -1) @ r).reshape(x.shape[0], -1, 2)
    out = np.full((x.shape[0], r.shape[1]), np.nan)
    out[~lost] = x[~lost].reshape(int((~lost).sum()), -1) @ r
    return out.reshape(x.shape[0], -1, 2)


def inter_ocular(annotated, eyes: Sequence[int] = (0, 1)) -> np.ndarray:
    """Distance between the two eye landmarks ``(N,)`` (MAFL: eye centres, indices 0 and 1)."""
    y = _as_np(annotated, "annotated")
    i, j = _eyes(eyes, y.shape[1])
    return np.linalg.norm(y[:, i] - y[:, j], axis=-1)


def _eyes(eyes, num_landmarks: int) -> tuple[int, int]:
    """Two different landmark indices (negative ones count from the end)."""
    if isinstance(eyes, (str, bytes)) or not hasattr(eyes, "__len__") or len(eyes) != 2:
        raise TypeError(f"eyes must be a pair of landmark indices such as (0, 1), got {checks.describe(eyes)}")
    i, j = (checks.index(e, num_landmarks, f"eyes[{n}]") for n, e in enumerate(eyes))
    if i == j:
        raise ValueError(f"eyes must be two different landmarks, got {tuple(eyes)}")
    return i, j


def regression_nme(train_learned, train_annotated, test_learned, test_annotated, eyes: Sequence[int] = (0, 1),
                   ridge: float = 0.0, scale=None) -> dict:
    """The protocol end to end: fit on the training split, NME on the test split.

    Returns a dict with ``nme`` (mean, % of inter-ocular distance), ``per_image`` (``(N,)``
    %), ``per_point`` (``(L,)`` %), ``train_nme`` (%, on the fitting split),
    ``regressor`` ``(2K, 2L)`` and ``predictions`` ``(N, L, 2)``.

    A missing (NaN) learned landmark is a miss, as in :func:`kpedu.metrics.nme`: that
    image's regressed points are NaN, its error is infinite (so is the mean) and a
    ``RuntimeWarning`` says how many images this hit. Training images with a missing
    landmark are left out of the fit (:func:`fit_regressor`).

    ``scale``, a pair ``(train_scale, test_scale)`` of per-image lengths ``(N,)`` and
    ``(M,)``, replaces the inter-ocular distance as the normaliser (the Transporter chapter
    divides by the person's standing height); ``eyes`` is then unused and the errors are
    in % of that length.
    """
    tr_l = _as_np(train_learned, "train_learned", allow_nan=True)
    tr_gt = _as_np(train_annotated, "train_annotated")
    te_l = _as_np(test_learned, "test_learned", allow_nan=True)
    gt = _as_np(test_annotated, "test_annotated")
    for what, a, b in (("train", tr_l, tr_gt), ("test", te_l, gt)):
        if len(a) != len(b):
            raise ValueError(f"{what}_learned and {what}_annotated need the same number of images, got {len(a)} "
                             f"and {len(b)}")
    _eyes(eyes, gt.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, as infinite training errors
        r = fit_regressor(tr_l, tr_gt, ridge)
    pred = apply_regressor(te_l, r)
    if pred.shape != gt.shape:
        raise ValueError(f"test sets disagree: {pred.shape} regressed against {gt.shape} annotated")
    if scale is None:
        iod, tr_iod = inter_ocular(gt, eyes), inter_ocular(tr_gt, eyes)
    else:
        if isinstance(scale, (str, bytes)) or not hasattr(scale, "__len__") or len(scale) != 2:
            raise TypeError(f"scale must be a pair (train_scale, test_scale), got {checks.describe(scale)}")
        tr_iod, iod = (checks.as_array(v, f"scale[{i}]").astype(np.float64).reshape(-1) for i, v in enumerate(scale))
        for what, v, n in (("scale[0] (train)", tr_iod, len(tr_gt)), ("scale[1] (test)", iod, len(gt))):
            if v.shape != (n,):
                raise ValueError(f"{what} must hold one length per image, {n}, got {v.shape[0]}")
            if not (np.isfinite(v).all() and (v > 0).all()):
                raise ValueError(f"{what} must be finite and > 0")
    per_image = _per_image_nme(pred, gt, iod, "test") * 100
    with np.errstate(invalid="ignore"):
        dist = np.where(_missing(pred)[:, None], np.inf, np.linalg.norm(pred - gt, axis=-1))
    per_point = (dist / iod[:, None]).mean(0) * 100
    train = np.nanmean(_per_image_nme(apply_regressor(tr_l, r), tr_gt, tr_iod, "training")) * 100
    return {"nme": float(per_image.mean()), "per_image": per_image, "per_point": per_point,
            "train_nme": float(train), "regressor": r, "predictions": pred}
