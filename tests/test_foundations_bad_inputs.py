"""Bad inputs to kpedu.foundations and kpedu.augment (issue 20), through the shared harness."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from badinput import Case, assert_ok, parametrize
from kpedu import augment, foundations
from kpedu.codecs import GaussianHeatmapCodec
from kpedu.data import COCO17

S = 16          # the smallest PoseNet input
K = 17


@functools.lru_cache(maxsize=None)
def _people():
    return foundations.make_people(3, seed=5, image_size=S)


@functools.lru_cache(maxsize=None)
def _model():
    torch.manual_seed(0)
    return foundations.PoseNet(K, "heatmap", 4, S).eval()


def _images():
    return torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(1))


def _maps(*shape):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(2))


def _keypoints():
    return _people().keypoints[:2].clone()


def _visible():
    return torch.full((2, K), 2, dtype=torch.uint8)


CODEC = GaussianHeatmapCodec(S, S // 2, 1.5)


def _flip(image, keypoints, visible):
    return foundations.flip_batch({"image": image, "keypoints": keypoints, "visible": visible})


def _predict(model, images, batch_size):
    return foundations.predict(model, images, batch_size, return_scores=True)


# any number of channels is valid where images are only resampled or mirrored (openpose warps
# an unlabelled-region mask with the image, the hourglass notebook warps heatmaps with it)
ANY_CHANNELS = {"channels+1", "2 channels"}

CASES = [
    Case(foundations.PoseNet, lambda: dict(num_keypoints=K, head="heatmap", width=4, input_size=S),
         {"num_keypoints": "count", "width": "count", "input_size": "count"},
         extra={"input_size": [("not a multiple of 8", 20, "error")],
                "head": [("unknown", "both", "error"), ("not text", 1, "error")]},
         call=lambda **kw: foundations.PoseNet(**kw).num_keypoints),
    Case(foundations.PoseNet.forward, lambda: dict(images=_images()), {"images": "image+device"},
         extra={"images": [("wrong size", torch.rand(2, 3, 24, 24), "error")]},
         call=lambda images: _model()(images)),
    Case(foundations.make_people, lambda: dict(n=2, seed=3, image_size=S),
         {"n": "count", "seed": "index", "image_size": "count"}),
    Case(foundations.flip_batch, lambda: dict(image=_images(), keypoints=_keypoints(), visible=_visible()),
         {"image": "image", "keypoints": "pred", "visible": "visibility"},
         skip={"image": ANY_CHANNELS},
         names={"image": "batch['image']", "keypoints": "batch['keypoints']", "visible": "batch['visible']"},
         call=_flip),
    Case(foundations.heatmap_loss, lambda: dict(pred=_maps(2, K, S // 2, S // 2), keypoints=_keypoints(),
                                                visible=_visible(), codec=CODEC),
         {"pred": "maps", "keypoints": "points", "visible": "visibility"},
         extra={"pred": [("wrong size", torch.rand(2, K, 4, 4), "error"), ("wrong K", torch.rand(2, 5, 8, 8), "error"),
                         ("one sample for two", torch.rand(1, K, 8, 8), "error")],
                "codec": [("not a codec", "codec", "error")]}),
    Case(foundations.coords_loss, lambda: dict(pred=_keypoints() + 1.0, keypoints=_keypoints(), visible=_visible(),
                                               image_size=S),
         {"pred": "points+device", "keypoints": "points", "visible": "visibility", "image_size": "count"},
         extra={"pred": [("one sample for two", _keypoints()[:1], "error")]}),
    Case(foundations.predict, lambda: dict(model=_model(), images=_images(), batch_size=1),
         {"images": "image+device", "batch_size": "count"},
         extra={"model": [("not a model", "model.pt", "error")]}, call=_predict),
    Case(foundations.evaluate, lambda: dict(model=_model(), people=_people()), {},
         extra={"people": [("a dict", {"images": _images()}, "error"), ("a tensor", _images(), "error")],
                "model": [("not a model", "model.pt", "error")]}),
    Case(foundations.train_posenet, lambda: dict(model=foundations.PoseNet(K, "heatmap", 4, S), train=_people(),
                                                 steps=1, batch_size=2, lr=1e-3, seed=0, progress=False),
         {"steps": "count", "batch_size": "count", "lr": "positive", "seed": "index"},
         extra={"train": [("a tensor", _images(), "error")], "model": [("not a model", None, "error")]}),
    Case(foundations.run_recipe, lambda: dict(model=foundations.PoseNet(K, "heatmap", 4, S), profile="ci",
                                              progress=False, curve_points=5),
         {"curve_points": "count"},
         extra={"profile": [("unknown", "fast", "error"), ("number", 3, "error")],
                "model": [("not a model", None, "error")]}),
]

MATS = augment.affine_matrix((S, S), 10.0, 1.1, batch=2)
MATRIX_EXTRA = [("nan", torch.full((2, 3, 3), math.nan), "error"), ("wrong batch", MATS[:1], "error"),
                ("2x3", MATS[:, :2], "error"), ("text", "identity", "error"),
                ("complex", MATS.to(torch.complex64), "error"), ("numpy", MATS.numpy(), "same")]

CASES += [
    Case(augment.affine_matrix, lambda: dict(size=(S, S), rotation=30.0, scale=1.2, translate=[1.0, 2.0], flip=False,
                                             batch=2),
         {"size": "size", "rotation": "number", "scale": "positive", "batch": "count"},
         extra={"translate": [("nan", [math.nan, 0.0], "error"), ("three values", [1.0, 2.0, 3.0], "error"),
                              ("text", "1", "error"), ("complex", [1j, 0], "error"),
                              ("per image", [[1.0, 2.0], [1.0, 2.0]], "same")],
                "flip": [("text", "yes", "error"), ("nan", math.nan, "error"), ("per image", [False, False], "same"),
                         ("three values", [True, True, True], "error")],
                "rotation": [("per image", [30.0, 30.0], "same")]},
         skip={"rotation": {"list"}, "scale": {"list"}}),  # one value per image is valid
    Case(augment.random_affine, lambda: dict(batch=2, size=(S, S), rotation=30.0, scale=(0.75, 1.25), translate=0.1,
                                             flip_prob=0.5),
         {"batch": "count", "size": "size", "rotation": "nonnegative", "translate": "nonnegative",
          "flip_prob": "probability"},
         extra={"scale": [("reversed", (1.25, 0.75), "error"), ("zero", (0.0, 1.0), "error"),
                          ("nan", (math.nan, 1.0), "error"), ("text", "1", "error"),
                          ("three values", (0.5, 1.0, 2.0), "error"), ("one number", 1.0, "runs")],
                "generator": [("not a generator", 3, "error")]}),
    Case(augment.warp_images, lambda: dict(images=_images(), matrices=MATS, out_size=(12, 12), mode="bilinear",
                                           padding_mode="zeros"),
         {"images": "image", "out_size": "size"},
         extra={"matrices": MATRIX_EXTRA + [("singular", torch.zeros(2, 3, 3), "error")],
                "mode": [("unknown", "cubic", "error")], "padding_mode": [("unknown", "wrap", "error")]},
         skip={"images": ANY_CHANNELS}),
    Case(augment.transform_points, lambda: dict(points=_keypoints(), matrices=MATS),
         {"points": "pred"}, extra={"matrices": MATRIX_EXTRA}),
    Case(augment.augment_batch, lambda: dict(images=_images(), keypoints=_keypoints(), visible=_visible(),
                                             flip_permutation=np.asarray(COCO17.flip_permutation),
                                             rotation=30.0, scale=(0.75, 1.25), translate=0.1, flip_prob=0.5),
         {"images": "image", "keypoints": "pred", "visible": "visibility", "rotation": "nonnegative",
          "translate": "nonnegative", "flip_prob": "probability"},
         extra={"flip_permutation": [("not a permutation", [0] * K, "error"),
                                     ("out of range", list(range(1, K + 1)), "error"),
                                     ("float", np.arange(K, dtype=float), "error"), ("text", "abc", "error"),
                                     ("wrong length", [0, 1], "error"),
                                     ("torch", torch.as_tensor(COCO17.flip_permutation), "same")]},
         skip={"images": ANY_CHANNELS}),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# --- explicit checks -----------------------------------------------------------------------


def test_uint8_images_are_scaled_like_float_images():
    u8 = (_images() * 255).round().to(torch.uint8)
    f = u8.float() / 255
    model = _model()
    assert torch.allclose(model(u8), model(f))
    assert torch.allclose(foundations.predict(model, u8), foundations.predict(model, f))
    with pytest.raises(ValueError, match="images must be float in \\[0, 1\\]"):
        foundations.predict(model, f * 255)


def test_model_and_images_on_different_devices():
    with pytest.raises(ValueError, match="images"):
        _model()(_images().to("meta"))
    with pytest.raises(ValueError, match="images"):
        foundations.predict(_model(), _images().to("meta"))


def test_flip_batch_keeps_the_visibility_dtype_and_refuses_a_non_batch():
    b = {"image": _images(), "keypoints": _keypoints(), "visible": _visible()}
    f = foundations.flip_batch(b)
    assert f["visible"].dtype == torch.uint8 and f["image"].dtype == torch.float32
    with pytest.raises(TypeError, match="batch"):
        foundations.flip_batch(_images())
    with pytest.raises(ValueError, match="batch"):
        foundations.flip_batch({"image": _images()})


def test_coords_loss_ignores_nan_at_unlabelled_keypoints():
    kp, vis = _keypoints(), _visible()
    pred = kp + 1.0
    ref = foundations.coords_loss(pred, kp, vis, S)
    kp2, pred2 = kp.clone(), pred.clone()
    kp2[:, 0] = math.nan
    vis2 = vis.clone()
    vis2[:, 0] = 0
    pred2[:, 0] = 0.0
    loss = foundations.coords_loss(pred2, kp2, vis2, S)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="keypoints"):
        foundations.coords_loss(pred, kp2, vis, S)
    assert ref > 0


def test_augment_batch_keeps_visibility_dtype_with_any_channels():
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(2, 4, S, S)   # an image and a mask warped together (openpose)
    out, kp, vis = augment.augment_batch(imgs, _keypoints(), _visible(), COCO17.flip_permutation, generator=g)
    assert out.shape == imgs.shape and vis.dtype == torch.uint8


def test_numeric_arguments_of_the_recipe_are_checked_before_training():
    with pytest.raises(ValueError, match="curve_points"):
        foundations.run_recipe(foundations.PoseNet(K, "heatmap", 4, S), "ci", progress=False, curve_points=0)
    with pytest.raises(ValueError, match="steps"):
        foundations.train_posenet(foundations.PoseNet(K, "heatmap", 4, S), _people(), steps=0, progress=False)
