"""Quantities as llmfound prints them: byte sizes in SI decimal units, always named; counts with the noun
that agrees with them (:func:`plural`: "1 token", "2 tokens").

``MB`` is 10^6 bytes and ``GB`` 10^9 bytes (SI, as disk sizes and Hugging Face's model cards use them);
``MiB`` / ``GiB`` are 2^20 / 2^30 bytes (IEC, as ``nvidia-smi`` and ``torch.cuda`` report memory). The two
differ by 4.9% at MB and 7.4% at GB, enough to turn a correct figure into a wrong one: 762,313,960 B is
0.76 GB but 0.71 GiB. Every size llmfound prints goes through :func:`format_bytes`, and every table that
prints sizes names the convention (:data:`SI_NOTE`).
"""

from __future__ import annotations

__all__ = ["SI_NOTE", "format_bytes", "format_gib", "plural"]

SI_NOTE = "MB = 10^6 bytes, GB = 10^9 bytes"
"""The convention line printed beside every table or figure of sizes."""


def format_bytes(n: float) -> str:
    """``n`` bytes in SI units with one decimal: ``format_bytes(762_313_960) == "762.3 MB"``; whole bytes below
    1000 (``"512 B"``). Units: B, kB, MB, GB, TB (powers of 1000). A negative ``n`` (a difference, such as
    memory released) keeps its sign: ``"-1.5 MB"``."""
    if n < 0:
        return "-" + format_bytes(-n)
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if round(n, 1) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def format_gib(n: float) -> str:
    """``n`` bytes in GiB (2^30 bytes) with one decimal, named as such: ``format_gib(2**31) == "2.0 GiB"``. For
    accelerator memory, which drivers report in binary units."""
    return f"{n / 2**30:.1f} GiB"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``plural(1, "entry", "entries") == "1 entry"``,
    ``plural(3, "token") == "3 tokens"`` (``nouns`` defaults to ``noun + "s"``). Thousands get commas."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"
