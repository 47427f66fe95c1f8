"""COCO 2017 person keypoints (kpedu.datasets.coco) on a tiny data set in the real layout."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from kpedu.datasets import CocoPersonCrops, CocoScenes, DatasetLayoutError, collate_scenes, openpose_collate
from kpedu.datasets import fixtures as F
from kpedu.datasets._common import crop_matrix, transform_points


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return root, F.write_coco(root)


def _anns(truth, image_id):
    return [a for a in truth["annotations"] if a["image_id"] == image_id]


def _kv(a):
    k = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
    return k[:, :2], k[:, 2].astype(np.uint8)


def test_crops_hold_the_annotated_people_with_exact_keypoints(coco):
    root, truth = coco
    ds = CocoPersonCrops(root, "val", image_size=64)
    by_id = {a["id"]: a for a in truth["annotations"]}
    # crowd regions and people without keypoints are not crops
    assert [r.key for r in ds.records] == [101, 102, 201]
    assert ds.image_ids == [1, 1, 2]
    for i, r in enumerate(ds.records):
        a = by_id[r.key]
        x, y, w, h = a["bbox"]
        m = crop_matrix((x + w / 2 - 0.5, y + h / 2 - 0.5), max(w, h) * 1.25, 64)
        kp, v = _kv(a)
        item = ds[i]
        assert int(item["index"]) == i
        assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
        assert torch.equal(item["visible"], torch.from_numpy(v))  # COCO's 0/1/2 flags kept
        lab = v > 0
        np.testing.assert_allclose(item["keypoints"].numpy()[lab], transform_points(m, kp)[lab], atol=1e-4)
        assert (item["keypoints"].numpy()[~lab] == 0).all()  # unlabelled: (0, 0), as in the COCO files
        np.testing.assert_allclose(item["transform"].numpy(), m)
        assert float(item["area"]) == pytest.approx(a["area"] * m[0, 0] ** 2, rel=1e-5)
        assert torch.isnan(item["head_size"])  # COCO has no head boxes
    # person 102 has hidden keypoints (0, 0, 0) and occluded ones (v = 1)
    v102 = ds[1]["visible"]
    assert v102[3] == 0 and v102[15] == 0 and v102[7] == 1 and v102[9] == 1


def test_crops_take_their_pixels_from_the_annotated_places(coco):
    root, truth = coco
    ds = CocoPersonCrops(root, "val", image_size=64)
    sizes = {im["id"]: (im["height"], im["width"]) for im in truth["images"]}
    for i in range(len(ds)):
        item = ds[i]
        h, w = sizes[ds.image_ids[i]]
        img = (item["image"].numpy() * 255).transpose(1, 2, 0)
        for (u, v), flag in zip(item["keypoints"].numpy(), item["visible"].numpy()):
            if not flag:
                continue
            q = np.round([u, v]).astype(int)
            src = ds.to_source(i, q.astype(float))
            expect = F.ramp_value(src[0], src[1], h, w)  # red grows with x, green with y
            np.testing.assert_allclose(img[q[1], q[0], :2], expect, atol=5)


def test_crops_materialise_into_people_tensors(coco):
    from kpedu.foundations import PeopleTensors

    root, _ = coco
    ds = CocoPersonCrops(root, "val", image_size=64)
    people = ds.materialise()
    assert isinstance(people, PeopleTensors) and len(people) == 3
    assert people.images.dtype == torch.uint8 and people.visible.dtype == torch.uint8
    item = ds[2]
    assert torch.allclose(people.images[2].float() / 255, item["image"], atol=1 / 255 + 1e-6)
    assert torch.equal(people.keypoints[2], item["keypoints"])
    batch = people.batch(torch.tensor([0, 2]))
    assert set(batch) == {"image", "keypoints", "visible"} and batch["image"].shape == (2, 3, 64, 64)
    # the default DataLoader collate gives the same keys, plus the extras
    loaded = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert loaded["keypoints"].shape == (3, 17, 2) and loaded["transform"].shape == (3, 2, 3)


def test_scenes_keep_every_annotation_and_resize_exactly(coco):
    root, truth = coco
    ds = CocoScenes(root, "val", image_size=64)
    assert len(ds) == 2  # image 3 has nobody (require_people)
    item = ds[0]
    k = 64 / 320
    anns = _anns(truth, 1)
    assert item["keypoints"].shape == (4, 17, 2) and int(item["image_id"]) == 1
    assert float(item["scale"]) == pytest.approx(k)
    for p, a in enumerate(anns):
        kp, v = _kv(a)
        if a["iscrowd"] or a["num_keypoints"] == 0:
            assert (item["visible"][p] == 0).all()  # crowd and unlabelled people: every v = 0
            continue
        assert torch.equal(item["visible"][p], torch.from_numpy(v))
        lab = v > 0
        np.testing.assert_allclose(item["keypoints"][p].numpy()[lab], (kp[lab] + 0.5) * k - 0.5, atol=1e-4)
        x, y, w, h = a["bbox"]
        np.testing.assert_allclose(item["boxes"][p].numpy(), [x * k - 0.5, y * k - 0.5, w * k, h * k], atol=1e-4)
        assert float(item["areas"][p]) == pytest.approx(a["area"] * k * k, rel=1e-5)
    # the padding below the resized 240 x 320 image is black
    assert float(item["image"][:, 49:].max()) == 0.0


def test_crowd_and_unlabelled_people_are_in_the_mask(coco):
    root, _ = coco
    s = 128
    k = s / 320
    mask = CocoScenes(root, "val", image_size=s)[0]["unlabelled"].numpy()
    ys, xs = np.mgrid[0:s, 0:s]
    sx, sy = (xs + 0.5) / k - 0.5, (ys + 0.5) / k - 0.5  # each output pixel's centre in the source
    crowd = (sx >= 250) & (sx <= 299) & (sy >= 20) & (sy <= 99)  # the crowd's RLE rectangle
    quad = (sx >= 215) & (sx <= 245) & (sy >= 150) & (sy <= 230)  # the person without keypoints
    assert mask[crowd].all() and mask[quad].all()
    far = ~(((sx >= 245) & (sx <= 304) & (sy >= 15) & (sy <= 104)) | ((sx >= 210) & (sx <= 250) & (sy >= 145)
                                                                       & (sy <= 235)))
    assert not mask[far].any()
    # the labelled people are not masked: image 2 has no crowd and no unlabelled person
    assert not CocoScenes(root, "val", image_size=s)[1]["unlabelled"].any()


def test_scenes_train_and_evaluate_like_the_synthetic_ones(coco):
    from kpedu.data import results_to_coco
    from kpedu.metrics import coco_evaluate
    from kpedu.openpose.experiment import SceneTensors, scene_batches

    root, _ = coco
    ds = CocoScenes(root, "val", image_size=64)
    scenes = ds.materialise()
    assert isinstance(scenes, SceneTensors) and len(scenes) == 2
    assert scenes.unlabelled[0] is not None and scenes.unlabelled[1] is None
    assert ds.materialised_image_ids == [1, 2]
    batch = next(scene_batches(scenes, 2, torch.Generator().manual_seed(0)))
    assert batch["mask"].shape == (2, 8, 8) and batch["cm"].shape == (2, 17, 8, 8)
    # the ground truth scores AP 1 against itself: crowd and unlabelled people are ignored
    results = []
    for i, (kp, v) in enumerate(zip(scenes.keypoints, scenes.visible)):
        lab = (v > 0).any(1)
        results += results_to_coco(i + 1, kp[lab], torch.ones(int(lab.sum()), 17), torch.ones(int(lab.sum())))
    assert coco_evaluate(scenes.to_coco(), results)["AP"] == pytest.approx(1.0)
    # the DataLoader path: the batch dict of scene_batches, with W = 0 on the masked cells
    b = openpose_collate([ds[0], ds[1]])
    assert set(b) == {"image", "keypoints", "visible", "cm", "paf", "mask", "index"}
    assert b["mask"][0].min() == 0 and b["mask"][1].min() == 1
    c = collate_scenes([ds[0], ds[1]])
    assert isinstance(c["keypoints"], list) and c["unlabelled"].shape == (2, 64, 64)


def test_flat_layout_and_explicit_annotations(tmp_path):
    truth = F.write_coco(tmp_path, layout="flat")
    assert len(CocoPersonCrops(tmp_path, "val2017", image_size=32)) == 3
    ann = tmp_path / "annotations" / "person_keypoints_val2017.json"
    moved = tmp_path / "elsewhere.json"
    ann.rename(moved)
    assert len(CocoScenes(tmp_path, "val", image_size=32, annotations=moved)) == 2
    assert len(truth["images"]) == 3


def test_layout_errors_name_what_was_expected(tmp_path, coco):
    root, _ = coco
    with pytest.raises(DatasetLayoutError, match=r"no person_keypoints_\*\.json under .*annotations: expected the "
                                                 r"COCO 2017 layout") as e:
        CocoPersonCrops(tmp_path, "val")
    assert "\n" not in str(e.value)
    with pytest.raises(DatasetLayoutError, match=r"no person_keypoints_train2017.json .*found "
                                                 r"person_keypoints_val2017.json"):
        CocoPersonCrops(root, "train")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        CocoScenes(tmp_path / "nowhere", "val")
    with pytest.raises(ValueError, match="split must be"):
        CocoScenes(root, "test")
    with pytest.raises(ValueError, match="image_size must be a multiple of 8"):
        CocoScenes(root, "val", image_size=60)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_val2017.json").write_text("{}")
    with pytest.raises(DatasetLayoutError, match=r"no image folder .*images/val2017 or .*val2017"):
        CocoPersonCrops(tmp_path, "val")


def test_a_corrupt_image_is_skipped_counted_and_reported(tmp_path):
    F.write_coco(tmp_path)
    F.corrupt_file(tmp_path / "images" / "val2017" / "000000000001.jpg")
    ds = CocoPersonCrops(tmp_path, "val", image_size=32)
    with pytest.warns(RuntimeWarning, match="skipped image 000000000001.jpg"):
        item = ds[0]
    assert int(item["index"]) == 2  # crops 0 and 1 are in the corrupt image: the next readable one
    assert ds.skipped == ["000000000001.jpg"]  # counted once
    with pytest.warns(RuntimeWarning, match=r"1 unreadable image\(s\) skipped in all .*000000000001.jpg"):
        people = ds.materialise()
    assert len(people) == 1 and ds.materialised_indices == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.report() == 1  # nothing new since the last report: no warning
    scenes = CocoScenes(tmp_path, "val", image_size=32)
    with pytest.warns(RuntimeWarning):
        assert len(scenes.materialise()) == 1
    assert scenes.skipped == ["000000000001.jpg"]


def test_segmentations_decode_from_every_coco_form():
    from pycocotools import mask as mask_utils

    from kpedu.datasets.coco import _decode_segmentation

    truth = np.zeros((30, 40), bool)
    truth[5:20, 10:25] = True
    rle = mask_utils.encode(np.asfortranarray(truth.astype(np.uint8)))
    compressed = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}  # as stored in JSON
    assert np.array_equal(_decode_segmentation(compressed, 30, 40, [0, 0, 1, 1]), truth)
    assert np.array_equal(_decode_segmentation(F._uncompressed_rle(truth), 30, 40, [0, 0, 1, 1]), truth)
    # a crowd given as a polygon (the square's outline): pycocotools rasterises it
    poly = _decode_segmentation([[10, 5, 25, 5, 25, 20, 10, 20]], 30, 40, [0, 0, 1, 1])
    assert poly[6:19, 11:24].all() and not poly[:4].any() and not poly[:, 27:].any()
    # no segmentation: the box
    box = _decode_segmentation([], 30, 40, [10.0, 5.0, 15.0, 15.0])
    assert np.array_equal(box, truth)
