"""Self-checks for the book's exercises, in the format nbgrader uses.

Every coding exercise in the book has two cells, marked in their metadata the way
`nbgrader <https://nbgrader.readthedocs.io>`_ marks an assignment:

- an **answer cell** (``nbgrader.solution``): the function to write, whose body holds the
  solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``. The book hides it
  behind a "show" button and runs it, so every self-check is executed when the book is
  built; the student edition (``python -m kpedu.editions student OUT/``, or
  ``nbgrader generate_assignment``) replaces the region with
  ``raise NotImplementedError()``;
- a **self-check cell** (``nbgrader.grade``, locked, with points), which runs its checks
  inside ``with exercise("Exercise 1"):``.

Written questions keep their answers between ``<!-- BEGIN SOLUTION -->`` and
``<!-- END SOLUTION -->`` in a manually graded answer cell.

How a self-check reacts depends on the *mode*, read from the environment variable
``KPEDU_EXERCISES`` when the check runs:

``strict`` (the default: the book, the tests, the instructor edition)
    A wrong or missing answer raises, so a broken solution cannot go unnoticed.
``practice`` (set by the first cell of the student edition)
    The check prints its verdict and never raises: "not solved yet" for an exercise
    whose function still raises ``NotImplementedError`` (or returns ``None``), "not yet"
    with the reason for a wrong answer, and the error for code that fails. "Run all" then
    runs the whole notebook, and nothing the student wrote is overwritten.
``grade`` (set by ``python -m kpedu.editions grade`` and by the course's
``nbgrader_config.py``)
    Like ``strict``: the grader counts a self-check cell that raises as failed.
"""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager

import numpy as np

__all__ = ["check_close", "check_true", "exercise", "mode", "NotSolved", "MODES"]

MODES = ("strict", "practice", "grade")


class NotSolved(AssertionError):
    """Raised by a check when the answer is missing (the stub was not replaced yet)."""


def _initial_environment(name: str) -> str | None:
    """``name`` as it was when this process started (Linux: ``/proc/self/environ``), or None."""
    try:
        with open("/proc/self/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def mode() -> str:
    """The current mode: ``KPEDU_EXERCISES`` (``strict`` when unset).

    A kernel started for grading (``KPEDU_EXERCISES=grade`` in the environment it was
    started with) stays in ``grade`` mode even if a cell changes ``os.environ``: a
    submission cannot switch its own self-checks to ``practice``."""
    if (_initial_environment("KPEDU_EXERCISES") or "").strip().lower() == "grade":
        return "grade"
    value = os.environ.get("KPEDU_EXERCISES", "strict").strip().lower() or "strict"
    if value not in MODES:
        raise ValueError(f"KPEDU_EXERCISES={value!r}: expected one of {', '.join(MODES)}")
    return value


def _np(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_close(name: str, actual, expected, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """Check ``actual`` against ``expected`` (arrays or numbers) within a tolerance.

    Raises :class:`NotSolved` when ``actual`` is ``None`` and ``AssertionError`` when the
    shapes or the values differ; prints "passed" otherwise.
    """
    if actual is None:
        raise NotSolved(f"{name}: not solved yet - your function returned None")
    a, e = _np(actual), _np(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: wrong shape {a.shape}, expected {e.shape}")
    if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=False):
        diff = np.abs(a - e)
        worst = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
        raise AssertionError(f"{name}: values differ from the reference by up to {worst:.3g} (tolerance {atol:g})")
    print(f"{name}: passed \u2713")


def check_true(name: str, condition: bool, hint: str = "") -> None:
    """Check a condition; ``hint`` explains what was expected."""
    if not condition:
        raise AssertionError(f"{name}: not yet. {hint}".strip())
    print(f"{name}: passed \u2713")


def _unsolved(exc: BaseException) -> bool:
    return isinstance(exc, (NotImplementedError, NotSolved))


@contextmanager
def exercise(name: str):
    """Run an exercise's self-checks; in ``practice`` mode, report instead of raising.

    >>> with exercise("Exercise 1"):          # doctest: +SKIP
    ...     check_close("Exercise 1", my_function(x), reference)

    In ``strict`` and ``grade`` mode every exception propagates (a failed check fails the
    cell). In ``practice`` mode the block stops at the first failure, which is reported
    in one line (with the traceback of the student's own code when it raised something
    other than a failed check), and the notebook goes on.
    """
    current = mode()
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - practice mode reports every failure
        if current != "practice":
            raise
        if _unsolved(exc):
            print(f"{name}: not solved yet (replace `raise NotImplementedError()` with your code, then run the "
                  "cell again)")
        elif isinstance(exc, AssertionError):
            msg = str(exc) or "a check failed"
            print(msg if msg.startswith(name) else f"{name}: {msg}")
        else:
            print(f"{name}: your code raised {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exception(type(exc), exc, exc.__traceback__, limit=-3, file=sys.stderr)
