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
