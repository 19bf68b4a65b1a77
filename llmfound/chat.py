"""Chat templates: turn a list of messages into the exact text (and ids) a chat model was trained on.

``tokenizer.apply_chat_template(messages, tokenize=False)`` renders the family's Jinja template through
transformers' sandboxed environment (``ImmutableSandboxedEnvironment``); llmfound never renders templates
any other way. The ids path encodes the rendered text with ``add_special_tokens=False``: the template
already wrote BOS where the family wants it, and letting ``encode`` add another gives the double-BOS hazard.
"""

from __future__ import annotations

from typing import Any

from .errors import LlmfoundError

ROLES = ("system", "user", "assistant", "tool")


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


def validate_messages(messages: Any, roles: tuple[str, ...] = ROLES) -> list[dict]:
    """Check the shape of a conversation before rendering; returns it unchanged.

    Raises :class:`LlmfoundError` naming the index of the first bad message: not a list, a message that is
    not a dict, a missing/unknown role, content that is neither a string nor a list of parts (tool calls
    may carry ``tool_calls`` without content)."""
    if not isinstance(messages, list):
        raise LlmfoundError(f"messages must be a list of {{role, content}} dicts, got {type(messages).__name__}")
    if not messages:
        raise LlmfoundError("messages is empty; give at least one {role, content} message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise LlmfoundError(f"message {i} must be a dict with role and content, got {type(m).__name__}")
        if "role" not in m:
            raise LlmfoundError(f"message {i} has no 'role'; use one of: {', '.join(roles)}")
        if m["role"] not in roles:
            raise LlmfoundError(f"message {i} has unknown role {m['role']!r}; use one of: {', '.join(roles)}")
        if "content" not in m and not m.get("tool_calls"):
            raise LlmfoundError(f"message {i} ({m['role']}) has no 'content'")
        c = m.get("content")
        if c is not None and not isinstance(c, (str, list)):
            raise LlmfoundError(f"message {i} ({m['role']}) content must be a string or a list of parts, "
                                f"got {type(c).__name__}")
    return messages


def render(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True, **template_kwargs) -> str:
    """The rendered chat text (sandboxed Jinja via ``apply_chat_template(tokenize=False)``).

    Raises :class:`LlmfoundError` when the tokenizer has no chat template (no fallback format is invented)."""
    validate_messages(messages)
    if not getattr(tokenizer, "chat_template", None):
        raise LlmfoundError(f"{type(tokenizer).__name__} has no chat template; this family ships none, so "
                            f"there is no correct chat format to render")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **template_kwargs)


def chat_inputs(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True, **template_kwargs):
    """``{"input_ids": LongTensor[1, seq], "attention_mask": LongTensor[1, seq]}`` for ``generate``.

    Encodes :func:`render`'s text with ``add_special_tokens=False`` (no second BOS)."""
    text = render(tokenizer, messages, add_generation_prompt=add_generation_prompt, **template_kwargs)
    return dict(tokenizer(text, add_special_tokens=False, return_tensors="pt"))
