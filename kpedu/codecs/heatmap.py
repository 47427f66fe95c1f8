"""Gaussian heatmaps: encoding keypoints as targets and decoding them back.

Used from the Foundations chapter on (``book/ch00-foundations/02-coordinates-vs-heatmaps``
and ``03-decoding``) and by every heatmap-based model in the book.

Conventions (``book/notation.md``): keypoints are ``(x, y)`` in *heatmap* pixels, pixel
centres at integer coordinates, so the pixel in row ``i`` and column ``j`` is centred
on ``(x=j, y=i)``; heatmaps are ``(..., K, H, W)``.

The target for keypoint ``k`` at position ``x_k`` is the unnormalised Gaussian

.. math:: G_k(p) = \\exp\\left(-\\frac{\\lVert p - x_k \\rVert^2}{2\\sigma^2}\\right),

peak value 1 at the keypoint, evaluated at every pixel centre ``p``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .. import checks

__all__ = [
    "encode_heatmaps",
    "decode_argmax",
    "soft_argmax",
    "image_to_heatmap",
    "heatmap_to_image",
    "GaussianHeatmapCodec",
]

ArrayLike = "np.ndarray | torch.Tensor | Sequence"


def _size_hw(size: int | Sequence[int], name: str = "heatmap_size") -> tuple[int, int]:
    """``size`` as ``(H, W)``: one int (square) or a pair, each ``>= 1`` (:func:`kpedu.checks.size`)."""
    return checks.size(size, name)


def _maps(heatmaps, name: str = "heatmaps") -> torch.Tensor:
    """Heatmaps ``(..., K, H, W)``: float, non-empty, finite (:func:`kpedu.checks.maps`)."""
    return checks.maps(heatmaps, name, min_ndim=3, shape_text="(..., K, H, W)")


def encode_heatmaps(
    keypoints,
    visible=None,
    heatmap_size: int | Sequence[int] = 64,
    sigma: float = 2.0,
) -> torch.Tensor:
    """Render one Gaussian heatmap per keypoint (Foundations chapter, Gaussian targets).

    Args:
        keypoints: ``(K, 2)`` or ``(N, K, 2)`` positions ``(x, y)`` in heatmap pixels
            (numpy or torch). Keypoints near or beyond the border are allowed: the part
            of the Gaussian that falls inside the map is drawn, so a keypoint far outside
            gives an (almost) empty map.
        visible: ``(K,)`` or ``(N, K)`` flags; a keypoint is drawn where ``visible > 0``
            (COCO flags 1 and 2: labelled). ``None`` draws every keypoint. Keypoints that
            are not drawn give all-zero maps, and may hold NaN coordinates.
        heatmap_size: ``H`` (square) or ``(H, W)``.
        sigma: standard deviation of the Gaussian in heatmap pixels, ``> 0``.

    Returns:
        ``float32`` tensor ``(K, H, W)`` or ``(N, K, H, W)`` with peak value 1 at every
        drawn keypoint that lies on a pixel centre.

    The Gaussian is separable, so a map costs ``O(H + W)`` exponentials, not ``O(HW)``.
    """
    kp = checks.points(keypoints, "keypoints", ndim=(2, 3))
    single = kp.ndim == 2
    if single:
        kp = kp[None]
    n, k, _ = kp.shape
    if single and visible is not None and tuple(getattr(visible, "shape", ())) == (1, k):
        visible = visible[0]  # one person's flags given as a batch of one
    vis = checks.visibility(visible, "visible", (k,) if single else (n, k), device=kp.device)
    vis = vis.reshape(n, k)
    h, w = _size_hw(heatmap_size)
    sigma_f = checks.number(sigma, "sigma", minimum=0.0, min_open=True)
    if kp.device.type != "meta" and bool(torch.isnan(kp[vis]).any()):
        raise ValueError("keypoints must not contain NaN at a keypoint marked visible "
                         "(NaN is only allowed where visible is 0)")
    kp = torch.where(vis[..., None], kp, torch.zeros_like(kp))
    xs = torch.arange(w, dtype=torch.float32, device=kp.device)
    ys = torch.arange(h, dtype=torch.float32, device=kp.device)
    gx = torch.exp(-((xs - kp[..., 0:1]) ** 2) / (2 * sigma_f**2))  # (N, K, W)
    gy = torch.exp(-((ys - kp[..., 1:2]) ** 2) / (2 * sigma_f**2))  # (N, K, H)
    maps = gy[..., :, None] * gx[..., None, :]
    maps = maps * vis[..., None, None]
    return maps[0] if single else maps


def decode_argmax(heatmaps, quarter_offset: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode each heatmap by its maximum (Foundations chapter, decoding).

    The integer argmax lies on a pixel centre, so it is off by up to half a pixel in each
    axis. With ``quarter_offset`` the position moves a quarter pixel toward the higher of
    its two neighbours, separately in ``x`` and ``y`` (the Stacked Hourglass recipe);
    on the border, where a neighbour is missing, no shift is applied.

    Args:
        heatmaps: ``(..., K, H, W)`` tensor or array.
        quarter_offset: apply the quarter-pixel shift.

    Returns:
        ``(coords, scores)``: ``coords`` is ``(..., K, 2)`` float32 ``(x, y)`` in heatmap
        pixels, ``scores`` is ``(..., K)``, the maximum value of each map.
    """
    hm = _maps(heatmaps).detach().float()
    *lead, h, w = hm.shape
    flat = hm.reshape(-1, h * w)
    scores, idx = flat.max(dim=1)
    y = torch.div(idx, w, rounding_mode="floor")
    x = idx - y * w
    coords = torch.stack([x, y], dim=-1).float()
    if quarter_offset:
        maps = hm.reshape(-1, h, w)
        rows = torch.arange(maps.shape[0], device=hm.device)
        xl, xr = (x - 1).clamp(min=0), (x + 1).clamp(max=w - 1)
        yu, yd = (y - 1).clamp(min=0), (y + 1).clamp(max=h - 1)
        dx = maps[rows, y, xr] - maps[rows, y, xl]
        dy = maps[rows, yd, x] - maps[rows, yu, x]
        inner_x = (x > 0) & (x < w - 1)
        inner_y = (y > 0) & (y < h - 1)
        coords[:, 0] += 0.25 * torch.sign(dx) * inner_x
        coords[:, 1] += 0.25 * torch.sign(dy) * inner_y
    return coords.reshape(*lead, 2), scores.reshape(*lead)


def soft_argmax(
    heatmaps: torch.Tensor,
    beta: float = 1.0,
    normalize: str = "softmax",
    return_probs: bool = False,
):
    """Differentiable expected position of each map (Foundations; used again in the
    factorized-spatial-embeddings chapter, where landmarks are expected positions).

    ``normalize="softmax"`` turns scores into a distribution with a spatial softmax
    ``p(u) = exp(beta * h(u)) / sum_v exp(beta * h(v))`` (the map holds logits);
    ``normalize="sum"`` uses the map itself, clipped at zero and divided by its sum
    (suited to Gaussian-like maps with values in [0, 1]). The keypoint is
    ``sum_u p(u) u``, with ``u`` the pixel centres.

    Args:
        heatmaps: ``(..., K, H, W)``.
        beta: inverse temperature for the softmax (ignored by ``"sum"``), ``> 0``.
        normalize: ``"softmax"`` or ``"sum"``.
        return_probs: also return the probability maps ``(..., K, H, W)``.

    Returns:
        ``(..., K, 2)`` expected ``(x, y)`` positions (and the probabilities).
        A ``"sum"`` map with no positive mass gives the map centre.
    """
    hm = _maps(heatmaps)
    beta = checks.number(beta, "beta", minimum=0.0, min_open=True)
    checks.choice(normalize, "normalize", ("softmax", "sum"))
    *lead, h, w = hm.shape
    flat = hm.reshape(*lead, h * w)
    if normalize == "softmax":
        probs = torch.softmax(beta * flat, dim=-1)
    elif normalize == "sum":
        pos = flat.clamp(min=0)
        total = pos.sum(dim=-1, keepdim=True)
        uniform = torch.full_like(pos, 1.0 / (h * w))
        probs = torch.where(total > 0, pos / total.clamp(min=torch.finfo(pos.dtype).tiny), uniform)
    else:
        raise ValueError(f"normalize must be 'softmax' or 'sum', got {normalize!r}")
    probs = probs.reshape(*lead, h, w)
    xs = torch.arange(w, dtype=probs.dtype, device=probs.device)
    ys = torch.arange(h, dtype=probs.dtype, device=probs.device)
    ex = (probs.sum(dim=-2) * xs).sum(dim=-1)
    ey = (probs.sum(dim=-1) * ys).sum(dim=-1)
    coords = torch.stack([ex, ey], dim=-1)
    return (coords, probs) if return_probs else coords


def _points_out(points) -> np.ndarray | torch.Tensor:
    """A float copy of ``points`` ``(..., 2)`` to transform: tensors stay tensors (float
    tensors keep their dtype, integer ones become float32), anything else becomes float64
    numpy. NaN (a missing point) is kept; inf, complex, booleans and text are refused."""
    if isinstance(points, torch.Tensor):
        dtype = points.dtype if points.dtype.is_floating_point else None
        out = checks.points(points, "points", ndim=(1, 2, 3, 4), dtype=dtype, shape_text="(..., 2)")
        return out.clone()
    return np.array(checks.points(points, "points", ndim=(1, 2, 3, 4), backend="numpy",
                                  shape_text="(..., 2)"), dtype=np.float64)


def image_to_heatmap(points, stride: float | Sequence[float]):
    """Map image pixel coordinates to heatmap coordinates at ``stride`` (notation page).

    With pixel centres at integers, pixel edges sit at half-integers, so the image edge
    ``-0.5`` maps to the heatmap edge ``-0.5``: ``x_h = (x + 0.5) / s - 0.5``.
    ``stride`` is one number or ``(s_x, s_y)``, each ``> 0``. ``points`` are ``(..., 2)``
    ``(x, y)`` (up to 4 dimensions), numpy or torch: a tensor gives a tensor (integers
    become float32, float tensors keep their dtype), anything else a float64 array.
    Integer coordinates are converted, never truncated; NaN (a missing point) stays NaN.
    """
    s = _stride_pair(stride)
    out = _points_out(points)
    out[..., 0] = (out[..., 0] + 0.5) / s[0] - 0.5
    out[..., 1] = (out[..., 1] + 0.5) / s[1] - 0.5
    return out


def heatmap_to_image(points, stride: float | Sequence[float]):
    """Inverse of :func:`image_to_heatmap`: ``x = s (x_h + 0.5) - 0.5`` (same arguments)."""
    s = _stride_pair(stride)
    out = _points_out(points)
    out[..., 0] = s[0] * (out[..., 0] + 0.5) - 0.5
    out[..., 1] = s[1] * (out[..., 1] + 0.5) - 0.5
    return out


def _stride_pair(stride) -> tuple[float, float]:
    """``stride`` as ``(s_x, s_y)``: one number or a pair, each a finite number ``> 0``."""
    pair = isinstance(stride, (list, tuple)) or (
        isinstance(stride, (torch.Tensor, np.ndarray)) and stride.ndim == 1 and stride.shape[0] != 1)
    if not pair:
        s = checks.number(stride, "stride", minimum=0.0, min_open=True)
        return s, s
    if len(stride) != 2:
        raise ValueError(f"stride must be a number or a pair (s_x, s_y), got {len(stride)} values")
    return (checks.number(stride[0], "stride[0] (s_x)", minimum=0.0, min_open=True),
            checks.number(stride[1], "stride[1] (s_y)", minimum=0.0, min_open=True))


class GaussianHeatmapCodec:
    """Encode/decode pair between image keypoints and Gaussian heatmaps.

    The same object serves the data pipeline (``encode``: image keypoints to targets)
    and the model head (``decode``: predicted maps to image keypoints), so the two can
    never disagree about strides or pixel conventions (Foundations chapter; used by the
    Stacked Hourglass chapter).

    Args:
        input_size: image ``(H, W)`` or an int.
        heatmap_size: heatmap ``(H, W)`` or an int.
        sigma: Gaussian standard deviation in heatmap pixels.
        decoder: ``"argmax"`` (with quarter offset), ``"argmax_plain"`` or ``"soft"``.
    """

    def __init__(self, input_size, heatmap_size, sigma: float = 2.0, decoder: str = "argmax"):
        self.input_size = _size_hw(input_size, "input_size")
        self.heatmap_size = _size_hw(heatmap_size, "heatmap_size")
        checks.choice(decoder, "decoder", ("argmax", "argmax_plain", "soft"))
        self.sigma = checks.number(sigma, "sigma", minimum=0.0, min_open=True)
        self.decoder = decoder
        self.stride = (
            self.input_size[1] / self.heatmap_size[1],
            self.input_size[0] / self.heatmap_size[0],
        )

    def __repr__(self) -> str:
        return (
            f"GaussianHeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, decoder={self.decoder!r})"
        )

    def encode(self, keypoints, visible=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Image keypoints ``(.., K, 2)`` to ``(heatmaps, weights)``.

        ``weights`` (``(.., K)``, float) is 1 for labelled keypoints whose Gaussian
        reaches the map (centre within 3 sigma of the map), else 0: use it to mask the
        loss of keypoints that cannot be seen.
        """
        kp = checks.points(keypoints, "keypoints", ndim=(2, 3))
        vis = checks.visibility(visible, "visible", kp.shape[:-1], device=kp.device)
        hm_kp = image_to_heatmap(kp, self.stride)
        heatmaps = encode_heatmaps(hm_kp, vis, self.heatmap_size, self.sigma)
        h, w = self.heatmap_size
        r = 3 * self.sigma
        inside = (
            (hm_kp[..., 0] > -0.5 - r) & (hm_kp[..., 0] < w - 0.5 + r)
            & (hm_kp[..., 1] > -0.5 - r) & (hm_kp[..., 1] < h - 0.5 + r)
        )
        weights = (vis & inside).float()  # NaN coordinates compare False: not inside
        return heatmaps, weights

    def decode(self, heatmaps) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps ``(.., K, H, W)`` to image keypoints ``(.., K, 2)`` and scores."""
        hm = _maps(heatmaps)
        if tuple(hm.shape[-2:]) != self.heatmap_size:
            raise ValueError(f"heatmaps must have the codec's size (H, W) = {self.heatmap_size}, "
                             f"got shape {tuple(hm.shape)}")
        if self.decoder == "soft":
            coords = soft_argmax(hm, normalize="sum")
            scores = hm.detach().flatten(-2).max(-1).values
        else:
            coords, scores = decode_argmax(hm, quarter_offset=self.decoder == "argmax")
        return heatmap_to_image(coords, self.stride), scores
