"""The ``llmfound`` command line (typer + rich): the app, its global options, and every command wired in one place.

Results go to stdout; timing, memory and progress to stderr. Any :class:`~llmfound.errors.LlmfoundError`
becomes one line ``error: ...`` on stderr and the error's exit code (2 bad input, 3 asset problem,
4 environment problem); nothing already in the cache is touched by a failed command.

Habits: ``--version``; third-party warnings and progress bars stay hidden unless ``--verbose``; the text of
``generate``, ``tokenize`` and ``pipeline`` may come from stdin (``-``) or ``--file PATH``, within
:data:`TEXT_LIMITS`; tables fit the terminal (``COLUMNS``), with ``--wide`` where columns were left out.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from llmfound.errors import LlmfoundError, NpmMissingError
from llmfound.families import families_using
from llmfound.cli.terminal import check_hf_endpoint, err, quiet_libraries, size_consoles, tidy_help
from llmfound.cli import quality, run, text, upgrade
from llmfound.cli.assets import assets_app

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Executable specs for tokenizers, chat templates, quantized models and streaming.")


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


# All the wiring, in the order --help lists the commands. Each command is a plain function in the module of its
# group (run: generate, demo, pipeline; text: template(s), tokenize, families; upgrade: doctor, gate, gate-merge
# and the snapshot group; quality; assets); a new command is one function there and one line here (docs/specs.md).
app.command("generate")(run.generate_cmd)
app.command("demo")(run.demo_cmd)
app.command("template")(text.template_cmd)
app.command("templates")(text.templates_cmd)
app.command("tokenize")(text.tokenize_cmd)
app.command("families")(text.families_cmd)
app.command("doctor")(upgrade.doctor_cmd)
app.command("gate")(upgrade.gate_cmd)
app.command("gate-merge")(upgrade.gate_merge_cmd)
app.command("quality")(quality.quality_cmd)
app.command("pipeline")(run.pipeline_cmd)
app.add_typer(assets_app, name="assets")
app.add_typer(upgrade.snapshot_app, name="snapshot")
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
