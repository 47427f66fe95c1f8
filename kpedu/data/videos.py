"""Synthetic videos with exact ground truth: the Transporter chapter's data (``book/ch06-transporter``).

Two kinds of clip, both on a background that stays still while things move over it, as
in the Atari and control-suite videos Kulkarni et al. (NeurIPS 2019) learn from:

- :func:`make_people_videos`: one of kpedu's stick people (:mod:`kpedu.data.people`, the
  same renderer and COCO-17 keypoints as the Foundations chapter) walks across the frame
  and changes pose: its joints move smoothly through a chain of random key poses, the
  body drifts along a smooth path and turns a little in the image plane. Its clothes and
  colours stay the same in every frame. Ground truth: the 17 COCO keypoints per frame.
- :func:`make_object_videos`: a few coloured discs, squares and triangles that move at
  constant velocity and bounce off the borders. Ground truth: each object's centre.

Both return a :class:`VideoSet`: ``uint8`` frames ``(V, T, 3, H, W)`` with points
``(V, T, P, 2)`` in image pixels (pixel centres at integers, ``book/notation.md``). Clip
``v`` depends only on ``(seed, v)``, so a split is reproducible and any subset can be
regenerated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import checks
from .backgrounds import as_rng, parse_size
from .people import _background, _place, _render, _sample_body, _torso_center

__all__ = ["VideoSet", "make_people_videos", "make_object_videos", "PEOPLE_POINTS", "OBJECT_SHAPES"]

#: The COCO-17 keypoints a people clip annotates (all of them, in COCO order).
PEOPLE_POINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                 "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                 "right_knee", "left_ankle", "right_ankle")
#: Shapes an object clip draws, cycled over the objects.
OBJECT_SHAPES = ("disc", "square", "triangle")


@dataclass
class VideoSet:
    """Clips of one kind with their ground truth (Transporter chapter).

    Attributes
    ----------
    frames: ``(V, T, 3, H, W)`` uint8 (four times less memory than float).
    points: ``(V, T, P, 2)`` float32, exact ``(x, y)`` image pixels of the annotated points.
    visible: ``(V, T, P)`` bool, the point lies inside the frame.
    names: the ``P`` point names.
    kind: ``"people"`` or ``"objects"``.
    scale: ``(V,)`` float32, a length per clip that errors are divided by: the person's
        standing height in pixels, or the image side for objects.
    """

    frames: torch.Tensor
    points: torch.Tensor
    visible: torch.Tensor
    names: tuple[str, ...]
    kind: str
    scale: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.frames.shape[-2]), int(self.frames.shape[-1])

    def subset(self, idx) -> "VideoSet":
        """The clips ``idx`` (an int, slice, or index sequence) as a new :class:`VideoSet`."""
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            idx = [int(checks.index(idx, len(self), "idx"))]
        return VideoSet(self.frames[idx], self.points[idx], self.visible[idx], self.names, self.kind,
                        self.scale[idx], dict(self.info))

    def flat(self) -> dict[str, torch.Tensor]:
        """All frames as one batch: ``images`` ``(V*T, 3, H, W)`` uint8, ``points``
        ``(V*T, P, 2)``, ``visible`` ``(V*T, P)``, ``clip`` ``(V*T,)`` (the clip index of
        each frame) and ``scale`` ``(V*T,)``."""
        v, t = self.frames.shape[:2]
        return {"images": self.frames.reshape(v * t, *self.frames.shape[2:]),
                "points": self.points.reshape(v * t, *self.points.shape[2:]),
                "visible": self.visible.reshape(v * t, -1),
                "clip": torch.arange(v).repeat_interleave(t),
                "scale": self.scale.repeat_interleave(t)}

    @property
    def images(self) -> torch.Tensor:
        """All frames ``(V*T, 3, H, W)`` uint8 (what an image-based method such as FSE trains on)."""
        return self.frames.reshape(-1, *self.frames.shape[2:])

    def sample_pairs(self, n: int, generator: torch.Generator | None = None, max_gap: int | None = None
                     ) -> dict[str, torch.Tensor]:
        """``n`` random (source, target) frame pairs, each from one clip: ``source`` and
        ``target`` ``(n, 3, H, W)`` float in [0, 1], their ``source_points`` and
        ``target_points``, and ``clip``, ``t_source``, ``t_target``. The two frames are at
        most ``max_gap`` frames apart (default: anywhere in the clip) and never equal."""
        n = checks.integer(n, "n", minimum=1)
        t = self.num_frames
        if t < 2:
            raise ValueError(f"pairs need clips of at least 2 frames, got {t}")
        gap = t - 1 if max_gap is None else checks.integer(max_gap, "max_gap", minimum=1)
        gap = min(gap, t - 1)
        v = torch.randint(len(self), (n,), generator=generator)
        d = torch.randint(1, gap + 1, (n,), generator=generator) * (torch.randint(2, (n,), generator=generator) * 2 - 1)
        ts = torch.randint(t, (n,), generator=generator)
        tt = ts + d
        # reflect a target outside the clip to the other side of the source
        tt = torch.where((tt < 0) | (tt >= t), ts - d, tt)
        ok = (tt >= 0) & (tt < t)
        # a gap longer than the room on both sides: take the farthest frame in the clip
        tt = torch.where(ok, tt, torch.where(ts >= t - 1 - ts, torch.zeros_like(ts), torch.full_like(ts, t - 1)))
        return {"source": self.frames[v, ts].float() / 255.0, "target": self.frames[v, tt].float() / 255.0,
                "source_points": self.points[v, ts], "target_points": self.points[v, tt],
                "clip": v, "t_source": ts, "t_target": tt}


# ----------------------------------------------------------------------------------------- people

def _smooth_weights(t: np.ndarray) -> np.ndarray:
    """Cosine ease between key poses: 0 at 0, 1 at 1, zero speed at both ends."""
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _people_clip(seed: int, index: int, frames: int, h: int, w: int, key_poses: int, speed: float,
                 background: str, height_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng([seed, index, 0])
    bodies = [_sample_body(rng, 0.0) for _ in range(key_poses)]
    base = bodies[0]
    img0 = _background(rng, background, h, w)
    render_seed = int(rng.integers(2 ** 31))
    height = float(rng.uniform(*height_range) * min(h, w))
    # a smooth path: a straight drift plus a slow sway, kept inside the frame
    ang = rng.uniform(0, 2 * math.pi)
    v = np.array([math.cos(ang), math.sin(ang) * 0.4]) * speed * min(h, w)  # pixels per frame
    start = np.array([w / 2, h / 2]) - v * (frames - 1) / 2 + rng.uniform(-0.06, 0.06, 2) * np.array([w, h])
    sway_a, sway_f, sway_p = rng.uniform(0.0, 0.05) * min(h, w), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * math.pi)
    rot0, rot_a, rot_p = rng.uniform(-0.15, 0.15), rng.uniform(0.0, 0.15), rng.uniform(0, 2 * math.pi)
    out = np.empty((frames, 3, h, w), np.uint8)
    pts = np.empty((frames, 17, 2), np.float32)
    for f in range(frames):
        u = f / max(frames - 1, 1) * (key_poses - 1)          # position along the chain of key poses
        i = min(int(u), key_poses - 2)
        a = float(_smooth_weights(np.array(u - i)))
        body = type(base)()
        body.__dict__.update(base.__dict__)
        body.pts = {k: (1 - a) * bodies[i].pts[k] + a * bodies[i + 1].pts[k] for k in base.pts}
        phase = 2 * math.pi * f / max(frames, 1)
        c = start + v * f + np.array([0.0, sway_a * math.sin(sway_f * phase + sway_p)])
        rot = rot0 + rot_a * math.sin(phase + rot_p)
        placed = _place(body, c, height, rot, _torso_center(body.pts["kp"]))
        sample = _render(np.random.default_rng(render_seed), img0.copy(), [placed], [0], None, 0.0)
        out[f] = np.clip(sample.image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        pts[f] = sample.keypoints[0]
    return out, pts, height


def make_people_videos(n: int, frames: int = 16, size: int = 64, seed: int = 0, *, key_poses: int = 3,
                       speed: float = 0.01, background: str = "mixed", height: tuple[float, float] = (0.55, 0.7),
                       progress: bool = False) -> VideoSet:
    """``n`` clips of ``frames`` frames of one stick person walking and changing pose
    (Transporter chapter).

    Parameters
    ----------
    n, frames: clips and frames per clip (at least 2 frames).
    size: frame side (int) or ``(H, W)``.
    seed: clip ``v`` depends only on ``(seed, v)``.
    key_poses: random poses the joints pass through, evenly spaced in time (at least 2).
    speed: drift per frame as a fraction of the frame side.
    background: a :func:`kpedu.data.make_background` kind (``"noise"``, ``"texture"``,
        ``"photo"``, ``"mixed"``); one per clip, fixed over its frames.
    height: range of the person's standing height as a fraction of the frame side.

    Returns a :class:`VideoSet` of kind ``"people"`` with the 17 COCO keypoints; its
    ``scale`` is the person's standing height in pixels.
    """
    n = checks.integer(n, "n", minimum=1)
    frames = checks.integer(frames, "frames", minimum=2)
    h, w = parse_size(size, 16, "size")
    seed = checks.integer(seed, "seed", minimum=0)
    key_poses = checks.integer(key_poses, "key_poses", minimum=2)
    speed = checks.number(speed, "speed", minimum=0.0, maximum=0.2)
    checks.choice(background, "background", ("noise", "texture", "photo", "mixed"))
    if isinstance(height, (str, bytes)) or not hasattr(height, "__len__") or len(height) != 2:
        raise TypeError(f"height must be a range (low, high), got {checks.describe(height)}")
    lo, hi = (checks.number(v, f"height[{i}]", minimum=0.1, maximum=1.5) for i, v in enumerate(height))
    if lo > hi:
        raise ValueError(f"height must be a range (low, high) with low <= high, got {tuple(height)}")
    from tqdm.auto import tqdm

    clips, pts, heights = [], [], []
    for v in tqdm(range(n), desc="people clips", disable=not progress, leave=False):
        c, p, hgt = _people_clip(seed, v, frames, h, w, key_poses, speed, background, (lo, hi))
        clips.append(c)
        pts.append(p)
        heights.append(hgt)
    points = torch.from_numpy(np.stack(pts))
    return VideoSet(torch.from_numpy(np.stack(clips)), points, _inside(points, h, w), PEOPLE_POINTS, "people",
                    torch.tensor(heights, dtype=torch.float32),
                    {"seed": seed, "key_poses": key_poses, "speed": speed, "background": background,
                     "height": (lo, hi)})


# ---------------------------------------------------------------------------------------- objects

def _shape_mask(shape: str, xs: np.ndarray, ys: np.ndarray, c: np.ndarray, r: float, angle: float) -> np.ndarray:
    """Soft coverage in [0, 1] of a shape of radius ``r`` centred at ``c`` (one pixel of anti-aliasing)."""
    dx, dy = xs - c[0], ys - c[1]
    if shape == "disc":
        d = np.hypot(dx, dy) - r
    else:
        ca, sa = math.cos(angle), math.sin(angle)
        u, v = ca * dx + sa * dy, -sa * dx + ca * dy
        if shape == "square":
            s = r / math.sqrt(2) * 1.15
            d = np.maximum(np.abs(u), np.abs(v)) - s
        else:  # equilateral triangle with circumradius r: three half-planes, centroid at c
            d = np.full_like(u, -np.inf)
            for k in range(3):
                a = math.pi / 2 + 2 * math.pi * k / 3
                d = np.maximum(d, -(math.cos(a) * u + math.sin(a) * v) - r / 2)
    return np.clip(0.5 - d, 0.0, 1.0)


def make_object_videos(n: int, frames: int = 16, size: int = 64, seed: int = 0, *, num_objects: int = 3,
                       radius: float = 0.09, speed: float = 0.03, background: str = "texture",
                       progress: bool = False) -> VideoSet:
    """``n`` clips of ``num_objects`` coloured shapes (:data:`OBJECT_SHAPES`) moving at
    constant velocity over a still background and bouncing off the borders (Transporter
    chapter's second scene).

    ``radius`` and ``speed`` are fractions of the frame side (speed per frame). Ground
    truth: each object's centre; ``scale`` is the frame side.
    """
    n = checks.integer(n, "n", minimum=1)
    frames = checks.integer(frames, "frames", minimum=2)
    h, w = parse_size(size, 16, "size")
    seed = checks.integer(seed, "seed", minimum=0)
    num_objects = checks.integer(num_objects, "num_objects", minimum=1, maximum=12)
    radius = checks.number(radius, "radius", minimum=0.02, maximum=0.25)
    speed = checks.number(speed, "speed", minimum=0.0, maximum=0.2)
    checks.choice(background, "background", ("noise", "texture", "photo", "mixed"))
    from tqdm.auto import tqdm

    side = min(h, w)
    r = radius * side
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    clips, pts = [], []
    for v in tqdm(range(n), desc="object clips", disable=not progress, leave=False):
        rng = as_rng(np.random.default_rng([seed, v, 1]))
        bg = _background(rng, background, h, w).astype(np.float32) * 0.6 + 0.2   # keep the objects visible
        pos = np.stack([rng.uniform(r, w - r, num_objects), rng.uniform(r, h - r, num_objects)], 1)
        ang = rng.uniform(0, 2 * math.pi, num_objects)
        vel = np.stack([np.cos(ang), np.sin(ang)], 1) * speed * side * rng.uniform(0.5, 1.0, (num_objects, 1))
        spin = rng.uniform(-0.1, 0.1, num_objects)
        hue = (rng.uniform(0, 1) + np.arange(num_objects) / num_objects) % 1.0
        colors = np.stack([_hue_rgb(x) for x in hue])
        clip = np.empty((frames, 3, h, w), np.uint8)
        p = np.empty((frames, num_objects, 2), np.float32)
        for f in range(frames):
            img = bg.copy()
            for k in range(num_objects):
                m = _shape_mask(OBJECT_SHAPES[k % len(OBJECT_SHAPES)], xs, ys, pos[k], r, spin[k] * f)[..., None]
                img = img * (1 - m) + colors[k] * m
            clip[f] = np.clip(img.transpose(2, 0, 1) * 255 + 0.5, 0, 255).astype(np.uint8)
            p[f] = pos
            # move, bouncing off the borders (the centre stays r away from them)
            pos = pos + vel
            for d, lim in ((0, w), (1, h)):
                lo, hi = pos[:, d] < r, pos[:, d] > lim - 1 - r
                pos[lo, d] = 2 * r - pos[lo, d]
                pos[hi, d] = 2 * (lim - 1 - r) - pos[hi, d]
                vel[lo | hi, d] *= -1
        clips.append(clip)
        pts.append(p)
    points = torch.from_numpy(np.stack(pts))
    names = tuple(f"{OBJECT_SHAPES[k % len(OBJECT_SHAPES)]}_{k}" for k in range(num_objects))
    return VideoSet(torch.from_numpy(np.stack(clips)), points, _inside(points, h, w), names, "objects",
                    torch.full((n,), float(side)), {"seed": seed, "num_objects": num_objects, "radius": radius,
                                                     "speed": speed, "background": background})


def _hue_rgb(hue: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(float(hue), 0.85, 0.95), np.float32)


def _inside(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
