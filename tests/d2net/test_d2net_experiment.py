"""kpedu.d2net.experiment: the recipe's schedule, a tiny run, the stereo check and the cost probe."""
import numpy as np
import pytest
import torch

from kpedu import bench, hub
from kpedu.d2net import experiment as E


def test_negative_pool_schedule_reaches_the_papers_hardest_negative():
    assert E.negative_pool_at(0) == E.RECIPE["pool_start"]
    assert E.negative_pool_at(E.RECIPE["pool_doubling"]) == 2 * E.RECIPE["pool_start"]
    cells = (E.RECIPE["size"] // 4) ** 2
    late = E.RECIPE["pool_doubling"] * 10
    assert E.negative_pool_at(late) is None  # all cells: the paper's loss
    pools = [E.negative_pool_at(s) or cells for s in range(0, late, 50)]
    assert pools == sorted(pools)


def test_recipe_is_registered():
    assert "d2net-book" in hub.discover_recipes()


def test_tiny_run_trains_and_evaluates():
    torch.manual_seed(0)
    model = E.make_model(0.125)
    sets = E.evaluation_sets("ci", n=2, size=96)
    before = [p.detach().clone() for p in model.parameters()]
    m = E.run_recipe(model, "ci", "cpu", progress=False, steps=4, sets=sets)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert m["steps"] == 4 and m["eval_pairs"] == 2 and np.isfinite(m["loss"])
    for kind in ("viewpoint", "illumination"):
        assert set(m["mma"][kind]) == set(E.METHODS)
        for curve in m["mma"][kind].values():
            assert len(curve) == 10 and all(0 <= v <= 1 for v in curve) and curve == sorted(curve)
    assert m["curve"] and m["curve"][-1][0] == 4


def test_features_for_rejects_unknown_methods():
    img = torch.rand(3, 64, 64)
    with pytest.raises(ValueError):
        E.features_for("surf", img)
    with pytest.raises(ValueError):
        E.features_for("d2net", img)  # needs a model


def test_stereo_check_with_sift_is_accurate():
    r = E.stereo_check(None, methods=("sift",), scale=0.5)["sift"]
    assert r["n_matches"] > 100 and r["n_checked"] <= r["n_matches"]
    assert r["accuracy"][2] > 0.6  # most SIFT matches on the real pair are within 3 px of the disparity


@pytest.mark.parametrize("method", ["sift", "d2net", "d2net-ms"])
def test_extraction_cost_measures_something(method):
    r = E.extraction_cost(method, size=64, width=0.125, repeats=1)
    assert r["seconds"] > 0 and r["peak_mb"] >= 0
    if method == "sift":
        assert r["gflops"] is None  # OpenCV: no matrix products to count
    else:
        # the network's arithmetic, counted: conv FLOPs of a width-0.125 D2-Net, over a pyramid
        # of 0.5, 1 and 2 times the image (5.25 times the pixels) for the multiscale method
        model = E.make_model(0.125).eval()
        with torch.no_grad():
            one = bench.count_flops(model, torch.rand(1, 3, 64, 64)) / 1e9
        expected = one * (1 if method == "d2net" else 5.25)
        assert r["gflops"] == pytest.approx(expected, rel=0.02)
    with pytest.raises(ValueError):
        E.extraction_cost("surf")
