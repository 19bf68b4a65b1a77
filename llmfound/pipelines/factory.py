"""Pipelines: the seed's one-liner ``pipeline("sentiment-analysis")`` for every task it names, offline and honest.

The seed lists sentiment-analysis, text-classification, ner, question-answering, summarization, translation,
text-generation and text-to-speech, with ``device="cuda"`` for acceleration. :func:`pipeline` accepts every one
of those names (and transformers' canonical names), and returns:

- **transformers' own pipeline** where transformers 5.23 still has the task: text-classification
  (alias sentiment-analysis), token-classification (alias ner), text-generation, text-to-audio (alias
  text-to-speech). The object is a thin subclass of transformers' class (``isinstance`` holds) that only adds
  input checks: wrong input types and inputs longer than the model's positions fail with one clear line.
- **a small llmfound pipeline** where transformers 5 *removed* the task: summarization and translation (with
  text2text-generation) went in 5.0, question-answering in 5.3 (the pull requests: ``docs/sources.md``); all are
  absent in 5.23, whose ``pipeline()`` names the replacement (``transformers.pipelines.REMOVED_TASKS``: "Use
  the `text-generation` pipeline with a chat model instead"; the v5 migration guide, "Pipelines", says the
  same). For the task models these pipelines ran (extractive QA, seq2seq summarizers and translators), the
  manual tokenize / forward-or-generate / decode workflow is what is left (transformers' own docs call it "the
  recommended approach" for those examples: ``docs/sources.md``). :class:`QuestionAnsweringPipeline` and
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

import logging
import os
import re
from pathlib import Path
from typing import Any

from llmfound.assets.cache import check_model_folder
from llmfound.outputs import atomic_write, check_output_path
from llmfound.errors import AssetError, LlmfoundError, first_line
from llmfound.models import check_trained
from llmfound.errors import NoCudaError, NoOfflineModelError
from llmfound.pipelines.manual import (QuestionAnsweringPipeline, Seq2SeqPipeline, SentenceEmbeddingPipeline,
    check_options, check_pooling)
from llmfound.pipelines.tasks import TRANSLATION_RE, Task, get_task

__all__ = ["log", "resolve_device", "model_ref", "load", "write_wav", "pipeline"]

log = logging.getLogger("llmfound")


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

def model_ref(task: Task, model: Any) -> str:
    """The reference to load for ``task``: ``model`` when given, else the offline default, else the hub
    default. Raises :class:`NoOfflineModelError` at once when the hub default is needed but the hub cannot be
    used (offline mode, or unreachable: :func:`llmfound.assets.hub.hub_problem`, a probe of ~2 s at most) and
    huggingface_hub's local cache lacks that model."""
    if model is not None:
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be an asset name, a local folder or a hub id (str), got "
                            f"{type(model).__name__}")
        return str(model)
    from llmfound.assets.hub import hub_cached, hub_problem

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

    from llmfound.assets import resolve

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
    check_trained(ref, info, f"{task.name} model")
    model.eval()
    return model, tok, where


# ------------------------------------------------------------------------- transformers' own, with checks


def _guarded_class(task: str):
    """The guarded subclass for ``task`` (:mod:`llmfound.pipelines.guarded`, imported on first use: it is slow)."""
    from llmfound.pipelines.guarded import GUARDED

    return GUARDED[task]


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
    ref = model_ref(t, model)  # before resolve_device: a task without a model fails without importing torch
    dev, note = resolve_device(device)
    dtype = kw.pop("dtype", None)
    if t.name == "question-answering":  # refuse unknown options before loading anything
        check_options(t.name, kw, QuestionAnsweringPipeline.options)
    per_token = t.name == "feature-extraction" and "pooling" in kw and kw["pooling"] is None
    if t.name == "feature-extraction" and not per_token:
        check_options(t.name, kw, SentenceEmbeddingPipeline.options)
        if "pooling" in kw:
            check_pooling(kw["pooling"])
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
        pipe = transformers.pipeline(t.name, model=mdl, device=dev, pipeline_class=_guarded_class(t.name),
                                     **extra, **kw)
    else:
        mdl, tok, where = load(t, ref, dtype=dtype)
        if t.name == "question-answering":
            pipe = QuestionAnsweringPipeline(mdl, tok, dev, **kw)
        elif t.name == "feature-extraction":
            pipe = SentenceEmbeddingPipeline(mdl, tok, dev, folder=where if isinstance(where, Path) else None,
                                             **kw)
        else:
            name = task if TRANSLATION_RE.match(task) else t.name
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
