"""Lesson: an upgrade is judged by what changed, named by family and behaviour.

``llmfound snapshot record`` captures what the installed libraries do (ids, special tokens, template renders,
footprints, greedy answers, pipeline outputs, quantization's accuracy cost); ``compare`` recomputes and lists
each drift. A baseline for the pinned versions ships with llmfound, and the first spec checks this environment
against it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from llmfound import assets, tokenization
from llmfound.upgrade import sections, snapshot, snapshot_format
from llmfound.cli import main
from llmfound.errors import LlmfoundError, SnapshotError


@pytest.fixture(scope="module")
def baseline():
    return snapshot.load(snapshot.BASELINE)


def test_this_environment_matches_the_shipped_baseline(baseline, require_assets, lesson):
    """The upgrade gate itself, on the fast sections (ids, special tokens, template renders)."""
    require_assets(*assets.entry_names())
    unrecorded = [n for n in sections.FAST if n not in baseline["sections"]]
    assert not unrecorded, (f"{snapshot.BASELINE}: expected every FAST section recorded, got none for "
                            f"{', '.join(unrecorded)}: record it with pyproject.toml's pinned versions, `llmfound "
                            f"snapshot record llmfound/upgrade/data/baseline.json --into --sections "
                            f"{','.join(unrecorded)}` (docs/specs.md, 'A snapshot section' step 3)")
    old, new, drifts = snapshot.compare(snapshot.BASELINE, sections.FAST)
    joined = sorted({d.section for d in drifts if d.old is None})
    how = (f"\nnew subjects in {', '.join(joined)} (a family, case or template joined): if intended, re-record "
           f"them with pyproject.toml's pinned versions, `llmfound snapshot record llmfound/upgrade/data/baseline.json "
           f"--into --sections {','.join(joined)}`, and read the diff (docs/specs.md, 'A family' step 5, 'A "
           f"conformance case' step 3)" if joined else "")
    assert drifts == [], "\n".join(f"{d.subject} / {d.section} / {d.behaviour}: {d.old!r} -> {d.new!r}"
                                   for d in drifts[:10]) + how
    lesson.value("drift against the shipped baseline", f"none ({', '.join(sorted(sections.FAST))} sections)")


@pytest.mark.slow
def test_the_model_and_pipeline_sections_match_the_baseline_too(require_assets):
    require_assets(*assets.entry_names())
    _, _, drifts = snapshot.compare(snapshot.BASELINE, ("model", "pipelines", "quality"))
    assert drifts == [], drifts[:5]


def test_a_planted_drift_is_reported_with_its_family_and_behaviour(baseline):
    planted = copy.deepcopy(baseline)
    planted["sections"]["special_tokens"]["qwen2.5"]["eos_id"] = 151643
    planted["sections"]["ids"]["llama3"]["'Hello world'"] = [9906, 1918]
    drifts = snapshot.diff(planted, baseline)
    got = {(d.section, d.subject, d.behaviour, json.dumps(d.old), json.dumps(d.new)) for d in drifts}
    assert got == {
        ("special_tokens", "qwen2.5", "eos_id", "151643", "151645"),
        ("ids", "llama3", "'Hello world'", "[9906, 1918]", "[9906, 1917]"),
    }, got


def test_compare_on_the_cli_exits_1_and_names_the_drift(baseline, tmp_path, capsys, monkeypatch, require_assets):
    """The section is recomputed for real; the ledger's probes are not (they take seconds, and the gate's spec runs
    them for real through this same command in a side environment): the JSON carries whatever they report."""
    import llmfound.upgrade.ledger

    require_assets(*assets.entry_names())
    planted = copy.deepcopy(baseline)
    planted["sections"]["special_tokens"]["gemma2"]["bos_token"] = "<s>"
    snapshot.save(planted, tmp_path / "planted.json")
    entries = [{"id": "still-there", "behaviour": "x drops a space", "seen": "t 1.0", "state": "still broken"}]
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: entries)
    code = main(["snapshot", "compare", str(tmp_path / "planted.json"), "--sections", "special_tokens", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(d["subject"], d["behaviour"], d["old"], d["new"]) for d in out["drift"]] == [
        ("gemma2", "bos_token", "<s>", "<bos>")]
    assert out["ledger"] == entries, f"expected the ledger's states in the JSON, got {out['ledger']}"


def test_a_section_that_vanished_counts_as_drift(baseline):
    now = copy.deepcopy(baseline)
    del now["sections"]["templates"]["gemma3"]
    drifts = snapshot.diff(baseline, now)
    assert drifts and {d.subject for d in drifts} == {"gemma3"} and all(d.new is None for d in drifts)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("content, says", [
    (None, "does not exist; make one with `llmfound snapshot record FILE`"),
    ('{"schema": 1, "sections": {"ids": {"llama3": [1, 2', "is truncated"),
    ("this is not json", "is not valid JSON"),
    ('{"schema": 99, "sections": {}}', "has snapshot schema 99, newer than this llmfound reads (1)"),
    ('[1, 2, 3]', "is JSON but not an llmfound snapshot"),
    ('{"schema": 1, "sections": {}}', "holds no sections (it has: none); nothing to compare"),
    ('{"schema": 1, "sections": {"ids": {"gpt2": "x"}}}', "is damaged: section(s) 'ids' are not"),
    ('{"schema": "1", "sections": {}}', "expected an integer"),
])
def test_a_bad_snapshot_file_gets_one_clear_line(tmp_path, capsys, content, says):
    path = tmp_path / "snap.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LlmfoundError, match=None) as exc:
        snapshot.compare(path)  # every case fails before anything is recomputed
    assert says in str(exc.value), str(exc.value)
    code = main(["snapshot", "compare", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and says in err, (code, err)


def test_compare_in_text_mode_lists_every_ledger_entry_with_its_state(baseline, tmp_path, capsys, monkeypatch):
    """The same ledger `--json` prints: a reader of the text report sees which known breakage is still there."""
    import llmfound.upgrade.ledger

    entries = [{"id": "still-there", "behaviour": "x drops a space", "seen": "t 1.0", "state": "still broken"},
               {"id": "gone-now", "behaviour": "y adds a BOS", "seen": "t 1.0", "state": "fixed: retire it"}]
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: entries)  # the real probes take seconds
    monkeypatch.setattr(snapshot, "compare", lambda path, sections: (baseline, baseline, []))  # the report only
    code = main(["snapshot", "compare", str(tmp_path / "same.json")])
    out = capsys.readouterr().out
    assert code == 0 and "no drift" in out, out
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    for e in entries:
        assert e["id"] in rows and e["state"] in rows[e["id"]], f"expected {e['id']!r} with {e['state']!r}, got:\n{out}"


def test_compare_of_some_sections_sums_the_ledger_up_in_one_line(baseline, tmp_path, capsys, monkeypatch):
    """``--sections ids`` after "no drift" printed all ~80 lines of the ledger table, which is not about those
    sections. Now one line: counts per state, the entries that need a look, and how to see them all."""
    import llmfound.upgrade.ledger

    entries = [{"id": f"entry-{i}", "behaviour": "x drops a space", "seen": "t 1.0", "state": "still broken"}
               for i in range(12)]
    entries += [{"id": "gone-now", "behaviour": "y adds a BOS", "seen": "t 1.0", "state": "fixed: retire it"},
                {"id": "not-here", "behaviour": "z", "seen": "t 1.0", "state": "cannot check: not cached: a"}]
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: entries)
    monkeypatch.setattr(snapshot, "compare", lambda path, sections: (baseline, baseline, []))
    code = main(["snapshot", "compare", str(tmp_path / "same.json"), "--sections", "ids"])
    out = capsys.readouterr().out
    assert code == 0 and "\nno drift\n" in out, out
    rest = " ".join(out.split("\nno drift\n", 1)[1].split())  # one line, however wide the terminal
    assert rest == ("ledger of known upstream breakage: 14 entries: 12 still broken, 1 fixed (gone-now), "
                    "1 cannot check (not-here); every entry: `llmfound snapshot compare` without --sections, "
                    "or `llmfound doctor`"), f"expected the ledger in one line after 'no drift', got:\n{out}"


def test_quality_figures_drift_only_beyond_their_tolerance(baseline):
    """Accuracy figures may move by float rounding across versions (``sections.TOLERANCES``); a real worsening
    of 4-bit quality is drift. Planted: nf4-dq's ΔPPL +0.5 points (within 3: no drift), then +5 points, and
    its top-1 agreement down 3 points (both drift, named by preset and behaviour)."""
    old = {"sections": {"quality": baseline["sections"]["quality"]}}
    nudged, worse = copy.deepcopy(old), copy.deepcopy(old)
    nudged["sections"]["quality"]["nf4-dq"]["delta_ppl_pct"] += 0.5
    worse["sections"]["quality"]["nf4-dq"]["delta_ppl_pct"] += 5
    worse["sections"]["quality"]["nf4-dq"]["top1_pct"] -= 3
    assert snapshot.diff(old, nudged) == [], "a change inside the tolerance is not drift"
    got = sorted((d.subject, d.behaviour) for d in snapshot.diff(old, worse))
    assert got == [("nf4-dq", "delta_ppl_pct"), ("nf4-dq", "top1_pct")], f"expected the two planted drifts, got {got}"


def test_a_family_that_fails_to_load_is_one_drift_and_the_others_are_still_compared(baseline, monkeypatch,
                                                                                     require_assets):
    """transformers 5.0-5.14 cannot load the Tekken tokenizer (docs/changelog.md); that release must still show
    what every other family does, and the Tekken failure as one row."""
    require_assets(*assets.entry_names())

    real = tokenization.load_tokenizer

    def broken_tekken(name, *a, **k):
        if name == "mistral-tekken":
            raise ValueError("planted: cannot load")
        return real(name, *a, **k)

    monkeypatch.setattr(tokenization, "load_tokenizer", broken_tekken)
    new = snapshot.record(("special_tokens",))
    drifts = snapshot.diff({"sections": {"special_tokens": baseline["sections"]["special_tokens"]}}, new)
    got = [(d.subject, d.behaviour, d.old, d.new) for d in drifts]
    expected = [("mistral-tekken", sections.ERROR, "computes", "ValueError: planted: cannot load")]
    assert got == expected, f"planted Tekken load failure: expected {expected}, got {got}"


# ------------------------------------------------------------------------------------ hand-edited baselines


def edited(baseline: dict, section: str, subject: str, behaviour: str, raw: str) -> str:
    """The JSON text of a one-section snapshot whose ``behaviour`` reads as ``raw`` (JSON text written into the
    file as it is: a hand edit, which no json.dumps would write)."""
    snap = {"schema": snapshot.SCHEMA, "versions": baseline["versions"],
            "sections": {section: {subject: dict(baseline["sections"][section][subject], **{behaviour: "@@"})}}}
    return json.dumps(snap).replace('"@@"', raw)


HAND_EDITS = {  # (section, subject, behaviour, raw JSON) -> what the one line says
    "nested 5,000 deep": (("special_tokens", "gpt2", "len", "[" * 5000 + "]" * 5000), "nests too deeply"),
    "nested 40 deep": (("special_tokens", "gpt2", "len", "[" * 40 + "]" * 40),
                       "special_tokens / gpt2 / ... nests more than 32 levels deep"),
    "a 5,000-digit number": (("special_tokens", "gpt2", "len", "1" + "0" * 4999),
                             "special_tokens / gpt2 / len is a number of 5,000 digits"),
    "a 400-digit ppl": (("quality", "nf4", "ppl", "9" * 400), "quality / nf4 / ppl is a number of 400 digits"),
    "ppl Infinity": (("quality", "nf4", "ppl", "Infinity"), "quality / nf4 / ppl is Infinity"),
    "ppl NaN": (("quality", "nf4", "ppl", "NaN"), "quality / nf4 / ppl is NaN"),
    "ppl 1e400": (("quality", "nf4", "ppl", "1e400"), "quality / nf4 / ppl is 1e400"),
    "kld -Infinity": (("quality", "nf4", "kld_mean", "-Infinity"), "quality / nf4 / kld_mean is -Infinity"),
    "ppl as text": (("quality", "nf4", "ppl", '"37.2"'), 'quality / nf4 / ppl is "37.2"; expected a number'),
    "an id as text": (("special_tokens", "gpt2", "eos_id", '"50256"'), "expected a token id or null"),
    "ids not a list": (("ids", "gpt2", "'Hello world'", "15496"), "expected a list of token ids"),
    "a render not a pair": (("templates", "smollm2", "single-user", '"ok"'), "expected a render"),
}


@pytest.mark.parametrize("case", HAND_EDITS)
def test_a_hand_edited_baseline_is_refused_whole_before_anything_is_computed(case, baseline, tmp_path, capsys,
                                                                            monkeypatch):
    """Field report (issue 25): hand-edited baselines crashed ``snapshot compare`` and the gate with
    tracebacks (RecursionError, Python's 4,300-digit limit, OverflowError after 145 s of quality work), and an
    ``Infinity`` perplexity matched every value, so drift was never reported. The whole file is checked when it
    is read (``snapshot.load``, which both use): one line naming where, exit 2, and nothing recomputed."""
    (section, subject, behaviour, raw), says = HAND_EDITS[case]
    path = tmp_path / "edited.json"
    path.write_text(edited(baseline, section, subject, behaviour, raw))

    def computed(*a, **k):
        raise AssertionError(f"{case}: the baseline was recomputed before it was checked")

    monkeypatch.setattr(snapshot, "record", computed)
    with pytest.raises(SnapshotError) as e:
        snapshot.compare(path)
    assert says in str(e.value), f"{case}: expected {says!r} in {str(e.value)!r}"
    for argv in (["snapshot", "compare", str(path)], ["gate", "transformers==5.24.0", "--baseline", str(path)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and says in err, (
            f"{case}, llmfound {argv[0]}: expected exit 2 and one line with {says!r}, got {code}: {err[:600]!r}")


def test_other_damage_a_hand_can_do_is_one_line_too(baseline, tmp_path):
    for snap, says in [
        ({"schema": 1, "sections": {"idz": {}}}, "section(s) 'idz' are not ones llmfound records"),
        ({"schema": 1, "versions": {"torch": "2.13.0\n"}, "sections": {}}, "versions / torch is \"2.13.0\\n\""),
        ({"schema": 1, "versions": [], "sections": {}}, "'versions' is not a map"),
    ]:
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(snap))
        with pytest.raises(SnapshotError) as e:
            snapshot.load(path)
        assert says in str(e.value), f"{snap}: expected {says!r} in {str(e.value)!r}"
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(snapshot_format.MAX_BYTES + 1)
    with pytest.raises(SnapshotError, match="more than a snapshot holds"):
        snapshot.load(big)


def test_every_recorded_section_has_its_kinds_and_the_shipped_baseline_fits_them(baseline):
    assert set(snapshot_format.KINDS) == set(sections.SECTIONS), (
        f"snapshot_format.KINDS names {sorted(snapshot_format.KINDS)}; sections.SECTIONS {sorted(sections.SECTIONS)}")
    assert snapshot_format.problem(baseline, sections.ERROR) is None


GATE_PAGE = Path(__file__).resolve().parent.parent / "docs" / "upgrade-gate.md"
SNAPSHOT_HEADING = "## snapshot: record behaviour, compare another environment"


def test_every_section_is_named_where_the_gate_page_says_what_a_snapshot_records():
    """A reader learns from docs/upgrade-gate.md what the gate compares: every ``sections.SECTIONS`` name appears
    there in backquotes, in the part under ``SNAPSHOT_HEADING``."""
    text = GATE_PAGE.read_text(encoding="utf-8")
    assert SNAPSHOT_HEADING in text, f"docs/upgrade-gate.md: expected the heading {SNAPSHOT_HEADING!r}, got none"
    part = text.split(SNAPSHOT_HEADING, 1)[1].split("\n## ", 1)[0]
    missing = [name for name in sections.SECTIONS if f"`{name}`" not in part]
    assert not missing, (f"docs/upgrade-gate.md, {SNAPSHOT_HEADING[3:]!r}: expected every snapshot section named as "
                         f"`name`, got none for {missing}; add a line saying what it records (docs/specs.md, "
                         f"'A snapshot section' step 4)")


@pytest.mark.parametrize("old, new", [
    (float("inf"), 28.984), (float("inf"), float("inf")), (float("nan"), float("nan")), (28.984, float("nan")),
    (9 ** 400, 28.984)])
def test_a_number_that_is_no_measurement_is_never_equal_to_anything(old, new):
    """``inf`` is within 1 % of anything (``abs(x - inf) <= 0.01 * inf``), and ``inf == inf``: a baseline
    perplexity of Infinity let every candidate pass. Non-finite numbers are drift, even against themselves; a
    number too large for a float is compared exactly, without OverflowError."""
    assert not sections.within_tolerance("quality", "ppl", old, new), (old, new)
    a, b = ({"sections": {"quality": {"nf4": {"ppl": v}, "fp4": {"cosines": [v]}}}} for v in (old, new))
    got = sorted((d.subject, d.behaviour) for d in snapshot.diff(a, b))
    assert got == [("fp4", "cosines"), ("nf4", "ppl")], f"ppl {old!r} against {new!r}: expected drift, got {got}"


def test_text_from_the_baseline_is_shown_as_written_not_as_rich_markup(baseline, tmp_path, capsys, monkeypatch):
    """A version recorded as "[bold]5.23[/bold]" printed as "5.23"; one ending in "[/x]" crashed the report with
    rich's MarkupError; a file named "[v2]base.json" was shown as "base.json"."""
    import llmfound.upgrade.ledger

    versions = dict(baseline["versions"], transformers="[bold]5.23[/bold]", tokenizers="0.23[/x]")
    path = tmp_path / "[v2]base.json"
    path.write_text(json.dumps({"schema": 1, "versions": versions, "sections": {}}))
    assert snapshot.load(path)["versions"] == versions, "a version string is text: any text loads"
    monkeypatch.setattr(llmfound.upgrade.ledger, "ledger_states", lambda: [])  # the real probes take seconds
    monkeypatch.setattr(snapshot, "compare", lambda p, sections: (snapshot.load(p), baseline, []))
    code = main(["snapshot", "compare", str(path)])
    out = capsys.readouterr().out
    for shown in (f"compared {path}", "transformers [bold]5.23[/bold] -> 5.23.0", "tokenizers 0.23[/x] -> 0.23.3"):
        assert shown in out, f"expected {shown!r} as written, got:\n{out}"
    assert code == 0


def test_record_into_replaces_only_the_named_sections_of_a_baseline(baseline, tmp_path, capsys, require_assets):
    """How a baseline is re-recorded when a subject joins a section: ``record FILE --into --sections S``
    recomputes S here and keeps every other section of FILE as it was."""
    require_assets(*assets.entry_names())
    planted = copy.deepcopy(baseline)
    planted["sections"]["special_tokens"]["gemma2"]["bos_token"] = "<s>"   # will be recomputed
    planted["sections"]["templates"]["gemma3"] = {"single-user": ["ok", "kept as it was"]}  # must be kept
    path = tmp_path / "baseline.json"
    snapshot.save(planted, path)
    assert main(["snapshot", "record", str(path), "--into", "--sections", "special_tokens"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("re-recorded special_tokens, kept 6 other sections, "), (
        f"record --into --sections special_tokens: expected it to say what it re-recorded and kept, got {said!r}")
    after = snapshot.load(path)
    assert after["sections"]["special_tokens"] == baseline["sections"]["special_tokens"], (
        "special_tokens: expected the recomputed section (equal to the shipped baseline's)")
    assert after["sections"]["templates"]["gemma3"] == {"single-user": ["ok", "kept as it was"]}, (
        "templates: expected the file's own section, untouched")
    assert set(after["sections"]) == set(baseline["sections"])


@pytest.mark.parametrize("args, says", [
    (["--into"], "add --sections"),
    (["--into", "--sections", "ids", "--other-versions"], "recorded with other versions"),
])
def test_record_into_refuses_what_would_mix_two_environments(args, says, baseline, tmp_path, capsys):
    path = tmp_path / "baseline.json"
    other = copy.deepcopy(baseline)
    if "--other-versions" in args:
        args = [a for a in args if a != "--other-versions"]
        other["versions"]["transformers"] = "0.0.1"
    snapshot.save(other, path)
    before = path.read_bytes()
    assert main(["snapshot", "record", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, f"{args}: expected one line saying {says!r}, got {err!r}"
    assert path.read_bytes() == before, f"{args}: the file changed although the request was refused"
