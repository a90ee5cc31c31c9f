"""The files of a landing zone: symbolic links followed within the zone or refused with an
error naming them, unknown tables and ignored files listed in the report with counts."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_contracts_support import assert_reconciles, valid_tables, write_landing

from data_contracts import LandingZoneError, ingest_landing_zone, validate_landing_zone



def landing_with_reviews_split(tmp_path: Path) -> tuple[Path, int, pd.DataFrame]:
    """A landing zone holding the first half of its reviews; returns (root, reviews in
    total, the other half) for a test to place."""
    tables = valid_tables()
    root = write_landing(tmp_path / "landing", tables)
    reviews = tables["reviews"]
    half = len(reviews) // 2
    (root / "reviews" / "part-0.parquet").unlink()
    reviews.iloc[:half].to_parquet(root / "reviews" / "part-0.parquet", index=False)
    return root, len(reviews), reviews.iloc[half:]


def test_a_symlinked_folder_and_file_inside_the_zone_are_read(tmp_path):
    root, total, rest = landing_with_reviews_split(tmp_path)
    stash = root / "_stash" / "more reviews"
    stash.mkdir(parents=True)
    rest.iloc[:1].to_parquet(stash / "part-1.parquet", index=False)
    rest.iloc[1:].to_parquet(root / "_stash" / "part-2.parquet", index=False)
    os.symlink(stash, root / "reviews" / "linked folder")
    os.symlink(Path("..") / "_stash" / "part-2.parquet", root / "reviews" / "part-2.parquet")  # relative link

    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    assert report.tables["reviews"].rows_read == total
    assert report.tables["reviews"].files == ["reviews/linked folder/part-1.parquet", "reviews/part-0.parquet", "reviews/part-2.parquet"]
    assert_reconciles(report, con)


@pytest.mark.parametrize("kind", ["folder outside", "file outside", "broken", "loop"])
def test_a_link_out_of_the_zone_broken_or_looping_is_refused_naming_it(tmp_path, kind):
    root, _, rest = landing_with_reviews_split(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    rest.to_parquet(outside / "part-1.parquet", index=False)
    link = root / "reviews" / "extra"
    target = {"folder outside": outside, "file outside": outside / "part-1.parquet", "broken": root / "gone", "loop": root / "reviews"}[kind]
    os.symlink(target, link)
    with pytest.raises(LandingZoneError) as raised:
        ingest_landing_zone(root, duckdb.connect())
    message = str(raised.value)
    assert "'reviews/extra'" in message and "\n" not in message
    expected = {"folder outside": "outside the landing zone", "file outside": "outside the landing zone", "broken": "broken", "loop": "a second time"}[kind]
    assert expected in message
    _, code, text = validate_landing_zone(root)
    assert code == 2 and "reviews/extra" in text


def test_the_report_lists_unknown_tables_and_ignored_files_with_counts(tmp_path):
    root = write_landing(tmp_path / "landing", valid_tables())
    (root / "refunds").mkdir()
    (root / "refunds" / "a.parquet").write_bytes(b"x")
    (root / "refunds" / "b.csv").write_text("x\n")
    (root / "Orders_backup").mkdir()
    (root / "Orders_backup" / "old.csv").write_text("x\n")
    (root / "README.md").write_text("notes")
    (root / "orders" / "export.log").write_text("log")
    (root / "_truth").mkdir()  # the generator's ground truth: bookkeeping, not a table
    (root / "_truth" / "t.parquet").write_bytes(b"x")

    report, code, text = validate_landing_zone(root)
    assert code == 0
    assert report.unknown_tables == {"Orders_backup": 1, "refunds": 2}
    assert report.all_ignored_files == ["README.md", "orders/export.log"]
    assert "unknown tables (2 folder(s), not read;" in text and "Orders_backup/ (1 file), refunds/ (2 files)" in text
    assert "ignored files (2, not .parquet/.csv data of a table): README.md, orders/export.log" in text


def test_a_landing_zone_and_quarantine_folder_named_with_a_quote_and_a_space(tmp_path):
    tables = valid_tables()
    tables["orders"].loc[2, "amount_usd"] = -1.0
    root = write_landing(tmp_path / "o'brien's landing", tables, "csv")
    out = tmp_path / "o'brien's quarantine"
    con = duckdb.connect()
    report = ingest_landing_zone(root, con, quarantine_parquet_dir=out)
    assert report.tables["orders"].quarantined_by_rule == {"non_positive_amount": 1}
    assert pd.read_parquet(out / "orders" / "quarantine.parquet").rule.tolist() == ["non_positive_amount"]
    assert_reconciles(report, con)
