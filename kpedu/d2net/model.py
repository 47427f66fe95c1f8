"""D2-Net's feature extractor: VGG16 up to conv4_3 (Dusmanu et al., CVPR 2019).

D2-Net chapter, section 1 ("One network, two readings"). The network ``F`` maps an image
to a tensor of ``n`` feature maps. Each map ``D^k`` is a detector; the vector of all maps
at one cell is that cell's descriptor.

Layout of VGG16 up to conv4_3 (3x3 convolutions, each followed by a ReLU except conv4_3):

=========  ==============================  ==============
block      layers                          channels
=========  ==============================  ==============
conv1      conv1_1, conv1_2, max-pool 2/2  64
conv2      conv2_1, conv2_2, max-pool 2/2  128
conv3      conv3_1..conv3_3, pool3         256
conv4      conv4_1..conv4_3                512 (descriptor size)
=========  ==============================  ==============

D2-Net's test-time changes, ``dilated=True`` (the default here):

* pool3 becomes a 2x2 *average* pool with stride 1;
* the conv4 layers are dilated by 2 to keep their receptive field.

Features then come at stride 4 instead of 8. The same weights run in both layouts
(:meth:`D2Net.set_dilated`), because pooling has no parameters and dilation changes only
how a kernel is applied. ``width`` scales every channel count. The book's small
configuration is ``D2Net(width=0.25)``, with 128-dimensional descriptors. No pretrained
VGG weights can be downloaded here, so the chapter trains from scratch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checks

__all__ = ["D2Net", "VGG16_CONV4"]

#: VGG16's convolution blocks up to conv4_3: (number of 3x3 convolutions, channels).
VGG16_CONV4: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512))


class _Pool3(nn.Module):
    """pool3: 2x2 max-pool with stride 2, or (dilated layout) 2x2 average pool with stride 1.

    The stride-1 pool is padded by one row and column on the bottom and right (replicating
    the edge), so the map keeps its size: ``H/4 x W/4`` for an input divisible by 4.
    """

    def __init__(self, dilated: bool):
        super().__init__()
        self.dilated = dilated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dilated:
            return F.avg_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
        return F.max_pool2d(x, 2, stride=2)


class D2Net(nn.Module):
    """VGG16 to conv4_3 as D2-Net's dense feature extractor (D2-Net chapter, section 1).

    Parameters
    ----------
    width
        Channel multiplier: conv4_3 gives ``round(512 * width)`` maps (at least 8 channels
        per layer). ``1.0`` is the paper's network (7.6 M parameters); the book uses 0.25.
    dilated
        ``True``: D2-Net's test-time layout (stride-1 average pool3, dilated conv4,
        stride 4). ``False``: plain VGG16 (stride 8).
    in_channels
        Image channels (3).
    batch_norm
        Batch normalisation after every convolution, as in VGG16-BN, with the one after
        conv4_3 having no learned scale or shift. Each output channel is then centred and
        scaled over the batch and the image, so the descriptors cannot all collapse onto
        one vector. The book's recipe needs this to train from scratch.

    ``forward(images)`` takes ``(B, C, H, W)`` images in [0, 1] (normalised inside by
    ImageNet mean and std, like VGG) and returns the feature tensor ``F``,
    ``(B, n, H/s, W/s)``: conv4_3's output before its ReLU. Descriptors are its
    normalised channel vectors; the detection maps are ``D = ReLU(F)``
    (:func:`kpedu.d2net.detection_maps`), as in the reference training code. Spatial
    sizes must be multiples of 8.

    Cell ``(i, j)`` of ``F`` is centred on image pixel
    ``(x, y) = (stride * j + offset, stride * i + offset)`` (:meth:`cell_to_image`), with
    ``offset = 3.5`` in both layouts. Pixel centres sit at integers, as in the book's
    notation page: two 2x2 pools put cell ``u`` at ``4u + 1.5``, and pool3's window adds
    half a stride-4 cell.
    """

    def __init__(self, width: float = 1.0, dilated: bool = True, in_channels: int = 3, batch_norm: bool = False):
        super().__init__()
        width = checks.number(width, "width", minimum=0, maximum=4, min_open=True)
        in_channels = checks.integer(in_channels, "in_channels", minimum=1)
        self.width = float(width)
        self.channels = [max(8, int(round(c * width))) for _, c in VGG16_CONV4]
        layers: list[nn.Module] = []
        self.conv4: list[nn.Conv2d] = []
        c_in = in_channels
        self.batch_norm = bool(batch_norm)
        for b, ((n, _), c) in enumerate(zip(VGG16_CONV4, self.channels)):
            for r in range(n):
                conv = nn.Conv2d(c_in, c, 3, padding=1)
                last = b == 3 and r == n - 1
                layers.append(conv)
                if batch_norm:  # conv4_3's is without scale and shift: the output is centred per channel
                    layers.append(nn.BatchNorm2d(c, affine=not last))
                if not last:  # conv4_3 is the output: no ReLU (detection applies it)
                    layers.append(nn.ReLU(inplace=True))
                if b == 3:
                    self.conv4.append(conv)
                c_in = c
            if b < 2:
                layers.append(nn.MaxPool2d(2, stride=2))
            elif b == 2:
                self.pool3 = _Pool3(dilated)
                layers.append(self.pool3)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406][:in_channels] + [0.45] * max(0, in_channels - 3)
                                                  ).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225][:in_channels] + [0.225] * max(0, in_channels - 3)
                                                 ).view(1, -1, 1, 1), persistent=False)
        self.in_channels = in_channels
        self.set_dilated(dilated)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    # -- layout ---------------------------------------------------------------------------
    def set_dilated(self, dilated: bool) -> "D2Net":
        """Switch between D2-Net's test-time layout (stride 4) and plain VGG16 (stride 8)."""
        self.dilated = bool(dilated)
        self.pool3.dilated = self.dilated
        d = 2 if self.dilated else 1
        for conv in self.conv4:
            conv.dilation = (d, d)
            conv.padding = (d, d)
        return self

    @property
    def stride(self) -> int:
        """Input pixels per feature cell: 4 (dilated layout) or 8."""
        return 4 if self.dilated else 8

    @property
    def offset(self) -> float:
        """Image coordinate of the centre of cell 0 (3.5 in both layouts)."""
        return 3.5

    @property
    def descriptor_dim(self) -> int:
        """Number of feature maps ``n`` (= descriptor length)."""
        return self.channels[-1]

    def cell_to_image(self, cells: torch.Tensor) -> torch.Tensor:
        """Map ``(..., 2)`` cell coordinates (x = column, y = row) to image pixels (integer
        cells become float; NaN, a missing point, stays NaN; ``inf`` is an error)."""
        return _coords(cells, "cells") * self.stride + self.offset

    def image_to_cell(self, points: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`cell_to_image` (fractional cell coordinates)."""
        return (_coords(points, "points") - self.offset) / self.stride

    # -- forward --------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``F`` of ``images`` ``(B, C, H, W)``: float in [0, 1] or uint8 (scaled by 1/255),
        on the model's device (:func:`kpedu.checks.image`)."""
        checks.same_device(images=images, model=self.mean)
        images = checks.image(images, "images", ndim=4, channels=self.in_channels,
                              shape_text=f"(B, {self.in_channels}, H, W)", dtype=_float_dtype(images),
                              device=None if isinstance(images, torch.Tensor) else self.mean.device)
        h, w = images.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"image height and width must be multiples of 8, got {h}x{w}")
        return self.features((images - self.mean) / self.std)


def _float_dtype(x) -> torch.dtype:
    """``x``'s own floating dtype (float64 stays float64), float32 for anything else."""
    return x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else torch.float32


def _coords(x, name: str):
    """``(..., 2)`` coordinates: tensors stay tensors (their float dtype kept), anything
    else becomes a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        return checks.points(x, name, ndim=None, allow_nan=True, dtype=_float_dtype(x))
    return checks.points(x, name, ndim=None, allow_nan=True, backend="numpy")
