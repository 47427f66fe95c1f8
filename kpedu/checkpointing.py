"""Checkpoint files and the registry lookups: the layer :mod:`kpedu.train` and
:mod:`kpedu.hub` share, so that neither needs the other.

- :func:`save_checkpoint` / :func:`load_checkpoint` write and read
  ``{"state_dict", "meta", "kpedu_version"}`` files. Loading always uses
  ``torch.load(..., weights_only=True)``: a checkpoint cannot run code. A file that is
  not a kpedu checkpoint raises :class:`CheckpointError`.
- :func:`unwrap_model` strips the ``DistributedDataParallel`` / ``DataParallel`` /
  ``torch.compile`` wrappers, so a checkpoint holds the module's own keys.
- :func:`checkpoint_dir`, :func:`registry_path`, :func:`read_registry`, :func:`entry`,
  :func:`checkpoint_path` and :func:`sha256` read the registry of committed checkpoints
  (``registry.json`` beside the files), which :func:`kpedu.train.load_or_train` consults
  and :mod:`kpedu.hub` writes (:func:`kpedu.hub.register`). The folder is
  :data:`CHECKPOINT_DIR` when set (``kpedu.hub.CHECKPOINT_DIR`` sets the same
  override), else ``KPEDU_CHECKPOINT_DIR``, else the package's own ``checkpoints/``
  folder.

:mod:`kpedu.train` and :mod:`kpedu.hub` re-export these names; this module imports
neither of them.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .files import atomic_open

__all__ = [
    "CHECKPOINT_DIR",
    "CheckpointError",
    "CheckpointWarning",
    "unwrap_model",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_dir",
    "registry_path",
    "read_registry",
    "sha256",
    "entry",
    "checkpoint_path",
]

#: Override for the checkpoint folder (None: ``KPEDU_CHECKPOINT_DIR`` or the package folder).
CHECKPOINT_DIR: Path | str | None = None

_PACKAGE_DIR = Path(__file__).resolve().parent / "checkpoints"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CheckpointError(ValueError):
    """A file is not a loadable kpedu checkpoint (wrong format or unsafe content)."""


class CheckpointWarning(UserWarning):
    """A committed checkpoint could not be used (hash mismatch) and was retrained."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile`` wrappers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


# --------------------------------------------------------------------------- checkpoint files

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SAFE_SCALARS = (str, int, float, bool, type(None))


def _clean_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """CPU copies of the tensors, wrapper prefixes stripped when every key carries them."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if not isinstance(k, str):
            raise TypeError(f"state_dict keys must be str, got {type(k).__name__}")
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().cpu()
        else:
            out[k] = _checkpoint_safe(v, f"state_dict[{k!r}]")
    changed = True
    while changed and out:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                changed = True
    return out


def _checkpoint_safe(value: Any, where: str) -> Any:
    """Return ``value`` with only types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if type(value) in _SAFE_SCALARS:
        return value
    for kind in (bool, int, float, str):  # subclasses (TorchVersion, IntEnum...) -> plain
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, Mapping):
        return {
            _checkpoint_safe(k, where): _checkpoint_safe(v, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_checkpoint_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if callable(getattr(value, "to_dict", None)):  # a kpedu.train.History, stored as its plain dict
        return _checkpoint_safe(value.to_dict(), where)
    raise TypeError(
        f"{where} has type {type(value).__name__}, which a weights_only checkpoint cannot "
        "hold; use tensors, dicts, lists, str, int, float, bool or None"
    )


def _check_map_location(map_location: Any) -> None:
    """A CUDA ``map_location`` on a machine without CUDA is a usage error, not a corrupt file."""
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return
    try:
        dev = torch.device(map_location)
    except (RuntimeError, TypeError):
        raise ValueError(f"map_location must be a device such as 'cpu' or 'cuda', got {map_location!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"map_location={map_location!r} asks for CUDA, but CUDA is not available on this machine; "
                         "load with map_location='cpu' (the default)")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | Mapping[str, torch.Tensor],
    meta: Mapping[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``{"state_dict", "meta", "kpedu_version"}`` to ``path`` atomically.

    ``dtype`` (e.g. ``torch.float16``) stores the floating-point tensors in that type,
    halving the file of a float32 model; :func:`load_checkpoint` loads them into the
    model's own dtype (``load_state_dict`` converts), so only the rounding of the stored
    weights changes.

    ``model`` may be a module (``DistributedDataParallel`` / ``torch.compile`` wrappers
    are unwrapped) or a state dict; tensors are saved on the CPU. ``meta`` may hold
    only tensors, dicts, lists, tuples, str, int, float, bool and None (numpy scalars
    and paths are converted), so that :func:`load_checkpoint` can read it with
    ``weights_only=True``. The file is written to a temporary name in the same folder
    and renamed, so a crash never leaves a half-written checkpoint. Returns the path.
    """
    path = Path(path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"checkpoint path {path} is a directory")
    if isinstance(model, nn.Module):
        state = unwrap_model(model).state_dict()
    elif isinstance(model, Mapping):
        state = model
    else:
        raise TypeError(f"model must be an nn.Module or a state dict, got {type(model).__name__}")
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
    clean = _clean_state_dict(state)
    if dtype is not None:
        clean = {k: v.to(dtype) if v.is_floating_point() else v for k, v in clean.items()}
    payload = {
        "state_dict": clean,
        "meta": _checkpoint_safe(dict(meta), "meta") if meta is not None else None,
        "kpedu_version": __version__,
    }
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    map_location: str | torch.device | None = "cpu",
    strict: bool = True,
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(state_dict, meta)``.

    Always uses ``torch.load(..., weights_only=True)``, so a file holding arbitrary
    Python objects is rejected with :class:`CheckpointError` instead of executing code.
    If ``model`` is given the weights are loaded into it (``strict`` as in
    ``load_state_dict``; wrappers are unwrapped).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or None, got {type(model).__name__}")
    _check_map_location(map_location)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError for unsafe globals, RuntimeError for junk
        raise CheckpointError(
            f"{path} could not be loaded with weights_only=True (it is corrupt, not a torch "
            f"file, or holds arbitrary Python objects, which kpedu refuses to unpickle): {exc}"
        ) from exc
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("state_dict"), dict)
        and "kpedu_version" in payload
    ):
        hint = ""
        if isinstance(payload, dict) and payload and all(
            isinstance(v, torch.Tensor) for v in payload.values()
        ):
            hint = " (it looks like a bare state_dict; re-save it with kpedu.train.save_checkpoint)"
        raise CheckpointError(
            f"{path} is not a kpedu checkpoint: expected a dict with 'state_dict', 'meta' "
            f"and 'kpedu_version'{hint}"
        )
    state, meta = payload["state_dict"], payload.get("meta")
    if model is not None:
        unwrap_model(model).load_state_dict(state, strict=strict)
    return state, meta


# --------------------------------------------------------------------------- the registry


def checkpoint_dir() -> Path:
    """The folder holding ``registry.json`` and the checkpoint files."""
    if CHECKPOINT_DIR is not None:
        return Path(CHECKPOINT_DIR)
    env = os.environ.get("KPEDU_CHECKPOINT_DIR", "").strip()
    return Path(env) if env else _PACKAGE_DIR


def registry_path() -> Path:
    """Path of ``registry.json`` in :func:`checkpoint_dir`."""
    return checkpoint_dir() / "registry.json"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith(".pt"):
        raise ValueError(
            f"checkpoint name {name!r} must be letters, digits, '_', '-' or '.' "
            "(no path separators, no .pt suffix)"
        )
    return name


def read_registry() -> dict[str, dict[str, Any]]:
    """The registry as a dict (empty when ``registry.json`` does not exist)."""
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} must map checkpoint names to objects")
    return data


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of a file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry(name: str) -> dict[str, Any] | None:
    """The registry entry for ``name`` (a copy), or None when it is not registered."""
    _check_name(name)
    ent = read_registry().get(name)
    return json.loads(json.dumps(ent)) if ent is not None else None


def checkpoint_path(name: str) -> Path:
    """Where the checkpoint file for ``name`` lives (whether or not it exists)."""
    ent = entry(name)
    file = (ent or {}).get("file") or f"{name}.pt"
    if Path(file).name != file:
        raise ValueError(f"registry entry {name!r} has file {file!r}, which is not a bare file name")
    return checkpoint_dir() / file
