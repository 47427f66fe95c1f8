"""Local features, mutual nearest-neighbour matching and their evaluation.

D2-Net chapter (``book/ch04-d2net``). Every method of the chapter (D2-Net itself, SIFT,
ORB) produces a :class:`Features` for each image: keypoints, one descriptor per
keypoint, a score and the descriptor metric. Matching is the one used in the D2-Net
paper's evaluation (Dusmanu et al., CVPR 2019, Sec. 5): *mutual nearest neighbours* in
descriptor space, with no ratio test and no geometric verification, so the numbers
measure the features and nothing else.

- :func:`mutual_nearest_neighbors` on raw descriptor arrays: squared L2 distances by a
  matrix product (float descriptors) or Hamming distances on packed bits (binary
  descriptors such as ORB's), computed in chunks.
- :func:`match` on two :class:`Features`.
- :func:`evaluate_matching`: mean matching accuracy (MMA) over a list of image pairs
  with ground-truth homographies, the HPatches protocol of the D2-Net paper (Fig. 4):
  a match is correct when the reprojection error ``||H p1 - p2||`` is within a
  threshold of 1 to 10 pixels.
- :func:`repeatability`: the fraction of keypoints detected again in the other view.

Conventions (``book/notation.md``): keypoints are ``(N, 2)`` ``(x, y)`` pixel coordinates
with pixel centres at integers (pixel row ``i``, column ``j`` has centre ``(j, i)``), so an
image of width ``W`` spans ``[-0.5, W - 0.5]``. ``H`` maps image-1 coordinates to
image-2 coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import warnings

import numpy as np
import torch

from .. import checks
from ..metrics import mma as _mma
from ..metrics import reprojection_errors

__all__ = [
    "METRICS",
    "Features",
    "mutual_nearest_neighbors",
    "match",
    "evaluate_matching",
    "repeatability",
]

#: Descriptor metrics understood by :func:`mutual_nearest_neighbors`.
METRICS: tuple[str, ...] = ("l2", "hamming")

# Number of set bits of every byte value, for Hamming distances on packed bits.
_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
# Hamming distances are computed in blocks of at most this many bytes of XOR.
_HAMMING_BLOCK_BYTES = 1 << 25


def _as_numpy(x, name: str) -> np.ndarray:
    """``x`` as a numpy array of any dtype (Hamming descriptors keep uint8)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array, got {checks.describe(x)}")
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be array-like, got {checks.describe(x)}") from None


def _float_array(x, name: str, dtype=np.float32) -> np.ndarray:
    """``x`` as a finite real array (:func:`kpedu.checks.as_array`: complex, text and
    booleans are a ``TypeError``; NaN and inf a ``ValueError``)."""
    a = checks.as_array(x, name, dtype=dtype)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {'NaN' if np.isnan(a).any() else 'inf'}")
    return a


def _keypoints(x, name: str, dtype=np.float32) -> np.ndarray:
    """``(N, 2)`` keypoints; NaN marks a missing prediction (kept), ``inf`` is an error."""
    a = checks.as_array(x, name, dtype=dtype)
    if a.size == 0:
        return a.reshape(0, 2)
    return checks.points(a, name, ndim=2, backend="numpy", dtype=dtype, shape_text="(N, 2)")


def _check_metric(metric: str) -> str:
    return checks.choice(metric, "metric", METRICS)


@dataclass
class Features:
    """Local features of one image (D2-Net chapter): what every detector-descriptor
    of the chapter returns and what :func:`match` consumes.

    ``keypoints``
        ``(N, 2)`` float32 ``(x, y)`` in the input image's pixels (centres at integers).
    ``descriptors``
        ``(N, D)``: float32 compared with the (squared) Euclidean distance when
        ``metric == "l2"``; uint8 packed bits (8 bits a byte, e.g. ``(N, 32)`` for ORB's
        256-bit descriptors) compared with the Hamming distance when
        ``metric == "hamming"``.
    ``scores``
        ``(N,)`` float32 detection scores (higher is better), used by :meth:`top`.
    ``metric``
        ``"l2"`` or ``"hamming"``.
    ``scales``
        optional ``(N,)`` float32 size of each feature in pixels (its meaning is the
        producer's: for OpenCV, ``KeyPoint.size``).

    Arrays are converted on construction (torch tensors to numpy, keypoints, scores and
    L2 descriptors to float32); Hamming descriptors must already be uint8.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray
    metric: str = "l2"
    scales: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.metric = _check_metric(self.metric)
        kp = _keypoints(self.keypoints, "keypoints")
        n = kp.shape[0]
        desc = _as_numpy(self.descriptors, "descriptors")
        if self.metric == "hamming":
            if desc.dtype != np.uint8:
                raise TypeError(f"hamming descriptors must be uint8 packed bits, got dtype {desc.dtype}")
        else:
            desc = _float_array(desc, "descriptors")
        if desc.ndim != 2 or desc.shape[0] != n:
            raise ValueError(f"descriptors must have shape ({n}, D) to match the {n} keypoints, got {desc.shape}")
        if desc.shape[1] < 1:
            raise ValueError("descriptors must have at least one dimension (D >= 1)")
        scores = _float_array(self.scores, "scores")
        if scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {scores.shape}")
        scales = self.scales
        if scales is not None:
            scales = _float_array(scales, "scales")
            if scales.shape != (n,):
                raise ValueError(f"scales must have shape ({n},), got {scales.shape}")
        self.keypoints, self.descriptors, self.scores, self.scales = kp, desc, scores, scales

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def __repr__(self) -> str:
        return (f"Features(n={len(self)}, descriptor_dim={self.descriptors.shape[1]}, "
                f"dtype={self.descriptors.dtype}, metric={self.metric!r})")

    @property
    def dim(self) -> int:
        """Descriptor width ``D`` (bytes for Hamming descriptors)."""
        return int(self.descriptors.shape[1])

    def subset(self, index) -> "Features":
        """The features selected by ``index`` (an integer array or a boolean mask)."""
        index = np.asarray(index)
        if index.dtype == bool and index.shape != (len(self),):
            raise ValueError(f"a boolean mask must have shape ({len(self)},), got {index.shape}")
        return Features(self.keypoints[index], self.descriptors[index], self.scores[index], self.metric,
                        None if self.scales is None else self.scales[index])

    def top(self, k: int) -> "Features":
        """The ``k`` highest-scoring features, best first (all of them, sorted, when
        there are fewer than ``k``); ties keep their original order. D2-Net chapter:
        this is how every method is capped at the same number of features."""
        k = checks.integer(k, "k", minimum=0)
        order = np.argsort(-self.scores, kind="stable")[: int(k)]
        return self.subset(order)


def _check_descriptors(desc1, desc2, metric: str) -> tuple[np.ndarray, np.ndarray]:
    metric = _check_metric(metric)
    out = []
    for name, d in (("desc1", desc1), ("desc2", desc2)):
        a = _as_numpy(d, name)
        if a.ndim != 2:
            raise ValueError(f"{name} must have shape (N, D), got {a.shape}")
        if metric == "hamming":
            if a.dtype != np.uint8:
                raise TypeError(f"{name}: hamming descriptors must be uint8 packed bits, got dtype {a.dtype}")
        else:
            a = _float_array(a, name)
        out.append(a)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(f"descriptor widths differ: {out[0].shape[1]} and {out[1].shape[1]}")
    return out[0], out[1]


def _nn_l2(d1: np.ndarray, d2: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours both ways under squared L2, by chunks of rows of ``d1``."""
    a = torch.from_numpy(np.ascontiguousarray(d1))
    b = torch.from_numpy(np.ascontiguousarray(d2))
    bb = (b * b).sum(1)
    nn12 = torch.empty(a.shape[0], dtype=torch.int64)
    best21 = torch.full((b.shape[0],), float("inf"))
    nn21 = torch.zeros(b.shape[0], dtype=torch.int64)
    for s in range(0, a.shape[0], chunk):
        blk = a[s:s + chunk]
        # ||a||^2 + ||b||^2 - 2 a.b: the descriptors need not be normalised
        dist = (blk * blk).sum(1, keepdim=True) + bb[None, :] - 2.0 * (blk @ b.T)
        nn12[s:s + chunk] = dist.argmin(1)
        col = dist.argmin(0)
        val = dist.gather(0, col[None])[0]
        better = val < best21  # strict: on a tie the earlier chunk (smaller index) wins
        best21 = torch.where(better, val, best21)
        nn21 = torch.where(better, col + s, nn21)
    return nn12.numpy(), nn21.numpy()


def _nn_hamming(d1: np.ndarray, d2: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours both ways under the Hamming distance on packed bits."""
    n2, nbytes = d2.shape
    rows = max(1, min(chunk, _HAMMING_BLOCK_BYTES // max(1, n2 * nbytes)))
    nn12 = np.empty(d1.shape[0], dtype=np.int64)
    best21 = np.full(n2, np.iinfo(np.int32).max, dtype=np.int32)
    nn21 = np.zeros(n2, dtype=np.int64)
    for s in range(0, d1.shape[0], rows):
        x = np.bitwise_xor(d1[s:s + rows, None, :], d2[None, :, :])  # (r, n2, bytes)
        dist = _POPCOUNT[x].sum(-1, dtype=np.int32)  # (r, n2)
        nn12[s:s + rows] = dist.argmin(1)
        col = dist.argmin(0)
        val = dist[col, np.arange(n2)]
        better = val < best21
        best21 = np.where(better, val, best21)
        nn21 = np.where(better, col + s, nn21)
    return nn12, nn21


def mutual_nearest_neighbors(desc1, desc2, metric: str = "l2", chunk: int = 4096) -> np.ndarray:
    """Mutual nearest-neighbour matches between two sets of descriptors (D2-Net
    chapter; the matcher of the D2-Net paper's evaluation).

    Returns ``(P, 2)`` int64 index pairs ``(i, j)``, sorted by ``i``, such that ``j`` is
    the nearest neighbour of ``desc1[i]`` among ``desc2`` and ``i`` is the nearest
    neighbour of ``desc2[j]`` among ``desc1``. Ties go to the smaller index.

    ``metric="l2"``: ``(N, D)`` float descriptors (converted to float32, not required
    to be normalised), squared distances ``||a||^2 + ||b||^2 - 2 a.b`` by a torch matrix
    product. ``metric="hamming"``: ``(N, B)`` uint8 packed bits; the distance is the
    number of differing bits, counted with a 256-entry popcount table on the XOR.
    Rows of ``desc1`` are processed ``chunk`` at a time (fewer for Hamming when one
    block would exceed 32 MiB), so memory stays ``O(chunk * N2)``. An empty side gives
    an empty ``(0, 2)`` array.
    """
    chunk = checks.integer(chunk, "chunk", minimum=1)
    d1, d2 = _check_descriptors(desc1, desc2, metric)
    if len(d1) == 0 or len(d2) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    nn12, nn21 = (_nn_hamming if metric == "hamming" else _nn_l2)(d1, d2, int(chunk))
    i = np.arange(len(d1))
    mutual = nn21[nn12] == i
    return np.stack([i[mutual], nn12[mutual]], axis=1).astype(np.int64)


def match(f1: Features, f2: Features) -> np.ndarray:
    """Mutual nearest-neighbour matches ``(P, 2)`` between two :class:`Features`
    (D2-Net chapter), with their common descriptor metric."""
    for name, f in (("f1", f1), ("f2", f2)):
        if not isinstance(f, Features):
            raise TypeError(f"{name} must be Features, got {checks.describe(f)}")
    if f1.metric != f2.metric:
        raise ValueError(f"the features use different metrics: {f1.metric!r} and {f2.metric!r}")
    return mutual_nearest_neighbors(f1.descriptors, f2.descriptors, f1.metric)


def _thresholds(thresholds: Iterable[float]) -> np.ndarray:
    if isinstance(thresholds, (str, bytes)):
        raise TypeError(f"thresholds must be an iterable of numbers, got {checks.describe(thresholds)}")
    try:
        items = list(thresholds)
    except TypeError:
        raise TypeError(f"thresholds must be an iterable of numbers, got {checks.describe(thresholds)}") from None
    t = checks.as_array(items, "thresholds")
    if t.ndim != 1 or t.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D sequence of numbers")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"thresholds must be finite and >= 0, got {t.tolist()}")
    return t


def evaluate_matching(features1: Sequence[Features], features2: Sequence[Features], homographies,
                      thresholds: Iterable[float] = range(1, 11)) -> dict:
    """Mean matching accuracy over image pairs (D2-Net chapter; the HPatches protocol
    of the D2-Net paper, Fig. 4).

    For pair ``k``, the features of both images are matched by
    :func:`mutual_nearest_neighbors` and each match ``(i, j)`` gets the reprojection error
    ``||H_k p1_i - p2_j||`` (:func:`kpedu.metrics.reprojection_errors`); the pair's
    accuracy at threshold ``t`` is the fraction of its matches with error ``<= t``. **A
    pair with no match counts as accuracy 0** (a method that matches nothing is not
    excused), and MMA is the plain mean over pairs (:func:`kpedu.metrics.mma`).

    A keypoint that is NaN is a missing prediction: a match that uses it gets the error
    ``inf`` and is never correct (with a ``RuntimeWarning`` that says how many there are).

    Returns a dict: ``"thresholds"`` (list), ``"mma"`` (list, one value per threshold),
    ``"per_pair"`` ``(n_pairs, n_thresholds)`` array, ``"n_features"`` (the mean over
    pairs of the mean of the two images' feature counts), ``"n_matches"`` (mean matches
    per pair), ``"errors"`` (list of per-pair error arrays) and ``"matches"`` (list of
    per-pair ``(P, 2)`` index arrays).
    """
    t = _thresholds(thresholds)
    features1, features2 = list(features1), list(features2)
    Hs = [_float_array(H, f"homographies[{k}]", np.float64) for k, H in enumerate(homographies)]
    if not (len(features1) == len(features2) == len(Hs)):
        raise ValueError(f"need one homography per pair: got {len(features1)} and {len(features2)} "
                         f"feature sets and {len(Hs)} homographies")
    if not features1:
        raise ValueError("evaluate_matching needs at least one pair")
    errors, matches, counts, n_matches = [], [], [], []
    for k, (f1, f2) in enumerate(zip(features1, features2)):
        for name, f in (("features1", f1), ("features2", f2)):
            if not isinstance(f, Features):
                raise TypeError(f"{name}[{k}] must be Features, got {checks.describe(f)}")
        if Hs[k].shape != (3, 3):
            raise ValueError(f"homographies[{k}] must be 3x3, got shape {Hs[k].shape}")
    missing = 0
    for f1, f2, H in zip(features1, features2, Hs):
        m = match(f1, f2)
        err, lost = _match_errors(f1.keypoints, f2.keypoints, m, H)
        missing += lost
        errors.append(err)
        matches.append(m)
        counts.append(0.5 * (len(f1) + len(f2)))
        n_matches.append(len(m))
    if missing:
        warnings.warn(f"evaluate_matching: {missing} of {sum(n_matches)} matches use a keypoint that is NaN "
                      "(a missing prediction); they count as wrong matches", RuntimeWarning, stacklevel=2)
    per_pair = np.stack([_mma([e], t) for e in errors])
    return {
        "thresholds": t.tolist(),
        "mma": per_pair.mean(0).tolist(),
        "per_pair": per_pair,
        "n_features": float(np.mean(counts)),
        "n_matches": float(np.mean(n_matches)),
        "errors": errors,
        "matches": matches,
    }


def _match_errors(kp1: np.ndarray, kp2: np.ndarray, m: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, int]:
    """Reprojection errors of the matches ``m``, ``inf`` for a match with a NaN keypoint,
    and the number of those."""
    if np.isfinite(kp1).all() and np.isfinite(kp2).all():
        return reprojection_errors(kp1, kp2, m, H), 0
    ok = np.isfinite(kp1[m[:, 0]]).all(1) & np.isfinite(kp2[m[:, 1]]).all(1)
    err = np.full(len(m), np.inf)
    if ok.any():
        p1, p2 = kp1[m[ok, 0]], kp2[m[ok, 1]]
        pairs = np.stack([np.arange(len(p1)), np.arange(len(p1))], 1)
        err[ok] = reprojection_errors(p1, p2, pairs, H)
    return err, int((~ok).sum())


def _shape_hw(shape, name: str) -> tuple[int, int]:
    """The trailing ``(H, W)`` of a shape such as ``(H, W)`` or an image's ``(C, H, W)``."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or \
            (isinstance(shape, np.ndarray) and shape.ndim != 1):
        raise TypeError(f"{name} must be a shape tuple such as (H, W), got {checks.describe(shape)}")
    dims = list(shape)
    if len(dims) < 2:
        raise ValueError(f"{name} must end with a positive (H, W), got {shape!r}")
    return (checks.integer(dims[-2], f"{name}[-2] (H)", minimum=1),
            checks.integer(dims[-1], f"{name}[-1] (W)", minimum=1))


def _inside(points: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    x, y = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)




def repeatability(kp1, kp2, H, shape1, shape2, threshold: float = 3.0) -> float:
    """Keypoint repeatability between two views related by ``H`` (D2-Net chapter).

    Only the shared area counts: keypoints of image 1 that ``H`` maps inside image 2,
    and keypoints of image 2 that ``H^-1`` maps inside image 1 (an image of shape
    ``(H, W)`` spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``). The kept image-1 keypoints
    are projected into image 2 and paired one-to-one with the kept image-2 keypoints as
    **mutual nearest neighbours within** ``threshold`` pixels; repeatability is the
    number of such pairs divided by ``min(#kept1, #kept2)``, so it lies in [0, 1]
    (one-to-one pairing keeps clusters of detections from scoring above 1). It is 0
    when either kept set is empty. ``shape1``/``shape2`` are ``(H, W)`` or any shape
    ending with them (an image's ``.shape``). Keypoints at identical positions count
    once: SIFT returns one keypoint per dominant orientation at the same place, and
    without merging them an image would not be fully repeatable against itself.

    A keypoint that is NaN is a missing prediction: it counts as a kept keypoint that is
    never repeated (each one on its own), with a ``RuntimeWarning`` that says how many.
    """
    from scipy.spatial import cKDTree

    from ..data.pairs import apply_homography

    p1, p2 = _keypoints(kp1, "kp1", np.float64), _keypoints(kp2, "kp2", np.float64)
    Hm = _float_array(H, "H", np.float64)
    if Hm.shape != (3, 3):
        raise ValueError(f"H must be 3x3, got shape {Hm.shape}")
    hw1, hw2 = _shape_hw(shape1, "shape1"), _shape_hw(shape2, "shape2")
    threshold = checks.number(threshold, "threshold", minimum=0)
    try:
        Hinv = np.linalg.inv(Hm)
    except np.linalg.LinAlgError:
        raise ValueError("H is singular") from None
    lost1, lost2 = np.isnan(p1).any(1), np.isnan(p2).any(1)
    m1, m2 = int(lost1.sum()), int(lost2.sum())
    if m1 or m2:
        warnings.warn(f"repeatability: {m1} of {len(p1)} keypoints of kp1 and {m2} of {len(p2)} of kp2 are NaN "
                      "(missing predictions); they count as not repeated", RuntimeWarning, stacklevel=2)
        p1, p2 = p1[~lost1], p2[~lost2]
    p1, p2 = np.unique(p1, axis=0), np.unique(p2, axis=0)
    q1 = apply_homography(Hm, p1)  # image-1 keypoints in image 2
    keep1 = _inside(q1, hw2)
    keep2 = _inside(apply_homography(Hinv, p2), hw1)
    q1, p2 = q1[keep1], p2[keep2]
    if len(q1) == 0 or len(p2) == 0:
        return 0.0
    d12, nn12 = cKDTree(p2).query(q1, k=1)
    _, nn21 = cKDTree(q1).query(p2, k=1)
    mutual = (nn21[nn12] == np.arange(len(q1))) & (d12 <= threshold)
    return float(mutual.sum() / min(len(q1) + m1, len(p2) + m2))
