"""The offline sentiment model: a real sentence encoder, a trained head, and an honest measure of how good it is.

No package registry ships a fine-tuned sentiment classifier, but the parts to make one do ship: the
all-MiniLM-L6-v2 encoder (asset ``all-minilm-l6-v2``) and 200 labelled movie-review sentences (asset
``pang-lee-polarity``; what the file is: ``docs/sources.md``). :func:`make_classifier` puts them together as an
ordinary transformers ``BertForSequenceClassification`` folder, the shape ``pipeline("sentiment-analysis")``
loads:

1. **tokenizer and encoder**: all-MiniLM-L6-v2's WordPiece tokenizer and its 6 BERT layers, weights unchanged
   (frozen: fast, byte-identical, and cross-validated as it is made; what fine-tuning the encoder too gains and
   costs is measured in ``benchmarks/sentiment.py --finetune``, figures in ``docs/pipelines.md``);
2. **pooling**: all-MiniLM-L6-v2 was trained to be read by averaging its token vectors (sentence-transformers'
   mean pooling), while BERT's classification head reads the first token, ``[CLS]``. :func:`mean_pooling_layer`
   sets a 7th BERT layer by hand so that its ``[CLS]`` output *is* the layer-normalized masked mean of the
   6th layer's outputs: query and key weights zero (every score 0, so attention is uniform over the tokens the
   attention mask keeps), value = identity, attention-output dense = ``SCALE`` x identity so the residual
   ``x`` is negligible after the LayerNorm (``LN(SCALE * mean + x) = LN(mean + x / SCALE)``), feed-forward
   zero (``LN(0 + h) = h`` for an already normalized ``h``). The pooler is ``tanh(h / sqrt(hidden))``: nearly
   linear, and ``h / sqrt(hidden)`` is the centred unit vector of the mean;
3. **head**: logistic regression on those pooled features (:func:`fit_logistic`: L2 penalty ``C=1``, the usual
   default, not tuned on this data; Newton steps in float64, deterministic), written into the
   classifier as two logits ``(-z/2, +z/2)``, so the pipeline's softmax over NEGATIVE / POSITIVE is exactly the
   regression's sigmoid.

How good: :func:`cross_validate` (stratified k-fold, fixed seed) with :func:`wilson` 95% intervals and the
confusion matrix; the figures the conversion measured are written beside the weights (:data:`CARD`,
read back by :func:`read_card`). ``benchmarks/sentiment.py`` prints them with the baselines.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from llmfound.errors import AssetError, AssetMissingError

__all__ = ["LABELS", "CARD", "SCALE", "Sentences", "read_polarity", "mean_pooling_layer", "build_model",
           "pooled_features", "fit_logistic", "stratified_folds", "CrossValidation", "cross_validate", "wilson",
           "make_classifier", "read_card"]

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
"""id2label of the made model: the names transformers' default sentiment model (distilbert SST-2) uses."""

CARD = "llmfound_training.json"
"""The file beside the weights that says what the model is made of, what it was trained on and how it scored."""

SCALE = 1e4
"""Attention-output gain of the pooling layer: the residual stream enters its LayerNorm divided by this (about
1e-4 of the mean's size here), and float16's range (65,504) still holds ``SCALE`` times the mean's entries."""

_TAGS = {"__label__neg": 0, "__label__pos": 1}


# ------------------------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Sentences:
    """Labelled sentences in file order: ``texts`` and ``labels`` (0 NEGATIVE, 1 POSITIVE), equal lengths."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]


def read_polarity(path: Path, *, sha256: str, encoding: str = "cp1252") -> Sentences:
    """Read a fastText-style polarity file: one ``__label__pos`` / ``__label__neg`` tag, a space, the sentence.

    The file is checked against ``sha256`` first (the cache's marker only records what was written; a file
    edited since is caught here). Raises :class:`AssetError` naming the file and the repair command when it is
    missing, damaged, not decodable as ``encoding`` or has a line of another shape (naming the line)."""
    repair = "repair it: llmfound assets fetch pang-lee-polarity --force"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise AssetMissingError(f"training file {path} cannot be read ({e.strerror}); {repair}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise AssetError(f"training file {path} is damaged: sha256 {got[:16]}..., expected {sha256[:16]}...; "
                         f"{repair}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise AssetError(f"training file {path} is not {encoding} text ({e.reason} at byte {e.start}); "
                         f"{repair}") from None
    texts, labels = [], []
    for i, line in enumerate(text.splitlines(), 1):
        tag, _, sentence = line.partition(" ")
        if tag not in _TAGS or not sentence.strip():
            raise AssetError(f"training file {path}, line {i}: expected '__label__pos SENTENCE' or "
                             f"'__label__neg SENTENCE', got {line[:40]!r}; {repair}")
        texts.append(sentence.strip())
        labels.append(_TAGS[tag])
    return Sentences(tuple(texts), tuple(labels))


# ------------------------------------------------------------------------------------------------ the model


def mean_pooling_layer(layer, *, scale: float = SCALE) -> None:
    """Set a ``transformers`` ``BertLayer`` (in place) so that every position's output is
    ``LayerNorm(masked mean of the layer's inputs + inputs / scale)``, about the layer-normalized mean.

    Shapes: the layer maps ``[batch, tokens, hidden]`` to the same; the mean is over the tokens the attention
    mask keeps (padding excluded), as sentence-transformers' mean pooling takes it. See the module doc."""
    import torch

    att, out = layer.attention, layer.output
    hidden = att.output.dense.weight.shape[0]
    eye = torch.eye(hidden)
    with torch.no_grad():
        for lin in (att.self.query, att.self.key, layer.intermediate.dense, out.dense):
            lin.weight.zero_()
            lin.bias.zero_()
        att.self.value.weight.copy_(eye)
        att.self.value.bias.zero_()
        att.output.dense.weight.copy_(eye * scale)
        att.output.dense.bias.zero_()
        for ln in (att.output.LayerNorm, out.LayerNorm):
            ln.weight.fill_(1.0)
            ln.bias.zero_()


def build_model(encoder: Path):
    """A ``BertForSequenceClassification`` (float32, eval mode) from the encoder folder ``encoder``
    (all-MiniLM-L6-v2's ``config.json`` + ``model.safetensors``): its layers and embeddings, a 7th layer set by
    :func:`mean_pooling_layer`, the pooler ``tanh(h / sqrt(hidden))``, and a zero (untrained) 2-label head.

    Raises ``RuntimeError`` when the encoder's weights do not fill every layer but the added ones."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(str(encoder))
    n = config.num_hidden_layers
    config.num_hidden_layers = n + 1
    config.id2label = dict(LABELS)
    config.label2id = {v: k for k, v in LABELS.items()}
    config.problem_type = "single_label_classification"
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(0)  # the constructor's random init is overwritten below; the seed keeps even that fixed
    model = BertForSequenceClassification(config).eval()
    weights = {f"bert.{k}": v for k, v in load_file(str(encoder / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    ours = (f"bert.encoder.layer.{n}.", "bert.pooler.", "classifier.")
    missing = [k for k in missing if not k.startswith(ours)]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"{encoder}: weights do not fit BERT: missing {missing[:3]}, unexpected {unexpected[:3]}")
    mean_pooling_layer(model.bert.encoder.layer[n])
    hidden = config.hidden_size
    with torch.no_grad():
        model.bert.pooler.dense.weight.copy_(torch.eye(hidden) / math.sqrt(hidden))
        model.bert.pooler.dense.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
    return model


def pooled_features(model, tokenizer, texts: Sequence[str], *, batch: int = 32, max_length: int = 128,
                    progress: bool = False):
    """The pooler outputs the head reads, as a float64 numpy array ``[len(texts), hidden]``; ``max_length`` in
    tokens (longer texts are truncated). ``progress``: a tqdm bar on stderr (off when stderr is not a terminal)."""
    import sys

    import numpy as np
    import torch
    from tqdm import tqdm

    rows = []
    with torch.no_grad(), tqdm(total=len(texts), desc="encoding sentences", unit="sentence", file=sys.stderr,
                               disable=None if progress else True) as bar:
        for i in range(0, len(texts), batch):
            enc = tokenizer(list(texts[i:i + batch]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            rows.append(model.bert(**enc).pooler_output.double().numpy())
            bar.update(len(texts[i:i + batch]))
    return np.concatenate(rows)


# ------------------------------------------------------------------------------------------------- the head


def fit_logistic(X, y, *, C: float = 1.0, max_steps: int = 100):
    """Fit L2-penalized logistic regression by Newton's method: minimize ``sum(log loss) + |w|^2 / (2C)``
    (the intercept unpenalized). ``X``: ``[n, d]`` float array, ``y``: ``[n]`` of 0/1. Returns ``(w [d], b)``
    in float64; deterministic (no randomness, fixed step order). Raises ``ValueError`` for mismatched shapes or
    labels other than 0/1."""
    import numpy as np

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],) or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"fit_logistic takes X [n, d] and y [n] of 0/1, got {X.shape} and {y.shape}")
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    penalty = np.eye(d + 1) / C
    penalty[d, d] = 0.0
    w = np.zeros(d + 1)
    for _ in range(max_steps):
        p = 1.0 / (1.0 + np.exp(-(A @ w)))
        grad = A.T @ (p - y) + penalty @ w
        hess = A.T @ (A * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:d], float(w[d])


def stratified_folds(labels: Sequence[int], k: int, seed: int):
    """Fold index ``0..k-1`` per example (numpy int array ``[n]``): each label's examples are shuffled with
    ``numpy.random.default_rng(seed)`` and dealt round-robin, so every fold holds each label in proportion."""
    import numpy as np

    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for label in sorted(set(y.tolist())):
        idx = np.flatnonzero(y == label)
        fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return fold


@dataclass(frozen=True)
class CrossValidation:
    """k-fold results: ``correct`` of ``n`` held-out predictions, ``confusion`` ``[[true NEG predicted NEG,
    true NEG predicted POS], [true POS predicted NEG, true POS predicted POS]]``, the ``interval`` (Wilson 95%,
    as fractions), ``k`` and ``seed``."""

    correct: int
    n: int
    confusion: tuple[tuple[int, int], tuple[int, int]]
    interval: tuple[float, float]
    k: int
    seed: int

    @property
    def accuracy(self) -> float:
        """``correct / n``."""
        return self.correct / self.n


def cross_validate(X, labels: Sequence[int], *, k: int = 5, seed: int = 0, C: float = 1.0) -> CrossValidation:
    """Stratified k-fold cross-validation of :func:`fit_logistic` on features ``X`` ``[n, d]``: every example is
    predicted once, by a head fitted on the other folds."""
    import numpy as np

    y = np.asarray(labels)
    X = np.asarray(X, dtype=np.float64)
    fold = stratified_folds(y, k, seed)
    pred = np.empty(len(y), dtype=int)
    for f in range(k):
        test = fold == f
        w, b = fit_logistic(X[~test], y[~test], C=C)
        pred[test] = (X[test] @ w + b > 0).astype(int)
    confusion = tuple(tuple(int(((y == t) & (pred == p)).sum()) for p in (0, 1)) for t in (0, 1))
    correct = int((pred == y).sum())
    return CrossValidation(correct, len(y), confusion, wilson(correct, len(y)), k, seed)


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for ``correct`` successes in ``n`` trials (default 95%), as fractions in [0, 1].
    Raises ``ValueError`` for ``n < 1`` or ``correct`` outside ``0..n``."""
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"wilson needs 0 <= correct <= n and n >= 1, got {correct} of {n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------------------------------------------------- the recipe


def make_classifier(out: Path, *, encoder: Path, data: Path, sha256: str, encoding: str = "cp1252", k: int = 5,
                    seed: int = 0, threads: int = 1, progress: bool = True) -> dict:
    """Train the sentiment model and save it in the empty folder ``out``: ``config.json``, ``model.safetensors``
    (float32), the encoder's tokenizer files, and :data:`CARD` (parts, training data, cross-validated accuracy).

    ``encoder``: the all-MiniLM-L6-v2 folder; ``data``: the polarity file (checked against ``sha256``, read as
    ``encoding``: :func:`read_polarity`). ``k``, ``seed``: the cross-validation's folds and shuffle. ``threads``:
    torch's CPU threads while encoding (restored after; a fixed count keeps the float sums, and so the weights,
    byte-identical run to run). Takes about 10 s on 2 cores. Returns the card (a dict). Raises
    :class:`AssetError` for a damaged training file; publishing ``out`` atomically is the caller's job."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    sentences = read_polarity(data, sha256=sha256, encoding=encoding)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(encoder))
        model = build_model(encoder)
        X = pooled_features(model, tokenizer, sentences.texts, progress=progress)
    finally:
        torch.set_num_threads(before)
    y = np.asarray(sentences.labels)
    cv = cross_validate(X, y, k=k, seed=seed)
    w, b = fit_logistic(X, y)
    with torch.no_grad():
        half = torch.tensor(w / 2, dtype=torch.float32)
        model.classifier.weight.copy_(torch.stack([-half, half]))
        model.classifier.bias.copy_(torch.tensor([-b / 2, b / 2], dtype=torch.float32))
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    card = {
        "what": "sentiment classifier (NEGATIVE / POSITIVE) made offline by llmfound from real parts",
        "summary": f"all-MiniLM-L6-v2 (frozen) + a logistic-regression head trained on {len(y)} movie-review "
                   f"sentences",
        "parts": {
            "tokenizer": "all-MiniLM-L6-v2's WordPiece tokenizer (asset all-minilm-l6-v2)",
            "encoder": f"all-MiniLM-L6-v2's {model.config.num_hidden_layers - 1} BERT layers, weights unchanged "
                       f"(frozen)",
            "pooling": "a 7th BERT layer set by hand: its [CLS] output is the layer-normalized mean of the "
                       "sentence's token vectors (sentence-transformers' mean pooling)",
            "head": f"logistic regression on the {X.shape[1]} pooled features (L2, C=1), fitted on all "
                    f"{len(y)} sentences",
        },
        "training_data": {
            "file": Path(data).name,
            "asset": "pang-lee-polarity (gensim 4.4.0 wheel, gensim/test/test_data/)",
            "what": "Pang & Lee's sentence polarity data: movie-review snippets from Rotten Tomatoes",
            "sentences": len(y), "positive": int(y.sum()), "negative": int(len(y) - y.sum()),
        },
        "accuracy": {
            "method": f"{cv.k}-fold stratified cross-validation (seed {cv.seed}): each sentence predicted by a "
                      f"head fitted without it",
            "folds": cv.k, "correct": cv.correct, "n": cv.n, "accuracy": round(cv.accuracy, 4),
            "wilson_95": [round(cv.interval[0], 4), round(cv.interval[1], 4)],
            "confusion": {"rows": "true NEGATIVE, true POSITIVE", "columns": "predicted NEGATIVE, predicted POSITIVE",
                          "counts": [list(r) for r in cv.confusion]},
            "benchmark": "python benchmarks/sentiment.py",
        },
    }
    (out / CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card


def read_card(folder: Path) -> dict | None:
    """The :data:`CARD` of a model folder made by :func:`make_classifier`, or None when the folder has none
    (any other model) or it is not JSON."""
    try:
        card = json.loads((Path(folder) / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None

