"""The one `Definitions` of the project (`dagster dev -m pipelines.definitions`)."""

from __future__ import annotations

import dagster as dg

from assets import features, landing, modeling, monitoring, publishing, reporting, scoring
from assets.catalogue import catalogued
from pipelines.jobs import assurance_monthly, landing_zone_months, monthly_publication
from pipelines.resources import (
    LandingZoneResource,
    MLflowResource,
    PolicyResource,
    PublishedStoreResource,
    WarehouseResource,
    feature_engine_resource,
)
from pipelines.settings import REGISTERED_MODEL_NAME, Settings

ASSET_MODULES = [landing, features, modeling, scoring, monitoring, publishing, reporting]


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            path=str(settings.warehouse),
            memory_limit=settings.duckdb_memory_limit,
            temp_directory=str(settings.duckdb_temp_directory or ""),
        ),
        "landing": LandingZoneResource(path=str(settings.landing), quarantine_parquet_dir=str(settings.quarantine_parquet)),
        "feature_engine": feature_engine_resource(settings),
        "model_registry": MLflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            registered_model_name=REGISTERED_MODEL_NAME,
            vintage_config_file=str(settings.vintage_config_file or ""),
        ),
        "published_store": PublishedStoreResource(parquet_root=str(settings.published_parquet), reports_dir=str(settings.reports)),
        "policy": PolicyResource(
            policy_file=str(settings.policy_file or ""),
            overrides_file=str(settings.overrides),
            overrides_required=settings.overrides_file is not None,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=catalogued(dg.load_assets_from_modules(ASSET_MODULES)),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[assurance_monthly],
        sensors=[landing_zone_months, monthly_publication],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
