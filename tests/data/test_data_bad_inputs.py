"""Bad inputs to kpedu.data (issue 20), through the shared harness, and the data bugs of the
issue, each tested explicitly: negative data-set indices, generator numbers and sizes."""
from __future__ import annotations

import atexit
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import Case, assert_ok, parametrize
from kpedu.data import (
    COCO17,
    FaceSet,
    Skeleton,
    SyntheticFaces,
    SyntheticPeople,
    as_pycocotools,
    collate_people,
    load_skeleton,
    make_background,
    make_face,
    make_faces,
    make_person,
    make_scene,
    read_coco,
    render_labels_to_parts,
    results_to_coco,
    to_coco,
    write_coco,
)
from kpedu.data import backgrounds as B
from kpedu.data import pairs as P
from kpedu.data import stereo as S
from kpedu.data.coco import CocoKeypoints

K = 17
SIDE = 16  # the smallest synthetic image

# a (low, high) pair is a valid range for these options, so a list of two numbers is good input
PAIR_OK = {"list"}
# -1 is a valid Python-style index (the last item); the data sets of one item give the same answer
NEG_OK = {"below range"}


def _kp(n=1):
    return np.random.default_rng(0).uniform(2, 12, (n, K, 2)).astype(np.float32)


def _vis(n=1):
    return np.full((n, K), 2, dtype=np.int64)


def _bg():
    return make_background(0, SIDE, "noise")


@functools.lru_cache(maxsize=None)
def _faceset():
    return make_faces(2, SIDE, seed=0, background="noise")


@functools.lru_cache(maxsize=None)
def _pairset():
    return P.make_pairs(1, "viewpoint", SIDE, seed=0)


def _to_coco(keypoints, visible, areas=None, boxes=None, height=SIDE, width=SIDE, image_ids=None):
    sample = {"keypoints": keypoints, "visible": visible, "height": height, "width": width}
    if areas is not None:
        sample["areas"] = areas
    if boxes is not None:
        sample["boxes"] = boxes
    return to_coco([sample], image_ids=image_ids)


def _gt_dict():
    return to_coco([{"keypoints": _kp(), "visible": _vis(), "height": SIDE, "width": SIDE}])


def _read_with(field, value, where="annotation"):
    """read_coco on a good dict whose annotation (or image) has ``field = value``."""
    d = _gt_dict()
    entry = d["annotations"][0] if where == "annotation" else d["images"][0]
    entry[field] = value
    return read_coco(d)


def _read_keypoint(j, value):
    d = _gt_dict()
    d["annotations"][0]["keypoints"][j] = value
    return read_coco(d)


@functools.lru_cache(maxsize=None)
def _tmp():
    path = Path(tempfile.mkdtemp(prefix="kpedu-badinput-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _coco_kp():
    return read_coco(_gt_dict())


H_GOOD = np.array([[1.0, 0.1, 2.0], [0.05, 0.9, -1.0], [1e-3, 0.0, 1.0]])
SRC4 = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
DST4 = np.array([[1.0, 2.0], [12.0, 1.0], [11.0, 13.0], [0.0, 9.0]])
BAD_H = [("nan", np.where(np.eye(3) > 0, np.nan, 0.0), "error"),
         ("inf", np.diag([1.0, 1.0, np.inf]), "error"),
         ("2x3", np.eye(3)[:2], "error"),
         ("text", "H", "error"),
         ("complex", np.eye(3) + 0j, "error"),
         ("bool", np.eye(3, dtype=bool), "error")]
BAD_STRENGTH = [("above 1", 1.5, "error")]


def _photo():
    return P.photo_tensor("astronaut")[:, :32, :32].contiguous()


def _stereo_good():
    return dict(kp_left=np.array([[5.0, 3.0], [1.0, 1.0]]), kp_right=np.array([[2.0, 3.0], [0.0, 1.0]]),
                matches=np.array([[0, 0], [1, 1]]), disparity=np.full((8, 8), 3.0))


CASES = [
    # ------------------------------------------------------------------ coco
    Case(to_coco, lambda: dict(keypoints=_kp(), visible=_vis(), areas=np.array([20.0]),
                               boxes=np.array([[1.0, 1.0, 5.0, 6.0]]), height=SIDE, width=SIDE),
         {"keypoints": "points", "visible": "visibility", "height": "count", "width": "count"},
         extra={"visible": [("flag 3", np.full((1, K), 3), "error"), ("flag -1", np.full((1, K), -1), "error"),
                            ("fraction", np.full((1, K), 1.5), "error")],
                "areas": [("negative", np.array([-1.0]), "error"), ("nan", np.array([np.nan]), "error"),
                          ("inf", np.array([np.inf]), "error"), ("text", "20", "error"),
                          ("complex", np.array([20 + 1j]), "error"), ("two", np.array([1.0, 2.0]), "error")],
                "boxes": [("negative width", np.array([[1.0, 1.0, -5.0, 6.0]]), "error"),
                          ("nan", np.array([[1.0, np.nan, 5.0, 6.0]]), "error"),
                          ("3 numbers", np.array([[1.0, 1.0, 5.0]]), "error"),
                          ("complex", np.array([[1.0, 1.0, 5.0, 6.0]]) + 0j, "error")],
                "keypoints": [("1e39", np.full((1, K, 2), 1e39), "error")]},
         call=_to_coco),
    Case(to_coco, lambda: dict(keypoints=_kp(), visible=_vis(), image_ids=[3]), {},
         extra={"image_ids": [("fraction", [1.5], "error"), ("text", ["a"], "error"), ("bool", [True], "error"),
                              ("nan", [math.nan], "error"), ("two for one sample", [1, 2], "error")]},
         call=_to_coco),
    Case(write_coco, lambda: dict(path=_tmp() / "gt.json", coco_dict=_gt_dict()), {},
         extra={"path": [("number", 3, "error")],
                "coco_dict": [("nan inside", {**_gt_dict(), "info": {"x": math.nan}}, "error"),
                              ("list", [], "error"), ("missing key", {"images": []}, "error")]},
         call=lambda path, coco_dict: write_coco(path, coco_dict).name),
    Case(read_coco, lambda: dict(source=_gt_dict(), category_id=1), {},
         extra={"category_id": [("fraction", 1.5, "error"), ("text", "1", "error"), ("bool", True, "error"),
                                ("nan", math.nan, "error"), ("absent", 7, "error")],
                "source": [("number", 3, "error"), ("list", [], "error")]}),
    Case(read_coco, lambda: dict(area=20.0), {},
         extra={"area": [("negative", -4.0, "error"), ("nan", math.nan, "error"), ("inf", math.inf, "error"),
                         ("1e39", 1e39, "error"), ("text", "20", "error"), ("bool", True, "error"),
                         ("null", None, "error"), ("integer", 20, "runs")]},
         call=lambda area: _read_with("area", area)),
    Case(read_coco, lambda: dict(iscrowd=0), {},
         extra={"iscrowd": [("no", "no", "error"), ("2", 2, "error"), ("half", 0.5, "error"),
                            ("null", None, "error"), ("true", True, "runs"), ("1", 1, "runs")]},
         call=lambda iscrowd: _read_with("iscrowd", iscrowd)),
    Case(read_coco, lambda: dict(id=5), {},
         extra={"id": [("fraction", 1.5, "error"), ("text", "5", "error"), ("bool", True, "error"),
                       ("null", None, "error"), ("float 5.0", 5.0, "error")]},
         call=lambda id: _read_with("id", id)),  # noqa: A006
    Case(read_coco, lambda: dict(image_id=1), {},
         extra={"image_id": [("fraction", 1.5, "error"), ("float 1.0", 1.0, "error"), ("bool", True, "error"),
                             ("text", "1", "error")]},
         call=lambda image_id: _read_with("image_id", image_id)),
    Case(read_coco, lambda: dict(category_id=1), {},
         extra={"category_id": [("fraction", 1.5, "error"), ("text", "1", "error"), ("null", None, "error")]},
         call=lambda category_id: _read_with("category_id", category_id)),
    Case(read_coco, lambda: dict(keypoints=3.0), {},
         extra={"keypoints": [("1e39", 1e39, "error"), ("nan", math.nan, "error"), ("inf", -math.inf, "error"),
                              ("text", "3", "error"), ("bool", True, "error"), ("null", None, "error"),
                              ("huge int", 10 ** 400, "error")]},
         call=lambda keypoints: _read_keypoint(0, keypoints)),
    Case(read_coco, lambda: dict(visibility=2), {},
         extra={"visibility": [("3", 3, "error"), ("-1", -1, "error"), ("half", 0.5, "error"),
                               ("text", "2", "error"), ("nan", math.nan, "error")]},
         names={"visibility": "visibility"},
         call=lambda visibility: _read_keypoint(2, visibility)),
    Case(read_coco, lambda: dict(bbox=[1.0, 1.0, 5.0, 6.0]), {},
         extra={"bbox": [("negative height", [1.0, 1.0, 5.0, -6.0], "error"), ("nan", [math.nan, 1, 5, 6], "error"),
                         ("1e39", [1e39, 1, 5, 6], "error"), ("3 numbers", [1, 1, 5], "error"),
                         ("text", ["1", 1, 5, 6], "error"), ("not a list", 5.0, "error")]},
         call=lambda bbox: _read_with("bbox", bbox)),
    Case(read_coco, lambda: dict(height=SIDE), {},
         extra={"height": [("zero", 0, "error"), ("fraction", 16.5, "error"), ("text", "16", "error"),
                           ("bool", True, "error")]},
         call=lambda height: _read_with("height", height, where="image")),
    Case(CocoKeypoints.get, lambda: dict(image_id=1), {},
         extra={"image_id": [("fraction", 1.5, "error"), ("text", "1", "error"), ("integral float", 1.0, "same")]},
         call=lambda image_id: _coco_kp().get(image_id).id),
    Case(CocoKeypoints.__getitem__, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error"), ("length", 1, "error")]},
         names={"i": "index"},
         call=lambda i: _coco_kp()[i].id),
    Case(CocoKeypoints.to_skeleton, lambda: dict(sigmas=[0.05] * K), {},
         extra={"sigmas": [("nan", [math.nan] + [0.05] * (K - 1), "error"), ("negative", [-0.05] * K, "error"),
                           ("text", ["0.05"] * K, "error"), ("one short", [0.05] * (K - 1), "error"),
                           ("numpy", np.full(K, 0.05), "same")]},
         call=lambda sigmas: _coco_kp().to_skeleton(sigmas).sigmas),
    Case(results_to_coco, lambda: dict(image_id=1, keypoints=_kp(2), keypoint_scores=np.ones((2, K)),
                                       scores=np.array([0.9, 0.5]), category_id=1),
         {"image_id": "index", "keypoints": "points", "category_id": "index"},
         skip={"image_id": {"below range"}, "category_id": {"below range"}},  # any integer id
         extra={"keypoint_scores": [("nan", np.full((2, K), np.nan), "error"), ("text", "1", "error"),
                                    ("complex", np.ones((2, K)) + 0j, "error"),
                                    ("wrong shape", np.ones((2, K - 1)), "error")],
                "scores": [("nan", np.array([np.nan, 0.5]), "error"), ("inf", np.array([0.9, np.inf]), "error"),
                           ("text", "s", "error"), ("wrong shape", np.ones(3), "error")]}),
    Case(as_pycocotools, lambda: dict(coco_dict=_gt_dict()), {},
         extra={"coco_dict": [("list", [], "error"), ("missing key", {"images": []}, "error")]},
         call=lambda coco_dict: len(as_pycocotools(coco_dict).getImgIds())),
    # ------------------------------------------------------------------ people
    Case(make_person, lambda: dict(rng=3, size=SIDE, background=_bg(), distractors=0, crop_jitter=0.2,
                                   rotation=10.0, scale=(0.75, 0.95), p_back=0.1, pixel_noise=0.02),
         {"rng": "index", "size": "size", "background": "image", "distractors": "index",
          "crop_jitter": "probability", "rotation": "number", "scale": "positive", "p_back": "probability",
          "pixel_noise": "nonnegative"},
         skip={"rotation": PAIR_OK, "scale": PAIR_OK},
         extra={"pixel_noise": [("above 0.5", 0.6, "error")],
                "rotation": [("pair of text", ("1", "2"), "error"), ("reversed", (10, -10), "error")],
                "scale": [("pair with nan", (0.5, math.nan), "error"), ("above 3", 4.0, "error")],
                "background": [("unknown kind", "plasma", "error"), ("channel last", ("hwc", None), "runs")],
                "skeleton": [("not a skeleton", "coco17", "error")]},
         call=lambda background=None, **kw: make_person(
             background=_bg().transpose(1, 2, 0) if isinstance(background, tuple) else background, **kw)),
    Case(make_scene, lambda: dict(rng=1, size=SIDE, num_people=1, rotation=5.0, scale=0.5, p_back=0.1,
                                  pixel_noise=0.0, background="noise"),
         {"rng": "index", "size": "size", "num_people": "count", "rotation": "number", "scale": "positive",
          "p_back": "probability", "pixel_noise": "nonnegative"},
         skip={"rotation": PAIR_OK, "scale": PAIR_OK},
         extra={"num_people": [("reversed", (3, 1), "error"), ("51", 51, "error"), ("pair fraction", (1, 2.5), "error")],
                "background": [("int32 array", np.zeros((3, SIDE, SIDE), np.int32), "error")]}),
    Case(SyntheticPeople, lambda: dict(length=1, image_size=SIDE, seed=0, mode="single"),
         {"length": "index", "image_size": "size", "seed": "index"},
         extra={"mode": [("unknown", "crowd", "error")],
                "p_back": [("nan", math.nan, "error"), ("above 1", 2.0, "error")],
                "rotation": [("text", "10", "error")]},
         call=lambda **kw: len(SyntheticPeople(**kw))),
    Case(SyntheticPeople.__getitem__, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error"), ("length", 1, "error"),
                      ("tensor", torch.tensor(0), "same"), ("float tensor", torch.tensor(0.0), "error")]},
         names={"i": "index"},
         call=lambda i: SyntheticPeople(1, SIDE, seed=2)[i]["keypoints"]),
    Case(SyntheticPeople.sample, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error")]},
         names={"i": "index"},
         call=lambda i: SyntheticPeople(1, SIDE, seed=2).sample(i).keypoints),
    Case(render_labels_to_parts, lambda: dict(part_map=np.array([[0, 1, 12], [13, 0, 2]], np.int32)), {},
         extra={"part_map": [("fraction", np.array([[0.5, 1.0]]), "error"), ("negative", np.array([[-3, 1]]), "error"),
                             ("nan", np.array([[np.nan, 1.0]]), "error"), ("3-d", np.zeros((1, 2, 2), int), "error"),
                             ("text", "map", "error"), ("complex", np.zeros((2, 2), complex), "error"),
                             ("integral float", np.array([[0.0, 1.0, 12.0], [13.0, 0.0, 2.0]]), "same")]}),
    Case(collate_people, lambda: dict(batch=[{"image": torch.zeros(3, 2, 2)}]), {},
         extra={"batch": [("empty", [], "error"), ("tensor", torch.zeros(3), "error"), ("list of ints", [1], "error")]}),
    # ------------------------------------------------------------------ backgrounds
    Case(make_background, lambda: dict(rng=0, size=SIDE, kind="noise"), {"rng": "index", "size": "size"},
         extra={"kind": [("unknown", "plasma", "error"), ("not text", 3, "error")]}),
    Case(B.noise_background, lambda: dict(rng=0, size=SIDE), {"size": "size"}),
    Case(B.texture_background, lambda: dict(rng=0, size=SIDE), {"size": "size"}),
    Case(B.photo_background, lambda: dict(rng=0, size=SIDE), {"size": "size"}),
    Case(B.resize_bilinear, lambda: dict(img=_bg().transpose(1, 2, 0).copy(), h=8, w=12),
         {"img": "image", "h": "count", "w": "count"},
         skip={"img": {"channels+1", "2 channels"}}),  # channel-last: any height and channels
    Case(B.as_rng, lambda: dict(rng=4), {"rng": "index"},
         call=lambda rng: B.as_rng(rng).integers(1000)),
    Case(B.parse_size, lambda: dict(size=SIDE), {"size": "size"}),
    Case(B.load_photo, lambda: dict(name="camera"), {},
         extra={"name": [("unknown", "lena", "error"), ("number", 3, "error")]},
         call=lambda name: B.load_photo(name).shape),
    # ------------------------------------------------------------------ faces
    Case(make_face, lambda: dict(rng=2, image_size=SIDE, roll=10.0, yaw=0.2, scale=0.8, shift=0.05,
                                 pixel_noise=0.01, background="noise"),
         {"rng": "index", "image_size": "size", "roll": "number", "yaw": "number", "scale": "positive",
          "shift": "nonnegative", "pixel_noise": "nonnegative"},
         skip={"roll": PAIR_OK, "yaw": PAIR_OK, "scale": PAIR_OK},
         extra={"shift": [("above 0.5", 0.6, "error")], "yaw": [("above 0.5", 0.7, "error")],
                "roll": [("pair of text", ("1", "2"), "error")],
                "expression": [("text", "yes", "error"), ("int", 1, "error")],
                "background": [("array", _bg(), "error"), ("unknown", "plasma", "error")]},
         call=lambda **kw: make_face(**kw).landmarks),
    Case(SyntheticFaces, lambda: dict(length=1, image_size=SIDE, seed=0), {"length": "index",
                                                                          "image_size": "size", "seed": "index"},
         extra={"roll": [("nan", math.nan, "error")], "pixel_noise": [("text", "0.1", "error")]},
         call=lambda **kw: len(SyntheticFaces(**kw))),
    Case(SyntheticFaces.__getitem__, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error"), ("length", 1, "error"),
                      ("numpy int", np.int64(0), "same")]},
         names={"i": "index"},
         call=lambda i: SyntheticFaces(1, SIDE, seed=4, background="noise")[i]["landmarks"]),
    Case(SyntheticFaces.sample, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error")]},
         names={"i": "index"},
         call=lambda i: SyntheticFaces(1, SIDE, seed=4, background="noise").sample(i).landmarks),
    Case(make_faces, lambda: dict(n=1, image_size=SIDE, seed=0, background="noise"),
         {"n": "index", "image_size": "size", "seed": "index"},
         extra={"roll": [("nan", math.nan, "error")]},
         call=lambda **kw: make_faces(**kw).landmarks),
    Case(FaceSet, lambda: dict(images=_faceset().images, landmarks=_faceset().landmarks.clone()),
         {"landmarks": "points"},
         extra={"images": [("float", _faceset().images.float() / 255, "error"), ("3-d", _faceset().images[0], "error"),
                           ("text", "faces", "error"), ("4 channels", torch.zeros(2, 4, SIDE, SIDE, dtype=torch.uint8), "error"),
                           ("numpy", _faceset().images.numpy(), "same")],
                "landmarks": [("other N", torch.zeros(3, 13, 2), "error")]},
         call=lambda images, landmarks: FaceSet(images, landmarks)),
    Case(FaceSet.float_images, lambda: dict(index=1), {"index": "index"}, skip={"index": NEG_OK},
         extra={"index": [("-1", -1, "same"), ("-3", -3, "error"), ("length", 2, "error"),
                          ("list out of range", [0, 5], "error"), ("float tensor", torch.tensor([0.0]), "error"),
                          ("text", "all", "error"), ("float list", [0.5], "error"),
                          ("bool mask", torch.tensor([False, True]), "same"), ("wrong mask", torch.tensor([True]), "error")]},
         call=lambda index: _faceset().float_images(index)),
    Case(FaceSet.subset, lambda: dict(index=[0, 1]), {},
         extra={"index": [("out of range", [0, 2], "error"), ("fraction", 0.5, "error"),
                          ("negative in range", [-2, -1], "same")]},
         call=lambda index: _faceset().subset(index).landmarks),
    # ------------------------------------------------------------------ pairs
    Case(P.apply_homography, lambda: dict(H=H_GOOD, points=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 0.5]])),
         {"points": "pred"}, extra={"H": BAD_H},
         skip={"points": {"extra dims"}}),  # any leading batch shape is valid for one H
    Case(P.homography_from_points, lambda: dict(src=SRC4, dst=DST4), {"src": "points", "dst": "points"},
         extra={"src": [("3 points", SRC4[:3], "error"), ("collinear", np.array([[0.0, 0], [1, 1], [2, 2], [3, 3]]), "error"),
                        ("repeated", np.zeros((4, 2)), "error")],
                "dst": [("5 points", np.vstack([DST4, DST4[:1]]), "error")]}),
    Case(P.random_homography, lambda: dict(size=SIDE, rng=0, kind="viewpoint", strength=0.5),
         {"size": "count", "rng": "index", "strength": "nonnegative"},
         extra={"size": [("7", 7, "error")], "strength": BAD_STRENGTH,
                "kind": [("unknown", "night", "error"), ("number", 3, "error")]}),
    Case(P.warp_image, lambda: dict(image=_photo(), H=H_GOOD, size=SIDE, padding_mode="zeros"),
         {"image": "image", "size": "size"},
         skip={"image": {"channels+1", "2 channels"}},  # a resampler: any number of channels
         extra={"H": BAD_H + [("singular", np.zeros((3, 3)), "error"), ("batch of 2 for 1", np.stack([H_GOOD] * 2), "error")],
                "padding_mode": [("unknown", "wrap", "error")],
                "image": [("float64", _photo().double(), "runs")]}),
    Case(P.photometric, lambda: dict(image=_photo(), rng=0, kind="illumination", strength=0.5),
         {"image": "image", "rng": "index", "strength": "nonnegative"},
         extra={"strength": BAD_STRENGTH, "kind": [("unknown", "night", "error")]}),
    Case(P.make_pair, lambda: dict(photo=_photo(), rng=0, size=SIDE, kind="viewpoint"),
         {"photo": "image", "rng": "index", "size": "count"},
         extra={"photo": [("unknown name", "lena", "error")], "size": [("7", 7, "error")],
                "kind": [("unknown", "night", "error")]}),
    Case(P.make_pairs, lambda: dict(n=1, kind="viewpoint", size=SIDE, seed=0, photos=("coffee",)),
         {"n": "count", "size": "count", "seed": "index"},
         extra={"photos": [("a name, not a list", "coffee", "error"), ("unknown", ("lena",), "error"),
                           ("empty", (), "error")],
                "kind": [("unknown", "night", "error")]},
         call=lambda **kw: P.make_pairs(**kw).H),
    Case(P.PairSet, lambda: dict(image1=_pairset().image1, image2=_pairset().image2, H=_pairset().H,
                                 photo=list(_pairset().photo), kind="viewpoint"), {},
         extra={"image1": [("float", _pairset().image1.float(), "error"), ("3-d", _pairset().image1[0], "error")],
                "image2": [("other size", torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "error")],
                "H": [("nan", np.full((1, 3, 3), np.nan), "error"), ("2 of them", np.stack([np.eye(3)] * 2), "error"),
                      ("text", "H", "error")],
                "photo": [("2 names", ["a", "b"], "error")],
                "kind": [("unknown", "night", "error")]},
         call=lambda **kw: len(P.PairSet(**kw))),
    Case(P.PairSet.pair, lambda: dict(i=0), {"i": "index"}, skip={"i": NEG_OK},
         extra={"i": [("-1", -1, "same"), ("-2", -2, "error"), ("length", 1, "error")]},
         names={"i": "index"},
         call=lambda i: _pairset().pair(i)[2]),
    Case(P.PairBatches, lambda: dict(batch_size=1, size=SIDE, seed=0, photos=("coffee",), kind="train"),
         {"batch_size": "count", "size": "count", "seed": "index"},
         extra={"size": [("7", 7, "error")], "photos": [("a name, not a list", "coffee", "error"),
                                                         ("unknown", ("lena",), "error")],
                "kind": [("unknown", "night", "error")]},
         call=lambda **kw: P.PairBatches(**kw).batch_size),
    Case(P.PairBatches.batch, lambda: dict(t=0), {"t": "index"},
         call=lambda t: P.PairBatches(1, SIDE, photos=("coffee",)).batch(t)["H"]),
    Case(P.photo_tensor, lambda: dict(name="coffee"), {},
         extra={"name": [("unknown", "lena", "error"), ("number", 1, "error")]},
         call=lambda name: P.photo_tensor(name).shape),
    # ------------------------------------------------------------------ stereo
    Case(S.stereo_motorcycle, lambda: dict(scale=0.05), {"scale": "positive"},
         extra={"scale": [("above 4", 5.0, "error"), ("below 0.05", 0.01, "error")]},
         call=lambda scale: S.stereo_motorcycle(scale)[2]),
    Case(S.stereo_errors, _stereo_good, {"kp_left": "pred", "kp_right": "pred"},
         extra={"disparity": [("1-d", np.ones(8), "error"), ("text", "d", "error"),
                              ("complex", np.ones((8, 8)) + 0j, "error"), ("nan", np.full((8, 8), np.nan), "runs")],
                "matches": [("out of range", np.array([[0, 5]]), "error"), ("fraction", np.array([[0.5, 1]]), "error")]}),
    # ------------------------------------------------------------------ skeleton
    Case(Skeleton, lambda: dict(name="two", keypoint_names=("a", "b"), limbs=((0, 1),), flip_pairs=(),
                                sigmas=(0.5, 0.5)), {},
         extra={"sigmas": [("nan", (0.5, math.nan), "error"), ("negative", (0.5, -0.1), "error"),
                           ("text", ("0.5", 0.5), "error"), ("bool", (True, 0.5), "error"),
                           ("complex", (0.5, 1j), "error"), ("one", (0.5,), "error"),
                           ("inf", (0.5, math.inf), "error"), ("numpy", np.array([0.5, 0.5]), "same")],
                "limbs": [("out of range", ((0, 2),), "error"), ("fraction", ((0, 0.5),), "error")],
                "flip_pairs": [("twice", ((0, 1), (1, 0)), "error")]},
         call=lambda **kw: Skeleton(**kw).sigmas),
    Case(Skeleton.subset, lambda: dict(names=["nose", "left_eye"]), {},
         extra={"names": [("unknown", ["nose", "tail"], "error"), ("repeated", ["nose", "nose"], "error")]},
         call=lambda names: COCO17.subset(names).sigmas),
    Case(load_skeleton, lambda: dict(name="coco17"), {},
         extra={"name": [("unknown", "horse", "error"), ("number", 17, "error")]},
         call=lambda name: load_skeleton(name).sigmas),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# ---------------------------------------------------------------------------------------------
# the bugs of the issue, one by one
# ---------------------------------------------------------------------------------------------


def test_negative_index_out_of_range_is_an_error_for_every_data_set():
    people = SyntheticPeople(4, 32)
    with pytest.raises(IndexError, match="index"):
        people[-5]
    with pytest.raises(IndexError, match="index"):
        people[4]
    assert torch.equal(people[-1]["keypoints"], people[3]["keypoints"])
    assert int(people[-1]["index"]) == 3  # the index reported is the item's, not -1
    faces = SyntheticFaces(3, SIDE, background="noise")
    with pytest.raises(IndexError, match="index"):
        faces[-4]
    assert int(faces[-3]["index"]) == 0
    fs = _faceset()
    with pytest.raises(IndexError, match="index"):
        fs.float_images(-3)
    with pytest.raises(IndexError, match="index"):
        fs.subset([0, -3])
    ps = _pairset()
    with pytest.raises(IndexError, match="index"):
        ps.pair(-2)
    coco = _coco_kp()
    with pytest.raises(IndexError, match="index"):
        coco[-2]
    assert coco[-1].id == coco[0].id


def test_people_dataset_validates_generator_options_when_built():
    with pytest.raises(ValueError, match="p_back"):
        SyntheticPeople(2, 32, p_back=math.nan)
    with pytest.raises(ValueError, match="num_people"):
        SyntheticPeople(2, 32, mode="multi", num_people=0)
    with pytest.raises(TypeError, match="background"):
        SyntheticPeople(2, 32, background=3)


def test_float_background_in_0_255_is_not_clipped_to_white():
    bg = make_background(0, 32, "noise")
    with pytest.raises(ValueError, match="background"):
        make_person(0, 32, background=bg * 255)
    with pytest.raises(TypeError, match="background"):
        make_person(0, 32, background=(bg * 255).astype(np.int32))
    a = make_person(0, 32, background=bg)
    b = make_person(0, 32, background=np.round(bg * 255).astype(np.uint8))
    np.testing.assert_allclose(a.image, b.image, atol=0.6 / 255 + 0.05)


def test_apply_homography_keeps_dtype_and_passes_missing_points_through():
    pts = torch.tensor([[1.0, 2.0], [math.nan, math.nan]], dtype=torch.float64)
    out = P.apply_homography(H_GOOD, pts)
    assert out.dtype == torch.float64 and torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()
    assert P.apply_homography(H_GOOD, pts.float()).dtype == torch.float32
    batched = P.apply_homography(np.stack([H_GOOD, np.eye(3)]), torch.ones(2, 3, 2))
    assert batched.shape == (2, 3, 2) and torch.allclose(batched[1], torch.ones(3, 2, dtype=batched.dtype))


def test_stereo_errors_missing_keypoint_is_a_miss_not_dropped():
    g = _stereo_good()
    g["kp_right"] = np.array([[np.nan, np.nan], [0.0, 1.0]])
    err = S.stereo_errors(**g)
    assert err[0] == np.inf and err[1] == pytest.approx(2.0)
    g = _stereo_good()
    g["disparity"] = np.full((8, 8), np.nan)  # no ground truth: NaN, to be dropped
    assert np.isnan(S.stereo_errors(**g)).all()


def test_random_homography_and_photometric_reject_bad_strength():
    for bad in (-0.1, math.nan, 1.5, "1"):
        with pytest.raises((TypeError, ValueError), match="strength"):
            P.random_homography(32, 0, "viewpoint", strength=bad)
        with pytest.raises((TypeError, ValueError), match="strength"):
            P.photometric(_photo(), 0, "illumination", strength=bad)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def _homographies(draw):
    """Well-conditioned homographies: a rotation, zoom, shear, shift and mild perspective."""
    a = draw(st.floats(-math.pi, math.pi))
    z = draw(st.floats(0.5, 2.0))
    sh = draw(st.floats(-0.3, 0.3))
    t = draw(st.tuples(st.floats(-50, 50), st.floats(-50, 50)))
    p = draw(st.tuples(st.floats(-1e-3, 1e-3), st.floats(-1e-3, 1e-3)))
    c, s = math.cos(a), math.sin(a)
    return np.array([[z * c, -z * s + sh, t[0]], [z * s, z * c, t[1]], [p[0], p[1], 1.0]])


@settings(max_examples=25, deadline=None)
@given(_homographies(), st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=1, max_size=20),
       st.booleans())
def test_apply_homography_then_its_inverse_returns_the_points(H, pts, as_torch):
    pts = np.asarray(pts, np.float64)
    x = torch.as_tensor(pts) if as_torch else pts
    back = P.apply_homography(np.linalg.inv(H), P.apply_homography(H, x))
    back = back.numpy() if as_torch else back
    np.testing.assert_allclose(back, pts, atol=1e-6 * (1 + np.abs(pts).max()))


@settings(max_examples=25, deadline=None)
@given(_homographies())
def test_homography_from_points_recovers_the_homography(H):
    src = np.array([[0.0, 0.0], [40.0, 0.0], [40.0, 40.0], [0.0, 40.0], [20.0, 13.0]])
    dst = P.apply_homography(H, src)
    np.testing.assert_allclose(P.homography_from_points(src, dst), H / H[2, 2], rtol=1e-6, atol=1e-6)
