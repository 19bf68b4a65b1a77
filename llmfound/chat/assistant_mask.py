"""Assistant-token masks: which tokens of a rendered conversation are the assistant's, for training on them only.

A chat template marks them by wrapping each assistant turn in ``{% generation %}`` ... ``{% endgeneration %}``;
transformers' ``render_jinja_template(..., return_assistant_tokens_mask=True)`` then reports those character
spans, and a token is the assistant's when it overlaps one (as ``apply_chat_template(..., return_dict=True,
return_assistant_tokens_mask=True)`` computes its ``assistant_masks``). A template without such a block marks
nothing: transformers returns an all-zero mask, which trains on nothing; llmfound says so instead.
"""

from __future__ import annotations

import re

from llmfound.errors import ChatOptionsError

__all__ = ["GENERATION_TAG", "check_marks_assistant_tokens", "assistant_mask"]

GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")
"""A ``{% generation %}`` block opening: how a chat template marks the tokens that are the assistant's."""


def check_marks_assistant_tokens(template: str, origin: str, who: str) -> None:
    """Raise :class:`ChatOptionsError` unless ``template`` (Jinja text, from ``origin``, for ``who``) has a
    ``{% generation %}`` block."""
    if not GENERATION_TAG.search(template):
        raise ChatOptionsError(f"the {who} chat template ({origin}) marks no assistant tokens (it has no "
                               f"{{% generation %}} block), so there is no assistant-token mask: transformers would "
                               f"return all zeros; pass chat_template= a template whose assistant turns are wrapped "
                               f"in {{% generation %}} ... {{% endgeneration %}}")


def assistant_mask(tokenizer, text: str, messages: list[dict], template: str, kwargs: dict, ids: list[int],
                   who: str) -> list[int]:
    """``[seq]`` of 0/1 for ``ids`` (the ids of ``text``, rendered from ``messages`` by ``template`` with
    ``kwargs``): 1 for each token inside a ``{% generation %}`` block. Raises :class:`ChatOptionsError` when the
    ids are not the tokenizer's plain encoding of ``text`` (a message typed a control token, which llmfound keeps
    as text) or the template renders differently a second time."""
    from transformers.utils.chat_template_utils import render_jinja_template

    specials = {k: v for k, v in (getattr(tokenizer, "special_tokens_map", None) or {}).items() if isinstance(v, str)}
    rendered, spans = render_jinja_template(conversations=[messages], chat_template=template,
                                            return_assistant_tokens_mask=True, **{**specials, **kwargs})
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if rendered[0] != text or list(enc["input_ids"]) != list(ids):
        raise ChatOptionsError(f"an assistant-token mask for the {who} template cannot be computed for this "
                               f"conversation (a message types a control token, or the template renders differently "
                               f"a second time); remove control-token text from the messages")
    return [int(any(a < e and b > s for s, e in spans[0])) for a, b in enc["offset_mapping"]]
