"""transformers' own pipelines with llmfound's input checks: subclasses that refuse inputs of the wrong shape in
one line (:class:`~llmfound.errors.LlmfoundError`) and inputs longer than the model's positions
(:class:`~llmfound.errors.InputTooLongError`) instead of a traceback deep inside transformers.

Importing this module imports transformers' pipeline classes (seconds): :func:`llmfound.pipelines.pipeline`
imports it only when a transformers-backed task is asked for.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers.pipelines.text_classification import TextClassificationPipeline
from transformers.pipelines.text_generation import TextGenerationPipeline
from transformers.pipelines.text_to_audio import TextToAudioPipeline
from transformers.pipelines.token_classification import TokenClassificationPipeline
from transformers.utils.chat_template_utils import Chat

from llmfound.context import check_fits, keep_end, max_positions
from llmfound.errors import LlmfoundError
from llmfound.pipelines.tasks import is_chat, is_text_list, too_long, wrong_input, get_task

__all__ = ["Guard", "TextClassification", "TokenClassification", "TextGeneration", "TextToAudio", "GUARDED"]

log = logging.getLogger("llmfound")


class Guard:
    """Mixin: checks ``inputs`` against the task's accepted shapes (:func:`llmfound.pipelines.tasks.get_task`) before
    transformers sees them; generators and datasets stream through unchecked. ``llmfound_task``: the task name;
    ``llmfound_device_note``: what ``device="auto"`` decided, set by :func:`llmfound.pipelines.pipeline`."""

    llmfound_task = ""
    llmfound_device_note: str | None = None

    def _llmfound_ok(self, x: Any) -> bool:
        return isinstance(x, str) or is_text_list(x) or (self.llmfound_task == "text-to-audio" and is_chat(x))

    def __call__(self, inputs=None, *args, **kwargs):
        if inputs is None and args:
            inputs, args = args[0], args[1:]
        elif inputs is None:  # called by keyword: transformers names it text_inputs (generation, audio)
            for name in ("text_inputs", "inputs"):
                if name in kwargs:
                    inputs = kwargs.pop(name)
                    break
        # generators and datasets stream through unchecked; everything else must have the task's shape
        checkable = inputs is None or isinstance(inputs, (str, bytes, int, float, dict, set, list, tuple))
        if checkable and not self._llmfound_ok(inputs):
            raise wrong_input(self.llmfound_task, inputs, get_task(self.llmfound_task).inputs)
        return super().__call__(inputs, *args, **kwargs)


class TextClassification(Guard, TextClassificationPipeline):
    """transformers' TextClassificationPipeline + input checks (llmfound): the input's type; an empty text
    (:class:`~llmfound.errors.LlmfoundError`, naming the list item: transformers would classify the bare
    ``[CLS] [SEP]``); a text over the model's positions (:class:`~llmfound.errors.InputTooLongError`, unless
    ``truncation=True``, which classifies the first tokens that fit and says so in a warning on the ``llmfound``
    logger)."""

    llmfound_task = "text-classification"

    def _llmfound_ok(self, x):
        one = lambda v: isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("text"), str))  # noqa: E731
        return one(x) or (isinstance(x, (list, tuple)) and len(x) > 0 and all(one(v) for v in x))

    def __call__(self, inputs=None, *args, **kwargs):
        items = [inputs] if isinstance(inputs, (str, dict)) else inputs if isinstance(inputs, (list, tuple)) else []
        for i, v in enumerate(items):
            text = v.get("text") if isinstance(v, dict) else v
            if isinstance(text, str) and not text.strip():
                where = "" if isinstance(inputs, (str, dict)) else f" (item {i} of the list)"
                raise LlmfoundError(f"text-classification got an empty input text{where}; there is nothing to "
                                    f"classify: pass non-empty text")
        return super().__call__(inputs, *args, **kwargs)

    def preprocess(self, inputs, **tokenizer_kwargs):
        limit = max_positions(self.model, self.tokenizer)
        if limit and tokenizer_kwargs.get("truncation") and "max_length" not in tokenizer_kwargs:
            tokenizer_kwargs["max_length"] = limit
            whole = super().preprocess(inputs, **{**tokenizer_kwargs, "truncation": False})["input_ids"].shape[-1]
            if whole > limit:
                model = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
                log.warning(f"truncation=True: the input was {whole:,} tokens; classified its first {limit:,} (the "
                            f"positions of {model}), the rest was not read")
        enc = super().preprocess(inputs, **tokenizer_kwargs)
        n = enc["input_ids"].shape[-1]
        if limit and n > limit:
            raise too_long(n, limit, self.model)
        return enc


class TokenClassification(Guard, TokenClassificationPipeline):
    """transformers' TokenClassificationPipeline + input-type checks (llmfound). Note: transformers
    truncates a long input to the tokenizer's model_max_length silently (entities past it are dropped)
    unless ``stride=`` is given with an aggregation strategy."""

    llmfound_task = "token-classification"


class TextGeneration(Guard, TextGenerationPipeline):
    """transformers' TextGenerationPipeline + input-type checks + the context window (llmfound).

    A prompt whose tokens plus the new tokens (``max_new_tokens``, else ``max_length``) exceed the model's
    positions raises :class:`~llmfound.errors.InputTooLongError` before the forward pass
    (:func:`llmfound.context.check_fits`); with ``truncation=True`` the end of the prompt's text (a chat's last
    message) that fits is kept instead (:func:`llmfound.context.keep_end`, a warning on the ``llmfound`` logger
    says how many tokens were dropped), where transformers' own ``truncation=True`` would cut the end of the
    tokens, the question and the generation prompt with it. ``handle_long_generation="hole"`` is transformers'
    own left cut, left to it."""

    llmfound_task = "text-generation"

    def _llmfound_ok(self, x):
        return (isinstance(x, str) or is_text_list(x) or is_chat(x)
                or (isinstance(x, (list, tuple)) and len(x) > 0 and all(is_chat(c) for c in x)))

    def preprocess(self, prompt_text, prefix="", handle_long_generation=None, truncation=None, **kw):
        pre = super().preprocess
        limit = max_positions(self.model, self.tokenizer)
        if limit is None or handle_long_generation is not None:
            return pre(prompt_text, prefix, handle_long_generation, truncation=truncation, **kw)
        enc = pre(prompt_text, prefix, **kw)
        n = enc["input_ids"].shape[-1]
        params = self._get_set_generation_params(self._prepare_generate_kwargs(
            {k: v for k, v in kw.items() if k not in ("add_special_tokens", "padding", "tokenizer_encode_kwargs",
                                                      "continue_final_message", "tools", "documents")}))
        new = params.get("max_new_tokens")
        new = max(0, (params.get("max_length") or n) - n) if new is None else new
        if n + new <= limit:
            return enc
        model = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        chat = isinstance(prompt_text, Chat)
        text = prompt_text.messages[-1].get("content") if chat else prompt_text
        if not truncation or not isinstance(text, str):
            check_fits(n, new, limit, model=model)

        def put(s: str):
            return Chat([*prompt_text.messages[:-1], {**prompt_text.messages[-1], "content": s}]) if chat else s

        end = keep_end(text, self.tokenizer, lambda s: pre(put(s), prefix, **kw)["input_ids"].shape[-1],
                       limit - new, model=model)
        enc = pre(put(end), prefix, **kw)
        log.warning(f"truncation=True: the prompt was {n:,} tokens; kept its last {enc['input_ids'].shape[-1]:,} "
                    f"(the end of its text) to fit the {limit:,} positions of {model} with {new:,} new tokens")
        return enc


class TextToAudio(Guard, TextToAudioPipeline):
    """transformers' TextToAudioPipeline + input-type checks (llmfound)."""

    llmfound_task = "text-to-audio"


GUARDED = {"text-classification": TextClassification, "token-classification": TokenClassification,
        "text-generation": TextGeneration, "text-to-audio": TextToAudio}
"""Task name -> the guarded pipeline class ``transformers.pipeline(..., pipeline_class=...)`` gets."""
