"""``llmfound doctor``: pass / fail / skip per capability, for validating a new (GPU) box in minutes.

It complements, not replaces, ``python -m bitsandbytes`` (bitsandbytes' own backend diagnosis) and
``transformers env`` (the environment dump): doctor checks that the things llmfound teaches actually work
here, numerically, and says which ones do not.

Each capability has a failure class; the exit status is 0 when every required capability passed (skips are
fine), else the code of the first failing class in table order (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

from llmfound.environment import accelerator, versions
from llmfound.errors import CAPABILITY_EXIT_CODES, first_line
from llmfound.outputs import check_plot_path
from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["SCHEMA", "EXIT_CODES", "Skip", "CheckResult", "STATUS_LABELS", "progress_line", "Capability", "MATMUL_TOL",
           "check_bnb_import", "check_matmul_4bit", "check_matmul_8bit", "check_synthetic_footprints",
           "check_quality_slice", "check_streaming", "check_tokenizers", "check_templates", "CAPABILITIES", "run",
           "plot"]

SCHEMA = 2
"""Version of the JSON report's layout (``llmfound doctor --json``). 2: a footprint row's analytic bytes are
``analytic`` (1 called them ``bound``)."""

EXIT_CODES = CAPABILITY_EXIT_CODES
"""Exit status per failure class (first failing class in capability order wins; all are in the JSON); the
table lives in :mod:`llmfound.errors` with every other exit status."""


class Skip(Exception):
    """Raised by a check that cannot run here (e.g. no CUDA); the message is the reason."""


@dataclass
class CheckResult:
    """One capability's outcome: ``status`` "pass" | "fail" | "skip", ``detail`` (measured values or the
    reason), ``seconds`` it took, ``klass`` its failure class, ``required`` whether a fail changes the exit."""

    name: str
    klass: str
    status: str
    detail: str
    seconds: float
    required: bool = True
    data: dict = field(default_factory=dict)


STATUS_LABELS = {"pass": "pass", "fail": "FAIL", "skip": "skip"}
"""How each status is printed: four characters, a failure in capitals."""


def progress_line(result: CheckResult) -> str:
    """The live line ``llmfound doctor`` prints (on stderr) as each capability finishes, in fixed columns so
    the names line up: status label (4 characters), seconds right-aligned to 0.1 s, then the name:
    ``"pass     0.3 s  bitsandbytes imports"``."""
    return f"{STATUS_LABELS[result.status]}  {result.seconds:6.1f} s  {result.name}"


@dataclass(frozen=True)
class Capability:
    """A named check: ``fn(device)`` returns ``(detail, data)`` on success, raises :class:`Skip` or fails."""

    name: str
    klass: str
    fn: Callable[[str], tuple[str, dict]]
    required: bool = True


# ------------------------------------------------------------------------------------------------ checks

MATMUL_TOL = {"nf4": 0.12, "int8": 0.02, "kernel": 0.02}
"""Relative Frobenius error limits. ``nf4``: bnb 4-bit output vs the full-precision product on N(0, 1)
weights (NF4's quantization error alone is ~0.09 for Gaussian weights, QLoRA section 3);
``int8``: LLM.int8 output vs full precision (~0.005 typical); ``kernel``: the 4-bit kernel vs the product
with its own dequantized weight (checks the kernel, not the format)."""


def _rel(a, b) -> float:
    import torch

    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise Skip("no CUDA device")
    return device


def check_bnb_import(device: str):
    """bitsandbytes imports (and its version); the other bitsandbytes checks need it."""
    from llmfound.quantization import check_bitsandbytes

    v = check_bitsandbytes()
    return f"bitsandbytes {v}", {"version": v}


def check_matmul_4bit(device: str):
    """NF4 + double quant matmul (x: 8x1024 bf16, W: 512x1024 N(0,1)) vs full precision and vs the product
    with the dequantized weight, within :data:`MATMUL_TOL`. Raises :class:`Skip` for CUDA without a device."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    import torch

    dev = _device(device)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(512, 1024, generator=g).to(dev, torch.bfloat16)
    x = torch.randn(8, 1024, generator=g).to(dev, torch.bfloat16)
    wq, state = F.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    got = bnb.matmul_4bit(x, wq.t(), quant_state=state)
    ref = x.float() @ w.float().t()
    deq = F.dequantize_4bit(wq, state).float()
    e_fmt, e_kernel = _rel(got, ref), _rel(got, x.float() @ deq.t())
    ok = e_fmt <= MATMUL_TOL["nf4"] and e_kernel <= MATMUL_TOL["kernel"]
    detail = (f"NF4+DQ matmul on {dev}: rel. error {e_fmt:.4f} vs full precision (limit {MATMUL_TOL['nf4']}), "
              f"{e_kernel:.4f} vs its dequantized weight (limit {MATMUL_TOL['kernel']})")
    if not ok:
        raise AssertionError(detail)
    return detail, {"rel_error": e_fmt, "kernel_error": e_kernel}


def check_matmul_8bit(device: str):
    """LLM.int8 ``Linear8bitLt`` (1024 -> 512, fp16, threshold 6.0) vs the fp32 product, within
    :data:`MATMUL_TOL`."""
    import bitsandbytes as bnb
    import torch

    dev = _device(device)
    torch.manual_seed(0)
    lin = torch.nn.Linear(1024, 512, bias=False, dtype=torch.float16)
    q = bnb.nn.Linear8bitLt(1024, 512, bias=False, has_fp16_weights=False, threshold=6.0)
    q.weight = bnb.nn.Int8Params(lin.weight.data.clone(), requires_grad=False, has_fp16_weights=False)
    q = q.to(dev)
    x = torch.randn(8, 1024, dtype=torch.float16)
    with torch.no_grad():
        got = q(x.to(dev)).float().cpu()
    ref = x.float() @ lin.weight.float().t()
    e = _rel(got, ref)
    detail = f"LLM.int8 matmul on {dev}: rel. error {e:.4f} vs full precision (limit {MATMUL_TOL['int8']})"
    if e > MATMUL_TOL["int8"]:
        raise AssertionError(detail)
    return detail, {"rel_error": e}


def check_synthetic_footprints(device: str):
    """Synthetic-weight Llama: tiny on CPU, 1.1B (TinyLlama shape) on CUDA; bf16 / 8-bit / nf4-dq, each
    within :data:`~llmfound.quantization.FOOTPRINT_TOLERANCE` (2%) of its analytic footprint
    (:func:`llmfound.synthetic.synthetic_footprints`)."""
    from llmfound.quantization import FOOTPRINT_TOLERANCE
    from llmfound.synthetic import synthetic_footprints

    dev = _device(device)
    size = "1.1b" if dev == "cuda" else "tiny"
    rows = {p: {"measured": r["footprint"].total, "analytic": r["analytic"].total, "peak_load": r["peak_load_bytes"]}
            for p, r in synthetic_footprints(size, dev).items()}
    bad = {p: r for p, r in rows.items() if abs(r["measured"] / r["analytic"] - 1) > FOOTPRINT_TOLERANCE}
    base = rows["bf16"]["measured"]
    detail = f"synthetic {size} Llama on {dev}: " + ", ".join(
        f"{p} {format_bytes(r['measured'])} ({base / r['measured']:.2f}x"
        + (f", load peak {format_bytes(r['peak_load'])}" if r["peak_load"] else "") + ")" for p, r in rows.items()
    ) + f" ({SI_NOTE})"
    if bad:
        raise AssertionError(detail + f"; outside {FOOTPRINT_TOLERANCE:.0%} of the analytic footprint: {sorted(bad)}")
    return detail + f"; all within {FOOTPRINT_TOLERANCE:.0%} of the analytic footprint", {"size": size, "presets": rows}


def check_streaming(device: str):
    """Streamed greedy generation equals plain generate: the real SmolLM2 when cached, else a synthetic model."""
    from llmfound import assets, chat, streaming
    from llmfound import models
    from llmfound.synthetic import synthetic_stream

    dev = _device(device)
    if assets.is_complete("smollm2-135m-instruct"):
        m, tok = models.load_model("smollm2-135m-instruct", "bf16", device_map="auto" if dev == "cuda" else "cpu")
        msgs = chat.conversation("What is the capital of France?")
        inputs = {k: v.to(dev) for k, v in chat.chat_inputs(tok, msgs).items()}
        res = streaming.stream_generate(m, tok, inputs, max_new_tokens=16)
        ok = "Paris" in res.text and res.text == tok.decode(res.token_ids, skip_special_tokens=True)
        detail = (f"SmolLM2 on {dev}: {plural(res.new_tokens, 'token')}, {res.tokens_per_s:.1f} tok/s, "
                  f"answer {res.text!r}")
    else:
        tok, res, _ = synthetic_stream("tiny", dev, max_new_tokens=8)
        ok = res.text == tok.decode(res.token_ids, skip_special_tokens=True) and res.new_tokens == 8
        detail = (f"synthetic 4-bit model on {dev} (SmolLM2 not cached): stream equals decode of "
                  f"{plural(res.new_tokens, 'token')}")
    if not ok:
        raise AssertionError(detail)
    return detail, {"tokens_per_s": res.tokens_per_s}


def check_quality_slice(device: str):
    """On CUDA: SmolLM2 in nf4-dq against bf16 on the first 512 corpus tokens, on the GPU: ΔPPL inside its
    recorded bound (:data:`llmfound.quality.DELTA_PPL_BOUNDS`). Skips without CUDA (``llmfound quality`` gives
    the CPU figures) or when the model or corpus is not cached."""
    from llmfound import assets
    from llmfound.quality import CORPUS_ASSET, DELTA_PPL_BOUNDS, quality

    if _device(device) != "cuda":
        raise Skip("no CUDA device; the CPU figures: `llmfound quality`")
    missing = [n for n in ("smollm2-135m-instruct", CORPUS_ASSET) if not assets.is_complete(n)]
    if missing:
        raise Skip(f"not cached: {', '.join(missing)}; run `llmfound assets fetch {' '.join(missing)}`")
    row = quality(presets=("nf4-dq",), tokens=512, decode_tokens=0, device="cuda").row("nf4-dq")
    bound = DELTA_PPL_BOUNDS["nf4-dq"]
    detail = (f"nf4-dq on cuda, 511 tokens: PPL {row.ppl:.2f} ({row.delta_ppl_pct:+.2f}% vs bf16, bound "
              f"+{bound:.0f}%), mean KLD {row.kld_mean:.4f}, top-1 {row.top1_pct:.1f}%")
    if not row.delta_ppl_pct <= bound:
        raise AssertionError(detail)
    return detail, {"delta_ppl_pct": row.delta_ppl_pct, "kld_mean": row.kld_mean, "top1_pct": row.top1_pct}


def check_tokenizers(device: str):
    """Every cached family tokenizer loads and round-trips 'Hello world' exactly, case included, except for
    what the family declares it does to text (``Family.tokens.normalization``: bert uncased lowercases, so it gives
    'hello world'). Skips when none is cached."""
    from llmfound import families
    from llmfound.tokenization import load_tokenizer, round_trip

    done, missing, bad = [], [], []
    for fam in families.FAMILIES:
        if not fam.is_cached():
            missing.append(fam.name)
            continue
        rt = round_trip(fam.name, "Hello world", tokenizer=load_tokenizer(fam.name))
        if rt.equal:
            done.append(fam.name)
        else:
            bad.append(f"{fam.name}: input 'Hello world': expected {rt.expected!r}, got {rt.decoded!r}")
    if not done and missing:
        raise Skip("no family tokenizer is cached; run `llmfound assets fetch --all`")
    detail = f"{plural(len(done), 'family', 'families')} load and round-trip 'Hello world'"
    if missing:
        detail += f"; not cached: {', '.join(missing)}"
    if bad:
        raise AssertionError(f"round trip failed for {'; '.join(bad)}")
    return detail, {"ok": done, "missing": missing}


def check_templates(device: str):
    """Every cached family with a template renders a single user turn. Skips when none is cached."""
    from llmfound import chat, families

    done, missing, bad = [], [], []
    msgs = [{"role": "user", "content": "Hi"}]
    for fam in families.FAMILIES:
        if fam.template is None:
            continue
        if not fam.is_cached():
            missing.append(fam.name)
            continue
        try:
            text = chat.render(fam.name, msgs, add_generation_prompt=True)
            (done if "Hi" in text else bad).append(fam.name)
        except Exception as e:  # noqa: BLE001 - reported per family
            bad.append(f"{fam.name} ({type(e).__name__}: {e})")
    if not done and missing:
        raise Skip("no family template is cached; run `llmfound assets fetch --all`")
    if bad:
        raise AssertionError(f"templates failed: {'; '.join(bad)}")
    return f"{len(done)} family templates render a user turn", {"ok": done, "missing": missing}


CAPABILITIES: tuple[Capability, ...] = (
    Capability("bitsandbytes imports", "bitsandbytes", check_bnb_import),
    Capability("4-bit NF4 matmul (CPU)", "bitsandbytes", lambda d: check_matmul_4bit("cpu")),
    Capability("8-bit LLM.int8 matmul (CPU)", "bitsandbytes", lambda d: check_matmul_8bit("cpu")),
    Capability("4-bit NF4 matmul (CUDA)", "bitsandbytes", lambda d: check_matmul_4bit("cuda")),
    Capability("8-bit LLM.int8 matmul (CUDA)", "bitsandbytes", lambda d: check_matmul_8bit("cuda")),
    Capability("synthetic model footprints (CPU)", "quantization", lambda d: check_synthetic_footprints("cpu")),
    Capability("synthetic 1.1B footprints (CUDA)", "quantization", lambda d: check_synthetic_footprints("cuda")),
    Capability("quality slice nf4-dq (CUDA)", "quantization", check_quality_slice),
    Capability("streamed generation", "streaming", check_streaming),
    Capability("family tokenizers", "tokenizers", check_tokenizers),
    Capability("chat templates", "templates", check_templates),
)
"""The checks, in order. The device argument is "cuda" when CUDA is available, else "cpu"."""


# ------------------------------------------------------------------------------------------------ report


def run(capabilities: tuple[Capability, ...] | None = None, *,
        on_result: Callable[[CheckResult], None] | None = None, ledger: bool = True) -> dict:
    """Run every capability and return the report (the ``--json`` schema):

    ``{"schema": 1, "versions": {...}, "accelerator": {...} | None, "capabilities": [CheckResult as dict],
    "ledger": [...], "exit_code": int}``. A check that raises :class:`Skip` is "skip"; any other exception
    is "fail" with its one-line message. ``on_result`` is called after each check (for live output).
    ``ledger=False`` leaves the ledger list empty (its probes load tokenizers: seconds)."""
    from llmfound.upgrade.ledger import ledger_states

    acc = accelerator()
    device = "cuda" if acc else "cpu"
    results = []
    for cap in capabilities or CAPABILITIES:
        t0 = time.perf_counter()
        try:
            detail, data = cap.fn(device)
            status = "pass"
        except Skip as s:
            status, detail, data = "skip", str(s), {}
        except Exception as e:  # noqa: BLE001 - a failing capability is data
            status, detail, data = "fail", f"{type(e).__name__}: {first_line(e)}", \
                {"traceback": traceback.format_exc(limit=3)}
        r = CheckResult(cap.name, cap.klass, status, detail, time.perf_counter() - t0, cap.required, data)
        results.append(r)
        if on_result:
            on_result(r)
    code = 0
    for r in results:
        if r.status == "fail" and r.required:
            code = EXIT_CODES[r.klass]
            break
    return {"schema": SCHEMA, "versions": versions(), "accelerator": acc,
            "capabilities": [asdict(r) for r in results], "ledger": ledger_states() if ledger else [],
            "exit_code": code}


def plot(report: dict, path: str) -> None:
    """Bar chart of the synthetic model's footprint per preset (measured vs analytic footprint), as PNG.

    Raises :class:`~llmfound.errors.LlmfoundError` when no footprint check passed (nothing to draw) or
    matplotlib is missing."""
    from llmfound.errors import LlmfoundError

    check_plot_path(path)
    rows = [c for c in report["capabilities"] if c["name"].startswith("synthetic") and c["status"] == "pass"]
    if not rows:
        raise LlmfoundError("no footprint check passed, so there is nothing to plot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LlmfoundError("--plot needs matplotlib: pip install matplotlib") from None
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.6), squeeze=False)
    for ax, c in zip(axes[0], rows):
        presets = c["data"]["presets"]
        names = list(presets)
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [presets[n]["analytic"] / 1e6 for n in names], 0.4, label="analytic footprint")
        ax.bar([x + 0.2 for x in xs], [presets[n]["measured"] / 1e6 for n in names], 0.4, label="measured")
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("MB (10^6 bytes)")
        ax.set_title(f"{c['data']['size']} synthetic Llama ({c['name'].split('(')[-1].rstrip(')')})")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
