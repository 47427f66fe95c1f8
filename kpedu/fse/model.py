"""The landmark network of factorized spatial embeddings (``book/ch03-fse``; Thewlis et al.,
ICCV 2017, Sec. 3.3).

Any keypoint network that outputs ``K`` score maps will do. A per-channel spatial softmax
turns each map into a probability ``p(u | x, r)`` over pixels ``u``, and landmark ``r`` is
its expected position, ``Phi_r(x) = sum_u u p(u | x, r)`` (:func:`kpedu.codecs.soft_argmax`).

Two backbones share one class, :class:`LandmarkNet`:

- ``"unet"``: a small encoder-decoder (:class:`UNetBackbone`): ``depth`` stride-2
  stages down, then back up to ``out_stride`` with skip connections, so each score map
  sees the whole face but is read at fine resolution;
- ``"hourglass"``: one :class:`kpedu.hourglass.StackedHourglass` (stride 4), the
  Hourglass chapter's network reused.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .. import checks
from ..codecs import heatmap_to_image, soft_argmax

__all__ = ["UNetBackbone", "LandmarkNet"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class UNetBackbone(nn.Module):
    """Encoder-decoder producing ``out_channels`` maps at ``out_stride``.

    Encoder: two 3x3 convolutions at full resolution (``width`` channels), then ``depth``
    stages, each a stride-2 convolution and a 3x3 convolution, doubling the width.
    Decoder: bilinear upsampling by 2, concatenation with the encoder features of the
    same resolution, two 3x3 convolutions, until the resolution is ``1 / out_stride``;
    a final 1x1 convolution gives the scores. Input sides must be divisible by
    ``2 ** depth``.
    """

    def __init__(self, out_channels: int, width: int = 16, depth: int = 3, out_stride: int = 2) -> None:
        super().__init__()
        out_channels = checks.integer(out_channels, "out_channels", minimum=1)
        width = checks.integer(width, "width", minimum=1)
        depth = checks.integer(depth, "depth", minimum=1)
        out_stride = checks.integer(out_stride, "out_stride", minimum=1)
        if out_stride & (out_stride - 1) or out_stride > 2 ** depth:
            raise ValueError(f"out_stride must be a power of 2 no larger than 2**depth = {2 ** depth}, got {out_stride}")
        self.depth, self.out_stride = depth, out_stride
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.stem = nn.Sequential(_conv(3, width), _conv(width, width))
        self.down = nn.ModuleList(nn.Sequential(_conv(widths[i], widths[i + 1], 2), _conv(widths[i + 1], widths[i + 1]))
                                  for i in range(depth))
        up_levels = depth - int(math.log2(out_stride))
        self.up = nn.ModuleList()
        cin = widths[depth]
        for j in range(up_levels):
            skip = widths[depth - 1 - j]
            self.up.append(nn.Sequential(_conv(cin + skip, skip), _conv(skip, skip)))
            cin = skip
        self.head = nn.Conv2d(cin, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        skips = [f]
        for stage in self.down:
            f = stage(f)
            skips.append(f)
        f = skips.pop()
        for stage in self.up:
            skip = skips.pop()
            f = F.interpolate(f, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            f = stage(torch.cat([f, skip], 1))
        return self.head(f)


class LandmarkNet(nn.Module):
    """``K`` unsupervised landmarks from an image (``Phi(x)`` in the FSE chapter).

    Args:
        num_landmarks: ``K``.
        backbone: ``"unet"`` (:class:`UNetBackbone`) or ``"hourglass"`` (one
            :class:`~kpedu.hourglass.StackedHourglass`, output stride 4).
        width: channels of the first ``"unet"`` level, or inside the hourglass.
        depth: downsamplings of the backbone.
        out_stride: score-map stride for ``"unet"`` (the hourglass is fixed at 4).
        beta: inverse temperature of the spatial softmax.

    ``forward(images)`` returns the score maps ``(B, K, H / s, W / s)``;
    :meth:`detect` returns landmarks ``(B, K, 2)`` in image pixels and the
    probability maps.
    """

    def __init__(self, num_landmarks: int = 10, backbone: str = "unet", width: int = 16, depth: int = 3,
                 out_stride: int = 2, beta: float = 1.0) -> None:
        super().__init__()
        num_landmarks = checks.integer(num_landmarks, "num_landmarks", minimum=1)
        beta = checks.number(beta, "beta", minimum=0, min_open=True)
        backbone = checks.choice(backbone, "backbone", ("unet", "hourglass"))
        width = checks.integer(width, "width", minimum=1)
        depth = checks.integer(depth, "depth", minimum=1)
        self.num_landmarks, self.backbone_name, self.beta = num_landmarks, backbone, float(beta)
        if backbone == "unet":
            self.backbone = UNetBackbone(num_landmarks, width, depth, out_stride)
            self.stride = out_stride
            self.multiple = 2 ** depth
        elif backbone == "hourglass":
            from ..hourglass import StackedHourglass

            w = max(2, width + width % 2)
            self.backbone = StackedHourglass(num_stacks=1, channels=w, num_keypoints=num_landmarks, depth=depth,
                                             stem_channels=(max(2, (w // 2) + (w // 2) % 2), w))
            self.stride = 4
            self.multiple = 4 * 2 ** depth

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Score maps ``(B, K, H / s, W / s)`` of ``images`` ``(B, 3, H, W)``: float in
        [0, 1] or uint8 (scaled by 1/255), on the model's device (:func:`kpedu.checks.image`)."""
        dev = next(self.parameters()).device
        checks.same_device(images=images, model=next(self.parameters()))
        is_tensor = isinstance(images, torch.Tensor)
        images = checks.image(images, "images", ndim=4, channels=3, shape_text="(B, 3, H, W)",
                              dtype=images.dtype if is_tensor and images.dtype.is_floating_point else torch.float32,
                              device=None if is_tensor else dev)
        h, w = images.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"image sides must be divisible by {self.multiple}, got {h} x {w}")
        out = self.backbone(images)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def detect(self, images: torch.Tensor, scores: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Landmarks as expected positions of the spatial softmax (note, point 7).

        Returns ``{"landmarks": (B, K, 2) image pixels, "probs": (B, K, h, w), "scores": ...}``.
        The softmax is computed in float32 even under autocast.
        """
        if scores is None:
            scores = self(images)
        else:
            scores = checks.maps(scores, "scores", ndim=4, shape_text="(B, K, h, w)")
        coords, probs = soft_argmax(scores.float(), beta=self.beta, return_probs=True)
        return {"landmarks": heatmap_to_image(coords, self.stride), "probs": probs, "scores": scores}
