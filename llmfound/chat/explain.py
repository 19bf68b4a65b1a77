"""Why a chat template failed, in one line: the mapping from what Jinja or the template raised to llmfound's
chat-template errors, with the cause named where it can be told (a parse error's line, the sandbox stopping an
attribute, a template that needs a list of tools, a variable nothing passed). :mod:`llmfound.chat` calls it.
"""

from __future__ import annotations

import re
from typing import Callable

from llmfound.errors import (ChatTemplateError, ChatTemplateSyntaxError, TemplateRefusedError, TemplateSecurityError,
    first_line)

__all__ = ["explain"]


def explain(e: Exception, who: str, origin: str, renders_with_empty_tools: Callable[[], bool] | None = None
            ) -> ChatTemplateError:
    """The error to raise for ``e``, raised while the chat template of ``who`` (from ``origin``) rendered.

    - ``jinja2`` ``SecurityError`` for a method that changes a list, dict or set in place (``append``; Kimi K2's
      tool calls): :class:`TemplateRefusedError` saying transformers' immutable sandbox forbids it.
    - any other ``SecurityError``: :class:`TemplateSecurityError` (the sandbox stopped it; nothing ran).
    - ``TemplateSyntaxError``: :class:`ChatTemplateSyntaxError` with the line (``.lineno`` set).
    - a ``TypeError`` about ``NoneType`` when the caller passed no tools and ``renders_with_empty_tools()`` is
      True (the template iterates ``tools``, and transformers passes ``tools=None``): "expects a list of tools
      and got none ...; pass tools=[] or a tool list".
    - ``UndefinedError`` "'dict object' has no attribute 'content'": names the field a message or tool lacks.
    - ``RecursionError``: the template recursed without end.
    - ``UndefinedError`` "'x' is undefined": "reads a variable 'x' that nothing passed ...; pass it as a template
      keyword argument".
    - anything else: :class:`TemplateRefusedError` "refused this conversation: <first line>".
    Each keeps the original exception as ``.upstream``."""
    import jinja2

    if isinstance(e, jinja2.exceptions.SecurityError) and _in_place_change(str(e)):
        return TemplateRefusedError(f"the chat template of {who} changes a {_in_place_change(str(e))} in place "
                                    f"({e}), which transformers' immutable sandbox forbids; nothing ran. The "
                                    f"template cannot render this conversation with transformers", e)
    if isinstance(e, jinja2.exceptions.SecurityError):
        return TemplateSecurityError(f"the chat template of {who} tried to reach Python internals and the "
                                     f"sandbox stopped it ({e}); nothing was executed. Do not use this template", e)
    if isinstance(e, jinja2.exceptions.TemplateSyntaxError):
        err = ChatTemplateSyntaxError(f"the chat template of {who} ({origin}) does not parse: line {e.lineno}: "
                                      f"{e.message}; fix that line of the template", e)
        err.lineno = e.lineno
        return err
    if (isinstance(e, TypeError) and "NoneType" in str(e) and renders_with_empty_tools is not None
            and renders_with_empty_tools()):
        return TemplateRefusedError(f"the chat template of {who} ({origin}) expects a list of tools and got none "
                                    f"(tools=None: {first_line(e)}); pass tools=[] or a tool list", e)
    if isinstance(e, jinja2.exceptions.UndefinedError) and (
            m := re.match(r"'dict object' has no attribute '(\w+)'", first_line(e))):
        fix = ('add it to every message, e.g. "content": "" beside tool_calls' if m.group(1) == "content" else
               "give the messages and tools the fields this template reads (its own format)")
        return TemplateRefusedError(f"the chat template of {who} reads a field {m.group(1)!r} that a message or "
                                    f"tool lacks ({first_line(e)}); {fix}", e)
    if isinstance(e, RecursionError):
        return TemplateRefusedError(f"the chat template of {who} recursed without end (maximum recursion depth "
                                    f"exceeded); it cannot render this conversation", e)
    if isinstance(e, jinja2.exceptions.UndefinedError):
        m = re.match(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined", first_line(e))
        if m:
            return TemplateRefusedError(
                f"the chat template of {who} ({origin}) reads a variable {m.group(1)!r} that nothing passed "
                f"({first_line(e)}); pass it as a template keyword argument: render(..., {m.group(1)}=...)", e)
    return TemplateRefusedError(f"the chat template of {who} refused this conversation: {first_line(e)}", e)


_EMPTY = {"list": list, "dict": dict, "set": set}


def _in_place_change(message: str) -> str | None:
    """``"list"`` / ``"dict"`` / ``"set"`` when a sandbox ``SecurityError`` message says the template called a
    method that changes that object in place (``append``, ``update``, ...: jinja2's own
    ``sandbox.modifies_known_mutable``, which transformers' immutable sandbox refuses), else None."""
    from jinja2.sandbox import modifies_known_mutable

    m = re.search(r"attribute '(\w+)' of '(\w+)' object is unsafe", message)
    if m and m.group(2) in _EMPTY and modifies_known_mutable(_EMPTY[m.group(2)](), m.group(1)):
        return m.group(2)
    return None
