"""MPII Human Pose (kpedu.datasets.mpii) on a tiny .mat in the RELEASE layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kpedu.datasets import MPII16, DatasetLayoutError, MPIIPeople, mpii_head_size, read_mpii
from kpedu.datasets import fixtures as F
from kpedu.datasets._common import crop_matrix, transform_points
from kpedu.datasets.mpii import is_default_validation
from kpedu.metrics import pck


@pytest.fixture(scope="module")
def mpii(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpii")
    return root, F.write_mpii(root)


def _expected_flags(is_visible):
    """1 -> 2, 0 -> 1 (occluded), empty flag -> 2, not annotated -> 0."""
    out = np.zeros(16, np.uint8)
    out[is_visible == 1] = 2
    out[is_visible == -1] = 2
    out[is_visible == 0] = 1
    return out


def test_read_mpii_copes_with_the_struct_and_shifts_to_zero_based(mpii):
    root, truth = mpii
    ann = read_mpii(root / F.MPII_MAT)
    assert ann.images == truth["names"]
    assert ann.img_train.tolist() == [bool(t) for t in truth["img_train"]]
    assert ann.activities[0] == "rock climbing, general" and ann.activities[2] == ""
    people = {(p.image_index, p.rect): p for p in ann.people}
    assert sorted(people) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0)]  # image 5 has nobody
    for i, plist in enumerate(truth["people"]):
        for r, t in enumerate(plist):
            p = people[(i, r)]
            flags = _expected_flags(t["is_visible"])
            assert p.visible.tolist() == flags.tolist()
            lab = flags > 0
            np.testing.assert_allclose(p.keypoints[lab], t["keypoints"][lab] - 1.0)  # MATLAB's pixels start at 1
            assert (p.keypoints[~lab] == 0).all()
            np.testing.assert_allclose(p.center, np.asarray(t["objpos"]) - 1.0)
            assert p.scale == pytest.approx(t["scale"])
            if t["head_box"] is None:
                assert p.head_box is None and np.isnan(p.head_size)
            else:
                np.testing.assert_allclose(p.head_box, np.asarray(t["head_box"]) - 1.0)
    # the flags of person 1: 1, 0, '1', empty, then 1
    assert people[(0, 0)].visible[:5].tolist() == [2, 1, 2, 2, 2]
    # joints 6 and 15 of image 2 are absent from annopoints.point
    assert people[(1, 0)].visible[6] == 0 and people[(1, 0)].visible[15] == 0
    assert not people[(2, 0)].annotated and people[(2, 1)].annotated
    assert [p.single for p in ann.people] == [True, True, True, False, False, True]


def test_crops_follow_the_hourglass_training_code(mpii):
    root, truth = mpii
    ds = MPIIPeople(root, "trainval", image_size=64)
    assert [(p.image_index, p.rect) for p in ds.persons] == [(0, 0), (0, 1), (1, 0), (2, 1)]
    for i, p in enumerate(ds.persons):
        t = truth["people"][p.image_index][p.rect]
        center = np.asarray(t["objpos"]) - 1.0 + [0.0, 15.0 * t["scale"]]
        m = crop_matrix(center, 200.0 * t["scale"] * 1.25, 64)
        item = ds[i]
        lab = item["visible"].numpy() > 0
        np.testing.assert_allclose(item["keypoints"].numpy()[lab], transform_points(m, t["keypoints"] - 1.0)[lab],
                                   atol=1e-4)
        x1, y1, x2, y2 = t["head_box"]
        assert float(item["head_size"]) == pytest.approx(0.6 * np.hypot(x2 - x1, y2 - y1) * m[0, 0], rel=1e-5)
        np.testing.assert_allclose(ds.to_source(i, item["keypoints"].numpy()[lab]), t["keypoints"][lab] - 1.0,
                                   atol=1e-3)
        # the crop's pixels come from the annotated places of the 260 x 200 image
        img = (item["image"].numpy() * 255).transpose(1, 2, 0)
        for u, v in np.round(item["keypoints"].numpy()[lab]).astype(int):
            src = ds.to_source(i, np.array([u, v], dtype=float))
            np.testing.assert_allclose(img[v, u, :2], F.ramp_value(src[0], src[1], 260, 200), atol=5)
    np.testing.assert_allclose(ds.head_sizes(), [float(ds[i]["head_size"]) for i in range(len(ds))], rtol=1e-5)
    assert len(np.unique(np.round(ds.head_sizes(), 3))) == len(ds)  # different heads, different normalisers


def test_head_size_is_the_pckh_normaliser(mpii):
    root, _ = mpii
    people = MPIIPeople(root, "trainval", image_size=64).materialise()
    assert people.keypoints.shape == (4, 16, 2) and people.visible.dtype == torch.uint8
    assert mpii_head_size(np.array([0.0, 0.0, 30.0, 40.0])) == pytest.approx(0.6 * 50.0)
    gt, vis, heads = people.keypoints, people.visible, people.head_sizes
    assert pck(gt, gt, vis, heads, 0.5).mean == 1.0
    shift = torch.zeros_like(gt)
    shift[..., 0] = 0.49 * heads[:, None]
    assert pck(gt + shift, gt, vis, heads, 0.5).mean == 1.0  # within half a head size
    shift[..., 0] = 0.51 * heads[:, None]
    assert pck(gt + shift, gt, vis, heads, 0.5).mean == 0.0  # just beyond it


def test_splits_files_and_the_default_rule(mpii, tmp_path):
    root, truth = mpii
    names = truth["names"]
    assert len(MPIIPeople(root, "test", image_size=32)) == 1  # objpos and scale only
    test_item = MPIIPeople(root, "test", image_size=32)[0]
    assert int(test_item["visible"].sum()) == 0 and torch.isnan(test_item["head_size"])
    assert len(MPIIPeople(root, "trainval", image_size=32, people="single")) == 3
    listed = tmp_path / "valid.txt"
    listed.write_text(f"# held-out images\n{names[0]}\n\n")
    val = MPIIPeople(root, "val", image_size=32, val_split=listed)
    train = MPIIPeople(root, "train", image_size=32, val_split=listed)
    assert [p.image for p in val.persons] == [names[0], names[0]]
    assert {p.image for p in train.persons} == {names[1], names[2]}
    as_json = tmp_path / "valid.json"  # the per-person JSON of later MPII code
    as_json.write_text(json.dumps([{"image": names[1], "center": [1, 2], "scale": 1.0, "joints": []}]))
    assert [p.image for p in MPIIPeople(root, "val", image_size=32, val_split=as_json).persons] == [names[1]]
    unknown = tmp_path / "other.txt"
    unknown.write_text("999999999.jpg\n")
    with pytest.raises(ValueError, match="none of its 1 image names is an MPII image"):
        MPIIPeople(root, "val", val_split=unknown)
    # the default rule: deterministic, about one image in ten
    many = [f"{i:09d}.jpg" for i in range(5000)]
    share = np.mean([is_default_validation(n) for n in many])
    assert 0.08 < share < 0.12 and is_default_validation(many[7]) == is_default_validation(many[7])
    default_val = MPIIPeople(root, "val", image_size=32)
    assert all(is_default_validation(p.image) for p in default_val.persons)


def test_mpii16_skeleton_follows_the_annotation_ids():
    assert MPII16.num_keypoints == 16
    assert MPII16.keypoint_names[0] == "right_ankle" and MPII16.keypoint_names[9] == "head_top"
    assert MPII16.keypoint_names[15] == "left_wrist"
    perm = MPII16.flip_permutation
    assert perm[0] == 5 and perm[10] == 15 and perm[12] == 13 and perm[6] == 6


def test_errors_name_the_expected_layout(tmp_path, mpii):
    from scipy.io import savemat

    with pytest.raises(DatasetLayoutError, match=r"no mpii_human_pose_v1_u12_1.mat under .*: expected the MPII Human "
                                                 r"Pose layout"):
        MPIIPeople(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / F.MPII_MAT).write_bytes(b"MATLAB 5.0 nonsense")
    with pytest.raises(ValueError, match="is not a readable MATLAB file"):
        MPIIPeople(tmp_path)
    savemat(tmp_path / F.MPII_MAT, {"something": np.zeros(3)})
    with pytest.raises(ValueError, match="has no RELEASE struct"):
        read_mpii(tmp_path / F.MPII_MAT)
    root, _ = mpii
    with pytest.raises(ValueError, match="split must be one of"):
        MPIIPeople(root, "validation")
    with pytest.raises(DatasetLayoutError, match="no MPII validation split file"):
        MPIIPeople(root, "val", val_split=tmp_path / "missing.txt")


def test_a_corrupt_image_is_skipped_and_reported(tmp_path):
    truth = F.write_mpii(tmp_path)
    F.corrupt_file(tmp_path / "images" / truth["names"][1])
    ds = MPIIPeople(tmp_path, "trainval", image_size=32)
    with pytest.warns(RuntimeWarning) as caught:
        people = ds.materialise()
    messages = [str(w.message) for w in caught]
    assert any(f"skipped image {truth['names'][1]}" in m for m in messages)
    assert any("1 unreadable image(s) skipped in all" in m for m in messages)
    assert len(people) == 3 and ds.materialised_indices == [0, 1, 3] and ds.skipped == [truth["names"][1]]
