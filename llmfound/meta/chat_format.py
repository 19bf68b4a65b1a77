"""Meta's ChatFormat: the Llama 3 / Llama 4 conversation format as token ids, as Meta's own code builds it.

Source: ``llama3/chat_format.py`` and ``llama4/chat_format.py`` of PyPI ``llama-models==0.3.0`` (asset
``meta-llama-models``), ``ChatFormat.encode_dialog_prompt`` for text messages:

- the ids start with ``<|begin_of_text|>``;
- each message is a header, its content, and an end token. The header is the header-start token, the role
  encoded as text (``tool`` is written ``ipython``), the header-end token, then ``"\\n\\n"`` encoded as text
  (``_encode_header``). The content is encoded as text, each text part on its own, and is not trimmed
  (``_encode_content``). The end token is end-of-turn, except that Llama 4 closes a ``tool`` message with
  end-of-message (``encode_message``);
- with ``add_generation_prompt`` (``encode_dialog_prompt`` always does it) an assistant header follows.

Text is encoded as Meta's ``Tokenizer.encode`` does: a special token typed in the content stays text. Here that
is the family's transformers tokenizer with ``split_special_tokens=True``: its ids equal Meta's tiktoken
encoder's on the seeded generators (``specs/test_meta_reference.py``). The format itself is checked against Meta's
own ``encode_dialog_prompt``, run in a subprocess by ``specs/test_meta_chat.py``.

Llama 4 ships no Jinja chat template in any registry package found (``docs/sources.md``), so for the ``llama4``
family this is the only chat format llmfound has; llmfound does not write a Jinja template for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmfound.errors import ChatOptionsError, InvalidMessagesError

__all__ = ["ChatFormat", "FORMATS", "ROLES", "check_roles", "encode_dialog", "text_and_ids"]


@dataclass(frozen=True)
class ChatFormat:
    """The tokens one version's ChatFormat writes: ``header_start`` / ``header_end`` around the role,
    ``eot`` (end of turn) closing a message, ``eom`` (end of message) closing a ``tool`` message when
    ``tool_ends_with_eom``."""

    version: str
    header_start: str
    header_end: str
    eot: str
    eom: str
    tool_ends_with_eom: bool


FORMATS = {
    "llama3": ChatFormat("llama3", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", False),
    "llama4": ChatFormat("llama4", "<|header_start|>", "<|header_end|>", "<|eot|>", "<|eom|>", True),
}
"""Per version, from ``_encode_header`` and ``encode_message`` of that version's ``chat_format.py``."""

ROLES = ("system", "user", "assistant", "tool")
"""The roles of Meta's ``Role`` enum (``llama_models/datatypes.py``); pydantic refuses any other."""

BOS = "<|begin_of_text|>"


def _content_texts(i: int, message: dict) -> list[str]:
    role = message["role"]
    if message.get("tool_calls"):
        raise InvalidMessagesError(f"message {i} ({role}) carries tool_calls: Meta's ChatFormat writes tool "
                                   f"calls with its own ToolUtils formats, which llmfound does not reproduce; "
                                   f"put the call in the content as text")
    c = message.get("content")
    if isinstance(c, str):
        return [c]
    if isinstance(c, list) and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                                   for p in c):
        return [p["text"] for p in c]
    raise InvalidMessagesError(f"message {i} ({role}) content must be a string or a list of "
                               f"{{'type': 'text', 'text': str}} parts, got {type(c).__name__}")


def _check(tokenizer, fmt: ChatFormat, messages) -> None:
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and "role" in m
                                                                 for m in messages):
        raise InvalidMessagesError("messages must be a non-empty list of {role, content} dicts")
    used = (BOS, fmt.header_start, fmt.header_end, fmt.eot) + ((fmt.eom,) if fmt.tool_ends_with_eom else ())
    # one lookup per marker, not get_vocab(): that builds a dict of the whole vocabulary (0.1 s for 128k entries)
    ids = tokenizer.convert_tokens_to_ids(list(used))
    lacking = [t for t, i in zip(used, ids)  # Llama 3.0's tokenizer has no <|eom_id|>, never written here
               if i is None or (i == tokenizer.unk_token_id and t != tokenizer.unk_token)]
    if lacking:
        raise ValueError(f"this tokenizer lacks {', '.join(lacking)}: Meta's {fmt.version} ChatFormat needs the "
                         f"{fmt.version} tokenizer (a family whose conversation_format is 'meta:{fmt.version}')")


def check_roles(messages: list) -> None:
    """Raise :class:`InvalidMessagesError` naming the first message (a dict) whose role is not one of
    :data:`ROLES`; other shapes are left to :func:`llmfound.chat.validate_messages`."""
    for i, m in enumerate(messages if isinstance(messages, list) else ()):
        if isinstance(m, dict) and "role" in m and m["role"] not in ROLES:
            raise InvalidMessagesError(f"message {i} has role {m['role']!r}, which Meta's ChatFormat does not "
                                       f"have; use one of: {', '.join(ROLES)} (tool is written as the ipython "
                                       f"header)")


def encode_dialog(tokenizer, version: str, messages: list[dict], *, add_generation_prompt: bool = True,
                  continue_final_message: bool = False) -> list[int]:
    """Token ids of ``messages`` in Meta's ChatFormat for ``version`` (``"llama3"`` or ``"llama4"``).

    ``tokenizer`` is the family's transformers tokenizer (its vocabulary must hold the format's special tokens).
    ``messages`` are ``{role, content}`` dicts already checked by :func:`llmfound.chat.validate_messages`
    (content a string or text parts). ``add_generation_prompt=False`` leaves off the closing assistant header.
    Returns a list of ints (one BOS first).

    Raises :class:`InvalidMessagesError` for messages that are not a non-empty list of ``{role, content}``
    dicts, a role outside :data:`ROLES` (e.g. ``ipython``: Meta's ``tool`` role is what the ipython header is
    written for), content that is neither a string nor text parts, or a message with ``tool_calls``;
    :class:`ChatOptionsError` for ``continue_final_message`` (ChatFormat closes every message);
    :class:`~llmfound.errors.UnknownNameError` for another ``version``; ``ValueError`` for a tokenizer that lacks
    the format's special tokens."""
    from llmfound.errors import get_by_name

    fmt = get_by_name(list(FORMATS.values()), version, "ChatFormat version", names=lambda f: (f.version,))
    if continue_final_message:
        raise ChatOptionsError(f"Meta's {version} ChatFormat closes every message with {fmt.eot}: it cannot leave "
                               f"the last one open; drop continue_final_message (--continue-final-message)")
    _check(tokenizer, fmt, messages)
    check_roles(messages)

    def special(token: str) -> int:
        return tokenizer.convert_tokens_to_ids(token)

    def text(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False, split_special_tokens=True) if s else []

    def header(role: str) -> list[int]:
        return [special(fmt.header_start), *text("ipython" if role == "tool" else role), special(fmt.header_end),
                *text("\n\n")]

    ids = [special(BOS)]
    for i, m in enumerate(messages):
        ids += header(m["role"])
        for part in _content_texts(i, m):
            ids += text(part)
        ids.append(special(fmt.eom if m["role"] == "tool" and fmt.tool_ends_with_eom else fmt.eot))
    if add_generation_prompt:
        ids += header("assistant")
    return ids


def text_and_ids(family, messages: list[dict], add_generation_prompt: bool = True,
                 continue_final_message: bool = False, tools: list[dict] | None = None,
                 template_kwargs: dict | None = None) -> tuple[str, list[int], Any]:
    """``(text, ids, tokenizer)`` for a family row whose ``conversation_format`` is ``"meta:<version>"``: the ids
    of :func:`encode_dialog` with the family's tokenizer, and the text they decode to (special tokens kept).
    ``messages`` must already be checked (:func:`llmfound.chat.validate_messages`). Raises what
    :func:`encode_dialog` raises, and :class:`ChatOptionsError` for ``tools`` (ChatFormat writes tool
    definitions in its own system prompts, which llmfound does not reproduce) or any ``template_kwargs`` (there
    is no template to read them)."""
    from llmfound.tokenization import load_tokenizer

    if tools is not None:
        raise ChatOptionsError(f"{family.name}: Meta's ChatFormat writes tool definitions in its own system "
                               f"prompts, which llmfound does not reproduce; drop tools")
    if template_kwargs:
        raise ChatOptionsError(f"{family.name} has no Jinja template, so template keyword arguments "
                               f"({', '.join(sorted(template_kwargs))}) mean nothing to Meta's ChatFormat; drop "
                               f"them, or pass chat_template= to render with a template of your own")
    tok = load_tokenizer(family.name)
    ids = encode_dialog(tok, family.conversation_format.split(":", 1)[1], messages,
                        add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message)
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False), ids, tok
