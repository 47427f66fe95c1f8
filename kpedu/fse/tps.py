"""Thin-plate-spline warps, batched and differentiable, on any device (factorized spatial
embeddings chapter, ``book/ch03-fse``; Thewlis et al., ICCV 2017, Sec. 3.3 and 4).

A warp ``g`` is a smooth map of the image plane. Warping an image ``x`` by ``g`` gives the
image ``x'`` in which the content at ``p`` in ``x`` appears at ``g(p)``: ``x'(g(p)) = x(p)``,
what the FSE chapter writes ``x' = x o g`` for short. Landmarks follow the points, so a detector
``Phi`` is *equivariant* when ``Phi(x') = g(Phi(x))`` (the FSE chapter's equivariance condition).

- :class:`ThinPlateSpline` is one batch of TPS point maps
  ``f(p) = A p + b + sum_i w_i U(|p - c_i|)`` with ``U(r) = r^2 log r^2`` and control
  points ``c_i``; :meth:`ThinPlateSpline.fit` solves for the map that sends control points
  ``src`` to ``dst`` (exactly, or smoothed with a regulariser).
- :class:`Warp` is what the chapter handles: a point map in pixel coordinates with its
  inverse (Newton's method, since a TPS has no closed-form inverse) and image resampling.
  :class:`TPSWarp` is a TPS fitted in normalised coordinates; :meth:`Warp.then` composes
  warps, so the paper's training pair ``g1 o x`` and ``g2 o (g1 o x)`` is
  ``x1 = g1.warp_images(x)``, ``x2 = g2.warp_images(x1)`` or, with a single resampling,
  ``g1.then(g2).warp_images(x)``.
- :func:`random_tps` samples the random warps used for training: a random similarity
  (rotation, scale, translation) composed with random displacements of a grid of control
  points.

Conventions (``book/notation.md``): points are ``(x, y)`` pixel coordinates with pixel
centres at integers, so an image of width ``W`` spans ``[-0.5, W - 0.5]``. Internally the
TPS lives in the normalised coordinates of :func:`torch.nn.functional.grid_sample` with
``align_corners=False`` (``-1`` and ``1`` are the image edges), which keeps the linear
systems well conditioned whatever the image size.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks

__all__ = [
    "tps_kernel",
    "ThinPlateSpline",
    "Warp",
    "TPSWarp",
    "ComposedWarp",
    "random_tps",
    "pixel_to_normalized",
    "normalized_to_pixel",
    "pixel_grid",
]


def _size(image_size: int | Sequence[int], name: str = "image_size") -> tuple[int, int]:
    """``S`` or ``(H, W)``, at least 2 x 2 (:func:`kpedu.checks.size`)."""
    return checks.size(image_size, name, minimum=2)


def _float_dtype(x) -> torch.dtype | None:
    """A floating tensor's own dtype (float64 stays float64); ``None`` (float32) otherwise."""
    return x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else None


def _points(points: torch.Tensor, name: str = "points") -> torch.Tensor:
    """Points ``(B, P, 2)`` as a finite float tensor (its float dtype and device kept;
    :func:`kpedu.checks.points`)."""
    return checks.points(points, name, ndim=3, allow_nan=False, dtype=_float_dtype(points), shape_text="(B, P, 2)")


def _coords(points, name: str = "points") -> torch.Tensor:
    """``(..., 2)`` coordinates for the pixel <-> normalised maps; NaN (a missing point) stays NaN."""
    return checks.points(points, name, ndim=None, allow_nan=True, dtype=_float_dtype(points))


def pixel_to_normalized(points: torch.Tensor, image_size: int | Sequence[int]) -> torch.Tensor:
    """Pixel ``(x, y)`` to :func:`~torch.nn.functional.grid_sample` coordinates
    (``align_corners=False``): ``u = (2 x + 1) / W - 1``, so ``-0.5 -> -1`` and ``W - 0.5 -> 1``.

    ``points`` is ``(..., 2)``; NaN (a missing point) stays NaN."""
    points = _coords(points)
    return _to_normalized(points, _size(image_size))


def _to_normalized(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    scale = points.new_tensor([w, h])
    return (2 * points + 1) / scale - 1


def normalized_to_pixel(points: torch.Tensor, image_size: int | Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`pixel_to_normalized`: ``x = ((u + 1) W - 1) / 2``."""
    points = _coords(points)
    return _to_pixel(points, _size(image_size))


def _to_pixel(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    scale = points.new_tensor([w, h])
    return ((points + 1) * scale - 1) / 2


def pixel_grid(image_size: int | Sequence[int], batch: int = 1, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The pixel centres of an ``(H, W)`` image as points ``(batch, H * W, 2)``, row-major."""
    h, w = _size(image_size)
    batch = checks.integer(batch, "batch", minimum=1)
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
                            indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).reshape(1, h * w, 2)
    return grid.expand(batch, -1, -1)


def tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    """The thin-plate radial basis ``U = r^2 log r^2`` of the squared distance ``r2``
    (``U(0) = 0``, its limit). The factor relative to ``r^2 log r`` is absorbed by the weights.

    ``r2`` is a tensor (or array) of any shape of finite squared distances ``>= 0``."""
    r2 = checks.as_tensor(r2, "r2", dtype=_float_dtype(r2) or torch.float32)
    if r2.device.type != "meta" and r2.numel():
        if not bool(torch.isfinite(r2).all()):
            raise ValueError(f"r2 must be finite, got {'NaN' if bool(torch.isnan(r2).any()) else 'inf'}")
        if float(r2.min()) < 0:
            raise ValueError(f"r2 holds squared distances, which must be >= 0; got {float(r2.min()):g}")
    return _tps_kernel(r2)


def _tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    return r2 * torch.log(r2.clamp_min(torch.finfo(r2.dtype).tiny))


def _kernel_grad(diff: torch.Tensor) -> torch.Tensor:
    """d U(|d|^2) / d d for ``diff`` ``(..., 2)``: ``2 d (log |d|^2 + 1)`` (0 at d = 0)."""
    r2 = (diff * diff).sum(-1, keepdim=True)
    return 2 * diff * (torch.log(r2.clamp_min(torch.finfo(r2.dtype).tiny)) + 1)


def _solve2x2(m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Solve ``m x = r`` for stacks of 2x2 systems ``m`` ``(..., 2, 2)``, ``r`` ``(..., 2)``
    (closed form; much faster than a batched LU for millions of tiny systems)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    det = torch.where(det.abs() > 1e-12, det, torch.full_like(det, 1e-12))
    x = (d * r[..., 0] - b * r[..., 1]) / det
    y = (a * r[..., 1] - c * r[..., 0]) / det
    return torch.stack([x, y], -1)


class ThinPlateSpline:
    """A batch of 2-D thin-plate splines ``f(p) = A p + b + sum_i w_i U(|p - c_i|^2)``.

    Args:
        control: ``(B, N, 2)`` control points ``c_i``.
        weights: ``(B, N, 2)`` radial weights ``w_i`` (rows: control points).
        affine: ``(B, 3, 2)``; ``f(p) = [p, 1] @ affine + sum_i U_i w_i``, so
            ``affine[:, :2]`` is ``A^T`` and ``affine[:, 2]`` is ``b``.

    Use :meth:`fit` to build one from corresponding points. Everything is differentiable
    with respect to the points it is applied to (and to the parameters).
    """

    def __init__(self, control: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor) -> None:
        checks.same_device(control=control, weights=weights, affine=affine)
        control = _points(control, "control")
        # finite, non-empty float tensors (the kind kpedu.checks calls maps)
        weights = checks.maps(weights, "weights", ndim=3, shape_text="(B, N, 2)")
        affine = checks.maps(affine, "affine", ndim=3, shape_text="(B, 3, 2)")
        if weights.shape != control.shape:
            raise ValueError(f"weights must have the shape of control {tuple(control.shape)}, got {tuple(weights.shape)}")
        if affine.shape != (control.shape[0], 3, 2):
            raise ValueError(f"affine must have shape ({control.shape[0]}, 3, 2), got {tuple(affine.shape)}")
        self.control, self.weights, self.affine = control, weights, affine

    @classmethod
    def _trusted(cls, control: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor) -> "ThinPlateSpline":
        """A spline from parameters that are already checked (no copies, no checks)."""
        tps = cls.__new__(cls)
        tps.control, tps.weights, tps.affine = control, weights, affine
        return tps

    @property
    def batch(self) -> int:
        return self.control.shape[0]

    @classmethod
    def fit(cls, src: torch.Tensor, dst: torch.Tensor, regularization: float = 0.0) -> "ThinPlateSpline":
        """The TPS with control points ``src`` ``(B, N, 2)`` that maps them to ``dst``:
        it solves ``[[K + lambda I, P], [P^T, 0]] [w; a] = [dst; 0]`` with
        ``K_ij = U(|src_i - src_j|^2)`` and ``P = [src, 1]``. ``regularization = 0`` (``lambda``)
        interpolates exactly; larger values trade exactness for smoothness. Needs at least
        three control points that are not on one line."""
        checks.same_device(src=src, dst=dst)
        src, dst = _points(src, "src"), _points(dst, "dst")
        if src.shape != dst.shape:
            raise ValueError(f"src and dst must have the same shape, got {tuple(src.shape)} and {tuple(dst.shape)}")
        b, n, _ = src.shape
        if n < 3:
            raise ValueError(f"a thin-plate spline needs at least 3 control points, got {n}")
        regularization = checks.number(regularization, "regularization", minimum=0)
        return cls._fit(src, dst, regularization)

    @classmethod
    def _fit(cls, src: torch.Tensor, dst: torch.Tensor, regularization: float = 0.0) -> "ThinPlateSpline":
        b, n, _ = src.shape
        dtype = torch.float64  # the system is small; solve it in double precision
        s, d = src.to(dtype), dst.to(dtype)
        k = _tps_kernel(torch.cdist(s, s).square())
        k = k + regularization * torch.eye(n, dtype=dtype, device=s.device)
        p = torch.cat([s, torch.ones(b, n, 1, dtype=dtype, device=s.device)], dim=-1)
        top = torch.cat([k, p], dim=-1)
        bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=dtype, device=s.device)], dim=-1)
        system = torch.cat([top, bottom], dim=1)
        rhs = torch.cat([d, torch.zeros(b, 3, 2, dtype=dtype, device=s.device)], dim=1)
        try:
            sol = torch.linalg.solve(system, rhs)
        except RuntimeError as e:  # singular: collinear or repeated control points
            raise ValueError("cannot fit the thin-plate spline: control points are repeated or collinear") from e
        return cls._trusted(src, sol[:, :n].to(src.dtype), sol[:, n:].to(src.dtype))

    def _checked(self, points) -> torch.Tensor:
        checks.same_device(points=points, spline=self.control)
        points = _points(points)
        self._check_batch(points)
        return points

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """``f(points)`` for ``points`` ``(B, P, 2)`` (same batch and device as the spline)."""
        return self._apply(self._checked(points))

    def _apply(self, points: torch.Tensor) -> torch.Tensor:
        u = _tps_kernel(torch.cdist(points, self.control.to(points.dtype)).square())
        w, a = self.weights.to(points.dtype), self.affine.to(points.dtype)
        return points @ a[:, :2] + a[:, 2:] + u @ w

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """``df/dp`` at ``points``: ``(B, P, 2, 2)`` with ``J[..., i, j] = d f_i / d p_j``."""
        return self._jacobian(self._checked(points))

    def _jacobian(self, points: torch.Tensor) -> torch.Tensor:
        diff = points[:, :, None, :] - self.control[:, None, :, :].to(points.dtype)  # (B, P, N, 2)
        grad = _kernel_grad(diff)  # (B, P, N, 2): dU_n/dp_j
        w, a = self.weights.to(points.dtype), self.affine.to(points.dtype)
        radial = torch.einsum("bpnj,bni->bpij", grad, w)
        return a[:, :2].transpose(1, 2)[:, None] + radial

    def value_and_jacobian(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``f(points)`` and ``df/dp`` together, sharing the pairwise differences."""
        return self._value_and_jacobian(self._checked(points))

    def _value_and_jacobian(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = points[:, :, None, :] - self.control[:, None, :, :].to(points.dtype)  # (B, P, N, 2)
        r2 = (diff * diff).sum(-1)
        log = torch.log(r2.clamp_min(torch.finfo(r2.dtype).tiny))
        w, a = self.weights.to(points.dtype), self.affine.to(points.dtype)
        value = points @ a[:, :2] + a[:, 2:] + (r2 * log) @ w
        grad = 2 * diff * (log + 1).unsqueeze(-1)
        jac = a[:, :2].transpose(1, 2)[:, None] + torch.einsum("bpnj,bni->bpij", grad, w)
        return value, jac

    def _check_batch(self, points: torch.Tensor) -> None:
        if points.shape[0] != self.batch:
            raise ValueError(f"points have batch {points.shape[0]} but the spline has batch {self.batch}")

    def to(self, *args, **kwargs) -> "ThinPlateSpline":
        return ThinPlateSpline._trusted(self.control.to(*args, **kwargs), self.weights.to(*args, **kwargs),
                                        self.affine.to(*args, **kwargs))


class Warp:
    """A batch of point maps ``g`` of the image plane, in pixel coordinates, with an inverse.

    Subclasses implement :meth:`points` and :meth:`inverse_points`; :meth:`warp_images`
    resamples images so that the content at ``p`` moves to ``g(p)`` (each output pixel
    ``q`` reads the input at ``g^{-1}(q)``), and :meth:`then` composes warps.
    """

    image_size: tuple[int, int]
    batch: int

    def points(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``g(points)``, points ``(B, P, 2)`` in pixels."""
        raise NotImplementedError

    def inverse_points(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``g^{-1}(points)``, points ``(B, P, 2)`` in pixels."""
        raise NotImplementedError

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        return self.points(points)

    def then(self, other: "Warp") -> "ComposedWarp":
        """The warp ``other o self``: first ``self``, then ``other``."""
        return ComposedWarp([self, other])

    def sampling_grid(self, out_size: int | Sequence[int] | None = None) -> torch.Tensor:
        """``g^{-1}`` at the output pixel centres as a ``grid_sample`` grid ``(B, H, W, 2)``."""
        h, w = self.image_size if out_size is None else _size(out_size, "out_size")
        dev = self._device()
        grid = pixel_grid((h, w), self.batch, device=dev)
        src = self.inverse_points(grid)
        return _to_normalized(src, self.image_size).reshape(self.batch, h, w, 2)

    def warp_images(self, images: torch.Tensor, padding_mode: str = "reflection", mode: str = "bilinear",
                    out_size: int | Sequence[int] | None = None) -> torch.Tensor:
        """Warp ``images`` ``(B, C, H, W)``: the output at ``q`` is the input at ``g^{-1}(q)``
        (bilinear, ``align_corners=False``). Outside the input, ``padding_mode`` decides
        (``"reflection"``, ``"border"`` or ``"zeros"``). Differentiable in ``images``.

        ``images`` follow the one rule for images (:func:`kpedu.checks.image`): float in
        [0, 1] or uint8 (scaled by 1/255, so the result is float in [0, 1]), any number of
        channels."""
        images = checks.image(images, "images", ndim=4, channels=None, shape_text="(B, C, H, W)",
                              dtype=_float_dtype(images) or torch.float32)
        padding_mode = checks.choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))
        mode = checks.choice(mode, "mode", ("bilinear", "nearest", "bicubic"))
        if images.shape[0] != self.batch:
            raise ValueError(f"images have batch {images.shape[0]} but the warp has batch {self.batch}")
        if tuple(images.shape[-2:]) != tuple(self.image_size):
            raise ValueError(f"images are {tuple(images.shape[-2:])} but the warp is for {self.image_size}")
        grid = self.sampling_grid(out_size).to(images.device)
        dtype = images.dtype
        return F.grid_sample(images, grid.to(dtype), mode=mode, padding_mode=padding_mode,
                             align_corners=False)

    def _device(self) -> torch.device:  # pragma: no cover - interface
        raise NotImplementedError


class TPSWarp(Warp):
    """A thin-plate-spline warp ``g`` of ``(H, W)`` images. The :class:`ThinPlateSpline`
    ``tps`` acts on normalised coordinates (``-1 .. 1`` across the image).

    A TPS has no closed-form inverse, so one of the two directions needs Newton's method.
    ``sampling=False``: ``tps`` *is* ``g`` (points move in closed form; images need
    ``g^{-1}`` at every pixel). ``sampling=True``: ``tps`` is ``g^{-1}``, the map images are
    sampled through (images warp in closed form; only the ``K`` landmarks need Newton).
    Training uses the second, since images are many pixels and landmarks are few.

    Newton starts from the inverse of the affine part and stops when the residual is
    below the rounding floor; :meth:`inverse_points` (or :meth:`points`) raises if it
    stays above ``tol`` pixels, which happens only for warps that fold over themselves.
    """

    def __init__(self, tps: ThinPlateSpline, image_size: int | Sequence[int], sampling: bool = False,
                 newton_steps: int = 20, tol: float = 1e-3) -> None:
        if not isinstance(tps, ThinPlateSpline):
            raise TypeError(f"tps must be a ThinPlateSpline, got {type(tps).__name__}")
        self.tps = tps
        self.image_size = _size(image_size)
        self.batch = tps.batch
        self.sampling = bool(sampling)
        self.newton_steps = checks.integer(newton_steps, "newton_steps", minimum=1)
        self.tol = checks.number(tol, "tol", minimum=0, min_open=True)

    @classmethod
    def fit(cls, src: torch.Tensor, dst: torch.Tensor, image_size: int | Sequence[int],
            regularization: float = 0.0, sampling: bool = False) -> "TPSWarp":
        """The TPS warp mapping pixel points ``src`` ``(B, N, 2)`` to ``dst`` (with
        ``sampling=True`` it stores the inverse direction, fitted from ``dst`` to ``src``)."""
        size = _size(image_size)
        checks.same_device(src=src, dst=dst)
        s = _to_normalized(_points(src, "src"), size)
        d = _to_normalized(_points(dst, "dst"), size)
        tps = ThinPlateSpline.fit(d, s, regularization) if sampling else ThinPlateSpline.fit(s, d, regularization)
        return cls(tps, size, sampling=sampling)

    def _device(self) -> torch.device:
        return self.tps.control.device

    def _apply(self, points: torch.Tensor) -> torch.Tensor:
        return _to_pixel(self.tps._apply(_to_normalized(points, self.image_size)), self.image_size)

    def _checked(self, points) -> torch.Tensor:
        checks.same_device(points=points, warp=self.tps.control)
        points = _points(points)
        self.tps._check_batch(points)
        return points

    def points(self, points: torch.Tensor) -> torch.Tensor:
        """``g(points)``, points ``(B, P, 2)`` in pixels (same batch and device as the warp)."""
        points = self._checked(points)
        return self._newton(points) if self.sampling else self._apply(points)

    def inverse_points(self, points: torch.Tensor) -> torch.Tensor:
        """``g^{-1}(points)``, points ``(B, P, 2)`` in pixels."""
        points = self._checked(points)
        return self._apply(points) if self.sampling else self._newton(points)

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """``dg/dp`` in pixel units ``(B, P, 2, 2)`` (its determinant is the local area change)."""
        points = self._checked(points)
        h, w = self.image_size
        s = points.new_tensor([w, h])
        if self.sampling:  # dg/dp = (d g^{-1} / dq at q = g(p))^{-1}
            q = self._newton(points)
            j = self.tps._jacobian(_to_normalized(q, self.image_size).to(self.tps.control.dtype))
            j = torch.linalg.inv(j.to(points.dtype))
        else:
            j = self.tps._jacobian(_to_normalized(points, self.image_size))
        return j * s[None, None, :, None] / s[None, None, None, :]

    def _newton(self, points: torch.Tensor) -> torch.Tensor:
        """Solve ``tps(u) = points`` for ``u`` (pixels in, pixels out); differentiable
        through the unrolled iterations."""
        target = _to_normalized(points, self.image_size)
        work = torch.float64 if target.dtype == torch.float64 else torch.float32
        tps = self.tps.to(work)
        t = target.to(work)
        a = tps.affine
        u = (t - a[:, 2:]) @ torch.linalg.inv(a[:, :2])
        eps = 1e-9 if work == torch.float64 else 1e-5  # normalised units, near the rounding floor
        for _ in range(self.newton_steps):
            value, jac = tps._value_and_jacobian(u)
            r = value - t
            if r.detach().abs().max() < eps:
                break
            u = u - _solve2x2(jac, r)
        resid = _to_pixel(tps._apply(u), self.image_size) - _to_pixel(t, self.image_size)
        err = float(resid.detach().norm(dim=-1).max()) if resid.numel() else 0.0
        if not math.isfinite(err) or err > self.tol:
            raise RuntimeError(f"TPS inversion did not converge (residual {err:.3g} px): the warp may fold over "
                               "itself; use a weaker warp")
        return _to_pixel(u, self.image_size).to(points.dtype)

    def min_jacobian_determinant(self, step: int = 2) -> torch.Tensor:
        """Smallest determinant of the stored spline's Jacobian over the image (sampled every
        ``step`` pixels), per warp. Positive means the warp does not fold over itself (and
        then neither does its inverse); near 0 means strong local compression."""
        step = checks.integer(step, "step", minimum=1)
        h, w = self.image_size
        ys, xs = torch.meshgrid(torch.arange(0, h, step, dtype=torch.float32),
                                torch.arange(0, w, step, dtype=torch.float32), indexing="ij")
        grid = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(self.batch, -1, -1).to(self._device())
        j = self.tps._jacobian(_to_normalized(grid, self.image_size))
        return torch.linalg.det(j).amin(dim=1)


class ComposedWarp(Warp):
    """``warps[-1] o ... o warps[0]``: points go through the warps in order, inverses in
    reverse order, and :meth:`warp_images` resamples once."""

    def __init__(self, warps: Sequence[Warp]) -> None:
        flat: list[Warp] = []
        for wp in warps:
            if not isinstance(wp, Warp):
                raise TypeError(f"can only compose Warp objects, got {type(wp).__name__}")
            flat.extend(wp.warps if isinstance(wp, ComposedWarp) else [wp])
        if not flat:
            raise ValueError("ComposedWarp needs at least one warp")
        sizes = {tuple(wp.image_size) for wp in flat}
        batches = {wp.batch for wp in flat}
        if len(sizes) != 1 or len(batches) != 1:
            raise ValueError(f"warps must share image size and batch, got sizes {sizes} and batches {batches}")
        self.warps = flat
        self.image_size = flat[0].image_size
        self.batch = flat[0].batch

    def _device(self) -> torch.device:
        return self.warps[0]._device()

    def points(self, points: torch.Tensor) -> torch.Tensor:
        for wp in self.warps:
            points = wp.points(points)
        return points

    def inverse_points(self, points: torch.Tensor) -> torch.Tensor:
        for wp in reversed(self.warps):
            points = wp.inverse_points(points)
        return points


def _range(value, name: str, minimum: float | None = None, min_open: bool = False) -> tuple[float, float]:
    """A number ``v`` (the range ``(v, v)``) or a ``(low, high)`` pair with ``low <= high``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or \
            (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0):
        lo = hi = checks.number(value, name, minimum=minimum, min_open=min_open)
        return lo, hi
    items = list(value)
    if len(items) != 2:
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {len(items)} values")
    lo = checks.number(items[0], f"{name}[0] (low)", minimum=minimum, min_open=min_open)
    hi = checks.number(items[1], f"{name}[1] (high)", minimum=minimum, min_open=min_open)
    if lo > hi:
        raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {value!r}")
    return lo, hi


def random_tps(batch: int, image_size: int | Sequence[int], strength: float = 1.0, *, rotation: float = 10.0,
               scale: float | Sequence[float] = (0.9, 1.1), translation: float = 0.05, grid: int = 5,
               displacement: float = 0.06, sampling: bool = True, generator: torch.Generator | None = None,
               device=None) -> TPSWarp:
    """Random TPS warps for equivariance training (Thewlis et al., Sec. 4: the
    ``g1`` and ``g2`` of the training pair).

    A ``grid x grid`` lattice of control points over the image is displaced by Gaussian
    noise of standard deviation ``displacement`` (fraction of the half-width), then a
    random similarity is applied: rotation uniform in ``+-rotation`` degrees, scale
    log-uniform in ``scale`` about the image centre, translation uniform in ``+-translation``
    (fraction of the half-width). ``strength`` multiplies the rotation, the log-scale, the
    translation and the displacement together (0: the identity), which is what the
    chapter's widget varies.

    The random map is drawn as the sampling map ``g^{-1}`` (``sampling=True``, the
    default: images warp in closed form, points by Newton's method) or as ``g`` itself
    (``sampling=False``); both give the same distribution of shapes.

    Returns a :class:`TPSWarp` of batch ``batch``. Deterministic given ``generator``.
    """
    batch = checks.integer(batch, "batch", minimum=1)
    size = _size(image_size)
    grid = checks.integer(grid, "grid", minimum=2)
    strength = checks.number(strength, "strength", minimum=0)
    rotation = checks.number(rotation, "rotation", minimum=0)
    translation = checks.number(translation, "translation", minimum=0)
    displacement = checks.number(displacement, "displacement", minimum=0)
    lo, hi = _range(scale, "scale", minimum=0, min_open=True)

    def uniform(n: int, *shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, generator=generator) * 2 - 1

    lin = torch.linspace(-1.0, 1.0, grid)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    src = torch.stack([gx, gy], -1).reshape(1, grid * grid, 2).expand(batch, -1, -1)
    noise = torch.randn(batch, grid * grid, 2, generator=generator) * displacement * strength
    angle = uniform(batch) * rotation * strength * math.pi / 180
    log_s = math.log(lo) + torch.rand(batch, generator=generator) * (math.log(hi) - math.log(lo))
    s = torch.exp(log_s * strength)
    shift = uniform(batch, 2) * translation * strength
    h, w = size
    # rotate in pixel-isotropic coordinates: scale x by the aspect ratio around the rotation
    aspect = torch.tensor([w / h, 1.0])
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    moved = src + noise
    dst = ((moved * aspect) @ rot.transpose(1, 2)) * s[:, None, None] / aspect + shift[:, None, :]
    tps = ThinPlateSpline._fit(src.contiguous(), dst)
    if device is not None:
        tps = tps.to(device)
    return TPSWarp(tps, size, sampling=sampling)
