"""Lesson: known upstream breakage is recorded, never hidden, and an upgrade that fixes it turns the suite red.

Each entry of ``llmfound/upgrade/ledger.py`` names a wrong behaviour, the versions it was seen with, and a probe that
runs the behaviour: the one place the breakage is written. A spec that teaches an entry runs that probe
(``lessons.assert_fixed``) under a strict xfail (``lessons.ledger_xfail``): today it fails (XFAIL); the day an
upgrade fixes it, it passes, strict turns that into a failure, and the message says which entry to retire.
Here:

1. the probes no lesson spec runs (entries seen only as one case of a family matrix) run under the same strict
   xfail, so every probe ``llmfound doctor`` reports is checked, and none twice;
2. every entry is marked by a real spec (its mark on a spec function, never a mention in a comment);
3. ids are unique and name the versions; an unknown id is a ``KeyError`` listing the known ones.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

from llmfound.upgrade import ledger
from llmfound.lessons import assert_fixed, ledger_id, ledger_xfail

SPECS = sorted(p for p in Path(__file__).parent.glob("test_*.py") if p.name != Path(__file__).name)
"""Every other spec module of this folder."""


def probed_by_lessons() -> set[str]:
    """Ledger ids a spec module passes to ``assert_fixed("<id>", ...)``: read from the code (a comment or a
    docstring naming an id is not a call)."""
    ids = set()
    for path in SPECS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = isinstance(node, ast.Call) and (getattr(node.func, "id", "") or getattr(node.func, "attr", ""))
            if called == "assert_fixed" and node.args and isinstance(node.args[0], ast.Constant):
                ids.add(node.args[0].value)
    return ids


def ledger_marks(module) -> dict[str, list[str]]:
    """Entry id -> the spec functions of ``module`` marked with ``ledger_xfail(id)``: as a decorator, or on a
    ``pytest.param`` case of ``parametrize`` (``name[case]``)."""
    out = defaultdict(list)
    for name, obj in vars(module).items():
        if not name.startswith("test_") or not callable(obj):
            continue
        for mark in getattr(obj, "pytestmark", []):
            if (i := ledger_id(mark)):
                out[i].append(name)
            if mark.name == "parametrize":
                for case in mark.args[1]:
                    for m in getattr(case, "marks", ()):
                        if (i := ledger_id(getattr(m, "mark", m))):
                            out[i].append(f"{name}[{case.id or case.values}]")
    return out


PROBED = probed_by_lessons()


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id, marks=ledger_xfail(e.id)) for e in ledger.LEDGER
                                   if e.id not in PROBED])
def test_the_correct_behaviour_holds(entry, require_assets):
    assert_fixed(entry.id, require_assets)


def test_every_entry_is_marked_on_a_real_spec_not_just_named():
    """Reads the marks pytest reads (each spec module imported), so an id in a comment or a string counts for
    nothing; every ``assert_fixed`` call sits on an entry some spec marks."""
    marked: dict[str, list[str]] = defaultdict(list)
    for path in SPECS:
        for i, specs in ledger_marks(importlib.import_module(path.stem)).items():
            marked[i] += [f"{path.name}::{s}" for s in specs]
    unmarked = [e.id for e in ledger.LEDGER if e.id not in marked]
    assert unmarked == [], (f"ledger entries no spec marks with lessons.ledger_xfail(...): expected none, got "
                            f"{unmarked} (marked: {sorted(marked)})")
    assert PROBED <= set(marked), f"assert_fixed on entries no spec marks: expected none, got {PROBED - set(marked)}"


def test_entry_ids_are_unique_and_name_versions():
    ids = [e.id for e in ledger.LEDGER]
    assert len(ids) == len(set(ids))
    assert all("transformers 5.23.0" in e.seen for e in ledger.LEDGER)


def test_an_unknown_entry_is_a_key_error_listing_the_known_ones():
    with pytest.raises(KeyError, match="unknown ledger entry 'nope'; known.*: gguf-spm-drops-leading-space, "):
        ledger_xfail("nope")
