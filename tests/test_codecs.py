"""Tests for kpedu.codecs: shapes, round trips with stated tolerances, errors, gradients."""
import numpy as np
import pytest
import torch

from kpedu.codecs import (
    GaussianHeatmapCodec,
    decode_argmax,
    encode_heatmaps,
    heatmap_to_image,
    image_to_heatmap,
    soft_argmax,
)


def random_keypoints(n=500, k=1, lo=4.0, hi=59.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, k, 2))


class TestEncode:
    def test_shapes_single_and_batch(self):
        assert encode_heatmaps(np.zeros((17, 2)) + 5, None, 32, 2.0).shape == (17, 32, 32)
        assert encode_heatmaps(np.zeros((3, 17, 2)) + 5, None, (24, 40), 2.0).shape == (3, 17, 24, 40)

    def test_peak_value_and_position(self):
        hm = encode_heatmaps([[10.0, 7.0]], None, (16, 20), 1.5)
        assert hm.shape == (1, 16, 20)
        y, x = np.unravel_index(hm[0].argmax().item(), (16, 20))
        assert (x, y) == (10, 7)
        assert hm[0, 7, 10].item() == pytest.approx(1.0)
        # the value one pixel away is exp(-1 / (2 sigma^2))
        assert hm[0, 7, 11].item() == pytest.approx(np.exp(-1 / (2 * 1.5**2)), rel=1e-6)

    def test_matches_direct_formula(self):
        kp = np.array([[3.3, 9.7], [12.1, 0.2]])
        hm = encode_heatmaps(kp, None, (14, 15), 2.5).numpy()
        ys, xs = np.mgrid[0:14, 0:15]
        for k in range(2):
            ref = np.exp(-((xs - kp[k, 0]) ** 2 + (ys - kp[k, 1]) ** 2) / (2 * 2.5**2))
            np.testing.assert_allclose(hm[k], ref, atol=1e-6)

    def test_invisible_gives_empty_map_even_with_nan(self):
        kp = np.array([[5.0, 5.0], [np.nan, np.nan]])
        hm = encode_heatmaps(kp, [2, 0], 16, 2.0)
        assert hm[1].abs().sum() == 0
        assert hm[0].max() == pytest.approx(1.0)

    def test_occluded_flag_one_is_drawn(self):
        hm = encode_heatmaps([[5.0, 5.0]], [1], 16, 2.0)
        assert hm.max() == pytest.approx(1.0)

    def test_outside_border(self):
        near = encode_heatmaps([[-1.0, 8.0]], None, 16, 2.0)
        far = encode_heatmaps([[-40.0, 8.0]], None, 16, 2.0)
        assert 0.5 < near.max() < 1.0  # the tail that falls inside is drawn
        assert far.max() < 1e-20

    @pytest.mark.parametrize("sigma", [0, -1.0, float("nan"), float("inf")])
    def test_bad_sigma(self, sigma):
        with pytest.raises(ValueError, match="sigma"):
            encode_heatmaps([[1.0, 1.0]], None, 8, sigma)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="keypoints must have shape"):
            encode_heatmaps(np.zeros((4, 3)), None, 8, 1.0)
        with pytest.raises(ValueError, match="visible must have shape"):
            encode_heatmaps(np.zeros((4, 2)), np.ones(5), 8, 1.0)
        with pytest.raises(ValueError, match="heatmap_size"):
            encode_heatmaps(np.zeros((4, 2)), None, (0, 8), 1.0)

    def test_nan_visible_keypoint_rejected(self):
        with pytest.raises(ValueError, match="NaN"):
            encode_heatmaps([[np.nan, 1.0]], [2], 8, 1.0)


class TestDecode:
    def test_integer_round_trip_exact(self):
        kp = np.random.default_rng(1).integers(1, 30, size=(50, 4, 2)).astype(float)
        hm = encode_heatmaps(kp, None, 32, 2.0)
        for q in (False, True):
            coords, scores = decode_argmax(hm, quarter_offset=q)
            np.testing.assert_allclose(coords.numpy(), kp, atol=1e-6)
            np.testing.assert_allclose(scores.numpy(), 1.0, atol=1e-6)

    def test_subpixel_errors_match_theory(self):
        # plain argmax: error uniform in [-0.5, 0.5]^2 -> mean distance ~0.383 px;
        # the quarter shift roughly halves it; soft-argmax (sum) is almost exact inside.
        kp = random_keypoints(4000)
        hm = encode_heatmaps(kp, None, 64, 2.0)
        plain = np.linalg.norm(decode_argmax(hm, False)[0].numpy() - kp, axis=-1).mean()
        quarter = np.linalg.norm(decode_argmax(hm, True)[0].numpy() - kp, axis=-1).mean()
        soft = np.linalg.norm(soft_argmax(hm, normalize="sum").numpy() - kp, axis=-1).mean()
        assert 0.36 < plain < 0.41
        assert 0.15 < quarter < 0.23
        assert soft < 0.01
        assert plain > quarter > soft

    def test_quarter_offset_direction_and_border(self):
        hm = torch.zeros(1, 5, 5)
        hm[0, 2, 2], hm[0, 2, 3], hm[0, 1, 2] = 1.0, 0.6, 0.3
        coords, _ = decode_argmax(hm)
        assert coords[0].tolist() == [2.25, 1.75]
        hm = torch.zeros(1, 5, 5)
        hm[0, 0, 4], hm[0, 0, 3] = 1.0, 0.5  # corner: no neighbour beyond the border
        coords, _ = decode_argmax(hm)
        assert coords[0].tolist() == [4.0, 0.0]

    def test_leading_dims_preserved(self):
        coords, scores = decode_argmax(torch.rand(2, 3, 5, 8, 9))
        assert coords.shape == (2, 3, 5, 2) and scores.shape == (2, 3, 5)

    def test_errors(self):
        with pytest.raises(ValueError, match="shape"):
            decode_argmax(torch.rand(8, 8))
        with pytest.raises(ValueError, match="NaN"):
            decode_argmax(torch.full((1, 4, 4), float("nan")))
        with pytest.raises(ValueError, match="beta"):
            soft_argmax(torch.rand(1, 4, 4), beta=0)
        with pytest.raises(ValueError, match="normalize"):
            soft_argmax(torch.rand(1, 4, 4), normalize="max")


class TestSoftArgmax:
    def test_gradient(self):
        x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda h: soft_argmax(h, beta=1.5), (x,))

    def test_probs_sum_to_one_and_sharp_limit(self):
        hm = torch.zeros(1, 9, 9)
        hm[0, 6, 2] = 5.0
        coords, probs = soft_argmax(hm, beta=20.0, return_probs=True)
        assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(coords[0].numpy(), [2.0, 6.0], atol=1e-3)

    def test_empty_sum_map_gives_centre(self):
        coords = soft_argmax(torch.zeros(1, 5, 7), normalize="sum")
        np.testing.assert_allclose(coords[0].numpy(), [3.0, 2.0])


class TestCoordinates:
    def test_stride_maps_edges_and_round_trip(self):
        pts = np.array([[-0.5, -0.5], [63.5, 63.5], [10.0, 20.0]])
        hm = image_to_heatmap(pts, 4)
        np.testing.assert_allclose(hm[0], [-0.5, -0.5])
        np.testing.assert_allclose(hm[1], [15.5, 15.5])
        np.testing.assert_allclose(heatmap_to_image(hm, 4), pts)
        t = torch.tensor(pts, dtype=torch.float64)
        np.testing.assert_allclose(heatmap_to_image(image_to_heatmap(t, (2, 4)), (2, 4)).numpy(), pts)

    def test_bad_stride(self):
        with pytest.raises(ValueError, match="stride"):
            image_to_heatmap(np.zeros((1, 2)), 0)


class TestCodec:
    def test_round_trip_in_image_pixels(self):
        codec = GaussianHeatmapCodec(256, 64, sigma=2.0)
        kp = torch.tensor(random_keypoints(300, 17, 8, 248, seed=3), dtype=torch.float32)
        hm, w = codec.encode(kp)
        assert hm.shape == (300, 17, 64, 64) and w.shape == (300, 17) and w.min() == 1
        dec, _ = codec.decode(hm)
        err = (dec - kp).norm(dim=-1)
        # stride 4: argmax + quarter shift keeps the error under a heatmap pixel
        assert err.max() < 4 * 0.75 and err.mean() < 4 * 0.25
        # soft-argmax is near exact where the whole Gaussian lies inside the map
        # (3 sigma = 6 heatmap px = 24 image px from the border), biased inward near it
        soft = GaussianHeatmapCodec(256, 64, 2.0, decoder="soft").decode(hm)[0]
        inner = ((kp > 28) & (kp < 227)).all(-1)
        assert (soft - kp).norm(dim=-1)[inner].mean() < 0.01
        assert (soft - kp).norm(dim=-1)[~inner].mean() > 0.05

    def test_weights_mask_invisible_and_far_outside(self):
        codec = GaussianHeatmapCodec(64, 16, 1.0)
        kp = torch.tensor([[[10.0, 10.0], [10.0, 10.0], [-100.0, 10.0]]])
        _, w = codec.encode(kp, torch.tensor([[2, 0, 2]]))
        assert w.tolist() == [[1.0, 0.0, 0.0]]

    def test_decode_size_check(self):
        with pytest.raises(ValueError, match="size"):
            GaussianHeatmapCodec(64, 16).decode(torch.rand(1, 17, 8, 8))
        with pytest.raises(ValueError, match="decoder"):
            GaussianHeatmapCodec(64, 16, decoder="mean")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_codecs_on_cuda():
    kp = torch.rand(4, 17, 2, device="cuda") * 30 + 1
    hm = encode_heatmaps(kp, None, 32, 2.0)
    assert hm.is_cuda
    coords, _ = decode_argmax(hm)
    assert (coords - kp).norm(dim=-1).max() < 0.75
