"""Chat templates: turn a list of messages into the exact text (and ids) a chat model was trained on.

Each family's template is data in the family table (``Family.template``): ``"tokenizer"`` (the Jinja template
inside the tokenizer files), ``"<asset>:<path>"`` (an official ``.jinja`` file shipped separately, e.g. Meta's
Llama 3.1 template from llama.cpp's ``models/templates``), or ``None`` (the family publishes no chat format;
llmfound then refuses, it never invents one).

Templates are rendered only through transformers' sandboxed Jinja environment
(``ImmutableSandboxedEnvironment``): ``tokenizer.apply_chat_template(..., tokenize=False)``, passing
``chat_template=`` for a separate file, or, for Mistral's ``MistralCommonBackend`` (whose own
``apply_chat_template`` ignores Jinja and calls mistral-common), transformers' ``render_jinja_template`` with
the tokenizer's special tokens. A template that reaches for Python internals raises
:class:`TemplateSecurityError`; one that does not parse raises :class:`TemplateSyntaxProblem` naming the line.

The ids path encodes the rendered text with ``add_special_tokens=False``: the template already wrote BOS
where the family wants it, and letting ``encode`` add another gives the double-BOS hazard.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from .errors import LlmfoundError, first_line
from .tokenization import is_mistral_common

ROLES = ("system", "user", "assistant", "tool")


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
    def upstream_message(self) -> str | None:
        """The first line of the upstream exception's message (None when llmfound refused)."""
        if self.upstream is None:
            return None
        return getattr(self.upstream, "message", None) or str(self.upstream)


class NoChatTemplateError(ChatTemplateError):
    """The family (or tokenizer) ships no chat template; no fallback format is invented."""


class TemplateRefusedError(ChatTemplateError):
    """The template itself refused the conversation (its ``raise_exception(...)``, or a failing expression)."""


class TemplateSyntaxProblem(ChatTemplateError):
    """The template file does not parse as Jinja; the message names the line. ``lineno`` is 1-based."""

    lineno: int | None = None


class TemplateSecurityError(ChatTemplateError):
    """The template tried to reach Python internals (``__class__``, ``__globals__``...) and the sandbox stopped it."""


# ------------------------------------------------------------------------------------------- conversations


def conversation(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """``[{"role": "system", ...}?, {"role": "user", "content": prompt}]``.

    Raises :class:`LlmfoundError` for an empty prompt or a prompt that is not a string."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise LlmfoundError("the prompt is empty; give the model something to answer, e.g. "
                            "`llmfound generate \"What is the capital of France?\"`")
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": prompt}]


def validate_messages(messages: Any, roles: tuple[str, ...] = ROLES, who: str = "") -> list[dict]:
    """Check the shape of a conversation before rendering; returns it unchanged.

    ``roles`` is the set the family's template handles (``Family.template_roles``); ``who`` names the family
    in messages. Raises :class:`InvalidMessagesError` (a :class:`LlmfoundError`) naming the index of the first
    bad message: not a list, empty, a message that is not a dict, a missing/unknown role, missing content,
    content that is neither a string nor a list of ``{"type": ...}`` parts, ``content: None`` (templates render
    it as an empty turn or fail on it; an assistant message that carries ``tool_calls`` may have no content or
    ``None``), text that is not encodable as UTF-8 (a lone surrogate such as ``"\\ud800"``: no tokenizer can
    encode it)."""
    if not isinstance(messages, list):
        raise InvalidMessagesError(f"messages must be a list of {{role, content}} dicts, "
                                   f"got {type(messages).__name__}")
    if not messages:
        raise InvalidMessagesError("messages is empty; give at least one {role, content} message")
    tmpl = f"the {who} template" if who else "this template"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidMessagesError(f"message {i} must be a dict with role and content, got {type(m).__name__}")
        if "role" not in m:
            raise InvalidMessagesError(f"message {i} has no 'role'; use one of: {', '.join(roles)}")
        if m["role"] not in roles:
            raise InvalidMessagesError(f"message {i} has role {m['role']!r}, which {tmpl} does not handle; "
                                       f"use one of: {', '.join(roles)}")
        if "content" not in m and not m.get("tool_calls"):
            raise InvalidMessagesError(f"message {i} ({m['role']}) has no 'content'")
        c = m.get("content")
        if c is None and "content" in m and not m.get("tool_calls"):
            raise InvalidMessagesError(f"message {i} ({m['role']}) has content None, which templates render as an "
                                       f"empty turn (or fail on); pass the content as a string (\"\" if empty)"
                                       f" - only an assistant message with tool_calls may have no content")
        if c is not None and not isinstance(c, (str, list)):
            raise InvalidMessagesError(f"message {i} ({m['role']}) content must be a string or a list of parts, "
                                       f"got {type(c).__name__}")
        if isinstance(c, list):
            for j, part in enumerate(c):
                if not isinstance(part, dict) or "type" not in part:
                    raise InvalidMessagesError(f"message {i} ({m['role']}) content part {j} must be a dict with "
                                               f"a 'type' (e.g. {{'type': 'text', 'text': '...'}}), got {part!r}")
        where = _not_utf8(m)
        if where is not None:
            path, err = where
            raise InvalidMessagesError(f"message {i} ({m['role']}) {path} is not valid UTF-8 text ({err.reason} "
                                       f"at character {err.start}: {err.object[err.start:err.end]!r}); pass real "
                                       f"text, e.g. decode bytes with errors='replace'")
    return messages


def _not_utf8(value: Any, path: str = "") -> tuple[str, UnicodeEncodeError] | None:
    """``(where, error)`` for the first string inside ``value`` (dicts/lists walked) not encodable as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return path or "text", e
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        found = _not_utf8(v, f"{path}[{k!r}]" if path else (k if isinstance(k, str) else f"[{k}]"))
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------------------------------------ templates


def _family(ref):
    from .families import Family, get_family

    if isinstance(ref, Family):
        return ref
    if isinstance(ref, str):
        return get_family(ref)
    return None


def template_path(family) -> Path | None:
    """The file a family's template is read from when it is a separate ``"<asset>:<path>"`` (else None).

    Raises what :func:`llmfound.assets.ensure` raises (offline and not cached)."""
    fam = _family(family)
    if fam is None or not fam.template or ":" not in fam.template:
        return None
    from .assets import ensure

    asset, rel = fam.template.split(":", 1)
    return ensure(asset) / rel


def template_source(family, tokenizer=None) -> str:
    """The Jinja text of the family's chat template (from the tokenizer files or the separate official file).

    Raises :class:`NoChatTemplateError` when the family's row says ``template=None`` or the tokenizer holds
    none."""
    return _template_and_origin(family, tokenizer)[0]


@functools.lru_cache(maxsize=64)
def _read_template(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _template_and_origin(family, tokenizer=None) -> tuple[str, str]:
    """``(template text, where it came from)``; the separate file is located and read once per process."""
    fam = _family(family)
    if fam is not None and not fam.template:
        if fam.instruct:
            raise NoChatTemplateError(
                f"family {fam.name!r} is a base model ({fam.title}): it ships no chat template because it was "
                f"trained on plain text, not conversations (transformers: 'Cannot use chat template functions "
                f"because tokenizer.chat_template is not set'); chat with its instruct sibling: --family "
                f"{fam.instruct}")
        raise NoChatTemplateError(f"family {fam.name!r} ships no chat template ({fam.title}); llmfound does not "
                                  f"invent a chat format: pick a family with one (`llmfound templates --table`)")
    path = template_path(fam) if fam is not None else None
    if path is not None:
        return _read_template(path), str(path)
    if tokenizer is None:
        from .families import load_tokenizer

        tokenizer = load_tokenizer(fam.name) if fam is not None else family
    t = getattr(tokenizer, "chat_template", None)
    if isinstance(t, dict):  # named templates: use "default"
        t = t.get("default")
    if not t:
        who = f"family {fam.name!r}" if fam is not None else type(tokenizer).__name__
        raise NoChatTemplateError(f"{who} has no chat template; there is no correct chat format to render "
                                  f"(pass chat_template=... if you have the model's official one)")
    return t, "tokenizer files"


def _resolve(ref):
    """(family row or None, tokenizer, display name)."""
    fam = _family(ref)
    if fam is not None:
        from .families import load_tokenizer

        return fam, load_tokenizer(fam.name), fam.name
    return None, ref, type(ref).__name__


def _wrap(e: Exception, who: str, origin: str) -> ChatTemplateError:
    import jinja2

    if isinstance(e, jinja2.exceptions.SecurityError):
        return TemplateSecurityError(f"the chat template of {who} tried to reach Python internals and the "
                                     f"sandbox stopped it ({e}); nothing was executed. Do not use this template", e)
    if isinstance(e, jinja2.exceptions.TemplateSyntaxError):
        err = TemplateSyntaxProblem(f"the chat template of {who} ({origin}) does not parse: line {e.lineno}: "
                                    f"{e.message}; fix that line of the template", e)
        err.lineno = e.lineno
        return err
    return TemplateRefusedError(f"the chat template of {who} refused this conversation: {first_line(e)}", e)


def render(family, messages: list[dict], *, add_generation_prompt: bool = True,
           continue_final_message: bool = False, tools: list[dict] | None = None,
           chat_template: str | None = None, **template_kwargs) -> str:
    """The rendered chat text for ``messages`` with the family's own template.

    ``family`` is a family name (``"llama3"``), a :class:`~llmfound.families.Family` row, or a loaded
    tokenizer (its own ``chat_template`` is used). ``add_generation_prompt`` appends the assistant header
    (``Family.generation_marker``); ``continue_final_message`` leaves a final assistant message open so the
    model continues it; ``tools`` is a list of JSON schemas for templates that support tools;
    ``chat_template`` overrides the template text; any other keyword argument reaches the template as a
    variable (e.g. ``date_string="26 Jul 2024"`` for Llama 3.1, ``enable_thinking=False`` for Qwen3). Unknown
    names are NOT rejected - that is how transformers' ``apply_chat_template`` works: extra keyword arguments
    are passed to the template, and a template silently ignores a variable it never reads (so a misspelt
    ``enable_thinkng=False`` changes nothing; check the rendered text).

    Content parts (``content=[{"type": "text", "text": ...}, ...]``) are rendered only where the template
    handles them (e.g. Gemma 3). llmfound first renders a copy whose text parts are unique markers: if the
    template prints the Python list (Llama 3, Gemma 2), drops the text (Qwen3) or fails on the list (Qwen2.5,
    Mistral Tekken: "can only concatenate str"), it raises :class:`InvalidMessagesError` naming the message
    and saying to pass the content as a string.

    Rendering goes only through transformers' sandboxed Jinja (see module doc). Raises
    :class:`InvalidMessagesError` (bad messages, naming the index), :class:`NoChatTemplateError`,
    :class:`TemplateSyntaxProblem`, :class:`TemplateSecurityError`, :class:`TemplateRefusedError` (the
    template raised, e.g. Gemma 2's "System role not supported"); all are :class:`LlmfoundError`."""
    fam, tok, who = _resolve(family)
    roles = fam.template_roles if fam is not None else ROLES
    validate_messages(messages, roles, who if fam is not None else "")
    if chat_template is None:
        chat_template, origin = _template_and_origin(fam if fam is not None else tok, tok)
    else:
        origin = "chat_template argument"
    kwargs = dict(add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message,
                  tools=tools, **template_kwargs)
    if any(isinstance(m.get("content"), list) for m in messages):
        _check_parts_rendered(tok, messages, chat_template, kwargs, who)
    try:
        return _render_raw(tok, messages, chat_template, kwargs)
    except (ImportError, LlmfoundError):
        raise
    except Exception as e:  # jinja2 errors, and ValueError/TypeError raised while the template runs
        raise _wrap(e, who, origin) from e


def _render_raw(tok, messages: list[dict], chat_template: str, kwargs: dict) -> str:
    if is_mistral_common(tok):  # its apply_chat_template ignores Jinja: render with the same sandbox
        from transformers.utils.chat_template_utils import render_jinja_template

        specials = {k: getattr(tok, k, None) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        rendered, _ = render_jinja_template([messages], chat_template=chat_template,
                                            **{k: v for k, v in specials.items() if v is not None}, **kwargs)
        return rendered[0]
    return tok.apply_chat_template(messages, tokenize=False, chat_template=chat_template, **kwargs)


_LIST_CONCAT = re.compile(r"can only concatenate (str|list) \(not \"(list|str)\"\)|unsupported operand type\(s\) "
                          r"for \+: '(list|str)' and '(list|str)'")


def _check_parts_rendered(tok, messages: list[dict], chat_template: str, kwargs: dict, who: str) -> None:
    """Render a copy whose text parts are unique markers; raise :class:`InvalidMessagesError` for the first
    message with list content whose text the template printed as a Python list, dropped, or failed on.

    Other failures are left to the real render (which raises them with the template's own words)."""
    probe, markers = [], {}
    for i, m in enumerate(messages):
        c = m.get("content")
        if isinstance(c, list):
            parts = []
            for j, part in enumerate(c):
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    part = {**part, "text": f"llmfoundpart{i}x{j}q"}
                    markers.setdefault(i, []).append(part["text"])
                parts.append(part)
            m = {**m, "content": parts}
        probe.append(m)
    first = next(i for i, m in enumerate(messages) if isinstance(m.get("content"), list))
    tmpl = f"the {who} template"
    fix = "pass the content as a string"
    try:
        text = _render_raw(tok, probe, chat_template, kwargs)
    except Exception as e:  # noqa: BLE001 - only the str/list mix-up is ours to name
        if _LIST_CONCAT.search(str(e)):
            raise InvalidMessagesError(
                f"message {first} ({messages[first]['role']}) content is a list of parts, which {tmpl} cannot "
                f"render (it fails with: {first_line(e)}); {fix}") from None
        return
    for i, ms in markers.items():
        role = messages[i]["role"]
        for mk in ms:
            if f"'text': '{mk}'" in text:
                raise InvalidMessagesError(
                    f"message {i} ({role}) content is a list of parts, which {tmpl} does not render: it would "
                    f"print the Python list ([{{'type': 'text', ...}}]) into the prompt; {fix}")
            if mk not in text:
                raise InvalidMessagesError(
                    f"message {i} ({role}) content is a list of parts, which {tmpl} does not render: it would "
                    f"drop the text and leave the turn empty; {fix}")



def chat_ids(family, messages: list[dict], *, add_generation_prompt: bool = True,
             continue_final_message: bool = False, tools: list[dict] | None = None, **template_kwargs) -> list[int]:
    """Token ids of the rendered conversation: ``encode(render(...), add_special_tokens=False)``.

    Never adds a second BOS: the template decides where BOS goes. For ``MistralCommonBackend`` (Tekken), whose
    ``encode`` treats control tokens such as ``[INST]`` as plain text, the ids come from mistral-common's
    reference chat encoder (``apply_chat_template(tokenize=True)``), which does not take Jinja templates.
    Raises what :func:`render` raises."""
    fam, tok, who = _resolve(family)
    text = render(family, messages, add_generation_prompt=add_generation_prompt,
                  continue_final_message=continue_final_message, tools=tools, **template_kwargs)
    if is_mistral_common(tok):
        try:
            enc = tok.apply_chat_template(messages, tokenize=True, continue_final_message=continue_final_message,
                                          tools=tools)
        except Exception as e:
            raise TemplateRefusedError(f"mistral-common's chat encoder ({who}) refused this conversation: "
                                       f"{first_line(e)}", e) from e
        return list(enc["input_ids"] if hasattr(enc, "keys") else enc)
    return tok.encode(text, add_special_tokens=False)


def chat_inputs(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True, **template_kwargs):
    """``{"input_ids": LongTensor[1, seq], "attention_mask": LongTensor[1, seq]}`` for ``generate``.

    ``tokenizer`` is a loaded tokenizer or a family name. Uses :func:`chat_ids` (no second BOS)."""
    import torch

    ids = chat_ids(tokenizer, messages, add_generation_prompt=add_generation_prompt, **template_kwargs)
    t = torch.tensor([ids], dtype=torch.long)
    return {"input_ids": t, "attention_mask": torch.ones_like(t)}


# ------------------------------------------------------------------------------------------ conformance table

_Q = "What is the capital of France?"
_WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

CASES: dict[str, tuple[list[dict], dict]] = {
    "single-user": ([{"role": "user", "content": _Q}], {}),
    "system+user": ([{"role": "system", "content": "You are a concise geography tutor."},
                     {"role": "user", "content": _Q}], {}),
    "three-turns": ([{"role": "user", "content": _Q}, {"role": "assistant", "content": "Paris."},
                     {"role": "user", "content": "And of Italy?"}], {}),
    "continue-final": ([{"role": "user", "content": _Q},
                        {"role": "assistant", "content": "The capital of France is"}],
                       {"add_generation_prompt": False, "continue_final_message": True}),
    "two-users": ([{"role": "user", "content": "Hello."}, {"role": "user", "content": _Q}], {}),
    "empty-content": ([{"role": "user", "content": ""}], {}),
    "unicode": ([{"role": "user", "content": "Ça va? 你好 🙂 naïve — ℕ"}], {}),
    "tool-call": ([{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "tool_calls": [{"type": "function", "id": "call12345", "function": {
                       "name": "get_weather", "arguments": {"city": "Paris"}}}]},
                   {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "22 C, sunny"}],
                  {"tools": [_WEATHER_TOOL]}),
}
"""The fixed conversations of the conformance table: name -> (messages, render keyword arguments).

Rendered with ``add_generation_prompt=True`` unless the case says otherwise; ``date_string`` is passed explicitly
(Llama 3.1's own template already defaults it to the fixed "26 Jul 2024" and never reads the clock, but templates
such as Llama 3.2's read ``strftime_now`` when no date is given), so the table never depends on today's date."""

FIXED_TEMPLATE_KWARGS = {"date_string": "26 Jul 2024"}
"""Passed to every conformance render: templates that print a date read it (others ignore it)."""


def conform(family, case: str) -> tuple[str, str]:
    """Render conformance case ``case`` for ``family``: ``("ok", text)`` or ``("raises", "<Class>: <message>")``.

    For a raise, ``<Class>`` is llmfound's error class, followed by the upstream class in brackets when the
    template or transformers raised (e.g. ``TemplateRefusedError[jinja2.exceptions.TemplateError]``)."""
    messages, kw = CASES[case]
    kw = {"add_generation_prompt": True, **kw, **FIXED_TEMPLATE_KWARGS}
    import copy

    try:
        return "ok", render(family, copy.deepcopy(messages), **kw)
    except ChatTemplateError as e:
        cls = type(e).__name__ + (f"[{e.upstream_name}]" if e.upstream is not None else "")
        return "raises", f"{cls}: {e.upstream_message if e.upstream is not None else e}"
    except InvalidMessagesError as e:
        return "raises", f"{type(e).__name__}: {e}"


def conformance_table(family_names: list[str] | None = None) -> dict[str, dict[str, tuple[str, str]]]:
    """``{family: {case: conform(family, case)}}`` for every family with a template (or those named)."""
    from .families import FAMILIES

    names = family_names or [f.name for f in FAMILIES if f.template]
    return {n: {c: conform(n, c) for c in CASES} for n in names}
