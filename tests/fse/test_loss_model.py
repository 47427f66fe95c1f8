"""FSE losses, landmark network and the regression protocol (kpedu.fse)."""
import numpy as np
import pytest
import torch

from kpedu.fse import (LandmarkNet, UNetBackbone, alignment_loss, apply_regressor, diversity_loss, fit_regressor,
                       inter_ocular, random_tps, regression_nme)


def _probs(b=2, k=4, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(b, k, h * w, generator=g) * 3, -1).reshape(b, k, h, w)


class TestAlignment:
    def test_equation_4_by_hand(self):
        a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        b = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
        # (0 + 4) and (9 + 16), mean over K = 2
        assert alignment_loss(a, b).item() == pytest.approx(14.5)

    def test_zero_for_an_equivariant_detector(self):
        w = random_tps(3, 32, generator=torch.Generator().manual_seed(0))
        p = torch.rand(3, 5, 2) * 31
        assert alignment_loss(w.points(p), p, w.points).item() < 1e-8

    def test_batch_mean_and_gradients(self):
        a = torch.rand(4, 3, 2, requires_grad=True)
        b = torch.rand(4, 3, 2, requires_grad=True)
        loss = alignment_loss(a, b)
        per = ((a - b) ** 2).sum(-1).mean(-1)
        assert loss.item() == pytest.approx(per.mean().item(), rel=1e-6)
        loss.backward()
        assert torch.allclose(a.grad, -b.grad)

    def test_errors(self):
        with pytest.raises(ValueError, match="B, K, 2"):
            alignment_loss(torch.rand(3, 2), torch.rand(3, 2))
        with pytest.raises(ValueError, match="differ"):
            alignment_loss(torch.rand(1, 3, 2), torch.rand(1, 4, 2))
        with pytest.raises(TypeError):
            alignment_loss([[0.0, 0.0]], torch.rand(1, 1, 2))


class TestDiversity:
    def test_pairwise_matches_the_double_sum(self):
        p = _probs()
        b, k = p.shape[:2]
        loops = torch.zeros(b)
        for r in range(k):
            for s in range(k):
                loops += (p[:, r] * p[:, s]).sum((1, 2))
        assert diversity_loss(p, "pairwise").item() == pytest.approx((loops / k ** 2).mean().item(), rel=1e-5)

    def test_max_matches_its_definition(self):
        p = _probs()
        want = (p.sum(1) - p.max(1).values).sum((1, 2)).mean()
        assert diversity_loss(p, "max").item() == pytest.approx(want.item(), rel=1e-6)

    def test_disjoint_maps_have_zero_max_form_and_collapsed_maps_the_maximum(self):
        k, h, w = 4, 4, 4
        disjoint = torch.zeros(1, k, h, w)
        for r in range(k):
            disjoint[0, r, r, :] = 1 / w
        assert diversity_loss(disjoint, "max").item() == pytest.approx(0.0)
        collapsed = torch.zeros(1, k, h, w)
        collapsed[..., 1, 2] = 1.0
        assert diversity_loss(collapsed, "max").item() == pytest.approx(k - 1)
        assert diversity_loss(collapsed, "pairwise").item() == pytest.approx(1.0)
        # pairwise: the r = r' terms remain when maps are disjoint
        assert diversity_loss(disjoint, "pairwise").item() == pytest.approx(k * (1 / w) / k ** 2)

    def test_gradients_flow(self):
        logits = torch.randn(2, 3, 5, 5, requires_grad=True)
        p = torch.softmax(logits.flatten(2), -1).view_as(logits)
        (diversity_loss(p, "max") + diversity_loss(p, "pairwise")).backward()
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0

    def test_errors(self):
        with pytest.raises(ValueError, match="sum to 1"):
            diversity_loss(torch.rand(1, 2, 3, 3))
        with pytest.raises(ValueError, match="mode"):
            diversity_loss(_probs(), "mean")
        with pytest.raises(ValueError, match="B, K, H, W"):
            diversity_loss(torch.rand(2, 3, 3))


class TestModel:
    @pytest.mark.parametrize("stride", [1, 2, 4])
    def test_unet_shapes(self, stride):
        net = LandmarkNet(7, width=4, depth=3, out_stride=stride)
        x = torch.rand(2, 3, 32, 48)
        assert net(x).shape == (2, 7, 32 // stride, 48 // stride)
        out = net.detect(x)
        assert out["landmarks"].shape == (2, 7, 2)
        assert torch.allclose(out["probs"].sum((-1, -2)), torch.ones(2, 7), atol=1e-5)
        lm = out["landmarks"]
        assert (lm >= -0.5).all() and (lm[..., 0] <= 47.5).all() and (lm[..., 1] <= 31.5).all()

    def test_hourglass_backbone(self):
        net = LandmarkNet(5, backbone="hourglass", width=8, depth=2)
        out = net.detect(torch.rand(1, 3, 32, 32))
        assert out["probs"].shape == (1, 5, 8, 8) and out["landmarks"].shape == (1, 5, 2)

    def test_landmarks_are_expected_positions_in_image_pixels(self):
        """A map peaked on heatmap cell (u, v) at stride 2 gives the image point (2u + 0.5, 2v + 0.5)."""
        net = LandmarkNet(1, width=4, out_stride=2, beta=1.0)
        scores = torch.full((1, 1, 8, 8), -1e4)
        scores[0, 0, 3, 5] = 0.0
        lm = net.detect(torch.rand(1, 3, 16, 16), scores=scores)["landmarks"]
        assert torch.allclose(lm[0, 0], torch.tensor([10.5, 6.5]))

    def test_gradients_reach_the_first_layer(self):
        net = LandmarkNet(3, width=4)
        net.detect(torch.rand(2, 3, 16, 16))["landmarks"].sum().backward()
        assert net.backbone.stem[0][0].weight.grad.abs().sum() > 0

    def test_errors(self):
        with pytest.raises(ValueError, match="num_landmarks"):
            LandmarkNet(0)
        with pytest.raises(ValueError, match="backbone"):
            LandmarkNet(3, backbone="resnet")
        with pytest.raises(ValueError, match="out_stride"):
            UNetBackbone(3, out_stride=3)
        with pytest.raises(ValueError, match="divisible"):
            LandmarkNet(3, depth=3)(torch.rand(1, 3, 20, 20))
        with pytest.raises(ValueError, match="B, 3, H, W"):
            LandmarkNet(3)(torch.rand(3, 16, 16))


class TestRegression:
    def test_recovers_a_linear_map_exactly(self):
        rng = np.random.default_rng(0)
        learned = rng.uniform(0, 64, (100, 6, 2))
        r = rng.normal(size=(12, 10))
        annotated = (learned.reshape(100, -1) @ r).reshape(100, 5, 2)
        got = fit_regressor(learned, annotated)
        assert np.allclose(got, r, atol=1e-8)
        assert np.allclose(apply_regressor(learned, got), annotated)

    def test_no_bias_term(self):
        """A constant offset cannot be fitted without a bias unless the learned points carry it."""
        learned = np.zeros((20, 2, 2))
        learned[:, :, 0] = np.arange(20)[:, None]
        annotated = learned[:, :1] + 5.0
        pred = apply_regressor(learned, fit_regressor(learned, annotated))
        assert np.abs(pred - annotated).max() > 1.0

    def test_nme_protocol(self):
        rng = np.random.default_rng(1)
        gt = rng.uniform(10, 50, (200, 5, 2))
        gt[:, 1] = gt[:, 0] + [20.0, 0.0]  # eyes 20 px apart
        learned = np.concatenate([gt, gt + rng.normal(0, 0.01, gt.shape)], 1)  # K = 10
        noisy_test = gt[100:] + rng.normal(0, 1.0, gt[100:].shape)
        r = regression_nme(learned[:100], gt[:100], learned[100:], noisy_test)
        # regressing gt onto itself is exact, so the error is the injected noise: ~1.25 px / 20 px
        assert 4.0 < r["nme"] < 8.5
        assert r["per_image"].shape == (100,) and r["per_point"].shape == (5,)
        assert r["train_nme"] < 0.1
        assert np.allclose(inter_ocular(gt), 20.0)

    def test_errors(self):
        with pytest.raises(ValueError, match="2K"):
            fit_regressor(np.zeros((5, 10, 2)), np.zeros((5, 5, 2)))
        with pytest.raises(ValueError, match="same number"):
            fit_regressor(np.zeros((30, 2, 2)), np.zeros((29, 5, 2)))
        with pytest.raises(ValueError, match="NaN"):
            fit_regressor(np.full((30, 2, 2), np.nan), np.zeros((30, 5, 2)))
        with pytest.raises(ValueError, match="regressor"):
            apply_regressor(np.zeros((3, 2, 2)), np.zeros((5, 10)))
