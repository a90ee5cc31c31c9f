"""Production (DuckDB, bucketed windows) == reference (pandas, literal filters), for every
feature, on random small landing zones."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import FEATURES, compute_storefront_metrics, compute_supplier_features
from feature_reference import (
    as_comparable_frame,
    reference_storefront_metrics,
    reference_supplier_features,
)
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates


def assert_frames_match(production: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(production.columns) == list(reference.columns)
    assert len(production) == len(reference)
    keys = ["as_of_date", "supplier_id"]
    assert production[keys].values.tolist() == reference[keys].values.tolist()
    for column in production.columns:
        for row, (got, want) in enumerate(zip(production[column], reference[column], strict=True)):
            where = f"{column} at {production['as_of_date'][row]} {production['supplier_id'][row]}"
            if want is None or got is None:
                assert got is None and want is None, f"{where}: production {got!r}, reference {want!r}"
            elif isinstance(want, float) or isinstance(got, float):
                assert math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9), (
                    f"{where}: production {got!r}, reference {want!r}"
                )
            else:
                assert got == want, f"{where}: production {got!r}, reference {want!r}"


zones = st.builds(
    random_landing_zone,
    seed=st.integers(0, 2**32 - 1),
    n_suppliers=st.integers(1, 8),
    n_orders=st.integers(0, 150),
    with_inquiries=st.booleans(),
    with_reviews=st.booleans(),
)


# A few month ends per example, not necessarily consecutive: the production code must
# not depend on neighbouring months being requested.
as_of_date_sets = st.lists(st.sampled_from(zone_as_of_dates()), min_size=1, max_size=6, unique=True)


def check_supplier_features_equal_reference(zone, as_of_dates):
    con = connection_with(zone)
    production = as_comparable_frame(compute_supplier_features(con, as_of_dates))
    reference = as_comparable_frame(reference_supplier_features(con, as_of_dates))
    assert_frames_match(production, reference)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=zones, as_of_dates=as_of_date_sets)
def test_supplier_features_equal_reference(zone, as_of_dates):
    check_supplier_features_equal_reference(zone, as_of_dates)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=zones, as_of_dates=as_of_date_sets)
def test_supplier_features_equal_reference_thoroughly(zone, as_of_dates):
    check_supplier_features_equal_reference(zone, as_of_dates)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=zones, as_of_dates=as_of_date_sets)
def test_storefront_metrics_equal_reference(zone, as_of_dates):
    con = connection_with(zone)
    production = as_comparable_frame(compute_storefront_metrics(con, as_of_dates))
    reference = as_comparable_frame(reference_storefront_metrics(con, as_of_dates))
    assert_frames_match(production, reference)


def test_a_larger_zone_equals_reference_on_every_month_end():
    con = connection_with(random_landing_zone(seed=11, n_suppliers=25, n_orders=1200))
    as_of_dates = zone_as_of_dates()
    production_table = compute_supplier_features(con, as_of_dates)
    production = as_comparable_frame(production_table)
    reference = as_comparable_frame(reference_supplier_features(con, as_of_dates))
    assert_frames_match(production, reference)
    # The comparison is only as good as the values it sees: every feature takes a value
    # somewhere and (apart from attributes and flags) more than one distinct value.
    for spec in FEATURES:
        assert production_table[spec.name].null_count < production_table.num_rows, spec.name
        assert len(production_table[spec.name].unique()) > 1, spec.name
