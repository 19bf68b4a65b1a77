"""Pipeline tasks: the names a user types (transformers' and the seed's), what stands behind each, and the checks
every pipeline makes on its input (types, length against the model's positions: :mod:`llmfound.context`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llmfound.errors import InputTooLongError, UnknownNameError, get_by_name

__all__ = ["Task", "TASKS", "SEED_TASKS", "task_names", "get_task", "NOT_TRANSFORMERS_TASKS", "TRANSLATION_RE",
           "too_long", "text_batch", "is_text_list", "is_chat", "wrong_input"]



@dataclass(frozen=True)
class Task:
    """One pipeline task.

    ``name``: canonical name (transformers'); ``aliases``: other accepted names (the seed's); ``backend``:
    ``"transformers"`` (transformers 5.23 has the pipeline) or ``"llmfound"`` (transformers 5 removed it, or
    llmfound defines it differently); ``auto_class``: the transformers Auto class the model loads with;
    ``offline_model``: asset/conversion name of a real model in the cache, or None; ``hub_default``: the model
    id transformers uses (or, for removed tasks, used in v4) when none is named; ``inputs``: what a call takes.
    """

    name: str
    aliases: tuple[str, ...]
    backend: str
    auto_class: str
    hub_default: str
    inputs: str
    offline_model: str | None = None


TASKS: tuple[Task, ...] = (
    Task("text-classification", ("sentiment-analysis",), "transformers", "AutoModelForSequenceClassification",
         "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
         "a string, a {'text', 'text_pair'} dict, or a list of these", offline_model="minilm-l6-sentiment"),
    Task("token-classification", ("ner",), "transformers", "AutoModelForTokenClassification",
         "dbmdz/bert-large-cased-finetuned-conll03-english", "a string or a list of strings"),
    Task("question-answering", (), "llmfound", "AutoModelForQuestionAnswering",
         "distilbert/distilbert-base-cased-distilled-squad",
         "question= and context= (strings or lists), or {'question', 'context'} dicts"),
    Task("summarization", (), "llmfound", "AutoModelForSeq2SeqLM", "sshleifer/distilbart-cnn-12-6",
         "a string or a list of strings"),
    Task("translation", (), "llmfound", "AutoModelForSeq2SeqLM", "google-t5/t5-base",
         "a string or a list of strings"),
    Task("text-generation", (), "transformers", "AutoModelForCausalLM", "HuggingFaceTB/SmolLM3-3B",
         "a string, a chat (list of {'role', 'content'} dicts), or a list of these",
         offline_model="smollm2-135m-instruct"),
    Task("feature-extraction", (), "llmfound", "AutoModel", "sentence-transformers/all-MiniLM-L6-v2",
         "a string or a list of strings", offline_model="all-minilm-l6-v2"),
    Task("text-to-audio", ("text-to-speech",), "transformers", "AutoModelForTextToWaveform", "suno/bark-small",
         "a string or a list of strings"),
)
"""The task table. Hub defaults: transformers 5.23's ``SUPPORTED_TASKS`` for the tasks it has; for the removed
ones, transformers 4.x's defaults (QA: distilbert-base-cased-distilled-squad; summarization:
distilbart-cnn-12-6; translation: t5-base). For feature-extraction the hub id is the one the offline asset
mirrors (transformers' own default is distilbert-base-cased, a token-feature model)."""

SEED_TASKS = ("sentiment-analysis", "text-classification", "ner", "question-answering", "summarization",
              "translation", "text-generation", "text-to-speech")
"""The task names the seed lists, in its order."""

TRANSLATION_RE = re.compile(r"^translation_([a-z]{2,3})_to_([a-z]{2,3})$")


def task_names() -> list[str]:
    """Every accepted task name: canonical names, aliases, and the ``translation_xx_to_yy`` pattern."""
    return [n for t in TASKS for n in (t.name, *t.aliases)] + ["translation_xx_to_yy"]


def get_task(name: str) -> Task:
    """The :class:`Task` for a canonical name, alias, or ``translation_xx_to_yy``.

    Raises :class:`UnknownNameError` listing the known names (transformers 5.23's other tasks are not
    wrapped here: use ``transformers.pipeline`` for them)."""
    if not isinstance(name, str):
        raise TypeError(f"task must be a string such as 'sentiment-analysis', got {type(name).__name__}")
    if TRANSLATION_RE.match(name):
        name = "translation"
    if name in NOT_TRANSFORMERS_TASKS:
        raise UnknownNameError(f"unknown task {name!r}: {NOT_TRANSFORMERS_TASKS[name]}")
    return get_by_name(TASKS, name, "task", names=lambda t: (t.name, *t.aliases), known=task_names(),
                       suggest=True)


NOT_TRANSFORMERS_TASKS = {
    "qa": "transformers' name for this task is 'question-answering' (pipeline('qa') raises in transformers too); "
          "pass task 'question-answering'",
    "image-generation": "transformers has no image-generation pipeline: generating images is diffusers' job "
                        "(diffusers.AutoPipelineForText2Image; transformers 5.23's REMOVED_TASKS: 'For image "
                        "generation tasks, please use 🤗 Diffusers instead.'); llmfound covers transformers' text "
                        "tasks",
}
"""Task names that appear in course notes but are not transformers task names -> the one-line explanation."""


# ---------------------------------------------------------------------------------------------- input checks


def too_long(n: int, limit: int, model) -> InputTooLongError:
    """The error for an input of ``n`` tokens to ``model``, which takes at most ``limit`` (to be raised)."""
    name = getattr(model.config, "_name_or_path", "") or type(model).__name__
    return InputTooLongError(f"input is {n} tokens but the model ({name}) takes at most {limit} "
                             f"(its max positions); pass truncation=True to cut it, or split the text")


def text_batch(task: str, inputs: Any) -> tuple[list[str], bool]:
    """``(texts, single)``: a string becomes a one-item batch; anything but str / list of str is a TypeError."""
    if isinstance(inputs, str):
        return [inputs], True
    if is_text_list(inputs):
        return list(inputs), False
    raise wrong_input(task, inputs, "a string or a list of strings")


def is_text_list(x: Any) -> bool:
    """True for a non-empty list or tuple of strings (a batch of texts)."""
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(s, str) for s in x)


def is_chat(x: Any) -> bool:
    """True for a non-empty list or tuple of dicts with a ``role`` (a conversation)."""
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(m, dict) and "role" in m for m in x))


def wrong_input(task: str, got: Any, expected: str) -> TypeError:
    """The ``TypeError`` for ``task`` given ``got`` where it takes ``expected`` (to be raised)."""
    return TypeError(f"{task} takes {expected}; got {type(got).__name__} {got!r:.60}")
