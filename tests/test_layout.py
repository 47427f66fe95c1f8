"""The layout of kpedu's chapter packages (``../shared/guide/BOOK-GUIDE.md``, "Chapter packages").

Every chapter package has the same skeleton, so a reader who knows one knows all: model;
targets and loss; inference (decoding, test-time augmentation); experiment (recipes,
training, evaluation). Shared pieces live once at the top of ``kpedu``; a chapter may reuse
an earlier chapter's model, never its data or experiment helpers. The checks read the
source with :mod:`ast` (every import, also those inside functions), so they see what the
code imports, not only what happens to be imported when the tests run.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KPEDU = ROOT / "kpedu"

#: Every chapter package of kpedu; a new chapter is added here (test_every_package_with_an_experiment_is_listed).
CHAPTER_PACKAGES = ("hourglass", "openpose", "fse", "d2net", "transporter")
#: The roles of a chapter package, in the order of the table in its ``__init__`` docstring.
ROLES = ("model", "targets and loss", "inference", "experiment")
#: Chapter modules outside the packages: their helpers are one chapter's, not shared.
CHAPTER_MODULES = ("foundations",)
#: The allowed reuse of an earlier chapter's model: package -> packages whose model it may import.
MODEL_REUSE = {"fse": {"hourglass"}}
#: A chapter that compares itself with an earlier chapter's method runs that method through
#: its public recipe functions (never its data helpers): package -> {module: names}. The
#: Transporter chapter trains and evaluates FSE on its own frames, with FSE's protocol.
BASELINE_REUSE = {"transporter": {"kpedu.fse.experiment": {"make_model", "train_fse", "detect_landmarks"},
                                  "kpedu.fse": {"regression_nme"}}}
#: The checkpoint layer shared by the training loop and the hub.
CHECKPOINT_TRIO = ("kpedu.train", "kpedu.hub", "kpedu.checkpointing")

_ROW = re.compile(r"^\s+(model|targets and loss|inference|experiment)\s*->\s*(\S.*)$")


# ----------------------------------------------------------------------------- helpers


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str | None = None) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for every import in the file (module ``name``, by default
    its place under the repository), at any depth (inside functions too), relative
    imports resolved to absolute module names."""
    name = _module_name(path) if name is None else name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module, [a.name for a in node.names]))
    return out


def _targets(module: str, names: list[str]) -> set[str]:
    """The kpedu modules an import statement reaches: the module itself and, for
    ``from package import name``, the submodule ``package.name`` where it exists."""
    if not module.startswith("kpedu"):
        return set()
    out = {module}
    base = ROOT.joinpath(*module.split("."))
    for n in names:
        if (base / f"{n}.py").is_file() or (base / n / "__init__.py").is_file():
            out.add(f"{module}.{n}")
    return out


def _graph() -> dict[str, set[str]]:
    """kpedu's import graph: module -> the kpedu modules it imports (at any depth)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(KPEDU.rglob("*.py")):
        edges: set[str] = set()
        for _, module, names in _imports(path):
            edges |= _targets(module, names)
        me = _module_name(path)
        graph[me] = {m for m in edges if m != me}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _layout(package: str) -> dict[str, list[str]]:
    """The role table of a chapter package's ``__init__`` docstring: role -> module names
    (notes in parentheses dropped)."""
    doc = ast.get_docstring(ast.parse((KPEDU / package / "__init__.py").read_text(encoding="utf-8"))) or ""
    table: dict[str, list[str]] = {}
    for line in doc.splitlines():
        m = _ROW.match(line)
        if m:
            cells = re.sub(r"\([^)]*\)", "", m.group(2))
            table[m.group(1)] = [c.strip() for c in cells.split(",") if c.strip()]
    return table


# ----------------------------------------------------------------------------- (a) the skeleton


def test_every_package_with_an_experiment_is_listed():
    found = {p.parent.name for p in KPEDU.glob("*/experiment.py")}
    assert found == set(CHAPTER_PACKAGES), "a chapter package is missing from CHAPTER_PACKAGES (or listed wrongly)"


@pytest.mark.parametrize("package", CHAPTER_PACKAGES)
def test_every_chapter_package_has_the_same_skeleton(package):
    folder = KPEDU / package
    assert (folder / "model.py").is_file(), f"kpedu.{package} has no model module"
    assert (folder / "loss.py").is_file() or (folder / "targets.py").is_file(), \
        f"kpedu.{package} has neither a loss nor a targets module"
    assert (folder / "experiment.py").is_file(), f"kpedu.{package} has no experiment module"
    table = _layout(package)
    assert list(table) == list(ROLES), (f"kpedu.{package}'s __init__ docstring must carry the table "
                                        f"'role -> modules' for {ROLES}, found {list(table)}")
    for role, modules in table.items():
        assert modules, f"kpedu.{package}: no module for {role!r}"
        for m in modules:
            assert re.fullmatch(r"[a-z_]+", m) and (folder / f"{m}.py").is_file(), \
                f"kpedu.{package}: {role!r} names {m!r}, which is not a module of the package"
    assert "model" in table["model"]
    assert {"loss", "targets"} & set(table["targets and loss"])
    assert "experiment" in table["experiment"]


def test_the_table_parser_sees_a_broken_table():
    assert _ROW.match("    inference        -> parse, inference")
    assert not _ROW.match("    inference: parse")  # a row must use '->'
    assert _layout("openpose")["inference"] == ["parse", "inference"]
    assert _layout("hourglass")["targets and loss"] == ["loss"]  # the note in parentheses is dropped


# ----------------------------------------------------------------------------- (b) checkpoints


def test_the_import_parser_sees_function_level_and_relative_imports(tmp_path):
    src = "from . import hub\nfrom .files import atomic_open\n\ndef f():\n    from .train import fit\n"
    path = tmp_path / "probe.py"
    path.write_text(src, encoding="utf-8")
    found = {(m, tuple(n)) for _, m, n in _imports(path, "kpedu.probe")}
    assert found == {("kpedu", ("hub",)), ("kpedu.files", ("atomic_open",)), ("kpedu.train", ("fit",))}
    assert _targets("kpedu", ["hub"]) == {"kpedu", "kpedu.hub"}


def test_train_hub_and_checkpointing_import_no_cycle():
    graph = _graph()
    train, hub, ckpt = CHECKPOINT_TRIO
    assert ckpt in graph[train] and ckpt in graph[hub], "kpedu.train and kpedu.hub share kpedu.checkpointing"
    assert hub not in _reachable(graph, train), "kpedu.train imports kpedu.hub (directly or through other modules)"
    assert train not in _reachable(graph, hub), "kpedu.hub imports kpedu.train (directly or through other modules)"
    assert not {train, hub} & _reachable(graph, ckpt), "kpedu.checkpointing imports kpedu.train or kpedu.hub"
    for m in CHECKPOINT_TRIO:
        assert m not in _reachable(graph, m), f"{m} is on an import cycle"


def test_checkpoint_names_are_re_exported_and_the_folder_override_is_one():
    import kpedu.checkpointing as ckpt
    import kpedu.hub as hub
    import kpedu.train as train

    for name in ("save_checkpoint", "load_checkpoint", "CheckpointError", "CheckpointWarning", "unwrap_model"):
        assert getattr(train, name) is getattr(ckpt, name), name
    for name in ("checkpoint_dir", "registry_path", "read_registry", "sha256", "entry", "checkpoint_path"):
        assert getattr(hub, name) is getattr(ckpt, name), name
    assert callable(train.load_or_train)
    old = ckpt.CHECKPOINT_DIR
    try:
        hub.CHECKPOINT_DIR = ROOT / "no-such-folder"
        assert ckpt.CHECKPOINT_DIR == ROOT / "no-such-folder" and hub.checkpoint_dir() == ROOT / "no-such-folder"
        assert hub.entry("openpose-book") is None  # the lookups read the override
    finally:
        hub.CHECKPOINT_DIR = old
    assert hub.CHECKPOINT_DIR is old and hub.entry("openpose-book") is not None


# ----------------------------------------------------------------------------- (c) chapter boundaries


def _cross_chapter_imports(package: str) -> list[tuple[str, int, str, list[str]]]:
    out = []
    for path in sorted((KPEDU / package).rglob("*.py")):
        for line, module, names in _imports(path):
            for target in _targets(module, names):
                parts = target.split(".")
                if len(parts) >= 2 and parts[1] in CHAPTER_PACKAGES + CHAPTER_MODULES and parts[1] != package:
                    out.append((path.relative_to(ROOT).as_posix(), line, target, names))
    return out


def _is_model_reuse(package: str, target: str, names: list[str]) -> bool:
    parts = target.split(".")
    other = parts[1]
    if other not in MODEL_REUSE.get(package, set()):
        return False
    if parts[2:] == ["model"]:
        return True
    if parts[2:] or not names:  # another submodule, or `import kpedu.other` (what it uses is unknown)
        return False
    model = importlib.import_module(f"kpedu.{other}.model")
    return all(n in getattr(model, "__all__", ()) and isinstance(getattr(model, n), type) for n in names)


def _is_baseline_reuse(package: str, target: str, names: list[str]) -> bool:
    allowed = BASELINE_REUSE.get(package, {})
    return target in allowed and bool(names) and set(names) <= allowed[target]


@pytest.mark.parametrize("package", CHAPTER_PACKAGES)
def test_a_chapter_reuses_only_earlier_models(package):
    bad = [f"{file}:{line} imports {target} ({', '.join(names) or 'the module'})"
           for file, line, target, names in _cross_chapter_imports(package)
           if not _is_model_reuse(package, target, names) and not _is_baseline_reuse(package, target, names)]
    assert not bad, "a chapter package imports another chapter's data or experiment helpers:\n" + "\n".join(bad)


def test_the_baseline_exception_is_narrow():
    assert _is_baseline_reuse("transporter", "kpedu.fse.experiment", ["train_fse"])
    assert not _is_baseline_reuse("transporter", "kpedu.fse.experiment", ["make_faces_split"])  # FSE's data helper
    assert not _is_baseline_reuse("transporter", "kpedu.fse.experiment", [])                    # the whole module
    assert not _is_baseline_reuse("d2net", "kpedu.fse.experiment", ["train_fse"])


def test_the_boundary_check_sees_the_allowed_reuse_and_would_refuse_helpers():
    found = _cross_chapter_imports("fse")
    assert any(t == "kpedu.hourglass" and "StackedHourglass" in n for _, _, t, n in found), \
        "the fse -> hourglass model reuse is not seen: the import parser misses function-level imports"
    assert _is_model_reuse("fse", "kpedu.hourglass", ["StackedHourglass"])
    assert _is_model_reuse("fse", "kpedu.hourglass.model", ["Hourglass"])
    assert not _is_model_reuse("fse", "kpedu.hourglass.experiment", ["make_model"])
    assert not _is_model_reuse("fse", "kpedu.hourglass", ["predict_heatmaps"])  # inference, not a model
    assert not _is_model_reuse("hourglass", "kpedu.foundations", ["make_people"])
    assert not _is_model_reuse("openpose", "kpedu.hourglass", ["StackedHourglass"])  # not an allowed pair


# ----------------------------------------------------------------------------- moved names still resolve


MOVED = {
    # old home -> names that moved out of it and are re-exported there
    "kpedu.openpose.experiment": ("predict", "parse_maps", "detect", "upsample_maps", "unflip_maps",
                                  "scene_targets", "flip_permutation", "STRIDE"),
    "kpedu.foundations": ("PeopleTensors", "make_people"),
    "kpedu.train": ("save_checkpoint", "load_checkpoint", "CheckpointError", "CheckpointWarning", "unwrap_model"),
}
NEW_HOME = {
    "predict": "kpedu.openpose.inference", "parse_maps": "kpedu.openpose.inference",
    "detect": "kpedu.openpose.inference", "upsample_maps": "kpedu.openpose.inference",
    "unflip_maps": "kpedu.openpose.inference", "scene_targets": "kpedu.openpose.targets",
    "flip_permutation": "kpedu.openpose.targets", "STRIDE": "kpedu.openpose.targets",
    "PeopleTensors": "kpedu.data.crops", "make_people": "kpedu.data.crops",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_names_are_the_same_objects_in_their_old_modules(old):
    mod = importlib.import_module(old)
    for name in MOVED[old]:
        new = importlib.import_module(NEW_HOME.get(name, "kpedu.checkpointing"))
        assert getattr(mod, name) is getattr(new, name), f"{old}.{name}"


def test_the_openpose_recipe_and_the_role_modules_agree():
    from kpedu.openpose import experiment as E
    from kpedu.openpose.inference import INFERENCE
    from kpedu.openpose.targets import SCENE_TARGETS

    for key, value in INFERENCE.items():
        assert E.RECIPE[key] == value, key
    assert {k: E.RECIPE[k] for k in ("sigma", "limb_width")} == {k: SCENE_TARGETS[k] for k in ("sigma", "limb_width")}
    assert E.RECIPE["paf_min_length"] == SCENE_TARGETS["paf_min_length"]


def _notebook_uses() -> list[tuple[str, str, str]]:
    """``(notebook, module, name)`` for every ``from kpedu.X import name`` and every
    ``alias.name`` of a module imported as ``alias`` in the book's code cells."""
    uses = []
    for nb_path in sorted((ROOT / "book").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        trees = []
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            src = "".join(cell.get("source", []))
            src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())
            try:
                trees.append(ast.parse(src))
            except SyntaxError:
                continue
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kpedu") and not node.level:
                    for a in node.names:
                        sub = f"{node.module}.{a.name}"
                        if importlib.util.find_spec(node.module) and _is_module(sub):
                            aliases[a.asname or a.name] = sub
                        else:
                            uses.append((nb_path.name, node.module, a.name))
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        if a.name.startswith("kpedu") and a.asname:
                            aliases[a.asname] = a.name
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                    uses.append((nb_path.name, aliases[node.value.id], node.attr))
    return uses


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_every_kpedu_name_the_notebooks_use_resolves():
    uses = _notebook_uses()
    assert any(m == "kpedu.openpose.experiment" and n == "parse_maps" for _, m, n in uses), \
        "the notebook scan found no E.parse_maps: it does not see aliased modules"
    missing = sorted({f"{nb}: {m}.{n}" for nb, m, n in uses if not hasattr(importlib.import_module(m), n)})
    assert not missing, "names the notebooks use that kpedu no longer has:\n" + "\n".join(missing)
