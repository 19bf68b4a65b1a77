"""Tool calls: an assistant's ``tool_calls`` and the tool results, in the form each family's template expects.

Clients send a call's ``function.arguments`` as an object (transformers' documented form) or as a JSON string
(what OpenAI's API returns). Templates differ, and a wrong form renders without any error: Llama 3.1, Qwen2.5 and
Mistral Nemo write the arguments with ``tojson`` (a string comes out double-encoded,
``"arguments": "{\\"city\\": \\"Paris\\"}"``), DeepSeek's templates paste a string (an object fails: "can only
concatenate str"), Qwen3's take either. ``Family.traits.tool_call_arguments`` records the form (read from each
template);
:func:`normalize` hands the template that form and refuses arguments that are not a JSON object. Mistral Nemo's
template also pastes a tool result's content unquoted into JSON (``Family.traits.tool_result_content="json"``):
:func:`normalize` gives it JSON text, as mistral-common, the reference encoder, does.
"""

from __future__ import annotations

import json
from typing import Any

from llmfound.errors import InvalidMessagesError

__all__ = ["ARGUMENT_FORMS", "MAX_NESTING", "normalize", "check_rendered"]

ARGUMENT_FORMS = ("object", "string", "any")
"""The values of ``Family.traits.tool_call_arguments`` besides None (the template ignores tool calls)."""

MAX_NESTING = 100
"""Most levels of JSON lists and maps in a tool call's arguments or in a tool result read as JSON. Real ones nest
a few levels; a template's ``tojson`` recurses once per level (about 900 levels exhaust Python's stack, and the
error would blame the template), and ``json.loads`` itself stops near 1,000."""


def normalize(messages: list[dict], arguments: str | None = "any", tool_results: str = "text", *,
              who: str = "this", renders_calls: list[str] | None = None) -> list[dict]:
    """``messages`` with every tool call's ``function.arguments`` in the form ``arguments`` names and, for
    ``tool_results="json"``, every tool result's string content as JSON text.

    ``arguments``: ``"object"`` (a JSON string is parsed), ``"string"`` (an object is dumped with
    ``json.dumps(..., ensure_ascii=False)``), ``"any"`` (kept as given), or None (the template ignores
    ``tool_calls``: a message carrying them is refused). ``tool_results="json"``: content that parses as JSON is
    re-serialized (``json.dumps(json.loads(c), ensure_ascii=False)``), any other text becomes a JSON string: the
    exact text mistral-common writes. ``who`` names the family in messages; ``renders_calls``, the families whose
    templates do render tool calls (the remedy offered when ``arguments`` is None).

    Returns a new list; the caller's messages are never changed (an unchanged message is the same object).
    Raises :class:`InvalidMessagesError` naming the message index and tool-call index: ``tool_calls`` not a list,
    a call without a ``function`` dict holding a string ``name``, arguments missing, neither an object nor a
    string, a string that is not JSON or not a JSON object, arguments nesting more than :data:`MAX_NESTING`
    levels; tool calls for a template that ignores them; for ``tool_results="json"``, a tool result that is JSON
    nesting more than :data:`MAX_NESTING` levels (or too deep for ``json.loads`` to tell whether it is JSON)."""
    out = []
    for i, m in enumerate(messages):
        calls = m.get("tool_calls")
        if calls is not None:
            m = {**m, "tool_calls": _calls(i, m, calls, arguments, who, renders_calls)}
        if tool_results == "json" and m.get("role") == "tool" and isinstance(m.get("content"), str):
            m = {**m, "content": _json_text(i, m["content"], who)}
        out.append(m)
    return out


def _calls(i: int, m: dict, calls: Any, form: str | None, who: str, renders: list[str] | None) -> list[dict]:
    where = f"message {i} ({m.get('role')})"
    if not isinstance(calls, list):
        raise InvalidMessagesError(f"{where} tool_calls must be a list of {{'type': 'function', 'function': "
                                   f"{{'name': ..., 'arguments': {{...}}}}}} dicts, got {type(calls).__name__}")
    if form is None and calls:
        raise InvalidMessagesError(
            f"{where} carries tool_calls, which the {who} template does not render (the calls would vanish from "
            f"the prompt); use a family whose template renders tool calls" + (f": {', '.join(renders)}" if renders
                                                                                else ""))
    fixed = []
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidMessagesError(f"{where} tool call {j} must be a dict with 'function': {{'name': str, "
                                       f"'arguments': {{...}}}}, got {call!r:.80}")
        if "arguments" not in fn or fn["arguments"] is None:
            raise InvalidMessagesError(f"{where} tool call {j} ({fn['name']}) has no arguments; pass {{}} for a "
                                       f"call without arguments")
        args = fn["arguments"]
        too_deep = InvalidMessagesError(f"{where} tool call {j} ({fn['name']}) arguments nest too deeply (more "
                                        f"than {MAX_NESTING} levels of lists and objects); pass a flat JSON object "
                                        f"of argument names and values")
        if isinstance(args, str):
            try:
                parsed = json.loads(args)
            except RecursionError:
                raise too_deep from None
            except ValueError as e:
                raise InvalidMessagesError(f"{where} tool call {j} ({fn['name']}) arguments {args!r:.60} are not "
                                           f"JSON ({e}); pass a JSON object, e.g. '{{\"city\": \"Paris\"}}', or a "
                                           f"dict") from None
            if not isinstance(parsed, dict):
                raise InvalidMessagesError(f"{where} tool call {j} ({fn['name']}) arguments {args!r:.60} are JSON "
                                           f"but not an object; pass a JSON object of argument names and values")
            if _too_deep(parsed):
                raise too_deep
            value = parsed if form == "object" else args
        elif isinstance(args, dict):
            if _too_deep(args):
                raise too_deep
            value = json.dumps(args, ensure_ascii=False) if form == "string" else args
        else:
            raise InvalidMessagesError(f"{where} tool call {j} ({fn['name']}) arguments must be a dict or a JSON "
                                       f"string, got {type(args).__name__}")
        fixed.append(call if value is args else {**call, "function": {**fn, "arguments": value}})
    return fixed


def _too_deep(value: Any) -> bool:
    """True when ``value`` nests lists and dicts more than :data:`MAX_NESTING` levels deep (found without
    recursion)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth >= MAX_NESTING:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def _json_text(i: int, content: str, who: str) -> str:
    """A tool result's content as the JSON text mistral-common writes: JSON re-serialized, other text as a JSON
    string. Raises :class:`InvalidMessagesError` naming message ``i`` for JSON nesting more than
    :data:`MAX_NESTING` levels, and for text so deep that ``json.loads`` cannot tell whether it is JSON."""
    try:
        value = json.loads(content)
        deep = _too_deep(value)
    except RecursionError:
        deep = True
    except ValueError:
        return json.dumps(content, ensure_ascii=False)
    if deep:
        raise InvalidMessagesError(f"message {i} (tool) content {content[:20]!r}... nests too deeply (more than "
                                   f"{MAX_NESTING} levels of JSON lists and objects); the {who} template pastes a JSON "
                                   f"tool result as it is: flatten it, or, if it is text, send it as a JSON string "
                                   f"(json.dumps(text))")
    return json.dumps(value, ensure_ascii=False)


def check_rendered(messages: list[dict], text: str, who: str = "this") -> None:
    """Raise :class:`InvalidMessagesError` for the first tool call whose function name appears nowhere in the
    rendered ``text``: the template dropped it (DeepSeek V3's renders calls only when ``content`` is None, which
    transformers' ``apply_chat_template`` removes from a message, so a call with ``content: ""`` vanishes).
    A weak check: a name the text holds for another reason (a tools list) passes."""
    for i, m in enumerate(messages):
        for j, call in enumerate(m.get("tool_calls") or ()):
            name = call["function"]["name"]
            if name not in text:
                raise InvalidMessagesError(f"message {i} ({m.get('role')}) tool call {j} ({name}) is not in the text "
                                           f"the {who} template rendered: it dropped the call; the model would "
                                           f"never see it, so render tool calls with another family's template")
