"""Output files the user names (snapshots, WAV audio, doctor's chart): checked before slow work, written atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from llmfound.errors import LlmfoundError

__all__ = ["atomic_write", "check_output_path", "check_plot_path", "md_cell", "error_number"]


def check_output_path(path: Any) -> Path:
    """Validate a file destination BEFORE any model work; returns it as an absolute :class:`Path`.

    Raises :class:`LlmfoundError` (one line, what to do) when: ``path`` is empty or not a str/PathLike, names
    an existing directory or an existing non-regular file (a symlink, device or FIFO: the atomic rename would
    replace it), its parent folder does not exist (or is not a folder), the parent is not writable,
    or an existing file there is not writable. It creates nothing. Callers check before slow work (a model
    run, a snapshot recording, doctor's checks), so a typo costs nothing."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise LlmfoundError(f"output path must be a file name, got {path!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        raise LlmfoundError(f"output path {str(path)!r} is a folder; name a file inside it")
    if p.is_symlink() or (p.exists() and not p.is_file()):  # a device, FIFO or link would be replaced by a rename
        raise LlmfoundError(f"output path {str(path)!r} exists and is not a regular file (a link, device or FIFO); "
                            f"name a new or regular file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise LlmfoundError(f"cannot write {str(path)!r}: its folder {str(parent)!r} does not exist; create it "
                            f"first (mkdir -p) or pick another path")
    if not parent.is_dir():
        raise LlmfoundError(f"cannot write {str(path)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LlmfoundError(f"cannot write {str(path)!r}: no permission to create files in {str(parent)!r}; "
                            f"pick a writable folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise LlmfoundError(f"cannot write {str(path)!r}: the existing file is read-only; remove it or pick "
                            f"another path")
    return p.absolute()


def check_plot_path(path: Any) -> Path:
    """A ``--plot`` destination: a ``.png`` name (any case) that :func:`check_output_path` accepts; returns it as an
    absolute Path. Raises :class:`LlmfoundError` (one line) otherwise. Used by doctor and quality before their
    slow work."""
    if Path(str(path)).suffix.lower() != ".png":
        raise LlmfoundError(f"--plot writes a PNG: name a file ending in .png, got {path!r}")
    return check_output_path(path)


def atomic_write(path: Path, write: Callable[[Any], None], mode: int = 0o644) -> Path:
    """Write a file so that ``path`` is never left half-written: ``write(f)`` fills a temporary binary file in
    the same folder, which then replaces ``path`` with one ``os.replace``. The temp file is removed on any
    failure. Checks the destination first (:func:`check_output_path`); returns it as an absolute path."""
    dest = check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:  # e.g. /proc: the folder exists and says writable, but takes no new files
        raise LlmfoundError(f"cannot write {str(path)!r}: {e.strerror or e}; pick another folder") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)  # mkstemp made it 0600
        os.replace(tmp, dest)
    except OSError as e:
        raise LlmfoundError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def md_cell(v, n: int = 80, clean: Callable[[str], str] = str) -> str:
    """``v`` as one Markdown table cell: JSON unless a string, passed through ``clean``, cut to ``n`` characters
    with "…", pipes and newlines escaped. The gate's report, the changelog page and the wild-templates page write
    cells with it."""
    import json

    s = clean(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    s = s if len(s) <= n else s[: n - 1] + "…"
    return s.replace("|", "\\|").replace("\n", "\\n")


def error_number(errors: list[str], error: str) -> int:
    """The 1-based number of ``error`` in a table's legend ``errors`` (each distinct error listed once below the
    table, cells saying ``E<n>``), appending it when it is new. The conformance tables all number errors with it."""
    if error not in errors:
        errors.append(error)
    return errors.index(error) + 1
