"""The OpenPose chapter's experiments: bottom-up multi-person pose with part affinity fields.

``book/ch02-openpose`` trains :class:`~kpedu.openpose.OpenPoseNet` (the book's small
configuration, :data:`RECIPE` ``["model"]``) on synthetic multi-person scenes
(:func:`kpedu.data.make_scene`), with the paper's targets at output stride 8
(:mod:`kpedu.openpose.targets`: confidence maps, part affinity fields, the loss mask
``W(p)``), intermediate supervision at every stage (:func:`~kpedu.openpose.openpose_loss`),
parses the predictions with :func:`~kpedu.openpose.parse` and scores the people with
COCO keypoint AP (pycocotools, :func:`kpedu.metrics.coco_evaluate`).

The pieces, in the order the chapter uses them:

* :func:`make_scenes` -> :class:`SceneTensors`: scenes held as tensors; people with too
  few visible keypoints are *unlabelled* (all ``v = 0``), as COCO leaves small or hidden
  people without keypoints: their pixels go into the loss mask and the COCO evaluation
  ignores them;
* :func:`scene_batches`: endless random batches, augmented (flip with left/right
  relabelling, rotation, scale: :func:`kpedu.augment.augment_batch`), with their targets
  (:func:`~kpedu.openpose.targets.scene_targets`);
* :func:`train_openpose` (via :func:`kpedu.train.fit`), then inference
  (:mod:`kpedu.openpose.inference`: :func:`~kpedu.openpose.inference.predict`,
  :func:`~kpedu.openpose.inference.detect`, re-exported here with
  :func:`~kpedu.openpose.inference.parse_maps`, :func:`~kpedu.openpose.inference.upsample_maps`
  and :func:`~kpedu.openpose.inference.unflip_maps`), :func:`evaluate` (COCO AP),
  :func:`per_stage_evaluate`, :func:`timing` (network and parsing time versus the number
  of people);
* :func:`run_recipe`, the one procedure behind the committed checkpoint
  ``openpose-book`` (``python -m kpedu.hub train openpose-book``) and the notebook's
  live runs.

:mod:`kpedu.openpose.inference` explains the resolution of the maps (upsampled 8 times
before parsing, as in the released code) and the test-time augmentation (flip test and
scale search); the numbers behind those choices follow.

**Choices, measured on ground-truth maps** (the training targets of 80 scenes fed
to the parser; COCO AP with pycocotools): ``sigma = 1.5`` (the paper's
convention, a standard deviation of 1.06 heatmap pixels) rather than 1, because bicubic
interpolation of a narrower Gaussian misplaces its peak (0.75 px on average against
0.22 px); PAFs of limbs shorter than one heatmap pixel extended to that length
(:func:`scene_targets`; AP 0.82 -> 0.90); a border-safe upsampling (-> 0.92; continuing the
confidence maps in the log domain at the border, :func:`upsample_maps`, then adds about
0.02: 0.899 -> 0.919 on 60 other scenes); parsing
with the redundant limbs (0.85 without); detections ranked by their score times the
fraction of parts found (0.87 without). The resulting ceiling, AP 0.92 at 256x256
(0.79 parsing at stride 8), is what a perfect network would reach here; 192x192 scenes
cap it at about 0.85.

**Test-time augmentation.** :func:`detect` averages the maps of several passes before
parsing (:func:`predict`): the released code's scale search, here at 1, 1.25 and 1.5
times the input size, and a flip test, which the paper does not use. Chosen on 150
scenes of a selection seed (77001, neither training nor validation) with the 7,300-step
checkpoint, every scale with the flip: AP 0.630 at scale 1 alone (0.611
without the flip), 0.676 at 1.25 alone, 0.640 at 1.5 alone; averaged, 0.682 for 0.75,
1 and 1.5 (the choice made earlier on the 4,800-step checkpoint), 0.686 for 1 and 1.5,
0.688 for 0.75 to 1.5 in steps of 0.25 and 0.692 for 1, 1.25 and 1.5. Enlarging helps
the medium people, who are most of them (APm 0.68 at scale 1, 0.73 at 1.25), and ruins
the largest, whose limbs outgrow the network's receptive field (APl 0.85 at scale 1,
0.37 at 1.5, 0 at 2): averaging with scale 1 keeps them. Adding scale 2 lowered the AP
(0.665 for 0.75, 1, 1.5 and 2). The registry stores one pass's AP beside the averaged
one (``single_pass``).

**Precision.** ``run_recipe(..., amp=torch.bfloat16)`` trains with bfloat16 autocast on
the CPU too (:func:`kpedu.train.fit`), about twice as fast on CPUs with bfloat16
instructions (1.85 -> 0.94 s per step of 16 scenes on 2 threads of an AVX512-BF16 CPU,
with channels-last weights). The committed checkpoint ran its first six cycles in float32
and its seventh and eighth (5,000 and 1,500 steps) in bfloat16 (the registry's
``precision``); the loss
continued at the level float32 had reached. ``python -m kpedu.hub train openpose-book``
trains in float32 on the CPU and in mixed precision on CUDA.

What differs from the paper, on purpose: synthetic 256x256 scenes instead of COCO
photographs at 368x368, a small from-scratch backbone instead of ImageNet VGG-19, 3 PAF
stages and 1 confidence-map stage of width 64 with BatchNorm instead of 5 + 1 of width 128
(TPAMI), 17 COCO keypoints without the neck (the paper's model adds a neck, part 18, and a
background map), Adam with a one-cycle schedule instead of SGD, the short-limb extension
above.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .. import checks, hub
from ..distributed import shard_batches
from ..runtime import resolve_profile
from ..augment import augment_batch
from .model import OpenPoseNet, openpose_loss
from .parse import Person, _check_options
from .targets import (SCENE_TARGETS, STRIDE, _image_size, _target_options, flip_permutation, loss_mask,
                      scene_targets, unlabelled_mask)
# inference lives in kpedu.openpose.inference; its public names are re-exported here for the notebooks
from .inference import (INFERENCE, _check_scales, _check_upsample, detect, parse_maps, predict, unflip_maps,
                        upsample_maps)

__all__ = [
    "RECIPE",
    "SceneTensors",
    "make_model",
    "make_scenes",
    "flip_permutation",
    "scene_targets",
    "scene_batches",
    "openpose_batch_loss",
    "train_openpose",
    "predict",
    "unflip_maps",
    "upsample_maps",
    "parse_maps",
    "detect",
    "people_to_results",
    "evaluate",
    "evaluate_people",
    "per_stage_evaluate",
    "timing",
    "run_recipe",
]

# One place for the chapter's settings; profiles change sizes, never algorithms.
RECIPE = {
    "image_size": 256,
    # kpedu.data.make_scene arguments: 1-6 people of standing height 0.3-0.9 image heights
    "scene": {"num_people": (1, 6), "scale": (0.3, 0.9), "rotation": (-20.0, 20.0)},
    # a person with fewer keypoints than this drawn visibly (v = 2) is unlabelled
    "min_visible": 4,
    # targets, in heatmap pixels: the paper's exp(-d^2 / sigma^2), the limb half-width, and
    # the length to which shorter limbs are extended before their field is drawn (0: the paper's rectangle as is);
    # kpedu.openpose.targets.SCENE_TARGETS, where scene_targets reads them
    "sigma": SCENE_TARGETS["sigma"],
    "limb_width": SCENE_TARGETS["limb_width"],
    "paf_min_length": SCENE_TARGETS["paf_min_length"],
    "model": {"num_keypoints": 17, "num_limbs": 19, "backbone": "small", "paf_stages": 3, "cm_stages": 1,
              "stage_channels": 64, "stage_blocks": 5, "feature_channels": 128, "backbone_width": 16,
              "batch_norm": True},
    "augment": {"rotation": 20.0, "scale": (0.8, 1.25)},
    "batch_size": 16,
    "lr": 2e-3,
    "grad_clip": None,  # e.g. 10.0 to clip the global gradient norm
    "train_scenes": {"ci": 24, "book": 400, "full": 3000},
    "steps": {"ci": 3, "book": 80, "full": 1000},
    # warm restarts after the first cycle: (steps, peak learning rate) per extra cycle
    "restarts": {"ci": [], "book": [], "full": [(800, 2e-3), (500, 2e-3), (2500, 2e-3), (2500, 1e-3),
                                                 (1500, 5e-4), (5000, 1e-3), (1500, 5e-4)]},
    "val_images": {"ci": 8, "book": 100, "full": 500},
    # the learning curve is measured on the first validation scenes
    "curve_images": {"ci": 8, "book": 40, "full": 100},
    # inference (kpedu.openpose.inference.INFERENCE, where predict, parse_maps and detect read them): bicubic
    # upsampling of the stride-8 maps before parsing (released code); test-time augmentation, the maps of the
    # image and of its mirror image averaged at each of the test scales (the released code's scale search);
    # the parse options (kpedu.openpose.parse; the redundant limbs join fragments)
    "upsample": INFERENCE["upsample"],
    "flip": INFERENCE["flip"],
    "test_scales": INFERENCE["test_scales"],
    "parse": INFERENCE["parse"],
    "train_seed": 41,
    "val_seed": 40_001,
}


def make_model(**overrides) -> OpenPoseNet:
    """The chapter's :class:`~kpedu.openpose.OpenPoseNet` (:data:`RECIPE` ``["model"]``)
    with ``overrides`` replacing any of its arguments."""
    return OpenPoseNet(**{**RECIPE["model"], **overrides})


# ----------------------------------------------------------------------------- data


@dataclass
class SceneTensors:
    """Pre-generated multi-person scenes held as tensors (``N`` images of ``S x S``).

    Per-person fields are lists over images because the number of people ``n_i``
    varies. Unlabelled people (fewer than ``min_visible`` visible keypoints when the scene
    was made) stay in the lists with all ``v = 0``: the COCO ground truth keeps them as
    annotations with ``num_keypoints = 0`` (which pycocotools ignores), and their pixels
    are in ``unlabelled``, from which :func:`scene_batches` builds the loss mask.

    Attributes:
        images: ``(N, 3, S, S)`` uint8.
        keypoints: ``N`` float32 tensors ``(n_i, K, 2)``, image pixels (exact, also for v = 0).
        visible: ``N`` uint8 tensors ``(n_i, K)``, COCO flags.
        areas: ``N`` float32 tensors ``(n_i,)``, visible pixels per person (OKS scale).
        boxes: ``N`` float32 tensors ``(n_i, 4)``, ``(x, y, w, h)``.
        unlabelled: ``N`` entries, a bool ``(S, S)`` map of the unlabelled people's pixels,
            or ``None`` where every person is labelled.
    """

    images: torch.Tensor
    keypoints: list
    visible: list
    areas: list
    boxes: list
    unlabelled: list

    def __post_init__(self) -> None:
        if isinstance(self.images, np.ndarray) and self.images.dtype == np.uint8:
            self.images = torch.from_numpy(self.images)
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8:
            raise TypeError(f"images must be a uint8 tensor (N, 3, S, S), got {checks.describe(self.images)}; "
                            "convert float images in [0, 1] with (images * 255).round().to(torch.uint8)")
        checks.image(torch.empty_like(self.images, device="meta"), "images", ndim=4, channels=3,
                     shape_text="(N, 3, S, S)")
        if self.images.shape[-1] != self.images.shape[-2]:
            raise ValueError(f"images must be square (N, 3, S, S), got shape {tuple(self.images.shape)}")
        n = len(self.images)
        for name in ("keypoints", "visible", "areas", "boxes", "unlabelled"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def num_people(self) -> torch.Tensor:
        """``(N,)`` labelled people per image (at least one keypoint with ``v > 0``)."""
        return torch.tensor([int(((v > 0).sum(1) > 0).sum()) for v in self.visible], dtype=torch.int64)

    def subset(self, idx) -> "SceneTensors":
        """The scenes ``idx`` (a slice, or a sequence / tensor of indices; negative ones
        count from the end)."""
        if isinstance(idx, slice):
            idx = range(len(self))[idx]
        if isinstance(idx, (str, bytes)) or not hasattr(idx, "__iter__"):
            raise TypeError(f"idx must be a slice or a sequence of scene indices, got {checks.describe(idx)}")
        if isinstance(idx, (torch.Tensor, np.ndarray)):
            idx = idx.reshape(-1).tolist()
        idx = [checks.index(i, len(self), "idx") for i in idx]
        return SceneTensors(self.images[idx], [self.keypoints[i] for i in idx], [self.visible[i] for i in idx],
                            [self.areas[i] for i in idx], [self.boxes[i] for i in idx],
                            [self.unlabelled[i] for i in idx])

    def to_coco(self) -> dict:
        """The ground truth as a COCO keypoints dict (:func:`kpedu.data.to_coco`), image
        ids ``1..N`` in order."""
        from ..data import to_coco

        s = self.image_size
        return to_coco([{"keypoints": k, "visible": v.to(torch.int64), "areas": a, "boxes": b, "height": s,
                         "width": s} for k, v, a, b in zip(self.keypoints, self.visible, self.areas, self.boxes)])


def make_scenes(n: int, seed: int, image_size: int | None = None, progress: bool = False,
                min_visible: int | None = None, **kwargs) -> SceneTensors:
    """Generate ``n`` scenes with :class:`kpedu.data.SyntheticPeople` (``mode="multi"``).

    ``kwargs`` go to :func:`kpedu.data.make_scene` on top of :data:`RECIPE` ``["scene"]``
    (e.g. ``num_people=5``, ``scale=(0.2, 0.4)``). A person with fewer than ``min_visible``
    (default :data:`RECIPE` ``["min_visible"]``) keypoints with ``v = 2`` is unlabelled:
    its flags are set to 0 and its pixels go to :attr:`SceneTensors.unlabelled`.
    ``min_visible=0`` labels everybody. Scene ``i`` depends only on ``(seed, i)``.
    """
    from ..data import SyntheticPeople

    n = checks.integer(n, "n", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    size = _image_size(RECIPE["image_size"] if image_size is None else image_size)
    min_vis = RECIPE["min_visible"] if min_visible is None else checks.integer(min_visible, "min_visible", minimum=0)
    ds = SyntheticPeople(n, image_size=size, mode="multi", seed=seed, **{**RECIPE["scene"], **kwargs})
    it = range(int(n))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"generating {n} scenes", mininterval=0.5)
    images, kps, viss, areas, boxes, unl = [], [], [], [], [], []
    for i in it:
        s = ds.sample(i)
        images.append(torch.from_numpy(np.round(s.image * 255.0).astype(np.uint8)))
        vis = torch.from_numpy(s.visible.astype(np.uint8))
        hidden = (vis == 2).sum(1) < min_vis
        vis[hidden] = 0
        kps.append(torch.from_numpy(s.keypoints).float())
        viss.append(vis)
        areas.append(torch.from_numpy(s.areas).float())
        boxes.append(torch.from_numpy(s.boxes).float())
        m = unlabelled_mask(vis, torch.from_numpy(s.masks)) if bool(hidden.any()) else None
        unl.append(m if m is not None and bool(m.any()) else None)
    return SceneTensors(torch.stack(images), kps, viss, areas, boxes, unl)


def _scene_mask(unlabelled: torch.Tensor | None, size: int) -> torch.Tensor:
    """The loss mask ``(S/8, S/8)`` of one unaugmented scene."""
    hm = size // STRIDE
    if unlabelled is None:
        return torch.ones(hm, hm)
    return loss_mask(unlabelled, hm, STRIDE)


def _pad_people(kps: Sequence[torch.Tensor], vis: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N_max, K, 2)`` keypoints and ``(B, N_max, K)`` flags, padded with v = 0 people."""
    b, k = len(kps), kps[0].shape[1]
    nmax = max(1, max(len(x) for x in kps))
    kp = torch.zeros(b, nmax, k, 2)
    vv = torch.zeros(b, nmax, k, dtype=torch.uint8)
    for i, (x, v) in enumerate(zip(kps, vis)):
        kp[i, :len(x)] = x
        vv[i, :len(v)] = v
    return kp, vv


def scene_batches(scenes: SceneTensors, batch_size: int, generator: torch.Generator, augment: bool = True,
                  sigma: float | None = None, limb_width: float | None = None,
                  min_length: float | None = None) -> Iterator[dict]:
    """Endless random batches from ``scenes`` with their OpenPose targets.

    With ``augment`` each image is rotated, scaled (:data:`RECIPE` ``["augment"]``) and,
    with probability 1/2, mirrored with left/right keypoint types swapped, by
    :func:`kpedu.augment.augment_batch`; keypoints that leave the image get ``v = 0``.
    The unlabelled pixels are warped with the image (as a fourth channel). Targets
    come from :func:`scene_targets` (confidence maps with ``sigma``, PAFs with
    ``limb_width`` and ``min_length``, defaults from :data:`RECIPE`); the loss mask is
    :func:`~kpedu.openpose.loss_mask` of the warped unlabelled pixels (``W = 0`` on every
    heatmap cell that touches one).

    Yields dicts: ``image (B, 3, S, S)`` float in [0, 1], ``keypoints`` and ``visible``
    (lists of ``(n_i, K, 2)`` / ``(n_i, K)`` after augmentation), ``cm (B, K, S/8, S/8)``,
    ``paf (B, 2C, S/8, S/8)``, ``mask (B, S/8, S/8)`` and ``index (B,)``. The arguments
    are checked when it is called, before the first batch.
    """
    if not isinstance(scenes, SceneTensors):
        raise TypeError(f"scenes must be SceneTensors (make_scenes), got {checks.describe(scenes)}")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if len(scenes) == 0:
        raise ValueError("scenes is empty")
    sigma, limb_width, min_length = _target_options(sigma, limb_width, min_length)
    return _scene_batches(scenes, batch_size, generator, augment, sigma, limb_width, min_length)


def _scene_batches(scenes: SceneTensors, batch_size: int, generator: torch.Generator, augment: bool, sigma: float,
                   limb_width: float, min_length: float) -> Iterator[dict]:
    s = scenes.image_size
    while True:
        idx = torch.randint(len(scenes), (int(batch_size),), generator=generator)
        images = scenes.images[idx].float() / 255.0
        unl = torch.zeros(len(idx), 1, s, s)
        for j, i in enumerate(idx.tolist()):
            if scenes.unlabelled[i] is not None:
                unl[j, 0] = scenes.unlabelled[i].float()
        yield _scene_batch(images, unl, [scenes.keypoints[i] for i in idx.tolist()],
                           [scenes.visible[i] for i in idx.tolist()], idx, generator, augment, sigma, limb_width,
                           min_length)


def _scene_batch(images: torch.Tensor, unl: torch.Tensor, keypoints: list, visible: list, idx: torch.Tensor,
                 generator: torch.Generator, augment: bool, sigma: float, limb_width: float,
                 min_length: float) -> dict:
    """One training batch from float ``images`` ``(B, 3, S, S)``, unlabelled pixels ``unl``
    ``(B, 1, S, S)`` and per-image people: the chapter's augmentation, targets and loss mask
    (shared by :func:`scene_batches` and the COCO recipe's loader)."""
    s = int(images.shape[-1])
    hm = s // STRIDE
    counts = [len(k) for k in keypoints]
    kp, vis = _pad_people(keypoints, visible)
    if augment:
        warped, kp, vis = augment_batch(torch.cat([images, unl], 1), kp, vis, flip_permutation(),
                                        rotation=RECIPE["augment"]["rotation"], scale=RECIPE["augment"]["scale"],
                                        generator=generator)
        images, unl = warped[:, :3].clamp(0.0, 1.0), warped[:, 3:]
    kps = [kp[j, :c] for j, c in enumerate(counts)]
    viss = [vis[j, :c] for j, c in enumerate(counts)]
    cm, paf = scene_targets(kps, viss, s, sigma, limb_width, min_length)
    mask = torch.stack([loss_mask(u[0] > 1e-3, hm, STRIDE) for u in unl])
    return {"image": images, "keypoints": kps, "visible": viss, "cm": cm, "paf": paf, "mask": mask, "index": idx}


# ----------------------------------------------------------------------------- training


def openpose_batch_loss(model: OpenPoseNet, batch: dict):
    """:func:`~kpedu.openpose.openpose_loss` of ``model`` on one batch of
    :func:`scene_batches`; returns ``(loss, logs)`` with ``paf1``, ..., ``cm1``, ...,
    ``paf`` and ``cm`` (per-image sums, averaged over the batch)."""
    pafs, cms = model(batch["image"])
    loss, logs = openpose_loss(pafs, cms, batch["paf"], batch["cm"], batch["mask"])
    logs.pop("loss", None)
    return loss, logs


def train_openpose(model: OpenPoseNet, scenes: SceneTensors, steps: int, batch_size: int = 16, lr: float = 2e-3,
                   seed: int = 0, device=None, augment: bool = True, progress: bool = True,
                   callback: Callable | None = None, desc: str = "openpose", log_every: int | None = None,
                   grad_clip: float | None = None, state_path=None, save_every: int = 100, amp=True,
                   micro_batches: int = 1):
    """Train ``model`` in place: Adam with a one-cycle schedule (peak ``lr``), batches of
    :func:`scene_batches`, the masked L2 loss at every stage. Uses
    :func:`kpedu.train.fit` and returns its :class:`~kpedu.train.History`, with the
    per-stage losses in ``history.logs`` (``paf1`` ... ``cm1`` ..., ``paf``, ``cm``); a log
    point, and a ``callback`` call, every ``log_every`` steps (default ``steps // 50``).
    ``state_path`` makes the run resumable (:func:`kpedu.train.fit`): the batches are
    deterministic given ``seed``, so an interrupted run continues exactly. ``amp`` goes to
    :func:`~kpedu.train.fit` (``torch.bfloat16``: bfloat16 autocast on the CPU too), and
    so does ``micro_batches``: each batch of ``batch_size`` scenes goes through the network
    in that many parts with their gradients summed, one step per batch, for the memory of
    one part (the batch-norm statistics then come from each part)."""
    steps = checks.integer(steps, "steps", minimum=1)
    if not isinstance(scenes, SceneTensors):
        raise TypeError(f"scenes must be SceneTensors (make_scenes), got {type(scenes).__name__}")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    lr = checks.number(lr, "lr", minimum=0.0, min_open=True)
    seed = checks.integer(seed, "seed", minimum=0)
    log_every = None if log_every is None else checks.integer(log_every, "log_every", minimum=1)
    grad_clip = checks.optional_number(grad_clip, "grad_clip", minimum=0.0, min_open=True)
    save_every = checks.integer(save_every, "save_every", minimum=1)
    micro_batches = checks.integer(micro_batches, "micro_batches", minimum=1)
    from ..runtime import get_device
    from ..train import fit, one_cycle

    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps)
    return fit(model, shard_batches(scene_batches(scenes, batch_size, gen, augment)), openpose_batch_loss, steps=steps,
               optimizer=opt, scheduler=sched, device=device, grad_clip=grad_clip,
               log_every=max(1, steps // 50) if log_every is None else int(log_every),
               desc=desc, progress=progress, callback=callback, state_path=state_path, save_every=save_every,
               amp=amp, micro_batches=micro_batches)


# ----------------------------------------------------------------------------- evaluation


def people_to_results(people: Sequence[Sequence[Person]], image_ids: Sequence[int] | None = None,
                      rescore: bool = True) -> list[dict]:
    """COCO results (:func:`kpedu.data.results_to_coco`) from parsed people, one list per
    image (image ids ``1..N`` by default, as :meth:`SceneTensors.to_coco`).

    Found keypoints carry their peak confidence; a missing keypoint is written at the
    mean of the person's found keypoints with confidence 0 (COCO's OKS ignores the
    confidences; the position only matters if the ground truth labels that keypoint).
    The detection score is :attr:`Person.score`, times the fraction of keypoints found
    with ``rescore`` (so that fragments rank below whole people)."""
    from ..data import results_to_coco

    if isinstance(people, (str, bytes)) or not hasattr(people, "__len__"):
        raise TypeError(f"people must be a list with one list of Person per image, got {checks.describe(people)}")
    for i, persons in enumerate(people):
        if isinstance(persons, (str, bytes)) or not hasattr(persons, "__iter__") \
                or not all(isinstance(p, Person) for p in persons):
            raise TypeError(f"people[{i}] must be a list of Person (parse), got {checks.describe(persons)}")
    if image_ids is None:
        image_ids = list(range(1, len(people) + 1))
    if isinstance(image_ids, (str, bytes)) or not hasattr(image_ids, "__len__"):
        raise TypeError(f"image_ids must be a sequence of integer ids, got {checks.describe(image_ids)}")
    if len(image_ids) != len(people):
        raise ValueError(f"image_ids must hold one id per image: {len(image_ids)} image ids for {len(people)} images")
    image_ids = [checks.integer(v, f"image_ids[{i}]") for i, v in enumerate(image_ids)]
    results: list[dict] = []
    for iid, persons in zip(image_ids, people):
        if not persons:
            continue
        kps, kss, scs = [], [], []
        for p in persons:
            kp = p.keypoints.clone()
            found = p.visible
            k = kp.shape[0]
            if bool(found.any()):
                kp[~found] = kp[found].mean(0)
            else:
                kp[:] = 0.0
            kps.append(kp)
            kss.append(torch.where(found, p.scores, torch.zeros_like(p.scores)))
            scs.append(p.score * (p.num_parts / k if rescore else 1.0))
        results += results_to_coco(int(iid), torch.stack(kps), torch.stack(kss), torch.tensor(scs))
    return results


def evaluate_people(people: Sequence[Sequence[Person]], scenes: SceneTensors, rescore: bool = True) -> dict:
    """COCO keypoint AP/AR (:func:`kpedu.metrics.coco_evaluate`) of parsed ``people``
    (one list per scene) against ``scenes``; the ten ``COCO_STATS`` (``AP``, ``AP50``,
    ``AP75``, ``APm``, ``APl``, ``AR``, ...), rounded to 4 digits."""
    from ..metrics import coco_evaluate

    if len(people) != len(scenes):
        raise ValueError(f"{len(people)} lists of people for {len(scenes)} scenes")
    r = coco_evaluate(scenes.to_coco(), people_to_results(people, rescore=rescore))
    return {k: round(float(v), 4) for k, v in r.items()}


def evaluate(model: OpenPoseNet, scenes: SceneTensors, batch_size: int = 16, upsample: int | None = None,
             return_people: bool = False, flip: bool | None = None, scales=None, **parse_kwargs) -> dict:
    """COCO keypoint AP of ``model`` on ``scenes`` (:func:`detect`, then
    :func:`evaluate_people`): ``AP``, ``AP50``, ``AP75``, ``APm``, ``APl``, ``AR``,
    ``AR50``, ``AR75``, ``ARm``, ``ARl``, plus ``people_per_image`` (mean number
    detected) and, with ``return_people``, the detections in ``people``."""
    found = detect(model, scenes.images, batch_size, upsample, flip=flip, scales=scales, **parse_kwargs)
    out: dict = evaluate_people(found, scenes)
    out["people_per_image"] = round(sum(len(p) for p in found) / max(1, len(found)), 3)
    if return_people:
        out["people"] = found
    return out


@torch.no_grad()
def per_stage_evaluate(model: OpenPoseNet, scenes: SceneTensors, batch_size: int = 16,
                       upsample: int | None = None, ap: bool = True, **parse_kwargs) -> dict:
    """What every stage contributes, on ``scenes`` (one pass: no test-time augmentation).

    Returns ``paf_loss`` and ``cm_loss``: per stage, the masked L2 loss against the
    targets (per-image sum, as in training); and with ``ap`` also ``ap``: the COCO AP
    of parsing each PAF stage's fields together with the last stage's confidence maps
    (the TPAMI network has confidence maps only after the last PAF stage).
    """
    factor = _check_upsample(upsample, recipe_default=True)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    _check_options(**{**RECIPE["parse"], **parse_kwargs})
    paf_sum: list[float] = []
    cm_sum: list[float] = []
    people: list[list[list[Person]]] = []
    for i in range(0, len(scenes), batch_size):
        part = scenes.subset(range(i, min(i + batch_size, len(scenes))))
        pafs, cms = predict(model, part.images, batch_size, all_stages=True)
        cm_t, paf_t = scene_targets(part.keypoints, part.visible, part.image_size)
        mask = torch.stack([_scene_mask(u, part.image_size) for u in part.unlabelled])
        _, logs = openpose_loss(pafs, cms, paf_t, cm_t, mask)
        n = len(part)
        if not paf_sum:
            paf_sum, cm_sum = [0.0] * len(pafs), [0.0] * len(cms)
        for t in range(len(pafs)):
            paf_sum[t] += logs[f"paf{t + 1}"] * n
        for t in range(len(cms)):
            cm_sum[t] += logs[f"cm{t + 1}"] * n
        if ap:
            if not people:
                people = [[] for _ in pafs]
            for t in range(len(pafs)):
                people[t] += parse_maps(cms[-1], pafs[t], factor, **parse_kwargs)
    out = {"paf_loss": [round(v / len(scenes), 4) for v in paf_sum],
           "cm_loss": [round(v / len(scenes), 4) for v in cm_sum]}
    if ap:
        out["ap"] = [evaluate_people(p, scenes)["AP"] for p in people]
    return out


def timing(model: OpenPoseNet, people_counts: Sequence[int] = (1, 2, 5, 10, 20), images: int = 3,
           image_size: int | None = None, upsample: int | None = None, maps: str = "model", seed: int = 90_001,
           **parse_kwargs) -> dict:
    """Network and parsing time per image versus the number of people (bottom-up: the
    network's cost is independent of it, the parsing's is not).

    For every ``n`` in ``people_counts`` (increasing), ``images`` scenes with exactly
    ``n`` people are made; people are smaller in crowded scenes (standing heights
    :data:`RECIPE` ``["scene"]["scale"]`` times ``min(1, sqrt(3 / n))``). Each image is
    run alone (batch of 1): the network's forward pass, the upsampling of its maps by
    ``upsample`` (default :data:`RECIPE` ``["upsample"]``; ``1``: none) and the parsing
    (:func:`parse_maps`), timed separately, on the network's maps (``maps="model"``) or
    on the ground-truth targets (``maps="truth"``: the parser's cost with every person
    found, independently of the training).

    Returns ``{"people", "network_s", "upsample_s", "parse_s", "found"}``: lists with
    one entry per count, mean seconds per image and mean people parsed per image. The
    network runs once per image; the recipe's test-time augmentation (:func:`predict`)
    multiplies its time by ``(1 + flip) * sum(s^2)``, 9.6 for :data:`RECIPE`. (On
    one CPU thread at 256x256, on ground-truth maps: the book's network about 65 ms, the
    8x bicubic upsampling about 30 ms and parsing the upsampled maps about 35 ms,
    dominated by peak finding on 256x256 maps, whatever the crowd; parsing the stride-8
    maps about 3 ms for 1 person and 9 ms for 20.)
    """
    if isinstance(people_counts, (str, bytes)) or not hasattr(people_counts, "__iter__"):
        raise TypeError(f"people_counts must be a sequence of increasing positive ints, "
                        f"got {checks.describe(people_counts)}")
    counts = [checks.integer(c, f"people_counts[{i}]") for i, c in enumerate(people_counts)]
    if not counts or any(c < 1 for c in counts) or counts != sorted(set(counts)):
        raise ValueError(f"people_counts must be increasing positive ints, got {people_counts!r}")
    checks.choice(maps, "maps", ("model", "truth"))
    images = checks.integer(images, "images", minimum=1)
    factor = _check_upsample(upsample, recipe_default=True)
    size = _image_size(RECIPE["image_size"] if image_size is None else image_size)
    seed = checks.integer(seed, "seed", minimum=0)
    _check_options(**{**RECIPE["parse"], **parse_kwargs})
    dev = next(model.parameters()).device
    lo, hi = RECIPE["scene"]["scale"]
    out: dict = {"people": counts, "network_s": [], "upsample_s": [], "parse_s": [], "found": []}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=dev))  # warm-up
            for c in counts:
                f = min(1.0, math.sqrt(3.0 / c))
                sc = make_scenes(images, seed + c, size, num_people=c, scale=(lo * f, hi * f), min_visible=0)
                net_t = up_t = parse_t = 0.0
                found = 0
                for i in range(len(sc)):
                    x = (sc.images[i:i + 1].float() / 255.0).to(dev)
                    _sync(dev)
                    t0 = time.perf_counter()
                    pafs, cms = model(x)
                    _sync(dev)
                    net_t += time.perf_counter() - t0
                    if maps == "truth":
                        heat, paf = scene_targets(sc.keypoints[i:i + 1], sc.visible[i:i + 1], size)
                    else:
                        heat, paf = cms[-1].float().cpu(), pafs[-1].float().cpu()
                    t0 = time.perf_counter()
                    heat, paf = upsample_maps(heat, factor, positive=True), upsample_maps(paf, factor)
                    t1 = time.perf_counter()
                    people = parse_maps(heat, paf, 1, stride=STRIDE / factor, **parse_kwargs)
                    up_t += t1 - t0
                    parse_t += time.perf_counter() - t1
                    found += len(people[0])
                out["network_s"].append(net_t / len(sc))
                out["upsample_s"].append(up_t / len(sc))
                out["parse_s"].append(parse_t / len(sc))
                out["found"].append(found / len(sc))
    finally:
        model.train(was_training)
    return out


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ----------------------------------------------------------------------------- recipe


def run_recipe(model: OpenPoseNet, profile=None, device=None, progress: bool = True, curve_points: int = 10,
               steps: int | None = None, train: SceneTensors | None = None, val: SceneTensors | None = None,
               start_cycle: int = 0, stop_cycle: int | None = None, prior: dict | None = None,
               state_dir=None, save_every: int = 100, amp=True) -> dict:
    """Train ``model`` in place with the chapter's recipe under a profile and evaluate it.

    The one procedure behind the committed checkpoint (``full`` profile) and the
    notebook's live runs: :data:`RECIPE` ``["train_scenes"]`` scenes, one-cycle schedules
    back to back (the first of ``RECIPE["steps"]`` steps at ``RECIPE["lr"]``, then the
    profile's warm restarts ``RECIPE["restarts"]``; a single cycle of ``steps`` steps when
    ``steps`` is given), then COCO evaluation on ``RECIPE["val_images"]`` scenes
    (``train`` / ``val`` replace the generated sets). Cycles ``start_cycle`` to
    ``stop_cycle - 1`` run; ``prior`` (the metrics returned after the earlier cycles)
    resumes a run whose earlier cycles are already in ``model``. With ``state_dir`` every
    cycle is resumable within itself: its training state is saved there every ``save_every`` steps
    (``openpose-cycleN.pt``, with the learning curve and elapsed time beside it in
    ``openpose-cycleN.json``), and a run started again with the same arguments continues
    an interrupted cycle exactly where it stopped. ``amp`` goes to every cycle's
    :func:`~kpedu.train.fit` (``True``: mixed precision on CUDA, float32 on the CPU;
    ``torch.bfloat16``: bfloat16 autocast on the CPU as well).

    Returns metrics: ``AP``, ``AP50``, ``AP75``, ``APm``, ``APl``, ``AR`` (pycocotools,
    :func:`detect` with the recipe's test-time augmentation, described in ``test``),
    ``single_pass`` (``AP``, ``AP50``, ``AP75``, ``AR`` of one pass: no flip, one scale),
    ``people_per_image``, ``per_stage``
    (:func:`per_stage_evaluate`: ``paf_loss``, ``cm_loss``, ``ap``, one pass), ``curve`` (rows
    ``[step, AP, AP50]`` of one pass on the first ``RECIPE["curve_images"]`` validation scenes,
    ``curve_points`` per cycle), ``loss`` (the last logged training loss), ``steps``
    (all cycles run so far), ``cycles``, ``val_images`` and ``train_seconds``.
    """
    name = resolve_profile(profile).name
    curve_points = checks.integer(curve_points, "curve_points", minimum=0)
    start_cycle = checks.integer(start_cycle, "start_cycle", minimum=0)
    save_every = checks.integer(save_every, "save_every", minimum=1)
    if steps is None:
        cycles = [(RECIPE["steps"][name], RECIPE["lr"])] + [tuple(c) for c in RECIPE["restarts"][name]]
    else:
        cycles = [(checks.integer(steps, "steps", minimum=1), RECIPE["lr"])]
    stop = len(cycles) if stop_cycle is None else checks.integer(stop_cycle, "stop_cycle", minimum=1)
    if not 0 <= start_cycle < stop <= len(cycles):
        raise ValueError(f"need 0 <= start_cycle < stop_cycle <= {len(cycles)}, got start_cycle={start_cycle}, "
                         f"stop_cycle={stop_cycle}")
    t0 = time.time()
    size = RECIPE["image_size"]
    if train is None:
        train = make_scenes(RECIPE["train_scenes"][name], RECIPE["train_seed"], size, progress=progress)
    if val is None:
        val = make_scenes(RECIPE["val_images"][name], RECIPE["val_seed"], size)
    probe = val.subset(range(min(len(val), RECIPE["curve_images"][name])))
    curve: list[list[float]] = list(prior["curve"]) if prior else []
    offset = sum(c[0] for c in cycles[:start_cycle])
    hist = None
    resumed_seconds = 0.0
    state = Path(state_dir) if state_dir is not None else None
    for c in range(start_cycle, stop):
        cycle_steps, lr = cycles[c]
        every = max(1, cycle_steps // max(1, curve_points)) if curve_points else 0
        cycle_state = side = None
        if state is not None:
            cycle_state = state / f"openpose-cycle{c + 1}.pt"
            side = state / f"openpose-cycle{c + 1}.json"
            if cycle_state.exists() and side.exists():
                saved = json.loads(side.read_text())
                curve[:] = saved["curve"]
                resumed_seconds += float(saved["seconds"])
            t_cycle = time.time()

        def record(step, history, m, every=every, cycle_steps=cycle_steps, offset=offset, side=side,
                   base_seconds=resumed_seconds):
            if side is not None:
                side.parent.mkdir(parents=True, exist_ok=True)
                side.write_text(json.dumps({"curve": curve, "seconds": base_seconds + time.time() - t_cycle}))
            if every and (step % every == 0 or step == cycle_steps):
                r = evaluate(m, probe, flip=False, scales=(1.0,))
                curve.append([int(offset + step), r["AP"], r["AP50"]])
                if progress:
                    from tqdm.auto import tqdm

                    tqdm.write(f"step {offset + step}: loss {history.loss[-1]:.2f}, validation AP {r['AP']:.3f}, "
                               f"AP50 {r['AP50']:.3f}")
            return False

        log_every = max(1, cycle_steps // 50)
        hist = train_openpose(model, train, cycle_steps, RECIPE["batch_size"], lr, seed=c, device=device, desc="openpose" if len(cycles) == 1 else f"openpose, cycle {c + 1}/{len(cycles)}",
                              progress=progress, callback=record, grad_clip=RECIPE["grad_clip"],
                              log_every=math.gcd(log_every, every) if every else log_every, state_path=cycle_state,
                              save_every=save_every, amp=amp)
        if side is not None and side.exists():
            side.unlink()
        offset += cycle_steps
    r = evaluate(model, val)
    metrics = {k: r[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "people_per_image")}
    metrics["test"] = {"flip": bool(RECIPE["flip"]), "scales": list(_check_scales(RECIPE["test_scales"]))}
    one = evaluate(model, val, flip=False, scales=(1.0,))
    metrics["single_pass"] = {k: one[k] for k in ("AP", "AP50", "AP75", "AR")}
    metrics["per_stage"] = per_stage_evaluate(model, val)
    metrics["curve"] = curve
    metrics["loss"] = round(float(hist.loss[-1]), 4)
    metrics["steps"] = int(offset)
    metrics["cycles"] = [[int(a), float(b)] for a, b in cycles[:stop]]
    metrics["val_images"] = len(val)
    metrics["train_seconds"] = round(time.time() - t0 + resumed_seconds + (prior["train_seconds"] if prior else 0.0), 1)
    return metrics


@hub.recipe("openpose-book", description="OpenPose (small backbone, 3 PAF + 1 CM stages of 64), 256x256 synthetic "
                                          "scenes of 1-6 people", storage_dtype=torch.float16)
def _book(profile, device):
    from ..runtime import seed_everything

    seed_everything(0)
    model = make_model()
    metrics = run_recipe(model, profile, device)
    return model.cpu(), metrics


# ----------------------------------------------------------------------------- paper scale (COCO)

#: The TPAMI configuration for ``openpose-coco`` (Cao et al., "OpenPose: Realtime
#: Multi-Person 2D Pose Estimation using Part Affinity Fields", TPAMI 2021): the network of
#: :func:`kpedu.openpose.openpose_paper` (VGG-19 to conv4_2, 5 PAF stages + 1 CM stage,
#: PReLU) with kpedu's COCO-17 targets (17 confidence maps, the chapter's 19 limbs; the
#: paper's extra neck channel is not used), 368x368 input. Optimiser and schedule: the
#: released Caffe solver's values as recalled (SGD, momentum 0.9, base LR 4e-5 per image
#: of a batch of 10, weight decay 5e-4, LR x0.333 every 136,106 iterations, 600,000
#: iterations); NOT checked here (CMU-Perceptual-Computing-Lab/openpose_train's solver
#: file was not reachable in this session). The chapter's augmentation is used.
PAPER = {
    "image_size": 368,
    "model": {"num_keypoints": 17, "num_limbs": 19},
    "batch_size": 10,
    "lr": 4e-5 * 10,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "steps": 600_000,
    "lr_step": 136_106 / 600_000,
    "gamma": 0.333,
    "val_images": None,
    "gpu_cost": "522 GFLOP per 368x368 image x 10 x 600,000 steps = 3.1e18 FLOP: about 17 GPU-hours (estimate: kpedu.bench.count_flops forward+backward, at an assumed sustained 50 TFLOP/s under mixed precision, compute only)",
    "aims_at": "COCO keypoint AP 64.2 on test-dev for the TPAMI network (Cao et al. 2019, as quoted in "
               "book/ch02-openpose/03-training-and-results; not re-checked); this recipe measures val2017",
}


class _AugmentedScenes:
    """A re-iterable over a ``DataLoader`` of :class:`kpedu.datasets.CocoScenes` items
    (:func:`kpedu.datasets.collate_scenes`) whose batches get the chapter's augmentation,
    targets and loss mask (:func:`_scene_batch`); ``sampler`` is the loader's."""

    def __init__(self, loader, seed: int):
        self.loader = loader
        self.sampler = loader.sampler
        self.generator = torch.Generator().manual_seed(seed)
        self.options = _target_options(None, None, None)

    def __iter__(self):
        for b in self.loader:
            unl = torch.stack([u.float() for u in b["unlabelled"]])[:, None]
            yield _scene_batch(b["image"], unl, b["keypoints"], b["visible"], b["index"], self.generator, True,
                               *self.options)


def load_backbone_weights(model: OpenPoseNet, path) -> None:
    """Load a ``state_dict`` file (``torch.load(weights_only=True)``) into ``model``'s VGG-19
    backbone: keys as in ``model.backbone.state_dict()``, or with a ``backbone.`` prefix.
    Raises :class:`kpedu.hub.RecipeInputError` naming the missing / unexpected keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise hub.RecipeInputError(f"--weights {path}: cannot be read as a torch state_dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise hub.RecipeInputError(f"--weights {path}: expected a state_dict (dict of tensors), got "
                                   f"{type(state).__name__}")
    state = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in state.items()}
    want = model.backbone.state_dict()
    missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or unexpected:
        raise hub.RecipeInputError(
            f"--weights {path}: keys do not match the VGG-19 backbone (missing {len(missing)}, e.g. "
            f"{missing[:3]}; unexpected {len(unexpected)}, e.g. {unexpected[:3]}); expected "
            f"model.backbone.state_dict() keys such as {list(want)[:2]}")
    bad = [k for k in want if tuple(state[k].shape) != tuple(want[k].shape)]
    if bad:
        raise hub.RecipeInputError(f"--weights {path}: shapes differ for {bad[:3]} (expected "
                                   f"{[tuple(want[k].shape) for k in bad[:3]]})")
    model.backbone.load_state_dict(state)


def run_paper(data, eval_data=None, steps: int | None = None, size: int | None = None, device=None,
              progress: bool = True, seed: int = 0, weights=None, model_overrides: dict | None = None,
              batch_size: int | None = None, val_images: int | None = None):
    """Train the TPAMI OpenPose network on COCO 2017 train scenes and return ``(model, metrics)``.

    ``data``: the COCO folder (:class:`kpedu.datasets.CocoScenes`, crowd and unlabelled
    people in the loss mask); ``eval_data``: the folder holding val2017 (default
    ``data``). The chapter's code: :func:`openpose_batch_loss`, :func:`_scene_batch`'s
    augmentation and targets, :func:`kpedu.train.fit` (AMP and channels-last on CUDA,
    data-parallel through :func:`kpedu.distributed.distributed_loader`), :func:`evaluate`
    (COCO AP through pycocotools, on the resized val2017 images). ``weights``: a VGG-19
    ``state_dict`` for the backbone (:func:`load_backbone_weights`); without it the
    backbone starts from scratch. ``steps``, ``size``, ``batch_size``, ``model_overrides``
    and ``val_images`` shrink the run for tests."""
    from ..datasets import CocoScenes
    from ..distributed import distributed_loader
    from ..runtime import get_device
    from ..train import fit
    from .model import openpose_paper

    size = PAPER["image_size"] if size is None else checks.integer(size, "size", minimum=16)
    if size % STRIDE:
        raise hub.RecipeInputError(f"--size must be a multiple of {STRIDE} (OpenPose's stride), got {size}")
    steps = PAPER["steps"] if steps is None else checks.integer(steps, "steps", minimum=1)
    bs = PAPER["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    device = torch.device(device) if device is not None else get_device()
    train_set = CocoScenes(data, "train", image_size=size)
    val_set = CocoScenes(data if eval_data is None else eval_data, "val", image_size=size)
    if model_overrides:
        model = OpenPoseNet(**{"backbone": "vgg19", "paf_stages": 5, "cm_stages": 1, "activation": "prelu",
                               **PAPER["model"], **model_overrides})
    else:
        model = openpose_paper(**PAPER["model"])
    if weights is not None:
        load_backbone_weights(model, weights)
    loader = distributed_loader(train_set, bs, seed=seed, device=device, collate_fn=_collate_coco)
    opt = torch.optim.SGD(model.parameters(), lr=PAPER["lr"], momentum=PAPER["momentum"],
                          weight_decay=PAPER["weight_decay"])
    sched = torch.optim.lr_scheduler.StepLR(opt, max(1, round(PAPER["lr_step"] * steps)), PAPER["gamma"])
    hist = fit(model, _AugmentedScenes(loader, seed), openpose_batch_loss, steps=steps, optimizer=opt,
               scheduler=sched, device=device, log_every=max(1, min(100, steps // 10)), desc="openpose-coco",
               progress=progress)
    n_val = PAPER["val_images"] if val_images is None else checks.integer(val_images, "val_images", minimum=1)
    val = val_set.materialise(n_val)
    r = evaluate(model, val)
    skipped = train_set.report() + val_set.report()
    metrics = {k: r[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR")}
    metrics.update({"people_per_image": r["people_per_image"], "loss": round(float(hist.loss[-1]), 4),
                    "steps": steps, "train_images": len(train_set), "val_images": len(val),
                    "skipped_images": skipped, "backbone": "weights file" if weights is not None else "scratch"})
    return model.cpu(), metrics


def _collate_coco(items):
    from ..datasets import collate_scenes

    return collate_scenes(items)


@hub.recipe("openpose-coco", data="COCO 2017: annotations/person_keypoints_{train,val}2017.json + "
                                  "images/{train,val}2017/ (or {train,val}2017/)",
            eval_data="a COCO folder with val2017 (default: --data)",
            description="OpenPose, the TPAMI network (VGG-19, 5 PAF + 1 CM stages), 368x368 COCO 2017 train, "
                        "COCO AP on val2017; aims at the TPAMI paper's 64.2 AP on test-dev (not re-checked); estimated GPU "
                        "cost: about 17 GPU-hours (an estimate: PAPER['gpu_cost'])")
def _paper_coco(profile, device, *, data, eval_data=None, steps=None, weights=None, size=None, width=None):
    overrides = None if width is None else {"stage_channels": width, "stage_hidden": width, "feature_channels": width}
    return run_paper(data, eval_data, steps=steps, size=size, device=device, weights=weights,
                     model_overrides=overrides)
