"""Pieces shared by the real-data loaders of :mod:`kpedu.datasets`.

- :class:`DatasetLayoutError`: a missing file or a wrong folder layout, one line naming
  what was expected;
- :func:`read_rgb`: an image file decoded with OpenCV (BGR turned into RGB), ``None``
  when it cannot be decoded;
- :class:`ImageDataset`: the base of every loader: a lazy map-style
  ``torch.utils.data.Dataset`` that skips unreadable images, counts them in
  :attr:`ImageDataset.skipped` and warns about them (never silently);
- :func:`crop_matrix`, :func:`resize_matrix`, :func:`warp_affine`: the geometry of crops
  and resizes, in the book's pixel convention (pixel row ``i``, column ``j`` has its
  centre at ``(x, y) = (j, i)``, ``book/notation.md``), anti-aliased when shrinking;
- :func:`read_name_list`: a split file (one image name per line, or JSON).
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .. import checks

__all__ = [
    "DatasetLayoutError",
    "read_rgb",
    "ImageDataset",
    "crop_matrix",
    "resize_matrix",
    "warp_affine",
    "transform_points",
    "read_name_list",
    "as_root",
]

#: Image file endings read by the folder loaders (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")


class DatasetLayoutError(FileNotFoundError):
    """A data set folder or file is missing or not laid out as its publisher distributes
    it. The message is one line: what was looked for, where, and the layout expected."""


def as_root(root: Any, name: str = "root") -> Path:
    """``root`` as an existing folder (``DatasetLayoutError`` otherwise)."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or Path), got {checks.describe(root)}")
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetLayoutError(f"{name} {p} does not exist")
    if not p.is_dir():
        raise DatasetLayoutError(f"{name} {p} is not a folder")
    return p


def read_rgb(path: str | os.PathLike) -> np.ndarray | None:
    """The image at ``path`` as an ``(H, W, 3)`` uint8 RGB array, decoded by OpenCV
    (``cv2.imdecode``; grey images get three equal channels, an alpha channel is dropped).

    Returns ``None`` when the file is missing, unreadable or cannot be decoded: the caller
    decides whether that is a skip or an error."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return np.ascontiguousarray(img[:, :, ::-1])


def crop_matrix(center: Sequence[float], side: float, size: int) -> np.ndarray:
    """The ``2 x 3`` affine map from source pixels to a ``size x size`` crop.

    The square of side ``side`` (source pixels) centred at ``center = (x, y)`` is mapped
    onto the whole output: its edges ``center +- side / 2`` go to the output's edges
    ``-0.5`` and ``size - 0.5`` (pixel centres at integers), so the centre lands on
    ``((size - 1) / 2, (size - 1) / 2)``. A point ``p`` maps to ``A @ [x, y, 1]``."""
    k = size / float(side)
    cx, cy = float(center[0]), float(center[1])
    return np.array([[k, 0.0, (size - 1) / 2.0 - k * cx],
                     [0.0, k, (size - 1) / 2.0 - k * cy]], dtype=np.float64)


def resize_matrix(scale_x: float, scale_y: float | None = None) -> np.ndarray:
    """The ``2 x 3`` affine map of a resize by ``scale_x`` (and ``scale_y``, default the
    same) in the pixel-centre convention: ``x' = (x + 0.5) * s - 0.5``."""
    sy = scale_x if scale_y is None else scale_y
    return np.array([[scale_x, 0.0, 0.5 * scale_x - 0.5], [0.0, sy, 0.5 * sy - 0.5]], dtype=np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(..., 2)`` points through a ``2 x 3`` affine map (float64)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:, :2].T + matrix[:, 2]


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int] | int, border: float = 0.0,
                antialias: bool = True, interpolation: str = "linear") -> np.ndarray:
    """``image`` ``(H, W[, C])`` warped by the ``2 x 3`` map ``matrix`` (source -> output)
    into an output of ``size`` (``S`` or ``(H_out, W_out)``), bilinear, ``border`` outside.

    When the map shrinks (scale ``k < 1`` along a source axis) and ``antialias`` is set,
    the part of the source that the output sees is first blurred along that axis with a
    Gaussian of standard deviation ``(1 / k - 1) / 2`` source pixels (the rule of
    ``skimage.transform.rescale``), so that a large photograph does not alias into a
    small crop. Only that part is blurred, so a small crop of a large image stays cheap.
    The dtype is kept (uint8 stays uint8)."""
    import cv2

    oh, ow = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    m = np.asarray(matrix, dtype=np.float64)
    h, w = image.shape[:2]
    # the source rectangle the output needs (with a margin for the blur and the bilinear kernel)
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5], [ow - 0.5, -0.5], [-0.5, oh - 0.5], [ow - 0.5, oh - 0.5]])
    src = transform_points(inv, corners)
    # the scale along each source axis (a resize may shrink x and y differently)
    kx, ky = math.hypot(m[0, 0], m[1, 0]), math.hypot(m[0, 1], m[1, 1])
    sx = (1.0 / kx - 1.0) / 2.0 if (antialias and 0 < kx < 1.0) else 0.0
    sy = (1.0 / ky - 1.0) / 2.0 if (antialias and 0 < ky < 1.0) else 0.0
    pad = int(math.ceil(3 * max(sx, sy))) + 2
    x0 = max(0, int(math.floor(src[:, 0].min())) - pad)
    y0 = max(0, int(math.floor(src[:, 1].min())) - pad)
    x1 = min(w, int(math.ceil(src[:, 0].max())) + pad + 1)
    y1 = min(h, int(math.ceil(src[:, 1].max())) + pad + 1)
    shape = (oh, ow) + tuple(image.shape[2:])
    if x1 <= x0 or y1 <= y0:  # the output sees nothing of the image
        return np.full(shape, border, dtype=image.dtype)
    roi = np.ascontiguousarray(image[y0:y1, x0:x1])
    if max(sx, sy) > 0.05:
        roi = cv2.GaussianBlur(roi, (0, 0), sigmaX=max(sx, 1e-3), sigmaY=max(sy, 1e-3),
                               borderType=cv2.BORDER_REFLECT)
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flag = cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR
    channels = roi.shape[2] if roi.ndim == 3 else 1
    value = (border,) * min(4, channels)
    out = cv2.warpAffine(roi, shifted, (ow, oh), flags=flag, borderMode=cv2.BORDER_CONSTANT, borderValue=value)
    return out.reshape(shape)


def read_name_list(path: str | os.PathLike, what: str = "split file") -> list[str]:
    """Image names from a split file.

    Two formats: a text file with one name per line (the first whitespace-separated word
    of each line; blank lines and lines starting with ``#`` are ignored), or a ``.json``
    file holding a list of names or a list of objects with an ``"image"`` key (the
    per-person lists such as ``valid.json`` distributed with later MPII code, whose
    entries carry ``image``, ``center``, ``scale`` and ``joints``: only the names are
    used). Names are returned in file order, without repeats."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetLayoutError(f"no {what} at {p}: expected a text file with one image name per line, "
                                 "or a JSON list of names (or of objects with an 'image' key)")
    names: list[str] = []
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} {p} is not valid JSON: {e}") from None
        if not isinstance(data, list):
            raise ValueError(f"{what} {p} must hold a JSON list of image names (or of objects with an 'image' "
                             f"key), got a {type(data).__name__}")
        for j, entry in enumerate(data):
            if isinstance(entry, str):
                names.append(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("image"), str):
                names.append(entry["image"])
            else:
                raise ValueError(f"{what} {p}: entry {j} is neither an image name nor an object with an 'image' "
                                 f"name, got {entry!r:.80}")
    else:
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line.split()[0])
    return list(dict.fromkeys(os.path.basename(n) for n in names))


class ImageDataset(torch.utils.data.Dataset):
    """Base class of the loaders: lazy, map-style, and honest about unreadable images.

    Subclasses implement ``__len__``, ``_load(i)`` (the sample of index ``i`` as numpy
    arrays, or ``None`` when its image cannot be read, after calling :meth:`_skip`) and
    ``_to_item(sample, i)`` (the sample as the dict ``__getitem__`` returns).

    **Unreadable images.** ``dataset[i]`` of a sample whose image cannot be decoded
    returns the next readable sample (``i + 1``, ``i + 2``, ..., wrapping around; the
    item's ``index`` says which), so that a long training run goes on; the image's name
    is appended to :attr:`skipped` (once per image) and a warning is issued for each of
    the first :attr:`WARN_FIRST` unreadable images and at every tenfold count (10, 100,
    ...). :meth:`report` warns with the total and the first names (call it at the end of
    an epoch; :meth:`materialise` does). With ``DataLoader`` workers each worker holds
    its own copy of the data set and warns from its own process (:meth:`scan` finds every
    unreadable image beforehand). An unreadable image is never replaced silently, and if
    none can be read the call raises ``RuntimeError``.
    """

    #: Unreadable images announced one by one before the warnings become counts.
    WARN_FIRST = 3

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self._skipped_set: set[str] = set()
        self._reported = 0

    # -- subclass interface --------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, i: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _to_item(self, sample, i: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- skipping ------------------------------------------------------------------
    def _skip(self, name: str, why: str = "cannot be decoded") -> None:
        """Record that image ``name`` could not be used (and warn as described above)."""
        if name in self._skipped_set:
            return
        self._skipped_set.add(name)
        self.skipped.append(name)
        n = len(self.skipped)
        cls = type(self).__name__
        if n <= self.WARN_FIRST:
            warnings.warn(f"{cls}: skipped image {name} ({why}); {n} skipped so far (see .skipped)",
                          RuntimeWarning, stacklevel=3)
        elif math.log10(n).is_integer():
            warnings.warn(f"{cls}: {n} images skipped so far as unreadable (see .skipped)", RuntimeWarning,
                          stacklevel=3)

    def report(self) -> int:
        """Warn with the number of images skipped since the last report and the first few
        names (nothing when none was). Returns the total number skipped so far."""
        n = len(self.skipped)
        if n > self._reported:
            first = ", ".join(self.skipped[:5]) + (", ..." if n > 5 else "")
            warnings.warn(f"{type(self).__name__}: {n} unreadable image(s) skipped in all ({n - self._reported} "
                          f"since the last report): {first}", RuntimeWarning, stacklevel=2)
            self._reported = n
        return n

    def _files(self) -> list[tuple[str, Path]]:  # pragma: no cover - abstract
        """``(name, path)`` of every image file the data set reads (names as in :attr:`skipped`)."""
        raise NotImplementedError

    def scan(self, progress: bool = False) -> list[str]:
        """Decode every image once and record the unreadable ones in :attr:`skipped`
        (then :meth:`report`); returns their names. Worth running before a long run with
        ``DataLoader`` workers, whose copies of the data set keep their own counts: the
        main process then knows every unreadable image from the start. It reads the whole
        data set, so it takes as long as one pass of decoding."""
        files = self._files()
        it: Iterable = files
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(files, desc=f"checking {len(files)} images", mininterval=0.5)
        bad = []
        for name, path in it:
            if name in self._skipped_set or read_rgb(path) is None:
                self._skip(name)
                bad.append(name)
        self.report()
        return bad

    def __getitem__(self, i: int) -> dict:
        n = len(self)
        i = checks.index(i, n, "index")
        for step in range(n):
            j = (i + step) % n
            sample = self._load(j)
            if sample is not None:
                return self._to_item(sample, j)
        raise RuntimeError(f"{type(self).__name__}: none of the {n} images could be read "
                           f"(first: {', '.join(self.skipped[:3])})")

    def _indices(self, n: int | None, indices: Iterable[int] | None) -> list[int]:
        if indices is not None:
            if n is not None:
                raise ValueError("pass n or indices, not both")
            if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
                raise TypeError(f"indices must be a sequence of sample indices, got {checks.describe(indices)}")
            if isinstance(indices, (torch.Tensor, np.ndarray)):
                indices = indices.reshape(-1).tolist()
            return [checks.index(i, len(self), "indices") for i in indices]
        total = len(self)
        n = total if n is None else min(checks.integer(n, "n", minimum=1), total)
        return list(range(n))

    def _gather(self, n: int | None, indices: Iterable[int] | None, progress: bool) -> tuple[list, list[int]]:
        """The readable samples among the first ``n`` (or ``indices``), unreadable ones
        skipped and reported; returns ``(samples, their indices)``."""
        idx = self._indices(n, indices)
        if not idx:
            raise ValueError(f"{type(self).__name__} is empty: nothing to materialise")
        it: Iterable[int] = idx
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(idx, desc=f"loading {len(idx)} samples", mininterval=0.5)
        samples, used = [], []
        for i in it:
            s = self._load(i)
            if s is not None:
                samples.append(s)
                used.append(i)
        self.report()
        if not samples:
            raise RuntimeError(f"{type(self).__name__}: none of the {len(idx)} requested images could be read "
                               f"(first: {', '.join(self.skipped[:3])})")
        return samples, used


def check_images_exist(image_dir: Path, names: Sequence[str], layout: str, probe: int = 5) -> None:
    """Raise :class:`DatasetLayoutError` when none of the first ``probe`` images named by
    the annotations exists in ``image_dir`` (a wrong folder, not a few missing files)."""
    names = list(names)[:probe]
    if names and not any((image_dir / n).is_file() for n in names):
        raise DatasetLayoutError(f"the annotated images are not in {image_dir} (looked for {names[0]}"
                                 f"{' and others' if len(names) > 1 else ''}): expected {layout}")


def uint8_chw(image: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 array as a ``(3, H, W)`` uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def float_chw(image: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 array as a ``(3, H, W)`` float32 tensor in ``[0, 1]``."""
    return uint8_chw(image).float().div_(255.0)


def first_existing(candidates: Iterable[Path], is_dir: bool = False) -> Path | None:
    """The first of ``candidates`` that exists (as a folder when ``is_dir``)."""
    for c in candidates:
        if (c.is_dir() if is_dir else c.is_file()):
            return c
    return None

