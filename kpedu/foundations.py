"""The Foundations chapter's experiment: regress coordinates or predict heatmaps?

``book/ch00-foundations/02-coordinates-vs-heatmaps`` trains two networks that share one
convolutional encoder and differ only in the head:

* ``head="coords"`` flattens the encoder's final feature map and regresses the ``2K``
  numbers directly with fully connected layers (the DeepPose recipe);
* ``head="heatmap"`` upsamples back to stride 2 (a small U-Net style decoder) and
  predicts one Gaussian heatmap per keypoint, decoded with
  :func:`kpedu.codecs.decode_argmax` (argmax plus the quarter-pixel shift).

Both are trained on the same synthetic single-person crops with the same budget
(:func:`make_people`, :class:`PeopleTensors`: :mod:`kpedu.data.crops`, re-exported here); the
checkpoints ``foundations-coords`` and ``foundations-heatmap`` in :mod:`kpedu.hub` are
produced by the recipes at the bottom of this module
(``python -m kpedu.hub train foundations-heatmap``).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checks, hub
from .codecs import GaussianHeatmapCodec
from .data.crops import PeopleTensors, make_people  # shared data (also the Hourglass chapter's); re-exported
from .metrics import pck

__all__ = [
    "PoseNet",
    "PeopleTensors",
    "make_people",
    "flip_batch",
    "heatmap_loss",
    "coords_loss",
    "predict",
    "evaluate",
    "train_posenet",
    "run_recipe",
    "RECIPE",
]

# One place for the experiment's settings; profiles change sizes, never algorithms.
RECIPE = {
    "image_size": 64,
    "heatmap_stride": 2,
    "sigma": 1.5,
    "width": 16,
    "batch_size": 32,
    "lr": 2e-3,
    "train_people": {"ci": 256, "book": 1500, "full": 8000},
    "steps": {"ci": 30, "book": 400, "full": 4000},
    "val_people": {"ci": 100, "book": 500, "full": 1000},
    "train_seed": 1,
    "val_seed": 10_001,
}


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PoseNet(nn.Module):
    """Encoder with a coordinate head or a heatmap head (Foundations chapter).

    Args:
        num_keypoints: K (17 for COCO-17).
        head: ``"heatmap"`` or ``"coords"``.
        width: channels of the first stage (stages use 1x, 2x, 4x, 4x).
        input_size: square input side, a multiple of 8.

    ``forward(images)`` takes ``(B, 3, S, S)`` float in [0, 1] (or ``uint8``, divided by
    255) on the model's device and returns heatmaps ``(B, K, S/2, S/2)`` or coordinates
    ``(B, K, 2)`` in image pixels.
    """

    def __init__(self, num_keypoints: int = 17, head: str = "heatmap", width: int = 16, input_size: int = 64):
        super().__init__()
        num_keypoints = checks.integer(num_keypoints, "num_keypoints", minimum=1)
        checks.choice(head, "head", ("heatmap", "coords"))
        width = checks.integer(width, "width", minimum=1)
        input_size = checks.integer(input_size, "input_size", minimum=1)
        if input_size % 8:
            raise ValueError(f"input_size must be a positive multiple of 8, got {input_size}")
        self.head_type, self.num_keypoints, self.input_size = head, num_keypoints, input_size
        w = width
        self.stem = nn.Sequential(_conv(3, w), _conv(w, w))            # S
        self.down1 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))      # S/2
        self.down2 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # S/4
        self.down3 = nn.Sequential(_conv(4 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # S/8
        if head == "heatmap":
            self.up2 = _conv(8 * w, 4 * w)   # S/4: upsampled S/8 + skip
            self.up1 = _conv(6 * w, 2 * w)   # S/2: upsampled S/4 + skip
            self.out = nn.Conv2d(2 * w, num_keypoints, 1)
        else:
            cells = (input_size // 8) ** 2
            self.fc = nn.Sequential(
                nn.Flatten(), nn.Linear(4 * w * cells, 256), nn.ReLU(inplace=True),
                nn.Linear(256, 2 * num_keypoints),
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = next(self.parameters())
        if isinstance(images, torch.Tensor):
            checks.same_device(images=images, model=p)
        images = checks.image(images, "images", ndim=4, channels=3, dtype=p.dtype)
        s = self.input_size
        if images.shape[-2:] != (s, s):
            raise ValueError(f"images must have shape (B, 3, {s}, {s}) (expected images of this model's input_size), "
                             f"got shape {tuple(images.shape)}")
        x0 = self.stem(images)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        if self.head_type == "heatmap":
            y = self.up2(torch.cat([F.interpolate(x3, scale_factor=2.0, mode="nearest"), x2], 1))
            y = self.up1(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), x1], 1))
            return self.out(y)
        # coordinates normalised to [-1, 1] by the head, returned in pixels
        c = self.fc(x3).view(-1, self.num_keypoints, 2)
        return (c + 1) * (self.input_size / 2) - 0.5


def _float_dtype(x) -> torch.dtype:
    """x's dtype if it is a float tensor, else float32 (what a conversion should produce)."""
    return x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else torch.float32


def _model(model, name: str = "model") -> "PoseNet":
    if not isinstance(model, PoseNet):
        raise TypeError(f"{name} must be a PoseNet, got {checks.describe(model)}")
    return model


def _people(people, name: str) -> "PeopleTensors":
    if not isinstance(people, PeopleTensors):
        raise TypeError(f"{name} must be PeopleTensors (from make_people), got {checks.describe(people)}")
    return people


def flip_batch(batch: dict, skeleton=None) -> dict:
    """Mirror images left-right and relabel keypoints with the skeleton's flip pairs.

    An exact pixel flip (``torch.flip``, no resampling), the only augmentation this
    chapter's recipe uses; :func:`kpedu.augment.augment_batch` covers rotation, scaling
    and translation as well.

    ``batch`` is a dict with ``image`` ``(B, C, H, W)`` (float in [0, 1] or ``uint8``,
    which becomes float), ``keypoints`` ``(B, K, 2)`` (NaN allowed where not labelled) and
    ``visible`` ``(B, K)``, which keeps its dtype.
    """
    if not isinstance(batch, dict):
        raise TypeError(f"batch must be a dict with 'image', 'keypoints' and 'visible', got {checks.describe(batch)}")
    missing = [k for k in ("image", "keypoints", "visible") if k not in batch]
    if missing:
        raise ValueError(f"batch must have 'image', 'keypoints' and 'visible', missing {', '.join(map(repr, missing))}")
    if skeleton is None:
        from .data import COCO17 as skeleton
    img = checks.image(batch["image"], "batch['image']", ndim=4, channels=None, dtype=_float_dtype(batch["image"]))
    kp = checks.points(batch["keypoints"], "batch['keypoints']", ndim=3, dtype=_float_dtype(batch["keypoints"]))
    vis = batch["visible"]
    checks.visibility(vis, "batch['visible']", kp.shape[:2])
    vis = torch.as_tensor(vis)
    if kp.shape[0] != img.shape[0]:
        raise ValueError(f"batch['keypoints'] must have one row per image ({img.shape[0]}), "
                         f"got shape {tuple(kp.shape)}")
    perm = torch.as_tensor(np.asarray(skeleton.flip_permutation), dtype=torch.long)
    if perm.shape != (kp.shape[1],):
        raise ValueError(f"skeleton has {len(perm)} keypoints but batch['keypoints'] has {kp.shape[1]}")
    img = img.flip(-1)
    w = img.shape[-1]
    kp = kp[:, perm.to(kp.device)].clone()
    kp[..., 0] = (w - 1) - kp[..., 0]
    return {**batch, "image": img, "keypoints": kp, "visible": vis[:, perm.to(vis.device)]}


def heatmap_loss(pred: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor,
                 codec: GaussianHeatmapCodec) -> torch.Tensor:
    """Mean squared error to Gaussian targets, keypoints that are not labelled masked.

    ``pred`` ``(B, K, h, w)`` at the codec's heatmap size; ``keypoints`` ``(B, K, 2)`` image
    pixels (NaN allowed where not labelled) and ``visible`` ``(B, K)`` may be on any device
    (the targets are drawn on the CPU and moved to ``pred``'s device)."""
    if not isinstance(codec, GaussianHeatmapCodec):
        raise TypeError(f"codec must be a GaussianHeatmapCodec, got {checks.describe(codec)}")
    pred = checks.maps(pred, "pred", ndim=4, shape_text="(B, K, h, w)")
    kp = checks.points(keypoints, "keypoints", ndim=3, device="cpu")
    expected = (kp.shape[0], kp.shape[1], *codec.heatmap_size)
    if tuple(pred.shape) != expected:
        raise ValueError(f"pred must have shape (B, K, h, w) = {expected} (keypoints and the codec's heatmap size), "
                         f"got shape {tuple(pred.shape)}")
    vis = visible.detach().cpu() if isinstance(visible, torch.Tensor) else visible
    target, weight = codec.encode(kp.detach(), vis)
    target, weight = target.to(pred.device), weight.to(pred.device)
    per_map = ((pred.float() - target) ** 2).mean(dim=(-2, -1))
    return (per_map * weight).sum() / weight.sum().clamp(min=1) * 1000.0


def coords_loss(pred: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor, image_size: int) -> torch.Tensor:
    """Mean squared error of normalised coordinates, keypoints that are not labelled masked.

    ``pred`` and ``keypoints`` ``(B, K, 2)`` on one device (``keypoints`` may hold NaN where
    not labelled), ``visible`` ``(B, K)``, ``image_size`` the side in pixels."""
    if isinstance(pred, torch.Tensor) and isinstance(keypoints, torch.Tensor):
        checks.same_device(pred=pred, keypoints=keypoints)
    pred = checks.points(pred, "pred", ndim=3, allow_nan=False, dtype=torch.float32)
    keypoints = checks.points(keypoints, "keypoints", ndim=3, device=pred.device)
    if keypoints.shape != pred.shape:
        raise ValueError(f"pred must have the shape of keypoints {tuple(keypoints.shape)}, "
                         f"got shape {tuple(pred.shape)}")
    vis = checks.visibility(visible, "visible", keypoints.shape[:2], device=pred.device)
    image_size = checks.integer(image_size, "image_size", minimum=1)
    if bool(torch.isnan(keypoints[vis]).any()):
        raise ValueError("keypoints must not contain NaN at a keypoint marked visible")
    weight = vis.float()
    d2 = (((pred - keypoints) / image_size) ** 2).sum(-1)
    d2 = torch.where(vis, d2, torch.zeros_like(d2))  # a NaN keypoint that is not labelled adds nothing
    return (d2 * weight).sum() / weight.sum().clamp(min=1)


@torch.no_grad()
def predict(model: PoseNet, images: torch.Tensor, batch_size: int = 128, return_scores: bool = False):
    """Keypoints ``(N, K, 2)`` in image pixels for images ``(N, 3, S, S)`` (float or uint8).

    With ``return_scores`` also returns ``(N, K)`` confidences: the heatmap peak values
    (the coordinate head has none and returns ones)."""
    _model(model)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if isinstance(images, torch.Tensor) and images.device.type == "meta":
        raise ValueError("images is on the meta device and holds no data; pass real images (moved to the model's "
                         "device batch by batch)")
    checks.image(images, "images", ndim=4, channels=3)  # float in [0, 1] or uint8, finite
    images = torch.as_tensor(images)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    s = model.input_size
    codec = GaussianHeatmapCodec(s, s // RECIPE["heatmap_stride"], RECIPE["sigma"])
    out, scores = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        y = model(x).float()
        if model.head_type == "heatmap":
            kp, sc = codec.decode(y)
        else:
            kp, sc = y, torch.ones(y.shape[:-1], device=y.device)
        out.append(kp.cpu())
        scores.append(sc.cpu())
    model.train(was_training)
    return (torch.cat(out), torch.cat(scores)) if return_scores else torch.cat(out)


def evaluate(model: PoseNet, people: PeopleTensors) -> dict[str, float]:
    """PCK@0.1 and PCK@0.2 (torso) and PCKh@0.5 on ``people``."""
    _model(model)
    _people(people, "people")
    pred = predict(model, people.images)
    gt, vis = people.keypoints, people.visible
    return {
        "pck@0.1": pck(pred, gt, vis, "torso", 0.1).mean,
        "pck@0.2": pck(pred, gt, vis, "torso", 0.2).mean,
        "pckh@0.5": pck(pred, gt, vis, people.head_sizes, 0.5).mean,
    }


def train_posenet(model: PoseNet, train: PeopleTensors, steps: int, batch_size: int = 32, lr: float = 2e-3,
                  seed: int = 0, device=None, progress: bool = True, callback=None):
    """Train ``model`` in place with Adam, a one-cycle learning-rate schedule and random
    horizontal flips (the flip relabels left and right with the skeleton's flip pairs).

    Uses :func:`kpedu.train.fit` (``callback`` is passed on); returns its
    :class:`~kpedu.train.History`.
    """
    _model(model)
    _people(train, "train")
    steps = checks.integer(steps, "steps", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    lr = checks.number(lr, "lr", minimum=0.0, min_open=True)
    seed = checks.integer(seed, "seed", minimum=0)
    from .runtime import get_device
    from .train import fit, one_cycle

    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    s = model.input_size
    codec = GaussianHeatmapCodec(s, s // RECIPE["heatmap_stride"], RECIPE["sigma"])
    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            idx = torch.randint(len(train), (batch_size,), generator=gen)
            b = train.batch(idx)
            if torch.rand((), generator=gen) < 0.5:
                b = flip_batch(b)
            yield b

    def loss_fn(m, b):
        pred = m(b["image"])
        if m.head_type == "heatmap":
            return heatmap_loss(pred, b["keypoints"], b["visible"], codec)
        return coords_loss(pred, b["keypoints"], b["visible"], s)

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps)
    return fit(model, batches(), loss_fn, steps=steps, optimizer=opt, scheduler=sched, device=device,
               log_every=max(1, steps // 50), desc=f"{model.head_type} model", progress=progress,
               callback=callback)


def run_recipe(model: PoseNet, profile=None, device=None, progress: bool = True, curve_points: int = 10) -> dict:
    """Train ``model`` in place with the chapter's recipe (:data:`RECIPE`) under a profile.

    This is the one training procedure behind both the committed checkpoints
    (``python -m kpedu.hub train foundations-heatmap``, the ``full`` profile) and the
    notebook's fallback when a checkpoint is missing (the active profile). Returns the
    validation metrics and ``curve``: rows ``[step, pck@0.1, pck@0.2]`` measured on 200
    validation people at ``curve_points`` moments during training.
    """
    from .runtime import resolve_profile

    _model(model)
    prof = resolve_profile(profile)
    curve_points = checks.integer(curve_points, "curve_points", minimum=1)
    name = prof.name
    t0 = time.time()
    train = make_people(RECIPE["train_people"][name], RECIPE["train_seed"], RECIPE["image_size"], progress=progress)
    val = make_people(RECIPE["val_people"][name], RECIPE["val_seed"], RECIPE["image_size"])
    probe = PeopleTensors(*(t[:200] for t in (val.images, val.keypoints, val.visible, val.head_sizes, val.areas)))
    steps = RECIPE["steps"][name]
    every = max(1, steps // max(1, curve_points))
    curve: list[list[float]] = []

    def record(step, history, m):
        if step % every == 0 or step == steps:
            r = evaluate(m, probe)
            curve.append([int(step), round(r["pck@0.1"], 4), round(r["pck@0.2"], 4)])
        return False

    train_posenet(model, train, steps, RECIPE["batch_size"], RECIPE["lr"], seed=0, device=device,
                  progress=progress, callback=record)
    metrics = evaluate(model, val)
    metrics["train_seconds"] = round(time.time() - t0, 1)
    metrics["curve"] = curve
    return metrics


def _recipe(head: str):
    def run(profile, device):
        from .runtime import seed_everything

        seed_everything(0)
        model = PoseNet(17, head, RECIPE["width"], RECIPE["image_size"])
        metrics = run_recipe(model, profile, device)
        return model.cpu(), metrics

    return run


hub.recipe("foundations-heatmap", description="PoseNet with a heatmap head, 64x64 synthetic people (Foundations)")(
    _recipe("heatmap"))
hub.recipe("foundations-coords", description="PoseNet with a coordinate head, 64x64 synthetic people (Foundations)")(
    _recipe("coords"))
