"""The launch copies, run in an emulation of Colab.

    python .ci/colab_env.py            (from the repository root, in the book's environment)

1. Makes a virtual environment (`_build/colab-env/venv`) with Colab's Python (3.13) and
   Colab's versions of the packages kp-book touches (`.ci/colab-packages.txt`, from
   Colab's published package list). It is reused while that list is unchanged.
2. Builds kpedu's wheel from this checkout (the stand-in for the release the launch
   copies pin) and writes the launch copies (`python -m kpedu.editions launch`).
3. Runs every launch copy top to bottom in the `ci` profile, in a kernel of that
   environment in which `google.colab` is imported at start (as in Colab), so the setup
   cell takes its Colab branch: the first notebook installs kpedu from the wheel
   (KPEDU_INSTALL_SOURCE stands in for the release tag), the others find it installed.
4. Fails if installing kpedu upgraded, downgraded or removed any package that was there
   before (Colab's torch, ipywidgets, opencv and numpy must stay as they are), if any
   notebook fails, or if the widget tests fail under Colab's ipywidgets 7.7.
Prints the time of each step and writes `_build/colab-env/report.json`.

Needs Python 3.13 (`COLAB_PYTHON`, else `python3.13` on PATH or under ~/.pyenv) and a
package index with those versions. It does not emulate Colab's front end: what a widget
looks like in Colab's browser is not checked, only that it is built without error.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "colab-env"
VENV = WORK / "venv"
PACKAGES = ROOT / ".ci" / "colab-packages.txt"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bookbuild import toc_notebooks, write_atomic  # noqa: E402

COLAB_STUB = '''"""Stand-in for Colab's google.colab package (the kp-book Colab emulation): its import
is all the setup cells look at."""
'''


def log(msg: str) -> None:
    print(f"[colab] {msg}", flush=True)


def find_python() -> str:
    candidates = [os.environ.get("COLAB_PYTHON"), shutil.which("python3.13"),
                  *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))]
    for c in candidates:
        if c and Path(c).exists():
            out = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                                 capture_output=True, text=True)
            if out.stdout.strip() == "True":
                return c
    raise SystemExit("[colab] no Python 3.13 found (Colab's Python): set COLAB_PYTHON to one")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"[colab] failed: {' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def packages(python: Path) -> dict[str, str]:
    out = run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"])
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out.stdout)}


def make_env() -> Path:
    """The Colab-like environment, rebuilt when .ci/colab-packages.txt changes."""
    python = VENV / "bin" / "python"
    stamp = VENV / "colab-packages.sha256"
    digest = hashlib.sha256(PACKAGES.read_bytes()).hexdigest()
    if python.exists() and stamp.is_file() and stamp.read_text() == digest:
        log(f"reusing {VENV.relative_to(ROOT)}")
    else:
        shutil.rmtree(VENV, ignore_errors=True)
        base = find_python()
        run([base, "-m", "venv", str(VENV)])
        log(f"installing Colab's package versions into {VENV.relative_to(ROOT)} (Python from {base})")
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(PACKAGES)])
        write_atomic(stamp, digest)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    stub = site / "google" / "colab" / "__init__.py"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(COLAB_STUB)
    # a fresh start: no kpedu from an earlier run
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "kpedu"], capture_output=True)
    return python


def kernel_spec(python: Path, wheel: Path) -> Path:
    """A Jupyter kernel of the Colab-like environment that imports google.colab at start."""
    ipython_dir = WORK / "ipython"
    startup = ipython_dir / "profile_default" / "startup" / "00-colab.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text("import google.colab  # noqa: F401  (Colab's kernels import it at start)\n")
    data = WORK / "jupyter"
    spec = data / "kernels" / "colab-like" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like (Python 3.13)", "language": "python",
        "env": {"IPYTHONDIR": str(ipython_dir), "KPEDU_PROFILE": "ci", "KPEDU_INSTALL_SOURCE": str(wheel),
                "MPLBACKEND": "module://matplotlib_inline.backend_inline", "OMP_WAIT_POLICY": "PASSIVE",
                "PYTHONWARNINGS": "ignore::DeprecationWarning", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    }, indent=1))
    return data


def execute(path: Path) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    # the kernel spec is found through JUPYTER_PATH (set in main)
    client = NotebookClient(nb, timeout=900, kernel_name="colab-like", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.time()
    error = None
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001  (reported per notebook)
        error = f"{type(exc).__name__}: {str(exc).strip()[-1500:]}"
    first = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    setup_out = "".join(o.get("text", "") for o in first.get("outputs", []) if o.get("output_type") == "stream")
    return {"notebook": path.as_posix(), "seconds": round(time.time() - t0, 1), "error": error,
            "installed_kpedu": "installing kpedu" in setup_out}


def main() -> int:
    t_start = time.time()
    times = {}
    WORK.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    python = make_env()
    times["environment"] = time.time() - t0
    before = packages(python)
    log(f"environment ready in {times['environment']:.0f} s: Python "
        + run([str(python), "-c", "import platform; print(platform.python_version())"]).stdout.strip()
        + ", " + ", ".join(f"{k} {before[k]}" for k in ("torch", "numpy", "ipywidgets", "opencv-python-headless")))

    t0 = time.time()
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)])
    wheel = next(dist.glob("kpedu-*.whl"))
    launch = WORK / "launch"
    shutil.rmtree(launch, ignore_errors=True)
    run([sys.executable, "-m", "kpedu.editions", "launch", str(launch)], cwd=ROOT)
    data = kernel_spec(python, wheel)
    times["wheel and launch copies"] = time.time() - t0
    log(f"built {wheel.name} and the launch copies in {times['wheel and launch copies']:.0f} s")

    rows = []
    t0 = time.time()
    os.environ["JUPYTER_PATH"] = str(data)
    for nb in toc_notebooks(ROOT):
        copy = launch / nb.relative_to(ROOT)
        r = execute(copy)
        r["notebook"] = nb.relative_to(ROOT).as_posix()
        rows.append(r)
        log(f"{r['seconds']:6.1f} s  {r['notebook']}" + ("  (installed kpedu)" if r["installed_kpedu"] else "")
            + (f"  FAILED: {r['error'][-600:]}" if r["error"] else ""))
    times["notebooks"] = time.time() - t0

    after = packages(python)
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    added = sorted(set(after) - set(before))
    problems = []
    if changed:
        problems.append("installing kpedu changed Colab's packages: "
                        + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
    if added != ["kpedu"]:
        problems.append(f"expected kpedu alone to be added, got {added}")
    installs = [r["notebook"] for r in rows if r["installed_kpedu"]]
    if installs != [rows[0]["notebook"]]:
        problems.append(f"expected the first notebook alone to install kpedu, got {installs}")
    problems += [f"{r['notebook']}: {r['error'][-600:]}" for r in rows if r["error"]]

    t0 = time.time()
    widget_tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                                   "tests/test_viz_widgets.py"], cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, "MPLBACKEND": "Agg", "KPEDU_PROFILE": "ci"})
    times["widget tests (ipywidgets 7.7)"] = time.time() - t0
    summary = (widget_tests.stdout.strip().splitlines() or [""])[-1]
    log(f"widget tests under ipywidgets {after.get('ipywidgets')}: {summary}")
    if widget_tests.returncode != 0:
        problems.append("widget tests failed under Colab's ipywidgets:\n" + widget_tests.stdout[-3000:])

    times["total"] = time.time() - t_start
    size_mb = sum(f.stat().st_size for f in VENV.rglob("*") if f.is_file()) / 2**20
    report = {"python": run([str(python), "-c", "import platform; print(platform.python_version())"]).stdout.strip(),
              "packages_before": before, "packages_after": after, "wheel": wheel.name,
              "notebooks": rows, "seconds": {k: round(v, 1) for k, v in times.items()},
              "environment_mb": round(size_mb), "problems": problems}
    write_atomic(WORK / "report.json", json.dumps(report, indent=1) + "\n")
    log("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    if problems:
        log("FAILED:\n  " + "\n  ".join(problems))
        return 1
    log(f"passed: {len(rows)} launch copies ran; kpedu added and nothing else changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
