"""Speed: the box's ceilings, decode timings against the roofline they give, and memory while generating.

At batch 1 a decode step reads every weight once to make one token per sequence, so the fastest a step can be
is ``bytes read per step / memory bandwidth``: the **roofline**. A model whose steps take longer is bound by
something else: on a big GPU under eager PyTorch, mostly the CPU launching kernels one by one (the device idles
between them; :func:`busy_share` measures how much). A batch of ``b`` sequences reads the weights once per step
for ``b`` tokens, so the roofline in tokens per second grows with ``b`` until compute, not bytes, bounds it.

Timings here are wall-clock seconds after a warm-up, taken in interleaved rounds (:func:`interleaved`) so that
the order in which models were loaded cannot decide a ranking; every figure keeps its rounds so a reader sees
the spread. No timing in this module is asserted by a spec: targets live in ``benchmarks/``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from llmfound.errors import LlmfoundError

__all__ = ["copy_bandwidth", "matmul_throughput", "StepClock", "DecodeTiming", "time_decode", "interleaved",
           "weight_bytes_per_step", "roofline_tokens_per_s", "busy_share", "kv_cache_bytes", "generation_peak",
           "spread", "decode_rows"]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device: str = "cpu", *, nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Memory copy bandwidth of ``device`` in bytes per second, **read + write counted**: ``repeats`` copies of
    a ``nbytes`` buffer into another, after one warm-up copy; each copy moves ``2 * nbytes``. Raises
    :class:`LlmfoundError` for ``nbytes`` < 1 MB or ``repeats`` < 1."""
    import torch

    if nbytes < 10**6 or repeats < 1:
        raise LlmfoundError(f"copy_bandwidth needs nbytes >= 1 MB and repeats >= 1, got {nbytes}, {repeats}")
    n = nbytes // 2
    src = torch.ones(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    _sync(device)
    seconds = time.perf_counter() - t0
    del src, dst
    return 2 * n * 2 * repeats / seconds


def matmul_throughput(device: str = "cpu", *, n: int = 8192, repeats: int = 10, dtype: str = "bfloat16") -> float:
    """Dense matmul throughput of ``device`` in FLOP per second: ``repeats`` products of two ``n x n`` matrices
    (``2 n^3`` FLOP each) after one warm-up product. Raises :class:`LlmfoundError` for ``n`` < 16 or
    ``repeats`` < 1."""
    import torch

    if n < 16 or repeats < 1:
        raise LlmfoundError(f"matmul_throughput needs n >= 16 and repeats >= 1, got {n}, {repeats}")
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)
    c = a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
    _sync(device)
    seconds = time.perf_counter() - t0
    del a, b, c
    return 2 * n**3 * repeats / seconds


class StepClock:
    """A streamer for ``model.generate(streamer=...)`` that timestamps every step (``time.perf_counter()``
    seconds, after synchronizing the device): ``generate`` calls :meth:`put` once with the prompt, then once per
    new token (any batch size). ``stamps[0]`` is the prompt, ``stamps[1]`` the first new token (end of prefill)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.stamps: list[float] = []

    def put(self, value) -> None:
        _sync(self.device)
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass
class DecodeTiming:
    """One ``generate`` call, timed per step. ``prefill_s``: seconds from the call to the first new token (the
    prompt's forward pass); ``step_s``: median seconds per later step (one new token per sequence);
    ``steps``: how many later steps were timed; ``batch``: sequences per step; ``wall_s``: the whole call."""

    batch: int
    prefill_s: float
    step_s: float
    steps: int
    wall_s: float

    @property
    def tokens_per_s(self) -> float:
        """Tokens made per second in decode, all sequences together: ``batch / step_s``."""
        return self.batch / self.step_s


def time_decode(model, *, batch: int = 1, prompt_tokens: int = 32, new_tokens: int = 33, seed: int = 0,
                **generate_kwargs) -> DecodeTiming:
    """Greedy-decode ``new_tokens`` tokens for ``batch`` prompts of ``prompt_tokens`` random ids (every sequence
    makes exactly ``new_tokens``: ``min_new_tokens`` is set) and time each step with a :class:`StepClock`.
    ``generate_kwargs`` go to ``generate`` (for example ``cache_implementation="static"``). Raises
    :class:`LlmfoundError` for a batch, prompt or ``new_tokens`` below 1 (``new_tokens`` >= 3 for a median)."""
    import torch

    if batch < 1 or prompt_tokens < 1 or new_tokens < 3:
        raise LlmfoundError(f"time_decode needs batch >= 1, prompt_tokens >= 1 and new_tokens >= 3, got "
                            f"{batch}, {prompt_tokens}, {new_tokens}")
    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, prompt_tokens), generator=g).to(device)
    clock = StepClock(device.type)
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, streamer=clock,
                       **generate_kwargs)
    _sync(device.type)
    wall = time.perf_counter() - t0
    s = clock.stamps
    steps = [b - a for a, b in zip(s[1:], s[2:])]
    return DecodeTiming(batch=batch, prefill_s=s[1] - t0, step_s=statistics.median(steps), steps=len(steps),
                        wall_s=wall)


def interleaved(tasks: dict[str, Callable[[], object]], *, rounds: int = 3, warmup: int = 1) -> dict[str, dict]:
    """Run every task ``warmup`` times, then ``rounds`` rounds, each round in a rotated order (round ``r``
    starts with task ``r mod n``), so no task always runs first or right after a given other one.

    Returns ``{name: {"warmup": [results], "rounds": [results]}}``, results as the tasks return them. Raises
    :class:`LlmfoundError` for no tasks or ``rounds`` < 1."""
    if not tasks or rounds < 1 or warmup < 0:
        raise LlmfoundError(f"interleaved needs tasks, rounds >= 1 and warmup >= 0, got {len(tasks)}, {rounds}, "
                            f"{warmup}")
    names = list(tasks)
    out = {n: {"warmup": [], "rounds": []} for n in names}
    for n in names:
        for _ in range(warmup):
            out[n]["warmup"].append(tasks[n]())
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            out[n]["rounds"].append(tasks[n]())
    return out


def spread(values: list[float]) -> dict[str, float]:
    """``{"median", "min", "max", "spread"}`` of ``values``; ``spread`` is ``(max - min) / median`` (0.05: the
    rounds lie within 5% of the median's size). Raises :class:`LlmfoundError` for no values."""
    if not values:
        raise LlmfoundError("spread needs at least one value")
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values),
            "spread": (max(values) - min(values)) / med if med else 0.0}


def weight_bytes_per_step(model, footprint_bytes: int, batch: int = 1) -> int:
    """Bytes a decode step must read from memory for its weights: the model's footprint (weights, quantization
    state, buffers; from :func:`llmfound.quantization.footprint` or its analytic footprint) less the input embedding
    table, of which a step reads only ``batch`` rows. A tied lm_head reads the whole table anyway, so nothing is
    taken off then. Bytes; the KV cache read per step is not included (:func:`kv_cache_bytes`)."""
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    if out is not None and out.weight is emb:
        return footprint_bytes
    row = emb.shape[1] * emb.element_size()
    return footprint_bytes - emb.numel() * emb.element_size() + min(batch, emb.shape[0]) * row


def roofline_tokens_per_s(bytes_per_step: int, bandwidth: float, batch: int = 1) -> float:
    """The memory roofline of decode in tokens per second: a step cannot be faster than reading
    ``bytes_per_step`` at ``bandwidth`` bytes per second, and makes ``batch`` tokens. Raises
    :class:`LlmfoundError` for non-positive inputs."""
    if bytes_per_step <= 0 or bandwidth <= 0 or batch < 1:
        raise LlmfoundError(f"roofline needs positive bytes, bandwidth and batch, got {bytes_per_step}, "
                            f"{bandwidth}, {batch}")
    return batch * bandwidth / bytes_per_step


def busy_share(model, *, batch: int = 1, prompt_tokens: int = 32, new_tokens: int = 33,
               **generate_kwargs) -> dict[str, float] | None:
    """How much of one ``generate`` the CUDA device spends running kernels: the union of kernel intervals
    recorded by ``torch.profiler`` over that call, in seconds (``kernel_s``), and the profiled call's wall time
    (``wall_s``). The profiler slows the CPU side, so divide ``kernel_s`` by an unprofiled wall time of the same
    call for the share. ``None`` on the CPU (the CPU is both the launcher and the device)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if next(model.parameters()).device.type != "cuda":
        return None
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        timing = time_decode(model, batch=batch, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                             **generate_kwargs)
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start)
    busy_us, cur_start, cur_end = 0, None, None
    for a, b in spans:
        if cur_end is None or a > cur_end:
            if cur_end is not None:
                busy_us += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None:
        busy_us += cur_end - cur_start
    return {"kernel_s": busy_us / 1e6, "wall_s": timing.wall_s, "kernels": len(spans)}


def kv_cache_bytes(config, tokens: int, batch: int = 1, bytes_per_value: int = 2) -> int:
    """Bytes of a full KV cache: ``2 (keys and values) x layers x kv heads x head dim x bytes per value`` per
    token, times ``tokens`` and ``batch``. ``config``: a transformers decoder config (``head_dim`` when it has
    one, else hidden size / attention heads). Raises :class:`LlmfoundError` for negative counts."""
    if tokens < 0 or batch < 0 or bytes_per_value < 1:
        raise LlmfoundError(f"kv_cache_bytes needs tokens, batch >= 0 and bytes_per_value >= 1, got {tokens}, "
                            f"{batch}, {bytes_per_value}")
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv * head_dim * bytes_per_value * tokens * batch


@dataclass
class GenerationPeak:
    """Memory while one ``generate`` ran, in bytes: ``extra_bytes`` is the peak during the call above what was
    held before it (KV cache + activations + logits + workspace): CUDA's allocated bytes on a GPU, the process's
    resident set size on the CPU (``kind`` says which); ``kv_bytes`` the analytic KV cache for the call's final
    length."""

    context: int
    new_tokens: int
    extra_bytes: int
    kv_bytes: int
    kind: str = "cuda allocated"
    data: dict = field(default_factory=dict)


def generation_peak(model, *, context: int, new_tokens: int = 8, batch: int = 1) -> GenerationPeak:
    """Peak memory of a greedy ``generate`` with a ``context``-token random prompt (see :class:`GenerationPeak`):
    on CUDA ``torch.cuda.max_memory_allocated`` after a reset; on the CPU the peak RSS after handing freed heap
    back to the system (:func:`llmfound.memory.release_freed_memory`, else the call would reuse it unseen) and
    resetting the peak (:func:`llmfound.memory.reset_peak_rss`); other threads' allocations count too. Raises
    :class:`LlmfoundError` for a context beyond the model's ``max_position_embeddings``, or on a CPU where the
    peak cannot be reset (not Linux)."""
    import torch

    from llmfound.memory import peak_rss_since_reset, release_freed_memory, reset_peak_rss, rss_bytes

    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and context + new_tokens > limit:
        raise LlmfoundError(f"context {context} + {new_tokens} new tokens exceeds the model's {limit} positions")
    ids = torch.randint(3, model.config.vocab_size, (batch, context)).to(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        release_freed_memory()
        base = rss_bytes()
        if not reset_peak_rss():
            raise LlmfoundError("generation_peak on the CPU needs /proc/self/clear_refs (Linux) to reset the peak RSS")
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    if cuda:
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - base
    else:
        extra = (peak_rss_since_reset() or base) - base
    return GenerationPeak(context=context, new_tokens=new_tokens, extra_bytes=extra,
                          kv_bytes=kv_cache_bytes(model.config, context + new_tokens, batch),
                          kind="cuda allocated" if cuda else "cpu rss")


def decode_rows(models: dict, *, batches: tuple[int, ...], bandwidth: float, rounds: int = 2,
                prompt_tokens: int = 16, new_tokens: int = 6, **generate_kwargs) -> dict[str, dict[str, dict]]:
    """Time greedy decode of every model at every batch against its roofline: the table ``llmfound doctor``
    and ``benchmarks/decode_speed.py`` print.

    ``models``: ``{preset: (model, footprint_bytes)}``, all resident at once. Per batch, the presets run in
    :func:`interleaved` rounds (``rounds`` >= 1); each preset gets one warm-up call before its first batch only
    (the first call of a freshly loaded model is the slow one). ``bandwidth``: bytes per second (the roofline's
    ceiling, e.g. :func:`copy_bandwidth`). Returns ``{str(batch): {preset: row}}``, a row being
    ``{"step_s": spread of the rounds' median seconds per step, "ms_per_step", "tokens_per_s" (all sequences),
    "bytes_per_step", "roofline_tokens_per_s", "roofline_fraction", "busy_share" (CUDA: kernel time over the
    median wall time of the call; None on the CPU), "warmup_step_s": [seconds] (empty after the first batch)}``.
    Raises :class:`LlmfoundError` for no models, no batches, a batch below 1 or a non-positive bandwidth."""
    if not models or not batches or any(b < 1 for b in batches) or bandwidth <= 0:
        raise LlmfoundError(f"decode_rows needs models, batches >= 1 and a positive bandwidth, got "
                            f"{len(models)} models, batches {list(batches)}, bandwidth {bandwidth}")
    out: dict[str, dict[str, dict]] = {}
    for i, b in enumerate(batches):
        tasks = {p: (lambda m=m, b=b: time_decode(m, batch=b, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                                                  **generate_kwargs)) for p, (m, _) in models.items()}
        res = interleaved(tasks, rounds=rounds, warmup=1 if i == 0 else 0)
        rows = {}
        for p, r in res.items():
            model, fp = models[p]
            steps = spread([t.step_s for t in r["rounds"]])
            bytes_step = weight_bytes_per_step(model, fp, b)
            roof = roofline_tokens_per_s(bytes_step, bandwidth, b)
            tps = b / steps["median"]
            busy = None
            if next(model.parameters()).device.type == "cuda":
                prof = busy_share(model, batch=b, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                                  **generate_kwargs)
                busy = prof["kernel_s"] / statistics.median(t.wall_s for t in r["rounds"])
            rows[p] = {"step_s": steps, "ms_per_step": 1000 * steps["median"], "tokens_per_s": tps,
                       "bytes_per_step": bytes_step, "roofline_tokens_per_s": roof, "roofline_fraction": tps / roof,
                       "busy_share": busy, "warmup_step_s": [t.step_s for t in r["warmup"]]}
        out[str(b)] = rows
    return out
