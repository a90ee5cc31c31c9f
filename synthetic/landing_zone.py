"""Write a synthetic landing zone (docs/design.md §3) and its ground truth, month by month.

Layout under `out_dir`::

    suppliers/suppliers.parquet
    orders/orders-YYYY-MM.parquet        one file per month of order creation
    disputes/disputes-YYYY-MM.parquet    by the month their order was created
    reviews/reviews-YYYY-MM.parquet      idem (optional table)
    inquiries/inquiries-YYYY-MM.parquet  by month received (optional table)
    _truth/breach_probability.parquet    supplier_id, as_of_date, breach_probability_6m, loss_rate_6m,
                                         loss_rate_pre_shipment_6m, loss_rate_post_delivery_6m,
                                         loss_rate_6m_given_open_at_t (+ _pre_shipment / _post_delivery),
                                         default_probability_6m, ...

Each month's events are written as soon as they are drawn, so memory stays bounded by
one month of events plus the (suppliers x months) latent arrays. Randomness comes from
one numpy SeedSequence per call, split into a child per table and per month, so the
same arguments give byte-identical files and dropping an optional table leaves the
others unchanged.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_contracts.contracts import EARLIEST_PLAUSIBLE_TIMESTAMP
from synthetic.arrow_columns import id_strings, labels, timestamps
from synthetic.events import SUPPLIER_ID_WIDTH, IdCounters, sample_month
from synthetic.truth import (
    DEFAULT_CONTINUATIONS, REASON_GROUPS, StateAtTTables, breach_probability_table, won_given_state_at_t,
)
from synthetic.world import (
    CATEGORIES,
    COUNTRY_WEIGHTS,
    TIER_WEIGHTS,
    MonthGrid,
    SupplierWorld,
    build_world,
    earliest_plausible_day,
)

# Mean monthly orders of an established supplier of average capacity; with the default
# 5,000 suppliers over 30 months this gives about one million orders.
DEFAULT_ORDERS_PER_SUPPLIER_MONTH = 6.6
TABLES = ("suppliers", "orders", "inquiries", "disputes", "reviews")
TRUTH_DIR = "_truth"
PRIMARY_KEYS = {"suppliers": "supplier_id", "orders": "order_id", "inquiries": "inquiry_id",
                "disputes": "dispute_id", "reviews": "review_id"}


def write_parquet(table: pa.Table, path: Path, unique_column: str | None = None) -> None:
    """zstd Parquet; dictionary-encode repeated strings only (a unique id column would
    just fill a dictionary page and fall back, which costs time for nothing)."""
    repeated_strings = [
        field.name for field in table.schema if pa.types.is_string(field.type) and field.name != unique_column
    ]
    pq.write_table(table, path, compression="zstd", use_dictionary=repeated_strings)


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate_landing_zone` wrote: row counts per table, the month ends covered
    and the snapshot instant (nothing at or after `data_horizon` is in the files,
    except `promised_ship_by`, a promise made when the order was placed)."""

    out_dir: Path
    n_suppliers: int
    n_orders: int
    n_inquiries: int
    n_disputes: int
    n_reviews: int
    n_truth_rows: int
    first_month_end: date
    last_month_end: date
    data_horizon: datetime  # the snapshot instant: end of the last month (00:00 UTC of the next day)
    seconds: float

    @property
    def row_counts(self) -> dict[str, int]:
        return {
            "suppliers": self.n_suppliers,
            "orders": self.n_orders,
            "inquiries": self.n_inquiries,
            "disputes": self.n_disputes,
            "reviews": self.n_reviews,
            "_truth": self.n_truth_rows,
        }

    def describe(self) -> str:
        """A few lines for people: where, what, how long."""
        counts = ", ".join(f"{table} {rows:,}" for table, rows in self.row_counts.items() if rows)
        return (
            f"landing zone {self.out_dir}: {counts}\n"
            f"month ends {self.first_month_end} .. {self.last_month_end}, data horizon "
            f"{self.data_horizon.isoformat()}, generated in {self.seconds:.1f} s"
        )


def suppliers_table(world: SupplierWorld) -> pa.Table:
    never_opted_in = world.opt_in_us < 0
    return pa.table(
        {
            "supplier_id": id_strings("S", np.arange(world.n_suppliers) + 1, SUPPLIER_ID_WIDTH),
            "country": labels(tuple(COUNTRY_WEIGHTS), world.country),
            "membership_tier": labels(tuple(TIER_WEIGHTS), world.tier),
            "joined_at": timestamps(world.joined_us),
            "assurance_opt_in_at": timestamps(np.where(never_opted_in, 0, world.opt_in_us), missing=never_opted_in),
            "category": labels(CATEGORIES, world.category),
        }
    )


def generate_landing_zone(
    out_dir: Path,
    n_suppliers: int = 5000,
    start: str = "2024-01",
    months: int = 30,
    seed: int = 7,
    orders_per_supplier_month: float | None = None,
    inquiries_per_order: float = 1.5,
    progress: Callable[[str], None] | None = None,
    *,
    include_inquiries: bool = True,
    include_reviews: bool = True,
    truth_continuations: int = DEFAULT_CONTINUATIONS,
) -> GenerationSummary:
    """Generate a synthetic landing zone with its `_truth/` under `out_dir`.

    Existing table folders under `out_dir` (and `_truth/`) are replaced; anything else
    there is left alone. `include_inquiries` / `include_reviews` = False leave those
    optional tables out (their folders are not created) without changing any other table.
    """
    started = time.perf_counter()
    if n_suppliers < 1 or months < 1:
        raise ValueError("n_suppliers and months must be positive")
    if n_suppliers >= 10**SUPPLIER_ID_WIDTH:
        raise ValueError(f"at most {10**SUPPLIER_ID_WIDTH - 1} suppliers")
    out_dir = Path(out_dir)
    base_rate = DEFAULT_ORDERS_PER_SUPPLIER_MONTH if orders_per_supplier_month is None else float(orders_per_supplier_month)
    say = progress or (lambda message: None)

    seeds = np.random.SeedSequence(seed)
    world_seed, orders_seed, reviews_seed, inquiries_seed, truth_seed = seeds.spawn(5)
    orders_seeds = orders_seed.spawn(months)
    reviews_seeds = reviews_seed.spawn(months)
    inquiries_seeds = inquiries_seed.spawn(months)

    def generator(seed_sequence: np.random.SeedSequence) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(seed_sequence))

    grid = MonthGrid.from_start(start, months)
    if int(grid.start_days[0]) < earliest_plausible_day():
        raise ValueError(
            f"start {start} is before {EARLIEST_PLAUSIBLE_TIMESTAMP:%Y-%m-%d}, the contracts' earliest plausible "
            "timestamp (its orders would be quarantined): choose a later month"
        )
    world = build_world(n_suppliers, grid, base_rate, generator(world_seed))

    for table in (*TABLES, TRUTH_DIR):
        shutil.rmtree(out_dir / table, ignore_errors=True)
    written = ["suppliers", "orders", "disputes"]
    if include_inquiries:
        written.append("inquiries")
    if include_reviews:
        written.append("reviews")
    for table in (*written, TRUTH_DIR):
        (out_dir / table).mkdir(parents=True)

    write_parquet(suppliers_table(world), out_dir / "suppliers" / "suppliers.parquet", "supplier_id")

    counters = IdCounters()
    orders_per_supplier_month = np.zeros((n_suppliers, months), dtype=np.int64)
    # Each month's orders add their expected buyer-won resolutions given what each as-of
    # month end shows of them (the orders themselves are not kept).
    state_at_t_tables = StateAtTTables.build(grid)
    past_won_given_state_at_t = np.zeros((len(REASON_GROUPS), n_suppliers, months))
    # Parquet encoding releases the GIL: write month m on a second thread while month
    # m + 1 is drawn. At most one month waits to be written, which bounds memory.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: list[Future] = []
        for m in range(months):
            events = sample_month(
                world,
                m,
                generator(orders_seeds[m]),
                counters,
                inquiries_per_order,
                reviews_rng=generator(reviews_seeds[m]) if include_reviews else None,
                inquiries_rng=generator(inquiries_seeds[m]) if include_inquiries else None,
            )
            orders_per_supplier_month[:, m] = events.orders_per_supplier
            past_won_given_state_at_t += won_given_state_at_t(world, m, events.timeline, state_at_t_tables)
            label = grid.label(m)
            for future in pending:
                future.result()
            pending = [
                writer.submit(write_parquet, table, out_dir / name / f"{name}-{label}.parquet", PRIMARY_KEYS[name])
                for name, table in [("orders", events.orders), ("disputes", events.disputes),
                                    ("reviews", events.reviews), ("inquiries", events.inquiries)]
                if table is not None
            ]
            say(f"{label}: {events.orders.num_rows:,} orders, {events.disputes.num_rows:,} disputes")

        truth = breach_probability_table(
            world, orders_per_supplier_month, generator(truth_seed), continuations=truth_continuations,
            past_won_given_state_at_t=past_won_given_state_at_t,
        )
        for future in pending:
            future.result()
    write_parquet(truth, out_dir / TRUTH_DIR / "breach_probability.parquet")
    say(f"truth: {truth.num_rows:,} supplier-months, mean breach probability "
        f"{float(np.mean(truth.column('breach_probability_6m').to_numpy())):.3f}")

    return GenerationSummary(
        out_dir=out_dir,
        n_suppliers=n_suppliers,
        n_orders=counters.orders,
        n_inquiries=counters.inquiries,
        n_disputes=counters.disputes,
        n_reviews=counters.reviews,
        n_truth_rows=truth.num_rows,
        first_month_end=grid.month_end(0),
        last_month_end=grid.month_end(months - 1),
        data_horizon=datetime.fromtimestamp(grid.horizon_us / 1e6, tz=timezone.utc),
        seconds=time.perf_counter() - started,
    )
