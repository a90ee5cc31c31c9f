"""What the Dagster catalogue shows about every asset besides its data: owners, code version,
column schemas of the published tables and their freshness policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

import dagster as dg

from data_contracts import load_published_contracts
from features import FEATURES
from features.specs import NEVER_NULL

OWNERS = ["team:risk-analytics"]

try:
    # The project's release: a new release marks every asset's code as changed in the UI.
    CODE_VERSION = version("supplier-assurance")
except PackageNotFoundError:  # running from a source tree that is not installed
    CODE_VERSION = "unreleased"

# The monthly sensor publishes a month within the hour after the landing zone completes it
# (pipelines/jobs.py): a published table is fresh when it was last published after the month
# ended (00:00 on the 1st) and by noon on the 2nd, so the extract must land by then.
MONTHLY_PUBLICATION = dg.FreshnessPolicy.cron(deadline_cron="0 12 2 * *", lower_bound_delta=timedelta(hours=36))


def published_column_schema(table: str) -> dg.TableSchema:
    """The columns of a published table, from its contract (data_contracts/published/<table>.yaml);
    `supplier_features`, whose contract names only its keys, adds the feature catalogue's columns."""
    contract = load_published_contracts()[table]
    columns = [
        dg.TableColumn(
            column.name,
            column.type,
            description=column.description,
            constraints=dg.TableColumnConstraints(nullable=column.nullable, unique=column.unique),
        )
        for column in contract.columns
    ]
    if table == "supplier_features":
        named = {column.name for column in contract.columns}
        columns += [
            dg.TableColumn(
                spec.name,
                spec.dtype,
                description=spec.definition + ("" if spec.null_meaning == NEVER_NULL else f" NULL when: {spec.null_meaning}."),
                constraints=dg.TableColumnConstraints(nullable=spec.null_meaning != NEVER_NULL),
            )
            for spec in FEATURES
            if spec.name not in named
        ]
    return dg.TableSchema(columns=columns)


def with_owner_and_code_version(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(owners=spec.owners or OWNERS, code_version=spec.code_version or CODE_VERSION)


def catalogued(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Every asset with an owner and the code version, unless it declares its own."""
    return list(dg.map_asset_specs(with_owner_and_code_version, assets))
