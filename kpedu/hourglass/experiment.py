"""The Stacked Hourglass chapter's experiments: training, evaluation, ablations.

``book/ch01-hourglass`` trains :class:`~kpedu.hourglass.StackedHourglass` on synthetic
single-person crops (:func:`kpedu.data.make_people`) with the paper's
augmentation (rotation of +-30 degrees, scaling by 0.75-1.25, left-right flips,
:func:`kpedu.augment.augment_batch`), Gaussian targets with sigma 1 heatmap pixel (the
paper's), intermediate supervision at every stack, and evaluates PCK (torso and head
normalised) per joint, per stack, with and without flip testing.

Three checkpoints in :mod:`kpedu.hub` come from the recipes at the bottom:

* ``hourglass-book``: the chapter's model, ``python -m kpedu.hub train hourglass-book``;
* ``hourglass-ablation-2stack``, ``hourglass-ablation-1stack`` and
  ``hourglass-ablation-last``: the ablations at one shared, shorter budget, two stacks
  against one stack with the same parameter budget (two residual modules per position),
  and two stacks supervised only at the last stack.

What differs from the paper, on purpose: synthetic 128x128 crops instead of MPII's
256x256 photographs (32x32 heatmaps instead of 64x64), a smaller network (2 stacks of
96 channels instead of 8 of 256), Adam with a one-cycle schedule instead of RMSprop
at 2.5e-4 (it converges in far fewer steps, which a CPU budget needs).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import numpy as np
import torch

from .. import checks, hub
from ..distributed import shard_batches
from ..runtime import resolve_profile
from ..augment import augment_batch
from ..codecs import GaussianHeatmapCodec
from ..data.crops import PeopleTensors, make_people
from ..metrics import pck
from .inference import _as_float, _images, _stack, predict_heatmaps
from .loss import stacked_heatmap_loss
from .model import StackedHourglass

__all__ = [
    "RECIPE",
    "ABLATIONS",
    "make_model",
    "make_codec",
    "flip_permutation",
    "augmented_batches",
    "hourglass_loss",
    "train_hourglass",
    "predict",
    "evaluate",
    "per_stack_pck",
    "run_recipe",
    "train_ablation",
    "run_ablation",
]

# One place for the chapter's settings; profiles change sizes, never algorithms.
RECIPE = {
    "image_size": 128,
    "sigma": 1.0,
    "model": {"num_stacks": 2, "channels": 96, "num_keypoints": 17, "depth": 4, "stem_channels": (32, 64)},
    "augment": {"rotation": 30.0, "scale": (0.75, 1.25)},
    "batch_size": 16,
    "lr": 2e-3,
    "train_people": {"ci": 128, "book": 2000, "full": 12000},
    "steps": {"ci": 12, "book": 300, "full": 5000},
    # warm restarts after the first cycle: (steps, peak learning rate) per extra cycle
    "restarts": {"ci": [], "book": [], "full": [(8000, 1e-3)]},
    "val_people": {"ci": 64, "book": 500, "full": 1000},
    "train_seed": 21,
    "val_seed": 20_001,
}

# The ablations share one budget and one data set; each entry: model overrides and
# whether every stack is supervised.
ABLATIONS = {
    "2stack": {"label": "2 stacks (intermediate supervision)",
               "model": {"num_stacks": 2, "channels": 64}, "intermediate": True},
    "1stack": {"label": "1 stack, 2 modules per position (same parameters)",
               "model": {"num_stacks": 1, "channels": 64, "num_modules": 2}, "intermediate": True},
    "last": {"label": "2 stacks, loss on the last stack only",
             "model": {"num_stacks": 2, "channels": 64}, "intermediate": False},
}
ABLATION_STEPS = {"ci": 8, "book": 150, "full": 3000}


def make_model(**overrides) -> StackedHourglass:
    """The chapter's :class:`StackedHourglass` (:data:`RECIPE` ``["model"]``), with
    ``overrides`` replacing any of its arguments (``num_stacks=8, channels=256,
    stem_channels=(64, 128)`` is the paper's network)."""
    cfg = {**RECIPE["model"], **overrides}
    return StackedHourglass(**cfg)


def make_codec(image_size: int | None = None, sigma: float | None = None) -> GaussianHeatmapCodec:
    """The target codec: ``image_size`` input (a multiple of 4), heatmaps at stride 4,
    Gaussian sigma (heatmap pixels)."""
    s = RECIPE["image_size"] if image_size is None else checks.integer(image_size, "image_size", minimum=4)
    if s % 4:
        raise ValueError(f"image_size must be a multiple of 4 (the heatmap stride), got {s}")
    sigma = RECIPE["sigma"] if sigma is None else checks.number(sigma, "sigma", minimum=0.0, min_open=True)
    return GaussianHeatmapCodec(s, s // 4, sigma)


def flip_permutation(skeleton=None) -> list[int]:
    """The left/right swap of ``skeleton`` (default COCO-17; :data:`kpedu.datasets.MPII16`
    for MPII), for flips and flip testing."""
    if skeleton is None:
        from ..data import COCO17

        skeleton = COCO17
    return [int(i) for i in skeleton.flip_permutation]


def augmented_batches(people: PeopleTensors, batch_size: int, generator: torch.Generator,
                      augment: bool = True) -> Iterator[dict]:
    """Endless random batches from ``people``; with ``augment`` each is rotated, scaled
    and flipped with the paper's ranges (:data:`RECIPE` ``["augment"]``). The arguments
    are checked when it is called, before the first batch."""
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if not isinstance(people, PeopleTensors):
        raise TypeError(f"people must be PeopleTensors (make_people), got {checks.describe(people)}")
    if len(people) == 0:
        raise ValueError("people is empty")
    return _batches(people, batch_size, generator, augment)


def _batches(people: PeopleTensors, batch_size: int, generator: torch.Generator, augment: bool) -> Iterator[dict]:
    perm = flip_permutation()
    while True:
        idx = torch.randint(len(people), (batch_size,), generator=generator)
        b = people.batch(idx)
        if augment:
            img, kp, vis = augment_batch(b["image"], b["keypoints"], b["visible"], perm,
                                         rotation=RECIPE["augment"]["rotation"], scale=RECIPE["augment"]["scale"],
                                         generator=generator)
            b = {"image": img, "keypoints": kp, "visible": vis}
        yield b


def hourglass_loss(outputs: list[torch.Tensor], keypoints: torch.Tensor, visible: torch.Tensor,
                   codec: GaussianHeatmapCodec, intermediate: bool = True):
    """The paper's loss for one batch: Gaussian targets from ``codec``, masked MSE at every
    stack (``intermediate``) or at the last stack only. Returns ``(loss, logs)`` with the
    per-stack values in ``logs`` (``stack1``, ``stack2``, ...)."""
    if not (callable(getattr(codec, "encode", None)) and hasattr(codec, "heatmap_size")):
        raise TypeError(f"codec must be a GaussianHeatmapCodec (make_codec), got {checks.describe(codec)}")
    if not isinstance(outputs, (list, tuple)) or len(outputs) == 0:
        raise ValueError(f"outputs must be a non-empty list of (B, K, H, W) tensors, one per stack, "
                         f"got {checks.describe(outputs)}")
    keypoints = checks.points(keypoints, "keypoints", ndim=(2, 3)).detach().cpu()
    if isinstance(visible, torch.Tensor):
        visible = visible.detach().cpu()
    target, weight = codec.encode(keypoints, visible)
    dev = outputs[-1].device
    target, weight = target.to(dev), weight.to(dev)
    total, per = stacked_heatmap_loss(outputs, target, weight, per_stack=True)
    if not intermediate:
        total, _ = stacked_heatmap_loss(outputs[-1:], target, weight, per_stack=True)
    # the MSE of sigma-1 Gaussians is ~1e-3; scale so that logs read well (Adam does not care)
    return total * 1000.0, {f"stack{i + 1}": v * 1000.0 for i, v in enumerate(per)}


def train_hourglass(model: StackedHourglass, people: PeopleTensors, steps: int, batch_size: int = 16,
                    lr: float = 2e-3, seed: int = 0, device=None, intermediate: bool = True, augment: bool = True,
                    progress: bool = True, callback: Callable | None = None, desc: str = "hourglass",
                    log_every: int | None = None):
    """Train ``model`` in place: Adam with a one-cycle schedule, the paper's augmentation
    and loss (:func:`hourglass_loss`). Uses :func:`kpedu.train.fit` and returns its
    :class:`~kpedu.train.History` (per-stack losses in ``history.logs``; a log point, and a
    ``callback`` call, every ``log_every`` steps, default ``steps // 50``)."""
    steps = checks.integer(steps, "steps", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    lr = checks.number(lr, "lr", minimum=0.0, min_open=True)
    seed = checks.integer(seed, "seed", minimum=0)
    log_every = None if log_every is None else checks.integer(log_every, "log_every", minimum=1)
    if not isinstance(people, PeopleTensors):
        raise TypeError(f"people must be PeopleTensors (make_people), got {checks.describe(people)}")
    from ..runtime import get_device
    from ..train import fit, one_cycle

    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    codec = make_codec(people.images.shape[-1])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps)
    return fit(model, shard_batches(augmented_batches(people, batch_size, gen, augment)),
               lambda m, b: hourglass_loss(m(b["image"]), b["keypoints"], b["visible"], codec, intermediate),
               steps=steps, optimizer=opt, scheduler=sched, device=device,
               log_every=max(1, steps // 50) if log_every is None else int(log_every),
               desc=desc, progress=progress, callback=callback)


@torch.no_grad()
def predict(model: StackedHourglass, images: torch.Tensor, flip_test: bool = False, stack: int = -1,
            batch_size: int = 64, return_heatmaps: bool = False, skeleton=None):
    """Keypoints ``(N, K, 2)`` in image pixels and scores ``(N, K)`` for ``images``
    ``(N, 3, S, S)`` (uint8 or float in [0, 1]), from one stack (default the last), with
    optional flip testing (left/right swap of ``skeleton``, default COCO-17); in batches on
    the model's device. With ``return_heatmaps`` also the heatmaps ``(N, K, S/4, S/4)``."""
    images = _images(images, model, lazy=True)  # uint8 stays uint8 until its batch
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if isinstance(getattr(model, "num_stacks", None), int):
        stack = _stack(stack, model.num_stacks)
    codec = make_codec(images.shape[-1])
    perm = flip_permutation(skeleton) if flip_test else None
    kps, scores, heats = [], [], []
    for i in range(0, len(images), batch_size):
        x = _as_float(images[i:i + batch_size])
        h = predict_heatmaps(model, x, flip_test, perm, stack).cpu()
        kp, sc = codec.decode(h)
        kps.append(kp)
        scores.append(sc)
        if return_heatmaps:
            heats.append(h)
    out = (torch.cat(kps), torch.cat(scores))
    return out + (torch.cat(heats),) if return_heatmaps else out


def evaluate(model: StackedHourglass, people: PeopleTensors, flip_test: bool = False, stack: int = -1) -> dict:
    """PCK@0.1 and PCK@0.2 (torso, FLIC style) and PCKh@0.5 (head, MPII style), means and
    per joint, on ``people``; ``pred`` holds the keypoints."""
    pred, _ = predict(model, people.images, flip_test, stack)
    gt, vis = people.keypoints, people.visible
    res = {"pck@0.1": pck(pred, gt, vis, "torso", 0.1), "pck@0.2": pck(pred, gt, vis, "torso", 0.2),
           "pckh@0.5": pck(pred, gt, vis, people.head_sizes, 0.5)}
    out: dict = {k: round(float(r.mean), 4) for k, r in res.items()}
    out["per_joint"] = {k: [round(float(v), 4) for v in r.per_joint] for k, r in res.items()}
    out["pred"] = pred
    return out


def per_stack_pck(model: StackedHourglass, people: PeopleTensors, threshold=0.2,
                  flip_test: bool = False):
    """Mean torso PCK at ``threshold`` of every stack's heatmaps, first to last: a list.

    ``threshold`` may also be a sequence of thresholds; the result is then a dict
    ``{threshold: list}``, from one pass of the network per stack."""
    single = not isinstance(threshold, (list, tuple))
    thresholds = [threshold] if single else list(threshold)
    if not thresholds:
        raise ValueError("threshold must be a number or a non-empty sequence of numbers")
    thresholds = [checks.number(t, "threshold", minimum=0.0, min_open=True) for t in thresholds]
    preds = [predict(model, people.images, flip_test, s)[0] for s in range(model.num_stacks)]
    out = {t: [float(pck(p, people.keypoints, people.visible, "torso", t).mean) for p in preds] for t in thresholds}
    return out[thresholds[0]] if single else out


def _subset(people: PeopleTensors, n: int) -> PeopleTensors:
    return PeopleTensors(*(t[:n] for t in (people.images, people.keypoints, people.visible, people.head_sizes,
                                           people.areas)))


def run_recipe(model: StackedHourglass, profile=None, device=None, progress: bool = True, curve_points: int = 10,
               intermediate: bool = True, steps: int | None = None, train: PeopleTensors | None = None,
               val: PeopleTensors | None = None, start_cycle: int = 0, prior: dict | None = None) -> dict:
    """Train ``model`` in place with the chapter's recipe under a profile and evaluate it.

    The one procedure behind the committed checkpoints (``full`` profile) and the
    notebook's live runs. Training runs one-cycle schedules back to back: the first of
    :data:`RECIPE` ``["steps"]`` steps at ``RECIPE["lr"]``, then the profile's warm
    restarts ``RECIPE["restarts"]`` (none when ``steps`` is given). ``start_cycle`` and
    ``prior`` (the metrics returned after the earlier cycles) resume a run whose earlier
    cycles are already in ``model``.

    Returns metrics: ``pck@0.1``, ``pck@0.2``, ``pckh@0.5`` (last stack, single pass),
    ``pck@0.2_flip``, ``per_stack`` (PCK@0.2 of each stack), ``curve`` (rows
    ``[step, pck@0.1, pck@0.2]`` on 200 validation people), ``cycles`` and
    ``train_seconds``.
    """
    name = resolve_profile(profile).name
    curve_points = checks.integer(curve_points, "curve_points", minimum=0)
    steps = None if steps is None else checks.integer(steps, "steps", minimum=1)
    start_cycle = checks.integer(start_cycle, "start_cycle", minimum=0)
    if steps is None:
        cycles = [(RECIPE["steps"][name], RECIPE["lr"])] + [tuple(c) for c in RECIPE["restarts"][name]]
    else:
        cycles = [(steps, RECIPE["lr"])]
    if not 0 <= start_cycle < len(cycles):
        raise ValueError(f"start_cycle must be in [0, {len(cycles)}), got {start_cycle}")
    t0 = time.time()
    size = RECIPE["image_size"]
    if train is None:
        train = make_people(RECIPE["train_people"][name], RECIPE["train_seed"], size, progress=progress)
    if val is None:
        val = make_people(RECIPE["val_people"][name], RECIPE["val_seed"], size)
    probe = _subset(val, 200)
    curve: list[list[float]] = list(prior["curve"]) if prior else []
    offset = sum(c[0] for c in cycles[:start_cycle])
    for c in range(start_cycle, len(cycles)):
        cycle_steps, lr = cycles[c]
        every = max(1, cycle_steps // max(1, curve_points))

        def record(step, history, m, every=every, cycle_steps=cycle_steps, offset=offset):
            if step % every == 0 or step == cycle_steps:
                r = evaluate(m, probe)
                curve.append([int(offset + step), r["pck@0.1"], r["pck@0.2"]])
                if progress:
                    from tqdm.auto import tqdm

                    tqdm.write(f"step {offset + step}: validation PCK@0.1 {r['pck@0.1']:.3f}, "
                               f"PCK@0.2 {r['pck@0.2']:.3f}")
            return False

        train_hourglass(model, train, cycle_steps, RECIPE["batch_size"], lr, seed=c, device=device,
                        intermediate=intermediate, progress=progress, callback=record,
                        log_every=math.gcd(max(1, cycle_steps // 50), every),
                        desc="hourglass" if len(cycles) == 1 else f"hourglass, cycle {c + 1}/{len(cycles)}")
        offset += cycle_steps
    r = evaluate(model, val)
    metrics = {k: r[k] for k in ("pck@0.1", "pck@0.2", "pckh@0.5")}
    metrics["pck@0.2_flip"] = evaluate(model, val, flip_test=True)["pck@0.2"]
    metrics["per_stack"] = [round(v, 4) for v in per_stack_pck(model, val)]
    metrics["cycles"] = [[int(a), float(b)] for a, b in cycles]
    metrics["train_seconds"] = round(time.time() - t0 + (prior["train_seconds"] if prior else 0.0), 1)
    metrics["curve"] = curve
    return metrics


def train_ablation(model: StackedHourglass, variant: str, profile=None, device=None, progress: bool = True,
                   train: PeopleTensors | None = None, val: PeopleTensors | None = None) -> dict:
    """Train ``model`` (built with ``make_model(**ABLATIONS[variant]["model"])``) in place as
    ablation ``variant`` at the shared ablation budget (:data:`ABLATION_STEPS`); returns
    the metrics of :func:`run_recipe` with ``params`` added."""
    if variant not in ABLATIONS:
        raise ValueError(f"variant must be one of {sorted(ABLATIONS)}, got {variant!r}")
    name = resolve_profile(profile).name
    metrics = run_recipe(model, name, device, progress, curve_points=5, intermediate=ABLATIONS[variant]["intermediate"],
                         steps=ABLATION_STEPS[name], train=train, val=val)
    metrics["params"] = sum(p.numel() for p in model.parameters())
    return metrics


def run_ablation(variant: str, profile=None, device=None, progress: bool = True,
                 train: PeopleTensors | None = None, val: PeopleTensors | None = None):
    """Build and train one ablation (:data:`ABLATIONS`: ``"2stack"``, ``"1stack"``,
    ``"last"``) from seed 0; returns ``(model, metrics)``."""
    if variant not in ABLATIONS:
        raise ValueError(f"variant must be one of {sorted(ABLATIONS)}, got {variant!r}")
    from ..runtime import seed_everything

    seed_everything(0)
    model = make_model(**ABLATIONS[variant]["model"])
    metrics = train_ablation(model, variant, profile, device, progress, train, val)
    return model.cpu(), metrics


@hub.recipe("hourglass-book", description="Stacked Hourglass, 2 stacks x 96 channels, 128x128 synthetic people")
def _book(profile, device):
    from ..runtime import seed_everything

    seed_everything(0)
    model = make_model()
    metrics = run_recipe(model, profile, device)
    return model.cpu(), metrics


def _ablation_recipe(variant: str):
    def run(profile, device):
        return run_ablation(variant, profile, device)

    return run


for _v, _spec in ABLATIONS.items():
    hub.recipe(f"hourglass-ablation-{_v}", description=f"Hourglass ablation: {_spec['label']}")(_ablation_recipe(_v))


# ----------------------------------------------------------------------------- paper scale (MPII)

#: The paper's configuration (Newell et al., "Stacked Hourglass Networks for Human Pose
#: Estimation", ECCV 2016) for ``hourglass-mpii``. Checked against the official code,
#: princeton-vl/pose-hg-train ``src/opts.lua`` (commit 01f9a56): ``optMethod rmsprop``, ``LR 2.5e-4``,
#: ``weightDecay 0``, ``inputRes 256``, ``outputRes 64``, ``nEpochs 100`` x ``trainIters
#: 5000``, ``trainBatch 5`` (its ``momentum 0.95`` is not used by Torch7's rmsprop; alpha
#: 0.99 and eps 1e-8 are Torch7's rmsprop defaults, not checked here). The
#: learning-rate drop (x0.1 once validation accuracy plateaus, the paper's text, not in
#: opts.lua) is placed at a fixed ``drop_at`` fraction of the run here: our choice.
PAPER = {
    "image_size": 256,
    "sigma": 1.0,
    "model": {"num_stacks": 8, "channels": 256, "num_keypoints": 16, "depth": 4, "num_modules": 1,
              "stem_channels": (64, 128)},
    "augment": RECIPE["augment"],
    "batch_size": 5,
    "lr": 2.5e-4,
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0},
    "steps": 100 * 5000,
    "drop_at": 0.8,
    "drop": 0.1,
    "flip_test": True,
    "gpu_cost": "164 GFLOP per 256x256 crop x 5 x 500,000 steps = 4.1e17 FLOP: about 2.3 GPU-hours (estimate: kpedu.bench.count_flops forward+backward, at an assumed sustained 50 TFLOP/s under mixed precision, compute only)",
    "aims_at": "PCKh@0.5 90.9 on the MPII test set (Newell et al. 2016, as quoted in book/ch01-hourglass/02-training; "
               "not re-checked against the paper; the validation split measured here is not the test set)",
}


class _AugmentedPeople:
    """A re-iterable over a ``DataLoader`` of person crops whose batches get the chapter's
    augmentation (:func:`kpedu.augment.augment_batch`, left/right swap of ``perm``) on the
    CPU; ``sampler`` is the loader's, so :func:`kpedu.train.fit` reshuffles every epoch."""

    def __init__(self, loader, perm: list[int], seed: int):
        self.loader, self.perm = loader, perm
        self.sampler = loader.sampler
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        for b in self.loader:
            img, kp, vis = augment_batch(b["image"], b["keypoints"], b["visible"], self.perm,
                                         rotation=PAPER["augment"]["rotation"], scale=PAPER["augment"]["scale"],
                                         generator=self.generator)
            yield {"image": img, "keypoints": kp, "visible": vis}


def evaluate_pckh(model: StackedHourglass, people: PeopleTensors, skeleton=None, flip_test: bool = False) -> dict:
    """PCKh@0.5 (MPII's metric: threshold half the head size of every person) of ``model``
    on ``people``, mean and per joint, with optional flip testing (``skeleton``'s
    left/right swap)."""
    pred, _ = predict(model, people.images, flip_test, skeleton=skeleton)
    r = pck(pred, people.keypoints, people.visible, people.head_sizes, 0.5)
    return {"pckh@0.5": round(float(r.mean), 4), "per_joint": [round(float(v), 4) for v in r.per_joint]}


def run_paper(data, eval_data=None, steps: int | None = None, size: int | None = None, device=None,
              progress: bool = True, seed: int = 0, model_overrides: dict | None = None,
              batch_size: int | None = None, val_people: int | None = None):
    """Train the paper's 8-stack hourglass on MPII's training split and return ``(model, metrics)``.

    ``data`` is the MPII folder (:class:`kpedu.datasets.MPIIPeople`), ``eval_data`` an
    optional validation list (Tompson et al.'s, as the paper; without it the data set's
    documented deterministic split, whose numbers are not comparable with the paper's).
    The chapter's code throughout: :func:`hourglass_loss` (intermediate supervision,
    sigma-1 Gaussians at stride 4), the chapter's augmentation, :func:`kpedu.train.fit`
    (mixed precision and channels-last on CUDA; data-parallel under torchrun through
    :func:`kpedu.distributed.distributed_loader`), with :data:`PAPER`'s optimiser and
    schedule. ``steps``, ``size``, ``batch_size`` and ``model_overrides`` shrink the run
    for tests; ``val_people`` caps the validation set. Metrics: ``pckh@0.5`` (flip-tested
    as in the paper's evaluation when :data:`PAPER` ``["flip_test"]``), ``pckh@0.5_single``,
    ``per_joint``, ``loss``, ``steps``, ``train_people``, ``val_people``, ``skipped_images``.
    """
    from ..datasets import MPII16, MPIIPeople
    from ..distributed import distributed_loader
    from ..runtime import get_device
    from ..train import fit

    size = PAPER["image_size"] if size is None else checks.integer(size, "size", minimum=16)
    steps = PAPER["steps"] if steps is None else checks.integer(steps, "steps", minimum=1)
    bs = PAPER["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    device = torch.device(device) if device is not None else get_device()
    train_set = MPIIPeople(data, "train", image_size=size, val_split=eval_data)
    val_set = MPIIPeople(data, "val", image_size=size, val_split=eval_data)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"MPII at {data}: {len(train_set)} training and {len(val_set)} validation people; "
                         "both splits must be non-empty")
    model = make_model(**{**PAPER["model"], **(model_overrides or {})})
    codec = make_codec(size, PAPER["sigma"])
    perm = flip_permutation(MPII16)
    loader = distributed_loader(train_set, bs, seed=seed, device=device)
    opt = torch.optim.RMSprop(model.parameters(), lr=PAPER["lr"], **PAPER["rmsprop"])
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, int(PAPER["drop_at"] * steps))], PAPER["drop"])
    hist = fit(model, _AugmentedPeople(loader, perm, seed),
               lambda m, b: hourglass_loss(m(b["image"]), b["keypoints"], b["visible"], codec),
               steps=steps, optimizer=opt, scheduler=sched, device=device, log_every=max(1, min(100, steps // 10)),
               desc="hourglass-mpii", progress=progress)
    val = val_set.materialise(val_people)
    model.eval()
    flip = evaluate_pckh(model, val, MPII16, flip_test=PAPER["flip_test"])
    single = evaluate_pckh(model, val, MPII16, flip_test=False)
    skipped = train_set.report() + val_set.report()
    metrics = {"pckh@0.5": flip["pckh@0.5"], "pckh@0.5_single": single["pckh@0.5"], "per_joint": flip["per_joint"],
               "loss": round(float(hist.loss[-1]), 4), "steps": steps, "train_people": len(train_set),
               "val_people": len(val), "skipped_images": skipped,
               "val_split": "file" if eval_data is not None else "kpedu default (crc32), not Tompson's"}
    return model.cpu(), metrics


@hub.recipe("hourglass-mpii", data="MPII Human Pose: mpii_human_pose_v1_u12_1.mat + images/",
            eval_data="an MPII validation list (one image name per line, or valid.json)",
            description="Stacked Hourglass, the paper's 8 stacks x 256, 256x256 MPII crops, RMSprop 2.5e-4, "
                        "PCKh@0.5 on the validation split; aims at PCKh@0.5 90.9 (Newell et al. 2016, MPII test set, "
                        "not re-checked); estimated GPU cost: about 2.3 GPU-hours (an estimate: PAPER['gpu_cost'])")
def _paper_mpii(profile, device, *, data, eval_data=None, steps=None, weights=None, size=None, width=None):
    if weights is not None:
        raise hub.RecipeInputError("hourglass-mpii trains from scratch (as the paper) and takes no --weights")
    overrides = {} if width is None else {"channels": width, "stem_channels": (max(2, width // 4), max(2, width // 2))}
    return run_paper(data, eval_data, steps=steps, size=size, device=device, model_overrides=overrides)
