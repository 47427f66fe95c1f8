"""Editions of the book's notebooks for the places readers run them.

    python -m kpedu.editions launch OUT/      launch copies for Colab and Binder

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
import tempfile
from pathlib import Path

__all__ = ["install_cell", "is_install_cell", "launch_notebook", "launch", "myst_leftovers", "read_bib",
           "cite_text", "project_version"]

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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


LAUNCH_README = """# kp-book launch copies (generated: do not edit)

This branch holds the notebooks of kp-book as Colab and Binder run them, generated from
`main` by `python -m kpedu.editions launch OUT/` (kpedu {version}). MyST cross-references,
citations and admonitions are rewritten as plain Markdown and HTML, and the setup cell
installs kpedu {version}. Read the book at {baseurl}; edit it on the `main` branch.
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
        if (out / folder).exists():
            shutil.rmtree(out / folder)
        shutil.copytree(root / folder, out / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    shutil.copy2(root / "pyproject.toml", out / "pyproject.toml")
    _write_atomic(out / "README.md", LAUNCH_README.format(version=version, baseurl=baseurl))
    _write_atomic(marker, f"launch {version}\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpedu.editions", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("launch", help="write the launch copies (Colab, Binder) into OUT")
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "launch":
        try:
            written = launch(args.out)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            print(f"python -m kpedu.editions launch: {exc}", file=sys.stderr)
            return 2
        print(f"{len(written)} launch copies (kpedu {project_version()}) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
