"""What keeping the quantized presets saves: SmolLM2-135M loaded on the CPU per preset, quantizing at load
against reading the copy kept by ``llmfound.models.load_model`` (docs/quantization.md, "Quantized once, kept").

    .venv/bin/python benchmarks/kept_quantized.py [--rounds 2] [--threads 1]

Per round and preset, interleaved: the kept copy is deleted and the preset loaded (bitsandbytes quantizes, then
the copy is saved), then loaded again (read back). Prints seconds of each, the median over rounds, and the bytes
the kept copies take on disk. The first round warms the page cache and imports and is not counted. Nothing is
asserted; figures go to docs/quantization.md with the load average printed here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time

PRESETS = ("8bit", "nf4-dq", "nf4", "fp4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="counted rounds after one warm-up round")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    import torch
    from transformers.utils import logging as tlog

    from llmfound import models
    from llmfound.assets import resolve

    torch.set_num_threads(args.threads)
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    source = resolve("smollm2-135m-instruct")
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in PRESETS}
    print(f"load average before {os.getloadavg()[0]:.2f}, {args.threads} thread(s)")
    for r in range(args.rounds + 1):
        for p in PRESETS:
            kept = models.kept_quantized_dir(source, p, "cpu", None)
            shutil.rmtree(kept, ignore_errors=True)
            t0 = time.perf_counter()
            models.load_model("smollm2-135m-instruct", p, tokenizer=False)
            t1 = time.perf_counter()
            models.load_model("smollm2-135m-instruct", p, tokenizer=False)
            t2 = time.perf_counter()
            if r:
                times[p].append((t1 - t0, t2 - t1))
    print(f"{'preset':8s} {'quantize + keep':>16s} {'read kept':>10s}  (median of {args.rounds}, seconds)")
    for p in PRESETS:
        q, k = (statistics.median(x[i] for x in times[p]) for i in (0, 1))
        kept = models.kept_quantized_dir(source, p, "cpu", None)
        size = sum(f.stat().st_size for f in kept.iterdir())
        print(f"{p:8s} {q:16.2f} {k:10.2f}  ({q / k:.0f}x; kept copy {size / 1e6:.0f} MB)")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
