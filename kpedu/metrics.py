"""Keypoint metrics: PCK (torso, head and box normalisers), NME, OKS, COCO AP.

Foundations chapter (``book/ch00-foundations/04-metrics``); used by every chapter.

Coordinates are ``(N, K, 2)`` ``(x, y)`` pixels, visibility ``(N, K)`` with COCO flags
(``> 0`` means the keypoint is labelled and is evaluated). Average precision is computed
by pycocotools' ``COCOeval`` on COCO-format files, never by our own AP code.

Arguments are checked where they come in (:mod:`kpedu.checks`, ``book/notation.md``):
integer coordinates are converted to float, never rounded; complex, boolean and text
coordinates are a ``TypeError``; ``inf`` anywhere and ``NaN`` at a labelled ground-truth
keypoint are a ``ValueError``; areas, sigmas, normalisers and thresholds are finite and
positive (areas may be 0).

**A NaN prediction is a miss in every metric**, never dropped and never an error:

* PCK: the keypoint is not correct;
* NME: the sample's error is ``inf``, so the mean NME of a set with a missing prediction is
  ``inf``, and a ``RuntimeWarning`` says how many samples had missing predictions;
* OKS: the keypoint contributes similarity 0;
* AP (:func:`keypoint_ap`, :func:`coco_evaluate`): the keypoint is written far outside the
  image (so its OKS term is exactly 0) and the detection's box and area are those of its
  other keypoints;
* matching (:func:`reprojection_errors`, :func:`mma`): the match has error ``inf`` and is
  never correct.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import checks

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

#: Where :func:`coco_evaluate` writes a missing (NaN) predicted keypoint: far enough from
#: any image that its OKS term ``exp(-d^2 / (2 s^2 k^2))`` is exactly 0.
MISSING_XY = -1e8


def _ground_truth(gt, name: str = "gt", visible=None, vname: str = "visible"):
    """``gt`` as float64 ``(N, K, 2)`` (a ``(K, 2)`` person becomes ``N = 1``) and the
    labelled mask ``(N, K)``; NaN is allowed only where the keypoint is not labelled."""
    g = checks.points(gt, name, ndim=(2, 3), backend="numpy")
    if g.ndim == 2:
        g = g[None]
    vis = checks.visibility(visible, vname, g.shape[:2], backend="numpy")
    if np.isnan(g[vis]).any():
        raise ValueError(f"{name} has NaN at a keypoint marked visible (NaN is only allowed where {vname} is 0)")
    return g, vis


def _check_points(pred, gt, visible):
    g = checks.points(gt, "gt", ndim=(2, 3), backend="numpy")
    single = g.ndim == 2
    g, vis = _ground_truth(g, "gt", visible)
    p = checks.points(pred, "pred", ndim=(2, 3), backend="numpy")  # NaN: a missing prediction
    if p.ndim == 2 and single:
        p = p[None]
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {p.shape} and gt {g.shape}")
    return p, g, vis


def _values(x, name: str, length: int, what: str, *, allow_zero: bool) -> np.ndarray:
    """Per-person or per-keypoint values (areas, sigmas): ``(length,)`` finite, ``> 0``
    (``>= 0`` with ``allow_zero``)."""
    a = checks.as_array(x, name).reshape(-1)
    if a.shape != (length,):
        raise ValueError(f"{name} must have {what} ({length}), got shape {np.shape(x)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {a[~np.isfinite(a)][0]}")
    bad = a < 0 if allow_zero else a <= 0
    if bad.any():
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {a[bad][0]!r}")
    return a


def torso_size(gt, visible=None, skeleton=None) -> np.ndarray:
    """Torso size per person: distance from the left shoulder to the right hip (the
    FLIC convention), falling back to right shoulder to left hip; NaN where neither
    diagonal is labelled. ``gt`` is ``(N, K, 2)`` in a skeleton with named shoulders
    and hips (default COCO-17)."""
    gt, vis = _ground_truth(gt, "gt", visible)
    if skeleton is None:
        from .data import COCO17 as skeleton
    ls, rs, lh, rh = (skeleton.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    if gt.shape[1] != skeleton.num_keypoints:
        raise ValueError(f"gt must have the skeleton's {skeleton.num_keypoints} keypoints ({skeleton.name}), "
                         f"got shape {gt.shape}")
    d1 = np.linalg.norm(gt[:, ls] - gt[:, rh], axis=-1)
    d2 = np.linalg.norm(gt[:, rs] - gt[:, lh], axis=-1)
    ok1 = vis[:, ls] & vis[:, rh]
    ok2 = vis[:, rs] & vis[:, lh]
    return np.where(ok1, d1, np.where(ok2, d2, np.nan))


def bbox_size(gt, visible=None) -> np.ndarray:
    """Longer side of the box around each person's labelled keypoints (NaN if fewer than
    two are labelled)."""
    gt, vis = _ground_truth(gt, "gt", visible)
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
        raise ValueError(f"normalizer must be 'torso', 'bbox', a number or an array (N,), got {normalizer!r}")
    norm = checks.as_array(normalizer, "normalizer").reshape(-1)
    if norm.size == 1:  # one length for everybody
        return np.full(gt.shape[0], checks.number(norm[0], "normalizer", minimum=0.0, min_open=True))
    if norm.shape != (gt.shape[0],):
        raise ValueError(f"normalizer must have one value per person ({gt.shape[0]}), got shape {np.shape(normalizer)}")
    if np.isinf(norm).any():
        raise ValueError("normalizer must be finite (NaN marks a person whose normaliser is undefined), got inf")
    if (norm[np.isfinite(norm)] <= 0).any():
        raise ValueError(f"normalizer values must be positive, got {norm[np.isfinite(norm) & (norm <= 0)][0]!r}")
    return norm


def pck(pred, gt, visible=None, normalizer="torso", threshold: float = 0.2) -> PCKResult:
    """Percentage of correct keypoints (Foundations; Stacked Hourglass evaluation).

    A labelled keypoint is correct when ``||pred - gt|| <= threshold * normalizer`` of
    its person. ``normalizer`` is ``"torso"`` (FLIC), ``"bbox"``, or an array of
    per-person lengths, e.g. head sizes for PCKh (MPII uses ``threshold=0.5``).
    People whose normaliser is undefined (NaN) are left out. A NaN (missing) prediction
    of a labelled keypoint is a miss: it is evaluated and not correct.
    """
    pred, gt, vis = _check_points(pred, gt, visible)
    threshold = checks.number(threshold, "threshold", minimum=0.0, min_open=True)
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
    """Mean PCK at each threshold (finite, ``> 0``; default 0.01 to 0.5); returns
    ``(thresholds, values)``."""
    if thresholds is None:
        thresholds = np.linspace(0.01, 0.5, 50)
    else:
        t = checks.as_array(thresholds, "thresholds")
        if t.ndim > 1 or t.size == 0:
            raise ValueError(f"thresholds must be a non-empty 1-D sequence of numbers, got shape {t.shape}")
        if not np.isfinite(t).all() or (t <= 0).any():
            raise ValueError(f"thresholds must be finite numbers > 0, got {t.reshape(-1).tolist()}")
        thresholds = t.reshape(-1)
    values = np.array([pck(pred, gt, visible, normalizer, float(t)).mean for t in thresholds])
    return thresholds, values


def nme(pred, gt, normalizer, visible=None, reduce: str = "mean"):
    """Normalised mean error: per person, the mean keypoint distance divided by the
    person's normaliser (e.g. the inter-ocular distance for faces); ``reduce="mean"``
    averages over people, ``"none"`` returns the per-person values.

    ``normalizer`` is a number, an array ``(N,)`` or ``"torso"``/``"bbox"``; people whose
    normaliser is undefined (NaN) are left out of the mean. A NaN (missing) prediction of
    a labelled keypoint gives that person the error ``inf``, so the mean is ``inf`` too,
    and a ``RuntimeWarning`` says how many samples had missing predictions.
    """
    checks.choice(reduce, "reduce", ("mean", "none"))
    pred, gt, vis = _check_points(pred, gt, visible)
    norm = _normalizer(normalizer, gt, vis)
    counts = vis.sum(1)
    if (counts == 0).any():
        raise ValueError("visible: every person needs at least one labelled keypoint for NME, "
                         f"person {int(np.argmax(counts == 0))} has none")
    dist = np.linalg.norm(pred - gt, axis=-1)
    missing = np.isnan(dist) & vis
    dist = np.where(missing, np.inf, dist)
    per_person = np.where(vis, dist, 0).sum(1) / counts / norm
    n_missing = int(missing.any(1).sum())
    if n_missing:
        warnings.warn(f"nme: {n_missing} of {len(per_person)} samples have missing (NaN) predicted keypoints; "
                      "their NME is inf", RuntimeWarning, stacklevel=2)
    if reduce == "none":
        return per_person
    return float(np.nanmean(per_person))


def oks(pred, gt, visible, areas, sigmas=None) -> np.ndarray:
    """Object keypoint similarity of each prediction with its ground truth (COCO).

    ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) [v_i > 0] / sum_i [v_i > 0]`` with
    ``s^2`` the object's area and ``k_i = 2 sigma_i``, exactly as pycocotools computes
    it for a matched pair. ``pred``/``gt`` ``(N, K, 2)``, ``areas`` ``(N,)`` (finite,
    ``>= 0``), ``sigmas`` ``(K,)`` (finite, ``> 0``; default COCO-17); returns ``(N,)``
    in ``[0, 1]`` (NaN for a person with no labelled keypoint). A NaN (missing) predicted
    keypoint has similarity 0.
    """
    pred, gt, vis = _check_points(pred, gt, visible)
    areas = _values(areas, "areas", gt.shape[0], "one value per person", allow_zero=True)
    if sigmas is None:
        from .data import COCO17

        sigmas = COCO17.sigmas
    sigmas = _values(sigmas, "sigmas", gt.shape[1], "one value per keypoint", allow_zero=False)
    var = (2 * sigmas) ** 2
    d2 = ((pred - gt) ** 2).sum(-1)
    e = d2 / var / (areas[:, None] + np.spacing(1)) / 2
    similarity = np.where(vis & ~np.isnan(e), np.exp(-np.where(np.isnan(e), np.inf, e)), 0.0)
    counts = vis.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, similarity.sum(1) / counts, np.nan)


def _coco_results(results, gt: Mapping, k: int | None) -> tuple[list[dict], dict[int, list[float]]]:
    """Checked copies of COCO result dictionaries, with missing (NaN) keypoints written at
    :data:`MISSING_XY`; also ``{index: [x0, y0, w, h]}``, the box of the finite keypoints of
    each detection with a missing one (pycocotools takes a detection's box and area from
    its keypoints, and the far point must not change them)."""
    if not isinstance(results, (list, tuple)):
        raise TypeError(f"results must be a list of COCO result dictionaries, got {checks.describe(results)}")
    image_ids = {im.get("id") for im in gt["images"] if isinstance(im, Mapping)}
    out, boxes = [], {}
    for i, r in enumerate(results):
        name = f"results[{i}]"
        if not isinstance(r, Mapping):
            raise TypeError(f"{name} must be a dict with image_id, category_id, keypoints and score, "
                            f"got {checks.describe(r)}")
        missing_keys = [key for key in ("image_id", "category_id", "keypoints", "score") if key not in r]
        if missing_keys:
            raise ValueError(f"{name} has no {', '.join(missing_keys)}")
        try:
            known = r["image_id"] in image_ids
        except TypeError:  # unhashable
            known = False
        if not known:
            raise ValueError(f"{name}['image_id'] = {r['image_id']!r} is not an image of gt")
        kp = checks.as_array(r["keypoints"], f"{name}['keypoints']").reshape(-1)
        if kp.size % 3 or (k is not None and kp.size != 3 * k):
            raise ValueError(f"{name}['keypoints'] must hold {'3K' if k is None else 3 * k} values "
                             f"[x, y, score, ...], got {kp.size}")
        if np.isinf(kp).any():
            raise ValueError(f"{name}['keypoints'] must be finite, got inf")
        score = checks.number(r["score"], f"{name}['score']")
        xys = kp.reshape(-1, 3).copy()
        gone = np.isnan(xys[:, :2]).any(1)
        xys[:, 2] = np.nan_to_num(xys[:, 2], nan=0.0)
        if gone.any():
            present = xys[~gone, :2]
            if len(present):
                (x0, y0), (x1, y1) = present.min(0), present.max(0)
                boxes[i] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            else:
                boxes[i] = [0.0, 0.0, 0.0, 0.0]
            xys[gone, :2] = MISSING_XY
            xys[gone, 2] = 0.0
        out.append({**r, "keypoints": [float(v) for v in xys.reshape(-1)], "score": score})
    return out, boxes


def coco_evaluate(gt: dict, results: list[dict], sigmas=None, verbose: bool = False) -> dict[str, float]:
    """COCO keypoint AP/AR with pycocotools (OKS thresholds 0.50:0.05:0.95).

    ``gt`` is a COCO keypoints dictionary (``kpedu.data.to_coco``), ``results`` a list
    of ``{"image_id", "category_id", "keypoints", "score"}`` (``kpedu.data.results_to_coco``).
    ``sigmas`` (finite, ``> 0``) overrides the COCO-17 per-keypoint constants for other
    skeletons. Returns the ten standard numbers (``COCO_STATS``); no results gives zeros,
    and pycocotools' ``-1`` marks an area range without ground truth.

    A NaN (missing) keypoint in a result is a miss: it is written far outside the image
    (:data:`MISSING_XY`), so its OKS term is 0, and the detection keeps the box and area
    of its other keypoints. The ``results`` given are not modified.
    """
    from pycocotools.cocoeval import COCOeval

    from .data.coco import as_pycocotools

    if not isinstance(gt, Mapping):
        raise TypeError(f"gt must be a COCO dictionary with 'images' and 'annotations', got {checks.describe(gt)}")
    if "annotations" not in gt or "images" not in gt:
        raise ValueError("gt must be a COCO dictionary with 'images' and 'annotations'")
    cats = gt.get("categories") or []
    k = len(cats[0]["keypoints"]) if cats and isinstance(cats[0], Mapping) and "keypoints" in cats[0] else None
    results, boxes = _coco_results(results, gt, k)
    if sigmas is not None:
        n_kp = k if k is not None else (len(results[0]["keypoints"]) // 3 if results else len(np.ravel(sigmas)))
        sigmas = _values(sigmas, "sigmas", n_kp, "one value per keypoint", allow_zero=False)
    if not results:
        return {k: 0.0 for k in COCO_STATS}
    coco_gt = as_pycocotools(gt)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        coco_dt = coco_gt.loadRes(results)
        for i, box in boxes.items():  # loadRes numbers detections 1, 2, ... in order
            coco_dt.anns[i + 1]["bbox"] = box
            coco_dt.anns[i + 1]["area"] = box[2] * box[3]
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if verbose:
        print(sink.getvalue())
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}


def _per_image(x, name: str) -> Sequence:
    if isinstance(x, (str, bytes, Mapping)) or not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
        raise TypeError(f"{name} must be a list with one array per image, got {checks.describe(x)}")
    return x


def keypoint_ap(gt_keypoints, gt_visible, gt_areas, pred_keypoints, pred_scores, keypoint_scores=None,
                image_size=(256, 256), sigmas=None) -> dict[str, float]:
    """COCO AP from arrays, one entry per image (convenience over :func:`coco_evaluate`).

    Each argument is a list over images: ``gt_keypoints[i]`` ``(N_i, K, 2)``,
    ``gt_visible[i]`` ``(N_i, K)``, ``gt_areas[i]`` ``(N_i,)`` (finite, ``>= 0``),
    ``pred_keypoints[i]`` ``(M_i, K, 2)``, ``pred_scores[i]`` ``(M_i,)`` and optionally
    ``keypoint_scores[i]`` ``(M_i, K)``. Single-person evaluation is the case
    ``N_i = M_i = 1``. ``K`` is 17 (COCO-17). A NaN (missing) predicted keypoint is a miss
    (see :func:`coco_evaluate`).
    """
    from .data import COCO17
    from .data.coco import to_coco

    lists = {"gt_keypoints": gt_keypoints, "gt_visible": gt_visible, "gt_areas": gt_areas,
             "pred_keypoints": pred_keypoints, "pred_scores": pred_scores}
    if keypoint_scores is not None:
        lists["keypoint_scores"] = keypoint_scores
    lengths = {name: len(_per_image(x, name)) for name, x in lists.items()}
    n = lengths["gt_keypoints"]
    if len(set(lengths.values())) > 1:
        raise ValueError("all per-image lists must have the same length, got "
                         + ", ".join(f"{name}: {length}" for name, length in lengths.items()))
    h, w = checks.size(image_size, "image_size")
    k = COCO17.num_keypoints
    samples, preds = [], []
    for i in range(n):
        g, vis = _ground_truth(gt_keypoints[i], f"gt_keypoints[{i}]", gt_visible[i], f"gt_visible[{i}]")
        if g.shape[1] != k:
            raise ValueError(f"gt_keypoints[{i}] must have the {k} COCO-17 keypoints, got shape {g.shape}")
        flags = checks.as_array(gt_visible[i], f"gt_visible[{i}]", allow_bool=True).reshape(vis.shape)
        flags = np.where(vis, np.maximum(np.rint(flags), 1), 0).astype(np.int64)
        areas = _values(gt_areas[i], f"gt_areas[{i}]", g.shape[0], "one value per person", allow_zero=True)
        samples.append({"keypoints": g, "visible": flags, "areas": areas, "height": h, "width": w})
        kp = checks.as_array(pred_keypoints[i], f"pred_keypoints[{i}]")
        if kp.size == 0:
            preds.append(None)
            continue
        kp = checks.points(kp, f"pred_keypoints[{i}]", ndim=3, backend="numpy")  # NaN: missing
        if kp.shape[1] != k:
            raise ValueError(f"pred_keypoints[{i}] must have the {k} COCO-17 keypoints, got shape {kp.shape}")
        sc = checks.as_array(pred_scores[i], f"pred_scores[{i}]").reshape(-1)
        if sc.shape != kp.shape[:1] or not np.isfinite(sc).all():
            raise ValueError(f"pred_scores[{i}] must hold {kp.shape[0]} finite scores, one per prediction, "
                             f"got {checks.describe(pred_scores[i])}")
        if keypoint_scores is None:
            ks = np.ones(kp.shape[:2])
        else:
            ks = checks.as_array(keypoint_scores[i], f"keypoint_scores[{i}]")
            if ks.shape != kp.shape[:2] or not np.isfinite(ks).all():
                raise ValueError(f"keypoint_scores[{i}] must hold finite scores of shape {kp.shape[:2]}, "
                                 f"got {checks.describe(keypoint_scores[i])}")
        preds.append((kp, ks, sc))
    gt = to_coco(samples)
    results = []
    for i, pr in enumerate(preds):
        if pr is None:
            continue
        kp, ks, sc = pr
        for p in range(kp.shape[0]):
            flat = np.concatenate([kp[p], ks[p][:, None]], axis=1).reshape(-1)
            results.append({"image_id": gt["images"][i]["id"], "category_id": 1,
                            "keypoints": [float(v) for v in flat], "score": float(sc[p])})
    return coco_evaluate(gt, results, sigmas=sigmas)


# --- mma: matching accuracy of local features (D2-Net chapter) -------------------------


def match_indices(matches, n1: int, n2: int) -> np.ndarray:
    """``matches`` as a validated ``(P, 2)`` integer array of index pairs into ``n1`` and
    ``n2`` keypoints (numpy or torch; an empty input gives ``(0, 2)``). D2-Net chapter."""
    n1 = checks.integer(n1, "n1", minimum=0)
    n2 = checks.integer(n2, "n2", minimum=0)
    m = checks.as_array(matches, "matches", dtype=None)
    if m.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if m.ndim != 2 or m.shape[1] != 2:
        raise ValueError(f"matches must have shape (P, 2), got {m.shape}")
    if m.dtype.kind not in "iu":
        raise TypeError(f"matches must hold integer indices, got dtype {m.dtype}")
    if m.min() < 0 or m[:, 0].max() >= n1 or m[:, 1].max() >= n2:
        raise ValueError(f"matches: indices out of range for {n1} and {n2} keypoints "
                         f"(got columns in [{m[:, 0].min()}, {m[:, 0].max()}] and [{m[:, 1].min()}, {m[:, 1].max()}])")
    return m


def _keypoints_2d(kp, name: str) -> np.ndarray:
    """``(N, 2)`` float64 keypoints; an empty input is ``(0, 2)``; NaN marks a missing one."""
    a = checks.as_array(kp, name)
    if a.size == 0:
        return a.reshape(0, 2)
    return checks.points(a, name, ndim=2, backend="numpy")


def reprojection_errors(kp1, kp2, matches, H) -> np.ndarray:
    """Reprojection error of each match under a homography (D2-Net chapter).

    ``kp1`` ``(N1, 2)`` and ``kp2`` ``(N2, 2)`` are ``(x, y)`` keypoints (pixel centres at
    integers), ``matches`` ``(P, 2)`` integer index pairs ``(i, j)`` and ``H`` the 3x3
    homography from image 1 to image 2 (finite). Returns ``(P,)`` float64
    ``||H kp1[i] - kp2[j]||``: ``inf`` where ``H`` sends a point to infinity, and where a
    keypoint is missing (NaN), so such a match is never correct.
    """
    from .data.pairs import apply_homography

    p1, p2 = _keypoints_2d(kp1, "kp1"), _keypoints_2d(kp2, "kp2")
    m = match_indices(matches, len(p1), len(p2))
    Hm = checks.as_array(H, "H")
    if Hm.shape != (3, 3):
        raise ValueError(f"H must be 3x3, got shape {Hm.shape}")
    if not np.isfinite(Hm).all():
        raise ValueError("H must be finite, got NaN or inf")
    if m.size == 0:
        return np.zeros(0, dtype=np.float64)
    projected = apply_homography(Hm, p1[m[:, 0]])
    with np.errstate(invalid="ignore"):
        errors = np.linalg.norm(projected - p2[m[:, 1]], axis=-1)
    return np.where(np.isnan(errors), np.inf, errors)


def mma(errors_per_pair: Sequence, thresholds=range(1, 11)) -> np.ndarray:
    """Mean matching accuracy (D2-Net chapter; the HPatches protocol of the D2-Net paper).

    ``errors_per_pair`` is a list with one array of match errors (pixels, ``>= 0``) per
    image pair. For each threshold ``t`` (finite, ``>= 0``), a pair's accuracy is the
    fraction of its matches with error ``<= t``, and MMA is the mean over pairs. A pair
    with no match has accuracy 0; a NaN or ``inf`` error counts as a wrong match (drop
    matches without ground truth first). Returns ``(len(thresholds),)`` float64.
    """
    if isinstance(errors_per_pair, (np.ndarray, str, bytes)) or not isinstance(errors_per_pair, Sequence):
        raise TypeError(f"errors_per_pair must be a list with one error array per pair, "
                        f"got {checks.describe(errors_per_pair)}")
    if len(errors_per_pair) == 0:
        raise ValueError("errors_per_pair must hold at least one pair")
    if isinstance(thresholds, (str, bytes)):
        raise TypeError(f"thresholds must be an iterable of numbers, got {checks.describe(thresholds)}")
    if not hasattr(thresholds, "shape"):
        try:
            thresholds = list(thresholds)
        except TypeError:
            raise TypeError(f"thresholds must be an iterable of numbers, got {checks.describe(thresholds)}") from None
    t = checks.as_array(thresholds, "thresholds")
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"thresholds must be a non-empty 1-D sequence of finite values >= 0, got {t}")
    acc = np.zeros((len(errors_per_pair), t.size))
    for k, e in enumerate(errors_per_pair):
        e = checks.as_array(e, f"errors_per_pair[{k}]").reshape(-1)
        if (e < 0).any():
            raise ValueError(f"errors_per_pair[{k}] has negative errors: {e[e < 0][0]!r}")
        if e.size:
            with np.errstate(invalid="ignore"):
                acc[k] = (e[:, None] <= t[None, :]).mean(0)
    return acc.mean(0)
