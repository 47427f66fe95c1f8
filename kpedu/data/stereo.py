"""A real rectified stereo pair with ground-truth disparity: Middlebury's motorcycle.

D2-Net chapter (``book/ch04-d2net``). The synthetic pairs of :mod:`kpedu.data.pairs` are
planar; this pair is a real 3-D scene (scikit-image's ``stereo_motorcycle``, from the
Middlebury 2014 benchmark, downsampled 4x to 500 x 741), so it tests features on real
parallax, occlusions and non-planar geometry. Ground truth is a disparity map on the
left image.

**Conventions, checked empirically** on the bundled data (scikit-image 0.26):

- The left pixel ``(x, y)`` (centre at integers, as everywhere in the book) matches the
  right-image point ``(x - d(x, y), y)``. Sampling the right image bilinearly there, the
  mean absolute grey difference with the left image over all valid pixels is 0.029
  (intensities in [0, 1]), against 0.176 at ``(x + d, y)`` and 0.144 with no shift;
  shifting the right position by +-0.25 px increases it (0.030, 0.031), so there is no
  half-pixel offset. (scikit-image's docstring example, "the corresponding pixel of
  ``img_left[10, 10 + disp[10, 10]]`` is ``img_right[10, 10]``", indexes the disparity
  at the right pixel and has the opposite sign; the data say otherwise.)
- Invalid disparities (no ground truth, 7.3 % of the pixels) are stored as ``+inf``,
  not NaN as scikit-image's docstring says; valid ones lie in [7.19, 59.91] px. The
  loader turns every non-finite value into NaN.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks

__all__ = ["stereo_motorcycle", "stereo_errors"]


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    if mode == "nearest-exact":
        return F.interpolate(x[None], size=size, mode=mode)[0]
    return F.interpolate(x[None], size=size, mode=mode, align_corners=False, antialias=down)[0]


def stereo_motorcycle(scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The Middlebury motorcycle stereo pair (D2-Net chapter's real-scene test).

    Returns ``(left, right, disparity)``: ``(3, H, W)`` float32 tensors in [0, 1] and the
    ``(H, W)`` float32 disparity of the left image, NaN where there is no ground truth
    (stored as ``inf`` in scikit-image's file). Left pixel ``(x, y)`` matches right point
    ``(x - d, y)`` (see the module docstring for the check). At ``scale=1``,
    ``H, W = 500, 741``.

    ``scale != 1`` resizes to ``H' = round(scale * H)``, ``W' = round(scale * W)``: the
    images bilinearly (``align_corners=False``, antialiased when shrinking), the
    disparity by nearest-pixel sampling with the same pixel-centre mapping
    ``x' = (x + 0.5) W'/W - 0.5`` (so invalid pixels stay NaN and no value is blurred
    across a depth edge), its values multiplied by ``W'/W`` since disparities are
    horizontal lengths.
    """
    from skimage import data

    scale = checks.number(scale, "scale", minimum=0.05, maximum=4.0)
    left, right, disp = data.stereo_motorcycle()
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255.0  # noqa: E731
    left, right = to_t(left), to_t(right)
    disp = np.where(np.isfinite(disp), disp, np.nan).astype(np.float32)
    if scale != 1:
        h, w = disp.shape
        size = (max(1, int(round(scale * h))), max(1, int(round(scale * w))))
        left = _resize(left, size, "bilinear").clamp(0, 1)
        right = _resize(right, size, "bilinear").clamp(0, 1)
        d = _resize(torch.from_numpy(disp)[None], size, "nearest-exact")[0]
        disp = (d.numpy() * (size[1] / w)).astype(np.float32)
    return left.contiguous(), right.contiguous(), disp


def stereo_errors(kp_left, kp_right, matches, disparity) -> np.ndarray:
    """Error of each left-right match against the ground-truth disparity (D2-Net chapter).

    For a match ``(i, j)`` with left keypoint ``(x, y) = kp_left[i]``, the disparity ``d``
    is read at the left image's nearest pixel ``(round(x), round(y))`` and the error is
    the distance between ``kp_right[j]`` and the true position ``(x - d, y)``. Returns
    ``(P,)`` float64, NaN where the left keypoint is outside the disparity map or its
    disparity is invalid (NaN or inf): drop those before :func:`kpedu.metrics.mma`.
    Keypoints are ``(N, 2)`` ``(x, y)`` with pixel centres at integers; ``disparity`` is
    ``(H, W)`` as returned by :func:`stereo_motorcycle`: NaN or ``inf`` where there is no
    ground truth. A missing keypoint (NaN, on either side) is a miss, never dropped: its
    error is ``inf``.
    """
    def points(kp, name):
        a = checks.as_array(kp, name)
        if a.size == 0:
            return a.reshape(0, 2)
        return checks.points(a, name, ndim=2, backend="numpy", shape_text="(N, 2)")  # NaN: missing

    pl, pr = points(kp_left, "kp_left"), points(kp_right, "kp_right")
    d = checks.as_array(disparity, "disparity")  # NaN / inf: no ground truth
    if d.ndim != 2:
        raise ValueError(f"disparity must have shape (H, W), got shape {d.shape}")
    from ..metrics import match_indices

    m = match_indices(matches, len(pl), len(pr))
    if m.size == 0:
        return np.zeros(0, dtype=np.float64)
    left, right = pl[m[:, 0]], pr[m[:, 1]]
    h, w = d.shape
    with np.errstate(invalid="ignore"):
        col = np.round(left[:, 0])
        row = np.round(left[:, 1])
        inside = (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)
    di = np.full(len(m), np.nan)
    di[inside] = d[row[inside].astype(np.int64), col[inside].astype(np.int64)]
    di[~np.isfinite(di)] = np.nan
    true = np.stack([left[:, 0] - di, left[:, 1]], axis=1)
    err = np.linalg.norm(right - true, axis=1)
    missing = np.isnan(left).any(1) | np.isnan(right).any(1)
    return np.where(missing, np.inf, err)
