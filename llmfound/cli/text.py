"""The command line's text commands: ``template`` / ``templates`` (chat templates) and ``tokenize`` / ``families``
(tokenizers). :mod:`llmfound.cli` registers these commands on its app, after ``demo``, their place in ``--help``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from llmfound.errors import ChatOptionsError, LlmfoundError
from llmfound.outputs import error_number
from llmfound.cli.terminal import narrow_table, read_utf8, wide_table, text_options, err, input_text, out
from llmfound.units import plural

__all__ = ["template_cmd", "templates_cmd", "tokenize_cmd", "families_cmd", "read_messages",
           "warn_closing_prefill", "CONTINUE_HELP", "SAME_WARNING"]

"""Holds the text commands until :mod:`llmfound.cli` adds them to its app."""

# ---------------------------------------------------------------------------------------- chat templates

CONTINUE_HELP = ("leave the last message (a prefilled assistant answer) open for the model to continue, as "
                 "transformers' continue_final_message=True")


def read_messages(path: str) -> list:
    """The conversation in the JSON file at ``path`` (a list of {role, content} messages, checked when rendered).
    Raises :class:`LlmfoundError` (exit 2) for an empty path, an unreadable or non-UTF-8 file, or not JSON."""
    if not path.strip():
        raise LlmfoundError(f"--messages must name a JSON file, got {path!r}")
    raw = read_utf8(path, limit=10_000_000, label=f"messages file {path}",  # a conversation, not a corpus
                     why_limit="; it should hold one conversation", hint="save it as UTF-8 JSON")
    try:
        return json.loads(raw)
    except RecursionError:
        raise LlmfoundError(f"{path} nests too deeply to be a conversation; it must hold a list of "
                            f"{{role, content}} messages") from None
    except ValueError as e:
        raise LlmfoundError(f"{path} is not JSON ({e}); it must hold a list of {{role, content}} "
                            f"messages, e.g. examples/seed_chat.json") from None


def warn_closing_prefill(msgs, add_generation_prompt: bool, continue_final: bool, what: str) -> None:
    """One ``warning:`` line on stderr when ``what`` (the generation prompt, named as the user asked for it) would
    close a final assistant message instead of continuing it (:func:`llmfound.chat.closes_final_message`); the
    library's own ``UserWarning`` is then filtered out by :data:`SAME_WARNING`."""
    from llmfound.chat.messages import closes_final_message

    if closes_final_message(msgs, add_generation_prompt, continue_final):
        err.print(f"warning: the last message is the assistant's, and {what} closes it and opens a new assistant "
                  f"turn; to let the model continue that answer, use --continue-final-message instead",
                  markup=False)


SAME_WARNING = "the last message is the assistant's"
"""The start of :func:`llmfound.chat.render`'s warning, which the CLI replaces with its own line."""


def template_cmd(
    family: str = typer.Option(..., "--family", help="a family with a chat template (see `llmfound templates`), "
                                                      "or llama4 (Meta's ChatFormat, as ids)"),
    messages: str = typer.Option(..., "--messages", help="JSON file: a list of {role, content} messages"),
    add_generation_prompt: bool = typer.Option(False, "--add-generation-prompt",
                                               help="append the assistant header the model answers after"),
    continue_final: bool = typer.Option(False, "--continue-final-message", help=CONTINUE_HELP),
    ids: bool = typer.Option(False, "--ids", help="also print the token ids (no second BOS)"),
    as_json: bool = typer.Option(False, "--json", help="print {family, text, ids} as JSON"),
) -> None:
    """Render a conversation with the family's own chat template (transformers' sandboxed Jinja); for llama4,
    which ships none, the ids of Meta's ChatFormat and their text."""
    from llmfound import chat
    from llmfound.families import get_family

    fam = get_family(family)
    if add_generation_prompt and continue_final:
        raise ChatOptionsError("--add-generation-prompt and --continue-final-message cannot be used together: the "
                               "first opens a new assistant turn, the second leaves the last message open for the "
                               "model to continue; keep one")
    msgs = read_messages(messages)
    kw = dict(add_generation_prompt=add_generation_prompt, continue_final_message=continue_final)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SAME_WARNING, category=UserWarning)
        if not fam.template and fam.conversation_format:  # Llama 4: no Jinja template; the ids' text is shown
            from llmfound.tokenization import load_tokenizer

            token_ids = chat.chat_ids(fam, msgs, **kw)
            text = load_tokenizer(fam.name).decode(token_ids, skip_special_tokens=False,
                                                   clean_up_tokenization_spaces=False)
        else:
            text = chat.render(fam, msgs, **kw)
            token_ids = chat.chat_ids(fam, msgs, **kw) if ids or as_json else None
    warn_closing_prefill(msgs, add_generation_prompt, continue_final, "--add-generation-prompt")  # once it rendered
    if as_json:
        out.print_json(json.dumps({"family": fam.name, "text": text, "ids": token_ids}, ensure_ascii=False))
        return
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if ids:
        sys.stdout.write(" ".join(map(str, token_ids)) + "\n")
    origin = (f"template from {fam.template}" if fam.template else
              f"no Jinja template ships; the text is what the ids of Meta's ChatFormat ({fam.conversation_format}, "
              f"llama-models 0.3.0) decode to")
    err.print(f"[dim]{fam.name}: {origin}; {plural(len(text), 'character')}"
              + (f", {plural(len(token_ids), 'token')}" if token_ids is not None else "") + "[/dim]")


def templates_cmd(
    table: bool = typer.Option(False, "--table", help="the conformance table: fixed conversations x families"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    wide: bool = typer.Option(False, "--wide", help="traits: also the template's source and the generation "
                                                    "marker (needs ~160 columns)"),
    wild: bool = typer.Option(False, "--wild", help="every template the cached packages ship (llama.cpp's "
                                                    "models/templates): the conformance table"),
    traits: bool = typer.Option(False, "--traits", help="with --wild: each template's traits instead"),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="with --wild: write both tables as a Markdown "
                                                                   "page to FILE"),
) -> None:
    """Families with a chat template and their traits (--wide: every trait); with --table, which conversations
    each one renders; with --wild, every template the cached packages ship."""
    import re

    from rich.markup import escape

    from llmfound.chat import conformance
    from llmfound.families import FAMILIES

    if (traits or markdown is not None) and not wild:
        raise LlmfoundError("--traits and --markdown go with --wild: llmfound templates --wild --traits")
    if wild:
        return _wild_templates(as_json, traits, markdown, table or wide)

    fams = [f for f in FAMILIES if f.template]
    traits = {f.name: {"template": f.template, "system_role": f.traits.system_role,
                       "strict_alternation": f.traits.strict_alternation,
                       "generation_marker": f.traits.generation_marker,
                       "end_of_turn": f.traits.end_of_turn, "template_bos": f.traits.writes_bos,
                       "generation_eos_ids": list(f.traits.generation_eos_ids),
                       "tool_call_arguments": f.traits.tool_call_arguments,
                       "tool_result_content": f.traits.tool_result_content,
                       "template_deviations": f.traits.deviations} for f in fams}
    cells = {}
    if table:
        with err.status("rendering the conformance table..."):
            cells = conformance.conformance_table([f.name for f in fams])
    if as_json:
        data = {n: dict(t, **({"cases": {c: ({"outcome": "ok", "text": v} if o == "ok" else
                                              {"outcome": "raises", "error": v})
                                          for c, (o, v) in cells[n].items() if c in conformance.CASES},
                               "text_ids": dict(zip(("verdict", "detail"), cells[n][conformance.TEXT_IDS]))}
                              if table else {}))
                for n, t in traits.items()}
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    if not table:
        title = "families with a chat template (`--table` for the conformance table)"
        columns = ("family", "system", "alternation", "end of turn", "eos ids", "BOS", "template", "gen. marker")
        rows = [(f.name, f.traits.system_role, "strict" if f.traits.strict_alternation else "free",
                 escape(f.traits.end_of_turn or "-"),
                 ", ".join(map(str, f.traits.generation_eos_ids)), "yes" if f.traits.writes_bos else "no", f.template,
                 escape(repr(f.traits.generation_marker))) for f in fams]
        if wide:
            t = wide_table(title, columns, rows, names=("family",))
        else:
            t = narrow_table(title, columns[:5], [r[:5] for r in rows], flexible=("eos ids",))
        out.print(t)
        if not wide:
            out.print("--wide adds: BOS (the template writes it), template, gen. marker")
        for f in FAMILIES:
            if not f.template and f.conversation_format:
                out.print(f"{f.name}: no Jinja template ships; its chat format is Meta's ChatFormat, as ids: "
                          f"llmfound template --family {f.name} --messages FILE --ids", soft_wrap=False)
        return
    errors: list[str] = []  # each distinct error once, cells point to it as E1, E2...
    rows, differ = [], []
    for f in fams:
        row = [f.name]
        for case in conformance.CASES:
            o, v = cells[f.name][case]
            row.append("[green]ok[/green]" if o == "ok" else f"[red]E{error_number(errors, v)}[/red]")
        verdict, detail = cells[f.name][conformance.TEXT_IDS]
        row.append("[green]yes[/green]" if verdict == "agree" else "[red]no[/red]")
        if verdict != "agree":
            differ.append(f"{f.name}: {detail}")
        rows.append(tuple(row))
    headers = tuple(re.sub(r"([-+])", r"\1\n", case) for case in conformance.CASES)  # "single-user" on two lines
    out.print(narrow_table("chat template conformance: ok = rendered, En = raised (see below)",
                            ("family",) + headers + ("text\n=ids",), rows, gap=1))
    for i, e in enumerate(errors, 1):
        out.print(f"E{i}: {escape(e)}", soft_wrap=False, emoji=False)
    out.print("text=ids: yes where the ids decode to the rendered text in every rendered case", soft_wrap=False)
    for d in differ:
        out.print(f"text and ids differ: {escape(d)}", soft_wrap=False)


def _wild_templates(as_json: bool, traits: bool, markdown: Optional[str], family_options: bool) -> None:
    """``templates --wild``: the wild conformance table (or ``--traits``), ``--json``, ``--markdown FILE``."""
    from rich.markup import escape

    from llmfound.chat import wild as W
    from llmfound.outputs import atomic_write, check_output_path

    if family_options:
        raise LlmfoundError("--table and --wide are for the family templates; --wild has its own table (add "
                            "--traits for the traits)")
    if markdown is not None:
        if not markdown.strip() or Path(markdown).suffix.lower() != ".md":
            raise LlmfoundError(f"--markdown writes a Markdown page: name a file ending in .md, got {markdown!r} "
                                f"(e.g. --markdown docs/wild-templates.md)")
        check_output_path(markdown)
    names = W.template_names()
    with err.status(f"rendering {plural(len(names), 'shipped template')}..."):
        table = W.wild_table(names)
        all_traits = {n: W.traits(n) for n in names} if traits or as_json or markdown else {}
    if markdown:
        atomic_write(Path(markdown), lambda f: f.write(W.markdown_page(table, all_traits).encode()))
        err.print(f"wrote {markdown}: {plural(len(names), 'template')}", markup=False)
    if as_json:
        out.print_json(json.dumps({n: {"cases": {c: ({"outcome": "ok", "text": v} if o == "ok" else
                                                      {"outcome": "raises", "error": v})
                                                  for c, (o, v) in table[n].items()}, "traits": all_traits[n]}
                                   for n in names}, ensure_ascii=False))
        return
    if markdown:
        return
    where = f"{W.ASSET} (llama.cpp's models/templates)"
    if traits:
        rows = [(escape(n.removesuffix(".jinja")), t["system_role"] or "-", {True: "yes", False: "no"}.get(
            t["writes_bos"], "-"), t["tools"] or "-", escape(t["needs"]) or "-",
            "-" if t["generation_marker"] is None else escape(repr(t["generation_marker"]))
            + (f" (instead of {escape(repr(t['marker_replaces']))})" if t["marker_replaces"] else ""))
            for n, t in all_traits.items()]
        out.print(narrow_table(f"{plural(len(names), 'template')} shipped by {where}: traits",
                                ("template", "system", "BOS", "tools", "needs", "gen. marker"), rows,
                                flexible=("template", "gen. marker")))
        out.print("needs: what a user turn needs beyond transformers' defaults; --json adds the variables each "
                  "template reads", soft_wrap=False)
        return
    errors: list[str] = []
    rows = []
    for n, row in table.items():
        cells = []
        for case, (o, v) in row.items():
            cells.append("[green]ok[/green]" if o == "ok" else f"[red]E{error_number(errors, v)}[/red]")
        rows.append((escape(n.removesuffix(".jinja")), *cells))
    headers = tuple(f"c{i}" for i in range(1, len(W.WILD_CASES) + 1))
    out.print(narrow_table(f"{plural(len(names), 'template')} shipped by {where}: ok = rendered, En = raised",
                            ("template",) + headers, rows, flexible=("template",), gap=1))
    out.print("cases: " + ", ".join(f"c{i} {c}" for i, c in enumerate(W.WILD_CASES, 1)), soft_wrap=False)
    for i, e in enumerate(errors, 1):
        out.print(f"E{i}: {escape(e)}", soft_wrap=False, emoji=False)


# --------------------------------------------------------------------------------------------- tokenizers


TOKEN_ROWS = 200
"""Tokens the ``tokenize`` table shows (the first ones); ``--json`` gives every id."""


def tokenize_cmd(
    text: Optional[str] = typer.Argument(None, help=text_options("tokenize")["text"], show_default=False),
    family: str = typer.Option(..., "--family", help="a family name (see `llmfound families`)"),
    file: Optional[str] = typer.Option(None, "--file", help=text_options("tokenize")["file"]),
    specials: bool = typer.Option(False, "--specials", help="encode with add_special_tokens=True"),
    as_json: bool = typer.Option(False, "--json", help="print the round-trip report as JSON (every id)"),
) -> None:
    """Encode TEXT with the family's tokenizer: ids, pieces, what each piece decodes to, the decoded text, and
    whether it round-trips. The table shows the first 200 tokens; --json all of them."""
    from rich.markup import escape

    from llmfound import tokenization as T
    from llmfound.families import get_family

    get_family(family)  # unknown family: one error line before any loading
    text = input_text(text, file, "tokenize")
    rt = T.round_trip(family, text, add_special_tokens=specials)
    if as_json:
        sys.stdout.write(json.dumps(rt.to_dict(), ensure_ascii=False) + "\n")
        return
    shown = rt.ids[:TOKEN_ROWS]
    rows = [(str(i), str(tid), escape(repr(piece)), escape(repr(alone)))
            for i, (tid, piece, alone) in enumerate(zip(shown, rt.pieces, T.piece_texts(family, shown)))]
    if len(rt.ids) > len(shown):
        rows.append(("...", "", "", ""))
    right = {"justify": "right"}
    out.print(narrow_table(f"{family}: {plural(len(rt.ids), 'token')} for {plural(len(text), 'character')}",
                            ("#", "id", "piece", "decodes to"), rows, flexible=("piece", "decodes to"),
                            column_kw={"#": right, "id": right}))
    if len(rt.ids) > len(shown):
        out.print(f"(the first {len(shown)} of {plural(len(rt.ids), 'token')}; --json prints every id)")
    more = len(rt.decoded) - 200
    out.print(f"decoded: {escape(repr(rt.decoded[:200]))}"
              + (f" ... ({plural(more, 'more character')})" if more > 0 else ""))
    if rt.equal:
        kept = ""  # the normalization skipped the special tokens typed in the text, as the tokenizer does
        if rt.added_spans and T.normalize(rt.normalization, text) != rt.expected:
            kept = f", outside the {plural(len(rt.added_spans), 'special token')} it parsed"
        norm = "" if rt.normalization == "none" else f" (after its declared normalization: {rt.normalization}{kept})"
        out.print(f"[green]round trip: equal{norm}[/green]")
    else:
        i = rt.first_difference or 0
        out.print(f"[red]round trip: differs at character {i}[/red]: expected "
                  f"{escape(repr(rt.expected[i:i + 16]))}, got {escape(repr(rt.decoded[i:i + 16]))}")


FAMILY_COLUMNS = ("family", "bos", "eos", "end of turn")
"""Columns of ``llmfound families`` without --wide: they fit 80 terminal columns."""


def families_cmd(
    as_json: bool = typer.Option(False, "--json", help="print the matrix as JSON"),
    wide: bool = typer.Option(False, "--wide", help="every column: also pad, unk, what encode adds, vocab sizes, "
                                                    "normalization, typed special tokens (needs ~160 columns)"),
) -> None:
    """The special-token matrix: per family bos, eos and end of turn as token and id; --wide adds pad, unk,
    what encode adds, vocab sizes, normalization and how typed special-token text is parsed."""
    from rich.markup import escape

    from llmfound.families import FAMILIES

    cols = ("bos", "eos", "pad", "unk", "cls", "sep")
    rows = [{"name": f.name, "title": f.title,
             **{c: list(getattr(f.tokens, c)) if getattr(f.tokens, c) else None for c in cols},
             "end_of_turn": f.traits.end_of_turn, "end_of_turn_id": f.tokens.end_of_turn_id,
             "adds_bos": f.tokens.adds_bos,
             "adds_eos": f.tokens.adds_eos, "vocab_len": f.tokens.vocab_len, "vocab_size": f.tokens.vocab_size,
             "normalization": f.tokens.normalization, "typed_specials": f.tokens.typed_specials,
             "matrix_deviations": dict(f.tokens.deviations), "packaged_cells": dict(f.tokens.packaged)}
            for f in FAMILIES]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return

    def cell(v, f, column):
        mark = " [cyan](p)[/cyan]" if column in dict(f.tokens.packaged) else ""
        return "-" if v is None else escape(f"{v[0]} {v[1]}") + mark

    header = "special tokens per family: token and id"
    table = []
    for f in FAMILIES:
        adds = "+".join(x for x, on in (("BOS", f.tokens.adds_bos), ("EOS", f.tokens.adds_eos)) if on) or "nothing"
        if f.tokens.cls:
            adds = f"{f.tokens.cls[0]}...{f.tokens.sep[0]}"
        if f.tokens.deviations:
            adds += " [yellow](*)[/yellow]"
        eot = "-" if f.traits.end_of_turn is None else escape(f"{f.traits.end_of_turn} {f.tokens.end_of_turn_id}")
        if not wide and f.tokens.eos and tuple(f.tokens.eos) == (f.traits.end_of_turn, f.tokens.end_of_turn_id):
            eot = "= eos"
        t = f.tokens
        table.append((f.name, cell(t.bos, f, "bos"), cell(t.eos, f, "eos"), eot, cell(t.pad, f, "pad"),
                      cell(t.unk, f, "unk"), adds, f"{t.vocab_len} / {t.vocab_size}", t.normalization,
                      t.typed_specials))
    columns = FAMILY_COLUMNS + ("pad", "unk", "encode adds", "len / vocab_size", "normalizes", "typed special")
    if wide:
        t = wide_table(header, columns, table, names=("family",))
    else:
        columns = FAMILY_COLUMNS
        t = narrow_table(header, columns, [r[:len(columns)] for r in table], flexible=("end of turn",))
    out.print(t)
    note = ("from each family's published configuration; (p): the packaged file's value, explained below"
            + ("" if wide else "; = eos: the end-of-turn token is the eos token"))
    out.print(note, soft_wrap=False)
    for f in FAMILIES:
        for c, why in f.tokens.deviations:
            if wide:  # (*) marks the "encode adds" column
                out.print(f"[yellow](*)[/yellow] {f.name} {c}: {escape(why)}", soft_wrap=False)
        for c, why in f.tokens.packaged:
            if c in columns:
                out.print(f"[cyan](p)[/cyan] {f.name} {c}: {escape(why)}", soft_wrap=False)
    if not wide:
        out.print("--wide adds: pad, unk, encode adds, len / vocab_size, normalizes, typed special",
                  soft_wrap=False)
