"""The command line's ``llmfound quality``: quantization's trade-off in one table - memory, accuracy, speed - per
preset. :mod:`llmfound.cli` registers it on its app, after ``doctor``.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from llmfound.errors import LlmfoundError
from llmfound.cli.terminal import narrow_table, err, out
from llmfound.units import SI_NOTE, format_bytes

__all__ = ["quality_cmd", "parse_presets"]

"""Holds the ``quality`` command until :mod:`llmfound.cli` adds it to its app."""


def parse_presets(text: str) -> tuple[str, ...]:
    """``"bf16,8bit,nf4-dq"`` -> canonical preset names in order, duplicates dropped. Raises
    :class:`UnknownNameError` naming an unknown one, :class:`LlmfoundError` for an empty list."""
    from llmfound.quantization import preset_name

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise LlmfoundError(f"--presets must name at least one preset, e.g. bf16,8bit,nf4-dq; got {text!r}")
    return tuple(dict.fromkeys(preset_name(n) for n in names))


def quality_cmd(
    presets: str = typer.Option("bf16,8bit,nf4-dq,nf4,fp4", "--presets",
                                help="comma-separated presets to score against bf16 (bf16 is always the reference)"),
    tokens: int = typer.Option(4096, "--tokens", help="corpus tokens to score (the corpus has 75,680 SmolLM2 tokens)"),
    context: int = typer.Option(512, "--context", help="tokens per scoring window"),
    stride: int = typer.Option(256, "--stride", help="tokens a window moves by"),
    decode_tokens: int = typer.Option(16, "--decode-tokens", help="greedy tokens timed per preset (0: skip)"),
    model: str = typer.Option("smollm2-135m-instruct", "--model",
                              help="an asset name, a local folder or (with hub access) a hub id"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    plot: Optional[str] = typer.Option(None, "--plot", help="write a PNG: footprint against perplexity increase"),
) -> None:
    """Quantization's cost per preset: footprint, perplexity, ΔPPL, KL divergence and top-1 agreement against
    bf16 on a real news corpus, and prefill / decode speed (llama.cpp's perplexity definitions)."""
    from llmfound import quality as QL

    wanted = parse_presets(presets)
    QL.check_settings(tokens, context, stride, decode_tokens)  # before the plot path, the progress bar, any load
    if device not in ("cpu", "cuda"):
        raise LlmfoundError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            from llmfound.errors import NoCudaError

            raise NoCudaError("--device cuda, but torch sees no CUDA device here; use --device cpu")
    if plot:
        QL.check_plot_path(plot)  # before minutes of scoring
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
        tasks = {"load": bar.add_task("loading presets", total=None),
                 "score": bar.add_task("scoring windows", total=None, visible=False)}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total, visible=True)

        report = QL.quality(model, wanted, tokens=tokens, context=context, stride=stride,
                            decode_tokens=decode_tokens, device=device, on_progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=1) + "\n")
        if plot:  # after the report is out: a chart that cannot be written loses nothing measured
            QL.plot(report, plot)
        return
    ref = report.rows[0].footprint_bytes
    rows = [(r.preset, format_bytes(r.footprint_bytes), f"{ref / r.footprint_bytes:.2f}x", f"{r.ppl:.2f}",
             f"{r.delta_ppl_pct:+.2f}%", f"{r.kld_mean:.4f}", f"{r.kld_p99:.3f}", f"{r.top1_pct:.1f}%",
             f"{r.prefill_tok_s:.0f}", "-" if r.decode_tok_s is None else f"{r.decode_tok_s:.1f}")
            for r in report.rows]
    cols = ("preset", "footprint", "vs bf16", "PPL", "ΔPPL", "KLD mean", "KLD p99", "top-1", "prefill tok/s",
            "decode tok/s")
    out.print(narrow_table("quantization's cost, measured", cols, rows,
                            column_kw={c: {"justify": "right"} for c in cols[1:]}))
    out.print(f"{report.tokens:,} tokens of {report.corpus} scored (window {report.context}, stride "
              f"{report.stride}) on {report.device}; KLD in nats against bf16; {SI_NOTE}", soft_wrap=False)
    if plot:
        QL.plot(report, plot)
        out.print(f"trade-off chart written to {plot}", markup=False, emoji=False)
