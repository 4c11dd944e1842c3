"""Decision-row features for the router's models: one schema, the incremental C++ engine, the
GARCH fit. This module only re-exports; ``sor.features.reference`` (a slow reference used by
tests) is imported on its own."""

from sor.errors import FeatureConfigError, FeatureError
from sor.features.engine import (
    DECISION_CONTEXT_DTYPE,
    ChildOrderType,
    FeatureEngine,
    FeatureSettings,
    build_options,
    empty_contexts,
)
from sor.features.garch import GarchFitError, GarchParams, fit_garch, returns_bps, simulate_garch
from sor.features.schema import FEATURE_SCHEMA, Feature, FeatureSchema

__all__ = [
    "FEATURE_SCHEMA", "Feature", "FeatureSchema", "FeatureEngine", "FeatureSettings",
    "DECISION_CONTEXT_DTYPE", "ChildOrderType", "build_options", "empty_contexts",
    "GarchParams", "GarchFitError", "fit_garch", "returns_bps", "simulate_garch",
    "FeatureConfigError", "FeatureError",
]
