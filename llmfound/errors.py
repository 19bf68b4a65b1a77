"""The one error type llmfound raises for bad input or a broken environment.

Every message is one line that says what was wrong and what to do. The CLI prints it as
``error: <message>`` on stderr and exits with :attr:`LlmfoundError.exit_code`.
"""

from __future__ import annotations


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (``e.message`` where the class has one, as Jinja's do), or its
    class name when the message is empty; cut to ``limit`` characters. For one-line error reports."""
    msg = getattr(e, "message", None)
    msg = (msg if isinstance(msg, str) and msg else str(e)).strip()
    return (msg.splitlines()[0] if msg else type(e).__name__)[:limit]


class LlmfoundError(Exception):
    """Base class: a problem the user can act on, with a one-line message.

    ``exit_code`` is the CLI exit status for this class of failure (never 0).
    """

    exit_code = 2


class UnknownNameError(LlmfoundError, KeyError):
    """An asset, family, preset or task name that llmfound does not know; the message lists the known ones
    (exit code 2, as for any bad input)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class AssetError(LlmfoundError):
    """An asset could not be fetched, verified or converted (registry unreachable, sha256 mismatch, npm missing)."""

    exit_code = 3


class AssetMissingError(AssetError):
    """An asset is not in the cache and fetching is switched off (``LLMFOUND_OFFLINE=1``); exit code 3 like any
    asset problem."""


class EnvironmentProblem(LlmfoundError):
    """A required package or device is missing or broken (bitsandbytes, CUDA)."""

    exit_code = 4


# ---------------------------------------------------------------------------------------------- pipelines


class NoOfflineModelError(LlmfoundError):
    """``model=None`` for a task that has no offline model, while the hub cannot be used (offline mode, or
    unreachable); exit code 3."""

    exit_code = 3


class NoCudaError(EnvironmentProblem):
    """A CUDA device was asked for on a machine where torch sees none (or not that index)."""


class UntrainedWeightsError(LlmfoundError):
    """The checkpoint lacks weights the task's model class needs (e.g. a classification head): loading it
    would give a randomly initialized head, so llmfound refuses instead of returning random answers."""


class InputTooLongError(LlmfoundError):
    """An input has more tokens than the model has positions, and truncation was not asked for."""
