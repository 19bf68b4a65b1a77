"""Where a chat template comes from: the family table's ``template`` column (the tokenizer files, a separate
official ``.jinja`` file, or none: llmfound never invents a chat format), or a loaded tokenizer's own."""

from __future__ import annotations

import functools
from pathlib import Path

from llmfound.errors import NoChatTemplateError

__all__ = ["family_row", "template_path", "template_source", "template_and_origin", "resolve"]


def family_row(ref):
    """The family row ``ref`` names (a name or a :class:`~llmfound.families.Family`), or None for a tokenizer.
    Raises :class:`~llmfound.errors.UnknownNameError` for an unknown name."""
    from llmfound.families import Family, get_family

    if isinstance(ref, Family):
        return ref
    if isinstance(ref, str):
        return get_family(ref)
    return None


def template_path(family) -> Path | None:
    """The file a family's template is read from when it is a separate ``"<asset>:<path>"`` (else None).

    Raises what :func:`llmfound.assets.ensure` raises (offline and not cached)."""
    fam = family_row(family)
    if fam is None or not fam.template or ":" not in fam.template:
        return None
    from llmfound.assets import ensure

    asset, rel = fam.template.split(":", 1)
    return ensure(asset) / rel


def template_source(family, tokenizer=None) -> str:
    """The Jinja text of the family's chat template (from the tokenizer files or the separate official file).

    Raises :class:`NoChatTemplateError` when the family's row says ``template=None`` or the tokenizer holds
    none."""
    return template_and_origin(family, tokenizer)[0]


@functools.lru_cache(maxsize=64)
def _read_template(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def template_and_origin(family, tokenizer=None) -> tuple[str, str]:
    """``(template text, where it came from)`` for a family or a tokenizer; the separate file is located and read
    once per process. Raises :class:`~llmfound.errors.NoChatTemplateError` where there is none."""
    fam = family_row(family)
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
        from llmfound.tokenization import load_tokenizer

        tokenizer = load_tokenizer(fam.name) if fam is not None else family
    t = getattr(tokenizer, "chat_template", None)
    if isinstance(t, dict):  # named templates: use "default"
        t = t.get("default")
    if not t:
        who = f"family {fam.name!r}" if fam is not None else type(tokenizer).__name__
        raise NoChatTemplateError(f"{who} has no chat template; there is no correct chat format to render "
                                  f"(pass chat_template=... if you have the model's official one)")
    return t, "tokenizer files"


def resolve(ref):
    """``(family row or None, tokenizer, display name)`` for a family name, row or a loaded tokenizer (whose own
    ``chat_template`` is then used)."""
    fam = family_row(ref)
    if fam is not None:
        from llmfound.tokenization import load_tokenizer

        return fam, load_tokenizer(fam.name), fam.name
    return None, ref, type(ref).__name__


