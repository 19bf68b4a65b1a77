"""Benchmark: tokenizer speed per family, on a fixed multilingual corpus.

Run:  .venv/bin/python benchmarks/tokenization.py [--families a,b] [--examples 200] [--json]

Per family, in one process (files already in the OS cache):
- warm load: ``load_tokenizer(family, cached=False)`` after one untimed load (seconds);
- encode+decode throughput on CORPUS (~100 KB of English, German, French, Russian, Greek, Chinese, Japanese,
  Korean, Arabic, Hebrew, Hindi, code and emoji; MB/s of UTF-8 input, best of 3);
- examples/s of the round-trip property (``round_trip`` over hypothesis' HARD_TEXT strategy from
  ``specs/test_tokenization.py``, ``--examples`` drawn examples, inert special tokens);
- the time to encode + decode a 1 MB input (CORPUS repeated).
Ratios are to the fastest family in each column: the machine is shared and absolute figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from llmfound import families, tokenization as T  # noqa: E402

PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's 3:45 p.m., and the temperature is 21.5 °C.\n",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Maß und Übermut.\n",
    "Le cœur a ses raisons que la raison ne connaît point. « Ça va ? » — oui, très bien.\n",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.\n",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.\n",
    "我能吞下玻璃而不伤身体。机器学习模型需要分词器。\n",
    "いろはにほへと ちりぬるを。トークナイザーのテストです。\n",
    "다람쥐 헌 쳇바퀴에 타고파. 한국어 텍스트입니다.\n",
    "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر.\n",
    "דג סקרן שט בים מאוכזב ולפתע מצא חברה.\n",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले।\n",
    "def f(x: int) -> int:\n    return x ** 2  # squares\n\tif x  >=  10: print(f'{x!r}')\r\n",
    "Emoji: 🙂👍🏽 👨\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 🇫🇷 — café e\u0301 naïve ﬁ ① Ｋ\n",
]
CORPUS = ""
while len(CORPUS.encode()) < 100_000:
    CORPUS += "".join(PARAGRAPHS)


def bench_family(name: str, examples: int) -> dict:
    T.load_tokenizer(name, cached=False)  # untimed: warms the OS cache and imports
    t = time.perf_counter()
    tok = T.load_tokenizer(name, cached=False)
    load_s = time.perf_counter() - t

    nbytes = len(CORPUS.encode())
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ids = T.encode(tok, CORPUS)
        T.decode(tok, ids)
        best = min(best, time.perf_counter() - t)
    mb_s = nbytes / best / 1e6

    sys.path.insert(0, str(ROOT / "specs"))
    from hypothesis import HealthCheck, given, settings

    from test_tokenization import HARD_TEXT  # the spec's own generator

    count = 0

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(text=HARD_TEXT)
    def prop(text):
        nonlocal count
        T.round_trip(name, text, tokenizer=tok, inert_specials=True)
        count += 1

    t = time.perf_counter()
    prop()
    ex_s = count / (time.perf_counter() - t)

    big = CORPUS * (1_000_000 // nbytes + 1)
    t = time.perf_counter()
    T.decode(tok, T.encode(tok, big))
    mb1_s = time.perf_counter() - t
    return {"family": name, "load_s": load_s, "mb_per_s": mb_s, "examples_per_s": ex_s, "one_mb_s": mb1_s,
            "tokens_per_kb": len(ids) / (nbytes / 1000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(families.family_names()))
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [bench_family(n, args.examples) for n in args.families.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    fast_load = min(r["load_s"] for r in rows)
    fast_mb = max(r["mb_per_s"] for r in rows)
    fast_ex = max(r["examples_per_s"] for r in rows)
    t = Table(title=f"tokenizers: corpus {len(CORPUS.encode()) / 1000:.0f} KB multilingual; ratios to the best family")
    for col in ("family", "warm load", "x best", "enc+dec MB/s", "best / this", "round trips/s",
                "best / this", "1 MB enc+dec", "tokens/KB"):
        t.add_column(col, justify="left" if col == "family" else "right")
    for r in rows:
        t.add_row(r["family"], f"{r['load_s']:.2f} s", f"{r['load_s'] / fast_load:.1f}x", f"{r['mb_per_s']:.2f}",
                  f"{fast_mb / r['mb_per_s']:.1f}x", f"{r['examples_per_s']:.0f}",
                  f"{fast_ex / r['examples_per_s']:.1f}x",
                  f"{r['one_mb_s']:.2f} s", f"{r['tokens_per_kb']:.0f}")
    Console(width=140).print(t)


if __name__ == "__main__":
    main()
