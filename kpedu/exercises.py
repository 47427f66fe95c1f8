"""Self-checks for the book's exercises: print a clear verdict, raise when wrong.

Every exercise in the book has a stub, a hidden solution and a self-check cell that
calls one of these functions. A wrong answer raises ``AssertionError`` (so the executed
book and the test-suite notice a broken solution); a stub that still returns ``None``
gets a friendly hint instead of a traceback from deep inside numpy.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_close", "check_true"]


def _np(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_close(name: str, actual, expected, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """Check ``actual`` against ``expected`` (arrays or numbers) within a tolerance."""
    if actual is None:
        raise AssertionError(f"{name}: not yet - your function returned None (replace the `...`)")
    a, e = _np(actual), _np(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: wrong shape {a.shape}, expected {e.shape}")
    if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=False):
        worst = float(np.nanmax(np.abs(a - e)))
        raise AssertionError(f"{name}: values differ from the reference by up to {worst:.3g} (tolerance {atol:g})")
    print(f"{name}: passed \u2713")


def check_true(name: str, condition: bool, hint: str = "") -> None:
    """Check a condition; ``hint`` explains what was expected."""
    if not condition:
        raise AssertionError(f"{name}: not yet. {hint}".strip())
    print(f"{name}: passed \u2713")
