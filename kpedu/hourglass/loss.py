"""The Stacked Hourglass loss: intermediate supervision with masked mean squared error."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["stacked_heatmap_loss"]


def stacked_heatmap_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, weight: torch.Tensor | None = None,
                         per_stack: bool = False):
    """Mean squared error of every stack's heatmaps against the same Gaussian targets
    (Stacked Hourglass chapter, intermediate supervision).

    Args:
        outputs: list of ``(B, K, H, W)`` predictions, one per stack.
        target: ``(B, K, H, W)`` ground truth shared by all stacks.
        weight: ``(B, K)``; 0 masks a keypoint (not labelled, or outside the map).
        per_stack: also return the loss of each stack.

    Returns:
        The sum over stacks of the masked per-map mean squared error (and the list of
        per-stack values).
    """
    if len(outputs) == 0:
        raise ValueError("outputs must hold at least one stack's heatmaps")
    if weight is None:
        weight = torch.ones(target.shape[:2], device=target.device)
    if weight.shape != target.shape[:2]:
        raise ValueError(f"weight must have shape {tuple(target.shape[:2])}, got {tuple(weight.shape)}")
    weight = weight.to(device=target.device, dtype=torch.float32)
    denom = weight.sum().clamp(min=1.0)
    losses = []
    for i, out in enumerate(outputs):
        if out.shape != target.shape:
            raise ValueError(f"stack {i}: output {tuple(out.shape)} does not match target {tuple(target.shape)}")
        per_map = ((out.float() - target.float()) ** 2).mean(dim=(-2, -1))
        losses.append((per_map * weight).sum() / denom)
    total = torch.stack(losses).sum()
    return (total, [float(v.detach()) for v in losses]) if per_stack else total
