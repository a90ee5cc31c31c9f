"""What counts as an outcome: the `outcomes` section of the landing-zone manifest.

The labels the models learn (``models/labels.py``: breach, refunds per cover, loss rates,
default) need a record of what went wrong after a month end. Two sources of that record:

* ``claims`` (the default): buyer-won disputes and their refunds. Right for a programme
  that has run long enough to have a claims system; needs the ``disputes`` table.
* ``performance``: the failures Trade Assurance covers, observed on the orders
  themselves, for a source without claims (Olist, or a programme at launch). An order
  *fails* when, whichever comes first,

  - it is not shipped by the end of its promised ship day plus ``late_shipment_grace_days``
    (the promised day is ``promised_ship_by``, or ``created_at`` + 14 days without a
    promise, as for the default label);
  - it is not delivered by the end of its promised ship day plus ``not_delivered_after_days``;
  - it is cancelled by the supplier or the platform (``supplier_cancelled``);
  - its buyer rates it ``low_rating_at_most`` stars or fewer.

  A failed order costs the programme ``refund_share`` of its amount, once, at its first
  failure; the refund falls under the pre-shipment cover (late, not delivered, cancelled,
  or a low rating left before delivery: a complaint of non-receipt) or the post-delivery
  cover (a low rating of delivered goods). Set a rule to ``null`` (``false`` for
  ``supplier_cancelled``) to leave it out.

Defaults and why:

* ``late_shipment_grace_days`` 7: a week absorbs the ordinary slack of a hand-over scan
  (carrier dates are recorded by the carrier, not at the dock) and still catches a
  supplier that let the buyer wait. The default label's "stops fulfilling" uses 14 days
  for a harsher event; a late shipment is an ordinary failure.
* ``not_delivered_after_days`` 30 (after the promised ship day): national parcels arrive
  within one to three weeks; a month after the supplier's deadline the buyer has good
  reason to claim non-receipt. The landing contract carries no delivery promise, so the
  deadline counts from the shipping promise.
* ``supplier_cancelled`` true: cancelling an accepted order is the pre-shipment failure
  the programme refunds. Orders cancelled by the buyer never fail (the buyer withdrew);
  a cancellation with no recorded canceller (Olist) is not counted as the supplier's, but
  an order it left unshipped fails the late-shipment rule at its deadline anyway.
* ``low_rating_at_most`` 1: a one-star review is the nearest a claims-free source comes to
  a quality complaint; two stars often mean "slow but fine".
* ``refund_share`` 1.0: Trade Assurance refunds an undelivered order in full; a quality
  refund may be partial, but without claims nobody recorded how much, so the full amount
  is the conservative bound.

The canonical string (``OutcomeDefinition.canonical``), e.g.
``performance(late>7d,undelivered>30d,cancelled,rating<=1)``, is recorded wherever a model
is: the training set, the training-data fingerprint, MLflow, the model card and every
published score row (``outcome_definition``).
"""

from __future__ import annotations

import json
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CLAIMS = "claims"
PERFORMANCE = "performance"
OUTCOME_DEFINITION_COLUMN = "outcome_definition"
# The validated schema carries the definition its outcomes follow, written by the ingest.
OUTCOMES_TABLE = "_outcome_definition"
_PERFORMANCE_RULES = ("late_shipment_grace_days", "not_delivered_after_days", "supplier_cancelled",
                      "low_rating_at_most", "refund_share")


class OutcomeDefinitionError(ValueError):
    """The manifest's `outcomes` section is not a valid outcome definition."""


class OutcomeDefinition(BaseModel):
    """The declared outcome definition (module docstring); ``claims`` when nothing is declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    definition: Literal["claims", "performance"] = Field(
        CLAIMS, description="claims: buyer-won disputes; performance: order failures observed on the orders")
    late_shipment_grace_days: int | None = Field(
        7, ge=0, le=365, description="days after the promised ship day before an unshipped order fails; null: off")
    not_delivered_after_days: int | None = Field(
        30, ge=0, le=730, description="days after the promised ship day before an undelivered order fails; null: off")
    supplier_cancelled: bool = Field(True, description="an order cancelled by the supplier or platform fails")
    low_rating_at_most: int | None = Field(
        1, ge=1, le=4, description="a review of this many stars or fewer is a failure; null: off")
    refund_share: float = Field(1.0, gt=0.0, le=1.0, description="share of a failed order's amount refunded")

    @model_validator(mode="before")
    @classmethod
    def _claims_takes_no_rules(cls, data):
        if isinstance(data, dict) and data.get("definition", CLAIMS) == CLAIMS:
            given = sorted(set(data) & set(_PERFORMANCE_RULES))
            if given:
                raise ValueError(f"{', '.join(given)} only apply to definition 'performance'")
        return data

    @model_validator(mode="after")
    def _some_rule_applies(self):
        if self.is_performance and not (
            self.late_shipment_grace_days is not None or self.not_delivered_after_days is not None
            or self.supplier_cancelled or self.low_rating_at_most is not None
        ):
            raise ValueError("every performance rule is switched off, so no order could ever fail")
        return self

    @property
    def is_performance(self) -> bool:
        return self.definition == PERFORMANCE

    @property
    def needs_reviews(self) -> bool:
        return self.is_performance and self.low_rating_at_most is not None

    def canonical(self) -> str:
        """A short string naming the definition and every rule in force."""
        if not self.is_performance:
            return CLAIMS
        rules = []
        if self.late_shipment_grace_days is not None:
            rules.append(f"late>{self.late_shipment_grace_days}d")
        if self.not_delivered_after_days is not None:
            rules.append(f"undelivered>{self.not_delivered_after_days}d")
        if self.supplier_cancelled:
            rules.append("cancelled")
        if self.low_rating_at_most is not None:
            rules.append(f"rating<={self.low_rating_at_most}")
        if self.refund_share != 1.0:
            rules.append(f"refund={self.refund_share:g}")
        return f"{PERFORMANCE}({','.join(rules)})"

    def to_manifest(self) -> dict:
        """The manifest's `outcomes` section for this definition (every rule spelled out)."""
        return self.model_dump() if self.is_performance else {"definition": CLAIMS}


def parse_outcome_definition(raw) -> OutcomeDefinition:
    """The manifest's `outcomes` value as a definition; one-line ``OutcomeDefinitionError`` otherwise."""
    if raw is None:
        return OutcomeDefinition()
    if not isinstance(raw, dict):
        raise OutcomeDefinitionError(f"outcomes is {raw!r}, not an object like {{\"definition\": \"performance\"}}")
    try:
        return OutcomeDefinition.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'outcomes'}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["loc"] else "")
            for e in error.errors()
        )
        raise OutcomeDefinitionError(problems) from None


def write_outcome_definition(con: duckdb.DuckDBPyConnection, schema: str, outcomes: OutcomeDefinition) -> None:
    """Record beside the validated tables which outcome definition their labels follow."""
    con.execute(
        f"CREATE OR REPLACE TABLE {schema}.{OUTCOMES_TABLE} AS SELECT ?::VARCHAR AS definition, ?::VARCHAR AS settings",
        [outcomes.canonical(), json.dumps(outcomes.to_manifest(), sort_keys=True)],
    )


def read_outcome_definition(con: duckdb.DuckDBPyConnection, schema: str = "validated") -> OutcomeDefinition:
    """The definition the validated tables were ingested with (``claims`` for a warehouse
    ingested before definitions were recorded)."""
    try:
        row = con.execute(f"SELECT settings FROM {schema}.{OUTCOMES_TABLE}").fetchone()
    except duckdb.CatalogException:
        row = None
    return parse_outcome_definition(json.loads(row[0])) if row else OutcomeDefinition()
