"""HPatches sequences and image-folder pairs (kpedu.datasets.hpatches, kpedu.datasets.folder)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from kpedu.data.pairs import PairSet, warp_image
from kpedu.datasets import (
    D2NET_EXCLUDED,
    DatasetLayoutError,
    HPatchesSequences,
    ImageFolderPairs,
    hpatches_sets,
    materialise,
    read_homography,
    read_name_list,
)
from kpedu.datasets import fixtures as F


@pytest.fixture(scope="module")
def hpatches(tmp_path_factory):
    root = tmp_path_factory.mktemp("hpatches")
    return root, F.write_hpatches(root, sequences=("i_fixture", "v_fixture", "v_second"))


def _residual(a: torch.Tensor, b: torch.Tensor, H) -> float:
    """Mean |warp(a by H) - b| over the pixels that the warp fills (zeros elsewhere)."""
    warped = warp_image(a, H, tuple(b.shape[-2:]), padding_mode="zeros")
    inside = warp_image(torch.ones_like(a), H, tuple(b.shape[-2:]), padding_mode="zeros")[0] > 0.999
    return float((warped - b).abs().mean(0)[inside].mean())


def test_sequences_pairs_and_homographies(hpatches):
    root, truth = hpatches
    view = HPatchesSequences(root, "viewpoint")
    assert view.sequences == ["v_fixture", "v_second"] and len(view) == 10
    assert view.pairs[:2] == [("v_fixture", 2), ("v_fixture", 3)]
    illum = HPatchesSequences(root / "hpatches-sequences-release", "illumination")  # the release folder itself
    assert len(illum) == 5 and len(HPatchesSequences(root)) == 15
    for i, (seq, j) in enumerate(view.pairs):
        np.testing.assert_allclose(view.homography(i), truth[seq]["H"][j - 2], rtol=1e-8)
        a, b, H = view.pair(i)
        assert tuple(a.shape[-2:]) == truth[seq]["sizes"][0] and tuple(b.shape[-2:]) == truth[seq]["sizes"][j - 1]
        assert _residual(a, b, H) < 0.02 < _residual(a, b, np.eye(3))  # H maps view 1 onto view j
    assert np.allclose(illum.pair(0)[2], np.eye(3))
    item = view[3]
    assert set(item) == {"image1", "image2", "H", "index"} and item["H"].dtype == torch.float64


def test_max_size_and_pairset_keep_the_geometry(hpatches):
    root, _ = hpatches
    small = HPatchesSequences(root, "viewpoint", max_size=40)
    a, b, H = small.pair(1)
    assert max(a.shape[-2:]) == 40 and max(b.shape[-2:]) <= 40
    assert _residual(a, b, H) < 0.04 < _residual(a, b, np.eye(3))
    ps = small.to_pairset(48)
    assert isinstance(ps, PairSet) and ps.image1.shape == (10, 3, 48, 48) and ps.kind == "viewpoint"
    assert ps.photo[:5] == ["v_fixture"] * 5
    a, b, H = ps.pair(2)
    assert _residual(a, b, H) < 0.05 < _residual(a, b, np.eye(3))
    with pytest.raises(ValueError, match="to_pairset needs kind='viewpoint' or kind='illumination'"):
        HPatchesSequences(root).to_pairset(32)
    assert len(materialise(HPatchesSequences(root, "illumination"), n=2)) == 2


def test_the_d2net_evaluation_takes_the_sets(hpatches):
    from kpedu.d2net.experiment import evaluate

    root, _ = hpatches
    sets = hpatches_sets(root)
    assert set(sets) == {"viewpoint", "illumination"}
    out = evaluate(None, sets, methods=("sift",))
    mma = out["viewpoint"]["sift"]["mma"]
    assert len(mma) == 10 and mma[-1] > 0.5  # SIFT matches agree with the homographies


def test_exclusions_and_errors(hpatches, tmp_path):
    root, _ = hpatches
    assert len(D2NET_EXCLUDED) == 8 and "v_talent" in D2NET_EXCLUDED and "i_dc" in D2NET_EXCLUDED
    assert HPatchesSequences(root, "viewpoint", exclude=("v_second",)).sequences == ["v_fixture"]
    assert HPatchesSequences(root, sequences=["v_second"]).sequences == ["v_second"]
    with pytest.raises(ValueError, match="are not all sequences"):
        HPatchesSequences(root, sequences=["v_nothing"])
    with pytest.raises(DatasetLayoutError, match=r"no i_\* or v_\* sequence folders under .*expected the HPatches"):
        HPatchesSequences(tmp_path)
    F.write_hpatches(tmp_path, sequences=("v_broken",))
    (tmp_path / "hpatches-sequences-release" / "v_broken" / "H_1_4").unlink()
    with pytest.raises(DatasetLayoutError, match="v_broken has no H_1_4"):
        HPatchesSequences(tmp_path)
    bad = tmp_path / "H"
    bad.write_text("1 0 0\n0 1 0\n")
    with pytest.raises(ValueError, match="three lines of three finite numbers"):
        read_homography(bad)


def test_a_corrupt_view_is_skipped(tmp_path):
    F.write_hpatches(tmp_path, sequences=("v_a",))
    F.corrupt_file(tmp_path / "hpatches-sequences-release" / "v_a" / "3.ppm")
    ds = HPatchesSequences(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipped image v_a/3.ppm"):
        assert int(ds[1]["index"]) == 2
    assert ds.skipped == ["v_a/3.ppm"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    return root, F.write_image_folder(root, n=5)


def test_folder_pairs_are_deterministic_and_shaped_like_the_chapters(folder):
    root, paths = folder
    ds = ImageFolderPairs(root, size=48, pairs_per_image=2)
    assert ds.files == paths and len(ds) == 10  # README.txt is not an image
    a, b = ds[3], ImageFolderPairs(root, size=48, pairs_per_image=2)[3]
    assert set(a) == {"image1", "image2", "H", "index"} and a["image1"].shape == (3, 48, 48)
    assert torch.equal(a["image1"], b["image1"]) and torch.equal(a["H"], b["H"])
    assert not torch.equal(ds[2]["H"], ds[3]["H"])  # two pairs of one photograph differ
    batches = ds.batches(3, seed=5)
    first = batches.batch(7)
    assert first["image1"].shape == (3, 3, 48, 48) and first["H"].shape == (3, 3, 3) and int(first["step"]) == 7
    assert torch.equal(first["image2"], ds.batches(3, seed=5).batch(7)["image2"])  # resumable
    ps = ds.materialise(4)
    assert isinstance(ps, PairSet) and ps.photo[:2] == [paths[0].relative_to(root).as_posix()] * 2
    assert ps.kind == "train" and ps.image1.dtype == torch.uint8


def test_folder_pairs_train_the_d2net_loss(folder):
    from kpedu.d2net.experiment import d2_loss_fn, make_model

    root, _ = folder
    torch.manual_seed(0)
    model = make_model(0.125)
    loss, logs = d2_loss_fn(model, ImageFolderPairs(root, size=64).batches(2).batch(0))
    assert torch.isfinite(loss) and "pos" in logs


def test_folder_errors_and_corrupt_photographs(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no images .* under .*expected a folder of photographs"):
        ImageFolderPairs(tmp_path)
    paths = F.write_image_folder(tmp_path, n=3)
    F.corrupt_file(paths[0])
    ds = ImageFolderPairs(tmp_path, size=32)
    name = paths[0].relative_to(tmp_path).as_posix()
    with pytest.warns(RuntimeWarning, match=f"skipped image {name}"):
        batch = ds.batches(4).batch(0)
    assert batch["image1"].shape[0] == 4 and ds.skipped == [name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.batches(4).batch(1)  # known to be unreadable: not read, not announced again
    with pytest.warns(RuntimeWarning, match=r"1 unreadable image\(s\) skipped in all"):
        assert len(ds.materialise()) == 2
    for p in paths[1:]:
        F.corrupt_file(p)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="none of the 3 photographs"):
        ImageFolderPairs(tmp_path, size=32).batches(2).batch(0)
    with pytest.raises(ValueError, match="kind must be one of"):
        ImageFolderPairs(tmp_path, kind="stereo")


def test_split_lists_in_text_and_json(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\nx.jpg 1 2\n\ny.jpg\nx.jpg\n")
    assert read_name_list(tmp_path / "a.txt") == ["x.jpg", "y.jpg"]
    (tmp_path / "b.json").write_text(json.dumps(["images/z.jpg", {"image": "w.jpg"}]))
    assert read_name_list(tmp_path / "b.json") == ["z.jpg", "w.jpg"]
    (tmp_path / "c.json").write_text(json.dumps([3]))
    with pytest.raises(ValueError, match="entry 0 is neither an image name"):
        read_name_list(tmp_path / "c.json")
    with pytest.raises(TypeError, match="dataset must be one of the kpedu.datasets loaders"):
        materialise([1, 2, 3])


def test_scan_finds_every_unreadable_image_up_front(tmp_path):
    F.write_hpatches(tmp_path, sequences=("i_a", "v_b"))
    F.corrupt_file(tmp_path / "hpatches-sequences-release" / "v_b" / "5.ppm")
    F.corrupt_file(tmp_path / "hpatches-sequences-release" / "i_a" / "2.ppm")
    ds = HPatchesSequences(tmp_path)
    with pytest.warns(RuntimeWarning) as caught:
        assert ds.scan() == ["i_a/2.ppm", "v_b/5.ppm"]
    assert [str(w.message).split(":")[1].strip()[:22] for w in caught] == [
        "skipped image i_a/2.pp", "skipped image v_b/5.pp", "2 unreadable image(s) "]
    assert ds.skipped == ["i_a/2.ppm", "v_b/5.ppm"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert int(ds[8]["index"]) == 9  # v_b's pair (1, 5) is replaced, without a new warning
