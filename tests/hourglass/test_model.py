"""Tests for kpedu.hourglass: the paper's architecture, counted independently, and the loss."""
import pytest
import torch

from kpedu.hourglass import Hourglass, Residual, StackedHourglass, stacked_heatmap_loss


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def residual_count(c_in, c_out):
    """Parameters of the pre-activation bottleneck, from its definition in the paper's code."""
    m = c_out // 2
    n = 2 * c_in + (c_in * m + m) + 2 * m + (9 * m * m + m) + 2 * m + (m * c_out + c_out)
    return n + (0 if c_in == c_out else c_in * c_out + c_out)


def model_count(stacks, c, k, depth=4):
    stem = (3 * 64 * 49 + 64) + 2 * 64 + residual_count(64, 128) + residual_count(128, 128) + residual_count(128, c)
    hourglass = (3 * depth + 1) * residual_count(c, c)
    per_stack = hourglass + residual_count(c, c) + (c * c + c) + 2 * c + (c * k + k)
    merges = (c * c + c) + (k * c + c)
    return stem + stacks * per_stack + (stacks - 1) * merges


@pytest.mark.parametrize("stacks,c,k", [(8, 256, 16), (2, 64, 17), (1, 32, 5)])
def test_parameter_count_matches_the_architecture(stacks, c, k):
    assert n_params(StackedHourglass(stacks, c, k)) == model_count(stacks, c, k)


def test_paper_model_size():
    # the paper's 8-stack MPII network: about 25.4 M parameters
    assert n_params(StackedHourglass(8, 256, 16)) == 25_434_112


def test_residual_and_hourglass_shapes():
    assert Residual(8, 16)(torch.rand(2, 8, 10, 10)).shape == (2, 16, 10, 10)
    assert isinstance(Residual(16, 16).skip, torch.nn.Identity)
    hg = Hourglass(3, 8)
    assert hg(torch.rand(1, 8, 16, 16)).shape == (1, 8, 16, 16)
    with pytest.raises(ValueError):
        Hourglass(0, 8)
    with pytest.raises(ValueError):
        Residual(8, 15)


def test_stacks_output_heatmaps_at_stride_4():
    m = StackedHourglass(num_stacks=3, channels=32, num_keypoints=17)
    out = m(torch.rand(2, 3, 128, 128))
    assert len(out) == 3 and all(o.shape == (2, 17, 32, 32) for o in out)
    with pytest.raises(ValueError, match="multiples of 64"):
        m(torch.rand(1, 3, 100, 128))
    with pytest.raises(ValueError, match="images"):
        m(torch.rand(1, 1, 128, 128))


def test_no_weight_sharing_between_stacks():
    m = StackedHourglass(num_stacks=2, channels=16, num_keypoints=4)
    a, b = m.hourglasses[0].keep.conv1.weight, m.hourglasses[1].keep.conv1.weight
    assert a.data_ptr() != b.data_ptr()


def test_intermediate_supervision_reaches_the_first_stack():
    m = StackedHourglass(num_stacks=2, channels=16, num_keypoints=4)
    target = torch.rand(2, 4, 16, 16)
    out = m(torch.rand(2, 3, 64, 64))  # batch 2: the 1x1 bottom of the hourglass needs it for BN
    stacked_heatmap_loss(out[:1], target).backward()  # the first stack's own loss
    assert m.heads[0].weight.grad.abs().sum() > 0
    assert m.heads[1].weight.grad is None  # the second head is not on that path


def test_loss_masks_and_sums_over_stacks():
    target = torch.rand(2, 3, 8, 8)
    assert stacked_heatmap_loss([target, target], target).item() == 0.0
    wrong = target.clone()
    wrong[:, 1] += 1.0
    total, per = stacked_heatmap_loss([wrong, target], target, per_stack=True)
    assert per[0] == pytest.approx(1.0 / 3) and per[1] == 0.0 and total.item() == pytest.approx(1.0 / 3)
    w = torch.ones(2, 3)
    w[:, 1] = 0
    assert stacked_heatmap_loss([wrong], target, w).item() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        stacked_heatmap_loss([], target)
    with pytest.raises(ValueError, match="does not match"):
        stacked_heatmap_loss([torch.rand(2, 3, 4, 4)], target)


# ---- num_modules and stem_channels (the ablation's same-budget one-stack model)


def general_count(stacks, c, k, depth=4, num_modules=1, stem=(64, 128)):
    """``model_count`` with ``num_modules`` residual modules at every residual position
    (nModules in the authors' hg.lua) and a stem of widths ``(a, b)``."""
    a, b = stem
    stem_n = (3 * a * 49 + a) + 2 * a + residual_count(a, b) + residual_count(b, b) + residual_count(b, c)
    r = num_modules * residual_count(c, c)
    per_stack = (3 * depth + 1) * r + r + (c * c + c) + 2 * c + (c * k + k)
    merges = (c * c + c) + (k * c + c)
    return stem_n + stacks * per_stack + (stacks - 1) * merges


def test_general_count_reduces_to_the_paper_formula():
    for stacks, c, k in [(8, 256, 16), (2, 64, 17), (1, 32, 5)]:
        assert general_count(stacks, c, k) == model_count(stacks, c, k)
    assert general_count(8, 256, 16) == 25_434_112


@pytest.mark.parametrize("stacks,c,k,depth,nm,stem", [
    (1, 64, 17, 4, 2, (32, 64)),
    (2, 64, 17, 4, 1, (32, 64)),
    (2, 96, 17, 4, 1, (32, 64)),   # the chapter's model (RECIPE["model"])
    (1, 32, 5, 2, 3, (16, 32)),
    (3, 16, 4, 3, 2, (8, 16)),
    (2, 32, 17, 4, 1, (64, 128)),
])
def test_parameter_count_with_modules_and_stem(stacks, c, k, depth, nm, stem):
    m = StackedHourglass(stacks, c, k, depth=depth, num_modules=nm, stem_channels=stem)
    assert n_params(m) == general_count(stacks, c, k, depth, nm, stem)
    assert m.num_modules == nm and m.stem_channels == stem
    assert m.stem[0].out_channels == stem[0] and m.stem[3].conv3.out_channels == stem[1]


def test_one_stack_with_two_modules_matches_two_stacks_in_parameters():
    # the ablation's premise: both models have (nearly) the same parameter budget
    one = n_params(StackedHourglass(1, 64, 17, num_modules=2, stem_channels=(32, 64)))
    two = n_params(StackedHourglass(2, 64, 17, stem_channels=(32, 64)))
    assert one == general_count(1, 64, 17, num_modules=2, stem=(32, 64))
    assert two == general_count(2, 64, 17, stem=(32, 64))
    assert abs(one - two) / two < 0.03


def test_num_modules_layout_and_forward():
    one = StackedHourglass(1, 16, 4, depth=2, num_modules=1, stem_channels=(8, 16))
    assert isinstance(one.hourglasses[0].keep, Residual)  # the paper's parameter names are kept
    assert "hourglasses.0.keep.conv1.weight" in one.state_dict()
    m = StackedHourglass(1, 16, 4, depth=2, num_modules=2, stem_channels=(8, 16))
    hg = m.hourglasses[0]
    for pos in (hg.keep, hg.down, hg.up, hg.inner.keep, hg.inner.inner, m.features[0][0]):
        assert isinstance(pos, torch.nn.Sequential) and len(pos) == 2
        assert all(isinstance(r, Residual) for r in pos)
    out = m(torch.rand(2, 3, 64, 64))
    assert len(out) == 1 and out[0].shape == (2, 4, 16, 16)
    assert Hourglass(2, 8, num_modules=3)(torch.rand(1, 8, 8, 8)).shape == (1, 8, 8, 8)


def test_num_modules_and_stem_errors():
    with pytest.raises(ValueError, match="num_modules"):
        StackedHourglass(1, 16, 4, num_modules=0)
    with pytest.raises(ValueError, match="num_modules"):
        Hourglass(2, 8, num_modules=0)
    with pytest.raises(ValueError, match="channels"):
        StackedHourglass(1, 15, 4)
    with pytest.raises(ValueError, match="channels"):
        StackedHourglass(1, 0, 4)
    for stem in [(32,), (32, 64, 128), (31, 64), (32, 63), (0, 64), (32, 0)]:
        with pytest.raises(ValueError, match="stem_channels"):
            StackedHourglass(1, 16, 4, stem_channels=stem)
    with pytest.raises(ValueError, match="num_stacks"):
        StackedHourglass(0, 16, 4)
