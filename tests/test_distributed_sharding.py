"""Data parallelism that splits the work (issue 21): kpedu.distributed's sharding helpers
and kpedu.train.fit under two CPU ranks (gloo), compared with one process.

The two-rank runs are real processes launched like torchrun (``tests/dist_worker.py``:
RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free port, a time limit, every rank
killed when one fails); the same scenarios run once in this process as the
single-process reference.
"""
from __future__ import annotations

import collections
import os

import pytest
import torch
import torch.distributed as dist

import dist_worker
from kpedu import distributed as kdist
from kpedu.train import fit

WORLD = 2
WEIGHT_TOL = 1e-5  # DDP averages two per-rank gradients; one process takes the mean over all: same up to rounding

needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available in this build")

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)


def _interleave(shares: list[list]) -> list:
    """Rebuild a global batch from rank shares taken at positions rank::world."""
    out = [None] * sum(len(s) for s in shares)
    for r, s in enumerate(shares):
        out[r::len(shares)] = s
    return out


# --------------------------------------------------------------------------- in one process


def test_rank_slice_shares_are_disjoint_and_rebuild_the_batch():
    idx = torch.tensor([7, 3, 9, 1, 4, 0, 8])
    for world in (1, 2, 3, 7):
        shares = [kdist.rank_slice(idx, r, world) for r in range(world)]
        assert sum(len(s) for s in shares) == len(idx)
        assert _interleave([s.tolist() for s in shares]) == idx.tolist()
    assert kdist.rank_slice(idx) is idx  # no process group: untouched
    assert kdist.rank_slice(list(range(5)), 1, 2) == [1, 3]
    assert kdist.rank_slice(range(5), 0, 2) == range(0, 5, 2)
    with pytest.raises(ValueError, match="torchrun with 3 ranks but only 2 samples in the global batch"):
        kdist.rank_slice(torch.arange(2), 0, 3)
    with pytest.raises(TypeError, match="indices"):
        kdist.rank_slice({"a": 1}, 0, 2)
    with pytest.raises(ValueError, match="rank"):
        kdist.rank_slice(idx, 2, 2)


def test_local_batch_size_and_rank_seed():
    assert kdist.local_batch_size(16) == 16
    assert kdist.local_batch_size(16, 4) == 4
    with pytest.raises(ValueError, match="batch_size 10 .* not a multiple of the 4 ranks; use 8 or 12"):
        kdist.local_batch_size(10, 4)
    with pytest.raises(ValueError, match="torchrun with 4 ranks but only 2 samples"):
        kdist.local_batch_size(2, 4)
    with pytest.raises(ValueError, match="batch_size"):
        kdist.local_batch_size(0, 2)

    assert kdist.rank_seed(21) == 21  # one process: the seed itself, so results do not change
    seeds = [kdist.rank_seed(21, r, 4) for r in range(4)]
    assert len(set(seeds)) == 4 and seeds == [kdist.rank_seed(21, r, 4) for r in range(4)]
    assert all(0 <= s < 2 ** 63 for s in seeds)
    draws = [torch.rand(3, generator=torch.Generator().manual_seed(s)) for s in seeds]
    assert not torch.equal(draws[0], draws[1])
    with pytest.raises(ValueError, match="seed"):
        kdist.rank_seed(-1, 0, 2)


def test_shard_batch_cuts_every_per_sample_part():
    Pair = collections.namedtuple("Pair", "a b")
    n = 4
    ragged = [torch.zeros(k, 2) for k in (1, 4, 2, 3)]  # one item has n rows: still a per-sample list
    batch = {"image": torch.arange(n * 3).reshape(n, 3), "ragged": ragged, "step": torch.tensor(5),
             "skeleton": torch.ones(6, 2), "name": "x", "pair": Pair(torch.arange(n), [10, 11, 12, 13]),
             "stages": [torch.arange(n), torch.arange(n) + 10]}
    parts = [kdist.shard_batch(batch, r, 2) for r in range(2)]
    for r, part in enumerate(parts):
        assert part["image"].tolist() == batch["image"][r::2].tolist()
        assert [t.shape[0] for t in part["ragged"]] == [t.shape[0] for t in ragged[r::2]]
        assert part["step"] is batch["step"] and part["skeleton"] is batch["skeleton"] and part["name"] == "x"
        assert isinstance(part["pair"], Pair) and part["pair"].b == [10, 11, 12, 13][r::2]
        assert [s.tolist() for s in part["stages"]] == [list(range(r, n, 2)), list(range(10 + r, 10 + n, 2))]
    assert _interleave([p["image"].tolist() for p in parts]) == batch["image"].tolist()
    x, y = torch.arange(2), torch.arange(2) + 5  # a top-level tuple is structure even when n == 2
    assert [t.tolist() for t in kdist.shard_batch((x, y), 1, 2)] == [[1], [6]]
    assert kdist.shard_batch(batch) is batch
    with pytest.raises(ValueError, match="torchrun with 2 ranks but only 1 sample in the global batch"):
        kdist.shard_batch({"x": torch.zeros(1, 3)}, 0, 2)
    with pytest.raises(TypeError, match="rank_slice"):
        kdist.shard_batch({"step": 3}, 0, 2)


def test_shard_batches_keeps_one_shot_or_reiterable():
    def gen():
        for i in range(3):
            yield torch.arange(4) + 10 * i

    one_shot = kdist.shard_batches(gen(), 1, 2)
    assert iter(one_shot) is one_shot
    assert [b.tolist() for b in one_shot] == [[1, 3], [11, 13], [21, 23]]
    again = kdist.shard_batches([torch.arange(4)], 0, 2)
    assert len(again) == 1 and [b.tolist() for b in again] == [[0, 2]] == [b.tolist() for b in again]
    ds = torch.utils.data.TensorDataset(torch.arange(8))
    split = torch.utils.data.DataLoader(ds, sampler=torch.utils.data.DistributedSampler(ds, 2, 0))
    with pytest.raises(ValueError, match="already splits"):
        kdist.shard_batches(split)
    with pytest.raises(TypeError, match="batches"):
        kdist.shard_batches(torch.zeros(3))


def _loader_steps(n: int, batch: int, world: int, rank: int, epochs: int = 1, **kw) -> list[list[int]]:
    ds = torch.utils.data.TensorDataset(torch.arange(n))
    loader = kdist.distributed_loader(ds, batch, rank=rank, world_size=world, device="cpu", **kw)
    steps = []
    for e in range(epochs):
        loader.sampler.set_epoch(e)
        steps += [b[0].tolist() for b in loader]
    return steps


def test_distributed_loader_shares_are_the_single_process_batches():
    ref = _loader_steps(12, 4, 1, 0, epochs=2, seed=5)
    shares = [_loader_steps(12, 4, 2, r, epochs=2, seed=5) for r in range(2)]
    assert [len(s) for s in shares] == [6, 6] and all(len(b) == 2 for s in shares for b in s)
    assert [_interleave([shares[0][k], shares[1][k]]) for k in range(6)] == ref
    assert sorted(sum(ref[:3], [])) == list(range(12)) and ref[:3] != ref[3:]  # set_epoch reshuffles
    # drop_last=False: 7 samples over 2 ranks -> 4 each, the first of the order repeated
    pad = [sum(_loader_steps(7, 2, 2, r, seed=1), []) for r in range(2)]
    assert [len(p) for p in pad] == [4, 4] and sorted(set(pad[0] + pad[1])) == list(range(7))
    # drop_last=True: 3 each, the incomplete last batch dropped, every step a full global batch
    cut = [_loader_steps(7, 4, 2, r, seed=1, drop_last=True) for r in range(2)]
    assert [len(c) for c in cut] == [1, 1] and len(set(cut[0][0] + cut[1][0])) == 4
    loader = kdist.distributed_loader(torch.utils.data.TensorDataset(torch.arange(8)), 4, rank=0, world_size=2,
                                      device="cpu")
    assert loader.num_workers == 0 and not loader.pin_memory and loader.batch_size == 2


def test_distributed_loader_errors():
    ds = torch.utils.data.TensorDataset(torch.arange(3))
    with pytest.raises(ValueError, match="torchrun with 4 ranks but only 3 samples in the data set"):
        kdist.distributed_loader(ds, 4, rank=0, world_size=4, device="cpu")
    with pytest.raises(ValueError, match="not a multiple of the 2 ranks"):
        kdist.distributed_loader(ds, 3, rank=0, world_size=2, device="cpu")
    with pytest.raises(ValueError, match="drop_last=True with 3 samples over 2 ranks leaves 1 per rank"):
        kdist.distributed_loader(ds, 4, rank=0, world_size=2, device="cpu", drop_last=True)
    with pytest.raises(TypeError, match="IterableDataset"):
        kdist.distributed_loader(torch.utils.data.IterableDataset(), 2, device="cpu")
    with pytest.raises(TypeError, match="map-style"):
        kdist.distributed_loader(iter([1, 2]), 2, device="cpu")
    with pytest.raises(ValueError, match="num_workers"):
        kdist.distributed_loader(ds, 1, device="cpu", num_workers=-1)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA was requested"):
            kdist.distributed_loader(ds, 1, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_init_distributed_refuses_cuda_without_cuda(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(dist_worker.free_port()))
    with pytest.raises(RuntimeError, match="rank 0 of 1 was asked for device 'cuda'.*--device cpu"):
        kdist.init_distributed("cuda")
    assert not kdist.is_distributed()


def test_fit_sets_the_epoch_through_a_batch_sampler(no_torchrun_env):
    class Recording(torch.utils.data.Sampler):
        def __init__(self):
            self.epochs = []

        def set_epoch(self, e):
            self.epochs.append(e)

        def __iter__(self):
            return iter(range(4))

        def __len__(self):
            return 4

    rec = Recording()
    ds = torch.utils.data.TensorDataset(torch.randn(4, 2), torch.randn(4, 1))
    loader = torch.utils.data.DataLoader(ds, batch_sampler=torch.utils.data.BatchSampler(rec, 2, False))
    model = torch.nn.Linear(2, 1)
    fit(model, loader, lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]), steps=5, device="cpu",
        progress=False, lr=0.01)
    assert rec.epochs == [0, 1, 2]


# --------------------------------------------------------------------------- two ranks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The scenarios of tests/dist_worker.py on two gloo ranks, and in this process."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this build")
    out = tmp_path_factory.mktemp("ranks")
    dist_worker.launch(WORLD, ["sharding", str(out)], timeout_s=90)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    saved = {v: os.environ.pop(v) for v in TORCHRUN_VARS if v in os.environ}
    try:
        ref = dist_worker.run_scenarios()
    finally:
        os.environ.update(saved)
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2} and ref["world"] == 1
    return ref, ranks


def _steps(run: dict, key: str) -> list[list]:
    return [step[key] for step in run["seen"]]


@needs_gloo
@pytest.mark.parametrize("scenario", ["perm", "augmented", "loader"])
def test_each_step_the_ranks_share_out_the_single_process_batch(runs, scenario):
    ref, ranks = runs
    want = _steps(ref[scenario], "index")
    got = [_steps(r[scenario], "index") for r in ranks]
    assert len(want) == len(got[0]) == len(got[1]) == dist_worker.STEPS
    for k in range(dist_worker.STEPS):
        assert len(got[0][k]) == len(got[1][k]) == len(want[k]) // WORLD
        assert _interleave([got[0][k], got[1][k]]) == want[k], f"step {k + 1}"
    if scenario != "augmented":  # drawn without replacement: disjoint, and each epoch is the whole data set
        per_epoch = dist_worker.N // 8
        for e in range(dist_worker.STEPS // per_epoch):
            seen = [i for r in got for step in r[e * per_epoch:(e + 1) * per_epoch] for i in step]
            assert sorted(seen) == list(range(dist_worker.N)), f"epoch {e}"
            assert not set(got[0][e * per_epoch]) & set(got[1][e * per_epoch])
        assert want[:per_epoch] != want[per_epoch:2 * per_epoch]  # a new order every epoch


@needs_gloo
def test_shard_batches_reproduces_the_single_process_stream_exactly(runs):
    ref, ranks = runs
    for key in ("x", "ragged"):
        want = _steps(ref["augmented"], key)
        got = [_steps(r["augmented"], key) for r in ranks]
        assert [_interleave([got[0][k], got[1][k]]) for k in range(len(want))] == want, key
    assert _steps(ranks[1]["augmented"], "step") == list(range(dist_worker.STEPS))  # 0-d: kept whole


@needs_gloo
@pytest.mark.parametrize("scenario", ["perm", "augmented", "loader"])
def test_two_ranks_train_the_single_process_weights(runs, scenario):
    ref, ranks = runs
    for a, b in zip(ranks[0][scenario]["params"], ranks[1][scenario]["params"]):
        assert torch.equal(a, b)  # DDP keeps the ranks identical
    for p_ref, p in zip(ref[scenario]["params"], ranks[0][scenario]["params"]):
        assert (p - p_ref).abs().max().item() <= WEIGHT_TOL
    assert ranks[0][scenario]["loss"] == ranks[1][scenario]["loss"]
    assert ranks[0][scenario]["loss"] == pytest.approx(ref[scenario]["loss"], rel=1e-5, abs=1e-6)
    assert ranks[0][scenario]["sharding_warnings"] == [] == ranks[1][scenario]["sharding_warnings"]
    assert ranks[0][scenario]["sps_positive"]


@needs_gloo
def test_logged_loss_is_the_mean_over_all_samples_of_uneven_shares(runs):
    ref, ranks = runs
    assert [len(r["uneven"]["seen"][0]["index"]) for r in ranks] == [3, 2]
    assert ranks[0]["uneven"]["loss"] == pytest.approx(ref["uneven"]["loss"], rel=1e-6)


@needs_gloo
def test_unsplit_data_is_reported(runs):
    ref, ranks = runs
    assert _steps(ranks[0]["unsharded"], "index") == _steps(ranks[1]["unsharded"], "index")
    (msg,) = ranks[0]["unsharded"]["sharding_warnings"]
    assert "all 2 ranks received the same first batch" in msg and "shard_batches" in msg
    assert ranks[1]["unsharded"]["sharding_warnings"] == [] == ref["unsharded"]["sharding_warnings"]


@needs_gloo
def test_more_ranks_than_samples_is_a_clear_error(runs):
    ref, ranks = runs
    errors = ranks[0]["errors"]
    assert errors["loader"].startswith("torchrun with 2 ranks but only 1 sample in the data set")
    assert errors["rank_slice"].startswith("torchrun with 2 ranks but only 1 sample in the global batch")
    assert errors["shard_batch"].startswith("torchrun with 2 ranks but only 1 sample in the global batch")
    assert "--nproc_per_node" in errors["loader"]
    assert ref["errors"] == {"loader": None, "rank_slice": None, "shard_batch": None}  # one process: fine
