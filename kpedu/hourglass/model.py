"""Stacked Hourglass Networks (Newell, Yang and Deng, ECCV 2016): the model.

Stacked Hourglass chapter (``book/ch01-hourglass``). The layout follows the paper and
the authors' released training code, module for module:

* :class:`Residual`: the pre-activation bottleneck residual module
  (BN-ReLU-1x1 conv to ``c/2``, BN-ReLU-3x3 conv, BN-ReLU-1x1 conv back to ``c``), with
  a 1x1 convolution on the skip path only when the channel count changes;
* :class:`Hourglass`: recursive; at every level the input forks into a kept branch (one
  residual module at the current resolution) and a lower branch (2x2 max-pool, a
  residual module, the next level or, at the bottom, one more residual module, a
  residual module), whose output is upsampled by nearest neighbour and added to the
  kept branch, so the output has the input's resolution;
* the stem: a 7x7 stride-2 convolution with BN-ReLU, a residual module to 128
  channels, 2x2 max-pool, residual modules to 128 and to ``channels``: a 256x256 image
  becomes a 64x64 feature map;
* per stack: hourglass, a residual module, a 1x1 convolution with BN-ReLU, and a 1x1
  convolution giving the heatmaps; between stacks, the features and the heatmaps are
  each mapped back by a 1x1 convolution and added to the stack's input. No weights are
  shared between stacks.

``StackedHourglass(num_stacks=8, channels=256, num_keypoints=16)`` is the paper's MPII
model; smaller configurations are the same class with smaller numbers.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checks

__all__ = ["Residual", "Hourglass", "StackedHourglass"]


def _even(value, name: str) -> int:
    """A channel count that a bottleneck halves: an even integer ``>= 2``."""
    v = checks.integer(value, name, minimum=2)
    if v % 2:
        raise ValueError(f"{name} must be even (the bottleneck has half as many channels), got {v}")
    return v




class Residual(nn.Module):
    """Pre-activation bottleneck residual module: ``c_in -> c_out/2 -> c_out/2 -> c_out``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        c_in = checks.integer(c_in, "c_in", minimum=1)
        c_out = _even(c_out, "c_out")
        mid = c_out // 2
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + self.skip(x)


def _modules(channels: int, n: int) -> nn.Module:
    """``n`` residual modules in a row (``nModules`` in the authors' code); one is the
    module itself, so the paper's model keeps its parameter names."""
    return Residual(channels, channels) if n == 1 else nn.Sequential(*(Residual(channels, channels) for _ in range(n)))


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels (``depth`` 2x2 poolings) at ``channels``.

    Every residual position holds ``num_modules`` residual modules in a row (the paper:
    1; more modules per stack is how a model with fewer stacks keeps the parameter
    budget of one with more). The input's height and width must be divisible by
    ``2 ** depth``.
    """

    def __init__(self, depth: int, channels: int, num_modules: int = 1):
        super().__init__()
        depth = checks.integer(depth, "depth", minimum=1)
        channels = _even(channels, "channels")
        num_modules = checks.integer(num_modules, "num_modules", minimum=1)
        self.depth = depth
        self.keep = _modules(channels, num_modules)    # kept branch at this resolution
        self.down = _modules(channels, num_modules)    # after the max-pool
        self.inner = (Hourglass(depth - 1, channels, num_modules) if depth > 1
                      else _modules(channels, num_modules))
        self.up = _modules(channels, num_modules)      # before the upsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = self.keep(x)
        y = self.down(F.max_pool2d(x, 2, 2))
        y = self.up(self.inner(y))
        return kept + F.interpolate(y, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    """The full network: stem, ``num_stacks`` hourglasses with intermediate supervision.

    Args:
        num_stacks: number of hourglasses (the paper: 8).
        channels: features inside the hourglasses (the paper: 256).
        num_keypoints: heatmaps per stack (16 for MPII, 17 for COCO).
        depth: poolings per hourglass (the paper: 4, from 64x64 down to 4x4).
        num_modules: residual modules at every residual position of a stack (the
            paper: 1); used to give fewer stacks the parameters of more.
        stem_channels: widths ``(a, b)`` of the stem, ``conv7x7 -> a``, residual
            ``a -> b``, pool, residual ``b -> b``, residual ``b -> channels`` (the paper:
            ``(64, 128)``; small configurations shrink them too).

    ``forward(images)`` takes ``(B, 3, H, W)`` with ``H`` and ``W`` divisible by
    ``4 * 2 ** depth`` (float in ``[0, 1]``, or ``uint8``, scaled by 1/255; on the
    model's device) and returns a list of ``num_stacks`` heatmap tensors
    ``(B, K, H/4, W/4)``, one per stack, all supervised with the same targets.
    """

    def __init__(self, num_stacks: int = 8, channels: int = 256, num_keypoints: int = 16, depth: int = 4,
                 num_modules: int = 1, stem_channels: tuple[int, int] = (64, 128)):
        super().__init__()
        num_stacks = checks.integer(num_stacks, "num_stacks", minimum=1)
        channels = _even(channels, "channels")
        num_keypoints = checks.integer(num_keypoints, "num_keypoints", minimum=1)
        depth = checks.integer(depth, "depth", minimum=1)
        num_modules = checks.integer(num_modules, "num_modules", minimum=1)
        if isinstance(stem_channels, (str, bytes)) or not isinstance(stem_channels, (tuple, list, np.ndarray,
                                                                                      torch.Tensor)):
            raise TypeError(f"stem_channels must be two even numbers >= 2, got {checks.describe(stem_channels)}")
        if len(stem_channels) != 2:
            raise ValueError(f"stem_channels must be two even numbers >= 2, got {len(stem_channels)} values")
        stem = tuple(_even(c, f"stem_channels[{i}]") for i, c in enumerate(stem_channels))
        self.num_stacks, self.channels, self.num_keypoints, self.depth = num_stacks, channels, num_keypoints, depth
        self.num_modules, self.stem_channels = num_modules, stem
        a, b = self.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, a, 7, stride=2, padding=3),
            nn.BatchNorm2d(a),
            nn.ReLU(inplace=True),
            Residual(a, b),
            nn.MaxPool2d(2, 2),
            Residual(b, b),
            Residual(b, channels),
        )
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels, num_modules) for _ in range(num_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                _modules(channels, num_modules),
                nn.Conv2d(channels, channels, 1),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
            for _ in range(num_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_keypoints, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(num_keypoints, channels, 1) for _ in range(num_stacks - 1))

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel (4)."""
        return 4

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        images = checks.network_images(images, self, multiple=4 * 2**self.depth)
        x = self.stem(images)
        outputs = []
        for i in range(self.num_stacks):
            f = self.features[i](self.hourglasses[i](x))
            heatmaps = self.heads[i](f)
            outputs.append(heatmaps)
            if i < self.num_stacks - 1:
                x = x + self.merge_features[i](f) + self.merge_heatmaps[i](heatmaps)
        return outputs
