"""Any folder of photographs as training pairs for D2-Net (Dusmanu et al., CVPR 2019).

The paper trains on MegaDepth's depth-verified correspondences, out of reach here; the
D2-Net chapter trains on planar pairs instead (:mod:`kpedu.data.pairs`): a window of a
photograph and the same plane through a random homography, each with its own lighting.
:class:`ImageFolderPairs` makes those pairs from the photographs of any folder, with
the chapter's own code (:func:`kpedu.data.pairs.make_pair`, which draws the window, the
homography and the lighting and warps with :func:`~kpedu.data.pairs.warp_image`), so
the pairs have the structure of :class:`~kpedu.data.pairs.PairSet` and
:class:`~kpedu.data.pairs.PairBatches`.

On disk: ``ROOT/**/*.{jpg,jpeg,png,ppm,pgm,bmp,tif,tiff,webp}`` (any depth, sorted by
path; other files are ignored).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .. import checks
from ._common import IMAGE_EXTENSIONS, DatasetLayoutError, ImageDataset, as_root, read_rgb, resize_matrix, warp_affine

__all__ = ["list_images", "ImageFolderPairs", "FolderPairBatches"]


def list_images(root: str | os.PathLike, recursive: bool = True,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """The image files under ``root`` (by ending, case-insensitive), sorted; a
    ``DatasetLayoutError`` when there is none."""
    root = as_root(root)
    ext = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    it = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in ext and not p.name.startswith("."))
    if not files:
        where = f"{root}{'' if recursive else ' (not searching sub-folders)'}"
        raise DatasetLayoutError(f"no images ({', '.join(sorted(ext))}) under {where}: "
                                 "expected a folder of photographs")
    return files


class ImageFolderPairs(ImageDataset):
    """Random homography pairs from the photographs of a folder (D2-Net chapter).

    Args:
        root: the folder (searched recursively unless ``recursive=False``).
        size: side of the square views (the chapter's training crops: 128).
        kind: a :data:`kpedu.data.pairs.PAIR_KINDS` entry (``"train"``: geometry and
            lighting each drawn between mild and strong).
        seed: item ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
        pairs_per_image: items per photograph (item ``i`` uses photograph
            ``i // pairs_per_image``).
        max_side: photographs with a longer side are shrunk to it when read
            (anti-aliased): the window of a pair is 40-90 % of the shorter side, so a
            larger photograph only costs time.

    ``dataset[i]`` is a dict: ``image1``, ``image2`` ``(3, size, size)`` float32 in
    ``[0, 1]``, ``H`` ``(3, 3)`` float64 (view 1 -> view 2) and ``index``. The default
    ``DataLoader`` collate batches them as :class:`kpedu.data.pairs.PairBatches` does
    (without its ``step``). :meth:`batches` is an endless, resumable source for
    :func:`kpedu.train.fit` (:class:`FolderPairBatches`); :meth:`materialise` gives a
    :class:`kpedu.data.pairs.PairSet`. ``files[k]`` is photograph ``k``.
    """

    def __init__(self, root: str | os.PathLike, size: int = 128, kind: str = "train", seed: int = 0,
                 pairs_per_image: int = 1, max_side: int = 512, recursive: bool = True,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
        from ..data.pairs import PAIR_KINDS

        self.size = checks.integer(size, "size", minimum=8)
        self.kind = checks.choice(kind, "kind", PAIR_KINDS)
        self.seed = checks.integer(seed, "seed", minimum=0)
        self.pairs_per_image = checks.integer(pairs_per_image, "pairs_per_image", minimum=1)
        self.max_side = checks.integer(max_side, "max_side", minimum=16)
        self.root = as_root(root)
        self.files = list_images(self.root, recursive, extensions)
        super().__init__()

    def __len__(self) -> int:
        return len(self.files) * self.pairs_per_image

    def name(self, k: int) -> str:
        """Photograph ``k``'s path relative to the folder."""
        return self.files[k].relative_to(self.root).as_posix()

    def _files(self) -> list[tuple[str, Path]]:
        return [(self.name(k), p) for k, p in enumerate(self.files)]

    def photo(self, k: int) -> torch.Tensor | None:
        """Photograph ``k`` as a ``(3, H, W)`` float32 tensor in ``[0, 1]`` (shrunk to
        ``max_side``), or ``None`` when it cannot be read (it is then recorded in
        :attr:`skipped`)."""
        img = read_rgb(self.files[k])
        if img is None:
            self._skip(self.name(k))
            return None
        h, w = img.shape[:2]
        if max(h, w) > self.max_side:
            s = self.max_side / float(max(h, w))
            oh, ow = max(1, int(round(h * s))), max(1, int(round(w * s)))
            img = warp_affine(img, resize_matrix(ow / w, oh / h), (oh, ow))
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)

    def _pair(self, photo: torch.Tensor, rng: np.random.Generator):
        from ..data.pairs import make_pair

        return make_pair(photo, rng, self.size, self.kind)

    def _load(self, i: int):
        photo = self.photo(i // self.pairs_per_image)
        if photo is None:
            return None
        v1, v2, H = self._pair(photo, np.random.default_rng([self.seed, i]))
        return v1, v2, H, i // self.pairs_per_image

    def _to_item(self, sample, i: int) -> dict:
        v1, v2, H, _ = sample
        return {"image1": v1, "image2": v2, "H": torch.as_tensor(H), "index": torch.tensor(i, dtype=torch.int64)}

    def batches(self, batch_size: int, seed: int | None = None) -> "FolderPairBatches":
        """An endless source of training batches from this folder (:class:`FolderPairBatches`)."""
        return FolderPairBatches(self, batch_size, self.seed if seed is None else seed)

    def materialise(self, n: int | None = None, indices: Iterable[int] | None = None, progress: bool = False):
        """The first ``n`` pairs (all by default), or ``indices``, as a
        :class:`kpedu.data.pairs.PairSet` (uint8 views; ``photo`` holds the file names).
        Unreadable photographs are left out and reported."""
        from ..data.pairs import PairSet

        samples, used = self._gather(n, indices, progress)
        self.materialised_indices = used

        def u8(x):
            return (x.clamp(0, 1) * 255).round().to(torch.uint8)

        return PairSet(torch.stack([u8(s[0]) for s in samples]), torch.stack([u8(s[1]) for s in samples]),
                       np.stack([s[2] for s in samples]), [self.name(s[3]) for s in samples], self.kind)


class FolderPairBatches:
    """Endless, deterministic training batches of pairs from an :class:`ImageFolderPairs`.

    Batch ``t`` depends only on ``(seed, t)`` (so :func:`kpedu.train.fit` can resume a
    run exactly), like :class:`kpedu.data.pairs.PairBatches`, and has its keys:
    ``image1``, ``image2`` ``(B, 3, S, S)`` float32, ``H`` ``(B, 3, 3)`` float64 and
    ``step``. Each pair comes from a photograph drawn at random; an unreadable one is
    recorded in the data set's ``skipped`` (with a warning) and another is drawn. When
    every photograph is unreadable the call raises ``RuntimeError``. ``report()`` warns
    with the count of skipped photographs so far.
    """

    def __init__(self, folder: ImageFolderPairs, batch_size: int, seed: int = 0):
        if not isinstance(folder, ImageFolderPairs):
            raise TypeError(f"folder must be an ImageFolderPairs, got {checks.describe(folder)}")
        self.folder = folder
        self.batch_size = checks.integer(batch_size, "batch_size", minimum=1)
        self.seed = checks.integer(seed, "seed", minimum=0)

    def batch(self, t: int) -> dict:
        """Batch ``t`` (an integer step ``>= 0``)."""
        t = checks.integer(t, "t", minimum=0)
        rng = np.random.default_rng([self.seed, t])
        n = len(self.folder.files)
        a, b, hs = [], [], []
        while len(a) < self.batch_size:
            photo = None
            for _ in range(4 * n + 8):
                k = int(rng.integers(n))
                if self.folder.name(k) in self.folder._skipped_set:
                    continue
                photo = self.folder.photo(k)
                if photo is not None:
                    break
            if photo is None:
                readable = [k for k in range(n) if self.folder.name(k) not in self.folder._skipped_set]
                photo = next((p for p in (self.folder.photo(k) for k in readable) if p is not None), None)
                if photo is None:
                    raise RuntimeError(f"none of the {n} photographs under {self.folder.root} could be read "
                                       f"(first: {', '.join(self.folder.skipped[:3])})")
            v1, v2, H = self.folder._pair(photo, rng)
            a.append(v1)
            b.append(v2)
            hs.append(H)
        return {"image1": torch.stack(a), "image2": torch.stack(b), "H": torch.as_tensor(np.stack(hs)),
                "step": torch.tensor(int(t))}

    def report(self) -> int:
        """:meth:`ImageFolderPairs.report` of the folder."""
        return self.folder.report()

    def __iter__(self):
        t = 0
        while True:
            yield self.batch(t)
            t += 1
