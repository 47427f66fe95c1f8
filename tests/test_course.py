"""The course kit: exercises in nbgrader's format, the student and instructor editions, grading.

    python -m kpedu.editions student OUT/       exercises to solve, self-checks that report
    python -m kpedu.editions instructor OUT/    solutions, answers, times; an nbgrader course
    python -m kpedu.editions grade NB.ipynb     a score per exercise
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kpedu import editions, exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = editions.chapter_notebooks(ROOT)
PY = sys.executable


def src(cell) -> str:
    return "".join(cell.get("source", ""))


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cli(*args, cwd=ROOT, env=None):
    return subprocess.run([PY, "-m", "kpedu.editions", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=900)


# --- kpedu.exercises: the modes ------------------------------------------------------------------

def test_exercise_modes(monkeypatch, capsys):
    def unsolved():
        raise NotImplementedError()

    monkeypatch.setenv("KPEDU_EXERCISES", "practice")
    with exercises.exercise("Exercise 1"):
        exercises.check_close("Exercise 1", unsolved(), 1.0)
    with exercises.exercise("Exercise 2"):
        exercises.check_close("Exercise 2", 2.0, 1.0)
    with exercises.exercise("Exercise 3"):
        exercises.check_close("Exercise 3", None, 1.0)
    with exercises.exercise("Exercise 4"):
        raise KeyError("oops")
    with exercises.exercise("Exercise 5"):
        exercises.check_true("Exercise 5", True)
    out, err = capsys.readouterr()
    assert "Exercise 1: not solved yet" in out
    assert "Exercise 2: values differ from the reference by up to 1" in out and "not solved" not in out.split("\n")[1]
    assert "Exercise 3: not solved yet" in out
    assert "Exercise 4: your code raised KeyError" in err
    assert "Exercise 5: passed" in out
    for mode in ("strict", "grade"):
        monkeypatch.setenv("KPEDU_EXERCISES", mode)
        with pytest.raises(NotImplementedError):
            with exercises.exercise("Exercise 1"):
                unsolved()
        with pytest.raises(AssertionError, match="differ"):
            with exercises.exercise("Exercise 2"):
                exercises.check_close("Exercise 2", 2.0, 1.0)
    monkeypatch.delenv("KPEDU_EXERCISES")
    assert exercises.mode() == "strict"
    monkeypatch.setenv("KPEDU_EXERCISES", "lenient")
    with pytest.raises(ValueError, match="KPEDU_EXERCISES"):
        with exercises.exercise("Exercise 1"):
            pass


# --- the sources: nbgrader's format --------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_sources_mark_exercises_as_nbgrader_does(path):
    nb = load(path)
    ids = [editions.nbgrader_meta(c).get("grade_id") for c in nb["cells"] if editions.nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"grade ids repeat: {ids}"
    for i, cell in enumerate(nb["cells"]):
        meta, text = editions.nbgrader_meta(cell), src(cell)
        if meta:
            assert meta["schema_version"] == 3 and {"grade", "solution", "locked", "grade_id"} <= set(meta)
        if cell["cell_type"] == "code" and meta.get("solution"):
            # the solution sits inside a function, so the student's stub raises when called, not when defined
            student = json.loads(json.dumps(cell))
            editions.clear_solution(student)
            tree = ast.parse(src(student))
            funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
            assert funcs and "raise NotImplementedError()" in src(student), text
            assert all(not isinstance(n, ast.Raise) for n in tree.body), f"cell {i}: the stub raises on definition"
            assert {f.name for f in funcs} == {n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
            assert "hide-input" in cell["metadata"].get("tags", []) or "hide-cell" in cell["metadata"].get("tags", [])
            # the next code cell is its locked, graded self-check
            check = next(c for c in nb["cells"][i + 1:] if c["cell_type"] == "code")
            cm = editions.nbgrader_meta(check)
            assert cm.get("grade") and cm.get("locked") and cm.get("points", 0) > 0 and not cm.get("solution")
            assert re.search(r'^with exercise\("[^"]+"\):', src(check), re.M), src(check)
        if cell["cell_type"] == "markdown":
            # every answer of a question is inside a solution region of a graded answer cell
            n_answers = len(re.findall(r"^:{3,}\{admonition\} Answer", text, re.M))
            if n_answers:
                assert meta.get("solution") and meta.get("grade") and meta.get("points") == n_answers
                student = json.loads(json.dumps(cell))
                editions.clear_solution(student)
                assert "{admonition} Answer" not in src(student) and src(student).count(editions.TEXT_STUB) == n_answers
        if "BEGIN SOLUTION" in text:
            assert meta.get("solution"), f"cell {i}: a solution region outside a solution cell"


def test_every_chapter_has_graded_exercises():
    chapters = {}
    for path in NOTEBOOKS:
        items = editions.exercises_of(load(path))
        chapters.setdefault(path.parent.name, []).extend(items)
    for chapter, items in chapters.items():
        assert sum(i["kind"] == "auto" for i in items) >= 3, chapter
        assert any(i["kind"] == "manual" for i in items), chapter


# --- the editions ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("editions")
    for kind in ("student", "instructor"):
        r = cli(kind, base / kind)
        assert r.returncode == 0, r.stderr
        assert f"{len(NOTEBOOKS)} notebooks of the {kind} edition" in r.stdout
    return base


def test_student_edition(built):
    for path in NOTEBOOKS:
        rel = path.relative_to(ROOT / "book")
        source, student = load(path), load(built / "student" / rel)
        assert student["metadata"]["kpedu_edition"]["edition"] == "student"
        text = "\n".join(src(c) for c in student["cells"])
        assert "BEGIN SOLUTION" not in text and "Answer</b>" not in text
        for cell in student["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
                assert not cell["metadata"].get("jupyter", {}).get("source_hidden") or not editions.is_answer_cell(cell)
            if editions.is_graded_cell(cell) and not editions.is_answer_cell(cell):
                assert cell["metadata"]["editable"] is False and cell["metadata"]["deletable"] is False
        setup = next(c for c in student["cells"] if editions.is_install_cell(c))
        assert 'os.environ.setdefault("KPEDU_EXERCISES", "practice")' in src(setup)
        # no solution survives: every solution line of the source is gone from the student's answer cells
        for cell in source["cells"]:
            if editions.is_answer_cell(cell) and cell["cell_type"] == "code":
                body = src(cell).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                longest = max(body.strip().splitlines(), key=len).strip()
                assert longest not in text, f"{rel}: {longest!r} leaked"
        assert [editions.nbgrader_meta(c).get("grade_id") for c in student["cells"] if editions.nbgrader_meta(c)] == \
               [editions.nbgrader_meta(c).get("grade_id") for c in source["cells"] if editions.nbgrader_meta(c)]


def test_instructor_edition_runs_the_sources_code(built):
    """The instructor edition's code is the source's, so nbval's run of book/ (strict self-checks) is its run."""
    assert (built / "instructor" / "nbgrader_config.py").is_file()
    for path in NOTEBOOKS:
        rel = path.relative_to(ROOT / "book")
        source, inst = load(path), load(built / "instructor" / "source" / rel)
        code_s = [src(c) for c in source["cells"] if c["cell_type"] == "code" and not editions.is_install_cell(c)]
        code_i = [src(c) for c in inst["cells"] if c["cell_type"] == "code" and not editions.is_install_cell(c)]
        assert code_s == code_i, rel
        header = src(inst["cells"][1])
        assert "Instructor edition" in header and re.search(r"reading about \d+ min", header)
        if editions.exercises_of(source):
            assert re.search(r"\d+ points? checked automatically", header)
        text = "\n".join(src(c) for c in inst["cells"])
        assert "<details open>" in text or not any(i["kind"] == "manual" for i in editions.exercises_of(source))
        assert not editions.myst_leftovers("\n".join(src(c) for c in inst["cells"] if c["cell_type"] == "markdown"))


def test_editions_refuse_bad_input(tmp_path):
    r = cli("teacher", tmp_path / "x")
    assert r.returncode == 2 and "invalid choice: 'teacher'" in r.stderr and "Traceback" not in r.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    r = cli("student", full)
    assert r.returncode == 2 and "not empty" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in full.iterdir()) == ["mine.txt"] and (full / "mine.txt").read_text() == "keep me"
    r = cli("student", ROOT / "book" / "out")
    assert r.returncode == 2 and "over the sources" in r.stderr
    out = tmp_path / "st"
    assert cli("student", out, "--only", "03-decoding").returncode == 0
    r = cli("student", out, "--only", "03-decoding")
    assert r.returncode == 2 and "--replace" in r.stderr
    assert cli("student", out, "--only", "03-decoding", "--replace").returncode == 0
    r = cli("instructor", out, "--replace")           # a student folder is not rewritten as an instructor one
    assert r.returncode == 2 and (out / "ch00-foundations" / "03-decoding.ipynb").is_file()
    r = cli("student", tmp_path / "none", "--only", "no-such-chapter")
    assert r.returncode == 2 and "no notebook" in r.stderr


# --- running the student edition ---------------------------------------------------------------

def _exercise_bodies(tree: ast.AST) -> list[ast.With]:
    """The ``with exercise(...):`` blocks of a cell."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) == "exercise":
                    out.append(node)
    return out


def _bound_names(nodes) -> set[str]:
    names = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return names


def _loads_outside_exercises(tree: ast.AST) -> set[str]:
    inside = {id(n) for w in _exercise_bodies(tree) for n in ast.walk(w)}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in inside}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_nothing_outside_an_exercise_needs_its_solution(path):
    """What makes the student edition run top to bottom with every exercise unsolved, checked on
    the source: a name an answer cell binds (its function raises NotImplementedError there, its
    solution's variables do not exist) or a ``with exercise(...)`` block binds (skipped when the
    exercise fails) is used later only inside ``with exercise(...)`` blocks, which report "not
    solved yet" instead of raising. The runtime test below runs one notebook this way (all of
    them with KPEDU_STUDENT_RUN=all)."""
    nb = load(path)
    tainted: dict[str, int] = {}
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(line for line in src(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(code)
        if editions.is_answer_cell(cell):
            tainted.update({n: i for n in _bound_names([tree])})
            continue
        used = _loads_outside_exercises(tree)
        for name in sorted(used & set(tainted)):
            problems.append(f"cell {i} uses {name!r} (bound by cell {tainted[name]}) outside `with exercise(...)`")
        tainted.update({n: i for n in _bound_names(_exercise_bodies(tree))})
    assert not problems, "\n".join(problems)


STUDENT_RUN_DEFAULT = ("ch00-foundations/03-decoding.ipynb", "ch02-openpose/02-association-and-parsing.ipynb")


@pytest.mark.slow
def test_student_edition_runs_top_to_bottom_unsolved(built, tmp_path):
    """The student edition, `ci` profile, "Run all" with every exercise unsolved: no cell raises,
    every self-check reports "not solved yet" (two kernels at a time, one thread each).

    By default two notebooks run (about 25 s): the property that makes every notebook pass is
    checked statically on all of them by test_nothing_outside_an_exercise_needs_its_solution.
    KPEDU_STUDENT_RUN=all runs every notebook (about 5 min on 2 cores, the time of a second
    nbval pass, which is why CI does not)."""
    import nbclient
    import nbformat

    env = {"KPEDU_PROFILE": "ci", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("KPEDU_EXERCISES", None)

    def run(path: Path):
        nb = nbformat.read(path, as_version=4)
        from jupyter_client import KernelManager

        km = KernelManager(kernel_name="python3")
        km.start_kernel(cwd=str(path.parent), env={**{k: v for k, v in os.environ.items()
                                                       if k != "KPEDU_EXERCISES"}, **env})
        try:
            nbclient.NotebookClient(nb, km=km, timeout=1200, allow_errors=True).execute()
        finally:
            km.shutdown_kernel(now=True)
        return path, nb

    paths = sorted((built / "student").rglob("*.ipynb"))
    if os.environ.get("KPEDU_STUDENT_RUN", "").strip().lower() != "all":
        paths = [p for p in paths if any(p.as_posix().endswith(d) for d in STUDENT_RUN_DEFAULT)]
        assert len(paths) == len(STUDENT_RUN_DEFAULT), paths
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, paths))
    problems = []
    for path, nb in results:
        rel = path.relative_to(built / "student")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if errors:
                problems.append(f"{rel} cell {i}: {errors[0].ename}: {errors[0].evalue}")
            if editions.is_graded_cell(cell) and not editions.is_answer_cell(cell):
                text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
                if "not solved yet" not in text:
                    problems.append(f"{rel} cell {i}: the self-check did not report 'not solved yet': {text[:200]!r}")
    assert not problems, "\n".join(problems)


# --- grading -----------------------------------------------------------------------------------

def _student_copy(tmp_path, only="02-association-and-parsing"):
    out = tmp_path / "st"
    assert cli("student", out, "--only", only).returncode == 0
    return next(out.rglob("*.ipynb"))


@pytest.mark.slow
def test_grade_scores_each_exercise(tmp_path):
    path = _student_copy(tmp_path)
    nb = load(path)
    inst = editions.course_notebook(ROOT / "book/ch02-openpose/02-association-and-parsing.ipynb", "instructor",
                                    ROOT, times={})
    answers = {editions.nbgrader_meta(c)["grade_id"]: src(c) for c in inst["cells"]
               if editions.is_answer_cell(c) and c["cell_type"] == "code"}
    for cell in nb["cells"]:
        gid = editions.nbgrader_meta(cell).get("grade_id")
        if gid == "exercise-1-answer":      # solved
            cell["source"] = answers[gid].splitlines(keepends=True)
        elif gid == "exercise-2-answer":    # wrong: every map empty; and an attempt to silence the self-checks
            cell["source"] = ("import os\nos.environ['KPEDU_EXERCISES'] = 'practice'\n" + src(cell)).replace(
                "raise NotImplementedError()", "return torch.zeros(len(visible[0]), heatmap_size, heatmap_size)")
        elif gid == "exercise-3-answer":    # raising
            cell["source"] = src(cell).replace("raise NotImplementedError()", "return scores.no_such_method()")
        elif gid == "exercise-3-check":     # a student who "fixes" a self-check gains nothing
            cell["source"] = ["print('Exercise 3: passed')"]
        elif gid == "written-1":
            cell["source"] = ["My answer."]
    path.write_text(json.dumps(nb), encoding="utf-8")
    r = cli("grade", path, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout
    assert re.search(r"Exercise 1\s+1/1\s+passed", lines), lines
    assert re.search(r"Exercise 2\s+0/1\s+failed: AssertionError: confidence maps", lines), lines
    assert re.search(r"Exercise 3\s+0/1\s+failed: AttributeError", lines), lines
    assert re.search(r"score: 1/3 checked automatically; 3 more points of written answers to grade by hand", lines), lines


def test_grade_refuses_bad_input(tmp_path):
    text = tmp_path / "essay.ipynb"
    text.write_text("Dear teacher, here is my homework.")
    r = cli("grade", text)
    assert r.returncode == 2 and "is not a Jupyter notebook" in r.stderr and "Traceback" not in r.stderr
    r = cli("grade", tmp_path / "missing.ipynb")
    assert r.returncode == 2 and "no such file" in r.stderr
    path = _student_copy(tmp_path, "03-decoding")
    other = tmp_path / "other"
    assert cli("instructor", other, "--only", "04-metrics").returncode == 0
    r = cli("grade", path, "--source", next(other.rglob("*.ipynb")))
    assert r.returncode == 2 and "is a copy of book/ch00-foundations/03-decoding.ipynb, not of" in r.stderr
    nb = load(path)
    nb["metadata"].pop("kpedu_edition")
    for cell in nb["cells"]:
        cell["metadata"].pop("nbgrader", None)
    stripped = tmp_path / "stripped.ipynb"
    stripped.write_text(json.dumps(nb))
    r = cli("grade", stripped)
    assert r.returncode == 2 and "lost its kp-book metadata" in r.stderr and "Traceback" not in r.stderr
    source = load(ROOT / "book/ch00-foundations/03-decoding.ipynb")
    r = cli("grade", ROOT / "book/ch00-foundations/03-decoding.ipynb")
    assert r.returncode == 2 and "lost its kp-book metadata" in r.stderr, "the book's source is not a submission"
    assert editions.exercises_of(source)


# --- nbgrader itself ---------------------------------------------------------------------------

@pytest.mark.slow
def test_nbgrader_generates_the_same_student_notebook(tmp_path):
    """A teacher who runs nbgrader on the instructor edition gets the student edition's code."""
    nbgrader = shutil.which("nbgrader") or str(Path(PY).parent / "nbgrader")
    if not Path(nbgrader).exists():
        pytest.skip("nbgrader is not installed (pip install nbgrader)")
    course = tmp_path / "course"
    assert cli("instructor", course, "--only", "ch00-foundations/03-decoding").returncode == 0
    r = subprocess.run([nbgrader, "generate_assignment", "ch00-foundations", "--force"], cwd=course,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    released = load(course / "release" / "ch00-foundations" / "03-decoding.ipynb")
    ours = load(_student_copy(tmp_path, "ch00-foundations/03-decoding"))
    code = lambda nb: [src(c) for c in nb["cells"] if c["cell_type"] == "code" and not editions.is_install_cell(c)]  # noqa: E731
    assert code(released) == code(ours)
    md = lambda nb: [src(c) for c in nb["cells"] if c["cell_type"] == "markdown" and editions.is_answer_cell(c)]  # noqa: E731
    assert md(released) == md(ours) and all(editions.TEXT_STUB in m for m in md(ours))


# --- the measured times ------------------------------------------------------------------------

def test_section_times_come_from_build_reports(tmp_path):
    """book/section-times.json is written from build reports: executed notebooks only, the right profile."""
    def report(profile, rows, failures=()):
        path = tmp_path / f"{profile}.json"
        path.write_text(json.dumps({"profile": profile, "machine": f"{profile} machine", "jobs": 2,
                                    "notebooks": rows, "failures": list(failures)}))
        return path

    book = report("book", [{"notebook": "book/a.ipynb", "status": "executed", "seconds": 12.5},
                           {"notebook": "book/b.ipynb", "status": "cached", "seconds": 99.0}])
    ci = report("ci", [{"notebook": "book/a.ipynb", "status": "executed", "seconds": 3.0}])
    out = tmp_path / "times.json"
    script = ROOT / ".ci" / "section_times.py"
    r = subprocess.run([PY, str(script), "--book", str(book), "--ci", str(ci), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["notebooks"] == {"book/a.ipynb": {"book_s": 12.5, "ci_s": 3.0}}   # the cached time is not taken
    assert data["machine"] == "book machine" and "two notebooks at a time" in data["how"]
    r = subprocess.run([PY, str(script), "--book", str(ci), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "expected 'book'" in r.stderr
    bad = report("book", [], failures=[{"notebook": "book/a.ipynb"}])
    r = subprocess.run([PY, str(script), "--book", str(bad), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "failures" in r.stderr


def test_every_section_has_a_measured_time():
    times = editions.section_times(ROOT)
    assert times.get("machine") and times.get("measured")
    for path in NOTEBOOKS:
        t = times["notebooks"].get(path.relative_to(ROOT).as_posix(), {})
        assert t.get("book_s", 0) > 0 and t.get("ci_s", 0) > 0, f"{path}: no measured time"
