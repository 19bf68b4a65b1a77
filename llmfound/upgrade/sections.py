"""What the upgrade gate records: one function per section, each computing, for the installed libraries, every
subject's behaviours (``{subject: {behaviour: json value}}``).

The sections (:data:`SECTIONS`): per family the ids of a fixed corpus (llama.cpp's golden inputs included), the
special tokens and encode defaults, renders of the chat conformance conversations and of the templates in the
wild; SmolLM2's footprints per preset and greedy answers to fixed prompts; pipeline outputs; and quantization's
accuracy (``quality``), whose numbers are compared within :data:`TOLERANCES`. A new gate subject goes here: a
``section_*`` function, its :data:`SECTIONS` row and its ``snapshot_format.KINDS`` row; :mod:`snapshot` records
and compares whatever this module lists.
"""

from __future__ import annotations

import json
from typing import Callable

from llmfound.errors import LlmfoundError
from llmfound.upgrade.snapshot_format import sane_number

__all__ = ["ERROR", "CORPUS", "GREEDY_PROMPTS", "GREEDY_TOKENS", "section_ids", "section_special_tokens",
           "section_templates", "section_wild_templates", "section_model", "section_pipelines", "section_quality",
           "QUALITY_TOKENS", "QUALITY_PRESETS", "TOLERANCES", "within_tolerance", "SECTIONS", "FAST",
           "check_sections"]

CORPUS = (
    "Hello world",
    " leading space",
    "trailing space ",
    "a  b\tc\r\nd",
    "I'm here, aren't I? Don't.",
    "3.14159 and 1,000,000 (10^6)",
    "naïve café — déjà vu",
    "日本語のテキスト 中文 한국어",
    "emoji 🙂 family 👨‍👩‍👧 flag 🇫🇷",
    "مرحبا بالعالم",
    "<|im_end|> <s> [INST] not special?",
)
"""Fixed texts every family encodes; llama.cpp's golden inputs are added for families that have them."""

GREEDY_PROMPTS = ("What is the capital of France?", "Name three colors.")
GREEDY_TOKENS = 24


def _cached_families(need_template: bool = False) -> list:
    from llmfound import families

    return [f for f in families.FAMILIES if f.is_cached()
            and (f.template or not need_template)]


ERROR = "error"
"""The one behaviour a subject records when computing it raised: ``{"error": "<Class>: first line"}``. A
library release that breaks one family then shows as one drift of that family, and every other family is still
compared (a single failing load used to abort the whole snapshot)."""


def _per_subject(names, compute) -> dict:
    """``{name: compute(name)}``, with ``{ERROR: "<Class>: message"}`` for a name whose computation raised."""
    from llmfound.errors import first_line

    out = {}
    for name in names:
        try:
            out[name] = compute(name)
        except Exception as e:  # noqa: BLE001 - any failure of one subject is that subject's recorded behaviour
            out[name] = {ERROR: f"{type(e).__name__}: {first_line(e)}"}
    return out


def section_ids() -> dict:
    """Per family: ids (no special tokens) of :data:`CORPUS` and of its golden inputs, keyed by text."""
    from llmfound.tokenization import load_tokenizer
    from llmfound.tokenization import golden_vectors

    def ids(fam) -> dict:
        tok = load_tokenizer(fam.name)
        texts = list(CORPUS)
        if fam.golden:
            texts += [c.text for c in golden_vectors(fam.golden) if c.text not in texts]
        return {repr(t): tok.encode(t, add_special_tokens=False) for t in texts}

    fams = {f.name: f for f in _cached_families()}
    return _per_subject(fams, lambda n: ids(fams[n]))


def section_special_tokens() -> dict:
    """Per family: bos/eos/pad/unk strings and ids, len(tokenizer), ids of 'Hello world' with specials."""
    from llmfound.tokenization import load_tokenizer

    def specials(name: str) -> dict:
        tok = load_tokenizer(name)
        row = {}
        for role in ("bos", "eos", "pad", "unk"):
            row[f"{role}_token"] = getattr(tok, f"{role}_token", None)
            row[f"{role}_id"] = getattr(tok, f"{role}_token_id", None)
        row["len"] = len(tok)
        row["encode('Hello world') with specials"] = tok.encode("Hello world")
        return row

    return _per_subject([f.name for f in _cached_families()], specials)


def section_templates() -> dict:
    """Per family with a template: each conformance case -> ["ok", text] or ["raises", "<Class>: message"]."""
    from llmfound.chat.conformance import conformance_table

    def cases(name: str) -> dict:
        return {case: list(v) for case, v in conformance_table([name])[name].items()}

    return _per_subject([f.name for f in _cached_families(need_template=True)], cases)


def section_wild_templates() -> dict:
    """Per chat template the cached llama-cpp-vocabs asset ships (by file name): each case of
    :data:`llmfound.chat.wild.WILD_CASES` -> ["ok", text] or ["raises", "<Class>: message"] (none when the
    asset is not cached)."""
    from llmfound.chat import wild as W
    from llmfound.assets.cache import is_complete

    if not is_complete(W.ASSET):
        return {}
    return _per_subject(W.template_names(), lambda n: {c: list(W.conform(n, c)) for c in W.WILD_CASES})


def section_model() -> dict:
    """SmolLM2-135M-Instruct: footprint bytes per preset (at load), and greedy bf16 answers (token ids and text)."""
    from llmfound import assets, chat, quantization as Q, streaming
    from llmfound import models

    if not assets.is_complete("smollm2-135m-instruct"):
        return {}
    out: dict = {}
    for preset in ("bf16", "8bit", "nf4-dq"):
        m, tok = models.load_model("smollm2-135m-instruct", preset)
        out[f"footprint {preset}"] = {"bytes": Q.footprint(m).total,
                                      "analytic footprint": Q.expected_footprint(m, preset).total}
        if preset == "bf16":
            for p in GREEDY_PROMPTS:
                r = streaming.stream_generate(m, tok, chat.chat_inputs(tok, chat.conversation(p)),
                                              max_new_tokens=GREEDY_TOKENS)
                out[f"greedy {p!r}"] = {"ids": r.token_ids, "text": r.text}
        del m
    return out


def section_pipelines() -> dict:
    """Outputs of the real-model pipelines: feature-extraction cosines of fixed pairs (4 decimals) and the
    text-generation answer; each only when its model is cached."""
    from llmfound import assets
    from llmfound.pipelines.factory import pipeline

    out: dict = {}
    if assets.is_complete("all-minilm-l6-v2"):
        import torch

        fe = pipeline("feature-extraction")
        pairs = [("A man is eating food.", "A man is eating a meal."),
                 ("A man is eating food.", "The stock market fell today.")]
        cos = []
        for a, b in pairs:
            ea, eb = (torch.tensor(fe(x)).flatten() for x in (a, b))
            cos.append(round(float(torch.nn.functional.cosine_similarity(ea, eb, dim=0)), 4))
        out["feature-extraction"] = {"cosines": cos}
    if assets.is_complete("smollm2-135m-instruct"):
        tg = pipeline("text-generation")
        res = tg([{"role": "user", "content": GREEDY_PROMPTS[0]}], max_new_tokens=GREEDY_TOKENS, do_sample=False)
        out["text-generation"] = {"answer": json.loads(json.dumps(res, default=str))}
    return out


QUALITY_TOKENS = 512
"""Corpus tokens the ``quality`` section scores: one window of 512 (``llmfound.quality.CONTEXT``), the same slice
``specs/test_quality.py`` scores in the default tier and holds to this baseline."""
QUALITY_PRESETS = ("bf16", "8bit", "nf4-dq", "nf4", "fp4")

TOLERANCES: dict[str, dict[str, tuple[str, float]]] = {
    "quality": {"ppl": ("rel", 0.03), "delta_ppl_pct": ("abs", 3.0), "kld_mean": ("rel", 0.10),
                "kld_p99": ("rel", 0.30), "top1_pct": ("abs", 1.5)},
}
"""Section -> behaviour -> ("abs" | "rel", tolerance): numbers that may move with the CPU's kernels or a library's
float rounding without being drift; wide enough for another CPU's kernels, narrow enough for a quantization
fault (the margins, measured: ``docs/quality.md``, "Tolerances"). Everything not listed must match exactly."""


def section_quality() -> dict:
    """SmolLM2-135M-Instruct's accuracy per preset against bf16 on the first :data:`QUALITY_TOKENS` tokens of the
    corpus (:func:`llmfound.quality.quality`): ppl, delta_ppl_pct, kld_mean, kld_p99, top1_pct, rounded.
    Empty when the model or the corpus is not cached."""
    from llmfound import assets
    from llmfound.quality import CORPUS_ASSET, quality

    if not (assets.is_complete("smollm2-135m-instruct") and assets.is_complete(CORPUS_ASSET)):
        return {}
    report = quality(presets=QUALITY_PRESETS, tokens=QUALITY_TOKENS, decode_tokens=0)
    return {r.preset: {"ppl": round(r.ppl, 3), "delta_ppl_pct": round(r.delta_ppl_pct, 2),
                       "kld_mean": round(r.kld_mean, 4), "kld_p99": round(r.kld_p99, 4),
                       "top1_pct": round(r.top1_pct, 2)}
            for r in report.rows}


def within_tolerance(section: str, behaviour: str, old, new) -> bool:
    """True when ``old`` and ``new`` are numbers within :data:`TOLERANCES` for that section and behaviour; never
    for a NaN, an infinity (``inf`` would be within any relative tolerance of anything) or a number beyond
    ``snapshot_format.MAX_MAGNITUDE``."""
    rule = TOLERANCES.get(section, {}).get(behaviour)
    if rule is None or not all(sane_number(v) for v in (old, new)):
        return False
    kind, tol = rule
    return abs(new - old) <= (tol if kind == "abs" else tol * abs(old))


SECTIONS: dict[str, Callable[[], dict]] = {
    "ids": section_ids,
    "special_tokens": section_special_tokens,
    "templates": section_templates,
    "wild_templates": section_wild_templates,
    "model": section_model,
    "pipelines": section_pipelines,
    "quality": section_quality,
}
"""Section name -> function computing it. ``FAST`` ones take seconds; ``model``, ``pipelines`` and ``quality``
load models."""

FAST = ("ids", "special_tokens", "templates", "wild_templates")



def check_sections(names: tuple[str, ...]) -> None:
    """Raise :class:`LlmfoundError` for unknown section names or an empty selection."""
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise LlmfoundError(f"unknown snapshot section(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(SECTIONS)}")
    if not names:
        raise LlmfoundError(f"no snapshot section selected; choose from: {', '.join(SECTIONS)}")
