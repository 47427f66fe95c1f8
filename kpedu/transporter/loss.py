"""The Transporter's training loss (``book/ch06-transporter``; Kulkarni et al., NeurIPS 2019):
the target frame is its own label, so the loss compares the refinement network's
reconstruction with it, pixel by pixel.

The reference code trains with the mean squared error (``loss_type="l2"``, with an L1
option); the paper's text was not checked for the reason. A squared error on pixels is
the simplest choice that makes the gradient reach the keypoints through the Gaussian maps
wherever the reconstruction is wrong, and on the book's flat-shaded synthetic frames it
does not suffer the blur that makes perceptual losses attractive on photographs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import checks

__all__ = ["reconstruction_loss"]


def reconstruction_loss(reconstruction, target, kind: str = "l2") -> torch.Tensor:
    """Pixel reconstruction error of the target frame, averaged over pixels and channels:
    ``"l2"`` (squared error, the Transporter's training loss) or ``"l1"``."""
    if not isinstance(reconstruction, torch.Tensor) or reconstruction.ndim != 4 or not reconstruction.is_floating_point():
        raise TypeError(f"reconstruction must be a float tensor (B, 3, H, W), got {checks.describe(reconstruction)}")
    t = checks.image(target, "target", ndim=4, channels=3, shape_text="(B, 3, H, W)", device=reconstruction.device)
    checks.choice(kind, "kind", ("l2", "l1"))
    if reconstruction.shape != t.shape:
        raise ValueError(f"reconstruction {tuple(reconstruction.shape)} and target {tuple(t.shape)} differ in shape")
    r = reconstruction.float()
    return F.mse_loss(r, t) if kind == "l2" else F.l1_loss(r, t)
