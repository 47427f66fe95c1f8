"""COCO keypoint JSON: write synthetic samples, read real or synthetic files, format results.

Used from the Foundations chapter on (and by the COCO AP evaluation in
:mod:`kpedu.metrics`). The format is the one of COCO's ``person_keypoints_*.json``:

- ``images``: ``{"id", "file_name", "height", "width"}``
- ``annotations``: ``{"id", "image_id", "category_id", "keypoints": [x1, y1, v1, ...],
  "num_keypoints", "bbox": [x, y, w, h], "area", "iscrowd"}``
- ``categories``: ``{"id", "name", "keypoints": [names], "skeleton": [[i, j], ...]}``
  with a **1-based** skeleton (kpedu's :class:`~kpedu.data.Skeleton` is 0-based; the
  conversion happens here and only here).

Coordinates are written and read **as they are**. kpedu's convention puts pixel centres at
integer coordinates, which is also how COCO's keypoints are usually read (as pixel
indices). kpedu's boxes follow the same convention (pixel ``j`` covers ``[j-0.5, j+0.5]``),
half a pixel off COCO's box convention; since ground truth and results are written in
the same convention, OKS (which only uses keypoint differences and the area) and COCO AP
are unaffected. Synthetic files keep the exact coordinates of ``v = 0`` keypoints (real
COCO files store ``0, 0, 0`` there); COCO evaluation ignores them either way.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .. import checks
from ..files import atomic_open
from .skeleton import COCO17, Skeleton

__all__ = [
    "to_coco",
    "write_coco",
    "read_coco",
    "results_to_coco",
    "as_pycocotools",
    "CocoImage",
    "CocoKeypoints",
]


def _np(x: Any) -> np.ndarray:
    """numpy view of a numpy array or torch tensor."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


#: Largest magnitude stored: :func:`read_coco` returns float32 arrays, and a larger
#: coordinate would silently become ``inf``.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------


def _sample_fields(s: Any, n: int, k: int) -> dict[str, np.ndarray | int]:
    if isinstance(s, Mapping):
        get = s.get
        where = f"samples[{n}]"
        field = lambda name: f"{where}[{name!r}]"  # noqa: E731
    else:
        get = lambda name: getattr(s, name, None)  # noqa: E731
        where = f"samples[{n}]"
        field = lambda name: f"{where}.{name}"  # noqa: E731
    kps, vis = get("keypoints"), get("visible")
    if kps is None or vis is None:
        raise ValueError(f"{where} has no 'keypoints' / 'visible'")
    kps = checks.points(kps, field("keypoints"), ndim=(2, 3), backend="numpy",
                        shape_text=f"(N, {k}, 2) or ({k}, 2)")
    vis = checks.as_array(vis, field("visible"), allow_bool=True)
    if kps.ndim == 2:  # a single person (K, 2)
        kps, vis = kps[None], vis[None]
    if kps.shape[1:] != (k, 2):
        raise ValueError(f"{field('keypoints')} must have shape (N, {k}, 2), got shape {kps.shape}")
    if vis.shape != kps.shape[:2]:
        raise ValueError(f"{field('visible')} must have shape {kps.shape[:2]} (one flag per keypoint), "
                         f"got shape {vis.shape}")
    if np.isnan(vis).any() or not np.isin(vis, (0, 1, 2)).all():
        bad = sorted({float(v) for v in vis[~np.isin(vis, (0, 1, 2))].ravel()})[:5]
        raise ValueError(f"{field('visible')} must hold COCO visibility flags 0, 1 or 2, got {bad}")
    vis = vis.astype(np.int64)
    # a NaN coordinate is allowed only where the keypoint is not labelled (v = 0); it is
    # written as 0, 0 like the unlabelled keypoints of real COCO files
    missing = np.isnan(kps).any(-1)
    if (missing & (vis > 0)).any():
        raise ValueError(f"{field('keypoints')} has NaN at a labelled keypoint (visible > 0); NaN is only "
                         "allowed where visible is 0")
    kps = np.where(missing[..., None], 0.0, kps)
    if np.abs(kps).max(initial=0.0) > _FLOAT32_MAX:
        raise ValueError(f"{field('keypoints')} must be representable in float32 (|x| <= 3.4e38), "
                         f"got {np.abs(kps).max():g}")
    npeople = kps.shape[0]
    boxes = get("boxes")
    if boxes is None:
        boxes = np.zeros((npeople, 4))
        for i in range(npeople):
            lab = kps[i][vis[i] > 0]
            if len(lab):
                lo, hi = lab.min(0), lab.max(0)
                boxes[i] = (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])
    else:
        boxes = checks.as_array(boxes, field("boxes"))
        if boxes.size != npeople * 4 or (boxes.ndim != 1 and boxes.shape[-1] != 4):
            raise ValueError(f"{field('boxes')} must have shape ({npeople}, 4) (x, y, w, h), got shape {boxes.shape}")
        boxes = boxes.reshape(npeople, 4)
        if not np.isfinite(boxes).all() or np.abs(boxes).max(initial=0.0) > _FLOAT32_MAX:
            raise ValueError(f"{field('boxes')} must be finite (and representable in float32)")
        if (boxes[:, 2:] < 0).any():
            raise ValueError(f"{field('boxes')} must have a width and height >= 0, got {boxes[:, 2:].min():g}")
    areas = get("areas")
    if areas is None:
        areas = boxes[:, 2] * boxes[:, 3]
    else:
        areas = checks.as_array(areas, field("areas")).reshape(-1)
        if areas.shape != (npeople,):
            raise ValueError(f"{field('areas')} must have shape ({npeople},) (one per person), got shape {areas.shape}")
        if not np.isfinite(areas).all() or np.abs(areas).max(initial=0.0) > _FLOAT32_MAX:
            raise ValueError(f"{field('areas')} must be finite (and representable in float32)")
        if (areas < 0).any():
            raise ValueError(f"{field('areas')} must be >= 0, got {areas.min():g}")
    h, w = get("height"), get("width")
    img = get("image")
    if (h is None or w is None) and img is not None:
        shape = _np(img).shape if not hasattr(img, "shape") else tuple(img.shape)
        if len(shape) != 3:
            raise ValueError(f"{field('image')} must be (3, H, W), got shape {tuple(shape)}")
        h, w = shape[-2], shape[-1]
    if h is None or w is None:
        raise ValueError(f"{where} has neither an image nor height/width")
    h = checks.integer(h, field("height"), minimum=1)
    w = checks.integer(w, field("width"), minimum=1)
    masks = get("masks")
    return {"keypoints": kps, "visible": vis, "boxes": boxes, "areas": areas,
            "height": h, "width": w, "masks": None if masks is None else _np(masks)}


def _id_list(ids: Any, name: str, n: int) -> list[int]:
    """``ids`` as ``n`` Python ints (a list, an integer array or tensor); floats, booleans and
    text are rejected, even ``1.0``: a COCO id is an integer."""
    if hasattr(ids, "tolist") and not isinstance(ids, (str, bytes)):
        arr = _np(ids)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got {checks.describe(ids)}")
        ids = arr.reshape(-1).tolist()
    if isinstance(ids, (str, bytes, Mapping)) or not hasattr(ids, "__len__"):
        raise TypeError(f"{name} must be a list of {n} integers, got {checks.describe(ids)}")
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"{name} must hold {n} integers (one per sample), got {len(ids)}")
    for j, i in enumerate(ids):
        if not _is_int(i):
            raise TypeError(f"{name}[{j}] must be an integer, got {checks.describe(i)}")
    return [int(i) for i in ids]


def to_coco(
    samples: Sequence[Any],
    skeleton: Skeleton = COCO17,
    image_ids: Sequence[int] | None = None,
    file_names: Sequence[str] | None = None,
    *,
    include_masks: bool = False,
) -> dict[str, Any]:
    """Ground truth in COCO keypoint format for a list of samples (Foundations chapter).

    ``samples``: :class:`~kpedu.data.Sample` objects or dicts with ``keypoints (N, K, 2)``,
    ``visible (N, K)``, optionally ``boxes``, ``areas`` and either ``image`` or
    ``height``/``width`` (numpy or torch, e.g. :class:`~kpedu.data.SyntheticPeople` items).
    ``image_ids`` default to ``1..len(samples)``; ``file_names`` to
    ``"synthetic_{id:06d}.png"``. Annotation ids run from 1 (pycocotools needs ids > 0).
    ``include_masks=True`` adds each person's visible mask as a compressed RLE
    ``segmentation`` (needs the samples' ``masks``).

    Values are checked (``ValueError``/``TypeError`` naming ``samples[i]['field']``):
    keypoints finite and within float32 (NaN only where ``visible`` is 0: such a keypoint
    is written as ``0, 0``, like the unlabelled keypoints of real COCO files), flags 0, 1
    or 2, boxes finite with ``w, h >= 0``, areas finite and ``>= 0``, ``height`` and
    ``width`` positive integers, ``image_ids`` integers.
    """
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"skeleton must be a Skeleton, got {type(skeleton).__name__}")
    if isinstance(samples, (Mapping, str, bytes)) or not hasattr(samples, "__len__"):
        raise TypeError("samples must be a list of samples")
    n = len(samples)
    if image_ids is None:
        image_ids = list(range(1, n + 1))
    image_ids = _id_list(image_ids, "image_ids", n)
    if len(set(image_ids)) != n:
        raise ValueError("image_ids must be unique")
    if file_names is None:
        file_names = [f"synthetic_{i:06d}.png" for i in image_ids]
    if isinstance(file_names, (str, bytes)) or not hasattr(file_names, "__len__") or len(file_names) != n \
            or not all(isinstance(f, str) for f in file_names):
        raise ValueError(f"file_names must be {n} strings (one per sample), got {checks.describe(file_names)}")
    k = skeleton.num_keypoints
    images, anns = [], []
    ann_id = 1
    for idx, (s, iid, fname) in enumerate(zip(samples, image_ids, file_names)):
        f = _sample_fields(s, idx, k)
        images.append({"id": iid, "file_name": fname, "height": f["height"], "width": f["width"]})
        masks = f["masks"]
        if include_masks and masks is None:
            raise ValueError(f"include_masks=True but sample {idx} has no masks")
        for p in range(f["keypoints"].shape[0]):
            kp, v = f["keypoints"][p], f["visible"][p]
            flat: list[float | int] = []
            for (x, y), vv in zip(kp, v):
                flat += [float(x), float(y), int(vv)]
            ann = {
                "id": ann_id,
                "image_id": iid,
                "category_id": 1,
                "keypoints": flat,
                "num_keypoints": int((v > 0).sum()),
                "bbox": [float(b) for b in f["boxes"][p]],
                "area": float(f["areas"][p]),
                "iscrowd": 0,
            }
            if include_masks:
                from pycocotools import mask as mask_utils

                rle = mask_utils.encode(np.asfortranarray(masks[p].astype(np.uint8)))
                ann["segmentation"] = {"size": [int(x) for x in rle["size"]],
                                       "counts": rle["counts"].decode("ascii")}
            anns.append(ann)
            ann_id += 1
    return {
        "info": {"description": "kpedu synthetic people", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(skeleton.keypoint_names),
                "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs],
            }
        ],
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("ascii")
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def write_coco(path: str | Path, coco_dict: Mapping[str, Any]) -> Path:
    """Write a COCO dict (e.g. from :func:`to_coco`) to ``path`` as JSON (Foundations chapter).

    Parent folders are created. The file is written to a temporary file in the same
    folder and renamed into place (:func:`kpedu.files.atomic_open`), so a failure leaves
    the previous file intact. NaN or inf values are refused (JSON cannot hold them).
    Returns the path.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a file path (str or Path), got {checks.describe(path)}")
    if not isinstance(coco_dict, Mapping):
        raise TypeError(f"coco_dict must be a dict, got {type(coco_dict).__name__}")
    _check_top(coco_dict, "coco_dict")
    try:  # serialise first: a value JSON cannot hold fails before the file is touched
        text = json.dumps(coco_dict, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise type(e)(f"coco_dict cannot be written as JSON: {e}") from None
    path = Path(path)
    with atomic_open(path, "w") as fh:  # a temporary file renamed into place: never half a file
        fh.write(text)
    return path


# ----------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------


@dataclass
class CocoImage:
    """One image of a COCO keypoint file and its annotations of the keypoint category.

    ``keypoints (N, K, 2)`` float32, ``visible (N, K)`` uint8, ``boxes (N, 4)`` float32
    ``(x, y, w, h)``, ``areas (N,)`` float32, ``iscrowd (N,)`` bool, ``ann_ids (N,)`` int64.
    ``height`` / ``width`` are ``None`` when the file does not give them.
    """

    id: int
    file_name: str
    height: int | None
    width: int | None
    keypoints: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    iscrowd: np.ndarray
    ann_ids: np.ndarray

    @property
    def num_people(self) -> int:
        """Number of annotations (crowd regions included)."""
        return int(self.keypoints.shape[0])


@dataclass
class CocoKeypoints:
    """A loaded COCO keypoint file (Foundations chapter): one :class:`CocoImage` per image
    (in file order, images without annotations included) and the keypoint category."""

    images: list[CocoImage]
    category_id: int
    category_name: str
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]  # 0-based limbs
    _by_id: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {im.id: i for i, im in enumerate(self.images)}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> CocoImage:
        if isinstance(i, slice):
            return self.images[i]
        return self.images[checks.index(i, len(self.images), "index")]

    def __iter__(self) -> Iterator[CocoImage]:
        return iter(self.images)

    @property
    def image_ids(self) -> list[int]:
        return [im.id for im in self.images]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def num_annotations(self) -> int:
        return sum(im.num_people for im in self.images)

    def get(self, image_id: int) -> CocoImage:
        """The image with COCO id ``image_id`` (``KeyError`` if absent)."""
        image_id = checks.integer(image_id, "image_id")
        try:
            return self.images[self._by_id[image_id]]
        except KeyError:
            raise KeyError(f"image_id {image_id} is not an image of this file") from None

    def to_skeleton(self, sigmas: Sequence[float] | None = None) -> Skeleton:
        """A :class:`Skeleton` for this category. COCO-17 names give :data:`COCO17`
        (when ``sigmas`` is None); otherwise flip pairs are inferred from ``left_*`` /
        ``right_*`` names and ``sigmas`` must be given."""
        if tuple(self.keypoint_names) == COCO17.keypoint_names and sigmas is None:
            return COCO17
        if sigmas is None:
            raise ValueError("sigmas must be given for a skeleton that is not COCO-17")
        names = list(self.keypoint_names)
        flips = []
        for i, nm in enumerate(names):
            if nm.startswith("left_") and ("right_" + nm[5:]) in names:
                flips.append((i, names.index("right_" + nm[5:])))
        return Skeleton(self.category_name, tuple(names), self.skeleton, tuple(flips), tuple(sigmas))


def _check_top(d: Mapping[str, Any], name: str = "COCO JSON") -> None:
    for key in ("images", "annotations", "categories"):
        if key not in d:
            raise ValueError(f"{name} is missing the top-level key {key!r}")
        if not isinstance(d[key], list):
            raise ValueError(f"{name} key {key!r} must be a list, got {type(d[key]).__name__}")


_JSON_NUMBER_TYPES = frozenset((int, float))


def _json_numbers(values: list, what: str, label: Any = None) -> np.ndarray:
    """The numbers of a JSON list as float64: each a finite int or float (not a boolean, a
    text or null) whose magnitude float32 can hold, since the arrays read are float32.
    ``label(j)`` names entry ``j`` in error messages (default ``what[j]``)."""
    label = label or (lambda j: f"{what}[{j}]")
    if not all(type(x) in _JSON_NUMBER_TYPES for x in values):  # fast path: plain ints and floats
        for j, x in enumerate(values):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
                raise ValueError(f"{label(j)} must be a number, got {x!r}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except OverflowError:  # a Python int beyond float64
        arr = np.asarray([math.inf if abs(x) > _FLOAT32_MAX else x for x in values], dtype=np.float64)
    if not np.abs(arr).max(initial=0.0) <= _FLOAT32_MAX:  # NaN, inf or beyond float32
        bad = ~(np.abs(arr) <= _FLOAT32_MAX)
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{label(j)} must be finite and representable in float32 (|x| <= 3.4e38), "
                         f"got {values[j]!r}")
    return arr


def _json_number(x: Any, what: str) -> float:
    """One number of a JSON file (as :func:`_json_numbers`)."""
    if type(x) not in _JSON_NUMBER_TYPES and (
            isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating))):
        raise ValueError(f"{what} must be a number, got {x!r}")
    try:
        value = float(x)
    except OverflowError:  # a Python int beyond float64
        value = math.inf
    if not abs(value) <= _FLOAT32_MAX:
        raise ValueError(f"{what} must be finite and representable in float32 (|x| <= 3.4e38), got {x!r}")
    return value


def _keypoint_label(where: str):
    parts = ("x", "y", "visibility flag")
    return lambda j: f"{where}: 'keypoints'[{j}] (the {parts[j % 3]} of keypoint {j // 3})"


def read_coco(source: str | Path | Mapping[str, Any], category_id: int | None = None) -> CocoKeypoints:
    """Load a COCO keypoint file or dict (Foundations chapter).

    Works on kpedu's own files and on real ``person_keypoints_*.json``: several
    categories (only the keypoint category is read: ``category_id``, or the single
    category with a ``keypoints`` list, or the one named ``person``), crowd annotations
    (kept, with ``iscrowd=True``) and images without annotations (empty arrays).
    Structure and values are validated with ``ValueError`` messages that name the field
    and the offending entry (``annotations[i] (id ...)``, ``images[i]``): ids, ``image_id``
    and ``category_id`` are integers; ``keypoints`` has ``3 K`` numbers with visibility
    flags 0, 1 or 2; ``bbox`` is 4 numbers with ``w, h >= 0``; ``area >= 0``;
    ``iscrowd`` is 0/1 (or false/true); every number is finite and fits in float32.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no COCO file at {path}")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
    elif isinstance(source, Mapping):
        d = source
    else:
        raise TypeError(f"source must be a path or a dict, got {type(source).__name__}")
    if not isinstance(d, Mapping):
        raise ValueError("COCO JSON must be an object at the top level")
    _check_top(d)

    # category
    if category_id is not None:
        category_id = checks.integer(category_id, "category_id")
    cats = d["categories"]
    for i, c in enumerate(cats):
        if not isinstance(c, Mapping) or "id" not in c:
            raise ValueError(f"categories[{i}] must be an object with an 'id'")
        if not _is_int(c["id"]):
            raise ValueError(f"categories[{i}]: 'id' must be an integer, got {c['id']!r}")
    kp_cats = [c for c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]]
    if category_id is not None:
        match = [c for c in cats if c["id"] == category_id]
        if not match:
            raise ValueError(f"category_id {category_id} is not a category of this file; ids: {[c['id'] for c in cats]}")
        cat = match[0]
        if not (isinstance(cat.get("keypoints"), list) and cat["keypoints"]):
            raise ValueError(f"category_id {category_id} ({cat.get('name')!r}) has no keypoints")
    elif not kp_cats:
        raise ValueError("no category has a 'keypoints' list; this is not a keypoint file")
    elif len(kp_cats) == 1:
        cat = kp_cats[0]
    else:
        persons = [c for c in kp_cats if c.get("name") == "person"]
        if len(persons) != 1:
            raise ValueError(
                f"several keypoint categories {[c['id'] for c in kp_cats]}; pass category_id"
            )
        cat = persons[0]
    names = tuple(str(n) for n in cat["keypoints"])
    k = len(names)
    limbs = []
    for i, pair in enumerate(cat.get("skeleton", []) or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
            raise ValueError(f"category skeleton[{i}] = {pair!r} is not a pair of ints")
        a, b = int(pair[0]) - 1, int(pair[1]) - 1
        if not (0 <= a < k and 0 <= b < k):
            raise ValueError(f"category skeleton[{i}] = {pair!r} is out of range 1..{k} (it is 1-based)")
        limbs.append((a, b))

    # images
    imgs: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    for i, im in enumerate(d["images"]):
        if not isinstance(im, Mapping) or "id" not in im or not _is_int(im["id"]):
            got = im.get("id") if isinstance(im, Mapping) else im
            raise ValueError(f"images[{i}] must be an object with an integer 'id', got {got!r}")
        iid = int(im["id"])
        if iid in imgs:
            raise ValueError(f"images[{i}]: duplicate image id {iid}")
        hw = []
        for key in ("height", "width"):
            v = im.get(key)
            if v is not None and (not _is_int(v) or v <= 0):
                raise ValueError(f"images[{i}] (id {iid}): {key} must be a positive int, got {v!r}")
            hw.append(None if v is None else int(v))
        imgs[iid] = {"file_name": str(im.get("file_name", "")), "height": hw[0], "width": hw[1],
                     "kps": [], "vis": [], "box": [], "area": [], "crowd": [], "ids": []}
        order.append(iid)

    # annotations
    for i, a in enumerate(d["annotations"]):
        if not isinstance(a, Mapping):
            raise ValueError(f"annotations[{i}] must be an object")
        for key in ("image_id", "category_id"):
            if key not in a:
                raise ValueError(f"annotations[{i}] has no {key!r}")
            if not _is_int(a[key]):
                raise ValueError(f"annotations[{i}]: {key!r} must be an integer, got {a[key]!r}")
        if a["category_id"] != cat["id"]:
            continue
        aid = a.get("id", i + 1)
        if not _is_int(aid):
            raise ValueError(f"annotations[{i}]: 'id' must be an integer, got {aid!r}")
        where = f"annotations[{i}] (id {aid})"
        if a["image_id"] not in imgs:
            raise ValueError(f"{where}: image_id {a['image_id']!r} is not in 'images'")
        kp = a.get("keypoints")
        if not isinstance(kp, list):
            raise ValueError(f"{where} of keypoint category {cat['id']} has no 'keypoints' list")
        if len(kp) != 3 * k:
            raise ValueError(f"{where}: 'keypoints' has {len(kp)} numbers, expected 3 x {k}")
        arr = _json_numbers(kp, f"{where}: 'keypoints'", _keypoint_label(where)).reshape(k, 3)
        v = arr[:, 2]
        if not ((v == 0) | (v == 1) | (v == 2)).all():
            bad = [kp[3 * j + 2] for j in range(k) if v[j] not in (0, 1, 2)][:5]
            raise ValueError(f"{where}: visibility flags (every third number of 'keypoints') must be 0, 1 or 2, "
                             f"got {bad}")
        box = a.get("bbox")
        if box is None:
            lab = arr[v > 0, :2]
            box = [0.0, 0.0, 0.0, 0.0] if len(lab) == 0 else [
                *lab.min(0).tolist(), *(lab.max(0) - lab.min(0)).tolist()]
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            raise ValueError(f"{where}: 'bbox' must be a list [x, y, w, h] of 4 numbers, got {box!r}")
        box = _json_numbers(box, f"{where}: 'bbox'").tolist()
        if box[2] < 0 or box[3] < 0:
            raise ValueError(f"{where}: 'bbox' [x, y, w, h] must have w >= 0 and h >= 0, got {box!r}")
        area = _json_number(a["area"], f"{where}: 'area'") if "area" in a else box[2] * box[3]
        if not area >= 0:
            raise ValueError(f"{where}: 'area' must be >= 0, got {a['area']!r}")
        crowd = a.get("iscrowd", 0)
        if isinstance(crowd, (bool, np.bool_)) or (
                isinstance(crowd, (int, float, np.integer, np.floating)) and crowd in (0, 1)):
            crowd = bool(crowd)
        else:
            raise ValueError(f"{where}: 'iscrowd' must be 0 or 1 (or false / true), got {crowd!r}")
        e = imgs[a["image_id"]]
        e["kps"].append(arr[:, :2])
        e["vis"].append(v)
        e["box"].append(box)
        e["area"].append(float(area))
        e["crowd"].append(crowd)
        e["ids"].append(int(aid))

    images = []
    for iid in order:
        e = imgs[iid]
        n = len(e["kps"])
        images.append(
            CocoImage(
                id=iid,
                file_name=e["file_name"],
                height=e["height"],
                width=e["width"],
                keypoints=np.asarray(e["kps"], np.float32).reshape(n, k, 2),
                visible=np.asarray(e["vis"], np.uint8).reshape(n, k),
                boxes=np.asarray(e["box"], np.float32).reshape(n, 4),
                areas=np.asarray(e["area"], np.float32).reshape(n),
                iscrowd=np.asarray(e["crowd"], bool).reshape(n),
                ann_ids=np.asarray(e["ids"], np.int64).reshape(n),
            )
        )
    return CocoKeypoints(
        images=images,
        category_id=int(cat["id"]),
        category_name=str(cat.get("name", "")),
        keypoint_names=names,
        skeleton=tuple(limbs),
    )


# ----------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------


def results_to_coco(
    image_id: int,
    keypoints: Any,
    keypoint_scores: Any,
    scores: Any,
    category_id: int = 1,
) -> list[dict[str, Any]]:
    """Detections of one image in the pycocotools results format (Foundations chapter).

    ``keypoints (N, K, 2)``, ``keypoint_scores (N, K)``, ``scores (N,)`` (numpy or torch)
    become ``N`` dicts ``{"image_id", "category_id", "keypoints": [x, y, s, ...],
    "score"}``; collect them over images and pass the list to ``COCO.loadRes``.
    Coordinates are written as they are (same convention as :func:`to_coco`).
    """
    image_id = checks.integer(image_id, "image_id")
    category_id = checks.integer(category_id, "category_id")
    kps = checks.points(keypoints, "keypoints", ndim=3, backend="numpy", shape_text="(N, K, 2)")
    if np.isnan(kps).any():
        raise ValueError("keypoints must not contain NaN: COCO results cannot hold a missing keypoint; "
                         "write it at any position with keypoint score 0 (OKS ignores the scores)")
    ks = checks.as_array(keypoint_scores, "keypoint_scores")
    sc = checks.as_array(scores, "scores")
    if ks.shape != kps.shape[:2]:
        raise ValueError(f"keypoint_scores must have shape {kps.shape[:2]}, got {ks.shape}")
    if sc.shape != kps.shape[:1]:
        raise ValueError(f"scores must have shape ({kps.shape[0]},), got {sc.shape}")
    for name, arr in (("keypoint_scores", ks), ("scores", sc)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite, got NaN or inf")
    out = []
    for p in range(kps.shape[0]):
        flat = np.concatenate([kps[p], ks[p][:, None]], axis=1).reshape(-1)
        out.append({
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in flat],
            "score": float(sc[p]),
        })
    return out


def as_pycocotools(coco_dict: Mapping[str, Any]):
    """A ``pycocotools.coco.COCO`` object built from a dict, without touching disk and
    without pycocotools' console output (Foundations chapter)."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    if not isinstance(coco_dict, Mapping):
        raise TypeError(f"coco_dict must be a dict, got {type(coco_dict).__name__}")
    _check_top(coco_dict, "coco_dict")
    c = COCO()
    c.dataset = dict(coco_dict)
    with contextlib.redirect_stdout(io.StringIO()):
        c.createIndex()
    return c
