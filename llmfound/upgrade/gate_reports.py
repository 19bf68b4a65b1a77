"""The gate's reports as files: reading one back with every check, and merging reports of one candidate each (a CI
matrix runs ``llmfound gate CANDIDATE --json-out FILE`` once per candidate) into the report a sequential run
over the same candidates gives.

A report (:func:`llmfound.upgrade.gate.gate`) says what its candidates were judged against: the report layout
(``schema``), the baseline (``baseline_sha256``, ``baseline_versions``), llmfound's pinned set (``pins``) and the
run's settings (``sections``, ``overlay``, ``speed``). :func:`merge` takes its outcomes from every report only when
those agree, and orders them as ``gate --across`` does (by package, oldest release first), so that the merged
summary, Markdown and exit status are the sequential run's. What it refuses, each in one line
(:class:`~llmfound.errors.GateError`, exit 2): no report, a file that is not a complete report (malformed or cut
short JSON, a missing field, an unknown state), a report of a newer or older layout, two reports for one
candidate, reports judged against another baseline, other pins or other settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmfound.errors import GateError
from llmfound.upgrade.gate import REPORT_SCHEMA, STATES, exit_code

__all__ = ["MAX_BYTES", "IDENTITY", "load", "merge", "order_key"]

MAX_BYTES = 64 * 1024 * 1024
"""The largest report file read back (bytes); the changelog's 44-release report is about 1 MB."""

IDENTITY = ("schema", "baseline_sha256", "baseline_versions", "pins", "sections", "overlay", "speed")
"""The report fields that must agree between reports merged: what the candidates were judged against."""

_REPORT_FIELDS = {"schema": int, "baseline": str, "baseline_sha256": str, "baseline_versions": dict, "pins": list,
                  "sections": list, "overlay": bool, "speed": bool, "created": str, "outcomes": list,
                  "exit_code": int}
_OUTCOME_FIELDS = {"candidate": str, "state": str, "detail": str, "versions": dict, "drift": list, "ledger": list,
                   "relaxed": list, "warm": bool, "install_s": (int, float), "check_s": (int, float)}
_DRIFT_FIELDS = ("subject", "section", "behaviour", "old", "new")


def load(path: str | Path) -> dict:
    """The gate report at ``path`` (``gate --json-out`` or ``gate --json``), checked whole before anything is
    merged. Raises :class:`GateError` naming the file and what is wrong: missing, empty, over
    :data:`MAX_BYTES`, not JSON or cut short, nested too deep, not a gate report, a layout other than
    :data:`~llmfound.upgrade.gate.REPORT_SCHEMA`, a field missing or of the wrong type, an outcome with an
    unknown state or a drift without its five fields."""
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise GateError(f"gate report {name!r} does not exist (or is not a file); give the JSON files that "
                        "`llmfound gate --json-out FILE` wrote")
    if p.stat().st_size > MAX_BYTES:
        raise GateError(f"gate report {name!r} is {p.stat().st_size:,} bytes, over the {MAX_BYTES:,} read back; "
                        "it is not a gate report")
    text = p.read_bytes().decode("utf-8", errors="replace")
    if not text.strip():
        raise GateError(f"gate report {name!r} is empty: the gate run that should have written it did not "
                        "finish; run that candidate again")
    try:
        report = json.loads(text)
    except ValueError as e:
        raise GateError(f"gate report {name!r} is not complete JSON ({e}); it was cut short or damaged: run that "
                        "candidate again") from None
    except RecursionError:
        raise GateError(f"gate report {name!r} is nested too deep to be a gate report") from None
    if not isinstance(report, dict) or "outcomes" not in report:
        raise GateError(f"{name!r} is not a gate report (no 'outcomes'); give files written by `llmfound gate "
                        "--json-out`")
    schema = report.get("schema")
    if schema != REPORT_SCHEMA:
        made = "a newer llmfound" if isinstance(schema, int) and schema > REPORT_SCHEMA else "an older llmfound"
        raise GateError(f"gate report {name!r} has layout {schema!r}, made by {made}; this llmfound merges "
                        f"layout {REPORT_SCHEMA}: gate the candidate again with this llmfound")
    _check_fields(report, _REPORT_FIELDS, f"gate report {name!r}")
    for i, o in enumerate(report["outcomes"]):
        where = f"gate report {name!r}, outcome {i + 1}"
        if not isinstance(o, dict):
            raise GateError(f"{where} is not an object; the file is damaged: run that candidate again")
        _check_fields(o, _OUTCOME_FIELDS, where)
        if o["state"] not in STATES:
            raise GateError(f"{where} ({o['candidate']}) has state {o['state']!r}, not one of {', '.join(STATES)}")
        for d in o["drift"]:
            if not isinstance(d, dict) or any(k not in d for k in _DRIFT_FIELDS):
                raise GateError(f"{where} ({o['candidate']}) has a drift without its fields "
                                f"({', '.join(_DRIFT_FIELDS)}); the file is damaged: run that candidate again")
    return report


def _check_fields(obj: dict, fields: dict, where: str) -> None:
    for key, kind in fields.items():
        if key not in obj:
            raise GateError(f"{where} lacks {key!r}; it is not a complete gate report: run that candidate again")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise GateError(f"{where}: {key!r} is {type(obj[key]).__name__}, not what a gate report holds there; "
                            "the file is damaged: run that candidate again")


def order_key(candidate: str) -> tuple:
    """How ``gate --across`` orders candidates, for a candidate's label: by each requirement's normalized package
    name, then its version, oldest first (a local wheel by the name and version in its file name); a version
    that is not PEP 440 sorts first, by its text."""
    from packaging.version import InvalidVersion, Version

    from llmfound.upgrade.side_envs import dist_name

    key = []
    for r in candidate.split():
        if r.endswith(".whl"):
            parts = Path(r).name.split("-")
            name, version = parts[0], parts[1] if len(parts) > 1 else ""
        else:
            name, _, version = r.partition("==")
        try:
            v = (1, Version(version), "")
        except InvalidVersion:
            v = (0, Version("0"), version)
        key.append((dist_name(name), v))
    return tuple(key)


def merge(reports: list[tuple[str, dict]]) -> dict:
    """One report from several (``(file name, report)`` pairs, each as :func:`load` returns it): every outcome,
    ordered by :func:`order_key`; the first report's baseline and identity (:data:`IDENTITY`), which every
    other must share; ``created`` of the latest; ``merged_from``: the file names; ``exit_code`` recomputed
    (:func:`llmfound.upgrade.gate.exit_code`). Raises :class:`GateError` for no report, a candidate in two reports
    (naming both files) and a report whose identity differs from the first's (naming the field and both
    values)."""
    if not reports:
        raise GateError("no gate report to merge; give the JSON files that `llmfound gate --json-out` wrote "
                        "(an empty folder or a pattern that matched nothing?)")
    first_name, first = reports[0]
    seen: dict[str, str] = {}
    outcomes = []
    for name, rep in reports:
        for key in IDENTITY:
            if rep[key] != first[key]:
                raise GateError(f"gate report {name!r} was judged against {_what(key)} other than {first_name!r}'s "
                                f"({_differ(rep[key], first[key])}); merge only reports of one baseline, pinned "
                                "set and settings")
        for o in rep["outcomes"]:
            if o["candidate"] in seen:
                where = "twice in it" if seen[o["candidate"]] == name else f"in {seen[o['candidate']]!r} too"
                raise GateError(f"gate report {name!r} holds candidate {o['candidate']!r}, which is {where}; "
                                "merge one report per candidate")
            seen[o["candidate"]] = name
            outcomes.append(o)
    merged = {key: first[key] for key in first if key not in ("created", "outcomes", "exit_code")}
    merged["created"] = max((r["created"] for _, r in reports), default=time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    merged["merged_from"] = [name for name, _ in reports]
    merged["outcomes"] = sorted(outcomes, key=lambda o: order_key(o["candidate"]))
    merged["exit_code"] = exit_code(merged)
    return merged


def _what(key: str) -> str:
    return {"schema": "a report layout", "baseline_sha256": "a baseline", "baseline_versions": "a baseline",
            "pins": "pins", "sections": "sections", "overlay": "an --overlay setting",
            "speed": "a --speed setting"}[key]


def _differ(a, b) -> str:
    """How ``a`` differs from ``b``, short: for two lists or two dicts only the entries that differ."""
    if isinstance(a, list) and isinstance(b, list) and (set(map(str, a)) != set(map(str, b))):
        a, b = sorted(set(map(str, a)) - set(map(str, b))), sorted(set(map(str, b)) - set(map(str, a)))
    elif isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
        a, b = {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}
    return f"{_short(a)} vs {_short(b)}"


def _short(v, n: int = 60) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    if len(s) == 64 and all(c in "0123456789abcdef" for c in s):
        return f"sha256 {s[:12]}…"
    return s if len(s) <= n else s[: n - 1] + "…"
