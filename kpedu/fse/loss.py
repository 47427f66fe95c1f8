"""The two losses of factorized spatial embeddings (``book/ch03-fse``; Thewlis et al.,
ICCV 2017, Sec. 3.3, and the two diversity forms the FSE chapter compares).

- :func:`alignment_loss`: landmarks must move with the image,
  ``L_align = 1/K sum_r || Phi_r(x o g) - g(Phi_r(x)) ||^2``, averaged over the batch.
- :func:`diversity_loss`: the probability maps of different landmarks must not overlap,
  either ``"pairwise"`` ``1/K^2 sum_r sum_r' sum_u p(u|r) p(u|r')`` or the cheaper
  ``"max"`` ``sum_u (sum_r p(u|r) - max_r p(u|r))``, averaged over the batch.
"""
from __future__ import annotations

from typing import Callable

import torch

from .. import checks

__all__ = ["alignment_loss", "diversity_loss", "DIVERSITY_MODES"]

DIVERSITY_MODES = ("pairwise", "max")


def _landmarks(x: torch.Tensor, name: str) -> torch.Tensor:
    """Landmarks ``(B, K >= 1, 2)``: a tensor (a loss needs gradients), finite, its float
    dtype kept (:func:`kpedu.checks.points`)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (B, K, 2), got {checks.describe(x)}")
    x = checks.points(x, name, ndim=3, allow_nan=False, shape_text="(B, K, 2)",
                      dtype=x.dtype if x.dtype.is_floating_point else None)
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (B, K, 2) with K >= 1, got {tuple(x.shape)}")
    return x


def alignment_loss(landmarks_warped: torch.Tensor, landmarks: torch.Tensor,
                   warp: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Equivariance error (the FSE paper's alignment loss): ``1/K sum_r ||Phi_r(x') - g(Phi_r(x))||^2``.

    Args:
        landmarks_warped: ``(B, K, 2)``, ``Phi(x')`` detected on the warped images.
        landmarks: ``(B, K, 2)``, ``Phi(x)`` detected on the original images.
        warp: the point map ``g`` (e.g. a :class:`~kpedu.fse.tps.Warp`); ``None`` when
            ``landmarks`` are already mapped.

    Returns:
        The batch mean, a scalar in squared coordinate units (pixels^2 if the landmarks
        are in pixels). Differentiable in both landmark sets.
    """
    checks.same_device(landmarks_warped=landmarks_warped, landmarks=landmarks)
    a = _landmarks(landmarks_warped, "landmarks_warped")
    b = _landmarks(landmarks, "landmarks")
    if warp is not None:
        b = warp(b)
    if a.shape != b.shape:
        raise ValueError(f"landmark sets differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a - b).square().sum(-1).mean()


def diversity_loss(probs: torch.Tensor, mode: str = "max", check: bool = True) -> torch.Tensor:
    """Overlap between the landmarks' probability maps (Sec. 3.3 of the paper;
    ``L_div`` and ``L'_div`` in the FSE chapter).

    Args:
        probs: ``(B, K, H, W)``, each map non-negative and summing to 1 (a spatial softmax).
        mode: ``"pairwise"``: ``1/K^2 sum_r sum_r' sum_u p(u|r) p(u|r')``, computed as
            written, through the ``K x K`` matrix of overlaps (cost ``O(K^2 HW)``; note
            that it includes ``r = r'``, so it also rewards spreading each map out);
            ``"max"``: ``sum_u (sum_r p(u|r) - max_r p(u|r))``, linear in ``K``, zero
            exactly when no pixel carries mass from two landmarks, at most ``K - 1``.
        check: verify that every map sums to 1 (within 1e-3).

    Returns:
        The batch mean, a scalar.
    """
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"probs must be a tensor of shape (B, K, H, W), got {checks.describe(probs)}")
    probs = checks.maps(probs, "probs", ndim=4, shape_text="(B, K, H, W)")
    mode = checks.choice(mode, "mode", DIVERSITY_MODES)
    b, k, h, w = probs.shape
    flat = probs.reshape(b, k, h * w)
    if check:
        with torch.no_grad():
            sums = flat.float().sum(-1)
            if (flat < 0).any() or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
                raise ValueError("each probability map must be non-negative and sum to 1 (apply a spatial softmax); "
                                 f"sums range {float(sums.min()):.4g} to {float(sums.max()):.4g}")
    if mode == "pairwise":
        overlap = flat @ flat.transpose(1, 2)  # (B, K, K): sum_u p(u|r) p(u|r')
        per_image = overlap.sum(dim=(1, 2)) / (k * k)
    else:
        per_image = (flat.sum(1) - flat.amax(1)).sum(-1)
    return per_image.mean()
