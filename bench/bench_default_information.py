"""Experiment (issue 12): where the default model's AUC gap to the oracle lives.

    uv run python bench/bench_default_information.py --landing LZ   # learners on the evaluation window
    uv run python bench/bench_default_information.py --home H       # a home's published months, decomposed

``--landing``: the default model (training.yaml, the catalogue's inputs, label ``default_6m``) on
the landing zone's training frame (cached as ``bench/bench_loss_rate_published.py`` does), next to
the same learner handed more: three order-flow inputs computed here from the landing zone at T
(orders pending and falling due in the label's window, days since the last order, the share of
orders due in the last 60 days left unshipped: all known at T); the label window's own count of
orders falling due (``orders_due_6m``: the future, a diagnostic of how much the label's volume
threshold carries); the generator's latent state (the informed learner); and both. AUC on the
evaluation window against the oracle's on the same rows.

``--home``: every published supplier-month with a complete outcome (each scored by the vintage
known at its month end, ``models.evaluation.published_forecasts``), AUC of the published default
probability and of the oracle, overall and by group: fraudulent at T or not (the truth's flag),
months from T to the fraud onset of the positives, and the supplier's orders in the six months
before T; calibration by those orders; and the AUC had the dormant and small been scored otherwise
(`what_if`). Prints Markdown; readings in bench/results/risk_oracle_gap.md (session 19).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_loss_rate_published import cached_training_frame  # noqa: E402
from features import FEATURES  # noqa: E402
from models.evaluate_synthetic import training_frame_from_landing  # noqa: E402
from models.evaluation import LATENT_STATE_COLUMNS, published_forecasts, read_truth  # noqa: E402
from models.labels import DEFAULT_GRACE_DAYS, DEFAULT_PROMISE_LEAD_DAYS  # noqa: E402
from models.model_features import ModelFeature, resolve_model_features  # noqa: E402
from models.training import TrainingConfig, train_breach_model  # noqa: E402
from models.vintages import vintages_from_table  # noqa: E402

DEFAULT_LABEL = "default_6m"
ORACLE = "default_probability_6m"
ORDER_FLOW_INPUTS = ("log_pending_due_at_t", "days_since_last_order", "unshipped_share_60d")
FUTURE_ORDERS_DUE = "log_orders_due_6m"  # from the label window: not known at T


def truth_frame(landing: Path) -> pd.DataFrame:
    """The generator's oracle, latent state and fraud flag per supplier-month."""
    return read_truth(landing, [ORACLE, *LATENT_STATE_COLUMNS]).astype({"is_fraudulent": bool})


def order_flow_at(landing: Path, months: list) -> pd.DataFrame:
    """Per supplier and month end T, from the orders known at T: orders not shipped or cancelled by
    T whose promised day falls due inside the label's window (the part of its denominator already
    booked), days since the last order, and of the orders created in the last 60 days and due by T,
    the share not shipped by T and not cancelled by the buyer."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW o AS SELECT * FROM read_parquet('{landing}/orders/*.parquet')")
    con.register("m", pd.DataFrame({"as_of_date": pd.to_datetime(months)}))
    promised = f"coalesce(o.promised_ship_by, o.created_at + INTERVAL {DEFAULT_PROMISE_LEAD_DAYS} DAY)"
    flow = con.execute(f"""
        WITH t AS (SELECT as_of_date, (as_of_date + INTERVAL 1 DAY)::TIMESTAMPTZ AS t_end,
                          (as_of_date + INTERVAL 6 MONTH)::TIMESTAMPTZ - INTERVAL {DEFAULT_GRACE_DAYS - 1} DAY AS due_end
                   FROM m)
        SELECT o.supplier_id, t.as_of_date::DATE AS as_of_date,
          count(*) FILTER (WHERE {promised} >= t.t_end AND {promised} < t.due_end
                             AND (o.shipped_at IS NULL OR o.shipped_at >= t.t_end)
                             AND (o.cancelled_at IS NULL OR o.cancelled_at >= t.t_end)) AS pending_due_at_t,
          date_diff('day', max(o.created_at), t.t_end) AS days_since_last_order,
          count(*) FILTER (WHERE o.created_at >= t.t_end - INTERVAL 60 DAY AND {promised} < t.t_end
                             AND (o.shipped_at IS NULL OR o.shipped_at >= t.t_end)
                             AND coalesce(o.cancelled_by, '') <> 'buyer') AS unshipped_due_60d,
          count(*) FILTER (WHERE o.created_at >= t.t_end - INTERVAL 60 DAY AND {promised} < t.t_end) AS due_60d
        FROM o JOIN t ON o.created_at < t.t_end AND o.created_at >= t.t_end - INTERVAL 24 MONTH
        GROUP BY o.supplier_id, t.as_of_date, t.t_end, t.due_end
    """).df()
    flow["as_of_date"] = pd.to_datetime(flow["as_of_date"]).dt.date
    return flow.assign(
        log_pending_due_at_t=np.log1p(flow["pending_due_at_t"]),
        unshipped_share_60d=flow["unshipped_due_60d"] / flow["due_60d"].where(flow["due_60d"] > 0),
    )[["supplier_id", "as_of_date", *ORDER_FLOW_INPUTS]]


def learners(landing: Path) -> pd.DataFrame:
    training = cached_training_frame(landing)
    truth = truth_frame(landing)
    frame = training.merge(order_flow_at(landing, sorted(training["as_of_date"].unique())),
                           on=["supplier_id", "as_of_date"], how="left")
    frame["days_since_last_order"] = frame["days_since_last_order"].fillna(24 * 31)  # no order in two years
    frame[FUTURE_ORDERS_DUE] = np.log1p(pd.to_numeric(frame["orders_due_6m"], errors="coerce"))
    latent = truth[["supplier_id", "as_of_date", ORACLE, *LATENT_STATE_COLUMNS]].astype({"is_fraudulent": float})
    frame = frame.merge(latent, on=["supplier_id", "as_of_date"], how="left", validate="many_to_one")
    base = resolve_model_features(FEATURES, training)
    config = TrainingConfig.from_yaml()
    variants = {
        "model (the pipeline's inputs)": (),
        "+ order flow at T": ORDER_FLOW_INPUTS,
        "+ the window's orders due (future)": (FUTURE_ORDERS_DUE,),
        "informed learner (+ latent state)": LATENT_STATE_COLUMNS,
        "informed + the window's orders due (future)": (*LATENT_STATE_COLUMNS, FUTURE_ORDERS_DUE),
    }
    lines = []
    for name, extra in variants.items():
        inputs = [*base, *(ModelFeature(column, 0, False) for column in extra)]
        result = train_breach_model(frame, inputs, config, label_column=DEFAULT_LABEL, size_non_increasing=True)
        rows = result.evaluation_frame
        outcome = rows[DEFAULT_LABEL].astype(int)
        auc, oracle = roc_auc_score(outcome, rows["predicted_probability"]), roc_auc_score(outcome, rows[ORACLE])
        lines.append({"world": landing.name, "learner": name, "rows": len(rows), "events": int(outcome.sum()),
                      "auc": auc, "oracle_auc": oracle, "gap_to_oracle": oracle - auc})
        print(pd.DataFrame([lines[-1]]).round(4).to_markdown(index=False), flush=True)
    return pd.DataFrame(lines)


def auc_line(group: str, rows: pd.DataFrame) -> dict[str, object]:
    outcome = rows[DEFAULT_LABEL].astype(int)
    both = 0 < outcome.sum() < len(rows)
    model = roc_auc_score(outcome, rows["predicted_probability"]) if both else np.nan
    oracle = roc_auc_score(outcome, rows["oracle"]) if both else np.nan
    return {"group": group, "rows": len(rows), "events": int(outcome.sum()), "model_auc": model, "oracle_auc": oracle,
            "gap": oracle - model, "model_median": rows["predicted_probability"].median(),
            "oracle_median": rows["oracle"].median()}


def months_to_onset(rows: pd.DataFrame, truth: pd.DataFrame, horizon: int = 6) -> pd.Series:
    """Months from T to the first month end at which the truth calls the supplier fraudulent
    (0: already at T), within the horizon; NaN: not within it."""
    flags = truth.set_index(["supplier_id", "as_of_date"])["is_fraudulent"]
    onset = pd.Series(np.nan, index=rows.index)
    for k in range(horizon, -1, -1):  # the smallest k wins
        month = (pd.to_datetime(rows["as_of_date"]) + pd.offsets.MonthEnd(k)).dt.date if k else rows["as_of_date"]
        fraud = flags.reindex(pd.MultiIndex.from_arrays([rows["supplier_id"], month])).fillna(False).to_numpy(bool)
        onset[fraud] = k
    return onset


def published_rows(home: Path) -> pd.DataFrame:
    """The home's published supplier-months with complete outcomes, the oracle, the fraud flag
    and months to fraud onset from the truth, and the order flow at T."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        scores = con.execute("SELECT * FROM published.supplier_scores").df()
        vintages = vintages_from_table(con.execute("SELECT * FROM models.vintages").df())
    landing = home / "landing"
    truth = truth_frame(landing)
    rows = published_forecasts(training_frame_from_landing(landing), scores, vintages).evaluation_frame
    rows = rows.merge(truth[["supplier_id", "as_of_date", ORACLE, "is_fraudulent"]].rename(columns={ORACLE: "oracle"}),
                      on=["supplier_id", "as_of_date"], how="left", validate="one_to_one")
    rows["months_to_onset"] = months_to_onset(rows, truth)
    flow = order_flow_at(landing, sorted(rows["as_of_date"].unique()))
    return rows.merge(flow, on=["supplier_id", "as_of_date"], how="left", validate="one_to_one")


def order_bands(rows: pd.DataFrame) -> pd.Series:
    return pd.cut(pd.to_numeric(rows["orders_6m"], errors="coerce").fillna(0), [-1, 0, 5, 20, 60, np.inf])


def published_decomposition(rows: pd.DataFrame) -> pd.DataFrame:
    """AUC of the published default probability and of the oracle, overall and by group."""
    negatives = rows[rows[DEFAULT_LABEL].astype(int) == 0]
    lines = [auc_line("all published months", rows),
             auc_line("not fraudulent at T", rows[~rows["is_fraudulent"]]),
             auc_line("fraudulent at T", rows[rows["is_fraudulent"]])]
    positives = rows[rows[DEFAULT_LABEL].astype(int) == 1]
    for k in range(7):
        part = positives[positives["months_to_onset"] == k]
        if len(part):
            lines.append(auc_line(f"positives with fraud onset {k} months after T, against all negatives",
                                  pd.concat([part, negatives])))
    lines.append(auc_line("positives with no fraud within 6 months, against all negatives",
                          pd.concat([positives[positives["months_to_onset"].isna()], negatives])))
    for band, part in rows.groupby(order_bands(rows), observed=True):
        lines.append(auc_line(f"orders in the six months before T: {band}", part))
    return pd.DataFrame(lines)


def calibration_by_orders(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean published probability, oracle and realised default rate per band of orders before T."""
    table = rows.groupby(order_bands(rows), observed=True).agg(
        rows=(DEFAULT_LABEL, "size"), realised=(DEFAULT_LABEL, "mean"), model=("predicted_probability", "mean"),
        oracle=("oracle", "mean"))
    return table.assign(model_over_realised=table["model"] / table["realised"],
                        oracle_over_realised=table["oracle"] / table["realised"]).reset_index()


def what_if(rows: pd.DataFrame) -> pd.DataFrame:
    """AUC of the published probabilities changed for the small and dormant: suppliers without an
    order in the six months set to a constant; or every probability times a gate from the label's
    own form, P(at least DEFAULT_MIN_ORDERS_DUE orders due), orders due ~ Poisson(pending due at T
    + months x the recent monthly order rate)."""
    from scipy.stats import poisson  # noqa: PLC0415 (experiment only)

    from models.labels import DEFAULT_MIN_ORDERS_DUE  # noqa: PLC0415

    outcome = rows[DEFAULT_LABEL].astype(int)
    published = rows["predicted_probability"].to_numpy(float)
    lines = [{"change": "none (as published)", "auc": roc_auc_score(outcome, published)}]
    dormant = (pd.to_numeric(rows["orders_6m"], errors="coerce").fillna(0) == 0).to_numpy()
    for value in (0.002, 0.005, 0.01):
        lines.append({"change": f"no order in six months: probability {value}",
                      "auc": roc_auc_score(outcome, np.where(dormant, value, published))})
    pending = np.expm1(rows["log_pending_due_at_t"].fillna(0).to_numpy(float))
    rates = {"orders this month": rows["orders_this_month"],
             "mean of this and the previous month": (rows["orders_this_month"] + rows["orders_previous_month"]) / 2,
             "orders per trading month, six months": rows["orders_per_month_6m"]}
    for name, rate in rates.items():
        for months in (3.0, 5.5):
            expected = pending + months * pd.to_numeric(rate, errors="coerce").fillna(0).to_numpy(float)
            gate = poisson.sf(DEFAULT_MIN_ORDERS_DUE - 1, expected)
            lines.append({"change": f"times P(>= {DEFAULT_MIN_ORDERS_DUE} due), {months:g} months of {name}",
                          "auc": roc_auc_score(outcome, published * gate)})
    return pd.DataFrame(lines).assign(oracle_auc=roc_auc_score(outcome, rows["oracle"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--landing", type=Path, help="a generated landing zone: learners on its evaluation window")
    source.add_argument("--home", type=Path, help="a demo home: its published months decomposed")
    args = parser.parse_args()
    if args.landing:
        print("\n### All learners\n\n" + learners(args.landing).round(4).to_markdown(index=False))
    else:
        rows = published_rows(args.home)
        print(f"{args.home}: published default probabilities against the oracle\n")
        print(published_decomposition(rows).round(4).to_markdown(index=False))
        print("\nCalibration by orders in the six months before T\n")
        print(calibration_by_orders(rows).round(4).to_markdown(index=False))
        print("\nWhat if the small and dormant were scored otherwise\n")
        print(what_if(rows).round(4).to_markdown(index=False))


if __name__ == "__main__":
    main()
