"""Keypoint codecs: encode/decode pairs between coordinates and heatmaps.

Foundations chapter (``book/ch00-foundations``). Public names:

- :func:`encode_heatmaps` keypoints -> Gaussian heatmaps
- :func:`decode_argmax` heatmaps -> keypoints (argmax with the quarter-pixel shift)
- :func:`soft_argmax` heatmaps -> keypoints (differentiable expectation)
- :func:`image_to_heatmap` / :func:`heatmap_to_image` coordinate maps at a stride
- :class:`GaussianHeatmapCodec` the pair bundled for a model head
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
