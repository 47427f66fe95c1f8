"""Image pairs with exact correspondences: photos under random homographies and lighting.

D2-Net chapter (``book/ch04-d2net``). A pair is two views of one bundled scikit-image
photograph: view 1 is a square window of the photo, view 2 the same plane seen through a
random homography, and each view gets its own photometric change (illumination field,
gamma, contrast, colour, noise, blur). The homography ``H`` maps view-1 pixel coordinates
to view-2 pixel coordinates (pixel centres at integers, as everywhere in the book), so
every pixel has an exact ground-truth match: the planar analogue of the depth-based
correspondences D2-Net was trained with.

The photographs are split once: :data:`TRAIN_PHOTOS` for training only,
:data:`HELDOUT_PHOTOS` for evaluation only. ``skimage.data.cat`` is left out (it is the
``chelsea`` photo again) and so is the stereo pair, which the chapter keeps as a real test.

Three kinds of pair (:data:`PAIR_KINDS`):

``"viewpoint"``
    strong geometry (rotation up to 30 degrees, scale 0.7 to 1.4, corner perspective up
    to 15 % of the side) and mild photometric changes;
``"illumination"``
    almost the same viewpoint (a shift of a few pixels and a slight rotation, so the
    identity is not a shortcut) and strong photometric changes;
``"train"``
    geometry and photometry each drawn between mild and strong, for training; the
    geometry reaches further than the viewpoint set's (rotation up to 25 degrees, scale
    0.7 to 1.4), so that the evaluation's changes lie inside what training has seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from .backgrounds import _photo_cached, as_rng

__all__ = [
    "TRAIN_PHOTOS",
    "HELDOUT_PHOTOS",
    "PAIR_KINDS",
    "PairSet",
    "apply_homography",
    "homography_from_points",
    "random_homography",
    "warp_image",
    "photometric",
    "make_pair",
    "make_pairs",
    "PairBatches",
    "photo_tensor",
]

#: Photographs used for training (never for evaluation).
TRAIN_PHOTOS: tuple[str, ...] = (
    "camera", "rocket", "brick", "grass", "gravel", "text", "page", "moon", "coins",
    "hubble_deep_field", "retina", "clock", "colorwheel", "cell", "immunohistochemistry",
)
#: Photographs held out for evaluation (never seen in training).
HELDOUT_PHOTOS: tuple[str, ...] = ("astronaut", "coffee", "chelsea")
#: Kinds of pair accepted by :func:`make_pair`.
PAIR_KINDS: tuple[str, ...] = ("viewpoint", "illumination", "train")

_ALL_PHOTOS = TRAIN_PHOTOS + HELDOUT_PHOTOS


_PADDING_MODES = ("zeros", "border", "reflection")


def photo_tensor(name: str) -> torch.Tensor:
    """A bundled photograph as a ``(3, H, W)`` float32 tensor in [0, 1] (cached per process)."""
    if not isinstance(name, str) or name not in _ALL_PHOTOS:
        raise ValueError(f"name must be one of the pair photos {', '.join(_ALL_PHOTOS)}; got {name!r}")
    return torch.from_numpy(np.array(_photo_cached(name))).permute(2, 0, 1).contiguous()


def _check_kind(kind) -> str:
    if not isinstance(kind, str) or kind not in PAIR_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PAIR_KINDS)}; got {kind!r}")
    return kind


def _strength(strength) -> float | None:
    """``None`` or a number in [0, 1]: the fraction of the kind's limits."""
    return checks.optional_number(strength, "strength", minimum=0.0, maximum=1.0)


def _check_H(H, name: str, backend: str, dtype=None, device=None):
    """A finite 3x3 (or ``(B, 3, 3)``) homography, as a numpy float64 array or a torch tensor."""
    if backend == "torch":
        Ht = checks.as_tensor(H, name, dtype=dtype, device=device)
    else:
        Ht = checks.as_array(H, name)
    if Ht.ndim not in (2, 3) or tuple(Ht.shape[-2:]) != (3, 3):
        raise ValueError(f"{name} must be 3x3 (or (B, 3, 3)), got shape {tuple(Ht.shape)}")
    if isinstance(Ht, torch.Tensor):
        finite = Ht.device.type == "meta" or bool(torch.isfinite(Ht).all())
    else:
        finite = bool(np.isfinite(Ht).all())
    if not finite:
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return Ht


def apply_homography(H, points):
    """Map ``(..., 2)`` points (x, y) through the 3x3 homography ``H`` (numpy or torch).

    Points whose homogeneous coordinate is (nearly) zero map to ``inf``; a NaN point (a
    missing one) maps to NaN. Works on a single ``H`` with any batch of points, or on
    ``(B, 3, 3)`` with ``(B, N, 2)`` (or ``(N, 2)``: every ``H`` maps the same points).
    Torch points keep their float dtype and device; numpy points are float64.
    """
    is_torch = isinstance(points, torch.Tensor)
    if is_torch:
        dtype = points.dtype if points.dtype.is_floating_point else torch.float32
        points = checks.points(points, "points", ndim=None, dtype=dtype, shape_text="(..., 2)")
        Ht = _check_H(H, "H", "torch", dtype=points.dtype, device=points.device)
    else:
        points = checks.points(points, "points", ndim=None, backend="numpy", shape_text="(..., 2)")
        Ht = _check_H(H, "H", "numpy")
    x, y = points[..., 0], points[..., 1]
    if Ht.ndim == 3:  # batched: H (B, 3, 3), points (B, N, 2) or (N, 2)
        if points.ndim not in (2, 3) or (points.ndim == 3 and points.shape[0] not in (1, Ht.shape[0])):
            raise ValueError(f"points must have shape ({Ht.shape[0]}, N, 2) or (N, 2) for H of shape "
                             f"{tuple(Ht.shape)}, got shape {tuple(points.shape)}")
        h = lambda r, c: Ht[:, r, c][:, None]  # noqa: E731
    else:
        h = lambda r, c: Ht[r, c]  # noqa: E731
    w = h(2, 0) * x + h(2, 1) * y + h(2, 2)
    u = h(0, 0) * x + h(0, 1) * y + h(0, 2)
    v = h(1, 0) * x + h(1, 1) * y + h(1, 2)
    if is_torch:
        small = w.abs() < 1e-12
        w = torch.where(small, torch.full_like(w, float("nan")), w)
        out = torch.stack([u / w, v / w], dim=-1)
        return torch.where(small[..., None], torch.full_like(out, float("inf")), out)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.stack([u / w, v / w], axis=-1)
    out[np.abs(w) < 1e-12] = np.inf
    return out


def _normalised(p: np.ndarray) -> np.ndarray:
    """Points moved to their centroid and scaled to a mean distance of sqrt(2) (Hartley)."""
    c = p - p.mean(0)
    d = np.sqrt((c ** 2).sum(1)).mean()
    return c * (math.sqrt(2) / d) if d > 0 else c


def _dlt_rows(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    return np.asarray(rows)


def homography_from_points(src, dst) -> np.ndarray:
    """The 3x3 homography mapping four (or more) ``src`` points onto ``dst`` (DLT, ``H[2, 2] = 1``).

    ``src`` and ``dst`` are ``(N, 2)`` finite points, ``N >= 4``; a degenerate configuration
    (three of four points collinear, repeated points) is a ``ValueError``.
    """
    src = checks.points(src, "src", ndim=2, allow_nan=False, backend="numpy", shape_text="(N, 2)")
    dst = checks.points(dst, "dst", ndim=2, allow_nan=False, backend="numpy", shape_text="(N, 2)")
    if len(src) < 4:
        raise ValueError(f"src must hold at least 4 points, got shape {src.shape}")
    if dst.shape != src.shape:
        raise ValueError(f"dst must have the shape of src {src.shape}, got shape {dst.shape}")
    # degeneracy is judged on normalised coordinates (independent of the image size)
    sv = np.linalg.svd(_dlt_rows(_normalised(src), _normalised(dst)), compute_uv=False)
    if sv[7] <= 1e-9 * sv[0]:
        raise ValueError("src and dst do not determine a homography: degenerate point configuration "
                         "(collinear or repeated points)")
    _, _, vt = np.linalg.svd(_dlt_rows(src, dst))
    H = vt[-1].reshape(3, 3)
    if abs(H[2, 2]) < 1e-12:
        raise ValueError("src and dst give a homography with H[2, 2] = 0 (the origin of src maps to infinity)")
    return H / H[2, 2]


_GEOMETRY = {  # (max rotation rad, log-scale range, perspective fraction, shift fraction)
    "viewpoint": (math.radians(15), math.log(1.25), 0.2, 0.08),
    "illumination": (math.radians(3), 0.0, 0.0, 0.02),
    "train": (math.radians(25), math.log(1.4), 0.2, 0.08),
}


def random_homography(size: int, rng: np.random.Generator | int = 0, kind: str = "viewpoint",
                      strength: float | None = None) -> np.ndarray:
    """A random homography between two ``size`` x ``size`` views (view 1 -> view 2).

    View 2's corners are placed in view 1 by a rotation about the centre, a zoom, an
    independent jitter of each corner (perspective) and a shift, with the limits of
    ``kind`` scaled by ``strength`` (drawn in [0.3, 1] for ``"train"``, else 1).
    The returned ``H`` maps view-1 coordinates to view-2 coordinates.
    """
    _check_kind(kind)
    size = checks.integer(size, "size", minimum=8)
    rng = as_rng(rng)
    strength = _strength(strength)
    if strength is None:
        strength = float(rng.uniform(0.3, 1.0)) if kind == "train" else 1.0
    rot, log_scale, persp, shift = _GEOMETRY[kind]
    s = size - 1
    c = s / 2.0
    corners = np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64)
    a = rng.uniform(-rot, rot) * strength
    z = math.exp(rng.uniform(-log_scale, log_scale) * strength)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    placed = (corners - c) @ R.T / z + c
    placed += rng.uniform(-persp, persp, size=(4, 2)) * strength * size
    placed += rng.uniform(-shift, shift, size=2) * strength * size
    # placed: where view-2's corners sit in view 1; H maps view 1 -> view 2
    return homography_from_points(placed, corners)


def warp_image(image: torch.Tensor, H, size: int | tuple[int, int], padding_mode: str = "reflection"
               ) -> torch.Tensor:
    """Warp ``(3, h, w)`` (or ``(B, 3, h, w)`` with ``(B, 3, 3)``) into a view of ``size``.

    Output pixel ``q`` takes the bilinear sample of ``image`` at ``H^-1 q``: ``H`` maps
    input coordinates to output coordinates. Pixel centres at integers.
    """
    dtype = image.dtype if isinstance(image, torch.Tensor) and image.dtype.is_floating_point else torch.float32
    img = checks.image(image, "image", ndim=(3, 4), channels=None, dtype=dtype)
    single = img.dim() == 3
    img = img[None] if single else img
    Hs = _check_H(H, "H", "torch", dtype=torch.float64, device="cpu")
    if Hs.dim() == 2:
        Hs = Hs[None].expand(img.shape[0], 3, 3)
    elif Hs.shape[0] != img.shape[0]:
        raise ValueError(f"H must be 3x3 or ({img.shape[0]}, 3, 3), one per image, got shape {tuple(Hs.shape)}")
    Hinv, info = torch.linalg.inv_ex(Hs)
    if bool((info != 0).any()) or not bool(torch.isfinite(Hinv).all()):
        raise ValueError("H must be invertible, got a singular homography")
    oh, ow = checks.size(size, "size")
    padding_mode = checks.choice(padding_mode, "padding_mode", _PADDING_MODES)
    ys, xs = torch.meshgrid(torch.arange(oh, dtype=torch.float64), torch.arange(ow, dtype=torch.float64),
                            indexing="ij")
    q = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).expand(img.shape[0], -1, 2)
    p = apply_homography(Hinv, q)  # (B, N, 2) in input pixels
    h, w = img.shape[-2:]
    grid = torch.stack([(p[..., 0] + 0.5) / w * 2 - 1, (p[..., 1] + 0.5) / h * 2 - 1], dim=-1)
    grid = grid.reshape(img.shape[0], oh, ow, 2).to(dtype=img.dtype, device=img.device)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out[0] if single else out


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0.05:
        return img
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=img.dtype)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    c = img.shape[0]
    x = F.pad(img[None], (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


_PHOTOMETRIC = {  # (field depth, gamma log-range, contrast, colour, noise sigma, blur sigma, shadow, exposure)
    "viewpoint": (0.25, math.log(1.3), 0.15, 0.08, 0.01, 0.6, 0.0, 0.0),
    "illumination": (0.7, math.log(2.0), 0.4, 0.25, 0.03, 1.2, 0.6, math.log(3.0)),
    "train": (0.7, math.log(2.0), 0.4, 0.25, 0.03, 1.2, 0.6, math.log(3.0)),
}


def photometric(image: torch.Tensor, rng: np.random.Generator | int = 0, kind: str = "illumination",
                strength: float | None = None) -> torch.Tensor:
    """A random photometric change of a ``(3, H, W)`` image in [0, 1]; returns a new tensor.

    In order: a smooth illumination field (a linear ramp times a soft lamp, darkening by
    up to the ``kind``'s depth), a cast shadow (a half-plane with a sharp, slightly
    blurred edge, darkening by up to the ``kind``'s shadow depth), a lower exposure (down
    to 1/3 for ``"illumination"``: dusk), gamma, contrast about the mean, a per-channel
    colour gain, Gaussian blur and Gaussian noise (stronger the darker the exposure, as
    in a low-light photo), then clipping to [0, 1]. ``strength`` scales every limit
    (drawn in [0.2, 1] for ``"train"``, else 1).
    """
    _check_kind(kind)
    dtype = image.dtype if isinstance(image, torch.Tensor) and image.dtype.is_floating_point else torch.float32
    image = checks.image(image, "image", ndim=3, channels=3, dtype=dtype)
    rng = as_rng(rng)
    strength = _strength(strength)
    if strength is None:
        strength = float(rng.uniform(0.2, 1.0)) if kind == "train" else 1.0
    depth, log_gamma, contrast, colour, noise, blur, shadow, log_exposure = (
        v * strength for v in _PHOTOMETRIC[kind])
    _, h, w = image.shape
    ys = torch.linspace(-1, 1, h, dtype=image.dtype)[:, None]
    xs = torch.linspace(-1, 1, w, dtype=image.dtype)[None, :]
    a = rng.uniform(0, 2 * math.pi)
    ramp = 0.5 + 0.5 * (math.cos(a) * xs + math.sin(a) * ys) / math.sqrt(2)  # in [0, 1]
    cx, cy, r = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.4, 1.2)
    lamp = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))
    field = 1.0 - depth * (1.0 - 0.5 * (ramp + lamp))  # in [1 - depth, 1]
    out = image * field
    if shadow > 0:  # a cast shadow: half-plane through a random point, edge softness ~1.5 px
        b = rng.uniform(0, 2 * math.pi)
        px, py = rng.uniform(-0.6, 0.6, size=2)
        dist = (math.cos(b) * (xs - px) + math.sin(b) * (ys - py)) * (0.5 * max(h, w))
        out = out * (1 - rng.uniform(0.5, 1.0) * shadow * torch.sigmoid(dist / 1.5))
    exposure = math.exp(-rng.uniform(0, log_exposure)) if log_exposure > 0 else 1.0
    out = out * exposure
    noise = noise / math.sqrt(exposure)
    out = out.clamp(0, 1) ** math.exp(rng.uniform(-log_gamma, log_gamma))
    mean = out.mean()
    out = (out - mean) * math.exp(rng.uniform(-contrast, contrast)) + mean
    gains = torch.as_tensor(np.exp(rng.uniform(-colour, colour, size=3)), dtype=image.dtype)
    out = out * gains[:, None, None]
    out = _gaussian_blur(out, float(rng.uniform(0, blur)))
    if noise > 0:
        g = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        out = out + torch.randn(out.shape, generator=g, dtype=out.dtype) * float(rng.uniform(0, noise))
    return out.clamp(0, 1)


def make_pair(photo: str | torch.Tensor, rng: np.random.Generator | int = 0, size: int = 160,
              kind: str = "viewpoint") -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """One pair ``(image1, image2, H)`` of ``(3, size, size)`` float images from a photo.

    View 1 is a random square window (side 40 % to 90 % of the photo's shorter side,
    resampled to ``size``); view 2 is :func:`random_homography` of it, sampled from the
    whole photo (reflected at its border). Each view then gets its own
    :func:`photometric` change (both the ``kind``'s; view 1's at half strength).
    ``H`` maps view-1 to view-2 coordinates.
    """
    _check_kind(kind)
    rng = as_rng(rng)
    size = checks.integer(size, "size", minimum=8)
    if isinstance(photo, str):
        if photo not in _ALL_PHOTOS:
            raise ValueError(f"photo must be one of the pair photos {', '.join(_ALL_PHOTOS)} or a (3, H, W) image; "
                             f"got {photo!r}")
        img = photo_tensor(photo)
    else:
        img = checks.image(photo, "photo", ndim=3, channels=3)
    ph, pw = img.shape[-2:]
    side = float(rng.uniform(0.4, 0.9)) * min(ph, pw)
    x0 = float(rng.uniform(0, pw - side))
    y0 = float(rng.uniform(0, ph - side))
    k = side / size  # view-1 pixel -> photo pixel: p = k * q + offset (centres aligned)
    T1 = np.array([[k, 0, x0 + 0.5 * k - 0.5], [0, k, y0 + 0.5 * k - 0.5], [0, 0, 1.0]])
    G = random_homography(size, rng, "train" if kind == "train" else kind)
    # photo -> view 1 is T1^-1; view 1 -> view 2 is G
    view1 = warp_image(img, np.linalg.inv(T1), size)
    view2 = warp_image(img, G @ np.linalg.inv(T1), size)
    view1 = photometric(view1, rng, kind, strength=None if kind == "train" else 0.5)
    view2 = photometric(view2, rng, kind)
    return view1, view2, G


@dataclass
class PairSet:
    """Image pairs with ground-truth homographies (D2-Net chapter).

    ``image1``, ``image2``: ``(N, 3, S, S)`` uint8; ``H``: ``(N, 3, 3)`` float64, view 1
    -> view 2; ``photo``: the source photograph of each pair; ``kind``.
    """

    image1: torch.Tensor
    image2: torch.Tensor
    H: np.ndarray
    photo: list[str]
    kind: str

    def __post_init__(self) -> None:
        for name in ("image1", "image2"):
            x = getattr(self, name)
            if isinstance(x, np.ndarray) and x.dtype == np.uint8:
                x = torch.from_numpy(x)
            if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
                raise TypeError(f"{name} must be a uint8 tensor of shape (N, 3, S, S), got {checks.describe(x)}")
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"{name} must have shape (N, 3, S, S), got shape {tuple(x.shape)}")
            setattr(self, name, x)
        if self.image2.shape != self.image1.shape:
            raise ValueError(f"image2 must have the shape of image1 {tuple(self.image1.shape)}, "
                             f"got shape {tuple(self.image2.shape)}")
        n = int(self.image1.shape[0])
        H = _check_H(self.H, "H", "numpy")
        if H.shape != (n, 3, 3):
            raise ValueError(f"H must have shape ({n}, 3, 3), one homography per pair, got shape {H.shape}")
        self.H = H
        if isinstance(self.photo, (str, bytes)) or not hasattr(self.photo, "__len__") or len(self.photo) != n:
            raise ValueError(f"photo must be a list of {n} photo names (one per pair), got {checks.describe(self.photo)}")
        self.photo = list(self.photo)
        _check_kind(self.kind)

    def __len__(self) -> int:
        return int(self.image1.shape[0])

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Pair ``i`` (negative: from the end) as float images in [0, 1] and its homography."""
        i = checks.index(i, len(self), "index")
        return self.image1[i].float() / 255, self.image2[i].float() / 255, self.H[i]


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _check_photos(photos) -> tuple[str, ...]:
    """A non-empty list of pair photo names (a single name is not a list of names)."""
    if isinstance(photos, (str, bytes)) or not hasattr(photos, "__iter__"):
        raise TypeError(f"photos must be a list of photo names, got {checks.describe(photos)}; "
                        f"pass [{photos!r}] for one photo")
    photos = tuple(photos)
    if not photos:
        raise ValueError("photos must not be empty")
    unknown = [p for p in photos if not isinstance(p, str) or p not in _ALL_PHOTOS]
    if unknown:
        raise ValueError(f"photos must be pair photos ({', '.join(_ALL_PHOTOS)}); unknown: {unknown}")
    return photos


def make_pairs(n: int, kind: str = "viewpoint", size: int = 160, seed: int = 0,
               photos: Sequence[str] = HELDOUT_PHOTOS, progress: bool = False) -> PairSet:
    """``n`` pairs of one ``kind``; the photos are used in turn (pair ``i`` from ``photos[i % len]``)."""
    n = checks.integer(n, "n", minimum=1)
    _check_kind(kind)
    size = checks.integer(size, "size", minimum=8)
    seed = checks.integer(seed, "seed", minimum=0)
    photos = _check_photos(photos)
    rng = np.random.default_rng(seed)
    a, b, Hs, names = [], [], [], []
    it = range(int(n))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{kind} pairs")
    for i in it:
        name = photos[i % len(photos)]
        v1, v2, H = make_pair(name, rng, size, kind)
        a.append(_to_uint8(v1))
        b.append(_to_uint8(v2))
        Hs.append(H)
        names.append(name)
    return PairSet(torch.stack(a), torch.stack(b), np.stack(Hs), names, kind)


class PairBatches:
    """An endless, deterministic source of training batches of pairs.

    Batch ``t`` depends only on ``(seed, t)``, so :func:`kpedu.train.fit` can resume a
    run exactly. Each batch is a dict ``image1``, ``image2`` ``(B, 3, S, S)`` float and
    ``H`` ``(B, 3, 3)`` float64 and ``step`` (``t``, for schedules), drawn from ``photos`` (default :data:`TRAIN_PHOTOS`).
    """

    def __init__(self, batch_size: int, size: int = 128, seed: int = 0, photos: Sequence[str] = TRAIN_PHOTOS,
                 kind: str = "train"):
        batch_size = checks.integer(batch_size, "batch_size", minimum=1)
        size = checks.integer(size, "size", minimum=8)
        seed = checks.integer(seed, "seed", minimum=0)
        self.batch_size, self.size, self.seed, self.kind = batch_size, size, seed, _check_kind(kind)
        self.photos = _check_photos(photos)

    def batch(self, t: int) -> dict:
        """Batch ``t`` (an integer step ``>= 0``)."""
        t = checks.integer(t, "t", minimum=0)
        rng = np.random.default_rng([self.seed, t])
        a, b, Hs = [], [], []
        for _ in range(self.batch_size):
            name = self.photos[int(rng.integers(len(self.photos)))]
            v1, v2, H = make_pair(name, rng, self.size, self.kind)
            a.append(v1)
            b.append(v2)
            Hs.append(H)
        return {"image1": torch.stack(a), "image2": torch.stack(b), "H": torch.as_tensor(np.stack(Hs)),
                "step": torch.tensor(int(t))}

    def __iter__(self):
        t = 0
        while True:
            yield self.batch(t)
            t += 1
