"""Synthetic-weight models: randomly initialised Llamas of a known shape, and a tiny tokenizer trained in-process.

They are NOT real models and never stand for one: they exist so contract specs, ``llmfound doctor`` and the GPU
tier can check shapes, memory (footprints do not depend on weight values: the formats store fixed bits per
weight) and the streaming contract where no real weights can travel (CI without a cache, the GPU machine).
The 1.1B shape is TinyLlama-1.1B's (its published ``config.json``: hidden 2048, 22 layers, 32 heads / 4 kv heads,
MLP 5632, vocab 32000).
"""

from __future__ import annotations

from llmfound.errors import UnknownNameError
from llmfound.quantization import expected_footprint, footprint
from llmfound.models import load_model
from llmfound.memory import peak_cuda_bytes
from llmfound.streaming import stream_generate

__all__ = ["synthetic_llama_config", "synthetic_tokenizer", "save_synthetic_model", "CHATML",
           "save_synthetic_chat_model", "synthetic_footprints", "synthetic_stream"]


def synthetic_llama_config(params: str = "1.1b"):
    """A Llama config of a known size, for specs that must not download weights.

    ``"1.1b"``: the TinyLlama-1.1B shape (hidden 2048, 22 layers, 32 heads / 4 kv heads, MLP 5632, vocab 32000;
    1,100,048,384 parameters, untied lm_head). ``"tiny"``: 2 layers, hidden 256, vocab 1024 (~2.6 M params),
    for CPU contract checks of the same code path. Raises :class:`UnknownNameError` for another size.
    """
    from transformers import LlamaConfig

    shapes = {
        "1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                     num_key_value_heads=4, vocab_size=32000),
        "tiny": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=1024),
    }
    if params not in shapes:
        raise UnknownNameError(f"unknown synthetic size {params!r}; choose one of: {', '.join(shapes)}")
    return LlamaConfig(**shapes[params], max_position_embeddings=2048, tie_word_embeddings=False,
                       bos_token_id=1, eos_token_id=2)


def synthetic_tokenizer(vocab_size: int = 512):
    """A small byte-level BPE tokenizer trained in-process on a fixed English sample (synthetic, not any
    family's): for streaming specs on synthetic-weight models where no real tokenizer can travel (the GPU
    machine). Byte-level, so it decodes any id sequence; eos is ``<eos>``. ``len()`` <= ``vocab_size``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    sample = ("The capital of France is Paris. Tokenizers turn text into ids and back again. "
              "Quantization stores each weight in four bits; streaming shows each word as it is made. ") * 20
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator([sample], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<eos>")


def save_synthetic_model(config, folder, *, device: str = "cpu", seed: int = 0) -> None:
    """Write a randomly initialised (synthetic-weight) causal LM for ``config`` to ``folder`` as bf16
    safetensors. It is NOT a real model: use it only for shapes, memory and contract specs.
    Footprint ratios do not depend on the weight values (the formats store fixed bits per weight)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(folder), safe_serialization=True)
    del model


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
"""A minimal ChatML template (SmolLM2's format without its default system message) for synthetic chat models."""


def save_synthetic_chat_model(folder, *, positions: int = 2048, stops: bool = True, seed: int = 0) -> None:
    """Write a model folder ``llmfound generate --model FOLDER`` loads in about a second: the ``"tiny"``
    synthetic-weight Llama with ``positions`` positions (``max_position_embeddings``), the
    :func:`synthetic_tokenizer` with ``<|im_start|>`` / ``<|im_end|>`` added and :data:`CHATML` as its chat
    template. ``stops=False`` leaves the generation config without an eos id, so generation runs until
    ``max_new_tokens`` (for specs that need a long stream). Its answers are noise: contract specs only
    (context limit, Ctrl-C, the timing line)."""
    from transformers import GenerationConfig

    tok = synthetic_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    cfg = synthetic_llama_config("tiny")
    cfg.vocab_size = len(tok)
    cfg.max_position_embeddings = positions
    cfg.bos_token_id = None
    cfg.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>") if stops else None
    save_synthetic_model(cfg, folder, seed=seed)
    GenerationConfig(eos_token_id=cfg.eos_token_id, do_sample=False).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))


def synthetic_footprints(size: str = "tiny", device: str = "cpu",
                         presets: tuple[str, ...] = ("bf16", "8bit", "nf4-dq")) -> dict[str, dict]:
    """Load one synthetic-weight Llama (:func:`synthetic_llama_config` ``size``) in each preset, one at a time.

    Returns ``{preset: {"footprint": Footprint, "analytic": Footprint, "peak_load_bytes": int, "device": str}}``.
    ``peak_load_bytes``: on CUDA, ``max_memory_allocated`` during the load above what was allocated before it
    (each model is freed before the next load, so presets do not add up); 0 on the CPU. ``device``: where
    ``device_map`` ("auto" on CUDA, "cpu" otherwise) put the parameters."""
    import gc
    import tempfile

    import torch

    cuda = device == "cuda"
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        save_synthetic_model(synthetic_llama_config(size), tmp, device=device)
        for preset in presets:
            base = 0
            if cuda:  # the previous model's memory must be free before the peak is measured (the CPU row has none)
                gc.collect()
                torch.cuda.empty_cache()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            m, _ = load_model(tmp, preset, device_map="auto" if cuda else "cpu", tokenizer=False)
            rows[preset] = {"footprint": footprint(m), "analytic": expected_footprint(m, preset),
                            "peak_load_bytes": peak_cuda_bytes() - base if cuda else 0,
                            "device": next(m.parameters()).device.type}
            del m
    return rows


def synthetic_stream(size: str = "tiny", device: str = "cpu", *, layers: int | None = None,
                     max_new_tokens: int = 16):
    """Stream ``max_new_tokens`` greedy tokens from a synthetic-weight 4-bit (nf4-dq) Llama with the
    :func:`synthetic_tokenizer`; returns ``(tokenizer, GenerationResult, device type)``. The text is noise;
    what can be checked is the streaming contract (stream == decode of the ids) and where it ran."""
    import tempfile

    tok = synthetic_tokenizer()
    cfg = synthetic_llama_config(size)
    cfg.vocab_size = len(tok)
    if layers:
        cfg.num_hidden_layers = layers
    with tempfile.TemporaryDirectory() as tmp:
        save_synthetic_model(cfg, tmp, device=device)
        m, _ = load_model(tmp, "nf4-dq", device_map="auto" if device == "cuda" else "cpu", tokenizer=False)
    dev = next(m.parameters()).device
    inputs = {k: v.to(dev) for k, v in tok("The capital of France is", return_tensors="pt").items()}
    res = stream_generate(m, tok, inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    return tok, res, dev.type
