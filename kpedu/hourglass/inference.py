"""Stacked Hourglass inference: last-stack heatmaps, flip testing, image keypoints.

Stacked Hourglass chapter. With kpedu's pixel convention (centres at integers) mirroring
an image of width ``W = s * W_h`` maps heatmap column ``x_h`` to ``W_h - 1 - x_h``
exactly, so flipped heatmaps need no one-pixel shift (a correction other code bases
apply because they place pixel centres differently).
"""
from __future__ import annotations

import torch

from ..codecs import GaussianHeatmapCodec

__all__ = ["predict_heatmaps", "predict_keypoints"]


@torch.no_grad()
def predict_heatmaps(model: torch.nn.Module, images: torch.Tensor, flip_test: bool = False,
                     flip_permutation=None, stack: int = -1) -> torch.Tensor:
    """Heatmaps ``(B, K, H/4, W/4)`` of one stack (default: the last).

    With ``flip_test`` the mirrored image is run too; its heatmaps are mirrored back, their
    channels swapped with ``flip_permutation`` (left <-> right), and averaged with the
    direct ones. The model is put in eval mode for the call and restored afterwards.
    """
    if flip_test and flip_permutation is None:
        raise ValueError("flip_test needs the skeleton's flip_permutation")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = images.to(device).float()
        heat = model(x)[stack].float()
        if flip_test:
            perm = torch.as_tensor(flip_permutation, dtype=torch.long, device=device)
            mirrored = model(x.flip(-1))[stack].float().flip(-1)[:, perm]
            heat = 0.5 * (heat + mirrored)
    finally:
        model.train(was_training)
    return heat


def predict_keypoints(model: torch.nn.Module, images: torch.Tensor, codec: GaussianHeatmapCodec | None = None,
                      flip_test: bool = False, flip_permutation=None, stack: int = -1):
    """Keypoints ``(B, K, 2)`` in image pixels and their scores ``(B, K)``: argmax with
    the quarter-pixel shift (``kpedu.codecs``), mapped from heatmap to image pixels."""
    heat = predict_heatmaps(model, images, flip_test, flip_permutation, stack)
    if codec is None:
        codec = GaussianHeatmapCodec(tuple(images.shape[-2:]), tuple(heat.shape[-2:]))
    return codec.decode(heat.cpu())
