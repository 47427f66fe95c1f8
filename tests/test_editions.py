"""Launch copies (kpedu.editions) and the setup cell that installs kpedu on Colab.

- Every notebook's launch copy is written by `python -m kpedu.editions launch OUT/`, has
  no MyST-only syntax left, keeps every code cell of its source (the setup cell pins the
  version in pyproject.toml) and sits at its source's path, next to what Binder needs.
- The converter's pieces (citations, cross-references, admonitions, bibliographies) give
  the expected Markdown, and the MyST detector finds each kind of MyST syntax.
- The setup cell, run as Colab and plain Jupyter would run it: installs nothing where
  kpedu is present, says how to install kpedu where it is missing, and on a Colab without
  network fails with one clear message.
The launch buttons of the built book are checked against these copies in
tests/test_book_build.py.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpedu import editions

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO = CONFIG["repository"]["url"]
SOURCES = sorted((ROOT / "book").rglob("*.ipynb"))
SOURCES = [p for p in SOURCES if ".ipynb_checkpoints" not in p.parts]


@pytest.fixture(scope="module")
def launch_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("launch")
    proc = subprocess.run([sys.executable, "-m", "kpedu.editions", "launch", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(SOURCES)} launch copies" in proc.stdout
    return out


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


# ------------------------------------------------------------------- the launch copies
@pytest.mark.parametrize("source", SOURCES, ids=[p.relative_to(ROOT / "book").as_posix() for p in SOURCES])
def test_launch_copy_reads_cleanly_outside_jupyter_book(launch_dir, source):
    copy = launch_dir / source.relative_to(ROOT)
    assert copy.is_file(), f"no launch copy of {source.relative_to(ROOT)}"
    leftovers = {i: editions.myst_leftovers(_src(c)) for i, c in enumerate(_cells(copy))
                 if c["cell_type"] == "markdown"}
    leftovers = {i: found for i, found in leftovers.items() if found}
    assert not leftovers, f"MyST-only syntax in {copy.name}: {leftovers}"
    # the sources do use MyST (otherwise this test checks nothing) ...
    # ... and every code cell is kept, in order; only the setup cell changes, to pin the release
    src_cells, copy_cells = _cells(source), _cells(copy)
    assert [c["cell_type"] for c in src_cells] == [c["cell_type"] for c in copy_cells]
    version = editions.project_version(ROOT)
    for s, c in zip(src_cells, copy_cells):
        if s["cell_type"] != "code":
            continue
        if editions.is_install_cell(s):
            assert _src(c) == editions.install_cell(version, REPO)
            assert f"KPEDU = {version!r}" in _src(c)
        else:
            assert _src(c) == _src(s)
        tags = set(s.get("metadata", {}).get("tags", []))
        if tags & {"hide-input", "hide-cell", "remove-cell"}:  # collapsed, still run
            assert c["metadata"]["jupyter"]["source_hidden"] is True and c["metadata"]["cellView"] == "form"


def test_the_sources_use_myst_that_the_copies_rewrite():
    found = [x for p in SOURCES for c in _cells(p) if c["cell_type"] == "markdown"
             for x in editions.myst_leftovers(_src(c))]
    kinds = {x.split(":")[0] for x in found}
    assert {"role", "directive"} <= kinds and len(found) > 100, kinds


def test_launch_folder_builds_on_binder_alone(launch_dir):
    for path in ("binder/requirements.txt", "binder/runtime.txt", "binder/postBuild", "pyproject.toml",
                 "README.md", "kpedu/__init__.py", "kpedu/editions.py"):
        assert (launch_dir / path).is_file(), path
    assert os.access(launch_dir / "binder" / "postBuild", os.X_OK)
    assert list((launch_dir / "kpedu" / "checkpoints").glob("*.pt")), "the committed checkpoints travel with kpedu"
    assert not list(launch_dir.rglob("__pycache__"))
    assert editions.project_version(launch_dir) == editions.project_version(ROOT)


def test_launch_refuses_to_write_over_the_sources(tmp_path):
    for bad in (ROOT, ROOT / "book", ROOT / "kpedu" / "x"):
        with pytest.raises(ValueError, match="refusing"):
            editions.launch(bad, ROOT)


def test_launch_leaves_a_foreign_folder_alone(tmp_path, launch_dir):
    (tmp_path / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "kpedu.editions", "launch", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"], "nothing was written"
    assert (launch_dir / ".kpedu-edition").is_file(), "an earlier launch folder is marked and may be rewritten"
    proc = subprocess.run([sys.executable, "-m", "kpedu.editions", "nonsense", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_every_source_has_the_one_setup_cell():
    """The setup cell is generated (editions.install_cell); sources leave the version open."""
    expected = editions.install_cell(None, REPO)
    for p in SOURCES:
        first = next(c for c in _cells(p) if c["cell_type"] == "code")
        assert _src(first) == expected, f"{p.relative_to(ROOT)}: the first code cell is not editions.install_cell(None)"
        assert "remove-cell" in first["metadata"].get("tags", [])


def test_version_is_written_once():
    import kpedu

    version = editions.project_version(ROOT)
    assert kpedu.__version__ == version, "reinstall kpedu (pip install -e .) after changing pyproject.toml"
    hits = [p for p in [*ROOT.joinpath("kpedu").rglob("*.py"), *SOURCES, ROOT / "binder" / "requirements.txt"]
            if re.search(rf"['\"=]{re.escape(version)}['\"]", p.read_text(encoding="utf-8"))]
    assert not hits, f"the version is repeated in {hits}"


# ------------------------------------------------------------------ converter pieces
BIB = editions.read_bib(ROOT / "book" / "references.bib")


def test_citations_in_author_year_form():
    link = "https://x.invalid/references.html"
    assert editions.cite_text(["Newell2016"], BIB, "p", link) == f"([Newell et al., 2016]({link}))"
    assert editions.cite_text(["Newell2016", "Lowe2004"], BIB, "p", link) == \
        f"([Newell et al., 2016; Lowe, 2004]({link}))"
    assert editions.cite_text(["Cao2017"], BIB, "t", link) == f"[Cao et al. (2017)]({link})"
    two = {"A": {"author": "Bookstein, Fred and {Deng}, Jia", "year": "1989"}}
    assert editions.cite_text(["A"], two, "p", link) == f"([Bookstein and Deng, 1989]({link}))"
    with pytest.raises(KeyError, match="Nobody1999"):
        editions.cite_text(["Nobody1999"], BIB, "p", link)


def test_bib_reader_handles_nested_braces():
    e = BIB["Cao2019"]
    assert e["type"] == "article" and e["volume"] == "43" and re.fullmatch(r"\d{4}", e["year"])
    assert "{OpenPose}" in e["title"] and editions._plain(e["title"]).startswith("OpenPose: Realtime")
    assert editions._plain(r"Doll{\'a}r, Ne{\v{s}}i\'c, Hirschm\"uller -- x") == "Dollár, Nešić, Hirschmüller \u2013 x"
    assert "Dollár, P." in editions._reference(BIB["Lin2014"])
    assert len(BIB) == len(re.findall(r"^@\w+\{", (ROOT / "book" / "references.bib").read_text(), re.M))


def _convert(text: str, tmp_path: Path) -> str:
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "other.md").write_text("# The other page\n")
    (tmp_path / "book" / "references.md").write_text("# References\n")
    conv = editions._Converter(tmp_path, "https://site.invalid/", BIB)
    return conv.markdown(text, tmp_path / "book" / "here.ipynb", [])


def test_cross_references_become_links(tmp_path):
    assert _convert("see {doc}`the other page <other>`.", tmp_path) == \
        "see [the other page](https://site.invalid/book/other.html)."
    assert _convert("see {doc}`other`.", tmp_path) == "see [The other page](https://site.invalid/book/other.html)."
    with pytest.raises(FileNotFoundError, match="missing"):
        _convert("{doc}`missing`", tmp_path)


def test_admonitions_and_bibliographies(tmp_path):
    out = _convert("::::{admonition} Answer\n:class: dropdown\nIt is $x$ {cite}`Lowe2004`.\n::::\n", tmp_path)
    assert out.startswith("<details>\n<summary><b>Answer</b>") and "</details>" in out
    assert "$x$ ([Lowe, 2004](https://site.invalid/book/references.html))" in out
    note = _convert("```{note}\nTwo\nlines\n```", tmp_path)
    assert note == "> **Note**\n>\n> Two\n> lines"
    bib = _convert("{cite}`Lowe2004` then\n\n```{bibliography}\n:filter: docname in docnames\n```", tmp_path)
    assert "- Lowe, D. G. (2004). *Distinctive Image Features from Scale-Invariant Keypoints*." in bib
    assert bib.count("\n- ") == 1
    assert not editions.myst_leftovers(out + note + bib)


@pytest.mark.parametrize("text, kind", [
    ("see {doc}`x`", "role"), ("{cite:p}`A`", "role"), ("{math}`x^2`", "role"),
    ("```{note}\nhi\n```", "directive"), (":::{tip}\nhi\n:::", "directive"),
    ("(my-label)=\n# Title", "target"), ("% a comment", "comment"), ("+++", "block break"),
    ("$$\nx\n$$ (eq-1)", "equation label"), ("{{ value }}", "substitution"),
])
def test_myst_detector_finds_each_kind(text, kind):
    assert any(x.startswith(kind) for x in editions.myst_leftovers(text)), editions.myst_leftovers(text)


def test_myst_detector_accepts_plain_markdown():
    plain = ("# Title\n\nSee [a page](https://x.invalid/a.html), `code`, $x^2$ and\n\n$$\ny = x\n$$\n\n"
             "```python\nprint(1)\n```\n\n<details>\n<summary>Answer</summary>\n\ntext\n\n</details>\n> **Note**\n")
    assert editions.myst_leftovers(plain) == []


# -------------------------------------------------------------- the setup cell, run
def _run_cell(tmp_path: Path, version: str | None, colab: bool, hide_kpedu: bool, source: str | None = None):
    """Run the setup cell in a fresh interpreter, as Colab (a google.colab module) or plain Jupyter."""
    prelude = ["import sys, types"]
    if colab:
        prelude += ["sys.modules['google'] = types.ModuleType('google')",
                    "sys.modules['google.colab'] = types.ModuleType('google.colab')"]
    if hide_kpedu:  # a kernel without kpedu: drop the entries through which it is importable
        prelude += ["import importlib.util",
                    "_real = importlib.util.find_spec",
                    "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'kpedu' else _real(name, *a)"]
    code = "\n".join(prelude) + "\n" + editions.install_cell(version, REPO)
    env = {k: v for k, v in os.environ.items() if k != "KPEDU_INSTALL_SOURCE"}
    if source:
        env["KPEDU_INSTALL_SOURCE"] = source
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=180)


def test_setup_cell_is_quiet_where_kpedu_is_installed(tmp_path):
    import kpedu

    for colab, version in ((False, None), (False, "9.9.9"), (True, kpedu.__version__)):
        proc = _run_cell(tmp_path, version, colab=colab, hide_kpedu=False)
        assert proc.returncode == 0 and proc.stdout == "", (colab, version, proc.stdout, proc.stderr)


def test_setup_cell_without_kpedu_says_how_to_install(tmp_path):
    proc = _run_cell(tmp_path, "0.1.0", colab=False, hide_kpedu=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()
    assert any(line.startswith("ModuleNotFoundError: This notebook needs kpedu") for line in last)
    assert f'pip install "kpedu @ git+{REPO}@v0.1.0"' in proc.stderr
    assert "restart the kernel" in proc.stderr


def test_setup_cell_on_colab_without_network_fails_clearly(tmp_path):
    """pip cannot reach the (unreachable) source: one RuntimeError that says what to do, and nothing installed."""
    unreachable = "http://127.0.0.1:9/kpedu-0.1.0-py3-none-any.whl"
    proc = _run_cell(tmp_path, "0.1.0", colab=True, hide_kpedu=True, source=unreachable)
    assert proc.returncode != 0
    assert "installing kpedu 0.1.0" in proc.stdout
    assert f"RuntimeError: Could not install kpedu from {unreachable}" in proc.stderr
    assert "no internet access" in proc.stderr and "run this cell" in proc.stderr
    import kpedu

    assert Path(kpedu.__file__).resolve().is_relative_to(ROOT), "the test environment's kpedu is untouched"
