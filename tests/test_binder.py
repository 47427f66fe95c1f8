"""binder/: what Binder (repo2docker) builds for a reader.

A real Binder build cannot run here; these tests check the files against what
repo2docker does with them and against the package they must install:
- binder/ exists, so repo2docker reads it instead of the repository root;
- the Python version is one that repo2docker supports and kpedu accepts;
- torch is the CPU build, pinned, from PyTorch's CPU wheel index;
- the reader's packages are exactly kpedu's runtime dependencies (pyproject.toml), with
  the same version ranges, plus MyST rendering for JupyterLab; nothing for building the
  book or running the tests;
- postBuild installs kpedu non-editably and without dependencies, so the requirements
  layer stays cached when only kpedu or the book changes.
"""
from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def parse_requirements(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """({canonical name: version specifier}, option lines such as --extra-index-url)."""
    reqs, options = {}, []
    for line in lines:
        if line.startswith("-"):
            options.append(line)
            continue
        m = NAME.match(line)
        assert m, f"cannot read requirement {line!r}"
        spec = m.group(2).replace(" ", "")
        reqs[_canonical(m.group(1))] = ",".join(sorted(c for c in spec.split(",") if c))  # order-free
    return reqs, options


def test_binder_folder_is_complete():
    for name in ("requirements.txt", "runtime.txt", "postBuild"):
        assert (BINDER / name).is_file(), f"binder/{name} is missing"
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs postBuild only when it is executable"


def test_python_version():
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    m = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert m and int(m.group(1)) in (11, 12), f"runtime.txt should be python-3.11 or python-3.12, got {runtime!r}"


def test_cpu_torch_from_the_cpu_index():
    reqs, options = parse_requirements(requirement_lines(BINDER / "requirements.txt"))
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options
    assert re.fullmatch(r"==2\.\d+\.\d+", reqs.get("torch", "")), f"pin torch exactly, got {reqs.get('torch')!r}"


def kpedu_dependencies() -> dict[str, str]:
    """kpedu's runtime dependencies as installed from pyproject.toml (extras left out)."""
    lines = [r for r in (metadata.requires("kpedu") or []) if "extra ==" not in r]
    return parse_requirements([r.split(";", 1)[0] for r in lines])[0]


# kpedu accepts ipywidgets 7.7.1 (Colab's), but Binder runs JupyterLab 4, whose widget
# renderer (jupyterlab_widgets 3) needs ipywidgets 8.
NARROWER = {"ipywidgets": ">=8"}


def check_reader_packages(requirements: Path) -> None:
    """Raise AssertionError when the reader's requirements drift from kpedu's or add tools."""
    lines = requirement_lines(requirements)
    reqs, _ = parse_requirements(lines)
    deps = kpedu_dependencies()
    assert deps, "kpedu's metadata lists no dependencies: is kpedu installed?"
    for name, spec in deps.items():
        assert name in reqs, f"binder/requirements.txt lacks kpedu's dependency {name}"
        if name in NARROWER:  # a stricter range that Binder's JupyterLab needs
            assert reqs[name] == NARROWER[name], f"{name}: binder says {reqs[name]!r}, expected {NARROWER[name]!r}"
        elif name != "torch":
            assert reqs[name] == spec, f"{name}: binder says {reqs[name]!r}, pyproject.toml says {spec!r}"
    assert not any(line.startswith(("-e", ".")) for line in lines), \
        "installing the repository from requirements.txt defeats repo2docker's cached layer"
    for tool in ("jupyter-book", "pytest", "nbval", "sphinx-mathjax-offline"):
        assert tool not in reqs, f"{tool} builds or tests the book; a reader does not need it"
    extra = set(reqs) - set(deps)
    assert extra == {"jupyterlab-myst"}, f"only MyST rendering is added for readers, found {sorted(extra)}"


def test_reader_packages_match_kpedu_dependencies():
    check_reader_packages(BINDER / "requirements.txt")


def test_post_build_installs_kpedu_without_dependencies():
    script = (BINDER / "postBuild").read_text(encoding="utf-8")
    assert script.startswith("#!/bin/bash") and "set -euo pipefail" in script
    commands = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    installs = [line for line in commands if "pip install" in line]
    assert len(installs) == 1, installs
    assert re.search(r"pip install .*--no-deps.* \.$", installs[0]), installs[0]
    assert " -e " not in installs[0] and "--editable" not in installs[0]


@pytest.mark.parametrize("added, message", [
    ("-e .\n", "cached layer"),
    ("jupyter-book==1.0.4.post1\n", "reader does not need"),
    ("pandas\n", "only MyST rendering"),
])
def test_checks_catch_bad_requirements(tmp_path, added, message):
    """The checks fail on a file that installs the repository, a build tool or an extra package."""
    bad = tmp_path / "requirements.txt"
    bad.write_text((BINDER / "requirements.txt").read_text(encoding="utf-8") + added, encoding="utf-8")
    with pytest.raises(AssertionError, match=message):
        check_reader_packages(bad)
    drifted = tmp_path / "drifted.txt"
    drifted.write_text((BINDER / "requirements.txt").read_text(encoding="utf-8").replace("scipy>=1.10", "scipy>=1.5"),
                       encoding="utf-8")
    with pytest.raises(AssertionError, match="scipy"):
        check_reader_packages(drifted)
