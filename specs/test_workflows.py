"""Lesson: CI workflows are code: linted like code, pinned to commits, and given no more permission than they use.

The gate runs in GitHub Actions three ways (``.github/workflows/``: upgrade-gate by hand, gate-matrix one job
per candidate, gate-watch on a schedule), Dependabot's upgrade PRs run ci.yml, and the jobs share one set-up
action (``.github/actions/setup-llmfound``). These specs run three linters over all of it, offline: actionlint
(workflow syntax, expressions, shell in ``run:``), zizmor (security: unpinned actions, template injection,
credentials left in the checkout, broad permissions) and check-jsonschema (GitHub's schemas for workflows,
actions and ``dependabot.yml``); each is shown catching a planted fault. Then what no linter checks: every
external action pinned to a full commit with its version beside it, read-only permissions on every job, and
every llmfound command a workflow runs exists with the options it passes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))

LINTERS = {
    # name: (executable, arguments before the files, the files it reads)
    "actionlint": ("actionlint", ["-no-color"], WORKFLOWS),
    "zizmor": ("zizmor", ["--offline", "--no-progress", "--format", "plain"], [GITHUB]),
    "check-jsonschema workflows": ("check-jsonschema", ["--builtin-schema", "vendor.github-workflows"], WORKFLOWS),
    "check-jsonschema actions": ("check-jsonschema", ["--builtin-schema", "vendor.github-actions"], ACTIONS),
    "check-jsonschema dependabot": ("check-jsonschema", ["--builtin-schema", "vendor.dependabot"],
                                    [GITHUB / "dependabot.yml"]),
}
"""Each linter run over the repository's ``.github``: all three are in the test extra (pyproject.toml)."""


def tool(name: str) -> str:
    """The linter's executable: beside this interpreter (the venv), else on PATH. Fails when absent."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: it is part of the test extra (pip install -e '.[test]')"
    return found


def lint(linter: str, files: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    exe, args, _ = LINTERS[linter]
    return subprocess.run([tool(exe), *args, *map(str, files)], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("linter", list(LINTERS))
def test_the_workflows_pass_the_linter(linter):
    files = LINTERS[linter][2]
    assert files, f"{linter}: no files to lint under {GITHUB}"
    r = lint(linter, files, ROOT)
    names = ", ".join(str(f.relative_to(ROOT)) for f in files)
    assert r.returncode == 0, f"{linter} over {names}:\n{r.stdout}{r.stderr}"


PLANTED = {
    # linter: (file in the scratch .github, its text, what the linter must say)
    "actionlint": ("workflows/x.yml", "on: push\njobs:\n  a:\n    run-on: ubuntu-latest\n    steps:\n      - run: ls\n",
                   'unexpected key "run-on"'),
    "zizmor": ("workflows/x.yml", "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    "
               "steps:\n      - uses: actions/setup-python@v7\n", "unpinned-uses"),
    "check-jsonschema workflows": ("workflows/x.yml", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    "
                                   "timeout-minute: 5\n    steps:\n      - run: ls\n", "Additional properties"),
    "check-jsonschema actions": ("actions/x/action.yml", "name: x\ndescription: x\nruns:\n  using: composite\n"
                                 "  step: []\n", "x/action.yml"),
    "check-jsonschema dependabot": ("dependabot.yml", "version: 2\nupdates:\n  - package-ecosystem: pip\n"
                                    "    directory: /\n    schedule:\n      interval: hourly\n", "hourly"),
}
"""One fault per linter, each in a scratch ``.github``: a misspelled key, an action pinned to a tag, a schedule
Dependabot does not have."""


@pytest.mark.parametrize("linter", list(PLANTED))
def test_each_linter_catches_a_planted_fault(linter, tmp_path):
    path, text, expected = PLANTED[linter]
    planted = tmp_path / ".github" / path
    planted.parent.mkdir(parents=True)
    planted.write_text(text)
    files = [tmp_path / ".github"] if linter == "zizmor" else [planted]
    r = lint(linter, files, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and expected in out, (
        f"{linter} over a planted fault in {path}: expected a failure naming {expected!r}, got exit "
        f"{r.returncode}:\n{out}")


# -------------------------------------------------------------------- what the linters do not check

USES = re.compile(r"^\s*-?\s*uses:\s*(\S+)(.*)$")


def test_every_external_action_is_pinned_to_a_commit_with_its_version_beside_it():
    """A tag can be moved to other code; a commit cannot. The comment is what Dependabot updates with it."""
    bad = []
    for f in [*WORKFLOWS, *ACTIONS]:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = USES.match(line)
            if not m or m.group(1).startswith(("$/", "./")):
                continue
            ref, comment = m.group(1).partition("@")[2], m.group(2)
            if not re.fullmatch(r"[0-9a-f]{40}", ref) or not re.search(r"#\s*v\d+\.\d+\.\d+", comment):
                bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "expected `uses: owner/action@<40-hex commit> # vX.Y.Z`, got:\n" + "\n".join(bad)


def test_every_workflow_and_job_reads_the_repository_and_nothing_more():
    bad = []
    for f in WORKFLOWS:
        doc = yaml.safe_load(f.read_text())
        if doc.get("permissions") != {"contents": "read"}:
            bad.append(f"{f.name}: workflow permissions {doc.get('permissions')!r}")
        for name, job in doc["jobs"].items():
            if job.get("permissions") != {"contents": "read"}:
                bad.append(f"{f.name}: job {name}: permissions {job.get('permissions')!r}")
    assert not bad, "expected `permissions: contents: read` on every workflow and job, got:\n" + "\n".join(bad)


LLMFOUND = re.compile(r"(?:\.venv/bin/llmfound|python -m llmfound)\s+([a-z-]+)((?:\\\n|[^\n])*)")


def test_every_llmfound_command_a_workflow_runs_exists_with_its_options():
    """A renamed option would otherwise surface as a red job at night."""
    import typer.main

    from llmfound.cli import app

    cli = typer.main.get_command(app)
    bad, seen = [], set()
    for f in [*WORKFLOWS, *ACTIONS]:
        for m in LLMFOUND.finditer(f.read_text()):
            name, rest = m.group(1), m.group(2)
            cmd = cli.commands.get(name)
            if cmd is None:
                bad.append(f"{f.name}: llmfound {name}: no such command")
                continue
            if hasattr(cmd, "commands"):  # a group: the subcommand follows
                sub = rest.split()[0] if rest.split() else ""
                cmd = cmd.commands.get(sub)
                if cmd is None:
                    bad.append(f"{f.name}: llmfound {name} {sub}: no such command")
                    continue
            known = {o for p in cmd.params for o in getattr(p, "opts", [])}
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                seen.add(f"{name} {opt}")
                if opt not in known:
                    bad.append(f"{f.name}: llmfound {name} has no option {opt}")
    assert not bad, "\n".join(bad)
    expected = {"gate --json-out", "gate --list-only", "gate --newer", "gate-merge --json-out"}
    assert expected <= seen, f"expected the workflows to run {sorted(expected)}, found only {sorted(seen)}"
