"""Shared pytest configuration for kp-book.

- Tests marked ``book`` (the book build) run last.
- A summary section reports each notebook's total nbval time against the ci budget.
"""
from __future__ import annotations

import os
from collections import defaultdict

NOTEBOOK_BUDGET_S = 180  # the `ci` profile promises every notebook well under 3 minutes


def pytest_collection_modifyitems(config, items):
    """Run tests marked ``book`` (the book build) last, after the unit tests and the
    nbval notebook runs: it is the slowest check and the least specific when it fails."""
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("book") is not None)


class NotebookDurations:
    """Adds up nbval's per-cell times (setup, call, teardown) per notebook.

    Registered as a plugin rather than written as conftest hooks: hooks of this
    conftest would only see items under tests/, and the notebooks live under book/."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        path = report.nodeid.split("::", 1)[0]
        if path.endswith(".ipynb"):
            self.seconds[path] += report.duration

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.seconds:
            return
        profile = os.environ.get("KPEDU_PROFILE", "book")
        tr = terminalreporter
        tr.write_sep("=", f"notebook durations (nbval, KPEDU_PROFILE={profile})")
        for path, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            over = profile == "ci" and seconds > NOTEBOOK_BUDGET_S
            flag = f"  <-- over the {NOTEBOOK_BUDGET_S}s ci budget" if over else ""
            tr.write_line(f"{seconds:8.1f}s  {path}{flag}")
        tr.write_line(f"{sum(self.seconds.values()):8.1f}s  total")


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("kp-notebook-durations"):
        config.pluginmanager.register(NotebookDurations(), "kp-notebook-durations")
