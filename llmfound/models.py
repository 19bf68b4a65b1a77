"""Loading a causal LM (with a quantization preset) or only its tokenizer and config, and refusing a checkpoint
that lacks weights: the one loader generate, demo, quality, doctor, the snapshot and the pipelines share.

Weights load from safetensors only, never with remote code; a model is an llmfound asset or conversion name, a
local folder, or (with hub access) a hub id (:func:`llmfound.assets.resolve`).

Quantized once, kept: bitsandbytes quantizes SmolLM2-135M on a CPU in seconds per 4-bit preset, and loading the
quantized weights it saved takes a fraction of that. So a quantized preset of an llmfound cache entry loaded on
the CPU is saved, the first time, with bitsandbytes' own serialization (``save_pretrained``, safetensors) under
``<cache>/quantized/``, and later loads read it back: the same bytes, so the same logits (specs/test_models.py).
Its folder name holds the source weights' sha256 and the bitsandbytes, torch and transformers versions, so an
upgrade of any of them quantizes afresh. A folder or hub id of your own is quantized at load, as transformers does.
"""

from __future__ import annotations

from typing import Any

from llmfound.errors import UntrainedWeightsError
from llmfound.memory import release_freed_memory
from llmfound.quantization import bnb_config, check_bitsandbytes, preset_name

__all__ = ["load_model", "load_tokenizer_and_config", "check_trained", "QUANTIZED_DIR", "KEPT_PER_PRESET",
           "kept_quantized_dir"]

QUANTIZED_DIR = "quantized"
"""Folder under the cache root (:func:`llmfound.assets.home`) that holds the quantized presets kept by
:func:`load_model`."""
KEPT_PER_PRESET = 2
"""Kept quantized copies per (cache entry, preset): a new one (another library version) deletes the oldest beyond
this, so a gate's side environment and this one do not quantize over each other every run."""


def kept_quantized_dir(resolved, preset: str, device_map, compute_dtype):
    """Where :func:`load_model` keeps ``preset`` of the model folder ``resolved``: a ``Path`` (existing or not), or
    None when nothing is kept: bf16, a device other than the CPU, a compute dtype of the caller's, or a folder
    that is not an llmfound cache entry with a marker naming its ``model.safetensors`` (a folder of your own)."""
    from pathlib import Path

    from llmfound.assets.cache import home, read_marker

    if preset == "bf16" or device_map != "cpu" or compute_dtype is not None or not isinstance(resolved, Path):
        return None
    root = home().resolve()
    if root not in Path(resolved).resolve().parents:
        return None
    sha = ((read_marker(Path(resolved)) or {}).get("files") or {}).get("model.safetensors")
    if not isinstance(sha, str):
        return None
    import bitsandbytes
    import torch
    import transformers

    return root / QUANTIZED_DIR / (f"{Path(resolved).name}-{preset}-{sha[:16]}-bitsandbytes{bitsandbytes.__version__}"
                                   f"-torch{torch.__version__}-transformers{transformers.__version__}")


def _keep(model, kept, source: str, preset: str) -> None:
    """Save the freshly quantized ``model`` at ``kept`` (atomically: a work folder, then one rename), then delete the
    oldest copies of the same source and preset beyond :data:`KEPT_PER_PRESET`. A cache that cannot be written
    only costs the saving: the model is already loaded."""
    import re
    import shutil

    from llmfound.assets.cache import MARKER, publish, read_marker, workdir
    from llmfound.errors import AssetError

    if read_marker(kept) is not None:  # another process kept the same copy meanwhile
        return
    try:
        work = workdir(kept.name)
    except AssetError:
        return
    try:
        model.save_pretrained(work, safe_serialization=True)
        publish(work, kept, {"source": source, "preset": preset})
    except OSError:
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)  # left only when saving failed: publish moved it otherwise
    mine = re.compile(re.escape(f"{source}-{preset}-") + r"[0-9a-f]{16}-bitsandbytes.*")  # not nf4-dq for nf4
    same = sorted((d for d in kept.parent.iterdir() if d != kept and mine.fullmatch(d.name) and (d / MARKER).is_file()),
                  key=lambda d: (d / MARKER).stat().st_mtime)
    for old in same[:max(0, len(same) + 1 - KEPT_PER_PRESET)]:
        shutil.rmtree(old, ignore_errors=True)


def load_model(ref: str = "smollm2-135m-instruct", preset: str = "bf16", *, device_map: str | None = "cpu",
               compute_dtype: Any = None, tokenizer: bool = True):
    """Load a causal LM and its tokenizer: ``(model, tokenizer)``, in eval mode (tokenizer None when
    ``tokenizer=False``, e.g. for a synthetic-weight folder that has none).

    ``ref``: an asset/conversion name (default: SmolLM2-135M-Instruct from the cache), a local folder, or a
    hub id (needs hub access). Weights load from safetensors only (``use_safetensors=True``), never with
    remote code. ``preset``: see :data:`llmfound.quantization.PRESETS` / :data:`~llmfound.quantization.QUANT_CHOICES`.
    A quantized preset of an llmfound cache entry on the CPU is kept after its first load and read back later
    (module doc, :func:`kept_quantized_dir`). After a quantized load the heap the quantization freed goes back to
    the system (:func:`~llmfound.memory.release_freed_memory`). Raises
    :class:`~llmfound.errors.BrokenEnvironmentError` when a quantized preset is asked for and bitsandbytes is
    unusable.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmfound.assets import resolve

    from pathlib import Path

    import shutil

    from safetensors import SafetensorError  # a damaged weights file: not an OSError

    from llmfound.assets.cache import read_marker
    from llmfound.errors import AssetError, LlmfoundError, first_line

    if not isinstance(ref, str) or not ref.strip():
        raise LlmfoundError(f"model must be an asset name, a local folder or a hub id, got {ref!r}")
    p = preset_name(preset)
    if p != "bf16":
        check_bitsandbytes()
    resolved = resolve(ref)
    path = str(resolved)
    if isinstance(resolved, Path) and tokenizer:
        from llmfound.assets.cache import check_model_folder

        check_model_folder(resolved)  # names what is missing: config.json, safetensors weights, tokenizer
    qc = bnb_config(p, compute_dtype)
    kept = kept_quantized_dir(resolved, p, device_map, compute_dtype)
    try:
        model = None
        if kept is not None and read_marker(kept) is not None:
            try:  # the preset quantized here earlier (module doc); damaged, it is quantized again below
                model, info = AutoModelForCausalLM.from_pretrained(
                    str(kept), dtype=torch.bfloat16, device_map=device_map, use_safetensors=True,
                    trust_remote_code=False, output_loading_info=True)
            except (OSError, ValueError, RuntimeError, KeyError, SafetensorError):
                shutil.rmtree(kept, ignore_errors=True)
        quantize = model is None
        if quantize:
            model, info = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch.bfloat16, quantization_config=qc, device_map=device_map,
                use_safetensors=True, trust_remote_code=False, output_loading_info=True)
        check_trained(ref, info, "causal LM")
        if quantize and kept is not None:  # before any forward: a CPU forward repacks 4-bit weights
            _keep(model, kept, resolved.name, p)
        model.eval()
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False) if tokenizer else None
    except LlmfoundError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:  # a truncated file, the hub's errors
        first = first_line(e)
        raise AssetError(f"could not load a causal LM from {ref!r} ({type(e).__name__}: {first}); name a folder "
                         f"with config.json, *.safetensors and tokenizer files, an llmfound asset, or a hub id "
                         f"(needs hub access)") from None
    if p != "bf16":
        release_freed_memory()
    return model, tok


def load_tokenizer_and_config(ref: str = "smollm2-135m-instruct"):
    """``(tokenizer, config)`` of a causal LM, without its weights (a fraction of a second): what a command needs
    to count a prompt's tokens against the model's positions before loading the model.

    ``ref`` as for :func:`load_model`. Raises :class:`~llmfound.errors.ModelFolderError` (a local folder lacks
    config, weights or tokenizer files), :class:`~llmfound.errors.AssetError` (the files do not load), and what
    :func:`llmfound.assets.resolve` raises."""
    from pathlib import Path

    from transformers import AutoConfig, AutoTokenizer

    from llmfound.assets.cache import check_model_folder
    from llmfound.assets import resolve
    from llmfound.errors import AssetError, LlmfoundError, first_line

    if not isinstance(ref, str) or not ref.strip():
        raise LlmfoundError(f"model must be an asset name, a local folder or a hub id, got {ref!r}")
    resolved = resolve(ref)
    if isinstance(resolved, Path):
        check_model_folder(resolved)
    try:
        return (AutoTokenizer.from_pretrained(str(resolved), trust_remote_code=False),
                AutoConfig.from_pretrained(str(resolved), trust_remote_code=False))
    except (OSError, ValueError, KeyError) as e:
        raise AssetError(f"could not load the tokenizer and config of {ref!r} ({type(e).__name__}: {first_line(e)}); "
                         f"name a folder with config.json and tokenizer files, an llmfound asset, or a hub id (needs "
                         f"hub access)") from None


def check_trained(ref: str, loading_info: dict, what: str) -> None:
    """Refuse a checkpoint that lacks weights the model needs: ``loading_info`` is what
    ``from_pretrained(..., output_loading_info=True)`` returns; its ``missing_keys`` (and ``mismatched_keys``, whose
    shapes differ) are weights transformers fills with random values and only logs. A model with them answers (a
    SmolLM2 folder with tensors removed still talks) and scores (a bare encoder's random LM head gave perplexity
    57,917), wrongly. Raises :class:`UntrainedWeightsError` naming up to four of them and ``what`` was asked for.
    One rule for every path that loads a model: generate, quality, demo, pipelines."""
    untrained = sorted(set(loading_info.get("missing_keys") or ()) | {
        k[0] if isinstance(k, tuple) else k for k in loading_info.get("mismatched_keys") or ()})
    if untrained:
        shown = ", ".join(untrained[:4]) + (f" (+{len(untrained) - 4} more)" if len(untrained) > 4 else "")
        raise UntrainedWeightsError(
            f"{ref!r} is not a complete {what}: it has no trained weights for {shown}, which transformers would "
            f"fill with random values; pass a model whose checkpoint holds every weight of a {what}")
