"""Monthly partitions: one partition per as-of month; the as-of date is that month's last day."""

from __future__ import annotations

import calendar
from datetime import date, datetime

import dagster as dg

PARTITION_FORMAT = "%Y-%m"
# Early enough for the Olist data (2016-09 on); a partition only exists once its month is over.
FIRST_PARTITION = "2016-01"

month_end_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_PARTITION, fmt=PARTITION_FORMAT)

# A range of months is one run: features and scores are computed set-wise, not month by month.
single_run = dg.BackfillPolicy.single_run()


def month_end_of(partition_key: str) -> date:
    month = datetime.strptime(partition_key, PARTITION_FORMAT).date()
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def partition_key_of(as_of_date: date) -> str:
    return as_of_date.strftime(PARTITION_FORMAT)


def as_of_dates_in_run(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """Month ends of the partitions this run materialises, oldest first."""
    return sorted(month_end_of(key) for key in context.partition_keys)
