"""Quantized once, kept: a quantized preset of an llmfound cache entry loads from the copy saved the first time.

bitsandbytes quantizes a model on the CPU every time ``from_pretrained`` is given a quantization config (seconds
per 4-bit preset for SmolLM2-135M). ``llmfound.models.load_model`` saves the freshly quantized weights of a cache
entry once, with bitsandbytes' own serialization, and reads them back later: the same bytes, so the same
footprint and the same logits. The copy's name holds the source weights' sha256 and the library versions, so an
upgrade quantizes afresh; a damaged copy is quantized again; a folder of your own is never copied. These specs
use a synthetic-weight model (a contract model, not a real one) in a throwaway cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from llmfound import models
from llmfound.assets.cache import publish, read_marker, workdir

PRESETS = ["8bit", "nf4-dq", "nf4", "fp4"]
IDS = torch.arange(3, 40)[None]


@pytest.fixture()
def entry(tmp_path, monkeypatch) -> Path:
    """A cache entry (marker and all) holding a synthetic-weight model, in a throwaway LLMFOUND_HOME."""
    from llmfound.synthetic import save_synthetic_chat_model

    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path / "home"))
    work = workdir("synthetic")
    save_synthetic_chat_model(work, positions=64)
    dest = tmp_path / "home" / "converted" / "synthetic-chat"
    publish(work, dest, {"recipe": "synthetic, for specs"})
    return dest


def _logits(model) -> torch.Tensor:
    with torch.inference_mode():
        return model(IDS).logits


def _load(folder: Path, preset: str):
    return models.load_model(str(folder), preset, tokenizer=False)[0]


@pytest.mark.parametrize("preset", PRESETS)
def test_the_second_load_reads_the_kept_copy_with_the_same_bytes(entry, preset, monkeypatch):
    first = _load(entry, preset)
    kept = models.kept_quantized_dir(entry, preset, "cpu", None)
    assert kept is not None and read_marker(kept) is not None, f"{preset}: expected a kept copy at {kept}"
    from transformers import AutoModelForCausalLM

    sources, load = [], AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda path, **kw: sources.append(
        (path, kw.get("quantization_config"))) or load(path, **kw))
    second = _load(entry, preset)
    assert sources == [(str(kept), None)], f"{preset}: expected one load from {kept} without quantizing, got {sources}"
    assert second.get_memory_footprint() == first.get_memory_footprint(), (
        f"{preset}: footprint expected {first.get_memory_footprint()} bytes, got {second.get_memory_footprint()}")
    assert torch.equal(_logits(second), _logits(first)), f"{preset}: the kept copy's logits differ"


def test_a_damaged_copy_is_quantized_again_and_replaced(entry):
    first = _load(entry, "nf4-dq")
    kept = models.kept_quantized_dir(entry, "nf4-dq", "cpu", None)
    weights = kept / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short
    again = _load(entry, "nf4-dq")
    assert torch.equal(_logits(again), _logits(first)), "the re-quantized model's logits differ"
    assert read_marker(kept) is not None and weights.stat().st_size > 1000, "the damaged copy was not replaced"


@pytest.mark.parametrize("where", ["a folder of your own", "bf16", "a compute dtype of yours", "a GPU"])
def test_nothing_is_kept_outside_the_cache_or_for_bf16_or_a_gpu(entry, tmp_path, where):
    own = tmp_path / "mine"
    if where == "a folder of your own":
        from llmfound.synthetic import save_synthetic_chat_model

        save_synthetic_chat_model(own, positions=64)
        _load(own, "nf4")
        assert not (tmp_path / "home" / models.QUANTIZED_DIR).exists(), "a folder of the user's was copied"
    args = {"a folder of your own": (own, "nf4", "cpu", None), "bf16": (entry, "bf16", "cpu", None),
            "a compute dtype of yours": (entry, "nf4", "cpu", torch.float32), "a GPU": (entry, "nf4", "auto", None)}
    assert models.kept_quantized_dir(*args[where]) is None, f"{where}: expected nothing kept"


def test_a_new_version_keeps_two_copies_per_preset_and_nf4_never_touches_nf4_dq(entry):
    _load(entry, "nf4")
    _load(entry, "nf4-dq")
    root = entry.parent.parent / models.QUANTIZED_DIR
    nf4 = models.kept_quantized_dir(entry, "nf4", "cpu", None)
    for fake in ("0.0.1", "0.0.2"):  # copies another bitsandbytes made: each new one prunes the oldest beyond two
        older = root / nf4.name.replace("bitsandbytes", f"bitsandbytes{fake}-was")
        work = workdir("old")
        (work / "model.safetensors").write_bytes(b"old")
        publish(work, older, {})
    shutil.rmtree(nf4)
    _load(entry, "nf4")  # quantizes again and keeps the new copy
    names = sorted(p.name for p in root.iterdir())
    assert len([n for n in names if "-nf4-dq-" in n]) == 1, f"nf4's pruning touched nf4-dq: {names}"
    plain = [n for n in names if "-nf4-" in n and "-nf4-dq-" not in n]
    assert len(plain) == models.KEPT_PER_PRESET and nf4.name in plain and not any("0.0.1" in n for n in plain), (
        f"expected the new nf4 copy and the newest older one ({models.KEPT_PER_PRESET} in all), got {plain}")
