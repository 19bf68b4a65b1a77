"""Content parts: ``content=[{"type": "text", "text": ...}, ...]``, which llmfound carries only as text.

A message's content may be a list of typed parts (transformers' multimodal form). llmfound renders text only, so
:func:`check_parts` refuses any part it cannot carry (an image, audio or video part: Gemma 3's template would
print a lone ``<start_of_image>`` with no image behind it) and a text part whose ``text`` is not a string. Many
templates cannot render even text parts: :func:`check_parts_rendered` renders a copy whose text parts are unique
markers and refuses the list where the template prints it as a Python list (Llama 3, Gemma 2), drops the text
(Qwen3) or fails on it (Qwen2.5, Mistral Nemo: "can only concatenate str"). :func:`first_non_utf8` finds text
that no tokenizer can encode (a lone surrogate), anywhere in a message.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from llmfound.errors import InvalidMessagesError, first_line

__all__ = ["check_parts", "check_parts_rendered", "first_non_utf8"]


def check_parts(index: int, role: str, content: Any) -> None:
    """Check the parts of message ``index`` (``role``) when ``content`` is a list (else nothing to check).

    Raises :class:`InvalidMessagesError` naming the message and part index: a part that is not a dict with a
    ``type``, a type other than ``"text"`` (llmfound is text-only: no images, audio or video), or a ``text`` that
    is not a string (e.g. ``12``)."""
    for j, part in enumerate(content if isinstance(content, list) else ()):
        at = f"message {index} ({role}) content part {j}"
        if not isinstance(part, dict) or "type" not in part:
            raise InvalidMessagesError(f"{at} must be a dict with a 'type' (e.g. {{'type': 'text', 'text': "
                                       f"'...'}}), got {part!r}")
        if part["type"] != "text":
            raise InvalidMessagesError(f"{at} has type {part['type']!r}, which llmfound cannot carry: it renders "
                                       f"text only (no images, audio or video); remove the part, or put what it "
                                       f"says in a {{'type': 'text', 'text': '...'}} part")
        if not isinstance(part.get("text"), str):
            raise InvalidMessagesError(f"{at} has text {part.get('text')!r:.40} ({type(part.get('text')).__name__});"
                                       f" a text part's 'text' must be a string")


_LIST_CONCAT = re.compile(r"can only concatenate (str|list) \(not \"(list|str)\"\)|unsupported operand type\(s\) "
                          r"for \+: '(list|str)' and '(list|str)'")


def check_parts_rendered(render_raw: Callable[[list[dict]], str], messages: list[dict], who: str) -> None:
    """Render (with ``render_raw(messages) -> text``) a copy whose text parts are unique markers; raise
    :class:`InvalidMessagesError` for the first message with list content whose text the template printed as a
    Python list, dropped, or failed on. ``who`` names the family in messages.

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
        text = render_raw(probe)
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


def first_non_utf8(value: Any, path: str = "") -> tuple[str, UnicodeEncodeError] | None:
    """``(where, error)`` for the first string inside ``value`` (dicts and lists walked; ``where`` is e.g.
    ``"content[0]['text']"``) that is not encodable as UTF-8 (a lone surrogate such as ``"\\ud800"``: no
    tokenizer can encode it), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return path or "text", e
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        found = first_non_utf8(v, f"{path}[{k!r}]" if path else (k if isinstance(k, str) else f"[{k}]"))
        if found is not None:
            return found
    return None
