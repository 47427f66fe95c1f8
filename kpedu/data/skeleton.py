"""Skeleton metainfo as data: keypoint names, limbs, flip pairs, OKS sigmas, colours.

Used from the Foundations chapter on. A :class:`Skeleton` is a frozen description of a
keypoint layout; the COCO-17 person skeleton ships as ``skeletons/coco17.json`` and is
loaded once into the module constant :data:`COCO17`.

All indices are **0-based** (COCO's JSON ``skeleton`` field is 1-based;
:mod:`kpedu.data.coco` converts when reading and writing).
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["Skeleton", "load_skeleton", "available_skeletons", "COCO17", "SKELETON_DIR"]

#: Folder holding the bundled skeleton JSON files.
SKELETON_DIR = Path(__file__).resolve().parent / "skeletons"

Color = tuple[float, float, float]


def _parse_color(c: Any, where: str) -> Color:
    """A colour as ``"#rrggbb"``, ``[r, g, b]`` in 0..255 (ints) or 0..1 (floats)."""
    if isinstance(c, str):
        s = c.strip().lstrip("#")
        if len(s) != 6:
            raise ValueError(f"{where}: colour {c!r} is not of the form '#rrggbb'")
        try:
            return tuple(int(s[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            raise ValueError(f"{where}: colour {c!r} is not valid hexadecimal") from None
    if isinstance(c, (list, tuple)) and len(c) == 3:
        vals = [float(v) for v in c]
        if any(not math.isfinite(v) or v < 0 for v in vals):
            raise ValueError(f"{where}: colour {c!r} has negative or non-finite entries")
        if all(isinstance(v, (int, np.integer)) for v in c) and max(vals) > 1:
            vals = [v / 255.0 for v in vals]
        if max(vals) > 1.0:
            raise ValueError(f"{where}: float colour {c!r} must lie in [0, 1]")
        return (vals[0], vals[1], vals[2])
    raise ValueError(f"{where}: colour {c!r} must be '#rrggbb' or a triple [r, g, b]")


def _hex(c: Color) -> str:
    return "#" + "".join(f"{int(round(v * 255)):02x}" for v in c)


def _pairs(value: Any, what: str, k: int) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{what} must be a list of index pairs, got {type(value).__name__}")
    out = []
    for n, p in enumerate(value):
        if not isinstance(p, (list, tuple, np.ndarray)) or len(p) != 2:
            raise ValueError(f"{what}[{n}] = {p!r} is not a pair of indices")
        a, b = p
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b)):
            raise TypeError(f"{what}[{n}] = {p!r} must hold integers")
        a, b = int(a), int(b)
        if not (0 <= a < k and 0 <= b < k):
            raise ValueError(
                f"{what}[{n}] = ({a}, {b}) is out of range for {k} keypoints (indices are 0-based)"
            )
        if a == b:
            raise ValueError(f"{what}[{n}] = ({a}, {b}) joins a keypoint to itself")
        out.append((a, b))
    return tuple(out)


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout (Foundations chapter).

    Attributes
    ----------
    name:
        Short identifier, e.g. ``"coco17"``.
    keypoint_names:
        Names in dataset order; ``K = len(keypoint_names)``.
    limbs:
        Pairs ``(i, j)`` of 0-based keypoint indices joined when drawing (COCO "skeleton").
    flip_pairs:
        Pairs ``(left, right)`` exchanged by a horizontal flip.
    sigmas:
        Per-keypoint OKS constants (length ``K``).
    limb_colors:
        One RGB colour in ``[0, 1]`` per limb, for drawing.

    Lists are converted to tuples, so a skeleton is hashable and immutable. Everything is
    validated on construction: indices in range, flip pairs disjoint (so the flip
    permutation is an involution), positive sigmas of length ``K``, one colour per limb.
    """

    name: str
    keypoint_names: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    limb_colors: tuple[Color, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Skeleton.name must be a non-empty string")
        names = self.keypoint_names
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise TypeError("keypoint_names must be a list of strings")
        names = tuple(names)
        if not names:
            raise ValueError("a skeleton needs at least one keypoint")
        if not all(isinstance(n, str) and n for n in names):
            raise TypeError("every keypoint name must be a non-empty string")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate keypoint names: {dup}")
        k = len(names)
        limbs = _pairs(list(self.limbs), "limbs", k)
        flips = _pairs(list(self.flip_pairs), "flip_pairs", k)
        used: set[int] = set()
        for a, b in flips:
            if a in used or b in used:
                raise ValueError(
                    f"flip_pairs use keypoint {a if a in used else b} twice; the flip "
                    "permutation would not be an involution"
                )
            used.update((a, b))
        sigmas = self.sigmas
        if hasattr(sigmas, "tolist") and not isinstance(sigmas, (str, bytes)):  # numpy array or tensor
            sigmas = sigmas.tolist()
        if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Iterable):
            raise TypeError(f"sigmas must be a list of numbers, got {type(sigmas).__name__}")
        sigmas = list(sigmas)
        for i, s in enumerate(sigmas):
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, (numbers.Real, np.floating, np.integer)):
                raise TypeError(f"sigmas[{i}] must be a number, got {s!r}")
        sig = tuple(float(s) for s in sigmas)
        if len(sig) != k:
            raise ValueError(f"sigmas has length {len(sig)} but there are {k} keypoints")
        if not all(math.isfinite(s) and s > 0 for s in sig):
            raise ValueError(f"sigmas must be finite and positive, got {list(sig)}")
        colors_in = list(self.limb_colors)
        if not colors_in:
            colors = tuple((0.2, 0.6, 1.0) for _ in limbs)
        else:
            if len(colors_in) != len(limbs):
                raise ValueError(
                    f"limb_colors has {len(colors_in)} entries but there are {len(limbs)} limbs"
                )
            colors = tuple(_parse_color(c, f"limb_colors[{i}]") for i, c in enumerate(colors_in))
        object.__setattr__(self, "keypoint_names", names)
        object.__setattr__(self, "limbs", limbs)
        object.__setattr__(self, "flip_pairs", flips)
        object.__setattr__(self, "sigmas", sig)
        object.__setattr__(self, "limb_colors", colors)

    @property
    def num_keypoints(self) -> int:
        """``K``, the number of keypoints."""
        return len(self.keypoint_names)

    def __len__(self) -> int:
        return self.num_keypoints

    def index(self, name: str) -> int:
        """The 0-based index of keypoint ``name`` (``ValueError`` listing the names if unknown)."""
        try:
            return self.keypoint_names.index(name)
        except ValueError:
            raise ValueError(
                f"{name!r} is not a keypoint of skeleton {self.name!r}; "
                f"known: {', '.join(self.keypoint_names)}"
            ) from None

    @property
    def flip_permutation(self) -> np.ndarray:
        """Integer array ``p`` with ``p[i]`` the index of keypoint ``i``'s mirror image.

        Unpaired keypoints (e.g. the nose) map to themselves; ``p[p] == arange(K)``.
        After flipping an image horizontally, keypoints are re-ordered with
        ``kps_flipped = kps_mirrored[..., p, :]``.
        """
        p = np.arange(self.num_keypoints, dtype=np.int64)
        for a, b in self.flip_pairs:
            p[a], p[b] = b, a
        return p

    @property
    def sigmas_array(self) -> np.ndarray:
        """The OKS sigmas as a float64 array of shape ``(K,)``."""
        return np.asarray(self.sigmas, dtype=np.float64)

    @property
    def limbs_array(self) -> np.ndarray:
        """The limbs as an int64 array of shape ``(L, 2)`` (0-based)."""
        return np.asarray(self.limbs, dtype=np.int64).reshape(-1, 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``Skeleton.from_dict(s.to_dict()) == s``."""
        return {
            "name": self.name,
            "keypoint_names": list(self.keypoint_names),
            "limbs": [list(p) for p in self.limbs],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "sigmas": list(self.sigmas),
            "limb_colors": [_hex(c) for c in self.limb_colors],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Skeleton":
        """Build a skeleton from a dict as written by :meth:`to_dict` (extra keys ignored)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"a skeleton description must be a dict, got {type(d).__name__}")
        missing = [k for k in ("name", "keypoint_names", "limbs", "flip_pairs", "sigmas") if k not in d]
        if missing:
            raise ValueError(f"skeleton description is missing {', '.join(missing)}")
        return cls(
            name=d["name"],
            keypoint_names=d["keypoint_names"],
            limbs=d["limbs"],
            flip_pairs=d["flip_pairs"],
            sigmas=d["sigmas"],
            limb_colors=d.get("limb_colors", ()),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> "Skeleton":
        """Load and validate a skeleton JSON file (see ``skeletons/coco17.json``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no skeleton file at {path}")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(d)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{path}: {e}") from None

    def subset(self, names: Iterable[str], name: str | None = None) -> "Skeleton":
        """The skeleton restricted to ``names`` (in that order); limbs and flip pairs
        whose keypoints are not all kept are dropped."""
        if isinstance(names, (str, bytes)):
            raise TypeError(f"names must be a list of keypoint names, got the text {names!r}")
        names = list(names)
        try:
            idx = [self.index(n) for n in names]
        except ValueError as e:
            raise ValueError(f"names: {e}") from None
        if len(set(idx)) != len(idx):
            raise ValueError(f"names must not repeat a keypoint, got {names}")
        remap = {old: new for new, old in enumerate(idx)}
        limbs, colors = [], []
        for (a, b), c in zip(self.limbs, self.limb_colors):
            if a in remap and b in remap:
                limbs.append((remap[a], remap[b]))
                colors.append(c)
        flips = [(remap[a], remap[b]) for a, b in self.flip_pairs if a in remap and b in remap]
        return Skeleton(
            name=name or f"{self.name}_subset{len(names)}",
            keypoint_names=tuple(names),
            limbs=tuple(limbs),
            flip_pairs=tuple(flips),
            sigmas=tuple(self.sigmas[i] for i in idx),
            limb_colors=tuple(colors),
        )


def available_skeletons() -> list[str]:
    """Names of the skeletons bundled with kpedu (Foundations chapter)."""
    return sorted(p.stem for p in SKELETON_DIR.glob("*.json"))


def load_skeleton(name: str | Path = "coco17") -> Skeleton:
    """Load a bundled skeleton by name (e.g. ``"coco17"``) or from a JSON file path.

    Used in the Foundations chapter. Raises ``ValueError`` naming the bundled skeletons
    when ``name`` is neither.
    """
    if not isinstance(name, (str, Path)):
        raise TypeError(f"name must be a string or path, got {type(name).__name__}")
    p = Path(name)
    if p.suffix == ".json" or p.is_file():
        return Skeleton.from_json(p)
    bundled = SKELETON_DIR / f"{name}.json"
    if not bundled.is_file():
        raise ValueError(
            f"name: unknown skeleton {str(name)!r}; bundled: {', '.join(available_skeletons())} "
            "(or pass a path to a .json file)"
        )
    return Skeleton.from_json(bundled)


#: The COCO-17 person skeleton.
COCO17: Skeleton = load_skeleton("coco17")
