"""Bad inputs to kpedu.metrics (issue 20), through the shared harness, and the NaN policy:
a NaN (missing) prediction is a miss in every metric, never dropped, never an error."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import Case, assert_ok, parametrize
from kpedu import metrics
from kpedu.data import COCO17, results_to_coco, to_coco

RNG = np.random.default_rng(0)
GT17 = RNG.uniform(20, 80, (2, 17, 2))
PRED17 = GT17 + RNG.normal(0, 2, GT17.shape)
VIS17 = np.full((2, 17), 2)
VIS17[1, 3] = 0
AREAS = np.array([900.0, 1600.0])

GT3 = np.array([[[0.0, 0.0], [4.0, 1.0], [2.0, 10.0]], [[5.0, 5.0], [9.0, 3.0], [1.0, 1.0]]])
PRED3 = GT3 + np.array([[0.5, 0.0], [0.0, 1.0], [3.0, 0.0]])
VIS3 = np.array([[2, 2, 2], [2, 1, 0]])


def _bad_arrays(good, lo_ok_zero: bool):
    """Arrays of per-person (or per-keypoint) positive values: areas, sigmas, normalisers."""
    g = np.asarray(good, dtype=np.float64)
    out = [
        ("negative entry", np.r_[-g[0], g[1:]], "error"),
        ("nan entry", np.r_[np.nan, g[1:]], "error"),
        ("inf entry", np.r_[np.inf, g[1:]], "error"),
        ("complex", g.astype(np.complex64), "error"),
        ("text", "xyz", "error"),
        ("bool", g > 0, "error"),
        ("wrong length", np.r_[g, g], "error"),
        ("torch", torch.as_tensor(g), "same"),
    ]
    if not lo_ok_zero:
        out.append(("zero entry", np.r_[0.0, g[1:]], "error"))
    return out


def _coco_gt():
    return to_coco([{"keypoints": GT17[i:i + 1], "visible": VIS17[i:i + 1], "areas": AREAS[i:i + 1],
                     "height": 100, "width": 100} for i in range(2)])


def _coco_results(pred=PRED17):
    out = []
    for i in range(2):
        out += results_to_coco(i + 1, np.nan_to_num(pred[i:i + 1], nan=0.0), np.ones((1, 17)), np.ones(1))
    return out


def _with_nan_keypoint(results):
    res = [dict(r, keypoints=list(r["keypoints"])) for r in results]
    res[0]["keypoints"][0] = float("nan")
    return res


def _keypoint_ap(gt_keypoints, gt_visible, gt_areas, pred_keypoints, pred_scores, keypoint_scores=None,
                 image_size=(100, 100), sigmas=None):
    """keypoint_ap on one image per person, so that the harness attacks whole arrays."""
    n = len(GT17)
    split = lambda a: None if a is None else [a[i:i + 1] for i in range(n)]  # noqa: E731
    if isinstance(gt_keypoints, str) or isinstance(pred_keypoints, str):
        return metrics.keypoint_ap(gt_keypoints if isinstance(gt_keypoints, str) else split(gt_keypoints),
                                   split(gt_visible), split(gt_areas),
                                   pred_keypoints if isinstance(pred_keypoints, str) else split(pred_keypoints),
                                   split(pred_scores))
    return metrics.keypoint_ap(split(gt_keypoints), split(gt_visible), split(gt_areas), split(pred_keypoints),
                               split(pred_scores), split(keypoint_scores), image_size, sigmas)


CASES = [
    Case(metrics.pck, lambda: dict(pred=PRED3, gt=GT3, visible=VIS3, normalizer=np.array([10.0, 20.0]),
                                   threshold=0.2),
         {"pred": "pred", "gt": "points", "visible": "visibility", "threshold": "positive"},
         # (a NaN entry of a normaliser array is a person whose normaliser is undefined, as
         # torso_size gives: that person is left out, so "nan entry" is not attacked)
         extra={"normalizer": [v for v in _bad_arrays([10.0, 20.0], lo_ok_zero=False) if v[0] != "nan entry"]
                + [("unknown name", "tall", "error"), ("negative number", -3.0, "error"),
                   ("nan number", math.nan, "error"), ("inf number", math.inf, "error")]},
         call=lambda **kw: metrics.pck(**kw).correct.tolist()),
    Case(metrics.pck_curve, lambda: dict(pred=PRED3, gt=GT3, visible=VIS3, normalizer="bbox",
                                         thresholds=np.array([0.1, 0.2, 0.5])),
         {"pred": "pred", "gt": "points", "visible": "visibility"},
         extra={"thresholds": [("nan", [0.1, math.nan], "error"), ("negative", [-0.1, 0.2], "error"),
                               ("zero", [0.0, 0.2], "error"), ("text", "0.2", "error"),
                               ("complex", [0.1 + 1j], "error"), ("empty", [], "error"),
                               ("2-d", np.ones((2, 2)) * 0.1, "error"),
                               ("torch", torch.tensor([0.1, 0.2, 0.5]), "same")]}),
    Case(metrics.torso_size, lambda: dict(gt=GT17, visible=VIS17), {"gt": "points", "visible": "visibility"}),
    Case(metrics.bbox_size, lambda: dict(gt=GT3, visible=VIS3), {"gt": "points", "visible": "visibility"}),
    Case(metrics.nme, lambda: dict(pred=PRED3, gt=GT3, normalizer=4.0, visible=VIS3, reduce="none"),
         {"pred": "pred", "gt": "points", "normalizer": "positive", "visible": "visibility"},
         extra={"normalizer": [(label, v, e) for label, v, e in _bad_arrays([4.0, 2.0], lo_ok_zero=False)
                               if label not in ("torch", "nan entry")],
                "reduce": [("unknown", "median", "error"), ("not text", 3, "error")]},
         # "list": one normaliser per person is the array form (and a NaN entry is an undefined one)
         skip={"normalizer": {"list"}}),
    Case(metrics.oks, lambda: dict(pred=PRED17, gt=GT17, visible=VIS17, areas=AREAS, sigmas=None),
         {"pred": "pred", "gt": "points", "visible": "visibility"},
         extra={"areas": _bad_arrays(AREAS, lo_ok_zero=True),
                "sigmas": _bad_arrays(COCO17.sigmas, lo_ok_zero=False)}),
    Case(metrics.coco_evaluate, lambda: dict(gt=_coco_gt(), results=_coco_results(), sigmas=None),
         {},
         extra={"results": [("nan keypoint", _with_nan_keypoint(_coco_results()), "runs"),
                            ("not a list", "results.json", "error"), ("a dict", {"a": 1}, "error"),
                            ("list of numbers", [1, 2, 3], "error"),
                            ("inf keypoint", [dict(_coco_results()[0], keypoints=[math.inf] * 51)], "error"),
                            ("nan score", [dict(_coco_results()[0], score=math.nan)], "error"),
                            ("short keypoints", [dict(_coco_results()[0], keypoints=[1.0] * 50)], "error")],
                "gt": [("not a dict", [1, 2], "error"), ("missing keys", {"images": []}, "error")],
                "sigmas": _bad_arrays(COCO17.sigmas, lo_ok_zero=False)}),
    Case(metrics.keypoint_ap, lambda: dict(gt_keypoints=GT17, gt_visible=VIS17, gt_areas=AREAS,
                                           pred_keypoints=PRED17, pred_scores=np.ones(2),
                                           keypoint_scores=np.ones((2, 17)), image_size=(100, 100), sigmas=None),
         {"gt_keypoints": "points", "gt_visible": "visibility", "pred_keypoints": "pred",
          "keypoint_scores": "visibility", "image_size": "size"},
         extra={"gt_areas": [v for v in _bad_arrays(AREAS, lo_ok_zero=True) if v[0] != "wrong length"]
                + [("two per person", np.stack([AREAS, AREAS], 1), "error")],
                "pred_scores": [("nan", np.array([math.nan, 1.0]), "error"),
                                ("complex", np.ones(2, np.complex64), "error"),
                                ("text", "xyz", "error"), ("two per person", np.ones((2, 2)), "error")],
                "sigmas": _bad_arrays(COCO17.sigmas, lo_ok_zero=False)},
         call=_keypoint_ap),
    Case(metrics.match_indices, lambda: dict(matches=np.array([[0, 1], [2, 0]]), n1=3, n2=2),
         {"n1": "index", "n2": "index"},
         extra={"matches": [("float", np.array([[0.0, 1.0]]), "error"), ("bool", np.ones((2, 2), bool), "error"),
                            ("complex", np.ones((2, 2), np.complex64), "error"), ("text", "xyz", "error"),
                            ("negative", np.array([[-1, 0]]), "error"), ("out of range", np.array([[3, 0]]), "error"),
                            ("3 columns", np.zeros((2, 3), np.int64), "error"),
                            ("torch", torch.tensor([[0, 1], [2, 0]]), "same")]}),
    Case(metrics.reprojection_errors, lambda: dict(kp1=np.array([[0.0, 0.0], [10.0, 5.0]]),
                                                   kp2=np.array([[12.0, 5.0], [2.0, 3.0]]),
                                                   matches=np.array([[0, 1], [1, 0]]),
                                                   H=np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]])),
         {"kp1": "pred", "kp2": "pred"},
         extra={"H": [("nan", np.full((3, 3), math.nan), "error"),
                      ("inf", np.where(np.eye(3) > 0, math.inf, 0.0), "error"),
                      ("2x3", np.eye(3)[:2], "error"), ("complex", np.eye(3, dtype=complex), "error"),
                      ("text", "identity", "error"), ("torch", torch.tensor([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]]),
                                                      "same")],
                "matches": [("out of range", np.array([[0, 5]]), "error"), ("float", np.array([[0.0, 1.0]]), "error")]}),
    Case(metrics.mma, lambda: dict(errors_per_pair=[np.array([0.5, 1.5, 3.0]), np.array([2.0])],
                                   thresholds=[1, 2, 3]),
         {},
         extra={"errors_per_pair": [("nan error", [np.array([0.5, math.nan])], "runs"),
                                    ("negative", [np.array([-1.0])], "error"),
                                    ("complex", [np.array([1 + 1j])], "error"), ("text", "xyz", "error"),
                                    ("text inside", ["xyz"], "error"), ("empty", [], "error"),
                                    ("array", np.ones((2, 3)), "error")],
                "thresholds": [("nan", [1, math.nan], "error"), ("negative", [-1], "error"),
                               ("text", "123", "error"), ("complex", [1j], "error"), ("empty", [], "error"),
                               ("inf", [math.inf], "error")]}),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


# --- the NaN policy: a missing prediction is a miss in every metric -----------------------


def _all_nan_person(pred):
    p = np.array(pred, dtype=np.float64)
    p[0] = np.nan
    return p


def test_nan_prediction_is_a_miss_in_pck():
    r = metrics.pck(_all_nan_person(PRED3), GT3, VIS3, np.array([10.0, 20.0]), 0.2)
    assert not r.correct[0].any() and r.evaluated[0].all()


def test_nan_prediction_gives_infinite_nme_and_a_warning():
    pred = _all_nan_person(PRED3)
    with pytest.warns(RuntimeWarning, match="1 of 2 samples"):
        assert metrics.nme(pred, GT3, np.array([4.0, 2.0]), VIS3) == math.inf
    with pytest.warns(RuntimeWarning, match="missing"):
        per = metrics.nme(pred, GT3, np.array([4.0, 2.0]), VIS3, reduce="none")
    assert per[0] == math.inf and np.isfinite(per[1])
    # a NaN at a keypoint that is not labelled is not a missing prediction
    pred = np.array(PRED3)
    pred[1, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(metrics.nme(pred, GT3, np.array([4.0, 2.0]), VIS3))


def test_nan_prediction_has_oks_similarity_zero():
    pred = np.array(GT17)
    pred[0, :5] = np.nan                     # five of 17 keypoints missing
    pred[1, 3] = np.nan                      # not labelled: ignored
    o = metrics.oks(pred, GT17, VIS17, AREAS)
    np.testing.assert_allclose(o, [12 / 17, 1.0])
    assert metrics.oks(_all_nan_person(GT17), GT17, VIS17, AREAS)[0] == 0.0


def test_negative_areas_are_refused():
    with pytest.raises(ValueError, match="areas"):
        metrics.oks(PRED17, GT17, VIS17, -AREAS)
    with pytest.raises(ValueError, match="gt_areas"):
        metrics.keypoint_ap([GT17[:1]], [VIS17[:1]], [np.array([-100.0])], [GT17[:1]], [np.ones(1)],
                            image_size=100)
    with pytest.raises(ValueError, match="areas"):
        metrics.oks(PRED17, GT17, VIS17, np.array([math.nan, 1.0]))


def test_nan_prediction_is_a_miss_in_ap():
    gt_kp = [GT17[i:i + 1] for i in range(2)]
    vis = [VIS17[i:i + 1] for i in range(2)]
    areas = [AREAS[i:i + 1] for i in range(2)]
    scores = [np.ones(1)] * 2
    perfect = metrics.keypoint_ap(gt_kp, vis, areas, gt_kp, scores, image_size=100)
    assert perfect["AP"] == pytest.approx(1.0)
    missing = metrics.keypoint_ap(gt_kp, vis, areas, [_all_nan_person(GT17[:1]), gt_kp[1]], scores,
                                  image_size=100)
    assert all(np.isfinite(v) for v in missing.values())
    assert missing["AR"] == pytest.approx(0.5)
    # a person with a few missing keypoints loses their similarity, not more
    part = np.array(GT17[:1])
    part[0, :3] = np.nan
    partial = metrics.keypoint_ap(gt_kp, vis, areas, [part, gt_kp[1]], scores, image_size=100)
    assert 0.5 <= partial["AR"] < 1.0
    # the same through coco_evaluate on result dictionaries
    r = metrics.coco_evaluate(_coco_gt(), _with_nan_keypoint(_coco_results(GT17)))
    assert all(np.isfinite(v) for v in r.values())


def test_nan_keypoint_is_never_a_correct_match():
    H = np.eye(3)
    kp1 = np.array([[0.0, 0.0], [np.nan, 5.0]])
    kp2 = np.array([[0.0, 0.0], [10.0, 5.0]])
    e = metrics.reprojection_errors(kp1, kp2, np.array([[0, 0], [1, 1]]), H)
    assert e[0] == 0.0 and e[1] == math.inf
    np.testing.assert_allclose(metrics.mma([e], thresholds=[1, 100]), [0.5, 0.5])
    np.testing.assert_allclose(metrics.mma([np.array([0.5, np.nan])], thresholds=[1]), [0.5])


def test_torso_size_needs_the_skeleton_keypoints():
    with pytest.raises(ValueError, match="gt must have the skeleton's 17 keypoints"):
        metrics.torso_size(GT17[:, :5])


def test_integer_and_torch_inputs_give_the_same_numbers():
    gt = np.round(GT17)
    pred = np.round(PRED17)
    ref = metrics.oks(pred, gt, VIS17, AREAS)
    np.testing.assert_allclose(metrics.oks(pred.astype(np.int64), torch.as_tensor(gt).int(), VIS17, AREAS), ref)


# --- properties ------------------------------------------------------------------------

_coords = st.floats(0, 100, allow_nan=False, width=32)


@st.composite
def _people(draw, n_max=4, k=17):
    n = draw(st.integers(1, n_max))
    gt = np.array(draw(st.lists(_coords, min_size=n * k * 2, max_size=n * k * 2))).reshape(n, k, 2)
    noise = np.array(draw(st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=n * k * 2,
                                   max_size=n * k * 2))).reshape(n, k, 2)
    vis = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n * k, max_size=n * k))).reshape(n, k)
    areas = np.array(draw(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=n, max_size=n)))
    order = np.array(draw(st.permutations(list(range(n)))))
    return gt + noise, gt, vis, areas, order


@settings(max_examples=25, deadline=None)
@given(_people())
def test_oks_lies_in_0_1_and_does_not_depend_on_the_order_of_people(people):
    pred, gt, vis, areas, order = people
    o = metrics.oks(pred, gt, vis, areas)
    labelled = vis.sum(1) > 0
    assert np.all((o[labelled] >= 0) & (o[labelled] <= 1)) and np.isnan(o[~labelled]).all()
    np.testing.assert_allclose(metrics.oks(pred[order], gt[order], vis[order], areas[order]), o[order])


@settings(max_examples=25, deadline=None)
@given(_people(), st.floats(0.05, 1.0))
def test_pck_does_not_depend_on_the_order_of_people(people, threshold):
    pred, gt, vis, _, order = people
    r = metrics.pck(pred, gt, vis, "bbox", threshold)
    s = metrics.pck(pred[order], gt[order], vis[order], "bbox", threshold)
    assert r.mean == s.mean or (math.isnan(r.mean) and math.isnan(s.mean))
    np.testing.assert_array_equal(r.correct[order], s.correct)
