"""The README's first command, `bash .ci/book`, run as a reader runs it, and checked.

The build executes every notebook in the `book` profile (exactly what readers and the
published site get; nbval runs the quick `ci` profile earlier in the same pytest
session), with warnings as errors. It reuses the executed-notebook cache in
`_build/.nbcache` when the notebooks, the profile and kpedu are unchanged, so a rebuild
on a developer's machine is quick; CI starts from a fresh clone and executes everything.

Checks: the build exits 0 without warnings; every page of the table of contents has
HTML; every notebook was executed (now or in a cached run) and none failed; the site
works offline (MathJax and the widget scripts are local files of the site). The build's
time is reported (per notebook, beside the machine's matmul speed) but not asserted: a
time measured on a shared machine is not a property of the code. A second test builds
a two-notebook book whose first notebook fails, and checks that the build still writes
every page, names the failed notebook and its cell, and exits non-zero.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_book_structure import toc_entries

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BUILD_TIMEOUT_S = 60 * 60  # a hung kernel must not hang CI; the build's time itself is reported, not asserted

pytestmark = pytest.mark.book


def _load_bookbuild():
    spec = importlib.util.spec_from_file_location("bookbuild", ROOT / ".ci" / "bookbuild.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(profile: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTEST_CURRENT_TEST")}
    env["KPEDU_PROFILE"] = profile
    return env


@pytest.fixture(scope="module")
def built_book():
    """`bash .ci/book` in the book profile; (exit code, output, html folder, config, report)."""
    report_path = ROOT / "_build" / "book-report.json"
    report_path.unlink(missing_ok=True)  # never read an earlier build's report
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "book")], cwd=ROOT, capture_output=True, text=True,
                          env=_env("book"), timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    output = ANSI.sub("", proc.stdout + proc.stderr)
    print("\n".join(line for line in output.splitlines() if line.startswith(("[book]", "  "))))
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return proc.returncode, output, ROOT / "_build" / "html", config, report


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def test_build_succeeds_without_warnings(built_book):
    rc, output, _, _, _ = built_book
    warnings = [line for line in output.splitlines() if re.search(r"\bWARNING\b", line)
                and "Kernel is running over TCP" not in line]
    assert rc == 0, f"bash .ci/book exited {rc}:\n{_tail(output)}"
    assert not warnings, "the build printed warnings:\n" + "\n".join(warnings)


def test_every_notebook_executed_in_the_book_profile(built_book):
    rc, output, _, _, report = built_book
    assert report, f"no _build/book-report.json (exit {rc}):\n{_tail(output)}"
    assert report["profile"] == "book"
    notebooks = [e for e in toc_entries(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
                 if (ROOT / e).with_suffix(".ipynb").is_file()]
    rows = {r["notebook"]: r for r in report["notebooks"]}
    assert sorted(rows) == sorted(str(Path(e).with_suffix(".ipynb")) for e in notebooks)
    bad = {n: r["status"] for n, r in rows.items() if r["status"] not in ("executed", "cached")}
    assert not bad and not report["failures"], f"notebooks not executed: {bad}; failures: {report['failures']}"
    assert all(r["seconds"] is not None and r["seconds"] > 0 for r in rows.values())
    assert "GFLOP/s" in report["machine"]


def test_every_toc_page_has_html(built_book):
    rc, output, html, _, _ = built_book
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    missing = [e for e in toc_entries(toc)
               if not (html / Path(e).with_suffix(".html")).is_file()]
    assert not missing, f"no HTML page for {missing} (build exit {rc}):\n{_tail(output)}"


def test_site_loads_no_external_scripts(built_book):
    """Offline classrooms: MathJax and the widget manager come from the site itself."""
    _, _, html, config, _ = built_book
    pages = sorted(html.rglob("*.html"))
    assert pages, "the build produced no HTML"
    external = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"[^>]*>")
    for page in pages:
        for tag in external.findall(page.read_text(encoding="utf-8")):
            if "<link" in tag and "stylesheet" not in tag and "preload" not in tag:
                continue  # plain links (canonical, icons for launch buttons) load nothing
            pytest.fail(f"{page.relative_to(html)} loads an external resource: {tag}")
    # MathJax is served from _static/mathjax (sphinx-mathjax-offline) ...
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    notation = (html / "book" / "notation.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-chtml.js' in notation
    # ... and the ipywidgets scripts that pages with widgets load (MyST-NB prefixes the
    # configured paths with _static/) exist in the site.
    scripts = config["sphinx"]["config"]["nb_ipywidgets_js"]
    assert scripts, "nb_ipywidgets_js is empty"
    for src in scripts:
        assert "://" not in src, f"nb_ipywidgets_js loads {src} from the network"
        assert (html / "_static" / src).resolve().is_file(), f"{src} is not in the built site"


def test_launch_buttons_open_the_launch_copies(built_book, tmp_path_factory):
    """Every notebook page's Colab and Binder buttons open an existing launch copy, on the
    branch and repository that _config.yml names (the copies are written here with the
    command the publishing workflow runs)."""
    from html import unescape
    from urllib.parse import parse_qs, unquote, urlparse

    _, _, html, config, _ = built_book
    out = tmp_path_factory.mktemp("launch")
    proc = subprocess.run([sys.executable, "-m", "kpedu.editions", "launch", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    org_repo = urlparse(config["repository"]["url"]).path.strip("/")
    branch = config["repository"]["branch"]
    notebooks = [e for e in toc_entries(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
                 if (ROOT / e).with_suffix(".ipynb").is_file()]
    assert notebooks
    for entry in notebooks:
        page = (html / Path(entry).with_suffix(".html")).read_text(encoding="utf-8")
        links = [unescape(h) for h in re.findall(r'href="([^"]+)"', page)]
        colab = [h for h in links if h.startswith(config["launch_buttons"]["colab_url"])]
        binder = [h for h in links if h.startswith(config["launch_buttons"]["binderhub_url"])]
        assert len(colab) == 1 and len(binder) == 1, f"{entry}: launch links {colab + binder}"
        m = re.fullmatch(rf"{re.escape(config['launch_buttons']['colab_url'])}/github/{re.escape(org_repo)}"
                         rf"/blob/{re.escape(branch)}/(.+)", colab[0])
        assert m, f"{entry}: Colab opens {colab[0]}"
        b = urlparse(binder[0])
        assert b.path == f"/v2/gh/{org_repo}/{branch}", f"{entry}: Binder opens {binder[0]}"
        binder_path = unquote(parse_qs(b.query)["urlpath"][0]).split("/tree/", 1)[1]
        for target in (unquote(m.group(1)), binder_path):
            assert target == Path(entry).with_suffix(".ipynb").as_posix(), (entry, target)
            assert (out / target).is_file(), f"{entry}: no launch copy at {target}"


# --------------------------------------------------------- one bad notebook, every page
def _notebook(*sources: str) -> dict:
    return {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Title"}] + [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
        for s in sources],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}


def _mini_book(root: Path) -> None:
    (root / "_config.yml").write_text(yaml.safe_dump({
        "title": "mini", "only_build_toc_files": True,
        "execute": {"execute_notebooks": "cache", "timeout": 120},
        "sphinx": {"config": {"nb_execution_raise_on_error": True}}}), encoding="utf-8")
    (root / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "intro",
        "chapters": [{"file": "bad"}, {"file": "good"}]}), encoding="utf-8")
    (root / "intro.md").write_text("# Intro\n\nA two-notebook book.\n", encoding="utf-8")
    (root / "bad.ipynb").write_text(json.dumps(_notebook(
        "x = 1\nprint('before the failure')", "answer = 41\nassert answer == 42, 'the answer is wrong'",
        "print('never reached')")), encoding="utf-8")
    (root / "good.ipynb").write_text(json.dumps(_notebook("print('good notebook ran', 6 * 7)")), encoding="utf-8")


def test_a_reader_build_survives_one_bad_notebook(tmp_path):
    """Even with `nb_execution_raise_on_error: true` in the book's configuration (a plain
    `jupyter-book build` would stop there), `.ci/bookbuild.py` writes every page, names
    the failed notebook and its failing cell at the end, and exits non-zero."""
    book = tmp_path / "mini"
    book.mkdir()
    _mini_book(book)
    proc = subprocess.run([sys.executable, str(ROOT / ".ci" / "bookbuild.py"), "--root", str(book)],
                          capture_output=True, text=True, env=_env("ci"), timeout=600, stdin=subprocess.DEVNULL)
    output = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode != 0, "a failed notebook must fail the build"
    html = book / "_build" / "html"
    for page in ("intro", "bad", "good"):
        assert (html / f"{page}.html").is_file(), f"{page}.html was not written:\n{_tail(output)}"
    assert "good notebook ran 42" in (html / "good.html").read_text(encoding="utf-8")
    tail = output[output.rindex("[book] notebooks"):]
    assert "FAILED: bad.ipynb, cell 3 (code cell 2): answer = 41" in tail, tail
    assert "AssertionError: the answer is wrong" in tail
    assert "1 notebook(s) failed" in tail
    if _load_bookbuild().default_jobs() > 1:
        # both notebooks ran side by side before jupyter-book, which took the good one from the cache
        # and ran the bad one again to report it
        assert "[book] executing 2 notebook(s), 2 at a time" in output, _tail(output)
        assert re.search(r"good\.ipynb: Using cached notebook", output), _tail(output)
        assert re.search(r"bad\.ipynb: Executing notebook", output), _tail(output)
    report = json.loads((book / "_build" / "book-report.json").read_text(encoding="utf-8"))
    assert [(r["notebook"], r["status"]) for r in report["notebooks"]] == [("bad.ipynb", "FAILED"),
                                                                           ("good.ipynb", "executed")]
    # a second build serves the good notebook from the cache and still names the bad one
    again = subprocess.run([sys.executable, str(ROOT / ".ci" / "bookbuild.py"), "--root", str(book)],
                           capture_output=True, text=True, env=_env("ci"), timeout=600, stdin=subprocess.DEVNULL)
    assert again.returncode != 0
    report = json.loads((book / "_build" / "book-report.json").read_text(encoding="utf-8"))
    assert [(r["notebook"], r["status"]) for r in report["notebooks"]] == [("bad.ipynb", "FAILED"),
                                                                           ("good.ipynb", "cached")]


def test_failing_cell_is_found_from_the_traceback(tmp_path):
    bb = _load_bookbuild()
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps(_notebook("a = 1", "for i in range(3):\n    pass\nraise ValueError('boom')")))
    tb = ("An error occurred while executing the following cell:\n------------------\n"
          "for i in range(3):\n    pass\nraise ValueError('boom')\n------------------\n\n"
          "\x1b[0;31mValueError\x1b[0m: boom\n")
    assert bb.failing_cell(nb, tb) == "cell 3 (code cell 2): for i in range(3):"
    assert bb.error_line(tb) == "ValueError: boom"
    assert "unidentified" in bb.failing_cell(nb, "Kernel died")


def test_cache_key_follows_kpedu(tmp_path):
    bb = _load_bookbuild()
    (tmp_path / "kpedu").mkdir()
    (tmp_path / "kpedu" / "a.py").write_text("x = 1\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    k1 = bb.code_key(tmp_path)
    assert bb.code_key(tmp_path) == k1
    (tmp_path / "kpedu" / "a.py").write_text("x = 2\n")
    assert bb.code_key(tmp_path) != k1
