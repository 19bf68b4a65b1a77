"""Benchmark: how well ``gate --speed`` separates a slow candidate from an identical one: its false-alarm rate
(an identical candidate flagged slower) and its catch rate (a planted 2x-slow ``generate`` flagged), over repeats.

Run:  .venv/bin/python benchmarks/gate_speed.py [--repeats 5] [--rounds 3]

Two overlay side environments are built once under a temporary folder (offline: uv --offline, the candidates
are local wheels): one with a package that changes nothing, one with a package whose ``.pth`` makes every
``generate`` sleep as long as it ran (the same planted wheel as ``specs/test_gate.py``). Each repeat runs the
speed check (:mod:`llmfound.upgrade.speed_check`: this environment and the side environment, interleaved,
``--rounds`` rounds) for both and prints the median ratios, their spread and the verdicts. The machine is
shared: say what else was running; the check is built to hold under that load, so that is part of the result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "specs"))

from llmfound.upgrade import side_envs, speed_check  # noqa: E402
from test_gate import probe_wheel, slow_wheel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=speed_check.ROUNDS)
    args = ap.parse_args()
    import os

    os.environ["UV_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="llmfound-gate-speed-") as tmp:
        root = Path(tmp)
        side_envs._envs_root = lambda: root / "envs"  # noqa: SLF001 - a throwaway root for this benchmark only
        (root / "wheels").mkdir()
        envs = {"identical": side_envs.ensure([str(probe_wheel(root / "wheels"))], overlay=True),
                "2x-slow generate": side_envs.ensure([str(slow_wheel(root / "wheels"))], overlay=True)}
        print(f"band {speed_check.BAND}x, {args.rounds} rounds per check, {args.repeats} repeats; probes: "
              + "; ".join(f"{k}: {v}" for k, v in speed_check.PROBES.items()))
        flagged = {name: 0 for name in envs}
        medians = {name: [] for name in envs}
        t0 = time.perf_counter()
        for i in range(args.repeats):
            for name, env in envs.items():
                def cand(env=env):
                    return speed_check.parse_run(side_envs.run_in(env, ["snapshot", "speed", "--json"]), name)

                base, runs = speed_check.interleaved(speed_check.run_here, cand, rounds=args.rounds)
                result = speed_check.compare(base, runs)
                d = result["probes"]["decode"]
                e = result["probes"]["encode"]
                slower = d["slower"] or e["slower"]
                flagged[name] += slower
                medians[name].append(d["median"])
                print(f"repeat {i + 1} {name:17s} decode {d['median']:.2f}x ({d['min']:.2f}-{d['max']:.2f}) "
                      f"encode {e['median']:.2f}x ({e['min']:.2f}-{e['max']:.2f}) -> "
                      f"{'SLOWER' if slower else 'pass'}", flush=True)
        print(f"\n{time.perf_counter() - t0:.0f} s in all")
        for name in envs:
            m = medians[name]
            print(f"{name}: flagged {flagged[name]}/{args.repeats}; decode median ratio {statistics.median(m):.2f}x "
                  f"(range {min(m):.2f}-{max(m):.2f})")


if __name__ == "__main__":
    main()
