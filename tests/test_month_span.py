"""Issue 13, case 2: a run's months come from the data, and --from/--to are checked before any work."""

from __future__ import annotations

import shutil
from datetime import date, datetime

import duckdb
import pytest
from click.testing import CliRunner

from data_contracts import LandingZoneError
from data_contracts.manifest import write_manifest
from data_contracts.span import EARLIEST_PLAUSIBLE_TIMESTAMP, landing_zone_month_span
from pipelines.cli import main
from pipelines.runner import MonthRangeError, month_range, run_months
from pipelines.settings import Settings
from synthetic import generate_landing_zone

DATA = (date(2024, 1, 31), date(2025, 2, 28))  # a landing zone covering 2024-01..2025-02


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (None, None, ("2024-01", "2025-02")),  # no flags: every month the data covers
        ("2024-06", None, ("2024-06", "2025-02")),  # --from alone runs to the last complete month
        (None, "2024-03", ("2024-01", "2024-03")),  # --to alone starts at the first month
        ("2025-02", "2025-02", ("2025-02", "2025-02")),  # one month, the last one
        ("2024-01", "2024-01", ("2024-01", "2024-01")),  # one month, the first one
        ("2024-06", "2024-01", "--from 2024-06 is after --to 2024-01"),  # out of order
        (None, "2031-01", "--to 2031-01 is after the data: the data covers 2024-01..2025-02"),  # issue 13: far --to
        (None, "2025-03", "--to 2025-03 is after the data"),  # one month past the last complete month
        ("2023-12", None, "--from 2023-12 is before the data: the data covers 2024-01..2025-02"),  # before the first month
        ("2025-03", None, "--from 2025-03 is after the data"),  # --from past the data, no --to: not an order error
        (None, "2023-06", "--to 2023-06 is before the data"),  # --to before the data, no --from
        ("1999-01", "2031-01", "--from 1999-01 is before the data"),  # both out: the first one named
    ],
)
def test_month_range_against_the_data(first, last, expected):
    if isinstance(expected, tuple):
        assert month_range(first, last, DATA) == expected
    else:
        with pytest.raises(MonthRangeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            month_range(first, last, DATA)


OLD_WORLD = (date(2006, 1, 31), date(2007, 12, 31))


@pytest.mark.parametrize(
    ("first", "last", "span", "expected"),
    [
        (None, None, OLD_WORLD, ("2006-01", "2007-12")),  # issue 14: a 2006 world runs whole (no 2016 floor)
        ("2006-01", "2006-01", OLD_WORLD, ("2006-01", "2006-01")),  # its first month alone
        ("2001-03", None, (date(2000, 1, 31), date(2001, 6, 30)), ("2001-03", "2001-06")),  # the plausible era's first years
        (None, None, (date(2031, 1, 31), date(2032, 6, 30)), ("2031-01", "2032-06")),  # a world dated ahead: its months
        ("2005-12", None, OLD_WORLD, "--from 2005-12 is before the data: the data covers 2006-01..2007-12"),
        (None, "2008-01", OLD_WORLD, "--to 2008-01 is after the data: the data covers 2006-01..2007-12"),
    ],
)
def test_months_of_any_era_are_the_datas(first, last, span, expected):
    if isinstance(expected, tuple):
        assert month_range(first, last, span) == expected
    else:
        with pytest.raises(MonthRangeError, match=expected):
            month_range(first, last, span)


def test_run_months_refuses_months_outside_the_data_before_any_work(tmp_path):
    """The runner checks the months itself (callers other than the CLI), before the home is touched."""
    home = tmp_path / "home"
    with pytest.raises(MonthRangeError, match="--to 2016-01 is after the data: the data covers 2006-01..2007-12"):
        run_months(Settings(home=home, landing=tmp_path / "unused"), "2006-01", "2016-01", span=OLD_WORLD)
    assert not home.exists()


@pytest.mark.parametrize(
    ("start", "span"),
    [
        ("2006-01", (date(2006, 1, 31), date(2007, 2, 28))),  # suppliers joined from 2002: all after the floor
        # joins would reach 1996: the generator starts them at the floor, so trading (which follows
        # the month of joining) and the data's months begin in February
        ("2000-01", (date(2000, 2, 29), date(2001, 2, 28))),
    ],
)
def test_an_early_world_passes_the_plausibility_floor(tmp_path, start, span):
    """The contracts' floor (2000-01-01) is for placeholders such as 1970, not for old data: a
    generated world from any month on it loses no row to it."""
    from data_contracts import validate_landing_zone

    landing = tmp_path / "landing"
    generate_landing_zone(landing, n_suppliers=40, start=start, months=14, seed=3)
    assert landing_zone_month_span(landing) == span
    report, exit_code, _text = validate_landing_zone(landing)
    assert exit_code == 0
    assert all(stats.rows_quarantined == 0 for stats in report.tables.values())


def test_generating_before_the_plausibility_floor_is_refused_in_one_line(tmp_path):
    result = invoke("generate", "--out", str(tmp_path / "lz"), "--start", "1999-12", "--suppliers", "10")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: start 1999-12 is before 2000-01-01, the contracts' earliest plausible timestamp "
        "(its orders would be quarantined): choose a later month"
    )
    assert not (tmp_path / "lz").exists()


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("span") / "landing"
    generate_landing_zone(landing, n_suppliers=40, start="2024-01", months=14, seed=3)
    return landing


def add_orders(landing, name: str, created_at: list[str], as_csv: bool = False):
    """Extra order files; as CSV (text) or as a Parquet TIMESTAMP column."""
    values = ", ".join(f"('X{i}', TIMESTAMP '{ts}')" for i, ts in enumerate(created_at))
    target = landing / "orders" / (f"{name}.csv" if as_csv else f"{name}.parquet")
    fmt = "(HEADER)" if as_csv else "(FORMAT parquet)"
    duckdb.execute(f"COPY (SELECT * FROM (VALUES {values}) t(order_id, created_at)) TO '{target}' {fmt}")


def test_the_span_of_a_generated_landing_zone(landing):
    assert landing_zone_month_span(landing) == DATA


def test_an_order_dated_1900_does_not_pick_the_months(landing, tmp_path):
    """Issue 13: one order dated 1900 sent the default run to 1900-01."""
    copy = tmp_path / "lz"
    shutil.copytree(landing, copy)
    add_orders(copy, "typo", ["1900-01-05 10:00:00", "1999-12-31 23:59:59"])
    assert landing_zone_month_span(copy) == DATA
    assert EARLIEST_PLAUSIBLE_TIMESTAMP == datetime(2000, 1, 1)


def test_an_order_typed_far_ahead_does_not_stretch_the_months(landing, tmp_path):
    """The end is the ingest's data horizon (last order day before a gap), not the newest timestamp."""
    copy = tmp_path / "lz"
    shutil.copytree(landing, copy)
    add_orders(copy, "typo", ["2099-03-01 10:00:00"])
    assert landing_zone_month_span(copy) == DATA


def test_text_timestamps_are_parsed_with_their_offsets(landing, tmp_path):
    """CSV is the slow path: still the lenient parser, so an offset moves the day (and the month)."""
    copy = tmp_path / "lz"
    shutil.copytree(landing, copy)
    (copy / "orders" / "late.csv").write_text("order_id,created_at\nX1,2025-03-01T01:30:00+02:00\nX2,not a time\n")
    assert landing_zone_month_span(copy) == DATA  # 2025-02-28 23:30 UTC: still February
    (copy / "orders" / "late.csv").write_text("order_id,created_at\nX1,2025-03-31T23:30:00Z\n")
    assert landing_zone_month_span(copy) == (DATA[0], date(2025, 3, 31))


def test_a_manifest_snapshot_sets_the_last_month(landing, tmp_path):
    copy = tmp_path / "lz"
    shutil.copytree(landing, copy)
    write_manifest(copy, datetime.fromisoformat("2024-10-15T12:00:00+00:00"), source="test")
    assert landing_zone_month_span(copy) == (DATA[0], date(2024, 9, 30))


def test_no_plausible_order_is_unusable_input(tmp_path):
    (tmp_path / "orders").mkdir()
    add_orders(tmp_path, "old", ["1900-01-05 10:00:00"])
    with pytest.raises(LandingZoneError, match="on or after 2000-01-01"):
        landing_zone_month_span(tmp_path)


def invoke(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--to", "2031-01"], "--to 2031-01 is after the data: the data covers 2024-01..2025-02"),
        (["--from", "2025-02", "--to", "2024-06"], "--from 2025-02 is after --to 2024-06"),
        (["--from", "2023-01"], "--from 2023-01 is before the data"),
    ],
)
def test_run_refuses_months_outside_the_data_before_any_work(landing, tmp_path, flags, message):
    home = tmp_path / "home"
    result = invoke("run", "--landing", str(landing), "--home", str(home), *flags)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {message}" + result.output.split(message, 1)[1].rstrip()]
    assert "Traceback" not in result.output
    # nothing ingested, nothing published: the home was not even created
    assert not (home / "warehouse.duckdb").exists() and not (home / "published").exists()


def test_from_after_to_is_refused_without_reading_the_data(tmp_path):
    """The order of the two months is checked first: even an empty landing zone gets that message."""
    (tmp_path / "landing").mkdir()
    result = invoke("run", "--landing", str(tmp_path / "landing"), "--from", "2025-06", "--to", "2025-01")
    assert result.exit_code == 2 and "--from 2025-06 is after --to 2025-01" in result.output


def test_the_span_is_read_once_per_state_of_the_orders_files(tmp_path, monkeypatch):
    """The CLI and each feature asset ask for the span in one run: the orders are scanned once,
    and again only when an orders file (or the manifest) changes."""
    from data_contracts import span

    copy = tmp_path / "landing"
    generate_landing_zone(copy, n_suppliers=20, start="2024-01", months=8, seed=4)
    reads = []
    real = span._read_month_span
    monkeypatch.setattr(span, "_read_month_span", lambda *args: reads.append(1) or real(*args))
    first = landing_zone_month_span(copy)
    assert landing_zone_month_span(copy) == first and len(reads) == 1
    add_orders(copy, "late", ["2024-08-15 10:00:00"])  # a new file: read again
    assert landing_zone_month_span(copy) == first and len(reads) == 2
