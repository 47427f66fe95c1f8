"""Tests for kpedu.openpose.experiment: scenes, batches and targets, training, inference,
COCO evaluation, timing and the recipe.

Everything runs on tiny data (64-192 px scenes, a few of them) and a tiny network on the
CPU. The end-to-end check of the coordinate conventions feeds ground-truth maps (the
training targets) through upsampling, parsing and pycocotools: perfect maps must give a
COCO AP of 1, and shifting the people by 2 px must ruin it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kpedu import hub
from kpedu.augment import augment_batch, random_affine, transform_points
from kpedu.codecs import heatmap_to_image, image_to_heatmap
from kpedu.data import COCO17, make_person
from kpedu.metrics import coco_evaluate
from kpedu.openpose import OpenPoseNet, Person, batch_targets, confidence_maps, find_peaks, loss_mask
from kpedu.openpose.experiment import (
    RECIPE,
    SceneTensors,
    detect,
    evaluate,
    evaluate_people,
    flip_permutation,
    make_model,
    make_scenes,
    openpose_batch_loss,
    parse_maps,
    people_to_results,
    per_stage_evaluate,
    predict,
    run_recipe,
    scene_batches,
    scene_targets,
    timing,
    train_openpose,
    unflip_maps,
    upsample_maps,
)
from kpedu.openpose.inference import _pad_extrapolate

K, C = 17, 19
TINY = {"stage_channels": 8, "stage_blocks": 1, "stage_hidden": 16, "feature_channels": 16, "backbone_width": 4,
        "paf_stages": 2}


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return make_model(**{**TINY, **overrides})


def tiled_scenes(n, seed, cols=2, size=128):
    """Scenes of ``cols`` people side by side, each a centred single-person crop
    (:func:`kpedu.data.make_person`) of ``size x size / cols``: every labelled keypoint
    lies well inside the image, so ground-truth maps parse without border effects."""
    w = size // cols
    imgs, kps, viss, areas, boxes = [], [], [], [], []
    for i in range(n):
        parts = [make_person(np.random.default_rng([seed, i, c]), (size, w), scale=(0.6, 0.7), rotation=10,
                             background="noise") for c in range(cols)]
        shift = [torch.tensor([c * w, 0.0]) for c in range(cols)]
        imgs.append(torch.from_numpy(np.round(np.concatenate([p.image for p in parts], 2) * 255).astype(np.uint8)))
        kps.append(torch.cat([torch.from_numpy(p.keypoints) + s for p, s in zip(parts, shift)]))
        viss.append(torch.cat([torch.from_numpy(p.visible) for p in parts]))
        areas.append(torch.cat([torch.from_numpy(p.areas) for p in parts]))
        boxes.append(torch.cat([torch.from_numpy(p.boxes) + torch.cat([s, torch.zeros(2)]) for p, s in
                                zip(parts, shift)]))
    return SceneTensors(torch.stack(imgs), kps, viss, areas, boxes, [None] * n)


class OracleNet(nn.Module):
    """Stands in for the network: returns the ground-truth maps of the scene whose image
    it is given, at every stage (the input images identify the scenes)."""

    def __init__(self, scenes: SceneTensors, paf_stages: int = 2, cm_stages: int = 1):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.images = scenes.images.float() / 255.0
        self.cm, self.paf = scene_targets(scenes.keypoints, scenes.visible, scenes.image_size)
        self.tp, self.tc = paf_stages, cm_stages

    def forward(self, x):
        idx = [int(torch.nonzero((self.images == row).flatten(1).all(1))[0]) for row in x]
        return [self.paf[idx]] * self.tp, [self.cm[idx]] * self.tc


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(6, 0, 64, num_people=(1, 3))


@pytest.fixture(scope="module")
def tiled():
    return tiled_scenes(4, 3)


# ----------------------------------------------------------------------------- recipe and model


def test_recipe_and_make_model():
    m = make_model()
    cfg = RECIPE["model"]
    assert isinstance(m, OpenPoseNet) and m.backbone_name == "small"
    assert (len(m.paf_stages), len(m.cm_stages), m.num_keypoints, m.num_limbs) == (
        cfg["paf_stages"], cfg["cm_stages"], K, C)
    n = sum(p.numel() for p in m.parameters())
    assert n == sum(p.numel() for p in OpenPoseNet(**cfg).parameters()) and 1e6 < n < 1e7
    t = tiny_model(paf_stages=1)
    assert len(t.paf_stages) == 1 and t.num_keypoints == K  # overridden / kept from the recipe
    with pytest.raises(TypeError):
        make_model(stage_chanels=3)
    for key in ("train_scenes", "steps", "val_images", "curve_images"):
        assert set(RECIPE[key]) == {"ci", "book", "full"}
        assert RECIPE[key]["ci"] <= RECIPE[key]["book"] <= RECIPE[key]["full"]
    assert RECIPE["image_size"] % 8 == 0 and RECIPE["val_images"]["full"] >= 200
    perm = flip_permutation()
    assert sorted(perm) == list(range(K)) and perm[5] == 6 and perm[0] == 0


# ----------------------------------------------------------------------------- scenes


def test_make_scenes_shapes_dtypes_and_determinism(scenes):
    assert len(scenes) == 6 and scenes.image_size == 64
    assert scenes.images.shape == (6, 3, 64, 64) and scenes.images.dtype == torch.uint8
    for kp, v, a, b, u in zip(scenes.keypoints, scenes.visible, scenes.areas, scenes.boxes, scenes.unlabelled):
        n = kp.shape[0]
        assert 1 <= n <= 3 and kp.shape == (n, K, 2) and kp.dtype == torch.float32
        assert v.shape == (n, K) and v.dtype == torch.uint8 and set(v.unique().tolist()) <= {0, 1, 2}
        assert a.shape == (n,) and b.shape == (n, 4)
        assert u is None or (u.shape == (64, 64) and u.dtype == torch.bool and u.any())
    assert scenes.num_people.shape == (6,) and scenes.num_people.dtype == torch.int64
    # scene i depends on (seed, i) only
    again = make_scenes(2, 0, 64, num_people=(1, 3))
    assert torch.equal(again.images, scenes.images[:2])
    assert all(torch.equal(a, b) for a, b in zip(again.keypoints, scenes.keypoints[:2]))


def test_unlabelled_people_are_masked_and_counted_out():
    everybody = make_scenes(3, 5, 64, num_people=2, min_visible=0)
    nobody = make_scenes(3, 5, 64, num_people=2, min_visible=K + 1)
    assert all(u is None for u in everybody.unlabelled) and everybody.num_people.tolist() == [2, 2, 2]
    assert nobody.num_people.tolist() == [0, 0, 0] and all(int(v.sum()) == 0 for v in nobody.visible)
    assert torch.equal(nobody.images, everybody.images)  # the same scenes, labelled differently
    for u in nobody.unlabelled:  # every drawn pixel of every person is unlabelled
        assert u is not None and u.any()
    # the loss mask is 0 on every cell with an unlabelled pixel, 1 elsewhere
    b = next(scene_batches(nobody, 3, torch.Generator().manual_seed(0), augment=False))
    for j, i in enumerate(b["index"].tolist()):
        assert torch.equal(b["mask"][j], loss_mask(nobody.unlabelled[i], 8, 8))
        assert (b["mask"][j] == 0).any() and b["cm"][j].max() == 0 and b["paf"][j].abs().max() == 0
    # unlabelled people stay in the ground truth with num_keypoints = 0 (ignored by COCOeval)
    gt = nobody.to_coco()
    assert len(gt["annotations"]) == 6 and all(a["num_keypoints"] == 0 for a in gt["annotations"])
    with pytest.raises(ValueError, match="min_visible"):
        make_scenes(1, 0, 64, min_visible=-1)


def test_make_scenes_errors_subset_and_to_coco(scenes):
    with pytest.raises(ValueError, match="n must"):
        make_scenes(0, 0, 64)
    with pytest.raises(ValueError, match="multiple of 8"):
        make_scenes(1, 0, 60)
    with pytest.raises(TypeError):
        make_scenes(1, 0, 64, num_peeple=2)
    sub = scenes.subset([4, 1])
    assert len(sub) == 2 and torch.equal(sub.images[0], scenes.images[4])
    assert sub.keypoints[1] is scenes.keypoints[1]
    assert len(scenes.subset(slice(0, 3))) == 3 and len(scenes.subset(torch.tensor([0]))) == 1
    with pytest.raises(ValueError, match="entries"):
        SceneTensors(scenes.images, scenes.keypoints[:2], scenes.visible, scenes.areas, scenes.boxes,
                     scenes.unlabelled)
    gt = scenes.to_coco()
    assert [im["id"] for im in gt["images"]] == list(range(1, 7))
    assert len(gt["annotations"]) == sum(len(k) for k in scenes.keypoints)
    first = gt["annotations"][0]
    assert first["keypoints"][:3] == [float(scenes.keypoints[0][0, 0, 0]), float(scenes.keypoints[0][0, 0, 1]),
                                      int(scenes.visible[0][0, 0])]


# ----------------------------------------------------------------------------- targets and batches


def test_batches_without_augmentation_match_the_scenes(scenes):
    b = next(scene_batches(scenes, 5, torch.Generator().manual_seed(3), augment=False))
    idx = torch.randint(len(scenes), (5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(b["index"], idx)
    assert b["image"].shape == (5, 3, 64, 64) and b["image"].dtype == torch.float32
    assert torch.equal(b["image"], scenes.images[idx].float() / 255.0)
    assert b["cm"].shape == (5, K, 8, 8) and b["paf"].shape == (5, 2 * C, 8, 8) and b["mask"].shape == (5, 8, 8)
    for j, i in enumerate(idx.tolist()):
        assert torch.equal(b["keypoints"][j], scenes.keypoints[i]) and torch.equal(b["visible"][j], scenes.visible[i])
    cm, paf = scene_targets(b["keypoints"], b["visible"], 64)
    assert torch.equal(b["cm"], cm) and torch.equal(b["paf"], paf)
    # a confidence-map peak at every labelled keypoint: its nearest heatmap pixel is within
    # sqrt(1/2) pixel, where the Gaussian exp(-d^2 / sigma^2) is at least exp(-1 / (2 sigma^2))
    floor = math.exp(-0.5 / RECIPE["sigma"] ** 2) - 1e-6
    checked = 0
    for j in range(5):
        kp, v = b["keypoints"][j], b["visible"][j]
        h = image_to_heatmap(kp, 8)
        for p, k in zip(*torch.nonzero(v > 0, as_tuple=True)):
            x, y = h[p, k].tolist()
            ix, iy = round(x), round(y)
            if 0 <= ix < 8 and 0 <= iy < 8:
                assert b["cm"][j, k, iy, ix] >= floor
                checked += 1
    assert checked > 20
    # fields are unit vectors or averages of unit vectors
    assert b["paf"].reshape(5, C, 2, 8, 8).norm(dim=2).max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="batch_size"):
        next(scene_batches(scenes, 0, torch.Generator()))


def test_augmented_batches_transform_points_and_swap_left_right(scenes):
    n, seed = 12, 4
    b = next(scene_batches(scenes, n, torch.Generator().manual_seed(seed)))
    # replay the same draws by hand
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(scenes), (n,), generator=g)
    state = g.get_state()
    mats, flipped = random_affine(n, (64, 64), RECIPE["augment"]["rotation"], RECIPE["augment"]["scale"], generator=g)
    assert flipped.any() and (~flipped).any()  # this seed exercises both cases
    perm = torch.tensor(flip_permutation())
    for j, i in enumerate(idx.tolist()):
        expected = transform_points(scenes.keypoints[i][None], mats[j:j + 1])[0]
        vis = scenes.visible[i].clone()
        if flipped[j]:  # a mirrored left shoulder is a right shoulder
            expected, vis = expected[:, perm], vis[:, perm]
        assert torch.allclose(b["keypoints"][j], expected, atol=1e-4)
        kp = b["keypoints"][j]
        inside = (kp[..., 0] > -0.5) & (kp[..., 0] < 63.5) & (kp[..., 1] > -0.5) & (kp[..., 1] < 63.5)
        assert torch.equal(b["visible"][j], torch.where(inside, vis, torch.zeros_like(vis)))
    # the images are exactly what augment_batch makes with the same draws
    g.set_state(state)
    kp_pad = torch.zeros(n, 3, K, 2)
    vis_pad = torch.zeros(n, 3, K, dtype=torch.uint8)
    for j, i in enumerate(idx.tolist()):
        kp_pad[j, :len(scenes.keypoints[i])] = scenes.keypoints[i]
        vis_pad[j, :len(scenes.visible[i])] = scenes.visible[i]
    src = torch.cat([scenes.images[idx].float() / 255.0, torch.zeros(n, 1, 64, 64)], 1)
    for j, i in enumerate(idx.tolist()):
        if scenes.unlabelled[i] is not None:
            src[j, 3] = scenes.unlabelled[i].float()
    img, _, _ = augment_batch(src, kp_pad, vis_pad, flip_permutation(), rotation=RECIPE["augment"]["rotation"],
                              scale=RECIPE["augment"]["scale"], generator=g)
    assert torch.allclose(b["image"], img[:, :3].clamp(0, 1))
    # the targets follow the augmented keypoints
    cm, paf = scene_targets(b["keypoints"], b["visible"], 64)
    assert torch.equal(b["cm"], cm) and torch.equal(b["paf"], paf)


def test_scene_targets_extend_short_limbs_only():
    # nose and left eye 0.3 heatmap pixels apart, horizontally, between pixel centres:
    # Eq. 11's rectangle contains no pixel centre, so the paper's field is empty there
    h = torch.zeros(1, K, 2)
    h[0, :, 0] = torch.arange(K).float() * 0.9 + 0.2   # spread the other keypoints out
    h[0, :, 1] = 3.0 + torch.arange(K).float() * 0.7
    h[0, 0] = torch.tensor([10.1, 10.0])
    h[0, 1] = torch.tensor([10.4, 10.0])
    kp = heatmap_to_image(h, 8)
    vis = torch.full((1, K), 2, dtype=torch.uint8)
    c = COCO17.limbs.index((0, 1))
    cm0, paf0 = scene_targets([kp], [vis], 256, min_length=0.0)
    cm1, paf1 = scene_targets([kp], [vis], 256, min_length=1.0)
    assert paf0[0, 2 * c:2 * c + 2].abs().sum() == 0
    assert paf1[0, 2 * c].max() == pytest.approx(1.0) and paf1[0, 2 * c + 1].abs().max() == 0
    assert paf1[0, 2 * c, 10, 10] == pytest.approx(1.0)  # the pixel the extended limb covers
    assert torch.equal(cm0, cm1)
    # min_length = 0 is batch_targets exactly; longer limbs are the same either way
    cmb, pafb, _ = batch_targets([kp], [vis], COCO17, 32, 8, RECIPE["sigma"], RECIPE["limb_width"])
    assert torch.equal(cm0, cmb) and torch.equal(paf0, pafb)
    long = [i for i, (a, b) in enumerate(COCO17.limbs) if (h[0, a] - h[0, b]).norm() >= 1.0]
    assert len(long) >= 10
    for i in long:
        assert torch.equal(paf0[0, 2 * i:2 * i + 2], paf1[0, 2 * i:2 * i + 2])
    with pytest.raises(ValueError, match="min_length"):
        scene_targets([kp], [vis], 256, min_length=-1.0)


# ----------------------------------------------------------------------------- training


def test_training_reduces_the_loss_and_logs_every_stage(scenes):
    m = tiny_model()
    hist = train_openpose(m, scenes, steps=12, batch_size=4, lr=5e-3, seed=0, device="cpu", progress=False)
    assert len(hist.loss) == 12
    assert set(hist.logs) == {"paf1", "paf2", "cm1", "paf", "cm"}
    first, last = sum(hist.loss[:3]) / 3, sum(hist.loss[-3:]) / 3
    assert last < 0.8 * first, hist.loss
    assert hist.loss[0] == pytest.approx(hist.logs["paf"][0] + hist.logs["cm"][0], rel=1e-4)
    assert hist.logs["paf"][0] == pytest.approx(hist.logs["paf1"][0] + hist.logs["paf2"][0], rel=1e-4)
    # openpose_batch_loss on a perfect prediction is zero
    b = next(scene_batches(scenes, 2, torch.Generator().manual_seed(0), augment=False))
    perfect = lambda x: ([b["paf"], b["paf"]], [b["cm"]])  # noqa: E731
    loss, logs = openpose_batch_loss(perfect, b)
    assert loss.item() == 0 and "loss" not in logs
    with pytest.raises(ValueError, match="steps"):
        train_openpose(tiny_model(), scenes, steps=0, device="cpu", progress=False)
    with pytest.raises(TypeError, match="SceneTensors"):
        train_openpose(tiny_model(), [scenes], steps=1, device="cpu", progress=False)


def test_ten_steps_do_not_break_the_schedule(scenes):
    # torch's OneCycleLR divides by zero when pct_start * total_steps == 1
    hist = train_openpose(tiny_model(), scenes, steps=10, batch_size=2, device="cpu", augment=False, progress=False)
    assert len(hist.loss) == 10


# ----------------------------------------------------------------------------- inference


def test_predict_shapes_dtypes_batching_and_modes(scenes):
    m = tiny_model()
    m.train()
    images = scenes.images[:5]
    heat, pafs = predict(m, images)
    assert heat.shape == (5, K, 8, 8) and pafs.shape == (5, 2 * C, 8, 8)
    assert m.training  # restored
    heat_f, _ = predict(m, images.float() / 255.0)
    assert torch.equal(heat, heat_f)
    heat_b, pafs_b = predict(m, images, batch_size=2)
    assert torch.allclose(heat, heat_b, atol=1e-5) and torch.allclose(pafs, pafs_b, atol=1e-5)
    heat_u, pafs_u = predict(m, images, upsample=2)
    assert heat_u.shape == (5, K, 16, 16) and pafs_u.shape == (5, 2 * C, 16, 16)
    assert torch.allclose(heat_u, upsample_maps(heat, 2, positive=True), atol=1e-5)
    p_all, c_all = predict(m, images, all_stages=True)
    assert len(p_all) == 2 and len(c_all) == 1 and torch.equal(c_all[-1], heat) and torch.equal(p_all[-1], pafs)
    with pytest.raises(ValueError, match="images"):
        predict(m, images[:, :1])
    with pytest.raises(ValueError, match="multiples of 8"):
        predict(m, images[..., :60, :60])
    with pytest.raises(ValueError, match="upsample"):
        predict(m, images, upsample=0)
    with pytest.raises(ValueError, match="batch_size"):
        predict(m, images, batch_size=0)


def test_unflip_maps_turns_the_mirrored_scenes_targets_into_the_targets(scenes):
    size = scenes.image_size
    perm = flip_permutation()
    kps, vis = [], []
    for k, v in zip(scenes.keypoints, scenes.visible):
        k = k.clone()
        k[..., 0] = size - 1 - k[..., 0]  # pixel centres at integers: x -> S - 1 - x
        kps.append(k[:, perm])
        vis.append(v[:, perm])
    cm, paf = scene_targets(scenes.keypoints, scenes.visible, size)
    cm_m, paf_m = scene_targets(kps, vis, size)
    assert not torch.allclose(paf_m, paf, atol=0.1)
    back_cm, back_paf = unflip_maps(cm_m, paf_m)
    assert torch.allclose(back_cm, cm, atol=1e-5) and torch.allclose(back_paf, paf, atol=1e-4)
    # (11, 12) mirrors to (12, 11): the hips' field is reversed, not only mirrored
    hips = [tuple(l) for l in COCO17.limbs].index((11, 12))
    assert paf[:, 2 * hips].abs().sum() > 0
    with pytest.raises(ValueError, match="confidence maps"):
        unflip_maps(cm[:, :5], paf)
    with pytest.raises(ValueError, match="B, C, H, W"):
        unflip_maps(cm[0], paf[0])


def test_flip_test_averages_mirror_equivariant_maps(scenes):
    m = tiny_model()
    images = scenes.images[:3]
    heat, pafs = predict(m, images, flip=True)
    heat_m, pafs_m = predict(m, images.flip(-1), flip=True)
    back_h, back_p = unflip_maps(heat_m, pafs_m)
    # averaged with its own mirror image, the prediction commutes with mirroring exactly
    assert torch.allclose(back_h, heat, atol=1e-5) and torch.allclose(back_p, pafs, atol=1e-5)
    plain_h, plain_p = predict(m, images)
    assert not torch.allclose(plain_p, pafs, atol=1e-4)  # an untrained network is not symmetric
    one_h, one_p = unflip_maps(*predict(m, images.flip(-1)))
    assert torch.allclose((plain_h + one_h) / 2, heat, atol=1e-5)
    assert torch.allclose((plain_p + one_p) / 2, pafs, atol=1e-5)
    p_all, c_all = predict(m, images, flip=True, all_stages=True)
    assert torch.allclose(p_all[-1], pafs) and torch.allclose(c_all[-1], heat)
    with pytest.raises(TypeError, match="flip"):
        predict(m, images, flip=1)


class _BlurNet(nn.Module):
    """Stands in for the network: every map is the image's grey level averaged over each
    stride-8 cell, so a map resized from another scale must agree with it cell by cell."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        g = F.avg_pool2d(x.mean(1, keepdim=True), 8)
        return [g.expand(-1, 2 * C, -1, -1)], [g.expand(-1, K, -1, -1)]


def test_scale_search_keeps_the_maps_aligned():
    size = 128
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    def blob(cx):
        g = torch.exp(-((xx - cx) ** 2 + (yy - 71.0) ** 2) / (2 * 18.0 ** 2))
        return g.expand(1, 3, size, size).contiguous()

    images = blob(50.0)
    net = _BlurNet()
    ref, _ = predict(net, images)
    assert torch.equal(predict(net, images, scales=(1.0,))[0], ref)
    assert torch.allclose(predict(net, images, scales=(1.0, 1.0))[0], ref, atol=1e-6)
    for s in (0.75, 1.5, 2.0):
        got, _ = predict(net, images, scales=(s,))
        assert got.shape == ref.shape
        assert (got - ref).abs().max() < 0.02, s
    # the tolerance catches a misregistration of a quarter cell (the blob moved by 2 px)
    assert (predict(net, blob(52.0))[0] - ref).abs().max() > 0.05
    m = tiny_model()
    h, p = predict(m, make_scenes(2, 5, 64).images, scales=(0.75, 1.0, 1.5), flip=True, upsample=2)
    assert h.shape == (2, K, 16, 16) and p.shape == (2, 2 * C, 16, 16)
    for bad in ((), (0.0,), (1.0, -1.0), "big", (float("nan"),)):
        with pytest.raises(ValueError, match="scales"):
            predict(net, images, scales=bad)


def test_upsample_maps_convention_and_border():
    x = torch.randn(2, 3, 5, 7)
    up = upsample_maps(x, 4)
    assert up.shape == (2, 3, 20, 28)
    plain = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(up[..., 8:-8, 8:-8], plain[..., 8:-8, 8:-8], atol=1e-5)  # only the border differs
    assert torch.equal(upsample_maps(x, 1), x)
    assert torch.allclose(upsample_maps(torch.full((1, 1, 4, 4), 0.3), 8), torch.full((1, 1, 32, 32), 0.3))
    q = (torch.arange(6.0) - 2.0) ** 2
    assert torch.allclose(_pad_extrapolate(q.expand(1, 1, 3, 6), 2)[0, 0, 0], (torch.arange(-2.0, 8.0) - 2) ** 2)
    # a keypoint near the border: one peak, where it belongs (the plain interpolation
    # repeats the edge sample and the bicubic overshoot adds a second peak on the border)
    kp = torch.tensor([[[113.0, 39.6]]])
    cm = confidence_maps(kp, None, 16, 8, 1.5)[None]
    ours = find_peaks(upsample_maps(cm, 8)[0])[0]
    theirs = find_peaks(F.interpolate(cm, scale_factor=8, mode="bicubic", align_corners=False)[0])[0]
    assert len(ours) == 1 and len(theirs) == 2 and theirs[:, 0].max() == 127
    assert (heatmap_to_image(ours[0, :2], 1) - kp[0, 0]).norm() < 1.0  # stride 1 after upsampling by 8
    # a peak half a cell inside the border: the parabola through the samples overshoots
    # beyond the edge and drags the peak onto the border; the log-domain continuation
    # (positive=True, confidence maps) keeps it in place
    kp = torch.tensor([[[249.9, 124.4]]])
    cm = confidence_maps(kp, None, 32, 8, 1.5)[None]
    plain_peak = find_peaks(upsample_maps(cm, 8)[0])[0]
    log_peak = find_peaks(upsample_maps(cm, 8, positive=True)[0])[0]
    assert len(log_peak) == 1 and abs(float(log_peak[0, 0]) - 249.9) < 0.5, log_peak
    assert float(plain_peak[:, 0].max()) > 254.0
    pad = _pad_extrapolate(cm, 2, log=True)
    assert (pad >= 0).all() and torch.allclose(pad[..., 2:-2, 2:-2], cm)
    with pytest.raises(ValueError, match="mode"):
        upsample_maps(x, 2, mode="nearest")
    with pytest.raises(ValueError, match="upsample"):
        upsample_maps(x, 1.5)


# ----------------------------------------------------------------------------- perfect maps, end to end


def test_perfect_maps_parse_to_the_people_and_score_ap_one(tiled):
    """Ground-truth maps through upsampling, parsing, the COCO writers and pycocotools."""
    cm, paf = scene_targets(tiled.keypoints, tiled.visible, tiled.image_size)
    people = parse_maps(cm, paf, upsample=8)
    assert [len(p) for p in people] == [2] * len(tiled)
    for found, truth, vis in zip(people, tiled.keypoints, tiled.visible):
        for person in found:
            # the person whose torso is nearest, then every part within 1.5 px of it
            g = int(torch.argmin((truth[:, 5:7].mean(1) - person.keypoints[5:7].mean(0)).norm(dim=1)))
            f = person.visible
            assert f.sum() >= 15 and torch.equal(f & (vis[g] > 0), f)  # no parts that are not there
            assert (person.keypoints[f] - truth[g][f]).norm(dim=1).max() < 1.5
    gt = tiled.to_coco()
    results = people_to_results(people)
    assert len(results) == 2 * len(tiled) and {r["image_id"] for r in results} == {1, 2, 3, 4}
    r = coco_evaluate(gt, results)
    assert r["AP"] > 0.97 and r["AR"] > 0.97
    assert evaluate_people(people, tiled)["AP"] == pytest.approx(r["AP"], abs=1e-4)
    # the check is sharp: 2 px off in x and y ruins it
    for found in people:
        for person in found:
            person.keypoints += 2.0
    assert evaluate_people(people, tiled)["AP"] < 0.5
    # parsing the stride-8 maps directly is coarser
    coarse = evaluate_people(parse_maps(cm, paf, upsample=1), tiled)
    assert coarse["AP50"] > 0.9 and coarse["AP"] < r["AP"] - 0.1


def test_detect_and_evaluate_with_an_oracle_network(tiled):
    oracle = OracleNet(tiled)  # knows the scenes' own images only: one pass, no test-time augmentation
    one = {"flip": False, "scales": (1.0,)}
    found = detect(oracle, tiled.images, batch_size=3, **one)
    assert [len(p) for p in found] == [2] * len(tiled) and isinstance(found[0][0], Person)
    r = evaluate(oracle, tiled, batch_size=3, return_people=True, **one)
    assert r["AP"] > 0.97 and r["people_per_image"] == 2.0 and len(r["people"]) == len(tiled)
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR"} <= set(r)
    coarse = evaluate(oracle, tiled, upsample=1, **one)
    assert coarse["AP"] < r["AP"]
    assert evaluate(oracle, tiled, threshold=1.1, **one)["AP"] == 0.0  # parse options reach parse
    stages = per_stage_evaluate(oracle, tiled, batch_size=3)
    assert stages["paf_loss"] == [0.0, 0.0] and stages["cm_loss"] == [0.0]
    assert stages["ap"] == [r["AP"], r["AP"]]
    assert "ap" not in per_stage_evaluate(oracle, tiled, ap=False)
    with pytest.raises(ValueError, match="upsample"):
        detect(oracle, tiled.images, upsample=0)


def test_people_to_results_fill_and_scores():
    kp = torch.full((K, 2), float("nan"))
    kp[5], kp[6], kp[11] = torch.tensor([10.0, 20.0]), torch.tensor([20.0, 20.0]), torch.tensor([15.0, 50.0])
    parts = torch.full((K,), -1)
    parts[[5, 6, 11]] = 0
    scores = torch.zeros(K)
    scores[[5, 6, 11]] = torch.tensor([0.9, 0.8, 0.7])
    p = Person(keypoints=kp, scores=scores, score=0.85, parts=parts, num_limbs=2)
    (r,) = people_to_results([[p]], image_ids=[7])
    flat = torch.tensor(r["keypoints"]).reshape(K, 3)
    assert r["image_id"] == 7 and r["category_id"] == 1
    assert r["score"] == pytest.approx(0.85 * 3 / K)
    assert torch.allclose(flat[5], torch.tensor([10.0, 20.0, 0.9]))
    assert torch.allclose(flat[0], torch.tensor([15.0, 30.0, 0.0]))  # missing: the mean of the found parts
    assert people_to_results([[p]], rescore=False)[0]["score"] == pytest.approx(0.85)
    assert people_to_results([[], []]) == []
    with pytest.raises(ValueError, match="image ids"):
        people_to_results([[p]], image_ids=[1, 2])


def test_evaluate_and_per_stage_on_a_tiny_network(scenes):
    m = tiny_model()
    r = evaluate(m, scenes, upsample=2, flip=False, scales=(1.0,))  # per_stage_evaluate makes one pass
    assert all(0.0 <= r[k] <= 1.0 for k in ("AP", "AP50", "AP75", "AR")) and r["people_per_image"] >= 0
    s = per_stage_evaluate(m, scenes, batch_size=4, upsample=2)
    assert len(s["paf_loss"]) == 2 and len(s["cm_loss"]) == 1 and len(s["ap"]) == 2
    assert all(v > 0 for v in s["paf_loss"] + s["cm_loss"])
    assert s["ap"][-1] == pytest.approx(r["AP"], abs=1e-4)
    with pytest.raises(ValueError, match="lists of people"):
        evaluate_people([[]], scenes)


# ----------------------------------------------------------------------------- timing


def test_timing_returns_times_per_people_count():
    m = tiny_model()
    t = timing(m, people_counts=(1, 2, 4), images=1, image_size=64, upsample=2)
    assert t["people"] == [1, 2, 4]
    assert all(len(t[k]) == 3 for k in ("network_s", "upsample_s", "parse_s", "found"))
    assert all(v > 0 for v in t["network_s"] + t["upsample_s"] + t["parse_s"])
    truth = timing(m, people_counts=(1, 3), images=1, image_size=128, maps="truth")
    assert truth["found"][0] >= 1 and truth["found"][1] > truth["found"][0]
    with pytest.raises(ValueError, match="increasing"):
        timing(m, people_counts=(2, 1))
    with pytest.raises(ValueError, match="increasing"):
        timing(m, people_counts=(0, 1))
    with pytest.raises(ValueError, match="maps"):
        timing(m, maps="nope")
    with pytest.raises(ValueError, match="images"):
        timing(m, images=0)


# ----------------------------------------------------------------------------- recipe


def test_run_recipe_on_tiny_data(scenes):
    m = tiny_model()
    r = run_recipe(m, "ci", "cpu", progress=False, curve_points=2, steps=2, train=scenes, val=scenes.subset([0, 1]))
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR", "people_per_image", "per_stage", "curve", "loss", "steps",
            "val_images", "train_seconds", "single_pass", "test"} <= set(r)
    assert r["test"] == {"flip": RECIPE["flip"], "scales": [float(v) for v in RECIPE["test_scales"]]}
    assert set(r["single_pass"]) == {"AP", "AP50", "AP75", "AR"}
    # one pass is what per_stage_evaluate parses with the last PAF stage
    assert r["single_pass"]["AP"] == pytest.approx(r["per_stage"]["ap"][-1], abs=1e-4)
    assert r["steps"] == 2 and r["val_images"] == 2 and r["train_seconds"] >= 0
    assert [row[0] for row in r["curve"]] == [1, 2] and all(len(row) == 3 for row in r["curve"])
    assert set(r["per_stage"]) == {"paf_loss", "cm_loss", "ap"} and len(r["per_stage"]["paf_loss"]) == 2
    assert math.isfinite(r["loss"])
    with pytest.raises(ValueError, match="profile"):
        run_recipe(m, "huge", train=scenes, val=scenes)
    with pytest.raises(ValueError, match="steps"):
        run_recipe(m, "ci", "cpu", progress=False, steps=0, train=scenes, val=scenes)


def test_hub_knows_the_openpose_recipe():
    recipes = hub.discover_recipes()
    assert recipes["openpose-book"].module == "kpedu.openpose.experiment"


def test_run_recipe_cycles_resume_exactly(scenes, monkeypatch):
    """Warm-restart cycles: running cycle 1, saving, then resuming cycle 2 gives the same
    weights and curve as one uninterrupted run."""
    import copy

    from kpedu.openpose import experiment as E

    monkeypatch.setitem(E.RECIPE, "steps", {**E.RECIPE["steps"], "ci": 2})
    monkeypatch.setitem(E.RECIPE, "restarts", {**E.RECIPE["restarts"], "ci": [(2, 1e-3)]})
    kw = dict(progress=False, curve_points=1, train=scenes, val=scenes.subset([0, 1]))
    torch.manual_seed(0)
    whole = tiny_model()
    start = copy.deepcopy(whole.state_dict())
    r_whole = run_recipe(whole, "ci", "cpu", **kw)
    assert r_whole["steps"] == 4 and r_whole["cycles"] == [[2, 0.002], [2, 0.001]]
    assert [row[0] for row in r_whole["curve"]] == [2, 4]

    part = tiny_model()
    part.load_state_dict(start)
    r1 = run_recipe(part, "ci", "cpu", stop_cycle=1, **kw)
    assert r1["steps"] == 2 and r1["cycles"] == [[2, 0.002]]
    saved = copy.deepcopy(part.state_dict())
    resumed = tiny_model()
    resumed.load_state_dict(saved)
    r2 = run_recipe(resumed, "ci", "cpu", start_cycle=1, prior=r1, **kw)
    assert r2["steps"] == 4 and [row[0] for row in r2["curve"]] == [2, 4]
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(ValueError, match="start_cycle"):
        run_recipe(tiny_model(), "ci", "cpu", start_cycle=2, **kw)


def test_scene_targets_accepts_one_person_per_image_and_rejects_bad_shapes():
    from kpedu.openpose import experiment as E

    sc = E.make_scenes(1, seed=1)
    one = E.scene_targets([sc.keypoints[0][0]], [sc.visible[0][0]], 256)
    batched = E.scene_targets([sc.keypoints[0][:1]], [sc.visible[0][:1]], 256)
    assert all(torch.equal(a, b) for a, b in zip(one, batched))
    with pytest.raises(ValueError, match="keypoints"):
        E.scene_targets([sc.keypoints[0][0, :, 0]], [sc.visible[0][0]], 256)


def test_run_recipe_resumes_an_interrupted_cycle_exactly(scenes, monkeypatch, tmp_path):
    """With state_dir, a cycle interrupted mid-way continues from its state file and ends
    with the same weights and learning curve as an uninterrupted run."""
    import copy

    from kpedu.openpose import experiment as E

    monkeypatch.setitem(E.RECIPE, "steps", {**E.RECIPE["steps"], "ci": 4})
    kw = dict(progress=False, curve_points=2, train=scenes, val=scenes.subset([0, 1]))
    torch.manual_seed(0)
    whole = tiny_model()
    start = copy.deepcopy(whole.state_dict())
    r_whole = run_recipe(whole, "ci", "cpu", **kw)

    real_evaluate = E.evaluate
    calls = {"n": 0}

    def failing_evaluate(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # the curve point at step 4: the state of step 3 is on disk
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    part = tiny_model()
    part.load_state_dict(start)
    monkeypatch.setattr(E, "evaluate", failing_evaluate)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(part, "ci", "cpu", state_dir=tmp_path, save_every=3, **kw)
    assert (tmp_path / "openpose-cycle1.pt").exists() and (tmp_path / "openpose-cycle1.json").exists()
    monkeypatch.setattr(E, "evaluate", real_evaluate)
    resumed = tiny_model()  # fresh weights: everything comes from the state file
    r = run_recipe(resumed, "ci", "cpu", state_dir=tmp_path, save_every=3, **kw)
    assert not any(tmp_path.iterdir()), "a finished cycle removes its state"
    assert [row[0] for row in r["curve"]] == [row[0] for row in r_whole["curve"]] == [2, 4]
    for k, v in whole.state_dict().items():
        assert torch.allclose(v.float(), resumed.state_dict()[k].float(), atol=1e-6), k


def test_enlarged_scales_go_through_the_network_in_smaller_groups(scenes):
    """At scale s the batch is split into groups of about batch_size / s^2 images (the
    memory of one batch at the input size), and the maps are the same as image by image."""
    m = tiny_model()
    seen = []
    hook = m.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    try:
        heat, pafs = predict(m, scenes.images, batch_size=4, flip=True, scales=(1.0, 2.0))
    finally:
        hook.remove()
    n, s = len(scenes.images), scenes.image_size
    at_1 = [b for b in seen if b[-1] == s]
    at_2 = [b for b in seen if b[-1] == 2 * s]
    assert [b[0] for b in at_1] == [4, 4, 2, 2]                # two batches, each also mirrored
    assert all(b[0] == 1 for b in at_2) and len(at_2) == 2 * n  # 4 / 2^2 = 1 image per pass
    assert max(b[0] * b[-1] * b[-2] for b in seen) <= 4 * s * s
    one_by_one = [predict(m, scenes.images[i:i + 1], batch_size=1, flip=True, scales=(1.0, 2.0)) for i in range(n)]
    torch.testing.assert_close(heat, torch.cat([h for h, _ in one_by_one]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pafs, torch.cat([p for _, p in one_by_one]), atol=1e-5, rtol=1e-4)
