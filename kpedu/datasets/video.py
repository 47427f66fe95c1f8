"""Videos stored as folders of frames, for the Transporter (Kulkarni et al., NeurIPS 2019).

The Transporter learns from raw frames of videos: Atari episodes and robot camera streams in
the paper. Any video becomes that input once its frames are written to disk, one folder
per clip (``ffmpeg -i clip.mp4 clip/%05d.png``, or the frames an Atari emulator returns).

On disk: ``ROOT/<clip>/<frame>.{png,jpg,...}``: every sub-folder of ``ROOT`` that holds
images is a clip, its frames in the order of their file names (sorted naturally, so
``frame2`` comes before ``frame10``). Frames are resized to a square (the whole frame,
aspect not kept, as Atari frames are usually fed) when read.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import checks
from ._common import IMAGE_EXTENSIONS, DatasetLayoutError, ImageDataset, as_root, read_rgb, resize_matrix, warp_affine

__all__ = ["VideoFolder"]


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class VideoFolder(ImageDataset):
    """The clips of a folder of frame folders (Transporter chapter).

    Args:
        root: the folder whose sub-folders are clips.
        size: side of the square frames (the released Transporter notebook uses 128).
        min_frames: clips with fewer readable frames are left out (a pair needs two).

    ``dataset[i]`` is frame ``i`` of the concatenated clips: a dict with ``image``
    ``(3, size, size)`` float32 in [0, 1], ``clip`` and ``index``. :meth:`materialise`
    reads clips into a :class:`kpedu.data.videos.VideoSet` (uint8, no annotated points),
    the structure the chapter's training (:func:`kpedu.transporter.experiment.train_transporter`)
    takes. ``clips[c]`` is the list of frame files of clip ``c``.
    """

    def __init__(self, root: str | os.PathLike, size: int = 128, min_frames: int = 2,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
        self.size = checks.integer(size, "size", minimum=8)
        self.min_frames = checks.integer(min_frames, "min_frames", minimum=2)
        self.root = as_root(root)
        ext = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
        clips, names = [], []
        for d in sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural):
            frames = sorted((p for p in d.iterdir() if p.is_file() and p.suffix.lower() in ext
                             and not p.name.startswith(".")), key=_natural)
            if len(frames) >= self.min_frames:
                clips.append(frames)
                names.append(d.name)
        if not clips:
            raise DatasetLayoutError(f"no clip under {self.root}: expected sub-folders holding at least "
                                     f"{self.min_frames} frames each ({', '.join(sorted(ext))}), one per clip")
        self.clips, self.clip_names = clips, names
        self._starts = np.cumsum([0] + [len(c) for c in clips])
        super().__init__()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _where(self, i: int) -> tuple[int, int]:
        c = int(np.searchsorted(self._starts, i, side="right") - 1)
        return c, i - int(self._starts[c])

    def _name(self, c: int, t: int) -> str:
        return self.clips[c][t].relative_to(self.root).as_posix()

    def _files(self) -> list[tuple[str, Path]]:
        return [(self._name(c, t), p) for c, frames in enumerate(self.clips) for t, p in enumerate(frames)]

    def frame(self, c: int, t: int) -> np.ndarray | None:
        """Frame ``t`` of clip ``c`` as ``(size, size, 3)`` uint8, or ``None`` (recorded in
        :attr:`skipped`) when it cannot be read."""
        img = read_rgb(self.clips[c][t])
        if img is None:
            self._skip(self._name(c, t))
            return None
        h, w = img.shape[:2]
        if (h, w) != (self.size, self.size):
            img = warp_affine(img, resize_matrix(self.size / w, self.size / h), (self.size, self.size))
        return np.clip(np.asarray(img), 0, 255).astype(np.uint8)

    def _load(self, i: int):
        c, t = self._where(i)
        img = self.frame(c, t)
        return None if img is None else (img, c)

    def _to_item(self, sample, i: int) -> dict:
        img, c = sample
        return {"image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0),
                "clip": torch.tensor(c), "index": torch.tensor(i, dtype=torch.int64)}

    def pair_batches(self, batch_size: int, seed: int = 0, max_gap: int = 15, clips=None):
        """An endless source of training batches ``{"source", "target"}`` (float, ``(B, 3, size,
        size)``): two frames of one clip at most ``max_gap`` apart, read from disk as they
        are drawn (nothing is held in memory). Deterministic given ``seed``; an unreadable
        frame is replaced by another draw (and recorded in :attr:`skipped`)."""
        batch_size = checks.integer(batch_size, "batch_size", minimum=1)
        max_gap = checks.integer(max_gap, "max_gap", minimum=1)
        pool = list(range(len(self.clips))) if clips is None else [checks.index(c, len(self.clips), "clips")
                                                                    for c in clips]
        if not pool:
            raise ValueError("clips must select at least one clip")
        rng = np.random.default_rng(checks.integer(seed, "seed", minimum=0))
        misses = 0
        while True:
            src, tgt = [], []
            while len(src) < batch_size:
                c = pool[int(rng.integers(len(pool)))]
                n = len(self.clips[c])
                a = int(rng.integers(n))
                lo, hi = max(0, a - max_gap), min(n - 1, a + max_gap)
                b = int(rng.integers(lo, hi))
                b = b + 1 if b >= a else b            # never the same frame
                fa, fb = self.frame(c, a), self.frame(c, b)
                if fa is None or fb is None:
                    misses += 1
                    if misses > 100 * batch_size and not src:
                        raise RuntimeError("no readable pair of frames in the selected clips")
                    continue
                src.append(fa.transpose(2, 0, 1))
                tgt.append(fb.transpose(2, 0, 1))
            yield {"source": torch.from_numpy(np.stack(src)).float().div_(255.0),
                   "target": torch.from_numpy(np.stack(tgt)).float().div_(255.0)}

    def materialise(self, clips=None, frames: int | None = None, progress: bool = False):
        """Clips ``clips`` (indices; default all) as a :class:`kpedu.data.videos.VideoSet`
        of ``frames`` frames each (default: the shortest selected clip's length; longer
        clips are cut, shorter ones left out). A frame that cannot be read ends its clip
        there. Unreadable frames are reported."""
        from ..data.videos import VideoSet

        idx = list(range(len(self.clips))) if clips is None else [checks.index(c, len(self.clips), "clips")
                                                                   for c in clips]
        if not idx:
            raise ValueError("clips must select at least one clip")
        n = min(len(self.clips[c]) for c in idx) if frames is None else checks.integer(frames, "frames", minimum=2)
        it = idx
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(idx, desc="reading clips")
        kept, names = [], []
        for c in it:
            if len(self.clips[c]) < n:
                continue
            clip = []
            for t in range(n):
                img = self.frame(c, t)
                if img is None:
                    break
                clip.append(img.transpose(2, 0, 1))
            if len(clip) == n:
                kept.append(np.stack(clip))
                names.append(self.clip_names[c])
        self.report()
        if not kept:
            raise RuntimeError(f"no clip of {n} readable frames among the {len(idx)} selected")
        v = len(kept)
        return VideoSet(torch.from_numpy(np.stack(kept)), torch.zeros(v, n, 0, 2), torch.zeros(v, n, 0, dtype=torch.bool),
                        (), "frames", torch.full((v,), float(self.size)), {"clips": names, "root": str(self.root)})
