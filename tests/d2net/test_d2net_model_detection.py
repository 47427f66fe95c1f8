"""kpedu.d2net: the network, hard and soft detection, the loss and extraction."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kpedu.d2net import (D2Net, d2_loss, descriptors, detection_maps, edge_mask, extract, grid_correspondences,
                         hard_detection, pyramid_detections, sample_cells, soft_detection_scores,
                         soft_detection_terms)
from kpedu.d2net.extract import refine_positions, resize_image
from kpedu.data.pairs import apply_homography


# ----------------------------------------------------------------------------- model
def test_full_configuration_matches_vgg16_to_conv4_3():
    m = D2Net(1.0)
    assert sum(p.numel() for p in m.parameters()) == 7_635_264  # VGG16 conv1_1 .. conv4_3
    assert m.descriptor_dim == 512
    assert m.stride == 4 and m.offset == 3.5
    assert D2Net(0.25).descriptor_dim == 128


@pytest.mark.parametrize("dilated,stride", [(True, 4), (False, 8)])
def test_feature_size_and_layout_switch(dilated, stride):
    torch.manual_seed(0)
    m = D2Net(0.125, dilated=dilated).eval()
    x = torch.rand(2, 3, 64, 48)
    f = m(x)
    assert f.shape == (2, m.descriptor_dim, 64 // stride, 48 // stride)
    m.set_dilated(not dilated)
    assert m(x).shape[-2:] == (64 // m.stride, 48 // m.stride)


@pytest.mark.parametrize("dilated", [True, False])
def test_cell_centre_is_receptive_field_centre(dilated, monkeypatch):
    """Constant positive weights: the input gradient of one interior cell is symmetric about its centre.

    Max-pooling routes the gradient of tied inputs to one of them, which would skew the
    centroid; average pooling has the same geometry and spreads it evenly.
    """
    monkeypatch.setattr(F, "max_pool2d", lambda x, k, stride=None, *a, **kw: F.avg_pool2d(x, k, stride))
    m = D2Net(0.0625, dilated=dilated)
    for p in m.parameters():
        torch.nn.init.constant_(p, 0.01) if p.dim() > 1 else torch.nn.init.zeros_(p)
    x = torch.full((1, 3, 96, 96), 0.5, requires_grad=True)
    f = m(x)
    i, j = f.shape[-2] // 2, f.shape[-1] // 2
    f[0, 0, i, j].backward()
    g = x.grad[0].abs().sum(0)
    ys, xs = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    cx, cy = float((g * xs).sum() / g.sum()), float((g * ys).sum() / g.sum())
    ex, ey = m.cell_to_image(torch.tensor([float(j), float(i)])).tolist()
    assert abs(cx - ex) < 1e-3 and abs(cy - ey) < 1e-3


def test_model_rejects_bad_input():
    with pytest.raises(ValueError):
        D2Net(0)
    m = D2Net(0.125)
    with pytest.raises(ValueError, match="multiples of 8"):
        m(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError):
        m(torch.rand(3, 64, 64))


# ------------------------------------------------------------------ hard detection
def test_hard_detection_on_hand_made_maps():
    f = torch.zeros(1, 2, 5, 5)
    f[0, 0, 1, 1] = 3.0  # peak of channel 0, and channel 0 wins there
    f[0, 1, 1, 2] = 2.0  # channel 1 wins at (1, 2), but is it a max of D^1? yes
    f[0, 0, 1, 2] = 1.0
    f[0, 1, 3, 3] = 1.0
    f[0, 0, 3, 3] = 2.0  # channel 0 wins at (3, 3) and is its local max there
    f[0, 0, 3, 4] = 2.5  # ... no: (3, 4) is larger, so (3, 3) is not a max of D^0
    det = hard_detection(f)[0]
    want = torch.zeros(5, 5, dtype=torch.bool)
    want[1, 1] = want[1, 2] = want[3, 4] = True
    assert torch.equal(det, want)


def test_hard_detection_ignores_all_zero_cells_and_negative_features():
    f = -torch.rand(1, 4, 6, 6)  # ReLU makes every map zero: nothing to detect
    assert not hard_detection(f).any()


def test_edge_filter_rejects_a_ridge_keeps_a_blob():
    ys, xs = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    blob = torch.exp(-((xs - 7) ** 2 + (ys - 7) ** 2) / 8)
    ridge = torch.exp(-((xs - 7) ** 2) / 8) * (1 + 0.01 * torch.exp(-((ys - 7) ** 2) / 50))
    assert edge_mask(blob[None, None], 5)[0, 0, 7, 7]
    assert not edge_mask(ridge[None, None], 5)[0, 0, 7, 7]
    assert hard_detection(ridge[None, None])[0, 7, 7]
    assert not hard_detection(ridge[None, None], edge_threshold=5)[0, 7, 7]
    with pytest.raises(ValueError):
        edge_mask(blob[None, None], 1)


# ------------------------------------------------------------------ soft detection
def _naive_terms(f):
    d = f.relu()
    e = torch.exp(d)
    win = F.avg_pool2d(F.pad(e, (1, 1, 1, 1), value=1.0), 3, stride=1) * 9  # outside: exp(0) = 1
    alpha = e / win
    beta = d / d.amax(1, keepdim=True).clamp_min(1e-12)  # all-zero cells: 0, not NaN
    gamma = (alpha * beta).amax(1)
    return alpha, beta, gamma, gamma / gamma.sum((1, 2), keepdim=True)


def test_soft_detection_matches_the_formulas():
    torch.manual_seed(1)
    f = torch.randn(2, 5, 7, 9, dtype=torch.float64) * 2
    t = soft_detection_terms(f)
    a, b, g, s = _naive_terms(f)
    for k, v in zip(("alpha", "beta", "gamma", "s"), (a, b, g, s)):
        torch.testing.assert_close(t[k], v, rtol=1e-10, atol=1e-12, msg=k)
    torch.testing.assert_close(t["s"].sum((1, 2)), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(soft_detection_scores(f), t["s"])


def test_soft_detection_is_stable_for_large_activations():
    torch.manual_seed(2)
    f = torch.rand(1, 8, 6, 6) * 1000  # exp would overflow in float32
    assert not torch.isfinite(_naive_terms(f)[0]).all()
    t = soft_detection_terms(f)
    assert all(torch.isfinite(v).all() for v in t.values())
    torch.testing.assert_close(t["s"].sum(), torch.tensor(1.0))
    # all-zero features: zeros, not NaN
    z = soft_detection_terms(torch.zeros(1, 3, 4, 4))
    assert all(torch.isfinite(v).all() for v in z.values()) and float(z["s"].sum()) == 0.0


def test_soft_detection_border_counts_outside_as_zero_activation():
    f = torch.zeros(1, 1, 3, 3)
    f[0, 0, 0, 0] = 1.0
    a = soft_detection_terms(f)["alpha"][0, 0]
    # corner cell: 9 positions, one is e^1, the other 8 (4 inside + 5 outside... ) are e^0
    assert math.isclose(float(a[0, 0]), math.e / (math.e + 8), rel_tol=1e-6)


def test_soft_detection_temperature_and_errors():
    f = torch.rand(1, 3, 5, 5) * 10
    t_max = soft_detection_terms(f, "max")["alpha"]
    torch.testing.assert_close(t_max, soft_detection_terms(f / f.max())["alpha"])
    torch.testing.assert_close(soft_detection_terms(f, 10.0)["alpha"], soft_detection_terms(f / 10)["alpha"])
    with pytest.raises(ValueError):
        soft_detection_terms(f, "min")
    with pytest.raises(ValueError):
        soft_detection_terms(f, -1.0)
    with pytest.raises(ValueError):
        soft_detection_terms(f[0])
    with pytest.raises(TypeError):
        soft_detection_terms(f.long())


def test_soft_detection_gradient():
    f = (torch.rand(1, 3, 4, 5, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: soft_detection_terms(x)["s"], (f,))


def test_descriptors_are_unit_vectors_and_maps_are_relu():
    f = torch.randn(2, 6, 4, 4)
    d = descriptors(f)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(2, 4, 4))
    assert torch.equal(detection_maps(f), f.relu())


# ---------------------------------------------------------------------------- loss
def test_grid_correspondences_identity_and_shift():
    idx, pos = grid_correspondences((4, 5), (4, 5), torch.eye(3, dtype=torch.float64), 4, 3.5)
    assert len(idx) == 20
    torch.testing.assert_close(pos, torch.stack([idx % 5, idx // 5], -1).double())
    H = torch.tensor([[1, 0, 8.0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)  # 8 px = 2 cells right
    idx, pos = grid_correspondences((4, 5), (4, 5), H, 4, 3.5)
    assert len(idx) == 12 and torch.all(pos[:, 0] == (idx % 5 + 2))


def test_sample_cells_is_bilinear():
    maps = torch.arange(12.0).view(1, 3, 4)
    v = sample_cells(maps, torch.tensor([[1.5, 1.0], [0.0, 2.0]]))
    torch.testing.assert_close(v, torch.tensor([[5.5, 8.0]]))


def test_d2_loss_prefers_matching_descriptors():
    torch.manual_seed(3)
    f1 = torch.randn(1, 16, 8, 8)
    H = torch.eye(3, dtype=torch.float64)[None]
    good = d2_loss(f1, f1.clone(), H, 4, 3.5)
    bad = d2_loss(f1, torch.randn(1, 16, 8, 8), H, 4, 3.5)
    assert float(good) < float(bad)
    loss, logs = d2_loss(f1, f1.clone(), H, 4, 3.5, return_logs=True)
    assert logs["pos"] < 1e-3 and logs["correct"] == 1.0
    # the safe radius covers the whole map: no negatives, so the term is max(0, M + p^2 - 4 - M) = 0
    assert float(d2_loss(f1, f1.clone(), H, 4, 3.5, safe_radius=100)) == 0.0


def test_d2_loss_gradient_and_no_correspondence_case():
    f1 = torch.randn(2, 8, 6, 6, requires_grad=True)
    f2 = torch.randn(2, 8, 6, 6, requires_grad=True)
    H = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    d2_loss(f1, f2, H, 4, 3.5, negative_pool=5).backward()
    assert f1.grad.abs().sum() > 0 and f2.grad.abs().sum() > 0
    far = torch.tensor([[1, 0, 1000.0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64).repeat(2, 1, 1)
    loss = d2_loss(f1, f2, far, 4, 3.5)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    with pytest.raises(ValueError):
        d2_loss(f1, f2, H[:1], 4, 3.5)
    with pytest.raises(ValueError):
        d2_loss(f1, f2, H, 4, 3.5, margin=0)


# ---------------------------------------------------------------------- extraction
def test_refinement_finds_the_peak_of_a_quadratic():
    ys, xs = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    m = 10 - (xs - 3.3) ** 2 - 2 * (ys - 2.8) ** 2
    z = torch.zeros(1, dtype=torch.long)
    off, ok = refine_positions(m[None, None], z, z, torch.tensor([3]), torch.tensor([3]))
    assert ok.all()
    torch.testing.assert_close(off, torch.tensor([[0.3, -0.2]]), atol=1e-5, rtol=0)


def test_resize_image_rounds_to_multiples_of_8():
    x = torch.rand(1, 3, 100, 60)
    assert resize_image(x, 1.0).shape[-2:] == (104, 64)
    assert resize_image(x, 0.5).shape[-2:] == (48, 32)


def test_extract_single_and_multiscale():
    torch.manual_seed(4)
    m = D2Net(0.125).eval()
    img = torch.rand(3, 64, 80)
    f = extract(m, img)
    assert len(f) > 0 and f.descriptors.shape == (len(f), m.descriptor_dim) and f.metric == "l2"
    np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1, atol=1e-5)
    assert (f.keypoints[:, 0] > -1).all() and (f.keypoints[:, 0] < 80).all()
    assert np.all(np.diff(f.scores) <= 0)
    ms = extract(m, img, (0.5, 1, 2), max_keypoints=50)
    assert len(ms) <= 50 and set(np.unique(ms.scales)) <= {0.5, 1.0, 2.0}
    levels = pyramid_detections(m, img, (0.5, 1.0, 2.0))
    assert [lv["scale"] for lv in levels] == [0.5, 1.0, 2.0]
    for coarse, fine in zip(levels, levels[1:]):
        # every detection of the coarser level bans its block at the next level
        up = F.interpolate((coarse["detections"] | coarse["banned"])[None, None].float(),
                           size=fine["detections"].shape, mode="nearest")[0, 0] > 0
        assert torch.equal(fine["banned"], up)
        assert not (fine["kept"] & fine["banned"]).any()
    with pytest.raises(TypeError):
        extract(torch.nn.Conv2d(3, 3, 1), img)
    with pytest.raises(ValueError):
        extract(m, img, scales=(0,))


def test_extract_keypoints_follow_a_shift():
    """The same content shifted by 8 px: keypoints shift by 8 px (the stride-4 grid is aligned)."""
    torch.manual_seed(5)
    m = D2Net(0.125).eval()
    big = torch.rand(3, 96, 104)
    a, b = big[:, :, :96], big[:, :, 8:]
    fa = extract(m, a, edge_threshold=None, refine=False)
    fb = extract(m, b, edge_threshold=None, refine=False)
    pa = {tuple(p) for p in np.round(fa.keypoints - [8, 0]).astype(int) if 24 < p[0] < 72 and 24 < p[1] < 72}
    pb = {tuple(p) for p in np.round(fb.keypoints).astype(int) if 24 < p[0] < 72 and 24 < p[1] < 72}
    assert len(pa & pb) >= 0.8 * max(1, len(pa))
