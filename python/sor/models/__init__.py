"""Model loading, validation and export (re-exports only; see docs/models.md)."""

from sor.models.export import xgboost_to_onnx
from sor.models.onnx_trees import (
    MODEL_NAME_KEY,
    PARITY_TOLERANCE,
    SCHEMA_HASH_KEY,
    ParityCheck,
    TreeModel,
    load_tree_model,
    threshold_reference_rows,
)

__all__ = [
    "load_tree_model",
    "TreeModel",
    "ParityCheck",
    "xgboost_to_onnx",
    "threshold_reference_rows",
    "SCHEMA_HASH_KEY",
    "MODEL_NAME_KEY",
    "PARITY_TOLERANCE",
]
