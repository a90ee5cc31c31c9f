"""Hand-built small landing zones for the data_contracts tests (no dependency on synthetic/)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd

BASE = datetime(2025, 1, 1, 9, 0, 0)


def valid_tables(n_suppliers: int = 4, orders_per_supplier: int = 6) -> dict[str, pd.DataFrame]:
    """A small, fully valid landing zone as pandas frames (all optional columns present).

    Fresh copies on every call: tests mutate them.
    """
    return {name: frame.copy() for name, frame in _valid_tables(n_suppliers, orders_per_supplier).items()}


@lru_cache(maxsize=8)
def _valid_tables(n_suppliers: int, orders_per_supplier: int) -> dict[str, pd.DataFrame]:
    suppliers = pd.DataFrame({
        "supplier_id": [f"S{i:03d}" for i in range(n_suppliers)],
        "country": [["CN", "VN", "IN", "TR"][i % 4] for i in range(n_suppliers)],
        "membership_tier": [["free", "gold", "verified", "unknown"][i % 4] for i in range(n_suppliers)],
        "joined_at": [BASE - timedelta(days=400 + i) for i in range(n_suppliers)],
        "assurance_opt_in_at": [BASE - timedelta(days=100) if i % 2 == 0 else None for i in range(n_suppliers)],
        "category": [["textiles", "electronics"][i % 2] for i in range(n_suppliers)],
    })
    orders = []
    k = 0
    for i in range(n_suppliers):
        for j in range(orders_per_supplier):
            created = BASE + timedelta(days=3 * j + i, hours=j)
            status = ["completed", "completed", "shipped", "placed", "cancelled", "completed"][j % 6]
            shipped = created + timedelta(days=2) if status in ("completed", "shipped") else None
            delivered = shipped + timedelta(days=5) if status == "completed" else None
            orders.append({
                "order_id": f"O{k:05d}",
                "supplier_id": f"S{i:03d}",
                "buyer_id": f"B{(k * 7) % 11:03d}",
                "buyer_country": ["US", "DE", "FR"][k % 3],
                "created_at": created,
                "amount_usd": 100.0 + 10 * k,
                "payment_method": ["tt", "credit_card"][k % 2],
                "assured": bool(k % 2),
                "promised_ship_by": created + timedelta(days=4),
                "shipped_at": shipped,
                "delivered_at": delivered,
                "status": status,
                "cancelled_by": "buyer" if status == "cancelled" else None,
            })
            k += 1
    orders = pd.DataFrame(orders)
    # The last order pins the horizon: 2025-02-10, later than every other timestamp.
    orders.loc[len(orders) - 1, ["created_at", "promised_ship_by"]] = [datetime(2025, 2, 10, 12), datetime(2025, 2, 14)]
    orders.loc[len(orders) - 1, ["shipped_at", "delivered_at", "status"]] = [None, None, "placed"]
    completed = orders[orders.status == "completed"].reset_index(drop=True)
    disputes = pd.DataFrame({
        "dispute_id": [f"D{i:04d}" for i in range(min(4, len(completed)))],
        "order_id": completed.order_id[:4].tolist(),
        "opened_at": [t + timedelta(days=1) for t in completed.delivered_at[:4]],
        "reason": ["quality", "late_shipment", "not_received", "other"][: min(4, len(completed))],
        "outcome": ["buyer_favored", "supplier_favored", "open", "settled"][: min(4, len(completed))],
        "resolved_at": [t + timedelta(days=5) if o != "open" else None
                        for t, o in zip(completed.delivered_at[:4],
                                        ["buyer_favored", "supplier_favored", "open", "settled"])],
        "refund_usd": [min(50.0, a) if o in ("buyer_favored", "settled") else 0.0
                       for a, o in zip(completed.amount_usd[:4],
                                       ["buyer_favored", "supplier_favored", "open", "settled"])],
    })
    reviews = pd.DataFrame({
        "review_id": [f"R{i:04d}" for i in range(len(completed))],
        "order_id": completed.order_id.tolist(),
        "created_at": [t + timedelta(hours=3) for t in completed.delivered_at],
        "rating": [(i % 5) + 1 for i in range(len(completed))],
    })
    inquiries = pd.DataFrame({
        "inquiry_id": [f"Q{i:04d}" for i in range(2 * n_suppliers)],
        "supplier_id": [f"S{i % n_suppliers:03d}" for i in range(2 * n_suppliers)],
        "buyer_id": [f"B{i:03d}" for i in range(2 * n_suppliers)],
        "received_at": [BASE + timedelta(days=i) for i in range(2 * n_suppliers)],
        "first_response_at": [BASE + timedelta(days=i, hours=5) if i % 3 else None for i in range(2 * n_suppliers)],
    })
    for frame in (suppliers, orders, disputes, reviews, inquiries):
        for col in frame.columns:
            if col.endswith("_at") or col == "promised_ship_by":
                frame[col] = pd.to_datetime(frame[col])
    # The pinned last order must stay the latest event whatever the sizes.
    latest = max(frame[col].max() for frame in (orders.iloc[:-1], disputes, reviews, inquiries)
                 for col in frame.columns if col.endswith("_at"))
    if latest >= pd.Timestamp("2025-02-10"):
        pin = (latest + pd.Timedelta(days=1)).normalize() + pd.Timedelta(hours=12)
        orders.loc[len(orders) - 1, ["created_at", "promised_ship_by"]] = [pin, pin + pd.Timedelta(days=4)]
    return {"suppliers": suppliers, "orders": orders, "inquiries": inquiries,
            "disputes": disputes, "reviews": reviews}


def write_landing(root: Path, tables: dict[str, pd.DataFrame], fmt: str = "parquet",
                  file_name: str = "part-0") -> Path:
    """Write frames as `root/<table>/<file_name>.<fmt>`; returns root."""
    for name, frame in tables.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            frame.to_parquet(folder / f"{file_name}.parquet", index=False)
        else:
            out = frame.copy()
            for col in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[col]):
                    out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S").where(out[col].notna(), None)
            out.to_csv(folder / f"{file_name}.csv", index=False)
    return root


def assert_reconciles(report, con) -> None:
    """docs/design.md §3: every row read is either accepted or quarantined, per table."""
    for name, s in report.tables.items():
        accepted = con.execute(f"SELECT count(*) FROM validated.{name}").fetchone()[0]
        quarantined = con.execute(f"SELECT count(*) FROM quarantine.{name}").fetchone()[0]
        assert s.rows_read == accepted + quarantined == s.rows_accepted + s.rows_quarantined
