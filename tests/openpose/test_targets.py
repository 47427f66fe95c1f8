"""Tests for kpedu.openpose.targets: confidence maps, part affinity fields, loss masks.

Every expected value is worked out by hand from the paper's definitions (TPAMI Eq. 8-12)
and the notation page's stride rule x_h = (x + 0.5) / s - 0.5.
"""
import math

import numpy as np
import pytest
import torch

from kpedu.codecs import GaussianHeatmapCodec, decode_argmax, image_to_heatmap
from kpedu.data import COCO17, SyntheticPeople, collate_people
from kpedu.openpose.targets import (
    batch_targets,
    confidence_maps,
    loss_mask,
    part_affinity_fields,
    scene_loss_mask,
    unlabelled_mask,
)


def heat_to_image(xh, s):
    """Inverse stride rule, so that tests can place keypoints on chosen heatmap pixels."""
    return s * (xh + 0.5) - 0.5


# ------------------------------------------------------------------- confidence maps


def test_single_keypoint_values_with_sigma_squared():
    # image (9.5, 5.5) at stride 4 -> heatmap (2, 1); sigma = 2, exp(-d^2 / sigma^2)
    kp = np.zeros((1, 3, 2))
    kp[0, 1] = (9.5, 5.5)
    vis = np.array([[0, 2, 0]])
    cm = confidence_maps(kp, vis, heatmap_size=(6, 8), stride=4, sigma=2.0)
    assert cm.shape == (3, 6, 8) and cm.dtype == torch.float32
    m = cm[1]
    assert m[1, 2] == pytest.approx(1.0)                      # the keypoint's pixel (row 1, col 2)
    assert m[1, 3] == pytest.approx(math.exp(-1 / 4))         # one pixel to the right
    assert m[3, 4] == pytest.approx(math.exp(-8 / 4))         # d^2 = 2^2 + 2^2
    assert m[0, 0] == pytest.approx(math.exp(-5 / 4))
    assert cm[0].abs().sum() == 0 and cm[2].abs().sum() == 0  # v = 0: no map


def test_max_merge_keeps_two_peaks_where_a_mean_would_not():
    # two people 2 heatmap pixels apart on row 2; sigma^2 = 4 (std sqrt 2)
    kp = np.array([[[heat_to_image(2, 1), 2.0]], [[heat_to_image(4, 1), 2.0]]])
    cm = confidence_maps(kp, np.ones((2, 1)), heatmap_size=(5, 7), stride=1, sigma=2.0)[0]
    row = cm[2]
    assert row[2] == pytest.approx(1.0) and row[4] == pytest.approx(1.0)
    assert row[3] == pytest.approx(math.exp(-1 / 4))          # a dip between the peaks
    assert row[3] < row[2] and row[3] < row[4]
    # the mean of the two people's maps has a single peak in the middle
    each = [confidence_maps(kp[i:i + 1], np.ones((1, 1)), (5, 7), 1, 2.0)[0, 2] for i in range(2)]
    mean = (each[0] + each[1]) / 2
    assert int(mean.argmax()) == 3
    assert mean[3] == pytest.approx(math.exp(-1 / 4)) and mean[2] == pytest.approx((1 + math.exp(-1)) / 2)


def test_invisible_keypoints_ignored_and_may_be_nan():
    kp = np.array([[[np.nan, np.nan], [3.0, 3.0]]])
    cm = confidence_maps(kp, np.array([[0, 1]]), 8, 1, 1.0)  # v = 1 (occluded) is labelled
    assert torch.isfinite(cm).all() and cm[0].sum() == 0 and cm[1, 3, 3] == 1.0
    with pytest.raises(ValueError, match="NaN"):
        confidence_maps(kp, np.array([[2, 1]]), 8, 1, 1.0)


def test_no_people():
    kp = np.zeros((0, 17, 2))
    cm = confidence_maps(kp, np.zeros((0, 17)), (6, 5), 8, 1.0)
    assert cm.shape == (17, 6, 5) and cm.abs().sum() == 0
    paf = part_affinity_fields(kp, np.zeros((0, 17)), COCO17, (6, 5), 8, 1.0)
    assert paf.shape == (38, 6, 5) and paf.abs().sum() == 0


def test_stride_mapping_matches_the_codec():
    # the codec's Gaussian uses 2 sigma^2: ours with sigma * sqrt(2) is the same map
    rng = np.random.default_rng(0)
    kp = rng.uniform(2, 60, size=(1, 5, 2))
    vis = np.array([[2, 2, 1, 0, 2]])
    codec = GaussianHeatmapCodec(input_size=64, heatmap_size=16, sigma=1.5)
    expected, _ = codec.encode(kp[0], vis[0])
    ours = confidence_maps(torch.as_tensor(kp), torch.as_tensor(vis), 16, 4, sigma=1.5 * math.sqrt(2))
    assert torch.allclose(ours, expected, atol=1e-6)
    # a keypoint on a heatmap pixel centre: the peak decodes back to the image keypoint
    xy = np.array([[[heat_to_image(5, 4), heat_to_image(9, 4)]]])  # (21.5, 37.5)
    cm = confidence_maps(xy, None, 16, 4, 1.0)
    coords, scores = decode_argmax(cm, quarter_offset=False)
    assert coords[0].tolist() == [5.0, 9.0] and scores[0] == pytest.approx(1.0)
    assert np.allclose(codec.decode(cm[None])[0][0, 0].numpy(), xy[0, 0])


def test_accepts_one_person_and_torch_inputs():
    kp = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = confidence_maps(kp, torch.tensor([2, 2]), 6, 1, 1.0)
    b = confidence_maps(kp.numpy()[None], np.array([[2, 2]]), 6, 1, 1.0)
    assert torch.equal(a, b) and a[1, 4, 3] == 1.0


def test_confidence_map_errors():
    with pytest.raises(ValueError, match="shape"):
        confidence_maps(np.zeros((2, 3, 3)), None, 8, 1)
    with pytest.raises(ValueError, match="visible"):
        confidence_maps(np.zeros((2, 3, 2)), np.zeros((2, 4)), 8, 1)
    with pytest.raises(ValueError, match="sigma"):
        confidence_maps(np.zeros((1, 3, 2)), None, 8, 1, sigma=0)
    with pytest.raises(ValueError, match="heatmap_size"):
        confidence_maps(np.zeros((1, 3, 2)), None, 0, 1)
    with pytest.raises(ValueError, match="stride"):
        confidence_maps(np.zeros((1, 3, 2)), None, 8, -1)


# -------------------------------------------------------------- part affinity fields


def one_limb(a, b, size=(10, 12), width=1.0, stride=1):
    kp = np.array([[a, b]], dtype=np.float64)
    return part_affinity_fields(kp, np.ones((1, 2)), [(0, 1)], size, stride, width)


def test_paf_unit_vector_inside_zero_outside_horizontal():
    paf = one_limb((2, 5), (8, 5))                # length 6 along +x, half-width 1
    assert paf.shape == (2, 10, 12)
    assert paf[:, 5, 5].tolist() == [1.0, 0.0]     # on the limb: the unit vector (x, y)
    assert paf[:, 6, 5].tolist() == [1.0, 0.0]     # distance 1 = limb_width: included
    assert paf[:, 7, 5].tolist() == [0.0, 0.0]     # distance 2: outside
    assert paf[:, 5, 8].tolist() == [1.0, 0.0]     # the end point, v.(p - a) = length
    assert paf[:, 5, 9].tolist() == [0.0, 0.0]     # one pixel beyond the length
    assert paf[:, 5, 1].tolist() == [0.0, 0.0]     # behind the start
    assert int((paf[0] != 0).sum()) == 3 * 7       # rows 4..6, columns 2..8


def test_paf_oblique_limb_just_beyond_length_and_width():
    # a = (2, 1), b = (5, 5): length 5, v = (0.6, 0.8), v_perp = (-0.8, 0.6)
    paf = one_limb((2, 1), (5, 5))
    assert paf[:, 3, 4].tolist() == pytest.approx([0.6, 0.8])  # p = (4, 3): along 2.8, across 0.4
    assert paf[:, 5, 5].tolist() == pytest.approx([0.6, 0.8])  # p = b: along = 5 = length
    assert paf[:, 6, 6].tolist() == [0.0, 0.0]                 # p = (6, 6): along 6.4 > 5
    assert paf[:, 4, 6].tolist() == [0.0, 0.0]                 # p = (6, 4): along 4.8, across 1.4 > 1
    wider = one_limb((2, 1), (5, 5), width=1.5)
    assert wider[:, 4, 6].tolist() == pytest.approx([0.6, 0.8])  # ... but within 1.5
    norms = paf.norm(dim=0)
    on = norms > 0
    assert torch.allclose(norms[on], torch.ones(int(on.sum())))  # unit length everywhere on the limb


def test_paf_channel_layout():
    # limb 1 is vertical (+y): channels 2 (x) and 3 (y); limb 0 is not labelled
    kp = np.array([[[0, 0], [4, 1], [4, 7]]], dtype=np.float64)
    vis = np.array([[0, 2, 2]])
    paf = part_affinity_fields(kp, vis, [(0, 1), (1, 2)], (9, 9), 1, 1.0)
    assert paf.shape == (4, 9, 9)
    assert paf[0:2].abs().sum() == 0
    assert paf[2, 4, 4] == 0.0 and paf[3, 4, 4] == 1.0
    assert paf[2].abs().sum() == 0 and paf[3].sum() == 3 * 7
    # reversing the limb flips the sign
    rev = part_affinity_fields(kp, vis, [(0, 1), (2, 1)], (9, 9), 1, 1.0)
    assert torch.equal(rev[3], -paf[3])


def test_paf_average_where_two_limbs_cross():
    # person 0: horizontal through (5, 5); person 1: direction (0.6, 0.8) through (5, 5)
    kp = np.array([[[1, 5], [9, 5]], [[2, 1], [8, 9]]], dtype=np.float64)
    paf = part_affinity_fields(kp, np.ones((2, 2)), [(0, 1)], (11, 11), 1, 1.0)
    assert paf[:, 5, 5].tolist() == pytest.approx([(1 + 0.6) / 2, (0 + 0.8) / 2])  # mean of unit vectors
    assert paf[:, 5, 1].tolist() == pytest.approx([1.0, 0.0])   # only person 0 here
    assert paf[:, 1, 2].tolist() == pytest.approx([0.6, 0.8])   # only person 1 here
    # orthogonal limbs: (1, 0) and (0, 1) average to (0.5, 0.5), length 1/sqrt 2
    kp2 = np.array([[[1, 5], [9, 5]], [[5, 1], [5, 9]]], dtype=np.float64)
    paf2 = part_affinity_fields(kp2, np.ones((2, 2)), [(0, 1)], (11, 11), 1, 1.0)
    assert paf2[:, 5, 5].tolist() == pytest.approx([0.5, 0.5])


def test_paf_invisible_endpoint_and_zero_length_limb():
    kp = np.array([[[2, 2], [7, 2], [7, 2]]], dtype=np.float64)
    vis = np.array([[2, 0, 2]])
    paf = part_affinity_fields(kp, vis, [(0, 1), (0, 2), (1, 2)], (6, 10), 1, 1.0)
    assert paf[0:2].abs().sum() == 0                        # endpoint 1 not labelled
    assert paf[2, 2, 4] == 1.0                              # limb (0, 2) drawn
    zero = part_affinity_fields(kp, np.ones((1, 3)), [(1, 2)], (6, 10), 1, 1.0)
    assert torch.isfinite(zero).all() and zero.abs().sum() == 0  # coincident endpoints: skipped
    nan = np.array([[[2, 2], [np.nan, np.nan], [7, 2]]])
    assert torch.equal(part_affinity_fields(nan, vis, [(0, 1), (0, 2), (1, 2)], (6, 10), 1, 1.0), paf)


def test_paf_uses_the_stride_mapping():
    kp = np.array([[[10.0, 14.0], [41.0, 30.0]]])
    direct = part_affinity_fields(kp, None, [(0, 1)], 8, 4, 1.0)
    mapped = part_affinity_fields(image_to_heatmap(kp, 4), None, [(0, 1)], 8, 1, 1.0)
    assert torch.allclose(direct, mapped) and direct.abs().sum() > 0
    # start (10, 14) maps to heatmap (2.125, 3.125): pixel (2, 3) is behind it, (3, 3) on it
    assert direct[:, 3, 2].tolist() == [0.0, 0.0] and direct[0, 3, 3] > 0


def test_paf_errors():
    kp = np.zeros((1, 3, 2))
    with pytest.raises(ValueError, match="out of range"):
        part_affinity_fields(kp, None, [(0, 3)], 8, 1)
    with pytest.raises(ValueError, match="itself"):
        part_affinity_fields(kp, None, [(1, 1)], 8, 1)
    with pytest.raises(ValueError, match="limbs"):
        part_affinity_fields(kp, None, None, 8, 1)
    with pytest.raises(ValueError, match="limbs"):
        part_affinity_fields(kp, None, [], 8, 1)
    with pytest.raises(ValueError, match="limb_width"):
        part_affinity_fields(kp, None, [(0, 1)], 8, 1, limb_width=0)


# ------------------------------------------------------------------------ loss masks


def test_loss_mask_masks_every_cell_touching_an_unlabelled_pixel():
    unl = np.zeros((16, 16), bool)
    unl[3, 9] = True                         # row 3, column 9: cell (0, 2) at stride 4
    w = loss_mask(unl, 4, 4)
    assert w.shape == (4, 4) and w.dtype == torch.float32
    assert w[0, 2] == 0 and w.sum() == 15
    unl[4, 8] = True                         # first pixel of cell (1, 2)
    assert loss_mask(unl, 4, 4)[1, 2] == 0
    # a stack of masks is merged; an empty stack masks nothing
    stack = np.zeros((2, 16, 16), bool)
    stack[0, 0, 0] = stack[1, 15, 15] = True
    w2 = loss_mask(stack, 4, 4)
    assert w2[0, 0] == 0 and w2[3, 3] == 0 and w2.sum() == 14
    assert loss_mask(np.zeros((0, 16, 16), bool), 4, 4).sum() == 16
    # non-square strides (s_x, s_y)
    rect = np.zeros((8, 16), bool)
    rect[5, 13] = True                       # (s_x, s_y) = (4, 2): cell (row 2, column 3)
    w3 = loss_mask(rect, (4, 4), (4, 2))
    assert w3.shape == (4, 4) and w3[2, 3] == 0 and w3.sum() == 15


def test_loss_mask_errors():
    with pytest.raises(ValueError, match="does not match"):
        loss_mask(np.zeros((15, 16)), 4, 4)
    with pytest.raises(ValueError, match="integer"):
        loss_mask(np.zeros((16, 16)), 4, (4.0, 4.0))
    with pytest.raises(ValueError, match="stride"):
        loss_mask(np.zeros((16, 16)), 4, 0)


def test_unlabelled_people_and_scene_mask():
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 0:4, 0:4] = True    # labelled person
    masks[1, 8:12, 8:12] = True  # nobody labelled its keypoints
    masks[2, 12:16, 0:4] = True  # one keypoint labelled
    vis = np.array([[2, 2], [0, 0], [0, 1]])
    unl = unlabelled_mask(vis, masks)
    assert torch.equal(unl, torch.as_tensor(masks[1]))
    assert torch.equal(unlabelled_mask(vis, masks, min_keypoints=2), torch.as_tensor(masks[1] | masks[2]))
    w = scene_loss_mask(vis, masks, 4, 4)
    assert w[2, 2] == 0 and w.sum() == 15
    crowd = np.zeros((16, 16), bool)
    crowd[0, 15] = True
    assert scene_loss_mask(vis, masks, 4, 4, crowd=crowd)[0, 3] == 0
    with pytest.raises(ValueError, match="same N"):
        unlabelled_mask(vis[:2], masks)
    with pytest.raises(ValueError, match="min_keypoints"):
        unlabelled_mask(vis, masks, min_keypoints=0)


# --------------------------------------------------------------------------- batches


def test_batch_targets_on_synthetic_scenes():
    ds = SyntheticPeople(2, 64, mode="multi", seed=3, return_masks=True, num_people=(1, 3))
    batch = collate_people([ds[0], ds[1]])
    kps, vis, masks = list(batch["keypoints"]), list(batch["visible"]), list(batch["masks"])
    # an extra, unlabelled person in image 1 (all v = 0) whose pixels must be masked
    extra = torch.zeros(1, 64, 64, dtype=torch.bool)
    extra[0, 40:48, 0:8] = True
    kps[1] = torch.cat([kps[1], torch.zeros(1, 17, 2)])
    vis[1] = torch.cat([vis[1], torch.zeros(1, 17, dtype=vis[1].dtype)])
    masks[1] = torch.cat([masks[1], extra])
    cm, paf, w = batch_targets(kps, vis, COCO17, 8, stride=8, sigma=1.0, limb_width=1.0, masks=masks)
    assert cm.shape == (2, 17, 8, 8) and paf.shape == (2, 38, 8, 8) and w.shape == (2, 8, 8)
    for i in range(2):
        assert torch.equal(cm[i], confidence_maps(kps[i], vis[i], 8, 8, 1.0))
        assert torch.equal(paf[i], part_affinity_fields(kps[i], vis[i], COCO17, 8, 8, 1.0))
    assert w[0].sum() == 64                     # nobody unlabelled in image 0 (all have v > 0)
    assert w[1, 5, 0] == 0 and w[1].sum() == 63  # the extra person's cell
    assert cm.max() <= 1 and paf.reshape(2, 19, 2, 8, 8).norm(dim=2).max() <= 1 + 1e-6
    cm2, paf2, w2 = batch_targets(kps, vis, COCO17, 8, masks=None)
    assert w2.sum() == 128 and torch.equal(cm2, cm)
    with pytest.raises(ValueError, match="entries"):
        batch_targets(kps, vis[:1], COCO17, 8)
    with pytest.raises(ValueError, match="non-empty"):
        batch_targets([], None, COCO17, 8)
