"""Tests for kpedu.openpose.model: the TPAMI architecture, counted independently,
the stage wiring (Eq. 1-4) and the masked multi-stage loss (Eq. 5-7).

(Named test_openpose_model.py: tests/hourglass/test_model.py already holds the basename.)
"""
import pytest
import torch

from kpedu.openpose.model import (
    ConvBlock,
    OpenPoseNet,
    SmallBackbone,
    Stage,
    VGG19Backbone,
    openpose_loss,
    openpose_paper,
)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def stage_count(c_in, c_out, width=128, hidden=512, blocks=5, prelu=True):
    a = width if prelu else 0  # one PReLU slope per channel
    first = conv(c_in, width, 3) + a + 2 * (conv(width, width, 3) + a)
    later = conv(3 * width, width, 3) + a + 2 * (conv(width, width, 3) + a)
    head = conv(3 * width, hidden, 1) + (hidden if prelu else 0) + conv(hidden, c_out, 1)
    return first + (blocks - 1) * later + head


def vgg_count(f=128, prelu=True):
    widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512]
    n, c = 0, 3
    for w in widths:
        n, c = n + conv(c, w, 3), w
    return n + conv(512, 256, 3) + conv(256, f, 3) + ((256 + f) if prelu else 0)


def paper_count(k=18, limbs=19, paf_stages=5, cm_stages=1, f=128):
    p = 2 * limbs
    pafs = stage_count(f, p) + (paf_stages - 1) * stage_count(f + p, p)
    cms = stage_count(f + p, k) + (cm_stages - 1) * stage_count(f + k + p, k)
    return vgg_count(f) + pafs + cms


def test_paper_configuration_parameter_count():
    m = openpose_paper()
    n = n_params(m)
    print(f"\nOpenPose paper configuration (VGG-19, 5 PAF + 1 CM stages, K=18, C=19): {n:,} parameters")
    assert n == paper_count() == 29_224_208
    assert len(m.paf_stages) == 5 and len(m.cm_stages) == 1
    # its backbone holds the ten VGG-19 convolutions (about 7.6 M of the parameters)
    assert sum(isinstance(x, torch.nn.Conv2d) for x in m.backbone.vgg) == 10
    with torch.no_grad():
        pafs, cms = m(torch.rand(1, 3, 64, 64))
    assert [p.shape for p in pafs] == [(1, 38, 8, 8)] * 5 and [c.shape for c in cms] == [(1, 18, 8, 8)]


@pytest.mark.parametrize("k,limbs,tp,tc", [(17, 19, 4, 2), (5, 3, 1, 1), (18, 19, 2, 3)])
def test_parameter_count_other_stage_numbers(k, limbs, tp, tc):
    m = OpenPoseNet(k, limbs, paf_stages=tp, cm_stages=tc)
    assert n_params(m) == paper_count(k, limbs, tp, tc)


def test_small_configuration_shapes_and_stage_counts():
    m = OpenPoseNet(backbone="small", paf_stages=3, cm_stages=1, stage_channels=64)
    assert m.stride == 8 and isinstance(m.backbone, SmallBackbone)
    pafs, cms = m(torch.rand(2, 3, 64, 64))
    assert len(pafs) == 3 and len(cms) == 1
    assert all(p.shape == (2, 38, 8, 8) for p in pafs) and cms[0].shape == (2, 17, 8, 8)
    p2, c2 = OpenPoseNet(4, 3, backbone="small", paf_stages=2, cm_stages=2, stage_channels=8, stage_blocks=2,
                         feature_channels=16, backbone_width=8)(torch.rand(1, 3, 48, 40))
    assert [p.shape for p in p2] == [(1, 6, 6, 5)] * 2 and [c.shape for c in c2] == [(1, 4, 6, 5)] * 2
    # stage parameters follow the same formula as the paper's, here at width 64 / hidden 256
    f, p, k = 128, 38, 17
    expected = stage_count(f, p, 64, 256) + 2 * stage_count(f + p, p, 64, 256) + stage_count(f + p, k, 64, 256)
    assert n_params(m.paf_stages) + n_params(m.cm_stages) == expected


def tiny(**kw):
    args = dict(num_keypoints=3, num_limbs=2, backbone="small", paf_stages=2, cm_stages=2, stage_channels=4,
                stage_blocks=2, feature_channels=8, backbone_width=4)
    args.update(kw)
    return OpenPoseNet(**args)


def test_stage_inputs_follow_eq_1_to_4():
    m = tiny()
    f, k, p = 8, 3, 4
    assert [s.in_channels for s in m.paf_stages] == [f, f + p]
    assert [s.in_channels for s in m.cm_stages] == [f + p, f + k + p]
    seen = {}
    m.backbone.register_forward_hook(lambda mod, inp, out: seen.__setitem__("F", out))
    for name, stage in [("paf2", m.paf_stages[1]), ("cm1", m.cm_stages[0]), ("cm2", m.cm_stages[1])]:
        stage.register_forward_pre_hook(lambda mod, inp, name=name: seen.__setitem__(name, inp[0]))
    pafs, cms = m(torch.rand(1, 3, 32, 32))
    feats = seen["F"]
    assert torch.equal(seen["paf2"], torch.cat([feats, pafs[0]], 1))          # phi^2(F, L^1)
    assert torch.equal(seen["cm1"], torch.cat([feats, pafs[-1]], 1))          # rho(F, L^{T_P})
    assert torch.equal(seen["cm2"], torch.cat([feats, cms[0], pafs[-1]], 1))  # rho(F, S^{t-1}, L^{T_P})


def test_no_weight_sharing_between_stages():
    m = tiny(paf_stages=3)
    ptrs = [s.blocks[1].convs[0][0].weight.data_ptr() for s in [*m.paf_stages, *m.cm_stages]]
    assert len(set(ptrs)) == len(ptrs)
    params = [id(q) for q in m.parameters()]
    assert len(params) == len(set(params))
    # later PAF stages have identical shapes but independent values
    a, b = m.paf_stages[1].head[-1].weight, m.paf_stages[2].head[-1].weight
    assert a.shape == b.shape and not torch.equal(a, b)


def test_gradients_follow_the_stage_order():
    m = tiny()
    pafs, cms = m(torch.rand(2, 3, 16, 16))
    pafs[0].sum().backward()  # the first PAF stage's own loss does not reach later stages
    assert m.paf_stages[0].head[-1].weight.grad.abs().sum() > 0
    assert m.paf_stages[1].head[-1].weight.grad is None and m.cm_stages[0].head[-1].weight.grad is None
    m.zero_grad(set_to_none=True)
    pafs, cms = m(torch.rand(2, 3, 16, 16))
    cms[-1].sum().backward()  # the last CM stage depends on every stage before it
    for s in [*m.paf_stages, *m.cm_stages]:
        assert s.head[-1].weight.grad.abs().sum() > 0


def test_conv_block_concatenates_three_convolutions():
    blk = ConvBlock(5, 4)
    x = torch.rand(1, 5, 6, 6)
    y = blk(x)
    a = blk.convs[0](x)
    b = blk.convs[1](a)
    assert y.shape == (1, 12, 6, 6) and blk.out_channels == 12
    assert torch.equal(y[:, :4], a) and torch.equal(y[:, 4:8], b) and torch.equal(y[:, 8:], blk.convs[2](b))
    assert isinstance(blk.convs[0][1], torch.nn.PReLU) and blk.convs[0][1].weight.numel() == 4
    st = Stage(5, 7, width=4, hidden=16, num_blocks=3)
    assert st(x).shape == (1, 7, 6, 6) and len(st.blocks) == 3


def test_options_relu_batchnorm_and_hidden():
    m = tiny(activation="relu", batch_norm=True, stage_hidden=10)
    assert not any(isinstance(x, torch.nn.PReLU) for x in m.modules())
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.paf_stages.modules())
    assert m.paf_stages[0].head[0].out_channels == 10
    assert tiny().paf_stages[0].head[0].out_channels == 16  # default 4 * stage_channels
    pafs, cms = m(torch.rand(2, 3, 16, 16))
    assert pafs[0].shape == (2, 4, 2, 2) and cms[0].shape == (2, 3, 2, 2)


def test_input_and_argument_errors():
    m = tiny()
    with pytest.raises(ValueError, match="multiples of 8"):
        m(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match="images"):
        m(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="backbone"):
        OpenPoseNet(backbone="resnet")
    with pytest.raises(ValueError, match="paf_stages"):
        OpenPoseNet(paf_stages=0)
    with pytest.raises(ValueError, match="cm_stages"):
        OpenPoseNet(cm_stages=0)
    with pytest.raises(ValueError, match="activation"):
        OpenPoseNet(activation="gelu")
    with pytest.raises(ValueError, match="stage_channels"):
        OpenPoseNet(stage_channels=0)


def test_load_vgg19_by_torchvision_index():
    m = OpenPoseNet(3, 2, paf_stages=1, cm_stages=1, stage_channels=4, stage_blocks=1)
    assert isinstance(m.backbone, VGG19Backbone) and len(m.backbone.vgg) == 23  # vgg19().features[:23]
    fake = {f"features.{k}": torch.full_like(v, 0.5) for k, v in m.backbone.vgg.state_dict().items()}
    fake["features.28.weight"] = torch.zeros(512, 512, 3, 3)  # conv5_1: not used
    fake["classifier.0.weight"] = torch.zeros(4096, 25088)
    assert m.load_vgg19(fake) == 20
    assert torch.all(m.backbone.vgg[21].weight == 0.5)  # conv4_2
    with pytest.raises(ValueError, match="lacks"):
        m.load_vgg19({"features.0.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(ValueError, match="vgg19"):
        tiny().load_vgg19(fake)


# ------------------------------------------------------------------------------ loss


def test_loss_values_sum_over_stages_and_average_over_batch():
    g = torch.Generator().manual_seed(0)
    paf_t, cm_t = torch.rand(2, 4, 3, 5, generator=g), torch.rand(2, 3, 3, 5, generator=g)
    total, logs = openpose_loss([paf_t, paf_t], [cm_t], paf_t, cm_t)
    assert total.item() == 0.0 and logs["loss"] == 0.0
    wrong = paf_t.clone()
    wrong[:, 1] += 0.5                             # error 0.5 on 15 pixels of one channel, per image
    total, logs = openpose_loss([wrong, paf_t], [cm_t + 1], paf_t, cm_t)
    assert logs["paf1"] == pytest.approx(15 * 0.25) and logs["paf2"] == 0.0
    assert logs["cm1"] == pytest.approx(3 * 15)    # sum over channels and pixels, / B
    assert logs["paf"] == pytest.approx(3.75) and logs["cm"] == pytest.approx(45)
    assert total.item() == pytest.approx(48.75) and logs["loss"] == pytest.approx(48.75)
    # the same images twice: same loss (a batch mean)
    twice = openpose_loss([torch.cat([wrong] * 2)], [torch.cat([cm_t + 1] * 2)], torch.cat([paf_t] * 2),
                          torch.cat([cm_t] * 2))[0]
    assert twice.item() == pytest.approx(48.75)


def test_masked_pixels_do_not_change_the_loss():
    g = torch.Generator().manual_seed(1)
    paf_t, cm_t = torch.rand(2, 4, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    pafs, cms = [torch.rand(2, 4, 4, 4, generator=g)], [torch.rand(2, 3, 4, 4, generator=g)]
    mask = torch.ones(2, 4, 4)
    mask[0, 1:3, 2] = 0
    mask[1, 0, 0] = 0
    base = openpose_loss(pafs, cms, paf_t, cm_t, mask)[0]
    changed_p, changed_c = pafs[0].clone(), cms[0].clone()
    changed_p[0, :, 1:3, 2] += 100.0
    changed_c[1, :, 0, 0] -= 50.0
    assert openpose_loss([changed_p], [changed_c], paf_t, cm_t, mask)[0].item() == pytest.approx(base.item())
    assert openpose_loss([changed_p], [changed_c], paf_t, cm_t)[0].item() > base.item() + 1000
    # a (B, 1, H, W) or bool mask works the same
    assert openpose_loss(pafs, cms, paf_t, cm_t, mask[:, None].bool())[0].item() == pytest.approx(base.item())
    # gradient: zero at masked pixels, 2 W (x - x*) / B elsewhere
    p = pafs[0].clone().requires_grad_(True)
    openpose_loss([p], cms, paf_t, cm_t, mask)[0].backward()
    assert torch.allclose(p.grad, 2 * mask[:, None] * (pafs[0] - paf_t) / 2)
    assert p.grad[0, :, 1:3, 2].abs().sum() == 0


def test_loss_gradcheck():
    g = torch.Generator().manual_seed(2)
    paf_t = torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64)
    cm_t = torch.rand(2, 1, 3, 3, generator=g, dtype=torch.float64)
    mask = (torch.rand(2, 3, 3, generator=g) > 0.3).double()
    p1 = torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    c1 = torch.rand(2, 1, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: openpose_loss([a, b], [c], paf_t, cm_t, mask)[0],
                                    (p1, p2, c1))


def test_loss_trains_the_tiny_network_end_to_end():
    torch.manual_seed(0)
    m = tiny()
    x = torch.rand(2, 3, 16, 16)
    paf_t, cm_t = torch.zeros(2, 4, 2, 2), torch.zeros(2, 3, 2, 2)
    cm_t[:, 1, 0, 1] = 1.0
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        total, logs = openpose_loss(*m(x), paf_t, cm_t, torch.ones(2, 2, 2))
        first = logs["loss"] if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert logs["loss"] < first / 2


def test_loss_errors():
    t = torch.zeros(2, 4, 3, 3)
    c = torch.zeros(2, 3, 3, 3)
    with pytest.raises(ValueError, match="at least one"):
        openpose_loss([], [c], t, c)
    with pytest.raises(ValueError, match="does not match"):
        openpose_loss([torch.zeros(2, 4, 3, 4)], [c], t, c)
    with pytest.raises(ValueError, match="cm stage 1"):
        openpose_loss([t], [torch.zeros(2, 2, 3, 3)], t, c)
    with pytest.raises(ValueError, match="mask"):
        openpose_loss([t], [c], t, c, torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="share"):
        openpose_loss([t], [c], torch.zeros(1, 4, 3, 3), c)
