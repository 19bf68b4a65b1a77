"""Benchmark: the upgrade gate's cost per candidate: side-environment creation (cold uv cache, warm uv cache,
reused environment) and the checks (``snapshot compare`` in the side environment).

Run:  .venv/bin/python benchmarks/gate.py [--candidate transformers==5.24.0] [--cold] [--no-checks]

Every side environment here is built under a temporary folder, so the user's own ``<home>/gate/envs`` is not
touched and "cold environment" really is a new one. ``--cold`` also points uv at an empty temporary cache
(``UV_CACHE_DIR``): every wheel is fetched again from the configured indexes (~1.2 GB installed; torch comes
from the local find-links folder where pip is configured with one). Targets (issue 14, 2 cores): at most 90 s
per candidate with a warm uv cache (environment + checks), a 10-release matrix within 15 minutes; the script
prints both verdicts. Absolute seconds on a shared 2-core machine are noisy; say what else was running.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmfound.upgrade import gate as G, side_envs, snapshot  # noqa: E402

PER_CANDIDATE_S = 90.0
"""Issue 14's target: one candidate, warm uv cache, environment + checks, on 2 cores."""
MATRIX_S = 15 * 60.0
"""Issue 14's target: a 10-release matrix."""


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", default="transformers==5.24.0")
    ap.add_argument("--cold", action="store_true", help="also build with an empty uv cache (downloads again)")
    ap.add_argument("--no-checks", action="store_true", help="time only the side environments")
    args = ap.parse_args()
    cand = G.parse_candidate(args.candidate)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="llmfound-gate-bench-") as tmp:
        if args.cold:
            side_envs._envs_root = lambda: Path(tmp) / "cold-envs"
            os.environ["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache")
            s, env = timed(lambda: side_envs.ensure(list(cand.requirements)))
            rows.append(("side environment, cold uv cache", s, f"{len(env.installed)} distributions"))
            del os.environ["UV_CACHE_DIR"]
        side_envs._envs_root = lambda: Path(tmp) / "envs"
        s, env = timed(lambda: side_envs.ensure(list(cand.requirements)))
        warm_build = s
        rows.append(("side environment, warm uv cache", s, f"{len(env.installed)} distributions"
                     + (f"; companions moved: {env.relaxed}" if env.relaxed else "")))
        s, env2 = timed(lambda: side_envs.ensure(list(cand.requirements)))
        rows.append(("side environment reused", s, f"warm={env2.warm}"))
        checks = None
        if not args.no_checks:
            checks, r = timed(lambda: side_envs.run_in(env, ["snapshot", "compare", str(snapshot.BASELINE), "--json"]))
            rows.append(("checks (snapshot compare, all sections)", checks, f"exit {r.returncode}"))
    print(f"gate benchmark, candidate {cand.label}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    print(f"{'step':44s} {'seconds':>8s}  note")
    for name, sec, note in rows:
        print(f"{name:44s} {sec:8.1f}  {note}")
    if checks is not None:
        per = warm_build + checks
        print(f"per candidate, warm uv cache: {per:.0f} s (target {PER_CANDIDATE_S:.0f} s: "
              f"{'met' if per <= PER_CANDIDATE_S else 'MISSED'}); 10-release matrix ~{10 * per / 60:.1f} min "
              f"(target {MATRIX_S / 60:.0f} min: {'met' if 10 * per <= MATRIX_S else 'MISSED'})")


if __name__ == "__main__":
    main()
