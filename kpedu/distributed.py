"""Multi-process (data-parallel) training helpers, thin wrappers over ``torch.distributed``.

Everything here is a no-op in an ordinary single process, so chapter code can call it
unconditionally. To train a registered checkpoint on several GPUs (or several CPU
processes) launch the hub through ``torchrun``::

    torchrun --nproc_per_node=4 -m kpedu.hub train NAME --profile full

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_distributed` reads them, picks the backend (``nccl`` on
CUDA, ``gloo`` otherwise) and returns a :class:`DistInfo`. :func:`kpedu.train.fit`
then wraps the model in ``DistributedDataParallel`` by itself, averages its logged
losses across ranks and shows progress on rank 0 only.

Splitting the data
    Each rank must see different samples. With a ``DataLoader`` pass
    ``sampler=torch.utils.data.DistributedSampler(dataset)`` (``fit`` calls its
    ``set_epoch`` whenever it re-iterates the loader). For index-based or generated
    data use :func:`shard_indices`. ``fit`` runs a fixed number of *steps*, so ranks
    with slightly different shard sizes still take the same number of steps and never
    wait on each other.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from . import runtime

__all__ = [
    "DistInfo",
    "init_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "all_reduce_max",
    "shard_indices",
    "cleanup",
]

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
        dev = runtime.get_device(str(device))
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


def shard_indices(n: int, rank: int | None = None, world_size: int | None = None) -> list[int]:
    """The indices ``rank, rank + world, rank + 2*world, ...`` below ``n``.

    Shards are disjoint, cover ``range(n)`` and differ in length by at most one.
    ``rank`` and ``world_size`` default to this process's values. For a
    ``DataLoader`` prefer ``torch.utils.data.DistributedSampler``.
    """
    from . import checks

    n = checks.integer(n, "n", minimum=0)
    rank = get_rank() if rank is None else rank
    world_size = checks.integer(get_world_size() if world_size is None else world_size, "world_size", minimum=1)
    rank = checks.integer(rank, "rank", minimum=0, maximum=world_size - 1)
    return list(range(rank, n, world_size))


def cleanup() -> None:
    """Leave and destroy the process group (no-op without one)."""
    if is_distributed():
        dist.destroy_process_group()
