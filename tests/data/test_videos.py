"""kpedu.data.videos: the Transporter chapter's clips with exact ground truth."""
import numpy as np
import pytest
import torch

from kpedu.data.videos import OBJECT_SHAPES, PEOPLE_POINTS, VideoSet, make_object_videos, make_people_videos


@pytest.fixture(scope="module")
def people():
    return make_people_videos(3, frames=12, size=48, seed=5)


@pytest.fixture(scope="module")
def objects():
    return make_object_videos(3, frames=20, size=40, seed=2, num_objects=3, speed=0.08)


def test_people_shapes_and_dtypes(people):
    assert people.frames.shape == (3, 12, 3, 48, 48) and people.frames.dtype == torch.uint8
    assert people.points.shape == (3, 12, 17, 2) and people.points.dtype == torch.float32
    assert people.visible.shape == (3, 12, 17) and people.names == PEOPLE_POINTS
    assert people.kind == "people" and len(people) == 3 and people.num_frames == 12
    assert ((people.scale > 0.5 * 48) & (people.scale < 0.75 * 48)).all()


def test_a_clip_depends_only_on_seed_and_index(people):
    again = make_people_videos(2, frames=12, size=48, seed=5)
    assert torch.equal(again.frames, people.frames[:2]) and torch.equal(again.points, people.points[:2])
    other = make_people_videos(1, frames=12, size=48, seed=6)
    assert not torch.equal(other.frames[0], people.frames[0])


def test_people_move_smoothly_and_the_background_stays(people):
    step = (people.points[:, 1:] - people.points[:, :-1]).norm(dim=-1)
    assert step.max() < 0.2 * 48           # no jumps between frames
    assert step.mean() > 0.05              # but they do move
    # pixels far from every joint in every frame are background: unchanged over the clip
    f = people.frames[0].float()
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    d = ((xs[None, None] - people.points[0, :, :, 0, None, None]) ** 2
         + (ys[None, None] - people.points[0, :, :, 1, None, None]) ** 2).sqrt().amin((0, 1))
    far = d > 0.3 * 48
    assert far.sum() > 100
    assert (f[:, :, far] - f[:1, :, far]).abs().max() <= 1


def test_the_person_is_drawn_where_its_joints_are():
    # a fast walker leaves the pixel at its first torso centre: the colour there changes
    fast = make_people_videos(2, frames=8, size=48, seed=1, speed=0.05)
    for v in range(2):
        f = fast.frames[v].float()
        c = fast.points[v, :, [5, 6, 11, 12]].mean(1).round().long()      # (T, 2) torso centres
        assert (c[0] - c[-1]).abs().max() > 8
        assert (f[0, :, c[0, 1], c[0, 0]] - f[-1, :, c[0, 1], c[0, 0]]).abs().max() > 10


def test_objects_are_where_their_centres_say(objects):
    f = objects.frames.float() / 255
    v, t, k = 1, 7, 2
    c = objects.points[v, t, k].round().long()
    centre = f[v, t, :, c[1], c[0]]
    # each object has its own saturated colour; the background is squeezed into [0.2, 0.8]
    assert centre.max() - centre.min() > 0.5
    assert objects.names == tuple(f"{OBJECT_SHAPES[i % 3]}_{i}" for i in range(3))


def test_objects_bounce_and_stay_inside(objects):
    r = 0.09 * 40
    p = objects.points
    assert (p >= r - 1e-4).all() and (p <= 40 - 1 - r + 1e-4).all()
    step = (p[:, 1:] - p[:, :-1]).norm(dim=-1)
    assert step.max() <= 0.08 * 40 * 1.0001
    assert objects.visible.all()


def test_flat_images_subset(people):
    flat = people.flat()
    assert flat["images"].shape == (36, 3, 48, 48) and torch.equal(flat["images"], people.images)
    assert torch.equal(flat["points"][13], people.points[1, 1])
    assert torch.equal(flat["clip"], torch.arange(3).repeat_interleave(12))
    sub = people.subset(slice(1, 3))
    assert len(sub) == 2 and torch.equal(sub.frames[0], people.frames[1])
    one = people.subset(2)
    assert len(one) == 1 and torch.equal(one.points[0], people.points[2])


@pytest.mark.parametrize("gap", [1, 3, None, 50])
def test_pairs_come_from_one_clip_at_most_gap_apart(people, gap):
    g = torch.Generator().manual_seed(0)
    p = people.sample_pairs(200, g, max_gap=gap)
    d = (p["t_target"] - p["t_source"]).abs()
    assert (d >= 1).all() and (d <= (11 if gap is None else min(gap, 11))).all()
    assert ((p["t_target"] >= 0) & (p["t_target"] < 12)).all()
    i = 17
    assert torch.equal(p["source"][i], people.frames[p["clip"][i], p["t_source"][i]].float() / 255)
    assert torch.equal(p["target_points"][i], people.points[p["clip"][i], p["t_target"][i]])
    assert p["source"].dtype == torch.float32 and p["source"].max() <= 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="frames"):
        make_people_videos(1, frames=1)
    with pytest.raises((TypeError, ValueError), match="size"):
        make_people_videos(1, size=8)
    with pytest.raises(ValueError, match="background"):
        make_object_videos(1, background="sky")
    with pytest.raises(ValueError, match="num_objects"):
        make_object_videos(1, num_objects=0)
    with pytest.raises(ValueError, match="speed"):
        make_people_videos(1, speed=-0.1)
    v = make_object_videos(1, frames=2, size=16)
    with pytest.raises(ValueError, match="n"):
        v.sample_pairs(0)
    with pytest.raises(ValueError, match="max_gap"):
        v.sample_pairs(2, max_gap=0)
    assert isinstance(v, VideoSet)
