"""The factorized-spatial-embeddings chapter's experiment (``book/ch03-fse``): procedural
faces, random thin-plate-spline pairs, training with the alignment and diversity losses,
and evaluation by linear regression to the annotated landmarks (NME, % of inter-ocular
distance).

Everything a notebook or the ``full`` recipe needs lives here, driven by :data:`RECIPE`;
profiles change sizes, never the algorithm.

Training pair (Thewlis et al., Sec. 4): a face ``x`` is warped by a
random TPS ``g1`` into ``x1 = g1 o x`` and, through a second random TPS ``g2``, into
``x2 = g2 o (g1 o x)``, resampled once through the composed map. The network sees ``x1``
and ``x2``; the alignment loss asks ``Phi(x2) = g2(Phi(x1))`` and the diversity loss keeps
the ``K`` probability maps apart. The annotated landmarks are never used for training.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch

from .. import checks, hub
from .. import distributed as kdist
from ..bench import time_call
from ..runtime import resolve_profile
from .evaluate import regression_nme
from .loss import DIVERSITY_MODES, alignment_loss, diversity_loss
from .model import LandmarkNet
from .tps import random_tps

__all__ = [
    "RECIPE",
    "make_model",
    "make_faces_split",
    "make_pairs",
    "pool_probs",
    "fse_loss",
    "train_fse",
    "detect_landmarks",
    "evaluate",
    "equivariance_error",
    "landmark_spread",
    "run_recipe",
    "ABLATIONS",
    "ABLATION_STEPS",
    "run_ablation",
    "diversity_timing",
    "step_timing",
]

# One place for the chapter's settings; profiles change sizes, never algorithms.
RECIPE = {
    "image_size": 64,
    "num_landmarks": 10,
    # kpedu.data.make_face options on top of its defaults
    "faces": {},
    "model": {"backbone": "unet", "width": 16, "depth": 3, "out_stride": 2, "beta": 1.0},
    # random TPS warps (kpedu.fse.random_tps) for g1 and g2
    "warp": {"rotation": 15.0, "scale": (0.85, 1.15), "translation": 0.06, "grid": 5, "displacement": 0.04},
    "diversity": "max",
    # the diversity loss is computed on the probability maps summed over pool x pool blocks
    # (1: at the network's resolution); see fse_loss
    "diversity_pool": 4,
    # loss = alignment (in pixels^2 / alignment_scale) + diversity_weight * diversity
    "alignment_scale": 1.0,
    "diversity_weight": 1.0,
    "batch_size": 16,
    "lr": 1e-3,
    "steps": {"ci": 4, "book": 150, "full": 1000},
    # 800 faces, each seen under fresh random warps at every draw; chosen over 6,000 by the
    # validation NME (runs differing only in seed or thread count differ by a few tenths of %)
    "train_faces": {"ci": 64, "book": 800, "full": 800},
    # evaluation: the regressor is fitted on "fit" faces and tested on "test" faces
    "eval_faces": {"ci": (40, 40), "book": (500, 500), "full": (1000, 1000)},
    "curve_points": 10,
    # test-time averaging: landmarks of `tta` warped copies (random TPS of strength
    # `tta_strength`) mapped back and averaged with the plain detection (0: one pass)
    "tta": 8,
    "tta_strength": 0.5,
    "train_seed": 1,
    "eval_seed": 50_001,
}


# The diversity ablations: the same network and budget, only the objective changes.
ABLATIONS = {
    "align": {"diversity": "none", "label": "alignment loss alone"},
    "pairwise": {"diversity": "pairwise", "label": "alignment + pairwise diversity"},
    "max": {"diversity": "max", "label": "alignment + max diversity"},
}
# the same budget as the book checkpoint, so that fse-book is the "max" variant
ABLATION_STEPS = RECIPE["steps"]


def make_model(**overrides) -> LandmarkNet:
    """The chapter's :class:`~kpedu.fse.LandmarkNet` (:data:`RECIPE` ``["model"]``, ``K =``
    ``RECIPE["num_landmarks"]``); keyword arguments override it (e.g. ``num_landmarks=30``)."""
    kwargs = {"num_landmarks": RECIPE["num_landmarks"], **RECIPE["model"], **overrides}
    return LandmarkNet(**kwargs)


def make_faces_split(n: int, seed: int, image_size: int | None = None, progress: bool = False, **kwargs):
    """``n`` procedural faces (:func:`kpedu.data.make_faces`) with the recipe's options."""
    from ..data import make_faces

    n = checks.integer(n, "n", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    size = RECIPE["image_size"] if image_size is None else checks.integer(image_size, "image_size", minimum=16)
    return make_faces(n, size, seed, progress=progress, **{**RECIPE["faces"], **kwargs})


def make_pairs(images: torch.Tensor, generator: torch.Generator | None = None, strength: float = 1.0,
               **warp_kwargs) -> dict:
    """The paper's training pair for a batch ``images`` ``(B, 3, H, W)``:
    ``x1 = g1 o x`` and ``x2 = g2 o (g1 o x)`` (one resampling through ``g1`` then ``g2``).

    Returns ``{"x1", "x2", "g1", "g2"}``: the two image batches and the two
    :class:`~kpedu.fse.TPSWarp` objects; ``g2.points`` maps landmarks of ``x1`` to ``x2``.
    ``images`` are float in [0, 1] or uint8 (scaled by 1/255, :func:`kpedu.checks.image`).
    """
    images = checks.image(images, "images", ndim=4, channels=3, shape_text="(B, 3, H, W)", dtype=_float_dtype(images))
    strength = checks.number(strength, "strength", minimum=0)
    b, _, h, w = images.shape
    opts = {**RECIPE["warp"], **warp_kwargs}
    g1 = random_tps(b, (h, w), strength, generator=generator, device=images.device, **opts)
    g2 = random_tps(b, (h, w), strength, generator=generator, device=images.device, **opts)
    x1 = g1.warp_images(images)
    x2 = g1.then(g2).warp_images(images)
    return {"x1": x1, "x2": x2, "g1": g1, "g2": g2}


def pool_probs(probs: torch.Tensor, pool: int) -> torch.Tensor:
    """Probability maps ``(B, K, H, W)`` summed over ``pool x pool`` blocks: still one
    distribution per landmark, on a grid ``pool`` times coarser (``pool = 1``: unchanged;
    when ``pool`` does not divide the map, the last row and column of blocks are smaller)."""
    probs = checks.maps(probs, "probs", ndim=4, shape_text="(B, K, H, W)")
    pool = checks.integer(pool, "pool", minimum=1)
    if pool == 1:
        return probs
    return torch.nn.functional.avg_pool2d(probs, pool, stride=pool, ceil_mode=True, divisor_override=1)


def fse_loss(model: LandmarkNet, x1: torch.Tensor, x2: torch.Tensor, g2, diversity: str | None = None,
             diversity_weight: float | None = None, alignment_scale: float | None = None,
             diversity_pool: int | None = None) -> tuple[torch.Tensor, dict]:
    """The training objective on one pair batch: ``L_align(Phi(x2), g2(Phi(x1)))`` (eq. 4,
    in pixels^2 divided by ``alignment_scale``) plus ``diversity_weight`` times the diversity
    loss of both images' maps (``diversity=None`` takes :data:`RECIPE`; ``"none"`` or a zero
    weight trains with the alignment loss alone). Returns ``(loss, logs)``."""
    mode, weight, scale, pool = _objective(diversity, diversity_weight, alignment_scale, diversity_pool)
    checks.same_device(x1=x1, x2=x2)
    x1 = checks.image(x1, "x1", ndim=4, channels=3, shape_text="(B, 3, H, W)", dtype=_float_dtype(x1))
    x2 = checks.image(x2, "x2", ndim=4, channels=3, shape_text="(B, 3, H, W)", dtype=_float_dtype(x2))
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    out = model.detect(torch.cat([x1, x2]))
    p1, p2 = out["landmarks"].chunk(2)
    align = alignment_loss(p2, p1, g2.points)
    logs = {"align": float(align.detach())}
    loss = align / scale
    if mode != "none" and weight > 0:
        div = diversity_loss(pool_probs(out["probs"], pool), mode, check=False)
        logs["diversity"] = float(div.detach())
        loss = loss + weight * div
    return loss, logs


def _float_dtype(x) -> torch.dtype:
    """A floating tensor's own dtype; float32 for anything else (uint8 images included)."""
    return x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else torch.float32


_DIVERSITY = ("none",) + DIVERSITY_MODES  # the objectives fse_loss knows


def _objective(diversity, diversity_weight, alignment_scale, diversity_pool) -> tuple[str, float, float, int]:
    """The loss settings of :func:`fse_loss`, :data:`RECIPE`'s where ``None``, checked."""
    mode = RECIPE["diversity"] if diversity is None else checks.choice(diversity, "diversity", _DIVERSITY)
    weight = RECIPE["diversity_weight"] if diversity_weight is None else checks.number(
        diversity_weight, "diversity_weight", minimum=0)
    scale = RECIPE["alignment_scale"] if alignment_scale is None else checks.number(
        alignment_scale, "alignment_scale", minimum=0, min_open=True)
    pool = RECIPE["diversity_pool"] if diversity_pool is None else checks.integer(diversity_pool, "diversity_pool",
                                                                                  minimum=1)
    return mode, weight, scale, pool


def _batches(images: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless random batches of float images in [0, 1] from a store of images (uint8,
    the :class:`kpedu.data.FaceSet` store, or float; :func:`kpedu.checks.image`)."""
    n = images.shape[0]
    while True:
        idx = kdist.rank_slice(torch.randint(n, (batch_size,), generator=generator))  # this rank's share
        yield checks.image(images[idx], "faces.images", ndim=4, channels=3, shape_text="(N, 3, H, W)")


def train_fse(model: LandmarkNet, faces, steps: int, batch_size: int | None = None, lr: float | None = None,
              seed: int = 0, device=None, diversity: str | None = None, diversity_weight: float | None = None,
              progress: bool = True, callback: Callable | None = None, log_every: int | None = None,
              desc: str = "fse", diversity_pool: int | None = None):
    """Train ``model`` in place on random TPS pairs of ``faces`` (a :class:`kpedu.data.FaceSet`;
    its landmarks are ignored): Adam with a one-cycle schedule, :func:`fse_loss`, through
    :func:`kpedu.train.fit` (tqdm, AMP on CUDA). Returns its :class:`~kpedu.train.History`."""
    steps = checks.integer(steps, "steps", minimum=1)
    bs = RECIPE["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    lr = RECIPE["lr"] if lr is None else checks.number(lr, "lr", minimum=0, min_open=True)
    seed = checks.integer(seed, "seed", minimum=0)
    log_every = max(1, steps // 50) if log_every is None else checks.integer(log_every, "log_every", minimum=1)
    _objective(diversity, diversity_weight, None, diversity_pool)
    _face_images(faces, "faces")
    from ..runtime import get_device
    from ..train import fit, one_cycle

    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    warp_gen = torch.Generator().manual_seed(kdist.rank_seed(seed + 1))   # each rank warps differently
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps)

    def loss_fn(m, images):
        pair = make_pairs(images, warp_gen)
        return fse_loss(m, pair["x1"], pair["x2"], pair["g2"], diversity, diversity_weight,
                        diversity_pool=diversity_pool)

    return fit(model, _batches(faces.images, bs, gen), loss_fn, steps=steps, optimizer=opt, scheduler=sched,
               device=device, log_every=log_every, desc=desc,
               progress=progress, callback=callback)


@torch.no_grad()
def detect_landmarks(model: LandmarkNet, images: torch.Tensor, batch_size: int = 128,
                     return_probs: bool = False, tta: int = 0, tta_strength: float | None = None,
                     seed: int = 0):
    """Landmarks ``(N, K, 2)`` (CPU, image pixels) of float or uint8 ``images`` ``(N, 3, H, W)``,
    in batches, in eval mode (and the probability maps of the plain pass with
    ``return_probs``).

    ``tta > 0`` uses the equivariance at test time: each image is also warped by ``tta``
    random TPS warps ``g_i`` (strength ``tta_strength``, default :data:`RECIPE`), the
    landmarks found on ``g_i o x`` are mapped back by ``g_i^{-1}``, and all ``tta + 1``
    estimates are averaged. A perfectly equivariant detector would return the same
    points; a real one averages out part of its jitter. Deterministic given ``seed``."""
    from ..train import evaluating
    from .tps import random_tps

    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    tta = checks.integer(tta, "tta", minimum=0)
    strength = RECIPE["tta_strength"] if tta_strength is None else checks.number(tta_strength, "tta_strength",
                                                                                 minimum=0)
    seed = checks.integer(seed, "seed", minimum=0)
    dev = next(model.parameters()).device
    images = _images_for(images, "images", dev)
    gen = torch.Generator().manual_seed(seed)
    pts, probs = [], []
    with evaluating(model), torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            x = checks.image(images[i:i + batch_size], "images", ndim=4, channels=3, shape_text="(N, 3, H, W)",
                             device=dev)
            out = model.detect(x)
            acc = out["landmarks"]
            for _ in range(tta):
                w = random_tps(x.shape[0], tuple(x.shape[-2:]), strength, generator=gen, device=dev, **RECIPE["warp"])
                acc = acc + w.inverse_points(model.detect(w.warp_images(x))["landmarks"])
            pts.append((acc / (tta + 1)).cpu())
            if return_probs:
                probs.append(out["probs"].cpu())
    pts = torch.cat(pts) if pts else torch.zeros(0, model.num_landmarks, 2)
    return (pts, torch.cat(probs)) if return_probs else pts


def evaluate(model: LandmarkNet, fit_faces, test_faces, points=None, tta: int | None = None) -> dict:
    """The standard protocol (:func:`kpedu.fse.regression_nme`): learned landmarks of
    ``fit_faces`` regressed (linear, no bias) onto their annotated points ``points``
    (default: the five MAFL points), tested on ``test_faces``. The landmarks come from
    :func:`detect_landmarks` with ``tta`` warped copies (default :data:`RECIPE` ``["tta"]``;
    0: a single pass). Returns the dict of :func:`~kpedu.fse.regression_nme`, ``nme`` in %
    of the inter-ocular distance."""
    from ..data import MAFL_INDICES

    n_tta = RECIPE["tta"] if tta is None else checks.integer(tta, "tta", minimum=0)
    num = int(fit_faces.landmarks.shape[1])
    if isinstance(points, (str, bytes)) or (points is not None and not hasattr(points, "__iter__")):
        raise TypeError(f"points must be a sequence of landmark indices, got {checks.describe(points)}")
    idx = list(MAFL_INDICES) if points is None else [checks.index(p, num, f"points[{n}]") for n, p in enumerate(points)]
    if MAFL_INDICES[0] not in idx or MAFL_INDICES[1] not in idx:
        raise ValueError(f"points must include the two eye landmarks {tuple(MAFL_INDICES[:2])} (the NME's "
                         f"normaliser), got {tuple(idx)}")
    a = detect_landmarks(model, fit_faces.images, tta=n_tta)
    b = detect_landmarks(model, test_faces.images, tta=n_tta, seed=1)
    eyes = (idx.index(MAFL_INDICES[0]), idx.index(MAFL_INDICES[1]))
    return regression_nme(a, fit_faces.landmarks[:, idx], b, test_faces.landmarks[:, idx], eyes=eyes)


@torch.no_grad()
def equivariance_error(model: LandmarkNet, faces, n: int = 128, seed: int = 0, strength: float = 1.0) -> float:
    """Mean distance (pixels) between ``Phi(x2)`` and ``g2(Phi(x1))`` on ``n`` fresh pairs:
    the alignment loss's quantity, as an error rather than a squared mean."""
    from ..train import evaluating

    n = checks.integer(n, "n", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    strength = checks.number(strength, "strength", minimum=0)
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    images = _face_images(faces, "faces")
    images = checks.image(_images_for(images[:n], "faces.images", dev), "faces.images", ndim=4, channels=3,
                          shape_text="(N, 3, H, W)", device=dev)
    pair = make_pairs(images, gen, strength)
    with evaluating(model):
        p1 = model.detect(pair["x1"])["landmarks"]
        p2 = model.detect(pair["x2"])["landmarks"]
    return float((p2 - pair["g2"].points(p1)).norm(dim=-1).mean())


def landmark_spread(landmarks: torch.Tensor) -> float:
    """Mean distance (pixels) between two different landmarks of the same image: near 0
    when all ``K`` landmarks collapse onto one point."""
    landmarks = checks.points(landmarks, "landmarks", ndim=3, allow_nan=False, shape_text="(N, K >= 2, 2)",
                              dtype=landmarks.dtype if isinstance(landmarks, torch.Tensor)
                              and landmarks.dtype.is_floating_point else None)
    if landmarks.shape[1] < 2:
        raise ValueError(f"landmarks must be (N, K >= 2, 2), got {tuple(landmarks.shape)}")
    d = torch.cdist(landmarks, landmarks)
    k = landmarks.shape[1]
    return float(d.sum((1, 2)).mean() / (k * (k - 1)))


def run_recipe(model: LandmarkNet, profile=None, device=None, progress: bool = True, steps: int | None = None,
               diversity: str | None = None, diversity_weight: float | None = None, train=None, fit_faces=None,
               test_faces=None, seed: int = 0) -> dict:
    """Train ``model`` in place with the chapter's recipe under a profile and evaluate it.

    Returns metrics: ``nme`` (%, test split, with the recipe's test-time averaging),
    ``nme_single`` (one pass), ``tta``, ``train_nme``, ``per_point`` (% per MAFL point), ``equivariance_px``, ``spread_px`` (:func:`landmark_spread`), ``curve`` (rows
    ``[step, nme]``), ``steps`` and ``train_seconds``.
    """
    steps = None if steps is None else checks.integer(steps, "steps", minimum=1)
    seed = checks.integer(seed, "seed", minimum=0)
    _objective(diversity, diversity_weight, None, None)
    name = resolve_profile(profile).name
    t0 = time.time()
    if train is None:
        train = make_faces_split(RECIPE["train_faces"][name], RECIPE["train_seed"], progress=progress)
    if fit_faces is None or test_faces is None:
        n_fit, n_test = RECIPE["eval_faces"][name]
        both = make_faces_split(n_fit + n_test, RECIPE["eval_seed"])
        fit_faces, test_faces = both.subset(slice(0, n_fit)), both.subset(slice(n_fit, n_fit + n_test))
    steps = RECIPE["steps"][name] if steps is None else steps
    curve: list[list[float]] = []
    every = max(1, steps // RECIPE["curve_points"])
    probe_fit, probe_test = fit_faces.subset(slice(0, min(200, len(fit_faces)))), test_faces.subset(
        slice(0, min(200, len(test_faces))))

    def record(step, history, m):
        if step % every == 0 or step == steps:
            r = evaluate(m, probe_fit, probe_test)
            curve.append([int(step), round(r["nme"], 3)])
            if progress:
                from tqdm.auto import tqdm

                tqdm.write(f"step {step}: loss {history.loss[-1]:.3f}, validation NME {r['nme']:.2f}%")
        return False

    hist = train_fse(model, train, steps, seed=seed, device=device, diversity=diversity,
                     diversity_weight=diversity_weight,
                     progress=progress, callback=record, log_every=math.gcd(max(1, steps // 50), every))
    r = evaluate(model, fit_faces, test_faces)
    single = evaluate(model, fit_faces, test_faces, tta=0)
    pts = detect_landmarks(model, test_faces.images)
    return {
        "nme": round(r["nme"], 3),
        "nme_single": round(single["nme"], 3),
        "tta": RECIPE["tta"],
        "train_nme": round(r["train_nme"], 3),
        "per_point": [round(float(v), 3) for v in r["per_point"]],
        "equivariance_px": round(equivariance_error(model, test_faces), 3),
        "spread_px": round(landmark_spread(pts), 3),
        "curve": curve,
        "loss": round(float(hist.loss[-1]), 4),
        "steps": steps,
        "eval_faces": [len(fit_faces), len(test_faces)],
        "train_seconds": round(time.time() - t0, 1),
    }


def run_ablation(variant: str, profile=None, device=None, progress: bool = True, train=None, fit_faces=None,
                 test_faces=None, seed: int = 0):
    """Train one diversity ablation (:data:`ABLATIONS`: ``"align"``, ``"pairwise"``,
    ``"max"``) from ``seed`` at the shared budget :data:`ABLATION_STEPS`; returns
    ``(model, metrics)`` with the metrics of :func:`run_recipe` plus ``seconds_per_step``."""
    checks.choice(variant, "variant", sorted(ABLATIONS))
    seed = checks.integer(seed, "seed", minimum=0)
    from ..runtime import seed_everything

    name = resolve_profile(profile).name
    seed_everything(seed)
    model = make_model()
    t0 = time.time()
    metrics = run_recipe(model, name, device, progress, steps=ABLATION_STEPS[name],
                         diversity=ABLATIONS[variant]["diversity"], train=train, fit_faces=fit_faces,
                         test_faces=test_faces, seed=seed)
    metrics["variant"] = variant
    metrics["seconds_per_step"] = round((time.time() - t0) / ABLATION_STEPS[name], 4)
    return model.cpu(), metrics


def diversity_timing(ks=(10, 30, 50), batch: int = 32, size: int = 32, repeats: int = 10, device=None) -> dict:
    """Milliseconds for one forward and backward pass of each diversity form on random
    probability maps ``(batch, K, size, size)`` (default: the book's 32x32 maps), for
    each ``K`` in ``ks``. Returns ``{"K": [...], "pairwise": [...], "max": [...]}``."""
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
        raise TypeError(f"ks must be a sequence of landmark counts such as (10, 30), got {checks.describe(ks)}")
    ks = [checks.integer(k, f"ks[{n}]", minimum=1) for n, k in enumerate(ks)]
    if not ks:
        raise ValueError("ks must hold at least one landmark count")
    batch = checks.integer(batch, "batch", minimum=1)
    size = checks.integer(size, "size", minimum=1)
    repeats = checks.integer(repeats, "repeats", minimum=1)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    out: dict[str, list] = {"K": list(ks), "pairwise": [], "max": []}
    gen = torch.Generator().manual_seed(0)
    for k in ks:
        logits = torch.randn(batch, int(k), size * size, generator=gen).to(dev).requires_grad_()
        for mode in ("pairwise", "max"):
            def step(mode=mode):
                p = torch.softmax(logits, -1).view(batch, int(k), size, size)
                diversity_loss(p, mode, check=False).backward()
            out[mode].append(round(1000 * time_call(step, repeats, device=dev), 3))
    return out


def step_timing(model: LandmarkNet, batch_size: int | None = None, steps: int = 5, device=None,
                image_size: int | None = None) -> dict:
    """Training throughput of the full FSE step (make the TPS pair, both forward passes,
    both losses, backward, Adam) on random images: ``{"steps_per_second",
    "pairs_per_second", "batch_size"}``. A copy of ``model`` is trained, so ``model``
    itself is left unchanged."""
    import copy

    bs = RECIPE["batch_size"] if batch_size is None else checks.integer(batch_size, "batch_size", minimum=1)
    steps = checks.integer(steps, "steps", minimum=1)
    size = RECIPE["image_size"] if image_size is None else checks.integer(image_size, "image_size", minimum=1)
    if size % model.multiple:
        raise ValueError(f"image_size must be divisible by the network's {model.multiple}, got {size}")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = copy.deepcopy(model)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(bs, 3, size, size, generator=gen).to(dev)

    def step():
        pair = make_pairs(images, gen)
        loss, _ = fse_loss(model, pair["x1"], pair["x2"], pair["g2"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = time_call(step, steps, device=dev)
    return {"steps_per_second": round(1 / sec, 3), "pairs_per_second": round(bs / sec, 1), "batch_size": bs}


def _face_images(faces, name: str) -> torch.Tensor:
    """``faces.images`` of a :class:`kpedu.data.FaceSet` (or anything with ``images``)."""
    images = getattr(faces, "images", None)
    if images is None:
        raise TypeError(f"{name} must be a FaceSet (with .images), got {checks.describe(faces)}")
    return images


def _images_for(images, name: str, device: torch.device):
    """``images`` to be checked and moved to ``device`` batch by batch: a tensor that holds
    no data (the meta device) cannot be moved; anything else is checked whole."""
    if isinstance(images, torch.Tensor):
        if images.device.type == "meta" and torch.device(device).type != "meta":
            raise ValueError(f"{name} is on the meta device (it holds no data) and the model on {device}; "
                             "move it with .to(device)")
        return images
    return checks.image(images, name, ndim=4, channels=3, shape_text="(N, 3, H, W)")


@hub.recipe("fse-book", description="Factorized spatial embeddings, K = 10 landmarks, 64x64 procedural faces",
            storage_dtype=torch.float16)
def _book(profile, device):
    # kpedu.hub.train has seeded torch with its --seed (default 0): the initial weights,
    # the batches and the warps all follow it
    seed = torch.initial_seed()
    model = make_model()
    metrics = run_recipe(model, profile, device, seed=seed)
    return model.cpu(), metrics


def _ablation_recipe(variant: str):
    def run(profile, device):
        return run_ablation(variant, profile, device, seed=torch.initial_seed())

    return run


for _v in ("align", "pairwise"):
    hub.recipe(f"fse-ablation-{_v}", description=f"FSE ablation: {ABLATIONS[_v]['label']}",
               storage_dtype=torch.float16)(_ablation_recipe(_v))


# ----------------------------------------------------------------------------- paper scale (CelebA / MAFL)

#: ``fse-celeba-k30`` / ``fse-celeba-k50`` (Thewlis et al., "Unsupervised learning of object
#: landmarks by factorized spatial embeddings", ICCV 2017): unsupervised training on the
#: MAFL training faces of CelebA, K = 30 or 50 landmarks, 64x64 faces (the data set's
#: default crop, :data:`kpedu.datasets.THEWLIS_WINDOW`), then the chapter's protocol (linear
#: regression from the learned landmarks to the five MAFL points, fitted on MAFL train,
#: NME on MAFL test, % of the inter-ocular distance). The network, loss, warps, optimiser
#: and batch are the chapter's (:data:`RECIPE`); the number of steps is our choice.
PAPER = {
    "image_size": 64,
    "steps": 30_000,
    "gpu_cost": "0.78 GFLOP per 64x64 face (K = 30) x 16 x 30,000 steps = 3.7e14 FLOP: seconds of compute; the TPS warps and the data dominate (minutes) (estimate: kpedu.bench.count_flops forward+backward, at an assumed sustained 50 TFLOP/s under mixed precision, compute only)",
    "aims_at": {30: "MAFL NME 7.15% (Thewlis et al. 2017, as quoted in book/ch03-fse/03-training-and-results; not re-checked)",
                50: "MAFL NME 6.67% (Thewlis et al. 2017, as quoted in book/ch03-fse/03-training-and-results; not re-checked)"},
}


def run_paper(data, num_landmarks: int, steps: int | None = None, size: int | None = None, device=None,
              progress: bool = True, seed: int = 0, model_overrides: dict | None = None,
              max_faces: int | None = None):
    """Train FSE with ``num_landmarks`` on CelebA's MAFL training faces and evaluate MAFL NME;
    returns ``(model, metrics)`` with ``nme`` (MAFL test, %, the chapter's test-time
    averaging), ``nme_single``, ``train_nme``, ``loss``, ``steps``, ``train_faces``,
    ``test_faces`` and ``skipped_images``. The faces are held in memory as uint8 (the
    19,000 MAFL training faces at 64x64: 230 MB); ``max_faces`` caps them for tests."""
    from ..datasets import CelebAFaces

    num_landmarks = checks.integer(num_landmarks, "num_landmarks", minimum=2)
    size = PAPER["image_size"] if size is None else checks.integer(size, "size", minimum=16)
    steps = PAPER["steps"] if steps is None else checks.integer(steps, "steps", minimum=1)
    train_set = CelebAFaces(data, "mafl_train", image_size=size)
    test_set = CelebAFaces(data, "mafl_test", image_size=size)
    train = train_set.materialise(max_faces)
    test = test_set.materialise(max_faces)
    model = make_model(num_landmarks=num_landmarks, **(model_overrides or {}))
    hist = train_fse(model, train, steps, seed=seed, device=device, progress=progress,
                     desc=f"fse-celeba-k{num_landmarks}")
    r = evaluate(model, train, test)
    single = evaluate(model, train, test, tta=0)
    return model.cpu(), {"nme": round(r["nme"], 3), "nme_single": round(single["nme"], 3),
                         "train_nme": round(r["train_nme"], 3), "loss": round(float(hist.loss[-1]), 4),
                         "steps": steps, "num_landmarks": num_landmarks, "train_faces": len(train),
                         "test_faces": len(test), "skipped_images": train_set.report() + test_set.report()}


def _paper_recipe(k: int):
    def run(profile, device, *, data, eval_data=None, steps=None, weights=None, size=None, width=None):
        if weights is not None or eval_data is not None:
            raise hub.RecipeInputError(f"fse-celeba-k{k} takes no --weights or --eval-data (MAFL test is in --data)")
        return run_paper(data, k, steps=steps, size=size, device=device,
                         model_overrides=None if width is None else {"width": width})

    return run


for _k in (30, 50):
    hub.recipe(f"fse-celeba-k{_k}",
               data="CelebA with MAFL: img_align_celeba/ + list_landmarks_align_celeba.txt + MAFL/{training,testing}.txt",
               description=f"FSE, K = {_k}, 64x64 CelebA (MAFL train, unsupervised), MAFL NME by linear regression; "
                           f"aims at {PAPER['aims_at'][_k]}; estimated GPU cost: seconds of compute; the TPS warps and the data dominate (minutes) (an estimate: PAPER['gpu_cost'])")(_paper_recipe(_k))
