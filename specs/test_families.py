"""Lesson: every model family has its own real tokenizer, and each one loads offline from the cache.

The family table (``llmfound/families.py``) is data; these specs are parametrized over it, so a new row is
checked the moment it is added.
"""

from __future__ import annotations

import pytest

from llmfound import families, tokenization
from llmfound.errors import UnknownNameError

FAMILY_NAMES = families.family_names()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_tokenizer_loads_offline_and_round_trips_hello_world(family, require_assets, lesson):
    require_assets(*families.get_family(family).sources)
    tok = tokenization.load_tokenizer(family)
    ids = tok.encode("Hello world", add_special_tokens=False)
    got = tok.decode(ids)
    expected = "hello world" if family == "bert" else "Hello world"  # bert: uncased by design
    assert got == expected, f"{family}: decode(encode('Hello world')) expected {expected!r}, got {got!r} (ids {ids})"
    assert 2 <= len(ids) <= 3, f"{family}: 'Hello world' should be 2-3 tokens, got {ids}"
    lesson.count("family tokenizers load offline from the cache", family)


def test_the_table_covers_the_families_the_project_promises():
    promised = {"llama2", "llama3", "llama3.1", "mistral-v1", "mistral-v3", "mistral-tekken", "qwen2.5", "qwen3",
                "phi3", "gemma2", "gemma3", "smollm2", "deepseek-v3", "deepseek-r1", "gpt2", "bert"}
    assert promised <= set(FAMILY_NAMES), f"missing rows: {promised - set(FAMILY_NAMES)}"
    assert len(FAMILY_NAMES) == len(set(FAMILY_NAMES))


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_source_a_family_names_is_in_the_asset_manifest(family):
    from llmfound import assets

    for src in families.get_family(family).sources:
        assert src in assets.entry_names(), f"{family}: source {src!r} is not an asset or conversion"


def test_families_using_an_asset_follows_conversions():
    assert families.families_using("mistral-common-data") == ["mistral-v1", "mistral-v3", "mistral-tekken"]
    assert "phi3" in families.families_using("llama-cpp-vocabs")


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match=r"unknown family 'llama9'; known families: llama2, llama3, "):
        tokenization.load_tokenizer("llama9")


@pytest.mark.parametrize("bad", [None, 123, b"llama3"])
def test_a_family_that_is_not_a_string_is_a_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=f"family must be a str .*got {type(bad).__name__}"):
        tokenization.load_tokenizer(bad)


@pytest.mark.parametrize("bad", ["", "   "])
def test_an_empty_family_name_is_unknown(bad):
    with pytest.raises(UnknownNameError, match="unknown family"):
        tokenization.load_tokenizer(bad)


PACKAGED = [(f.name, column) for f in families.FAMILIES for column, _ in f.tokens.packaged]


@pytest.mark.parametrize("family, column", PACKAGED, ids=[f"{f}-{c}" for f, c in PACKAGED])
def test_a_cell_marked_as_the_packaged_files_value_is_what_that_file_says(family, column, require_assets):
    """A row may hold the packaged file's value where the maker has since published another (Llama 3 Instruct's
    eos, Gemma 3's eos); then the row says so, and the value must really be the packaged tokenizer_config.json's."""
    import json

    from llmfound import assets

    row = families.get_family(family)
    require_assets(row.tokenizer)
    config = json.loads((assets.entry_dir(row.tokenizer) / row.subdir / "tokenizer_config.json").read_text())
    token = config.get(f"{column}_token")
    token = token.get("content") if isinstance(token, dict) else token
    said = getattr(row.tokens, column)[0]
    assert token == said, (f"{family} {column}: the row says {said!r} is the packaged file's value; its "
                           f"tokenizer_config.json says {token!r}")
    why = dict(row.tokens.packaged)[column]
    assert "packaged file" in why and any(ch.isdigit() for ch in why), f"{family} {column}: name the source: {why!r}"
