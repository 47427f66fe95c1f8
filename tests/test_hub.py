"""Tests for kpedu.hub: the checkpoint registry, recipes and the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from kpedu import hub
from kpedu.train import load_checkpoint, save_checkpoint

RECIPE_MODULE = "kpedu_test_dummy_recipes"
RECIPE_SOURCE = textwrap.dedent(
    '''
    import torch
    from kpedu import hub
    from kpedu.train import fit


    @hub.recipe("dummy", description="a linear model fitted to y = 2x")
    def dummy(profile, device):
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1)
        x = torch.linspace(-1, 1, 16).unsqueeze(1)
        batches = [(x, 2 * x)]
        steps = profile.pick(ci=20, book=40)
        hist = fit(model, batches, lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
                   steps=steps, lr=0.1, device=device, progress=False)
        return model, {"mse": hist.loss[-1], "steps": steps, "profile": profile.name}


    @hub.recipe("dummy-half", description="the same, stored in float16", storage_dtype=torch.float16)
    def dummy_half(profile, device):
        return dummy(profile, device)
    '''
)


@pytest.fixture
def tmp_hub(tmp_path, monkeypatch):
    """An empty registry in tmp_path and a throw-away recipe module on sys.path."""
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / f"{RECIPE_MODULE}.py").write_text(RECIPE_SOURCE)
    monkeypatch.setattr(hub, "CHECKPOINT_DIR", ckpt)
    monkeypatch.setattr(hub, "RECIPE_MODULES", ["kpedu_no_such_module_abc", RECIPE_MODULE])
    monkeypatch.setattr(hub, "_RECIPES", {})
    monkeypatch.delenv("KPEDU_RECIPE_MODULES", raising=False)
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.delitem(sys.modules, RECIPE_MODULE, raising=False)
    yield ckpt, mods
    sys.modules.pop(RECIPE_MODULE, None)


def test_checkpoint_dir_override(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "CHECKPOINT_DIR", None)
    monkeypatch.setenv("KPEDU_CHECKPOINT_DIR", str(tmp_path))
    assert hub.checkpoint_dir() == tmp_path
    monkeypatch.delenv("KPEDU_CHECKPOINT_DIR")
    assert hub.checkpoint_dir() == Path(hub.__file__).resolve().parent / "checkpoints"


def test_committed_registry_is_valid_json():
    path = Path(hub.__file__).resolve().parent / "checkpoints" / "registry.json"
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    for name, ent in data.items():
        assert {"file", "sha256", "command"} <= set(ent), name


def test_register_entry_sha_and_stable_formatting(tmp_hub):
    ckpt, _ = tmp_hub
    assert hub.list_entries() == [] and hub.entry("b") is None
    for name in ("b", "a"):
        save_checkpoint(ckpt / f"{name}.pt", torch.nn.Linear(2, 2))
        hub.register(name, f"{name}.pt", command=f"python -m kpedu.hub train {name}",
                     metrics={"loss": torch.tensor(0.25)}, description=name, seconds=3.14159, profile="ci")
    text = (ckpt / "registry.json").read_text()
    data = json.loads(text)
    assert list(data) == ["a", "b"]
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ent = hub.entry("a")
    assert ent["sha256"] == hub.sha256(ckpt / "a.pt") and ent["metrics"] == {"loss": 0.25}
    assert ent["seconds"] == 3.1 and ent["profile"] == "ci" and ent["file"] == "a.pt"
    assert [e["name"] for e in hub.list_entries()] == ["a", "b"]
    assert hub.checkpoint_path("a") == ckpt / "a.pt" and hub.verify("a")
    with pytest.raises(KeyError, match="not in the checkpoint registry"):
        hub.verify("zzz")
    with pytest.raises(ValueError):
        hub.entry("../etc/passwd")
    with pytest.raises(ValueError, match="finite"):
        hub.register("a", "a.pt", metrics={"x": float("nan")})


def test_recipe_discovery_skips_only_missing_modules(tmp_hub, monkeypatch):
    _, mods = tmp_hub
    recipes = hub.discover_recipes()  # kpedu_no_such_module_abc is skipped silently
    assert "dummy" in recipes and recipes["dummy"].description.startswith("a linear model")
    (mods / "kpedu_test_broken_recipes.py").write_text("import kpedu_missing_dependency_xyz\n")
    monkeypatch.setattr(hub, "RECIPE_MODULES", ["kpedu_test_broken_recipes"])
    with pytest.raises(ModuleNotFoundError, match="kpedu_missing_dependency_xyz"):
        hub.discover_recipes()
    sys.modules.pop("kpedu_test_broken_recipes", None)
    monkeypatch.setattr(hub, "RECIPE_MODULES", [RECIPE_MODULE])
    with pytest.raises(KeyError, match="no recipe named"):
        hub.get_recipe("nope")


def test_cli_train_verify_and_corruption(tmp_hub, capsys):
    ckpt, _ = tmp_hub
    assert hub.main(["train", "dummy", "--profile", "ci", "--device", "cpu", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "mse" in out and "sha256" in out
    ent = hub.entry("dummy")
    path = ckpt / "dummy.pt"
    assert ent["sha256"] == hub.sha256(path)
    assert ent["command"] == "python -m kpedu.hub train dummy --profile ci --device cpu --seed 3"
    assert ent["profile"] == "ci" and ent["metrics"]["steps"] == 20 and ent["seconds"] >= 0
    state, meta = load_checkpoint(path)
    assert meta["command"] == ent["command"] and meta["seed"] == 3 and meta["profile"] == "ci"
    assert meta["metrics"] == ent["metrics"] and set(state) == {"weight", "bias"}
    assert abs(float(state["weight"]) - 2.0) < 0.5

    assert hub.main(["verify"]) == 0 and hub.main(["verify", "dummy"]) == 0
    assert hub.main(["list"]) == 0
    assert "dummy" in capsys.readouterr().out

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not hub.verify("dummy") and hub.status("dummy") == "mismatch"
    assert hub.main(["verify", "dummy"]) == 1
    path.unlink()
    assert hub.status("dummy") == "missing" and hub.main(["verify"]) == 1
    assert hub.main(["verify", "not_registered"]) == 1
    assert hub.main(["train", "not_a_recipe", "--device", "cpu"]) == 2


def test_train_restores_profile_env(tmp_hub, monkeypatch):
    monkeypatch.setenv("KPEDU_PROFILE", "book")
    hub.train("dummy", profile="ci", device="cpu", verbose=False)
    assert os.environ["KPEDU_PROFILE"] == "book"


def test_python_m_kpedu_hub_subprocess(tmp_hub):
    """The real entry point: recipes registered via `kpedu.hub` are seen by `python -m`."""
    ckpt, mods = tmp_hub
    env = dict(os.environ, KPEDU_CHECKPOINT_DIR=str(ckpt), KPEDU_RECIPE_MODULES=RECIPE_MODULE,
               PYTHONPATH=os.pathsep.join([str(mods), os.environ.get("PYTHONPATH", "")]),
               KPEDU_PROGRESS="0")
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "kpedu.hub", *args], env=env, capture_output=True, text=True, timeout=120
    )
    res = run("train", "dummy", "--profile", "ci", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    ent = json.loads((ckpt / "registry.json").read_text())["dummy"]
    assert ent["command"] == "python -m kpedu.hub train dummy --profile ci --device cpu"
    assert ent["sha256"] == hub.sha256(ckpt / "dummy.pt") and hub.verify("dummy")
    (ckpt / "dummy.pt").write_bytes(b"corrupted")
    res = run("verify")
    assert res.returncode == 1 and "mismatch" in res.stdout


def test_recipe_storage_dtype(tmp_hub):
    ent = hub.train("dummy-half", profile="ci", verbose=False)
    state, meta = load_checkpoint(hub.checkpoint_path("dummy-half"))
    assert state["weight"].dtype == torch.float16 and meta["storage_dtype"] == "torch.float16"
    assert hub.verify("dummy-half") and ent["metrics"]["steps"] == 20
