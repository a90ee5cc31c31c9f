"""The optional `_landing_zone.json` manifest fixes the data horizon of a snapshot taken after its last order."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from data_contracts import LandingZoneError, ingest_landing_zone
from data_contracts.manifest import MANIFEST_NAME, read_not_collected, read_snapshot_at, write_manifest
from test_contracts_support import valid_tables, write_landing


def landing_with_late_delivery(root):
    tables = valid_tables()
    last_order = tables["orders"]["created_at"].max()
    # Delivered two weeks after the newest order: real in an export taken later.
    tables["orders"].loc[0, "delivered_at"] = last_order + pd.Timedelta(days=14)
    return write_landing(root, tables), last_order


def test_without_a_manifest_events_after_the_last_order_are_quarantined(tmp_path):
    landing, _ = landing_with_late_delivery(tmp_path)
    report = ingest_landing_zone(landing, duckdb.connect())
    assert report.horizon_source == "orders.created_at"
    assert report.tables["orders"].quarantined_by_rule.get("after_horizon", 0) == 1


def test_a_manifest_sets_the_horizon_and_keeps_those_events(tmp_path):
    landing, last_order = landing_with_late_delivery(tmp_path)
    snapshot = (last_order + pd.Timedelta(days=30)).to_pydatetime().replace(tzinfo=timezone.utc)
    write_manifest(landing, snapshot, source="test")
    report = ingest_landing_zone(landing, duckdb.connect())
    assert report.data_horizon == snapshot.replace(tzinfo=None)
    assert report.horizon_source == f"{MANIFEST_NAME} snapshot_at"
    assert "after_horizon" not in report.tables["orders"].quarantined_by_rule


@pytest.mark.parametrize("content", ["not json", "[1]", '{"snapshot_at": "2025-01-01T00:00:00"}', '{"snapshot_at": "yesterday"}'])
def test_an_unreadable_manifest_stops_with_a_clear_error(tmp_path, content):
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(LandingZoneError, match=MANIFEST_NAME):
        read_snapshot_at(tmp_path)


@pytest.mark.parametrize("not_collected", ['["orders"]', '"disputes"'])
def test_only_event_tables_may_be_declared_not_collected(tmp_path, not_collected):
    (tmp_path / MANIFEST_NAME).write_text(f'{{"not_collected": {not_collected}}}')
    with pytest.raises(LandingZoneError, match="not_collected"):
        read_not_collected(tmp_path)


def test_a_table_not_collected_is_absent_so_its_features_and_labels_are_null(tmp_path):
    from features import compute_supplier_features
    from models.labels import compute_breach_labels

    tables = valid_tables()
    del tables["disputes"]
    landing = write_landing(tmp_path, tables)
    write_manifest(landing, datetime(2025, 6, 30, tzinfo=timezone.utc), source="test", not_collected=("disputes",))
    con = duckdb.connect()
    report = ingest_landing_zone(landing, con)
    assert "disputes" in report.absent_optional_tables
    month_end = datetime(2025, 1, 31).date()
    features = compute_supplier_features(con, [month_end]).to_pandas()
    assert features["orders_6m"].notna().all()
    for column in ("dispute_ratio_6m", "disputed_orders_6m", "buyer_won_dispute_share_6m", "refund_share_6m"):
        assert features[column].isna().all(), column
    labels = compute_breach_labels(con, [month_end], data_horizon=report.data_horizon).to_pandas()
    assert labels["breach_6m"].isna().all() and not labels["label_complete"].any()


def test_files_for_a_table_declared_not_collected_are_refused(tmp_path):
    landing = write_landing(tmp_path, valid_tables())
    write_manifest(landing, datetime(2025, 6, 30, tzinfo=timezone.utc), source="test", not_collected=("disputes",))
    with pytest.raises(LandingZoneError, match="not collected"):
        ingest_landing_zone(landing, duckdb.connect())


def test_write_and_read_round_trip_in_utc(tmp_path):
    write_manifest(tmp_path, datetime(2018, 10, 15, 0, 5, tzinfo=timezone.utc), source="olist")
    assert read_snapshot_at(tmp_path) == datetime(2018, 10, 15, 0, 5)
