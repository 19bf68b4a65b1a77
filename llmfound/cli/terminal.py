"""The terminal side of the command line: the two consoles, table layouts that fit the width, quiet libraries,
and reading the text a command works on (an argument, stdin ``-`` or ``--file``, within :data:`TEXT_LIMITS`).
Used by :mod:`llmfound.cli`; nothing here defines a command.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from rich.console import Console
from rich.table import Table

from llmfound.errors import BrokenEnvironmentError, LlmfoundError
from llmfound.units import format_bytes

__all__ = ["out", "err", "PIPE_WIDTH", "TEXT_LIMITS", "size_consoles", "quiet_libraries", "check_hf_endpoint",
           "wide_table", "narrow_table", "read_utf8", "text_options", "input_text", "tidy_help"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PIPE_WIDTH = 160
"""Columns the tables get when stdout is not a terminal (a log, CI, a pipe) and ``COLUMNS`` is unset."""

TEXT_LIMITS = {"tokenize": 10_000_000, "generate": 1_000_000, "pipeline": 1_000_000}
"""Most bytes (UTF-8) of input text per command, from an argument, stdin (``-``) or ``--file``: a tokenizer
takes a corpus-sized text (10 MB encodes in seconds); a prompt or a pipeline input is bounded by the model's
context long before 1 MB (SmolLM2: 8,192 tokens, ~30 kB of English)."""


def size_consoles() -> None:
    """Table width for this run: ``COLUMNS`` when set, else the terminal's, else (not a terminal) PIPE_WIDTH,
    so logs get room instead of rich's 80-column default."""
    cols = os.environ.get("COLUMNS", "")
    for console, stream in ((out, sys.stdout), (err, sys.stderr)):
        tty = hasattr(stream, "isatty") and stream.isatty()
        console.width = int(cols) if cols.isdigit() and int(cols) > 0 else None if tty else PIPE_WIDTH


def quiet_libraries() -> None:
    """Keep the terminal for llmfound's own output (``--verbose`` skips this): no third-party warnings, notices
    or progress bars; errors still show. The libraries' own switches: huggingface_hub's progress bars (which
    transformers' follow) and verbosity, transformers' verbosity and progress bar (``TRANSFORMERS_VERBOSITY``,
    which it reads at import, when not yet imported: importing it costs ~1 s), Python's warnings filter, the
    bitsandbytes loggers, and tqdm's own ``TQDM_DISABLE`` for the bars libraries draw with plain tqdm
    (transformers' GGUF conversion: "Converting and de-quantizing GGUF tensors"; tqdm reads it when first
    imported, so it is set before anything imports tqdm)."""
    import logging
    import warnings

    os.environ.setdefault("TQDM_DISABLE", "1")
    # a malformed HF_ENDPOINT would raise inside this import: check_hf_endpoint has refused it already
    from huggingface_hub.utils import disable_progress_bars, logging as hlog  # ~0.1 s

    warnings.filterwarnings("ignore")
    for name in ("bitsandbytes", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    disable_progress_bars()
    hlog.set_verbosity_error()
    if "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    else:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def check_hf_endpoint() -> None:
    """huggingface_hub and transformers parse ``HF_ENDPOINT`` deep inside their imports; a malformed value (a bad
    IPv6 literal, a port out of range) would crash any command there with a traceback. Checked once, up front."""
    import urllib.parse

    value = os.environ.get("HF_ENDPOINT", "")
    if not value.strip():
        return
    try:
        urllib.parse.urlsplit(value.strip()).port
    except ValueError as e:
        raise BrokenEnvironmentError(f"HF_ENDPOINT={value!r} is not a valid URL ({e}); unset it or set it to the hub's "
                                 f"base URL, e.g. https://huggingface.co") from None


def tidy_help(app) -> None:
    """Make ``--help`` read well at any width, for every command and group of the typer ``app`` (recursively):
    a help text's paragraphs are joined into one line each, so that rich wraps them at the terminal's edge
    (typer's rich mode keeps a docstring's line breaks, which broke sentences in two at 80-100 columns), and a
    flag (a boolean option, ``--help`` included) shows no ``<bool>`` value placeholder: it takes none. Call it
    once, after every command is registered."""
    import inspect
    import re

    from typer.core import TyperCommand, TyperGroup

    def joined(text: Optional[str]) -> Optional[str]:
        return None if text is None else re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(text))

    def no_flag_metavar(params):
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""  # rich's help shows the metavar in place of the type ("<bool>")
        return params

    class Command(TyperCommand):
        def get_params(self, ctx):
            return no_flag_metavar(super().get_params(ctx))

    class Group(TyperGroup):
        def get_params(self, ctx):
            return no_flag_metavar(super().get_params(ctx))

    def ours(cls, base, mine):  # typer's own class (or its "unset" placeholder) -> ours; a custom one stays
        return mine if not isinstance(cls, type) or cls is base else cls

    def tidy(typer_app) -> None:
        typer_app.info.cls = ours(typer_app.info.cls, TyperGroup, Group)
        if isinstance(typer_app.info.help, str):
            typer_app.info.help = joined(typer_app.info.help)
        for info in typer_app.registered_commands:
            info.cls = ours(info.cls, TyperCommand, Command)
            info.help = joined(info.help if info.help is not None else inspect.getdoc(info.callback))
        for group in typer_app.registered_groups:
            group.cls = ours(group.cls, TyperGroup, Group)
            tidy(group.typer_instance)

    tidy(app)


def wide_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], names: tuple[str, ...] = ()) -> Table:
    """The ``--wide`` layout: a rich table whose cells wrap instead of being cut, between words, folding only a
    word wider than its column. ``names``: columns of names a user copies (an asset name into ``assets fetch``, a
    family into ``--family``) that never wrap or fold: each keeps the width of its longest cell, and the other
    columns share what the terminal has left. Cells are rich markup."""
    from rich.cells import cell_len
    from rich.text import Text

    t = Table(title=title)
    for j, col in enumerate(columns):
        width = max(map(cell_len, [col] + [Text.from_markup(r[j]).plain for r in rows])) if col in names else None
        t.add_column(col, overflow="fold", no_wrap=col in names, min_width=width)
    for r in rows:
        t.add_row(*r)
    return t


def narrow_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], flexible: tuple[str, ...] = (),
                  whole: tuple[str, ...] = (), column_kw: Optional[dict] = None, gap: int = 2) -> Table:
    """A table that reads at 80 columns (or whatever the console has): light borders; columns not in
    ``flexible`` get their natural width, shrunk (widest slack first) while the row does not fit, but never
    below their longest word (cells wrap between words, never inside one) or, for ``whole`` columns, their
    longest cell (sizes such as "76.6 MB"). ``flexible`` columns keep at least 20 columns (or their natural
    width) and take what is left, folding only a word wider than that. ``gap``: spaces between columns (1 or
    2). Cells are rich markup; ``column_kw`` maps a column to more ``add_column`` options."""
    from rich import box
    from rich.cells import cell_len
    from rich.text import Text

    # pad_edge=False: no padding after the last column, so the widths below add up to the row's width exactly (a
    # trailing pad made an 80-column row 81 wide, and rich then cut a header mid-word: "decod|e tok/s")
    t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, gap - 1, 0, 0), title_justify="left",
              pad_edge=False)
    want, least = {}, {}
    for j, col in enumerate(columns):
        cells = [Text.from_markup(r[j]).plain for r in rows]
        want[col] = max(map(cell_len, cells + col.splitlines()))
        least[col] = max(map(cell_len, (cells if col in whole else [w for c in cells for w in c.split()])
                             + col.split()))
    fixed = [c for c in columns if c not in flexible]
    room = out.width - gap * (len(columns) - 1) - sum(min(want[c], max(least[c], 20)) for c in flexible)
    while sum(want[c] for c in fixed) > room:
        c = max(fixed, key=lambda c: want[c] - least[c]) if fixed else None
        if c is None or want[c] == least[c]:
            break
        want[c] -= 1
    for col in columns:
        t.add_column(col, overflow="fold", width=None if col in flexible else want[col],
                     **(column_kw or {}).get(col, {}))
    for r in rows:
        t.add_row(*r)
    return t


def read_utf8(path: Optional[str], *, limit: int, label: str, why_limit: str = "",
               hint: str = "save it as UTF-8") -> str:
    """The text of the file at ``path`` (stdin's bytes when None), decoded as UTF-8 (strict), at most ``limit``
    bytes. Raises :class:`LlmfoundError` (exit 2) naming ``label`` for a folder, an unreadable file, more than
    ``limit`` bytes (``why_limit`` ends that message), or bytes that are not UTF-8 (``hint`` says what to do)."""
    from pathlib import Path

    try:
        if path is None:
            data = sys.stdin.buffer.read(limit + 1) if sys.stdin is not None else b""
        else:
            if Path(path).is_dir():
                raise LlmfoundError(f"{label} is a folder; name a UTF-8 text file")
            with open(path, "rb") as f:
                data = f.read(limit + 1)
    except OSError as e:
        raise LlmfoundError(f"cannot read {label}: {e.strerror or e}") from None
    if len(data) > limit:
        raise LlmfoundError(f"{label} is over {format_bytes(limit)}{why_limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LlmfoundError(f"{label} is not UTF-8 text (byte {e.start}); {hint}") from None


def text_options(command: str) -> dict:
    """help= texts for the TEXT argument and --file of ``command`` (they state its size limit)."""
    limit = format_bytes(TEXT_LIMITS[command])
    return {"text": f"the text; `-` reads it from stdin (one trailing newline dropped); at most {limit}",
            "file": f"read the text from this UTF-8 file instead (as it is; at most {limit}, MB = 10^6 bytes)"}


def input_text(text: Optional[str], file: Optional[str], command: str) -> str:
    """The input text of ``command`` (a key of :data:`TEXT_LIMITS`): ``text`` itself; stdin when ``text`` is
    ``"-"`` (one trailing newline dropped, the one ``echo`` adds); or the UTF-8 file ``file`` as it is.

    Raises :class:`LlmfoundError` (exit 2): both ``text`` and ``file``; neither; ``-`` with empty stdin; a
    file that is missing, a folder or not UTF-8; more than ``TEXT_LIMITS[command]`` bytes."""
    limit = TEXT_LIMITS[command]
    why = f", the limit of `llmfound {command}` (MB = 10^6 bytes)"
    if text is not None and file is not None:
        raise LlmfoundError(f"give the text either as an argument or with --file, not both (got {text[:40]!r} "
                            f"and --file {file})")
    if file is not None:
        return read_utf8(file, limit=limit, label=f"--file {file}", why_limit=why)
    if text is None:
        raise LlmfoundError(f"no text given: pass it as an argument, `-` to read stdin, or --file PATH "
                            f"(see `llmfound {command} --help`)")
    if text == "-":
        got = read_utf8(None, limit=limit, label="stdin (`-`)", why_limit=why)
        if not got:
            raise LlmfoundError(f"`-` reads the text from stdin, but stdin is empty; pipe the text in "
                                f"(echo TEXT | llmfound {command} ... -) or pass it as an argument")
        return got[:-2] if got.endswith("\r\n") else got[:-1] if got.endswith("\n") else got
    if len(text.encode("utf-8")) > limit:
        raise LlmfoundError(f"the text is over {format_bytes(limit)}{why}")
    return text
