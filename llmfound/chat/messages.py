"""Messages: what a conversation must be before any template sees it (roles, content as text or text parts,
UTF-8), and the one-message conversation a prompt makes."""

from __future__ import annotations

from typing import Any

from llmfound.chat.content_parts import check_parts, first_non_utf8
from llmfound.errors import InvalidMessagesError, LlmfoundError

__all__ = ["ROLES", "conversation", "validate_messages", "closes_final_message"]

ROLES = ("system", "user", "assistant", "tool")


def conversation(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """``[{"role": "system", ...}?, {"role": "user", "content": prompt}]``.

    Raises ``TypeError`` for a prompt that is not a ``str`` (a programming mistake, as in Python itself) and
    :class:`LlmfoundError` for an empty or whitespace-only prompt (bad input a user can fix)."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise LlmfoundError("the prompt is empty; give the model something to answer, e.g. "
                            "`llmfound generate \"What is the capital of France?\"`")
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": prompt}]


def validate_messages(messages: Any, roles: tuple[str, ...] = ROLES, who: str = "") -> list[dict]:
    """Check the shape of a conversation before rendering; returns it unchanged.

    ``roles`` is the set the family's template handles (``Family.traits.roles``); ``who`` names the family
    in messages. Raises :class:`InvalidMessagesError` (a :class:`LlmfoundError`) naming the index of the first
    bad message: not a list, empty, a message that is not a dict, a missing/unknown role, missing content,
    content that is neither a string nor a list of ``{"type": ...}`` parts, ``content: None`` (templates render
    it as an empty turn or fail on it; an assistant message that carries ``tool_calls`` may have no content or
    ``None``), a content part that is not a ``{"type": "text", "text": str}`` (naming the part index: a text that
    is not a string, or an image / audio / video part, which a text-only path cannot carry: Gemma 3's template
    would print a lone ``<start_of_image>``), text that is not encodable as UTF-8 (a lone surrogate such as
    ``"\\ud800"``: no tokenizer can encode it)."""
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
        check_parts(i, m["role"], c)
        where = first_non_utf8(m)
        if where is not None:
            path, err = where
            raise InvalidMessagesError(f"message {i} ({m['role']}) {path} is not valid UTF-8 text ({err.reason} "
                                       f"at character {err.start}: {err.object[err.start:err.end]!r}); pass real "
                                       f"text, e.g. decode bytes with errors='replace'")
    return messages


def closes_final_message(messages: list[dict], add_generation_prompt: bool, continue_final_message: bool) -> bool:
    """True when a generation prompt follows a final assistant message (one without ``tool_calls``) and
    ``continue_final_message`` is off: the template closes that answer and opens a second assistant turn, so a
    prefilled answer ("The capital of France is") is not continued. :func:`render` warns then."""
    last = messages[-1] if isinstance(messages, list) and messages else None
    return bool(add_generation_prompt and not continue_final_message and isinstance(last, dict)
                and last.get("role") == "assistant" and not last.get("tool_calls"))


