"""Synthetic people: articulated stick figures rendered with exact COCO-17 keypoints.

This is the data set of the Foundations chapter (and the training data of the later
chapters): images are generated on the fly, so nothing has to be downloaded, and every
keypoint is known exactly, including those that are hidden or cut off by the border.

How a person is made
--------------------
1. **Body.** Bone lengths are fractions of the standing height (head 12.5 %, torso 29 %,
   thigh 24.5 %, ...), each jittered per person, with a random build (limb thickness).
2. **Pose.** Torso lean, shoulder and hip tilt, arm abduction (arms down, horizontal,
   raised above the head or crossing the body), elbow and knee flexion, leg spread,
   per-bone foreshortening, head roll, nod and yaw. The head is a sphere: eyes, ears and
   nose sit at fixed longitudes and move across the face as the head turns; a feature
   on the far side of the sphere (the far eye in profile) is *hidden behind the head*.
3. **Facing.** A person faces the camera with probability ``1 - p_back`` (default 0.9),
   with a body yaw of up to 46 degrees, so the person's *left* side is mostly on the
   image's *right*; otherwise the person faces away and left/right are mirrored. The
   default keeps left/right learnable from appearance (faces are visible when frontal)
   while not making it a function of image position alone.
4. **Placement.** The body is scaled, rotated in the image plane and translated.
5. **Rendering** (painter's algorithm). Head (ellipse with hair, face, eyes, nose,
   mouth, ears), neck, torso (quadrilateral between shoulders and hips), limbs as
   capsules, hands and feet. Shirt, trousers and skin have their own colour and texture
   (solid, stripes, checks, noise) with cylinder shading. Each part has a random depth
   (arms may pass in front of or behind the torso and head), and people are drawn back
   to front, so parts occlude each other and people occlude each other.

Visibility (COCO convention) is read off the rendering: a keypoint inside the image has
``v = 2`` if the pixel under it shows one of the body parts the keypoint belongs to
(e.g. the elbow: upper arm or forearm of the same person), otherwise ``v = 1``
(covered by another part of the same person or by another person; face points hidden
behind the head in profile are also ``v = 1``; such a point projects inside the head's
outline, but the pixel under it may lie just outside the drawn head, by less than a
pixel, when the point sits on the outline). Keypoints outside the image,
``x`` outside ``[-0.5, W - 0.5]`` or ``y`` outside ``[-0.5, H - 0.5]``, get ``v = 0``.
Coordinates are always exact, whatever ``v`` is.

Conventions: the pixel in row ``i``, column ``j`` has its centre at ``(x, y) = (j, i)``.
"""
from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .. import checks
from .backgrounds import BACKGROUND_KINDS, _background_hwc, _smooth_noise, as_rng, parse_size
from .skeleton import COCO17, Skeleton

__all__ = [
    "Sample",
    "make_person",
    "make_scene",
    "SyntheticPeople",
    "collate_people",
    "PART_NAMES",
    "KEYPOINT_PARTS",
    "NUM_PARTS",
    "keypoint_part_table",
    "render_labels_to_parts",
    "PERSON_FIELDS",
]

# ----------------------------------------------------------------------------------
# body parts and which keypoints belong to them
# ----------------------------------------------------------------------------------

#: Body parts of a synthetic person (indices used in :attr:`Sample.part_map`).
PART_NAMES: tuple[str, ...] = (
    "head", "neck", "torso",
    "left_upper_arm", "left_forearm", "right_upper_arm", "right_forearm",
    "left_thigh", "left_shin", "right_thigh", "right_shin",
)
NUM_PARTS = len(PART_NAMES)
_P = {n: i for i, n in enumerate(PART_NAMES)}

#: For each COCO-17 keypoint, the body parts it belongs to: the keypoint is visible
#: (``v = 2``) when the pixel under it shows one of these parts of the same person.
KEYPOINT_PARTS: dict[str, tuple[str, ...]] = {
    "nose": ("head",),
    "left_eye": ("head",),
    "right_eye": ("head",),
    "left_ear": ("head",),
    "right_ear": ("head",),
    "left_shoulder": ("torso", "left_upper_arm"),
    "right_shoulder": ("torso", "right_upper_arm"),
    "left_elbow": ("left_upper_arm", "left_forearm"),
    "right_elbow": ("right_upper_arm", "right_forearm"),
    "left_wrist": ("left_forearm",),
    "right_wrist": ("right_forearm",),
    "left_hip": ("torso", "left_thigh"),
    "right_hip": ("torso", "right_thigh"),
    "left_knee": ("left_thigh", "left_shin"),
    "right_knee": ("right_thigh", "right_shin"),
    "left_ankle": ("left_shin",),
    "right_ankle": ("right_shin",),
}
_K17 = COCO17.keypoint_names
_KP_PART_TABLE = np.zeros((len(_K17), NUM_PARTS), dtype=bool)
for _k, _name in enumerate(_K17):
    for _part in KEYPOINT_PARTS[_name]:
        _KP_PART_TABLE[_k, _P[_part]] = True
_KP_PART_TABLE.setflags(write=False)
(NOSE, LEYE, REYE, LEAR, REAR, LSH, RSH, LEL, REL, LWR, RWR, LHIP, RHIP, LKN, RKN, LAN, RAN) = range(17)


def keypoint_part_table() -> np.ndarray:
    """Boolean ``(17, NUM_PARTS)`` table: ``T[k, p]`` is True if COCO keypoint ``k``
    belongs to body part ``p`` (Foundations chapter)."""
    return _KP_PART_TABLE.copy()


def render_labels_to_parts(part_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a :attr:`Sample.part_map` into ``(person, part)`` index maps.

    Foundations chapter. Background pixels get ``person = part = -1``.
    """
    arr = checks.as_array(part_map, "part_map")
    if arr.ndim != 2:
        raise ValueError(f"part_map must have shape (H, W), got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr != np.round(arr)).any() or (arr < 0).any():
        raise ValueError("part_map must hold integer labels >= 0 (0: background, "
                         "person * NUM_PARTS + part + 1), got NaN, fractions or negative values")
    lab = arr.astype(np.int64) - 1
    person = np.where(lab >= 0, lab // NUM_PARTS, -1)
    part = np.where(lab >= 0, lab % NUM_PARTS, -1)
    return person, part


# ----------------------------------------------------------------------------------
# the sample
# ----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One synthetic image with its exact annotations (Foundations chapter).

    ``N`` people, ``K`` keypoints, image ``H x W``. Person 0 of :func:`make_person` is the
    main (centred) person; the others are distractors.

    Attributes
    ----------
    image: ``(3, H, W)`` float32 in [0, 1].
    keypoints: ``(N, K, 2)`` float32, exact ``(x, y)`` (also for ``v = 0``).
    visible: ``(N, K)`` uint8, COCO visibility 0 (outside the image), 1 (covered), 2 (visible).
    boxes: ``(N, 4)`` float32 ``(x, y, w, h)``: tight box of the person's drawn pixels
        (occluded ones included), clipped to the image, with pixel ``j`` covering
        ``[j - 0.5, j + 0.5]``.
    areas: ``(N,)`` float32, number of visible pixels of the person (COCO "area").
    masks: ``(N, H, W)`` bool, visible pixels of each person.
    head_sizes: ``(N,)`` float32, head height in px (the PCKh normaliser).
    centers: ``(N, 2)`` float32, torso centre (mean of shoulders and hips), exact.
    scales: ``(N,)`` float32, the person's standing height in px (pose independent).
    part_map: ``(H, W)`` int32, 0 for background, else ``person * NUM_PARTS + part + 1``
        (see :data:`PART_NAMES` and :func:`render_labels_to_parts`).
    """

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    masks: np.ndarray
    head_sizes: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    part_map: np.ndarray

    @property
    def num_people(self) -> int:
        """``N``."""
        return int(self.keypoints.shape[0])

    @property
    def height(self) -> int:
        return int(self.image.shape[1])

    @property
    def width(self) -> int:
        return int(self.image.shape[2])

    def to_torch(self, masks: bool = True, part_map: bool = False) -> dict[str, torch.Tensor]:
        """The sample as a dict of torch tensors (same names, shapes and dtypes).

        ``masks`` / ``part_map`` choose whether those (large) fields are included.
        """
        out = {
            "image": torch.from_numpy(np.ascontiguousarray(self.image)),
            "keypoints": torch.from_numpy(np.ascontiguousarray(self.keypoints)),
            "visible": torch.from_numpy(np.ascontiguousarray(self.visible)),
            "boxes": torch.from_numpy(np.ascontiguousarray(self.boxes)),
            "areas": torch.from_numpy(np.ascontiguousarray(self.areas)),
            "head_sizes": torch.from_numpy(np.ascontiguousarray(self.head_sizes)),
            "centers": torch.from_numpy(np.ascontiguousarray(self.centers)),
            "scales": torch.from_numpy(np.ascontiguousarray(self.scales)),
        }
        if masks:
            out["masks"] = torch.from_numpy(np.ascontiguousarray(self.masks))
        if part_map:
            out["part_map"] = torch.from_numpy(np.ascontiguousarray(self.part_map))
        return out


# ----------------------------------------------------------------------------------
# appearance
# ----------------------------------------------------------------------------------

_SKIN = np.array(
    [
        (1.00, 0.87, 0.77), (0.96, 0.80, 0.69), (0.92, 0.72, 0.58), (0.85, 0.65, 0.50),
        (0.76, 0.57, 0.42), (0.62, 0.44, 0.31), (0.48, 0.33, 0.23), (0.36, 0.24, 0.17),
    ],
    np.float32,
)
_HAIR = np.array(
    [(0.08, 0.07, 0.06), (0.22, 0.14, 0.08), (0.42, 0.28, 0.14), (0.82, 0.68, 0.40),
     (0.55, 0.22, 0.10), (0.62, 0.62, 0.62)],
    np.float32,
)
_TROUSERS = np.array(
    [(0.18, 0.26, 0.45), (0.10, 0.10, 0.12), (0.70, 0.62, 0.45), (0.40, 0.40, 0.42),
     (0.30, 0.22, 0.15)],
    np.float32,
)


def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    h = rng.random()
    sat, val = rng.uniform(*s), rng.uniform(*v)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    return np.asarray([(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i], np.float32)


class _Material:
    """Colour and texture of a body region: solid, stripes, checks or noise."""

    __slots__ = ("kind", "c1", "c2", "period", "ca", "sa", "phase", "duty", "tile", "tscale")

    def __init__(self, kind: int, c1: np.ndarray, c2: np.ndarray, period: float = 8.0,
                 angle: float = 0.0, phase: float = 0.0, duty: float = 0.5,
                 tile: np.ndarray | None = None) -> None:
        self.kind = kind
        self.c1 = np.asarray(c1, np.float32)
        self.c2 = np.asarray(c2, np.float32)
        self.period = max(float(period), 2.0)
        self.ca, self.sa = math.cos(angle), math.sin(angle)
        self.phase, self.duty = phase, duty
        self.tile = tile
        self.tscale = 1.0

    def colors(self, xs: np.ndarray, ys: np.ndarray, shade: np.ndarray) -> np.ndarray:
        if self.kind == 0:
            col = np.broadcast_to(self.c1, (xs.shape[0], 3))
        else:
            u = xs * self.ca + ys * self.sa
            if self.kind == 1:  # stripes
                t = (np.mod(u / self.period + self.phase, 1.0) < self.duty).astype(np.float32)
            elif self.kind == 2:  # checks
                v = -xs * self.sa + ys * self.ca
                t = (np.mod(np.floor(u / self.period + self.phase) + np.floor(v / self.period), 2.0)).astype(np.float32)
            else:  # smooth noise looked up in a tile
                tile = self.tile
                n = tile.shape[0]
                v = -xs * self.sa + ys * self.ca
                iu = (u * self.tscale).astype(np.int64) % n
                iv = (v * self.tscale).astype(np.int64) % n
                t = tile[iv, iu]
            col = self.c1 + (self.c2 - self.c1) * t[:, None]
        return col * shade[:, None]


def _random_material(rng: np.random.Generator, base: np.ndarray, height_px: float, angle: float,
                     tile: np.ndarray, probs: Sequence[float]) -> _Material:
    kind = int(rng.choice(4, p=probs))
    if kind == 0:
        c2 = base
    elif rng.random() < 0.5:  # a darker / lighter shade of the same colour
        c2 = np.clip(base * rng.uniform(0.35, 0.7) if base.mean() > 0.4 else base + rng.uniform(0.25, 0.5), 0, 1)
    else:
        c2 = _hsv(rng, (0.0, 0.8), (0.1, 1.0))
    period = max(2.0, height_px * rng.uniform(0.025, 0.07))
    ang = angle + (0.0 if rng.random() < 0.6 else math.pi / 2) + rng.normal(0, 0.15)
    m = _Material(kind, base, c2, period, ang, rng.random(), rng.uniform(0.3, 0.6), tile)
    m.tscale = 1.0 / max(0.6, height_px * rng.uniform(0.004, 0.012))
    return m


# ----------------------------------------------------------------------------------
# the body model (local frame: height 1, pelvis at the origin, y down)
# ----------------------------------------------------------------------------------


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


class _Body:
    """A posed person: points in some frame plus radii and rendering attributes."""

    def __init__(self) -> None:
        self.pts: dict[str, np.ndarray] = {}
        self.rad: dict[str, float] = {}
        self.head_up = np.array([0.0, -1.0])
        self.psi = 0.0  # head yaw (0: facing the camera)
        self.face_front = np.ones(5, bool)  # nose, eyes, ears on the visible hemisphere
        self.features: dict[str, tuple[float, float]] = {}  # head-frame (u, v) / (r_u, r_v)
        self.depth: dict[str, float] = {}
        self.height = 1.0
        self.rotation = 0.0
        self.long_sleeves = True
        self.shorts = False
        self.bald = False
        self.hairline = -0.35

    # points that define the person's extent (for framing)
    def extent_points(self) -> np.ndarray:
        p = self.pts
        r = max(self.rad["head_u"], self.rad["head_v"])
        hc = p["head_c"]
        pts = [p[k] for k in ("kp",)][0]
        extra = [hc + np.array([dx, dy]) for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r))]
        extra += [p["l_hand"], p["r_hand"], p["l_toe"], p["r_toe"]]
        return np.concatenate([pts, np.stack(extra)], axis=0)


def _sample_body(rng: np.random.Generator, p_back: float) -> _Body:
    b = _Body()
    j = lambda lo=0.92, hi=1.08: rng.uniform(lo, hi)  # noqa: E731
    head_h = 0.135 * j(0.9, 1.12)
    r_v = head_h / 2
    r_u = r_v * rng.uniform(0.74, 0.86)
    neck_len = 0.03 * j(0.7, 1.3)
    torso_len = 0.29 * j()
    sw = 0.235 * j(0.85, 1.15)
    hw = 0.165 * j(0.85, 1.2)
    ua, fa, th, sh = 0.17 * j(), 0.15 * j(), 0.245 * j(), 0.235 * j()
    build = rng.uniform(0.75, 1.3)
    b.rad.update(
        head_u=r_u, head_v=r_v, neck=0.026 * build, ua=0.034 * build, fa=0.027 * build,
        th=0.052 * build, sh=0.038 * build, hand=0.026 * math.sqrt(build), foot=0.026 * build,
    )

    back = rng.random() < p_back
    beta = rng.uniform(-0.8, 0.8) + (math.pi if back else 0.0)  # body yaw
    s = 1.0 if math.cos(beta) > 0 else -1.0  # +1: the person's left is on the image right
    wf = abs(math.cos(beta))
    lean = float(np.clip(rng.normal(0, 0.12), -0.4, 0.4))
    up = np.array([math.sin(lean), -math.cos(lean)])
    down = -up
    side = np.array([math.cos(lean), math.sin(lean)])  # image-right when upright
    sc = up * torso_len  # shoulder centre (pelvis at the origin)
    ts, th_ = rng.normal(0, 0.012), rng.normal(0, 0.012)
    kp = np.zeros((17, 2))
    kp[LSH] = sc + s * side * (sw / 2) * wf + up * ts
    kp[RSH] = sc - s * side * (sw / 2) * wf - up * ts
    kp[LHIP] = s * side * (hw / 2) * wf + up * th_
    kp[RHIP] = -s * side * (hw / 2) * wf - up * th_

    def fs() -> float:  # foreshortening of a bone pointing towards / away from the camera
        return 1.0 if rng.random() < 0.7 else rng.uniform(0.6, 1.0)

    def limb_dir(angle: float, outward: np.ndarray) -> np.ndarray:
        return math.cos(angle) * down + math.sin(angle) * outward

    b.depth.update(torso=0.0, neck=-0.5, head=0.6)
    for name, o, (sh_i, el_i, wr_i) in (("l", s, (LSH, LEL, LWR)), ("r", -s, (RSH, REL, RWR))):
        outward = o * side
        u = rng.random()
        if u < 0.1:
            a = rng.uniform(-0.6, 0.0)  # across the body
        elif u < 0.6:
            a = rng.uniform(0.0, 0.7)  # down
        elif u < 0.85:
            a = rng.uniform(0.7, 1.8)  # horizontal
        else:
            a = rng.uniform(1.8, 2.9)  # raised
        u = rng.random()
        e = rng.uniform(0, 0.3) if u < 0.4 else rng.uniform(0.3, 1.5) if u < 0.8 else rng.uniform(1.5, 2.5)
        e *= 1.0 if rng.random() < 0.5 else -1.0
        d1 = limb_dir(a, outward)
        d2 = limb_dir(a + e, outward)
        kp[el_i] = kp[sh_i] + ua * fs() * d1
        kp[wr_i] = kp[el_i] + fa * fs() * d2
        b.pts[f"{name}_hand"] = kp[wr_i] + d2 * b.rad["hand"] * 0.9
        da = rng.uniform(-1.0, 1.2)
        b.depth[f"{name}_ua"] = da
        b.depth[f"{name}_fa"] = da + rng.uniform(-0.4, 0.4)
    for name, o, (hip_i, kn_i, an_i) in (("l", s, (LHIP, LKN, LAN)), ("r", -s, (RHIP, RKN, RAN))):
        outward = o * side
        u = rng.random()
        a = rng.uniform(-0.12, 0.3) if u < 0.75 else rng.uniform(0.3, 0.75) if u < 0.93 else rng.uniform(0.75, 1.4)
        u = rng.random()
        e = rng.uniform(0, 0.2) if u < 0.6 else rng.uniform(0.2, 1.0) if u < 0.9 else rng.uniform(1.0, 1.9)
        e *= -1.0 if rng.random() < 0.65 else 1.0
        d1 = limb_dir(a, outward)
        d2 = limb_dir(a + e, outward)
        kp[kn_i] = kp[hip_i] + th * fs() * d1
        kp[an_i] = kp[kn_i] + sh * fs() * d2
        # foot: mostly pointing outwards and down, perpendicular-ish to the shin
        fdir = _rot(d2, -o * rng.uniform(0.4, 1.3))
        b.pts[f"{name}_toe"] = kp[an_i] + fdir * 0.05 * j(0.8, 1.2)
        dt = rng.uniform(-0.6, -0.2)
        b.depth[f"{name}_th"] = dt
        b.depth[f"{name}_sh"] = dt + rng.uniform(-0.15, 0.15)

    # head: roll, nod, yaw; features on a sphere
    roll = float(np.clip(rng.normal(0, 0.15), -0.45, 0.45))
    head_up = _rot(up, roll)
    neck_top = sc + up * neck_len
    head_c = neck_top + head_up * r_v * 0.95
    b.head_up = head_up
    b.pts["neck_a"] = sc
    b.pts["neck_b"] = head_c
    b.pts["head_c"] = head_c
    psi = beta + float(np.clip(rng.normal(0, 0.6), -1.6, 1.6))
    b.psi = psi
    nod = float(np.clip(rng.normal(0, 0.12), -0.3, 0.3))
    right = np.array([-head_up[1], head_up[0]])
    hdown = -head_up
    feats = {  # name: (longitude, latitude, radial factor, visibility threshold on cos(lon))
        "nose": (psi, 0.32, 1.05, -0.15),
        "left_eye": (psi + 0.5, -0.05, 1.0, 0.12),
        "right_eye": (psi - 0.5, -0.05, 1.0, 0.12),
        "left_ear": (psi + math.pi / 2, 0.08, 0.97, -0.4),
        "right_ear": (psi - math.pi / 2, 0.08, 0.97, -0.4),
    }
    for n, (k, (lon, lat, kr, thr)) in enumerate(feats.items()):
        lat = lat + nod
        uu = kr * math.sin(lon) * math.cos(lat)
        vv = math.sin(lat)
        b.features[k] = (uu, vv)
        kp[n] = head_c + right * uu * r_u + hdown * vv * r_v
        b.face_front[n] = math.cos(lon) > thr
    # mouth (drawn only, not a keypoint)
    lat = 0.62 + nod
    b.features["mouth_a"] = (0.95 * math.sin(psi - 0.25) * math.cos(lat), math.sin(lat))
    b.features["mouth_b"] = (0.95 * math.sin(psi + 0.25) * math.cos(lat), math.sin(lat))
    b.mouth_visible = math.cos(psi) > 0.3
    b.nod = nod
    b.pts["kp"] = kp
    b.bald = rng.random() < 0.08
    b.hairline = rng.uniform(-0.55, -0.2)
    b.long_sleeves = rng.random() < 0.5
    b.shorts = rng.random() < 0.25
    return b


def _place(body: _Body, center: np.ndarray, height_px: float, rotation: float, origin: np.ndarray) -> _Body:
    """Scale by ``height_px``, rotate by ``rotation`` (radians) about ``origin`` and move
    ``origin`` to ``center`` (image pixels)."""
    c, s = math.cos(rotation), math.sin(rotation)
    R = np.array([[c, -s], [s, c]])
    out = _Body()
    out.__dict__.update(body.__dict__)
    out.pts = {k: (np.asarray(v) - origin) @ R.T * height_px + center for k, v in body.pts.items()}
    out.rad = {k: v * height_px for k, v in body.rad.items()}
    out.head_up = R @ body.head_up
    out.height = height_px
    out.rotation = rotation
    return out


def _extent_box(body: _Body, rotation: float, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners (low, high) of the box around the person after rotating about ``origin``
    (local units, relative to ``origin``)."""
    c, s = math.cos(rotation), math.sin(rotation)
    R = np.array([[c, -s], [s, c]])
    p = (body.extent_points() - origin) @ R.T
    m = max(body.rad["th"], body.rad["ua"])
    return p.min(axis=0) - m, p.max(axis=0) + m


def _torso_center(kp: np.ndarray) -> np.ndarray:
    return kp[[LSH, RSH, LHIP, RHIP]].mean(axis=0)


# ----------------------------------------------------------------------------------
# rasterisation
# ----------------------------------------------------------------------------------

_MIN_R = 1.0  # px; guarantees that the pixel under a limb's end keypoint is covered


class _Canvas:
    def __init__(self, img: np.ndarray, n_people: int) -> None:
        self.img = img  # (H, W, 3) float32
        self.h, self.w = img.shape[:2]
        self.lab = np.zeros((self.h, self.w), np.int32)
        self.bbox = np.tile(np.array([np.iinfo(np.int32).max, np.iinfo(np.int32).max, -1, -1]), (n_people, 1))

    def window(self, xmin: float, xmax: float, ymin: float, ymax: float):
        x0 = max(int(math.floor(xmin)), 0)
        x1 = min(int(math.ceil(xmax)) + 1, self.w)
        y0 = max(int(math.floor(ymin)), 0)
        y1 = min(int(math.ceil(ymax)) + 1, self.h)
        if x0 >= x1 or y0 >= y1:
            return None
        return x0, x1, y0, y1

    def paint(self, win, mask: np.ndarray, mat: _Material, shade: np.ndarray, label: int, person: int) -> None:
        x0, x1, y0, y1 = win
        iy, ix = np.nonzero(mask)
        if iy.size == 0:
            return
        xs = (ix + x0).astype(np.float32)
        ys = (iy + y0).astype(np.float32)
        self.img[y0:y1, x0:x1][mask] = mat.colors(xs, ys, shade)
        self.lab[y0:y1, x0:x1][mask] = label
        bb = self.bbox[person]
        bb[0] = min(bb[0], x0 + int(ix.min()))
        bb[1] = min(bb[1], y0 + int(iy.min()))
        bb[2] = max(bb[2], x0 + int(ix.max()))
        bb[3] = max(bb[3], y0 + int(iy.max()))

    # --- shapes -------------------------------------------------------------------
    def capsule(self, a: np.ndarray, b: np.ndarray, r: float, mat: _Material, label: int, person: int,
                shading: float = 0.35) -> None:
        win = self.window(min(a[0], b[0]) - r, max(a[0], b[0]) + r, min(a[1], b[1]) - r, max(a[1], b[1]) + r)
        if win is None:
            return
        x0, x1, y0, y1 = win
        xs = np.arange(x0, x1, dtype=np.float32) - np.float32(a[0])
        ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(a[1]))[:, None]
        dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
        l2 = dx * dx + dy * dy
        if l2 > 1e-9:
            t = np.clip((xs * dx + ys * dy) * (1.0 / l2), 0.0, 1.0)
            px = xs - t * dx
            py = ys - t * dy
        else:
            px, py = xs + 0 * ys, ys + 0 * xs
        d2 = px * px + py * py
        r2 = r * r
        mask = d2 <= r2
        self.paint(win, mask, mat, 1.0 - shading * d2[mask] / r2, label, person)

    def ellipse(self, c: np.ndarray, up: np.ndarray, ru: float, rv: float, mat: _Material, label: int,
                person: int, region=None, shading: float = 0.3) -> None:
        r = max(ru, rv)
        win = self.window(c[0] - r, c[0] + r, c[1] - r, c[1] + r)
        if win is None:
            return
        x0, x1, y0, y1 = win
        xs = np.arange(x0, x1, dtype=np.float32) - np.float32(c[0])
        ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(c[1]))[:, None]
        # head frame: right = (-up_y, up_x), down = -up
        ux, uy = float(up[0]), float(up[1])
        a = (xs * -uy + ys * ux) * (1.0 / ru)
        bb = (xs * -ux + ys * -uy) * (1.0 / rv)
        q = a * a + bb * bb
        mask = q <= 1.0
        if region is not None:
            mask &= region(a, bb, q)
        self.paint(win, mask, mat, 1.0 - shading * q[mask], label, person)

    def quad(self, poly: np.ndarray, axis_a: np.ndarray, axis_b: np.ndarray, mat_top: _Material,
             mat_bottom: _Material, split: float, label: int, person: int, shading: float = 0.3) -> None:
        """Convex quadrilateral ``poly`` (4, 2); shading across the axis a->b; pixels past
        ``split`` (fraction along the axis) use ``mat_bottom``."""
        win = self.window(poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max())
        if win is None:
            return
        x0, x1, y0, y1 = win
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        area2 = 0.0
        for i in range(4):
            p, q = poly[i], poly[(i + 1) % 4]
            area2 += p[0] * q[1] - q[0] * p[1]
        sgn = 1.0 if area2 >= 0 else -1.0
        mask = None
        for i in range(4):
            p, q = poly[i], poly[(i + 1) % 4]
            cr = ((q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])) * sgn >= 0
            mask = cr if mask is None else mask & cr
        if not mask.any():
            return
        ax = axis_b - axis_a
        L = float(np.hypot(*ax)) + 1e-9
        ax = ax / L
        perp = np.array([-ax[1], ax[0]])
        iy, ix = np.nonzero(mask)
        X = ix.astype(np.float32) + np.float32(x0 - axis_a[0])
        Y = iy.astype(np.float32) + np.float32(y0 - axis_a[1])
        t = (X * float(ax[0]) + Y * float(ax[1])) * (1.0 / L)
        sd = X * float(perp[0]) + Y * float(perp[1])
        hw = np.abs(poly[:, 0] * perp[0] + poly[:, 1] * perp[1] - (axis_a[0] * perp[0] + axis_a[1] * perp[1])).max()
        shade = 1.0 - shading * (sd * (1.0 / max(float(hw), 1e-6))) ** 2
        bottom = t > split
        sub_img = self.img[y0:y1, x0:x1]
        cols = np.empty((iy.size, 3), np.float32)
        xs_abs, ys_abs = ix.astype(np.float32) + x0, iy.astype(np.float32) + y0
        top = ~bottom
        if top.any():
            cols[top] = mat_top.colors(xs_abs[top], ys_abs[top], shade[top])
        if bottom.any():
            cols[bottom] = mat_bottom.colors(xs_abs[bottom], ys_abs[bottom], shade[bottom])
        sub_img[iy, ix] = cols
        self.lab[y0:y1, x0:x1][iy, ix] = label
        bb = self.bbox[person]
        bb[0] = min(bb[0], x0 + int(ix.min()))
        bb[1] = min(bb[1], y0 + int(iy.min()))
        bb[2] = max(bb[2], x0 + int(ix.max()))
        bb[3] = max(bb[3], y0 + int(iy.max()))


def _person_ops(body: _Body, person: int, rng: np.random.Generator, tile: np.ndarray) -> list:
    """Drawing operations ``(depth, seq, callable)`` for one placed person."""
    H = body.height
    p, r = body.pts, {k: max(v, _MIN_R) for k, v in body.rad.items()}
    kp = p["kp"]
    base = person * NUM_PARTS + 1
    lab = {n: base + i for i, n in enumerate(PART_NAMES)}
    ang = body.rotation

    # appearance
    skin_c = np.clip(_SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.08, 3), 0, 1).astype(np.float32)
    skin = _Material(0, skin_c, skin_c)
    skin_dark = _Material(0, skin_c * 0.78, skin_c)
    hair_c = np.clip(_HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15), 0, 1)
    hair = _Material(0, hair_c, hair_c)
    shirt_base = _hsv(rng, (0.1, 0.95), (0.25, 1.0))
    shirt = _random_material(rng, shirt_base, H, ang, tile, (0.35, 0.25, 0.15, 0.25))
    if rng.random() < 0.6:
        tr_base = np.clip(_TROUSERS[rng.integers(len(_TROUSERS))] * rng.uniform(0.85, 1.15, 3), 0, 1).astype(np.float32)
    else:
        tr_base = _hsv(rng, (0.1, 0.8), (0.15, 0.8))
    trousers = _random_material(rng, tr_base, H, ang, tile, (0.5, 0.1, 0.1, 0.3))
    shoe_c = _hsv(rng, (0.0, 0.6), (0.05, 0.5))
    shoes = _Material(0, shoe_c, shoe_c)
    dark = _Material(0, np.array([0.08, 0.06, 0.06], np.float32), np.zeros(3, np.float32))
    lip = _Material(0, np.clip(skin_c * np.array([0.75, 0.45, 0.45], np.float32), 0, 1), np.zeros(3, np.float32))
    sleeve = shirt if body.long_sleeves else skin
    lower_leg = skin if body.shorts else trousers

    ops: list = []
    seq = [0]

    def add(depth: float, fn) -> None:
        ops.append((depth, seq[0], fn))
        seq[0] += 1

    # ---- torso
    ls, rs, lh, rh = kp[LSH], kp[RSH], kp[LHIP], kp[RHIP]
    sdir = (ls - rs) / (np.hypot(*(ls - rs)) + 1e-9)
    hdir = (lh - rh) / (np.hypot(*(lh - rh)) + 1e-9)
    sc, hc = (ls + rs) / 2, (lh + rh) / 2
    tdown = (hc - sc) / (np.hypot(*(hc - sc)) + 1e-9)
    poly = np.stack(
        [
            ls + sdir * r["ua"] * 0.6 - tdown * r["ua"] * 0.45,
            rs - sdir * r["ua"] * 0.6 - tdown * r["ua"] * 0.45,
            rh - hdir * r["th"] * 0.55 + tdown * r["th"] * 0.25,
            lh + hdir * r["th"] * 0.55 + tdown * r["th"] * 0.25,
        ]
    )
    split = rng.uniform(0.74, 0.86)
    add(body.depth["torso"], lambda cv: cv.quad(poly, sc, hc, shirt, trousers, split, lab["torso"], person))
    # ---- neck
    add(body.depth["neck"], lambda cv: cv.capsule(p["neck_a"], p["neck_b"], r["neck"], skin, lab["neck"], person, 0.25))

    # ---- arms and legs
    for side, (sh_i, el_i, wr_i, hip_i, kn_i, an_i) in (
        ("l", (LSH, LEL, LWR, LHIP, LKN, LAN)),
        ("r", (RSH, REL, RWR, RHIP, RKN, RAN)),
    ):
        full = "left" if side == "l" else "right"
        lua, lfa = lab[f"{full}_upper_arm"], lab[f"{full}_forearm"]
        lth, lsh = lab[f"{full}_thigh"], lab[f"{full}_shin"]
        a_sh, a_el, a_wr = kp[sh_i], kp[el_i], kp[wr_i]
        hand = p[f"{side}_hand"]
        add(body.depth[f"{side}_ua"], lambda cv, a=a_sh, b=a_el, l=lua: cv.capsule(a, b, r["ua"], shirt, l, person))
        add(body.depth[f"{side}_fa"], lambda cv, a=a_el, b=a_wr, l=lfa: cv.capsule(a, b, r["fa"], sleeve, l, person))
        add(body.depth[f"{side}_fa"] + 1e-3, lambda cv, a=hand, l=lfa: cv.capsule(a, a, r["hand"], skin, l, person, 0.2))
        h_, k_, a_ = kp[hip_i], kp[kn_i], kp[an_i]
        toe = p[f"{side}_toe"]
        add(body.depth[f"{side}_th"], lambda cv, a=h_, b=k_, l=lth: cv.capsule(a, b, r["th"], trousers, l, person))
        add(body.depth[f"{side}_sh"], lambda cv, a=k_, b=a_, l=lsh: cv.capsule(a, b, r["sh"], lower_leg, l, person))
        add(body.depth[f"{side}_sh"] + 1e-3, lambda cv, a=a_, b=toe, l=lsh: cv.capsule(a, b, r["foot"], shoes, l, person, 0.2))

    # ---- head
    hcen, hup = p["head_c"], body.head_up
    ru, rv = r["head_u"], r["head_v"]
    right = np.array([-hup[1], hup[0]])
    hdown = -hup
    cpsi, spsi = math.cos(body.psi), math.sin(body.psi)
    hairline = body.hairline
    d0 = body.depth["head"]
    lhead = lab["head"]

    def at(u: float, v: float) -> np.ndarray:
        return hcen + right * u * ru + hdown * v * rv

    if body.bald:
        add(d0, lambda cv: cv.ellipse(hcen, hup, ru, rv, skin, lhead, person))
    else:
        add(d0, lambda cv: cv.ellipse(hcen, hup, ru, rv, hair, lhead, person))

        def face_region(a, bb, q):
            z = np.sqrt(np.maximum(1.0 - q, 0.0))
            front = z * cpsi + a * spsi
            return (front > 0.12) & (bb > hairline)

        add(d0 + 1e-3, lambda cv: cv.ellipse(hcen, hup, ru, rv, skin, lhead, person, region=face_region))
    feat_r = {"eye": max(0.75, 0.11 * ru), "ear": max(0.75, 0.2 * ru), "nose": max(0.75, 0.12 * ru)}
    names5 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    for n, k in enumerate(names5):
        if not body.face_front[n]:
            continue
        c = kp[n]
        if k.endswith("ear"):
            add(d0 + 2e-3, lambda cv, c=c: cv.ellipse(c, hup, feat_r["ear"], feat_r["ear"] * 1.5, skin_dark, lhead, person, shading=0.2))
        elif k.endswith("eye"):
            add(d0 + 3e-3, lambda cv, c=c: cv.capsule(c, c, feat_r["eye"], dark, lhead, person, 0.0))
        else:
            add(d0 + 4e-3, lambda cv, c=c: cv.capsule(c, c, feat_r["nose"], skin_dark, lhead, person, 0.1))
    if body.mouth_visible and ru > 3:
        ma, mb = at(*body.features["mouth_a"]), at(*body.features["mouth_b"])
        add(d0 + 3e-3, lambda cv: cv.capsule(ma, mb, max(0.5, 0.07 * ru), lip, lhead, person, 0.0))
    return ops


# ----------------------------------------------------------------------------------
# argument helpers
# ----------------------------------------------------------------------------------


def _range(value: Any, name: str, lo: float | None = None, hi: float | None = None,
           symmetric: bool = False) -> tuple[float, float]:
    """A number (``(-|x|, |x|)`` when ``symmetric``, else ``(x, x)``) or a pair ``(low, high)``
    as a range of finite floats within ``[lo, hi]``; ``None`` is ``(0, 0)``."""
    if value is None:
        return (0.0, 0.0)
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise TypeError(f"{name} must be a number or a pair (low, high), got {len(value)} values")
        rng_ = (checks.number(value[0], f"{name}[0] (low)"), checks.number(value[1], f"{name}[1] (high)"))
    elif isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Number, np.number, np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a number or a pair (low, high), got {checks.describe(value)}")
    else:
        v = checks.number(value, name)
        rng_ = (-abs(v), abs(v)) if symmetric else (v, v)
    if rng_[0] > rng_[1]:
        raise ValueError(f"{name}: low {rng_[0]} is larger than high {rng_[1]}")
    if (lo is not None and rng_[0] < lo) or (hi is not None and rng_[1] > hi):
        where = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else (
            f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        what = f" (the range ({rng_[0]:g}, {rng_[1]:g}))" if symmetric and not isinstance(value, (tuple, list)) else ""
        raise ValueError(f"{name} must lie in {where}, got {value!r}{what}")
    return rng_


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return r[0] if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _check_skeleton(skeleton: Skeleton) -> np.ndarray | None:
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"skeleton must be a kpedu.data.Skeleton, got {type(skeleton).__name__}")
    if skeleton.keypoint_names == _K17:
        return None
    unknown = [n for n in skeleton.keypoint_names if n not in _K17]
    if unknown:
        raise ValueError(
            f"synthetic people have COCO-17 keypoints; skeleton {skeleton.name!r} has unknown "
            f"keypoints {unknown}"
        )
    return np.array([_K17.index(n) for n in skeleton.keypoint_names], np.int64)


def _background(rng: np.random.Generator, background: Any, h: int, w: int) -> np.ndarray:
    if isinstance(background, str):
        if background not in BACKGROUND_KINDS:
            raise ValueError(f"background must be one of {', '.join(BACKGROUND_KINDS)} or an array, got {background!r}")
        return _background_hwc(rng, h, w, background).copy()
    if isinstance(background, (bytes, bool)) or not isinstance(background, (np.ndarray, torch.Tensor, list, tuple)):
        raise TypeError(f"background must be a kind name ({', '.join(BACKGROUND_KINDS)}) or an image array, "
                        f"got {checks.describe(background)}")
    # the one rule for images: float in [0, 1] (or uint8, scaled by 1/255); (3, H, W) or (H, W, 3)
    t = checks.image(background, "background", ndim=3, channels=None,
                     shape_text=f"(3, {h}, {w}) or ({h}, {w}, 3)").cpu()
    if tuple(t.shape) == (3, h, w):
        t = t.permute(1, 2, 0)
    elif tuple(t.shape) != (h, w, 3):
        raise ValueError(f"background array must have shape (3, {h}, {w}) or ({h}, {w}, 3), got {tuple(t.shape)}")
    return np.clip(t.numpy(), 0.0, 1.0).copy()


# ----------------------------------------------------------------------------------
# rendering several placed people into a sample
# ----------------------------------------------------------------------------------


def _render(rng: np.random.Generator, img: np.ndarray, bodies: list[_Body], order: list[int],
            sel: np.ndarray | None, pixel_noise: float) -> Sample:
    h, w = img.shape[:2]
    n = len(bodies)
    tile = _smooth_noise(rng, 32, 32, 1, cell=6.0, octaves=2)[..., 0]
    canvas = _Canvas(img, n)
    ops = []
    for rank, i in enumerate(order):
        for depth, seq, fn in _person_ops(bodies[i], i, rng, tile):
            ops.append((rank, depth, seq, fn))
    ops.sort(key=lambda o: o[:3])
    for *_, fn in ops:
        fn(canvas)

    kps = np.stack([b.pts["kp"] for b in bodies]).astype(np.float32)  # (N, 17, 2)
    lab = canvas.lab
    x, y = kps[..., 0], kps[..., 1]
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    ix = np.clip(np.floor(x + 0.5).astype(np.int64), 0, w - 1)
    iy = np.clip(np.floor(y + 0.5).astype(np.int64), 0, h - 1)
    l = lab[iy, ix].astype(np.int64) - 1
    owner = np.where(l >= 0, l // NUM_PARTS, -1)
    part = np.where(l >= 0, l % NUM_PARTS, 0)
    own = (owner == np.arange(n)[:, None]) & _KP_PART_TABLE[np.arange(17)[None, :], part]
    front = np.ones((n, 17), bool)
    front[:, :5] = np.stack([b.face_front for b in bodies])
    visible = np.where(inside, np.where(own & front, 2, 1), 0).astype(np.uint8)

    person_map = np.where(lab > 0, (lab - 1) // NUM_PARTS, -1)
    masks = person_map[None] == np.arange(n)[:, None, None]
    areas = masks.reshape(n, -1).sum(axis=1).astype(np.float32)
    bb = canvas.bbox.astype(np.float32)
    drawn = bb[:, 2] >= 0
    boxes = np.zeros((n, 4), np.float32)
    boxes[drawn, 0] = bb[drawn, 0] - 0.5
    boxes[drawn, 1] = bb[drawn, 1] - 0.5
    boxes[drawn, 2] = bb[drawn, 2] - bb[drawn, 0] + 1
    boxes[drawn, 3] = bb[drawn, 3] - bb[drawn, 1] + 1

    if pixel_noise > 0:
        std = float(rng.uniform(0, pixel_noise))
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(std)
    np.clip(img, 0.0, 1.0, out=img)

    if sel is not None:
        kps, visible = kps[:, sel], visible[:, sel]
    return Sample(
        image=np.ascontiguousarray(img.transpose(2, 0, 1)),
        keypoints=np.ascontiguousarray(kps),
        visible=np.ascontiguousarray(visible),
        boxes=boxes,
        areas=areas,
        masks=masks,
        head_sizes=np.array([2 * b.rad["head_v"] for b in bodies], np.float32),
        centers=np.stack([_torso_center(b.pts["kp"]) for b in bodies]).astype(np.float32),
        scales=np.array([b.height for b in bodies], np.float32),
        part_map=lab,
    )


# ----------------------------------------------------------------------------------
# public generators
# ----------------------------------------------------------------------------------


def _common_options(rotation, scale, p_back, pixel_noise, skeleton):
    """Validate the options shared by :func:`make_person` and :func:`make_scene`;
    returns ``(rotation range, scale range, keypoint selection)``."""
    rot_r = _range(rotation, "rotation", -180.0, 180.0, symmetric=True)
    scale_r = _range(scale, "scale", 0.05, 3.0)
    return rot_r, scale_r, _check_skeleton(skeleton)


def _noise_options(p_back, pixel_noise) -> tuple[float, float]:
    return (checks.probability(p_back, "p_back"),
            checks.number(pixel_noise, "pixel_noise", minimum=0.0, maximum=0.5))


def _person_options(size, background, distractors, crop_jitter, rotation, scale, p_back, pixel_noise,
                    skeleton) -> dict[str, Any]:
    """Validate every argument of :func:`make_person` but ``rng`` (also used by
    :class:`SyntheticPeople` when it is built)."""
    h, w = parse_size(size)
    _check_background_kind(background)
    distractors = checks.integer(distractors, "distractors", minimum=0)
    crop_jitter = checks.number(crop_jitter, "crop_jitter", minimum=0.0, maximum=1.0)
    rot_r, scale_r, sel = _common_options(rotation, scale, p_back, pixel_noise, skeleton)
    p_back, pixel_noise = _noise_options(p_back, pixel_noise)
    return dict(h=h, w=w, distractors=distractors, crop_jitter=crop_jitter, rot_r=rot_r, scale_r=scale_r,
                sel=sel, p_back=p_back, pixel_noise=pixel_noise)


def _scene_options(size, num_people, background, rotation, scale, p_back, pixel_noise, skeleton,
                   overlap=True) -> dict[str, Any]:
    """Validate every argument of :func:`make_scene` but ``rng``."""
    h, w = parse_size(size)
    _check_background_kind(background)
    if isinstance(num_people, (tuple, list)):
        if len(num_people) != 2:
            raise ValueError(f"num_people must be an int or a pair (low, high), got {len(num_people)} values")
        np_r = (checks.integer(num_people[0], "num_people[0] (low)"),
                checks.integer(num_people[1], "num_people[1] (high)"))
    elif isinstance(num_people, (str, bytes)) or not isinstance(num_people, (numbers.Number, np.number, np.ndarray,
                                                                             torch.Tensor)):
        raise TypeError(f"num_people must be an int or a pair of ints, got {checks.describe(num_people)}")
    else:
        n = checks.integer(num_people, "num_people")
        np_r = (n, n)
    if np_r[0] < 1 or np_r[0] > np_r[1]:
        raise ValueError(f"num_people must be >= 1 (and low <= high), got {num_people!r}")
    if np_r[1] > 50:
        raise ValueError(f"num_people is limited to 50, got {num_people!r}")
    rot_r, scale_r, sel = _common_options(rotation, scale, p_back, pixel_noise, skeleton)
    p_back, pixel_noise = _noise_options(p_back, pixel_noise)
    return dict(h=h, w=w, np_r=np_r, rot_r=rot_r, scale_r=scale_r, sel=sel, p_back=p_back,
                pixel_noise=pixel_noise)


def _check_background_kind(background: Any) -> None:
    """A kind name must be known (arrays are checked against the size when used)."""
    if isinstance(background, str) and background not in BACKGROUND_KINDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUND_KINDS)} or an array, got {background!r}")
    if not isinstance(background, (str, np.ndarray, torch.Tensor, list, tuple)):
        raise TypeError(f"background must be a kind name ({', '.join(BACKGROUND_KINDS)}) or an image array, "
                        f"got {checks.describe(background)}")


def make_person(
    rng: np.random.Generator | int,
    size: int | Sequence[int] = 256,
    *,
    background: str | np.ndarray = "mixed",
    distractors: int = 0,
    crop_jitter: float = 0.0,
    rotation: float | tuple[float, float] = (-30.0, 30.0),
    scale: float | tuple[float, float] = (0.75, 0.95),
    p_back: float = 0.1,
    pixel_noise: float = 0.02,
    skeleton: Skeleton = COCO17,
) -> Sample:
    """A single-person crop for top-down methods (Foundations chapter).

    The main person (index 0) is centred and fills most of the frame, as in the crops
    a top-down method takes around a detected box: after the in-plane ``rotation``
    (degrees, drawn uniformly from the range, or ``+-value`` for a number), the box
    around the whole person is centred in the image and its larger side (relative to
    the image side) is ``scale`` (drawn from the range). The torso centre then lies
    above the image centre, because the legs reach further from it than the head
    (on average about 14 % of the side away, at most about a quarter).

    Parameters
    ----------
    rng: a ``numpy.random.Generator`` or an int seed.
    size: image side (int) or ``(H, W)``; at least 16.
    background: ``"noise"``, ``"texture"``, ``"photo"``, ``"mixed"`` or an image array
        ``(3, H, W)`` / ``(H, W, 3)``.
    distractors: extra people beside the main one (index 1..), mostly behind it, each
        partially visible (their torso centre lies in the image).
    crop_jitter: in [0, 1]; shifts the crop by up to ``crop_jitter * side / 4`` and zooms
        in by up to ``1 + 0.6 * crop_jitter`` so limbs can be cut by the border.
    p_back: probability that a person faces away from the camera.
    pixel_noise: maximum standard deviation of the added Gaussian pixel noise.
    skeleton: COCO-17 or a subset of its keypoints (selects and orders the keypoints).
    """
    rng = as_rng(rng)
    o = _person_options(size, background, distractors, crop_jitter, rotation, scale, p_back, pixel_noise, skeleton)
    h, w, distractors, crop_jitter = o["h"], o["w"], o["distractors"], o["crop_jitter"]
    rot_r, scale_r, sel, p_back, pixel_noise = o["rot_r"], o["scale_r"], o["sel"], o["p_back"], o["pixel_noise"]

    img = _background(rng, background, h, w)
    center = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    # the main person: its (rotated) extent box is centred and fills `scale` of the frame
    body = _sample_body(rng, p_back)
    rot = math.radians(_uniform(rng, rot_r))
    origin = _torso_center(body.pts["kp"])
    lo, hi = _extent_box(body, rot, origin)
    fill = _uniform(rng, scale_r)
    height = fill * min(w / (hi[0] - lo[0]), h / (hi[1] - lo[1]))
    # torso centre goes where the box centre lands on the image centre
    c = center - (lo + hi) / 2.0 * height + rng.normal(0, 0.01, 2) * np.array([w, h])
    cj = float(crop_jitter)
    if cj > 0:
        zoom = rng.uniform(1.0 - 0.15 * cj, 1.0 + 0.6 * cj)
        c = center + (c - center) * zoom + rng.uniform(-1, 1, 2) * cj * np.array([w, h]) / 4.0
        height *= zoom
    bodies = [_place(body, c, height, rot, origin)]
    # distractors
    depth_main = 0.0
    depths = [depth_main]
    for _ in range(int(distractors)):
        b = _sample_body(rng, p_back)
        rot_d = math.radians(_uniform(rng, rot_r))
        o = _torso_center(b.pts["kp"])
        ang = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0.25, 0.48)
        cd = center + np.array([math.cos(ang) * w, math.sin(ang) * h]) * dist
        bodies.append(_place(b, cd, height * rng.uniform(0.75, 1.15), rot_d, o))
        depths.append(-1.0 - rng.random() if rng.random() < 0.75 else 1.0 + rng.random())
    order = list(np.argsort(depths, kind="stable"))
    return _render(rng, img, bodies, order, sel, float(pixel_noise))


def make_scene(
    rng: np.random.Generator | int,
    size: int | Sequence[int] = 256,
    *,
    num_people: int | tuple[int, int] = (1, 6),
    overlap: bool = True,
    background: str | np.ndarray = "mixed",
    rotation: float | tuple[float, float] = (-20.0, 20.0),
    scale: float | tuple[float, float] = (0.3, 0.9),
    p_back: float = 0.1,
    pixel_noise: float = 0.02,
    skeleton: Skeleton = COCO17,
) -> Sample:
    """A multi-person scene for bottom-up methods (Foundations chapter).

    ``num_people`` (an int, or an inclusive range drawn uniformly; at least 1) people of
    standing heights ``scale`` x image height (drawn log-uniformly from the range) are
    placed with their torso centre anywhere in the image, so people may be cut by the
    border. Larger (nearer) people tend to be drawn in front. With ``overlap=False``
    placements whose keypoint boxes intersect are re-drawn (and shrunk) - best effort:
    after many failures a person is placed anyway.

    Other parameters as in :func:`make_person`. Every person has at least its torso
    centre inside the image, but may be fully hidden by people in front (``area == 0``).
    """
    rng = as_rng(rng)
    o = _scene_options(size, num_people, background, rotation, scale, p_back, pixel_noise, skeleton)
    h, w, np_r = o["h"], o["w"], o["np_r"]
    rot_r, scale_r, sel, p_back, pixel_noise = o["rot_r"], o["scale_r"], o["sel"], o["p_back"], o["pixel_noise"]

    img = _background(rng, background, h, w)
    n = int(rng.integers(np_r[0], np_r[1] + 1))
    bodies: list[_Body] = []
    placed_boxes: list[np.ndarray] = []
    lo, hi = math.log(scale_r[0]), math.log(scale_r[1])
    for _ in range(n):
        b = _sample_body(rng, p_back)
        o = _torso_center(b.pts["kp"])
        shrink = 1.0
        for attempt in range(60):
            rot = math.radians(_uniform(rng, rot_r))
            height = math.exp(rng.uniform(lo, hi)) * h * shrink
            c = np.array([rng.uniform(0, w - 1), rng.uniform(0, h - 1)])
            placed = _place(b, c, height, rot, o)
            if overlap:
                break
            ep = placed.extent_points()
            box = np.array([ep[:, 0].min(), ep[:, 1].min(), ep[:, 0].max(), ep[:, 1].max()])
            if all(box[2] < q[0] or q[2] < box[0] or box[3] < q[1] or q[3] < box[1] for q in placed_boxes):
                placed_boxes.append(box)
                break
            if attempt % 10 == 9:
                shrink *= 0.8
        else:
            ep = placed.extent_points()
            placed_boxes.append(np.array([ep[:, 0].min(), ep[:, 1].min(), ep[:, 0].max(), ep[:, 1].max()]))
        bodies.append(placed)
    depth = [bd.height * rng.uniform(0.8, 1.25) for bd in bodies]
    order = list(np.argsort(depth, kind="stable"))
    return _render(rng, img, bodies, order, sel, float(pixel_noise))


# ----------------------------------------------------------------------------------
# torch data set
# ----------------------------------------------------------------------------------

#: Per-person fields (first dimension N) that :func:`collate_people` keeps as lists.
PERSON_FIELDS = ("keypoints", "visible", "boxes", "areas", "masks", "head_sizes", "centers", "scales")


class SyntheticPeople(torch.utils.data.Dataset):
    """An on-the-fly data set of synthetic people (Foundations chapter).

    ``mode="single"`` uses :func:`make_person` (top-down crops, ``N = 1 + distractors``
    people per item, the target person first), ``mode="multi"`` uses :func:`make_scene`
    (bottom-up scenes with a variable number of people; batch with
    :func:`collate_people`). Item ``i`` is generated from
    ``numpy.random.default_rng([seed, i])``, so it does not depend on the order in which
    items are read nor on the number of DataLoader workers.

    Each item is a dict of tensors: ``image (3, H, W)`` float32, ``keypoints (N, K, 2)``,
    ``visible (N, K)`` uint8, ``boxes (N, 4)``, ``areas (N,)``, ``head_sizes (N,)``,
    ``centers (N, 2)``, ``scales (N,)``, ``index`` (int64 scalar) and, with
    ``return_masks=True``, ``masks (N, H, W)`` bool. Extra keyword arguments go to the
    generator (e.g. ``background="photo"``, ``distractors=1``, ``num_people=(2, 4)``).
    """

    def __init__(self, length: int, image_size: int | Sequence[int] = 256, mode: str = "single",
                 seed: int = 0, return_masks: bool = False, **kwargs: Any) -> None:
        if isinstance(length, (bool, np.bool_)) or not isinstance(length, (int, np.integer)):
            raise TypeError(f"length must be a non-negative int, got {checks.describe(length)}")
        if length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if not isinstance(mode, str) or mode not in ("single", "multi"):
            raise ValueError(f"mode must be 'single' or 'multi', got {mode!r}")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be a non-negative int, got {checks.describe(seed)}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        parse_size(image_size, name="image_size")
        self.fn = make_person if mode == "single" else make_scene
        try:
            bound = inspect.signature(self.fn).bind(None, image_size, **kwargs)
        except TypeError as e:
            raise TypeError(f"invalid keyword for {self.fn.__name__}: {e}") from None
        # every option is checked now, not when the first item is drawn (in a DataLoader worker)
        bound.apply_defaults()
        options = dict(bound.arguments)
        del options["rng"]
        (_person_options if mode == "single" else _scene_options)(**options)
        self.length = int(length)
        self.image_size = image_size
        self.mode = mode
        self.seed = int(seed)
        self.return_masks = bool(return_masks)
        self.kwargs = dict(kwargs)

    def __len__(self) -> int:
        return self.length

    def sample(self, i: int) -> Sample:
        """Item ``i`` as a :class:`Sample` (numpy arrays, with masks and part map); a
        negative ``i`` counts from the end, as in a list."""
        i = checks.index(i, self.length, "index")
        rng = np.random.default_rng([self.seed, i])
        return self.fn(rng, self.image_size, **self.kwargs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = checks.index(i, self.length, "index")
        s = self.sample(i)
        out = s.to_torch(masks=self.return_masks)
        out["index"] = torch.tensor(i, dtype=torch.int64)
        return out


def collate_people(batch: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Batch items of :class:`SyntheticPeople` (Foundations chapter).

    Images (and every other field with a fixed shape, e.g. ``index``) are stacked;
    per-person fields (:data:`PERSON_FIELDS`, first dimension ``N``) are kept as lists
    of length ``B`` because ``N`` varies between scenes. Use it as
    ``DataLoader(ds, batch_size=..., collate_fn=collate_people)``.
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"batch must be a non-empty list of items, got {checks.describe(batch)}")
    if not all(isinstance(b, dict) for b in batch):
        raise TypeError("batch must hold dict items as returned by SyntheticPeople")
    keys = batch[0].keys()
    out: dict[str, Any] = {}
    for k in keys:
        vals = [b[k] for b in batch]
        if k in PERSON_FIELDS:
            out[k] = vals
        elif all(isinstance(v, torch.Tensor) for v in vals) and len({tuple(v.shape) for v in vals}) == 1:
            out[k] = torch.stack(vals)
        else:
            out[k] = vals
    return out
