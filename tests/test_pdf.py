"""The PDF of the book, `bash .ci/pdf` (README, "A PDF of the book").

The whole book's PDF needs every notebook executed in the `book` profile, which the book
build already does; here the same command builds a small book instead, with the book's
own `_config.yml`: a first page written below (display math with a `\\tag`, Chinese terms
as in the glossary, an apostrophe), the notation page, one executed notebook
(`03-decoding`, in the quick `ci` profile, with a figure) and the references. It checks that
the PDF has pages, the figure and the math, and every Chinese character (XeLaTeX prints
nothing for a glyph its font lacks and only says so in its log).

A second test, quick and without TeX, checks what a machine without TeX Live gets: exit
status 2 and the apt-get line, with no traceback. The slow test is skipped where
xelatex or latexmk is missing (TeX Live is an apt install, not part of .ci/install).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# the pages copied into the small book (03-decoding links to the notation page; the
# references page holds the bibliography that the citations point to)
PAGES = ["book/notation.md", "book/ch00-foundations/03-decoding.ipynb", "book/references.md",
         "book/references.bib"]
FIRST_PAGE = """# A small book

The Gaussian target of keypoint $k$, with a tag as the chapters write it:

$$
H_k(\\mathbf{u}) = \\exp\\left(-\\frac{\\lVert \\mathbf{u} - \\mathbf{p}_k \\rVert^2}{2\\sigma^2}\\right). \\tag{1}
$$

COCO's terms in English and Chinese:

| English | 中文 |
|---|---|
| keypoint | 关键点 |
| heatmap | 热图 |
| soft-argmax | 软最大值定位（soft-argmax） |
"""


def _apt_line() -> str:
    m = re.search(r'^APT_LINE="([^"]+)"', (ROOT / ".ci" / "pdf").read_text(encoding="utf-8"), re.M)
    assert m, ".ci/pdf has no APT_LINE"
    return m.group(1)


def test_without_tex_the_command_says_what_to_install(tmp_path):
    """No TeX on PATH: exit 2 before installing anything, with the apt-get line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):  # what .ci/pdf runs before its check, besides bash builtins
        os.symlink(shutil.which(tool), bin_dir / tool)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env["PATH"] = str(bin_dir)
    proc = subprocess.run([shutil.which("bash"), str(ROOT / ".ci" / "pdf")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{output}"
    assert _apt_line() in output
    assert "sudo apt-get install -y --no-install-recommends texlive-xetex" in output
    assert "the command xelatex" in output and "the command latexmk" in output
    assert "Traceback" not in output and "[install]" not in output


def test_readme_gives_the_same_apt_line():
    assert _apt_line() in (ROOT / "README.md").read_text(encoding="utf-8")


def _small_book(book: Path) -> None:
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    for page in PAGES:
        (book / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, book / page)
    shutil.copytree(ROOT / "book" / "_vendor", book / "book" / "_vendor")  # html_extra_path must exist
    (book / "book" / "intro.md").write_text(FIRST_PAGE, encoding="utf-8")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Getting started\n    chapters:\n      - file: book/notation\n"
        "  - caption: Foundations\n    chapters:\n      - file: book/ch00-foundations/03-decoding\n"
        "  - caption: Back matter\n    chapters:\n      - file: book/references\n", encoding="utf-8")


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("latexmk")),
                    reason="TeX Live is not installed (xelatex, latexmk): the PDF needs the apt-get line of "
                           "README.md, 'A PDF of the book'")
def test_pdf_of_a_small_book(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _small_book(book)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTEST_CURRENT_TEST")}
    env["KPEDU_PROFILE"] = "ci"
    started = time.time()
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "pdf"), "--root", str(book)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    output = ANSI.sub("", proc.stdout + proc.stderr)
    print("\n".join(line for line in output.splitlines() if line.startswith("[pdf]")))
    print(f"bash .ci/pdf on a one-notebook book: {time.time() - started:.0f} s")
    if proc.returncode == 2 and "apt-get install" in output:
        pytest.skip("TeX Live is incomplete here: " + " ".join(
            line for line in output.splitlines() if line.startswith("[pdf]   ")))
    tail = "\n".join(output.splitlines()[-40:])
    assert proc.returncode == 0, f"bash .ci/pdf exited {proc.returncode}:\n{tail}"
    assert "Traceback" not in output, tail

    # what the command prints: the path, the page count, the time
    m = re.search(r"^\[pdf\] PDF: (.+\.pdf)$", output, re.M)
    assert m, f"no PDF path printed:\n{tail}"
    pdf = Path(m.group(1))
    assert pdf == book / "_build" / "latex" / "kp-book.pdf"
    pages = int(re.search(r"^\[pdf\]\s+(\d+) pages", output, re.M).group(1))
    assert re.search(r"^\[pdf\] time: .* s in all$", output, re.M), tail
    report = json.loads((book / "_build" / "pdf-report.json").read_text(encoding="utf-8"))
    (doc,) = report["documents"]
    assert doc["pages"] == pages and doc["ok"]
    # title page, contents, four parts and chapters, the bibliography
    assert pages >= 10, f"only {pages} pages"

    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Subtype\s*/Image", data)) >= 1, "the PDF holds no image"

    # the LaTeX: the notebook's figure, the math, the Chinese
    latex = book / "_build" / "latex"
    tex = (latex / "kp-book.tex").read_text(encoding="utf-8")
    figures = re.findall(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{([^}]+)\}(\.\w+)\}", tex)
    assert figures, "no figure in the LaTeX (the notebook's plot is missing)"
    for stem, ext in figures:
        assert (latex / f"{stem}{ext}").is_file(), f"{stem}{ext} is referenced but not in {latex}"
    assert tex.count(r"\begin{split}") >= 3, "display math is missing"
    assert r"\tag{1}" in tex and r"\mathbf{p}_k" in tex
    assert "关键点" in tex and "软最大值定位" in tex
    log = (latex / "kp-book.log").read_text(encoding="utf-8", errors="replace")
    assert "Missing character" not in log, re.findall(r"Missing character.*", log)[:5]
    assert doc["missing_glyphs"] == [] and doc["book_warnings"] == []
    assert "sphinxbackoftitlepage" in tex and "creativecommons.org/licenses/by-sa/4.0" in tex
