"""Lesson: ``pipeline(task)`` is one line per task - and what stands behind that line differs by task.

The seed: ``pipeline("sentiment-analysis")``, one interface for sentiment-analysis, text-classification, ner,
question-answering, summarization, translation, text-generation and text-to-speech, with ``device="cuda"``.
In transformers 5.23 four of those are still transformers pipelines (text-classification, ner =
token-classification, text-generation, text-to-speech = text-to-audio); summarization and translation were
removed in 5.0 (transformers PR #43256) and question-answering in 5.3 (PR #43325). transformers now points to
the text-generation pipeline with a chat model (its ``REMOVED_TASKS`` message; checked below); for the task
models those pipelines ran, ``llmfound.pipeline`` rebuilds them on the manual tokenize / forward-or-generate /
decode workflow, with v4's input and output shapes.

Three kinds of spec here:
1. **Real models** (offline, from the asset cache): SmolLM2-135M-Instruct for text-generation, all-MiniLM-L6-v2
   for sentence embeddings, and for sentiment-analysis ``minilm-l6-sentiment``, a model llmfound *makes*: the
   same encoder, frozen, plus a head trained on 200 labelled sentences. These check meaning: an assistant answer,
   paraphrases closer than unrelated text, the seed's sentence POSITIVE and plain complaints NEGATIVE, a held-out
   accuracy above its recorded bound. The sentiment section is the lesson the notes skip: a pipeline is a
   tokenizer, an encoder and a **trained head**; what the head reads (the mean of the token vectors, built into
   BERT as a 7th layer), what training changed (the head only), what a score means (a softmax over two labels,
   not a probability of truth) and why a trailing "not" can flip a sentence.
2. **Contract specs** (``contract`` in the name): no registry ships a fine-tuned classifier, NER, QA,
   summarization, translation or TTS model, so these run on *tiny random-weight models* built here from a
   config plus a real tokenizer from the cache (BERT WordPiece from all-MiniLM-L6-v2, GPT-2 BPE). They check
   structure only, never meaning: labels come from ``id2label``, scores are probabilities, spans index into the
   input, batch calls equal one-by-one calls.
3. **Edges**: inputs longer than the model's positions, bad input, devices; a hub tier (``--run-network``) runs
   the seed's own line on transformers' default sentiment model.

The text-generation pipeline's answer never shows a special token (``<|im_end|>``, ``<eos>``...): that is checked
for every family's tokenizer, beside the other output paths a user reads, in ``specs/test_streaming.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import llmfound
from llmfound import errors, pipelines as PL
from llmfound.outputs import check_output_path
from llmfound.errors import AssetError, AssetMissingError, LlmfoundError, UnknownNameError
from llmfound.families import get_family
from llmfound import load_tokenizer

SMOL = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
SENTIMENT = "minilm-l6-sentiment"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These models are small (135M params at most): on a shared 2-core machine, torch's second intra-op thread
    only waits for the busy core (measured here: SmolLM2 8-token chat answer 0.5 s with 1 thread, 7-15 s with 2
    under load). One thread for this module; the previous setting comes back afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

# ============================================================================ contract models (random weights)

CLS_LABELS = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
BART_POSITIONS = 64


def _bert_cfg(**kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=512, **kw)


def _build(folder, model, tok):
    """Save a contract model with safetensors (the only format llmfound loads) next to its real tokenizer."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    model.save_pretrained(folder)  # transformers 5 writes model.safetensors
    tok.save_pretrained(folder)
    assert (folder / "model.safetensors").exists(), f"{folder}: no safetensors written"
    return str(folder)


@pytest.fixture(scope="session")
def contract_models(tmp_path_factory, require_assets):
    """Tiny random-weight CONTRACT models, one folder per task (built once per session, ~1 MB each).

    Not real models: they only give pipelines something of the right architecture to run."""
    require_assets(MINILM, "gpt2-tokenizer")
    import transformers

    torch.manual_seed(0)
    bert, gpt2 = load_tokenizer("bert"), load_tokenizer("gpt2")
    root = tmp_path_factory.mktemp("contract-models")
    eos = gpt2.eos_token_id
    bart = transformers.BartConfig(vocab_size=len(gpt2), d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
                        decoder_ffn_dim=16, max_position_embeddings=BART_POSITIONS, bos_token_id=eos,
                        eos_token_id=eos, pad_token_id=eos, decoder_start_token_id=eos, forced_eos_token_id=eos)
    vits = transformers.VitsConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   ffn_dim=16,
                        flow_size=16, spectrogram_bins=17, upsample_initial_channel=16, upsample_rates=[4, 4],
                        upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                        prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1,
                        posterior_encoder_num_wavenet_layers=1, duration_predictor_num_flows=1,
                        duration_predictor_filter_channels=16, depth_separable_num_layers=1, sampling_rate=16000,
                        noise_scale=0.0, noise_scale_duration=0.0)  # no sampling noise: deterministic audio
    built = {
        "text-classification": (transformers.BertForSequenceClassification(_bert_cfg(id2label=CLS_LABELS)), bert),
        "token-classification": (transformers.BertForTokenClassification(_bert_cfg(id2label=NER_LABELS)), bert),
        "question-answering": (transformers.BertForQuestionAnswering(_bert_cfg()), bert),
        "seq2seq": (transformers.BartForConditionalGeneration(bart), gpt2),
        "text-to-audio": (transformers.VitsModel(vits), bert),
    }
    return {name: _build(root / name, m.eval(), tok) for name, (m, tok) in built.items()}


def folder_for(models, task: str) -> str:
    t = PL.get_task(task).name
    return models["seq2seq" if t in ("summarization", "translation") else t]


@pytest.fixture(scope="session")
def contract_pipes(contract_models):
    """One llmfound pipeline per seed task on its contract model (cached for the session)."""
    cache: dict[str, object] = {}

    def get(task: str):
        if task not in cache:
            cache[task] = llmfound.pipeline(task, model=folder_for(contract_models, task))
        return cache[task]

    return get


TEXTS = ["Hugging Face is based in New York City", "i love open source models",
         "Paris and Berlin are capitals", "the weather today"]
QA = [("Where is Hugging Face based?", "Hugging Face is a company based in New York City. It builds tools."),
      ("Who wrote it?", "The book was written by Jane Austen in 1813, and it is still read today."),
      ("What is the capital?", "France is a country in Europe. Its capital is Paris, a large city.")]


# ------------------------------------------------------------------------------------ every task, one line


def test_every_seed_task_name_is_accepted():
    assert PL.SEED_TASKS == ("sentiment-analysis", "text-classification", "ner", "question-answering",
                             "summarization", "translation", "text-generation", "text-to-speech")
    for name in PL.SEED_TASKS:
        assert name in PL.task_names(), name
    assert PL.get_task("sentiment-analysis").name == "text-classification"
    assert PL.get_task("ner").name == "token-classification"
    assert PL.get_task("text-to-speech").name == "text-to-audio"
    assert PL.get_task("translation_en_to_fr").name == "translation"


@pytest.mark.parametrize("task", [t for t in PL.SEED_TASKS if t != "text-generation"])
def test_contract_every_seed_task_has_a_working_one_liner(contract_pipes, task, lesson):
    """Contract: ``llmfound.pipeline(task, model=folder)`` returns a callable whose output has the task's shape
    (transformers' own class where transformers 5.23 has the task)."""
    pipe = contract_pipes(task)
    t = PL.get_task(task)
    lesson.count("seed tasks with a working one-liner (contract models)", task)
    if t.backend == "transformers":
        import transformers.pipelines as TP

        assert isinstance(pipe, TP.Pipeline), f"{task}: expected transformers' own pipeline, got {type(pipe)}"
    if t.name == "question-answering":
        out = pipe(question=QA[0][0], context=QA[0][1])
        assert set(out) == {"score", "start", "end", "answer"}, f"{task}: {out}"
    elif t.name in ("summarization", "translation"):
        out = pipe(TEXTS[0], max_new_tokens=6)
        key = "summary_text" if t.name == "summarization" else "translation_text"
        assert isinstance(out, list) and len(out) == 1 and set(out[0]) == {key}, f"{task}: {out!r}"
        assert isinstance(out[0][key], str), f"{task}: {out!r}"
    elif t.name == "text-to-audio":
        out = pipe(TEXTS[0])
        assert isinstance(out["audio"], np.ndarray) and out["audio"].size > 0, f"{task}: {out!r:.200}"
        assert np.issubdtype(out["audio"].dtype, np.floating), out["audio"].dtype
        assert out["sampling_rate"] == 16000, f"{task}: sampling_rate {out['sampling_rate']}, config says 16000"
    elif t.name == "text-classification":
        out = pipe(TEXTS[0])
        assert isinstance(out, list) and set(out[0]) == {"label", "score"}, f"{task}: {out}"
    else:  # token-classification
        out = pipe(TEXTS[0])
        assert isinstance(out, list) and all({"entity", "score", "word", "start", "end"} <= set(e) for e in out)


# --------------------------------------------------------------------------------- contract: classification


@pytest.mark.parametrize("text", TEXTS)
def test_contract_classification_labels_come_from_id2label_and_scores_sum_to_one(contract_pipes, text):
    pipe = contract_pipes("sentiment-analysis")
    every = pipe(text, top_k=None)
    assert [r["label"] for r in every] != [], text
    assert {r["label"] for r in every} == set(CLS_LABELS.values()), f"{text!r}: labels {every}"
    assert all(0.0 <= r["score"] <= 1.0 for r in every), f"{text!r}: {every}"
    assert math.isclose(sum(r["score"] for r in every), 1.0, abs_tol=1e-5), f"{text!r}: {every}"
    assert [r["score"] for r in every] == sorted((r["score"] for r in every), reverse=True), every
    top = pipe(text)[0]
    assert top["label"] == every[0]["label"] and math.isclose(top["score"], every[0]["score"], abs_tol=1e-6)


# ------------------------------------------------------------------------------------------- contract: NER


@pytest.mark.parametrize("aggregation", ["none", "simple"])
@pytest.mark.parametrize("text", TEXTS[:3])
def test_contract_ner_spans_index_into_the_input_text(contract_pipes, text, aggregation):
    """``text[start:end] == word`` after the tokenizer's declared normalization: this BERT is uncased (the
    family table says ``bert-uncased``), so the word is the lowercased slice; a sub-word keeps its ``##``."""
    assert get_family("bert").tokens.normalization == "bert-uncased"
    ents = contract_pipes("ner")(text, aggregation_strategy=aggregation)
    assert ents, f"{text!r}: random weights still label some tokens"
    labels = {v.split("-")[-1] for v in NER_LABELS.values()} | set(NER_LABELS.values())
    for e in ents:
        word = e["word"].removeprefix("##")
        assert text[e["start"]:e["end"]].lower() == word, f"{text!r} [{aggregation}]: {e}"
        assert e.get("entity", e.get("entity_group")) in labels, e
        assert 0.0 <= float(e["score"]) <= 1.0, e


# -------------------------------------------------------------------------------------------- contract: QA


@pytest.mark.parametrize("question, context", QA)
def test_contract_qa_answer_is_the_context_slice_it_points_to(contract_pipes, question, context):
    qa = contract_pipes("question-answering")
    ans = qa(question=question, context=context)
    assert ans["answer"] == context[ans["start"]:ans["end"]] and ans["answer"], f"{question!r}: {ans}"
    assert 0.0 <= ans["score"] <= 1.0, ans
    top = qa(question=question, context=context, top_k=3)
    assert len(top) == 3 and top[0] == ans, f"{question!r}: top_k=3 {top} vs top_k=1 {ans}"
    assert [a["score"] for a in top] == sorted((a["score"] for a in top), reverse=True), top
    assert all(a["answer"] == context[a["start"]:a["end"]] for a in top), top
    assert question not in ans["answer"], "the answer comes from the context, never the question"


def test_contract_qa_scores_are_a_distribution_over_spans(contract_pipes):
    """score = P(start) * P(end): over every span (start <= end) of a one-window context they sum to at most 1."""
    question, context = QA[1]
    every = contract_pipes("question-answering")(question=question, context=context, top_k=10_000,
                                                   max_answer_len=10_000)
    n_tokens = len(load_tokenizer("bert")(context, add_special_tokens=False)["input_ids"])
    assert len(every) == n_tokens * (n_tokens + 1) // 2, f"expected every span of {n_tokens} tokens: {len(every)}"
    total = sum(a["score"] for a in every)
    assert 0.0 < total <= 1.0 + 1e-6, f"{question!r}: span scores sum to {total}"


def test_contract_qa_finds_answers_in_every_window_of_a_long_context(contract_pipes):
    """A context longer than the model's 512 positions is split into overlapping windows, not cut off."""
    qa = contract_pipes("question-answering")
    context = " ".join(f"sentence {i} talks about topic number {i}." for i in range(150))
    ans = qa(question="Which topic?", context=context)
    assert ans["answer"] == context[ans["start"]:ans["end"]], ans


@pytest.mark.parametrize("questions, contexts, says", [(["q?"], ["a.", "b."], "got 1 question but 2 contexts"),
                                                       (["q?", "r?"], ["a."], "got 2 questions but 1 context")])
def test_contract_qa_refuses_unequal_question_and_context_lists_counting_in_words(contract_pipes, questions,
                                                                                 contexts, says):
    with pytest.raises(LlmfoundError) as e:
        contract_pipes("question-answering")(question=questions, context=contexts)
    assert says in str(e.value), f"{len(questions)} questions, {len(contexts)} contexts: expected {says!r}, got " \
                                 f"{str(e.value)!r}"


# -------------------------------------------------------------------------------------- contract: seq2seq


@pytest.mark.parametrize("task, key", [("summarization", "summary_text"), ("translation", "translation_text"),
                                       ("translation_en_to_fr", "translation_text")])
def test_contract_summarization_and_translation_return_strings(contract_pipes, task, key):
    out = contract_pipes(task)(TEXTS, max_new_tokens=5)
    assert len(out) == len(TEXTS), out
    assert all(set(o) == {key} and isinstance(o[key], str) and o[key] for o in out), f"{task}: {out}"
    two = contract_pipes(task)(TEXTS[0], max_new_tokens=5, num_return_sequences=2, num_beams=2)
    assert len(two) == 2 and all(isinstance(o[key], str) for o in two), two


# ---------------------------------------------------------------------------------------- contract: batch


BATCH_CALLS = {
    "sentiment-analysis": (lambda p, xs: p(xs, top_k=None), lambda p, x: p(x, top_k=None), TEXTS),
    "ner": (lambda p, xs: p(xs), lambda p, x: p(x), TEXTS),
    "question-answering": (lambda p, xs: p([{"question": q, "context": c} for q, c in xs]),
                           lambda p, x: p(question=x[0], context=x[1]), QA),
    "summarization": (lambda p, xs: p(xs, max_new_tokens=5), lambda p, x: p(x, max_new_tokens=5)[0], TEXTS),
    "translation": (lambda p, xs: p(xs, max_new_tokens=5), lambda p, x: p(x, max_new_tokens=5)[0], TEXTS),
    "text-to-speech": (lambda p, xs: p(xs), lambda p, x: p(x), TEXTS[:2]),
}


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.allclose(a, b, atol=1e-5)
    if isinstance(a, (float, np.floating)):
        return math.isclose(float(a), float(b), abs_tol=1e-5)
    return a == b


@pytest.mark.parametrize("task", list(BATCH_CALLS))
def test_contract_batch_input_equals_one_by_one_input(contract_pipes, task):
    batch, one, inputs = BATCH_CALLS[task]
    pipe = contract_pipes(task)
    together = batch(pipe, inputs)
    alone = [one(pipe, x) for x in inputs]
    for x, t, a in zip(inputs, together, alone):
        assert _close(t, a), f"{task}: input {x!r}: batch gave {t!r:.300}, alone {a!r:.300}"


# ================================================================================== real models (offline)


@pytest.fixture(scope="module")
def generator(require_assets):
    require_assets(SMOL)
    return llmfound.pipeline("text-generation")


CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def test_chat_generation_returns_an_assistant_message(generator):
    out = generator(CHAT, max_new_tokens=8, do_sample=False)
    convo = out[0]["generated_text"]
    assert convo[:-1] == CHAT, f"the conversation should come back first, got {convo!r}"
    assert convo[-1]["role"] == "assistant" and convo[-1]["content"].strip(), convo[-1]
    assert "Paris" in convo[-1]["content"], f"SmolLM2 (greedy) answers Paris; got {convo[-1]['content']!r}"


@pytest.mark.parametrize("prompt", [CHAT, "The capital of France is"], ids=["chat", "plain"])
def test_return_full_text_false_never_echoes_the_prompt(generator, prompt):
    new = generator(prompt, max_new_tokens=6, do_sample=False, return_full_text=False)[0]["generated_text"]
    assert isinstance(new, str) and new.strip(), new
    prompt_text = prompt if isinstance(prompt, str) else prompt[0]["content"]
    assert prompt_text not in new and "<|im_start|>" not in new and "assistant\n" not in new, new
    if isinstance(prompt, str):  # the contrast: by default the plain prompt is echoed first
        full = generator(prompt, max_new_tokens=6, do_sample=False)[0]["generated_text"]
        assert full == prompt + new, f"full text {full!r} should be prompt + new text {new!r}"


@pytest.fixture(scope="module")
def embedder(require_assets):
    require_assets(MINILM)
    return llmfound.pipeline("feature-extraction")


# (anchor, paraphrase, unrelated): fixed pairs, written by hand
PARAPHRASES = [
    ("A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."),
    ("How do I reset my password?", "I forgot my password, how can I change it?", "Bake the bread for an hour."),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch.", "Interest rates were raised again."),
    ("It is raining heavily outside.", "There is a downpour outside.", "She scored two goals in the final."),
    ("Open-source LLMs run on laptops.", "Open language models can run on a laptop.",
     "The museum closes on Mondays."),
]


@pytest.mark.parametrize("anchor, para, other", PARAPHRASES)
def test_paraphrases_are_closer_than_unrelated_sentences(embedder, anchor, para, other, lesson):
    a, p, o = (np.array(v) for v in embedder([anchor, para, other]))
    assert a.shape == (384,), a.shape
    for v in (a, p, o):
        assert math.isclose(float(np.linalg.norm(v)), 1.0, abs_tol=1e-4), "embeddings are L2-normalized"
    near, far = float(a @ p), float(a @ o)
    assert near > far + 0.2, f"{anchor!r}: cos to paraphrase {near:.3f} should beat unrelated {far:.3f} by 0.2"
    lesson.count("paraphrase pairs closer than unrelated text (real all-MiniLM-L6-v2)", anchor)


def test_embedding_batch_equals_one_by_one(embedder):
    texts = [s for row in PARAPHRASES for s in row]
    together = np.array(embedder(texts))
    alone = np.array([embedder(t) for t in texts])
    assert np.allclose(together, alone, atol=1e-5), float(np.abs(together - alone).max())


# ============================================================================ the sentiment model llmfound makes


@pytest.fixture(scope="module")
def sentiment(require_assets):
    """The seed's ``pipeline("sentiment-analysis")``, offline: conversion ``minilm-l6-sentiment`` (made once by
    ``llmfound assets fetch --all``: all-MiniLM-L6-v2 frozen + a head trained on pang-lee-polarity)."""
    require_assets(SENTIMENT)
    return llmfound.pipeline("sentiment-analysis")


SEED_SENTENCE = "I love open-source LLMs!"
# Plain sentences, written by hand, that a sentiment model must get right. The model is weak (72.5% held out):
# "I liked it" and "funny and charming" come out NEGATIVE (docs/pipelines.md), so they are not here.
OBVIOUS = [
    ("POSITIVE", SEED_SENTENCE), ("POSITIVE", "a gorgeous, moving film"), ("POSITIVE", "It was a good film"),
    ("POSITIVE", "This is great"),
    ("NEGATIVE", "This movie was terrible."), ("NEGATIVE", "a dull, tedious mess"), ("NEGATIVE", "I hate this."),
    ("NEGATIVE", "The worst film I have seen this year."),
]
HELD_OUT_BOUND = 0.70
"""Lowest accepted 5-fold cross-validated accuracy. Measured: 145/200 = 72.5% (Wilson 95% 65.9-78.2%), fold
seeds 0..9 from 71.5% to 75.0% (``benchmarks/sentiment.py``, docs/benchmarks.md); 0.70 leaves room for a float
rounding in another torch, not for a broken pooling layer ([CLS] instead of the mean: 63.5%)."""


def test_the_seeds_sentence_comes_out_positive(sentiment, lesson):
    """The notes' first line, on a real model: transformers' own output shape, a list of ``{label, score}``."""
    from transformers import TextClassificationPipeline

    out = sentiment(SEED_SENTENCE)
    assert isinstance(sentiment, TextClassificationPipeline), type(sentiment).__mro__
    assert isinstance(out, list) and len(out) == 1 and set(out[0]) == {"label", "score"}, out
    assert out[0]["label"] == "POSITIVE", f"{SEED_SENTENCE!r}: expected POSITIVE, got {out}"
    lesson.value("the notes' sentiment line on a real model", f"{out[0]['label']} {out[0]['score']:.3f}")


@pytest.mark.parametrize("label, text", OBVIOUS)
def test_obvious_sentences_get_their_label(sentiment, label, text):
    got = sentiment(text)[0]
    assert got["label"] == label, f"minilm-l6-sentiment, {text!r}: expected {label}, got {got}"


def test_the_score_is_a_softmax_over_the_two_labels_not_a_probability_of_truth(sentiment):
    """With ``top_k=None`` both labels come back, best first, summing to 1: the score is how far the head's one
    number ``z`` (a weighted sum of the pooled features) is from 0, squashed (``sigmoid(z)`` for POSITIVE). It
    is not calibrated: 0.6 does not mean "right 6 times in 10"; it means "closer to the positives it was
    trained on than to the negatives"."""
    both = sentiment(SEED_SENTENCE, top_k=None)
    assert [r["label"] for r in both] == ["POSITIVE", "NEGATIVE"], both
    assert math.isclose(sum(r["score"] for r in both), 1.0, abs_tol=1e-6), both
    enc = sentiment.tokenizer(SEED_SENTENCE, return_tensors="pt")
    with torch.no_grad():
        logits = sentiment.model(**enc).logits[0]
    assert math.isclose(float(logits[0]), -float(logits[1]), abs_tol=1e-5), f"logits (-z/2, z/2), got {logits}"
    assert math.isclose(both[0]["score"], float(torch.sigmoid(logits[1] - logits[0])), abs_tol=1e-6)


def test_a_trailing_not_can_flip_the_label(sentiment):
    """The head reads the *mean* of the token vectors: "not" adds one vector to a short sentence's average and
    moves it toward the negatives the head was trained on, without any grammar of negation. A short sentence
    flips; a longer one only weakens (the same "not" is a smaller share of its mean)."""
    good, flipped = sentiment("The movie was good.")[0], sentiment("The movie was good. not")[0]
    assert (good["label"], flipped["label"]) == ("POSITIVE", "NEGATIVE"), (good, flipped)
    seed, weaker = sentiment(SEED_SENTENCE)[0], sentiment(SEED_SENTENCE + " not")[0]
    assert weaker["label"] == "POSITIVE" and weaker["score"] < seed["score"], (seed, weaker)


def test_the_pooling_layer_reads_the_mean_as_sentence_transformers_does(sentiment, embedder):
    """BERT's classification head reads the first token, [CLS]; all-MiniLM-L6-v2 was trained to be read by the
    mean of its token vectors. The 7th layer (set by hand, no training) puts that mean, layer-normalized, at
    [CLS]: checked against the 6th layer's outputs in a padded batch, and against sentence-transformers' own
    embedding (``feature-extraction``: mean, then L2-normalized; layer norm also centres it)."""
    texts = ["I love open-source LLMs!", "a dull , tedious mess that runs far too long for its own good ."]
    enc = sentiment.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = sentiment.model.bert(**enc, output_hidden_states=True).hidden_states
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden[-2] * mask).sum(1) / mask.sum(1)
    want = torch.nn.functional.layer_norm(mean, mean.shape[-1:], eps=1e-12)
    got = hidden[-1][:, 0]
    assert torch.allclose(got, want, atol=1e-2), f"[CLS] of layer 7 vs LN(mean): {float((got - want).abs().max())}"
    st = torch.tensor(np.array(embedder(texts)))
    centred = st - st.mean(-1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(got, centred)
    assert bool((cos > 0.9999).all()), f"[CLS] vs sentence-transformers' embedding (centred): cosine {cos.tolist()}"


def test_training_changed_the_head_only(sentiment, require_assets):
    """What "training" did here: every weight of the encoder is all-MiniLM-L6-v2's, bit for bit; what was
    learned from the 200 sentences is the classifier (385 numbers per label). Fine-tuning the encoder too is the
    next step up (``benchmarks/sentiment.py --finetune``: 156/200 against 145/200, minutes instead of seconds)."""
    from safetensors.torch import load_file

    import llmfound.assets as A

    encoder = load_file(str(A.entry_dir(MINILM) / "model.safetensors"))
    state = sentiment.model.state_dict()
    # the asset's pooler (a dense layer on [CLS]) is one sentence-transformers never reads: now tanh(h / sqrt(384))
    kept = [k for k in encoder if not k.startswith("pooler.") and not k.endswith("position_ids")]
    changed = [k for k in kept if not torch.equal(state[f"bert.{k}"], encoder[k])]
    assert len(kept) == 5 + 6 * 16 and not changed, f"encoder weights differ from {MINILM}'s: {changed[:5]}"
    assert torch.equal(state["bert.pooler.dense.weight"], torch.eye(384) / math.sqrt(384))
    head = sentiment.model.classifier.weight.detach()
    assert head.shape == (2, 384) and float(head.abs().sum()) > 0, "the head must be trained (non-zero)"


def test_the_model_says_what_it_is_and_how_it_scored(sentiment):
    """The folder carries its card (parts, training data, held-out accuracy); the held-out accuracy is above the
    bound recorded with its measurement (``HELD_OUT_BOUND``)."""
    from llmfound import sentiment as SM

    card = SM.read_card(sentiment.model.name_or_path)
    assert card is not None, f"{sentiment.model.name_or_path} has no {SM.CARD}"
    acc = card["accuracy"]
    assert acc["n"] == 200 and acc["folds"] == 5 and acc["correct"] / acc["n"] >= HELD_OUT_BOUND, acc
    assert sum(map(sum, acc["confusion"]["counts"])) == 200, acc["confusion"]
    lo, hi = acc["wilson_95"]
    assert lo < acc["accuracy"] < hi, acc
    assert card["training_data"]["sentences"] == 200 and card["training_data"]["positive"] == 100, card


@pytest.mark.slow
def test_held_out_accuracy_recomputed_from_the_shipped_model(sentiment, require_assets):
    """The card's figure, recomputed from the shipped model's own pooled outputs (every sentence predicted by a
    head fitted on the other four folds): the same count, above the bound (~10-20 s on 2 cores)."""
    import llmfound.assets as A
    from llmfound import sentiment as SM
    from llmfound.assets.manifest import POLARITY_SHA256

    require_assets("pang-lee-polarity")
    data = SM.read_polarity(A.entry_dir("pang-lee-polarity") / "pang_lee_polarity.cor", sha256=POLARITY_SHA256)
    X = SM.pooled_features(sentiment.model, sentiment.tokenizer, data.texts)
    cv = SM.cross_validate(X, data.labels, k=5, seed=0)
    card = SM.read_card(sentiment.model.name_or_path)
    assert cv.correct == card["accuracy"]["correct"], (cv, card["accuracy"])
    assert cv.accuracy >= HELD_OUT_BOUND, cv


@pytest.mark.parametrize("bad, says", [
    ("", "text-classification got an empty input text; there is nothing to classify"),
    (["a fine film", "  "], r"empty input text \(item 1 of the list\)"),
    ({"text": ""}, "got an empty input text; there is nothing to classify"),
])
def test_an_empty_text_is_one_line_not_a_label(sentiment, bad, says):
    """transformers would classify the bare ``[CLS] [SEP]`` and answer with a confident-looking label."""
    with pytest.raises(LlmfoundError, match=says):
        sentiment(bad)


def test_a_non_string_names_what_the_task_takes(sentiment):
    with pytest.raises(TypeError, match="text-classification takes a string, .* got int 42"):
        sentiment(42)


def test_a_long_text_is_refused_or_cut_saying_so(sentiment, llmfound_log):
    """Over 512 tokens: one InputTooLongError line; with ``truncation=True`` the first 512 tokens are classified
    and a warning says how much was not read."""
    long = "a gorgeous , moving film . " * 120  # 722 tokens with [CLS] and [SEP]
    with pytest.raises(errors.InputTooLongError, match="input is 722 tokens .* at most 512 .*truncation=True"):
        sentiment(long)
    out = sentiment(long, truncation=True)
    assert out[0]["label"] == "POSITIVE", out
    said = [r.getMessage() for r in llmfound_log]
    assert any("the input was 722 tokens; classified its first 512" in m for m in said), said


def test_a_damaged_training_file_is_named_and_nothing_is_half_written(tmp_path, monkeypatch, require_assets):
    """The conversion checks the training file's sha256 before it trains: a damaged file is one AssetError line
    naming it and the repair command, and the cache holds no model folder and no work folder afterwards."""
    import shutil

    import llmfound.assets as A

    require_assets(MINILM, "pang-lee-polarity")
    real = {n: A.entry_dir(n) for n in (MINILM, "pang-lee-polarity")}
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / MINILM).symlink_to(real[MINILM])
    shutil.copytree(real["pang-lee-polarity"], tmp_path / "assets" / "pang-lee-polarity")
    cor = tmp_path / "assets" / "pang-lee-polarity" / "pang_lee_polarity.cor"
    cor.write_bytes(cor.read_bytes().replace(b"__label__neg", b"__label__pos", 1))
    with pytest.raises(AssetError) as e:
        A.convert(SENTIMENT)
    msg = str(e.value)
    assert "\n" not in msg and f"training file {cor} is damaged" in msg and "assets fetch pang-lee-polarity" in msg, msg
    assert not (tmp_path / "converted").exists() or not any((tmp_path / "converted").iterdir()), "half-written"
    assert not any((tmp_path / "tmp").iterdir()), f"work folders left: {list((tmp_path / 'tmp').iterdir())}"
    cor.unlink()
    (tmp_path / "assets" / "pang-lee-polarity" / ".llmfound.json").unlink()  # the asset is gone: offline, it is named
    with pytest.raises(AssetMissingError, match="asset 'pang-lee-polarity' is not in the cache"):
        A.convert(SENTIMENT)


@pytest.mark.parametrize("line, says", [
    (b"__label__meh so-so .\n", "line 2: expected '__label__pos SENTENCE' or '__label__neg SENTENCE'"),
    (b"__label__pos \n", "line 2: expected"),
    (b"__label__pos caf\x81\n", "is not cp1252 text"),
])
def test_a_malformed_training_line_is_named(tmp_path, line, says):
    import hashlib

    from llmfound import sentiment as SM

    f = tmp_path / "p.cor"
    f.write_bytes(b"__label__neg dull .\n" + line)
    with pytest.raises(AssetError, match=says):
        SM.read_polarity(f, sha256=hashlib.sha256(f.read_bytes()).hexdigest())


@pytest.mark.slow
def test_the_conversion_is_byte_identical_run_to_run(tmp_path, monkeypatch, require_assets):
    """Fixed seed, fixed threads, fixed data order: a fresh build's files hash the same as the cache's."""
    import llmfound.assets as A

    require_assets(MINILM, "pang-lee-polarity", SENTIMENT)
    cached = A.entry_dir(SENTIMENT)
    real = {n: A.entry_dir(n) for n in (MINILM, "pang-lee-polarity")}
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    (tmp_path / "assets").mkdir()
    for n, folder in real.items():
        (tmp_path / "assets" / n).symlink_to(folder)
    fresh = A.convert(SENTIMENT)
    for f in ("model.safetensors", "config.json", "llmfound_training.json", "tokenizer.json"):
        assert A.sha256_file(fresh / f) == A.sha256_file(cached / f), f"{f} differs between two builds"


# ========================================================================================== long inputs


def test_text_classification_past_512_tokens_needs_truncation(contract_pipes):
    pipe = contract_pipes("text-classification")
    long = "word " * 700  # 702 tokens with [CLS] and [SEP]
    with pytest.raises(errors.InputTooLongError) as e:
        pipe(long)
    msg = str(e.value)
    assert "702 tokens" in msg and "at most 512" in msg and "truncation=True" in msg, msg
    out = pipe(long, truncation=True)
    assert out[0]["label"] in CLS_LABELS.values(), out


@pytest.mark.parametrize("task", ["summarization", "translation"])
def test_seq2seq_past_its_positions_needs_truncation(contract_pipes, task):
    pipe = contract_pipes(task)
    long = "word " * (BART_POSITIONS * 2)
    with pytest.raises(errors.InputTooLongError, match=f"at most {BART_POSITIONS}.*truncation=True"):
        pipe(long, max_new_tokens=3)
    assert isinstance(pipe(long, truncation=True, max_new_tokens=3)[0][pipe.key], str)


# ============================================================================================ bad input


def test_an_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as e:
        llmfound.pipeline("sentiment-analyses")
    msg = str(e.value)
    assert "unknown task 'sentiment-analyses'" in msg, msg
    for name in PL.SEED_TASKS:
        assert name in msg, f"{name} missing from {msg!r}"


@pytest.mark.parametrize("task", ["ner", "question-answering", "summarization", "translation", "text-to-speech"])
def test_a_task_without_an_offline_model_says_so_in_one_line(task):
    with pytest.raises(errors.NoOfflineModelError) as e:
        llmfound.pipeline(task)
    msg = str(e.value)
    t = PL.get_task(task)
    assert "\n" not in msg and "no offline model ships" in msg and "model=" in msg, msg
    assert t.hub_default in msg, f"{task}: the message should name the hub default {t.hub_default}: {msg}"


def test_hub_defaults_match_transformers_own_for_the_tasks_it_keeps():
    from transformers.pipelines import SUPPORTED_TASKS

    for t in PL.TASKS:
        if t.backend == "transformers":
            assert SUPPORTED_TASKS[t.name]["default"]["model"][0] == t.hub_default, t.name


def test_the_tasks_llmfound_rebuilds_are_the_ones_transformers_removed():
    """transformers 5.23 lists summarization, translation and question-answering in ``REMOVED_TASKS`` (each with
    its replacement: the text-generation pipeline with a chat model) and no longer in ``SUPPORTED_TASKS``."""
    from transformers.pipelines import REMOVED_TASKS, SUPPORTED_TASKS

    for t in PL.TASKS:
        if t.name in ("question-answering", "summarization", "translation"):
            assert t.backend == "llmfound", f"{t.name}: expected llmfound's own pipeline, got {t.backend}"
            assert t.name not in SUPPORTED_TASKS, f"{t.name}: transformers has it again; use transformers' own"
            assert "text-generation" in REMOVED_TASKS.get(t.name, ""), (
                f"{t.name}: expected transformers' REMOVED_TASKS to point to text-generation, got "
                f"{REMOVED_TASKS.get(t.name)!r}")


def test_a_model_folder_missing_files_names_them(tmp_path, contract_models):
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.ModelFolderError) as e:
        llmfound.pipeline("sentiment-analysis", model=str(empty))
    msg = str(e.value)
    assert "config.json" in msg and "safetensors" in msg and "tokenizer" in msg, msg
    pickled = tmp_path / "pickled"
    shutil.copytree(contract_models["text-classification"], pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(errors.ModelFolderError, match="only pickle weights .*pytorch_model.bin.* never loads"):
        llmfound.pipeline("sentiment-analysis", model=str(pickled))


@pytest.mark.parametrize("task, head", [("sentiment-analysis", "classifier.weight"),
                                        ("ner", "classifier.weight"), ("question-answering", "qa_outputs.weight")])
def test_a_model_without_a_trained_head_is_refused_not_randomly_initialized(task, head, require_assets):
    """all-MiniLM-L6-v2 is a bare encoder: asked to classify, transformers would add a random head and answer
    at random. llmfound refuses and names the missing weights."""
    require_assets(MINILM)
    with pytest.raises(errors.UntrainedWeightsError) as e:
        llmfound.pipeline(task, model=MINILM)
    msg = str(e.value)
    assert f"is not a complete {PL.get_task(task).name} model" in msg and head in msg, msg


WRONG = [("sentiment-analysis", 42), ("ner", None), ("ner", [1, 2]), ("question-answering", "just a string"),
         ("summarization", 3.5), ("translation", {"text": "hi"}), ("text-to-speech", [b"hi"])]


@pytest.mark.parametrize("task, bad", WRONG)
def test_input_of_the_wrong_type_names_the_task(contract_pipes, task, bad):
    with pytest.raises(TypeError) as e:
        contract_pipes(task)(bad)
    msg = str(e.value)
    assert PL.get_task(task).name in msg.split(" takes")[0] and type(bad).__name__ in msg, msg


def test_text_generation_refuses_a_number(generator):
    with pytest.raises(TypeError, match="text-generation takes a string, a chat"):
        generator(123)


@pytest.mark.parametrize("task", ["summarization", "translation"])
def test_seq2seq_refuses_empty_text_before_generating(contract_pipes, task):
    """GPT-2's tokenizer adds no special tokens: "" is 0 ids, on which BART crashes ("cannot reshape tensor of
    0 elements"). llmfound says what was wrong instead; in a list it names the item."""
    pipe = contract_pipes(task)
    with pytest.raises(LlmfoundError, match=f"{task} got an empty input text; .*pass non-empty text"):
        pipe("")
    with pytest.raises(LlmfoundError, match=r"empty input text \(item 1 of the list\)"):
        pipe(["a sentence", "   "])


@pytest.mark.parametrize("option, value", [("max_answer_len", 0), ("max_answer_len", -3), ("top_k", 0)])
def test_qa_refuses_answer_lengths_and_top_k_below_one(contract_pipes, option, value):
    q, c = QA[0]
    with pytest.raises(LlmfoundError, match=f"question-answering {option} must be an int >= 1, got {value}"):
        contract_pipes("question-answering")(question=q, context=c, **{option: value})


def test_an_unknown_option_is_named_not_ignored(contract_pipes, contract_models, require_assets):
    """A misspelt option must not be silently dropped: QA and feature-extraction name it (at construction,
    before loading anything, and per call)."""
    q, c = QA[0]
    with pytest.raises(LlmfoundError, match="question-answering does not take option.s. max_answer_length; "
                                            "it takes top_k, max_answer_len"):
        contract_pipes("question-answering")(question=q, context=c, max_answer_length=3)
    with pytest.raises(LlmfoundError, match="question-answering does not take option.s. bogus"):
        llmfound.pipeline("question-answering", model=contract_models["question-answering"], bogus=1)
    require_assets(MINILM)
    with pytest.raises(LlmfoundError, match="feature-extraction does not take option.s. bogus; it takes pooling"):
        llmfound.pipeline("feature-extraction", bogus=1)


def test_per_token_features_are_chosen_when_the_pipeline_is_built(embedder):
    """``pooling=None`` (transformers' one-vector-per-token output) is a construction option, as the README says;
    asked per call, the error says where it belongs instead of calling None an unknown pooling."""
    with pytest.raises(LlmfoundError, match=r"pooling=None is chosen when the pipeline is built: "
                                            r"llmfound.pipeline\('feature-extraction', pooling=None\)"):
        embedder("x", pooling=None)
    with pytest.raises(LlmfoundError, match="unknown pooling 'max'; use 'mean' or 'cls'"):
        embedder("x", pooling="max")


def test_a_hub_id_in_offline_mode_fails_at_once_in_one_line(monkeypatch):
    """Offline, a name that is neither an asset nor a local folder never reaches the hub client (which would
    retry for ~26 s before failing): transformers' loader must not even be called."""
    import transformers

    def hub_call(*a, **k):
        raise AssertionError("offline mode called from_pretrained with a hub id")

    monkeypatch.setenv("LLMFOUND_OFFLINE", "1")
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", hub_call)
    with pytest.raises(AssetMissingError) as e:
        llmfound.pipeline("sentiment-analysis", model="someorg/somemodel")
    msg = str(e.value)
    assert "\n" not in msg and "offline mode" in msg and "pass a local folder" in msg, msg


def test_a_hub_failure_is_one_line_not_a_traceback(monkeypatch):
    """Without offline mode the hub client raises a long multi-line OSError after its retries; llmfound wraps it
    as one :class:`AssetError` line (simulated here: no hub is reachable from the specs)."""
    import transformers

    import llmfound.assets
    import llmfound.assets.hub

    def unreachable(*a, **k):
        raise ConnectionError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your "
                              "internet connection or see https://huggingface.co/docs/transformers/installation")

    monkeypatch.setattr(llmfound.assets.hub, "hub_offline", lambda: False)
    monkeypatch.setattr(llmfound.assets, "resolve", lambda ref: ref)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", unreachable)
    with pytest.raises(AssetError) as e:
        llmfound.pipeline("sentiment-analysis", model="someorg/somemodel")
    msg = str(e.value)
    assert "\n" not in msg and "could not load a text-classification model from 'someorg/somemodel'" in msg, msg
    assert "hub access" in msg and "couldn't connect" in msg, msg


@pytest.fixture
def hub_at(monkeypatch):
    """Point HF_ENDPOINT at a local port, offline switches off, probe cache empty: ``hub_at(True)`` a port that
    listens (a reachable hub, as far as the probe can tell), ``hub_at(False)`` a closed one. Never a real hub."""
    import socket

    import llmfound.assets.hub

    for var in ("LLMFOUND_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(llmfound.assets.hub, "_hub_probes", {})
    servers = []

    def _at(listening: bool) -> str:
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        if listening:
            servers.append(srv)
        else:
            srv.close()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        return f"http://127.0.0.1:{port}"

    yield _at
    for srv in servers:
        srv.close()


def test_the_hub_probe_tells_a_listening_endpoint_from_a_closed_one(hub_at):
    from llmfound.assets import hub

    hub_at(True)
    assert hub.hub_unreachable() is None and hub.hub_problem() is None
    closed = hub_at(False)
    why = hub.hub_unreachable()
    assert why and "refused" in why, f"{closed}: expected 'connection refused ...', got {why!r}"
    assert hub.hub_problem() == f"the model hub {closed} is unreachable ({why})"


def test_the_hub_is_probed_once_per_process(hub_at, monkeypatch):
    from llmfound.assets import hub

    hub_at(False)
    first = hub.hub_unreachable()
    monkeypatch.setattr(hub, "_connect", lambda *a: pytest.fail("probed a second time"))
    assert hub.hub_unreachable() == first


def test_with_a_reachable_hub_a_task_without_an_offline_model_takes_transformers_default(hub_at):
    """`pipeline("ner")` keeps transformers' default id when a hub answers (loading it is the --run-network tier's
    job); with the hub unreachable the same call is one NoOfflineModelError line. A task with an offline model
    (sentiment-analysis, text-generation) takes it whatever the hub: the same answer on every machine."""
    t = PL.get_task("ner")
    hub_at(True)
    assert PL.factory.model_ref(t, None) == "dbmdz/bert-large-cased-finetuned-conll03-english"
    assert PL.factory.model_ref(PL.get_task("sentiment-analysis"), None) == SENTIMENT
    closed = hub_at(False)
    with pytest.raises(errors.NoOfflineModelError) as e:
        PL.factory.model_ref(t, None)
    assert f"the model hub {closed} is unreachable" in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_an_unreachable_hub_still_serves_a_model_huggingface_hub_cached(hub_at, monkeypatch, tmp_path):
    """Without the probe the hub client would retry, then fall back on its cache; llmfound goes straight there."""
    import huggingface_hub.constants

    import llmfound.assets as A

    repo = tmp_path / "models--someorg--somemodel"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    hub_at(False)
    assert A.resolve("someorg/somemodel") == repo / "snapshots" / ("0" * 40)
    with pytest.raises(AssetMissingError, match="is unreachable"):
        A.resolve("someorg/othermodel")


# ============================================================================================= audio out


def test_tts_output_path_is_checked_before_any_model_work(tmp_path):
    """``check_output_path`` needs no model: the CLI calls it for ``--out`` before loading one."""
    with pytest.raises(LlmfoundError, match="its folder .* does not exist; create it first"):
        check_output_path(tmp_path / "no" / "such" / "x.wav")
    with pytest.raises(LlmfoundError, match="is a folder; name a file inside it"):
        check_output_path(tmp_path)
    with pytest.raises(LlmfoundError, match="is a folder"):
        PL.write_wav(np.zeros(8), 16000, tmp_path)
    assert check_output_path(tmp_path / "ok.wav") == tmp_path / "ok.wav"
    assert list(tmp_path.iterdir()) == [], "checking must create nothing"


@pytest.mark.parametrize("shape", [(40,), (1, 40)], ids=["[samples]", "[1, samples]"])
def test_write_wav_writes_16_bit_pcm_atomically(tmp_path, shape):
    import wave

    signal = np.sin(np.linspace(0, 6.28, 40)).astype("float32") * 1.5  # past [-1, 1]: clipped
    dest = tmp_path / "speech.wav"
    dest.write_bytes(b"old contents")
    assert PL.write_wav(signal.reshape(shape), 16000, str(dest)) == dest
    with wave.open(str(dest)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 40)
        got = np.frombuffer(w.readframes(40), dtype="<i2")
    want = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    assert np.array_equal(got, want), (got[:5], want[:5])
    assert [p.name for p in tmp_path.iterdir()] == ["speech.wav"], "no temporary file may be left behind"
    with pytest.raises(LlmfoundError, match="audio is empty"):
        PL.write_wav(np.zeros(0), 16000, dest)
    with pytest.raises(LlmfoundError, match="sampling_rate must be a positive int"):
        PL.write_wav(signal, 0, dest)


# =============================================================================================== devices

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", 0, "0"])
def test_cuda_without_cuda_is_one_clear_error(device):
    with pytest.raises(errors.NoCudaError) as e:
        llmfound.pipeline("feature-extraction", device=device)
    msg = str(e.value)
    assert "\n" not in msg and "no CUDA device" in msg and "device='cpu'" in msg, msg


@no_cuda
def test_auto_falls_back_to_the_cpu_with_a_note(embedder):
    assert PL.resolve_device("auto") == ("cpu", "device='auto': no CUDA device is available, running on the CPU")
    assert PL.resolve_device(None) == ("cpu", None) and PL.resolve_device(-1) == ("cpu", None)
    with pytest.raises(LlmfoundError, match="unknown device 'tpu'"):
        PL.resolve_device("tpu")


@pytest.mark.parametrize("device", [-1, "-1", " -1 "])
def test_minus_one_means_the_cpu_as_in_transformers(device):
    """transformers' ``pipeline(device=-1)`` is the CPU; the CLI's ``--device -1`` arrives as the text "-1"."""
    assert PL.resolve_device(device) == ("cpu", None)
    with pytest.raises(LlmfoundError, match="unknown device -2"):
        PL.resolve_device("-2")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: run `pytest -m gpu` on a machine "
                                                          "with an NVIDIA GPU")
def test_gpu_pipelines_run_on_cuda_and_agree_with_the_cpu(contract_models, require_assets):
    require_assets(MINILM)
    cpu = llmfound.pipeline("sentiment-analysis", model=contract_models["text-classification"])
    gpu = llmfound.pipeline("sentiment-analysis", model=contract_models["text-classification"], device="cuda")
    assert next(gpu.model.parameters()).device.type == "cuda"
    a, b = cpu(TEXTS, top_k=None), gpu(TEXTS, top_k=None)
    assert all(math.isclose(x["score"], y["score"], abs_tol=1e-3) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    emb = llmfound.pipeline("feature-extraction", device="auto")
    assert next(emb.model.parameters()).device.type == "cuda" and emb.llmfound_device_note is None
    e_gpu = np.array(emb([r[0] for r in PARAPHRASES]))
    e_cpu = np.array(llmfound.pipeline("feature-extraction")([r[0] for r in PARAPHRASES]))
    assert np.allclose(e_gpu, e_cpu, atol=1e-3), float(np.abs(e_gpu - e_cpu).max())


# =========================================================================================== command line


def test_the_cli_prints_real_generated_text(capsys, require_assets):
    require_assets(SMOL)
    from llmfound.cli import main

    code = main(["pipeline", "text-generation", "What is the capital of France?", "--max-new-tokens", "8",
                 "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "Paris" in out, out


def test_the_cli_answers_a_task_without_a_model_with_one_error_line(capsys):
    from llmfound.cli import main

    code = main(["pipeline", "ner", "Hugging Face is based in New York City"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and err[0].startswith("error: no offline model ships"), err


def test_the_cli_splits_question_and_context(capsys, contract_models):
    import json

    from llmfound.cli import main

    q, c = QA[0]
    code = main(["pipeline", "question-answering", f"{q} ||| {c}", "--model",
                 contract_models["question-answering"], "--json", "--threads", "1"])
    res = json.loads(capsys.readouterr().out)["result"]
    assert code == 0 and res["answer"] == c[res["start"]:res["end"]], res


# =============================================================================================== network


@pytest.mark.network
def test_the_seeds_own_line_on_transformers_default_sentiment_model(monkeypatch):
    """``pipeline("sentiment-analysis", model=<transformers' default>)("I love open-source LLMs!")`` -> POSITIVE
    (needs hub access; without ``model=`` llmfound takes its offline model, whatever the hub)."""
    import huggingface_hub.constants as hc

    for var in ("LLMFOUND_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    out = llmfound.pipeline("sentiment-analysis", model=PL.get_task("sentiment-analysis").hub_default)(
        "I love open-source LLMs!")
    assert out[0]["label"] == "POSITIVE" and out[0]["score"] > 0.9, out
