"""Bad inputs to kpedu.d2net (issue 20), through the shared harness ``tests/badinput.py``,
plus the explicit regressions of this area and property tests.

Every public function and class of ``kpedu/d2net/*.py`` that takes arrays, sizes or
numbers is listed in :data:`CASES` with tiny good arguments (16 x 16 images, the
narrowest network, 3-5 keypoints). Training and evaluation entry points are checked only
up to the moment they would start their work (the expensive callee is replaced by a
sentinel that stops the call).
"""
from __future__ import annotations

import functools
import importlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import Case, assert_ok, parametrize, gen as _gen, until as _until
from kpedu.d2net import baselines, detection, loss, matching
from kpedu.d2net import experiment as E
from kpedu.d2net.matching import Features
from kpedu.d2net.model import D2Net

X = importlib.import_module("kpedu.d2net.extract")  # the package's `extract` is the function of that name



@functools.lru_cache(maxsize=None)
def _net() -> D2Net:
    torch.manual_seed(0)
    return D2Net(width=0.0625).eval()  # 8, 8, 16, 32 channels: the narrowest network


def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=_gen(seed))


def _feats(*shape, seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed))


def _features(n: int = 3, dim: int = 4, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    return Features(rng.uniform(0, 30, (n, 2)), rng.normal(size=(n, dim)), rng.uniform(size=n))


@functools.lru_cache(maxsize=None)
def _sets():
    return E.evaluation_sets("ci", n=1, size=32, seed=0)


def _with_nan(a, where=0):
    a = np.array(a, dtype=np.float64, copy=True)
    a.reshape(-1)[where] = np.nan
    return a


_H3 = np.eye(3)
_SCALES_BAD = [("zero", (0.0,), "error"), ("nan", (math.nan,), "error"), ("inf", (math.inf,), "error"),
               ("empty", (), "error"), ("text", "1", "error"), ("complex", (1j,), "error")]
_THRESHOLDS_BAD = [("nan", [math.nan], "error"), ("negative", [-1.0], "error"), ("empty", [], "error"),
                   ("text", "1", "error"), ("complex", [1 + 1j], "error")]
_DESC_BAD = [("nan", _with_nan(np.ones((3, 4))), "error"), ("inf", np.full((3, 4), np.inf), "error"),
             ("complex", np.ones((3, 4), np.complex64), "error"), ("text", "desc", "error"),
             ("bool", np.ones((3, 4), bool), "error"), ("1-d", np.ones(4), "error")]

CASES = [
    # -- model ---------------------------------------------------------------------------
    Case(D2Net, lambda: dict(width=0.0625, in_channels=3), {"width": "positive", "in_channels": "count"},
         extra={"width": [("above 4", 5.0, "error")]}, call=lambda **kw: D2Net(**kw).channels),
    Case(D2Net.forward, lambda: dict(images=_image()[None]), {"images": "image+device"},
         call=lambda images: _net()(images)),
    Case(D2Net.cell_to_image, lambda: dict(cells=torch.tensor([[0.0, 1.0], [2.0, 3.0]])), {"cells": "pred"},
         skip={"cells": {"extra dims"}},  # any leading shape (..., 2) is mapped
         call=lambda cells: _net().cell_to_image(cells)),
    Case(D2Net.image_to_cell, lambda: dict(points=torch.tensor([[3.5, 7.5], [11.5, 15.5]])), {"points": "pred"},
         skip={"points": {"extra dims"}},  # any leading shape (..., 2) is mapped
         call=lambda points: _net().image_to_cell(points)),
    # -- detection -----------------------------------------------------------------------
    Case(detection.detection_maps, lambda: dict(features=_feats(1, 4, 5, 6)), {"features": "maps"}),
    Case(detection.descriptors, lambda: dict(features=_feats(1, 4, 5, 6)), {"features": "maps"}),
    Case(detection.edge_mask, lambda: dict(maps=_feats(1, 4, 5, 6), edge_threshold=5.0),
         {"maps": "maps", "edge_threshold": "positive"}, extra={"edge_threshold": [("one", 1.0, "error")]}),
    Case(detection.hard_detection, lambda: dict(features=_feats(1, 4, 5, 6), edge_threshold=5.0),
         {"features": "maps", "edge_threshold": "positive"}, extra={"edge_threshold": [("one", 1.0, "error")]}),
    Case(detection.soft_detection_terms, lambda: dict(features=_feats(1, 4, 5, 6), temperature=2.0, eps=1e-12),
         {"features": "maps", "temperature": "positive", "eps": "positive"},
         extra={"temperature": [("unknown text", "min", "error")]}),
    Case(detection.soft_detection_scores, lambda: dict(features=_feats(1, 4, 5, 6), temperature=2.0),
         {"features": "maps", "temperature": "positive"}, extra={"temperature": [("unknown text", "min", "error")]}),
    # -- loss ------------------------------------------------------------------------------
    Case(loss.grid_correspondences, lambda: dict(shape1=(4, 4), shape2=(4, 5), H=_H3.copy(), stride=4, offset=3.5),
         {"shape1": "size", "shape2": "size", "stride": "positive", "offset": "number"},
         extra={"H": [("nan", _with_nan(_H3), "error"), ("2x2", np.eye(2), "error"), ("text", "H", "error"),
                      ("complex", _H3.astype(complex), "error")]}),
    Case(loss.sample_cells, lambda: dict(maps=_feats(2, 4, 5), pos=torch.tensor([[1.0, 2.0], [0.5, 1.5], [3.0, 0.0]])),
         {"maps": "maps+device", "pos": "points+device"}),
    Case(loss.d2_loss, lambda: dict(features1=_feats(1, 8, 6, 6), features2=_feats(1, 8, 6, 6, seed=1),
                                    H=torch.eye(3, dtype=torch.float64)[None], stride=4, offset=3.5, margin=1.0,
                                    safe_radius=1.0, temperature="max", max_correspondences=20, negative_pool=10),
         {"features1": "maps+device", "features2": "maps", "stride": "positive", "offset": "number",
          "margin": "positive", "safe_radius": "nonnegative", "temperature": "positive",
          "max_correspondences": "count", "negative_pool": "count"},
         extra={"H": [("nan", torch.tensor(_with_nan(_H3))[None], "error"), ("3x3", torch.eye(3), "error")]}),
    # -- matching --------------------------------------------------------------------------
    Case(Features, lambda: dict(keypoints=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), descriptors=np.ones((3, 4)),
                                scores=np.array([0.3, 0.2, 0.1]), scales=np.ones(3)),
         {"keypoints": "pred"},
         extra={"descriptors": [d for d in _DESC_BAD if d[0] != "1-d"],
                "scores": [("nan", np.array([0.3, np.nan, 0.1]), "error"), ("complex", np.ones(3, complex), "error"),
                           ("text", "abc", "error")],
                "scales": [("nan", np.array([1.0, np.nan, 1.0]), "error"), ("inf", np.full(3, np.inf), "error")]}),
    Case(Features.top, lambda: dict(k=2), {"k": "index"}, call=lambda k: _features().top(k)),
    Case(matching.mutual_nearest_neighbors, lambda: dict(desc1=_feats(4, 3).numpy(), desc2=_feats(5, 3, seed=1).numpy(),
                                                         metric="l2", chunk=2),
         {"chunk": "count"},
         extra={"desc1": _DESC_BAD + [("other container", torch.as_tensor(_feats(4, 3)), "same")],
                "desc2": _DESC_BAD,
                "metric": [("unknown", "cosine", "error"), ("number", 3, "error")]}),
    Case(matching.match, lambda: dict(f1=_features(), f2=_features(seed=1)), {},
         extra={"f1": [("array", np.zeros((3, 2)), "error"), ("nan keypoint", Features(
             _with_nan(np.ones((3, 2))), np.ones((3, 4)), np.ones(3)), "runs")],
                "f2": [("text", "features", "error")]}),
    Case(matching.evaluate_matching, lambda: dict(features1=[_features()], features2=[_features()],
                                                  homographies=[_H3.copy()], thresholds=[1.0, 3.0]),
         {},
         extra={"thresholds": _THRESHOLDS_BAD,
                "homographies": [("nan", [_with_nan(_H3)], "error"), ("2x2", [np.eye(2)], "error"),
                                 ("text", ["H"], "error")],
                "features1": [("nan keypoint", [Features(_with_nan(_features().keypoints), _features().descriptors,
                                                         _features().scores)], "runs"),
                              ("array", [np.zeros((3, 2))], "error")]}),
    Case(matching.repeatability, lambda: dict(kp1=np.array([[1.0, 2.0], [10.0, 4.0], [5.0, 6.0]]),
                                              kp2=np.array([[1.0, 2.5], [10.0, 4.0], [20.0, 20.0]]),
                                              H=_H3.copy(), shape1=(32, 32), shape2=(32, 32), threshold=3.0),
         {"kp1": "pred", "kp2": "pred", "shape1": "size", "shape2": "size", "threshold": "nonnegative"},
         skip={"shape1": {"three values"}, "shape2": {"three values"}},  # an image's (C, H, W) shape
         extra={"H": [("nan", _with_nan(_H3), "error"), ("singular", np.zeros((3, 3)), "error"),
                      ("2x2", np.eye(2), "error")]}),
    # -- extraction ------------------------------------------------------------------------
    Case(X.resize_image, lambda: dict(image=_image()[None], scale=0.5, multiple=8),
         {"image": "image", "scale": "positive", "multiple": "count"},
         skip={"image": {"channels+1", "2 channels"}}),  # any number of channels is resized
    Case(X.refine_positions, lambda: dict(maps=_feats(1, 4, 5, 5), b=torch.zeros(2, dtype=torch.long),
                                          k=torch.tensor([0, 3]), i=torch.tensor([1, 2]), j=torch.tensor([2, 4])),
         {"maps": "maps"},
         extra={"k": [("float", torch.tensor([0.0, 3.0]), "error"), ("out of range", torch.tensor([0, 4]), "error")],
                "i": [("wrong length", torch.tensor([1, 2, 3]), "error"), ("negative", torch.tensor([-1, 2]), "error")],
                "j": [("text", "j", "error")]}),
    Case(X.pyramid_detections, lambda: dict(image=_image(), scales=(0.5, 1.0), edge_threshold=5.0, refine=True),
         {"image": "image+device", "edge_threshold": "positive"},
         extra={"scales": _SCALES_BAD, "edge_threshold": [("one", 1.0, "error")]},
         call=lambda **kw: X.pyramid_detections(_net(), **kw)),
    Case(X.extract, lambda: dict(image=_image(), scales=(1.0,), max_keypoints=5, edge_threshold=5.0),
         {"image": "image+device", "max_keypoints": "count", "edge_threshold": "positive"},
         extra={"scales": _SCALES_BAD}, call=lambda **kw: X.extract(_net(), **kw)),
    # -- baselines -------------------------------------------------------------------------
    Case(baselines.to_gray_uint8, lambda: dict(image=_image()), {"image": "image"}),
    Case(baselines.classical_features, lambda: dict(image=_image(32), method="sift", max_features=20),
         {"image": "image", "max_features": "count"},
         extra={"method": [("unknown", "surf", "error"), ("number", 3, "error")]}),
    # -- experiment ------------------------------------------------------------------------
    Case(E.make_model, lambda: dict(width=0.0625), {"width": "positive"},
         call=lambda **kw: E.make_model(**kw).channels),
    Case(E.negative_pool_at, lambda: dict(step=3), {"step": "index"}),
    Case(E.train_d2net, lambda: dict(steps=2, seed=0, log_every=1, save_every=1),
         {"steps": "count", "seed": "index", "log_every": "count", "save_every": "count"},
         call=_until(E, "fit", lambda **kw: E.train_d2net(_net(), progress=False, **kw))),
    Case(E.evaluation_sets, lambda: dict(profile="ci", n=1, size=32, seed=0),
         {"n": "count", "size": "count", "seed": "index"},
         call=_until(E, "make_pairs", E.evaluation_sets)),
    Case(E.features_for, lambda: dict(method="sift", image=_image(32), max_keypoints=10),
         {"image": "image", "max_keypoints": "count"}, extra={"method": [("unknown", "surf", "error")]}),
    Case(E.features_for, lambda: dict(method="d2net", image=_image(), max_keypoints=10),
         {"image": "image+device", "max_keypoints": "count"},
         call=lambda **kw: E.features_for(model=_net(), **kw)),
    Case(E.evaluate, lambda: dict(methods=("sift",), max_keypoints=10), {"max_keypoints": "count"},
         extra={"methods": [("unknown", ("surf",), "error"), ("a text", "sift", "error")]},
         call=lambda **kw: E.evaluate(None, _sets(), **kw)),
    Case(E.stereo_check, lambda: dict(methods=("orb",), scale=0.2, thresholds=(1.0, 3.0)), {"scale": "positive"},
         extra={"thresholds": _THRESHOLDS_BAD, "methods": [("unknown", ("surf",), "error")]},
         call=_until(E, "stereo_motorcycle", lambda **kw: E.stereo_check(None, **kw))),
    Case(E.run_recipe, lambda: dict(steps=2, seed=0), {"steps": "count", "seed": "index"},
         call=_until(E, "train_d2net", lambda **kw: E.run_recipe(_net(), "ci", progress=False, sets=_sets(), **kw))),
    Case(E.extraction_cost, lambda: dict(method="sift", size=64, width=0.25, repeats=2, threads=1),
         {"size": "count", "width": "positive", "repeats": "count", "threads": "count"},
         extra={"size": [("not a multiple of 8", 36, "error"), ("too small", 16, "error")],
                "method": [("unknown", "surf", "error")]},
         call=_until(E.subprocess, "run", E.extraction_cost)),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# --- the bugs of issue 20, one test each ---------------------------------------------------


def test_uint8_image_gives_the_same_keypoints_as_the_image_divided_by_255():
    u8 = (torch.rand(3, 32, 32, generator=_gen(3)) * 255).round().to(torch.uint8)
    as_float = u8.float() / 255
    for scales in ((1.0,), (0.5, 1.0, 2.0)):
        a, b = X.extract(_net(), u8, scales), X.extract(_net(), as_float, scales)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-5)
        np.testing.assert_allclose(a.descriptors, b.descriptors, atol=1e-5)
    # in float64: a float32 q / 255 can round the other way at a luma of exactly k + 0.5
    np.testing.assert_array_equal(baselines.to_gray_uint8(u8), baselines.to_gray_uint8(u8.double() / 255))
    torch.testing.assert_close(_net()(u8[None]), _net()(as_float[None]))
    f_u8 = E.features_for("d2net", u8.numpy(), _net())
    np.testing.assert_allclose(f_u8.keypoints, E.features_for("d2net", as_float, _net()).keypoints, atol=1e-5)


def test_a_0_255_float_image_is_an_error_not_other_keypoints():
    with pytest.raises(ValueError, match="image"):
        X.extract(_net(), _image() * 255)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_threshold_is_an_error(value):
    f = _feats(1, 4, 8, 8)
    with pytest.raises(ValueError, match="edge_threshold"):
        detection.hard_detection(f, edge_threshold=value)
    with pytest.raises(ValueError, match="edge_threshold"):
        detection.edge_mask(f, value)
    with pytest.raises(ValueError, match="temperature"):
        detection.soft_detection_scores(f, value)
    with pytest.raises(ValueError, match="edge_threshold"):
        X.extract(_net(), _image(), edge_threshold=value)


def test_nan_in_feature_maps_is_an_error():
    f = _feats(1, 4, 8, 8)
    f[0, 1, 2, 3] = math.nan
    for fn in (detection.hard_detection, detection.soft_detection_scores, detection.detection_maps,
               detection.descriptors):
        with pytest.raises(ValueError, match="features"):
            fn(f)


@pytest.mark.parametrize("name, value", [("stride", 0), ("stride", -4), ("stride", math.nan), ("offset", math.nan),
                                         ("margin", 0.0), ("margin", math.inf), ("safe_radius", -1.0),
                                         ("safe_radius", math.nan), ("max_correspondences", 0),
                                         ("negative_pool", 0), ("negative_pool", 2.5)])
def test_d2_loss_rejects_bad_numbers(name, value):
    kw = dict(features1=_feats(1, 8, 6, 6), features2=_feats(1, 8, 6, 6, seed=1),
              H=torch.eye(3, dtype=torch.float64)[None], stride=4, offset=3.5)
    kw[name] = value
    with pytest.raises(ValueError, match=name):
        loss.d2_loss(**kw)


def test_a_nan_keypoint_is_never_a_correct_match():
    f = _features(4, 8, seed=2)
    perfect = matching.evaluate_matching([f], [f], [_H3], thresholds=[1.0])
    assert perfect["mma"] == [1.0] and perfect["n_matches"] == 4
    kp = f.keypoints.copy()
    kp[1] = np.nan  # a missing prediction: its descriptor still matches, its position cannot be right
    missing = Features(kp, f.descriptors, f.scores)
    with pytest.warns(RuntimeWarning, match="1 of 4 matches"):
        r = matching.evaluate_matching([missing], [f], [_H3], thresholds=[1.0, 1000.0])
    assert r["mma"] == [0.75, 0.75] and np.isinf(r["errors"][0][1])
    with pytest.warns(RuntimeWarning):
        r2 = matching.evaluate_matching([f], [missing], [_H3], thresholds=[1000.0])
    assert r2["mma"] == [0.75]


def test_repeatability_counts_a_nan_keypoint_as_not_repeated():
    kp = np.array([[1.0, 2.0], [10.0, 4.0], [5.0, 6.0], [20.0, 20.0]])
    assert matching.repeatability(kp, kp, _H3, (32, 32), (32, 32)) == 1.0
    missing = kp.copy()
    missing[2] = np.nan
    with pytest.warns(RuntimeWarning, match="1 of 4"):
        r = matching.repeatability(missing, kp, _H3, (32, 32), (32, 32))
    assert r == 0.75
    with pytest.warns(RuntimeWarning):
        assert matching.repeatability(kp, missing, _H3, (32, 32), (32, 32)) == 0.75


def test_nan_descriptors_are_an_error():
    d = np.ones((3, 4))
    d[1, 2] = np.nan
    with pytest.raises(ValueError, match="desc1"):
        matching.mutual_nearest_neighbors(d, np.ones((3, 4)))
    with pytest.raises(ValueError, match="descriptors"):
        Features(np.zeros((3, 2)), d, np.ones(3))


def test_nothing_is_silently_truncated():
    with pytest.raises(ValueError, match="step"):
        E.negative_pool_at(250.5)
    with pytest.raises(ValueError, match="max_features"):
        baselines.classical_features(_image(32), "sift", max_features=10.5)
    with pytest.raises(ValueError, match="shape1"):
        matching.repeatability(np.zeros((1, 2)), np.zeros((1, 2)), _H3, (32.5, 32), (32, 32))
    with pytest.raises(TypeError, match="thresholds"):
        matching.evaluate_matching([_features()], [_features()], [_H3], thresholds="15")


def test_complex_descriptors_are_not_cast_to_their_real_part():
    with pytest.raises(TypeError, match="desc1"):
        matching.mutual_nearest_neighbors(np.ones((3, 4)) * (1 + 1j), np.ones((3, 4)))


def test_model_and_image_on_different_devices():
    with pytest.raises(ValueError, match="images"):
        _net()(_image()[None].to("meta"))
    with pytest.raises(ValueError, match="image"):
        X.extract(_net(), _image().to("meta"))


# --- properties ------------------------------------------------------------------------

_small_ints = st.integers(-6, 6)


@st.composite
def _descriptor_sets(draw):
    d = draw(st.integers(1, 5))
    n1, n2 = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    a = np.array(draw(st.lists(_small_ints, min_size=n1 * d, max_size=n1 * d)), np.float32).reshape(n1, d)
    b = np.array(draw(st.lists(_small_ints, min_size=n2 * d, max_size=n2 * d)), np.float32).reshape(n2, d)
    return a, b


@settings(max_examples=25, deadline=None)
@given(_descriptor_sets(), st.integers(1, 8))
def test_mutual_nearest_neighbours_are_symmetric(sets, chunk):
    """Swapping the two descriptor sets swaps the two columns of the matches (small
    integer descriptors: every distance, and so every tie, is exact in float32)."""
    a, b = sets
    m12 = matching.mutual_nearest_neighbors(a, b, chunk=chunk)
    m21 = matching.mutual_nearest_neighbors(b, a, chunk=chunk)
    assert sorted(map(tuple, m12.tolist())) == sorted(map(tuple, m21[:, ::-1].tolist()))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 31 - 1))
def test_hamming_mutual_nearest_neighbours_are_symmetric(n1, n2, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (n1, 2), dtype=np.uint8)
    b = rng.integers(0, 4, (n2, 2), dtype=np.uint8)
    m12 = matching.mutual_nearest_neighbors(a, b, "hamming")
    m21 = matching.mutual_nearest_neighbors(b, a, "hamming")
    assert sorted(map(tuple, m12.tolist())) == sorted(map(tuple, m21[:, ::-1].tolist()))


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.d2net that takes arrays, sizes or numbers has a case."""
    from kpedu.d2net import baselines as B, detection as D, loss as L, matching as M, model as MO
    XX = X

    covered = {c.func for c in CASES}
    without = {"load_model", "d2_loss_fn"}  # no arrays or numbers of their own: a model, a batch dict
    for mod in (B, D, XX, L, M, MO, E):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and name not in without:
                assert obj in covered, f"{mod.__name__}.{name} has no bad-input case"
