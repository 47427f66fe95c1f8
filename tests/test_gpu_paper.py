"""The paper-scale recipes at the papers' sizes on a GPU: 200 training steps of each, with
the paper's network, input size and batch, on the fixture data sets (kpedu.datasets.fixtures,
real on-disk layouts, crops resampled to the papers' input sizes), then the paper's metric.

Marked ``gpu`` and skipped without CUDA (``python -m pytest -m gpu tests/test_gpu_paper.py -s``).
Prints images/s (training batch x steps over the wall time of the whole run, evaluation
included, so a lower bound) and the peak GPU memory (``torch.cuda.max_memory_allocated``).
"""
from __future__ import annotations

import math
import time

import pytest
import torch

from kpedu.datasets import fixtures

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

STEPS = 200


def _run(name, fn, batch):
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model, metrics = fn()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    print(f"\n{name}: {STEPS} steps x batch {batch} in {seconds:.1f} s = {STEPS * batch / seconds:.1f} images/s "
          f"(evaluation included), peak GPU memory {peak:.2f} GiB, metrics "
          f"{ {k: v for k, v in metrics.items() if isinstance(v, (int, float))} }")
    assert math.isfinite(metrics["loss"])
    return metrics


def test_hourglass_mpii_paper_size(tmp_path):
    from kpedu.hourglass import experiment as hx

    fixtures.write_mpii(tmp_path)
    (tmp_path / "valid.txt").write_text("000000002.jpg\n")
    m = _run("hourglass-mpii", lambda: hx.run_paper(tmp_path, tmp_path / "valid.txt", steps=STEPS, device="cuda",
                                                    progress=False), hx.PAPER["batch_size"])
    assert 0.0 <= m["pckh@0.5"] <= 1.0


def test_openpose_coco_paper_size(tmp_path):
    from kpedu.openpose import experiment as ox

    fixtures.write_coco(tmp_path, "train2017")
    fixtures.write_coco(tmp_path, "val2017")
    m = _run("openpose-coco", lambda: ox.run_paper(tmp_path, steps=STEPS, device="cuda", progress=False),
             ox.PAPER["batch_size"])
    assert "AP" in m


@pytest.mark.parametrize("k", [30, 50])
def test_fse_celeba_paper_size(tmp_path, k):
    from kpedu.fse import experiment as fx

    fixtures.write_celeba(tmp_path, n=2 * k + 10, mafl_train=2 * k + 4, mafl_test=6)
    m = _run(f"fse-celeba-k{k}", lambda: fx.run_paper(tmp_path, k, steps=STEPS, device="cuda", progress=False),
             fx.RECIPE["batch_size"])
    assert math.isfinite(m["nme"])


def test_d2net_images_paper_size(tmp_path):
    from kpedu.d2net import experiment as dx

    fixtures.write_image_folder(tmp_path / "photos", n=8, size=(320, 400))
    fixtures.write_hpatches(tmp_path / "hp")
    m = _run("d2net-images", lambda: dx.run_paper(tmp_path / "photos", tmp_path / "hp", steps=STEPS, device="cuda",
                                                  progress=False), dx.PAPER["batch"])
    assert len(m["mma"]["overall"]) == 10
