"""Model vintages (models/vintages.py): the schedule, the rows each vintage may learn from,
which vintage serves which month, labels closed at their window end, and the registry's
record of vintages (reuse, point-in-time serving decisions)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landing_cut import as_known_at
from models.labels import compute_breach_labels, label_window_end
from models.registry import registered_version_tags, tracking_uri_for_home
from models.training import TrainingConfig, complete_label_rows, train_breach_model
from models.training_set import untrainable_reason
from models.vintage_maturity import vintage_maturity
from models.vintages import (
    RISK_MODEL_KINDS,
    REFUSED,
    SERVING,
    UNTRAINABLE,
    RiskModelKind,
    Vintage,
    VintageConfig,
    VintageConfigError,
    build_vintages,
    risk_model_kinds,
    rows_known_at,
    serving_vintage,
    vintage_as_of_dates,
    why_not_scored,
)
from test_features_landing_zone import connection_with, random_landing_zone

D = date.fromisoformat


@pytest.mark.parametrize(
    "values, message",
    [
        # 5 does not divide the year: vintages would drift across calendar months
        ({"refit_every_months": 5}, "refit_every_months must be one of"),
        # an out-of-time split needs 3 complete months at least
        ({"min_label_months": 2}, "min_label_months must be an integer >= 3"),
        # a typo must not silently fall back to the default
        ({"refit_every_month": 3}, "unknown keys ['refit_every_month']"),
    ],
)
def test_a_bad_vintage_config_says_what_to_fix(tmp_path, values, message):
    path = tmp_path / "vintages.yaml"
    path.write_text("\n".join(f"{k}: {v}" for k, v in values.items()))
    with pytest.raises(VintageConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        VintageConfig.from_yaml(path)


def test_the_packaged_config_is_quarterly():
    config = VintageConfig.from_yaml()
    assert (config.refit_every_months, config.cadence) == (3, "quarterly")


def test_vintages_fall_on_calendar_quarter_ends_once_enough_outcomes_are_complete():
    # Orders from January 2024: six complete label months (Jan..Jun 2024) first exist at the end of December.
    dates = vintage_as_of_dates(D("2024-01-31"), D("2026-06-30"), VintageConfig(3, 6))
    assert dates == [D(d) for d in ("2024-12-31", "2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31",
                                    "2026-03-31", "2026-06-30")]
    monthly = vintage_as_of_dates(D("2024-01-31"), D("2026-06-30"), VintageConfig(1, 6))
    assert monthly[:2] == [D("2024-12-31"), D("2025-01-31")] and len(monthly) == 19


def test_appending_months_never_moves_an_earlier_vintage():
    """The schedule is anchored on the calendar and the first month of data, never on its last."""
    short = vintage_as_of_dates(D("2024-03-31"), D("2025-07-15"), VintageConfig(3, 6))
    longer = vintage_as_of_dates(D("2024-03-31"), D("2027-01-01"), VintageConfig(3, 6))
    assert short and longer[: len(short)] == short


def test_a_vintage_learns_only_from_rows_whose_outcome_window_ended_by_its_as_of_date():
    months = [D("2024-05-31"), D("2024-06-30"), D("2024-07-31")]
    training = pd.DataFrame({"as_of_date": months, "supplier_id": ["s1"] * 3})
    known = rows_known_at(training, D("2024-12-31"))
    # 2024-06-30 + 6 months = 2024-12-31: complete by the end of that day, so it may be used
    assert list(known["as_of_date"]) == months[:2]
    assert all(label_window_end(t) <= D("2024-12-31") for t in known["as_of_date"])


def _vintage(kind: str, as_of: str, status: str = SERVING) -> Vintage:
    return Vintage(kind, D(as_of), status, f"{kind}/1" if status != UNTRAINABLE else None, "fp", None, "", "quarterly")


@pytest.mark.parametrize(
    "month, expected",
    [
        # before the first vintage: no model knew the month
        ("2024-11-30", None),
        # a vintage as of T may score T
        ("2024-12-31", "2024-12-31"),
        # between vintages: the newest one as of the month
        ("2025-02-28", "2024-12-31"),
        # the March vintage was refused by the gates: December's keeps serving
        ("2025-04-30", "2024-12-31"),
        ("2025-06-30", "2025-06-30"),
    ],
)
def test_each_month_is_scored_by_the_newest_serving_vintage_as_of_it(month, expected):
    vintages = [_vintage("breach", "2024-12-31"), _vintage("breach", "2025-03-31", REFUSED),
                _vintage("breach", "2025-06-30"), _vintage("default", "2024-09-30")]
    chosen = serving_vintage(vintages, "breach", D(month))
    assert (chosen.as_of_date.isoformat() if chosen else None) == expected


def test_a_month_without_every_model_says_why_it_is_not_scored():
    vintages = [_vintage("breach", "2024-12-31"), _vintage("loss_rate", "2024-12-31"),
                Vintage("default", D("2024-12-31"), UNTRAINABLE, None, None, None, "only 3 default(s)", "quarterly")]
    why = why_not_scored(vintages, ("breach", "loss_rate", "default"), D("2025-01-31"))
    assert "default none: only 3 default(s)" in why and "breach" not in why
    assert why_not_scored(vintages[:2], ("breach", "loss_rate"), D("2025-01-31")) is None
    assert "breach 2024-12-31" in why_not_scored(vintages[:2], ("breach", "loss_rate"), D("2024-11-30"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cut=st.sampled_from(["2023-12-31", "2024-03-31", "2024-06-30"]))
def test_a_label_is_closed_at_its_window_end(seed, cut):
    """Nothing timestamped after a label's window end changes it: a late resolution, refund,
    shipment, delivery or cancellation (by the supplier or the buyer) cannot reach a vintage
    as of the window end. Compared with the landing zone as extracted at that day."""
    zone = random_landing_zone(seed, n_suppliers=6, n_orders=200)
    cut_day = D(cut)
    as_of_dates = [t for t in pd.date_range("2022-01-31", cut, freq="ME").date if label_window_end(t) <= cut_day]
    whole = compute_breach_labels(connection_with(zone), as_of_dates, data_horizon=cut_day).to_pandas()
    known = compute_breach_labels(connection_with(as_known_at(zone, cut_day)), as_of_dates, data_horizon=cut_day).to_pandas()
    pd.testing.assert_frame_equal(whole, known)


# ----------------------------------------------------------------- registry (MLflow)

def _training_frame(months: int = 14, suppliers: int = 300, seed: int = 3) -> pd.DataFrame:
    """Features with a learnable breach label, one row per supplier and month end from 2024-01;
    each month drawn from its own seed, so a longer frame holds the shorter one's rows unchanged."""
    frames = []
    for t in pd.date_range("2024-01-31", periods=months, freq="ME").date:
        rng = np.random.default_rng([seed, t.toordinal()])
        ratio = rng.random(suppliers)
        frames.append(pd.DataFrame({
            "as_of_date": t, "supplier_id": [f"s{i:03d}" for i in range(suppliers)], "dispute_ratio_6m": ratio,
            "orders_6m": rng.integers(0, 50, suppliers).astype(float), "breach_6m": rng.random(suppliers) < 0.05 + 0.4 * ratio,
        }))
    return pd.concat(frames, ignore_index=True)


FAST = TrainingConfig(max_boost_rounds=30, early_stopping_rounds=10, learning_rate=0.2)


def _kind(spoil_after: date | None = None) -> RiskModelKind:
    """A breach kind; vintages whose newest row is after ``spoil_after`` learn shuffled labels
    (a model the gates must refuse)."""
    def train(rows: pd.DataFrame, label_rows: pd.DataFrame, fingerprint: str):
        if spoil_after is None or max(rows["as_of_date"]) <= spoil_after:
            return train_breach_model(rows, ["dispute_ratio_6m", "orders_6m"], FAST, data_fingerprint=fingerprint,
                                      label_rows=label_rows)
        shuffled = rows.assign(breach_6m=rows["breach_6m"].sample(frac=1.0, random_state=0).to_numpy())
        result = train_breach_model(shuffled, ["dispute_ratio_6m", "orders_6m"], FAST)
        # judged on the true outcomes of its out-of-time rows
        result.evaluation_frame["breach_6m"] = result.evaluation_frame[["as_of_date", "supplier_id"]].merge(
            rows, on=["as_of_date", "supplier_id"], how="left")["breach_6m"].to_numpy()
        return result

    return RiskModelKind("breach", "test_breach", "breach_6m", untrainable_reason, complete_label_rows, train)


def test_vintages_are_registered_with_their_tags_and_reused_on_a_rerun(tmp_path):
    uri = tracking_uri_for_home(tmp_path)
    training = _training_frame()
    dates = [D("2024-12-31"), D("2025-03-31")]
    config = VintageConfig(3, 6)
    first = build_vintages(training, _kind(), dates, uri, "test", config)
    assert first.vintages[0].status == SERVING and all(v.trained_now for v in first.vintages)
    tags = registered_version_tags(uri, "test_breach")
    assert {version: (t["vintage_as_of_date"], t["vintage_cadence"], t["model_kind"]) for version, t in tags.items()} == {
        "test_breach/1": ("2024-12-31", "quarterly", "breach"), "test_breach/2": ("2025-03-31", "quarterly", "breach"),
    }
    assert all(t["vintage_data_fingerprint"] == v.data_fingerprint for t, v in zip(tags.values(), first.vintages))
    assert first.vintages[1].label == "test_breach/2@2025-03-31"

    again = build_vintages(training, _kind(), dates, uri, "test", config)
    assert not any(v.trained_now for v in again.vintages), "a vintage's inputs cannot change: never retrained"
    assert [(v.version, v.status) for v in again.vintages] == [(v.version, v.status) for v in first.vintages]
    assert len(registered_version_tags(uri, "test_breach")) == 2


def test_a_vintage_the_gates_refuse_leaves_the_previous_one_serving_for_good(tmp_path):
    uri = tracking_uri_for_home(tmp_path)
    training = _training_frame()
    config = VintageConfig(3, 6)
    build = build_vintages(training, _kind(spoil_after=D("2024-06-30")), [D("2024-12-31"), D("2025-03-31")], uri, "t", config)
    first, second = build.vintages
    assert (first.status, second.status) == (SERVING, REFUSED)
    assert second.compared_with == first.version and "AUC worse" in second.reasons
    assert serving_vintage(build.vintages, "breach", D("2025-06-30")) == first
    # A later month's arrival (a longer training set) re-decides nothing: the recorded decision is kept.
    later = build_vintages(_training_frame(months=20), _kind(spoil_after=D("2024-06-30")),
                           [D("2024-12-31"), D("2025-03-31")], uri, "t", config)
    assert [(v.version, v.status, v.trained_now) for v in later.vintages] == [
        (first.version, SERVING, False), (second.version, REFUSED, False)]


def test_an_untrainable_vintage_is_recorded_not_registered(tmp_path):
    uri = tracking_uri_for_home(tmp_path)
    training = _training_frame().assign(breach_6m=False)
    build = build_vintages(training, _kind(), [D("2024-12-31")], uri, "t", VintageConfig(3, 6))
    (vintage,) = build.vintages
    assert vintage.status == UNTRAINABLE and vintage.version is None and "only 0 breach" in vintage.reasons


def test_the_maturity_report_judges_each_vintage_on_its_matured_months_only():
    history = pd.DataFrame({
        "as_of_date": [D("2025-01-31")] * 4 + [D("2025-04-30")] * 2,
        "supplier_id": ["a", "b", "c", "d", "a", "b"],
        "model_version": ["m/1@2024-12-31"] * 4 + ["m/2@2025-03-31"] * 2,
        "breach_probability_6m": [0.1, 0.2, 0.3, 0.8, 0.5, 0.5],
        "breach_6m": [False, False, True, True, None, None],
        # April's outcome window is still open: it counts as scored, not as matured
        "label_complete": [True] * 4 + [False] * 2,
        "loss_rate_model_version": ["l/1@2024-12-31"] * 6,
        "loss_rate_6m": [0.01, 0.01, 0.02, 0.02, 0.5, 0.5],
        "forward_order_value_6m_usd": [100.0, 100.0, 100.0, 100.0, 1.0, 1.0],
        "breach_refund_usd_6m": [0.0, 0.0, 3.0, 5.0, 0.0, 0.0],
    })
    report = vintage_maturity(history).set_index(["model", "vintage"])
    first = report.loc[("breach", "m/1@2024-12-31")]
    assert (first["months_scored"], first["months_matured"], first["supplier_months_matured"]) == (1, 1, 4)
    assert first["mean_predicted"] == pytest.approx(0.35) and first["realised"] == 0.5 and first["auc"] == 1.0
    second = report.loc[("breach", "m/2@2025-03-31")]
    assert (second["months_scored"], second["months_matured"]) == (1, 0) and np.isnan(second["auc"])
    loss = report.loc[("loss_rate", "l/1@2024-12-31")]
    # refund dollars per dollar of order value, exposure-weighted, matured months only
    assert loss["mean_predicted"] == pytest.approx(0.015) and loss["realised"] == pytest.approx(0.02)
    assert loss["gini"] > 0
    assert ("default", "m/1@2024-12-31") not in report.index  # no default columns in this history


def test_assurance_vintages_points_the_run_at_another_cadence(tmp_path, monkeypatch):
    from pipelines.definitions import build_resources
    from pipelines.settings import Settings

    config = tmp_path / "monthly.yaml"
    config.write_text("refit_every_months: 1\nmin_label_months: 6\n")
    monkeypatch.setenv("ASSURANCE_VINTAGES", str(config))
    resource = build_resources(Settings.from_env())["model_registry"]
    assert resource.vintage_config_file == str(config.resolve())
    assert VintageConfig.from_yaml(resource.vintage_config_file).cadence == "monthly"


@pytest.mark.parametrize("kind", RISK_MODEL_KINDS)
def test_each_kind_trains_with_the_fingerprint_the_vintage_took(kind, monkeypatch):
    """The vintage's reuse key is the fingerprint of the rows the model learns from: it is handed
    to the training, which records it instead of hashing the same rows a second time."""
    seen = []
    for name in ("train_breach_model", "train_loss_rate_model"):
        monkeypatch.setattr(f"models.vintages.{name}", lambda rows, *args, **kwargs: seen.append(kwargs["data_fingerprint"]))
    training = _training_frame(months=3)
    risk_model_kinds("b", "l", "d")[kind].train(training, complete_label_rows(training), "f" * 64)
    assert seen == ["f" * 64]
