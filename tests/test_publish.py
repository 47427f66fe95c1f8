"""The workflow that publishes the book (.github/workflows/book.yml), read and checked.

GitHub Actions cannot run here, so the workflow is parsed: it must build the executed
book with the README's command, publish `_build/html` on GitHub Pages, and push the
launch copies (`python -m kpedu.editions launch`) to the branch the site's launch buttons
open (`repository.branch` in _config.yml). `html.baseurl` must be the Pages address of
the repository that _config.yml names. The checks are also run on broken copies of the
workflow, so that they cannot pass on anything.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def readme_build_command() -> str:
    """The first command of the README's first code block (the book build)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    return block.strip().splitlines()[0].split("#")[0].strip()


def load() -> dict:
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    if True in wf:  # YAML 1.1 reads the key `on` as True
        wf["on"] = wf.pop(True)
    return wf


def steps(wf: dict) -> list[tuple[str, dict]]:
    return [(name, s) for name, job in wf["jobs"].items() for s in job.get("steps", [])]


def problems(wf: dict) -> list[str]:
    found = []
    all_steps = steps(wf)
    runs = [s.get("run", "") for _, s in all_steps]
    build = readme_build_command()
    if not any(re.search(rf"(^|\n)\s*{re.escape(build)}\s*($|\n)", r) for r in runs):
        found.append(f"no step runs the README's build command `{build}`")
    if any("torch" in r and "pip install" in r and "whl/cpu" not in r for r in runs):
        found.append("torch is installed without PyTorch's CPU index (several GB of CUDA wheels)")
    pages = [s for _, s in all_steps if str(s.get("uses", "")).startswith("actions/upload-pages-artifact@")]
    if not pages or pages[0].get("with", {}).get("path") != "_build/html":
        found.append("the Pages artifact is not _build/html")
    deploy_jobs = [name for name, s in all_steps if str(s.get("uses", "")).startswith("actions/deploy-pages@")]
    if not deploy_jobs:
        found.append("nothing deploys to GitHub Pages")
    elif "build" not in wf["jobs"][deploy_jobs[0]].get("needs", []) and wf["jobs"][deploy_jobs[0]].get("needs") != "build":
        found.append("the Pages deploy does not wait for the build")
    else:
        perms = wf["jobs"][deploy_jobs[0]].get("permissions", {})
        if perms.get("pages") != "write" or perms.get("id-token") != "write":
            found.append("the deploy job lacks pages: write and id-token: write")
    launch = [re.search(r"python -m kpedu\.editions launch (\S+)", r) for r in runs]
    launch = [m.group(1) for m in launch if m]
    if not launch:
        found.append("no step writes the launch copies")
    else:
        uploads = [s for _, s in all_steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")
                   and s.get("with", {}).get("path") == launch[0]]
        if not uploads:
            found.append(f"the launch copies ({launch[0]}) are not passed to the deploy job")
    branch = CONFIG["repository"]["branch"]
    if not any(re.search(rf"git push\b.*\blaunch:{re.escape(branch)}\b|git push\b.*\bHEAD:{re.escape(branch)}\b", r)
               for r in runs):
        found.append(f"nothing pushes the launch copies to the `{branch}` branch the launch buttons open")
    triggers = wf.get("on", {})
    if "v*" not in (triggers.get("push", {}) or {}).get("tags", []):
        found.append("release tags (v*) do not trigger a publication")
    return found


def test_workflow_builds_and_publishes_the_book():
    assert WORKFLOW.is_file()
    assert problems(load()) == []


def test_readme_says_how_a_fork_turns_publishing_on():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".github/workflows/book.yml" in text and "GitHub Actions" in text and "html.baseurl" in text


def test_baseurl_is_the_repository_pages_address():
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)/?", CONFIG["repository"]["url"])
    assert m, CONFIG["repository"]["url"]
    owner, repo = m.groups()
    expected = f"https://{owner.lower()}.github.io/{repo}/"
    assert CONFIG["html"]["baseurl"] == expected


def test_launch_buttons_open_the_launch_branch():
    assert CONFIG["repository"]["branch"] == "launch"
    assert CONFIG["html"].get("use_edit_page_button") is False, "an edit button would open the generated copies"


def _break(wf: dict, what: str) -> dict:
    wf = copy.deepcopy(wf)
    for _, s in steps(wf):
        if what == "build" and "run" in s:
            s["run"] = s["run"].replace(readme_build_command(), "jupyter-book build .")
        if what == "pages" and str(s.get("uses", "")).startswith("actions/upload-pages-artifact@"):
            s["with"]["path"] = "_build"
        if what == "launch" and "run" in s:
            s["run"] = s["run"].replace("launch:launch", "launch:main")
        if what == "torch" and "run" in s:
            s["run"] = s["run"].replace(" --index-url https://download.pytorch.org/whl/cpu", "")
    if what == "deploy":
        for job in wf["jobs"].values():
            job["steps"] = [s for s in job.get("steps", []) if not str(s.get("uses", "")).startswith("actions/deploy-pages@")]
    return wf


@pytest.mark.parametrize("what, message", [
    ("build", "README's build command"), ("pages", "_build/html"), ("launch", "launch buttons open"),
    ("torch", "CPU index"), ("deploy", "deploys to GitHub Pages"),
])
def test_checks_catch_a_broken_workflow(what, message):
    found = problems(_break(load(), what))
    assert any(message in p for p in found), found
