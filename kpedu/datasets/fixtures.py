"""Writes tiny data sets in the real layout, for tests and demos.

Each writer lays out a handful of images and annotations exactly as the publisher
distributes the full data set (the folder names, the file names, the JSON keys, the
MATLAB struct nesting, the text formats), so that the loaders of :mod:`kpedu.datasets`
read them through the same code paths as the real thing, and returns the ground truth
it wrote so that a test can compare what a loader gives back with what is on disk:

- :func:`write_coco`: ``annotations/person_keypoints_val2017.json`` (real keys: crowd
  regions as uncompressed RLE, people without keypoints with polygons) and
  ``images/val2017/*.jpg`` (or ``val2017/`` with ``layout="flat"``);
- :func:`write_mpii`: ``mpii_human_pose_v1_u12_1.mat`` written with
  ``scipy.io.savemat`` with the ``RELEASE`` struct's nesting (``annolist``,
  ``img_train``, ``single_person``, ``act``, ``annorect`` with head boxes, ``objpos``,
  ``scale`` and ``annopoints.point``; single structs, empty fields and text flags as in
  the real file) and ``images/*.jpg``;
- :func:`write_celeba`: ``Img/img_align_celeba/*.jpg`` (178 x 218),
  ``Anno/list_landmarks_align_celeba.txt``, ``Eval/list_eval_partition.txt`` and
  ``MAFL/training.txt`` / ``MAFL/testing.txt`` (or the flat layout);
- :func:`write_hpatches`: ``hpatches-sequences-release/{i_*,v_*}/1.ppm .. 6.ppm`` and
  ``H_1_2 .. H_1_6``, each view a true homography (and lighting change) of view 1;
- :func:`write_image_folder`: a folder of photographs for :class:`~kpedu.datasets.ImageFolderPairs`.

The images are smooth colour ramps (red grows with ``x``, green with ``y``) over a mild
texture, so that a test can also check where a crop or a resize took its pixels from:
:func:`ramp_value` gives the red and green values a source position should carry.
:func:`corrupt_file` overwrites a file with bytes no decoder accepts.

Every file is written atomically (:func:`kpedu.files.atomic_open`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import checks
from ..files import atomic_open, write_text_atomic

__all__ = [
    "write_coco",
    "write_mpii",
    "write_celeba",
    "write_hpatches",
    "write_image_folder",
    "write_video_folder",
    "ramp_image",
    "ramp_value",
    "corrupt_file",
    "MPII_MAT",
]

#: File name of the MPII annotations as distributed.
MPII_MAT = "mpii_human_pose_v1_u12_1.mat"


def _root(root: Any) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or Path), got {checks.describe(root)}")
    p = Path(root)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_bytes(path: Path, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return path


def _write_image(path: Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """``rgb`` (H, W, 3) uint8 encoded by OpenCV after the file's ending."""
    import cv2

    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ValueError(f"OpenCV cannot encode {ext} images")
    return _write_bytes(path, buf.tobytes())


def ramp_image(height: int, width: int, seed: int = 0, texture: float = 40.0) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image: red ``255 x / (W - 1)``, green ``255 y / (H - 1)``,
    blue a smooth random texture around 128 of amplitude ``texture`` (seeded)."""
    from scipy.ndimage import gaussian_filter

    h = checks.integer(height, "height", minimum=2)
    w = checks.integer(width, "width", minimum=2)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    noise = gaussian_filter(rng.normal(size=(h, w)), 2.0)
    noise = noise / (np.abs(noise).max() + 1e-12)
    img = np.stack([255.0 * xs / (w - 1), 255.0 * ys / (h - 1), 128.0 + texture * noise], axis=-1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def ramp_value(x, y, height: int, width: int) -> np.ndarray:
    """The red and green values :func:`ramp_image` gives the source position ``(x, y)``
    (``(..., 2)`` float array)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return np.stack([255.0 * x / (width - 1), 255.0 * y / (height - 1)], axis=-1)


def _texture_image(height: int, width: int, seed: int) -> np.ndarray:
    """A photograph-like texture (blobs and edges at several scales), uint8 RGB."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3))
    for sigma, amp in ((1.0, 0.25), (3.0, 0.5), (8.0, 0.8)):
        n = gaussian_filter(rng.normal(size=(height, width, 3)), (sigma, sigma, 0))
        img += amp * n / (np.abs(n).max() + 1e-12)
    img = 0.5 + 0.5 * img / np.abs(img).max()
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def corrupt_file(path: str | os.PathLike, size: int = 256) -> Path:
    """Overwrite ``path`` with ``size`` bytes that no image decoder accepts (a
    truncated download, a disk error). Returns the path."""
    p = Path(path)
    data = (b"this is not an image " * (size // 21 + 1))[:size]
    return _write_bytes(p, data)


# ---------------------------------------------------------------------------- COCO

_COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"]
_COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                  [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# a standing person in a unit box (x right, y down): the 17 COCO keypoints
_COCO_POSE = np.array([[0.50, 0.08], [0.46, 0.06], [0.54, 0.06], [0.41, 0.08], [0.59, 0.08], [0.32, 0.22],
                       [0.68, 0.22], [0.25, 0.38], [0.75, 0.38], [0.22, 0.52], [0.78, 0.52], [0.40, 0.55],
                       [0.60, 0.55], [0.39, 0.76], [0.61, 0.76], [0.38, 0.96], [0.62, 0.96]])


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a bool mask: run lengths in column-major order,
    starting with a run of zeros (as the crowd regions of the COCO files)."""
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _coco_person(rng: np.random.Generator, box: Sequence[float], hidden: Sequence[int] = (),
                 occluded: Sequence[int] = ()) -> tuple[list, int]:
    """Keypoints ``[x, y, v, ...]`` (integers, as in the COCO files) of a person in
    ``box = (x, y, w, h)``: ``hidden`` keypoints are ``0, 0, 0``, ``occluded`` have v = 1."""
    x, y, w, h = box
    flat, n = [], 0
    for k, (u, v) in enumerate(_COCO_POSE):
        if k in hidden:
            flat += [0, 0, 0]
            continue
        px = int(round(x + u * w + rng.uniform(-1.5, 1.5)))
        py = int(round(y + v * h + rng.uniform(-1.5, 1.5)))
        flat += [px, py, 1 if k in occluded else 2]
        n += 1
    return flat, n


def _polygon_area(poly: Sequence[float]) -> float:
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def write_coco(root: str | os.PathLike, split: str = "val2017", layout: str = "images", seed: int = 0) -> dict:
    """Write a tiny COCO 2017 person-keypoints data set under ``root``; returns the JSON
    dict written (the ground truth).

    ``root/annotations/person_keypoints_{split}.json`` and the images in
    ``root/images/{split}/`` (``layout="images"``) or ``root/{split}/``
    (``layout="flat"``), named ``{id:012d}.jpg`` as in COCO. Three images:

    * id 1 (240 x 320): two annotated people (one with hidden ``0, 0, 0`` keypoints and
      occluded ``v = 1`` ones, polygon segmentations), a **crowd** region (``iscrowd =
      1``, an uncompressed RLE rectangle, x 250..299, y 20..99) and a person **without
      keypoints** (``num_keypoints = 0``, a polygon);
    * id 2 (160 x 120): one person close to the right border;
    * id 3 (96 x 128): no annotation at all.
    """
    root = _root(root)
    split = str(split)
    checks.choice(layout, "layout", ("images", "flat"))
    rng = np.random.default_rng(seed)
    img_dir = root / "images" / split if layout == "images" else root / split
    images, anns = [], []
    specs = [(1, 240, 320), (2, 160, 120), (3, 96, 128)]
    for iid, h, w in specs:
        name = f"{iid:012d}.jpg"
        _write_image(img_dir / name, ramp_image(h, w, seed=seed + iid))
        images.append({"license": 1, "file_name": name, "coco_url": f"http://images.cocodataset.org/{split}/{name}",
                       "height": h, "width": w, "date_captured": "2013-11-14 17:02:52",
                       "flickr_url": "http://farm4.staticflickr.com/0/0.jpg", "id": iid})

    def person(ann_id, iid, box, hidden=(), occluded=()):
        kps, n = _coco_person(rng, box, hidden, occluded)
        x, y, w, h = box
        poly = [x + 0.3 * w, y, x + 0.7 * w, y, x + w, y + 0.5 * h, x + 0.7 * w, y + h, x + 0.3 * w, y + h,
                x, y + 0.5 * h]
        poly = [round(float(v), 2) for v in poly]
        return {"segmentation": [poly], "num_keypoints": n, "area": round(_polygon_area(poly), 2), "iscrowd": 0,
                "keypoints": kps, "image_id": iid, "bbox": [float(v) for v in box], "category_id": 1,
                "id": ann_id}

    anns.append(person(101, 1, (30.0, 40.0, 80.0, 180.0)))
    anns.append(person(102, 1, (140.0, 60.0, 60.0, 150.0), hidden=(3, 15, 16), occluded=(7, 9)))
    crowd = np.zeros((240, 320), bool)
    crowd[20:100, 250:300] = True
    anns.append({"segmentation": _uncompressed_rle(crowd), "num_keypoints": 0, "area": float(crowd.sum()),
                 "iscrowd": 1, "keypoints": [0] * 51, "image_id": 1, "bbox": [250.0, 20.0, 50.0, 80.0],
                 "category_id": 1, "id": 900100000103})
    quad = [215.0, 150.0, 245.0, 150.0, 245.0, 230.0, 215.0, 230.0]
    anns.append({"segmentation": [quad], "num_keypoints": 0, "area": _polygon_area(quad), "iscrowd": 0,
                 "keypoints": [0] * 51, "image_id": 1, "bbox": [215.0, 150.0, 30.0, 80.0], "category_id": 1,
                 "id": 104})
    anns.append(person(201, 2, (60.0, 20.0, 55.0, 130.0), occluded=(0,)))
    coco = {
        "info": {"description": "kpedu fixture in the COCO 2017 layout", "url": "http://cocodataset.org",
                 "version": "1.0", "year": 2017, "contributor": "kpedu", "date_created": "2017/09/01"},
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 1, "name": "Attribution License"}],
        "images": images,
        "annotations": anns,
        "categories": [{"supercategory": "person", "id": 1, "name": "person", "keypoints": list(_COCO_NAMES),
                        "skeleton": [list(p) for p in _COCO_SKELETON]}],
    }
    write_text_atomic(root / "annotations" / f"person_keypoints_{split}.json", json.dumps(coco))
    return coco


# ---------------------------------------------------------------------------- MPII

# a standing person in a unit box: the 16 MPII joints (ids 0..15)
_MPII_POSE = np.array([[0.38, 0.96], [0.39, 0.76], [0.42, 0.55], [0.58, 0.55], [0.61, 0.76], [0.62, 0.96],
                       [0.50, 0.55], [0.50, 0.24], [0.50, 0.18], [0.50, 0.02], [0.20, 0.52], [0.24, 0.38],
                       [0.32, 0.22], [0.68, 0.22], [0.76, 0.38], [0.80, 0.52]])


def _records(rows: list[dict], fields: Sequence[str]) -> np.ndarray:
    """A ``(1, n)`` MATLAB struct array (a numpy record array of objects)."""
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for j, r in enumerate(rows):
        for f in fields:
            arr[0, j][f] = r.get(f, np.zeros((0, 0)))
    return arr


def write_mpii(root: str | os.PathLike, seed: int = 0) -> dict:
    """Write a tiny MPII Human Pose data set under ``root``; returns its ground truth.

    ``root/mpii_human_pose_v1_u12_1.mat`` holds ``RELEASE`` as the real file does
    (``annolist`` a 1 x N struct array of ``image.name``, ``annorect``, ``frame_sec``,
    ``vididx``; ``img_train`` 1 x N; ``single_person`` an N x 1 cell of 1-based person
    indices; ``act`` N x 1; ``video_list``; ``version``), in MATLAB's 1-based pixel
    coordinates, and ``root/images/`` the JPEG images (260 x 200). Five images:

    * ``000000001.jpg`` (train): two people, all 16 joints, with ``is_visible`` given
      as ``1``, ``0``, the text ``'1'`` and empty, as in the real file;
    * ``000000002.jpg`` (train): one person (``annorect`` a single struct), joints 6 and
      15 not annotated (absent from ``annopoints.point``);
    * ``000000003.jpg`` (train): a person without ``annopoints`` (empty) and one with;
    * ``000000004.jpg`` (test): ``annorect`` with ``scale`` and ``objpos`` only;
    * ``000000005.jpg`` (train): no people (``annorect`` empty).

    The returned dict has ``names``, ``img_train`` and ``people``: one list per image of
    dicts ``keypoints`` ``(16, 2)`` (1-based, NaN where not annotated), ``is_visible``
    ``(16,)`` (1, 0, or -1 where the flag is empty, NaN where not annotated),
    ``head_box`` ``(x1, y1, x2, y2)``, ``objpos``, ``scale`` (``None`` for the person
    without annotations of a test image), ``annotated`` (has keypoints).
    """
    from scipy.io import savemat

    root = _root(root)
    rng = np.random.default_rng(seed)
    h, w = 260, 200
    names = [f"{i:09d}.jpg" for i in range(1, 6)]
    img_train = [1, 1, 1, 0, 1]
    for i, name in enumerate(names):
        _write_image(root / "images" / name, ramp_image(h, w, seed=seed + 10 + i))

    def person(box, missing=(), flags=None):
        x, y, bw, bh = box
        kps = np.full((16, 2), np.nan)
        vis = np.full(16, np.nan)
        points = []
        for j in range(16):
            if j in missing:
                continue
            px = round(float(x + _MPII_POSE[j, 0] * bw + rng.uniform(-1, 1)), 2)
            py = round(float(y + _MPII_POSE[j, 1] * bh + rng.uniform(-1, 1)), 2)
            f = 1 if flags is None else flags[j % len(flags)]
            kps[j] = (px, py)
            vis[j] = -1 if isinstance(f, list) else int(f)
            points.append({"x": px, "y": py, "id": j,
                           "is_visible": np.zeros((0, 0)) if isinstance(f, list) else (f if isinstance(f, str)
                                                                                         else float(f))})
        top = (kps[9] if not np.isnan(kps[9]).any() else np.array([x + 0.5 * bw, y]))
        half = float(rng.uniform(0.06, 0.11)) * bh  # head boxes of different sizes
        head = (round(float(top[0] - half), 2), round(float(top[1] - 0.02 * bh), 2),
                round(float(top[0] + half), 2), round(float(top[1] - 0.02 * bh + 2.1 * half), 2))
        objpos = (round(float(x + 0.5 * bw), 1), round(float(y + 0.5 * bh), 1))
        scale = round(float(bh / 200.0), 4)
        rect = {"x1": head[0], "y1": head[1], "x2": head[2], "y2": head[3],
                "annopoints": {"point": _records(points, ("x", "y", "id", "is_visible"))},
                "scale": scale, "objpos": {"x": objpos[0], "y": objpos[1]}}
        truth = {"keypoints": kps, "is_visible": vis, "head_box": head, "objpos": objpos, "scale": scale,
                 "annotated": True}
        return rect, truth

    rect_fields = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    annolist, people, single = [], [], []
    # image 1: two people, flags 1, 0, '1' and empty
    r1, t1 = person((20, 30, 70, 200), flags=[1, 0, "1", [], 1, 1, 1, 1])
    r2, t2 = person((110, 50, 60, 180), flags=[1, 1, 0])
    annolist.append({"image": {"name": names[0]}, "annorect": _records([r1, r2], rect_fields),
                     "frame_sec": 12.0, "vididx": 1.0})
    people.append([t1, t2])
    single.append(np.array([1.0, 2.0]))
    # image 2: one person, a single struct (scipy squeezes the 1 x 1 struct array)
    r3, t3 = person((60, 20, 80, 220), missing=(6, 15))
    annolist.append({"image": {"name": names[1]}, "annorect": _records([r3], rect_fields),
                     "frame_sec": 3.0, "vididx": 2.0})
    people.append([t3])
    single.append(1.0)
    # image 3: a person without annopoints, then an annotated one
    r4, t4 = person((120, 40, 60, 200))
    empty = {"x1": 10.0, "y1": 10.0, "x2": 30.0, "y2": 35.0, "annopoints": np.zeros((0, 0)), "scale": 0.9,
             "objpos": {"x": 40.0, "y": 120.0}}
    annolist.append({"image": {"name": names[2]}, "annorect": _records([empty, r4], rect_fields),
                     "frame_sec": np.zeros((0, 0)), "vididx": np.zeros((0, 0))})
    people.append([{"keypoints": np.full((16, 2), np.nan), "is_visible": np.full(16, np.nan),
                    "head_box": (10.0, 10.0, 30.0, 35.0), "objpos": (40.0, 120.0), "scale": 0.9,
                    "annotated": False}, t4])
    single.append(np.zeros((0, 0)))
    # image 4: a test image (objpos and scale only)
    annolist.append({"image": {"name": names[3]},
                     "annorect": _records([{"scale": 1.1, "objpos": {"x": 100.0, "y": 130.0}}], ("scale", "objpos")),
                     "frame_sec": 7.0, "vididx": 3.0})
    people.append([{"keypoints": np.full((16, 2), np.nan), "is_visible": np.full(16, np.nan), "head_box": None,
                    "objpos": (100.0, 130.0), "scale": 1.1, "annotated": False}])
    single.append(1.0)
    # image 5: nobody
    annolist.append({"image": {"name": names[4]}, "annorect": np.zeros((0, 0)), "frame_sec": np.zeros((0, 0)),
                     "vididx": np.zeros((0, 0))})
    people.append([])
    single.append(np.zeros((0, 0)))

    acts = [{"act_name": "rock climbing, general", "cat_name": "sports", "act_id": 1.0},
            {"act_name": "bicycling, mountain", "cat_name": "bicycling", "act_id": 2.0},
            {"act_name": np.zeros((0, 0)), "cat_name": np.zeros((0, 0)), "act_id": -1.0},
            {"act_name": "walking", "cat_name": "walking", "act_id": 3.0},
            {"act_name": np.zeros((0, 0)), "cat_name": np.zeros((0, 0)), "act_id": -1.0}]
    act = _records(acts, ("act_name", "cat_name", "act_id")).reshape(-1, 1)
    sp = np.empty((len(single), 1), dtype=object)
    for i, s in enumerate(single):
        sp[i, 0] = s
    videos = np.empty((1, 3), dtype=object)
    videos[0, :] = ["aAOusnrSsHI", "bCZMZ3F6Kk8", "cD3gZfq4kW0"]
    release = {
        "annolist": _records(annolist, ("image", "annorect", "frame_sec", "vididx")),
        "img_train": np.asarray([img_train], dtype=np.float64),
        "version": "12",
        "single_person": sp,
        "act": act,
        "video_list": videos,
    }
    with atomic_open(root / MPII_MAT, "wb") as f:
        savemat(f, {"RELEASE": release}, do_compression=True)
    return {"names": names, "img_train": img_train, "people": people, "size": (h, w)}


# ---------------------------------------------------------------------------- CelebA

_CELEBA_HEADER = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
                  "rightmouth_x rightmouth_y")


def write_celeba(root: str | os.PathLike, n: int = 12, mafl_train: int = 6, mafl_test: int = 3,
                 layout: str = "official", seed: int = 0) -> dict:
    """Write a tiny aligned CelebA with the MAFL split under ``root``; returns the ground truth.

    ``layout="official"`` (the folders of the CelebA download): ``Img/img_align_celeba/``
    (``000001.jpg`` ...; 178 x 218 like the aligned images), ``Anno/list_landmarks_align_celeba.txt``
    (a count line, the header line, then ``name x y ...`` for the five points),
    ``Eval/list_eval_partition.txt`` (``name 0|1|2``) and ``MAFL/training.txt``,
    ``MAFL/testing.txt`` (one image name per line). ``layout="flat"``: the image folder,
    the landmark file and the MAFL lists directly in ``root``, no partition file.

    The first ``mafl_train`` images are MAFL's training images, the next ``mafl_test``
    its test images. Returns ``names``, ``landmarks`` ``(n, 5, 2)`` (integers, as in the
    file), ``mafl_train``, ``mafl_test`` (name lists) and ``partition`` (0 train,
    1 validation, 2 test per image).
    """
    root = _root(root)
    n = checks.integer(n, "n", minimum=1)
    mafl_train = checks.integer(mafl_train, "mafl_train", minimum=0)
    mafl_test = checks.integer(mafl_test, "mafl_test", minimum=0)
    if mafl_train + mafl_test > n:
        raise ValueError(f"mafl_train + mafl_test must be <= n ({n}), got {mafl_train} + {mafl_test}")
    checks.choice(layout, "layout", ("official", "flat"))
    rng = np.random.default_rng(seed)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    base = np.array([[69, 110], [107, 112], [88, 134], [72, 153], [105, 154]], dtype=np.float64)
    landmarks = np.round(base + rng.uniform(-4, 4, size=(n, 5, 2))).astype(np.int64)
    partition = [0 if i < int(0.8 * n) else (1 if i < int(0.9 * n) else 2) for i in range(n)]
    if layout == "official":
        img_dir, anno, part, mafl = root / "Img" / "img_align_celeba", root / "Anno", root / "Eval", root / "MAFL"
    else:
        img_dir, anno, part, mafl = root / "img_align_celeba", root, None, root
    for i, name in enumerate(names):
        _write_image(img_dir / name, ramp_image(218, 178, seed=seed + 100 + i))
    lines = [str(n), _CELEBA_HEADER]
    for name, lm in zip(names, landmarks):
        lines.append(name + "".join(f" {int(v):4d}" for v in lm.reshape(-1)))
    write_text_atomic(anno / "list_landmarks_align_celeba.txt", "\n".join(lines) + "\n")
    if part is not None:
        write_text_atomic(part / "list_eval_partition.txt",
                          "".join(f"{name} {p}\n" for name, p in zip(names, partition)))
    train, test = names[:mafl_train], names[mafl_train:mafl_train + mafl_test]
    write_text_atomic(mafl / "training.txt", "".join(f"{x}\n" for x in train))
    write_text_atomic(mafl / "testing.txt", "".join(f"{x}\n" for x in test))
    return {"names": names, "landmarks": landmarks, "mafl_train": train, "mafl_test": test,
            "partition": partition}


# ---------------------------------------------------------------------------- HPatches


def write_hpatches(root: str | os.PathLike, sequences: Sequence[str] = ("i_fixture", "v_fixture"),
                   size: tuple[int, int] = (60, 80), seed: int = 0) -> dict:
    """Write tiny HPatches sequences under ``root/hpatches-sequences-release/``; returns
    ``{sequence: {"H": [H_1_2, ..., H_1_6], "sizes": [(h, w) of 1.ppm .. 6.ppm]}}``.

    Each sequence has ``1.ppm`` .. ``6.ppm`` (binary PPM, as distributed) and the text
    files ``H_1_2`` .. ``H_1_6`` (three lines of three numbers). View 1 is a texture;
    view ``j`` is view 1 warped by ``H_1_j`` (:func:`kpedu.data.pairs.warp_image`). ``v_``
    sequences get random viewpoint homographies and views of different sizes; ``i_``
    sequences the identity and random lighting (:func:`kpedu.data.pairs.photometric`),
    like the real ones."""
    import torch

    from ..data.pairs import photometric, random_homography, warp_image

    root = _root(root)
    h, w = checks.size(size, "size", minimum=16)
    out: dict[str, dict] = {}
    for s, seq in enumerate(sequences):
        if not (isinstance(seq, str) and seq[:2] in ("i_", "v_")):
            raise ValueError(f"sequences must be names starting with 'i_' or 'v_', got {seq!r}")
        rng = np.random.default_rng([seed, s])
        d = root / "hpatches-sequences-release" / seq
        img1 = _texture_image(h, w, seed * 1000 + s)
        _write_image(d / "1.ppm", img1)
        t1 = torch.from_numpy(img1.transpose(2, 0, 1).copy()).float() / 255.0
        hs, sizes = [], [(h, w)]
        for j in range(2, 7):
            if seq.startswith("v_"):
                side = min(h, w)
                H = random_homography(side, rng, "viewpoint", strength=0.5)
                oh, ow = h + int(rng.integers(-4, 5)), w + int(rng.integers(-4, 5))
                view = warp_image(t1, H, (oh, ow), padding_mode="zeros")
            else:
                H = np.eye(3)
                oh, ow = h, w
                view = photometric(t1, rng, "illumination", strength=0.7)
            img = np.clip(np.round(view.numpy().transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
            _write_image(d / f"{j}.ppm", img)
            write_text_atomic(d / f"H_1_{j}", "".join("  ".join(f"{v:.10g}" for v in row) + "\n" for row in H))
            hs.append(np.asarray(H, dtype=np.float64))
            sizes.append((oh, ow))
        out[seq] = {"H": hs, "sizes": sizes}
    return out


# ---------------------------------------------------------------------------- image folder


def write_image_folder(root: str | os.PathLike, n: int = 5, size: tuple[int, int] = (96, 128),
                       extensions: Sequence[str] = ("jpg", "png", "ppm"), seed: int = 0) -> list[Path]:
    """Write ``n`` textured photographs of ``size`` into ``root`` (every third one in a
    sub-folder ``more/``), cycling through ``extensions``, plus a ``README.txt`` that an
    image-folder loader must ignore. Returns the image paths in sorted order."""
    root = _root(root)
    n = checks.integer(n, "n", minimum=1)
    h, w = checks.size(size, "size", minimum=16)
    paths = []
    for i in range(n):
        ext = extensions[i % len(extensions)]
        folder = root / "more" if i % 3 == 2 else root
        p = folder / f"photo_{i:03d}.{ext}"
        _write_image(p, _texture_image(h, w, seed * 1000 + i))
        paths.append(p)
    write_text_atomic(root / "README.txt", "photographs for kpedu's image-folder pairs\n")
    return sorted(paths)


def write_video_folder(root: str | os.PathLike, clips: int = 3, frames: int = 6, size: int = 40, seed: int = 0,
                       corrupt: int = 0) -> dict:
    """Clips of bouncing shapes (:func:`kpedu.data.videos.make_object_videos`) written as
    ``ROOT/clip<k>/frame<t>.png`` (frame numbers unpadded, so only natural ordering
    reads them in time order), plus a stray text file in the root and, with
    ``corrupt > 0``, that many unreadable frames at the end of the last clip. Returns
    ``{"clips": [names], "frames": (clips, frames, 3, size, size) uint8}``."""
    from ..data.videos import make_object_videos

    root = _root(root)
    v = make_object_videos(clips, frames, size, seed)
    names = []
    for c in range(clips):
        d = root / f"clip{c}"
        d.mkdir(exist_ok=True)
        for t in range(frames):
            _write_image(d / f"frame{t}.png", v.frames[c, t].permute(1, 2, 0).numpy())
        names.append(d.name)
    _write_bytes(root / "README.txt", b"not a clip\n")
    for k in range(corrupt):
        corrupt_file(root / names[-1] / f"frame{frames + k}.png")
    return {"clips": names, "frames": v.frames}
