"""Bad inputs to kpedu.codecs (issue 20), through the shared harness, plus the specific bugs
of the issue and property tests of the encode/decode and stride conventions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import Case, assert_ok, parametrize
from kpedu import codecs

KP = torch.tensor([[3.0, 4.5], [10.2, 7.0], [6.0, 12.0]])
VIS = torch.tensor([2, 1, 2])
HM = codecs.encode_heatmaps(KP, None, 16, 2.0)


def _codec(**kw):
    return codecs.GaussianHeatmapCodec(**kw).stride


def _encode(keypoints, visible):
    return codecs.GaussianHeatmapCodec(64, 16, 2.0).encode(keypoints, visible)


def _decode(heatmaps):
    return codecs.GaussianHeatmapCodec(64, 16, 2.0).decode(heatmaps)


STRIDE_EXTRA = [("text", "4", "error"), ("pair with zero", (2, 0), "error"), ("three values", (1, 2, 3), "error"),
                ("bool", True, "error"), ("pair with nan", (2, math.nan), "error"),
                ("pair", (4, 4), "same"), ("numpy scalar", np.float32(4.0), "same"),
                ("tensor", torch.tensor(4.0), "same")]

CASES = [
    Case(codecs.encode_heatmaps, lambda: dict(keypoints=KP, visible=VIS, heatmap_size=16, sigma=2.0),
         {"keypoints": "points", "visible": "visibility", "heatmap_size": "size", "sigma": "positive"},
         extra={"keypoints": [("N, K, 2", KP[None], "runs")]}),
    Case(codecs.decode_argmax, lambda: dict(heatmaps=HM, quarter_offset=True), {"heatmaps": "maps"},
         extra={"heatmaps": [("numpy", HM.numpy(), "same"), ("bool", HM > 0.5, "error")]}),
    Case(codecs.soft_argmax, lambda: dict(heatmaps=HM, beta=1.0, normalize="softmax"),
         {"heatmaps": "maps", "beta": "positive"},
         extra={"normalize": [("unknown", "max", "error"), ("not text", 1, "error")],
                "heatmaps": [("numpy", HM.numpy(), "same")]}),
    Case(codecs.image_to_heatmap, lambda: dict(points=KP, stride=4), {"points": "pred", "stride": "positive"},
         extra={"stride": STRIDE_EXTRA}, skip={"stride": {"list"}}),  # [4, 4] is a valid (s_x, s_y)
    Case(codecs.heatmap_to_image, lambda: dict(points=KP, stride=4), {"points": "pred", "stride": "positive"},
         extra={"stride": STRIDE_EXTRA}, skip={"stride": {"list"}}),  # [4, 4] is a valid (s_x, s_y)
    Case(codecs.GaussianHeatmapCodec, lambda: dict(input_size=64, heatmap_size=16, sigma=2.0, decoder="argmax"),
         {"input_size": "size", "heatmap_size": "size", "sigma": "positive"},
         extra={"decoder": [("unknown", "mean", "error"), ("not text", 0, "error")]}, call=_codec),
    Case(codecs.GaussianHeatmapCodec.encode, lambda: dict(keypoints=KP * 4, visible=VIS),
         {"keypoints": "points", "visible": "visibility"}, call=_encode),
    Case(codecs.GaussianHeatmapCodec.decode, lambda: dict(heatmaps=HM), {"heatmaps": "maps"},
         extra={"heatmaps": [("wrong size", HM[..., :8, :8], "error")]}, call=_decode),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# --- the bugs of issue 20 ------------------------------------------------------------------


def test_integer_coordinates_are_not_truncated():
    out = codecs.image_to_heatmap(torch.tensor([[5, 7]]), 4)
    assert out.dtype == torch.float32
    assert out.tolist() == [[0.875, 1.375]]
    assert codecs.heatmap_to_image(torch.tensor([[1, 2]]), 4).tolist() == [[5.5, 9.5]]
    assert codecs.image_to_heatmap([[5, 7]], 4).tolist() == [[0.875, 1.375]]


def test_float64_tensors_keep_their_precision():
    p = torch.tensor([[5.123456789, 7.0]], dtype=torch.float64)
    assert codecs.image_to_heatmap(p, 4).dtype == torch.float64


def test_points_with_three_values_and_inf_are_refused():
    with pytest.raises(ValueError, match="points must have shape"):
        codecs.image_to_heatmap(np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="points must be finite"):
        codecs.heatmap_to_image(np.array([[np.inf, 0.0]]), 4)
    # NaN is a missing point and stays NaN
    assert np.isnan(codecs.image_to_heatmap(np.array([[np.nan, 1.0]]), 4)[0, 0])


def test_stride_as_text_is_a_clear_error():
    with pytest.raises(TypeError, match="stride"):
        codecs.image_to_heatmap(np.zeros((1, 2)), "4")


def test_complex_and_bool_inputs_are_refused():
    with pytest.raises(TypeError, match="keypoints"):
        codecs.encode_heatmaps(np.array([[1 + 2j, 3.0]]), None, 8, 1.0)
    with pytest.raises(TypeError, match="keypoints"):
        codecs.encode_heatmaps(np.ones((2, 2), bool), None, 8, 1.0)
    with pytest.raises(TypeError, match="heatmaps"):
        codecs.decode_argmax(torch.zeros(1, 4, 4, dtype=torch.complex64))


def test_sizes_and_sigma_given_as_text_are_refused():
    with pytest.raises(TypeError, match="heatmap_size"):
        codecs.encode_heatmaps([[1.0, 1.0]], None, "64", 2.0)
    with pytest.raises(TypeError, match="sigma"):
        codecs.encode_heatmaps([[1.0, 1.0]], None, 64, "2")


def test_inf_heatmaps_are_refused():
    with pytest.raises(ValueError, match="heatmaps must be finite"):
        codecs.decode_argmax(torch.tensor([[[0.0, math.inf]]]))


# --- properties ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 15)), min_size=1, max_size=5),
       st.floats(0.5, 4.0), st.booleans())
def test_encode_then_decode_argmax_returns_pixel_centres_exactly(points, sigma, quarter):
    kp = torch.tensor(points, dtype=torch.float32)
    coords, scores = codecs.decode_argmax(codecs.encode_heatmaps(kp, None, (16, 24), sigma), quarter)
    assert torch.equal(coords, kp)
    assert torch.allclose(scores, torch.ones(len(points)))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 300, allow_nan=False), st.floats(-50, 300, allow_nan=False)),
                min_size=1, max_size=6),
       st.floats(0.25, 16), st.floats(0.25, 16))
def test_image_to_heatmap_and_heatmap_to_image_are_inverse(points, sx, sy):
    p = np.array(points)
    np.testing.assert_allclose(codecs.heatmap_to_image(codecs.image_to_heatmap(p, (sx, sy)), (sx, sy)), p,
                               atol=1e-9)
    np.testing.assert_allclose(codecs.image_to_heatmap(codecs.heatmap_to_image(p, (sx, sy)), (sx, sy)), p,
                               atol=1e-9)
