"""Classical baselines for the D2-Net chapter: SIFT and ORB from OpenCV.

D2-Net chapter (``book/ch04-d2net``). The D2-Net paper compares its describe-and-detect
features with hand-crafted detect-then-describe pipelines; :func:`classical_features`
runs two of them, OpenCV's SIFT (float descriptors, L2) and ORB (binary descriptors,
Hamming), and returns the book's :class:`~kpedu.d2net.matching.Features`, so they are
matched and evaluated exactly like D2-Net.

**Coordinate conventions, checked empirically** (OpenCV 4.14; the book puts pixel
centres at integers):

- *SIFT*: with the default ``enable_precise_upscale=False``, OpenCV doubles the image
  with a pixel-centre-aligned bilinear resize (doubled pixel ``u`` has its centre at
  ``u / 2 - 0.25``) and then halves coordinates, so ``KeyPoint.pt`` is **0.25 px too far
  right and down** at every octave. Measured on rendered Gaussian blobs at known
  sub-pixel centres: ``pt - centre = (+0.246, +0.250)`` (std 0.013) for small blobs,
  ``(+0.243, +0.254)`` and ``(+0.274, +0.231)`` (std 0.05 to 0.08) for blobs detected in
  octaves 1 to 3; with ``enable_precise_upscale=True`` the bias is ``(0.00, 0.00)``. We
  keep OpenCV's defaults and subtract 0.25.
- *ORB*: FAST runs at integer pixels of each pyramid level ``L``; the level image is a
  pixel-centre-aligned ``cv2.resize`` (``INTER_LINEAR_EXACT``) of the previous level to
  ``round(size / s_L)`` with ``s_L = scaleFactor ** L``, and OpenCV reports
  ``pt = p_L * s_L`` (checked: level-1 keypoints of a 2-level pyramid are exactly twice
  the level-0 keypoints of the half-size resized image). That is exact at level 0 but
  ignores the half-pixel shift of the resize above it; we convert each coordinate to
  ``(p_L + 0.5) * size / size_L - 0.5``, about ``pt + 0.5 (s_L - 1)`` (0.1 px at level 1,
  1.3 px at level 7).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import checks
from .matching import Features

__all__ = ["CLASSICAL_METHODS", "SIFT_OFFSET", "to_gray_uint8", "classical_features"]

#: Methods accepted by :func:`classical_features`.
CLASSICAL_METHODS: tuple[str, ...] = ("sift", "orb")
#: OpenCV SIFT's ``KeyPoint.pt`` minus the book's coordinate (pixel centres at integers).
SIFT_OFFSET: float = 0.25

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as cv2.COLOR_RGB2GRAY


def to_gray_uint8(image) -> np.ndarray:
    """An image as a grey ``(H, W)`` uint8 array for OpenCV (D2-Net chapter).

    Accepted (numpy or torch): ``(H, W)`` grey; ``(3, H, W)`` RGB channels-first (the
    book's layout; a leading size 3 is always read as channels); ``(H, W, 3)`` RGB
    channels-last (scikit-image's layout). Float images lie in [0, 1] (values a little
    outside, as after photometric augmentation, are clipped); uint8 images are in
    [0, 255]; any other dtype is rejected (:func:`kpedu.checks.image`). Colour is
    reduced with the BT.601 luma weights (0.299, 0.587, 0.114), as
    ``cv2.COLOR_RGB2GRAY``, and rounded.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
    elif not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or a torch tensor, got {type(image).__name__}")
    layouts = "(H, W), (3, H, W) or (H, W, 3)"
    if image.ndim == 3 and image.shape[0] != 3 and image.shape[-1] != 3:
        raise ValueError(f"image: a colour image must be (3, H, W) or (H, W, 3), got shape {tuple(image.shape)}")
    # the one rule for images (kpedu.checks.image): float in [0, 1] or uint8 in [0, 255]
    x = checks.image(image, "image", ndim=(2, 3), channels=None, shape_text=layouts, dtype=torch.float64).numpy()
    if x.ndim == 3 and x.shape[0] == 3:
        x = np.moveaxis(x, 0, -1)
    if x.ndim == 3:
        x = x @ _LUMA
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _orb_to_book(pts: np.ndarray, octaves: np.ndarray, hw: tuple[int, int], scale_factor: float) -> np.ndarray:
    h, w = hw
    s = np.float32(scale_factor) ** octaves.astype(np.float32)  # OpenCV's float layer scales
    size_w = np.rint(np.float32(w) / s)  # cvRound(cols / scale)
    size_h = np.rint(np.float32(h) / s)
    p = pts / s[:, None].astype(np.float64)  # integer pixel of the level image
    out = np.empty_like(pts)
    out[:, 0] = (p[:, 0] + 0.5) * (w / size_w) - 0.5
    out[:, 1] = (p[:, 1] + 0.5) * (h / size_h) - 0.5
    return out


def classical_features(image, method: str = "sift", max_features: int = 2048) -> Features:
    """SIFT or ORB features of one image with OpenCV (D2-Net chapter baselines).

    ``image`` is anything :func:`to_gray_uint8` accepts: ``(3, H, W)`` or ``(H, W)``
    float in [0, 1] (torch or numpy), or uint8 ``(H, W)``, ``(3, H, W)`` or
    ``(H, W, 3)``. ``method="sift"`` runs ``cv2.SIFT_create(nfeatures=max_features)``
    (128-D float32 descriptors, ``metric="l2"``); ``method="orb"`` runs
    ``cv2.ORB_create(nfeatures=max_features)`` (32-byte uint8 packed binary
    descriptors, ``metric="hamming"``). With ORB's defaults (``edgeThreshold=31``,
    ``patchSize=31``) no feature lies within about 31 px of the border at level 0 (more at
    coarser levels): a property of ORB, kept as is.

    Keypoints are converted to the book's convention (see the module docstring: SIFT's
    ``pt`` minus 0.25, ORB's level-aware half-pixel correction). Scores are
    ``KeyPoint.response``, scales ``KeyPoint.size`` (diameter in pixels); features come
    sorted by decreasing score and at most ``max_features`` are kept (SIFT may return a
    few more because of extra orientations at one location). An image with no
    feature gives an empty :class:`Features` with the right descriptor width.
    """
    import cv2

    if not isinstance(method, str) or method.lower() not in CLASSICAL_METHODS:
        raise ValueError(f"method must be one of {CLASSICAL_METHODS}, got {method!r}")
    method = method.lower()
    max_features = checks.integer(max_features, "max_features", minimum=1)
    gray = to_gray_uint8(image)
    if method == "sift":
        detector = cv2.SIFT_create(nfeatures=int(max_features))
        width, dtype, metric = 128, np.float32, "l2"
    else:
        detector = cv2.ORB_create(nfeatures=int(max_features))
        width, dtype, metric = 32, np.uint8, "hamming"
    keypoints, descriptors = detector.detectAndCompute(gray, None)
    if descriptors is None or len(keypoints) == 0:
        empty = np.zeros(0, np.float32)
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, width), dtype), empty, metric, empty.copy())
    pts = np.array([k.pt for k in keypoints], dtype=np.float64)
    if method == "sift":
        pts = pts - SIFT_OFFSET
    else:
        octaves = np.array([k.octave for k in keypoints], dtype=np.int64)
        pts = _orb_to_book(pts, octaves, gray.shape, detector.getScaleFactor())
    feats = Features(
        keypoints=pts.astype(np.float32),
        descriptors=np.asarray(descriptors, dtype=dtype),
        scores=np.array([k.response for k in keypoints], dtype=np.float32),
        metric=metric,
        scales=np.array([k.size for k in keypoints], dtype=np.float32),
    )
    return feats.top(int(max_features))
