"""Lesson: the command line answers bad input with one clear line and a non-zero exit, and loses nothing.

Each case runs ``llmfound.cli.main([...])`` in-process and reads what a user would see on stdout/stderr.
"""

from __future__ import annotations

import sys

import pytest

from llmfound import assets
from llmfound.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, code, says", [
    (["assets", "fetch", "no-such-asset"], 2, "unknown asset 'no-such-asset'; known assets: llama-cpp-vocabs"),
    (["assets", "path", "no-such-asset"], 2, "unknown asset 'no-such-asset'"),
    (["assets", "fetch"], 2, "name one or more assets, or pass --all"),
    (["generate", "hi", "--quant", "3bit"], 2, "unknown quantization '3bit'; choose one of: none, 8bit, 4bit"),
    (["generate", "hi", "--max-new-tokens", "0"], 2, "--max-new-tokens must be positive, got 0"),
    (["generate", "   "], 2, "the prompt is empty"),
    (["generate", "hi", "--model", "./no/such/folder"], 3, "local folder './no/such/folder' does not exist"),
    (["generate", "hi", "--model", "someorg/somemodel"], 3, "offline mode (LLMFOUND_OFFLINE / HF_HUB_OFFLINE) "
                                                            "forbids the model hub"),
    (["tokenize", "--family", "gpt2", "\udcff\udcfe abc"], 2, "is not valid UTF-8 text"),
    (["assets", "fetch", "nope", "--all"], 2, "unknown asset 'nope'"),
    (["snapshot", "compare", "--sections", "idz"], 2, "unknown snapshot section(s) 'idz'; known: ids,"),
    (["snapshot", "record", "/no/such/folder/snap.json"], 2, "folder '/no/such/folder' does not exist"),
    (["doctor", "--plot", "/no/such/folder/fp.png"], 2, "its folder '/no/such/folder' does not exist"),
    (["doctor", "--plot", "fp.txt"], 2, "--plot writes a PNG"),
    (["demo", "--max-new-tokens", "0"], 2, "--max-new-tokens must be positive, got 0"),
])
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(capsys, argv, code, says):
    got_code, out, err = run(capsys, *argv)
    line = one_error_line(err)
    assert got_code == code, f"{argv}: expected exit {code}, got {got_code} ({line})"
    assert says in line, f"{argv}: expected {says!r} in {line!r}"
    assert out == "", f"{argv}: nothing should reach stdout, got {out!r}"


def test_missing_bitsandbytes_names_the_package_and_how_to_check(capsys, monkeypatch, require_assets):
    require_assets("smollm2-135m-instruct")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import now raises ImportError
    code, out, err = run(capsys, "generate", "Name three colors.", "--quant", "4bit")
    line = one_error_line(err)
    assert code == 4, line
    assert "bitsandbytes is needed for 8-bit/4-bit" in line and "python -m bitsandbytes" in line, line


def test_verify_reports_missing_entries_and_exits_1(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    code, out, err = run(capsys, "assets", "verify", "gpt2-bpe")
    assert code == 1
    assert "missing" in out and "gpt2-bpe" in out
    assert "llmfound assets fetch NAME" in err


def test_verify_on_the_real_cache_exits_0(capsys, require_assets):
    require_assets(*assets.entry_names())
    code, out, err = run(capsys, "assets", "verify")
    assert code == 0, out + err
    assert out.count(" ok ") >= len(assets.entry_names()), out


def test_generate_streams_a_real_answer(capsys, require_assets):
    """The main job: SmolLM2-135M-Instruct answers through its chat template (bf16, greedy)."""
    require_assets("smollm2-135m-instruct")
    code, out, err = run(capsys, "generate", "What is the capital of France?", "--max-new-tokens", "24")
    assert code == 0, err
    assert "Paris" in out, f"expected 'Paris' in the answer, got {out!r}"
    assert "footprint" in err and "tok/s" in err, f"timing and memory go to stderr, got {err!r}"


@pytest.mark.parametrize("argv", [["bogus"], ["assets", "path"], ["families", "--jsn"],
                                  ["generate", "hi", "--max-new-tokens", "abc"]])
def test_usage_mistakes_get_the_usage_message_not_a_traceback(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, code)
    assert "Traceback" not in err and "Error:" in err and "Usage: llmfound" in err, err


def test_a_model_folder_missing_files_is_named(capsys, tmp_path):
    code, out, err = run(capsys, "generate", "hi", "--model", str(tmp_path))
    line = one_error_line(err)
    assert code == 3 and "lacks config.json; safetensors weights" in line, line


def test_the_cache_in_a_file_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMFOUND_OFFLINE", raising=False)
    code, out, err = run(capsys, "assets", "fetch", "gpt2-bpe")
    line = one_error_line(err)
    assert code == 3 and "cannot write the llmfound cache" in line and "LLMFOUND_HOME" in line, line


@pytest.mark.parametrize("content, says", [
    (b"\xff\xfe[\x00]\x00", "is not UTF-8 text"),
    (b"[" * 100_000, "nests too deeply"),
    (b'{"role": "user"}', "messages must be a list"),
])
def test_a_bad_messages_file_is_one_line(capsys, tmp_path, content, says):
    f = tmp_path / "m.json"
    f.write_bytes(content)
    code, out, err = run(capsys, "template", "--family", "smollm2", "--messages", str(f))
    line = one_error_line(err)
    assert code == 2 and says in line, line
