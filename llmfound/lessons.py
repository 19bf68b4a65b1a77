"""The lesson report: what a ``pytest`` run proved, one line per lesson, then the ledger as one table.

A pytest plugin (loaded by the project's ``conftest.py``). Each spec module is a lesson: its docstring's first line
says what it teaches. Specs add numbers with the ``lesson`` fixture::

    def test_round_trip(family, lesson):
        ...
        lesson.count("families round-trip hard text", family)     # "16 families round-trip hard text"
        lesson.value("bytes NF4 + double quant saves", "157.3 MB") # shown as written

Facts travel with each test's report (``user_properties``), so they survive pytest-xdist workers. At the end
of the session :func:`pytest_terminal_summary` prints::

    lessons (what this run proved)
      tokenization  212 passed  16 families round-trip hard text; 322 golden ids match ...
    ledger (known upstream breakage; strict xfails)
      id                            specs  state          behaviour
      gguf-spm-drops-leading-space     16  still broken   transformers' GGUF conversion of a Llama ...

A fact is only recorded by a spec that passed (a failing spec records nothing), so a number in the report is a
number the run checked. The ledger's state comes from the outcomes of the specs marked with
:func:`ledger_xfail`: all xfailed -> "still broken"; any XPASS -> "FIXED: retire it" (and the run fails,
as strict xfail makes it). A spec that teaches one entry runs the entry's own probe with :func:`assert_fixed`,
so each breakage is written once, in ``llmfound/upgrade/ledger.py``::

    @ledger_xfail("phi3-eos-not-special")
    def test_phi3_typed_end_of_sentence_can_be_made_inert(require_assets):
        assert_fixed("phi3-eos-not-special", require_assets)

Per-test XFAIL lines are left out of the default output (``-rfEs`` in pyproject); ``-v`` still shows every
test's sentence name.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from llmfound.upgrade.ledger import get_entry

__all__ = ["Lesson", "lesson", "ledger_xfail", "ledger_id", "assert_fixed"]

_KEY = "llmfound-lesson"
_LEDGER_ID = re.compile(r"ledger '([a-z0-9.\-]+)'")


def ledger_xfail(entry_id: str) -> pytest.MarkDecorator:
    """``pytest.mark.xfail(strict=True, raises=AssertionError)`` carrying ledger entry ``entry_id``'s behaviour
    and versions; an XPASS names the entry to retire from ``llmfound/upgrade/ledger.py``. Only a failed assertion counts
    as "still broken": any other exception (an upstream API change, a missing asset, a typo) fails the spec.
    Raises ``KeyError`` (:class:`~llmfound.errors.UnknownNameError`) for an unknown id."""
    e = get_entry(entry_id)
    return pytest.mark.xfail(strict=True, raises=AssertionError,
                             reason=f"ledger '{e.id}': {e.behaviour} [seen: {e.seen}]. If this passes, upstream "
                                    f"fixed it: retire '{e.id}' from llmfound/upgrade/ledger.py")


def ledger_id(mark: pytest.Mark) -> str | None:
    """The ledger entry a mark made by :func:`ledger_xfail` names, or None for any other mark."""
    m = _LEDGER_ID.match(mark.kwargs.get("reason", "")) if mark.name == "xfail" else None
    return m.group(1) if m else None


def assert_fixed(entry_id: str, require_assets=None) -> None:
    """Assert the correct behaviour of ledger entry ``entry_id`` by running its own probe (``observe()``):
    an ``AssertionError`` naming the entry, who, input, expected and got while upstream is still broken.
    ``require_assets`` (the conftest fixture) is called first with the entry's ``needs``."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    e = get_entry(entry_id)
    if require_assets is not None:
        require_assets(*e.needs)
    seen = e.observe()
    assert not seen.broken, f"ledger '{e.id}' still broken: {seen.explain()}"


class Lesson:
    """What one spec records for the lesson report. ``count(label, item)``: the report shows the number of
    distinct items recorded under ``label`` across the run; ``value(label, text)``: shows ``text`` (the last one
    recorded). Both are kept only if the spec passes."""

    def __init__(self, props: list):
        self._props = props

    def count(self, label: str, item: object) -> None:
        """Count ``item`` (any value with a stable ``str``) once under ``label``."""
        self._props.append((_KEY, ("count", label, str(item))))

    def value(self, label: str, text: str) -> None:
        """Show ``label: text`` in the report."""
        self._props.append((_KEY, ("value", label, str(text))))


@pytest.fixture
def lesson(request) -> Lesson:
    """A :class:`Lesson` recorder for this spec's facts (see the module docstring)."""
    return Lesson(request.node.user_properties)


def _wrapped(head: str, text: str) -> list[str]:
    """``head + text`` wrapped to the terminal's width, continuation lines indented under ``text``'s start (a
    terminal narrower than ``head`` plus 30 columns gets the text unwrapped)."""
    import shutil
    import textwrap

    width = shutil.get_terminal_size((120, 24)).columns
    room = width - len(head)
    if room < 30:
        return [head + text]
    lines = textwrap.wrap(text, room, break_on_hyphens=False) or [""]
    return [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]


def _title(path: Path) -> str:
    """The lesson a spec module teaches: its docstring's first paragraph, without the ``Lesson:`` prefix."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        return ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return first.removeprefix("Lesson:").strip()


class _Collector:
    """The report's state on the controller: outcomes and facts per lesson module, ledger outcomes per entry."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = rootdir
        self.outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.counts: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        self.values: dict[str, dict[str, str]] = defaultdict(dict)
        self.ledger: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.paths: dict[str, Path] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        fspath = report.nodeid.split("::", 1)[0]
        module = Path(fspath).stem.removeprefix("test_")
        self.paths.setdefault(module, self.rootdir / fspath)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
                m = _LEDGER_ID.search(report.wasxfail or "")
                if m:
                    self.ledger[m.group(1)][outcome] += 1
            else:
                outcome = report.outcome
                if report.failed and isinstance(report.longrepr, str) and report.longrepr.startswith("[XPASS(strict)]"):
                    outcome = "xpassed"  # pytest's strict XPASS: the spec of a known break passed
                    m = _LEDGER_ID.search(report.longrepr)
                    if m:
                        self.ledger[m.group(1)]["xpassed"] += 1
            self.outcomes[module][outcome] += 1
        if report.when == "call" and report.passed:
            for key, fact in report.user_properties:
                if key != _KEY:
                    continue
                kind, label, text = fact
                if kind == "count":
                    self.counts[module][label].add(text)
                else:
                    self.values[module][label] = text

    def lines(self) -> list[str]:
        """One line per lesson: module, the outcome tally, and the numbers its passing specs recorded (or, where
        it records none, what it teaches: its docstring's first paragraph)."""
        out = []
        width = max((len(m) for m in self.outcomes), default=0)
        for module in sorted(self.outcomes):
            o = self.outcomes[module]
            tally = ", ".join(f"{o[k]} {k}" for k in ("passed", "failed", "xfailed", "xpassed", "skipped") if o[k])
            facts = [f"{len(items)} {label}" for label, items in sorted(self.counts[module].items())]
            facts += [f"{label}: {text}" for label, text in sorted(self.values[module].items())]
            said = "; ".join(facts) if facts else _title(self.paths[module])
            out += _wrapped(f"  {module:<{width}}  {tally:<22}  ", said)
        return out

    def ledger_lines(self) -> list[str]:
        """The ledger as one table: id, specs that assert it, state from their outcomes, behaviour (cut)."""
        from llmfound.upgrade.ledger import LEDGER

        rows = []
        for e in LEDGER:
            seen = self.ledger.get(e.id)
            if not seen:
                state, n = "not run", 0
            elif seen["xpassed"]:
                state, n = "FIXED: retire it", seen["xpassed"] + seen["xfailed"]
            else:
                state, n = "still broken", seen["xfailed"]
            rows.append((e.id, n, state, e.behaviour))
        if not rows:
            return []
        w = max(len(r[0]) for r in rows)
        out = [f"  {'id':<{w}}  specs  {'state':<16}  behaviour"]
        for ident, n, state, behaviour in rows:
            short = behaviour if len(behaviour) <= 60 else behaviour[:57] + "..."
            out.append(f"  {ident:<{w}}  {n:>5}  {state:<16}  {short}")
        return out

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Print the lesson lines and the ledger table at the end of the run."""
        if not self.outcomes:
            return
        tr = terminalreporter
        tr.section("lessons (what this run proved)", sep="=")
        for line in _wrapped("  ", "each lesson is specs/test_<name>.py: read it top to bottom; `pytest -v` names "
                                   "every spec"):
            tr.write_line(line)
        for line in self.lines():
            tr.write_line(line)
        if self.ledger:
            tr.section("ledger (known upstream breakage, asserted as strict xfails)", sep="-")
            for line in self.ledger_lines():
                tr.write_line(line)
            fixed = sorted(i for i, seen in self.ledger.items() if seen["xpassed"])
            if fixed:
                tr.write_line(f"upstream fixed {len(fixed)} ledger {'entry' if len(fixed) == 1 else 'entries'}: "
                              f"retire {', '.join(fixed)} from llmfound/upgrade/ledger.py (and drop its xfail marks)",
                              red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    """Register the report's collector (not on xdist workers: their reports reach the controller)."""
    if not hasattr(config, "workerinput"):  # on an xdist worker the controller collects and prints
        config.pluginmanager.register(_Collector(Path(str(config.rootpath))), "llmfound-lesson-report")
