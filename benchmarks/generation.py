"""Benchmark: CPU greedy generation of SmolLM2-135M-Instruct, 128 new tokens, after a warm-up call.

Run:  .venv/bin/python benchmarks/generation.py [--threads 2] [--tokens 128] [--presets fp32,bf16,8bit,nf4-dq]
      .venv/bin/python benchmarks/generation.py --compare-threads [--busy [N]] [--tokens 64] [--repeat 3]

For each setting: load seconds, footprint, time to first token (prefill of the chat prompt + 1 token), and
decode tokens/s, all from one process in one run, and the ratio to the bf16 row. When ``llama_cpp``
(llama-cpp-python) is importable, the same Q4_1 GGUF runs through llama.cpp with the same prompt and thread
count, and each row is also given as a fraction of llama.cpp's speed; otherwise that column says why not.
Greedy, ``min_new_tokens`` = ``max_new_tokens`` so every row decodes the same number of tokens.
Absolute figures on a shared 2-core machine are noisy (other processes halve them): compare ratios.

``--compare-threads``: one model (the first preset, bf16 by default), one process, a warm-up, then
``generate``'s default thread choice (``streaming.choose_threads``, sampled just before each of its runs) against
1 and 2 threads, ``--repeat`` rounds interleaved, medians printed, with the default's ratio to the better of
1 and 2 threads. ``--busy N`` (``--busy`` alone: 1) runs N busy-looping child processes beside the
measurement (CPU only, no I/O, no network); each stops by itself after ``--busy-max-s`` seconds and all are
killed when the benchmark ends. Results and the command: docs/generation-speed.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Write a long story about a cat who learns to sail."


def bench_transformers(preset: str, tokens: int, extra: dict) -> dict:
    import torch

    from llmfound import chat, quantization as Q, streaming
    from llmfound import models

    t0 = time.perf_counter()
    if preset == "fp32":
        model, tok = models.load_model("smollm2-135m-instruct", "bf16")
        model = model.float()
    else:
        model, tok = models.load_model("smollm2-135m-instruct", preset)
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


BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def start_busy(n: int, max_s: float) -> list[subprocess.Popen]:
    """``n`` child processes that each busy-loop one core for at most ``max_s`` seconds (pure CPU)."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(max_s)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from /proc/stat's first line (busy: all but idle and iowait)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:9]]
    return sum(t) - t[3] - t[4], sum(t)


def others_load(measure):
    """Run ``measure()``; return (its result, cores' worth of CPU other processes used meanwhile)."""
    b0, t0, c0, w0 = *cpu_ticks(), time.process_time(), time.perf_counter()
    out = measure()
    b1, t1, c1, w1 = *cpu_ticks(), time.process_time(), time.perf_counter()
    ours = (c1 - c0) / (w1 - w0)
    return out, max(0.0, (os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0) - ours)


def compare_threads(preset: str, tokens: int, repeat: int) -> None:
    """generate's default thread choice vs 1 vs 2 threads, same model, same process, interleaved rounds."""
    import torch

    from llmfound import chat, streaming
    from llmfound import models

    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    torch_default = torch.get_num_threads()
    model, tok = models.load_model("smollm2-135m-instruct", preset)
    inputs = chat.chat_inputs(tok, chat.conversation(PROMPT))
    settings = ["default", 1, 2]
    runs: dict = {s: [] for s in settings}
    chosen: list = []
    with torch.inference_mode():
        streaming.stream_generate(model, tok, inputs, max_new_tokens=8, min_new_tokens=8)  # warm-up
        for _ in range(repeat):
            for s in settings:
                seen, _ = streaming.busy_cores(0.2)  # what the chooser would see now (others' load)
                if s == "default":
                    choice = streaming.choose_threads(busy=seen)
                    chosen.append(choice)
                    n = choice.threads
                else:
                    n = s
                torch.set_num_threads(n)
                streaming.stream_generate(model, tok, inputs, max_new_tokens=4, min_new_tokens=4)  # thread pool
                res, during = others_load(lambda: streaming.stream_generate(
                    model, tok, inputs, max_new_tokens=tokens, min_new_tokens=tokens))
                runs[s].append((res.decode_tokens_per_s, res.ttft_s, seen, during))
    med = {s: (statistics.median(r[0] for r in runs[s]), statistics.median(r[1] for r in runs[s])) for s in settings}
    best = max(med[1][0], med[2][0])
    print(f"\nSmolLM2-135M-Instruct {preset}, greedy, {tokens} new tokens, median of {repeat}, "
          f"torch {torch.__version__}, {os.cpu_count()} cores; torch's own default: {torch_default} threads")
    print(f"{'threads':40s} {'decode tok/s':>13s} {'TTFT s':>7s} {'x best':>7s}   "
          f"each run: tok/s (cores busy before/during)")
    for s in settings:
        label = f"default -> {', '.join(str(c.threads) for c in chosen)}" if s == "default" else f"--threads {s}"
        tok_s, ttft = med[s]
        print(f"{label:40s} {tok_s:13.1f} {ttft:7.2f} {tok_s / best:7.2f}   "
              f"{'  '.join(f'{r[0]:.1f} ({r[2]:.1f}/{r[3]:.1f})' for r in runs[s])}")
    print(f"default / best of 1 and 2 threads: {med['default'][0] / best:.2f}")
    print("cores busy: other processes' CPU (the --busy children included) in the 0.2 s before each run (what the "
          "chooser sees) / during it (/proc/stat minus this process)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--presets", default=None, help="default: fp32,bf16,8bit,nf4-dq (bf16 with --compare-threads)")
    ap.add_argument("--static-cache", action="store_true", help="also try cache_implementation='static' on bf16")
    ap.add_argument("--compare-threads", action="store_true",
                    help="generate's default thread choice vs 1 vs 2 threads (first preset; bf16 if not given)")
    ap.add_argument("--repeat", type=int, default=1, help="--compare-threads rounds (medians are printed)")
    ap.add_argument("--busy", type=int, nargs="?", const=1, default=0,
                    help="run N busy-looping processes beside the measurement (--busy alone: 1)")
    ap.add_argument("--busy-max-s", type=float, default=300.0, help="each busy process stops after this many s")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.busy < 0 or args.repeat < 1:
        ap.error("--busy must be >= 0 and --repeat >= 1")
    busy = start_busy(args.busy, args.busy_max_s)
    if busy:
        print(f"busy: {len(busy)} busy-looping process(es), pids {[p.pid for p in busy]}, "
              f"stopping after at most {args.busy_max_s:g} s", file=sys.stderr)
    try:
        if args.compare_threads:
            compare_threads((args.presets or "bf16").split(",")[0], args.tokens, args.repeat)
        else:
            run_presets(args)
    finally:
        stop_busy(busy)


def run_presets(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    rows = [bench_transformers(p, args.tokens, {}) for p in (args.presets or "fp32,bf16,8bit,nf4-dq").split(",")]
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
