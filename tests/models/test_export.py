"""sor.models.export: XGBoost to ONNX as sor loads it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import xgboost as xgb

from sor.errors import UsageError
from sor.models import SCHEMA_HASH_KEY, load_tree_model, xgboost_to_onnx

HASH = "00ff00ff00ff00ff"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    return x, (x[:, 0] - x[:, 1] > 0).astype(np.int32)


def test_classifier_export_has_input_metadata_and_opset() -> None:
    x, y = _data()
    data = xgboost_to_onnx(xgb.XGBClassifier(n_estimators=4, max_depth=3, n_jobs=1).fit(x, y),
                           feature_count=6, schema_hash=HASH, metadata={"sor.model_name": "fill"})
    model = onnx.load_from_string(data)
    assert [i.name for i in model.graph.input] == ["features"]
    assert {p.key: p.value for p in model.metadata_props} == {SCHEMA_HASH_KEY: HASH,
                                                            "sor.model_name": "fill"}
    assert [n.op_type for n in model.graph.node] == ["TreeEnsembleClassifier"]
    assert {o.domain: o.version for o in model.opset_import}["ai.onnx.ml"] == 1
    assert load_tree_model(data, expected_schema_hash=HASH).name == "fill"


def test_booster_and_regressor_export_and_load() -> None:
    x, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                        xgb.DMatrix(x, label=y), num_boost_round=3)
    assert load_tree_model(xgboost_to_onnx(booster, feature_count=6, schema_hash=HASH),
                           expected_schema_hash=HASH).kind == "classifier"
    regressor = xgb.XGBRegressor(n_estimators=3, max_depth=2, n_jobs=1).fit(x, x[:, 2])
    loaded = load_tree_model(xgboost_to_onnx(regressor, feature_count=6, schema_hash=HASH),
                             expected_schema_hash=HASH)
    assert loaded.kind == "regressor" and loaded.tree_count == 3


def test_export_refuses_bad_hash_and_multiclass() -> None:
    x, y = _data()
    model = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(x, y)
    with pytest.raises(UsageError, match="16 hexadecimal digits"):
        xgboost_to_onnx(model, feature_count=6, schema_hash="xyz")
    with pytest.raises(UsageError, match="pass schema_hash"):
        xgboost_to_onnx(model, feature_count=6, schema_hash=HASH, metadata={SCHEMA_HASH_KEY: HASH})
    three = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(x, y + (x[:, 3] > 1))
    with pytest.raises(UsageError, match="3 classes"):
        xgboost_to_onnx(three, feature_count=6, schema_hash=HASH)
