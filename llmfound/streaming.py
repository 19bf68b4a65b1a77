"""Streamed generation: ``TextIteratorStreamer`` in a worker thread, with timing and a stop reason.

transformers offers two streamers: ``TextStreamer`` prints finished words to stdout as ``generate`` runs;
``TextIteratorStreamer`` hands them to another thread through a queue. llmfound runs ``generate`` in a
worker thread and reads the iterator with a timeout, so a ``generate`` that raises surfaces in the caller
(re-raised) instead of leaving the reader blocked forever.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from .errors import LlmfoundError


@dataclass
class GenerationResult:
    """One streamed generation.

    ``text``: the decoded new text (what was streamed, concatenated); ``new_tokens``: count of generated
    tokens; ``prompt_tokens``: count of prompt tokens; ``ttft_s``: seconds from the call to the first
    streamed text; ``total_s``: seconds for the whole call; ``stop_reason``: ``"eos"`` (an eos id of the
    generation config ended it) or ``"max_new_tokens"``; ``token_ids``: the new ids.
    """

    text: str
    new_tokens: int
    prompt_tokens: int
    ttft_s: float
    total_s: float
    stop_reason: str
    token_ids: list[int]

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


def stream_generate(model, tokenizer, inputs: dict, *, max_new_tokens: int = 64,
                    on_text: Callable[[str], None] | None = None, timeout_s: float = 600.0,
                    streamer: str = "iterator", **generate_kwargs) -> GenerationResult:
    """Generate from ``inputs`` while streaming decoded text, and time it.

    ``inputs``: tokenized prompt (``input_ids`` LongTensor[1, seq] and ``attention_mask``). Greedy unless
    ``generate_kwargs`` say otherwise. The prompt is never streamed (``skip_prompt=True``); special tokens are
    skipped. ``streamer="iterator"`` (default): ``TextIteratorStreamer``, generate in a worker thread, text
    handed to ``on_text`` in the caller. ``streamer="stdout"``: ``TextStreamer`` in the calling thread, text
    printed to stdout (or handed to ``on_text`` when given).

    Raises :class:`LlmfoundError` for ``max_new_tokens <= 0`` or an unknown streamer; re-raises whatever
    ``generate`` raised (from the worker thread too); raises ``TimeoutError`` when the iterator gets no text
    for ``timeout_s`` seconds while the worker is still running.
    """
    from transformers import TextIteratorStreamer

    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens <= 0:
        raise LlmfoundError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if streamer not in STREAMERS:
        raise LlmfoundError(f"unknown streamer {streamer!r}; choose one of: {', '.join(STREAMERS)}")
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

    def work() -> None:
        try:
            box["out"] = model.generate(**inputs, streamer=it, **kwargs)
        except BaseException as e:  # surfaced in the caller below
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
    except Exception as e:  # queue.Empty: nothing arrived within timeout_s
        if "error" in box:
            raise box["error"] from None
        raise TimeoutError(f"no streamed text for {timeout_s:g} s; generate is stuck or too slow "
                           f"(raise timeout_s for slow hardware)") from e
    worker.join()
    total = time.perf_counter() - start
    if "error" in box:
        raise box["error"]
    return _result(model, inputs, box["out"], "".join(pieces), ttft if ttft is not None else total, total)


def _result(model, inputs: dict, out, text: str, ttft: float, total: float) -> GenerationResult:
    prompt_len = inputs["input_ids"].shape[-1]
    new = out[0, prompt_len:].tolist()
    stop = "eos" if new and new[-1] in eos_ids(model) else "max_new_tokens"
    return GenerationResult(text=text, new_tokens=len(new), prompt_tokens=prompt_len, ttft_s=ttft,
                            total_s=total, stop_reason=stop, token_ids=new)
