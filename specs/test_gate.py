"""Lesson: a library upgrade is tried in a side environment, never in yours, and judged by what drifted.

``llmfound gate transformers==5.24.0`` builds an isolated virtual environment with uv (llmfound's pinned set,
the candidate overriding it), runs ``llmfound snapshot compare`` there, and reports pass / drift /
install-failed / broken per candidate, each drift by family, section and behaviour. These specs run the gate's
logic without any package index: candidates that are local wheels, index settings and version lists given as
data, a behaviour change planted in the baseline. The real release history is in docs/changelog.md.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import os
import sysconfig
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from llmfound import assets
from llmfound.upgrade import changelog, gate as G, gate_reports, side_envs, snapshot
from llmfound.cli import upgrade as cli_gate
from llmfound.cli import main
from llmfound.errors import GateError, SideEnvironmentError, SnapshotError

VERSIONS = ["5.24.0", "5.24.0rc1", "5.23.0", "5.22.2", "5.22.0.dev0", "5.21.1", "5.20.0", "4.57.6"]


def versions_of(pkg: str) -> list[str]:
    """Stands in for the package indexes: transformers has :data:`VERSIONS`, nothing else exists."""
    if pkg != "transformers":
        raise GateError(f"no package named {pkg!r} on the configured package indexes")
    return VERSIONS


# ------------------------------------------------------------------------------------------ candidates

BAD_CANDIDATES = [
    ("", "an empty candidate"),
    ("transformers>=5", "is not name==version"),
    ("transformers", "is not name==version"),
    ("transformers==5.24.0 transformers==5.23.0", "names 'transformers' twice"),
    ("Tokenizers==0.22.2 tokenizers==0.23.3", "names 'tokenizers' twice"),
    ("/nowhere/pkg-1.0-py3-none-any.whl", "does not exist"),
    ("transformers==abc", "is not name==version"),
    ("a-==1.0", "is not name==version"),
    ("transformers[torch]==5.24.0", "no extras"),
]


@pytest.mark.parametrize("text,expected", BAD_CANDIDATES, ids=[b[0] or "empty" for b in BAD_CANDIDATES])
def test_a_candidate_that_is_not_a_release_is_one_line(text, expected):
    with pytest.raises(GateError) as e:
        G.parse_candidate(text)
    assert expected in str(e.value), f"candidate {text!r}: expected {expected!r} in the message, got {e.value}"


def test_a_candidate_may_be_several_requirements_installed_together():
    c = G.parse_candidate("tokenizers==0.22.2  transformers==5.21.0")
    assert c.requirements == ("tokenizers==0.22.2", "transformers==5.21.0"), c
    assert c.label == "tokenizers==0.22.2 transformers==5.21.0"


def test_across_takes_every_final_release_in_the_range_oldest_first():
    got = [c.label for c in G.parse_across("transformers==5.20.0..5.24.0", versions_of)]
    expected = ["transformers==5.20.0", "transformers==5.21.1", "transformers==5.22.2", "transformers==5.23.0",
                "transformers==5.24.0"]
    assert got == expected, f"--across transformers==5.20.0..5.24.0 over {VERSIONS}: expected {expected}, got {got}"


@pytest.mark.parametrize("spec,expected", [
    ("transformers==5.24.0", "is not PKG==FIRST..LAST"),
    ("transformers==5.24.0..5.20.0", "5.24.0 is after 5.20.0"),
    ("transformers==5.30.0..5.40.0", "no release of transformers between 5.30.0 and 5.40.0"),
    ("transformers==x..y", "Invalid version"),
])
def test_a_bad_range_is_one_line(spec, expected):
    with pytest.raises(GateError) as e:
        G.parse_across(spec, versions_of)
    assert expected in str(e.value), f"--across {spec!r}: expected {expected!r}, got {e.value}"


@pytest.mark.parametrize("text,expected", [
    ("transformers==5.99.0", "transformers has no release 5.99.0"),
    ("nosuchpkg==1.0", "no package named 'nosuchpkg'"),
])
def test_a_release_that_does_not_exist_is_refused_before_any_install(text, expected):
    with pytest.raises(GateError) as e:
        G.check_candidates([G.parse_candidate(text)], versions_of)
    assert expected in str(e.value), f"candidate {text!r}: expected {expected!r}, got {e.value}"


def unreachable_index(monkeypatch):
    """pip and uv pointed at an index nobody answers (a closed local port): no network needed to test this."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("UV_OFFLINE", raising=False)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # a refused connection needs no retry to be one
    G.available_versions.cache_clear()


def test_no_index_reachable_is_an_environment_problem_not_a_bad_name(monkeypatch, side_root):
    unreachable_index(monkeypatch)
    with pytest.raises(SideEnvironmentError) as e:
        G.available_versions("transformers")
    assert "no package index reachable" in str(e.value), e.value
    with pytest.raises(SideEnvironmentError) as e:
        side_envs.ensure(["transformers==5.24.0"], pins=[], config=side_envs.pip_config())
    assert "no package index reachable" in str(e.value), e.value
    assert not any(side_root.glob("*/bin")), "a half-built side environment was left behind"


# --------------------------------------------------------------------------------- requirement sets

PINS = ["torch==2.13.0", "transformers==5.23.0", "tokenizers==0.23.3", "huggingface_hub==2.4.0"]


def test_the_candidate_overrides_its_pin_and_nothing_else():
    got = side_envs.compose(PINS, ["transformers==5.24.0", "tqdm==4.70.0"])
    assert got == ["torch==2.13.0", "transformers==5.24.0", "tokenizers==0.23.3", "huggingface_hub==2.4.0",
                   "tqdm==4.70.0"], got


def test_a_companion_the_candidate_excludes_takes_the_candidates_range():
    got = side_envs.compose(PINS, ["transformers==5.15.1"], {"tokenizers": "tokenizers<=0.23.0,>=0.22.0",
                                                     "huggingface-hub": "huggingface-hub<2.0"})
    assert got == ["torch==2.13.0", "transformers==5.15.1", "tokenizers<=0.23.0,>=0.22.0", "huggingface-hub<2.0"], got


def test_names_compare_as_pypi_normalizes_them():
    assert side_envs.compose(["Huggingface_Hub==2.4.0"], ["huggingface-hub==1.33.0"]) == ["huggingface-hub==1.33.0"]


PIP_CONFIG = """global.find-links='/opt/wheels'
global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'
global.constraint='/etc/pip/constraints.txt'
global.cert='/etc/ssl/certs/ca.crt'
user.index-url='https://ignored.example/simple'
:env:.index-url='https://mirror.example/simple'
"""


def test_uv_reads_the_indexes_pip_is_configured_with():
    """uv does not read pip.conf; the gate passes pip's settings on, and pip's index strategy with them."""
    config = side_envs.pip_config(PIP_CONFIG)
    assert config["index-url"] == "https://mirror.example/simple", config  # the environment wins, as in pip
    args = side_envs.uv_index_args(config)
    expected = ["--default-index", "https://mirror.example/simple", "--index", "file:///opt/a/simple",
                "--index", "file:///opt/b/simple", "--find-links", "/opt/wheels", "--constraint",
                "/etc/pip/constraints.txt", "--index-strategy", "unsafe-best-match"]
    assert args == expected, f"pip config {config}: expected uv flags {expected}, got {args}"
    assert side_envs._uv_env(config)["SSL_CERT_FILE"] == os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca.crt")


def test_the_same_set_names_the_same_side_environment(tmp_path):
    a = side_envs.env_key(["transformers==5.24.0", "torch==2.13.0"])
    assert a == side_envs.env_key(["torch==2.13.0", "transformers==5.24.0"]), "order must not matter"
    assert a != side_envs.env_key(["transformers==5.23.0", "torch==2.13.0"]), "a different release, a different env"
    assert a != side_envs.env_key(["transformers==5.24.0", "torch==2.13.0"], overlay=True)
    w = tmp_path / "p-1.0-py3-none-any.whl"
    w.write_bytes(b"one")
    k1 = side_envs.env_key([str(w)])
    w.write_bytes(b"two")
    assert side_envs.env_key([str(w)]) != k1, "a rebuilt local wheel must get a fresh side environment"


def test_the_workflows_run_the_gate():
    """CI gating an upgrade uses the same command a person does (.github/workflows/: upgrade-gate by hand,
    gate-matrix one job per candidate, gate-watch on a schedule; the set-up they share in .github/actions/)."""
    github = Path(__file__).resolve().parent.parent / ".github"
    texts = {p.name if p.parent.name == "workflows" else str(p.relative_to(github)): p.read_text().replace("\\\n", " ")
             for p in [*github.glob("workflows/*.yml"), *github.glob("actions/*/action.yml")]}
    runs = [ln.strip() for t in texts.values() for ln in t.splitlines() if "bin/llmfound gate " in ln]
    assert runs and all("--markdown" in r or "--json-out" in r or "--list-only" in r for r in runs), (
        f"expected `llmfound gate ... --markdown/--json-out/--list-only` steps, got {runs}")
    assert "llmfound gate-merge" in texts["gate-matrix.yml"], "the matrix must merge its reports with gate-merge"
    installs = [ln.strip() for t in texts.values() for ln in t.splitlines() if "pip install" in ln]
    assert installs and all(ln.endswith("-e .") for ln in installs), (
        f"the workflows must install only the pinned set, never the candidate, into their own environment: "
        f"{installs}")


# ------------------------------------------------------------------------------------------ verdicts

@pytest.mark.parametrize("states,expected", [
    (["pass", "pass"], 0), (["pass", "drift"], 1), (["install-failed", "broken"], 1),
    (["install-failed", "pass"], 3), (["drift", "install-failed"], 1),
])
def test_exit_status_drift_before_install_failure(states, expected):
    got = G.exit_code({"outcomes": [{"state": s} for s in states]})
    assert got == expected, f"states {states}: expected exit {expected}, got {got}"


def test_a_ledger_entry_that_flips_is_named_with_what_to_do():
    states = [{"id": "a", "state": "still broken"}, {"id": "b", "state": "fixed: retire it"},
              {"id": "c", "state": "cannot check: not cached: x"}, {"id": "d", "state": "cannot check: KeyError: 3"}]
    got = G.ledger_changes(states)
    assert [(f["id"], f["action"]) for f in got] == [("b", "retire the entry"), ("d", "look at the probe")], got


# -------------------------------------------------------------------------- a real side environment

def make_wheel(folder: Path, name: str, version: str, init: str, extra: dict[str, str] | None = None) -> Path:
    """A real, minimal wheel (PEP 427): package ``name`` whose ``__init__.py`` is ``init``, plus ``extra`` files
    (path in the wheel -> text), e.g. a ``.pth`` file that imports the package at interpreter start."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {**(extra or {}), f"{name}/__init__.py": init,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: llmfound-specs\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            data = text.encode()
            z.writestr(member, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(data)}")
        z.writestr(f"{info}/RECORD", "\n".join(record + [f"{info}/RECORD,,"]) + "\n")
    return path


def probe_wheel(folder: Path, version: str = "1.0", corrupt: bool = False) -> Path:
    """The candidate these specs install: a package that changes nothing (or, ``corrupt``, a .whl that is not a
    zip file)."""
    if corrupt:
        path = folder / f"llmfound_gate_probe-{version}-py3-none-any.whl"
        path.write_bytes(b"not a zip file")
        return path
    return make_wheel(folder, "llmfound_gate_probe", version, f"VERSION = {version!r}\n")


def calling_environment() -> dict:
    """What the gate must never change: each entry of this environment's site-packages and bin/, with its
    modification time."""
    out = {}
    for folder in (Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["scripts"])):
        for p in folder.iterdir():
            out[str(p)] = p.lstat().st_mtime_ns
    return out


PLANTED_DRIFT = ("wild_templates", "Reka-Edge.jinja", "empty-content",
                 ["ok", "human: <sep>assistant:"], ["ok", "human:<sep>assistant:"])
"""The drift planted in the baseline: (section, subject, behaviour, the shipped baseline's value, the planted one):
Reka-Edge's template rendering an empty user message recorded without the space after ``human:``. Planted in
the section that is cheapest to recompute in a side environment (the wild templates need one tokenizer; the
special tokens would load every family's)."""


@pytest.fixture()
def planted_baseline(tmp_path, require_assets):
    """The shipped baseline's section :data:`PLANTED_DRIFT` names, alone, with that one behaviour changed."""
    require_assets(*assets.entry_names())  # the gate refuses to start on a cache that lacks entries
    section, subject, behaviour, shipped, planted = PLANTED_DRIFT
    snap = snapshot.load(snapshot.BASELINE)
    sect = copy.deepcopy(snap["sections"][section])
    assert sect[subject][behaviour] == shipped, sect[subject]
    sect[subject][behaviour] = planted
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(dict(snap, sections={section: sect})))
    return path


@pytest.fixture()
def side_root(tmp_path, monkeypatch):
    """Side environments in a temporary folder, built without any index (uv --offline)."""
    monkeypatch.setattr(side_envs, "_envs_root", lambda: tmp_path / "envs")
    monkeypatch.setenv("UV_OFFLINE", "1")
    return tmp_path / "envs"


def broken_wheel(folder: Path) -> Path:
    """A candidate that installs but keeps the checks from running at all: a 'typer', which the command line
    imports first, that cannot be imported."""
    return make_wheel(folder, "typer", "99.0", "raise ImportError('planted: this typer is broken')\n")


def test_the_gate_reports_a_planted_drift_and_never_touches_this_environment(planted_baseline, side_root,
                                                                             tmp_path, capsys, lesson):
    before = calling_environment()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    good, bad, broken = probe_wheel(wheels), probe_wheel(wheels, "2.0", corrupt=True), broken_wheel(wheels)
    md, seq = tmp_path / "gate.md", tmp_path / "sequential.json"
    code = main(["gate", str(good), str(bad), str(broken), "--overlay", "--baseline", str(planted_baseline),
                 "--sections", PLANTED_DRIFT[0], "--json", "--markdown", str(md), "--json-out", str(seq)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 == report["exit_code"], f"expected exit 1 (drift), got {code}: {report}"
    assert json.loads(seq.read_text()) == report, "--json-out must hold the report --json prints"
    first, second, third = report["outcomes"]
    assert first["state"] == "drift", first
    section, subject, behaviour, shipped, planted = PLANTED_DRIFT
    drift = [(d["section"], d["subject"], d["behaviour"], d["old"], d["new"]) for d in first["drift"]]
    expected = [(section, subject, behaviour, planted, shipped)]  # old: the baseline's; new: the side env's
    assert drift == expected, f"planted {subject} {behaviour}: expected exactly the drift {expected}, got {drift}"
    assert second["state"] == "install-failed" and second["detail"], second
    assert third["state"] == "broken" and "planted: this typer is broken" in third["detail"], third
    assert "| `llmfound_gate_probe-1.0-py3-none-any.whl` | **drift** |" in md.read_text(), md.read_text()
    row = f"| {subject} | {section} | {behaviour} | {json.dumps(planted)} | {json.dumps(shipped)} |"
    assert row in md.read_text(), f"expected the row {row!r} in:\n{md.read_text()}"
    assert calling_environment() == before, "the gate changed the calling environment"
    lesson.value("a planted drift found in a side environment", f"{first['check_s']:.0f} s of checks")

    # the same candidate again: its side environment is reused (only the checks would run)
    assert not first["warm"], first
    again = side_envs.ensure([str(good)], overlay=True)
    assert again.warm and again.seconds == 0.0, again
    assert len(list(side_root.iterdir())) == 2, f"expected two side environments, got {list(side_root.iterdir())}"

    # a CI matrix: one job per candidate, each writing its report, then one merge. The install-failed and the
    # broken candidate run alone here for real; the drifted one's report is its outcome alone (running its
    # checks twice would cost the default tier half a minute)
    reports = [tmp_path / "report-drift.json"]
    reports[0].write_text(json.dumps(dict(report, outcomes=[first], exit_code=G.exit_code({"outcomes": [first]}))))
    for i, w in enumerate((broken, bad)):  # not in the sequential order: the merge orders them as --across does
        reports.append(tmp_path / f"report-{i}.json")
        code = main(["gate", str(w), "--overlay", "--baseline", str(planted_baseline), "--sections",
                     PLANTED_DRIFT[0], "--json-out", str(reports[-1])])
        assert code in (1, 3) and reports[-1].is_file(), f"{w.name}: exit {code}, {capsys.readouterr().err}"
    capsys.readouterr()
    merged_md = tmp_path / "merged.md"
    code = main(["gate-merge", *map(str, reports), "--json", "--markdown", str(merged_md)])
    merged = json.loads(capsys.readouterr().out)
    assert code == report["exit_code"] == merged["exit_code"], f"merge exit {code}, sequential {report['exit_code']}"
    got, expected = [summary_of(o) for o in merged["outcomes"]], [summary_of(o) for o in report["outcomes"]]
    assert got == expected, f"merged outcomes differ from the sequential run's:\nexpected {expected}\ngot {got}"
    assert timeless(merged_md.read_text()) == timeless(md.read_text()), (
        f"merged Markdown differs from the sequential run's:\n{timeless(md.read_text())}\n---\n"
        f"{timeless(merged_md.read_text())}")


def summary_of(outcome: dict) -> dict:
    """An outcome without what differs between two runs of the same candidate: seconds and a reused environment."""
    return {k: v for k, v in outcome.items() if k not in ("install_s", "check_s", "warm")}


def timeless(markdown: str) -> str:
    """A gate report's Markdown without its date and seconds."""
    import re

    lines = markdown.splitlines()
    lines[2] = lines[2].split(";", 1)[1]  # "<created>; baseline recorded with ..."
    return "\n".join(re.sub(r"\| [0-9.]+( \(warm\))? \| [0-9.]+ \|$", "| s | s |", ln) for ln in lines)


def test_the_checks_breaking_in_a_side_environment_is_its_own_state(planted_baseline, side_root, tmp_path):
    """A candidate that installs but keeps the checks from running at all (here: a 'typer', which the command
    line imports first, that cannot be imported) is ``broken``, with the error's last line; not drift and not an
    install failure. (A library that breaks only some families is drift: each such family records its error.)"""
    o = G.run_candidate(G.parse_candidate(str(broken_wheel(tmp_path))), str(planted_baseline), PLANTED_DRIFT[:1],
                        overlay=True)
    assert o.state == "broken" and "planted: this typer is broken" in o.detail, o


@pytest.mark.parametrize("argv,expected", [
    (["gate"], "name at least one candidate"),
    (["gate", "transformers==5.24.0", "--baseline", ""], "--baseline is empty"),
    (["gate", "transformers==5.24.0", "--markdown", str(snapshot.BASELINE)], "is the baseline file"),
    (["gate", "transformers==5.24.0", "--baseline", "/nowhere/base.json"], "does not exist"),
    (["gate", "transformers==5.24.0", "--sections", "nope"], "unknown snapshot section"),
    (["gate", "transformers>=5"], "is not name==version"),
    (["gate", "--newer", ""], "--newer is empty"),
    (["gate", "--newer", "typer-slim"], "llmfound pins no release of 'typer-slim'"),
    (["gate", "transformers==5.24.0", "--json-out", str(snapshot.BASELINE)], "is the baseline file"),
    (["gate", "transformers==5.24.0", "--json-out", "r.json", "--markdown", "r.json"], "both name 'r.json'"),
    (["gate", "transformers==5.24.0", "--list-only", "--json-out", "r.json"], "--list-only runs nothing"),
    (["gate-merge", str(snapshot.BASELINE), "--json-out", str(snapshot.BASELINE)], "is one of the reports"),
    (["gate-merge", str(snapshot.BASELINE)], "is not a gate report"),
])
def test_bad_requests_exit_2_before_any_side_environment(argv, expected, side_root, capsys):
    code = main(argv)
    got = capsys.readouterr().err
    assert code == 2 and expected in got, f"{argv}: expected exit 2 and {expected!r}, got {code}: {got}"
    assert got.count("\n") == 1, f"{argv}: expected one line, got {got!r}"
    assert not side_root.exists(), f"{argv}: a side environment was built for a bad request"


def test_a_baseline_without_the_section_asked_for_is_refused_before_any_build(planted_baseline, side_root,
                                                                                capsys):
    code = main(["gate", "transformers==5.24.0", "--baseline", str(planted_baseline), "--sections", "ids"])
    got = capsys.readouterr().err
    assert code == 2 and f"holds no section ids (it has: {PLANTED_DRIFT[0]})" in got, (code, got)
    assert not side_root.exists(), "a side environment was built for a baseline without the section"


PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text({name!r})\n"


def test_nothing_in_the_callers_directory_runs_in_a_side_environment_or_pip(side_root, tmp_path, monkeypatch):
    """Security: ``python -m X`` puts the current directory first on ``sys.path``, so a ``rich.py`` or ``pip.py``
    in the folder the gate was started from would run in every side environment and every pip call (a hostile
    tester's ``rich.py`` did). The gate starts interpreters in Python's isolated mode (``-I``) from a neutral
    directory. Planted modules named like what ``python -m llmfound`` and ``python -m pip`` import first must
    not run."""
    from llmfound.assets import registries

    cwd, marker = tmp_path / "cwd", tmp_path / "planted-module-ran"
    cwd.mkdir()
    for name in ("llmfound", "typer", "rich", "click", "pip", "torch"):
        (cwd / f"{name}.py").write_text(PLANTED.format(marker=str(marker), name=name))
    (tmp_path / "w").mkdir()
    wheel = str(probe_wheel(tmp_path / "w"))
    monkeypatch.chdir(cwd)
    env = side_envs.ensure([wheel], overlay=True)
    r = side_envs.run_in(env, ["--help"])
    assert not marker.exists(), (f"a planted {marker.read_text()}.py in the caller's directory ran in the side "
                                 "environment")
    assert r.returncode == 0 and "gate" in r.stdout, (r.returncode, r.stderr[-500:])
    side_envs.pip_config()
    registries.pip_sources()
    assert not marker.exists(), f"a planted {marker.read_text()}.py in the caller's directory ran with pip"


def test_a_damaged_marker_counts_as_an_interrupted_build(side_root, tmp_path):
    (tmp_path / "w").mkdir()
    wheel = str(probe_wheel(tmp_path / "w"))
    # pip's settings read once: ensure would run `python -m pip config list` (a quarter second) on every call
    build = functools.partial(side_envs.ensure, [wheel], overlay=True, config=side_envs.pip_config())
    first = build()
    (first.path / side_envs.MARKER).write_text('{"installed": {"llmfound-gate-pro')  # cut short
    again = build()
    assert not again.warm and (again.path / side_envs.MARKER).is_file(), again
    (again.path / side_envs.MARKER).write_text("[]")
    assert not build().warm, "a marker that is not a map must not count as complete"
    (again.path / side_envs.MARKER).write_text('{"installed": ' + "[" * 5000 + "]" * 5000 + ', "relaxed": []}')
    assert not build().warm, "a marker nested 5,000 deep must count as damaged"


def test_a_side_environment_damaged_by_hand_is_rebuilt_not_blamed_on_the_candidate(side_root, tmp_path,
                                                                                   monkeypatch, capsys):
    """Field report (issue 25): transformers removed from a cached side environment by hand (``uv pip
    uninstall``) made every later gate run report 18 drifted behaviours for the candidate, until the folder was
    deleted. A side environment is reused only while ``uv pip freeze`` there still matches what its marker
    recorded; otherwise it is built again, and the report says so."""
    import subprocess

    (tmp_path / "w").mkdir()
    wheel = str(probe_wheel(tmp_path / "w"))
    # pip's settings read once: ensure would run `python -m pip config list` (a quarter second) on every call
    build = functools.partial(side_envs.ensure, [wheel], overlay=True, config=side_envs.pip_config())
    first = build()
    r = subprocess.run([side_envs.uv_binary(), "pip", "uninstall", "--python", str(first.python),
                        "llmfound-gate-probe"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    again = build()
    assert not again.warm and "llmfound-gate-probe missing" in again.rebuilt, (
        f"expected a rebuild naming the package removed by hand, got warm={again.warm}, rebuilt={again.rebuilt!r}")
    probe = subprocess.run([str(again.python), "-I", "-c", "import llmfound_gate_probe"], capture_output=True)
    assert probe.returncode == 0, "the rebuilt side environment lacks the candidate"
    assert build().warm, "an intact side environment must be reused"

    # the gate's report carries it: the JSON field and the Markdown file (the CLI adds a "note:" line on stderr)
    monkeypatch.setattr(side_envs, "ensure", lambda *a, **k: again)
    report = {"file": "b.json", "old_versions": {}, "new_versions": {}, "drift": [], "ledger": []}
    monkeypatch.setattr(side_envs, "run_in",
                        lambda env, args: subprocess.CompletedProcess(args, 0, json.dumps(report), ""))
    o = G.run_candidate(G.parse_candidate(wheel), str(snapshot.BASELINE), overlay=True)
    assert o.state == "pass" and not o.warm and o.rebuilt == again.rebuilt, o
    md = G.to_markdown({"baseline": "b.json", "baseline_versions": {}, "created": "now", "outcomes": [asdict(o)]})
    assert "llmfound-gate-probe missing" in md, md


def test_a_cache_that_is_not_a_folder_is_an_environment_problem(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(side_envs, "_envs_root", lambda: tmp_path / "file" / "gate" / "envs")
    with pytest.raises(SideEnvironmentError) as e:
        side_envs.ensure(["transformers==5.24.0"], pins=[], config={})
    assert "LLMFOUND_HOME is a writable folder" in str(e.value) and e.value.exit_code == 3, e.value


def test_a_report_that_cannot_be_written_loses_nothing_measured(capsys):
    """The Markdown file is written after the report is out; a write that fails is one line, exit 2."""
    report = {"baseline": "b.json", "baseline_versions": {}, "created": "2026-12-01T00:00:00Z",
              "outcomes": [{"candidate": "transformers==5.24.0", "state": "pass", "detail": "no drift",
                            "install_s": 1.0, "check_s": 60.0, "warm": True, "drift": [], "ledger": [],
                            "relaxed": []}]}
    code = cli_gate._write_markdown("/proc/llmfound-gate-report.md", report)  # /proc takes no new files
    got = capsys.readouterr().err
    assert code == 2 and "could not be written" in got and got.count("\n") == 1, (code, got)


def test_a_baseline_from_a_newer_schema_is_refused(tmp_path, side_root, capsys):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema": snapshot.SCHEMA + 1, "versions": {}, "sections": {}}))
    code = main(["gate", "transformers==5.24.0", "--baseline", str(newer)])
    got = capsys.readouterr().err
    assert code == 2 and "newer than this llmfound reads" in got, (code, got)
    with pytest.raises(SnapshotError):
        G.gate([G.parse_candidate("transformers==5.24.0")], str(newer))


# ------------------------------------------------------------------------------------ the changelog

def across_report(states: dict[str, tuple[str, list[str]]]) -> dict:
    """A planted ``--across`` report: version -> (state, drifted behaviours of family 'f'), pinned at 5.3.0."""
    outcomes = [{"candidate": f"transformers=={v}", "state": st, "detail": "", "relaxed": [], "ledger": [],
                 "drift": [{"subject": "f", "section": "ids", "behaviour": b, "old": 1, "new": 2} for b in bs]}
                for v, (st, bs) in states.items()]
    return {"baseline_versions": {"transformers": "5.3.0"}, "created": "2026-12-01T00:00:00Z",
            "outcomes": outcomes}


def test_the_changelog_names_the_first_release_with_todays_behaviour():
    rep = across_report({"5.0.0": ("drift", ["a"]), "5.1.0": ("drift", ["a", "c"]), "5.2.0": ("pass", []),
                         "5.2.1": ("install-failed", []), "5.3.0": ("pass", []), "5.4.0": ("drift", ["b"]),
                         "5.5.0": ("drift", ["b"])})
    rels = changelog.releases([rep])["transformers"]
    from packaging.version import Version

    rows = {r["behaviour"]: r for r in changelog.behaviour_rows(rels, Version("5.3.0"))}
    got = {b: (r["differs"], r["since"], r["changes_in"]) for b, r in rows.items()}
    expected = {"a": (["5.0.0", "5.1.0"], "5.2.0", None), "c": (["5.1.0"], "5.2.0", None),
                "b": (["5.4.0", "5.5.0"], None, "5.4.0")}
    assert got == expected, f"planted releases: expected (differs, since, changes in) {expected}, got {got}"
    page = changelog.to_markdown([rep], ["llmfound gate --across transformers==5.0.0..5.5.0 --json"])
    assert "| ids | f | a | 1 | 2 | 5.0.0-5.1.0 | 5.2.0 | - |" in page, page
    assert "| 5.2.1 | install-failed | - |" in page, page
    assert "- 5.0.0-5.1.0 (today's behaviour since 5.2.0): f: ids 1" in page, page  # 'a'; 'c' differs in 5.1.0 only
    assert "- 5.4.0-5.5.0 (changes in 5.4.0): f: ids 1" in page, page


# ------------------------------------------------------------------------------------------ the gate sees speed

SLOW_INIT = """# planted: every generate() takes twice as long (it sleeps as long as it ran)
import time

import transformers.generation.utils as utils

_generate = utils.GenerationMixin.generate


def generate(self, *args, **kwargs):
    t0 = time.perf_counter()
    out = _generate(self, *args, **kwargs)
    time.sleep(time.perf_counter() - t0)
    return out


utils.GenerationMixin.generate = generate
"""


def slow_wheel(folder: Path) -> Path:
    """A planted candidate that makes ``generate`` twice as slow and changes nothing else: a package imported at
    interpreter start by its ``.pth`` file."""
    return make_wheel(folder, "llmfound_gate_slow", "1.0", SLOW_INIT,
                      extra={"llmfound_gate_slow.pth": "import llmfound_gate_slow\n"})


@pytest.mark.slow
def test_the_gate_catches_a_candidate_twice_as_slow_and_passes_an_identical_one(side_root, tmp_path, capsys,
                                                                                 require_assets, lesson):
    """``gate --speed`` times SmolLM2's decode and gpt2's encode here and in each side environment, interleaved,
    three rounds: the planted 2x-slow ``generate`` is a drift of section ``speed``; a candidate that changes
    nothing is not (how often it would be, over many repeats: benchmarks/gate_speed.py)."""
    require_assets(*assets.entry_names())
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    same, slow = probe_wheel(wheels), slow_wheel(wheels)
    code = main(["gate", str(same), str(slow), "--overlay", "--sections", "special_tokens", "--speed", "--json"])
    report = json.loads(capsys.readouterr().out)
    first, second = report["outcomes"]
    assert first["state"] == "pass", f"identical candidate: expected pass, got {first['state']}: {first['speed']}"
    assert second["state"] == "drift", f"2x-slow candidate: expected drift, got {second['state']}: {second}"
    assert [(d["subject"], d["section"]) for d in second["drift"]] == [("decode", "speed")], second["drift"]
    assert second["speed"]["probes"]["encode"]["slower"] is False, second["speed"]["probes"]["encode"]
    assert code == 1 == report["exit_code"]
    decode = second["speed"]["probes"]["decode"]
    lesson.value("the gate's speed check saw the planted 2x-slow generate as",
                 f"{decode['median']:.2f}x (identical candidate: {first['speed']['probes']['decode']['median']:.2f}x)")


SPEED_RUN = {"decode": 40.0, "encode": 0.7, "threads": 1, "versions": {}}


@pytest.mark.parametrize("ratios, slower", [
    ((1.0, 1.1, 0.95), False),   # an identical candidate on a noisy machine
    ((1.3, 1.45, 1.2), False),   # slower, but inside the band
    ((2.0, 1.9, 2.1), True),     # twice as slow: caught
    ((3.0, 1.1, 2.5), False),    # one quiet round says the median's 2.5x is load, not the candidate
])
def test_a_probe_is_slower_only_beyond_the_band_in_every_round(ratios, slower):
    from llmfound.upgrade import speed_check

    base = [dict(SPEED_RUN) for _ in ratios]
    cand = [dict(SPEED_RUN, decode=SPEED_RUN["decode"] * r) for r in ratios]
    result = speed_check.compare(base, cand)
    assert result["probes"]["decode"]["slower"] is slower, (
        f"decode ratios {ratios}: expected slower={slower}, got {result['probes']['decode']}")
    assert result["probes"]["encode"]["slower"] is False
    drifts = speed_check.drifts(result)
    assert [(d["subject"], d["section"]) for d in drifts] == ([("decode", "speed")] if slower else []), drifts


def test_the_rounds_alternate_which_environment_goes_first():
    from llmfound.upgrade import speed_check

    order = []
    speed_check.interleaved(lambda: order.append("base") or SPEED_RUN, lambda: order.append("cand") or SPEED_RUN,
                            rounds=4)
    assert order == ["base", "cand", "cand", "base", "base", "cand", "cand", "base"], order


# ------------------------------------------------------------------------- a matrix: merging its reports

def one_report(candidate: str = "transformers==5.24.0", state: str = "pass", **over) -> dict:
    """A gate report of one candidate, as ``gate CANDIDATE --json-out FILE`` writes it (fields: gate.gate())."""
    outcome = {"candidate": candidate, "state": state, "detail": "no drift", "versions": {}, "drift": [],
               "ledger": [], "relaxed": [], "warm": False, "rebuilt": "", "install_s": 3.0, "check_s": 60.0,
               "speed": None}
    rep = {"schema": G.REPORT_SCHEMA, "baseline": "baseline.json", "baseline_sha256": "a" * 64,
           "baseline_versions": {"transformers": "5.23.0"}, "pins": ["transformers==5.23.0"],
           "sections": ["ids"], "overlay": False, "speed": False, "created": "2026-12-05T00:00:00Z",
           "outcomes": [outcome], "exit_code": 0}
    rep.update(over)
    return rep


def write_reports(folder: Path, *reports) -> list[str]:
    """Each report (a dict, or text written as it is) to its own file in ``folder``; their paths."""
    paths = []
    for i, r in enumerate(reports):
        p = folder / f"report-{i}.json"
        p.write_text(r if isinstance(r, str) else json.dumps(r))
        paths.append(str(p))
    return paths


def test_merged_reports_keep_every_speed_drift_and_ledger_flip_in_release_order(tmp_path):
    slow = one_report("transformers==5.25.0", "drift", exit_code=1)
    slow["outcomes"][0].update(drift=[{"subject": "decode", "section": "speed", "behaviour": "ms per token",
                                       "old": 40.0, "new": 80.0}],
                               ledger=[{"id": "x", "was": "still broken", "now": "fixed: retire it",
                                        "action": "retire the entry"}],
                               speed={"probes": {"decode": {"median": 2.0, "slower": True}}})
    older = one_report("transformers==5.9.0")  # 5.9.0 before 5.25.0: by version, not by text
    merged = gate_reports.merge([(p, gate_reports.load(p)) for p in write_reports(tmp_path, slow, older)])
    assert [o["candidate"] for o in merged["outcomes"]] == ["transformers==5.9.0", "transformers==5.25.0"], merged
    assert merged["outcomes"][1] == slow["outcomes"][0], "the merge must carry an outcome whole (speed, ledger)"
    assert merged["exit_code"] == 1 and merged["created"] == "2026-12-05T00:00:00Z", merged


MERGE_REFUSALS = [
    ("not JSON", ["{not json"], "is not complete JSON"),
    ("cut short", [json.dumps(one_report())[:200]], "is not complete JSON"),
    ("empty file", [""], "is empty"),
    ("not a report", [json.dumps([1, 2])], "is not a gate report"),
    ("a field missing", [json.dumps({k: v for k, v in one_report().items() if k != "pins"})], "lacks 'pins'"),
    ("an unknown state", [one_report(state="fine")], "has state 'fine'"),
    ("a newer layout", [one_report(schema=G.REPORT_SCHEMA + 1)], "made by a newer llmfound"),
    ("an older layout", [json.dumps({k: v for k, v in one_report().items() if k != "schema"})],
     "made by an older llmfound"),
    ("one candidate twice", [one_report(), one_report()], "which is in"),
    ("another baseline", [one_report(), one_report("transformers==5.25.0", baseline_sha256="b" * 64)],
     "judged against a baseline other than"),
    ("other pins", [one_report(), one_report("transformers==5.25.0", pins=["transformers==5.22.0"])],
     'judged against pins other than'),
    ("other sections", [one_report(), one_report("transformers==5.25.0", sections=["ids", "templates"])],
     "judged against sections other than"),
]


@pytest.mark.parametrize("what,reports,expected", MERGE_REFUSALS, ids=[m[0] for m in MERGE_REFUSALS])
def test_a_report_that_cannot_be_merged_is_named_in_one_line(what, reports, expected, tmp_path, capsys):
    paths = write_reports(tmp_path, *reports)
    code = main(["gate-merge", *paths])
    got = capsys.readouterr()
    assert code == 2 and expected in got.err and got.err.count("\n") == 1, (
        f"{what}: expected exit 2 and one line with {expected!r}, got {code}: {got.err!r}")
    assert not got.out, f"{what}: nothing may be merged, got {got.out!r}"


def test_no_report_to_merge_is_refused(tmp_path, capsys):
    with pytest.raises(GateError, match="no gate report to merge"):
        gate_reports.merge([])
    code = main(["gate-merge", str(tmp_path / "*.json")])  # a shell pattern that matched nothing stays as written
    got = capsys.readouterr().err
    assert code == 2 and "does not exist" in got, (code, got)


# ------------------------------------------------------------------ a watch: releases newer than the pins

INDEX = {"torch": ["2.12.0", "2.13.0", "2.13.0+cpu", "2.14.0", "2.14.0+cpu", "2.15.0rc1"],
         "tokenizers": ["0.22.2", "0.23.3"]}
"""A local package index (PEP 503 simple pages): what each package offers."""


def local_index(folder: Path, monkeypatch) -> None:
    """pip pointed at a ``file://`` simple index built from :data:`INDEX`, and at nothing else."""
    for pkg, versions in INDEX.items():
        page = folder / "simple" / pkg
        page.mkdir(parents=True)
        links = "".join(f'<a href="../../files/{pkg}-{v}-py3-none-any.whl">{pkg}-{v}-py3-none-any.whl</a>\n'
                        for v in versions)
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", (folder / "simple").as_uri())
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    G.available_versions.cache_clear()


def test_the_watch_lists_every_final_release_newer_than_the_pins(tmp_path, monkeypatch, capsys):
    """``gate --newer PKG --list-only --json`` is the watch's plan: torch is pinned at 2.13.0, so 2.14.0 (and its
    +cpu build, the same release) is new and 2.15.0rc1 is a pre-release; tokenizers' pin 0.23.3 is its newest."""
    local_index(tmp_path, monkeypatch)
    code = main(["gate", "--newer", "torch", "--newer", "tokenizers", "--list-only", "--json"])
    got = capsys.readouterr()
    assert code == 0 and json.loads(got.out) == ["torch==2.14.0"], (code, got.out, got.err)
    code = main(["gate", "--newer", "tokenizers", "--list-only", "--json"])
    got = capsys.readouterr()
    assert code == 0 and json.loads(got.out) == [], f"nothing newer: expected [], got {code}: {got.out}{got.err}"


def test_nothing_newer_than_the_pins_is_a_quick_success(tmp_path, monkeypatch, capsys, side_root, require_assets):
    require_assets(*assets.entry_names())  # a gate run (not --list-only) checks the cache first
    local_index(tmp_path, monkeypatch)
    code = main(["gate", "--newer", "tokenizers"])
    got = capsys.readouterr()
    assert code == 0 and "nothing newer than the pins: tokenizers" in got.out, (code, got.out, got.err)
    assert not side_root.exists(), "a side environment was built with nothing to gate"
