"""``llmfound doctor``: pass / fail / skip per capability, for validating a new (GPU) box in minutes.

It complements, not replaces, ``python -m bitsandbytes`` (bitsandbytes' own backend diagnosis) and
``transformers env`` (the environment dump): doctor checks that the things llmfound teaches actually work
here, numerically, and says which ones do not.

Each capability has a failure class; the exit status is 0 when every required capability passed (skips are
fine), else the code of the first failing class in table order (``errors.CAPABILITY_EXIT_CODES``). A speed row slower
than the reference for this device model by more than its band (:data:`SPEED_REFERENCE`) is a **warn**: its
own exit status, ``errors.DOCTOR_WARN_EXIT_CODE``, when nothing failed.

Levels, like DCGM's diagnostics: level 1 (the default, seconds) runs the correctness checks, the box's
ceilings (copy bandwidth, bf16 matmul) and eager decode per preset at batch 1 and 8; level 2 (minutes) adds
batch 32 and the static-cache path (transformers compiles the forward on CUDA).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Callable

from llmfound.environment import accelerator, versions
from llmfound.errors import CAPABILITY_EXIT_CODES, DOCTOR_WARN_EXIT_CODE, LlmfoundError, NoCudaError, first_line
from llmfound.outputs import check_plot_path
from llmfound.units import SI_NOTE, format_bytes, plural

__all__ = ["SCHEMA", "LEVELS", "Skip", "CheckResult", "STATUS_LABELS",
           "progress_line", "Capability", "MATMUL_TOL", "check_bnb_import", "check_matmul_4bit", "check_matmul_8bit",
           "check_synthetic_footprints", "check_quality_slice", "check_streaming", "check_tokenizers",
           "check_templates", "SPEED_REFERENCE", "CEILING_SIZES", "device_model", "speed_reference",
           "check_copy_bandwidth", "check_matmul_throughput", "decode_models", "check_decode", "check_llama_cpp",
           "check_static_cache", "CAPABILITIES", "run", "plot"]

SCHEMA = 3
"""Version of the JSON report's layout (``llmfound doctor --json``). 2: a footprint row's analytic bytes are
``analytic`` (1 called them ``bound``). 3: ``level``, ``device`` and ``device_model`` keys; status "warn"; the
speed rows."""


LEVELS = (1, 2)
"""``--level`` choices: 1 ceilings + eager decode at batch 1 and 8 (seconds); 2 adds batch 32 and the static
cache (minutes)."""


class Skip(Exception):
    """Raised by a check that cannot run here (e.g. no CUDA); the message is the reason."""


@dataclass
class CheckResult:
    """One capability's outcome: ``status`` "pass" | "warn" | "fail" | "skip", ``detail`` (measured values or the
    reason), ``seconds`` it took, ``klass`` its failure class, ``required`` whether a fail changes the exit."""

    name: str
    klass: str
    status: str
    detail: str
    seconds: float
    required: bool = True
    data: dict = field(default_factory=dict)


STATUS_LABELS = {"pass": "pass", "warn": "warn", "fail": "FAIL", "skip": "skip"}
"""How each status is printed: four characters, a failure in capitals."""


def progress_line(result: CheckResult) -> str:
    """The live line ``llmfound doctor`` prints (on stderr) as each capability finishes, in fixed columns so
    the names line up: status label (4 characters), seconds right-aligned to 0.1 s, then the name:
    ``"pass     0.3 s  bitsandbytes imports"``."""
    return f"{STATUS_LABELS[result.status]}  {result.seconds:6.1f} s  {result.name}"


@dataclass(frozen=True)
class Capability:
    """A named check: ``fn(device)`` returns ``(detail, data)`` on success, raises :class:`Skip` or fails; a
    ``data["warn"]`` list of reasons makes it "warn". ``level``: the lowest ``--level`` that runs it."""

    name: str
    klass: str
    fn: Callable[[str], tuple[str, dict]]
    required: bool = True
    level: int = 1


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


# ------------------------------------------------------------------------------------------------ speed

SPEED_REFERENCE: dict = json.loads((Path(__file__).parent / "data" / "speed_reference.json").read_text("utf-8"))
"""The reference per device model (``llmfound/upgrade/data/speed_reference.json``): ``{"band": float,
"devices": {device model: {"source", "date", "workload", "band" (optional: the device's own), "copy_bytes_per_s",
"bf16_matmul_flop_per_s", "decode_tokens_per_s": {"preset/batch": tok/s}}}}``. A measured ceiling or decode
speed below ``reference / band`` warns; each device's ``source`` says where its numbers come from."""

_RUN: dict = {}
"""What the current :func:`run` was asked for (``level``, ``batches``) and what its speed checks share (the
measured bandwidth, the loaded models); emptied when the run ends."""


def device_model(device: str) -> str:
    """The key of :data:`SPEED_REFERENCE` for this machine: the CUDA device's name (``"NVIDIA H200"``) on
    ``"cuda"``, else the CPU's ``model name`` from /proc/cpuinfo (``platform.processor()`` elsewhere) and the
    CPUs this process may use: ``"AMD EPYC (2 CPUs)"``."""
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name or platform.processor() or 'unknown CPU'} ({cpus} CPUs)"


def speed_reference(device: str) -> dict | None:
    """This device model's entry in :data:`SPEED_REFERENCE`, or None when the table has none (no warn then)."""
    return SPEED_REFERENCE["devices"].get(device_model(device))


def _band(ref: dict | None) -> float:
    """The device's own ``band`` when its entry has one (a shared machine's load moves its figures more), else
    the table's."""
    return (ref or {}).get("band") or SPEED_REFERENCE["band"]


def _below(measured: float, key: str, ref: dict | None, unit: float, label: str) -> list[str]:
    """The warn reason when ``measured`` is below the reference's ``key`` divided by the band, else []."""
    want = (ref or {}).get(key)
    band = _band(ref)
    if want is None or measured >= want / band:
        return []
    return [f"{label} {measured / unit:,.1f} is {want / measured:.2f}x below the reference {want / unit:,.1f} "
            f"({ref['date']}; band {band}x)"]


@contextlib.contextmanager
def _threads(device: str):
    """On the CPU, torch's thread count for the speed checks: chosen once per run by
    :func:`llmfound.streaming.choose_threads` (a core others keep busy is left out: on a shared 2-core box, two
    threads decode several times slower than one) and restored afterwards. Nothing on CUDA."""
    import torch

    if device.startswith("cuda"):
        yield
        return
    if "threads" not in _RUN:
        from llmfound.streaming import choose_threads

        c = choose_threads()
        _RUN["threads"] = {"threads": c.threads, "cores": c.cores, "busy_cores": round(c.busy, 2)}
    before = torch.get_num_threads()
    torch.set_num_threads(_RUN["threads"]["threads"])
    try:
        yield
    finally:
        torch.set_num_threads(before)


CEILING_SIZES = {"cpu": {"nbytes": 64 << 20, "copies": 5, "n": 1024, "products": 3},
                 "cuda": {"nbytes": 1 << 30, "copies": 10, "n": 8192, "products": 10}}
"""How big the ceiling measurements are, per device kind: the copied buffer (bytes) and copies per
measurement, the matmul's ``n`` (``n x n`` bf16 matrices) and products per measurement; each is measured 3
times."""


def _ceiling_sizes(device: str) -> dict:
    return CEILING_SIZES["cuda" if device.startswith("cuda") else "cpu"]


def _bandwidth(device: str) -> dict:
    if "bandwidth" not in _RUN:
        from llmfound.speed import copy_bandwidth, spread

        z = _ceiling_sizes(device)
        with _threads(device):
            _RUN["bandwidth"] = spread([copy_bandwidth(device, nbytes=z["nbytes"], repeats=z["copies"])
                                        for _ in range(3)])
    return _RUN["bandwidth"]


def check_copy_bandwidth(device: str):
    """Memory copy bandwidth of ``device`` (:func:`llmfound.speed.copy_bandwidth`, read + write counted): 3
    measurements of 5 copies of 64 MiB (CPU) or 10 of 1 GiB (CUDA); the median, its spread, and a warn when it is
    below :data:`SPEED_REFERENCE` for this device model by more than the band. Bytes per second in ``data``."""
    dev = _device(device)
    bw = _bandwidth(dev)
    ref = speed_reference(dev)
    z = _ceiling_sizes(dev)
    detail = (f"{bw['median'] / 1e9:,.1f} GB/s on {dev} (read + write counted; {z['copies']} copies of "
              f"{format_bytes(z['nbytes'])}, 3 times, spread {bw['spread']:.0%})")
    warn = _below(bw["median"], "copy_bytes_per_s", ref, 1e9, "copy GB/s")
    return detail, {"bytes_per_s": bw, "reference": ref and ref.get("copy_bytes_per_s"), "warn": warn,
                    "threads": _RUN.get("threads")}


def check_matmul_throughput(device: str):
    """bf16 dense matmul throughput of ``device`` (:func:`llmfound.speed.matmul_throughput`): 1024^3 x 3 on the
    CPU (GFLOP/s), 8192^3 x 10 on CUDA (TFLOP/s), 3 times; median, spread, warn as for the copy bandwidth.
    FLOP per second in ``data``."""
    from llmfound.speed import matmul_throughput, spread

    dev = _device(device)
    z = _ceiling_sizes(dev)
    with _threads(dev):
        mm = spread([matmul_throughput(dev, n=z["n"], repeats=z["products"]) for _ in range(3)])
    unit, name = (1e12, "TFLOP/s") if dev.startswith("cuda") else (1e9, "GFLOP/s")
    detail = (f"{mm['median'] / unit:,.1f} {name} on {dev} (bf16, {z['n']}^3 x {z['products']}, 3 times, spread "
              f"{mm['spread']:.0%})")
    ref = speed_reference(dev)
    warn = _below(mm["median"], "bf16_matmul_flop_per_s", ref, unit, f"matmul {name}")
    return detail, {"flop_per_s": mm, "unit": name, "reference": ref and ref.get("bf16_matmul_flop_per_s"),
                    "warn": warn, "threads": _RUN.get("threads")}


def decode_models(device: str) -> tuple[str, dict]:
    """``(workload, {preset: (model, analytic footprint bytes)})`` for the decode rows, loaded once per run: the
    real SmolLM2-135M on the CPU, the synthetic-weight 1.1B Llama on CUDA (speed does not depend on the weight
    values). Raises :class:`Skip` on the CPU when SmolLM2 is not cached."""
    if "models" in _RUN:
        return _RUN["models"]
    import tempfile

    from llmfound import assets
    from llmfound.models import load_model
    from llmfound.quantization import expected_footprint
    from llmfound.synthetic import save_synthetic_model, synthetic_llama_config

    def load_presets(source: str, device_map: str) -> dict:
        models = {}
        for p in ("bf16", "8bit", "nf4-dq"):
            t0 = time.perf_counter()
            m, _ = load_model(source, p, device_map=device_map, tokenizer=False)
            models[p] = (m, expected_footprint(m, p).total)
            _RUN.setdefault("load_s", {})[p] = time.perf_counter() - t0
        return models

    if device.startswith("cuda"):
        with tempfile.TemporaryDirectory() as tmp:
            save_synthetic_model(synthetic_llama_config("1.1b"), tmp, device=device)
            models = load_presets(tmp, "auto")
        workload = "synthetic-weight 1.1B Llama (TinyLlama shape)"
    else:
        if not assets.is_complete("smollm2-135m-instruct"):
            raise Skip("SmolLM2 is not cached; run `llmfound assets fetch smollm2-135m-instruct`")
        models = load_presets("smollm2-135m-instruct", "cpu")
        workload = "SmolLM2-135M-Instruct"
    _RUN["models"] = (workload, models)
    return _RUN["models"]


def check_decode(device: str):
    """Eager greedy decode per preset (bf16, 8bit, nf4-dq) at batch 1 and 8 (level 2: and 32; ``--batches``
    overrides): ms per step, tok/s, bytes read per step (the analytic footprint less the embedding rows a step
    does not read), the roofline those bytes give at the measured copy bandwidth, the fraction reached, and on
    CUDA the share of the call the device is busy (:func:`llmfound.speed.decode_rows`: one warm-up call per
    preset, then 2 interleaved rounds; 8-token prompts, 5 new tokens). ``data["load_s"]``: seconds each preset
    took to load. Warns for a tok/s below the reference."""
    from llmfound.speed import decode_rows

    dev = _device(device)
    batches = _RUN.get("batches") or ((1, 8, 32) if _RUN.get("level", 1) >= 2 else (1, 8))
    bw = _bandwidth(dev)["median"]
    workload, models = decode_models(dev)
    with _threads(dev):
        rows = decode_rows(models, batches=batches, bandwidth=bw, rounds=2, prompt_tokens=8, new_tokens=5)
    threads = _RUN.get("threads")
    ref = speed_reference(dev)
    warn = []
    for b, by_preset in rows.items():
        for p, r in by_preset.items():
            want = ((ref or {}).get("decode_tokens_per_s") or {}).get(f"{p}/{b}")
            r["reference_tokens_per_s"] = want
            if want and r["tokens_per_s"] < want / _band(ref):
                warn.append(f"{p} batch {b}: {r['tokens_per_s']:,.1f} tok/s is {want / r['tokens_per_s']:.2f}x below "
                            f"the reference {want:,.1f} ({ref['date']}; band {_band(ref)}x)")
    one = rows[str(batches[0])]
    detail = (f"{workload} on {dev}, batch {batches[0]}: " + ", ".join(
        f"{p} {r['tokens_per_s']:,.1f} tok/s ({r['roofline_fraction']:.1%} of its roofline)" for p, r in one.items())
        + f"; batches {', '.join(map(str, batches))}; bandwidth {bw / 1e9:,.1f} GB/s"
        + ("" if threads is None else f"; {plural(threads['threads'], 'torch thread')} ({threads['busy_cores']} of "
                                      f"{threads['cores']} cores busy with other work)"))
    return detail, {"workload": workload, "bandwidth": bw, "rows": rows, "threads": threads,
                    "load_s": _RUN.get("load_s", {}), "warn": warn}


def check_llama_cpp(device: str):
    """llama.cpp beside the PyTorch rows on the CPU: SmolLM2's Q4_1 GGUF, one warm-up, then 16 tokens not
    streamed. Skips on CUDA, without ``llama_cpp`` (llama-cpp-python) or without the GGUF in the cache."""
    from llmfound import assets

    if device.startswith("cuda"):
        raise Skip("llama.cpp runs beside the CPU rows only")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise Skip("llama_cpp not importable (pip install llama-cpp-python builds it; benchmarks/generation.py "
                   "has the measured comparison)") from None
    if not assets.is_complete("smollm2-135m-instruct-gguf"):
        raise Skip("the GGUF is not cached; run `llmfound assets fetch smollm2-135m-instruct-gguf`")
    import torch

    gguf = assets.ensure("smollm2-135m-instruct-gguf") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with _threads(device):
        n_threads = torch.get_num_threads()
    llm = Llama(model_path=str(gguf), n_threads=n_threads, n_ctx=256, verbose=False)
    prompt = "The capital of France is"
    llm(prompt, max_tokens=4, temperature=0.0)
    t0 = time.perf_counter()
    llm(prompt, max_tokens=1, temperature=0.0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = llm(prompt, max_tokens=16, temperature=0.0)
    total = time.perf_counter() - t0
    n = r["usage"]["completion_tokens"]
    tps = (n - 1) / (total - first) if n > 1 and total > first else 0.0
    return (f"llama.cpp Q4_1 GGUF, batch 1: {tps:,.1f} tok/s ({n} tokens, not streamed)",
            {"tokens_per_s": tps, "gguf_bytes": gguf.stat().st_size})


def check_static_cache(device: str):
    """Level 2: bf16 decode at batch 1 with ``cache_implementation="static"`` (on CUDA transformers compiles the
    forward): the first call's seconds (the compile's cost) and the steady ms per step after it, 2 rounds,
    against the eager row of :func:`check_decode` when it ran."""
    from llmfound.speed import roofline_tokens_per_s, spread, time_decode, weight_bytes_per_step

    dev = _device(device)
    m, fp = decode_models(dev)[1]["bf16"]
    with _threads(dev):
        first = time_decode(m, batch=1, prompt_tokens=16, new_tokens=6, cache_implementation="static")
        steps = spread([time_decode(m, batch=1, prompt_tokens=16, new_tokens=6,
                                    cache_implementation="static").step_s for _ in range(2)])
    roof = roofline_tokens_per_s(weight_bytes_per_step(m, fp, 1), _bandwidth(dev)["median"], 1)
    tps = 1 / steps["median"]
    detail = (f"bf16 batch 1, static cache: {tps:,.1f} tok/s ({tps / roof:.1%} of its roofline) after a "
              f"{first.wall_s:,.1f} s first call")
    return detail, {"first_call_s": first.wall_s, "step_s": steps, "tokens_per_s": tps, "roofline_fraction": tps / roof}


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
    Capability("copy bandwidth", "speed", check_copy_bandwidth),
    Capability("bf16 matmul throughput", "speed", check_matmul_throughput),
    Capability("decode per preset vs roofline", "speed", check_decode),
    Capability("llama.cpp decode (CPU)", "speed", check_llama_cpp, required=False),
    Capability("static cache decode", "speed", check_static_cache, level=2),
)
"""The checks, in order. The device argument is ``run``'s device: "cuda" when CUDA is available, else "cpu"."""


# ------------------------------------------------------------------------------------------------ report


def run(capabilities: tuple[Capability, ...] | None = None, *,
        on_result: Callable[[CheckResult], None] | None = None, ledger: bool = True, level: int = 1,
        batches: tuple[int, ...] | None = None, device: str = "auto") -> dict:
    """Run every capability up to ``level`` and return the report (the ``--json`` schema):

    ``{"schema": 3, "level": int, "device": "cpu" | "cuda", "device_model": str, "versions": {...},
    "accelerator": {...} | None, "capabilities": [CheckResult as dict], "ledger": [...], "exit_code": int}``.
    A check that raises :class:`Skip` is "skip"; one whose data has a non-empty ``"warn"`` list is "warn" (the
    reasons join its detail); any other exception is "fail" with its one-line message. ``on_result`` is called
    after each check (for live output). ``ledger=False`` leaves the ledger list empty (its probes load tokenizers:
    seconds). ``batches``: the decode rows' batch sizes (default 1, 8; level 2: 1, 8, 32). ``device``: "auto"
    (CUDA when there is one), "cpu" or "cuda".

    Exit code: the first failing required class's (``errors.CAPABILITY_EXIT_CODES``), else
    ``errors.DOCTOR_WARN_EXIT_CODE`` when a capability warned, else 0. Raises
    :class:`~llmfound.errors.LlmfoundError` for a level not in :data:`LEVELS`, a batch below 1 or an unknown
    device, and :class:`~llmfound.errors.NoCudaError` for ``device="cuda"`` without CUDA, all before any check
    runs."""
    from llmfound.upgrade.ledger import ledger_states

    if level not in LEVELS:
        raise LlmfoundError(f"doctor --level must be one of {', '.join(map(str, LEVELS))}, got {level}")
    if batches is not None and (not batches or any(b < 1 for b in batches)):
        raise LlmfoundError(f"doctor batch sizes must be whole numbers >= 1, got {', '.join(map(str, batches))}")
    if device not in ("auto", "cpu", "cuda"):
        raise LlmfoundError(f"doctor --device must be auto, cpu or cuda, got {device!r}")
    acc = accelerator()
    if device == "cuda" and not acc:
        raise NoCudaError("doctor --device cuda: torch sees no CUDA device here; use --device cpu or auto")
    dev = device if device != "auto" else ("cuda" if acc else "cpu")
    results = []
    _RUN.clear()
    _RUN.update(level=level, batches=tuple(batches) if batches else None)
    try:
        for cap in capabilities or CAPABILITIES:
            if cap.level > level:
                continue
            t0 = time.perf_counter()
            try:
                detail, data = cap.fn(dev)
                status = "warn" if data.get("warn") else "pass"
                if status == "warn":
                    detail += "; WARN: " + "; ".join(data["warn"])
            except Skip as s:
                status, detail, data = "skip", str(s), {}
            except Exception as e:  # noqa: BLE001 - a failing capability is data
                status, detail, data = "fail", f"{type(e).__name__}: {first_line(e)}", \
                    {"traceback": traceback.format_exc(limit=3)}
            r = CheckResult(cap.name, cap.klass, status, detail, time.perf_counter() - t0, cap.required, data)
            results.append(r)
            if on_result:
                on_result(r)
    finally:
        _RUN.clear()
    code = next((CAPABILITY_EXIT_CODES[r.klass] for r in results if r.status == "fail" and r.required), 0)
    if not code and any(r.status == "warn" for r in results):
        code = DOCTOR_WARN_EXIT_CODE
    return {"schema": SCHEMA, "level": level, "device": dev, "device_model": device_model(dev),
            "versions": versions(), "accelerator": acc, "capabilities": [asdict(r) for r in results],
            "ledger": ledger_states() if ledger else [], "exit_code": code}


def plot(report: dict, path: str) -> None:
    """PNG: the synthetic model's footprint per preset (measured vs analytic), and when the decode rows ran, the
    roofline: tok/s against bytes read per step (log-log), each batch's ceiling ``batch x bandwidth / bytes``
    drawn as a line, each preset and batch a point. Written to a temporary file and renamed (never
    half-written).

    Raises :class:`~llmfound.errors.LlmfoundError` when neither a footprint nor a decode check passed (nothing
    to draw) or matplotlib is missing."""
    check_plot_path(path)
    rows = [c for c in report["capabilities"] if c["name"].startswith("synthetic") and c["status"] == "pass"]
    decode = [c for c in report["capabilities"] if c["name"] == "decode per preset vs roofline"
              and c["status"] in ("pass", "warn")]
    if not rows and not decode:
        raise LlmfoundError("no footprint or decode check passed, so there is nothing to plot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LlmfoundError("--plot needs matplotlib: pip install matplotlib") from None
    n = len(rows) + len(decode)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.8), squeeze=False)
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
    for ax, c in zip(axes[0][len(rows):], decode):
        bw = c["data"]["bandwidth"]
        pts = [(b, p, r) for b, by in c["data"]["rows"].items() for p, r in by.items()]
        lo = min(r["bytes_per_step"] for _, _, r in pts) / 2
        hi = max(r["bytes_per_step"] for _, _, r in pts) * 2
        for b in sorted({int(b) for b, _, _ in pts}):
            ax.plot([lo, hi], [b * bw / lo, b * bw / hi], lw=0.8, ls="--", label=f"ceiling, batch {b}")
        for b, p, r in pts:
            ax.scatter(r["bytes_per_step"], r["tokens_per_s"], s=18)
            ax.annotate(f"{p} b{b}", (r["bytes_per_step"], r["tokens_per_s"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bytes read per step")
        ax.set_ylabel("tokens / s")
        ax.set_title(f"{c['data']['workload']}: decode vs roofline\n({bw / 1e9:,.1f} GB/s copy bandwidth)",
                     fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = f"{path}.tmp-{os.getpid()}.png"
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
