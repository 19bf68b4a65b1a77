"""The chat conformance table: fixed conversations x every family with a template -> the rendered text, or the
exact error; and whether the ids path spells the text (the ``text=ids`` column). A template that changes in an
upgrade shows up as a named cell (``llmfound templates --table``, the snapshot's ``templates`` section).
"""

from __future__ import annotations

from typing import Callable

from llmfound.chat.ids import text_ids_difference
from llmfound.chat.rendering import render
from llmfound.errors import AssetError, ChatTemplateError, InvalidMessagesError

__all__ = ["CASES", "FIXED_TEMPLATE_KWARGS", "TEXT_IDS", "case_arguments", "outcome_of", "conform", "agreement",
           "conformance_table"]

_Q = "What is the capital of France?"
_WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

CASES: dict[str, tuple[list[dict], dict]] = {
    "single-user": ([{"role": "user", "content": _Q}], {}),
    "system+user": ([{"role": "system", "content": "You are a concise geography tutor."},
                     {"role": "user", "content": _Q}], {}),
    "three-turns": ([{"role": "user", "content": _Q}, {"role": "assistant", "content": "Paris."},
                     {"role": "user", "content": "And of Italy?"}], {}),
    "continue-final": ([{"role": "user", "content": _Q},
                        {"role": "assistant", "content": "The capital of France is"}],
                       {"add_generation_prompt": False, "continue_final_message": True}),
    "two-users": ([{"role": "user", "content": "Hello."}, {"role": "user", "content": _Q}], {}),
    "empty-content": ([{"role": "user", "content": ""}], {}),
    "unicode": ([{"role": "user", "content": "Ça va? 你好 🙂 naïve — ℕ"}], {}),
    "tool-call": ([{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "tool_calls": [{"type": "function", "id": "call12345", "function": {
                       "name": "get_weather", "arguments": {"city": "Paris"}}}]},
                   {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "22 C, sunny"}],
                  {"tools": [_WEATHER_TOOL]}),
}
"""The fixed conversations of the conformance table: name -> (messages, render keyword arguments).

Rendered with ``add_generation_prompt=True`` unless the case says otherwise; ``date_string`` is passed explicitly
(Llama 3.1's own template already defaults it to the fixed "26 Jul 2024" and never reads the clock, but templates
such as Llama 3.2's read ``strftime_now`` when no date is given), so the table never depends on today's date."""

FIXED_TEMPLATE_KWARGS = {"date_string": "26 Jul 2024"}
"""Passed to every conformance render: templates that print a date read it (others ignore it)."""


TEXT_IDS = "text=ids"
"""The conformance table's last column: whether the ids path spells the text path in every rendered case."""


def case_arguments(case: str) -> tuple[list[dict], dict]:
    """``(messages, render keyword arguments)`` of conformance case ``case``: a fresh copy of its messages, and its
    arguments with the generation prompt on unless the case says otherwise, and :data:`FIXED_TEMPLATE_KWARGS`."""
    import copy

    messages, kw = CASES[case]
    return copy.deepcopy(messages), {"add_generation_prompt": True, **kw, **FIXED_TEMPLATE_KWARGS}


def outcome_of(render: Callable[[], str]) -> tuple[str, str]:
    """What one conformance cell records for a render: ``("ok", text)`` or ``("raises", "<Class>: <message>")``.
    Every conformance table (the families', the templates in the wild) fills its cells through here.

    For a raise, ``<Class>`` is llmfound's error class, followed by the upstream class in brackets when the
    template or transformers raised (e.g. ``TemplateRefusedError[jinja2.exceptions.TemplateError]``), and the
    message is the one line a caller of :func:`llmfound.chat.render` gets: the template's own words where it
    raised, with the cause and what to do where llmfound can tell them (a template that needs a tool list or a
    variable, a bound llmfound enforced, a check it made first)."""
    try:
        return "ok", render()
    except ChatTemplateError as e:
        return "raises", f"{e.label}: {e}"
    except (InvalidMessagesError, AssetError) as e:
        return "raises", f"{type(e).__name__}: {e}"


def conform(family, case: str) -> tuple[str, str]:
    """Render conformance case ``case`` for ``family``: :func:`outcome_of` the render."""
    messages, kw = case_arguments(case)
    return outcome_of(lambda: render(family, messages, **kw))


def agreement(family, case: str) -> str | None:
    """:func:`text_ids_difference` for conformance case ``case``: None when its ids decode to its text, else one
    line saying where they differ. Raises what :func:`render` raises (a case :func:`conform` reports raising)."""
    messages, kw = case_arguments(case)
    return text_ids_difference(family, messages, **kw)


def conformance_table(family_names: list[str] | None = None) -> dict[str, dict[str, tuple[str, str]]]:
    """``{family: {case: conform(family, case), ..., TEXT_IDS: (verdict, detail)}}`` for every family with a
    template (or those named). The :data:`TEXT_IDS` cell is ``("agree", "all <n> rendered cases")`` or
    ``("differs", "<k> of <n> rendered cases; first <case>: <where>")``."""
    from llmfound.families import FAMILIES

    table = {}
    for n in family_names or [f.name for f in FAMILIES if f.template]:
        row = {c: conform(n, c) for c in CASES}
        rendered = [c for c, (outcome, _) in row.items() if outcome == "ok"]
        differ = {c: d for c in rendered if (d := agreement(n, c)) is not None}
        row[TEXT_IDS] = (("differs", f"{len(differ)} of {len(rendered)} rendered cases; first {next(iter(differ))}: "
                                     f"{next(iter(differ.values()))}") if differ else
                         ("agree", f"all {len(rendered)} rendered cases"))
        table[n] = row
    return table
