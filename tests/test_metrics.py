"""Tests for kpedu.metrics: hand-computed PCK, OKS against pycocotools, AP on a written file."""
import json

import numpy as np
import pytest

from kpedu.data import COCO17
from kpedu.metrics import bbox_size, coco_evaluate, keypoint_ap, nme, oks, pck, pck_curve, torso_size


class TestPCK:
    def test_hand_computed(self):
        gt = np.zeros((2, 3, 2))
        pred = np.zeros((2, 3, 2))
        pred[0, :, 0] = [0.5, 1.5, 3.0]   # person 0: threshold 0.2 * 10 = 2 px
        pred[1, :, 1] = [1.0, 5.0, 0.0]   # person 1: threshold 0.2 * 20 = 4 px
        vis = np.array([[2, 2, 2], [2, 1, 0]])  # the last joint of person 1 is not labelled
        r = pck(pred, gt, vis, normalizer=np.array([10.0, 20.0]), threshold=0.2)
        np.testing.assert_array_equal(r.correct, [[True, True, False], [True, False, False]])
        np.testing.assert_allclose(r.per_joint, [1.0, 0.5, 0.0])
        assert r.mean == pytest.approx(3 / 5)
        assert "mean" in r.table(["a", "b", "c"])

    def test_joint_never_labelled_is_nan(self):
        r = pck(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), [[2, 0]], normalizer=1.0)
        assert r.per_joint[0] == 1.0 and np.isnan(r.per_joint[1])

    def test_torso_normalizer(self):
        gt = np.zeros((1, 17, 2))
        gt[0, COCO17.index("left_shoulder")] = [0, 0]
        gt[0, COCO17.index("right_hip")] = [3, 4]
        assert torso_size(gt)[0] == pytest.approx(5.0)
        vis = np.full((1, 17), 2)
        vis[0, COCO17.index("right_hip")] = 0
        gt[0, COCO17.index("right_shoulder")] = [10, 0]
        gt[0, COCO17.index("left_hip")] = [10, 8]  # fallback diagonal: length 8
        assert torso_size(gt, vis)[0] == pytest.approx(8.0)
        vis[0, COCO17.index("left_hip")] = 0
        assert np.isnan(torso_size(gt, vis)[0])

    def test_person_without_torso_is_left_out(self):
        gt = np.random.default_rng(0).uniform(0, 50, (2, 17, 2))
        vis = np.full((2, 17), 2)
        vis[1, [5, 6, 11, 12]] = 0
        r = pck(gt + 100, gt, vis, "torso", 0.2)
        assert r.evaluated[1].sum() == 0 and r.evaluated[0].sum() == 17
        assert r.mean == 0.0

    def test_bbox_and_nan_prediction(self):
        gt = np.array([[[0.0, 0.0], [4.0, 1.0], [2.0, 10.0]]])
        assert bbox_size(gt)[0] == 10.0
        pred = gt.copy()
        pred[0, 0] = np.nan
        r = pck(pred, gt, None, "bbox", 0.1)
        np.testing.assert_array_equal(r.correct[0], [False, True, True])

    def test_curve_monotone(self):
        rng = np.random.default_rng(1)
        gt = rng.uniform(0, 100, (20, 17, 2))
        t, v = pck_curve(gt + rng.normal(0, 5, gt.shape), gt, None, "bbox")
        assert np.all(np.diff(v) >= 0) and v[-1] > v[0]

    def test_errors(self):
        with pytest.raises(ValueError, match="same shape"):
            pck(np.zeros((1, 3, 2)), np.zeros((1, 4, 2)))
        with pytest.raises(ValueError, match="head"):
            pck(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), normalizer="head")
        with pytest.raises(ValueError, match="threshold"):
            pck(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), normalizer=1.0, threshold=0)
        with pytest.raises(ValueError, match="one value per person"):
            pck(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), normalizer=np.ones(3))
        with pytest.raises(ValueError, match="NaN"):
            pck(np.zeros((1, 3, 2)), np.full((1, 3, 2), np.nan), normalizer=1.0)


def test_nme():
    gt = np.zeros((2, 2, 2))
    pred = gt.copy()
    pred[0, :, 0] = [1.0, 3.0]  # mean error 2, normaliser 4 -> 0.5
    pred[1, :, 1] = [2.0, 2.0]  # mean error 2, normaliser 2 -> 1.0
    assert nme(pred, gt, np.array([4.0, 2.0])) == pytest.approx(0.75)
    np.testing.assert_allclose(nme(pred, gt, np.array([4.0, 2.0]), reduce="none"), [0.5, 1.0])


def _coco_file(tmp_path, people, width=200, height=200):
    """A COCO keypoints file written by hand: one image per person."""
    images, anns = [], []
    for i, (kp, vis, area) in enumerate(people):
        images.append({"id": i + 1, "width": width, "height": height, "file_name": f"{i}.png"})
        flat = np.concatenate([kp, vis[:, None]], axis=1).reshape(-1).tolist()
        x0, y0 = kp[vis > 0].min(0)
        x1, y1 = kp[vis > 0].max(0)
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "keypoints": flat,
                     "num_keypoints": int((vis > 0).sum()), "area": float(area), "iscrowd": 0,
                     "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
    cats = [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(COCO17.keypoint_names),
             "skeleton": [[a + 1, b + 1] for a, b in COCO17.limbs]}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _people(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kp = rng.uniform(40, 160, (17, 2))
        vis = rng.choice([1, 2], size=17)
        vis[rng.integers(17)] = 0
        out.append((kp, vis, float(rng.uniform(2000, 8000))))
    return out


def test_oks_matches_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    people = _people(5)
    path = _coco_file(tmp_path, people)
    rng = np.random.default_rng(1)
    preds = [kp + rng.normal(0, 4, kp.shape) for kp, _, _ in people]
    results = [{"image_id": i + 1, "category_id": 1, "score": 1.0,
                "keypoints": np.concatenate([p, np.ones((17, 1))], 1).reshape(-1).tolist()}
               for i, p in enumerate(preds)]
    gt = COCO(str(path))
    ev = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
    ev.evaluate()
    ours = oks(np.stack(preds), np.stack([p[0] for p in people]), np.stack([p[1] for p in people]),
               np.array([p[2] for p in people]))
    theirs = [ev.computeOks(i + 1, 1)[0, 0] for i in range(5)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert 0.2 < ours.mean() < 0.99


def test_coco_ap_perfect_noisy_and_missing(tmp_path):
    people = _people(6, seed=2)
    gt = json.loads(_coco_file(tmp_path, people).read_text())

    def results(noise, drop=()):
        rng = np.random.default_rng(3)
        out = []
        for i, (kp, _, _) in enumerate(people):
            if i in drop:
                continue
            p = kp + rng.normal(0, noise, kp.shape)
            out.append({"image_id": i + 1, "category_id": 1, "score": 0.9,
                        "keypoints": np.concatenate([p, np.ones((17, 1))], 1).reshape(-1).tolist()})
        return out

    perfect = coco_evaluate(gt, results(0.0))
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AR"] == pytest.approx(1.0)
    noisy = coco_evaluate(gt, results(6.0))
    assert noisy["AP"] < 0.9 and noisy["AP50"] >= noisy["AP75"]
    missing = coco_evaluate(gt, results(0.0, drop=(0, 1)))
    assert missing["AR"] == pytest.approx(4 / 6, abs=1e-6)
    assert coco_evaluate(gt, [])["AP"] == 0.0
    with pytest.raises(ValueError, match="COCO dictionary"):
        coco_evaluate({"images": []}, [])


def test_keypoint_ap_from_arrays():
    people = _people(4, seed=5)
    gt_kp = [p[0][None] for p in people]
    gt_vis = [p[1][None] for p in people]
    areas = [np.array([p[2]]) for p in people]
    scores = [np.array([1.0])] * 4
    r = keypoint_ap(gt_kp, gt_vis, areas, gt_kp, scores, image_size=(200, 200))
    assert r["AP"] == pytest.approx(1.0)
    far = [k + 50 for k in gt_kp]
    assert keypoint_ap(gt_kp, gt_vis, areas, far, scores, image_size=(200, 200))["AP"] == 0.0
