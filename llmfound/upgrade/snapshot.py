"""The upgrade gate: record what the installed libraries do, then compare another environment against it.

``record()`` captures, for the installed versions: per family the ids of a fixed corpus (llama.cpp's golden
inputs included), the special tokens and encode defaults, renders of the chat conformance conversations,
SmolLM2's footprints per preset and greedy answers to fixed prompts, and pipeline outputs. ``compare()``
recomputes the same and lists every difference as (section, subject, behaviour, old, new): when CI installs a
candidate transformers / tokenizers / torch / bitsandbytes, the diff says exactly which family or behaviour
drifted. A baseline for the pinned versions ships in ``llmfound/upgrade/data/baseline.json``.

File layout (``SCHEMA`` 1)::

    {"schema": 1, "created": "...", "versions": {...},
     "sections": {"<section>": {"<subject (family, preset, prompt...)>": {"<behaviour>": <json value>}}}}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmfound.errors import LlmfoundError, SnapshotError
from llmfound.upgrade.snapshot_format import MAX_BYTES, MAX_DEPTH, describe, parse, problem, sane_number, unmeasured

__all__ = ["SCHEMA", "ERROR", "BASELINE", "CORPUS", "GREEDY_PROMPTS", "GREEDY_TOKENS", "Drift", "section_ids",
           "section_special_tokens", "section_templates", "section_model", "section_pipelines", "section_quality",
           "QUALITY_TOKENS", "QUALITY_PRESETS", "TOLERANCES", "within_tolerance", "SECTIONS", "FAST", "check_sections",
           "check_same_versions", "merge_into", "check_writable", "record", "save", "load", "diff", "compare"]

SCHEMA = 1
BASELINE = Path(__file__).parent / "data" / "baseline.json"
"""The snapshot recorded with the pinned versions of ``pyproject.toml``."""

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


@dataclass
class Drift:
    """One difference: ``section`` (ids, special_tokens, templates, ...), ``subject`` (a family, preset or
    prompt), ``behaviour`` (the key), ``old`` and ``new`` values (``None`` when absent on one side)."""

    section: str
    subject: str
    behaviour: str
    old: Any
    new: Any


# ---------------------------------------------------------------------------------------------- sections


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


# ------------------------------------------------------------------------------------------- record/compare


def check_sections(names: tuple[str, ...]) -> None:
    """Raise :class:`LlmfoundError` for unknown section names or an empty selection."""
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise LlmfoundError(f"unknown snapshot section(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(SECTIONS)}")
    if not names:
        raise LlmfoundError(f"no snapshot section selected; choose from: {', '.join(SECTIONS)}")


def check_writable(path: str | Path) -> Path:
    """Raise a one-line error unless ``path`` can be written (see :func:`llmfound.outputs.check_output_path`).
    Called before the (slow) recording starts."""
    from llmfound.outputs import check_output_path

    return check_output_path(path)


def record(sections: tuple[str, ...] | None = None) -> dict:
    """Compute the snapshot for the installed versions (all sections, or those named)."""
    from llmfound.environment import versions

    names = tuple(SECTIONS) if sections is None else tuple(sections)
    check_sections(names)
    data = {n: SECTIONS[n]() for n in names}
    return {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": versions(), "sections": json.loads(json.dumps(data, ensure_ascii=False))}


def check_same_versions(existing: dict) -> None:
    """Raise :class:`SnapshotError` unless ``existing`` was recorded with this environment's library versions
    (:func:`llmfound.environment.versions`): a baseline is one set of pins, so sections recorded here may only
    join a file recorded with the same ones."""
    from llmfound.environment import versions

    here, there = versions(), existing.get("versions", {})
    changed = sorted(k for k in set(here) | set(there) if here.get(k) != there.get(k))
    if changed:
        raise SnapshotError(f"the file was recorded with other versions ({', '.join(changed)} differ); re-record "
                            f"all of it with `llmfound snapshot record FILE`, or install the file's versions first")


def merge_into(existing: dict, snap: dict) -> dict:
    """``existing`` with the sections of ``snap`` put in (replacing those of the same name, keeping the others):
    how a baseline is re-recorded when a section changes or a new subject (family, case, preset) joins one.
    Raises :class:`SnapshotError` when the two were recorded with different library versions
    (:func:`check_same_versions`)."""
    if existing.get("versions") != snap.get("versions"):
        raise SnapshotError("the file and the new sections were recorded with other versions; re-record all of it")
    return {**existing, "created": snap["created"], "sections": {**existing["sections"], **snap["sections"]}}


def save(snap: dict, path: str | Path) -> None:
    """Write ``snap`` as JSON atomically (:func:`llmfound.outputs.atomic_write`)."""
    from llmfound.outputs import atomic_write

    data = (json.dumps(snap, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
    atomic_write(Path(path), lambda f: f.write(data))


def load(path: str | Path) -> dict:
    """Read a snapshot file, all of it checked before anything is computed from it
    (:func:`llmfound.upgrade.snapshot_format.problem`). Raises :class:`SnapshotError` with one line for a missing file,
    one over ``snapshot_format.MAX_BYTES``, a file that is not JSON or is truncated, a newer schema, a JSON
    document that is not a snapshot, or a damaged one (too deep, a NaN, an infinite or oversized number, a
    value not of its section's kind: ``snapshot_format.KINDS``). The snapshot compare and the gate both read
    baselines through here."""
    p = Path(path)
    if p.is_dir():
        raise SnapshotError(f"{str(p)!r} is a folder, not a snapshot file")
    if not p.is_file():
        raise SnapshotError(f"snapshot file {str(p)!r} does not exist; make one with `llmfound snapshot record FILE`")
    again = "record it again with `llmfound snapshot record`"
    try:
        if p.stat().st_size > MAX_BYTES:
            raise SnapshotError(f"snapshot file {str(p)!r} is {p.stat().st_size:,} bytes, more than a snapshot "
                                f"holds (at most {MAX_BYTES:,}); {again}")
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SnapshotError(f"cannot read snapshot file {str(p)!r}: {e.strerror}") from None
    try:
        snap = parse(text)
    except RecursionError:
        raise SnapshotError(f"snapshot file {str(p)!r} is damaged: it nests too deeply to be a snapshot (at most "
                            f"{MAX_DEPTH} levels); {again}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if e.pos >= len(text.rstrip()) - 1 else "not valid JSON"
        raise SnapshotError(f"snapshot file {str(p)!r} is {what} (line {e.lineno}, column {e.colno}: {e.msg}); "
                            f"{again}") from None
    if not isinstance(snap, dict) or "schema" not in snap or "sections" not in snap:
        raise SnapshotError(f"{str(p)!r} is JSON but not an llmfound snapshot (no 'schema' / 'sections')")
    if not isinstance(snap["schema"], int) or isinstance(snap["schema"], bool) or snap["schema"] < 1:
        raise SnapshotError(f"{str(p)!r} has snapshot schema {describe(snap['schema'])}; expected an integer "
                            f"(this llmfound reads {SCHEMA}); record it again")
    if snap["schema"] > SCHEMA:
        raise SnapshotError(f"{str(p)!r} has snapshot schema {snap['schema']!r}, newer than this llmfound reads "
                            f"({SCHEMA}); upgrade llmfound or record the baseline again")
    damage = problem(snap, ERROR)
    if damage:
        raise SnapshotError(f"{str(p)!r} is damaged: {damage}; {again}")
    snap.setdefault("versions", {})
    return snap


def diff(old: dict, new: dict) -> list[Drift]:
    """Every difference between two snapshots, over the sections present in ``old`` (a section absent from
    ``new`` counts as a change of each of its subjects); numbers within :data:`TOLERANCES` are not drift. A
    value holding a NaN or an infinity is drift on either side, even against the same value."""
    out = []
    for section, subjects in old["sections"].items():
        now = new["sections"].get(section, {})
        for subject in sorted(set(subjects) | set(now)):
            a, b = subjects.get(subject, {}), now.get(subject, {})
            if (ERROR in a) != (ERROR in b):  # a subject that fails on one side: one drift, not one per behaviour
                out.append(Drift(section, subject, ERROR, a.get(ERROR, "computes"), b.get(ERROR, "computes")))
                continue
            for key in sorted(set(a) | set(b)):
                va, vb = a.get(key), b.get(key)
                same = va == vb or within_tolerance(section, key, va, vb)
                if not same or unmeasured(va) or unmeasured(vb):
                    out.append(Drift(section, subject, key, va, vb))
    return out


def compare(path: str | Path, sections: tuple[str, ...] | None = None) -> tuple[dict, dict, list[Drift]]:
    """Load the snapshot at ``path``, recompute the same sections here, return ``(old, new, drifts)``."""
    if sections is not None:
        check_sections(tuple(sections))
    old = load(path)
    names = tuple(n for n in old["sections"] if sections is None or n in sections)
    if not names:
        wanted = f"section {', '.join(sections)}" if sections else "sections"
        raise SnapshotError(f"{str(path)!r} holds no {wanted} (it has: {', '.join(old['sections']) or 'none'}); "
                            f"nothing to compare")
    new = record(names)
    old = dict(old, sections={n: old["sections"][n] for n in names})
    return old, new, diff(old, new)
