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


# ---------------------------------------------------------------------------------
# further checks: exactness, COCOeval on our files, masks, torch items, validation
# ---------------------------------------------------------------------------------
import contextlib  # noqa: E402
import io  # noqa: E402

import torch  # noqa: E402

from kpedu.data import SyntheticPeople, as_pycocotools, make_person  # noqa: E402


def test_round_trip_is_bit_exact(tmp_path):
    samples = [make_person(i, size=48, distractors=1, crop_jitter=1.0) for i in range(3)]
    gt = to_coco(samples, image_ids=[10, 20, 30], file_names=["a.png", "b.png", "c.png"])
    loaded = read_coco(write_coco(tmp_path / "sub" / "gt.json", gt))
    assert loaded.image_ids == [10, 20, 30] and loaded.get(20).file_name == "b.png"
    for s, im in zip(samples, loaded):
        np.testing.assert_array_equal(im.keypoints, s.keypoints)  # v = 0 ones included
        np.testing.assert_array_equal(im.boxes, s.boxes)
        assert im.keypoints.dtype == np.float32 and im.visible.dtype == np.uint8
        assert not im.iscrowd.any()
    ann = gt["annotations"][0]
    assert ann["num_keypoints"] == int((samples[0].visible[0] > 0).sum())
    assert ann["id"] == 1 and ann["category_id"] == 1 and ann["iscrowd"] == 0
    assert len(ann["keypoints"]) == 51 and ann["keypoints"][2] in (0, 1, 2)


def test_cocoeval_scores_ground_truth_as_perfect():
    from pycocotools.cocoeval import COCOeval

    samples = [make_scene(i, size=64, num_people=(1, 3)) for i in range(4)]
    gt = to_coco(samples)
    res = []
    for img, s in zip(gt["images"], samples):
        res += results_to_coco(img["id"], s.keypoints, np.ones(s.visible.shape), np.ones(s.num_people))
    coco = as_pycocotools(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(res), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    # moving every detection far away makes AP 0: the check can fail
    bad = [dict(r, keypoints=[v + 30.0 if i % 3 < 2 else v for i, v in enumerate(r["keypoints"])]) for r in res]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(bad), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] < 0.05


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_masks_as_rle_and_torch_items():
    from pycocotools import mask as mask_utils

    ds = SyntheticPeople(3, image_size=40, mode="multi", seed=1, num_people=2, return_masks=True)
    items = [ds[i] for i in range(3)]
    gt = to_coco(items, include_masks=True)
    assert len(gt["annotations"]) == 6 and gt["images"][0]["height"] == 40
    for ann, (i, p) in zip(gt["annotations"], [(i, p) for i in range(3) for p in range(2)]):
        rle = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), items[i]["masks"][p].numpy())
        assert ann["area"] == float(items[i]["areas"][p])
    with pytest.raises(ValueError, match="masks"):
        to_coco([make_person(0, size=32).__dict__ | {"masks": None}], include_masks=True)


def test_results_format():
    kp = torch.tensor([[[1.5, 2.0]] * 17, [[3.0, 4.0]] * 17])
    out = results_to_coco(5, kp, torch.full((2, 17), 0.5), torch.tensor([0.9, 0.1]))
    assert [r["score"] for r in out] == pytest.approx([0.9, 0.1])
    assert out[0]["keypoints"][:3] == [1.5, 2.0, 0.5] and out[0]["image_id"] == 5
    assert out[1]["category_id"] == 1 and len(out[1]["keypoints"]) == 51
    assert results_to_coco(1, np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0)) == []
    with pytest.raises(TypeError):
        results_to_coco("1", np.zeros((1, 17, 2)), np.ones((1, 17)), np.ones(1))
    with pytest.raises(ValueError, match="scores"):
        results_to_coco(1, np.zeros((1, 17, 2)), np.ones((1, 17)), np.ones(2))
    with pytest.raises(ValueError, match="inf"):
        results_to_coco(1, np.zeros((1, 17, 2)), np.ones((1, 17)), np.array([np.inf]))


def _tiny(**over):
    d = {
        "images": [{"id": 1, "file_name": "x.jpg", "height": 10, "width": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2] * 17}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoint_names)}],
    }
    d.update(over)
    return d


def test_reader_validation():
    c = read_coco(_tiny())
    assert c.get(1).boxes.shape == (1, 4) and c.to_skeleton() == COCO17
    with pytest.raises(KeyError):
        c.get(2)
    with pytest.raises(ValueError, match="51 numbers|3 x 17"):
        read_coco(_tiny(annotations=[{"id": 4, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2]}]))
    with pytest.raises(ValueError, match="not in 'images'"):
        read_coco(_tiny(annotations=[{"id": 4, "image_id": 3, "category_id": 1, "keypoints": [0] * 51}]))
    with pytest.raises(ValueError, match="visibility"):
        read_coco(_tiny(annotations=[{"id": 4, "image_id": 1, "category_id": 1, "keypoints": [0, 0, 3] * 17}]))
    with pytest.raises(ValueError, match="no 'keypoints'"):
        read_coco(_tiny(annotations=[{"id": 4, "image_id": 1, "category_id": 1}]))
    with pytest.raises(ValueError, match="duplicate image id"):
        read_coco(_tiny(images=[{"id": 1}, {"id": 1}]))
    with pytest.raises(ValueError, match="not a keypoint file"):
        read_coco(_tiny(categories=[{"id": 1, "name": "person"}]))
    with pytest.raises(ValueError, match="must be a list"):
        read_coco(_tiny(images={}))
    with pytest.raises(TypeError):
        read_coco(42)
    two = [{"id": 1, "name": "a", "keypoints": ["p", "q"]}, {"id": 2, "name": "b", "keypoints": ["p"]}]
    with pytest.raises(ValueError, match="category_id"):
        read_coco(_tiny(categories=two, annotations=[]))
    c = read_coco(_tiny(categories=two, annotations=[
        {"id": 1, "image_id": 1, "category_id": 2, "keypoints": [3, 4, 1]}]), category_id=2)
    assert c.keypoint_names == ("p",) and c.get(1).visible.tolist() == [[1]]
    with pytest.raises(ValueError, match="unique"):
        to_coco([make_person(0, size=32)] * 2, image_ids=[1, 1])
    with pytest.raises(ValueError, match="shape"):
        to_coco([{"keypoints": np.zeros((1, 16, 2)), "visible": np.zeros((1, 16)), "height": 8, "width": 8}])
