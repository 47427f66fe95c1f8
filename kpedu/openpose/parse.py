"""OpenPose parsing: from confidence maps and part affinity fields to people.

OpenPose chapter (``book/ch02-openpose``), after Cao et al., CVPR 2017, Sec. 2.4, and
the TPAMI 2021 version (Sec. 3.5). The bottom-up pipeline is

1. :func:`find_peaks` -- part candidates ``d_j^m``: non-maximum suppression on every
   confidence map ``S_j``;
2. :func:`limb_scores` -- the association score of every candidate pair of a limb type,
   the line integral of the PAF along the segment joining them
   (the line integral ``E`` with ``p(u) = (1 - u) d1 + u d2``);
3. :func:`match_limb` -- per limb type, a maximum-weight bipartite matching of the
   candidates (the paper's per-limb matching problem), solved exactly with the Hungarian algorithm;
4. :func:`skeleton_tree` + :func:`parse` -- the paper's relaxation: instead of the
   NP-hard K-partite matching over all limbs at once, only the limbs of a spanning tree
   are matched, each independently, and people are assembled from matched limbs that
   share a part.

Conventions (``book/notation.md``): heatmaps ``(K, H, W)``, PAFs ``(2C, H, W)`` with
channel ``2c`` the x and ``2c + 1`` the y component of limb ``c = (j1, j2)``, pointing
from ``j1`` to ``j2``; points are ``(x, y)`` with pixel centres at integers; peaks and
scores live in heatmap pixels and only :func:`parse` maps the final keypoints to image
pixels with ``x = s (x_h + 0.5) - 0.5`` (:func:`kpedu.codecs.heatmap_to_image`).

The heavy parts are vectorised with torch: peak finding is one max-pool over all maps,
and a limb's scores are one gather over all ``A x B`` candidate pairs times all samples.
Python loops run only over limb types and over matched pairs.

The released implementation (CMU, ``Realtime_Multi-Person_Pose_Estimation``) differs in
two places, both noted where they occur: it samples the PAF at the nearest pixel on
``num_samples`` points including both endpoints, and it matches each limb greedily by
decreasing score instead of with the Hungarian algorithm.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .. import checks
from ..codecs import heatmap_to_image
from ..codecs.heatmap import _stride_pair
from ..data import COCO17
from ..data.skeleton import Skeleton

__all__ = [
    "Person",
    "find_peaks",
    "limb_scores",
    "match_limb",
    "skeleton_tree",
    "parse",
    "parse_batch",
]

LimbsLike = Union[Sequence[Sequence[int]], Skeleton]


# ----------------------------------------------------------------------------- helpers


def _as_maps(x, name: str, ndim: int) -> torch.Tensor:
    """Maps checked by :func:`kpedu.checks.maps` (finite, non-empty), as float32."""
    shape = {2: "(H, W)", 3: "(K, H, W)" if name == "heatmaps" else "(2C, H, W)",
             4: "(B, K, H, W)" if name == "heatmaps" else "(B, 2C, H, W)"}[ndim]
    return checks.maps(x, name, ndim=ndim, shape_text=shape).detach().float()


def _check_limbs(limbs, num_keypoints: int | None = None, allow_empty: bool = True,
                 what: str = "num_keypoints") -> list[tuple[int, int]]:
    """``limbs`` (pairs ``(j1, j2)`` or a skeleton) as a list of int pairs, each index in
    ``[0, num_keypoints)`` when that is given (``what`` names where that bound comes from)."""
    if hasattr(limbs, "limbs") and not isinstance(limbs, (list, tuple, np.ndarray, torch.Tensor)):
        limbs = limbs.limbs  # a Skeleton
    if isinstance(limbs, (torch.Tensor, np.ndarray)):
        checks.as_array(limbs, "limbs", dtype=None)  # numbers, not text or complex
        limbs = limbs.tolist()
    if isinstance(limbs, (str, bytes)):
        raise TypeError(f"limbs must be a sequence of (j1, j2) keypoint index pairs, got {checks.describe(limbs)}")
    try:
        raw = [tuple(p) if not isinstance(p, (str, bytes)) else p for p in limbs]
    except TypeError:
        raise TypeError(f"limbs must be a sequence of (j1, j2) keypoint index pairs, got {checks.describe(limbs)}") \
            from None
    if not raw and not allow_empty:
        raise ValueError("limbs must hold at least one (j1, j2) pair")
    out = []
    for c, p in enumerate(raw):
        if not isinstance(p, tuple) or len(p) != 2:
            raise ValueError(f"limbs[{c}] must be a pair (j1, j2) of keypoint indices, got {p!r}")
        a, b = (checks.integer(v, f"limbs[{c}][{i}]") for i, v in enumerate(p))
        if a == b:
            raise ValueError(f"limbs[{c}] = {(a, b)} joins keypoint {a} to itself")
        if a < 0 or b < 0 or (num_keypoints is not None and max(a, b) >= num_keypoints):
            bound = f"[0, {num_keypoints}) ({what} = {num_keypoints})" if num_keypoints is not None \
                else "the non-negative integers"
            raise ValueError(f"limbs[{c}] = {(a, b)} is out of range: a keypoint index outside {bound}; "
                             "indices are 0-based")
        out.append((a, b))
    return out


def _points(cand, name: str) -> torch.Tensor:
    """Candidates ``(P, 2)`` or ``(P, 3)`` ``(x, y[, score])``: their finite ``(x, y)``."""
    t = checks.as_tensor(cand, name)
    if t.numel() == 0 and t.ndim < 2:
        t = t.reshape(0, 2)
    if t.ndim != 2 or t.shape[1] not in (2, 3):
        raise ValueError(f"{name} must have shape (P, 2) or (P, 3) (x, y[, score]), got shape {tuple(t.shape)}")
    return checks.points(t[:, :2], name, ndim=2, allow_nan=False, shape_text="(P, 2)").detach()


#: parse()'s numeric options and their rules (checked once, at the boundary of every
#: function that passes them on: parse, parse_batch and the experiment's detect).
_OPTION_RULES = {
    "stride": lambda v, n: _stride_pair(v),
    "threshold": lambda v, n: checks.number(v, n),
    "num_samples": lambda v, n: checks.integer(v, n, minimum=1),
    "min_parts": lambda v, n: checks.integer(v, n, minimum=0),
    "min_score": lambda v, n: checks.number(v, n),
    "nms_kernel": lambda v, n: _nms_kernel(v),
    "paf_threshold": lambda v, n: checks.number(v, n),
    "min_ratio": lambda v, n: checks.probability(v, n),
    "interpolation": lambda v, n: checks.choice(v, n, ("bilinear", "nearest")),
    "root": lambda v, n: None if v is None else checks.integer(v, n, minimum=0),
}


def _check_options(**options) -> None:
    """Check :func:`parse` keyword arguments (TypeError for a name parse does not take)."""
    known = set(_OPTION_RULES) | {"use_redundant", "refine", "distance_prior"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"parse() got unexpected keyword arguments {unknown}; it takes {sorted(known)}")
    for name, value in options.items():
        if name in _OPTION_RULES:
            _OPTION_RULES[name](value, name)


def _nms_kernel(nms_kernel) -> int:
    if isinstance(nms_kernel, (float, np.floating)):  # a window has a whole number of pixels
        raise ValueError(f"nms_kernel must be a positive odd integer, got {nms_kernel!r}")
    k = checks.integer(nms_kernel, "nms_kernel", minimum=1)
    if k % 2 == 0:
        raise ValueError(f"nms_kernel must be a positive odd integer, got {nms_kernel!r}")
    return k


# ----------------------------------------------------------------------------- peaks


def find_peaks(heatmaps, threshold: float = 0.1, nms_kernel: int = 3, refine: bool = True) -> list[torch.Tensor]:
    """Part candidates: the local maxima of every confidence map (CVPR 2017 Sec. 2.4).

    The confidence maps ``S_j`` are trained towards the maximum of one Gaussian per person
    (CVPR 2017 Sec. 2.2), so every person contributes a local maximum; non-maximum
    suppression turns the maps into the discrete candidate sets ``D_j`` that the matching
    of the per-limb matching works on.

    A pixel is a peak where its value is above ``threshold`` and equals the maximum of
    its ``nms_kernel x nms_kernel`` neighbourhood (a max-pool compared for equality, for
    all maps at once). On a plateau, where neighbouring pixels tie, only the one with the
    largest row-major index in each window is kept, so a flat top gives one peak rather
    than a cluster.

    With ``refine`` each peak moves a quarter pixel toward the higher of its two
    neighbours, separately in ``x`` and ``y``, as :func:`kpedu.codecs.decode_argmax` does
    for single-person heatmaps (and with the same rule on the border: no shift where a
    neighbour is missing). It halves the worst-case rounding error of an integer peak
    (0.5 to 0.25 pixel) and leaves a peak centred on a pixel where it is.

    Args:
        heatmaps: ``(K, H, W)`` confidence maps (tensor or array); drop a background
            channel first if the network predicts one.
        threshold: minimum peak value, strictly exceeded (the released code uses 0.1).
        nms_kernel: odd window size of the non-maximum suppression.
        refine: apply the quarter-pixel refinement.

    Returns:
        A list of ``K`` float32 tensors ``(P_k, 3)`` of ``(x, y, score)`` in heatmap pixels,
        ``score`` being the map value at the integer peak; each sorted by decreasing score.
    """
    hm = _as_maps(heatmaps, "heatmaps", 3)
    threshold = checks.number(threshold, "threshold")
    size = _nms_kernel(nms_kernel)
    k, h, w = hm.shape
    pad = size // 2
    pooled = F.max_pool2d(hm[:, None], size, stride=1, padding=pad)[:, 0]
    is_max = (hm == pooled) & (hm > threshold)
    # plateau tie-break: local maxima inside each other's window have equal values; keep
    # the one with the largest linear index in the window
    index = torch.arange(h * w, device=hm.device, dtype=torch.float32).reshape(1, h, w).expand(k, h, w)
    index = torch.where(is_max, index, torch.full_like(index, -1.0))
    keep = is_max & (F.max_pool2d(index[:, None], size, stride=1, padding=pad)[:, 0] == index)
    kk, yy, xx = keep.nonzero(as_tuple=True)
    scores = hm[kk, yy, xx]
    xy = torch.stack([xx, yy], dim=-1).float()
    if refine and kk.numel():
        xl, xr = (xx - 1).clamp(min=0), (xx + 1).clamp(max=w - 1)
        yu, yd = (yy - 1).clamp(min=0), (yy + 1).clamp(max=h - 1)
        dx = hm[kk, yy, xr] - hm[kk, yy, xl]
        dy = hm[kk, yd, xx] - hm[kk, yu, xx]
        xy[:, 0] += 0.25 * torch.sign(dx) * ((xx > 0) & (xx < w - 1))
        xy[:, 1] += 0.25 * torch.sign(dy) * ((yy > 0) & (yy < h - 1))
    peaks = torch.cat([xy, scores[:, None]], dim=1)
    # group by keypoint type, by decreasing score within a type (two stable sorts)
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[torch.sort(kk[order], stable=True).indices]
    counts = torch.bincount(kk, minlength=k).tolist()
    return list(torch.split(peaks[order], counts))


# ----------------------------------------------------------------------------- line integral


def _sample(field: torch.Tensor, pts: torch.Tensor, interpolation: str) -> torch.Tensor:
    """Values ``(2, ...)`` of a ``(2, H, W)`` field at points ``(..., 2)``, which are
    clamped to the map."""
    _, h, w = field.shape
    x = pts[..., 0].clamp(0, w - 1)
    y = pts[..., 1].clamp(0, h - 1)
    flat = field.reshape(2, h * w)
    if interpolation == "nearest":
        return flat[:, torch.round(y).long() * w + torch.round(x).long()]
    x0, y0 = x.floor().long(), y.floor().long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    wx, wy = x - x0, y - y0
    top = flat[:, y0 * w + x0] * (1 - wx) + flat[:, y0 * w + x1] * wx
    bottom = flat[:, y1 * w + x0] * (1 - wx) + flat[:, y1 * w + x1] * wx
    return top * (1 - wy) + bottom * wy


def limb_scores(paf_x, paf_y, cand_a, cand_b, num_samples: int = 10, paf_threshold: float = 0.05,
                image_height: float | None = None,
                interpolation: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Association scores of all candidate pairs of one limb type: the PAF line integral.

    For candidates ``d_j1`` (from ``cand_a``) and ``d_j2`` (from ``cand_b``) the score is

    .. math:: E = \\int_0^1 L_c(p(u)) \\cdot \\frac{d_{j2} - d_{j1}}{\\lVert d_{j2} - d_{j1} \\rVert_2}\\, du,
              \\qquad p(u) = (1 - u)\\, d_{j1} + u\\, d_{j2}

    (CVPR 2017 Sec. 2.3, TPAMI Sec. 3.4): the PAF is read along the segment and projected on
    its direction, so a pair scores high only if the field is there *and* points from
    ``j1`` to ``j2`` all along. A field pointing the other way gives a negative score.

    The integral is approximated by the midpoint rule, the mean of ``num_samples``
    dot products at ``u = (i + 1/2) / num_samples``; ``num_samples = 1`` is therefore
    the single-point midpoint test that the paper argues against (Fig. 5). The field
    is read with bilinear interpolation (``interpolation="nearest"`` rounds to the
    nearest pixel, as the released code does; the released code also samples the two
    endpoints, where the fields of neighbouring limbs overlap). All ``A x B x S`` samples
    are read with one gather.

    Args:
        paf_x, paf_y: ``(H, W)`` components of the limb's field.
        cand_a, cand_b: ``(A, 2+)`` and ``(B, 2+)`` candidates ``(x, y[, score])`` in the
            field's pixels, for instance two entries of :func:`find_peaks`.
        num_samples: number of samples ``S >= 1`` on each segment.
        paf_threshold: a sample supports the pair when its dot product exceeds this
            (the released code's ``thre2 = 0.05``).
        image_height: if given, the released code's distance prior is added to the
            mean: ``min(0.5 * image_height / ||d_j2 - d_j1|| - 1, 0)``, which penalises
            limbs longer than half the image height (same unit as the candidates).
        interpolation: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``(scores, ratio)``, two float32 ``(A, B)`` tensors: the approximated ``E``
        (plus the prior) and the fraction of samples above ``paf_threshold``. A pair
        whose two candidates coincide has no direction and scores 0.
    """
    checks.same_device(paf_x=paf_x, paf_y=paf_y, cand_a=cand_a, cand_b=cand_b)
    px = _as_maps(paf_x, "paf_x", 2)
    py = _as_maps(paf_y, "paf_y", 2)
    if px.shape != py.shape:
        raise ValueError(f"paf_x and paf_y must have the same shape, got {tuple(px.shape)} and {tuple(py.shape)}")
    num_samples = checks.integer(num_samples, "num_samples", minimum=1)
    paf_threshold = checks.number(paf_threshold, "paf_threshold")
    image_height = checks.optional_number(image_height, "image_height", minimum=0.0, min_open=True)
    checks.choice(interpolation, "interpolation", ("bilinear", "nearest"))
    a = _points(cand_a, "cand_a").to(px.device)  # numpy candidates come to the maps' device
    b = _points(cand_b, "cand_b").to(px.device)
    return _limb_scores(px, py, a, b, num_samples, paf_threshold, image_height, interpolation)


def _limb_scores(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor, num_samples: int,
                 paf_threshold: float, image_height: float | None, interpolation: str
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`limb_scores` on checked arguments (``parse`` checks its maps once, not per limb)."""
    na, nb = a.shape[0], b.shape[0]
    if na == 0 or nb == 0:
        empty = torch.zeros(na, nb, device=px.device)
        return empty, empty.clone()
    d = b[None, :, :] - a[:, None, :]                                       # (A, B, 2)
    norm = d.norm(dim=-1)                                                   # (A, B)
    unit = torch.where(norm[..., None] > 1e-6, d / norm.clamp(min=1e-6)[..., None], torch.zeros_like(d))
    u = (torch.arange(int(num_samples), device=px.device, dtype=torch.float32) + 0.5) / int(num_samples)
    pts = a[:, None, None, :] + u[None, None, :, None] * d[:, :, None, :]   # (A, B, S, 2): p(u)
    field = _sample(torch.stack([px, py]), pts, interpolation)              # (2, A, B, S)
    dots = field[0] * unit[..., 0:1] + field[1] * unit[..., 1:2]            # (A, B, S)
    scores = dots.mean(dim=-1)                                              # E, midpoint rule
    ratio = (dots > paf_threshold).float().mean(dim=-1)
    if image_height is not None:
        scores = scores + (0.5 * float(image_height) / norm.clamp(min=1e-6) - 1.0).clamp(max=0.0)
    return scores, ratio


# ----------------------------------------------------------------------------- matching


def match_limb(scores, valid=None) -> list[tuple[int, int, float]]:
    """Maximum-weight bipartite matching of one limb type (CVPR 2017 Sec. 2.4).

    Chooses connections ``z_{j1 j2}^{mn}`` maximising the total score
    ``E_c = sum_mn E_mn z_mn`` with every candidate used at most once
    (the paper's two constraints), solved exactly by the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`). Only pairs that are ``valid`` and
    score strictly above 0 can be chosen: the others get weight 0, which never raises
    the total of a matching, and are dropped from the returned assignment. (The
    released code takes pairs greedily by decreasing score, which can lose weight.)

    Args:
        scores: ``(A, B)`` pair scores, e.g. from :func:`limb_scores`.
        valid: ``(A, B)`` boolean mask of admissible pairs, or ``None`` for all.

    Returns:
        ``[(a, b, score), ...]`` sorted by decreasing score; no ``a`` and no ``b`` twice.
    """
    s = checks.as_array(scores, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (A, B), got shape {s.shape}")
    if s.size:
        checks.maps(s, "scores", ndim=2, shape_text="(A, B)")  # finite: NaN is an error, not a rejected pair
    ok = s > 0
    if valid is not None:
        v = checks.as_array(valid, "valid", allow_bool=True)
        if v.shape != s.shape:
            raise ValueError(f"valid must have the shape of scores {s.shape}, got {v.shape}")
        if v.size:
            checks.maps(v, "valid", ndim=2, shape_text="(A, B)")
        ok &= v.astype(bool)
    if not ok.any():
        return []
    rows, cols = linear_sum_assignment(np.where(ok, s, 0.0), maximize=True)
    pairs = [(int(r), int(c), float(s[r, c])) for r, c in zip(rows, cols) if ok[r, c]]
    return sorted(pairs, key=lambda p: -p[2])


# ----------------------------------------------------------------------------- tree


def skeleton_tree(limbs: LimbsLike = COCO17.limbs, num_keypoints: int | None = None,
                  root: int | None = None) -> tuple[list[int], list[int]]:
    """A spanning tree of the skeleton graph, and the limbs left out of it.

    Matching all limb types jointly is a K-dimensional matching problem, NP-hard
    (CVPR 2017 Sec. 2.4). The paper relaxes it: keep only a spanning tree of the
    skeleton instead of the complete graph over the parts, and match each tree edge on
    its own, exact per edge and losing only the coupling through shared parts.
    COCO-17's limbs contain cycles (the face, the shoulder-hip quadrilateral); the limbs
    outside the tree are returned as redundant connections, which :func:`parse` can use
    with ``use_redundant=True`` to join fragments.

    The tree comes from a breadth-first search that visits each keypoint's limbs in the
    order they are listed, so every keypoint hangs on the tree by a shortest path from
    the root and a missed limb cuts off as few parts as possible. If the skeleton is not
    connected the result is a spanning forest (the search restarts from the lowest
    unvisited keypoint).

    Args:
        limbs: ``(j1, j2)`` pairs, or a :class:`~kpedu.data.skeleton.Skeleton`.
        num_keypoints: ``K``; default the skeleton's size, or one more than the largest
            index in ``limbs``.
        root: where the search starts; default a centre of the graph (smallest
            eccentricity in the largest component, lowest index on ties), which is the
            left shoulder (5) for COCO-17.

    Returns:
        ``(tree, redundant)``: limb indices into ``limbs`` (limb ``c`` owns the PAF
        channels ``2c, 2c + 1``). ``tree`` is in search order, so each of its limbs joins
        a keypoint already reached to a new one; it has ``K - 1`` limbs for a connected
        skeleton. ``redundant`` holds the others in their original order.
    """
    if num_keypoints is None and isinstance(limbs, Skeleton):
        num_keypoints = limbs.num_keypoints
    if num_keypoints is not None:
        num_keypoints = checks.integer(num_keypoints, "num_keypoints", minimum=1)
    pairs = _check_limbs(limbs, num_keypoints)
    if num_keypoints is None:
        num_keypoints = 1 + max((max(p) for p in pairs), default=-1)
    k = int(num_keypoints)
    if k < 1:
        raise ValueError(f"num_keypoints must be positive, got {num_keypoints!r}")
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(k)]
    for c, (a, b) in enumerate(pairs):
        adjacency[a].append((b, c))
        adjacency[b].append((a, c))

    def bfs(start: int, visited: list[bool]) -> tuple[list[int], dict[int, int]]:
        visited[start] = True
        depth, queue, edges = {start: 0}, deque([start]), []
        while queue:
            node = queue.popleft()
            for nbr, c in adjacency[node]:
                if not visited[nbr]:
                    visited[nbr] = True
                    depth[nbr] = depth[node] + 1
                    edges.append(c)
                    queue.append(nbr)
        return edges, depth

    if root is None:
        keys = []
        for node in range(k):
            depth = bfs(node, [False] * k)[1]
            keys.append((-len(depth), max(depth.values()), node))  # largest component, then centre
        root = min(keys)[2]
    else:
        root = checks.integer(root, "root")
        if not 0 <= root < k:
            raise ValueError(f"root must be a keypoint index in [0, {k}), got {root!r}")
    visited = [False] * k
    tree: list[int] = []
    for start in [int(root)] + list(range(k)):
        if not visited[start]:
            tree += bfs(start, visited)[0]
    in_tree = set(tree)
    return tree, [c for c in range(len(pairs)) if c not in in_tree]


# ----------------------------------------------------------------------------- assembly


@dataclass
class Person:
    """One parsed person.

    Attributes:
        keypoints: ``(K, 2)`` float32 ``(x, y)`` in image pixels; NaN for missing parts.
        scores: ``(K,)`` float32 peak confidences; 0 for missing parts.
        score: overall score, the mean of the person's part confidences and of the
            scores of the limbs that joined them (in ``[0, 1]`` for maps in ``[0, 1]``).
        parts: ``(K,)`` int64 index of each part into ``find_peaks(heatmaps)[k]``; -1 if
            missing.
        num_limbs: number of matched limbs behind the person (tree and redundant).
    """

    keypoints: torch.Tensor
    scores: torch.Tensor
    score: float
    parts: torch.Tensor
    num_limbs: int = 0

    @property
    def num_parts(self) -> int:
        """How many keypoints were found."""
        return int((self.parts >= 0).sum())

    @property
    def visible(self) -> torch.Tensor:
        """``(K,)`` boolean: which keypoints were found."""
        return self.parts >= 0


class _Assembly:
    """People under construction: part slots per person, and which person owns a part.

    A connection ``(j_a, a) - (j_b, b)`` with score ``e`` either starts a person (neither
    part owned, and ``allow_new``), extends the person owning one part (if its slot for
    the other keypoint type is free), confirms a person owning both, or merges the two
    people owning one part each when they have no keypoint type in common. Anything else
    conflicts and is dropped.
    """

    def __init__(self, num_keypoints: int) -> None:
        self.k = num_keypoints
        self.people: dict[int, dict] = {}
        self.owner: dict[tuple[int, int], int] = {}
        self._next = 0

    def _add(self, pid: int, j: int, p: int) -> None:
        self.people[pid]["parts"][j] = p
        self.owner[(j, p)] = pid

    def connect(self, ja: int, a: int, jb: int, b: int, e: float, allow_new: bool) -> None:
        pa, pb = self.owner.get((ja, a)), self.owner.get((jb, b))
        if pa is None and pb is None:
            if allow_new:
                pid, self._next = self._next, self._next + 1
                self.people[pid] = {"parts": np.full(self.k, -1, dtype=np.int64), "limb": e, "n_limbs": 1}
                self._add(pid, ja, a)
                self._add(pid, jb, b)
        elif pa is None or pb is None:  # a part already owned extends its person
            pid, j, p = (pa, jb, b) if pb is None else (pb, ja, a)
            person = self.people[pid]
            if person["parts"][j] < 0:
                self._add(pid, j, p)
                person["limb"] += e
                person["n_limbs"] += 1
        elif pa == pb:  # both parts in one person already: the limb confirms it
            self.people[pa]["limb"] += e
            self.people[pa]["n_limbs"] += 1
        else:  # two partial people joined by the limb: merge unless a keypoint type clashes
            first, second = self.people[pa], self.people[pb]
            if np.any((first["parts"] >= 0) & (second["parts"] >= 0)):
                return
            for j in np.flatnonzero(second["parts"] >= 0):
                self._add(pa, int(j), int(second["parts"][j]))
            first["limb"] += second["limb"] + e
            first["n_limbs"] += second["n_limbs"] + 1
            del self.people[pb]


def _check_pair(heatmaps: torch.Tensor, pafs: torch.Tensor, limbs: list[tuple[int, int]]) -> None:
    if pafs.shape[-3] != 2 * len(limbs):
        raise ValueError(f"pafs must have 2C = {2 * len(limbs)} channels for {len(limbs)} limbs "
                         f"(x and y per limb), got {pafs.shape[-3]}")
    if heatmaps.shape[-2:] != pafs.shape[-2:]:
        raise ValueError(f"heatmaps {tuple(heatmaps.shape[-2:])} and pafs {tuple(pafs.shape[-2:])} "
                         "must have the same spatial size (H, W)")


def parse(heatmaps, pafs, limbs: LimbsLike = COCO17.limbs, stride: float | Sequence[float] = 1,
          threshold: float = 0.1, num_samples: int = 10, min_parts: int = 3, min_score: float = 0.2,
          use_redundant: bool = False, nms_kernel: int = 3, refine: bool = True, paf_threshold: float = 0.05,
          min_ratio: float = 0.8, distance_prior: bool = True, interpolation: str = "bilinear",
          root: int | None = None) -> list[Person]:
    """Multi-person parsing of one image's confidence maps and PAFs (CVPR 2017 Sec. 2.4).

    1. Part candidates per keypoint type with :func:`find_peaks`.
    2. For each limb of the spanning tree (:func:`skeleton_tree`, in search order), every
       candidate pair is scored with the PAF line integral (:func:`limb_scores`,
       the line integral E). A pair is admissible, as in the released code, when more than
       ``min_ratio`` of its samples exceed ``paf_threshold`` and its score (with the
       distance prior, if ``distance_prior``) is positive.
    3. Each limb is matched on its own with :func:`match_limb` (CVPR 2017 Sec. 2.4; the
       decomposition).
    4. Matched limbs are assembled into people: a limb whose part already belongs to a
       person extends that person, otherwise it starts a new one; two partial people
       joined by a limb merge when they share no keypoint type. Because the tree limbs
       come in search order, each adds a keypoint type not seen before, so the tree
       alone never conflicts.
    5. With ``use_redundant`` the limbs outside the tree are then scored and matched the
       same way; they never start a person, but can add a free part to one, confirm a
       person (their score counts in its mean), or merge two fragments that a missed
       tree limb had split.
    6. People with fewer than ``min_parts`` parts or an overall score below
       ``min_score`` are removed. (The released code keeps people with at least 4 parts
       and a mean of 0.4 per part of its unnormalised sum of part and limb scores.)

    Args:
        heatmaps: ``(K, H, W)`` confidence maps (no background channel).
        pafs: ``(2C, H, W)`` fields, channels ``2c, 2c + 1`` = ``(x, y)`` of limb ``c``.
        limbs: the ``C`` limbs ``(j1, j2)`` of the PAF channels, or a Skeleton.
        stride: image pixels per heatmap pixel (one number or ``(s_x, s_y)``), to map the
            keypoints to the image (``book/notation.md``).
        threshold, nms_kernel, refine: peak finding, see :func:`find_peaks`.
        num_samples, paf_threshold, interpolation: see :func:`limb_scores`.
        min_ratio: fraction of supporting samples a pair needs (strictly exceeded).
        distance_prior: penalise limbs longer than half the map height.
        min_parts, min_score: the fragment filter of step 6.
        use_redundant: also use the limbs outside the tree (step 5).
        root: root of the spanning tree (see :func:`skeleton_tree`).

    Returns:
        The people as :class:`Person`, by decreasing ``score``.
    """
    _check_options(stride=stride, threshold=threshold, num_samples=num_samples, min_parts=min_parts,
                   min_score=min_score, nms_kernel=nms_kernel, paf_threshold=paf_threshold, min_ratio=min_ratio,
                   interpolation=interpolation, root=root)
    pairs = _check_limbs(limbs)
    checks.same_device(heatmaps=heatmaps, pafs=pafs)
    hm = _as_maps(heatmaps, "heatmaps", 3)
    pf = _as_maps(pafs, "pafs", 3)
    _check_pair(hm, pf, pairs)
    k, h, _ = hm.shape
    pairs = _check_limbs(pairs, k, what="K, the heatmaps' channels")
    min_parts = checks.integer(min_parts, "min_parts", minimum=0)
    min_score = checks.number(min_score, "min_score")
    min_ratio = checks.probability(min_ratio, "min_ratio")
    peaks = find_peaks(hm, threshold=threshold, nms_kernel=nms_kernel, refine=refine)
    tree, redundant = skeleton_tree(pairs, k, root=root)
    assembly = _Assembly(k)

    def connect_limb(c: int, allow_new: bool) -> None:
        ja, jb = pairs[c]
        if len(peaks[ja]) == 0 or len(peaks[jb]) == 0:
            return
        scores, ratio = _limb_scores(pf[2 * c], pf[2 * c + 1], peaks[ja][:, :2].float(), peaks[jb][:, :2].float(),
                                     num_samples, paf_threshold, float(h) if distance_prior else None, interpolation)
        for a, b, e in match_limb(scores, (ratio > min_ratio) & (scores > 0)):
            assembly.connect(ja, a, jb, b, e, allow_new)

    for c in tree:
        connect_limb(c, allow_new=True)
    if use_redundant:
        for c in redundant:
            connect_limb(c, allow_new=False)

    people = []
    for person in assembly.people.values():
        parts = person["parts"]
        present = np.flatnonzero(parts >= 0).tolist()
        if len(present) < min_parts:
            continue
        keypoints = torch.full((k, 2), float("nan"))
        scores = torch.zeros(k)
        for j in present:
            peak = peaks[j][int(parts[j])].cpu()
            keypoints[j] = peak[:2]
            scores[j] = peak[2]
        score = (float(scores.sum()) + person["limb"]) / (len(present) + person["n_limbs"])
        if score < min_score:
            continue
        keypoints[present] = heatmap_to_image(keypoints[present], stride)
        people.append(Person(keypoints=keypoints, scores=scores, score=score,
                             parts=torch.as_tensor(parts), num_limbs=int(person["n_limbs"])))
    return sorted(people, key=lambda p: -p.score)


def parse_batch(heatmaps, pafs, limbs: LimbsLike = COCO17.limbs, **kwargs) -> list[list[Person]]:
    """:func:`parse` for every image of a batch: ``heatmaps (B, K, H, W)`` and
    ``pafs (B, 2C, H, W)``; keyword arguments as for :func:`parse`. Returns one list of
    people per image."""
    _check_options(**kwargs)
    checks.same_device(heatmaps=heatmaps, pafs=pafs)
    hm = _as_maps(heatmaps, "heatmaps", 4)
    pf = _as_maps(pafs, "pafs", 4)
    if hm.shape[0] != pf.shape[0]:
        raise ValueError(f"heatmaps and pafs must have the same batch size, got {hm.shape[0]} and {pf.shape[0]}")
    _check_pair(hm, pf, _check_limbs(limbs))
    return [parse(hm[i], pf[i], limbs, **kwargs) for i in range(hm.shape[0])]
