"""Unsupervised object keypoints from video: the Transporter (Kulkarni, Gupta, Ionescu,
Borgeaud, Reynolds, Zisserman and Mnih, NeurIPS 2019). Transporter chapter
(``book/ch06-transporter``).

Modules: :mod:`~kpedu.transporter.model` (feature extractor, keypoint network with the
Gaussian keypoint bottleneck, refinement network), :mod:`~kpedu.transporter.transport`
(feature transport), :mod:`~kpedu.transporter.loss` (the reconstruction loss),
:mod:`~kpedu.transporter.inference`
(keypoints of many frames, moving a keypoint) and :mod:`~kpedu.transporter.experiment`
(the chapter's videos, training and evaluation). The data are
:mod:`kpedu.data.videos` (stick people and moving shapes with exact ground truth).

Arguments are checked where they enter (:mod:`kpedu.checks`): images are float in [0, 1]
or uint8 (scaled by 1/255) with sides divisible by the stride (2).

Layout (the same four roles in every chapter package; the Transporter has no targets: the
next frame is its own target)::

    model            -> model
    targets and loss -> transport, loss
    inference        -> inference (detect, reconstruct, move_keypoint)
    experiment       -> experiment (evaluation through kpedu.fse.regression_nme)
"""
from .inference import detect, move_keypoint, reconstruct, shift_features
from .model import (REFERENCE_LAYERS, Encoder, KeypointNet, RefineNet, Transporter, gaussian_maps, keypoint_coordinates,
                    std_pixels)
from .loss import reconstruction_loss
from .transport import TRANSPORT_MODES, transport

__all__ = [
    "REFERENCE_LAYERS", "keypoint_coordinates", "std_pixels", "Encoder", "KeypointNet", "RefineNet", "Transporter", "gaussian_maps", "transport",
    "TRANSPORT_MODES", "reconstruction_loss", "detect", "reconstruct", "move_keypoint", "shift_features",
]
