"""Evaluating unsupervised landmarks by the standard protocol (``book/ch03-fse``; Thewlis
et al., ICCV 2017, Sec. 4; the note's BEYOND point on evaluation).

Unsupervised landmarks have no names, so they cannot be compared with annotations
directly. The protocol fits a *linear regressor without bias* from the ``K`` learned
landmarks to the ``L`` annotated ones on a training split, then measures the regressed
points on a separate test split, as the mean point-to-point error divided by the
inter-ocular distance (NME, in % of it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..metrics import nme as _nme

__all__ = ["fit_regressor", "apply_regressor", "regression_nme", "inter_ocular"]


def _as_np(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (N, K, 2), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def fit_regressor(learned, annotated, ridge: float = 0.0) -> np.ndarray:
    """Least-squares linear map (no bias) from learned to annotated landmarks.

    Args:
        learned: ``(N, K, 2)`` learned landmarks (pixels).
        annotated: ``(N, L, 2)`` annotated landmarks of the same images.
        ridge: optional Tikhonov weight (0: plain least squares, the protocol).

    Returns:
        ``R`` ``(2K, 2L)`` with ``annotated.reshape(N, 2L) ~ learned.reshape(N, 2K) @ R``.
        Without a bias, a regressed point is a weighted sum of learned coordinates, which
        is translation-equivariant when each output's weights sum to one.
    """
    x, y = _as_np(learned, "learned"), _as_np(annotated, "annotated")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"learned and annotated need the same number of images, got {x.shape[0]} and {y.shape[0]}")
    n, k = x.shape[:2]
    if n < 2 * k:
        raise ValueError(f"need at least 2K = {2 * k} training images to fit the regressor, got {n}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    a = x.reshape(n, -1)
    b = y.reshape(n, -1)
    if ridge > 0:
        return np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ b)
    return np.linalg.lstsq(a, b, rcond=None)[0]


def apply_regressor(learned, regressor: np.ndarray) -> np.ndarray:
    """Regressed landmarks ``(N, L, 2)`` from learned ones ``(N, K, 2)`` and ``R`` ``(2K, 2L)``."""
    x = _as_np(learned, "learned")
    r = np.asarray(regressor, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != x.shape[1] * 2 or r.shape[1] % 2:
        raise ValueError(f"regressor must have shape (2K, 2L) = ({2 * x.shape[1]}, 2L), got {r.shape}")
    return (x.reshape(x.shape[0], -1) @ r).reshape(x.shape[0], -1, 2)


def inter_ocular(annotated, eyes: Sequence[int] = (0, 1)) -> np.ndarray:
    """Distance between the two eye landmarks ``(N,)`` (MAFL: eye centres, indices 0 and 1)."""
    y = _as_np(annotated, "annotated")
    i, j = (int(e) for e in eyes)
    return np.linalg.norm(y[:, i] - y[:, j], axis=-1)


def regression_nme(train_learned, train_annotated, test_learned, test_annotated, eyes: Sequence[int] = (0, 1),
                   ridge: float = 0.0) -> dict:
    """The protocol end to end: fit on the training split, NME on the test split.

    Returns a dict with ``nme`` (mean, % of inter-ocular distance), ``per_image`` (``(N,)``
    %), ``per_point`` (``(L,)`` %), ``train_nme`` (%, on the fitting split),
    ``regressor`` ``(2K, 2L)`` and ``predictions`` ``(N, L, 2)``.
    """
    r = fit_regressor(train_learned, train_annotated, ridge)
    pred = apply_regressor(test_learned, r)
    gt = _as_np(test_annotated, "test_annotated")
    if pred.shape != gt.shape:
        raise ValueError(f"test sets disagree: {pred.shape} regressed against {gt.shape} annotated")
    iod = inter_ocular(gt, eyes)
    per_image = _nme(pred, gt, iod, reduce="none") * 100
    per_point = (np.linalg.norm(pred - gt, axis=-1) / iod[:, None]).mean(0) * 100
    tr_gt = _as_np(train_annotated, "train_annotated")
    train = _nme(apply_regressor(train_learned, r), tr_gt, inter_ocular(tr_gt, eyes)) * 100
    return {"nme": float(per_image.mean()), "per_image": per_image, "per_point": per_point,
            "train_nme": float(train), "regressor": r, "predictions": pred}
