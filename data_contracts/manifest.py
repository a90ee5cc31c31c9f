"""The optional landing-zone manifest `_landing_zone.json`: when the snapshot was taken.

A landing zone is a snapshot; events after the snapshot cannot be in it. Without a
manifest the snapshot time (the data horizon) is inferred from the newest orders, which
is right for a feed cut at the end of a day of trading, but wrong for an export taken
later than its last order (Olist: orders stop in August 2018, deliveries and reviews go on
into October): it would quarantine real deliveries as "after the horizon". A manifest
states the time instead. The file name starts with `_`, so readers of the table folders
ignore it (docs/design.md §3 is unchanged; this is an optional addition).

    {"snapshot_at": "2018-10-17T17:30:18Z", "source": "olist",
     "not_collected": ["disputes", "inquiries"],
     "outcomes": {"definition": "performance", "late_shipment_grace_days": 7}}

`outcomes` says what the labels learn from (`data_contracts/outcomes.py`): buyer-won
disputes (`claims`, the default when it is absent) or order failures (`performance`,
for a source without claims). Claims need the disputes table, so declaring `claims`
beside `"not_collected": ["disputes"]` is refused, as is a low-rating rule without reviews.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from data_contracts.errors import LandingZoneError
from data_contracts.outcomes import OutcomeDefinition, OutcomeDefinitionError, parse_outcome_definition

MANIFEST_NAME = "_landing_zone.json"
# Suppliers and orders are what the pipeline is about: a source without them is unusable.
MAY_BE_NOT_COLLECTED = frozenset({"disputes", "inquiries", "reviews"})


def _read_manifest(landing_dir: Path) -> dict | None:
    path = Path(landing_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise LandingZoneError(
            "manifest", f"is not JSON ({error})", file=MANIFEST_NAME,
            expectation='JSON like {"snapshot_at": "2025-06-30T23:59:59Z"}', next_step=f"fix or remove {MANIFEST_NAME}") from None
    if not isinstance(raw, dict):
        raise LandingZoneError("manifest", "is not a JSON object", file=MANIFEST_NAME,
                               expectation="a JSON object", next_step=f"fix or remove {MANIFEST_NAME}")
    return raw


def read_not_collected(landing_dir: Path) -> frozenset[str]:
    """Tables the manifest declares the source never records (empty without a manifest)."""
    raw = _read_manifest(landing_dir) or {}
    names = raw.get("not_collected", [])
    if not isinstance(names, list) or not set(names) <= MAY_BE_NOT_COLLECTED:
        raise LandingZoneError(
            "manifest", f"not_collected is {names!r}", file=MANIFEST_NAME, column="not_collected",
            expectation=f"a list drawn from {sorted(MAY_BE_NOT_COLLECTED)}", next_step=f"fix {MANIFEST_NAME}")
    return frozenset(names)


def read_snapshot_at(landing_dir: Path) -> datetime | None:
    """The manifest's `snapshot_at` as naive UTC, or None when there is no manifest or no snapshot_at."""
    raw = _read_manifest(landing_dir)
    if raw is None or "snapshot_at" not in raw:
        return None
    try:
        value = datetime.fromisoformat(str(raw["snapshot_at"]).replace("Z", "+00:00"))
    except (ValueError, TypeError) as error:
        raise LandingZoneError(
            "manifest", f"cannot read snapshot_at ({type(error).__name__}: {error})", file=MANIFEST_NAME,
            column="snapshot_at", expectation='JSON like {"snapshot_at": "2025-06-30T23:59:59Z"}',
            next_step=f"fix or remove {MANIFEST_NAME}") from None
    if value.tzinfo is None:
        raise LandingZoneError(
            "manifest", "snapshot_at has no time zone", file=MANIFEST_NAME, column="snapshot_at",
            expectation="an ISO 8601 timestamp with Z or an offset", next_step="add 'Z' for UTC")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def read_declared_outcomes(landing_dir: Path) -> OutcomeDefinition:
    """The manifest's `outcomes` section (``claims`` without a manifest or without the section),
    checked against the tables the manifest declares not collected."""
    raw = _read_manifest(landing_dir) or {}
    try:
        outcomes = parse_outcome_definition(raw.get("outcomes"))
    except OutcomeDefinitionError as error:
        raise LandingZoneError(
            "manifest", f"outcomes: {error}", file=MANIFEST_NAME, column="outcomes",
            expectation='{"definition": "claims"} or {"definition": "performance", ...} (data_contracts/outcomes.py)',
            next_step=f"fix the outcomes section of {MANIFEST_NAME}") from None
    not_collected = read_not_collected(landing_dir)
    if not outcomes.is_performance and "outcomes" in raw and "disputes" in not_collected:
        raise LandingZoneError(
            "manifest", "outcomes declares claims but disputes are not collected", file=MANIFEST_NAME,
            column="outcomes", expectation="claims need the disputes table",
            next_step='declare {"definition": "performance"} outcomes or deliver disputes')
    if outcomes.needs_reviews and "reviews" in not_collected:
        raise LandingZoneError(
            "manifest", "outcomes.low_rating_at_most needs reviews, which are declared not collected",
            file=MANIFEST_NAME, column="outcomes", expectation="a rating rule only where reviews exist",
            next_step="set low_rating_at_most to null or deliver reviews")
    return outcomes


def write_manifest(
    landing_dir: Path, snapshot_at: datetime, source: str, not_collected: tuple[str, ...] = (),
    outcomes: OutcomeDefinition | None = None,
) -> Path:
    """Record when a landing zone's snapshot was taken (`snapshot_at` must be timezone-aware),
    which event tables its source never records and, when given, its outcome definition."""
    if snapshot_at.tzinfo is None:
        raise ValueError("snapshot_at must be timezone-aware")
    if not set(not_collected) <= MAY_BE_NOT_COLLECTED:
        raise ValueError(f"not_collected must be drawn from {sorted(MAY_BE_NOT_COLLECTED)}")
    path = Path(landing_dir) / MANIFEST_NAME
    stamp = snapshot_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    manifest = {"snapshot_at": stamp, "source": source, "not_collected": sorted(not_collected)}
    if outcomes is not None:
        manifest["outcomes"] = outcomes.to_manifest()
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
