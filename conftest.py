"""Test-session setup shared by every spec: offline switches, tiers (markers), hypothesis profiles.

Tiers:
- default: CPU only, offline, real assets from the cache (``llmfound assets fetch --all`` fills it).
- ``slow``: minutes of CPU (bitsandbytes generation); run with ``--run-slow`` or ``-m slow``.
- ``gpu``: needs CUDA and bitsandbytes' CUDA backend; runs when present, else skips saying so.
- ``network``: needs a model hub; run with ``--run-network`` on a machine that has one.
"""

from __future__ import annotations

import os

import pytest

# Nothing in the default tier may reach a network: the cache must already hold the assets.
import sys  # noqa: E402

os.environ.setdefault("LLMFOUND_OFFLINE", "1")
if "--run-network" not in sys.argv:  # the network tier is the one place a hub may be reached
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

# One intra-op thread per test process: the specs run tiny matmuls where thread hand-off costs more than it
# saves, and under pytest-xdist each worker already owns a core. (Speed is measured in benchmarks/, not here.)
TEST_THREADS = int(os.environ.get("LLMFOUND_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)

from hypothesis import HealthCheck, Verbosity, settings  # noqa: E402

# The lesson report printed at the end of every run (llmfound/lessons.py), and pytest's own ``pytester`` for the
# spec that checks it.
pytest_plugins = ["llmfound.lessons", "pytester"]

# Round-trip properties run once per family (16 of them), so a modest count per test keeps the default tier
# near a minute; `thorough` is for hunting (HYPOTHESIS_PROFILE=thorough pytest -k round_trip).
settings.register_profile("dev", max_examples=40, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True,
                          verbosity=Verbosity.normal, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run specs marked slow (minutes on CPU)")
    parser.addoption("--run-network", action="store_true", help="run specs that need a model hub")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes of CPU; run with --run-slow or -m slow")
    config.addinivalue_line("markers", "gpu: needs CUDA + bitsandbytes CUDA backend; select with -m gpu")
    config.addinivalue_line("markers", "network: needs a model hub; run with --run-network")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("-m") or ""
    run_slow = config.getoption("--run-slow") or "slow" in markexpr
    run_net = config.getoption("--run-network") or "network" in markexpr
    skip_slow = pytest.mark.skip(reason="slow tier (minutes of CPU): run `pytest --run-slow` or `pytest -m slow`")
    skip_net = pytest.mark.skip(reason="needs a model hub, which this project's machines cannot reach: "
                                       "run `pytest --run-network` where huggingface.co is reachable")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "network" in item.keywords and not run_net:
            item.add_marker(skip_net)


@pytest.fixture(autouse=True)
def _test_threads():
    """A spec that runs a command in process may change torch's threads (``--threads``, the thread chooser): the
    next spec on this worker gets ``TEST_THREADS`` back instead of running on threads another spec chose."""
    yield
    if torch.get_num_threads() != TEST_THREADS:
        torch.set_num_threads(TEST_THREADS)


@pytest.fixture()
def llmfound_log():
    """The records the ``llmfound`` logger emits at WARNING or above during the spec (a list, filled as they come).

    Stands in for pytest's ``caplog``: the logging plugin is off (``-p no:logging`` in pyproject.toml), because
    around every phase of every spec it attaches a handler to each non-propagating logger (torch has about 90),
    which cost the default tier seconds."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("llmfound")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="session")
def require_assets():
    """Call with entry names; skips (locally) or fails (under CI=true) when the cache lacks one.

    The README's test command fills the cache first, so in CI a missing asset is a broken setup, not a skip. An
    entry found complete is not looked up again in this process (for the same cache root): nearly every spec asks.
    """
    from llmfound import assets

    complete: set[tuple[str, str]] = set()

    def _require(*names: str) -> None:
        root = str(assets.home())
        missing = [n for n in names if (root, n) not in complete and not assets.is_complete(n)]
        complete.update((root, n) for n in names if n not in missing)
        if missing:
            msg = (f"assets not in the cache ({assets.home()}): {', '.join(missing)}; "
                   f"run `llmfound assets fetch --all` first (the README's test command does)")
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)

    return _require


@pytest.fixture(scope="session")
def smollm2(require_assets):
    """Call with a preset: the real SmolLM2-135M-Instruct loaded on the CPU in it, ``(model, tokenizer)``, loaded
    once per test process and shared by the quantization and quality lessons (each load takes 0.3-10 s on 2 cores).
    Skips (fails under CI) when the model is not cached."""
    from llmfound import quantization as Q
    from llmfound import models

    loaded: dict = {}

    def _load(preset: str):
        require_assets("smollm2-135m-instruct")
        p = Q.preset_name(preset)
        if p not in loaded:
            loaded[p] = models.load_model("smollm2-135m-instruct", p)
        return loaded[p]

    return _load


@pytest.fixture(scope="session")
def synthetic_chat_model(tmp_path_factory):
    """Call with ``positions`` (default 256) and ``stops`` (default True): a model folder holding
    :func:`llmfound.synthetic.save_synthetic_chat_model`'s tiny chat model (synthetic weights: its answers are
    noise), made once per test process per setting. ``llmfound generate --model FOLDER`` loads it in a fraction
    of a second; ``stops=False``: no eos, so it generates until ``max_new_tokens``."""
    from llmfound.synthetic import save_synthetic_chat_model

    made: dict = {}

    def _make(positions: int = 256, stops: bool = True):
        if (positions, stops) not in made:
            folder = tmp_path_factory.mktemp(f"synthetic-chat-{positions}-{'stops' if stops else 'endless'}")
            save_synthetic_chat_model(folder, positions=positions, stops=stops)
            made[positions, stops] = folder
        return made[positions, stops]

    return _make
