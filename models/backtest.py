"""Backtest and what-if of limit policies over already-scored months.

A risk analyst changes policy parameters and re-runs them over history without
retraining: the inputs are the scored rows the pipeline already produced (one per
supplier and month, with ``breach_probability_6m``, for policy v2 ``loss_rate_6m`` and
``default_probability_6m``, and the policy's feature columns) joined with the realised
six-month outcomes (``models.labels``). Policy v1 and v2 replay over the same months
with ``compare_policies`` and are settled by the same rules below, so their figures
compare. Months are replayed in
order, each month's amounts becoming the next month's ``previous_amounts`` so the growth
limit acts as it would have.

Per month (and in total) for the policy and a naive baseline:

``suppliers_covered``
    suppliers with an amount > 0.
``coverage_usd``
    the sum of amounts: the platform's maximum exposure written that month.
``claims``
    covered suppliers with a breach (or, when recorded, a default) in the following six
    months.
``loss_usd``
    the settlement model, per covered supplier-month, capped at the supplier's amount
    (the platform never pays more than the Trade Assurance Amount); gross of any
    recovery from the supplier except as ``loss_given_default`` says:

    * **refunds**. With the labels' ``forward_order_value_6m_usd`` (the supplier's order value
      in the outcome window): the covered share of the window's buyer-won refunds,
      ``refunds x min(1, covered volume / forward_order_value_6m_usd)``, where refunds are
      ``pre_shipment_refund_usd_6m + post_delivery_refund_usd_6m`` when both are
      present, else ``breach_refund_usd_6m``. Without it (older labels): the breach's
      refunds on assured orders (``assured_breach_refund_usd_6m``) when present,
      otherwise all refunds (``breach_refund_usd_6m``), which overstates the loss: a
      conservative choice.
    * **default** (labels with ``default_6m``): a supplier that stopped fulfilling loses
      what is outstanding under its amount, ``min(amount, covered volume) x
      loss_given_default`` (``FeeSchedule``), on top of its refunds.

    The labels' ``loss_rate_6m`` is not read: in a joined history that name is the
    model's prediction (the scored column wins in ``build_backtest_history``); the
    realised rate is the refunds over ``forward_order_value_6m_usd`` above.
``fee_income_usd``
    ``fee_rate x covered volume + fee_per_order x covered orders`` over the next six
    months. The realised ``assured_deal_value_next_6m_usd`` / ``assured_orders_next_6m``
    are used when present; else ``forward_order_value_6m_usd`` times the assured share of
    12-month deal value; otherwise the trailing run-rate (half of
    ``assured_deal_value_12m_usd``, and ``orders_6m`` times the assured share of deal
    value) stands in for them. A limit bounds how much can be sold under it, so
    covered volume is at most ``amount x coverage_turnover_6m`` (the limit is an
    outstanding exposure that is freed as orders complete; ``None`` disables this).
``top_quintile_*``
    the top volume quintile: within each month, the suppliers whose
    ``deal_value_12m_usd`` ranks above the 80th percentile (null: 0). How many there
    are, how many are covered (eligible with amount > 0) and their coverage;
    ``top_quintile_covered_share`` = covered / suppliers. The measure of issue 12: v1
    refused and shrank the largest suppliers.
``net_usd``
    ``fee_income_usd - loss_usd``; ``loss_ratio`` = loss / fees.

Monthly cohorts overlap: the six-month outcome windows of consecutive months share five
months, so the same breach can appear in up to six cohorts (and the same fees too).
Totals are therefore sums of monthly cohort views, fair for comparing policies on the
same history but not an accounting P&L. Months whose outcome window is not complete
(``label_complete`` false) show coverage but null outcomes and are left out of the
outcome totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from models.policy import (
    DECISION_COLUMNS,
    NOT_OPTED_IN,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    REQUIRED_COLUMNS_V2,
    UNRATED_GRADE,
    true_flags,
)
from models.vintage_maturity import VINTAGE_COLUMNS

OUTCOME_COLUMNS: tuple[str, ...] = ("breach_6m", "breach_refund_usd_6m")
# Used when present, approximated otherwise (see the module docstring).
OPTIONAL_OUTCOME_COLUMNS: tuple[str, ...] = (
    "label_complete",
    "assured_breach_refund_usd_6m",
    "assured_deal_value_next_6m_usd",
    "assured_orders_next_6m",
    "forward_order_value_6m_usd",
    "pre_shipment_refund_usd_6m",
    "post_delivery_refund_usd_6m",
    "default_6m",
)
# Score columns policy v2 reads; selected from the scores table when it has them.
V2_SCORE_COLUMNS: tuple[str, ...] = (
    "loss_rate_6m",
    "loss_rate_pre_shipment_6m",
    "loss_rate_post_delivery_6m",
    "default_probability_6m",
)
# The model vintages behind each scored row (published.supplier_scores).
SCORE_VERSION_COLUMNS: tuple[str, ...] = tuple(VINTAGE_COLUMNS.values())
# The columns a replay reads: both formulas' inputs (deal value, opt-in, tenure, ... which the
# baseline's are among) and the optional boosts; of the feature table, only these are read.
HISTORY_FEATURE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((*REQUIRED_COLUMNS, *REQUIRED_COLUMNS_V2, *OPTIONAL_COLUMNS)))
TOP_QUINTILE_PERCENTILE = 0.8
ADDITIVE_METRICS: tuple[str, ...] = (
    "suppliers_scored",
    "suppliers_covered",
    "coverage_usd",
    "claims",
    "loss_usd",
    "default_loss_usd",
    "fee_income_usd",
    "net_usd",
    "top_quintile_suppliers",
    "top_quintile_covered",
    "top_quintile_coverage_usd",
)
BASELINE_NAME = "baseline"
# Columns the backtest writes; a history read back from models.scores may already hold
# some (the pipeline's own decisions), which the replay must not confuse with its own.
BACKTEST_OUTPUT_COLUMNS: tuple[str, ...] = (
    *DECISION_COLUMNS,
    "policy",
    "policy_version",
    "covered",
    "outcome_known",
    "claim",
    "loss_usd",
    "default_loss_usd",
    "fee_income_usd",
    "net_usd",
    "top_volume_quintile",
)


@runtime_checkable
class LimitPolicy(Protocol):
    """Anything the backtest can replay: the configured ``Policy`` or a baseline."""

    @property
    def version(self) -> str: ...

    def apply(
        self, scored: pd.DataFrame, previous_amounts: pd.Series | None = None
    ) -> pd.DataFrame: ...


@dataclass(frozen=True)
class FlatShareBaseline:
    """The naive policy to beat: a flat share of 12-month deal value for every opted-in
    supplier, whatever its risk (null deal value: 0; null opt-in: not opted in)."""

    share_of_deal_value_12m: float = 0.10

    @property
    def version(self) -> str:
        return f"flat-{self.share_of_deal_value_12m:g}-of-deal-value"

    def apply(
        self, scored: pd.DataFrame, previous_amounts: pd.Series | None = None
    ) -> pd.DataFrame:
        opted_in = true_flags(scored, "opted_in")
        deal = pd.to_numeric(scored["deal_value_12m_usd"], errors="coerce").fillna(0.0)
        deal_value = np.clip(deal.to_numpy(dtype="float64"), 0, None)
        amount = np.where(opted_in, deal_value * self.share_of_deal_value_12m, 0.0)
        out = scored.copy()
        out["eligible"] = opted_in
        out["ineligible_reasons"] = [[] if ok else [NOT_OPTED_IN] for ok in opted_in]
        out["risk_grade"] = UNRATED_GRADE
        out["trade_assurance_amount_usd"] = amount
        out["amount_drivers"] = [[] for _ in range(len(out))]
        return out


@dataclass(frozen=True)
class FeeSchedule:
    """Programme fees and how much covered trade a limit can carry."""

    fee_rate: float = 0.03
    fee_per_order_usd: float = 1.0
    # Times a limit can be used over six months (None: covered volume not limited).
    coverage_turnover_6m: float | None = 6.0
    # Share of the amount outstanding at a supplier's default that is not recovered.
    loss_given_default: float = 0.5


@dataclass
class BacktestResult:
    """One policy (and the baseline) replayed over history.

    ``decisions``: one row per supplier and month with the policy's decision, outcomes
    and per-row ``loss_usd``/``fee_income_usd``, for both (column ``policy``).
    ``monthly``: one row per month and policy. ``totals``: one row per policy.
    """

    policy_version: str
    baseline_version: str | None
    decisions: pd.DataFrame
    monthly: pd.DataFrame
    totals: pd.DataFrame
    fees: FeeSchedule = field(default_factory=FeeSchedule)

    def total(self, metric: str, policy: str = "policy") -> float:
        return float(self.totals.set_index("policy").loc[policy, metric])


# What a side-by-side comparison shows per policy (``PolicyComparison.side_by_side``).
SIDE_BY_SIDE_METRICS: tuple[str, ...] = (
    "coverage_usd",
    "claims",
    "loss_usd",
    "fee_income_usd",
    "loss_ratio",
    "top_quintile_covered_share",
    "top_quintile_coverage_usd",
)


@dataclass
class PolicyComparison:
    """What-if: several policies over the same history.

    ``totals``/``monthly`` are stacked with ``policy_version``; ``amounts`` is wide:
    one row per supplier and month, one amount column per policy version.
    """

    results: dict[str, BacktestResult]
    totals: pd.DataFrame
    monthly: pd.DataFrame
    amounts: pd.DataFrame

    def side_by_side(self) -> pd.DataFrame:
        """One row per ``SIDE_BY_SIDE_METRICS`` metric, one column per policy version
        (the baseline last): e.g. v1 against v2 on the same months."""
        table = self.totals.set_index("policy_version")[list(SIDE_BY_SIDE_METRICS)]
        return table.T.rename_axis("metric").rename_axis(None, axis=1)


def _check_history(history: pd.DataFrame) -> None:
    # The risk columns are the policy's to check (v1 and v2 read different ones).
    required = ("as_of_date", "supplier_id", *OUTCOME_COLUMNS)
    missing = [c for c in required if c not in history.columns]
    if missing:
        raise ValueError(f"backtest: history lacks column(s) {missing}")
    if history.duplicated(["as_of_date", "supplier_id"]).any():
        raise ValueError("backtest: history has more than one row per (as_of_date, supplier_id)")


def build_backtest_history(scored: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Join scored months (``models.scores`` or features + a probability) with the
    realised outcomes of ``models.labels.compute_breach_labels`` into a backtest input.

    Keys are normalised to ``datetime.date`` so DuckDB DATE/TIMESTAMP and pandas
    datetimes join alike; decisions already in ``scored`` are dropped (the backtest
    re-decides); a scored row without a label row has unknown outcomes
    (``label_complete`` false).
    """
    keys = ["as_of_date", "supplier_id"]
    scored = scored.drop(columns=[c for c in BACKTEST_OUTPUT_COLUMNS if c in scored.columns])
    label_columns = [c for c in labels.columns if c not in scored.columns or c in keys]
    left, right = scored.copy(), labels[label_columns].copy()
    for frame in (left, right):
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    history = left.merge(right, on=keys, how="left", validate="one_to_one")
    unlabelled = history["breach_6m"].isna() if "breach_6m" in history else None
    if "label_complete" in history.columns:
        history["label_complete"] = true_flags(history, "label_complete")
    elif unlabelled is not None:
        history["label_complete"] = ~unlabelled.to_numpy()
    return history


def replay_policy(history: pd.DataFrame, policy: LimitPolicy) -> pd.DataFrame:
    """Apply ``policy`` month by month in date order, carrying previous amounts.

    As in the pipeline, previous amounts are those of the calendar month before: after
    a gap in the history, and for a supplier absent last month, it is a first assessment.
    """
    _check_history(history)
    decided = []
    previous: pd.Series | None = None
    previous_month: pd.Period | None = None
    for as_of_date, month in history.sort_values(["as_of_date", "supplier_id"]).groupby(
        "as_of_date", sort=True
    ):
        this_month = pd.Timestamp(as_of_date).to_period("M")
        if previous_month is None or this_month - previous_month != 1 * this_month.freq:
            previous = None
        previous_month = this_month
        out = policy.apply(month.reset_index(drop=True), previous)
        previous = pd.Series(
            out["trade_assurance_amount_usd"].to_numpy(), index=out["supplier_id"].to_numpy()
        )
        decided.append(out)
    if not decided:
        return policy.apply(history.iloc[:0].reset_index(drop=True), None)
    return pd.concat(decided, ignore_index=True)


def _numeric_or_zero(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame))
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    return np.nan_to_num(values, nan=0.0)


def _column_or(frame: pd.DataFrame, column: str, default: np.ndarray) -> np.ndarray:
    if column not in frame.columns:
        return default
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    return np.where(np.isnan(values), default, values)


def _present(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def settle_outcomes(decisions: pd.DataFrame, fees: FeeSchedule) -> pd.DataFrame:
    """Per supplier-month claims, loss and fee income under the decided amounts
    (the settlement model of the module docstring)."""
    out = decisions.copy()
    n = len(out)
    amount = out["trade_assurance_amount_usd"].to_numpy(dtype="float64")
    covered = amount > 0
    complete = (
        true_flags(out, "label_complete") if "label_complete" in out.columns else np.ones(n, bool)
    )
    breach = true_flags(out, "breach_6m")
    default = true_flags(out, "default_6m") if "default_6m" in out.columns else np.zeros(n, bool)
    all_refunds = np.nan_to_num(
        pd.to_numeric(out["breach_refund_usd_6m"], errors="coerce").to_numpy(dtype="float64")
    )

    assured_12m = _numeric_or_zero(out, "assured_deal_value_12m_usd")
    deal_12m = _numeric_or_zero(out, "deal_value_12m_usd")
    orders_6m = _numeric_or_zero(out, "orders_6m")
    with np.errstate(divide="ignore", invalid="ignore"):
        assured_share = np.where(deal_12m > 0, np.clip(assured_12m / deal_12m, 0, 1), 0.0)
    run_rate = assured_12m / 2
    if "forward_order_value_6m_usd" in out.columns:
        realised = pd.to_numeric(out["forward_order_value_6m_usd"], errors="coerce").to_numpy(
            dtype="float64")
        run_rate = np.where(np.isnan(realised), run_rate, realised * assured_share)
    volume = np.clip(_column_or(out, "assured_deal_value_next_6m_usd", run_rate), 0, None)
    orders = np.clip(_column_or(out, "assured_orders_next_6m", orders_6m * assured_share), 0, None)
    if fees.coverage_turnover_6m is not None:
        carried = np.minimum(volume, amount * fees.coverage_turnover_6m)
        with np.errstate(divide="ignore", invalid="ignore"):
            orders = np.where(volume > 0, orders * carried / volume, 0.0)
        volume = carried

    if "forward_order_value_6m_usd" in out.columns:
        # The covered share of the window's refunds (both coverages when split).
        order_value = np.clip(_numeric_or_zero(out, "forward_order_value_6m_usd"), 0, None)
        if _present(out, "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m"):
            split = (_numeric_or_zero(out, "pre_shipment_refund_usd_6m")
                     + _numeric_or_zero(out, "post_delivery_refund_usd_6m"))
            all_refunds = np.where(
                out["pre_shipment_refund_usd_6m"].isna() & out["post_delivery_refund_usd_6m"].isna(),
                all_refunds, split,
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            covered_share = np.where(order_value > 0, np.clip(volume / order_value, 0, 1), 0.0)
        refund_loss = np.clip(all_refunds, 0, None) * covered_share
    else:
        refunds = np.clip(_column_or(out, "assured_breach_refund_usd_6m", all_refunds), 0, None)
        refund_loss = np.where(breach, refunds, 0.0)
    default_loss = np.where(default, np.minimum(amount, volume) * fees.loss_given_default, 0.0)

    claim = covered & (breach | default | (refund_loss > 0))
    loss = np.where(covered, np.minimum(refund_loss + default_loss, amount), 0.0)
    fee = np.where(covered, fees.fee_rate * volume + fees.fee_per_order_usd * orders, 0.0)
    out["covered"] = covered
    out["outcome_known"] = complete
    out["claim"] = np.where(complete, claim, False)
    out["loss_usd"] = np.where(complete, loss, np.nan)
    out["default_loss_usd"] = np.where(
        complete, np.where(covered, np.minimum(default_loss, amount), 0.0), np.nan
    )
    out["fee_income_usd"] = np.where(complete, fee, np.nan)
    out["net_usd"] = out["fee_income_usd"] - out["loss_usd"]
    return out


def mark_top_volume_quintile(decisions: pd.DataFrame) -> pd.DataFrame:
    """Add ``top_volume_quintile``: within each (policy, month), deal_value_12m_usd
    (null: 0) ranks above ``TOP_QUINTILE_PERCENTILE`` (average rank for ties)."""
    out = decisions.copy()
    deal = pd.Series(_numeric_or_zero(out, "deal_value_12m_usd"), index=out.index)
    keys = [c for c in ("policy", "as_of_date") if c in out.columns]
    rank = deal.groupby([out[k] for k in keys]).rank(method="average", pct=True)
    out["top_volume_quintile"] = (rank > TOP_QUINTILE_PERCENTILE).to_numpy()
    return out


def summarise_months(settled: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, as_of_date); outcome metrics null for incomplete months."""
    rows = []
    for (policy, as_of_date), month in settled.groupby(["policy", "as_of_date"], sort=True):
        known = bool(month["outcome_known"].all())
        covered = month["covered"]
        rows.append(
            {
                "policy": policy,
                "policy_version": month["policy_version"].iloc[0],
                "as_of_date": as_of_date,
                "outcomes_complete": known,
                "suppliers_scored": len(month),
                "suppliers_covered": int(covered.sum()),
                "coverage_usd": float(month["trade_assurance_amount_usd"].sum()),
                "claims": int(month["claim"].sum()) if known else np.nan,
                "loss_usd": float(month["loss_usd"].sum()) if known else np.nan,
                "default_loss_usd": float(month["default_loss_usd"].sum()) if known else np.nan,
                "fee_income_usd": float(month["fee_income_usd"].sum()) if known else np.nan,
                "top_quintile_suppliers": int(month["top_volume_quintile"].sum()),
                "top_quintile_covered": int((month["top_volume_quintile"] & covered).sum()),
                "top_quintile_coverage_usd": float(
                    month.loc[month["top_volume_quintile"], "trade_assurance_amount_usd"].sum()
                ),
            }
        )
    monthly = pd.DataFrame(rows)
    if monthly.empty:
        return pd.DataFrame(columns=["policy", "policy_version", "as_of_date",
                                     "outcomes_complete", *ADDITIVE_METRICS, *RATIOS])
    monthly["net_usd"] = monthly["fee_income_usd"] - monthly["loss_usd"]
    _add_ratios(monthly)
    return monthly


RATIOS: tuple[str, ...] = ("loss_ratio", "top_quintile_covered_share")


def _add_ratios(frame: pd.DataFrame) -> None:
    frame["loss_ratio"] = _ratio(frame["loss_usd"], frame["fee_income_usd"])
    frame["top_quintile_covered_share"] = _ratio(
        frame["top_quintile_covered"].astype("float64"),
        frame["top_quintile_suppliers"].astype("float64"),
    )


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator > 0)


def summarise_totals(monthly: pd.DataFrame) -> pd.DataFrame:
    """Sums of the monthly additive metrics per policy (outcomes: complete months only)."""
    totals = (
        monthly.groupby(["policy", "policy_version"], sort=False)
        .agg(
            months=("as_of_date", "size"),
            months_with_outcomes=("outcomes_complete", "sum"),
            **{m: (m, "sum") for m in ADDITIVE_METRICS},
        )
        .reset_index()
    )
    _add_ratios(totals)
    return totals


def run_backtest(
    history: pd.DataFrame,
    policy: LimitPolicy,
    baseline: LimitPolicy | None = FlatShareBaseline(),
    fees: FeeSchedule = FeeSchedule(),
) -> BacktestResult:
    """Replay ``policy`` (and ``baseline``, unless None) over ``history``.

    ``history``: one row per (as_of_date, supplier_id) with the risk columns the
    policy reads (v1: ``breach_probability_6m``; v2: ``loss_rate_6m``,
    ``default_probability_6m``), the policy's feature columns and the outcome columns (``OUTCOME_COLUMNS``, optional
    ``OPTIONAL_OUTCOME_COLUMNS``), e.g. from ``build_backtest_history``. Decision
    columns already present (a history read back from ``models.scores``) are ignored.
    """
    _check_history(history)
    history = history.drop(columns=[c for c in BACKTEST_OUTPUT_COLUMNS if c in history.columns])
    contenders: list[tuple[str, LimitPolicy]] = [("policy", policy)]
    if baseline is not None:
        contenders.append((BASELINE_NAME, baseline))
    settled = []
    for label, contender in contenders:
        decided = replay_policy(history, contender)
        decided.insert(0, "policy", label)
        decided.insert(1, "policy_version", contender.version)
        settled.append(settle_outcomes(decided, fees))
    decisions = mark_top_volume_quintile(pd.concat(settled, ignore_index=True))
    monthly = summarise_months(decisions)
    return BacktestResult(
        policy_version=policy.version,
        baseline_version=None if baseline is None else baseline.version,
        decisions=decisions,
        monthly=monthly,
        totals=summarise_totals(monthly),
        fees=fees,
    )


def compare_policies(
    history: pd.DataFrame,
    policies: Sequence[LimitPolicy],
    baseline: LimitPolicy | None = FlatShareBaseline(),
    fees: FeeSchedule = FeeSchedule(),
) -> PolicyComparison:
    """What-if: replay several policies over the same scored history (no retraining).

    Typical use: ``compare_policies(history, [policy, policy.replace(**{...})])``.
    """
    if not policies:
        raise ValueError("compare_policies: pass at least one policy")
    versions = [p.version for p in policies]
    if len(set(versions)) != len(versions):
        raise ValueError(
            f"compare_policies: policies share a version {versions}: identical configs"
        )
    results: dict[str, BacktestResult] = {}
    for i, policy in enumerate(policies):
        # The baseline is the same for every policy: compute it once.
        results[policy.version] = run_backtest(
            history, policy, baseline=baseline if i == 0 else None, fees=fees
        )
    first = results[versions[0]]
    frames_totals = [r.totals[r.totals["policy"] == "policy"] for r in results.values()]
    frames_monthly = [r.monthly[r.monthly["policy"] == "policy"] for r in results.values()]
    if baseline is not None:
        frames_totals.append(first.totals[first.totals["policy"] == BASELINE_NAME])
        frames_monthly.append(first.monthly[first.monthly["policy"] == BASELINE_NAME])
    totals = pd.concat(frames_totals, ignore_index=True).drop(columns="policy")
    monthly = pd.concat(frames_monthly, ignore_index=True).drop(columns="policy")

    amounts = None
    for version, result in results.items():
        mine = result.decisions[result.decisions["policy"] == "policy"][
            ["as_of_date", "supplier_id", "trade_assurance_amount_usd"]
        ].rename(columns={"trade_assurance_amount_usd": version})
        amounts = mine if amounts is None else amounts.merge(
            mine, on=["as_of_date", "supplier_id"], how="outer"
        )
    return PolicyComparison(results=results, totals=totals, monthly=monthly, amounts=amounts)


def load_scored_history(
    con,
    data_horizon,
    scores_table: str = "models.scores",
    features_table: str = "features.supplier_features",
    schema: str = "validated",
) -> pd.DataFrame:
    """Already-scored months with the features a replay reads (``HISTORY_FEATURE_COLUMNS``) and
    realised outcomes, ready for ``run_backtest``/``compare_policies``: a what-if needs no
    retraining or rescoring."""
    from models.realised_outcomes import realised_outcomes

    score_columns = {row[0] for row in con.execute(f"DESCRIBE {scores_table}").fetchall()}
    feature_columns = {row[0] for row in con.execute(f"DESCRIBE {features_table}").fetchall()}
    # Each month's own scores and the vintages that made them (models/vintages.py): every
    # outcome replayed was unknown to the model that scored its month. Only the features a
    # replay reads: every month of whole feature rows was most of the backtest's memory.
    selected = ", ".join(
        [f"f.{c}" for c in HISTORY_FEATURE_COLUMNS if c in feature_columns and c not in ("as_of_date", "supplier_id")]
        + [f"s.{c}" for c in ("breach_probability_6m", *V2_SCORE_COLUMNS, *SCORE_VERSION_COLUMNS) if c in score_columns]
    )
    scored = con.execute(
        f"""SELECT as_of_date, supplier_id, {selected}
            FROM {scores_table} s JOIN {features_table} f USING (as_of_date, supplier_id)
            ORDER BY as_of_date, supplier_id"""
    ).df()
    if scored.empty:
        raise ValueError(f"no scored months in {scores_table}: run the pipeline first (`assurance run`)")
    months = sorted(pd.to_datetime(scored["as_of_date"]).dt.date.unique())
    labels = realised_outcomes(con, months, data_horizon, schema).to_pandas()
    return build_backtest_history(scored, labels)
