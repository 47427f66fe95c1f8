"""Small benchmarks: FLOPs, matrix-multiply peak, images per second.

Stacked Hourglass chapter (how much compute a stack costs and how close a model gets
to the machine's peak); also the D2-Net chapter, which compares the book's models with
the same table.

* :func:`count_flops`: floating-point operations of one forward (or forward and
  backward) pass, counted by :class:`torch.utils.flop_counter.FlopCounterMode` (a
  multiply-add counts as 2 FLOPs; convolutions and matrix products only, so batch
  norm, activations and pooling are free);
* :func:`matmul_throughput`: the best GFLOP/s of a large square matrix product, a
  practical "peak" for the device;
* :func:`throughput`: images per second for inference (``"forward"``) or training
  (``"train"``: forward, backward and an Adam step);
* :func:`benchmark` and :func:`format_benchmark`: all of it for one model, and a
  plain-text table for several.

Timings on CUDA synchronise the device before the clock is read; on every device
warm-up iterations run first. Numbers on a shared machine vary by tens of percent:
compare models measured in one session.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn

from . import runtime

__all__ = ["time_call", "count_flops", "call_flops", "matmul_throughput", "machine_speed", "throughput", "benchmark",
           "format_benchmark"]

MODES = ("forward", "train")


# --------------------------------------------------------------------------- helpers


def _resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` checked for availability, or :func:`kpedu.runtime.get_device`."""
    return runtime.get_device() if device is None else runtime.get_device(str(torch.device(device)))


def _sync(device: torch.device) -> None:
    """Wait for queued work on ``device`` so that a clock reading means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    """One input's shape without the batch dimension, e.g. ``(3, 128, 128)``."""
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) == 0
            or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in input_shape)):
        raise ValueError(
            f"input_shape must be one input's shape without the batch dimension, a non-empty tuple of "
            f"positive ints such as (3, 128, 128), got {input_shape!r}"
        )
    return tuple(int(s) for s in input_shape)


def _as_args(inputs: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    raise ValueError(f"inputs must be a tensor or a non-empty tuple/list of tensors, got {type(inputs).__name__}")


def _tensors(outputs: Any) -> list[torch.Tensor]:
    """The output tensors of a model returning a tensor, or lists/tuples/dicts of them,
    nested (OpenPose returns ``(pafs, cms)``, two lists of per-stage maps)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)) and outputs:
        try:
            return [t for item in outputs for t in _tensors(item)]
        except ValueError:
            pass
    raise ValueError(
        f"the model must return a tensor or (nested) lists/tuples/dicts of tensors, got {type(outputs).__name__}"
    )


def _sum_of_squares(outputs: Any) -> torch.Tensor:
    """A scalar that depends on every output: the sum of squared outputs (in float32)."""
    return sum(t.float().square().sum() for t in _tensors(outputs))


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")


# --------------------------------------------------------------------------- FLOPs


def time_call(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1,
              device: torch.device | str | None = None) -> float:
    """Mean wall-clock seconds of ``fn()`` over ``repeats`` calls, after ``warmup``
    untimed calls; ``device`` (default: the CPU) is synchronised before the clock
    starts and stops, so queued GPU work is counted."""
    if not callable(fn):
        raise TypeError("fn must be callable with no arguments")
    repeats = _positive_int(repeats, "repeats")
    warmup = _positive_int(warmup, "warmup", minimum=0)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    for _ in range(warmup):
        fn()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(dev)
    return (time.perf_counter() - t0) / repeats


def count_flops(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor], backward: bool = False) -> int:
    """FLOPs of one call ``model(*inputs)`` (forward), or forward plus backward.

    Counted with ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2
    FLOPs; matrix products and convolutions only). A ``nn.Linear(i, o)`` on a batch of
    ``b`` costs ``2 * b * i * o`` forward. With ``backward`` the scalar
    ``sum(out ** 2)`` over all outputs (a tensor, or a list/tuple/dict of tensors) is
    back-propagated and its FLOPs are added: about twice the forward for the layers
    whose input needs a gradient (weight and input gradients), once for the first layer
    (weight gradient only, the images need none).

    Forward-only counting runs under ``torch.no_grad`` in eval mode; backward counting
    keeps the model's mode. The model's train/eval mode and its parameters' gradients
    are restored afterwards. Multiply the result by the batch size yourself or pass a
    batch: counts scale linearly with it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    _check_model(model)
    args = _as_args(inputs)
    was_training = model.training
    grads = {p: p.grad for p in model.parameters()}
    counter = FlopCounterMode(display=False)
    try:
        if backward:
            with counter:
                loss = _sum_of_squares(model(*args))
                if not loss.requires_grad:
                    raise ValueError("backward=True needs outputs that require grad (trainable parameters "
                                     "or inputs with requires_grad)")
                loss.backward()
        else:
            model.eval()
            with torch.no_grad(), counter:
                model(*args)
    finally:
        model.train(was_training)
        for p, g in grads.items():
            p.grad = g
    return int(counter.get_total_flops())


def call_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (matrix products and convolutions) of one call ``fn()``, counted like
    :func:`count_flops`, for any code rather than a model: a warp, a loss, a matcher.

    A deterministic measure of cost: the same on every machine, so a notebook can
    assert on it where a time would only be noise (``fn`` runs once, for real).
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not callable(fn):
        raise TypeError("fn must be callable with no arguments")
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- timings


def matmul_throughput(device: torch.device | str | None = None, n: int = 2048, dtype: torch.dtype = torch.float32,
                      repeats: int = 5) -> float:
    """Best GFLOP/s of ``(n, n) @ (n, n)`` (``2 n^3`` FLOPs) over ``repeats`` timed runs.

    A practical peak for ``device`` (default :func:`kpedu.runtime.get_device`) and
    ``dtype``: convolutional networks reach a fraction of it. One untimed warm-up
    product runs first; CUDA is synchronised around every timed product.
    """
    n = _positive_int(n, "n")
    repeats = _positive_int(repeats, "repeats")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    dev = _resolve_device(device)
    a = torch.rand(n, n, device=dev, dtype=dtype)
    b = torch.rand(n, n, device=dev, dtype=dtype)
    with torch.no_grad():
        a @ b  # warm-up: kernel selection, allocations
        _sync(dev)
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            _sync(dev)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / max(best, 1e-12) / 1e9


_SPEEDS: dict[tuple[str, int], float] = {}


def machine_speed(device: torch.device | str | None = None, refresh: bool = False) -> str:
    """One line to print beside a measured time: the device, its threads and its dense
    matmul speed (:func:`matmul_throughput`, float32, measured once per process and
    device, then reused), e.g. ``"cpu, 2 thread(s): dense matmul 226 GFLOP/s"``.

    Timings in the book are shown, never asserted: this line lets a reader scale them
    to their own machine (a machine with half the matmul speed takes about twice as
    long for the convolutional parts).
    """
    dev = _resolve_device(device)
    key = (str(dev), torch.get_num_threads())
    if refresh or key not in _SPEEDS:
        _SPEEDS[key] = matmul_throughput(dev, n=2048 if dev.type == "cpu" else 4096, repeats=5)
    where = f"{dev.type}, {torch.get_num_threads()} thread(s)" if dev.type == "cpu" else str(dev)
    if dev.type == "cuda":
        where += f" ({torch.cuda.get_device_name(dev)})"
    return f"{where}: dense matmul {_SPEEDS[key]:.0f} GFLOP/s"


def throughput(model: nn.Module, input_shape: Sequence[int], mode: str = "forward", batch_size: int = 8,
               steps: int = 5, warmup: int = 2, device: torch.device | str | None = None,
               amp: bool = False) -> dict[str, Any]:
    """Images per second of ``model`` on random inputs ``torch.rand(batch_size, *input_shape)``.

    ``mode="forward"``: inference (eval mode, ``torch.no_grad``). ``mode="train"``: a
    full training step, forward, ``sum(out ** 2)`` over all outputs (a list of stacks is
    summed), backward and an Adam step. ``warmup`` untimed iterations run first, then
    ``steps`` timed ones (the device is synchronised before the clock starts and stops).
    With ``amp`` on CUDA the passes run under ``torch.autocast`` with
    :func:`kpedu.runtime.amp_dtype`; elsewhere ``amp`` is ignored (float32).

    The model is moved to ``device`` (default :func:`kpedu.runtime.get_device`) and stays
    there; its train/eval mode is restored, and in train mode so are its weights,
    buffers (batch-norm statistics) and gradients, so benchmarking does not change it.

    Returns ``{"images_per_s", "seconds_per_batch", "batch_size", "mode", "device"}``.
    """
    _check_model(model)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    shape = _check_shape(input_shape)
    batch_size = _positive_int(batch_size, "batch_size")
    steps = _positive_int(steps, "steps")
    warmup = _positive_int(warmup, "warmup", minimum=0)
    dev = _resolve_device(device)
    dtype = runtime.amp_dtype(dev) if amp else None
    autocast = (lambda: torch.autocast(device_type="cuda", dtype=dtype)) if dtype is not None else None

    model.to(dev)
    modes = {m: m.training for m in model.modules()}
    x = torch.rand(batch_size, *shape, device=dev)
    saved_state = saved_grads = None
    try:
        if mode == "forward":
            model.eval()

            def step() -> None:
                with torch.no_grad():
                    if autocast is None:
                        model(x)
                    else:
                        with autocast():
                            model(x)
        else:
            saved_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            saved_grads = {p: p.grad for p in model.parameters()}
            params = [p for p in model.parameters() if p.requires_grad]
            if not params:
                raise ValueError("mode='train' needs a model with trainable parameters")
            model.train()
            opt = torch.optim.Adam(params, lr=1e-6)

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                if autocast is None:
                    loss = _sum_of_squares(model(x))
                else:
                    with autocast():
                        loss = _sum_of_squares(model(x))
                loss.backward()
                opt.step()

        for _ in range(warmup):
            step()
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        seconds = max(time.perf_counter() - t0, 1e-12) / steps
    finally:
        if saved_state is not None:
            model.load_state_dict(saved_state)
        if saved_grads is not None:
            for p, g in saved_grads.items():
                p.grad = g
        for m, training in modes.items():
            m.train(training)
    return {"images_per_s": batch_size / seconds, "seconds_per_batch": seconds, "batch_size": batch_size,
            "mode": mode, "device": str(dev)}


def benchmark(model: nn.Module, input_shape: Sequence[int], batch_size: int = 8, steps: int = 5,
              device: torch.device | str | None = None, amp: bool = False,
              peak: float | None = None) -> dict[str, Any]:
    """Everything the chapters' benchmark tables show, for one model.

    Returns a dict with ``params``; ``gflops_per_image`` (forward, one input of
    ``input_shape``, :func:`count_flops`); ``forward_images_per_s`` and
    ``train_images_per_s`` (:func:`throughput`, whose full results are under
    ``forward`` and ``train``); ``achieved_gflops`` (forward FLOPs times forward images
    per second); ``matmul_gflops`` (``peak`` if given, else :func:`matmul_throughput`
    measured now, in the autocast dtype when ``amp`` on CUDA) and ``fraction_of_peak``
    (``achieved_gflops / matmul_gflops``); plus ``batch_size``, ``device`` and ``amp``.
    """
    _check_model(model)
    shape = _check_shape(input_shape)
    if peak is not None and not (isinstance(peak, (int, float)) and not isinstance(peak, bool) and peak > 0):
        raise ValueError(f"peak must be a positive number of GFLOP/s or None, got {peak!r}")
    dev = _resolve_device(device)
    model.to(dev)
    flops = count_flops(model, torch.rand(1, *shape, device=dev))
    fwd = throughput(model, shape, "forward", batch_size, steps, device=dev, amp=amp)
    train = throughput(model, shape, "train", batch_size, steps, device=dev, amp=amp)
    if peak is None:
        dtype = runtime.amp_dtype(dev) if amp else None
        peak = matmul_throughput(dev, dtype=dtype or torch.float32)
    gflops = flops / 1e9
    achieved = gflops * fwd["images_per_s"]
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "gflops_per_image": gflops,
        "forward_images_per_s": fwd["images_per_s"],
        "train_images_per_s": train["images_per_s"],
        "achieved_gflops": achieved,
        "matmul_gflops": float(peak),
        "fraction_of_peak": achieved / float(peak),
        "batch_size": batch_size,
        "device": str(dev),
        "amp": bool(amp and dev.type == "cuda"),
        "forward": fwd,
        "train": train,
    }


def format_benchmark(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`benchmark` results, one row per named model.

    Columns: name, parameters (millions), forward GFLOP per image, forward and training
    images per second, achieved GFLOP/s and its percentage of the matmul peak. A value
    missing from a row prints as ``-``.
    """
    if not isinstance(rows, Mapping):
        raise ValueError(f"rows must be a dict of name -> benchmark() result, got {type(rows).__name__}")
    columns = [
        ("params M", "params", lambda v: f"{v / 1e6:.2f}"),
        ("GFLOP/img", "gflops_per_image", lambda v: f"{v:.3g}"),
        ("fwd img/s", "forward_images_per_s", lambda v: f"{v:.1f}"),
        ("train img/s", "train_images_per_s", lambda v: f"{v:.1f}"),
        ("GFLOP/s", "achieved_gflops", lambda v: f"{v:.1f}"),
        ("% matmul peak", "fraction_of_peak", lambda v: f"{100 * v:.1f}"),
    ]
    table = [["model", *(c[0] for c in columns)]]
    for name, row in rows.items():
        if not isinstance(row, Mapping):
            raise ValueError(f"row {name!r} must be a dict (a benchmark() result), got {type(row).__name__}")
        cells = [str(name)]
        for _, key, fmt in columns:
            v = row.get(key)
            cells.append("-" if v is None else fmt(v))
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table[1:]]
    return "\n".join(out)
