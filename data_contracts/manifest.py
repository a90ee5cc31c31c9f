"""The optional landing-zone manifest `_landing_zone.json`: when the snapshot was taken.

A landing zone is a snapshot; events after the snapshot cannot be in it. Without a
manifest the snapshot time (the data horizon) is inferred from the newest orders, which
is right for a feed cut at the end of a day of trading, but wrong for an export taken
later than its last order (Olist: orders stop in August 2018, deliveries and reviews go on
into October): it would quarantine real deliveries as "after the horizon". A manifest
states the time instead. The file name starts with `_`, so readers of the table folders
ignore it (DESIGN §3 is unchanged; this is an optional addition).

    {"snapshot_at": "2018-10-17T17:30:18Z", "source": "olist"}
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from data_contracts.errors import LandingZoneError

MANIFEST_NAME = "_landing_zone.json"


def read_snapshot_at(landing_dir: Path) -> datetime | None:
    """The manifest's `snapshot_at` as naive UTC, or None when there is no manifest."""
    path = Path(landing_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        value = datetime.fromisoformat(str(raw["snapshot_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError) as error:
        raise LandingZoneError(
            "manifest", f"cannot read snapshot_at ({type(error).__name__}: {error})", file=MANIFEST_NAME,
            column="snapshot_at", expectation='JSON like {"snapshot_at": "2025-06-30T23:59:59Z"}',
            next_step=f"fix or remove {MANIFEST_NAME}") from None
    if value.tzinfo is None:
        raise LandingZoneError(
            "manifest", "snapshot_at has no time zone", file=MANIFEST_NAME, column="snapshot_at",
            expectation="an ISO 8601 timestamp with Z or an offset", next_step="add 'Z' for UTC")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def write_manifest(landing_dir: Path, snapshot_at: datetime, source: str) -> Path:
    """Record when a landing zone's snapshot was taken (`snapshot_at` must be timezone-aware)."""
    if snapshot_at.tzinfo is None:
        raise ValueError("snapshot_at must be timezone-aware")
    path = Path(landing_dir) / MANIFEST_NAME
    stamp = snapshot_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps({"snapshot_at": stamp, "source": source}, indent=2) + "\n", encoding="utf-8")
    return path
