"""CelebA with the MAFL split, the faces of the factorized spatial embeddings paper
(Thewlis, Bilen and Vedaldi, ICCV 2017).

On disk, as distributed (the folders of the CelebA download; the flat variant, with
everything directly in ROOT, is read too)::

    ROOT/Img/img_align_celeba/000001.jpg ...        (or ROOT/img_align_celeba/)
    ROOT/Anno/list_landmarks_align_celeba.txt       (or ROOT/list_landmarks_align_celeba.txt)
    ROOT/Eval/list_eval_partition.txt               (optional; or ROOT/list_eval_partition.txt)
    ROOT/MAFL/training.txt, ROOT/MAFL/testing.txt   (or ROOT/training.txt, ROOT/testing.txt)

``list_landmarks_align_celeba.txt``: a line with the number of images, a header line
(``lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y
rightmouth_x rightmouth_y``), then one line per image: the file name and the ten
numbers. The five points are MAFL's, in the order of :data:`kpedu.data.MAFL_INDICES`
(left eye, right eye, nose, left and right mouth corners; left and right as seen in the
image), which is the order of :class:`kpedu.data.FaceSet`'s first five landmarks, so the
chapter's evaluation (``kpedu.fse.evaluate``, NME over the inter-ocular distance between
landmarks 0 and 1) applies unchanged. The MAFL lists hold image names (the first word of
each line): 19,000 training and 1,000 test images.

Splits: ``"mafl_train"`` and ``"mafl_test"`` (the regressor's fitting and test sets of
the protocol), ``"train"`` (the unsupervised training images: CelebA's training
partition when ``list_eval_partition.txt`` is there, else every image, minus the MAFL
test images, as in that loader) and ``"all"``.

Crop. The crop follows the CelebA/MAFL data loader that Thewlis et al. published with
their later Descriptor Vector Exchange code (ICCV 2019), the public code of the same
authors closest to the paper: it takes the 178 x 178 square starting at row 30 of the
178 x 218 aligned image, resizes it to 100 x 100 and cuts 18 pixels from every side, a
64 x 64 face. :data:`THEWLIS_WINDOW` is that final square in source pixels
(edges ``x`` 32.04 to 145.96, ``y`` 62.04 to 175.96); it is resampled to
``image_size`` (64 in the paper and in the book's recipe), anti-aliased. The landmarks
follow by the same affine map, taking the annotated coordinates as pixel centres (that
loader scales them without the half-pixel term, a difference of 0.22 px at 64 x 64). Images of another size than 178 x 218 have the window scaled with them.
``window=None`` keeps the aligned images as they are (218 x 178).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .. import checks
from ._common import (
    DatasetLayoutError,
    ImageDataset,
    as_root,
    check_images_exist,
    crop_matrix,
    first_existing,
    float_chw,
    read_name_list,
    read_rgb,
    transform_points,
    uint8_chw,
    warp_affine,
)

__all__ = ["THEWLIS_WINDOW", "CELEBA_SIZE", "read_celeba_landmarks", "find_celeba", "CelebAFaces"]

#: ``(left, top, side)`` of that loader's final face square in the 178 x 218 aligned
#: image, in pixel-edge coordinates (a 178-pixel square from row 30, resized to 100,
#: 18 pixels cut from each side: 64/100 of 178 = 113.92 pixels).
THEWLIS_WINDOW: tuple[float, float, float] = (18 * 1.78, 30 + 18 * 1.78, 64 * 1.78)
#: ``(height, width)`` of CelebA's aligned images.
CELEBA_SIZE: tuple[int, int] = (218, 178)

_LANDMARKS = "list_landmarks_align_celeba.txt"
_HEADER = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y", "leftmouth_x", "leftmouth_y",
           "rightmouth_x", "rightmouth_y")
_LAYOUT = ("the CelebA layout ROOT/Img/img_align_celeba/*.jpg and ROOT/Anno/list_landmarks_align_celeba.txt "
           "(or both directly in ROOT) with the MAFL lists ROOT/MAFL/training.txt and ROOT/MAFL/testing.txt")


def read_celeba_landmarks(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """``(names, landmarks (N, 5, 2) float64)`` from ``list_landmarks_align_celeba.txt``."""
    p = Path(path)
    if not p.is_file():
        raise DatasetLayoutError(f"no {_LANDMARKS} at {p}: expected {_LAYOUT}")
    lines = p.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2:
        raise ValueError(f"{p}: expected a count line and a header line, got {len(lines)} line(s)")
    try:
        count = int(lines[0].split()[0])
    except (ValueError, IndexError):
        raise ValueError(f"{p}: the first line must be the number of images, got {lines[0]!r:.60}") from None
    if tuple(lines[1].split()) != _HEADER:
        raise ValueError(f"{p}: the second line must be the header {' '.join(_HEADER)!r}, got {lines[1]!r:.80}")
    names, values = [], []
    for n, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 11:
            raise ValueError(f"{p} line {n}: expected an image name and 10 numbers, got {len(parts)} fields")
        try:
            values.append([float(v) for v in parts[1:]])
        except ValueError:
            raise ValueError(f"{p} line {n}: the 10 landmark coordinates must be numbers, got {line!r:.80}") from None
        names.append(parts[0])
    if len(names) != count:
        raise ValueError(f"{p}: the first line announces {count} images but {len(names)} follow")
    return names, np.asarray(values, dtype=np.float64).reshape(-1, 5, 2)


def find_celeba(root: str | os.PathLike) -> dict[str, Path | None]:
    """The files of a CelebA folder: ``images``, ``landmarks``, ``partition`` (or None),
    ``mafl_train`` and ``mafl_test`` (``DatasetLayoutError`` naming the layout when one
    that is needed is missing)."""
    root = as_root(root)
    images = first_existing([root / "Img" / "img_align_celeba", root / "img_align_celeba"], is_dir=True)
    if images is None:
        raise DatasetLayoutError(f"no img_align_celeba folder under {root} or {root / 'Img'}: expected {_LAYOUT}")
    landmarks = first_existing([root / "Anno" / _LANDMARKS, root / _LANDMARKS])
    if landmarks is None:
        raise DatasetLayoutError(f"no {_LANDMARKS} under {root / 'Anno'} or {root}: expected {_LAYOUT}")
    partition = first_existing([root / "Eval" / "list_eval_partition.txt", root / "list_eval_partition.txt"])
    out: dict[str, Path | None] = {"images": images, "landmarks": landmarks, "partition": partition}
    for key, fname in (("mafl_train", "training.txt"), ("mafl_test", "testing.txt")):
        out[key] = first_existing([root / "MAFL" / fname, root / fname])
    return out


def _mafl(files: dict, key: str, root) -> list[str]:
    if files[key] is None:
        fname = "training.txt" if key == "mafl_train" else "testing.txt"
        raise DatasetLayoutError(f"no MAFL {fname} under {Path(root) / 'MAFL'} or {root}: expected {_LAYOUT}")
    return read_name_list(files[key], "MAFL list")


class CelebAFaces(ImageDataset):
    """Aligned CelebA faces with their five MAFL landmarks, lazily (the factorized spatial
    embeddings chapter's :class:`kpedu.data.FaceSet`, real).

    Args:
        root: the CelebA folder (:mod:`kpedu.datasets.celeba` for the layout).
        split: ``"mafl_train"``, ``"mafl_test"``, ``"train"`` or ``"all"``.
        image_size: side of the square faces (64, as in the paper).
        window: ``(left, top, side)`` of the source square (178 x 218 pixel-edge
            coordinates), default :data:`THEWLIS_WINDOW`; ``None`` keeps the aligned
            218 x 178 image as it is (``image_size`` is then ignored).

    ``dataset[i]`` is a dict: ``image`` ``(3, S, S)`` float32 in ``[0, 1]``,
    ``landmarks`` ``(5, 2)`` float32 (image pixels, MAFL order) and ``index`` (int64),
    the items of :class:`kpedu.data.SyntheticFaces`. :meth:`materialise` gives a
    :class:`kpedu.data.FaceSet`; :meth:`inter_ocular` the NME normaliser of every face
    without reading an image. ``names[i]`` is face ``i``'s file name.
    """

    def __init__(self, root: str | os.PathLike, split: str = "mafl_train", image_size: int = 64,
                 window: Sequence[float] | None = THEWLIS_WINDOW):
        split = checks.choice(split, "split", ("mafl_train", "mafl_test", "train", "all"))
        files = find_celeba(root)
        names, landmarks = read_celeba_landmarks(files["landmarks"])
        index = {n: i for i, n in enumerate(names)}
        if split in ("mafl_train", "mafl_test"):
            chosen = _mafl(files, split, root)
        else:
            chosen = list(names)
            if split == "train":
                test = set(_mafl(files, "mafl_test", root))
                if files["partition"] is not None:
                    part = {}
                    for line in Path(files["partition"]).read_text(encoding="utf-8").splitlines():
                        w = line.split()
                        if len(w) >= 2:
                            part[w[0]] = w[1]
                    chosen = [n for n in chosen if part.get(n) == "0"]
                chosen = [n for n in chosen if n not in test]
        missing = [n for n in chosen if n not in index]
        if missing:
            raise ValueError(f"{len(missing)} image(s) of the {split} split are not in {files['landmarks'].name} "
                             f"(e.g. {missing[0]})")
        self.split = split
        self.names = chosen
        self.image_dir = Path(files["images"])
        self._landmarks = landmarks[[index[n] for n in chosen]]
        if window is None:
            self.window = None
            self.image_size = None
        else:
            if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 3:
                raise ValueError(f"window must be (left, top, side) or None, got {checks.describe(window)}")
            left = checks.number(window[0], "window[0] (left)")
            top = checks.number(window[1], "window[1] (top)")
            side = checks.number(window[2], "window[2] (side)", minimum=0.0, min_open=True)
            self.window = (left, top, side)
            self.image_size = checks.integer(image_size, "image_size", minimum=8)
        super().__init__()
        check_images_exist(self.image_dir, chosen, _LAYOUT)

    def __len__(self) -> int:
        return len(self.names)

    def _files(self) -> list[tuple[str, Path]]:
        return [(n, self.image_dir / n) for n in self.names]

    def _matrix(self, height: int, width: int) -> np.ndarray | None:
        if self.window is None:
            return None
        sx, sy = width / CELEBA_SIZE[1], height / CELEBA_SIZE[0]
        left, top, side = self.window
        # a square in the 178 x 218 frame; scaled with images of another size
        # the window is given by its edges; its centre in pixel-centre coordinates is half a pixel less
        m = crop_matrix((left + side / 2.0 - 0.5, top + side / 2.0 - 0.5), side, self.image_size)
        if (sx, sy) != (1.0, 1.0):
            m = m @ np.array([[1.0 / sx, 0.0, 0.5 / sx - 0.5], [0.0, 1.0 / sy, 0.5 / sy - 0.5], [0.0, 0.0, 1.0]])
        return m

    def _load(self, i: int):
        name = self.names[i]
        img = read_rgb(self.image_dir / name)
        if img is None:
            self._skip(name)
            return None
        m = self._matrix(*img.shape[:2])
        lm = self._landmarks[i]
        if m is None:
            return img, lm.astype(np.float32)
        return warp_affine(img, m, self.image_size), transform_points(m, lm).astype(np.float32)

    def _to_item(self, sample, i: int) -> dict:
        img, lm = sample
        return {"image": float_chw(img), "landmarks": torch.from_numpy(lm), "index": torch.tensor(i, dtype=torch.int64)}

    def landmarks(self) -> np.ndarray:
        """``(N, 5, 2)`` landmarks of every face in output pixels, without reading images
        (for images of the standard 178 x 218 size)."""
        m = self._matrix(*CELEBA_SIZE)
        return self._landmarks.copy() if m is None else transform_points(m, self._landmarks)

    def inter_ocular(self) -> np.ndarray:
        """``(N,)`` distance between the eye centres (landmarks 0 and 1) in output pixels:
        the NME normaliser of the protocol (``kpedu.fse.inter_ocular``)."""
        lm = self.landmarks()
        return np.linalg.norm(lm[:, 1] - lm[:, 0], axis=-1)

    def materialise(self, n: int | None = None, indices: Iterable[int] | None = None, progress: bool = False):
        """The first ``n`` faces (all by default), or ``indices``, as a
        :class:`kpedu.data.FaceSet` (images uint8, landmarks ``(N, 5, 2)``). Unreadable
        images are left out and reported; ``self.materialised_indices`` lists the faces held."""
        from ..data import FaceSet

        faces, used = self._gather(n, indices, progress)
        shapes = {f[0].shape for f in faces}
        if len(shapes) > 1:
            raise ValueError(f"the faces have different sizes {sorted(shapes)}; use a window to crop them to one size")
        self.materialised_indices = used
        return FaceSet(torch.stack([uint8_chw(f[0]) for f in faces]), torch.from_numpy(np.stack([f[1] for f in faces])))
