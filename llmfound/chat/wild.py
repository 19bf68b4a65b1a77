"""Templates in the wild: every chat template a cached registry package ships, through the conformance table.

Source: the ``templates/*.jinja`` files of the ``llama-cpp-vocabs`` asset (PyPI sdist ``llama-cpp-python==0.3.36``,
llama.cpp's ``models/templates``: the model makers' own templates, copied from their Hub repositories). They are
found by listing the cache folder, never by a hand-written list, so the count is whatever the package ships
(70 in 0.3.36).

Each template is rendered only through transformers' sandboxed Jinja (:func:`llmfound.chat.render` with
``chat_template=``), for the conformance conversations (:data:`llmfound.chat.conformance.CASES`) plus
``tool-definition`` (a
user turn with one tool offered). The special-token strings come from :data:`RENDERER`'s tokenizer (Llama 3:
``bos_token`` ``<|begin_of_text|>``); the date is fixed (``date_string`` and a ``strftime_now`` that always
answers for 26 Jul 2024), so no cell depends on today. A cell is ``("ok", text)`` or ``("raises", "<Class>:
message")`` in one line (:mod:`llmfound.chat.explain` names a template that needs ``tools`` or a variable).

:func:`traits` reads what a template does from its renders and its syntax tree (jinja2's own ``meta`` API), not
from its name: see the function. :data:`FAMILY_OF` pairs a wild template with the llmfound family whose own
template it should equal; :func:`family_agreement` checks that.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from datetime import datetime
from pathlib import Path

from llmfound.chat.conformance import CASES, FIXED_TEMPLATE_KWARGS, outcome_of
from llmfound.chat.rendering import render, render_conversation, special_tokens_of
from llmfound.errors import AssetError, ChatTemplateError, InvalidMessagesError, get_by_name

__all__ = ["ASSET", "RENDERER", "WILD_CASES", "FAMILY_OF", "KNOWN_DIFFERENCES", "template_names", "template_source",
           "conform", "wild_table", "traits", "family_agreement", "extra_variables", "TRANSFORMERS_VARIABLES",
           "render_wild", "FIXED_DATE", "markdown_page"]

ASSET = "llama-cpp-vocabs"
RENDERER = "llama3"
"""The family whose tokenizer supplies ``bos_token``, ``eos_token`` and the rest to every wild render."""

_WEATHER_TOOL = CASES["tool-call"][1]["tools"][0]
WILD_CASES: dict[str, tuple[list[dict], dict]] = {
    **CASES,
    "tool-definition": ([{"role": "user", "content": "What is the weather in Paris?"}], {"tools": [_WEATHER_TOOL]}),
}
"""The conformance conversations, plus a user turn with one tool offered (the tool-call case also answers it)."""

FAMILY_OF = {
    "meta-llama-Llama-3.1-8B-Instruct.jinja": "llama3.1",
    "Qwen-Qwen2.5-7B-Instruct.jinja": "qwen2.5",
    "microsoft-Phi-3.5-mini-instruct.jinja": "phi3",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": "mistral-tekken",
    "google-gemma-2-2b-it.jinja": "gemma2",
}
"""Wild template -> the llmfound family whose published template it is (by the file's model name; Hub repos
meta-llama/Llama-3.1-8B-Instruct, Qwen/Qwen2.5-7B-Instruct, microsoft/Phi-3.5-mini-instruct,
mistralai/Mistral-Nemo-Instruct-2407, google/gemma-2-2b-it)."""

TRANSFORMERS_VARIABLES = frozenset({
    "messages", "tools", "documents", "add_generation_prompt", "continue_final_message", "bos_token", "eos_token",
    "unk_token", "pad_token", "sep_token", "cls_token", "mask_token", "additional_special_tokens",
    "raise_exception", "strftime_now", "namespace", "dict", "range", "loop", "true", "false", "none", "True",
    "False", "None", "lipsum", "cycler", "joiner",
})
"""What a template can read without the caller passing it: transformers' ``apply_chat_template`` variables, the
tokenizer's special tokens, the globals transformers' sandbox sets (``raise_exception``, ``strftime_now``,
``namespace``, ``dict``) and Jinja's own."""


FIXED_DATE = datetime(2024, 7, 26)
"""The day every wild render is pinned to: ``date_string`` is passed (templates that read it), and what
transformers' ``strftime_now`` printed for today is read back as this day in the formats the template asks for
(``strftime_now`` is a global of transformers' sandbox, and template keyword arguments cannot replace it: they are
turned into plain data)."""

def _folder() -> Path:
    from llmfound.assets import ensure

    return ensure(ASSET) / "templates"


KNOWN_DIFFERENCES = {
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "tool-call"):
        "llmfound hands the Nemo template a tool result as JSON text (the family row's tool_result_content='json'), "
        "as mistral-common writes it; the template alone pastes it unquoted (ledger "
        "nemo-template-unquoted-tool-result)",
}
"""(wild template, case) -> why the family's render differs from the wild template's, where it does by design."""


def template_names() -> list[str]:
    """File names of every ``.jinja`` template the cached asset ships, sorted: regular files only (a folder or a
    symbolic link with that suffix is not a template the package shipped). Fetches the asset first unless
    ``LLMFOUND_OFFLINE=1`` (then :class:`~llmfound.errors.AssetMissingError`)."""
    return sorted(p.name for p in _folder().glob("*.jinja") if p.is_file() and not p.is_symlink())


@functools.lru_cache(maxsize=256)
def template_source(name: str) -> str:
    """The Jinja text of wild template ``name`` (a file name from :func:`template_names`). Raises
    :class:`~llmfound.errors.UnknownNameError` listing the names for any other, and
    :class:`~llmfound.errors.AssetError` for a file that is not UTF-8 text."""
    path = _folder() / get_by_name(template_names(), name, "wild template", names=lambda n: (n,))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AssetError(f"{path} is not UTF-8 text (byte {e.start}); check the asset: llmfound assets verify "
                         f"{ASSET}") from None


def _tokenizer():
    from llmfound.tokenization import load_tokenizer

    return load_tokenizer(RENDERER)


def _pin_date(source: str, text: str, given: str) -> str:
    """``text`` with today's date, in each format the template passes to ``strftime_now``, read back as
    :data:`FIXED_DATE`, unless that string is also in ``given`` (what the caller passed: then it may be the
    user's own words, and the text is left as rendered)."""
    today = datetime.now()
    for fmt in set(re.findall(r"strftime_now\(\s*['\"]([^'\"]+)['\"]\s*\)", source)):
        if today.strftime(fmt) not in given:
            text = text.replace(today.strftime(fmt), FIXED_DATE.strftime(fmt))
    return text


def render_wild(name: str, messages: list[dict], tokenizer=None, **kw) -> str:
    """Wild template ``name`` rendered for ``messages`` through llmfound's one render path
    (:func:`llmfound.chat.render_conversation`: the same checks, bounds and one-line errors as a family's
    template), with the special-token strings of ``tokenizer`` (default: :data:`RENDERER`'s), ``date_string``
    fixed and the date pinned (:data:`FIXED_DATE`); ``kw`` are ``add_generation_prompt``,
    ``continue_final_message``, ``tools`` and template variables. Tool calls are checked and passed as given (no
    family row says what this template wants). Raises what :func:`llmfound.chat.render_conversation` raises."""
    source = template_source(name)
    options = {k: kw.pop(k) for k in ("add_generation_prompt", "continue_final_message", "tools") if k in kw}
    r = render_conversation(source, copy.deepcopy(messages), who=name, origin=ASSET,
                            specials=special_tokens_of(tokenizer or _tokenizer()),
                            add_generation_prompt=options.get("add_generation_prompt", False),
                            continue_final_message=options.get("continue_final_message", False),
                            tools=options.get("tools"), template_kwargs={**FIXED_TEMPLATE_KWARGS, **kw})
    return _pin_date(source, r.text, json.dumps([messages, {**options, **kw}], ensure_ascii=False, default=str))


def conform(name: str, case: str) -> tuple[str, str]:
    """Render :data:`WILD_CASES` ``case`` with wild template ``name``: :func:`llmfound.chat.conformance.outcome_of`
    the render, as a family's cell is made."""
    messages, kw = WILD_CASES[get_by_name(list(WILD_CASES), case, "conversation", names=lambda c: (c,))]
    return outcome_of(lambda: render_wild(name, messages, **{"add_generation_prompt": True, **kw}))


def wild_table(names: list[str] | None = None) -> dict[str, dict[str, tuple[str, str]]]:
    """``{template: {case: conform(template, case)}}`` for every shipped template (or those named)."""
    return {n: {c: conform(n, c) for c in WILD_CASES} for n in (template_names() if names is None else names)}


def extra_variables(name: str) -> list[str]:
    """Variables template ``name`` reads that transformers never sets (jinja2's ``meta.find_undeclared_variables``,
    minus the names the template assigns itself anywhere (``set``, ``for``, macro arguments), plus the names it
    tests with ``is defined`` (the idiom for a variable with a default), minus :data:`TRANSFORMERS_VARIABLES`),
    sorted: the template keyword arguments it understands, such as
    Llama 3.1's ``date_string`` or Qwen3's ``enable_thinking``. Read once per template text in a process (the
    parse is most of what :func:`traits` costs)."""
    try:
        source = template_source(name)
    except AssetError:
        return []  # a template that cannot be read reads nothing; the table shows its error
    return list(_variables_read(source))


@functools.lru_cache(maxsize=256)
def _variables_read(source: str) -> tuple[str, ...]:
    """:func:`extra_variables` of the template text ``source`` (a tuple: cached, so never changed by a caller)."""
    import jinja2
    from jinja2 import meta, nodes
    from transformers.utils.chat_template_utils import _compile_jinja_template

    try:
        ast = _compile_jinja_template(source).environment.parse(source)  # transformers' sandbox and extensions
    except jinja2.exceptions.TemplateSyntaxError:
        return ()  # a template that cannot be parsed reads nothing; the table shows its error
    own = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}  # set, for, macro arguments
    defaulted = {t.node.name for t in ast.find_all(nodes.Test)
                 if t.name == "defined" and isinstance(t.node, nodes.Name)}
    return tuple(sorted((meta.find_undeclared_variables(ast) - own | defaulted) - TRANSFORMERS_VARIABLES))


_SYS, _USER = "SYSTEMxMARK", "USERxMARK"


def traits(name: str) -> dict:
    """What wild template ``name`` does, read from its renders (Llama 3's special tokens, fixed date):

    - ``needs``: what a user turn needs beyond transformers' defaults to render: ``"tools=[]"`` (it iterates
      ``tools`` and fails on ``None``; the other traits are then read with ``tools=[]``), a variable's name, ""
      when nothing, or ``"fails"`` when a user turn fails for another reason. When a user turn does not render,
      the render traits are None;
    - ``system_role``: ``"refused"`` (a system+user conversation raises), ``"dropped"`` (the system text is not
      in the output), ``"native"`` (between the system text and the user text the output names the user role:
      ``user`` in any case, or ``[INST]``), else ``"folded"`` (pasted into the user turn);
    - ``generation_marker``: what ``add_generation_prompt=True`` writes after a user turn (``""`` when nothing),
      and ``marker_replaces``: what the render without it has there instead (``""``, or ``eos_token``: Phi-3.5
      ends an unprompted conversation with it); both None when the flag changes more than the end;
    - ``writes_bos``: the output starts with ``bos_token``;
    - ``tools``: with one tool offered, ``"renders"`` (its name is in the output), ``"ignores"``, or
      ``"raises"``;
    - ``extra_variables``: :func:`extra_variables`."""
    user = [{"role": "user", "content": _USER}]
    out: dict = {"needs": "", "system_role": None, "generation_marker": None, "marker_replaces": None,
                 "writes_bos": None, "tools": None, "extra_variables": extra_variables(name)}
    base: dict = {}
    try:
        render_wild(name, user, add_generation_prompt=True)
    except (ChatTemplateError, AssetError) as e:
        m = re.search(r"pass (tools=\[\]) or a tool list|reads a variable '(\w+)'", str(e))
        if not m:
            out["needs"] = "fails"  # the template fails a plain user turn: the table shows why
            return out
        out["needs"] = m.group(1) or m.group(2)
        base = {"tools": []} if m.group(1) else base
    try:
        bare = {gen: render_wild(name, user, add_generation_prompt=gen, **base) for gen in (False, True)}
    except ChatTemplateError:
        return out
    tok = _tokenizer()
    for tail in ("", tok.eos_token):  # what the unprompted render may end with instead of the marker
        if bare[False].endswith(tail) and bare[True].startswith(bare[False][:len(bare[False]) - len(tail)]):
            out["generation_marker"] = bare[True][len(bare[False]) - len(tail):]
            out["marker_replaces"] = tail
            break
    out["writes_bos"] = bare[True].startswith(tok.bos_token)
    try:
        both = render_wild(name, [{"role": "system", "content": _SYS}, *user], add_generation_prompt=True, **base)
        between = both[both.find(_SYS) + len(_SYS):both.find(_USER)] if _SYS in both else ""
        out["system_role"] = ("dropped" if _SYS not in both else
                              "native" if re.search(r"user|\[INST\]", between, re.I) else "folded")
    except (ChatTemplateError, InvalidMessagesError):
        out["system_role"] = "refused"
    outcome, text = conform(name, "tool-definition")
    out["tools"] = ("raises" if outcome == "raises" else
                    "renders" if _WEATHER_TOOL["function"]["name"] in text else "ignores")
    return out


def family_agreement(name: str, case: str) -> str | None:
    """None when wild template ``name`` renders conformance ``case`` exactly as its family's own template
    (:data:`FAMILY_OF`), both with the family's tokenizer; else one line: both outcomes, or where the texts first
    differ. Raises ``KeyError`` for a template with no family."""
    from llmfound.tokenization import load_tokenizer

    family = FAMILY_OF[name]
    messages, kw = CASES[case]
    kw = {"add_generation_prompt": True, **kw, **FIXED_TEMPLATE_KWARGS}
    results = []
    for source in (name, None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                if source is None:
                    results.append(("ok", render(family, copy.deepcopy(messages), **kw)))
                else:
                    results.append(("ok", render_wild(name, messages, load_tokenizer(family), **kw)))
        except (ChatTemplateError, InvalidMessagesError) as e:
            results.append(("raises", type(e).__name__))
    (wo, wild), (fo, own) = results
    if (wo, wild) == (fo, own) or wo == fo == "raises":  # both refuse (llmfound may refuse first: its own check)
        return None
    if wo != fo:
        return f"{name} {wo} ({wild[:80]!r}); {family}'s own template {fo} ({own[:80]!r})"
    i = next((k for k, (a, b) in enumerate(zip(wild, own)) if a != b), min(len(wild), len(own)))
    return f"at character {i}: {name} {wild[max(0, i - 20):i + 20]!r}, {family} {own[max(0, i - 20):i + 20]!r}"


def markdown_page(table: dict | None = None, all_traits: dict | None = None) -> str:
    """The generated page ``docs/wild-templates.md``: the conformance table (ok / E<n>, each error once below) and
    the traits table, for every shipped template; ``table`` / ``all_traits`` default to computing them. The page
    names the command that writes it (``llmfound templates --wild --markdown docs/wild-templates.md``)."""
    from llmfound.outputs import error_number, md_cell

    table = table if table is not None else wild_table()
    all_traits = all_traits if all_traits is not None else {n: traits(n) for n in table}
    cases = list(WILD_CASES)
    errors: list[str] = []
    lines = [
        "# Templates in the wild",
        "",
        "Generated by `llmfound templates --wild --markdown docs/wild-templates.md`; do not edit by hand "
        "(`specs/test_wild_templates.py` checks it is current).",
        "",
        f"Every chat template the cached `{ASSET}` asset ships ({len(table)} `.jinja` files from llama.cpp's "
        "`models/templates`, in the PyPI sdist `llama-cpp-python==0.3.36`), rendered through transformers' "
        f"sandboxed Jinja with {RENDERER}'s special-token strings and the date pinned to "
        f"{FIXED_DATE:%d %b %Y}. Code: `llmfound/chat/wild.py`; how to read it: "
        "[chat templates](chat-templates.md#templates-in-the-wild).",
        "",
        "## Conformance: ok, or the error (E<n>, listed below the table)",
        "",
        "| template | " + " | ".join(cases) + " |",
        "|---|" + "---|" * len(cases),
    ]
    for name, row in table.items():
        cells = []
        for case in cases:
            outcome, detail = row[case]
            cells.append("ok" if outcome == "ok" else f"E{error_number(errors, detail)}")
        lines.append(f"| {md_cell(name)} | " + " | ".join(cells) + " |")
    lines += ["", *(f"- E{i}: {md_cell(e, 500)}" for i, e in enumerate(errors, 1)), "", "## Traits", "",
              "Read from what each template does (`wild_templates.traits`): system role (native turn, folded into the "
              "user turn, refused, dropped); what the generation prompt writes after a user turn (and what it "
              "replaces, if anything; \"-\": more than the end changes); whether the text starts with `bos_token`; "
              "tools (a tool offered: rendered, ignored, or the template raises); what a user turn needs beyond "
              "transformers' defaults; the variables it reads that transformers never sets (template keyword "
              "arguments).",
              "", "| template | system | generation marker | BOS | tools | needs | extra variables |",
              "|---|---|---|---|---|---|---|"]
    for name, t in all_traits.items():
        marker = "-" if t["generation_marker"] is None else f"`{t['generation_marker']!r}`" + (
            f" (instead of `{t['marker_replaces']!r}`)" if t["marker_replaces"] else "")
        lines.append("| " + " | ".join(md_cell(str(v)) for v in (
            name, t["system_role"] or "-", marker, {True: "yes", False: "no", None: "-"}[t["writes_bos"]],
            t["tools"] or "-", t["needs"] or "", ", ".join(t["extra_variables"]))) + " |")
    return "\n".join(lines) + "\n"
