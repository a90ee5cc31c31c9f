"""The model card: a Markdown page logged with every training run and registered version."""

from __future__ import annotations

import math

from data_contracts.outcomes import CLAIMS
from models.training import TrainingResult

# What the outcome definition means for the labels, keyed by "is it claims".
OUTCOME_MEANING = {
    True: "buyer-won disputes and their refunds",
    False: "order failures observed on the orders, each refunding its declared share of the order's amount "
           "(data_contracts/outcomes.py); 'breach' and 'refund' below mean those",
}
_METRICS = ("auc", "brier", "ece", "log_loss", "base_rate", "mean_predicted", "rows")


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


# What each binary model predicts, by the label it learns (models/labels.py).
PREDICTS = {
    "breach_6m": [
        "**Predicts** the probability that a supplier has a *breach* (a dispute resolved in the",
        "buyer's favour on its orders) in the six months after a month end T, from features",
        "known by the end of day T (docs/design.md §4). Published as information: it grows with the",
        "number of orders a supplier takes, so the amount does not rest on it.",
    ],
    "default_6m": [
        "**Predicts** the probability that a supplier *defaults* in the six months after a month",
        "end T: it stops fulfilling, so most orders falling due go unshipped, are cancelled by",
        "the supplier or platform, or are never received (`models/labels.py` defines the event),",
        "from features known by the end of day T. In that event everything outstanding under",
        "the supplier's amount is lost, so it prices the amount itself (docs/design.md §4, §7). How",
        "much a supplier trades is held non-increasing: size is never read as risk.",
    ],
}


def render_model_card(result: TrainingResult, title: str = "supplier_breach_risk") -> str:
    split = result.split.describe()
    lines = [
        f"# Model card: {title}",
        "",
        *PREDICTS.get(result.label_column, [f"**Predicts** the probability of `{result.label_column}`."]),
        "",
        "## Data",
        "",
        f"- outcome definition: `{result.outcome_definition}` ({OUTCOME_MEANING[result.outcome_definition == CLAIMS]})",
        f"- training data fingerprint (sha256): `{result.data_fingerprint}`",
        f"- booster trained on: {split['train']} ({result.row_counts['train']:,} rows)",
        f"- calibrated ({result.calibration.method}) and early-stopped on: {split['calibration']}"
        f" ({result.row_counts['calibration']:,} rows)",
        f"- evaluated on (untouched): {split['evaluation']} ({result.row_counts['evaluation']:,} rows)",
        f"- rows dropped because their label window is incomplete: {result.row_counts['dropped_incomplete']:,}",
        f"- rows skipped as feature warm-up (leading months with truncated feature windows): "
        f"{result.row_counts.get('dropped_warmup', 0):,}",
        "",
        "## Features",
        "",
        "| feature | kind | monotone risk direction |",
        "|---|---|---|",
    ]
    for feature in result.features:
        kind = "categorical" if feature.categorical else "numeric"
        direction = {1: "+1 (higher is riskier)", -1: "-1 (higher is safer)", 0: "unconstrained"}[feature.risk_direction]
        lines.append(f"| `{feature.name}` | {kind} | {direction} |")
    lines += ["", "## Metrics", "", "| window | " + " | ".join(_METRICS) + " |", "|---" * (len(_METRICS) + 1) + "|"]
    for window in ("train", "calibration", "evaluation"):
        values = [_fmt(result.metrics.get(f"{window}_{m}", float("nan"))) for m in _METRICS]
        lines.append(f"| {window} | " + " | ".join(values) + " |")
    if result.calibration.cv_ece:
        choices = ", ".join(f"{k}: {v:.4f}" for k, v in sorted(result.calibration.cv_ece.items()))
        lines += ["", f"Calibration chosen by held-out ECE on the calibration window ({choices})."]
    lines += [
        "",
        f"Booster: LightGBM, {result.best_iteration} trees, seed {result.config.seed}, deterministic.",
        *(
            [
                "",
                f"Blended in log-odds with a logistic regression ({result.model.linear_weight:.2f} "
                "logistic, coefficients held to the features' risk directions), calibrated as one score;",
                "reason codes read both models' contributions.",
            ]
            if result.model.linear is not None
            else []
        ),
        "",
        "## Limits",
        "",
        "- Trained on history only: a supplier population or dispute practice unlike the training",
        "  months (new countries, categories, policy changes) is out of distribution; categories",
        "  unseen in training are scored as missing.",
        "- The label counts disputes *resolved* in the window; slow dispute resolution shifts",
        "  breaches to later labels and understates risk in the newest complete months.",
        "- Probabilities are calibrated on one recent window; re-check calibration each retrain",
        "  (ECE in the evaluation row above) before trusting amounts derived from them.",
        "- Reason codes explain the model (TreeSHAP, plus the logistic's terms when blended), not",
        "  the world: they say which inputs pushed this score up, not what caused a breach.",
        "- Not a fraud model: collusion or account takeover is out of scope.",
    ]
    return "\n".join(lines) + "\n"


def render_loss_rate_card(result, title: str = "supplier_loss_rate") -> str:
    """The model card of a ``models.loss_rate.LossRateTrainingResult``."""
    split = result.split.describe()
    lines = [
        f"# Model card: {title}",
        "",
        "**Predicts** the six-month *loss rate*: buyer-won refunds resolved in the six months after",
        "a month end T per dollar of the supplier's order value in that window, from features",
        "known by the end of day T (docs/design.md §4). One Tweedie booster per coverage (pre-shipment:",
        "late shipment, not received; post-delivery: quality; other), weighted by the window's",
        "order value (the exposure); the published `loss_rate_6m` is their sum. It is what the",
        "programme's fee must cover per covered dollar, and does not grow with a supplier's size:",
        "size features are held non-increasing.",
        "",
        "## Data",
        "",
        f"- outcome definition: `{result.outcome_definition}` ({OUTCOME_MEANING[result.outcome_definition == CLAIMS]})",
        f"- training data fingerprint (sha256): `{result.data_fingerprint}`",
        f"- boosters trained on: {split['train']} ({result.row_counts['train']:,} rows)",
        f"- scaled and early-stopped on: {split['calibration']} ({result.row_counts['calibration']:,} rows)",
        f"- evaluated on (untouched): {split['evaluation']} ({result.row_counts['evaluation']:,} rows)",
        f"- rows dropped (incomplete window or no order value in it): "
        f"{result.row_counts.get('dropped_no_exposure_or_incomplete', 0):,}",
        f"- calibration factors per coverage: "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.model.scales.items()),
        f"- pulled toward the portfolio with weight {result.model.portfolio_blend:g} (portfolio rates: "
        + ", ".join(f"{k} {v:.5f}" for k, v in result.model.portfolio_rates.items()) + ")",
        "",
        "## Metrics (rates are refund dollars per order dollar)",
        "",
        "| window | cover | realised rate | predicted rate | predicted / realised | worst decile error | Gini | rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for window in ("train", "calibration", "evaluation"):
        for cover in ("total", "pre_shipment", "post_delivery"):
            m = {k: result.metrics.get(f"{window}_{cover}_{k}", float("nan")) for k in (
                "realised_rate", "predicted_rate", "predicted_to_realised", "decile_max_abs_relative_error", "gini", "rows")}
            lines.append(
                f"| {window} | {cover} | {m['realised_rate']:.5f} | {m['predicted_rate']:.5f} | "
                f"{_fmt(m['predicted_to_realised'])} | {_fmt(m['decile_max_abs_relative_error'])} | "
                f"{_fmt(m['gini'])} | {_fmt(m['rows'])} |"
            )
    lines += [
        "",
        "## Limits",
        "",
        "- The realised rate of one supplier-month is noisy (most have no refund at all): judge the",
        "  model by exposure-weighted deciles, not by single rows.",
        "- Refunds count when resolved; slow resolution moves them to later windows.",
        "- The coverage split follows the dispute's reason as recorded.",
    ]
    return "\n".join(lines) + "\n"
