"""COCO 2017 person keypoints: crops for top-down training, whole images for bottom-up training.

On disk, as distributed::

    ROOT/annotations/person_keypoints_train2017.json   (and ..._val2017.json)
    ROOT/images/train2017/*.jpg                         (or ROOT/train2017/*.jpg)

The JSON is parsed by :func:`kpedu.data.read_coco` (validated, the keypoint category
only); the ``segmentation`` of crowd regions and of people without keypoints is taken
from the same file for the loss mask. Keypoint coordinates are used as they are (pixel
centres at integers, as :mod:`kpedu.data.coco` reads them); a COCO box ``[x, y, w, h]``
has its edges at ``x`` and ``x + w``, so its centre is at ``x + w / 2 - 0.5`` in the
book's convention.

Two views of the same files:

* :class:`CocoPersonCrops` (the Stacked Hourglass chapter, top-down): one crop per
  annotated person (``iscrowd = 0``, at least ``min_keypoints`` labelled keypoints,
  a box of positive size). The crop is the square around the box's centre whose side is
  the box's longer side times ``padding`` (1.25, as in the top-down COCO baselines),
  resampled to ``image_size``; the keypoints follow, with COCO's flags 0/1/2. COCO has no
  head boxes, so ``head_size`` is NaN (PCKh is undefined; PCK with the torso works).
* :class:`CocoScenes` (the OpenPose chapter, bottom-up): each image resized so that its
  longer side is ``image_size`` and padded (zeros, right and bottom) to a square, with
  every annotation's keypoints, flags, areas and boxes, and the mask of **unlabelled**
  pixels: crowd regions (``iscrowd = 1``, RLE or polygons) and people with fewer than
  ``min_keypoints`` labelled keypoints (COCO's ``num_keypoints = 0`` by default), decoded
  with ``pycocotools.mask``. That mask is where OpenPose's loss weight ``W(p)`` is 0
  (:func:`kpedu.openpose.loss_mask`); unlabelled people stay in the per-person lists with
  every ``v = 0``, as in :class:`kpedu.openpose.experiment.SceneTensors`, so that the COCO
  evaluation ignores them.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .. import checks
from ..data.coco import CocoKeypoints, read_coco
from ._common import (
    DatasetLayoutError,
    ImageDataset,
    as_root,
    check_images_exist,
    float_chw,
    read_rgb,
    resize_matrix,
    transform_points,
    uint8_chw,
    warp_affine,
)
from ._crops import PersonCrops, PersonRecord

__all__ = ["find_coco", "load_coco", "CocoPersonCrops", "CocoScenes", "collate_scenes", "openpose_collate"]

_LAYOUT = ("the COCO 2017 layout ROOT/annotations/person_keypoints_{split}.json with the images in "
           "ROOT/images/{split}/ or ROOT/{split}/")


def _split_name(split: str) -> str:
    if not isinstance(split, str):
        raise TypeError(f"split must be a text such as 'train' or 'val2017', got {checks.describe(split)}")
    if not re.fullmatch(r"(train|val)(\d{4})?", split):
        raise ValueError(f"split must be 'train', 'val', 'train2017', 'val2017' (or another year), got {split!r}")
    return split if split[-1].isdigit() else split + "2017"


def find_coco(root: str | os.PathLike, split: str = "train", annotations: str | os.PathLike | None = None
              ) -> tuple[Path, Path]:
    """``(annotation file, image folder)`` of a COCO folder for ``split`` (``"train"`` is
    ``train2017``); ``DatasetLayoutError`` naming the expected layout when either is
    missing. ``annotations`` overrides the JSON's place."""
    root = as_root(root)
    split = _split_name(split)
    layout = _LAYOUT.format(split=split)
    if annotations is not None:
        ann = Path(annotations).expanduser()
        if not ann.is_file():
            raise DatasetLayoutError(f"annotations {ann} is not a file: expected a person_keypoints_*.json")
    else:
        ann = root / "annotations" / f"person_keypoints_{split}.json"
        if not ann.is_file():
            folder = root / "annotations"
            found = sorted(p.name for p in folder.glob("person_keypoints_*.json")) if folder.is_dir() else []
            if found:
                raise DatasetLayoutError(f"no {ann.name} under {folder} (found {', '.join(found)}): expected {layout}")
            raise DatasetLayoutError(f"no person_keypoints_*.json under {folder}: expected {layout}")
    for images in (root / "images" / split, root / split):
        if images.is_dir():
            return ann, images
    raise DatasetLayoutError(f"no image folder {root / 'images' / split} or {root / split}: expected {layout}")


def load_coco(path: str | os.PathLike, keep_segmentation=None) -> tuple[CocoKeypoints, dict]:
    """The keypoint file at ``path`` as :class:`kpedu.data.CocoKeypoints` and a dict
    ``{annotation id: segmentation}`` of the annotations ``keep_segmentation(ann)``
    selects (none by default): one read of the JSON for both."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None
    coco = read_coco(raw)
    segs = {}
    if keep_segmentation is not None:
        for i, a in enumerate(raw.get("annotations", [])):
            if a.get("category_id") == coco.category_id and keep_segmentation(a):
                segs[a.get("id", i + 1)] = a.get("segmentation")
    return coco, segs


def _centre_box(box: Sequence[float]) -> tuple[float, float]:
    x, y, w, h = (float(v) for v in box)
    return x + w / 2.0 - 0.5, y + h / 2.0 - 0.5


class CocoPersonCrops(PersonCrops):
    """COCO people as ``image_size`` crops for top-down training (Stacked Hourglass chapter).

    Args:
        root: the COCO folder (:mod:`kpedu.datasets.coco` for the layout).
        split: ``"train"`` / ``"val"`` (2017) or a full name such as ``"val2017"``.
        image_size: side of the square crops (the book's hourglass recipe: 128).
        padding: the crop's side over the box's longer side.
        min_keypoints: labelled keypoints a person needs to be used (``>= 1``).
        annotations: the JSON file, when it is not at ``root/annotations/``.
        drop_outside: labelled keypoints outside the crop get ``v = 0``.

    Items are the dicts of :class:`~kpedu.datasets._crops.PersonCrops` (``image``
    ``(3, S, S)`` float32, ``keypoints`` ``(17, 2)``, ``visible`` ``(17,)`` uint8 0/1/2,
    ``head_size`` NaN, ``area`` = COCO's ``area`` in crop pixels, ``transform``,
    ``index``); :meth:`materialise` gives a :class:`kpedu.foundations.PeopleTensors`.
    ``records[i].key`` is crop ``i``'s COCO annotation id and ``image_ids[i]`` its image id.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 128, padding: float = 1.25,
                 min_keypoints: int = 1, annotations: str | os.PathLike | None = None, drop_outside: bool = True):
        image_size = checks.integer(image_size, "image_size", minimum=8)
        padding = checks.number(padding, "padding", minimum=0.0, min_open=True)
        min_keypoints = checks.integer(min_keypoints, "min_keypoints", minimum=1)
        ann, image_dir = find_coco(root, split, annotations)
        self.coco, _ = load_coco(ann)
        records, image_ids = [], []
        for im in self.coco.images:
            for p in range(im.num_people):
                box = im.boxes[p]
                if im.iscrowd[p] or int((im.visible[p] > 0).sum()) < min_keypoints or box[2] <= 0 or box[3] <= 0:
                    continue
                records.append(PersonRecord(im.file_name, np.array(_centre_box(box)),
                                            float(max(box[2], box[3])) * padding,
                                            im.keypoints[p].astype(np.float64), im.visible[p].copy(),
                                            float("nan"), float(im.areas[p]), int(im.ann_ids[p])))
                image_ids.append(im.id)
        self.image_ids = image_ids
        self.split = _split_name(split)
        super().__init__(records, image_dir, image_size, drop_outside)
        check_images_exist(image_dir, [r.file for r in records], _LAYOUT.format(split=self.split))

    @property
    def skeleton(self):
        """The file's keypoint layout (:data:`kpedu.data.COCO17` for COCO's names)."""
        return self.coco.to_skeleton()


def _decode_segmentation(seg: Any, height: int, width: int, box: Sequence[float]) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as a bool mask
    ``(height, width)``; the box when there is none."""
    with warnings.catch_warnings():  # pycocotools' decoder warns about numpy 2's copy keyword on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode(seg, height, width, box)


def _decode(seg: Any, height: int, width: int, box: Sequence[float]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if isinstance(seg, list) and seg:
        polys = [p for p in seg if isinstance(p, list) and len(p) >= 6]
        if polys:
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
            return mask_utils.decode(rle).astype(bool)
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        h, w = (int(v) for v in seg["size"])
        rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else \
            {"size": [h, w], "counts": seg["counts"].encode("ascii") if isinstance(seg["counts"], str)
             else seg["counts"]}
        m = mask_utils.decode(rle).astype(bool)
        if (h, w) != (height, width):  # the annotation's size disagrees with the image: pad or cut
            out = np.zeros((height, width), bool)
            out[:min(h, height), :min(w, width)] = m[:height, :width]
            m = out
        return m
    # no usable segmentation: the box
    m = np.zeros((height, width), bool)
    x, y, w, h = (float(v) for v in box)
    m[max(0, int(np.floor(y))):max(0, int(np.ceil(y + h))), max(0, int(np.floor(x))):max(0, int(np.ceil(x + w)))] = True
    return m


class _Scene:
    __slots__ = ("image", "keypoints", "visible", "areas", "boxes", "unlabelled", "image_id", "scale")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class CocoScenes(ImageDataset):
    """Whole COCO images for bottom-up training (OpenPose chapter), lazily.

    Args:
        root, split, annotations: as for :class:`CocoPersonCrops`.
        image_size: the square side (a multiple of 8, OpenPose's stride; the book: 256).
        min_keypoints: a person with fewer labelled keypoints is unlabelled: its flags are
            set to 0 and its pixels join the mask (1: COCO's ``num_keypoints = 0``).
        require_people: keep only images with at least one labelled person.

    ``dataset[i]`` is a dict: ``image`` ``(3, S, S)`` float32 in ``[0, 1]``,
    ``keypoints`` ``(n, 17, 2)`` float32 (``(0, 0)`` where ``v = 0``), ``visible``
    ``(n, 17)`` uint8, ``areas`` ``(n,)``, ``boxes`` ``(n, 4)`` ``(x, y, w, h)`` in the
    book's convention, ``unlabelled`` ``(S, S)`` bool (crowd and unlabelled people),
    ``image_id``, ``scale`` (resized / original) and ``index``; ``n`` counts every
    annotation, crowd regions and unlabelled people included (with ``v = 0``). Batch
    them with :func:`collate_scenes` (lists for the per-person fields), or with
    :func:`openpose_collate` for the training batch of
    :func:`kpedu.openpose.experiment.scene_batches` (targets and loss mask, no
    augmentation). :meth:`materialise` gives a :class:`kpedu.openpose.experiment.SceneTensors`,
    which ``train_openpose`` trains on with the chapter's augmentation.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 256, min_keypoints: int = 1,
                 require_people: bool = True, annotations: str | os.PathLike | None = None):
        size = checks.integer(image_size, "image_size", minimum=8)
        if size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (OpenPose's stride), got {size}")
        self.image_size = size
        self.min_keypoints = checks.integer(min_keypoints, "min_keypoints", minimum=1)
        ann, image_dir = find_coco(root, split, annotations)
        mk = self.min_keypoints

        def masked(a):
            if a.get("iscrowd"):
                return True
            kps = a.get("keypoints") or []
            return sum(1 for v in kps[2::3] if v) < mk

        self.coco, self.segmentations = load_coco(ann, masked)
        self.split = _split_name(split)
        self.image_dir = image_dir
        self.images = [im for im in self.coco.images
                       if not require_people or any((im.visible[p] > 0).sum() >= mk and not im.iscrowd[p]
                                                    for p in range(im.num_people))]
        super().__init__()
        check_images_exist(image_dir, [im.file_name for im in self.images], _LAYOUT.format(split=self.split))

    def __len__(self) -> int:
        return len(self.images)

    def _files(self) -> list[tuple[str, Path]]:
        return [(im.file_name, self.image_dir / im.file_name) for im in self.images]

    def _load(self, i: int):
        im = self.images[i]
        img = read_rgb(self.image_dir / im.file_name)
        if img is None:
            self._skip(im.file_name)
            return None
        h, w = img.shape[:2]
        s = self.image_size
        k = s / float(max(h, w))
        m = resize_matrix(k)
        image = warp_affine(img, m, s)
        vis = im.visible.astype(np.uint8).copy()
        lab = (vis > 0).sum(1)
        unl = im.iscrowd | (lab < self.min_keypoints)
        vis[unl] = 0
        kp = transform_points(m, im.keypoints.astype(np.float64))
        kp[vis == 0] = 0.0
        boxes = im.boxes.astype(np.float64).copy()
        boxes[:, :2] = boxes[:, :2] * k - 0.5
        boxes[:, 2:] *= k
        mask = np.zeros((s, s), bool)
        if unl.any():
            src = np.zeros((h, w), bool)
            for p in np.flatnonzero(unl):
                seg = self.segmentations.get(int(im.ann_ids[p]))
                src |= _decode_segmentation(seg, h, w, im.boxes[p])
            warped = warp_affine(src.astype(np.float32), m, s)
            mask = warped > 1e-2
        return _Scene(image=image, keypoints=kp.astype(np.float32), visible=vis,
                      areas=(im.areas * k * k).astype(np.float32), boxes=boxes.astype(np.float32),
                      unlabelled=mask, image_id=im.id, scale=k)

    def _to_item(self, sc: _Scene, i: int) -> dict:
        return {"image": float_chw(sc.image), "keypoints": torch.from_numpy(sc.keypoints),
                "visible": torch.from_numpy(sc.visible), "areas": torch.from_numpy(sc.areas),
                "boxes": torch.from_numpy(sc.boxes), "unlabelled": torch.from_numpy(sc.unlabelled),
                "image_id": torch.tensor(sc.image_id, dtype=torch.int64),
                "scale": torch.tensor(sc.scale, dtype=torch.float64), "index": torch.tensor(i, dtype=torch.int64)}

    def materialise(self, n: int | None = None, indices: Iterable[int] | None = None, progress: bool = False):
        """The first ``n`` images (all by default), or ``indices``, as a
        :class:`kpedu.openpose.experiment.SceneTensors` (``unlabelled`` is ``None`` where the mask is
        empty). Unreadable images are left out and reported; ``self.materialised_indices``
        lists the images held and ``self.materialised_image_ids`` their COCO ids (the
        tensors' ``to_coco`` numbers them 1..N)."""
        from ..openpose.experiment import SceneTensors

        scenes, used = self._gather(n, indices, progress)
        self.materialised_indices = used
        self.materialised_image_ids = [sc.image_id for sc in scenes]
        return SceneTensors(torch.stack([uint8_chw(sc.image) for sc in scenes]),
                            [torch.from_numpy(sc.keypoints) for sc in scenes],
                            [torch.from_numpy(sc.visible) for sc in scenes],
                            [torch.from_numpy(sc.areas) for sc in scenes],
                            [torch.from_numpy(sc.boxes) for sc in scenes],
                            [torch.from_numpy(sc.unlabelled) if sc.unlabelled.any() else None for sc in scenes])


_PER_PERSON = ("keypoints", "visible", "areas", "boxes")


def collate_scenes(items: Sequence[dict]) -> dict:
    """Batch :class:`CocoScenes` items: ``image``, ``unlabelled``, ``image_id``, ``scale``
    and ``index`` stacked, the per-person fields (``keypoints``, ``visible``, ``areas``,
    ``boxes``) as lists (their first dimension varies)."""
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(b, dict) for b in items):
        raise ValueError(f"items must be a non-empty list of CocoScenes items, got {checks.describe(items)}")
    return {k: [b[k] for b in items] if k in _PER_PERSON else torch.stack([b[k] for b in items])
            for k in items[0]}


def openpose_collate(items: Sequence[dict]) -> dict:
    """Batch :class:`CocoScenes` items into the training batch of
    :func:`kpedu.openpose.experiment.scene_batches`: ``image`` ``(B, 3, S, S)``,
    ``keypoints`` and ``visible`` (lists), ``cm`` and ``paf`` (the chapter's targets,
    :func:`~kpedu.openpose.experiment.scene_targets`), ``mask`` ``(B, S/8, S/8)``
    (:func:`~kpedu.openpose.loss_mask` of the unlabelled pixels) and ``index``. For
    ``DataLoader(CocoScenes(...), batch_size=..., shuffle=True, collate_fn=openpose_collate)``;
    :func:`~kpedu.openpose.experiment.openpose_batch_loss` takes these batches. Nothing
    is augmented here."""
    from ..openpose.experiment import STRIDE, scene_targets
    from ..openpose.targets import loss_mask

    b = collate_scenes(items)
    s = int(b["image"].shape[-1])
    cm, paf = scene_targets(b["keypoints"], b["visible"], s)
    mask = torch.stack([loss_mask(u, s // STRIDE, STRIDE) for u in b["unlabelled"]])
    return {"image": b["image"], "keypoints": b["keypoints"], "visible": b["visible"], "cm": cm, "paf": paf,
            "mask": mask, "index": b["index"]}
