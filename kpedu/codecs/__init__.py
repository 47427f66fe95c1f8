"""Keypoint codecs: encode/decode pairs between coordinates and heatmaps.

Foundations chapter (``book/ch00-foundations``). Public names:

- :func:`encode_heatmaps` keypoints -> Gaussian heatmaps
- :func:`decode_argmax` heatmaps -> keypoints (argmax with the quarter-pixel shift)
- :func:`soft_argmax` heatmaps -> keypoints (differentiable expectation)
- :func:`image_to_heatmap` / :func:`heatmap_to_image` coordinate maps at a stride
- :class:`GaussianHeatmapCodec` the pair bundled for a model head

Arguments are checked where they come in (:mod:`kpedu.checks`): coordinates ``(..., 2)``
may be integers (converted to float, never truncated) and may hold NaN for a missing or
unlabelled point, but not ``inf``, complex numbers, booleans or text; heatmaps are finite
and non-empty; sizes, strides and sigmas are numbers in range, never text.
"""
from .heatmap import (
    GaussianHeatmapCodec,
    decode_argmax,
    encode_heatmaps,
    heatmap_to_image,
    image_to_heatmap,
    soft_argmax,
)

__all__ = [
    "encode_heatmaps",
    "decode_argmax",
    "soft_argmax",
    "image_to_heatmap",
    "heatmap_to_image",
    "GaussianHeatmapCodec",
]
