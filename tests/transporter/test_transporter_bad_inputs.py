"""Bad inputs to kpedu.transporter and kpedu.data.videos: each raises an error that names the
argument, or gives the right answer (uint8 frames are scaled, as everywhere in kpedu)."""
import math

import numpy as np
import pytest
import torch

from kpedu.data.videos import make_object_videos, make_people_videos
from kpedu.transporter import (Transporter, detect, gaussian_maps, keypoint_coordinates, move_keypoint, std_pixels,
                               transport)
from kpedu.transporter import experiment as E


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Transporter(num_keypoints=2, width=0.25).eval()


@pytest.fixture(scope="module")
def clips():
    return make_object_videos(2, frames=4, size=16, seed=0)


@pytest.mark.parametrize("points, match", [
    (torch.tensor([[[1.0, math.nan]]]), "points"),
    (torch.zeros(2, 2), "points"),
    ("abc", "points"),
])
def test_gaussian_maps_points(points, match):
    with pytest.raises((TypeError, ValueError), match=match):
        gaussian_maps(points, (4, 4), 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": (0, 4)}, "size"), ({"size": "big"}, "size"), ({"sigma": 0.0}, "sigma"), ({"sigma": math.inf}, "sigma"),
])
def test_gaussian_maps_size_and_sigma(kwargs, match):
    args = {"points": torch.zeros(1, 1, 2), "size": (4, 4), "sigma": 1.0, **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        gaussian_maps(**args)


def test_integer_points_are_converted_not_truncated():
    a = gaussian_maps(torch.tensor([[[2, 3]]]), (6, 6), 1.0)
    b = gaussian_maps(torch.tensor([[[2.0, 3.0]]]), (6, 6), 1.0)
    assert torch.equal(a, b)


def test_keypoint_coordinates_and_std_pixels_refuse():
    with pytest.raises(TypeError, match="scores"):
        keypoint_coordinates(np.zeros((1, 1, 4, 4)))
    with pytest.raises(TypeError, match="scores"):
        keypoint_coordinates(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="gauss_std"):
        std_pixels(-0.1, 8)
    with pytest.raises((TypeError, ValueError), match="size"):
        std_pixels(0.1, (8,))


def test_uint8_frames_are_scaled(net, clips):
    frames = clips.frames[0]
    a = detect(net, frames)
    b = detect(net, frames.float() / 255)
    assert torch.allclose(a, b, atol=1e-5)


def test_detect_and_move_refuse(net, clips):
    with pytest.raises(ValueError, match="batch_size"):
        detect(net, clips.frames[0], batch_size=0)
    with pytest.raises((TypeError, ValueError), match="images"):
        detect(net, torch.full((2, 3, 16, 16), math.nan))   # not finite
    with pytest.raises(TypeError, match="model"):
        detect(torch.nn.Conv2d(3, 3, 1), clips.frames[0])
    with pytest.raises((TypeError, ValueError), match="offset"):
        move_keypoint(net, clips.frames[0, 0].float() / 255, 0, (1.0,))
    with pytest.raises(TypeError, match="target_maps"):
        transport(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4), None)


def test_protocol_functions_refuse(clips):
    k = torch.zeros(8, 2, 2)
    with pytest.raises(ValueError, match="radius"):
        E.hit_rates(k, clips, radius=0)
    with pytest.raises(ValueError, match="keypoints"):
        E.hit_rates(torch.zeros(3, 2, 2), clips)
    with pytest.raises((TypeError, ValueError), match="keypoints"):
        E.temporal_drift(torch.full((8, 2, 2), math.nan), clips)
    with pytest.raises(IndexError, match="points"):
        E.evaluate(k[:4], clips.subset(0), k[:4], clips.subset(1), points=[7])
    with pytest.raises(ValueError, match="n"):
        E.reconstruction_errors(E.make_model(width=0.25, num_keypoints=2), clips, n=0)


def test_video_arguments_refuse(clips):
    with pytest.raises(ValueError, match="height"):
        make_people_videos(1, frames=2, size=16, height=(0.8, 0.5))
    with pytest.raises(TypeError, match="height"):
        make_people_videos(1, frames=2, size=16, height=0.5)
    with pytest.raises(ValueError, match="radius"):
        make_object_videos(1, radius=0.9)
    with pytest.raises(IndexError, match="idx"):
        clips.subset(5)
    with pytest.raises(ValueError, match="n"):
        make_people_videos(0)


def test_recipe_arguments_refuse():
    with pytest.raises(ValueError, match="kind"):
        E.run_recipe(E.make_model(width=0.25), "ci", kind="faces")
    with pytest.raises(ValueError, match="steps"):
        E.train_transporter(E.make_model(width=0.25), make_object_videos(1, frames=2, size=16), steps=0)
    with pytest.raises(ValueError, match="width"):
        E.make_model(width=0)
