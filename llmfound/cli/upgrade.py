"""The command line's checks of an environment: ``llmfound doctor`` (validating a box), ``llmfound snapshot``
(recording behaviour, comparing another environment), ``llmfound gate`` (candidate releases, each in a side
environment) and ``llmfound gate-merge`` (reports of one candidate each, as a CI matrix writes them, into one).
:mod:`llmfound.cli` registers these commands on its app.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from llmfound.cli.terminal import narrow_table, err, out
from llmfound.errors import LlmfoundError
from llmfound.upgrade.sections import SECTIONS
from llmfound.units import format_bytes, format_gib, plural

__all__ = ["doctor_cmd", "SECTION_NAMES", "snapshot_app", "snapshot_record", "snapshot_compare", "gate_cmd",
           "gate_merge_cmd"]

"""Holds the ``doctor`` and ``gate`` commands until :mod:`llmfound.cli` adds it to its app."""

# ------------------------------------------------------------------------------------------------ doctor


def doctor_cmd(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON (schema in llmfound.upgrade.doctor)"),
    plot: Optional[str] = typer.Option(None, "--plot", help="write a PNG: footprints per preset and the decode "
                                                            "roofline (tok/s against bytes per step)"),
    level: int = typer.Option(1, "--level", help="1: checks, ceilings, eager decode at batch 1 and 8 (seconds); "
                                                 "2: adds batch 32 and the static cache (minutes)"),
    batches: Optional[str] = typer.Option(None, "--batches", help="comma-separated batch sizes for the decode "
                                                                  "rows (default 1,8; level 2: 1,8,32)"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is one), cpu or cuda"),
) -> None:
    """Pass / warn / fail / skip per capability (bitsandbytes, quantization, streaming, tokenizers, templates,
    speed).

    Exit 0 when every required capability passes; else 10 bitsandbytes, 11 quantization, 12 streaming,
    13 tokenizers, 14 templates, 15 speed (the first failing class); 20 when nothing failed but a speed row
    warned (slower than the reference for this device model by more than its band)."""
    from llmfound.upgrade import doctor

    from rich.markup import escape

    try:
        sizes = tuple(int(x) for x in batches.split(",")) if batches is not None else None
    except ValueError:
        raise LlmfoundError(f"--batches takes comma-separated whole numbers like 1,8, got {batches!r}") from None
    color = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "yellow"}

    def styled(status: str) -> str:
        return f"[{color[status]}]{doctor.STATUS_LABELS[status]}[/{color[status]}]"

    # A line per capability as it finishes, for logs and CI; in a terminal, where the table below shows each
    # capability again, a transient status instead (it names none, so each is printed once)
    tty = err.is_terminal and not as_json
    status = err.status("checking capabilities...") if tty else contextlib.nullcontext()
    done: list = []

    def live(r) -> None:
        if as_json:
            return
        done.append(r)
        if tty:
            failed = sum(x.status == "fail" for x in done)
            status.update(f"checking capabilities: {len(done)} of {len(doctor.CAPABILITIES)} done"
                          + (f", {failed} failed" if failed else ""))
            return
        line = doctor.progress_line(r)
        label = doctor.STATUS_LABELS[r.status]
        err.print(styled(r.status) + escape(line[len(label):]))

    if plot:
        doctor.check_plot_path(plot)  # before the checks run, so a typo does not cost the whole run
    with status:
        report = doctor.run(on_result=live, level=level, batches=sizes, device=device)
    if plot:
        doctor.plot(report, plot)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n")
        raise typer.Exit(report["exit_code"])
    v = report["versions"]
    out.print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), soft_wrap=False)
    acc = report["accelerator"]
    out.print(f"accelerator: {acc['name']} (compute {acc['compute_capability']}, "
              f"{format_gib(acc['memory_bytes'])})" if acc else "accelerator: none (CUDA checks skip)")
    rows = [(escape(c["name"]), styled(c["status"]), f"{c['seconds']:.1f}", escape(c["detail"]))
            for c in report["capabilities"]]
    out.print(narrow_table("capabilities", ("capability", "status", "s", "detail"), rows, flexible=("detail",),
                            column_kw={"s": {"justify": "right"}}))
    speed = _decode_table(report)
    if speed is not None:
        out.print(speed)
        bw = next(c["data"]["bandwidth"] for c in report["capabilities"]
                  if c["name"] == "decode per preset vs roofline")
        out.print(f"roofline = batch x {bw / 1e9:,.1f} GB/s (copy, read + write) / bytes per step\n"
                  "what bounds decode: docs/generation-speed.md", markup=False, emoji=False)
    out.print(_ledger_table(report["ledger"]))
    out.print("more detail: `python -m bitsandbytes` (backend diagnosis), `transformers env` (environment dump)",
              soft_wrap=False)
    if plot:
        out.print(f"footprint chart written to {plot}", markup=False, emoji=False)
    raise typer.Exit(report["exit_code"])


def _decode_table(report: dict) -> Table | None:
    """The decode rows (``capabilities[].data.rows`` of "decode per preset vs roofline") as a table: preset,
    batch, ms per step (the rounds' range), tok/s, bytes per step, roofline tok/s, fraction reached, device busy;
    None when that check did not run."""
    cap = next((c for c in report["capabilities"] if c["name"] == "decode per preset vs roofline"
                and c["status"] in ("pass", "warn")), None)
    if cap is None:
        return None
    rows = []
    for b, by in cap["data"]["rows"].items():
        for p, r in by.items():
            st = r["step_s"]
            rows.append((p, b, f"{r['ms_per_step']:,.1f} ({1000 * st['min']:,.1f}-{1000 * st['max']:,.1f})",
                         f"{r['tokens_per_s']:,.1f}", format_bytes(r["bytes_per_step"]),
                         f"{r['roofline_tokens_per_s']:,.0f}", f"{r['roofline_fraction']:.1%}",
                         "-" if r["busy_share"] is None else f"{r['busy_share']:.0%}"))
    title = f"decode vs roofline: {cap['data']['workload']}"
    return narrow_table(title, ("preset", "batch", "ms/step", "tok/s", "bytes/step", "roofline", "reached",
                                "busy"), rows, flexible=("ms/step",),
                        column_kw={k: {"justify": "right"} for k in ("batch", "tok/s", "roofline", "reached")})


def _ledger_table(entries: list[dict]) -> Table:
    """The ledger's entries (``llmfound.upgrade.ledger.ledger_states()``) as a table: id, state now, behaviour."""
    from rich.markup import escape

    rows = [(escape(e["id"]), escape(e["state"]), escape(e["behaviour"])) for e in entries]
    title = (f"ledger of known upstream breakage (llmfound/upgrade/ledger.py): "
             f"{plural(len(entries), 'entry', 'entries')}")
    return narrow_table(title, ("entry", "state", "behaviour"), rows, flexible=("behaviour",))


# ---------------------------------------------------------------------------------------------- snapshot

SECTION_NAMES = ", ".join(SECTIONS)
"""The ``--sections`` choices, read from the snapshot's own table (a new section appears in the help by itself)."""

snapshot_app = typer.Typer(no_args_is_help=True, help="Record behaviour; compare another environment (upgrade gate).")


def _sections(opt: Optional[str]):
    return tuple(x.strip() for x in opt.split(",") if x.strip()) if opt else None


@snapshot_app.command("record")
def snapshot_record(
    file: str = typer.Argument(..., help="where to write the snapshot JSON"),
    sections: Optional[str] = typer.Option(None, "--sections", help=f"comma-separated subset of {SECTION_NAMES}"),
    into: bool = typer.Option(False, "--into", help="FILE is an existing snapshot (the baseline): replace only "
                                                    "--sections in it, keep the rest (same versions only)"),
) -> None:
    """Capture ids, special tokens, template renders, footprints, greedy answers, pipeline outputs. With --into,
    re-record some sections of an existing baseline (after a new family, case or preset joins them)."""
    from llmfound.upgrade import snapshot

    if into and not sections:
        raise LlmfoundError("--into replaces the sections you name: add --sections, e.g. --sections ids,templates")
    existing = snapshot.load(file) if into else None  # a damaged or missing file: one line, before any work
    if existing is not None:
        snapshot.check_same_versions(existing)
    snapshot.check_writable(file)  # before minutes of recording
    snap = snapshot.record(_sections(sections))
    done = f"recorded {plural(len(snap['sections']), 'section')}"
    if existing is not None:
        kept = len(set(existing["sections"]) - set(snap["sections"]))
        done = f"re-recorded {', '.join(snap['sections'])}, kept {plural(kept, 'other section')}"
        snap = snapshot.merge_into(existing, snap)
    snapshot.save(snap, file)
    n = sum(len(v) for v in snap["sections"].values())
    out.print(f"{done}, {plural(n, 'subject')} in all, with "
              f"transformers {snap['versions'].get('transformers')}, tokenizers {snap['versions'].get('tokenizers')}, "
              f"torch {snap['versions'].get('torch')}, bitsandbytes {snap['versions'].get('bitsandbytes')} -> {file}",
              markup=False, emoji=False)


@snapshot_app.command("speed")
def snapshot_speed(as_json: bool = typer.Option(False, "--json", help="print the timings as JSON")) -> None:
    """Time the gate's fixed speed probes in this environment (one torch thread): SmolLM2 bf16 greedy decode
    (ms per token) and the gpt2 tokenizer's encode (microseconds per token). `gate --speed` runs this in both
    environments, interleaved."""
    from llmfound.upgrade import speed_check

    report = speed_check.measure()
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    for p, what in speed_check.PROBES.items():
        out.print(f"{p}: {report[p]:g} ({what})", markup=False, emoji=False, soft_wrap=False)


@snapshot_app.command("compare")
def snapshot_compare(
    file: Optional[str] = typer.Argument(None, help="snapshot to compare with (default: the shipped baseline)"),
    as_json: bool = typer.Option(False, "--json", help="print drifts as JSON"),
    sections: Optional[str] = typer.Option(None, "--sections", help=f"compare only these sections, comma-separated: "
                                                                    f"{SECTION_NAMES}"),
) -> None:
    """Recompute here and diff against FILE, grouped by family and behaviour, then list every ledger entry's
    state now. Exit 1 on any drift."""
    from rich.markup import escape

    from llmfound.upgrade import snapshot
    from llmfound.upgrade.ledger import ledger_states

    path = file or str(snapshot.BASELINE)
    old, new, drifts = snapshot.compare(path, _sections(sections))
    ledger = ledger_states()
    if as_json:
        sys.stdout.write(json.dumps({"file": path, "old_versions": old["versions"], "new_versions": new["versions"],
                                     "drift": [d.__dict__ for d in drifts], "ledger": ledger},
                                    ensure_ascii=False, indent=1, default=str) + "\n")
        raise typer.Exit(1 if drifts else 0)
    changed = {k: (old["versions"].get(k), v) for k, v in new["versions"].items() if old["versions"].get(k) != v}
    out.print(f"compared {path} ({', '.join(old['sections'])}); version changes: "  # the file's own text: no markup
              + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) or "none"), markup=False, emoji=False)
    if drifts:
        rows = [tuple(escape(x) for x in (d.subject, d.section, d.behaviour, _short(d.old), _short(d.new)))
                for d in sorted(drifts, key=lambda d: (d.subject, d.section, d.behaviour))]
        out.print(narrow_table(f"{plural(len(drifts), 'behaviour')} drifted", ("subject", "section", "behaviour",
                                                                                "old", "new"),
                                rows, flexible=("behaviour", "old", "new")))
    else:
        out.print("no drift")
    if sections:  # the ledger is not about these sections: its counts, and the entries that need a look
        out.print(_ledger_summary(ledger), soft_wrap=False)
    else:
        out.print(_ledger_table(ledger))
    raise typer.Exit(1 if drifts else 0)


def _ledger_summary(entries: list[dict]) -> str:
    """One line for ``snapshot compare --sections``: how many ledger entries are in each state, the ids of those
    not "still broken" (fixed upstream, or that cannot be checked here), and how to see every entry."""
    from rich.markup import escape

    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(e["state"].split(":")[0], []).append(e["id"])
    parts = [f"{len(ids)} {state}" + ("" if state == "still broken" else f" ({', '.join(ids)})")
             for state, ids in groups.items()]
    return escape(f"ledger of known upstream breakage: {plural(len(entries), 'entry', 'entries')}: "
                  f"{', '.join(parts)}; every entry: `llmfound snapshot compare` without --sections, or "
                  f"`llmfound doctor`")


def _short(v, n: int = 120) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[: n - 1] + "…"


# -------------------------------------------------------------------------------------------------- gate


def gate_cmd(
    candidates: Optional[List[str]] = typer.Argument(None, help="candidate sets: 'transformers==5.24.0', "
                                                                "'tokenizers==0.22.2 transformers==5.21.0' (one "
                                                                "argument), or a local .whl file"),
    across: Optional[List[str]] = typer.Option(None, "--across", help="every release in a range: "
                                                                      "PKG==FIRST..LAST (repeatable)"),
    newer: Optional[List[str]] = typer.Option(None, "--newer", help="every release of PKG newer than llmfound's "
                                                                    "pin (repeatable; none newer: nothing to do)"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="snapshot to compare with (default: the "
                                                                    "shipped baseline)"),
    sections: Optional[str] = typer.Option(None, "--sections", help=f"compare only these snapshot sections, "
                                                                    f"comma-separated: {SECTION_NAMES}"),
    overlay: bool = typer.Option(False, "--overlay", help="install only the candidate, over this environment's "
                                                          "packages (fast; no dependency check)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON (schema in llmfound.upgrade.gate)"),
    json_out: Optional[str] = typer.Option(None, "--json-out", help="also write the JSON report to FILE (for "
                                                                    "`llmfound gate-merge`)"),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="also write the report as Markdown to FILE"),
    speed: bool = typer.Option(False, "--speed", help="also time fixed probes (SmolLM2 decode, gpt2 encode) here "
                                                      "and in each side environment, interleaved; a slowdown "
                                                      "beyond the band is a drift (section speed)"),
    list_only: bool = typer.Option(False, "--list-only", help="print the candidates the request names, one per "
                                                              "line (--json: a JSON list), and run nothing"),
) -> None:
    """Try candidate releases, each in its own side environment (uv), against the baseline: pass / drift /
    install-failed / broken per candidate, drift by family and behaviour, ledger entries that flipped. Your own
    environment is never changed. Exit 0 no drift, 1 drift, 2 bad request, 3 install failed or no index."""
    from rich.markup import escape

    from llmfound.upgrade import gate as G, snapshot
    from llmfound.errors import GateError
    from llmfound.outputs import check_output_path

    for opt, val in (("--baseline", baseline), ("--markdown", markdown), ("--sections", sections),
                     ("--json-out", json_out), *(("--newer", n) for n in newer or [])):
        if val is not None and not val.strip():
            raise GateError(f"{opt} is empty; give a value or leave the option out")
    if not candidates and not across and not newer:
        raise GateError("name at least one candidate (transformers==5.24.0), a range "
                        "(--across transformers==5.20.0..5.24.0) or --newer transformers")
    if markdown and json_out and Path(markdown).resolve() == Path(json_out).resolve():
        raise GateError(f"--markdown and --json-out both name {markdown!r}; give each its own file")
    if list_only and (markdown or json_out or speed):
        raise GateError("--list-only runs nothing, so --markdown, --json-out and --speed have nothing to do; "
                        "leave them out (--json prints the list as JSON)")
    path = baseline or str(snapshot.BASELINE)
    # a missing or newer-schema baseline, a section it lacks, an output onto the baseline, an empty cache: one
    # line each, before any side environment
    base = G.check_request(path, _sections(sections), markdown, outputs={"--json-out": json_out},
                           need_assets=not list_only)
    for out_path in (markdown, json_out):
        if out_path:
            check_output_path(out_path)
    wanted = [G.parse_candidate(c) for c in candidates or []]
    for spec in across or []:
        wanted += G.parse_across(spec)
    wanted += G.newer_than_pins(list(newer or []))
    wanted = G.unique(wanted)
    G.check_candidates(wanted)
    if list_only:
        texts = [" ".join(c.requirements) for c in wanted]
        sys.stdout.write(json.dumps(texts) + "\n" if as_json else "".join(t + "\n" for t in texts))
        return
    if not wanted:  # only --newer, and nothing is newer than the pins
        out.print("nothing newer than the pins: " + ", ".join(newer or []) + "; nothing to gate",
                  markup=False, emoji=False)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
        task = bar.add_task("candidates", total=len(wanted))

        def start(c) -> None:
            bar.update(task, description=f"side environment + checks: {c.label}")

        def done(o) -> None:  # a line per candidate on stderr, with --json too: a CI log shows progress
            bar.advance(task)
            err.print(f"[{_COLOR[o.state]}]{o.state}[/{_COLOR[o.state]}] {escape(o.candidate)}: {escape(o.detail)}")
            if o.rebuilt:
                err.print(f"note: {o.candidate}: {o.rebuilt}", markup=False, emoji=False)

        report = G.gate(wanted, path, _sections(sections), overlay=overlay, on_start=start, on_result=done,
                        base=base, speed=speed)
    _finish_report(report, f"gate against {path}", as_json, json_out, markdown)


_COLOR = {"pass": "green", "drift": "red", "install-failed": "yellow", "broken": "red"}


def gate_merge_cmd(
    reports: List[str] = typer.Argument(..., help="gate reports (JSON) written by `llmfound gate --json-out`, one "
                                                  "or more candidates each"),
    as_json: bool = typer.Option(False, "--json", help="print the merged report as JSON"),
    json_out: Optional[str] = typer.Option(None, "--json-out", help="also write the merged JSON report to FILE"),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="also write the merged report as Markdown "
                                                                    "to FILE"),
) -> None:
    """Merge gate reports of one candidate each (a CI matrix's jobs) into the summary a sequential
    `llmfound gate` over the same candidates prints, with its exit status. Refused in one line (exit 2): a file
    that is not a complete report, two reports for one candidate, reports of another baseline, pins or settings."""
    from llmfound.upgrade import gate_reports
    from llmfound.errors import GateError
    from llmfound.outputs import check_output_path

    for opt, val in (("--markdown", markdown), ("--json-out", json_out)):
        if val is not None and not val.strip():
            raise GateError(f"{opt} is empty; give a value or leave the option out")
        if val and any(Path(val).resolve() == Path(r).resolve() for r in reports):
            raise GateError(f"{opt} {val!r} is one of the reports to merge; name another file")
        if val:
            check_output_path(val)
    if markdown and json_out and Path(markdown).resolve() == Path(json_out).resolve():
        raise GateError(f"--markdown and --json-out both name {markdown!r}; give each its own file")
    merged = gate_reports.merge([(r, gate_reports.load(r)) for r in reports])
    _finish_report(merged, f"gate against {merged['baseline']} (merged from {plural(len(reports), 'report')})",
                   as_json, json_out, markdown)


def _finish_report(report: dict, title: str, as_json: bool, json_out: Optional[str], markdown: Optional[str]) -> None:
    """Print ``report`` (the JSON, or a table and the drift per candidate), write ``json_out`` and ``markdown``,
    and exit with the report's status (2 when a file could not be written and nothing drifted)."""
    from rich.markup import escape

    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1, default=str) + "\n")
    else:
        _print_report(report, title)
    failed = _write_file(json_out, report, "JSON", lambda r: json.dumps(r, ensure_ascii=False, indent=1,
                                                                      default=str) + "\n")
    failed = _write_markdown(markdown, report) or failed
    if not as_json:
        for what, name in (("JSON", json_out), ("markdown", markdown)):
            if name and not failed:
                out.print(f"{what} report written to {escape(name)}", markup=False, emoji=False)
    raise typer.Exit(report["exit_code"] or failed)


def _print_report(report: dict, title: str) -> None:
    """The gate report as a table (candidate, state, detail, seconds), then per candidate its versions, the
    companions moved, the drift and the ledger flips."""
    from rich.markup import escape

    rows = [(escape(o["candidate"]), f"[{_COLOR[o['state']]}]{o['state']}[/{_COLOR[o['state']]}]",
             escape(o["detail"]), f"{o['install_s']:.1f}{' warm' if o['warm'] else ''}", f"{o['check_s']:.1f}")
            for o in report["outcomes"]]
    out.print(narrow_table(escape(title), ("candidate", "state", "detail", "install s", "checks s"),
                           rows, flexible=("detail",), column_kw={"checks s": {"justify": "right"}}))
    out.print(f"sections compared: {', '.join(report['sections'])}", soft_wrap=False)
    for o in report["outcomes"]:
        libs = ", ".join(f"{k} {v}" for k, v in o["versions"].items()
                         if v and k in ("transformers", "tokenizers", "torch", "bitsandbytes", "accelerate"))
        if libs:
            out.print(f"{o['candidate']}: {libs}", soft_wrap=False, markup=False, emoji=False)
        if o["relaxed"]:
            out.print(f"{escape(o['candidate'])}: companions moved to its own range: "
                      + ", ".join(f"{escape(a)} -> {escape(b)}" for a, b in o["relaxed"]), soft_wrap=False)
        if o["drift"]:
            drows = [tuple(escape(x) for x in (d["subject"], d["section"], d["behaviour"], _short(d["old"]),
                                               _short(d["new"])))
                     for d in sorted(o["drift"], key=lambda d: (d["subject"], d["section"], d["behaviour"]))]
            out.print(narrow_table(f"{escape(o['candidate'])}: {plural(len(drows), 'behaviour')} drifted",
                                   ("subject", "section", "behaviour", "old", "new"), drows,
                                   flexible=("behaviour", "old", "new")))
        for f in o["ledger"]:
            out.print(f"{escape(o['candidate'])}: ledger {escape(f['id'])}: {escape(f['was'])} -> "
                      f"{escape(f['now'])} ({f['action']})", soft_wrap=False)


def _write_markdown(markdown: Optional[str], report: dict) -> int:
    """Write the Markdown report after the report is out (:func:`_write_file`): 0, or 2 with one line on stderr."""
    from llmfound.upgrade import gate as G

    return _write_file(markdown, report, "markdown", G.to_markdown)


def _write_file(path: Optional[str], report: dict, what: str, render) -> int:
    """Write ``render(report)`` to ``path`` atomically, after the report is out, so a file that cannot be written
    loses nothing measured: 0 (also when ``path`` is None), or 2 with one line on stderr."""
    from llmfound.errors import LlmfoundError
    from llmfound.outputs import atomic_write

    if not path:
        return 0
    try:
        atomic_write(Path(path), lambda f: f.write(render(report).encode()))
    except (OSError, LlmfoundError) as e:  # atomic_write turns a failed write into an LlmfoundError
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        err.print(f"error: the {what} report could not be written to {path} ({why}); the "
                  "report above is complete", markup=False)
        return 2
    return 0
