"""Meta's references for Llama: Meta's own encoders (:mod:`~llmfound.meta.reference`, the oracle the Llama families
are checked against) and Meta's ChatFormat (:mod:`~llmfound.meta.chat_format`, Llama 4's only chat format), both
built from the files of PyPI ``llama-models`` 0.3.0 read as data."""

from llmfound.meta.chat_format import ChatFormat, encode_dialog
from llmfound.meta.reference import MetaTokenizer, meta_tokenizer

__all__ = ["MetaTokenizer", "meta_tokenizer", "ChatFormat", "encode_dialog"]
