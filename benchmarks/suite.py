"""How long the warm default tier takes, and where the time goes (issue 10's "fast feedback" figures).

    .venv/bin/python benchmarks/suite.py [--runs 2] [--serial]

Runs the README's ``pytest`` (default tier, cache warm, offline; with bytecode caches written even where
``PYTHONDONTWRITEBYTECODE`` is set, as a user's machine has them) ``--runs`` times in a fresh process each, with
``--durations=0``, and prints: wall and CPU seconds per run (user + system, of pytest and every process it
started), the load average before and after (other work on the machine skews every figure: read it), the
seconds of spec time per spec file (summed over xdist workers, so larger than the wall), and the fixed cost every
xdist worker pays before its first spec: importing torch + transformers and loading the family tokenizers
(measured in one fresh process). ``--serial`` adds one run in a single process (``-n 0``): its CPU seconds are
the work the tier is, and that work divided by the cores is the shortest wall any split between workers could
reach. Nothing is asserted: targets live here and in ``docs/benchmarks.md``, never in a timed unit test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^([\d.]+)s (?:call|setup|teardown)\s+(specs/[^:]+)::")


def run_suite(*extra: str) -> tuple[float, float, str, Counter]:
    """One default-tier run with pytest options ``extra``: (wall seconds, CPU seconds, pytest's closing line, spec
    seconds per file)."""
    env = dict(os.environ, LLMFOUND_OFFLINE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm includes Python's bytecode caches, as on a user's machine
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
                           "--durations-min=0", *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per_file: Counter = Counter()
    for line in proc.stdout.splitlines():
        m = DURATION.match(line)
        if m:
            per_file[m.group(2)] += float(m.group(1))
    closing = next((ln.strip("= ") for ln in reversed(proc.stdout.splitlines()) if " in " in ln and "passed" in ln),
                   f"pytest exit {proc.returncode}")
    return wall, cpu, closing, per_file


def fixed_cost() -> str:
    """Seconds a fresh process spends importing torch + transformers and loading every family tokenizer."""
    code = ("import time; t=time.perf_counter(); import torch, transformers; i=time.perf_counter()-t\n"
            "from llmfound import families, tokenization\n"
            "t=time.perf_counter(); n=len([tokenization.load_tokenizer(f) for f in families.family_names()])\n"
            "print(f'imports {i:.1f} s, {n} family tokenizers {time.perf_counter()-t:.1f} s')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, LLMFOUND_OFFLINE="1", HF_HUB_OFFLINE="1"))
    return (out.stdout.strip().splitlines() or [out.stderr.strip()[-200:]])[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="default-tier runs (each in a fresh process)")
    ap.add_argument("--serial", action="store_true", help="add one run in a single process (-n 0)")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"cores {cores}, load average before {os.getloadavg()[0]:.2f}")
    last: Counter = Counter()
    for i in range(args.runs):
        wall, cpu, closing, last = run_suite()
        print(f"run {i + 1}: {wall:.1f} s wall, {cpu:.0f} s CPU ({closing}); load average after "
              f"{os.getloadavg()[0]:.2f}")
    if args.serial:
        wall, cpu, closing, _ = run_suite("-n", "0")
        print(f"one process (-n 0): {wall:.1f} s wall, {cpu:.0f} s CPU ({closing}); the shortest wall {cores} "
              f"workers could reach with no work repeated and no slowdown from sharing the cores: {cpu / cores:.0f} s")
    print("spec seconds per file (summed over workers), last run:")
    for path, secs in last.most_common():
        print(f"  {secs:6.1f} s  {path}")
    print(f"  {sum(last.values()):6.1f} s  in all")
    print(f"fixed cost per worker process: {fixed_cost()}")


if __name__ == "__main__":
    main()
