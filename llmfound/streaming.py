"""Streamed generation: ``TextIteratorStreamer`` in a worker thread, with timing and a stop reason.

transformers offers two streamers: ``TextStreamer`` prints finished words to stdout as ``generate`` runs;
``TextIteratorStreamer`` hands them to another thread through a queue. llmfound runs ``generate`` in a
worker thread and reads the iterator with a timeout, so a ``generate`` that raises surfaces in the caller
(re-raised) instead of leaving the reader blocked forever. Both streamers decode with ``skip_special_tokens=True``:
a special token (end of turn, eos, bos, pad) never reaches the reader; the one that ended generation is reported
as the stop reason (:attr:`GenerationResult.stop_token_id`).

On the CPU, :func:`choose_threads` picks torch's thread count from the cores other processes leave free
(measurements in docs/generation-speed.md).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from llmfound.errors import LlmfoundError

__all__ = ["GenerationResult", "eos_ids", "STREAMERS", "stream_generate", "TokenClock", "BUSY_CORE_SHARE",
    "ThreadChoice", "threads_for", "usable_cores", "busy_cores", "choose_threads"]


@dataclass
class GenerationResult:
    """One streamed generation.

    ``text``: the decoded new text (what was streamed, concatenated), special tokens skipped; ``new_tokens``:
    count of generated tokens; ``prompt_tokens``: count of prompt tokens; ``ttft_s``: seconds from the call to
    the first streamed text; ``total_s``: seconds for the whole call; ``stop_reason``: ``"eos"`` (an eos id of
    the generation config ended it: :attr:`stop_token_id`, never part of ``text``) or ``"max_new_tokens"``;
    ``token_ids``: the new ids, the stop token included.
    """

    text: str
    new_tokens: int
    prompt_tokens: int
    ttft_s: float
    total_s: float
    stop_reason: str
    token_ids: list[int]

    @property
    def stop_token_id(self) -> int | None:
        """The eos id that ended the generation (the last new id when ``stop_reason == "eos"``), else None."""
        return self.token_ids[-1] if self.stop_reason == "eos" and self.token_ids else None

    @property
    def tokens_per_s(self) -> float:
        """New tokens per second over the whole call (prefill included)."""
        return self.new_tokens / self.total_s if self.total_s > 0 else float("nan")

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens per second after the first one (decode speed, prefill excluded)."""
        t = self.total_s - self.ttft_s
        return (self.new_tokens - 1) / t if self.new_tokens > 1 and t > 0 else float("nan")


def eos_ids(model) -> list[int]:
    """The generation config's eos ids as a list (transformers allows an int or a list)."""
    eos = model.generation_config.eos_token_id
    return [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))


STREAMERS = ("iterator", "stdout")
"""``iterator``: TextIteratorStreamer read in the caller while generate runs in a worker thread;
``stdout``: TextStreamer printing from inside generate, in the calling thread."""


def _timed_text_streamer(tokenizer, on_text, clock: dict):
    from transformers import TextStreamer

    class TimedTextStreamer(TextStreamer):
        """TextStreamer that notes when the first text came and hands text to ``on_text`` (default: stdout)."""

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text and "first" not in clock:
                clock["first"] = time.perf_counter()
            clock.setdefault("pieces", []).append(text)
            if on_text is None:
                super().on_finalized_text(text, stream_end=stream_end)
            elif text:
                on_text(text)

    return TimedTextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _as_inputs(inputs) -> dict:
    """``inputs`` as the keyword arguments of ``generate``: a mapping with ``input_ids`` as it is, a bare id tensor
    as ``{"input_ids": t, "attention_mask": ones}``; anything else is one clear error."""
    import torch
    from collections.abc import Mapping

    if isinstance(inputs, torch.Tensor):
        ids = inputs if inputs.dim() == 2 else inputs.unsqueeze(0)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if isinstance(inputs, Mapping) and "input_ids" in inputs:
        return dict(inputs)
    raise LlmfoundError(f"inputs must be a mapping with input_ids (a BatchEncoding, passed to generate as **inputs) "
                        f"or an input_ids tensor, got {type(inputs).__name__}"
                        + (f" with keys {sorted(inputs)}" if isinstance(inputs, Mapping) else ""))


def stream_generate(model, tokenizer, inputs: dict, *, max_new_tokens: int = 64,
                    on_text: Callable[[str], None] | None = None, timeout_s: float = 600.0,
                    streamer: str = "iterator", **generate_kwargs) -> GenerationResult:
    """Generate from ``inputs`` while streaming decoded text, and time it.

    ``inputs``: tokenized prompt: a mapping with ``input_ids`` LongTensor[1, seq] (and ``attention_mask``), such as
    the ``BatchEncoding`` that transformers 5's ``apply_chat_template(..., return_dict=True, return_tensors="pt")``
    and ``tokenizer(text, return_tensors="pt")`` return, or a bare ``input_ids`` tensor (what transformers 4's
    ``apply_chat_template(..., return_tensors="pt")`` returned; its attention mask is all ones). Greedy unless
    ``generate_kwargs`` say otherwise. The prompt is never streamed (``skip_prompt=True``); special tokens are
    skipped. ``streamer="iterator"`` (default): ``TextIteratorStreamer``, generate in a worker thread, text
    handed to ``on_text`` in the caller. ``streamer="stdout"``: ``TextStreamer`` in the calling thread, text
    printed to stdout (or handed to ``on_text`` when given).

    Raises :class:`LlmfoundError` for ``max_new_tokens <= 0``, an unknown streamer, or ``inputs`` that are neither
    (``model.generate(inputs)`` with a ``BatchEncoding`` fails with an empty ``AttributeError``: pass
    ``generate(**inputs)``, or hand the mapping to this function); re-raises whatever
    ``generate`` raised (from the worker thread too); raises ``TimeoutError`` when the iterator gets no text
    for ``timeout_s`` seconds while the worker is still running. Whatever interrupts the reader (Ctrl-C's
    ``KeyboardInterrupt``, a closed stdout in ``on_text``) first stops the worker, through a stopping criterion
    added to ``generate``'s, and joins it (it ends after the token it is on), then propagates: an interpreter
    that exits with the worker inside torch aborts (exit 134) instead of exiting 130.
    """
    from transformers import TextIteratorStreamer

    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens <= 0:
        raise LlmfoundError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if streamer not in STREAMERS:
        raise LlmfoundError(f"unknown streamer {streamer!r}; choose one of: {', '.join(STREAMERS)}")
    inputs = _as_inputs(inputs)
    kwargs = dict(do_sample=False, max_new_tokens=max_new_tokens)
    kwargs.update(generate_kwargs)
    start = time.perf_counter()
    if streamer == "stdout":
        clock: dict = {}
        out = model.generate(**inputs, streamer=_timed_text_streamer(tokenizer, on_text, clock), **kwargs)
        total = time.perf_counter() - start
        return _result(model, inputs, out, "".join(clock.get("pieces", [])),
                       clock.get("first", start + total) - start, total)

    it = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout_s)
    box: dict = {}
    stop = threading.Event()
    kwargs["stopping_criteria"] = _with_stop_flag(kwargs.get("stopping_criteria"), stop)

    def work() -> None:
        try:
            box["out"] = model.generate(**inputs, streamer=it, **kwargs)
        except BaseException as e:  # noqa: BLE001 - everything, KeyboardInterrupt too, is re-raised in the caller
            box["error"] = e
            it.end()  # unblock the reader

    worker = threading.Thread(target=work, name="llmfound-generate", daemon=True)
    worker.start()
    pieces: list[str] = []
    ttft = None
    try:
        for piece in it:
            if piece and ttft is None:
                ttft = time.perf_counter() - start
            pieces.append(piece)
            if on_text and piece:
                on_text(piece)
        worker.join()
    except BaseException as e:  # queue.Empty (the timeout), Ctrl-C (KeyboardInterrupt), a closed stdout...
        stop.set()  # the worker ends after the step it is in
        if isinstance(e, Exception) and "error" in box:
            raise box["error"] from None
        if isinstance(e, queue.Empty):  # a stuck worker may never come back: left behind (a daemon thread)
            raise TimeoutError(f"no streamed text for {timeout_s:g} s; generate is stuck or too slow "
                               f"(raise timeout_s for slow hardware)") from e
        worker.join()  # an interpreter that exits while the worker is inside torch aborts (exit 134, not 130)
        raise
    total = time.perf_counter() - start
    if "error" in box:
        raise box["error"]
    return _result(model, inputs, box["out"], "".join(pieces), ttft if ttft is not None else total, total)


class TokenClock:
    """A streamer that only counts and times: pass it as ``generate(..., streamer=clock)`` where the caller does
    not make the ``generate`` call itself, such as a pipeline (``pipe(prompt, streamer=clock)``).

    ``generate`` hands a streamer the prompt first, then each new id; the clock keeps the prompt's length, the new
    ids and when the first came. :meth:`result` turns them into a :class:`GenerationResult` (seconds from the
    clock's creation)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.prompt_tokens: int | None = None
        self.ids: list[int] = []
        self.first: float | None = None
        self.stop: float | None = None

    def put(self, value) -> None:
        if self.prompt_tokens is None:
            self.prompt_tokens = int(value.shape[-1])
            return
        if self.first is None:
            self.first = time.perf_counter()
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())

    def end(self) -> None:
        self.stop = time.perf_counter()

    def result(self, model, text: str) -> GenerationResult:
        """The generation as a :class:`GenerationResult`: ``text`` (what the caller got), the counted ids, the
        stop reason from ``model``'s eos ids."""
        total = (self.stop or time.perf_counter()) - self.start
        stop = "eos" if self.ids and self.ids[-1] in eos_ids(model) else "max_new_tokens"
        return GenerationResult(text=text, new_tokens=len(self.ids), prompt_tokens=self.prompt_tokens or 0,
                                ttft_s=(self.first or self.start + total) - self.start, total_s=total,
                                stop_reason=stop, token_ids=list(self.ids))


def _with_stop_flag(criteria, flag: threading.Event):
    """``criteria`` (a caller's ``stopping_criteria``, or None) plus one that ends generation for every row once
    ``flag`` is set: how the reader stops the worker thread on Ctrl-C. transformers checks stopping criteria
    after each new token, so the worker returns within one forward step (the whole prefill, when the flag is set
    before the first token)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopFlag(StoppingCriteria):
        def __call__(self, input_ids, scores, **kw):
            return torch.full((input_ids.shape[0],), flag.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([*(criteria or []), StopFlag()])


def _result(model, inputs: dict, out, text: str, ttft: float, total: float) -> GenerationResult:
    prompt_len = inputs["input_ids"].shape[-1]
    new = out[0, prompt_len:].tolist()
    stop = "eos" if new and new[-1] in eos_ids(model) else "max_new_tokens"
    return GenerationResult(text=text, new_tokens=len(new), prompt_tokens=prompt_len, ttft_s=ttft,
                            total_s=total, stop_reason=stop, token_ids=new)


# ------------------------------------------------------------------------------------------ CPU threads
# torch uses one intra-op thread per core by default. Its threads meet at a barrier after every op, so when
# another process holds one of them off its core, every op waits for the scheduler: on the project's 2-core
# machine with one other CPU-bound process, 2 threads decoded at 1.0-3.8 tok/s and 1 thread at 19.6 tok/s.

BUSY_CORE_SHARE = 0.25
"""A core counts as taken when other processes use more than this share of it (0.25 = a quarter of a core).

Low on purpose: the two mistakes cost unequally. One thread on an idle machine is somewhat slower than
all cores; all cores beside a busy process can be many times slower than one (measured: docs/generation-speed.md)."""


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count :func:`choose_threads` picked and what it saw.

    ``threads``: torch intra-op threads to use (>= 1); ``cores``: cores this process may run on;
    ``busy``: cores' worth of CPU time (0..cores) other processes used during the sample;
    ``source``: where ``busy`` came from (``"/proc/stat over 0.2 s"``, ``"os.getloadavg() 1-min"``,
    ``"given"``, or ``"unknown: assumed idle"``).
    """

    threads: int
    cores: int
    busy: float
    source: str

    def __str__(self) -> str:
        return f"{self.threads} (auto: {self.busy:.1f} of {self.cores} cores busy, {self.source})"


def threads_for(cores: int, busy: float) -> int:
    """The rule: one thread per core that other processes leave free, at least 1, at most ``cores``.

    ``cores``: usable cores (int >= 1); ``busy``: cores' worth of CPU used by others (float, clipped to
    0..cores). A core counts as free unless others use more than :data:`BUSY_CORE_SHARE` of it.

    >>> threads_for(2, 0.0), threads_for(2, 1.0), threads_for(2, 2.0)
    (2, 1, 1)
    """
    cores = max(1, int(cores))
    busy = min(max(float(busy), 0.0), float(cores))
    return max(1, min(cores, math.floor(cores - busy + BUSY_CORE_SHARE)))


def usable_cores() -> int:
    """Cores this process may run on: ``len(os.sched_getaffinity(0))`` (Linux), else ``os.cpu_count()``, else 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _read_proc_stat() -> str:
    with open("/proc/stat") as f:
        return f.read()


def _cpu_times(stat: str, cpus) -> tuple[int, int]:
    """(busy, total) clock ticks summed over the ``cpuN`` lines of /proc/stat for N in ``cpus``."""
    busy = total = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
        ticks = [int(x) for x in rest.split()[:8]]
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy, total


def busy_cores(interval_s: float = 0.2, *, cpus=None, read_stat: Callable[[], str] = _read_proc_stat,
               sleep: Callable[[float], None] = time.sleep) -> tuple[float, str]:
    """Cores' worth of CPU that other processes use now, and where the figure came from.

    Reads the per-CPU lines of /proc/stat twice, ``interval_s`` seconds apart, for the CPUs in ``cpus``
    (default: this process's affinity set); busy = all ticks but idle and iowait (steal counts as busy), as a
    share of the ticks that passed, times the number of CPUs. This process sleeps meanwhile, so the figure is
    the others' use. Without /proc/stat (macOS) it falls back to ``os.getloadavg()[0]`` (1-minute average of
    runnable processes, slow to follow a change); without that, to 0.0 ("unknown: assumed idle").
    Returns (busy, source) with busy in 0..len(cpus).
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            cpus = range(os.cpu_count() or 1)
    cpus = set(cpus)
    try:
        b0, t0 = _cpu_times(read_stat(), cpus)
        sleep(interval_s)
        b1, t1 = _cpu_times(read_stat(), cpus)
        if t1 > t0:
            return len(cpus) * (b1 - b0) / (t1 - t0), f"/proc/stat over {interval_s:g} s"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return min(float(len(cpus)), os.getloadavg()[0]), "os.getloadavg() 1-min"
    except (AttributeError, OSError):
        return 0.0, "unknown: assumed idle"


def choose_threads(*, cores: int | None = None, busy: float | None = None,
                   interval_s: float = 0.2) -> ThreadChoice:
    """Pick torch's CPU thread count for generation: :func:`threads_for` of the cores and their load.

    ``cores`` default: :func:`usable_cores`; ``busy`` default: :func:`busy_cores` sampled for ``interval_s``
    seconds (so a call takes that long unless ``busy`` is given). Used by ``llmfound generate`` when
    ``--threads`` is not given; the caller applies it with ``torch.set_num_threads(choice.threads)``.
    """
    cores = usable_cores() if cores is None else max(1, int(cores))
    if busy is None:
        busy, source = busy_cores(interval_s)
    else:
        source = "given"
    busy = min(max(float(busy), 0.0), float(cores))
    return ThreadChoice(threads=threads_for(cores, busy), cores=cores, busy=busy, source=source)
