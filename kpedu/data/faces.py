"""Procedural faces with exact named landmarks (CelebA/MAFL stand-in).

This is the data of the factorized spatial embeddings chapter (book/ch03-fse), which
follows Thewlis, Bilen and Vedaldi (ICCV 2017): a network learns landmarks from face
images *without labels*, only by asking them to move with random warps of the image.
The annotated landmarks are used for evaluation alone (a linear regressor from the
learned landmarks to the annotated ones, error normalised by the inter-ocular distance),
exactly as MAFL is used for CelebA. The generator therefore has to provide (a) faces
that really differ from one another and (b) landmarks that sit exactly on the features.

How a face is made
------------------
1. **Canonical frame.** Coordinates ``(u, v)``, ``u`` to the viewer's right, ``v``
   down; the head outline runs from ``v = -1`` (top of the skull) to ``v = 1`` (chin).
   The outline is an ellipse above ``v = 0`` (half-width ``a`` at ``v = 0``) and a jaw
   below it: full width down to ``v_j``, then a superellipse of exponent ``p`` narrowing
   to a chin of half-width ``c``. Per face the generator draws the head shape (``a``,
   ``v_j``, ``p``, ``c``), eye height, spacing, size and shape, nose length, width and
   protrusion, mouth width, height and lip thickness, brow position, length, thickness,
   arch and tilt.
2. **Yaw** (head turn). Each row ``v`` of the head is a vertical cylinder of radius
   ``R(v)`` (the outline's half-width). A surface point at frontal position ``u0`` has
   longitude ``asin(u0 / R)``; turning the head by ``psi = yaw * 90 deg`` adds ``psi`` to
   the longitude, so features move towards the turned side and the far half is
   foreshortened. Points that stick out (the nose tip, depth ``d``) lie on a cylinder of
   radius ``R + d`` and move further. The chin and jaw move with the turn a little
   (the lower outline is shifted sideways in proportion to ``sin psi``).
3. **Expression.** Smile or frown (curvature of the lip line, wider mouth when smiling),
   mouth opening (dark interior and teeth between the lips), eye openness (eyelids) and
   brow raise.
4. **Appearance.** Skin tone from a broad palette, soft directional lighting and
   cylinder shading, mild smooth-noise texture, optional freckles and blush; hair of
   several colours and styles (bald, short cap, fringe, long hair framing the face,
   voluminous), optional ears, optional glasses (thin rims around the eyes), neck and
   shirt; iris and lip colours.
5. **Pose and rendering.** The face is scaled, rotated in the image plane (``roll``) and
   translated. Every pixel is mapped *back* to the face frame (inverse roll, scale and
   translation, then inverse yaw) and the shapes are evaluated there as implicit
   functions ``F <= 0``; ``F`` divided by its pixel gradient is a signed distance in
   pixels, turned into coverage by a 1-px smoothstep (anti-aliasing). Layers are
   composited back to front on a background from :mod:`kpedu.data.backgrounds`, and
   Gaussian pixel noise is added.

The landmarks (:data:`FACE_LANDMARKS`) are computed by mapping the *same* feature
points forward through the same yaw, roll, scale and translation, so they are exact:
the eye landmarks are the centres of the eye openings (= iris centres), the nose landmark
is the centre of the nose tip, the mouth corners are the two ends of the lips, the jaw
points lie on the drawn outline, and so on. "Left" and "right" are the viewer's, as in
the MAFL/CelebA annotations: ``left_eye`` is the eye on the image's left in an upright
frontal face.

Conventions (book/notation.md): the pixel in row ``i``, column ``j`` has its centre at
``(x, y) = (j, i)``; images are float in ``[0, 1]``.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .backgrounds import BACKGROUND_KINDS, _background_hwc, _smooth_noise, as_rng, parse_size
from .. import checks
from .people import _range  # the same checks as the synthetic people

__all__ = [
    "FACE_LANDMARKS",
    "MAFL_INDICES",
    "HAIR_STYLES",
    "FaceSample",
    "make_face",
    "SyntheticFaces",
    "FaceSet",
    "make_faces",
]

#: Names of the landmarks, in order. The first five are the MAFL points.
FACE_LANDMARKS: tuple[str, ...] = (
    "left_eye",     # centre of the eye opening / iris, image-left eye
    "right_eye",
    "nose",         # centre of the nose tip
    "mouth_left",   # image-left end of the lips
    "mouth_right",
    "left_brow",    # centre of the brow (on its mid-line)
    "right_brow",
    "upper_lip",    # top of the upper lip on the face's mid-line
    "lower_lip",    # bottom of the lower lip on the face's mid-line
    "left_jaw",     # face outline at the height of the mouth corners
    "right_jaw",
    "chin",         # bottom of the jaw outline
    "head_top",     # top of the head outline (hair included)
)
#: Indices of the five MAFL landmarks (eyes, nose, mouth corners) in :data:`FACE_LANDMARKS`.
MAFL_INDICES: tuple[int, ...] = (0, 1, 2, 3, 4)
#: Hair styles drawn by :func:`make_face`.
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "fringe", "long", "volume")

_NUM_L = len(FACE_LANDMARKS)

# skin tones from very pale to very dark (interpolated continuously)
_SKIN = np.array(
    [
        (1.00, 0.89, 0.80), (0.98, 0.82, 0.70), (0.93, 0.74, 0.60), (0.87, 0.66, 0.50),
        (0.78, 0.58, 0.42), (0.66, 0.47, 0.33), (0.54, 0.37, 0.25), (0.42, 0.28, 0.19),
        (0.32, 0.21, 0.15),
    ],
    np.float32,
)
_HAIR = np.array(
    [
        (0.06, 0.05, 0.05), (0.16, 0.10, 0.06), (0.30, 0.19, 0.10), (0.48, 0.32, 0.17),
        (0.80, 0.64, 0.36), (0.92, 0.84, 0.62), (0.55, 0.20, 0.08), (0.62, 0.60, 0.58),
        (0.88, 0.88, 0.86), (0.20, 0.25, 0.55), (0.70, 0.30, 0.50),
    ],
    np.float32,
)
_HAIR_P = np.array([0.22, 0.2, 0.14, 0.1, 0.08, 0.05, 0.07, 0.06, 0.03, 0.025, 0.025])
_IRIS = np.array(
    [(0.28, 0.16, 0.08), (0.12, 0.07, 0.05), (0.22, 0.38, 0.62), (0.25, 0.42, 0.26),
     (0.42, 0.32, 0.16), (0.38, 0.45, 0.50)],
    np.float32,
)
_IRIS_P = np.array([0.35, 0.25, 0.15, 0.08, 0.1, 0.07])


# ----------------------------------------------------------------------------------
# the sample
# ----------------------------------------------------------------------------------


@dataclass
class FaceSample:
    """One face with its exact landmarks (factorized spatial embeddings chapter, book/ch03-fse).

    Attributes
    ----------
    image: ``(H, W, 3)`` float32 in [0, 1] (channel-last; :meth:`to_torch` gives ``(3, H, W)``).
    landmarks: ``(L, 2)`` float32 ``(x, y)`` pixels, ``L = len(FACE_LANDMARKS)``.
    params: the sampled parameters (pose, geometry, expression, appearance), json-able.
        ``params["center"]`` is the image position of the face frame's origin (the
        centre of the head ellipse), about which ``roll`` rotates the face.
    """

    image: np.ndarray
    landmarks: np.ndarray
    params: dict = field(default_factory=dict)

    def to_torch(self) -> dict[str, torch.Tensor]:
        """``{"image": (3, H, W) float32, "landmarks": (L, 2) float32}``."""
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.image.transpose(2, 0, 1))),
            "landmarks": torch.from_numpy(np.ascontiguousarray(self.landmarks, dtype=np.float32)),
        }


# ----------------------------------------------------------------------------------
# option checking (ranges are parsed by kpedu.data.people._range)
# ----------------------------------------------------------------------------------


def _lerp(r: tuple[float, float], t: float) -> float:
    return r[0] + (r[1] - r[0]) * t


def _check_options(roll: Any, yaw: Any, scale: Any, shift: Any, expression: Any, background: Any,
                   pixel_noise: Any) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    roll_r = _range(roll, "roll", -180.0, 180.0, symmetric=True)
    yaw_r = _range(yaw, "yaw", -0.5, 0.5, symmetric=True)
    scale_r = _range(scale, "scale", 0.2, 1.0, symmetric=False)
    checks.number(shift, "shift", minimum=0.0, maximum=0.5)
    if not isinstance(expression, (bool, np.bool_)):
        raise TypeError(f"expression must be a bool, got {expression!r}")
    if not isinstance(background, str):
        raise TypeError(f"background must be a string, one of {', '.join(BACKGROUND_KINDS)}; "
                        f"got {checks.describe(background)}")
    if background not in BACKGROUND_KINDS:
        raise ValueError(f"unknown background kind {background!r}; choose one of {', '.join(BACKGROUND_KINDS)}")
    checks.number(pixel_noise, "pixel_noise", minimum=0.0, maximum=0.5)
    return roll_r, yaw_r, scale_r


# ----------------------------------------------------------------------------------
# sampling the face
# ----------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, table: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
    return table[int(rng.choice(len(table), p=p))].copy()


def _sample_geometry(rng: np.random.Generator) -> dict[str, Any]:
    """Head shape, feature placement, expression and hair shape (canonical frame). The
    expression is always drawn, so that ``expression=False`` changes nothing else."""
    U = rng.uniform
    g: dict[str, Any] = {}
    a = U(0.64, 0.80)
    g.update(a=a, vj=U(0.0, 0.35), p=U(1.5, 3.2), cw=U(0.07, 0.28), jaw_shift=U(0.15, 0.35))
    ew = U(0.13, 0.175)
    ex = max(a * U(0.40, 0.49), ew + 0.11)
    g.update(ew=ew, ex=ex, ey=U(-0.06, 0.08), eh=ew * U(0.46, 0.62), iris=U(0.8, 1.0))
    g.update(ny=g["ey"] + U(0.30, 0.42), nw=U(0.15, 0.23), nd=U(0.12, 0.28))
    g.update(mv=min(g["ny"] + U(0.2, 0.3), 0.74), mw=U(0.17, 0.27), lu=U(0.028, 0.055), ll=U(0.04, 0.075))
    g.update(brow_gap=U(0.07, 0.13), bdx=U(-0.02, 0.03), bw=ew * U(1.05, 1.35), bt=U(0.03, 0.06),
             arch=U(-0.01, 0.06), tilt=U(-0.05, 0.05))
    # expression (always drawn; replaced by a neutral face when expression=False)
    smile = U(-0.5, 1.0)
    opened = rng.random() < 0.35
    g.update(smile=smile, mouth_open=U(0.02, 0.12) if opened else 0.0)
    squint = rng.random() < 0.06
    g.update(eye_open=U(0.25, 0.5) if squint else U(0.55, 1.0), brow_raise=U(-0.03, 0.08))
    # hair shape
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=(0.1, 0.3, 0.2, 0.28, 0.12)))]
    g["hair"] = style
    g["fringe"] = style == "fringe" or (style in ("long", "volume") and rng.random() < 0.35)
    t_ht, t_hs = rng.random(2)
    if style == "bald":
        g.update(ht=0.0, hs=0.0)
    elif style == "volume":
        g.update(ht=0.18 + 0.14 * t_ht, hs=0.14 + 0.12 * t_hs)
    else:
        g.update(ht=0.04 + 0.1 * t_ht, hs=0.03 + 0.06 * t_hs)
    g.update(hl=U(-0.72, -0.45), hside=U(-0.08, 0.12), hk=U(0.5, 0.75),
             fringe_slant=U(-0.25, 0.25), fringe_jag=U(0.0, 0.035), fringe_freq=U(18.0, 32.0),
             fringe_drop=U(0.05, 0.11))
    g.update(long_len=U(0.9, 1.5), long_flare=U(0.0, 0.15))
    g.update(ears=bool(rng.random() < 0.85), ear_v=U(-0.02, 0.1), ear_h=U(0.14, 0.2), ear_w=U(0.07, 0.11))
    g.update(glasses=bool(rng.random() < 0.2), glass_rx=U(1.3, 1.6), glass_ry=U(1.5, 2.0),
             neck_w=U(0.3, 0.42), shirt_v=U(1.12, 1.3))
    # consistency: the mouth fits well inside the jaw
    r_m = _outline_halfwidth(np.float64(g["mv"]), g)
    g["mw"] = float(min(g["mw"], 0.72 * r_m))
    return g


def _sample_appearance(rng: np.random.Generator) -> dict[str, Any]:
    U = rng.uniform
    t = U(0.0, 1.0) * (len(_SKIN) - 1)
    i = min(int(t), len(_SKIN) - 2)
    skin = _SKIN[i] + (_SKIN[i + 1] - _SKIN[i]) * (t - i)
    skin = np.clip(skin * U(0.93, 1.05) + rng.normal(0, 0.02, 3), 0.05, 1.0)
    hair = np.clip(_pick(rng, _HAIR, _HAIR_P) * U(0.85, 1.15) + rng.normal(0, 0.02, 3), 0.0, 1.0)
    brow = np.minimum(hair, skin * 0.55) if rng.random() < 0.85 else skin * 0.45
    lips = skin * np.array([0.82, 0.58, 0.58]) + np.array([0.06, 0.0, 0.0])
    if rng.random() < 0.15:  # lipstick
        lips = np.array([U(0.5, 0.85), U(0.05, 0.2), U(0.1, 0.3)])
    iris = _pick(rng, _IRIS, _IRIS_P) * U(0.85, 1.15)
    a = dict(
        skin=skin, hair=hair, brow=brow, lips=np.clip(lips, 0, 1), iris=np.clip(iris, 0, 1),
        shirt=np.clip(np.array([U(0.1, 0.9), U(0.1, 0.9), U(0.1, 0.9)]) * U(0.4, 1.0), 0, 1),
        glasses=np.array([U(0.0, 0.3)] * 3) if rng.random() < 0.7 else np.array([U(0.3, 0.8), U(0.1, 0.5), U(0.05, 0.3)]),
        light=U(0, 2 * math.pi), light_k=U(0.05, 0.3), rim=U(0.12, 0.3), tex=U(0.02, 0.08),
        hair_tex=U(0.06, 0.2), hair_period=U(0.04, 0.09), blush=U(0.0, 0.25) if rng.random() < 0.4 else 0.0,
        freckles=bool(rng.random() < 0.15), tint=np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.03, 3),
        teeth=U(0.8, 0.95),
    )
    return a


# ----------------------------------------------------------------------------------
# geometry in the face frame
# ----------------------------------------------------------------------------------


def _outline_halfwidth(v: np.ndarray, g: dict[str, Any]) -> np.ndarray:
    """Half-width of the head outline at height ``v`` (before the jaw shift)."""
    a, vj, p, cw = g["a"], g["vj"], g["p"], g["cw"]
    top = a * np.sqrt(np.clip(1.0 - v * v, 0.0, 1.0))
    t = np.clip((v - vj) / (1.0 - vj), 0.0, 1.0)
    low = cw + (a - cw) * np.power(np.clip(1.0 - np.power(t, p), 0.0, 1.0), 1.0 / p)
    return np.where(v <= 0, top, low)


def _jaw_shift(v: np.ndarray, g: dict[str, Any], spsi: float) -> np.ndarray:
    """Sideways shift of the head's rows under yaw (the chin moves with the turn)."""
    return spsi * g["jaw_shift"] * np.clip(v, 0.0, 1.0) ** 2


def _forward_u(u0: float, v: float, g: dict[str, Any], psi: float, depth: float = 0.0) -> float:
    """Frontal position ``u0`` on row ``v`` (at ``depth`` in front of the surface) -> turned ``u``."""
    r = max(float(_outline_halfwidth(np.float64(v), g)), 0.05) + depth
    lon = math.asin(max(-1.0, min(1.0, u0 / r)))
    return float(_jaw_shift(np.float64(v), g, math.sin(psi))) + r * math.sin(lon + psi)


def _mouth_mid(u0: Any, g: dict[str, Any]) -> Any:
    q = np.clip(u0 / g["mw_e"], -1.0, 1.0)
    return g["mv"] + g["smile_e"] * 0.07 * (1.0 - q * q)


def _landmarks_face_frame(g: dict[str, Any], psi: float) -> np.ndarray:
    """The landmarks in the (turned) face frame, before roll, scale and translation."""
    ex, ey = g["ex"], g["ey"]
    out = np.zeros((_NUM_L, 2))
    out[0] = (_forward_u(-ex, ey, g, psi), ey)
    out[1] = (_forward_u(ex, ey, g, psi), ey)
    out[2] = (_forward_u(0.0, g["ny"], g, psi, g["nd"]), g["ny"])
    mw, mv = g["mw_e"], g["mv"]
    out[3] = (_forward_u(-mw, mv, g, psi), mv)
    out[4] = (_forward_u(mw, mv, g, psi), mv)
    bx, by = ex + g["bdx"], g["by_e"]
    out[5] = (_forward_u(-bx, by, g, psi), by)
    out[6] = (_forward_u(bx, by, g, psi), by)
    mid0 = float(_mouth_mid(0.0, g))
    vt = mid0 - g["open_e"] * 0.5 - g["lu"]
    vb = mid0 + g["open_e"] * 0.5 + g["ll"]
    out[7] = (_forward_u(0.0, vt, g, psi), vt)
    out[8] = (_forward_u(0.0, vb, g, psi), vb)
    sp = math.sin(psi)
    r_m = float(_outline_halfwidth(np.float64(mv), g))
    sh_m = float(_jaw_shift(np.float64(mv), g, sp))
    out[9] = (sh_m - r_m, mv)
    out[10] = (sh_m + r_m, mv)
    # chin: where the face's mid-line meets the (flat) bottom of the jaw
    out[11] = (_forward_u(0.0, 1.0, g, psi), 1.0)
    out[12] = (0.0, -1.0 - g["ht"])
    return out


# ----------------------------------------------------------------------------------
# rasterisation helpers
# ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _cov(f: np.ndarray) -> np.ndarray:
    """Coverage of the region ``f <= 0``: ``f`` over its gradient (per pixel) is a signed
    distance in pixels, smoothed by a 1-px smoothstep."""
    gx = np.empty_like(f)  # central differences, one-sided at the border (as np.gradient)
    gy = np.empty_like(f)
    gx[:, 1:-1] = f[:, 2:] - f[:, :-2]
    gx[:, 1:-1] *= 0.5
    gx[:, 0] = f[:, 1] - f[:, 0]
    gx[:, -1] = f[:, -1] - f[:, -2]
    gy[1:-1] = f[2:] - f[:-2]
    gy[1:-1] *= 0.5
    gy[0] = f[1] - f[0]
    gy[-1] = f[-1] - f[-2]
    g = np.sqrt(gx * gx + gy * gy)
    t = np.clip(0.5 - f / np.maximum(g, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _over(img: np.ndarray, alpha: np.ndarray, color: np.ndarray | Sequence[float]) -> None:
    """``img <- img * (1 - alpha) + color * alpha`` in place (colour ``(3,)`` or ``(H, W, 3)``)."""
    a = alpha[..., None]
    img += (np.asarray(color, np.float32) - img) * a


def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    return np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2) - 1.0


def _segment(u: np.ndarray, v: np.ndarray, p: np.ndarray, q: np.ndarray, r: float) -> np.ndarray:
    d = q - p
    l2 = float(d @ d)
    t = np.clip(((u - p[0]) * d[0] + (v - p[1]) * d[1]) / max(l2, 1e-12), 0.0, 1.0)
    return np.sqrt((u - p[0] - t * d[0]) ** 2 + (v - p[1] - t * d[1]) ** 2) - r


# ----------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------


def _render_face(img: np.ndarray, g: dict[str, Any], ap: dict[str, Any], center: np.ndarray, s: float,
                 roll: float, psi: float, tex_rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    xs, ys = _grid(h, w)
    cr, sr = math.cos(roll), math.sin(roll)
    dx, dy = xs - np.float32(center[0]), ys - np.float32(center[1])
    inv = np.float32(1.0 / s)
    u = (dx * cr + dy * sr) * inv  # turned face frame
    v = (-dx * sr + dy * cr) * inv
    sp = math.sin(psi)
    a = g["a"]
    px = 1.0 / s  # one pixel in face units

    # --- head outline and the inverse yaw (turned frame -> frontal frame) --------
    r_row = _outline_halfwidth(v, g).astype(np.float32)
    shift = _jaw_shift(v, g, sp).astype(np.float32)
    uc = u - shift
    f_head = np.where(v <= 0, a * (np.sqrt((u / a) ** 2 + v * v) - 1.0),
                      np.maximum(np.abs(uc) - r_row, v - 1.0))
    cov_head = _cov(f_head)
    rc = np.maximum(r_row, 0.05)
    q = np.clip(uc / rc, -1.0, 1.0)
    lon = np.arcsin(q) - psi
    alon = np.abs(lon)
    u0 = np.where(alon <= math.pi / 2, rc * np.sin(lon), np.sign(lon) * rc * (1.0 + alon - math.pi / 2))
    facing = np.sqrt(np.clip(1.0 - q * q, 0.0, 1.0))  # cos of the angle to the viewer

    light = (math.cos(ap["light"]) * u / a + math.sin(ap["light"]) * v) * ap["light_k"]
    tint = ap["tint"].astype(np.float32)
    skin = ap["skin"].astype(np.float32)

    # --- shirt and neck --------------------------------------------------------
    sv = g["shirt_v"]
    f_shirt = _ellipse(u, v, 0.0, sv + 1.0, 1.9, 1.0)
    _over(img, _cov(f_shirt), (ap["shirt"] * (0.9 + 0.2 * light[..., None])).astype(np.float32))
    nc = float(_jaw_shift(np.float64(1.0), g, sp)) * 0.6
    f_neck = np.maximum(np.abs(u - nc) - g["neck_w"], 0.3 - v)
    neck_col = skin * 0.72 * tint
    cov_neck = _cov(f_neck) * (1.0 - _cov(f_shirt))
    _over(img, cov_neck, neck_col)

    # --- ears (behind the head) ------------------------------------------------
    if g["ears"]:
        ev = g["ey"] + g["ear_v"] + 0.15
        r_e = float(_outline_halfwidth(np.float64(ev), g))
        sh_e = float(_jaw_shift(np.float64(ev), g, sp))
        for side in (-1.0, 1.0):
            # the ear on the far side (the side the face turns to) hides behind the head
            k = max(0.0, 1.0 - 1.6 * max(0.0, side * sp))
            if k <= 0.05:
                continue
            cu = sh_e + side * (r_e + g["ear_w"] * 0.25 * k - 0.04)
            f_ear = _ellipse(u, v, cu, ev, g["ear_w"] * k + 0.02, g["ear_h"])
            c_ear = _cov(f_ear)
            _over(img, c_ear, skin * 0.9 * tint)
            # inner ear shadow
            f_in = _ellipse(u, v, cu + side * 0.01, ev + 0.01, (g["ear_w"] * k + 0.02) * 0.5, g["ear_h"] * 0.55)
            _over(img, _cov(f_in) * c_ear * 0.5, skin * 0.6 * tint)

    # --- hair behind the head --------------------------------------------------
    ht, hs = g["ht"], g["hs"]
    hair = ap["hair"].astype(np.float32)
    if g["hair"] != "bald":
        period = max(g["hair_period_e"], 4.0 * px)  # strands at least 4 px apart (no aliasing)
        su = np.where(np.abs(uc) < rc, u0, u)  # across the head (frontal frame), or beside it
        strands = 0.5 + 0.5 * np.sin(su * (2 * math.pi / period) + 3.0 * v)
        hair_img = hair * (1.0 - ap["hair_tex"] * strands[..., None]) * (1.0 + 0.5 * light[..., None])
        hair_img = np.clip(hair_img * tint, 0.0, 1.0)
        f_cap = np.where(v <= 0, (a + hs) * (np.sqrt((u / (a + hs)) ** 2 + (v / (1.0 + ht)) ** 2) - 1.0),
                         np.abs(u) - (a + hs))
        if g["hair"] == "long":
            # a curtain of hair behind the head, widening a little, rounded at the ends
            ln, wd = g["long_len"], a + hs
            flare = g["long_flare"] * np.clip(v, 0.0, None)
            f_curtain = np.maximum(np.abs(u) - (wd + flare), _ellipse(np.abs(u) - wd * 0.3, v, 0.0, 0.0,
                                                                       wd * 0.7 + g["long_flare"] * ln, ln))
            f_back = np.minimum(np.where(v > 0, f_curtain, np.abs(u) - wd), f_cap)
        elif g["hair"] == "volume":
            f_back = _ellipse(u, v, 0.0, -0.1, a + hs, 0.9 + ht)
        if g["hair"] in ("long", "volume"):
            _over(img, _cov(f_back), hair_img * 0.8)

    # --- the face layer -----------------------------------------------------
    shade = (1.0 + light) * (1.0 - ap["rim"] * (1.0 - facing))
    face = skin * shade[..., None]
    noise = _smooth_noise(tex_rng, h, w, 1, cell=max(2.0, 0.25 * s), octaves=2)[..., 0]
    face *= (1.0 + ap["tex"] * (noise - 0.5) * 2.0)[..., None]
    face *= tint
    if ap["blush"] > 0:
        f_bl = np.minimum(_ellipse(u0, v, -g["ex"], g["ny"] - 0.02, 0.18, 0.12),
                          _ellipse(u0, v, g["ex"], g["ny"] - 0.02, 0.18, 0.12))
        bl = np.clip(-f_bl, 0.0, 1.0) * ap["blush"]
        _over(face, bl, np.array([0.85, 0.35, 0.35], np.float32) * face.mean(axis=2, keepdims=True) * 1.6)
    if ap["freckles"]:
        n = int(tex_rng.integers(10, 30))
        fu = tex_rng.uniform(0.1, 0.5, n) * tex_rng.choice((-1.0, 1.0), n)
        fv = g["ny"] + tex_rng.uniform(-0.25, 0.05, n)
        fr = tex_rng.uniform(0.012, 0.025, n)
        d = np.sqrt((u0[None] - fu[:, None, None].astype(np.float32)) ** 2
                    + (v[None] - fv[:, None, None].astype(np.float32)) ** 2) - fr[:, None, None].astype(np.float32)
        _over(face, _cov(d.min(axis=0)) * 0.35, skin * np.array([0.6, 0.42, 0.3], np.float32))

    # brows
    ex, ey = g["ex"], g["ey"]
    bx, by, bw, bt = ex + g["bdx"], g["by_e"], g["bw"], g["bt"]
    f_brow = None
    for side in (-1.0, 1.0):
        du = u0 - side * bx
        t = np.clip(du / bw, -1.0, 1.0) * side  # -1 inner end, +1 outer end
        mid = by + g["arch"] * (t * t) - g["tilt"] * t
        half = bt * 0.5 * (1.0 - 0.45 * np.clip(t, 0.0, 1.0) ** 2)
        fb = np.maximum(np.abs(v - mid) - np.maximum(half, 0.6 * px), np.abs(du) - bw)
        f_brow = fb if f_brow is None else np.minimum(f_brow, fb)
    _over(face, _cov(f_brow) * 0.9, ap["brow"].astype(np.float32))

    # eyes: lid line, white, iris, pupil, highlight
    ew, eh_o = g["ew"], g["eh"] * g["eye_open_e"]
    lash = np.minimum(skin * 0.25, 0.18).astype(np.float32)
    f_lash = np.minimum(_ellipse(u0, v, -ex, ey - 0.012, ew + 0.018, eh_o + 0.03 + 0.8 * px),
                        _ellipse(u0, v, ex, ey - 0.012, ew + 0.018, eh_o + 0.03 + 0.8 * px))
    _over(face, _cov(f_lash) * 0.9, lash)
    f_white = np.minimum(_ellipse(u0, v, -ex, ey, ew, eh_o), _ellipse(u0, v, ex, ey, ew, eh_o))
    c_white = _cov(f_white)
    _over(face, c_white, np.array([0.93, 0.92, 0.9], np.float32) * np.clip(shade, 0.6, 1.1)[..., None])
    ri = g["eh"] * g["iris"]
    f_iris = np.minimum(np.sqrt((u0 + ex) ** 2 + (v - ey) ** 2), np.sqrt((u0 - ex) ** 2 + (v - ey) ** 2))
    _over(face, _cov(f_iris - ri) * c_white, ap["iris"].astype(np.float32))
    _over(face, _cov(f_iris - ri * 0.45) * c_white, np.array([0.03, 0.03, 0.04], np.float32))
    if s > 40:  # catch-lights, only where an eye spans enough pixels
        f_hl = np.minimum(np.sqrt((u0 + ex - 0.3 * ri) ** 2 + (v - ey + 0.3 * ri) ** 2),
                          np.sqrt((u0 - ex - 0.3 * ri) ** 2 + (v - ey + 0.3 * ri) ** 2)) - ri * 0.18
        _over(face, _cov(f_hl) * c_white * 0.8, np.array([1.0, 1.0, 1.0], np.float32))

    # nose (drawn in the turned frame from forward-mapped points; the tip sticks out)
    ny, nw, nd = g["ny"], g["nw"], g["nd"]
    tip = np.array([_forward_u(0.0, ny, g, psi, nd), ny])
    root = np.array([_forward_u(0.0, ey + 0.08, g, psi, 0.25 * nd), ey + 0.08])
    side = 1.0 if math.cos(ap["light"]) < 0 else -1.0  # shadow on the side away from the light
    wing = np.array([_forward_u(side * nw * 0.45, ny - 0.03, g, psi, 0.5 * nd), ny - 0.03])
    f_line = _segment(u, v, root, wing, max(0.02, 0.5 * px))
    dark = skin * 0.55 * tint
    _over(face, _cov(f_line) * 0.45, dark)
    nl = np.array([_forward_u(-nw * 0.45, ny + 0.35 * nw * 0.5, g, psi, 0.4 * nd), ny + 0.175 * nw])
    nr = np.array([_forward_u(nw * 0.45, ny + 0.35 * nw * 0.5, g, psi, 0.4 * nd), ny + 0.175 * nw])
    f_under = _ellipse(u, v, tip[0], ny + nw * 0.5, nw * 0.65, nw * 0.18)
    _over(face, _cov(f_under) * 0.45, dark)
    f_bulb = _ellipse(u, v, tip[0], tip[1], nw * 0.42, nw * 0.36)
    _over(face, _cov(f_bulb) * 0.25, np.clip(skin * 1.15 * tint, 0, 1))
    f_nos = np.minimum(_ellipse(u, v, nl[0], nl[1], max(nw * 0.2, 0.6 * px), max(nw * 0.12, 0.6 * px)),
                       _ellipse(u, v, nr[0], nr[1], max(nw * 0.2, 0.6 * px), max(nw * 0.12, 0.6 * px)))
    _over(face, _cov(f_nos) * 0.8, skin * 0.3 * tint)

    # mouth: lips, the dark opening (or the seam between closed lips), teeth
    mw, op = g["mw_e"], g["open_e"]
    qm = np.clip(u0 / mw, -1.0, 1.0)
    prof = 1.0 - qm * qm
    sq = np.sqrt(prof)
    mid = _mouth_mid(u0, g)
    ho = 0.5 * op * prof ** 0.7
    top = mid - ho - g["lu"] * sq
    bot = mid + ho + g["ll"] * sq
    f_lips = np.maximum(np.maximum(top - v, v - bot), np.abs(u0) - mw)
    _over(face, _cov(f_lips), (ap["lips"] * shade[..., None] * tint).astype(np.float32))
    f_gap = np.maximum(np.abs(v - mid) - np.maximum(ho, 0.6 * px), np.abs(u0) - mw)
    _over(face, _cov(f_gap) * 0.92, np.array([0.18, 0.06, 0.06], np.float32) * (0.6 + 0.4 * skin))
    if op > 0.04:
        f_teeth = np.maximum(np.maximum(mid - ho - v, v - (mid - ho + 0.45 * op)), np.abs(u0) - 0.7 * mw)
        _over(face, _cov(f_teeth) * _cov(f_gap) * 0.9, np.array([ap["teeth"]] * 3, np.float32))

    # the face layer onto the image
    _over(img, cov_head, np.clip(face, 0.0, 1.0))

    # --- hair on top ----------------------------------------------------------
    if g["hair"] != "bald":
        aq = np.clip(np.abs(u0) / rc, 0.0, 1.0)
        k0 = g["hk"]
        tt = np.clip((aq - k0) / (1.0 - k0), 0.0, 1.0)
        hv = g["hl"] + (g["hside"] - g["hl"]) * tt * tt * (3.0 - 2.0 * tt)
        if g["fringe"]:
            fl = by - bt - g["fringe_drop"] + g["fringe_slant"] * u0 \
                + g["fringe_jag"] * np.abs(np.sin(u0 * g["fringe_freq"]))
            # the fringe stops above the brows (they stay visible, with their landmarks)
            hv = np.maximum(hv, np.minimum(fl, by - 0.5 * bt - 0.08))
        # the hair at the temples stays above the eyes (a smooth clamp keeps hv continuous)
        te = np.clip((np.abs(u0) - (ex + ew + 0.02)) / 0.1, 0.0, 1.0)
        hv = np.minimum(hv, ey - g["eh"] - 0.05 + 2.0 * te * te * (3.0 - 2.0 * te))
        f_hair = np.maximum(f_cap, v - hv)
        _over(img, _cov(f_hair), hair_img)

    # --- glasses ---------------------------------------------------------------
    if g["glasses"]:
        gx, gy = ew * g["glass_rx"], max(g["eh"] * g["glass_ry"], ew * 0.75)
        rim = max(0.025, 1.0 * px)
        e1 = _ellipse(u0, v, -ex, ey, gx, gy)
        e2 = _ellipse(u0, v, ex, ey, gx, gy)
        lens = np.minimum(e1, e2)
        f_rim = np.abs(lens) * min(gx, gy) - rim * 0.5
        f_bridge = np.maximum(np.abs(v - (ey - 0.3 * gy)) - rim * 0.5, np.abs(u0) - (ex - 0.9 * gx))
        f_arm = np.maximum(np.abs(v - (ey - 0.3 * gy)) - rim * 0.5, np.abs(np.abs(u0) - (ex + gx + 0.5)) - 0.5)
        c_g = _cov(np.minimum(np.minimum(f_rim, f_bridge), f_arm)) * np.maximum(cov_head, _cov(lens))
        _over(img, _cov(lens) * 0.12, np.array([0.8, 0.9, 1.0], np.float32))
        _over(img, c_g, ap["glasses"].astype(np.float32))


def _geometry_effective(g: dict[str, Any], expression: bool) -> None:
    """Fill the ``*_e`` fields (expression applied, or a neutral face)."""
    if expression:
        smile, op, eo, raise_ = g["smile"], g["mouth_open"], g["eye_open"], g["brow_raise"]
    else:
        smile, op, eo, raise_ = 0.15, 0.0, 0.85, 0.0
    g["smile_e"], g["open_e"], g["eye_open_e"], g["raise_e"] = smile, op, eo, raise_
    g["mw_e"] = g["mw"] * (1.0 + 0.12 * max(smile, 0.0))
    g["by_e"] = g["ey"] - g["eh"] - g["brow_gap"] - raise_


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, val in d.items():
        if isinstance(val, np.ndarray):
            out[k] = [float(x) for x in val.ravel()]
        elif isinstance(val, (bool, np.bool_)):
            out[k] = bool(val)
        elif isinstance(val, (int, np.integer)):
            out[k] = int(val)
        elif isinstance(val, (float, np.floating)):
            out[k] = float(val)
        else:
            out[k] = val
    return out


def make_face(
    rng: np.random.Generator | int,
    image_size: int | Sequence[int] = 64,
    *,
    roll: float | tuple[float, float] = (-15.0, 15.0),
    yaw: float | tuple[float, float] = (-0.35, 0.35),
    scale: float | tuple[float, float] = (0.75, 0.95),
    shift: float = 0.06,
    expression: bool = True,
    background: str = "mixed",
    pixel_noise: float = 0.02,
) -> FaceSample:
    """One procedural face with exact landmarks (factorized spatial embeddings chapter,
    book/ch03-fse).

    Parameters
    ----------
    rng: a ``numpy.random.Generator`` or a non-negative int seed.
    image_size: image side (int) or ``(H, W)``; at least 16.
    roll: in-plane rotation in degrees, drawn uniformly from ``(low, high)``; a number
        ``x`` means ``(-|x|, |x|)``. Positive roll turns the face clockwise on screen
        (``y`` points down): the eye line makes the angle ``roll`` with the ``x`` axis.
    yaw: head turn as a fraction of 90 degrees, in ``[-0.5, 0.5]`` (number: ``+-|x|``).
        Positive yaw moves the features to the image's right.
    scale: height of the head outline (top of the hair to the chin) over the image side
        (the smaller side for non-square images); a number is used as is.
    shift: the face centre moves by up to ``shift`` times the image size in ``x`` and
        ``y``; the move is reduced where needed to keep every landmark at least one
        pixel inside the image.
    expression: if False the face is neutral (slight smile, closed mouth, eyes 85 %
        open, brows at rest); everything else stays the same as with ``True``.
    background: one of :data:`kpedu.data.BACKGROUND_KINDS`.
    pixel_noise: maximum standard deviation of the added Gaussian pixel noise.

    The random draws are split into independent streams (geometry, appearance,
    background, texture, noise), so changing ``roll``, ``yaw``, ``scale``, ``expression``
    or ``background`` for the same seed changes only that aspect of the face (the
    ``shift`` clamping aside).

    Returns
    -------
    :class:`FaceSample` with the ``(H, W, 3)`` image, the ``(L, 2)`` landmarks
    (:data:`FACE_LANDMARKS` order) and the sampled parameters.
    """
    rng = as_rng(rng)
    h, w = parse_size(image_size, name="image_size")
    roll_r, yaw_r, scale_r = _check_options(roll, yaw, scale, shift, expression, background, pixel_noise)
    shift, pixel_noise = float(shift), float(pixel_noise)
    seeds = rng.integers(0, 2**63 - 1, size=6)
    pose_rng, geo_rng, app_rng, bg_rng, tex_rng, noise_rng = (np.random.default_rng(int(x)) for x in seeds)

    t_roll, t_yaw, t_scale, t_sx, t_sy = pose_rng.random(5)
    roll_deg = _lerp(roll_r, t_roll)
    yaw_f = _lerp(yaw_r, t_yaw)
    fill = _lerp(scale_r, t_scale)
    g = _sample_geometry(geo_rng)
    _geometry_effective(g, bool(expression))
    ap = _sample_appearance(app_rng)
    g["hair_period_e"] = ap["hair_period"]

    psi = yaw_f * math.pi / 2
    roll_rad = math.radians(roll_deg)
    side = min(h, w)
    s = fill * side / (2.0 + g["ht"])  # pixels per face unit
    cr, sr = math.cos(roll_rad), math.sin(roll_rad)
    R = np.array([[cr, -sr], [sr, cr]])
    # the middle of the head box (top of the hair to the chin) goes to the image centre
    img_c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    center = img_c - R @ np.array([0.0, -g["ht"] / 2.0]) * s
    lm_face = _landmarks_face_frame(g, psi)
    lm0 = lm_face @ R.T * s + center
    off = np.array([(2 * t_sx - 1) * shift * w, (2 * t_sy - 1) * shift * h])
    for k, n in ((0, w), (1, h)):
        lo, hi = 0.5 - lm0[:, k].min(), (n - 1.5) - lm0[:, k].max()
        off[k] = (lo + hi) / 2.0 if lo > hi else min(max(off[k], lo), hi)
    center = center + off
    landmarks = (lm0 + off).astype(np.float32)

    img = _background_hwc(bg_rng, h, w, background).copy()
    _render_face(img, g, ap, center, s, roll_rad, psi, tex_rng)
    if pixel_noise > 0:
        std = float(noise_rng.uniform(0, pixel_noise))
        img += noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(std)
    np.clip(img, 0.0, 1.0, out=img)

    params = {"roll": roll_deg, "yaw": yaw_f, "scale": fill, "center": center, "pixels_per_unit": s,
              "background": background}
    params.update({k: val for k, val in g.items() if not k.endswith("_e")})
    params.update(smile_applied=g["smile_e"], mouth_open_applied=g["open_e"],
                  eye_open_applied=g["eye_open_e"], brow_raise_applied=g["raise_e"])
    params.update({f"{k}_color" if isinstance(val, np.ndarray) else k: val for k, val in ap.items()})
    return FaceSample(image=img.astype(np.float32, copy=False), landmarks=landmarks, params=_jsonable(params))


# ----------------------------------------------------------------------------------
# data sets
# ----------------------------------------------------------------------------------


def _check_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return int(value)


class SyntheticFaces(torch.utils.data.Dataset):
    """An on-the-fly data set of procedural faces (factorized spatial embeddings chapter,
    book/ch03-fse).

    Item ``i`` is generated by :func:`make_face` from ``numpy.random.default_rng([seed, i])``,
    so it does not depend on the reading order nor on the number of DataLoader workers.
    Each item is a dict: ``image (3, H, W)`` float32 in [0, 1], ``landmarks (L, 2)``
    float32 (``(x, y)`` pixels, :data:`FACE_LANDMARKS` order) and ``index`` (int64 scalar).
    Extra keyword arguments go to :func:`make_face` (e.g. ``roll=0.0``, ``background="noise"``).
    """

    def __init__(self, length: int, image_size: int | Sequence[int] = 64, seed: int = 0, **kwargs: Any) -> None:
        self.length = _check_int(length, "length")
        self.seed = _check_int(seed, "seed")
        parse_size(image_size, name="image_size")
        try:
            inspect.signature(make_face).bind(None, image_size, **kwargs)
        except TypeError as e:
            raise TypeError(f"invalid keyword for make_face: {e}") from None
        _check_options(**{**_DEFAULTS, **kwargs})
        self.image_size = image_size
        self.kwargs = dict(kwargs)

    def __len__(self) -> int:
        return self.length

    def sample(self, i: int) -> FaceSample:
        """Item ``i`` as a :class:`FaceSample` (numpy arrays and parameters); a negative
        ``i`` counts from the end, as in a list."""
        i = checks.index(i, self.length, "index")
        return make_face(np.random.default_rng([self.seed, i]), self.image_size, **self.kwargs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = checks.index(i, self.length, "index")
        out = self.sample(i).to_torch()
        out["index"] = torch.tensor(i, dtype=torch.int64)
        return out


_DEFAULTS: dict[str, Any] = {
    k: p.default for k, p in inspect.signature(make_face).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


@dataclass
class FaceSet:
    """Faces pre-generated in memory (factorized spatial embeddings chapter, book/ch03-fse).

    Attributes
    ----------
    images: ``(N, 3, H, W)`` uint8 (a quarter of the memory of float32).
    landmarks: ``(N, L, 2)`` float32 ``(x, y)`` pixels, :data:`FACE_LANDMARKS` order.
    """

    images: torch.Tensor
    landmarks: torch.Tensor

    def __post_init__(self) -> None:
        images = self.images
        if isinstance(images, np.ndarray) and images.dtype == np.uint8:
            images = torch.from_numpy(images)
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise TypeError(f"images must be a uint8 tensor of shape (N, 3, H, W), got {checks.describe(self.images)}; "
                            "convert float images in [0, 1] with (x * 255).round().to(torch.uint8)")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got shape {tuple(images.shape)}")
        keep = isinstance(self.landmarks, torch.Tensor) and self.landmarks.dtype.is_floating_point
        landmarks = checks.points(self.landmarks, "landmarks", ndim=3, allow_nan=False, shape_text="(N, L, 2)",
                                  dtype=self.landmarks.dtype if keep else torch.float32)
        if landmarks.shape[0] != images.shape[0]:
            raise ValueError(f"landmarks must have shape (N, L, 2) with the N = {images.shape[0]} of images, "
                             f"got shape {tuple(landmarks.shape)}")
        self.images, self.landmarks = images, landmarks

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _index(self, index: Any) -> Any:
        """``index`` checked against the number of faces: None (all), an int, a slice, a
        list / array / tensor of ints (negative ones count from the end) or a boolean mask."""
        n = len(self)
        if index is None:
            return slice(None)
        if isinstance(index, slice):
            return index
        if isinstance(index, range):
            index = list(index)
        if isinstance(index, (bool, np.bool_)) or isinstance(index, (str, bytes)):
            raise TypeError(f"index must be None, an int, a slice, a list or a tensor; got {checks.describe(index)}")
        if isinstance(index, (int, np.integer)):
            return [checks.index(index, n, "index")]
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            t = index.detach().cpu() if isinstance(index, torch.Tensor) else torch.as_tensor(np.asarray(index))
            if t.dtype == torch.bool:
                if tuple(t.shape) != (n,):
                    raise IndexError(f"index: a boolean mask must have shape ({n},), got shape {tuple(t.shape)}")
                return t
            if t.dtype.is_floating_point or t.dtype.is_complex:
                raise TypeError(f"index must hold integers (or booleans), got {checks.describe(index)}")
            if t.numel() and (int(t.min()) < -n or int(t.max()) >= n):
                bad = int(t.min()) if int(t.min()) < -n else int(t.max())
                raise IndexError(f"index {bad} is out of range for {n} faces")
            return t.long().reshape(-1)
        raise TypeError(f"index must be None, an int, a slice, a list or a tensor; got {checks.describe(index)}")

    def float_images(self, index: Any = None) -> torch.Tensor:
        """Images ``(n, 3, H, W)`` as float32 in [0, 1]; ``index``: None (all), an int,
        a slice, a list or a tensor of indices (or a boolean mask)."""
        return self.images[self._index(index)].float().div_(255.0)

    def subset(self, index: Any) -> "FaceSet":
        """The faces selected by ``index`` (as in :meth:`float_images`) as a new :class:`FaceSet`."""
        i = self._index(index)
        return FaceSet(self.images[i], self.landmarks[i])

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        h, w = int(self.images.shape[2]), int(self.images.shape[3])
        if h != w:
            raise ValueError(f"the images are not square ({h} x {w}); use images.shape")
        return h

    def inter_ocular(self) -> torch.Tensor:
        """``(N,)`` distance in pixels between the ``left_eye`` and ``right_eye`` landmarks."""
        return (self.landmarks[:, 1] - self.landmarks[:, 0]).norm(dim=-1)


def make_faces(n: int, image_size: int = 64, seed: int = 0, progress: bool = False, **kwargs: Any) -> FaceSet:
    """Generate ``n`` faces into memory (factorized spatial embeddings chapter, book/ch03-fse).

    Face ``i`` is ``SyntheticFaces(n, image_size, seed, **kwargs)[i]`` with the image
    rounded to uint8. ``progress`` shows a tqdm bar. About 3-5 ms per 64 x 64 face on
    one CPU core.
    """
    n = _check_int(n, "n")
    ds = SyntheticFaces(n, image_size, seed, **kwargs)
    h, w = parse_size(image_size, name="image_size")
    images = torch.empty((n, 3, h, w), dtype=torch.uint8)
    landmarks = torch.empty((n, _NUM_L, 2), dtype=torch.float32)
    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"generating {n} faces", mininterval=0.5)
    for i in it:
        s = ds.sample(i)
        images[i] = torch.from_numpy(np.rint(s.image.transpose(2, 0, 1) * 255.0).astype(np.uint8))
        landmarks[i] = torch.from_numpy(s.landmarks)
    return FaceSet(images, landmarks)
