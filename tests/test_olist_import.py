"""The Olist importer: unit tests on hand-built Olist-shaped tables, plus a run on the
real data when the shared copy is present (it is never copied into the repository)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.manifest import read_declared_outcomes, read_not_collected

from importers.olist import (
    SOURCE_FILES,
    STATUS_MAP,
    OlistSourceError,
    import_olist,
    map_olist,
)

OLIST_DATA = Path(__file__).parents[1].parent / "shared/data/olist"

UTC_TS = pa.timestamp("us", tz="UTC")

# docs/design.md §3, written out here independently of the importer so the test checks the
# contract, not the importer against itself.
CONTRACT_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "suppliers": {
        "supplier_id": pa.string(),
        "country": pa.string(),
        "membership_tier": pa.string(),
        "joined_at": UTC_TS,
        "assurance_opt_in_at": UTC_TS,
        "category": pa.string(),
    },
    "orders": {
        "order_id": pa.string(),
        "supplier_id": pa.string(),
        "buyer_id": pa.string(),
        "buyer_country": pa.string(),
        "created_at": UTC_TS,
        "amount_usd": pa.float64(),
        "payment_method": pa.string(),
        "assured": pa.bool_(),
        "promised_ship_by": UTC_TS,
        "shipped_at": UTC_TS,
        "delivered_at": UTC_TS,
        "status": pa.string(),
        "cancelled_by": pa.string(),
    },
    "disputes": {
        "dispute_id": pa.string(),
        "order_id": pa.string(),
        "opened_at": UTC_TS,
        "reason": pa.string(),
        "outcome": pa.string(),
        "resolved_at": UTC_TS,
        "refund_usd": pa.float64(),
    },
    "reviews": {
        "review_id": pa.string(),
        "order_id": pa.string(),
        "created_at": UTC_TS,
        "rating": pa.int32(),
    },
}


# --- hand-built Olist-shaped tables -------------------------------------------------


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _table(rows: list[dict], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=t) for name, t in types.items()}
    )


def olist_tables(
    *,
    sellers=("s1", "s2"),
    orders=(),
    items=(),
    payments=(),
    reviews=(),
    products=(),
    translation=(("beleza_saude", "health_beauty"), ("esporte_lazer", "sports_leisure")),
    covered=None,
) -> dict[str, pa.Table]:
    """Olist tables with the original Kaggle columns; rows are dicts with defaults."""
    order_rows = [
        {
            "customer_id": f"c-{o['order_id']}",
            "order_status": "delivered",
            "order_purchase_timestamp": ts("2017-07-01 10:00:00"),
            "order_delivered_carrier_date": ts("2017-07-03 10:00:00"),
            "order_delivered_customer_date": ts("2017-07-10 10:00:00"),
            **o,
        }
        for o in orders
    ]
    item_rows = [
        {
            "order_item_id": 1,
            "product_id": "p1",
            "shipping_limit_date": ts("2017-07-05 10:00:00"),
            "price": 10.0,
            "freight_value": 1.0,
            **i,
        }
        for i in items
    ]
    product_rows = list(products) or [
        {"product_id": "p1", "product_category_name": "beleza_saude"}
    ]
    review_rows = [
        {
            "review_score": 5,
            "review_creation_date": ts("2017-07-11 00:00:00"),
            "review_answer_timestamp": ts("2017-07-12 09:00:00"),
            **r,
        }
        for r in reviews
    ]
    covered_ids = {o["order_id"] for o in order_rows} if covered is None else set(covered)
    return {
        "sellers": _table([{"seller_id": s} for s in sellers], {"seller_id": pa.string()}),
        "orders": _table(
            order_rows,
            {
                "order_id": pa.string(),
                "customer_id": pa.string(),
                "order_status": pa.string(),
                "order_purchase_timestamp": pa.timestamp("us"),
                "order_delivered_carrier_date": pa.timestamp("us"),
                "order_delivered_customer_date": pa.timestamp("us"),
            },
        ),
        "items": _table(
            item_rows,
            {
                "order_id": pa.string(),
                "order_item_id": pa.int64(),
                "product_id": pa.string(),
                "seller_id": pa.string(),
                "shipping_limit_date": pa.timestamp("us"),
                "price": pa.float64(),
                "freight_value": pa.float64(),
            },
        ),
        "payments": _table(
            [{"payment_sequential": 1, **p} for p in payments],
            {
                "order_id": pa.string(),
                "payment_sequential": pa.int64(),
                "payment_type": pa.string(),
                "payment_value": pa.float64(),
            },
        ),
        "reviews": _table(
            review_rows,
            {
                "review_id": pa.string(),
                "order_id": pa.string(),
                "review_score": pa.int64(),
                "review_creation_date": pa.timestamp("us"),
                "review_answer_timestamp": pa.timestamp("us"),
            },
        ),
        "customers": _table(
            [
                {"customer_id": o["customer_id"], "customer_unique_id": f"u-{o['customer_id']}"}
                for o in order_rows
            ],
            {"customer_id": pa.string(), "customer_unique_id": pa.string()},
        ),
        "products": _table(
            product_rows, {"product_id": pa.string(), "product_category_name": pa.string()}
        ),
        "translation": _table(
            [
                {"product_category_name": pt, "product_category_name_english": en}
                for pt, en in translation
            ],
            {"product_category_name": pa.string(), "product_category_name_english": pa.string()},
        ),
        "order_sources": _table(
            [
                {"order_id": o["order_id"], "reviews_covered": o["order_id"] in covered_ids}
                for o in order_rows
            ],
            {"order_id": pa.string(), "reviews_covered": pa.bool_()},
        ),
    }


def item(order_id: str, n: int, seller_id: str, price=10.0, freight=1.0) -> dict:
    return {
        "order_id": order_id,
        "order_item_id": n,
        "seller_id": seller_id,
        "price": price,
        "freight_value": freight,
    }


def payment(order_id: str, sequential: int, kind: str, value: float) -> dict:
    return {
        "order_id": order_id,
        "payment_sequential": sequential,
        "payment_type": kind,
        "payment_value": value,
    }


def rows(table: pa.Table, key: str) -> dict:
    return {r[key]: r for r in table.to_pylist()}


# --- unit tests (no data needed) ----------------------------------------------------


def test_status_mapping_and_unknown_status_passed_through_for_validation():
    statuses = [*STATUS_MAP, "lost_in_space"]
    tables = olist_tables(
        orders=[{"order_id": f"o{n}", "order_status": s} for n, s in enumerate(statuses)],
        items=[{"order_id": f"o{n}", "seller_id": "s1"} for n in range(len(statuses))],
    )
    landing, summary = map_olist(tables)
    got = {r["olist_order_status"]: r["status"] for r in landing["orders"].to_pylist()}
    assert got == {
        "delivered": "completed",
        "shipped": "shipped",
        "canceled": "cancelled",
        "unavailable": "cancelled",
        "created": "placed",
        "approved": "placed",
        "invoiced": "placed",
        "processing": "placed",
        # not guessed: left for the pipeline's validation to quarantine as unknown enum
        "lost_in_space": "lost_in_space",
    }
    assert summary.unmapped_statuses == {"lost_in_space": 1}
    assert all(r["cancelled_by"] is None for r in landing["orders"].to_pylist())


def test_multi_seller_order_becomes_one_landing_order_per_seller():
    tables = olist_tables(
        orders=[{"order_id": "A"}, {"order_id": "B"}],
        items=[
            item("A", 1, "s1", price=10.0, freight=1.0),
            item("A", 2, "s1", price=5.0, freight=1.0),
            item("A", 3, "s2", price=20.0, freight=2.0),
            item("B", 1, "s2", price=7.0, freight=0.0),
        ],
    )
    landing, summary = map_olist(tables)
    orders = rows(landing["orders"], "order_id")
    assert set(orders) == {"A-s1", "A-s2", "B-s2"}
    assert orders["A-s1"]["amount_usd"] == pytest.approx(17.0)  # price + freight, BRL
    assert orders["A-s1"]["olist_item_count"] == 2
    assert orders["A-s2"]["amount_usd"] == pytest.approx(22.0)
    assert orders["A-s1"]["supplier_id"] == "s1" and orders["A-s2"]["supplier_id"] == "s2"
    # one Olist status and one set of dates, repeated on each seller's order
    for key in ("status", "created_at", "shipped_at", "delivered_at", "buyer_id"):
        assert orders["A-s1"][key] == orders["A-s2"][key]
    assert all(o["amount_currency"] == "BRL" and o["assured"] is False for o in orders.values())
    assert summary.multi_seller_orders == 1
    assert summary.landing_orders_from_multi_seller_orders == 2
    assert summary.items_mapped == summary.source_order_items == 4
    assert summary.landing_orders_written == 3


def test_orders_without_items_and_items_without_orders_are_reported_not_invented():
    tables = olist_tables(
        orders=[{"order_id": "A"}, {"order_id": "empty", "order_status": "unavailable"}],
        items=[{"order_id": "A", "seller_id": "s1"}, {"order_id": "ghost", "seller_id": "s1"}],
    )
    landing, summary = map_olist(tables)
    assert landing["orders"]["order_id"].to_pylist() == ["A-s1"]
    assert summary.orders_without_items == 1
    assert summary.items_without_order == 1
    assert summary.items_mapped + summary.items_without_order == summary.source_order_items


def test_review_ids_unique_one_review_per_landing_order_and_coverage_respected():
    tables = olist_tables(
        orders=[{"order_id": "A"}, {"order_id": "B"}, {"order_id": "C"}, {"order_id": "D"}],
        items=[
            {"order_id": "A", "order_item_id": 1, "seller_id": "s1"},
            {"order_id": "A", "order_item_id": 2, "seller_id": "s2"},
            {"order_id": "B", "seller_id": "s1"},
            {"order_id": "C", "seller_id": "s2"},
            {"order_id": "D", "seller_id": "s2"},
        ],
        reviews=[
            # Olist reuses a review id across orders
            {"review_id": "R1", "order_id": "A", "review_score": 4},
            {"review_id": "R1", "order_id": "B", "review_score": 4},
            # B was reviewed twice: the later answer supersedes the earlier one
            {
                "review_id": "R0",
                "order_id": "B",
                "review_score": 1,
                "review_creation_date": ts("2017-07-05 00:00:00"),
                "review_answer_timestamp": ts("2017-07-06 09:00:00"),
            },
            # C's sample does not cover reviews: dropped (cannot occur in the real data)
            {"review_id": "R2", "order_id": "C", "review_score": 2},
        ],
        covered={"A", "B", "D"},
    )
    landing, summary = map_olist(tables)
    reviews = landing["reviews"].to_pylist()
    ids = [r["review_id"] for r in reviews]
    assert len(ids) == len(set(ids)) == 3
    assert sorted(r["order_id"] for r in reviews) == ["A-s1", "A-s2", "B-s1"]
    assert set(ids) == {"R1-A-s1", "R1-A-s2", "R1-B-s1"}
    assert {r["rating"] for r in reviews} == {4}
    # known from the survey answer (Brazilian winter time, UTC-3), not from its sending
    assert reviews[0]["created_at"] == utc("2017-07-12 12:00:00")
    assert reviews[0]["survey_sent_at"] == utc("2017-07-11 03:00:00")
    assert summary.reviews_superseded == 1
    assert summary.reviews_outside_coverage == 1
    assert summary.reviews_written == 3


def test_payment_method_is_the_most_valuable_type_and_null_when_not_in_sample():
    tables = olist_tables(
        orders=[{"order_id": "A"}, {"order_id": "B"}, {"order_id": "C"}],
        items=[{"order_id": o, "seller_id": "s1"} for o in "ABC"],
        payments=[
            payment("A", 1, "voucher", 10.0),
            payment("A", 2, "credit_card", 30.0),
            payment("C", 1, "voucher", 20.0),
            payment("C", 2, "voucher", 20.0),
            payment("C", 3, "boleto", 35.0),
        ],
    )
    landing, summary = map_olist(tables)
    orders = rows(landing["orders"], "olist_order_id")
    assert orders["A"]["payment_method"] == "credit_card"
    assert orders["B"]["payment_method"] is None
    assert orders["C"]["payment_method"] == "voucher"  # summed per type: 40 > 35
    assert summary.landing_orders_without_payment_method == 1
    assert summary.olist_orders_without_payments == 1


def test_timestamps_converted_from_sao_paulo_local_time_to_utc():
    tables = olist_tables(
        orders=[
            {"order_id": "winter", "order_purchase_timestamp": ts("2017-07-01 10:00:00")},
            # Brazilian summer time (UTC-2) in January 2018
            {"order_id": "summer", "order_purchase_timestamp": ts("2018-01-10 10:00:00")},
        ],
        items=[item("winter", 1, "s1"), item("summer", 1, "s1")],
    )
    landing, _ = map_olist(tables)
    orders = rows(landing["orders"], "olist_order_id")
    assert orders["winter"]["created_at"] == utc("2017-07-01 13:00:00")
    assert orders["summer"]["created_at"] == utc("2018-01-10 12:00:00")
    assert orders["winter"]["promised_ship_by"] == utc("2017-07-05 13:00:00")
    for name, columns in ((n, c) for n, c in CONTRACT_COLUMNS.items() if n in landing):
        for column, dtype in columns.items():
            assert landing[name].schema.field(column).type == dtype, (name, column)


def test_suppliers_join_date_category_and_sellers_without_items():
    tables = olist_tables(
        sellers=("s1", "s2", "idle"),
        orders=[
            {"order_id": "A", "order_purchase_timestamp": ts("2017-03-01 09:00:00")},
            {"order_id": "B", "order_purchase_timestamp": ts("2017-02-01 09:00:00")},
            {"order_id": "C"},
        ],
        items=[
            {"order_id": "A", "seller_id": "s1", "product_id": "sport"},
            {"order_id": "B", "seller_id": "s1", "product_id": "beauty"},
            {"order_id": "C", "seller_id": "s2", "product_id": "gamer"},
            {"order_id": "C", "order_item_id": 2, "seller_id": "s2", "product_id": "nocat"},
        ],
        products=[
            {"product_id": "sport", "product_category_name": "esporte_lazer"},
            {"product_id": "beauty", "product_category_name": "beleza_saude"},
            {"product_id": "gamer", "product_category_name": "pc_gamer"},  # no translation
            {"product_id": "nocat", "product_category_name": None},
        ],
    )
    landing, summary = map_olist(tables)
    suppliers = rows(landing["suppliers"], "supplier_id")
    assert set(suppliers) == {"s1", "s2"}
    assert summary.sellers_without_items == 1
    s1 = suppliers["s1"]
    assert s1["joined_at"] == utc("2017-02-01 11:00:00")  # first order, summer time UTC-2
    assert s1["category"] == "health_beauty"  # 1-1 tie: broken by name
    assert suppliers["s2"]["category"] == "pc_gamer"  # untranslated: Portuguese name kept
    assert s1["country"] == "BR" and s1["membership_tier"] == "unknown"
    assert s1["assurance_opt_in_at"] is None  # not volunteered


def test_known_mess_is_kept_for_validation():
    tables = olist_tables(
        orders=[
            {
                "order_id": "A",
                "order_purchase_timestamp": ts("2017-07-05 10:00:00"),
                "order_delivered_carrier_date": ts("2017-07-04 10:00:00"),
                "order_delivered_customer_date": ts("2017-07-03 10:00:00"),
            },
            {"order_id": "B", "order_delivered_customer_date": None},
        ],
        items=[
            {"order_id": "A", "seller_id": "s1", "shipping_limit_date": ts("2020-02-05 03:30:51")},
            {"order_id": "B", "seller_id": "s1"},
        ],
    )
    landing, summary = map_olist(tables)
    a = rows(landing["orders"], "olist_order_id")["A"]
    assert a["shipped_at"] < a["created_at"] and a["delivered_at"] < a["shipped_at"]
    assert (summary.shipped_before_created, summary.delivered_before_shipped) == (1, 1)
    assert summary.promised_ship_by_after_2019 == 1
    assert summary.completed_without_delivered_at == 1


def _write_source(tables: dict[str, pa.Table], src: Path) -> None:
    for name, relative in SOURCE_FILES.items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(tables[name], src / relative)


def test_import_declares_disputes_and_inquiries_not_collected(tmp_path):
    src = tmp_path / "olist"
    _write_source(
        olist_tables(
            orders=[{"order_id": "A"}],
            items=[{"order_id": "A", "seller_id": "s1"}],
            reviews=[{"review_id": "R", "order_id": "A"}],
        ),
        src,
    )
    out = tmp_path / "landing"
    summary = import_olist(src, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "_landing_zone.json", "_provenance", "orders", "reviews", "suppliers",
    ]
    assert read_not_collected(out) == {"disputes", "inquiries"}
    # no claims: the models learn Olist's own order failures
    assert read_declared_outcomes(out).canonical() == "performance(late>7d,undelivered>30d,cancelled,rating<=1)"
    assert summary.disputes_written == 0 and summary.inquiries_written is False
    assert any("no disputes" in c for c in summary.caveats)
    with pytest.raises(FileExistsError):
        import_olist(src, out)
    import_olist(src, out, overwrite=True)


def test_missing_source_column_names_the_file_and_column(tmp_path):
    src = tmp_path / "olist"
    tables = olist_tables(orders=[{"order_id": "A"}], items=[{"order_id": "A", "seller_id": "s1"}])
    tables["items"] = tables["items"].drop_columns(["shipping_limit_date"])
    _write_source(tables, src)
    expected = "olist_order_items_dataset.parquet.*shipping_limit_date"
    with pytest.raises(OlistSourceError, match=expected):
        import_olist(src, tmp_path / "landing")
    with pytest.raises(OlistSourceError, match="not found"):
        import_olist(tmp_path / "nowhere", tmp_path / "landing")


# --- the real Olist data (skipped when the shared copy is absent) -------------------


@pytest.fixture(scope="module")
def real_import(tmp_path_factory):
    if not (OLIST_DATA / SOURCE_FILES["orders"]).is_file():
        pytest.skip(f"Olist data not found at {OLIST_DATA}; see docs/olist.md (Getting the data)")
    out = tmp_path_factory.mktemp("olist") / "landing"
    return out, import_olist(OLIST_DATA, out)


def _source_count(sql: str) -> int:
    return duckdb.sql(sql.format(d=OLIST_DATA)).fetchone()[0]


def test_real_landing_zone_has_the_contract_columns_and_types(real_import):
    out, _ = real_import
    assert not (out / "inquiries").exists()  # Olist has no inquiries: absent, not invented
    assert not (out / "disputes").exists()  # nor disputes: declared not collected, never invented
    for name, columns in CONTRACT_COLUMNS.items():
        if name == "disputes":
            continue
        schema = pq.read_schema(next((out / name).glob("*.parquet")))
        for column, dtype in columns.items():
            assert schema.field(column).type == dtype, (name, column)


def test_real_counts_reconcile_with_the_source(real_import):
    out, summary = real_import
    orders = pq.read_table(out / "orders")
    suppliers = pq.read_table(out / "suppliers")
    source_items = _source_count("select count(*) from '{d}/olist_order_items_dataset.parquet'")
    # every order item is in exactly one landing order, or reported
    assert sum(orders["olist_item_count"].to_pylist()) + summary.items_without_order == source_items
    assert summary.items_mapped == source_items
    seller_pairs = _source_count(
        "select count(*) from (select distinct order_id, seller_id "
        "from '{d}/olist_order_items_dataset.parquet')"
    )
    assert orders.num_rows == summary.landing_orders_written == seller_pairs
    assert len(set(orders["order_id"].to_pylist())) == orders.num_rows
    assert len(set(suppliers["supplier_id"].to_pylist())) == suppliers.num_rows
    assert set(orders["supplier_id"].to_pylist()) == set(suppliers["supplier_id"].to_pylist())
    assert summary.source_orders - summary.orders_without_items == len(
        set(orders["olist_order_id"].to_pylist())
    )
    assert summary.multi_seller_orders == 430  # README: orders with several sellers
    assert summary.suppliers_written == 2432  # README: sellers with items
    assert min(orders["amount_usd"].to_pylist()) > 0
    assert not any(orders["assured"].to_pylist())
    assert set(orders["status"].to_pylist()) <= {"placed", "shipped", "completed", "cancelled"}
    assert summary.landing_orders_without_payment_method > 0  # payments are sampled


def test_real_review_ids_unique_and_only_on_covered_orders(real_import):
    out, summary = real_import
    reviews = pq.read_table(out / "reviews")
    ids = reviews["review_id"].to_pylist()
    assert len(ids) == len(set(ids)) == summary.reviews_written > 0
    order_ids = set(pq.read_table(out / "orders")["order_id"].to_pylist())
    assert set(reviews["order_id"].to_pylist()) <= order_ids
    assert len(set(reviews["order_id"].to_pylist())) == len(ids)  # one per landing order
    assert set(reviews["rating"].to_pylist()) <= {1, 2, 3, 4, 5}


def test_real_known_mess_is_preserved(real_import):
    out, summary = real_import
    con = duckdb.connect()
    orders = f"read_parquet('{out}/orders/*.parquet')"
    shipped_before_created = con.sql(
        f"select count(*) from {orders} where shipped_at < created_at"
    ).fetchone()[0]
    assert shipped_before_created >= 1
    assert shipped_before_created == summary.shipped_before_created
    assert con.sql(
        f"select count(*) from {orders} where delivered_at < shipped_at"
    ).fetchone()[0] >= 1
    assert con.sql(
        f"select count(*) from {orders} where promised_ship_by >= '2020-01-01'"
    ).fetchone()[0] == 1
