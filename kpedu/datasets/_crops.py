"""Single-person crops for top-down training: the common part of the COCO and MPII loaders.

Each person is a record (image file, crop centre and side in source pixels, keypoints
and flags in source pixels, head size, area). Loading a record reads the image, warps
the square ``centre +- side / 2`` onto ``image_size x image_size``
(:func:`~kpedu.datasets._common.crop_matrix`, anti-aliased) and maps the keypoints
with the same affine transform, so that the sample has the structure of the Stacked
Hourglass chapter's synthetic crops (:class:`kpedu.foundations.PeopleTensors`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from .. import checks
from ._common import ImageDataset, crop_matrix, float_chw, read_rgb, transform_points, uint8_chw, warp_affine


@dataclass
class PersonRecord:
    """One person to crop (source image pixels, pixel centres at integers).

    ``keypoints`` ``(K, 2)`` float64 (0 where not annotated), ``visible`` ``(K,)`` uint8
    COCO flags, ``head_size`` the PCKh normaliser in source pixels (NaN where there is no
    head box), ``area`` the person's area in source pixels (NaN: the area of the box
    around the labelled keypoints is used after cropping), ``key`` an identifier of the
    person in its data set (COCO annotation id; MPII ``(image index, rectangle index)``).
    """

    file: str
    center: np.ndarray
    side: float
    keypoints: np.ndarray
    visible: np.ndarray
    head_size: float
    area: float
    key: object


@dataclass
class _Crop:
    image: np.ndarray      # (S, S, 3) uint8
    keypoints: np.ndarray  # (K, 2) float32
    visible: np.ndarray    # (K,) uint8
    head_size: float
    area: float
    matrix: np.ndarray     # (2, 3) source -> crop


class PersonCrops(ImageDataset):
    """A lazy data set of person crops from :class:`PersonRecord` objects.

    ``dataset[i]`` is a dict: ``image`` ``(3, S, S)`` float32 in ``[0, 1]``,
    ``keypoints`` ``(K, 2)`` float32 crop pixels, ``visible`` ``(K,)`` uint8 (COCO flags
    0/1/2), ``head_size`` and ``area`` (float32 scalars, crop pixels; ``head_size`` NaN
    where the data set has no head boxes), ``transform`` ``(2, 3)`` float64 (source
    pixels -> crop pixels: ``crop = transform @ [x, y, 1]``) and ``index`` (int64). The
    default ``DataLoader`` collate stacks them into the batch dict of
    :meth:`kpedu.foundations.PeopleTensors.batch` (``image``, ``keypoints``,
    ``visible``) plus those extras.

    Keypoints that are not annotated (``v = 0``) are ``(0, 0)``, as in the COCO files.
    With ``drop_outside`` an annotated keypoint that falls outside the crop keeps its
    (exact) crop coordinates but gets ``v = 0``: the network cannot see it.
    """

    def __init__(self, records: list[PersonRecord], image_dir: Path, image_size: int, drop_outside: bool = True):
        super().__init__()
        self.records = records
        self.image_dir = Path(image_dir)
        self.image_size = checks.integer(image_size, "image_size", minimum=8)
        self.drop_outside = bool(drop_outside)

    def __len__(self) -> int:
        return len(self.records)

    def _files(self) -> list[tuple[str, Path]]:
        return [(f, self.image_dir / f) for f in dict.fromkeys(r.file for r in self.records)]

    def transform(self, i: int) -> np.ndarray:
        """The ``2 x 3`` affine map from source-image pixels to crop ``i``'s pixels."""
        r = self.records[checks.index(i, len(self), "index")]
        return crop_matrix(r.center, r.side, self.image_size)

    def to_source(self, i: int, points) -> np.ndarray:
        """Crop-pixel ``points`` ``(..., 2)`` of crop ``i`` mapped back to source-image pixels
        (to score predictions in the original images)."""
        pts = checks.points(points, "points", ndim=None, backend="numpy", shape_text="(..., 2)")
        m = self.transform(i)
        inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        return transform_points(inv, pts)

    def _load(self, i: int):
        r = self.records[i]
        img = read_rgb(self.image_dir / r.file)
        if img is None:
            self._skip(r.file)
            return None
        s = self.image_size
        m = crop_matrix(r.center, r.side, s)
        crop = warp_affine(img, m, s)
        vis = r.visible.astype(np.uint8).copy()
        kp = transform_points(m, r.keypoints)
        kp[vis == 0] = 0.0
        if self.drop_outside:
            out = ((kp < -0.5) | (kp > s - 0.5)).any(-1)
            vis[out] = 0
        k = m[0, 0]
        head = float(r.head_size) * k
        if np.isfinite(r.area):
            area = float(r.area) * k * k
        else:
            lab = kp[vis > 0]
            area = float(np.prod(lab.max(0) - lab.min(0))) if len(lab) >= 2 else 0.0
        return _Crop(crop, kp.astype(np.float32), vis, head, area, m)

    def _to_item(self, c: _Crop, i: int) -> dict:
        return {"image": float_chw(c.image), "keypoints": torch.from_numpy(c.keypoints),
                "visible": torch.from_numpy(c.visible), "head_size": torch.tensor(c.head_size, dtype=torch.float32),
                "area": torch.tensor(c.area, dtype=torch.float32), "transform": torch.from_numpy(c.matrix),
                "index": torch.tensor(i, dtype=torch.int64)}

    def materialise(self, n: int | None = None, indices: Iterable[int] | None = None, progress: bool = False):
        """The first ``n`` crops (all by default), or the crops ``indices``, as a
        :class:`kpedu.foundations.PeopleTensors` (images uint8), the structure the
        Foundations and Stacked Hourglass chapters train and evaluate on. Unreadable
        images are left out and reported (:meth:`report`); ``self.materialised_indices``
        then lists which crops the tensors hold."""
        from ..foundations import PeopleTensors

        crops, used = self._gather(n, indices, progress)
        self.materialised_indices = used
        return PeopleTensors(torch.stack([uint8_chw(c.image) for c in crops]),
                             torch.from_numpy(np.stack([c.keypoints for c in crops])),
                             torch.from_numpy(np.stack([c.visible for c in crops])),
                             torch.tensor([c.head_size for c in crops], dtype=torch.float32),
                             torch.tensor([c.area for c in crops], dtype=torch.float32))
