"""Geometric augmentation: rotation, scaling, translation and horizontal flips, applied
consistently to images and keypoints, batched, on any device.

Used by the Stacked Hourglass chapter (the paper trains with rotations of +-30 degrees,
scaling by 0.75-1.25 and flips) and available to every chapter that warps images.

Conventions (``book/notation.md``): pixel centres at integer coordinates, so an image of
width ``W`` spans ``[-0.5, W - 0.5]``. A transform is a ``(B, 3, 3)`` matrix ``A`` mapping
input pixel coordinates to output pixel coordinates, ``p_out = A p_in`` (homogeneous).
Images are resampled with :func:`torch.nn.functional.grid_sample` using the inverse of
``A`` and ``align_corners=False``, which is exactly this pixel convention: the
normalised coordinate ``-1`` is the left edge ``-0.5``.

Arguments are checked where they come in (:mod:`kpedu.checks`): images are float in
``[0, 1]`` or ``uint8`` (divided by 255), with any number of channels (a mask or heatmaps
may be warped with the image); keypoints may hold NaN where they are not labelled (they
stay NaN); angles, scales, translations and probabilities are finite numbers in range.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import checks

__all__ = [
    "affine_matrix",
    "random_affine",
    "warp_images",
    "transform_points",
    "augment_batch",
]


def _values(x, name: str, allow_bool: bool = False) -> torch.Tensor:
    """A number or one value per image, as a finite float32 tensor of 0 or 1 dimensions."""
    t = checks.as_tensor(x, name, dtype=torch.float32, device="cpu" if not isinstance(x, torch.Tensor) else None,
                         allow_bool=allow_bool)
    if t.ndim > 1:
        raise ValueError(f"{name} must be a number or have one value per image (B,), got shape {tuple(t.shape)}")
    if t.device.type != "meta" and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t


def _vec(x, b: int, name: str, device, allow_bool: bool = False) -> torch.Tensor:
    t = _values(x, name, allow_bool)
    if device is not None:
        t = t.to(device)
    if t.ndim == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"{name} must be a number or have shape ({b},), got {tuple(t.shape)}")
    return t


def _float_dtype(x) -> torch.dtype:
    """x's dtype if it is a float tensor, else float32."""
    return x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else torch.float32


def _matrices(matrices, name: str = "matrices", batch: int | None = None) -> torch.Tensor:
    """``(B, 3, 3)`` finite float32 transforms."""
    m = checks.as_tensor(matrices, name, dtype=torch.float32)
    if m.ndim != 3 or tuple(m.shape[1:]) != (3, 3) or (batch is not None and m.shape[0] != batch):
        raise ValueError(f"{name} must have shape ({'B' if batch is None else batch}, 3, 3), got {tuple(m.shape)}")
    if m.device.type != "meta" and not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return m


def affine_matrix(size: Sequence[int], rotation=0.0, scale=1.0, translate=None, flip=False,
                  batch: int | None = None, device=None) -> torch.Tensor:
    """Forward transforms ``(B, 3, 3)``: rotate by ``rotation`` degrees (counter-clockwise
    as seen on screen) and scale by ``scale`` about the image centre, then translate by
    ``translate`` ``(B, 2)`` pixels, then mirror left-right where ``flip`` is true.

    ``size`` is the image ``(H, W)``; every argument is a number or has one value per
    image. The centre is ``((W - 1) / 2, (H - 1) / 2)``, so a flip maps ``x`` to
    ``W - 1 - x``, matching ``torch.flip(image, dims=[-1])``.
    """
    h, w = checks.size(size, "size")
    values = {"rotation": _values(rotation, "rotation"), "scale": _values(scale, "scale"),
              "flip": _values(flip, "flip", allow_bool=True)}
    tr = None
    if translate is not None:
        tr = checks.as_tensor(translate, "translate", dtype=torch.float32,
                              device="cpu" if not isinstance(translate, torch.Tensor) else None)
        if tr.shape[-1:] != (2,) or tr.ndim > 2:
            raise ValueError(f"translate must be (dx, dy) or have shape (B, 2), got shape {tuple(tr.shape)}")
        if tr.device.type != "meta" and not bool(torch.isfinite(tr).all()):
            raise ValueError(f"translate must be finite, got {tr.tolist()}")
    if batch is None:
        lens = [len(v) for v in values.values() if v.ndim == 1]
        if tr is not None and tr.ndim == 2:
            lens.append(len(tr))
        batch = lens[0] if lens else 1
    else:
        batch = checks.integer(batch, "batch", minimum=1)
    rot = _vec(values["rotation"], batch, "rotation", device) * (math.pi / 180.0)
    sc = _vec(values["scale"], batch, "scale", device)
    if (sc <= 0).any():
        raise ValueError(f"scale must be positive, got {sc.min().item()}")
    fl = _vec(values["flip"], batch, "flip", device) > 0.5
    if tr is None:
        tr = torch.zeros(batch, 2, device=device)
    else:
        tr = tr.to(device)
        if tr.ndim == 2 and tr.shape[0] != batch:
            raise ValueError(f"translate must be (dx, dy) or have shape ({batch}, 2), got shape {tuple(tr.shape)}")
        tr = tr.expand(batch, 2)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # screen coordinates have y down, so a counter-clockwise rotation on screen is -rot
    cos, sin = torch.cos(rot), torch.sin(rot)
    a = torch.zeros(batch, 3, 3, device=device)
    a[:, 0, 0], a[:, 0, 1] = sc * cos, sc * sin
    a[:, 1, 0], a[:, 1, 1] = -sc * sin, sc * cos
    a[:, 0, 2] = cx - (a[:, 0, 0] * cx + a[:, 0, 1] * cy) + tr[:, 0]
    a[:, 1, 2] = cy - (a[:, 1, 0] * cx + a[:, 1, 1] * cy) + tr[:, 1]
    a[:, 2, 2] = 1.0
    mirror = torch.eye(3, device=device).repeat(batch, 1, 1)
    mirror[fl, 0, 0] = -1.0
    mirror[fl, 0, 2] = w - 1.0
    return mirror @ a


def _scale_range(scale) -> tuple[float, float]:
    """``scale`` as ``(low, high)``: one number ``> 0`` or a pair with ``0 < low <= high``."""
    if isinstance(scale, (tuple, list)) or (isinstance(scale, (torch.Tensor, np.ndarray)) and scale.ndim == 1):
        if len(scale) != 2:
            raise ValueError(f"scale must be a number or a range (low, high), got {len(scale)} values")
        lo = checks.number(scale[0], "scale[0] (low)", minimum=0.0, min_open=True)
        hi = checks.number(scale[1], "scale[1] (high)", minimum=0.0, min_open=True)
        if lo > hi:
            raise ValueError(f"scale range must satisfy 0 < low <= high, got {tuple(scale)!r}")
        return lo, hi
    s = checks.number(scale, "scale", minimum=0.0, min_open=True)
    return s, s


def random_affine(batch: int, size: Sequence[int], rotation: float = 30.0, scale=(0.75, 1.25),
                  translate: float = 0.0, flip_prob: float = 0.5, generator: torch.Generator | None = None,
                  device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random transforms as in the Stacked Hourglass recipe: rotation uniform in
    ``[-rotation, rotation]`` degrees, scale uniform in ``scale``, translation uniform in
    ``[-translate, translate]`` times the image side, and a flip with probability
    ``flip_prob``. Returns ``(matrices (B, 3, 3), flipped (B,) bool)``.

    ``rotation`` (degrees) and ``translate`` are finite numbers ``>= 0``, ``scale`` a number
    ``> 0`` or a range ``(low, high)`` with ``0 < low <= high``, ``flip_prob`` in ``[0, 1]``."""
    batch = checks.integer(batch, "batch", minimum=1)
    h, w = checks.size(size, "size")
    rotation = checks.number(rotation, "rotation", minimum=0.0)
    translate = checks.number(translate, "translate", minimum=0.0)
    flip_prob = checks.probability(flip_prob, "flip_prob")
    lo, hi = _scale_range(scale)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {checks.describe(generator)}")
    r = torch.rand(batch, 4, generator=generator)
    rot = (2 * r[:, 0] - 1) * rotation
    sc = lo + (hi - lo) * r[:, 1]
    tr = (2 * torch.rand(batch, 2, generator=generator) - 1) * translate * torch.tensor([w, h])
    flipped = r[:, 3] < flip_prob
    return affine_matrix(size, rot, sc, tr, flipped, batch=batch).to(device or "cpu"), flipped.to(device or "cpu")


def warp_images(images: torch.Tensor, matrices: torch.Tensor, out_size: Sequence[int] | None = None,
                mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    """Resample ``images (B, C, H, W)`` so that input pixel ``p`` lands at ``A p`` in an
    output of ``out_size`` (default: the input size). Differentiable in the images.

    ``images`` are float in [0, 1] (a float tensor keeps its dtype) or ``uint8`` (divided
    by 255), with any number of channels; ``matrices`` must be invertible."""
    images = checks.image(images, "images", ndim=4, channels=None, dtype=_float_dtype(images))
    b, _, h, w = images.shape
    matrices = _matrices(matrices, "matrices", b)
    oh, ow = (h, w) if out_size is None else checks.size(out_size, "out_size")
    checks.choice(mode, "mode", ("bilinear", "nearest", "bicubic"))
    checks.choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))
    inv, info = torch.linalg.inv_ex(matrices.to(images.device))
    if images.device.type != "meta" and (bool((info != 0).any()) or not bool(torch.isfinite(inv).all())):
        raise ValueError("matrices must be invertible, got a singular transform")
    ys, xs = torch.meshgrid(torch.arange(oh, device=images.device, dtype=torch.float32),
                            torch.arange(ow, device=images.device, dtype=torch.float32), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)   # output pixel centres
    src = pts @ inv.transpose(1, 2)                                        # (B, HW, 3) input coords
    gx = (2 * src[..., 0] + 1) / w - 1
    gy = (2 * src[..., 1] + 1) / h - 1
    grid = torch.stack([gx, gy], -1).reshape(b, oh, ow, 2)
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode=padding_mode, align_corners=False)


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply ``(B, 3, 3)`` transforms to points ``(B, ..., 2)`` (NaN stays NaN); returns
    float32 points of the same shape."""
    points = checks.points(points, "points", ndim=(2, 3, 4), shape_text="(B, ..., 2)")
    matrices = _matrices(matrices, "matrices")
    if points.shape[0] != matrices.shape[0]:
        raise ValueError(f"points (B, ..., 2) and matrices (B, 3, 3) must share B, got "
                         f"{tuple(points.shape)} and {tuple(matrices.shape)}")
    m = matrices.to(points.device, torch.float32)
    flat = points.reshape(points.shape[0], -1, 2).float()
    out = flat @ m[:, :2, :2].transpose(1, 2) + m[:, None, :2, 2]
    return out.reshape(points.shape)


def augment_batch(images: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor, flip_permutation,
                  rotation: float = 30.0, scale=(0.75, 1.25), translate: float = 0.0, flip_prob: float = 0.5,
                  generator: torch.Generator | None = None):
    """Randomly rotate, scale, translate and flip a batch, keeping labels consistent.

    ``images (B, 3, H, W)``, ``keypoints (B, K, 2)`` or ``(B, N, K, 2)``, ``visible``
    with the keypoints' leading shape. Flipped samples have their keypoint types
    swapped with ``flip_permutation`` (a left wrist becomes a right wrist); keypoints
    that leave the image get visibility 0. Returns ``(images, keypoints, visible)``.

    ``images`` may have any number of channels (a mask warped with the image);
    ``keypoints`` may hold NaN where not labelled; ``visible`` keeps its dtype.
    """
    images = checks.image(images, "images", ndim=4, channels=None, dtype=_float_dtype(images))
    b, _, h, w = images.shape
    keypoints = checks.points(keypoints, "keypoints", ndim=(3, 4), shape_text="(B, K, 2) or (B, N, K, 2)")
    if keypoints.shape[0] != b:
        raise ValueError(f"keypoints must have one row per image ({b}), got shape {tuple(keypoints.shape)}")
    checks.visibility(visible, "visible", keypoints.shape[:-1])
    visible = torch.as_tensor(visible, device=keypoints.device)
    perm = checks.as_array(flip_permutation, "flip_permutation", dtype=None).reshape(-1)
    k = keypoints.shape[-2]
    if perm.dtype.kind not in "iu":
        raise TypeError(f"flip_permutation must hold integer indices, got dtype {perm.dtype}")
    if perm.shape != (k,):
        raise ValueError(f"flip_permutation must have {k} entries, got {perm.shape[0]}")
    if sorted(perm.tolist()) != list(range(k)):
        raise ValueError(f"flip_permutation must be a permutation of 0..{k - 1}, got {perm.tolist()}")
    perm = torch.as_tensor(perm, dtype=torch.long, device=keypoints.device)
    mats, flipped = random_affine(b, (h, w), rotation, scale, translate, flip_prob, generator)
    mats, flipped = mats.to(images.device), flipped.to(keypoints.device)
    out_img = warp_images(images, mats)
    kp = transform_points(keypoints, mats)
    vis = visible.clone()
    if flipped.any():
        kp[flipped] = kp[flipped][..., perm, :]
        vis[flipped] = vis[flipped][..., perm]
    inside = (kp[..., 0] > -0.5) & (kp[..., 0] < w - 0.5) & (kp[..., 1] > -0.5) & (kp[..., 1] < h - 0.5)
    vis = torch.where(inside, vis, torch.zeros_like(vis))
    return out_img, kp, vis
