"""kpedu.checks: one rule per kind of argument, and error messages that name the argument."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kpedu import checks


def test_points_convert_integers_and_reject_what_is_not_a_coordinate():
    p = checks.points(torch.tensor([[5, 7]]), "kp")
    assert p.dtype == torch.float32 and p.tolist() == [[5.0, 7.0]]
    assert checks.points([[1, 2]], "kp", backend="numpy").dtype == np.float64
    for bad, err in [(torch.zeros(3, 2, dtype=torch.complex64), TypeError), (np.zeros((3, 2), bool), TypeError),
                     ("xy", TypeError), (np.zeros((3, 3)), ValueError), (np.array([[math.inf, 0]]), ValueError),
                     (np.zeros((1, 1, 1, 2)), ValueError)]:
        with pytest.raises(err, match="^kp "):
            checks.points(bad, "kp")
    assert torch.isnan(checks.points([[math.nan, 1]], "kp")).any()
    with pytest.raises(ValueError, match="kp must not contain NaN"):
        checks.points([[math.nan, 1]], "kp", allow_nan=False)


def test_images_follow_one_rule():
    u8 = np.arange(48, dtype=np.uint8).reshape(3, 4, 4)
    assert torch.allclose(checks.image(u8, "img"), torch.from_numpy(u8).float() / 255)
    with pytest.raises(TypeError, match="img must be float in \\[0, 1\\] or uint8"):
        checks.image(u8.astype(np.int32), "img")
    with pytest.raises(TypeError, match="img"):
        checks.image(u8 > 3, "img")
    with pytest.raises(ValueError, match="img must be float in \\[0, 1\\].*divide a 0-255 image by 255"):
        checks.image(u8.astype(np.float32), "img")
    with pytest.raises(ValueError, match="img must be finite"):
        checks.image(np.full((3, 2, 2), np.inf, np.float32), "img")
    with pytest.raises(ValueError, match="img must have 3 channels"):
        checks.image(np.zeros((4, 2, 2), np.float32), "img")
    with pytest.raises(ValueError, match="img is empty"):
        checks.image(np.zeros((3, 0, 2), np.float32), "img")
    noisy = np.clip(np.random.default_rng(0).normal(0.5, 0.4, (3, 8, 8)), -0.9, 1.9).astype(np.float32)
    assert checks.image(noisy, "img").shape == (3, 8, 8), "augmented images slightly outside [0, 1] pass"


@pytest.mark.parametrize("bad,err", [(math.nan, ValueError), (math.inf, ValueError), ("1", TypeError),
                                     (1j, TypeError), (True, TypeError), ([1.0], TypeError), (None, TypeError),
                                     (np.array([1.0, 2.0]), TypeError), (-1.0, ValueError)])
def test_numbers(bad, err):
    with pytest.raises(err, match="^sigma must"):
        checks.number(bad, "sigma", minimum=0.0, min_open=True)


def test_integers_sizes_indices_choices_devices():
    assert checks.integer(np.int64(3), "n") == 3 and checks.integer(4.0, "n") == 4
    assert checks.integer(torch.tensor(5), "n") == 5
    for bad, err in [(2.5, ValueError), (True, TypeError), ("3", TypeError), (math.nan, ValueError), (0, ValueError)]:
        with pytest.raises(err, match="^n must be an integer"):
            checks.integer(bad, "n", minimum=1)
    assert checks.size(64, "size") == (64, 64) and checks.size((32, 48), "size") == (32, 48)
    for bad in [0, -3, (8, 8, 8), "64", 32.5, (8, 0)]:
        with pytest.raises((TypeError, ValueError), match="size"):
            checks.size(bad, "size")
    assert checks.index(-1, 4) == 3 and checks.index(3, 4) == 3
    with pytest.raises(IndexError, match="index -5 is out of range for 4"):
        checks.index(-5, 4)
    with pytest.raises(TypeError, match="index must be an integer"):
        checks.index(1.0, 4)
    assert checks.choice("l2", "metric", ("l2", "cosine")) == "l2"
    with pytest.raises(ValueError, match="metric must be one of 'l2', 'cosine'; got 'l1'"):
        checks.choice("l1", "metric", ("l2", "cosine"))
    with pytest.raises(ValueError, match="images, weights must be on one device"):
        checks.same_device(images=torch.zeros(1, device="meta"), weights=torch.zeros(1))
    assert checks.same_device(a=torch.zeros(1), b=None, c=torch.ones(2)) == torch.device("cpu")


def test_visibility_masks_and_maps():
    assert checks.visibility([2, 0, 1], "visible", (1, 3)).tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match="visible must have shape \\(2, 3\\)"):
        checks.visibility(np.ones(4), "visible", (2, 3))
    with pytest.raises(ValueError, match="visible must not contain NaN"):
        checks.visibility([1.0, math.nan], "visible", (2,))
    assert checks.maps(np.zeros((2, 4, 4)), "heatmaps").dtype == torch.float32
    with pytest.raises(ValueError, match="heatmaps must not contain NaN"):
        checks.maps(np.full((2, 4, 4), math.nan), "heatmaps")
    with pytest.raises(ValueError, match="heatmaps must have shape"):
        checks.maps(np.zeros((4, 4)), "heatmaps")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000)), min_size=1, max_size=20))
def test_integer_points_keep_their_exact_values(pairs):
    p = checks.points(np.array(pairs, dtype=np.int64), "kp", ndim=2, backend="numpy")
    assert np.array_equal(p, np.array(pairs, dtype=np.float64))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_a_uint8_image_equals_the_same_image_over_255(h, w, seed):
    u8 = np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)
    f = checks.image(u8.astype(np.float32) / 255, "img")
    assert torch.equal(checks.image(u8, "img"), f)
