"""Policy configuration, versioning and the worked examples behind formula v1
(``models/policies/v1.yaml``; v2's are in ``test_policy_v2_cases.py``)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models.policy import (
    DEFAULT_POLICY_PATH,
    V1_POLICY_PATH,
    Policy,
    PolicyConfigError,
    PolicyDecision,
    apply_policy,
    decide_supplier,
    round_down_to_steps,
)

V1 = Policy.from_yaml(V1_POLICY_PATH)


def _leaves(node, path=()):
    """Every (path, value) leaf of a nested dict/list configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _set(raw, path, value):
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _changed(value):
    """A different but still valid value for a parameter."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        if value == 1.0:
            return 0.999  # probabilities/shares bounded by 1 (the last grade bound is special)
        return value * 0.99 if value else 0.25
    if isinstance(value, list):
        return [*value, "ZZ"] if value else ["ZZ"]
    if value is None:
        return 1000.0
    return f"{value}x"


def test_default_policy_loads_and_has_versioned_name():
    policy = Policy.default()
    assert policy.version.startswith("tap-2.2.0+")
    assert policy.formula == "v2"
    assert len(policy.version.split("+")[1]) == 8
    assert policy.source == str(DEFAULT_POLICY_PATH)


def test_v1_keeps_its_published_policy_version():
    # v1.yaml is the v1 default.yaml moved: the same content hash as every row
    # published under v1, so its results can be matched with what was published.
    assert V1.version == "tap-1.0.0+dfce3de4"
    assert V1.formula == "v1"
    assert "formula" not in V1.to_dict()
    # an explicit `formula: v1` is the same policy
    assert Policy.from_dict({**V1.to_dict(), "formula": "v1"}).version == V1.version


@pytest.mark.parametrize("path", [V1_POLICY_PATH, DEFAULT_POLICY_PATH])
def test_identical_config_gives_identical_version(tmp_path: Path, path: Path):
    raw = yaml.safe_load(path.read_text())
    policy = Policy.from_yaml(path)
    # Same parameters, different formatting, key order, comments and int-vs-float.
    reformatted = tmp_path / "same.yaml"
    reordered = dict(reversed(list(raw.items())))
    reordered["caps"] = {**raw["caps"], "global_cap_usd": float(raw["caps"]["global_cap_usd"])}
    reformatted.write_text("# another comment\n" + yaml.safe_dump(reordered, sort_keys=False))
    assert Policy.from_yaml(reformatted).version == policy.version
    assert Policy.from_dict(raw).version == policy.version
    assert Policy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize("config_path", [V1_POLICY_PATH, DEFAULT_POLICY_PATH])
def test_every_parameter_change_changes_the_version(config_path: Path):
    base_policy = Policy.from_yaml(config_path)
    base_raw = base_policy.to_dict()
    base_version = base_policy.version
    seen = {base_version}
    leaves = list(_leaves(base_raw))
    assert len(leaves) > 30
    last_band = len(base_raw["risk_grades"]) - 1
    for path, value in leaves:
        raw = copy.deepcopy(base_raw)
        if path[:2] == ("risk_grades", last_band) and path[2] != "grade":
            continue  # the last bounds are 1.0 (or null: none): not free parameters
        if path == ("formula",):
            continue  # another formula is another policy, not a parameter change
        if path == ("rounding", "steps", 0, "from_usd"):
            continue  # the first band starts at 0 by definition
        if path == ("eligibility", "enabled_countries"):
            new = ["CN"]
        elif path[0] == "rounding":
            new = value * 2  # band starts stay multiples of their steps
        elif path == ("growth", "decrease_notice_days"):
            new = value - 1  # whole days
        else:
            new = _changed(value)
        _set(raw, path, new)
        try:
            changed = Policy.from_dict(raw)
        except PolicyConfigError as exc:  # pragma: no cover - shows which change is invalid
            pytest.fail(f"changing {path} produced an invalid policy: {exc}")
        assert changed.version != base_version, f"changing {path} kept the version"
        seen.add(changed.version)
    # a tier cap added for a new tier is a change too
    raw = copy.deepcopy(base_raw)
    raw["caps"]["tier_caps_usd"]["free"] = 1000
    assert Policy.from_dict(raw).version not in seen


def test_decrease_notice_is_a_new_policy_version_only_when_on():
    # Off (0 or absent) is the policy as it was: files written before the option keep their
    # version; any number of days is another policy.
    raw = V1.to_dict()
    assert "decrease_notice_days" not in raw["growth"]
    assert Policy.from_dict({**raw, "growth": {**raw["growth"], "decrease_notice_days": 0}}).version == V1.version
    with_notice = {**raw, "growth": {**raw["growth"], "decrease_notice_days": 28}}
    assert Policy.from_dict(with_notice).version != V1.version
    assert Policy.from_dict(with_notice).growth.decrease_notice_days == 28
    assert Policy.default().growth.decrease_notice_days == 28  # the packaged v2 gives notice


def test_replace_makes_a_new_version_for_what_if():
    policy = V1
    stricter = policy.replace(**{"eligibility.max_breach_probability": 0.1})
    assert stricter.eligibility.max_breach_probability == 0.1
    assert stricter.version != policy.version
    with pytest.raises(PolicyConfigError, match="unknown policy parameter"):
        policy.replace(**{"eligibility.max_breach_probabilty": 0.1})


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["eligibility"].update(surprise=1), "unknown key"),
        (lambda r: r["eligibility"].pop("min_orders_6m"), "missing key"),
        (lambda r: r["eligibility"].update(max_breach_probability=1.5), "outside"),
        (lambda r: r["risk_grades"][-1].update(max_probability=0.9), "end at 1.0"),
        (lambda r: r["risk_grades"][1].update(max_probability=0.01), "increase strictly"),
        (lambda r: r["rounding"]["steps"].__setitem__(1, {"from_usd": 10500, "step_usd": 1000}),
         "not a multiple"),
        (lambda r: r["caps"].update(global_cap_usd="lots"), "expected a number"),
        (lambda r: r["expected_loss"].update(loss_given_breach=0), "outside"),
        (lambda r: r.update(name="has space"), "name"),
        # a notice past the next month end (Feb 28) would leave two decreases pending in one row
        (lambda r: r["growth"].update(decrease_notice_days=30), "decrease_notice_days: expected a whole"),
        (lambda r: r["growth"].update(decrease_notice_days=-1), "from 0 to 28"),
        (lambda r: r["growth"].update(decrease_notice_days=14.5), "whole number of days"),  # part days
        (lambda r: r["growth"].update(decrease_notice_days=True), "whole number of days"),  # not a count
        (lambda r: r["growth"].update(decrease_notice_days="30d"), "whole number of days"),
    ],
)
def test_invalid_config_is_rejected_with_a_message(mutate, message):
    raw = V1.to_dict()
    mutate(raw)
    with pytest.raises(PolicyConfigError, match=message):
        Policy.from_dict(raw)


def test_invalid_yaml_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tap\nversion: 1\n")
    with pytest.raises(PolicyConfigError, match="bad.yaml"):
        Policy.from_yaml(bad)


def test_rounding_examples():
    steps = V1.rounding
    got = round_down_to_steps(
        np.array([0, 499.99, 500, 9999.99, 10000, 10999, 99999, 100000, 104999, 1e-300]), steps
    )
    assert list(got) == [0, 0, 500, 9500, 10000, 10000, 99000, 100000, 100000, 0]


def _supplier(**overrides):
    row = dict(
        supplier_id="s1", as_of_date=pd.Timestamp("2025-06-30"), breach_probability_6m=0.01,
        opted_in=True, membership_tier="gold", country="CN", tenure_months=24, orders_6m=40,
        deal_value_12m_usd=200_000.0, assured_deal_value_12m_usd=120_000.0,
        review_mean_6m=4.0, review_count_6m=3, on_time_shipment_rate_6m=0.9,
        completion_rate_6m=0.95, dispute_ratio_6m=0.01,
    )
    row.update(overrides)
    return row


def test_worked_example_of_the_formula():
    policy = V1
    # V = max(120k, 0.5 x 200k) = 120k; B = 60k; fees = 0.03 x 120k x 6/12 + 1 x 0.5 x 40
    # = 1,820; L = 0.6 x 1,820 / (p x 0.5). At p = 0.01 L = 218,400 > B: amount 60k.
    assert decide_supplier(_supplier(), policy).trade_assurance_amount_usd == 60_000
    # p = 0.06: L = 36,400 -> rounded down to 36,000; RISK_REDUCED
    risky = decide_supplier(_supplier(breach_probability_6m=0.06), policy)
    assert risky.trade_assurance_amount_usd == 36_000
    assert risky.risk_grade == "C"
    assert "RISK_REDUCED" in risky.amount_drivers
    # good reviews and shipping: x1.1 x1.1 = 1.21 -> bounded at 1.2: 72,000
    boosted = decide_supplier(
        _supplier(review_mean_6m=4.8, review_count_6m=12, on_time_shipment_rate_6m=0.98),
        policy,
    )
    assert boosted.trade_assurance_amount_usd == 72_000
    assert {"REVIEW_BOOST", "ON_TIME_BOOST", "BOOST_LIMITED"} <= set(boosted.amount_drivers)


def test_caps_and_growth_limit_drivers():
    policy = V1
    big = _supplier(assured_deal_value_12m_usd=10_000_000.0)
    capped = decide_supplier(big, policy)
    assert capped.trade_assurance_amount_usd == 100_000  # gold tier cap
    assert "TIER_CAPPED" in capped.amount_drivers
    grown = decide_supplier(big, policy, previous_amount=20_000)
    assert grown.trade_assurance_amount_usd == 30_000  # +50%
    assert "GROWTH_LIMITED" in grown.amount_drivers
    small_start = decide_supplier(big, policy, previous_amount=1_000)
    assert small_start.trade_assurance_amount_usd == 6_000  # +$5,000 beats +50%
    # decreases apply immediately
    shrunk = decide_supplier(_supplier(), policy, previous_amount=90_000)
    assert shrunk.trade_assurance_amount_usd == 60_000


def test_every_rule_reports_its_reason():
    policy = V1
    decision = decide_supplier(
        _supplier(opted_in=False, membership_tier="free", tenure_months=2, orders_6m=1,
                  breach_probability_6m=0.9),
        policy.replace(**{"eligibility.enabled_countries": ["VN"]}),
    )
    assert not decision.eligible
    assert decision.trade_assurance_amount_usd == 0
    assert decision.ineligible_reasons == (
        "NOT_OPTED_IN", "TIER_NOT_ELIGIBLE", "COUNTRY_NOT_ENABLED", "HISTORY_TOO_SHORT",
        "INSUFFICIENT_ORDERS", "RISK_ABOVE_CEILING",
    )
    assert decision.amount_drivers == ()
    assert decision.risk_grade == "E"


def test_nulls_are_handled_and_never_favourable():
    policy = V1
    all_null = _supplier(
        breach_probability_6m=None, opted_in=None, membership_tier=None, country=None,
        tenure_months=None, orders_6m=None, deal_value_12m_usd=None,
        assured_deal_value_12m_usd=None, review_mean_6m=None, review_count_6m=None,
        on_time_shipment_rate_6m=None, completion_rate_6m=None, dispute_ratio_6m=None,
    )
    decision = decide_supplier(all_null, policy)
    assert decision == PolicyDecision(
        supplier_id="s1", eligible=False,
        ineligible_reasons=("NOT_OPTED_IN", "TIER_NOT_ELIGIBLE", "HISTORY_TOO_SHORT",
                            "INSUFFICIENT_ORDERS", "RISK_NOT_SCORED"),
        risk_grade="NR", trade_assurance_amount_usd=0.0, amount_drivers=(),
    )
    # Null assured value falls back to deal value; null reviews give no boost.
    fallback = decide_supplier(
        _supplier(assured_deal_value_12m_usd=None, review_mean_6m=None), policy
    )
    assert fallback.trade_assurance_amount_usd == 50_000  # 0.5 x (0.5 x 200k)
    assert "CAPACITY_FROM_DEAL_VALUE" in fallback.amount_drivers
    # Nullable pandas dtypes work too.
    frame = pd.DataFrame([_supplier(), _supplier(supplier_id="s2")])
    frame["opted_in"] = pd.array([True, None], dtype="boolean")
    frame["orders_6m"] = pd.array([40, None], dtype="Int64")
    out = apply_policy(frame, policy)
    assert list(out["eligible"]) == [True, False]


def test_optional_performance_columns_may_be_absent():
    frame = pd.DataFrame([_supplier()]).drop(
        columns=["review_mean_6m", "review_count_6m", "on_time_shipment_rate_6m",
                 "completion_rate_6m", "dispute_ratio_6m"]
    )
    out = apply_policy(frame, V1)
    assert out["trade_assurance_amount_usd"].iloc[0] == 60_000


def test_structural_input_errors_are_clear():
    policy = V1
    with pytest.raises(ValueError, match="lacks column"):
        apply_policy(pd.DataFrame([_supplier()]).drop(columns=["country"]), policy)
    with pytest.raises(ValueError, match="more than once"):
        apply_policy(pd.DataFrame([_supplier(), _supplier()]), policy)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply_policy(pd.DataFrame([_supplier(breach_probability_6m=1.2)]), policy)


def test_extreme_values_stay_finite_and_bounded():
    policy = V1
    frame = pd.DataFrame(
        [
            _supplier(supplier_id="tiny_p", breach_probability_6m=5e-324,
                      deal_value_12m_usd=0.0, assured_deal_value_12m_usd=0.0, orders_6m=0),
            _supplier(supplier_id="huge", deal_value_12m_usd=1e308,
                      assured_deal_value_12m_usd=float("inf"), orders_6m=10**18),
            _supplier(supplier_id="negative", deal_value_12m_usd=-5.0,
                      assured_deal_value_12m_usd=-1e9, tenure_months=-3),
        ]
    )
    previous = pd.Series([float("inf"), -10.0, None], index=["tiny_p", "huge", "negative"])
    out = apply_policy(frame, policy, previous).set_index("supplier_id")
    amounts = out["trade_assurance_amount_usd"]
    assert np.isfinite(amounts).all()
    assert amounts["tiny_p"] == 0  # no trade, nothing to cover
    assert amounts["huge"] == 5_000  # previous -10 read as 0: growth limit $5,000
    assert amounts["negative"] == 0 and not out.loc["negative", "eligible"]


def test_every_shipped_policy_config_loads():
    configs = sorted(DEFAULT_POLICY_PATH.parent.glob("*.yaml"))
    assert DEFAULT_POLICY_PATH in configs
    versions = {Policy.from_yaml(path).version for path in configs}
    assert len(versions) == len(configs)


def test_empty_frame_gives_empty_decisions():
    frame = pd.DataFrame([_supplier()]).iloc[:0]
    out = apply_policy(frame, V1)
    assert len(out) == 0
    assert {"eligible", "trade_assurance_amount_usd", "amount_drivers"} <= set(out.columns)


def test_output_keeps_input_columns_and_row_order():
    frame = pd.DataFrame([_supplier(supplier_id=s) for s in ["b", "a", "c"]])
    out = apply_policy(frame, V1)
    assert list(out["supplier_id"]) == ["b", "a", "c"]
    assert list(out.columns[: len(frame.columns)]) == list(frame.columns)
    assert out["trade_assurance_amount_usd"].dtype == np.float64
    assert out["eligible"].dtype == bool


# --------------------------------------------------------------------------- pydantic rules
# The rules are pydantic models since issue 16: the same rules, one-line messages naming the
# key path and what is allowed, and a JSON Schema for editors.

import json  # noqa: E402

from jsonschema import Draft202012Validator  # noqa: E402

from models.policy.config import SCHEMA_PATH, main, policy_json_schema  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMA_MODELINE = "# yaml-language-server: $schema=../../docs/policy.schema.json"


@pytest.mark.parametrize(
    "path, version",
    [
        # the policy_version each file published under before pydantic (main at e7e7e37): a
        # published row must still match its policy file
        ("models/policies/default.yaml", "tap-2.2.0+f3cf83f9"),  # 2.2: the loss-rate ceiling (session 18)
        ("models/policies/v1.yaml", "tap-1.0.0+dfce3de4"),
        ("models/policies/conservative.yaml", "tap-conservative-2.0.0+96d780a2"),
        ("tests/policies/v2_cases.yaml", "tap-2.0.0+82d43f33"),
    ],
)
def test_shipped_policies_keep_their_published_policy_version(path, version):
    assert Policy.from_yaml(REPO / path).version == version


def test_the_previous_default_still_hashes_to_the_version_it_published():
    # rows published under default.yaml 2.1 (ceiling 0.005) keep a version their config reproduces
    previous = Policy.default().replace(**{"version": "2.1.0", "eligibility.max_loss_rate": 0.005})
    assert previous.version == "tap-2.1.0+0164760a"


@pytest.mark.parametrize(
    "mutate, message",
    [
        # an unknown key names the section and every key allowed there
        (lambda r: r["eligibility"].update(surprise=1, other=2),
         "eligibility: unknown key(s) ['surprise', 'other']; allowed: eligible_tiers, enabled_countries, "
         "max_breach_probability, min_orders_6m, min_tenure_months, require_opt_in"),
        # several missing keys of one mapping in one message
        (lambda r: [r.pop(k) for k in ("caps", "growth")], "policy: missing key(s) ['caps', 'growth']"),
        # a range says its bounds
        (lambda r: r["eligibility"].update(max_breach_probability=1.5),
         "eligibility.max_breach_probability: 1.5 is outside [0.0, 1.0]"),
        # a key path into a list
        (lambda r: r["eligibility"].update(eligible_tiers=["gold", 3]),
         "eligibility.eligible_tiers[1]: expected a string, got 3"),
        (lambda r: r["rounding"]["steps"][1].update(step_usd=0),
         "rounding.steps[1].step_usd: 0 is outside [0.01, inf]"),
        (lambda r: r["caps"]["tier_caps_usd"].update(gold="lots"),
         "caps.tier_caps_usd.gold: expected a number, got 'lots'"),
        (lambda r: r["eligibility"].update(require_opt_in="yes"),
         "eligibility.require_opt_in: expected true or false, got 'yes'"),
        (lambda r: r.update(caps=5), "caps: expected a mapping, got 5"),
        (lambda r: r["risk_grades"][0].update(grade="NR"), "risk_grades: grades must be unique and not 'NR'"),
        (lambda r: r.update(formula="v3"), "formula: expected one of ['v1', 'v2'], got 'v3'"),
    ],
)
def test_a_wrong_key_or_value_is_named_with_what_is_allowed(mutate, message):
    raw = V1.to_dict()
    mutate(raw)
    with pytest.raises(PolicyConfigError) as caught:
        Policy.from_dict(raw)
    assert str(caught.value) == message


def test_a_v2_file_is_told_its_own_allowed_keys():
    raw = Policy.default().to_dict()
    raw["risk_grades"][0]["max_probability"] = 0.02  # a v1 band key
    with pytest.raises(PolicyConfigError, match=r"^risk_grades\[0\]: unknown key\(s\) \['max_probability'\]; "
                                                r"allowed: grade, max_default_probability, max_loss_rate$"):
        Policy.from_dict(raw)


def test_a_bad_file_is_one_line_naming_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    raw = V1.to_dict()
    raw["eligibility"]["max_breach_probabilty"] = 0.2  # typo
    raw["caps"]["global_cap_usd"] = -1
    raw["growth"]["max_relative_increase"] = "half"
    raw["name"] = "my policy"
    for section in ("capacity", "expected_loss", "performance_boost"):
        del raw[section]  # three missing keys of one mapping: one problem
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyConfigError) as caught:
        Policy.from_yaml(bad)
    text = str(caught.value)
    assert "\n" not in text and "pydantic" not in text
    assert text.startswith(f"{bad}: ")
    assert "policy: missing key(s) ['capacity', 'expected_loss', 'performance_boost']" in text
    assert text.endswith("(and 2 more)")  # 5 problems: the first three shown


def test_sections_stay_validated_when_replaced():
    # the sections are pydantic dataclasses: dataclasses.replace validates the field too
    import dataclasses

    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        dataclasses.replace(V1.eligibility, max_breach_probability=2.0)


def test_committed_json_schema_is_the_generated_one(capsys):
    assert json.loads(SCHEMA_PATH.read_text()) == policy_json_schema()
    assert main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == policy_json_schema()


@pytest.mark.parametrize("path", sorted((REPO / "models" / "policies").glob("*.yaml")))
def test_shipped_policies_follow_the_json_schema_and_point_editors_at_it(path: Path):
    validator = Draft202012Validator(policy_json_schema())
    raw = yaml.safe_load(path.read_text())
    assert not list(validator.iter_errors(raw))
    # an editor with the YAML language server reads the schema from the file's first line
    assert path.read_text().splitlines()[0] == SCHEMA_MODELINE
    assert (path.parent / "../../docs/policy.schema.json").resolve() == SCHEMA_PATH
    # and flags what the loader refuses: a typo, a value out of range
    typo = {**raw, "eligibility": {**raw["eligibility"], "min_tenure_month": 6}}
    assert list(validator.iter_errors(typo))
    wrong = {**raw, "expected_loss": {**raw["expected_loss"], "fee_rate": 3}}
    assert list(validator.iter_errors(wrong))


def test_policy_files_are_checked_from_the_command_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tap\nversion: 1\n")
    assert main([str(V1_POLICY_PATH)]) == 0
    assert "tap-1.0.0+dfce3de4" in capsys.readouterr().out
    assert main([str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
