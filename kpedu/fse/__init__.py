"""Unsupervised landmarks by factorized spatial embeddings (Thewlis, Bilen, Vedaldi,
ICCV 2017). Factorized-spatial-embeddings chapter (``book/ch03-fse``).

Modules: :mod:`~kpedu.fse.tps` (thin-plate-spline warps of images and points),
:mod:`~kpedu.fse.model` (the landmark network: score maps, spatial softmax, expected
positions), :mod:`~kpedu.fse.loss` (alignment and diversity losses),
:mod:`~kpedu.fse.evaluate` (the linear-regression NME protocol) and
:mod:`~kpedu.fse.experiment` (the chapter's data, training and evaluation).

Arguments are checked where they enter (:mod:`kpedu.checks`): images are float in [0, 1]
or uint8 (scaled by 1/255); sizes, strengths and weights must be finite and in range; a
NaN learned landmark is a missing prediction, which the NME protocol counts as an
infinite error (with a warning), never as a dropped image.

Layout (the same four roles in every chapter package; FSE has no targets of its own, the
random warps supervise it)::

    model            -> model (builds on the hourglass model: kpedu.hourglass.StackedHourglass)
    targets and loss -> loss, tps (the warps that make the training pairs)
    inference        -> model (LandmarkNet.detect), experiment (detect_landmarks), evaluate (regressor)
    experiment       -> experiment, evaluate (the NME protocol)
"""
from .evaluate import apply_regressor, fit_regressor, inter_ocular, regression_nme
from .loss import DIVERSITY_MODES, alignment_loss, diversity_loss
from .model import LandmarkNet, UNetBackbone
from .tps import (ComposedWarp, ThinPlateSpline, TPSWarp, Warp, normalized_to_pixel, pixel_grid, pixel_to_normalized,
                  random_tps, tps_kernel)

__all__ = [
    "tps_kernel", "ThinPlateSpline", "Warp", "TPSWarp", "ComposedWarp", "random_tps", "pixel_to_normalized",
    "normalized_to_pixel", "pixel_grid", "alignment_loss", "diversity_loss", "DIVERSITY_MODES", "UNetBackbone",
    "LandmarkNet", "fit_regressor", "apply_regressor", "regression_nme", "inter_ocular",
]
