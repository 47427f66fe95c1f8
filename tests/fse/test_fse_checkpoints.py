"""The committed FSE checkpoints still reach the NME their registry entries state, on faces
generated fresh for the test (neither the training, the recipe's evaluation nor the
chapter's seeds)."""
import pytest

from kpedu import hub
from kpedu.fse import experiment as E

NAMES = ["fse-book", "fse-ablation-pairwise", "fse-ablation-align"]


@pytest.fixture(scope="module")
def split():
    faces = E.make_faces_split(600, seed=E.RECIPE["eval_seed"] + 4242)
    return faces.subset(slice(0, 300)), faces.subset(slice(300, 600))


@pytest.mark.parametrize("name", NAMES)
def test_committed_fse_checkpoint_reaches_its_metric(name, split):
    entry = hub.entry(name)
    if entry is None:
        pytest.skip(f"{name} is not registered yet")
    assert hub.verify(name), f"{name}: file missing or sha256 differs; run `{entry['command']}`"
    from kpedu.train import load_checkpoint

    model = E.make_model()
    load_checkpoint(hub.checkpoint_path(name), model)
    got = E.evaluate(model, *split)["nme"]
    stated = entry["metrics"]["nme"]
    assert abs(got - stated) < max(1.0, 0.15 * stated), (name, got, stated)
    if name == "fse-book":
        assert got <= 6.0, f"the chapter promises NME <= 6 % with K = 10, got {got:.2f}"
