"""Exports XGBoost models to ONNX the way sor loads them (onnxmltools, ai.onnx.ml opset 1
TreeEnsemble nodes, input ``features``, the feature schema hash in ``metadata_props``)."""

from __future__ import annotations

import re
from typing import Any

from sor.errors import UsageError
from sor.models.onnx_trees import SCHEMA_HASH_KEY

_HASH = re.compile(r"[0-9a-fA-F]{16}")


def xgboost_to_onnx(model_or_booster: Any, *, feature_count: int, schema_hash: str,
                    metadata: dict[str, str] | None = None) -> bytes:
    """Returns the ONNX bytes of an XGBoost model: an ``XGBClassifier`` (binary:logistic), an
    ``XGBRegressor`` or a ``Booster``, converted by onnxmltools with ``target_opset=15``, with
    one float input ``features`` [N, feature_count] and ``metadata_props`` holding
    ``sor.feature_schema_hash`` and ``metadata``. The same model gives the same bytes."""
    import onnx
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    if not _HASH.fullmatch(schema_hash):
        raise UsageError(f"schema_hash must be 16 hexadecimal digits, got {schema_hash!r}")
    if feature_count < 1:
        raise UsageError(f"feature_count must be positive, got {feature_count}")
    extra = dict(metadata or {})
    if SCHEMA_HASH_KEY in extra:
        raise UsageError(f"metadata may not set {SCHEMA_HASH_KEY}; pass schema_hash")
    classes = getattr(model_or_booster, "n_classes_", None)
    if classes is not None and int(classes) != 2:
        raise UsageError(f"only binary classifiers are supported, the model has {classes} classes")
    converted = convert_xgboost(model_or_booster,
                                initial_types=[("features", FloatTensorType([None, feature_count]))],
                                target_opset=15)
    onnx.helper.set_model_props(converted, {SCHEMA_HASH_KEY: schema_hash, **extra})
    # onnxmltools names the graph with a random UUID; a fixed name makes the same model
    # serialise to the same bytes, so `sor train` reproduces the shipped files exactly.
    converted.graph.name = extra.get("sor.model_name", "sor_tree_ensemble")
    return converted.SerializeToString()
