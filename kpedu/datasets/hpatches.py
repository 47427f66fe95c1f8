"""HPatches sequences, the image-matching benchmark of the D2-Net paper (Dusmanu et al., CVPR 2019, Sec. 5).

On disk, as distributed (``hpatches-sequences-release.tar.gz``)::

    ROOT/hpatches-sequences-release/i_ajuntament/1.ppm ... 6.ppm, H_1_2 ... H_1_6
    ROOT/hpatches-sequences-release/v_abstract/...
    (ROOT may also be the hpatches-sequences-release folder itself)

116 sequences of six images: 57 ``i_*`` (illumination changes, fixed viewpoint) and 59
``v_*`` (viewpoint changes). ``H_1_j`` is a text file of three lines of three numbers:
the homography mapping image 1's pixel coordinates to image ``j``'s. Each sequence gives
five pairs ``(1, j)``, ``j = 2 .. 6``.

The D2-Net paper evaluates on 108 sequences: 52 illumination and 56 viewpoint, leaving
out the eight whose images exceed 1600 x 1200 (:data:`D2NET_EXCLUDED`, the default of
``exclude``). The mean matching accuracy (MMA) at 1 to 10 pixels is computed by
:func:`kpedu.d2net.experiment.evaluate`, which only needs ``len(set)`` and
``set.pair(i)``, both provided here: ``hpatches_sets(root)`` can stand in for
:func:`kpedu.d2net.experiment.evaluation_sets`. ``max_size`` shrinks large images (the
homography is rescaled to match), and :meth:`HPatchesSequences.to_pairset` resamples
the pairs into a square :class:`kpedu.data.pairs.PairSet` for code that needs one size.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .. import checks
from ._common import DatasetLayoutError, ImageDataset, as_root, float_chw, read_rgb, resize_matrix, warp_affine

__all__ = ["D2NET_EXCLUDED", "find_hpatches", "read_homography", "HPatchesSequences", "hpatches_sets"]

#: The eight high-resolution sequences the D2-Net paper (and later work) leaves out.
D2NET_EXCLUDED: tuple[str, ...] = ("i_contruction", "i_crownnight", "i_dc", "i_pencils", "i_whitebuilding",
                                   "v_artisans", "v_astronautis", "v_talent")

_LAYOUT = ("the HPatches layout ROOT/hpatches-sequences-release/{i_*,v_*}/1.ppm..6.ppm with H_1_2..H_1_6 "
           "(or ROOT itself holding the i_* and v_* folders)")
_KINDS = {"viewpoint": "v_", "illumination": "i_"}


def find_hpatches(root: str | os.PathLike) -> Path:
    """The folder holding the ``i_*`` and ``v_*`` sequences (``DatasetLayoutError`` otherwise)."""
    root = as_root(root)
    for cand in (root / "hpatches-sequences-release", root):
        if cand.is_dir() and any(p.is_dir() and p.name[:2] in ("i_", "v_") for p in cand.iterdir()):
            return cand
    raise DatasetLayoutError(f"no i_* or v_* sequence folders under {root} or {root / 'hpatches-sequences-release'}: "
                             f"expected {_LAYOUT}")


def read_homography(path: str | os.PathLike) -> np.ndarray:
    """A ``3 x 3`` float64 homography from an HPatches ``H_1_j`` text file."""
    p = Path(path)
    try:
        rows = [[float(v) for v in line.split()] for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError:
        raise ValueError(f"{p}: a homography file must hold three lines of three numbers") from None
    H = np.asarray(rows, dtype=np.float64) if rows and all(len(r) == 3 for r in rows) else None
    if H is None or H.shape != (3, 3) or not np.isfinite(H).all():
        raise ValueError(f"{p}: a homography file must hold three lines of three finite numbers")
    return H


def _scale_h(sx1: float, sy1: float, sx2: float, sy2: float) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 resize maps of image 1 and image 2 (pixel-centre convention)."""
    a = np.vstack([resize_matrix(sx1, sy1), [0.0, 0.0, 1.0]])
    b = np.vstack([resize_matrix(sx2, sy2), [0.0, 0.0, 1.0]])
    return a, b


class HPatchesSequences(ImageDataset):
    """The HPatches pairs ``(1, j)``, ``j = 2 .. 6``, of the chosen sequences, lazily.

    Args:
        root: the HPatches folder (:mod:`kpedu.datasets.hpatches` for the layout).
        kind: ``"viewpoint"`` (``v_*``), ``"illumination"`` (``i_*``) or ``"all"``.
        exclude: sequence names left out (default :data:`D2NET_EXCLUDED`; ``()`` for none).
        max_size: when set, an image whose longer side exceeds it is shrunk to it
            (anti-aliased) and the homography rescaled to match.
        sequences: only these sequence names (after ``kind`` and ``exclude``).

    ``dataset[i]`` is a dict: ``image1`` ``(3, h1, w1)`` and ``image2`` ``(3, h2, w2)``
    float32 in ``[0, 1]`` (sizes differ between images: batch with ``batch_size=1``),
    ``H`` ``(3, 3)`` float64 (image-1 pixels -> image-2 pixels, pixel centres at
    integers) and ``index``; ``pair(i)`` returns ``(image1, image2, H as numpy)`` like
    :meth:`kpedu.data.pairs.PairSet.pair`. ``pairs[i]`` is ``(sequence, j)``.
    """

    def __init__(self, root: str | os.PathLike, kind: str = "all", exclude: Sequence[str] | None = D2NET_EXCLUDED,
                 max_size: int | None = None, sequences: Sequence[str] | None = None):
        self.kind = checks.choice(kind, "kind", ("viewpoint", "illumination", "all"))
        self.max_size = None if max_size is None else checks.integer(max_size, "max_size", minimum=8)
        folder = find_hpatches(root)
        excluded = set(() if exclude is None else exclude)
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_"))
        if kind != "all":
            names = [n for n in names if n.startswith(_KINDS[kind])]
        names = [n for n in names if n not in excluded]
        if sequences is not None:
            if isinstance(sequences, (str, bytes)):
                raise TypeError(f"sequences must be a list of sequence names, got {checks.describe(sequences)}")
            wanted = list(sequences)
            unknown = [s for s in wanted if s not in names]
            if unknown:
                raise ValueError(f"sequences {unknown} are not {kind} sequences of {folder} (after exclude)")
            names = wanted
        if not names:
            raise DatasetLayoutError(f"no {kind} sequences left in {folder}: expected {_LAYOUT}")
        for n in names:
            for f in [f"{j}.ppm" for j in range(1, 7)] + [f"H_1_{j}" for j in range(2, 7)]:
                if not (folder / n / f).is_file():
                    raise DatasetLayoutError(f"sequence {folder / n} has no {f}: expected {_LAYOUT}")
        self.folder = folder
        self.sequences = names
        self.pairs = [(n, j) for n in names for j in range(2, 7)]
        super().__init__()

    def __len__(self) -> int:
        return len(self.pairs)

    def _files(self) -> list[tuple[str, Path]]:
        return [(f"{q}/{j}.ppm", self.folder / q / f"{j}.ppm") for q in self.sequences for j in range(1, 7)]

    def homography(self, i: int) -> np.ndarray:
        """Pair ``i``'s homography as distributed (full-resolution pixels)."""
        seq, j = self.pairs[checks.index(i, len(self), "index")]
        return read_homography(self.folder / seq / f"H_1_{j}")

    def _image(self, seq: str, j: int) -> tuple[np.ndarray, float, float] | None:
        img = read_rgb(self.folder / seq / f"{j}.ppm")
        if img is None:
            self._skip(f"{seq}/{j}.ppm")
            return None
        h, w = img.shape[:2]
        if self.max_size is None or max(h, w) <= self.max_size:
            return img, 1.0, 1.0
        k = self.max_size / float(max(h, w))
        oh, ow = max(1, int(round(h * k))), max(1, int(round(w * k)))
        sx, sy = ow / w, oh / h
        return warp_affine(img, resize_matrix(sx, sy), (oh, ow)), sx, sy

    def _load(self, i: int):
        seq, j = self.pairs[i]
        a = self._image(seq, 1)
        if a is None:
            return None
        b = self._image(seq, j)
        if b is None:
            return None
        H = read_homography(self.folder / seq / f"H_1_{j}")
        s1, s2 = _scale_h(a[1], a[2], b[1], b[2])
        return a[0], b[0], s2 @ H @ np.linalg.inv(s1)

    def _to_item(self, sample, i: int) -> dict:
        a, b, H = sample
        return {"image1": float_chw(a), "image2": float_chw(b), "H": torch.from_numpy(H),
                "index": torch.tensor(i, dtype=torch.int64)}

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Pair ``i`` as ``(image1, image2, H)``: float images in ``[0, 1]`` and the numpy
        homography, as :meth:`kpedu.data.pairs.PairSet.pair`."""
        item = self[i]
        return item["image1"], item["image2"], item["H"].numpy()

    def to_pairset(self, size: int = 256, n: int | None = None, indices: Iterable[int] | None = None,
                   progress: bool = False):
        """The first ``n`` pairs (all by default), or ``indices``, resampled to
        ``size x size`` (the aspect ratio is not kept) as a :class:`kpedu.data.pairs.PairSet`
        whose homographies map the resampled views exactly. Needs ``kind`` "viewpoint" or
        "illumination" (a PairSet has one kind). Unreadable images are left out and reported."""
        from ..data.pairs import PairSet

        if self.kind == "all":
            raise ValueError("to_pairset needs kind='viewpoint' or kind='illumination' (a PairSet has one kind), "
                             "got kind='all'")
        size = checks.integer(size, "size", minimum=8)
        samples, used = self._gather(n, indices, progress)
        one, two, hs = [], [], []
        for a, b, H in samples:
            (h1, w1), (h2, w2) = a.shape[:2], b.shape[:2]
            s1, s2 = _scale_h(size / w1, size / h1, size / w2, size / h2)
            one.append(torch.from_numpy(warp_affine(a, s1[:2], size).transpose(2, 0, 1).copy()))
            two.append(torch.from_numpy(warp_affine(b, s2[:2], size).transpose(2, 0, 1).copy()))
            hs.append(s2 @ H @ np.linalg.inv(s1))
        self.materialised_indices = used
        return PairSet(torch.stack(one), torch.stack(two), np.stack(hs), [self.pairs[i][0] for i in used], self.kind)

    materialise = to_pairset


def hpatches_sets(root: str | os.PathLike, exclude: Sequence[str] | None = D2NET_EXCLUDED,
                  max_size: int | None = None) -> dict[str, HPatchesSequences]:
    """``{"viewpoint": ..., "illumination": ...}``: the two halves of the benchmark, in the
    form :func:`kpedu.d2net.experiment.evaluate` takes (``sets``)."""
    return {kind: HPatchesSequences(root, kind, exclude, max_size) for kind in ("viewpoint", "illumination")}
