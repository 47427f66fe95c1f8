"""Tests for kpedu.hourglass.experiment: recipe, batches, loss, training, inference, evaluation.

Everything runs on tiny data (64x64 synthetic people) and tiny models (16 channels, two
poolings per hourglass), on the CPU: the recipe's real profiles are far too slow here.
"""
import pytest
import torch

from kpedu import hub
from kpedu.augment import augment_batch, random_affine, transform_points
from kpedu.foundations import PeopleTensors, make_people
from kpedu.hourglass import StackedHourglass, stacked_heatmap_loss
from kpedu.hourglass.experiment import (
    ABLATIONS,
    RECIPE,
    augmented_batches,
    evaluate,
    flip_permutation,
    hourglass_loss,
    make_codec,
    make_model,
    per_stack_pck,
    predict,
    run_ablation,
    run_recipe,
    train_hourglass,
)

TINY = {"channels": 16, "stem_channels": (8, 16), "depth": 2}  # works on 64x64 images


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return make_model(**{**TINY, **overrides})


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def people():
    return make_people(32, 0, image_size=64)


@pytest.fixture(scope="module")
def val():
    return make_people(12, 1, image_size=64)


# ---- model and codec


def test_make_model_defaults_and_overrides():
    m = make_model()
    cfg = RECIPE["model"]
    assert (m.num_stacks, m.channels, m.num_keypoints, m.depth) == (
        cfg["num_stacks"], cfg["channels"], cfg["num_keypoints"], cfg["depth"])
    assert m.stem_channels == tuple(cfg["stem_channels"]) and m.num_modules == 1
    assert n_params(m) == n_params(StackedHourglass(**cfg))
    t = make_model(num_stacks=1, num_modules=2, **TINY)
    assert (t.num_stacks, t.channels, t.depth, t.num_modules, t.stem_channels) == (1, 16, 2, 2, (8, 16))
    assert t.num_keypoints == cfg["num_keypoints"]  # not overridden: kept from the recipe
    with pytest.raises(TypeError):
        make_model(widht=3)


def test_ablation_models_share_a_parameter_budget():
    p = {v: n_params(make_model(**spec["model"])) for v, spec in ABLATIONS.items()}
    assert p["2stack"] == p["last"]
    assert abs(p["1stack"] - p["2stack"]) / p["2stack"] < 0.03
    assert ABLATIONS["last"]["intermediate"] is False and ABLATIONS["2stack"]["intermediate"] is True


def test_codec_and_flip_permutation():
    c = make_codec(64)
    assert c.input_size == (64, 64) and c.heatmap_size == (16, 16) and c.sigma == RECIPE["sigma"]
    d = make_codec()
    assert d.input_size == (RECIPE["image_size"],) * 2 and d.heatmap_size == (RECIPE["image_size"] // 4,) * 2
    assert make_codec(64, sigma=2.0).sigma == 2.0
    perm = flip_permutation()
    assert len(perm) == 17 and sorted(perm) == list(range(17))
    assert [perm[perm[i]] for i in range(17)] == list(range(17))  # an involution
    assert perm[0] == 0 and perm[5] == 6 and perm[15] == 16  # nose stays, shoulders and ankles swap


# ---- batches


def test_batches_without_augmentation_are_the_people_themselves(people):
    gen = torch.Generator().manual_seed(3)
    b = next(augmented_batches(people, 5, gen, augment=False))
    assert b["image"].shape == (5, 3, 64, 64) and b["image"].dtype == torch.float32
    assert b["keypoints"].shape == (5, 17, 2) and b["keypoints"].dtype == torch.float32
    assert b["visible"].shape == (5, 17) and b["visible"].dtype == torch.uint8
    assert 0.0 <= b["image"].min() and b["image"].max() <= 1.0
    idx = torch.randint(len(people), (5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(b["image"], people.images[idx].float() / 255.0)
    assert torch.equal(b["keypoints"], people.keypoints[idx]) and torch.equal(b["visible"], people.visible[idx])
    with pytest.raises(ValueError, match="batch_size"):
        next(augmented_batches(people, 0, gen))


def test_augmented_batches_transform_points_and_swap_left_right(people):
    n, seed = 16, 5
    b = next(augmented_batches(people, n, torch.Generator().manual_seed(seed)))
    assert b["image"].shape == (n, 3, 64, 64) and b["keypoints"].shape == (n, 17, 2)
    assert b["visible"].dtype == torch.uint8

    # the same draws, replayed by hand with kpedu.augment
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(people), (n,), generator=g)
    g_state = g.get_state()
    mats, flipped = random_affine(n, (64, 64), RECIPE["augment"]["rotation"], RECIPE["augment"]["scale"],
                                  generator=g)
    assert flipped.any() and (~flipped).any()  # this seed exercises both cases
    perm = torch.tensor(flip_permutation())
    expected = transform_points(people.keypoints[idx], mats)
    expected[flipped] = expected[flipped][:, perm]  # a mirrored left wrist is a right wrist
    assert torch.allclose(b["keypoints"], expected, atol=1e-4)
    vis = people.visible[idx].clone()
    vis[flipped] = vis[flipped][:, perm]
    kp = b["keypoints"]
    inside = (kp[..., 0] > -0.5) & (kp[..., 0] < 63.5) & (kp[..., 1] > -0.5) & (kp[..., 1] < 63.5)
    assert torch.equal(b["visible"], torch.where(inside, vis, torch.zeros_like(vis)))

    # and exactly what augment_batch gives with the same generator state
    g.set_state(g_state)
    src = people.batch(idx)
    img, kp2, vis2 = augment_batch(src["image"], src["keypoints"], src["visible"], flip_permutation(),
                                   rotation=RECIPE["augment"]["rotation"], scale=RECIPE["augment"]["scale"],
                                   generator=g)
    assert torch.equal(b["image"], img) and torch.equal(kp, kp2) and torch.equal(b["visible"], vis2)


# ---- loss


def test_hourglass_loss_logs_every_stack(people):
    codec = make_codec(64)
    b = people.batch(torch.arange(4))
    m = tiny_model()
    out = m(b["image"])
    loss, logs = hourglass_loss(out, b["keypoints"], b["visible"], codec)
    assert set(logs) == {"stack1", "stack2"}
    assert loss.item() == pytest.approx(logs["stack1"] + logs["stack2"], rel=1e-5)
    target, weight = codec.encode(b["keypoints"], b["visible"])
    assert loss.item() == pytest.approx(1000 * stacked_heatmap_loss(out, target, weight).item(), rel=1e-5)

    last, logs_last = hourglass_loss(out, b["keypoints"], b["visible"], codec, intermediate=False)
    assert set(logs_last) == {"stack1", "stack2"}  # still logged, not trained
    assert last.item() == pytest.approx(logs["stack2"], rel=1e-5)
    assert last.item() == pytest.approx(1000 * stacked_heatmap_loss(out[-1:], target, weight).item(), rel=1e-5)

    # perfect predictions cost nothing
    zero, zlogs = hourglass_loss([target, target], b["keypoints"], b["visible"], codec)
    assert zero.item() == pytest.approx(0.0, abs=1e-8) and zlogs == {"stack1": 0.0, "stack2": 0.0}


def test_last_stack_only_loss_ignores_the_first_stacks_error(people):
    codec = make_codec(64)
    b = people.batch(torch.arange(4))
    target, _ = codec.encode(b["keypoints"], b["visible"])
    first = torch.zeros_like(target, requires_grad=True)  # a useless first stack
    last = target.clone().requires_grad_(True)             # a perfect last stack
    loss, logs = hourglass_loss([first, last], b["keypoints"], b["visible"], codec, intermediate=False)
    assert loss.item() == pytest.approx(0.0, abs=1e-8) and logs["stack1"] > 0
    loss.backward()
    assert first.grad is None or torch.count_nonzero(first.grad) == 0
    full, _ = hourglass_loss([first, last], b["keypoints"], b["visible"], codec, intermediate=True)
    assert full.item() == pytest.approx(logs["stack1"], rel=1e-5) and full.item() > 0


# ---- training


def test_train_hourglass_reduces_the_loss(people):
    m = tiny_model()
    hist = train_hourglass(m, people, steps=15, batch_size=8, seed=0, device="cpu", progress=False)
    assert len(hist.loss) == 15 and set(hist.logs) == {"stack1", "stack2"}
    first, last = sum(hist.loss[:3]) / 3, sum(hist.loss[-3:]) / 3
    assert last < 0.8 * first, hist.loss  # about 0.55-0.6 over seeds
    assert next(m.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="steps"):
        train_hourglass(tiny_model(), people, steps=0, device="cpu", progress=False)


def test_train_last_stack_only_runs(people):
    m = tiny_model(num_stacks=1)
    hist = train_hourglass(m, people, steps=2, batch_size=4, device="cpu", intermediate=False, augment=False,
                           progress=False)
    assert set(hist.logs) == {"stack1"} and len(hist.loss) == 2


# ---- inference and evaluation


def test_predict_shapes_dtypes_and_batching(val):
    m = tiny_model().eval()
    images = val.images[:5]
    kp, sc = predict(m, images)
    assert kp.shape == (5, 17, 2) and sc.shape == (5, 17)
    kp_f, sc_f = predict(m, images.float() / 255.0)
    assert torch.equal(kp, kp_f) and torch.equal(sc, sc_f)  # uint8 and float in [0, 1] agree
    kp_b, _ = predict(m, images, batch_size=2)
    assert torch.allclose(kp, kp_b)  # batching does not change eval-mode results
    kp_h, sc_h, heat = predict(m, images, return_heatmaps=True)
    assert heat.shape == (5, 17, 16, 16) and torch.equal(kp_h, kp)
    assert torch.equal(sc_h, heat.flatten(-2).max(-1).values)
    kp_flip, sc_flip = predict(m, images, flip_test=True)
    assert kp_flip.shape == (5, 17, 2) and sc_flip.shape == (5, 17)
    kp0, _ = predict(m, images, stack=0)
    assert kp0.shape == (5, 17, 2)
    assert 0 <= kp.min() and kp.max() <= 63
    m.train()
    predict(m, images)
    assert m.training  # predict restores the mode
    with pytest.raises(ValueError, match="images"):
        predict(m, images[:, :1])


def test_evaluate_and_per_stack_pck(val):
    m = tiny_model()
    r = evaluate(m, val)
    assert {"pck@0.1", "pck@0.2", "pckh@0.5", "per_joint", "pred"} <= set(r)
    for key in ("pck@0.1", "pck@0.2", "pckh@0.5"):
        assert 0.0 <= r[key] <= 1.0
        assert len(r["per_joint"][key]) == 17
    assert r["pck@0.1"] <= r["pck@0.2"]
    assert r["pred"].shape == (len(val), 17, 2)
    assert "pck@0.2" in evaluate(m, val, flip_test=True)
    per = per_stack_pck(m, val)
    assert len(per) == m.num_stacks == 2 and all(0.0 <= v <= 1.0 for v in per)
    assert per[-1] == pytest.approx(r["pck@0.2"], abs=1e-4)
    assert len(per_stack_pck(tiny_model(num_stacks=3), val, threshold=0.5)) == 3
    both = per_stack_pck(m, val, threshold=(0.1, 0.5))
    assert both[0.1] == per_stack_pck(m, val, threshold=0.1) and both[0.5] == per_stack_pck(m, val, threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        per_stack_pck(m, val, threshold=())


# ---- recipes


def test_run_recipe_on_tiny_data(people, val):
    m = tiny_model()
    small_val = PeopleTensors(*(t[:8] for t in (val.images, val.keypoints, val.visible, val.head_sizes,
                                                 val.areas)))  # fewer than the 200-person probe
    r = run_recipe(m, "ci", "cpu", progress=False, curve_points=3, steps=3, train=people, val=small_val)
    assert {"pck@0.1", "pck@0.2", "pckh@0.5", "pck@0.2_flip", "per_stack", "curve", "train_seconds"} <= set(r)
    assert len(r["per_stack"]) == 2
    assert [row[0] for row in r["curve"]] == [1, 2, 3] and all(len(row) == 3 for row in r["curve"])
    assert r["train_seconds"] >= 0


def test_run_ablation_rejects_unknown_variants():
    with pytest.raises(ValueError, match="variant"):
        run_ablation("nope")


def test_hub_discovers_the_hourglass_recipes():
    recipes = hub.discover_recipes()
    for name in ("hourglass-book", "hourglass-ablation-2stack", "hourglass-ablation-1stack",
                 "hourglass-ablation-last"):
        assert name in recipes
        assert recipes[name].module == "kpedu.hourglass.experiment"
