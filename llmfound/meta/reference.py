"""Meta's own Llama 3 / Llama 4 encoders, as the oracle the ``llama3``, ``llama3.1`` and ``llama4`` families are
checked against (as mistral-common is for Mistral's).

Source: PyPI ``llama-models==0.3.0`` (asset ``meta-llama-models``, sha256-checked, never installed). Its
``llama3/tokenizer.model`` and ``llama4/tokenizer.model`` are tiktoken BPE files (base64 token, rank per line);
its ``tokenizer.py`` files hold the split pattern and the special tokens, read as data by
:func:`llmfound.assets.meta_files.read_tokenizer_py` (nothing from the wheel is imported or executed here). The encoder
is then tiktoken's own ``Encoding`` (a well-kept library): ranks from ``tiktoken.load.load_tiktoken_bpe`` (with
tiktoken's file cache switched off: :func:`llmfound.assets.meta_files.no_tiktoken_cache`), special tokens numbered
after the base vocabulary in the file's order, as Meta's ``Tokenizer.__init__`` does.

As in Meta's ``Tokenizer.encode`` (``allowed_special=set()``, ``disallowed_special=()``), text that looks like
a special token is encoded as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from llmfound.errors import AssetError
from llmfound.assets.meta_files import no_tiktoken_cache, read_tokenizer_py

__all__ = ["MetaTokenizer", "VERSIONS", "meta_tokenizer"]

VERSIONS = ("llama3", "llama4")
"""The folders of ``llama-models`` 0.3.0 that hold a tokenizer: Llama 3 (3, 3.1, 3.2, 3.3 share it) and Llama 4."""


@dataclass
class MetaTokenizer:
    """Meta's encoder for one version: ``encoding`` (a ``tiktoken.Encoding``), ``special_tokens`` (token ->
    id), ``num_base_tokens`` (ids below it are BPE tokens), ``pattern`` (the split regex) and ``source`` (the
    folder it was read from)."""

    version: str
    encoding: object
    special_tokens: dict
    num_base_tokens: int
    pattern: str
    source: Path

    def encode(self, text: str, bos: bool = False) -> list[int]:
        """Token ids of ``text`` as Meta's ``Tokenizer.encode(text, bos=bos, eos=False)`` gives them: special
        tokens typed in ``text`` are text; ``bos`` prepends ``<|begin_of_text|>``."""
        ids = self.encoding.encode(text, allowed_special=set(), disallowed_special=())
        return ([self.special_tokens["<|begin_of_text|>"]] if bos else []) + ids

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids`` (tiktoken's ``decode``: invalid UTF-8 becomes U+FFFD)."""
        return self.encoding.decode(ids)


@lru_cache(maxsize=None)
def meta_tokenizer(version: str) -> MetaTokenizer:
    """Meta's tokenizer for ``version`` (one of :data:`VERSIONS`) from the cached ``meta-llama-models`` asset
    (fetched on first use unless ``LLMFOUND_OFFLINE=1``). Raises :class:`~llmfound.errors.UnknownNameError`
    for another version, :class:`AssetError` for a missing, empty or corrupt ``tokenizer.model`` or an
    unreadable ``tokenizer.py``."""
    from llmfound import assets
    from llmfound.errors import get_by_name

    get_by_name(VERSIONS, version, "Meta tokenizer version", names=lambda v: (v,))
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    folder = assets.ensure("meta-llama-models") / version
    model, py = folder / "tokenizer.model", folder / "tokenizer.py"
    for f in (model, py):
        if not f.is_file():
            raise AssetError(f"{f} is missing; fetch the asset again: llmfound assets fetch meta-llama-models "
                             "--force")
    pattern, specials = read_tokenizer_py(py.read_text(encoding="utf-8"), str(py))
    try:
        with no_tiktoken_cache():
            ranks = load_tiktoken_bpe(str(model))
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise AssetError(f"{model} is not a tiktoken BPE file ({type(e).__name__}: {e}); fetch the asset again: "
                         "llmfound assets fetch meta-llama-models --force") from None
    if not ranks:
        raise AssetError(f"{model} holds no tokens; fetch the asset again: llmfound assets fetch "
                         "meta-llama-models --force")
    base = len(ranks)
    special = {t: base + i for i, t in enumerate(specials)}
    enc = tiktoken.Encoding(name=f"meta-{version}", pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)
    return MetaTokenizer(version, enc, special, base, pattern, folder)
