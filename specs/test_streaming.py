"""Lesson: a streamed answer is exactly the generated answer, delivered piece by piece.

transformers' ``TextStreamer`` prints words as ``generate`` produces them; ``TextIteratorStreamer`` hands them
to another thread. Streaming must be faithful: the concatenated pieces equal ``decode`` of the new tokens,
the prompt is not repeated, a character whose bytes span several tokens is never shown half-done (U+FFFD),
generation stops at the model's end-of-turn token, and a failure inside the generating thread reaches the
caller instead of hanging it.
"""

from __future__ import annotations

import threading
import time

import pytest

from llmfound import chat, quantization as Q, streaming
from llmfound.errors import LlmfoundError

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol(require_assets):
    require_assets(MODEL)
    return Q.load_model(MODEL, "bf16")


def _inputs(tok, question="What is the capital of France?"):
    return chat.chat_inputs(tok, chat.conversation(question))


# ------------------------------------------------------------------------------------------ faithful


@pytest.mark.parametrize("kind", streaming.STREAMERS)
def test_the_stream_equals_decode_of_the_new_tokens(smol, kind, capsys):
    model, tok = smol
    inputs = _inputs(tok, "Name three colors.")
    res = streaming.stream_generate(model, tok, inputs, max_new_tokens=24, streamer=kind)
    printed = capsys.readouterr().out
    expected = tok.decode(res.token_ids, skip_special_tokens=True)
    assert res.text == expected, f"{kind}: stream {res.text!r} != decode {expected!r}"
    if kind == "stdout":  # TextStreamer printed exactly that (plus a final newline)
        assert printed.rstrip("\n") == expected.rstrip("\n"), (printed, expected)
    # and it is greedy generate's own output
    direct = model.generate(**inputs, do_sample=False, max_new_tokens=24)[0, inputs["input_ids"].shape[-1]:]
    assert res.token_ids == direct.tolist(), f"{kind}: streamed ids differ from a plain generate"


def test_skip_prompt_leaves_only_new_text(smol):
    model, tok = smol
    inputs = _inputs(tok)
    res = streaming.stream_generate(model, tok, inputs, max_new_tokens=12)
    prompt_text = tok.decode(inputs["input_ids"][0], skip_special_tokens=True)
    assert "You are a helpful AI assistant" in prompt_text  # SmolLM2's template adds this system prompt
    assert "helpful AI assistant" not in res.text and not res.text.startswith("system"), res.text


@pytest.mark.parametrize("text", ["🙂 ok", "日本語のテキスト", "family: 👨‍👩‍👧 done", "é vs é"])
@pytest.mark.parametrize("kind", ["iterator", "stdout"])
def test_a_character_split_across_tokens_is_never_shown_half_done(smol, text, kind, capsys):
    """Byte-level BPE splits an emoji's 4 UTF-8 bytes across tokens; the streamer must hold them back."""
    from transformers import TextIteratorStreamer, TextStreamer

    _, tok = smol
    ids = tok.encode(text, add_special_tokens=False)
    assert any("\ufffd" in tok.decode([i]) for i in ids) or text.isascii() or len(ids) >= 2
    s = TextIteratorStreamer(tok, timeout=5) if kind == "iterator" else TextStreamer(tok)
    for i in ids:  # what generate does: one token id at a time
        s.put(__import__("torch").tensor([i]))
    s.end()
    pieces = list(s) if kind == "iterator" else [capsys.readouterr().out.rstrip("\n")]
    assert not any("\ufffd" in p for p in pieces), f"{kind}: {text!r} streamed as {pieces!r}"
    assert "".join(pieces) == text, f"{kind}: {text!r} streamed as {pieces!r}"


def test_generation_stops_on_the_end_of_turn_token(smol):
    model, tok = smol
    res = streaming.stream_generate(model, tok, _inputs(tok), max_new_tokens=64)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in streaming.eos_ids(model), f"<|im_end|> ({im_end}) must be a generation eos id"
    assert res.stop_reason == "eos" and res.token_ids[-1] == im_end, (res.stop_reason, res.token_ids[-3:])
    assert res.new_tokens < 64


def test_hitting_max_new_tokens_is_reported_as_such(smol):
    model, tok = smol
    res = streaming.stream_generate(model, tok, _inputs(tok, "Write a long story about a cat."), max_new_tokens=5)
    assert (res.stop_reason, res.new_tokens) == ("max_new_tokens", 5)
    assert 0 < res.ttft_s <= res.total_s and res.tokens_per_s > 0


# ------------------------------------------------------------------------------------------ failures


class _ScriptedModel:
    """A stand-in for a model whose generate streams two tokens, then raises or hangs (contract spec)."""

    def __init__(self, tok, then: str):
        self.tok, self.then, self.release = tok, then, threading.Event()
        self.generation_config = type("G", (), {"eos_token_id": 2})()

    def generate(self, input_ids=None, attention_mask=None, streamer=None, **kw):
        import torch

        streamer.put(input_ids[0])  # the prompt (skipped)
        for i in self.tok.encode(" Paris is", add_special_tokens=False):
            streamer.put(torch.tensor([i]))
        if self.then == "raise":
            raise RuntimeError("CUDA error: device-side assert triggered")
        self.release.wait(30)  # hang until released


def test_an_error_inside_generate_surfaces_in_the_caller(smol):
    _, tok = smol
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="device-side assert"):
        streaming.stream_generate(_ScriptedModel(tok, "raise"), tok, _inputs(tok), timeout_s=10)
    assert time.perf_counter() - start < 5, "the error must arrive at once, not after the timeout"


def test_a_hung_generate_times_out_instead_of_blocking_forever(smol):
    _, tok = smol
    model = _ScriptedModel(tok, "hang")
    start = time.perf_counter()
    try:
        with pytest.raises(TimeoutError, match="no streamed text for 0.5 s"):
            streaming.stream_generate(model, tok, _inputs(tok), timeout_s=0.5)
    finally:
        model.release.set()
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "8"])
def test_max_new_tokens_must_be_a_positive_integer(smol, bad):
    model, tok = smol
    with pytest.raises(LlmfoundError, match="max_new_tokens must be a positive integer"):
        streaming.stream_generate(model, tok, _inputs(tok), max_new_tokens=bad)


def test_unknown_streamer_lists_the_choices(smol):
    model, tok = smol
    with pytest.raises(LlmfoundError, match="unknown streamer 'websocket'; choose one of: iterator, stdout"):
        streaming.stream_generate(model, tok, _inputs(tok), streamer="websocket")
