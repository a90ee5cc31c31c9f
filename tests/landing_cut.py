"""A landing zone as it would have been extracted at the end of a given day: the reusable
"cut" behind the point-in-time tests (features at T, and published history that later
months must never change)."""

from __future__ import annotations

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

    def before(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame[frame[column] < cutoff].copy()

    def unknown_after(frame: pd.DataFrame, column: str) -> None:
        frame[column] = frame[column].where(frame[column] < cutoff)

    suppliers = before(zone["suppliers"], "joined_at")
    unknown_after(suppliers, "assurance_opt_in_at")
    orders = before(zone["orders"], "created_at")
    progressed_later = ~orders["status"].eq("cancelled") & (
        (orders["shipped_at"] >= cutoff) | (orders["delivered_at"] >= cutoff)
    )
    unknown_after(orders, "shipped_at")
    unknown_after(orders, "delivered_at")
    # A cancellation dated after T had not happened at T: the order then had the status
    # its other facts known by T give it. So had a delivery or a shipment recorded later.
    cancelled_later = orders["status"].eq("cancelled") & (orders["cancelled_at"] >= cutoff)
    status_at_t = orders["delivered_at"].notna().map({True: "completed", False: "placed"})
    status_at_t = status_at_t.where(orders["delivered_at"].notna() | orders["shipped_at"].isna(), "shipped")
    orders.loc[cancelled_later | progressed_later, "status"] = status_at_t[cancelled_later | progressed_later]
    orders.loc[cancelled_later, "cancelled_by"] = None
    unknown_after(orders, "cancelled_at")
    disputes = before(zone["disputes"], "opened_at")
    unresolved = ~(disputes["resolved_at"] < cutoff)
    disputes.loc[unresolved, "outcome"] = "open"
    unknown_after(disputes, "resolved_at")
    known = {"suppliers": suppliers, "orders": orders, "disputes": disputes}
    if zone.get("inquiries") is not None:
        inquiries = before(zone["inquiries"], "received_at")
        unknown_after(inquiries, "first_response_at")
        known["inquiries"] = inquiries
    else:
        known["inquiries"] = None
    known["reviews"] = None if zone.get("reviews") is None else before(zone["reviews"], "created_at")
    return known


def cut_landing_zone(source: Path, destination: Path, as_of: date) -> Path:
    """Write ``source`` (a landing-zone folder of Parquet tables) as known at the end of day
    ``as_of`` into ``destination``, one file per table; ``_truth/`` and the manifest are not copied."""
    zone = {
        table: (pq.read_table(source / table).to_pandas() if (source / table).is_dir() else None)
        for table in LANDING_TABLES
    }
    for table, frame in as_known_at(zone, as_of).items():
        if frame is None:
            continue
        (destination / table).mkdir(parents=True, exist_ok=True)
        frame.reset_index(drop=True).to_parquet(destination / table / "part-0.parquet", index=False)
    return destination
