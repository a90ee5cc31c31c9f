"""Experiment: the counts the loss-rate labels are made of, per (supplier, T), from a landing zone.

    uv run python bench/loss_rate_counts.py --landing LZ

``models/labels.py`` sums dollars: ``forward_order_value_6m_usd`` (orders *created* in the
label window, whatever their status) and ``breach_refund_usd_6m`` /
``pre_shipment_refund_usd_6m`` / ``post_delivery_refund_usd_6m`` (refunds of buyer-won disputes
*resolved* in it, on any of the supplier's orders). This script counts the same rows with
exactly the same window (``label_window_end``: opens at T + 1 day 00:00, closes before the
window end + 1 day), outcome (``BREACH_OUTCOME``), reasons (``PRE_SHIPMENT_REASONS``,
``POST_DELIVERY_REASONS``) and exact dollar sums (``EXACT_USD``), claims definition only; the
labels module is not changed. The same query also sums the dollars, and ``checked_counts``
asserts that they equal the training frame's dollar columns row for row (and the total count
``breach_count_6m``): the proof that the counts are over the rows the dollars are.

For ``bench_loss_rate_published.py``'s frequency x severity variants (issue 12; readings in
bench/results/risk_oracle_gap.md, session 17). Cached beside the landing zone
(``<LZ>.counts.parquet``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.labels import (  # noqa: E402
    BREACH_OUTCOME, EXACT_USD, POST_DELIVERY_REASONS, PRE_SHIPMENT_REASONS, label_window_end,
)

# The count columns (never in the pipeline's training set: bench only).
ORDERS_COLUMN = "forward_orders_6m"
WON_COLUMNS = {"total": "won_count_6m", "pre_shipment": "pre_shipment_won_count_6m",
               "post_delivery": "post_delivery_won_count_6m"}
# The amounts of the orders those resolutions refunded (for a severity as a refund share).
WON_AMOUNT_COLUMNS = {"total": "won_order_value_usd_6m", "pre_shipment": "pre_shipment_won_order_value_usd_6m",
                      "post_delivery": "post_delivery_won_order_value_usd_6m"}
COUNT_COLUMNS = [ORDERS_COLUMN, *WON_COLUMNS.values(), *WON_AMOUNT_COLUMNS.values()]
# The same query's dollar sums -> the training frame's label columns they must equal.
DOLLAR_CHECKS = {"order_value_usd": "forward_order_value_6m_usd", "refund_usd": "breach_refund_usd_6m",
                 "pre_refund_usd": "pre_shipment_refund_usd_6m", "post_refund_usd": "post_delivery_refund_usd_6m"}
KEYS = ["as_of_date", "supplier_id"]


def label_periods(as_of_dates: list[date]) -> pa.Table:
    """The label windows exactly as ``models.labels.compute_breach_labels`` builds them."""
    return pa.table({
        "as_of_date": pa.array(as_of_dates, pa.date32()),
        "window_start": pa.array([datetime.combine(d + timedelta(days=1), datetime.min.time()) for d in as_of_dates],
                                 pa.timestamp("us")),
        "window_end_exclusive": pa.array(
            [datetime.combine(label_window_end(d) + timedelta(days=1), datetime.min.time()) for d in as_of_dates],
            pa.timestamp("us")),
    })


def label_counts(con: duckdb.DuckDBPyConnection, as_of_dates: list[date], schema: str = "validated") -> pd.DataFrame:
    """Per (as_of_date, supplier joined by T): orders created in the window, buyer-won resolutions
    in it (all reasons and per cover) with the amounts of the orders they refunded, and the
    dollar sums of the same rows as the labels have them."""
    pre = ", ".join(f"'{r}'" for r in PRE_SHIPMENT_REASONS)
    post = ", ".join(f"'{r}'" for r in POST_DELIVERY_REASONS)
    con.register("_count_periods", label_periods(sorted(set(as_of_dates))))
    try:
        return con.execute(f"""
            WITH won AS (
                SELECT p.as_of_date, o.supplier_id,
                       count(*) AS won,
                       count(*) FILTER (WHERE d.reason IN ({pre})) AS pre_won,
                       count(*) FILTER (WHERE d.reason IN ({post})) AS post_won,
                       sum(d.refund_usd::{EXACT_USD})::DOUBLE AS refund_usd,
                       sum(d.refund_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({pre}))::DOUBLE AS pre_refund_usd,
                       sum(d.refund_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({post}))::DOUBLE AS post_refund_usd,
                       sum(o.amount_usd::{EXACT_USD})::DOUBLE AS won_amount,
                       sum(o.amount_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({pre}))::DOUBLE AS pre_won_amount,
                       sum(o.amount_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({post}))::DOUBLE AS post_won_amount
                FROM {schema}.disputes AS d
                JOIN {schema}.orders AS o USING (order_id)
                JOIN _count_periods AS p
                  ON d.resolved_at >= p.window_start AND d.resolved_at < p.window_end_exclusive
                WHERE d.outcome = '{BREACH_OUTCOME}'
                GROUP BY p.as_of_date, o.supplier_id
            ),
            created AS (
                SELECT p.as_of_date, o.supplier_id, count(*) AS orders,
                       sum(o.amount_usd::{EXACT_USD})::DOUBLE AS order_value_usd
                FROM {schema}.orders AS o
                JOIN _count_periods AS p
                  ON o.created_at >= p.window_start AND o.created_at < p.window_end_exclusive
                GROUP BY p.as_of_date, o.supplier_id
            )
            SELECT p.as_of_date, s.supplier_id,
                   coalesce(c.orders, 0)::BIGINT AS {ORDERS_COLUMN},
                   coalesce(w.won, 0)::BIGINT AS {WON_COLUMNS['total']},
                   coalesce(w.pre_won, 0)::BIGINT AS {WON_COLUMNS['pre_shipment']},
                   coalesce(w.post_won, 0)::BIGINT AS {WON_COLUMNS['post_delivery']},
                   coalesce(w.won_amount, 0.0)::DOUBLE AS {WON_AMOUNT_COLUMNS['total']},
                   coalesce(w.pre_won_amount, 0.0)::DOUBLE AS {WON_AMOUNT_COLUMNS['pre_shipment']},
                   coalesce(w.post_won_amount, 0.0)::DOUBLE AS {WON_AMOUNT_COLUMNS['post_delivery']},
                   coalesce(c.order_value_usd, 0.0)::DOUBLE AS order_value_usd,
                   coalesce(w.refund_usd, 0.0)::DOUBLE AS refund_usd,
                   coalesce(w.pre_refund_usd, 0.0)::DOUBLE AS pre_refund_usd,
                   coalesce(w.post_refund_usd, 0.0)::DOUBLE AS post_refund_usd
            FROM _count_periods AS p
            JOIN {schema}.suppliers AS s ON s.joined_at < p.window_start
            LEFT JOIN won AS w ON w.as_of_date = p.as_of_date AND w.supplier_id = s.supplier_id
            LEFT JOIN created AS c ON c.as_of_date = p.as_of_date AND c.supplier_id = s.supplier_id
            ORDER BY p.as_of_date, s.supplier_id
        """).df()
    finally:
        con.unregister("_count_periods")


def counts_from_landing(landing: Path, as_of_dates: list[date]) -> pd.DataFrame:
    """``label_counts`` on the landing zone, ingested as the pipeline ingests it."""
    from data_contracts import ingest_landing_zone  # noqa: PLC0415  (tooling-only dependency)
    from data_contracts.outcomes import read_outcome_definition  # noqa: PLC0415

    con = duckdb.connect()
    ingest_landing_zone(landing, con)
    outcomes = read_outcome_definition(con, "validated")
    if outcomes.is_performance:
        raise ValueError(f"{landing}: performance outcomes ({outcomes.canonical()}); the counts follow claims only")
    counts = label_counts(con, as_of_dates)
    counts["as_of_date"] = pd.to_datetime(counts["as_of_date"]).dt.date
    return counts


def checked_counts(training: pd.DataFrame, counts: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    """``training`` with the count columns, after asserting that the counting query's dollar sums
    equal the frame's dollar labels on every row (exactly: both are the same exact decimal sums
    cast to DOUBLE) and that its total count equals ``breach_count_6m``. Also the match report."""
    joined = training[KEYS].merge(counts, on=KEYS, how="left", validate="one_to_one", indicator=True)
    missing = int((joined["_merge"] != "both").sum())
    assert missing == 0, f"{missing} training rows without a counted row"
    report: dict[str, object] = {"rows": len(training)}
    for mine, label in DOLLAR_CHECKS.items():
        labelled = pd.to_numeric(training[label], errors="coerce").to_numpy(float)
        known = ~np.isnan(labelled)
        differ = int((joined[mine].to_numpy(float)[known] != labelled[known]).sum())
        assert differ == 0, f"{label}: {differ} rows differ from the counting query's {mine}"
        report[label] = f"{int(known.sum()):,} rows equal, sum {labelled[known].sum():,.2f}"
    breaches = pd.to_numeric(training["breach_count_6m"], errors="coerce").to_numpy(float)
    known = ~np.isnan(breaches)
    differ = int((joined[WON_COLUMNS["total"]].to_numpy(float)[known] != breaches[known]).sum())
    assert differ == 0, f"breach_count_6m: {differ} rows differ from the counted buyer-won resolutions"
    report["breach_count_6m"] = f"{int(known.sum()):,} rows equal, sum {int(breaches[known].sum()):,}"
    report["orders"] = int(joined[ORDERS_COLUMN].sum())
    for cover, column in WON_COLUMNS.items():
        report[f"won_{cover}"] = int(joined[column].sum())
        report[f"refund_share_{cover}"] = round(float(
            joined[{"total": "refund_usd", "pre_shipment": "pre_refund_usd", "post_delivery": "post_refund_usd"}[cover]].sum()
            / joined[WON_AMOUNT_COLUMNS[cover]].sum()), 4)
    return training.assign(**{c: joined[c].to_numpy() for c in COUNT_COLUMNS}), report


def cached_counts(landing: Path, training: pd.DataFrame) -> pd.DataFrame:
    cache = landing.with_name(landing.name + ".counts.parquet")
    if cache.exists():
        counts = pd.read_parquet(cache)
        counts["as_of_date"] = pd.to_datetime(counts["as_of_date"]).dt.date
        return counts
    counts = counts_from_landing(landing, sorted(training["as_of_date"].unique()))
    counts.to_parquet(cache)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    args = parser.parse_args()
    from bench_loss_rate_published import cached_training_frame  # noqa: PLC0415

    training = cached_training_frame(args.landing)
    _, report = checked_counts(training, cached_counts(args.landing, training))
    for name, value in report.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
