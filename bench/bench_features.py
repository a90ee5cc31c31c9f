"""Benchmark: point-in-time features at scale vs DuckDB's bare scan and the pandas reference.

    uv run python bench/bench_features.py            # full run: 1M, 5M, 20M orders
    uv run python bench/bench_features.py --quick    # smoke run: 200k orders only
    uv run python bench/bench_features.py --sizes 20000000 --baseline CHECKOUT --repeats 5
                                                     # side by side with another checkout

Input is built directly in DuckDB with SQL random columns (50,000 suppliers; per size N:
N orders, 2N inquiries, ~3% of orders disputed, ~30% reviewed, 30 months of history) and
cached under ``bench/_data/`` (git-ignored). ``synthetic.generate_landing_zone`` models
behaviour, not volume; SQL generation builds 60M rows in about a minute.

Every measured step runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its
own: production features for 24 month ends; the bare group-by scan of the same input
columns (orders and inquiries read once, grouped by supplier and month); the pandas
reference on supplier subsamples, extrapolated linearly in rows (fitted on two subsample
sizes, so its fixed per-month overhead is not multiplied up). Writes
``bench/results/features.md`` and ``bench/results/features_scaling.png``.

``--baseline CHECKOUT`` compares this code with another checkout of the project (its own
``.venv``) on the same cached input: the two production steps and the bare scan run in
turn, ``--repeats`` times, so both codes see the same load; writes
``bench/results/features_compare.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from results_file import write_keeping_notes

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / "_data"
RESULTS_DIR = ROOT / "bench" / "results"
N_SUPPLIERS = 50_000
THREADS = 2
# DuckDB's buffer budget; it spills beyond it. Memory outside the budget comes on top (the
# exact quantiles' value lists, Python, the Arrow result): at 4GB the features step
# peaked at 6.0 GiB at 20M orders, at 3500MB at 5.6 GiB (peak RSS target 6 GiB).
MEMORY_LIMIT = "3500MB"
HISTORY_START = "2023-01-01"
HISTORY_MONTHS = 30
AS_OF_START, AS_OF_END = date(2023, 7, 1), date(2025, 6, 30)  # 24 month ends

sys.path.insert(0, str(ROOT))


def database_path(n_orders: int) -> Path:
    # v2: orders carry cancelled_at; a cached v1 file would lack the column
    return DATA_DIR / f"features_v2_{n_orders // 1000}k.duckdb"


def generation_sql(n_orders: int, n_inquiries: int) -> list[str]:
    """SQL building validated.* with random but plausible columns."""
    history_end = date(2023 + (HISTORY_MONTHS // 12), 1 + HISTORY_MONTHS % 12, 1)
    span_us = int((history_end - date.fromisoformat(HISTORY_START)).total_seconds() * 1e6)
    start = f"TIMESTAMP '{HISTORY_START}'"
    # Suppliers get skewed volumes: index = floor(S * u^2) puts more events on low ids.
    return [
        "SELECT setseed(0.42)",
        "CREATE SCHEMA IF NOT EXISTS validated",
        f"""CREATE OR REPLACE TABLE validated.suppliers AS
            SELECT 's' || lpad(i::VARCHAR, 6, '0') AS supplier_id,
                   ['CN', 'VN', 'IN', 'TR', 'MX'][1 + (hash(i) % 5)::INT] AS country,
                   ['free', 'gold', 'verified', 'unknown'][1 + (hash(i + 1) % 4)::INT] AS membership_tier,
                   TIMESTAMP '2021-01-01' + to_seconds(CAST(random() * 4.4 * 365 * 86400 AS BIGINT)) AS joined_at,
                   CASE WHEN random() < 0.5 THEN TIMESTAMP '2022-01-01'
                        + to_seconds(CAST(random() * 3.5 * 365 * 86400 AS BIGINT)) END AS assurance_opt_in_at,
                   ['toys', 'textiles', 'machinery', 'electronics'][1 + (hash(i + 2) % 4)::INT] AS category
            FROM range({N_SUPPLIERS}) t(i)""",
        f"""CREATE OR REPLACE TABLE validated.orders AS
            WITH base AS (
                SELECT i, CAST(floor({N_SUPPLIERS} * random() * random()) AS INT) AS s,
                       {start} + to_microseconds(CAST(random() * {span_us} AS BIGINT)) AS created_at,
                       random() AS u_status, random() AS u_ship
                FROM range({n_orders}) t(i)
            )
            SELECT 'o' || i AS order_id,
                   's' || lpad(s::VARCHAR, 6, '0') AS supplier_id,
                   'b' || ((s * 37 + CAST(random() * 80 AS INT)) % 1000000) AS buyer_id,
                   'US' AS buyer_country,
                   created_at,
                   round(exp(random() * 7) * 5, 2) AS amount_usd,
                   ['tt', 'credit_card', 'paypal', 'lc'][1 + CAST(random() * 4 AS INT) % 4] AS payment_method,
                   random() < 0.6 AS assured,
                   created_at + to_seconds(CAST(86400 * (3 + random() * 12) AS BIGINT)) AS promised_ship_by,
                   CASE WHEN u_ship < 0.92 THEN created_at + to_seconds(CAST(86400 * (1 + random() * 18) AS BIGINT)) END AS shipped_at,
                   CASE WHEN u_ship < 0.85 THEN created_at + to_seconds(CAST(86400 * (10 + random() * 30) AS BIGINT)) END AS delivered_at,
                   CASE WHEN u_status < 0.05 THEN 'cancelled' WHEN u_ship < 0.85 THEN 'completed'
                        WHEN u_ship < 0.92 THEN 'shipped' ELSE 'placed' END AS status,
                   CASE WHEN u_status < 0.05 THEN ['buyer', 'supplier', 'platform'][1 + CAST(u_status * 60 AS INT) % 3] END AS cancelled_by,
                   CASE WHEN u_status < 0.05 THEN created_at + to_seconds(CAST(86400 * (u_status * 200) AS BIGINT)) END AS cancelled_at
            FROM base""",
        """CREATE OR REPLACE TABLE validated.disputes AS
            SELECT 'd' || row_number() OVER () AS dispute_id, order_id,
                   created_at + to_seconds(CAST(86400 * (5 + random() * 60) AS BIGINT)) AS opened_at,
                   ['late_shipment', 'quality', 'not_received', 'other'][1 + CAST(random() * 4 AS INT) % 4] AS reason,
                   ['open', 'buyer_favored', 'supplier_favored', 'settled', 'withdrawn'][1 + CAST(random() * 5 AS INT) % 5] AS outcome,
                   random() AS u_resolve, amount_usd
            FROM validated.orders WHERE random() < 0.03""",
        """CREATE OR REPLACE TABLE validated.disputes AS
            SELECT dispute_id, order_id, opened_at, reason, outcome,
                   CASE WHEN outcome <> 'open' THEN opened_at + to_seconds(CAST(86400 * (3 + u_resolve * 80) AS BIGINT)) END AS resolved_at,
                   CASE WHEN outcome IN ('buyer_favored', 'settled') THEN round(amount_usd * u_resolve, 2) ELSE 0 END AS refund_usd
            FROM validated.disputes""",
        f"""CREATE OR REPLACE TABLE validated.inquiries AS
            WITH base AS (
                SELECT i, CAST(floor({N_SUPPLIERS} * random() * random()) AS INT) AS s,
                       {start} + to_microseconds(CAST(random() * {span_us} AS BIGINT)) AS received_at
                FROM range({n_inquiries}) t(i)
            )
            SELECT 'q' || i AS inquiry_id,
                   's' || lpad(s::VARCHAR, 6, '0') AS supplier_id,
                   'b' || ((s * 37 + CAST(random() * 80 AS INT)) % 1000000) AS buyer_id,
                   received_at,
                   CASE WHEN random() < 0.85 THEN received_at
                        + to_microseconds(CAST(3600e6 * -ln(1 - random()) * (2 + (s % 40)) AS BIGINT)) END AS first_response_at
            FROM base""",
        """CREATE OR REPLACE TABLE validated.reviews AS
            SELECT 'r' || row_number() OVER () AS review_id, order_id,
                   delivered_at + to_seconds(CAST(86400 * random() * 20 AS BIGINT)) AS created_at,
                   CAST(least(5, greatest(1, round(4.2 + 1.2 * (random() + random() + random() - 1.5) * 1.6))) AS INTEGER) AS rating
            FROM validated.orders WHERE delivered_at IS NOT NULL AND random() < 0.35""",
    ]


def ensure_database(n_orders: int) -> Path:
    import duckdb

    path = database_path(n_orders)
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    con.execute(f"SET threads = {THREADS}; SET memory_limit = '{MEMORY_LIMIT}'")
    for statement in generation_sql(n_orders, 2 * n_orders):
        con.execute(statement)
    con.close()
    partial.rename(path)
    return path


def connect(path: Path):
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET threads = {THREADS}; SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET temp_directory = '" + str(DATA_DIR / "spill") + "'")
    return con


# --- the measured steps (each runs in a fresh subprocess) --------------------------------

def step_production(path: Path) -> dict:
    from features import compute_supplier_features, month_ends

    con = connect(path)
    started, cpu = time.perf_counter(), time.process_time()
    table = compute_supplier_features(con, month_ends(AS_OF_START, AS_OF_END))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "rows": table.num_rows}


def step_storefront(path: Path) -> dict:
    from features import compute_storefront_metrics, month_ends

    con = connect(path)
    started, cpu = time.perf_counter(), time.process_time()
    table = compute_storefront_metrics(con, month_ends(AS_OF_START, AS_OF_END))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "rows": table.num_rows}


BARE_SCAN_SQL = [
    # Every orders/inquiries column the features read, grouped once by supplier and month:
    # the least work any implementation has to do to look at the same data. Each column
    # feeds an aggregate that needs its values: DuckDB turns count(column) of a column
    # without NULLs into count(*), leaving the scanned values unused.
    """SELECT supplier_id, date_trunc('month', created_at) AS m, count(*), max(buyer_id),
              max(order_id), sum(amount_usd), max(payment_method), count(*) FILTER (WHERE assured),
              max(promised_ship_by), max(shipped_at), max(delivered_at), max(status), max(cancelled_by),
              max(cancelled_at)
       FROM validated.orders GROUP BY ALL""",
    """SELECT supplier_id, date_trunc('month', received_at) AS m, count(*), max(first_response_at)
       FROM validated.inquiries GROUP BY ALL""",
]


def step_bare_scan(path: Path) -> dict:
    con = connect(path)
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for sql in BARE_SCAN_SQL:
        rows += len(con.execute(sql).to_arrow_table())
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "rows": rows}


def subsample_connection(path: Path, n_suppliers: int):
    """An in-memory copy of the validated tables restricted to about n suppliers picked by
    hash (volumes are skewed towards low ids, so the first n would not be typical)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    con.execute(f"ATTACH '{path}' AS big (READ_ONLY)")
    con.execute("CREATE SCHEMA validated")
    keep = f"hash(supplier_id) % {N_SUPPLIERS} < {n_suppliers}"
    con.execute(f"CREATE TABLE validated.suppliers AS SELECT * FROM big.validated.suppliers WHERE {keep}")
    con.execute(f"CREATE TABLE validated.orders AS SELECT * FROM big.validated.orders WHERE {keep}")
    con.execute(f"CREATE TABLE validated.inquiries AS SELECT * FROM big.validated.inquiries WHERE {keep}")
    con.execute("""CREATE TABLE validated.disputes AS SELECT d.* FROM big.validated.disputes d
                   SEMI JOIN validated.orders USING (order_id)""")
    con.execute("""CREATE TABLE validated.reviews AS SELECT r.* FROM big.validated.reviews r
                   SEMI JOIN validated.orders USING (order_id)""")
    con.execute("DETACH big")
    return con


def event_rows(con) -> int:
    return sum(con.execute(f"SELECT count(*) FROM validated.{t}").fetchone()[0] for t in ("orders", "inquiries"))


def step_reference(path: Path, n_suppliers: int) -> dict:
    from features import compute_supplier_features, month_ends

    # the reference is the test suite's independent oracle (tests/feature_reference.py)
    sys.path.insert(0, str(ROOT / "tests"))
    from feature_reference import as_comparable_frame, reference_supplier_features

    con = subsample_connection(path, n_suppliers)
    as_of_dates = month_ends(AS_OF_START, AS_OF_END)
    started, cpu = time.perf_counter(), time.process_time()
    reference = reference_supplier_features(con, as_of_dates)
    reference_seconds, reference_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    production = compute_supplier_features(con, as_of_dates)
    production_seconds, production_cpu = time.perf_counter() - started, time.process_time() - cpu
    # Same numbers at this size too (the tests prove it on small random zones).
    from test_features_equivalence import assert_frames_match

    assert_frames_match(as_comparable_frame(production), as_comparable_frame(reference))
    return {"seconds": reference_seconds, "cpu_seconds": reference_cpu,
            "production_seconds": production_seconds, "production_cpu_seconds": production_cpu,
            "event_rows": event_rows(con), "suppliers": n_suppliers, "equal": True}


STEPS = {"production": step_production, "storefront": step_storefront, "bare_scan": step_bare_scan}


def run_step_here(args: argparse.Namespace) -> None:
    path = Path(args.db)
    result = step_reference(path, args.suppliers) if args.step == "reference" else STEPS[args.step](path)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_gib"] = usage.ru_maxrss / 1024**2
    print("RESULT " + json.dumps(result))


def run_step(step: str, path: Path, checkout: Path = ROOT, **extra) -> dict:
    """``step`` in a subprocess of ``checkout``'s own interpreter and copy of this script."""
    python = sys.executable if checkout == ROOT else str(checkout / ".venv" / "bin" / "python")
    command = [python, str(checkout / "bench" / "bench_features.py"), "--step", step, "--db", str(path)]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=checkout)
    if completed.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{completed.stderr[-4000:]}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    print(f"  {step:<11} {extra or ''} {result}", flush=True)
    return result


# --- orchestration and report ----------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, for a smoke run")
    parser.add_argument("--sizes", help="comma-separated order counts (default 1M,5M,20M)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project (with its .venv) to compare with")
    parser.add_argument("--repeats", type=int, default=3, help="with --baseline: rounds of (baseline, this code, bare scan)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--suppliers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step_here(args)
        return

    sizes = [200_000] if args.quick else [1_000_000, 5_000_000, 20_000_000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    command = "uv run python bench/bench_features.py" + (" --quick" if args.quick else "") + (
        f" --sizes {args.sizes}" if args.sizes else "")
    if args.baseline:
        compare_with_baseline(args.baseline.resolve(), sizes, args.repeats,
                              command + f" --baseline {args.baseline} --repeats {args.repeats}")
        return
    runs = []
    for n_orders in sizes:
        print(f"{n_orders:,} orders:", flush=True)
        started = time.perf_counter()
        path = ensure_database(n_orders)
        generated = time.perf_counter() - started
        run = {"orders": n_orders, "inquiries": 2 * n_orders, "generate_seconds": generated}
        for step in ("production", "storefront", "bare_scan"):
            run[step] = run_step(step, path)
        runs.append(run)

    largest = database_path(sizes[-1])
    # Reference on two subsamples of the largest input; fit time = fixed + per_row * rows.
    subsample_sizes = (100, 400)
    reference = [run_step("reference", largest, suppliers=n) for n in subsample_sizes]
    write_report(command, runs, reference)


def checkout_label(checkout: Path) -> str:
    described = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return described.stdout.strip()[:70] or str(checkout)


def compare_with_baseline(baseline: Path, sizes: list[int], repeats: int, command: str) -> None:
    """This code's production step against ``baseline``'s, interleaved with the bare scan."""
    import statistics

    if not (baseline / ".venv" / "bin" / "python").exists():
        raise SystemExit(f"{baseline} has no .venv: run `uv sync --locked` there first")
    rows = []
    for n_orders in sizes:
        path = ensure_database(n_orders)
        rounds = []
        for round_number in range(1, repeats + 1):
            print(f"{n_orders:,} orders, round {round_number}/{repeats}:", flush=True)
            rounds.append({"baseline": run_step("production", path, checkout=baseline),
                           "this": run_step("production", path),
                           "bare": run_step("bare_scan", path)})
        rows.append((n_orders, rounds))

    def median(rounds, who, key):
        return statistics.median(r[who][key] for r in rounds)

    load = os.getloadavg()
    lines = [
        "# Feature benchmark: this code against a baseline, side by side",
        "",
        f"Command: `{command}` (written by the script).",
        "",
        f"- this code: {checkout_label(ROOT)}",
        f"- baseline: {checkout_label(baseline)}",
        f"- {os.cpu_count()} cores; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. "
        "Each round runs the baseline's production step, this code's, then the bare scan, each in its "
        "own subprocess, on the same cached input: both codes see the same load.",
        "",
        "| orders | round | baseline s (CPU s) | this code s (CPU s) | bare scan s (CPU s) "
        "| baseline / bare, CPU | this / bare, CPU | this / baseline, CPU | peak RSS GiB: baseline / this |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n_orders, rounds in rows:
        for number, r in enumerate(rounds, 1):
            b, t, s = r["baseline"], r["this"], r["bare"]
            lines.append(
                f"| {n_orders:,} | {number} | {b['seconds']:.1f} ({b['cpu_seconds']:.1f}) | {t['seconds']:.1f} "
                f"({t['cpu_seconds']:.1f}) | {s['seconds']:.1f} ({s['cpu_seconds']:.1f}) | "
                f"{b['cpu_seconds'] / s['cpu_seconds']:.2f}x | {t['cpu_seconds'] / s['cpu_seconds']:.2f}x | "
                f"{t['cpu_seconds'] / b['cpu_seconds']:.2f} | {b['peak_rss_gib']:.2f} / {t['peak_rss_gib']:.2f} |")
        mb, mt, ms = (median(rounds, who, "cpu_seconds") for who in ("baseline", "this", "bare"))
        wb, wt, ws = (median(rounds, who, "seconds") for who in ("baseline", "this", "bare"))
        rb, rt = median(rounds, "baseline", "peak_rss_gib"), median(rounds, "this", "peak_rss_gib")
        lines.append(
            f"| {n_orders:,} | **median** | {wb:.1f} ({mb:.1f}) | {wt:.1f} ({mt:.1f}) | {ws:.1f} ({ms:.1f}) | "
            f"{mb / ms:.2f}x | {mt / ms:.2f}x | **{mt / mb:.2f}** | {rb:.2f} / {rt:.2f} |")
        lines.append(
            f"| {n_orders:,} | median, wall | | | | {wb / ws:.2f}x | {wt / ws:.2f}x | **{wt / wb:.2f}** | |")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    write_keeping_notes(RESULTS_DIR / "features_compare.md", "\n".join(lines))
    print(f"wrote {RESULTS_DIR / 'features_compare.md'}")


def extrapolate_reference(reference: list[dict], full_rows: int, key: str) -> tuple[float, float, float]:
    """Linear fit time = fixed + per_row * rows through the two subsample runs."""
    (small, large) = reference
    per_row = (large[key] - small[key]) / (large["event_rows"] - small["event_rows"])
    fixed = max(0.0, small[key] - per_row * small["event_rows"])
    return fixed, per_row, fixed + per_row * full_rows


def write_report(command: str, runs: list[dict], reference: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    largest = runs[-1]
    full_rows = largest["orders"] + largest["inquiries"]
    fixed, per_row, reference_full = extrapolate_reference(reference, full_rows, "seconds")
    _, cpu_per_row, reference_full_cpu = extrapolate_reference(reference, full_rows, "cpu_seconds")
    production = largest["production"]

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    orders = [r["orders"] / 1e6 for r in runs]
    for key, label in (("production", "supplier features (24 month ends)"),
                       ("storefront", "storefront metrics"), ("bare_scan", "bare DuckDB group-by scan")):
        left.plot(orders, [r[key]["seconds"] for r in runs], marker="o", label=label)
        middle.plot(orders, [r[key]["cpu_seconds"] for r in runs], marker="o", label=label)
        right.plot(orders, [r[key]["peak_rss_gib"] for r in runs], marker="o", label=label)
    left.set(xlabel="orders (millions; inquiries = 2x)", ylabel="seconds", title="Wall time")
    middle.set(xlabel="orders (millions; inquiries = 2x)", ylabel="CPU seconds (all threads)", title="CPU time")
    right.set(xlabel="orders (millions; inquiries = 2x)", ylabel="GiB", title="Peak RSS (own process)")
    right.axhline(6, color="grey", linestyle="--", linewidth=1)
    for axis in (left, middle, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS_DIR / "features_scaling.png", dpi=110)

    load = os.getloadavg()
    lines = [
        "# Feature computation benchmark",
        "",
        f"Command: `{command}` (all numbers below from that one run, written by the script).",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB threads = {THREADS}, "
        f"memory_limit = {MEMORY_LIMIT}; load average at the end of the run {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (the machine was shared, so wall times are inflated and noisy; CPU seconds, summed "
        "over all threads of the step's process, are the steadier comparison). Input: "
        f"{N_SUPPLIERS:,} suppliers, random SQL-generated columns, {HISTORY_MONTHS} months of history, "
        f"24 month ends ({AS_OF_START:%Y-%m} .. {AS_OF_END:%Y-%m}); disputes ~3% of orders, reviews ~35% "
        "of delivered orders. Each step runs in its own subprocess; peak RSS is that process's "
        "`ru_maxrss` (Python, DuckDB buffers and the Arrow result).",
        "",
        "| orders | inquiries | supplier features s (CPU s) | storefront s (CPU s) | bare scan s (CPU s) "
        "| features / bare, wall | features / bare, CPU | peak RSS GiB: features / storefront / bare | rows out |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        p, f, b = r["production"], r["storefront"], r["bare_scan"]
        lines.append(
            f"| {r['orders']:,} | {r['inquiries']:,} | {p['seconds']:.1f} ({p['cpu_seconds']:.1f}) | "
            f"{f['seconds']:.1f} ({f['cpu_seconds']:.1f}) | {b['seconds']:.1f} ({b['cpu_seconds']:.1f}) | "
            f"{p['seconds'] / b['seconds']:.2f}x | {p['cpu_seconds'] / b['cpu_seconds']:.2f}x | "
            f"{p['peak_rss_gib']:.2f} / {f['peak_rss_gib']:.2f} / {b['peak_rss_gib']:.2f} | {p['rows']:,} |"
        )
    lines += [
        "",
        "## Against the pandas reference",
        "",
        "The pandas reference (`tests/feature_reference.py`) was run on two hash-picked supplier subsamples of the largest input "
        "(all their events, the same 24 month ends); production gave the same values there (checked "
        "with the test suite's comparator). The reference's time is fitted as fixed + per_row x "
        "(orders + inquiries) through the two runs and extrapolated to the full input: an estimate, "
        "not a measurement (the reference at full size would take hours).",
        "",
        "| ~suppliers | orders + inquiries | reference s (CPU s) | production s (CPU s), same subsample |",
        "|---|---|---|---|",
    ]
    for ref in reference:
        lines.append(f"| {ref['suppliers']} | {ref['event_rows']:,} | {ref['seconds']:.1f} "
                     f"({ref['cpu_seconds']:.1f}) | {ref['production_seconds']:.2f} "
                     f"({ref['production_cpu_seconds']:.2f}) |")
    lines += [
        "",
        f"Fit (wall): fixed {fixed:.1f} s + {per_row * 1e6:.1f} s per million rows -> "
        f"**{reference_full:,.0f} s** for {full_rows:,} rows; CPU: {cpu_per_row * 1e6:.1f} s per million "
        f"rows -> **{reference_full_cpu:,.0f} CPU s**.",
        "",
        "## Summary (largest input)",
        "",
        f"- production supplier features: {production['seconds']:.1f} s wall, {production['cpu_seconds']:.1f} "
        f"CPU s, {production['rows']:,} rows x {len(__import__('features').FEATURES) + 2} columns",
        f"- vs pandas reference (extrapolated): **{reference_full / production['seconds']:,.0f}x** faster "
        f"by wall time, **{reference_full_cpu / production['cpu_seconds']:,.0f}x** by CPU time (target >= 10x)",
        f"- vs bare DuckDB group-by scan of the same columns: **{production['seconds'] / largest['bare_scan']['seconds']:.2f}x** "
        f"its wall time, **{production['cpu_seconds'] / largest['bare_scan']['cpu_seconds']:.2f}x** its CPU time "
        "(target <= 3x)",
        f"- peak RSS: **{production['peak_rss_gib']:.2f} GiB** (target <= 6 GiB)",
        "",
        "![scaling](features_scaling.png)",
        "",
    ]
    write_keeping_notes(RESULTS_DIR / "features.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
