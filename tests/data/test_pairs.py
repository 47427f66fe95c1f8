"""kpedu.data.pairs: homographies, warps, photometric changes and pair sets."""
import math

import numpy as np
import pytest
import torch

from kpedu.data import pairs as P


def test_photo_split_is_disjoint_and_excludes_duplicates():
    assert not set(P.TRAIN_PHOTOS) & set(P.HELDOUT_PHOTOS)
    assert "cat" not in P.TRAIN_PHOTOS + P.HELDOUT_PHOTOS  # the chelsea photo again
    assert "stereo_motorcycle" not in P.TRAIN_PHOTOS + P.HELDOUT_PHOTOS
    img = P.photo_tensor("astronaut")
    assert img.shape == (3, 512, 512) and 0 <= float(img.min()) and float(img.max()) <= 1
    with pytest.raises(ValueError):
        P.photo_tensor("lena")


def test_homography_from_points_and_apply_round_trip():
    src = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    dst = np.array([[1, 2], [12, 1], [11, 13], [0, 9]], dtype=float)
    H = P.homography_from_points(src, dst)
    np.testing.assert_allclose(P.apply_homography(H, src), dst, atol=1e-9)
    pts = np.random.default_rng(0).uniform(0, 10, (20, 2))
    back = P.apply_homography(np.linalg.inv(H), P.apply_homography(H, pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    t = P.apply_homography(torch.as_tensor(H), torch.as_tensor(pts))
    np.testing.assert_allclose(t.numpy(), P.apply_homography(H, pts), atol=1e-9)
    with pytest.raises(ValueError):
        P.homography_from_points(src[:3], dst[:3])
    with pytest.raises(ValueError):
        P.apply_homography(H, pts[:, :1])


def test_random_homography_limits():
    for seed in range(20):
        H = P.random_homography(128, seed, "illumination")
        # nearly the identity: the centre moves by at most the shift plus a little rotation
        c = P.apply_homography(H, np.array([[63.5, 63.5]]))[0]
        assert np.abs(c - 63.5).max() < 0.02 * 128 + 1
        Hv = P.random_homography(128, seed, "viewpoint")
        corners = P.apply_homography(Hv, np.array([[0, 0], [127, 0], [127, 127], [0, 127]], dtype=float))
        assert np.isfinite(corners).all()
    with pytest.raises(ValueError):
        P.random_homography(128, 0, "night")
    with pytest.raises(ValueError):
        P.random_homography(4, 0)


def test_warp_image_moves_content_as_H_says():
    img = torch.zeros(3, 32, 32)
    img[:, 10, 7] = 1.0
    H = np.array([[1, 0, 5.0], [0, 1, -3.0], [0, 0, 1]])  # shift by (5, -3)
    out = P.warp_image(img, H, 32, padding_mode="zeros")
    assert out[0].argmax().item() == (10 - 3) * 32 + (7 + 5)
    batch = P.warp_image(img[None].repeat(2, 1, 1, 1), np.stack([H, np.eye(3)]), (32, 32))
    assert torch.allclose(batch[1], img, atol=1e-6)


def test_pair_views_agree_where_H_says():
    """Without photometric change, view 2 sampled at H(p) equals view 1 at p (up to interpolation)."""
    rng = np.random.default_rng(3)
    photo = P.photo_tensor("coffee")
    view1, view2, H = P.make_pair(photo, rng, 96, "viewpoint")
    # rebuild the views without photometry, from the same random draws
    rng = np.random.default_rng(3)
    ph, pw = photo.shape[-2:]
    side = float(rng.uniform(0.4, 0.9)) * min(ph, pw)
    x0, y0 = float(rng.uniform(0, pw - side)), float(rng.uniform(0, ph - side))
    k = side / 96
    T1 = np.array([[k, 0, x0 + 0.5 * k - 0.5], [0, k, y0 + 0.5 * k - 0.5], [0, 0, 1.0]])
    G = P.random_homography(96, rng, "viewpoint")
    np.testing.assert_allclose(G, H)
    clean1 = P.warp_image(photo, np.linalg.inv(T1), 96)
    clean2 = P.warp_image(photo, G @ np.linalg.inv(T1), 96)
    again = P.warp_image(clean1, G, 96)  # view 1 pushed through H
    inside = P.apply_homography(np.linalg.inv(G), np.stack(np.meshgrid(np.arange(96.0), np.arange(96.0)), -1))
    ok = torch.as_tensor(((inside > 4) & (inside < 91)).all(-1))
    diff = (again - clean2).abs().mean(0)[ok]
    assert float(diff.mean()) < 0.03


def test_photometric_changes_and_validation():
    img = P.photo_tensor("astronaut")[:, :128, :128].contiguous()
    same = P.photometric(img, 0, "illumination", strength=0.0)
    assert torch.allclose(same, img, atol=1e-6)
    out = P.photometric(img, 1, "illumination")
    assert out.shape == img.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert float((out - img).abs().mean()) > 0.05
    assert torch.equal(P.photometric(img, 5, "train"), P.photometric(img, 5, "train"))
    with pytest.raises(ValueError):
        P.photometric(img[0], 0)
    with pytest.raises(ValueError):
        P.photometric(img, 0, "night")


def test_make_pairs_and_batches_are_deterministic():
    a = P.make_pairs(4, "viewpoint", 64, seed=1)
    b = P.make_pairs(4, "viewpoint", 64, seed=1)
    assert len(a) == 4 and a.image1.dtype == torch.uint8 and a.image1.shape == (4, 3, 64, 64)
    assert torch.equal(a.image2, b.image2) and np.array_equal(a.H, b.H)
    assert a.photo == [P.HELDOUT_PHOTOS[i % len(P.HELDOUT_PHOTOS)] for i in range(4)]
    x1, x2, H = a.pair(-1)
    assert x1.dtype == torch.float32 and float(x1.max()) <= 1
    with pytest.raises(IndexError):
        a.pair(4)
    src = P.PairBatches(2, 64, seed=7)
    b0, b0_again = src.batch(3), P.PairBatches(2, 64, seed=7).batch(3)
    assert torch.equal(b0["image1"], b0_again["image1"]) and int(b0["step"]) == 3
    assert b0["H"].shape == (2, 3, 3)
    first = next(iter(src))
    assert torch.equal(first["image2"], src.batch(0)["image2"])
    with pytest.raises(ValueError):
        P.make_pairs(0)
    with pytest.raises(ValueError):
        P.PairBatches(0)
