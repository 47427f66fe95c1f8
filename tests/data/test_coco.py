"""Tests for kpedu.data.coco: writing, pycocotools acceptance, a real-style loader."""
import json

import numpy as np
import pytest

from kpedu.data import COCO17, make_scene, read_coco, results_to_coco, to_coco, write_coco


def test_round_trip_exact(tmp_path):
    scenes = [make_scene(i, size=64, num_people=(1, 3)) for i in range(4)]
    path = write_coco(tmp_path / "gt.json", to_coco(scenes))
    loaded = read_coco(path)
    assert len(loaded) == 4 and loaded.keypoint_names == COCO17.keypoint_names
    assert loaded.num_annotations == sum(s.num_people for s in scenes)
    for s, im in zip(scenes, loaded):
        np.testing.assert_allclose(im.keypoints, s.keypoints, atol=1e-5)
        np.testing.assert_array_equal(im.visible, s.visible)
        np.testing.assert_allclose(im.areas, s.areas)
        assert (im.height, im.width) == (64, 64)


def test_pycocotools_accepts_what_we_write():
    from pycocotools.coco import COCO

    gt = to_coco([make_scene(i, size=64, num_people=2) for i in range(3)])
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 6
    assert coco.loadCats(1)[0]["keypoints"][0] == "nose"
    res = results_to_coco(1, np.zeros((2, 17, 2)), np.ones((2, 17)), np.array([0.9, 0.5]))
    assert len(coco.loadRes(res).getAnnIds()) == 2


def test_reads_a_hand_written_real_style_file(tmp_path):
    k = [10, 20, 2] * 17
    d = {
        "images": [{"id": 7, "file_name": "a.jpg", "height": 100, "width": 120},
                   {"id": 9, "file_name": "empty.jpg", "height": 50, "width": 50}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "keypoints": k, "num_keypoints": 17,
             "bbox": [0, 0, 30, 40], "area": 900.0, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "keypoints": [0] * 51, "num_keypoints": 0,
             "bbox": [50, 50, 40, 40], "area": 1600.0, "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [1, 1, 2, 2], "area": 4.0, "iscrowd": 0},
        ],
        "categories": [
            {"id": 1, "name": "person", "keypoints": list(COCO17.keypoint_names),
             "skeleton": [[a + 1, b + 1] for a, b in COCO17.limbs]},
            {"id": 2, "name": "dog"},
        ],
    }
    path = tmp_path / "real.json"
    path.write_text(json.dumps(d))
    c = read_coco(path)
    assert c.image_ids == [7, 9]
    im = c.get(7)
    assert im.num_people == 2 and im.iscrowd.tolist() == [False, True]
    np.testing.assert_allclose(im.keypoints[0, 3], [10, 20])
    assert c.get(9).num_people == 0 and c.get(9).keypoints.shape == (0, 17, 2)
    assert c.skeleton == tuple(tuple(l) for l in COCO17.limbs)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="annotations"):
        read_coco({"images": [], "categories": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        read_coco(bad)
    with pytest.raises(FileNotFoundError):
        read_coco(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="NaN"):
        results_to_coco(1, np.full((1, 17, 2), np.nan), np.ones((1, 17)), np.ones(1))
    with pytest.raises(ValueError):
        results_to_coco(1, np.zeros((1, 17, 2)), np.ones((1, 16)), np.ones(1))
    with pytest.raises(ValueError):
        to_coco([{"keypoints": np.zeros((1, 17, 2)), "visible": np.full((1, 17), 3), "height": 8, "width": 8}])
