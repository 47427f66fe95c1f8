"""Thin-plate-spline warps (kpedu.fse.tps): exact interpolation, inverses, images and
points agreeing, composition, gradients, errors, devices."""
import math

import pytest
import torch

from kpedu.fse import (ComposedWarp, ThinPlateSpline, TPSWarp, normalized_to_pixel, pixel_grid, pixel_to_normalized,
                       random_tps, tps_kernel)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _blob(centres, size=64, sigma=1.0):
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    c = centres
    img = torch.exp(-((xs - c[:, 0, None, None]) ** 2 + (ys - c[:, 1, None, None]) ** 2) / (2 * sigma ** 2))
    return img[:, None].repeat(1, 3, 1, 1)


def _peak(images):
    """Sub-pixel position of the brightest pixel (parabola through the 3 neighbours)."""
    m = images[:, 0]
    b, h, w = m.shape
    idx = m.reshape(b, -1).argmax(1)
    y, x = idx // w, idx % w
    out = []
    for i in range(b):
        yi, xi = int(y[i]), int(x[i])

        def offset(lo, mid, hi):
            den = lo - 2 * mid + hi
            return 0.0 if den == 0 else 0.5 * (lo - hi) / den
        dx = offset(m[i, yi, xi - 1], m[i, yi, xi], m[i, yi, xi + 1])
        dy = offset(m[i, yi - 1, xi], m[i, yi, xi], m[i, yi + 1, xi])
        out.append([xi + float(dx), yi + float(dy)])
    return torch.tensor(out)


class TestKernelAndFit:
    def test_kernel_values(self):
        r2 = torch.tensor([0.0, 1.0, math.e, 4.0])
        assert torch.allclose(tps_kernel(r2), torch.tensor([0.0, 0.0, math.e, 4 * math.log(4.0)]))

    def test_fit_interpolates_control_points(self):
        src = torch.rand(3, 9, 2, generator=_gen()) * 2 - 1
        dst = src + 0.1 * torch.randn(3, 9, 2, generator=_gen(1))
        tps = ThinPlateSpline.fit(src, dst)
        assert torch.allclose(tps(src), dst, atol=1e-5)

    def test_affine_targets_give_an_affine_map_with_zero_weights(self):
        src = torch.rand(2, 10, 2, generator=_gen()) * 2 - 1
        a = torch.tensor([[1.1, 0.2], [-0.1, 0.9]])
        dst = src @ a + torch.tensor([0.3, -0.2])
        tps = ThinPlateSpline.fit(src, dst)
        assert tps.weights.abs().max() < 1e-5
        p = torch.rand(2, 50, 2, generator=_gen(2)) * 4 - 2  # also outside the control points
        assert torch.allclose(tps(p), p @ a + torch.tensor([0.3, -0.2]), atol=1e-4)

    def test_regularization_smooths(self):
        src = torch.rand(1, 12, 2, generator=_gen()) * 2 - 1
        dst = src + 0.2 * torch.randn(1, 12, 2, generator=_gen(3))
        exact = (ThinPlateSpline.fit(src, dst)(src) - dst).abs().max()
        smooth = (ThinPlateSpline.fit(src, dst, regularization=1.0)(src) - dst).abs().max()
        assert exact < 1e-5 < smooth

    def test_jacobian_matches_autograd(self):
        src = torch.rand(1, 9, 2, generator=_gen(), dtype=torch.float64) * 2 - 1
        tps = ThinPlateSpline.fit(src, src + 0.1 * torch.randn(1, 9, 2, generator=_gen(4), dtype=torch.float64))
        p = torch.rand(1, 1, 2, generator=_gen(5), dtype=torch.float64)
        auto = torch.autograd.functional.jacobian(lambda q: tps(q.view(1, 1, 2)).view(2), p.view(2))
        assert torch.allclose(tps.jacobian(p)[0, 0], auto, atol=1e-8)
        value, jac = tps.value_and_jacobian(p)
        assert torch.allclose(value, tps(p)) and torch.allclose(jac, tps.jacobian(p))

    def test_gradcheck_through_points(self):
        src = torch.rand(1, 6, 2, generator=_gen(), dtype=torch.float64) * 2 - 1
        tps = ThinPlateSpline.fit(src, src + 0.1 * torch.randn(1, 6, 2, generator=_gen(6), dtype=torch.float64))
        p = (torch.rand(1, 4, 2, generator=_gen(7), dtype=torch.float64) * 2 - 1).requires_grad_()
        assert torch.autograd.gradcheck(tps, (p,))

    @pytest.mark.parametrize("bad", ["collinear", "repeated"])
    def test_degenerate_control_points_raise(self, bad):
        if bad == "collinear":
            src = torch.stack([torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5)], -1)[None]
        else:
            src = torch.zeros(1, 4, 2)
        with pytest.raises(ValueError, match="collinear|repeated"):
            ThinPlateSpline.fit(src, src)

    def test_shape_errors(self):
        with pytest.raises(ValueError, match="at least 3"):
            ThinPlateSpline.fit(torch.rand(1, 2, 2), torch.rand(1, 2, 2))
        with pytest.raises(ValueError, match="same shape"):
            ThinPlateSpline.fit(torch.rand(1, 4, 2), torch.rand(1, 5, 2))
        with pytest.raises(ValueError, match=r"\(B, P, 2\)"):
            ThinPlateSpline.fit(torch.rand(4, 2), torch.rand(4, 2))
        tps = ThinPlateSpline.fit(torch.rand(2, 5, 2, generator=_gen()), torch.rand(2, 5, 2, generator=_gen(1)))
        with pytest.raises(ValueError, match="batch"):
            tps(torch.rand(3, 4, 2))


class TestCoordinates:
    def test_pixel_normalized_round_trip_and_edges(self):
        p = torch.tensor([[[-0.5, -0.5], [63.5, 31.5], [10.0, 20.0]]])
        n = pixel_to_normalized(p, (32, 64))
        assert torch.allclose(n[0, 0], torch.tensor([-1.0, -1.0]))
        assert torch.allclose(n[0, 1], torch.tensor([1.0, 1.0]))
        assert torch.allclose(normalized_to_pixel(n, (32, 64)), p)

    def test_pixel_grid(self):
        g = pixel_grid((2, 3), batch=2)
        assert g.shape == (2, 6, 2)
        assert g[0, 4].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("sampling", [True, False])
class TestWarp:
    def test_inverse_round_trip(self, sampling):
        w = random_tps(4, 64, generator=_gen(), sampling=sampling)
        p = torch.rand(4, 40, 2, generator=_gen(1)) * 63
        assert (w.inverse_points(w.points(p)) - p).abs().max() < 2e-3
        assert (w.points(w.inverse_points(p)) - p).abs().max() < 2e-3

    def test_image_and_points_agree(self, sampling):
        """What sits at p in the image sits at g(p) in the warped image: x'(g(p)) = x(p),
        on a smooth image (bilinear interpolation error only), and a small blob's peak
        lands within half a pixel of g(p)."""
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        img = (torch.sin(xs / 5) * torch.cos(ys / 7))[None, None].repeat(4, 3, 1, 1)
        w = random_tps(4, 64, generator=_gen(2), sampling=sampling)
        out = w.warp_images(img, padding_mode="zeros")
        p = torch.rand(4, 30, 2, generator=_gen(3)) * 40 + 12
        q = w.points(p)
        read = torch.nn.functional.grid_sample(out, pixel_to_normalized(q, 64)[:, :, None], align_corners=False)
        truth = torch.sin(p[..., 0] / 5) * torch.cos(p[..., 1] / 7)
        assert (read[:, 0, :, 0] - truth).abs().max() < 0.02
        centres = torch.tensor([[30.3, 25.7], [20.6, 40.2], [41.1, 33.9], [32.0, 32.0]])
        blob = w.warp_images(_blob(centres), padding_mode="zeros")
        assert (_peak(blob) - w.points(centres[:, None])[:, 0]).norm(dim=-1).max() < 0.5

    def test_identity_strength_zero(self, sampling):
        w = random_tps(2, 32, strength=0.0, generator=_gen(), sampling=sampling)
        x = torch.rand(2, 3, 32, 32, generator=_gen(3))
        assert torch.allclose(w.warp_images(x), x, atol=1e-4)
        p = torch.rand(2, 5, 2, generator=_gen(4)) * 31
        assert torch.allclose(w.points(p), p, atol=1e-4)

    def test_composition(self, sampling):
        g1 = random_tps(3, 48, generator=_gen(5), sampling=sampling)
        g2 = random_tps(3, 48, generator=_gen(6), sampling=sampling)
        comp = g1.then(g2)
        assert isinstance(comp, ComposedWarp)
        p = torch.rand(3, 10, 2, generator=_gen(7)) * 47
        assert torch.allclose(comp.points(p), g2.points(g1.points(p)), atol=1e-5)
        assert (comp.inverse_points(comp.points(p)) - p).abs().max() < 2e-3
        # resampling once through the composed map equals warping twice (smooth image, interior)
        ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
        img = (torch.sin(xs / 5) * torch.cos(ys / 7))[None, None].repeat(3, 3, 1, 1)
        once = comp.warp_images(img, padding_mode="zeros")[..., 12:36, 12:36]
        twice = g2.warp_images(g1.warp_images(img, padding_mode="zeros"), padding_mode="zeros")[..., 12:36, 12:36]
        assert (once - twice).abs().max() < 0.03

    def test_points_are_differentiable(self, sampling):
        w = random_tps(2, 32, generator=_gen(8), sampling=sampling)
        p = (torch.rand(2, 3, 2, generator=_gen(9)) * 31).requires_grad_()
        w.points(p).sum().backward()
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0

    def test_jacobian_determinant_positive_for_default_warps(self, sampling):
        w = random_tps(16, 64, generator=_gen(10), sampling=sampling)
        assert (w.min_jacobian_determinant() > 0).all()


def test_image_gradient_and_fit_in_pixels():
    src = torch.tensor([[[0.0, 0.0], [63.0, 0.0], [0.0, 63.0], [63.0, 63.0], [31.5, 31.5]]])
    dst = src.clone()
    dst[0, 4] += torch.tensor([3.0, -2.0])
    w = TPSWarp.fit(src, dst, 64)
    assert torch.allclose(w.points(src), dst, atol=1e-3)
    ws = TPSWarp.fit(src, dst, 64, sampling=True)
    assert torch.allclose(ws.points(src), dst, atol=1e-3)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    w.warp_images(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_strength_scales_the_displacement():
    p = pixel_grid(64, 8)
    d = [(random_tps(8, 64, strength=s, generator=_gen(11)).points(p) - p).norm(dim=-1).mean() for s in (0.25, 0.5, 1)]
    assert d[0] < d[1] < d[2]


def test_folding_warp_fails_loudly():
    w = random_tps(8, 64, strength=4.0, generator=_gen(12), sampling=True)
    assert (w.min_jacobian_determinant() < 0).any()
    with pytest.raises(RuntimeError, match="did not converge"):
        w.points(pixel_grid(64, 8))


def test_warp_errors():
    w = random_tps(2, 32, generator=_gen())
    with pytest.raises(ValueError, match="batch"):
        w.warp_images(torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="are"):
        w.warp_images(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="B, C, H, W"):
        w.warp_images(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="share"):
        ComposedWarp([w, random_tps(3, 32, generator=_gen())])
    with pytest.raises(TypeError):
        ComposedWarp([w, "not a warp"])
    for kwargs in ({"batch": 0, "image_size": 32}, {"batch": 2, "image_size": 1}, {"batch": 2, "image_size": 32,
                   "strength": -1}, {"batch": 2, "image_size": 32, "scale": (1.2, 0.8)},
                   {"batch": 2, "image_size": 32, "grid": 1}):
        with pytest.raises((ValueError, TypeError)):
            random_tps(**kwargs)


def test_deterministic_given_generator():
    a = random_tps(2, 32, generator=_gen(3)).points(pixel_grid(32, 2))
    b = random_tps(2, 32, generator=_gen(3)).points(pixel_grid(32, 2))
    assert torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    w = random_tps(2, 32, generator=_gen(4))
    x = torch.rand(2, 3, 32, 32, generator=_gen(5))
    wc = random_tps(2, 32, generator=_gen(4), device="cuda")
    assert torch.allclose(wc.warp_images(x.cuda()).cpu(), w.warp_images(x), atol=1e-4)
