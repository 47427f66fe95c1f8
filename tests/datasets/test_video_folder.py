"""kpedu.datasets.VideoFolder: videos stored as folders of frames, tested on fixture clips
written in that layout."""
import warnings

import pytest
import torch

from kpedu.datasets import DatasetLayoutError, VideoFolder, fixtures


@pytest.fixture()
def folder(tmp_path):
    info = fixtures.write_video_folder(tmp_path / "videos", clips=3, frames=12, size=40, seed=1)
    return tmp_path / "videos", info


def test_clips_frames_and_natural_order(folder):
    root, info = folder
    v = VideoFolder(root, size=40)
    assert v.clip_names == info["clips"] and len(v) == 36
    assert [p.name for p in v.clips[0]][:3] == ["frame0.png", "frame1.png", "frame2.png"]
    assert v.clips[0][10].name == "frame10.png"          # natural order: 2 before 10
    item = v[13]
    assert item["image"].shape == (3, 40, 40) and int(item["clip"]) == 1 and int(item["index"]) == 13
    assert torch.equal((item["image"] * 255).round().to(torch.uint8), info["frames"][1, 1])   # PNG is lossless


def test_materialise_is_a_videoset_and_resizes(folder):
    root, info = folder
    vs = VideoFolder(root, size=32).materialise(frames=8)
    assert vs.frames.shape == (3, 8, 3, 32, 32) and vs.frames.dtype == torch.uint8
    assert vs.points.shape == (3, 8, 0, 2) and vs.kind == "frames" and vs.info["clips"] == info["clips"]
    p = vs.sample_pairs(4, torch.Generator().manual_seed(0))
    assert p["source"].shape == (4, 3, 32, 32)


def test_pair_batches_stream_from_disk(folder):
    root, info = folder
    v = VideoFolder(root, size=40)
    it = v.pair_batches(5, seed=3, max_gap=2, clips=[0, 1])
    b = next(it)
    assert b["source"].shape == b["target"].shape == (5, 3, 40, 40) and b["source"].max() <= 1
    flat = info["frames"][:2].reshape(-1, 3, 40, 40).float() / 255
    for x in (b["source"], b["target"]):          # every frame comes from the selected clips
        d = (x[:, None] - flat[None]).abs().flatten(2).amax(-1)
        assert (d.amin(1) < 1e-6).all()
    again = next(VideoFolder(root, size=40).pair_batches(5, seed=3, max_gap=2, clips=[0, 1]))
    assert torch.equal(again["source"], b["source"])


def test_unreadable_frames_are_reported(tmp_path):
    fixtures.write_video_folder(tmp_path / "v", clips=2, frames=4, size=24, corrupt=2)
    v = VideoFolder(tmp_path / "v", size=24)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        vs = v.materialise()            # the last clip has 6 files, 2 unreadable: cut to 4 frames, all readable
        assert vs.frames.shape[:2] == (2, 4)
        with pytest.raises(RuntimeError, match="no clip of 6 readable frames"):
            v.materialise(frames=6)     # the short clip is left out, the other needs its unreadable frames
    assert sorted(v.skipped) == ["clip1/frame4.png"] and any("unreadable" in str(x.message) or "skipped" in str(x.message) for x in w)


def test_layout_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no clip"):
        VideoFolder(tmp_path / "empty")
    with pytest.raises((FileNotFoundError, DatasetLayoutError)):
        VideoFolder(tmp_path / "missing")
    fixtures.write_video_folder(tmp_path / "v", clips=1, frames=3, size=16)
    with pytest.raises(ValueError, match="size"):
        VideoFolder(tmp_path / "v", size=2)
    with pytest.raises(IndexError, match="clips"):
        VideoFolder(tmp_path / "v", size=16).materialise(clips=[4])
