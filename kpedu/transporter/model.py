"""The Transporter's three networks and its keypoint bottleneck (``book/ch06-transporter``;
Kulkarni, Gupta, Ionescu, Borgeaud, Reynolds, Zisserman and Mnih, "Unsupervised Learning of
Object Keypoints for Perception and Control", NeurIPS 2019).

- :class:`Encoder` is the feature extractor ``Phi``: a stack of convolutions, each followed
  by batch normalisation and a ReLU (:data:`REFERENCE_LAYERS`), from an image
  ``(B, 3, H, W)`` to features ``(B, D, H/2, W/2)``.
- :class:`KeypointNet` is ``Psi``: the same stack with its own weights, then a 1x1
  convolution to ``K`` score maps. :func:`keypoint_coordinates` turns each map into a
  point: the scores are averaged over rows (for ``x``) or columns (for ``y``), a softmax
  along the remaining axis gives a distribution, and its mean is the coordinate.
- :func:`gaussian_maps` is the keypoint bottleneck: whatever the score maps looked like,
  only the ``K`` coordinates go on, redrawn as isotropic Gaussians of a fixed width.
- :class:`RefineNet` is ``Omega``: it turns (transported) features back into an image,
  two 3x3 convolutions per resolution and a 2x bilinear upsampling between resolutions,
  halving the channels each time.
- :class:`Transporter` holds the three and runs one (source, target) pair through
  :func:`kpedu.transporter.transport`.

The layer sizes follow the authors' released code (``deepmind-research/transporter``:
encoder filters 16, 16, 32, 32 with kernels 7, 3, 3, 3 and strides 1, 1, 2, 1; decoder
starting at 128 filters; ``gauss_std = 0.1``; batch normalisation); we did not check them
against a table in the paper. ``width`` scales every layer's channels (``1.0``: those
sizes; the book trains ``width=0.5`` on a CPU): a smaller network is a parameter, not
another code path.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .. import checks
from ..codecs import heatmap_to_image, image_to_heatmap

__all__ = ["REFERENCE_LAYERS", "Encoder", "KeypointNet", "RefineNet", "keypoint_coordinates", "gaussian_maps",
           "std_pixels", "Transporter"]

#: The encoder's layers as ``(kernel, stride, channels)`` at ``width=1``: the released
#: code's defaults (``filters=(16, 16, 32, 32)``, ``kernel_sizes=(7, 3, 3, 3)``,
#: ``strides=(1, 1, 2, 1)``). Output stride 2.
REFERENCE_LAYERS = ((7, 1, 16), (3, 1, 16), (3, 2, 32), (3, 1, 32))
#: The refinement network's first number of channels at ``width=1`` (the released code's
#: ``decoder_num_filters``).
REFERENCE_DECODER_FILTERS = 128


def _block(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _channels(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


class Encoder(nn.Module):
    """``Phi``: image ``(B, 3, H, W)`` in [0, 1] to features ``(B, D, H/s, W/s)`` with
    ``s`` the product of the layers' strides (:data:`REFERENCE_LAYERS`: ``s = 2``,
    ``D = 32 * width``)."""

    def __init__(self, width: float = 1.0, layers=REFERENCE_LAYERS) -> None:
        super().__init__()
        width = checks.number(width, "width", minimum=0.0, min_open=True, maximum=8.0)
        blocks, cin, stride = [], 3, 1
        for kernel, st, c in layers:
            cout = _channels(c, width)
            blocks.append(_block(cin, cout, kernel, st))
            cin, stride = cout, stride * st
        self.net = nn.Sequential(*blocks)
        self.out_channels, self.stride = cin, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class KeypointNet(nn.Module):
    """``Psi``: an :class:`Encoder` (its own weights) and a 1x1 convolution to ``K``
    score maps at the encoder's stride."""

    def __init__(self, num_keypoints: int, width: float = 1.0) -> None:
        super().__init__()
        self.num_keypoints = checks.integer(num_keypoints, "num_keypoints", minimum=1)
        self.encoder = Encoder(width)
        self.stride = self.encoder.stride
        self.head = nn.Conv2d(self.encoder.out_channels, self.num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class RefineNet(nn.Module):
    """``Omega``: features ``(B, D, h, w)`` to an image ``(B, 3, h * 2**levels, w * 2**levels)``.

    At each coarser resolution: two 3x3 convolutions (batch norm, ReLU), then a 2x
    bilinear upsampling and half the channels; at the output resolution: one such
    convolution and a 3x3 convolution to the three colour channels (no squashing: the
    reconstruction loss compares it with the frame directly). ``levels`` is the
    encoder's ``log2(stride)``."""

    def __init__(self, in_channels: int, width: float = 1.0, levels: int = 1) -> None:
        super().__init__()
        in_channels = checks.integer(in_channels, "in_channels", minimum=1)
        levels = checks.integer(levels, "levels", minimum=0, maximum=6)
        f = _channels(REFERENCE_DECODER_FILTERS, width)
        stages, cin = [], in_channels
        for _ in range(levels):
            stages.append(nn.Sequential(_block(cin, f, 3, 1), _block(f, f, 3, 1)))
            cin, f = f, max(4, f // 2)
        self.stages = nn.ModuleList(stages)
        self.last = _block(cin, f, 3, 1)
        self.out = nn.Conv2d(f, 3, 3, padding=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = f
        for stage in self.stages:
            x = F.interpolate(stage(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.out(self.last(x))


def keypoint_coordinates(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints from score maps ``(B, K, h, w)`` the way the Transporter's reference code
    (after Jakab et al., NeurIPS 2018) computes them: ``x = sum_j j softmax_j(mean_i s_ij)``
    and ``y = sum_i i softmax_i(mean_j s_ij)``, the mean position under two 1-D
    distributions (one over columns, one over rows). Grid pixel units, centres at integers.

    Returns ``(points (B, K, 2), p_x (B, K, w), p_y (B, K, h))``. The Foundations chapter's
    :func:`kpedu.codecs.soft_argmax` takes one 2-D softmax instead; both are differentiable
    and equal for a map that is a product of a row and a column profile.
    """
    if not isinstance(scores, torch.Tensor) or scores.ndim != 4 or not scores.is_floating_point():
        raise TypeError(f"scores must be a float tensor (B, K, h, w), got {checks.describe(scores)}")
    h, w = scores.shape[-2:]
    px = torch.softmax(scores.mean(-2), dim=-1)
    py = torch.softmax(scores.mean(-1), dim=-1)
    x = (px * torch.arange(w, dtype=px.dtype, device=px.device)).sum(-1)
    y = (py * torch.arange(h, dtype=py.dtype, device=py.device)).sum(-1)
    return torch.stack([x, y], -1), px, py


def std_pixels(gauss_std: float, size) -> float:
    """The bottleneck's width in grid pixels (the standard deviation of
    ``exp(-d^2 / (2 std^2))``) for the reference code's ``gauss_std``: there the Gaussian is
    ``exp(-d^2 / gauss_std^2)`` with ``d`` measured in [-1, 1] across the map, so
    ``std = gauss_std / sqrt(2) * (n - 1) / 2`` pixels for a side of ``n`` pixels (the
    shorter side)."""
    gauss_std = checks.number(gauss_std, "gauss_std", minimum=0.0, min_open=True)
    h, w = checks.size(size, "size")
    return gauss_std / math.sqrt(2) * (min(h, w) - 1) / 2


def gaussian_maps(points: torch.Tensor, size, sigma: float) -> torch.Tensor:
    """The keypoint bottleneck (Kulkarni et al.; the same device as Jakab et al.,
    NeurIPS 2018): ``H_k(u) = exp(-||u - mu_k||^2 / (2 sigma^2))`` on an ``(h, w)`` grid
    with pixel centres at integers.

    Args:
        points: ``(B, K, 2)`` ``(x, y)`` in the grid's pixels.
        size: ``(h, w)`` of the maps (or one int).
        sigma: the fixed standard deviation in grid pixels, ``> 0`` (:func:`std_pixels`
            converts the reference code's ``gauss_std``).

    Returns ``(B, K, h, w)`` maps with peak value 1 at the keypoint, differentiable in
    ``points``.
    """
    pts = checks.points(points, "points", ndim=3, allow_nan=False, shape_text="(B, K, 2)",
                        dtype=points.dtype if isinstance(points, torch.Tensor) and points.is_floating_point() else None)
    h, w = checks.size(size, "size")
    sigma = checks.number(sigma, "sigma", minimum=0.0, min_open=True)
    ys = torch.arange(h, dtype=pts.dtype, device=pts.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=pts.dtype, device=pts.device).view(1, 1, 1, w)
    dx = xs - pts[..., 0, None, None]
    dy = ys - pts[..., 1, None, None]
    return torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))


class Transporter(nn.Module):
    """Feature extractor, keypoint network and refinement network of the Transporter
    (Transporter chapter).

    Args:
        num_keypoints: ``K``.
        width: channel multiplier of all three networks (``1.0``: the reference sizes).
        gauss_std: the bottleneck's width in the reference code's unit (a fraction of the
            [-1, 1] range of the map, in ``exp(-d^2 / gauss_std^2)``; 0.1 there).

    ``forward(source, target)`` returns the reconstruction of ``target`` and everything
    on the way (see :meth:`forward`).
    """

    def __init__(self, num_keypoints: int = 5, width: float = 1.0, gauss_std: float = 0.1) -> None:
        super().__init__()
        self.num_keypoints = checks.integer(num_keypoints, "num_keypoints", minimum=1)
        self.gauss_std = checks.number(gauss_std, "gauss_std", minimum=0.0, min_open=True, maximum=2.0)
        self.features = Encoder(width)
        self.keypoint_net = KeypointNet(self.num_keypoints, width)
        self.stride = self.features.stride
        self.refine = RefineNet(self.features.out_channels, width, levels=int(math.log2(self.stride)))

    def _check(self, x, name: str) -> torch.Tensor:
        dev = next(self.parameters()).device
        x = checks.image(x, name, ndim=4, channels=3, shape_text="(B, 3, H, W)", device=dev)
        if x.shape[-1] % self.stride or x.shape[-2] % self.stride:
            raise ValueError(f"{name}: height and width must be divisible by {self.stride} (the stride), got "
                             f"{tuple(x.shape[-2:])}")
        return x

    def sigma(self, size) -> float:
        """The Gaussians' standard deviation in pixels of a feature grid of ``size``."""
        return std_pixels(self.gauss_std, size)

    def keypoints(self, images) -> dict[str, torch.Tensor]:
        """``Psi`` and the bottleneck on ``images`` ``(B, 3, H, W)``: ``scores`` (``(B, K, h, w)``),
        ``points`` (``(B, K, 2)`` on the feature grid), ``image_points`` (the same in image
        pixels) and ``maps`` (the Gaussian maps ``(B, K, h, w)``)."""
        x = self._check(images, "images")
        scores = self.keypoint_net(x)
        points, _, _ = keypoint_coordinates(scores.float())
        h, w = scores.shape[-2:]
        maps = gaussian_maps(points, (h, w), self.sigma((h, w)))
        return {"scores": scores, "points": points, "maps": maps,
                "image_points": heatmap_to_image(points, self.stride)}

    def maps_at(self, image_points, size) -> torch.Tensor:
        """Gaussian maps ``(B, K, h, w)`` for keypoints given in image pixels (the widget
        moves keypoints and redraws their maps with this)."""
        h, w = checks.size(size, "size")
        pts = image_to_heatmap(torch.as_tensor(image_points, dtype=torch.float32), self.stride)
        return gaussian_maps(pts, (h, w), self.sigma((h, w)))

    def forward(self, source, target) -> dict[str, torch.Tensor]:
        """One (source, target) pair: ``reconstruction`` ``(B, 3, H, W)`` of ``target``,
        the ``transported`` features, the source and target ``features`` and the
        keypoint outputs of both frames (``source_keypoints``, ``target_keypoints``).

        As in the reference code, no gradient flows into the source frame's branch
        (its features and keypoints are detached): the networks learn from the target
        frame, and the source only supplies what stayed put."""
        from .transport import transport

        xs, xt = self._check(source, "source"), self._check(target, "target")
        if xs.shape != xt.shape:
            raise ValueError(f"source and target must have the same shape, got {tuple(xs.shape)} and {tuple(xt.shape)}")
        n = xs.shape[0]
        both = torch.cat([xs, xt])      # one pass per network over both frames (one set of batch statistics)
        feats = self.features(both)
        kp = self.keypoints(both)
        fs, ft = feats[:n].detach(), feats[n:]
        ks = {k: v[:n].detach() for k, v in kp.items()}
        kt = {k: v[n:] for k, v in kp.items()}
        moved = transport(fs, ft, ks["maps"].to(fs.dtype), kt["maps"].to(fs.dtype))
        return {"reconstruction": self.refine(moved), "transported": moved, "source_features": fs,
                "target_features": ft, "source_keypoints": ks, "target_keypoints": kt}
