"""Lesson: the chat templates model makers publish, run as transformers runs them, fail in ways a user meets.

The llama.cpp sources in the cache (``llama-cpp-vocabs``) ship the model makers' own templates: Qwen, gpt-oss,
Gemma, DeepSeek, Kimi, GLM, Granite, Phi, Mistral, Hermes, Command R... (``llmfound/chat/wild.py`` finds them
by listing the folder). Each is rendered through transformers' sandboxed Jinja for the conformance conversations
plus a tool-definition one; a cell is the text or one line saying why not. Most render everything. The rest
teach what breaks in practice: tool-use templates that iterate ``tools`` and crash on transformers' ``tools=None``,
a template reading a variable nobody passes (firefunction's ``functions``), templates that need a ``content``
beside ``tool_calls``, Kimi K2 calling ``list.append`` (which transformers' immutable sandbox forbids), Gemma 2
refusing a system turn. None reaches Python internals. Where a wild template is a family's own, both render the
same text, except where a family row documents why not. The page ``docs/wild-templates.md`` is generated from
all this and must be current.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmfound.upgrade import snapshot
from llmfound.chat import rendering
from llmfound.chat import wild as W
from llmfound.errors import TemplateRefusedError
from llmfound.families import get_family

ROOT = Path(__file__).resolve().parents[1]
NEEDS = (W.ASSET, *get_family(W.RENDERER).sources)
"""The cache entries every wild render reads: the templates and the renderer family's tokenizer."""


def _names() -> list[str]:
    """The shipped templates, found by listing the cached asset (none when it is not cached)."""
    from llmfound import assets

    folder = assets.entry_dir(W.ASSET) / "templates"
    return sorted(p.name for p in folder.glob("*.jinja")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def baseline():
    return snapshot.load(snapshot.BASELINE)["sections"].get("wild_templates", {})


@pytest.mark.parametrize("case", list(W.WILD_CASES))
@pytest.mark.parametrize("template", _names())
def test_every_cell_renders_or_says_why_in_one_line_as_recorded(template, case, baseline, require_assets, lesson):
    """A cell renders (and the text holds what the conversation said) or fails in one line that is not the
    sandbox stopping an attack; and it is what the shipped baseline recorded (a jinja2 or transformers upgrade
    that changes it is drift: ``llmfound snapshot compare`` / ``llmfound gate`` report it too)."""
    require_assets(*NEEDS)
    outcome, detail = W.conform(template, case)
    where = f"{template}, conversation {case!r}"
    assert not detail.startswith("TemplateSecurityError"), f"{where}: the sandbox stopped it: {detail}"
    if outcome == "ok":
        messages, _ = W.WILD_CASES[case]
        said = [m["content"] for m in messages if isinstance(m.get("content"), str) and m["content"]
                and m["role"] in ("user", "system")]
        missing = [t for t in said if t not in detail]
        assert not missing, f"{where}: expected the text to hold {missing}, got {detail[:300]!r}"
        lesson.count("wild template cells render", f"{template}/{case}")
    else:
        assert "\n" not in detail, f"{where}: expected a one-line error, got {detail!r}"
        lesson.count("wild template cells fail in one line", f"{template}/{case}")
    recorded = baseline.get(template, {}).get(case)
    assert recorded is None or [outcome, detail] == recorded, (
        f"{where}: drift from the shipped baseline: expected {recorded[0]} {recorded[1][:200]!r}, got {outcome} "
        f"{detail[:200]!r} (intended? re-record: llmfound snapshot record FILE --sections wild_templates)")


def test_the_baseline_covers_every_shipped_template(baseline, require_assets):
    require_assets(W.ASSET)
    assert sorted(baseline) == _names(), (f"baseline wild_templates: expected {len(_names())} templates, got "
                                          f"{len(baseline)}; missing {sorted(set(_names()) - set(baseline))[:5]}")


FAMILY_TRAITS = {"native": "native", "folded-first-user": "folded", "folded-last-user": "folded",
                 "rejected": "refused"}
"""The family table's system-role words -> the wild traits' (which cannot tell first from last user turn)."""


@pytest.mark.parametrize("template", list(W.FAMILY_OF))
def test_a_family_s_wild_template_has_the_traits_its_row_declares(template, require_assets):
    require_assets(*NEEDS)
    fam, got = get_family(W.FAMILY_OF[template]), W.traits(template)
    expected = {"system_role": FAMILY_TRAITS[fam.traits.system_role], "generation_marker": fam.traits.generation_marker,
                "writes_bos": fam.traits.writes_bos}
    actual = {k: got[k] for k in expected}
    assert actual == expected, f"{template} (family {fam.name}): expected {expected}, got {actual}"


@pytest.mark.parametrize("case", [c for c in W.CASES])
@pytest.mark.parametrize("template", list(W.FAMILY_OF))
def test_a_family_s_wild_template_renders_as_the_family_does(template, case, require_assets):
    """Rendered with the family's own tokenizer, the wild file and the family's template give the same text
    (or both refuse); a difference must be a documented one (``KNOWN_DIFFERENCES``), and that one must still
    differ."""
    fam = get_family(W.FAMILY_OF[template])
    require_assets(W.ASSET, *fam.sources)
    got = W.family_agreement(template, case)
    why = W.KNOWN_DIFFERENCES.get((template, case))
    if why:
        assert got is not None, f"{template} / {fam.name}, {case!r}: documented as differing ({why}), but they agree"
    else:
        assert got is None, f"{template} / {fam.name}, conversation {case!r}: expected the same text, got {got}"


@pytest.mark.parametrize("template,trait,expected", [
    ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "needs", "tools=[]"),
    ("CohereForAI-c4ai-command-r-plus-tool_use.jinja", "needs", "tools=[]"),
    ("fireworks-ai-llama-3-firefunction-v2.jinja", "needs", "functions"),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "extra_variables", ["builtin_tools", "custom_tools", "date_string",
                                                                    "tools_in_user_message"]),
    ("Qwen-Qwen3-0.6B.jinja", "extra_variables", ["enable_thinking"]),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "marker_replaces", "<|end_of_text|>"),
    ("HuggingFaceTB-SmolLM3-3B.jinja", "tools", "ignores"),
    ("google-gemma-2-2b-it.jinja", "system_role", "refused"),
])
def test_traits_are_read_from_what_the_template_does(template, trait, expected, require_assets):
    """Spot checks against each template's own text (a reader can open the file): the Hermes / Command R+
    tool-use templates loop over ``tools``; firefunction reads ``functions``; Llama 3.1 tests ``date_string is
    defined`` and friends; Qwen3 reads ``enable_thinking``; Phi-3.5 ends an unprompted conversation with
    ``eos_token`` (Llama 3's ``<|end_of_text|>`` here); SmolLM3's file, as llama.cpp ships it, never mentions
    tools; Gemma 2 raises "System role not supported"."""
    require_assets(*NEEDS)
    got = W.traits(template)[trait]
    assert got == expected, f"{template}: trait {trait!r}: expected {expected!r}, got {got!r}"


def test_a_template_that_changes_a_list_in_place_is_named_not_called_an_attack(require_assets):
    """Kimi K2's template ``append``s to a list while writing tool calls; transformers' immutable sandbox
    refuses that. It is not an attempt on Python internals, and the line says what it is."""
    require_assets(*NEEDS)
    outcome, detail = W.conform("Kimi-K2-Instruct.jinja", "tool-call")
    assert outcome == "raises" and "changes a list in place" in detail and "immutable sandbox" in detail, detail


def test_a_missing_content_field_is_named(require_assets):
    require_assets(*NEEDS)
    outcome, detail = W.conform("Qwen-Qwen3-0.6B.jinja", "tool-call")
    assert outcome == "raises" and "reads a field 'content' that a message" in detail, detail


def test_the_count_comes_from_the_folder_and_a_broken_file_is_one_line(tmp_path, monkeypatch, capsys,
                                                                        require_assets):
    """Two shipped templates plus three bad files in a folder of their own: one that does not parse, one that
    loops without end, one that is not UTF-8. The command counts five (a folder and a symbolic link named
    ``.jinja`` are not templates), and each bad file is its own one-line error: the loop is stopped after
    ``RENDER_SECONDS``, nothing crashes the table, and ``--traits`` marks them "fails"."""
    from llmfound import assets, cli

    require_assets(*NEEDS)
    src = assets.entry_dir(W.ASSET) / "templates"
    for n in ("Qwen-Qwen2.5-7B-Instruct.jinja", "google-gemma-2-2b-it.jinja"):
        shutil.copyfile(src / n, tmp_path / n)
    (tmp_path / "broken.jinja").write_text("{% for m in messages %}{{ m.content }\n", encoding="utf-8")
    (tmp_path / "loop.jinja").write_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                                         "{% endfor %}", encoding="utf-8")
    (tmp_path / "latin1.jinja").write_bytes("{{ 'caf\u00e9' }}".encode("latin-1"))
    (tmp_path / "dir.jinja").mkdir()
    (tmp_path / "link.jinja").symlink_to("/etc/hostname")
    monkeypatch.setattr(W, "_folder", lambda: tmp_path)
    monkeypatch.setattr(rendering, "RENDER_SECONDS", 0.25)  # the loop burns it in each of its 10 renders
    W.template_source.cache_clear()
    try:
        code = cli.main(["templates", "--wild"])
        out = capsys.readouterr().out
        traits = {n: W.traits(n)["needs"] for n in ("broken.jinja", "loop.jinja", "latin1.jinja")}
    finally:
        W.template_source.cache_clear()
    assert code == 0 and "5 templates shipped by" in out, out[:400]
    for expected in ("ChatTemplateSyntaxError", "broken.jinja (llama-cpp-vocabs) does not parse: line 1",
                     "loop.jinja did not finish in 0.25 s", "latin1.jinja is not UTF-8 text"):
        flat = "".join(out.split())  # the table wraps long lines (and paths) wherever the terminal width says
        assert "".join(expected.split()) in flat, f"expected {expected!r} in the table, got {out[-1500:]}"
    assert traits == {"broken.jinja": "fails", "loop.jinja": "fails", "latin1.jinja": "fails"}, traits


def test_a_render_longer_than_the_limit_is_refused(monkeypatch, require_assets):
    require_assets(*NEEDS)
    monkeypatch.setattr(rendering, "MAX_TEXT", 50)
    outcome, detail = W.conform("Qwen-Qwen2.5-7B-Instruct.jinja", "single-user")
    assert outcome == "raises" and "beyond the messages' own (more than 50)" in detail, detail


def test_a_wild_template_gets_the_family_paths_checks(require_assets):
    """One render path: the checks a family's template had and the wild path lacked hold here too: both prompt
    options at once are refused, a content part a template would print as a Python list is refused, and a
    generation prompt after a prefilled answer warns."""
    from llmfound.errors import ChatOptionsError, InvalidMessagesError

    require_assets(*NEEDS)
    name = "meta-llama-Llama-3.1-8B-Instruct.jinja"
    prefill = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "The capital of France is"}]
    with pytest.raises(ChatOptionsError, match="cannot be used together"):
        W.render_wild(name, prefill, add_generation_prompt=True, continue_final_message=True)
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    with pytest.raises(InvalidMessagesError, match="message 0 .*content"):
        W.render_wild(name, parts, add_generation_prompt=True)
    with pytest.warns(UserWarning, match="closes it and opens a second assistant turn"):
        W.render_wild(name, prefill, add_generation_prompt=True)


def test_the_pinned_date_never_rewrites_what_the_user_wrote(require_assets):
    """Mistral Small 3.2 prints strftime_now('%Y-%m-%d'); that becomes 2024-07-26, but a user who writes today's
    date keeps it."""
    from datetime import datetime

    require_assets(*NEEDS)
    today = datetime.now().strftime("%Y-%m-%d")
    name = "Mistral-Small-3.2-24B-Instruct-2506.jinja"
    plain = W.render_wild(name, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    mine = W.render_wild(name, [{"role": "user", "content": f"What happened on {today}?"}], add_generation_prompt=True)
    assert "2024-07-26" in plain and today not in plain, plain[:300]
    assert f"What happened on {today}?" in mine, mine[-300:]


@pytest.mark.parametrize("argv,expected", [
    (["templates", "--traits"], "--traits and --markdown go with --wild"),
    (["templates", "--wild", "--markdown", "llmfound/upgrade/data/baseline.json"], "name a file ending in .md"),
    (["templates", "--wild", "--table"], "--table and --wide are for the family templates"),
])
def test_wild_options_that_do_not_fit_are_one_line(argv, expected, capsys):
    from llmfound import cli

    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1, f"{argv}: exit {code}, {err!r}"


def test_api_edges(require_assets):
    from llmfound.errors import UnknownNameError

    require_assets(*NEEDS)
    assert W.wild_table([]) == {}
    with pytest.raises(UnknownNameError, match="known conversations: single-user"):
        W.conform("Qwen-Qwen2.5-7B-Instruct.jinja", "nope")
    with pytest.raises(UnknownNameError):
        W.template_source("../../etc/passwd")


def test_the_tools_none_and_undefined_variable_errors_are_one_line_each(require_assets):
    require_assets(*NEEDS)
    for template, expected in (("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "pass tools=[] or a tool list"),
                               ("fireworks-ai-llama-3-firefunction-v2.jinja", "pass it as a template keyword "
                                                                              "argument: render(..., functions=...)")):
        with pytest.raises(TemplateRefusedError) as e:
            W.render_wild(template, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
        assert expected in str(e.value) and "\n" not in str(e.value), f"{template}: got {e.value}"


def test_the_generated_page_is_current(require_assets):
    """docs/wild-templates.md is written by ``llmfound templates --wild --markdown docs/wild-templates.md``."""
    require_assets(*NEEDS, *(s for f in W.FAMILY_OF.values() for s in get_family(f).sources))
    page = (ROOT / "docs" / "wild-templates.md").read_text(encoding="utf-8")
    fresh = W.markdown_page()
    i = next((k for k, (a, b) in enumerate(zip(page, fresh)) if a != b), min(len(page), len(fresh)))
    assert page == fresh, (f"docs/wild-templates.md is stale at character {i}: page {page[i - 40:i + 60]!r}, now "
                           f"{fresh[i - 40:i + 60]!r}; regenerate: llmfound templates --wild --markdown "
                           f"docs/wild-templates.md")
