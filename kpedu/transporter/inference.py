"""Using a trained Transporter (``book/ch06-transporter``): keypoints of many frames, and
what happens to a reconstruction when one keypoint is moved (the chapter's widget).

Moving keypoint ``k`` of a frame ``x`` from ``mu`` to ``mu'`` is one more transport
(:func:`kpedu.transporter.transport`) with the frame as its own source: the features are
erased at the old place and at the new one, and the features that sat around ``mu`` are
pasted, shifted by ``mu' - mu``, around ``mu'``. The refinement network then draws the
part where the keypoint now is: a direct view of what the keypoint has come to stand for.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import checks
from .model import Transporter

__all__ = ["detect", "reconstruct", "move_keypoint", "shift_features"]


def _model(model) -> Transporter:
    if not isinstance(model, Transporter):
        raise TypeError(f"model must be a kpedu.transporter.Transporter, got {checks.describe(model)}")
    return model


@torch.no_grad()
def detect(model: Transporter, images, batch_size: int = 256) -> torch.Tensor:
    """Keypoints ``(N, K, 2)`` in image pixels (on the CPU) of ``images`` ``(N, 3, H, W)``
    (float in [0, 1] or uint8), in batches, in eval mode."""
    from ..train import evaluating

    model = _model(model)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    dev = next(model.parameters()).device
    if not isinstance(images, torch.Tensor):
        images = checks.image(images, "images", ndim=4, channels=3, shape_text="(N, 3, H, W)")
    out = []
    with evaluating(model):
        for i in range(0, images.shape[0], batch_size):
            x = checks.image(images[i:i + batch_size], "images", ndim=4, channels=3, shape_text="(N, 3, H, W)",
                             device=dev)
            out.append(model.keypoints(x)["image_points"].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.num_keypoints, 2)


@torch.no_grad()
def reconstruct(model: Transporter, source, target) -> dict:
    """Eval-mode :meth:`Transporter.forward` on one pair or a batch (``(3, H, W)`` images
    are given a batch dimension); ``reconstruction`` is clipped to [0, 1] for display."""
    from ..train import evaluating

    model = _model(model)
    s, t = (x.unsqueeze(0) if isinstance(x, torch.Tensor) and x.ndim == 3 else x for x in (source, target))
    with evaluating(model):
        out = model(s, t)
    out["reconstruction"] = out["reconstruction"].clamp(0, 1)
    return out


def shift_features(features: torch.Tensor, offset) -> torch.Tensor:
    """``features`` ``(B, D, h, w)`` translated by ``offset`` ``(B, 2)`` (or ``(2,)``) grid
    pixels ``(dx, dy)``, bilinear, zero outside: ``out(u) = features(u - offset)``."""
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        raise TypeError(f"features must be a tensor (B, D, h, w), got {checks.describe(features)}")
    b, _, h, w = features.shape
    off = torch.as_tensor(offset, dtype=features.dtype, device=features.device).reshape(-1, 2).expand(b, 2)
    theta = torch.zeros(b, 2, 3, dtype=features.dtype, device=features.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * off[:, 0] / w
    theta[:, 1, 2] = -2 * off[:, 1] / h
    grid = F.affine_grid(theta, list(features.shape), align_corners=False)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def move_keypoint(model: Transporter, image, k: int, offset) -> dict:
    """Reconstruct ``image`` ``(3, H, W)`` with keypoint ``k`` moved by ``offset`` ``(dx, dy)``
    image pixels (see the module documentation). Returns ``reconstruction`` ``(3, H, W)``
    in [0, 1], the ``keypoints`` ``(K, 2)`` before and ``moved`` ``(K, 2)`` after (image
    pixels)."""
    from ..train import evaluating
    from .transport import transport

    model = _model(model)
    k = checks.index(k, model.num_keypoints, "k")
    off = checks.points(torch.as_tensor(offset, dtype=torch.float32), "offset", ndim=1, allow_nan=False,
                        shape_text="(dx, dy)")
    x = image.unsqueeze(0) if isinstance(image, torch.Tensor) and image.ndim == 3 else image
    with evaluating(model):
        kp = model.keypoints(x)
        x = checks.image(x, "image", ndim=4, channels=3, device=next(model.parameters()).device)
        feats = model.features(x)
        h, w = feats.shape[-2:]
        old = kp["maps"][:, k:k + 1].to(feats.dtype)
        moved_pts = kp["image_points"].clone()
        moved_pts[:, k] += off.to(moved_pts)
        new = model.maps_at(moved_pts[:, k:k + 1].cpu(), (h, w)).to(feats)
        pasted = shift_features(feats, off.to(feats) / model.stride)
        out = transport(feats, pasted, old, new, mode="joint")
        rec = model.refine(out).clamp(0, 1)
    return {"reconstruction": rec[0].cpu(), "keypoints": kp["image_points"][0].cpu(), "moved": moved_pts[0].cpu()}
