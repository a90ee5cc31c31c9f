"""Dagster assets and asset checks: thin wiring of the library functions, partitions, metadata."""

import warnings

import dagster as dg

# Single-run backfill policies and partitioned checks are the features this project is built
# on; their beta/preview labels are noted once here rather than warned about on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
