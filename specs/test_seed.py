"""Lesson: the course notes' five code blocks, run as written on today's libraries, line by line.

The notes end with five blocks: a sentiment pipeline on cuda, the Llama 3 tokenizer, a chat template, a 4-bit
double-quant model load, streamed generation. A learner copies them first. Each section below runs a block as
written (hub ids replaced by llmfound's offline stand-ins: ``meta-llama/Meta-Llama-3-8B`` -> the ``llama3-base``
family, the chat model -> the real SmolLM2-135M-Instruct), asserts exactly what happens with transformers 5.23 and
bitsandbytes 0.50 (the result, or the exception and its message), then runs the corrected line and says why.

1. ``pipeline("sentiment-analysis")("I love open-source LLMs!")`` on a real model llmfound makes offline
   (all-MiniLM-L6-v2 + a head trained on 200 labelled sentences), on the CPU and, in the GPU tier, on
   ``device="cuda"`` as written; without CUDA that is one line; the notes' ``qa`` and ``image-generation``
   task names;
2. ``tokenizer.encode`` adds BOS, and ``decode`` shows it: ``skip_special_tokens=True`` hides it;
3. Meta-Llama-3-8B's (base) tokenizer has no chat template: chat with the Instruct model's;
4. ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)`` is FP4 with float32 compute, not NF4;
5. ``apply_chat_template(..., return_tensors="pt")`` returns a ``BatchEncoding`` in transformers 5, which
   ``generate(inputs)`` cannot take; without a generation prompt the model continues the user's turn; without
   ``skip_prompt=True`` ``TextStreamer`` prints the prompt too.
"""

from __future__ import annotations

import re

import pytest
import torch

from llmfound import families, quantization as Q, synthetic as S, tokenization

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}]


# ================================================================================ 1. pipelines


SEED_SENTENCE = "I love open-source LLMs!"


def test_1_the_sentiment_line_runs_on_a_real_model(require_assets):
    """As written, minus the device: ``pipeline("sentiment-analysis")("I love open-source LLMs!")``. No package
    ships a fine-tuned classifier, so llmfound makes one from real parts (conversion ``minilm-l6-sentiment``:
    docs/pipelines.md) and the line runs offline: transformers' output shape, POSITIVE. Its score (about 0.6)
    is a softmax over two labels from a head trained on 200 sentences, not a confidence in the answer."""
    import llmfound

    require_assets("minilm-l6-sentiment")
    out = llmfound.pipeline("sentiment-analysis")(SEED_SENTENCE)
    assert isinstance(out, list) and len(out) == 1 and set(out[0]) == {"label", "score"}, out
    assert out[0]["label"] == "POSITIVE" and 0.5 < out[0]["score"] < 1.0, f"{SEED_SENTENCE!r}: got {out}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the gpu tier runs the line on it")
def test_1_device_cuda_without_cuda_is_one_line():
    """As written: ``pipeline("sentiment-analysis", device="cuda")`` on a machine without CUDA. transformers
    would fail deep in torch; llmfound says so in one line, before loading the model, and how to ask for the CPU."""
    import llmfound
    from llmfound.errors import NoCudaError

    with pytest.raises(NoCudaError) as e:
        llmfound.pipeline("sentiment-analysis", device="cuda")
    msg = str(e.value)
    assert "\n" not in msg and "no CUDA device" in msg and "device='cpu'" in msg, msg


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: run `pytest -m gpu` on a machine with an "
                                                          "NVIDIA GPU")
def test_1_the_sentiment_line_as_written_on_cuda(require_assets):
    """As written: ``pipeline("sentiment-analysis", device="cuda")("I love open-source LLMs!")``. The model is
    made on the CPU (about 10 s) from the 88 MB encoder in the asset cache: without the cache it skips, naming
    ``llmfound assets fetch minilm-l6-sentiment``. Same label as the CPU, score within 1e-3."""
    import llmfound

    require_assets("minilm-l6-sentiment")
    gpu = llmfound.pipeline("sentiment-analysis", device="cuda")
    assert next(gpu.model.parameters()).device.type == "cuda"
    on_gpu, on_cpu = gpu(SEED_SENTENCE)[0], llmfound.pipeline("sentiment-analysis")(SEED_SENTENCE)[0]
    assert on_gpu["label"] == on_cpu["label"] == "POSITIVE", (on_gpu, on_cpu)
    assert abs(on_gpu["score"] - on_cpu["score"]) < 1e-3, (on_gpu, on_cpu)


@pytest.mark.parametrize("name, says", [
    ("qa", "transformers' name for this task is 'question-answering'"),
    ("image-generation", "transformers has no image-generation pipeline: generating images is diffusers' job"),
])
def test_1_the_notes_task_names_that_transformers_does_not_use(name, says):
    """The notes list ``qa`` and ``image-generation``; transformers' ``pipeline`` knows neither (``KeyError:
    Unknown task``). llmfound names the real task, or the library that does it."""
    from transformers import pipeline as transformers_pipeline

    import llmfound
    from llmfound.errors import UnknownNameError

    with pytest.raises(KeyError, match=f"Unknown task {name}"):
        transformers_pipeline(name)
    with pytest.raises(UnknownNameError, match=re.escape(says)):
        llmfound.pipeline(name)


# ================================================================================ 2. the Llama 3 tokenizer


@pytest.fixture(scope="module")
def llama3_base(require_assets):
    """Stand-in for ``AutoTokenizer.from_pretrained("meta-llama/Meta-Llama-3-8B")`` (see the family row's notes)."""
    require_assets(*families.get_family("llama3-base").sources)
    return tokenization.load_tokenizer("llama3-base")


def test_2_encode_adds_the_bos_token_and_decode_shows_it(llama3_base):
    """As written: ``tokens = tokenizer.encode("Hello LLM Engineers!")`` then ``tokenizer.decode(tokens)``. The ids
    (Meta's own encoder gives the same) start with 128000, ``<|begin_of_text|>``, which decode prints as text."""
    tokens = llama3_base.encode("Hello LLM Engineers!")
    assert tokens == [128000, 9906, 445, 11237, 49796, 0], f"llama3-base 'Hello LLM Engineers!': got {tokens}"
    shown = llama3_base.decode(tokens)
    assert shown == "<|begin_of_text|>Hello LLM Engineers!", f"decode as written: got {shown!r}"
    # fixed: special tokens are markup for the model, not text for a reader
    assert llama3_base.decode(tokens, skip_special_tokens=True) == "Hello LLM Engineers!"


# ================================================================================ 3. the chat template


def test_3_a_base_tokenizer_has_no_chat_template(llama3_base, require_assets):
    """As written: ``tokenizer.apply_chat_template(messages, tokenize=False)`` on the base tokenizer. Of Meta's two
    Llama 3 8B releases only Meta-Llama-3-8B-Instruct ships a chat template (the format it was trained on);
    Meta-Llama-3-8B's tokenizer_config.json has none, so transformers raises. That is this release's choice, not
    a rule for base models: Qwen1.5-7B, a base model, ships a ChatML template (docs/sources.md)."""
    with pytest.raises(ValueError, match="Cannot use chat template functions because tokenizer.chat_template is "
                                         "not set"):
        llama3_base.apply_chat_template(MESSAGES, tokenize=False)
    # fixed: the instruct tokenizer (Meta-Llama-3-8B-Instruct), with the generation prompt so the model answers
    require_assets(*families.get_family("llama3").sources)
    text = tokenization.load_tokenizer("llama3").apply_chat_template(MESSAGES, tokenize=False,
                                                                 add_generation_prompt=True)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n"), text[-80:]


# ================================================================================ 4. the 4-bit model


def test_4_the_notes_4bit_config_is_fp4_with_float32_compute():
    """As written: ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)``. transformers fills
    in its defaults: ``bnb_4bit_quant_type="fp4"`` and ``bnb_4bit_compute_dtype=torch.float32``. QLoRA's NF4
    (``bnb_4bit_quant_type="nf4"``) fits normally distributed weights better; bf16 compute halves the
    activations. Both formats store the same bits, so the footprint is the same (llmfound preset ``seed``)."""
    from transformers import BitsAndBytesConfig

    as_written = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)
    got = (as_written.bnb_4bit_quant_type, as_written.bnb_4bit_compute_dtype, as_written.bnb_4bit_use_double_quant)
    assert got == ("fp4", torch.float32, True), f"the notes' config: expected fp4 / float32 / double quant, got {got}"
    assert Q.bnb_config("seed").to_dict() == as_written.to_dict(), "the seed preset must be the notes' line exactly"
    fixed = Q.bnb_config("nf4-dq")
    assert (fixed.bnb_4bit_quant_type, fixed.bnb_4bit_compute_dtype) == ("nf4", torch.bfloat16)
    cfg = S.synthetic_llama_config("tiny")
    assert Q.expected_footprint(cfg, "seed").total == Q.expected_footprint(cfg, "nf4-dq").total


# ================================================================================ 5. streamed generation


@pytest.fixture(scope="module")
def smol(smollm2):
    """SmolLM2 in bf16, ``(model, tokenizer)``: conftest's load, shared with the quantization and quality lessons
    on this worker (nothing here changes it)."""
    return smollm2("bf16")


def test_5_apply_chat_template_returns_a_batch_encoding_that_generate_cannot_take(smol):
    """As written: ``inputs = tokenizer.apply_chat_template(messages, return_tensors="pt")`` then
    ``model.generate(inputs, max_new_tokens=80, streamer=TextStreamer(tokenizer))``. In transformers 5 the first
    call returns a ``BatchEncoding`` (input_ids and attention_mask), and ``generate`` fails on it with an
    ``AttributeError`` whose message is empty."""
    from transformers import BatchEncoding, TextStreamer

    model, tok = smol
    inputs = tok.apply_chat_template(MESSAGES, return_tensors="pt")
    assert isinstance(inputs, BatchEncoding), f"expected a BatchEncoding, got {type(inputs).__name__}"
    with pytest.raises(AttributeError) as e:
        model.generate(inputs, max_new_tokens=4, streamer=TextStreamer(tok))
    assert str(e.value) == "", f"transformers 5.23 raised an AttributeError with a message now: {str(e.value)!r}"


def test_5_fixed_unpack_the_inputs_add_the_generation_prompt_and_skip_the_prompt(smol, capsys):
    """Fixed: ``add_generation_prompt=True`` (else the model continues the user's turn), ``return_dict=True`` and
    ``generate(**inputs, ...)``, and ``TextStreamer(tokenizer, skip_prompt=True)`` (else it prints the prompt)."""
    from transformers import TextStreamer

    model, tok = smol
    inputs = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    model.generate(**inputs, max_new_tokens=8, do_sample=False, streamer=TextStreamer(tok))
    echoed = capsys.readouterr().out
    assert "<|im_start|>user" in echoed or "What is the capital of France?" in echoed, (
        f"without skip_prompt, TextStreamer prints the prompt too; got {echoed!r}")
    model.generate(**inputs, max_new_tokens=8, do_sample=False, streamer=TextStreamer(tok, skip_prompt=True))
    answer = capsys.readouterr().out
    assert "capital of France?" not in answer and "Paris" in answer, f"skip_prompt=True: got {answer!r}"


@pytest.mark.parametrize("form", ["BatchEncoding", "tensor"])
def test_5_llmfound_streams_from_what_apply_chat_template_returns(smol, form):
    """llmfound's own path takes the ``BatchEncoding`` as it comes (and transformers 4's bare id tensor), so the
    notes' first line works unchanged there; anything else is one line naming ``**inputs``."""
    from llmfound import streaming

    model, tok = smol
    enc = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    inputs = enc if form == "BatchEncoding" else enc["input_ids"]
    res = streaming.stream_generate(model, tok, inputs, max_new_tokens=8)
    assert "Paris" in res.text, f"{form}: expected an answer naming Paris, got {res.text!r}"


def test_5_inputs_that_are_not_a_mapping_or_a_tensor_are_one_line(smol):
    from llmfound import streaming
    from llmfound.errors import LlmfoundError

    model, tok = smol
    with pytest.raises(LlmfoundError, match=r"inputs must be a mapping with input_ids .*\*\*inputs.* got list"):
        streaming.stream_generate(model, tok, [[1, 2, 3]], max_new_tokens=2)
