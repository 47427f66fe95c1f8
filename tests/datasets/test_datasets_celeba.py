"""CelebA with the MAFL split (kpedu.datasets.celeba) on a tiny data set in the real layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kpedu.data import FaceSet
from kpedu.datasets import THEWLIS_WINDOW, CelebAFaces, DatasetLayoutError, read_celeba_landmarks
from kpedu.datasets import fixtures as F


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    return root, F.write_celeba(root)


def test_landmark_file_round_trip(celeba):
    root, truth = celeba
    names, lm = read_celeba_landmarks(root / "Anno" / "list_landmarks_align_celeba.txt")
    assert names == truth["names"]
    np.testing.assert_array_equal(lm, truth["landmarks"])


def test_mafl_split_sizes(celeba, tmp_path):
    root, truth = celeba
    assert len(CelebAFaces(root, "mafl_train")) == 6
    assert len(CelebAFaces(root, "mafl_test")) == 3
    assert CelebAFaces(root, "mafl_test").names == truth["mafl_test"]
    # "train": CelebA's training partition (9 of the 12 images) minus the MAFL test images
    train = CelebAFaces(root, "train")
    part0 = [n for n, p in zip(truth["names"], truth["partition"]) if p == 0]
    assert train.names == [n for n in part0 if n not in truth["mafl_test"]] and len(train) == 6
    assert len(CelebAFaces(root, "all")) == 12
    # without a partition file (the flat layout): every image but the MAFL test ones
    F.write_celeba(tmp_path, n=10, mafl_train=4, mafl_test=2, layout="flat")
    assert len(CelebAFaces(tmp_path, "train")) == 8 and len(CelebAFaces(tmp_path, "mafl_train")) == 4


def test_the_authors_crop_and_the_landmarks(celeba):
    root, truth = celeba
    ds = CelebAFaces(root, "all", image_size=64)
    k = 64 / 113.92
    left, top, _ = THEWLIS_WINDOW
    for i in (0, 5, 11):
        item = ds[i]
        assert item["image"].shape == (3, 64, 64) and int(item["index"]) == i
        lm = truth["landmarks"][i].astype(np.float64)
        expect = (lm + 0.5 - [left, top]) * k - 0.5  # pixel centres through the window's edges
        np.testing.assert_allclose(item["landmarks"].numpy(), expect, atol=1e-4)
        # the authors' code: 178-square from row 30, resized to 100, 18 px cut: within a quarter pixel
        theirs = (lm - [0, 30]) * (100 / 178) - 18
        assert np.abs(item["landmarks"].numpy() - theirs).max() < 0.25
        img = (item["image"].numpy() * 255).transpose(1, 2, 0)
        for u, v in np.round(item["landmarks"].numpy()).astype(int):
            sx, sy = (u + 0.5) / k - 0.5 + left, (v + 0.5) / k - 0.5 + top  # back to the 178 x 218 image
            np.testing.assert_allclose(img[v, u, :2], F.ramp_value(sx, sy, 218, 178), atol=5)
    np.testing.assert_allclose(ds.landmarks()[[0, 5, 11]], np.stack([ds[i]["landmarks"] for i in (0, 5, 11)]),
                               atol=1e-4)


def test_faceset_and_the_inter_ocular_normaliser(celeba):
    root, truth = celeba
    ds = CelebAFaces(root, "mafl_train", image_size=32)
    faces = ds.materialise()
    assert isinstance(faces, FaceSet) and faces.images.shape == (6, 3, 32, 32)
    assert faces.landmarks.shape == (6, 5, 2)
    eyes = truth["landmarks"][:6, 1] - truth["landmarks"][:6, 0]
    expect = np.linalg.norm(eyes, axis=-1) * 32 / 113.92
    np.testing.assert_allclose(faces.inter_ocular().numpy(), expect, rtol=1e-5)
    np.testing.assert_allclose(ds.inter_ocular(), expect, rtol=1e-5)
    from kpedu.fse.evaluate import inter_ocular

    np.testing.assert_allclose(inter_ocular(faces.landmarks), expect, rtol=1e-5)


def test_no_window_keeps_the_aligned_images(celeba):
    root, truth = celeba
    ds = CelebAFaces(root, "mafl_test", window=None)
    item = ds[0]
    assert item["image"].shape == (3, 218, 178)
    np.testing.assert_array_equal(item["landmarks"].numpy(), truth["landmarks"][6])
    assert ds.materialise().images.shape == (3, 3, 218, 178)


def test_layout_errors(tmp_path, celeba):
    with pytest.raises(DatasetLayoutError, match="no img_align_celeba folder .*expected the CelebA layout"):
        CelebAFaces(tmp_path)
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(DatasetLayoutError, match="no list_landmarks_align_celeba.txt under"):
        CelebAFaces(tmp_path)
    (tmp_path / "list_landmarks_align_celeba.txt").write_text("2\nwrong header\n")
    with pytest.raises(ValueError, match="the second line must be the header"):
        CelebAFaces(tmp_path)
    header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (tmp_path / "list_landmarks_align_celeba.txt").write_text(f"2\n{header}\n000001.jpg 1 2 3 4 5 6 7 8 9 10\n")
    with pytest.raises(ValueError, match="announces 2 images but 1 follow"):
        CelebAFaces(tmp_path)
    (tmp_path / "list_landmarks_align_celeba.txt").write_text(f"1\n{header}\n000001.jpg 1 2 3 4 5 6 7 8 9 10\n")
    with pytest.raises(DatasetLayoutError, match="no MAFL training.txt"):
        CelebAFaces(tmp_path, "mafl_train")
    root, _ = celeba
    with pytest.raises(ValueError, match="split must be one of"):
        CelebAFaces(root, "test")
    with pytest.raises(ValueError, match=r"window must be \(left, top, side\)"):
        CelebAFaces(root, window=(1, 2))


def test_a_corrupt_face_is_skipped(tmp_path):
    truth = F.write_celeba(tmp_path, layout="flat")
    F.corrupt_file(tmp_path / "img_align_celeba" / truth["mafl_train"][0])
    ds = CelebAFaces(tmp_path, "mafl_train", image_size=32)
    with pytest.warns(RuntimeWarning, match="skipped image 000001.jpg"):
        assert int(ds[0]["index"]) == 1
    with pytest.warns(RuntimeWarning, match=r"1 unreadable image\(s\) skipped in all"):
        assert len(ds.materialise()) == 5
    assert isinstance(ds[3]["landmarks"], torch.Tensor)
