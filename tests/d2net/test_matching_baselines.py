"""D2-Net chapter: matching, MMA / repeatability, the OpenCV baselines and the stereo pair."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kpedu.d2net.baselines import SIFT_OFFSET, classical_features, to_gray_uint8
from kpedu.d2net.matching import Features, evaluate_matching, match, mutual_nearest_neighbors, repeatability
from kpedu.data.pairs import apply_homography, make_pairs, warp_image
from kpedu.data.stereo import stereo_errors, stereo_motorcycle
from kpedu.metrics import mma, reprojection_errors


def _feats(kp, desc, metric="l2"):
    kp = np.asarray(kp, np.float32)
    return Features(kp, desc, np.arange(len(kp), 0, -1, dtype=np.float32), metric)


def _similarity(angle_deg=10.0, scale=1.1, tx=3.0, ty=-2.0):
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty], [0, 0, 1.0]])


# --- mutual nearest neighbours -------------------------------------------------------


def test_mnn_l2_hand_made_with_non_mutual_case():
    d1 = np.array([[0.0], [1.0], [10.0]])
    d2 = np.array([[0.2], [0.9], [3.0]])
    # 10 -> 3 (its nearest), but 3's nearest is 1: not mutual
    np.testing.assert_array_equal(mutual_nearest_neighbors(d1, d2), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(mutual_nearest_neighbors(d2, d1), [[0, 0], [1, 1]])
    out = mutual_nearest_neighbors(d1, d2)
    assert out.dtype == np.int64 and out.shape == (2, 2)


def test_mnn_ties_take_first_index():
    np.testing.assert_array_equal(mutual_nearest_neighbors([[1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]), [[0, 0]])
    np.testing.assert_array_equal(mutual_nearest_neighbors([[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0]]), [[0, 0]])
    # across chunks too: the tie is between rows 0 and 2 of desc1, processed in different chunks
    np.testing.assert_array_equal(
        mutual_nearest_neighbors([[1.0], [5.0], [1.0]], [[1.0]], chunk=1), [[0, 0]])


def test_mnn_hamming_hand_made():
    d1 = np.array([[0b00000000], [0b11111111]], np.uint8)
    d2 = np.array([[0b00000001], [0b11110000], [0b11111110]], np.uint8)
    np.testing.assert_array_equal(mutual_nearest_neighbors(d1, d2, "hamming"), [[0, 0], [1, 2]])


def _brute_l2(d1, d2):
    dist = ((d1[:, None, :].astype(np.float64) - d2[None].astype(np.float64)) ** 2).sum(-1)
    return dist.argmin(1), dist.argmin(0)


def _mutual_from(nn12, nn21):
    i = np.arange(len(nn12))
    ok = nn21[nn12] == i
    return np.stack([i[ok], nn12[ok]], 1)


@pytest.mark.parametrize("chunk", [4096, 37])
def test_mnn_l2_matches_brute_force(chunk):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(150, 16))
    d1 = (base + 0.3 * rng.normal(size=base.shape)) * rng.uniform(0.5, 3, size=(150, 1))  # not normalised
    d2 = np.concatenate([base[:120] + 0.3 * rng.normal(size=(120, 16)), rng.normal(size=(60, 16))])
    d1, d2 = d1.astype(np.float32), d2.astype(np.float32)
    expected = _mutual_from(*_brute_l2(d1, d2))
    got = mutual_nearest_neighbors(d1, d2, chunk=chunk)
    assert len(expected) > 20
    np.testing.assert_array_equal(got, expected)
    # torch input gives the same
    np.testing.assert_array_equal(mutual_nearest_neighbors(torch.from_numpy(d1), torch.from_numpy(d2)), expected)


@pytest.mark.parametrize("chunk", [4096, 7])
def test_mnn_hamming_matches_unpackbits_reference(chunk):
    rng = np.random.default_rng(1)
    d1 = rng.integers(0, 256, size=(90, 32), dtype=np.uint8)
    flips = (rng.random((70, 256)) < 0.1)
    d2 = np.concatenate([np.packbits(np.unpackbits(d1[:70], axis=1) ^ flips, axis=1),
                         rng.integers(0, 256, size=(40, 32), dtype=np.uint8)])
    b1, b2 = np.unpackbits(d1, axis=1).astype(np.int64), np.unpackbits(d2, axis=1).astype(np.int64)
    dist = (b1[:, None, :] != b2[None]).sum(-1)
    expected = _mutual_from(dist.argmin(1), dist.argmin(0))
    assert len(expected) >= 60
    np.testing.assert_array_equal(mutual_nearest_neighbors(d1, d2, "hamming", chunk=chunk), expected)


def test_mnn_empty_and_errors():
    for d1, d2 in [(np.zeros((0, 8)), np.ones((5, 8))), (np.ones((5, 8)), np.zeros((0, 8)))]:
        out = mutual_nearest_neighbors(d1, d2)
        assert out.shape == (0, 2) and out.dtype == np.int64
    assert mutual_nearest_neighbors(np.zeros((0, 4), np.uint8), np.zeros((3, 4), np.uint8), "hamming").shape == (0, 2)
    with pytest.raises(ValueError, match="widths differ"):
        mutual_nearest_neighbors(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="metric"):
        mutual_nearest_neighbors(np.ones((3, 4)), np.ones((3, 4)), "cosine")
    with pytest.raises(TypeError, match="uint8"):
        mutual_nearest_neighbors(np.ones((3, 4)), np.ones((3, 4)), "hamming")
    with pytest.raises(ValueError, match="shape"):
        mutual_nearest_neighbors(np.ones(4), np.ones((3, 4)))
    with pytest.raises(ValueError, match="chunk"):
        mutual_nearest_neighbors(np.ones((3, 4)), np.ones((3, 4)), chunk=0)
    with pytest.raises(ValueError, match="NaN"):
        mutual_nearest_neighbors(np.full((3, 4), np.nan), np.ones((3, 4)))


# --- Features ---------------------------------------------------------------------------


def test_features_validation_and_top():
    f = Features(np.zeros((4, 2)), np.ones((4, 8)), np.array([0.1, 0.9, 0.5, 0.9]), "l2")
    assert len(f) == 4 and f.keypoints.dtype == np.float32 and f.descriptors.dtype == np.float32
    t = f.top(3)
    np.testing.assert_allclose(t.scores, [0.9, 0.9, 0.5])
    assert len(f.top(10)) == 4 and len(f.top(0)) == 0
    with pytest.raises(ValueError, match="descriptors"):
        Features(np.zeros((4, 2)), np.ones((3, 8)), np.ones(4))
    with pytest.raises(ValueError, match="keypoints"):
        Features(np.zeros((4, 3)), np.ones((4, 8)), np.ones(4))
    with pytest.raises(ValueError, match="scores"):
        Features(np.zeros((4, 2)), np.ones((4, 8)), np.ones(3))
    with pytest.raises(ValueError, match="metric"):
        Features(np.zeros((4, 2)), np.ones((4, 8)), np.ones(4), "l1")
    with pytest.raises(TypeError, match="uint8"):
        Features(np.zeros((4, 2)), np.ones((4, 8)), np.ones(4), "hamming")
    with pytest.raises(ValueError, match="scales"):
        Features(np.zeros((4, 2)), np.ones((4, 8)), np.ones(4), scales=np.ones(2))
    with pytest.raises(ValueError):
        f.top(-1)
    a = _feats([[0, 0]], np.ones((1, 4)))
    b = _feats([[0, 0]], np.ones((1, 4), np.uint8), "hamming")
    with pytest.raises(ValueError, match="metrics"):
        match(a, b)


# --- MMA -----------------------------------------------------------------------------


def _synthetic_pair(shift=(0.0, 0.0), n=60, seed=0):
    rng = np.random.default_rng(seed)
    H = _similarity()
    kp1 = rng.uniform(5, 95, size=(n, 2))
    desc = rng.normal(size=(n, 16)).astype(np.float32)
    perm = rng.permutation(n)  # image 2 lists the same points in another order
    kp2 = apply_homography(H, kp1)[perm] + np.asarray(shift)
    return _feats(kp1, desc), _feats(kp2, desc[perm]), H, perm


def test_evaluate_matching_perfect_and_shifted():
    f1, f2, H, perm = _synthetic_pair()
    r = evaluate_matching([f1], [f2], [H])
    assert r["thresholds"] == list(range(1, 11))
    np.testing.assert_allclose(r["mma"], 1.0)
    assert r["n_matches"] == 60 and r["n_features"] == 60 and r["per_pair"].shape == (1, 10)
    m = r["matches"][0]
    np.testing.assert_array_equal(perm[m[:, 1]], m[:, 0])
    assert np.all(r["errors"][0] < 1e-3)

    g1, g2, H, _ = _synthetic_pair(shift=(2.0, 0.0), seed=1)
    r = evaluate_matching([g1], [g2], [H], thresholds=[1, 1.99, 2.01, 3, 10])
    np.testing.assert_allclose(r["mma"], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(r["errors"][0], 2.0, atol=1e-3)

    # two pairs: the mean over pairs
    r = evaluate_matching([f1, g1], [f2, g2], [_similarity(), H], thresholds=[1, 3])
    np.testing.assert_allclose(r["mma"], [0.5, 1.0])
    np.testing.assert_allclose(r["per_pair"], [[1, 1], [0, 1]])


def test_evaluate_matching_empty_pair_counts_zero():
    f1, f2, H, _ = _synthetic_pair()
    empty = Features(np.zeros((0, 2)), np.zeros((0, 16)), np.zeros(0))
    r = evaluate_matching([f1, empty], [f2, f2], [H, H], thresholds=[5])
    np.testing.assert_allclose(r["per_pair"], [[1.0], [0.0]])
    np.testing.assert_allclose(r["mma"], [0.5])
    assert r["n_matches"] == 30 and r["n_features"] == (60 + 30) / 2
    with pytest.raises(ValueError, match="one homography per pair"):
        evaluate_matching([f1], [f2], [H, H])
    with pytest.raises(ValueError, match="at least one pair"):
        evaluate_matching([], [], [])
    with pytest.raises(ValueError, match="3x3"):
        evaluate_matching([f1], [f2], [np.eye(2)])
    with pytest.raises(ValueError, match="thresholds"):
        evaluate_matching([f1], [f2], [H], thresholds=[])


def test_metrics_reprojection_errors_and_mma():
    H = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]])
    kp1 = np.array([[0.0, 0.0], [10.0, 5.0]])
    kp2 = np.array([[12.0, 5.0], [2.0, 3.0]])
    np.testing.assert_allclose(reprojection_errors(kp1, kp2, np.array([[0, 1], [1, 0]]), H), [3.0, 0.0])
    assert reprojection_errors(kp1, kp2, np.zeros((0, 2), np.int64), H).shape == (0,)
    with pytest.raises(ValueError, match="out of range"):
        reprojection_errors(kp1, kp2, np.array([[0, 2]]), H)
    with pytest.raises(TypeError, match="integer"):
        reprojection_errors(kp1, kp2, np.array([[0.0, 1.0]]), H)
    out = mma([np.array([0.5, 1.5, 3.0, np.nan]), np.array([])], thresholds=[1, 2, 3])
    np.testing.assert_allclose(out, [0.125, 0.25, 0.375])
    with pytest.raises(ValueError):
        mma([])
    with pytest.raises(TypeError):
        mma(np.array([0.5, 1.0]))


# --- repeatability -----------------------------------------------------------------------


def test_repeatability():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 99, size=(40, 2))
    assert repeatability(kp, kp, np.eye(3), (100, 100), (100, 100)) == 1.0
    H = _similarity(angle_deg=5, scale=1.0, tx=4, ty=1)
    kp2 = apply_homography(H, kp)
    inside = (kp2 >= -0.5).all(1) & (kp2 <= 99.5).all(1)
    assert 10 < inside.sum() < 40  # some points leave image 2: they must not count
    assert repeatability(kp, kp2[inside], H, (100, 100), (3, 100, 100)) == 1.0
    grid = np.stack(np.meshgrid(np.arange(10, 90, 20.0), np.arange(10, 90, 20.0)), -1).reshape(-1, 2)
    assert repeatability(grid, grid + 5.0, np.eye(3), (100, 100), (100, 100), threshold=3) == 0.0
    assert repeatability(grid, grid + 2.0, np.eye(3), (100, 100), (100, 100), threshold=3) == 1.0
    far = rng.uniform(0, 99, size=(40, 2))
    assert repeatability(kp[:20], kp, np.eye(3), (100, 100), (100, 100)) == 1.0  # divided by min
    assert repeatability(kp, far + 0.0, np.eye(3), (100, 100), (100, 100), threshold=0.01) == 0.0
    assert repeatability(np.zeros((0, 2)), kp, np.eye(3), (100, 100), (100, 100)) == 0.0
    with pytest.raises(ValueError, match="3x3"):
        repeatability(kp, kp, np.eye(2), (100, 100), (100, 100))
    with pytest.raises(ValueError, match="shape1"):
        repeatability(kp, kp, np.eye(3), (100,), (100, 100))


# --- OpenCV baselines --------------------------------------------------------------------


def _blob(cx, cy, sigma, size=96):
    yy, xx = np.mgrid[0:size, 0:size]
    return torch.tensor(np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)), dtype=torch.float32)


def test_sift_coordinate_convention_blob():
    # A Gaussian blob centred on pixel (x, y): OpenCV's raw SIFT pt is (x + 0.25, y + 0.25)
    # (measured +0.24 to +0.25); after our correction the error was measured at 0.011-0.018 px.
    errs = []
    for cx, cy, s in [(40, 37, 2.0), (50, 45, 3.0), (30, 60, 2.5)]:
        f = classical_features(_blob(cx, cy, s), "sift")
        assert len(f) > 0
        errs.append(np.abs(f.keypoints[0] - [cx, cy]))  # best response first
    errs = np.array(errs)
    assert errs.max() < 0.1, errs
    assert SIFT_OFFSET == 0.25


def test_classical_features_on_viewpoint_pair():
    a, b, H = make_pairs(1, "viewpoint", size=160, seed=0).pair(0)
    f1, f2 = classical_features(a, "sift"), classical_features(b, "sift")
    assert len(f1) > 50 and len(f2) > 50  # measured 190 and 196
    assert f1.descriptors.shape == (len(f1), 128) and f1.descriptors.dtype == np.float32 and f1.metric == "l2"
    assert np.all(np.diff(f1.scores) <= 0)
    r = evaluate_matching([f1], [f2], [H], thresholds=[5])
    assert r["mma"][0] > 0.5  # measured 0.792 (106 matches)
    # a mild homography (10 deg, x1.1) of view 1: measured MMA@5 = 0.83 (101 matches)
    H_mild = _similarity()
    c = warp_image(a, H_mild, 160)
    r = evaluate_matching([f1], [classical_features(c, "sift")], [H_mild], thresholds=[5])
    assert r["mma"][0] > 0.6

    o1, o2 = classical_features(a, "orb", max_features=300), classical_features(b, "orb", max_features=300)
    assert 0 < len(o1) <= 300 and o1.descriptors.shape == (len(o1), 32) and o1.descriptors.dtype == np.uint8
    assert o1.metric == "hamming" and o1.scales is not None
    assert (o1.keypoints >= 0).all() and (o1.keypoints <= 159).all()
    r = evaluate_matching([o1], [o2], [H], thresholds=[5])
    assert r["mma"][0] > 0.5  # measured 0.94 (201 and 195 features, 87 matches)


def test_classical_features_inputs_and_empty():
    img = _blob(40, 37, 2.0)
    g = to_gray_uint8(img)
    assert g.dtype == np.uint8 and g.shape == (96, 96) and g.max() == 255
    rgb = torch.stack([img, img, img])
    np.testing.assert_array_equal(to_gray_uint8(rgb), g)
    np.testing.assert_array_equal(to_gray_uint8(rgb.permute(1, 2, 0).numpy()), g)
    np.testing.assert_array_equal(to_gray_uint8((rgb * 255).round().to(torch.uint8)), g)
    for method, width, dtype in [("sift", 128, np.float32), ("orb", 32, np.uint8)]:
        f = classical_features(torch.zeros(3, 64, 64), method)
        assert len(f) == 0 and f.descriptors.shape == (0, width) and f.descriptors.dtype == dtype
    with pytest.raises(ValueError, match="method"):
        classical_features(img, "surf")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classical_features(img * 255, "sift")
    with pytest.raises(ValueError, match="max_features"):
        classical_features(img, "sift", max_features=0)
    with pytest.raises(ValueError, match="colour"):
        classical_features(torch.zeros(4, 32, 32), "sift")
    with pytest.raises(TypeError):
        classical_features([[0.0]], "sift")


# --- stereo ----------------------------------------------------------------------------


def _grey_diff(left, right, disp, sign):
    from scipy.ndimage import map_coordinates

    gl, gr = left.mean(0).numpy().astype(np.float64), right.mean(0).numpy().astype(np.float64)
    h, w = disp.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xr = xx - sign * np.nan_to_num(disp)
    ok = np.isfinite(disp) & (xr >= 0) & (xr <= w - 1)
    return float(np.abs(gl[ok] - map_coordinates(gr, [yy[ok], xr[ok]], order=1)).mean())


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_stereo_motorcycle_loader_and_convention(scale):
    left, right, disp = stereo_motorcycle(scale)
    h, w = round(500 * scale), round(741 * scale)
    assert left.shape == right.shape == (3, h, w) and disp.shape == (h, w)
    assert left.dtype == torch.float32 and 0 <= float(left.min()) and float(left.max()) <= 1
    assert disp.dtype == np.float32 and not np.isinf(disp).any()
    invalid = np.isnan(disp).mean()
    assert 0.05 < invalid < 0.1  # measured 7.3 % (stored as +inf by scikit-image)
    valid = disp[np.isfinite(disp)]
    assert 7 * scale < valid.min() and valid.max() < 60 * scale
    good, wrong = _grey_diff(left, right, disp, +1), _grey_diff(left, right, disp, -1)
    assert good < 0.045 and wrong > 3 * good, (good, wrong)  # measured 0.029 vs 0.176 at scale 1


def test_stereo_errors():
    disp = np.full((10, 20), 3.0, np.float32)
    disp[2, 4] = np.nan
    kp_l = np.array([[10.2, 5.0], [4.0, 2.0], [25.0, 1.0], [9.6, 4.6]])
    kp_r = np.array([[7.2, 6.0], [1.0, 2.0], [5.0, 1.0], [6.6, 4.6]])
    e = stereo_errors(kp_l, kp_r, np.array([[0, 0], [1, 1], [2, 2], [3, 3]]), disp)
    np.testing.assert_allclose(e[[0, 3]], [1.0, 0.0], atol=1e-6)
    assert np.isnan(e[1]) and np.isnan(e[2])  # invalid disparity; outside the map
    assert stereo_errors(kp_l, kp_r, np.zeros((0, 2), np.int64), disp).shape == (0,)
    with pytest.raises(ValueError, match="disparity"):
        stereo_errors(kp_l, kp_r, np.array([[0, 0]]), disp[0])
    with pytest.raises(ValueError, match="out of range"):
        stereo_errors(kp_l, kp_r, np.array([[0, 9]]), disp)
    with pytest.raises(ValueError, match="scale"):
        stereo_motorcycle(0.0)
    with pytest.raises(TypeError, match="scale"):
        stereo_motorcycle("half")
