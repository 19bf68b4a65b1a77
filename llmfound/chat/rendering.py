"""The one render path: every chat template llmfound renders (a family's, a model folder's own, one passed as
``chat_template=``, the templates in the wild) goes through :func:`render_conversation`, so each gets the same
checks, the same bounds on time and size, the same tool-call handling and the same one-line explanation of a
failure. Rendering happens only in transformers' sandboxed Jinja (``render_jinja_template``, as
``apply_chat_template(tokenize=False)`` does it)."""

from __future__ import annotations

import signal
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llmfound.chat.content_parts import check_parts_rendered
from llmfound.chat.explain import explain
from llmfound.chat.messages import ROLES, closes_final_message, validate_messages
from llmfound.chat.templates import family_row, resolve, template_and_origin
from llmfound.chat.tool_calls import check_rendered as check_calls_rendered, normalize as normalize_tool_calls
from llmfound.chat.typed_tokens import message_strings
from llmfound.errors import ChatOptionsError, LlmfoundError, TemplateRefusedError
from llmfound.tokenization import is_mistral_common

__all__ = ["render", "Rendering", "RENDER_SECONDS", "MAX_TEXT", "special_tokens_of", "render_raw",
           "render_conversation", "family_rendering"]


def render(family, messages: list[dict], *, add_generation_prompt: bool = True,
           continue_final_message: bool = False, tools: list[dict] | None = None,
           chat_template: str | None = None, **template_kwargs) -> str:
    """The rendered chat text for ``messages`` with the family's own template.

    ``family`` is a family name (``"llama3"``), a :class:`~llmfound.families.Family` row, or a loaded
    tokenizer (its own ``chat_template`` is used). ``add_generation_prompt`` appends the assistant header
    (``Family.traits.generation_marker``); ``continue_final_message`` leaves a final assistant message open so the
    model continues it; ``tools`` is a list of JSON schemas for templates that support tools;
    ``chat_template`` overrides the template text; any other keyword argument reaches the template as a
    variable (e.g. ``date_string="26 Jul 2024"`` for Llama 3.1, ``enable_thinking=False`` for Qwen3). Unknown
    names are NOT rejected - that is how transformers' ``apply_chat_template`` works: extra keyword arguments
    are passed to the template, and a template silently ignores a variable it never reads (so a misspelt
    ``enable_thinkng=False`` changes nothing; check the rendered text). A final assistant message with
    ``add_generation_prompt=True`` is closed and followed by a new assistant turn: a ``UserWarning`` says to pass
    ``continue_final_message=True`` (with ``add_generation_prompt=False``) to continue it instead.

    Tool calls reach the template in the form it expects (``Family.traits.tool_call_arguments``: a JSON-string
    ``arguments`` is parsed for templates that ``tojson`` it, never double-encoded; see
    :mod:`llmfound.chat.tool_calls`);
    the caller's messages are not changed.

    Content parts (``content=[{"type": "text", "text": ...}, ...]``) are text only and rendered only where the
    template handles them (e.g. Gemma 3): where it would print the Python list (Llama 3, Gemma 2), drop the text
    (Qwen3) or fail on the list (Qwen2.5, Mistral Tekken), :class:`InvalidMessagesError` names the message and
    says to pass the content as a string (see :mod:`llmfound.chat.content_parts`).

    Rendering goes only through transformers' sandboxed Jinja (see module doc). Raises
    :class:`InvalidMessagesError` (bad messages, naming the index), :class:`NoChatTemplateError`,
    :class:`ChatTemplateSyntaxError`, :class:`TemplateSecurityError`, :class:`TemplateRefusedError` (the
    template raised, e.g. Gemma 2's "System role not supported"), :class:`ChatOptionsError` (both
    ``add_generation_prompt`` and ``continue_final_message``); all are :class:`LlmfoundError`."""
    return family_rendering(family, messages, add_generation_prompt, continue_final_message, tools, chat_template,
                   template_kwargs)[0].text


@dataclass
class Rendering:
    """One render, as :func:`render_conversation` made it: ``text``; ``messages`` as the template got them
    (validated, tool calls in the template's form); ``template`` (Jinja text) and ``origin`` (where it came from);
    ``who`` (the family, tokenizer or template named in messages); ``specials`` (the special-token strings the
    template saw) and ``kwargs`` (every other variable it saw)."""

    text: str
    messages: list[dict]
    template: str
    origin: str
    who: str
    specials: dict
    kwargs: dict

    def again(self, messages: list[dict]) -> str:
        """Render other messages with the same template and variables (bounded as the first render was)."""
        return render_raw(self.template, messages, self.specials, self.kwargs, self.who)


RENDER_SECONDS = 10.0
"""The longest one render may take (wall clock) before llmfound stops it: a template is code from a model folder
or a package, and one that loops would hang the caller. The ones llmfound ships take milliseconds."""
MAX_TEXT = 1_000_000
"""The most characters a render may write beyond the text its messages carry (a long prompt is the context
limit's business, :mod:`llmfound.context`); the templates llmfound ships write at most a few thousand."""


@contextmanager
def _time_limit(seconds: float, who: str):
    """Stop the block after ``seconds`` with :class:`TemplateRefusedError` (SIGALRM: only in the main thread of
    a process that can have it; elsewhere the block runs unlimited)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise TemplateRefusedError(f"the chat template of {who} did not finish in {seconds:g} s (a loop that does "
                                   f"not end?); llmfound stopped it")

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def special_tokens_of(tokenizer) -> dict:
    """The special-token strings a template sees for ``tokenizer``: its ``special_tokens_map``, as transformers'
    ``apply_chat_template`` passes it; for mistral-common's backend, which has none, its bos/eos/unk/pad tokens."""
    if is_mistral_common(tokenizer):
        found = {k: getattr(tokenizer, k, None) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        return {k: v for k, v in found.items() if isinstance(v, str)}
    return dict(getattr(tokenizer, "special_tokens_map", None) or {})


def render_raw(template: str, messages: list[dict], specials: dict, kwargs: dict, who: str) -> str:
    """``template`` rendered for ``messages`` in transformers' sandboxed Jinja (``render_jinja_template``) as
    ``apply_chat_template(tokenize=False)`` does it (keys whose value is None dropped from each message; the
    special-token strings, then ``kwargs``, as variables), within :data:`RENDER_SECONDS` and :data:`MAX_TEXT`
    characters beyond the messages' own.
    Raises :class:`TemplateRefusedError` past either bound, and whatever the template raised."""
    from transformers.utils.chat_template_utils import render_jinja_template

    conversation = [{k: v for k, v in m.items() if v is not None} for m in messages]
    with _time_limit(RENDER_SECONDS, who):
        text = render_jinja_template([conversation], chat_template=template, **{**specials, **kwargs})[0][0]
    given = sum(len(t) for _, _, t in message_strings(messages))
    if len(text) - given > MAX_TEXT:
        raise TemplateRefusedError(f"the chat template of {who} wrote {len(text):,} characters for this "
                                   f"conversation, {len(text) - given:,} beyond the messages' own (more than "
                                   f"{MAX_TEXT:,}); llmfound does not keep it")
    return text


def render_conversation(template: str, messages: list[dict], *, who: str, origin: str, specials: dict,
                        roles: tuple[str, ...] = ROLES, family=None, add_generation_prompt: bool = True,
                        continue_final_message: bool = False, tools: list[dict] | None = None,
                        template_kwargs: dict | None = None, stacklevel: int = 3) -> Rendering:
    """The one render path: every chat template llmfound renders (a family's, a model folder's, one passed as
    ``chat_template=``, the templates in the wild) goes through here, with the same checks, bounds and
    explanations. In order:

    1. ``add_generation_prompt`` with ``continue_final_message`` is refused (:class:`ChatOptionsError`); so are
       ``tools`` that are not a list of JSON-schema dicts;
    2. the messages are checked (:func:`validate_messages`, with ``roles``) and tool calls are put in the form the
       template wants (``family``'s row says which; without a row they are only checked:
       :mod:`llmfound.chat.tool_calls`);
       a final assistant message closed by a generation prompt warns (``UserWarning``);
    3. content parts are checked to survive the template (:mod:`llmfound.chat.content_parts`);
    4. the template renders (:func:`render_raw`: sandboxed, at most :data:`RENDER_SECONDS` and :data:`MAX_TEXT`);
       a failure becomes one line (:func:`llmfound.chat.explain.explain`, which may render once more with
       ``tools=[]`` to say a template needs a tool list);
    5. a tool call the template dropped is refused (:class:`InvalidMessagesError`).

    Returns a :class:`Rendering`. The caller's messages are not changed."""
    if add_generation_prompt and continue_final_message:
        raise ChatOptionsError("add_generation_prompt and continue_final_message cannot be used together: the first "
                               "opens a new assistant turn, the second leaves the last message open for the model "
                               "to continue; to continue a prefilled answer pass add_generation_prompt=False")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise ChatOptionsError(f"tools must be a list of JSON-schema dicts (or None), got {type(tools).__name__}")
    validate_messages(messages, roles, who if family is not None else "")
    if family is not None:
        from llmfound.families import FAMILIES

        traits = family.traits
        messages = normalize_tool_calls(messages, traits.tool_call_arguments, traits.tool_result_content, who=who,
                                        renders_calls=[f.name for f in FAMILIES if f.traits.tool_call_arguments])
    else:  # a template without a family row: its expected forms are unknown, so arguments are only checked
        messages = normalize_tool_calls(messages, who=who)
    if closes_final_message(messages, add_generation_prompt, continue_final_message):
        warnings.warn(f"the last message is the assistant's and add_generation_prompt=True: the {who} template "
                      f"closes it and opens a second assistant turn; to let the model continue it, pass "
                      f"continue_final_message=True and add_generation_prompt=False", UserWarning, stacklevel)
    kwargs = dict(add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message,
                  tools=tools, **(template_kwargs or {}))
    if any(isinstance(m.get("content"), list) for m in messages):
        check_parts_rendered(lambda msgs: render_raw(template, msgs, specials, kwargs, who), messages, who)
    try:
        text = render_raw(template, messages, specials, kwargs, who)
    except (ImportError, LlmfoundError):
        raise
    except Exception as e:  # jinja2 errors, and ValueError/TypeError raised while the template runs
        def renders_with_empty_tools() -> bool:
            try:
                render_raw(template, messages, specials, dict(kwargs, tools=[]), who)
                return True
            except Exception:  # noqa: BLE001 - any failure means "not this way"; the first error is reported
                return False

        raise explain(e, who, origin, None if tools is not None else renders_with_empty_tools) from e
    check_calls_rendered(messages, text, who)
    return Rendering(text, messages, template, origin, who, specials, kwargs)


def family_rendering(family, messages, add_generation_prompt, continue_final_message, tools, chat_template,
            template_kwargs, stacklevel: int = 4) -> tuple[Rendering, Any]:
    """:func:`render`'s work for a family, a tokenizer or ``chat_template``: ``(the Rendering, the tokenizer)``;
    ``stacklevel`` points a warning at the caller's line."""
    if add_generation_prompt and continue_final_message:  # before any tokenizer or template is read
        raise ChatOptionsError("add_generation_prompt and continue_final_message cannot be used together: the first "
                               "opens a new assistant turn, the second leaves the last message open for the model "
                               "to continue; to continue a prefilled answer pass add_generation_prompt=False")
    row = family_row(family)
    if chat_template is None and row is not None and not row.template:
        template_and_origin(row)  # raises NoChatTemplateError: refused before the tokenizer loads, not after
    fam, tok, who = resolve(family)
    if chat_template is None:
        chat_template, origin = template_and_origin(fam if fam is not None else tok, tok)
    else:
        origin = "chat_template argument"
    r = render_conversation(chat_template, messages, who=who, origin=origin, specials=special_tokens_of(tok),
                            roles=fam.traits.roles if fam is not None else ROLES, family=fam,
                            add_generation_prompt=add_generation_prompt,
                            continue_final_message=continue_final_message, tools=tools,
                            template_kwargs=template_kwargs, stacklevel=stacklevel)
    return r, tok


