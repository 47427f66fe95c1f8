"""Stacked Hourglass Networks (Newell et al., ECCV 2016): model and loss.

Stacked Hourglass chapter (``book/ch01-hourglass``). Decoding uses
:mod:`kpedu.codecs`; evaluation uses :mod:`kpedu.metrics`.
"""
from .inference import predict_heatmaps, predict_keypoints
from .loss import stacked_heatmap_loss
from .model import Hourglass, Residual, StackedHourglass

__all__ = ["Residual", "Hourglass", "StackedHourglass", "stacked_heatmap_loss", "predict_heatmaps",
           "predict_keypoints"]
