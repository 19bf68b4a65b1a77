"""Chat templates: turn a list of messages into the exact text (and ids) a chat model was trained on.

The package: :mod:`~llmfound.chat.messages` (what a conversation must be), :mod:`~llmfound.chat.templates` (where a
template comes from), :mod:`~llmfound.chat.rendering` (the one render path, its checks and bounds),
:mod:`~llmfound.chat.explain` (a failure in one line), :mod:`~llmfound.chat.tool_calls` and
:mod:`~llmfound.chat.content_parts` (what messages may carry), :mod:`~llmfound.chat.ids` (the ids path),
:mod:`~llmfound.chat.typed_tokens` (control tokens typed in a message stay text),
:mod:`~llmfound.chat.assistant_mask` (which tokens are the assistant's), :mod:`~llmfound.chat.conformance` (the
families' conformance table), :mod:`~llmfound.chat.wild` (every template the packages ship).

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
inside a message stay text (:mod:`llmfound.chat.typed_tokens`): only the template's own are control ids. For
Mistral it is mistral-common's encoder; :func:`text_ids_difference` checks that the ids decode to the text (the
conformance table's ``text=ids`` column).
"""


from llmfound.chat.ids import chat_ids, chat_inputs, text_ids_difference
from llmfound.chat.messages import ROLES, closes_final_message, conversation, validate_messages
from llmfound.chat.rendering import Rendering, render, render_conversation
from llmfound.chat.templates import template_path, template_source

__all__ = ["ROLES", "conversation", "validate_messages", "closes_final_message", "template_path", "template_source",
           "render", "render_conversation", "Rendering", "chat_ids", "chat_inputs", "text_ids_difference"]
