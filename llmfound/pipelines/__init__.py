"""Pipelines: the seed's one-liner ``pipeline("sentiment-analysis")`` for every task it names, offline and honest.

The package: :mod:`~llmfound.pipelines.tasks` (the task table and its input checks), :mod:`~llmfound.pipelines.guarded`
(transformers' own pipeline classes with those checks), :mod:`~llmfound.pipelines.manual` (llmfound's own pipelines
for the tasks transformers 5 removed: question answering, seq2seq, sentence embeddings),
:mod:`~llmfound.pipelines.factory` (:func:`pipeline` itself: which class, which model, which device).
"""

from llmfound.pipelines.factory import load, pipeline, resolve_device, write_wav
from llmfound.pipelines.manual import (LlmfoundPipeline, QuestionAnsweringPipeline, Seq2SeqPipeline,
    SentenceEmbeddingPipeline)
from llmfound.pipelines.tasks import NOT_TRANSFORMERS_TASKS, SEED_TASKS, TASKS, Task, get_task, task_names

__all__ = ["pipeline", "load", "resolve_device", "write_wav", "LlmfoundPipeline", "QuestionAnsweringPipeline",
           "Seq2SeqPipeline", "SentenceEmbeddingPipeline", "TASKS", "SEED_TASKS", "NOT_TRANSFORMERS_TASKS", "Task",
           "get_task", "task_names"]
