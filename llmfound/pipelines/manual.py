"""llmfound's own pipelines, for three tasks transformers 5 removed (question-answering, summarization, translation)
and for sentence embeddings: the manual tokenize / forward-or-generate / decode workflow behind a callable with
transformers v4's input and output shapes (see :mod:`llmfound.pipelines` for why and with which sources).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from llmfound.errors import InputTooLongError, LlmfoundError
from llmfound.units import plural
from llmfound.context import max_positions
from llmfound.pipelines.tasks import is_text_list, text_batch, too_long, wrong_input, get_task

__all__ = ["QA_SPECIAL_TOKENS", "QA_MIN_CONTEXT_TOKENS", "QA_CANDIDATES_PER_ANSWER", "FALLBACK_POSITIONS",
    "LlmfoundPipeline", "QuestionAnsweringPipeline", "Seq2SeqPipeline", "SentenceEmbeddingPipeline", "check_options",
    "check_pooling"]

# Question answering's windowing. The defaults of ``_answer`` (max_seq_len 384, doc_stride 128, max_question_len 64,
# max_answer_len 15, top_k 1) are transformers v4's QuestionAnsweringPipeline defaults, kept so answers match v4.
QA_SPECIAL_TOKENS = 4
"""Most special tokens a (question, context) pair gets: RoBERTa's ``<s> q </s></s> c </s>`` (BERT's
``[CLS] q [SEP] c [SEP]`` has 3); reserved in every window."""
QA_MIN_CONTEXT_TOKENS = 4
"""Fewest context tokens a window must hold; a question that leaves less room is refused as too long."""
QA_CANDIDATES_PER_ANSWER = 4
"""Spans examined per requested answer (``top_k``) in each window before those outside the context are dropped."""
FALLBACK_POSITIONS = 512
"""Positions assumed when neither the model config nor the tokenizer states a limit (BERT's 512)."""



def check_options(task: str, given: dict, known: tuple[str, ...]) -> None:
    """Raise :class:`LlmfoundError` naming keyword options a llmfound pipeline does not take."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise LlmfoundError(f"{task} does not take option(s) {', '.join(unknown)}; it takes {', '.join(known)}")


def check_pooling(pooling: Any) -> None:
    """Raise :class:`LlmfoundError` for a ``pooling`` the sentence-embedding pipeline does not take."""
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
    """Extractive question answering by the manual workflow (transformers 5.3 removed this pipeline;
    ``docs/sources.md``).

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
        check_options(self.task, defaults, self.options)
        super().__init__(model, tokenizer, device, **defaults)

    def __call__(self, *args: Any, question: Any = None, context: Any = None, **kw: Any):
        kw = self._kw(kw)
        check_options(self.task, kw, self.options)
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
                    raise wrong_input(self.task, x, get_task(self.task).inputs)
                examples = []
                for d in pairs:
                    if not (isinstance(d.get("question"), str) and isinstance(d.get("context"), str)):
                        raise wrong_input(self.task, d, "dicts with string 'question' and 'context'")
                    examples.append((d["question"], d["context"]))
                res = [self._answer(q, c, **kw) for q, c in examples]
                return res[0] if single else res
        if isinstance(question, str) and isinstance(context, str):
            return self._answer(question, context, **kw)
        if is_text_list(question) and (isinstance(context, str) or is_text_list(context)):
            ctxs = [context] * len(question) if isinstance(context, str) else list(context)
            if len(ctxs) != len(question):
                nq, nc = len(question), len(ctxs)
                raise LlmfoundError(f"question-answering got {nq} question{'s' * (nq != 1)} but {nc} "
                                    f"context{'s' * (nc != 1)}; pass one context, or one per question")
            return [self._answer(q, c, **kw) for q, c in zip(question, ctxs)]
        bad = question if not (isinstance(question, str) or is_text_list(question)) else context
        raise wrong_input(self.task, bad, get_task(self.task).inputs)

    def _answer(self, question: str, context: str, *, top_k: int = 1, max_answer_len: int = 15,
                max_seq_len: int | None = None, doc_stride: int = 128, max_question_len: int = 64):
        import numpy as np
        import torch

        if not question.strip() or not context.strip():
            raise LlmfoundError("question-answering needs a non-empty question and context")
        if not getattr(self.tokenizer, "is_fast", False):
            raise LlmfoundError("question-answering needs a fast tokenizer (tokenizer.json) for character "
                                "offsets")
        limit = max_positions(self.model, self.tokenizer) or FALLBACK_POSITIONS
        seq_len = min(max_seq_len or 384, limit)
        q_len = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        room = QA_SPECIAL_TOKENS + QA_MIN_CONTEXT_TOKENS
        if q_len > max_question_len or q_len + room >= seq_len:
            raise InputTooLongError(f"the question is {plural(q_len, 'token')}; question-answering takes at most "
                                    f"{min(max_question_len, seq_len - room)} (the context is windowed, the "
                                    f"question is not)")
        # the stride (tokens two windows share) must stay under the context room of a window: take at most half
        stride = min(doc_stride, max(0, (seq_len - q_len - QA_SPECIAL_TOKENS) // 2))
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
            flat = np.argsort(-outer, axis=None)[: max(top_k, 1) * QA_CANDIDATES_PER_ANSWER]
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
    """Summarization or translation by the manual workflow (transformers 5.0 removed these pipelines;
    ``docs/sources.md``).

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

        texts, single = text_batch(self.task, inputs)
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
                raise too_long(length, limit, self.model)
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
        check_options(self.task, defaults, self.options)
        if "pooling" in defaults:
            check_pooling(defaults["pooling"])
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
        check_options(self.task, kw, self.options)
        opts.update(kw)
        pooling, normalize, batch_size = opts["pooling"], opts["normalize"], int(opts["batch_size"])
        return_tensors = opts["return_tensors"]

        texts, single = text_batch(self.task, inputs)
        check_pooling(pooling)
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
