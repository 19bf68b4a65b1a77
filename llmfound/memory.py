"""Process memory: resident set size now and at peak, CUDA's peak allocation, and handing freed heap back to the
operating system. What footprint, quality, generate and doctor read to say what a model costs while it runs."""

from __future__ import annotations

__all__ = ["rss_bytes", "peak_rss_bytes", "reset_peak_rss", "peak_rss_since_reset", "peak_cuda_bytes",
           "release_freed_memory", "available_bytes"]


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (``getrusage`` ru_maxrss, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (``VmHWM``) to its current RSS, so that
    :func:`peak_rss_since_reset` covers only what follows: writes ``5`` to ``/proc/self/clear_refs`` (Linux 4.0
    and later). ``getrusage``'s ru_maxrss (:func:`peak_rss_bytes`) is not reset. False where it cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_kib(path: str, key: str) -> int | None:
    """The value of the ``key`` line of a /proc file that counts in kB, in bytes; None where it cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_since_reset() -> int | None:
    """The peak resident set size since the last :func:`reset_peak_rss` (``VmHWM`` of /proc/self/status), in
    bytes; None where /proc does not say."""
    return _proc_kib("/proc/self/status", "VmHWM:")


def rss_bytes() -> int:
    """This process's current resident set size in bytes (``/proc/self/statm``; peak RSS where unavailable)."""
    import os

    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def available_bytes() -> int | None:
    """Memory the system can give this process without swapping, in bytes: ``MemAvailable`` of
    ``/proc/meminfo`` (Linux); None where the system does not say."""
    return _proc_kib("/proc/meminfo", "MemAvailable:")


def release_freed_memory() -> bool:
    """Hand back to the operating system the heap memory the C allocator keeps after it was freed (glibc's
    ``malloc_trim(0)``); True when some was released. A no-op returning False where the C library has no such
    call (macOS, musl).

    Why: bitsandbytes quantizes each weight on the CPU through float32 temporaries (``quantize_4bit``'s
    default kernel: the weight as float32, its scaled copy, int32 bucket indices), about 17 bytes per weight.
    They are freed, but glibc keeps much of the freed heap (what that cost: ``docs/quantization.md``)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    return bool(trim(0)) if trim is not None else False


def peak_cuda_bytes(reset: bool = False) -> int:
    """``torch.cuda.max_memory_allocated()`` in bytes (0 without CUDA); ``reset=True`` resets the peak after
    reading it, so the next reading covers only what follows."""
    import torch

    if not torch.cuda.is_available():
        return 0
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak
