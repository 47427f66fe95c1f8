"""Tests for kpedu.data.skeleton (skeleton metainfo as data)."""
import dataclasses
import json

import numpy as np
import pytest

from kpedu.data import COCO17, Skeleton, available_skeletons, load_skeleton

COCO_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]
# COCO's own 1-based skeleton, as in person_keypoints_*.json
COCO_SKELETON_1BASED = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]
COCO_SIGMAS = [.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107,
               .107, .087, .087, .089, .089]


def test_coco17_content():
    assert COCO17.name == "coco17"
    assert list(COCO17.keypoint_names) == COCO_NAMES
    assert COCO17.num_keypoints == 17 == len(COCO17)
    assert sorted(COCO17.limbs) == sorted((a - 1, b - 1) for a, b in COCO_SKELETON_1BASED)
    assert len(COCO17.limbs) == 19
    np.testing.assert_allclose(COCO17.sigmas, COCO_SIGMAS)
    assert len(COCO17.limb_colors) == 19
    assert all(len(c) == 3 and all(0 <= v <= 1 for v in c) for c in COCO17.limb_colors)
    assert COCO17.index("left_wrist") == 9
    assert COCO17.index("nose") == 0
    assert "coco17" in available_skeletons()
    assert load_skeleton() == COCO17


def test_unknown_keypoint_name():
    with pytest.raises(ValueError, match="not a keypoint"):
        COCO17.index("left_toe")


def test_flip_permutation_is_involution_and_swaps_names():
    p = COCO17.flip_permutation
    assert p.shape == (17,) and p.dtype.kind == "i"
    np.testing.assert_array_equal(p[p], np.arange(17))
    assert p[0] == 0  # the nose maps to itself
    for i, name in enumerate(COCO17.keypoint_names):
        mirrored = COCO17.keypoint_names[p[i]]
        if name.startswith("left_"):
            assert mirrored == "right_" + name[5:]
        elif name.startswith("right_"):
            assert mirrored == "left_" + name[6:]
        else:
            assert mirrored == name
    # sigmas are symmetric under the flip
    sig = np.asarray(COCO17.sigmas)
    np.testing.assert_allclose(sig, sig[p])
    # the returned array is a copy: mutating it does not change the skeleton
    p[0] = 5
    assert COCO17.flip_permutation[0] == 0


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        COCO17.name = "x"  # type: ignore[misc]


def test_dict_and_json_round_trip(tmp_path):
    d = COCO17.to_dict()
    json.dumps(d)  # serialisable
    assert Skeleton.from_dict(d) == COCO17
    path = tmp_path / "sk.json"
    path.write_text(json.dumps(d))
    assert Skeleton.from_json(path) == COCO17
    assert load_skeleton(path) == COCO17
    assert load_skeleton(str(path)) == COCO17


def test_load_unknown_name():
    with pytest.raises(ValueError, match="unknown skeleton"):
        load_skeleton("no_such_skeleton")


def _base(**over):
    d = dict(name="t", keypoint_names=["a", "left_b", "right_b"], limbs=[[0, 1], [0, 2]],
             flip_pairs=[[1, 2]], sigmas=[0.1, 0.1, 0.1], limb_colors=["#ff0000", [0, 255, 0]])
    d.update(over)
    return d


def test_valid_small_skeleton():
    sk = Skeleton.from_dict(_base())
    assert sk.limbs == ((0, 1), (0, 2))
    assert sk.limb_colors[0] == (1.0, 0.0, 0.0)
    assert sk.limb_colors[1] == (0.0, 1.0, 0.0)
    np.testing.assert_array_equal(sk.flip_permutation, [0, 2, 1])


@pytest.mark.parametrize(
    "over, err, match",
    [
        (dict(limbs=[[0, 3]]), ValueError, "out of range"),
        (dict(limbs=[[0, 0]], limb_colors=[]), ValueError, "itself"),
        (dict(flip_pairs=[[1, 2], [2, 0]]), ValueError, "involution"),
        (dict(flip_pairs=[[1, 5]]), ValueError, "out of range"),
        (dict(sigmas=[0.1, 0.1]), ValueError, "sigmas has length 2"),
        (dict(sigmas=[0.1, -0.1, 0.1]), ValueError, "positive"),
        (dict(keypoint_names=["a", "a", "b"]), ValueError, "duplicate"),
        (dict(keypoint_names=[]), ValueError, "at least one"),
        (dict(limb_colors=["#ff0000"]), ValueError, "limb_colors"),
        (dict(limb_colors=["#zz0000", "#000000"]), ValueError, "hexadecimal"),
        (dict(limbs=[[0, 1.5]]), TypeError, "integers"),
    ],
)
def test_validation_errors(over, err, match):
    with pytest.raises(err, match=match):
        Skeleton.from_dict(_base(**over))


def test_missing_field_and_bad_json(tmp_path):
    d = _base()
    del d["sigmas"]
    with pytest.raises(ValueError, match="missing sigmas"):
        Skeleton.from_dict(d)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Skeleton.from_json(bad)


def test_subset():
    sub = COCO17.subset(["left_shoulder", "right_shoulder", "left_elbow", "right_elbow"])
    assert sub.num_keypoints == 4
    assert set(sub.limbs) == {(0, 1), (0, 2), (1, 3)}
    np.testing.assert_array_equal(sub.flip_permutation, [1, 0, 3, 2])
    np.testing.assert_allclose(sub.sigmas, [0.079, 0.079, 0.072, 0.072])
