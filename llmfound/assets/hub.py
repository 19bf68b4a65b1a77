"""The model hub, from where llmfound stands: may it be used (offline switches), can it be reached (one quick
probe per process), and is a repository already in huggingface_hub's local cache.

No machine of this project reaches a hub, but a user with hub access can name a hub id; these functions decide,
within ~2 s and without the hub client's retries, whether that can work here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HUB_PROBE_TIMEOUT_S", "hub_cached", "hub_endpoint", "hub_offline", "hub_problem", "hub_unreachable",
           "offline"]


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
