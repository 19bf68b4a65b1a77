"""Why a chat template failed, in one line: the mapping from what Jinja or the template raised to llmfound's
chat-template errors, with the cause named where it can be told (a parse error's line, the sandbox stopping an
attribute, a template that needs a list of tools, a variable nothing passed). :mod:`llmfound.chat` calls it.
"""

from __future__ import annotations

import re
from typing import Callable

from .errors import (ChatTemplateError, ChatTemplateSyntaxError, TemplateRefusedError, TemplateSecurityError,
                     first_line)

__all__ = ["explain"]


def explain(e: Exception, who: str, origin: str, renders_with_empty_tools: Callable[[], bool] | None = None
            ) -> ChatTemplateError:
    """The error to raise for ``e``, raised while the chat template of ``who`` (from ``origin``) rendered.

    - ``jinja2`` ``SecurityError``: :class:`TemplateSecurityError` (the sandbox stopped it; nothing ran).
    - ``TemplateSyntaxError``: :class:`ChatTemplateSyntaxError` with the line (``.lineno`` set).
    - a ``TypeError`` about ``NoneType`` when the caller passed no tools and ``renders_with_empty_tools()`` is
      True (the template iterates ``tools``, and transformers passes ``tools=None``): "expects a list of tools
      and got none ...; pass tools=[] or a tool list".
    - ``UndefinedError`` "'x' is undefined": "reads a variable 'x' that nothing passed ...; pass it as a template
      keyword argument".
    - anything else: :class:`TemplateRefusedError` "refused this conversation: <first line>".
    Each keeps the original exception as ``.upstream``."""
    import jinja2

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
    if isinstance(e, jinja2.exceptions.UndefinedError):
        m = re.match(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined", first_line(e))
        if m:
            return TemplateRefusedError(
                f"the chat template of {who} ({origin}) reads a variable {m.group(1)!r} that nothing passed "
                f"({first_line(e)}); pass it as a template keyword argument: render(..., {m.group(1)}=...)", e)
    return TemplateRefusedError(f"the chat template of {who} refused this conversation: {first_line(e)}", e)
