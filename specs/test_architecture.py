"""Lesson: a house a newcomer can find their way in - folders that show the layers, checked, not hoped for.

1. the layers are read from the packages themselves: each top-level module or folder of ``llmfound/`` is a unit,
   and no two units need each other, directly or through others; a unit's layer is one more than the highest
   layer it imports, and docs/specs.md shows exactly that layering (``python specs/test_architecture.py
   --update`` writes it), each unit with its docstring's first line;
2. no import circle between modules either;
3. every name has one home: a module's ``__all__`` lists only names it defines (a package's ``__init__`` lists
   names of its own package, its API), no ``from x import _private`` across modules, and a module inside a
   folder imports its siblings, never its own package's ``__init__`` (that would go round in a circle);
4. every error class lives in ``llmfound/errors.py`` and its name ends in ``Error``;
5. public modules say what their API is (``__all__``), and every name listed there exists;
6. ruff (``[tool.ruff]`` in pyproject.toml) passes, and nothing cites a file outside the repository.
No module has a size limit: a module is one concept, however long (split by concept, never by line count).
"""

from __future__ import annotations

import ast
import functools
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
SIGNALS = {("llmfound.upgrade.doctor", "Skip")}
"""Exception classes that are control flow, not errors: a capability check raises ``Skip`` to say "cannot run
here" (like pytest's own ``Skipped``); it never reaches a user."""


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}
PACKAGES = {_name(p) for p in PACKAGE.rglob("__init__.py")}


def modules() -> list[str]:
    """Every module of the package as a dotted name (a folder's ``__init__`` under the folder's name), except
    ``llmfound`` itself and ``__main__`` (the package's surface, above all layers)."""
    return sorted(n for n in FILES if n != "llmfound")


def unit(module: str) -> str:
    """The top-level module or folder a module belongs to: ``llmfound.chat.rendering`` -> ``chat``."""
    return module.split(".")[1]


@functools.cache
def _tree(module: str) -> ast.Module:
    """``module``'s syntax tree, parsed once per test process (the specs only read it)."""
    return ast.parse(FILES[module].read_text(encoding="utf-8"))


@functools.cache
def _imports(module: str) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    """``(imported module, names, line)`` for every llmfound import in ``module``, at module level or inside a
    function (each is a real dependency); relative imports resolved. Computed once per module and process."""
    tree = _tree(module)
    here = module.split(".") if module in PACKAGES else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                target = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            if target == "llmfound" or target.startswith("llmfound."):
                out.append((target, tuple(a.name for a in node.names), node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, (), node.lineno) for a in node.names if a.name.startswith("llmfound.")]
    return tuple(out)


def _resolve(target: str, names: tuple[str, ...]) -> list[str]:
    """The modules an import statement loads: a submodule named in ``from package import sub`` counts as such."""
    found = [f"{target}.{n}" for n in names if f"{target}.{n}" in FILES]
    rest = [n for n in names if f"{target}.{n}" not in FILES]
    if target in FILES and (rest or not names):
        found.append(target)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {llmfound module it imports: first line number} (the package's own ``__init__`` excluded)."""
    graph = {}
    for m in modules():
        deps: dict[str, int] = {}
        for target, names, line in _imports(m):
            for d in _resolve(target, names):
                if d != m and d != "llmfound":
                    deps.setdefault(d, line)
        graph[m] = deps
    return graph


def unit_graph() -> dict[str, dict[str, str]]:
    """unit -> {unit it imports: "module:line" of the first such import}."""
    out: dict[str, dict[str, str]] = {}
    for m, deps in import_graph().items():
        row = out.setdefault(unit(m), {})
        for d, line in deps.items():
            if unit(d) != unit(m):
                row.setdefault(unit(d), f"{FILES[m].relative_to(ROOT)}:{line}")
    return out


def cycle(graph: dict) -> list[str] | None:
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


def layering() -> list[tuple[int, list[str]]]:
    """``[(layer, [unit, ...]), ...]`` from the bottom: a unit importing no other unit is layer 0, any other one
    more than the highest layer it imports."""
    graph = unit_graph()
    depth: dict[str, int] = {}

    def d(u: str) -> int:
        if u not in depth:
            depth[u] = 1 + max((d(v) for v in graph[u]), default=-1)
        return depth[u]

    for u in graph:
        d(u)
    return [(k, sorted(u for u in depth if depth[u] == k)) for k in range(max(depth.values()) + 1)]


def _summary(u: str) -> str:
    doc = ast.get_docstring(_tree(f"llmfound.{u}")) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".")
    head = first.split(": ")[0]
    return head if len(head) <= 60 else head[:57].rsplit(" ", 1)[0] + " ..."


def layers_markdown() -> str:
    """docs/specs.md's layer table, from the code: one row per layer (top first), each unit with its docstring's
    first sentence; a folder's name ends in ``/``."""
    rows = ["| layer | units (a folder ends in `/`): what each is |", "|---|---|"]
    for k, units in reversed(layering()):
        cells = "; ".join(f"`{u}{'/' if f'llmfound.{u}' in PACKAGES else ''}` ({_summary(u)})" for u in units)
        rows.append(f"| {k} | {cells} |")
    return "\n".join(rows) + "\n"


def _page_layers() -> str:
    page = (ROOT / "docs" / "specs.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- layers -->\n(.*?)<!-- /layers -->", page, re.S)
    assert m, "docs/specs.md: the layer table between <!-- layers --> and <!-- /layers --> is missing"
    return m.group(1)


def test_units_form_layers_no_two_units_need_each_other():
    graph = unit_graph()
    found = cycle(graph)
    where = found and ", ".join(f"{a} -> {b} ({graph[a][b]})" for a, b in zip(found, found[1:]))
    assert found is None, f"units that need each other (a folder or module importing one that imports it): {where}"


def test_the_documented_layers_are_the_code_s():
    assert _page_layers() == layers_markdown(), ("docs/specs.md's layer table differs from the code's layering; "
                                                 "rewrite it: python specs/test_architecture.py --update")


def test_there_is_no_import_circle():
    graph = import_graph()
    found = cycle(graph)
    where = found and ", ".join(f"{a} -> {b} ({FILES[a].relative_to(ROOT)}:{graph[a][b]})"
                                for a, b in zip(found, found[1:]))
    assert found is None, f"import circle: {where}"


def test_the_circle_finder_finds_a_circle():
    """The checks above can fail: a graph with a circle is reported as one."""
    assert cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b": 1}, "b": {}}) is None


def test_no_private_name_is_imported_across_modules():
    found = [f"{FILES[m].relative_to(ROOT)}:{line} imports {n} from {target}" for m in modules()
             for target, names, line in _imports(m) for n in names if n.startswith("_") and n != "__version__"]
    assert not found, "private names used across modules (give them a public name where they live):\n" + \
        "\n".join(found)


def test_a_module_in_a_folder_imports_its_siblings_not_its_own_package():
    found = [f"{FILES[m].relative_to(ROOT)}:{line} imports {names} from its own package {target}"
             for m in modules() if m not in PACKAGES and m.count(".") >= 2
             for target, names, line in _imports(m)
             if target == m.rsplit(".", 1)[0] and any(f"{target}.{n}" not in FILES for n in names)]
    assert not found, "\n".join(found)


def _defined(module: str) -> set[str]:
    out: set[str] = set()
    for node in _tree(module).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


@pytest.mark.parametrize("module", [m for m in modules() if m != "llmfound.lessons"])
def test_every_name_has_one_home(module):
    """A module's ``__all__`` lists only what it defines (no re-export shims); a package's ``__init__`` lists only
    names defined in its own folder (its API)."""
    listed = importlib.import_module(module).__all__
    if module in PACKAGES:  # read where the __init__ imports each name from (an object's __module__ can lie)
        tree = _tree(module)
        home = {a.asname or a.name: node.module for node in tree.body if isinstance(node, ast.ImportFrom)
                for a in node.names}
        foreign = [n for n in listed if n not in _defined(module) and f"{module}.{n}" not in FILES
                   and not (home.get(n) or "").startswith(module + ".")]
        assert not foreign, f"{FILES[module].relative_to(ROOT)}: __all__ exports names from outside {module}: {foreign}"
    else:
        foreign = sorted(set(listed) - _defined(module))
        assert not foreign, (f"{FILES[module].relative_to(ROOT)}: __all__ lists names it does not define (import "
                             f"them from their home instead): {foreign}")


def _exception_classes():
    for name in ["llmfound", *modules()]:
        mod = importlib.import_module(name)
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


def test_errors_py_draws_its_class_tree_as_the_code_has_it_and_exit_codes_follow_it():
    """llmfound/errors.py opens with its classes as a tree (as httpx's ``_exceptions.py`` does); the drawing is the
    code's hierarchy, and an exit status is set on a class only where the tree's drawing says so (three bases):
    every other class inherits its nearest ancestor's."""
    from llmfound import errors

    doc = errors.__doc__
    drawn = re.findall(r"^    ((?:[│ ]   |[├└]── )*)(\w+Error)", doc, re.M)
    parents: dict[str, str] = {}
    stack: list[str] = []
    for prefix, name in drawn:
        depth = len(prefix) // 4
        stack[depth:] = [name]
        if depth:
            parents[name] = stack[depth - 1]
    classes = {n: c for m, n, c in _exception_classes() if m == "llmfound.errors"}
    assert set(classes) == {n for _, n in drawn}, (f"errors.py's drawing names {sorted(n for _, n in drawn)}, the "
                                                   f"module defines {sorted(classes)}")
    for name, cls in classes.items():
        bases = [b.__name__ for b in cls.__bases__ if b.__name__ in classes]
        assert bases == ([parents[name]] if name in parents else []), (name, bases, parents.get(name))
    own = sorted(n for n, c in classes.items() if "exit_code" in vars(c))
    drawn_with = sorted(n for n in re.findall(r"(\w+Error) +exit \d", doc))
    assert own == drawn_with, f"exit_code set on {own}; the drawing marks {drawn_with}"


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


@pytest.mark.parametrize("module", [m for m in modules() if m != "llmfound.lessons"])
def test_public_modules_list_their_api_and_every_listed_name_exists(module):
    mod = importlib.import_module(module)
    listed = getattr(mod, "__all__", None)
    where = FILES[module].relative_to(ROOT)
    assert listed is not None, f"{where}: expected an __all__ naming its public API"
    absent = [n for n in listed if not hasattr(mod, n)]
    assert not absent, f"{where}: __all__ names what the module lacks: {absent}"


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
    files = [*PACKAGE.rglob("*.py"), *ROOT.glob("specs/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md",
             *ROOT.glob("benchmarks/*"), ROOT / "conftest.py", ROOT / "pyproject.toml"]
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in files if p.is_file() and p != Path(__file__).resolve()
            for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, f"citations of files outside the repository (state the fact in docs/ instead): {hits}"


if __name__ == "__main__":  # python specs/test_architecture.py --update: write the layer table into docs/specs.md
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python specs/test_architecture.py --update")
    sys.path.insert(0, str(ROOT))
    page = ROOT / "docs" / "specs.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace(_page_layers(), layers_markdown()), encoding="utf-8")
    print(layers_markdown())


def _spec_map() -> list[tuple[str, list[str]]]:
    text = (ROOT / "docs" / "specs.md").read_text(encoding="utf-8")
    block = text.split("<!-- spec-map -->")[1].split("<!-- /spec-map -->")[0]
    rows = [line.split("|") for line in block.splitlines() if line.startswith("| `")]
    return [(r[1].strip().strip("`"), re.findall(r"`([^`]+)`", r[3])) for r in rows]


def test_docs_say_truthfully_which_code_each_spec_teaches():
    """docs/specs.md maps each lesson spec to the code it teaches: every spec file is listed, every path named
    exists, and every unit of the package is taught by at least one spec."""
    table = _spec_map()
    listed = {spec for spec, _ in table}
    on_disk = {f"specs/{p.name}" for p in (ROOT / "specs").glob("test_*.py")}
    assert listed == on_disk, (f"docs/specs.md spec map: missing {sorted(on_disk - listed)}, "
                               f"not on disk {sorted(listed - on_disk)}")
    paths = [path for _, code in table for path in code]
    gone = [path for path in paths if not (ROOT / path.rstrip("/")).exists()]
    assert not gone, f"docs/specs.md spec map names paths that do not exist: {gone}"
    taught = {path.split("/")[1].removesuffix(".py") for path in paths if path.startswith("llmfound/")}
    untaught = sorted({u.split(".")[1] for u in modules() if u.count(".") >= 1} - taught - {"__main__"})
    assert not untaught, f"docs/specs.md spec map: no spec teaches these units of llmfound/: {untaught}"


def test_a_short_module_alias_means_one_module_everywhere():
    """``Q`` is quantization in every file that uses it: a short alias (up to three capitals) for a module never
    names another module elsewhere (it read as side_envs in one spec and synthetic in another)."""
    seen: dict[str, set[str]] = {}
    for folder in ("llmfound", "specs", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    base = f"{node.module}." if isinstance(node, ast.ImportFrom) and node.module else ""
                    for a in node.names:
                        if a.asname and re.fullmatch(r"[A-Z]{1,3}", a.asname):
                            seen.setdefault(a.asname, set()).add((base + a.name).removeprefix("llmfound."))
    clashes = {alias: sorted(names) for alias, names in seen.items() if len(names) > 1}
    assert not clashes, f"short aliases naming more than one module: {clashes}"
