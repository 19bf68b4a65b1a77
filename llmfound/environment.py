"""The environment llmfound runs in: package versions, the CUDA driver, the accelerator, and how to start a
Python interpreter from it safely.

Used by ``llmfound doctor`` (its JSON report) and ``llmfound snapshot record`` (the versions a snapshot was
recorded with), so both name the same things the same way; and by every place that starts ``python -m pip`` or
``python -m llmfound`` (:func:`isolated_python`).
"""

from __future__ import annotations

import platform
import sys

__all__ = ["PACKAGES", "versions", "accelerator", "isolated_python"]

PACKAGES = ("torch", "transformers", "tokenizers", "bitsandbytes", "accelerate", "llmfound")
"""The distributions whose versions decide what llmfound's specs see (``importlib.metadata`` names)."""


def versions() -> dict:
    """Versions that matter for llmfound: python, torch (+ its CUDA), driver, transformers, tokenizers,
    bitsandbytes, accelerate (None where not importable)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # llmfound run from a checkout (PYTHONPATH), as on a GPU box: its own
            out[pkg] = _package_version() if pkg == "llmfound" else None
    try:
        import torch

        out["torch_cuda"] = torch.version.cuda
    except Exception:  # noqa: BLE001 - a torch that fails to import is reported as no CUDA, not a crash
        out["torch_cuda"] = None
    out["driver"] = _driver_version()
    return out


def _package_version() -> str:
    """llmfound's ``__version__`` when it is imported from a checkout rather than installed."""
    from llmfound import __version__

    return __version__


def _driver_version() -> str | None:
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None
    except Exception:  # noqa: BLE001 - a hung or broken nvidia-smi means "driver unknown", never a crash
        return None


def accelerator() -> dict | None:
    """The first CUDA device: name, compute capability "major.minor", total memory in bytes; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    return {"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "memory_bytes": p.total_memory,
            "count": torch.cuda.device_count()}


def isolated_python(python=None) -> list[str]:
    """The argv prefix that starts ``python`` (a path; default: this interpreter) in Python's isolated mode,
    ``-I``: neither the current directory nor the user's site-packages is on ``sys.path`` and ``PYTHON*``
    environment variables are ignored. ``python -m pip`` or ``python -m llmfound`` started without it imports a
    ``pip.py``, ``rich.py`` or ``torch.py`` from whatever directory the user ran llmfound in. Returns
    ``[python, "-I"]``."""
    return [str(python or sys.executable), "-I"]
