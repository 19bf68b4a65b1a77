"""Quantization's accuracy cost: perplexity, KL divergence and top-1 agreement against the bf16 reference.

The definitions are llama.cpp's ``perplexity`` tool's (``tools/perplexity/README.md`` in ggml-org/llama.cpp, and
its ``--kl-divergence`` mode), applied to each preset against the bf16 model on the same tokens:

- **perplexity** PPL = exp(mean negative log-likelihood of the scored tokens), NLL in nats;
- **ΔPPL %** = 100 * (PPL_preset / PPL_bf16 - 1);
- **KL divergence** per token = sum over the vocabulary of p_bf16 * (log p_bf16 - log p_preset), in nats: how far
  the preset's next-token distribution moved from the reference's; reported as the mean and the 99th percentile;
- **top-1 agreement** %: tokens where both models rank the same next token first (llama.cpp's "Same top p").

Scoring follows Hugging Face's "Perplexity of fixed-length models" guide (transformers docs, ``perplexity.md``):
windows of ``context`` tokens that move by ``stride``; each window scores only the tokens no earlier window
scored, so every scored token after the first window sees at least ``context - stride`` tokens of history.
QLoRA (Dettmers et al. 2023, arXiv:2305.14314, section 4) reports NF4 beating FP4 and double quantization
costing nothing measurable; its perplexity evidence (table 2) is a mean over 125M-13B models with NF4 + double
quant against plain FP4, not a same-bytes test (``docs/quality.md``). ``specs/test_quality.py`` checks both at
the same bytes on SmolLM2.

The corpus is the Lee et al. (2005) news corpus (``lee_background.cor``, 300 Australian news articles of natural
English prose), shipped inside the gensim 4.4.0 wheel on PyPI (LGPL-2.1-only; asset ``lee-corpus``, sha256
pinned in :mod:`llmfound.assets.manifest`). Nothing in llmfound is tuned on it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from llmfound.errors import LlmfoundError
from llmfound.outputs import check_plot_path

__all__ = ["CORPUS_ASSET", "CORPUS_FILE", "HELD_OUT_FILE", "CONTEXT", "STRIDE", "PRESETS", "DELTA_PPL_BOUNDS",
           "corpus_text", "windows", "TokenScores", "score", "PresetQuality", "QualityReport", "summarize", "quality",
           "check_settings", "check_memory", "plot", "SCORE_ROWS", "comparison_bytes"]

CORPUS_ASSET = "lee-corpus"
CORPUS_FILE = "lee_background.cor"
"""The scored text: 360,082 bytes of UTF-8 prose, 75,680 SmolLM2 tokens."""
HELD_OUT_FILE = "lee.cor"
"""50 more articles of the same corpus (not valid UTF-8: one Latin-1 pound sign), kept for a later held-out check."""
CONTEXT = 512
"""Tokens per scoring window (SmolLM2-135M takes 8,192; 512 keeps the CPU run short)."""
STRIDE = 256
"""Tokens a window moves by: each scored token (after the first window) sees at least 256 tokens of history."""
PRESETS = ("bf16", "8bit", "nf4-dq", "nf4", "fp4")
"""Presets ``quality`` scores by default (see :data:`llmfound.quantization.PRESETS`); bf16 is the reference."""
DELTA_PPL_BOUNDS = {"8bit": 5.0, "nf4-dq": 40.0, "nf4": 40.0, "fp4": 70.0}
"""Coarse upper bounds (%) of each preset's ΔPPL on SmolLM2-135M-Instruct, set above the measurements they bound
(``docs/quality.md``): what any device must stay under (the doctor's CUDA check, the whole-corpus slow spec). The
tight check is the snapshot's ``quality`` section against the shipped baseline (``sections.TOLERANCES``). The
bf16 reference is itself dequantized from a Q4_1 GGUF, so these bound a second quantization stacked on Q4_1."""


def corpus_text(file: str = CORPUS_FILE) -> str:
    """The corpus file's text (fetched into the cache on first use). Raises :class:`AssetMissingError` offline
    when it is not cached, :class:`LlmfoundError` when the file is not UTF-8 (``lee.cor`` is not)."""
    from llmfound.assets import ensure

    data = (ensure(CORPUS_ASSET) / file).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LlmfoundError(f"corpus file {file} is not UTF-8 ({e.reason} at byte {e.start}); score "
                            f"{CORPUS_FILE} instead") from None


def windows(n_tokens: int, context: int = CONTEXT, stride: int = STRIDE) -> list[tuple[int, int, int]]:
    """The scoring windows over ``n_tokens`` tokens: ``[(begin, end, first_scored), ...]`` (token indices,
    ``end`` exclusive). Window ``i`` covers ``[begin, end)`` with ``end - begin <= context`` and scores the
    targets ``first_scored .. end - 1`` (token ``t`` is predicted from tokens ``begin .. t - 1``); every
    token but the first is scored exactly once. A window starts at most one token before its first scored
    token (``stride == context``: non-overlapping windows that each keep one token of history).
    Raises :class:`LlmfoundError` when ``stride`` is not in
    ``1..context`` or there are fewer than 2 tokens."""
    if not 0 < stride <= context:
        raise LlmfoundError(f"the stride must be between 1 and the context ({context}) tokens, got {stride}")
    if n_tokens < 2:
        raise LlmfoundError(f"scoring needs at least 2 tokens, got {n_tokens}")
    out, prev_end, begin = [], 1, 0
    while prev_end < n_tokens:
        start = min(begin, prev_end - 1)  # the first scored token needs one token before it in its window
        end = min(start + context, n_tokens)
        out.append((start, end, prev_end))
        prev_end = end
        begin += stride
    return out


@dataclass
class TokenScores:
    """Per scored token, for one preset: ``nll`` (nats), ``kld`` (nats, against the reference), ``top1_same``
    (bool), all of length ``tokens``; ``forward_s``: seconds spent in the model's forward passes."""

    nll: list[float] = field(default_factory=list)
    kld: list[float] = field(default_factory=list)
    top1_same: list[bool] = field(default_factory=list)
    forward_s: float = 0.0


SCORE_ROWS = 128
"""Scored tokens compared at a time: each preset's log-probabilities exist for this many tokens at once."""


def _window_logits(model, x, begin: int, first: int, end: int):
    """Logits ``[end - first, vocab]`` (model dtype, on the CPU) predicting tokens ``first .. end - 1`` of the
    window ``x = ids[begin:end]``."""
    import torch

    dev = next(model.parameters()).device
    with torch.inference_mode():
        return model(x.to(dev)).logits[0, first - begin - 1:end - begin - 1].cpu()


def score(models: dict, ids: list[int], *, context: int = CONTEXT, stride: int = STRIDE,
          on_window: Callable[[int, int], None] | None = None) -> dict[str, TokenScores]:
    """Score ``ids`` (token ids, a list of ints) with every model of ``models`` (preset -> causal LM; the first
    one is the reference), window by window in lockstep. Returns preset -> :class:`TokenScores` (``len(ids) - 1``
    tokens each; the reference's KLD is 0 and its agreement 100%). ``on_window(done, total)`` is called after
    each window.

    Streamed: per window only the reference's log-probabilities (4 bytes x vocabulary per scored token) and one
    other preset's logits are held; that preset is compared :data:`SCORE_ROWS` tokens at a time, so the memory
    does not grow with the number of presets (:func:`comparison_bytes` estimates it)."""
    import torch

    out = {name: TokenScores() for name in models}
    spans = windows(len(ids), context, stride)
    for i, (begin, end, first) in enumerate(spans):
        x = torch.tensor([ids[begin:end]])
        targets = torch.tensor(ids[first:end])
        ref = ref_top1 = None
        for name, model in models.items():
            t0 = time.perf_counter()
            logits = _window_logits(model, x, begin, first, end)
            out[name].forward_s += time.perf_counter() - t0
            s = out[name]
            if ref is None:  # the reference: kept for the window, compared against itself
                ref = torch.empty(logits.shape, dtype=torch.float32)
                for a in range(0, len(targets), SCORE_ROWS):
                    ref[a:a + SCORE_ROWS] = torch.log_softmax(logits[a:a + SCORE_ROWS].float(), dim=-1)
                del logits
                ref_top1 = ref.argmax(-1)
                s.nll += (-ref.gather(-1, targets[:, None])[:, 0]).tolist()
                s.kld += [0.0] * len(targets)
                s.top1_same += [True] * len(targets)
                continue
            for a in range(0, len(targets), SCORE_ROWS):
                b = a + SCORE_ROWS
                lp = torch.log_softmax(logits[a:b].float(), dim=-1)
                r = ref[a:b]
                s.nll += (-lp.gather(-1, targets[a:b, None])[:, 0]).tolist()
                s.kld += (r.exp() * (r - lp)).sum(-1).clamp_min(0).tolist()
                s.top1_same += (lp.argmax(-1) == ref_top1[a:b]).tolist()
            del logits
        if on_window:
            on_window(i + 1, len(spans))
    return out


def comparison_bytes(context: int, vocab: int, presets: tuple[str, ...] = ()) -> int:
    """Bytes :func:`score` needs beyond the models' weights for one window of ``context`` tokens over a
    ``vocab``-sized vocabulary, an upper estimate: the reference's float32 log-probabilities, one preset's logits
    and the forward pass's activations, ``10 * vocab`` bytes per token, plus ``8 * vocab`` per token when
    ``presets`` include 8bit (LLM.int8's CPU forward makes large temporaries). Calibrated on measured peaks
    (``docs/quality.md``, "Memory")."""
    per_token = 10 * vocab + (8 * vocab if "8bit" in presets else 0)
    return per_token * context


@dataclass
class PresetQuality:
    """One preset's row. ``ppl`` (perplexity), ``delta_ppl_pct`` (% against bf16), ``kld_mean`` and ``kld_p99``
    (nats), ``top1_pct`` (%), ``tokens`` (scored), ``footprint_bytes`` (:func:`llmfound.quantization.footprint`),
    ``prefill_tok_s`` (scored tokens per second of forward passes), ``decode_tok_s`` (greedy tokens per second,
    None when not measured), ``load_s`` (seconds to load)."""

    preset: str
    ppl: float
    delta_ppl_pct: float
    kld_mean: float
    kld_p99: float
    top1_pct: float
    tokens: int
    footprint_bytes: int
    prefill_tok_s: float
    decode_tok_s: float | None
    load_s: float


@dataclass
class QualityReport:
    """The whole measurement: ``model`` (asset name or folder), ``corpus`` (file), ``context`` / ``stride``
    (tokens), ``tokens`` (corpus tokens read), ``device``, ``rows`` (one :class:`PresetQuality` per preset,
    the bf16 reference first). ``as_dict()`` is the ``--json`` layout."""

    model: str
    corpus: str
    context: int
    stride: int
    tokens: int
    device: str
    rows: list[PresetQuality]

    def as_dict(self) -> dict:
        """Plain JSON-serializable dict (rows as dicts)."""
        return asdict(self)

    def row(self, preset: str) -> PresetQuality:
        """The row of ``preset`` (a canonical preset name). Raises :class:`UnknownNameError`."""
        from llmfound.errors import get_by_name

        return get_by_name(self.rows, preset, "preset in this report", names=lambda r: (r.preset,))


def summarize(preset: str, s: TokenScores, ref_ppl: float | None = None) -> dict:
    """Perplexity, ΔPPL %, mean / p99 KLD, top-1 % and prefill tok/s from one preset's :class:`TokenScores`
    (``ref_ppl``: the reference's perplexity; None for the reference itself)."""
    import math

    import torch

    n = len(s.nll)
    ppl = math.exp(sum(s.nll) / n)
    kld = torch.tensor(s.kld, dtype=torch.float64)
    return {"preset": preset, "ppl": ppl, "delta_ppl_pct": 0.0 if ref_ppl is None else 100 * (ppl / ref_ppl - 1),
            "kld_mean": float(kld.mean()), "kld_p99": float(torch.quantile(kld, 0.99)),
            "top1_pct": 100 * sum(s.top1_same) / n, "tokens": n,
            "prefill_tok_s": n / s.forward_s if s.forward_s else 0.0}


def _decode_speed(model, tokenizer, tokens: int) -> float:
    from llmfound.chat.ids import chat_inputs
    from llmfound.chat.messages import conversation
    from llmfound.streaming import stream_generate

    dev = next(model.parameters()).device
    inputs = {k: v.to(dev) for k, v in chat_inputs(tokenizer, conversation("What is the capital of France?")).items()}
    stream_generate(model, tokenizer, inputs, max_new_tokens=2, min_new_tokens=2)  # warm-up
    r = stream_generate(model, tokenizer, inputs, max_new_tokens=tokens, min_new_tokens=tokens)
    return r.tokens_per_s


def check_settings(tokens: int, context: int, stride: int, decode_tokens: int = 0) -> None:
    """Raise one :class:`LlmfoundError` line (named by the CLI's options) for settings no corpus or model can
    satisfy: ``tokens`` / ``context`` below 2, ``stride`` below 1, ``decode_tokens`` below 0, a ``stride`` above
    the ``context`` (windows would skip tokens), ``tokens`` below the ``context``. Cheap: :func:`quality` calls it
    before loading anything."""
    for name, value, low in (("--tokens", tokens, 2), ("--context", context, 2), ("--stride", stride, 1),
                             ("--decode-tokens", decode_tokens, 0)):
        if value < low:
            raise LlmfoundError(f"{name} must be at least {low}, got {value}")
    if stride > context:
        raise LlmfoundError(f"--stride {stride} is above --context {context}: windows would skip tokens")
    if tokens < context:
        raise LlmfoundError(f"--tokens {tokens} is below --context {context}: a window needs {context} tokens")


def check_memory(*, context: int, vocab: int, presets: tuple[str, ...] = (), weights: int = 0,
                 available: int | None = None) -> None:
    """Refuse, in one :class:`LlmfoundError` line with the estimate, a comparison of ``presets`` over
    ``context``-token windows of a ``vocab``-sized vocabulary (:func:`comparison_bytes`, plus ``weights`` bytes of
    presets still to load) that needs more than the memory ``available`` (bytes; default
    :func:`llmfound.memory.available_bytes`; no check where the system does not say)."""
    from llmfound.memory import available_bytes

    available = available_bytes() if available is None else available
    need = comparison_bytes(context, vocab, presets) + weights
    if available is not None and need > available:
        per_1000 = comparison_bytes(1000, vocab, presets)
        raise LlmfoundError(f"--context {context} needs about {need / 1e9:.1f} GB (the comparison and the presets' "
                            f"weights), and {available / 1e9:.1f} GB is available; lower --context (each 1,000 "
                            f"tokens cost about {per_1000 / 1e9:.1f} GB) or score fewer presets")


def quality(model: str = "smollm2-135m-instruct", presets: tuple[str, ...] = PRESETS, *, tokens: int = 4096,
            context: int = CONTEXT, stride: int = STRIDE, decode_tokens: int = 16, device: str = "cpu",
            on_progress: Callable[[str, int, int], None] | None = None) -> QualityReport:
    """Load ``model`` in bf16 and in each of ``presets``, score the first ``tokens`` tokens of the corpus with
    all of them (:func:`score`), and time ``decode_tokens`` greedy tokens each (0: skip). bf16 is always the
    reference, scored first. ``device``: "cpu" or "cuda" (``device_map``). ``on_progress(stage, done, total)``
    reports loading ("load") and scoring ("score").

    Raises :class:`UnknownNameError` for an unknown preset, :class:`LlmfoundError` for settings
    :func:`check_settings` refuses, a ``context`` above the model's positions or ``tokens`` above the corpus,
    :class:`AssetMissingError` when the model or corpus is not cached offline, :class:`LlmfoundError` when the
    comparison would not fit in the memory available (:func:`check_memory`).
    Memory: every preset's weights are held at once; beyond them the comparison holds one window's worth of
    two presets' distributions (:func:`comparison_bytes`), whatever the number of presets."""
    from llmfound import quantization as Q
    from llmfound.models import load_model

    wanted = ["bf16"] + [p for p in dict.fromkeys(Q.preset_name(p) for p in presets) if p != "bf16"]
    check_settings(tokens, context, stride, decode_tokens)
    text = corpus_text()
    models, load_s, footprints, tok, ids = {}, {}, {}, None, []
    for i, p in enumerate(wanted):
        t0 = time.perf_counter()
        models[p], t = load_model(model, p, device_map="auto" if device == "cuda" else "cpu")
        load_s[p] = time.perf_counter() - t0
        footprints[p] = Q.footprint(models[p]).total
        if tok is None:  # bf16 comes first: check the corpus and positions before the slower quantized loads
            positions = getattr(models[p].config, "max_position_embeddings", None)
            if positions and context > positions:
                raise LlmfoundError(f"--context {context} is above the model's {positions} positions; ask for at "
                                    f"most {positions}")
            check_memory(context=min(context, tokens), vocab=models[p].config.vocab_size, presets=tuple(wanted),
                         weights=footprints[p] * (len(wanted) - 1))
            tok, ids = t, t.encode(text, add_special_tokens=False)
            if tokens > len(ids):
                raise LlmfoundError(f"--tokens {tokens} is above the corpus ({len(ids):,} tokens of {CORPUS_FILE} "
                                    f"with this tokenizer); ask for at most {len(ids)}")
        if on_progress:
            on_progress("load", i + 1, len(wanted))
    scores = score(models, ids[:tokens], context=context, stride=stride,
                   on_window=(lambda d, n: on_progress("score", d, n)) if on_progress else None)
    ref = summarize("bf16", scores["bf16"])
    rows = []
    for p in wanted:
        s = ref if p == "bf16" else summarize(p, scores[p], ref["ppl"])
        speed = _decode_speed(models[p], tok, decode_tokens) if decode_tokens else None
        rows.append(PresetQuality(**s, footprint_bytes=footprints[p], decode_tok_s=speed, load_s=load_s[p]))
    return QualityReport(model=model, corpus=CORPUS_FILE, context=context, stride=stride, tokens=tokens,
                         device=device, rows=rows)


def plot(report: QualityReport, path: str) -> None:
    """The trade-off in one picture, as PNG: footprint (MB, 10^6 bytes) against ΔPPL % per preset, each point
    labelled. Written atomically (:func:`llmfound.outputs.atomic_write`). Raises :class:`LlmfoundError` when
    matplotlib is missing or the path is not writable."""
    check_plot_path(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LlmfoundError("--plot needs matplotlib: pip install matplotlib") from None
    from llmfound.outputs import atomic_write

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(report.rows):  # labels alternate above / below: presets of equal size sit side by side
        ax.scatter(r.footprint_bytes / 1e6, r.delta_ppl_pct)
        ax.annotate(r.preset, (r.footprint_bytes / 1e6, r.delta_ppl_pct), textcoords="offset points",
                    xytext=(5, 5 if i % 2 == 0 else -14))
    ax.set_xlabel("footprint, MB (10^6 bytes)")
    ax.set_ylabel("perplexity increase over bf16, %")
    ax.set_title(f"{report.model}: {report.tokens:,} tokens of {report.corpus}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    except OSError as e:
        raise LlmfoundError(f"could not write the chart to {path!r} ({e.strerror or e}); pick a writable "
                            f"folder") from None
    finally:
        plt.close(fig)
