"""The catalogue, the computed columns and docs/feature_catalogue.md stay in step."""

from __future__ import annotations

from datetime import date

from features import FEATURES, FeatureSpec, compute_storefront_metrics, compute_supplier_features
from features.catalogue import CATALOGUE_PATH, render_catalogue
from features.storefront import STOREFRONT_COLUMNS
from test_features_landing_zone import connection_with, random_landing_zone

# Columns the model and the policy read by name (docs/architecture.md).
NAMES_OTHER_LAYERS_RELY_ON = [
    "country", "membership_tier", "category", "tenure_months", "opted_in", "orders_6m",
    "completion_rate_6m", "on_time_shipment_rate_6m", "dispute_ratio_6m", "response_rate_6m",
    "median_response_hours_6m", "deal_count_12m", "deal_value_12m_usd", "assured_deal_value_12m_usd",
    "review_mean_6m", "review_count_6m",
]
DESIGN_STOREFRONT_COLUMNS = ["transactions_12m", "deal_value_12m_usd", "response_rate_6m",
                             "median_response_hours_6m", "on_time_shipment_rate_6m"]


def test_committed_catalogue_is_up_to_date():
    assert CATALOGUE_PATH.read_text(encoding="utf-8") == render_catalogue(), (
        "docs/feature_catalogue.md is stale: run `uv run python -m features.catalogue`"
    )


def test_every_spec_is_a_column_and_every_column_a_spec():
    features = compute_supplier_features(connection_with(random_landing_zone(seed=2)), [date(2024, 6, 30)])
    assert features.column_names == ["as_of_date", "supplier_id", *(spec.name for spec in FEATURES)]
    names = [spec.name for spec in FEATURES]
    assert len(names) == len(set(names))
    for name in NAMES_OTHER_LAYERS_RELY_ON:
        assert name in names


def test_spec_types_match_the_computed_columns():
    con = connection_with(random_landing_zone(seed=2))
    features = compute_supplier_features(con, [date(2024, 6, 30)])
    con.register("features_table", features)
    described = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE features_table)").fetchall())
    for spec in FEATURES:
        assert described[spec.name] == spec.dtype, spec.name


def test_specs_are_well_formed():
    for spec in FEATURES:
        assert isinstance(spec, FeatureSpec)
        assert spec.risk_direction in (-1, 0, 1), spec.name
        assert spec.window in ("static", "all", "1m", "3m", "6m", "12m"), spec.name
        assert spec.definition.endswith(".") and spec.null_meaning, spec.name


def test_storefront_columns_are_the_design_contract():
    metrics = compute_storefront_metrics(connection_with(random_landing_zone(seed=2)), [date(2024, 6, 30)])
    assert metrics.column_names[:2] == ["as_of_date", "supplier_id"]
    for column in DESIGN_STOREFRONT_COLUMNS:
        assert column in metrics.column_names
    feature_names = {spec.name for spec in FEATURES}
    assert set(STOREFRONT_COLUMNS.values()) <= feature_names
