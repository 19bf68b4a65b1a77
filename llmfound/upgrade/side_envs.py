"""Side environments: isolated virtual environments, built with uv, that hold one exact requirement set, so the
upgrade gate can try a candidate release without touching the environment llmfound runs in.

A side environment is ``<home>/gate/envs/<key>/`` (``home`` is :func:`llmfound.assets.home`), where ``key`` is the
sha256 (first 16 hex digits) of the requirement set, the interpreter, uv's version and the index settings: the
same candidate asked twice reuses the environment and costs only the checks. A folder without the marker file
``.llmfound-side-env.json`` (an interrupted build) is removed and built again, and so is one whose installed
distributions (``uv pip freeze``, tens of milliseconds) no longer match what the marker recorded: a package
removed or changed by hand would otherwise be blamed on the candidate, run after run (:attr:`SideEnv.rebuilt`
says why).

Two ways to build one:

- **full** (the default): ``uv venv`` + ``uv pip install`` of llmfound's pinned requirement set with the
  candidate overriding it; the resolver checks every dependency. When a candidate's own requirements exclude a
  pinned companion (transformers 5.15.1 declares ``tokenizers<=0.23.0``; llmfound pins 0.23.3), the companion's
  pin is replaced by the candidate's range and the report says so (:attr:`SideEnv.relaxed`).
- **overlay**: ``uv venv`` + only the candidate (``--no-deps``), layered over the calling environment's
  packages (a ``.pth`` file adds its site-packages after the side environment's own). Seconds instead of a full
  install, but nothing checks the candidate's dependencies: for a candidate whose companions are unchanged, and
  for the specs.

uv reads its own settings, not pip's; :func:`uv_index_args` turns the calling environment's pip configuration
(``pip config list``: index-url, extra-index-url, find-links, constraint, no-index, cert) into uv's flags, and
asks uv for pip's index strategy (the best version across every index, ``--index-strategy unsafe-best-match``;
uv's own default takes a package only from the first index that has it). llmfound's own code is not installed
into a side environment: it runs from this checkout through a link in ``<env>/llmfound-src``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmfound.environment import isolated_python
from llmfound.errors import CandidateInstallError, LlmfoundError, SideEnvironmentError
from llmfound.outputs import atomic_write

__all__ = ["SideEnv", "uv_binary", "pip_config", "uv_index_args", "pinned_requirements", "compose",
           "env_key", "dist_name", "ensure", "companion_relaxations", "run_in", "is_wheel_path", "MARKER"]

MARKER = ".llmfound-side-env.json"
"""The file written last into a complete side environment: its requirement set, build seconds, installed set
(``installed``: name -> version; ``freeze``: every line of ``uv pip freeze``, name -> version or ``@ url``)."""


@dataclass
class SideEnv:
    """A built side environment: ``path`` (its folder), ``python`` (its interpreter), ``requirements`` (the
    exact set installed), ``warm`` (True when it was already built), ``seconds`` (wall time to build it now,
    0.0 when warm), ``installed`` (distribution name -> version, from ``uv pip freeze``), ``relaxed`` (companion
    pins replaced by the candidate's own range: ``(pin, replacement)`` pairs), ``overlay``, and ``rebuilt`` (why
    an environment that existed was built again, one line; "" when it was not)."""

    path: Path
    python: Path
    requirements: list[str]
    warm: bool
    seconds: float
    installed: dict[str, str] = field(default_factory=dict)
    relaxed: list[tuple[str, str]] = field(default_factory=list)
    overlay: bool = False
    rebuilt: str = ""


def uv_binary() -> str:
    """The uv executable of this environment (PyPI ``uv``, a dependency of llmfound), found with
    ``uv.find_uv_bin()``. Raises :class:`SideEnvironmentError` when it is not installed."""
    try:
        from uv import find_uv_bin
    except ImportError:
        raise SideEnvironmentError("uv is not installed in this environment; the gate builds side environments "
                                   "with it: pip install -e . (uv is one of llmfound's dependencies)") from None
    return find_uv_bin()


def _uv_version() -> str:
    from importlib.metadata import version

    return version("uv")


def pip_config(listing: str | None = None) -> dict[str, str]:
    """pip's configuration as the calling environment sees it: ``python -m pip config list`` parsed into
    key -> value (keys without their section: ``index-url``, ``extra-index-url``, ``find-links``, ...). Later
    lines win, and the environment variables (``:env:``, listed last by pip) over every file. ``listing`` is
    that command's output (for tests); None runs it. Sections other than ``global``, ``install``, ``download``
    and ``:env:`` are ignored."""
    if listing is None:
        r = subprocess.run([*isolated_python(), "-m", "pip", "config", "list"], capture_output=True, text=True)
        listing = r.stdout if r.returncode == 0 else ""
    found: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        value = value.strip().strip("'\"")
        if section == ":env:":
            env[name] = value
        elif section in ("global", "install", "download"):
            found[name] = value
    return {**found, **env}


def uv_index_args(config: dict[str, str] | None = None) -> list[str]:
    """uv flags that make it read the same indexes pip does: ``--default-index`` (index-url), one ``--index``
    per extra-index-url, one ``--find-links`` per find-links entry, one ``--constraint`` per constraint file,
    ``--no-index``, and always ``--index-strategy unsafe-best-match`` (pip's: the best version across all
    indexes). ``config``: :func:`pip_config`'s result (None reads it). pip's ``cert`` becomes ``SSL_CERT_FILE``
    in :func:`_uv_env`, not a flag."""
    config = pip_config() if config is None else config
    args: list[str] = []
    if config.get("index-url"):
        args += ["--default-index", config["index-url"]]
    for url in config.get("extra-index-url", "").split():
        args += ["--index", url]
    for loc in config.get("find-links", "").split():
        args += ["--find-links", loc]
    for f in config.get("constraint", "").split():
        args += ["--constraint", f]
    if config.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    return args + ["--index-strategy", "unsafe-best-match"]


def _uv_env(config: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    if config.get("cert") and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = config["cert"]
    env.pop("VIRTUAL_ENV", None)  # uv pip must target the side environment named by --python, never this one
    return env


def pinned_requirements() -> list[str]:
    """llmfound's own pinned requirements (no extras): from ``pyproject.toml`` when llmfound runs from a
    checkout (the editable install's recorded metadata can be older than the file), else from the installed
    distribution's metadata. Each is a PEP 508 string such as ``"transformers==5.23.0"``."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"  # llmfound/upgrade/ -> the checkout
    try:
        import tomllib
    except ImportError:  # Python 3.10: no tomllib; the installed metadata below
        tomllib = None
    if pyproject.is_file() and tomllib is not None:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        if data.get("project", {}).get("name") == "llmfound":
            return list(data["project"]["dependencies"])
    from importlib.metadata import requires

    return [r for r in (requires("llmfound") or []) if "extra ==" not in r]


def dist_name(req: str) -> str:
    """The normalized distribution name of a requirement string or of a wheel path (PEP 503)."""
    import re

    from packaging.requirements import Requirement

    if is_wheel_path(req):
        raw = Path(req).name.split("-")[0]
    else:
        raw = Requirement(req).name
    return re.sub(r"[-_.]+", "-", raw).lower()


def is_wheel_path(req: str) -> bool:
    """True when ``req`` names a local wheel file (ends in ``.whl``) rather than a PEP 508 requirement."""
    return req.endswith(".whl")


def compose(pins: list[str], candidate: list[str], relaxed: dict[str, str] | None = None) -> list[str]:
    """The requirement set of a side environment: ``pins`` with every package the ``candidate`` names replaced by
    the candidate's requirement, and each package in ``relaxed`` (normalized name -> requirement) replaced by that
    requirement. Order: the pins' order, then candidate requirements for packages llmfound does not pin."""
    cand = {dist_name(r): r for r in candidate}
    relaxed = relaxed or {}
    out = []
    for p in pins:
        n = dist_name(p)
        out.append(cand.pop(n, None) or relaxed.get(n) or p)
    return out + list(cand.values())


def env_key(requirements: list[str], overlay: bool = False, index_args: list[str] | None = None) -> str:
    """16 hex digits naming a side environment: sha256 over the sorted requirement set (a local wheel counts by
    its sha256, so a rebuilt wheel gets a new environment), the interpreter's path and version, uv's version,
    ``overlay`` and the index flags."""
    reqs = []
    for r in sorted(requirements):
        if is_wheel_path(r) and Path(r).is_file():
            r = f"{Path(r).name}@sha256:{hashlib.sha256(Path(r).read_bytes()).hexdigest()}"
        reqs.append(r)
    blob = json.dumps({"requirements": reqs, "python": [sys.executable, list(sys.version_info[:3])],
                       "uv": _uv_version(), "overlay": overlay, "index": index_args or []}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _envs_root() -> Path:
    from llmfound.assets.cache import home

    return home() / "gate" / "envs"


def _run_uv(args: list[str], config: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([uv_binary(), *args], capture_output=True, text=True, env=_uv_env(config))
    except OSError as e:
        raise SideEnvironmentError(f"cannot run uv ({e.strerror or e}); reinstall it: pip install uv") from None


def _uv_failure(r: subprocess.CompletedProcess) -> str:
    """uv's reason in one line: its ``error:`` (or ``×``) line and the ``cause:`` / ``╰─▶`` lines under it,
    joined with ": " (at most 400 characters)."""
    lines = [ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith(("error:", "×")):
            parts = [ln.removeprefix("error:").lstrip("× ").strip().rstrip(":")]
            for x in lines[i + 1:i + 4]:
                if not x.startswith(("cause:", "╰─▶", "├─▶", "Caused by:")):
                    break
                parts.append(x.split(":", 1)[1].strip() if x.startswith(("cause:", "Caused by:"))
                             else x.lstrip("╰├─▶ ").strip())
            return ": ".join(p for p in parts if p)[:400]
    return (lines[-1] if lines else f"uv exited with {r.returncode}")[:400]


def _unreachable(reason: str) -> bool:
    low = reason.lower()
    return any(k in low for k in ("failed to fetch", "dns error", "connection refused", "network is unreachable",
                                  "error sending request", "operation timed out"))


def companion_relaxations(pins: list[str], candidate: list[str], config: dict[str, str]) -> dict[str, str]:
    """Pinned companions that the candidate's own requirements exclude, each with the candidate's range:
    normalized name -> requirement (``{"tokenizers": "tokenizers<=0.23.0,>=0.22.0"}``). Read from the candidate
    distributions' metadata (``Requires-Dist``, markers evaluated here, extras ignored), fetched with
    ``uv pip install --no-deps --target`` into a temporary folder. Empty when nothing conflicts."""
    import email.parser
    import tempfile

    from packaging.requirements import Requirement

    pinned = {dist_name(p): Requirement(p) for p in pins}
    named = {dist_name(c) for c in candidate}
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="llmfound-meta-") as tmp:
        r = _run_uv(["pip", "install", "--quiet", "--no-deps", "--target", tmp, "--python", sys.executable,
                     *uv_index_args(config), *candidate], config)
        if r.returncode != 0:
            return {}
        for meta in Path(tmp).glob("*.dist-info/METADATA"):
            msg = email.parser.Parser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
            for dep in msg.get_all("Requires-Dist") or []:
                req = Requirement(dep)
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
                n = dist_name(req.name)
                pin = pinned.get(n)
                if pin is None or n in named or not req.specifier:
                    continue
                pinned_versions = [s.version for s in pin.specifier if s.operator == "=="]
                if pinned_versions and not req.specifier.contains(pinned_versions[0], prereleases=True):
                    out[n] = f"{req.name}{req.specifier}"
    return out


def _site_packages(python: Path) -> Path:
    r = subprocess.run([*isolated_python(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SideEnvironmentError(f"the side environment's python at {python} does not run: "
                                   f"{(r.stderr.strip().splitlines() or ['no output'])[-1]}")
    return Path(r.stdout.strip())


def _read_marker(path: Path) -> dict | None:
    """The marker of a complete side environment, or None when it is missing or damaged: unreadable, not JSON,
    nested too deeply to parse, not a map with ``installed`` and ``relaxed`` (then the environment counts as an
    interrupted build and is built again)."""
    try:
        info = json.loads((path / MARKER).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(info, dict) and isinstance(info.get("installed"), dict)
            and isinstance(info.get("relaxed"), list)):
        return None
    return info


def _frozen(text: str) -> dict[str, str]:
    """``uv pip freeze`` output as name -> version (``name==version``) or ``@ url`` (``name @ url``: a local
    wheel); any other line maps to itself."""
    out = {}
    for ln in text.splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            name, sep, version = ln.partition("==") if "==" in ln else ln.partition(" @ ")
            out[name.strip()] = (version if sep == "==" else f"@ {version}" if sep else ln).strip()
    return out


def _damage(python: Path, info: dict, config: dict[str, str]) -> str:
    """How an existing side environment no longer matches its marker ``info``, in a few words ("transformers
    missing", "torch 2.13.0 -> 2.12.0", "requests added", or uv's reason when ``uv pip freeze`` fails there);
    "" when it matches. Markers written before the ``freeze`` record are compared on ``installed``."""
    r = _run_uv(["pip", "freeze", "--python", str(python)], config)
    if r.returncode != 0:
        return f"uv pip freeze fails there: {_uv_failure(r)}"
    now, was = _frozen(r.stdout), info.get("freeze")
    if not isinstance(was, dict):
        was, now = info["installed"], {n: v for n, v in now.items() if not v.startswith("@") and v != n}
    parts = ([f"{n} missing" for n in was if n not in now]
             + [f"{n} {was[n]} -> {now[n]}" for n in was if n in now and now[n] != was[n]]
             + [f"{n} added" for n in now if n not in was])
    return ", ".join(parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "")


def ensure(candidate: list[str], *, overlay: bool = False, pins: list[str] | None = None,
           config: dict[str, str] | None = None) -> SideEnv:
    """The side environment for ``candidate`` (requirement strings and/or local wheel paths): reused when a
    complete one exists for the same key and its installed distributions still match its marker, else built
    (module docstring: full or overlay; :attr:`SideEnv.rebuilt` says why an existing one was not reused).
    Returns a :class:`SideEnv`.

    Raises :class:`CandidateInstallError` when uv cannot resolve or install the set (the candidate's own state, with
    uv's reason in one line), :class:`SideEnvironmentError` when no package index is reachable or uv is missing.
    The calling environment is never written to."""
    config = pip_config() if config is None else config
    pins = pinned_requirements() if pins is None else pins
    index = uv_index_args(config)
    relaxed: dict[str, str] = {}
    rebuilt = ""
    while True:
        reqs = list(candidate) if overlay else compose(pins, candidate, relaxed)
        key = env_key(reqs, overlay, index)
        path = _envs_root() / key
        python = path / "bin" / "python"
        info = _read_marker(path)
        if info is not None and python.exists():
            damage = _damage(python, info, config)
            if not damage:
                return SideEnv(path, python, reqs, True, 0.0, info["installed"],
                               [tuple(x) for x in info["relaxed"]], overlay)
            rebuilt = f"side environment rebuilt (it no longer matched its record: {damage})"
        t0 = time.perf_counter()
        try:
            if path.exists():
                shutil.rmtree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SideEnvironmentError(f"cannot create a side environment at {path} ({e.strerror or e}); check "
                                       "that LLMFOUND_HOME is a writable folder") from None
        r = _run_uv(["venv", "--quiet", "--python", sys.executable, str(path)], config)
        if r.returncode != 0:
            raise SideEnvironmentError(f"uv could not create a side environment at {path}: {_uv_failure(r)}")
        install = ["pip", "install", "--quiet", "--python", str(python), *index]
        if overlay:
            (_site_packages(python) / "_llmfound_overlay.pth").write_text(
                "import site; site.addsitedir(%r)\n" % sysconfig.get_paths()["purelib"])  # this environment's
            install.append("--no-deps")
        r = _run_uv(install + reqs, config)
        if r.returncode != 0:
            reason = _uv_failure(r)
            shutil.rmtree(path, ignore_errors=True)
            if not overlay and not relaxed and "no solution found" in reason.lower():
                relaxed = companion_relaxations(pins, candidate, config)
                if relaxed:
                    continue
            if _unreachable(reason):
                raise SideEnvironmentError(f"no package index reachable ({reason}); check the network and pip's "
                                           "index settings (pip config list)")
            raise CandidateInstallError(reason)
        frozen = _frozen(_run_uv(["pip", "freeze", "--python", str(python)], config).stdout)
        installed = {n: v for n, v in frozen.items() if not v.startswith("@") and v != n}
        pairs = [(next((p for p in pins if dist_name(p) == n), n), v) for n, v in relaxed.items()]
        seconds = time.perf_counter() - t0
        marker = json.dumps({"requirements": reqs, "seconds": round(seconds, 1), "installed": installed,
                             "freeze": frozen, "relaxed": pairs, "overlay": overlay}, indent=1).encode()
        try:  # written whole, then renamed: a marker is never half there
            atomic_write(path / MARKER, lambda f: f.write(marker))
        except LlmfoundError as e:
            raise SideEnvironmentError(f"{e}; check that LLMFOUND_HOME is a writable folder") from None
        return SideEnv(path, python, reqs, False, seconds, installed, pairs, overlay, rebuilt)


def run_in(env: SideEnv, args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``python -I -m llmfound ARGS`` in the side environment with this checkout's llmfound code (linked into
    ``<env>/llmfound-src``, put first on ``sys.path`` by a ``.pth`` file), the same cache (``LLMFOUND_HOME``) and
    ``LLMFOUND_OFFLINE=1``: the checks read only cached assets. Isolated from the caller: Python's isolated mode
    (:func:`llmfound.environment.isolated_python`) and the side environment's folder as the working directory, so
    no module in the directory the gate was started from is imported. Paths in ``args`` must be absolute.
    Returns the completed process (stdout, stderr as text)."""
    src = env.path / "llmfound-src"
    src.mkdir(exist_ok=True)
    link = src / "llmfound"
    here = Path(__file__).resolve().parents[1]  # the llmfound package folder
    if not (link.is_symlink() and link.resolve() == here):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(here, target_is_directory=True)
    pth = _site_packages(env.python) / "_llmfound_src.pth"
    line = f"import sys; sys.path.insert(0, {str(src)!r})\n"  # first, before any installed llmfound
    if not pth.is_file() or pth.read_text() != line:
        pth.write_text(line)
    from llmfound.assets.cache import home

    e = dict(os.environ, LLMFOUND_OFFLINE="1", LLMFOUND_HOME=str(Path(home()).resolve()))
    e.pop("VIRTUAL_ENV", None)
    return subprocess.run([*isolated_python(env.python), "-m", "llmfound", *args], capture_output=True, text=True,
                          env=e, cwd=env.path, timeout=timeout)
