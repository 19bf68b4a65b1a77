"""Decode speed against the box's ceilings, and memory while generating (issue 27's GPU measurement).

    python benchmarks/decode_speed.py --device cuda --size 1.1b --level 2 --out gpu-report/speed.json
    python benchmarks/decode_speed.py --device cpu --size tiny --level 1        # a smoke run, seconds
    python benchmarks/decode_speed.py --device cpu --model smollm2 --level 2 --contexts 128,512,2048 \
        --threads 1 --out cpu-speed.json                                         # the real SmolLM2 on this CPU

One process: the ceilings (copy bandwidth, read + write counted; bf16 matmul), then one synthetic-weight Llama
(``llmfound.synthetic``; NOT a real model: speed and memory do not depend on the weight values), or with
``--model smollm2`` the real SmolLM2-135M-Instruct from the cache, loaded once per preset, all presets resident
together, timed in interleaved rounds after one warm-up call each (``llmfound.speed.decode_rows``), per batch.
Level 2 adds batch 32 and the static-cache path (transformers compiles the forward on CUDA). Then peak memory
while generating at each ``--contexts`` length against footprint + KV cache (CUDA: allocated bytes; CPU: the
process's peak RSS, reset before each call), after one warm-up call per preset at the shortest context,
before the static path, whose first call compiles for minutes.

The JSON is rewritten after every section, so a run cut short by a time limit keeps what it measured.
``--budget-s`` skips the sections that would start after that many seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmfound.quantization import expected_footprint, footprint  # noqa: E402
from llmfound.models import load_model
from llmfound.speed import (busy_share, copy_bandwidth, decode_rows, generation_peak,  # noqa: E402
    matmul_throughput, roofline_tokens_per_s, spread, time_decode, weight_bytes_per_step)
from llmfound.synthetic import save_synthetic_model, synthetic_llama_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--size", default="1.1b", choices=["1.1b", "tiny"])
    ap.add_argument("--model", default="synthetic", choices=["synthetic", "smollm2"],
                    help="synthetic: the --size Llama; smollm2: the real SmolLM2-135M-Instruct from the cache")
    ap.add_argument("--no-decode", action="store_true", help="skip the decode rows (memory and static cache only)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--level", type=int, default=2, choices=[1, 2])
    ap.add_argument("--presets", default="bf16,8bit,nf4-dq")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=33)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--contexts", default="512,2048,8192")
    ap.add_argument("--budget-s", type=float, default=300.0)
    ap.add_argument("--out", default="speed.json")
    a = ap.parse_args()

    import warnings

    import torch

    warnings.filterwarnings("ignore", message="MatMul8bitLt")
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    left = lambda: a.budget_s - (time.perf_counter() - start)  # noqa: E731
    report: dict = {"args": vars(a), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "sections_skipped": []}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        report["elapsed_s"] = time.perf_counter() - start
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1, default=str))
        os.replace(tmp, out)

    if a.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        report["device"] = {"name": p.name, "total_memory": p.total_memory, "sms": p.multi_processor_count,
                            "capability": f"{p.major}.{p.minor}"}
    import transformers

    report["transformers"] = transformers.__version__
    try:
        import bitsandbytes

        report["bitsandbytes"] = bitsandbytes.__version__
    except Exception as e:  # noqa: BLE001 - a broken native library raises anything; the quantized rows then fail
        report["bitsandbytes"] = f"unusable: {e}"
    print(f"[{time.perf_counter() - start:6.1f} s] ceilings", flush=True)
    big = a.device == "cuda"
    bw = [copy_bandwidth(a.device, nbytes=(4 << 30) if big else (256 << 20), repeats=20 if big else 5)
          for _ in range(3)]
    mm = [matmul_throughput(a.device, n=8192 if big else 1024, repeats=20 if big else 3) for _ in range(3)]
    report["ceilings"] = {"copy_bytes_per_s": spread(bw), "bf16_matmul_flop_per_s": spread(mm)}
    bandwidth = report["ceilings"]["copy_bytes_per_s"]["median"]
    print(f"  copy {bandwidth / 1e9:.0f} GB/s (read + write), matmul "
          f"{report['ceilings']['bf16_matmul_flop_per_s']['median'] / 1e12:.2f} TFLOP/s", flush=True)
    save()

    contexts = [int(c) for c in a.contexts.split(",") if c]
    presets = a.presets.split(",")
    models = {}

    def load_all(ref: str) -> None:
        for preset in presets:
            t0 = time.perf_counter()
            m, _ = load_model(ref, preset, device_map="auto" if big else "cpu", tokenizer=False)
            fp = footprint(m)
            models[preset] = m
            report.setdefault("presets", {})[preset] = {
                "load_s": time.perf_counter() - t0, "footprint": fp.total,
                "analytic": expected_footprint(m, preset).total}
            print(f"  loaded {preset}: {fp.total:,} B", flush=True)

    if a.model == "smollm2":
        load_all("smollm2-135m-instruct")
    else:
        cfg = synthetic_llama_config(a.size)
        cfg.max_position_embeddings = max([2048] + [c + 64 for c in contexts])
        with tempfile.TemporaryDirectory() as tmp:
            save_synthetic_model(cfg, tmp, device=a.device)
            load_all(tmp)
    save()

    batches = [] if a.no_decode else [1, 8] + ([32] if a.level >= 2 else [])
    if batches and left() < 30 * len(batches):
        batches = batches[:max(1, int(left() // 30))]
        report["sections_skipped"].append("decode batches after " + ",".join(map(str, batches)))
    print(f"[{time.perf_counter() - start:6.1f} s] decode batches {batches}", flush=True)
    resident = {p: (m, report["presets"][p]["footprint"]) for p, m in models.items()}
    report["decode"] = {} if not batches else decode_rows(resident, batches=tuple(batches), bandwidth=bandwidth,
                                                          rounds=a.rounds, prompt_tokens=a.prompt_tokens,
                                                          new_tokens=a.new_tokens)
    for b, rows in report["decode"].items():
        for p, r in rows.items():
            busy = "-" if r["busy_share"] is None else f"{r['busy_share']:.2f}"
            warm = f"{1000 * r['warmup_step_s'][0]:.2f} ms" if r["warmup_step_s"] else "-"
            print(f"  {p:7} b={b:<3} {r['ms_per_step']:7.2f} ms/step  {r['tokens_per_s']:8.1f} tok/s  roofline "
                  f"{r['roofline_tokens_per_s']:9.1f}  {100 * r['roofline_fraction']:5.1f}%  busy {busy}  "
                  f"warm-up {warm}",
                  flush=True)
    save()

    if contexts:
        report["generation_peak"] = {}
        for p, m in models.items():
            generation_peak(m, context=min(contexts), new_tokens=8)  # warm-up: a first call's one-time allocations
            for c in contexts:
                if left() < 10:
                    report["sections_skipped"].append(f"peak {p} {c}")
                    continue
                gc.collect()
                try:
                    g = generation_peak(m, context=c, new_tokens=8)
                except Exception as e:  # noqa: BLE001 - an out-of-memory or kernel error is a finding to record
                    report["generation_peak"].setdefault(p, {})[str(c)] = {"error": f"{type(e).__name__}: {e}"[:300]}
                    continue
                fp = report["presets"][p]["footprint"]
                report["generation_peak"].setdefault(p, {})[str(c)] = {
                    "extra_bytes": g.extra_bytes, "kv_bytes": g.kv_bytes, "footprint": fp,
                    "peak_bytes": fp + g.extra_bytes, "estimate_bytes": fp + g.kv_bytes, "kind": g.kind}
                print(f"  peak {p:7} ctx {c:5}: footprint {fp / 1e6:8.1f} MB + extra {g.extra_bytes / 1e6:8.1f} MB"
                      f" (KV {g.kv_bytes / 1e6:7.1f} MB)", flush=True)
            save()
    if a.level >= 2:
        report["static"] = {}
        for p in ("bf16", "nf4-dq"):
            if p not in models or left() < (120 if p == "bf16" else 150):
                report["sections_skipped"].append(f"static {p}")
                continue
            print(f"[{time.perf_counter() - start:6.1f} s] static cache {p}", flush=True)
            try:
                first = time_decode(models[p], batch=1, prompt_tokens=a.prompt_tokens, new_tokens=a.new_tokens,
                                    cache_implementation="static")
                runs = [time_decode(models[p], batch=1, prompt_tokens=a.prompt_tokens, new_tokens=a.new_tokens,
                                    cache_implementation="static") for _ in range(a.rounds)]
                steps = [t.step_s for t in runs]
                bytes_step = weight_bytes_per_step(models[p], report["presets"][p]["footprint"], 1)
                roof = roofline_tokens_per_s(bytes_step, bandwidth, 1)
                tps = 1 / spread(steps)["median"]
                row = {"first_call_s": first.wall_s, "step_s": spread(steps), "tokens_per_s": tps,
                       "roofline_fraction": tps / roof,
                       "wall_s": spread([t.wall_s for t in runs])}
                bs = busy_share(models[p], batch=1, prompt_tokens=a.prompt_tokens, new_tokens=a.new_tokens,
                                cache_implementation="static")
                if bs is not None:
                    row["profiled"] = bs
                    row["busy_share"] = bs["kernel_s"] / row["wall_s"]["median"]
            except Exception as e:  # noqa: BLE001 - a compile failure is a finding to record, not a crash
                row = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
            report["static"][p] = row
            print(f"  {p}: {row}", flush=True)
            save()

    save()
    print(f"done in {time.perf_counter() - start:.1f} s; skipped: {report['sections_skipped'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
