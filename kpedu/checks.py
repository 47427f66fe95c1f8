"""Argument checks at the boundary of kpedu's public functions.

Each *kind* of argument has one function here, and every public function of kpedu calls
these instead of writing its own tests, so that the same input gets the same treatment
everywhere:

=================  =======================================================================
kind               rule
=================  =======================================================================
points             ``(..., 2)`` ``(x, y)`` numbers; integers become float; complex, text
                   and booleans are a ``TypeError``; ``inf`` is a ``ValueError``; ``NaN``
                   only where the caller allows it (a missing prediction).
visibility         one flag per keypoint, the keypoints' leading shape; ``> 0`` means
                   labelled; ``NaN`` is a ``ValueError``.
maps               heatmaps, PAFs, feature maps: float, non-empty, finite.
images             float in ``[0, 1]``, or ``uint8`` in ``[0, 255]``, which is scaled by
                   1/255 (the one rule for every image argument, ``book/notation.md``);
                   other integer types and booleans are a ``TypeError``; ``NaN``/``inf``
                   and float values far outside ``[0, 1]`` (a 0-255 image stored as
                   float) are a ``ValueError``.
sizes, counts      integers (an integral float such as ``64.0`` is accepted), within
                   their range; booleans are a ``TypeError``.
numbers            finite real numbers within their range: thresholds, sigmas,
                   probabilities, margins. ``NaN`` is always a ``ValueError``.
devices            tensors that meet in one computation must be on one device.
=================  =======================================================================

Errors are ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (right kind,
wrong shape or value), and the message always starts with the argument's name, then says
what was expected and what was given: ``"sigma must be a finite number > 0, got nan"``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "describe",
    "as_tensor",
    "as_array",
    "points",
    "visibility",
    "maps",
    "image",
    "network_images",
    "size",
    "integer",
    "number",
    "probability",
    "optional_number",
    "choice",
    "same_device",
    "index",
    "IMAGE_FLOAT_RANGE",
]

#: Float images are expected in [0, 1]. Values outside this wider interval cannot come
#: from photometric augmentation of a [0, 1] image and are taken for a 0-255 image stored
#: as float, or for an image normalised with a mean and standard deviation.
IMAGE_FLOAT_RANGE = (-1.0, 2.0)


def describe(x: Any) -> str:
    """A short description of a value for error messages: type, dtype and shape."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}" + (
            f" on {x.device}" if x.device.type != "cpu" else "")
    if isinstance(x, np.ndarray):
        return f"a {x.dtype} array of shape {x.shape}"
    if isinstance(x, (str, bytes)):
        return f"the text {x!r}" if len(x) < 40 else f"a text of {len(x)} characters"
    if isinstance(x, (bool, numbers.Number)):
        return repr(x)
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"a {type(x).__name__}"


def _dtype_kind(x: Any) -> str:
    """numpy's kind letter of x's element type: 'f', 'i', 'u', 'b', 'c', 'O', 'U', ..."""
    if isinstance(x, torch.Tensor):
        if x.dtype.is_complex:
            return "c"
        if x.dtype == torch.bool:
            return "b"
        if x.dtype.is_floating_point:
            return "f"
        return "u" if x.dtype == torch.uint8 else "i"
    return np.asarray(x).dtype.kind


def _numeric(x: Any, name: str, *, allow_bool: bool = False) -> Any:
    """x as a torch tensor or numpy array of real numbers (TypeError otherwise)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {describe(x)}")
    if not isinstance(x, torch.Tensor):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as e:  # ragged lists
            raise TypeError(f"{name} must be an array of numbers, got {describe(x)} ({e})") from None
    kind = _dtype_kind(x)
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex values ({describe(x)}); "
                        "pass the real part explicitly if that is what you mean")
    if kind == "b" and not allow_bool:
        raise TypeError(f"{name} must hold numbers, got booleans ({describe(x)})")
    if kind not in "fiub":
        raise TypeError(f"{name} must be an array of numbers, got {describe(x)}")
    return x


def as_tensor(x: Any, name: str, *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None, allow_bool: bool = False) -> torch.Tensor:
    """``x`` (tensor, array, list) as a real tensor of ``dtype``; integers become float.

    Complex, text, object and (unless ``allow_bool``) boolean inputs raise ``TypeError``.
    A tensor stays on its device unless ``device`` is given.
    """
    x = _numeric(x, name, allow_bool=allow_bool)
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device if device is not None else x.device)
    return torch.as_tensor(np.asarray(x, dtype=np.float64) if dtype.is_floating_point else x,
                           dtype=dtype, device=device)


def as_array(x: Any, name: str, *, dtype: Any = np.float64, allow_bool: bool = False) -> np.ndarray:
    """``x`` as a numpy array of real ``dtype`` (tensors are detached and moved to the CPU)."""
    x = _numeric(x, name, allow_bool=allow_bool)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_finite(x: Any, name: str, *, allow_nan: bool) -> None:
    # Fast path: integers are always finite, and a finite sum proves every value finite
    # (one reduction instead of two mask passes; an overflowing sum falls through to the
    # exact test below). This runs on every map a public function receives, so it matters.
    if isinstance(x, torch.Tensor):
        if x.device.type == "meta" or not (x.is_floating_point() or x.is_complex()):
            return
        if x.numel() == 0 or bool(torch.isfinite(x.sum())):
            return
        bad_inf = bool(torch.isinf(x).any())
        bad_nan = bool(torch.isnan(x).any())
    else:
        x = np.asarray(x)
        if x.dtype.kind not in "fc" or x.size == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(x.sum()):
                return
        bad_inf = bool(np.isinf(x).any())
        bad_nan = bool(np.isnan(x).any())
    if bad_inf:
        raise ValueError(f"{name} must be finite, got inf")
    if bad_nan and not allow_nan:
        raise ValueError(f"{name} must not contain NaN")


def _check_ndim(shape: Sequence[int], name: str, ndim: int | Iterable[int] | None, what: str) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(shape) not in allowed:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(shape)}")


def points(x: Any, name: str, *, ndim: int | Iterable[int] | None = (2, 3), allow_nan: bool = True,
           backend: str = "torch", dtype: Any = None, device: Any = None,
           shape_text: str | None = None) -> Any:
    """Keypoint coordinates ``(..., 2)`` as float (``torch`` float32 or ``numpy`` float64).

    ``NaN`` marks a missing point and is kept when ``allow_nan``; ``inf`` is always an
    error. Integer coordinates are converted, never truncated.
    """
    x = _numeric(x, name)
    shape = tuple(x.shape)
    what = shape_text or _shape_text(ndim, "2")
    if not shape or shape[-1] != 2:
        raise ValueError(f"{name} must have shape {what} with (x, y) last, got shape {shape}")
    _check_ndim(shape, name, ndim, what)
    if backend == "torch":
        out = as_tensor(x, name, dtype=dtype or torch.float32, device=device)
    else:
        out = as_array(x, name, dtype=dtype or np.float64)
    _check_finite(out, name, allow_nan=allow_nan)
    return out


def _shape_text(ndim: int | Iterable[int] | None, last: str) -> str:
    if ndim is None:
        return f"(..., {last})"
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    letters = {1: "", 2: "K, ", 3: "N, K, ", 4: "B, N, K, "}
    return " or ".join(f"({letters.get(n, '..., ')}{last})" for n in allowed)


def visibility(v: Any, name: str, shape: Sequence[int], *, backend: str = "torch",
               device: Any = None) -> Any:
    """Visibility flags as a boolean mask (``> 0``: labelled) of exactly ``shape``.

    ``None`` means every keypoint is labelled. Flags may be booleans or COCO's 0/1/2.
    """
    shape = tuple(int(s) for s in shape)
    if v is None:
        return torch.ones(shape, dtype=torch.bool, device=device) if backend == "torch" else np.ones(shape, bool)
    v = _numeric(v, name, allow_bool=True)
    if tuple(v.shape) != shape:
        if len(shape) > 1 and shape[0] == 1 and tuple(v.shape) == shape[1:]:
            v = v.reshape(shape)  # one person's flags for a batch of one
        else:
            raise ValueError(f"{name} must have shape {shape} (one flag per keypoint), got shape {tuple(v.shape)}")
    if backend == "torch":
        t = as_tensor(v, name, dtype=torch.float32, device=device, allow_bool=True)
        _check_finite(t, name, allow_nan=False)
        return t > 0
    a = as_array(v, name, allow_bool=True)
    _check_finite(a, name, allow_nan=False)
    return a > 0


def maps(x: Any, name: str, *, ndim: int | Iterable[int] | None = None, min_ndim: int = 3,
         channels: int | None = None, shape_text: str = "(..., C, H, W)",
         device: Any = None) -> torch.Tensor:
    """Heatmaps, PAFs or feature maps as a finite, non-empty float32 tensor."""
    x = _numeric(x, name)
    shape = tuple(x.shape)
    if ndim is not None:
        _check_ndim(shape, name, ndim, shape_text)
    elif len(shape) < min_ndim:
        raise ValueError(f"{name} must have shape {shape_text}, got shape {shape}")
    if channels is not None and shape[-3] != channels:
        raise ValueError(f"{name} must have {channels} channels in dimension -3 {shape_text}, got shape {shape}")
    if any(s == 0 for s in shape):
        raise ValueError(f"{name} is empty: shape {shape}")
    t = as_tensor(x, name, dtype=x.dtype if isinstance(x, torch.Tensor) and x.dtype.is_floating_point
                  else torch.float32, device=device)
    _check_finite(t, name, allow_nan=False)
    return t


def image(x: Any, name: str, *, ndim: int | Iterable[int] = (3,), channels: int | Iterable[int] | None = 3,
          shape_text: str | None = None, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An image or a batch of images as a float tensor in ``[0, 1]`` (channels first).

    ``uint8`` is scaled by 1/255. Any other integer type, booleans, complex values,
    ``NaN``/``inf`` and float values outside :data:`IMAGE_FLOAT_RANGE` are rejected.
    """
    x = _numeric(x, name, allow_bool=True)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    what = shape_text or " or ".join({3: "(C, H, W)", 4: "(B, C, H, W)", 2: "(H, W)"}[n] for n in allowed)
    shape = tuple(x.shape)
    if len(shape) not in allowed:
        raise ValueError(f"{name} must have shape {what}, got shape {shape}")
    if channels is not None and len(shape) >= 3:
        chans = (channels,) if isinstance(channels, int) else tuple(channels)
        if shape[-3] not in chans:
            raise ValueError(f"{name} must have {' or '.join(map(str, chans))} channels (shape {what}), "
                             f"got shape {shape}")
    if any(s == 0 for s in shape):
        raise ValueError(f"{name} is empty: shape {shape}")
    kind = _dtype_kind(x)
    is_uint8 = (x.dtype == torch.uint8) if isinstance(x, torch.Tensor) else (x.dtype == np.uint8)
    if kind == "b" or (kind in "iu" and not is_uint8):
        raise TypeError(f"{name} must be float in [0, 1] or uint8 in [0, 255], got {describe(x)}")
    if is_uint8:
        t = as_tensor(x, name, dtype=dtype, device=device) / 255.0
        return t
    t = as_tensor(x, name, dtype=dtype, device=device)
    if t.device.type != "meta" and t.numel():
        lo, hi = (float(v) for v in torch.aminmax(t))   # one pass; NaN and inf propagate
        if not (math.isfinite(lo) and math.isfinite(hi)):
            _check_finite(t, name, allow_nan=False)
        if lo < IMAGE_FLOAT_RANGE[0] or hi > IMAGE_FLOAT_RANGE[1]:
            raise ValueError(f"{name} must be float in [0, 1] (or uint8), got values in [{lo:.3g}, {hi:.3g}]; "
                             "divide a 0-255 image by 255")
    return t


def network_images(images: Any, model: torch.nn.Module, *, channels: int = 3, multiple: int = 1,
                   why: str = "", name: str = "images") -> torch.Tensor:
    """The images of a model's forward pass, checked at its boundary: ``(B, C, H, W)`` by
    :func:`image` (``uint8`` scaled by 1/255), ``H`` and ``W`` multiples of ``multiple``,
    on the device of the model's parameters (a non-tensor goes there).

    The values (NaN, range) are checked on the CPU only: on an accelerator that check would
    synchronise every training step, so there only shape, dtype and device are.
    """
    param = next(model.parameters(), None)
    if isinstance(images, torch.Tensor) and param is not None:
        same_device(**{name: images, "model": param})
    floating = isinstance(images, torch.Tensor) and images.dtype.is_floating_point
    dtype = images.dtype if floating else (param.dtype if param is not None else torch.float32)
    if floating and images.device.type not in ("cpu", "meta"):
        image(torch.empty_like(images, device="meta"), name, ndim=4, channels=channels)  # shape and dtype
        x = images
    else:
        device = None if isinstance(images, torch.Tensor) or param is None else param.device
        x = image(images, name, ndim=4, channels=channels, dtype=dtype, device=device)
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(f"{name} height and width must be multiples of {multiple}{why}, got {tuple(x.shape[-2:])}")
    return x


def integer(x: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``x`` as a Python int within ``[minimum, maximum]``."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {x!r}")
    if isinstance(x, torch.Tensor) and x.numel() == 1 and not x.dtype.is_complex:
        x = x.item()
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, numbers.Integral):
        value = int(x)
    elif isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral):
        xf = float(x)
        if not math.isfinite(xf) or xf != int(xf):
            raise ValueError(f"{name} must be an integer, got {x!r}")
        value = int(xf)
    else:
        raise TypeError(f"{name} must be an integer, got {describe(x)}")
    _range_check(value, name, minimum, maximum, False, False, "an integer")
    return value


def _range_check(value: float, name: str, lo, hi, lo_open: bool, hi_open: bool, what: str) -> None:
    bad = (lo is not None and (value < lo or (lo_open and value == lo))) or \
          (hi is not None and (value > hi or (hi_open and value == hi)))
    if bad:
        parts = []
        if lo is not None:
            parts.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            parts.append(f"{'<' if hi_open else '<='} {hi:g}")
        raise ValueError(f"{name} must be {what} {' and '.join(parts)}, got {value!r}")


def number(x: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
           min_open: bool = False, max_open: bool = False) -> float:
    """``x`` as a finite float within its range (``min_open``: strictly greater)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got {x!r}")
    if isinstance(x, (torch.Tensor, np.ndarray)):
        if (x.numel() if isinstance(x, torch.Tensor) else x.size) != 1:
            raise TypeError(f"{name} must be a single number, got {describe(x)}")
        if _dtype_kind(x) in "cb":
            raise TypeError(f"{name} must be a real number, got {describe(x)}")
        x = x.item()
    if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {x!r}")
    if not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a number, got {describe(x)}")
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _range_check(value, name, minimum, maximum, min_open, max_open, "a number")
    return value


def optional_number(x: Any, name: str, **kwargs) -> float | None:
    """:func:`number`, with ``None`` passed through (a switched-off option)."""
    return None if x is None else number(x, name, **kwargs)


def probability(x: Any, name: str) -> float:
    """A finite number in ``[0, 1]``."""
    return number(x, name, minimum=0.0, maximum=1.0)


def size(x: Any, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """A size ``S`` (square) or ``(H, W)`` as a pair of ints ``>= minimum``."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an int or a pair (H, W), got {describe(x)}")
    if isinstance(x, (numbers.Number, np.number)) or (isinstance(x, torch.Tensor) and x.numel() == 1):
        v = integer(x, name, minimum=minimum)
        return v, v
    try:
        items = list(x)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair (H, W), got {describe(x)}") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair (H, W), got {len(items)} values")
    return integer(items[0], f"{name}[0] (H)", minimum=minimum), integer(items[1], f"{name}[1] (W)", minimum=minimum)


def choice(x: Any, name: str, options: Iterable[Any]) -> Any:
    """``x`` if it is one of ``options`` (ValueError listing them otherwise)."""
    options = tuple(options)
    try:
        ok = x in options
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {x!r}")
    return x


def same_device(**tensors: Any) -> torch.device | None:
    """The one device of the named tensors (``None`` entries are skipped)."""
    devices = {n: t.device for n, t in tensors.items() if isinstance(t, torch.Tensor)}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise ValueError(f"{', '.join(devices)} must be on one device, got {listing}; move them with .to(device)")
    return next(iter(devices.values()), None)


def index(i: Any, length: int, name: str = "index") -> int:
    """A sequence index: an int in ``[-length, length)``, returned as ``[0, length)``."""
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (numbers.Integral, np.integer)):
        if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.dtype.is_floating_point \
                and i.dtype != torch.bool and not i.dtype.is_complex:
            i = int(i.item())
        else:
            raise TypeError(f"{name} must be an integer, got {describe(i)}")
    i = int(i)
    if not -length <= i < length:
        raise IndexError(f"{name} {i} is out of range for {length} items")
    return i % length if length else i
