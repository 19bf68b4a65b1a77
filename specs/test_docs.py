"""The README and every page in docs/ show what the CLI and the library really do.

The pages are read with Sybil (its Markdown lexers find the fenced blocks and the HTML-comment directives;
its evaluators run the Python blocks and their doctests). One pytest item per block:

- ```` ```console ````: ``$ llmfound ARGS`` lines, each followed by what it prints (stdout and stderr together,
  as a terminal shows them). Each command runs through ``llmfound.cli.main`` in the test process (no new
  interpreter, the imports are paid once per worker), offline (``LLMFOUND_OFFLINE=1``) at ``COLUMNS=80``.
  ``cmd || echo "exit $?"``: the command must fail with that status; any other command must exit 0.
  ``echo TEXT | llmfound ... -`` feeds TEXT to stdin.
- Normalization of the shown output (:func:`output_pattern`): trailing spaces are ignored; ``<n>`` matches a
  number; ``...`` inside a line matches any text, and a line that is only ``...`` matches any lines (none too).
- ```` ```python ````: run in a fresh namespace; ``>>>`` blocks are doctests (ELLIPSIS, NORMALIZE_WHITESPACE).
- ```` ```bash ````: recipes (installs, the CI gate), not run; every ``llmfound`` command in them must parse
  against the CLI (command, options, arguments). So must the commands of blocks that are not run in this tier,
  and every inline ``llmfound ...`` synopsis in prose and tables must name a real command and real options.
- ``<!-- tier: slow|gpu|network -->`` before a block puts it in that tier (conftest.py's markers: slow runs under
  ``--run-slow``); ``<!-- skip: next "reason" -->`` never runs it, with the reason.
- docs/using.md's ``<!-- lesson-report -->`` block is pytest's own output, checked by another spec: skipped here.

After a CLI change, ``python specs/test_docs.py --update [--tiers fast,slow]`` rewrites the console blocks of
those tiers that hold no ``...`` / ``<n>`` from the real CLI, and lists the others to edit by hand.
"""

from __future__ import annotations

import difflib
import doctest
import io
import json
import os
import re
import shlex
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The docs-testing library comes with the test extra; a box that runs only `pytest -m gpu` from a checkout
# (benchmarks/gpu_tier.sh) may not have it: skip this file there instead of failing collection. Under CI the
# test extra is installed, so a missing Sybil is a broken setup and fails.
if not os.environ.get("CI"):
    pytest.importorskip("sybil", reason="the docs spec needs Sybil: pip install -e '.[test]'")

from sybil import Document  # noqa: E402
from sybil.parsers.markdown import PythonCodeBlockParser  # noqa: E402
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_ENV = {"LLMFOUND_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "80",
           "TOKENIZERS_PARALLELISM": "false"}
TIERS = ("slow", "gpu", "network")
REPORT = re.compile(r"^<!-- lesson-report -->$.*?^<!-- /lesson-report -->$", re.M | re.S)
EXIT_SUFFIX = re.compile(r'\s*\|\|\s*echo\s+"exit \$\?"\s*$')
INLINE = re.compile(r"(?<!`)`(llmfound [^`]+)`")          # a code span may wrap onto the next line
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def prose(text: str) -> str:
    """The page without its fenced blocks and the lesson report (newlines kept, so line numbers hold)."""
    blank = lambda m: "\n" * m.group(0).count("\n")  # noqa: E731
    return FENCED.sub(blank, REPORT.sub(blank, text))


# ------------------------------------------------------------------------------------------------ reading pages

@dataclass
class Command:
    """One ``$ ...`` line of a console block and the output shown under it."""

    line: str
    argv: list[str]
    stdin: str | None
    exit_code: int          # expected: 0, or N for ``|| echo "exit N"``
    shown: str

    @property
    def key(self) -> str:
        return json.dumps([self.argv, self.stdin])


@dataclass
class Block:
    page: Path
    line: int
    kind: str                          # console | python | bash | lesson-report
    source: str
    start: int = 0                     # character span of the fenced block in the page
    end: int = 0
    tier: str = "fast"
    skip: str | None = None
    examples: list = field(default_factory=list)   # sybil examples (python)
    commands: list[Command] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}-{self.kind}"


def parse_command(line: str) -> tuple[list[str], str | None, int]:
    """``$``-less command line -> (argv after ``llmfound``, stdin text or None, expected exit status; -1 for
    ``|| echo "exit $?"``, whose status is the ``exit N`` line under the output)."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    expect = -1 if EXIT_SUFFIX.search(line) else 0
    words = shlex.split(EXIT_SUFFIX.sub("", line))
    stdin = None
    if "|" in words:
        i = words.index("|")
        assert words[0] == "echo", f"only `echo TEXT | llmfound ...` can be checked, got {line!r}"
        stdin, words = " ".join(words[1:i]) + "\n", words[i + 1:]
    assert words and os.path.basename(words[0]) == "llmfound", \
        f"a console block can only show llmfound commands (or carry a skip comment), got {line!r}"
    return words[1:], stdin, expect


def parse_console(source: str, where: str) -> list[Command]:
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    commands: list[Command] = []
    for raw in source.splitlines():
        if raw.startswith("$ "):
            argv, stdin, expect = parse_command(raw[2:])
            commands.append(Command(raw[2:], argv, stdin, expect, ""))
        else:
            assert commands, f"{where}: a console block starts with a `$ llmfound ...` line"
            commands[-1].shown += raw + "\n"
    for c in commands:
        if c.exit_code == -1:           # `|| echo "exit $?"`: its last shown line is `exit N`
            lines = c.shown.rstrip("\n").splitlines()
            m = re.fullmatch(r"exit (\d+)", lines[-1].strip()) if lines else None
            assert m, f"{where}: `{c.line} || echo \"exit $?\"` must end its output with `exit N`"
            c.exit_code, c.shown = int(m.group(1)), "\n".join(lines[:-1]) + "\n"
    return commands


def read_page(page: Path) -> list[Block]:
    """Every checked block of one page, in order, with its tier and skip reason."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    doc = Document.parse(str(page), PythonCodeBlockParser(doctest_optionflags=doctest.ELLIPSIS
                                                          | doctest.NORMALIZE_WHITESPACE))
    text = doc.text
    blocks: list[Block] = []
    report = REPORT.search(text)
    for region in FencedCodeBlockLexer(r"\w+")(doc):
        lang = region.lexemes["language"]
        if lang not in ("console", "python", "bash"):   # text, json...: shown, not checked
            continue
        line = text.count("\n", 0, region.start) + 1
        b = Block(page, line, lang, str(region.lexemes["source"]), region.start, region.end)
        if report and report.start() <= region.start < report.end():
            continue
        if lang == "python":
            b.examples = [e for e in doc.examples() if region.start <= e.start < region.end]
        blocks.append(b)
    if report:
        blocks.append(Block(page, text.count("\n", 0, report.start()) + 1, "lesson-report", report.group(0),
                            report.start(), report.end(),
                            skip="pytest's own lesson report: checked by its own spec, not by test_docs"))
    # directives apply to the next fenced block (only blank lines between them)
    for lexer, kind in ((DirectiveInHTMLCommentLexer("tier", r"\w+"), "tier"),
                        (DirectiveInHTMLCommentLexer("skip", r".+?"), "skip")):
        for region in lexer(doc):
            following = [b for b in blocks if b.start >= region.end]
            target = min(following, key=lambda b: b.start) if following else None
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, region.start) + 1}"
            assert target and re.fullmatch(r"\s*(?:--+>)?\s*", text[region.end:target.start]), \
                f"{where}: a `{kind}:` comment must sit right before a fenced block"
            arg = region.lexemes["arguments"].strip()
            if kind == "tier":
                assert arg in TIERS, f"{where}: tier must be one of {TIERS}, got {arg!r}"
                target.tier = arg
            else:
                m = re.fullmatch(r'next\s+"([^"]+)"', arg)
                assert m, f'{where}: write `<!-- skip: next "reason" -->` (a reason is required)'
                target.skip = m.group(1)
    for b in blocks:
        if b.kind == "console" and not b.skip:   # a skipped block may show any shell session
            b.commands = parse_console(b.source, b.id)
    return blocks


def _read_all() -> list[Block]:
    blocks = []
    for page in PAGES:
        try:
            blocks += read_page(page)
        except (AssertionError, ValueError) as e:   # one unreadable page fails its own item, not collection
            blocks.append(Block(page, 1, "unreadable", str(e)))
    return blocks


BLOCKS = _read_all()


# ------------------------------------------------------------------------------------------------ comparing

def output_pattern(shown: str) -> re.Pattern:
    """The shown output as a regex: ``<n>`` a number, ``...`` any text in a line, a ``...`` line any lines."""
    parts = []
    for line in shown.rstrip().splitlines():
        line = line.rstrip()
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = re.split(r"(\.\.\.| *<n>)", line)      # spaces before <n>: any run (right-aligned columns)
        rx = "".join(r"[^\n]*?" if p == "..." else r" *-?\d[\d.,]*" if p.endswith("<n>") else re.escape(p)
                     for p in pieces)
        parts.append(rx + r"\n")
    return re.compile("".join(parts))


def normalize(output: str) -> str:
    lines = [ln.rstrip() for ln in output.rstrip().splitlines()]
    return "\n".join(lines) + "\n" if lines else ""


def matches(shown: str, actual: str) -> bool:
    return output_pattern(shown).fullmatch(normalize(actual)) is not None


# ------------------------------------------------------------------------------------------------ running the CLI

def _stream(data: str = "") -> io.TextIOWrapper:
    """A text stream over bytes, like a pipe's (``.buffer`` included; not a tty)."""
    return io.TextIOWrapper(io.BytesIO(data.encode("utf-8")), encoding="utf-8", newline="", write_through=True)


def run_cli(argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    """``llmfound ARGV`` through ``llmfound.cli.main``, in this process (its imports are already paid), with
    the docs' environment (offline, ``COLUMNS=80``): (exit status, what it printed)."""
    from llmfound import cli

    saved_env = {k: os.environ.get(k) for k in DOC_ENV}
    saved_io = sys.stdout, sys.stderr, sys.stdin
    os.environ.update(DOC_ENV)
    buf = _stream()                                  # stdout and stderr interleaved, as a terminal shows them
    sys.stdout = sys.stderr = buf
    sys.stdin = _stream(stdin or "")
    try:
        rc = cli.main(list(argv))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except Exception:  # noqa: BLE001 - a bug in a command: its traceback becomes the output the page is checked on
        traceback.print_exc(file=buf)                # a bug: its traceback becomes the output
        rc = 1
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved_io
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    buf.flush()
    return rc, buf.buffer.getvalue().decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ the CLI's shape

def _cli_group():
    import typer

    from llmfound import cli

    return typer.main.get_command(cli.app)


def resolve(words: list[str]):
    """Words after ``llmfound`` -> (command or group, its path, the remaining words). Group options (``--verbose``)
    may come before a subcommand; a group itself is accepted only with options (``llmfound --version``)."""
    cmd, path = _cli_group(), []
    while hasattr(cmd, "commands"):
        n = next((i for i, w in enumerate(words) if not w.startswith("-")), len(words))
        flags = words[:n]
        unknown = set(flags) - _options(cmd)
        if unknown:
            raise AssertionError(f"`llmfound {' '.join(path)}` has no option {', '.join(sorted(unknown))}")
        rest = words[len(flags):]
        if not rest:
            return cmd, path, flags
        if rest[0] not in cmd.commands:
            raise AssertionError(f"`llmfound {' '.join(path + rest[:1])}`: no such command "
                                 f"(commands: {', '.join(cmd.commands)})")
        path.append(rest[0])
        cmd, words = cmd.commands[rest[0]], rest[1:]
    return cmd, path, words


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"--help"}


def check_argv(argv: list[str]) -> None:
    """A concrete command line parses: the command exists, its options and arguments are accepted."""
    __tracebackhide__ = True
    cmd, path, rest = resolve(list(argv))
    if hasattr(cmd, "commands") or "--help" in rest:
        unknown = {w for w in rest if w.startswith("-")} - _options(cmd)
        if unknown:
            raise AssertionError(f"`llmfound {shlex.join(argv)}`: no option {', '.join(sorted(unknown))}")
        return
    try:
        cmd.make_context(" ".join(["llmfound", *path]), list(rest))
    except Exception as e:  # noqa: BLE001 - typer's bundled click raises its own UsageError, not click's
        raise AssertionError(f"`llmfound {shlex.join(argv)}`: {e}") from None


def check_synopsis(span: str) -> None:
    """An inline synopsis (``llmfound tokenize --family F "TEXT" [--json]``) names a command and its options."""
    __tracebackhide__ = True
    words = span.replace("\\|", "|").split()[1:]
    cmd, path, rest = resolve(words)
    known = _options(cmd)
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", " ".join(rest)))
    if not used <= known:
        raise AssertionError(f"`{span}`: `llmfound {' '.join(path)}` has no {', '.join(sorted(used - known))} "
                             f"(it has {', '.join(sorted(known))})")


def bash_commands(source: str) -> list[list[str]]:
    """The ``llmfound`` invocations (argv after it) of a bash recipe."""
    found = []
    for line in source.replace("\\\n", " ").splitlines():
        for segment in re.split(r"&&|\|\||;|\|", line.split(" #")[0]):
            words = shlex.split(segment)
            if words and os.path.basename(words[0]) == "llmfound":
                found.append(words[1:])
    return found


# ------------------------------------------------------------------------------------------------ the specs

_RUNS: dict[str, tuple[int, str]] = {}


def _params():
    for b in (b for b in BLOCKS if b.kind != "bash"):   # bash recipes: see the command-shape spec below
        marks = []
        if b.skip:
            marks.append(pytest.mark.skip(reason=b.skip))
        elif b.tier != "fast":
            marks.append(getattr(pytest.mark, b.tier))
        if b.tier == "gpu":
            marks.append(pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU: run `pytest -m gpu` on one"))
        yield pytest.param(b, id=b.id, marks=marks)


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a torch that cannot even ask means no GPU tier here
        return False


@pytest.mark.parametrize("block", list(_params()))
def test_each_shown_block_is_what_the_code_does(block: Block, request, lesson):
    """Console blocks print what they show; python blocks run (doctests print what they show)."""
    if block.kind in ("console", "python"):   # they read the cache: skip locally, fail under CI, when it lacks one
        from llmfound import assets

        request.getfixturevalue("require_assets")(*assets.entry_names())
    if block.kind == "console":
        failures = []
        for c in block.commands:
            if c.key not in _RUNS:                       # a command shown on two pages runs once
                _RUNS[c.key] = run_cli(c.argv, c.stdin)
            rc, output = _RUNS[c.key]
            if rc != c.exit_code or not matches(c.shown, output):
                diff = "\n".join(difflib.unified_diff(normalize(c.shown).splitlines(), normalize(output).splitlines(),
                                                      "shown in the page", "printed by the CLI", lineterm=""))
                status = f"\n  exit status: shown {c.exit_code}, got {rc}" if rc != c.exit_code else ""
                failures.append(f"$ {c.line}{status}\n{diff}")
        if failures:
            pytest.fail(f"{block.id}: the page shows other output than the CLI prints (COLUMNS=80, offline; "
                        f"`...` and `<n>` are wildcards). Fix the page, or run "
                        f"`python specs/test_docs.py --update`:\n" + "\n\n".join(failures), pytrace=False)
        for c in block.commands:
            lesson.count("shown commands print what the pages show", c.key)
    elif block.kind == "python":
        assert block.examples, f"{block.id}: Sybil found no example in this python block"
        block.examples[0].namespace.clear()
        for example in block.examples:
            example.evaluate()
        lesson.count("python blocks run as shown", block.id)
    else:
        pytest.fail(f"{block.id}: {block.source}")


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(ROOT))) for p in PAGES])
def test_every_command_on_the_page_names_real_commands_and_options(page: Path, lesson):
    """Also where a block is not run in this tier (slow, GPU, bash recipes) and in prose and tables: every
    ``llmfound ...`` shown names a command the CLI has, with options it has (a full command line must parse)."""
    text = page.read_text(encoding="utf-8")
    failures = []
    for b in (b for b in BLOCKS if b.page == page):
        argvs = [c.argv for c in b.commands] if b.kind == "console" else \
            bash_commands(b.source) if b.kind == "bash" else []
        for argv in argvs:
            try:
                check_argv(argv)
            except AssertionError as e:
                failures.append(f"{b.id}: {e}")
    outside = prose(text)
    for m in INLINE.finditer(outside):
        try:
            check_synopsis(m.group(1))
        except AssertionError as e:
            failures.append(f"{page.relative_to(ROOT)}:{outside.count(chr(10), 0, m.start()) + 1}: {e}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    lesson.count("pages name only real commands and options", page.name)


def _leaf_commands(cmd, path: tuple[str, ...] = ()):
    """Every command the app runs, as the words after ``llmfound`` (a group's sub-commands, not the group)."""
    subs = getattr(cmd, "commands", None)
    if subs is None:
        yield path
        return
    for name, sub in subs.items():
        yield from _leaf_commands(sub, (*path, name))


def test_every_command_has_a_synopsis_in_the_cli_table():
    """A command wired in ``llmfound/cli/main.py`` (a group's sub-commands too) has a row in docs/cli.md's command
    table; the page spec above checks what the rows name, this one that no command is left out."""
    page = ROOT / "docs" / "cli.md"
    rows = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("| `llmfound ")]
    firsts = [re.split(r"(?<!\\)\|", row)[1] for row in rows]   # a cell's `\|` is an escaped bar, not a border
    documented = {tuple(resolve(m.group(1).replace("\\|", "|").split()[1:])[1])
                  for cell in firsts for m in INLINE.finditer(cell)}
    missing = [" ".join(p) for p in _leaf_commands(_cli_group()) if p not in documented]
    assert not missing, (f"docs/cli.md: expected a row in the command table for every command the CLI registers, "
                         f"got none for: {', '.join(f'llmfound {c}' for c in missing)}; add its synopsis "
                         f"(docs/specs.md, 'A command' step 4)")


def test_the_normalization_is_what_the_docs_say():
    """``<n>`` is a number, ``...`` any text in a line or any lines, trailing spaces do not count."""
    assert matches("load s <n>\n", "load s 12.5  \n") and matches("│    <n> │\n", "│   18.6 │\n")
    assert not matches("load s <n>\n", "load s twelve\n")
    assert matches("a ... z\n", "a anything at all z\n")
    assert matches("first\n...\nlast\n", "first\nx\ny\nlast\n") and matches("first\n...\nlast\n", "first\nlast\n")
    assert not matches("first\nlast\n", "first\nmiddle\nlast\n")
    assert parse_console('$ llmfound x || echo "exit $?"\nerror: no\nexit 2\n', "t")[0].exit_code == 2
    assert parse_console("$ echo 'a b' | llmfound tokenize -\nok\n", "t")[0].stdin == "a b\n"


def test_every_page_is_reachable_from_the_readme():
    """A learner starts at the README: every docs page is linked from it or from a page it links to."""
    linked, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            p = (page.parent / target).resolve()
            if p.is_file() and p not in linked:
                linked.add(p)
                todo.append(p)
    orphans = [str(p.relative_to(ROOT)) for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"docs pages no link leads to from README.md: {orphans}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(ROOT))) for p in PAGES])
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue                                   # https:, mailto: ...
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md":
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)}
            if anchor not in slugs:
                broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    if broken:
        pytest.fail(f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken), pytrace=False)


# ------------------------------------------------------------------------------------------------ --update

def update(tiers: tuple[str, ...]) -> None:
    """Rewrite the console blocks of ``tiers`` that hold no wildcard from the real CLI; list the rest."""
    todo = [b for b in BLOCKS if b.kind == "console" and not b.skip and b.tier in tiers]
    outputs = {}
    for c in (c for b in todo for c in b.commands if c.key not in outputs):
        rc, output = run_cli(c.argv, c.stdin)
        outputs[c.key] = {"rc": rc, "output": output}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for b in sorted((b for b in todo if b.page == page), key=lambda b: -b.start):
            if all(matches(c.shown, outputs[c.key]["output"]) and outputs[c.key]["rc"] == c.exit_code
                   for c in b.commands):
                continue
            if any("Traceback (most recent call last)" in outputs[c.key]["output"] for c in b.commands):
                print(f"{b.id}: a command raised (a bug, not output to document); not rewritten")
                continue
            if any(re.search(r"\.\.\.|<n>", c.shown) for c in b.commands):
                print(f"{b.id}: has wildcards; edit by hand")
                continue
            body = ""
            for c in b.commands:
                got = outputs[c.key]
                suffix = ' || echo "exit $?"' if got["rc"] else ""
                body += f"$ {c.line.split(' || ')[0]}{suffix}\n{normalize(got['output'])}"
                body += f"exit {got['rc']}\n" if got["rc"] else ""
            head = text[b.start:b.end].split("\n", 1)[0]
            text = text[:b.start] + f"{head}\n{body}```" + text[b.end:]
            print(f"{b.id}: rewritten")
        page.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    os.environ.update(DOC_ENV)   # before llmfound and the hub libraries are imported
    if sys.argv[1:2] == ["--update"]:
        tiers = ("fast",)
        if "--tiers" in sys.argv:
            tiers = tuple(sys.argv[sys.argv.index("--tiers") + 1].split(","))
        update(tiers)
    else:
        sys.exit(__doc__)
