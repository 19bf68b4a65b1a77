"""Lesson: a test run is a course; it ends by saying what it proved, in numbers, and what is still broken upstream.

``pytest`` ends with the lesson report (``llmfound/lessons.py``): one line per spec module with the numbers its
passing specs recorded through the ``lesson`` fixture, then the ledger of known upstream breakage as one table.
These specs run small suites in a scratch folder with pytest's own ``pytester``:

1. facts recorded by passing specs reach the report, counted once per distinct item; a failing spec's do not;
2. a ledger xfail shows as one row ("still broken"), never as a per-test XFAIL line;
3. a ledger spec that passes (upstream fixed it) fails the run and names the entry to retire;
4. the facts survive pytest-xdist workers.
"""

from __future__ import annotations

import pytest

SUITE = '''
"""Lesson: tiny things add up."""
import pytest
from llmfound.lessons import ledger_xfail

@pytest.mark.parametrize("n", [1, 2, 3])
def test_counts(n, lesson):
    lesson.count("numbers checked", n)
    lesson.count("numbers checked", n)  # the same item twice counts once

def test_value(lesson):
    lesson.value("answer", "42 (checked)")

def test_a_failing_spec_records_nothing(lesson):
    lesson.count("numbers checked", 99)
    assert False, "expected to fail"

@ledger_xfail("phi3-eos-not-special")
def test_still_broken():
    assert False, "upstream still broken"
'''

FIXED = '''
from llmfound.lessons import ledger_xfail

@ledger_xfail("gguf-deepseek-half-fraction")
def test_upstream_fixed_it():
    # stands for a ledger spec whose correct behaviour now holds: its assertion passes, so strict xfail XPASSes
    assert "ied 4 ½ months".split() == ["ied", "4", "½", "months"]
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the scratch suite with this project's own pytest options (pyproject's addopts, xfail_strict), in one
    process unless ``args`` asks for workers."""
    import tomllib
    from pathlib import Path

    ini = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    addopts = ini["addopts"].replace("-n auto", "-n 0")
    pytester.makeini(f"[pytest]\naddopts = {addopts}\nxfail_strict = {str(ini['xfail_strict']).lower()}\n")
    return pytester.runpytest_inprocess("-p", "llmfound.lessons", "-p", "no:cacheprovider", *args)


def test_the_report_shows_each_lessons_numbers_and_the_ledger_as_one_table(pytester):
    pytester.makepyfile(test_tiny=SUITE)
    result = _run(pytester)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*lessons (what this run proved)*",
        "*tiny*4 passed, 1 failed, 1 xfailed*3 numbers checked; answer: 42 (checked)*",
        "*ledger (known upstream breakage*",
        "*phi3-eos-not-special*1*still broken*",
    ])
    assert "4 numbers checked" not in out, f"a failing spec's fact was counted:\n{out}"
    assert "XFAIL test_tiny.py" not in out, f"expected no per-test XFAIL line in the default output:\n{out}"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_long_lesson_line_wraps_to_the_terminal_width(pytester, monkeypatch):
    """In an 80-column terminal no lesson line is wider than the terminal; the facts wrap, nothing is cut."""
    long_fact = "x" * 30 + " " + "y" * 30 + " " + "z" * 30 + " end-of-fact"
    pytester.makepyfile(test_wide=f'''
def test_value(lesson):
    lesson.value("a long fact", "{long_fact}")
''')
    monkeypatch.setenv("COLUMNS", "80")
    out = _run(pytester).stdout.str().splitlines()
    report = out[next(i for i, line in enumerate(out) if "lessons (what this run proved)" in line):]
    wide = [line for line in report if len(line) > 80]
    assert not wide, f"80 columns: expected every lesson line within 80 characters, got {wide}"
    assert any("end-of-fact" in line for line in report), f"the fact's end was cut:\n{chr(10).join(report)}"


def test_a_ledger_spec_that_passes_fails_the_run_and_names_the_entry_to_retire(pytester):
    pytester.makepyfile(test_fixed=FIXED)
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"a strict XPASS must fail the run, got {result.ret}"
    result.stdout.fnmatch_lines([
        "*gguf-deepseek-half-fraction*1*FIXED: retire it*",
        "upstream fixed 1 ledger entry: retire gguf-deepseek-half-fraction from llmfound/upgrade/ledger.py*",
        "FAILED test_fixed.py::test_upstream_fixed_it - [[]XPASS(strict)[]]*",
    ])


def test_facts_survive_xdist_workers(pytester):
    pytester.makepyfile(test_tiny=SUITE)
    result = _run(pytester, "-n", "2")
    result.stdout.fnmatch_lines(["*tiny*3 numbers checked; answer: 42 (checked)*",
                                 "*phi3-eos-not-special*1*still broken*"])


def test_the_readmes_excerpt_shows_real_lessons_and_ledger_entries():
    """docs/using.md shows an excerpt of a real report; every lesson it names is a spec module here and every ledger
    id it names is an entry of ``llmfound/upgrade/ledger.py``, so the excerpt cannot point at something that is gone."""
    import re
    from pathlib import Path

    from llmfound.upgrade.ledger import LEDGER

    root = Path(__file__).parent.parent
    readme = (root / "docs" / "using.md").read_text()
    m = re.search(r"<!-- lesson-report -->\n```text\n(.*?)```\n<!-- /lesson-report -->", readme, re.S)
    assert m, "docs/using.md: the <!-- lesson-report --> block with a text fence is missing"
    block = m.group(1)
    assert "lessons (what this run proved)" in block and "ledger (known upstream breakage" in block, block
    modules = re.findall(r"^  ([a-z_]+)\s+\d+ passed", block, re.M)
    ids = re.findall(r"^  ([a-z0-9.\-]+)\s+\d+\s+still broken", block, re.M)
    assert modules and ids, f"docs/using.md excerpt: expected lesson lines and ledger rows, got:\n{block}"
    for module in modules:
        assert (root / "specs" / f"test_{module}.py").exists(), (
            f"docs/using.md excerpt names lesson {module!r}: no spec file")
    known = {e.id for e in LEDGER}
    assert set(ids) <= known, f"docs/using.md excerpt names ledger ids that are gone: {sorted(set(ids) - known)}"
    count = re.search(r"\((\d+) entries", block)
    assert count and int(count.group(1)) == len(LEDGER), (
        f"docs/using.md excerpt: expected '({len(LEDGER)} entries' (llmfound/upgrade/ledger.py), got "
        f"{count.group(0) if count else 'no count'}")


def test_the_plugins_own_docstring_names_real_ledger_entries():
    """``llmfound/lessons.py`` shows an example report and an example ledger spec; every ledger id in them is an
    entry of ``llmfound/upgrade/ledger.py``, so an example cannot name an id that does not exist."""
    import re

    from llmfound import lessons
    from llmfound.upgrade.ledger import LEDGER

    doc = lessons.__doc__
    rows = re.findall(r"^\s+([a-z0-9.\-]+)\s+\d+\s+still broken", doc, re.M)
    ids = rows + re.findall(r'ledger_xfail\("([^"]+)"\)', doc)
    assert rows and len(ids) > len(rows), (
        f"llmfound/lessons.py docstring: expected a ledger row and a ledger_xfail example, got:\n{doc}")
    gone = sorted(set(ids) - {e.id for e in LEDGER})
    assert not gone, (f"llmfound/lessons.py docstring names ledger ids that are not in llmfound/upgrade/ledger.py: "
                      f"{gone}")
