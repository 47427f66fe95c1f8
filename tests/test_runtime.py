"""Tests for kpedu.runtime: profiles, device choice, seeding, banner."""
import numpy as np
import pytest
import torch

from kpedu import runtime


def test_profile_default_and_pick(monkeypatch):
    monkeypatch.delenv("KPEDU_PROFILE", raising=False)
    assert runtime.get_profile().name == "book"
    assert runtime.pick(ci=1, book=2, full=3) == 2
    monkeypatch.setenv("KPEDU_PROFILE", "ci")
    assert runtime.pick(ci=1, book=2, full=3) == 1
    monkeypatch.setenv("KPEDU_PROFILE", "FULL")
    assert runtime.pick(ci=1, book=2, full=3) == 3
    assert runtime.pick(ci=1, book=2) == 2  # full falls back to book


def test_bad_profile(monkeypatch):
    monkeypatch.setenv("KPEDU_PROFILE", "fast")
    with pytest.raises(ValueError, match="KPEDU_PROFILE"):
        runtime.get_profile()


def test_device_choice(monkeypatch):
    monkeypatch.delenv("KPEDU_DEVICE", raising=False)
    dev = runtime.get_device()
    assert dev.type == ("cuda" if torch.cuda.is_available() else dev.type)
    assert runtime.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            runtime.get_device("cuda")
        assert runtime.amp_dtype("cpu") is None


def test_seeding_repeats():
    runtime.seed_everything(3)
    a = (np.random.rand(3), torch.rand(3))
    runtime.seed_everything(3)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_setup_banner(capsys, monkeypatch):
    monkeypatch.setenv("KPEDU_PROFILE", "ci")
    s = runtime.setup(seed=4, device="cpu")
    line = capsys.readouterr().out.strip()
    assert "profile=ci" in line and "device=cpu" in line and "seed=4" in line
    assert s.pick(ci="a", book="b") == "a"


def test_resolve_profile(monkeypatch):
    from kpedu.runtime import Profile, resolve_profile

    monkeypatch.setenv("KPEDU_PROFILE", "ci")
    assert resolve_profile(None).name == "ci"
    assert resolve_profile("full").name == "full"
    assert resolve_profile(Profile("book")).name == "book"
    with pytest.raises(ValueError, match="profile must be one of"):
        resolve_profile("bogus")


@pytest.mark.parametrize("capability, native, expected", [
    ((7, 5), True, torch.float16),    # T4: bf16 only emulated, whatever is_bf16_supported says
    ((7, 0), False, torch.float16),   # V100
    ((8, 0), True, torch.bfloat16),   # A100
    ((8, 6), True, torch.bfloat16),   # RTX 30xx
    ((9, 0), True, torch.bfloat16),   # H100
    ((9, 0), False, torch.float16),   # a build that reports no native bf16
])
def test_amp_dtype_follows_native_bf16(monkeypatch, capability, native, expected):
    calls = []

    def is_bf16_supported(including_emulation=True):
        calls.append(including_emulation)
        return True if including_emulation else native

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert runtime.amp_dtype("cuda") is expected
    assert runtime.native_bf16("cuda") is (expected is torch.bfloat16)
    assert all(flag is False for flag in calls), "emulated bfloat16 must not count"
    assert runtime.amp_dtype("cpu") is None and runtime.native_bf16("cpu") is False
