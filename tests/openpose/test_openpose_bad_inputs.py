"""Bad inputs to kpedu.openpose (issue 20), through the shared harness ``tests/badinput.py``,
plus the explicit regressions of this area and property tests.

Every public function and class of ``kpedu/openpose/*.py`` that takes arrays, sizes or
numbers is listed in :data:`CASES` with tiny good arguments (16 x 16 images, a network of
a few channels, 3 keypoints where the skeleton is free). Training entry points are checked
only up to the moment they would start their work (the expensive callee is replaced by a
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

import kpedu.train
from badinput import Case, assert_ok, parametrize, gen as _gen, until as _until
from kpedu.openpose import experiment as E
from kpedu.openpose import inference as I
from kpedu.openpose import model as M
from kpedu.openpose import targets as T

P = importlib.import_module("kpedu.openpose.parse")  # the package's `parse` is the function of that name



TINY = dict(stage_channels=2, stage_blocks=1, stage_hidden=4, feature_channels=4, backbone_width=2, paf_stages=1)


@functools.lru_cache(maxsize=None)
def _net() -> M.OpenPoseNet:
    torch.manual_seed(0)
    return E.make_model(**TINY).eval()  # COCO-17: 17 maps, 19 limbs, a few channels


def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=_gen(seed))


@functools.lru_cache(maxsize=None)
def _scenes() -> E.SceneTensors:
    return E.make_scenes(1, 0, 32, num_people=1, min_visible=0)


# one person of a 3-keypoint skeleton (image pixels) and its maps at stride 1
_KP = np.array([[[3.0, 4.0], [8.0, 9.0], [5.0, 13.0]]])
_VIS = np.array([[2, 2, 1]])
_LIMBS = [(0, 1), (1, 2)]


def _maps(size: int = 16):
    cm = T.confidence_maps(_KP, _VIS, size, 1, 1.5)
    paf = T.part_affinity_fields(_KP, _VIS, _LIMBS, size, 1, 1.0)
    return cm, paf


def _coco_maps(b: int = 1, h: int = 4):
    cm = torch.rand(b, 17, h, h, generator=_gen(1)) * 0.05
    paf = torch.zeros(b, 38, h, h)
    return cm, paf


def _with_nan(a, where=0):
    a = np.array(a, dtype=np.float64, copy=True)
    a.reshape(-1)[where] = np.nan
    return a


_LIMBS_BAD = [("out of range", [(0, 5)], "error"), ("to itself", [(1, 1)], "error"), ("text", "ab", "error"),
              ("empty", [], "error"), ("fraction", [(0.5, 1)], "error"), ("nan", [(math.nan, 1)], "error"),
              ("negative", [(-1, 1)], "error"), ("bool", [(True, 2)], "error")]
_SCALES_BAD = [("zero", (0.0,), "error"), ("nan", (math.nan,), "error"), ("inf", (math.inf,), "error"),
               ("empty", (), "error"), ("text", "1", "error"), ("complex", (1j,), "error")]
_MASK = np.zeros((16, 16), bool)
_MASK[5, 13] = True
_MASKS = np.zeros((2, 16, 16), bool)
_MASKS[1, 8:12, 8:12] = True
_STRIDE_INT_BAD = [("zero", 0, "error"), ("negative", -4, "error"), ("nan", math.nan, "error"),
                   ("fraction", 2.5, "error"), ("text", "4", "error"), ("bool", True, "error"),
                   ("three values", (4, 4, 4), "error")]

CASES = [
    # -- targets -------------------------------------------------------------------------
    Case(T.confidence_maps, lambda: dict(keypoints=_KP.copy(), visible=_VIS.copy(), heatmap_size=8, stride=2,
                                         sigma=1.0),
         {"keypoints": "points", "visible": "visibility", "heatmap_size": "size", "stride": "positive",
          "sigma": "positive"},
         skip={"stride": {"list"}}),  # a pair (s_x, s_y) is a valid stride
    Case(T.part_affinity_fields, lambda: dict(keypoints=_KP.copy(), visible=_VIS.copy(), limbs=_LIMBS,
                                              heatmap_size=8, stride=2, limb_width=1.0),
         {"keypoints": "points", "visible": "visibility", "heatmap_size": "size", "stride": "positive",
          "limb_width": "positive"},
         skip={"stride": {"list"}},  # a pair (s_x, s_y) is a valid stride
         extra={"limbs": _LIMBS_BAD}),
    Case(T.loss_mask, lambda: dict(unlabelled=_MASK.copy(), heatmap_size=4, stride=4), {"heatmap_size": "size"},
         extra={"unlabelled": [("nan", _with_nan(_MASK), "error"), ("complex", _MASK.astype(complex), "error"),
                               ("text", "mask", "error"), ("4-d", np.zeros((1, 1, 16, 16)), "error"),
                               ("wrong size", np.zeros((15, 16)), "error"), ("inf", np.full((16, 16), np.inf), "error"),
                               ("other container", torch.as_tensor(_MASK), "same")],
                "stride": _STRIDE_INT_BAD}),
    Case(T.unlabelled_mask, lambda: dict(visible=np.array([[2, 2], [0, 0]]), masks=_MASKS.copy(), min_keypoints=1),
         {"min_keypoints": "count"},
         extra={"visible": [("nan", _with_nan([[2, 2], [0, 0]]), "error"), ("text", "vv", "error"),
                            ("complex", np.ones((2, 2), complex), "error"), ("wrong N", np.zeros((3, 2)), "error"),
                            ("1-d", np.zeros(2), "error")],
                "masks": [("nan", _with_nan(_MASKS), "error"), ("text", "mm", "error"),
                          ("complex", _MASKS.astype(complex), "error"), ("wrong N", np.zeros((1, 16, 16)), "error")]}),
    Case(T.scene_loss_mask, lambda: dict(visible=np.array([[2, 2], [0, 0]]), masks=_MASKS.copy(), heatmap_size=4,
                                         stride=4, crowd=_MASK.copy(), min_keypoints=1),
         {"heatmap_size": "size", "min_keypoints": "count"},
         extra={"stride": _STRIDE_INT_BAD,
                "crowd": [("nan", _with_nan(_MASK), "error"), ("wrong shape", np.zeros((16, 8)), "error"),
                          ("text", "crowd", "error")],
                "visible": [("nan", _with_nan([[2, 2], [0, 0]]), "error")],
                "masks": [("nan", _with_nan(_MASKS), "error")]}),
    Case(T.batch_targets, lambda: dict(keypoints=[_KP.copy()], visible=[_VIS.copy()], limbs=_LIMBS, heatmap_size=8,
                                       stride=2, sigma=1.0, limb_width=1.0, masks=None, min_keypoints=1),
         {"heatmap_size": "size", "stride": "positive", "sigma": "positive", "limb_width": "positive",
          "min_keypoints": "count"},
         skip={"stride": {"list"}},  # a pair (s_x, s_y) is a valid stride (without masks)
         extra={"keypoints": [("nan", [_with_nan(_KP)], "error"), ("text", "abc", "error"), ("empty", [], "error"),
                              ("complex", [_KP.astype(complex)], "error"),
                              ("last dim 3", [np.zeros((1, 3, 3))], "error"),
                              ("integer", [_KP.astype(np.int64)], "same")],
                "visible": [("wrong length", [_VIS, _VIS], "error"), ("nan", [_with_nan(_VIS)], "error")],
                "limbs": _LIMBS_BAD,
                "masks": [("nan", [_with_nan(np.zeros((1, 16, 16)))], "error"), ("wrong length", [], "error")]}),
    # -- parsing -------------------------------------------------------------------------
    Case(P.find_peaks, lambda: dict(heatmaps=_maps()[0], threshold=0.1, nms_kernel=3),
         {"heatmaps": "maps", "threshold": "number", "nms_kernel": "count"},
         extra={"nms_kernel": [("even", 2, "error")],
                "heatmaps": [("other container", _maps()[0].numpy(), "same")]}),
    Case(P.limb_scores, lambda: dict(paf_x=_maps()[1][0], paf_y=_maps()[1][1],
                                     cand_a=torch.tensor([[3.0, 4.0], [10.0, 2.0]]),
                                     cand_b=torch.tensor([[8.0, 9.0]]), num_samples=10, paf_threshold=0.05,
                                     image_height=16.0),
         {"paf_x": "maps", "paf_y": "maps+device", "cand_a": "points+device", "cand_b": "points",
          "num_samples": "count", "paf_threshold": "number", "image_height": "positive"},
         skip={"paf_x": {"2-d"}, "paf_y": {"2-d"},  # (H, W) is the right shape here
               "cand_a": {"last dim 3"}, "cand_b": {"last dim 3"}},  # (x, y, score) rows
         extra={"interpolation": [("unknown", "cubic", "error")],
                "cand_a": [("empty", torch.zeros(0, 2), "runs")]}),
    Case(P.match_limb, lambda: dict(scores=np.array([[0.9, 0.1], [0.2, 0.8]]), valid=np.ones((2, 2), bool)), {},
         extra={"scores": [("nan", _with_nan([[0.9, 0.1], [0.2, 0.8]]), "error"),
                           ("inf", np.array([[np.inf, 0.1], [0.2, 0.8]]), "error"),
                           ("complex", np.ones((2, 2), complex), "error"), ("text", "ss", "error"),
                           ("1-d", np.ones(2), "error"),
                           ("other container", torch.tensor([[0.9, 0.1], [0.2, 0.8]]), "same")],
                "valid": [("wrong shape", np.ones((2, 3), bool), "error"), ("nan", _with_nan(np.ones((2, 2))), "error"),
                          ("text", "vv", "error"), ("complex", np.ones((2, 2), complex), "error")]}),
    Case(P.skeleton_tree, lambda: dict(limbs=_LIMBS, num_keypoints=3, root=1),
         {"num_keypoints": "count", "root": "index"},
         extra={"limbs": [x for x in _LIMBS_BAD if x[0] not in ("empty", "out of range")],
                "root": [("out of range", 3, "error")], "num_keypoints": [("too small", 2, "error")]}),
    Case(P.parse, lambda: dict(heatmaps=_maps()[0], pafs=_maps()[1], limbs=_LIMBS, stride=1.0, threshold=0.1,
                               num_samples=10, min_parts=2, min_score=0.2, nms_kernel=3, paf_threshold=0.05,
                               min_ratio=0.8, root=0),
         {"heatmaps": "maps", "pafs": "maps+device", "stride": "positive", "threshold": "number",
          "num_samples": "count", "min_parts": "index", "min_score": "number", "nms_kernel": "count",
          "paf_threshold": "number", "min_ratio": "probability", "root": "index"},
         skip={"stride": {"list"}},  # a pair (s_x, s_y) is a valid stride
         extra={"limbs": _LIMBS_BAD, "root": [("out of range", 3, "error")],
                "heatmaps": [("other container", _maps()[0].numpy(), "same")]}),
    Case(P.parse_batch, lambda: dict(heatmaps=_maps()[0][None], pafs=_maps()[1][None], limbs=_LIMBS, threshold=0.1,
                                     min_ratio=0.8),
         {"heatmaps": "maps", "pafs": "maps+device", "threshold": "number", "min_ratio": "probability"},
         extra={"limbs": _LIMBS_BAD}),
    # -- model ---------------------------------------------------------------------------
    Case(M.ConvBlock, lambda: dict(c_in=3, width=2, num_convs=2),
         {"c_in": "count", "width": "count", "num_convs": "count"},
         extra={"activation": [("unknown", "gelu", "error")]}, call=lambda **kw: M.ConvBlock(**kw).out_channels),
    Case(M.Stage, lambda: dict(c_in=3, c_out=2, width=2, hidden=4, num_blocks=1),
         {"c_in": "count", "c_out": "count", "width": "count", "hidden": "count", "num_blocks": "count"},
         call=lambda **kw: M.Stage(**kw).out_channels),
    Case(M.VGG19Backbone, lambda: dict(out_channels=8), {"out_channels": "count"},
         call=lambda **kw: M.VGG19Backbone(**kw).out_channels),
    Case(M.SmallBackbone, lambda: dict(width=2, out_channels=4), {"width": "count", "out_channels": "count"},
         call=lambda **kw: M.SmallBackbone(**kw).out_channels),
    Case(M.OpenPoseNet, lambda: dict(num_keypoints=2, num_limbs=1, backbone="small", paf_stages=1, cm_stages=1,
                                     stage_channels=2, stage_hidden=4, stage_blocks=1, feature_channels=4,
                                     backbone_width=2),
         {"num_keypoints": "count", "num_limbs": "count", "paf_stages": "count", "cm_stages": "count",
          "stage_channels": "count", "stage_hidden": "count", "stage_blocks": "count", "feature_channels": "count",
          "backbone_width": "count"},
         extra={"backbone": [("unknown", "resnet", "error")], "activation": [("unknown", "gelu", "error")]},
         call=lambda **kw: M.OpenPoseNet(**kw).num_keypoints),
    Case(M.OpenPoseNet.forward, lambda: dict(images=_image()[None]), {"images": "image+device"},
         call=lambda images: _net()(images)),
    Case(M.openpose_paper, lambda: dict(num_keypoints=18, num_limbs=19),
         {"num_keypoints": "count", "num_limbs": "count"},
         call=lambda **kw: M.openpose_paper(**kw).num_keypoints),
    Case(M.openpose_loss, lambda: dict(pafs=[torch.zeros(1, 4, 3, 3)], cms=[torch.zeros(1, 2, 3, 3)],
                                       paf_target=torch.rand(1, 4, 3, 3, generator=_gen(2)),
                                       cm_target=torch.rand(1, 2, 3, 3, generator=_gen(3)),
                                       mask=torch.ones(1, 3, 3)),
         {"paf_target": "maps+device", "cm_target": "maps+device"},
         extra={"mask": [("nan", torch.tensor(_with_nan(np.ones((1, 3, 3)))), "error"),
                         ("wrong shape", torch.ones(1, 3, 4), "error"), ("text", "mask", "error"),
                         ("complex", torch.ones(1, 3, 3, dtype=torch.complex64), "error"),
                         ("numpy", np.ones((1, 3, 3)), "same"),
                         ("bool", torch.ones(1, 3, 3, dtype=torch.bool), "same")],
                "pafs": [("empty", [], "error"), ("text", "pafs", "error"),
                         ("wrong shape", [torch.zeros(1, 4, 3, 2)], "error")],
                "cms": [("not a list", torch.zeros(1, 2, 3, 3), "error")]}),
    # -- experiment ----------------------------------------------------------------------
    Case(E.SceneTensors, lambda: dict(images=_scenes().images.clone(), keypoints=list(_scenes().keypoints),
                                      visible=list(_scenes().visible), areas=list(_scenes().areas),
                                      boxes=list(_scenes().boxes), unlabelled=list(_scenes().unlabelled)), {},
         extra={"images": [("float", _scenes().images.float() / 255, "error"), ("3-d", _scenes().images[0], "error"),
                           ("text", "images", "error"), ("int32", _scenes().images.int(), "error"),
                           ("numpy", _scenes().images.numpy(), "same")],
                "keypoints": [("wrong length", [], "error")]}),
    Case(E.SceneTensors.subset, lambda: dict(idx=[0]), {},
         extra={"idx": [("out of range", [1], "error"), ("fraction", [0.5], "error"), ("text", "0", "error"),
                        ("nan", [math.nan], "error"), ("tensor", torch.tensor([0]), "same"),
                        ("slice", slice(0, 1), "same"),
                        ("bool", [True], "error"), ("negative", [-1], "same")]},
         call=lambda idx: _scenes().subset(idx)),
    Case(E.make_model, lambda: dict(paf_stages=1, stage_channels=2, stage_blocks=1),
         {"paf_stages": "count", "stage_channels": "count", "stage_blocks": "count"},
         call=lambda **kw: E.make_model(**kw).num_keypoints),
    Case(E.make_scenes, lambda: dict(n=1, seed=0, image_size=32, min_visible=0),
         {"n": "count", "seed": "index", "image_size": "count", "min_visible": "index"},
         extra={"image_size": [("not a multiple of 8", 36, "error")]},
         call=lambda **kw: E.make_scenes(num_people=1, **kw)),
    Case(E.scene_targets, lambda: dict(keypoints=list(_scenes().keypoints), visible=list(_scenes().visible),
                                       image_size=32, sigma=1.5, limb_width=1.0, min_length=1.0),
         {"image_size": "count", "sigma": "positive", "limb_width": "positive", "min_length": "nonnegative"},
         extra={"image_size": [("not a multiple of 8", 36, "error")],
                "keypoints": [("nan", [torch.full((1, 17, 2), math.nan)], "error"), ("text", "kp", "error"),
                              ("complex", [torch.zeros(1, 17, 2, dtype=torch.complex64)], "error"),
                              ("inf", [torch.full((1, 17, 2), math.inf)], "error"),
                              ("numpy", [k.numpy() for k in _scenes().keypoints], "same")],
                "visible": [("wrong length", [], "error"), ("nan", [torch.full((1, 17), math.nan)], "error")]}),
    Case(E.scene_batches, lambda: dict(batch_size=1, sigma=1.5, limb_width=1.0, min_length=1.0),
         {"batch_size": "count", "sigma": "positive", "limb_width": "positive", "min_length": "nonnegative"},
         call=lambda **kw: E.scene_batches(_scenes(), generator=_gen(), augment=False, **kw)),
    Case(E.train_openpose, lambda: dict(steps=2, batch_size=1, lr=1e-3, seed=0, log_every=1, grad_clip=1.0,
                                        save_every=1, micro_batches=1),
         {"steps": "count", "batch_size": "count", "lr": "positive", "seed": "index", "log_every": "count",
          "grad_clip": "positive", "save_every": "count", "micro_batches": "count"},
         call=_until(kpedu.train, "fit",
                     lambda **kw: E.train_openpose(_net(), _scenes(), device="cpu", progress=False, **kw))),
    Case(E.predict, lambda: dict(images=_image()[None], batch_size=1, upsample=1, flip=False, scales=(1.0,)),
         {"images": "image+device", "batch_size": "count", "upsample": "count"},
         extra={"scales": _SCALES_BAD, "mode": [("unknown", "cubic", "error")]},
         call=lambda **kw: E.predict(_net(), **kw)),
    Case(E.unflip_maps, lambda: dict(heatmaps=_coco_maps()[0], pafs=_coco_maps()[1]),
         {"heatmaps": "maps", "pafs": "maps"}),
    Case(E.upsample_maps, lambda: dict(maps=_coco_maps()[0], factor=2), {"maps": "maps", "factor": "count"},
         extra={"mode": [("unknown", "cubic", "error")], "maps": [("3-d", _coco_maps()[0][0], "error")]}),
    Case(E.parse_maps, lambda: dict(heatmaps=_coco_maps()[0], pafs=_coco_maps()[1], upsample=1, stride=8.0,
                                    threshold=0.1),
         {"heatmaps": "maps", "pafs": "maps+device", "upsample": "count", "stride": "positive", "threshold": "number"},
         extra={"heatmaps": [("numpy", _coco_maps()[0].numpy(), "same")]}),
    Case(E.detect, lambda: dict(images=_image()[None], batch_size=1, upsample=1, flip=False, scales=(1.0,),
                                threshold=0.1),
         {"images": "image+device", "batch_size": "count", "upsample": "count", "threshold": "number"},
         extra={"scales": _SCALES_BAD}, call=lambda **kw: E.detect(_net(), **kw)),
    Case(E.people_to_results, lambda: dict(people=[[]], image_ids=[1]), {},
         extra={"image_ids": [("fraction", [1.5], "error"), ("text", ["a"], "error"), ("nan", [math.nan], "error"),
                              ("wrong length", [1, 2], "error"), ("bool", [True], "error")],
                "people": [("a person without parts", [[P.Person(torch.full((17, 2), math.nan), torch.zeros(17), 0.5,
                                                                 -torch.ones(17, dtype=torch.long))]], "runs"),
                           ("text", "people", "error")]}),
    Case(E.evaluate_people, lambda: dict(people=[[]]), {},
         extra={"people": [("wrong length", [[], []], "error"), ("text", "p", "error")]},
         call=lambda **kw: E.evaluate_people(scenes=_scenes(), **kw)),
    Case(E.evaluate, lambda: dict(batch_size=1, upsample=1, threshold=0.1), {"batch_size": "count", "upsample": "count",
                                                                              "threshold": "number"},
         call=lambda **kw: E.evaluate(_net(), _scenes(), flip=False, scales=(1.0,), **kw)),
    Case(E.per_stage_evaluate, lambda: dict(batch_size=1, upsample=1, threshold=0.1),
         {"batch_size": "count", "upsample": "count", "threshold": "number"},
         call=lambda **kw: E.per_stage_evaluate(_net(), _scenes(), **kw)),
    Case(E.timing, lambda: dict(people_counts=(1,), images=1, image_size=16, upsample=1, seed=0),
         {"images": "count", "image_size": "count", "upsample": "count", "seed": "index"},
         extra={"people_counts": [("nan", (math.nan,), "error"), ("fraction", (1.5,), "error"), ("text", "1", "error"),
                                  ("empty", (), "error"), ("decreasing", (2, 1), "error"), ("zero", (0,), "error")],
                "image_size": [("not a multiple of 8", 20, "error")], "maps": [("unknown", "both", "error")]},
         call=_until(E, "make_scenes", lambda **kw: E.timing(_net(), **kw))),
    Case(E.run_recipe, lambda: dict(curve_points=1, steps=2, start_cycle=0, save_every=1),
         {"curve_points": "index", "steps": "count", "start_cycle": "index", "save_every": "count"},
         extra={"stop_cycle": [("zero", 0, "error"), ("nan", math.nan, "error"), ("text", "1", "error"),
                               ("above", 2, "error")]},
         call=_until(E, "train_openpose", lambda **kw: E.run_recipe(_net(), "ci", "cpu", False, train=_scenes(),
                                                                    val=_scenes(), **kw))),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.openpose that takes arrays, sizes or numbers has a case."""
    covered = {c.func for c in CASES}
    without = {
        "Person",               # the parser's result record
        "flip_permutation",     # no arguments
        "openpose_batch_loss",  # a model and a batch dict of scene_batches (its arrays are checked there)
    }
    for mod in (T, P, M, I, E):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and name not in without:
                assert obj in covered, f"{mod.__name__}.{name} has no bad-input case"


# --- the bugs of issue 20, one test each ---------------------------------------------------


def test_a_nan_threshold_is_an_error_not_zero_detections():
    """Before the fix, find_peaks(threshold=nan) compared every pixel with NaN and found
    nobody; every NaN, inf or out-of-range option is now an error naming it."""
    cm, paf = _maps()
    assert len(P.find_peaks(cm, threshold=0.1)[0]) == 1
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="threshold"):
            P.find_peaks(cm, threshold=value)
        with pytest.raises(ValueError, match="paf_threshold"):
            P.limb_scores(paf[0], paf[1], torch.tensor([[3.0, 4.0]]), torch.tensor([[8.0, 9.0]]), paf_threshold=value)
        for name in ("threshold", "min_score", "paf_threshold", "min_ratio", "stride"):
            with pytest.raises(ValueError, match=name):
                P.parse(cm, paf, _LIMBS, **{name: value})
            with pytest.raises(ValueError, match=name):
                P.parse_batch(cm[None], paf[None], _LIMBS, **{name: value})
        with pytest.raises(ValueError, match="threshold"):
            E.detect(_net(), _image()[None], upsample=1, flip=False, scales=(1.0,), threshold=value)
    for name, value in (("min_ratio", 1.5), ("min_ratio", -0.1), ("num_samples", 0), ("min_parts", -1),
                        ("nms_kernel", 4), ("stride", 0)):
        with pytest.raises(ValueError, match=name):
            P.parse(cm, paf, _LIMBS, **{name: value})


@pytest.mark.parametrize("name, value", [("sigma", math.nan), ("sigma", 0.0), ("sigma", math.inf), ("stride", math.nan),
                                         ("stride", 0), ("heatmap_size", 0), ("heatmap_size", 7.5)])
def test_bad_target_parameters_are_errors(name, value):
    kw = dict(heatmap_size=8, stride=2, sigma=1.0)
    kw[name] = value
    with pytest.raises(ValueError, match=name):
        T.confidence_maps(_KP, _VIS, **kw)
    kw_paf = {k: v for k, v in kw.items() if k != "sigma"}
    if name != "sigma":
        with pytest.raises(ValueError, match=name):
            T.part_affinity_fields(_KP, _VIS, _LIMBS, **kw_paf)
    with pytest.raises(ValueError, match=name):
        T.batch_targets([_KP], [_VIS], _LIMBS, **kw)


@pytest.mark.parametrize("value", [math.nan, 0.0, -1.0, math.inf])
def test_bad_limb_width_and_mask_stride_are_errors(value):
    with pytest.raises(ValueError, match="limb_width"):
        T.part_affinity_fields(_KP, _VIS, _LIMBS, 8, 2, limb_width=value)
    with pytest.raises(ValueError, match="stride"):
        T.loss_mask(_MASK, 4, value)


def test_targets_with_no_people_still_check_their_parameters():
    empty = np.zeros((0, 3, 2))
    assert T.confidence_maps(empty, None, 8, 2).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="stride"):
        T.confidence_maps(empty, None, 8, math.nan)
    with pytest.raises(ValueError, match="sigma"):
        T.confidence_maps(empty, None, 8, 2, sigma=math.nan)


def test_nan_in_maps_passed_to_parsing_is_an_error():
    cm, paf = _maps()
    bad_cm, bad_paf = cm.clone(), paf.clone()
    bad_cm[0, 3, 3] = math.nan
    bad_paf[1, 5, 5] = math.nan
    with pytest.raises(ValueError, match="heatmaps"):
        P.parse(bad_cm, paf, _LIMBS)
    with pytest.raises(ValueError, match="pafs"):
        P.parse(cm, bad_paf, _LIMBS)
    with pytest.raises(ValueError, match="heatmaps"):
        P.parse_batch(bad_cm[None], paf[None], _LIMBS)
    with pytest.raises(ValueError, match="heatmaps"):
        P.find_peaks(bad_cm)
    with pytest.raises(ValueError, match="paf_y"):
        P.limb_scores(paf[0], bad_paf[1], torch.tensor([[3.0, 4.0]]), torch.tensor([[8.0, 9.0]]))
    with pytest.raises(ValueError, match="scores"):
        P.match_limb(np.array([[math.nan, 0.5]]))
    coco_cm, coco_paf = _coco_maps()
    coco_cm[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="heatmaps"):
        E.parse_maps(coco_cm, coco_paf)


def test_model_and_inputs_on_different_devices():
    meta = _image()[None].to("meta")
    with pytest.raises(ValueError, match="images"):
        _net()(meta)
    with pytest.raises(ValueError, match="images"):
        E.predict(_net(), meta)
    with pytest.raises(ValueError, match="images"):
        E.detect(_net(), meta, flip=False, scales=(1.0,))
    cm, paf = _maps()
    with pytest.raises(ValueError, match="pafs"):
        P.parse(cm, paf.to("meta"), _LIMBS)
    with pytest.raises(ValueError, match="cand_a"):
        P.limb_scores(paf[0], paf[1], torch.zeros(1, 2, device="meta"), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="paf_target"):
        M.openpose_loss([torch.zeros(1, 4, 3, 3)], [torch.zeros(1, 2, 3, 3)], torch.zeros(1, 4, 3, 3, device="meta"),
                        torch.zeros(1, 2, 3, 3))


def test_uint8_images_give_the_result_of_the_image_divided_by_255():
    u8 = (torch.rand(2, 3, 16, 16, generator=_gen(3)) * 255).round().to(torch.uint8)
    as_float = u8.float() / 255
    a, b = _net()(u8), _net()(as_float)
    torch.testing.assert_close(a, b)
    for images in (u8, u8.numpy()):
        for x, y in zip(E.predict(_net(), images, flip=True, scales=(1.0, 1.5)),
                        E.predict(_net(), as_float, flip=True, scales=(1.0, 1.5))):
            torch.testing.assert_close(x, y)
    with pytest.raises(ValueError, match="images"):  # a 0-255 image stored as float is refused
        E.predict(_net(), u8.float())


@pytest.mark.parametrize("value", [0, -1, 2.5, True, math.nan, "2"])
@pytest.mark.parametrize("name", ["num_keypoints", "num_limbs", "paf_stages", "cm_stages", "stage_channels",
                                  "stage_hidden", "stage_blocks", "feature_channels", "backbone_width"])
def test_openpose_net_rejects_bad_counts(name, value):
    with pytest.raises((TypeError, ValueError), match=name):
        M.OpenPoseNet(**{"backbone": "small", name: value})


@pytest.mark.parametrize("value", [0, -3, 1.5, False, math.nan])
def test_blocks_reject_bad_counts(value):
    with pytest.raises((TypeError, ValueError), match="c_in"):
        M.ConvBlock(value, 2)
    with pytest.raises((TypeError, ValueError), match="num_blocks"):
        M.Stage(3, 2, width=2, hidden=4, num_blocks=value)
    with pytest.raises((TypeError, ValueError), match="width"):
        M.SmallBackbone(width=value)
    with pytest.raises((TypeError, ValueError), match="num_keypoints"):
        M.openpose_paper(num_keypoints=value)


def test_generators_check_their_arguments_when_called():
    with pytest.raises(ValueError, match="batch_size"):
        E.scene_batches(_scenes(), 0, _gen())
    with pytest.raises(ValueError, match="sigma"):
        E.scene_batches(_scenes(), 1, _gen(), sigma=math.nan)


def test_nothing_is_silently_truncated():
    with pytest.raises(ValueError, match="limbs"):
        T.part_affinity_fields(_KP, _VIS, [(0.5, 1)], 8, 2)
    with pytest.raises(ValueError, match="image_size"):
        E.scene_targets(list(_scenes().keypoints), list(_scenes().visible), 36)
    with pytest.raises(TypeError, match="idx"):
        _scenes().subset([0.5])
    with pytest.raises(ValueError, match="batch_size"):
        E.per_stage_evaluate(_net(), _scenes(), batch_size=1.5)
    with pytest.raises(ValueError, match="scales"):  # not the scale 1
        E.predict(_net(), _image()[None], scales="1")


# --- properties ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 11), st.integers(0, 9), st.sampled_from([1, 2, 4, 8]), st.floats(0.5, 3.0))
def test_confidence_map_peaks_at_a_keypoint_on_a_pixel_centre(j, i, stride, sigma):
    """A keypoint at the centre of heatmap pixel (j, i), x = s (j + 1/2) - 1/2 in image
    pixels, gives a map whose only maximum, 1, is at that pixel."""
    kp = np.array([[[stride * (j + 0.5) - 0.5, stride * (i + 0.5) - 0.5]]])
    cm = T.confidence_maps(kp, None, (10, 12), stride, sigma)
    assert cm.shape == (1, 10, 12) and cm[0, i, j] == 1.0
    assert int(cm[0].argmax()) == i * 12 + j and int((cm[0] == 1.0).sum()) == 1
    peaks = P.find_peaks(cm)[0]
    assert peaks.shape == (1, 3) and peaks[0].tolist() == [float(j), float(i), 1.0]


@st.composite
def _separate_people(draw):
    """1-3 people of a 3-keypoint chain, 16 px apart, integer coordinates (stride 1)."""
    people = []
    for p in range(draw(st.integers(1, 3))):
        x0, top = 8 + 16 * p + draw(st.integers(-2, 2)), draw(st.integers(2, 5))
        people.append([(x0, top), (x0 + draw(st.integers(-2, 2)), top + 6 + draw(st.integers(0, 2))),
                       (x0 + draw(st.integers(-2, 2)), top + 13 + draw(st.integers(0, 2)))])
    order = draw(st.permutations(range(len(people))))
    return np.array(people, dtype=np.float64), list(order)


def _parsed_set(people: np.ndarray) -> set:
    cm = T.confidence_maps(people, None, (24, 48), 1, 1.5)
    paf = T.part_affinity_fields(people, None, _LIMBS, (24, 48), 1, 1.0)
    found = P.parse(cm, paf, _LIMBS, stride=1, min_parts=3)
    return {tuple(map(tuple, p.keypoints.tolist())) for p in found}


@settings(max_examples=25, deadline=None)
@given(_separate_people())
def test_parse_recovers_people_rendered_into_maps_in_any_order(people_order):
    people, order = people_order
    truth = {tuple(map(tuple, p.tolist())) for p in people}
    assert _parsed_set(people) == truth
    assert _parsed_set(people[order]) == truth  # the order of the people does not change the set
