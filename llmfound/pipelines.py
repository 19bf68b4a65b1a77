"""Pipelines: the seed's one-liner ``pipeline("sentiment-analysis")`` for every task it names, offline and honest.

The seed lists sentiment-analysis, text-classification, ner, question-answering, summarization, translation,
text-generation and text-to-speech, with ``device="cuda"`` for acceleration. :func:`pipeline` accepts every one
of those names (and transformers' canonical names), and returns:

- **transformers' own pipeline** where transformers 5.23 still has the task: text-classification
  (alias sentiment-analysis), token-classification (alias ner), text-generation, text-to-audio (alias
  text-to-speech). The object is a thin subclass of transformers' class (``isinstance`` holds) that only adds
  input checks: wrong input types and inputs longer than the model's positions fail with one clear line.
- **a small llmfound pipeline** where transformers 5 *removed* the task: summarization and translation (with
  text2text-generation) went in 5.0 (transformers PR #43256), question-answering in 5.3 (PR #43325); all are
  absent in 5.23, whose ``pipeline()`` names the replacement (``transformers.pipelines.REMOVED_TASKS``: "Use
  the `text-generation` pipeline with a chat model instead"; the v5 migration guide, "Pipelines", says the
  same). For the task models these pipelines ran (extractive QA, seq2seq summarizers and translators), the
  manual tokenize / forward-or-generate / decode workflow is what is left (transformers PR #43831 calls it
  "the recommended approach" for those docs' examples). :class:`QuestionAnsweringPipeline` and
  :class:`Seq2SeqPipeline` are that workflow, behind a callable with transformers v4's input and output
  shapes: QA -> ``{"score", "start", "end", "answer"}``, summarization -> ``[{"summary_text"}]``, translation ->
  ``[{"translation_text"}]``.
- feature-extraction (not in the seed, but what the asset layer ships a real model for) returns
  :class:`SentenceEmbeddingPipeline`: mean-pooled (attention-masked), L2-normalized sentence embeddings, the
  recipe all-MiniLM-L6-v2 publishes in its ``modules.json`` (Transformer -> mean Pooling -> Normalize). This
  differs from transformers' feature-extraction pipeline, which returns one vector per token; pass
  ``pooling=None`` to get transformers' own.

Models. ``model=None`` takes the offline default where the asset cache has a real model: text-generation ->
SmolLM2-135M-Instruct (conversion ``smollm2-135m-instruct``), feature-extraction -> all-MiniLM-L6-v2 (asset
``all-minilm-l6-v2``). No package registry ships a fine-tuned classifier, NER, QA, summarization,
translation or TTS model (``docs/sources.md``), so for those ``model=None`` means the hub
default (transformers' own default id, see :data:`TASKS`): offline, or where the hub does not answer a ~2 s
probe, that is one :class:`NoOfflineModelError` line at once (no retries) that says to pass ``model=`` a local
folder or, with hub access, a hub id. llmfound never substitutes a
random-weight model for a real one; the specs' random tiny models are named contract models.
``model`` may be an asset/conversion name, a local folder or a hub id (:func:`llmfound.assets.resolve`).
Weights load from safetensors only (``use_safetensors=True``), never with ``trust_remote_code``.

Devices (:func:`resolve_device`): ``None`` or ``"cpu"`` -> CPU; ``"cuda"``, ``"cuda:N"`` or an int ``N >= 0`` ->
that GPU, and on a machine without CUDA one :class:`NoCudaError` line saying so and how to ask for the CPU;
``"auto"`` -> ``cuda:0`` when CUDA is available, else the CPU **with a note** (the pipeline's
``llmfound_device_note`` and a log record on the ``llmfound`` logger); ``-1`` -> CPU (transformers' way). The
CLI passes ``--device`` as text, so ``"-1"`` and ``"0"`` mean the same as the ints -1 and 0.

Audio out (text-to-speech): :func:`check_output_path` validates a destination before any model work (call
it first), :func:`write_wav` writes 16-bit PCM atomically (temporary file in the same folder, then
``os.replace``).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assets import ModelFolderError, check_model_folder  # noqa: F401 (re-exported)
from .outputs import atomic_write, check_output_path  # noqa: F401 (re-exported)
from .errors import AssetError, EnvironmentProblem, LlmfoundError, UnknownNameError, first_line

log = logging.getLogger("llmfound")


class NoOfflineModelError(LlmfoundError):
    """``model=None`` for a task that has no offline model, while the hub cannot be used (offline mode, or
    unreachable); exit code 3."""

    exit_code = 3


class NoCudaError(EnvironmentProblem):
    """A CUDA device was asked for on a machine where torch sees none (or not that index)."""


class UntrainedWeightsError(LlmfoundError):
    """The checkpoint lacks weights the task's model class needs (e.g. a classification head): loading it
    would give a randomly initialized head, so llmfound refuses instead of returning random answers."""


class InputTooLongError(LlmfoundError):
    """An input has more tokens than the model has positions, and truncation was not asked for."""


# ------------------------------------------------------------------------------------------------- tasks


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
         "a string, a {'text', 'text_pair'} dict, or a list of these"),
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

_TRANSLATION_RE = re.compile(r"^translation_([a-z]{2,3})_to_([a-z]{2,3})$")


def task_names() -> list[str]:
    """Every accepted task name: canonical names, aliases, and the ``translation_xx_to_yy`` pattern."""
    return [n for t in TASKS for n in (t.name, *t.aliases)] + ["translation_xx_to_yy"]


def get_task(name: str) -> Task:
    """The :class:`Task` for a canonical name, alias, or ``translation_xx_to_yy``.

    Raises :class:`UnknownNameError` listing the known names (transformers 5.23's other tasks are not
    wrapped here: use ``transformers.pipeline`` for them)."""
    if not isinstance(name, str):
        raise TypeError(f"task must be a string such as 'sentiment-analysis', got {type(name).__name__}")
    if _TRANSLATION_RE.match(name):
        name = "translation"
    for t in TASKS:
        if name == t.name or name in t.aliases:
            return t
    if name in NOT_TRANSFORMERS_TASKS:
        raise UnknownNameError(f"unknown task {name!r}: {NOT_TRANSFORMERS_TASKS[name]}")
    import difflib

    close = difflib.get_close_matches(name, task_names(), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown task {name!r}{hint} known tasks: {', '.join(task_names())}")


NOT_TRANSFORMERS_TASKS = {
    "qa": "transformers' name for this task is 'question-answering' (pipeline('qa') raises in transformers too); "
          "pass task 'question-answering'",
    "image-generation": "transformers has no image-generation pipeline: generating images is diffusers' job "
                        "(diffusers.AutoPipelineForText2Image; transformers 5.23's REMOVED_TASKS: 'For image "
                        "generation tasks, please use 🤗 Diffusers instead.'); llmfound covers transformers' text "
                        "tasks",
}
"""Task names that appear in course notes but are not transformers task names -> the one-line explanation."""


# ----------------------------------------------------------------------------------------------- devices


def resolve_device(device: Any) -> tuple[str, str | None]:
    """Turn a user's device into ``(torch device string, note)``; ``note`` is None unless something fell back.

    Accepts None / ``"cpu"`` / ``-1`` or ``"-1"`` (CPU, transformers' convention), ``"cuda"`` / ``"cuda:N"`` /
    int ``N >= 0`` or its text ``"N"`` (that GPU; raises
    :class:`NoCudaError` when torch sees no CUDA device or not index N), ``"auto"`` (``cuda:0`` if available,
    else ``"cpu"`` with a note), a ``torch.device``. Anything else: :class:`LlmfoundError` listing the forms.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if isinstance(device, str) and re.fullmatch(r"\s*[+-]?\d+\s*", device):  # the CLI's --device -1 / 0
        device = int(device)
    if device is None or device == "cpu" or (isinstance(device, int) and not isinstance(device, bool)
                                              and device == -1):
        return "cpu", None
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda:0", None
        return "cpu", "device='auto': no CUDA device is available, running on the CPU"
    index: int | None = None
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        index = device
    elif isinstance(device, str):
        m = re.fullmatch(r"cuda(?::(\d+))?", device.strip().lower())
        if m:
            index = int(m.group(1) or 0)
    if index is None:
        raise LlmfoundError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N', 'auto', an int N >= 0 "
                            f"(GPU N) or -1 (CPU)")
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "torch sees no CUDA device")
        raise NoCudaError(f"device {device!r} asked for, but this machine has no CUDA device ({why}, torch "
                          f"{torch.__version__}); pass device='cpu' (CLI: --device cpu), or device='auto' to "
                          f"use a GPU only when there is one")
    if index >= torch.cuda.device_count():
        raise NoCudaError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA "
                          f"device(s) (cuda:0..cuda:{torch.cuda.device_count() - 1}); pass one of those or 'cpu'")
    return f"cuda:{index}", None


# ------------------------------------------------------------------------------------------------ models

def _model_ref(task: Task, model: Any) -> str:
    """The reference to load for ``task``: ``model`` when given, else the offline default, else the hub
    default. Raises :class:`NoOfflineModelError` at once when the hub default is needed but the hub cannot be
    used (offline mode, or unreachable: :func:`llmfound.hub.hub_problem`, a probe of ~2 s at most) and
    huggingface_hub's local cache lacks that model."""
    if model is not None:
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be an asset name, a local folder or a hub id (str), got "
                            f"{type(model).__name__}")
        return str(model)
    from .hub import hub_cached, hub_problem

    if task.offline_model:
        return task.offline_model
    problem = hub_problem()
    if problem and hub_cached(task.hub_default) is None:
        raise NoOfflineModelError(
            f"no offline model ships for {task.name!r} (no package registry carries a fine-tuned one) and "
            f"{problem}; pass model= (CLI: --model) a local folder, or with hub access a hub id such as "
            f"{task.hub_default!r} (transformers' default)")
    return task.hub_default


def load(task: Task, ref: str, *, dtype: Any = None):
    """Load ``(model, tokenizer, folder_or_id)`` for ``task`` from an asset name, local folder or hub id.

    Safetensors only, no remote code. Raises :class:`ModelFolderError` (a local folder lacks files),
    :class:`UntrainedWeightsError` (the checkpoint lacks weights of the task's head, e.g. a bare encoder asked
    to classify: transformers would initialize them at random),
    :class:`AssetError` (the model could not be loaded, e.g. a hub id without hub access), and the asset
    layer's errors for asset names."""
    import transformers

    from .assets import resolve

    where = resolve(ref)  # a hub id offline or unreachable raises AssetMissingError here, before any retry
    if isinstance(where, Path):
        check_model_folder(where)
    cls = getattr(transformers, task.auto_class)
    kw: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False, "output_loading_info": True}
    if dtype is not None:
        kw["dtype"] = dtype
    try:
        try:
            model, info = cls.from_pretrained(str(where), **kw)
        except ValueError as e:
            if task.name != "text-to-audio" or "Unrecognized configuration class" not in str(e):
                raise
            model, info = transformers.AutoModelForTextToSpectrogram.from_pretrained(str(where), **kw)
        tok = transformers.AutoTokenizer.from_pretrained(str(where), trust_remote_code=False)
    except LlmfoundError:
        raise
    except Exception as e:  # noqa: BLE001 - OSError (hub unreachable, missing files), ValueError, httpx errors...
        hint = ("" if isinstance(where, Path) else
                " (a hub id needs hub access; offline, pass a local folder)")
        raise AssetError(f"could not load a {task.name} model from {ref!r}{hint}: {first_line(e)}") from None
    untrained = sorted(set(info.get("missing_keys") or ()) | {k[0] if isinstance(k, tuple) else k
                                                              for k in info.get("mismatched_keys") or ()})
    if untrained:
        shown = ", ".join(untrained[:4]) + (f" (+{len(untrained) - 4} more)" if len(untrained) > 4 else "")
        raise UntrainedWeightsError(
            f"{ref!r} is not a {task.name} model: it has no trained weights for {shown}, which transformers "
            f"would fill with random values; pass a model fine-tuned for {task.name}")
    model.eval()
    return model, tok, where


def max_positions(model, tokenizer) -> int | None:
    """The most tokens one input may have: the smaller of ``config.max_position_embeddings`` and the
    tokenizer's ``model_max_length`` (ignored when it is transformers' "unset" huge value); None when neither
    declares a limit (e.g. T5's relative positions)."""
    cands = []
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(n, int) and n > 0:
        cands.append(n)
    t = getattr(tokenizer, "model_max_length", None)
    if isinstance(t, int) and 0 < t < 1_000_000:
        cands.append(t)
    return min(cands) if cands else None


def _too_long(n: int, limit: int, model) -> InputTooLongError:
    name = getattr(model.config, "_name_or_path", "") or type(model).__name__
    return InputTooLongError(f"input is {n} tokens but the model ({name}) takes at most {limit} "
                             f"(its max positions); pass truncation=True to cut it, or split the text")


def _text_batch(task: str, inputs: Any) -> tuple[list[str], bool]:
    """``(texts, single)``: a string becomes a one-item batch; anything but str / list of str is a TypeError."""
    if isinstance(inputs, str):
        return [inputs], True
    if _is_text_list(inputs):
        return list(inputs), False
    raise _wrong_input(task, inputs, "a string or a list of strings")


def _is_text_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(s, str) for s in x)


def _is_chat(x: Any) -> bool:
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(m, dict) and "role" in m for m in x))


def _wrong_input(task: str, got: Any, expected: str) -> TypeError:
    return TypeError(f"{task} takes {expected}; got {type(got).__name__} {got!r:.60}")


# ------------------------------------------------------------------------- transformers' own, with checks


def _guarded_classes():
    """Subclasses of transformers' pipelines that add input checks (built lazily: importing them is slow)."""
    from transformers.pipelines.text_classification import TextClassificationPipeline
    from transformers.pipelines.text_generation import TextGenerationPipeline
    from transformers.pipelines.text_to_audio import TextToAudioPipeline
    from transformers.pipelines.token_classification import TokenClassificationPipeline

    class Guard:
        llmfound_task = ""
        llmfound_device_note: str | None = None

        def _llmfound_ok(self, x: Any) -> bool:
            return isinstance(x, str) or _is_text_list(x) or (self.llmfound_task == "text-to-audio" and _is_chat(x))

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
                raise _wrong_input(self.llmfound_task, inputs, get_task(self.llmfound_task).inputs)
            return super().__call__(inputs, *args, **kwargs)

    class TextClassification(Guard, TextClassificationPipeline):
        """transformers' TextClassificationPipeline + input-type and input-length checks (llmfound)."""

        llmfound_task = "text-classification"

        def _llmfound_ok(self, x):
            one = lambda v: isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("text"), str))  # noqa: E731
            return one(x) or (isinstance(x, (list, tuple)) and len(x) > 0 and all(one(v) for v in x))

        def preprocess(self, inputs, **tokenizer_kwargs):
            limit = max_positions(self.model, self.tokenizer)
            if limit and tokenizer_kwargs.get("truncation") and "max_length" not in tokenizer_kwargs:
                tokenizer_kwargs["max_length"] = limit
            enc = super().preprocess(inputs, **tokenizer_kwargs)
            n = enc["input_ids"].shape[-1]
            if limit and n > limit:
                raise _too_long(n, limit, self.model)
            return enc

    class TokenClassification(Guard, TokenClassificationPipeline):
        """transformers' TokenClassificationPipeline + input-type checks (llmfound). Note: transformers
        truncates a long input to the tokenizer's model_max_length silently (entities past it are dropped)
        unless ``stride=`` is given with an aggregation strategy."""

        llmfound_task = "token-classification"

    class TextGeneration(Guard, TextGenerationPipeline):
        """transformers' TextGenerationPipeline + input-type checks (llmfound)."""

        llmfound_task = "text-generation"

        def _llmfound_ok(self, x):
            return (isinstance(x, str) or _is_text_list(x) or _is_chat(x)
                    or (isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_chat(c) for c in x)))

    class TextToAudio(Guard, TextToAudioPipeline):
        """transformers' TextToAudioPipeline + input-type checks (llmfound)."""

        llmfound_task = "text-to-audio"

    return {"text-classification": TextClassification, "token-classification": TokenClassification,
            "text-generation": TextGeneration, "text-to-audio": TextToAudio}


# ------------------------------------------------------------------------------- llmfound's own pipelines


def _check_options(task: str, given: dict, known: tuple[str, ...]) -> None:
    """Raise :class:`LlmfoundError` naming keyword options a llmfound pipeline does not take."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise LlmfoundError(f"{task} does not take option(s) {', '.join(unknown)}; it takes {', '.join(known)}")


def _check_pooling(pooling: Any) -> None:
    if pooling is None:
        raise LlmfoundError("pooling=None is chosen when the pipeline is built: "
                            "llmfound.pipeline('feature-extraction', pooling=None) returns transformers' per-token "
                            "pipeline; on this sentence-embedding pipeline pooling is 'mean' or 'cls'")
    if pooling not in ("mean", "cls"):
        raise LlmfoundError(f"unknown pooling {pooling!r}; use 'mean' or 'cls' (or build the pipeline with "
                            f"pooling=None for transformers' per-token output)")


class LlmfoundPipeline:
    """Base of llmfound's pipelines: ``model``, ``tokenizer``, ``device`` (torch device string), ``task``,
    ``defaults`` (keyword arguments given at construction, used by every call unless overridden), and
    ``llmfound_device_note`` (set when ``device="auto"`` fell back to the CPU)."""

    task = ""

    def __init__(self, model, tokenizer, device: str = "cpu", **defaults: Any):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.defaults = defaults
        self.llmfound_device_note: str | None = None

    def _kw(self, kw: dict) -> dict:
        return {**self.defaults, **kw}

    def _forward_inputs(self, enc) -> dict:
        names = set(inspect.signature(self.model.forward).parameters)
        return {k: v.to(self.device) for k, v in enc.items() if k in names}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(task={self.task!r}, model={self.model.config._name_or_path!r}, "
                f"device={self.device!r})")


class QuestionAnsweringPipeline(LlmfoundPipeline):
    """Extractive question answering by the manual workflow (transformers 5.3 removed this pipeline, PR #43325).

    Call with ``question=`` and ``context=`` (strings, or equal-length lists, or one context for many
    questions), or with a ``{"question", "context"}`` dict or a list of them. Returns, like transformers v4,
    ``{"score", "start", "end", "answer"}`` for one question (a list of ``top_k`` of them when ``top_k > 1``),
    and a list of those for several. ``start``/``end`` are character offsets into the context and
    ``answer == context[start:end]``; ``score`` (in [0, 1]) = P(start) * P(end), each a softmax over the
    context tokens of the window the answer is in.

    Workflow: tokenize ``(question, context)`` with ``truncation="only_second"``, windows of ``max_seq_len``
    tokens (default min(384, model positions)) overlapping by ``doc_stride`` (128), offsets mapping; one
    forward pass; mask non-context tokens; best (start <= end < start + ``max_answer_len`` (15)) span over all
    windows. Needs a fast tokenizer (offsets). Each question is processed on its own, so a batch call equals
    one call per question. Options (at construction or per call): ``top_k``, ``max_answer_len`` (both ints >= 1),
    ``max_seq_len``, ``doc_stride``, ``max_question_len``; any other name, or ``top_k``/``max_answer_len`` < 1,
    raises :class:`LlmfoundError`.
    """

    task = "question-answering"
    options = ("top_k", "max_answer_len", "max_seq_len", "doc_stride", "max_question_len")

    def __init__(self, model, tokenizer, device: str = "cpu", **defaults: Any):
        _check_options(self.task, defaults, self.options)
        super().__init__(model, tokenizer, device, **defaults)

    def __call__(self, *args: Any, question: Any = None, context: Any = None, **kw: Any):
        kw = self._kw(kw)
        _check_options(self.task, kw, self.options)
        for name in ("top_k", "max_answer_len"):
            v = kw.get(name, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LlmfoundError(f"question-answering {name} must be an int >= 1, got {v!r}")
        if args:
            if question is not None or len(args) > 1:
                if len(args) == 2 and question is None and context is None:
                    question, context = args
                else:
                    raise TypeError("question-answering takes question= and context=, or one {'question', "
                                    "'context'} dict (or a list of them)")
            else:
                x = args[0]
                if isinstance(x, dict):
                    pairs, single = [x], True
                elif isinstance(x, (list, tuple)) and x and all(isinstance(d, dict) for d in x):
                    pairs, single = list(x), False
                else:
                    raise _wrong_input(self.task, x, get_task(self.task).inputs)
                examples = []
                for d in pairs:
                    if not (isinstance(d.get("question"), str) and isinstance(d.get("context"), str)):
                        raise _wrong_input(self.task, d, "dicts with string 'question' and 'context'")
                    examples.append((d["question"], d["context"]))
                res = [self._answer(q, c, **kw) for q, c in examples]
                return res[0] if single else res
        if isinstance(question, str) and isinstance(context, str):
            return self._answer(question, context, **kw)
        if _is_text_list(question) and (isinstance(context, str) or _is_text_list(context)):
            ctxs = [context] * len(question) if isinstance(context, str) else list(context)
            if len(ctxs) != len(question):
                nq, nc = len(question), len(ctxs)
                raise LlmfoundError(f"question-answering got {nq} question{'s' * (nq != 1)} but {nc} "
                                    f"context{'s' * (nc != 1)}; pass one context, or one per question")
            return [self._answer(q, c, **kw) for q, c in zip(question, ctxs)]
        bad = question if not (isinstance(question, str) or _is_text_list(question)) else context
        raise _wrong_input(self.task, bad, get_task(self.task).inputs)

    def _answer(self, question: str, context: str, *, top_k: int = 1, max_answer_len: int = 15,
                max_seq_len: int | None = None, doc_stride: int = 128, max_question_len: int = 64):
        import numpy as np
        import torch

        if not question.strip() or not context.strip():
            raise LlmfoundError("question-answering needs a non-empty question and context")
        if not getattr(self.tokenizer, "is_fast", False):
            raise LlmfoundError("question-answering needs a fast tokenizer (tokenizer.json) for character "
                                "offsets")
        limit = max_positions(self.model, self.tokenizer) or 512
        seq_len = min(max_seq_len or 384, limit)
        q_len = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        if q_len > max_question_len or q_len + 8 >= seq_len:
            raise InputTooLongError(f"the question is {q_len} tokens; question-answering takes at most "
                                    f"{min(max_question_len, seq_len - 8)} (the context is windowed, the "
                                    f"question is not)")
        stride = min(doc_stride, max(0, (seq_len - q_len - 4) // 2))
        enc = self.tokenizer(question, context, truncation="only_second", max_length=seq_len, stride=stride,
                             return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
                             return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**self._forward_inputs(enc))
        starts = out.start_logits.float().cpu().numpy()
        ends = out.end_logits.float().cpu().numpy()
        offsets = enc["offset_mapping"].numpy()
        cands = []
        for w in range(starts.shape[0]):
            ctx = np.array([s == 1 for s in enc.sequence_ids(w)])
            if not ctx.any():
                continue
            ps, pe = _masked_softmax(starts[w], ctx), _masked_softmax(ends[w], ctx)
            outer = np.tril(np.triu(np.outer(ps, pe)), max_answer_len - 1)
            flat = np.argsort(-outer, axis=None)[: max(top_k, 1) * 4]
            for i in flat:
                s, e = np.unravel_index(i, outer.shape)
                if outer[s, e] <= 0 or not (ctx[s] and ctx[e]):
                    continue
                cs, ce = int(offsets[w][s][0]), int(offsets[w][e][1])
                cands.append((float(outer[s, e]), cs, ce))
        best: dict[tuple[int, int], float] = {}
        for sc, cs, ce in cands:  # the same span from overlapping windows: keep its best score
            best[(cs, ce)] = max(sc, best.get((cs, ce), 0.0))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
        res = [{"score": sc, "start": cs, "end": ce, "answer": context[cs:ce]} for (cs, ce), sc in ranked]
        return res[0] if top_k == 1 else res


def _masked_softmax(logits, mask):
    import numpy as np

    x = np.where(mask, logits, -np.inf)
    x = np.exp(x - x.max())
    return x / x.sum()


class Seq2SeqPipeline(LlmfoundPipeline):
    """Summarization or translation by the manual workflow (transformers 5.0 removed these pipelines, PR #43256).

    Call with a string or a list of strings. Returns, like transformers v4, ``[{"summary_text": s}]`` (or
    ``translation_text``) for one string - a list of ``num_return_sequences`` dicts - and for a list of strings
    one entry per input (a dict, or a list of dicts when ``num_return_sequences > 1``).

    Workflow: prefix from ``config.task_specific_params`` (T5's ``"summarize: "``, ``"translate English to
    French: "`` for ``translation_en_to_fr``), tokenize, ``model.generate(**enc, **generate_kwargs)``,
    ``batch_decode(skip_special_tokens=True)``. An input longer than the model's positions raises
    :class:`InputTooLongError` unless ``truncation=True``. ``src_lang``/``tgt_lang`` (translation, for
    multilingual tokenizers such as NLLB/M2M/mBART) set the tokenizer's ``src_lang`` and force the target
    language token first. Inputs are generated one at a time (transformers v4's default ``batch_size=1``), so a
    list call equals one call per input. An empty (or whitespace-only) input raises :class:`LlmfoundError`
    before any generation (a tokenizer without special tokens gives 0 ids, on which the model crashes).
    """

    def __init__(self, model, tokenizer, device: str = "cpu", *, task: str = "summarization",
                 src_lang: str | None = None, tgt_lang: str | None = None, **defaults: Any):
        super().__init__(model, tokenizer, device, **defaults)
        self.task = task
        self.key = "summary_text" if task == "summarization" else "translation_text"
        params = getattr(model.config, "task_specific_params", None) or {}
        self.prefix = (params.get(task) or {}).get("prefix", "") or ""
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def __call__(self, inputs: Any, **kw: Any):
        import torch

        texts, single = _text_batch(self.task, inputs)
        kw = self._kw(kw)
        truncation = bool(kw.pop("truncation", False))
        kw.pop("clean_up_tokenization_spaces", None)
        src, tgt = kw.pop("src_lang", self.src_lang), kw.pop("tgt_lang", self.tgt_lang)
        if src and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = src
        if tgt:
            tid = self.tokenizer.convert_tokens_to_ids(tgt)
            if tid is None or tid == self.tokenizer.unk_token_id:
                raise LlmfoundError(f"tgt_lang {tgt!r} is not a token of this tokenizer")
            kw.setdefault("forced_bos_token_id", tid)
        n = kw.get("num_return_sequences", 1)
        limit = max_positions(self.model, self.tokenizer)
        for i, text in enumerate(texts):
            if not text.strip():
                where = "" if single else f" (item {i} of the list)"
                raise LlmfoundError(f"{self.task} got an empty input text{where}; there is nothing to "
                                    f"{'summarize' if self.key == 'summary_text' else 'translate'}: pass "
                                    f"non-empty text")
        results = []
        for text in texts:
            tk: dict[str, Any] = {"return_tensors": "pt"}
            if truncation and limit:
                tk.update(truncation=True, max_length=limit)
            enc = self.tokenizer(self.prefix + text, **tk)
            length = enc["input_ids"].shape[-1]
            if limit and length > limit:
                raise _too_long(length, limit, self.model)
            with torch.inference_mode():
                out = self.model.generate(**self._forward_inputs(enc), **kw)
            texts_out = self.tokenizer.batch_decode(out, skip_special_tokens=True)
            outs = [{self.key: t.strip()} for t in texts_out]
            results.append(outs if n > 1 or single else outs[0])
        return results[0] if single else results


class SentenceEmbeddingPipeline(LlmfoundPipeline):
    """Sentence embeddings: encoder hidden states, mean-pooled over real tokens (attention mask), L2-normalized.

    That is the published all-MiniLM-L6-v2 recipe (``modules.json``: Transformer -> Pooling(mean) -> Normalize;
    ``sentence_bert_config.json``: ``max_seq_length`` 256, longer inputs truncated). Call with a string ->
    ``list[float]`` (``hidden_size`` floats, 384 for MiniLM-L6) or a list of strings -> one list per string;
    ``return_tensors=True`` gives a torch tensor ``[hidden]`` / ``[n, hidden]`` instead. ``pooling``: ``"mean"``
    (default) or ``"cls"``; ``normalize`` (default True). ``batch_size`` (default 32) texts are padded together;
    padding is masked out, so results equal one-by-one calls up to float rounding (~1e-6). Any other option
    name (at construction or per call) raises :class:`LlmfoundError` naming it; ``pooling=None`` (transformers'
    per-token output) is chosen when building: ``llmfound.pipeline("feature-extraction", pooling=None)``.
    """

    task = "feature-extraction"

    options = ("pooling", "normalize", "batch_size", "return_tensors")

    def __init__(self, model, tokenizer, device: str = "cpu", *, folder: Path | None = None, **defaults: Any):
        _check_options(self.task, defaults, self.options)
        if "pooling" in defaults:
            _check_pooling(defaults["pooling"])
        super().__init__(model, tokenizer, device, **defaults)
        self.max_length = max_positions(model, tokenizer)
        if folder is not None and (folder / "sentence_bert_config.json").exists():
            import json

            cfg = json.loads((folder / "sentence_bert_config.json").read_text())
            if isinstance(cfg.get("max_seq_length"), int):
                self.max_length = cfg["max_seq_length"]

    def __call__(self, inputs: Any, **kw: Any):
        import torch

        opts = {"pooling": "mean", "normalize": True, "batch_size": 32, "return_tensors": False}
        kw = self._kw(kw)
        _check_options(self.task, kw, self.options)
        opts.update(kw)
        pooling, normalize, batch_size = opts["pooling"], opts["normalize"], int(opts["batch_size"])
        return_tensors = opts["return_tensors"]

        texts, single = _text_batch(self.task, inputs)
        _check_pooling(pooling)
        chunks = []
        for i in range(0, len(texts), max(1, batch_size)):
            enc = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=self.max_length is not None,
                                 max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**self._forward_inputs(enc)).last_hidden_state.float()
            if pooling == "cls":
                emb = hidden[:, 0]
            else:
                mask = enc["attention_mask"].to(hidden.device).unsqueeze(-1).float()
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=-1)
            chunks.append(emb.cpu())
        out = torch.cat(chunks)
        if return_tensors:
            return out[0] if single else out
        return out[0].tolist() if single else out.tolist()


# --------------------------------------------------------------------------------------------- audio out


def write_wav(audio: Any, sampling_rate: Any, path: Any) -> Path:
    """Write ``audio`` as a 16-bit PCM WAV file at ``path``, atomically; returns the absolute path.

    ``audio``: floats in [-1, 1] (values outside are clipped, NaN becomes 0), shape ``[samples]``,
    ``[1, samples]`` (transformers' text-to-audio output) or ``[channels, samples]`` / ``[samples, channels]``
    (the shorter axis is taken as channels). ``sampling_rate``: samples per second (positive int, e.g. the
    pipeline's ``"sampling_rate"``). The file is written to a temporary file in the same folder and moved
    into place with ``os.replace``, so ``path`` is never left half-written. Raises :class:`LlmfoundError`
    for a bad destination (see :func:`check_output_path`, which is checked first), an empty or non-numeric
    signal, or a bad sampling rate."""
    import wave

    import numpy as np

    check_output_path(path)
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise LlmfoundError(f"sampling_rate must be a positive int (samples per second), got {sampling_rate!r}")
    try:
        a = np.asarray(audio, dtype="float32")
    except (TypeError, ValueError) as e:
        raise LlmfoundError(f"audio must be an array of floats in [-1, 1]: {e}") from None
    a = np.squeeze(a)
    if a.ndim == 0 or a.size == 0:
        raise LlmfoundError("audio is empty: there is nothing to write")
    if a.ndim > 2:
        raise LlmfoundError(f"audio must be [samples] or [channels, samples], got shape {tuple(a.shape)}")
    frames = a[:, None] if a.ndim == 1 else (a.T if a.shape[0] < a.shape[1] else a)  # [samples, channels]
    pcm = (np.clip(np.nan_to_num(frames, nan=0.0), -1.0, 1.0) * 32767).astype("<i2")
    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(int(pcm.shape[1]))
            w.setsampwidth(2)
            w.setframerate(int(sampling_rate))
            w.writeframes(np.ascontiguousarray(pcm).tobytes())

    return atomic_write(path, write)


# --------------------------------------------------------------------------------------------- the entry


def pipeline(task: str, model: Any = None, device: Any = None, **kw: Any):
    """The seed's one-liner: ``pipeline("sentiment-analysis")("I love open-source LLMs!")``.

    ``task``: a seed name (sentiment-analysis, text-classification, ner, question-answering, summarization,
    translation, text-generation, text-to-speech), a canonical name (token-classification, text-to-audio,
    feature-extraction) or ``translation_xx_to_yy``. ``model``: asset/conversion name, local folder, or hub id;
    None = the offline default or, for tasks without one, the hub default (see the module doc). ``device``:
    see :func:`resolve_device`. Construction-only keywords: ``dtype`` (e.g. ``torch.float32``; default: what
    the checkpoint stores), ``pooling`` (feature-extraction: None = transformers' token-level pipeline). Other
    keywords are the pipeline's defaults for every call (``top_k``, ``max_new_tokens``, ``aggregation_strategy``,
    ``truncation``...).

    Returns transformers' own pipeline (a checking subclass) for text-classification, token-classification,
    text-generation and text-to-audio; :class:`QuestionAnsweringPipeline`, :class:`Seq2SeqPipeline` or
    :class:`SentenceEmbeddingPipeline` otherwise (transformers 5.0 removed summarization and translation, 5.3
    question-answering).

    Raises :class:`UnknownNameError` (unknown task), :class:`NoOfflineModelError`, :class:`ModelFolderError`,
    :class:`UntrainedWeightsError` (the model has no trained head for the task),
    :class:`AssetError` (including a hub failure, as one line), :class:`AssetMissingError` (a hub id in offline
    mode, ``LLMFOUND_OFFLINE`` / ``HF_HUB_OFFLINE``, or with the hub unreachable), :class:`NoCudaError`,
    :class:`LlmfoundError` (bad device; an option question-answering or feature-extraction does not take,
    checked before loading).
    """
    t = get_task(task)
    ref = _model_ref(t, model)  # before resolve_device: a task without a model fails without importing torch
    dev, note = resolve_device(device)
    dtype = kw.pop("dtype", None)
    if t.name == "question-answering":  # refuse unknown options before loading anything
        _check_options(t.name, kw, QuestionAnsweringPipeline.options)
    per_token = t.name == "feature-extraction" and "pooling" in kw and kw["pooling"] is None
    if t.name == "feature-extraction" and not per_token:
        _check_options(t.name, kw, SentenceEmbeddingPipeline.options)
        if "pooling" in kw:
            _check_pooling(kw["pooling"])
    if per_token:
        kw.pop("pooling")
        import transformers

        mdl, tok, _ = load(t, ref, dtype=dtype)
        pipe = transformers.pipeline("feature-extraction", model=mdl, tokenizer=tok, device=dev, **kw)
    elif t.backend == "transformers":
        import transformers

        mdl, tok, where = load(t, ref, dtype=dtype)
        extra: dict[str, Any] = {"tokenizer": tok}
        if t.name == "text-to-audio":
            extra = _tts_preprocessor(where, tok)
        pipe = transformers.pipeline(t.name, model=mdl, device=dev, pipeline_class=_guarded_classes()[t.name],
                                     **extra, **kw)
    else:
        mdl, tok, where = load(t, ref, dtype=dtype)
        if t.name == "question-answering":
            pipe = QuestionAnsweringPipeline(mdl, tok, dev, **kw)
        elif t.name == "feature-extraction":
            pipe = SentenceEmbeddingPipeline(mdl, tok, dev, folder=where if isinstance(where, Path) else None,
                                             **kw)
        else:
            name = task if _TRANSLATION_RE.match(task) else t.name
            pipe = Seq2SeqPipeline(mdl, tok, dev, task=name, **kw)
    pipe.llmfound_device_note = note
    if note:
        log.info(note)
    return pipe


def _tts_preprocessor(where: Path | str, tok) -> dict:
    """For text-to-audio: a model's processor when it has one (Bark, SeamlessM4T...), else its tokenizer."""
    if isinstance(where, Path) and not any((where / f).exists() for f in
                                           ("processor_config.json", "preprocessor_config.json")):
        return {"tokenizer": tok}
    from transformers import AutoProcessor, ProcessorMixin

    try:
        proc = AutoProcessor.from_pretrained(str(where), trust_remote_code=False)
    except (OSError, ValueError):
        return {"tokenizer": tok}
    return {"processor": proc, "tokenizer": tok} if isinstance(proc, ProcessorMixin) else {"tokenizer": tok}
