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


# ---------------------------------------------------------------------------------
# further checks: every labelled keypoint sits on something drawn, annotations agree
# with the masks, the documented facing choice, options and the torch interface
# ---------------------------------------------------------------------------------
FACE = set(range(5))


@pytest.mark.parametrize("seed", range(8))
def test_labelled_keypoints_sit_on_drawn_pixels(seed):
    """A keypoint inside the image never lies on background, except a face point hidden
    behind its own head, which may fall just outside the drawn head outline."""
    for s in (make_person(seed, size=64, distractors=seed % 3, crop_jitter=0.5),
              make_scene(seed, size=(80, 112)),
              make_scene(seed, size=32, scale=(0.25, 0.5))):  # tiny people: thin limbs
        person_map, part_map = render_labels_to_parts(s.part_map)
        for n, k in zip(*np.nonzero(s.visible > 0)):
            i, j = (np.clip(np.floor(s.keypoints[n, k, ::-1] + 0.5).astype(int), 0, [s.height - 1, s.width - 1]))
            if person_map[i, j] >= 0:
                continue
            assert k in FACE and s.visible[n, k] == 1, (n, k)
            near = part_map[max(i - 1, 0): i + 2, max(j - 1, 0): j + 2]
            who = person_map[max(i - 1, 0): i + 2, max(j - 1, 0): j + 2]
            assert ((near == PART_INDEX["head"]) & (who == n)).any()


@pytest.mark.parametrize("seed", range(4))
def test_annotations_agree_with_masks(seed):
    s = make_scene(seed, size=(72, 96), num_people=(2, 5))
    person_map, _ = render_labels_to_parts(s.part_map)
    n = s.num_people
    np.testing.assert_array_equal(s.masks, person_map[None] == np.arange(n)[:, None, None])
    np.testing.assert_array_equal(s.areas, s.masks.reshape(n, -1).sum(1))
    assert s.areas.dtype == np.float32 and s.boxes.dtype == np.float32
    for p in range(n):
        x, y, w, h = s.boxes[p]
        assert -0.5 <= x and -0.5 <= y and x + w <= s.width - 0.5 and y + h <= s.height - 0.5
        rows, cols = np.nonzero(s.masks[p])
        if rows.size:  # visible pixels lie in the (amodal) box
            assert x <= cols.min() - 0.5 and cols.max() + 0.5 <= x + w
            assert y <= rows.min() - 0.5 and rows.max() + 0.5 <= y + h
        torso = s.keypoints[p, [5, 6, 11, 12]].mean(0)
        np.testing.assert_allclose(s.centers[p], torso, atol=1e-4)
        assert 0 <= torso[0] <= s.width - 1 and 0 <= torso[1] <= s.height - 1
    assert (s.head_sizes > 0).all() and (s.scales > 4 * s.head_sizes).all()


def test_bone_lengths_are_plausible():
    ratios = []
    for seed in range(30):
        s = make_person(seed, size=128)
        kp, sc = s.keypoints[0], s.scales[0]
        for a, b in ((5, 7), (7, 9), (11, 13), (13, 15), (6, 8), (8, 10), (12, 14), (14, 16)):
            ratios.append(np.linalg.norm(kp[a] - kp[b]) / sc)
    ratios = np.asarray(ratios)
    assert ratios.min() > 0.08 and ratios.max() < 0.28


def test_facing_choice_left_right():
    """Facing the camera (p_back=0) puts the person's left on the image right (rotations
    stay within +-30 degrees); facing away (p_back=1) mirrors it and hides the face."""

    def stats(p_back):
        right_of, eyes_visible = [], []
        for seed in range(40):
            s = make_person(seed, size=64, p_back=p_back)
            kp, v = s.keypoints[0], s.visible[0]
            right_of.append(kp[5, 0] > kp[6, 0])
            eyes_visible.append((v[1:3] == 2).mean())
        return np.mean(right_of), np.mean(eyes_visible)

    front_lr, front_eyes = stats(0.0)
    back_lr, back_eyes = stats(1.0)
    assert front_lr > 0.9 and back_lr < 0.1
    assert front_eyes > 0.5 and back_eyes < 0.25


def test_profile_views_hide_face_points_behind_the_head():
    hidden = 0
    for seed in range(30):
        s = make_person(seed, size=96)
        person_map, part_map = render_labels_to_parts(s.part_map)
        for k in range(5):
            if s.visible[0, k] == 1:
                i, j = np.clip(np.floor(s.keypoints[0, k, ::-1] + 0.5).astype(int), 0, 95)
                hidden += person_map[i, j] == 0 and part_map[i, j] == PART_INDEX["head"]
    assert hidden >= 3


def test_distractors_and_sizes():
    s = make_person(3, size=(64, 48), distractors=3)
    assert s.image.shape == (3, 64, 48) and s.num_people == 4
    assert (s.centers[:, 0] >= 0).all() and (s.centers[:, 0] <= 47).all()
    assert make_person(0, size=16).image.shape == (3, 16, 16)
    with pytest.raises(ValueError, match="too small"):
        make_person(0, size=15)
    with pytest.raises(TypeError):
        make_person(0, size="64")
    with pytest.raises(TypeError):
        make_person("seed", size=64)
    with pytest.raises(ValueError):
        make_person(0, size=64, rotation=(30, -30))
    with pytest.raises(ValueError, match="num_people"):
        make_scene(0, size=64, num_people=51)


def test_generator_and_int_seed_agree():
    a = make_person(np.random.default_rng(7), size=48)
    b = make_person(7, size=48)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_background_options():
    bg = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    s = make_person(1, size=64, background=bg, pixel_noise=0.0)
    empty = s.part_map == 0
    np.testing.assert_array_equal(s.image[:, empty], bg[:, empty])
    s2 = make_person(1, size=64, background=bg.transpose(1, 2, 0).copy(), pixel_noise=0.0)
    np.testing.assert_array_equal(s.image, s2.image)
    for kind in ("noise", "texture", "photo", "mixed"):
        img = make_person(2, size=64, background=kind).image
        assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1 and img.std() > 0.01
    with pytest.raises(ValueError, match="shape"):
        make_person(1, size=64, background=np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        make_person(1, size=64, background=np.full((3, 64, 64), np.nan, np.float32))


def test_skeleton_subset():
    sub = COCO17.subset(["right_wrist", "left_wrist", "nose"])
    a = make_person(4, size=64, skeleton=sub)
    b = make_person(4, size=64)
    np.testing.assert_array_equal(a.keypoints, b.keypoints[:, [10, 9, 0]])
    np.testing.assert_array_equal(a.visible, b.visible[:, [10, 9, 0]])
    from kpedu.data import Skeleton

    other = Skeleton("x", ("nose", "tail"), (), (), (0.1, 0.1))
    with pytest.raises(ValueError, match="tail"):
        make_person(0, size=64, skeleton=other)


def test_dataset_items_and_torch_interface():
    ds = SyntheticPeople(5, image_size=40, seed=9, distractors=1, return_masks=True)
    item = ds[2]
    ref = make_person(np.random.default_rng([9, 2]), 40, distractors=1)
    assert torch.equal(item["image"], torch.from_numpy(ref.image))
    assert torch.equal(item["keypoints"], torch.from_numpy(ref.keypoints))
    assert item["visible"].dtype == torch.uint8 and item["masks"].dtype == torch.bool
    assert item["masks"].shape == (2, 40, 40) and int(item["index"]) == 2
    assert torch.equal(ds[-1]["image"], ds[4]["image"])
    assert "masks" not in SyntheticPeople(2, image_size=40)[0]
    # single mode has a fixed N, so the default collate stacks everything
    batch = next(iter(torch.utils.data.DataLoader(SyntheticPeople(4, image_size=32), batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["keypoints"].shape == (4, 1, 17, 2)
    t = ref.to_torch(masks=False, part_map=True)
    assert "masks" not in t and t["part_map"].shape == (40, 40)
    with pytest.raises(ValueError):
        collate_people([])
