"""Tests for kpedu.augment: images and keypoints move together, flips relabel sides."""
import numpy as np
import pytest
import torch

from kpedu.augment import affine_matrix, augment_batch, random_affine, transform_points, warp_images
from kpedu.data import COCO17


def dot_image(points, size=(48, 64)):
    """One channel per point: a single bright pixel at each (integer) point."""
    img = torch.zeros(1, len(points), *size)
    for c, (x, y) in enumerate(points):
        img[0, c, y, x] = 1.0
    return img


def test_identity_and_flip_match_torch_flip():
    img = torch.rand(2, 3, 20, 30)
    assert torch.allclose(warp_images(img, affine_matrix((20, 30), batch=2)), img, atol=1e-5)
    flipped = warp_images(img, affine_matrix((20, 30), flip=True, batch=2))
    assert torch.allclose(flipped, img.flip(-1), atol=1e-5)
    pts = torch.tensor([[[0.0, 3.0], [29.0, 7.5]]])
    np.testing.assert_allclose(transform_points(pts, affine_matrix((20, 30), flip=True)).numpy(),
                               [[[29.0, 3.0], [0.0, 7.5]]], atol=1e-5)


@pytest.mark.parametrize("rotation,scale", [(90.0, 1.0), (30.0, 1.2), (-45.0, 0.8)])
def test_warped_dots_land_on_transformed_points(rotation, scale):
    points = [(20, 20), (40, 25), (32, 30)]
    img = dot_image(points)
    a = affine_matrix((48, 64), rotation, scale)
    out = warp_images(img, a, mode="bilinear")
    moved = transform_points(torch.tensor([points], dtype=torch.float32), a)[0]
    for c in range(len(points)):
        # the centre of mass of the resampled dot is the transformed point
        m = out[0, c]
        ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
        com = torch.stack([(m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()])
        assert torch.allclose(com, moved[c], atol=0.35), (c, com, moved[c])


def test_rotation_direction_is_counter_clockwise_on_screen():
    a = affine_matrix((41, 41), rotation=90.0)
    # a point right of the centre moves above it (y decreases) for a counter-clockwise turn
    p = transform_points(torch.tensor([[[30.0, 20.0]]]), a)[0, 0]
    np.testing.assert_allclose(p.numpy(), [20.0, 10.0], atol=1e-4)


def test_augment_batch_keeps_labels_consistent():
    g = torch.Generator().manual_seed(0)
    b, k = 16, 17
    kp = torch.rand(b, k, 2) * 40 + 12
    vis = torch.full((b, k), 2, dtype=torch.uint8)
    imgs = torch.rand(b, 3, 64, 64)
    out, kp2, vis2 = augment_batch(imgs, kp, vis, COCO17.flip_permutation, generator=g)
    assert out.shape == imgs.shape and kp2.shape == kp.shape and vis2.dtype == vis.dtype
    # replay the same random draw to check the geometry sample by sample
    mats, flipped = random_affine(b, (64, 64), generator=torch.Generator().manual_seed(0))
    expect = transform_points(kp, mats)
    perm = torch.as_tensor(COCO17.flip_permutation)
    expect[flipped] = expect[flipped][:, perm]
    assert torch.allclose(kp2, expect, atol=1e-5)
    assert flipped.any() and (~flipped).any()
    outside = ~((kp2 > -0.5) & (kp2 < 63.5)).all(-1)
    assert (vis2[outside] == 0).all() and (vis2[~outside] == 2).all()


def test_errors():
    with pytest.raises(ValueError):
        affine_matrix((0, 5))
    with pytest.raises(ValueError, match="scale"):
        affine_matrix((5, 5), scale=0.0)
    with pytest.raises(ValueError):
        warp_images(torch.rand(3, 5, 5), affine_matrix((5, 5)))
    with pytest.raises(ValueError, match="flip_permutation"):
        augment_batch(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 2), torch.ones(1, 4), [0, 1, 2])
    with pytest.raises(ValueError):
        random_affine(2, (8, 8), flip_prob=1.5)
