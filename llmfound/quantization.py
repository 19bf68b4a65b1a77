"""bitsandbytes quantization: presets, their ``BitsAndBytesConfig``, and a model's memory footprint (loading a model
with a preset is :mod:`llmfound.models`).

The seed's line: ``AutoModelForCausalLM.from_pretrained(m, quantization_config=BitsAndBytesConfig(
load_in_4bit=True, bnb_4bit_use_double_quant=True))`` - "slightly lower accuracy, drastically less memory". As
written that is FP4 with double quant and float32 compute (transformers' defaults): the ``seed`` preset. llmfound's
``4bit`` is ``nf4-dq`` (NF4 + double quant, bf16 compute), QLoRA's recommendation.
Here the memory claim becomes numbers: :func:`footprint` measures the bytes a loaded model holds, by part,
and :func:`expected_footprint` computes them from parameter counts and the storage format.

Format constants (bitsandbytes 0.50.2 ``functional.quantize_4bit`` / ``nn.Linear4bit``; QLoRA, Dettmers et al.
2023, arXiv:2305.14314, section 3 "QLoRA Finetuning", paragraph "Double Quantization": "for a blocksize of 64,
this quantization reduces the memory footprint per parameter from 32/64 = 0.5 bits, to 8/64 + 32/(64 * 256) =
0.127 bits, a reduction of 0.373 bits per parameter"):
- NF4/FP4 weight: 4 bits (two per uint8 byte).
- 4-bit absmax: one per block of ``blocksize`` = 64 weights (``bnb_4bit_quant_storage`` default uint8);
  without double quant it is fp32 (4 bytes); with double quant it is quantized to 8 bits (1 byte) in
  blocks of 256 absmax values, each block adding one fp32 scale (4 bytes), plus one fp32 offset per tensor
  (bitsandbytes subtracts the mean absmax, then ``quantize_blockwise(..., blocksize=256)`` with its signed
  8-bit dynamic code: QLoRA calls these "8-bit Floats"; they are not an FP8 format).
- 8-bit (LLM.int8): int8 weight (1 byte) + one fp32 row scale ``SCB`` per output row.
On a CPU with avx512_bf16, bitsandbytes 0.50.2 repacks each 4-bit weight on the first forward
(``_convert_weight_packed_for_cpu``): the absmax becomes plain bf16 and the nested statistics go, so a
4-bit model's measured footprint grows by ~1.3% (SmolLM2) after its first use; the analytic footprint is the
load-time one (so it is not an upper bound after that first forward).
Modules bitsandbytes leaves unquantized: embeddings and ``lm_head`` (transformers keeps the output layer in
full precision), norms; they stay in the load dtype (bf16 here, 2 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmfound.errors import BrokenEnvironmentError, UnknownNameError

__all__ = ["QUANT_CHOICES", "PRESETS", "BLOCKSIZE_4BIT", "BLOCKSIZE_DQ", "CODE_4BIT_ENTRIES", "CODE_DQ_ENTRIES",
    "FOOTPRINT_TOLERANCE", "preset_name", "bnb_config", "check_bitsandbytes", "Footprint", "footprint",
    "expected_footprint", "linear_layers"]

QUANT_CHOICES = ("none", "8bit", "4bit")
"""What ``llmfound generate --quant`` accepts: bf16, LLM.int8, and 4-bit NF4 + double quant (``nf4-dq``)."""

PRESETS = ("bf16", "8bit", "nf4-dq", "nf4", "fp4", "seed")
"""Preset names: ``bf16`` (no quantization), ``8bit`` (LLM.int8), ``nf4-dq`` (4-bit NF4 with double quant and
bf16 compute: what QLoRA recommends, llmfound's ``4bit``), ``nf4`` (no double quant), ``fp4``, and ``seed``: the
course notes' config exactly as written, ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)``,
which with transformers' defaults is **FP4** (``bnb_4bit_quant_type="fp4"``) with double quant and **float32**
compute (``bnb_4bit_compute_dtype=torch.float32``), not NF4 (transformers 5.23 ``BitsAndBytesConfig.__init__``
defaults; ``specs/test_seed.py`` checks them)."""

_ALIASES = {"none": "bf16", "4bit": "nf4-dq"}

BLOCKSIZE_4BIT = 64
"""Weights per absmax block in bitsandbytes 4-bit (``bnb.functional.quantize_4bit`` default blocksize)."""
BLOCKSIZE_DQ = 256
"""Absmax values per block in the second (double) quantization (``quantize_4bit(..., compress_statistics=True)``
uses ``blocksize=256`` for the nested quantization in bitsandbytes 0.50.2)."""
CODE_4BIT_ENTRIES = 16
"""float32 values in a 4-bit quant state's code table (NF4 or FP4: 2^4 levels; ``QuantState.code``)."""
CODE_DQ_ENTRIES = 256
"""float32 values in the nested (double-quant) state's code table: the 8-bit dynamic map that
``quantize_blockwise`` uses for the absmax values (``bnb.functional.create_dynamic_map()``, 2^8 levels)."""
FOOTPRINT_TOLERANCE = 0.02
"""How far a measured footprint may sit from :func:`expected_footprint` (relative, 2%) in ``llmfound doctor``:
both count parameters, buffers and quantization state, and they agree to the byte at load for every model the
specs load (SmolLM2, the synthetic Llamas, on the CPU and on CUDA); the margin is for a model whose layers carry
state this module does not know, and for bitsandbytes' CPU repacking after a first forward."""


def preset_name(name: str) -> str:
    """Canonical preset for a preset name or a ``--quant`` value. Raises :class:`UnknownNameError`."""
    canon = _ALIASES.get(name, name)
    if canon not in PRESETS:
        raise UnknownNameError(f"unknown quantization {name!r}; choose one of: "
                               f"{', '.join(QUANT_CHOICES)} (or presets {', '.join(PRESETS)})")
    return canon


def bnb_config(preset: str, compute_dtype: Any = None):
    """The ``BitsAndBytesConfig`` for a preset (None for ``bf16``). ``compute_dtype`` defaults to bf16 for 4-bit.

    Raises :class:`UnknownNameError` for an unknown preset."""
    import torch
    from transformers import BitsAndBytesConfig

    p = preset_name(preset)
    cd = compute_dtype or torch.bfloat16
    if p == "bf16":
        return None
    if p == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if p == "seed":  # the notes' line, nothing added: transformers fills in fp4 and float32 compute
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4" if p == "fp4" else "nf4",
                              bnb_4bit_use_double_quant=(p == "nf4-dq"), bnb_4bit_compute_dtype=cd)


def check_bitsandbytes() -> str:
    """Import bitsandbytes and return its version; raise :class:`BrokenEnvironmentError` with one line if it is
    missing or broken (the line says how to check: ``python -m bitsandbytes``)."""
    try:
        import bitsandbytes as bnb
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken native library raising anything at import
        raise BrokenEnvironmentError(
            f"bitsandbytes is needed for 8-bit/4-bit but failed to import ({type(e).__name__}: {e}); "
            f"install it with `pip install bitsandbytes==0.50.2` and check with `python -m bitsandbytes`"
        ) from None
    return bnb.__version__


# --------------------------------------------------------------------------------------------- footprint


@dataclass
class Footprint:
    """Bytes a model holds, by part. All values in bytes.

    - ``quantized_weights``: packed 4-bit / int8 weight storage of bitsandbytes Linear layers.
    - ``quant_state``: their statistics (absmax, nested absmax, scales, offsets, code books; 8-bit SCB).
    - ``unquantized``: every other parameter and buffer (embeddings, lm_head, norms, unquantized Linear).
    - ``total``: the sum; ``ratio_to(bf16_footprint)``: how many times smaller this one is.
    """

    quantized_weights: int = 0
    quant_state: int = 0
    unquantized: int = 0

    @property
    def total(self) -> int:
        """Bytes in all: quantized weights + quantization state + unquantized."""
        return self.quantized_weights + self.quant_state + self.unquantized

    def ratio_to(self, other: "Footprint | int") -> float:
        """``other.total / self.total`` (how many times smaller this one is)."""
        o = other.total if isinstance(other, Footprint) else other
        return o / self.total


def _tensor_bytes(t) -> int:
    return t.numel() * t.element_size() if t is not None else 0


def _quant_state_bytes(qs) -> int:
    if qs is None:
        return 0
    n = _tensor_bytes(getattr(qs, "absmax", None)) + _tensor_bytes(getattr(qs, "code", None))
    if getattr(qs, "offset", None) is not None:
        n += _tensor_bytes(qs.offset)
    if getattr(qs, "state2", None) is not None:
        n += _quant_state_bytes(qs.state2)
    return n


def footprint(model) -> Footprint:
    """Measure the bytes held by ``model``'s parameters, buffers and bitsandbytes quantization state.

    Unlike ``model.get_memory_footprint()`` (parameters + buffers only), this counts the quantization state
    that bitsandbytes keeps outside parameters and buffers: the 4-bit ``quant_state`` (absmax, nested absmax,
    code books) and the 8-bit ``SCB`` row scales (``specs/test_quantization.py`` shows both missed). Shared (tied)
    tensors are counted once.
    """
    fp = Footprint()
    seen: set[int] = set()

    def once(t) -> int:
        if t is None:
            return 0
        key = t.data_ptr() if t.numel() else id(t)
        if key in seen:
            return 0
        seen.add(key)
        return _tensor_bytes(t)

    for mod in model.modules():
        kind = type(mod).__name__
        for pname, p in mod.named_parameters(recurse=False):
            qs = getattr(p, "quant_state", None)
            if kind == "Linear4bit" and pname == "weight":
                fp.quantized_weights += once(p)
                fp.quant_state += _quant_state_bytes(qs)
            elif kind == "Linear8bitLt" and pname == "weight":
                fp.quantized_weights += once(p)
                scb = getattr(p, "SCB", None)
                fp.quant_state += once(scb) if scb is not None else 0
            else:
                fp.unquantized += once(p)
        for _, b in mod.named_buffers(recurse=False):
            fp.unquantized += once(b)
    return fp


def expected_footprint(model_or_config, preset: str, *, keep: tuple[str, ...] | None = None) -> Footprint:
    """Analytic bytes from parameter counts and the format constants in the module doc, in bytes.

    - A model loaded **quantized** (any bitsandbytes ``Linear4bit`` / ``Linear8bitLt`` in it): the bound follows
      what was really loaded, layer by layer, whatever ``preset`` says: a ``Linear4bit`` counts 4-bit codes plus
      its state (double-quantized when its weight has ``compress_statistics``), a ``Linear8bitLt`` int8 plus its
      row scales, and every other parameter (a module the user's ``llm_int8_skip_modules`` kept, norms,
      embeddings) its own dtype's bytes. So a user's own ``BitsAndBytesConfig`` gets a correct bound.
    - An unquantized model or a config (a model is built on the meta device to count parameters; nothing is
      allocated): what ``preset`` would give. Linear layers whose name contains an entry of ``keep`` stay
      unquantized; ``keep`` defaults to the config's ``quantization_config.llm_int8_skip_modules`` when it has
      one (transformers then skips exactly those), else ``("lm_head",)`` (transformers' default skip).
      Everything unquantized is counted at 2 bytes (bf16).

    Raises :class:`UnknownNameError` for an unknown preset.
    """
    import torch

    p = preset_name(preset)
    model = model_or_config
    if not isinstance(model_or_config, torch.nn.Module):
        from accelerate import init_empty_weights
        from transformers import AutoModelForCausalLM

        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(model_or_config)
    loaded = any(type(m).__name__ in ("Linear4bit", "Linear8bitLt") for m in model.modules())
    if keep is None:
        qc = getattr(model.config, "quantization_config", None)
        skip = qc.get("llm_int8_skip_modules") if isinstance(qc, dict) else getattr(qc, "llm_int8_skip_modules", None)
        keep = tuple(skip) if skip else ("lm_head",)
    fp = Footprint()
    seen: set[int] = set()
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    in_emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if (getattr(model.config, "tie_word_embeddings", False) and out_emb is not None and in_emb is not None
            and out_emb.weight is not in_emb.weight):
        seen.add(id(out_emb.weight))  # tied: shares the input embedding's storage (a meta model may not tie it)
    for name, mod in model.named_modules():
        kind = type(mod).__name__
        for pname, prm in mod.named_parameters(recurse=False):
            if id(prm) in seen:
                continue
            seen.add(id(prm))
            if loaded:
                if kind == "Linear4bit" and pname == "weight":
                    n = mod.in_features * mod.out_features  # stored packed, two codes per byte
                    fp.quantized_weights += (n + 1) // 2
                    fp.quant_state += _state_bytes("nf4-dq" if getattr(prm, "compress_statistics", False)
                                                   else "nf4", n, mod.out_features)
                elif kind == "Linear8bitLt" and pname == "weight":
                    fp.quantized_weights += prm.numel()
                    fp.quant_state += _state_bytes("8bit", prm.numel(), mod.out_features)
                else:
                    fp.unquantized += prm.numel() * prm.element_size()
                continue
            n = prm.numel()
            linear = isinstance(mod, torch.nn.Linear)
            quantizable = linear and prm.ndim == 2 and not any(k in name for k in keep)
            if quantizable and p != "bf16":
                fp.quantized_weights += n if p == "8bit" else (n + 1) // 2
                fp.quant_state += _state_bytes(p, n, mod.out_features)
            else:
                fp.unquantized += n * 2
        for _, buf in mod.named_buffers(recurse=False):  # rotary inv_freq and the like: their own dtype, as held
            if id(buf) not in seen:
                seen.add(id(buf))
                fp.unquantized += buf.numel() * buf.element_size()
    return fp


def _state_bytes(preset: str, n: int, rows: int) -> int:
    if preset == "8bit":
        return rows * 4  # fp32 SCB per output row
    blocks = -(-n // BLOCKSIZE_4BIT)
    if preset in ("nf4-dq", "seed"):  # double quant (the seed preset is FP4 + double quant)
        nested = -(-blocks // BLOCKSIZE_DQ)
        # uint8 absmax per block, fp32 nested absmax per nested block, the fp32 offset, both code tables
        return blocks * 1 + nested * 4 + 4 + CODE_DQ_ENTRIES * 4 + CODE_4BIT_ENTRIES * 4
    return blocks * 4 + CODE_4BIT_ENTRIES * 4  # fp32 absmax per block + the 4-bit code table


def linear_layers(model) -> dict[str, tuple[str, str]]:
    """Every Linear-like module: ``{qualified name: (module class, weight storage dtype)}``.

    A 4-bit layer shows ``("Linear4bit", "torch.uint8")`` (two NF4/FP4 codes packed per byte, weight class
    ``Params4bit``); an 8-bit one ``("Linear8bitLt", "torch.int8")``; a kept one ``("Linear", "torch.bfloat16")``.
    """
    import torch

    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            out[name] = (type(mod).__name__, str(mod.weight.dtype))
    return out
