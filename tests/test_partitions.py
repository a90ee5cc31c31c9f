"""Issue 14, "any era": the partitions are the data's months, registered in month order, and the
sensors keep them in step with the landing zone."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import (
    MONTH_END_PARTITIONS,
    as_of_dates_in_run,
    month_end_of,
    month_end_partitions,
    month_key_changes,
    month_keys,
    register_months,
    single_run,
)
from assets.publishing import PUBLISHED_SCORES
from pipelines.jobs import landing_zone_months, monthly_publication
from pipelines.resources import DuckDBFeatureEngineResource, LandingZoneResource
from pipelines.runner import _failure as run_failure
from synthetic import generate_landing_zone

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.mark.parametrize(
    ("registered", "months", "delete", "add"),
    [
        ([], ["2006-01", "2006-02"], [], ["2006-01", "2006-02"]),  # a fresh instance: the data's months
        (["2006-01", "2006-02"], ["2006-01", "2006-02"], [], []),  # a rerun on the same data: nothing changes
        (["2006-01", "2006-02"], ["2006-01", "2006-02", "2006-03"], [], ["2006-03"]),  # a month more: appended
        (["2024-01", "2024-02"], ["2023-11", "2023-12"], ["2024-01", "2024-02"],
         ["2023-11", "2023-12", "2024-01", "2024-02"]),  # older history: the younger keys go back after it
        (["2024-01", "2024-03"], ["2024-02"], ["2024-03"], ["2024-02", "2024-03"]),  # a gap filled in place
        (["2017-01", "2017-02"], ["2025-01"], [], ["2025-01"]),  # another landing zone: earlier months kept
        (["2024-02", "2024-01"], ["2024-01"], ["2024-02", "2024-01"], ["2024-01", "2024-02"]),  # out of order: repaired
        (["1999-12", "2000-01"], ["2000-01", "2000-02"], [], ["2000-02"]),  # across a century: text order is month order
    ],
)
def test_month_key_changes_keep_the_keys_in_month_order(registered, months, delete, add):
    changes = month_key_changes(registered, months)
    assert (changes.delete, changes.add) == (delete, add)
    # Applied in order, the keys are the union, oldest first.
    assert [k for k in registered if k not in delete] + add == sorted(set(registered) | set(months))


def test_month_keys_span_any_era():
    assert month_keys(date(2006, 11, 30), date(2007, 2, 28)) == ["2006-11", "2006-12", "2007-01", "2007-02"]
    assert month_keys(date(2099, 12, 31), date(2099, 12, 31)) == ["2099-12"]


def test_a_key_that_is_no_month_is_refused_in_one_line():
    with pytest.raises(ValueError, match="partition 'latest' is not a month: `month_end` keys are YYYY-MM"):
        month_end_of("latest")


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@dg.asset(partitions_def=month_end_partitions, backfill_policy=single_run)
def month_probe(context) -> None:  # (no annotation: this module postpones them, which Dagster refuses)
    """Records the as-of dates a run hands to an asset, as the project's assets read them."""
    context.add_output_metadata({"as_of_dates": ",".join(map(str, as_of_dates_in_run(context)))})


def _materialize_range(instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([month_probe], instance=instance, tags={RANGE_START: first, RANGE_END: last})


def test_register_months_adds_only_new_months_and_a_rerun_adds_the_next(instance):
    assert register_months(instance, month_keys(date(2006, 1, 31), date(2006, 12, 31)))[::11] == ["2006-01", "2006-12"]
    assert register_months(instance, month_keys(date(2006, 1, 31), date(2006, 12, 31))) == []  # idempotent
    assert register_months(instance, month_keys(date(2006, 1, 31), date(2007, 2, 28))) == ["2007-01", "2007-02"]
    assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == month_keys(date(2006, 1, 31), date(2007, 2, 28))


def test_older_months_reorder_the_keys_and_keep_what_was_materialised(instance):
    """Landing history older than the registered months: a range across both still resolves in
    month order, and the months materialised before still show as materialised."""
    register_months(instance, ["2024-01", "2024-02", "2024-03"])
    assert _materialize_range(instance, "2024-01", "2024-03").success
    assert register_months(instance, ["2023-11", "2023-12", "2024-01"]) == ["2023-11", "2023-12"]
    assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == ["2023-11", "2023-12", "2024-01", "2024-02", "2024-03"]
    assert instance.get_materialized_partitions(month_probe.key) == {"2024-01", "2024-02", "2024-03"}
    result = _materialize_range(instance, "2023-12", "2024-02")
    metadata = result.asset_materializations_for_node("month_probe")[0].metadata
    assert metadata["as_of_dates"].value == "2023-12-31,2024-01-31,2024-02-29"


def test_a_range_of_old_months_is_one_run_with_every_as_of_date(instance):
    register_months(instance, month_keys(date(2001, 1, 31), date(2001, 4, 30)))
    result = _materialize_range(instance, "2001-02", "2001-04")
    assert result.success
    assert {m.partition for m in result.asset_materializations_for_node("month_probe")} == {"2001-02", "2001-03", "2001-04"}
    assert result.asset_materializations_for_node("month_probe")[0].metadata["as_of_dates"].value == (
        "2001-02-28,2001-03-31,2001-04-30"
    )


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("any-era") / "landing"
    generate_landing_zone(landing, n_suppliers=40, start="2006-01", months=14, seed=3)
    return landing


DATA_MONTHS = month_keys(date(2006, 1, 31), date(2007, 2, 28))


def _evaluate(sensor, instance, landing):
    resources = {"landing": LandingZoneResource(path=str(landing), quarantine_parquet_dir=str(landing.parent / "q"))}
    return sensor(dg.build_sensor_context(instance=instance, resources=resources))


def _apply(instance, result: dg.SensorResult) -> None:
    """What the sensor daemon does with the result's partition requests, in order."""
    for request in result.dynamic_partitions_requests:
        for key in request.partition_keys:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, [key])
            else:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def _publish(instance, *keys: str) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(PUBLISHED_SCORES, partition=key))


def test_the_landing_months_sensor_registers_the_datas_months_and_runs_nothing(instance, landing):
    result = _evaluate(landing_zone_months, instance, landing)
    assert result.run_requests == []
    assert [(type(r), r.partition_keys) for r in result.dynamic_partitions_requests] == [
        (dg.AddDynamicPartitionsRequest, DATA_MONTHS)
    ]
    _apply(instance, result)
    assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == DATA_MONTHS
    assert "the data covers 2006-01..2007-02; registered 2006-01, " in result.skip_reason.skip_message
    again = _evaluate(landing_zone_months, instance, landing)
    assert again.dynamic_partitions_requests == [] and again.run_requests == []
    assert again.skip_reason.skip_message == "the data covers 2006-01..2007-02; all registered"


@pytest.mark.parametrize(
    ("published", "expected_range"),
    [
        ((), ("2006-01", "2007-02")),  # nothing published yet: every month of the data, as one run
        (("2006-01", "2007-01"), ("2007-02",) * 2),  # the month the data just completed
        (("2007-02",), None),  # the newest month is published: nothing to run
    ],
)
def test_the_monthly_sensor_runs_the_months_after_the_newest_published_one(instance, landing, published, expected_range):
    _publish(instance, *published)
    result = _evaluate(monthly_publication, instance, landing)
    if expected_range is None:
        assert result.run_requests == [] and result.skip_reason.skip_message.endswith("; published up to 2007-02")
    else:
        (request,) = result.run_requests
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == expected_range
        assert request.run_key == "...".join(expected_range)  # launched once per range
    _apply(instance, result)
    assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == DATA_MONTHS


@pytest.mark.parametrize("sensor", [landing_zone_months, monthly_publication])
def test_an_unusable_landing_zone_skips_with_one_line(instance, tmp_path, sensor):
    (tmp_path / "empty").mkdir()
    result = _evaluate(sensor, instance, tmp_path / "empty")
    assert isinstance(result, dg.SkipReason)
    assert "unusable landing zone" in result.skip_message and "\n" not in result.skip_message
    assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == []


def test_the_months_command_registers_the_datas_months_in_a_fresh_home(landing, tmp_path, monkeypatch):
    """For `dagster asset materialize --partition-range` and the UI before any run."""
    from click.testing import CliRunner

    from pipelines.cli import main

    for name in ("ASSURANCE_HOME", "ASSURANCE_LANDING", "DAGSTER_HOME"):  # the CLI sets them; restored after
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    first = CliRunner().invoke(main, ["months", "--landing", str(landing), "--home", str(home)])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("the data covers 2006-01..2007-02 (14 months): registered 2006-01, 2006-02, ")
    again = CliRunner().invoke(main, ["months", "--landing", str(landing), "--home", str(home)])
    assert "(14 months): all registered already" in again.output
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == DATA_MONTHS
    (tmp_path / "empty").mkdir()
    unusable = CliRunner().invoke(main, ["months", "--landing", str(tmp_path / "empty"), "--home", str(home)])
    assert unusable.exit_code == 2 and unusable.output.startswith("error: unusable landing zone: ")
    assert len(unusable.output.strip().splitlines()) == 1


class WarehouseNotToBeOpened:
    """The check comes before any work: opening the warehouse fails the test."""

    path = "unused"

    def connect(self, read_only: bool = False):
        raise AssertionError("the warehouse was opened for months outside the data")


@pytest.mark.parametrize(
    ("keys", "refused"),
    [
        (["2007-03"], "1 month(s) 2007-03..2007-03"),  # one month past the data's last complete month
        (["2005-11", "2005-12"], "2 month(s) 2005-11..2005-12"),  # a landing zone's older months, still registered
    ],
)
def test_feature_assets_refuse_months_outside_the_data(instance, landing, keys, refused):
    """A run from the UI or the Dagster CLI may select keys left from an earlier landing zone, or
    added by hand: the months are refused, never computed empty."""
    from assets.features import storefront_metrics, supplier_features

    register_months(instance, [*keys, *DATA_MONTHS])
    resources = {
        "warehouse": WarehouseNotToBeOpened(),
        "landing": LandingZoneResource(path=str(landing), quarantine_parquet_dir=str(landing.parent / "q")),
        "feature_engine": DuckDBFeatureEngineResource(),
    }
    for asset in (supplier_features, storefront_metrics):
        result = dg.materialize([asset], instance=instance, resources=resources, raise_on_error=False,
                                tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
        assert not result.success
        # What `assurance run` would say: one line, exit code 2 (bad usage, like --from/--to outside the data).
        failure = run_failure(result, [], Path("run.log"))
        assert failure.exit_code == 2 and "\n" not in str(failure)
        assert f"step {asset.key.to_user_string()}: MonthsOutsideDataError: {refused} of this run are outside the data" in str(failure)
        assert str(failure).endswith("covers 2006-01..2007-02; next: run months within them")
