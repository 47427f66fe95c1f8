"""The committed OpenPose checkpoint still reaches the COCO AP its registry entry states,
on scenes generated fresh for the test (neither the training nor the chapter's seeds)."""
import pytest

from kpedu import hub
from kpedu.openpose import experiment


def test_committed_openpose_checkpoint_reaches_its_metric():
    name = "openpose-book"
    entry = hub.entry(name)
    if entry is None:
        pytest.skip(f"{name} is not registered yet")
    assert hub.verify(name), f"{name}: file missing or sha256 differs; run `{entry['command']}`"
    from kpedu.train import load_checkpoint

    model = experiment.make_model()
    load_checkpoint(hub.checkpoint_path(name), model)
    scenes = experiment.make_scenes(48, seed=experiment.RECIPE["val_seed"] + 77)
    got = experiment.evaluate(model, scenes)
    stated = entry["metrics"]
    # 48 scenes (about 150 people) against the 500 of the registry: AP is noisier
    assert got["AP"] >= stated["AP"] - 0.08, (got["AP"], stated["AP"])
    assert got["AP50"] >= stated["AP50"] - 0.1, (got["AP50"], stated["AP50"])
    if "single_pass" in stated:  # the registered AP is the recipe's averaged detection; one pass is beside it
        assert stated["test"] == {"flip": experiment.RECIPE["flip"],
                                  "scales": [float(v) for v in experiment.RECIPE["test_scales"]]}
        one = experiment.evaluate(model, scenes, flip=False, scales=(1.0,))
        assert one["AP"] >= stated["single_pass"]["AP"] - 0.08, (one["AP"], stated["single_pass"]["AP"])
        assert got["AP"] > one["AP"], "averaging the passes helps on fresh scenes too"
    # the registered AP is measured on at least 200 scenes, as the chapter requires of
    # the number it reports (the chapter's target, AP >= 0.70, is checked in
    # book/ch02-openpose/03-training-and-results once the registered AP reaches it)
    assert stated["val_images"] >= 200
    assert stated["steps"] == sum(c[0] for c in stated["cycles"])
    # the recipe in the code is the one that made the checkpoint
    recipe = experiment.RECIPE
    assert stated["cycles"] == [[recipe["steps"]["full"], recipe["lr"]]] + [[a, b] for a, b in recipe["restarts"]["full"]]
