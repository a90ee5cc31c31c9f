"""Model vintages: each risk model trained *as of* a month end V on what was known at V.

docs/design.md §4: a month's published decision uses only what was known at its month end, the
model included. So no single model scores every month; instead:

* A **vintage** of a model as of V is trained on the training rows at as-of dates t whose
  six-month label window ends by V (``label_window_end(t) <= V``). Features at t are
  point-in-time, and labels are closed at their window end (``models/labels.py``), so
  nothing it learnt was unknown at V. Its out-of-time evaluation rows are its own newest
  complete months, also known at V.
* Vintages fall on calendar month ends every ``refit_every_months`` (quarterly by
  default: March, June, September, December), from the first one with at least
  ``min_label_months`` complete label months (``models/vintages.yaml``). Calendar anchoring
  makes the schedule independent of how far the data reaches, so appending months never
  moves an earlier vintage.
* **Serving** is decided once, at V, with the promotion gates of ``models.registry``: the
  vintage against the previous serving vintage on the vintage's own out-of-time rows. The
  first trainable vintage serves. The decision is recorded on the registered version and
  kept; a vintage refused keeps the previous one serving.
* Month T is scored by the newest serving vintage of each model whose as-of date is <= T
  (a vintage as of T may score T). A month with no such vintage of every model is
  **not scored**: no ``supplier_scores`` rows (features and storefront figures are still
  published).
* A vintage already registered with the same name, as-of date and training-data
  fingerprint is reused, never retrained: its inputs cannot have changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import yaml

from features import FEATURES, month_ends
from models.labels import label_window_end
from models.loss_rate import LOSS_RATE_COLUMN, exposure_rows, train_loss_rate_model
from models.model_features import LABEL_COLUMN
from models.registry import (
    PromotionGates,
    gate_challenger,
    load_model_version,
    log_and_register,
    point_alias,
    registered_version_tags,
    set_version_tags,
)
from models.training import (
    PROBABILITY_COLUMN,
    TrainingConfig,
    TrainingResult,
    complete_label_rows,
    rows_where,
    train_breach_model,
    training_data_fingerprint,
)
from models.training_set import DEFAULT_LABEL_COLUMN, untrainable_default_reason, untrainable_reason

VINTAGE_CONFIG_PATH = Path(__file__).with_name("vintages.yaml")
# Calendar-anchored cadences: a vintage month is one whose number divides evenly.
CADENCES = {1: "monthly", 2: "bimonthly", 3: "quarterly", 4: "every 4 months", 6: "half-yearly", 12: "yearly"}

SERVING = "serving"
REFUSED = "refused"
UNTRAINABLE = "untrainable"

# Tags on each registered vintage (MLflow model version).
TAG_AS_OF = "vintage_as_of_date"
# sha256 of the vintage's rows as the kind fingerprints them (its reuse key)
TAG_FINGERPRINT = "vintage_data_fingerprint"
TAG_CADENCE = "vintage_cadence"
TAG_KIND = "model_kind"
TAG_STATUS = "vintage_status"
TAG_REASONS = "vintage_decision"
TAG_COMPARED_WITH = "vintage_compared_with"

VINTAGE_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("as_of_date", pa.date32()),
        ("status", pa.string()),
        ("version", pa.string()),
        ("data_fingerprint", pa.string()),
        ("compared_with", pa.string()),
        ("reasons", pa.string()),
        ("cadence", pa.string()),
    ]
)


class VintageConfigError(ValueError):
    """models/vintages.yaml (or its override) is not usable; the message says what to fix."""


@dataclass(frozen=True)
class VintageConfig:
    refit_every_months: int = 3
    min_label_months: int = 6

    def __post_init__(self) -> None:
        if self.refit_every_months not in CADENCES:
            raise VintageConfigError(
                f"refit_every_months must be one of {sorted(CADENCES)} (months that divide the year), "
                f"got {self.refit_every_months!r}"
            )
        if not isinstance(self.min_label_months, int) or self.min_label_months < 3:
            raise VintageConfigError(
                f"min_label_months must be an integer >= 3 (an out-of-time split needs 3 months), got {self.min_label_months!r}"
            )

    @property
    def cadence(self) -> str:
        return CADENCES[self.refit_every_months]

    @classmethod
    def from_yaml(cls, path: str | Path = VINTAGE_CONFIG_PATH) -> VintageConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise VintageConfigError(f"{path}: unknown keys {sorted(set(data) - known) if isinstance(data, dict) else data!r}; "
                                     f"expected {sorted(known)}")
        return cls(**data)


def vintage_as_of_dates(first_month_end: date, last_day: date, config: VintageConfig) -> list[date]:
    """Month ends V <= ``last_day`` on the cadence with at least ``min_label_months`` complete
    label months (month ends t >= ``first_month_end`` with ``label_window_end(t) <= V``)."""
    label_months = month_ends(first_month_end, last_day)
    candidates = [v for v in label_months if v.month % config.refit_every_months == 0]
    return [
        v for v in candidates
        if sum(1 for t in label_months if label_window_end(t) <= v) >= config.min_label_months
    ]


def rows_known_at(training: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The training rows a vintage as of ``as_of`` may learn from: label window ended by then.

    On a frame in month order (the training set is stored so) they are its first rows, returned
    as a slice that shares the frame's memory rather than a copy of it: treat them as read-only."""
    months = pd.Series(pd.to_datetime(training["as_of_date"]).dt.date)
    window_ends = months.map({m: label_window_end(m) for m in months.unique()})
    return rows_where(training, (window_ends <= as_of).to_numpy())  # a prefix: window ends rise with the month


@dataclass(frozen=True)
class RiskModelKind:
    """One of the three risk models: how to tell whether it can be trained, fingerprint and train it."""

    kind: str  # "breach", "loss_rate", "default"
    registered_model_name: str
    label_column: str  # what the promotion gates compare on
    untrainable: Callable[[pd.DataFrame], str | None]
    fingerprint_rows: Callable[[pd.DataFrame], pd.DataFrame]
    # (rows known at the vintage, their fingerprint_rows, the fingerprint of those): the training
    # result, which learns from the fingerprint_rows and records the fingerprint instead of
    # taking either again (each would be another copy of the rows)
    train: Callable[[pd.DataFrame, pd.DataFrame, str], object]


@dataclass(frozen=True)
class Vintage:
    kind: str
    as_of_date: date
    status: str  # SERVING, REFUSED, UNTRAINABLE
    version: str | None  # "<registered name>/<n>"; None when untrainable
    data_fingerprint: str | None
    compared_with: str | None
    reasons: str
    cadence: str
    trained_now: bool = False  # trained by this call (False: reused, or untrainable)

    @property
    def label(self) -> str:
        """What published rows name: the registered version and the vintage's as-of date."""
        return f"{self.version}@{self.as_of_date.isoformat()}"


@dataclass
class VintageBuild:
    vintages: list[Vintage]
    # The training result of the newest vintage this call trained (None: every vintage was
    # reused or untrainable), its training rows released once logged. Older vintages' results
    # are dropped as soon as the next one is decided: each holds frames of the training rows,
    # and keeping them all made the memory grow with the number of vintages.
    newest_result: object | None = None

    @property
    def newest_trained(self) -> Vintage | None:
        """The vintage ``newest_result`` belongs to."""
        return next((v for v in reversed(self.vintages) if v.trained_now), None)


def build_vintages(
    training: pd.DataFrame,
    kind: RiskModelKind,
    as_of_dates: Sequence[date],
    tracking_uri: str,
    experiment_name: str,
    config: VintageConfig,
    gates: PromotionGates | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> VintageBuild:
    """Train (or reuse) every vintage of ``kind`` as of ``as_of_dates``, oldest first, decide
    once whether each serves, and point the ``champion`` alias at the newest serving one."""
    registered = registered_version_tags(tracking_uri, kind.registered_model_name)
    vintages: list[Vintage] = []
    newest_result = None
    serving: Vintage | None = None
    serving_model = None
    for as_of in sorted(as_of_dates):
        rows = rows_known_at(training, as_of)
        problem = kind.untrainable(rows)
        if problem:
            vintages.append(Vintage(kind.kind, as_of, UNTRAINABLE, None, None, None, problem, config.cadence))
            continue
        label_rows = kind.fingerprint_rows(rows)
        fingerprint = training_data_fingerprint(label_rows)
        existing = _registered_vintage(registered, as_of, fingerprint)
        if existing is not None:
            version, tags = existing
            vintage = Vintage(kind.kind, as_of, tags[TAG_STATUS], version, fingerprint,
                              tags.get(TAG_COMPARED_WITH) or None, tags.get(TAG_REASONS, ""), config.cadence)
            log(f"{kind.kind} vintage as of {as_of}: inputs unchanged, reusing {version} ({vintage.status})")
            model = None
        else:
            newest_result = None  # the previous vintage's frames go before this one's are made
            result = kind.train(rows, label_rows, fingerprint)
            del label_rows  # the result holds them (training_rows) until they are logged
            version = log_and_register(
                result, tracking_uri, registered_model_name=kind.registered_model_name,
                experiment_name=experiment_name, run_name=f"vintage-{as_of.isoformat()}", set_alias=False,
                tags={TAG_AS_OF: as_of.isoformat(), TAG_FINGERPRINT: fingerprint, TAG_CADENCE: config.cadence,
                      TAG_KIND: kind.kind},
            )
            result.training_rows = None  # logged as the run's dataset: the largest frame, not needed again
            model = result.model
            if serving is not None and serving_model is None:
                serving_model = load_model_version(tracking_uri, serving.version)
            # a breach or default vintage's evaluation rows carry its probabilities: not scored again
            decision = gate_challenger(serving_model, model, result.evaluation_frame,
                                       label_column=kind.label_column, gates=gates,
                                       challenger_proba_column=PROBABILITY_COLUMN
                                       if isinstance(result, TrainingResult) else None)
            status = SERVING if decision.promoted else REFUSED
            reasons = "; ".join(decision.reasons)
            set_version_tags(tracking_uri, version, {
                TAG_COMPARED_WITH: serving.version if serving else "", TAG_REASONS: reasons, TAG_STATUS: status,
            })
            vintage = Vintage(kind.kind, as_of, status, version, fingerprint,
                              serving.version if serving else None, reasons, config.cadence, trained_now=True)
            newest_result = result
            log(f"{kind.kind} vintage as of {as_of}: trained {version}, {status}: {reasons}")
        vintages.append(vintage)
        if vintage.status == SERVING:
            serving, serving_model = vintage, model
    if serving is not None:
        point_alias(tracking_uri, serving.version)
    return VintageBuild(vintages, newest_result)


def _registered_vintage(registered: dict[str, dict[str, str]], as_of: date, fingerprint: str):
    """The registered version of this vintage (same as-of date and fingerprint, decision recorded), if any."""
    for version, tags in registered.items():
        if (tags.get(TAG_AS_OF) == as_of.isoformat() and tags.get(TAG_FINGERPRINT) == fingerprint
                and tags.get(TAG_STATUS) in (SERVING, REFUSED)):
            return version, tags
    return None


def vintages_table(vintages: Sequence[Vintage]) -> pa.Table:
    return pa.Table.from_pylist(
        [{field.name: getattr(v, field.name) for field in VINTAGE_SCHEMA} for v in vintages], schema=VINTAGE_SCHEMA
    )


def serving_vintage(vintages: Sequence[Vintage], kind: str, as_of_date: date) -> Vintage | None:
    """The newest serving vintage of ``kind`` as of ``as_of_date`` or earlier (None: no vintage knew the month)."""
    candidates = [v for v in vintages if v.kind == kind and v.status == SERVING and v.as_of_date <= as_of_date]
    return max(candidates, key=lambda v: v.as_of_date) if candidates else None


def why_not_scored(vintages: Sequence[Vintage], kinds: Sequence[str], as_of_date: date) -> str | None:
    """None when every model has a serving vintage as of ``as_of_date``; else one line saying why not."""
    missing = [kind for kind in kinds if serving_vintage(vintages, kind, as_of_date) is None]
    if not missing:
        return None
    parts = []
    for kind in missing:
        first = min((v.as_of_date for v in vintages if v.kind == kind and v.status == SERVING), default=None)
        if first is not None:
            parts.append(f"{kind} {first}")
        else:
            tried = [v for v in vintages if v.kind == kind]
            parts.append(f"{kind} none: "
                         + (tried[-1].reasons if tried else "not enough months with a complete six-month outcome"))
    return "before the first model vintage (point in time: no model knew these months); first vintage as of: " + "; ".join(parts)


def vintages_from_table(table: pa.Table | pd.DataFrame) -> list[Vintage]:
    frame = table.to_pandas() if isinstance(table, pa.Table) else table
    return [
        Vintage(
            kind=row["kind"], as_of_date=pd.Timestamp(row["as_of_date"]).date(), status=row["status"],
            version=row["version"], data_fingerprint=row["data_fingerprint"], compared_with=row["compared_with"],
            reasons=row["reasons"], cadence=row["cadence"],
        )
        for row in frame.to_dict("records")
    ]


BREACH, LOSS_RATE, DEFAULT = "breach", "loss_rate", "default"
RISK_MODEL_KINDS = (BREACH, LOSS_RATE, DEFAULT)


def risk_model_kinds(breach_name: str, loss_rate_name: str, default_name: str) -> dict[str, RiskModelKind]:
    """The three risk models a month is scored with, by kind, under their registered names."""
    return {
        BREACH: RiskModelKind(
            BREACH, breach_name, LABEL_COLUMN, untrainable_reason, complete_label_rows,
            lambda rows, label_rows, fingerprint: train_breach_model(
                rows, FEATURES, TrainingConfig.from_yaml(), data_fingerprint=fingerprint, label_rows=label_rows),
        ),
        LOSS_RATE: RiskModelKind(
            LOSS_RATE, loss_rate_name, LOSS_RATE_COLUMN, untrainable_reason, exposure_rows,
            lambda rows, label_rows, fingerprint: train_loss_rate_model(
                rows, FEATURES, data_fingerprint=fingerprint, label_rows=label_rows),
        ),
        DEFAULT: RiskModelKind(
            DEFAULT, default_name, DEFAULT_LABEL_COLUMN, untrainable_default_reason,
            lambda rows: complete_label_rows(rows, DEFAULT_LABEL_COLUMN),
            lambda rows, label_rows, fingerprint: train_breach_model(
                rows, FEATURES, TrainingConfig.from_yaml(), label_column=DEFAULT_LABEL_COLUMN,
                size_non_increasing=True, data_fingerprint=fingerprint, label_rows=label_rows),
        ),
    }
