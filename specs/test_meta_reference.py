"""Lesson: a tokenizer is checked against its maker's own encoder, on text built to be hard.

Meta ships its Llama 3 encoder in PyPI's ``llama-models`` 0.3.0: a tiktoken BPE file plus the split pattern and
special tokens in ``tokenizer.py`` (``llmfound/meta_reference.py`` reads them as data and builds tiktoken's own
``Encoding``; nothing from the wheel runs). Every ``llama3`` / ``llama3.1`` encode here must give Meta's ids on
named, seeded generators of hard text, in the style of llama.cpp's ``test-tokenizer-random``: whitespace runs,
contractions, digits, CJK, emoji with zero-width joiners, combining marks, random code points, strings that look
like special tokens. A mismatch prints the text, both id lists and a window around the first difference.
"""

from __future__ import annotations

import random

import pytest

from llmfound import meta_reference as M
from llmfound.errors import AssetError, UnknownNameError
from llmfound.families import load_tokenizer
from llmfound.lessons import assert_fixed, ledger_xfail

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


@pytest.fixture(scope="module")
def meta_llama3(require_assets):
    require_assets("meta-llama-models")
    return M.meta_tokenizer("llama3")


@pytest.mark.parametrize("generator", list(GENERATORS))
@pytest.mark.parametrize("family", ["llama3", "llama3.1"])
def test_every_encode_equals_metas(family, generator, meta_llama3, require_assets, lesson):
    """Typed special-token text is text in Meta's encoder, so llmfound's side encodes with
    ``split_special_tokens=True`` (transformers' default would turn '<|eot_id|>' into id 128009)."""
    tok = load_tokenizer(family)
    for text in texts(generator):
        got = tok.encode(text, add_special_tokens=False, split_special_tokens=True)
        expected = meta_llama3.encode(text)
        assert got == expected, first_difference(family, text, got, expected, meta_llama3.decode)
    lesson.count("encodes of hard text equal Meta's own encoder", f"{family}/{generator}")


CORE = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
"""The special tokens every Llama 3 conversation uses: bos, eos of a base model, the role header, end of turn."""


@pytest.mark.parametrize("family", ["llama3", "llama3.1"])
def test_the_conversation_tokens_have_metas_ids(family, meta_llama3, require_assets):
    tok = load_tokenizer(family)
    for text in CORE:
        got, expected = tok.convert_tokens_to_ids(text), meta_llama3.special_tokens[text]
        assert got == expected, f"{family}: special token {text!r}: expected Meta's id {expected}, got {got}"


@ledger_xfail("lenml-llama3.1-lacks-tool-tokens")
def test_llama3_1_knows_the_tool_call_tokens_its_template_writes(require_assets):
    """The official 3.1 template writes '<|python_tag|>' before a tool call and ends it with '<|eom_id|>'; each
    must be one special id, as in Meta's tokenizer. The npm file names those ids as Llama 3.0 did (reserved),
    so today each is six text tokens: the ledger entry, until llama3.1 is built from Meta's file."""
    assert_fixed("lenml-llama3.1-lacks-tool-tokens", require_assets)


def test_the_oracle_catches_a_changed_id(meta_llama3):
    """The comparison is not vacuous: one id moved by one is a mismatch, reported with a window."""
    text = "Hello world, it's 2026"
    ids = meta_llama3.encode(text)
    planted = ids[:2] + [ids[2] + 1] + ids[3:]
    msg = first_difference("llama3", text, planted, ids, meta_llama3.decode)
    assert planted != ids and "first difference at position 2" in msg, msg


def test_llama4_reads_as_data_too(require_assets):
    require_assets("meta-llama-models")
    t = M.meta_tokenizer("llama4")
    assert (t.num_base_tokens, len(t.special_tokens)) == (200_000, 2_048), (t.num_base_tokens, len(t.special_tokens))
    assert t.encode("Hello world", bos=True) == [200000, 19873, 3817], t.encode("Hello world", bos=True)


@pytest.mark.parametrize("source,expected", [
    ("def f(:\n", "is not Python"),
    ("X = 1\n", "has no class Tokenizer"),
    ("class Tokenizer:\n    def __init__(self):\n        special_tokens = [open('/etc/passwd').read()]\n"
     "        m = E(pat_str=self.p)\n", "could not be read as data"),
])
def test_a_tokenizer_py_that_is_not_metas_is_one_line(source, expected):
    with pytest.raises(AssetError) as e:
        M.read_tokenizer_py(source, "x/tokenizer.py")
    assert expected in str(e.value), f"source {source!r}: expected {expected!r}, got {e.value}"


def test_an_unknown_version_is_named(require_assets):
    with pytest.raises(UnknownNameError) as e:
        M.meta_tokenizer("llama5")
    assert "llama3, llama4" in str(e.value), e.value
