"""Stacked Hourglass inference: last-stack heatmaps, flip testing, image keypoints.

Stacked Hourglass chapter. With kpedu's pixel convention (centres at integers) mirroring
an image of width ``W = s * W_h`` maps heatmap column ``x_h`` to ``W_h - 1 - x_h``
exactly, so flipped heatmaps need no one-pixel shift (a correction other code bases
apply because they place pixel centres differently).

Images follow the book's one rule (``book/notation.md``, :func:`kpedu.checks.image`):
float in ``[0, 1]``, or ``uint8``, which is scaled by 1/255; they are moved to the
model's device.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import checks
from ..codecs import GaussianHeatmapCodec

__all__ = ["predict_heatmaps", "predict_keypoints"]


def _model_device(model: torch.nn.Module) -> torch.device:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {checks.describe(model)}")
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _images(images, model: torch.nn.Module, name: str = "images", lazy: bool = False):
    """``images`` ``(N, 3, H, W)`` checked by :func:`kpedu.checks.image`.

    They are moved to the model's device by the callers, so a tensor on another device
    is fine, except on the meta device (it holds no data). With ``lazy`` a ``uint8``
    tensor is returned as it is (its shape and dtype checked), to be scaled batch by
    batch: a data set held as ``uint8`` takes four times less memory than as float.
    """
    _model_device(model)
    param = next(model.parameters(), None)
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor) and images.device.type == "meta" and param is not None:
        checks.same_device(**{name: images, "model": param})
    if lazy and isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        checks.image(torch.empty_like(images, device="meta"), name, ndim=4, channels=3)
        return images
    return checks.image(images, name, ndim=4, channels=3)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """One batch of :func:`_images`: ``uint8`` scaled to ``[0, 1]``, float as it is."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _flip_permutation(perm, k: int) -> list[int]:
    """``perm`` as a list: a permutation of ``range(k)`` (left <-> right keypoint types)."""
    if perm is None:
        raise ValueError("flip_test needs the skeleton's flip_permutation")
    a = checks.as_array(perm, "flip_permutation", dtype=None).reshape(-1)
    if a.dtype.kind not in "iu":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"flip_permutation must hold integer keypoint indices, got {a.tolist()}")
        a = a.astype(np.int64)
    if len(a) != k or sorted(a.tolist()) != list(range(k)):
        raise ValueError(f"flip_permutation must be a permutation of the {k} keypoint indices 0..{k - 1}, "
                         f"got {a.tolist()}")
    return a.tolist()


def _stack(stack, num_stacks: int) -> int:
    return checks.index(stack, num_stacks, "stack")


@torch.no_grad()
def predict_heatmaps(model: torch.nn.Module, images: torch.Tensor, flip_test: bool = False,
                     flip_permutation=None, stack: int = -1) -> torch.Tensor:
    """Heatmaps ``(B, K, H/4, W/4)`` of one stack (default: the last; negative indices
    count from the end).

    ``images`` ``(B, 3, H, W)``: float in ``[0, 1]``, or ``uint8`` (scaled by 1/255),
    moved to the model's device. With ``flip_test`` the mirrored image is run too; its
    heatmaps are mirrored back, their channels swapped with ``flip_permutation`` (left
    <-> right), and averaged with the direct ones. The model is put in eval mode for the
    call and restored afterwards.
    """
    x = _images(images, model)
    if flip_test and flip_permutation is None:
        raise ValueError("flip_test needs the skeleton's flip_permutation")
    num_stacks = getattr(model, "num_stacks", None)
    if isinstance(num_stacks, int):
        stack = _stack(stack, num_stacks)
    if flip_test and isinstance(getattr(model, "num_keypoints", None), int):
        flip_permutation = _flip_permutation(flip_permutation, model.num_keypoints)
    was_training = model.training
    model.eval()
    try:
        device = _model_device(model)
        x = x.to(device)
        outputs = model(x)
        heat = outputs[_stack(stack, len(outputs))].float()
        if flip_test:
            perm = _flip_permutation(flip_permutation, heat.shape[1])
            perm = torch.as_tensor(perm, dtype=torch.long, device=heat.device)
            mirrored = model(x.flip(-1))[_stack(stack, len(outputs))].float().flip(-1)[:, perm]
            heat = 0.5 * (heat + mirrored)
    finally:
        model.train(was_training)
    return heat


def predict_keypoints(model: torch.nn.Module, images: torch.Tensor, codec: GaussianHeatmapCodec | None = None,
                      flip_test: bool = False, flip_permutation=None, stack: int = -1):
    """Keypoints ``(B, K, 2)`` in image pixels and their scores ``(B, K)``: argmax with
    the quarter-pixel shift (``kpedu.codecs``), mapped from heatmap to image pixels.
    ``images`` as for :func:`predict_heatmaps`; ``codec`` must match the images' and the
    heatmaps' sizes (default: the codec of those sizes)."""
    x = _images(images, model)
    if codec is not None and not callable(getattr(codec, "decode", None)):
        raise TypeError(f"codec must be a GaussianHeatmapCodec (or have a decode method), got {checks.describe(codec)}")
    if codec is not None and tuple(getattr(codec, "input_size", x.shape[-2:])) != tuple(x.shape[-2:]):
        raise ValueError(f"codec is for images of size {tuple(codec.input_size)}, got images of size "
                         f"{tuple(x.shape[-2:])}")
    heat = predict_heatmaps(model, x, flip_test, flip_permutation, stack)
    if codec is None:
        codec = GaussianHeatmapCodec(tuple(x.shape[-2:]), tuple(heat.shape[-2:]))
    elif tuple(getattr(codec, "heatmap_size", heat.shape[-2:])) != tuple(heat.shape[-2:]):
        raise ValueError(f"codec is for heatmaps of size {tuple(codec.heatmap_size)}, but the model gives "
                         f"{tuple(heat.shape[-2:])}")
    return codec.decode(heat.cpu())
