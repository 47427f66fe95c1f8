"""Backgrounds for synthetic images: smooth noise, procedural textures, photo crops.

Used by :mod:`kpedu.data.people` (Foundations chapter). Everything works offline:
photos come only from scikit-image's bundled sample images, loaded once and cached.
All functions return float32 arrays in ``[0, 1]``; the public ones are channel-first
``(3, H, W)`` like the rest of the book. Internally the channel-last helpers
(``*_hwc``) are used because painting people works on ``(H, W, 3)``.
"""
from __future__ import annotations

import functools
import numbers
from typing import Sequence

import numpy as np

from .. import checks

__all__ = [
    "PHOTO_NAMES",
    "BACKGROUND_KINDS",
    "as_rng",
    "parse_size",
    "load_photo",
    "make_background",
    "noise_background",
    "texture_background",
    "photo_background",
    "resize_bilinear",
]

#: scikit-image sample images that ship with the package (no download needed).
PHOTO_NAMES: tuple[str, ...] = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel",
    "text", "page", "moon", "coins", "immunohistochemistry", "hubble_deep_field",
    "retina", "cat", "clock",
)
#: Accepted values of ``kind`` in :func:`make_background`.
BACKGROUND_KINDS: tuple[str, ...] = ("noise", "texture", "photo", "mixed")


def as_rng(rng: np.random.Generator | int, name: str = "rng") -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else ``default_rng(int)``
    (a non-negative integer seed; an integral float such as ``3.0`` is accepted)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (str, bytes, bool, np.bool_)) or not isinstance(rng, (numbers.Real, np.integer)):
        raise TypeError(
            f"{name} must be a numpy.random.Generator or a non-negative int seed, got {checks.describe(rng)}"
        )
    return np.random.default_rng(checks.integer(rng, f"{name} (an integer seed)", minimum=0))


def parse_size(size: int | Sequence[int], min_size: int = 16, name: str = "size") -> tuple[int, int]:
    """``size`` (an int for square images, or ``(H, W)``) as a validated ``(H, W)`` of ints
    ``>= min_size``; ``name`` is the argument's name in error messages."""
    if isinstance(size, (tuple, list)) and len(size) != 2:
        raise TypeError(f"{name} must be an int or a pair (H, W) of ints, got {len(size)} values")
    hw = checks.size(size, name)
    if min(hw) < min_size:
        raise ValueError(f"{name} {size!r} is too small; the minimum side is {min_size} px")
    return hw


@functools.lru_cache(maxsize=None)
def _photo_cached(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    out = img.astype(np.float32)
    out /= 255.0 if img.dtype == np.uint8 else max(float(out.max()), 1e-6)
    out = np.ascontiguousarray(np.clip(out, 0.0, 1.0))
    out.setflags(write=False)
    return out


def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as a read-only ``(H, W, 3)`` float32 array in [0, 1].

    Foundations chapter. Grey images are replicated to three channels. Cached: each
    photo is decoded once per process.
    """
    if not isinstance(name, str) or name not in PHOTO_NAMES:
        raise ValueError(f"name must be one of the bundled photos {', '.join(PHOTO_NAMES)}; got {name!r}")
    return _photo_cached(name)


def resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a ``(h0, w0, C)`` float array to ``(h, w, C)`` with bilinear interpolation.

    Pixel centres are aligned (the book's convention: centre of pixel ``j`` at ``x = j``,
    so ``x_src = (x_dst + 0.5) * w0 / w - 0.5``). Strong down-scaling is pre-filtered by
    block averaging to limit aliasing. ``img`` follows the book's one rule for images
    (float in ``[0, 1]``, or ``uint8`` scaled by 1/255; numpy or torch), channel-last.
    """
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.dtype.kind == "f" and img.size \
            and np.isfinite(img).all() and img.min() >= checks.IMAGE_FLOAT_RANGE[0] \
            and img.max() <= checks.IMAGE_FLOAT_RANGE[1]:
        arr = img  # the common case, without a copy
    else:
        arr = checks.image(img, "img", ndim=3, channels=None, shape_text="(H, W, C)").numpy()
    h = checks.integer(h, "h", minimum=1)
    w = checks.integer(w, "w", minimum=1)
    return _resize_bilinear(arr, h, w)


def _resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """:func:`resize_bilinear` without the argument checks (internal callers)."""
    h0, w0 = img.shape[:2]
    f = min(h0 // h, w0 // w)
    if f >= 2:  # block-average first
        hh, ww = (h0 // f) * f, (w0 // f) * f
        img = img[:hh, :ww].reshape(hh // f, f, ww // f, f, -1).mean(axis=(1, 3))
        h0, w0 = img.shape[:2]
    if (h0, w0) == (h, w):
        return np.ascontiguousarray(img, dtype=np.float32)
    ys = np.clip((np.arange(h, dtype=np.float32) + 0.5) * (h0 / h) - 0.5, 0, h0 - 1)
    xs = np.clip((np.arange(w, dtype=np.float32) + 0.5) * (w0 / w) - 0.5, 0, w0 - 1)
    y0 = np.minimum(ys.astype(np.int64), h0 - 2 if h0 > 1 else 0)
    x0 = np.minimum(xs.astype(np.int64), w0 - 2 if w0 > 1 else 0)
    y1 = np.minimum(y0 + 1, h0 - 1)
    x1 = np.minimum(x0 + 1, w0 - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    rows = img[y0] * (1 - fy) + img[y1] * fy
    out = rows[:, x0] * (1 - fx) + rows[:, x1] * fx
    return out.astype(np.float32, copy=False)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, channels: int = 1,
                  cell: float | None = None, octaves: int = 3) -> np.ndarray:
    """Fractal value noise of shape ``(h, w, channels)``, roughly in [0, 1]."""
    cell = cell if cell is not None else rng.uniform(0.12, 0.5) * max(h, w)
    out = np.zeros((h, w, channels), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gh = max(2, int(np.ceil(h / cell)) + 1)
        gw = max(2, int(np.ceil(w / cell)) + 1)
        grid = rng.random((gh, gw, channels), dtype=np.float32)
        out += amp * _resize_bilinear(grid, h, w)
        total += amp
        amp *= 0.5
        cell = max(cell / 2.0, 1.5)
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _random_color(rng: np.random.Generator, sat: tuple[float, float] = (0.2, 0.9),
                  val: tuple[float, float] = (0.2, 0.95)) -> np.ndarray:
    """A random RGB colour from HSV ranges."""
    h = rng.random()
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, np.float32)


def _noise_hwc(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    n = _smooth_noise(rng, h, w, channels=1, octaves=int(rng.integers(2, 5)))
    c0, c1, c2 = (_random_color(rng) for _ in range(3))
    t = n
    # three-colour ramp
    img = np.where(t < 0.5, c0 + (c1 - c0) * (t * 2), c1 + (c2 - c1) * (t * 2 - 1))
    if rng.random() < 0.5:  # a little per-channel colour noise
        img += (_smooth_noise(rng, h, w, 3, octaves=2) - 0.5) * 0.15
    return img


def _texture_hwc(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    u = xx * np.cos(ang) + yy * np.sin(ang)
    v = -xx * np.sin(ang) + yy * np.cos(ang)
    period = rng.uniform(0.04, 0.25) * max(h, w)
    kind = rng.integers(0, 5)
    if kind == 0:  # stripes (soft or hard)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
    elif kind == 1:  # checks
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif kind == 2:  # bricks / tiles
        row = np.floor(v / (period * 0.5))
        uu = u + (row % 2) * period * 0.5
        mortar = (np.mod(v, period * 0.5) < period * 0.06) | (np.mod(uu, period) < period * 0.06)
        t = np.where(mortar, 1.0, 0.25 * (np.sin(row * 12.9898 + np.floor(uu / period) * 78.233) % 1.0))
        t = t.astype(np.float32)
    elif kind == 3:  # wood / rings
        cx, cy = rng.uniform(-0.5, 1.5) * w, rng.uniform(-0.5, 1.5) * h
        r = np.hypot(xx - cx, yy - cy)
        warp = _smooth_noise(rng, h, w, 1, octaves=2)[..., 0] * period
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (r + warp) / (period * 0.6))
    else:  # gradient with blobs
        t = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
        t = 0.6 * t + 0.4 * _smooth_noise(rng, h, w, 1, octaves=3)[..., 0]
    c0, c1 = _random_color(rng), _random_color(rng)
    img = c0 + (c1 - c0) * t[..., None]
    img = img + (_smooth_noise(rng, h, w, 1, cell=max(2.0, period / 3), octaves=2) - 0.5) * 0.12
    return img


def _photo_hwc(rng: np.random.Generator, h: int, w: int, names: Sequence[str] = PHOTO_NAMES) -> np.ndarray:
    photo = load_photo(str(names[int(rng.integers(len(names)))]))
    ph, pw = photo.shape[:2]
    aspect = w / h
    # crop of random scale with the target aspect ratio
    max_ch = min(ph, int(pw / aspect))
    min_ch = max(8, int(0.3 * max_ch))
    ch = int(rng.integers(min_ch, max_ch + 1))
    cw = max(1, min(pw, int(round(ch * aspect))))
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = _resize_bilinear(crop, h, w)
    # mild colour jitter (gain per channel, contrast)
    gain = rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    out = out * gain
    c = rng.uniform(0.7, 1.1)
    out = (out - 0.5) * c + 0.5
    return out


def _background_hwc(rng: np.random.Generator, h: int, w: int, kind: str = "mixed") -> np.ndarray:
    if kind == "mixed":
        kind = ("noise", "texture", "photo")[int(rng.choice(3, p=(0.3, 0.3, 0.4)))]
    if kind == "noise":
        img = _noise_hwc(rng, h, w)
    elif kind == "texture":
        img = _texture_hwc(rng, h, w)
    elif kind == "photo":
        img = _photo_hwc(rng, h, w)
    else:
        raise ValueError(f"unknown background kind {kind!r}; choose one of {', '.join(BACKGROUND_KINDS)}")
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def make_background(rng: np.random.Generator | int, size: int | Sequence[int],
                    kind: str = "mixed") -> np.ndarray:
    """A random background image ``(3, H, W)`` float32 in [0, 1] (Foundations chapter).

    ``kind``: ``"noise"`` (smooth fractal noise through a random colour ramp),
    ``"texture"`` (stripes, checks, bricks, wood rings or gradients), ``"photo"`` (a
    random crop of a bundled scikit-image photo, randomly flipped and colour-jittered)
    or ``"mixed"`` (one of the three with probabilities 0.3/0.3/0.4).
    """
    rng = as_rng(rng)
    h, w = parse_size(size, min_size=1)
    if not isinstance(kind, str) or kind not in BACKGROUND_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BACKGROUND_KINDS)}; got {kind!r}")
    return np.ascontiguousarray(_background_hwc(rng, h, w, kind).transpose(2, 0, 1))


def noise_background(rng: np.random.Generator | int, size: int | Sequence[int]) -> np.ndarray:
    """Smooth-noise background ``(3, H, W)`` (Foundations chapter)."""
    return make_background(rng, size, "noise")


def texture_background(rng: np.random.Generator | int, size: int | Sequence[int]) -> np.ndarray:
    """Procedural-texture background ``(3, H, W)`` (Foundations chapter)."""
    return make_background(rng, size, "texture")


def photo_background(rng: np.random.Generator | int, size: int | Sequence[int]) -> np.ndarray:
    """Random crop of a bundled scikit-image photo, ``(3, H, W)`` (Foundations chapter)."""
    return make_background(rng, size, "photo")
