"""Bad inputs to kpedu.fse (issue 20), through the shared harness ``tests/badinput.py``,
plus the explicit regressions of this area and property tests.

Every public function and class of ``kpedu/fse/*.py`` that takes arrays, sizes or numbers
is listed in :data:`CASES` with tiny good arguments (8 x 8 or 16 x 16 images, a two-
landmark network one level deep). Training entry points are checked only up to the moment
they would start training (the trainer is replaced by a sentinel that stops the call).
"""
from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kpedu.data
import kpedu.train
from badinput import Case, assert_ok, parametrize, gen as _gen, until as _until
from kpedu.data import make_faces
from kpedu.fse import evaluate as V, loss as L, model as M, tps as T
from kpedu.fse import experiment as E



@functools.lru_cache(maxsize=None)
def _net() -> M.LandmarkNet:
    torch.manual_seed(0)
    return M.LandmarkNet(num_landmarks=2, width=2, depth=1, out_stride=2).eval()


@functools.lru_cache(maxsize=None)
def _faces():
    return make_faces(6, 16, seed=0)


def _images(b: int = 1, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=_gen(seed))


def _probs(b=1, k=3, h=4, w=4, seed=0) -> torch.Tensor:
    return torch.softmax(torch.randn(b, k, h * w, generator=_gen(seed)), -1).view(b, k, h, w)


_SRC = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0], [2.0, 1.0]]])


@functools.lru_cache(maxsize=None)
def _tps() -> T.ThinPlateSpline:
    src = _SRC / 4 - 0.5
    return T.ThinPlateSpline.fit(src, src + 0.05 * torch.randn(src.shape, generator=_gen(1)))


def _warp(sampling: bool = True) -> T.TPSWarp:
    return T.random_tps(1, 16, generator=_gen(2), sampling=sampling)


def _landmarks(n=6, k=2, seed=0, scale=16.0):
    return np.random.default_rng(seed).uniform(0, scale, (n, k, 2))


def _with_nan(a, where=0):
    a = np.array(a, dtype=np.float64, copy=True)
    a.reshape(-1)[where] = np.nan
    return a


_EYES_BAD = [("out of range", (0, 7), "error"), ("the same", (1, 1), "error"), ("fraction", (0.5, 1), "error"),
             ("text", "ab", "error"), ("one index", (0,), "error")]
_DIVERSITY_BAD = [("unknown", "mean", "error"), ("number", 3, "error")]
def _fse_loss_good() -> dict:
    return dict(x1=_images(seed=1), x2=_images(seed=2), diversity="max", diversity_weight=1.0, alignment_scale=1.0,
                diversity_pool=2)

CASES = [
    # -- tps ---------------------------------------------------------------------------------
    Case(T.tps_kernel, lambda: dict(r2=torch.tensor([0.0, 1.0, 4.0])), {},
         extra={"r2": [("nan", torch.tensor([0.0, math.nan]), "error"), ("inf", torch.tensor([math.inf]), "error"),
                       ("negative", torch.tensor([-1.0, 1.0]), "error"),
                       ("complex", torch.ones(2, dtype=torch.complex64), "error"),
                       ("text", "r2", "error"), ("other container", np.array([0.0, 1.0, 4.0]), "same"),
                       ("empty", torch.zeros(0), "runs")]}),
    Case(T.ThinPlateSpline, lambda: dict(control=_SRC.clone(), weights=torch.zeros(1, 5, 2),
                                         affine=torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])),
         {"control": "points"},
         extra={"weights": [("nan", torch.tensor(_with_nan(np.zeros((1, 5, 2)))), "error"),
                            ("wrong shape", torch.zeros(1, 4, 2), "error"), ("text", "w", "error")],
                "affine": [("inf", torch.full((1, 3, 2), math.inf), "error"),
                           ("wrong shape", torch.eye(3)[None], "error"),
                           ("complex", torch.ones(1, 3, 2, dtype=torch.complex64), "error")]},
         call=lambda **kw: T.ThinPlateSpline(**kw)(_SRC)),
    Case(T.ThinPlateSpline.fit, lambda: dict(src=_SRC.clone(), dst=_SRC + 0.5, regularization=0.0),
         {"src": "points", "dst": "points", "regularization": "nonnegative"},
         call=lambda **kw: T.ThinPlateSpline.fit(**kw)(_SRC)),
    Case(T.ThinPlateSpline.__call__, lambda: dict(points=torch.tensor([[[0.1, 0.2], [0.3, -0.4]]])),
         {"points": "points+device"}, call=lambda points: _tps()(points)),
    Case(T.ThinPlateSpline.jacobian, lambda: dict(points=torch.tensor([[[0.1, 0.2], [0.3, -0.4]]])),
         {"points": "points+device"}, call=lambda points: _tps().jacobian(points)),
    Case(T.ThinPlateSpline.value_and_jacobian, lambda: dict(points=torch.tensor([[[0.1, 0.2], [0.3, -0.4]]])),
         {"points": "points+device"}, call=lambda points: _tps().value_and_jacobian(points)),
    Case(T.TPSWarp, lambda: dict(image_size=16, newton_steps=20, tol=1e-3),
         {"image_size": "size", "newton_steps": "count", "tol": "positive"},
         call=lambda **kw: vars(T.TPSWarp(_tps(), **kw))),
    Case(T.TPSWarp.fit, lambda: dict(src=_SRC * 3, dst=_SRC * 3 + 1, image_size=16, regularization=0.0),
         {"src": "points", "dst": "points", "image_size": "size", "regularization": "nonnegative"},
         call=lambda **kw: T.TPSWarp.fit(**kw).points(_SRC)),
    Case(T.TPSWarp.points, lambda: dict(points=torch.tensor([[[3.0, 4.0], [10.0, 12.0]]])), {"points": "points+device"},
         call=lambda points: _warp().points(points)),
    Case(T.TPSWarp.inverse_points, lambda: dict(points=torch.tensor([[[3.0, 4.0], [10.0, 12.0]]])),
         {"points": "points+device"}, call=lambda points: _warp(False).inverse_points(points)),
    Case(T.TPSWarp.jacobian, lambda: dict(points=torch.tensor([[[3.0, 4.0], [10.0, 12.0]]])), {"points": "points"},
         call=lambda points: _warp().jacobian(points)),
    Case(T.TPSWarp.min_jacobian_determinant, lambda: dict(step=4), {"step": "count"},
         call=lambda step: _warp().min_jacobian_determinant(step)),
    Case(T.Warp.sampling_grid, lambda: dict(out_size=8), {"out_size": "size"},
         call=lambda out_size: _warp().sampling_grid(out_size)),
    Case(T.Warp.warp_images, lambda: dict(images=_images(size=16), padding_mode="reflection", mode="bilinear",
                                          out_size=16),
         {"images": "image", "out_size": "size"},
         skip={"images": {"channels+1", "2 channels"}},  # any number of channels is resampled
         extra={"padding_mode": [("unknown", "mirror", "error")], "mode": [("unknown", "cubic", "error")]},
         call=lambda **kw: _warp().warp_images(**kw)),
    Case(T.random_tps, lambda: dict(batch=2, image_size=16, strength=1.0, rotation=10.0, scale=(0.9, 1.1),
                                    translation=0.05, grid=3, displacement=0.06),
         {"batch": "count", "image_size": "size", "strength": "nonnegative", "rotation": "nonnegative",
          "translation": "nonnegative", "grid": "count", "displacement": "nonnegative"},
         extra={"grid": [("one", 1, "error")],
                "scale": [("nan", math.nan, "error"), ("zero", 0.0, "error"), ("reversed", (1.1, 0.9), "error"),
                          ("text", "1", "error"), ("three values", (0.9, 1.0, 1.1), "error"),
                          ("complex", 1j, "error")]},
         call=lambda **kw: T.random_tps(**kw).points(torch.tensor([[[3.0, 4.0]], [[10.0, 12.0]]]))),
    Case(T.pixel_to_normalized, lambda: dict(points=torch.tensor([[[3.0, 4.0], [10.0, 12.0]]]), image_size=16),
         {"points": "pred", "image_size": "size"},
         skip={"points": {"extra dims"}}),  # any leading shape (..., 2) is mapped
    Case(T.normalized_to_pixel, lambda: dict(points=torch.tensor([[[0.5, -0.5], [0.0, 1.0]]]), image_size=16),
         {"points": "pred", "image_size": "size"},
         skip={"points": {"extra dims"}}),  # any leading shape (..., 2) is mapped
    Case(T.pixel_grid, lambda: dict(image_size=4, batch=2), {"image_size": "size", "batch": "count"}),
    # -- losses ------------------------------------------------------------------------------
    Case(L.alignment_loss, lambda: dict(landmarks_warped=torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]),
                                        landmarks=torch.tensor([[[1.5, 2.0], [3.0, 3.0]]])),
         {"landmarks_warped": "points+device", "landmarks": "points"},
         # a differentiable loss takes tensors (numpy arrays have no gradient): TypeError
         skip={"landmarks_warped": {"other container"}, "landmarks": {"other container"}}),
    Case(L.diversity_loss, lambda: dict(probs=_probs(), mode="max", check=True), {"probs": "maps"},
         extra={"mode": [("unknown", "mean", "error"), ("number", 1, "error")]}),
    # -- model -------------------------------------------------------------------------------
    Case(M.UNetBackbone, lambda: dict(out_channels=2, width=2, depth=1, out_stride=2),
         {"out_channels": "count", "width": "count", "depth": "count", "out_stride": "count"},
         extra={"out_stride": [("not a power of 2", 3, "error"), ("above 2**depth", 4, "error")]},
         call=lambda **kw: sum(p.numel() for p in M.UNetBackbone(**kw).parameters())),
    Case(M.LandmarkNet, lambda: dict(num_landmarks=2, backbone="unet", width=2, depth=1, out_stride=2, beta=1.0),
         {"num_landmarks": "count", "width": "count", "depth": "count", "out_stride": "count", "beta": "positive"},
         extra={"backbone": [("unknown", "resnet", "error"), ("number", 1, "error")]},
         call=lambda **kw: sum(p.numel() for p in M.LandmarkNet(**kw).parameters())),
    Case(M.LandmarkNet.forward, lambda: dict(images=_images()), {"images": "image+device"},
         call=lambda images: _net()(images)),
    Case(M.LandmarkNet.detect, lambda: dict(images=_images()), {"images": "image+device"},
         extra={"scores": [("nan", torch.full((1, 2, 4, 4), math.nan), "error"),
                           ("3-d", torch.zeros(2, 4, 4), "error")]},
         call=lambda **kw: _net().detect(**kw)),
    # -- evaluation --------------------------------------------------------------------------
    Case(V.fit_regressor, lambda: dict(learned=_landmarks(), annotated=_landmarks(k=3, seed=1), ridge=0.0),
         {"learned": "pred", "annotated": "points", "ridge": "nonnegative"}),
    Case(V.apply_regressor, lambda: dict(learned=_landmarks(), regressor=np.ones((4, 6)) / 4),
         {"learned": "pred"},
         extra={"regressor": [("nan", _with_nan(np.ones((4, 6))), "error"), ("wrong shape", np.ones((6, 4)), "error"),
                              ("complex", np.ones((4, 6), complex), "error"), ("text", "R", "error"),
                              ("other container", torch.ones(4, 6) / 4, "same")]}),
    Case(V.inter_ocular, lambda: dict(annotated=_landmarks(k=3), eyes=(0, 1)), {"annotated": "points"},
         extra={"eyes": _EYES_BAD}),
    Case(V.regression_nme, lambda: dict(train_learned=_landmarks(), train_annotated=_landmarks(k=3, seed=1),
                                        test_learned=_landmarks(seed=2), test_annotated=_landmarks(k=3, seed=3),
                                        eyes=(0, 1), ridge=0.0),
         {"train_learned": "pred", "train_annotated": "points", "test_learned": "pred", "test_annotated": "points",
          "ridge": "nonnegative"},
         extra={"eyes": _EYES_BAD}),
    # -- experiment --------------------------------------------------------------------------
    Case(E.make_faces_split, lambda: dict(n=2, seed=0, image_size=16), {"n": "count", "seed": "index"},
         extra={"image_size": [("fraction", 16.5, "error"), ("zero", 0, "error"), ("text", "16", "error"),
                               ("too small", 8, "error")]},
         call=_until(kpedu.data, "make_faces", E.make_faces_split)),
    Case(E.make_pairs, lambda: dict(images=_images(size=16), strength=1.0),
         {"images": "image", "strength": "nonnegative"},
         call=lambda **kw: E.make_pairs(generator=_gen(3), **kw)["x2"]),
    Case(E.pool_probs, lambda: dict(probs=_probs(), pool=2), {"probs": "maps", "pool": "count"}),
    Case(E.fse_loss, _fse_loss_good,
         {"x1": "image+device", "x2": "image", "diversity_weight": "nonnegative", "alignment_scale": "positive",
          "diversity_pool": "count"},
         extra={"diversity": _DIVERSITY_BAD},
         call=lambda **kw: E.fse_loss(_net(), g2=T.random_tps(1, 8, generator=_gen(4)), **kw)[0]),
    Case(E.train_fse, lambda: dict(steps=2, batch_size=2, lr=1e-3, seed=0, diversity="max", diversity_weight=1.0,
                                   log_every=1, diversity_pool=2),
         {"steps": "count", "batch_size": "count", "lr": "positive", "seed": "index", "diversity_weight": "nonnegative",
          "log_every": "count", "diversity_pool": "count"},
         extra={"diversity": _DIVERSITY_BAD},
         call=_until(kpedu.train, "fit",
                     lambda **kw: E.train_fse(_net(), _faces(), device="cpu", progress=False, **kw))),
    Case(E.detect_landmarks, lambda: dict(images=_faces().images[:3], batch_size=2, tta=1, tta_strength=0.5, seed=0),
         {"images": "image+device", "batch_size": "count", "tta": "index", "tta_strength": "nonnegative",
          "seed": "index"},
         call=lambda **kw: E.detect_landmarks(_net(), **kw)),
    Case(E.evaluate, lambda: dict(points=(0, 1, 2), tta=0), {"tta": "index"},
         extra={"points": [("out of range", (0, 1, 99), "error"), ("without the eyes", (2, 3, 4), "error"),
                           ("fraction", (0, 1, 2.5), "error")]},
         call=lambda **kw: E.evaluate(_net(), _faces(), _faces(), **kw)),
    Case(E.equivariance_error, lambda: dict(faces=_faces(), n=2, seed=0, strength=1.0),
         {"n": "count", "seed": "index", "strength": "nonnegative"},
         extra={"faces": [("float images", SimpleNamespace(images=_faces().images.float() / 255), "same"),
                          ("0-255 float images", SimpleNamespace(images=_faces().images.float()), "error")]},
         call=lambda **kw: E.equivariance_error(_net(), **kw)),
    Case(E.landmark_spread, lambda: dict(landmarks=torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])), {"landmarks": "points"}),
    Case(E.run_recipe, lambda: dict(steps=2, diversity="max", diversity_weight=1.0, seed=0),
         {"steps": "count", "seed": "index", "diversity_weight": "nonnegative"}, extra={"diversity": _DIVERSITY_BAD},
         call=_until(E, "train_fse", lambda **kw: E.run_recipe(_net(), "ci", "cpu", progress=False, train=_faces(),
                                                                fit_faces=_faces(), test_faces=_faces(), **kw))),
    Case(E.run_ablation, lambda: dict(variant="max", seed=0), {"seed": "index"},
         extra={"variant": [("unknown", "none", "error"), ("number", 1, "error")]},
         call=_until(E, "run_recipe", lambda **kw: E.run_ablation(profile="ci", device="cpu", progress=False,
                                                                  train=_faces(), fit_faces=_faces(),
                                                                  test_faces=_faces(), **kw))),
    Case(E.diversity_timing, lambda: dict(ks=(2,), batch=1, size=4, repeats=1),
         {"batch": "count", "size": "count", "repeats": "count"},
         extra={"ks": [("zero", (0,), "error"), ("fraction", (2.5,), "error"), ("text", "ab", "error"),
                       ("empty", (), "error")]},
         call=lambda **kw: list(E.diversity_timing(**kw))),
    Case(E.step_timing, lambda: dict(batch_size=1, steps=1, image_size=8),
         {"batch_size": "count", "steps": "count", "image_size": "count"},
         extra={"image_size": [("not divisible by the network's multiple", 9, "error")]},
         call=lambda **kw: sorted(E.step_timing(_net(), device="cpu", **kw))),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# --- the bugs of issue 20, one test each ---------------------------------------------------


def test_uint8_and_float_images_give_the_same_landmarks():
    u8 = _faces().images[:3]
    as_float = u8.float() / 255
    torch.testing.assert_close(E.detect_landmarks(_net(), u8), E.detect_landmarks(_net(), as_float))
    torch.testing.assert_close(_net()(u8), _net()(as_float))
    w = _warp()
    torch.testing.assert_close(w.warp_images(u8[:1]), w.warp_images(as_float[:1]))
    float_faces = SimpleNamespace(images=as_float)
    assert E.equivariance_error(_net(), float_faces, n=2) == pytest.approx(E.equivariance_error(_net(), _faces(), n=2))


def test_a_0_255_float_image_is_an_error():
    with pytest.raises(ValueError, match="images"):
        E.detect_landmarks(_net(), _faces().images[:2].float())
    with pytest.raises(ValueError, match="images"):
        _net()(_faces().images[:2].float())


def test_regression_nme_counts_a_missing_landmark_as_an_infinite_error():
    train_l, train_a = _landmarks(12, 2, seed=0), _landmarks(12, 3, seed=1)
    test_l, test_a = _landmarks(5, 2, seed=2), _landmarks(5, 3, seed=3)
    clean = V.regression_nme(train_l, train_a, test_l, test_a)
    missing = test_l.copy()
    missing[2, 1, 0] = np.nan
    with pytest.warns(RuntimeWarning, match="1 of 5"):
        r = V.regression_nme(train_l, train_a, missing, test_a)
    assert np.isinf(r["nme"]) and np.isinf(r["per_image"][2])
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(r["per_image"][keep], clean["per_image"][keep])
    assert r["train_nme"] == pytest.approx(clean["train_nme"])


def test_fit_regressor_leaves_out_images_with_a_missing_landmark_and_says_so():
    learned, annotated = _landmarks(12, 2, seed=0), _landmarks(12, 3, seed=1)
    gappy = learned.copy()
    gappy[3, 0, 1] = np.nan
    with pytest.warns(RuntimeWarning, match="1 of 12"):
        r = V.fit_regressor(gappy, annotated)
    np.testing.assert_allclose(r, V.fit_regressor(np.delete(learned, 3, 0), np.delete(annotated, 3, 0)))
    with pytest.raises(ValueError, match="NaN"):
        V.fit_regressor(np.full((12, 2, 2), np.nan), annotated)
    with pytest.raises(ValueError, match="annotated"):
        V.fit_regressor(learned, _with_nan(annotated))


def test_apply_regressor_gives_a_missing_prediction_for_a_missing_landmark():
    learned = _landmarks(3, 2)
    learned[1, 0, 0] = np.nan
    out = V.apply_regressor(learned, np.eye(4))
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


@pytest.mark.parametrize("name, value", [("regularization", math.nan), ("regularization", -1.0)])
def test_tps_fit_numbers(name, value):
    with pytest.raises(ValueError, match=name):
        T.ThinPlateSpline.fit(_SRC, _SRC, **{name: value})


def test_text_sizes_are_not_read_digit_by_digit():
    with pytest.raises(TypeError, match="image_size"):
        T.pixel_grid("64")
    with pytest.raises(TypeError, match="image_size"):
        T.random_tps(1, "64")


def test_nan_probability_maps_and_landmarks_are_errors():
    p = _probs()
    p[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="probs"):
        L.diversity_loss(p, check=False)
    a = torch.rand(1, 2, 2)
    a[0, 1, 0] = math.nan
    with pytest.raises(ValueError, match="landmarks"):
        L.alignment_loss(a, torch.rand(1, 2, 2))


# --- properties ------------------------------------------------------------------------

_coord = st.floats(-50, 150, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_coord, _coord), min_size=1, max_size=6), st.integers(2, 128), st.integers(2, 128))
def test_pixel_and_normalized_coordinates_are_inverse(points, h, w):
    p = torch.tensor(points, dtype=torch.float64)[None]
    there = T.pixel_to_normalized(p, (h, w))
    torch.testing.assert_close(T.normalized_to_pixel(there, (h, w)), p, atol=1e-9, rtol=1e-9)
    back = T.normalized_to_pixel(p / 100, (h, w))
    torch.testing.assert_close(T.pixel_to_normalized(back, (h, w)), p / 100, atol=1e-9, rtol=1e-9)


@st.composite
def _control_points(draw):
    n = draw(st.integers(3, 8))
    cells = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=n, max_size=n, unique=True))
    src = torch.tensor(cells, dtype=torch.float64) / 3 - 1  # distinct points of a grid in [-1, 1]
    if torch.linalg.matrix_rank(torch.cat([src, torch.ones(n, 1, dtype=torch.float64)], 1)) < 3:
        src = torch.cat([src, torch.tensor([[1.5, -1.5], [-1.5, 1.7]], dtype=torch.float64)])  # not all on a line
    shift = draw(st.lists(st.floats(-0.2, 0.2), min_size=2 * len(src), max_size=2 * len(src)))
    return src[None], src[None] + torch.tensor(shift, dtype=torch.float64).view(1, -1, 2)


@settings(max_examples=25, deadline=None)
@given(_control_points())
def test_a_fitted_thin_plate_spline_maps_control_points_onto_their_targets(pts):
    src, dst = pts
    tps = T.ThinPlateSpline.fit(src, dst)
    torch.testing.assert_close(tps(src), dst, atol=1e-7, rtol=0)
    tps32 = T.ThinPlateSpline.fit(src.float(), dst.float())
    torch.testing.assert_close(tps32(src.float()), dst.float(), atol=1e-4, rtol=0)


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.fse that takes arrays, sizes or numbers has a case."""
    covered = {c.func for c in CASES}
    without = {"make_model",  # keyword arguments of LandmarkNet (covered there)
               "Warp", "ComposedWarp"}  # an interface and a list of warps: no arrays or numbers of their own
    for mod in (T, L, M, V, E):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and name not in without:
                assert obj in covered, f"{mod.__name__}.{name} has no bad-input case"
