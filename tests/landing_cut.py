"""A landing zone as it would have been extracted at the end of a given day: the reusable
"cut" behind the point-in-time tests (features at T, and published history that later
months must never change)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

LANDING_TABLES = ("suppliers", "orders", "disputes", "inquiries", "reviews")


def as_known_at(zone: dict[str, pd.DataFrame | None], as_of: date) -> dict[str, pd.DataFrame | None]:
    """The landing zone as it would have been extracted at the end of day ``as_of``:
    rows created later dropped, facts recorded later (shipment, delivery, answer,
    resolution, opt-in, cancellation) not yet there."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)

    def known(values: pd.Series) -> pd.Series:
        # the generator writes UTC-aware timestamps, hand-made frames naive ones (meaning UTC)
        zone = getattr(values.dt, "tz", None)
        return values < (cutoff.tz_localize(zone) if zone is not None else cutoff)

    def before(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame[known(frame[column])].copy()

    def unknown_after(frame: pd.DataFrame, column: str) -> None:
        frame[column] = frame[column].where(known(frame[column]))

    suppliers = before(zone["suppliers"], "joined_at")
    unknown_after(suppliers, "assurance_opt_in_at")
    orders = before(zone["orders"], "created_at")
    progressed_later = ~orders["status"].eq("cancelled") & (
        (orders["shipped_at"].notna() & ~known(orders["shipped_at"]))
        | (orders["delivered_at"].notna() & ~known(orders["delivered_at"]))
    )
    unknown_after(orders, "shipped_at")
    unknown_after(orders, "delivered_at")
    # A cancellation dated after T had not happened at T: the order then had the status
    # its other facts known by T give it. So had a delivery or a shipment recorded later.
    cancelled_later = orders["status"].eq("cancelled") & orders["cancelled_at"].notna() & ~known(orders["cancelled_at"])
    status_at_t = orders["delivered_at"].notna().map({True: "completed", False: "placed"})
    status_at_t = status_at_t.where(orders["delivered_at"].notna() | orders["shipped_at"].isna(), "shipped")
    orders.loc[cancelled_later | progressed_later, "status"] = status_at_t[cancelled_later | progressed_later]
    orders.loc[cancelled_later, "cancelled_by"] = None
    unknown_after(orders, "cancelled_at")
    disputes = before(zone["disputes"], "opened_at")
    unresolved = ~known(disputes["resolved_at"])
    disputes.loc[unresolved, "outcome"] = "open"
    unknown_after(disputes, "resolved_at")
    extracted = {"suppliers": suppliers, "orders": orders, "disputes": disputes}
    if zone.get("inquiries") is not None:
        inquiries = before(zone["inquiries"], "received_at")
        unknown_after(inquiries, "first_response_at")
        extracted["inquiries"] = inquiries
    else:
        extracted["inquiries"] = None
    extracted["reviews"] = None if zone.get("reviews") is None else before(zone["reviews"], "created_at")
    return extracted


def cut_landing_zone(source: Path, destination: Path, as_of: date) -> Path:
    """Write ``source`` (a landing-zone folder of Parquet tables) as known at the end of day
    ``as_of`` into ``destination``, one file per table, with a manifest whose ``snapshot_at``
    is the end of that day (the extraction time; the data horizon). ``_truth/`` is not copied."""
    zone = {
        table: (pq.read_table(source / table).to_pandas() if (source / table).is_dir() else None)
        for table in LANDING_TABLES
    }
    for table, frame in as_known_at(zone, as_of).items():
        if frame is None:
            continue
        (destination / table).mkdir(parents=True, exist_ok=True)
        frame.reset_index(drop=True).to_parquet(destination / table / "part-0.parquet", index=False)
    (destination / "_landing_zone.json").write_text(json.dumps({"snapshot_at": f"{as_of.isoformat()}T23:59:59Z"}))
    return destination
