"""Licences, citation and changelog, read and checked.

- `LICENSE`: the MIT licence of the code, with the year and the holder that
  `_config.yml` (`copyright`, `author`) names; `pyproject.toml` declares it.
- `LICENSE-TEXT.md` and the site's footer (`html.extra_footer` in `_config.yml`): the
  text and figures are CC BY-SA 4.0, with the licence's address; so does the PDF's
  title page (the LaTeX preamble in `_config.yml`).
- `CITATION.cff`: Citation File Format 1.2.0 with its required keys, the repository and
  site that `_config.yml` names, both licences, and no version.
- The version is written once, in `pyproject.toml`: the newest release in `CHANGELOG.md`
  is that version, and no other file that readers or Binder see repeats it.

Each check is a function that returns what is wrong, and also runs on broken copies, so
that it cannot pass on anything.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kpedu.editions import project_version

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
CC_BY_SA_URL = "https://creativecommons.org/licenses/by-sa/4.0/"
CFF_REQUIRED = ("cff-version", "message", "title", "authors")
# files that must not repeat the version (the CHANGELOG records it by design)
NO_VERSION_FILES = ["README.md", "CITATION.cff", "_config.yml", "LICENSE-TEXT.md"]


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ checks
def mit_problems(text: str, year: str, holder: str) -> list[str]:
    found = []
    if not text.startswith("MIT License"):
        found.append("does not start with 'MIT License'")
    flat = " ".join(text.split())
    for phrase in ("Permission is hereby granted, free of charge, to any person obtaining a copy of this software",
                   "The above copyright notice and this permission notice shall be included in all copies or "
                   "substantial portions of the Software.",
                   'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND'):
        if phrase not in flat:
            found.append(f"lacks the MIT wording {phrase!r}")
    m = re.search(r"^Copyright \(c\) (\d{4}(?:-\d{4})?) (.+)$", text, re.M)
    if not m:
        found.append("has no 'Copyright (c) YEAR HOLDER' line")
    else:
        if m.group(1).split("-")[-1] != year:
            found.append(f"names the year {m.group(1)}, _config.yml says {year}")
        if m.group(2).strip() != holder:
            found.append(f"names {m.group(2)!r}, _config.yml's author is {holder!r}")
    return found


def footer_problems(config: dict) -> list[str]:
    footer = str((config.get("html") or {}).get("extra_footer") or "")
    found = []
    if "CC BY-SA 4.0" not in footer:
        found.append("the footer does not name CC BY-SA 4.0")
    if not re.search(rf'<a\s[^>]*href="{re.escape(CC_BY_SA_URL)}"', footer):
        found.append(f"the footer does not link {CC_BY_SA_URL}")
    if "MIT" not in footer:
        found.append("the footer does not say that the code is MIT")
    if re.search(r"<(script|link|img|iframe)\b", footer):
        found.append("the footer loads something (the site works offline)")
    return found


def citation_problems(cff: dict, config: dict) -> list[str]:
    found = [f"no {key!r}" for key in CFF_REQUIRED if not cff.get(key)]
    if str(cff.get("cff-version")) != "1.2.0":
        found.append(f"cff-version is {cff.get('cff-version')!r}, not 1.2.0")
    if "version" in cff:
        found.append("has a version (the version is written once, in pyproject.toml)")
    if cff.get("type") != "software":
        found.append("type is not software")
    if cff.get("authors") != [{"name": "The kp-book authors"}]:
        found.append(f"authors are {cff.get('authors')!r}")
    if cff.get("repository-code") != config["repository"]["url"]:
        found.append(f"repository-code is not {config['repository']['url']}")
    if cff.get("url") != config["html"]["baseurl"]:
        found.append(f"url is not {config['html']['baseurl']}")
    licences = cff.get("license")
    if sorted(licences if isinstance(licences, list) else [licences]) != ["CC-BY-SA-4.0", "MIT"]:
        found.append(f"license is {licences!r}, not MIT and CC-BY-SA-4.0")
    return found


def released_versions(changelog: str) -> list[str]:
    """Version headings (`## [1.2.0] - date` or `## 1.2.0`), newest first, Unreleased left out."""
    heads = re.findall(r"^## \[?([^\]\s]+)\]?", changelog, re.M)
    return [h for h in heads if h.lower() != "unreleased"]


def changelog_problems(changelog: str, version: str) -> list[str]:
    found = []
    heads = re.findall(r"^## \[?([^\]\s]+)\]?", changelog, re.M)
    if not heads or heads[0].lower() != "unreleased":
        found.append("the first section is not [Unreleased]")
    released = released_versions(changelog)
    if not released:
        found.append("no released version")
    elif released[0] != version:
        found.append(f"the newest release is {released[0]}, pyproject.toml says {version}")
    if len(set(released)) != len(released):
        found.append("a version appears twice")
    return found


def hardcoded_version(text: str, version: str) -> list[str]:
    """Lines that write ``version`` (as a whole version number, not inside a longer one)."""
    pattern = re.compile(rf"(?<![\d.]){re.escape(version)}(?![\w]|\.\d)")
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


# ------------------------------------------------------------------------------- tests
def test_license_is_mit_with_the_year():
    assert not mit_problems(read("LICENSE"), str(CONFIG["copyright"]), CONFIG["author"])


def test_pyproject_declares_the_licence():
    text = read("pyproject.toml")
    assert re.search(r'^license\s*=\s*"MIT"', text, re.M), "pyproject.toml: license is not the SPDX expression MIT"
    assert re.search(r'^license-files\s*=\s*\[\s*"LICENSE"\s*\]', text, re.M)


def test_text_licence_notice():
    text = read("LICENSE-TEXT.md")
    assert "CC BY-SA 4.0" in text and CC_BY_SA_URL in text
    assert "Attribution-ShareAlike 4.0 International" in text
    assert "`book/`" in text and "code cells" in text and "MIT" in text
    assert "book/_vendor/" in text  # vendored scripts keep their own licences


def test_footer_names_cc_by_sa():
    assert not footer_problems(CONFIG)


def test_pdf_title_page_names_the_licence():
    preamble = CONFIG["sphinx"]["config"]["latex_elements"]["preamble"]
    m = re.search(r"\\newcommand\{\\sphinxbackoftitlepage\}\{(.*?)\}\n", preamble, re.S)
    assert m, "no licence on the back of the PDF's title page"
    assert "CC BY-SA 4.0" in m.group(1) and CC_BY_SA_URL in m.group(1) and "MIT" in m.group(1)


def test_citation_file():
    cff = yaml.safe_load(read("CITATION.cff"))
    assert isinstance(cff, dict)
    assert not citation_problems(cff, CONFIG)


def test_changelog_newest_release_is_the_project_version():
    assert not changelog_problems(read("CHANGELOG.md"), project_version())


@pytest.mark.parametrize("name", NO_VERSION_FILES + sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "binder").iterdir() if p.is_file()))
def test_version_is_written_once(name):
    version = project_version()
    assert not hardcoded_version(read(name), version), \
        f"{name} writes the version {version}; it belongs in pyproject.toml only"


# ------------------------------------------------------- the checks fail on broken copies
def test_checks_fail_on_broken_copies():
    mit = read("LICENSE")
    year, holder = str(CONFIG["copyright"]), CONFIG["author"]
    assert mit_problems(mit.replace(year, str(int(year) - 1)), year, holder)
    assert mit_problems(mit.replace("MIT License", "BSD License"), year, holder)
    assert mit_problems(mit.replace("Permission is hereby granted", "Permission is granted"), year, holder)
    assert mit_problems(mit.replace(holder, "Someone else"), year, holder)

    for footer in ("", "Licensed under CC BY-SA 4.0; code MIT.",
                   f'<a href="{CC_BY_SA_URL}">CC BY 4.0</a>, code MIT',
                   f'<a href="{CC_BY_SA_URL}">CC BY-SA 4.0</a> <img src="https://licensebuttons.net/l/by-sa/4.0/88x31.png"> MIT'):
        assert footer_problems({"html": {"extra_footer": footer}}), footer

    cff = yaml.safe_load(read("CITATION.cff"))
    for broken in ({**cff, "version": "9.9.9"}, {k: v for k, v in cff.items() if k != "message"},
                   {**cff, "license": "MIT"}, {**cff, "cff-version": "1.1.0"},
                   {**cff, "repository-code": "https://github.com/someone/else"}):
        assert citation_problems(broken, CONFIG), broken

    log = read("CHANGELOG.md")
    version = project_version()
    assert changelog_problems(log, "99.0.0")
    assert changelog_problems(log.replace("## [Unreleased]", "## [Later]"), version)
    assert changelog_problems(log.replace(f"## [{version}]", "## [0.0.9]"), version)
    assert released_versions("## [Unreleased]\n## [1.2.0] - 2026-01-01\n## 1.1.0\n") == ["1.2.0", "1.1.0"]

    assert hardcoded_version("pip install kpedu==0.1.0", "0.1.0")
    assert hardcoded_version("the tag v0.1.0", "0.1.0")
    assert not hardcoded_version("numpy 10.1.0 and 0.1.01 and 0.1.0.1", "0.1.0")
