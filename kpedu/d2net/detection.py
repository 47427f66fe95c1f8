"""Detection on D2-Net feature maps: hard (test time) and soft (training) detection.

D2-Net chapter, section 2. ``features`` is the tensor ``F`` of :class:`kpedu.d2net.D2Net`,
``(B, n, h, w)``. The detection maps are ``D = ReLU(F)`` (:func:`detection_maps`): channel
``k`` of ``D`` is the detector ``D^k``. Every function here applies the ReLU itself, so
it accepts raw features.

* :func:`hard_detection` implements eq. (3). Cell ``(i, j)`` is a keypoint iff, for
  ``k = argmax_t D^t_ij``, ``D^k_ij`` is a local maximum of ``D^k`` in its 3x3
  neighbourhood.
* :func:`soft_detection_terms` and :func:`soft_detection_scores` implement eqs. (4)-(7):
  ``alpha``, ``beta``, ``gamma = max_k alpha * beta`` and ``s = gamma / sum gamma``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks

__all__ = ["detection_maps", "hard_detection", "soft_detection_terms", "soft_detection_scores", "edge_mask", "descriptors"]


def _check(features: torch.Tensor, name: str = "features") -> torch.Tensor:
    """Feature maps ``(B, n, h, w)``: floating point (integers are a ``TypeError``: a
    network's output is never integer), non-empty and finite (:func:`kpedu.checks.maps`)."""
    if isinstance(features, torch.Tensor):
        integral = not (features.is_floating_point() or features.is_complex()) and features.dtype != torch.bool
    else:
        integral = isinstance(features, np.ndarray) and features.dtype.kind in "iu"
    if integral:
        raise TypeError(f"{name} must be floating point, got {features.dtype}")
    return checks.maps(features, name, ndim=4, shape_text="(B, n, h, w)")


def _edge_threshold(edge_threshold) -> float:
    return checks.number(edge_threshold, "edge_threshold", minimum=1, min_open=True)


def _temperature(temperature) -> float | str | None:
    """``None``, ``"max"`` or a finite number > 0."""
    if isinstance(temperature, str):
        if temperature != "max":
            raise ValueError(f"temperature must be None, a positive number or 'max', got {temperature!r}")
        return temperature
    return checks.optional_number(temperature, "temperature", minimum=0, min_open=True)


def detection_maps(features: torch.Tensor) -> torch.Tensor:
    """The detection maps ``D = ReLU(F)``: the reading of ``F`` as ``n`` response maps (eq. 2)."""
    return F.relu(_check(features))


def descriptors(features: torch.Tensor) -> torch.Tensor:
    """The dense descriptors ``d_ij = F_ij / ||F_ij||``: unit length along the channel axis (eq. 1).

    A cell whose features are all zero gets a zero descriptor.
    """
    return F.normalize(_check(features), p=2, dim=1, eps=1e-12)


def edge_mask(maps: torch.Tensor, edge_threshold: float = 5.0) -> torch.Tensor:
    """Reject edge-like responses, as in SIFT: keep cells where ``Tr(H)^2 / Det(H) < (r + 1)^2 / r``.

    ``maps`` is ``(B, n, h, w)``. ``H`` is the 2x2 Hessian of each map, from central
    finite differences with a replicated border. Returns a boolean ``(B, n, h, w)``
    (``Det(H) <= 0`` is rejected too).
    """
    maps = _check(maps, "maps")
    r = _edge_threshold(edge_threshold)
    return _edge_mask(maps, r)


def _edge_mask(maps: torch.Tensor, r: float) -> torch.Tensor:
    p = F.pad(maps, (1, 1, 1, 1), mode="replicate")
    c = p[..., 1:-1, 1:-1]
    dxx = p[..., 1:-1, 2:] - 2 * c + p[..., 1:-1, :-2]
    dyy = p[..., 2:, 1:-1] - 2 * c + p[..., :-2, 1:-1]
    dxy = 0.25 * (p[..., 2:, 2:] - p[..., 2:, :-2] - p[..., :-2, 2:] + p[..., :-2, :-2])
    det = dxx * dyy - dxy * dxy
    tr = dxx + dyy
    return (det > 0) & (tr * tr * r < (r + 1) ** 2 * det)


def hard_detection(features: torch.Tensor, edge_threshold: float | None = None) -> torch.Tensor:
    """Hard feature detection (eq. 3): a boolean ``(B, h, w)`` keypoint mask.

    Cell ``(i, j)`` is a detection when its strongest channel ``k = argmax_t D^t_ij``
    is also a maximum of ``D^k`` over the 3x3 neighbourhood (the cell itself included;
    neighbours outside the map do not count) and ``D^k_ij > 0``. The last condition
    keeps out cells where every map is zero after the ReLU; there the argmax is an
    arbitrary tie. With ``edge_threshold`` (the reference implementation uses 5), cells
    whose winning map looks like an edge there (:func:`edge_mask`) are dropped as well.
    Ties within the 3x3 window all count as maxima, as with ``==`` in the paper's
    reference code.
    """
    features = detection_maps(features)
    if edge_threshold is not None:
        edge_threshold = _edge_threshold(edge_threshold)
    local_max = features == F.max_pool2d(features, 3, stride=1, padding=1)
    best, k = features.max(dim=1, keepdim=True)
    depth_max = features == best
    det = local_max & depth_max
    if edge_threshold is not None:
        det = det & _edge_mask(features, edge_threshold)
    # the winning channel k (first of equal maxima) decides
    det = det.gather(1, k)[:, 0]
    return det & (best[:, 0] > 0)


def soft_detection_terms(features: torch.Tensor, temperature: float | str | None = None,
                         eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """The soft-detection quantities of eqs. (4)-(7), for plotting and for training.

    Returns a dict:

    * ``alpha``: ``(B, n, h, w)``, the soft local maximum
      ``exp(D^k_ij) / sum over the 3x3 neighbourhood of exp(D^k_i'j')`` (eq. 4);
    * ``beta``: ``(B, n, h, w)``, the ratio to the maximum ``D^k_ij / max_t D^t_ij`` (eq. 5);
    * ``gamma``: ``(B, h, w)``, ``max_k alpha * beta`` (eq. 6);
    * ``s``: ``(B, h, w)``, ``gamma`` divided by its sum over the image (eq. 7).

    Numerics. ``exp`` would overflow for activations above about 88 (float32), so
    ``alpha`` is computed as ``exp(D - m) / sum exp(D' - m)``, with ``m`` the maximum
    over the window. This value is the same ratio and never overflows, and the
    denominator is at least 1. ``beta`` divides by ``max(max_t D^t, eps)``, and ``s`` by
    ``max(sum gamma, eps)``, so all-zero features give zeros, not NaNs.

    Border. The 3x3 window of a border cell reaches outside the map. Those positions
    count as activations of 0 (``exp(0 - m)`` each), the smallest value a ReLU output
    can take, so a border cell is not favoured for having fewer neighbours. The reference
    code pads ``exp`` with 1, which is the same choice.

    Temperature. ``None`` follows the paper's formula. ``"max"`` divides ``D`` by its
    maximum over each image before ``alpha``, as the reference training code does; this
    keeps ``alpha`` soft whatever the scale of the activations. A number divides ``D``
    by that number.
    """
    features = detection_maps(features)
    temperature = _temperature(temperature)
    eps = checks.number(eps, "eps", minimum=0, min_open=True)
    if isinstance(temperature, str):
        t = features.flatten(1).amax(dim=1).clamp_min(eps).view(-1, 1, 1, 1)
    else:
        t = temperature
    d = features if t is None else features / t
    padded = F.pad(d, (1, 1, 1, 1), value=0.0)
    m = F.max_pool2d(padded, 3, stride=1)  # window maximum (>= 0: the padding counts)
    e = torch.exp(d - m)
    win = _window_sum_exp(padded, m)  # sum of exp(D' - m) over the window (outside: D' = 0)
    alpha = e / win
    beta = features / features.amax(dim=1, keepdim=True).clamp_min(eps)
    gamma = (alpha * beta).amax(dim=1)
    s = gamma / gamma.flatten(1).sum(dim=1).clamp_min(eps).view(-1, 1, 1)
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "s": s}


def _window_sum_exp(padded: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``sum_{(a, b) in 3x3} exp(padded[i + a, j + b] - m[i, j])`` for every cell, exactly."""
    h, w = m.shape[-2:]
    total = torch.zeros_like(m)
    for a in range(3):
        for b in range(3):
            total = total + torch.exp(padded[..., a:a + h, b:b + w] - m)
    return total


def soft_detection_scores(features: torch.Tensor, temperature: float | str | None = None) -> torch.Tensor:
    """The soft detection score ``s`` (eq. 7), ``(B, h, w)``, summing to 1 over each image.

    See :func:`soft_detection_terms` for the formula, numerics and border handling.
    """
    return soft_detection_terms(features, temperature)["s"]
