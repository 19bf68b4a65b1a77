"""The upgrade gate: record what the installed libraries do, then compare another environment against it.

``record()`` captures, for the installed versions, the sections :mod:`llmfound.upgrade.sections` computes (per
family ids, special tokens and template renders; SmolLM2's footprints, greedy answers and accuracy per preset;
pipeline outputs). ``compare()`` recomputes the same and lists every difference as (section, subject,
behaviour, old, new): when CI installs a candidate transformers / tokenizers / torch / bitsandbytes, the diff
says exactly which family or behaviour drifted. A baseline for the pinned versions ships in
``llmfound/upgrade/data/baseline.json``.

File layout (``SCHEMA`` 1)::

    {"schema": 1, "created": "...", "versions": {...},
     "sections": {"<section>": {"<subject (family, preset, prompt...)>": {"<behaviour>": <json value>}}}}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmfound.errors import SnapshotError
from llmfound.upgrade.sections import ERROR, SECTIONS, check_sections, within_tolerance
from llmfound.upgrade.snapshot_format import MAX_BYTES, MAX_DEPTH, describe, parse, problem, unmeasured

__all__ = ["SCHEMA", "BASELINE", "Drift", "check_same_versions", "merge_into", "check_writable", "record", "save",
           "load", "diff", "compare"]

SCHEMA = 1
BASELINE = Path(__file__).parent / "data" / "baseline.json"
"""The snapshot recorded with the pinned versions of ``pyproject.toml``."""

@dataclass
class Drift:
    """One difference: ``section`` (ids, special_tokens, templates, ...), ``subject`` (a family, preset or
    prompt), ``behaviour`` (the key), ``old`` and ``new`` values (``None`` when absent on one side)."""

    section: str
    subject: str
    behaviour: str
    old: Any
    new: Any



def check_writable(path: str | Path) -> Path:
    """Raise a one-line error unless ``path`` can be written (see :func:`llmfound.outputs.check_output_path`).
    Called before the (slow) recording starts."""
    from llmfound.outputs import check_output_path

    return check_output_path(path)


def record(sections: tuple[str, ...] | None = None) -> dict:
    """Compute the snapshot for the installed versions (all sections, or those named)."""
    from llmfound.environment import versions

    names = tuple(SECTIONS) if sections is None else tuple(sections)
    check_sections(names)
    data = {n: SECTIONS[n]() for n in names}
    return {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": versions(), "sections": json.loads(json.dumps(data, ensure_ascii=False))}


def check_same_versions(existing: dict) -> None:
    """Raise :class:`SnapshotError` unless ``existing`` was recorded with this environment's library versions
    (:func:`llmfound.environment.versions`): a baseline is one set of pins, so sections recorded here may only
    join a file recorded with the same ones."""
    from llmfound.environment import versions

    here, there = versions(), existing.get("versions", {})
    changed = sorted(k for k in set(here) | set(there) if here.get(k) != there.get(k))
    if changed:
        raise SnapshotError(f"the file was recorded with other versions ({', '.join(changed)} differ); re-record "
                            f"all of it with `llmfound snapshot record FILE`, or install the file's versions first")


def merge_into(existing: dict, snap: dict) -> dict:
    """``existing`` with the sections of ``snap`` put in (replacing those of the same name, keeping the others):
    how a baseline is re-recorded when a section changes or a new subject (family, case, preset) joins one.
    Raises :class:`SnapshotError` when the two were recorded with different library versions
    (:func:`check_same_versions`)."""
    if existing.get("versions") != snap.get("versions"):
        raise SnapshotError("the file and the new sections were recorded with other versions; re-record all of it")
    return {**existing, "created": snap["created"], "sections": {**existing["sections"], **snap["sections"]}}


def save(snap: dict, path: str | Path) -> None:
    """Write ``snap`` as JSON atomically (:func:`llmfound.outputs.atomic_write`)."""
    from llmfound.outputs import atomic_write

    data = (json.dumps(snap, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
    atomic_write(Path(path), lambda f: f.write(data))


def load(path: str | Path) -> dict:
    """Read a snapshot file, all of it checked before anything is computed from it
    (:func:`llmfound.upgrade.snapshot_format.problem`). Raises :class:`SnapshotError` with one line for a missing file,
    one over ``snapshot_format.MAX_BYTES``, a file that is not JSON or is truncated, a newer schema, a JSON
    document that is not a snapshot, or a damaged one (too deep, a NaN, an infinite or oversized number, a
    value not of its section's kind: ``snapshot_format.KINDS``). The snapshot compare and the gate both read
    baselines through here."""
    p = Path(path)
    if p.is_dir():
        raise SnapshotError(f"{str(p)!r} is a folder, not a snapshot file")
    if not p.is_file():
        raise SnapshotError(f"snapshot file {str(p)!r} does not exist; make one with `llmfound snapshot record FILE`")
    again = "record it again with `llmfound snapshot record`"
    try:
        if p.stat().st_size > MAX_BYTES:
            raise SnapshotError(f"snapshot file {str(p)!r} is {p.stat().st_size:,} bytes, more than a snapshot "
                                f"holds (at most {MAX_BYTES:,}); {again}")
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SnapshotError(f"cannot read snapshot file {str(p)!r}: {e.strerror}") from None
    try:
        snap = parse(text)
    except RecursionError:
        raise SnapshotError(f"snapshot file {str(p)!r} is damaged: it nests too deeply to be a snapshot (at most "
                            f"{MAX_DEPTH} levels); {again}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if e.pos >= len(text.rstrip()) - 1 else "not valid JSON"
        raise SnapshotError(f"snapshot file {str(p)!r} is {what} (line {e.lineno}, column {e.colno}: {e.msg}); "
                            f"{again}") from None
    if not isinstance(snap, dict) or "schema" not in snap or "sections" not in snap:
        raise SnapshotError(f"{str(p)!r} is JSON but not an llmfound snapshot (no 'schema' / 'sections')")
    if not isinstance(snap["schema"], int) or isinstance(snap["schema"], bool) or snap["schema"] < 1:
        raise SnapshotError(f"{str(p)!r} has snapshot schema {describe(snap['schema'])}; expected an integer "
                            f"(this llmfound reads {SCHEMA}); record it again")
    if snap["schema"] > SCHEMA:
        raise SnapshotError(f"{str(p)!r} has snapshot schema {snap['schema']!r}, newer than this llmfound reads "
                            f"({SCHEMA}); upgrade llmfound or record the baseline again")
    damage = problem(snap, ERROR)
    if damage:
        raise SnapshotError(f"{str(p)!r} is damaged: {damage}; {again}")
    snap.setdefault("versions", {})
    return snap


def diff(old: dict, new: dict) -> list[Drift]:
    """Every difference between two snapshots, over the sections present in ``old`` (a section absent from
    ``new`` counts as a change of each of its subjects); numbers within :data:`TOLERANCES` are not drift. A
    value holding a NaN or an infinity is drift on either side, even against the same value."""
    out = []
    for section, subjects in old["sections"].items():
        now = new["sections"].get(section, {})
        for subject in sorted(set(subjects) | set(now)):
            a, b = subjects.get(subject, {}), now.get(subject, {})
            if (ERROR in a) != (ERROR in b):  # a subject that fails on one side: one drift, not one per behaviour
                out.append(Drift(section, subject, ERROR, a.get(ERROR, "computes"), b.get(ERROR, "computes")))
                continue
            for key in sorted(set(a) | set(b)):
                va, vb = a.get(key), b.get(key)
                same = va == vb or within_tolerance(section, key, va, vb)
                if not same or unmeasured(va) or unmeasured(vb):
                    out.append(Drift(section, subject, key, va, vb))
    return out


def compare(path: str | Path, sections: tuple[str, ...] | None = None) -> tuple[dict, dict, list[Drift]]:
    """Load the snapshot at ``path``, recompute the same sections here, return ``(old, new, drifts)``."""
    if sections is not None:
        check_sections(tuple(sections))
    old = load(path)
    names = tuple(n for n in old["sections"] if sections is None or n in sections)
    if not names:
        wanted = f"section {', '.join(sections)}" if sections else "sections"
        raise SnapshotError(f"{str(path)!r} holds no {wanted} (it has: {', '.join(old['sections']) or 'none'}); "
                            f"nothing to compare")
    new = record(names)
    old = dict(old, sections={n: old["sections"][n] for n in names})
    return old, new, diff(old, new)
