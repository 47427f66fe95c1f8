"""Keypoint extraction with D2-Net: single scale and the image pyramid.

D2-Net chapter, section 2 ("Multiscale detection"). :func:`extract` runs a
:class:`~kpedu.d2net.D2Net` on an image and returns :class:`~kpedu.d2net.matching.Features`:
keypoints in input-image pixels (centres at integers), unit descriptors and scores.

For a pyramid ``scales = (0.5, 1, 2)`` the image is resized to each scale, and each
level's features are added to the coarser levels' accumulated features, resized
bilinearly to its size: ``F~2 = F2 + F1 + F0.5``, ``F~1 = F1 + F0.5``, ``F~0.5 = F0.5``.
Detections are made on every ``F~``, coarsest first. A detection at a coarser level
bans the region it covers at the next finer level (its 2x2 block, when the scale
doubles): finer detections there are discarded. The block is the nearest-neighbour
upsampling of the coarse mask, as in the reference code; with cell centres at
``4u + 3.5`` it sits half a fine cell (2 px) off the coarse cell's centre. Descriptors come from the accumulated
features at each detection.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from .detection import _check as _feature_maps
from .detection import _edge_threshold, hard_detection
from .matching import Features
from .model import D2Net, _float_dtype

__all__ = ["extract", "resize_image", "refine_positions", "pyramid_detections", "SINGLE_SCALE", "MULTI_SCALE"]

SINGLE_SCALE: tuple[float, ...] = (1.0,)
MULTI_SCALE: tuple[float, ...] = (0.5, 1.0, 2.0)


def resize_image(image: torch.Tensor, scale: float, multiple: int = 8) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` by ``scale``, rounding each side to a multiple of ``multiple``.

    Bilinear, with antialiasing when shrinking. Pixel centres stay aligned
    (``align_corners=False``), so a point ``x`` maps to ``(x + 0.5) * W' / W - 0.5``.
    ``image`` is float in [0, 1] or uint8 (scaled by 1/255, :func:`kpedu.checks.image`),
    with any number of channels.
    """
    image = checks.image(image, "image", ndim=4, channels=None, shape_text="(B, C, H, W)", dtype=_float_dtype(image))
    scale = checks.number(scale, "scale", minimum=0, min_open=True)
    multiple = checks.integer(multiple, "multiple", minimum=1)
    return _resize_image(image, scale, multiple)


def _resize_image(image: torch.Tensor, scale: float, multiple: int = 8) -> torch.Tensor:
    h, w = image.shape[-2:]
    nh = max(multiple, int(math.floor(h * scale / multiple + 0.5)) * multiple)
    nw = max(multiple, int(math.floor(w * scale / multiple + 0.5)) * multiple)
    if (nh, nw) == (h, w):
        return image
    return F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1)


def refine_positions(maps: torch.Tensor, b: torch.Tensor, k: torch.Tensor, i: torch.Tensor, j: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-cell refinement by a quadratic fit of map ``k`` around each detection.

    Returns ``(offset (N, 2) as (dx, dy), ok (N,))``. The offset is ``-H^-1 g``, with
    ``g`` and ``H`` the gradient and Hessian from central differences (the reference
    implementation's "handcrafted localization"). ``ok`` is False where the fit is not
    a maximum or moves by half a cell or more, like SIFT's rejection; the caller may
    drop those points. ``b``, ``k``, ``i``, ``j`` are ``(N,)`` integer indices of the
    detections into ``maps`` ``(B, n, h, w)``.
    """
    maps = _feature_maps(maps, "maps")
    index = []
    for name, x, size in (("b", b, maps.shape[0]), ("k", k, maps.shape[1]), ("i", i, maps.shape[2]),
                          ("j", j, maps.shape[3])):
        x = _indices(x, name, size)
        if index and len(x) != len(index[0]):
            raise ValueError(f"b, k, i and j must have the same length, got {len(index[0])} for b and {len(x)} "
                             f"for {name}")
        index.append(x.to(maps.device))
    return _refine_positions(maps, *index)


def _indices(x, name: str, size: int) -> torch.Tensor:
    """``x`` as a 1-D integer tensor of indices in ``[0, size)``."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{name} must be a 1-D integer tensor of indices, got {checks.describe(x)}")
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got shape {tuple(x.shape)}")
    if len(x) and (int(x.min()) < 0 or int(x.max()) >= size):
        raise IndexError(f"{name} must hold indices in [0, {size}), got values in [{int(x.min())}, {int(x.max())}]")
    return x


def _refine_positions(maps: torch.Tensor, b: torch.Tensor, k: torch.Tensor, i: torch.Tensor, j: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    p = F.pad(maps, (1, 1, 1, 1), mode="replicate")
    def at(di, dj):  # noqa: E306
        return p[b, k, i + 1 + di, j + 1 + dj]
    c = at(0, 0)
    gx = 0.5 * (at(0, 1) - at(0, -1))
    gy = 0.5 * (at(1, 0) - at(-1, 0))
    hxx = at(0, 1) - 2 * c + at(0, -1)
    hyy = at(1, 0) - 2 * c + at(-1, 0)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    safe = torch.where(det.abs() > 1e-12, det, torch.ones_like(det))
    dx = -(hyy * gx - hxy * gy) / safe
    dy = -(-hxy * gx + hxx * gy) / safe
    ok = (det > 1e-12) & (hxx < 0) & (dx.abs() < 0.5) & (dy.abs() < 0.5)
    off = torch.stack([dx, dy], dim=-1)
    return torch.where(ok[:, None], off, torch.zeros_like(off)), ok


@torch.no_grad()
def pyramid_detections(model: D2Net, image: torch.Tensor, scales: Sequence[float] = MULTI_SCALE,
                       edge_threshold: float | None = 5.0, refine: bool = True) -> list[dict]:
    """Per pyramid level, what :func:`extract` finds: a list (coarsest first) of dicts.

    Each dict holds ``scale``, ``features`` (accumulated ``F~``, ``(n, h, w)``; the detection
    maps are its ReLU),
    ``detections`` (the hard-detection mask before the ban), ``banned`` (cells covered by
    coarser detections), ``kept`` (detections that survive), ``keypoints`` (``(N, 2)``
    in input pixels), ``descriptors`` (``(N, n)``) and ``scores`` (``(N,)``, the winning
    map's accumulated response divided by the number of levels accumulated).

    ``image`` is ``(C, H, W)`` or ``(1, C, H, W)``, float in [0, 1] or uint8 (scaled by
    1/255, :func:`kpedu.checks.image`), numpy or torch; it is moved to the model's device.
    """
    if not isinstance(model, D2Net):
        raise TypeError(f"model must be a D2Net, got {type(model).__name__}")
    c = model.in_channels
    image = _image(image, "image", model, ndim=(3, 4), shape_text=f"({c}, H, W) or (1, {c}, H, W)")
    if image.dim() == 3:
        image = image[None]
    if image.shape[0] != 1:
        raise ValueError(f"image must be ({c}, H, W) or (1, {c}, H, W), got shape {tuple(image.shape)}")
    scales = _scales(scales)
    if edge_threshold is not None:
        edge_threshold = _edge_threshold(edge_threshold)
    return _pyramid(model, image, scales, edge_threshold, bool(refine))


def _image(image, name: str, model: D2Net, ndim, shape_text: str) -> torch.Tensor:
    """An image for ``model``: :func:`kpedu.checks.image` (float in [0, 1] or uint8), as
    float32 on the model's device. A tensor is moved there, unless it holds no data (the
    ``meta`` device)."""
    dev = next(model.parameters()).device
    if isinstance(image, torch.Tensor) and image.device.type == "meta" and dev.type != "meta":
        raise ValueError(f"{name} is on the meta device (it holds no data) and the model on {dev}; "
                         "move it with .to(device)")
    return checks.image(image, name, ndim=ndim, channels=model.in_channels, shape_text=shape_text, device=dev)


def _scales(scales) -> list[float]:
    """Pyramid scales: a non-empty sequence of finite numbers > 0, sorted."""
    if isinstance(scales, (str, bytes)) or not hasattr(scales, "__iter__"):
        raise TypeError("scales must be a sequence of positive numbers such as (0.5, 1, 2), got "
                        f"{checks.describe(scales)}")
    values = [checks.number(s, f"scales[{n}]", minimum=0, min_open=True) for n, s in enumerate(scales)]
    if not values:
        raise ValueError("scales must hold at least one scale, got an empty sequence")
    return sorted(values)


def _pyramid(model: D2Net, image: torch.Tensor, scales: list[float], edge_threshold: float | None,
             refine: bool) -> list[dict]:
    """:func:`pyramid_detections` on a checked ``(1, C, H, W)`` image on the model's device."""
    H, W = image.shape[-2:]
    levels: list[dict] = []
    acc = None
    banned = None
    for s in scales:
        img = _resize_image(image, s)
        feats = model(img)[0]
        if acc is not None:
            feats = feats + F.interpolate(acc[None], size=feats.shape[-2:], mode="bilinear", align_corners=False)[0]
        acc = feats
        det = hard_detection(feats[None], edge_threshold=edge_threshold)[0]
        if banned is not None:
            banned = F.interpolate(banned[None, None].float(), size=det.shape, mode="nearest")[0, 0] > 0
        else:
            banned = torch.zeros_like(det)
        kept = det & ~banned
        i, j = torch.nonzero(kept, as_tuple=True)
        dmaps = torch.relu(feats)
        k = dmaps[:, i, j].argmax(dim=0)
        pos = torch.stack([j, i], dim=-1).float()
        if refine and len(i):
            off, ok = _refine_positions(dmaps[None], torch.zeros_like(i), k, i, j)
            pos = pos + off
        # descriptors at the (refined) positions, bilinear
        hh, ww = feats.shape[-2:]
        g = torch.stack([(pos[:, 0] + 0.5) / ww * 2 - 1, (pos[:, 1] + 0.5) / hh * 2 - 1], dim=-1)
        desc = F.grid_sample(feats[None], g.view(1, 1, -1, 2), mode="bilinear", align_corners=False,
                             padding_mode="border")[0, :, 0].t()
        desc = F.normalize(desc, dim=1)
        scores = dmaps[k, i, j] / (len(levels) + 1)  # mean over the accumulated levels
        xy = model.cell_to_image(pos)  # pixels of the resized image
        sx, sy = img.shape[-1] / W, img.shape[-2] / H
        xy = torch.stack([(xy[:, 0] + 0.5) / sx - 0.5, (xy[:, 1] + 0.5) / sy - 0.5], dim=-1)
        # the outermost cells sit on the image edge; refinement may push them past it
        xy = torch.stack([xy[:, 0].clamp(-0.5, W - 0.5), xy[:, 1].clamp(-0.5, H - 0.5)], dim=-1)
        levels.append({"scale": s, "features": feats, "detections": det, "banned": banned, "kept": kept,
                       "keypoints": xy, "descriptors": desc, "scores": scores})
        banned = banned | det
    return levels


@torch.no_grad()
def extract(model: D2Net, image: torch.Tensor, scales: Sequence[float] = SINGLE_SCALE,
            max_keypoints: int | None = None, edge_threshold: float | None = 5.0, refine: bool = True) -> Features:
    """D2-Net keypoints, descriptors and scores of one image (D2-Net chapter, section 2).

    Parameters
    ----------
    model
        A :class:`D2Net` (its current layout and device are used; it is run in eval mode).
    image
        ``(3, H, W)`` float in [0, 1] or uint8 in [0, 255] (scaled by 1/255), torch or
        numpy (:func:`kpedu.checks.image`). Sides need not be multiples of 8: each pyramid
        level is resized to the nearest multiple.
    scales
        :data:`SINGLE_SCALE` ``(1,)`` or :data:`MULTI_SCALE` ``(0.5, 1, 2)``, or any list.
    max_keypoints
        Keep the highest-scoring ones (all by default).
    edge_threshold
        The edge-response filter of :func:`hard_detection` (``None`` to switch it off).
    refine
        Sub-cell localisation (:func:`refine_positions`).

    Returns :class:`Features` with ``metric="l2"``, ``keypoints`` in input-image pixels
    and ``scales`` holding each keypoint's pyramid level.
    """
    if not isinstance(model, D2Net):
        raise TypeError(f"model must be a D2Net, got {type(model).__name__}")
    c = model.in_channels
    image = _image(image, "image", model, ndim=3, shape_text=f"({c}, H, W)")
    scales = _scales(scales)
    if max_keypoints is not None:
        max_keypoints = checks.integer(max_keypoints, "max_keypoints", minimum=1)
    if edge_threshold is not None:
        edge_threshold = _edge_threshold(edge_threshold)
    was_training = model.training
    model.eval()
    try:
        levels = _pyramid(model, image[None], scales, edge_threshold, bool(refine))
    finally:
        model.train(was_training)
    kp = torch.cat([lv["keypoints"] for lv in levels]).cpu().numpy().astype(np.float32)
    desc = torch.cat([lv["descriptors"] for lv in levels]).cpu().numpy().astype(np.float32)
    sc = torch.cat([lv["scores"] for lv in levels]).cpu().numpy().astype(np.float32)
    lv_scale = np.concatenate([np.full(len(lv["scores"]), lv["scale"], np.float32) for lv in levels])
    order = np.argsort(-sc, kind="stable")
    if max_keypoints is not None:
        order = order[:max_keypoints]
    return Features(keypoints=kp[order], descriptors=desc[order], scores=sc[order], metric="l2",
                    scales=lv_scale[order])
