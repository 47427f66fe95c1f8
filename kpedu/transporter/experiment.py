"""The Transporter chapter's experiment (``book/ch06-transporter``): synthetic videos, training
on random frame pairs, and evaluation of the learned keypoints against ground truth the
network never saw.

Everything a notebook or a recipe needs lives here, driven by :data:`RECIPE`; profiles
change sizes, never the algorithm.

Evaluation, two questions:

- **Do the keypoints carry the pose?** The Factorized-spatial-embeddings chapter's
  protocol (:func:`kpedu.fse.regression_nme`): a linear map without bias from the ``K``
  learned keypoints to the annotated joints, fitted on the frames of some clips and tested
  on the frames of others; the error is divided by the person's standing height (faces
  use the inter-ocular distance) and given in %.
- **Do the keypoints stay on their part?** :func:`temporal_drift`: each learned keypoint
  is matched to the joint it stays closest to; over a clip, its offset from that joint
  should not change. The drift is the spread of that offset over the clip's frames, in %
  of the standing height.

The comparison with the Factorized-spatial-embeddings method (:func:`train_fse_baseline`)
trains :class:`kpedu.fse.LandmarkNet` with its own losses on exactly the same frames and
evaluates it with the same two functions.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from .. import checks, hub
from .. import distributed as kdist
from ..runtime import resolve_profile
from .model import Transporter
from .loss import reconstruction_loss

__all__ = [
    "RECIPE", "FSE_BASELINE", "make_model", "make_videos", "transporter_loss", "train_transporter",
    "detect_keypoints", "evaluate", "temporal_drift", "match_keypoints", "hit_rates", "reconstruction_errors", "run_recipe", "make_fse_baseline",
    "train_fse_baseline", "fse_keypoints", "step_timing", "BODY_POINTS", "OBJECTS", "PAPER", "run_paper",
]

#: The joints the regression predicts: the nose and the twelve limb joints of COCO-17 (the
#: eyes and ears of a 40-pixel person are a pixel or two apart and add nothing).
BODY_POINTS = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

# One place for the chapter's settings; profiles change sizes, never algorithms.
RECIPE = {
    "image_size": 64,
    "frames": 16,
    # kpedu.data.videos.make_people_videos options
    "people": {"speed": 0.03, "background": "noise", "key_poses": 3, "height": (0.72, 0.84)},
    "num_keypoints": 10,
    # channel multiplier of the reference layers (kpedu.transporter.REFERENCE_LAYERS): 0.5 trains on a CPU
    "width": 0.5,
    # the bottleneck's width in the reference code's unit (kpedu.transporter.std_pixels: 2.7 pixels
    # of the 32 x 32 feature grid of a 64 x 64 frame); the reference notebook's 0.1 suits small
    # Atari sprites, our people are large and a wider map lets the keypoints find them sooner
    "gauss_std": 0.25,
    # a pair is two frames of one clip at most max_gap frames apart
    "max_gap": 15,
    "batch_size": 16,
    "lr": 2e-3,
    "steps": {"ci": 4, "book": 3000, "full": 3000},
    "train_clips": {"ci": 12, "book": 400, "full": 400},
    # evaluation: the regressor is fitted on the frames of "fit" clips, tested on "test" clips
    "eval_clips": {"ci": (8, 8), "book": (40, 40), "full": (60, 60)},
    "train_seed": 1,
    "eval_seed": 70_001,
    "curve_points": 10,
}

#: The objects scene: the same network and loss on three bouncing shapes per clip, with
#: K = 6 keypoints (more keypoints than objects, as the paper uses on Atari screens) and
#: a quarter of the reference channels; graded by precision and recall at the objects
#: (:func:`hit_rates`), since which keypoint takes which object varies from clip to clip.
OBJECTS = {"num_keypoints": 6, "width": 0.25, "gauss_std": 0.3, "steps": {"ci": 4, "book": 2000, "full": 2000},
           "train_clips": {"ci": 12, "book": 300, "full": 300},
           "eval_clips": {"ci": (8, 8), "book": (40, 40), "full": (40, 40)},
           "num_objects": 3, "background": "noise", "train_seed": 2, "eval_seed": 80_001}

#: The comparison: the Factorized-spatial-embeddings chapter's network and losses
#: (:mod:`kpedu.fse`), its recipe's warps and optimiser, trained on the same frames.
FSE_BASELINE = {"num_keypoints": RECIPE["num_keypoints"], "steps": {"ci": 4, "book": 1000, "full": 1000}}


def make_model(**overrides) -> Transporter:
    """The chapter's :class:`~kpedu.transporter.Transporter` (:data:`RECIPE`); keyword
    arguments override ``num_keypoints``, ``width`` and ``gauss_std``."""
    kwargs = {"num_keypoints": RECIPE["num_keypoints"], "width": RECIPE["width"], "gauss_std": RECIPE["gauss_std"],
              **overrides}
    return Transporter(**kwargs)


def make_videos(n: int, seed: int, kind: str = "people", frames: int | None = None, size: int | None = None,
                progress: bool = False):
    """``n`` clips of the recipe's size (:func:`kpedu.data.videos.make_people_videos` or
    :func:`~kpedu.data.videos.make_object_videos` with ``kind="objects"``)."""
    from ..data.videos import make_object_videos, make_people_videos

    checks.choice(kind, "kind", ("people", "objects"))
    frames = RECIPE["frames"] if frames is None else frames
    size = RECIPE["image_size"] if size is None else size
    if kind == "objects":
        return make_object_videos(n, frames, size, seed, num_objects=OBJECTS["num_objects"],
                                  background=OBJECTS["background"], progress=progress)
    return make_people_videos(n, frames, size, seed, progress=progress, **RECIPE["people"])


def transporter_loss(model: Transporter, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Reconstruct ``target`` from ``source`` through the keypoint bottleneck and transport;
    the squared pixel error (:func:`kpedu.transporter.reconstruction_loss`)."""
    out = model(source, target)
    return reconstruction_loss(out["reconstruction"], target)


def _pairs(videos, batch_size: int, generator: torch.Generator, max_gap: int):
    """Endless global batches of frame pairs; this rank keeps its share of each."""
    while True:
        p = videos.sample_pairs(batch_size, generator, max_gap)
        yield {"source": kdist.rank_slice(p["source"]), "target": kdist.rank_slice(p["target"])}


def train_transporter(model: Transporter, videos, steps: int, batch_size: int | None = None, lr: float | None = None,
                      seed: int = 0, device=None, max_gap: int | None = None, progress: bool = True,
                      callback: Callable | None = None, log_every: int | None = None, desc: str = "transporter",
                      state_path=None):
    """Train ``model`` in place on random frame pairs of ``videos`` (a
    :class:`kpedu.data.videos.VideoSet`; its points are never used): Adam with a one-cycle
    schedule, :func:`transporter_loss`, through :func:`kpedu.train.fit` (tqdm, AMP on
    CUDA, resumable with ``state_path``). Returns its :class:`~kpedu.train.History`."""
    from ..data.videos import VideoSet
    from ..runtime import get_device
    from ..train import fit, one_cycle

    if not isinstance(videos, VideoSet):
        raise TypeError(f"videos must be a kpedu.data.videos.VideoSet, got {checks.describe(videos)}")
    steps = checks.integer(steps, "steps", minimum=1)
    bs = RECIPE["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    lr = RECIPE["lr"] if lr is None else checks.number(lr, "lr", minimum=0, min_open=True)
    gap = RECIPE["max_gap"] if max_gap is None else checks.integer(max_gap, "max_gap", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    log_every = max(1, steps // 50) if log_every is None else checks.integer(log_every, "log_every", minimum=1)
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps)

    def loss_fn(m, batch):
        return transporter_loss(m, batch["source"], batch["target"])

    return fit(model, _pairs(videos, bs, torch.Generator().manual_seed(seed), gap), loss_fn, steps=steps,
               optimizer=opt, scheduler=sched, device=device, log_every=log_every, desc=desc, progress=progress,
               callback=callback, state_path=state_path)


@torch.no_grad()
def detect_keypoints(model: Transporter, images, batch_size: int = 256) -> torch.Tensor:
    """Learned keypoints ``(N, K, 2)`` in image pixels (CPU) of float or uint8 ``images``
    ``(N, 3, H, W)``, in batches, in eval mode (see :func:`kpedu.transporter.detect`)."""
    from .inference import detect

    return detect(model, images, batch_size)


def _clip_points(videos, points):
    idx = list(BODY_POINTS) if points is None and videos.kind == "people" else (
        list(range(videos.points.shape[2])) if points is None else
        [checks.index(p, videos.points.shape[2], f"points[{n}]") for n, p in enumerate(points)])
    return idx


def evaluate(keypoints_fit, fit_videos, keypoints_test, test_videos, points=None) -> dict:
    """The regression protocol on learned keypoints of two sets of clips.

    Args:
        keypoints_fit, keypoints_test: ``(V*T, K, 2)`` learned keypoints (image pixels)
            of every frame of ``fit_videos`` and ``test_videos`` (in
            :meth:`~kpedu.data.videos.VideoSet.flat` order).
        points: annotated point indices to predict (default: :data:`BODY_POINTS` for
            people, every object for objects).

    Returns the dict of :func:`kpedu.fse.regression_nme`, with ``nme`` in % of the
    standing height (people) or of the frame side (objects).
    """
    from ..fse import regression_nme

    idx = _clip_points(fit_videos, points)
    a, b = fit_videos.flat(), test_videos.flat()
    for what, k, v in (("keypoints_fit", keypoints_fit, a), ("keypoints_test", keypoints_test, b)):
        if not isinstance(k, (torch.Tensor, np.ndarray)) or len(k) != len(v["points"]):
            raise ValueError(f"{what} must hold one (K, 2) set per frame, {len(v['points'])}, got "
                             f"{checks.describe(k)}")
    return regression_nme(keypoints_fit, a["points"][:, idx], keypoints_test, b["points"][:, idx],
                          scale=(a["scale"], b["scale"]))


def match_keypoints(keypoints, videos, points=None) -> np.ndarray:
    """For each learned keypoint, the annotated point (an index into ``points``) it stays
    closest to on average over all frames of ``videos``: ``(K,)``."""
    idx = _clip_points(videos, points)
    kp = checks.points(keypoints, "keypoints", ndim=3, allow_nan=False, backend="numpy")
    gt = videos.flat()["points"][:, idx].numpy().astype(np.float64)
    if len(kp) != len(gt):
        raise ValueError(f"keypoints must hold one set per frame, {len(gt)}, got {len(kp)}")
    d = np.linalg.norm(kp[:, :, None] - gt[:, None], axis=-1).mean(0)   # (K, P)
    return d.argmin(1)


def temporal_drift(keypoints, videos, points=None, match=None) -> dict:
    """How far each learned keypoint wanders relative to its annotated part over a clip.

    Keypoint ``k`` is matched to a part ``j(k)`` (:func:`match_keypoints`, unless
    ``match`` gives it). Its offset ``o_k(t) = mu_k(t) - p_j(k)(t)`` is constant over a
    clip for a keypoint glued to its part; the drift of ``k`` in one clip is the root mean
    square distance of ``o_k(t)`` from its mean over the clip. Reported in % of the clip's
    scale (the standing height): ``drift`` (mean over keypoints and clips),
    ``per_keypoint`` ``(K,)``, ``match`` ``(K,)`` and ``mean_distance`` (how far, on average,
    a keypoint sits from its matched part, same unit).
    """
    idx = _clip_points(videos, points)
    kp = checks.points(keypoints, "keypoints", ndim=3, allow_nan=False, backend="numpy")
    v, t = videos.frames.shape[:2]
    if len(kp) != v * t:
        raise ValueError(f"keypoints must hold one set per frame, {v * t}, got {len(kp)}")
    m = match_keypoints(kp, videos, points) if match is None else np.asarray(match)
    gt = videos.points[:, :, idx].numpy().astype(np.float64)                 # (V, T, P, 2)
    kp = kp.reshape(v, t, -1, 2)
    off = kp - gt[:, :, m]                                                   # (V, T, K, 2)
    spread = np.sqrt(((off - off.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))   # (V, K)
    scale = videos.scale.numpy().astype(np.float64)[:, None]
    per = (spread / scale).mean(0) * 100
    dist = (np.linalg.norm(off, axis=-1).mean(1) / scale).mean(0) * 100
    return {"drift": float(per.mean()), "per_keypoint": per, "match": m, "mean_distance": float(dist.mean())}


def hit_rates(keypoints, videos, radius: float | None = None) -> dict:
    """Precision and recall of keypoints at the annotated points (the objects scene).

    A keypoint is a *hit* when an annotated point (an object's centre) lies within
    ``radius`` pixels (default: the objects' radius, ``videos.info["radius"]`` times the
    frame side); ``precision`` is the fraction of keypoints that hit an object, ``recall``
    the fraction of objects with a keypoint within ``radius``. Averaged over frames."""
    kp = checks.points(keypoints, "keypoints", ndim=3, allow_nan=False, backend="numpy")
    gt = videos.flat()["points"].numpy().astype(np.float64)
    if len(kp) != len(gt):
        raise ValueError(f"keypoints must hold one set per frame, {len(gt)}, got {len(kp)}")
    if radius is None:
        if "radius" not in videos.info:
            raise ValueError("radius is needed for clips without an object radius")
        radius = videos.info["radius"] * min(videos.image_size)
    radius = checks.number(radius, "radius", minimum=0.0, min_open=True)
    d = np.linalg.norm(kp[:, :, None] - gt[:, None], axis=-1)          # (N, K, P)
    return {"precision": float((d.min(2) <= radius).mean()), "recall": float((d.min(1) <= radius).mean()),
            "radius": float(radius)}


def _steps(table, name):
    return table["steps"][name]


def run_recipe(model: Transporter, profile=None, device=None, progress: bool = True, steps: int | None = None,
               train=None, fit_videos=None, test_videos=None, seed: int = 0, kind: str = "people",
               state_path=None) -> dict:
    """Train ``model`` in place with the chapter's recipe (``kind="objects"``: the objects
    scene, :data:`OBJECTS`) under a profile and evaluate it on fresh clips.

    Returns metrics: ``mse``, ``copy_mse`` and ``mse_ratio`` (:func:`reconstruction_errors`),
    ``loss``, ``curve`` (rows ``[step, value]`` on the first test clips: the regression
    error, or the % of objects missed), ``steps``, ``eval_clips``, ``train_seconds``; for
    people also ``nme`` (% of the standing height), ``train_nme``, ``per_point``,
    ``drift``, ``drift_per_keypoint`` and ``mean_distance`` (:func:`temporal_drift`); for
    objects ``precision``, ``recall`` and ``radius`` (:func:`hit_rates`).
    """
    checks.choice(kind, "kind", ("people", "objects"))
    seed = checks.integer(seed, "seed", minimum=0)
    name = resolve_profile(profile).name
    table = RECIPE if kind == "people" else OBJECTS
    t0 = time.time()
    if train is None:
        train = make_videos(table["train_clips"][name], table["train_seed"], kind, progress=progress)
    if fit_videos is None or test_videos is None:
        n_fit, n_test = table["eval_clips"][name]
        both = make_videos(n_fit + n_test, table["eval_seed"], kind)
        fit_videos, test_videos = both.subset(slice(0, n_fit)), both.subset(slice(n_fit, n_fit + n_test))
    steps = _steps(table, name) if steps is None else checks.integer(steps, "steps", minimum=1)
    curve: list[list[float]] = []
    every = max(1, steps // RECIPE["curve_points"])
    probe_fit, probe_test = fit_videos.subset(slice(0, min(10, len(fit_videos)))), test_videos.subset(
        slice(0, min(10, len(test_videos))))

    def score(m, fit_v, test_v):
        """The scene's headline number: regression error (people) or 1 - recall (objects), lower is better."""
        if kind == "objects":
            return 100 * (1 - hit_rates(detect_keypoints(m, test_v.images), test_v)["recall"])
        return evaluate(detect_keypoints(m, fit_v.images), fit_v, detect_keypoints(m, test_v.images), test_v)["nme"]

    def record(step, history, m):
        if step % every == 0 or step == steps:
            value = score(m, probe_fit, probe_test)
            curve.append([int(step), round(value, 3)])
            if progress:
                from tqdm.auto import tqdm

                what = "missed objects" if kind == "objects" else "validation error"
                tqdm.write(f"step {step}: loss {history.loss[-1]:.4f}, {what} {value:.2f}%")
        return False

    hist = train_transporter(model, train, steps, seed=seed, device=device, progress=progress, callback=record,
                             log_every=math.gcd(max(1, steps // 50), every), state_path=state_path,
                             desc=f"transporter ({kind})")
    out = {"loss": round(float(hist.loss[-1]), 5), "curve": curve, "steps": steps,
           "eval_clips": [len(fit_videos), len(test_videos)], "kind": kind}
    out.update(reconstruction_errors(model, test_videos))
    kb = detect_keypoints(model, test_videos.images)
    if kind == "objects":
        out.update({k: round(v, 4) for k, v in hit_rates(kb, test_videos).items()})
    else:
        r = evaluate(detect_keypoints(model, fit_videos.images), fit_videos, kb, test_videos)
        d = temporal_drift(kb, test_videos)
        out.update({"nme": round(r["nme"], 3), "train_nme": round(r["train_nme"], 3),
                    "per_point": [round(float(v), 3) for v in r["per_point"]], "drift": round(d["drift"], 3),
                    "drift_per_keypoint": [round(float(v), 3) for v in d["per_keypoint"]],
                    "mean_distance": round(d["mean_distance"], 3)})
    out["train_seconds"] = round(time.time() - t0, 1)
    return out


@torch.no_grad()
def reconstruction_errors(model: Transporter, videos, n: int = 256, seed: int = 0) -> dict:
    """Mean squared reconstruction error of ``model`` on ``n`` fixed random pairs of
    ``videos`` (eval mode), beside the copy-source baseline on the same pairs:
    ``mse``, ``copy_mse`` and their ratio ``mse_ratio``."""
    from ..train import evaluating

    n = checks.integer(n, "n", minimum=1)
    p = videos.sample_pairs(n, torch.Generator().manual_seed(checks.integer(seed, "seed", minimum=0)),
                            RECIPE["max_gap"])
    dev = next(model.parameters()).device
    total, copy = 0.0, 0.0
    with evaluating(model):
        for i in range(0, n, 64):
            xs, xt = p["source"][i:i + 64].to(dev), p["target"][i:i + 64].to(dev)
            total += float(transporter_loss(model, xs, xt)) * len(xs)
            copy += float(torch.mean((xs - xt) ** 2)) * len(xs)
    return {"mse": round(total / n, 6), "copy_mse": round(copy / n, 6), "mse_ratio": round(total / max(copy, 1e-12), 4)}


# ---------------------------------------------------------------------------- the FSE comparison

def make_fse_baseline():
    """The Factorized-spatial-embeddings chapter's network (:func:`kpedu.fse.experiment.make_model`)
    with as many landmarks as the Transporter has keypoints."""
    from ..fse.experiment import make_model as make_fse

    return make_fse(num_landmarks=FSE_BASELINE["num_keypoints"])


def train_fse_baseline(model, videos, steps: int, seed: int = 0, device=None, progress: bool = True):
    """Train the FSE network in place on the frames of ``videos`` with its chapter's own
    recipe (random TPS pairs, alignment and diversity losses,
    :func:`kpedu.fse.experiment.train_fse`): the frames are treated as unrelated images,
    which is all FSE can use."""
    from ..fse.experiment import train_fse

    return train_fse(model, videos, steps, seed=seed, device=device, progress=progress, desc="fse (same frames)")


def fse_keypoints(model, images) -> torch.Tensor:
    """Landmarks ``(N, K, 2)`` of the FSE network (one pass, image pixels)."""
    from ..fse.experiment import detect_landmarks

    return detect_landmarks(model, images)


def step_timing(model: Transporter, batch_size: int | None = None, steps: int = 5, device=None) -> dict:
    """Training speed of :func:`transporter_loss` with backward and an Adam step on the
    recipe's frames: ``pairs_per_second``, ``steps_per_second`` and ``batch_size``."""
    from ..bench import time_call
    from ..runtime import get_device

    bs = RECIPE["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    steps = checks.integer(steps, "steps", minimum=1)
    dev = torch.device(device) if device is not None else get_device()
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    s = RECIPE["image_size"]
    g = torch.Generator().manual_seed(0)
    xs, xt = torch.rand(bs, 3, s, s, generator=g).to(dev), torch.rand(bs, 3, s, s, generator=g).to(dev)

    def step():
        opt.zero_grad(set_to_none=True)
        transporter_loss(model, xs, xt).backward()
        opt.step()

    sec = time_call(step, steps, device=dev)
    return {"steps_per_second": round(1 / sec, 3), "pairs_per_second": round(bs / sec, 1), "batch_size": bs}


# ------------------------------------------------------------------------------------- recipes

@hub.recipe("transporter-book", description="Transporter, K = 10 keypoints, width 0.5, 64x64 stick-people videos",
            storage_dtype=torch.float16)
def _book(profile, device):
    seed = torch.initial_seed()
    model = make_model()
    metrics = run_recipe(model, profile, device, seed=seed)
    return model.cpu(), metrics


@hub.recipe("transporter-objects", description="Transporter, K = 6 keypoints, width 0.25, 64x64 moving-shapes videos",
            storage_dtype=torch.float16)
def _objects(profile, device):
    seed = torch.initial_seed()
    model = make_model(num_keypoints=OBJECTS["num_keypoints"], width=OBJECTS["width"], gauss_std=OBJECTS["gauss_std"])
    metrics = run_recipe(model, profile, device, seed=seed, kind="objects")
    return model.cpu(), metrics


@hub.recipe("transporter-fse-baseline", description="FSE (K = 10) trained on the Transporter chapter's video frames",
            storage_dtype=torch.float16)
def _fse_baseline(profile, device):
    seed = torch.initial_seed()
    name = resolve_profile(profile).name
    t0 = time.time()
    train = make_videos(RECIPE["train_clips"][name], RECIPE["train_seed"])
    n_fit, n_test = RECIPE["eval_clips"][name]
    both = make_videos(n_fit + n_test, RECIPE["eval_seed"])
    fit_v, test_v = both.subset(slice(0, n_fit)), both.subset(slice(n_fit, n_fit + n_test))
    model = make_fse_baseline()
    hist = train_fse_baseline(model, train, FSE_BASELINE["steps"][name], seed=seed, device=device)
    ka, kb = fse_keypoints(model, fit_v.images), fse_keypoints(model, test_v.images)
    r = evaluate(ka, fit_v, kb, test_v)
    d = temporal_drift(kb, test_v)
    return model.cpu(), {"nme": round(r["nme"], 3), "train_nme": round(r["train_nme"], 3),
                         "drift": round(d["drift"], 3), "mean_distance": round(d["mean_distance"], 3),
                         "loss": round(float(hist.loss[-1]), 4), "steps": FSE_BASELINE["steps"][name],
                         "eval_clips": [n_fit, n_test], "train_seconds": round(time.time() - t0, 1)}


# ----------------------------------------------------------------------------- paper scale (real videos)

#: ``transporter-video``: the Transporter at the released code's configuration (width 1.0:
#: encoder 16-16-32-32 channels, decoder from 128; ``K = 5``; ``gauss_std = 0.1``; 128x128
#: frames, as in the released notebook) trained on the frames of real videos stored as
#: folders (:class:`kpedu.datasets.VideoFolder`: Atari episodes, robot camera streams, any
#: video dumped with ffmpeg). The optimiser, batch and number of steps are our choices (the
#: released code does not state them). Evaluation without labels: the reconstruction error
#: beside the copy-source baseline on held-out clips (the last tenth of the clips).
PAPER = {
    "image_size": 128,
    "num_keypoints": 5,
    "gauss_std": 0.1,
    "width": 1.0,
    "batch": 32,
    "steps": 100_000,
    "lr": 1e-3,
    "gpu_cost": "14.8 GFLOP per 128x128 pair (forward and backward) x 32 pairs x 100,000 steps = 4.7e16 FLOP: about 16 minutes of compute; reading frames from disk dominates (estimate: kpedu.bench.count_flops, at an assumed sustained 50 TFLOP/s under mixed precision, compute only)",
}


def run_paper(data, steps: int | None = None, size: int | None = None, device=None, progress: bool = True,
              seed: int = 0, width: float | None = None, num_keypoints: int | None = None):
    """Train the Transporter on the clips of a :class:`kpedu.datasets.VideoFolder` and
    evaluate the reconstruction on the held-out clips; returns ``(model, metrics)`` with
    ``mse``, ``copy_mse``, ``mse_ratio``, ``loss``, ``steps``, ``train_clips``,
    ``val_clips`` and ``skipped_images``."""
    from ..datasets import VideoFolder
    from ..train import fit, one_cycle

    size = PAPER["image_size"] if size is None else checks.integer(size, "size", minimum=16)
    steps = PAPER["steps"] if steps is None else checks.integer(steps, "steps", minimum=1)
    folder = VideoFolder(data, size=size)
    n = len(folder.clips)
    n_val = max(1, n // 10) if n > 1 else 0
    train_clips = list(range(n - n_val))
    model = make_model(num_keypoints=PAPER["num_keypoints"] if num_keypoints is None else num_keypoints,
                       width=PAPER["width"] if width is None else width, gauss_std=PAPER["gauss_std"])
    opt = torch.optim.Adam(model.parameters(), lr=PAPER["lr"])
    src = kdist.shard_batches(folder.pair_batches(PAPER["batch"], seed, RECIPE["max_gap"], clips=train_clips))
    hist = fit(model, src, lambda m, b: transporter_loss(m, b["source"], b["target"]), steps=steps, optimizer=opt,
               scheduler=one_cycle(opt, PAPER["lr"], steps), device=device, progress=progress,
               log_every=max(1, min(100, steps // 10)), desc="transporter-video")
    metrics = {"loss": round(float(hist.loss[-1]), 5), "steps": steps, "train_clips": len(train_clips),
               "val_clips": n_val}
    if n_val:
        val = folder.materialise(list(range(n - n_val, n)))
        metrics.update(reconstruction_errors(model, val))
    metrics["skipped_images"] = folder.report()
    return model.cpu(), metrics


@hub.recipe("transporter-video", data="videos as folders of frames: ROOT/<clip>/<frame>.png (Atari episodes, "
                                      "robot camera streams, any video dumped with ffmpeg)",
            description="Transporter at the released configuration (K = 5, width 1.0, gauss_std 0.1, 128x128 "
                        "frames) on real videos; reconstruction error beside copying the source on held-out clips; "
                        "estimated GPU cost: about 16 minutes of compute, reading frames dominates (an estimate: "
                        "PAPER['gpu_cost'])")
def _paper_video(profile, device, *, data, eval_data=None, steps=None, weights=None, size=None, width=None):
    if weights is not None or eval_data is not None:
        raise hub.RecipeInputError("transporter-video takes no --weights or --eval-data (it holds out the last "
                                   "tenth of the clips in --data)")
    return run_paper(data, steps=steps, size=size, device=device,
                     width=None if width is None else width / 32)
