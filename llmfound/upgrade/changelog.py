"""The behaviour changelog: gate reports across a package's releases turned into one page, release x behaviour.

Input: reports of ``llmfound gate --across PKG==A..B --json`` (:func:`llmfound.upgrade.gate.gate`'s dict), one or more
per package. Every drift is a difference from the baseline, which was recorded at llmfound's pins, so for each
drifted behaviour (subject, section, behaviour) this module finds:

- for releases **older** than the pin: the first release from which every release up to the pin behaves as the
  pin does ("today's behaviour since");
- for releases **newer** than the pin: the first release that differs ("changes in").

Run: ``python -m llmfound.upgrade.changelog REPORT.json... > docs/changelog.md`` (the page names the commands that
made its reports and the date they ran).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

from llmfound.upgrade.sections import ERROR

__all__ = ["Release", "releases", "behaviour_rows", "summary", "to_markdown", "main"]


class Release:
    """One candidate of a single-package ``--across`` report: ``package``, ``version`` (str), ``state``,
    ``drift`` (list of dicts), ``ledger``, ``relaxed``, ``detail``; ordered by version."""

    def __init__(self, outcome: dict):
        self.package, _, self.version = outcome["candidate"].partition("==")
        self.state = outcome["state"]
        self.drift = outcome.get("drift", [])
        self.ledger = outcome.get("ledger", [])
        self.relaxed = outcome.get("relaxed", [])
        self.detail = outcome.get("detail", "")

    @property
    def key(self):
        from packaging.version import Version

        return Version(self.version)


def releases(reports: list[dict]) -> dict[str, list[Release]]:
    """Package -> its releases across every report, oldest first (a release seen twice keeps the last).
    Candidates that are not one release (a set installed together, a local wheel) are left out: they are in the
    gate's own summary."""
    by: dict[str, dict[str, Release]] = defaultdict(dict)
    for rep in reports:
        for o in rep["outcomes"]:
            if not _one_release(o["candidate"]):
                continue
            r = Release(o)
            by[r.package][r.version] = r
    return {p: sorted(v.values(), key=lambda r: r.key) for p, v in by.items()}


def _one_release(candidate: str) -> bool:
    """True when ``candidate`` is one ``name==version`` requirement with a PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    name, sep, version = candidate.partition("==")
    if not sep or " " in candidate:
        return False
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _pin(rep_versions: dict, package: str):
    from packaging.version import Version

    v = rep_versions.get(package)
    return Version(v.split("+")[0]) if v else None


def behaviour_rows(rels: list[Release], pinned) -> list[dict]:
    """One row per drifted behaviour of one package: ``subject, section, behaviour, pin_value, other_value``
    (the value in the first release that differs), ``differs`` (versions that differ, oldest first), and
    ``since`` (older releases: the first release from which all measured ones up to the pin agree with it) or
    ``changes_in`` (newer releases: the first that differs). Only releases whose checks ran count."""
    ran = [r for r in rels if r.state in ("pass", "drift")]
    keyed: dict[tuple, dict] = {}
    for r in ran:
        for d in r.drift:
            k = (d["subject"], d["section"], d["behaviour"])
            row = keyed.setdefault(k, {"subject": k[0], "section": k[1], "behaviour": k[2], "pin_value": d["old"],
                                       "other_value": d["new"], "differs": []})
            row["differs"].append(r.version)
    older = [r for r in ran if pinned is None or r.key < pinned]
    newer = [r for r in ran if pinned is not None and r.key > pinned]
    for row in keyed.values():
        diff_older = [r for r in older if r.version in row["differs"]]
        row["since"] = None
        if diff_older:
            last = max(diff_older, key=lambda r: r.key)
            after = [r for r in older if r.key > last.key]
            row["since"] = after[0].version if after else (str(pinned) if pinned else None)
        diff_newer = [r for r in newer if r.version in row["differs"]]
        row["changes_in"] = diff_newer[0].version if diff_newer else None
    return sorted(keyed.values(), key=lambda r: (r["section"], r["subject"], r["behaviour"]))


def _unmachine(s: str) -> str:
    """``s`` without this machine's paths: the llmfound cache as ``$LLMFOUND_HOME``, the home folder as ``~``."""
    import os

    from llmfound.assets.cache import home

    for path, name in ((str(home()), "$LLMFOUND_HOME"), (os.path.expanduser("~"), "~")):
        if path and path != "/":
            s = s.replace(path, name)
    return s


def summary(rows: list[dict], measured: list[str]) -> list[str]:
    """One line per group of behaviours that differ in the same releases: the releases, since / changes in,
    the subjects, and how many behaviours per section, per subject when every subject has the same counts
    ("5.0.0-5.21.1 (today's behaviour since 5.22.0): deepseek-r1, deepseek-v3 (each): ids 11, special_tokens 1,
    templates 1"), with the first error a failing subject recorded."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(tuple(r["differs"]), r["since"], r["changes_in"])].append(r)
    out = []
    for (differs, since, changes_in), rs in sorted(groups.items(), key=lambda kv: measured.index(kv[0][0][0])):
        subjects = sorted({r["subject"] for r in rs})
        per = {s: Counter(r["section"] for r in rs if r["subject"] == s) for s in subjects}
        same = all(c == per[subjects[0]] for c in per.values())
        sections = per[subjects[0]] if same else Counter(r["section"] for r in rs)
        when = (f"today's behaviour since {since}" if since else "") + (
            f"{'; ' if since else ''}changes in {changes_in}" if changes_in else "")
        errors = [r["other_value"] for r in rs if r["behaviour"] == ERROR]
        what = ", ".join(f"{k} {v}" for k, v in sections.items())
        each = " (each)" if same and len(subjects) > 1 else ""
        out.append(f"{_ranges(list(differs), measured)} ({when}): {', '.join(subjects)}{each}: {what}"
                   + (f"; fails with {_cell(errors[0], 300)}" if errors else ""))
    return out


def _cell(v, n: int = 60) -> str:
    from llmfound.outputs import md_cell

    return md_cell(v, n, _unmachine)


def _ranges(versions: list[str], order: list[str]) -> str:
    """``['5.0.0', '5.1.0', '5.2.0', '5.5.0']`` over the measured order -> "5.0.0-5.2.0, 5.5.0"."""
    idx = sorted(order.index(v) for v in versions)
    out, start = [], None
    for i, j in enumerate(idx):
        if start is None:
            start = j
        if i + 1 == len(idx) or idx[i + 1] != j + 1:
            out.append(order[start] if start == j else f"{order[start]}-{order[j]}")
            start = None
    return ", ".join(out)


def to_markdown(reports: list[dict], commands: list[str]) -> str:
    """The changelog page: how it was made (``commands``, the date, the baseline's versions), then per package
    a release table (state, number of drifted behaviours, ledger flips, companions moved) and the behaviour
    table (:func:`behaviour_rows`)."""
    base = reports[0]["baseline_versions"]
    dates = sorted(r["created"] for r in reports)
    lines = ["# Behaviour changelog: what each release changed", "",
             "Every release of transformers 5.x, tokenizers 0.21-0.23 and bitsandbytes 0.48-0.50 that the package "
             "indexes offer, each installed over llmfound's pins in its own side environment and checked against "
             "the baseline recorded at the pins (`llmfound/upgrade/data/baseline.json`: token ids of a fixed corpus "
             "and llama.cpp's golden inputs, special tokens, chat-template renders, SmolLM2's footprints and greedy "
             "answers, pipeline outputs, quantization's accuracy cost). CPU only: CUDA kernels are not covered. "
             "A release whose own requirements exclude a pinned companion gets the companion from its range "
             "(\"companions moved\"); one that the pinned set excludes (tokenizers 0.21-0.22 with transformers "
             "5.23) is install-failed here and can be tried as a pair, e.g. `llmfound gate \"tokenizers==0.22.2 "
             "transformers==5.21.1\"`. Generated, not typed: [how](#how-this-page-was-made).", "",
             "Reading the behaviour tables: *at the pin* is the value recorded at llmfound's pins, *elsewhere* the "
             "value in the first release that differs, *differs in* the releases that differ, *today's behaviour "
             "since* the first release from which every measured release up to the pin agrees with the pin, "
             "*changes in* the first release after the pin that differs (\"-\": none). A ledger cell \"cannot "
             "check: ...\" means the entry's probe itself failed in that release. Long values are cut with \"…\"; "
             "the JSON reports hold them whole.", ""]
    order = ["transformers", "tokenizers", "bitsandbytes"]
    by = releases(reports)
    for pkg in sorted(by, key=lambda p: order.index(p) if p in order else len(order)):
        rels = by[pkg]
        pinned = _pin(base, pkg)
        lines += [f"## {pkg}", "", f"Pinned: {pkg} {pinned}. {len(rels)} releases from {rels[0].version} to "
                  f"{rels[-1].version}; " + ", ".join(f"{n} {s}" for s in ("pass", "drift", "install-failed", "broken")
                                                    if (n := sum(r.state == s for r in rels))) + ".", "",
                  "| release | state | drifted behaviours | ledger | companions moved / reason |",
                  "|---|---|---|---|---|"]
        for r in rels:
            note = "; ".join([f"{a} -> {b}" for a, b in r.relaxed]
                             + ([_cell(r.detail, 240)] if r.state in ("install-failed", "broken") else []))
            led = ", ".join(f"{f['id']}: {f['now']}" for f in r.ledger)
            lines.append(f"| {r.version} | {r.state} | {len(r.drift) if r.state in ('pass', 'drift') else '-'} | "
                         f"{_cell(led, 120)} | {note} |")
        rows = behaviour_rows(rels, pinned)
        lines += [""]
        if rows:
            measured = [r.version for r in rels if r.state in ("pass", "drift")]
            lines += ["In short:", ""] + [f"- {line}" for line in summary(rows, measured)] + [""]
            lines += [f"What differs from {pkg} {pinned}, by behaviour ({len(rows)}):", "",
                      "| section | subject | behaviour | at the pin | elsewhere | differs in | today's behaviour since "
                      "| changes in |", "|---|---|---|---|---|---|---|---|"]
            for x in rows:
                lines.append(f"| {x['section']} | {_cell(x['subject'], 30)} | {_cell(x['behaviour'], 50)} | "
                             f"{_cell(x['pin_value'])} | {_cell(x['other_value'])} | "
                             f"{_ranges(x['differs'], measured)} | {x['since'] or '-'} | {x['changes_in'] or '-'} |")
        else:
            lines.append(f"No behaviour differs from {pkg} {pinned} in any release whose checks ran.")
        lines.append("")
    lines += ["## How this page was made", "", f"Reports finished between {dates[0]} and {dates[-1]} on this "
              "project's 2-core CPU machine (each command's own times are beside it), against the baseline "
              "recorded with "
              + ", ".join(f"{k} {v}" for k, v in base.items() if v and k != "driver") + ". Where two reports "
              "cover a release, the one named later wins.", "", "```bash", *commands, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmfound.upgrade.changelog [--command CMD]... REPORT.json...``: print the page to stdout."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m llmfound.upgrade.changelog", description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--command", action="append", default=[], help="a command that made the reports")
    a = ap.parse_args(argv)
    reports = [json.load(open(p, encoding="utf-8")) for p in a.reports]
    sys.stdout.write(to_markdown(reports, a.command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
