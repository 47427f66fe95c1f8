"""Tests for kpedu.train: the training loop, checkpoints and load_or_train."""
from __future__ import annotations

import json
import math
import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from kpedu import hub, train
from kpedu.train import History, fit, load_checkpoint, load_or_train, save_checkpoint


def regression_batches(n_batches: int = 4, batch: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([[2.0], [-3.0], [0.5]])
    out = []
    for _ in range(n_batches):
        x = torch.randn(batch, 3, generator=g)
        out.append({"x": x, "y": x @ w + 1.0})
    return out


def mse(model, batch):
    return nn.functional.mse_loss(model(batch["x"]), batch["y"])


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


# ----------------------------------------------------------------------------- fit


def test_fit_decreases_loss_and_reiterates_short_list():
    model = make_model()
    batches = regression_batches(n_batches=3)
    calls = []

    def loss_fn(m, b):
        calls.append(b["x"].data_ptr())
        return mse(m, b), {"abs_w": m.weight.abs().mean()}

    hist = fit(model, batches, loss_fn, steps=200, lr=0.05, log_every=20, device="cpu", progress=False)
    assert isinstance(hist, History)
    assert len(calls) == 200  # 3 batches re-iterated ~67 times
    assert hist.steps == list(range(20, 201, 20))
    assert len(hist.loss) == len(hist.steps) == len(hist.logs["abs_w"]) == len(hist.lr)
    assert hist.loss[-1] < 0.2 * hist.loss[0], hist.loss
    assert hist.total_steps == 200 and not hist.stopped_early
    assert hist.seconds > 0 and hist.samples_per_second and hist.samples_per_second > 0
    assert model.weight.grad is not None  # the user's module itself was trained


def test_fit_tuple_batches_scheduler_factory_and_grad_clip():
    model = make_model()
    data = [(b["x"], b["y"]) for b in regression_batches()]
    hist = fit(
        model,
        data,
        lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]),
        steps=30,
        lr=0.1,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5),
        grad_clip=1.0,
        log_every=10,
        device="cpu",
        progress=False,
    )
    assert hist.lr == pytest.approx([0.05, 0.025, 0.0125])


def test_fit_one_shot_iterator_that_runs_out_raises():
    gen = (b for b in regression_batches(n_batches=3))
    with pytest.raises(ValueError, match="one-shot iterator"):
        fit(make_model(), gen, mse, steps=10, device="cpu", progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(make_model(), [], mse, steps=2, device="cpu", progress=False)


def test_fit_raises_on_nan_loss_naming_the_step():
    calls = []

    def loss_fn(m, b):
        calls.append(1)
        loss = mse(m, b)
        return loss * float("nan") if len(calls) == 7 else loss

    with pytest.raises(FloatingPointError, match="step 7"):
        fit(make_model(), regression_batches(), loss_fn, steps=20, device="cpu", progress=False)
    assert len(calls) == 7  # on the CPU the check is immediate


def test_fit_validates_arguments():
    model, data = make_model(), regression_batches()
    with pytest.raises(ValueError, match="steps"):
        fit(model, data, mse, steps=0, device="cpu")
    with pytest.raises(TypeError, match="model"):
        fit("not a model", data, mse, steps=1, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scalar"):
        fit(model, data, lambda m, b: m(b["x"]), steps=1, device="cpu", progress=False)


@pytest.mark.parametrize("start_training", [False, True])
def test_fit_restores_train_eval_mode(start_training):
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 1))
    model.train(start_training)
    model[1].eval() if start_training else None  # a mixed state is restored module by module
    before = {name: m.training for name, m in model.named_modules()}
    seen = []

    def loss_fn(m, b):
        seen.append(all(x.training for x in m.modules()))
        return mse(m, b)

    fit(model, regression_batches(), loss_fn, steps=3, device="cpu", progress=False)
    assert all(seen)
    assert {name: m.training for name, m in model.named_modules()} == before

    def boom(m, b):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit(model, regression_batches(), boom, steps=3, device="cpu", progress=False)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_fit_callback_early_stop_and_history_to_dict():
    seen_steps = []

    def cb(step, history, model):
        seen_steps.append(step)
        assert history.steps[-1] == step and isinstance(model, nn.Linear)
        return step >= 15

    hist = fit(make_model(), regression_batches(), mse, steps=100, log_every=5, device="cpu",
               progress=False, callback=cb)
    assert seen_steps == [5, 10, 15]
    assert hist.stopped_early and hist.total_steps == 15
    d = hist.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["steps"] == [5, 10, 15] and len(d["loss"]) == 3 and d["stopped_early"] is True
    assert set(d) >= {"steps", "loss", "logs", "seconds", "samples_per_second"}


def test_fit_progress_bar_shows_smoothed_loss(capsys, monkeypatch):
    monkeypatch.delenv("KPEDU_PROGRESS", raising=False)
    fit(make_model(), regression_batches(), mse, steps=5, device="cpu", desc="demo")
    err = capsys.readouterr().err
    assert "demo" in err and "loss=" in err
    monkeypatch.setenv("KPEDU_PROGRESS", "0")
    fit(make_model(), regression_batches(), mse, steps=5, device="cpu", desc="demo")
    assert "demo" not in capsys.readouterr().err


def test_history_plot_uses_log_scale():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = History(steps=[1, 2, 3], loss=[1.0, 0.1, 0.01])
    ax = hist.plot()
    assert ax.get_yscale() == "log"
    plt.close(ax.figure)


def test_to_device_recurses_and_passes_non_tensors():
    batch = {"x": torch.ones(2), "meta": ["a", 3], "pair": (torch.zeros(1), None),
             "od": OrderedDict(k=torch.ones(1))}
    out = train.to_device(batch, "cpu", non_blocking=True)
    assert out["meta"] == ["a", 3] and out["pair"][1] is None
    assert isinstance(out["od"], OrderedDict) and torch.equal(out["x"], batch["x"])


def test_evaluating_and_predict():
    model = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5))
    model.train()
    outs = train.predict(model, [torch.ones(4, 3), torch.ones(2, 3)], device="cpu")
    assert [o.shape[0] for o in outs] == [4, 2] and not outs[0].requires_grad
    assert torch.equal(outs[0][:2], outs[1])  # dropout off: deterministic
    assert model.training


# ----------------------------------------------------------------------------- checkpoints


class Evil:
    """Not something a weights_only checkpoint may contain."""

    def __init__(self):
        self.payload = "would run on unpickle"


def test_save_load_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, {"metrics": {"pck": 0.5}, "steps": 3})
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    state, meta = load_checkpoint(path, other)
    assert meta == {"metrics": {"pck": 0.5}, "steps": 3}
    ref = model.state_dict()
    assert state.keys() == ref.keys()
    for k in ref:
        assert torch.equal(state[k], ref[k]) and torch.equal(other.state_dict()[k], ref[k])


def test_save_strips_wrapper_prefixes(tmp_path):
    inner = make_model()
    wrapper = nn.Module()
    wrapper._orig_mod = inner  # what torch.compile's OptimizedModule looks like
    assert train.unwrap_model(wrapper) is inner
    dp_state = {"module." + k: v for k, v in inner.state_dict().items()}
    save_checkpoint(tmp_path / "a.pt", dp_state)
    state, _ = load_checkpoint(tmp_path / "a.pt", make_model(1))
    assert set(state) == {"weight", "bias"}


def test_load_rejects_arbitrary_python_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": {"x": Evil()}, "kpedu_version": "0"}, path)
    with pytest.raises(train.CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_load_rejects_non_kpedu_files(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(make_model().state_dict(), bare)
    with pytest.raises(train.CheckpointError, match="bare state_dict"):
        load_checkpoint(bare)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(train.CheckpointError):
        load_checkpoint(junk)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_save_rejects_unsafe_meta(tmp_path):
    with pytest.raises(TypeError, match="meta"):
        save_checkpoint(tmp_path / "x.pt", make_model(), {"obj": Evil()})
    assert not list(tmp_path.iterdir())


def test_load_into_wrong_architecture_is_strict(tmp_path):
    save_checkpoint(tmp_path / "m.pt", make_model())
    with pytest.raises(RuntimeError):
        load_checkpoint(tmp_path / "m.pt", nn.Linear(4, 1))


# ----------------------------------------------------------------------------- load_or_train


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setenv("KPEDU_PROFILE", "ci")
    trained = make_model(seed=123)
    save_checkpoint(tmp_path / "lin.pt", trained, {"metrics": {"mse": 0.01}})
    hub.register("lin", "lin.pt", command="python -m kpedu.hub train lin", metrics={"mse": 0.01},
                 description="test", seconds=1.0, profile="full")
    return tmp_path, trained


def _train_fn(calls):
    def train_fn(model):
        calls.append(model)
        fit(model, regression_batches(), mse, steps=5, device="cpu", progress=False)
        return {"trained": True}

    return train_fn


def test_load_or_train_loads_verified_checkpoint(registry, capsys):
    _, trained = registry
    calls = []
    model, info = load_or_train("lin", make_model(seed=0), _train_fn(calls), device="cpu")
    assert calls == []
    assert info["source"] == "checkpoint"
    assert info["sha256"] == hub.entry("lin")["sha256"]
    assert info["command"] == "python -m kpedu.hub train lin" and info["metrics"] == {"mse": 0.01}
    assert torch.equal(model.weight, trained.weight) and not model.training
    assert "loaded committed checkpoint" in capsys.readouterr().out


def test_load_or_train_trains_when_file_missing(registry):
    tmp, _ = registry
    (tmp / "lin.pt").unlink()
    calls = []
    with pytest.warns(train.CheckpointWarning, match="missing"):  # announced even with verbose=False
        _, info = load_or_train("lin", make_model(), _train_fn(calls), device="cpu", verbose=False)
    assert len(calls) == 1 and info["source"] == "trained" and info["result"] == {"trained": True}
    assert info["sha256"] is None and "missing" in info["reason"]


def test_load_or_train_announces_training_before_it_starts(registry, capsys):
    calls = []

    def train_fn(model):
        calls.append(capsys.readouterr().out)  # what the reader saw when training began
        return None

    with pytest.warns(train.CheckpointWarning, match="no entry in the checkpoint registry"):
        load_or_train("not-registered", make_model(), train_fn, device="cpu")
    assert "training from scratch" in calls[0] and "not in the checkpoint registry" in calls[0]


def test_load_or_train_warns_and_trains_on_hash_mismatch(registry):
    tmp, _ = registry
    save_checkpoint(tmp / "lin.pt", make_model(seed=7))  # valid file, different bytes
    calls = []
    with pytest.warns(train.CheckpointWarning, match="sha256"):
        _, info = load_or_train("lin", make_model(), _train_fn(calls), device="cpu", verbose=False)
    assert len(calls) == 1 and info["source"] == "trained"


def test_load_or_train_retrain_and_full_profile(registry, monkeypatch):
    calls = []
    _, info = load_or_train("lin", make_model(), _train_fn(calls), device="cpu", retrain=True, verbose=False)
    assert info["source"] == "trained"
    monkeypatch.setenv("KPEDU_PROFILE", "full")
    _, info = load_or_train("lin", make_model(), _train_fn(calls), device="cpu", verbose=False)
    assert info["source"] == "trained" and len(calls) == 2
    _, info = load_or_train("lin", make_model(), _train_fn(calls), device="cpu", retrain=False, verbose=False)
    assert info["source"] == "checkpoint" and len(calls) == 2


def test_load_or_train_unregistered_name_trains(registry):
    calls = []
    _, info = load_or_train("unknown_model", make_model(), _train_fn(calls), device="cpu", verbose=False)
    assert info["source"] == "trained" and info["command"] is None and len(calls) == 1


def test_fit_bfloat16_autocast_on_cpu():
    """amp=torch.bfloat16 autocasts on the CPU (outputs in bfloat16, weights in float32);
    amp=True leaves the CPU in float32."""
    seen = []

    def loss(model, batch):
        out = model(batch["x"])
        seen.append(out.dtype)
        return nn.functional.mse_loss(out.float(), batch["y"])

    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 1))
    hist = fit(model, regression_batches(), loss, steps=200, lr=0.01, log_every=50, device="cpu",
               amp=torch.bfloat16, progress=False)
    assert set(seen) == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32
    assert math.isfinite(hist.loss[-1]) and hist.loss[-1] < 0.2 * hist.loss[0]
    seen.clear()
    fit(model, regression_batches(), loss, steps=2, device="cpu", amp=True, progress=False)
    assert set(seen) == {torch.float32}


def test_fit_rejects_bad_amp():
    with pytest.raises(ValueError, match="amp must be"):
        fit(make_model(), regression_batches(), mse, steps=1, device="cpu", amp="bf16", progress=False)
    with pytest.raises(ValueError, match="CUDA"):
        fit(make_model(), regression_batches(), mse, steps=1, device="cpu", amp=torch.float16, progress=False)


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_amp_on_cuda():
    from kpedu import runtime

    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 1))
    hist = fit(model, regression_batches(), mse, steps=300, lr=0.01, log_every=50, device="cuda",
               amp=True, grad_clip=5.0, progress=False)
    assert runtime.amp_dtype("cuda") in (torch.bfloat16, torch.float16)
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == torch.float32  # autocast, not a cast of the weights
    assert math.isfinite(hist.loss[-1]) and hist.loss[-1] < 0.2 * hist.loss[0]


def test_one_cycle_survives_ten_steps():
    from kpedu.train import one_cycle

    for steps in (1, 2, 10, 11, 100):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = one_cycle(opt, 1.0, steps)
        lrs = []
        for _ in range(steps):
            opt.step()
            sched.step() if len(lrs) < steps - 1 else None
            lrs.append(opt.param_groups[0]["lr"])
        assert max(lrs) <= 1.0 + 1e-9
    with pytest.raises(ValueError):
        one_cycle(opt, 1.0, 0)


def test_save_in_half_precision(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.BatchNorm1d(64))
    model[1].running_mean.fill_(0.25)
    full = save_checkpoint(tmp_path / "full.pt", model)
    half = save_checkpoint(tmp_path / "half.pt", model, dtype=torch.float16)
    assert half.stat().st_size < full.stat().st_size
    state, _ = load_checkpoint(half)
    assert state["0.weight"].dtype == torch.float16
    assert state["1.num_batches_tracked"].dtype == torch.int64      # integers untouched
    other = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.BatchNorm1d(64))
    load_checkpoint(half, other)
    assert other[0].weight.dtype == torch.float32                   # loaded into the model's dtype
    assert torch.allclose(other[0].weight, model[0].weight, atol=1e-3)
    with pytest.raises(TypeError, match="dtype"):
        save_checkpoint(tmp_path / "bad.pt", model, dtype=torch.int8)


class _Interrupt(Exception):
    pass


def _resume_setup(seed=0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(5, 4, generator=g), torch.randn(5, 1, generator=g)) for _ in range(7)]
    return model, data


def _loss(m, b):
    return ((m(b[0]) - b[1]) ** 2).mean()


def test_fit_resumes_exactly_from_its_state_file(tmp_path):
    import torch

    from kpedu.train import fit, one_cycle

    model, data = _resume_setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    fit(model, data, _loss, steps=20, optimizer=opt, scheduler=one_cycle(opt, 1e-2, 20), device="cpu",
        progress=False, log_every=2)
    reference = [p.detach().clone() for p in model.parameters()]

    state = tmp_path / "run.state.pt"
    model, data = _resume_setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def stop_at_13(step, history, m):
        if step == 14:
            raise _Interrupt()

    try:
        fit(model, data, _loss, steps=20, optimizer=opt, scheduler=one_cycle(opt, 1e-2, 20), device="cpu",
            progress=False, log_every=2, callback=stop_at_13, state_path=state, save_every=5)
    except _Interrupt:
        pass
    assert state.exists()
    saved = torch.load(state, weights_only=True)
    assert saved["step"] == 10 and saved["steps"] == 20

    model, data = _resume_setup(seed=123)  # different init: everything must come from the state file
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    h = fit(model, data, _loss, steps=20, optimizer=opt, scheduler=one_cycle(opt, 1e-2, 20), device="cpu",
            progress=False, log_every=2, state_path=state, save_every=5)
    assert not state.exists(), "a completed run removes its state file"
    assert h.steps[:5] == [2, 4, 6, 8, 10] and h.steps[-1] == 20
    for a, b in zip(model.parameters(), reference):
        assert torch.allclose(a, b, atol=1e-6)


def test_fit_state_errors(tmp_path):
    import pytest
    import torch

    from kpedu.train import fit

    model, data = _resume_setup()
    with pytest.raises(ValueError, match="save_every"):
        fit(model, data, _loss, steps=2, device="cpu", progress=False, state_path=tmp_path / "s.pt", save_every=0)
    state = tmp_path / "s.pt"
    torch.save({"steps": 5, "step": 2}, state)
    with pytest.raises(ValueError, match="not 3"):
        fit(model, data, _loss, steps=3, device="cpu", progress=False, state_path=state)


# ------------------------------------------------------------------ micro-batches
def test_split_batch_slices_samples_and_shares_the_rest():
    batch = {"image": torch.arange(10.0).view(5, 2), "people": [torch.zeros(i, 3) for i in range(5)],
             "index": torch.arange(5), "scale": 2.0, "table": torch.ones(3, 4)}
    parts = train.split_batch(batch, 2)
    assert [round(w, 2) for _, w in parts] == [0.4, 0.6]
    assert torch.equal(torch.cat([p["image"] for p, _ in parts]), batch["image"])
    assert [len(x) for p, _ in parts for x in p["people"]] == [0, 1, 2, 3, 4]
    assert all(p["scale"] == 2.0 and p["table"] is batch["table"] for p, _ in parts)
    x, y = torch.randn(4, 3), torch.randn(4)
    halves = train.split_batch((x, y), 4)
    assert len(halves) == 4 and all(len(p[0]) == 1 and len(p[1]) == 1 for p, _ in halves)
    assert train.split_batch((x, y), 9)[-1][0][0].shape == (1, 3), "at most one part per sample"
    assert train.split_batch(torch.tensor(3.0), 4) == [(torch.tensor(3.0), 1.0)] or \
        len(train.split_batch(torch.tensor(3.0), 4)) == 1


def test_micro_batches_give_the_whole_batch_gradient_with_smaller_forward_passes():
    """A mean-over-samples loss: two steps with 4 micro-batches end where whole batches end."""
    torch.manual_seed(0)
    data = [(torch.randn(12, 6), torch.randn(12, 1)) for _ in range(2)]
    start = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    ends, sizes = [], []
    for micro in (1, 4):
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
        model.load_state_dict(start.state_dict())
        seen = []
        model.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
        hist = fit(model, data, lambda m, b: (((m(b[0]) - b[1]) ** 2).mean(), {"n": float(len(b[0]))}), steps=2,
                   lr=0.05, device="cpu", progress=False, log_every=1, micro_batches=micro)
        ends.append([p.detach().clone() for p in model.parameters()])
        sizes.append(seen)
        if micro == 4:
            assert hist.logs["n"] == [3.0, 3.0], "logs are averaged over the micro-batches by their share"
    assert sizes == [[12, 12], [3] * 8]
    for a, b in zip(*ends):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_micro_batches_must_be_a_positive_int(bad):
    with pytest.raises((TypeError, ValueError), match="micro_batches"):  # TypeError for True and "2"
        fit(nn.Linear(2, 1), [torch.zeros(2, 2)], lambda m, b: m(b).sum(), steps=1, progress=False,
            micro_batches=bad)


# ------------------------------------------------------------------ damaged files (issue 20)
def test_a_damaged_state_file_raises_checkpoint_error_naming_it(tmp_path):
    import pytest

    from kpedu.train import CheckpointError, fit

    model, data = _resume_setup()
    state = tmp_path / "s.pt"
    def stop(step, history, m):
        if step == 3:
            raise _Interrupt()

    with pytest.raises(_Interrupt):
        fit(model, data, _loss, steps=4, device="cpu", progress=False, state_path=state, save_every=2, callback=stop, log_every=1)
    good = state.read_bytes()
    state.write_bytes(good[: len(good) // 2])            # truncated, as after a full disk
    with pytest.raises(CheckpointError, match=r"s\.pt.*damaged.*delete"):
        fit(model, data, _loss, steps=4, device="cpu", progress=False, state_path=state)
    state.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="s.pt"):
        fit(model, data, _loss, steps=4, device="cpu", progress=False, state_path=state)
    torch.save({"steps": 4}, state)                        # a dict that is not a training state
    with pytest.raises(CheckpointError, match="lacks step, model"):
        fit(model, data, _loss, steps=4, device="cpu", progress=False, state_path=state)


def test_a_failed_state_save_keeps_the_previous_state_and_the_run_resumes_exactly(tmp_path, monkeypatch):
    """Fault injection: the state write dies half-way at step 4; the state of step 2 is intact,
    and resuming from it ends with the same weights as an uninterrupted run."""
    import pytest

    from kpedu import train as tr

    model_ref, data = _resume_setup()
    tr.fit(model_ref, data, _loss, steps=6, device="cpu", progress=False)

    model, data = _resume_setup()
    state = tmp_path / "s.pt"
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:                                   # the save of step 4
            f.write(b"half a state")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(tr.torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        tr.fit(model, data, _loss, steps=6, device="cpu", progress=False, state_path=state, save_every=2)
    monkeypatch.setattr(tr.torch, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"], "no temporary file is left behind"
    assert int(torch.load(state, weights_only=True)["step"]) == 2, "the state of step 2 is intact"

    model2, data2 = _resume_setup()
    tr.fit(model2, data2, _loss, steps=6, device="cpu", progress=False, state_path=state, save_every=2)
    for a, b in zip(model_ref.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)


def test_a_failed_checkpoint_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import pytest

    from kpedu import train as tr

    path = tmp_path / "m.pt"
    tr.save_checkpoint(path, make_model(seed=1))
    before = path.read_bytes()

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(tr.torch, "save", dying_save)
    with pytest.raises(OSError):
        tr.save_checkpoint(path, make_model(seed=2))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_map_location_cuda_without_cuda_is_a_usage_error_not_a_corrupt_file(tmp_path, monkeypatch):
    import pytest

    from kpedu import train as tr

    path = tmp_path / "m.pt"
    tr.save_checkpoint(path, make_model(seed=1))
    monkeypatch.setattr(tr.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available.*map_location='cpu'"):
        tr.load_checkpoint(path, map_location="cuda")
    with pytest.raises(ValueError, match="map_location"):
        tr.load_checkpoint(path, map_location="not-a-device")
    state, _ = tr.load_checkpoint(path, map_location="cpu")
    assert all(v.device.type == "cpu" for v in state.values())
