"""kpedu.transporter.model and .transport: shapes, the bottleneck's Gaussians, the transport
equation's limiting cases, gradients, and the keypoint-moving inference."""
import math

import pytest
import torch

from kpedu.transporter import (REFERENCE_LAYERS, Encoder, KeypointNet, RefineNet, Transporter, gaussian_maps,
                               keypoint_coordinates, std_pixels,
                               move_keypoint, reconstruct, reconstruction_loss, shift_features, transport)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Transporter(num_keypoints=3, width=0.25).eval()


def test_encoder_follows_the_paper_layers():
    enc = Encoder(1.0)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == list(REFERENCE_LAYERS)
    assert enc(torch.rand(2, 3, 32, 48)).shape == (2, 32, 16, 24) and enc.stride == 2
    assert Encoder(0.5).out_channels == 16


def test_keypoint_and_refine_shapes():
    kn = KeypointNet(7, width=0.25)
    assert kn(torch.rand(1, 3, 32, 32)).shape == (1, 7, 16, 16)
    rn = RefineNet(32, width=0.25, levels=1)
    assert rn(torch.rand(2, 32, 8, 8)).shape == (2, 3, 16, 16)
    assert RefineNet(8, levels=2)(torch.rand(1, 8, 4, 4)).shape == (1, 3, 16, 16)
    convs = [m for m in RefineNet(8, levels=1).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 64, 3]


def test_keypoint_coordinates_are_means_of_the_two_marginals():
    s = torch.full((1, 1, 5, 7), -1e4)
    s[0, 0, :, 4] = 0          # a column: x = 4 exactly; y spread evenly over the rows
    s[0, 0, 3, :] = 0          # and a row: y = 3
    pts, px, py = keypoint_coordinates(s)
    assert torch.allclose(pts, torch.tensor([[[4.0, 3.0]]]), atol=1e-4)
    assert torch.allclose(px.sum(-1), torch.ones(1, 1)) and py.shape == (1, 1, 5)
    g = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: keypoint_coordinates(z)[0], (g,))
    # a product of a row and a column profile: equal to the 2-D soft-argmax
    from kpedu.codecs import soft_argmax
    a, b = torch.randn(6), torch.randn(8)
    sep = (a[:, None] + b[None, :])[None, None]
    assert torch.allclose(keypoint_coordinates(sep)[0], soft_argmax(sep), atol=1e-5)


def test_std_pixels_matches_the_reference_gaussian():
    # reference: exp(-d^2 / gauss_std^2), d in [-1, 1] across n pixels; ours exp(-d_px^2 / (2 std^2))
    n, g = 32, 0.1
    std = std_pixels(g, n)
    d_px = 3.0
    d_ref = d_px * 2 / (n - 1)
    assert math.exp(-d_ref ** 2 / g ** 2) == pytest.approx(math.exp(-d_px ** 2 / (2 * std ** 2)))


def test_gaussian_maps_peak_and_width():
    pts = torch.tensor([[[3.0, 5.0], [0.5, 0.5]]])
    m = gaussian_maps(pts, (8, 10), sigma=1.5)
    assert m.shape == (1, 2, 8, 10)
    assert m[0, 0, 5, 3] == pytest.approx(1.0)
    assert m[0, 0].argmax() == 5 * 10 + 3
    # one sigma away: exp(-1/2)
    assert m[0, 0, 5, 3 + 1] == pytest.approx(torch.exp(torch.tensor(-1 / (2 * 1.5 ** 2))).item(), rel=1e-6)
    # between four pixel centres: the four equal
    q = m[0, 1, :2, :2]
    assert torch.allclose(q, q[0, 0].expand(2, 2))


def test_gaussian_maps_gradient():
    pts = torch.tensor([[[2.3, 1.7]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: gaussian_maps(p, (5, 6), 1.2), (pts,))


def test_transport_limits():
    torch.manual_seed(1)
    fs, ft = torch.rand(2, 4, 6, 6), torch.rand(2, 4, 6, 6)
    zero = torch.zeros(2, 3, 6, 6)
    # no keypoints anywhere: the source features pass unchanged
    assert torch.equal(transport(fs, ft, zero, zero), fs)
    # binary masks: erase both places, paste the target inside the target mask
    hs, ht = zero.clone(), zero.clone()
    hs[:, 0, 1, 1] = 1
    ht[:, 0, 4, 2] = 1
    out = transport(fs, ft, hs, ht)
    assert torch.equal(out[:, :, 4, 2], ft[:, :, 4, 2])
    assert torch.equal(out[:, :, 1, 1], torch.zeros_like(fs[:, :, 1, 1]))
    mask = torch.ones(6, 6, dtype=torch.bool)
    mask[1, 1] = mask[4, 2] = False
    assert torch.equal(out[:, :, mask], fs[:, :, mask])
    # the same frame twice with binary maps reproduces it
    assert torch.equal(transport(fs, fs, ht, ht), fs)


def test_sequential_and_joint_agree_for_one_keypoint_and_differ_for_overlaps():
    torch.manual_seed(2)
    fs, ft = torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8)
    hs = gaussian_maps(torch.tensor([[[2.0, 2.0]]]), (8, 8), 1.0)
    ht = gaussian_maps(torch.tensor([[[5.0, 4.0]]]), (8, 8), 1.0)
    assert torch.allclose(transport(fs, ft, hs, ht, "sequential"), transport(fs, ft, hs, ht, "joint"))
    hs2 = gaussian_maps(torch.tensor([[[2.0, 2.0], [2.5, 2.0]]]), (8, 8), 1.0)
    ht2 = gaussian_maps(torch.tensor([[[5.0, 4.0], [5.5, 4.0]]]), (8, 8), 1.0)
    assert not torch.allclose(transport(fs, ft, hs2, ht2, "sequential"), transport(fs, ft, hs2, ht2, "joint"))


def test_transport_gradient():
    g = torch.Generator().manual_seed(3)
    args = [torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: transport(a, b, c, d), args)


def test_transport_refuses_mismatched_inputs():
    f, h = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match="features"):
        transport(f, torch.rand(1, 2, 5, 4), h, h)
    with pytest.raises(ValueError, match="maps"):
        transport(f, f, h, torch.rand(1, 2, 4, 4))
    with pytest.raises(ValueError, match="maps"):
        transport(f, f, torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2))
    with pytest.raises(ValueError, match="mode"):
        transport(f, f, h, h, mode="sum")
    with pytest.raises(TypeError, match="source_features"):
        transport(f.numpy(), f, h, h)


def test_forward_shapes_and_loss_gradient(net):
    x = torch.rand(2, 3, 32, 32)
    y = torch.rand(2, 3, 32, 32)
    net.train()
    out = net(x, y)
    net.eval()
    assert out["reconstruction"].shape == (2, 3, 32, 32)
    assert out["transported"].shape == out["source_features"].shape == (2, net.features.out_channels, 16, 16)
    kt = out["target_keypoints"]
    assert kt["points"].shape == (2, 3, 2) and kt["maps"].shape == (2, 3, 16, 16)
    # image pixels = (grid + 0.5) * 2 - 0.5, inside the image
    assert torch.allclose(kt["image_points"], (kt["points"] + 0.5) * 2 - 0.5)
    # the source branch is detached: no gradient reaches it
    assert not out["source_features"].requires_grad and not out["source_keypoints"]["points"].requires_grad
    assert (kt["image_points"] > -0.5).all() and (kt["image_points"] < 31.5).all()
    loss = reconstruction_loss(out["reconstruction"], y)
    loss.backward()
    assert all(p.grad is not None for p in net.keypoint_net.parameters())
    net.zero_grad()


def test_the_keypoint_network_learns_through_the_bottleneck(net):
    # the keypoint network reaches the reconstruction only through K coordinates
    torch.manual_seed(4)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    out = net(x, y)
    g = torch.autograd.grad(out["reconstruction"].sum(), net.keypoint_net.head.weight)[0]
    assert g.abs().sum() > 0


def test_model_refuses_bad_images(net):
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.rand(1, 3, 31, 32), torch.rand(1, 3, 31, 32))
    with pytest.raises(ValueError, match="same shape"):
        net(torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises((TypeError, ValueError), match="images"):
        net.keypoints(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="gauss_std"):
        Transporter(gauss_std=0)
    with pytest.raises(ValueError, match="num_keypoints"):
        Transporter(num_keypoints=0)


def test_reconstruction_loss_kinds():
    r, t = torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 3, 4, 4)
    assert reconstruction_loss(r, t).item() == pytest.approx(0.25)
    assert reconstruction_loss(r, t, "l1").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="kind"):
        reconstruction_loss(r, t, "ssim")
    with pytest.raises(ValueError, match="shape"):
        reconstruction_loss(r, torch.zeros(1, 3, 4, 5))


def test_shift_features_moves_by_whole_pixels():
    f = torch.zeros(1, 1, 6, 6)
    f[0, 0, 2, 1] = 1
    out = shift_features(f, torch.tensor([2.0, 1.0]))
    assert out[0, 0, 3, 3] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)
    assert shift_features(f, (10.0, 0.0)).abs().sum() == 0  # moved out: zero fill


def test_move_keypoint_and_reconstruct(net):
    x = torch.rand(3, 32, 32)
    r = move_keypoint(net, x, 1, (6.0, -2.0))
    assert r["reconstruction"].shape == (3, 32, 32)
    assert torch.allclose(r["moved"][1] - r["keypoints"][1], torch.tensor([6.0, -2.0]))
    assert torch.equal(r["moved"][0], r["keypoints"][0])
    rec = reconstruct(net, x, x)["reconstruction"]
    assert rec.shape == (1, 3, 32, 32) and rec.min() >= 0 and rec.max() <= 1
    with pytest.raises(IndexError, match="k"):
        move_keypoint(net, x, 3, (0.0, 0.0))
    with pytest.raises((TypeError, ValueError), match="offset"):
        move_keypoint(net, x, 0, (1.0, float("nan")))
