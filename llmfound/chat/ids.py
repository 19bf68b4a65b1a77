"""The ids path: a conversation as the token ids a model reads, one BOS (the template's), control tokens typed in a
message kept as text; for Meta's ChatFormat (Llama 4) and mistral-common (Tekken), their own encoders. And the
check that the ids spell the text (:func:`text_ids_difference`)."""

from __future__ import annotations

from llmfound.chat.assistant_mask import assistant_mask, check_marks_assistant_tokens
from llmfound.chat.messages import validate_messages
from llmfound.chat.rendering import family_rendering
from llmfound.chat.templates import family_row, resolve, template_and_origin
from llmfound.chat.typed_tokens import encode_keeping_typed_tokens_as_text
from llmfound.errors import ChatOptionsError, TemplateRefusedError, first_line
from llmfound.tokenization import is_mistral_common

__all__ = ["chat_ids", "text_and_ids", "text_ids_difference", "chat_inputs"]


def chat_ids(family, messages: list[dict], *, add_generation_prompt: bool = True,
             continue_final_message: bool = False, tools: list[dict] | None = None, return_dict: bool = False,
             return_assistant_tokens_mask: bool = False, **template_kwargs):
    """Token ids of the rendered conversation: ``encode(render(...), add_special_tokens=False)``, except that a
    control token whose characters a message typed is encoded as text (:mod:`llmfound.chat.typed_tokens`); for a family
    with no Jinja template whose ``conversation_format`` is Meta's ChatFormat (``llama4``), the ids
    :func:`llmfound.meta.chat_format.encode_dialog` builds (``tools`` refused with :class:`ChatOptionsError`).

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
        fam, tok, who = resolve(family)
        if fam is not None and not fam.template and fam.conversation_format and "chat_template" not in template_kwargs:
            raise ChatOptionsError(f"the {who} ids come from Meta's ChatFormat, which marks no assistant tokens; "
                                   f"there is no assistant-token mask to return")
        if is_mistral_common(tok) and "chat_template" not in template_kwargs:
            raise ChatOptionsError(f"the {who} ids come from mistral-common's encoder, which marks no assistant "
                                   f"tokens; there is no assistant-token mask to return")
        template = template_kwargs.get("chat_template")
        check_marks_assistant_tokens(*((template, "chat_template argument") if template else
                                       template_and_origin(fam if fam is not None else tok, tok)), who)
    text, ids, tok, rendering = text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools,
                                              template_kwargs)
    if not return_dict:
        return ids
    out = {"input_ids": ids, "attention_mask": [1] * len(ids)}
    if return_assistant_tokens_mask:
        out["assistant_masks"] = assistant_mask(tok, rendering.text, rendering.messages, rendering.template,
                                                {**rendering.specials, **rendering.kwargs}, ids, rendering.who)
    return out


def text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools, template_kwargs):
    """``(text, ids, tokenizer, the Jinja rendering or None)``: the text path and the ids path of one
    conversation (no Jinja rendering for Meta's ChatFormat and mistral-common's encoder)."""
    fam = family_row(family)
    if fam is not None and not fam.template and fam.conversation_format and "chat_template" not in template_kwargs:
        from llmfound.meta.chat_format import check_roles, text_and_ids  # Llama 4: Meta's ChatFormat, ids first

        check_roles(messages)
        validate_messages(messages, fam.traits.roles, fam.name)
        return (*text_and_ids(fam, messages, add_generation_prompt, continue_final_message, tools, template_kwargs),
                None)
    r, tok = family_rendering(family, messages, add_generation_prompt, continue_final_message, tools,
                     template_kwargs.pop("chat_template", None), template_kwargs, stacklevel=5)
    if not is_mistral_common(tok):
        return r.text, encode_keeping_typed_tokens_as_text(tok, r.text, r.messages, r.again), tok, r
    try:
        enc = tok.apply_chat_template(r.messages, tokenize=True, continue_final_message=continue_final_message,
                                      tools=tools)
    except Exception as e:
        raise TemplateRefusedError(f"mistral-common's chat encoder ({r.who}) refused this conversation: "
                                   f"{first_line(e)}", e) from e
    return r.text, list(enc["input_ids"] if hasattr(enc, "keys") else enc), tok, None


def text_ids_difference(family, messages: list[dict], *, add_generation_prompt: bool = True,
                        continue_final_message: bool = False, tools: list[dict] | None = None,
                        **template_kwargs) -> str | None:
    """None when the ids path spells the text path: ``decode(chat_ids(...))`` (special tokens kept, so the BOS
    the template wrote shows) equals ``render(...)`` after the family's declared normalization
    (``Family.tokens.normalization``: NFC for Qwen, a typed U+2581 read back as a space for sentencepiece); else one
    line saying where they first differ (character index, then both texts around it). Raises what
    :func:`render` raises."""
    from llmfound.tokenization import normalize

    fam = family_row(family)
    text, ids, tok, _ = text_and_ids(family, messages, add_generation_prompt, continue_final_message, tools,
                                      template_kwargs)
    want = normalize(fam.tokens.normalization, text) if fam is not None else text
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
