"""Tests for the synthetic people: determinism, geometry, visibility, speed-independent."""
import numpy as np
import pytest
import torch

from kpedu.data import (
    COCO17,
    KEYPOINT_PARTS,
    PART_NAMES,
    SyntheticPeople,
    collate_people,
    make_person,
    make_scene,
    render_labels_to_parts,
)

PART_INDEX = {n: i for i, n in enumerate(PART_NAMES)}
OWN_PARTS = [{PART_INDEX[p] for p in KEYPOINT_PARTS[n]} for n in COCO17.keypoint_names]


def _pixel(s, x, y):
    return int(round(float(y))), int(round(float(x)))


def test_shapes_dtypes_ranges():
    s = make_person(0, size=64)
    assert s.image.shape == (3, 64, 64) and s.image.dtype == np.float32
    assert 0 <= s.image.min() and s.image.max() <= 1
    assert s.keypoints.shape == (1, 17, 2) and s.visible.shape == (1, 17) and s.visible.dtype == np.uint8
    assert s.boxes.shape == (1, 4) and s.masks.shape == (1, 64, 64) and s.masks.dtype == bool
    assert s.areas[0] == s.masks[0].sum() > 0
    sc = make_scene(1, size=(48, 80), num_people=3)
    assert sc.image.shape == (3, 48, 80) and sc.keypoints.shape == (3, 17, 2)


def test_determinism():
    a, b, c = make_person(5, size=96), make_person(5, size=96), make_person(6, size=96)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.keypoints, b.keypoints)
    assert not np.array_equal(a.image, c.image)
    ds = SyntheticPeople(20, image_size=64, seed=3)
    first = ds[11]["image"].clone()
    _ = [ds[i] for i in range(5)]
    assert torch.equal(first, ds[11]["image"]), "items do not depend on reading order"
    assert not torch.equal(first, SyntheticPeople(20, image_size=64, seed=4)[11]["image"])


@pytest.mark.parametrize("seed", range(12))
def test_visibility_matches_the_rendering(seed):
    s = make_scene(seed, size=96, num_people=(1, 4))
    person_map, part_map = render_labels_to_parts(s.part_map)
    h, w = s.height, s.width
    for n in range(s.num_people):
        for k in range(17):
            x, y = s.keypoints[n, k]
            inside = -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5
            v = s.visible[n, k]
            assert (v == 0) == (not inside), (n, k, x, y, v)
            if v == 0:
                continue
            i, j = _pixel(s, x, y)
            own = person_map[i, j] == n and part_map[i, j] in OWN_PARTS[k]
            if v == 2:
                assert own, f"visible keypoint {COCO17.keypoint_names[k]} of person {n} is not on its own part"
                assert s.masks[n, i, j]
            elif OWN_PARTS[k] != {PART_INDEX["head"]}:
                # face points may be hidden by their own head (a profile or back view);
                # any other occluded keypoint must be covered by something else
                assert not own, f"occluded keypoint {COCO17.keypoint_names[k]} lies on its own visible part"


def test_limbs_are_drawn_between_their_keypoints():
    """The midpoint of a body segment whose two ends are visible lies on that person's
    drawing (segments whose ends share a body part: upper arm, shin, head, ...; links such
    as ear-shoulder cross empty space and are skipped)."""
    checked = 0
    for seed in range(10):
        s = make_person(seed, size=128)
        person_map, _ = render_labels_to_parts(s.part_map)
        for a, b in COCO17.limbs:
            if not OWN_PARTS[a] & OWN_PARTS[b]:
                continue
            if s.visible[0, a] == 2 and s.visible[0, b] == 2:
                i, j = _pixel(s, *((s.keypoints[0, a] + s.keypoints[0, b]) / 2))
                # the midpoint belongs to person 0, unless someone is in front (single crops: no one)
                assert person_map[i, j] == 0
                checked += 1
    assert checked > 40


def test_occlusion_and_cropping_occur():
    flags = np.concatenate([make_scene(100 + i, size=96, num_people=(2, 5)).visible.ravel() for i in range(20)])
    assert (flags == 0).any() and (flags == 1).any() and (flags == 2).mean() > 0.4


def test_crop_jitter_cuts_people():
    cut = sum((make_person(i, size=64, crop_jitter=1.0).visible[0] == 0).any() for i in range(30))
    assert cut >= 3
    centred = sum((make_person(i, size=64).visible[0] == 0).any() for i in range(30))
    assert centred < cut


def test_single_person_is_centred():
    """The box around the main person is centred (within 5 % of the side) and large."""
    for seed in range(20):
        s = make_person(seed, size=128)
        x, y, w, h = s.boxes[0]
        assert abs(x + w / 2 - 63.5) < 128 * 0.05 and abs(y + h / 2 - 63.5) < 128 * 0.05
        assert max(w, h) > 128 * 0.6


def test_dataset_and_collate():
    ds = SyntheticPeople(6, image_size=48, mode="multi", seed=0, num_people=(1, 3))
    batch = collate_people([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 48, 48)
    assert isinstance(batch["keypoints"], list) and len(batch["keypoints"]) == 4
    with pytest.raises(IndexError):
        ds[6]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_people)
    assert sum(len(b["keypoints"]) for b in loader) == 6


@pytest.mark.parametrize("kwargs", [
    {"size": 0}, {"size": -5}, {"distractors": -1}, {"crop_jitter": 2.0}, {"background": "plasma"},
])
def test_make_person_errors(kwargs):
    kw = {"size": 64, **kwargs}
    with pytest.raises((ValueError, TypeError)):
        make_person(0, **kw)


def test_make_scene_and_dataset_errors():
    with pytest.raises(ValueError):
        make_scene(0, size=64, num_people=0)
    with pytest.raises((ValueError, TypeError)):
        make_scene(0, size=64, num_people=(3, 1))
    with pytest.raises(ValueError):
        SyntheticPeople(5, mode="crowd")
    with pytest.raises(ValueError):
        SyntheticPeople(-1)
    with pytest.raises(TypeError):
        SyntheticPeople(5, colour="red")
