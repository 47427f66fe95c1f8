"""Tests for hourglass inference: flip testing is exactly flip-equivariant; decoding
recovers keypoints in image pixels."""
import torch

from kpedu.codecs import GaussianHeatmapCodec
from kpedu.data import COCO17
from kpedu.hourglass import StackedHourglass, predict_heatmaps, predict_keypoints

PERM = COCO17.flip_permutation


def test_flip_tested_output_is_flip_equivariant():
    """For any network, flip testing gives F(mirror(x)) = relabel(mirror(F(x)))."""
    torch.manual_seed(0)
    model = StackedHourglass(2, 16, 17)
    x = torch.rand(2, 3, 64, 64)
    f = predict_heatmaps(model, x, flip_test=True, flip_permutation=PERM)
    f_mirror = predict_heatmaps(model, x.flip(-1), flip_test=True, flip_permutation=PERM)
    assert torch.allclose(f_mirror, f.flip(-1)[:, torch.as_tensor(PERM)], atol=1e-5)
    plain = predict_heatmaps(model, x)
    assert not torch.allclose(plain, f, atol=1e-3)  # flip testing changes an untrained net's output
    assert model.training  # restored


class Oracle(torch.nn.Module):
    """A stand-in network whose last stack outputs the targets of known keypoints."""

    def __init__(self, heatmaps):
        super().__init__()
        self.heatmaps = heatmaps
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return [self.heatmaps * 0, self.heatmaps + self.w]


def test_predict_keypoints_recovers_image_coordinates():
    codec = GaussianHeatmapCodec(128, 32, sigma=1.5)
    kp = torch.rand(3, 17, 2) * 100 + 14
    target, _ = codec.encode(kp)
    pred, scores = predict_keypoints(Oracle(target), torch.rand(3, 3, 128, 128), codec)
    err = (pred - kp).norm(dim=-1)
    assert err.max() < 4 * 0.75 and err.mean() < 4 * 0.3
    assert torch.allclose(scores, target.flatten(-2).max(-1).values)
