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
:class:`TemplateSecurityError`; one that does not parse raises :class:`ChatTemplateSyntaxError` naming the line.

The ids path encodes the rendered text with ``add_special_tokens=False``: the template already wrote BOS
where the family wants it, and letting ``encode`` add another gives the double-BOS hazard. Control tokens typed
inside a message stay text (:mod:`llmfound.typed_tokens`): only the template's own are control ids. For Mistral it is
mistral-common's encoder; :func:`text_ids_difference` checks that the ids decode to the text (the conformance
table's ``text=ids`` column).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (  # noqa: F401 (the chat errors are importable from here, where they are raised)
    ChatOptionsError, ChatTemplateError, ChatTemplateSyntaxError, InvalidMessagesError, LlmfoundError,
    NoChatTemplateError, TemplateRefusedError, TemplateSecurityError, first_line,
)
from .assistant_mask import assistant_mask, check_marks_assistant_tokens
from .content_parts import check_parts, check_parts_rendered, first_non_utf8
from .template_errors import explain
from .tokenization import is_mistral_common
from .tool_calls import check_rendered as check_calls_rendered, normalize as normalize_tool_calls
from .typed_tokens import encode_keeping_typed_tokens_as_text

__all__ = ["ROLES", "conversation", "validate_messages", "closes_final_message", "template_path", "template_source",
    "render", "chat_ids", "chat_inputs", "text_ids_difference", "ChatTemplateError", "ChatTemplateSyntaxError",
    "InvalidMessagesError", "NoChatTemplateError", "TemplateRefusedError", "TemplateSecurityError",
    "ChatOptionsError"]

ROLES = ("system", "user", "assistant", "tool")


# ------------------------------------------------------------------------------------------- conversations


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

    ``roles`` is the set the family's template handles (``Family.template_roles``); ``who`` names the family
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
        if fam.conversation_format:
            raise NoChatTemplateError(f"family {fam.name!r} ships no Jinja chat template ({fam.title}: no registry "
                                      f"package carries one); its conversation format is Meta's ChatFormat, as "
                                      f"ids: chat.chat_ids(...) or `llmfound template --family {fam.name} --ids`")
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
    ``enable_thinkng=False`` changes nothing; check the rendered text). A final assistant message with
    ``add_generation_prompt=True`` is closed and followed by a new assistant turn: a ``UserWarning`` says to pass
    ``continue_final_message=True`` (with ``add_generation_prompt=False``) to continue it instead.

    Tool calls reach the template in the form it expects (``Family.tool_call_arguments``: a JSON-string
    ``arguments`` is parsed for templates that ``tojson`` it, never double-encoded; see :mod:`llmfound.tool_calls`);
    the caller's messages are not changed.

    Content parts (``content=[{"type": "text", "text": ...}, ...]``) are text only and rendered only where the
    template handles them (e.g. Gemma 3): where it would print the Python list (Llama 3, Gemma 2), drop the text
    (Qwen3) or fail on the list (Qwen2.5, Mistral Tekken), :class:`InvalidMessagesError` names the message and
    says to pass the content as a string (see :mod:`llmfound.content_parts`).

    Rendering goes only through transformers' sandboxed Jinja (see module doc). Raises
    :class:`InvalidMessagesError` (bad messages, naming the index), :class:`NoChatTemplateError`,
    :class:`ChatTemplateSyntaxError`, :class:`TemplateSecurityError`, :class:`TemplateRefusedError` (the
    template raised, e.g. Gemma 2's "System role not supported"), :class:`ChatOptionsError` (both
    ``add_generation_prompt`` and ``continue_final_message``); all are :class:`LlmfoundError`."""
    return _render(family, messages, add_generation_prompt, continue_final_message, tools, chat_template,
                   template_kwargs).text


@dataclass
class _Rendering:
    """One render: the text, the messages as the template got them, the tokenizer, the display name, the template
    text and where it came from, and the keyword arguments it was rendered with."""

    text: str
    messages: list[dict]
    tokenizer: Any
    who: str
    template: str
    origin: str
    kwargs: dict

    def again(self, messages: list[dict]) -> str:
        """Render other messages with the same template and arguments."""
        return _render_raw(self.tokenizer, messages, self.template, self.kwargs)


def _render(family, messages, add_generation_prompt, continue_final_message, tools, chat_template,
            template_kwargs, stacklevel: int = 3) -> _Rendering:
    """:func:`render`'s work, with what the ids path needs beside the text."""
    if add_generation_prompt and continue_final_message:
        raise ChatOptionsError("add_generation_prompt and continue_final_message cannot be used together: the first "
                               "opens a new assistant turn, the second leaves the last message open for the model "
                               "to continue; to continue a prefilled answer pass add_generation_prompt=False")
    fam, tok, who = _resolve(family)
    roles = fam.template_roles if fam is not None else ROLES
    validate_messages(messages, roles, who if fam is not None else "")
    if fam is not None:
        from .families import FAMILIES

        messages = normalize_tool_calls(messages, fam.tool_call_arguments, fam.tool_result_content, who=who,
                                        renders_calls=[f.name for f in FAMILIES if f.tool_call_arguments])
    else:  # a bare tokenizer's template: its expected forms are unknown, so arguments are only checked
        messages = normalize_tool_calls(messages, who=who)
    if closes_final_message(messages, add_generation_prompt, continue_final_message):
        warnings.warn(f"the last message is the assistant's and add_generation_prompt=True: the {who} template "
                      f"closes it and opens a second assistant turn; to let the model continue it, pass "
                      f"continue_final_message=True and add_generation_prompt=False", UserWarning, stacklevel)
    if chat_template is None:
        chat_template, origin = _template_and_origin(fam if fam is not None else tok, tok)
    else:
        origin = "chat_template argument"
    kwargs = dict(add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message,
                  tools=tools, **template_kwargs)
    if any(isinstance(m.get("content"), list) for m in messages):
        check_parts_rendered(lambda msgs: _render_raw(tok, msgs, chat_template, kwargs), messages, who)
    try:
        text = _render_raw(tok, messages, chat_template, kwargs)
    except (ImportError, LlmfoundError):
        raise
    except Exception as e:  # jinja2 errors, and ValueError/TypeError raised while the template runs
        retry = None if tools is not None else (lambda: _renders(tok, messages, chat_template,
                                                                    dict(kwargs, tools=[])))
        raise explain(e, who, origin, retry) from e
    check_calls_rendered(messages, text, who)
    return _Rendering(text, messages, tok, who, chat_template, origin, kwargs)


def _renders(tok, messages: list[dict], chat_template: str, kwargs: dict) -> bool:
    """True when the template renders with these arguments (the check behind a diagnosis, never a result)."""
    try:
        _render_raw(tok, messages, chat_template, kwargs)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not this way"; the caller reports the first error
        return False


def _render_raw(tok, messages: list[dict], chat_template: str, kwargs: dict) -> str:
    if is_mistral_common(tok):  # its apply_chat_template ignores Jinja: render with the same sandbox
        from transformers.utils.chat_template_utils import render_jinja_template

        specials = {k: getattr(tok, k, None) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        rendered, _ = render_jinja_template([messages], chat_template=chat_template,
                                            **{k: v for k, v in specials.items() if v is not None}, **kwargs)
        return rendered[0]
    return tok.apply_chat_template(messages, tokenize=False, chat_template=chat_template, **kwargs)


def chat_ids(family, messages: list[dict], *, add_generation_prompt: bool = True,
             continue_final_message: bool = False, tools: list[dict] | None = None, return_dict: bool = False,
             return_assistant_tokens_mask: bool = False, **template_kwargs):
    """Token ids of the rendered conversation: ``encode(render(...), add_special_tokens=False)``, except that a
    control token whose characters a message typed is encoded as text (:mod:`llmfound.typed_tokens`); for a family
    with no Jinja template whose ``conversation_format`` is Meta's ChatFormat (``llama4``), the ids
    :func:`llmfound.meta_chat.encode_dialog` builds (``tools`` refused with :class:`ChatOptionsError`).

    Never adds a second BOS: the template decides where BOS goes. For ``MistralCommonBackend`` (Tekken), whose
    ``encode`` treats control tokens such as ``[INST]`` as plain text, the ids come from mistral-common's
    reference chat encoder (``apply_chat_template(tokenize=True)``), which does not take Jinja templates; it gets
    the messages as the template got them. :func:`text_ids_difference` checks that both paths agree.

    Returns ``list[int]`` (``seq`` ids); with ``return_dict=True``, as transformers' ``apply_chat_template`` does,
    ``{"input_ids": [seq], "attention_mask": [seq]}`` plus, with ``return_assistant_tokens_mask=True``,
    ``"assistant_masks"``: 1 for each token the template marks as the assistant's (inside a
    ``{% generation %}`` block: what a trainer computes the loss on), else 0. Raises what :func:`render` raises,
    and :class:`ChatOptionsError` for a mask asked without ``return_dict=True`` or with
    ``continue_final_message``, or from a template that marks no assistant tokens (no ``{% generation %}``
    block: transformers would return an all-zero mask, which trains on nothing)."""
    if return_assistant_tokens_mask and not return_dict:
        raise ChatOptionsError("return_assistant_tokens_mask=True returns the mask beside the ids, in a dict: pass "
                               "return_dict=True too")
    if return_assistant_tokens_mask and continue_final_message:
        raise ChatOptionsError("an assistant-token mask marks whole assistant turns; continue_final_message leaves "
                               "the last one open: drop one of the two")
    if return_assistant_tokens_mask:
        fam, tok, who = _resolve(family)
        if fam is not None and not fam.template and fam.conversation_format and "chat_template" not in template_kwargs:
            raise ChatOptionsError(f"the {who} ids come from Meta's ChatFormat, which marks no assistant tokens; "
                                   f"there is no assistant-token mask to return")
        if is_mistral_common(tok) and "chat_template" not in template_kwargs:
            raise ChatOptionsError(f"the {who} ids come from mistral-common's encoder, which marks no assistant "
                                   f"tokens; there is no assistant-token mask to return")
        template = template_kwargs.get("chat_template")
        check_marks_assistant_tokens(*((template, "chat_template argument") if template else
                                       _template_and_origin(fam if fam is not None else tok, tok)), who)
    text, ids, tok, rendering = _text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools,
                                              template_kwargs)
    if not return_dict:
        return ids
    out = {"input_ids": ids, "attention_mask": [1] * len(ids)}
    if return_assistant_tokens_mask:
        out["assistant_masks"] = assistant_mask(rendering.tokenizer, rendering.text, rendering.messages,
                                                rendering.template, rendering.kwargs, ids, rendering.who)
    return out


def _text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools, template_kwargs):
    """``(text, ids, tokenizer, the Jinja rendering or None)``: the text path and the ids path of one
    conversation (no Jinja rendering for Meta's ChatFormat and mistral-common's encoder)."""
    fam = _family(family)
    if fam is not None and not fam.template and fam.conversation_format and "chat_template" not in template_kwargs:
        from .meta_chat import check_roles, text_and_ids  # Llama 4: Meta's ChatFormat, ids first

        check_roles(messages)
        validate_messages(messages, fam.template_roles, fam.name)
        return (*text_and_ids(fam, messages, add_generation_prompt, continue_final_message, tools, template_kwargs),
                None)
    r = _render(family, messages, add_generation_prompt, continue_final_message, tools,
                template_kwargs.pop("chat_template", None), template_kwargs, stacklevel=4)
    if not is_mistral_common(r.tokenizer):
        return r.text, encode_keeping_typed_tokens_as_text(r.tokenizer, r.text, r.messages, r.again), r.tokenizer, r
    try:
        enc = r.tokenizer.apply_chat_template(r.messages, tokenize=True, continue_final_message=continue_final_message,
                                              tools=tools)
    except Exception as e:
        raise TemplateRefusedError(f"mistral-common's chat encoder ({r.who}) refused this conversation: "
                                   f"{first_line(e)}", e) from e
    return r.text, list(enc["input_ids"] if hasattr(enc, "keys") else enc), r.tokenizer, None


def text_ids_difference(family, messages: list[dict], *, add_generation_prompt: bool = True,
                        continue_final_message: bool = False, tools: list[dict] | None = None,
                        **template_kwargs) -> str | None:
    """None when the ids path spells the text path: ``decode(chat_ids(...))`` (special tokens kept, so the BOS
    the template wrote shows) equals ``render(...)`` after the family's declared normalization
    (``Family.normalization``: NFC for Qwen, a typed U+2581 read back as a space for sentencepiece); else one
    line saying where they first differ (character index, then both texts around it). Raises what
    :func:`render` raises."""
    from .tokenization import normalize

    fam = _family(family)
    text, ids, tok, _ = _text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools,
                                      template_kwargs)
    want = normalize(fam.normalization, text) if fam is not None else text
    got = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if got == want:
        return None
    i = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return f"at character {i}: text {want[max(0, i - 12):i + 12]!r}, ids decode to {got[max(0, i - 12):i + 12]!r}"


def chat_inputs(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True, **template_kwargs):
    """``{"input_ids": LongTensor[1, seq], "attention_mask": LongTensor[1, seq]}`` for ``generate``.

    ``tokenizer`` is a loaded tokenizer or a family name. Uses :func:`chat_ids` (no second BOS)."""
    import torch

    ids = chat_ids(tokenizer, messages, add_generation_prompt=add_generation_prompt, **template_kwargs)
    t = torch.tensor([ids], dtype=torch.long)
    return {"input_ids": t, "attention_mask": torch.ones_like(t)}
