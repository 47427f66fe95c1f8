"""Drawing helpers: images, skeletons, heatmap overlays, prediction grids, matches.

Used by every chapter from Foundations on. All functions draw onto matplotlib axes in
the book's pixel convention (pixel centres at integers, so an image of width ``W``
spans ``[-0.5, W - 0.5]``), which makes keypoints and heatmaps line up exactly.

Images follow the book's one rule (``book/notation.md``, :func:`kpedu.checks.image`):
float in ``[0, 1]`` (values a little outside, from augmentation, are clipped), or
``uint8``, scaled by 1/255, so a ``uint8`` image draws exactly as the same image divided
by 255. Keypoints may hold NaN (a missing prediction), which is not drawn.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import checks

__all__ = [
    "to_hwc",
    "show_image",
    "draw_skeleton",
    "overlay_heatmap",
    "heatmap_grid",
    "prediction_grid",
    "paf_to_rgb",
    "draw_paf",
    "landmark_colors",
    "draw_landmarks",
    "draw_matches",
    "PRED_COLOR",
    "GT_COLOR",
]

PRED_COLOR = "#e4572e"
GT_COLOR = "#29bf12"


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def to_hwc(image, name: str = "image") -> np.ndarray:
    """An image as ``(H, W, 3)`` (or ``(H, W, 4)``, RGBA) or ``(H, W)`` numpy, from
    ``(C, H, W)``/``(H, W, C)`` numpy or torch with ``C`` 1 or 3, or ``(H, W)``.

    Values follow :func:`kpedu.checks.image`: ``uint8`` is scaled to ``[0, 1]``, float is
    clipped to ``[0, 1]``; other integer types, booleans, NaN/inf and float values far
    outside ``[0, 1]`` (a 0-255 image stored as float) are errors naming ``name``.
    """
    if isinstance(image, (str, bytes)):
        raise TypeError(f"{name} must be an image array (C, H, W), (H, W, C) or (H, W), got {checks.describe(image)}")
    if isinstance(image, torch.Tensor):
        if image.device.type == "meta":
            raise ValueError(f"{name} is on the meta device and holds no data to draw")
        image = image.detach().cpu()
        if image.dtype in (torch.float16, torch.bfloat16):
            image = image.float()
    raw = checks.as_array(image, name, dtype=None, allow_bool=True)  # numbers (bool: refused below)
    shape = raw.shape
    if raw.ndim == 3 and shape[0] in (1, 3) and shape[-1] not in (1, 3, 4):
        raw = np.moveaxis(raw, 0, -1)  # channels first
    elif raw.ndim == 3 and shape[0] in (1, 3) and shape[-1] in (1, 3) and shape[0] != shape[-1]:
        raw = np.moveaxis(raw, 0, -1)
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if not (raw.ndim == 2 or (raw.ndim == 3 and raw.shape[-1] in (3, 4))):
        raise ValueError(f"{name} must have shape (C, H, W) or (H, W, C) with C = 1 or 3 (or (H, W, 4), RGBA), "
                         f"or (H, W), got shape {shape}")
    dtype = torch.float64 if raw.dtype == np.float64 else torch.float32
    img = checks.image(raw, name, ndim=(2, 3), channels=None, dtype=dtype).numpy()
    return np.clip(img, 0, 1)


def _images(images, name: str = "images") -> list[np.ndarray]:
    """A batch ``(B, C, H, W)`` / ``(B, H, W, C)``, or a list of images, as a list of
    :func:`to_hwc` images."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        if images.ndim != 4:
            raise ValueError(f"{name} must be a batch (B, C, H, W) or (B, H, W, C), or a list of images, "
                             f"got shape {tuple(images.shape)}")
    elif isinstance(images, (str, bytes)) or not hasattr(images, "__len__"):
        raise TypeError(f"{name} must be a batch of images or a list of images, got {checks.describe(images)}")
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    return [to_hwc(images[i], f"{name}[{i}]") for i in range(len(images))]


def _points(x, name: str, ndim=2, shape_text: str | None = None) -> np.ndarray:
    """Keypoints to draw: float64 ``(..., 2)``; NaN (missing) is allowed and not drawn."""
    if isinstance(x, torch.Tensor) and x.device.type == "meta":
        raise ValueError(f"{name} is on the meta device and holds no data to draw")
    return checks.points(x, name, ndim=ndim, backend="numpy", shape_text=shape_text)


def _flags(v, name: str, shape) -> np.ndarray:
    """COCO flags (0, 1, 2; booleans count as 0 and 1) of exactly ``shape`` (one person's
    flags for a batch of one are accepted), as float64."""
    a = checks.as_array(v, name, allow_bool=True)
    if a.shape != tuple(shape):
        if len(shape) == 2 and shape[0] == 1 and a.shape == tuple(shape[1:]):
            a = a.reshape(shape)
        else:
            raise ValueError(f"{name} must have shape {tuple(shape)} (one flag per keypoint), got shape {a.shape}")
    checks.visibility(a, name, shape, backend="numpy")  # finite
    return a


def show_image(ax, image, title: str | None = None):
    """Show an image with pixel centres at integer coordinates; hides the ticks.
    ``image`` as for :func:`to_hwc`."""
    img = to_hwc(image)
    h, w = img.shape[:2]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
              interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_skeleton(ax, keypoints, visible=None, skeleton=None, color=None, linewidth: float = 2.0,
                  markersize: float = 4.0, show_occluded: bool = True, label: str | None = None):
    """Draw one or several skeletons ``(K, 2)`` / ``(N, K, 2)``.

    Visible keypoints (flag 2, or any flag > 0 when ``show_occluded`` is False) are
    filled dots; occluded ones (flag 1) are hollow and their limbs dashed; flag 0 is not
    drawn. ``color`` overrides the skeleton's per-limb colours.
    """
    if skeleton is None:
        from .data import COCO17 as skeleton
    kp = _points(keypoints, "keypoints", ndim=(2, 3), shape_text="(K, 2) or (N, K, 2)")
    if kp.ndim == 2:
        kp = kp[None]
    if kp.shape[1] != skeleton.num_keypoints:
        raise ValueError(f"keypoints must be (K, 2) or (N, K, 2) with K={skeleton.num_keypoints}, got {kp.shape}")
    vis = np.full(kp.shape[:2], 2) if visible is None else _flags(visible, "visible", kp.shape[:2])
    linewidth = checks.number(linewidth, "linewidth", minimum=0.0)
    markersize = checks.number(markersize, "markersize", minimum=0.0)
    limb_colors = getattr(skeleton, "limb_colors", None)
    for n in range(kp.shape[0]):
        for li, (a, b) in enumerate(skeleton.limbs):
            if vis[n, a] <= 0 or vis[n, b] <= 0:
                continue
            occluded = vis[n, a] == 1 or vis[n, b] == 1
            if occluded and not show_occluded:
                continue
            c = color if color is not None else (limb_colors[li] if limb_colors is not None else "tab:blue")
            ax.plot(kp[n, [a, b], 0], kp[n, [a, b], 1], color=c, lw=linewidth,
                    ls="--" if occluded else "-", alpha=0.9, solid_capstyle="round")
        on = vis[n] == 2 if show_occluded else vis[n] > 0
        ax.plot(kp[n, on, 0], kp[n, on, 1], "o", ms=markersize, color="white" if color is None else color,
                mec="black", mew=0.6, ls="none", label=label if n == 0 else None)
        if show_occluded:
            occ = vis[n] == 1
            ax.plot(kp[n, occ, 0], kp[n, occ, 1], "o", ms=markersize, mfc="none",
                    mec="white" if color is None else color, mew=1.2, ls="none")
    return ax


def overlay_heatmap(ax, image, heatmap, alpha: float = 0.55, cmap: str = "magma", title: str | None = None):
    """Show ``heatmap`` (h, w) over ``image`` (H, W); the heatmap is stretched over the
    image with edges aligned (stride ``W / w``), exactly as the codecs map coordinates."""
    img = to_hwc(image)
    h_img, w_img = img.shape[:2]
    hm = checks.maps(heatmap, "heatmap", ndim=2, shape_text="(h, w)").detach().cpu().float().numpy()
    alpha = checks.probability(alpha, "alpha")
    show_image(ax, img, title)
    ax.imshow(hm, cmap=cmap, alpha=alpha, extent=(-0.5, w_img - 0.5, h_img - 0.5, -0.5),
              interpolation="bilinear", vmin=0, vmax=max(float(hm.max()), 1e-6))
    return ax


def heatmap_grid(heatmaps, names: Sequence[str] | None = None, image=None, ncols: int = 6,
                 size: float = 1.6, title: str | None = None):
    """A grid of ``K`` heatmaps (K, h, w), each titled with its keypoint name and
    optionally laid over ``image``. Returns the figure."""
    hm = checks.maps(heatmaps, "heatmaps", ndim=3, shape_text="(K, h, w)").detach().cpu().float().numpy()
    k = hm.shape[0]
    ncols = checks.integer(ncols, "ncols", minimum=1)
    size = checks.number(size, "size", minimum=0.0, min_open=True)
    if image is not None:
        image = to_hwc(image)
    if names is not None:
        if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
            raise TypeError(f"names must be a list of {k} keypoint names, got {checks.describe(names)}")
        if len(names) < k:
            raise ValueError(f"names must hold a name for each of the {k} heatmaps, got {len(names)}")
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.axis("off")
            continue
        label = names[i] if names is not None else f"k={i}"
        if image is not None:
            overlay_heatmap(ax, image, hm[i], title=label)
        else:
            ax.imshow(hm[i], cmap="magma", interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def prediction_grid(images, preds, gts=None, visible=None, skeleton=None, titles: Sequence[str] | None = None,
                    ncols: int = 4, size: float = 2.6):
    """Images with predicted skeletons (orange) and, when given, ground truth (green).

    ``images`` (B, 3, H, W); ``preds``/``gts`` (B, K, 2) or lists of (N_i, K, 2);
    ``visible`` the ground truth flags. Returns the figure.
    """
    imgs = _images(images)
    b = len(imgs)
    ncols = checks.integer(ncols, "ncols", minimum=1)
    size = checks.number(size, "size", minimum=0.0, min_open=True)
    for name, value in (("preds", preds), ("gts", gts), ("visible", visible), ("titles", titles)):
        if value is None:
            continue
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must hold one entry per image, got {checks.describe(value)}")
        if len(value) < b:
            raise ValueError(f"{name} must hold one entry per image ({b}), got {len(value)}")
    pred_kp = [_points(preds[i], f"preds[{i}]", ndim=(2, 3)) for i in range(b)]
    gt_kp = None if gts is None else [_points(gts[i], f"gts[{i}]", ndim=(2, 3)) for i in range(b)]
    flags = None if visible is None else [
        _flags(visible[i], f"visible[{i}]", (gt_kp[i] if gt_kp is not None else pred_kp[i]).shape[:-1])
        for i in range(b)]
    ncols = min(ncols, b)
    nrows = int(np.ceil(b / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= b:
            ax.axis("off")
            continue
        show_image(ax, imgs[i], titles[i] if titles is not None else None)
        vis = None if flags is None else flags[i]
        if gt_kp is not None:
            draw_skeleton(ax, gt_kp[i], vis, skeleton, color=GT_COLOR, linewidth=1.5, markersize=3,
                          label="ground truth")
        # the ground truth's flags hide the predictions of keypoints it does not label, when
        # they correspond one to one (same people); otherwise every prediction is drawn
        pv = None if vis is None or vis.shape != pred_kp[i].shape[:-1] else np.where(vis > 0, 2, 0)
        draw_skeleton(ax, pred_kp[i], pv, skeleton, color=PRED_COLOR, linewidth=1.5, markersize=3,
                      label="prediction")
    if gts is not None:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.04 if gts is not None else 0, 1, 1))
    return fig


def paf_to_rgb(paf_x, paf_y, max_norm: float = 1.0) -> np.ndarray:
    """Colour a part affinity field (OpenPose chapter) by direction: hue is the angle of
    the vector ``(paf_x, paf_y)`` (in image axes, ``y`` down), brightness its length
    relative to ``max_norm``; zero vectors are black. ``paf_x``, ``paf_y``: ``(h, w)``.
    Returns ``(h, w, 3)`` floats in ``[0, 1]``."""
    from matplotlib.colors import hsv_to_rgb

    px, py = _field(paf_x, paf_y)
    max_norm = checks.number(max_norm, "max_norm", minimum=0.0, min_open=True)
    hue = (np.arctan2(py, px) / (2 * np.pi)) % 1.0
    val = np.clip(np.hypot(px, py) / max_norm, 0.0, 1.0)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], axis=-1))


def _field(paf_x, paf_y) -> tuple[np.ndarray, np.ndarray]:
    """The two ``(h, w)`` components of a field, finite, as float64 arrays."""
    px = checks.maps(paf_x, "paf_x", ndim=2, shape_text="(h, w)").detach().cpu().double().numpy()
    py = checks.maps(paf_y, "paf_y", ndim=2, shape_text="(h, w)").detach().cpu().double().numpy()
    if px.shape != py.shape:
        raise ValueError(f"paf_x and paf_y must be 2-D of the same shape, got {px.shape} and {py.shape}")
    return px, py


def draw_paf(ax, paf_x, paf_y, stride: float = 1.0, step: int = 1, min_norm: float = 0.1,
             color: str = "yellow", scale: float | None = None, **quiver_kwargs):
    """Draw a part affinity field (OpenPose chapter) as arrows on ``ax``.

    ``paf_x``, ``paf_y``: ``(h, w)`` components on a grid of output stride ``stride``;
    the arrow of heatmap pixel ``(i, j)`` sits at its centre in image coordinates,
    ``x = (j + 0.5) * stride - 0.5`` (``book/notation.md``), so the arrows line up with
    an image drawn by :func:`show_image`. Every ``step``-th pixel is drawn, and only
    vectors at least ``min_norm`` long. An arrow of length 1 spans ``scale`` image pixels
    (default ``0.9 * stride * step``). Returns the quiver (None when nothing is drawn).
    """
    px, py = _field(paf_x, paf_y)
    stride = checks.number(stride, "stride", minimum=0.0, min_open=True)
    step = checks.integer(step, "step", minimum=1)
    min_norm = checks.number(min_norm, "min_norm", minimum=0.0)
    scale = checks.optional_number(scale, "scale", minimum=0.0, min_open=True)
    ii, jj = np.mgrid[0:px.shape[0]:step, 0:px.shape[1]:step]
    u, v = px[ii, jj], py[ii, jj]
    keep = np.hypot(u, v) >= min_norm
    if not keep.any():
        return None
    x = (jj[keep] + 0.5) * stride - 0.5
    y = (ii[keep] + 0.5) * stride - 0.5
    length = 0.9 * stride * step if scale is None else float(scale)
    # angles="xy", scale_units="xy": arrows in data units, y pointing down with the image
    return ax.quiver(x, y, u[keep] * length, v[keep] * length, angles="xy", scale_units="xy", scale=1.0,
                     color=color, width=quiver_kwargs.pop("width", 0.004), **quiver_kwargs)


def landmark_colors(k: int, cmap: str = "tab10") -> np.ndarray:
    """``k`` distinct RGBA colours, one per landmark index (``tab10`` up to 10, then
    ``hsv``), so the same index has the same colour in every figure of a chapter."""
    k = checks.integer(k, "k", minimum=1)
    import matplotlib

    if k <= 10 and cmap == "tab10":
        return np.array([matplotlib.colormaps["tab10"](i) for i in range(k)])
    return np.array([matplotlib.colormaps["hsv"](i / k) for i in range(k)])


def draw_landmarks(ax, landmarks, colors=None, size: float = 30.0, marker: str = "o", labels: bool = False,
                   edgecolor="black", label: str | None = None, **scatter_kwargs):
    """Draw ``(K, 2)`` landmarks, landmark ``r`` in ``colors[r]`` (default
    :func:`landmark_colors`); ``labels=True`` writes each index next to its point
    (factorized-spatial-embeddings chapter: unsupervised landmarks have indices, not names)."""
    pts = _points(landmarks, "landmarks", ndim=2, shape_text="(K, 2)")
    size = checks.number(size, "size", minimum=0.0)
    cols = landmark_colors(len(pts)) if colors is None else colors
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c=cols, marker=marker, edgecolors=edgecolor, linewidths=0.6,
               label=label, zorder=3, **scatter_kwargs)
    if labels:
        for r, (x, y) in enumerate(pts):
            ax.annotate(str(r), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7, color="white",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "black", "alpha": 0.5, "lw": 0})
    return ax


def draw_matches(ax, image1, image2, kp1, kp2, matches, correct=None, gap: int = 8, max_lines: int | None = 300,
                 linewidth: float = 0.7, title: str | None = None, seed: int = 0):
    """Draw two images side by side and a line for each match (D2-Net chapter).

    ``kp1`` ``(N1, 2)`` and ``kp2`` ``(N2, 2)`` are keypoints in each image's pixels,
    ``matches`` ``(P, 2)`` index pairs. ``correct`` (``(P,)`` booleans, optional) colours
    lines green (correct) or red (wrong); otherwise all are blue. At most ``max_lines``
    matches are drawn (a fixed random subset, so the figure stays readable); keypoints
    are drawn as small dots. Returns the x offset of the second image.
    """
    a, b = to_hwc(image1, "image1"), to_hwc(image2, "image2")
    gap = checks.integer(gap, "gap", minimum=0)
    max_lines = None if max_lines is None else checks.integer(max_lines, "max_lines", minimum=1)
    linewidth = checks.number(linewidth, "linewidth", minimum=0.0, min_open=True)
    seed = checks.integer(seed, "seed", minimum=0)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if b.ndim == 2:
        b = np.repeat(b[..., None], 3, axis=2)
    h = max(a.shape[0], b.shape[0])
    canvas = np.ones((h, a.shape[1] + gap + b.shape[1], 3), dtype=np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a[..., :3]
    dx = a.shape[1] + gap
    canvas[: b.shape[0], dx:] = b[..., :3]
    ax.imshow(np.clip(canvas, 0, 1), extent=(-0.5, canvas.shape[1] - 0.5, h - 0.5, -0.5), interpolation="nearest")
    p1 = _points(kp1, "kp1", ndim=2, shape_text="(N1, 2)")
    p2 = _points(kp2, "kp2", ndim=2, shape_text="(N2, 2)")
    m = checks.as_array(matches, "matches")
    if m.size == 0:
        m = m.reshape(0, 2)
    if m.ndim != 2 or m.shape[1] != 2:
        raise ValueError(f"matches must have shape (P, 2) (index pairs), got shape {m.shape}")
    if not np.all(np.isfinite(m)) or not np.all(m == np.round(m)):
        raise ValueError("matches must hold integer indices (P, 2), got non-integer values")
    m = m.astype(int)
    if m.size and (m[:, 0].max() >= len(p1) or m[:, 1].max() >= len(p2) or m.min() < 0):
        raise ValueError(f"matches index outside the keypoint arrays ({len(p1)} and {len(p2)} keypoints)")
    ok = None
    if correct is not None:
        ok = checks.as_array(correct, "correct", allow_bool=True).reshape(-1)
        if len(ok) != len(m):
            raise ValueError(f"correct must have one entry per match ({len(m)}), got {len(ok)}")
        if ok.size:
            checks.visibility(ok, "correct", ok.shape, backend="numpy")  # finite
        ok = ok.astype(bool)
    ax.scatter(p1[:, 0], p1[:, 1], s=3, c="yellow", linewidths=0)
    ax.scatter(p2[:, 0] + dx, p2[:, 1], s=3, c="yellow", linewidths=0)
    sel = np.arange(len(m))
    if max_lines is not None and len(m) > max_lines:
        sel = np.sort(np.random.default_rng(seed).choice(len(m), max_lines, replace=False))
    for t in sel:
        i, j = m[t]
        c = "tab:blue" if ok is None else ("#29bf12" if ok[t] else "#e4572e")
        ax.plot([p1[i, 0], p2[j, 0] + dx], [p1[i, 1], p2[j, 1]], c=c, lw=linewidth, alpha=0.8)
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return dx
