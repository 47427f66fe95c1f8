"""Peak memory of every notebook, executed as the book build executes it.

    python .ci/notebook_memory.py [NOTEBOOK ...]      (default: every notebook in _toc.yml)

Binder gives a reader about 2 GB of memory, so every notebook must run within it. Each
notebook is executed top to bottom in a fresh kernel (nbclient, the profile from
KPEDU_PROFILE, default `book`, the notebook's folder as working directory); when it ends,
the kernel's peak resident memory is read from /proc/<pid>/status (VmHWM: the
high-water mark the Linux kernel keeps for the process, so no sampling can miss a peak).
The mark is reset after every cell (writing 5 to /proc/<pid>/clear_refs), so the report
also names the cell with the highest peak: the one to shrink when a notebook is too big.
Subprocesses that a notebook starts are not counted (one D2-Net cell measures extraction
costs in child processes; each of those is smaller than the kernel).

Prints one line per notebook and writes _build/notebook-memory.json. Linux only.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bookbuild import toc_notebooks, write_atomic  # noqa: E402

LIMIT_MB = 2048  # Binder's memory per user


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_peak(pid: int) -> bool:
    """Restart the kernel's high-water mark at its current RSS (Linux 4.0+); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run(path: Path) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.time()
    error = None
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        peak, worst_cell, per_cell = 0.0, None, reset_peak(pid)
        try:
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, i)
                    if per_cell:
                        cell_peak = peak_rss_mb(pid)
                        if cell_peak > peak:
                            peak, worst_cell = cell_peak, i
                        reset_peak(pid)
        except Exception as exc:  # report, and still read the peak so far
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:160]}"
        peak = max(peak, peak_rss_mb(pid))
    return {"notebook": path.relative_to(ROOT).as_posix(), "peak_rss_mb": round(peak, 1),
            "peak_cell": worst_cell, "seconds": round(time.time() - t0, 1), "error": error}


def main(argv: list[str]) -> int:
    os.environ.setdefault("KPEDU_PROFILE", "book")
    paths = [Path(a).resolve() for a in argv] or toc_notebooks(ROOT)
    rows = []
    print(f"peak resident memory of each notebook's kernel (KPEDU_PROFILE={os.environ['KPEDU_PROFILE']}; "
          f"limit {LIMIT_MB} MB)", flush=True)
    for p in paths:
        r = run(p)
        rows.append(r)
        flag = "" if r["peak_rss_mb"] < LIMIT_MB else "  <-- over the limit"
        where = f" (cell {r['peak_cell']})" if r["peak_cell"] is not None else ""
        print(f"  {r['peak_rss_mb']:8.0f} MB  {r['seconds']:7.1f} s  {r['notebook']}{where}{flag}"
              + (f"  FAILED: {r['error']}" if r["error"] else ""), flush=True)
    write_atomic(ROOT / "_build" / "notebook-memory.json", json.dumps(
        {"profile": os.environ["KPEDU_PROFILE"], "limit_mb": LIMIT_MB, "notebooks": rows}, indent=1) + "\n")
    worst = max(rows, key=lambda r: r["peak_rss_mb"])
    print(f"largest: {worst['peak_rss_mb']:.0f} MB ({worst['notebook']})")
    return 0 if all(r["error"] is None and r["peak_rss_mb"] < LIMIT_MB for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
