"""Small validated-table fixtures for the features tests (random and hand-built).

Random zones deliberately include what makes time semantics hard: timestamps exactly at
a month's first instant and at 23:59:59.999999 on a month end, answers and resolutions
months after the event, missing values in every optional column, several disputes per
order, repeat buyers and ties. They are *not* realistic trading histories (the validator
would quarantine some rows); production and reference must agree on them anyway.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

VALIDATED_DDL = {
    "suppliers": "supplier_id VARCHAR, country VARCHAR, membership_tier VARCHAR, joined_at TIMESTAMP, "
    "assurance_opt_in_at TIMESTAMP, category VARCHAR",
    "orders": "order_id VARCHAR, supplier_id VARCHAR, buyer_id VARCHAR, buyer_country VARCHAR, "
    "created_at TIMESTAMP, amount_usd DOUBLE, payment_method VARCHAR, assured BOOLEAN, "
    "promised_ship_by TIMESTAMP, shipped_at TIMESTAMP, delivered_at TIMESTAMP, status VARCHAR, "
    "cancelled_by VARCHAR, cancelled_at TIMESTAMP",
    "inquiries": "inquiry_id VARCHAR, supplier_id VARCHAR, buyer_id VARCHAR, received_at TIMESTAMP, "
    "first_response_at TIMESTAMP",
    "disputes": "dispute_id VARCHAR, order_id VARCHAR, opened_at TIMESTAMP, reason VARCHAR, outcome VARCHAR, "
    "resolved_at TIMESTAMP, refund_usd DOUBLE",
    "reviews": "review_id VARCHAR, order_id VARCHAR, created_at TIMESTAMP, rating INTEGER",
}
ZONE_START = pd.Timestamp("2023-01-01")
ZONE_MONTHS = 24


def create_validated_tables(
    con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame | None], schema: str = "validated"
) -> None:
    """Create ``{schema}.<table>`` typed as in docs/architecture.md; None = table absent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table, ddl in VALIDATED_DDL.items():
        frame = frames.get(table)
        con.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
        if frame is None:
            continue
        con.execute(f"CREATE TABLE {schema}.{table} ({ddl})")
        if len(frame):
            con.register("incoming_rows", frame)
            con.execute(f"INSERT INTO {schema}.{table} BY NAME SELECT * FROM incoming_rows")
            con.unregister("incoming_rows")


def connection_with(frames: dict[str, pd.DataFrame | None]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_validated_tables(con, frames)
    return con


def _timestamps(rng: np.random.Generator, n: int) -> pd.Series:
    """Random instants in the zone, a third of them on month boundaries (first instant of
    a month, or the last second / microsecond of a month end)."""
    month = rng.integers(0, ZONE_MONTHS, n)
    month_start = pd.to_datetime(
        [ZONE_START + pd.DateOffset(months=int(m)) for m in month]
    ) if n else pd.DatetimeIndex([])
    next_month = month_start + pd.DateOffset(months=1)
    offset = pd.to_timedelta(rng.integers(0, 28 * 24 * 3600, n), unit="s")
    kind = rng.integers(0, 6, n)
    result = np.where(kind == 0, month_start, month_start + offset)
    result = np.where(kind == 1, next_month - pd.Timedelta(seconds=1), result)
    result = np.where(kind == 2, next_month - pd.Timedelta(microseconds=1), result)
    return pd.Series(pd.to_datetime(result))


def _later(rng: np.random.Generator, base: pd.Series, max_days: int, null_share: float) -> pd.Series:
    """base + a random delay (hours to ``max_days``), NULL with probability null_share."""
    delay = pd.to_timedelta(rng.integers(0, max_days * 24 * 3600, len(base)), unit="s")
    snapped = rng.random(len(base)) < 0.2  # some land exactly on midnight
    later = (base + delay).where(~snapped, (base + delay).dt.floor("D"))
    return later.where(rng.random(len(base)) >= null_share)


def random_landing_zone(
    seed: int,
    n_suppliers: int = 6,
    n_orders: int = 120,
    with_inquiries: bool = True,
    with_reviews: bool = True,
) -> dict[str, pd.DataFrame | None]:
    rng = np.random.default_rng(seed)
    supplier_ids = [f"s{i:03d}" for i in range(n_suppliers)]
    joined = _timestamps(rng, n_suppliers)
    suppliers = pd.DataFrame(
        {
            "supplier_id": supplier_ids,
            "country": rng.choice(["CN", "VN", "IN"], n_suppliers),
            "membership_tier": rng.choice(["free", "gold", "verified", "unknown"], n_suppliers),
            "joined_at": joined.where(rng.random(n_suppliers) > 0.1),
            "assurance_opt_in_at": _later(rng, joined, 200, 0.4),
            "category": rng.choice(["toys", "textiles", None], n_suppliers),
        }
    )
    created = _timestamps(rng, n_orders)
    shipped = _later(rng, created, 20, 0.2)
    status = rng.choice(["placed", "shipped", "completed", "cancelled", None], n_orders, p=[0.1, 0.1, 0.6, 0.15, 0.05])
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i:05d}" for i in range(n_orders)],
            "supplier_id": rng.choice(supplier_ids + ["ghost"], n_orders),
            "buyer_id": rng.choice(["b1", "b2", "b3", "b4", None], n_orders),
            "buyer_country": "US",
            "created_at": created,
            "amount_usd": np.round(rng.uniform(1, 500, n_orders), 2),
            "payment_method": rng.choice(["tt", "credit_card", "paypal", None], n_orders),
            "assured": rng.random(n_orders) < 0.5,
            "promised_ship_by": _later(rng, created, 15, 0.15),
            "shipped_at": shipped,
            "delivered_at": _later(rng, shipped.fillna(created), 40, 0.3),
            "status": status,
            "cancelled_by": np.where(status == "cancelled", rng.choice(["buyer", "supplier", "platform"], n_orders), None),
        }
    )
    n_disputes = n_orders // 4
    disputed = rng.integers(0, max(n_orders, 1), n_disputes)
    opened = _later(rng, orders["created_at"].iloc[disputed].reset_index(drop=True), 90, 0.0)
    disputes = pd.DataFrame(
        {
            "dispute_id": [f"d{i:05d}" for i in range(n_disputes)],
            "order_id": orders["order_id"].iloc[disputed].to_numpy(),
            "opened_at": opened,
            "reason": rng.choice(["late_shipment", "quality", "not_received", "other"], n_disputes),
            "outcome": rng.choice(["open", "buyer_favored", "supplier_favored", "settled", "withdrawn"], n_disputes),
            "resolved_at": _later(rng, opened, 100, 0.2),
            "refund_usd": np.round(rng.uniform(0, 50, n_disputes), 2),
        }
    )
    frames: dict[str, pd.DataFrame | None] = {"suppliers": suppliers, "orders": orders, "disputes": disputes}
    if with_inquiries:
        n_inquiries = n_orders
        received = _timestamps(rng, n_inquiries)
        frames["inquiries"] = pd.DataFrame(
            {
                "inquiry_id": [f"q{i:05d}" for i in range(n_inquiries)],
                "supplier_id": rng.choice(supplier_ids, n_inquiries),
                "buyer_id": rng.choice(["b1", "b2", "b9"], n_inquiries),
                "received_at": received,
                "first_response_at": _later(rng, received, 45, 0.25),
            }
        )
    else:
        frames["inquiries"] = None
    if with_reviews:
        n_reviews = n_orders // 2
        reviewed = rng.integers(0, max(n_orders, 1), n_reviews)
        frames["reviews"] = pd.DataFrame(
            {
                "review_id": [f"r{i:05d}" for i in range(n_reviews)],
                "order_id": orders["order_id"].iloc[reviewed].to_numpy(),
                "created_at": _later(rng, orders["created_at"].iloc[reviewed].reset_index(drop=True), 60, 0.0),
                "rating": pd.array(rng.integers(1, 6, n_reviews), dtype="Int32"),
            }
        )
    else:
        frames["reviews"] = None
    # Drawn last so the other tables' random streams stay as they were. Some cancelled
    # orders carry no time (a source without the column), some were cancelled months after
    # creation (even after delivery): a cancellation must count only from when it happened.
    cancelled_at = _later(rng, orders["created_at"], 120, 0.3)
    orders["cancelled_at"] = cancelled_at.where(orders["status"].eq("cancelled").to_numpy())
    return frames


def zone_as_of_dates() -> list[date]:
    from features import month_ends

    return month_ends(date(2023, 1, 1), date(2025, 3, 31))


def test_random_zone_builds_typed_tables():
    con = connection_with(random_landing_zone(seed=1, with_reviews=False))
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == {"suppliers", "orders", "disputes", "inquiries"}
    assert con.execute("SELECT typeof(cancelled_by) FROM validated.orders LIMIT 1").fetchone() == ("VARCHAR",)
