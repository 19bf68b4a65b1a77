"""The context window: a prompt and the tokens generated after it must fit the model's positions.

A causal LM has ``config.max_position_embeddings`` positions (SmolLM2-135M: 8,192). transformers does not stop
a longer input: the model runs past the positions it was trained on, slowly, and writes noise (what a
9,000-word prompt to ``llmfound generate`` did before this check: ``docs/sources.md``). So every path that
feeds a prompt to a model (``generate``, ``demo``, ``pipeline text-generation`` and ``llmfound.pipeline``'s
text-generation) counts the prompt's tokens plus the most tokens it may generate against the limit, after
tokenizing and before any forward pass (the CLI before the weights load), and refuses in one line
(:class:`~llmfound.errors.InputTooLongError`, exit 2): the limit, the prompt's length, what to do. Cutting the
prompt happens only when asked (``--truncate``, ``truncation=True``): :func:`keep_end` keeps the end of the
prompt's text, cut at a token boundary, and the template around it stays whole (system message, turn markers,
the generation prompt), so the model still sees a well-formed turn ending in the question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from llmfound.errors import InputTooLongError

__all__ = ["max_positions", "Options", "CLI", "PYTHON", "check_fits", "keep_end"]


def max_positions(model, tokenizer=None) -> int | None:
    """The most tokens one input may have: the smaller of ``config.max_position_embeddings`` (``model`` is a
    model or its config) and the tokenizer's ``model_max_length`` (ignored when it is transformers' "unset" huge
    value); None when neither declares a limit (e.g. T5's relative positions)."""
    cands = []
    n = getattr(getattr(model, "config", model), "max_position_embeddings", None)
    if isinstance(n, int) and n > 0:
        cands.append(n)
    t = getattr(tokenizer, "model_max_length", None)
    if isinstance(t, int) and 0 < t < 1_000_000:
        cands.append(t)
    return min(cands) if cands else None


@dataclass(frozen=True)
class Options:
    """How a caller names the settings a refusal points to: ``new_tokens`` (the bound on generated tokens),
    ``truncate`` (the way to ask for a cut; None where there is none), ``prompt`` (what the prompt is called)."""

    new_tokens: str
    truncate: str | None
    prompt: str = "the prompt"


CLI = Options("--max-new-tokens", "--truncate")
"""The command line's names (``generate``, ``pipeline``)."""

PYTHON = Options("max_new_tokens", "truncation=True")
"""The Python API's names (``llmfound.pipeline("text-generation")``)."""


def check_fits(prompt_tokens: int, max_new_tokens: int, limit: int | None, *, model: str,
               options: Options = PYTHON) -> None:
    """Refuse a prompt of ``prompt_tokens`` tokens that, with up to ``max_new_tokens`` generated after it, would
    not fit ``limit`` positions (None: no limit is known, nothing is checked).

    Raises :class:`InputTooLongError` (exit 2), one line naming ``model``, the limit, the prompt's length in
    tokens and what to do (shorten the prompt, lower the new tokens, or ask for a cut, in ``options``' names);
    when ``max_new_tokens`` alone leaves no room for a prompt, it says to lower that."""
    if limit is None or prompt_tokens + max_new_tokens <= limit:
        return
    opt = options
    if max_new_tokens >= limit:
        raise InputTooLongError(f"{opt.new_tokens} {max_new_tokens:,} leaves no room for {opt.prompt} "
                                f"({prompt_tokens:,} tokens): {model} takes at most {limit:,} tokens in all "
                                f"(its max positions); lower {opt.new_tokens}")
    cut = f", or pass {opt.truncate} to keep the end of {opt.prompt} that fits" if opt.truncate else ""
    raise InputTooLongError(f"{opt.prompt} is {prompt_tokens:,} tokens and {opt.new_tokens} asks for up to "
                            f"{max_new_tokens:,} more ({prompt_tokens + max_new_tokens:,} in all), but {model} takes "
                            f"at most {limit:,} tokens (its max positions); shorten {opt.prompt}, lower "
                            f"{opt.new_tokens}{cut}")


def keep_end(text: str, tokenizer: Any, count: Callable[[str], int], budget: int, *, model: str,
             options: Options = PYTHON) -> str:
    """The longest end of ``text`` that fits: ``text`` cut at one of its token boundaries (``tokenizer``'s
    offsets; characters when the tokenizer gives none) so that ``count(end) <= budget``.

    ``count(s)``: the prompt's length in tokens with ``s`` in place of ``text`` (the whole conversation rendered
    around it: the template's tokens count too); ``budget``: positions left for the prompt (the limit minus the
    new tokens). Returns ``text`` itself when it fits. Raises :class:`InputTooLongError` when even an empty
    ``text`` does not fit (the rest of the prompt, e.g. a long system message, is over the budget)."""
    need = count(text)
    if need <= budget:
        return text
    rest = count("")
    if rest > budget:
        raise InputTooLongError(f"{options.prompt} does not fit even cut to nothing: the rest of the input (template, "
                                f"system and earlier messages) is {rest:,} tokens, over the {budget:,} that "
                                f"{model} leaves beside {options.new_tokens}; shorten it")
    try:
        starts = [a for a, _ in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
                  ["offset_mapping"]]
    except (NotImplementedError, TypeError, ValueError, KeyError):  # a slow tokenizer has no offsets
        starts = list(range(len(text)))
    k = 0
    while k < len(starts):  # drop the excess in tokens, then re-count: merges at the cut can shift it a little
        k = min(len(starts), k + max(1, need - budget))
        end = text[starts[k]:] if k < len(starts) else ""
        need = count(end)
        if need <= budget:
            return end
    return ""
