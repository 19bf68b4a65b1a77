"""Lesson: a prompt and what the model writes after it must fit the model's positions; past them, refuse or cut.

SmolLM2-135M has 8,192 positions (``max_position_embeddings``). transformers runs a longer prompt anyway, past
what the model was trained on: a 9,000-word prompt to ``llmfound generate`` took 63 s to the first token, RSS
+1.1 GB, and wrote noise, with exit 0. So every path that feeds a prompt to a model counts the prompt's tokens
plus the new tokens against the limit, from the tokenizer alone, before the weights load (the CLI) or before the
forward pass (the Python pipeline), and refuses in one line: the limit, the prompt's length, what to do. A cut
happens only when asked (``--truncate``, ``truncation=True``) and keeps the END of the prompt's text, inside a
whole chat template (a turn cut at the front still ends in the question and the generation prompt).

Sections: the rule (``llmfound.context``); every command that takes a prompt; the Python pipeline; asking for a
cut. The cuts run on a synthetic-weight chat model with 256 positions (a contract model: its answers are noise),
so a prompt over the limit prefills in milliseconds; the refusals use the real SmolLM2 tokenizer and never load
its weights.
"""

from __future__ import annotations

import pytest

from llmfound import context
from llmfound import models
from llmfound.cli import main
from llmfound.errors import InputTooLongError

MODEL = "smollm2-135m-instruct"
LONG = "tokens are cheap until the context runs out " * 1125  # 9,000 words: 9,000+ SmolLM2 tokens


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def error_line(err: str) -> str:
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one error line, got:\n{err}"
    return lines[0]


@pytest.fixture
def no_weights(monkeypatch):
    """Loading a model's weights (or a pipeline) fails the spec: the refusal must come first."""
    from llmfound import pipelines as PL

    def loaded(*a, **kw):
        raise AssertionError("the model's weights were loaded before the prompt was counted")

    monkeypatch.setattr(models, "load_model", loaded)
    monkeypatch.setattr(PL, "pipeline", loaded)


# ============================================================================================== the rule


def test_max_positions_reads_the_config_and_ignores_an_unset_tokenizer_limit(require_assets):
    require_assets(MODEL)
    tok, config = models.load_tokenizer_and_config(MODEL)
    assert tok.model_max_length > 10**12, "SmolLM2's tokenizer leaves model_max_length unset"
    assert context.max_positions(config, tok) == 8192, context.max_positions(config, tok)


@pytest.mark.parametrize("prompt, new, fits", [(8064, 128, True), (8065, 128, False), (1, 8191, True),
                                               (0, 8193, False)])
def test_the_prompt_and_the_new_tokens_together_must_fit(prompt, new, fits):
    if fits:
        context.check_fits(prompt, new, 8192, model="m")
        return
    with pytest.raises(InputTooLongError) as e:
        context.check_fits(prompt, new, 8192, model="m", options=context.CLI)
    msg = str(e.value)
    assert "at most 8,192 tokens" in msg and f"{prompt:,} tokens" in msg, msg
    if new >= 8192:  # a cut cannot help: the new tokens alone fill the positions
        assert "lower --max-new-tokens" in msg and "--truncate" not in msg, msg
    else:
        assert "shorten the prompt, lower --max-new-tokens, or pass --truncate" in msg, msg


def test_no_known_limit_checks_nothing():
    context.check_fits(10**9, 10**9, None, model="m")


@pytest.mark.parametrize("budget", [30, 64, 200])
def test_keep_end_keeps_the_longest_end_that_fits_cut_at_a_token(synthetic_chat_model, budget):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(synthetic_chat_model())
    text = "The capital of France is Paris. " * 40
    count = lambda s: 7 + len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731 (7: a template's tokens)
    end = context.keep_end(text, tok, count, budget, model="m")
    starts = {a for a, _ in tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]}
    assert text.endswith(end) and len(text) - len(end) in starts, f"budget {budget}: not a cut at a token: {end!r}"
    assert count(end) <= budget, f"budget {budget}: {count(end)} tokens kept"
    longer = max(s for s in starts if s < len(text) - len(end))
    assert count(text[longer:]) > budget, f"budget {budget}: a longer end fits too ({count(text[longer:])} tokens)"


def test_keep_end_refuses_when_the_rest_of_the_input_alone_is_over_the_budget():
    with pytest.raises(InputTooLongError, match="does not fit even cut to nothing: the rest of the input"):
        context.keep_end("question", None, lambda s: 300 + len(s), 256, model="m")


# ================================================================================ every command with a prompt


def _prompt_file(tmp_path, text: str) -> str:
    path = tmp_path / "prompt.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("argv", [
    pytest.param(["generate", "--file", "{long}"], id="generate, 9,000 words"),
    pytest.param(["generate", "--file", "{mb}"], id="generate, 1 MB (the text limit)"),
    pytest.param(["generate", "--file", "{long}", "--quant", "4bit"], id="generate --quant 4bit"),
    pytest.param(["pipeline", "text-generation", "--file", "{long}"], id="pipeline text-generation"),
    pytest.param(["pipeline", "text-generation", "--file", "{long}", "--raw"], id="pipeline text-generation --raw"),
    pytest.param(["demo", "--prompt", LONG], id="demo --prompt"),
])
def test_a_prompt_over_the_positions_is_one_line_before_the_weights_load(argv, capsys, tmp_path, no_weights,
                                                                         require_assets, lesson):
    require_assets(MODEL)
    files = {"{long}": _prompt_file(tmp_path, LONG), "{mb}": _prompt_file(tmp_path, "word " * 200_000)}
    threads = [] if argv[0] == "demo" else ["--threads", "1"]
    code, out, err = run(capsys, *[files.get(a, a) for a in argv], *threads)
    line = error_line(err)
    assert code == 2 and out == "", (code, out)
    assert "smollm2-135m-instruct takes at most 8,192 tokens (its max positions)" in line, line
    n = int(line.split(" is ", 1)[1].split(" tokens", 1)[0].replace(",", ""))
    assert n > 8192, f"expected the prompt's length in tokens, got {line!r}"
    assert ("--truncate" in line) == (argv[0] != "demo") and "--max-new-tokens" in line, line
    lesson.count("commands that refuse a prompt over the positions", argv[0])


def test_demo_and_generate_refuse_max_new_tokens_that_leave_no_room(capsys, no_weights, require_assets):
    require_assets(MODEL)
    code, _, err = run(capsys, "generate", "Hi", "--max-new-tokens", "9000", "--truncate", "--threads", "1")
    line = error_line(err)
    assert code == 2 and "--max-new-tokens 9,000 leaves no room for the prompt" in line, line
    assert "--truncate" not in line.split(";")[1], f"a cut cannot help here: {line!r}"


# ======================================================================================= the Python pipeline


@pytest.fixture(scope="module")
def small_pipe(synthetic_chat_model):
    import llmfound

    return llmfound.pipeline("text-generation", model=str(synthetic_chat_model(256)))


@pytest.mark.parametrize("chat", [False, True], ids=["text", "chat"])
def test_the_python_pipeline_refuses_before_the_forward_pass(small_pipe, chat, monkeypatch):
    def forward(*a, **kw):
        raise AssertionError("the model ran on a prompt over its positions")

    monkeypatch.setattr(small_pipe.model, "generate", forward)
    prompt = [{"role": "user", "content": LONG}] if chat else LONG
    with pytest.raises(InputTooLongError) as e:
        small_pipe(prompt, max_new_tokens=4)
    msg = str(e.value)
    assert "takes at most 256 tokens" in msg and "lower max_new_tokens, or pass truncation=True" in msg, msg


@pytest.mark.parametrize("chat", [False, True], ids=["text", "chat"])
def test_truncation_true_keeps_the_end_of_the_prompt_and_says_so(small_pipe, chat, llmfound_log):
    import torch

    seen = []
    generate = small_pipe.model.generate

    def spy(*a, **kw):
        seen.append(kw["input_ids"].shape[-1])
        return generate(*a, **kw)

    small_pipe.model.generate = spy
    try:
        prompt = [{"role": "user", "content": LONG + "What is the capital of France?"}] if chat else LONG
        with torch.no_grad():
            out = small_pipe(prompt, max_new_tokens=4, truncation=True, return_full_text=False)
    finally:
        del small_pipe.model.generate
    assert seen and seen[0] <= 252, f"expected at most 256 - 4 prompt tokens fed, got {seen}"
    assert isinstance(out[0]["generated_text"], (str, list)), out
    said = [r.getMessage() for r in llmfound_log]
    assert any("truncation=True: the prompt was" in m and "kept its last" in m for m in said), said


# ============================================================================================ asking for a cut


@pytest.mark.parametrize("command", [["generate"], ["pipeline", "text-generation"]])
def test_truncate_keeps_the_end_of_the_prompt_inside_a_whole_template(command, capsys, tmp_path,
                                                                       synthetic_chat_model, monkeypatch):
    """The cut drops the front of the prompt's text, not of the rendered template: the prompt fed to the model
    still opens with the turn header and ends with the question and the generation prompt."""
    from llmfound import streaming

    folder = synthetic_chat_model(256)
    question = " What is the capital of France?"
    fed = []
    real = streaming.stream_generate

    def spy(model, tok, inputs, **kw):
        fed.append(tok.decode(inputs["input_ids"][0]))
        return real(model, tok, inputs, **kw)

    monkeypatch.setattr(streaming, "stream_generate", spy)
    code, out, err = run(capsys, *command, "--file", _prompt_file(tmp_path, LONG + question), "--model", str(folder),
                         "--max-new-tokens", "4", "--truncate", "--threads", "1")
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if ln.startswith("warning: --truncate: ")]
    assert len(warned) == 1 and "over the 256 positions" in warned[0], err
    kept = int(warned[0].rsplit(": ", 1)[1].split(" tokens")[0])
    assert kept <= 252, f"expected at most 256 - 4 tokens kept, got {warned[0]!r}"
    if fed:  # generate: the ids it fed, decoded
        whole = fed[0].startswith("<|im_start|>user\n") and fed[0].endswith(
            question + "<|im_end|>\n<|im_start|>assistant\n")
        assert whole, f"the template was cut: {fed[0][:60]!r}...{fed[0][-80:]!r}"
