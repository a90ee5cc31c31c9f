"""Feature specifications: one ``FeatureSpec`` per output column of
``compute_supplier_features``, in output order (the order is the output's).

They are generated from the declarations in ``features.declarations`` (a windowed
statistic or a ratio gives its own entry); ``uv run python -m features.catalogue``
renders this list to ``docs/feature_catalogue.md``, and a test keeps the committed file,
this list and the computed columns in step.
"""

from __future__ import annotations

from features.declarations import (
    CATALOGUE,
    NEVER_NULL,
    NO_DISPUTES,
    NO_INQUIRIES,
    NO_REVIEWS,
    FeatureSpec,
    specs_of,
)

__all__ = ["FEATURES", "FEATURES_BY_NAME", "FeatureSpec", "NEVER_NULL", "NO_DISPUTES", "NO_INQUIRIES", "NO_REVIEWS"]

FEATURES: list[FeatureSpec] = [spec for entry in CATALOGUE for spec in specs_of(entry)]
FEATURES_BY_NAME = {spec.name: spec for spec in FEATURES}
