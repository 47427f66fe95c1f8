"""Bad inputs to kpedu.viz and kpedu.widgets (issue 20), through the shared harness
``tests/badinput.py``, plus the explicit regressions of this area.

Drawing functions are compared by what they draw: the image arrays, line and marker
coordinates, scatter offsets and quiver vectors of every axes (:func:`_drawn`), so a
``uint8`` image must draw the same picture as the same image divided by 255.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from badinput import Case, assert_ok, parametrize, gen as _gen  # noqa: E402
from kpedu import viz, widgets  # noqa: E402



def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=_gen(seed))


def _kp(n: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 15, (n, 2))


def _drawn(obj) -> list:
    """What a figure or axes shows: per axes, image arrays, line points, collection
    offsets and quiver vectors, as float arrays."""
    axes = obj.axes if isinstance(obj, Figure) else [obj]
    out = []
    for ax in axes:
        out.append([np.asarray(im.get_array(), dtype=float) for im in ax.images])
        out.append([np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)])
                    for line in ax.lines])
        out.append([np.asarray(c.get_offsets(), dtype=float) for c in ax.collections])
        out.append([np.stack([np.asarray(c.U, float), np.asarray(c.V, float)]) for c in ax.collections
                    if hasattr(c, "U")])
    return out


def _on_axes(func):
    """``func(ax, **kw)`` on a fresh axes; returns what was drawn and closes the figure."""
    def call(**kw):
        fig, ax = plt.subplots()
        try:
            func(ax, **kw)
            return _drawn(ax)
        finally:
            plt.close(fig)
    return call


def _figure(func):
    """``func(**kw)`` returning a figure; returns what was drawn and closes the figure."""
    def call(**kw):
        fig = func(**kw)
        try:
            return _drawn(fig)
        finally:
            plt.close(fig)
    return call


def _draw(fig, a=1, b=2.0):
    ax = fig.add_subplot()
    ax.plot([0, a], [0, b])


def _explorer() -> widgets.Explorer:
    return widgets.Explorer(_draw, {"a": [1, 2], "b": [1.0, 2.0]}, figsize=(2.0, 1.0), dpi=20)


_FIGSIZE_BAD = [("nan", (math.nan, 1.0), "error"), ("zero", (0.0, 1.0), "error"), ("negative", (-2.0, 1.0), "error"),
                ("text", "2x1", "error"), ("one value", (2.0,), "error"), ("complex", (2j, 1.0), "error"),
                ("inf", (math.inf, 1.0), "error")]
_PAF = (torch.rand(4, 5, generator=_gen(1)) - 0.5, torch.rand(4, 5, generator=_gen(2)) - 0.5)

CASES = [
    Case(viz.to_hwc, lambda: dict(image=_image()), {"image": "image"}),
    Case(viz.show_image, lambda: dict(image=_image()), {"image": "image"}, call=_on_axes(viz.show_image)),
    Case(viz.draw_skeleton, lambda: dict(keypoints=_kp(), visible=np.full(17, 2), linewidth=1.0, markersize=2.0),
         {"keypoints": "pred", "visible": "visibility", "linewidth": "nonnegative", "markersize": "nonnegative"},
         extra={"keypoints": [("wrong K", _kp(5), "error")]}, call=_on_axes(viz.draw_skeleton)),
    Case(viz.overlay_heatmap, lambda: dict(image=_image(), heatmap=torch.rand(4, 4, generator=_gen(1)), alpha=0.5),
         {"image": "image", "heatmap": "maps", "alpha": "probability"},
         skip={"heatmap": {"2-d"}},  # (h, w) is the right shape here
         extra={"heatmap": [("3-d", torch.rand(2, 4, 4), "error")]}, call=_on_axes(viz.overlay_heatmap)),
    Case(viz.heatmap_grid, lambda: dict(heatmaps=torch.rand(3, 4, 4, generator=_gen(1)), image=_image(), ncols=2,
                                        size=1.0),
         {"heatmaps": "maps", "image": "image", "ncols": "count", "size": "positive"},
         extra={"names": [("too few", ["a"], "error"), ("text", "abc", "error")]}, call=_figure(viz.heatmap_grid)),
    Case(viz.prediction_grid, lambda: dict(images=torch.rand(2, 3, 16, 16, generator=_gen(1)),
                                           preds=np.stack([_kp(), _kp(seed=1)]),
                                           gts=np.stack([_kp(seed=2), _kp(seed=3)]),
                                           visible=np.full((2, 17), 2), ncols=2, size=1.0),
         {"images": "image", "preds": "pred", "gts": "pred", "visible": "visibility", "ncols": "count",
          "size": "positive"},
         extra={"images": [("a list of HWC arrays", [np.random.default_rng(0).uniform(size=(16, 16, 3))] * 2, "runs")],
                "preds": [("too few", np.stack([_kp()]), "error")]},
         call=_figure(viz.prediction_grid)),
    Case(viz.paf_to_rgb, lambda: dict(paf_x=_PAF[0], paf_y=_PAF[1], max_norm=1.0),
         {"paf_x": "maps", "paf_y": "maps", "max_norm": "positive"},
         skip={"paf_x": {"2-d"}, "paf_y": {"2-d"}},  # (h, w) is the right shape here
         extra={"paf_x": [("numpy", _PAF[0].numpy(), "same")]}),
    Case(viz.draw_paf, lambda: dict(paf_x=_PAF[0], paf_y=_PAF[1], stride=8.0, step=1, min_norm=0.1, scale=4.0),
         {"paf_x": "maps", "paf_y": "maps", "stride": "positive", "step": "count", "min_norm": "nonnegative",
          "scale": "positive"},
         skip={"paf_x": {"2-d"}, "paf_y": {"2-d"}},  # (h, w) is the right shape here
         call=_on_axes(viz.draw_paf)),
    Case(viz.landmark_colors, lambda: dict(k=3), {"k": "count"}),
    Case(viz.draw_landmarks, lambda: dict(landmarks=_kp(4), size=10.0), {"landmarks": "pred", "size": "nonnegative"},
         call=_on_axes(viz.draw_landmarks)),
    Case(viz.draw_matches, lambda: dict(image1=_image(), image2=_image(seed=1), kp1=_kp(3), kp2=_kp(4, seed=1),
                                        matches=np.array([[0, 1], [2, 3]]), correct=np.array([True, False]), gap=4,
                                        max_lines=10, linewidth=0.5, seed=0),
         {"image1": "image", "image2": "image", "kp1": "pred", "kp2": "pred", "gap": "index", "max_lines": "count",
          "linewidth": "positive", "seed": "index"},
         extra={"matches": [("fraction", np.array([[0.5, 1], [2, 3]]), "error"),
                            ("out of range", np.array([[0, 4]]), "error"),
                            ("negative", np.array([[-1, 0]]), "error"), ("nan", np.array([[math.nan, 1]]), "error"),
                            ("text", "mm", "error"), ("3 columns", np.zeros((2, 3), int), "error")],
                "correct": [("wrong length", np.array([True]), "error"), ("nan", np.array([math.nan, 1.0]), "error"),
                            ("text", "cc", "error")]},
         call=_on_axes(viz.draw_matches)),
    # -- widgets -------------------------------------------------------------------------
    Case(widgets.Explorer, lambda: dict(figsize=(2.0, 1.0), dpi=20), {"dpi": "count"},
         extra={"figsize": _FIGSIZE_BAD},
         call=lambda **kw: widgets.Explorer(_draw, {"a": [1, 2]}, **kw).figsize),
    Case(widgets.Explorer.animation_html, lambda: dict(fps=2.0), {"fps": "positive"},
         call=lambda **kw: _explorer().animation_html(**kw)),
    Case(widgets.Explorer.show, lambda: dict(fps=2.0), {"fps": "positive"},
         call=lambda **kw: _explorer().show(live=False, static=False, **kw)),
    Case(widgets.explore, lambda: dict(figsize=(2.0, 1.0), fps=2.0), {"fps": "positive"},
         extra={"figsize": _FIGSIZE_BAD},
         call=lambda **kw: widgets.explore(_draw, {"a": [1, 2]}, live=False, static=False, **kw).figsize),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)


def test_bad_input_cases_cover_the_public_api():
    """Every public callable of kpedu.viz and kpedu.widgets that takes arrays, sizes or
    numbers has a case."""
    covered = {c.func for c in CASES}
    for mod in (viz, widgets):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj):
                assert obj in covered, f"{mod.__name__}.{name} has no bad-input case"


# --- the bugs of issue 20, one test each ---------------------------------------------------


def test_a_uint8_image_draws_the_same_picture_as_the_image_divided_by_255():
    u8 = (torch.rand(3, 16, 16, generator=_gen(3)) * 255).round().to(torch.uint8)
    as_float = u8.float() / 255
    np.testing.assert_array_equal(viz.to_hwc(u8), viz.to_hwc(as_float))
    np.testing.assert_array_equal(viz.to_hwc(u8.numpy().transpose(1, 2, 0)), viz.to_hwc(as_float))
    heat = torch.rand(4, 4)
    for draw in (_on_axes(viz.show_image), _on_axes(lambda ax, image: viz.overlay_heatmap(ax, image, heat))):
        a, b = draw(image=u8), draw(image=as_float)
        np.testing.assert_allclose(a[0][0], b[0][0], atol=1e-7)
    preds = np.stack([_kp(), _kp(seed=1)])
    grid_u8 = _figure(viz.prediction_grid)(images=u8[None].repeat(2, 1, 1, 1), preds=preds)
    grid_f = _figure(viz.prediction_grid)(images=as_float[None].repeat(2, 1, 1, 1), preds=preds)
    for x, y in zip(grid_u8, grid_f):
        for p, q in zip(x, y):
            np.testing.assert_allclose(p, q, atol=1e-7)


def test_a_0_255_float_image_is_an_error_not_a_white_picture():
    with pytest.raises(ValueError, match="image"):
        viz.to_hwc(_image() * 255)
    with pytest.raises(ValueError, match="image2"):
        _on_axes(viz.draw_matches)(image1=_image(), image2=_image() * 255, kp1=_kp(2), kp2=_kp(2),
                                   matches=np.zeros((0, 2), int))


def test_images_slightly_outside_0_1_are_clipped_as_before():
    assert viz.to_hwc(torch.ones(3, 4, 4) * 2).max() == 1.0
    assert viz.to_hwc(torch.full((3, 4, 4), -0.2)).min() == 0.0


def test_nan_keypoints_are_missing_points_not_errors():
    kp = _kp()
    kp[3] = np.nan
    drawn = _on_axes(viz.draw_skeleton)(keypoints=kp)
    assert drawn[1]  # the other keypoints and limbs are drawn
    _on_axes(viz.draw_landmarks)(landmarks=kp[:5])


def test_draw_matches_with_no_keypoints_and_no_matches():
    """The D2-Net chapter draws two images without keypoints this way."""
    dx = None

    def draw(ax, **kw):
        nonlocal dx
        dx = viz.draw_matches(ax, **kw)

    _on_axes(draw)(image1=_image(), image2=_image(seed=1), kp1=np.zeros((0, 2)), kp2=np.zeros((0, 2)),
                   matches=np.zeros((0, 2), int))
    assert dx == 16 + 8


def test_fractional_counts_are_not_truncated():
    with pytest.raises(ValueError, match="step"):
        _on_axes(viz.draw_paf)(paf_x=_PAF[0], paf_y=_PAF[1], step=1.5)
    with pytest.raises(ValueError, match="matches"):
        _on_axes(viz.draw_matches)(image1=_image(), image2=_image(), kp1=_kp(3), kp2=_kp(3),
                                   matches=np.array([[0.5, 1]]))
    with pytest.raises(ValueError, match="k"):
        viz.landmark_colors(2.5)


def test_non_finite_parameters_are_errors():
    with pytest.raises(ValueError, match="max_norm"):
        viz.paf_to_rgb(_PAF[0], _PAF[1], max_norm=math.nan)
    with pytest.raises(ValueError, match="alpha"):
        _on_axes(viz.overlay_heatmap)(image=_image(), heatmap=torch.rand(4, 4), alpha=math.nan)
    with pytest.raises(ValueError, match="fps"):
        _explorer().animation_html(fps=math.inf)
    with pytest.raises(ValueError, match="figsize"):
        widgets.Explorer(_draw, {"a": [1]}, figsize=(math.nan, 2.0))
