"""A harness for bad-input tests, shared by every module's ``test_*_bad_inputs.py``.

A :class:`Case` names one public function, a factory of *good* keyword arguments, and
the kind of each argument worth attacking. :func:`variants` derives the bad inputs of
each kind (wrong shape, dtype, NaN and inf, empty, out of range, wrong device, numpy where
torch is expected) and what must happen for each:

- ``"error"``: a ``TypeError``, ``ValueError`` or ``IndexError`` whose message names the
  argument;
- ``"same"``: the call succeeds and returns what the good call returns on the equivalent
  input (integer coordinates, ``uint8`` images, numpy instead of torch);
- ``"runs"``: the call succeeds (a NaN prediction is a miss, not an error).

:func:`check` runs one variant and returns its outcome; tests assert it is ``"ok"``.
``python tests/badinput.py`` prints the count of cases per module with their outcomes.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

ERRORS = (TypeError, ValueError, IndexError)


@dataclass
class Case:
    """One public function and how to call it well.

    ``call(**kwargs)`` defaults to ``func``; ``kinds`` maps argument names to kinds (see
    :data:`KINDS`); ``extra`` adds ``(label, value, expect)`` variants for an argument
    (out-of-range values that only this function knows); ``skip`` removes variant labels.
    ``name`` is the name the error message must contain (defaults to the argument's).
    """

    func: Callable
    good: Callable[[], dict]
    kinds: dict[str, str]
    extra: dict[str, list] = field(default_factory=dict)
    skip: dict[str, set] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    call: Callable | None = None
    atol: float = 1e-5

    @property
    def id(self) -> str:
        return getattr(self.func, "__qualname__", str(self.func))

    @property
    def module(self) -> str:
        return getattr(self.func, "__module__", "?")


def _like(good: Any, arr: np.ndarray) -> Any:
    """arr in good's container type (torch stays torch, on good's device)."""
    if isinstance(good, torch.Tensor):
        return torch.as_tensor(arr, device=good.device)
    return arr


def _np(good: Any) -> np.ndarray:
    if isinstance(good, torch.Tensor):
        return good.detach().cpu().numpy()
    return np.asarray(good)


def _with(good: Any, value: float, where: int = 0) -> Any:
    a = _np(good).astype(np.float64).copy()
    a.reshape(-1)[where] = value
    return _like(good, a.astype(_np(good).dtype if _np(good).dtype.kind == "f" else np.float64))


def _complex(good: Any) -> Any:
    a = _np(good).astype(np.complex64)
    return _like(good, a)


def _cast(good: Any, dtype: Any) -> Any:
    return _like(good, _np(good).astype(dtype))


def _other_container(good: Any) -> Any:
    if isinstance(good, torch.Tensor):
        return good.detach().cpu().numpy()
    return torch.as_tensor(np.asarray(good))


def _points(good, nan_ok: bool):
    a = _np(good)
    out = [
        ("last dim 1", _like(good, a[..., :1]), "error"),
        ("last dim 3", _like(good, np.concatenate([a, a[..., :1]], -1)), "error"),
        ("extra dims", _like(good, a[None, None, None]), "error"),
        ("complex", _complex(good), "error"),
        ("text", "xyz", "error"),
        ("bool", _cast(good, bool), "error"),
        ("inf", _with(good, math.inf), "error"),
        ("nan", _with(good, math.nan), "runs" if nan_ok else "error"),
        ("other container", _other_container(good), "same"),
    ]
    if a.size:
        out.append(("integer", ("int", good), "same"))
    return out


def _maps(good):
    a = _np(good)
    return [
        ("nan", _with(good, math.nan), "error"),
        ("inf", _with(good, -math.inf), "error"),
        ("complex", _complex(good), "error"),
        ("text", "xyz", "error"),
        ("2-d", _like(good, a.reshape(-1)[: a.shape[-1] * a.shape[-2]].reshape(a.shape[-2:])), "error"),
        ("empty", _like(good, a[..., :0, :]), "error"),
    ]


def _image(good):
    a = _np(good)
    shape = list(a.shape)
    wrong_c = np.concatenate([a, a[..., :1, :, :]], -3) if a.ndim >= 3 else a[None]
    two_c = a[..., :2, :, :] if a.ndim >= 3 and a.shape[-3] >= 2 else np.stack([a, a], -3)
    return [
        ("nan", _with(good, math.nan), "error"),
        ("inf", _with(good, math.inf), "error"),
        ("0-255 float", _like(good, a.astype(np.float32) * 255.0 + 10.0), "error"),
        ("int32", _cast(good, np.int32), "error"),
        ("bool", _cast(good, bool), "error"),
        ("complex", _complex(good), "error"),
        ("text", "xyz.png", "error"),
        ("channels+1", _like(good, wrong_c), "error"),
        ("2 channels", _like(good, two_c), "error") if shape[-3:-2] != [2] else None,
        ("flat", _like(good, a.reshape(-1)), "error"),
        ("empty", _like(good, a[..., :0]), "error"),
        ("uint8", ("uint8", good), "same"),
        ("other container", _other_container(good), "same"),
    ]


def _numbers(good, lo=None, hi=None, lo_open=False, hi_open=False):
    out = [
        ("nan", math.nan, "error"),
        ("inf", math.inf, "error"),
        ("text", "1", "error"),
        ("complex", complex(1, 1), "error"),
        ("list", [good, good], "error"),
    ]
    if lo is not None:
        out.append(("below range", lo - 1 if not lo_open else lo, "error"))
    if hi is not None:
        out.append(("above range", hi + 1 if not hi_open else hi, "error"))
    return out


def _integers(good, lo=None, hi=None):
    out = [
        ("fraction", good + 0.5, "error"),
        ("nan", math.nan, "error"),
        ("text", str(good), "error"),
        ("bool", True, "error"),
        ("complex", complex(good, 1), "error"),
    ]
    if lo is not None:
        out.append(("below range", lo - 1, "error"))
    if hi is not None:
        out.append(("above range", hi + 1, "error"))
    return out


def _size(good):
    return [
        ("zero", 0, "error"),
        ("negative", -4, "error"),
        ("fraction", 32.5, "error"),
        ("three values", (8, 8, 8), "error"),
        ("text", "64", "error"),
        ("nan", math.nan, "error"),
    ]


def _visibility(good):
    a = _np(good)
    return [
        ("wrong shape", _like(good, np.concatenate([a, a], -1)), "error"),
        ("nan", _with(good, math.nan), "error"),
        ("complex", _complex(good), "error"),
        ("text", "xyz", "error"),
    ]


def _device(good):
    if not isinstance(good, torch.Tensor):
        return []
    return [("meta device", good.to("meta"), "error")]


#: kind -> function(good value) -> list of (label, bad value, expect)
KINDS: dict[str, Callable[[Any], list]] = {
    "points": lambda g: _points(g, nan_ok=False),
    "pred": lambda g: _points(g, nan_ok=True),          # NaN is a missing prediction
    "maps": _maps,
    "image": _image,
    "number": lambda g: _numbers(g),
    "positive": lambda g: _numbers(g, lo=0, lo_open=True),
    "nonnegative": lambda g: _numbers(g, lo=0),
    "probability": lambda g: _numbers(g, lo=0, hi=1),
    "count": lambda g: _integers(g, lo=1),
    "index": lambda g: _integers(g, lo=0),
    "size": _size,
    "visibility": _visibility,
    "device": _device,
}


def variants(case: Case) -> list[tuple[str, str, Any, str]]:
    """Every ``(argument, label, value, expect)`` of a case."""
    good = case.good()
    out = []
    for arg, kinds in case.kinds.items():
        for kind in kinds.split("+"):
            for v in KINDS[kind](good[arg]):
                if v is None or v[0] in case.skip.get(arg, set()):
                    continue
                out.append((arg, f"{kind}: {v[0]}", v[1], v[2]))
    for arg, extra in case.extra.items():
        for label, value, expect in extra:
            out.append((arg, f"extra: {label}", value, expect))
    return out


def same(a: Any, b: Any, atol: float = 1e-5) -> bool:
    """Deep equality of results: tensors, arrays, numbers, dicts, lists, dataclasses."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) or isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            x, y = _np(a).astype(np.float64), _np(b).astype(np.float64)
        except (TypeError, ValueError):
            return False
        return x.shape == y.shape and np.allclose(x, y, atol=atol, rtol=1e-4, equal_nan=True)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], atol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, atol) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and all(
            same(getattr(a, f.name), getattr(b, f.name), atol) for f in dataclasses.fields(a))
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-4, abs_tol=atol)
    if hasattr(a, "__dict__") and hasattr(b, "__dict__") and type(a) is type(b):
        return same(vars(a), vars(b), atol)
    return a == b


def _equivalent(spec: tuple, good_value: Any) -> tuple[Any, Any]:
    """(value for the good call, value for the variant call) of a ``"same"`` variant."""
    how, g = spec
    a = _np(g)
    if how == "int":
        rounded = np.round(a)
        return _like(g, rounded.astype(a.dtype)), _like(g, rounded.astype(np.int64))
    if how == "uint8":
        q = np.round(np.clip(a, 0, 1) * 255)
        return _like(g, (q / 255).astype(np.float32)), _like(g, q.astype(np.uint8))
    raise ValueError(how)


def check(case: Case, arg: str, label: str, value: Any, expect: str) -> tuple[str, str]:
    """Run one variant: ``("ok", detail)`` or the kind of failure and what happened.

    Failures: ``"silent"`` (accepted input it should reject, or a different answer),
    ``"obscure"`` (an error of another type, or one that does not name the argument),
    ``"crash"`` (raised where it should have run).
    """
    call = case.call or case.func
    name = case.names.get(arg, arg)
    kwargs = case.good()
    if expect == "same":
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            reference_value, value = _equivalent(value, kwargs[arg])
        else:
            reference_value = kwargs[arg]
        ref_kwargs = case.good()
        ref_kwargs[arg] = reference_value
        torch.manual_seed(0)
        reference = call(**ref_kwargs)
        kwargs[arg] = value
        torch.manual_seed(0)
        try:
            got = call(**kwargs)
        except Exception as e:  # noqa: BLE001 - any exception is the finding
            return "crash", f"{type(e).__name__}: {e}"
        return ("ok", "same answer") if same(reference, got, case.atol) else ("silent", "a different answer")
    kwargs[arg] = value
    try:
        call(**kwargs)
    except ERRORS as e:
        if expect == "runs":
            return "crash", f"{type(e).__name__}: {e}"
        message = str(e)
        if name.lower() not in message.lower():
            return "obscure", f"{type(e).__name__} without the name {name!r}: {message}"
        return "ok", f"{type(e).__name__}: {message}"
    except Exception as e:  # noqa: BLE001
        return ("obscure" if expect == "error" else "crash"), f"{type(e).__name__}: {e}"
    return ("ok", "runs") if expect == "runs" else ("silent", "accepted without an error")


def parametrize(cases: list[Case]):
    """``pytest.mark.parametrize`` over every variant of every case."""
    import pytest

    params = []
    for case in cases:
        for arg, label, value, expect in variants(case):
            params.append(pytest.param(case, arg, label, value, expect, id=f"{case.id}-{arg}-{label}"))
    return pytest.mark.parametrize("case,arg,label,value,expect", params)


def assert_ok(case: Case, arg: str, label: str, value: Any, expect: str) -> None:
    outcome, detail = check(case, arg, label, value, expect)
    assert outcome == "ok", f"{case.id}({arg}={label}): expected {expect}, got {outcome}: {detail}"


def report(case_lists: dict[str, list[Case]]) -> str:
    """A Markdown table: per module, the number of bad-input cases and their outcomes."""
    from collections import Counter

    rows = ["| module | cases | clear error | handled (same answer / runs) | obscure error | silent | crash |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    total = Counter()
    for module, cases in case_lists.items():
        c = Counter()
        for case in cases:
            for arg, label, value, expect in variants(case):
                outcome, _ = check(case, arg, label, value, expect)
                key = ("clear" if expect == "error" else "handled") if outcome == "ok" else outcome
                c[key] += 1
                c["cases"] += 1
        total.update(c)
        rows.append(f"| {module} | {c['cases']} | {c['clear']} | {c['handled']} | {c['obscure']} | {c['silent']} | {c['crash']} |")
    rows.append(f"| **all** | {total['cases']} | {total['clear']} | {total['handled']} | {total['obscure']} | "
                f"{total['silent']} | {total['crash']} |")
    return "\n".join(rows)


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator for the tiny good inputs of the cases."""
    return torch.Generator().manual_seed(seed)


class _Reached(Exception):
    """Raised by a stand-in for the expensive part of a call: the checks came first."""


def until(target: Any, attribute: str, func: Callable) -> Callable:
    """``func`` with ``target.attribute`` replaced by a sentinel, for training and evaluation
    entry points: the call returns ``"reached"`` once its checks are done and the expensive
    part would start (``"finished"`` if it never gets there)."""
    from unittest import mock

    def call(**kw):
        with mock.patch.object(target, attribute, side_effect=_Reached):
            try:
                func(**kw)
            except _Reached:
                return "reached"
        return "finished"
    return call


def _collect() -> dict[str, list[Case]]:
    """Every ``CASES`` list of the ``test_*_bad_inputs.py`` files, by kpedu module."""
    import importlib.util
    import sys
    from collections import defaultdict
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    by_module: dict[str, list[Case]] = defaultdict(list)
    for path in sorted(here.rglob("test_*_bad_inputs.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for case in getattr(mod, "CASES", []):
            by_module[case.module].append(case)
    return dict(sorted(by_module.items()))


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    print(report(_collect()))
