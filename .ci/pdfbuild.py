"""The PDF of the whole book: what `bash .ci/pdf` runs after checking for TeX Live (see README).

    python .ci/pdfbuild.py [--root DIR] [--path-output DIR] [jupyter-book options ...]

1. **LaTeX.** `.ci/bookbuild.py --builder latex`: Jupyter Book's LaTeX builder on the
   executed book, with the notebook cache that `bash .ci/book` uses (`_build/.nbcache`, per
   profile and kpedu version: a notebook executed for the site is not executed again), the
   same checks (`-W -n --keep-going`) and the same per-notebook report
   (`_build/book-report.latex.json`).
2. **PDF.** `make all-pdf` in `_build/latex` (the Makefile Sphinx writes: latexmk with
   XeLaTeX, which `_config.yml` selects, and xeCJK with Noto CJK for the glossary's
   Chinese), non-interactively, stopping at the first LaTeX error; its output goes to
   `_build/latex/latexmk.out`. `.ci/tex` is on TeX's search path after TeX Live's own
   folders: it holds a stand-in for `bbm.sty`, which Jupyter Book's LaTeX class loads but
   Debian ships only in the 1.4 GB texlive-fonts-extra.
3. **Report.** The PDF's path, its page count and size, the time of each step, and the
   LaTeX problems a reader would see: glyphs missing from the fonts, undefined references,
   lines that stick out into the margin (counted). The same facts go to `_build/pdf-report.json`.

Exit status: 0 when both steps succeeded. A failed notebook or a Sphinx warning does not
stop the PDF (as `bash .ci/book` still writes every page), but the exit status is then 1.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LATEXOPTS = "-interaction=nonstopmode -halt-on-error -file-line-error"
WIDE_PT = 5.0  # an overfull line counts when it sticks out further than this into the margin


def say(msg: str) -> None:
    print(f"[pdf] {msg}", flush=True)


def page_count(pdf: Path, log_text: str) -> int | None:
    """Pages of ``pdf``: from poppler's pdfinfo when installed, else from XeLaTeX's log."""
    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        m = re.search(r"^Pages:\s+(\d+)", out, re.M)
        if m:
            return int(m.group(1))
    m = None
    for m in re.finditer(r"Output written on .*?\((\d+) pages?", log_text, re.S):
        pass
    return int(m.group(1)) if m else None


def latex_problems(log_text: str) -> dict:
    """What the reader of the PDF would notice, from the LaTeX log."""
    missing = re.findall(r"Missing character: There is no (.) \(U\+([0-9A-F]+)\) in font ([^!]+)!", log_text)
    if not missing:  # older XeTeX: no code point in the message
        missing = [(c, f"{ord(c):04X}", font) for c, font in
                   re.findall(r"Missing character: There is no (.) in font ([^!]+)!", log_text)]
    undefined = sorted(set(re.findall(r"LaTeX Warning: (?:Reference|Citation|Hyper reference) [`'](.+?)' .*?undefined",
                                      log_text)))
    return {
        "missing_glyphs": sorted({f"U+{code} {char} ({font.strip()})" for char, code, font in missing}),
        "undefined_references": undefined,
        "wide_lines": sum(float(pt) > WIDE_PT for pt in re.findall(r"^Overfull \\hbox \(([\d.]+)pt too wide", log_text, re.M)),
        "book_warnings": sorted(set(re.findall(r"Package kp-book Warning: (.+)", log_text))),
        "font_substitutions": sorted(set(re.findall(r"LaTeX Font Warning: Font shape `([^']+)' undefined", log_text))),
    }


def first_error(log_text: str) -> str:
    """The first LaTeX error (a `! ...` or `file:line: ...` line and the lines after it)."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^\S+\.(tex|sty|cls):\d+: ", line):
            return "\n".join(lines[i:i + 8])
    return "no error line in the log"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=HERE.parent, type=Path)
    parser.add_argument("--path-output", default=None, type=Path)
    args, extra = parser.parse_known_args(argv)
    if any(a == "--builder" or a.startswith("--builder=") for a in extra):
        parser.error("the builder is latex here; .ci/bookbuild.py builds the other formats")
    out = (args.path_output or args.root).resolve()
    latex = out / "_build" / "latex"

    started = time.time()
    say("step 1: the executed book as LaTeX (.ci/bookbuild.py --builder latex)")
    rc = subprocess.call([sys.executable, str(HERE / "bookbuild.py"), *argv, "--builder", "latex"])
    t_latex = time.time() - started
    texs = sorted(latex.glob("*.tex")) if latex.is_dir() else []
    if not texs:
        say(f"no LaTeX was written to {latex} (exit {rc}); see above")
        return rc or 1

    say(f"step 2: PDF with XeLaTeX (make all-pdf in {latex}; output in latexmk.out)")
    env = dict(os.environ, LATEXOPTS=LATEXOPTS)
    # an empty entry stands for TeX Live's own folders: .ci/tex comes after them
    env["TEXINPUTS"] = f"{os.environ.get('TEXINPUTS', '')}:{HERE / 'tex'}//"
    t0 = time.time()
    with open(latex / "latexmk.out", "w", encoding="utf-8") as log:
        make_rc = subprocess.call(["make", "all-pdf"], cwd=latex, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    t_pdf = time.time() - t0

    results = []
    for tex in texs:
        pdf, log_file = tex.with_suffix(".pdf"), tex.with_suffix(".log")
        log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.is_file() else ""
        ok = make_rc == 0 and pdf.is_file()
        entry = {"pdf": str(pdf), "ok": ok, "pages": page_count(pdf, log_text) if pdf.is_file() else None,
                 "bytes": pdf.stat().st_size if pdf.is_file() else None, **latex_problems(log_text)}
        results.append(entry)
        if not ok:
            say(f"LaTeX failed on {tex.name} (make exited {make_rc}); the first error in {log_file}:")
            print("  " + first_error(log_text).replace("\n", "\n  "))
            continue
        say(f"PDF: {pdf}")
        say(f"     {entry['pages']} pages, {entry['bytes'] / 1e6:.1f} MB")
        if entry["missing_glyphs"]:
            say(f"     {len(entry['missing_glyphs'])} character(s) missing from the fonts (printed as nothing): "
                + ", ".join(entry["missing_glyphs"][:10]))
        if entry["undefined_references"]:
            say(f"     undefined references: {', '.join(entry['undefined_references'][:10])}")
        for warning in entry["book_warnings"]:
            say(f"     warning from the preamble in _config.yml: {warning}")
        say(f"     {entry['wide_lines']} line(s) sticking out more than {WIDE_PT:g} pt into the margin")
    total = time.time() - started
    say(f"time: {t_latex:.0f} s for the LaTeX (notebooks included), {t_pdf:.0f} s for the PDF, {total:.0f} s in all")
    report = {"latex_seconds": round(t_latex, 1), "pdf_seconds": round(t_pdf, 1), "seconds": round(total, 1),
              "bookbuild_exit": rc, "make_exit": make_rc, "documents": results}
    (out / "_build" / "pdf-report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if rc != 0:
        say(f"the LaTeX step exited {rc} (a failed notebook or a Sphinx warning: see its report above)")
    return rc or (0 if make_rc == 0 and all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    sys.exit(main())
