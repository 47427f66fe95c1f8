"""Feature transport (``book/ch06-transporter``; Kulkarni et al., NeurIPS 2019): with
:mod:`kpedu.transporter.loss`, the Transporter's "targets and loss" role. Nothing is
annotated: the target frame itself is what the network must produce.

Transport builds the features of the target frame out of the
source frame's features. With feature maps ``Phi(x_s)``, ``Phi(x_t)`` and the keypoint
bottleneck's Gaussian maps ``H_s``, ``H_t`` of the two frames,

    Phi_hat = (1 - H_s) (1 - H_t) Phi(x_s) + H_t Phi(x_t):

the source features are erased around the source keypoints (where the object was) and
around the target keypoints (where it now is), and the target's features are pasted at
the target keypoints. Everything else, the still background, comes from the source frame.
To reconstruct the target, the refinement network therefore needs the keypoints to sit
on whatever moved.

With ``K`` keypoints the erase-and-paste is applied once per keypoint, in order, as the
DeepMind reference code does (``mode="sequential"``); ``mode="joint"`` erases and pastes
with the combined map ``H = max_k H_k`` in one step. Both are exact readings of the
equation for one keypoint.
"""
from __future__ import annotations

import torch

from .. import checks

__all__ = ["TRANSPORT_MODES", "transport"]

TRANSPORT_MODES = ("sequential", "joint")


def _maps(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (B, C, h, w), got {checks.describe(x)}")
    return x


def transport(source_features, target_features, source_maps, target_maps, mode: str = "sequential"
              ) -> torch.Tensor:
    """``Phi_hat = (1 - H_s)(1 - H_t) Phi(x_s) + H_t Phi(x_t)``.

    Args:
        source_features, target_features: ``(B, D, h, w)``.
        source_maps, target_maps: ``(B, K, h, w)`` Gaussian maps in [0, 1]
            (:func:`kpedu.transporter.gaussian_maps`).
        mode: ``"sequential"`` (one keypoint after another, as the reference code) or
            ``"joint"`` (``H = max_k H_k`` at once).

    Returns the transported features ``(B, D, h, w)``.
    """
    fs, ft = _maps(source_features, "source_features"), _maps(target_features, "target_features")
    hs, ht = _maps(source_maps, "source_maps"), _maps(target_maps, "target_maps")
    checks.choice(mode, "mode", TRANSPORT_MODES)
    if fs.shape != ft.shape:
        raise ValueError(f"source and target features differ in shape: {tuple(fs.shape)} vs {tuple(ft.shape)}")
    if hs.shape != ht.shape:
        raise ValueError(f"source and target maps differ in shape: {tuple(hs.shape)} vs {tuple(ht.shape)}")
    if hs.shape[0] != fs.shape[0] or hs.shape[-2:] != fs.shape[-2:]:
        raise ValueError(f"maps {tuple(hs.shape)} do not fit the features {tuple(fs.shape)}: batch and (h, w) "
                         "must agree")
    if mode == "joint":
        s, t = hs.amax(1, keepdim=True), ht.amax(1, keepdim=True)
        return (1 - s) * (1 - t) * fs + t * ft
    out = fs
    for k in range(hs.shape[1]):
        s, t = hs[:, k:k + 1], ht[:, k:k + 1]
        out = (1 - s) * (1 - t) * out + t * ft
    return out
