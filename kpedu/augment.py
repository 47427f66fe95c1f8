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
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "affine_matrix",
    "random_affine",
    "warp_images",
    "transform_points",
    "augment_batch",
]


def _vec(x, b: int, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32, device=device)
    if t.ndim == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"{name} must be a number or have shape ({b},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def affine_matrix(size: Sequence[int], rotation=0.0, scale=1.0, translate=None, flip=False,
                  batch: int | None = None, device=None) -> torch.Tensor:
    """Forward transforms ``(B, 3, 3)``: rotate by ``rotation`` degrees (counter-clockwise
    as seen on screen) and scale by ``scale`` about the image centre, then translate by
    ``translate`` ``(B, 2)`` pixels, then mirror left-right where ``flip`` is true.

    ``size`` is the image ``(H, W)``; every argument is a number or has one value per
    image. The centre is ``((W - 1) / 2, (H - 1) / 2)``, so a flip maps ``x`` to
    ``W - 1 - x``, matching ``torch.flip(image, dims=[-1])``.
    """
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive (H, W), got {size!r}")
    if batch is None:
        lens = [len(v) for v in (rotation, scale, flip) if hasattr(v, "__len__")]
        if translate is not None and hasattr(translate, "__len__") and torch.as_tensor(translate).ndim == 2:
            lens.append(len(translate))
        batch = lens[0] if lens else 1
    rot = _vec(rotation, batch, "rotation", device) * (math.pi / 180.0)
    sc = _vec(scale, batch, "scale", device)
    if (sc <= 0).any():
        raise ValueError("scale must be positive")
    fl = _vec(torch.as_tensor(flip, dtype=torch.float32), batch, "flip", device) > 0.5
    tr = torch.zeros(batch, 2, device=device) if translate is None else torch.as_tensor(
        translate, dtype=torch.float32, device=device).expand(batch, 2)
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


def random_affine(batch: int, size: Sequence[int], rotation: float = 30.0, scale=(0.75, 1.25),
                  translate: float = 0.0, flip_prob: float = 0.5, generator: torch.Generator | None = None,
                  device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random transforms as in the Stacked Hourglass recipe: rotation uniform in
    ``[-rotation, rotation]`` degrees, scale uniform in ``scale``, translation uniform in
    ``[-translate, translate]`` times the image side, and a flip with probability
    ``flip_prob``. Returns ``(matrices (B, 3, 3), flipped (B,) bool)``."""
    if batch <= 0:
        raise ValueError(f"batch must be positive, got {batch}")
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    lo, hi = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if not 0 < lo <= hi:
        raise ValueError(f"scale range must satisfy 0 < low <= high, got {scale!r}")
    r = torch.rand(batch, 4, generator=generator)
    h, w = (int(v) for v in size)
    rot = (2 * r[:, 0] - 1) * rotation
    sc = lo + (hi - lo) * r[:, 1]
    tr = (2 * torch.rand(batch, 2, generator=generator) - 1) * translate * torch.tensor([w, h])
    flipped = r[:, 3] < flip_prob
    return affine_matrix(size, rot, sc, tr, flipped, batch=batch).to(device or "cpu"), flipped.to(device or "cpu")


def warp_images(images: torch.Tensor, matrices: torch.Tensor, out_size: Sequence[int] | None = None,
                mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    """Resample ``images (B, C, H, W)`` so that input pixel ``p`` lands at ``A p`` in an
    output of ``out_size`` (default: the input size). Differentiable in the images."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    b, _, h, w = images.shape
    if matrices.shape != (b, 3, 3):
        raise ValueError(f"matrices must be ({b}, 3, 3), got {tuple(matrices.shape)}")
    oh, ow = (h, w) if out_size is None else (int(out_size[0]), int(out_size[1]))
    inv = torch.linalg.inv(matrices.to(images.device, torch.float32))
    ys, xs = torch.meshgrid(torch.arange(oh, device=images.device, dtype=torch.float32),
                            torch.arange(ow, device=images.device, dtype=torch.float32), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)   # output pixel centres
    src = pts @ inv.transpose(1, 2)                                        # (B, HW, 3) input coords
    gx = (2 * src[..., 0] + 1) / w - 1
    gy = (2 * src[..., 1] + 1) / h - 1
    grid = torch.stack([gx, gy], -1).reshape(b, oh, ow, 2)
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode=padding_mode, align_corners=False)


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply ``(B, 3, 3)`` transforms to points ``(B, ..., 2)``."""
    if points.shape[-1] != 2 or points.shape[0] != matrices.shape[0]:
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
    """
    b, _, h, w = images.shape
    perm = torch.as_tensor(flip_permutation, dtype=torch.long, device=keypoints.device)
    if keypoints.shape[-1] != 2 or keypoints.shape[0] != b or visible.shape != keypoints.shape[:-1]:
        raise ValueError(f"keypoints (B, [N,] K, 2) and visible must match images; got {tuple(keypoints.shape)}, "
                         f"{tuple(visible.shape)}")
    if perm.shape != (keypoints.shape[-2],):
        raise ValueError(f"flip_permutation must have {keypoints.shape[-2]} entries, got {tuple(perm.shape)}")
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
