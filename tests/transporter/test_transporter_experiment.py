"""kpedu.transporter.experiment: the evaluation protocol on known answers, and the recipe end
to end at a tiny size."""
import numpy as np
import pytest
import torch

from kpedu.transporter import experiment as E


@pytest.fixture(scope="module")
def clips():
    v = E.make_videos(6, seed=123, frames=10, size=32)
    return v.subset(slice(0, 3)), v.subset(slice(3, 6))


def _flat_points(videos):
    return videos.flat()["points"]


def test_ground_truth_as_keypoints_regresses_exactly(clips):
    fit, test = clips
    r = E.evaluate(_flat_points(fit)[:, list(E.BODY_POINTS)], fit, _flat_points(test)[:, list(E.BODY_POINTS)], test)
    assert r["nme"] < 1e-3 and r["predictions"].shape == (30, len(E.BODY_POINTS), 2)


def test_the_error_is_in_percent_of_the_standing_height(clips):
    fit, test = clips
    gt_fit = _flat_points(fit)[:, list(E.BODY_POINTS)]
    gt_test = _flat_points(test)[:, list(E.BODY_POINTS)]
    # keypoints that carry nothing but one fixed point: the regression predicts a constant pose
    const_fit, const_test = torch.full((30, 1, 2), 16.0), torch.full((30, 1, 2), 16.0)
    r = E.evaluate(const_fit, fit, const_test, test)
    pred = torch.as_tensor(r["predictions"])
    dist = (pred - gt_test.double()).norm(dim=-1).mean(1)
    height = test.flat()["scale"].double()
    assert r["nme"] == pytest.approx(float((dist / height).mean() * 100), rel=1e-6)
    assert r["nme"] > 5


def test_drift_is_zero_for_glued_keypoints_and_measures_jitter(clips):
    _, test = clips
    gt = _flat_points(test)[:, list(E.BODY_POINTS)]
    glued = gt[:, [3, 0, 7]] + torch.tensor([0.3, -0.4])       # fixed offsets from three joints
    d = E.temporal_drift(glued, test)
    assert d["drift"] < 1e-4 and list(d["match"]) == [3, 0, 7]
    assert d["mean_distance"] == pytest.approx(float((0.5 / test.scale.double()).mean() * 100), rel=1e-4)
    g = torch.Generator().manual_seed(0)
    jitter = glued + torch.randn(glued.shape, generator=g) * 0.5
    assert E.temporal_drift(jitter, test, match=[3, 0, 7])["drift"] > 0.5


def test_match_keypoints_finds_the_joints(clips):
    fit, _ = clips
    gt = _flat_points(fit)[:, list(E.BODY_POINTS)]
    assert list(E.match_keypoints(gt[:, [5, 2, 9]], fit)) == [5, 2, 9]


def test_protocol_refuses_mismatched_inputs(clips):
    fit, test = clips
    with pytest.raises(ValueError, match="keypoints_fit"):
        E.evaluate(torch.zeros(5, 2, 2), fit, torch.zeros(30, 2, 2), test)
    with pytest.raises(ValueError, match="keypoints"):
        E.temporal_drift(torch.zeros(5, 2, 2), test)
    with pytest.raises(ValueError, match="kind"):
        E.make_videos(1, 0, kind="balls")
    with pytest.raises(TypeError, match="videos"):
        E.train_transporter(E.make_model(width=0.25), torch.zeros(2, 3, 32, 32), steps=1)


def test_recipe_end_to_end_tiny(clips):
    torch.manual_seed(0)
    fit, test = clips
    train = E.make_videos(4, seed=9, frames=6, size=32)
    m = E.make_model(width=0.25, num_keypoints=4)
    r = E.run_recipe(m, "ci", "cpu", progress=False, steps=3, train=train, fit_videos=fit, test_videos=test)
    for key in ("nme", "train_nme", "drift", "drift_per_keypoint", "mean_distance", "curve", "loss", "steps"):
        assert key in r
    assert r["steps"] == 3 and len(r["drift_per_keypoint"]) == 4 and np.isfinite(r["nme"])
    assert r["curve"][-1][0] == 3


def test_training_lowers_the_reconstruction_error():
    torch.manual_seed(1)
    v = E.make_videos(2, seed=4, frames=4, size=32, kind="objects")
    m = E.make_model(width=0.25, num_keypoints=3)
    pairs = v.sample_pairs(8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.eval()
        before = E.transporter_loss(m, pairs["source"], pairs["target"]).item()
    E.train_transporter(m, v, steps=40, batch_size=8, lr=3e-3, progress=False)
    with torch.no_grad():
        m.eval()
        after = E.transporter_loss(m, pairs["source"], pairs["target"]).item()
    assert after < 0.5 * before, (before, after)


def test_fse_baseline_runs_on_the_same_frames(clips):
    fit, _ = clips
    m = E.make_fse_baseline()
    E.train_fse_baseline(m, fit, steps=1, progress=False)
    k = E.fse_keypoints(m, fit.images)
    assert k.shape == (30, E.FSE_BASELINE["num_keypoints"], 2)


def test_step_timing_reports_pairs_per_second():
    t = E.step_timing(E.make_model(width=0.25, num_keypoints=2), batch_size=2, steps=1)
    assert t["pairs_per_second"] > 0 and t["batch_size"] == 2
