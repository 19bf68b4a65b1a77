"""The command line's commands that run a model: ``generate`` (chat, streamed), ``demo`` (the tour) and
``pipeline`` (one pipeline task). :mod:`llmfound.cli` registers them on its app. Each counts a prompt against the
model's positions before the weights load (:mod:`llmfound.context`), and sets torch's CPU threads the same way
(:func:`set_threads`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from llmfound.cli.text import CONTINUE_HELP, SAME_WARNING, read_messages, warn_closing_prefill
from llmfound.errors import LlmfoundError
from llmfound.cli.terminal import text_options, err, input_text, out
from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["generate_cmd", "demo_cmd", "pipeline_cmd", "check_threads", "set_threads", "THREADS_HELP"]

"""Holds ``generate``, ``demo`` and ``pipeline`` until :mod:`llmfound.cli` adds them to its app."""

THREADS_HELP = ("CPU threads for torch (default: one per core that other processes leave free, see "
                "streaming.choose_threads)")


def check_threads(threads: Optional[int]) -> None:
    """Refuse a ``--threads`` count below 1 or above 8 per core (:class:`LlmfoundError`), without importing torch."""
    if threads is not None and (threads <= 0 or threads > 8 * (os.cpu_count() or 1)):
        raise LlmfoundError(f"--threads must be between 1 and {8 * (os.cpu_count() or 1)} (8 per core), got {threads}")


def set_threads(threads: Optional[int]) -> str:
    """Set torch's CPU threads for a command that runs a model: ``threads`` (``--threads``, checked: 1 to 8 per
    core), else on a machine without CUDA :func:`llmfound.streaming.choose_threads`' pick (busy cores make
    torch's one-thread-per-core default crawl); on a GPU they are left alone. Returns the timing line's note
    (" | threads N (...)", or "" when left alone). Raises :class:`LlmfoundError` for a count out of range."""
    check_threads(threads)
    import torch

    from llmfound import streaming

    if threads is not None:
        torch.set_num_threads(threads)
        return f" | threads {threads} (--threads)"
    if torch.cuda.is_available():
        return ""
    choice = streaming.choose_threads()
    torch.set_num_threads(choice.threads)
    return f" | threads {choice.threads} (auto: {choice.busy:.1f} of {choice.cores} cores busy)"


# ---------------------------------------------------------------------------------------------- generate


def generate_cmd(
    prompt: Optional[str] = typer.Argument(None, show_default=False,
                                           help="what to ask the model; " + text_options("generate")["text"]),
    file: Optional[str] = typer.Option(None, "--file", help=text_options("generate")["file"]),
    system: Optional[str] = typer.Option(None, "--system", help="a system message (default: the template's)"),
    messages: Optional[str] = typer.Option(None, "--messages", help="JSON file: the whole conversation, a list of "
                                           "{role, content} messages (instead of PROMPT and --system)"),
    continue_final: bool = typer.Option(False, "--continue-final-message",
                                        help=CONTINUE_HELP + "; the last message of --messages, streamed on"),
    quant: str = typer.Option("none", "--quant", help="none (bf16) | 8bit | 4bit (NF4 + double quant)"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="upper bound on generated tokens"),
    truncate: bool = typer.Option(False, "--truncate", help="a prompt over the model's positions (counting "
                                  "--max-new-tokens): keep the end of its text that fits, saying so on stderr, "
                                  "instead of refusing it"),
    no_stream: bool = typer.Option(False, "--no-stream", help="print the answer once, at the end"),
    model: str = typer.Option("smollm2-135m-instruct", "--model",
                              help="asset name, local folder, or (with hub access) a hub id"),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Chat with a real model (SmolLM2-135M-Instruct by default) through its chat template, streamed.

    The conversation is PROMPT (with --system), or --messages FILE; with --continue-final-message the model
    continues that file's last message, a prefilled assistant answer, and stdout gets what it adds.

    The prompt's tokens plus --max-new-tokens must fit the model's positions (SmolLM2: 8,192): a longer one is
    refused before the model loads, or with --truncate cut to the end of its last message that fits.

    Runs on the GPU when CUDA is available (device_map="auto"), else on the CPU. bf16 eager is the default:
    on this project's 2-core CPU it was the fastest setting that keeps bf16's greedy answers (see
    benchmarks/generation.py; 4-bit is faster on avx512_bf16 CPUs but answers differently)."""
    import time
    import warnings

    import torch

    from llmfound import chat, context, quantization as Q, streaming
    from llmfound import memory
    from llmfound import models

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
    check_threads(threads)
    tok, config = models.load_tokenizer_and_config(model)  # the prompt is counted against the positions before the load

    def ids(content: str) -> list[int]:
        with warnings.catch_warnings():  # warn_closing_prefill's line replaces render's UserWarning
            warnings.filterwarnings("ignore", message=SAME_WARNING, category=UserWarning)
            return chat.chat_ids(tok, msgs[:-1] + [{**msgs[-1], "content": content}],
                                 add_generation_prompt=not continue_final, continue_final_message=continue_final)

    prompt_ids = ids(msgs[-1]["content"])
    limit = context.max_positions(config, tok)
    if not truncate:
        context.check_fits(len(prompt_ids), max_new_tokens, limit, model=model, options=context.CLI)
    elif limit is not None and len(prompt_ids) + max_new_tokens > limit:
        if max_new_tokens >= limit or not isinstance(msgs[-1]["content"], str):  # nothing to cut that would help
            context.check_fits(len(prompt_ids), max_new_tokens, limit, model=model,
                               options=context.Options("--max-new-tokens", None))
        end = context.keep_end(msgs[-1]["content"], tok, lambda s: len(ids(s)), limit - max_new_tokens,
                               model=model, options=context.CLI)
        before, prompt_ids = len(prompt_ids), ids(end)
        err.print(f"warning: --truncate: the prompt was {plural(before, 'token')}, over the {limit:,} positions of "
                  f"{model} with --max-new-tokens {max_new_tokens}; kept the end of its last message: "
                  f"{plural(len(prompt_ids), 'token')} in all", markup=False)
    threads_note = set_threads(threads)  # after the refusals above: choose_threads samples the cores for a while
    cuda = torch.cuda.is_available()
    rss0 = memory.rss_bytes()
    memory.peak_cuda_bytes(reset=True)
    with err.status(f"loading {escape(model)} ({preset})..."):
        t0 = time.perf_counter()
        mdl, _ = models.load_model(model, preset, device_map="auto" if cuda else "cpu", tokenizer=False)
        load_s = time.perf_counter() - t0
    load_peak = memory.peak_cuda_bytes(reset=True)
    fp = Q.footprint(mdl)  # at load time: bitsandbytes' CPU path repacks 4-bit state on the first forward
    bound = Q.expected_footprint(mdl, preset)
    dev = next(mdl.parameters()).device
    inputs = {"input_ids": torch.tensor([prompt_ids], device=dev)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    on_text = None if no_stream else (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    res = streaming.stream_generate(mdl, tok, inputs, max_new_tokens=max_new_tokens, on_text=on_text)
    if no_stream:
        sys.stdout.write(res.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    mem = (f"GPU peak: load {format_bytes(load_peak)}, generate {format_bytes(memory.peak_cuda_bytes())}" if cuda else
           f"RSS +{format_bytes(memory.rss_bytes() - rss0)}, peak {format_bytes(memory.peak_rss_bytes())}")
    err.print(f"[dim]model {escape(model)} | {preset} on {dev}{threads_note} | footprint {format_bytes(fp.total)} "
              f"(analytic {format_bytes(bound.total)}) | load {load_s:.1f} s | first token {res.ttft_s:.2f} s | "
              f"{plural(res.new_tokens, 'token')}, {res.tokens_per_s:.1f} tok/s | stop: {res.stop_reason} | {mem} "
              f"({SI_NOTE})[/dim]")


def demo_cmd(
    prompt: str = typer.Option("What is the capital of France?", "--prompt", help="the question to stream"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
) -> None:
    """A guided tour on the real SmolLM2 model: tokens, chat template, footprints, a streamed 4-bit answer."""
    from llmfound import chat
    from llmfound.demo import run_demo

    chat.conversation(prompt)  # an empty prompt fails here, before three model loads
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    run_demo(out, err, prompt=prompt, max_new_tokens=max_new_tokens)


# -------------------------------------------------------------------------------------------------- pipelines


def _jsonable(o):
    """json.dumps fallback for numpy scalars/arrays in pipeline results."""
    return o.item() if hasattr(o, "item") and getattr(o, "ndim", 0) == 0 else o.tolist()


def pipeline_cmd(
    task: str = typer.Argument(..., help="sentiment-analysis, text-classification, ner, question-answering, "
                                         "summarization, translation, text-generation, text-to-speech, "
                                         "feature-extraction"),
    text: Optional[str] = typer.Argument(None, show_default=False,
                                         help="the input; for question-answering the question (with --context), "
                                              "or 'QUESTION ||| CONTEXT'; " + text_options("pipeline")["text"]),
    file: Optional[str] = typer.Option(None, "--file", help=text_options("pipeline")["file"]),
    model: Optional[str] = typer.Option(None, "--model", help="asset name, local folder, or (with hub access) a "
                                                              "hub id; default: the task's offline model"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N | auto (GPU if there is one)"),
    context: Optional[str] = typer.Option(None, "--context", help="question-answering: the context to answer from"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="text-generation/summarization/translation"),
    sample: bool = typer.Option(False, "--sample", help="text-generation: sample (default: greedy, reproducible)"),
    raw: bool = typer.Option(False, "--raw", help="text-generation: send TEXT as a plain prompt, not a chat turn"),
    truncate: bool = typer.Option(False, "--truncate", help="an input over the model's positions: text-generation "
                                  "keeps the end of it that fits (counting --max-new-tokens), text-classification "
                                  "classifies its first tokens that fit; either says so on stderr, instead of "
                                  "refusing it"),
    out_file: Optional[str] = typer.Option(None, "--out", help="text-to-speech: write the audio to this .wav"),
    as_json: bool = typer.Option(False, "--json", help="print the pipeline's result as JSON"),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Run one pipeline task on TEXT: transformers' pipeline where it has the task, llmfound's where v5 removed it.

    The result goes to stdout; the model, device, threads and timings to stderr, as for generate. For
    text-generation the input's tokens plus --max-new-tokens must fit the model's positions: a longer input is
    refused before the model loads, or with --truncate cut to the end that fits. sentiment-analysis
    (text-classification) runs offline on minilm-l6-sentiment, a model llmfound trains from all-MiniLM-L6-v2 and
    200 labelled sentences (stderr and --json say what it is and its measured accuracy); an input over its 512
    positions is refused, or with --truncate its first 512 tokens are classified."""
    import time

    from llmfound import pipelines as PL, streaming

    t = PL.get_task(task)
    text = input_text(text, file, "pipeline")
    if not text.strip():
        raise LlmfoundError(f"the input text is empty; give {t.name} some text: llmfound pipeline {task} "
                            f"\"...\" (or --file PATH)")
    if max_new_tokens <= 0:
        raise LlmfoundError(f"--max-new-tokens must be positive, got {max_new_tokens}")
    if t.name == "question-answering" and context is None and "|||" not in text:
        raise LlmfoundError("question-answering needs a context: pass --context TEXT, or give "
                            "'QUESTION ||| CONTEXT' as the input")
    if out_file is not None:
        if t.name != "text-to-audio":
            raise LlmfoundError(f"--out is for text-to-speech (it writes a .wav); {t.name} prints its result")
        PL.check_output_path(out_file)  # before the model runs
    if truncate and t.name not in ("text-generation", "text-classification"):
        raise LlmfoundError(f"--truncate is for text-generation and text-classification, which cut their input; "
                            f"leave it out for {t.name}")
    check_threads(threads)
    ref = model or t.offline_model or t.hub_default
    chat = False
    if t.name == "text-generation":  # tokenize first: a prompt over the positions fails before the weights load
        chat, text = _fit_generation_prompt(ref, text, raw, max_new_tokens, truncate)
    if t.name == "text-classification":  # count first: an input over the positions fails before the weights load
        _fit_classification_input(ref, text, truncate)
    with err.status(f"loading {t.name} pipeline ({model or 'default model'}, {device})..."):
        t0 = time.perf_counter()
        pipe = PL.pipeline(task, model=model, device=device)  # a task without a model fails here, before torch
        load_s = time.perf_counter() - t0
    threads_note = set_threads(threads)
    if pipe.llmfound_device_note:
        err.print(f"[dim]note: {pipe.llmfound_device_note}[/dim]")
    t0 = time.perf_counter()
    clock = None
    shown: object
    if t.name == "question-answering":
        if context is None:
            text, context = (s.strip() for s in text.split("|||", 1))
        result = pipe(question=text, context=context)
        shown = f"{result['answer']}  (score {result['score']:.3f}, characters {result['start']}:{result['end']})"
    elif t.name == "text-generation":
        inp = [{"role": "user", "content": text}] if chat else text
        clock = streaming.TokenClock()
        result = pipe(inp, max_new_tokens=max_new_tokens, do_sample=sample, return_full_text=False, streamer=clock)
        shown = result[0]["generated_text"]
    elif t.name in ("summarization", "translation"):
        result = pipe(text, max_new_tokens=max_new_tokens)
        shown = result[0][pipe.key]
    elif t.name == "text-classification":
        with _quiet_llmfound_log():  # _fit_classification_input has said what --truncate cuts
            result = pipe(text, top_k=None, truncation=truncate)
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
    run_s = time.perf_counter() - t0
    from llmfound.sentiment import read_card

    card = read_card(Path(pipe.model.name_or_path)) if t.name == "text-classification" else None
    if as_json:
        payload = {"task": t.name, "model": str(ref), **({"card": card} if card else {}), "result": result}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=_jsonable) + "\n")
    else:
        sys.stdout.write(f"{shown}\n")
    sys.stdout.flush()
    tokens = ""
    if clock is not None:
        res = clock.result(pipe.model, str(shown))
        tokens = (f" | first token {res.ttft_s:.2f} s | {plural(res.new_tokens, 'token')}, {res.tokens_per_s:.1f} "
                  f"tok/s | stop: {res.stop_reason}")
    err.print(f"[dim]model {escape(str(ref))} | {t.name} on {pipe.device}{threads_note} | load {load_s:.1f} s | "
              f"run {run_s:.2f} s{tokens}[/dim]")
    if card:
        acc = card["accuracy"]
        lo, hi = acc["wilson_95"]
        err.print(f"[dim]{escape(str(ref))}: {escape(card['summary'])}; held-out accuracy {acc['accuracy']:.1%} "
                  f"(95% interval {lo:.1%}-{hi:.1%}, {acc['folds']}-fold cross-validation); a score is a softmax "
                  f"over the labels, not the chance that the label is right[/dim]")


def _fit_classification_input(ref: str, text: str, truncate: bool) -> None:
    """Count TEXT's tokens with the model's tokenizer before the weights load: over the model's positions it is
    refused (:class:`~llmfound.errors.InputTooLongError`, naming --truncate), or with --truncate a ``warning:``
    line on stderr says that only the first tokens that fit are classified."""
    from llmfound import context
    from llmfound import models
    from llmfound.errors import InputTooLongError

    tok, config = models.load_tokenizer_and_config(ref)
    limit = context.max_positions(config, tok)
    n = len(tok(text, verbose=False)["input_ids"])
    if limit is None or n <= limit:
        return
    if not truncate:
        raise InputTooLongError(f"the input is {n:,} tokens but {ref} takes at most {limit:,} (its max positions); "
                                f"shorten it, or pass --truncate to classify its first {limit:,} tokens")
    err.print(f"warning: --truncate: the input was {plural(n, 'token')}, over the {limit:,} positions of {ref}; "
              f"classified its first {limit:,} tokens, the rest was not read", markup=False)


@contextlib.contextmanager
def _quiet_llmfound_log():
    """Hold the ``llmfound`` logger's warnings back for a moment (the CLI has already said the same on stderr)."""
    import logging

    logger = logging.getLogger("llmfound")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fit_generation_prompt(ref: str, text: str, raw: bool, max_new_tokens: int, truncate: bool) -> tuple[bool, str]:
    """``(chat, text)`` for ``pipeline text-generation``: whether TEXT goes in as a chat turn (the tokenizer has a
    template and --raw was not given), and TEXT itself, or with --truncate its end that fits (a ``warning:``
    line on stderr says so). Counts the tokens as the pipeline will encode them, from the tokenizer and config
    alone. Raises :class:`~llmfound.errors.InputTooLongError` for a prompt over the model's positions."""
    from llmfound import context
    from llmfound import models

    tok, config = models.load_tokenizer_and_config(ref)
    chat = not raw and bool(getattr(tok, "chat_template", None))

    def count(s: str) -> int:
        if chat:
            return len(tok.apply_chat_template([{"role": "user", "content": s}], add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"])
        return len(tok(s)["input_ids"])

    n, limit = count(text), context.max_positions(config, tok)
    if limit is None or n + max_new_tokens <= limit:
        return chat, text
    if not truncate or max_new_tokens >= limit:
        context.check_fits(n, max_new_tokens, limit, model=ref,
                           options=context.Options("--max-new-tokens", None) if truncate else context.CLI)
    end = context.keep_end(text, tok, count, limit - max_new_tokens, model=ref, options=context.CLI)
    err.print(f"warning: --truncate: the input was {plural(n, 'token')}, over the {limit:,} positions of {ref} with "
              f"--max-new-tokens {max_new_tokens}; kept its end: {plural(count(end), 'token')} in all", markup=False)
    return chat, end


# template(s), tokenize and families live in llmfound/cli/text.py, doctor and snapshot in llmfound/cli/upgrade.py,
# quality in llmfound/cli/quality.py; each keeps its place in --help: the text commands after demo, doctor after
