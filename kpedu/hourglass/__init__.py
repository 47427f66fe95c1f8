"""Stacked Hourglass Networks (Newell et al., ECCV 2016): model and loss.

Stacked Hourglass chapter (``book/ch01-hourglass``). Decoding uses
:mod:`kpedu.codecs`; evaluation uses :mod:`kpedu.metrics`; the training crops come from
:mod:`kpedu.data` (:func:`kpedu.data.make_people`).

Modules: :mod:`~kpedu.hourglass.model` (residual module, hourglass, stacked network),
:mod:`~kpedu.hourglass.loss` (intermediate supervision on Gaussian targets of
:class:`kpedu.codecs.GaussianHeatmapCodec`), :mod:`~kpedu.hourglass.inference` (last-stack
heatmaps, flip testing, image keypoints), :mod:`~kpedu.hourglass.experiment` (the
chapter's recipe, augmented batches, training, evaluation, ablations).

Layout (the same four roles in every chapter package)::

    model            -> model
    targets and loss -> loss (targets: kpedu.codecs)
    inference        -> inference
    experiment       -> experiment
"""
from .inference import predict_heatmaps, predict_keypoints
from .loss import stacked_heatmap_loss
from .model import Hourglass, Residual, StackedHourglass

__all__ = ["Residual", "Hourglass", "StackedHourglass", "stacked_heatmap_loss", "predict_heatmaps",
           "predict_keypoints"]
