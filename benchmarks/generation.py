"""Benchmark: CPU greedy generation of SmolLM2-135M-Instruct, 128 new tokens, after a warm-up call.

Run:  .venv/bin/python benchmarks/generation.py [--threads 2] [--tokens 128] [--presets fp32,bf16,8bit,nf4-dq]

For each setting: load seconds, footprint, time to first token (prefill of the chat prompt + 1 token), and
decode tokens/s, all from one process in one run, and the ratio to the bf16 row. When ``llama_cpp``
(llama-cpp-python) is importable, the same Q4_1 GGUF runs through llama.cpp with the same prompt and thread
count, and each row is also given as a fraction of llama.cpp's speed; otherwise that column says why not.
Greedy, ``min_new_tokens`` = ``max_new_tokens`` so every row decodes the same number of tokens.
Absolute figures on a shared 2-core machine are noisy (other processes halve them): compare ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Write a long story about a cat who learns to sail."


def bench_transformers(preset: str, tokens: int, extra: dict) -> dict:
    import torch

    from llmfound import chat, quantization as Q, streaming

    t0 = time.perf_counter()
    if preset == "fp32":
        model, tok = Q.load_model("smollm2-135m-instruct", "bf16")
        model = model.float()
    else:
        model, tok = Q.load_model("smollm2-135m-instruct", preset)
    load_s = time.perf_counter() - t0
    inputs = chat.chat_inputs(tok, chat.conversation(PROMPT))
    kw = dict(min_new_tokens=tokens, **extra)
    with torch.inference_mode():
        streaming.stream_generate(model, tok, inputs, max_new_tokens=8, min_new_tokens=8)  # warm-up
        res = streaming.stream_generate(model, tok, inputs, max_new_tokens=tokens, **kw)
    return dict(setting=preset + (f" {extra}" if extra else ""), load_s=load_s,
                footprint_mb=Q.footprint(model).total / 1e6, ttft_s=res.ttft_s,
                tok_s=res.decode_tokens_per_s, n=res.new_tokens)


def bench_llama_cpp(tokens: int, threads: int) -> dict | str:
    try:
        from llama_cpp import Llama
    except ImportError:
        return "llama-cpp-python not importable (pip install llama-cpp-python==0.3.36 builds it in ~10 min)"
    from llmfound.assets import ensure

    gguf = ensure("smollm2-135m-instruct-gguf") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    t0 = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_threads=threads, n_ctx=512, verbose=False)
    load_s = time.perf_counter() - t0
    msgs = [{"role": "user", "content": PROMPT}]
    llm.create_chat_completion(msgs, max_tokens=8, temperature=0.0)  # warm-up
    t0 = time.perf_counter()
    llm.create_chat_completion(msgs, max_tokens=1, temperature=0.0)
    ttft = time.perf_counter() - t0
    # Not streamed: llama-cpp-python's streamed chat completion adds ~40 ms of Python per token (measured
    # 22 tok/s streamed vs 96 tok/s not, same run), which would measure the binding, not llama.cpp.
    t0 = time.perf_counter()
    r = llm.create_chat_completion(msgs, max_tokens=tokens, temperature=0.0)
    total = time.perf_counter() - t0
    n = r["usage"]["completion_tokens"]
    return dict(setting="llama.cpp Q4_1 (not streamed)", load_s=load_s, footprint_mb=gguf.stat().st_size / 1e6,
                ttft_s=ttft, tok_s=(n - 1) / (total - ttft) if n > 1 and total > ttft else 0, n=n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--presets", default="fp32,bf16,8bit,nf4-dq")
    ap.add_argument("--static-cache", action="store_true", help="also try cache_implementation='static' on bf16")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    torch.set_num_threads(args.threads)
    rows = [bench_transformers(p, args.tokens, {}) for p in args.presets.split(",")]
    if args.static_cache:
        rows.append(bench_transformers("bf16", args.tokens, {"cache_implementation": "static"}))
    ref = bench_llama_cpp(args.tokens, args.threads)
    base = next((r["tok_s"] for r in rows if r["setting"] == "bf16"), rows[0]["tok_s"])
    print(f"\nSmolLM2-135M-Instruct, greedy, {args.tokens} new tokens, {args.threads} threads, "
          f"torch {torch.__version__}; MB = 10^6 bytes")
    print(f"{'setting':34s} {'load s':>7s} {'MB':>7s} {'TTFT s':>7s} {'tok/s':>7s} {'x bf16':>7s} {'x llama.cpp':>12s}")
    for r in rows + ([ref] if isinstance(ref, dict) else []):
        vs = f"{r['tok_s'] / ref['tok_s']:.2f}" if isinstance(ref, dict) and ref["tok_s"] else "-"
        print(f"{r['setting']:34s} {r['load_s']:7.2f} {r['footprint_mb']:7.1f} {r['ttft_s']:7.2f} "
              f"{r['tok_s']:7.1f} {r['tok_s'] / base:7.2f} {vs:>12s}")
    if not isinstance(ref, dict):
        print(f"llama.cpp: skipped: {ref}")


if __name__ == "__main__":
    main()
