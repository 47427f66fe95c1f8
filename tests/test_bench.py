"""Tests for kpedu.bench: FLOP counts against hand counts, timings, the table."""
import pytest
import torch
import torch.nn as nn

from kpedu.bench import benchmark, count_flops, format_benchmark, matmul_throughput, throughput


class TwoHeads(nn.Module):
    """Returns a list of tensors, like StackedHourglass."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.a = nn.Conv2d(4, 2, 1)
        self.b = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return [self.a(y), self.b(y)]


def test_linear_flops_match_the_hand_count():
    lin = nn.Linear(10, 20)
    x = torch.rand(4, 10)
    assert count_flops(lin, x) == 2 * 4 * 10 * 20
    # backward of the first layer: the weight gradient only (the input needs none) -> 2x forward
    assert count_flops(lin, x, backward=True) == 2 * (2 * 4 * 10 * 20)
    # with an input gradient too: the textbook 3x forward
    assert count_flops(lin, x.clone().requires_grad_(), backward=True) == 3 * (2 * 4 * 10 * 20)
    assert lin.weight.grad is None  # counting leaves no gradients behind


def test_conv_flops_match_the_hand_count_and_scale_with_batch():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    one = count_flops(conv, torch.rand(1, 3, 16, 16))
    assert one == 2 * 8 * 16 * 16 * 3 * 3 * 3
    assert count_flops(conv, torch.rand(2, 3, 16, 16)) == 2 * one
    assert count_flops(conv, [torch.rand(1, 3, 16, 16)]) == one  # a list of inputs


def test_count_flops_restores_mode_and_handles_list_outputs():
    m = TwoHeads().train()
    x = torch.rand(2, 3, 8, 8)
    fwd = count_flops(m, x)
    assert m.training
    assert fwd == 2 * 2 * 64 * (4 * 27 + 2 * (2 * 4))
    m.eval()
    assert count_flops(m, x, backward=True) > fwd and not m.training
    with pytest.raises(ValueError, match="inputs"):
        count_flops(m, "not a tensor")
    with pytest.raises(ValueError, match="requires? grad"):
        count_flops(nn.Linear(2, 2).requires_grad_(False), torch.rand(1, 2), backward=True)


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("start_training", [False, True])
def test_throughput_is_positive_and_restores_the_model(mode, start_training):
    m = TwoHeads().train(start_training)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r = throughput(m, (3, 16, 16), mode, batch_size=2, steps=2, warmup=1, device="cpu")
    assert set(r) == {"images_per_s", "seconds_per_batch", "batch_size", "mode", "device"}
    assert r["images_per_s"] > 0 and r["seconds_per_batch"] > 0
    assert r["images_per_s"] == pytest.approx(2 / r["seconds_per_batch"])
    assert (r["batch_size"], r["mode"], r["device"]) == (2, mode, "cpu")
    assert m.training == start_training and all(c.training == start_training for c in m.children())
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics untouched
    assert all(p.grad is None for p in m.parameters())


def test_throughput_rejects_bad_input():
    m = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="mode"):
        throughput(m, (4,), mode="backward")
    for shape in [(), (4, 0), (3, -1), "4", (4.0,)]:
        with pytest.raises(ValueError, match="input_shape"):
            throughput(m, shape)
    for bs in [0, -1, 2.5, True]:
        with pytest.raises(ValueError, match="batch_size"):
            throughput(m, (4,), batch_size=bs)
    with pytest.raises(ValueError, match="steps"):
        throughput(m, (4,), steps=0)
    with pytest.raises(ValueError, match="model"):
        throughput("model", (4,))


def test_matmul_throughput_and_benchmark(monkeypatch):
    assert matmul_throughput("cpu", n=64, repeats=2) > 0
    with pytest.raises(ValueError, match="n must"):
        matmul_throughput("cpu", n=0)
    with pytest.raises(ValueError, match="dtype"):
        matmul_throughput("cpu", n=8, dtype=torch.int32)
    m = TwoHeads()
    r = benchmark(m, (3, 16, 16), batch_size=2, steps=1, device="cpu", peak=100.0)
    assert r["params"] == sum(p.numel() for p in m.parameters())
    assert r["gflops_per_image"] == pytest.approx(count_flops(m, torch.rand(1, 3, 16, 16)) / 1e9)
    assert r["achieved_gflops"] == pytest.approx(r["gflops_per_image"] * r["forward_images_per_s"])
    assert r["fraction_of_peak"] == pytest.approx(r["achieved_gflops"] / 100.0)
    assert r["train_images_per_s"] > 0 and r["matmul_gflops"] == 100.0
    # without a peak, benchmark measures one (kept small here: the default n=2048 takes seconds)
    import kpedu.bench as bench

    calls = []
    monkeypatch.setattr(bench, "matmul_throughput", lambda dev, dtype: calls.append((dev, dtype)) or 50.0)
    measured = benchmark(nn.Linear(8, 8), (8,), batch_size=2, steps=1, device="cpu")
    assert measured["matmul_gflops"] == 50.0 and calls == [(torch.device("cpu"), torch.float32)]
    with pytest.raises(ValueError, match="peak"):
        benchmark(m, (3, 16, 16), peak=0)

    table = format_benchmark({"two heads": r, "partial": {"params": 2_000_000}})
    lines = table.splitlines()
    assert len(lines) == 4 and "two heads" in lines[2] and "partial" in lines[3]
    assert "GFLOP/img" in lines[0] and "% matmul peak" in lines[0]
    assert "2.00" in lines[3] and "-" in lines[3]
    with pytest.raises(ValueError, match="rows"):
        format_benchmark([r])
    with pytest.raises(ValueError, match="row 'x'"):
        format_benchmark({"x": 3})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_throughput_on_cuda():
    m = TwoHeads()
    for mode in ("forward", "train"):
        r = throughput(m, (3, 32, 32), mode, batch_size=4, steps=2, device="cuda", amp=True)
        assert r["images_per_s"] > 0 and r["device"].startswith("cuda")
    r = benchmark(m, (3, 32, 32), batch_size=4, steps=2, device="cuda", amp=True)
    assert r["amp"] and r["matmul_gflops"] > 0 and r["fraction_of_peak"] > 0


def test_nested_outputs_are_supported():
    import torch
    from kpedu import bench

    class Nested(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return [y, y * 2], [y.mean(1, keepdim=True)]      # like OpenPoseNet: (pafs, cms)

    r = bench.throughput(Nested(), (3, 16, 16), "train", batch_size=2, steps=1)
    assert r["images_per_s"] > 0
    assert bench.count_flops(Nested(), torch.rand(1, 3, 16, 16)) > 0

    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return ("text", self.lin(x))

    import pytest

    with pytest.raises(ValueError, match="tensor"):
        bench.throughput(Bad(), (3, 4, 4), "train", batch_size=1, steps=1)


def test_time_call_measures_and_validates(monkeypatch):
    import kpedu.bench as bench_module
    from kpedu.bench import time_call

    # a fake clock: every call of fn advances it by 0.25 s, so the mean is exact on any machine
    now = [100.0]
    calls = []

    def fn():
        calls.append(1)
        now[0] += 0.25

    monkeypatch.setattr(bench_module.time, "perf_counter", lambda: now[0])
    sec = time_call(fn, repeats=3, warmup=2)
    monkeypatch.undo()
    assert len(calls) == 5 and sec == pytest.approx(0.25)
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)
    with pytest.raises(TypeError):
        time_call(42)


def test_call_flops_counts_any_code():
    from kpedu.bench import call_flops

    a, b = torch.rand(8, 16), torch.rand(16, 4)
    assert call_flops(lambda: a @ b) == 2 * 8 * 16 * 4
    assert call_flops(lambda: (a @ b, a @ b)) == 2 * (2 * 8 * 16 * 4)
    assert call_flops(lambda: a + 1) == 0  # element-wise work is not counted
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(1, 3, 16, 16)
    assert call_flops(lambda: conv(x)) == count_flops(conv, x)
    with pytest.raises(TypeError):
        call_flops(3)


def test_machine_speed_is_measured_once_and_reused(monkeypatch):
    import kpedu.bench as bench_module

    calls = []

    def fake(device=None, n=2048, dtype=torch.float32, repeats=5):
        calls.append(n)
        return 123.4

    monkeypatch.setattr(bench_module, "matmul_throughput", fake)
    monkeypatch.setattr(bench_module, "_SPEEDS", {})
    line = bench_module.machine_speed("cpu")
    assert line.startswith("cpu, ") and line.endswith("dense matmul 123 GFLOP/s")
    assert f"{torch.get_num_threads()} thread" in line
    assert bench_module.machine_speed("cpu") == line and len(calls) == 1  # cached
    bench_module.machine_speed("cpu", refresh=True)
    assert len(calls) == 2
