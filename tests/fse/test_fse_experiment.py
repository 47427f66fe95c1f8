"""The FSE chapter's experiment (kpedu.fse.experiment): training pairs, the objective,
a short training run, the evaluation protocol."""
import pytest
import torch

from kpedu.fse import experiment as E


@pytest.fixture(scope="module")
def faces():
    return E.make_faces_split(48, seed=7, image_size=32)


def test_pairs_are_related_by_g2(faces):
    """x2 = g2 o x1: a smooth test image read at g2(p) in x2 equals x1 at p."""
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    # a smooth image in [0, 1] (images follow kpedu.checks.image)
    img = ((torch.sin(xs / 4) + torch.cos(ys / 5) + 2) / 4)[None, None].repeat(4, 3, 1, 1)
    pair = E.make_pairs(img, torch.Generator().manual_seed(0))
    assert pair["x1"].shape == pair["x2"].shape == img.shape
    p = torch.rand(4, 20, 2, generator=torch.Generator().manual_seed(1)) * 16 + 8
    q = pair["g2"].points(p)
    from kpedu.fse import pixel_to_normalized

    def read(im, pts):
        g = pixel_to_normalized(pts, 32)[:, :, None]
        return torch.nn.functional.grid_sample(im, g, align_corners=False)[:, 0, :, 0]

    assert (read(pair["x2"], q) - read(pair["x1"], p)).abs().max() < 0.05 / 4  # the field's range is 4 times smaller


def test_objective_and_its_parts(faces):
    model = E.make_model(width=4)
    x = faces.float_images(slice(0, 4))
    pair = E.make_pairs(x, torch.Generator().manual_seed(0))
    loss, logs = E.fse_loss(model, pair["x1"], pair["x2"], pair["g2"])
    assert set(logs) == {"align", "diversity"}
    assert loss.item() == pytest.approx(logs["align"] / E.RECIPE["alignment_scale"]
                                        + E.RECIPE["diversity_weight"] * logs["diversity"], rel=1e-5)
    loss_a, logs_a = E.fse_loss(model, pair["x1"], pair["x2"], pair["g2"], diversity="none")
    assert set(logs_a) == {"align"} and loss_a.item() == pytest.approx(logs["align"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_short_training_lowers_the_loss(faces):
    torch.manual_seed(0)
    model = E.make_model(width=4)
    h = E.train_fse(model, faces, steps=30, batch_size=8, lr=3e-3, device="cpu", progress=False, log_every=5)
    assert h.loss[-1] < h.loss[0]
    assert "align" in h.logs and "diversity" in h.logs


def test_detect_and_evaluate(faces):
    torch.manual_seed(0)
    model = E.make_model(width=4)
    pts = E.detect_landmarks(model, faces.images)
    assert pts.shape == (48, E.RECIPE["num_landmarks"], 2)
    fit, test = faces.subset(slice(0, 24)), faces.subset(slice(24, 48))
    r = E.evaluate(model, fit, test)
    assert r["predictions"].shape == (24, 5, 2) and r["nme"] > 0
    assert E.equivariance_error(model, faces, n=8) >= 0
    assert E.landmark_spread(pts) > 0
    collapsed = torch.zeros(3, 4, 2)
    assert E.landmark_spread(collapsed) == 0.0
    with pytest.raises(ValueError):
        E.landmark_spread(torch.zeros(3, 1, 2))


def test_run_recipe_ci_profile():
    torch.manual_seed(0)
    model = E.make_model(width=4)
    m = E.run_recipe(model, "ci", "cpu", progress=False)
    for key in ("nme", "train_nme", "per_point", "equivariance_px", "spread_px", "curve", "steps", "train_seconds"):
        assert key in m
    assert m["steps"] == E.RECIPE["steps"]["ci"] and len(m["per_point"]) == 5


def test_make_pairs_errors():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        E.make_pairs(torch.rand(3, 32, 32))


def test_pool_probs_keeps_distributions_and_merges_neighbours():
    p = torch.zeros(1, 2, 8, 8)
    p[0, 0, 0, 0] = 1.0
    p[0, 1, 1, 1] = 1.0  # one pixel apart: disjoint at full resolution
    from kpedu.fse import diversity_loss

    assert diversity_loss(p, "max").item() == 0.0
    pooled = E.pool_probs(p, 4)
    assert pooled.shape == (1, 2, 2, 2)
    assert torch.allclose(pooled.sum((-1, -2)), torch.ones(1, 2))
    assert diversity_loss(pooled, "max").item() == 1.0  # the same 4x4 block: fully overlapping
    assert E.pool_probs(p, 1) is p
    odd = E.pool_probs(p, 3)  # 8 is not a multiple of 3: blocks of 3, 3 and 2 cells
    assert odd.shape == (1, 2, 3, 3) and torch.allclose(odd.sum((-1, -2)), torch.ones(1, 2))


def test_test_time_averaging(faces):
    torch.manual_seed(0)
    model = E.make_model(width=4)
    plain = E.detect_landmarks(model, faces.images[:6])
    assert torch.equal(E.detect_landmarks(model, faces.images[:6], tta=0), plain)
    a = E.detect_landmarks(model, faces.images[:6], tta=3, seed=5)
    b = E.detect_landmarks(model, faces.images[:6], tta=3, seed=5)
    assert a.shape == plain.shape and torch.equal(a, b)
    assert not torch.equal(a, plain)
    with pytest.raises(ValueError, match="tta"):
        E.detect_landmarks(model, faces.images[:2], tta=-1)
