"""The shipped models: they load through the validating registry (file hash, feature schema,
tree graph, parity with onnxruntime on their held-out rows) and their cards say what they were
trained on. A change of the feature schema without retraining fails here."""

import numpy as np
import onnxruntime as ort

from sor.features import FEATURE_SCHEMA
from sor.models.registry import MODEL_NAMES, ModelRegistry, default_models_dir


def test_the_shipped_models_load_and_agree_with_onnxruntime_on_their_own_rows():
    registry = ModelRegistry(default_models_dir())
    assert set(registry.names()) >= set(MODEL_NAMES)
    for name in MODEL_NAMES:
        model = registry.load(name)
        card = registry.card(name)
        assert card["feature_schema"]["hash"] == FEATURE_SCHEMA.version_hash, (
            f"{name} was trained on another feature schema: run `sor train`")
        assert card["onnx_sha256"] == registry.entry(name).sha256
        assert card["data"]["test"]["rows"] > 1000
        rows = np.load(registry.root / registry.entry(name).reference_rows)
        session = ort.InferenceSession(model.onnx_bytes, providers=["CPUExecutionProvider"])
        out = session.run(None, {"features": rows})
        oracle = out[1][:, 1] if model.kind == "classifier" else out[0][:, 0]
        np.testing.assert_allclose(model.predict(rows), oracle, atol=1e-5,
                                   rtol=1e-5 if model.kind == "regressor" else 0)
    fill = registry.card("fill_probability")["metrics_test"]
    assert fill["auc"] > 0.9 and fill["brier"] < fill["brier_base_rate"]
    assert registry.feature_settings().garch is not None
