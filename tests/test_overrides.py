"""Analyst overrides (models/overrides.py): the file's validation, what each action does to a
month's decisions, when an override is in force, the frozen amount, and the audit table."""

from __future__ import annotations

import textwrap
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_policy_properties import PROPERTY_SETTINGS

from data_contracts import load_published_contracts
from data_contracts.expectations import check_published_frame
from models.overrides import (
    Overrides,
    OverridesFileError,
    apply_overrides,
    frozen_amounts_before_start,
    load_overrides,
    override_changes,
    record_override_changes,
)
from models.supplier_decisions import SCORE_SCHEMA

T = date(2025, 6, 30)
AUDIT_TABLE = "published.override_audit"


def _entry(**fields) -> dict:
    entry = dict(id="OV-1", supplier_id="S1", action="cap", amount_usd=20_000, reason="under review",
                 author="ana", start=date(2025, 6, 1), expiry=date(2025, 9, 1))
    entry.update(fields)
    return {k: v for k, v in entry.items() if v is not ...}


def _write(tmp_path, text: str):
    path = tmp_path / "overrides.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- the file

VALID_FILE = """\
    overrides:
      - id: OV-1
        supplier_id: S1
        action: cap
        amount_usd: 20000
        reason: chargebacks under investigation
        author: ana
        start: 2025-06-01
        expiry: 2025-09-01
    """

INVALID_ENTRIES = [
    # a cap without its figure
    (_entry(amount_usd=None), "override #1 (id 'OV-1'): a cap needs amount_usd"),
    # an exclusion sets 0 itself: a stated amount is a mistake
    (_entry(action="exclude"), "override #1 (id 'OV-1'): an exclusion sets the amount to 0: remove amount_usd"),
    # an override that ends before it starts
    (_entry(expiry=date(2025, 5, 1)), "expiry 2025-05-01 must be after start 2025-06-01"),
    # an action we do not know
    (_entry(action="ban"), "override #1 (id 'OV-1'), action: Input should be 'freeze', 'cap' or 'exclude'"),
    # no author: every override says who decided it
    (_entry(author=...), "override #1 (id 'OV-1'), author: missing"),
    # an empty reason is no reason
    (_entry(reason="  "), "override #1 (id 'OV-1'), reason: String should have at least 1 character"),
    # a negative cap
    (_entry(amount_usd=-5), "amount_usd: Input should be greater than or equal to 0"),
    # a typo in a key is refused, not ignored
    (_entry(expires=date(2025, 9, 1)), "override #1 (id 'OV-1'), expires: unknown key; allowed: id, supplier_id"),
    # a month, not a date
    (_entry(start="2025-06"), "override #1 (id 'OV-1'), start: Input should be a valid date"),
    # a time of day has no meaning for a month-end decision
    (_entry(start=datetime(2025, 6, 1, 12, 0)), "start: expected a date YYYY-MM-DD without a time"),
    # an id with a space cannot be named in a log line
    (_entry(id="OV 1"), "override #1 (id 'OV 1'), id: String should match pattern"),
]


@pytest.mark.parametrize("entry, message", INVALID_ENTRIES)
def test_an_invalid_entry_is_one_line_naming_the_entry_and_the_fix(entry, message):
    with pytest.raises(OverridesFileError) as error:
        Overrides.from_entries([entry])
    assert message in str(error.value)
    assert "\n" not in str(error.value)


INVALID_SETS = [
    # the same id twice: the audit could not tell them apart
    ([_entry(), _entry(supplier_id="S2")], "override id 'OV-1' appears twice"),
    # two overrides for one supplier in force at once: which one wins is not ours to guess
    ([_entry(), _entry(id="OV-2", action="exclude", amount_usd=None, start=date(2025, 8, 1), expiry=date(2025, 12, 1))],
     "overrides 'OV-1' and 'OV-2' both apply to supplier 'S1' from 2025-08-01: one override per supplier at a time"),
]


@pytest.mark.parametrize("entries, message", INVALID_SETS)
def test_conflicting_overrides_are_refused(entries, message):
    with pytest.raises(OverridesFileError, match=message):
        Overrides.from_entries(entries)


def test_one_supplier_may_have_overrides_one_after_the_other():
    # the second starts the day the first expires: never both in force
    overrides = Overrides.from_entries([
        _entry(), _entry(id="OV-2", action="exclude", amount_usd=None, start=date(2025, 9, 1), expiry=date(2026, 1, 1))])
    assert [e.id for e in overrides.in_force(date(2025, 8, 31))] == ["OV-1"]
    assert [e.id for e in overrides.in_force(date(2025, 9, 30))] == ["OV-2"]


BAD_FILES = [
    # YAML that does not parse
    ("overrides: [\n", "not valid YAML"),
    # a bare list: the file holds a mapping with the key 'overrides'
    ("- id: OV-1\n", "expected a mapping with the key 'overrides'"),
    # another top-level key
    ("overides: []\n", "unknown top-level key 'overides'"),
    # the list is not a list
    ("overrides: 3\n", "overrides: Input should be a valid list"),
    # several problems: the first, and how many more
    ("overrides:\n  - {id: A}\n", "override #1 (id 'A'), supplier_id: missing: every override needs id"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_an_unusable_file_names_itself_in_one_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(OverridesFileError) as error:
        load_overrides(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_or_empty_file_means_no_overrides_unless_it_was_named(tmp_path):
    assert load_overrides(tmp_path / "absent.yaml").entries == ()
    assert load_overrides(_write(tmp_path, "")).entries == ()
    with pytest.raises(OverridesFileError, match="no such overrides file"):
        load_overrides(tmp_path / "absent.yaml", required=True)


def test_the_version_follows_content_not_formatting(tmp_path):
    one = load_overrides(_write(tmp_path, VALID_FILE))
    reformatted = tmp_path / "other.yaml"
    reformatted.write_text("# a comment\noverrides:\n  - {expiry: 2025-09-01, start: 2025-06-01, author: ana, "
                           "reason: chargebacks under investigation, amount_usd: 20000.0, action: cap, supplier_id: S1, id: OV-1}\n")
    assert load_overrides(reformatted).version == one.version
    assert Overrides.from_entries([_entry(amount_usd=19_000)]).version != one.version


# --------------------------------------------------------------------------- applying to a month


def _decided(as_of_date: date = T) -> pa.Table:
    """Three suppliers as the policy decided them: S1 eligible at $50k (with a decrease notice from
    $60k), S2 refused for risk, S3 eligible at $10k."""
    rows = [
        dict(supplier_id="S1", eligible=True, ineligible_reasons=[], trade_assurance_amount_usd=50_000.0,
             reason_codes=["HIGH_DISPUTE_RATIO"], amount_drivers=["LOSS_RATE_REDUCED"],
             amount_binding_from=date(2025, 7, 28), amount_before_binding_usd=60_000.0),
        dict(supplier_id="S2", eligible=False, ineligible_reasons=["DEFAULT_RISK_ABOVE_CEILING"],
             trade_assurance_amount_usd=0.0, reason_codes=["LATE_SHIPMENTS", "DEFAULT_RISK_ABOVE_CEILING"],
             amount_drivers=[]),
        dict(supplier_id="S3", eligible=True, ineligible_reasons=[], trade_assurance_amount_usd=10_000.0,
             reason_codes=[], amount_drivers=[]),
    ]
    base = dict(as_of_date=as_of_date, breach_probability_6m=0.1, risk_grade="C", model_version="m/1",
                policy_version="tap-test")
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=SCORE_SCHEMA)


def _row(table: pa.Table, supplier: str) -> dict:
    return next(r for r in table.to_pylist() if r["supplier_id"] == supplier)


UNCHANGED = object()
APPLY_CASES = [
    # cap below the policy's $50k: $20k, OVERRIDE_CAPPED after the policy's drivers; binds at once (no notice)
    (_entry(), {}, dict(eligible=True, trade_assurance_amount_usd=20_000.0,
                        amount_drivers=["LOSS_RATE_REDUCED", "OVERRIDE_CAPPED"], amount_binding_from=None,
                        amount_before_binding_usd=None, override_action="cap")),
    # cap above the policy's amount: nothing to lower, the notice stays, the row still shows the override in force
    (_entry(amount_usd=80_000), {}, dict(trade_assurance_amount_usd=50_000.0, amount_drivers=["LOSS_RATE_REDUCED"],
                                         amount_binding_from=date(2025, 7, 28), override_id="OV-1")),
    # exclude an eligible supplier: not eligible, $0, the reason named in both lists, no drivers
    (_entry(action="exclude", amount_usd=None), {},
     dict(eligible=False, trade_assurance_amount_usd=0.0, ineligible_reasons=["OVERRIDE_EXCLUDED"],
          reason_codes=["HIGH_DISPUTE_RATIO", "OVERRIDE_EXCLUDED"], amount_drivers=[], amount_binding_from=None,
          override_action="exclude", override_reason="under review")),
    # exclude a supplier the policy refused already: both reasons
    (_entry(action="exclude", amount_usd=None, supplier_id="S2"), {},
     dict(eligible=False, ineligible_reasons=["DEFAULT_RISK_ABOVE_CEILING", "OVERRIDE_EXCLUDED"])),
    # freeze at a stated amount above the policy's: held, OVERRIDE_FROZEN only, at once
    (_entry(action="freeze", amount_usd=70_000), {},
     dict(eligible=True, trade_assurance_amount_usd=70_000.0, amount_drivers=["OVERRIDE_FROZEN"],
          amount_binding_from=None)),
    # freeze at last month's amount over a refusal: covered again, the policy's rule stays in reason_codes
    (_entry(action="freeze", amount_usd=None, supplier_id="S2"), {"OV-1": 30_000.0},
     dict(eligible=True, trade_assurance_amount_usd=30_000.0, ineligible_reasons=[],
          reason_codes=["LATE_SHIPMENTS", "DEFAULT_RISK_ABOVE_CEILING"], amount_drivers=["OVERRIDE_FROZEN"])),
    # freeze at $0 over a refusal (it held nothing): still refused, but the override shows
    (_entry(action="freeze", amount_usd=None, supplier_id="S2"), {"OV-1": 0.0},
     dict(eligible=False, trade_assurance_amount_usd=0.0, ineligible_reasons=["DEFAULT_RISK_ABOVE_CEILING"],
          amount_drivers=[], override_action="freeze")),
    # freeze at the policy's own amount: the amount is unchanged, so the policy's notice stays
    (_entry(action="freeze", amount_usd=50_000), {}, dict(trade_assurance_amount_usd=50_000.0,
                                                          amount_binding_from=date(2025, 7, 28))),
    # expired the day before the month end: stops by itself, the row is the policy's
    (_entry(expiry=date(2025, 6, 30)), {}, UNCHANGED),
    # not yet started: an override never reaches a month before its start
    (_entry(start=date(2025, 7, 1)), {}, UNCHANGED),
    # starting on the month end itself: in force
    (_entry(start=T), {}, dict(trade_assurance_amount_usd=20_000.0)),
]


@pytest.mark.parametrize("entry, frozen, expected", APPLY_CASES)
def test_each_action_applied_after_the_policy(entry, frozen, expected):
    decided = _decided()
    outcome = apply_overrides(decided, Overrides.from_entries([entry]), frozen)
    supplier = entry["supplier_id"]
    if expected is UNCHANGED:
        assert outcome.table.equals(decided) and outcome.applied == ()
        return
    row = _row(outcome.table, supplier)
    assert {k: row[k] for k in expected} == expected
    assert row["override_id"] == "OV-1" and outcome.applied == ("OV-1",)
    assert row["eligible"] or row["trade_assurance_amount_usd"] == 0  # the contract's row rule
    others = [r for r in decided.to_pylist() if r["supplier_id"] != supplier]
    assert [r for r in outcome.table.to_pylist() if r["supplier_id"] != supplier] == others


def test_an_override_of_a_supplier_not_scored_is_counted_not_silent():
    overrides = Overrides.from_entries([_entry(supplier_id="S404"), _entry(id="OV-2", supplier_id="S3")])
    outcome = apply_overrides(_decided(), overrides)
    assert outcome.unknown_supplier == ("OV-1",) and outcome.applied == ("OV-2",)


def test_a_freeze_without_its_amount_is_an_error_not_a_guess():
    overrides = Overrides.from_entries([_entry(action="freeze", amount_usd=None)])
    with pytest.raises(ValueError, match="no frozen amount given"):
        apply_overrides(_decided(), overrides, {})


def test_the_frozen_amount_is_the_published_amount_before_the_first_month():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA models")
    con.execute("CREATE TABLE models.scores AS SELECT * FROM (VALUES (DATE '2025-05-31', 'S1', 42000.0), "
                "(DATE '2025-05-31', 'S9', 7000.0), (DATE '2025-06-30', 'S1', 1.0)) t(as_of_date, supplier_id, trade_assurance_amount_usd)")
    overrides = Overrides.from_entries([
        # starts mid-June: first month end June 30, so it holds May 31's $42k (not June's)
        _entry(action="freeze", amount_usd=None, start=date(2025, 6, 15)),
        # S2 was not scored on May 31 (not yet a supplier): it held nothing
        _entry(id="OV-2", supplier_id="S2", action="freeze", amount_usd=None),
        # a stated amount needs no look-up
        _entry(id="OV-3", supplier_id="S3", action="freeze", amount_usd=5.0),
    ])
    assert frozen_amounts_before_start(con, "models.scores", overrides, T) == {"OV-1": 42_000.0, "OV-2": 0.0}
    # months later the freeze still holds the amount before its start
    assert frozen_amounts_before_start(con, "models.scores", overrides, date(2025, 8, 31))["OV-1"] == 42_000.0
    # a freeze whose month before start was never scored cannot say what to hold
    late = Overrides.from_entries([_entry(action="freeze", amount_usd=None, start=date(2025, 8, 1))])
    with pytest.raises(OverridesFileError, match="2025-07-31, a month that was never scored: state amount_usd"):
        frozen_amounts_before_start(con, "models.scores", late, date(2025, 8, 31))


# --------------------------------------------------------------------------- properties

supplier_ids = [f"S{i}" for i in range(1, 4)]
actions = st.sampled_from(["freeze", "cap", "exclude"])


@st.composite
def override_sets(draw) -> Overrides:
    """At most one override per supplier, each in force or not at T, with any amounts."""
    entries = []
    for i, supplier in enumerate(draw(st.lists(st.sampled_from([*supplier_ids, "S404"]), unique=True))):
        action = draw(actions)
        amount = None if action == "exclude" else draw(st.one_of(st.none(), st.floats(0, 1e6)) if action == "freeze"
                                                       else st.floats(0, 1e6))
        start = draw(st.dates(date(2025, 1, 1), date(2025, 12, 31)))
        expiry = draw(st.dates(date(2025, 1, 2), date(2026, 6, 30)).filter(lambda d, s=start: d > s))
        entries.append(_entry(id=f"OV-{i}", supplier_id=supplier, action=action, amount_usd=amount, start=start, expiry=expiry))
    return Overrides.from_entries(entries)


@PROPERTY_SETTINGS
@given(overrides=override_sets(), frozen=st.floats(0, 1e6))
def test_overridden_rows_keep_the_published_invariants(overrides, frozen):
    decided = _decided()
    frozen_amounts = {e.id: frozen for e in overrides.entries}
    outcome = apply_overrides(decided, overrides, frozen_amounts)
    assert outcome.table.schema == decided.schema
    assert outcome.table.equals(apply_overrides(decided, overrides, frozen_amounts).table), "deterministic"
    in_force = {e.supplier_id: e for e in overrides.in_force(T)}
    for before, after in zip(decided.to_pylist(), outcome.table.to_pylist(), strict=True):
        amount = after["trade_assurance_amount_usd"]
        assert amount >= 0, "never negative"
        assert after["eligible"] or amount == 0, "zero when not eligible"
        assert after["eligible"] == (after["ineligible_reasons"] == []), "eligible exactly when no rule failed"
        if not after["eligible"]:
            assert after["amount_drivers"] == []
        entry = in_force.get(before["supplier_id"])
        if entry is None:
            assert after == before, "a supplier without an override in force is the policy's"
            continue
        assert (after["override_id"], after["override_action"]) == (entry.id, entry.action)
        if entry.action == "cap":
            assert amount == min(before["trade_assurance_amount_usd"], entry.amount_usd)
        elif entry.action == "exclude":
            assert amount == 0 and "OVERRIDE_EXCLUDED" in after["ineligible_reasons"]
        else:
            assert amount == (entry.amount_usd if entry.amount_usd is not None else frozen)
        if amount != before["trade_assurance_amount_usd"]:
            assert after["amount_binding_from"] is None, "an analyst's amount binds at once"
    assert set(outcome.unknown_supplier) == {e.id for e in in_force.values() if e.supplier_id == "S404"}


# --------------------------------------------------------------------------- audit


def test_the_audit_records_each_change_once_across_runs():
    con = duckdb.connect()
    first = Overrides.from_entries([_entry(), _entry(id="OV-2", supplier_id="S2", action="exclude", amount_usd=None)],
                                   source="overrides.yaml")
    added = record_override_changes(con, AUDIT_TABLE, first, "run-1", datetime(2025, 7, 1, 8))
    assert [(r["override_id"], r["change"]) for r in added.to_pylist()] == [("OV-1", "added"), ("OV-2", "added")]
    # the same file again (a rerun): nothing new
    assert record_override_changes(con, AUDIT_TABLE, first, "run-2", datetime(2025, 7, 2, 8)).num_rows == 0
    # the analyst raises the cap, lifts the exclusion and freezes another supplier
    second = Overrides.from_entries([_entry(amount_usd=30_000), _entry(id="OV-3", supplier_id="S3", action="freeze", amount_usd=None)],
                                    source="overrides.yaml")
    changed = record_override_changes(con, AUDIT_TABLE, second, "run-3", datetime(2025, 8, 1, 8))
    assert [(r["override_id"], r["change"], r["amount_usd"], r["run_id"]) for r in changed.to_pylist()] == [
        ("OV-1", "changed", 30_000.0, "run-3"),
        ("OV-2", "removed", None, "run-3"),  # with the values it had, so the row says what was lifted
        ("OV-3", "added", None, "run-3"),
    ]
    # putting the exclusion back is a new addition; the history is kept whole
    third = Overrides.from_entries([*second.entries, *first.entries[1:]], source="overrides.yaml")
    assert [(r["override_id"], r["change"]) for r in record_override_changes(
        con, AUDIT_TABLE, third, "run-4", datetime(2025, 9, 1, 8)).to_pylist()] == [("OV-2", "added")]
    audit = con.execute(f"SELECT * FROM {AUDIT_TABLE} ORDER BY sequence").fetch_arrow_table()
    assert audit.column("sequence").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert [r["action"] for r in audit.to_pylist() if r["override_id"] == "OV-2"] == ["exclude", "exclude", "exclude"]
    result = check_published_frame(audit, load_published_contracts()["override_audit"])
    assert result.passed, result.to_text()


def test_the_diff_is_pure_and_sorted():
    overrides = Overrides.from_entries([_entry(id="B"), _entry(id="A", supplier_id="S2")])
    assert [c["override_id"] for c in override_changes({}, overrides)] == ["A", "B"]
    last = {c["override_id"]: c for c in override_changes({}, overrides)}
    assert override_changes(last, overrides) == []
