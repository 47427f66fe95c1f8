"""Bad inputs to kpedu.datasets, through the shared harness (tests/badinput.py): every
size, count, seed and choice of the loaders is rejected with an error that names it."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from badinput import Case, assert_ok, parametrize
import kpedu.datasets as D
from kpedu.datasets import fixtures as F


@functools.lru_cache(maxsize=None)
def _root() -> Path:
    """Tiny data sets in the real layouts, written once per test process."""
    path = Path(tempfile.mkdtemp(prefix="kpedu-datasets-badinput-"))
    atexit.register(shutil.rmtree, path, True)
    F.write_coco(path / "coco")
    F.write_mpii(path / "mpii")
    F.write_celeba(path / "celeba")
    F.write_hpatches(path / "hpatches", sequences=("v_a",))
    F.write_image_folder(path / "folder", n=2)
    F.write_video_folder(path / "videos", clips=2, frames=3, size=16)
    return path


@functools.lru_cache(maxsize=None)
def _folder():
    return D.ImageFolderPairs(_root() / "folder", size=16)


def _choice(value="nonsense"):
    return [("unknown choice", value, "error"), ("not text", 3, "error")]


CASES = [
    Case(D.CocoPersonCrops, lambda: {"root": _root() / "coco", "split": "val", "image_size": 16, "padding": 1.25,
                                     "min_keypoints": 1},
         {"image_size": "count", "padding": "positive", "min_keypoints": "count"},
         extra={"split": [("unknown split", "test2017", "error"), ("not text", 2017, "error")],
                "root": [("not a path", 3, "error")]}),
    Case(D.CocoScenes, lambda: {"root": _root() / "coco", "split": "val", "image_size": 16, "min_keypoints": 1},
         {"image_size": "count", "min_keypoints": "count"},
         extra={"image_size": [("not a multiple of 8", 20, "error")]}),
    Case(D.MPIIPeople, lambda: {"root": _root() / "mpii", "split": "trainval", "image_size": 16, "people": "all"},
         {"image_size": "count"}, extra={"split": _choice(), "people": _choice()}),
    Case(D.CelebAFaces, lambda: {"root": _root() / "celeba", "split": "mafl_test", "image_size": 16,
                                 "window": D.THEWLIS_WINDOW},
         {"image_size": "count"},
         extra={"split": _choice(), "window": [("two values", (1.0, 2.0), "error"), ("text", "abc", "error"),
                                               ("zero side", (0.0, 0.0, 0.0), "error"),
                                               ("nan", (float("nan"), 0.0, 10.0), "error")]}),
    Case(D.HPatchesSequences, lambda: {"root": _root() / "hpatches", "kind": "viewpoint", "max_size": 32},
         {"max_size": "count"},
         extra={"kind": _choice(), "sequences": [("a name, not a list", "v_a", "error"),
                                                 ("unknown", ["v_zzz"], "error")]}),
    Case(D.hpatches_sets, lambda: {"root": _root() / "hpatches", "max_size": 32, "exclude": ()}, {"max_size": "count"}),
    Case(D.ImageFolderPairs, lambda: {"root": _root() / "folder", "size": 16, "seed": 0, "pairs_per_image": 1,
                                      "max_side": 64, "kind": "train"},
         {"size": "count", "seed": "index", "pairs_per_image": "count", "max_side": "count"},
         extra={"kind": _choice()}),
    Case(D.FolderPairBatches, lambda: {"folder": _folder(), "batch_size": 1, "seed": 0},
         {"batch_size": "count", "seed": "index"}, extra={"folder": [("a path", _root() / "folder", "error")]}),
    Case(D.mpii_head_size, lambda: {"head_box": np.array([0.0, 0.0, 30.0, 40.0])}, {},
         extra={"head_box": [("three values", np.zeros(3), "error"), ("text", "box", "error"),
                             ("complex", np.zeros(4) + 1j, "error")]}),
    Case(D.VideoFolder, lambda: {"root": _root() / "videos", "size": 16, "min_frames": 2},
         {"size": "count", "min_frames": "count"},
         extra={"min_frames": [("one frame makes no pair", 1, "error")], "root": [("not a path", 3, "error")]}),
    Case(lambda **kw: next(D.VideoFolder(_root() / "videos", size=16).pair_batches(**kw)),
         lambda: {"batch_size": 2, "seed": 0, "max_gap": 1},
         {"batch_size": "count", "seed": "index", "max_gap": "count"},
         extra={"clips": [("unknown clip", [7], "error"), ("no clip", [], "error")]}),
    Case(D.materialise, lambda: {"dataset": D.HPatchesSequences(_root() / "hpatches", max_size=16), "n": 1},
         {"n": "count"}, extra={"dataset": [("a list", [1, 2], "error")]}),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.datasets that takes sizes, counts or numbers has a case."""
    covered = {c.func for c in CASES}
    # paths, decoded items or exception types only: their bad inputs are the layout errors of the other tests
    without = {"DatasetLayoutError", "ImageDataset", "read_rgb", "read_name_list", "find_coco", "read_mpii",
               "read_celeba_landmarks", "read_homography", "list_images", "collate_scenes", "openpose_collate"}
    for name in D.__all__:
        obj = getattr(D, name)
        if callable(obj) and name not in without:
            assert obj in covered, f"kpedu.datasets.{name} has no bad-input case"


def test_item_indices_are_checked():
    ds = D.CocoPersonCrops(_root() / "coco", "val", image_size=16)
    for bad, error in (("0", TypeError), (1.5, TypeError), (True, TypeError), (len(ds), IndexError)):
        try:
            ds[bad]
        except error as e:
            assert "index" in str(e)
        else:
            raise AssertionError(f"dataset[{bad!r}] was accepted")
    assert int(ds[-1]["index"]) == len(ds) - 1  # a negative index counts from the end
