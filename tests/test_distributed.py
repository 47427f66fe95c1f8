"""Tests for kpedu.distributed and data-parallel kpedu.train.fit (2 CPU processes, gloo)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from kpedu import distributed as kdist

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)


def test_single_process_is_a_no_op(no_torchrun_env):
    info = kdist.init_distributed("cpu")
    assert info == kdist.DistInfo(0, 0, 1, torch.device("cpu"))
    assert info.is_main and not info.distributed
    assert kdist.is_main_process() and kdist.get_world_size() == 1
    t = torch.tensor([1, 2, 3])
    out = kdist.all_reduce_mean(t)
    assert out.dtype == torch.float32 and torch.equal(out, t.float()) and out is not t
    kdist.barrier()
    kdist.cleanup()


def test_shard_indices_partition():
    shards = [kdist.shard_indices(10, r, 3) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(i for s in shards for i in s) == list(range(10))
    assert kdist.shard_indices(5) == list(range(5))  # single process: everything
    with pytest.raises(ValueError, match="rank"):
        kdist.shard_indices(10, 3, 3)
    with pytest.raises(ValueError, match="world_size"):
        kdist.shard_indices(10, 0, 0)


def test_init_requires_master_addr(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_ADDR"):
        kdist.init_distributed("cpu")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: join the group, train on its own shard, save what it ended with."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), KPEDU_PROGRESS="0")
    torch.set_num_threads(1)
    from kpedu.train import fit

    info = kdist.init_distributed("cpu", timeout_s=60)
    try:
        assert (info.rank, info.world_size, info.device.type) == (rank, world, "cpu")
        assert info.distributed and kdist.is_main_process() == (rank == 0)
        mean = kdist.all_reduce_mean(torch.tensor([float(rank)]))

        torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        model.tag = "plain attr"  # loss_fn may read module attributes through the wrapper
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, generator=g)
        y = x.sum(1, keepdim=True) ** 2
        idx = kdist.shard_indices(64)  # each rank sees different samples
        batches = [(x[idx[i:i + 8]], y[idx[i:i + 8]]) for i in range(0, len(idx), 8)]
        wrapped = []

        def loss_fn(m, b):
            wrapped.append(isinstance(m, nn.parallel.DistributedDataParallel) and m.tag == "plain attr")
            return nn.functional.mse_loss(m(b[0]), b[1]), {"rank": float(rank)}

        hist = fit(model, batches, loss_fn, steps=12, lr=0.05, log_every=4, device="cpu")
        kdist.barrier()
        torch.save(
            {
                "params": [p.detach().clone() for p in model.parameters()],
                "wrapped": all(wrapped),
                "loss": hist.loss,
                "rank_log": hist.logs["rank"],
                "mean": float(mean),
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        kdist.cleanup()


def test_two_process_ddp_fit_keeps_ranks_identical(tmp_path):
    world = 2
    mp.spawn(_ddp_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    for res in results:
        assert res["wrapped"], "fit did not wrap the model in DistributedDataParallel"
        assert res["mean"] == pytest.approx(0.5)
        assert res["rank_log"] == pytest.approx([0.5, 0.5, 0.5])  # logs averaged over ranks
    assert results[0]["loss"] == results[1]["loss"]
    for a, b in zip(results[0]["params"], results[1]["params"]):
        assert torch.equal(a, b)
    assert results[0]["loss"][-1] < results[0]["loss"][0]
