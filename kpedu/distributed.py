"""Data-parallel training over several processes, on top of ``torch.distributed``.

Everything here is a no-op in an ordinary single process, so chapter code can call it
unconditionally. To train a registered checkpoint on several GPUs (or several CPU
processes) launch the hub through ``torchrun``::

    torchrun --nproc_per_node=4 -m kpedu.hub train NAME --profile full

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_distributed` reads them, picks the device (``cuda:LOCAL_RANK``
when CUDA is available, else the CPU) and the backend (``nccl`` on CUDA, ``gloo``
otherwise) and returns a :class:`DistInfo`. Asking for CUDA on a machine without it,
or for more local ranks than visible GPUs, is an error that says so.

What :func:`kpedu.train.fit` does under a process group
    It wraps the model in ``DistributedDataParallel``: every rank starts from rank 0's
    weights and, in every backward pass, the gradients are averaged over the ranks,
    so the weights stay identical on every rank. With equal per-rank batches and a
    loss that is a mean over samples the averaged gradient is the gradient of the
    mean over the global batch: the run follows the single-process run at that
    global batch (up to floating-point summation order), except for batch
    normalisation, whose statistics come from each rank's share of the batch. The
    logged loss and logs are means over all the samples of all ranks (each rank's
    value weighted by its number of samples); ``History.samples_per_second`` counts
    the samples of every rank; a ``callback`` returning True on any rank stops all of
    them; the progress bar shows on rank 0 only. At its first step ``fit`` compares
    the ranks' batches and warns (:class:`ShardingWarning`) when they are all the
    same, the sign of a batch source that was not split (every rank then repeats the
    work of one process). ``fit`` runs a fixed number of *steps*, so all ranks take
    the same number of optimiser steps and never wait on each other at the end.

Splitting the data: the global batch
    A recipe's batch size is the *global* batch: with ``W`` ranks each rank takes a
    share of ``batch_size / W`` samples, rank ``r`` the samples at positions
    ``r, r + W, r + 2W, ...`` of the batch one process would have drawn (:func:`rank_slice`).
    The union of the ranks' shares at a step is exactly the single-process batch of
    that step. For exact gradient equivalence the global batch should be a multiple
    of ``W`` (:func:`local_batch_size` insists on it where it decides the share).

    * Map-style data sets: :func:`distributed_loader` builds a ``DataLoader`` over a
      ``DistributedSampler`` (every rank shuffles with the same seed, then keeps its
      stride; ``fit`` calls the sampler's ``set_epoch`` each time it re-iterates the
      loader, so every epoch is shuffled afresh, identically on every rank).
    * Generated streams (the chapters' ``torch.Generator``-driven batch generators):
      every rank seeds the generator alike (``kpedu.hub.train`` seeds every rank with
      the same seed), so every rank draws the same global sequence; each rank then
      keeps its share, in one of two ways:

      - :func:`shard_batches` wraps the stream and cuts every finished batch. Each
        rank still renders (draws, augments) the whole global batch and throws the
        rest away, but the result is *exactly* the single-process stream, whatever
        the generator does. Use it when rendering is cheap next to the forward and
        backward pass (the hourglass chapter: about 18 ms of a 1.3 s step on one CPU
        core).
      - :func:`rank_slice` applied to the sample indices right after they are
        drawn, before the expensive rendering: each rank renders only its share.
        Two conditions keep this correct. Every rank must draw the same amount of
        randomness from the shared generator at every step (drawing per-sample
        augmentation for ``batch_size / W`` samples from it keeps the ranks in step
        only when every share has the same size); and per-sample randomness drawn
        after the slice must come from a generator seeded per rank
        (:func:`rank_seed`), else the ``j``-th sample of every rank gets the same
        augmentation. The indices then follow the single-process stream only until
        the first draw that depends on the share size; the stream stays a stream
        of independent random batches, which is what training needs.

      :func:`rank_seed` also gives fully independent per-rank streams (a generator
      seeded with it on each rank, drawing ``local_batch_size(batch_size)`` samples).
    * For index lists there is :func:`shard_indices` (``range(rank, n, world)``).

    More ranks than samples (in the data set, or in one global batch) is an error
    naming both numbers.

Checkpoints
    Only rank 0 writes files: :func:`kpedu.hub.train` saves and registers the
    checkpoint on rank 0 and then :func:`barrier` waits for it before any rank
    returns. ``fit(state_path=...)`` (resumable runs) is refused under a process group.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from . import checks, runtime

__all__ = [
    "DistInfo",
    "ShardingWarning",
    "init_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "all_reduce_sum",
    "all_reduce_max",
    "shard_indices",
    "rank_slice",
    "local_batch_size",
    "rank_seed",
    "shard_batch",
    "shard_batches",
    "distributed_loader",
    "same_on_every_rank",
    "cleanup",
]


class ShardingWarning(UserWarning):
    """Every rank of a data-parallel run received the same batch: the data is not split."""


_ENV_VARS = ("RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) run."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that prints, saves and registers)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is active."""
        return is_distributed()


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise RuntimeError(f"environment variable {name} is required for a distributed run")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < 0:
        raise ValueError(f"environment variable {name}={value} must be non-negative")
    return value


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes in the group (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 and in every non-distributed run."""
    return get_rank() == 0


def init_distributed(
    device: str | torch.device | None = None,
    backend: str | None = None,
    timeout_s: float = 1800.0,
) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Without ``RANK``/``WORLD_SIZE`` in the environment this is a no-op and returns a
    single-process :class:`DistInfo` on ``runtime.get_device(device)``. Under torchrun
    each process gets ``cuda:LOCAL_RANK`` when CUDA is available (unless ``device``
    forces another type, e.g. ``"cpu"``), the backend defaults to ``nccl`` on CUDA
    and ``gloo`` otherwise, and ``MASTER_ADDR``/``MASTER_PORT`` must be set.
    Calling it again once the group exists just returns the current info.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if backend is not None and backend not in ("nccl", "gloo", "mpi", "ucc", "xccl"):
        raise ValueError(f"unknown torch.distributed backend {backend!r}")

    if not all(v in os.environ for v in _ENV_VARS) and not is_distributed():
        return DistInfo(0, 0, 1, runtime.get_device(device))
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of PyTorch")

    local_rank = _env_int("LOCAL_RANK", 0)
    if is_distributed():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
        if world < 1 or rank >= world:
            raise ValueError(f"invalid RANK={rank} / WORLD_SIZE={world}")
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise RuntimeError(
                    f"{var} is not set; launch with `torchrun --nproc_per_node=N ...` "
                    "or set MASTER_ADDR and MASTER_PORT yourself"
                )

    if device is None:
        dev = torch.device("cuda", local_rank) if torch.cuda.is_available() else runtime.get_device("cpu")
    else:
        try:
            dev = runtime.get_device(str(device))
        except RuntimeError as exc:
            raise RuntimeError(
                f"rank {rank} of {world} was asked for device {str(device)!r}, which this machine does not have "
                f"({exc}); run with --device cpu (gloo backend) or on a machine with that device"
            ) from exc
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError(f"backend 'nccl' needs CUDA devices, but this rank runs on {dev}; use backend='gloo'")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} needs {dev} but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible"
            )
        torch.cuda.set_device(dev)

    if not is_distributed():
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        kwargs = {"device_id": dev} if (dev.type == "cuda" and backend == "nccl") else {}
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=timeout_s),
            **kwargs,
        )
    return DistInfo(rank, local_rank, world, dev)


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    """Where the active backend wants tensors: the current GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Return the element-wise mean of ``tensor`` over all ranks, as a new tensor.

    Integer and boolean tensors are averaged as float32. The input is not modified and
    the result lives on the input's device. Without a process group this is a copy.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"all_reduce_mean expects a tensor, got {type(tensor).__name__}")
    out = tensor.detach().clone()
    if not out.is_floating_point():
        out = out.float()
    if not is_distributed():
        return out
    work = out.to(_collective_device())
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    work /= dist.get_world_size()
    return work.to(tensor.device)


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over all ranks (a copy without a process group)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"all_reduce_max expects a tensor, got {type(tensor).__name__}")
    out = tensor.detach().clone()
    if not is_distributed():
        return out
    work = out.to(_collective_device())
    dist.all_reduce(work, op=dist.ReduceOp.MAX)
    return work.to(tensor.device)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all ranks, as a new tensor (a copy without a process group).

    Integer and boolean tensors are summed as float64 (exact for counts below 2**53)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"all_reduce_sum expects a tensor, got {type(tensor).__name__}")
    out = tensor.detach().clone()
    if not out.is_floating_point():
        out = out.double()
    if not is_distributed():
        return out
    work = out.to(_collective_device())
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``, this process's where not given, checked."""
    world = checks.integer(get_world_size() if world_size is None else world_size, "world_size", minimum=1)
    rank = checks.integer(get_rank() if rank is None else rank, "rank", minimum=0, maximum=world - 1)
    return rank, world


def _too_few(n: int, world: int, where: str, advice: str) -> ValueError:
    return ValueError(
        f"torchrun with {world} ranks but only {n} sample{'' if n == 1 else 's'} {where}: every rank needs at "
        f"least one sample; launch fewer processes (torchrun --nproc_per_node) or {advice}"
    )


def shard_indices(n: int, rank: int | None = None, world_size: int | None = None) -> list[int]:
    """The indices ``rank, rank + world, rank + 2*world, ...`` below ``n``.

    Shards are disjoint, cover ``range(n)`` and differ in length by at most one.
    ``rank`` and ``world_size`` default to this process's values. For a
    ``DataLoader`` prefer :func:`distributed_loader`.
    """
    n = checks.integer(n, "n", minimum=0)
    rank, world_size = _rank_world(rank, world_size)
    return list(range(rank, n, world_size))


def rank_slice(indices: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's share ``indices[rank::world_size]`` of a global batch's sample indices.

    ``indices`` is a 1-D (or higher; the first dimension is sliced) tensor, a numpy
    array, a list, a tuple or a range; the result has the same type (a tensor slice is
    a view). Call it right after drawing the global batch's indices from a generator
    that every rank seeds alike: the shares of all ranks are then disjoint and together
    exactly the global batch (see the module documentation for the conditions that keep
    the ranks' generators in step). Without a process group (``world_size`` 1) the
    input is returned unchanged, so a single-process run is not altered at all.

    Raises ``ValueError`` when there are fewer indices than ranks.
    """
    if isinstance(indices, (str, bytes, Mapping)) or not hasattr(indices, "__getitem__") or not hasattr(
            indices, "__len__"):
        raise TypeError(f"indices must be a tensor, numpy array, list, tuple or range, got {type(indices).__name__}")
    if isinstance(indices, (torch.Tensor, np.ndarray)) and indices.ndim == 0:
        raise ValueError("indices must have at least one dimension, got a 0-d array")
    rank, world = _rank_world(rank, world_size)
    if world == 1:
        return indices
    n = len(indices)
    if n < world:
        raise _too_few(n, world, "in the global batch", "draw a global batch of at least one sample per rank")
    return indices[rank::world]


def local_batch_size(batch_size: int, world_size: int | None = None) -> int:
    """Each rank's share of a global batch of ``batch_size`` samples: ``batch_size // world_size``.

    ``batch_size`` must be a multiple of the number of ranks (so every rank's loss
    averages as many samples and the averaged gradient is the global batch's), and at
    least one sample per rank."""
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    _, world = _rank_world(None if world_size is None else 0, world_size)
    if batch_size < world:
        raise _too_few(batch_size, world, "in a global batch (batch_size)", "raise batch_size")
    if batch_size % world:
        raise ValueError(
            f"batch_size {batch_size} (the global batch) is not a multiple of the {world} ranks; "
            f"use {batch_size - batch_size % world} or {batch_size + world - batch_size % world}, "
            "or another number of processes"
        )
    return batch_size // world


def rank_seed(seed: int, rank: int | None = None, world_size: int | None = None) -> int:
    """A seed for randomness that must differ between ranks (augmentation drawn after
    :func:`rank_slice`, or a fully independent per-rank stream).

    Without a process group (``world_size`` 1) it is ``seed`` itself, so single-process
    results do not change. Otherwise it is a 63-bit integer derived from ``(seed, rank)``
    by numpy's ``SeedSequence``: different on every rank, the same in every run."""
    seed = checks.integer(seed, "seed", minimum=0)
    rank, world = _rank_world(rank, world_size)
    if world == 1:
        return seed
    words = np.random.SeedSequence([seed, rank]).generate_state(2, np.uint32)
    return int(((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1))


def _leading_size(batch: Any) -> int | None:
    """First dimension of the first tensor found in ``batch`` (None if there is none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim > 0 else None
    if isinstance(batch, Mapping):
        items: Iterable[Any] = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for item in items:
        n = _leading_size(item)
        if n is not None:
            return n
    return None


def _take(x: Any, n: int, sl: slice, top: bool) -> Any:
    """``x`` with every per-sample part cut to ``sl`` (see :func:`shard_batch`)."""
    if isinstance(x, torch.Tensor):
        return x[sl] if x.ndim > 0 and x.shape[0] == n else x
    if isinstance(x, np.ndarray):
        return x[sl] if x.ndim > 0 and x.shape[0] == n else x
    if isinstance(x, Mapping):
        items = {k: _take(v, n, sl, False) for k, v in x.items()}
        if type(x) is dict:
            return items
        try:
            return type(x)(items)
        except Exception:
            return items
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple: always structure
        return type(x)(*(_take(v, n, sl, False) for v in x))
    if isinstance(x, (list, tuple)):
        batched = [isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim > 0 and v.shape[0] == n for v in x]
        if not top and len(x) == n and not all(batched):  # a per-sample list (ragged keypoints, ...)
            return type(x)(x[sl])
        return type(x)(_take(v, n, sl, False) for v in x)
    return x


def shard_batch(batch: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's share of one global batch: the samples at positions ``rank::world_size``.

    ``batch`` is a tensor or a (nested) dict / list / tuple / namedtuple. Its batch
    size ``n`` is the first dimension of the first tensor found. Every tensor or numpy
    array whose first dimension is ``n`` is sliced; so is every list or tuple of length
    ``n`` below the top level whose items are not all arrays of first dimension ``n``
    (a per-sample list, such as ragged keypoint tensors, one per image); anything else
    (scalars, 0-d tensors such as a step number, strings, tensors of another length)
    is kept whole on every rank. ``shard_batch(b)["index"]`` equals
    ``rank_slice(b["index"])``. Without a process group the batch is returned unchanged.

    Raises ``ValueError`` when the batch has fewer samples than there are ranks.
    """
    rank, world = _rank_world(rank, world_size)
    if world == 1:
        return batch
    n = _leading_size(batch)
    if n is None:
        raise TypeError(
            f"shard_batch needs a batch holding at least one tensor with a sample dimension, got "
            f"{type(batch).__name__}; shard such a source by its sample indices with rank_slice"
        )
    if n < world:
        raise _too_few(n, world, "in the global batch", "draw a global batch of at least one sample per rank")
    return _take(batch, n, slice(rank, None, world), True)


class _ShardedBatches:
    """A re-iterable over a re-iterable batch source, each batch cut by :func:`shard_batch`."""

    def __init__(self, source: Iterable[Any], rank: int | None, world_size: int | None):
        self.source, self.rank, self.world_size = source, rank, world_size

    def __iter__(self) -> Iterator[Any]:
        rank, world = _rank_world(self.rank, self.world_size)
        for batch in self.source:
            yield shard_batch(batch, rank, world)

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"shard_batches({self.source!r})"


def _sharded_iterator(source: Iterator[Any], rank: int | None, world_size: int | None) -> Iterator[Any]:
    rank, world = _rank_world(rank, world_size)
    for batch in source:
        yield shard_batch(batch, rank, world)


def shard_batches(batches: Iterable[Any], rank: int | None = None, world_size: int | None = None) -> Iterable[Any]:
    """Wrap a source of *global* batches so that this rank gets its share of each.

    Every rank must produce the same sequence of global batches (a generator seeded
    alike on every rank, as :func:`kpedu.hub.train` does); each batch is then cut by
    :func:`shard_batch`, so the shares of one step are disjoint and together exactly the
    batch a single process would have trained on, with the same augmentation. The cost:
    every rank renders the whole global batch (see :func:`rank_slice` to render only a
    share). A one-shot iterator (a generator) gives a one-shot iterator, a re-iterable
    (a list, a ``DataLoader``) a re-iterable. ``rank`` and ``world_size`` default to this
    process's values, read when the iteration starts; with one process the batches pass
    through unchanged.

    A ``DataLoader`` whose ``DistributedSampler`` already splits the data over several
    replicas is refused (it would be split twice).
    """
    if isinstance(batches, (torch.Tensor, str, bytes, Mapping)) or not isinstance(batches, Iterable):
        raise TypeError(f"batches must be an iterable of batches (a generator, list or DataLoader), "
                        f"got {type(batches).__name__}")
    sampler = getattr(batches, "sampler", None)
    if isinstance(sampler, torch.utils.data.DistributedSampler) and sampler.num_replicas > 1:
        raise ValueError("batches is a DataLoader whose DistributedSampler already splits the data over "
                         f"{sampler.num_replicas} replicas; pass it to fit directly instead of through shard_batches")
    if rank is not None or world_size is not None:
        _rank_world(rank, world_size)  # fail early on bad arguments
    if iter(batches) is batches:
        return _sharded_iterator(batches, rank, world_size)  # type: ignore[arg-type]
    return _ShardedBatches(batches, rank, world_size)


def _cpus_per_rank() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    local = os.environ.get("LOCAL_WORLD_SIZE")
    local_world = int(local) if local and local.isdigit() and int(local) > 0 else get_world_size()
    return max(1, cpus // local_world)


def distributed_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    collate_fn: Any = None,
    num_workers: int | None = None,
    pin_memory: bool | None = None,
    device: str | torch.device | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over this rank's share of a map-style ``dataset``, for :func:`kpedu.train.fit`.

    ``batch_size`` is the **global** batch: each of the ``W`` ranks loads
    :func:`local_batch_size` ``= batch_size / W`` samples per step (so it must be a
    multiple of ``W``), and a recipe keeps its batch size, learning rate and number of
    steps whatever the number of processes. The sampler is a
    ``torch.utils.data.DistributedSampler`` with ``shuffle`` and ``seed``: every rank
    draws the same permutation of the data set and keeps the positions ``rank, rank + W,
    ...``, so the union of the ranks' batches at every step is exactly the batch of a
    single-process run (``W = 1``) with the same seed. :func:`kpedu.train.fit` calls
    ``set_epoch`` each time it re-iterates the loader, which reshuffles every epoch.

    ``drop_last=False`` (the default): when the data set's length is not a multiple of
    ``W`` the sampler repeats the first few samples of the epoch's order so that every
    rank has ``ceil(len / W)`` samples, and the last batch of an epoch may be short.
    ``drop_last=True``: the sampler leaves out the last ``len % W`` samples of each
    epoch's order, and the loader drops a last incomplete batch, so every step sees
    exactly ``batch_size`` samples in all.

    ``num_workers`` defaults to 0 on the CPU (the workers would compete with the
    training threads) and, on CUDA, to up to 4 per rank, leaving a core to the rank's
    own process; ``pin_memory`` defaults to True on CUDA. ``device`` is the training
    device (:func:`kpedu.runtime.get_device`; asking for CUDA without it is an error);
    ``rank`` and ``world_size`` default to this process's values.

    Raises ``ValueError`` when the data set has fewer samples than there are ranks, or
    too few for one batch per rank with ``drop_last``.
    """
    if isinstance(dataset, torch.utils.data.IterableDataset):
        raise TypeError("dataset is an IterableDataset, which a DistributedSampler cannot index; "
                        "split its stream with shard_batches or rank_slice instead")
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise TypeError(f"dataset must be a map-style data set (__getitem__ and __len__), got {type(dataset).__name__}")
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    seed = checks.integer(seed, "seed", minimum=0)
    rank, world = _rank_world(rank, world_size)
    n = len(dataset)
    if n < world:
        raise _too_few(n, world, "in the data set", "use a larger data set")
    per_rank = local_batch_size(batch_size, world)
    if drop_last and n // world < per_rank:
        raise ValueError(
            f"drop_last=True with {n} samples over {world} ranks leaves {n // world} per rank, fewer than one "
            f"batch of {per_rank} (batch_size {batch_size} / {world}); use drop_last=False or a smaller batch_size"
        )
    dev = runtime.get_device(None if device is None else str(device))
    cuda = dev.type == "cuda"
    if num_workers is None:
        num_workers = min(4, _cpus_per_rank() - 1) if cuda else 0
    num_workers = checks.integer(num_workers, "num_workers", minimum=0)
    if pin_memory is None:
        pin_memory = cuda
    if not isinstance(pin_memory, bool):
        raise TypeError(f"pin_memory must be True, False or None, got {pin_memory!r}")
    if collate_fn is not None and not callable(collate_fn):
        raise TypeError("collate_fn must be callable or None")
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle,
                                                  seed=seed, drop_last=drop_last)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=drop_last,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,  # fit re-iterates every epoch: keep the workers
        generator=torch.Generator().manual_seed(rank_seed(seed, rank, world)),  # worker seeds, not the global RNG
    )


def _fingerprint(batch: Any) -> torch.Tensor:
    """A float64 summary of every tensor in ``batch``: equal batches give equal vectors."""
    parts: list[torch.Tensor] = []

    def visit(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = torch.nan_to_num(x.detach().reshape(-1).double(), nan=0.0, posinf=1e300, neginf=-1e300)
            w = torch.arange(t.numel(), dtype=torch.float64, device=t.device).remainder_(9973).add_(1.0)
            i = float(len(parts) + 1)
            parts.append(torch.stack([t.new_tensor(float(t.numel())), t.sum() * i, (t * w).sum()]).cpu())
        elif isinstance(x, Mapping):
            for v in x.values():
                visit(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                visit(v)

    visit(batch)
    return torch.stack(parts).sum(0) if parts else torch.zeros(3, dtype=torch.float64)


def same_on_every_rank(batch: Any) -> bool:
    """True when every rank holds the same ``batch`` (compared by a checksum of its tensors).

    A collective: every rank must call it. Without a process group it returns False
    (nothing is duplicated). :func:`kpedu.train.fit` uses it on the first batch to warn
    about data that was not split between the ranks."""
    if get_world_size() == 1:
        return False
    fp = _fingerprint(batch)
    hi, neg_lo = all_reduce_max(torch.cat([fp, -fp])).chunk(2)  # one collective: max and min
    return bool(torch.equal(hi, -neg_lo) and fp[0] > 0)


def cleanup() -> None:
    """Leave and destroy the process group (no-op without one)."""
    if is_distributed():
        dist.destroy_process_group()
