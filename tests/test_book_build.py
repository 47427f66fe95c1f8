"""Build the book the way CI does, with warnings as errors, and check the result.

Notebooks are not executed here: nbval runs every one of them earlier in the same
pytest session (`bash .ci/test`), so this build uses a temporary copy of _config.yml
with `execute_notebooks: off` and checks what execution does not: the table of
contents, cross-references and citations (`-n`), MyST syntax, and that the site works
offline (MathJax and the widget scripts are local files of the site).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_book_structure import toc_entries

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """Build into a temporary folder; return (exit code, output, html folder, config)."""
    tmp = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config_path = tmp / "_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
        "build", str(ROOT),
        "--path-output", str(tmp),
        "--config", str(config_path),
        "-W", "-n", "--keep-going",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    output = ANSI.sub("", proc.stdout + proc.stderr)
    return proc.returncode, output, tmp / "_build" / "html", config


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def test_build_succeeds_without_warnings(built_book):
    rc, output, _, _ = built_book
    warnings = [line for line in output.splitlines() if re.search(r"\bWARNING\b", line)]
    assert rc == 0, f"jupyter-book build exited {rc}:\n{_tail(output)}"
    assert not warnings, "the build printed warnings:\n" + "\n".join(warnings)


def test_every_toc_page_has_html(built_book):
    rc, output, html, _ = built_book
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    missing = [e for e in toc_entries(toc)
               if not (html / Path(e).with_suffix(".html")).is_file()]
    assert not missing, f"no HTML page for {missing} (build exit {rc}):\n{_tail(output)}"


def test_site_loads_no_external_scripts(built_book):
    """Offline classrooms: MathJax and the widget manager come from the site itself."""
    _, _, html, config = built_book
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
