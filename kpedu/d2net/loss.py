"""D2-Net's training loss: a triplet margin ranking loss weighted by detection scores.

D2-Net chapter, section 3, eqs. (13)-(15) of the paper. Take a correspondence ``c``
between cell ``A`` of image 1 and point ``B`` of image 2, with unit descriptors
``d_A`` and ``d_B``.

* The positive distance is ``p(c) = ||d_A - d_B||``.
* The negative distance ``n(c)`` is the distance to the most similar *wrong* descriptor.
  The candidates are the cells of image 2 farther than a safe radius from ``B``, compared
  with ``d_A``, and the cells of image 1 farther than the radius from ``A``, compared
  with ``d_B``.
* The ranking term is ``m(c) = max(0, M + p(c)^2 - n(c)^2)``.
* The loss weights each term by both images' soft detection scores:
  ``L = sum_c s1_A s2_B m(c) / sum_c s1_A s2_B``.

Only good matches may be detected strongly; a cell whose descriptor is confusable
lowers the loss by getting a low score.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import checks
from ..data.pairs import apply_homography
from .detection import _check as _feature_maps
from .detection import _temperature, soft_detection_scores

__all__ = ["grid_correspondences", "d2_loss", "sample_cells"]


def grid_correspondences(shape1: tuple[int, int], shape2: tuple[int, int], H: torch.Tensor, stride: int,
                         offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells of feature map 1 whose centres map (through ``H``) inside feature map 2.

    Returns ``(idx1, pos2)``: ``idx1`` ``(N,)`` flat indices into the ``h1 x w1`` map 1,
    and ``pos2`` ``(N, 2)`` the fractional (x, y) cell coordinates in map 2, within
    ``[0, w2 - 1] x [0, h2 - 1]`` so bilinear sampling needs no padding.
    """
    h1, w1 = checks.size(shape1, "shape1")
    h2, w2 = checks.size(shape2, "shape2")
    H = _homography(H, "H", (3, 3))
    stride = checks.number(stride, "stride", minimum=0, min_open=True)
    offset = checks.number(offset, "offset")
    return _grid_correspondences((h1, w1), (h2, w2), H, stride, offset)


def _homography(H, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """``H`` as a finite float64 tensor of exactly ``shape``."""
    t = checks.as_tensor(H, name, dtype=torch.float64)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {tuple(t.shape)}")
    if t.device.type != "meta" and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return t


def _grid_correspondences(shape1: tuple[int, int], shape2: tuple[int, int], H: torch.Tensor, stride: float,
                          offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    h1, w1 = shape1
    h2, w2 = shape2
    ys, xs = torch.meshgrid(torch.arange(h1, dtype=torch.float64), torch.arange(w1, dtype=torch.float64),
                            indexing="ij")
    cells1 = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    p2 = apply_homography(H, cells1 * stride + offset)
    c2 = (p2 - offset) / stride
    ok = torch.isfinite(c2).all(dim=-1) & (c2[:, 0] >= 0) & (c2[:, 0] <= w2 - 1) & (c2[:, 1] >= 0) & (
        c2[:, 1] <= h2 - 1)
    idx1 = torch.nonzero(ok, as_tuple=False)[:, 0]
    return idx1, c2[ok]


def sample_cells(maps: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``(C, h, w)`` maps at ``(N, 2)`` fractional cell coordinates: ``(C, N)``.

    Positions outside the map take the border value.
    """
    checks.same_device(maps=maps, pos=pos)
    maps = checks.maps(maps, "maps", ndim=3, shape_text="(C, h, w)")
    pos = checks.points(pos, "pos", ndim=2, allow_nan=False, shape_text="(N, 2)",
                        dtype=pos.dtype if isinstance(pos, torch.Tensor) and pos.dtype.is_floating_point else None)
    return _sample_cells(maps, pos)


def _sample_cells(maps: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    c, h, w = maps.shape
    g = torch.stack([(pos[:, 0] + 0.5) / w * 2 - 1, (pos[:, 1] + 0.5) / h * 2 - 1], dim=-1).to(maps.dtype)
    return F.grid_sample(maps[None], g.view(1, 1, -1, 2), mode="bilinear", align_corners=False,
                         padding_mode="border")[0, :, 0]


def _hardest_negative(queries: torch.Tensor, cells: torch.Tensor, centres: torch.Tensor, grid: torch.Tensor,
                      safe_radius: float, pool: int | None, margin: float, generator) -> torch.Tensor:
    """Squared distance from each query descriptor ``(n, N)`` to its closest cell descriptor
    ``(n, M)`` farther than ``safe_radius`` (Chebyshev, in cells) from its ``centre``; with
    ``pool``, only among that many random cells. No candidate: ``4 + margin`` (no loss)."""
    far = (grid[None] - centres[:, None]).abs().amax(-1) > safe_radius  # (N, M)
    if pool is not None and pool < far.shape[1]:
        cand = torch.zeros(far.shape[1], dtype=torch.bool, device=far.device)
        cand[torch.randperm(far.shape[1], generator=generator)[:pool].to(far.device)] = True
        far = far & cand
    dist = (2 - 2 * queries.t() @ cells).clamp_min(0)
    return torch.where(far, dist, torch.full_like(dist, 4.0 + margin)).amin(1)


def d2_loss(features1: torch.Tensor, features2: torch.Tensor, H: torch.Tensor, stride: int, offset: float,
            margin: float = 1.0, safe_radius: float = 4.0, temperature: float | str | None = "max",
            max_correspondences: int | None = None, negative_pool: int | None = None,
            generator: torch.Generator | None = None, return_logs: bool = False):
    """The score-weighted triplet margin ranking loss of D2-Net, averaged over a batch of pairs.

    Parameters
    ----------
    features1, features2
        ``(B, n, h, w)`` feature tensors of the two views (from :class:`D2Net`).
    H
        ``(B, 3, 3)`` homographies mapping view-1 to view-2 *pixel* coordinates.
    stride, offset
        The network's cell geometry (``model.stride``, ``model.offset``).
    margin
        ``M`` (the paper: 1, for unit descriptors whose squared distances lie in [0, 4]).
    safe_radius
        Negatives must be more than this many cells away from the true match (Chebyshev
        distance; the reference code uses 4 cells).
    temperature
        Passed to :func:`kpedu.d2net.soft_detection_scores` (the reference code: ``"max"``).
    max_correspondences
        Optionally subsample each pair's correspondences (memory: the negative search is
        ``N x h w``).
    negative_pool
        ``None`` (the paper): the hardest negative over all cells outside the safe radius.
        A number ``P``: the hardest among ``P`` cells drawn at random per pair and image
        (a milder, "semi-hard" negative), which the book uses early in training from
        scratch (see :mod:`kpedu.d2net.experiment`).
    return_logs
        Also return a dict with the mean positive and negative distances and the
        fraction of correspondences whose positive beats the hardest negative.

    Pairs without any correspondence are skipped; if no pair has one, the loss is a zero
    that still depends on the features (so backward works).
    """
    checks.same_device(features1=features1, features2=features2)
    features1 = _feature_maps(features1, "features1")
    features2 = _feature_maps(features2, "features2")
    if features1.shape[:2] != features2.shape[:2]:
        raise ValueError(f"features1 and features2 must have equal B and n (B, n, h, w), got {tuple(features1.shape)} "
                         f"and {tuple(features2.shape)}")
    H = _homography(H, "H", (features1.shape[0], 3, 3))
    stride = checks.number(stride, "stride", minimum=0, min_open=True)
    offset = checks.number(offset, "offset")
    margin = checks.number(margin, "margin", minimum=0, min_open=True)
    safe_radius = checks.number(safe_radius, "safe_radius", minimum=0)
    temperature = _temperature(temperature)
    if max_correspondences is not None:
        max_correspondences = checks.integer(max_correspondences, "max_correspondences", minimum=1)
    if negative_pool is not None:
        negative_pool = checks.integer(negative_pool, "negative_pool", minimum=1)
    s1 = soft_detection_scores(features1, temperature)
    s2 = soft_detection_scores(features2, temperature)
    d1 = F.normalize(features1, dim=1)
    d2 = F.normalize(features2, dim=1)
    h1, w1 = features1.shape[-2:]
    h2, w2 = features2.shape[-2:]
    dev = features1.device
    grid1 = torch.stack(torch.meshgrid(torch.arange(h1, device=dev), torch.arange(w1, device=dev), indexing="ij"),
                        dim=-1).reshape(-1, 2).flip(-1).float()  # (h1 w1, 2) as (x, y)
    grid2 = torch.stack(torch.meshgrid(torch.arange(h2, device=dev), torch.arange(w2, device=dev), indexing="ij"),
                        dim=-1).reshape(-1, 2).flip(-1).float()
    losses, pos_d, neg_d, won = [], [], [], []
    for b in range(features1.shape[0]):
        idx1, pos2 = _grid_correspondences((h1, w1), (h2, w2), H[b].detach().cpu(), stride, offset)
        if idx1.numel() == 0:
            continue
        if max_correspondences is not None and idx1.numel() > max_correspondences:
            keep = torch.randperm(idx1.numel(), generator=generator)[:max_correspondences]
            idx1, pos2 = idx1[keep], pos2[keep]
        idx1 = idx1.to(dev)
        pos2 = pos2.to(dev).float()
        da = d1[b].flatten(1)[:, idx1]  # (n, N)
        db = F.normalize(_sample_cells(features2[b], pos2), dim=0)  # (n, N)
        sa = s1[b].flatten()[idx1]
        sb = _sample_cells(s2[b][None], pos2)[0]
        pos_dist = (2 - 2 * (da * db).sum(0)).clamp_min(0)  # squared distances
        # hardest negatives in image 2 for d_A, outside the safe radius around B
        neg2 = _hardest_negative(da, d2[b].flatten(1), pos2, grid2, safe_radius, negative_pool, margin, generator)
        # and in image 1 for d_B, outside the safe radius around A
        neg1 = _hardest_negative(db, d1[b].flatten(1), grid1[idx1], grid1, safe_radius, negative_pool, margin,
                                 generator)
        neg_dist = torch.minimum(neg1, neg2)
        m = F.relu(margin + pos_dist - neg_dist)
        wgt = sa * sb
        losses.append((wgt * m).sum() / wgt.sum().clamp_min(1e-12))
        pos_d.append(pos_dist.detach().sqrt().mean())
        neg_d.append(neg_dist.detach().sqrt().mean())
        won.append((pos_dist < neg_dist).float().mean().detach())
    if not losses:
        loss = (features1.sum() + features2.sum()) * 0.0
        logs = {"pos": float("nan"), "neg": float("nan"), "correct": float("nan")}
    else:
        loss = torch.stack(losses).mean()
        logs = {"pos": float(torch.stack(pos_d).mean()), "neg": float(torch.stack(neg_d).mean()),
                "correct": float(torch.stack(won).mean())}
    return (loss, logs) if return_logs else loss
