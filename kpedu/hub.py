"""The registry of committed checkpoints and the recipes that produce them.

Checkpoints ship inside the package, in ``kpedu/checkpoints/``, next to
``registry.json``, which records for every name::

    {"file": "NAME.pt", "sha256": "...", "command": "python -m kpedu.hub train NAME",
     "profile": "full", "metrics": {...}, "description": "...", "created": "YYYY-MM-DD",
     "kpedu_version": "...", "torch_version": "...", "seconds": ...}

A chapter module declares how a checkpoint is made with :func:`recipe`::

    @hub.recipe("simplebaseline_synth", description="ResNet-18 SimpleBaseline on SynthPeople")
    def simplebaseline_synth(profile, device):
        model = ...; fit(model, ..., steps=profile.pick(ci=50, book=2000, full=20000))
        return model, {"pck@0.05": ...}

and the command line reproduces, lists and checks them::

    python -m kpedu.hub list
    python -m kpedu.hub verify [NAME ...]        # non-zero exit on a missing / altered file
    python -m kpedu.hub train NAME [--profile full] [--device cpu] [--seed 0]
    torchrun --nproc_per_node=4 -m kpedu.hub train NAME   # data-parallel; rank 0 saves

Paper-scale recipes (``hourglass-mpii``, ``openpose-coco``, ``fse-celeba-k30``,
``fse-celeba-k50``, ``d2net-images``) train on a real data set that the user has on disk;
they declare it with ``@recipe(name, data="what --data must hold")`` and take keyword
options ``fn(profile, device, data=..., eval_data=..., steps=..., weights=..., size=...,
width=...)``::

    python -m kpedu.hub train hourglass-mpii --data ~/data/mpii [--eval-data valid.json]
        [--steps N] [--weights PATH] [--size S] [--width W] [--out DIR] [--device cuda]

A missing ``--data``, a path that does not exist or holds another layout, or ``--device
cuda`` without CUDA prints one line naming what was expected and exits with status 2.
Their checkpoints never touch the package registry: ``OUT/NAME.pt`` (atomically, the
format of :func:`kpedu.checkpointing.save_checkpoint`) and ``OUT/NAME.json`` (metrics and
the command), ``OUT`` being ``--out``, default the current directory.

Recipes are discovered by importing the modules in :data:`RECIPE_MODULES` (plus any
comma-separated names in ``KPEDU_RECIPE_MODULES``). The checkpoint folder is
:data:`CHECKPOINT_DIR` when set, else ``KPEDU_CHECKPOINT_DIR``, else the package's own
``checkpoints/`` folder; tests point it at a temporary directory. Nothing is downloaded.

The checkpoint files and the registry lookups live in :mod:`kpedu.checkpointing`, which
:mod:`kpedu.train` uses too (:func:`kpedu.train.load_or_train`); this module re-exports
them (:func:`checkpoint_dir`, :func:`registry_path`, :func:`read_registry`,
:func:`sha256`, :func:`entry`, :func:`checkpoint_path`) and imports nothing from
:mod:`kpedu.train`. ``CHECKPOINT_DIR`` here reads and sets
:data:`kpedu.checkpointing.CHECKPOINT_DIR`, the one override.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import shlex
import sys
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import __version__, checkpointing, runtime
from .checkpointing import (_check_name, checkpoint_dir, checkpoint_path, entry, read_registry, registry_path,
                            save_checkpoint, sha256)
from .files import write_text_atomic

__all__ = [
    "CHECKPOINT_DIR",
    "RECIPE_MODULES",
    "Recipe",
    "checkpoint_dir",
    "registry_path",
    "read_registry",
    "sha256",
    "entry",
    "checkpoint_path",
    "status",
    "verify",
    "list_entries",
    "register",
    "recipe",
    "discover_recipes",
    "get_recipe",
    "train",
    "train_paper",
    "RecipeInputError",
    "main",
]

#: Modules imported (lazily) to discover ``@recipe`` functions.
RECIPE_MODULES: list[str] = ["kpedu.foundations", "kpedu.hourglass.experiment", "kpedu.openpose.experiment",
                              "kpedu.fse.experiment", "kpedu.d2net.experiment", "kpedu.transporter.experiment"]

_DEFAULT_PROFILE, _DEFAULT_SEED = "full", 0


# --------------------------------------------------------------------------- registry
# Reading it (checkpoint_dir, registry_path, read_registry, sha256, entry, checkpoint_path)
# is kpedu.checkpointing's, imported above; writing it is this module's.


def _write_registry(data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    write_text_atomic(registry_path(), text)


def status(name: str) -> str:
    """``"ok"``, ``"missing"`` (no file), ``"mismatch"`` (sha256 differs) or ``"unregistered"``."""
    ent = entry(name)
    if ent is None:
        return "unregistered"
    path = checkpoint_path(name)
    if not path.is_file():
        return "missing"
    return "ok" if sha256(path) == ent.get("sha256") else "mismatch"


def verify(name: str) -> bool:
    """True when ``name``'s file exists and its sha256 matches the registry.

    Raises ``KeyError`` for a name that is not registered.
    """
    st = status(name)
    if st == "unregistered":
        known = ", ".join(sorted(read_registry())) or "none"
        raise KeyError(f"{name!r} is not in the checkpoint registry (registered: {known})")
    return st == "ok"


def list_entries() -> list[dict[str, Any]]:
    """All registry entries sorted by name, each with its ``name`` added."""
    return [{"name": k, **v} for k, v in sorted(read_registry().items())]


def _json_safe(value: Any, where: str) -> Any:
    """Plain JSON types (tensors / numpy scalars become numbers); NaN/inf are refused."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return [_json_safe(v, where) for v in value.detach().cpu().tolist()]
        value = value.item()
    elif type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}; registry metrics must be finite")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "to_dict"):
        return _json_safe(value.to_dict(), where)
    raise TypeError(f"{where} has type {type(value).__name__}, which cannot go in registry.json")


def register(
    name: str,
    file: str | os.PathLike[str],
    *,
    command: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    description: str = "",
    seconds: float | None = None,
    profile: str = _DEFAULT_PROFILE,
) -> dict[str, Any]:
    """Record ``file`` (inside :func:`checkpoint_dir`) as checkpoint ``name``.

    Computes the file's sha256, stamps today's date and the kpedu / torch versions,
    and rewrites ``registry.json`` with sorted keys and two-space indentation so diffs
    stay small. Returns the new entry.
    """
    _check_name(name)
    folder = checkpoint_dir().resolve()
    path = Path(file)
    if not path.is_absolute():
        path = folder / path
    path = path.resolve()
    if path.parent != folder:
        raise ValueError(f"checkpoint file {path} must be directly inside {folder}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if profile not in runtime.PROFILES:
        raise ValueError(f"profile must be one of {runtime.PROFILES}, got {profile!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds >= 0):
        raise ValueError(f"seconds must be a non-negative number or None, got {seconds!r}")
    if metrics is not None and not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict or None, got {type(metrics).__name__}")
    if not isinstance(description, str):
        raise TypeError("description must be a string")
    ent = {
        "file": path.name,
        "sha256": sha256(path),
        "command": command or f"python -m kpedu.hub train {name}",
        "profile": profile,
        "metrics": _json_safe(dict(metrics or {}), "metrics"),
        "description": description,
        "created": datetime.now(timezone.utc).date().isoformat(),
        "kpedu_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "seconds": None if seconds is None else round(float(seconds), 1),
    }
    data = read_registry()
    data[name] = ent
    _write_registry(data)
    return dict(ent)


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """A registered way to produce checkpoint ``name``: ``fn(profile, device) -> (model, metrics)``.

    ``data`` is None for the book's recipes (generated data); for a paper-scale recipe it
    says what ``--data`` must hold, and ``fn`` then also takes the keyword options
    ``data``, ``eval_data``, ``steps``, ``weights``, ``size`` and ``width``."""

    name: str
    fn: Callable[..., tuple[torch.nn.Module, dict[str, Any]]]
    description: str
    module: str
    storage_dtype: torch.dtype | None = None
    data: str | None = None
    eval_data: str | None = None


class RecipeInputError(ValueError):
    """A paper-scale recipe's input (``--data``, ``--eval-data``, ``--weights``, ``--size``, ...)
    is unusable; the message is one line naming what was expected. The CLI prints it and
    exits with status 2."""


_RECIPES: dict[str, Recipe] = {}


def recipe(name: str, *, description: str = "", storage_dtype: torch.dtype | None = None,
           data: str | None = None, eval_data: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator declaring how checkpoint ``name`` is trained.

    ``data`` (a paper-scale recipe): what ``--data`` must hold, e.g. ``"MPII Human Pose:
    mpii_human_pose_v1_u12_1.mat + images/"``; ``eval_data`` likewise for ``--eval-data``.

    ``storage_dtype`` (e.g. ``torch.float16``) is the dtype the weights are stored in
    (:func:`kpedu.train.save_checkpoint`), to keep a large model's file small.

    The decorated ``fn(profile, device)`` trains under ``profile`` (a
    :class:`kpedu.runtime.Profile`) on ``device`` and returns ``(model, metrics)``.
    The function itself is returned unchanged, so a chapter can call it directly.
    """
    _check_name(name)
    if not isinstance(description, str):
        raise TypeError("description must be a string")
    for what, value in (("data", data), ("eval_data", eval_data)):
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise TypeError(f"{what} must be a non-empty description string or None, got {value!r}")

    def decorate(fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError("@recipe must decorate a function fn(profile, device)")
        key = (fn.__module__, fn.__qualname__)
        old = _RECIPES.get(name)
        if old is not None and (old.module, old.fn.__qualname__) != key:
            raise ValueError(
                f"recipe {name!r} is already defined by {old.module}.{old.fn.__qualname__}"
            )
        _RECIPES[name] = Recipe(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0], fn.__module__,
                                storage_dtype, data, eval_data)
        return fn

    return decorate


def _recipe_modules() -> list[str]:
    extra = [m.strip() for m in os.environ.get("KPEDU_RECIPE_MODULES", "").split(",") if m.strip()]
    return list(dict.fromkeys([*RECIPE_MODULES, *extra]))


def discover_recipes() -> dict[str, Recipe]:
    """Import the recipe modules and return every registered recipe by name.

    A module in the list that does not exist is skipped; any other import error
    (including a missing dependency *inside* an existing module) propagates.
    """
    for mod in _recipe_modules():
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    return dict(sorted(_RECIPES.items()))


def get_recipe(name: str) -> Recipe:
    """The recipe for ``name``; ``KeyError`` listing the known ones otherwise."""
    recipes = discover_recipes()
    if name not in recipes:
        known = ", ".join(recipes) or "none"
        raise KeyError(f"no recipe named {name!r} (known recipes: {known})")
    return recipes[name]


def _command(name: str, profile: str, seed: int, device: str | None, world: int) -> str:
    launcher = "python -m kpedu.hub" if world <= 1 else f"torchrun --nproc_per_node={world} -m kpedu.hub"
    parts = [launcher, "train", shlex.quote(name)]
    if profile != _DEFAULT_PROFILE:
        parts += ["--profile", profile]
    if device:
        parts += ["--device", shlex.quote(device)]
    if seed != _DEFAULT_SEED:
        parts += ["--seed", str(seed)]
    return " ".join(parts)


def train(
    name: str,
    *,
    profile: str = _DEFAULT_PROFILE,
    device: str | None = None,
    seed: int = _DEFAULT_SEED,
    verbose: bool = True,
) -> dict[str, Any] | None:
    """Run recipe ``name``, save ``NAME.pt``, register it; returns the entry (None off rank 0).

    Under torchrun the process group is initialised first (and torn down after), every
    rank runs the recipe (whose :func:`kpedu.train.fit` calls go data-parallel) and
    only rank 0 writes the checkpoint and the registry. ``KPEDU_PROFILE`` is set to
    ``profile`` while the recipe runs, so ``runtime.pick`` inside it agrees.
    """
    from . import distributed as kdist

    _check_name(name)
    if profile not in runtime.PROFILES:
        raise ValueError(f"profile must be one of {runtime.PROFILES}, got {profile!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rec = get_recipe(name)
    if rec.data is not None:
        raise RecipeInputError(f"recipe {name!r} trains on a real data set: use train_paper({name!r}, data=...) "
                               f"or python -m kpedu.hub train {name} --data PATH ({rec.data})")

    with _recipe_session(profile, device) as info:
        model, metrics, seconds = _call_recipe(rec, info, seed, verbose, f"training {name!r}")
        command = _command(name, profile, seed, device, info.world_size)

        ent = None
        if info.is_main:
            path = checkpoint_dir() / f"{name}.pt"
            meta = {
                "name": name,
                "metrics": metrics,
                "command": command,
                "seed": seed,
                "profile": profile,
                "device": str(info.device),
                "world_size": info.world_size,
                "seconds": round(seconds, 1),
                "torch_version": str(torch.__version__),
            }
            if rec.storage_dtype is not None:
                meta["storage_dtype"] = str(rec.storage_dtype)
            save_checkpoint(path, model, meta, dtype=rec.storage_dtype)
            ent = register(
                name,
                path.name,
                command=command,
                metrics=metrics,
                description=rec.description,
                seconds=seconds,
                profile=profile,
            )
            if verbose:
                print(f"[kpedu.hub] {name}: {seconds:.1f} s, metrics {json.dumps(metrics)}")
                print(f"[kpedu.hub] wrote {path} (sha256 {ent['sha256']}) and {registry_path().name}")
        kdist.barrier()
        return ent


@contextlib.contextmanager
def _recipe_session(profile: str, device: str | None):
    """Where a recipe runs: the process group (initialised here unless torchrun's caller
    already did, and torn down after) and ``KPEDU_PROFILE`` set to ``profile`` (restored
    after), so that ``runtime.pick`` inside the recipe agrees. Yields the :class:`DistInfo`."""
    from . import distributed as kdist

    owns_group = not kdist.is_distributed()
    info = kdist.init_distributed(device)
    old_profile = os.environ.get("KPEDU_PROFILE")
    os.environ["KPEDU_PROFILE"] = profile
    try:
        yield info
    finally:
        if old_profile is None:
            os.environ.pop("KPEDU_PROFILE", None)
        else:
            os.environ["KPEDU_PROFILE"] = old_profile
        if owns_group:
            kdist.cleanup()


def _call_recipe(rec: Recipe, info: Any, seed: int, verbose: bool, what: str, **options: Any
                 ) -> tuple[torch.nn.Module, dict[str, Any], float]:
    """Seed, announce and run ``rec`` under the active profile; its ``(model, metrics)``
    checked (metrics made JSON-safe) and the seconds it took."""
    prof = runtime.get_profile()
    runtime.seed_everything(seed)
    if verbose and info.is_main:
        print(runtime.banner(prof, info.device, seed) + f" | world_size={info.world_size}")
        print(f"[kpedu.hub] {what}: {rec.description}")
    t0 = time.perf_counter()
    out = rec.fn(prof, info.device, **options)
    seconds = time.perf_counter() - t0
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.nn.Module)):
        raise TypeError(f"recipe {rec.name!r} must return (model, metrics), got {type(out).__name__}")
    model, metrics = out
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"recipe {rec.name!r} returned metrics of type {type(metrics).__name__}, not a dict")
    return model, _json_safe(dict(metrics), "metrics"), seconds


def _check_cuda(device: str | None) -> None:
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RecipeInputError(f"--device {device}: CUDA is not available on this machine "
                               "(torch.cuda.is_available() is False); use --device cpu or leave --device out")


def _existing(path: Any, flag: str, expected: str, kind: str = "any") -> Path:
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.exists():
        raise RecipeInputError(f"{flag} {p} does not exist; expected {expected}")
    if kind == "file" and not p.is_file():
        raise RecipeInputError(f"{flag} {p} is not a file; expected {expected}")
    return p


def train_paper(
    name: str,
    data: str | os.PathLike[str] | None,
    *,
    eval_data: str | os.PathLike[str] | None = None,
    steps: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    size: int | None = None,
    width: int | None = None,
    out: str | os.PathLike[str] | None = None,
    profile: str = _DEFAULT_PROFILE,
    device: str | None = None,
    seed: int = _DEFAULT_SEED,
    verbose: bool = True,
) -> dict[str, Any] | None:
    """Run paper-scale recipe ``name`` on the data set at ``data``; write ``OUT/NAME.pt`` and
    ``OUT/NAME.json``; return the JSON record (None off rank 0).

    ``out`` defaults to the current directory; the package registry and its committed
    checkpoints are never touched. ``steps`` overrides the schedule's length (the
    schedule's shape, e.g. a learning-rate drop at a fraction of the run, scales with it);
    ``size`` the input size and ``width`` the network width (for smoke tests: the
    defaults are the paper's configuration); ``weights`` a ``state_dict`` file for the
    recipes that take one (``openpose-coco``: the VGG-19 backbone). Under torchrun every
    rank trains on its shard and rank 0 writes the files. Bad inputs raise
    :class:`RecipeInputError` (or :class:`FileNotFoundError` from a data set whose layout is
    not the expected one), with one line naming what was expected.
    """
    from . import distributed as kdist

    _check_name(name)
    if profile not in runtime.PROFILES:
        raise ValueError(f"profile must be one of {runtime.PROFILES}, got {profile!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RecipeInputError(f"--seed must be a non-negative integer, got {seed!r}")
    rec = get_recipe(name)
    if rec.data is None:
        raise RecipeInputError(f"recipe {name!r} takes no --data (it generates its data); "
                               f"run python -m kpedu.hub train {name}")
    if data is None:
        raise RecipeInputError(f"recipe {name!r} needs --data PATH: {rec.data}")
    data = _existing(data, "--data", rec.data)
    if eval_data is not None:
        eval_data = _existing(eval_data, "--eval-data", rec.eval_data or "an evaluation data set")
    if weights is not None:
        weights = _existing(weights, "--weights", "a state_dict file saved with torch.save", "file")
    for flag, value, low in (("--steps", steps, 1), ("--size", size, 8), ("--width", width, 1)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise RecipeInputError(f"{flag} must be an integer >= {low}, got {value!r}")
    _check_cuda(device)
    folder = Path(os.path.expanduser(os.fspath(out))) if out is not None else Path.cwd()
    if folder.exists() and not folder.is_dir():
        raise RecipeInputError(f"--out {folder} is a file; expected a folder for {name}.pt and {name}.json")

    with _recipe_session(profile, device) as info:
        model, metrics, seconds = _call_recipe(rec, info, seed, verbose, f"training {name!r} on {data}",
                                               data=data, eval_data=eval_data, steps=steps, weights=weights,
                                               size=size, width=width)
        parts = [f"torchrun --nproc_per_node={info.world_size} -m kpedu.hub" if info.world_size > 1
                 else "python -m kpedu.hub", "train", shlex.quote(name), "--data", shlex.quote(str(data))]
        for flag, value in (("--eval-data", eval_data), ("--steps", steps), ("--weights", weights),
                            ("--size", size), ("--width", width), ("--device", device)):
            if value is not None:
                parts += [flag, shlex.quote(str(value))]
        if seed != _DEFAULT_SEED:
            parts += ["--seed", str(seed)]
        record = None
        if info.is_main:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.pt"
            meta = {"name": name, "metrics": metrics, "command": " ".join(parts), "seed": seed, "profile": profile,
                    "device": str(info.device), "world_size": info.world_size, "seconds": round(seconds, 1),
                    "torch_version": str(torch.__version__), "kpedu_version": __version__,
                    "created": datetime.now(timezone.utc).date().isoformat(), "description": rec.description}
            save_checkpoint(path, model, meta, dtype=rec.storage_dtype)
            record = {**meta, "file": path.name, "sha256": sha256(path)}
            write_text_atomic(folder / f"{name}.json",
                              json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")
            if verbose:
                print(f"[kpedu.hub] {name}: {seconds:.1f} s, metrics {json.dumps(metrics)}")
                print(f"[kpedu.hub] wrote {path} and {path.with_suffix('.json').name} (not registered)")
        kdist.barrier()
        return record


# --------------------------------------------------------------------------- CHECKPOINT_DIR


class _HubModule(types.ModuleType):
    """The module's class: ``hub.CHECKPOINT_DIR`` reads and sets
    :data:`kpedu.checkpointing.CHECKPOINT_DIR`, the one override the registry lookups
    read, so ``kpedu.hub.CHECKPOINT_DIR = folder`` keeps working."""

    @property
    def CHECKPOINT_DIR(self) -> Path | str | None:  # noqa: N802 (a module constant's name)
        """Override for the checkpoint folder (None: ``KPEDU_CHECKPOINT_DIR`` or the package folder)."""
        return checkpointing.CHECKPOINT_DIR

    @CHECKPOINT_DIR.setter
    def CHECKPOINT_DIR(self, value: Path | str | None) -> None:  # noqa: N802
        checkpointing.CHECKPOINT_DIR = value


sys.modules[__name__].__class__ = _HubModule


# --------------------------------------------------------------------------- CLI


def _cmd_list() -> int:
    entries = list_entries()
    recipes = discover_recipes()
    if not entries and not recipes:
        print(f"no checkpoints registered in {registry_path()} and no recipes found")
        return 0
    for ent in entries:
        st = status(ent["name"])
        metrics = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (ent.get("metrics") or {}).items()
            if isinstance(v, (int, float, str))
        )
        print(f"{ent['name']:<32} {st:<9} {ent.get('file', '')}  {ent.get('created', '')}  {metrics}")
    for name, rec in recipes.items():
        if not any(e["name"] == name for e in entries):
            if rec.data is not None:
                print(f"{name:<32} {'paper':<9} needs --data ({rec.data}); recipe in {rec.module}")
            else:
                print(f"{name:<32} {'no file':<9} recipe in {rec.module}: {rec.description}")
    return 0


def _cmd_verify(names: list[str]) -> int:
    names = names or [e["name"] for e in list_entries()]
    if not names:
        print(f"no checkpoints registered in {registry_path()}")
        return 0
    bad = 0
    for name in names:
        try:
            st = status(name)
        except ValueError as exc:
            st = f"invalid name ({exc})"
        if st != "ok":
            bad += 1
        print(f"{name:<32} {st}")
    if bad:
        print(f"{bad} of {len(names)} checkpoint(s) failed verification", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m kpedu.hub``); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kpedu.hub", description="kpedu's registry of committed checkpoints"
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered checkpoints and known recipes")
    p_verify = sub.add_parser("verify", help="check files against their sha256 (exit 1 on failure)")
    p_verify.add_argument("names", nargs="*", metavar="NAME")
    p_train = sub.add_parser("train", help="train a recipe, save NAME.pt and register it")
    p_train.add_argument("name", metavar="NAME")
    p_train.add_argument("--profile", default=_DEFAULT_PROFILE, choices=runtime.PROFILES)
    p_train.add_argument("--device", default=None, help="e.g. cpu, cuda, mps (default: best available)")
    p_train.add_argument("--seed", type=int, default=_DEFAULT_SEED)
    p_train.add_argument("--data", default=None, metavar="PATH",
                         help="the data set of a paper-scale recipe (python -m kpedu.hub list shows which need it)")
    p_train.add_argument("--eval-data", default=None, metavar="PATH", help="evaluation data (recipe-specific)")
    p_train.add_argument("--steps", type=int, default=None, help="override the schedule's length (paper recipes)")
    p_train.add_argument("--weights", default=None, metavar="PATH", help="initial weights (state_dict) where taken")
    p_train.add_argument("--size", type=int, default=None, help="input size (paper recipes; default: the paper's)")
    p_train.add_argument("--width", type=int, default=None, help="network width (paper recipes; default: the paper's)")
    p_train.add_argument("--out", default=None, metavar="DIR",
                         help="folder for NAME.pt and NAME.json of a paper recipe (default: current directory)")
    args = parser.parse_args(argv)

    if args.cmd == "list":
        return _cmd_list()
    if args.cmd == "verify":
        return _cmd_verify(args.names)
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    try:
        rec = get_recipe(args.name)
        _check_cuda(args.device)
        if rec.data is None:
            extra = [f for f, v in (("--data", args.data), ("--eval-data", args.eval_data), ("--steps", args.steps),
                                    ("--weights", args.weights), ("--size", args.size), ("--width", args.width),
                                    ("--out", args.out)) if v is not None]
            if extra:
                raise RecipeInputError(f"recipe {args.name!r} generates its data and takes no {', '.join(extra)} "
                                       "(paper-scale recipes: python -m kpedu.hub list)")
            train(args.name, profile=args.profile, device=args.device, seed=args.seed)
        else:
            train_paper(args.name, args.data, eval_data=args.eval_data, steps=args.steps, weights=args.weights,
                        size=args.size, width=args.width, out=args.out, profile=args.profile, device=args.device,
                        seed=args.seed)
    except (KeyError, RecipeInputError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {' '.join(str(msg).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Delegate to the imported module so that recipes registering through
    # ``kpedu.hub.recipe`` and this CLI share one registry (not ``__main__``'s copy).
    from kpedu import hub as _hub

    sys.exit(_hub.main())
