"""The Stacked Hourglass loss: intermediate supervision with masked mean squared error."""
from __future__ import annotations

from typing import Sequence

import torch

from .. import checks

__all__ = ["stacked_heatmap_loss"]


def stacked_heatmap_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, weight: torch.Tensor | None = None,
                         per_stack: bool = False):
    """Mean squared error of every stack's heatmaps against the same Gaussian targets
    (Stacked Hourglass chapter, intermediate supervision).

    Args:
        outputs: list of ``(B, K, H, W)`` predictions, one per stack (tensors; they are
            not checked for NaN, so that a diverging training stops with
            :func:`kpedu.train.fit`'s message).
        target: ``(B, K, H, W)`` ground truth shared by all stacks (finite).
        weight: ``(B, K)``; 0 masks a keypoint (not labelled, or outside the map);
            booleans are 0/1.
        per_stack: also return the loss of each stack.

    Returns:
        The sum over stacks of the masked per-map mean squared error (and the list of
        per-stack values).
    """
    if not isinstance(outputs, (list, tuple)):
        raise TypeError(f"outputs must be a list of (B, K, H, W) tensors, one per stack, got {checks.describe(outputs)}"
                        + ("; wrap one stack's heatmaps in a list" if isinstance(outputs, torch.Tensor) else ""))
    if len(outputs) == 0:
        raise ValueError("outputs must hold at least one stack's heatmaps")
    for i, out in enumerate(outputs):
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"outputs[{i}] must be a (B, K, H, W) tensor, got {checks.describe(out)}")
    target = checks.maps(target, "target", ndim=4, shape_text="(B, K, H, W)")
    checks.same_device(outputs=outputs[0], target=target)
    if weight is None:
        weight = torch.ones(target.shape[:2], device=target.device)
    weight = checks.as_tensor(weight, "weight", allow_bool=True, device=target.device)
    if weight.shape != target.shape[:2]:
        raise ValueError(f"weight must have shape (B, K) = {tuple(target.shape[:2])}, got {tuple(weight.shape)}")
    weight = checks.maps(weight, "weight", ndim=2, shape_text="(B, K)")
    denom = weight.sum().clamp(min=1.0)
    losses = []
    for i, out in enumerate(outputs):
        if out.shape != target.shape:
            raise ValueError(f"outputs[{i}] (stack {i + 1}) has shape {tuple(out.shape)}, which does not match "
                             f"target {tuple(target.shape)}")
        per_map = ((out.float() - target.float()) ** 2).mean(dim=(-2, -1))
        losses.append((per_map * weight).sum() / denom)
    total = torch.stack(losses).sum()
    return (total, [float(v.detach()) for v in losses]) if per_stack else total
