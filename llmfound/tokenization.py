"""Tokenization: text to ids and back, per family, and the checks that keep the two sides honest.

- :func:`round_trip` encodes one text with a family's tokenizer and decodes it again; the
  :class:`RoundTrip` report holds the ids, the pieces, the decoded text and where it first differs.
- :func:`normalize` is what a family declares it does to text by design (``families.Family.tokens.normalization``):
  ``"none"``, ``"nfc"`` (Qwen), ``"metaspace"`` (sentencepiece) or ``"bert-uncased"`` (lowercase, strip
  accents, collapse whitespace); the normalizer's part skips the special tokens the tokenizer parsed
  (:func:`added_token_spans`), as the tokenizer itself does.
- :func:`check_compatible` compares a tokenizer with a model's config (vocab size, special ids): the seed's
  "a mismatched tokenizer gives invalid inputs", made detectable.
- :func:`golden_vectors` reads llama.cpp's vocab test vectors (``ggml-vocab-<vocab>.gguf.inp`` / ``.out``,
  shipped in the llama-cpp-python 0.3.36 sdist, asset ``llama-cpp-vocabs``; made by llama.cpp from the
  original Hugging Face tokenizers with ``add_special_tokens=False``).

Text must be ``str``: bytes or None raise ``TypeError`` naming the type (decode bytes first).
"""

from __future__ import annotations

import unicodedata
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmfound.errors import TokenizerMismatchError, UnknownNameError

__all__ = ["tokenizer_dir", "load_tokenizer", "GOLDEN_SEPARATOR", "require_str", "is_mistral_common",
           "supports_split_special_tokens",
           "always_parsed_tokens", "encode", "decode", "piece_texts", "first_difference", "RoundTrip", "NORMALIZATIONS",
           "normalize", "added_token_spans", "NOT_IN_UTF8", "missing_byte_tokens", "round_trip",
           "compatibility_problems", "check_compatible", "GoldenCase", "golden_paths", "parse_golden", "golden_vectors",
           "GoldenMismatch", "golden_mismatches"]

GOLDEN_SEPARATOR = "\n__ggml_vocab_test__\n"
"""The line between two inputs in a llama.cpp ``.gguf.inp`` file (each input is followed by it)."""


def require_str(text: Any, what: str = "text") -> str:
    """Return ``text`` if it is a ``str``; else raise ``TypeError`` naming the type it was."""
    if not isinstance(text, str):
        hint = " (decode bytes first, e.g. data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"{what} must be str, got {type(text).__name__}{hint}")
    return text


def _tok(family_or_tokenizer: Any):
    if isinstance(family_or_tokenizer, str):
        from llmfound.tokenization import load_tokenizer

        return load_tokenizer(family_or_tokenizer)
    return family_or_tokenizer


def is_mistral_common(tokenizer: Any) -> bool:
    """True for transformers' ``MistralCommonBackend`` (Tekken loaded with ``mistral_format=True``), which
    encodes through mistral-common and takes fewer keyword arguments than the other tokenizers."""
    return type(tokenizer).__name__ == "MistralCommonBackend"


def supports_split_special_tokens(tokenizer: Any) -> bool:
    """True when ``encode(..., split_special_tokens=True)`` is accepted (Mistral's mistral-common backend
    rejects the keyword; it never parses special-token text typed by the user anyway)."""
    return not is_mistral_common(tokenizer)


def always_parsed_tokens(tokenizer: Any) -> list[str]:
    """Added tokens that are not marked special (e.g. Phi-3's ``</s>``, Mistral v3's ``[REFERENCE_DOC_n]``):
    typed inside user text they become that token even with ``split_special_tokens=True``. Empty for
    MistralCommonBackend (it parses nothing the user types)."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None)
    if not isinstance(decoder, dict):
        return []
    return sorted(t.content for t in decoder.values() if not t.special)


def encode(tokenizer: Any, text: str, *, add_special_tokens: bool = False, inert_specials: bool = False) -> list[int]:
    """Ids for ``text`` (a list of ints, no tensors).

    ``inert_specials=True`` makes special-token strings typed inside ``text`` plain text
    (``split_special_tokens=True`` where the tokenizer accepts it; MistralCommonBackend never parses them).
    Raises ``TypeError`` for non-str text.
    """
    require_str(text)
    kw = {"split_special_tokens": True} if inert_specials and supports_split_special_tokens(tokenizer) else {}
    return list(tokenizer.encode(text, add_special_tokens=add_special_tokens, **kw))


def decode(tokenizer: Any, ids: list[int]) -> str:
    """Text for ``ids``, special tokens kept, with no clean-up of spaces (the family's own decoder only)."""
    kw = {} if is_mistral_common(tokenizer) else {"clean_up_tokenization_spaces": False}
    return tokenizer.decode(list(ids), skip_special_tokens=False, **kw)


def piece_texts(family_or_tokenizer: Any, ids: list[int]) -> list[str]:
    """What each id decodes to on its own (one string per id, same order): the readable side of a piece.

    A byte-level piece such as ``'Ã¶r'`` or ``'ĠðŁĻĤ'`` is the vocabulary's spelling of bytes; decoded alone it
    reads ``'ör'``, or ``' �'`` when it holds only part of a character's UTF-8 (an emoji split across pieces),
    which the full decode joins again. ``family_or_tokenizer``: a family name or a loaded tokenizer."""
    tok = _tok(family_or_tokenizer)
    return [decode(tok, [i]) for i in ids]


def first_difference(a: str | list, b: str | list) -> int | None:
    """Index of the first position where ``a`` and ``b`` differ (the shorter length when one is a prefix of
    the other), or None when equal."""
    if a == b:  # one C-level comparison; the loop below is for the index only (a 5 MB text in ~0.5 s less)
        return None
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@dataclass
class RoundTrip:
    """One text through encode and decode.

    ``ids`` (token ids), ``pieces`` (the vocabulary strings of those ids, same length), ``decoded`` (text),
    ``expected`` (the text, after the family's declared normalization), ``equal`` (decoded == expected),
    ``first_difference`` (character index into ``expected``, None when equal), ``normalization``,
    ``added_spans``: ``(start, end)`` character spans of ``text`` the tokenizer read as special (added) tokens,
    which the normalization's text side leaves as typed (see :func:`normalize`).
    """

    family: str
    text: str
    ids: list[int]
    pieces: list[str]
    decoded: str
    expected: str
    equal: bool
    first_difference: int | None
    normalization: str = "none"
    add_special_tokens: bool = False
    added_spans: list[tuple[int, int]] = field(default_factory=list)

    def explain(self) -> str:
        """One paragraph for a failure message: family, input (repr), expected, got, first difference."""
        if self.equal:
            return f"{self.family}: {self.text!r} round-trips ({len(self.ids)} ids)"
        i = self.first_difference or 0
        kept = [self.text[a:b] for a, b in self.added_spans]
        return (f"{self.family}: input {self.text!r}\n  expected {self.expected!r}\n  got      {self.decoded!r}\n"
                f"  first difference at char {i}: expected {self.expected[i:i + 12]!r}, got "
                f"{self.decoded[i:i + 12]!r}\n  ids {self.ids}\n  pieces {self.pieces}"
                + (f"\n  parsed special tokens (not normalized) {kept}" if kept else ""))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict of the fields."""
        return asdict(self)


NORMALIZATIONS = ("none", "nfc", "metaspace", "bert-uncased")
"""The kinds :func:`normalize` knows (``families.Family.tokens.normalization`` takes one of them)."""


def normalize(kind: str, text: str, *, keep: list[tuple[int, int]] | tuple = ()) -> str:
    """Apply a declared normalization to ``text``; ``keep``: character spans ``(start, end)`` of ``text`` the
    tokenizer read as special tokens (:func:`added_token_spans`), which its normalizer never sees.

    ``kind``: ``"none"`` (identity), ``"nfc"`` (``unicodedata.normalize("NFC")``, what Qwen's tokenizer.json
    normalizer does), ``"metaspace"`` (sentencepiece writes a space as U+2581 "▁", so a typed U+2581
    comes back as a space), ``"bert-uncased"`` (NFD, drop combining marks, lowercase, whitespace runs become one
    space, ends stripped, control characters dropped: what the uncased BERT normalizer + WordPiece decode
    give for words of letters and digits).

    The tokenizer splits special tokens off the text before its normalizer runs, so ``nfc`` and
    ``bert-uncased`` leave each ``keep`` span as typed (``"Hello [SEP] world"`` -> ``"hello [SEP] world"``;
    BERT's decode puts one space between tokens, so a kept span stands between single spaces).
    ``metaspace`` is the decoder's ▁ -> space, which reads every token, so it ignores ``keep``.
    Raises :class:`UnknownNameError` for another kind, ``ValueError`` for spans that overlap or fall outside
    ``text``.
    """
    require_str(text)
    if kind not in NORMALIZATIONS:
        raise UnknownNameError(f"unknown normalization {kind!r}; known: {', '.join(NORMALIZATIONS)}")
    if kind in ("none", "metaspace") or not keep:
        return _normalize_text(kind, text)
    parts, at = [], 0
    for start, end in sorted(keep):
        if not at <= start <= end <= len(text):
            raise ValueError(f"keep spans must be in order, apart and inside the text ({len(text)} characters), "
                             f"got {sorted(keep)}")
        parts += [_normalize_text(kind, text[at:start]), text[start:end]]
        at = end
    parts.append(_normalize_text(kind, text[at:]))
    return " ".join(p for p in parts if p) if kind == "bert-uncased" else "".join(parts)


def _normalize_text(kind: str, text: str) -> str:
    """:func:`normalize` of text that holds no special token."""
    if kind == "none":
        return text
    if kind == "nfc":
        return unicodedata.normalize("NFC", text)
    if kind == "metaspace":
        return text.replace("\u2581", " ")
    t = "".join(c for c in unicodedata.normalize("NFD", text)  # bert-uncased
                if unicodedata.category(c) != "Mn" and (c in "\t\n\r" or unicodedata.category(c) != "Cc"))
    return " ".join(t.lower().split())


_ADDED_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unnormalized_added_ids(tokenizer: Any, ids: list[int]) -> frozenset[int]:
    """Ids of the added tokens matched before the normalizer (``normalized=False``), else the special ids; kept per
    tokenizer (listing them is slow for a large added vocabulary: ``docs/sources.md``), listed again when
    ``ids`` reach past the ids it had (tokens were added since)."""
    cached = _ADDED_IDS.get(tokenizer)
    if cached is None or (ids and max(ids) >= cached[0]):
        decoder = getattr(tokenizer, "added_tokens_decoder", None)
        cached = _ADDED_IDS[tokenizer] = (len(tokenizer), frozenset(
            int(i) for i, t in decoder.items() if not getattr(t, "normalized", False)) if isinstance(decoder, dict)
            else frozenset(getattr(tokenizer, "all_special_ids", None) or ()))
    return cached[1]


def added_token_spans(tokenizer: Any, text: str, ids: list[int], *, inert_specials: bool = False
                      ) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of ``text`` that the tokenizer read as special tokens, in order.

    ``ids``: ``encode(tokenizer, text, inert_specials=...)`` (no special tokens added). Counted: the added
    tokens matched before the normalizer (every special token of the families, e.g. ``[SEP]``, ``<|im_end|>``,
    and added vocabulary such as Gemma's ``<unused0>``), located by the tokenizer's offsets. Empty when ``ids``
    hold none (one set lookup per id) and for a tokenizer without offsets (MistralCommonBackend, which parses
    none of the special-token text a user types anyway).
    """
    require_str(text)
    added = _unnormalized_added_ids(tokenizer, ids)
    if not any(i in added for i in ids):
        return []
    kw = {"split_special_tokens": True} if inert_specials else {}
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, **kw)
    except (NotImplementedError, TypeError, ValueError):  # no offsets
        return []
    if list(enc["input_ids"]) != list(ids):
        return []
    return [(int(a), int(b)) for i, (a, b) in zip(ids, enc["offset_mapping"]) if i in added and b > a]


def _byte_level_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character map used by byte-level BPE vocabularies (256 entries)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


NOT_IN_UTF8: frozenset[int] = frozenset({0xC0, 0xC1, *range(0xF5, 0x100)})
"""The 13 bytes well-formed UTF-8 never holds (0xC0, 0xC1: only overlong forms start with them; 0xF5-0xFF: they
would start a code point above U+10FFFF or are no lead byte): a vocabulary without tokens for them loses no text."""


def missing_byte_tokens(tokenizer: Any) -> set[int]:
    """Bytes (0-255) that a byte-level BPE tokenizer has no token for: text whose UTF-8 holds one of them
    cannot be encoded faithfully (subtract :data:`NOT_IN_UTF8` for the bytes text can hold). Empty for tokenizers
    that are not byte-level (checked through the tokenizers pre-tokenizer) and for complete byte-level
    vocabularies."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None) if backend is not None else None
    if pre is None or "ByteLevel" not in repr(pre):
        return set()
    # 256 look-ups in the vocabulary and added tokens, not a copy of the whole vocabulary as a dict (``get_vocab``)
    return {b for b, ch in _byte_level_alphabet().items() if backend.token_to_id(ch) is None}


def round_trip(family: str, text: str, *, tokenizer: Any = None, add_special_tokens: bool = False,
               inert_specials: bool = False) -> RoundTrip:
    """Encode ``text`` with the family's tokenizer (``tokenizer`` overrides it), decode, compare.

    The comparison is against ``normalize(family.tokens.normalization, text, keep=spans)`` for a family in the table
    (``spans``: the special tokens typed in ``text`` that the tokenizer parsed, :func:`added_token_spans`), else
    ``text`` itself. With ``add_special_tokens=True`` the tokens that adds (BOS, ``[CLS]``...: the ids around
    ``encode(text)``) are left out of the decode for the comparison; typed ones stay. Raises ``TypeError``
    (non-str text), :class:`UnknownNameError`.
    """
    require_str(text)
    from llmfound.families import FAMILIES, get_family

    norm = "none"
    if tokenizer is None:
        norm = get_family(family).tokens.normalization
        tokenizer = _tok(family)
    elif family in {f.name for f in FAMILIES}:
        norm = get_family(family).tokens.normalization
    ids = encode(tokenizer, text, add_special_tokens=add_special_tokens, inert_specials=inert_specials)
    pieces = [str(p) for p in tokenizer.convert_ids_to_tokens(ids)]
    body = ids
    if add_special_tokens:
        body = _unwrapped(ids, encode(tokenizer, text, inert_specials=inert_specials),
                          set(encode(tokenizer, "", add_special_tokens=True)))
    spans = added_token_spans(tokenizer, text, body, inert_specials=inert_specials)
    decoded = decode(tokenizer, body)
    expected = normalize(norm, text, keep=spans)
    diff = first_difference(expected, decoded)
    return RoundTrip(family, text, ids, pieces, decoded, expected, diff is None, diff, norm, add_special_tokens,
                     spans)


def _unwrapped(ids: list[int], plain: list[int], wrapper: set[int]) -> list[int]:
    """``ids`` (encoded with special tokens) without what ``add_special_tokens`` put around ``plain`` (the same
    text encoded without): ``plain`` where it sits inside ``ids`` after only wrapper ids, else ``ids`` less every
    wrapper id (a typed one too: the best that can be told apart)."""
    for k in range(len(ids) - len(plain) + 1):
        if ids[k:k + len(plain)] == plain and all(i in wrapper for i in ids[:k] + ids[k + len(plain):]):
            return plain
        if ids[k] not in wrapper:
            break
    return [i for i in ids if i not in wrapper]


# ------------------------------------------------------------------------------------------ compatibility


def _model_facts(model: Any) -> dict[str, Any]:
    """vocab_size and special ids from a config object, a dict, a model (its ``.config``) or a folder."""
    if isinstance(model, (str, Path)):
        import json

        p = Path(model)
        cfg = json.loads((p / "config.json").read_text()) if p.is_dir() else json.loads(p.read_text())
        gen = p / "generation_config.json" if p.is_dir() else None
        if gen is not None and gen.exists():
            g = json.loads(gen.read_text())
            cfg = {**cfg, **{k: v for k, v in g.items() if k.endswith("_token_id") and v is not None}}
        model = cfg
    if hasattr(model, "config"):
        model = model.config
    if not isinstance(model, dict):
        model = model.to_dict() if hasattr(model, "to_dict") else vars(model)
    if "vocab_size" not in model and isinstance(model.get("text_config"), dict):
        model = {**model["text_config"], **{k: v for k, v in model.items() if k.endswith("_token_id")}}
    return model


def compatibility_problems(tokenizer: Any, model: Any) -> list[str]:
    """What does not fit between ``tokenizer`` (or a family name) and ``model`` (config, dict, model or a
    folder with config.json [+ generation_config.json]). Empty list when compatible.

    Checked: every id the tokenizer can produce (``len(tokenizer)``) is below the model's ``vocab_size``
    (a model may have more rows than the tokenizer, e.g. padded embeddings, never fewer), and each of
    bos/eos/pad ids the model declares equals the tokenizer's (an eos list must contain the tokenizer's eos
    or the eos the chat turn ends with).
    """
    tok = _tok(tokenizer)
    facts = _model_facts(model)
    problems = []
    vs = facts.get("vocab_size")
    n = len(tok)
    if isinstance(vs, int) and n > vs:
        problems.append(f"tokenizer has {n} tokens but the model's vocab_size is {vs}: ids {vs}..{n - 1} "
                        f"index past its embedding")
    for name in ("bos", "eos", "pad"):
        want = facts.get(f"{name}_token_id")
        got = getattr(tok, f"{name}_token_id", None)
        if want is None or got is None:
            continue
        wants = set(want) if isinstance(want, (list, tuple)) else {want}
        if got not in wants:
            problems.append(f"{name}_token_id: model says {want}, tokenizer gives {got} "
                            f"({getattr(tok, f'{name}_token', None)!r})")
    return problems


def check_compatible(tokenizer: Any, model: Any) -> None:
    """Raise :class:`TokenizerMismatchError` (one line listing every problem) when ``tokenizer`` does not fit
    ``model``; see :func:`compatibility_problems` for what is checked and what ``model`` may be."""
    problems = compatibility_problems(tokenizer, model)
    if problems:
        raise TokenizerMismatchError("tokenizer does not match the model: " + "; ".join(problems)
                                     + "; load the tokenizer that ships with the model")


# ------------------------------------------------------------------------------------------ golden ids


@dataclass(frozen=True)
class GoldenCase:
    """One llama.cpp test vector: ``text`` and the ``ids`` the original tokenizer gave
    (``add_special_tokens=False``); ``index`` is its position in the file (0-based)."""

    vocab: str
    index: int
    text: str
    ids: tuple[int, ...]


def golden_paths(vocab: str) -> tuple[Path, Path]:
    """The ``.gguf.inp`` and ``.gguf.out`` files of llama.cpp vocab ``vocab`` (e.g. ``"llama-bpe"``) in the
    cache entry of asset ``llama-cpp-vocabs``. Raises :class:`UnknownNameError` for a vocab llmfound does
    not fetch, :class:`~llmfound.errors.AssetMissingError` when offline and not cached."""
    from llmfound.assets.manifest import GOLDEN_VOCABS
    from llmfound.assets import ensure

    if vocab not in GOLDEN_VOCABS:
        raise UnknownNameError(f"unknown llama.cpp vocab {vocab!r}; known: {', '.join(GOLDEN_VOCABS)}")
    d = ensure("llama-cpp-vocabs")
    return d / f"ggml-vocab-{vocab}.gguf.inp", d / f"ggml-vocab-{vocab}.gguf.out"


def parse_golden(inp: str, out: str, vocab: str = "") -> list[GoldenCase]:
    """Pair the inputs of a ``.gguf.inp`` text (each followed by the line ``__ggml_vocab_test__``) with the
    lines of a ``.gguf.out`` text (space-separated ids, one line per input). Raises ``ValueError`` when the
    counts differ."""
    texts = inp.split(GOLDEN_SEPARATOR)
    if texts and texts[-1] in ("", "\n"):
        texts = texts[:-1]
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if len(texts) != len(lines):
        raise ValueError(f"golden vectors {vocab or '?'}: {len(texts)} inputs but {len(lines)} id lines")
    return [GoldenCase(vocab, i, t, tuple(int(x) for x in ln.split())) for i, (t, ln) in enumerate(zip(texts, lines))]


def golden_vectors(vocab: str) -> list[GoldenCase]:
    """All test vectors of llama.cpp vocab ``vocab`` (46 per vocab in llama.cpp as vendored by
    llama-cpp-python 0.3.36). Raises what :func:`golden_paths` raises."""
    inp, out = golden_paths(vocab)
    return parse_golden(inp.read_text(encoding="utf-8"), out.read_text(encoding="utf-8"), vocab)


@dataclass
class GoldenMismatch:
    """A golden vector the tokenizer encodes differently: ``expected`` / ``got`` ids, first differing position."""

    who: str
    case: GoldenCase
    got: list[int]
    position: int | None = field(default=None)

    def explain(self) -> str:
        """Failure line: who, input repr, expected ids, got ids, first differing position."""
        return (f"{self.who}: golden #{self.case.index} input {self.case.text!r}\n  expected {list(self.case.ids)}\n"
                f"  got      {self.got}\n  first differing position: {self.position}")


def golden_mismatches(tokenizer: Any, cases: list[GoldenCase], who: str = "") -> list[GoldenMismatch]:
    """Encode every case (``add_special_tokens=False``) and return those whose ids differ."""
    tok = _tok(tokenizer)
    bad = []
    for c in cases:
        got = encode(tok, c.text)
        if tuple(got) != c.ids:
            bad.append(GoldenMismatch(who or str(tokenizer), c, got, first_difference(list(c.ids), got)))
    return bad


# ------------------------------------------------------------------------------------------ loading


def tokenizer_dir(family) -> Path:
    """Folder holding the family's tokenizer files (``family``: a name or a :class:`~llmfound.families.Family`),
    fetched/converted first if needed (offline: cache only)."""
    from llmfound.assets import ensure
    from llmfound.families import Family, get_family

    fam = family if isinstance(family, Family) else get_family(family)
    return ensure(fam.tokenizer) / fam.subdir if fam.subdir else ensure(fam.tokenizer)


_TOKENIZERS: dict[str, Any] = {}


def load_tokenizer(family: str, *, cached: bool = True):
    """A transformers tokenizer for ``family`` (a name from :data:`FAMILIES`), loaded offline from the cache.

    ``family`` may also be a local folder or, for users with hub access, a hub id: anything that is not a
    family name is passed to :func:`llmfound.assets.resolve` and then ``AutoTokenizer.from_pretrained``.
    With ``cached=True`` (default) the same object is returned for repeated calls in one process; do not
    mutate it, or pass ``cached=False``. Never uses ``trust_remote_code``.

    Raises ``TypeError`` (not a str), :class:`UnknownNameError` (unknown family and not a folder),
    :class:`AssetMissingError` (offline and not fetched), :class:`AssetError` (the files do not load, e.g. a
    damaged cache entry: the message names the repair command).
    """
    if not isinstance(family, str):
        raise TypeError(f"family must be a str (a family name, a folder or a hub id), got {type(family).__name__}")
    if cached and family in _TOKENIZERS:
        return _TOKENIZERS[family]
    from transformers import AutoTokenizer

    from llmfound.assets.cache import entry_names
    from llmfound.assets import resolve
    from llmfound.errors import AssetError, first_line
    from llmfound.families import family_names, get_family

    if family in family_names():
        fam = get_family(family)
        target, kwargs = tokenizer_dir(fam), dict(fam.load_kwargs)
        what = f"the {family} tokenizer from {target}"
        fix = (f"`llmfound assets verify {fam.tokenizer}` checks the cache entry and "  # likely a damaged entry
               f"`llmfound assets fetch {fam.tokenizer}` repairs it")
    else:
        if not family.strip() or (family not in entry_names() and "/" not in family and not Path(family).exists()):
            get_family(family)  # raises the "unknown family" error listing the known ones
        target, kwargs = resolve(family), {}  # a cache entry, a local folder, or a hub id (refused offline)
        what = f"a tokenizer from {family!r}"
        fix = "name a family, a folder with tokenizer files, or a hub id (needs hub access)"
    try:
        tok = AutoTokenizer.from_pretrained(str(target), trust_remote_code=False, **kwargs)
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one line naming what and how to fix it
        raise AssetError(f"could not load {what} ({type(e).__name__}: {first_line(e, 200)}); {fix}") from None
    if cached:
        _TOKENIZERS[family] = tok
    return tok
