"""Tests for the procedural faces (factorized spatial embeddings chapter, book/ch03-fse)."""
import json
import math

import numpy as np
import pytest
import torch

from kpedu.data import (
    FACE_LANDMARKS,
    MAFL_INDICES,
    FaceSample,
    FaceSet,
    SyntheticFaces,
    make_face,
    make_faces,
)

L = {n: i for i, n in enumerate(FACE_LANDMARKS)}
N_FACES = 200


@pytest.fixture(scope="module")
def faces() -> FaceSet:
    """200 faces with the default options."""
    return make_faces(N_FACES, 64, seed=11)


@pytest.fixture(scope="module")
def plain_faces() -> list[FaceSample]:
    """Noise-free faces on a fixed kind of background, for pixel tests."""
    return [make_face(np.random.default_rng([5, i]), 64, background="noise", pixel_noise=0.0) for i in range(120)]


def _lum(img: np.ndarray, x: float, y: float) -> float:
    h, w = img.shape[:2]
    i = min(max(int(round(float(y))), 0), h - 1)
    j = min(max(int(round(float(x))), 0), w - 1)
    return float(img[i, j] @ np.array([0.299, 0.587, 0.114]))


def test_landmark_names():
    assert FACE_LANDMARKS[:5] == ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    assert MAFL_INDICES == (0, 1, 2, 3, 4)
    for extra in ("left_brow", "right_brow", "chin", "left_jaw", "right_jaw", "head_top"):
        assert extra in FACE_LANDMARKS
    assert len(set(FACE_LANDMARKS)) == len(FACE_LANDMARKS)


def test_shapes_dtypes_ranges():
    f = make_face(0)
    assert isinstance(f, FaceSample)
    assert f.image.shape == (64, 64, 3) and f.image.dtype == np.float32
    assert 0.0 <= f.image.min() and f.image.max() <= 1.0
    assert f.landmarks.shape == (len(FACE_LANDMARKS), 2) and f.landmarks.dtype == np.float32
    json.dumps(f.params)  # json-able
    for k in ("roll", "yaw", "scale", "center", "smile", "hair"):
        assert k in f.params
    t = f.to_torch()
    assert t["image"].shape == (3, 64, 64) and t["image"].dtype == torch.float32
    assert t["landmarks"].shape == (len(FACE_LANDMARKS), 2) and t["landmarks"].dtype == torch.float32
    assert torch.equal(t["image"], torch.from_numpy(f.image).permute(2, 0, 1))
    big = make_face(1, 128)
    assert big.image.shape == (128, 128, 3)
    rect = make_face(2, (48, 80))
    assert rect.image.shape == (48, 80, 3)
    x, y = rect.landmarks[:, 0], rect.landmarks[:, 1]
    assert (x >= 0).all() and (x <= 79).all() and (y >= 0).all() and (y <= 47).all()


def test_determinism():
    a, b, c = make_face(5), make_face(5), make_face(6)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
    assert a.params == b.params
    assert not np.array_equal(a.image, c.image)
    ds = SyntheticFaces(20, seed=3)
    first = ds[11]
    _ = [ds[i] for i in range(5)]
    assert torch.equal(first["image"], ds[11]["image"]), "items do not depend on the reading order"
    assert int(first["index"]) == 11
    assert not torch.equal(ds[11]["image"], ds[12]["image"])
    assert not torch.equal(ds[11]["landmarks"], ds[12]["landmarks"])
    assert not torch.equal(first["image"], SyntheticFaces(20, seed=4)[11]["image"])
    assert torch.equal(ds[-1]["image"], ds[19]["image"])
    with pytest.raises(IndexError):
        ds[20]


def test_dataset_in_a_dataloader():
    ds = SyntheticFaces(6, image_size=32, seed=1, background="noise")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["landmarks"].shape == (3, len(FACE_LANDMARKS), 2)
    assert batch["index"].tolist() == [0, 1, 2]


def test_make_faces_equals_dataset():
    fs = make_faces(6, 48, seed=2, background="texture", roll=5.0)
    ds = SyntheticFaces(6, 48, seed=2, background="texture", roll=5.0)
    assert len(fs) == 6 and fs.image_size == 48
    assert fs.images.dtype == torch.uint8 and fs.images.shape == (6, 3, 48, 48)
    assert fs.landmarks.dtype == torch.float32 and fs.landmarks.shape == (6, len(FACE_LANDMARKS), 2)
    for i in range(6):
        item = ds[i]
        assert torch.equal(fs.images[i], (item["image"] * 255).round().to(torch.uint8))
        assert torch.equal(fs.landmarks[i], item["landmarks"])
    fl = fs.float_images()
    assert fl.dtype == torch.float32 and fl.shape == (6, 3, 48, 48) and 0 <= fl.min() and fl.max() <= 1
    assert (fl - torch.stack([ds[i]["image"] for i in range(6)])).abs().max() <= 0.5 / 255 + 1e-6
    assert fs.float_images(slice(1, 3)).shape == (2, 3, 48, 48)
    assert torch.equal(fs.float_images([4, 0]), fl[[4, 0]])
    assert torch.equal(fs.float_images(torch.tensor([2])), fl[2:3])
    sub = fs.subset([5, 1])
    assert isinstance(sub, FaceSet) and len(sub) == 2
    assert torch.equal(sub.images[0], fs.images[5]) and torch.equal(sub.landmarks[1], fs.landmarks[1])
    iod = fs.inter_ocular()
    assert iod.shape == (6,)
    assert torch.allclose(iod, (fs.landmarks[:, 1] - fs.landmarks[:, 0]).norm(dim=1))
    assert len(make_faces(0)) == 0


def test_landmarks_inside_the_image(faces):
    lm = faces.landmarks
    assert (lm >= 0).all() and (lm <= faces.image_size - 1).all()


def test_inter_ocular_distance_is_plausible(faces):
    iod = faces.inter_ocular() / faces.image_size
    assert iod.min() > 0.15 and iod.max() < 0.5, (iod.min(), iod.max())


def test_eyes_and_mouth_are_darker_than_the_cheeks(plain_faces):
    eye, mouth, cheek = [], [], []
    for f in plain_faces:
        lm = f.landmarks
        for e, m in (("left_eye", "mouth_left"), ("right_eye", "mouth_right")):
            eye.append(_lum(f.image, *lm[L[e]]))
            # the cheek: 40 % of the way from the eye down to the mouth corner
            c = lm[L[e]] + (lm[L[m]] - lm[L[e]]) * 0.4
            cheek.append(_lum(f.image, *c))
            # the middle of the mouth (between the lips, or on them)
            mouth.append(_lum(f.image, *((lm[L["upper_lip"]] + lm[L["lower_lip"]]) / 2)))
    eye, mouth, cheek = map(np.asarray, (eye, mouth, cheek))
    assert eye.mean() < cheek.mean() - 0.15, (eye.mean(), cheek.mean())
    assert (eye < cheek).mean() > 0.85
    assert mouth.mean() < cheek.mean() - 0.1, (mouth.mean(), cheek.mean())
    assert (mouth < cheek).mean() > 0.9


def test_upright_geometry():
    for i in range(40):
        f = make_face(np.random.default_rng([9, i]), 64, roll=0.0, yaw=0.0)
        p = {n: f.landmarks[k] for n, k in L.items()}
        assert p["left_eye"][0] < p["nose"][0] < p["right_eye"][0]
        assert p["mouth_left"][0] < p["mouth_right"][0]
        assert p["left_jaw"][0] < p["mouth_left"][0] and p["mouth_right"][0] < p["right_jaw"][0]
        assert p["left_eye"][1] == pytest.approx(p["right_eye"][1])
        assert p["head_top"][1] < p["left_brow"][1] < p["left_eye"][1] < p["nose"][1]
        assert p["nose"][1] < p["upper_lip"][1] < p["lower_lip"][1] < p["chin"][1]
        assert p["nose"][1] < p["mouth_left"][1] < p["chin"][1]
        # a frontal upright face is mirror-symmetric about its mid-line
        mid = p["nose"][0]
        assert p["chin"][0] == pytest.approx(mid, abs=1e-3) and p["head_top"][0] == pytest.approx(mid, abs=1e-3)
        assert (p["left_eye"][0] + p["right_eye"][0]) / 2 == pytest.approx(mid, abs=1e-3)
        assert (p["mouth_left"][0] + p["mouth_right"][0]) / 2 == pytest.approx(mid, abs=1e-3)


def test_roll_rotates_about_the_face_centre():
    for i in range(10):
        a = make_face(np.random.default_rng([1, i]), 64, roll=(0.0, 0.0), shift=0.0)
        b = make_face(np.random.default_rng([1, i]), 64, roll=(20.0, 20.0), shift=0.0)
        t = math.radians(20.0)
        R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        ca, cb = np.array(a.params["center"]), np.array(b.params["center"])
        assert np.allclose((a.landmarks - ca) @ R.T, b.landmarks - cb, atol=1e-3)
        assert b.params["roll"] == 20.0
    # with no yaw the eye line makes the angle `roll` with the x axis
    for r in (-12.0, 7.0, 30.0):
        f = make_face(3, 64, roll=(r, r), yaw=0.0)
        d = f.landmarks[L["right_eye"]] - f.landmarks[L["left_eye"]]
        assert math.degrees(math.atan2(d[1], d[0])) == pytest.approx(r, abs=1e-3)


def test_yaw_moves_the_features_to_the_turned_side():
    for i in range(10):
        a = make_face(np.random.default_rng([2, i]), 64, roll=0.0, yaw=(0.0, 0.0), shift=0.0)
        b = make_face(np.random.default_rng([2, i]), 64, roll=0.0, yaw=(0.4, 0.4), shift=0.0)
        la, lb = a.landmarks - np.array(a.params["center"]), b.landmarks - np.array(b.params["center"])
        dx = lb[:, 0] - la[:, 0]
        assert (dx[[L["left_eye"], L["right_eye"], L["nose"], L["chin"]]] > 0).all()
        assert dx[L["nose"]] > dx[L["left_eye"]] and dx[L["nose"]] > dx[L["right_eye"]], "the nose sticks out"
        # the far (right) half is foreshortened
        assert lb[L["right_eye"], 0] - lb[L["nose"], 0] < la[L["right_eye"], 0] - la[L["nose"], 0]
        assert np.allclose(lb[:, 1], la[:, 1], atol=1e-4), "yaw does not move points vertically"


def test_options_change_only_their_aspect():
    a = make_face(4, 64, background="noise")
    b = make_face(4, 64, background="photo")
    assert np.array_equal(a.landmarks, b.landmarks) and not np.array_equal(a.image, b.image)
    c = make_face(4, 64, background="noise", expression=False)
    for n in ("left_eye", "right_eye", "nose", "chin", "head_top", "left_jaw"):
        assert np.allclose(a.landmarks[L[n]], c.landmarks[L[n]], atol=1e-4)
    assert c.params["mouth_open_applied"] == 0.0


def test_variety(faces, plain_faces):
    lm = faces.landmarks.numpy()
    centred = lm - lm.mean(axis=1, keepdims=True)  # remove each face's position
    std = centred.std(axis=0)  # (L, 2) spread over the faces
    assert (std > 0.5).all() and std.mean() > 1.5, std
    # the face shape varies, not just the pose: spread of the normalised inter-ocular vs face height
    iod = np.linalg.norm(lm[:, L["right_eye"]] - lm[:, L["left_eye"]], axis=1)
    height = np.linalg.norm(lm[:, L["chin"]] - lm[:, L["head_top"]], axis=1)
    assert (iod / height).std() > 0.02
    skin = np.stack([f.image[int(round(float(y))), int(round(float(x)))]
                     for f in plain_faces
                     for x, y in [f.landmarks[L["nose"]] * 0.5 + f.landmarks[L["left_jaw"]] * 0.5]])
    assert skin.std(axis=0).mean() > 0.08, skin.std(axis=0)
    assert skin.mean(axis=1).max() - skin.mean(axis=1).min() > 0.4
    styles = {make_face(i, 32, background="noise").params["hair"] for i in range(40)}
    assert len(styles) >= 4


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(image_size=8), ValueError),
        (dict(image_size=0), ValueError),
        (dict(image_size="64"), TypeError),
        (dict(image_size=(64, 64, 3)), TypeError),
        (dict(background="clouds"), ValueError),
        (dict(background=3), TypeError),
        (dict(roll=(20.0, 10.0)), ValueError),
        (dict(roll=(0.0, 400.0)), ValueError),
        (dict(roll="a lot"), TypeError),
        (dict(yaw=0.9), ValueError),
        (dict(yaw=(0.0, float("nan"))), ValueError),
        (dict(scale=(0.5, 2.0)), ValueError),
        (dict(scale=(0.1, 0.5)), ValueError),
        (dict(shift=-0.1), ValueError),
        (dict(shift=(0.0, 0.1)), TypeError),
        (dict(pixel_noise=-0.01), ValueError),
        (dict(expression="yes"), TypeError),
    ],
)
def test_bad_options(kwargs, exc):
    size = kwargs.pop("image_size", 32)
    with pytest.raises(exc) as info:
        make_face(0, size, **kwargs)
    assert str(info.value)
    if exc is ValueError and size == 32:  # also caught when the data set is built
        with pytest.raises(exc):
            SyntheticFaces(3, 32, **kwargs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-negative"):
        make_faces(-1)
    with pytest.raises(TypeError):
        make_faces(2.5)
    with pytest.raises(ValueError, match="non-negative"):
        SyntheticFaces(-3)
    with pytest.raises(ValueError):
        SyntheticFaces(3, seed=-1)
    with pytest.raises(TypeError, match="invalid keyword"):
        SyntheticFaces(3, rotation=10)
    with pytest.raises(TypeError):
        make_face("seed")
    with pytest.raises(ValueError):
        make_face(-2)
    fs = make_faces(2, 32)
    with pytest.raises(TypeError):
        fs.float_images("all")
    with pytest.raises(TypeError):
        FaceSet(fs.images.float(), fs.landmarks)
