"""Quantization's accuracy cost on the whole corpus, and the time each preset took (issue 13's figures).

    .venv/bin/python benchmarks/quality.py [--tokens 75680] [--presets bf16,8bit,nf4-dq,nf4,fp4] [--json FILE]

Scores SmolLM2-135M-Instruct in each preset against bf16 on the first ``--tokens`` tokens of the Lee corpus
(default: all 75,680; window 512, stride 256) with :func:`llmfound.quality.quality`, and prints, per preset:
footprint, perplexity, ΔPPL, mean / p99 KL divergence, top-1 agreement, the load seconds and the seconds of
forward passes (scored tokens / prefill tok/s), plus the load average before and after (other work on the
machine skews every timing: read it). Nothing is asserted: the bounds live in ``llmfound/quality.py``
(``DELTA_PPL_BOUNDS``) and are checked by ``specs/test_quality.py``; the figures go into ``docs/quality.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=75_680)
    ap.add_argument("--presets", default="bf16,8bit,nf4-dq,nf4,fp4")
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--json", help="also write the report (and timings) as JSON to this file")
    args = ap.parse_args()
    os.environ.setdefault("LLMFOUND_OFFLINE", "1")
    import warnings

    warnings.filterwarnings("ignore")  # bitsandbytes warns once per 8-bit matmul call on the CPU
    from llmfound.environment import versions
    from llmfound.quality import quality

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  {stage} {done}/{total} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    report = quality(presets=tuple(args.presets.split(",")), tokens=args.tokens,
                     decode_tokens=args.decode_tokens, on_progress=progress)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    v = versions()
    print(f"{report.model}, {report.tokens:,} tokens of {report.corpus} (window {report.context}, stride "
          f"{report.stride}), {report.device}; torch {v['torch']}, transformers {v['transformers']}, "
          f"bitsandbytes {v['bitsandbytes']}; {os.cpu_count()} cores")
    print(f"{'preset':8}{'footprint':>12}{'PPL':>9}{'ΔPPL':>9}{'KLD mean':>10}{'KLD p99':>9}{'top-1':>8}"
          f"{'load s':>8}{'score s':>9}{'decode tok/s':>14}")
    for r in report.rows:
        score_s = r.tokens / r.prefill_tok_s if r.prefill_tok_s else 0.0
        decode = "-" if r.decode_tok_s is None else f"{r.decode_tok_s:.1f}"
        print(f"{r.preset:8}{r.footprint_bytes / 1e6:>9.1f} MB{r.ppl:>9.3f}{r.delta_ppl_pct:>+8.2f}%"
              f"{r.kld_mean:>10.4f}{r.kld_p99:>9.3f}{r.top1_pct:>7.1f}%{r.load_s:>8.1f}{score_s:>9.1f}{decode:>14}")
    print(f"wall {wall:.0f} s; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(1-minute; other processes' work counts)")
    if args.json:
        Path(args.json).write_text(json.dumps({"report": report.as_dict(), "wall_s": wall, "versions": v,
                                               "loadavg": [load_before, load_after]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
