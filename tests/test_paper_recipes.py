"""Paper-scale recipes (kpedu.hub ``train NAME --data PATH``): 20-step CPU smoke tests on
the fixture data sets of :mod:`kpedu.datasets.fixtures`, through the same code as the
paper-size runs (only the input size and the network width shrink), and the CLI's
answers to bad input."""
from __future__ import annotations

import json

import pytest
import torch

from kpedu import hub
from kpedu.datasets import fixtures

STEPS = 20


def _finite(metrics: dict, key: str) -> None:
    assert torch.isfinite(torch.tensor(float(metrics[key])))


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("KPEDU_PROGRESS", "0")


def test_hourglass_mpii_smoke(tmp_path):
    from kpedu.hourglass import experiment as hx

    root = tmp_path / "mpii"
    fixtures.write_mpii(root)
    split = tmp_path / "valid.txt"
    split.write_text("000000002.jpg\n")
    model, m = hx.run_paper(root, split, steps=STEPS, size=32, device="cpu", progress=False,
                            model_overrides={"num_stacks": 2, "channels": 8, "stem_channels": (4, 8), "depth": 2},
                            batch_size=2)
    assert m["steps"] == STEPS and m["val_people"] == 1 and m["train_people"] >= 2
    assert 0.0 <= m["pckh@0.5"] <= 1.0 and len(m["per_joint"]) == 16
    _finite(m, "loss")
    assert model.num_stacks == 2
    assert hx.PAPER["model"]["num_stacks"] == 8 and hx.PAPER["model"]["channels"] == 256
    assert hx.PAPER["lr"] == 2.5e-4 and hx.PAPER["image_size"] == 256


def test_openpose_coco_smoke(tmp_path):
    from kpedu.openpose import experiment as ox

    root = tmp_path / "coco"
    fixtures.write_coco(root, "train2017")
    fixtures.write_coco(root, "val2017")
    small = {"backbone": "small", "backbone_width": 4, "stage_channels": 8, "stage_hidden": 8,
             "feature_channels": 8, "paf_stages": 1, "stage_blocks": 1}
    model, m = ox.run_paper(root, steps=STEPS, size=64, device="cpu", progress=False, model_overrides=small,
                            batch_size=2)
    assert m["steps"] == STEPS and m["backbone"] == "scratch"
    assert "AP" in m and -1.0 <= m["AP"] <= 1.0
    _finite(m, "loss")


def test_openpose_weights_keys_checked(tmp_path):
    from kpedu.openpose import experiment as ox
    from kpedu.openpose.model import openpose_paper

    model = openpose_paper(17, 19)
    good = tmp_path / "vgg.pt"
    torch.save({"backbone." + k: v.clone() + 1 for k, v in model.backbone.state_dict().items()}, good)
    ox.load_backbone_weights(model, good)
    k0 = next(iter(model.backbone.state_dict()))
    assert torch.equal(model.backbone.state_dict()[k0], torch.load(good, weights_only=True)["backbone." + k0])
    bad = tmp_path / "bad.pt"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(hub.RecipeInputError, match="keys do not match"):
        ox.load_backbone_weights(model, bad)


def test_fse_celeba_through_cli(tmp_path, capsys):
    root = tmp_path / "celeba"
    fixtures.write_celeba(root, n=68, mafl_train=62, mafl_test=4)  # 2K = 60 faces fit the regression
    out = tmp_path / "out"
    rc = hub.main(["train", "fse-celeba-k30", "--data", str(root), "--steps", str(STEPS), "--size", "32",
                   "--width", "4", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    rec = json.loads((out / "fse-celeba-k30.json").read_text())
    assert (out / "fse-celeba-k30.pt").is_file() and not list(out.glob("*.tmp*"))
    assert rec["sha256"] == hub.sha256(out / "fse-celeba-k30.pt")
    assert rec["metrics"]["num_landmarks"] == 30 and rec["metrics"]["steps"] == STEPS
    _finite(rec["metrics"], "nme")
    _finite(rec["metrics"], "loss")
    assert "--data" in rec["command"] and "fse-celeba-k30" not in hub.read_registry()
    from kpedu.checkpointing import load_checkpoint  # the file is a normal kpedu checkpoint
    from kpedu.fse.experiment import make_model

    load_checkpoint(out / "fse-celeba-k30.pt", make_model(num_landmarks=30, width=4))


def test_d2net_images_smoke(tmp_path):
    from kpedu.d2net import experiment as dx

    photos = tmp_path / "photos"
    fixtures.write_image_folder(photos, n=4)
    fixtures.write_hpatches(tmp_path / "hp")
    model, m = dx.run_paper(photos, tmp_path / "hp", steps=STEPS, size=32, device="cpu", progress=False,
                            width=1 / 16, batch=2, eval_max_size=64)
    assert m["steps"] == STEPS and set(m["mma"]) == {"viewpoint", "illumination", "overall"}
    assert len(m["mma"]["overall"]) == 10 and all(0.0 <= v <= 1.0 for v in m["mma"]["overall"])
    _finite(m, "loss")
    assert dx.PAPER["width"] == 1.0


# ----------------------------------------------------------------------------- bad input


def _err(capsys, argv):
    rc = hub.main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_missing_data(capsys):
    err = _err(capsys, ["train", "hourglass-mpii"])
    assert "needs --data" in err and "mpii_human_pose_v1_u12_1.mat" in err


def test_nonexistent_data(tmp_path, capsys):
    err = _err(capsys, ["train", "d2net-images", "--data", str(tmp_path / "nowhere")])
    assert "does not exist" in err and "folder of photographs" in err


def test_wrong_layout(tmp_path, capsys):
    fixtures.write_image_folder(tmp_path / "photos", n=2)  # photographs, not MPII
    err = _err(capsys, ["train", "hourglass-mpii", "--data", str(tmp_path / "photos"), "--out", str(tmp_path)])
    assert "mpii" in err.lower()
    err = _err(capsys, ["train", "fse-celeba-k50", "--data", str(tmp_path / "photos"), "--out", str(tmp_path)])
    assert "celeba" in err.lower() or "landmarks" in err.lower()


def test_cuda_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _err(capsys, ["train", "d2net-images", "--data", str(tmp_path), "--device", "cuda"])
    assert "CUDA is not available" in err


def test_bad_numbers_and_book_recipe_flags(tmp_path, capsys):
    err = _err(capsys, ["train", "d2net-images", "--data", str(tmp_path), "--steps", "0"])
    assert "--steps" in err
    err = _err(capsys, ["train", "hourglass-book", "--data", str(tmp_path)])
    assert "takes no --data" in err


def test_fit_channels_last_matches_on_cpu():
    from kpedu.train import fit

    def run(cl):
        torch.manual_seed(0)
        # (no bias before the batch norm: its gradient is ~0, which Adam would blow up into noise)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                                  torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 2, 3, padding=1))
        g = torch.Generator().manual_seed(1)
        data = [{"x": torch.rand(4, 3, 12, 12, generator=g), "y": torch.rand(4, 2, 12, 12, generator=g)}
                for _ in range(3)]
        seen = []

        def loss(m, b):
            seen.append(b["x"].is_contiguous(memory_format=torch.channels_last))
            return ((m(b["x"]) - b["y"]) ** 2).mean()

        h = fit(net, data, loss, steps=6, lr=1e-2, device="cpu", channels_last=cl, progress=False, log_every=1)
        return h.loss, [p.detach().clone() for p in net.parameters()], seen

    a, pa, sa = run(False)
    b, pb, sb = run(True)
    assert not any(sa) and all(sb)
    assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    for x, y in zip(pa, pb):
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="channels_last"):
        fit(torch.nn.Linear(2, 2), [torch.zeros(1, 2)], lambda m, b: m(b).sum(), steps=1, channels_last="yes")


def test_transporter_video_smoke(tmp_path):
    from kpedu.transporter import experiment as tx

    root = tmp_path / "videos"
    fixtures.write_video_folder(root, clips=4, frames=8, size=32)
    model, m = tx.run_paper(root, steps=STEPS, size=32, device="cpu", progress=False, width=0.25)
    assert m["steps"] == STEPS and m["train_clips"] == 3 and m["val_clips"] == 1 and m["skipped_images"] == 0
    for key in ("loss", "mse", "copy_mse"):
        _finite(m, key)
    assert model.num_keypoints == tx.PAPER["num_keypoints"] == 5
    assert tx.PAPER["image_size"] == 128 and tx.PAPER["gauss_std"] == 0.1 and tx.PAPER["width"] == 1.0
    with pytest.raises(hub.RecipeInputError, match="no --weights"):
        hub.get_recipe("transporter-video").fn("full", "cpu", data=root, weights="x.pt")
