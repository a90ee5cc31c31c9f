"""The monthly job and the sensors that keep its months in step with the landing zone."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.partitions import MONTH_END_PARTITIONS, month_end_partitions, month_key_changes, month_keys
from assets.publishing import PUBLISHED_SCORES
from data_contracts import LandingZoneError
from data_contracts.span import landing_zone_month_span
from pipelines.resources import LandingZoneResource

MONTHLY_JOB_NAME = "assurance_monthly"
MONTHLY_SENSOR_NAME = "assurance_monthly_sensor"
LANDING_MONTHS_SENSOR_NAME = "landing_zone_months"

# The monthly sensor looks at the landing zone once an hour: a new month is published within
# the hour after its last day lands (the published tables' freshness deadline is noon on the 2nd).
MONTHLY_SENSOR_INTERVAL_SECONDS = 3600
# The UI's partitions follow the landing zone within ten minutes (one scan of orders.created_at).
LANDING_MONTHS_INTERVAL_SECONDS = 600

# In-process: every step writes the same DuckDB file, so parallel steps would only queue on
# its lock; a range of months is spread inside each step, set-wise, instead.
assurance_monthly = dg.define_asset_job(
    MONTHLY_JOB_NAME,
    selection=dg.AssetSelection.all(),
    partitions_def=month_end_partitions,
    executor_def=dg.in_process_executor,
    description="Ingest and validate the landing zone, compute features, train or reuse the model vintages, "
    "score, apply the limit policy and publish the selected months.",
)


def _register_and_request(
    instance: dg.DagsterInstance, landing: LandingZoneResource, publish: bool
) -> dg.SensorResult | dg.SkipReason:
    """Both sensors: register the landing zone's months as partitions; with `publish`, also
    request one run (like a single-run backfill, oldest first) over the months after the newest
    published one. An unusable landing zone is a skip, said in one line."""
    try:
        months = month_keys(*landing_zone_month_span(Path(landing.path)))
    except LandingZoneError as error:
        return dg.SkipReason(f"unusable landing zone {landing.path}: {error}")
    except OSError as error:
        return dg.SkipReason(f"landing zone {landing.path} cannot be read ({error}): check ASSURANCE_LANDING")
    changes = month_key_changes(instance.get_dynamic_partitions(MONTH_END_PARTITIONS), months)
    newest_published = max(instance.get_materialized_partitions(PUBLISHED_SCORES), default="") if publish else ""
    due = [month for month in months if month > newest_published] if publish else []
    if not due:
        said = f"the data covers {months[0]}..{months[-1]}"
        said += f"; registered {', '.join(changes.new_months)}" if changes.new_months else "; all registered"
        said += f"; published up to {newest_published}" if publish else ""
        return dg.SensorResult(dynamic_partitions_requests=changes.as_requests(), skip_reason=said)
    first, last = due[0], due[-1]
    request = dg.RunRequest(
        run_key=f"{first}...{last}",  # each range is launched once
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    return dg.SensorResult(run_requests=[request], dynamic_partitions_requests=changes.as_requests())


def _landing_sensor(name: str, publish: bool, interval_seconds: int, description: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        job=assurance_monthly if publish else None,
        minimum_interval_seconds=interval_seconds,
        # Publishing on its own is switched on by hand; keeping the UI's months in step is not.
        default_status=dg.DefaultSensorStatus.STOPPED if publish else dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def evaluate(context: dg.SensorEvaluationContext, landing: LandingZoneResource):
        return _register_and_request(context.instance, landing, publish)

    return evaluate


landing_zone_months = _landing_sensor(
    LANDING_MONTHS_SENSOR_NAME, False, LANDING_MONTHS_INTERVAL_SECONDS,
    "Registers the months the landing zone covers as `month_end` partitions (nothing is run), so the UI "
    "offers exactly the data's months.",
)
monthly_publication = _landing_sensor(
    MONTHLY_SENSOR_NAME, True, MONTHLY_SENSOR_INTERVAL_SECONDS,
    "Once the landing zone completes a month that is not published yet, registers its months and runs every "
    "month after the newest published one up to it, as one run (oldest first).",
)
