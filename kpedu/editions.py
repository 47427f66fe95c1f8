"""Editions of the book's notebooks for the places readers run them.

    python -m kpedu.editions launch OUT/        launch copies for Colab and Binder
    python -m kpedu.editions student OUT/       the student edition (exercises to solve)
    python -m kpedu.editions instructor OUT/    the instructor edition (an nbgrader course)
    python -m kpedu.editions grade NB.ipynb     score one student notebook

The notebooks in ``book/`` are written in MyST, which Jupyter Book renders: ``{doc}`` and
``{cite}`` roles, ``:::{admonition}`` directives, a ``{bibliography}``. Colab and plain
Jupyter show that syntax as raw text. The *launch copies* are the same notebooks with
every MyST construct rewritten into what Jupyter and Colab render:

- ``{doc}`text <target>``` becomes a Markdown link to the rendered page on the book's
  website (``html.baseurl`` in ``_config.yml``); without a text, the target page's title;
- ``{cite}``, ``{cite:p}`` and ``{cite:t}`` become "(Author et al., year)" or "Author et
  al. (year)", linked to the book's bibliography page;
- an admonition with ``:class: dropdown`` becomes an HTML ``<details>`` block (a
  collapsed answer that opens on a click), any other admonition a quoted block with a
  bold title;
- a ``{bibliography}`` directive becomes a Markdown list of the works the notebook cites
  (or of every work, for ``:all:``);
- cells that the book hides (``hide-input``, ``hide-cell``, ``remove-cell`` tags) stay
  in the copy and still run; their code is collapsed (``jupyter.source_hidden`` for
  JupyterLab, ``cellView: form`` for Colab);
- the setup cell pins the kpedu release (``KPEDU = "<version>"``, the version from
  ``pyproject.toml``), so that Colab installs exactly that release from its tag.

``launch OUT/`` writes each copy at the path of its source (``OUT/book/...ipynb``), next
to what Binder needs to build an environment from that folder alone (``binder/``,
``pyproject.toml``, ``README.md`` and the ``kpedu`` package). The book's launch buttons
point at the ``launch`` branch of the repository (``repository.branch`` in
``_config.yml``), which the publishing workflow (``.github/workflows/book.yml``) fills
with this folder on every push to ``main``.

:func:`myst_leftovers` finds any MyST-only syntax that survived; the tests run it on
every launch copy.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
from pathlib import Path

from kpedu.files import copy_file_atomic, copy_tree_atomic
from kpedu.files import write_text_atomic as _write_atomic

__all__ = ["install_cell", "is_install_cell", "launch_notebook", "launch", "myst_leftovers", "read_bib",
           "cite_text", "project_version", "course", "course_notebook", "clear_solution", "grade",
           "prepare_submission", "read_notebook", "exercises_of", "reading_minutes", "EditionError"]

INSTALL_MARKER = "# Setup: on Colab, install kpedu"

# The one setup cell of every notebook. `KPEDU` is None in the sources (the book's own
# environment has kpedu) and the release version in the launch copies.
_INSTALL_TEMPLATE = '''\
# Setup: on Colab, install kpedu (the book's package); elsewhere, check that it is installed.
KPEDU = {version!r}  # the kpedu release this copy was made for (None: the repository's main branch)
import importlib.metadata, importlib.util, os, subprocess, sys

_source = os.environ.get("KPEDU_INSTALL_SOURCE") or (
    "git+{repo}" + (f"@v{{KPEDU}}" if KPEDU else ""))
if "google.colab" in sys.modules:
    _have = importlib.metadata.version("kpedu") if importlib.util.find_spec("kpedu") else None
    if _have is None or (KPEDU and _have != KPEDU):
        print(f"installing kpedu {{KPEDU or '(main branch)'}} ...")
        _pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "20",
                               f"kpedu @ {{_source}}" if "://" in _source else _source],
                              capture_output=True, text=True)
        if _pip.returncode != 0:
            raise RuntimeError(
                f"Could not install kpedu from {{_source}}. This usually means the runtime has no internet "
                "access: check your connection (Runtime > Disconnect and delete runtime, then run this cell "
                "again). pip said:\\n" + "\\n".join((_pip.stdout + _pip.stderr).strip().splitlines()[-5:]))
elif importlib.util.find_spec("kpedu") is None:
    raise ModuleNotFoundError(
        f"This notebook needs kpedu, the kp-book package, which is not installed for {{sys.executable}}. "
        f"Install it with\\n    {{sys.executable}} -m pip install \\"kpedu @ {{_source}}\\"\\n"
        "(or `pip install -e .` in a clone of the repository), then restart the kernel.")'''


def _root() -> Path:
    """The repository root: the folder holding ``_config.yml`` (from the working directory up)."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "_config.yml").is_file() and (folder / "_toc.yml").is_file():
            return folder
    here = Path(__file__).resolve().parents[1]
    if (here / "_config.yml").is_file():
        return here
    raise FileNotFoundError("run this from the kp-book repository (no _config.yml and _toc.yml found "
                            f"in {Path.cwd()} or above)")


def project_version(root: Path | None = None) -> str:
    """The version in ``pyproject.toml``: the one place the release number is written."""
    text = ((root or _root()) / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    if not m:
        raise ValueError("pyproject.toml has no [project] version")
    return m.group(1)


def _config(root: Path) -> dict:
    import yaml  # installed with jupyter-book; only this build tool needs it

    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def install_cell(version: str | None, repo_url: str = "https://github.com/kp-book/kp-book") -> str:
    """The source of the setup cell: installs kpedu ``version`` on Colab (main branch for None);
    elsewhere raises a ModuleNotFoundError that says how to install kpedu when it is missing.

    ``KPEDU_INSTALL_SOURCE`` in the environment replaces the release tag with another source
    (a wheel file, a mirror): the Colab-like test installs a locally built wheel that way."""
    if version is not None and not re.fullmatch(r"[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)", version):
        raise ValueError(f"not a version: {version!r}")
    return _INSTALL_TEMPLATE.format(version=version, repo=repo_url.rstrip("/"))


def is_install_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and "".join(cell.get("source", "")).startswith(INSTALL_MARKER)


# ---------------------------------------------------------------------------------------
# bibliography

def _bib_value(text: str, i: int) -> tuple[str, int]:
    """The field value starting at text[i] (braced, quoted or bare) and the index after it."""
    if text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1:j], j + 1
            j += 1
        raise ValueError("unbalanced braces in the bibliography")
    if text[i] == '"':
        j = text.index('"', i + 1)
        return text[i + 1:j], j + 1
    m = re.match(r"[^,}\s]+", text[i:])
    return m.group(0), i + m.end()


def read_bib(path: Path) -> dict[str, dict[str, str]]:
    """Entries of a BibTeX file: key -> {"type": ..., field: value (braces kept)}."""
    text = Path(path).read_text(encoding="utf-8")
    entries: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", text, re.M):
        fields = {"type": m.group(1).lower()}
        i = m.end()
        while True:
            f = re.compile(r"\s*(\w+)\s*=\s*").match(text, i)
            if not f:
                break
            value, i = _bib_value(text, f.end())
            fields[f.group(1).lower()] = " ".join(value.split())
            i = re.compile(r"\s*,?").match(text, i).end()
        entries[m.group(2)] = fields
    return entries


_ACCENTS = {"'": "\u0301", '"': "\u0308", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "v": "\u030c", "u": "\u0306", "H": "\u030b", "c": "\u0327"}


def _plain(value: str) -> str:
    """A BibTeX value as plain text: accents as Unicode, no braces, en dashes, unescaped specials."""
    import unicodedata

    value = re.sub(r"""\\(['"`^~=.]|[vuHc](?=[\s{]))\s*\{?([A-Za-z])\}?""",
                   lambda m: m.group(2) + _ACCENTS[m.group(1)], value)
    value = unicodedata.normalize("NFC", value)
    value = value.replace("--", "\u2013").replace("\\&", "&").replace("~", "\u00a0")
    return re.sub(r"[{}]", "", value)


def _surnames(entry: dict) -> list[str]:
    names = [n.strip() for n in re.split(r"\s+and\s+", entry.get("author", entry.get("editor", "")))]
    out = []
    for n in names:
        if n == "others":
            out.append("others")
        elif "," in n:
            out.append(_plain(n.split(",")[0]).strip())
        else:
            braced = re.fullmatch(r"\{(.*)\}", n)
            out.append(_plain(braced.group(1)) if braced else _plain(n).split()[-1])
    return out


def _author_label(entry: dict) -> str:
    names = _surnames(entry)
    if len(names) >= 3 or "others" in names:
        return f"{names[0]} et al."
    return " and ".join(names)


def cite_text(keys: list[str], bib: dict, mode: str, link: str) -> str:
    """Author-year text for a citation: mode "p" -> (A et al., 2016; B, 2017), "t" -> A et al. (2016)."""
    missing = [k for k in keys if k not in bib]
    if missing:
        raise KeyError(f"cited but not in the bibliography: {', '.join(missing)}")
    if mode == "t":
        return "; ".join(f"[{_author_label(bib[k])} ({_plain(bib[k].get('year', 'n.d.'))})]({link})" for k in keys)
    inner = "; ".join(f"{_author_label(bib[k])}, {_plain(bib[k].get('year', 'n.d.'))}" for k in keys)
    return f"([{inner}]({link}))"


def _reference(entry: dict) -> str:
    """One bibliography line in Markdown: Authors (year). *Title*. Venue."""
    people = []
    for n in re.split(r"\s+and\s+", entry.get("author", "")):
        if n.strip() == "others":
            people.append("et al.")
        else:
            if "," in n:
                last, first = n.split(",", 1)
            elif re.fullmatch(r"\s*\{[^{}]*\}\s*", n):  # {An Organisation}
                last, first = n, ""
            else:
                *firsts, last = n.split()
                first = " ".join(firsts)
            initials = " ".join(p[0] + "." for p in _plain(first).replace("-", " ").split() if p)
            people.append(f"{_plain(last).strip()}, {initials}".strip(", "))
    authors = ", ".join(people[:-1]) + (", & " if len(people) > 2 else " & ") + people[-1] if len(people) > 1 else people[0]
    venue = entry.get("booktitle") or entry.get("journal") or entry.get("publisher") or entry.get("howpublished", "")
    line = f"{authors} ({_plain(entry.get('year', 'n.d.'))}). *{_plain(entry.get('title', ''))}*."
    if venue:
        line += f" {_plain(venue)}."
    if entry.get("doi"):
        line += f" <https://doi.org/{_plain(entry['doi'])}>"
    elif entry.get("url"):
        line += f" <{_plain(entry['url'])}>"
    return line


# ---------------------------------------------------------------------------------------
# Markdown conversion

_ROLE = re.compile(r"\{(doc|cite|cite:p|cite:t|cite:ps|cite:ts)\}`([^`]*)`")
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})[ \t]*\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.M | re.S)


def _title_of(path: Path) -> str:
    """The first level-one heading of a notebook or Markdown page."""
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                         if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    m = re.search(r"^#\s+(.+?)\s*$", text, re.M)
    return m.group(1) if m else path.stem


class _Converter:
    def __init__(self, root: Path, baseurl: str, bib: dict):
        self.root, self.baseurl, self.bib = root, baseurl.rstrip("/") + "/", bib

    def page_url(self, page: Path) -> str:
        rel = page.relative_to(self.root).with_suffix(".html").as_posix()
        return self.baseurl + rel

    def doc(self, content: str, here: Path) -> str:
        m = re.fullmatch(r"\s*(.*?)\s*<([^>]+)>\s*", content, re.S)
        text, target = (m.group(1), m.group(2)) if m else (None, content.strip())
        base = (self.root / target.lstrip("/")) if target.startswith("/") else (here.parent / target)
        base = Path(os.path.normpath(base))
        found = [p for p in (base.with_suffix(".ipynb"), base.with_suffix(".md"), base) if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{here}: {{doc}} target {target!r} does not exist")
        return f"[{text or _title_of(found[0])}]({self.page_url(found[0])})"

    def markdown(self, text: str, here: Path, cited: list[str]) -> str:
        refs = self.page_url(self.root / "book" / "references.md")

        def role(m: re.Match) -> str:
            name, content = m.group(1), m.group(2)
            if name == "doc":
                return self.doc(content, here)
            keys = [k.strip() for k in content.split(",") if k.strip()]
            cited.extend(k for k in keys if k not in cited)
            return cite_text(keys, self.bib, "t" if name.startswith("cite:t") else "p", refs)

        def directive(m: re.Match) -> str:
            name, arg, body = m.group("name"), m.group("arg").strip(), m.group("body")
            options = dict(re.findall(r"^:([\w-]+):[ \t]*(.*?)\s*$", body, re.M))
            body = re.sub(r"^:[\w-]+:.*\n?", "", body, flags=re.M).strip("\n")
            if name == "bibliography":
                filt = options.get("filter", "docname in docnames")
                named = re.findall(r"""key\s*==\s*["']([^"']+)["']""", filt)
                if "all" in options:
                    keys = list(self.bib)
                elif named or filt.strip() == "docname in docnames":
                    keys = list(cited) + [k for k in named if k not in cited] if "docnames" in filt else named
                else:
                    raise ValueError(f"{here}: bibliography filter {filt!r} is not one the launch copies can follow")
                lines = "\n".join(f"- {_reference(self.bib[k])}" for k in keys)
                return f"{lines}\n\nThe book's full list: [References]({refs})."
            body = self.markdown(body, here, cited)
            title = arg or name.capitalize()
            if name in ("math",):
                return f"$$\n{body}\n$$"
            if "dropdown" in options.get("class", ""):
                return f"<details>\n<summary><b>{title}</b> (click to show)</summary>\n\n{body}\n\n</details>"
            quoted = "\n".join(("> " + line) if line else ">" for line in body.splitlines())
            return f"> **{title}**\n>\n{quoted}"

        for m in _ROLE.finditer(text):  # a bibliography lists what the page cites, before or after it
            if m.group(1).startswith("cite"):
                cited.extend(k.strip() for k in m.group(2).split(",") if k.strip() and k.strip() not in cited)
        text = _FENCE.sub(directive, text)
        text = _ROLE.sub(role, text)
        text = re.sub(r"^\(([\w.-]+)\)=[ \t]*\n", "", text, flags=re.M)  # MyST targets
        return text


def myst_leftovers(text: str) -> list[str]:
    """MyST-only syntax in a Markdown text (roles, directives, targets, comments, block breaks)."""
    found = []
    patterns = {
        "role": r"\{[\w:+-]+\}`[^`]*`",
        "directive": r"^[ \t]*(`{3,}|:{3,})[ \t]*\{[\w:+-]+\}",
        "colon fence": r"^[ \t]*:{3,}[ \t]*\S*",
        "target": r"^\([\w.:-]+\)=[ \t]*$",
        "comment": r"^%",
        "block break": r"^\+\+\+",
        "equation label": r"\$\$[ \t]*\([\w.:-]+\)[ \t]*$",
        "substitution": r"\{\{[^}]*\}\}",
    }
    for what, pattern in patterns.items():
        for m in re.finditer(pattern, text, re.M):
            found.append(f"{what}: {m.group(0).strip()[:60]}")
    return found


def _hide(cell: dict) -> None:
    md = cell.setdefault("metadata", {})
    md.setdefault("jupyter", {})["source_hidden"] = True
    md["cellView"] = "form"


def launch_notebook(path: Path, root: Path | None = None, version: str | None = None,
                    baseurl: str | None = None, bib: dict | None = None) -> dict:
    """The launch copy of one notebook (a notebook dict; the source file is not changed)."""
    root = root or _root()
    config = _config(root)
    version = version or project_version(root)
    baseurl = baseurl or config.get("html", {}).get("baseurl")
    if not baseurl:
        raise ValueError("_config.yml has no html.baseurl: the launch copies link to the rendered pages there")
    if bib is None:
        bib = {}
        for f in config.get("bibtex_bibfiles", []):
            bib.update(read_bib(root / f))
    repo = config.get("repository", {}).get("url", "https://github.com/kp-book/kp-book")
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out = copy.deepcopy(nb)
    conv = _Converter(root, baseurl, bib)
    cited: list[str] = []
    for cell in out["cells"]:
        if cell["cell_type"] == "markdown":
            for m in _ROLE.finditer("".join(cell.get("source", ""))):
                if m.group(1).startswith("cite"):
                    cited.extend(k.strip() for k in m.group(2).split(",") if k.strip() and k.strip() not in cited)
    installs = 0
    for cell in out["cells"]:
        src = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            src = conv.markdown(src, Path(path).resolve(), cited)
        elif is_install_cell(cell):
            src = install_cell(version, repo)
            installs += 1
        if cell["cell_type"] == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            if {"hide-input", "hide-cell", "remove-cell", "remove-input"} & set(tags):
                _hide(cell)
        cell["source"] = src.splitlines(keepends=True)
    if installs != 1:
        raise ValueError(f"{path}: expected one setup cell starting {INSTALL_MARKER!r}, found {installs}")
    out.setdefault("metadata", {})["kpedu_edition"] = {"edition": "launch", "kpedu": version,
                                                       "source": Path(path).resolve().relative_to(root).as_posix()}
    return out


def _toc_notebooks(root: Path) -> list[Path]:
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [root / (f + ".ipynb") for f in files if (root / (f + ".ipynb")).is_file()]


def chapter_notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks of the book's chapters (``book/ch*/``), in reading order: the sections
    that the course editions are made of."""
    root = root or _root()
    return [p for p in _toc_notebooks(root) if p.parent.parent == root / "book" and p.parent.name.startswith("ch")]


LAUNCH_README = """# kp-book launch copies (generated: do not edit)

This branch holds the notebooks of kp-book as Colab and Binder run them, generated from
`main` by `python -m kpedu.editions launch OUT/` (kpedu {version}). MyST cross-references,
citations and admonitions are rewritten as plain Markdown and HTML, and the setup cell
installs kpedu {version}. `student/` holds the student edition (exercises without
solutions, self-checks that report), made by `python -m kpedu.editions student`. Read the
book at {baseurl}; edit it on the `main` branch.
"""


def launch(out: Path, root: Path | None = None) -> list[Path]:
    """Write every notebook's launch copy under ``out`` (same relative paths) with what Binder needs."""
    root = root or _root()
    out = Path(out).resolve()
    sources = [root] + [root / f for f in ("book", "kpedu", "binder")]
    if any(out == s or s in out.parents for s in sources[1:]) or out == root:
        raise ValueError(f"refusing to write launch copies over the sources ({out})")
    marker = out / ".kpedu-edition"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not marker.is_file():
        raise ValueError(f"{out} is not empty and holds no earlier launch copies: choose a new or empty folder "
                         "(nothing was written)")
    version = project_version(root)
    config = _config(root)
    baseurl = config.get("html", {}).get("baseurl", "")
    bib: dict = {}
    for f in config.get("bibtex_bibfiles", []):
        bib.update(read_bib(root / f))
    written = []
    for nb in _toc_notebooks(root):
        copy_ = launch_notebook(nb, root, version, baseurl or None, bib)
        leftovers = [x for c in copy_["cells"] if c["cell_type"] == "markdown"
                     for x in myst_leftovers("".join(c["source"]))]
        if leftovers:
            raise ValueError(f"{nb}: MyST left in the launch copy: {leftovers[:3]}")
        target = out / nb.relative_to(root)
        _write_atomic(target, json.dumps(copy_, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    # Binder builds its environment from the branch alone: binder/, and kpedu to install.
    for folder in ("binder", "kpedu"):
        copy_tree_atomic(root / folder, out / folder,
                         ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "LICENSE", "LICENSE-TEXT.md"):  # the package's metadata and its licences
        if (root / name).is_file():
            copy_file_atomic(root / name, out / name)
    # the student edition beside the launch copies, so that a class can open it on Colab
    if (out / "student").exists():
        shutil.rmtree(out / "student")
    course("student", out / "student", root)
    _write_atomic(out / "README.md", LAUNCH_README.format(version=version, baseurl=baseurl))
    _write_atomic(marker, f"launch {version}\n")
    return written


# ---------------------------------------------------------------------------------------
# course editions: student and instructor (nbgrader's format)

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"  # nbgrader's delimiters
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"      # nbgrader's default code stub
TEXT_STUB = "YOUR ANSWER HERE"                                    # nbgrader's default text stub
EDITIONS = ("launch", "student", "instructor")
PRACTICE_LINES = ('\nos.environ.setdefault("KPEDU_EXERCISES", "practice")  '
                  '# student edition: self-checks report, they never stop "Run all"')
SECTION_TIMES = "book/section-times.json"


class EditionError(ValueError):
    """A bad input to an edition or to the grader; the command line prints it without a traceback."""


def nbgrader_meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer_cell(cell: dict) -> bool:
    """An nbgrader solution cell (code or written answer)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_graded_cell(cell: dict) -> bool:
    """An nbgrader graded cell: an autograded self-check, or a manually graded written answer."""
    return bool(nbgrader_meta(cell).get("grade"))


def clear_solution(cell: dict) -> bool:
    """Replace the solution regions of a cell with nbgrader's stubs (in place), as
    ``nbgrader generate_assignment`` does (its ``ClearSolutions``): code regions become
    ``raise NotImplementedError()``, indented like the ``BEGIN SOLUTION`` line; text regions
    become "YOUR ANSWER HERE"; a solution cell without regions is replaced as a whole.
    Returns whether anything changed."""
    source = "".join(cell.get("source", ""))
    code = cell["cell_type"] == "code"
    stub = (CODE_STUB if code else TEXT_STUB).split("\n")
    lines, out, inside, replaced = source.split("\n"), [], False, False
    for line in lines:
        if BEGIN_SOLUTION in line:
            if inside:
                raise EditionError(f"nested {BEGIN_SOLUTION} in a cell:\n{source}")
            inside = replaced = True
            indent = re.match(r"\s*", line).group(0)
            out.extend(indent + s for s in stub)
        elif END_SOLUTION in line:
            if not inside:
                raise EditionError(f"{END_SOLUTION} without {BEGIN_SOLUTION} in a cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise EditionError(f"no {END_SOLUTION} in a cell:\n{source}")
    if replaced and not is_answer_cell(cell):
        raise EditionError(f"a solution region outside a solution cell:\n{source}")
    if is_answer_cell(cell) and not replaced:
        out = stub
    changed = replaced or is_answer_cell(cell)
    cell["source"] = "\n".join(out).splitlines(keepends=True)
    return changed


def _unhide(cell: dict) -> None:
    md = cell.setdefault("metadata", {})
    md.pop("cellView", None)
    if isinstance(md.get("jupyter"), dict):
        md["jupyter"].pop("source_hidden", None)
        if not md["jupyter"]:
            md.pop("jupyter")


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


def reading_minutes(nb: dict) -> int:
    """An estimate of the reading time of a notebook: 200 words of prose and 10 lines of
    code per minute (a careful reading, not a skim). Code that the book hides (plotting,
    setup, solutions) is not counted."""
    hidden = {"hide-input", "hide-cell", "remove-cell", "remove-input"}
    prose = sum(_words("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = sum(len([ln for ln in "".join(c["source"]).split("\n") if ln.strip()])
               for c in nb["cells"] if c["cell_type"] == "code"
               and not hidden & set(c.get("metadata", {}).get("tags", [])))
    return max(1, round(prose / 200 + code / 10))


def section_times(root: Path | None = None) -> dict:
    """The measured running times of every notebook (``book/section-times.json``, written by
    ``python .ci/section_times.py`` from a book build's report); empty when absent."""
    path = (root or _root()) / SECTION_TIMES
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def exercises_of(nb: dict) -> list[dict]:
    """The graded items of a notebook: ``grade_id``, ``points``, kind (``auto``/``manual``), label."""
    items = []
    for cell in nb["cells"]:
        src = "".join(cell.get("source", ""))
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            auto = cell["cell_type"] == "code" and not meta.get("solution")
            m = re.search(r'exercise\("([^"]+)"\)', src) if auto else None
            items.append({"grade_id": meta.get("grade_id"), "points": float(meta.get("points", 0)),
                          "kind": "auto" if auto else "manual",
                          "label": m.group(1) if m else "written answers"})
    written = [i for i in items if i["kind"] == "manual"]
    if len(written) > 1:
        for n, item in enumerate(written, 1):
            item["label"] = f"written answers {n}"
    return items


def _header(kind: str, nb: dict, rel: str, version: str, times: dict) -> dict:
    items = exercises_of(nb)
    auto = sum(i["points"] for i in items if i["kind"] == "auto")
    manual = sum(i["points"] for i in items if i["kind"] == "manual")
    t = times.get("notebooks", {}).get(rel, {})
    lines = [f"**{kind.capitalize()} edition** of kp-book (kpedu {version}), generated from `{rel}` by "
             f"`python -m kpedu.editions {kind}`: do not edit the book's copy, edit its source."]
    if kind == "student":
        lines += ["",
                  "Each exercise has an answer cell that raises `NotImplementedError` until you write its "
                  "body, and a locked self-check cell after it. \"Run all\" runs the whole notebook: a "
                  "self-check reports *not solved yet*, *not yet* (with the reason) or *passed*, and never "
                  "stops the notebook or runs over your code. Written questions have a cell that says "
                  f"{TEXT_STUB}: replace it with your answer."]
    else:
        lines += ["", "Solutions and answers are shown. The cells marked for nbgrader (answer cells, locked "
                  "self-checks with points, written answers) are the assignment: `nbgrader generate_assignment` "
                  "makes the student version from this folder (see the course's `README.md`)."]
        when = []
        when.append(f"reading about {reading_minutes(nb)} min")
        if t.get("book_s") is not None:
            when.append(f"running {t['book_s'] / 60:.1f} min in the `book` profile")
        if t.get("ci_s") is not None:
            when.append(f"{t['ci_s'] / 60:.1f} min in the `ci` profile")
        machine = times.get("machine")
        measured = (f" (measured on {times.get('measured')}, {times.get('how', '')}; the machine: {machine})"
                    if machine and len(when) > 1 else "")
        lines += ["", "Time for this section: " + ", ".join(when) + measured + "."]
    if items:
        pts = lambda x: f"{x:g} point" + ("" if x == 1 else "s")  # noqa: E731
        lines += ["", f"Exercises: {pts(auto)} checked automatically"
                  + (f", {pts(manual)} of written answers graded by hand" if manual else "") + "."]
    return {"cell_type": "markdown", "id": f"kpedu-{kind}-edition", "metadata": {"kpedu_edition_header": True},
            "source": "\n".join(lines).splitlines(keepends=True)}


def course_notebook(path: Path, kind: str, root: Path | None = None, version: str | None = None,
                    baseurl: str | None = None, bib: dict | None = None, times: dict | None = None) -> dict:
    """The student or instructor edition of one notebook (a notebook dict).

    Both start from the launch copy (plain Markdown, the pinned setup cell) and keep the
    nbgrader metadata. The student edition clears every solution region with nbgrader's
    stubs, shows the answer cells, locks the self-checks (``editable: false``), drops all
    outputs, and switches the self-checks to ``practice`` mode in its setup cell. The
    instructor edition shows the solutions and answers (with nbgrader's delimiters, from
    which ``nbgrader generate_assignment`` makes the student version) and states the time
    the section takes."""
    if kind not in ("student", "instructor"):
        raise EditionError(f"unknown edition {kind!r}: choose student or instructor")
    root = root or _root()
    version = version or project_version(root)
    nb = launch_notebook(path, root, version, baseurl, bib)
    rel = Path(path).resolve().relative_to(root).as_posix()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if is_answer_cell(cell):
            _unhide(cell)
            if kind == "student":
                clear_solution(cell)
            elif cell["cell_type"] == "markdown":  # the delimiters stay: nbgrader generates the assignment from them
                cell["source"] = "".join(cell["source"]).replace("<details>", "<details open>") \
                    .splitlines(keepends=True)
        elif kind == "student" and any(BEGIN_SOLUTION in ln for ln in cell.get("source", [])):
            raise EditionError(f"{rel}: a solution region outside a solution cell")
        if kind == "student" and is_graded_cell(cell) and not is_answer_cell(cell):
            cell.setdefault("metadata", {}).update(editable=False, deletable=False)
        if kind == "student" and is_install_cell(cell):
            cell["source"] = ("".join(cell["source"]) + PRACTICE_LINES).splitlines(keepends=True)
    nb["cells"].insert(1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0,
                       _header(kind, nb, rel, version, times if times is not None else section_times(root)))
    nb["metadata"]["kpedu_edition"] = {"edition": kind, "kpedu": version, "source": rel}
    return nb


def _prepare_out(out: Path, root: Path, kind: str, replace: bool) -> Path:
    out = Path(out).resolve()
    protected = [root / f for f in ("book", "kpedu", "binder", "tests", ".git")]
    if out == root or any(out == s or s in out.parents for s in protected):
        raise EditionError(f"refusing to write an edition over the sources ({out})")
    if out.exists() and not out.is_dir():
        raise EditionError(f"{out} is a file, not a folder (nothing was written)")
    marker = out / ".kpedu-edition"
    if out.is_dir() and any(out.iterdir()):
        earlier = marker.read_text(encoding="utf-8").split()[0] if marker.is_file() else None
        if not (replace and earlier == kind):
            why = (f"it holds an earlier {earlier} edition: add --replace to rewrite it" if earlier == kind
                   else "it is not empty: choose a new or empty folder")
            raise EditionError(f"{out}: {why} (nothing was written)")
        shutil.rmtree(out)
    return out


COURSE_README = """# kp-book, {kind} edition (kpedu {version})

Generated by `python -m kpedu.editions {kind} OUT/` from the book's notebooks. Do not edit
these copies: edit the sources in the repository's `book/` and generate them again.
{more}"""

INSTRUCTOR_MORE = """
This folder is an nbgrader course: `source/<chapter>/` holds the assignments with
solutions, answers and points.

- Hand out: `nbgrader generate_assignment ch00-foundations` writes the student version to
  `release/` (or hand out the student edition, `python -m kpedu.editions student OUT/`,
  which is the same notebooks with the same cell ids).
- Grade one notebook: `python -m kpedu.editions grade SUBMISSION.ipynb` prints a score
  per exercise. Grade a class with nbgrader: collect the submissions into
  `submitted/<student>/<chapter>/` and run `nbgrader autograde <chapter>`.
  `nbgrader_config.py` sets `KPEDU_EXERCISES=grade`, so a self-check that fails raises
  and scores 0 (in the student edition it only reports).
"""

NBGRADER_CONFIG = '''# nbgrader configuration of the kp-book course (generated by python -m kpedu.editions instructor)
import os

c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
# Self-checks raise when they fail while grading; in the student edition they only report.
os.environ["KPEDU_EXERCISES"] = "grade"
# Training cells take minutes on a CPU: allow them time, and use the fast profile.
os.environ.setdefault("KPEDU_PROFILE", "ci")
c.Execute.timeout = 1800
'''


def course(kind: str, out: Path, root: Path | None = None, replace: bool = False,
           only: list[str] | None = None) -> list[Path]:
    """Write the student or instructor edition of every notebook of the book into ``out``.

    Student: ``OUT/<chapter>/<notebook>.ipynb``. Instructor: an nbgrader course,
    ``OUT/source/<chapter>/<notebook>.ipynb`` with ``OUT/nbgrader_config.py``. ``only``
    restricts the notebooks to those whose path (relative to the repository) contains one
    of the given strings."""
    if kind not in ("student", "instructor"):
        raise EditionError(f"unknown edition {kind!r}: choose one of {', '.join(EDITIONS)}")
    root = root or _root()
    notebooks = chapter_notebooks(root)
    if only:
        notebooks = [p for p in notebooks if any(o in p.relative_to(root).as_posix() for o in only)]
        if not notebooks:
            raise EditionError(f"no notebook of the book matches {only}")
    out = _prepare_out(out, root, kind, replace)
    version = project_version(root)
    config = _config(root)
    bib: dict = {}
    for f in config.get("bibtex_bibfiles", []):
        bib.update(read_bib(root / f))
    times = section_times(root)
    written = []
    for path in notebooks:
        nb = course_notebook(path, kind, root, version, config.get("html", {}).get("baseurl"), bib, times)
        rel = path.relative_to(root / "book")
        target = out / ("source" if kind == "instructor" else "") / rel
        _write_atomic(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    _write_atomic(out / "README.md", COURSE_README.format(kind=kind, version=version,
                                                          more=INSTRUCTOR_MORE if kind == "instructor" else ""))
    if kind == "instructor":
        _write_atomic(out / "nbgrader_config.py", NBGRADER_CONFIG)
    _write_atomic(out / ".kpedu-edition", f"{kind} {version}\n")
    return written


# ---------------------------------------------------------------------------------------
# grading

def read_notebook(path: Path) -> dict:
    """Read a notebook file, or raise :class:`EditionError` saying why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise EditionError(f"{path}: no such file")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EditionError(f"{path} is not a Jupyter notebook (not JSON: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or "nbformat" not in nb:
        raise EditionError(f"{path} is not a Jupyter notebook (no cells or nbformat)")
    if nb["nbformat"] < 4:
        raise EditionError(f"{path} is a notebook of format {nb['nbformat']}: save it again in Jupyter (format 4)")
    return nb


def _graded_ids(nb: dict) -> dict[str, dict]:
    return {nbgrader_meta(c)["grade_id"]: c for c in nb["cells"]
            if nbgrader_meta(c).get("grade_id") and (is_graded_cell(c) or is_answer_cell(c))}


def _error_of(cell: dict) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename')}: {o.get('evalue')}".strip()
    return None


def _metadata_lost(name: str) -> EditionError:
    return EditionError(f"{name} has lost its kp-book metadata (no kpedu_edition, or no cells marked for "
                        "grading): grade the student edition as the student saved it, made by "
                        "`python -m kpedu.editions student OUT/`, in Jupyter (cell metadata must be kept)")


def prepare_submission(submission: dict, source: dict, name: str = "the submission") -> dict:
    """The notebook the grader runs: the student's cells, with every locked self-check cell
    replaced by the source's (so an edited check cannot pass), in the grading mode."""
    meta = submission.get("metadata", {}).get("kpedu_edition")
    sub_ids = _graded_ids(submission)
    if not meta or not sub_ids:
        raise _metadata_lost(name)
    src_ids = _graded_ids(source)
    src_rel = source.get("metadata", {}).get("kpedu_edition", {}).get("source")
    if src_rel and meta.get("source") and src_rel != meta["source"]:
        raise EditionError(f"{name} is a copy of {meta['source']}, not of {src_rel}: grade it against its own "
                           "chapter")
    missing = [g for g, c in src_ids.items() if is_graded_cell(c) and not is_answer_cell(c) and g not in sub_ids]
    if missing or not set(sub_ids) <= set(src_ids):
        raise EditionError(f"{name} does not match {meta.get('source')}: graded cells "
                           f"{sorted(set(src_ids) ^ set(sub_ids))[:5]} differ (another chapter, or cells deleted)")
    run = copy.deepcopy(submission)
    for i, cell in enumerate(run["cells"]):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in src_ids and is_graded_cell(cell) and not is_answer_cell(cell):
            original = copy.deepcopy(src_ids[gid])
            original["outputs"], original["execution_count"] = [], None
            run["cells"][i] = original
        elif cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return run


def grade(path: Path, source: Path | None = None, root: Path | None = None, profile: str = "ci",
          timeout: int = 1800, echo=print) -> dict:
    """Grade one student notebook: run it in a fresh kernel with the original self-checks in
    ``grade`` mode, and score every graded cell. Returns ``{"items": [...], "score": ...,
    "auto_points": ..., "manual_points": ...}`` and prints a table with ``echo``."""
    path = Path(path)
    submission = read_notebook(path)
    meta = submission.get("metadata", {}).get("kpedu_edition") or {}
    if source is None:
        if not meta.get("source") or not _graded_ids(submission):
            raise _metadata_lost(path.name)
        root = root or _root()
        source_path = root / meta["source"]
        if not source_path.is_file():
            raise EditionError(f"{path.name} was made from {meta['source']}, which is not in {root}: pass the "
                               "source with --source")
        reference = course_notebook(source_path, "instructor", root, meta.get("kpedu"), times={})
    else:
        reference = read_notebook(Path(source))
        if "kpedu_edition" not in reference.get("metadata", {}):
            reference.setdefault("metadata", {})["kpedu_edition"] = {}
    run = prepare_submission(submission, reference, path.name)
    try:
        import nbclient
        import nbformat
    except ImportError as exc:  # pragma: no cover - installed with the book's requirements
        raise EditionError(f"grading needs nbclient and nbformat ({exc}): pip install nbclient") from None
    env_before = {k: os.environ.get(k) for k in ("KPEDU_EXERCISES", "KPEDU_PROFILE")}
    os.environ["KPEDU_EXERCISES"] = "grade"
    os.environ["KPEDU_PROFILE"] = profile
    try:
        node = nbformat.reads(json.dumps(run), as_version=4)
        client = nbclient.NotebookClient(node, timeout=timeout, allow_errors=True, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.resolve().parent)}})
        try:
            client.execute()
        except (nbclient.exceptions.DeadKernelError, nbclient.exceptions.CellTimeoutError) as exc:
            raise EditionError(f"{path.name}: the notebook did not finish ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); a cell may loop forever or "
                               "use too much memory: run it in Jupyter to see which") from None
        executed = json.loads(nbformat.writes(node))
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    items = []
    labels = {i["grade_id"]: i for i in exercises_of(executed)}
    for cell in executed["cells"]:
        m = nbgrader_meta(cell)
        if not m.get("grade"):
            continue
        info = labels[m["grade_id"]]
        if info["kind"] == "manual":
            items.append({**info, "score": None, "status": "to grade by hand"})
            continue
        error = _error_of(cell)
        items.append({**info, "score": 0.0 if error else info["points"],
                      "status": "passed" if not error else ("not solved" if "NotImplementedError" in error
                                                            else "failed: " + error.splitlines()[0][:72])})
    other = [(i, _error_of(c)) for i, c in enumerate(executed["cells"])
             if c["cell_type"] == "code" and not is_graded_cell(c) and _error_of(c)]
    auto = sum(i["points"] for i in items if i["kind"] == "auto")
    score = sum(i["score"] for i in items if i["kind"] == "auto")
    manual = sum(i["points"] for i in items if i["kind"] == "manual")
    echo(f"{path.name}: a copy of {meta.get('source')}, run in the {profile} profile")
    width = max([len(i["label"]) for i in items] + [8])
    for i in items:
        pts = "  -  " if i["score"] is None else f"{i['score']:g}/{i['points']:g}"
        echo(f"  {i['label']:<{width}}  {pts:>6}  {i['status']}")
    echo(f"  score: {score:g}/{auto:g} checked automatically"
         + (f"; {manual:g} more points of written answers to grade by hand" if manual else ""))
    for i, err in other:
        echo(f"  note: cell {i} (not graded) raised {err.splitlines()[0][:120]}")
    return {"items": items, "score": score, "auto_points": auto, "manual_points": manual,
            "errors_elsewhere": other}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpedu.editions", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{launch,student,instructor,grade}")
    p = sub.add_parser("launch", help="write the launch copies (Colab, Binder) into OUT")
    p.add_argument("out", type=Path)
    for kind, what in (("student", "exercises without solutions, self-checks that report"),
                       ("instructor", "solutions, answers, times and an nbgrader course")):
        p = sub.add_parser(kind, help=f"write the {kind} edition into OUT: {what}")
        p.add_argument("out", type=Path)
        p.add_argument("--replace", action="store_true", help=f"rewrite OUT when it holds an earlier {kind} edition")
        p.add_argument("--only", nargs="+", metavar="PART",
                       help="only the notebooks whose path contains PART (e.g. ch00-foundations)")
    p = sub.add_parser("grade", help="run the graded self-checks of one student notebook and print its score")
    p.add_argument("submission", type=Path)
    p.add_argument("--source", type=Path, help="the instructor edition of the notebook (default: the book's)")
    p.add_argument("--profile", default="ci", choices=("ci", "book", "paper"),
                   help="KPEDU_PROFILE to run it in (default ci: fast)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    prog = f"python -m kpedu.editions {args.command}"
    try:
        if args.command == "launch":
            written = launch(args.out)
            print(f"{len(written)} launch copies (kpedu {project_version()}) written to {args.out}")
        elif args.command in ("student", "instructor"):
            written = course(args.command, args.out, replace=args.replace, only=args.only)
            print(f"{len(written)} notebooks of the {args.command} edition (kpedu {project_version()}) "
                  f"written to {args.out}")
        else:
            result = grade(args.submission, args.source, profile=args.profile, timeout=args.timeout)
            return 0 if result is not None else 1
    except (EditionError, ValueError, FileNotFoundError, KeyError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
