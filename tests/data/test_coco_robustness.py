"""kpedu.data.coco under stress (issue 20): atomic writes with injected failures, the value
checks of read_coco on real-layout files, and round-trip properties."""
from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kpedu.data.coco as coco_mod
from kpedu.data import COCO17, read_coco, to_coco, write_coco

K = 17


def _gt(n_people=2, seed=0):
    rng = np.random.default_rng(seed)
    return to_coco([{"keypoints": rng.uniform(0, 60, (n_people, K, 2)).astype(np.float32),
                     "visible": rng.integers(0, 3, (n_people, K)), "height": 64, "width": 64}])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# write_coco is atomic
# ---------------------------------------------------------------------------------------------


def test_write_coco_failing_half_way_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_coco(tmp_path / "gt.json", _gt(seed=1))
    old = path.read_bytes()

    real_atomic_open = coco_mod.atomic_open

    class HalfWriter:
        """Writes the first half of what it is given, then fails like a full disk."""

        def __init__(self, fh):
            self.fh = fh

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise OSError(28, "No space left on device")

    @contextlib.contextmanager
    def failing_atomic_open(p, mode="w", encoding=None):
        with real_atomic_open(p, mode, encoding) as fh:
            yield HalfWriter(fh)

    monkeypatch.setattr(coco_mod, "atomic_open", failing_atomic_open)
    with pytest.raises(OSError, match="No space"):
        write_coco(path, _gt(seed=2))
    assert path.read_bytes() == old  # the good file is intact, not truncated
    assert _leftovers(tmp_path) == []  # and no temporary file is left behind
    assert read_coco(path).num_annotations == 2


def test_write_coco_failing_serialisation_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_coco(tmp_path / "gt.json", _gt(seed=1))
    old = path.read_bytes()

    def broken_dumps(*args, **kwargs):
        raise TypeError("cannot serialise this")

    monkeypatch.setattr(coco_mod.json, "dumps", broken_dumps)
    with pytest.raises(TypeError, match="coco_dict"):
        write_coco(path, _gt(seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == old and _leftovers(tmp_path) == []


def test_write_coco_refuses_nan_without_touching_the_file(tmp_path):
    path = write_coco(tmp_path / "gt.json", _gt(seed=1))
    old = path.read_bytes()
    bad = _gt(seed=2)
    bad["annotations"][0]["area"] = math.nan
    with pytest.raises(ValueError, match="coco_dict"):
        write_coco(path, bad)
    assert path.read_bytes() == old and _leftovers(tmp_path) == []


def test_write_coco_into_a_new_folder_and_over_a_folder(tmp_path):
    path = write_coco(tmp_path / "a" / "b" / "gt.json", _gt())
    assert read_coco(path).num_annotations == 2
    with pytest.raises(IsADirectoryError):
        write_coco(tmp_path / "a", _gt())


# ---------------------------------------------------------------------------------------------
# read_coco: the values of a file
# ---------------------------------------------------------------------------------------------


def _real_layout() -> dict:
    """A file laid out like COCO's person_keypoints_val2017.json (every field, int keypoints,
    large ids, polygon and RLE segmentations, a crowd region with zero keypoints)."""
    kp = []
    for j in range(K):
        kp += [0, 0, 0] if j in (3, 4) else [100 + 3 * j, 200 + 5 * j, 1 + j % 2]
    return {
        "info": {"description": "COCO 2017 Dataset", "version": "1.0", "year": 2017},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "x"}],
        "images": [
            {"license": 4, "file_name": "000000397133.jpg", "coco_url": "http://images.cocodataset.org/x.jpg",
             "height": 427, "width": 640, "date_captured": "2013-11-14 17:02:52",
             "flickr_url": "http://farm7.staticflickr.com/x.jpg", "id": 397133},
            {"license": 1, "file_name": "000000037777.jpg", "height": 230, "width": 352, "id": 37777},
        ],
        "annotations": [
            {"segmentation": [[125.12, 539.69, 140.94, 522.43, 100.67, 496.54]], "num_keypoints": 15,
             "area": 47803.27955, "iscrowd": 0, "keypoints": kp, "image_id": 397133,
             "bbox": [388.66, 69.92, 109.41, 277.62], "category_id": 1, "id": 200887},
            {"segmentation": {"counts": [272, 2, 4, 4, 4, 4, 2, 9], "size": [427, 640]}, "num_keypoints": 0,
             "area": 1034.0, "iscrowd": 1, "keypoints": [0] * (3 * K), "image_id": 397133,
             "bbox": [1.0, 2.0, 33.0, 44.0], "category_id": 1, "id": 900100397133},
        ],
        "categories": [{"supercategory": "person", "id": 1, "name": "person",
                        "keypoints": list(COCO17.keypoint_names),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO17.limbs]}],
    }


def test_reads_a_real_layout_file(tmp_path):
    path = tmp_path / "person_keypoints_val2017.json"
    path.write_text(json.dumps(_real_layout()))
    c = read_coco(path)
    im = c.get(397133)
    assert im.num_people == 2 and im.iscrowd.tolist() == [False, True]
    assert im.ann_ids.tolist() == [200887, 900100397133]
    np.testing.assert_allclose(im.areas, [47803.27955, 1034.0], rtol=1e-6)
    assert im.visible[0, 3] == 0 and im.visible[0, 0] == 1 and im.visible[0, 1] == 2
    assert c.get(37777).num_people == 0
    # json's NaN / Infinity literals and booleans for iscrowd
    d = _real_layout()
    d["annotations"][1]["iscrowd"] = True
    assert read_coco(d).get(397133).iscrowd.tolist() == [False, True]


@pytest.mark.parametrize("field, value, where, match", [
    ("area", -5.0, "annotation", r"annotations\[0\] \(id 200887\): 'area' must be >= 0"),
    ("iscrowd", "no", "annotation", r"annotations\[0\] \(id 200887\): 'iscrowd' must be 0 or 1"),
    ("iscrowd", 2, "annotation", r"'iscrowd' must be 0 or 1"),
    ("id", 1.5, "annotation", r"annotations\[0\]: 'id' must be an integer, got 1.5"),
    ("image_id", 397133.0, "annotation", r"annotations\[0\]: 'image_id' must be an integer"),
    ("category_id", "1", "annotation", r"annotations\[0\]: 'category_id' must be an integer"),
    ("bbox", [1.0, 2.0, -3.0, 4.0], "annotation", r"annotations\[0\] \(id 200887\): 'bbox' .* w >= 0 and h >= 0"),
    ("bbox", [1.0, 2.0, 3.0], "annotation", r"'bbox' must be a list \[x, y, w, h\] of 4 numbers"),
    ("bbox", [1e39, 2.0, 3.0, 4.0], "annotation", r"'bbox'\[0\] must be finite and representable in float32"),
    ("area", 1e39, "annotation", r"'area' must be finite and representable in float32"),
    ("id", 1.5, "image", r"images\[0\] must be an object with an integer 'id', got 1.5"),
    ("width", -640, "image", r"images\[0\] \(id 397133\): width must be a positive int"),
])
def test_read_coco_rejects_bad_values_naming_field_and_entry(field, value, where, match):
    d = _real_layout()
    (d["annotations"][0] if where == "annotation" else d["images"][0])[field] = value
    with pytest.raises(ValueError, match=match):
        read_coco(d)


@pytest.mark.parametrize("j, value, match", [
    (0, 1e39, r"'keypoints'\[0\] \(the x of keypoint 0\) must be finite and representable in float32"),
    (4, -math.inf, r"'keypoints'\[4\] \(the y of keypoint 1\) must be finite"),
    (3, math.nan, r"'keypoints'\[3\] \(the x of keypoint 1\) must be finite"),
    (2, 3, r"visibility flags .* must be 0, 1 or 2, got \[3\]"),
    (5, 0.5, r"visibility flags .* must be 0, 1 or 2"),
    (1, "7", r"'keypoints'\[1\] \(the y of keypoint 0\) must be a number, got '7'"),
    (1, True, r"'keypoints'\[1\] .* must be a number, got True"),
])
def test_read_coco_rejects_bad_keypoint_values(j, value, match):
    d = _real_layout()
    d["annotations"][0]["keypoints"][j] = value
    with pytest.raises(ValueError, match=r"annotations\[0\] \(id 200887\)"):
        read_coco(d)
    with pytest.raises(ValueError, match=match):
        read_coco(d)


def test_read_coco_rejects_a_short_keypoint_list_and_a_bad_category_id():
    d = _real_layout()
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:-3]
    with pytest.raises(ValueError, match=r"'keypoints' has 48 numbers, expected 3 x 17"):
        read_coco(d)
    with pytest.raises(ValueError, match="category_id"):
        read_coco(_real_layout(), category_id=1.5)
    with pytest.raises(ValueError, match="category_id 3 is not a category"):
        read_coco(_real_layout(), category_id=3)


def test_nan_or_inf_in_a_json_file_is_an_error(tmp_path):
    path = tmp_path / "nan.json"
    text = json.dumps(_real_layout()).replace('"area": 47803.27955', '"area": NaN')
    path.write_text(text)
    with pytest.raises(ValueError, match=r"'area' must be finite"):
        read_coco(path)
    path.write_text(json.dumps(_real_layout()).replace('"bbox": [388.66', '"bbox": [Infinity'))
    with pytest.raises(ValueError, match=r"'bbox'\[0\] must be finite"):
        read_coco(path)


def test_missing_image_is_a_key_error_naming_the_id():
    c = read_coco(_real_layout())
    with pytest.raises(KeyError, match="image_id 5"):
        c.get(5)


# ---------------------------------------------------------------------------------------------
# to_coco: what it accepts
# ---------------------------------------------------------------------------------------------


def test_to_coco_writes_nan_of_unlabelled_keypoints_as_zero():
    kp = np.full((1, K, 2), 5.0)
    vis = np.full((1, K), 2)
    kp[0, 3], vis[0, 3] = np.nan, 0  # an unlabelled keypoint without coordinates
    ann = to_coco([{"keypoints": kp, "visible": vis, "height": 8, "width": 8}])["annotations"][0]
    assert ann["keypoints"][9:12] == [0.0, 0.0, 0]
    vis[0, 3] = 1
    with pytest.raises(ValueError, match=r"samples\[0\]\['keypoints'\] has NaN at a labelled keypoint"):
        to_coco([{"keypoints": kp, "visible": vis, "height": 8, "width": 8}])


def test_to_coco_rejects_negative_areas_and_boxes():
    s = {"keypoints": np.ones((1, K, 2)), "visible": np.full((1, K), 2), "height": 8, "width": 8}
    with pytest.raises(ValueError, match=r"samples\[0\]\['areas'\] must be >= 0"):
        to_coco([{**s, "areas": np.array([-1.0])}])
    with pytest.raises(ValueError, match=r"samples\[0\]\['boxes'\] must have a width and height >= 0"):
        to_coco([{**s, "boxes": np.array([[0.0, 0.0, -1.0, 2.0]])}])


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

_coord = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def _samples(draw):
    n_samples = draw(st.integers(1, 3))
    out = []
    for _ in range(n_samples):
        n = draw(st.integers(0, 3))
        k = np.array(draw(st.lists(_coord, min_size=n * K * 2, max_size=n * K * 2)), np.float32).reshape(n, K, 2)
        v = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n * K, max_size=n * K)), np.uint8)
        a = np.array(draw(st.lists(st.floats(0, 1e6, width=32), min_size=n, max_size=n)), np.float32)
        out.append({"keypoints": k, "visible": v.reshape(n, K), "areas": a,
                    "height": draw(st.integers(1, 500)), "width": draw(st.integers(1, 500))})
    return out


@settings(max_examples=25, deadline=None)
@given(_samples(), st.booleans())
def test_to_coco_then_read_coco_round_trips(samples, through_a_file):
    gt = to_coco(samples)
    if through_a_file:
        with tempfile.TemporaryDirectory() as tmp:
            loaded = read_coco(write_coco(Path(tmp) / "gt.json", gt))
    else:
        loaded = read_coco(gt)
    assert len(loaded) == len(samples)
    for s, im in zip(samples, loaded):
        np.testing.assert_array_equal(im.keypoints, s["keypoints"])  # float32 in, float32 out: exact
        np.testing.assert_array_equal(im.visible, s["visible"])
        np.testing.assert_array_equal(im.areas, s["areas"])
        assert (im.height, im.width) == (s["height"], s["width"])
        assert not im.iscrowd.any()
