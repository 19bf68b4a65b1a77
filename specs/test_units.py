"""Lesson: a size means nothing without its unit convention; llmfound prints SI units and says so.

MB = 10^6 bytes and GB = 10^9 bytes; MiB = 2^20 and GiB = 2^30 bytes. The same 762,313,960 bytes (the 1.1B
model in NF4 + double quant) is 0.76 GB and 0.71 GiB: mixing the two once put a wrong expected ratio into a spec.
"""

from __future__ import annotations

import pytest

from llmfound.units import SI_NOTE, format_bytes, format_gib


@pytest.mark.parametrize("n, expected", [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (999_950, "1.0 MB"), (111_692_152, "111.7 MB"),
    (762_313_960, "762.3 MB"), (2_200_096_768, "2.2 GB"), (-1_500_000, "-1.5 MB"),
])
def test_format_bytes_uses_powers_of_1000(n, expected):
    assert format_bytes(n) == expected, f"format_bytes({n}): expected {expected!r}, got {format_bytes(n)!r}"


def test_gb_and_gib_differ_by_seven_percent():
    n = 762_313_960
    assert format_bytes(n) == "762.3 MB" and format_gib(n) == "0.7 GiB", (format_bytes(n), format_gib(n))
    assert round(n / 1e9, 2) == 0.76 and round(n / 2**30, 2) == 0.71


def test_the_convention_line_names_both_units():
    assert "MB = 10^6 bytes" in SI_NOTE and "GB = 10^9 bytes" in SI_NOTE, SI_NOTE
