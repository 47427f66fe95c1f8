"""The CUDA path of every chapter: its recipe (training steps with mixed precision, then
evaluation with the chapter's metric) and its paper-size network, on a GPU.

Marked ``gpu`` and skipped without CUDA. On a machine with one: ``python -m pytest -m gpu``.
Each recipe runs in the ``ci`` profile (a few steps), so the test checks that the code
path works on the device, not the numbers the chapters reach.
"""
from __future__ import annotations

import math

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _finite_numbers(metrics: dict) -> list[float]:
    out = []
    for v in metrics.values():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
    return out


@pytest.mark.parametrize("chapter", ["hourglass", "openpose", "fse", "d2net"])
def test_chapter_recipe_trains_and_evaluates_on_cuda(chapter):
    import importlib

    E = importlib.import_module(f"kpedu.{chapter}.experiment")
    model = E.make_model()
    metrics = E.run_recipe(model, profile="ci", device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == torch.float32      # autocast, never a cast of the weights
    numbers = _finite_numbers(metrics)
    assert numbers and all(math.isfinite(x) for x in numbers if not math.isnan(x)), metrics


@pytest.mark.parametrize("name", ["hourglass", "openpose", "fse", "d2net"])
def test_paper_size_network_takes_a_mixed_precision_step_on_cuda(name):
    """One optimiser step of the paper's configuration under autocast, channels-last,
    then inference; the loss is finite and the weights move."""
    from kpedu import runtime

    dev = torch.device("cuda")
    if name == "hourglass":
        from kpedu.hourglass import StackedHourglass
        model, x = StackedHourglass(num_stacks=8), torch.rand(2, 3, 256, 256)
    elif name == "openpose":
        from kpedu.openpose import openpose_paper
        model, x = openpose_paper(), torch.rand(2, 3, 368, 368)
    elif name == "fse":
        from kpedu.fse.experiment import make_model
        model, x = make_model(num_landmarks=50), torch.rand(2, 3, 128, 128)
    else:
        from kpedu.d2net import D2Net
        model, x = D2Net(), torch.rand(2, 3, 256, 256)
    model = model.to(dev).to(memory_format=torch.channels_last)
    x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
    dtype = runtime.amp_dtype(dev)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.autocast("cuda", dtype=dtype):
        out = model(x)
        tensors = [t for t in (out if isinstance(out, (list, tuple)) else [out])
                   for t in (t if isinstance(t, (list, tuple)) else [t]) if isinstance(t, torch.Tensor)]
        loss = sum(t.float().square().mean() for t in tensors)
    assert torch.isfinite(loss)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        model(x[:1])
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() > 0
