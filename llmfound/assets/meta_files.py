"""Meta's ``llama-models`` files read as data: the split pattern and the special tokens of a ``tokenizer.py``.

Source: PyPI ``llama-models==0.3.0`` (asset ``meta-llama-models``, sha256-checked, never installed or imported).
Its ``llama3/tokenizer.py`` and ``llama4/tokenizer.py`` build the Llama 3 / Llama 4 encoders; the two values
llmfound needs from them, the regular expression text is split by before BPE (``pat_str``) and the special
tokens in id order, are read here with :mod:`ast`, evaluating only literals, list concatenation,
``range`` / ``len``, f-strings and list comprehensions (and the file's own one-line helper functions made of
those). Anything else where those values are built raises :class:`~llmfound.errors.AssetError`, so a changed
file is reported, never run. Used by the conversion recipe that builds the ``llama3.1`` and ``llama4``
tokenizers (:mod:`llmfound.assets.recipes`) and by the oracle (:mod:`llmfound.meta.reference`).
"""

from __future__ import annotations

import ast
import os
from contextlib import contextmanager

from llmfound.errors import AssetError, NotDataError

__all__ = ["read_tokenizer_py", "no_tiktoken_cache", "MAX_ITEMS", "MAX_STEPS", "REPAIR"]

MAX_ITEMS = 100_000
"""The longest list or string the reader builds (Meta's files build 256 and 2,048 special tokens)."""
MAX_STEPS = 1_000_000
"""The most expressions one file may make the reader evaluate; past it the file is refused, not run longer."""
REPAIR = "fetch the asset again: llmfound assets fetch meta-llama-models --force"

_steps = [0]


@contextmanager
def no_tiktoken_cache():
    """Within the block, tiktoken reads a BPE file from its path every time: ``TIKTOKEN_CACHE_DIR`` is set to ""
    (tiktoken's own switch). Otherwise ``tiktoken.load.load_tiktoken_bpe`` keeps a copy of every file it reads
    under ``/tmp/data-gym-cache/<sha1 of the path>``, outside the llmfound cache, and returns that copy for the
    same path later: a repaired file would not be read, and anyone who can write /tmp could plant one."""
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    try:
        yield
    finally:
        if old is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


def _sized(value):
    if isinstance(value, (list, str, range)) and len(value) > MAX_ITEMS:
        raise NotDataError(f"a value of {len(value)} items (at most {MAX_ITEMS})")
    return value


def _eval(node: ast.AST, env: dict, self_env: dict):
    _steps[0] += 1
    if _steps[0] > MAX_STEPS:
        raise NotDataError(f"more than {MAX_STEPS} steps")
    return _sized(_eval1(node, env, self_env))


def _eval1(node: ast.AST, env: dict, self_env: dict):
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env, self_env) for e in node.elts]
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise NotDataError(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
        if node.attr in self_env:
            return self_env[node.attr]
        raise NotDataError(f"self.{node.attr}")
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        a, b = _eval(node.left, env, self_env), _eval(node.right, env, self_env)
        if isinstance(node.op, ast.Add) and type(a) is type(b) and isinstance(a, (list, int, str)):
            return a + b
        if isinstance(node.op, ast.Sub) and isinstance(a, int) and isinstance(b, int):
            return a - b
        raise NotDataError("operands")
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue) and (v.format_spec is not None or v.conversion != -1):
                raise NotDataError("a formatted f-string field")
            parts.append(str(_eval(v.value, env, self_env)) if isinstance(v, ast.FormattedValue)
                         else _eval(v, env, self_env))
        return "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        args = [_eval(a, env, self_env) for a in node.args]
        if (node.func.id == "range" and all(isinstance(a, int) for a in args) and 1 <= len(args) <= 3
                and (len(args) < 3 or args[2] != 0)):
            return range(*args)
        if node.func.id == "len" and len(args) == 1 and isinstance(args[0], (list, str)):
            return len(args[0])
        fn = env.get(node.func.id)
        if callable(fn):
            return fn(*args)
        raise NotDataError(node.func.id)
    if (isinstance(node, ast.ListComp) and len(node.generators) == 1 and not node.generators[0].ifs
            and isinstance(node.generators[0].target, ast.Name)):
        gen = node.generators[0]
        seq = _eval(gen.iter, env, self_env)
        if not isinstance(seq, (range, list)) or len(seq) > 100_000:
            raise NotDataError("iterable")
        return [_eval(node.elt, {**env, gen.target.id: x}, self_env) for x in seq]
    raise NotDataError(type(node).__name__)


def _helper(fn: ast.FunctionDef, env: dict):
    """A module function whose body is one ``return EXPR`` (docstring aside), as a Python callable that evaluates
    EXPR in the subset with the arguments bound (defaults included)."""
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    names = [a.arg for a in fn.args.args]
    try:
        defaults = [_eval(d, env, {}) for d in fn.args.defaults]
    except NotDataError:
        return None  # a default that is not data: the helper is not one of the file's data builders

    def call(*args):
        bound = dict(zip(names[len(names) - len(defaults):], defaults))
        bound.update(zip(names, args))
        return _eval(body[0].value, {**env, **bound}, {})

    return call


def read_tokenizer_py(source: str, where: str = "tokenizer.py") -> tuple[str, list[str]]:
    """``(split pattern, special tokens in id order)`` from the text of Meta's ``tokenizer.py``: the value of
    the ``pat_str=`` argument given to ``tiktoken.Encoding`` and the last ``special_tokens`` list built in
    ``Tokenizer.__init__``. Raises :class:`AssetError` naming ``where`` (and the repair command) when either
    cannot be read, when the file asks for more than :data:`MAX_ITEMS` / :data:`MAX_STEPS`, or when a special
    token is listed twice (Meta's own code asserts they are unique)."""
    _steps[0] = 0
    try:
        pattern, specials = _read(source, where)
    except AssetError:
        raise
    except (NotDataError, RecursionError, MemoryError, ValueError, TypeError, OverflowError) as e:
        raise AssetError(f"{where}: the split pattern or the special tokens could not be read as data "
                         f"({type(e).__name__}: {str(e)[:80]}); expected Meta's llama-models 0.3.0 file; "
                         f"{REPAIR}") from None
    if len(set(specials)) != len(specials):
        twice = next(t for t in specials if specials.count(t) > 1)
        raise AssetError(f"{where}: the special token {twice!r} is listed twice; {REPAIR}")
    return pattern, specials


def _read(source: str, where: str) -> tuple[str, list[str]]:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise AssetError(f"{where} is not Python ({e.msg}, line {e.lineno}); {REPAIR}") from None
    env: dict = {}
    cls = None
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            fn = _helper(stmt, env)
            if fn:
                env[stmt.name] = fn
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                env[stmt.targets[0].id] = _eval(stmt.value, env, {})
            except NotDataError:
                pass
        elif isinstance(stmt, ast.ClassDef) and stmt.name == "Tokenizer":
            cls = stmt
    if cls is None:
        raise AssetError(f"{where} has no class Tokenizer; expected Meta's llama-models 0.3.0 file; {REPAIR}")
    self_env: dict = {}
    init = None
    for stmt in cls.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            if isinstance(target, ast.Name) and stmt.value is not None:
                try:
                    self_env[target.id] = _eval(stmt.value, env, {})
                except NotDataError:
                    pass
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            init = stmt
    local: dict = dict(env)
    for stmt in init.body if init else ():  # __init__'s own statements, in order (nothing nested)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                local[stmt.targets[0].id] = _eval(stmt.value, local, self_env)
            except NotDataError:
                local.pop(stmt.targets[0].id, None)
    pattern = None
    calls = [n for n in ast.walk(init) if isinstance(n, ast.Call)] if init else []
    for kw in (kw for call in calls for kw in call.keywords if kw.arg == "pat_str"):
        try:
            pattern = _eval(kw.value, local, self_env)
        except NotDataError:
            pattern = None
    specials = local.get("special_tokens")
    if not isinstance(pattern, str) or not (isinstance(specials, list) and specials
                                            and all(isinstance(t, str) for t in specials)):
        raise AssetError(f"{where}: the split pattern or the special tokens could not be read as data; "
                         f"expected Meta's llama-models 0.3.0 file; {REPAIR}")
    return pattern, specials
