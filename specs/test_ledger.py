"""Lesson: known upstream breakage is recorded, never hidden, and an upgrade that fixes it turns the suite red.

Each entry of ``llmfound/ledger.py`` names a wrong behaviour and the versions it was seen with. Here every
entry's probe asserts the *correct* behaviour under a strict xfail: today it fails (XFAIL); the day an upgrade
fixes it, it passes, strict turns that into a failure, and the message says which entry to retire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmfound import ledger


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id, marks=ledger.xfail(e.id)) for e in ledger.LEDGER])
def test_the_correct_behaviour_holds(entry, require_assets):
    require_assets(*entry.needs)
    assert not entry.probe(), f"ledger '{entry.id}' still broken: {entry.behaviour}"


def test_every_entry_is_exercised_by_a_spec_beside_its_probe():
    text = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py")
                     if p.name != Path(__file__).name)
    unused = [e.id for e in ledger.LEDGER if f'"{e.id}"' not in text]
    assert unused == [], f"ledger entries no spec marks with ledger.xfail(...): {unused}"


def test_entry_ids_are_unique_and_name_versions():
    ids = [e.id for e in ledger.LEDGER]
    assert len(ids) == len(set(ids))
    assert all("transformers 5.23.0" in e.seen for e in ledger.LEDGER)


def test_an_unknown_entry_is_a_key_error_listing_the_known_ones():
    with pytest.raises(KeyError, match="unknown ledger entry 'nope'; known: gguf-spm-drops-leading-space"):
        ledger.xfail("nope")
