"""Write book/section-times.json: each notebook's measured running time, from build reports.

    python .ci/section_times.py --book _build/book-report.json [--ci OTHER/_build/book-report.json]

`bash .ci/book` writes `_build/book-report.json` (per notebook: status and seconds, plus
the machine's matmul speed). This script copies the seconds of every notebook that was
executed (not served from the cache, whose times may come from another machine) into
`book/section-times.json`, which the teachers' page and the instructor edition read.
Run it after a build in the `book` profile (and, for the `ci` column, after one with
KPEDU_PROFILE=ci); it refuses reports from the wrong profile or with failures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from kpedu.files import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "section-times.json"


def read(path: Path, profile: str) -> dict:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    if report.get("profile") != profile:
        sys.exit(f"{path}: a report of the {report.get('profile')!r} profile, expected {profile!r}")
    if report.get("failures"):
        sys.exit(f"{path}: the build had failures; fix them and build again")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book", type=Path, required=True, help="a book-report.json of the book profile")
    parser.add_argument("--ci", type=Path, help="a book-report.json of the ci profile")
    parser.add_argument("--out", type=Path, default=OUT, help="the file to write (default book/section-times.json)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"notebooks": {}}
    data = {"measured": dt.date.today().isoformat(), "machine": None, "ci_machine": None,
            "how": "", "notebooks": old.get("notebooks", {})}
    for key, path in (("book_s", args.book), ("ci_s", args.ci)):
        if path is None:
            continue
        report = read(path, key[:-2])
        data["machine" if key == "book_s" else "ci_machine"] = report["machine"]
        if key == "book_s":
            data["how"] = ("executed by `bash .ci/book`, "
                           + ("two notebooks at a time, one thread each" if report.get("jobs", 1) > 1
                              else "one notebook at a time"))
        for row in report["notebooks"]:
            if row["status"] == "executed" and row["seconds"] is not None:
                data["notebooks"].setdefault(row["notebook"], {})[key] = row["seconds"]
    if data["machine"] is None:
        data["machine"] = old.get("machine")
    if data["ci_machine"] is None:
        data["ci_machine"] = old.get("ci_machine")
    write_text_atomic(out, json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {out}: {len(data['notebooks'])} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
