"""Shared pytest configuration for kp-book.

- Tests marked ``book`` (the book build) run last.
- A summary section reports each notebook's total nbval time against the ci budget,
  and the time of each part of the run: unit tests, notebooks (nbval), the book build.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

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
        self.parts: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        path = report.nodeid.split("::", 1)[0]
        if path.endswith(".ipynb"):
            self.seconds[path] += report.duration
            self.parts["notebooks, ci profile (nbval)"] += report.duration
        elif path.endswith("test_colab_env.py"):
            self.parts["launch copies in the Colab emulation (.ci/colab_env.py)"] += report.duration
        elif path.endswith("test_book_build.py"):
            self.parts["book build, book profile (bash .ci/book) and its checks"] += report.duration
        else:
            self.parts["unit tests"] += report.duration

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tr = terminalreporter
        if self.parts:
            tr.write_sep("=", "time by part of the test run")
            for part, seconds in self.parts.items():
                tr.write_line(f"{seconds:8.1f}s  {part}")
            tr.write_line(f"{sum(self.parts.values()):8.1f}s  total")
        self._book_report(tr)
        if not self.seconds:
            return
        profile = os.environ.get("KPEDU_PROFILE", "book")
        tr.write_sep("=", f"notebook durations (nbval, KPEDU_PROFILE={profile})")
        for path, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            over = profile == "ci" and seconds > NOTEBOOK_BUDGET_S
            flag = f"  <-- over the {NOTEBOOK_BUDGET_S}s ci budget" if over else ""
            tr.write_line(f"{seconds:8.1f}s  {path}{flag}")
        tr.write_line(f"{sum(self.seconds.values()):8.1f}s  total")


    def _book_report(self, tr) -> None:
        """The executed build's per-notebook times (written by .ci/bookbuild.py)."""
        if not any(k.startswith("book build") for k in self.parts):
            return
        path = Path(__file__).resolve().parents[1] / "_build" / "book-report.json"
        if not path.is_file():
            return
        r = json.loads(path.read_text(encoding="utf-8"))
        tr.write_sep("=", f"book build: notebooks in the {r['profile']} profile ({r['machine']})")
        for row in r["notebooks"]:
            sec = "-" if row["seconds"] is None else f"{row['seconds']:.1f}s"
            tr.write_line(f"{sec:>9}  {row['status']:<12}  {row['notebook']}")
        tr.write_line(f"{r['notebook_seconds']:8.1f}s  all notebooks ({r['executed_seconds']:.1f}s executed in this "
                      f"build); whole jupyter-book build {r['wall_seconds']:.0f}s")
        for f in r["failures"]:
            tr.write_line(f"FAILED: {f['notebook']}, {f['cell']}: {f['error']}")


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("kp-notebook-durations"):
        config.pluginmanager.register(NotebookDurations(), "kp-notebook-durations")
