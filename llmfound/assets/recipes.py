"""Recipes that turn fetched files into ordinary Hugging Face folders (called by :func:`llmfound.assets.recipes`).

A recipe receives its input asset's cache folder as ``asset`` (a Path, fetched and sha256-checked by the
caller; the manifest names it; a second input, such as training data, comes the same way under its own argument)
and never fetches anything itself, so of llmfound it imports only :mod:`llmfound.assets.meta_files` (reading
Meta's ``tokenizer.py`` as data) and :mod:`llmfound.sentiment` (the one recipe that trains).

Each recipe writes into an empty folder ``out``; publishing it atomically is the caller's job. Facts used
(measured with transformers 5.23, written in ``docs/sources.md``, "Facts the conversions and defaults rely on"):
``from_pretrained(dir, gguf_file=...)``
parses a GGUF in 1.4-13 s; ``save_pretrained`` refuses a GGUF-loaded model ("quantized with gguf and is not
serializable"), so the model recipe builds a fresh model from the config and loads the state dict into it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["gguf_tokenizer", "make_sentencepiece_faithful", "gguf_model", "spm_model_tokenizer", "spm_tokenizer",
    "bpe_tokenizer", "tiktoken_tokenizer", "copy_files", "sentiment_classifier"]


def gguf_tokenizer(out: Path, *, asset: Path, gguf: str, sentencepiece_faithful: str = "") -> None:
    """Convert the tokenizer inside ``<asset>/<gguf>`` with transformers' GGUF reader and save it to ``out``
    (tokenizer.json, tokenizer_config.json, chat template where the GGUF carries one).

    ``sentencepiece_faithful="yes"`` applies :func:`make_sentencepiece_faithful` afterwards (Llama 2)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(asset), gguf_file=gguf)
    tok.save_pretrained(str(out))
    if sentencepiece_faithful:
        make_sentencepiece_faithful(out)


_SPM_NORMALIZER = {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
]}


def make_sentencepiece_faithful(folder: Path, spm_model: Path | None = None) -> None:
    """Rewrite a converted sentencepiece-BPE ``tokenizer.json`` so it encodes like sentencepiece itself.

    transformers 5.23 converts Llama-style sentencepiece models with a Metaspace pre-tokenizer that prepends
    "\u2581" only when the text does not already start with one, so " Hello" encodes like "Hello" and runs of
    spaces lose one (what that costs on llama.cpp's golden vectors: ``docs/sources.md``).
    The published Llama 2 ``tokenizer.json`` uses the normalizer written here (Prepend + Replace, no
    pre-tokenizer). With ``spm_model`` the merges are also re-ordered by descending sentencepiece score of
    the merged piece: 5.23 orders them by id, which for Mistral puts whitespace merges first ("a  b" ->
    [264, 259, 28726] instead of sentencepiece's [264, 28705, 287]). Checked on 53 strings against
    sentencepiece and mistral-common. The class becomes ``TokenizersBackend`` so loading does not rebuild it.
    """
    import json

    tj = folder / "tokenizer.json"
    j = json.loads(tj.read_text(encoding="utf-8"))
    j["normalizer"] = _SPM_NORMALIZER
    j["pre_tokenizer"] = None
    if spm_model is not None:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(spm_model))
        score = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
        merges = j["model"]["merges"]
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        order = sorted(range(len(pairs)), key=lambda i: -score.get(pairs[i][0] + pairs[i][1], -1e9))
        j["model"]["merges"] = [merges[i] for i in order]
    tj.write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "TokenizersBackend"
    cfg["add_bos_token"] = True
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "tokenizer.model").unlink(missing_ok=True)


def gguf_model(out: Path, *, asset: Path, gguf: str) -> None:
    """Convert a GGUF chat model to config + generation_config + bf16 ``model.safetensors`` + tokenizer.

    The weights are the GGUF's (for SmolLM2: Q4_1) dequantized by transformers and stored as bf16; the
    model is therefore the published model as that GGUF quantized it, not a re-download of the original.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    src = str(asset)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf)
    # float32 is the GGUF reader's native dtype (bf16 makes it cast every tensor); stored as bf16 below.
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src, gguf_file=gguf)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.bfloat16
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    tied = set(getattr(fresh, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    # eos for chat: the end-of-turn token the template closes turns with, plus the tokenizer's eos.
    gen = GenerationConfig.from_model_config(fresh.config)
    eos = [i for i in {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} if isinstance(i, int) and i >= 0]
    gen.eos_token_id = sorted(eos) if len(eos) > 1 else eos[0]
    gen.bos_token_id = tok.bos_token_id
    gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    fresh.generation_config = gen
    fresh.save_pretrained(str(out))
    tok.save_pretrained(str(out))


def spm_model_tokenizer(model_file: Path, config: str | dict):
    """transformers' own tokenizer for a sentencepiece ``.model`` file, as ``AutoTokenizer`` builds it.

    ``config`` is the tokenizer_config (JSON text or dict: it names the class, e.g. ``LlamaTokenizer``, the
    special tokens, ``legacy``). Passing ``vocab_file=`` to the class constructor silently builds a 3-token
    tokenizer in transformers 5.23 (``docs/sources.md``), so the file is loaded from a temporary folder instead.
    Not sentencepiece-faithful for Llama-style vocabularies: see :func:`make_sentencepiece_faithful`."""
    import json
    import shutil
    import tempfile

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(model_file, Path(tmp) / "tokenizer.model")
        (Path(tmp) / "tokenizer_config.json").write_text(config if isinstance(config, str) else json.dumps(config))
        return AutoTokenizer.from_pretrained(tmp)


def spm_tokenizer(out: Path, *, asset: Path, file: str, config: str) -> None:
    """Build an HF tokenizer folder from a sentencepiece ``.model`` file (:func:`spm_model_tokenizer`), made
    faithful to sentencepiece with :func:`make_sentencepiece_faithful`."""
    model_file = asset / file
    spm_model_tokenizer(model_file, config).save_pretrained(str(out))
    make_sentencepiece_faithful(out, spm_model=model_file)


def bpe_tokenizer(out: Path, *, asset: Path, cls: str) -> None:
    """Build an HF tokenizer folder from ``vocab.json`` + ``merges.txt`` with the slow-path class ``cls``
    (``GPT2Tokenizer``); ``GPT2TokenizerFast(vocab_file=..., merges_file=...)`` silently builds a 1-token
    tokenizer in 5.23 (``docs/sources.md``), the folder route does not."""
    import transformers

    getattr(transformers, cls).from_pretrained(str(asset)).save_pretrained(str(out))


def tiktoken_tokenizer(out: Path, *, asset: Path, folder: str, bos: str, base_tokens: str, config: str) -> None:
    """Build an HF tokenizer folder from Meta's tiktoken BPE file ``<asset>/<folder>/tokenizer.model``.

    The ranks become a byte-level BPE through transformers' own ``TikTokenConverter`` (which reads the file
    with tiktoken), split by the pattern and followed by the special tokens, in id order, that
    ``<folder>/tokenizer.py`` builds (read as data by :func:`llmfound.assets.meta_files.read_tokenizer_py`, never
    run). The post-processor prepends ``bos`` on encode, the form transformers' Llama 4 conversion script
    (``Llama4Converter.update_post_processor``) and the published Llama 3.1 ``tokenizer.json`` use; ``config``
    is the ``tokenizer_config.json`` text (special tokens by name). tiktoken reads the file without its own
    cache (:func:`llmfound.assets.meta_files.no_tiktoken_cache`). Writes ``tokenizer.json`` and
    ``tokenizer_config.json``. Raises ``ValueError`` when the file does not hold ``base_tokens`` BPE tokens
    ranked 0..n-1 (a damaged file; the counts of Meta's files: ``docs/sources.md``) or
    ``bos`` is not a special token."""
    import json

    from tokenizers import processors
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from llmfound.assets.meta_files import no_tiktoken_cache, read_tokenizer_py

    src = asset / folder
    pattern, specials = read_tokenizer_py((src / "tokenizer.py").read_text(encoding="utf-8"),
                                          str(src / "tokenizer.py"))
    if bos not in specials:
        raise ValueError(f"{bos!r} is not one of the special tokens {src / 'tokenizer.py'} lists")
    with no_tiktoken_cache():
        tok = TikTokenConverter(vocab_file=str(src / "tokenizer.model"), pattern=pattern,
                                extra_special_tokens=specials).converted()
    base = tok.get_vocab_size() - len(specials)
    if base != int(base_tokens):
        raise ValueError(f"{src / 'tokenizer.model'} holds {base} BPE tokens, expected {base_tokens}: the file is "
                         f"damaged")
    bos_id = tok.token_to_id(bos)
    if bos_id != base + specials.index(bos):
        raise ValueError(f"{bos!r} got id {bos_id}, expected {base + specials.index(bos)}: the ranks in "
                         f"{src / 'tokenizer.model'} are not 0..{base - 1}")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                      special_tokens=[(bos, bos_id)]),
    ])
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(json.loads(config), indent=1), encoding="utf-8")


def copy_files(out: Path, *, asset: Path, files: str) -> None:
    """Copy files out of an asset under new names; ``files`` is ``"src>dst;src2>dst2"``."""
    import shutil

    for pair in files.split(";"):
        src, dst = pair.split(">")
        shutil.copyfile(asset / src, out / dst)


def sentiment_classifier(out: Path, *, asset: Path, data: Path, file: str, sha256: str, encoding: str) -> None:
    """Train the offline sentiment model (:func:`llmfound.sentiment.make_classifier`): the encoder folder
    ``asset`` plus the labelled sentences ``<data>/<file>`` (checked against ``sha256``, read as ``encoding``).
    About 10 s on 2 cores, with a progress bar; the weights come out byte-identical run to run. Raises
    :class:`~llmfound.errors.AssetError` naming a missing or damaged training file."""
    from llmfound.sentiment import make_classifier

    make_classifier(out, encoder=asset, data=data / file, sha256=sha256, encoding=encoding)
