"""OpenPose parsing (kpedu.openpose.parse) on ground-truth-perfect maps built here.

The confidence maps and PAFs are drawn directly with numpy (a Gaussian per person and
keypoint, max over people; unit vectors on a band of half-width 1 around each limb,
averaged where limbs of one type overlap), independently of kpedu.openpose.targets.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch

from kpedu.codecs import heatmap_to_image
from kpedu.data import COCO17
from kpedu.openpose.parse import (Person, _Assembly, find_peaks, limb_scores, match_limb, parse, parse_batch,
                                  skeleton_tree)

K = 17
LIMBS = COCO17.limbs
C = len(LIMBS)

# a standing person seen from the front (the person's left on the image right), heatmap pixels
TEMPLATE = np.array([
    [0.0, -13.0],                   # nose
    [1.6, -14.6], [-1.6, -14.6],    # eyes
    [3.2, -13.6], [-3.2, -13.6],    # ears
    [5.2, -9.0], [-5.2, -9.0],      # shoulders
    [7.1, -3.1], [-7.1, -3.1],      # elbows
    [8.2, 3.1], [-8.2, 3.1],        # wrists
    [3.1, 2.2], [-3.1, 2.2],        # hips
    [3.6, 9.1], [-3.6, 9.1],        # knees
    [4.1, 16.1], [-4.1, 16.1],      # ankles
])


def render(people, size, visible=None, sigma=1.0, width=1.0, limbs=LIMBS, peak=1.0, paf_scale=1.0):
    """Heatmaps (K, H, W) and PAFs (2C, H, W) for ``people`` (N, K, 2) in heatmap pixels."""
    people = np.asarray(people, dtype=np.float64).reshape(-1, K, 2)
    n = len(people)
    vis = np.ones((n, K), bool) if visible is None else np.asarray(visible, bool).reshape(n, K)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    heat = np.zeros((K, h, w))
    for i in range(n):
        for j in range(K):
            if vis[i, j]:
                x, y = people[i, j]
                g = peak * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
                heat[j] = np.maximum(heat[j], g)
    pafs = np.zeros((2 * len(limbs), h, w))
    for c, (j1, j2) in enumerate(limbs):
        acc, count = np.zeros((2, h, w)), np.zeros((h, w))
        for i in range(n):
            if not (vis[i, j1] and vis[i, j2]):
                continue
            a, b = people[i, j1], people[i, j2]
            length = np.linalg.norm(b - a)
            v = (b - a) / length
            along = (xs - a[0]) * v[0] + (ys - a[1]) * v[1]
            across = -(xs - a[0]) * v[1] + (ys - a[1]) * v[0]
            on = (along >= 0) & (along <= length) & (np.abs(across) <= width)
            acc[0][on] += v[0]
            acc[1][on] += v[1]
            count += on
        pafs[2 * c:2 * c + 2] = paf_scale * acc / np.maximum(count, 1)
    return torch.tensor(heat, dtype=torch.float32), torch.tensor(pafs, dtype=torch.float32)


def grid_people(rows, cols, dx=22.0, dy=36.0, jitter=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = [(12 + dx * c, 19 + dy * r) for r in range(rows) for c in range(cols)]
    people = np.stack([TEMPLATE + np.array(ctr) + rng.uniform(-jitter, jitter, TEMPLATE.shape)
                       for ctr in centres])
    return people, (int(40 + dy * (rows - 1)), int(24 + dx * (cols - 1)))


def assign(found: list[Person], truth: np.ndarray, tol: float = 0.5, stride=1):
    """Index of the ground-truth person each found person matches (all found parts within tol)."""
    truth_img = heatmap_to_image(truth, stride)
    out = []
    for person in found:
        vis = person.visible.numpy()
        d = np.linalg.norm(person.keypoints.numpy()[None, vis] - truth_img[:, vis], axis=-1).max(axis=1)
        out.append(int(np.argmin(d)) if d.min() <= tol else -1)
    return out


# ----------------------------------------------------------------------------- peaks


def test_find_peaks_positions_scores_and_plateau():
    heat = torch.zeros(3, 12, 16)
    heat[0, 5, 7] = 0.9
    heat[0, 5, 6], heat[0, 5, 8] = 0.3, 0.6       # higher right neighbour -> x + 0.25
    heat[0, 2, 2] = 0.5
    heat[1, 8, 3:5] = 0.7                         # a plateau of two equal pixels -> one peak
    heat[2, 1, 1] = 0.1                           # not above the threshold
    peaks = find_peaks(heat, threshold=0.1)
    assert len(peaks) == 3 and all(p.shape[1] == 3 for p in peaks)
    assert torch.allclose(peaks[0][:, 2], torch.tensor([0.9, 0.5]))      # by decreasing score
    assert torch.allclose(peaks[0][0, :2], torch.tensor([7.25, 5.0]))
    assert torch.allclose(find_peaks(heat, refine=False)[0][0, :2], torch.tensor([7.0, 5.0]))
    assert len(peaks[1]) == 1 and len(peaks[2]) == 0
    assert len(find_peaks(heat, nms_kernel=1)[0]) == 4                     # no suppression: all 4 pixels
    for bad in (2, 0, 1.0):
        with pytest.raises(ValueError, match="nms_kernel"):
            find_peaks(heat, nms_kernel=bad)
    with pytest.raises(ValueError, match="heatmaps"):
        find_peaks(torch.zeros(12, 16))


def test_find_peaks_subpixel_gaussians():
    rng = np.random.default_rng(1)
    truth = rng.uniform(4, 28, size=(1, K, 2))
    heat, _ = render(truth, (32, 32), sigma=1.5)
    peaks = find_peaks(heat)
    assert [len(p) for p in peaks] == [1] * K
    err = np.linalg.norm(torch.stack([p[0, :2] for p in peaks]).numpy() - truth[0], axis=1)
    assert err.max() <= 0.36  # quarter offset: at most 0.25 per axis


# ----------------------------------------------------------------------------- line integral


def test_limb_scores_sign_ratio_and_prior():
    size = (32, 32)
    a, b = np.array([[6.0, 10.0]]), np.array([[26.0, 10.0]])
    people = np.zeros((1, K, 2))
    people[0, 5], people[0, 6] = a[0], b[0]
    _, pafs = render(people, size, visible=np.isin(np.arange(K), [5, 6]))
    c = LIMBS.index((5, 6))
    scores, ratio = limb_scores(pafs[2 * c], pafs[2 * c + 1], a, b)
    assert scores.shape == ratio.shape == (1, 1)
    assert scores.item() == pytest.approx(1.0, abs=1e-5) and ratio.item() == 1.0
    back, back_ratio = limb_scores(pafs[2 * c], pafs[2 * c + 1], b, a)   # the field points the other way
    assert back.item() == pytest.approx(-1.0, abs=1e-5) and back_ratio.item() == 0.0
    nearest, _ = limb_scores(pafs[2 * c], pafs[2 * c + 1], a, b, interpolation="nearest")
    assert nearest.item() == pytest.approx(1.0, abs=1e-5)
    # distance prior: a 20 px limb in a map 30 px high is longer than half the height
    prior, _ = limb_scores(pafs[2 * c], pafs[2 * c + 1], a, b, image_height=30)
    assert prior.item() == pytest.approx(1.0 + (0.5 * 30 / 20 - 1), abs=1e-5)
    # all pairs at once, empty candidate sets, coincident candidates
    s, r = limb_scores(pafs[2 * c], pafs[2 * c + 1], np.vstack([a, b]), np.vstack([b, a, a]))
    assert s.shape == (2, 3) and s[0, 1] == 0 and s[1, 1].item() == pytest.approx(-1.0, abs=1e-5)
    assert limb_scores(pafs[0], pafs[1], np.zeros((0, 3)), b)[0].shape == (0, 1)
    with pytest.raises(ValueError, match="num_samples"):
        limb_scores(pafs[0], pafs[1], a, b, num_samples=0)
    with pytest.raises(ValueError, match="same shape"):
        limb_scores(pafs[0], pafs[1, :5], a, b)
    with pytest.raises(ValueError, match="cand_a"):
        limb_scores(pafs[0], pafs[1], np.zeros((2, 1)), b)


def test_line_integral_beats_midpoint_test():
    """Figure 5 of the paper, as a single limb type. Person 2's limb runs from A2 (20, 20)
    down to B2 (20, 40) and person 3's limb crosses it at its middle (20, 30), where the
    averaged PAF (0.5, 0.5) only half-supports either. Person 1's elbow A1 (20, 4) sits on
    the extension of person 2's limb and its own wrist is hidden, so it has no field. The
    midpoint of the wrong pair (A1, B2) lies on person 2's limb, in its direction: the
    one-sample midpoint test scores it 1, twice the correct pair, and the best matching
    under that test steals B2 for person 1. Along the whole segment the PAF is missing
    for 40% of the way, and the line integral rejects the pair."""
    people = np.zeros((3, K, 2))
    vis = np.zeros((3, K), bool)
    (ja, jb) = LIMBS[10]                                   # left elbow -> left wrist
    A = np.array([[20.0, 4.0], [20.0, 20.0], [10.0, 30.0]])
    B = np.array([[20.0, 40.0], [30.0, 30.0]])
    people[0, ja], vis[0, ja] = A[0], True                 # wrist occluded
    people[1, ja], people[1, jb], vis[1, [ja, jb]] = A[1], B[0], True
    people[2, ja], people[2, jb], vis[2, [ja, jb]] = A[2], B[1], True
    _, pafs = render(people, (48, 48), visible=vis)
    px, py = pafs[20], pafs[21]

    mid, _ = limb_scores(px, py, A, B, num_samples=1)
    assert mid[0, 0].item() == pytest.approx(1.0, abs=1e-5)      # wrong pair, fooled
    assert mid[1, 0].item() == pytest.approx(0.5, abs=1e-5)      # correct pair at the crossing
    assert {(a, b) for a, b, _ in match_limb(mid)} == {(0, 0), (2, 1)}   # wrong: B2 goes to A1

    line, ratio = limb_scores(px, py, A, B, num_samples=10)
    assert line[1, 0] > 0.85 and line[2, 1] > 0.85
    assert line[0, 0] < 0.6 and ratio[0, 0] <= 0.8 < ratio[1, 0]
    valid = (ratio > 0.8) & (line > 0)
    assert {(a, b) for a, b, _ in match_limb(line, valid)} == {(1, 0), (2, 1)}


# ----------------------------------------------------------------------------- matching


def test_match_limb_is_max_weight_and_never_reuses_a_part():
    s = np.array([[0.9, 0.8, 0.0], [0.85, 0.0, 0.0], [0.0, 0.0, 0.5]])
    got = match_limb(s)
    assert {(a, b) for a, b, _ in got} == {(0, 1), (1, 0), (2, 2)}  # greedy would take (0, 0): 1.4 < 2.15
    assert sum(e for *_, e in got) == pytest.approx(2.15)
    assert [e for *_, e in got] == sorted((e for *_, e in got), reverse=True)
    assert match_limb(s, valid=s < 0.84) == [(0, 1, 0.8), (2, 2, 0.5)]
    rng = np.random.default_rng(0)
    for trial in range(30):
        na, nb = rng.integers(1, 5, size=2)
        s = rng.uniform(-0.3, 1.0, size=(na, nb))
        valid = rng.random((na, nb)) < 0.7
        got = match_limb(torch.tensor(s), torch.tensor(valid))
        rows, cols = [g[0] for g in got], [g[1] for g in got]
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert all(valid[a, b] and s[a, b] > 0 for a, b, _ in got)
        w = np.where(valid & (s > 0), s, 0.0)
        rows_w = w if na <= nb else w.T                           # fewer rows than columns
        n_rows, n_cols = rows_w.shape
        best = max(sum(rows_w[i, perm[i]] for i in range(n_rows))
                   for perm in itertools.permutations(range(n_cols), n_rows))
        assert sum(e for *_, e in got) == pytest.approx(best)
    assert match_limb(np.zeros((0, 3))) == [] and match_limb(-np.ones((2, 2))) == []
    with pytest.raises(ValueError, match="valid"):
        match_limb(np.ones((2, 2)), np.ones((2, 3), bool))


# ----------------------------------------------------------------------------- tree


def _is_spanning_tree(edges, k):
    parent = list(range(k))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra == rb:
            return False
        parent[ra] = rb
    return len(edges) == k - 1


def test_skeleton_tree_spans_coco17():
    tree, redundant = skeleton_tree(LIMBS, K)
    assert len(tree) == K - 1 and sorted(tree + redundant) == list(range(C))
    assert _is_spanning_tree([LIMBS[c] for c in tree], K)
    assert skeleton_tree(COCO17) == (tree, redundant) == skeleton_tree()
    assert LIMBS[tree[0]][0] == 5 or LIMBS[tree[0]][1] == 5          # default root: left shoulder
    reached = {5}
    for c in tree:                                                    # search order: one new keypoint per limb
        a, b = LIMBS[c]
        assert (a in reached) != (b in reached)
        reached |= {a, b}
    for root in range(K):
        t, r = skeleton_tree(LIMBS, K, root=root)
        assert _is_spanning_tree([LIMBS[c] for c in t], K) and len(r) == C - K + 1
    # a disconnected skeleton gives a spanning forest
    t, r = skeleton_tree([(0, 1), (1, 2), (2, 0), (3, 4)], 6)
    assert len(t) == 3 and len(r) == 1
    with pytest.raises(ValueError, match="outside"):
        skeleton_tree([(0, 5)], 3)
    with pytest.raises(ValueError, match="itself"):
        skeleton_tree([(1, 1)], 3)
    with pytest.raises(ValueError, match="root"):
        skeleton_tree(LIMBS, K, root=17)


# ----------------------------------------------------------------------------- parse


def test_one_person_recovered_exactly():
    truth = TEMPLATE[None] + np.array([20.3, 19.6])
    heat, pafs = render(truth, (40, 40))
    people = parse(heat, pafs)
    assert len(people) == 1
    person = people[0]
    assert person.num_parts == K and person.num_limbs == K - 1
    assert np.abs(person.keypoints.numpy() - truth[0]).max() <= 0.5
    assert torch.all(person.scores > 0.75) and 0.85 < person.score <= 1.0  # sub-pixel peaks: >= exp(-1/4)
    assert torch.equal(person.parts, torch.zeros(K, dtype=torch.long))


def test_three_people_correct_assignment():
    truth, size = grid_people(1, 3, seed=3)
    heat, pafs = render(truth, size)
    people = parse(heat, pafs)
    assert len(people) == 3
    assert sorted(assign(people, truth)) == [0, 1, 2]
    assert all(p.num_parts == K for p in people)


def test_crossing_forearms_and_close_people():
    """Two people 14 px apart whose left forearms cross: the PAFs of that limb type
    overlap and average at the crossing, and every elbow is close to the other person's
    wrist."""
    truth = np.stack([TEMPLATE + [14.2, 20.3], TEMPLATE + [28.1, 20.6]])
    truth[0, 9] = truth[0, 7] + [9.0, 5.0]      # person 0's left wrist reaches right, towards person 1
    truth[1, 9] = truth[1, 7] + [-13.0, 5.0]    # person 1's left wrist reaches left, across it
    a0, b0, a1, b1 = truth[0, 7], truth[0, 9], truth[1, 7], truth[1, 9]
    def cross(p, q, r):  # side of r relative to the line p -> q
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    assert cross(a0, b0, a1) != cross(a0, b0, b1) and cross(a1, b1, a0) != cross(a1, b1, b0)  # segments cross
    heat, pafs = render(truth, (40, 48))
    people = parse(heat, pafs)
    assert len(people) == 2 and all(p.num_parts == K for p in people)
    assert sorted(assign(people, truth)) == [0, 1]


def test_missing_keypoints_have_score_zero():
    truth = TEMPLATE[None] + np.array([20.0, 20.0])
    vis = np.ones((1, K), bool)
    vis[0, [15, 16]] = False                    # ankles outside the picture
    heat, pafs = render(truth, (40, 40), visible=vis)
    (person,) = parse(heat, pafs)
    assert person.num_parts == K - 2
    assert torch.all(person.scores[[15, 16]] == 0) and torch.all(person.scores[:15] > 0)
    assert torch.isnan(person.keypoints[[15, 16]]).all() and not torch.isnan(person.keypoints[:15]).any()
    assert person.visible.tolist() == vis[0].tolist()


def test_fragments_below_min_parts_or_min_score_removed():
    truth = np.stack([TEMPLATE + [14.0, 20.0], TEMPLATE + [40.0, 20.0]])
    vis = np.ones((2, K), bool)
    vis[1] = False
    vis[1, [7, 9]] = True                       # a lone forearm: a fragment of two parts
    heat, pafs = render(truth, (40, 56), visible=vis)
    assert [p.num_parts for p in parse(heat, pafs)] == [K]
    assert sorted(p.num_parts for p in parse(heat, pafs, min_parts=2)) == [2, K]
    weak_heat, weak_pafs = render(truth[:1], (40, 40), peak=0.15, paf_scale=0.15)
    assert parse(weak_heat, weak_pafs) == []
    (weak,) = parse(weak_heat, weak_pafs, min_score=0.1)
    assert weak.num_parts == K and weak.score == pytest.approx(0.15, abs=0.02)


def test_redundant_limbs_merge_fragments():
    truth = TEMPLATE[None] + np.array([20.0, 20.0])
    heat, pafs = render(truth, (40, 40))
    tree, redundant = skeleton_tree(LIMBS, K)
    c = LIMBS.index((5, 6))
    assert c in tree                            # shoulders are a tree limb; (6, 12) and (1, 2) are not
    pafs[2 * c:2 * c + 2] = 0                   # the network missed it
    split = parse(heat, pafs)
    assert sorted(p.num_parts for p in split) == [5, 12]
    (whole,) = parse(heat, pafs, use_redundant=True)
    assert whole.num_parts == K and whole.num_limbs == (K - 2) + len(redundant)
    (intact,) = parse(*render(truth, (40, 40)), use_redundant=True)
    assert intact.num_limbs == C                # every redundant limb confirms the person


def test_assembly_merges_only_without_conflict():
    asm = _Assembly(4)
    asm.connect(0, 0, 1, 0, 1.0, allow_new=True)
    asm.connect(2, 0, 3, 0, 1.0, allow_new=True)
    asm.connect(2, 1, 3, 1, 1.0, allow_new=False)       # redundant limbs never start a person
    assert len(asm.people) == 2
    asm.connect(1, 0, 2, 0, 0.5, allow_new=False)       # joins two fragments with disjoint types
    ((_, merged),) = asm.people.items()
    assert merged["parts"].tolist() == [0, 0, 0, 0] and merged["n_limbs"] == 3
    asm.connect(0, 1, 1, 1, 1.0, allow_new=True)
    asm.connect(1, 1, 2, 0, 1.0, allow_new=True)        # part (2, 0) is owned by a person with a type-1 part
    assert sorted(p["parts"].tolist() for p in asm.people.values()) == [[0, 0, 0, 0], [1, 1, -1, -1]]


def test_empty_maps_give_no_people():
    assert parse(torch.zeros(K, 32, 32), torch.zeros(2 * C, 32, 32)) == []
    heat, _ = render(TEMPLATE[None] + 20.0, (40, 40))
    assert parse(heat, torch.zeros(2 * C, 40, 40)) == []       # parts but no limbs


def test_wrong_way_pafs_give_no_people():
    heat, pafs = render(TEMPLATE[None] + 20.0, (40, 40))
    assert len(parse(heat, pafs)) == 1 and parse(heat, -pafs) == []


def test_stride_mapping_to_image_pixels():
    truth = np.round(TEMPLATE[None] + np.array([20.0, 20.0]))  # peaks on pixel centres: no refinement shift
    heat, pafs = render(truth, (40, 40))
    for stride in (4, (8, 4)):
        (person,) = parse(heat, pafs, stride=stride)
        expected = heatmap_to_image(truth[0], stride)
        assert np.abs(person.keypoints.numpy() - expected).max() < 1e-4
    (person,) = parse(heat, pafs, stride=4)
    assert person.keypoints[0].tolist() == [4 * (truth[0, 0, 0] + 0.5) - 0.5, 4 * (truth[0, 0, 1] + 0.5) - 0.5]


def test_twenty_people_quickly_and_batch():
    truth, size = grid_people(4, 5, seed=7)
    heat, pafs = render(truth, size)
    start = time.perf_counter()
    people = parse(heat, pafs)
    elapsed = time.perf_counter() - start
    print(f"parse: 20 people, {tuple(heat.shape)} maps, {elapsed * 1000:.0f} ms")  # shown, never asserted
    assert len(people) == 20 and all(p.num_parts == K for p in people)
    assert sorted(assign(people, truth)) == list(range(20))
    batch = parse_batch(torch.stack([heat, torch.zeros_like(heat)]), torch.stack([pafs, torch.zeros_like(pafs)]))
    assert [len(b) for b in batch] == [20, 0]
    assert all(torch.equal(p.keypoints, q.keypoints) for p, q in zip(batch[0], people))


def test_input_errors():
    heat, pafs = torch.zeros(K, 16, 16), torch.zeros(2 * C, 16, 16)
    with pytest.raises(ValueError, match="2C = 38 channels"):
        parse(heat, pafs[:-1])
    with pytest.raises(ValueError, match="same spatial size"):
        parse(heat, torch.zeros(2 * C, 16, 12))
    with pytest.raises(ValueError, match="heatmaps must have shape"):
        parse(heat[0], pafs)
    with pytest.raises(ValueError, match="outside"):
        parse(heat[:10], pafs)                              # limbs reach keypoint 16
    with pytest.raises(ValueError, match="min_ratio"):
        parse(heat, pafs, min_ratio=1.5)
    with pytest.raises(ValueError, match="batch size"):
        parse_batch(heat[None].repeat(2, 1, 1, 1), pafs[None])
    with pytest.raises(ValueError, match="2C = 38 channels"):
        parse_batch(heat[None], pafs[None, :-2])
    with pytest.raises(ValueError, match="pafs must have shape"):
        parse_batch(heat[None], pafs)
    with pytest.raises(TypeError, match="heatmaps"):
        parse(object(), pafs)
