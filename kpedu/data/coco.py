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


# ----------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------


def _sample_fields(s: Any, n: int, k: int) -> dict[str, np.ndarray | int]:
    get = (lambda name: s.get(name)) if isinstance(s, Mapping) else (lambda name: getattr(s, name, None))
    kps, vis = get("keypoints"), get("visible")
    if kps is None or vis is None:
        raise ValueError(f"sample {n} has no 'keypoints' / 'visible'")
    kps = _np(kps).astype(np.float64)
    vis = _np(vis)
    if kps.ndim == 2:  # a single person (K, 2)
        kps, vis = kps[None], vis[None]
    if kps.ndim != 3 or kps.shape[1:] != (k, 2):
        raise ValueError(f"sample {n}: keypoints must have shape (N, {k}, 2), got {kps.shape}")
    if vis.shape != kps.shape[:2]:
        raise ValueError(f"sample {n}: visible must have shape {kps.shape[:2]}, got {vis.shape}")
    if not np.isfinite(kps).all():
        raise ValueError(f"sample {n}: keypoints contain NaN or inf")
    if not np.isin(vis, (0, 1, 2)).all():
        raise ValueError(f"sample {n}: visibility values must be 0, 1 or 2")
    vis = vis.astype(np.int64)
    npeople = kps.shape[0]
    boxes = get("boxes")
    if boxes is None:
        boxes = np.zeros((npeople, 4))
        for i in range(npeople):
            lab = kps[i][vis[i] > 0]
            if len(lab):
                lo, hi = lab.min(0), lab.max(0)
                boxes[i] = (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])
    boxes = _np(boxes).astype(np.float64).reshape(-1, 4) if npeople else np.zeros((0, 4))
    if boxes.shape != (npeople, 4):
        raise ValueError(f"sample {n}: boxes must have shape ({npeople}, 4), got {boxes.shape}")
    areas = get("areas")
    areas = boxes[:, 2] * boxes[:, 3] if areas is None else _np(areas).astype(np.float64).reshape(-1)
    if areas.shape != (npeople,):
        raise ValueError(f"sample {n}: areas must have shape ({npeople},), got {areas.shape}")
    if not (np.isfinite(boxes).all() and np.isfinite(areas).all()):
        raise ValueError(f"sample {n}: boxes or areas contain NaN or inf")
    h, w = get("height"), get("width")
    img = get("image")
    if (h is None or w is None) and img is not None:
        shape = _np(img).shape if not hasattr(img, "shape") else tuple(img.shape)
        if len(shape) != 3:
            raise ValueError(f"sample {n}: image must be (3, H, W), got shape {shape}")
        h, w = shape[-2], shape[-1]
    if h is None or w is None:
        raise ValueError(f"sample {n} has neither an image nor height/width")
    masks = get("masks")
    return {"keypoints": kps, "visible": vis, "boxes": boxes, "areas": areas,
            "height": int(h), "width": int(w), "masks": None if masks is None else _np(masks)}


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
    """
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"skeleton must be a Skeleton, got {type(skeleton).__name__}")
    if isinstance(samples, (Mapping, str, bytes)) or not hasattr(samples, "__len__"):
        raise TypeError("samples must be a list of samples")
    n = len(samples)
    if image_ids is None:
        image_ids = list(range(1, n + 1))
    image_ids = [int(i) if _is_int(i) else i for i in image_ids]
    if len(image_ids) != n or not all(_is_int(i) for i in image_ids):
        raise ValueError(f"image_ids must be {n} integers")
    if len(set(image_ids)) != n:
        raise ValueError("image_ids must be unique")
    if file_names is None:
        file_names = [f"synthetic_{i:06d}.png" for i in image_ids]
    if len(file_names) != n or not all(isinstance(f, str) for f in file_names):
        raise ValueError(f"file_names must be {n} strings")
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

    Parent folders are created. Returns the path.
    """
    if not isinstance(coco_dict, Mapping):
        raise TypeError(f"coco_dict must be a dict, got {type(coco_dict).__name__}")
    _check_top(coco_dict)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(coco_dict, fh, default=_json_default, allow_nan=False)
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
        return self.images[i]

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
        try:
            return self.images[self._by_id[int(image_id)]]
        except KeyError:
            raise KeyError(f"no image with id {image_id}") from None

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


def _check_top(d: Mapping[str, Any]) -> None:
    for key in ("images", "annotations", "categories"):
        if key not in d:
            raise ValueError(f"COCO JSON is missing the top-level key {key!r}")
        if not isinstance(d[key], list):
            raise ValueError(f"COCO JSON key {key!r} must be a list, got {type(d[key]).__name__}")


def read_coco(source: str | Path | Mapping[str, Any], category_id: int | None = None) -> CocoKeypoints:
    """Load a COCO keypoint file or dict (Foundations chapter).

    Works on kpedu's own files and on real ``person_keypoints_*.json``: several
    categories (only the keypoint category is read: ``category_id``, or the single
    category with a ``keypoints`` list, or the one named ``person``), crowd annotations
    (kept, with ``iscrowd=True``) and images without annotations (empty arrays).
    Structure is validated with ``ValueError`` messages that name the offending entry.
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
    cats = d["categories"]
    for i, c in enumerate(cats):
        if not isinstance(c, Mapping) or "id" not in c:
            raise ValueError(f"categories[{i}] must be an object with an 'id'")
    kp_cats = [c for c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]]
    if category_id is not None:
        match = [c for c in cats if c["id"] == category_id]
        if not match:
            raise ValueError(f"no category with id {category_id}; ids: {[c['id'] for c in cats]}")
        cat = match[0]
        if not (isinstance(cat.get("keypoints"), list) and cat["keypoints"]):
            raise ValueError(f"category {category_id} ({cat.get('name')!r}) has no keypoints")
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
            raise ValueError(f"images[{i}] must be an object with an integer 'id'")
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
        if a["category_id"] != cat["id"]:
            continue
        aid = a.get("id", i + 1)
        if a["image_id"] not in imgs:
            raise ValueError(f"annotation {aid}: image_id {a['image_id']!r} is not in 'images'")
        kp = a.get("keypoints")
        if not isinstance(kp, list):
            raise ValueError(f"annotation {aid} of keypoint category {cat['id']} has no 'keypoints' list")
        if len(kp) != 3 * k:
            raise ValueError(f"annotation {aid}: 'keypoints' has {len(kp)} numbers, expected 3 x {k}")
        try:
            arr = np.asarray(kp, np.float64).reshape(k, 3)
        except (TypeError, ValueError):
            raise ValueError(f"annotation {aid}: 'keypoints' must hold numbers") from None
        if not np.isfinite(arr).all():
            raise ValueError(f"annotation {aid}: 'keypoints' contain NaN or inf")
        v = arr[:, 2]
        if not np.isin(v, (0, 1, 2)).all():
            raise ValueError(f"annotation {aid}: visibility flags must be 0, 1 or 2, got {sorted(set(v.tolist()))}")
        box = a.get("bbox")
        if box is None:
            lab = arr[v > 0, :2]
            box = [0.0, 0.0, 0.0, 0.0] if len(lab) == 0 else [
                *lab.min(0).tolist(), *(lab.max(0) - lab.min(0)).tolist()]
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            raise ValueError(f"annotation {aid}: 'bbox' must be [x, y, w, h], got {box!r}")
        box = [float(b) for b in box]
        area = float(a.get("area", box[2] * box[3]))
        if not all(math.isfinite(b) for b in [*box, area]):
            raise ValueError(f"annotation {aid}: bbox or area is not finite")
        e = imgs[a["image_id"]]
        e["kps"].append(arr[:, :2])
        e["vis"].append(v)
        e["box"].append(box)
        e["area"].append(area)
        e["crowd"].append(bool(a.get("iscrowd", 0)))
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
    if not _is_int(image_id):
        raise TypeError(f"image_id must be an int, got {type(image_id).__name__}")
    if not _is_int(category_id):
        raise TypeError(f"category_id must be an int, got {type(category_id).__name__}")
    kps = _np(keypoints).astype(np.float64)
    ks = _np(keypoint_scores).astype(np.float64)
    sc = _np(scores).astype(np.float64)
    if kps.ndim != 3 or kps.shape[2] != 2:
        raise ValueError(f"keypoints must have shape (N, K, 2), got {kps.shape}")
    if ks.shape != kps.shape[:2]:
        raise ValueError(f"keypoint_scores must have shape {kps.shape[:2]}, got {ks.shape}")
    if sc.shape != kps.shape[:1]:
        raise ValueError(f"scores must have shape ({kps.shape[0]},), got {sc.shape}")
    for name, arr in (("keypoints", kps), ("keypoint_scores", ks), ("scores", sc)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contain NaN or inf")
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
    _check_top(coco_dict)
    c = COCO()
    c.dataset = dict(coco_dict)
    with contextlib.redirect_stdout(io.StringIO()):
        c.createIndex()
    return c
