"""Turn the Olist public marketplace data into a landing zone (docs/design.md §3).

Olist ("Brazilian E-Commerce Public Dataset by Olist") is real marketplace data that
nobody on this project wrote. It is not a Trade Assurance programme, so the mapping
keeps what Olist knows, marks what it does not, and never invents the rest:

* sellers -> ``suppliers``; one Olist order's items of one seller -> one landing order;
  reviews -> ``reviews``; no ``disputes`` (declared not collected in ``_landing_zone.json``);
  no ``inquiries`` folder (Olist has no inquiries).
* Outcomes are Olist's own order failures (``OLIST_OUTCOMES``, declared in the manifest):
  shipped to the carrier more than 7 days after ``shipping_limit_date``, not delivered 30
  days after it, or rated one star. Olist does not say who cancelled an order, so no
  cancellation counts as the seller's; a cancelled order that never reached the carrier
  fails the late-shipment rule at its deadline anyway.
* Amounts stay in BRL in the contract column ``amount_usd`` (no FX conversion).
* Olist timestamps are Brazilian local time; they are converted from
  ``America/Sao_Paulo`` to UTC.
* The known mess (carrier dates before purchase, deliveries before the carrier date,
  a shipping limit in 2020, delivered orders without delivery dates) is kept as is:
  quarantining it is the pipeline's validation's job, not the importer's.

``docs/olist.md`` has the column-by-column mapping and the reasons.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_contracts.manifest import write_manifest
from data_contracts.outcomes import OutcomeDefinition

# Where the shared copy of the data lives next to the repository (never inside it:
# the Olist licence is CC BY-NC-SA and the data is not ours to redistribute).
DEFAULT_OLIST_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "olist"

OLIST_TIMEZONE = "America/Sao_Paulo"
OLIST_CURRENCY = "BRL"

# Olist order_status -> landing status (docs/design.md §3: placed, shipped, completed, cancelled).
# A status not listed here is passed through unchanged, so the pipeline's validation
# quarantines it as an unknown enum instead of the importer guessing.
STATUS_MAP: dict[str, str] = {
    "delivered": "completed",  # delivered to the customer: the deal is done
    "shipped": "shipped",  # handed to the carrier, not yet delivered
    "canceled": "cancelled",  # cancelled; Olist does not say by whom
    "unavailable": "cancelled",  # the item was unavailable, the order never went ahead
    "created": "placed",  # the following four are stages before the carrier
    "approved": "placed",
    "invoiced": "placed",
    "processing": "placed",
}

# Source files and the columns the mapping reads (original Kaggle names).
SOURCE_FILES: dict[str, str] = {
    "sellers": "olist_sellers_dataset.parquet",
    "orders": "olist_orders_dataset.parquet",
    "items": "olist_order_items_dataset.parquet",
    "payments": "olist_order_payments_dataset.parquet",
    "reviews": "olist_order_reviews_dataset.parquet",
    "customers": "olist_customers_dataset.parquet",
    "products": "olist_products_dataset.parquet",
    "translation": "product_category_name_translation.parquet",
    "order_sources": "_provenance/order_sources.parquet",
}
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sellers": ("seller_id",),
    "orders": (
        "order_id",
        "customer_id",
        "order_status",
        "order_purchase_timestamp",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
    ),
    "items": (
        "order_id",
        "order_item_id",
        "product_id",
        "seller_id",
        "shipping_limit_date",
        "price",
        "freight_value",
    ),
    "payments": ("order_id", "payment_sequential", "payment_type", "payment_value"),
    "reviews": (
        "review_id",
        "order_id",
        "review_score",
        "review_creation_date",
        "review_answer_timestamp",
    ),
    "customers": ("customer_id", "customer_unique_id"),
    "products": ("product_id", "product_category_name"),
    "translation": ("product_category_name", "product_category_name_english"),
    "order_sources": ("order_id", "reviews_covered"),
}

_UTC_TS = pa.timestamp("us", tz="UTC")

# Landing-zone schemas: the docs/design.md §3 columns first, in contract order, then a few
# extra columns (allowed: "extra columns are ignored") that keep the link to Olist.
LANDING_SCHEMAS: dict[str, pa.Schema] = {
    "suppliers": pa.schema(
        [
            ("supplier_id", pa.string()),
            ("country", pa.string()),
            ("membership_tier", pa.string()),
            ("joined_at", _UTC_TS),
            ("assurance_opt_in_at", _UTC_TS),
            ("category", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("supplier_id", pa.string()),
            ("buyer_id", pa.string()),
            ("buyer_country", pa.string()),
            ("created_at", _UTC_TS),
            ("amount_usd", pa.float64()),
            ("payment_method", pa.string()),
            ("assured", pa.bool_()),
            ("promised_ship_by", _UTC_TS),
            ("shipped_at", _UTC_TS),
            ("delivered_at", _UTC_TS),
            ("status", pa.string()),
            ("cancelled_by", pa.string()),
            # extras
            ("amount_currency", pa.string()),
            ("olist_order_id", pa.string()),
            ("olist_item_count", pa.int32()),
            ("olist_order_status", pa.string()),
        ]
    ),
    "reviews": pa.schema(
        [
            ("review_id", pa.string()),
            ("order_id", pa.string()),
            ("created_at", _UTC_TS),
            ("rating", pa.int32()),
            # extras
            ("olist_review_id", pa.string()),
            ("survey_sent_at", _UTC_TS),
        ]
    ),
    "disputes": pa.schema(
        [
            ("dispute_id", pa.string()),
            ("order_id", pa.string()),
            ("opened_at", _UTC_TS),
            ("reason", pa.string()),
            ("outcome", pa.string()),
            ("resolved_at", _UTC_TS),
            ("refund_usd", pa.float64()),
        ]
    ),
}

# Olist has no claims: what its models learn is order failures (module docstring). The
# defaults of data_contracts.outcomes, spelled out so the manifest shows every rule; a
# cancellation by the supplier cannot occur (cancelled_by is always null).
OLIST_OUTCOMES = OutcomeDefinition(
    definition="performance", late_shipment_grace_days=7, not_delivered_after_days=30,
    supplier_cancelled=True, low_rating_at_most=1,
)

# Said by the summary (and printed by the CLI) every time, because they decide what the
# pipeline can honestly do with this landing zone.
CAVEATS: tuple[str, ...] = (
    "Olist has no disputes: the manifest declares disputes not collected, so dispute features "
    "are null (unknown); the labels are Olist's own order failures, declared as performance "
    "outcomes in the manifest (late to the carrier, undelivered, one-star reviews), each "
    "counted as a refund of the order's amount.",
    "Olist has no inquiries: the manifest declares inquiries not collected, response features are null.",
    "Olist has no Trade Assurance: every order has assured = false and no supplier opted in.",
    "amount_usd holds Brazilian reais (BRL), not US dollars: amounts were not converted.",
    "joined_at is the seller's first order in the sample (Olist has no join date).",
    "Reviews and payments cover only part of the orders (sampling): a missing review or "
    "payment method means 'not in the sample', not 'none'.",
)


class OlistSourceError(ValueError):
    """The Olist source folder is missing a file or a column the mapping needs."""


@dataclass(frozen=True)
class OlistImportSummary:
    """What the import read, wrote and left out; the counts reconcile (see `check`)."""

    source: str
    out: str
    # suppliers
    source_sellers: int
    sellers_without_items: int  # no order in the sample: no join date, nothing to score
    suppliers_written: int
    # orders
    source_orders: int
    orders_without_items: int  # no item, so no seller: cannot become a supplier's order
    source_order_items: int
    items_without_order: int  # item whose order row is missing: not mapped
    items_mapped: int
    landing_orders_written: int  # one per (Olist order, seller)
    multi_seller_orders: int  # Olist orders split into one landing order per seller
    landing_orders_from_multi_seller_orders: int
    landing_orders_without_payment_method: int  # the order's payments are not in the sample
    olist_orders_without_payments: int  # the same, counted in Olist orders
    landing_orders_without_buyer: int  # customer row missing: left null for validation
    landing_status_counts: dict[str, int]
    olist_status_counts: dict[str, int]  # Olist order_status of the landing orders
    unmapped_statuses: dict[str, int]  # passed through for validation to quarantine
    # reviews
    source_reviews: int
    reviews_outside_coverage: int  # on orders whose sample does not cover reviews
    reviews_superseded: int  # an older review of an Olist order that has a newer one
    reviews_without_landing_order: int  # on Olist orders that became no landing order
    reviews_written: int  # one per landing order of a reviewed Olist order
    olist_orders_reviews_covered: int
    # absent tables
    disputes_written: int = 0
    inquiries_written: bool = False
    # known mess, kept for the pipeline's validation to quarantine (in landing orders:
    # an Olist order with several sellers repeats its dates on each seller's order)
    shipped_before_created: int = 0
    delivered_before_shipped: int = 0
    promised_ship_by_after_2019: int = 0
    completed_without_delivered_at: int = 0
    # local -> UTC conversion edge cases (Brazilian daylight saving time)
    local_times_ambiguous: int = 0
    local_times_nonexistent: int = 0
    currency: str = OLIST_CURRENCY
    source_timezone: str = OLIST_TIMEZONE
    caveats: tuple[str, ...] = field(default=CAVEATS)

    def as_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Raise ValueError when the counts do not reconcile."""
        problems = [
            f"{self.items_mapped} items mapped + {self.items_without_order} without order "
            f"!= {self.source_order_items} source items"
            if self.items_mapped + self.items_without_order != self.source_order_items
            else "",
            f"{self.suppliers_written} suppliers + {self.sellers_without_items} sellers "
            f"without items > {self.source_sellers} sellers"
            if self.suppliers_written + self.sellers_without_items > self.source_sellers
            else "",
            "status counts do not add up to the landing orders"
            if sum(self.landing_status_counts.values()) != self.landing_orders_written
            or sum(self.olist_status_counts.values()) != self.landing_orders_written
            else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError("Olist import counts do not reconcile: " + "; ".join(problems))

    def describe(self) -> str:
        """A few human lines for the command line."""
        lines = [
            f"Olist import: {self.source} -> {self.out}",
            f"  suppliers  {self.suppliers_written:>7,} written "
            f"({self.source_sellers:,} sellers, {self.sellers_without_items:,} without items)",
            f"  orders     {self.landing_orders_written:>7,} written from "
            f"{self.items_mapped:,} items of {self.source_orders - self.orders_without_items:,} "
            f"Olist orders ({self.orders_without_items:,} orders without items skipped, "
            f"{self.multi_seller_orders:,} split across several sellers)",
            f"             {self.landing_orders_without_payment_method:,} without payment method "
            f"(payments not in the sample)",
            f"  reviews    {self.reviews_written:>7,} written from {self.source_reviews:,} "
            f"({self.reviews_superseded:,} superseded, "
            f"{self.reviews_without_landing_order:,} on orders without items)",
            "  disputes         0 (Olist has none)   inquiries: absent",
            f"  kept for validation (landing orders): "
            f"{self.shipped_before_created} shipped before created, "
            f"{self.delivered_before_shipped} delivered before shipped, "
            f"{self.promised_ship_by_after_2019} promised after 2019",
            "Caveats:",
            *(f"  - {c}" for c in self.caveats),
        ]
        return "\n".join(lines)


def import_olist(src: Path, out: Path, *, overwrite: bool = False) -> OlistImportSummary:
    """Read the Olist Parquet files at `src` and write a landing zone at `out`.

    `out` is written in a temporary sibling folder and renamed into place, so a failed
    import never leaves a half-written landing zone. An existing non-empty `out` is
    refused unless `overwrite`.
    """
    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to replace it")
    tables = read_olist_source(src)
    landing, summary = map_olist(tables)
    summary = replace(summary, source=str(src), out=str(out))

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_landing_zone(landing, staging)
        write_manifest(staging, olist_snapshot_at(landing), source="olist", not_collected=("disputes", "inquiries"),
                       outcomes=OLIST_OUTCOMES)
        provenance = staging / "_provenance"
        provenance.mkdir()
        (provenance / "olist_import.json").write_text(
            json.dumps(
                {
                    **summary.as_dict(),
                    "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "licence": "Olist public dataset, CC BY-NC-SA 4.0: non-commercial use, "
                    "with attribution",
                },
                indent=2,
            )
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return summary


def olist_snapshot_at(landing: Mapping[str, pa.Table]) -> datetime:
    """When the Olist export was taken: its newest recorded event.

    Orders stop in August 2018 while carriers, deliveries and review answers go on into
    October; without this the pipeline would take the last order as the horizon and
    quarantine real deliveries. Promised ship dates are promises, not events, so they do
    not count (one of them is in 2020).
    """
    newest = [
        pc.max(landing[table].column(column)).as_py()
        for table, columns in {"orders": ("created_at", "shipped_at", "delivered_at"), "reviews": ("created_at",)}.items()
        if table in landing
        for column in columns
    ]
    return max(value for value in newest if value is not None)


def read_olist_source(src: Path) -> dict[str, pa.Table]:
    """Read the columns the mapping needs; a missing file or column is a clear error."""
    src = Path(src)
    if not src.is_dir():
        raise OlistSourceError(
            f"Olist data not found at {src}; see docs/olist.md (Getting the data)"
        )
    tables: dict[str, pa.Table] = {}
    for name, relative in SOURCE_FILES.items():
        path = src / relative
        if not path.is_file():
            raise OlistSourceError(f"{path}: missing (the Olist {name} table is required)")
        available = set(pq.read_schema(path).names)
        missing = [c for c in SOURCE_COLUMNS[name] if c not in available]
        if missing:
            raise OlistSourceError(f"{path}: missing column(s) {', '.join(missing)}")
        table = pq.read_table(path, columns=list(SOURCE_COLUMNS[name]))
        for f in table.schema:
            # Olist's timestamps are naive Brazilian local times; a zone-aware column
            # means someone converted the files already and a second conversion would
            # shift every time by three hours.
            if pa.types.is_timestamp(f.type) and f.type.tz is not None:
                raise OlistSourceError(
                    f"{path}: column {f.name} is {f.type}; expected a naive timestamp "
                    f"(Olist local time, {OLIST_TIMEZONE})"
                )
        tables[name] = table
    return tables


def map_olist(tables: Mapping[str, pa.Table]) -> tuple[dict[str, pa.Table], OlistImportSummary]:
    """Map Olist tables (keys of SOURCE_FILES, original columns) to landing tables.

    Pure: no files are read or written. Timestamps come in as Brazilian local time and
    leave as UTC. Returns the landing tables (keys: suppliers, orders, reviews,
    disputes) and the summary (with empty source/out).
    """
    con = duckdb.connect()
    try:
        for name in SOURCE_FILES:
            con.register(f"src_{name}", tables[name].select(list(SOURCE_COLUMNS[name])))
        con.register(
            "status_map",
            pa.table(
                {
                    "olist_status": list(STATUS_MAP),
                    "landing_status": list(STATUS_MAP.values()),
                }
            ),
        )
        con.execute(_SELLER_ORDERS_SQL)
        orders = con.sql(_ORDERS_SQL).to_arrow_table()
        suppliers = con.sql(_SUPPLIERS_SQL).to_arrow_table()
        con.register("landing_orders_keys", orders.select(["order_id", "olist_order_id"]))
        reviews = con.sql(_REVIEWS_SQL).to_arrow_table()
        result = con.sql(_COUNTS_SQL)
        counts = dict(zip(result.columns, result.fetchone()))
    finally:
        con.close()

    converter = _LocalToUtc(OLIST_TIMEZONE)
    landing = {
        "suppliers": _to_landing(suppliers, "suppliers", converter),
        "orders": _to_landing(orders, "orders", converter),
        "reviews": _to_landing(reviews, "reviews", converter),
    }
    o = landing["orders"]

    def count(mask: pa.Array) -> int:
        return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)

    landing_status = _value_counts(o["status"])
    summary = OlistImportSummary(
        source="",
        out="",
        source_sellers=counts["source_sellers"],
        sellers_without_items=counts["sellers_without_items"],
        suppliers_written=landing["suppliers"].num_rows,
        source_orders=counts["source_orders"],
        orders_without_items=counts["orders_without_items"],
        source_order_items=counts["source_order_items"],
        items_without_order=counts["items_without_order"],
        items_mapped=int(pc.sum(o["olist_item_count"]).as_py() or 0),
        landing_orders_written=o.num_rows,
        multi_seller_orders=counts["multi_seller_orders"],
        landing_orders_from_multi_seller_orders=counts["landing_orders_from_multi_seller_orders"],
        landing_orders_without_payment_method=o["payment_method"].null_count,
        olist_orders_without_payments=counts["olist_orders_without_payments"],
        landing_orders_without_buyer=o["buyer_id"].null_count,
        landing_status_counts=landing_status,
        olist_status_counts=_value_counts(o["olist_order_status"]),
        unmapped_statuses={
            k: v for k, v in landing_status.items() if k not in set(STATUS_MAP.values())
        },
        source_reviews=counts["source_reviews"],
        reviews_outside_coverage=counts["reviews_outside_coverage"],
        reviews_superseded=counts["reviews_superseded"],
        reviews_without_landing_order=counts["reviews_without_landing_order"],
        reviews_written=landing["reviews"].num_rows,
        olist_orders_reviews_covered=counts["olist_orders_reviews_covered"],
        shipped_before_created=count(pc.less(o["shipped_at"], o["created_at"])),
        delivered_before_shipped=count(pc.less(o["delivered_at"], o["shipped_at"])),
        promised_ship_by_after_2019=count(
            pc.greater_equal(
                o["promised_ship_by"],
                pa.scalar(datetime(2020, 1, 1, tzinfo=timezone.utc), _UTC_TS),
            )
        ),
        completed_without_delivered_at=count(
            pc.and_(pc.equal(o["status"], "completed"), pc.is_null(o["delivered_at"]))
        ),
        local_times_ambiguous=converter.ambiguous,
        local_times_nonexistent=converter.nonexistent,
    )
    summary.check()
    return landing, summary


def write_landing_zone(landing: Mapping[str, pa.Table], out: Path) -> None:
    """One sub-folder per table, one zstd Parquet file each (docs/design.md §3)."""
    for name, table in landing.items():
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")


# --- SQL ---------------------------------------------------------------------------

# One landing order per (Olist order, seller): a seller fulfils its part of an Olist
# order as one shipment with one shipping limit, so that is the unit a supplier is
# accountable for. Per-item rows would count a three-unit purchase as three deals.
_SELLER_ORDERS_SQL = """
create temp table seller_orders as
select
    i.order_id as olist_order_id,
    i.seller_id,
    count(*) as item_count,
    round(sum(i.price + i.freight_value), 2) as amount,  -- BRL cents, no float noise
    -- constant within (order, seller) in Olist; if it ever differs, the earliest
    -- promise is the one the seller first failed to meet
    min(i.shipping_limit_date) as shipping_limit_date,
    count(*) over (partition by i.order_id) as sellers_in_order
from src_items i
where exists (select 1 from src_orders o where o.order_id = i.order_id)
group by i.order_id, i.seller_id
"""

_ORDERS_SQL = """
with payment_totals as (
    select order_id, payment_type, sum(payment_value) as value, min(payment_sequential) as first_seq
    from src_payments
    group by order_id, payment_type
),
payment_method as (
    -- the payment type that paid most of the order; ties: the one used first, then name
    select order_id, payment_type
    from payment_totals
    qualify row_number() over (
        partition by order_id order by value desc, first_seq, payment_type
    ) = 1
)
select
    so.olist_order_id || '-' || so.seller_id as order_id,
    so.seller_id as supplier_id,
    c.customer_unique_id as buyer_id,
    'BR' as buyer_country,
    o.order_purchase_timestamp as created_at,
    so.amount as amount_usd,
    pm.payment_type as payment_method,
    false as assured,
    so.shipping_limit_date as promised_ship_by,
    o.order_delivered_carrier_date as shipped_at,
    o.order_delivered_customer_date as delivered_at,
    coalesce(sm.landing_status, o.order_status) as status,
    cast(null as varchar) as cancelled_by,
    'BRL' as amount_currency,
    so.olist_order_id,
    so.item_count as olist_item_count,
    o.order_status as olist_order_status
from seller_orders so
join src_orders o on o.order_id = so.olist_order_id
left join (select distinct customer_id, customer_unique_id from src_customers) c
    on c.customer_id = o.customer_id
left join payment_method pm on pm.order_id = so.olist_order_id
left join status_map sm on sm.olist_status = o.order_status
order by o.order_purchase_timestamp, order_id
"""

# Suppliers: sellers with at least one order in the sample. joined_at is the first
# order's purchase time (Olist has no join date); category is the seller's most frequent
# product category in English, ties broken by name. Two Portuguese categories have no
# English translation in Olist's table: they keep their Portuguese name.
_SUPPLIERS_SQL = """
with first_order as (
    select so.seller_id, min(o.order_purchase_timestamp) as joined_at
    from seller_orders so join src_orders o on o.order_id = so.olist_order_id
    group by so.seller_id
),
item_category as (
    select i.seller_id,
           coalesce(t.product_category_name_english, p.product_category_name) as category
    from src_items i
    left join src_products p on p.product_id = i.product_id
    left join src_translation t on t.product_category_name = p.product_category_name
    where exists (select 1 from src_orders o where o.order_id = i.order_id)
),
seller_category as (
    select seller_id, category
    from (select seller_id, category, count(*) as n from item_category
          where category is not null group by seller_id, category)
    qualify row_number() over (partition by seller_id order by n desc, category) = 1
)
select
    s.seller_id as supplier_id,
    'BR' as country,
    'unknown' as membership_tier,
    f.joined_at,
    cast(null as timestamp) as assurance_opt_in_at,
    sc.category
from (select distinct seller_id from src_sellers) s
join first_order f on f.seller_id = s.seller_id
left join seller_category sc on sc.seller_id = s.seller_id
order by f.joined_at, supplier_id
"""

# Reviews: only on orders whose sample covers reviews. An Olist order reviewed twice
# keeps its latest answered review (one review per landing order). A review is known
# when the customer answers the survey, not when the survey is sent, so created_at is
# review_answer_timestamp (review_creation_date is kept as survey_sent_at). An Olist
# order with several sellers gives its review to each seller's landing order: the
# buyer rated the whole order and Olist does not say which seller the score is about.
_REVIEWS_SQL = """
with covered as (
    select r.* from src_reviews r
    where r.order_id in (select order_id from src_order_sources where reviews_covered)
),
latest as (
    select * from covered
    qualify row_number() over (
        partition by order_id
        order by review_answer_timestamp desc, review_creation_date desc, review_id desc
    ) = 1
)
select
    l.review_id || '-' || lo.order_id as review_id,
    lo.order_id,
    l.review_answer_timestamp as created_at,
    cast(l.review_score as integer) as rating,
    l.review_id as olist_review_id,
    l.review_creation_date as survey_sent_at
from latest l
join landing_orders_keys lo on lo.olist_order_id = l.order_id
order by created_at, review_id
"""

_COUNTS_SQL = """
with covered as (
    select r.* from src_reviews r
    where r.order_id in (select order_id from src_order_sources where reviews_covered)
),
latest as (
    select * from covered
    qualify row_number() over (
        partition by order_id
        order by review_answer_timestamp desc, review_creation_date desc, review_id desc
    ) = 1
)
select
    (select count(distinct seller_id) from src_sellers) as source_sellers,
    (select count(distinct s.seller_id) from src_sellers s
      where not exists (select 1 from seller_orders so where so.seller_id = s.seller_id))
        as sellers_without_items,
    (select count(*) from src_orders) as source_orders,
    (select count(*) from src_orders o
      where not exists (select 1 from src_items i where i.order_id = o.order_id))
        as orders_without_items,
    (select count(*) from src_items) as source_order_items,
    (select count(*) from src_items i
      where not exists (select 1 from src_orders o where o.order_id = i.order_id))
        as items_without_order,
    (select count(distinct olist_order_id) from seller_orders
      where sellers_in_order > 1) as multi_seller_orders,
    (select count(*) from seller_orders where sellers_in_order > 1)
        as landing_orders_from_multi_seller_orders,
    (select count(distinct so.olist_order_id) from seller_orders so
      where not exists (select 1 from src_payments p where p.order_id = so.olist_order_id))
        as olist_orders_without_payments,
    (select count(*) from src_reviews) as source_reviews,
    (select count(*) from src_reviews) - (select count(*) from covered)
        as reviews_outside_coverage,
    (select count(*) from covered) - (select count(*) from latest) as reviews_superseded,
    (select count(*) from latest l
      where not exists (select 1 from seller_orders so where so.olist_order_id = l.order_id))
        as reviews_without_landing_order,
    (select count(*) from src_order_sources where reviews_covered)
        as olist_orders_reviews_covered
"""


# --- helpers -----------------------------------------------------------------------


class _LocalToUtc:
    """Convert naive local timestamps to UTC with zoneinfo, counting DST edge cases.

    Brazil observed daylight saving time until 2019. When clocks went back, an hour of
    local times happened twice (ambiguous): the first occurrence is taken (fold=0).
    When clocks went forward at midnight, an hour did not exist (nonexistent, e.g. a
    review survey dated 00:00 that day): it is read with the offset in force before
    the change (fold=0), i.e. as standard time.
    """

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self.ambiguous = 0
        self.nonexistent = 0

    def __call__(self, values: pa.ChunkedArray | pa.Array) -> pa.Array:
        if values.type.tz is not None:
            raise ValueError(f"expected naive local timestamps, got {values.type}")
        values = values.cast(pa.timestamp("us"))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        uniques = pc.unique(values).drop_null()
        converted = []
        for naive in uniques.to_pylist():
            local = naive.replace(tzinfo=self.zone)
            utc = local.astimezone(timezone.utc)
            if local.replace(fold=1).utcoffset() != local.utcoffset():
                # the two folds disagree: either a repeated or a skipped local hour
                if utc.astimezone(self.zone).replace(tzinfo=None) == naive:
                    self.ambiguous += _count_equal(values, naive)
                else:
                    self.nonexistent += _count_equal(values, naive)
            converted.append(utc)
        lookup = pa.array(converted, type=_UTC_TS)
        return pc.take(lookup, pc.index_in(values, value_set=uniques))


def _count_equal(values: pa.Array, naive: datetime) -> int:
    return int(pc.sum(pc.equal(values, pa.scalar(naive, values.type)).cast(pa.int64())).as_py())


def _to_landing(table: pa.Table, name: str, converter: _LocalToUtc) -> pa.Table:
    """Cast to the landing schema; naive (local) timestamp columns go through converter."""
    schema = LANDING_SCHEMAS[name]
    columns = []
    for f in schema:
        column = table[f.name]
        if pa.types.is_timestamp(f.type):
            if column.null_count < len(column):
                column = converter(column)
            else:  # all null (e.g. assurance_opt_in_at): nothing to convert
                column = pa.nulls(len(column), f.type)
        columns.append(column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    counts = pc.value_counts(column)
    return dict(
        sorted(
            ((str(v["values"]), int(v["counts"])) for v in counts.to_pylist()),
            key=lambda kv: (-kv[1], kv[0]),
        )
    )
