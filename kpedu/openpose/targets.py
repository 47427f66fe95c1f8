"""OpenPose training targets: confidence maps, part affinity fields and the loss mask.

OpenPose chapter (``book/ch02-openpose``), after Cao et al., "Realtime Multi-Person 2D
Pose Estimation using Part Affinity Fields" (CVPR 2017) and its journal version
"OpenPose" (TPAMI 2021). Sections cited below are those of the TPAMI version
(3.1 architecture and loss, 3.3 confidence maps, 3.4 part affinity fields).

Conventions (``book/notation.md``): keypoints are ``(N, K, 2)`` arrays of ``(x, y)`` in
*image* pixels with pixel centres at integers, visibility flags ``(N, K)`` follow COCO
(0 not labelled, 1 occluded, 2 visible), and only keypoints with ``v > 0`` are used.
Every target lives on the heatmap grid of a network with output stride ``s``: image
coordinates are mapped with the notation's rule ``x_h = (x + 0.5) / s - 0.5``
(:func:`kpedu.codecs.image_to_heatmap`), and maps are evaluated at the heatmap pixel
centres ``p = (j, i)``, so the value for pixel ``p`` is ``map[..., i, j]``.

- :func:`confidence_maps`: one Gaussian per person and part, merged across people with
  a maximum (Sec. 3.3), ``(K, H, W)``.
- :func:`part_affinity_fields`: unit vectors along every limb, averaged where limbs of
  several people overlap (Sec. 3.4), ``(2C, H, W)``; channel ``2c`` holds the ``x``
  component and channel ``2c + 1`` the ``y`` component of limb ``c``.
- :func:`loss_mask`, :func:`unlabelled_mask`, :func:`scene_loss_mask`: the binary
  weight ``W(p)`` of the loss (Sec. 3.1), 0 where people are present but not annotated.
- :func:`batch_targets`: all three for a batch of scenes with a varying number of
  people (the per-person lists of :func:`kpedu.data.collate_people`).
- :func:`scene_targets`: the chapter's targets of COCO-17 scenes at :data:`STRIDE` 8,
  the paper's with limbs shorter than a heatmap pixel extended (:data:`SCENE_TARGETS`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from ..codecs.heatmap import _size_hw, _stride_pair, encode_heatmaps, image_to_heatmap
from ..data import COCO17
from .parse import _check_limbs

__all__ = [
    "confidence_maps",
    "part_affinity_fields",
    "loss_mask",
    "unlabelled_mask",
    "scene_loss_mask",
    "batch_targets",
    "STRIDE",
    "SCENE_TARGETS",
    "flip_permutation",
    "scene_targets",
]


# ------------------------------------------------------------------------------ helpers


def _keypoints_visible(keypoints, visible) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, K, 2)`` float32 keypoints and ``(N, K)`` bool labelled flags.

    A ``(K, 2)`` array is one person. ``visible=None`` labels every keypoint. Coordinates
    follow :func:`kpedu.checks.points` (NaN allowed where ``v = 0``, never inf), flags
    :func:`kpedu.checks.visibility`.
    """
    kp = checks.points(keypoints, "keypoints", ndim=(2, 3), shape_text="(N, K, 2) or (K, 2)").detach()
    if kp.ndim == 2:
        kp = kp[None]
    n, k, _ = kp.shape
    vis = checks.visibility(visible, "visible", (n, k), device=kp.device)
    if kp.device.type != "meta" and bool(torch.isnan(kp[vis]).any()):
        raise ValueError("keypoints contain NaN for a keypoint marked visible (v > 0); "
                         "NaN is only allowed where visible is 0")
    return kp, vis


def _limb_pairs(limbs, k: int) -> list[tuple[int, int]]:
    """Limbs as a list of ``(j1, j2)`` in ``[0, k)``; a :class:`~kpedu.data.Skeleton` gives its limbs."""
    return _check_limbs(limbs, k, allow_empty=False, what="K, the keypoints' count")


def _positive(value, name: str) -> float:
    return checks.number(value, name, minimum=0.0, min_open=True)


def _mask(x, name: str) -> torch.Tensor:
    """A mask (booleans, or numbers where non-zero means set) as a float tensor; finite."""
    t = checks.as_tensor(x, name, allow_bool=True)
    if t.numel():
        checks.maps(t, name, min_ndim=0, shape_text="a mask")
    return t


def _stride_ints(stride) -> tuple[int, int]:
    """An integer stride ``s`` or ``(s_x, s_y)``, returned as ``(s_y, s_x)`` (row first).

    Floats are refused, even whole ones: a heatmap cell covers a whole block of pixels."""
    if isinstance(stride, (str, bytes)):
        raise TypeError(f"stride must be a positive int or a pair (s_x, s_y), got {checks.describe(stride)}")
    single = not isinstance(stride, (list, tuple, np.ndarray, torch.Tensor)) or \
        (isinstance(stride, (np.ndarray, torch.Tensor)) and stride.ndim == 0)
    values = [stride] if single else list(stride)
    if len(values) != 2 and not single:
        raise ValueError(f"stride must be a positive int or a pair (s_x, s_y), got {len(values)} values")
    out = []
    for i, v in enumerate(values):
        name = "stride" if single else f"stride[{i}]"
        if isinstance(v, (float, np.floating)) or (isinstance(v, (torch.Tensor, np.ndarray))
                                                   and v.dtype in (torch.float16, torch.float32, torch.float64)):
            raise ValueError(f"{name}: the stride of a loss mask must be an integer (a heatmap cell is a whole "
                             f"block of image pixels), got {v!r}")
        out.append(checks.integer(v, name, minimum=1))
    sx, sy = (out[0], out[0]) if single else out
    return sy, sx


# --------------------------------------------------------------------- confidence maps


def confidence_maps(
    keypoints,
    visible=None,
    heatmap_size: int | Sequence[int] = 46,
    stride: float | Sequence[float] = 8,
    sigma: float = 1.0,
) -> torch.Tensor:
    """Ground-truth confidence maps ``S*`` (OpenPose chapter; TPAMI Sec. 3.3).

    Person ``k``'s map for part ``j`` is the unnormalised Gaussian

    .. math:: S^*_{j,k}(p) = \\exp\\left(-\\frac{\\lVert p - x_{j,k} \\rVert^2}{\\sigma^2}\\right)

    peak value 1, evaluated at the heatmap pixel centres ``p``; people are merged
    with a maximum, :math:`S^*_j(p) = \\max_k S^*_{j,k}(p)`, so that two nearby
    people keep two distinct peaks (an average would blur them into one).

    **Note the paper's** :math:`\\sigma^2` **without the factor 2** of the book's Gaussian
    targets (``book/notation.md``, :func:`kpedu.codecs.encode_heatmaps`): ``sigma`` here is
    :math:`\\sqrt{2}` times the standard deviation of the Gaussian, so
    ``confidence_maps(..., sigma=s)`` equals ``encode_heatmaps(..., sigma=s / sqrt(2))``
    for a single person. ``sigma`` is in heatmap pixels. (The released training code
    uses ``exp(-d^2 / 2 sigma^2)`` with ``sigma = 7`` image pixels at stride 8, i.e.
    ``sigma`` about 1.24 in this function's units, and cuts values below 0.01; here the
    Gaussian is not truncated.)

    Args:
        keypoints: ``(N, K, 2)`` (or ``(K, 2)`` for one person) ``(x, y)`` in *image*
            pixels, numpy or torch. ``N`` may be 0.
        visible: ``(N, K)`` COCO flags; only keypoints with ``v > 0`` are drawn, the others
            may hold anything (NaN included). ``None`` draws every keypoint.
        heatmap_size: ``H`` (square) or ``(H, W)`` of the output grid.
        stride: image pixels per heatmap pixel, ``s`` or ``(s_x, s_y)``; keypoints map to
            heatmap coordinates as ``x_h = (x + 0.5) / s - 0.5``.
        sigma: width of the Gaussian in heatmap pixels, in the paper's convention
            :math:`\\exp(-d^2/\\sigma^2)`.

    Returns:
        ``float32`` tensor ``(K, H, W)``; all zeros for a part that no person has labelled.
    """
    kp, vis = _keypoints_visible(keypoints, visible)
    h, w = _size_hw(heatmap_size)
    _stride_pair(stride)
    sigma_f = _positive(sigma, "sigma")
    n, k, _ = kp.shape
    if n == 0:
        return torch.zeros(k, h, w, dtype=torch.float32, device=kp.device)
    kp_h = image_to_heatmap(kp, stride)
    # exp(-d^2 / sigma^2) = exp(-d^2 / (2 (sigma / sqrt 2)^2)): the codec's Gaussian
    maps = encode_heatmaps(kp_h, vis, (h, w), sigma_f / math.sqrt(2.0))  # (N, K, H, W)
    return maps.amax(dim=0)


# ----------------------------------------------------------------- part affinity fields


def part_affinity_fields(
    keypoints,
    visible=None,
    limbs=None,
    heatmap_size: int | Sequence[int] = 46,
    stride: float | Sequence[float] = 8,
    limb_width: float = 1.0,
) -> torch.Tensor:
    """Ground-truth part affinity fields ``L*`` (OpenPose chapter; TPAMI Sec. 3.4).

    For limb ``c`` from part ``j1`` to part ``j2`` of person ``k`` with both endpoints
    labelled (``v > 0``), let :math:`l = \\lVert x_{j2,k} - x_{j1,k} \\rVert` be its length
    and :math:`v = (x_{j2,k} - x_{j1,k}) / l` its unit direction (heatmap coordinates).
    The person's field is :math:`L^*_{c,k}(p) = v` on the pixels ``p`` of the limb and 0
    elsewhere, where a pixel is on the limb when

    .. math:: 0 \\le v \\cdot (p - x_{j1,k}) \\le l \\quad\\text{and}\\quad
              |v_\\perp \\cdot (p - x_{j1,k})| \\le \\sigma_l

    describes a rectangle of length ``l`` and half-width :math:`\\sigma_l` = ``limb_width``,
    boundaries included, with no rounded caps. Where limb ``c`` of several people covers
    a pixel, the field is their average, :math:`L^*_c(p) = \\frac{1}{n_c(p)} \\sum_k
    L^*_{c,k}(p)` with :math:`n_c(p)` the number of non-zero vectors at ``p``, so
    where two limbs cross the field is exactly the mean of their unit vectors (shorter
    than 1 unless they are parallel). Zero-length limbs (coincident endpoints) have no
    direction and are skipped.

    **Channel layout:** the output has ``2C`` channels for ``C = len(limbs)``; channel
    ``2c`` is the ``x`` component and channel ``2c + 1`` the ``y`` component of limb
    ``c`` (the layout of the released OpenPose models).

    Args:
        keypoints: ``(N, K, 2)`` (or ``(K, 2)``) ``(x, y)`` in *image* pixels; ``N`` may be 0.
        visible: ``(N, K)`` COCO flags (``None``: all labelled).
        limbs: ``C`` pairs ``(j1, j2)`` of 0-based keypoint indices, or a
            :class:`~kpedu.data.Skeleton` (its ``limbs``, e.g. ``COCO17`` with 19 limbs).
        heatmap_size: ``H`` or ``(H, W)``.
        stride: image pixels per heatmap pixel (see :func:`confidence_maps`).
        limb_width: :math:`\\sigma_l`, the half-width of the limb in *heatmap* pixels (the
            released training code: 1).

    Returns:
        ``float32`` tensor ``(2C, H, W)``.

    The test against the limb is vectorised over all pixels; the loop runs over limbs and
    people only.
    """
    kp, vis = _keypoints_visible(keypoints, visible)
    if limbs is None:
        raise ValueError("limbs are required: a list of (j1, j2) pairs or a Skeleton (e.g. COCO17)")
    n, k, _ = kp.shape
    pairs = _limb_pairs(limbs, k)
    h, w = _size_hw(heatmap_size)
    _stride_pair(stride)
    width = _positive(limb_width, "limb_width")
    out = torch.zeros(2 * len(pairs), h, w, dtype=torch.float32, device=kp.device)
    if n == 0:
        return out
    kp_h = image_to_heatmap(kp.to(torch.float64), stride)  # float64: exact boundary tests
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=kp.device),
        torch.arange(w, dtype=torch.float64, device=kp.device),
        indexing="ij",
    )  # the pixel (j, i) sits at xs[i, j] = j, ys[i, j] = i
    for c, (j1, j2) in enumerate(pairs):
        total = torch.zeros(2, h, w, dtype=torch.float64, device=kp.device)
        count = torch.zeros(h, w, dtype=torch.float64, device=kp.device)
        for person in range(n):
            if not (vis[person, j1] and vis[person, j2]):
                continue
            a, b = kp_h[person, j1], kp_h[person, j2]
            d = b - a
            length = float(torch.linalg.vector_norm(d))
            if length == 0.0:
                continue  # no direction
            vx, vy = float(d[0]) / length, float(d[1]) / length
            rx, ry = xs - float(a[0]), ys - float(a[1])
            along = vx * rx + vy * ry            # v . (p - x_j1)
            across = (-vy * rx + vx * ry).abs()  # |v_perp . (p - x_j1)|
            on = ((along >= 0) & (along <= length) & (across <= width)).to(torch.float64)
            total[0] += vx * on
            total[1] += vy * on
            count += on
        out[2 * c: 2 * c + 2] = (total / count.clamp(min=1.0)).to(torch.float32)
    return out


# -------------------------------------------------------------------------- loss mask


def loss_mask(unlabelled, heatmap_size: int | Sequence[int], stride: int | Sequence[int] = 8) -> torch.Tensor:
    """The binary loss weight ``W(p)`` on the heatmap grid (OpenPose chapter; TPAMI Sec. 3.1).

    ``W(p) = 0`` where an annotation is missing (people that are not labelled, crowd
    regions), so that the network is not penalised for true detections there.

    Rule: heatmap pixel ``(i, j)`` summarises the ``s_y x s_x`` block of image pixels
    rows ``s_y i .. s_y i + s_y - 1`` and columns ``s_x j .. s_x j + s_x - 1`` (the cell of
    ``book/notation.md``), and it gets ``W = 0`` as soon as **any** pixel of its cell is
    unlabelled (a max-pool of the unlabelled mask): a cell that shows part of an
    unlabelled person is never used to teach "nobody here".

    Args:
        unlabelled: bool ``(H_img, W_img)`` map of unlabelled image pixels, or
            ``(M, H_img, W_img)`` masks whose union is taken (``M`` may be 0). Any non-zero
            value counts as unlabelled.
        heatmap_size: ``H`` or ``(H, W)``; the image must be exactly ``(H * s_y, W * s_x)``.
        stride: integer ``s`` or ``(s_x, s_y)``.

    Returns:
        ``float32`` tensor ``(H, W)`` with values 0 (ignore) and 1 (use).
    """
    sy, sx = _stride_ints(stride)
    h, w = _size_hw(heatmap_size)
    m = _mask(unlabelled, "unlabelled").detach()
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"unlabelled must be (H_img, W_img) or (M, H_img, W_img), got {tuple(m.shape)}")
    if tuple(m.shape[-2:]) != (h * sy, w * sx):
        raise ValueError(
            f"unlabelled mask of size {tuple(m.shape[-2:])} does not match heatmap_size {(h, w)} "
            f"at stride (s_y, s_x) = {(sy, sx)}: expected {(h * sy, w * sx)}"
        )
    if m.shape[0] == 0:
        return torch.ones(h, w, dtype=torch.float32, device=m.device)
    union = (m != 0).any(dim=0).to(torch.float32)
    covered = F.max_pool2d(union[None, None], kernel_size=(sy, sx), stride=(sy, sx))[0, 0]
    return 1.0 - covered


def unlabelled_mask(visible, masks, min_keypoints: int = 1) -> torch.Tensor:
    """Image pixels of people present but not annotated (OpenPose chapter, loss mask).

    A person counts as unlabelled when fewer than ``min_keypoints`` of its keypoints are
    labelled (``v > 0``); by default, when *none* is (COCO persons with
    ``num_keypoints == 0``). The result is the union of those people's masks.

    Args:
        visible: ``(N, K)`` COCO flags.
        masks: ``(N, H_img, W_img)`` per-person segmentation masks (e.g.
            :attr:`kpedu.data.Sample.masks`); people with an empty mask add nothing.
        min_keypoints: labelled keypoints a person needs to count as annotated, ``>= 1``.

    Returns:
        bool tensor ``(H_img, W_img)``.
    """
    min_keypoints = checks.integer(min_keypoints, "min_keypoints", minimum=1)
    v = _mask(visible, "visible")
    m = _mask(masks, "masks")
    if v.ndim != 2 or m.ndim != 3 or v.shape[0] != m.shape[0]:
        raise ValueError(
            f"visible must be (N, K) and masks (N, H_img, W_img) with the same N, "
            f"got {tuple(v.shape)} and {tuple(m.shape)}"
        )
    missing = (v > 0).sum(dim=1) < int(min_keypoints)
    if not bool(missing.any()):
        return torch.zeros(m.shape[-2:], dtype=torch.bool, device=m.device)
    return (m[missing.to(m.device)] != 0).any(dim=0)


def scene_loss_mask(
    visible,
    masks,
    heatmap_size: int | Sequence[int],
    stride: int | Sequence[int] = 8,
    crowd=None,
    min_keypoints: int = 1,
) -> torch.Tensor:
    """``W(p)`` of one scene: :func:`unlabelled_mask` (plus optional ``crowd`` regions,
    bool ``(H_img, W_img)``) downsampled by :func:`loss_mask`. Returns ``(H, W)`` float32."""
    _stride_ints(stride)
    _size_hw(heatmap_size)
    unl = unlabelled_mask(visible, masks, min_keypoints)
    if crowd is not None:
        cr = _mask(crowd, "crowd")
        if tuple(cr.shape) != tuple(unl.shape):
            raise ValueError(f"crowd must be (H_img, W_img) = {tuple(unl.shape)}, got {tuple(cr.shape)}")
        unl = unl | (cr.to(unl.device) != 0)
    return loss_mask(unl, heatmap_size, stride)


# ---------------------------------------------------------------------------- batches


def batch_targets(
    keypoints: Sequence,
    visible: Sequence | None,
    limbs,
    heatmap_size: int | Sequence[int],
    stride: int = 8,
    sigma: float = 1.0,
    limb_width: float = 1.0,
    masks: Sequence | None = None,
    min_keypoints: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets for a batch of scenes (OpenPose chapter).

    Args:
        keypoints: list of ``B`` arrays ``(N_i, K, 2)`` in image pixels (``N_i`` may be 0),
            e.g. ``batch["keypoints"]`` from :func:`kpedu.data.collate_people`.
        visible: list of ``B`` arrays ``(N_i, K)``, or ``None`` (all labelled).
        limbs, heatmap_size, stride, sigma, limb_width: as in :func:`confidence_maps` and
            :func:`part_affinity_fields`.
        masks: list of ``B`` per-person masks ``(N_i, H_img, W_img)``
            (``SyntheticPeople(..., return_masks=True)``), or ``None``: then ``W = 1``
            everywhere. With masks, the loss mask follows :func:`scene_loss_mask`.
        min_keypoints: see :func:`unlabelled_mask`.

    Returns:
        ``(cm, paf, mask)``: ``(B, K, H, W)`` confidence maps, ``(B, 2C, H, W)`` fields
        (channel ``2c`` = x, ``2c + 1`` = y of limb ``c``) and ``(B, H, W)`` float32 loss
        weights, all on the CPU (or on the device of the keypoint tensors).
    """
    if not isinstance(keypoints, (list, tuple)) or len(keypoints) == 0:
        raise ValueError(f"keypoints must be a non-empty list of (N_i, K, 2) arrays, one per image, "
                         f"got {checks.describe(keypoints)}")
    b = len(keypoints)
    for name, value in (("visible", visible), ("masks", masks)):
        if value is not None and (isinstance(value, (str, bytes)) or not hasattr(value, "__len__")):
            raise TypeError(f"{name} must be a list of {b} arrays, one per image, got {checks.describe(value)}")
        if value is not None and len(value) != b:
            raise ValueError(f"{name} has {len(value)} entries for {b} images")
    h, w = _size_hw(heatmap_size)
    _stride_pair(stride)
    if masks is not None:
        _stride_ints(stride)
    _positive(sigma, "sigma")
    _positive(limb_width, "limb_width")
    min_keypoints = checks.integer(min_keypoints, "min_keypoints", minimum=1)
    limbs = _check_limbs(limbs, allow_empty=False)  # in range of K: checked by part_affinity_fields
    cms, pafs, ws = [], [], []
    for i in range(b):
        v = None if visible is None else visible[i]
        cms.append(confidence_maps(keypoints[i], v, (h, w), stride, sigma))
        pafs.append(part_affinity_fields(keypoints[i], v, limbs, (h, w), stride, limb_width))
        if masks is None:
            ws.append(torch.ones(h, w, dtype=torch.float32, device=cms[-1].device))
        else:
            _, vis = _keypoints_visible(keypoints[i], v)
            ws.append(scene_loss_mask(vis, masks[i], (h, w), stride, min_keypoints=min_keypoints).to(cms[-1].device))
    k_set = {c.shape[0] for c in cms}
    if len(k_set) != 1:
        raise ValueError(f"all images must have the same number of keypoint types K, got {sorted(k_set)}")
    return torch.stack(cms), torch.stack(pafs), torch.stack(ws)


# ------------------------------------------------------------------- the chapter's scenes
# COCO-17 targets at the network's output stride, with the chapter's settings: what
# kpedu.openpose.experiment trains on and kpedu.openpose.inference decodes.

#: Output stride of the chapter's network (:class:`~kpedu.openpose.OpenPoseNet`) and targets.
STRIDE = 8

#: The chapter's target settings, in heatmap pixels (:data:`kpedu.openpose.experiment.RECIPE`
#: holds the same values): the paper's ``exp(-d^2 / sigma^2)``, the limb half-width, and the
#: length to which shorter limbs are extended before their field is drawn (0: the paper's
#: rectangle as is).
SCENE_TARGETS = {"sigma": 1.5, "limb_width": 1.0, "paf_min_length": 1.0}


def flip_permutation() -> list[int]:
    """COCO-17's left/right swap, for flips (of images with their keypoints, and of the maps
    in the flip test)."""
    return [int(i) for i in COCO17.flip_permutation]


def _limbs() -> list[tuple[int, int]]:
    """COCO-17's limbs: limb ``c`` is the field in PAF channels ``2c`` and ``2c + 1``."""
    return [tuple(map(int, p)) for p in COCO17.limbs]


def _image_size(image_size) -> int:
    """A square image size: a positive multiple of the stride 8."""
    size = checks.integer(image_size, "image_size", minimum=STRIDE)
    if size % STRIDE:
        raise ValueError(f"image_size must be a positive multiple of {STRIDE}, got {image_size!r}")
    return size


def _target_options(sigma, limb_width, min_length) -> tuple[float, float, float]:
    """``sigma``, ``limb_width`` (> 0) and ``min_length`` (>= 0), :data:`SCENE_TARGETS`'s for ``None``."""
    sigma = SCENE_TARGETS["sigma"] if sigma is None else checks.number(sigma, "sigma", minimum=0.0, min_open=True)
    limb_width = SCENE_TARGETS["limb_width"] if limb_width is None else checks.number(limb_width, "limb_width", minimum=0.0,
                                                                               min_open=True)
    min_length = SCENE_TARGETS["paf_min_length"] if min_length is None else checks.number(min_length, "min_length",
                                                                                   minimum=0.0)
    return sigma, limb_width, min_length


def scene_targets(keypoints: Sequence, visible: Sequence, image_size: int, sigma: float | None = None,
                  limb_width: float | None = None, min_length: float | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence maps ``(B, K, S/8, S/8)`` and PAFs ``(B, 2C, S/8, S/8)`` for a batch of
    scenes (lists of ``(n_i, K, 2)`` keypoints in image pixels and ``(n_i, K)`` flags).

    With ``min_length = 0`` this is :func:`~kpedu.openpose.batch_targets` (the paper's
    targets, TPAMI Sec. 3.3-3.4). With ``min_length > 0`` (:data:`SCENE_TARGETS` ``["paf_min_length"]``, in
    heatmap pixels) a limb shorter than that is extended symmetrically along its direction to
    ``min_length`` before its field is drawn (:func:`~kpedu.openpose.part_affinity_fields`
    on the extended segment). The paper's on-limb rectangle has no caps: a limb much shorter than a
    heatmap pixel (the face of a person 100 px tall at stride 8) may cover no pixel
    centre at all and then has no field, so :func:`~kpedu.openpose.parse` cannot connect
    it (on ground-truth maps of the book's scenes: COCO AP 0.82 with the rectangle as is, 0.90
    with ``min_length = 1``). The released training code draws every limb on the
    pixels within ``limb_width`` of the line inside the limb's box widened by
    ``limb_width``, so short limbs get a field there too.
    """
    sigma, limb_width, min_length = _target_options(sigma, limb_width, min_length)
    hm = _image_size(image_size) // STRIDE
    limbs = _limbs()
    for name, value in (("keypoints", keypoints), ("visible", visible)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a list of arrays, one per image, got {checks.describe(value)}")
    if len(keypoints) == 0 or len(visible) != len(keypoints):
        raise ValueError(f"keypoints and visible must be non-empty lists of the same length, got {len(keypoints)} "
                         f"and {len(visible)}")
    if min_length == 0:
        cm, paf, _ = batch_targets(list(keypoints), list(visible), limbs, hm, stride=STRIDE, sigma=sigma,
                                   limb_width=limb_width)
        return cm, paf
    a_idx = torch.tensor([a for a, _ in limbs])
    b_idx = torch.tensor([b for _, b in limbs])
    seg_limbs = [(2 * c, 2 * c + 1) for c in range(len(limbs))]
    cms, pafs = [], []
    for i, (kp, vis) in enumerate(zip(keypoints, visible)):
        kp = checks.points(kp, f"keypoints[{i}]", ndim=(2, 3), shape_text="(n, K, 2) or (K, 2)")
        if kp.ndim == 2:  # one person (K, 2), as confidence_maps accepts
            kp = kp[None]
        if kp.shape[1] != len(COCO17.keypoint_names):
            raise ValueError(f"keypoints[{i}] must have K = {len(COCO17.keypoint_names)} keypoints (COCO-17), "
                             f"got shape {tuple(kp.shape)}")
        vis = checks.visibility(vis, f"visible[{i}]", kp.shape[:2], device=kp.device)
        cms.append(confidence_maps(kp, vis, hm, STRIDE, sigma))
        # one segment per limb: endpoints (n, C, 2), pushed apart where the limb is short
        a, b = kp[:, a_idx].double(), kp[:, b_idx].double()
        d = b - a
        length = d.norm(dim=-1, keepdim=True) / STRIDE           # in heatmap pixels
        grow = ((min_length - length).clamp(min=0) / 2) * STRIDE  # image pixels at each end
        unit = torch.where(length > 0, d / (length * STRIDE).clamp(min=1e-12), torch.zeros_like(d))
        a, b = a - unit * grow, b + unit * grow
        ends = torch.stack([a, b], dim=2).reshape(len(kp), 2 * len(limbs), 2).float()
        ends = torch.nan_to_num(ends)  # v = 0 keypoints may hold anything
        flags = torch.stack([vis[:, a_idx], vis[:, b_idx]], dim=2).reshape(len(kp), 2 * len(limbs))
        pafs.append(part_affinity_fields(ends, flags, seg_limbs, hm, STRIDE, limb_width))
    return torch.stack(cms), torch.stack(pafs)
