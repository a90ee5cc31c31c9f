"""Experiment: the loss rate as the pipeline publishes it, against the generator's oracle, per variant.

    uv run python bench/bench_loss_rate_published.py --landing LZ [--variants current,warmup6] [--diagnose]

Retrains the loss-rate model at every quarterly vintage (models/vintages.yaml) with
`models.vintages.rows_known_at`, scores each month end with complete outcomes by the newest
vintage known at it (what `published.supplier_scores` holds; vintage gate refusals are not
replayed), and judges those rows with the same comparison as `models.evaluate_synthetic --home`
(`models.evaluation.loss_rate_against_oracle`): per decile of the published rate, model /
oracle - 1 and model / realised - 1, the worst decile gap, Spearman with the oracle.
``--level-refresh K [--trend N]`` adds each variant with its level refreshed every month on the K
newest complete outcome months (`level_refreshed`). ``--diagnose`` adds, for the first variant, the gap per vintage and decile, who the under-forecast
rows are, and the same late months scored by every earlier vintage. Prints Markdown; the
readings are in bench/results/risk_oracle_gap.md. The training frame is cached beside the
landing zone (``<LZ>.training.parquet``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features import FEATURES  # noqa: E402
from models.evaluate_synthetic import training_frame_from_landing  # noqa: E402
from models.evaluation import PublishedForecasts, RISK_ORACLE_COLUMNS, loss_rate_against_oracle, read_truth  # noqa: E402
from models.loss_rate import (  # noqa: E402
    COVERAGE_RATE_COLUMNS, COVERAGE_REFUND_COLUMNS, COVERAGES, EXPOSURE_COLUMN, LOSS_RATE_COLUMN, TOTAL_REFUND_COLUMN,
    coverage_refunds, exposure_rows, loss_config_from_yaml, train_loss_rate_model,
)
from models.labels import add_months  # noqa: E402
from models.model_features import SIZE_FEATURES  # noqa: E402
from models.training import complete_label_rows  # noqa: E402
from models.vintages import VintageConfig, rows_known_at, vintage_as_of_dates  # noqa: E402
from loss_rate_counts import (  # noqa: E402
    ORDERS_COLUMN, WON_AMOUNT_COLUMNS, WON_COLUMNS, cached_counts, checked_counts,
)

DEFAULT_LABEL = "default_6m"

@dataclass(frozen=True)
class Variant:
    """One way of training the loss-rate vintages."""

    config: Callable = lambda c: c  # loss_rate.yaml's TrainingConfig -> the variant's
    drop_inputs: frozenset = frozenset()  # catalogue inputs the variant does not read
    halflife_months: float | None = None  # training rows weighted 2^(-age / halflife) (age from the newest month)
    portfolio_blend: float | None = None  # None: loss_rate.yaml's; else the model's portfolio_blend
    # "dollars": the pipeline's Tweedie boosters on refund dollars per order dollar; "counts":
    # Poisson boosters on buyer-won resolutions per order, times a severity (`frequency_model`)
    target: str = "dollars"
    severity: str = "window"  # counts only: "window" or "share" (`severities`)


VARIANTS = {
    "current": Variant(),  # models/loss_rate.yaml as it is
    "noblend": Variant(portfolio_blend=0.0),  # the scaled boosters alone (before 2026-12-06)
    # Hypothesis 1: early months (truncated feature windows, young trading history) mislead.
    "warmup3": Variant(config=lambda c: replace(c, feature_warmup_months=3), portfolio_blend=0.0),
    "warmup6": Variant(config=lambda c: replace(c, feature_warmup_months=6), portfolio_blend=0.0),
    "recency6": Variant(halflife_months=6, portfolio_blend=0.0),
    "recency3": Variant(halflife_months=3, portfolio_blend=0.0),
    # Hypothesis 2: not shrunk enough toward the portfolio (credibility with a constant weight).
    "blend3": Variant(portfolio_blend=0.03),
    "blend5": Variant(portfolio_blend=0.05),
    "blend7": Variant(portfolio_blend=0.07),
    "blend10": Variant(portfolio_blend=0.10),
    # The low deciles are the largest suppliers: every size input is held non-increasing, and
    # a dozen of them stacked in log space can push a big clean supplier's rate very low.
    "nosize": Variant(drop_inputs=SIZE_FEATURES, portfolio_blend=0.0),
    "nosize_blend5": Variant(drop_inputs=SIZE_FEATURES, portfolio_blend=0.05),
    # Issue 18: the breach and default models' learning rate 0.08 with patience 50 (training.yaml).
    "lr08": Variant(config=lambda c: replace(c, learning_rate=0.08, early_stopping_rounds=50)),
    # Session 17: frequency x severity. A count target is far less noisy than refund dollars,
    # which a few large tickets dominate (synthetic/truth.py, "Loss rate").
    "freq": Variant(target="counts"),
    "freq_noblend": Variant(target="counts", portfolio_blend=0.0),
    "freq_share": Variant(target="counts", severity="share"),
    "freq_share_noblend": Variant(target="counts", severity="share", portfolio_blend=0.0),
}


def recency_weighted(rows: pd.DataFrame, halflife_months: float) -> pd.DataFrame:
    """``rows`` with exposure and refunds scaled by 2^(-age / halflife): the target (refunds per
    dollar) is unchanged, the row's weight in the fit (its exposure) decays with age.
    (``TrainingConfig.recency_half_life_months`` is the breach model's; the loss rate ignores it.)"""
    months = pd.to_datetime(rows["as_of_date"])
    newest = months.max()
    age = (newest.year - months.dt.year) * 12 + newest.month - months.dt.month
    weight = np.power(2.0, -age.to_numpy(float) / halflife_months)
    columns = [EXPOSURE_COLUMN, TOTAL_REFUND_COLUMN, *COVERAGE_REFUND_COLUMNS.values()]
    return rows.assign(**{c: pd.to_numeric(rows[c], errors="coerce") * weight for c in columns})


def train_base(known: pd.DataFrame, variant: Variant):
    config = variant.config(loss_config_from_yaml())
    inputs = [spec for spec in FEATURES if spec.name not in variant.drop_inputs]
    rows = recency_weighted(known, variant.halflife_months) if variant.halflife_months else known
    if variant.target == "counts":
        return frequency_model(rows, inputs, config)
    return train_loss_rate_model(rows, inputs, config).model


def frequency_model(known: pd.DataFrame, inputs, config):
    """The loss-rate trainer itself on counts: per coverage a Poisson booster on buyer-won
    resolutions per order created in the window, weighted by those orders (the exposure),
    with the same design matrices, constraints, windows, early stopping; its calibration scale
    and portfolio rate are then in resolutions per order, fitted on counts. The model's
    metadata carries both severities (`severities`); `with_severity` turns it into dollars."""
    rows = exposure_rows(known)  # complete labels with order value in the window, as the dollar model
    as_counts = rows.assign(**{
        EXPOSURE_COLUMN: rows[ORDERS_COLUMN].astype(float),
        TOTAL_REFUND_COLUMN: rows[WON_COLUMNS["total"]].astype(float),
        **{column: rows[WON_COLUMNS[cover]].astype(float) for cover, column in COVERAGE_REFUND_COLUMNS.items()},
    })
    overrides = {k: v for k, v in config.lightgbm_overrides.items() if not k.startswith("tweedie")}
    model = train_loss_rate_model(as_counts, inputs, replace(config, lightgbm_overrides=overrides | {"objective": "poisson"})).model
    model.metadata["severities"] = severities(rows)
    return model


def severities(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per coverage, refund dollars per buyer-won resolution in units of an order dollar, over ``rows``:

    * ``window``: (refund dollars / resolutions) / (order dollars / orders), the window's mean
      ticket over the window's mean order, pooled over all rows;
    * ``share``: refund dollars / the amounts of the orders they refunded (the refund share).
      Per supplier the rate is share x resolutions per order when amounts are i.i.d. per
      supplier; ``window`` also carries how order size and frequency co-vary across suppliers."""
    refunds = coverage_refunds(rows)
    won = {cover: rows[column].to_numpy(float) for cover, column in WON_COLUMNS.items()}
    won["other"] = won.pop("total") - won["pre_shipment"] - won["post_delivery"]
    amounts = {cover: rows[column].to_numpy(float) for cover, column in WON_AMOUNT_COLUMNS.items()}
    amounts["other"] = amounts.pop("total") - amounts["pre_shipment"] - amounts["post_delivery"]
    mean_order = rows[EXPOSURE_COLUMN].to_numpy(float).sum() / rows[ORDERS_COLUMN].to_numpy(float).sum()
    out: dict[str, dict[str, float]] = {"window": {}, "share": {}}
    for cover in COVERAGES:
        dollars = float(refunds[cover].sum())
        out["window"][cover] = dollars / won[cover].sum() / mean_order if won[cover].sum() > 0 else 0.0
        out["share"][cover] = dollars / amounts[cover].sum() if amounts[cover].sum() > 0 else 0.0
    return out


def with_severity(model, variant: Variant):
    """A frequency model in dollars per dollar: its scales and portfolio rates times the severity."""
    if variant.target != "counts":
        return model
    severity = model.metadata["severities"][variant.severity]
    priced = copy.copy(model)
    priced.scales = {c: model.scales[c] * severity[c] for c in COVERAGES}
    priced.portfolio_rates = {c: model.portfolio_rates[c] * severity[c] for c in COVERAGES}
    return priced


def with_blend(model, variant: Variant):
    """The same boosters with the variant's portfolio blend (the model's own code applies it)."""
    if variant.portfolio_blend is None:
        return model
    blended = copy.copy(model)
    blended.portfolio_blend = variant.portfolio_blend
    return blended


def cached_training_frame(landing: Path) -> pd.DataFrame:
    cache = landing.with_name(landing.name + ".training.parquet")
    if cache.exists():
        training = pd.read_parquet(cache)
        training["as_of_date"] = pd.to_datetime(training["as_of_date"]).dt.date
        return training
    training = training_frame_from_landing(landing)
    training.to_parquet(cache)
    return training


def published_vintages(training: pd.DataFrame) -> list[date]:
    months = sorted(training["as_of_date"].unique())
    return vintage_as_of_dates(months[0], max(months), VintageConfig.from_yaml())


def scored_rows(training: pd.DataFrame, vintages: list[date]) -> pd.DataFrame:
    """Complete-outcome rows from the first vintage on, each with the vintage that scores it."""
    rows = complete_label_rows(training, DEFAULT_LABEL)
    rows = rows[rows["as_of_date"] >= vintages[0]].copy()
    index = np.searchsorted(np.array(vintages, dtype="datetime64[D]"),
                            np.array(rows["as_of_date"].tolist(), dtype="datetime64[D]"), side="right") - 1
    rows["vintage"] = [vintages[i] for i in index]
    return rows.reset_index(drop=True)


def train_vintages(training: pd.DataFrame, vintages: list[date], variant: Variant, trained: dict) -> dict[date, object]:
    """The variant's model per vintage; ``trained`` keeps the boosters variants share (blends differ only after)."""
    key = (variant.config, variant.drop_inputs, variant.halflife_months, variant.target)
    if key not in trained:
        trained[key] = {v: train_base(rows_known_at(training, v), variant) for v in vintages}
    return {v: with_blend(with_severity(trained[key][v], variant), variant) for v in vintages}


def score(rows: pd.DataFrame, models: dict[date, object]) -> pd.DataFrame:
    parts = []
    for vintage, part in rows.groupby("vintage", sort=True):
        parts.append(pd.concat([part, models[vintage].predict_rates(part)], axis=1))
    return pd.concat(parts).sort_values(["supplier_id", "as_of_date"], ignore_index=True)


def judged(frame: pd.DataFrame, truth: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return loss_rate_against_oracle(PublishedForecasts(frame, DEFAULT_LABEL, {}), truth)


def summary_line(name: str, tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    total = tables["summary"].set_index("cover").loc["total"]
    deciles = tables["deciles"][tables["deciles"]["cover"] == "total"]
    return {"variant": name, "rows": int(total["rows"]), "spearman_oracle": round(float(total["spearman_model_oracle"]), 4),
            "worst_gap_oracle": round(float(total["worst_decile_gap_to_oracle"]), 3),
            "worst_gap_given_open": round(float(total["worst_decile_gap_to_oracle_given_open"]), 3),
            "mean_abs_gap_oracle": round(float(deciles["model_vs_oracle"].abs().mean()), 3),
            "mean_abs_error_realised": round(float(total["model_mean_abs_decile_error"]), 3),
            "oracle_own_error_realised": round(float(total["oracle_own_decile_error"]), 3),
            "given_open_own_error_realised": round(float(total["oracle_given_open_own_decile_error"]), 3),
            "gap_by_decile": " ".join(f"{g:+.0%}" for g in deciles["model_vs_oracle"]),
            "error_by_decile": " ".join(f"{g:+.0%}" for g in deciles["model_vs_realised"])}


def at_oracle_level(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s published rates times one factor per vintage: the oracle's exposure-weighted
    total rate over the vintage's rows divided by the model's. Not a forecast (it reads the
    truth of the months scored): what is left of the gap is the shape, not the level."""
    oracle = frame[["supplier_id", "as_of_date"]].merge(
        truth[["supplier_id", "as_of_date", LOSS_RATE_COLUMN]], on=["supplier_id", "as_of_date"], how="left"
    )[LOSS_RATE_COLUMN].to_numpy(float)
    exposure = frame[EXPOSURE_COLUMN].to_numpy(float)
    known = ~np.isnan(oracle) & (exposure > 0)
    factor = np.ones(len(frame))
    for _, index in frame.groupby("vintage").indices.items():
        rows = index[known[index]]
        factor[index] = np.sum(oracle[rows] * exposure[rows]) / np.sum(frame[LOSS_RATE_COLUMN].to_numpy(float)[rows] * exposure[rows])
    columns = [LOSS_RATE_COLUMN, *COVERAGE_RATE_COLUMNS.values()]
    return frame.assign(**{c: frame[c].to_numpy(float) * factor for c in columns})


def rates_by_cover(rates: pd.DataFrame) -> dict[str, np.ndarray]:
    """The published rate columns per coverage (``COVERAGES``): the two covers, and ``other``,
    what the total holds beyond them."""
    parts = {c: rates[column].to_numpy(float) for c, column in COVERAGE_RATE_COLUMNS.items()}
    parts["other"] = rates[LOSS_RATE_COLUMN].to_numpy(float) - sum(parts.values())
    return parts


def level_refreshed(frame: pd.DataFrame, training: pd.DataFrame, models: dict[date, object], months: int,
                    per_coverage: bool = True, variant: Variant | None = None,
                    trend_months: int = 0, at_vintage: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame``'s rates, each month S rescaled by how its vintage did on the newest complete outcomes at S.

    Per coverage (or one factor for the total): realised refunds / the vintage's forecast dollars
    over the ``months`` newest as-of dates whose six-month outcome is complete at S (as-of <= S -
    6 months); a count variant compares buyer-won resolutions with its forecast resolutions.
    ``trend_months``: also times the portfolio's loss trend, as in ratemaking: the realised rate
    per as-of month over that many newest complete months, log-linear, projected from the
    refresh months' centre to S. ``at_vintage``: the factors are fitted once per vintage, at its
    month end V, and kept for the months it scores (a refit of the vintage's scale on its newest
    complete months). Everything it reads is known at S: a forecast, not a diagnostic.
    Returns the rescaled frame and the factors per month."""
    known = exposure_rows(training)
    all_months = sorted(known["as_of_date"].unique())
    cache: dict[tuple, dict[str, tuple[float, float]]] = {}
    out = frame.copy()
    lines = []
    for (month, vintage), index in frame.groupby(["as_of_date", "vintage"]).indices.items():
        fitted_at = vintage if at_vintage else month
        anchors = [m for m in all_months if m <= add_months(fitted_at, -6)][-months:]
        forecast = dict.fromkeys(COVERAGES, 0.0)
        realised = dict.fromkeys(COVERAGES, 0.0)
        for anchor in anchors:
            key = (vintage, anchor)
            if key not in cache:
                part = known[known["as_of_date"] == anchor]
                rates = models[vintage].predict_rates(part)
                exposure = part[EXPOSURE_COLUMN].to_numpy(float)
                predicted = rates_by_cover(rates)
                if variant is not None and variant.target == "counts":
                    # a count model is refreshed on counts: resolutions against its forecast resolutions
                    severity = models[vintage].metadata["severities"][variant.severity]
                    orders = part[ORDERS_COLUMN].to_numpy(float)
                    won = {c: part[col].to_numpy(float) for c, col in WON_COLUMNS.items()}
                    won["other"] = won.pop("total") - won["pre_shipment"] - won["post_delivery"]
                    cache[key] = {c: (float(np.sum(predicted[c] * orders)) / severity[c] if severity[c] > 0 else 0.0,
                                      float(won[c].sum())) for c in COVERAGES}
                else:
                    refunds = coverage_refunds(part)
                    cache[key] = {c: (float(np.sum(predicted[c] * exposure)), float(refunds[c].sum())) for c in COVERAGES}
            for c in COVERAGES:
                forecast[c] += cache[key][c][0]
                realised[c] += cache[key][c][1]
        if per_coverage:
            factor = {c: realised[c] / forecast[c] if forecast[c] > 0 else 1.0 for c in COVERAGES}
        else:
            f = sum(realised.values()) / sum(forecast.values())
            factor = dict.fromkeys(COVERAGES, f)
        growth = 1.0
        if trend_months:
            # loss trend, as in ratemaking: the portfolio's realised rate per month over the newest
            # complete as-of dates, log-linear, projected from the refresh months' centre to S
            history = [m for m in all_months if m <= add_months(fitted_at, -6)][-trend_months:]
            if len(history) >= 4:
                part = known[known["as_of_date"].isin(history)]
                if variant is not None and variant.target == "counts":
                    by = part.groupby("as_of_date").agg(x=(WON_COLUMNS["total"], "sum"), e=(ORDERS_COLUMN, "sum"))
                else:
                    by = part.groupby("as_of_date").agg(x=(TOTAL_REFUND_COLUMN, "sum"), e=(EXPOSURE_COLUMN, "sum"))
                t = np.array([(m.year * 12 + m.month) for m in by.index], float)
                slope = np.polyfit(t, np.log(by["x"].to_numpy(float) / by["e"].to_numpy(float)), 1)[0]
                centre = np.mean([(m.year * 12 + m.month) for m in anchors])
                growth = float(np.exp(slope * (month.year * 12 + month.month - centre)))
        factor = {c: f * growth for c, f in factor.items()}
        rows = out.index[index]
        parts = rates_by_cover(out.loc[rows])
        for c, col in COVERAGE_RATE_COLUMNS.items():
            out.loc[rows, col] = parts[c] * factor[c]
        out.loc[rows, LOSS_RATE_COLUMN] = sum(parts[c] * factor[c] for c in COVERAGES)
        lines.append({"month": month, "vintage": vintage, "anchors": f"{anchors[0]}..{anchors[-1]}", "growth": round(growth, 3),
                      **{f"factor_{c}": round(factor[c], 3) for c in COVERAGES}})
    return out, pd.DataFrame(lines)


def diagnose(training: pd.DataFrame, rows: pd.DataFrame, frame: pd.DataFrame, models: dict[date, object],
             truth: pd.DataFrame) -> None:
    print("\n### Per vintage: gap to the oracle by decile of the published rate (within the vintage's months)\n")
    lines = []
    for vintage, part in frame.groupby("vintage", sort=True):
        line = summary_line(str(vintage), judged(part, truth))
        lines.append({k: line[k] for k in ("variant", "rows", "spearman_oracle", "worst_gap_oracle", "gap_by_decile",
                                           "error_by_decile")})
    print(pd.DataFrame(lines).rename(columns={"variant": "vintage"}).to_markdown(index=False))

    late = rows[rows["vintage"] == max(rows["vintage"].unique()[:-1] if rows["vintage"].nunique() > 1 else rows["vintage"])]
    print(f"\n### The same months ({min(late['as_of_date'])}..{max(late['as_of_date'])}) scored by every vintage known then\n")
    lines = []
    for vintage in sorted(v for v in models if v <= min(late["as_of_date"])):
        line = summary_line(str(vintage), judged(score(late.assign(vintage=vintage), models), truth))
        lines.append({k: line[k] for k in ("variant", "rows", "spearman_oracle", "worst_gap_oracle", "mean_abs_gap_oracle",
                                           "gap_by_decile")})
    print(pd.DataFrame(lines).rename(columns={"variant": "scored by vintage"}).to_markdown(index=False))

    print("\n### Who is under-forecast: published rows by decile, means (exposure > 0)\n")
    joined = frame.merge(truth[["supplier_id", "as_of_date", "loss_rate_6m"]].rename(columns={"loss_rate_6m": "oracle"}),
                         on=["supplier_id", "as_of_date"])
    joined = joined[joined["forward_order_value_6m_usd"] > 0]
    joined["decile"] = pd.qcut(joined["loss_rate_6m"].rank(method="first"), 10, labels=False) + 1
    exposure = joined["forward_order_value_6m_usd"]
    joined["model_x"] = joined["loss_rate_6m"] * exposure
    joined["oracle_x"] = joined["oracle"] * exposure
    joined["months_since_first_vintage"] = [(d.year - 2024) * 12 + d.month - 12 for d in joined["as_of_date"]]
    columns = [c for c in ("tenure_months", "trading_months_12m", "orders_6m", "dispute_count_6m", "disputes_6m",
                           "buyer_favored_dispute_ratio_6m", "dispute_ratio_6m", "refund_ratio_6m", "months_since_first_vintage")
               if c in joined]
    table = joined.groupby("decile").agg(rows=("supplier_id", "size"), model=("model_x", "sum"), oracle=("oracle_x", "sum"),
                                         **{c: (c, "mean") for c in columns})
    table["model_vs_oracle"] = table["model"] / table["oracle"] - 1
    table["share_no_past_dispute"] = joined.groupby("decile").apply(
        lambda g: float((g.get("dispute_ratio_6m", pd.Series(0, index=g.index)).fillna(0) == 0).mean()), include_groups=False)
    print(table.drop(columns=["model", "oracle"]).round(3).to_markdown())

    print("\n### Gap to the oracle by segment (all published rows with exposure)\n")
    bands = {
        "tenure_months": [0, 6, 12, 24, 60, np.inf],
        "orders_6m": [-np.inf, 0, 5, 20, 60, np.inf],
        "trading_months_12m": [-np.inf, 3, 6, 9, 12],
        "dispute_ratio_6m": [-np.inf, 0, 0.02, 0.05, np.inf],
    }
    lines = []
    for column, edges in bands.items():
        if column not in joined:
            continue
        band = pd.cut(joined[column].fillna(-1 if column != "dispute_ratio_6m" else 0), edges, include_lowest=True)
        for value, g in joined.groupby(band, observed=True):
            lines.append({"segment": column, "band": str(value), "rows": len(g),
                          "model_rate": g["model_x"].sum() / g["forward_order_value_6m_usd"].sum(),
                          "oracle_rate": g["oracle_x"].sum() / g["forward_order_value_6m_usd"].sum(),
                          "model_vs_oracle": g["model_x"].sum() / g["oracle_x"].sum() - 1})
    print(pd.DataFrame(lines).round(5).to_markdown(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--variants", default="current", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--diagnose", action="store_true", help="per-vintage and per-segment tables for the first variant")
    parser.add_argument("--per-vintage", action="store_true", help="every variant's summary within each vintage's months")
    parser.add_argument("--level-matched", action="store_true",
                        help="also each variant rescaled per vintage to the oracle's level on the rows it scores "
                             "(a diagnostic that needs the truth: the shape of the rates without their level)")
    parser.add_argument("--level-refresh", type=int, default=0, metavar="K",
                        help="also each variant with its level refreshed every month on the K newest complete outcome months")
    parser.add_argument("--at-vintage", action="store_true",
                        help="with --level-refresh: fit the factors once per vintage (at its month end), not every month")
    parser.add_argument("--trend", type=int, default=0, metavar="N",
                        help="with --level-refresh: also project the level by the portfolio's trend over N complete months")
    args = parser.parse_args()
    training = cached_training_frame(args.landing)
    if any(VARIANTS[name].target == "counts" for name in args.variants.split(",")):
        training, match = checked_counts(training, cached_counts(args.landing, training))
        print("Counts checked against the labels (the counting query's dollar sums equal the frame's): "
              + "; ".join(f"{k} {v}" for k, v in match.items()) + "\n")
    truth = read_truth(args.landing, RISK_ORACLE_COLUMNS)
    vintages = published_vintages(training)
    rows = scored_rows(training, vintages)
    vintages = sorted(rows["vintage"].unique())
    print(f"{args.landing}: {len(rows):,} published supplier-months with complete outcomes, "
          f"{min(rows['as_of_date'])}..{max(rows['as_of_date'])}, vintages {', '.join(map(str, vintages))}\n")
    lines, trained = [], {}
    for i, name in enumerate(args.variants.split(",")):
        models = train_vintages(training, vintages, VARIANTS[name], trained)
        frame = score(rows, models)
        if VARIANTS[name].target == "counts":
            priced = pd.DataFrame([{"vintage": v, "best_iteration": str(m.metadata["best_iteration"]),
                                    **{f"count_scale_{c}": round(m.scales[c] / m.metadata["severities"][VARIANTS[name].severity][c], 3)
                                       for c in COVERAGES},
                                    **{f"severity_{c}": round(m.metadata["severities"][VARIANTS[name].severity][c], 3)
                                       for c in COVERAGES}} for v, m in models.items()])
            print(f"{name}: per vintage, rounds, scales in resolutions and severity ({VARIANTS[name].severity})\n\n"
                  + priced.to_markdown(index=False) + "\n", flush=True)
        lines.append(summary_line(name, judged(frame, truth)))
        print(pd.DataFrame([lines[-1]]).to_markdown(index=False), flush=True)
        if args.level_matched:
            lines.append(summary_line(f"{name} at oracle level", judged(at_oracle_level(frame, truth), truth)))
            print(pd.DataFrame([lines[-1]]).to_markdown(index=False), flush=True)
        if args.level_refresh:
            trends = (0, args.trend) if args.trend else (0,)
            for trend, per_coverage in ((t, p) for t in trends for p in (True, False)):
                refreshed, factors = level_refreshed(frame, training, models, args.level_refresh, per_coverage,
                                                     VARIANTS[name], trend, args.at_vintage)
                label = (f"{name} refreshed {args.level_refresh}m {'at vintage ' if args.at_vintage else ''}"
                         f"{'per cover' if per_coverage else 'total'}"
                         + (f" trend {trend}m" if trend else ""))
                print(f"\n{label}: factors\n\n" + factors.to_markdown(index=False) + "\n")
                lines.append(summary_line(label, judged(refreshed, truth)))
                print(pd.DataFrame([lines[-1]]).to_markdown(index=False), flush=True)
        if args.per_vintage:
            by_vintage = [summary_line(f"{name} {vintage}", judged(part, truth)) for vintage, part in frame.groupby("vintage")]
            print("\n" + pd.DataFrame(by_vintage).drop(columns="worst_gap_given_open").to_markdown(index=False) + "\n", flush=True)
        if args.diagnose and i == 0:
            diagnose(training, rows, frame, models, truth)
    print("\n### All variants\n")
    print(pd.DataFrame(lines).to_markdown(index=False))


if __name__ == "__main__":
    main()
