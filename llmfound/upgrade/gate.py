"""The upgrade gate: try candidate releases of the libraries llmfound pins, each in its own side environment
(:mod:`llmfound.upgrade.side_envs`), and report which behaviour drifted against a recorded snapshot.

A **candidate** is one or more requirements installed together over llmfound's pinned set:
``transformers==5.24.0``, or ``"tokenizers==0.22.2 transformers==5.21.0"`` (one argument, space-separated), or a
local wheel file. For each candidate the gate builds (or reuses) its side environment, runs
``llmfound snapshot compare BASELINE --json`` there, and gives the candidate one **state**:

- ``pass``: every recorded behaviour is the same (within ``sections.TOLERANCES``);
- ``drift``: some behaviour changed; each drift names its subject (a family, a preset, a task), section,
  behaviour, old and new;
- ``install-failed``: the set could not be resolved or installed (uv's reason); never counted as drift;
- ``broken``: the set installed but the checks crashed there (the last line of their error).

Beside drift, the report lists ledger entries (:mod:`llmfound.upgrade.ledger`) whose state flipped from "still broken"
at the pins: "fixed: retire it" (retire the entry) or "cannot check: <error>" (the probe itself fails now). Exit status
(:func:`exit_code`): 0 every candidate passed, 1 a drift or a broken candidate, 3 an install failed and nothing
drifted; bad requests exit 2 before any side environment is built.
"""

from __future__ import annotations

import functools
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from llmfound.environment import isolated_python
from llmfound.errors import CandidateInstallError, GateError, SideEnvironmentError, first_line
from llmfound.outputs import md_cell

__all__ = ["Candidate", "Outcome", "STATES", "REPORT_SCHEMA", "parse_candidate", "parse_across", "newer_than_pins",
           "available_versions", "check_candidates", "unique", "check_request", "run_candidate", "gate", "exit_code",
           "ledger_changes", "to_markdown"]

STATES = ("pass", "drift", "install-failed", "broken")
"""Every state a candidate can end in, in the report's order of severity (last is worst for display only)."""

REPORT_SCHEMA = 1
"""The version of the report's JSON layout (:func:`gate`); :mod:`llmfound.upgrade.gate_reports` reads back only this
one. Raise it when a field the merge relies on changes meaning."""


@dataclass(frozen=True)
class Candidate:
    """One candidate set: ``requirements`` (PEP 508 strings with an exact ``==`` version, or local wheel paths)
    and ``label`` (how the report names it: the requirements joined by spaces)."""

    requirements: tuple[str, ...]

    @property
    def label(self) -> str:
        return " ".join(Path(r).name if r.endswith(".whl") else r for r in self.requirements)


@dataclass
class Outcome:
    """What one candidate did: its ``state`` (one of :data:`STATES`), ``detail`` (one line: uv's reason, the
    checks' error, or a summary), ``versions`` (library -> version in the side environment, from the compare's
    report), ``drift`` (dicts: subject, section, behaviour, old, new), ``ledger`` (flipped entries: id, was, now,
    action), ``relaxed`` (companion pins the candidate's range replaced: [pin, replacement]), ``warm`` (the side
    environment existed already and was reused), ``rebuilt`` (why an existing side environment was built again
    instead: it no longer matched its record; "" otherwise), ``install_s`` and ``check_s`` (wall seconds),
    ``speed`` (with ``--speed``: :func:`llmfound.upgrade.speed_check.compare`'s result; a slower probe is also a
    drift in section ``speed``)."""

    candidate: str
    state: str
    detail: str = ""
    versions: dict = field(default_factory=dict)
    drift: list = field(default_factory=list)
    ledger: list = field(default_factory=list)
    relaxed: list = field(default_factory=list)
    warm: bool = False
    rebuilt: str = ""
    install_s: float = 0.0
    check_s: float = 0.0
    speed: dict | None = None


_REQ = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


def parse_candidate(text: str) -> Candidate:
    """One command-line candidate: space-separated requirements, each ``name==version`` or a path to a ``.whl``
    file. Raises :class:`GateError` for an empty text, a requirement that is not ``name==version`` (ranges are
    not candidates: name the release), a wheel path that does not exist, or one package named twice."""
    from llmfound.upgrade.side_envs import dist_name as _name

    reqs = tuple(text.split())
    if not reqs:
        raise GateError("an empty candidate; name a release, e.g. transformers==5.24.0")
    for r in reqs:
        if r.endswith(".whl"):
            if not Path(r).is_file():
                raise GateError(f"candidate wheel {r!r} does not exist; give the path of a .whl file "
                                "(a path with spaces in it cannot be a candidate: candidates split on spaces)")
        elif not _REQ.match(r) or not _valid_requirement(r):
            raise GateError(f"candidate {r!r} is not name==version; name one release (transformers==5.24.0; "
                            "no extras, no ranges), a local .whl file, or a range with --across "
                            "transformers==5.20.0..5.24.0")
    names = [_name(r) for r in reqs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GateError(f"candidate {text!r} names {dup[0]!r} twice; give one version per package")
    return Candidate(tuple(str(Path(r).resolve()) if r.endswith(".whl") else r for r in reqs))


def _valid_requirement(r: str) -> bool:
    """True when ``r`` is a PEP 508 requirement whose ``==`` version is a valid PEP 440 version."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(r)
    except InvalidRequirement:
        return False
    return not req.extras and _version(r.partition("==")[2]) is not None


def unique(candidates: list[Candidate]) -> list[Candidate]:
    """``candidates`` without repeats (the same requirement set given twice, or also covered by ``--across``),
    first occurrence kept."""
    seen, out = set(), []
    for c in candidates:
        key = tuple(sorted(c.requirements))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def parse_across(spec: str, versions: Callable[[str], list[str]] | None = None) -> list[Candidate]:
    """``PKG==A..B``: one candidate per final release of PKG from A to B inclusive (pre-releases and dev releases
    left out), oldest first, read from the package indexes (:func:`available_versions`; ``versions`` replaces
    it in tests). Raises :class:`GateError` for a malformed range, A after B, or no release in the range."""
    from packaging.version import InvalidVersion, Version

    m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^.][^ ]*?)\.\.([^ ]+)", spec.strip())
    if not m:
        raise GateError(f"--across {spec!r} is not PKG==FIRST..LAST; e.g. --across transformers==5.20.0..5.24.0")
    pkg, a, b = m.groups()
    try:
        lo, hi = Version(a), Version(b)
    except InvalidVersion as e:
        raise GateError(f"--across {spec!r}: {e}; versions look like 5.20.0") from None
    if lo > hi:
        raise GateError(f"--across {spec!r}: {a} is after {b}; give the older release first")
    found = sorted((Version(v), v) for v in (versions or available_versions)(pkg) if _is_final(v))
    chosen = [v for ver, v in found if lo <= ver <= hi]
    if not chosen:
        raise GateError(f"--across {spec!r}: no release of {pkg} between {a} and {b} on the configured indexes; "
                        f"newest there: {found[-1][1] if found else 'none'}")
    return [Candidate((f"{pkg}=={v}",)) for v in chosen]


def newer_than_pins(packages: list[str], versions: Callable[[str], list[str]] | None = None,
                    pins: list[str] | None = None) -> list[Candidate]:
    """One candidate per final release of each package in ``packages`` newer than its pin in llmfound's pinned
    set (``pins``, default :func:`llmfound.upgrade.side_envs.pinned_requirements`), oldest first, package by
    package as given; releases that differ only in a local label (``2.14.0+cpu``) are one release. Versions are
    read as :func:`parse_across` reads them. An empty list means nothing is newer. Raises :class:`GateError` for
    a package llmfound does not pin with ``==`` (naming those it does)."""
    from packaging.version import Version

    from llmfound.upgrade.side_envs import dist_name, pinned_requirements

    pinned = {dist_name(r): r.partition("==")[2].strip() for r in (pins or pinned_requirements()) if "==" in r}
    out: list[Candidate] = []
    for pkg in packages:
        name = dist_name(pkg.strip())
        if name not in pinned or _version(pinned[name]) is None:
            raise GateError(f"--newer {pkg!r}: llmfound pins no release of {pkg!r}; name a pinned package: "
                            f"{', '.join(sorted(pinned))}")
        pin = Version(pinned[name]).public
        found = {}
        for v in (versions or available_versions)(pkg.strip()):
            if _is_final(v):
                public = Version(v).public
                if Version(public) > Version(pin):
                    found.setdefault(Version(public), public)
        out += [Candidate((f"{pkg.strip()}=={found[k]}",)) for k in sorted(found)]
    return out


def _version(v: str):
    """``packaging.version.Version(v)``, or None when ``v`` is not a PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(v)
    except InvalidVersion:
        return None


def _is_final(v: str) -> bool:
    ver = _version(v)
    return ver is not None and not ver.is_prerelease


@functools.lru_cache(maxsize=None)
def available_versions(package: str) -> list[str]:
    """Every version of ``package`` on the package indexes pip is configured with, newest first: ``python -m pip
    index versions`` in the calling environment (read-only; it honours pip's index-url, extra-index-url and
    find-links). Raises :class:`GateError` when no index has the package (exit 2) and
    :class:`SideEnvironmentError` when no index answers (exit 3). Cached per process (an answer, not an error)."""
    r = subprocess.run([*isolated_python(), "-m", "pip", "index", "versions", "--retries", "1", package],
                       capture_output=True, text=True)
    text = r.stdout + r.stderr
    m = re.search(r"^Available versions: (.*)$", r.stdout, re.M)
    if r.returncode == 0 and m:
        return [v.strip() for v in m.group(1).split(",") if v.strip()]
    warnings = [ln.split("WARNING:", 1)[1].strip() for ln in text.splitlines()
                if "WARNING:" in ln and ("ignored" in ln or "trusted" in ln or "skipping" in ln.lower())
                and "neither a file nor a directory" not in ln]
    if re.search(r"NewConnectionError|Max retries exceeded|ConnectTimeout|Temporary failure", text):
        raise SideEnvironmentError(f"{package!r} was not found and a package index did not answer (no package "
                                   "index reachable, or not all of them); check the network and "
                                   "pip's index settings (pip config list), and the spelling")
    hint = f"; pip said: {warnings[0][:200]}" if warnings else "; check the spelling"
    raise GateError(f"no package named {package!r} on the configured package indexes (pip index versions "
                    f"{package} found none){hint}")


def check_candidates(candidates: list[Candidate], versions: Callable[[str], list[str]] | None = None) -> None:
    """Before any side environment is built: every ``name==version`` requirement names a package and a release
    the indexes have. Raises :class:`GateError` "PKG has no release X; newest: ..." (exit 2), or what
    :func:`available_versions` raises. Local wheels are not looked up."""
    for c in candidates:
        for r in c.requirements:
            if r.endswith(".whl"):
                continue
            pkg, _, v = r.partition("==")
            known = (versions or available_versions)(pkg)
            if v not in known and _version(v) not in {_version(k) for k in known} - {None}:
                newest = ", ".join(known[:5]) or "none"
                raise GateError(f"{pkg} has no release {v} on the configured package indexes; newest: {newest}")


def check_request(baseline: str, sections: tuple[str, ...] | None, markdown: str | None = None, *,
                  outputs: dict[str, str | None] | None = None, need_assets: bool = True) -> dict:
    """Everything about a gate request that can be refused before a side environment is built; returns the
    loaded baseline. Raises :class:`~llmfound.errors.SnapshotError` / :class:`GateError` (exit 2) for a
    missing, damaged or newer-schema baseline, a section it does not hold, an unknown section, a ``--markdown``
    path (or one of ``outputs``: option -> another file the run will write) that is the baseline itself;
    :class:`~llmfound.errors.AssetMissingError` (exit 3) when the asset cache lacks entries (the checks in side
    environments read only the cache, offline), unless ``need_assets`` is False (a request only listed, never
    run)."""
    from llmfound import assets
    from llmfound.errors import AssetMissingError
    from llmfound.upgrade import snapshot
    from llmfound.upgrade.sections import check_sections

    base = snapshot.load(baseline)
    if sections is not None:
        check_sections(sections)
        missing = [n for n in sections if n not in base["sections"]]
        if missing:
            raise GateError(f"baseline {baseline!r} holds no section {', '.join(missing)} (it has: "
                            f"{', '.join(base['sections']) or 'none'}); choose from those")
    for opt, out in {"--markdown": markdown, **(outputs or {})}.items():
        if out and Path(out).resolve() == Path(baseline).resolve():
            raise GateError(f"{opt} {out!r} is the baseline file; name another file for the report")
    if not need_assets:
        return base
    lacking = [n for n in assets.entry_names() if not assets.is_complete(n)]
    if lacking:
        raise AssetMissingError(f"the asset cache at {assets.home()} lacks {len(lacking)} of "
                                f"{len(assets.entry_names())} entries ({', '.join(lacking[:4])}"
                                f"{', ...' if len(lacking) > 4 else ''}); run `llmfound assets fetch --all` first: "
                                "the checks in side environments read only the cache")
    return base


def ledger_changes(states: list[dict]) -> list[dict]:
    """Ledger entries whose state differs from "still broken", the state of every entry at llmfound's pins
    (specs/test_ledger.py holds each under a strict xfail): ``{"id", "was", "now", "action"}`` with action
    "retire the entry" (fixed) or "look at the probe" (it cannot check any more). Entries that cannot check
    only because an asset is not cached are left out (the same in both environments)."""
    out = []
    for e in states:
        now = e.get("state", "")
        if now == "still broken" or "not cached" in now:
            continue
        action = "retire the entry" if now.startswith("fixed") else "look at the probe"
        out.append({"id": e.get("id"), "was": "still broken", "now": now, "action": action})
    return out


def run_candidate(candidate: Candidate, baseline: str, sections: tuple[str, ...] | None = None, *,
                  overlay: bool = False, pins: list[str] | None = None, config: dict | None = None,
                  speed: bool = False) -> Outcome:
    """Build or reuse ``candidate``'s side environment and run ``snapshot compare`` there against ``baseline``
    (a snapshot file path; ``sections`` limits the compare); with ``speed``, also time the fixed probes here and
    there, interleaved (:mod:`llmfound.upgrade.speed_check`). Returns its :class:`Outcome`; an install failure
    is an outcome (``install-failed``), not an exception. Raises :class:`SideEnvironmentError` when no index is
    reachable, uv is missing, or the speed probe fails in this environment."""
    import json

    from llmfound.upgrade import side_envs

    t0 = time.perf_counter()
    try:
        env = side_envs.ensure(list(candidate.requirements), overlay=overlay, pins=pins, config=config)
    except CandidateInstallError as e:
        return Outcome(candidate.label, "install-failed", first_line(e, 400),
                       install_s=time.perf_counter() - t0)
    install_s = time.perf_counter() - t0
    args = ["snapshot", "compare", str(Path(baseline).resolve()), "--json"]
    if sections:
        args += ["--sections", ",".join(sections)]
    t1 = time.perf_counter()
    r = side_envs.run_in(env, args)
    check_s = time.perf_counter() - t1
    common = dict(relaxed=[list(p) for p in env.relaxed], warm=env.warm, rebuilt=env.rebuilt, install_s=install_s,
                  check_s=check_s)
    try:
        report = json.loads(r.stdout) if r.returncode in (0, 1) else None
    except (ValueError, RecursionError):
        report = None
    if report is None:
        lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"exit {r.returncode}"
        return Outcome(candidate.label, "broken", f"the checks failed in the side environment: {why}"[:400],
                       versions=dict(env.installed), **common)
    drift = report.get("drift", [])
    flips = ledger_changes(report.get("ledger", []))
    timing = None
    if speed:
        from llmfound.upgrade import speed_check

        class CandidateProbeFailed(Exception):
            """The probe failed in the side environment: the candidate is broken (a failure here propagates)."""

        def candidate_run() -> dict:
            try:
                return speed_check.parse_run(side_envs.run_in(env, ["snapshot", "speed", "--json"]),
                                             "the side environment")
            except SideEnvironmentError as e:
                raise CandidateProbeFailed(first_line(e, 400)) from None

        try:
            base_runs, cand_runs = speed_check.interleaved(speed_check.run_here, candidate_run)
        except CandidateProbeFailed as e:
            return Outcome(candidate.label, "broken", str(e), versions=dict(env.installed), **common)
        timing = speed_check.compare(base_runs, cand_runs)
        drift = drift + speed_check.drifts(timing)
    state = "drift" if drift else "pass"
    detail = f"{len(drift)} behaviour{'s' if len(drift) != 1 else ''} drifted" if drift else "no drift"
    slow = [d["subject"] for d in drift if d.get("section") == "speed"]
    if slow:
        detail += f" ({', '.join(slow)} slower)"
    if flips:
        detail += f"; {len(flips)} ledger entr{'y' if len(flips) == 1 else 'ies'} flipped"
    return Outcome(candidate.label, state, detail, report.get("new_versions", {}), drift, flips, speed=timing,
                   **common)


def gate(candidates: list[Candidate], baseline: str, sections: tuple[str, ...] | None = None, *,
         overlay: bool = False, on_result: Callable[[Outcome], None] | None = None,
         on_start: Callable[[Candidate], None] | None = None, base: dict | None = None, speed: bool = False) -> dict:
    """Run every candidate (:func:`run_candidate`), oldest first as given; ``on_start`` / ``on_result`` are
    called around each (progress); ``speed`` adds the interleaved speed check per candidate. Returns the report:
    ``{"schema"`` (:data:`REPORT_SCHEMA`), ``"baseline"`` (its path), ``"baseline_sha256"`` (of the file's
    bytes), ``"baseline_versions"``, ``"pins"`` (llmfound's pinned requirements each side environment started
    from), ``"sections", "overlay", "speed", "created", "outcomes": [Outcome as dict], "exit_code"}``: the
    fields before ``created`` say what the candidates were judged against, and
    :func:`llmfound.upgrade.gate_reports.merge` refuses to merge reports where they differ (the baseline's path
    aside: :data:`llmfound.upgrade.gate_reports.IDENTITY`). The baseline is read first (:func:`check_request`:
    :class:`~llmfound.errors.SnapshotError` for a missing file or a newer schema, exit 2) unless ``base``, what
    :func:`check_request` returned for it, is given (the CLI checks first)."""
    from llmfound.upgrade import side_envs

    base = check_request(baseline, sections) if base is None else base
    config = side_envs.pip_config()
    pins = side_envs.pinned_requirements()
    outcomes = []
    for c in candidates:
        if on_start:
            on_start(c)
        o = run_candidate(c, baseline, sections, overlay=overlay, pins=pins, config=config, speed=speed)
        outcomes.append(o)
        if on_result:
            on_result(o)
    import hashlib

    report = {"schema": REPORT_SCHEMA, "baseline": str(baseline),
              "baseline_sha256": hashlib.sha256(Path(baseline).read_bytes()).hexdigest(),
              "baseline_versions": base.get("versions", {}), "pins": list(pins),
              "sections": list(sections or base["sections"]), "overlay": overlay, "speed": speed,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "outcomes": [asdict(o) for o in outcomes]}
    report["exit_code"] = exit_code(report)
    return report


def exit_code(report: dict) -> int:
    """0 when every candidate passed; 1 when any drifted or broke; else 3 when any install failed."""
    states = {o["state"] for o in report["outcomes"]}
    if states & {"drift", "broken"}:
        return 1
    return 3 if "install-failed" in states else 0


def to_markdown(report: dict) -> str:
    """The report as GitHub-flavoured Markdown (for a CI job to attach): a summary table (candidate, state,
    detail, seconds), then per candidate a side environment rebuilt, companions moved, its drift grouped by
    subject and section and its ledger flips."""
    lines = [f"# llmfound gate: {len(report['outcomes'])} candidate(s) against `{Path(report['baseline']).name}`",
             "", f"{report['created']}; baseline recorded with "
             + ", ".join(f"{k} {v}" for k, v in report["baseline_versions"].items() if v and k != "driver"), "",
             "| candidate | state | detail | install s | checks s |", "|---|---|---|---|---|"]
    for o in report["outcomes"]:
        lines.append(f"| `{o['candidate']}` | **{o['state']}** | {md_cell(o['detail'])} | {o['install_s']:.1f}"
                     f"{' (warm)' if o['warm'] else ''} | {o['check_s']:.1f} |")
    for o in report["outcomes"]:
        if not (o["drift"] or o["ledger"] or o["relaxed"] or o.get("rebuilt")):
            continue
        lines += ["", f"## `{o['candidate']}`", ""]
        if o.get("rebuilt"):
            lines += [md_cell(o["rebuilt"], 400), ""]
        if o["relaxed"]:
            lines.append("companions moved to the candidate's range: "
                         + ", ".join(f"`{a}` -> `{b}`" for a, b in o["relaxed"]))
            lines.append("")
        if o["drift"]:
            lines += ["| subject | section | behaviour | old | new |", "|---|---|---|---|---|"]
            for d in sorted(o["drift"], key=lambda d: (d["subject"], d["section"], d["behaviour"])):
                lines.append(f"| {md_cell(d['subject'])} | {d['section']} | {md_cell(d['behaviour'])} | "
                             f"{md_cell(d['old'])} | {md_cell(d['new'])} |")
        for f in o["ledger"]:
            lines.append(f"- ledger `{f['id']}`: {f['was']} -> {f['now']} ({f['action']})")
    return "\n".join(lines) + "\n"
