"""Launch several CPU ranks (gloo) like ``torchrun`` does, and what each rank runs.

Used by ``tests/test_distributed_sharding.py`` and runnable by hand for the throughput
measurement of data-parallel training (one process against two)::

    OMP_NUM_THREADS=1 python tests/dist_worker.py bench --procs 1 2 --steps 24

``bench`` trains the Stacked Hourglass chapter's book configuration (2 stacks x 96
channels, 128x128 crops, global batch 16, Adam with a one-cycle schedule, the paper's
augmentation) through :func:`kpedu.train.fit` with :func:`kpedu.distributed.shard_batches`
and prints samples per second for each number of processes (one thread per process).

Each rank is a ``python tests/dist_worker.py MODE OUT_DIR`` process with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``
set (a free port), and writes ``OUT_DIR/rankR.pt``. :func:`launch` kills every rank
when one fails or the time limit passes, and retries once on a port clash.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kpedu import distributed as kdist  # noqa: E402
from kpedu.files import atomic_open  # noqa: E402

# --------------------------------------------------------------------------- launching


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(world: int, args: list[str], timeout_s: float = 60.0, threads: int = 1) -> list[str]:
    """Run ``python tests/dist_worker.py *args`` as ``world`` ranks; returns their outputs.

    Raises ``RuntimeError`` with every rank's output when a rank fails, and
    ``TimeoutError`` when they are not done within ``timeout_s`` (all ranks are killed)."""
    import tempfile

    for attempt in range(2):
        port = free_port()
        with tempfile.TemporaryDirectory() as logs:
            files = [open(Path(logs) / f"rank{r}.log", "w+", encoding="utf-8") for r in range(world)]
            procs = []
            try:
                for rank in range(world):
                    env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                           "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                           "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE", "KPEDU_PROGRESS": "0",
                           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
                    env.pop("KPEDU_DEVICE", None)
                    procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], env=env,
                                                  cwd=str(ROOT), stdout=files[rank], stderr=subprocess.STDOUT))
                deadline = time.monotonic() + timeout_s
                failure: Exception | None = None
                while failure is None and any(p.poll() is None for p in procs):
                    bad = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
                    if bad:  # one rank failed: the others would wait for it until their timeout
                        failure = RuntimeError(f"rank {bad[0]} exited with {procs[bad[0]].returncode}")
                    elif time.monotonic() > deadline:
                        failure = TimeoutError(f"{world} ranks of {args} still running after {timeout_s:.0f} s")
                    else:
                        time.sleep(0.05)
                bad = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
                if failure is None and bad:
                    failure = RuntimeError(f"rank {bad[0]} exited with {procs[bad[0]].returncode}")
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                    p.wait()
                outputs = []
                for f in files:
                    f.seek(0)
                    outputs.append(f.read())
                    f.close()
            if failure is None:
                return outputs
            text = "\n".join(f"--- rank {r} ---\n{o}" for r, o in enumerate(outputs))
            if attempt == 0 and "address already in use" in text.lower():
                continue  # another process took the port between free_port() and the bind
            raise type(failure)(f"{failure}\n{text}")
    raise AssertionError("unreachable")


def _save(obj, path: Path) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


# --------------------------------------------------------------------------- scenarios
# Each scenario runs unchanged in one process (the reference) and in every rank.

N, STEPS = 32, 8
SEED = 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 4, generator=g)
    return x, torch.sin(x.sum(1, keepdim=True))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def _train(batches, steps: int = STEPS, log_every: int = 2, lr: float = 0.1) -> dict:
    """SGD with momentum through fit on ``batches``; records what this rank trained on."""
    from kpedu.train import fit

    model = _model()
    seen: list[dict] = []

    def loss_fn(m, b):
        seen.append({k: (v.tolist() if isinstance(v, torch.Tensor) else [t.tolist() for t in v]) for k, v in b.items()})
        return nn.functional.mse_loss(m(b["x"]), b["y"])

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = fit(model, batches, loss_fn, steps=steps, optimizer=opt, device="cpu", progress=False,
                   log_every=log_every)
    return {"seen": seen, "params": [p.detach().clone() for p in model.parameters()], "loss": hist.loss,
            "sharding_warnings": [str(w.message) for w in caught if issubclass(w.category, kdist.ShardingWarning)],
            "samples_per_second": hist.samples_per_second, "sps_positive": (hist.samples_per_second or 0) > 0}


def perm_stream(batch: int = 8):
    """Epochs of a random permutation, cut into global batches; the indices are sliced
    for this rank (:func:`kdist.rank_slice`) before the samples are gathered."""
    x, y = _data()
    g = torch.Generator().manual_seed(SEED)
    while True:
        perm = torch.randperm(N, generator=g)
        for i in range(0, N - batch + 1, batch):
            idx = kdist.rank_slice(perm[i:i + batch])
            yield {"index": idx, "x": x[idx], "y": y[idx]}


def augmented_stream(batch: int = 8):
    """A chapter-like stream: indices drawn with replacement, per-sample noise and a
    ragged per-sample list from the same generator, a 0-d step tensor (not split here)."""
    x, y = _data()
    g = torch.Generator().manual_seed(SEED)
    t = 0
    while True:
        idx = torch.randint(N, (batch,), generator=g)
        noise = 0.1 * torch.randn(batch, 4, generator=g)
        ragged = [torch.rand(int(k), 2, generator=g) for k in torch.randint(1, 4, (batch,), generator=g)]
        yield {"index": idx, "x": x[idx] + noise, "y": y[idx], "ragged": ragged, "step": torch.tensor(t)}
        t += 1


def map_loader(batch: int = 8):
    x, y = _data()

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return N

        def __getitem__(self, i):
            return {"index": torch.tensor(i), "x": x[i], "y": y[i]}

    return kdist.distributed_loader(Pairs(), batch, shuffle=True, seed=SEED, device="cpu")


def uneven_stream(batch: int = 5):
    """Global batches of 5: shares of 3 and 2 samples on two ranks."""
    x, y = _data()
    g = torch.Generator().manual_seed(SEED)
    while True:
        idx = kdist.rank_slice(torch.randint(N, (batch,), generator=g))
        yield {"index": idx, "x": x[idx], "y": y[idx]}


def unsharded_stream(batch: int = 8):
    """The bug this module fixes: every rank draws the same batch and keeps all of it."""
    x, y = _data()
    g = torch.Generator().manual_seed(SEED)
    while True:
        idx = torch.randint(N, (batch,), generator=g)
        yield {"index": idx, "x": x[idx], "y": y[idx]}


def _error(fn) -> str | None:
    try:
        fn()
    except ValueError as exc:
        return str(exc)
    return None


def run_scenarios() -> dict:
    """Everything the sharding tests compare between one process and two ranks."""
    out = {
        "rank": kdist.get_rank(),
        "world": kdist.get_world_size(),
        "perm": _train(perm_stream()),
        "augmented": _train(kdist.shard_batches(augmented_stream())),
        "loader": _train(map_loader(), steps=STEPS),
        "uneven": _train(uneven_stream(), steps=1, log_every=1),
    }
    out["unsharded"] = _train(unsharded_stream(), steps=1, log_every=1)
    tiny = torch.utils.data.TensorDataset(torch.zeros(1, 4))
    out["errors"] = {
        "loader": _error(lambda: kdist.distributed_loader(tiny, 2, device="cpu")),
        "rank_slice": _error(lambda: kdist.rank_slice(torch.arange(1))),
        "shard_batch": _error(lambda: kdist.shard_batch({"x": torch.zeros(1, 3)})),
    }
    return out


# --------------------------------------------------------------------------- benchmark


def bench_rank(steps: int, people: int, out: Path) -> None:
    """One rank of the hourglass throughput measurement."""
    from kpedu.foundations import make_people
    from kpedu.hourglass import experiment as E
    from kpedu.train import fit, one_cycle

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    size, batch = E.RECIPE["image_size"], E.RECIPE["batch_size"]
    train = make_people(people, E.RECIPE["train_seed"], size)
    torch.manual_seed(0)
    model = E.make_model()
    codec = E.make_codec(size)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=E.RECIPE["lr"])
    stamps: list[tuple[int, float]] = []
    kdist.barrier()
    hist = fit(model, kdist.shard_batches(E.augmented_batches(train, batch, gen, True)),
               lambda m, b: E.hourglass_loss(m(b["image"]), b["keypoints"], b["visible"], codec),
               steps=steps, optimizer=opt, scheduler=one_cycle(opt, E.RECIPE["lr"], steps), device="cpu",
               progress=False, log_every=1, callback=lambda s, h, m: stamps.append((s, time.perf_counter())))
    warm = min(2, steps - 1)  # the first steps pay for allocation and thread start-up
    (s0, t0), (s1, t1) = stamps[warm - 1], stamps[-1]
    result = {"world": kdist.get_world_size(), "steps": steps, "global_batch": batch,
              "samples_per_second": batch * (s1 - s0) / (t1 - t0), "fit_samples_per_second": hist.samples_per_second,
              "seconds_per_step": (t1 - t0) / (s1 - s0), "final_loss": hist.final_loss}
    if kdist.is_main_process():
        with atomic_open(out / "bench.json", "w", encoding="utf-8") as fh:
            json.dump(result, fh)


def bench(procs: list[int], steps: int, people: int, timeout_s: float) -> list[dict]:
    """Measure hourglass training throughput for each number of processes in ``procs``."""
    import tempfile

    rows = []
    for world in procs:
        with tempfile.TemporaryDirectory() as tmp:
            launch(world, ["bench-rank", tmp, str(steps), str(people)], timeout_s=timeout_s)
            rows.append(json.loads((Path(tmp) / "bench.json").read_text(encoding="utf-8")))
        r = rows[-1]
        print(f"{world} process(es): {r['samples_per_second']:.2f} samples/s steady "
              f"({r['seconds_per_step']:.3f} s per global batch of {r['global_batch']}; "
              f"fit's whole-run figure {r['fit_samples_per_second']:.2f}), final loss {r['final_loss']:.4f}",
              flush=True)
    if len(rows) > 1:
        base = min(rows, key=lambda r: r["world"])
        print(f"speed-up over {base['world']} process(es): " + ", ".join(
            f"{r['world']} processes {r['samples_per_second'] / base['samples_per_second']:.2f}x"
            for r in rows if r is not base))
    return rows


# --------------------------------------------------------------------------- entry point


def _rank_main(mode: str, out: Path, extra: list[str]) -> None:
    torch.set_num_threads(1)
    kdist.init_distributed("cpu", timeout_s=120)
    try:
        if mode == "sharding":
            _save(run_scenarios(), out / f"rank{kdist.get_rank()}.pt")
        elif mode == "bench-rank":
            bench_rank(int(extra[0]), int(extra[1]), out)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        kdist.barrier()
    finally:
        kdist.cleanup()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("sharding", "bench-rank"):
        _rank_main(argv[0], Path(argv[1]), argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="hourglass training throughput for 1, 2, ... processes")
    b.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    b.add_argument("--steps", type=int, default=24)
    b.add_argument("--people", type=int, default=256, help="training crops generated per rank")
    b.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args(argv)
    bench(args.procs, args.steps, args.people, args.timeout)


if __name__ == "__main__":
    main()
