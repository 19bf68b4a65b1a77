"""llmfound: executable specifications for the foundations of open-source LLM work with Hugging Face.

Public entry points: :func:`load_tokenizer` (a real tokenizer per family, offline), :mod:`llmfound.assets`
(registry-fetched files), :mod:`llmfound.families` (the family table), :func:`pipeline` (the seed's
one-liner per task, :mod:`llmfound.pipelines`).
"""

from llmfound.errors import LlmfoundError
from llmfound.families import FAMILIES, get_family
from llmfound.tokenization import load_tokenizer
from llmfound.pipelines.factory import pipeline

__all__ = ["FAMILIES", "LlmfoundError", "get_family", "load_tokenizer", "pipeline"]
__version__ = "0.1.0"
