"""Lesson: a tokenizer is checked against its maker's own encoder, on text built to be hard.

Meta ships its Llama 3 and Llama 4 encoders in PyPI's ``llama-models`` 0.3.0: tiktoken BPE files plus the split
pattern and special tokens in ``tokenizer.py`` (``llmfound/assets/meta_files.py`` reads them as data;
``llmfound/meta/reference.py`` builds tiktoken's own ``Encoding``; nothing from the wheel runs). Every family whose
row names Meta's format (``llama3``, ``llama3.1``, ``llama4``) must give Meta's ids on
named, seeded generators of hard text, in the style of llama.cpp's ``test-tokenizer-random``: whitespace runs,
contractions, digits, CJK, emoji with zero-width joiners, combining marks, random code points, strings that look
like special tokens. A mismatch prints the text, both id lists and a window around the first difference.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from llmfound.meta import reference as M
from llmfound.errors import AssetError, UnknownNameError
from llmfound.families import FAMILIES
from llmfound import load_tokenizer
from llmfound.assets.meta_files import read_tokenizer_py

TEXTS_PER_GENERATOR = 150


def _ws(r: random.Random) -> str:
    return "".join(r.choice([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "x", "ab", ".", "\n\n"])
                   for _ in range(r.randint(1, 24)))


def _contractions(r: random.Random) -> str:
    words = ["I", "you", "we", "DON", "it", "they", "O", "rock", "n", "ma"]
    tails = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "’s", "'", "''"]
    return " ".join(r.choice(words) + r.choice(tails) for _ in range(r.randint(1, 8)))


def _digits(r: random.Random) -> str:
    return r.choice(["", " ", "$", "v"]).join(str(r.randint(0, 10 ** r.randint(1, 14)))
                                              for _ in range(r.randint(1, 5))) + r.choice(["", ".5", ",000", "%"])


def _cjk(r: random.Random) -> str:
    pool = "東京は日本の首都です。我爱自然语言处理。한국어 토큰화、カタカナ，「引用」"
    return "".join(r.choice(pool) for _ in range(r.randint(1, 30)))


def _emoji(r: random.Random) -> str:
    pool = ["🙂", "👩\u200d💻", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "👍🏽", "🇫🇷", "❤️", "\u200d", "\ufe0f",
            " ", "a"]
    return "".join(r.choice(pool) for _ in range(r.randint(1, 12)))


def _combining(r: random.Random) -> str:
    marks = ["\u0301", "\u0308", "\u0323", "\u20dd", "\u0336"]
    return "".join(r.choice("aeoun ZHx") + "".join(r.choice(marks) for _ in range(r.randint(0, 4)))
                   for _ in range(r.randint(1, 12)))


def _code_points(r: random.Random) -> str:
    out = []
    for _ in range(r.randint(1, 16)):
        cp = r.randint(0, 0x10FFFF)
        out.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "?")
    return "".join(out)


def _specials(r: random.Random) -> str:
    tokens = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|python_tag|>",
              "<|reserved_special_token_7|>", "<|eot|>", "<|header_start|>", "<|", "|>", "<s>", "</s>"]
    return "".join(r.choice(tokens + ["user", "\n\n", " ", "Hi"]) for _ in range(r.randint(1, 8)))


GENERATORS = {"whitespace runs": _ws, "contractions": _contractions, "digits": _digits, "CJK": _cjk,
              "emoji and ZWJ": _emoji, "combining marks": _combining, "random code points": _code_points,
              "special-token lookalikes": _specials}


def texts(name: str) -> list[str]:
    """The generator's texts: seeded by its name, so a failure names a text anyone can regenerate."""
    r = random.Random(f"llmfound-meta-{name}")
    return [GENERATORS[name](r) for _ in range(TEXTS_PER_GENERATOR)]


def first_difference(family: str, text: str, got: list[int], expected: list[int], decode) -> str:
    """The failure message: the text, both id lists and a window of pieces around the first difference."""
    i = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    lo = max(0, i - 3)

    def window(ids):
        return [(t, decode([t])) for t in ids[lo:i + 4]]

    return (f"{family}: text {text!r}: expected Meta's ids {expected}, got {got}; first difference at position "
            f"{i}: Meta {window(expected)} / {family} {window(got)}")


ORACLE = {f.name: f.conversation_format.split(":", 1)[1] for f in FAMILIES if f.conversation_format}
"""family -> the Meta version it is checked against, from the family table (``Family.conversation_format``)."""


@pytest.fixture(scope="module")
def meta(require_assets):
    require_assets("meta-llama-models")
    return M.meta_tokenizer


@pytest.fixture(scope="module")
def meta_llama3(meta):
    return meta("llama3")


@pytest.mark.parametrize("generator", list(GENERATORS))
@pytest.mark.parametrize("family", list(ORACLE))
def test_every_encode_equals_metas(family, generator, meta, require_assets, lesson):
    """Typed special-token text is text in Meta's encoder, so llmfound's side encodes with
    ``split_special_tokens=True`` (transformers' default would turn '<|eot_id|>' into id 128009)."""
    tok, oracle = load_tokenizer(family), meta(ORACLE[family])
    for text in texts(generator):
        got = tok.encode(text, add_special_tokens=False, split_special_tokens=True)
        expected = oracle.encode(text)
        assert got == expected, first_difference(family, text, got, expected, oracle.decode)
    lesson.count("encodes of hard text equal Meta's own encoder", f"{family}/{generator}")


CORE = {"llama3": ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "llama4": ("<|begin_of_text|>", "<|end_of_text|>", "<|header_start|>", "<|header_end|>", "<|eot|>", "<|eom|>",
                   "<|finetune_right_pad|>")}
"""The special tokens every conversation uses: bos, eos of a base model, the role header, end of turn (Llama 4:
also end of message and pad), per Meta version."""


@pytest.mark.parametrize("family", list(ORACLE))
def test_the_conversation_tokens_have_metas_ids(family, meta, require_assets):
    tok, oracle = load_tokenizer(family), meta(ORACLE[family])
    for text in CORE[ORACLE[family]]:
        got, expected = tok.convert_tokens_to_ids(text), oracle.special_tokens[text]
        assert got == expected, f"{family}: special token {text!r}: expected Meta's id {expected}, got {got}"


@pytest.mark.parametrize("family", [f.name for f in FAMILIES if f.tokenizer.startswith("meta-")])
def test_a_family_built_from_metas_file_has_every_special_token_of_metas(family, meta, require_assets):
    """Built from Meta's file: all of Meta's special tokens (256 for Llama 3, 2,048 for Llama 4), same names,
    same ids, and nothing else added."""
    tok, oracle = load_tokenizer(family), meta(ORACLE[family])
    got = {t: i for t, i in tok.get_added_vocab().items()}
    missing = {t: i for t, i in oracle.special_tokens.items() if got.get(t) != i}
    extra = sorted(set(got) - set(oracle.special_tokens))
    assert not missing and not extra and len(tok) == oracle.num_base_tokens + len(oracle.special_tokens), (
        f"{family}: expected Meta's {len(oracle.special_tokens)} special tokens; differ: {list(missing.items())[:5]}; "
        f"extra: {extra[:5]}; len {len(tok)}")


def test_llama3_1_writes_its_tool_call_tokens_as_single_ids(meta_llama3, require_assets):
    """The official 3.1 template writes '<|python_tag|>' before a tool call and ends it with '<|eom_id|>'; built
    from Meta's file, each is one special id (the npm file named them as Llama 3.0 did, six text tokens each)."""
    tok = load_tokenizer("llama3.1")
    for text in ("<|python_tag|>", "<|eom_id|>"):
        got = tok.encode(text, add_special_tokens=False)
        assert got == [meta_llama3.special_tokens[text]], f"llama3.1: {text!r}: expected "\
                                                           f"[{meta_llama3.special_tokens[text]}], got {got}"


def test_the_npm_llama3_vocabulary_is_metas_byte_for_byte(require_assets):
    """The evidence for keeping the npm file as the ``llama3`` source (docs/tokenizers.md): its BPE (128,000
    tokens, 280,147 merges) equals the one transformers builds from Meta's tokenizer.model."""
    import json

    from llmfound.assets import ensure

    def bpe(entry):
        model = json.loads((ensure(entry) / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        return model["vocab"], [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]  # "a b" or [a, b]

    (npm_vocab, npm_merges), (meta_vocab, meta_merges) = bpe("lenml-llama3"), bpe("meta-llama3-tokenizer")
    differ = [] if npm_vocab == meta_vocab else [k for k in set(npm_vocab) | set(meta_vocab)
                                                 if npm_vocab.get(k) != meta_vocab.get(k)]
    at = None if npm_merges == meta_merges else next(
        (i for i, (a, b) in enumerate(zip(npm_merges, meta_merges)) if a != b), None)
    assert not differ and at is None and len(npm_merges) == len(meta_merges), (
        f"lenml-llama3 vs Meta's file: {len(differ)} vocabulary entries differ (e.g. {differ[:3]}); merges "
        f"{len(npm_merges)} vs {len(meta_merges)}, first different at {at}")


def test_the_oracle_catches_a_changed_id(meta_llama3):
    """The comparison is not vacuous: one id moved by one is a mismatch, reported with a window."""
    text = "Hello world, it's 2026"
    ids = meta_llama3.encode(text)
    planted = ids[:2] + [ids[2] + 1] + ids[3:]
    msg = first_difference("llama3", text, planted, ids, meta_llama3.decode)
    assert planted != ids and "first difference at position 2" in msg, msg


def test_llama4_reads_as_data_too(meta):
    t = meta("llama4")
    assert (t.num_base_tokens, len(t.special_tokens)) == (200_000, 2_048), (t.num_base_tokens, len(t.special_tokens))
    assert t.encode("Hello world", bos=True) == [200000, 19873, 3817], t.encode("Hello world", bos=True)
    assert load_tokenizer("llama4").encode("Hello world") == [200000, 19873, 3817]


def _init(body: str, prelude: str = "") -> str:
    """A tokenizer.py whose Tokenizer.__init__ runs ``body`` and then passes pat_str (a plain string)."""
    lines = "".join(f"        {line}\n" for line in body.splitlines())
    return f"{prelude}class Tokenizer:\n    def __init__(self):\n{lines}        m = E(pat_str='x')\n"


@pytest.mark.parametrize("source,expected", [
    ("def f(:\n", "is not Python"),
    ("X = 1\n", "has no class Tokenizer"),
    ("X = 1\x00\n", "is not Python"),
    ("X = " + "1+" * 200_000 + "1\n", "could not be read as data"),
    (_init("special_tokens = [open('/etc/passwd').read()]"), "could not be read as data"),
    (_init("special_tokens = [[f'{i}{j}' for j in range(100000)] for i in range(100000)]"),
     "could not be read as data"),
    (_init("\n".join(["a0 = ['x']"] + [f"a{n + 1} = a{n} + a{n}" for n in range(40)] + ["special_tokens = a40"])),
     "could not be read as data"),
    (_init("special_tokens = [str(i) for i in range(0, 10, 0)]"), "could not be read as data"),
    (_init("special_tokens = [f'{1:>9}']"), "could not be read as data"),
    (_init("special_tokens = ['<a>', '<b>', '<a>']"), "listed twice"),
    (_init("special_tokens = [f(1)]", "def f(x=__import__('os').system('touch /tmp/llmfound-pwned')):\n"
                                      "    return x\n"), "could not be read as data"),
    (_init("special_tokens = [f(1)]", "def f(x):\n    return f(x)\n"), "could not be read as data"),
])
def test_a_tokenizer_py_that_is_not_metas_is_one_line(source, expected, tmp_path):
    """Anything else where the values are built is refused in one line naming the repair; nothing runs (no file
    appears), and a file that asks for a huge list or endless work is stopped by a budget, not by the machine."""
    with pytest.raises(AssetError) as e:
        read_tokenizer_py(source, "x/tokenizer.py")
    msg = str(e.value)
    assert expected in msg and "\n" not in msg and "llmfound assets fetch meta-llama-models --force" in msg, (
        f"source {source[:80]!r}: expected one line with {expected!r} and the repair, got {msg[:300]}")
    assert not Path("/tmp/llmfound-pwned").exists()


def test_an_unknown_version_is_named(require_assets):
    with pytest.raises(UnknownNameError) as e:
        M.meta_tokenizer("llama5")
    assert "llama3, llama4" in str(e.value), e.value


@pytest.mark.parametrize("damage,expected", [
    (lambda m: m.write_text("not base64 at all\n"), "Error parsing line"),
    (lambda m: m.write_bytes(b""), "holds 0 BPE tokens, expected 128000"),
    (lambda m: m.unlink(), "No such file"),
])
def test_a_damaged_tokenizer_model_fails_the_conversion(damage, expected, meta, tmp_path):
    """The recipe that builds ``llama3.1`` / ``llama4`` from Meta's file stops on a damaged file; the cache
    reports it as one AssetError line naming the repair (``llmfound/assets/cache.py``)."""
    import shutil

    from llmfound import assets
    from llmfound.assets.recipes import tiktoken_tokenizer

    src = tmp_path / "asset" / "llama3"
    src.mkdir(parents=True)
    for f in ("tokenizer.model", "tokenizer.py"):
        shutil.copyfile(assets.entry_dir("meta-llama-models") / "llama3" / f, src / f)
    damage(src / "tokenizer.model")
    (tmp_path / "out").mkdir()
    with pytest.raises(Exception) as e:
        tiktoken_tokenizer(tmp_path / "out", asset=tmp_path / "asset", folder="llama3", bos="<|begin_of_text|>",
                           base_tokens="128000", config="{}")
    assert expected in f"{type(e.value).__name__}: {e.value}", e.value
    assert not (tmp_path / "out" / "tokenizer.json").exists()


BPE_PREFIX = 2_000
"""Ranks the tiktoken-cache spec keeps of Meta's Llama 3 file: a BPE file's first ranks are a BPE file too (every
merge of a token is of lower rank), converted in a fraction of the 128,000 tokens' time."""


def test_tiktoken_s_own_cache_is_never_read(meta, tmp_path, monkeypatch):
    """tiktoken keeps a copy of every BPE file it reads under ``$TIKTOKEN_CACHE_DIR/<sha1 of the path>`` and
    returns it for that path later. A planted copy (three tokens) must not be what the conversion builds from:
    llmfound reads the file itself each time (``meta_files.no_tiktoken_cache``), and leaves the setting as it
    was. The file is the first :data:`BPE_PREFIX` ranks of Meta's: reading it is the same path at any size."""
    import hashlib
    import json
    import shutil

    from llmfound import assets
    from llmfound.assets.recipes import tiktoken_tokenizer

    src = tmp_path / "asset" / "llama3"
    src.mkdir(parents=True)
    meta_dir = assets.entry_dir("meta-llama-models") / "llama3"
    shutil.copyfile(meta_dir / "tokenizer.py", src / "tokenizer.py")
    with open(meta_dir / "tokenizer.model", "rb") as f:
        (src / "tokenizer.model").write_bytes(b"".join(f.readline() for _ in range(BPE_PREFIX)))
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    model = str(src / "tokenizer.model")
    (cache / hashlib.sha1(model.encode()).hexdigest()).write_bytes(b"IQ== 0\nIg== 1\nIw== 2\n")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    (tmp_path / "out").mkdir()
    tiktoken_tokenizer(tmp_path / "out", asset=tmp_path / "asset", folder="llama3", bos="<|begin_of_text|>",
                       base_tokens=str(BPE_PREFIX), config="{}")  # the planted copy: "holds 3 BPE tokens"
    import os

    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(cache)
    vocab = json.loads((tmp_path / "out" / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert len(vocab) == BPE_PREFIX, f"expected the file's {BPE_PREFIX} BPE tokens, got {len(vocab)}"
