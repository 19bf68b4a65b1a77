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
def test_the_stream_equals_decode_of_the_new_tokens(smol, kind, capsys, lesson):
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
    lesson.count("streamers equal decode of the generated ids", kind)


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


# ------------------------------------------------------------------------------------------ CPU threads
# torch's default (one thread per core) crawls when another process holds a core: measured 1.0-3.8 tok/s with
# 2 threads vs 19.6 with 1 on the 2-core machine (docs/generation-speed.md). The chooser's inputs are injected
# here, so these specs are exact; speed itself is measured by benchmarks/generation.py --compare-threads.


@pytest.mark.parametrize("cores, busy, threads", [
    pytest.param(2, 0.0, 2, id="idle 2 cores: both"),
    pytest.param(2, 0.1, 2, id="2 cores, light noise: both"),
    pytest.param(2, 0.25, 2, id="2 cores, a quarter of one taken: both"),
    pytest.param(2, 0.3, 1, id="2 cores, a third of one taken: 1"),
    pytest.param(2, 1.0, 1, id="2 cores, one busy-looping process: 1"),
    pytest.param(2, 0.7, 1, id="2 cores, most of one core taken: 1"),
    pytest.param(2, 2.0, 1, id="2 cores, both busy: still 1"),
    pytest.param(2, 5.0, 1, id="more busy than cores (clipped): 1"),
    pytest.param(2, -0.5, 2, id="negative busy (clipped): both"),
    pytest.param(1, 0.0, 1, id="one core: 1"),
    pytest.param(8, 3.0, 5, id="8 cores, 3 busy: 5"),
    pytest.param(8, 2.6, 5, id="8 cores, 2.6 busy: 5"),
    pytest.param(8, 2.2, 6, id="8 cores, 2.2 busy: 6"),
])
def test_the_chooser_takes_one_thread_per_core_that_others_leave_free(cores, busy, threads):
    choice = streaming.choose_threads(cores=cores, busy=busy)
    assert choice.threads == threads, f"{cores} cores, {busy} busy: expected {threads} threads, got {choice}"
    assert streaming.threads_for(cores, busy) == threads
    assert (choice.cores, choice.source) == (cores, "given") and 0 <= choice.busy <= cores


def _stat(*cpus: tuple[int, ...]) -> str:
    """/proc/stat text: an aggregate line (to be ignored), then one cpuN line per tuple of 8 tick counts."""
    lines = ["cpu  999999 0 999999 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} " + " ".join(map(str, t)) + " 0 0" for i, t in enumerate(cpus)]
    return "\n".join(lines + ["intr 1 2 3", "procs_running 2"]) + "\n"


#           user nice system idle iowait irq softirq steal
IDLE_100 = (0,   0,   0,     100, 0,     0,  0,      0)
BUSY_100 = (80,  5,   15,    0,   0,     0,  0,      0)


def _snapshots(*texts: str):
    it = iter(texts)
    return lambda: next(it)


def test_busy_cores_are_the_non_idle_share_of_the_ticks_between_two_reads():
    zero = (0,) * 8
    read = _snapshots(_stat(zero, zero, zero), _stat(BUSY_100, IDLE_100, BUSY_100))
    busy, source = streaming.busy_cores(0.2, cpus={0, 1}, read_stat=read, sleep=lambda s: None)
    assert busy == pytest.approx(1.0), f"cpu0 busy, cpu1 idle (cpu2 not ours): expected 1.0 core, got {busy}"
    assert source == "/proc/stat over 0.2 s"


def test_iowait_counts_as_idle_and_steal_as_busy():
    zero = (0,) * 8
    waiting = (0, 0, 0, 50, 50, 0, 0, 0)  # half idle, half waiting on the disk: the core is free for us
    stolen = (0, 0, 0, 50, 0, 0, 0, 50)  # the hypervisor ran someone else half the time: half taken
    read = _snapshots(_stat(zero, zero), _stat(waiting, stolen))
    busy, _ = streaming.busy_cores(0.1, cpus={0, 1}, read_stat=read, sleep=lambda s: None)
    assert busy == pytest.approx(0.5), f"expected 0.5 core (steal only), got {busy}"


def test_without_proc_stat_the_load_average_is_used_then_idle_is_assumed(monkeypatch):
    def missing():
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr(streaming.os, "getloadavg", lambda: (1.2, 0.8, 0.5))
    assert streaming.busy_cores(cpus={0, 1}, read_stat=missing, sleep=lambda s: None) == (
        1.2, "os.getloadavg() 1-min")

    def no_loadavg():
        raise OSError("no load average")

    monkeypatch.setattr(streaming.os, "getloadavg", no_loadavg)
    assert streaming.busy_cores(cpus={0, 1}, read_stat=missing, sleep=lambda s: None) == (
        0.0, "unknown: assumed idle")


def test_generate_uses_the_chooser_unless_threads_is_given(smol, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on the GPU generate leaves torch's CPU threads alone")

    from llmfound.cli import main

    before = torch.get_num_threads()
    picked = streaming.ThreadChoice(threads=1, cores=2, busy=1.0, source="given")
    monkeypatch.setattr(streaming, "choose_threads", lambda **kw: picked)
    try:
        assert main(["generate", "hi", "--max-new-tokens", "2"]) == 0
        err = capsys.readouterr().err
        assert torch.get_num_threads() == 1 and "threads 1 (auto: 1.0 of 2 cores busy)" in err, err

        def must_not_run(**kw):
            raise AssertionError("--threads given: the chooser must not run")

        monkeypatch.setattr(streaming, "choose_threads", must_not_run)
        assert main(["generate", "hi", "--max-new-tokens", "2", "--threads", "2"]) == 0
        err = capsys.readouterr().err
        assert torch.get_num_threads() == 2 and "threads 2 (--threads)" in err, err
    finally:
        torch.set_num_threads(before)
