"""Bad inputs to kpedu.hourglass (issue 20), through the shared harness ``tests/badinput.py``,
plus the explicit regressions of this area and property tests.

Every public function and class of ``kpedu/hourglass/*.py`` that takes arrays, sizes or
numbers is listed in :data:`CASES` with tiny good arguments (16 x 16 images, one stack of
4 channels and one pooling). Training entry points are checked only up to the moment they
would start their work (the expensive callee is replaced by a sentinel that stops the call).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kpedu.train
from badinput import Case, assert_ok, parametrize, gen as _gen, until as _until
from kpedu.codecs import GaussianHeatmapCodec
from kpedu.foundations import make_people
from kpedu.hourglass import experiment as E
from kpedu.hourglass import inference as I
from kpedu.hourglass import loss as L
from kpedu.hourglass import model as M



TINY = dict(num_stacks=1, channels=4, depth=1, stem_channels=(2, 4))  # 16 x 16 images, 4 x 4 heatmaps


@functools.lru_cache(maxsize=None)
def _net() -> M.StackedHourglass:
    torch.manual_seed(0)
    return E.make_model(**TINY).eval()  # 17 keypoints (COCO-17)


@functools.lru_cache(maxsize=None)
def _people():
    return make_people(2, 0, image_size=16)


def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=_gen(seed))


def _with_nan(a, where=0):
    a = np.array(a, dtype=np.float64, copy=True)
    a.reshape(-1)[where] = np.nan
    return a


_PERM = E.flip_permutation()
_PERM_BAD = [("wrong length", _PERM[:-1], "error"), ("out of range", [17] + _PERM[1:], "error"),
             ("text", "perm", "error"), ("fraction", [0.5] + _PERM[1:], "error"),
             ("not a permutation", [0] * 17, "error")]
_STACK_BAD = [("out of range", 1, "error"), ("below -num_stacks", -2, "error")]
_STACK_SKIP = {"below range"}  # stack=-1 is the last stack, as for Python sequences

CASES = [
    # -- model ---------------------------------------------------------------------------
    Case(M.Residual, lambda: dict(c_in=3, c_out=4), {"c_in": "count", "c_out": "count"},
         extra={"c_out": [("odd", 5, "error")]}, call=lambda **kw: M.Residual(**kw).conv3.out_channels),
    Case(M.Hourglass, lambda: dict(depth=1, channels=4, num_modules=1),
         {"depth": "count", "channels": "count", "num_modules": "count"},
         extra={"channels": [("odd", 5, "error")]}, call=lambda **kw: M.Hourglass(**kw).depth),
    Case(M.StackedHourglass, lambda: dict(num_stacks=1, channels=4, num_keypoints=2, depth=1, num_modules=1,
                                          stem_channels=(2, 4)),
         {"num_stacks": "count", "channels": "count", "num_keypoints": "count", "depth": "count",
          "num_modules": "count"},
         extra={"channels": [("odd", 5, "error")],
                "stem_channels": [("one value", (2,), "error"), ("odd", (3, 4), "error"), ("zero", (0, 4), "error"),
                                  ("fraction", (2.5, 4), "error"), ("text", "24", "error"),
                                  ("nan", (math.nan, 4), "error"),
                                  ("an int", 4, "error")]},
         call=lambda **kw: M.StackedHourglass(**kw).num_stacks),
    Case(M.StackedHourglass.forward, lambda: dict(images=_image()[None]), {"images": "image+device"},
         call=lambda images: _net()(images)),
    # -- loss ----------------------------------------------------------------------------
    Case(L.stacked_heatmap_loss, lambda: dict(outputs=[torch.zeros(1, 2, 4, 4)],
                                              target=torch.rand(1, 2, 4, 4, generator=_gen(1)),
                                              weight=torch.tensor([[1.0, 0.0]]), per_stack=True),
         {"target": "maps+device"},
         extra={"weight": [("nan", torch.tensor([[1.0, math.nan]]), "error"),
                           ("wrong shape", torch.ones(1, 3), "error"),
                           ("text", "w", "error"), ("complex", torch.ones(1, 2, dtype=torch.complex64), "error"),
                           ("numpy", np.array([[1.0, 0.0]]), "same"), ("bool", torch.tensor([[True, False]]), "same"),
                           ("inf", torch.tensor([[math.inf, 1.0]]), "error")],
                "outputs": [("empty", [], "error"), ("text", "outputs", "error"),
                            ("wrong shape", [torch.zeros(1, 2, 4, 3)], "error"),
                            ("a tensor, not a list", torch.zeros(1, 2, 4, 4), "error")]}),
    # -- inference -------------------------------------------------------------------------
    Case(I.predict_heatmaps, lambda: dict(images=_image()[None], flip_test=True, flip_permutation=_PERM, stack=-1),
         {"images": "image+device", "stack": "index"}, skip={"stack": _STACK_SKIP},
         extra={"stack": _STACK_BAD, "flip_permutation": _PERM_BAD},
         call=lambda **kw: I.predict_heatmaps(_net(), **kw)),
    Case(I.predict_keypoints, lambda: dict(images=_image()[None], flip_test=True, flip_permutation=_PERM, stack=-1),
         {"images": "image+device", "stack": "index"}, skip={"stack": _STACK_SKIP},
         extra={"stack": _STACK_BAD, "flip_permutation": _PERM_BAD,
                "codec": [("wrong size", GaussianHeatmapCodec(16, 8), "error"), ("text", "codec", "error")]},
         call=lambda **kw: I.predict_keypoints(_net(), **kw)),
    # -- experiment ------------------------------------------------------------------------
    Case(E.make_model, lambda: dict(num_stacks=1, channels=4, depth=1, stem_channels=(2, 4)),
         {"num_stacks": "count", "channels": "count", "depth": "count"},
         call=lambda **kw: E.make_model(**kw).num_stacks),
    Case(E.make_codec, lambda: dict(image_size=16, sigma=1.0), {"image_size": "count", "sigma": "positive"},
         extra={"image_size": [("not a multiple of 4", 18, "error")]}, call=lambda **kw: E.make_codec(**kw).stride),
    Case(E.augmented_batches, lambda: dict(batch_size=1), {"batch_size": "count"},
         call=lambda **kw: E.augmented_batches(_people(), generator=_gen(), augment=False, **kw)),
    Case(E.hourglass_loss, lambda: dict(outputs=[torch.zeros(2, 17, 4, 4)], keypoints=_people().keypoints.clone(),
                                        visible=torch.full((2, 17), 2), codec=E.make_codec(16)),
         {"keypoints": "points", "visible": "visibility"},
         extra={"codec": [("text", "codec", "error")], "outputs": [("empty", [], "error")]}),
    Case(E.train_hourglass, lambda: dict(steps=2, batch_size=1, lr=1e-3, seed=0, log_every=1),
         {"steps": "count", "batch_size": "count", "lr": "positive", "seed": "index", "log_every": "count"},
         call=_until(kpedu.train, "fit",
                     lambda **kw: E.train_hourglass(_net(), _people(), device="cpu", progress=False, **kw))),
    Case(E.predict, lambda: dict(images=_image()[None], flip_test=True, stack=-1, batch_size=1),
         {"images": "image+device", "stack": "index", "batch_size": "count"}, skip={"stack": _STACK_SKIP},
         extra={"stack": _STACK_BAD}, call=lambda **kw: E.predict(_net(), **kw)),
    Case(E.evaluate, lambda: dict(stack=-1), {"stack": "index"}, skip={"stack": _STACK_SKIP},
         extra={"stack": _STACK_BAD}, call=lambda **kw: E.evaluate(_net(), _people(), **kw)["pck@0.2"]),
    Case(E.per_stack_pck, lambda: dict(threshold=0.2), {"threshold": "positive"},
         skip={"threshold": {"list"}},   # a list of thresholds is a valid input (one result per threshold)
         call=lambda **kw: E.per_stack_pck(_net(), _people(), **kw)),
    Case(E.run_recipe, lambda: dict(curve_points=1, steps=2, start_cycle=0), {"curve_points": "index", "steps": "count",
                                                                            "start_cycle": "index"},
         call=_until(E, "train_hourglass", lambda **kw: E.run_recipe(_net(), "ci", "cpu", False, train=_people(),
                                                                     val=_people(), **kw))),
    Case(E.train_ablation, lambda: dict(variant="last"), {},
         extra={"variant": [("unknown", "3stack", "error"), ("number", 2, "error")]},
         call=_until(E, "run_recipe", lambda **kw: E.train_ablation(_net(), profile="ci", **kw))),
    Case(E.run_ablation, lambda: dict(variant="last"), {},
         extra={"variant": [("unknown", "3stack", "error"), ("number", 2, "error")]},
         call=_until(E, "train_ablation", lambda **kw: E.run_ablation(profile="ci", **kw))),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.hourglass that takes arrays, sizes or numbers has a case."""
    covered = {c.func for c in CASES}
    without = {"flip_permutation"}  # no arguments
    for mod in (M, L, I, E):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and name not in without:
                assert obj in covered, f"{mod.__name__}.{name} has no bad-input case"


# --- the bugs of issue 20, one test each ---------------------------------------------------


def _trained_like_net() -> M.StackedHourglass:
    """A network whose heatmaps depend strongly on the image's brightness (an untrained
    one with its first convolution scaled up), so that a 0-255 image moves the peaks."""
    torch.manual_seed(1)
    m = M.StackedHourglass(1, 8, 17, depth=2, stem_channels=(4, 8)).eval()
    with torch.no_grad():
        m.stem[0].weight.mul_(20.0)
    return m


def _raw_forward(m: M.StackedHourglass, x: torch.Tensor) -> torch.Tensor:
    """The network's last heatmaps without the boundary check (the old behaviour)."""
    x = m.stem(x)
    for i in range(m.num_stacks):
        f = m.features[i](m.hourglasses[i](x))
        heat = m.heads[i](f)
        if i < m.num_stacks - 1:
            x = x + m.merge_features[i](f) + m.merge_heatmaps[i](heat)
    return heat


def test_uint8_images_give_the_keypoints_of_the_image_divided_by_255():
    """Before the fix, predict_heatmaps and predict_keypoints fed a uint8 image to the
    network as 0-255 floats: its keypoints moved by tens of pixels."""
    m = _trained_like_net()
    u8 = (torch.rand(2, 3, 64, 64, generator=_gen(3)) * 255).round().to(torch.uint8)
    as_float = u8.float() / 255
    kp_u8, sc_u8 = I.predict_keypoints(m, u8)
    kp_f, sc_f = I.predict_keypoints(m, as_float)
    torch.testing.assert_close(kp_u8, kp_f)
    torch.testing.assert_close(sc_u8, sc_f)
    # what the old code computed: the network on 0-255 values, decoded; far from the truth
    with torch.no_grad():
        old, _ = GaussianHeatmapCodec(64, 16).decode(_raw_forward(m, u8.float()))
    assert (old - kp_f).norm(dim=-1).max() > 4
    with pytest.raises(ValueError, match="images"):  # a 0-255 image stored as float is refused
        I.predict_keypoints(m, u8.float())
    torch.testing.assert_close(I.predict_heatmaps(m, u8), I.predict_heatmaps(m, as_float))
    torch.testing.assert_close(m(u8)[-1], m(as_float)[-1])
    torch.testing.assert_close(E.predict(m, u8)[0], E.predict(m, as_float)[0])
    torch.testing.assert_close(E.predict(m, u8.numpy())[0], kp_f)


def test_a_float_image_with_nan_is_an_error():
    x = _image()[None].clone()
    x[0, 1, 2, 3] = math.nan
    for call in (lambda: _net()(x), lambda: I.predict_heatmaps(_net(), x), lambda: E.predict(_net(), x)):
        with pytest.raises(ValueError, match="images"):
            call()


def test_model_and_images_on_different_devices():
    meta = _image()[None].to("meta")
    with pytest.raises(ValueError, match="images"):
        _net()(meta)
    with pytest.raises(ValueError, match="images"):
        I.predict_heatmaps(_net(), meta)
    with pytest.raises(ValueError, match="images"):
        I.predict_keypoints(_net(), meta)
    with pytest.raises(ValueError, match="images"):
        E.predict(_net(), meta)
    with pytest.raises(ValueError, match="target"):
        L.stacked_heatmap_loss([torch.zeros(1, 2, 4, 4)], torch.zeros(1, 2, 4, 4, device="meta"))


@pytest.mark.parametrize("value", [0, -1, 2.5, True, math.nan, "2"])
@pytest.mark.parametrize("name", ["num_stacks", "channels", "num_keypoints", "depth", "num_modules"])
def test_stacked_hourglass_rejects_bad_counts(name, value):
    kw = dict(num_stacks=1, channels=4, num_keypoints=2, depth=1)
    kw[name] = value
    with pytest.raises((TypeError, ValueError), match=name):
        M.StackedHourglass(**kw)


@pytest.mark.parametrize("value", [0, -2, 3.5, True, math.nan, "4"])
def test_residual_and_hourglass_reject_bad_counts(value):
    with pytest.raises((TypeError, ValueError), match="c_in"):
        M.Residual(value, 4)
    with pytest.raises((TypeError, ValueError), match="c_out"):
        M.Residual(4, value)
    with pytest.raises((TypeError, ValueError), match="depth"):
        M.Hourglass(value, 4)
    with pytest.raises((TypeError, ValueError), match="channels"):
        M.Hourglass(1, value)


def test_integral_floats_and_numpy_integers_are_accepted_counts():
    m = M.StackedHourglass(np.int64(1), 4.0, 2, depth=1, stem_channels=(np.int64(2), 4))
    assert (m.num_stacks, m.channels, m.stem_channels) == (1, 4, (2, 4))
    assert isinstance(m.channels, int)


def test_stack_index_is_checked():
    with pytest.raises(IndexError, match="stack"):
        I.predict_heatmaps(_net(), _image()[None], stack=1)
    with pytest.raises(TypeError, match="stack"):
        E.predict(_net(), _image()[None], stack=0.5)
    torch.testing.assert_close(I.predict_heatmaps(_net(), _image()[None], stack=-1),
                               I.predict_heatmaps(_net(), _image()[None], stack=0))


def test_a_non_finite_threshold_is_an_error():
    for value in (math.nan, math.inf, 0.0, [0.2, math.nan], ()):
        with pytest.raises(ValueError, match="threshold"):
            E.per_stack_pck(_net(), _people(), threshold=value)


# --- properties ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=17, max_size=17))
def test_flip_permutation_applied_twice_is_the_identity(points):
    perm = E.flip_permutation()
    assert sorted(perm) == list(range(17))
    kp = torch.tensor(points)
    assert torch.equal(kp[perm][perm], kp)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2 ** 31 - 1))
def test_flip_testing_is_flip_equivariant_for_uint8_images(seed):
    """Flip testing on a uint8 image and on its mirror give mirrored, relabelled maps."""
    u8 = (torch.rand(1, 3, 16, 16, generator=_gen(seed)) * 255).round().to(torch.uint8)
    f = I.predict_heatmaps(_net(), u8, flip_test=True, flip_permutation=_PERM)
    f_mirror = I.predict_heatmaps(_net(), u8.flip(-1), flip_test=True, flip_permutation=_PERM)
    torch.testing.assert_close(f_mirror, f.flip(-1)[:, _PERM], atol=1e-5, rtol=1e-4)
