"""No notebook and no test asserts on a wall-clock time.

A time measured on a shared or slower machine is noise, not a property of the code:
an assert such as ``net.max() < 1.5 * net.min()`` on milliseconds fails on a busy
laptop and takes the whole book build down with it. Claims about speed are shown as
measurements (beside the machine's matmul speed from ``kpedu.bench``) or asserted on a
deterministic proxy (FLOPs, operation counts, numbers of network calls).

The check is a small taint analysis over the Python of each notebook (all code cells in
order) and each test module:

- *sources* are calls that read a clock or return timings (``time.perf_counter``,
  ``time.time``, ``timeit``, ``kpedu.bench.time_call`` / ``benchmark`` / ``throughput``
  / ``matmul_throughput``, chapter helpers such as ``timing`` and ``extraction_cost``)
  and subscripts or attributes whose key names a time (``"seconds"``, ``network_s``,
  ``.samples_per_second``, ``"images_per_s"``, ``elapsed`` ...);
- a name assigned from an expression that uses a source or a tainted name is tainted,
  and so is a container that such a value is appended, inserted or stored into, a loop
  variable over a tainted iterable, and any function whose body uses a source (its
  calls become sources);
- an ``assert`` fails the check when it *orders* a tainted value (``<``, ``<=``, ``>``,
  ``>=``) against anything but the literal 0. Positivity (``seconds > 0``) and equality
  between two quantities derived from one measurement say nothing about speed and are
  allowed.

The analysis is deliberately conservative (it ignores scopes and order), and the tests
at the bottom run it on known bad and good snippets, so a checker that accepts
everything fails too.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from test_book_structure import code_cells, notebooks, parse_cell

ROOT = Path(__file__).resolve().parents[1]

# Calls (the last part of the callee's dotted name) that read a clock or return timings.
TIMING_CALLS = {
    "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "process_time",
    "process_time_ns", "thread_time", "time_ns", "timeit", "default_timer",
    "time_call", "benchmark", "throughput", "matmul_throughput", "timing", "extraction_cost",
}
# Keys and attribute names that hold a time or a speed.
TIMING_KEY = re.compile(
    r"(^|_)(seconds?|secs?|ms|elapsed|duration|latency|fps|timings?|times)($|_)"
    r"|.+_s$|per_s(ec(ond)?)?($|_)|(achieved|matmul)_gflops|throughput|fraction_of_peak",
    re.IGNORECASE,
)
# Fields that hold counts or metrics, not times, in records that also hold times (a
# benchmark's parameter and FLOP counts, a training history, an evaluation's metrics):
# reading one of these by name from a tainted record gives a clean value.
CLEAN_FIELD = re.compile(
    r"(history|logs|loss|curve|metrics|params|gflops_per_image|g?flops|peak_mb|found|people|batch_size|"
    r"mode|device|nme|mma|ap\w*|ar|accuracy|spread|equivariance|(n|num)_\w+|count\w*)$",
    re.IGNORECASE,
)
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "__setitem__"}


def _callee(node: ast.Call) -> tuple[str, str | None]:
    """(last name, module-ish prefix) of a call's function: time.time() -> ('time', 'time')."""
    f = node.func
    if isinstance(f, ast.Attribute):
        base = f.value.id if isinstance(f.value, ast.Name) else None
        return f.attr, base
    if isinstance(f, ast.Name):
        return f.id, None
    return "", None


def _base_name(node: ast.AST) -> str | None:
    """The variable an assignment target writes to: x, x[i], x.a, x[i].b -> 'x'."""
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.Tuple, ast.List)):
        return set().union(*(_target_names(e) for e in node.elts)) if node.elts else set()
    name = _base_name(node)
    return {name} if name else set()


class _Flow:
    """Flow-sensitive taint: statements are visited in order, an assignment from a clean
    value cleans the name again, branches are merged, loop bodies run twice, and every
    function body gets its own scope (a function whose return value is tainted becomes
    a source)."""

    def __init__(self) -> None:
        self.functions: set[str] = set(TIMING_CALLS)
        self.found: list[tuple[int, str]] = []

    def is_source_call(self, node: ast.Call) -> bool:
        name, base = _callee(node)
        if name == "time":
            return base == "time"
        return name in self.functions

    def tainted(self, expr: ast.AST | None, env: set[str]) -> bool:
        """Does ``expr`` use a clock, a timing key or a tainted name?"""
        if expr is None:
            return False
        return self._dirty(expr, env | self._comprehension_names(expr, env))

    def _dirty(self, node: ast.AST, env: set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in env
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                if TIMING_KEY.search(key.value):
                    return True
                if CLEAN_FIELD.match(key.value):
                    return False  # a count or a metric read by name from a record that also holds times
            return self._dirty(node.value, env) or self._dirty(key, env)
        if isinstance(node, ast.Attribute):
            if TIMING_KEY.search(node.attr):
                return True
            if CLEAN_FIELD.match(node.attr):
                return False
            return self._dirty(node.value, env)
        if isinstance(node, ast.Call) and self.is_source_call(node):
            return True
        if isinstance(node, ast.Dict):  # keys are labels; the values decide
            return any(self._dirty(v, env) for v in node.values)
        if isinstance(node, ast.DictComp):
            return self._dirty(node.value, env)
        return any(self._dirty(child, env) for child in ast.iter_child_nodes(node))

    def _comprehension_names(self, expr: ast.AST, env: set[str]) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(expr):
            if isinstance(node, ast.comprehension) and self._dirty(node.iter, env | names):
                names |= _target_names(node.target)
        return names

    # -------------------------------------------------------------- statements
    def block(self, stmts: list[ast.stmt], env: set[str], returns: list[bool] | None = None) -> set[str]:
        for stmt in stmts:
            env = self.statement(stmt, env, returns)
        return env

    def _assign(self, target: ast.AST, dirty: bool, env: set[str]) -> set[str]:
        env = set(env)
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                env = self._assign(elt, dirty, env)
        elif isinstance(target, ast.Name):
            (env.add if dirty else env.discard)(target.id)
        elif dirty and (name := _base_name(target)):
            env.add(name)  # storing a time into a container taints it; a clean store does not clean it
        return env

    def statement(self, stmt: ast.stmt, env: set[str], returns: list[bool] | None) -> set[str]:
        if isinstance(stmt, ast.Assert):
            self.check(stmt, env)
        for node in ast.walk(stmt):  # list.append(time) and friends, anywhere in the statement
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in _MUTATORS and any(self.tainted(a, env) for a in node.args):
                if name := _base_name(node.func.value):
                    env = env | {name}
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local: list[bool] = []
            params = {a.arg for a in ast.walk(stmt.args) if isinstance(a, ast.arg)}
            self.block(stmt.body, env - params, local)
            if any(local):
                self.functions.add(stmt.name)
            return env
        if isinstance(stmt, ast.ClassDef):
            self.block(stmt.body, set(env))
            return env
        if isinstance(stmt, ast.Return):
            if returns is not None:
                returns.append(self.tainted(stmt.value, env))
            return env
        if isinstance(stmt, ast.Assign):
            dirty = self.tainted(stmt.value, env)
            for t in stmt.targets:
                env = self._assign(t, dirty, env)
            return env
        if isinstance(stmt, ast.AnnAssign):
            return self._assign(stmt.target, self.tainted(stmt.value, env), env) if stmt.value else env
        if isinstance(stmt, ast.AugAssign):
            dirty = self.tainted(stmt.value, env) or self.tainted(stmt.target, env)
            return self._assign(stmt.target, dirty, env) if dirty else env
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            out = set(env)
            for _ in range(2):  # twice: what the first pass taints reaches the second
                inner = self._assign(stmt.target, self.tainted(stmt.iter, out), out)
                out |= self.block(stmt.body, inner, returns)
            return out | self.block(stmt.orelse, out, returns)
        if isinstance(stmt, ast.While):
            out = set(env)
            for _ in range(2):
                out |= self.block(stmt.body, out, returns)
            return out | self.block(stmt.orelse, out, returns)
        if isinstance(stmt, ast.If):
            return self.block(stmt.body, env, returns) | self.block(stmt.orelse, env, returns)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    env = self._assign(item.optional_vars, self.tainted(item.context_expr, env), env)
            return self.block(stmt.body, env, returns)
        if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            out = self.block(stmt.body, env, returns)
            for handler in stmt.handlers:
                out |= self.block(handler.body, env, returns)
            out = self.block(stmt.orelse, out, returns)
            return self.block(stmt.finalbody, out, returns)
        return env

    def check(self, node: ast.Assert, env: set[str]) -> None:
        scope = env | self._comprehension_names(node.test, env)
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            operands = [cmp.left, *cmp.comparators]
            for op, left, right in zip(cmp.ops, operands, operands[1:]):
                if not isinstance(op, _ORDERING):
                    continue
                if (self.tainted(left, scope) and not _is_zero(right)) or \
                        (self.tainted(right, scope) and not _is_zero(left)):
                    self.found.append((node.lineno, ast.unparse(node.test)))
                    return


def _is_zero(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 0


def timing_asserts(source: str | ast.Module) -> list[tuple[int, str]]:
    """(line, text) of every assert that orders a wall-clock time against a bound."""
    tree = ast.parse(source) if isinstance(source, str) else source
    flow = _Flow()
    flow.block(tree.body, set())
    return flow.found


def notebook_tree(nb: dict) -> ast.Module:
    """All code cells of a notebook, in order, as one module (magics neutralised)."""
    body = []
    for src in code_cells(nb):
        tree = parse_cell(src)
        if tree is not None:
            body.extend(tree.body)
    return ast.Module(body=body, type_ignores=[])


def _test_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name)


# ----------------------------------------------------------------------------- the scan
@pytest.mark.parametrize("path", notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_asserts_no_wall_clock_time(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = timing_asserts(notebook_tree(nb))
    assert not found, f"{path.name} asserts on measured times (show them, or assert a FLOP or operation count):\n" + \
        "\n".join(f"  {text}" for _, text in found)


@pytest.mark.parametrize("path", _test_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_test_module_asserts_no_wall_clock_time(path):
    found = timing_asserts(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name} asserts on measured times:\n" + \
        "\n".join(f"  line {line}: {text}" for line, text in found)


# ------------------------------------------------------------------ the checker itself
BAD = {
    "best-of helper": """
import time
def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)
timing = {"a": []}
for n in range(3):
    timing["a"].append(best_time(lambda: n, 3))
td = np.array(timing["a"])
assert td[-1] > 2 * td[0], "grows"
""",
    "dict of timings": """
import time
timings = {}
for size in (64, 256):
    t0 = time.perf_counter()
    timings[size] = time.perf_counter() - t0
assert timings[64] < timings[256]
""",
    "library timing result": """
timing = E.timing(model, (1, 2, 5))
net = np.array(timing["network_s"])
assert net.max() / net.min() < 1.5
""",
    "time_call": """
from kpedu.bench import time_call
cost = {}
for label in ("a", "b"):
    cost[label] = (1000 * time_call(lambda: None), 2)
assert cost["a"][0] > 2 * cost["b"][0]
""",
    "benchmark rows": """
rows = {"x": bench.benchmark(model, (3, 8, 8))}
assert all(0 < r["fraction_of_peak"] < 1.5 for r in rows.values())
""",
    "timing key": """
costs = {k: E.cost(k) for k in "ab"}
assert costs["a"]["seconds"] > costs["b"]["seconds"]
""",
    "time.time": """
import time
t0 = time.time()
run()
elapsed = time.time() - t0
assert elapsed < 2.0
""",
    "history attribute": """
history = fit(model)
assert history.samples_per_second >= 100
""",
}
GOOD = {
    "positivity": """
r = bench.throughput(model, (3, 8, 8))
assert r["images_per_s"] > 0 and r["seconds_per_batch"] > 0
""",
    "consistency": """
r = bench.throughput(model, (3, 8, 8))
assert r["images_per_s"] == pytest.approx(2 / r["seconds_per_batch"])
""",
    "flop counts": """
flops = [count_flops(net, torch.rand(1, 3, s, s)) for s in (64, 128)]
assert flops[1] == 4 * flops[0]
n_calls = len(boxes)
assert n_calls > 1
""",
    "memory": """
costs = {k: E.memory(k) for k in "ab"}
assert costs["a"]["peak_mb"] > costs["b"]["peak_mb"]
""",
    "labels of a timed record": """
ablation = {}
for variant in ("a", "b"):
    ablation[variant] = {"spread": spread(variant), "seconds_per_step": time_call(step)}
sp = {v: a["spread"] for v, a in ablation.items()}
assert sp["a"] < 0.25 * sp["b"]
assert ablation["a"]["nme"] < ablation["b"]["nme"]
""",
    "soft detection s": """
terms = soft_detection_terms(x)
assert terms["s"].max() <= 1
""",
    "shown, not asserted": """
import time
t0 = time.perf_counter()
run()
print(f"{time.perf_counter() - t0:.2f} s")
assert len(out) == 3
""",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_checker_finds_timing_asserts(name):
    assert timing_asserts(BAD[name]), f"the checker missed the timing assert in {name!r}"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_checker_accepts_other_asserts(name):
    assert timing_asserts(GOOD[name]) == [], name
