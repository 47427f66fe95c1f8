"""Tests for kpedu.data.skeleton: the COCO-17 metainfo is data and is validated."""
import json

import numpy as np
import pytest

from kpedu.data import COCO17, Skeleton, load_skeleton


def test_coco17_layout():
    assert COCO17.num_keypoints == 17 and len(COCO17.limbs) == 19
    assert COCO17.keypoint_names[0] == "nose" and COCO17.keypoint_names[-1] == "right_ankle"
    assert COCO17.index("left_wrist") == 9
    np.testing.assert_allclose(np.asarray(COCO17.sigmas)[[0, 5, 11]], [0.026, 0.079, 0.107])
    assert load_skeleton("coco17") == COCO17


def test_flip_permutation_swaps_left_and_right():
    perm = np.asarray(COCO17.flip_permutation)
    assert (perm[perm] == np.arange(17)).all()
    for i, name in enumerate(COCO17.keypoint_names):
        mirror = COCO17.keypoint_names[perm[i]]
        if name.startswith("left_"):
            assert mirror == "right_" + name[5:]
        elif name.startswith("right_"):
            assert mirror == "left_" + name[6:]
        else:
            assert mirror == name
    # sigmas are symmetric under the flip
    sig = np.asarray(COCO17.sigmas)
    np.testing.assert_allclose(sig, sig[perm])


def test_round_trip_and_validation(tmp_path):
    d = COCO17.to_dict()
    path = tmp_path / "s.json"
    path.write_text(json.dumps(d))
    assert Skeleton.from_json(path) == COCO17
    bad = dict(d, limbs=[[0, 99]])
    with pytest.raises((ValueError, IndexError)):
        Skeleton.from_dict(bad)
    bad = dict(d, sigmas=d["sigmas"][:-1])
    with pytest.raises(ValueError):
        Skeleton.from_dict(bad)
    bad = dict(d, flip_pairs=[[1, 2], [2, 3]])
    with pytest.raises(ValueError):
        Skeleton.from_dict(bad)
    with pytest.raises((KeyError, ValueError)):
        COCO17.index("tail")
