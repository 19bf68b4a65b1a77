"""The gate's speed check: the same fixed micro-benchmarks timed in this environment (the baseline's pins) and in a
candidate's side environment, interleaved, several rounds; a slowdown beyond :data:`BAND` is a drift of its own
kind (section ``speed``).

Why interleaved: on a shared machine the load changes from minute to minute, and the first model a process loads
runs slower. Each round runs both environments back to back (the order alternates from round to round), so a
round's ratio compares two runs under nearly the same load; the verdict reads the median of the rounds' ratios
and reports their spread. Each run is a fresh process (``llmfound snapshot speed --json``) that loads, warms up,
then times; one torch thread in both, so the core count cannot decide.

The probes (:data:`PROBES`): SmolLM2-135M-Instruct bf16 greedy decode on the CPU (ms per generated token) and
the gpt2 tokenizer's encode over the snapshot corpus (microseconds per token). What the band and the rounds
catch, and how often an identical candidate is flagged (the false-alarm rate): ``docs/upgrade-gate.md``,
measured by ``benchmarks/gate_speed.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from llmfound.environment import isolated_python
from llmfound.speed import spread
from llmfound.errors import SideEnvironmentError

__all__ = ["PROBES", "BAND", "ROUNDS", "MODEL", "measure", "run_here", "interleaved", "compare", "drifts"]

PROBES = {"decode": "SmolLM2-135M-Instruct bf16 greedy decode, ms per token",
          "encode": "gpt2 tokenizer encode over the snapshot corpus, microseconds per token"}
"""Probe name -> what it times (every value is seconds-based: lower is faster)."""
BAND = 1.5
"""A probe is slower when the median of the candidate/baseline ratios over the rounds exceeds this (and every
round's ratio exceeds ``1 + (BAND - 1) / 2``): wide enough that an identical candidate on a busy 2-core machine
stays inside it, narrow enough to catch a release that doubles the time."""
ROUNDS = 3
"""Rounds per candidate: each runs both environments once."""
MODEL = "smollm2-135m-instruct"
DECODE_TOKENS = 24
"""Greedy tokens timed per decode run (after an 8-token warm-up); the run's figure is the median of 3 runs."""


def measure(model: str = MODEL, decode_tokens: int = DECODE_TOKENS) -> dict:
    """Time the probes in this process: ``{"decode": ms per token, "encode": microseconds per token,
    "threads": 1, "versions": {...}}``. Loads ``model`` in bf16 on the CPU with one torch thread; raises what
    :func:`llmfound.models.load_model` raises (e.g. :class:`~llmfound.errors.AssetMissingError` offline)."""
    import torch

    from llmfound.environment import versions
    from llmfound.models import load_model
    from llmfound.tokenization import load_tokenizer
    from llmfound.upgrade.sections import CORPUS

    torch.set_num_threads(1)
    model_, tok = load_model(model, "bf16")
    ids = tok("The capital of France is", return_tensors="pt")
    greedy = dict(do_sample=False, pad_token_id=tok.eos_token_id)

    def decode_ms() -> float:
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = model_.generate(**ids, max_new_tokens=decode_tokens, min_new_tokens=decode_tokens, **greedy)
            dt = time.perf_counter() - t0
        return 1000 * dt / (out.shape[1] - ids["input_ids"].shape[1])

    with torch.inference_mode():
        model_.generate(**ids, max_new_tokens=8, **greedy)  # warm-up
    decode = statistics.median(decode_ms() for _ in range(3))
    gpt2 = load_tokenizer("gpt2")
    text = "\n".join(CORPUS) * 20
    gpt2.encode(text)  # warm-up

    def encode_us() -> float:
        t0 = time.perf_counter()
        n = len(gpt2.encode(text))
        return 1e6 * (time.perf_counter() - t0) / n

    encode = statistics.median(encode_us() for _ in range(5))
    return {"decode": round(decode, 3), "encode": round(encode, 4), "threads": 1, "versions": versions()}


def run_here(timeout: float = 600) -> dict:
    """Run ``llmfound snapshot speed --json`` in a fresh process of this environment, with the same llmfound code
    the side environments get (this checkout's package first on ``sys.path``), isolated from the caller's
    directory. Returns the parsed report; raises :class:`SideEnvironmentError` when the run fails."""
    src = str(Path(__file__).resolve().parents[2])  # the folder holding the llmfound package
    code = (f"import sys; sys.path.insert(0, {src!r}); from llmfound.cli import main; "
            f"sys.exit(main(['snapshot', 'speed', '--json']))")
    env = dict(os.environ, LLMFOUND_OFFLINE="1")
    with tempfile.TemporaryDirectory(prefix="llmfound-speed-") as cwd:
        r = subprocess.run([*isolated_python(), "-c", code], capture_output=True, text=True, env=env, cwd=cwd,
                           timeout=timeout)
    return parse_run(r, "this environment")


def parse_run(r: subprocess.CompletedProcess, where: str) -> dict:
    """The JSON report of a finished ``snapshot speed --json`` run; :class:`SideEnvironmentError` naming
    ``where`` and the run's last line when it failed or printed no report."""
    try:
        data = json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(data.get(p), (int, float)) for p in PROBES):
        lines = [ln for ln in (r.stderr or r.stdout or "").splitlines() if ln.strip()]
        raise SideEnvironmentError(f"the speed probe failed in {where}: "
                                   f"{lines[-1].strip() if lines else f'exit {r.returncode}'}"[:400])
    return data


def interleaved(run_base: Callable[[], dict], run_candidate: Callable[[], dict], rounds: int = ROUNDS
                ) -> tuple[list[dict], list[dict]]:
    """Run both ``rounds`` times, alternating which goes first (base first in round 1): two tasks through
    :func:`llmfound.speed.interleaved`, no warm-up (each run is a fresh process that warms itself up). Returns the
    baseline's runs and the candidate's runs, in round order."""
    from llmfound.speed import interleaved as rotated

    runs = rotated({"base": run_base, "candidate": run_candidate}, rounds=rounds, warmup=0)
    return runs["base"]["rounds"], runs["candidate"]["rounds"]


def compare(base: list[dict], cand: list[dict], band: float = BAND) -> dict:
    """Per probe: the rounds' values, their candidate/baseline ratios, the median ratio with its spread, and
    ``slower`` (median above ``band`` and every round above ``1 + (band - 1) / 2``). ``base`` and ``cand`` are
    equally long lists of :func:`measure` reports (one per round). Raises ``ValueError`` for empty or unequal
    lists or a non-positive value."""
    if not base or len(base) != len(cand):
        raise ValueError(f"need the same number of rounds on both sides, got {len(base)} and {len(cand)}")
    out = {}
    for p in PROBES:
        b, c = [r[p] for r in base], [r[p] for r in cand]
        if min(b + c) <= 0:
            raise ValueError(f"probe {p}: times must be positive, got {b} and {c}")
        ratios = [y / x for x, y in zip(b, c)]
        r = spread(ratios)
        out[p] = {"baseline": b, "candidate": c, "ratios": [round(x, 3) for x in ratios],
                  **{k: round(r[k], 3) for k in ("median", "min", "max")},
                  "slower": r["median"] > band and r["min"] > 1 + (band - 1) / 2}
    return {"band": band, "rounds": len(base), "probes": out}


def drifts(result: dict) -> list[dict]:
    """The slower probes as gate drifts (section ``speed``): subject the probe, behaviour what it times with the
    median ratio and spread, old and new the median values."""
    out = []
    for p, r in result["probes"].items():
        if r["slower"]:
            out.append({"subject": p, "section": "speed",
                        "behaviour": f"{PROBES[p]}: {r['median']:.2f}x slower (rounds {r['min']:.2f}-{r['max']:.2f}, "
                                     f"band {result['band']}x)",
                        "old": statistics.median(r["baseline"]), "new": statistics.median(r["candidate"])})
    return out
