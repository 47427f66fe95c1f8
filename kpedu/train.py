"""One training loop for every chapter, checkpoints, and ``load_or_train``.

- :func:`fit` runs a fixed number of optimisation *steps* over any re-iterable source
  of batches, with mixed precision on CUDA, gradient clipping, an LR scheduler, a
  quiet progress bar, early stopping through a callback and data-parallel training
  when launched by ``torchrun`` (see :mod:`kpedu.distributed`). It returns a
  :class:`History`.
- :func:`save_checkpoint` / :func:`load_checkpoint` write and read
  ``{"state_dict", "meta", "kpedu_version"}`` files. Loading always uses
  ``torch.load(..., weights_only=True)``: a checkpoint cannot run code. They live in
  :mod:`kpedu.checkpointing` (with :class:`CheckpointError`, :class:`CheckpointWarning`
  and :func:`unwrap_model`), which :mod:`kpedu.hub` uses too; this module re-exports them
  and never imports :mod:`kpedu.hub`.
- :func:`load_or_train` is what a notebook calls for a headline model: load the
  committed checkpoint of the registry (:mod:`kpedu.hub`) when its hash checks out,
  else train.
- :func:`evaluating` and :func:`predict` run a model for inference.

A ``loss_fn(model, batch)`` must call ``model(...)`` for its forward pass: under
data-parallel training ``model`` is a ``DistributedDataParallel`` wrapper, which
synchronises gradients only through its ``forward``. Plain attributes of the wrapped
module (``model.head_type``) are forwarded; :func:`unwrap_model` gives the module.
Every parameter must receive a gradient under DDP (``find_unused_parameters`` is off).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpointing, checks, runtime
# checkpoint files live in kpedu.checkpointing (shared with kpedu.hub); re-exported here
from .checkpointing import CheckpointError, CheckpointWarning, load_checkpoint, save_checkpoint, unwrap_model
from .files import atomic_open
from . import distributed as kdist

__all__ = [
    "History",
    "fit",
    "to_device",
    "unwrap_model",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "CheckpointWarning",
    "load_or_train",
    "evaluating",
    "predict",
    "one_cycle",
]

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, Any]]"]
Callback = Callable[[int, "History", nn.Module], "bool | None"]


# --------------------------------------------------------------------------- helpers


def to_device(batch: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) dict / list / tuple / namedtuple to ``device``.

    Anything that is not a tensor or a container is returned unchanged.
    """
    device = torch.device(device)
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        moved = {k: to_device(v, device, non_blocking) for k, v in batch.items()}
        if type(batch) is dict:
            return moved
        try:
            return type(batch)(moved)  # OrderedDict, defaultdict-free subclasses, ...
        except Exception:
            return moved
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def _to_channels_last(batch: Any) -> Any:
    """Every 4-D floating-point tensor of a (nested) batch in the channels-last memory format."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 4 and batch.is_floating_point():
            return batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, Mapping):
        return {k: _to_channels_last(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_channels_last(v) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_channels_last(v) for v in batch)
    return batch


#: Leading dimension of the first tensor found in a batch (None if there is none); one
#: definition, in :mod:`kpedu.distributed`, which cuts batches by it.
_batch_size = kdist._leading_size


def split_batch(batch: Any, parts: int) -> list[tuple[Any, float]]:
    """Split ``batch`` into at most ``parts`` micro-batches along its leading (sample)
    dimension: ``[(micro_batch, share), ...]`` with ``share`` = its fraction of the samples.

    Tensors whose first dimension is the batch size are sliced, and so are lists and
    tuples of that length whose items are not tensors of that size (per-sample lists, such
    as ragged keypoint lists); dicts, lists and tuples of those are split item by item;
    anything else (scalars, strings, tensors of another length) is shared by every
    micro-batch. A batch without a leading dimension is returned whole."""
    n = _batch_size(batch)
    if n is None or parts <= 1 or n <= 1:
        return [(batch, 1.0)]
    parts = min(int(parts), n)
    bounds = [round(i * n / parts) for i in range(parts + 1)]

    def cut(x: Any, a: int, b: int) -> Any:
        if isinstance(x, torch.Tensor):
            return x[a:b] if x.ndim > 0 and x.shape[0] == n else x
        if isinstance(x, Mapping):
            return type(x)((k, cut(v, a, b)) for k, v in x.items()) if not isinstance(x, dict) else \
                {k: cut(v, a, b) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            per_sample = len(x) == n and not any(isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == n
                                                 for v in x)
            items = x[a:b] if per_sample else [cut(v, a, b) for v in x]
            return type(x)(items) if not hasattr(x, "_fields") else type(x)(*items)
        return x

    return [(cut(batch, a, b), (b - a) / n) for a, b in zip(bounds, bounds[1:]) if b > a]


class _DDP(nn.parallel.DistributedDataParallel):
    """``DistributedDataParallel`` that forwards unknown attributes to the wrapped module.

    So a ``loss_fn`` may read plain attributes such as ``model.num_joints`` under
    torchrun too. (Methods reached this way bypass DDP's ``forward``; the forward pass
    that produces the loss must still be ``model(...)``.)
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def _resolve_device(device: torch.device | str | None) -> torch.device:
    dev = device if isinstance(device, torch.device) else runtime.get_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _progress_enabled(progress: bool) -> bool:
    if not progress or not kdist.is_main_process():
        return False
    return os.environ.get("KPEDU_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


# --------------------------------------------------------------------------- History


@dataclass
class History:
    """What :func:`fit` recorded.

    ``loss`` and every ``logs[key]`` hold the mean over the steps since the previous
    log point; ``steps`` holds the step number (1-based) of each log point, and
    ``lr`` the learning rate of the first parameter group there.
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_second: float | None = None
    total_steps: int = 0
    stopped_early: bool = False

    @property
    def final_loss(self) -> float:
        """The last logged loss (NaN if nothing was logged)."""
        return self.loss[-1] if self.loss else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and checkpoint-safe copy (plain lists, floats and ints)."""
        return {
            "steps": list(self.steps),
            "loss": list(self.loss),
            "logs": {k: list(v) for k, v in self.logs.items()},
            "lr": list(self.lr),
            "seconds": float(self.seconds),
            "samples_per_second": self.samples_per_second,
            "total_steps": int(self.total_steps),
            "stopped_early": bool(self.stopped_early),
        }

    def plot(self, ax: Any = None, label: str | None = None, **kwargs: Any) -> Any:
        """Plot the logged loss against the step on a log scale; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        ax.plot(self.steps, self.loss, label=label or "loss", **kwargs)
        if self.loss and all(v > 0 for v in self.loss):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, which="both", alpha=0.3)
        if label:
            ax.legend()
        return ax


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, steps: int, pct_start: float = 0.1):
    """A one-cycle learning-rate schedule (warm-up for ``pct_start`` of ``steps``, then
    cosine annealing), used by every chapter's recipe.

    ``torch.optim.lr_scheduler.OneCycleLR`` divides by zero when ``pct_start * steps``
    is exactly 1 (e.g. 10 steps at 10 %); the warm-up is then lengthened to 1.5 steps.
    """
    steps = checks.integer(steps, "steps", minimum=1)
    max_lr = checks.number(max_lr, "max_lr", minimum=0.0, min_open=True)
    pct_start = checks.number(pct_start, "pct_start", minimum=0.0, maximum=1.0, min_open=True, max_open=True)
    if abs(pct_start * steps - 1.0) < 1e-9:
        pct_start = 1.5 / steps
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps, pct_start=pct_start)


# --------------------------------------------------------------------------- fit


class _Batches:
    """Endless iteration over a re-iterable, with clear errors for one-shot iterators."""

    def __init__(self, batches: Iterable[Any]):
        if isinstance(batches, (torch.Tensor, str, bytes, Mapping)) or not isinstance(
            batches, Iterable
        ):
            raise TypeError(
                "batches must be an iterable of batches (a DataLoader, list or generator), "
                f"got {type(batches).__name__}"
            )
        self.source = batches
        self.one_shot = iter(batches) is batches
        self.epoch = 0
        self.it: Iterator[Any] = self._start()
        self.taken_this_epoch = 0

    def _start(self) -> Iterator[Any]:
        # a DataLoader's sampler, or the sampler inside its batch_sampler: a
        # DistributedSampler reshuffles (identically on every rank) for each epoch
        for sampler in (getattr(self.source, "sampler", None),
                        getattr(getattr(self.source, "batch_sampler", None), "sampler", None)):
            if callable(getattr(sampler, "set_epoch", None)):
                sampler.set_epoch(self.epoch)
                break
        return iter(self.source)

    def next(self, step: int) -> Any:
        try:
            batch = next(self.it)
        except StopIteration:
            if self.taken_this_epoch == 0:
                raise ValueError("batches yielded no batches") from None
            if self.one_shot:
                raise ValueError(
                    f"batches is a one-shot iterator that ran out after {step - 1} steps; "
                    "pass a re-iterable (a list or DataLoader) or at least `steps` batches"
                ) from None
            self.epoch += 1
            self.taken_this_epoch = 0
            self.it = self._start()
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError(
                    f"batches yielded nothing when re-iterated for epoch {self.epoch}"
                ) from None
        self.taken_this_epoch += 1
        return batch


def _scalar(value: Any, what: str) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{what} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        return value.detach().reshape(()).float()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # numpy scalars
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a float or a scalar tensor, got {type(value).__name__}") from None


def _floats(values: list[torch.Tensor | float]) -> list[float]:
    """Convert a mix of scalar tensors and floats with one device transfer per device."""
    out: list[float | None] = [v if isinstance(v, float) else None for v in values]
    tensors = [(i, v) for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
    if tensors:
        host = torch.stack([v.to(tensors[0][1].device) for _, v in tensors]).cpu().tolist()
        for (i, _), x in zip(tensors, host):
            out[i] = float(x)
    return [float(x) for x in out]  # type: ignore[arg-type]


def fit(
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler: Any = None,
    device: torch.device | str | None = None,
    amp: bool | torch.dtype = True,
    grad_clip: float | None = None,
    log_every: int = 10,
    desc: str = "training",
    progress: bool = True,
    callback: Callback | None = None,
    state_path: str | os.PathLike[str] | None = None,
    save_every: int = 100,
    micro_batches: int = 1,
    channels_last: bool | None = None,
) -> History:
    """Train ``model`` in place for ``steps`` optimisation steps and return a :class:`History`.

    Parameters
    ----------
    model
        The module to train. It is moved to ``device``, put in train mode, and restored
        to its previous train/eval modes (module by module) afterwards. Under an active
        ``torch.distributed`` process group it is wrapped in ``DistributedDataParallel``
        (unless it already is); the parameters of ``model`` itself are trained.
    batches
        Any re-iterable of batches (DataLoader, list, ...), re-iterated when exhausted.
        A one-shot iterator (generator) must supply at least ``steps`` batches. Each
        batch (tensor, dict, tuple, list, nested) is moved with :func:`to_device`.
        A DataLoader's ``sampler.set_epoch(epoch)`` (or its batch sampler's) is called
        at every (re-)iteration. Under a process group each rank must get its own share
        of the global batch: :func:`kpedu.distributed.distributed_loader`,
        :func:`~kpedu.distributed.shard_batches` or
        :func:`~kpedu.distributed.rank_slice`; the first step checks this and warns
        (:class:`~kpedu.distributed.ShardingWarning`) when every rank got the same batch.
        Logged losses and logs are then means over the samples of all ranks, and
        ``History.samples_per_second`` counts every rank's samples.
    loss_fn
        ``loss_fn(model, batch)`` returns a scalar loss tensor or ``(loss, logs)`` with
        ``logs`` a dict of floats / scalar tensors averaged into ``History.logs``.
    steps
        Number of optimisation steps (not epochs).
    optimizer, lr, weight_decay
        Default optimiser: ``Adam(params, lr, weight_decay=weight_decay)``; a given
        ``optimizer`` must hold ``model``'s parameters (``lr`` is then ignored).
    scheduler
        A torch LR scheduler, or a callable ``(optimizer) -> scheduler``; stepped after
        every optimisation step (``ReduceLROnPlateau`` receives the step's loss).
    device
        Defaults to :func:`kpedu.runtime.get_device` (CUDA, then MPS, then CPU).
    amp
        ``True``: mixed precision on CUDA with :func:`kpedu.runtime.amp_dtype` (bfloat16
        plainly, float16 with a ``GradScaler``); CPU and MPS train in float32, so the
        book's CPU numbers are exact. ``False``: float32 everywhere. ``torch.bfloat16``:
        bfloat16 autocast on any device, CPU included (about twice as fast on CPUs with
        bfloat16 instructions, AVX512-BF16 or AMX; the weights and the optimiser stay in
        float32). ``torch.float16`` is accepted on CUDA only.
    grad_clip
        If given, clip the global gradient norm to this value.
    log_every
        Record a log point (and call ``callback``) every this many steps and at the end.
    desc, progress
        Progress-bar label and switch. The bar (``tqdm.auto``, refreshed at most every
        0.5 s) appears only on rank 0; ``KPEDU_PROGRESS=0`` turns it off everywhere.
    callback
        ``callback(step, history, model)`` at every log point; returning ``True`` stops
        training (under DDP, any rank stopping stops all of them).
    state_path, save_every
        Make a long run resumable: every ``save_every`` steps the model, optimiser,
        scheduler, gradient scaler, RNG states, history and step are written to
        ``state_path`` (atomically). If the file exists when ``fit`` starts, training
        resumes from it: the state is restored and the batch source is fast-forwarded
        by the steps already taken (without running the model), so a deterministic
        batch source continues exactly where it stopped. The file is removed when the
        run completes. Not supported under DDP.

    micro_batches
        Split every batch into this many micro-batches (:func:`split_batch`) that go
        through the model one after the other, their gradients summed with weights equal
        to their share of the samples, then take one optimiser step: the gradient of the
        whole batch for a loss that averages over samples, with the activation memory of
        one micro-batch (the book uses it to keep a training demonstration within
        Binder's 2 GB). Batch-normalisation statistics then come from each micro-batch.
    channels_last
        Train in the channels-last memory format: the model is converted with
        ``model.to(memory_format=torch.channels_last)`` and every 4-D floating-point tensor
        of a batch likewise (faster convolutions with tensor cores under mixed precision).
        ``None`` (default): on for CUDA, off elsewhere. The numbers are the same up to
        floating-point summation order.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite; the message names the step. (On CPU the
        check is immediate; on accelerators losses are read back in small groups to
        avoid a synchronisation per step, so a few more steps may have run.)
    """
    # ---- validation
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, batch)")
    steps = checks.integer(steps, "steps", minimum=1)
    log_every = checks.integer(log_every, "log_every", minimum=1)
    if optimizer is None:
        lr = checks.number(lr, "lr", minimum=0.0, min_open=True)
    weight_decay = checks.number(weight_decay, "weight_decay", minimum=0.0)
    grad_clip = checks.optional_number(grad_clip, "grad_clip", minimum=0.0, min_open=True)
    if not isinstance(amp, bool) and amp not in (torch.bfloat16, torch.float16):
        raise ValueError(f"amp must be True, False, torch.bfloat16 or torch.float16, got {amp!r}")
    micro_batches = checks.integer(micro_batches, "micro_batches", minimum=1)
    if channels_last is not None and not isinstance(channels_last, bool):
        raise TypeError(f"channels_last must be True, False or None, got {channels_last!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable as callback(step, history, model)")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if state_path is not None:
        save_every = checks.integer(save_every, "save_every", minimum=1)
        if kdist.is_distributed():
            raise ValueError("state_path (resumable training) is not supported under DDP")
        state_path = Path(state_path)
    source = _Batches(batches)

    # ---- device, model, wrappers
    dev = _resolve_device(device)
    base = unwrap_model(model)
    base.to(dev)
    if channels_last is None:
        channels_last = dev.type == "cuda"
    if channels_last:
        base.to(memory_format=torch.channels_last)
    net = model
    if kdist.is_distributed() and not isinstance(model, nn.parallel.DistributedDataParallel):
        if not any(p.requires_grad for p in base.parameters()):
            raise ValueError("model has no trainable parameters")
        net = _DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    world = kdist.get_world_size()

    params = [p for p in base.parameters() if p.requires_grad]
    if optimizer is None:
        if not params:
            raise ValueError("model has no trainable parameters")
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if scheduler is not None and not hasattr(scheduler, "step"):
        if not callable(scheduler):
            raise TypeError("scheduler must be an LR scheduler or a callable (optimizer) -> scheduler")
        scheduler = scheduler(optimizer)
        if not hasattr(scheduler, "step"):
            raise TypeError("the scheduler factory did not return an object with .step()")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    if isinstance(amp, bool):
        dtype = runtime.amp_dtype(dev) if amp else None
    else:
        if amp == torch.float16 and dev.type != "cuda":
            raise ValueError(f"amp=torch.float16 needs a CUDA device (got {dev}); use torch.bfloat16")
        dtype = amp
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    autocast = (
        (lambda: torch.autocast(device_type=dev.type, dtype=dtype))
        if dtype is not None
        else contextlib.nullcontext
    )
    # per-step loss read-back: immediate on CPU, grouped on accelerators
    sync_every = 1 if dev.type == "cpu" else min(log_every, 16)

    modes = {m: m.training for m in base.modules()}
    net.train()

    from tqdm.auto import tqdm

    history = History()
    pending: list[tuple[int, torch.Tensor]] = []  # (step, loss) not yet read back
    loss_sum, loss_n = 0.0, 0
    log_vals: dict[str, list[torch.Tensor | float]] = {}
    ema: float | None = None
    samples = 0  # this rank's samples over the run
    interval_samples = 0  # ... since the last log point (weights the mean over ranks)
    bar = tqdm(
        total=steps,
        desc=desc,
        disable=not _progress_enabled(progress),
        mininterval=0.5,
        dynamic_ncols=True,
        leave=True,
    )

    def flush() -> None:
        nonlocal loss_sum, loss_n, ema
        if not pending:
            return
        values = _floats([l for _, l in pending])
        for (s, _), v in zip(pending, values):
            if not math.isfinite(v):
                raise FloatingPointError(
                    f"loss is {v} at step {s} of {steps} ({desc}); lower the learning rate, "
                    "clip gradients (grad_clip=...) or check the data"
                )
            ema = v if ema is None else 0.9 * ema + 0.1 * v
        loss_sum += sum(values)
        loss_n += len(values)
        pending.clear()
        bar.set_postfix(loss=f"{ema:.4g}", refresh=False)

    def log_point(step: int) -> bool:
        nonlocal loss_sum, loss_n, interval_samples
        flush()
        keys = sorted(log_vals)
        means = [loss_sum / max(loss_n, 1)]
        for k in keys:
            vals = _floats(log_vals[k])
            means.append(sum(vals) / len(vals))
        if world > 1:  # every rank logs the same keys at the same steps
            # the mean over all samples of all ranks: each rank weighted by its samples
            # (by its steps when the batches have no sample dimension)
            weight = float(interval_samples or loss_n or 1)
            totals = kdist.all_reduce_sum(torch.tensor([m * weight for m in means] + [weight], dtype=torch.float64))
            means = (totals[:-1] / totals[-1]).tolist()
        interval_samples = 0
        history.steps.append(step)
        history.loss.append(float(means[0]))
        for k, m in zip(keys, means[1:]):
            history.logs.setdefault(k, []).append(float(m))
        history.lr.append(float(optimizer.param_groups[0]["lr"]))
        loss_sum, loss_n = 0.0, 0
        log_vals.clear()
        stop = bool(callback(step, history, base)) if callback is not None else False
        if world > 1:
            stop = bool(kdist.all_reduce_max(torch.tensor([float(stop)])).item() > 0)
        return stop

    first = 1
    if state_path is not None and state_path.exists():
        saved = _load_state(state_path, steps)
        base.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler") is not None:
            scaler.load_state_dict(saved["scaler"])
        for k, v in saved["history"].items():
            if k in ("steps", "loss", "lr"):
                getattr(history, k).extend(v)
            elif k == "logs":
                history.logs.update({key: list(vals) for key, vals in v.items()})
        samples = int(saved.get("samples", 0))
        done = int(saved["step"])
        for s_ in range(1, done + 1):  # fast-forward a deterministic batch source
            source.next(s_)
        torch.set_rng_state(saved["torch_rng"])
        if dev.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], dev)
        first = done + 1
        bar.update(done)
        bar.write(f"{desc}: resumed from {state_path} at step {done} of {steps}")

    def save_state(step_done: int) -> None:
        flush()
        state = {
            "step": step_done, "steps": steps, "samples": samples,
            "model": base.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "history": {"steps": list(history.steps), "loss": list(history.loss), "lr": list(history.lr),
                        "logs": {k: list(v) for k, v in history.logs.items()}},
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
        }
        with atomic_open(state_path, "wb") as fh:  # a crash while saving keeps the previous state
            torch.save(state, fh)

    start = time.perf_counter()
    step = first - 1
    try:
        for step in range(first, steps + 1):
            batch = source.next(step)
            n = _batch_size(batch)
            if n is not None:
                if n == 0:
                    raise ValueError(
                        f"rank {kdist.get_rank()} of {world} received an empty batch at step {step}"
                        + (": torchrun with more ranks than samples? Launch fewer processes or use more data"
                           if world > 1 else "")
                    )
                samples += n
                interval_samples += n
            if step == first and world > 1 and kdist.same_on_every_rank(batch) and kdist.is_main_process():
                warnings.warn(
                    f"fit ({desc}): all {world} ranks received the same first batch, so each rank repeats the "
                    "work of one process. Split the data: kpedu.distributed.distributed_loader for a data set, "
                    "shard_batches or rank_slice for a generated stream (see kpedu.distributed)",
                    kdist.ShardingWarning,
                    stacklevel=2,
                )
            batch = to_device(batch, dev, non_blocking=True)
            if channels_last:
                batch = _to_channels_last(batch)
            optimizer.zero_grad(set_to_none=True)
            parts = split_batch(batch, micro_batches)
            loss = None
            logs: dict[str, Any] = {}
            for index, (part, share) in enumerate(parts):
                sync = (index == len(parts) - 1 or not isinstance(net, nn.parallel.DistributedDataParallel))
                with (contextlib.nullcontext() if sync else net.no_sync()):
                    with autocast():
                        out = loss_fn(net, part)
                    if isinstance(out, tuple):
                        if len(out) != 2 or not isinstance(out[1], Mapping):
                            raise TypeError("loss_fn must return a loss tensor or (loss, logs: dict)")
                        part_loss, part_logs = out
                    else:
                        part_loss, part_logs = out, {}
                    if not isinstance(part_loss, torch.Tensor) or part_loss.numel() != 1:
                        raise TypeError(
                            f"loss_fn must return a scalar tensor, got {type(part_loss).__name__}"
                            + (f" of shape {tuple(part_loss.shape)}" if isinstance(part_loss, torch.Tensor) else "")
                        )
                    if not part_loss.requires_grad:
                        raise ValueError("the loss does not require grad: is the model's output detached?")
                    part_loss = part_loss.reshape(()) * share if len(parts) > 1 else part_loss.reshape(())
                    if scaler is not None:
                        scaler.scale(part_loss).backward()
                    else:
                        part_loss.backward()
                loss = part_loss.detach() if loss is None else loss + part_loss.detach()
                for k, v in part_logs.items():
                    v = _scalar(v, f"log {k!r}")
                    logs[k] = v * share if k not in logs else logs[k] + v * share

            if scaler is not None:
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
            if scheduler is not None:
                if plateau:
                    scheduler.step(float(loss.detach()))
                else:
                    scheduler.step()

            pending.append((step, loss.detach().float()))
            for k, v in logs.items():
                log_vals.setdefault(str(k), []).append(_scalar(v, f"log {k!r}"))
            bar.update(1)
            if len(pending) >= sync_every:
                flush()
            if step % log_every == 0 or step == steps:
                if log_point(step):
                    history.stopped_early = step < steps
                    break
            if state_path is not None and step % save_every == 0 and step < steps:
                save_state(step)
    finally:
        bar.close()
        for m, mode in modes.items():
            m.train(mode)

    history.total_steps = step
    history.seconds = time.perf_counter() - start
    if state_path is not None and state_path.exists():
        state_path.unlink()
    if world > 1:  # every rank gets here after the same number of steps
        samples = int(kdist.all_reduce_sum(torch.tensor([samples], dtype=torch.float64)).item())
    if samples and history.seconds > 0:
        history.samples_per_second = samples / history.seconds
    return history


# --------------------------------------------------------------------------- inference


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager: eval mode and ``torch.no_grad()``, previous modes restored after."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, mode in modes.items():
            m.train(mode)


def predict(
    model: nn.Module,
    batches: Iterable[Any],
    fn: Callable[[nn.Module, Any], Any] | None = None,
    device: torch.device | str | None = None,
) -> list[Any]:
    """Run ``fn(model, batch)`` (default ``model(batch)``) over ``batches`` for inference.

    The model is moved to ``device`` and evaluated under :func:`evaluating`; each
    output is moved back to the CPU. Returns one output per batch (concatenate them
    yourself, e.g. ``torch.cat(outputs)``).
    """
    if fn is not None and not callable(fn):
        raise TypeError("fn must be callable as fn(model, batch)")
    if not isinstance(batches, Iterable):
        raise TypeError(f"batches must be iterable, got {type(batches).__name__}")
    fn = fn or (lambda m, b: m(b))
    dev = _resolve_device(device)
    model.to(dev)
    outputs = []
    with evaluating(model):
        for batch in batches:
            outputs.append(to_device(fn(model, to_device(batch, dev, non_blocking=True)), "cpu"))
    return outputs


# --------------------------------------------------------------------------- training state
# (checkpoint files: kpedu.checkpointing, imported at the top)

_STATE_KEYS = ("step", "steps", "model", "optimizer", "history", "torch_rng")


def _load_state(state_path: Path, steps: int) -> dict[str, Any]:
    """Read the training state :func:`fit` resumes from, or raise :class:`CheckpointError`
    naming the file and what to do (a damaged or foreign file is never half-used)."""
    advice = f"delete {state_path} to start the run over (its steps are lost), or restore it from a copy"
    try:
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, EOFError, RuntimeError on a truncated or foreign file
        raise CheckpointError(f"the training state {state_path} is damaged or is not a kpedu training state "
                              f"({type(exc).__name__}: {exc}); {advice}") from exc
    if isinstance(saved, dict) and isinstance(saved.get("steps"), int) and saved["steps"] != steps:
        raise ValueError(f"{state_path} is a run of {saved['steps']} steps, not {steps}: remove it to start over")
    if not isinstance(saved, dict) or any(k not in saved for k in _STATE_KEYS):
        missing = [k for k in _STATE_KEYS if not isinstance(saved, dict) or k not in saved]
        raise CheckpointError(f"the training state {state_path} lacks {', '.join(missing)}: it was not written by "
                              f"kpedu.train.fit; {advice}")
    return saved


# --------------------------------------------------------------------------- load_or_train


def load_or_train(
    name: str,
    model: nn.Module,
    train_fn: Callable[[nn.Module], Any],
    *,
    device: torch.device | str | None = None,
    retrain: bool | None = None,
    verbose: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load the committed checkpoint ``name`` into ``model``, or train it.

    The checkpoint is looked up in the registry (:func:`kpedu.checkpointing.entry`, also
    :func:`kpedu.hub.entry`) and used when its file is present and its sha256 matches the
    registry. Otherwise ``train_fn(model)`` trains
    ``model`` in place under the active profile (its return value, e.g. metrics or a
    :class:`History`, is kept in ``info["result"]``); this happens when the name is not
    registered, the file is missing, the hash does not match (with a
    :class:`CheckpointWarning`), ``retrain=True``, or ``retrain`` is None and the
    profile is ``full``. Nothing is ever downloaded.

    Returns ``(model, info)`` with the model on ``device`` in eval mode and ``info``
    holding ``name``, ``source`` (``"checkpoint"`` or ``"trained"``), ``reason``,
    ``path``, ``sha256`` (of the file loaded, else None), ``seconds`` (to load or to
    train), ``profile``, and the registry's ``command``, ``metrics`` and ``entry``.
    A one-line message says which happened unless ``verbose=False``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(train_fn):
        raise TypeError("train_fn must be callable as train_fn(model)")
    if retrain is not None and not isinstance(retrain, bool):
        raise TypeError(f"retrain must be True, False or None, got {retrain!r}")

    profile = runtime.get_profile()
    dev = _resolve_device(device)
    model.to(dev)
    ent = checkpointing.entry(name)
    path = checkpointing.checkpoint_path(name)
    info: dict[str, Any] = {
        "name": name,
        "source": None,
        "reason": None,
        "path": str(path),
        "sha256": None,
        "seconds": 0.0,
        "profile": profile.name,
        "command": ent.get("command") if ent else None,
        "metrics": ent.get("metrics") if ent else None,
        "entry": ent,
        "result": None,
    }

    reason = None
    if retrain:
        reason = "retrain=True"
    elif retrain is None and profile.name == "full":
        reason = "profile 'full' reproduces checkpoints"
    elif ent is None:
        reason = f"{name!r} is not in the checkpoint registry"
        warnings.warn(
            f"{name}: no entry in the checkpoint registry {checkpointing.registry_path()}; training instead. "
            f"Register a checkpoint with `python -m kpedu.hub train {name}` if {name!r} is a recipe.",
            CheckpointWarning,
            stacklevel=2,
        )
    elif not path.is_file():
        reason = f"checkpoint file {path.name} is missing"
        warnings.warn(
            f"{name}: the registry lists {path.name} but the file is missing from {path.parent}; training "
            f"instead. Restore it (git checkout -- {path.name} in a clone) or regenerate it with "
            f"`{ent.get('command') or f'python -m kpedu.hub train {name}'}`.",
            CheckpointWarning,
            stacklevel=2,
        )
    else:
        digest = checkpointing.sha256(path)
        if digest != ent.get("sha256"):
            reason = f"sha256 of {path.name} does not match the registry"
            warnings.warn(
                f"{name}: {path} has sha256 {digest[:12]}... but the registry expects "
                f"{str(ent.get('sha256'))[:12]}...; training instead. Regenerate it with "
                f"`{ent.get('command') or f'python -m kpedu.hub train {name}'}`.",
                CheckpointWarning,
                stacklevel=2,
            )
        else:
            t0 = time.perf_counter()
            try:
                _, meta = load_checkpoint(path, model, map_location="cpu")
            except RuntimeError as exc:
                raise RuntimeError(
                    f"checkpoint {path.name} does not fit this model (the architecture "
                    f"changed since it was trained?); regenerate it with "
                    f"`{ent.get('command') or f'python -m kpedu.hub train {name}'}`: {exc}"
                ) from exc
            model.to(dev).eval()
            info.update(
                source="checkpoint",
                reason="committed checkpoint verified",
                sha256=digest,
                seconds=time.perf_counter() - t0,
                meta=meta,
            )
            if verbose:
                print(
                    f"[kpedu] {name}: loaded committed checkpoint {path.name} "
                    f"(sha256 {digest[:12]}, produced by `{info['command']}`)"
                )
            return model, info

    if verbose:  # said before training starts, so a long cell explains itself
        print(f"[kpedu] {name}: training from scratch under profile '{profile.name}' ({reason})", flush=True)
    t0 = time.perf_counter()
    result = train_fn(model)
    seconds = time.perf_counter() - t0
    model.to(dev).eval()
    info.update(source="trained", reason=reason, seconds=seconds, result=result)
    if verbose:
        print(
            f"[kpedu] {name}: trained from scratch under profile '{profile.name}' "
            f"in {seconds:.1f} s"
        )
    return model, info
