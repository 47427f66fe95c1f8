"""Single-person crops held as tensors: the data of the Foundations and Stacked Hourglass
chapters.

:func:`make_people` renders ``n`` crops with :class:`kpedu.data.SyntheticPeople`
(``mode="single"``) and keeps the main (centred) person of each as a
:class:`PeopleTensors`: ``uint8`` images (four times less memory than float) with the
keypoints, COCO visibility flags, head sizes (the PCKh normaliser) and visible areas
(COCO's OKS scale). Crop ``i`` depends only on ``(seed, i)``.

Shared data, not a chapter's helper: :mod:`kpedu.foundations` and
:mod:`kpedu.hourglass.experiment` both take their crops from here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks
from .people import SyntheticPeople

__all__ = ["PeopleTensors", "make_people"]


@dataclass
class PeopleTensors:
    """A pre-generated set of single-person crops held as tensors."""

    images: torch.Tensor      # (N, 3, S, S) uint8 to save memory
    keypoints: torch.Tensor   # (N, K, 2) float32, image pixels
    visible: torch.Tensor     # (N, K) uint8, COCO flags
    head_sizes: torch.Tensor  # (N,) head diameters, the PCKh normaliser
    areas: torch.Tensor       # (N,) visible pixel area, COCO's OKS scale

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, idx) -> dict:
        return {
            "image": self.images[idx].float() / 255.0,
            "keypoints": self.keypoints[idx],
            "visible": self.visible[idx],
        }


def make_people(n: int, seed: int, image_size: int = 64, progress: bool = False, **kwargs) -> PeopleTensors:
    """Generate ``n`` single-person crops with :class:`kpedu.data.SyntheticPeople`; the
    tensors hold the main (centred) person. ``kwargs`` go to the generator
    (:func:`kpedu.data.make_person`, e.g. ``distractors=1``)."""
    n = checks.integer(n, "n", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    image_size = checks.integer(image_size, "image_size", minimum=16)  # SyntheticPeople's smallest
    ds = SyntheticPeople(n, image_size=image_size, mode="single", seed=seed, **kwargs)
    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"generating {n} people", mininterval=0.5)
    imgs, kps, vis, heads, areas = [], [], [], [], []
    for i in it:
        s = ds[i]
        imgs.append((s["image"] * 255).round().to(torch.uint8))
        kps.append(s["keypoints"][0])
        vis.append(s["visible"][0])
        heads.append(s["head_sizes"][0])
        areas.append(s["areas"][0])
    return PeopleTensors(torch.stack(imgs), torch.stack(kps).float(), torch.stack(vis).to(torch.uint8),
                         torch.stack(heads).float(), torch.stack(areas).float())
