"""Where everything lives: one home folder (ASSURANCE_HOME, default ./var) per docs/design.md §5."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REGISTERED_MODEL_NAME = "supplier_breach_risk"


@dataclass(frozen=True)
class Settings:
    home: Path
    landing: Path
    policy_file: Path | None = None
    # Analyst overrides (models/overrides.py); None: `overrides.yaml` in the home folder, if present.
    overrides_file: Path | None = None
    vintage_config_file: Path | None = None  # model vintages' cadence (models/vintages.yaml when None)

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("ASSURANCE_HOME", "var")).resolve()
        landing = Path(os.environ.get("ASSURANCE_LANDING", home / "landing")).resolve()
        policy = os.environ.get("ASSURANCE_POLICY")
        overrides = os.environ.get("ASSURANCE_OVERRIDES")
        vintages = os.environ.get("ASSURANCE_VINTAGES")
        return cls(
            home=home,
            landing=landing,
            policy_file=Path(policy).resolve() if policy else None,
            overrides_file=Path(overrides).resolve() if overrides else None,
            vintage_config_file=Path(vintages).resolve() if vintages else None,
        )

    @property
    def overrides(self) -> Path:
        """The overrides file the run reads: ASSURANCE_OVERRIDES, else `overrides.yaml` in the home folder."""
        return self.overrides_file or self.home / "overrides.yaml"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published_parquet(self) -> Path:
        return self.home / "published"

    @property
    def quarantine_parquet(self) -> Path:
        return self.home / "quarantine"

    @property
    def mlflow_tracking_uri(self) -> str:
        # sqlite URIs need four slashes for an absolute path.
        return f"sqlite:///{(self.home / 'mlflow.db').as_posix()}"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def reports(self) -> Path:
        return self.home / "reports"
