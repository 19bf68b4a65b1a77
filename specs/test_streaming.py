"""Lesson: a streamed answer is exactly the generated answer, delivered piece by piece.

transformers' ``TextStreamer`` prints words as ``generate`` produces them; ``TextIteratorStreamer`` hands them
to another thread. Streaming must be faithful: the concatenated pieces equal ``decode`` of the new tokens,
the prompt is not repeated, a character whose bytes span several tokens is never shown half-done (U+FFFD),
generation stops at the model's end-of-turn token (and at each of a family's stop ids, not only the first), a
sampling request samples (seeded: reproducible, and not the greedy answer), and a failure inside the generating
thread reaches the caller instead of hanging it.

What the user reads never holds a special token: on every output path (both streamers, ``llmfound generate``
streamed and ``--no-stream``, the text-generation pipeline and ``llmfound pipeline``, the demo's streamed answer)
and for every family that generates, a contract model emitting the family's bos/pad/unk inside the answer and a
stop token at its end shows the answer alone, and the stop token comes back as the stop reason (``eos``), not as
text. The real SmolLM2 runs every path too; the whole demo is a slow spec.
"""

from __future__ import annotations

import functools
import re
import threading
import time

import pytest
import torch

from llmfound import chat, families, streaming, tokenization as T
from llmfound import models
from llmfound.errors import LlmfoundError

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol(smollm2):
    """The real SmolLM2 in bf16, ``(model, tokenizer)``: conftest's copy, loaded once per test process."""
    return smollm2("bf16")


def _inputs(tok, question="What is the capital of France?"):
    return chat.chat_inputs(tok, chat.conversation(question))


# ------------------------------------------------------------------------------------------ faithful


@pytest.fixture(scope="module")
def plain_generate(smol):
    """Greedy ``generate``'s own new ids for "Name three colors." (24 at most), without a streamer: computed once,
    the reference both streamers are compared with."""
    model, tok = smol
    inputs = _inputs(tok, "Name three colors.")
    return model.generate(**inputs, do_sample=False, max_new_tokens=24)[0, inputs["input_ids"].shape[-1]:].tolist()


@pytest.mark.parametrize("kind", streaming.STREAMERS)
def test_the_stream_equals_decode_of_the_new_tokens(smol, plain_generate, kind, capsys, lesson):
    model, tok = smol
    inputs = _inputs(tok, "Name three colors.")
    res = streaming.stream_generate(model, tok, inputs, max_new_tokens=24, streamer=kind)
    printed = capsys.readouterr().out
    expected = tok.decode(res.token_ids, skip_special_tokens=True)
    assert res.text == expected, f"{kind}: stream {res.text!r} != decode {expected!r}"
    if kind == "stdout":  # TextStreamer printed exactly that (plus a final newline)
        assert printed.rstrip("\n") == expected.rstrip("\n"), (printed, expected)
    # and it is greedy generate's own output
    assert res.token_ids == plain_generate, (f"{kind}: streamed ids {res.token_ids} differ from a plain generate's "
                                             f"{plain_generate}")
    lesson.count("streamers equal decode of the generated ids", kind)


def test_skip_prompt_leaves_only_new_text(smol):
    model, tok = smol
    inputs = _inputs(tok)
    res = streaming.stream_generate(model, tok, inputs, max_new_tokens=12)
    prompt_text = tok.decode(inputs["input_ids"][0], skip_special_tokens=True)
    assert "You are a helpful AI assistant" in prompt_text  # SmolLM2's template adds this system prompt
    assert "helpful AI assistant" not in res.text and not res.text.startswith("system"), res.text


@pytest.mark.parametrize("text", ["🙂 ok", "日本語のテキスト", "family: 👨‍👩‍👧 done", "é vs e\u0301"])
@pytest.mark.parametrize("kind", ["iterator", "stdout"])
def test_a_character_split_across_tokens_is_never_shown_half_done(smol, text, kind, capsys):
    """Byte-level BPE splits an emoji's 4 UTF-8 bytes across tokens; the streamer must hold them back. Each text
    really splits a character: some token decoded alone is part of one (U+FFFD) under SmolLM2's vocabulary
    ('é' is one token there; a combining acute accent, U+0301, after an 'e' is two)."""
    from transformers import TextIteratorStreamer, TextStreamer

    _, tok = smol
    ids = tok.encode(text, add_special_tokens=False)
    alone = [tok.decode([i]) for i in ids]
    assert any("\ufffd" in a for a in alone), (f"smollm2: input {text!r}: expected a character split across "
                                               f"tokens (a token decoding alone to U+FFFD), got {alone!r}")
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


# ------------------------------------------------------------------------------------------ what the user reads
# Field report: streaming front-ends shipped <|im_end|>, <|eot_id|> and similar markers to their users when one
# decode call lost skip_special_tokens=True; an answer that still says "Paris" and a stream that still equals decode
# do not notice. So every output path a user reads is checked, for every family that generates (every row with an
# eos; BERT is an encoder), with the family's real tokenizer and a CONTRACT model: a stand-in whose generate emits a
# fixed id sequence holding the family's special tokens. It is never a real model; the real SmolLM2 runs each path
# below it.

ROWS = {f.name: f for f in families.FAMILIES}
GENERATIVE = [f.name for f in families.FAMILIES if f.tokens.eos]
PROMPT, ANSWER = "What is the capital of France?", "The capital of France is Paris."


def _stop_ids(row) -> tuple[int, ...]:
    """The ids generation stops at: the published generation_config's eos ids, else the eos."""
    return row.traits.generation_eos_ids or (row.tokens.eos[1],)


def _special_strings(row, tok) -> set[str]:
    """Every special-token string of the family: its matrix cells, its end of turn, and every special token its
    tokenizer declares (Mistral Tekken's backend: ``all_special_tokens``)."""
    declared = getattr(tok, "added_tokens_decoder", None)
    declared = ({t.content for t in declared.values() if t.special} if isinstance(declared, dict)
                else set(tok.all_special_tokens))
    t = row.tokens
    cells = {c[0] for c in (t.bos, t.eos, t.pad, t.unk, t.cls, t.sep) if c}
    return cells | declared | ({row.traits.end_of_turn} if row.traits.end_of_turn else set())


def _script(row, tok, stop: int) -> tuple[list[int], str]:
    """``(ids the contract model emits, the text the user must read)``: the answer, with each special token of the
    row that does not stop generation (bos, pad, unk, an eos or end of turn that is not a stop id) spliced into its
    middle, then the stop token ``stop``."""
    words = T.encode(tok, ANSWER)
    t = row.tokens
    cells = [c[1] for c in (t.bos, t.eos, t.pad, t.unk) if c] + [t.end_of_turn_id]
    inner = [i for i in dict.fromkeys(cells) if i is not None and i not in _stop_ids(row)]
    return words[:len(words) // 2] + inner + words[len(words) // 2:] + [stop], T.decode(tok, words)


def contract_model(tok, script: list[int], stops: tuple[int, ...]):
    """A CONTRACT model, not a real one: a 1-layer Llama of random weights sized to ``tok`` (so a pipeline or the CLI
    can place and measure it) whose ``generate`` ignores the weights and emits ``script`` (at most
    ``max_new_tokens`` of it) as transformers' generate does: the prompt to the streamer first, then one id at a
    time, then ``end()``; it returns prompt + new ids. Its generation config stops at ``stops``.

    The model is built once per (tokenizer, stops) (a 262k-row embedding takes its time to initialise) and handed
    out with ``script`` and a fresh copy of that generation config each time; its weights are never read."""
    import copy

    model, config = _contract_model(tok, tuple(stops))
    model.script, model.generation_config = list(script), copy.deepcopy(config)
    return model


@functools.cache
def _contract_model(tok, stops: tuple[int, ...]):
    """``(the model, its generation config as built)`` for :func:`contract_model`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    class ContractModel(LlamaForCausalLM):
        script: list[int] = []

        def generate(self, input_ids=None, attention_mask=None, streamer=None, max_new_tokens=None, **kw):
            new = self.script[:max_new_tokens]
            if streamer is not None:
                streamer.put(input_ids.cpu())
                for i in new:
                    streamer.put(torch.tensor([i]))
                streamer.end()
            return torch.cat([input_ids, torch.tensor([new], dtype=input_ids.dtype, device=input_ids.device)], 1)

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=4, intermediate_size=4, num_hidden_layers=1,
                      num_attention_heads=1, num_key_value_heads=1, tie_word_embeddings=True, eos_token_id=list(stops))
    model = ContractModel(cfg).eval()
    model.generation_config.eos_token_id = list(stops)
    return model, model.generation_config


@functools.cache
def _family_tokenizer(family: str):
    """The family's tokenizer holding its chat template, as a model folder's does (a template that ships as a
    separate file is set on a shallow copy, never on the shared one: the copy shares its vocabulary instead of
    loading it again)."""
    import copy

    shared = T.load_tokenizer(family)
    if chat.template_path(family) is None:
        return shared
    before, tok = shared.chat_template, copy.copy(shared)
    tok.chat_template = chat.template_source(family)
    assert shared.chat_template is before, f"{family}: setting the copy's template changed the shared tokenizer's"
    return tok


def _prompt(tok):
    """The question as generate's inputs: one chat turn where the tokenizer has a template, else plain text."""
    if getattr(tok, "chat_template", None):
        return _inputs(tok, PROMPT)
    return {"input_ids": torch.tensor([T.encode(tok, PROMPT, add_special_tokens=True)])}


def _reported_stop(stderr: str) -> str | None:
    m = re.search(r"stop: (\w+)", stderr)
    return m and m.group(1)


def _streamer(kind: str):
    def run(model, tok, capsys, monkeypatch):  # iterator: what on_text is handed; stdout: what TextStreamer prints
        pieces: list[str] = []
        res = streaming.stream_generate(model, tok, _prompt(tok), max_new_tokens=64, streamer=kind,
                                        on_text=pieces.append if kind == "iterator" else None)
        shown = "".join(pieces) if kind == "iterator" else capsys.readouterr().out.removesuffix("\n")
        return shown, res.stop_reason, res.stop_token_id
    return run


def _main_on_one_thread(args: list[str]) -> None:
    """Run the CLI in process with ``--threads 1`` (the thread chooser, which samples the cores for 0.2 s, has
    specs of its own) and give the worker back its thread count."""
    from llmfound.cli import main

    threads = torch.get_num_threads()
    try:
        assert main([*args, "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)


def _cli_generate(*flags: str):
    def run(model, tok, capsys, monkeypatch):
        monkeypatch.setattr(models, "load_tokenizer_and_config", lambda ref: (tok, model.config))
        monkeypatch.setattr(models, "load_model", lambda *a, **kw: (model, tok))
        _main_on_one_thread(["generate", PROMPT, "--max-new-tokens", "64", *flags])
        cap = capsys.readouterr()
        return cap.out.removesuffix("\n"), _reported_stop(cap.err), None
    return run


def _pipeline(cli: bool):
    def run(model, tok, capsys, monkeypatch):  # llmfound.pipeline's own loading is replaced by the model given
        from llmfound import pipelines as PL

        monkeypatch.setattr(PL.factory, "load", lambda task, ref, dtype=None: (model, tok, ref))
        monkeypatch.setattr(models, "load_tokenizer_and_config", lambda ref: (tok, model.config))
        if cli:
            _main_on_one_thread(["pipeline", "text-generation", PROMPT, "--model", "given", "--max-new-tokens", "64"])
            return capsys.readouterr().out.removesuffix("\n"), None, None
        asked = [{"role": "user", "content": PROMPT}] if getattr(tok, "chat_template", None) else PROMPT
        got = PL.pipeline("text-generation", model="given")(asked, max_new_tokens=64, do_sample=False,
                                                             return_full_text=False)
        return got[0]["generated_text"], None, None
    return run


def _demo(model, tok, capsys, monkeypatch):
    from llmfound import demo
    from llmfound.cli.terminal import err

    res = demo.stream_answer(model, tok, PROMPT, max_new_tokens=64, err=err)
    cap = capsys.readouterr()
    return cap.out.removesuffix("\n"), _reported_stop(cap.err), res.stop_token_id


OUTPUT_PATHS = {
    "stream_generate(streamer='iterator')": (_streamer("iterator"), False, True),
    "stream_generate(streamer='stdout')": (_streamer("stdout"), False, True),
    "llmfound generate": (_cli_generate(), True, True),
    "llmfound generate --no-stream": (_cli_generate("--no-stream"), True, True),
    "pipeline('text-generation')": (_pipeline(cli=False), False, False),
    "llmfound pipeline text-generation": (_pipeline(cli=True), False, False),
    "llmfound demo (step 4: demo.stream_answer)": (_demo, True, True),
}
"""Every output path a user reads: name -> (run it and return (text shown, stop reason reported, stop token id
reported), needs a chat template, reports a stop reason). The demo's whole run is the slow spec below."""


def _output_params():
    for path, (_, needs_template, _) in OUTPUT_PATHS.items():
        for family in GENERATIVE:
            if needs_template and not ROWS[family].template:
                continue  # generate and the demo chat: a family without a template cannot be asked
            for stop in _stop_ids(ROWS[family]):
                yield pytest.param(path, family, stop, id=f"{path}-{family}-{stop}")


def _check_shown(who: str, path: str, row, tok, shown: str, expected: str | None) -> None:
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    leaked = sorted(s for s in _special_strings(row, tok) if s in shown)
    ok = not leaked and (shown == expected if expected is not None else "Paris" in shown)
    assert ok, (f"{who}: {path}: expected {expected or 'an answer naming Paris'!r} and no special token, got "
                f"{shown!r}" + (f"; special tokens shown: {leaked}" if leaked else ""))


@pytest.mark.parametrize("path, family, stop", list(_output_params()))
def test_no_special_token_reaches_the_reader_on_any_output_path(path, family, stop, require_assets, capsys,
                                                               monkeypatch, lesson):
    """The contract model emits the answer with the family's bos/pad/unk (and an eos that does not stop) inside it
    and a stop token at the end: the reader gets the answer alone, and the stop token comes back as the stop
    reason, not as text."""
    row = ROWS[family]
    require_assets(*row.sources)
    tok = _family_tokenizer(family)
    script, visible = _script(row, tok, stop)
    run, _, reports_stop = OUTPUT_PATHS[path]
    shown, reason, stop_id = run(contract_model(tok, script, _stop_ids(row)), tok, capsys, monkeypatch)
    _check_shown(f"{family} (contract model)", path, row, tok, shown, visible)
    if reports_stop:
        assert (reason, stop_id in (None, stop)) == ("eos", True), (
            f"{family}: {path}: expected stop reason 'eos' (id {stop}), got {reason!r} (id {stop_id})")
    lesson.count("(family, output path) pairs show no special token", f"{family}:{path}")


@pytest.mark.parametrize("path", list(OUTPUT_PATHS))
def test_the_real_smollm2_shows_no_special_token_on_any_output_path(path, smol, capsys, monkeypatch):
    model, tok = smol
    row = ROWS["smollm2"]
    run, _, reports_stop = OUTPUT_PATHS[path]
    shown, reason, stop_id = run(model, tok, capsys, monkeypatch)
    _check_shown("smollm2 (real model)", path, row, tok, shown, None)
    if reports_stop:
        assert (reason, stop_id in (None, row.tokens.end_of_turn_id)) == ("eos", True), (
            f"smollm2: {path}: expected stop reason 'eos' ({row.traits.end_of_turn!r}), got {reason!r} (id {stop_id})")


@pytest.mark.slow
def test_the_real_demo_streams_its_answer_without_special_tokens(require_assets, capsys):
    """The whole ``llmfound demo`` (four model loads, three quantized: ~20 s on 2 cores): its step-4 answer, between
    the step headings, holds no special token of SmolLM2 and names Paris; the 4-bit model ends it with <|im_end|>
    after ~49 tokens (so 128 are allowed, not the default 48), which stderr reports as "stop: eos"."""
    from llmfound.cli import main

    require_assets(MODEL)
    assert main(["demo", "--max-new-tokens", "128"]) == 0
    cap = capsys.readouterr()
    answer = cap.out.split("4. Streaming the 4-bit model's answer", 1)[1].split("5. The notes' streaming code")[0]
    answer = answer.split("\n", 1)[1]  # after the heading's line
    _check_shown("smollm2 (real model)", "llmfound demo", ROWS["smollm2"], T.load_tokenizer("smollm2"),
                 answer, None)
    assert _reported_stop(cap.err) == "eos", f"smollm2: llmfound demo: expected 'stop: eos' on stderr, got {cap.err!r}"


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


class _EndlessModel:
    """A stand-in for a model whose generate streams one token every 5 ms, for at most 10 s, checking its
    stopping criteria after each token as transformers' generate does (contract spec)."""

    def __init__(self, tok):
        self.tok, self.steps = tok, 0
        self.generation_config = type("G", (), {"eos_token_id": 2})()

    def generate(self, input_ids=None, attention_mask=None, streamer=None, stopping_criteria=None, **kw):
        word = self.tok.encode(" Paris", add_special_tokens=False)[0]
        streamer.put(input_ids[0])  # the prompt (skipped)
        ids = input_ids
        for self.steps in range(1, 2001):
            ids = torch.cat([ids, torch.tensor([[word]])], 1)
            streamer.put(torch.tensor([word]))
            if stopping_criteria is not None and bool(stopping_criteria(ids, None).all()):
                break
            time.sleep(0.005)
        streamer.end()
        return ids


def test_ctrl_c_while_streaming_stops_the_generating_thread_before_it_propagates(smol):
    """Ctrl-C reaches the main thread, which reads the stream; the thread running generate must stop too.
    Left running inside torch while the interpreter exits, it aborted ``llmfound generate`` with exit 134
    ("terminate called without an active exception") instead of 130. stream_generate sets a stopping criterion
    and joins the thread before the KeyboardInterrupt goes on (``specs/test_cli.py`` sends a real SIGINT)."""
    _, tok = smol
    model, pieces = _EndlessModel(tok), []

    def reader(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        streaming.stream_generate(model, tok, _inputs(tok), max_new_tokens=5000, on_text=reader)
    alive = [t.name for t in threading.enumerate() if t.name == "llmfound-generate" and t.is_alive()]
    assert not alive, f"the generating thread still runs after Ctrl-C ({model.steps} tokens so far)"
    assert model.steps < 100, f"generate went on for {model.steps} tokens after Ctrl-C"


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "8"])
def test_max_new_tokens_must_be_a_positive_integer(smol, bad):
    model, tok = smol
    with pytest.raises(LlmfoundError, match="max_new_tokens must be a positive integer"):
        streaming.stream_generate(model, tok, _inputs(tok), max_new_tokens=bad)


def test_unknown_streamer_lists_the_choices(smol):
    model, tok = smol
    with pytest.raises(LlmfoundError, match="unknown streamer 'websocket'; choose one of: iterator, stdout"):
        streaming.stream_generate(model, tok, _inputs(tok), streamer="websocket")


# ------------------------------------------------------------------------------------------ what generate is asked
# Two settings a release could drop without any answer above changing: the stop ids after the first (Llama 3
# Instruct stops on <|end_of_text|> and <|eot_id|>), and sampling (a request for it decoded greedily). Here
# transformers' real generate loop runs, on a CONTRACT model (random weights) whose logits a processor scripts, so
# each step's token is known; and on the real SmolLM2 for sampling.

MULTI_STOP = [(f.name, i) for f in families.FAMILIES if len(f.traits.generation_eos_ids) > 1
              for i in f.traits.generation_eos_ids]


class _Script:
    """A logits processor that makes step ``k`` emit ``script[k]`` (every other logit -inf): the run's tokens are
    known in advance, whatever the weights are."""

    def __init__(self, prompt_len: int, script: list[int]):
        self.prompt_len, self.script = prompt_len, script

    def __call__(self, input_ids, scores):
        k = min(input_ids.shape[-1] - self.prompt_len, len(self.script) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.script[k]] = 0.0
        return forced


@pytest.mark.parametrize("family, stop", MULTI_STOP, ids=[f"{f}-{i}" for f, i in MULTI_STOP])
def test_generation_stops_on_every_stop_id_not_only_the_first(family, stop, require_assets, lesson):
    """Each of a family's published stop ids ends generation on its own, through transformers' generate: the
    scripted run emits two words, ``stop``, then words that must never come."""
    from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

    row = ROWS[family]
    require_assets(*row.sources)
    tok = T.load_tokenizer(family)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                      num_attention_heads=1, num_key_value_heads=1)
    model = LlamaForCausalLM(cfg).eval()  # a contract model: its weights never decide a token here
    model.generation_config.eos_token_id = list(row.traits.generation_eos_ids)
    words = T.encode(tok, " Paris is big")[:3]
    script = words[:2] + [stop] + words[2:] * 8
    prompt = {"input_ids": torch.tensor([T.encode(tok, PROMPT)])}
    stops = row.traits.generation_eos_ids
    res = streaming.stream_generate(model, tok, prompt, max_new_tokens=10, pad_token_id=stops[0],
                                    logits_processor=LogitsProcessorList([_Script(prompt["input_ids"].shape[-1],
                                                                                  script)]))
    assert (res.token_ids, res.stop_reason) == (script[:3], "eos"), (
        f"{family}: stop ids {list(stops)}, scripted {script[:3]} then more: expected generation "
        f"to end at {stop}, got {res.token_ids} (stop: {res.stop_reason})")
    lesson.count("(family, stop id) pairs that end generation", f"{family}:{stop}")


def test_sampling_is_seeded_reproducible_and_not_greedy(smol):
    """``do_sample=True`` with a temperature samples: the same seed gives the same answer, another seed another,
    and neither is the greedy one. A release that dropped ``do_sample`` (or the temperature) would return the
    greedy tokens every time."""
    model, tok = smol

    def sample(seed=None):
        kw = dict(do_sample=True, temperature=1.5, top_k=0, top_p=1.0) if seed is not None else {}
        if seed is not None:
            torch.manual_seed(seed)
        return streaming.stream_generate(model, tok, _inputs(tok, "Name a colour."), max_new_tokens=12, **kw).token_ids

    greedy, first, again, other = sample(), sample(1), sample(1), sample(2)
    assert first == again, f"smollm2, seed 1 twice: expected the same tokens, got {first} and {again}"
    assert first != greedy and other != greedy, f"smollm2, sampling at T=1.5 gave the greedy tokens {greedy}"
    assert first != other, f"smollm2, seeds 1 and 2 gave the same tokens {first}"


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
    """``llmfound generate`` on the real SmolLM2, in process; the model it loads is the one already loaded (loading
    is not what is checked here, and its own specs load it)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("on the GPU generate leaves torch's CPU threads alone")

    from llmfound.cli import main

    model, tok = smol
    monkeypatch.setattr(models, "load_tokenizer_and_config", lambda ref: (tok, model.config))
    monkeypatch.setattr(models, "load_model", lambda *a, **kw: (model, tok))
    before = torch.get_num_threads()
    picked = streaming.ThreadChoice(threads=1, cores=2, busy=1.0, source="given")
    monkeypatch.setattr(streaming, "choose_threads", lambda **kw: picked)
    try:
        torch.set_num_threads(2)  # not the pick: only applying it gives 1
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
