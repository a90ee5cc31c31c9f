"""Monthly partitions: one partition per as-of month; the as-of date is that month's last day.

The months are the data's, in any era: the partitions are dynamic (`month_end`), and their
keys are the months a landing zone covers, registered in the Dagster instance before a run
(`register_months`, from `data_contracts.span.landing_zone_month_span`). A fixed calendar
would refuse older data and show decades of empty months for younger data.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg

from data_contracts.span import landing_zone_month_span
from features import month_ends

PARTITION_FORMAT = "%Y-%m"
MONTH_END_PARTITIONS = "month_end"

month_end_partitions = dg.DynamicPartitionsDefinition(name=MONTH_END_PARTITIONS)

# A range of months is one run: features and scores are computed set-wise, not month by month.
single_run = dg.BackfillPolicy.single_run()


def month_end_of(partition_key: str) -> date:
    try:
        month = datetime.strptime(partition_key, PARTITION_FORMAT).date()
    except ValueError:
        raise ValueError(
            f"partition {partition_key!r} is not a month: `{MONTH_END_PARTITIONS}` keys are YYYY-MM; "
            "delete it in the UI and let `assurance run` register the data's months"
        ) from None
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def partition_key_of(as_of_date: date) -> str:
    return as_of_date.strftime(PARTITION_FORMAT)


def month_keys(first_month_end: date, last_month_end: date) -> list[str]:
    """The partition key of every month from the first month end to the last, oldest first."""
    return [partition_key_of(month_end) for month_end in month_ends(first_month_end, last_month_end)]


def as_of_dates_in_run(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """Month ends of the partitions this run materialises, oldest first."""
    return sorted(month_end_of(key) for key in context.partition_keys)


class MonthsOutsideDataError(ValueError):
    """A run selected months the landing zone does not cover: keys stay registered from an earlier
    landing zone, or were added by hand. They are refused, not computed empty (docs/design.md §5)."""


def as_of_dates_in_data(context: dg.AssetExecutionContext, landing_dir: Path) -> list[date]:
    """`as_of_dates_in_run`, refusing the run (`MonthsOutsideDataError`) when one of its months is
    outside the landing zone's month span. `assurance run` checks before launching; this covers
    runs launched from the UI or the Dagster CLI."""
    as_of_dates = as_of_dates_in_run(context)
    first, last = landing_zone_month_span(landing_dir)
    outside = [partition_key_of(day) for day in as_of_dates if not first <= day <= last]
    if outside:
        raise MonthsOutsideDataError(
            f"{len(outside)} month(s) {outside[0]}..{outside[-1]} of this run are outside the data: the landing zone "
            f"{landing_dir} covers {partition_key_of(first)}..{partition_key_of(last)}; next: run months within them"
        )
    return as_of_dates


@dataclass(frozen=True)
class MonthKeyChanges:
    """Keys to delete, then keys to add (in this order), so the registered months become the
    union of what was registered and the new months, oldest first."""

    delete: list[str]
    add: list[str]

    @property
    def new_months(self) -> list[str]:
        return [key for key in self.add if key not in self.delete]

    def as_requests(self) -> list[dg.DeleteDynamicPartitionsRequest | dg.AddDynamicPartitionsRequest]:
        """The same changes for a sensor's `SensorResult` (the daemon applies them in order)."""
        requests: list[dg.DeleteDynamicPartitionsRequest | dg.AddDynamicPartitionsRequest] = []
        if self.delete:
            requests.append(dg.DeleteDynamicPartitionsRequest(MONTH_END_PARTITIONS, self.delete))
        if self.add:
            requests.append(dg.AddDynamicPartitionsRequest(MONTH_END_PARTITIONS, self.add))
        return requests


def month_key_changes(registered: Sequence[str], months: Iterable[str]) -> MonthKeyChanges:
    """How to register `months` beside the `registered` keys while keeping every key in month order.

    Dynamic keys are ordered as they were added, and Dagster takes a range of them
    (`--partition-range`, a backfill, the UI) in that order: a month older than some registered
    ones must not land after them. So the registered keys from the first out-of-place one on are
    deleted and added back in order. Only the key list changes: materializations and check
    results are stored per key and show again once the key is back. Keys are never dropped, so
    months published from an earlier landing zone stay visible.
    """
    wanted = sorted(set(registered) | set(months))
    kept = 0
    while kept < len(registered) and registered[kept] == wanted[kept]:
        kept += 1
    return MonthKeyChanges(delete=list(registered[kept:]), add=wanted[kept:])


def register_months(instance: dg.DagsterInstance, months: Sequence[str]) -> list[str]:
    """Make `months` partitions of `month_end` in the instance (idempotent); returns the new ones."""
    changes = month_key_changes(instance.get_dynamic_partitions(MONTH_END_PARTITIONS), months)
    for key in changes.delete:
        instance.delete_dynamic_partition(MONTH_END_PARTITIONS, key)
    if changes.add:
        instance.add_dynamic_partitions(MONTH_END_PARTITIONS, changes.add)
    return changes.new_months
