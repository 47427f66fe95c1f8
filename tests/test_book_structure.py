"""Structure of the book: table of contents, committed notebooks, kpedu references.

Checks, each on every notebook under book/:
- committed without outputs and without execution counts (the build executes them);
- the first code cell installs kpedu only on Colab (an ``if`` guarded by ``google.colab``);
- the notebook calls ``kpedu.runtime.setup`` within its first code cells;
- every ``kpedu.x.y`` attribute chain and ``from kpedu.x import y`` it uses exists.
And on the book: the pages listed in _toc.yml are exactly the .md/.ipynb files under
book/ (book/_vendor aside), and every entry exists.

Each checker takes a notebook as a dict and returns a list of problems; the tests at
the bottom run the checkers on synthetic good and bad notebooks, so a checker that
silently accepts everything fails too.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SKIP_PARTS = {"_build", ".ipynb_checkpoints", "_vendor"}
SETUP_WITHIN = 3  # kpedu.runtime.setup must be called in one of the first code cells


# --------------------------------------------------------------------------- files
def book_files(suffixes: tuple[str, ...] = (".md", ".ipynb")) -> list[Path]:
    """Page files under book/, skipping build outputs, checkpoints and vendored assets."""
    return sorted(
        p
        for p in BOOK.rglob("*")
        if p.suffix in suffixes and p.is_file() and not SKIP_PARTS & set(p.relative_to(BOOK).parts)
    )


def notebooks() -> list[Path]:
    return book_files((".ipynb",))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[str]:
    return [_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


# ------------------------------------------------------------------- table of contents
def toc_entries(toc: dict) -> list[str]:
    """Every ``file`` entry (and the root) of a jb-book/jb-article _toc.yml, in order."""
    entries = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "glob" in node or "url" in node:
                raise AssertionError(f"_toc.yml: use explicit `file:` entries, not {node}")
            if "file" in node:
                entries.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return entries


def resolve_toc_entry(entry: str, root: Path = ROOT) -> Path | None:
    """The file a toc entry names (with or without extension); None when missing.

    An entry without extension must match exactly one of .md/.ipynb."""
    path = root / entry
    if path.suffix in (".md", ".ipynb"):
        return path if path.is_file() else None
    found = [p for p in (path.with_suffix(".md"), path.with_suffix(".ipynb")) if p.is_file()]
    if len(found) > 1:
        raise AssertionError(f"_toc.yml entry {entry!r} is ambiguous: {found}")
    return found[0] if found else None


def toc_problems(toc: dict, pages: list[Path], root: Path = ROOT) -> list[str]:
    """Compare the toc with the page files; return a list of human-readable problems."""
    problems = []
    entries = toc_entries(toc)
    seen = set()
    for e in entries:
        if e in seen:
            problems.append(f"_toc.yml lists {e!r} twice")
        seen.add(e)
    listed = set()
    for e in entries:
        p = resolve_toc_entry(e, root)
        if p is None:
            problems.append(f"_toc.yml lists {e!r} but no {e}.md or {e}.ipynb exists")
        else:
            listed.add(p.resolve())
    for p in pages:
        if p.resolve() not in listed:
            problems.append(
                f"{p.relative_to(root)} is not listed in _toc.yml (add it, or remove the file)"
            )
    return problems


# ------------------------------------------------------------------------ code parsing
_MAGIC = re.compile(r"^(\s*)(%%?|!)(.*)$")
_TIMING = re.compile(r"^(\s*)%(?:time|timeit)\s+(?:-\S+\s+)*(.*)$")  # %time expr -> expr
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")


def parse_cell(src: str) -> ast.Module | None:
    """Parse a code cell as Python (raises SyntaxError when it is not).

    IPython line magics and shell escapes become calls ``__magic__("...")`` (keeping
    indentation), except ``%time``/``%timeit`` whose statement is kept as code. A cell
    magic gives None, except the timing/capture ones whose body is Python."""
    lines = src.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if not lines[0].split()[0] in _PYTHON_CELL_MAGICS:
            return None
        lines = lines[1:]
    out = []
    for line in lines:
        if m := _TIMING.match(line):
            out.append(m.group(1) + m.group(2))
        elif m := _MAGIC.match(line):
            out.append(f"{m.group(1)}__magic__({(m.group(2) + m.group(3))!r})")
        else:
            out.append(line)
    return ast.parse("\n".join(out))


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ['a', 'b', 'c']; None for anything but a pure name/attribute chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def kpedu_references(nb: dict) -> list[str]:
    """Dotted names under kpedu that the notebook's code uses (imports and attribute
    chains rooted at a name bound to kpedu or one of its submodules or members)."""
    refs: list[str] = []
    alias: dict[str, str] = {}  # local name -> dotted kpedu name
    trees = []
    for src in code_cells(nb):
        try:
            tree = parse_cell(src)
        except SyntaxError:  # reported by reference_problems
            continue
        if tree is not None:
            trees.append(tree)
    for tree in trees:  # imports first: a name may be imported in an earlier cell
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "kpedu" or a.name.startswith("kpedu."):
                        refs.append(a.name)
                        if a.asname:
                            alias[a.asname] = a.name
                        else:
                            alias["kpedu"] = "kpedu"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "kpedu" or node.module.startswith("kpedu."):
                    for a in node.names:
                        if a.name == "*":
                            refs.append(node.module)
                            continue
                        refs.append(f"{node.module}.{a.name}")
                        alias[a.asname or a.name] = f"{node.module}.{a.name}"
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                chain = _chain(node)
                if chain and chain[0] in alias:
                    refs.append(".".join([alias[chain[0]], *chain[1:]]))
    # keep only maximal chains (a.b.c implies a.b) and drop duplicates, keep order
    uniq = list(dict.fromkeys(refs))
    return [r for r in uniq if not any(o != r and o.startswith(r + ".") for o in uniq)]


def resolve_kpedu(name: str) -> str | None:
    """Import/resolve a dotted kpedu name; return None if it exists, else the reason.

    Modules are imported as needed; on a class, one more attribute is looked up
    (methods, class attributes, dataclass fields); past that the chain is not followed
    (it is about values, not about kpedu's API)."""
    parts = name.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except Exception as e:  # pragma: no cover - kpedu itself must import
        return f"import {parts[0]} failed: {e!r}"
    path = parts[0]
    for attr in parts[1:]:
        if inspect.ismodule(obj):
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
            else:
                try:
                    obj = importlib.import_module(f"{path}.{attr}")
                except ModuleNotFoundError as e:
                    if e.name and (e.name == f"{path}.{attr}"):
                        return f"{path} has no attribute or submodule {attr!r}"
                    return f"import {path}.{attr} failed: {e!r}"
                except Exception as e:
                    return f"import {path}.{attr} failed: {e!r}"
        elif inspect.isclass(obj):
            fields = getattr(obj, "__dataclass_fields__", {})
            annotations = getattr(obj, "__annotations__", {})
            if not (hasattr(obj, attr) or attr in fields or attr in annotations):
                return f"{path} has no attribute {attr!r}"
            return None
        else:
            return None
        path = f"{path}.{attr}"
    return None


# --------------------------------------------------------------------------- checkers
def output_problems(nb: dict) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i} has outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has execution_count={cell['execution_count']}")
    return problems


_RUNNERS = {"run", "call", "check_call", "check_output", "Popen", "system", "getoutput", "run_line_magic",
            "run_cell_magic", "main", "__magic__"}


def _is_install(node: ast.AST) -> bool:
    """A statement that runs pip install: ``%pip``/``!pip`` magics, subprocess, os.system."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if func not in _RUNNERS:  # a message that tells the reader to pip install is not an install
        return False
    text = ast.unparse(node)
    return bool(re.search(r"\bpip\b", text) and re.search(r"\binstall\b", text))


def colab_guard_problems(nb: dict) -> list[str]:
    """The first code cell must install kpedu, and only inside ``if <colab test>:``."""
    cells = code_cells(nb)
    if not cells:
        return ["notebook has no code cell"]
    src = cells[0]
    if "google.colab" not in src:
        return ["first code cell does not test for Colab (`google.colab`)"]
    try:
        tree = parse_cell(src)
    except SyntaxError as e:
        return [f"first code cell is not valid Python: {e}"]
    if tree is None:
        return ["first code cell is a cell magic; it must be Python with a Colab guard"]
    # names assigned from a colab test, e.g. IN_COLAB = "google.colab" in sys.modules
    colab_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and "colab" in ast.unparse(node.value).lower():
            colab_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.Try) and "google.colab" in ast.unparse(node):
            # try: import google.colab; IN_COLAB = True  except ImportError: IN_COLAB = False
            for stmt in node.body:
                if isinstance(stmt, ast.Assign):
                    colab_names |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}

    def guarded(test: ast.AST) -> bool:
        """True when the body of `if test:` runs on Colab only."""
        negated = (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)) or (
            isinstance(test, ast.Compare) and any(isinstance(op, ast.NotIn) for op in test.ops)
        )
        if negated:  # `if not on_colab:` / `if "google.colab" not in ...:` is the other branch
            return False
        names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
        return "google.colab" in ast.unparse(test) or bool(names & colab_names)

    installs, unguarded = 0, 0

    def visit(node: ast.AST, inside: bool) -> None:
        nonlocal installs, unguarded
        if isinstance(node, ast.If):
            body_inside = inside or guarded(node.test)
            for child in node.body:
                visit(child, body_inside)
            for child in node.orelse:
                visit(child, inside)
            return
        if isinstance(node, ast.expr) and _is_install(node):
            installs += 1
            unguarded += not inside
            return
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    if installs == 0:
        return ["first code cell installs nothing (expected `pip install` of kpedu under a Colab guard)"]
    if unguarded:
        return ["first code cell runs `pip install` outside the `if <on Colab>:` block"]
    if "kpedu" not in src and "kp-book" not in src:
        return ["first code cell installs something, but not kpedu (the kp-book repository)"]
    return []


def setup_problems(nb: dict, within: int = SETUP_WITHIN) -> list[str]:
    """One of the first ``within`` code cells calls kpedu.runtime.setup."""
    target = "kpedu.runtime.setup"
    alias: dict[str, str] = {}
    for src in code_cells(nb)[:within]:
        try:
            tree = parse_cell(src)
        except SyntaxError:
            continue
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:  # import kpedu.runtime as rt -> rt
                        alias[a.asname] = a.name
                    else:  # import kpedu.runtime -> binds kpedu
                        top = a.name.split(".")[0]
                        alias[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    alias[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                chain = _chain(node.func)
                if chain and chain[0] in alias:
                    if ".".join([alias[chain[0]], *chain[1:]]) == target:
                        return []
    return [f"none of the first {within} code cells calls {target}(...)"]


def reference_problems(nb: dict) -> list[str]:
    problems = []
    for i, src in enumerate(code_cells(nb)):
        try:
            parse_cell(src)
        except SyntaxError as e:
            problems.append(f"code cell {i} is not valid Python: {e}")
    for ref in kpedu_references(nb):
        why = resolve_kpedu(ref)
        if why:
            problems.append(f"uses {ref}: {why}")
    return problems


# ------------------------------------------------------------------------ the tests
NOTEBOOKS = notebooks()
NB_IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def test_toc_matches_book_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    assert toc.get("format") == "jb-book", "_toc.yml must use format: jb-book"
    problems = toc_problems(toc, book_files())
    assert not problems, "table of contents and book/ disagree:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_committed_without_outputs(path):
    problems = output_problems(load(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_installs_kpedu_only_on_colab(path):
    problems = colab_guard_problems(load(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_colab_install_uses_the_configured_repository(path):
    """The repository URL lives in _config.yml (repository.url); a git URL in a
    notebook's install cell must name the same repository."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]["url"].rstrip("/")
    first = (code_cells(load(path)) or [""])[0]
    for url in re.findall(r"git\+(https?://[^\s\"'@#]+)", first):
        url = url.rstrip("/").removesuffix(".git")
        assert url == repo, f"{path.relative_to(ROOT)} installs from {url}, _config.yml says {repo}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_calls_runtime_setup(path):
    problems = setup_problems(load(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_kpedu_references_exist(path):
    problems = reference_problems(load(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


# ------------------------------------------------------- the checkers catch mistakes
def _nb(*cells: tuple[str, str], **code_extra) -> dict:
    """A minimal nbformat-4 notebook from (cell_type, source) pairs."""
    out = []
    for kind, src in cells:
        cell = {"cell_type": kind, "metadata": {}, "source": src}
        if kind == "code":
            cell.update({"execution_count": None, "outputs": []})
            cell.update(code_extra)
        out.append(cell)
    return {"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


GOOD_FIRST_CELL = (
    "import sys\n"
    "if 'google.colab' in sys.modules:\n"
    "    %pip install -q 'kpedu @ git+https://example.invalid/kp-book'\n"
)
GOOD = _nb(
    ("markdown", "# A chapter"),
    ("code", GOOD_FIRST_CELL),
    ("code", "import kpedu.runtime\nrun = kpedu.runtime.setup(seed=0)"),
    ("code", "from kpedu.runtime import pick, get_device\nfrom kpedu import runtime as rt\n"
             "n = rt.pick(1, 2)\nrt.Profile.pick\nkpedu.runtime.PROFILES"),
)


def test_checkers_accept_a_good_notebook():
    assert output_problems(GOOD) == []
    assert colab_guard_problems(GOOD) == []
    assert setup_problems(GOOD) == []
    assert reference_problems(GOOD) == []


def test_checkers_accept_other_colab_guard_styles():
    try_style = (
        "try:\n    import google.colab  # noqa: F401\n    IN_COLAB = True\n"
        "except ImportError:\n    IN_COLAB = False\n"
        "if IN_COLAB:\n    !pip install -q git+https://example.invalid/kp-book\n"
    )
    subprocess_style = (
        "import subprocess, sys\nON_COLAB = 'google.colab' in sys.modules\n"
        "if ON_COLAB:\n    subprocess.run([sys.executable, '-m', 'pip', 'install', "
        "'kpedu @ git+https://example.invalid/kp-book'], check=True)\n"
    )
    for src in (try_style, subprocess_style):
        assert colab_guard_problems(_nb(("code", src))) == [], src
    from_import = _nb(("code", GOOD_FIRST_CELL), ("code", "from kpedu.runtime import setup\nsetup()"))
    assert setup_problems(from_import) == []


def test_checkers_reject_outputs_and_execution_counts():
    bad = _nb(("code", "1 + 1"), outputs=[{"output_type": "stream", "name": "stdout", "text": "2"}],
              execution_count=3)
    problems = output_problems(bad)
    assert any("outputs" in p for p in problems) and any("execution_count" in p for p in problems)


@pytest.mark.parametrize(
    "first_cell, expected",
    [
        ("%pip install -q git+https://example.invalid/kp-book", "google.colab"),
        ("import sys\n# google.colab\n%pip install kpedu", "outside"),
        ("import sys\nif 'google.colab' in sys.modules:\n    pass\n!pip install kpedu", "outside"),
        ("import sys\nif 'google.colab' not in sys.modules:\n    %pip install kpedu", "outside"),
        ("import sys\nif 'google.colab' in sys.modules:\n    print('hi')", "installs nothing"),
        ("import sys\nif 'google.colab' in sys.modules:\n    %pip install numpy", "not kpedu"),
        ("import kpedu  # google.colab\nkpedu.runtime.setup()", "installs nothing"),
    ],
)
def test_colab_guard_checker_rejects(first_cell, expected):
    problems = colab_guard_problems(_nb(("code", first_cell)))
    assert problems and expected in problems[0], problems


def test_setup_checker_rejects_missing_or_late_setup():
    no_setup = _nb(("code", GOOD_FIRST_CELL), ("code", "import kpedu.runtime\nkpedu.runtime.pick(1, 2)"))
    assert setup_problems(no_setup)
    other_setup = _nb(("code", GOOD_FIRST_CELL), ("code", "from mylib import setup\nsetup()"))
    assert setup_problems(other_setup)
    late = _nb(("code", GOOD_FIRST_CELL), *[("code", "x = 1")] * SETUP_WITHIN,
               ("code", "import kpedu.runtime\nkpedu.runtime.setup()"))
    assert setup_problems(late)


def test_reference_checker_rejects_missing_names():
    cases = {
        "import kpedu.runtime\nkpedu.runtime.no_such_function(1)": "no_such_function",
        "from kpedu.runtime import no_such_name": "no_such_name",
        "from kpedu import no_such_module": "no_such_module",
        "import kpedu.no_such_module": "no_such_module",
        "import kpedu.runtime as rt\nrt.Profile.no_such_method": "no_such_method",
        "from kpedu import runtime\nruntime.nope": "nope",
        "x = (1": "not valid Python",
    }
    for src, name in cases.items():
        problems = reference_problems(_nb(("code", src)))
        assert problems and any(name in p for p in problems), (src, problems)


def test_reference_parser_handles_magics_and_aliases():
    nb = _nb(("code", "%matplotlib inline\n!ls\nimport kpedu.runtime as rt\nfor i in range(2):\n"
                      "    %time rt.seed_everything(i)\n"), ("code", "%%bash\necho kpedu.nothing"))
    refs = kpedu_references(nb)
    assert "kpedu.runtime.seed_everything" in refs
    assert not any("nothing" in r for r in refs)
    assert reference_problems(nb) == []


def test_toc_checker_reports_missing_and_unlisted(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro")
    (tmp_path / "book" / "orphan.ipynb").write_text("{}")
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": "x", "chapters": [{"file": "book/missing"}]}]}
    problems = toc_problems(toc, [tmp_path / "book" / "intro.md", tmp_path / "book" / "orphan.ipynb"],
                            root=tmp_path)
    assert any("book/missing" in p and "no book/missing.md" in p for p in problems), problems
    assert any("orphan.ipynb is not listed" in p for p in problems), problems
    ok = {"format": "jb-book", "root": "book/intro",
          "parts": [{"caption": "x", "chapters": [{"file": "book/orphan"}]}]}
    assert toc_problems(ok, [tmp_path / "book" / "intro.md", tmp_path / "book" / "orphan.ipynb"],
                        root=tmp_path) == []


# ------------------------------------------------- words a reader cannot follow
# The chapters were planned from study notes that readers never see: prose that points at
# "the note" (or at a closing note of an issue) leaves the reader with nothing to look up.
UNFOLLOWABLE = re.compile(r"(?i)\b(?:the|our|these|this|study)\s+notes?\b|\bnote's\b|\bnotes'|closing note|\bthe notes?\s+(?:says|writes|names)")


def reader_text(path: Path) -> str:
    """The Markdown a reader sees: Markdown cells of a notebook, or a .md page."""
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def unfollowable(text: str) -> list[str]:
    return [text[max(0, m.start() - 40):m.end() + 20].replace("\n", " ") for m in UNFOLLOWABLE.finditer(text)]


@pytest.mark.parametrize("path", sorted([*NOTEBOOKS, *(ROOT / "book").rglob("*.md")]),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_prose_points_only_at_what_readers_have(path):
    hits = unfollowable(reader_text(path))
    assert not hits, f"{path.relative_to(ROOT)} points at a note the reader does not have: {hits}"


@pytest.mark.parametrize("text", ["(eq. 4 of the note)", "the drawback the note names", "The note's training pair",
                                  "in the chapter's closing note", "as the study notes say", "These notes show"])
def test_unfollowable_words_are_caught(text):
    assert unfollowable(text)


def test_ordinary_uses_of_note_pass():
    assert not unfollowable("as the paper itself notes: a warp; note that x > 0; a footnote; notebook")


# ------------------------------------------------------------------ the glossary
def glossary_rows() -> list[list[str]]:
    rows = []
    for line in (ROOT / "book" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("English", "---"):
            rows.append(cells)
    return rows


def test_glossary_is_bilingual_complete_and_linked():
    toc = toc_entries(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
    assert "book/glossary" in toc
    rows = glossary_rows()
    assert len(rows) >= 60, f"{len(rows)} terms"
    english = [r[0].lower() for r in rows]
    assert len(set(english)) == len(english), "a term is listed twice"
    for en, zh, definition, where in rows:
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{en}: no Chinese term"
        assert len(definition.split()) >= 4, f"{en}: no definition"
        m = re.fullmatch(r"\{doc\}`(?:[^<`]*<)?([^>`]+)>?`", where)
        assert m, f"{en}: the last column must link the introducing section ({where!r})"
        target = ROOT / "book" / m.group(1)
        assert target.with_suffix(".ipynb").is_file() or target.with_suffix(".md").is_file(), f"{en}: {m.group(1)}"
    for term in ("keypoint", "heatmap", "part affinity field (paf)", "soft-argmax", "equivariance",
                 "thin-plate spline (tps)", "bipartite matching", "mean matching accuracy (mma)"):
        assert term in english, term


@pytest.mark.parametrize("index", sorted((ROOT / "book").glob("ch*/index.md")), ids=lambda p: p.parent.name)
def test_every_chapter_links_the_glossary(index):
    assert "{doc}`glossary <../glossary>`" in index.read_text(encoding="utf-8")



@pytest.mark.parametrize("path", sorted((ROOT / "kpedu").rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docstrings_point_only_at_what_readers_have(path):
    """kpedu's docstrings are read through help() and printed source: the same rule as the prose."""
    hits = unfollowable(path.read_text(encoding="utf-8"))
    assert not hits, f"{path.relative_to(ROOT)} points at a note the reader does not have: {hits}"
