"""Lesson: validating a new box is a list of capabilities, each pass / fail / skip with a reason and a time.

``llmfound doctor`` runs numerical checks (bitsandbytes' 4-bit and 8-bit matmul against full precision,
footprints of a synthetic model against the analytic footprint, streaming, tokenizers, templates). On a machine
without CUDA the GPU capabilities skip and say why; any required failure makes the exit status non-zero,
with a distinct code per failure class.
"""

from __future__ import annotations

import json

import pytest

from llmfound.errors import CAPABILITY_EXIT_CODES
from llmfound.upgrade import doctor
from llmfound import tokenization
from llmfound.cli import main

FAST = tuple(c for c in doctor.CAPABILITIES if c.klass == "bitsandbytes")


@pytest.fixture(scope="module")
def report():
    return doctor.run(FAST)


def test_the_report_has_the_documented_schema(report):
    assert set(report) == {"schema", "level", "device", "device_model", "versions", "accelerator", "capabilities",
                           "ledger", "exit_code"}
    assert report["schema"] == doctor.SCHEMA
    for key in ("python", "torch", "transformers", "tokenizers", "bitsandbytes", "accelerate", "torch_cuda", "driver"):
        assert key in report["versions"], key
    for c in report["capabilities"]:
        assert set(c) >= {"name", "klass", "status", "detail", "seconds", "required"}, c
        assert c["status"] in ("pass", "warn", "fail", "skip") and isinstance(c["seconds"], float), c
        assert c["klass"] in CAPABILITY_EXIT_CODES, c
    for e in report["ledger"]:
        assert set(e) == {"id", "behaviour", "seen", "state"}, e
    json.dumps(report)  # the --json output must serialize


def test_the_report_names_llmfound_s_version_when_run_from_a_checkout(monkeypatch):
    """On a GPU box llmfound runs from the copied checkout (PYTHONPATH, not installed): the report still says
    which llmfound it was (its ``__version__``), not null."""
    import importlib.metadata as md

    import llmfound

    real = md.version

    def version(pkg):
        if pkg == "llmfound":
            raise md.PackageNotFoundError(pkg)
        return real(pkg)

    monkeypatch.setattr(md, "version", version)
    got = doctor.versions()["llmfound"]
    want = llmfound.__version__
    assert got == want, f"versions()['llmfound'] when not installed: expected {want!r}, got {got!r}"


def test_bitsandbytes_matmuls_agree_with_full_precision_on_the_cpu(report):
    by_name = {c["name"]: c for c in report["capabilities"]}
    for name in ("bitsandbytes imports", "4-bit NF4 matmul (CPU)", "8-bit LLM.int8 matmul (CPU)"):
        assert by_name[name]["status"] == "pass", by_name[name]
    err = by_name["4-bit NF4 matmul (CPU)"]["data"]["rel_error"]
    assert 0.05 < err < doctor.MATMUL_TOL["nf4"], f"NF4 relative error {err}: zero would mean nothing was quantized"


def test_cuda_capabilities_skip_with_the_reason_on_a_cpu_machine(report):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the CUDA capabilities run instead")
    cuda = [c for c in report["capabilities"] if "CUDA" in c["name"]]
    assert cuda and all(c["status"] == "skip" and c["detail"] == "no CUDA device" for c in cuda), cuda
    assert report["exit_code"] == 0


class _LosesCase:
    """A family's real tokenizer whose decode lowercases: what a broken tokenizer looks like to the check."""

    def __init__(self, tok):
        self._tok = tok

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __len__(self):  # dunder lookups skip __getattr__
        return len(self._tok)

    def decode(self, *args, **kwargs):
        return self._tok.decode(*args, **kwargs).lower()


def test_the_tokenizer_check_compares_case_except_where_the_family_declares_lowercasing(monkeypatch,
                                                                                       require_assets):
    """'Hello world' must come back exactly; bert (declared uncased in the family table) gives 'hello world' and
    passes, gpt2 giving 'hello world' fails, and the failure names family, input, expected and got."""
    from llmfound import families

    rows = (families.get_family("gpt2"), families.get_family("bert"))
    require_assets(*(s for row in rows for s in row.sources))
    monkeypatch.setattr(families, "FAMILIES", rows)
    detail, data = doctor.check_tokenizers("cpu")
    assert data["ok"] == ["gpt2", "bert"], f"gpt2 and bert as loaded: expected both to pass, got {detail!r}"

    real = tokenization.load_tokenizer
    monkeypatch.setattr(tokenization, "load_tokenizer", lambda name, **kw: (_LosesCase(real(name, **kw))
                                                                        if name == "gpt2" else real(name, **kw)))
    try:
        got = f"passed: {doctor.check_tokenizers('cpu')[0]}"
    except AssertionError as e:
        got = str(e)
    want = "round trip failed for gpt2: input 'Hello world': expected 'Hello world', got 'hello world'"
    assert got == want, f"gpt2 decoding 'Hello world' as 'hello world': expected the check to say {want!r}, got {got!r}"


def _failing(device):
    raise AssertionError("footprint 3.1 GB is 40% over the analytic footprint")


@pytest.mark.parametrize("klass", sorted(CAPABILITY_EXIT_CODES))
def test_a_failing_capability_makes_the_exit_code_its_class(klass):
    caps = FAST[:1] + (doctor.Capability("injected failure", klass, _failing),)
    rep = doctor.run(caps, ledger=False)
    failed = [c for c in rep["capabilities"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["injected failure"]
    assert "40% over the analytic footprint" in failed[0]["detail"]
    assert rep["exit_code"] == CAPABILITY_EXIT_CODES[klass] != 0


def test_the_cli_prints_json_and_exits_with_the_failure_class(capsys, monkeypatch):
    monkeypatch.setattr(doctor, "CAPABILITIES", FAST[:1] + (doctor.Capability("injected", "streaming", _failing),))
    import llmfound.upgrade.ledger

    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: [])  # its probes load tokenizers (seconds)
    code = main(["doctor", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == CAPABILITY_EXIT_CODES["streaming"] == data["exit_code"]


def test_plot_writes_a_png_of_the_footprints(tmp_path):
    rep = doctor.run(tuple(c for c in doctor.CAPABILITIES if c.name == "synthetic model footprints (CPU)"),
                     ledger=False)
    assert rep["capabilities"][0]["status"] == "pass", rep["capabilities"][0]
    doctor.plot(rep, str(tmp_path / "fp.png"))
    assert (tmp_path / "fp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ================================================================================ what a user reads


def test_progress_lines_put_every_name_in_the_same_column():
    """Whatever the status (pass / FAIL / skip) and the time (under a second to minutes), the names line up."""
    columns = {}
    for status in ("pass", "fail", "skip"):
        for seconds in (0.04, 12.3, 123.4):
            line = doctor.progress_line(doctor.CheckResult("matmul", "bitsandbytes", status, "", seconds))
            columns[(status, seconds)] = line.index("matmul")
    assert len(set(columns.values())) == 1, f"expected one column for the name, got {columns}"


def _passing(device):
    return "fine", {}


def _skipping(device):
    raise doctor.Skip("no CUDA device")


def test_the_cli_prints_aligned_progress_and_tables_that_fit_80_columns(capsys, monkeypatch):
    import llmfound.upgrade.ledger
    from rich.cells import cell_len

    monkeypatch.setattr(doctor, "CAPABILITIES", (
        doctor.Capability("bitsandbytes imports", "bitsandbytes", _passing),
        doctor.Capability("4-bit NF4 matmul (CUDA)", "quantization", _skipping),
        doctor.Capability("streamed generation (CPU)", "streaming", _failing)))
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: [
        {"id": "some-entry", "behaviour": "a long behaviour " * 8, "seen": "x 1.0", "state": "still broken"}])
    monkeypatch.setenv("COLUMNS", "80")
    code = main(["doctor"])
    cap = capsys.readouterr()
    progress = [ln for ln in cap.err.splitlines() if ln.strip()]
    names = ("bitsandbytes imports", "4-bit NF4 matmul (CUDA)", "streamed generation (CPU)")
    starts = {ln.index(n) for ln, n in zip(progress, names)}
    assert len(progress) == 3 and len(starts) == 1, f"expected three lines with names in one column, got:\n{cap.err}"
    assert code == CAPABILITY_EXIT_CODES["streaming"]
    wide = [ln for ln in cap.out.splitlines() if cell_len(ln) > 80]
    assert not wide, f"expected the report within 80 columns, got {wide[:2]}"
    assert "some-entry" in cap.out and "still broken" in cap.out, cap.out


def test_in_a_terminal_each_capability_is_printed_once(capsys, monkeypatch):
    """Progress lines on stderr serve a log; in a terminal the table on stdout shows the same capabilities right
    after, so a newcomer read each one twice. There a transient status counts them instead (rich's terminal
    detection forced here, as ``script -q -c "llmfound doctor" /dev/null`` would give)."""
    import llmfound.upgrade.ledger
    from llmfound.cli.terminal import err

    names = ("bitsandbytes imports", "4-bit NF4 matmul (CUDA)", "streamed generation (CPU)")
    monkeypatch.setattr(doctor, "CAPABILITIES", (
        doctor.Capability(names[0], "bitsandbytes", _passing), doctor.Capability(names[1], "quantization", _skipping),
        doctor.Capability(names[2], "streaming", _failing)))
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: [])
    monkeypatch.setattr(err, "_force_terminal", True)  # rich's Console(force_terminal=True)
    monkeypatch.setenv("COLUMNS", "80")
    code = main(["doctor"])
    cap = capsys.readouterr()
    seen = {n: (cap.out + cap.err).count(n) for n in names}
    assert code == CAPABILITY_EXIT_CODES["streaming"] and seen == dict.fromkeys(names, 1), (
        f"expected each capability once in a terminal, got {seen}:\n{cap.err}\n{cap.out}")


def test_the_quality_slice_runs_on_cuda_only_and_says_where_the_cpu_figures_are():
    """doctor scores nf4-dq's accuracy on the GPU (a 512-token slice against its recorded bound); without CUDA it
    skips and points at ``llmfound quality``."""
    if torch_cuda_available():
        pytest.skip("a CUDA device is here: the slice runs in `llmfound doctor` / the GPU tier instead")
    with pytest.raises(doctor.Skip, match=r"no CUDA device; the CPU figures: `llmfound quality`"):
        doctor.check_quality_slice("cpu")
    with pytest.raises(doctor.Skip, match="no CUDA device"):
        doctor.check_quality_slice("cuda")


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
