"""D2-Net: a trainable CNN for joint description and detection of local features.

Dusmanu et al., CVPR 2019; chapter ``book/ch04-d2net``. Modules:

* :mod:`~kpedu.d2net.model`: :class:`D2Net`, VGG16 to conv4_3 with the test-time changes;
* :mod:`~kpedu.d2net.detection`: hard and soft detection, dense descriptors;
* :mod:`~kpedu.d2net.extract`: single- and multiscale keypoint extraction;
* :mod:`~kpedu.d2net.loss`: the score-weighted triplet margin ranking loss;
* :mod:`~kpedu.d2net.matching`: features, mutual nearest neighbours, MMA evaluation;
* :mod:`~kpedu.d2net.baselines`: SIFT and ORB from OpenCV;
* :mod:`~kpedu.d2net.experiment`: the training recipe, evaluation and hub checkpoints.

Arguments are checked where they enter (:mod:`kpedu.checks`): images are float in [0, 1]
or uint8 (scaled by 1/255); thresholds, strides and margins must be finite; NaN in a
feature map or a descriptor is an error, while a NaN keypoint is a missing prediction
that never counts as a correct match or a repeated keypoint.

Layout (the same four roles in every chapter package)::

    model            -> model
    targets and loss -> loss (correspondences from the homography, the triplet loss)
    inference        -> detection, extract, matching (features, mutual nearest neighbours)
    experiment       -> experiment, matching (MMA evaluation), baselines (SIFT and ORB)
"""
from .detection import descriptors, detection_maps, edge_mask, hard_detection, soft_detection_scores, soft_detection_terms
from .loss import d2_loss, grid_correspondences, sample_cells
from .matching import Features, evaluate_matching, match, mutual_nearest_neighbors, repeatability
from .model import D2Net, VGG16_CONV4
from .extract import MULTI_SCALE, SINGLE_SCALE, extract, pyramid_detections
from .baselines import classical_features

__all__ = [
    "D2Net", "VGG16_CONV4",
    "descriptors", "detection_maps", "edge_mask", "hard_detection", "soft_detection_scores", "soft_detection_terms",
    "d2_loss", "grid_correspondences", "sample_cells",
    "Features", "evaluate_matching", "match", "mutual_nearest_neighbors", "repeatability",
    "MULTI_SCALE", "SINGLE_SCALE", "extract", "pyramid_detections", "classical_features",
]
