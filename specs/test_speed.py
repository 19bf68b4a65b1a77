"""Lesson: at batch 1 a decode step must read every weight once, so bytes per step over the memory bandwidth is
the fastest it can be (the roofline); a long context adds its KV cache on top of the footprint.

The arithmetic is checked here against shapes and figures (no timing is asserted: speed targets live in
``benchmarks/``): the roofline from the footprint and the bandwidth, the bytes a step reads (a tied lm_head reads
the whole embedding table, an untied model reads only the rows it looks up), the KV cache's bytes per token, the
interleaved order that keeps load order from ranking presets, and the structure of ``llmfound doctor``'s speed
rows and warn verdict, on the CPU with a tiny synthetic-weight Llama. Measured tables: docs/generation-speed.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmfound import speed
from llmfound.errors import CAPABILITY_EXIT_CODES, DOCTOR_WARN_EXIT_CODE, LlmfoundError, NoCudaError
from llmfound.upgrade import doctor

ROOT = Path(__file__).resolve().parent.parent

# ================================================================================ the roofline

# (what, bytes read per step, bandwidth bytes/s, batch, roofline tok/s): docs/gpu-tier.md's H200 rows
# (copy bandwidth 4,282 GB/s) and this page's arithmetic
ROOFLINES = [
    ("1.1B bf16 on the H200, batch 1", 2_069_029_120, 4_282e9, 1, 2_069.6),
    ("1.1B nf4-dq on the H200, batch 1", 631_246_312, 4_282e9, 1, 6_783.5),
    ("1.1B bf16 on the H200, batch 8", 2_069_057_792, 4_282e9, 8, 16_556.5),
    ("SmolLM2 bf16 at 28.6 GB/s, batch 1", 269_030_272, 28.6e9, 1, 106.3),
]


@pytest.mark.parametrize("what, nbytes, bandwidth, batch, want", ROOFLINES, ids=[r[0] for r in ROOFLINES])
def test_the_roofline_is_batch_times_bandwidth_over_bytes_per_step(what, nbytes, bandwidth, batch, want):
    got = speed.roofline_tokens_per_s(nbytes, bandwidth, batch)
    assert got == pytest.approx(want, rel=1e-3), f"{what}: expected {want:,.1f} tok/s, got {got:,.1f}"


@pytest.fixture(scope="module")
def tiny_models():
    """The tiny synthetic-weight Llama (2 layers, hidden 256, vocab 1024), built in memory in bf16, untied and
    tied lm_head, as ``{name: (model, analytic footprint bytes)}``."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmfound.quantization import expected_footprint
    from llmfound.synthetic import synthetic_llama_config

    models = {}
    for name, tied in (("untied", False), ("tied", True)):
        cfg = synthetic_llama_config("tiny")
        cfg.tie_word_embeddings = tied
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
        models[name] = (m, expected_footprint(m, "bf16").total)
    return models


def test_a_step_reads_the_footprint_less_the_embedding_rows_it_does_not_look_up(tiny_models):
    m, fp = tiny_models["untied"]
    table = 1024 * 256 * 2  # vocab x hidden x 2 bytes (bf16)
    for batch in (1, 8):
        want = fp - table + batch * 256 * 2
        got = speed.weight_bytes_per_step(m, fp, batch)
        assert got == want, f"untied tiny Llama, batch {batch}: expected {want:,} bytes per step, got {got:,}"
    tied, fp = tiny_models["tied"]
    got = speed.weight_bytes_per_step(tied, fp, 8)
    assert got == fp, f"tied lm_head (reads the whole table anyway): expected the footprint, got {got:,}"


# ================================================================================ the KV cache

# (model, layers, attention heads, kv heads, hidden, bytes per token in bf16): the published configs' shapes
KV_SHAPES = [
    ("TinyLlama-1.1B (synthetic 1.1b)", 22, 32, 4, 2048, 22_528),
    ("SmolLM2-135M", 30, 9, 3, 576, 23_040),
    ("tiny synthetic", 2, 4, 4, 256, 2_048),
    ("gpt2-like, no kv heads field", 12, 12, None, 768, 36_864),
]


@pytest.mark.parametrize("model, layers, heads, kv, hidden, per_token", KV_SHAPES, ids=[r[0] for r in KV_SHAPES])
def test_the_kv_cache_is_2_x_layers_x_kv_heads_x_head_dim_x_bytes_per_token(model, layers, heads, kv, hidden,
                                                                            per_token):
    from types import SimpleNamespace

    cfg = SimpleNamespace(num_hidden_layers=layers, num_attention_heads=heads, hidden_size=hidden)
    if kv is not None:
        cfg.num_key_value_heads = kv
    for tokens, batch in ((1, 1), (8192, 1), (512, 8)):
        got = speed.kv_cache_bytes(cfg, tokens, batch)
        assert got == per_token * tokens * batch, (
            f"{model}, {tokens} tokens x batch {batch}: expected {per_token * tokens * batch:,} B, got {got:,}")


def test_memory_while_generating_reports_the_kv_cache_for_the_final_length(tiny_models):
    """On the CPU the peak is the process's RSS (reset before the call, freed heap handed back first); what is
    checked here is the bookkeeping, not a size: the analytic KV cache for prompt + new tokens, and a refusal
    past the model's positions."""
    m, _ = tiny_models["untied"]
    g = speed.generation_peak(m, context=64, new_tokens=4)
    want = speed.kv_cache_bytes(m.config, 68)
    assert (g.kind, g.kv_bytes) == ("cpu rss", want), f"tiny Llama, 64 + 4 tokens: expected KV {want:,} B, got {g}"
    assert g.extra_bytes >= 0, g
    limit = m.config.max_position_embeddings
    with pytest.raises(LlmfoundError, match=f"exceeds the model's {limit} positions"):
        speed.generation_peak(m, context=limit, new_tokens=4)


def test_bad_counts_are_refused_in_one_line():
    from types import SimpleNamespace

    cfg = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, hidden_size=256)
    for call in (lambda: speed.kv_cache_bytes(cfg, -1), lambda: speed.roofline_tokens_per_s(0, 1e9),
                 lambda: speed.roofline_tokens_per_s(1000, 1e9, 0), lambda: speed.spread([])):
        with pytest.raises(LlmfoundError):
            call()


# ================================================================================ how not to benchmark


def test_interleaved_rounds_rotate_so_no_preset_always_runs_first():
    calls: list[str] = []
    tasks = {n: (lambda n=n: calls.append(n) or n) for n in ("bf16", "8bit", "nf4-dq")}
    res = speed.interleaved(tasks, rounds=3, warmup=1)
    assert calls[:3] == ["bf16", "8bit", "nf4-dq"], f"warm-up: expected each once first, got {calls[:3]}"
    rounds = [calls[3 + 3 * r: 6 + 3 * r] for r in range(3)]
    firsts = [r[0] for r in rounds]
    assert sorted(firsts) == ["8bit", "bf16", "nf4-dq"], f"each preset should open one round, got {rounds}"
    assert all(len(v["rounds"]) == 3 and len(v["warmup"]) == 1 for v in res.values()), res


# ================================================================================ doctor's speed rows


def test_decode_rows_give_every_preset_and_batch_its_roofline_fraction(tiny_models):
    rows = speed.decode_rows(tiny_models, batches=(1, 8), bandwidth=10e9, rounds=2, prompt_tokens=4, new_tokens=4)
    assert list(rows) == ["1", "8"] and all(list(r) == ["untied", "tied"] for r in rows.values()), rows
    for b, by in rows.items():
        for p, r in by.items():
            where = f"tiny {p} batch {b}"
            want_roof = int(b) * 10e9 / r["bytes_per_step"]
            assert r["roofline_tokens_per_s"] == pytest.approx(want_roof), where
            assert r["tokens_per_s"] == pytest.approx(int(b) / r["step_s"]["median"]), where
            assert r["roofline_fraction"] == pytest.approx(r["tokens_per_s"] / want_roof), where
            assert r["busy_share"] is None, f"{where}: the CPU has no separate device to be busy"
            assert len(r["warmup_step_s"]) == (1 if b == "1" else 0), f"{where}: one warm-up, before batch 1"
    untied, tied = rows["1"]["untied"]["bytes_per_step"], rows["1"]["tied"]["bytes_per_step"]
    assert untied > tied, f"untied reads its lm_head besides the one embedding row: {untied:,} vs tied {tied:,}"


@pytest.fixture()
def speed_report(tiny_models, monkeypatch):
    """Doctor's speed capabilities on the tiny models (no SmolLM2 load) and small ceilings, as
    ``run(reference=...)``: its ``reference`` is the table's entry for this machine's device model."""
    from llmfound import streaming

    one = {"bf16": tiny_models["untied"]}
    monkeypatch.setattr(doctor, "decode_models", lambda device: ("tiny synthetic Llama", one))
    # one thread, without sampling /proc/stat for 0.2 s per run (what the chooser picks is streaming's lesson)
    real = streaming.choose_threads
    monkeypatch.setattr(streaming, "choose_threads", lambda: real(cores=1, busy=0.0))
    monkeypatch.setitem(doctor.CEILING_SIZES, "cpu", {"nbytes": 4 << 20, "copies": 2, "n": 128, "products": 2})
    caps = tuple(c for c in doctor.CAPABILITIES if c.klass == "speed" and c.name != "llama.cpp decode (CPU)")

    def _run(reference: dict | None = None, **kw):
        table = {"band": 1.5, "devices": {doctor.device_model("cpu"): reference} if reference else {}}
        monkeypatch.setattr(doctor, "SPEED_REFERENCE", table)
        return doctor.run(caps, ledger=False, device="cpu", **kw)
    return _run


def test_doctor_reports_ceilings_and_decode_rows_with_units(speed_report):
    rep = speed_report()
    by = {c["name"]: c for c in rep["capabilities"]}
    assert rep["level"] == 1 and rep["device"] == "cpu" and rep["exit_code"] == 0, rep["exit_code"]
    assert "static cache decode" not in by, "level 1 must not run the static cache (minutes on CUDA)"
    assert "GB/s on cpu (read + write counted" in by["copy bandwidth"]["detail"], by["copy bandwidth"]["detail"]
    assert "GFLOP/s on cpu (bf16" in by["bf16 matmul throughput"]["detail"], by["bf16 matmul throughput"]["detail"]
    dec = by["decode per preset vs roofline"]
    assert dec["status"] == "pass", dec["detail"]
    assert dec["data"]["bandwidth"] == by["copy bandwidth"]["data"]["bytes_per_s"]["median"], (
        "the roofline must use the bandwidth the ceiling row reports")
    assert set(dec["data"]["rows"]) == {"1", "8"}, dec["data"]["rows"].keys()
    json.dumps(rep)


def test_level_2_and_batches_widen_the_sweep(speed_report):
    rep = speed_report(level=2, batches=(2,))
    by = {c["name"]: c for c in rep["capabilities"]}
    assert set(by["decode per preset vs roofline"]["data"]["rows"]) == {"2"}, "--batches overrides the sweep"
    assert "static cache decode" in by and by["static cache decode"]["status"] == "pass", by.get("static cache decode")


def test_slower_than_the_reference_by_more_than_the_band_warns_with_its_own_exit(speed_report):
    fast = {"source": "planted", "date": "2026-12-05", "copy_bytes_per_s": 1e15, "bf16_matmul_flop_per_s": 1e18,
            "decode_tokens_per_s": {"bf16/1": 1e9}}
    rep = speed_report(fast)
    by = {c["name"]: c for c in rep["capabilities"]}
    for name in ("copy bandwidth", "bf16 matmul throughput", "decode per preset vs roofline"):
        assert by[name]["status"] == "warn" and "below the reference" in by[name]["detail"], (name, by[name])
    assert "bf16 batch 1" in by["decode per preset vs roofline"]["detail"]
    assert rep["exit_code"] == DOCTOR_WARN_EXIT_CODE != 0, rep["exit_code"]
    slow = {"source": "planted", "date": "2026-12-05", "copy_bytes_per_s": 1.0, "bf16_matmul_flop_per_s": 1.0,
            "decode_tokens_per_s": {"bf16/1": 1e-9}}
    rep = speed_report(slow)
    assert rep["exit_code"] == 0 and all(c["status"] == "pass" for c in rep["capabilities"]), rep["capabilities"]


def test_a_failure_outranks_a_warn():
    caps = (doctor.Capability("warns", "speed", lambda d: ("slow", {"warn": ["2x below"]})),
            doctor.Capability("fails", "streaming", lambda d: (_ for _ in ()).throw(AssertionError("broken"))))
    rep = doctor.run(caps, ledger=False)
    assert [c["status"] for c in rep["capabilities"]] == ["warn", "fail"], rep["capabilities"]
    assert rep["exit_code"] == CAPABILITY_EXIT_CODES["streaming"], rep["exit_code"]


@pytest.mark.parametrize("kw, says", [
    ({"level": 3}, "doctor --level must be one of 1, 2, got 3"),
    ({"batches": (1, -8)}, "doctor batch sizes must be whole numbers >= 1, got 1, -8"),
    ({"device": "tpu"}, "doctor --device must be auto, cpu or cuda, got 'tpu'"),
])
def test_bad_options_are_refused_before_any_check_runs(kw, says):
    ran = []
    caps = (doctor.Capability("would run", "speed", lambda d: ran.append(d) or ("", {})),)
    with pytest.raises(LlmfoundError, match=says.replace("(", r"\(").replace(")", r"\)")):
        doctor.run(caps, ledger=False, **kw)
    assert not ran, f"{kw}: a check ran before the options were refused"


def test_a_cuda_device_that_is_not_there_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(NoCudaError, match="torch sees no CUDA device here"):
        doctor.run((), ledger=False, device="cuda")


def test_the_cli_prints_the_decode_table_within_80_columns(speed_report, capsys, monkeypatch):
    import llmfound.upgrade.ledger
    from rich.cells import cell_len

    from llmfound.cli import main

    speed_report()  # installs the tiny models, the small ceilings and an empty reference table
    monkeypatch.setattr(doctor, "CAPABILITIES", tuple(c for c in doctor.CAPABILITIES if c.klass == "speed"
                                                      and c.name != "llama.cpp decode (CPU)"))
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: [])
    monkeypatch.setenv("COLUMNS", "80")
    code = main(["doctor", "--device", "cpu", "--batches", "1,8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "decode vs roofline: tiny synthetic Llama" in out, out
    rows = [ln.split() for ln in out.split("decode vs roofline:")[1].splitlines() if ln.split()[:1] == ["bf16"]]
    assert [r[1] for r in rows] == ["1", "8"], f"expected a bf16 row per batch, got:\n{out}"
    wide = [ln for ln in out.splitlines() if cell_len(ln) > 80]
    assert not wide, f"expected the report within 80 columns, got {wide[:2]}"


def test_the_roofline_plot_is_a_png(speed_report, tmp_path):
    rep = speed_report()
    doctor.plot(rep, str(tmp_path / "roofline.png"))
    assert (tmp_path / "roofline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["roofline.png"], "no temporary file may be left behind"


# ================================================================================ the reference table


def test_every_reference_names_its_source_and_date():
    for model, ref in doctor.SPEED_REFERENCE["devices"].items():
        assert ref.get("source") and ref.get("date") and ref.get("workload"), f"{model}: source, date, workload"
        nums = [ref.get("copy_bytes_per_s"), ref.get("bf16_matmul_flop_per_s"), *ref["decode_tokens_per_s"].values()]
        assert all(isinstance(x, (int, float)) and x > 0 for x in nums if x is not None), f"{model}: {nums}"


def test_the_h200_reference_is_the_lower_of_the_two_recorded_runs():
    """The H200 row comes from benchmarks/results/h200-2026-12-04-decode-{1,2}.json (docs/gpu-tier.md)."""
    runs = [json.loads((ROOT / f"benchmarks/results/h200-2026-12-04-decode-{i}.json").read_text()) for i in (1, 2)]
    ref = doctor.SPEED_REFERENCE["devices"]["NVIDIA H200"]
    for key, want in ref["decode_tokens_per_s"].items():
        preset, batch = key.split("/")
        seen = [r["decode"][batch][preset]["tokens_per_s"] for r in runs
                if preset in r.get("decode", {}).get(batch, {})]
        assert seen and want == pytest.approx(min(seen), rel=0.01), f"H200 {key}: expected min of {seen}, got {want}"
    copies = [r["ceilings"]["copy_bytes_per_s"]["median"] for r in runs]
    assert ref["copy_bytes_per_s"] == pytest.approx(min(copies), rel=0.01), (copies, ref["copy_bytes_per_s"])
