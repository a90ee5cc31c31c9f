"""Point-in-time supplier features and storefront metrics (pure functions, DuckDB).

>>> from features import month_ends, compute_supplier_features, compute_storefront_metrics, FEATURES
"""

from features.specs import FEATURES, FeatureSpec
from features.storefront import compute_storefront_metrics
from features.supplier_features import compute_supplier_features
from features.windows import month_ends

__all__ = [
    "FEATURES",
    "FeatureSpec",
    "compute_storefront_metrics",
    "compute_supplier_features",
    "month_ends",
]
