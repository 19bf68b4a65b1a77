"""Benchmark: the wild-templates table and Meta's reference checks, timed.

Run:  .venv/bin/python benchmarks/wild_templates.py [--json]

In one process, files already in the OS cache (seconds, wall clock):
- the conformance table of every shipped template (``wild_templates.wild_table``: templates x 9 conversations),
  once cold (Jinja compiles each template; transformers caches the compiled template) and once warm;
- the traits of every template (``wild_templates.traits``);
- the Llama 3 / Llama 4 conversions from Meta's tokenizer.model (``convert.tiktoken_tokenizer`` into a temp
  folder, transformers' TikTokenConverter);
- Meta's own tiktoken encoder against the llama4 family on the oracle's 1,200 seeded texts
  (``specs/test_meta_reference.py``'s generators): texts per second of each side.
Targets (docs/benchmarks.md): the table under 30 s cold on the 2-core machine (a default-tier spec per cell must
stay cheap); each conversion under 10 s (it runs once per cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "specs"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from llmfound import assets  # noqa: E402
from llmfound.meta import reference as meta_reference  # noqa: E402
from llmfound.chat import wild as W  # noqa: E402
from llmfound.assets.recipes import tiktoken_tokenizer  # noqa: E402
from llmfound import load_tokenizer  # noqa: E402
from llmfound.assets.manifest import CONVERSIONS  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    names = W.template_names()
    load_tokenizer(W.RENDERER)
    table, cold = timed(lambda: W.wild_table(names))
    _, warm = timed(lambda: W.wild_table(names))
    _, traits = timed(lambda: [W.traits(n) for n in names])
    cells = sum(len(r) for r in table.values())
    res = {"templates": len(names), "cells": cells, "table_cold_s": cold, "table_warm_s": warm,
           "ms_per_cell_warm": 1000 * warm / cells, "traits_s": traits}
    for conv in (c for c in CONVERSIONS if c.recipe == "tiktoken_tokenizer"):
        with tempfile.TemporaryDirectory() as tmp:
            kw = dict(conv.args)
            kw["asset"] = assets.ensure(kw["asset"])
            _, res[f"{conv.name}_s"] = timed(lambda: tiktoken_tokenizer(Path(tmp), **kw))
    from test_meta_reference import GENERATORS, texts  # the oracle's own seeded texts

    corpus = [t for g in GENERATORS for t in texts(g)]
    meta, tok = meta_reference.meta_tokenizer("llama4"), load_tokenizer("llama4")
    _, m = timed(lambda: [meta.encode(t) for t in corpus])
    _, h = timed(lambda: [tok.encode(t, add_special_tokens=False, split_special_tokens=True) for t in corpus])
    res.update({"oracle_texts": len(corpus), "meta_texts_per_s": len(corpus) / m, "hf_texts_per_s": len(corpus) / h})
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{res['templates']} templates, {cells} cells: table {cold:.1f} s cold, {warm:.1f} s warm "
          f"({res['ms_per_cell_warm']:.1f} ms a cell); traits {traits:.1f} s")
    for conv in (c for c in CONVERSIONS if c.recipe == "tiktoken_tokenizer"):
        print(f"{conv.name}: built from Meta's file in {res[conv.name + '_s']:.1f} s")
    print(f"oracle, {len(corpus)} texts: Meta's tiktoken {res['meta_texts_per_s']:.0f}/s, llama4 family "
          f"{res['hf_texts_per_s']:.0f}/s")


if __name__ == "__main__":
    main()
