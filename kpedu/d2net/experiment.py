"""D2-Net chapter experiments: the training recipe, evaluation against SIFT and ORB, costs.

D2-Net chapter, section 3. Everything the chapter measures goes through this module:

* :data:`RECIPE` and :func:`train_d2net`: the triplet margin ranking loss on photo pairs
  under random homographies and lighting (:mod:`kpedu.data.pairs`), trained from scratch;
* :func:`evaluation_sets`, :func:`evaluate`: MMA at 1-10 px, features and matches, on
  held-out viewpoint and illumination pairs, for D2-Net and the OpenCV baselines;
* :func:`stereo_check`: matches on scikit-image's real stereo pair, checked against its
  ground-truth disparity;
* :func:`extraction_cost`: time and peak memory per image;
* the hub recipe ``d2net-book`` (``python -m kpedu.hub train d2net-book``).

Departures from the paper, all forced by training from scratch on a CPU (the chapter
states them too):

* batch normalisation after every convolution but the last (the VGG16-BN layout);
* semi-hard negatives early on. The hardest negative is searched among a random pool of
  cells that starts at 64 and doubles every ``pool_doubling`` steps; after that it is the
  paper's hardest negative over the whole image. From random weights, the paper's
  negative makes every descriptor collapse onto one vector within 100 steps.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from typing import Any, Sequence

import numpy as np
import torch

from .. import checks, hub
from ..data.pairs import HELDOUT_PHOTOS, PairBatches, PairSet, make_pairs
from ..data.stereo import stereo_errors, stereo_motorcycle
from ..runtime import resolve_profile
from ..distributed import shard_batches
from ..train import fit
from .baselines import classical_features
from .extract import MULTI_SCALE, SINGLE_SCALE, extract
from .loss import d2_loss
from .matching import Features, _thresholds, evaluate_matching, match
from .model import D2Net

__all__ = [
    "RECIPE", "make_model", "negative_pool_at", "d2_loss_fn", "train_d2net", "evaluation_sets", "features_for",
    "evaluate", "stereo_check", "run_recipe", "extraction_cost", "METHODS", "load_model",
]

RECIPE: dict[str, Any] = {
    "width": 0.25,  # book configuration: 128-dimensional descriptors
    "batch_norm": True,
    "size": 128,  # training crops
    "batch": 4,  # pairs per step
    "lr": 1e-3,  # Adam, cosine decay to 0 over the run
    "margin": 1.0,
    "safe_radius": 1,  # cells (the paper: 4; see the chapter)
    "temperature": "max",
    "pool_start": 64,
    "pool_doubling": 250,  # steps
    "steps": {"ci": 20, "book": 300, "full": 3000},
    "train_seed": 0,
    "eval_size": 256,
    "eval_pairs": {"ci": 3, "book": 30, "full": 60},
    "eval_seed": 2019,
    "curve_points": 10,
    "curve_pairs": 10,
    "edge_threshold": 5.0,
    "max_keypoints": 1024,  # the same budget of strongest keypoints per image for every method
}

#: Methods compared by :func:`evaluate`.
METHODS: tuple[str, ...] = ("d2net", "d2net-ms", "sift", "orb")


def make_model(width: float | None = None) -> D2Net:
    """The chapter's network: :class:`D2Net` with the recipe's width and batch norm."""
    return D2Net(RECIPE["width"] if width is None else width, dilated=True, batch_norm=RECIPE["batch_norm"])


def negative_pool_at(step: int) -> int | None:
    """Size of the random pool searched for the hardest negative at ``step`` (``None``: all cells)."""
    step = checks.integer(step, "step", minimum=0)
    pool = RECIPE["pool_start"] * 2 ** (step // RECIPE["pool_doubling"])
    cells = (RECIPE["size"] // 4) ** 2
    return None if pool >= cells else int(pool)


def d2_loss_fn(model: D2Net, batch: dict) -> tuple[torch.Tensor, dict]:
    """The training step's loss for :func:`kpedu.train.fit`: both views through ``model``, then :func:`d2_loss`."""
    f1 = model(batch["image1"]).float()
    f2 = model(batch["image2"]).float()
    step = int(batch["step"]) if "step" in batch else 10 ** 9
    loss, logs = d2_loss(f1, f2, batch["H"], model.stride, model.offset, margin=RECIPE["margin"],
                         safe_radius=RECIPE["safe_radius"], temperature=RECIPE["temperature"],
                         negative_pool=negative_pool_at(step), return_logs=True)
    return loss, logs


def train_d2net(model: D2Net, steps: int, seed: int = 0, device=None, progress: bool = True, callback=None,
                log_every: int = 10, state_path=None, save_every: int = 100):
    """Train ``model`` in place for ``steps`` steps with the recipe; returns the :class:`kpedu.train.History`."""
    steps = checks.integer(steps, "steps", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    log_every = checks.integer(log_every, "log_every", minimum=1)
    save_every = checks.integer(save_every, "save_every", minimum=1)
    src = shard_batches(PairBatches(RECIPE["batch"], RECIPE["size"], seed=seed))   # each rank: its share
    sched = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))  # noqa: E731
    return fit(model, src, d2_loss_fn, steps=steps, lr=RECIPE["lr"], scheduler=sched, device=device, progress=progress,
               callback=callback, log_every=log_every, desc="D2-Net", state_path=state_path, save_every=save_every)


def evaluation_sets(profile=None, n: int | None = None, size: int | None = None, seed: int | None = None
                    ) -> dict[str, PairSet]:
    """The held-out ``viewpoint`` and ``illumination`` pair sets (photos never used in training)."""
    n = None if n is None else checks.integer(n, "n", minimum=1)
    size = None if size is None else checks.integer(size, "size", minimum=8)
    seed = None if seed is None else checks.integer(seed, "seed", minimum=0)
    name = resolve_profile(profile).name
    n = RECIPE["eval_pairs"][name] if n is None else n
    size = RECIPE["eval_size"] if size is None else size
    seed = RECIPE["eval_seed"] if seed is None else seed
    return {kind: make_pairs(n, kind, size, seed + k, photos=HELDOUT_PHOTOS)
            for k, kind in enumerate(("viewpoint", "illumination"))}


def features_for(method: str, image: torch.Tensor, model: D2Net | None = None, max_keypoints: int | None | str = "recipe"
                 ) -> Features:
    """Features of one ``(3, H, W)`` image by ``method`` (:data:`METHODS`).

    At most ``max_keypoints`` per image, the strongest by each method's own score
    (``"recipe"``: ``RECIPE["max_keypoints"]``, the same budget for every method, like the
    "top K" variant of the HPatches matching benchmark; ``None``: all detections, and
    2,048 for SIFT and ORB). ``image`` is float in [0, 1] or uint8 (:func:`kpedu.checks.image`).
    """
    method = checks.choice(method, "method", METHODS)
    k = _max_keypoints(max_keypoints)
    if method in ("d2net", "d2net-ms"):
        if model is None:
            raise ValueError(f"method {method!r} needs a model")
        return extract(model, image, MULTI_SCALE if method == "d2net-ms" else SINGLE_SCALE, max_keypoints=k,
                       edge_threshold=RECIPE["edge_threshold"])
    return classical_features(image, method, max_features=2048 if k is None else k)


def _max_keypoints(max_keypoints) -> int | None:
    """``"recipe"`` (the recipe's budget), ``None`` (all) or an integer >= 1."""
    if isinstance(max_keypoints, str):
        if max_keypoints != "recipe":
            raise ValueError(f"max_keypoints must be 'recipe', None or an integer >= 1, got {max_keypoints!r}")
        return RECIPE["max_keypoints"]
    return None if max_keypoints is None else checks.integer(max_keypoints, "max_keypoints", minimum=1)


def _methods(methods) -> list[str]:
    """A non-empty sequence of :data:`METHODS`."""
    if isinstance(methods, (str, bytes)) or not hasattr(methods, "__iter__"):
        raise TypeError(f"methods must be a sequence of method names such as ('sift',), got {checks.describe(methods)}")
    methods = [checks.choice(m, "methods", METHODS) for m in methods]
    if not methods:
        raise ValueError("methods must name at least one method")
    return methods


def evaluate(model: D2Net | None, sets: dict[str, PairSet], methods: Sequence[str] = METHODS,
             progress: bool = False, max_keypoints: int | None | str = "recipe") -> dict[str, dict[str, Any]]:
    """MMA (1-10 px), mean features and mean mutual-NN matches per set and method.

    Returns ``{kind: {method: {"mma": [10 floats], "n_features", "n_matches", "per_pair"}}}``.
    ``max_keypoints`` is passed to :func:`features_for`.
    """
    methods = _methods(methods)
    _max_keypoints(max_keypoints)
    out: dict[str, dict[str, Any]] = {}
    for kind, ps in sets.items():
        out[kind] = {}
        for method in methods:
            f1, f2, Hs = [], [], []
            it = range(len(ps))
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(it, desc=f"{method} on {kind}", leave=False)
            for i in it:
                a, b, H = ps.pair(i)
                f1.append(features_for(method, a, model, max_keypoints))
                f2.append(features_for(method, b, model, max_keypoints))
                Hs.append(H)
            r = evaluate_matching(f1, f2, Hs)
            out[kind][method] = {"mma": [round(float(v), 4) for v in r["mma"]],
                                 "n_features": round(float(r["n_features"]), 1),
                                 "n_matches": round(float(r["n_matches"]), 1),
                                 "per_pair": np.asarray(r["per_pair"])}
    return out


def stereo_check(model: D2Net | None, methods: Sequence[str] = METHODS, scale: float = 0.5,
                 thresholds: Sequence[float] = tuple(range(1, 11))) -> dict[str, dict[str, Any]]:
    """Match the real stereo pair (``skimage.data.stereo_motorcycle``) and check against the disparity.

    For each method: ``n_features`` (mean of the two views), ``n_matches`` (mutual NN),
    ``n_checked`` (matches with a valid disparity at the left keypoint) and
    ``accuracy`` (fraction of the checked matches within each threshold of the true
    position ``(x - d, y)``).
    """
    methods = _methods(methods)
    scale = checks.number(scale, "scale", minimum=0, min_open=True)
    thresholds = _thresholds(thresholds).tolist()
    left, right, disp = stereo_motorcycle(scale)
    out = {}
    for method in methods:
        fl, fr = features_for(method, left, model), features_for(method, right, model)
        m = match(fl, fr)
        err = stereo_errors(fl.keypoints, fr.keypoints, m, disp)
        ok = ~np.isnan(err)  # NaN: no ground truth there; inf: a missing keypoint, which counts as a miss
        e = err[ok]
        out[method] = {"n_features": round((len(fl) + len(fr)) / 2, 1), "n_matches": int(len(m)),
                       "n_checked": int(ok.sum()),
                       "accuracy": [round(float((e <= t).mean()) if len(e) else 0.0, 4) for t in thresholds],
                       "errors": e}
    return out


def run_recipe(model: D2Net, profile=None, device=None, progress: bool = True, steps: int | None = None,
               seed: int = 0, sets: dict[str, PairSet] | None = None, state_path=None, verbose: bool = False
               ) -> dict[str, Any]:
    """Train ``model`` in place with the recipe and evaluate it on the held-out sets.

    Returns metrics: ``mma`` ``{kind: {method: [MMA at 1..10 px]}}`` for D2-Net (single
    and multiscale), SIFT and ORB, ``n_features`` and ``n_matches`` likewise, ``curve``
    (rows ``[step, MMA@5 viewpoint, MMA@5 illumination]`` on the first
    ``curve_pairs`` pairs, single scale, all detections), ``loss_curve`` (rows ``[step, loss, mean
    positive distance, mean hardest-negative distance, fraction of positives that beat
    it]`` at every log point), ``loss``, ``steps``, ``eval_pairs`` and ``train_seconds``.
    """
    steps = None if steps is None else checks.integer(steps, "steps", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    name = resolve_profile(profile).name
    t0 = time.time()
    steps = RECIPE["steps"][name] if steps is None else steps
    if sets is None:
        sets = evaluation_sets(name)
    probe = {k: PairSet(v.image1[:RECIPE["curve_pairs"]], v.image2[:RECIPE["curve_pairs"]],
                        v.H[:RECIPE["curve_pairs"]], v.photo[:RECIPE["curve_pairs"]], v.kind)
             for k, v in sets.items()}
    every = max(1, steps // RECIPE["curve_points"])
    curve: list[list[float]] = []

    def record(step, history, m):
        if step % every == 0 or step == steps:
            r = evaluate(m, probe, methods=("d2net",), max_keypoints=None)
            row = [int(step)] + [r[k]["d2net"]["mma"][4] for k in ("viewpoint", "illumination")]
            curve.append(row)
            if progress or verbose:
                from tqdm.auto import tqdm

                tqdm.write(f"step {step}: loss {history.loss[-1]:.3f}, MMA@5 viewpoint {row[1]:.3f}, "
                           f"illumination {row[2]:.3f}")
        return False

    hist = train_d2net(model, steps, seed=seed, device=device, progress=progress, callback=record,
                       log_every=math.gcd(max(1, steps // 50), every), state_path=state_path)
    res = evaluate(model, sets, progress=progress)
    return {
        "mma": {k: {m: v["mma"] for m, v in r.items()} for k, r in res.items()},
        "n_features": {k: {m: v["n_features"] for m, v in r.items()} for k, r in res.items()},
        "n_matches": {k: {m: v["n_matches"] for m, v in r.items()} for k, r in res.items()},
        "curve": curve,
        "loss_curve": [[int(st), round(float(lo), 4)] + [round(float(hist.logs[k][i]), 4) for k in ("pos", "neg", "correct")]
                       for i, (st, lo) in enumerate(zip(hist.steps, hist.loss))],
        "loss": round(float(hist.loss[-1]), 4),
        "steps": steps,
        "eval_pairs": len(next(iter(sets.values()))),
        "train_seconds": round(time.time() - t0, 1),
    }


def load_model(device=None, verbose: bool = True, progress: bool = True) -> tuple[D2Net, dict]:
    """The chapter's trained network and its info: the committed ``d2net-book`` checkpoint,
    or (if it is missing or its hash differs) a run of :func:`run_recipe` under the
    active profile. See :func:`kpedu.train.load_or_train`."""
    from ..train import load_or_train

    return load_or_train("d2net-book", make_model(), lambda m: run_recipe(m, device=device, progress=progress),
                         device=device, verbose=verbose)


_COST_SCRIPT = r"""
import json, os, resource, sys, threading, time, torch
torch.set_num_threads({threads})
from kpedu.d2net import experiment as E
from kpedu.d2net.extract import extract
from kpedu.d2net.baselines import classical_features
img = torch.rand(3, {size}, {size}, generator=torch.Generator().manual_seed(0))
method = {method!r}
if method.startswith("d2net"):
    model = E.make_model({width}).eval()
    scales = (0.5, 1.0, 2.0) if method.endswith("ms") else (1.0,)
    run = lambda: extract(model, img, scales)
else:
    run = lambda: classical_features(img, method, 2048)
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
try:
    base = rss()
    peak, done = [base], [False]
    def sample():
        while not done[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    run()
    done[0] = True
    th.join()
    extra = (peak[0] - base) / 2 ** 20
except OSError:  # no /proc (not Linux): the growth of the peak resident size
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
times = []
for _ in range({repeats}):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
gflops = None
if method.startswith("d2net"):
    from kpedu.bench import call_flops
    with torch.no_grad():
        gflops = call_flops(run) / 1e9
print(json.dumps({{"seconds": sorted(times)[len(times) // 2], "peak_mb": extra, "gflops": gflops}}))
"""


def extraction_cost(method: str, size: int = 512, width: float | None = None, repeats: int = 3,
                    threads: int = 1) -> dict[str, float]:
    """Median seconds per image, peak extra memory (MB) and network GFLOPs of one
    extraction, on the CPU.

    Runs in a fresh Python process. ``peak_mb`` is the highest resident memory seen
    during the first extraction (sampled every 0.5 ms from ``/proc/self/statm``) minus
    the level just before it, so imports, weights and the image are excluded. Without
    ``/proc``, the growth of ``ru_maxrss`` is used, which can read 0 when imports peaked
    higher. ``seconds`` is the median of ``repeats`` later runs. ``gflops`` counts the
    network's convolutions and matrix products over the whole extraction (every pyramid
    level), the same on every machine; it is ``None`` for SIFT and ORB, which OpenCV
    computes without them. ``method`` is one of :data:`METHODS`;
    ``width`` sets the D2-Net configuration (the recipe's by default; 1.0 is the paper's).
    """
    method = checks.choice(method, "method", METHODS)
    size = checks.integer(size, "size", minimum=32)
    if size % 8:
        raise ValueError(f"size must be a multiple of 8 and >= 32, got {size}")
    width = RECIPE["width"] if width is None else checks.number(width, "width", minimum=0, maximum=4, min_open=True)
    repeats = checks.integer(repeats, "repeats", minimum=1)
    threads = checks.integer(threads, "threads", minimum=1)
    code = _COST_SCRIPT.format(threads=threads, size=size, method=method, width=width, repeats=repeats)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


@hub.recipe("d2net-book", description="D2-Net, VGG16-BN to conv4_3 at width 0.25, trained from scratch on photo pairs",
            storage_dtype=torch.float16)
def _book(profile, device):
    # kpedu.hub.train has seeded torch with its --seed (default 0)
    seed = torch.initial_seed()
    model = make_model()
    metrics = run_recipe(model, profile, device, seed=seed)
    return model.cpu(), metrics


# ----------------------------------------------------------------------------- paper scale (photo folder + HPatches)

#: ``d2net-images`` (Dusmanu et al., "D2-Net: A Trainable CNN for Joint Description and
#: Detection of Local Features", CVPR 2019). The paper trains on MegaDepth pairs with known
#: depth and pose; MegaDepth training (its 200 GB and its SfM reconstructions) is out of
#: reach here, and this recipe replaces it with random homography pairs of any folder of
#: photographs (:class:`kpedu.datasets.ImageFolderPairs`), the chapter's training. The
#: network is the paper's width (VGG-16 to conv4_3, 512-d descriptors, width 1.0) trained
#: from scratch with the chapter's loss and optimiser (Adam 1e-3, cosine); the paper
#: fine-tunes only conv4_3 of ImageNet weights. Evaluation: HPatches MMA at 1..10 px
#: (:class:`kpedu.datasets.HPatchesSequences`, the paper's excluded sequences left out).
PAPER = {
    "width": 1.0,
    "size": 256,
    "batch": 4,
    "steps": 50_000,
    "eval_max_size": 1024,
    "gpu_cost": "218 GFLOP per 256x256 view x 2 views x 4 pairs x 50,000 steps = 8.7e16 FLOP: about 0.5 GPU-hours (estimate: kpedu.bench.count_flops forward+backward, at an assumed sustained 50 TFLOP/s under mixed precision, compute only)",
    "aims_at": "HPatches MMA at 10 px of about 0.72 (viewpoint) and 0.87 (illumination) for the authors' "
               "off-the-shelf D2-Net, read off the plot stored in their evaluation notebook to about 0.03 "
               "(book/ch04-d2net/03-training-and-results; not checked against the published figure)",
}


def run_paper(data, eval_data=None, steps: int | None = None, size: int | None = None, device=None,
              progress: bool = True, seed: int = 0, width: float | None = None, batch: int | None = None,
              eval_max_size: int | None = None):
    """Train D2-Net on homography pairs of the photographs under ``data`` and, with
    ``eval_data`` (an HPatches folder), evaluate MMA; returns ``(model, metrics)`` with
    ``mma`` (``{"viewpoint": [10], "illumination": [10], "overall": [10]}``, 1..10 px,
    only with ``eval_data``), ``loss``, ``steps``, ``photos`` and ``skipped_images``."""
    from ..datasets import ImageFolderPairs, hpatches_sets

    size = PAPER["size"] if size is None else checks.integer(size, "size", minimum=16)
    steps = PAPER["steps"] if steps is None else checks.integer(steps, "steps", minimum=1)
    bs = PAPER["batch"] if batch is None else checks.integer(batch, "batch", minimum=1)
    folder = ImageFolderPairs(data, size=size, seed=seed)
    sets = None
    if eval_data is not None:
        sets = hpatches_sets(eval_data, max_size=PAPER["eval_max_size"] if eval_max_size is None else eval_max_size)
    model = make_model(PAPER["width"] if width is None else width)
    src = shard_batches(folder.batches(bs, seed))
    sched = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))  # noqa: E731
    hist = fit(model, src, d2_loss_fn, steps=steps, lr=RECIPE["lr"], scheduler=sched, device=device,
               progress=progress, log_every=max(1, min(100, steps // 10)), desc="d2net-images")
    metrics: dict[str, Any] = {"loss": round(float(hist.loss[-1]), 4), "steps": steps, "photos": len(folder)}
    if sets is not None:
        model.eval()
        res = evaluate(model, sets, methods=("d2net",), progress=progress)
        mma = {k: r["d2net"]["mma"] for k, r in res.items()}
        n = {k: len(v) for k, v in sets.items()}
        mma["overall"] = [round(sum(mma[k][i] * n[k] for k in n) / max(1, sum(n.values())), 4) for i in range(10)]
        metrics["mma"] = mma
        metrics["hpatches_pairs"] = n
    metrics["skipped_images"] = folder.report() + sum(v.report() for v in (sets or {}).values())
    return model.cpu(), metrics


@hub.recipe("d2net-images", data="a folder of photographs (**/*.jpg, png, ...) for homography training pairs "
                                 "(replaces MegaDepth, out of reach)",
            eval_data="HPatches: hpatches-sequences-release/{i_*,v_*}/1.ppm..6.ppm + H_1_2..H_1_6",
            description="D2-Net at the paper's width (VGG-16 to conv4_3, 512-d) on homography pairs of --data "
                        "(MegaDepth replaced), HPatches MMA with --eval-data; aims at the authors' HPatches MMA "
                        "(book/ch04-d2net/03, read off their plot); estimated GPU cost: about 0.5 GPU-hours (an estimate: PAPER['gpu_cost'])")
def _paper_images(profile, device, *, data, eval_data=None, steps=None, weights=None, size=None, width=None):
    if weights is not None:
        raise hub.RecipeInputError("d2net-images trains from scratch and takes no --weights")
    return run_paper(data, eval_data, steps=steps, size=size, device=device,
                     width=None if width is None else width / 512)
