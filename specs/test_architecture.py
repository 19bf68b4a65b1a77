"""Lesson: a house a newcomer can find their way in - layers you can state in one line, checked, not hoped for.

1. the layers: docs/specs.md's table puts every module of ``llmfound/`` in exactly one layer, and every import
   (function-level ones too) goes to the same layer or one below: CLI -> commands -> capabilities -> families
   -> assets -> base;
2. no import circle: no two modules need each other, directly or through others;
3. no module so large a reader loses the thread (450 lines at most);
4. every error class lives in ``llmfound/errors.py`` and its name ends in ``Error``;
5. public modules say what their API is (``__all__``), and every name listed there exists;
6. ruff (``[tool.ruff]`` in pyproject.toml) passes, and nothing cites a file outside the repository.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llmfound"
MAX_LINES = 450
SIGNALS = {("llmfound.doctor", "Skip")}
"""Exception classes that are control flow, not errors: a capability check raises ``Skip`` to say "cannot run
here" (like pytest's own ``Skipped``); it never reaches a user."""


def modules() -> list[str]:
    """Every module of the package but ``__init__`` / ``__main__`` (the package's surface, above all layers)."""
    return sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__"))


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {llmfound module it imports: first line number}, from the source (every ``import`` statement,
    at module level or inside a function: each is a real dependency)."""
    graph = {}
    for name in modules():
        deps: dict[str, int] = {}
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llmfound"):
                parts = node.module.split(".")
                targets = parts[1:2] or [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("llmfound.")]
            for t in targets:
                t = t.split(".")[0]
                if t != name and (PACKAGE / f"{t}.py").exists():
                    deps.setdefault(t, node.lineno)
        graph[name] = deps
    return graph


def layers() -> list[tuple[str, list[str]]]:
    """The layer table of docs/specs.md (between ``<!-- layers -->`` markers), top layer first:
    ``[(layer, [module, ...]), ...]``; a module is each backquoted name at the start of a comma-separated item."""
    page = (ROOT / "docs" / "specs.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- layers -->\n(.*?)<!-- /layers -->", page, re.S)
    assert m, "docs/specs.md: the layer table between <!-- layers --> and <!-- /layers --> is missing"
    out = []
    for row in m.group(1).splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        mods = re.findall(r"(?:^|, )`(\w+)`", re.sub(r"\([^)]*\)", "", cells[1]))
        out.append((cells[0], mods))
    return out


def cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in graph[v]:
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in graph:
        if v not in state and (found := visit(v)):
            return found
    return None


def test_every_module_sits_in_exactly_one_layer_of_the_documented_table():
    placed = [m for _, mods in layers() for m in mods]
    doubled = sorted({m for m in placed if placed.count(m) > 1})
    assert not doubled, f"docs/specs.md layer table: modules in two layers: {doubled}"
    missing, gone = sorted(set(modules()) - set(placed)), sorted(set(placed) - set(modules()))
    assert not missing and not gone, (f"docs/specs.md layer table: expected every module of llmfound/ once; "
                                      f"missing from the table: {missing}; in the table but not a module: {gone}")


def test_every_import_goes_to_the_same_layer_or_one_below():
    rank = {m: i for i, (_, mods) in enumerate(layers()) for m in mods}
    names = [name for name, _ in layers()]
    upward = [f"llmfound/{a}.py:{line} imports {b} ({names[rank[a]]} -> {names[rank[b]]})"
              for a, deps in import_graph().items() for b, line in deps.items() if rank[b] < rank[a]]
    assert not upward, ("imports that go up a layer (expected " + " -> ".join(names) + "):\n" + "\n".join(upward))


def test_there_is_no_import_circle():
    graph = import_graph()
    found = cycle(graph)
    where = found and ", ".join(f"{a} -> {b} (llmfound/{a}.py:{graph[a][b]})" for a, b in zip(found, found[1:]))
    assert found is None, f"import circle: {where}"


def test_the_circle_finder_finds_a_circle():
    """The check above can fail: a graph with a circle is reported as one."""
    assert cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b": 1}, "b": {}}) is None


@pytest.mark.parametrize("module", modules())
def test_no_module_is_so_large_a_reader_loses_the_thread(module):
    n = len((PACKAGE / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"llmfound/{module}.py: expected at most {MAX_LINES} lines, got {n}; split it by field term"


def _exception_classes():
    for name in ["__init__", *modules()]:
        mod = importlib.import_module("llmfound" if name == "__init__" else f"llmfound.{name}")
        for cls_name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == mod.__name__:
                yield mod.__name__, cls_name, cls


def test_every_error_class_lives_in_errors_and_ends_in_error():
    misplaced = [f"{m}.{n}" for m, n, _ in _exception_classes() if m != "llmfound.errors" and (m, n) not in SIGNALS]
    assert not misplaced, f"error classes outside llmfound/errors.py (move them there): {misplaced}"
    from llmfound import errors

    badly_named = [n for m, n, _ in _exception_classes() if m == "llmfound.errors" and not n.endswith("Error")]
    assert not badly_named, f"llmfound/errors.py: expected every class name to end in 'Error', got {badly_named}"
    assert all(issubclass(c, errors.LlmfoundError) for m, _, c in _exception_classes() if m == "llmfound.errors")


def test_the_exit_code_table_covers_every_error_class_s_exit_code():
    from llmfound import errors

    codes = {c.exit_code for _, _, c in _exception_classes() if issubclass(c, errors.LlmfoundError)}
    missing = sorted(codes - set(errors.EXIT_CODES))
    assert not missing, f"exit codes without a row in errors.EXIT_CODES: {missing}"
    cli_page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    undocumented = [c for c in errors.EXIT_CODES if not re.search(rf"^\| {c}(-\d+)? \|", cli_page, re.M)
                    and not any(lo <= c <= hi for lo, hi in
                                ((int(a), int(b)) for a, b in re.findall(r"^\| (\d+)-(\d+) \|", cli_page, re.M)))]
    assert not undocumented, f"docs/cli.md's exit-code table lacks: {undocumented}"


@pytest.mark.parametrize("module", [m for m in modules() if m != "lessons"])
def test_public_modules_list_their_api_and_every_listed_name_exists(module):
    mod = importlib.import_module(f"llmfound.{module}")
    listed = getattr(mod, "__all__", None)
    assert listed is not None, f"llmfound/{module}.py: expected an __all__ naming its public API"
    absent = [n for n in listed if not hasattr(mod, n)]
    assert not absent, f"llmfound/{module}.py: __all__ names what the module lacks: {absent}"


def test_ruff_passes():
    """ruff with the project's configuration (``[tool.ruff]``: the rules the code's ``noqa`` comments name)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: it is part of the test extra (pip install -e '.[test]')"
    r = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", "llmfound", "specs",
                        "benchmarks", "conftest.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"ruff check found problems:\n{r.stdout}{r.stderr}"


def test_nothing_cites_a_file_outside_the_repository():
    """Every fact the code relies on is written inside the repository (docs/sources.md), so a reader can check
    it; a path such as ../shared/... would point at nothing in a clone."""
    pattern = re.compile(r"FIELD_NOTES|\.\./shared/|shared/STYLE")
    files = [*PACKAGE.glob("*.py"), *ROOT.glob("specs/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md",
             *ROOT.glob("benchmarks/*"), ROOT / "conftest.py", ROOT / "pyproject.toml"]
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in files if p.is_file() and p != Path(__file__).resolve()
            for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, f"citations of files outside the repository (state the fact in docs/ instead): {hits}"
