"""OpenPose inference: the network's maps, test-time augmentation, upsampling, parsing.

OpenPose chapter (``book/ch02-openpose``). :func:`detect` turns images into people:
:func:`predict` runs the network (with the flip test and the scale search below), the
maps are upsampled (:func:`upsample_maps`) and :func:`parse_maps` hands them to the
parser (:func:`kpedu.openpose.parse`, peaks, line integrals and assembly). The defaults
are :data:`INFERENCE`, the inference part of the chapter's recipe
(:data:`kpedu.openpose.experiment.RECIPE` holds the same values).

**Resolution of the maps.** The network predicts at stride 8. :func:`detect` follows
the released code by default: the maps are upsampled (bicubic, ``upsample=8``,
:func:`upsample_maps`) to the input resolution before peaks are found and limbs are
scored, and :func:`~kpedu.openpose.parse` then maps coordinates with stride
``8 / upsample`` (here 1). Interpolating the smooth maps places peaks far more finely
than the stride-8 grid (the quarter-pixel refinement of :func:`~kpedu.openpose.find_peaks`
alone leaves errors of up to 2 image pixels, a lot for the OKS of small people's eyes).
``upsample=1`` parses the stride-8 maps directly with ``stride=8``, about ten times
cheaper to parse.

**Test-time augmentation.** :func:`detect` averages the maps of several passes before
parsing (:func:`predict`): the released code's scale search (its demos average the maps
of several input scales), here at 1, 1.25 and 1.5 times the input size, and a flip test
(the mirrored image's maps, left and right swapped back, :func:`unflip_maps`), which the
paper does not use. How the scales were chosen is in :mod:`kpedu.openpose.experiment`.

Images are ``(N, 3, H, W)``, ``uint8`` or float in ``[0, 1]``, ``H`` and ``W`` multiples
of 8; people come back as :class:`~kpedu.openpose.Person` lists, keypoints in image
pixels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from .model import OpenPoseNet
from .parse import Person, _check_options, parse_batch
from .targets import STRIDE, _limbs, flip_permutation

__all__ = [
    "INFERENCE",
    "predict",
    "unflip_maps",
    "upsample_maps",
    "parse_maps",
    "detect",
]

#: The chapter's inference settings (:data:`kpedu.openpose.experiment.RECIPE` holds the same values).
INFERENCE = {
    # bicubic upsampling of the stride-8 maps before parsing (released code)
    "upsample": 8,
    # test-time augmentation (predict): average the maps of the image and of its mirror image,
    # at each of these scales (the released code's scale search)
    "flip": True,
    "test_scales": (1.0, 1.25, 1.5),
    # parse options (kpedu.openpose.parse); the redundant limbs join fragments
    "parse": {"threshold": 0.1, "min_parts": 3, "min_score": 0.2, "use_redundant": True},
}


def _check_images(images, model: torch.nn.Module | None = None) -> torch.Tensor:
    """``images`` ``(N, 3, H, W)`` checked by :func:`kpedu.checks.image`, ``H`` and ``W``
    multiples of 8. ``uint8`` is returned as it is (shape and dtype checked) and scaled
    batch by batch (:func:`_as_float`): a data set held as ``uint8`` takes four times less
    memory than as float. Images are moved to the model's device by the callers, so a
    tensor on another device is fine, except on the meta device (it holds no data)."""
    param = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor) and images.device.type == "meta" and param is not None:
        checks.same_device(images=images, model=param)
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        checks.image(torch.empty_like(images, device="meta"), "images", ndim=4, channels=3)
    else:
        images = checks.image(images, "images", ndim=4, channels=3)
    if images.shape[-1] % STRIDE or images.shape[-2] % STRIDE:
        raise ValueError(f"images height and width must be multiples of {STRIDE}, got {tuple(images.shape[-2:])}")
    return images


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """One batch of :func:`_check_images`: ``uint8`` scaled to ``[0, 1]``, float as it is."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _check_upsample(upsample, recipe_default: bool = False, name: str = "upsample") -> int:
    """A positive int factor (1: no upsampling); ``None`` is :data:`INFERENCE` ``["upsample"]``
    where ``recipe_default`` allows it."""
    if upsample is None and recipe_default:
        return int(INFERENCE["upsample"])
    return checks.integer(upsample, name, minimum=1)


def _pad_extrapolate(maps: torch.Tensor, pad: int, log: bool = False) -> torch.Tensor:
    """Pad the last two dimensions by ``pad`` samples on every side with the parabola
    through the three outermost samples (Newton's backward differences), so that a
    falling map keeps falling. With ``log`` (non-negative maps such as confidence maps)
    the parabola is fitted to the logarithm, which continues a Gaussian exactly, and the
    padding is capped by the edge sample: a peak just inside the border then stays where
    it is (a parabola through the samples themselves overshoots beyond it and pulls the
    interpolated peak outward by up to half a cell). Sizes below 3 repeat the edge sample."""
    for dim in (-1, -2):
        n = maps.shape[dim]
        if n < 3:
            maps = torch.cat([maps.narrow(dim, 0, 1)] * pad + [maps] + [maps.narrow(dim, n - 1, 1)] * pad, dim)
            continue
        shape = [1] * maps.ndim
        shape[dim] = pad
        p = torch.arange(1, pad + 1, dtype=maps.dtype, device=maps.device).reshape(shape)

        def extend(f0, f1, f2):  # f0 the edge sample, f1 and f2 further inside
            d1, d2 = f0 - f1, f0 - 2 * f1 + f2
            return f0 + p * d1 + p * (p + 1) / 2 * d2

        def side(i0, i1, i2):
            f0, f1, f2 = (maps.narrow(dim, i, 1) for i in (i0, i1, i2))
            if not log:
                return extend(f0, f1, f2)
            g = [torch.log(f.clamp(min=1e-4)) for f in (f0, f1, f2)]
            return torch.minimum(torch.exp(extend(*g)), f0.clamp(min=0.0))

        left = side(0, 1, 2).flip(dim)
        right = side(n - 1, n - 2, n - 3)
        maps = torch.cat([left, maps, right], dim)
    return maps


def upsample_maps(maps: torch.Tensor, factor: int, mode: str = "bicubic", positive: bool = False) -> torch.Tensor:
    """Upsample ``(B, C, H, W)`` maps by an integer ``factor``.

    ``align_corners=False``, so the result follows the pixel-centre convention at stride
    ``s / factor``: pixel ``u`` of the result lies at ``(u + 0.5) / factor - 0.5`` of the
    input. Near the border the maps are first continued by the parabola through their
    three outermost samples (two samples, cropped away afterwards): ``torch``'s
    interpolation repeats the edge sample instead, and the bicubic kernel's negative
    lobes then make a falling map rise again in the last half cell, a spurious peak on
    the image border for every keypoint near it. ``positive=True`` (confidence maps)
    continues the logarithm instead, capped by the edge sample, which keeps a peak near
    the border in place (:func:`_pad_extrapolate`). ``"bilinear"``
    is available for comparison; its maxima can only lie on the stride-``s`` samples, so
    it does not improve peak positions (bicubic does).
    """
    factor = _check_upsample(factor, name="factor (the upsample factor)")
    checks.choice(mode, "mode", ("bicubic", "bilinear"))
    maps = checks.maps(maps, "maps", ndim=4, shape_text="(B, C, H, W)")
    if factor == 1:
        return maps
    h, w = maps.shape[-2:]
    pad = 2
    up = F.interpolate(_pad_extrapolate(maps, pad, log=positive), scale_factor=factor, mode=mode, align_corners=False)
    return up[..., pad * factor:pad * factor + h * factor, pad * factor:pad * factor + w * factor]


def _limb_flip() -> tuple[list[int], torch.Tensor]:
    """For COCO-17's limbs under a horizontal flip: the index of the limb each one becomes
    (left and right swapped) and ``+1`` or ``-1`` where that limb runs the other way
    (``(11, 12)`` becomes ``(12, 11)``, which the skeleton lists as ``(11, 12)``)."""
    perm = flip_permutation()
    limbs = _limbs()
    index, sign = [], []
    for a, b in limbs:
        t = (perm[a], perm[b])
        if t in limbs:
            index.append(limbs.index(t))
            sign.append(1.0)
        else:
            index.append(limbs.index(t[::-1]))
            sign.append(-1.0)
    return index, torch.tensor(sign)


def unflip_maps(heatmaps: torch.Tensor, pafs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The maps of a horizontally mirrored image, ``(B, K, H, W)`` and ``(B, 2C, H, W)``,
    turned into maps of the image itself: mirrored back, left and right keypoint
    channels swapped, each limb's field moved to the limb it mirrors (reversed where the
    pair changes order) and its x component negated. The stride-8 grid is symmetric
    (cell ``j`` of ``W`` is centred at ``8 j + 3.5``, its mirror at ``8 (W - 1 - j) + 3.5``),
    so mirroring the maps is exact."""
    heatmaps = checks.maps(heatmaps, "heatmaps", ndim=4, shape_text="(B, C, H, W)")
    pafs = checks.maps(pafs, "pafs", ndim=4, shape_text="(B, C, H, W)")
    index, sign = _limb_flip()
    if heatmaps.shape[1] != len(flip_permutation()) or pafs.shape[1] != 2 * len(index):
        raise ValueError(f"expected {len(flip_permutation())} confidence maps and {2 * len(index)} PAF channels, "
                         f"got {heatmaps.shape[1]} and {pafs.shape[1]}")
    return _unflip_cms(heatmaps), _unflip_pafs(pafs)


def _unflip_cms(cms: torch.Tensor) -> torch.Tensor:
    return cms.flip(-1)[:, flip_permutation()]


def _unflip_pafs(pafs: torch.Tensor) -> torch.Tensor:
    index, sign = _limb_flip()
    b, _, h, w = pafs.shape
    pf = pafs.flip(-1).reshape(b, len(index), 2, h, w)[:, index]
    factor = sign.to(pf)[:, None] * torch.tensor([-1.0, 1.0]).to(pf)  # (C, 2)
    return (pf * factor[None, :, :, None, None]).reshape(b, -1, h, w)


def _check_scales(scales) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers > 0 (one number is one scale)."""
    if isinstance(scales, (int, float, np.number)) and not isinstance(scales, (bool, np.bool_)):
        scales = (scales,)
    if isinstance(scales, (str, bytes)) or not hasattr(scales, "__iter__"):
        raise ValueError(f"scales must be a sequence of positive numbers, got {checks.describe(scales)}")
    out = tuple(checks.number(v, f"scales[{i}]", minimum=0.0, min_open=True) for i, v in enumerate(scales))
    if not out:
        raise ValueError("scales must be a non-empty sequence of positive numbers, got none")
    return out


def _forward(model: OpenPoseNet, x: torch.Tensor, flip: bool):
    """Every stage's stride-8 maps of the float batch ``x``, averaged with those of the
    mirrored batch when ``flip``."""
    pafs, cms = model(x)
    pafs, cms = [p.float() for p in pafs], [c.float() for c in cms]
    if flip:
        pafs_f, cms_f = model(x.flip(-1))
        pafs = [(p + _unflip_pafs(q.float())) / 2 for p, q in zip(pafs, pafs_f)]
        cms = [(c + _unflip_cms(q.float())) / 2 for c, q in zip(cms, cms_f)]
    return pafs, cms


@torch.no_grad()
def predict(model: OpenPoseNet, images: torch.Tensor, batch_size: int = 16, upsample: int = 1,
            mode: str = "bicubic", all_stages: bool = False, flip: bool = False, scales=(1.0,)):
    """Network outputs for ``images`` ``(N, 3, S, S)`` (uint8, or float in [0, 1]), in
    batches on the model's device, in eval mode (restored afterwards); returned on the CPU.

    * default: the final maps ``(heatmaps (N, K, S/8, S/8), pafs (N, 2C, S/8, S/8))``,
      parse them with ``stride=8``;
    * ``upsample=f``: the same upsampled by ``f`` (``mode``: ``"bicubic"``, the released
      code's choice, or ``"bilinear"``), to parse with ``stride=8/f``. Upsampled maps are
      large (``f = 8``: 14 MB per 256x256 image); :func:`detect` upsamples batch by batch;
    * ``all_stages=True``: every stage's raw stride-8 output, ``(pafs, cms)`` as the
      network returns them (lists over stages of ``(N, 2C, ...)`` and ``(N, K, ...)``).

    Test-time augmentation (off by default; :func:`detect` uses :data:`INFERENCE`
    ``["flip"]`` and ``["test_scales"]``):

    * ``flip=True`` also runs the mirrored images and averages every stage's maps with
      theirs turned back (:func:`unflip_maps`), the flip test of pose estimators;
    * ``scales``: the released code's scale search. The images are resized by each
      factor (bilinear; sizes rounded to multiples of 8), every scale's maps are resized
      (bicubic) to the stride-8 grid of the input and the maps are averaged. Resizing
      with ``align_corners=False`` keeps the cell centres aligned: cell ``j`` of scale
      ``s`` lies at ``(8 j + 4) / s - 0.5`` input pixels. Larger scales help small people,
      smaller ones large people. Cost: the network runs ``(1 + flip) * sum(s^2)`` times.
      An enlarged batch goes through the network in groups of about ``batch_size / s^2``
      images, so memory stays that of ``batch_size`` images at the input size (at scale 2,
      one batch of 16 256-pixel images would otherwise hold over 3 GB of activations).
    """
    images = _check_images(images, model)
    factor = _check_upsample(upsample)
    scales = _check_scales(scales)
    checks.choice(mode, "mode", ("bicubic", "bilinear"))
    if not isinstance(flip, bool):
        raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pafs_all: list[list[torch.Tensor]] = []
    cms_all: list[list[torch.Tensor]] = []
    try:
        for i in range(0, len(images), batch_size):
            x = _as_float(images[i:i + batch_size]).to(dev)
            h, w = x.shape[-2:]
            grid = (h // STRIDE, w // STRIDE)
            pafs = cms = None
            for s in scales:
                size = (max(STRIDE, round(h * s / STRIDE) * STRIDE), max(STRIDE, round(w * s / STRIDE) * STRIDE))
                xs = x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                                            antialias=size[0] < h)
                # enlarged images go through the network in smaller groups, so that every forward
                # pass holds about as many pixels as batch_size images at the input size
                group = max(1, int(len(xs) * h * w // (size[0] * size[1])))
                parts = [_forward(model, xs[j:j + group], flip) for j in range(0, len(xs), group)]
                p_s = [torch.cat([p[t] for p, _ in parts]) for t in range(len(parts[0][0]))]
                c_s = [torch.cat([c[t] for _, c in parts]) for t in range(len(parts[0][1]))]
                del parts
                if size != (h, w):
                    p_s = [F.interpolate(m, size=grid, mode="bicubic", align_corners=False) for m in p_s]
                    c_s = [F.interpolate(m, size=grid, mode="bicubic", align_corners=False) for m in c_s]
                pafs = p_s if pafs is None else [a + b for a, b in zip(pafs, p_s)]
                cms = c_s if cms is None else [a + b for a, b in zip(cms, c_s)]
            pafs = [m / len(scales) for m in pafs]
            cms = [m / len(scales) for m in cms]
            if all_stages:
                pafs_all.append([p.cpu() for p in pafs])
                cms_all.append([c.cpu() for c in cms])
            else:
                pafs_all.append([upsample_maps(pafs[-1], factor, mode).cpu()])
                cms_all.append([upsample_maps(cms[-1], factor, mode, positive=True).cpu()])
    finally:
        model.train(was_training)
    pafs_out = [torch.cat([b[t] for b in pafs_all]) for t in range(len(pafs_all[0]))]
    cms_out = [torch.cat([b[t] for b in cms_all]) for t in range(len(cms_all[0]))]
    if all_stages:
        return pafs_out, cms_out
    return cms_out[0], pafs_out[0]


def parse_maps(heatmaps: torch.Tensor, pafs: torch.Tensor, upsample: int = 1, mode: str = "bicubic",
               stride: float = STRIDE, **parse_kwargs) -> list[list[Person]]:
    """People in image pixels from stride-``stride`` maps ``(B, K, H, W)`` and
    ``(B, 2C, H, W)`` (or one image's ``(K, H, W)`` and ``(2C, H, W)``): optionally
    upsampled by ``upsample`` (:func:`upsample_maps`), then
    :func:`~kpedu.openpose.parse_batch` with COCO-17's limbs, the stride of the maps
    parsed (``stride / upsample``) and :data:`INFERENCE` ``["parse"]`` updated with
    ``parse_kwargs``. Works on network outputs and on ground-truth targets alike."""
    factor = _check_upsample(upsample)
    stride = checks.number(stride, "stride", minimum=0.0, min_open=True)
    kwargs = {**INFERENCE["parse"], **parse_kwargs}
    _check_options(**kwargs)
    checks.same_device(heatmaps=heatmaps, pafs=pafs)
    heatmaps = checks.maps(heatmaps, "heatmaps", ndim=(3, 4), shape_text="(B, K, H, W) or (K, H, W)")
    pafs = checks.maps(pafs, "pafs", ndim=(3, 4), shape_text="(B, 2C, H, W) or (2C, H, W)")
    if heatmaps.ndim != pafs.ndim:
        raise ValueError(f"heatmaps and pafs must both be batches or both one image's maps, got shapes "
                         f"{tuple(heatmaps.shape)} and {tuple(pafs.shape)}")
    if heatmaps.ndim == 3:
        heatmaps, pafs = heatmaps[None], pafs[None]
    hm = upsample_maps(heatmaps.float(), factor, mode, positive=True)
    pf = upsample_maps(pafs.float(), factor, mode)
    return parse_batch(hm, pf, _limbs(), stride=stride / factor, **kwargs)


def detect(model: OpenPoseNet, images: torch.Tensor, batch_size: int = 16, upsample: int | None = None,
           mode: str = "bicubic", flip: bool | None = None, scales=None, **parse_kwargs) -> list[list[Person]]:
    """Detected people for every image: :func:`predict` then :func:`parse_maps`, batch by
    batch. ``upsample=None`` takes :data:`INFERENCE` ``["upsample"]`` (8: parse at the input
    resolution); ``1`` parses the stride-8 maps. ``flip=None`` and ``scales=None`` take
    :data:`INFERENCE` ``["flip"]`` and ``["test_scales"]`` (test-time augmentation,
    :func:`predict`; ``flip=False, scales=(1,)``: one pass). ``parse_kwargs`` override
    :data:`INFERENCE` ``["parse"]`` (e.g. ``threshold=0.2``). Returns one list of
    :class:`~kpedu.openpose.Person` per image, keypoints in image pixels."""
    images = _check_images(images, model)
    factor = _check_upsample(upsample, recipe_default=True)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    flip = INFERENCE["flip"] if flip is None else flip
    if not isinstance(flip, bool):
        raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
    scales = _check_scales(INFERENCE["test_scales"] if scales is None else scales)
    checks.choice(mode, "mode", ("bicubic", "bilinear"))
    _check_options(**{**INFERENCE["parse"], **parse_kwargs})
    out: list[list[Person]] = []
    for i in range(0, len(images), batch_size):
        heat, pafs = predict(model, images[i:i + batch_size], batch_size, flip=flip, scales=scales)
        out += parse_maps(heat, pafs, factor, mode, **parse_kwargs)
    return out
