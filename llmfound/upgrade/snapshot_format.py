"""What a snapshot file may hold, checked whole before anything is computed from it.

A baseline is a file someone may have edited by hand, and the upgrade gate spends minutes per candidate before
it compares: a value that crashes the comparison (a 400-digit perplexity overflows a float) or that no new
value can differ from (``Infinity`` is within any relative tolerance of anything) must be refused when the file
is read. :func:`parse` reads the JSON without converting what Python cannot (an integer of thousands of digits)
and keeps NaN / Infinity visible; :func:`problem` walks the result without recursion and names the first value
out of bounds (nesting, magnitude, finiteness) or not of its section's kind (:data:`KINDS`).
:func:`llmfound.upgrade.snapshot.load` turns that into one :class:`~llmfound.errors.SnapshotError` line.
"""

from __future__ import annotations

import fnmatch
import json
import math
from typing import Any, Callable, Iterator

__all__ = ["KINDS", "MAX_BYTES", "MAX_DEPTH", "MAX_MAGNITUDE", "parse", "problem", "describe", "sane_number",
           "unmeasured"]

KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "ids": (("*", "token ids"),),
    "special_tokens": (("*_token", "text or null"), ("*_id", "a token id or null"), ("len", "a count"),
                       ("*", "token ids")),
    "templates": (("*", "a render"),),
    "wild_templates": (("*", "a render"),),
    "model": (("bytes", "a count"), ("analytic footprint", "a count"), ("ids", "token ids"), ("text", "text"),
              ("*", "JSON")),
    "pipelines": (("cosines", "numbers"), ("*", "JSON")),
    "quality": (("*", "a number"),),
}
"""Section -> ``(behaviour pattern, kind)`` pairs (``fnmatch`` patterns; the first that matches decides): what
each section of :data:`llmfound.upgrade.sections.SECTIONS` records. A subject's error
(:data:`llmfound.upgrade.sections.ERROR`) is text in every section. A new section gets its row here (a spec checks
both tables name the same sections)."""

MAX_BYTES = 64 * 2**20
"""Largest snapshot file read, in bytes (the shipped baseline is about a hundredth of it)."""
MAX_DEPTH = 32
"""Deepest nesting of maps and lists a snapshot may hold (the shipped baseline: 8)."""
MAX_MAGNITUDE = 10**18
"""Largest absolute value of a number in a snapshot (token ids, bytes, perplexities), and the range within
which :func:`llmfound.upgrade.sections.within_tolerance` compares."""


def sane_number(v: Any) -> bool:
    """True for a number (not a bool) that is finite and within :data:`MAX_MAGNITUDE`: safe to subtract and scale
    (a float times a 400-digit int raises OverflowError; NaN and infinities are no measurement)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "token ids": lambda v: isinstance(v, list) and all(_is_id(x) for x in v),
    "a token id or null": lambda v: v is None or _is_id(v),
    "a count": lambda v: _is_id(v) and v >= 0,
    "text": lambda v: isinstance(v, str),
    "text or null": lambda v: v is None or isinstance(v, str),
    "a render": lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v),
    "a number": sane_number,
    "numbers": lambda v: isinstance(v, list) and all(sane_number(x) for x in v),
    "JSON": lambda v: True,
}
_SHAPES = {"a render": 'a render: [state, text] ("ok", "raises"; "agree", "differs")',
           "token ids": "a list of token ids",
           "numbers": "a list of numbers"}


class _Unread(str):
    """What the JSON spelled where a snapshot can hold no number: NaN, Infinity, or an integer of more digits
    than :data:`MAX_MAGNITUDE` has (Python refuses to convert 4,300 digits or more). Kept as its text, so that
    :func:`problem` names where it is."""


def _parse_int(digits: str) -> int | _Unread:
    return int(digits) if len(digits.lstrip("-")) <= len(str(MAX_MAGNITUDE)) else _Unread(digits)


def _parse_float(text: str) -> float | _Unread:
    x = float(text)
    return x if math.isfinite(x) else _Unread(text)  # 1e400 would read as inf: name it as written


def parse(text: str) -> Any:
    """``json.loads(text)``, except that NaN, Infinity, numbers too large for a float (``1e400``) and integers
    longer than :data:`MAX_MAGNITUDE` stay unconverted markers that :func:`problem` reports (as
    :func:`describe` does). Raises what ``json.loads`` raises:
    ``json.JSONDecodeError``, and ``RecursionError`` for nesting deeper than Python's parser goes (~1,000)."""
    return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_Unread)


def _walk(doc: Any) -> Iterator[tuple[tuple, Any]]:
    """Every value in ``doc`` with its path (keys and indexes), depth first, without recursion; nothing below
    :data:`MAX_DEPTH` levels is visited (the value at that depth is, with its path that long)."""
    stack: list[tuple[tuple, Any]] = [((), doc)]
    while stack:
        path, v = stack.pop()
        yield path, v
        if len(path) > MAX_DEPTH:
            continue
        if isinstance(v, dict):
            stack.extend(((*path, k), x) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend(((*path, i), x) for i, x in reversed(list(enumerate(v))))


def unmeasured(v: Any) -> bool:
    """True when ``v`` (a value, a list, a map) holds a NaN or an infinity anywhere in its first
    :data:`MAX_DEPTH` levels: not a measurement, so equal to nothing, itself included."""
    return any(isinstance(x, float) and not math.isfinite(x) for _, x in _walk(v))


def describe(v: Any) -> str:
    """A JSON value in at most 60 characters, for a one-line message: a number or string as JSON spells it
    (cut with "…"), "a map" or "a list"; a number :func:`parse` left unconverted as written (``NaN``,
    ``1e400``), or "a number of 5,001 digits"."""
    if isinstance(v, _Unread):
        return str(v) if len(v) <= 30 else f"a number of {sum(c.isdigit() for c in v):,} digits"
    text = json.dumps(v, ensure_ascii=False) if v is None or isinstance(v, (int, float, str)) else (
        "a map" if isinstance(v, dict) else "a list")
    return text if len(text) <= 60 else text[:59] + "…"


def _where(path: tuple) -> str:
    return " / ".join(str(k) if len(str(k)) <= 40 else str(k)[:39] + "…" for k in path) or "the top level"


def problem(snap: dict, error_key: str) -> str | None:
    """The first problem of a parsed snapshot (``snap`` is a map with ``schema`` and ``sections``), as words that
    name where it is, or None: nesting deeper than :data:`MAX_DEPTH`; a number that is NaN, infinite, or beyond
    :data:`MAX_MAGNITUDE`; ``sections`` that is not ``{section: {subject: {behaviour: value}}}``; a section not
    in :data:`KINDS`; a behaviour value not of its kind (``error_key`` is text in every section); ``versions``
    that is not a map of names to one-line version strings (or null). No input makes it recurse."""
    for path, v in _walk(snap):
        if len(path) > MAX_DEPTH:
            return f"{_where(path[:3])} / ... nests more than {MAX_DEPTH} levels deep"
        if isinstance(v, _Unread) or (isinstance(v, (int, float)) and not isinstance(v, bool) and not sane_number(v)):
            return (f"{_where(path)} is {describe(v)}; a snapshot holds finite numbers within "
                    f"±10^{len(str(MAX_MAGNITUDE)) - 1}")
    sections = snap["sections"]
    bad = [k for k, v in sections.items() if not isinstance(v, dict)
           or not all(isinstance(x, dict) for x in v.values())] if isinstance(sections, dict) else ["sections"]
    if bad:
        return f"section(s) {', '.join(map(repr, bad))} are not {{subject: {{behaviour: value}}}} maps"
    unknown = [k for k in sections if k not in KINDS]
    if unknown:
        return (f"section(s) {', '.join(repr(k[:40]) for k in unknown)} are not ones llmfound records "
                f"({', '.join(KINDS)})")
    for section, subjects in sections.items():
        for subject, behaviours in subjects.items():
            for key, v in behaviours.items():
                kind = "text" if key == error_key else next(k for pat, k in KINDS[section]
                                                            if fnmatch.fnmatchcase(key, pat))
                if not _CHECKS[kind](v):
                    return (f"{_where(('sections', section, subject, key))} is {describe(v)}; expected "
                            f"{_SHAPES.get(kind, kind)}")
    versions = snap.get("versions", {})
    if not isinstance(versions, dict):
        return "'versions' is not a map"
    for name, v in versions.items():
        if v is not None and not (isinstance(v, str) and len(v) <= 200 and v.isprintable()):
            return f"{_where(('versions', name))} is {describe(v)}; expected a one-line version string or null"
    return None
