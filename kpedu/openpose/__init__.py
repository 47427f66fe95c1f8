"""OpenPose: realtime multi-person pose estimation with part affinity fields (Cao et al.,
CVPR 2017; TPAMI 2021). OpenPose chapter (``book/ch02-openpose``).

Modules: :mod:`~kpedu.openpose.targets` (confidence maps, PAFs, loss masks, the chapter's
scene targets), :mod:`~kpedu.openpose.model` (multi-stage network and its loss),
:mod:`~kpedu.openpose.parse` (peaks, line integrals, bipartite matching, assembly),
:mod:`~kpedu.openpose.inference` (the network's maps with test-time augmentation,
upsampling, parsing into people), :mod:`~kpedu.openpose.experiment` (the chapter's recipe,
scenes and batches, training, evaluation and timing).

Layout (the same four roles in every chapter package)::

    model            -> model
    targets and loss -> targets, model (openpose_loss)
    inference        -> parse, inference
    experiment       -> experiment
"""
from .model import (ConvBlock, OpenPoseNet, SmallBackbone, Stage, VGG19Backbone, VGG19_LAYERS, openpose_loss,
                    openpose_paper)
from .parse import Person, find_peaks, limb_scores, match_limb, parse, parse_batch, skeleton_tree
from .targets import (batch_targets, confidence_maps, loss_mask, part_affinity_fields, scene_loss_mask,
                      unlabelled_mask)

__all__ = [
    "confidence_maps", "part_affinity_fields", "loss_mask", "unlabelled_mask", "scene_loss_mask", "batch_targets",
    "ConvBlock", "Stage", "VGG19Backbone", "SmallBackbone", "OpenPoseNet", "openpose_paper", "openpose_loss",
    "VGG19_LAYERS", "Person", "find_peaks", "limb_scores", "match_limb", "skeleton_tree", "parse", "parse_batch",
]
