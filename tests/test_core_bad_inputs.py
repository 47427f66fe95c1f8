"""Bad inputs to kpedu's core modules (train, bench, distributed, runtime; issue 20), through the shared harness."""
from __future__ import annotations

import torch
from torch import nn

from badinput import Case, assert_ok, parametrize
from kpedu import bench, distributed, runtime, train


def _fit(**kw):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = [(torch.ones(4, 2), torch.zeros(4, 1))]
    kw.setdefault("steps", 2)
    train.fit(model, data, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), device="cpu", progress=False, **kw)
    return [p.detach().clone() for p in model.parameters()]


def _one_cycle(**kw):
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    return train.one_cycle(opt, **kw).get_last_lr()


CASES = [
    Case(train.fit, lambda: dict(steps=2, lr=1e-2, weight_decay=0.0, grad_clip=1.0, micro_batches=1, log_every=1),
         {"steps": "count", "lr": "positive", "weight_decay": "nonnegative", "grad_clip": "positive",
          "micro_batches": "count", "log_every": "count"},
         call=_fit),
    Case(train.one_cycle, lambda: dict(max_lr=0.1, steps=10, pct_start=0.3),
         {"max_lr": "positive", "steps": "count", "pct_start": "probability"},
         extra={"pct_start": [("zero", 0.0, "error"), ("one", 1.0, "error")]}, call=_one_cycle),
]

CASES += [
    Case(bench.time_call, lambda: dict(fn=lambda: None, repeats=2, warmup=1), {"repeats": "count", "warmup": "index"}),
    Case(bench.throughput, lambda: dict(model=nn.Linear(3, 2), input_shape=(3,), batch_size=2, steps=1, warmup=0),
         {"batch_size": "count", "steps": "count", "warmup": "index"},
         call=lambda **kw: {k: v for k, v in bench.throughput(**kw).items() if k in ("batch_size", "steps")}),
    Case(distributed.shard_indices, lambda: dict(n=10, rank=1, world_size=3),
         {"n": "index", "rank": "index", "world_size": "count"},
         extra={"rank": [("rank >= world_size", 3, "error")]}),
    Case(runtime.seed_everything, lambda: dict(seed=3), {"seed": "index"}),
]


@parametrize(CASES)
def test_bad_input(case, arg, label, value, expect):
    assert_ok(case, arg, label, value, expect)
