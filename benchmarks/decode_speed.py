"""Decode speed against the box's ceilings, and memory while generating (issue 27's GPU measurement).

    python benchmarks/decode_speed.py --device cuda --size 1.1b --level 2 --out gpu-report/speed.json
    python benchmarks/decode_speed.py --device cpu --size tiny --level 1        # a smoke run, seconds

One process: the ceilings (copy bandwidth, read + write counted; bf16 matmul), then one synthetic-weight Llama
(``llmfound.synthetic``; NOT a real model: speed and memory do not depend on the weight values) loaded once per
preset, all presets resident together, timed in interleaved rounds after a warm-up (``llmfound.speed``), per
batch. Level 2 adds batch 32 and the static-cache path (transformers compiles the forward on CUDA). Then peak
CUDA memory while generating at 512 / 2048 / 8192 tokens of context against footprint + KV cache (before the
static path, whose first call compiles for minutes).

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
from llmfound.speed import (busy_share, copy_bandwidth, generation_peak, interleaved, matmul_throughput,
    roofline_tokens_per_s, spread, time_decode, weight_bytes_per_step)
from llmfound.synthetic import save_synthetic_model, synthetic_llama_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--size", default="1.1b", choices=["1.1b", "tiny"])
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
    start = time.perf_counter()
    left = lambda: a.budget_s - (time.perf_counter() - start)  # noqa: E731
    report: dict = {"args": vars(a), "torch": torch.__version__, "sections_skipped": []}
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

    cfg = synthetic_llama_config(a.size)
    contexts = [int(c) for c in a.contexts.split(",") if c]
    cfg.max_position_embeddings = max([2048] + [c + 64 for c in contexts])
    presets = a.presets.split(",")
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        save_synthetic_model(cfg, tmp, device=a.device)
        for preset in presets:
            t0 = time.perf_counter()
            m, _ = load_model(tmp, preset, device_map="auto" if big else "cpu", tokenizer=False)
            fp = footprint(m)
            models[preset] = m
            report.setdefault("presets", {})[preset] = {
                "load_s": time.perf_counter() - t0, "footprint": fp.total,
                "analytic": expected_footprint(m, preset).total}
            print(f"  loaded {preset}: {fp.total:,} B", flush=True)
    save()

    batches = [1, 8] + ([32] if a.level >= 2 else [])
    report["decode"] = {}
    for b in batches:
        if left() < 30:
            report["sections_skipped"].append(f"decode batch {b}")
            continue
        print(f"[{time.perf_counter() - start:6.1f} s] decode batch {b}", flush=True)
        tasks = {p: (lambda m=m, b=b: time_decode(m, batch=b, prompt_tokens=a.prompt_tokens,
                                                  new_tokens=a.new_tokens)) for p, m in models.items()}
        res = interleaved(tasks, rounds=a.rounds, warmup=1)
        rows = {}
        for p, r in res.items():
            steps = [t.step_s for t in r["rounds"]]
            bytes_step = weight_bytes_per_step(models[p], report["presets"][p]["footprint"], b)
            roof = roofline_tokens_per_s(bytes_step, bandwidth, b)
            tps = b / spread(steps)["median"]
            rows[p] = {"step_s": spread(steps), "tokens_per_s": tps, "bytes_per_step": bytes_step,
                       "roofline_tokens_per_s": roof, "roofline_fraction": tps / roof,
                       "warmup_step_s": [t.step_s for t in r["warmup"]],
                       "prefill_s": spread([t.prefill_s for t in r["rounds"]]),
                       "wall_s": spread([t.wall_s for t in r["rounds"]])}
            if big:
                bs = busy_share(models[p], batch=b, prompt_tokens=a.prompt_tokens, new_tokens=a.new_tokens)
                rows[p]["profiled"] = bs
                rows[p]["busy_share"] = bs["kernel_s"] / rows[p]["wall_s"]["median"]
            print(f"  {p:7} b={b:<3} {1000 * spread(steps)['median']:7.2f} ms/step  {tps:8.1f} tok/s  "
                  f"roofline {roof:9.1f}  {100 * tps / roof:5.1f}%  busy "
                  f"{rows[p].get('busy_share', float('nan')):.2f}  warm-up {1000 * rows[p]['warmup_step_s'][0]:.2f} ms",
                  flush=True)
        report["decode"][str(b)] = rows
        save()

    if big:
        report["generation_peak"] = {}
        for p, m in models.items():
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
                    "peak_bytes": fp + g.extra_bytes, "estimate_bytes": fp + g.kv_bytes}
                print(f"  peak {p:7} ctx {c:5}: footprint {fp / 1e6:8.1f} MB + extra {g.extra_bytes / 1e6:8.1f} MB"
                      f" (KV {g.kv_bytes / 1e6:7.1f} MB)", flush=True)
            save()
    if big and a.level >= 2:
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
