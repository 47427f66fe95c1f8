"""Tests for kpedu.viz, kpedu.widgets and kpedu.exercises (headless)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kpedu import exercises, viz, widgets  # noqa: E402
from kpedu.data import COCO17  # noqa: E402


def test_to_hwc_and_show_image_extent():
    assert viz.to_hwc(torch.rand(3, 10, 12)).shape == (10, 12, 3)
    assert viz.to_hwc(np.random.rand(10, 12, 3)).shape == (10, 12, 3)
    with pytest.raises(ValueError):
        viz.to_hwc(np.zeros((2, 3, 4, 5)))
    fig, ax = plt.subplots()
    viz.show_image(ax, np.zeros((3, 10, 12)))
    assert ax.get_xlim() == (-0.5, 11.5) and ax.get_ylim() == (9.5, -0.5)
    plt.close(fig)


def test_draw_skeleton_counts_limbs():
    kp = np.random.default_rng(0).uniform(0, 50, (17, 2))
    vis = np.full(17, 2)
    vis[COCO17.index("left_wrist")] = 0  # removes the left forearm
    fig, ax = plt.subplots()
    viz.draw_skeleton(ax, kp, vis)
    limbs_drawn = sum(1 for line in ax.lines if len(line.get_xdata()) == 2 and line.get_linestyle() == "-")
    expected = sum(1 for a, b in COCO17.limbs if vis[a] > 0 and vis[b] > 0)
    assert limbs_drawn == expected
    with pytest.raises(ValueError):
        viz.draw_skeleton(ax, np.zeros((5, 2)))
    plt.close(fig)


def test_grids():
    fig = viz.heatmap_grid(torch.rand(17, 8, 8), COCO17.keypoint_names, image=torch.rand(3, 32, 32))
    assert len([a for a in fig.axes if a.images]) == 17
    plt.close(fig)
    imgs = torch.rand(3, 3, 32, 32)
    kp = torch.rand(3, 17, 2) * 30
    fig = viz.prediction_grid(imgs, kp, kp + 1, torch.full((3, 17), 2), ncols=2)
    assert len(fig.axes) == 4
    plt.close(fig)


def test_explorer_live_and_static():
    calls = []

    def draw(fig, a, b):
        calls.append((a, b))
        fig.subplots().plot([0, a], [0, b])

    ex = widgets.Explorer(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]}, sweep="a", defaults={"b": 1.0})
    assert ex.defaults == {"a": 2, "b": 1.0}
    html = ex.animation_html()
    assert "<script" in html and "anim" in html.lower()
    assert "://" not in html.split("data:image")[0] and "font-awesome" not in html, "the sweep must work offline"
    assert 'class="fa fa-play"' in html  # the player's buttons keep their icon classes (the theme's Font Awesome)
    assert {c[0] for c in calls} >= {1, 2, 3}
    w = ex.widget()
    sliders = [c for c in w.children if hasattr(c, "options")]
    assert len(sliders) == 2
    n = len(calls)
    sliders[0].value = 3
    assert calls[-1] == (3, 1.0) and len(calls) == n + 1
    with pytest.raises(ValueError, match="sweep"):
        widgets.Explorer(draw, {"a": [1]}, sweep="c")
    with pytest.raises(ValueError, match="no values"):
        widgets.Explorer(draw, {"a": []})


def test_exercise_checks(capsys):
    exercises.check_close("ex", [1.0, 2.0], np.array([1.0, 2.0]))
    assert "passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="returned None"):
        exercises.check_close("ex", None, 1.0)
    with pytest.raises(AssertionError, match="shape"):
        exercises.check_close("ex", [1.0], [1.0, 2.0])
    with pytest.raises(AssertionError, match="differ"):
        exercises.check_close("ex", [1.0], [1.5])
    with pytest.raises(AssertionError, match="hint"):
        exercises.check_true("ex", False, "hint")


def test_paf_drawing():
    import matplotlib.pyplot as plt
    import numpy as np
    import pytest
    from kpedu import viz

    px = np.zeros((4, 5)); py = np.zeros((4, 5))
    px[1, 2] = 1.0                       # pointing right
    py[2, 3] = -0.5                      # pointing up, half length
    rgb = viz.paf_to_rgb(px, py)
    assert rgb.shape == (4, 5, 3)
    assert np.allclose(rgb[0, 0], 0) and np.allclose(rgb[1, 2], [1, 0, 0])   # hue 0 = red, full value
    assert np.isclose(rgb[2, 3].max(), 0.5)
    fig, ax = plt.subplots()
    q = viz.draw_paf(ax, px, py, stride=8)
    assert q.N == 2                      # two non-zero vectors drawn
    off = np.asarray(q.get_offsets())
    assert np.allclose(sorted(map(tuple, off)), [(19.5, 11.5), (27.5, 19.5)])   # (j + .5) * 8 - .5
    assert viz.draw_paf(ax, px * 0, py * 0) is None
    with pytest.raises(ValueError):
        viz.draw_paf(ax, px, py[:2])
    plt.close(fig)


def test_to_hwc_scales_uint8():
    import numpy as np
    import torch
    from kpedu import viz

    t = torch.full((3, 4, 4), 128, dtype=torch.uint8)
    assert np.allclose(viz.to_hwc(t), 128 / 255)
    assert np.allclose(viz.to_hwc(t.numpy().transpose(1, 2, 0)), 128 / 255)
    assert viz.to_hwc(torch.ones(3, 4, 4) * 2).max() == 1.0


def test_draw_skeleton_accepts_array_colours():
    import matplotlib.pyplot as plt
    import numpy as np
    from kpedu import viz

    fig, ax = plt.subplots()
    kp = np.random.default_rng(0).uniform(0, 50, (17, 2))
    viz.draw_skeleton(ax, kp, np.full(17, 2), color=plt.cm.tab10(np.arange(10))[3])   # an RGBA array
    assert len(ax.lines) > 0
    plt.close(fig)


def test_landmark_colors_and_draw_landmarks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pytest

    from kpedu import viz

    c10 = viz.landmark_colors(10)
    assert c10.shape == (10, 4) and len({tuple(c) for c in c10}) == 10
    c30 = viz.landmark_colors(30)
    assert c30.shape == (30, 4) and len({tuple(np.round(c, 6)) for c in c30}) == 30
    with pytest.raises(ValueError):
        viz.landmark_colors(0)
    fig, ax = plt.subplots()
    viz.draw_landmarks(ax, np.array([[1.0, 2.0], [3.0, 4.0]]), labels=True)
    offsets = ax.collections[0].get_offsets()
    assert np.allclose(offsets, [[1, 2], [3, 4]])
    assert [t.get_text() for t in ax.texts] == ["0", "1"]
    with pytest.raises(ValueError, match="K, 2"):
        viz.draw_landmarks(ax, np.zeros((2, 3)))
    plt.close(fig)
