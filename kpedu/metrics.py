"""Keypoint metrics: PCK (torso, head and box normalisers), NME, OKS, COCO AP.

Foundations chapter (``book/ch00-foundations/04-metrics``); used by every chapter.

Coordinates are ``(N, K, 2)`` ``(x, y)`` pixels, visibility ``(N, K)`` with COCO flags
(``> 0`` means the keypoint is labelled and is evaluated). Average precision is computed
by pycocotools' ``COCOeval`` on COCO-format files, never by our own AP code.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = [
    "PCKResult",
    "pck",
    "pck_curve",
    "torso_size",
    "bbox_size",
    "nme",
    "oks",
    "coco_evaluate",
    "keypoint_ap",
    "COCO_STATS",
    "match_indices",
    "reprojection_errors",
    "mma",
]

COCO_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _np(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be array-like of numbers") from None


def _check_points(pred, gt, visible):
    pred, gt = _np(pred, "pred"), _np(gt, "gt")
    if gt.ndim == 2:
        pred, gt = pred[None], gt[None]
        visible = None if visible is None else _np(visible, "visible")[None]
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"gt must have shape (N, K, 2), got {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must have the same shape")
    vis = np.ones(gt.shape[:2], bool) if visible is None else _np(visible, "visible") > 0
    if vis.shape != gt.shape[:2]:
        raise ValueError(f"visible must have shape {gt.shape[:2]}, got {vis.shape}")
    if np.isnan(gt[vis]).any():
        raise ValueError("gt has NaN at a keypoint marked visible")
    return pred, gt, vis


def torso_size(gt, visible=None, skeleton=None) -> np.ndarray:
    """Torso size per person: distance from the left shoulder to the right hip (the
    FLIC convention), falling back to right shoulder to left hip; NaN where neither
    diagonal is labelled. ``gt`` is ``(N, K, 2)`` in a skeleton with named shoulders
    and hips (default COCO-17)."""
    gt = _np(gt, "gt")
    if gt.ndim == 2:
        gt = gt[None]
    vis = np.ones(gt.shape[:2], bool) if visible is None else _np(visible, "visible").reshape(gt.shape[:2]) > 0
    if skeleton is None:
        from .data import COCO17 as skeleton
    ls, rs, lh, rh = (skeleton.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    d1 = np.linalg.norm(gt[:, ls] - gt[:, rh], axis=-1)
    d2 = np.linalg.norm(gt[:, rs] - gt[:, lh], axis=-1)
    ok1 = vis[:, ls] & vis[:, rh]
    ok2 = vis[:, rs] & vis[:, lh]
    return np.where(ok1, d1, np.where(ok2, d2, np.nan))


def bbox_size(gt, visible=None) -> np.ndarray:
    """Longer side of the box around each person's labelled keypoints (NaN if fewer than
    two are labelled)."""
    gt = _np(gt, "gt")
    if gt.ndim == 2:
        gt = gt[None]
    vis = np.ones(gt.shape[:2], bool) if visible is None else _np(visible, "visible").reshape(gt.shape[:2]) > 0
    out = np.full(gt.shape[0], np.nan)
    for i in range(gt.shape[0]):
        p = gt[i, vis[i]]
        if len(p) >= 2:
            out[i] = (p.max(0) - p.min(0)).max()
    return out


@dataclass
class PCKResult:
    """PCK at one threshold: ``per_joint`` (K,) (NaN for joints never evaluated),
    ``mean`` over all evaluated keypoints, ``correct`` (N, K) and ``evaluated`` (N, K)."""

    threshold: float
    per_joint: np.ndarray
    mean: float
    correct: np.ndarray = field(repr=False)
    evaluated: np.ndarray = field(repr=False)

    def table(self, names: Sequence[str] | None = None) -> str:
        """A small text table of per-joint PCK."""
        names = names or [f"kp{i}" for i in range(len(self.per_joint))]
        width = max(len(n) for n in names)
        lines = [f"{'joint':<{width}}  PCK@{self.threshold:g}"]
        lines += [f"{n:<{width}}  {v:6.3f}" for n, v in zip(names, self.per_joint)]
        lines.append(f"{'mean':<{width}}  {self.mean:6.3f}")
        return "\n".join(lines)


def _normalizer(normalizer, gt, vis) -> np.ndarray:
    if isinstance(normalizer, str):
        if normalizer == "torso":
            return torso_size(gt, vis)
        if normalizer == "bbox":
            return bbox_size(gt, vis)
        if normalizer == "head":
            raise ValueError(
                "normalizer='head' needs the head sizes: pass them as an array (N,), "
                "e.g. the head_sizes of kpedu's synthetic people (PCKh)"
            )
        raise ValueError(f"normalizer must be 'torso', 'bbox' or an array (N,), got {normalizer!r}")
    norm = _np(normalizer, "normalizer").reshape(-1)
    if norm.size == 1:
        norm = np.full(gt.shape[0], float(norm[0]))
    if norm.shape != (gt.shape[0],):
        raise ValueError(f"normalizer must have one value per person ({gt.shape[0]}), got {norm.shape}")
    if (norm[np.isfinite(norm)] <= 0).any():
        raise ValueError("normalizer values must be positive")
    return norm


def pck(pred, gt, visible=None, normalizer="torso", threshold: float = 0.2) -> PCKResult:
    """Percentage of correct keypoints (Foundations; Stacked Hourglass evaluation).

    A labelled keypoint is correct when ``||pred - gt|| <= threshold * normalizer`` of
    its person. ``normalizer`` is ``"torso"`` (FLIC), ``"bbox"``, or an array of
    per-person lengths, e.g. head sizes for PCKh (MPII uses ``threshold=0.5``).
    People whose normaliser is undefined (NaN) are left out.
    """
    pred, gt, vis = _check_points(pred, gt, visible)
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    norm = _normalizer(normalizer, gt, vis)
    evaluated = vis & np.isfinite(norm)[:, None]
    dist = np.linalg.norm(pred - gt, axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)  # a NaN prediction is a miss
    with np.errstate(invalid="ignore"):
        correct = (dist <= threshold * norm[:, None]) & evaluated
    counts = evaluated.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(counts > 0, correct.sum(0) / np.maximum(counts, 1), np.nan)
    total = evaluated.sum()
    mean = float(correct.sum() / total) if total else float("nan")
    return PCKResult(float(threshold), per_joint, mean, correct, evaluated)


def pck_curve(pred, gt, visible=None, normalizer="torso", thresholds=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean PCK at each threshold; returns ``(thresholds, values)``."""
    thresholds = np.linspace(0.01, 0.5, 50) if thresholds is None else np.asarray(thresholds, float)
    values = np.array([pck(pred, gt, visible, normalizer, float(t)).mean for t in thresholds])
    return thresholds, values


def nme(pred, gt, normalizer, visible=None, reduce: str = "mean"):
    """Normalised mean error: per person, the mean keypoint distance divided by the
    person's normaliser (e.g. the inter-ocular distance for faces); ``reduce="mean"``
    averages over people, ``"none"`` returns the per-person values."""
    pred, gt, vis = _check_points(pred, gt, visible)
    norm = _normalizer(normalizer, gt, vis)
    dist = np.linalg.norm(pred - gt, axis=-1)
    counts = vis.sum(1)
    if (counts == 0).any():
        raise ValueError("every person needs at least one labelled keypoint for NME")
    per_person = np.where(vis, dist, 0).sum(1) / counts / norm
    if reduce == "none":
        return per_person
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    return float(np.nanmean(per_person))


def oks(pred, gt, visible, areas, sigmas=None) -> np.ndarray:
    """Object keypoint similarity of each prediction with its ground truth (COCO).

    ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) [v_i > 0] / sum_i [v_i > 0]`` with
    ``s^2`` the object's area and ``k_i = 2 sigma_i``, exactly as pycocotools computes
    it for a matched pair. ``pred``/``gt`` ``(N, K, 2)``, ``areas`` ``(N,)``; returns
    ``(N,)`` (NaN for a person with no labelled keypoint).
    """
    pred, gt, vis = _check_points(pred, gt, visible)
    areas = _np(areas, "areas").reshape(-1)
    if areas.shape != (gt.shape[0],):
        raise ValueError(f"areas must have shape ({gt.shape[0]},), got {areas.shape}")
    if sigmas is None:
        from .data import COCO17

        sigmas = COCO17.sigmas
    sigmas = _np(sigmas, "sigmas")
    if sigmas.shape != (gt.shape[1],):
        raise ValueError(f"sigmas must have one value per keypoint ({gt.shape[1]}), got {sigmas.shape}")
    var = (2 * sigmas) ** 2
    d2 = ((pred - gt) ** 2).sum(-1)
    e = d2 / var / (areas[:, None] + np.spacing(1)) / 2
    counts = vis.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (np.exp(-e) * vis).sum(1) / counts, np.nan)


def coco_evaluate(gt: dict, results: list[dict], sigmas=None, verbose: bool = False) -> dict[str, float]:
    """COCO keypoint AP/AR with pycocotools (OKS thresholds 0.50:0.05:0.95).

    ``gt`` is a COCO keypoints dictionary (``kpedu.data.to_coco``), ``results`` a list
    of ``{"image_id", "category_id", "keypoints", "score"}`` (``kpedu.data.results_to_coco``).
    ``sigmas`` overrides the COCO-17 per-keypoint constants for other skeletons.
    Returns the ten standard numbers (``COCO_STATS``); no results gives zeros.
    """
    from pycocotools.cocoeval import COCOeval

    from .data.coco import as_pycocotools

    if not isinstance(gt, dict) or "annotations" not in gt or "images" not in gt:
        raise ValueError("gt must be a COCO dictionary with 'images' and 'annotations'")
    if not isinstance(results, list):
        raise TypeError("results must be a list of COCO result dictionaries")
    if not results:
        return {k: 0.0 for k in COCO_STATS}
    coco_gt = as_pycocotools(gt)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if verbose:
        print(sink.getvalue())
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}


def keypoint_ap(gt_keypoints, gt_visible, gt_areas, pred_keypoints, pred_scores, keypoint_scores=None,
                image_size=(256, 256), sigmas=None) -> dict[str, float]:
    """COCO AP from arrays, one entry per image (convenience over :func:`coco_evaluate`).

    Each argument is a list over images: ``gt_keypoints[i]`` ``(N_i, K, 2)``,
    ``gt_visible[i]`` ``(N_i, K)``, ``gt_areas[i]`` ``(N_i,)``, ``pred_keypoints[i]``
    ``(M_i, K, 2)``, ``pred_scores[i]`` ``(M_i,)`` and optionally
    ``keypoint_scores[i]`` ``(M_i, K)``. Single-person evaluation is the case
    ``N_i = M_i = 1``.
    """
    from .data.coco import results_to_coco, to_coco

    n = len(gt_keypoints)
    if not (len(gt_visible) == len(gt_areas) == len(pred_keypoints) == len(pred_scores) == n):
        raise ValueError("all per-image lists must have the same length")
    h, w = (image_size, image_size) if np.isscalar(image_size) else image_size
    gt = to_coco([{"keypoints": _np(k, "gt_keypoints"), "visible": np.asarray(_np(v, "gt_visible"), dtype=np.int64),
                   "areas": _np(a, "gt_areas"), "height": h, "width": w}
                  for k, v, a in zip(gt_keypoints, gt_visible, gt_areas)])
    results = []
    for i in range(n):
        kp = _np(pred_keypoints[i], "pred_keypoints")
        if kp.size == 0:
            continue
        ks = np.ones(kp.shape[:2]) if keypoint_scores is None else _np(keypoint_scores[i], "keypoint_scores")
        results += results_to_coco(gt["images"][i]["id"], kp, ks, _np(pred_scores[i], "pred_scores"))
    return coco_evaluate(gt, results, sigmas=sigmas)


# --- mma: matching accuracy of local features (D2-Net chapter) -------------------------


def match_indices(matches, n1: int, n2: int) -> np.ndarray:
    """``matches`` as a validated ``(P, 2)`` integer array of index pairs into ``n1`` and
    ``n2`` keypoints (numpy or torch; an empty input gives ``(0, 2)``). D2-Net chapter."""
    if hasattr(matches, "detach"):
        matches = matches.detach().cpu().numpy()
    m = np.asarray(matches)
    if m.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if m.ndim != 2 or m.shape[1] != 2:
        raise ValueError(f"matches must have shape (P, 2), got {m.shape}")
    if not np.issubdtype(m.dtype, np.integer):
        raise TypeError(f"matches must hold integer indices, got dtype {m.dtype}")
    if m.min() < 0 or m[:, 0].max() >= n1 or m[:, 1].max() >= n2:
        raise ValueError(f"match indices out of range for {n1} and {n2} keypoints")
    return m


def reprojection_errors(kp1, kp2, matches, H) -> np.ndarray:
    """Reprojection error of each match under a homography (D2-Net chapter).

    ``kp1`` ``(N1, 2)`` and ``kp2`` ``(N2, 2)`` are ``(x, y)`` keypoints (pixel centres at
    integers), ``matches`` ``(P, 2)`` integer index pairs ``(i, j)`` and ``H`` the 3x3
    homography from image 1 to image 2. Returns ``(P,)`` float64
    ``||H kp1[i] - kp2[j]||`` (``inf`` where ``H`` sends a point to infinity).
    """
    from .data.pairs import apply_homography

    p1, p2 = _np(kp1, "kp1"), _np(kp2, "kp2")
    for name, p in (("kp1", p1), ("kp2", p2)):
        if not (p.ndim == 2 and p.shape[1] == 2) and p.size:
            raise ValueError(f"{name} must have shape (N, 2), got {p.shape}")
    p1, p2 = p1.reshape(-1, 2), p2.reshape(-1, 2)
    m = match_indices(matches, len(p1), len(p2))
    if m.size == 0:
        return np.zeros(0, dtype=np.float64)
    Hm = _np(H, "H")
    if Hm.shape != (3, 3):
        raise ValueError(f"H must be 3x3, got {Hm.shape}")
    projected = apply_homography(Hm, p1[m[:, 0]])
    return np.linalg.norm(projected - p2[m[:, 1]], axis=-1)


def mma(errors_per_pair: Sequence, thresholds=range(1, 11)) -> np.ndarray:
    """Mean matching accuracy (D2-Net chapter; the HPatches protocol of the D2-Net paper).

    ``errors_per_pair`` is a list with one array of match errors (pixels) per image pair.
    For each threshold ``t``, a pair's accuracy is the fraction of its matches with
    error ``<= t``, and MMA is the mean over pairs. A pair with no match has accuracy 0;
    a NaN error counts as a wrong match (drop matches without ground truth first).
    Returns ``(len(thresholds),)`` float64.
    """
    if isinstance(errors_per_pair, np.ndarray) or not isinstance(errors_per_pair, Sequence):
        raise TypeError("errors_per_pair must be a list with one error array per pair")
    if len(errors_per_pair) == 0:
        raise ValueError("errors_per_pair must hold at least one pair")
    try:
        t = np.asarray(list(thresholds), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("thresholds must be an iterable of numbers") from None
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"thresholds must be a non-empty 1-D sequence of finite values >= 0, got {t}")
    acc = np.zeros((len(errors_per_pair), t.size))
    for k, e in enumerate(errors_per_pair):
        e = _np(e, f"errors_per_pair[{k}]").reshape(-1)
        if (e < 0).any():
            raise ValueError(f"errors_per_pair[{k}] has negative errors")
        if e.size:
            with np.errstate(invalid="ignore"):
                acc[k] = (e[:, None] <= t[None, :]).mean(0)
    return acc.mean(0)
