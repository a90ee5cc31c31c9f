"""The monthly job and its schedule."""

from __future__ import annotations

import dagster as dg

from assets.partitions import month_end_partitions

MONTHLY_JOB_NAME = "assurance_monthly"

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

# On the 2nd of each month, score and publish the month that just ended.
monthly_schedule = dg.build_schedule_from_partitioned_job(
    assurance_monthly, hour_of_day=6, day_of_month=2, default_status=dg.DefaultScheduleStatus.STOPPED
)
