"""Publishing a month: replaced whole on rerun, never half-written, contracts grow only by adding."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pytest

from warehouse import publish_month
from warehouse.connection import WarehouseLockedError, open_warehouse

MAY, JUNE = date(2025, 5, 31), date(2025, 6, 30)


def scores(as_of_date: date, suppliers: list[str], amount: float = 100.0) -> pa.Table:
    return pa.table(
        {
            "as_of_date": pa.array([as_of_date] * len(suppliers), pa.date32()),
            "supplier_id": suppliers,
            "trade_assurance_amount_usd": [amount] * len(suppliers),
            "reason_codes": pa.array([["A", "B"]] * len(suppliers), pa.list_(pa.string())),
        }
    )


def features(as_of_date: date, suppliers: list[str], **extra) -> pa.Table:
    columns = {"as_of_date": pa.array([as_of_date] * len(suppliers), pa.date32()), "supplier_id": suppliers}
    columns.update({name: [value] * len(suppliers) for name, value in extra.items()})
    return pa.table(columns)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def published_rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT as_of_date, supplier_id FROM published.{table} ORDER BY 1, 2").fetchall()


def test_rerunning_a_month_replaces_it_and_leaves_other_months(con, tmp_path):
    root = tmp_path / "published"
    publish_month(con, MAY, {"supplier_scores": scores(MAY, ["S1", "S2"])}, root)
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1", "S2", "S3"])}, root)
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1"], amount=5.0)}, root)

    assert published_rows(con, "supplier_scores") == [(MAY, "S1"), (MAY, "S2"), (JUNE, "S1")]
    june_parquet = con.execute(
        "SELECT supplier_id, trade_assurance_amount_usd FROM read_parquet(?)",
        [f"{root}/supplier_scores/as_of_date=2025-06-30/*.parquet"],
    ).fetchall()
    assert june_parquet == [("S1", 5.0)]
    leftovers = [p.name for p in (root / "supplier_scores").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_hive_partitioned_parquet_reads_back_with_its_as_of_date(con, tmp_path):
    root = tmp_path / "published"
    publish_month(con, MAY, {"supplier_scores": scores(MAY, ["S1"])}, root)
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1", "S2"])}, root)
    rows = con.execute(
        "SELECT as_of_date, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY 1 ORDER BY 1",
        [f"{root}/supplier_scores/*/*.parquet"],
    ).fetchall()
    assert rows == [(MAY, 1), (JUNE, 2)]


def test_a_failure_mid_month_leaves_the_previous_month_intact(con, tmp_path):
    root = tmp_path / "published"
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1", "S2"]), "supplier_features": features(JUNE, ["S1", "S2"], x=1.0)}, root)
    # The second table cannot be inserted (string into the existing DOUBLE column), after the
    # first table of the month was already replaced inside the transaction.
    broken = features(JUNE, ["S9"], x="not a number")
    with pytest.raises(duckdb.Error):
        publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S9"]), "supplier_features": broken}, root)

    assert published_rows(con, "supplier_scores") == [(JUNE, "S1"), (JUNE, "S2")]
    assert published_rows(con, "supplier_features") == [(JUNE, "S1"), (JUNE, "S2")]
    parquet = con.execute("SELECT count(*) FROM read_parquet(?)", [f"{root}/supplier_scores/as_of_date=2025-06-30/*.parquet"]).fetchone()
    assert parquet == (2,)
    assert not [p for p in (root / "supplier_scores").iterdir() if p.name.startswith(".")]


def test_a_new_feature_column_is_added_and_older_months_read_null(con, tmp_path):
    root = tmp_path / "published"
    publish_month(con, MAY, {"supplier_features": features(MAY, ["S1"], orders_6m=3)}, root)
    publish_month(con, JUNE, {"supplier_features": features(JUNE, ["S1"], orders_6m=4, new_feature=0.5)}, root)
    rows = con.execute("SELECT as_of_date, orders_6m, new_feature FROM published.supplier_features ORDER BY 1").fetchall()
    assert rows == [(MAY, 3, None), (JUNE, 4, 0.5)]


def test_rows_of_another_month_are_refused(con, tmp_path):
    with pytest.raises(ValueError, match="2025-05-31"):
        publish_month(con, JUNE, {"supplier_scores": scores(MAY, ["S1"])}, tmp_path / "published")


def test_latest_view_holds_the_newest_month_per_supplier(con, tmp_path):
    root = tmp_path / "published"
    publish_month(con, MAY, {"supplier_scores": scores(MAY, ["S1", "S2"])}, root)
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1"])}, root)
    rows = con.execute("SELECT supplier_id, as_of_date FROM published.supplier_scores_latest ORDER BY 1").fetchall()
    assert rows == [("S1", JUNE), ("S2", MAY)]


def test_a_second_writer_gets_an_actionable_message(tmp_path):
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "warehouse.duckdb"
    holder = open_warehouse(path)
    try:
        code = textwrap.dedent(
            f"""
            from warehouse.connection import open_warehouse, WarehouseLockedError
            try:
                open_warehouse({str(path)!r})
            except WarehouseLockedError as error:
                print("LOCKED:", error)
            """
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    finally:
        holder.close()
    assert out.startswith("LOCKED:") and "wait for the other run" in out
    assert WarehouseLockedError.__doc__


def test_parquet_differences_are_found_value_by_value(con, tmp_path):
    import pyarrow.parquet as pq

    from warehouse.publish import month_file, parquet_differences

    root = tmp_path / "published"
    publish_month(con, JUNE, {"supplier_scores": scores(JUNE, ["S1", "S2"])}, root)
    publish_month(con, MAY, {"supplier_scores": scores(MAY, ["S1"])}, root)

    def differences():
        return parquet_differences(con, "supplier_scores", [MAY, JUNE, date(2025, 4, 30)], root)

    # equal, and a month with no rows and no file is equal too
    assert differences() == {MAY: None, JUNE: None, date(2025, 4, 30): None}

    file = month_file(root, "supplier_scores", JUNE)
    # same row count, one value changed: a count comparison would call this equal
    tampered = pq.read_table(file).to_pandas()
    tampered.loc[tampered.supplier_id == "S2", "trade_assurance_amount_usd"] = 1e6
    pq.write_table(pa.Table.from_pandas(tampered, preserve_index=False), file)
    assert differences() == {MAY: None, date(2025, 4, 30): None,
                             JUNE: "1 warehouse rows not in Parquet, 1 Parquet rows not in the warehouse"}

    # a list column (reason codes) differs: compared too
    tampered = pq.read_table(file).to_pandas()
    tampered["trade_assurance_amount_usd"] = 100.0
    tampered["reason_codes"] = [["A"], ["A", "B"]]
    pq.write_table(pa.Table.from_pandas(tampered, preserve_index=False), file)
    assert differences()[JUNE].startswith("1 warehouse rows") and differences()[MAY] is None

    pq.write_table(pa.Table.from_pandas(tampered.drop(columns=["reason_codes"]), preserve_index=False), file)
    # a column missing from one month's file: that month's rows differ (read as null)
    assert differences()[JUNE] == "2 warehouse rows not in Parquet, 2 Parquet rows not in the warehouse"
    assert differences()[MAY] is None
    file.unlink()
    assert differences()[JUNE] == "no Parquet file for 2 warehouse rows"


def test_a_failed_transaction_rolls_back_and_leaves_the_connection_usable(con):
    from warehouse import transaction

    con.execute("CREATE TABLE t (x INT)")
    with pytest.raises(RuntimeError, match="boom"):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with transaction(con):  # no transaction left open: a new one starts
        con.execute("INSERT INTO t VALUES (2)")
    assert con.execute("SELECT x FROM t").fetchall() == [(2,)]
