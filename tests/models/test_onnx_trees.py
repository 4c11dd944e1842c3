"""sor.models.onnx_trees: parity of the C++ evaluator with onnxruntime, and every refusal."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from sor import _core
from sor.errors import (
    FeatureValueError,
    InvalidModelError,
    ModelError,
    ModelFileError,
    ModelInputError,
    ModelParityError,
    NotATreeModelError,
    SchemaMismatchError,
    UnsupportedModelError,
)
from sor.models import SCHEMA_HASH_KEY, load_tree_model, threshold_reference_rows, xgboost_to_onnx
from sor.models.onnx_trees import _spec

HASH = "0123456789abcdef"
FEATURES = 12
NAMES = tuple(f"feature_{i}" for i in range(FEATURES))
PATHS = ["scalar"] + {"avx512": ["avx2", "avx512"], "avx2": ["avx2"], "scalar": []}[
    _core.best_supported_simd_path()]


def _data(rows: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    # Round some features to a grid, so rows hit thresholds exactly.
    x[:, :4] = np.round(x[:, :4] * 4) / 4
    signal = x[:, 0] + x[:, 1] * x[:, 2] - np.abs(x[:, 3]) + 0.3 * rng.normal(size=rows)
    return x, (signal > 0).astype(np.int32), (signal * 25.0).astype(np.float32)


def _classifier(depth: int, trees: int) -> bytes:
    x, label, _ = _data()
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=0.3,
                              n_jobs=1).fit(x, label)
    return xgboost_to_onnx(model, feature_count=FEATURES, schema_hash=HASH,
                           metadata={"sor.model_name": f"fill_d{depth}_t{trees}"})


def _regressor(depth: int, trees: int) -> bytes:
    x, _, value = _data()
    model = xgb.XGBRegressor(n_estimators=trees, max_depth=depth, n_jobs=1).fit(x, value)
    return xgboost_to_onnx(model, feature_count=FEATURES, schema_hash=HASH, metadata={})


@pytest.fixture(scope="module")
def classifier_bytes() -> bytes:
    return _classifier(4, 24)


@pytest.fixture(scope="module")
def regressor_bytes() -> bytes:
    return _regressor(5, 20)


def _ort(data: bytes, rows: np.ndarray, kind: str) -> np.ndarray:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"features": rows})
    return outputs[1][:, 1] if kind == "classifier" else outputs[0][:, 0]


def _edit_tree_node(data: bytes, **attributes: object) -> bytes:
    model = onnx.load_from_string(data)
    node = model.graph.node[0]
    for name, value in attributes.items():
        for index, attribute in enumerate(node.attribute):
            if attribute.name == name:
                del node.attribute[index]
                break
        node.attribute.append(helper.make_attribute(name, value))
    return model.SerializeToString()


def _attribute(data: bytes, name: str) -> list:
    node = onnx.load_from_string(data).graph.node[0]
    return list(next(helper.get_attribute_value(a) for a in node.attribute if a.name == name))


# --- parity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth,trees", [(1, 3), (2, 17), (3, 40), (5, 33), (6, 64), (8, 12)])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_parity_with_onnxruntime_across_depths_tree_counts_and_paths(kind: str, depth: int,
                                                                     trees: int) -> None:
    data = _classifier(depth, trees) if kind == "classifier" else _regressor(depth, trees)
    x, _, _ = _data(400, seed=1)
    results = {}
    for path in PATHS:
        model = load_tree_model(data, expected_schema_hash=HASH, feature_names=NAMES,
                                reference_rows=x, simd=path)
        assert model.simd_path == path and model.kind == kind and model.tree_count == trees
        assert model.depth <= depth and model.parity.rows == 256 + len(x)
        assert model.parity.max_abs_difference <= 1e-5 * (1 if kind == "classifier" else 100)
        results[path] = model.predict(x)
    expected = _ort(data, x, kind)
    scale = np.maximum(1.0, np.abs(expected))
    for path, predicted in results.items():
        assert np.all(np.abs(predicted - expected) <= 1e-5 * scale), path
        assert np.array_equal(predicted, results["scalar"]), path  # one summation order


def test_rows_exactly_at_thresholds_match_onnxruntime(classifier_bytes: bytes) -> None:
    model = load_tree_model(classifier_bytes, expected_schema_hash=HASH)
    node = onnx.load_from_string(classifier_bytes).graph.node[0]
    spec = _spec(node, "classifier", "test")
    rows = threshold_reference_rows(spec, FEATURES, threshold_rows=300, random_rows=0, seed=5)
    branch = spec["nodes_modes"] != int(_core.TreeNodeMode.LEAF)
    thresholds = set(spec["nodes_values"][branch].tolist())
    assert sum(v in thresholds for v in rows[::3].ravel().tolist()) > 0.9 * rows[::3].size
    assert np.all(np.abs(model.predict(rows) - _ort(classifier_bytes, rows, "classifier")) <= 1e-5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.floats(-4, 4, width=32) | st.sampled_from([-0.25, 0.0, 0.25, 0.5]),
                         min_size=FEATURES, max_size=FEATURES), min_size=1, max_size=20))
def test_property_random_rows_match_onnxruntime(regressor_bytes: bytes, rows: list) -> None:
    model = _cached_regressor(regressor_bytes)
    array = np.asarray(rows, dtype=np.float32)
    expected = _ort(regressor_bytes, array, "regressor")
    assert np.all(np.abs(model.predict(array) - expected) <= 1e-5 * np.maximum(1, np.abs(expected)))


_CACHE: dict[bytes, object] = {}


def _cached_regressor(data: bytes):
    if data not in _CACHE:
        _CACHE[data] = load_tree_model(data, expected_schema_hash=HASH)
    return _CACHE[data]


def test_model_properties(classifier_bytes: bytes, tmp_path) -> None:
    path = tmp_path / "fill.onnx"
    path.write_bytes(classifier_bytes)
    model = load_tree_model(path, expected_schema_hash=HASH, feature_names=NAMES)
    assert model.name == "fill_d4_t24" and model.schema_hash == HASH
    assert model.metadata[SCHEMA_HASH_KEY] == HASH and model.onnx_bytes == classifier_bytes
    assert len(model.sha256) == 64 and model.feature_count == FEATURES
    assert isinstance(model.evaluator, _core.TreeEnsemble)
    one = model.predict(np.zeros(FEATURES, dtype=np.float32))
    assert one.shape == (1,) and 0 < one[0] < 1
    assert "fill_d4_t24" in repr(model)


def test_opset3_tensor_attributes(regressor_bytes: bytes) -> None:
    model = onnx.load_from_string(regressor_bytes)
    node = model.graph.node[0]
    for name in ("nodes_values", "base_values"):
        values = np.asarray(_attribute(regressor_bytes, name), dtype=np.float32)
        index = next(i for i, a in enumerate(node.attribute) if a.name == name)
        del node.attribute[index]
        node.attribute.append(helper.make_attribute(
            f"{name}_as_tensor", numpy_helper.from_array(values, f"{name}_as_tensor")))
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = 3
    loaded = load_tree_model(model.SerializeToString(), expected_schema_hash=HASH)
    assert loaded.tree_count == 20 and loaded.parity.max_abs_difference <= 1e-5 * 100


def test_double_thresholds_become_floats_that_decide_alike() -> None:
    from sor.models.onnx_trees import _float_thresholds

    rng = np.random.default_rng(3)
    doubles = rng.normal(size=200) + np.where(rng.random(200) < 0.5, 1e-12, 0.0)
    doubles[:4] = [0.5, 0.1, -0.1, 1.0]  # exactly representable and not
    modes = ["BRANCH_LT", "BRANCH_LEQ", "BRANCH_GT", "BRANCH_GTE"] * 50
    floats = _float_thresholds(doubles, modes)
    ops = {"BRANCH_LT": np.less, "BRANCH_LEQ": np.less_equal, "BRANCH_GT": np.greater,
           "BRANCH_GTE": np.greater_equal}
    for t_double, t_float, mode in zip(doubles, floats, modes):
        probes = np.float32(t_float) + np.array([-1e-6, 0, 1e-6], dtype=np.float32)
        probes = np.concatenate([probes, np.nextafter(probes, np.float32(np.inf)),
                                 np.nextafter(probes, np.float32(-np.inf))]).astype(np.float32)
        assert np.array_equal(ops[mode](probes.astype(np.float64), t_double),
                              ops[mode](probes, t_float)), (mode, t_double)


# --- refusals ----------------------------------------------------------------------------------

def test_corrupt_truncated_and_missing_files_are_model_file_errors(classifier_bytes: bytes,
                                                                   tmp_path) -> None:
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_tree_model(b"\xff" * 64, expected_schema_hash=HASH)
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_tree_model(classifier_bytes[: len(classifier_bytes) // 2], expected_schema_hash=HASH)
    with pytest.raises(ModelFileError, match="no IR version or no graph"):
        load_tree_model(b"", expected_schema_hash=HASH)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelFileError, match="missing.onnx"):
        load_tree_model(missing, expected_schema_hash=HASH)


def test_checker_failure_is_invalid_model_error(classifier_bytes: bytes) -> None:
    model = onnx.load_from_string(classifier_bytes)
    keep = [o for o in model.opset_import if o.domain != "ai.onnx.ml"]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    with pytest.raises(InvalidModelError, match="onnx.checker") as caught:
        load_tree_model(model.SerializeToString(), expected_schema_hash=HASH)
    assert caught.value.reason == "onnx_checker"


def test_non_tree_graph_names_the_operators() -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "weights"], ["product"]),
         helper.make_node("Add", ["product", "bias"], ["score"])],
        "linear",
        [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(np.ones((3, 1), dtype=np.float32), "weights"),
         numpy_helper.from_array(np.zeros(1, dtype=np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    helper.set_model_props(model, {SCHEMA_HASH_KEY: HASH})
    with pytest.raises(NotATreeModelError, match="ai.onnx:MatMul, ai.onnx:Add") as caught:
        load_tree_model(model.SerializeToString(), expected_schema_hash=HASH)
    assert caught.value.op_types == ("ai.onnx:MatMul", "ai.onnx:Add")


def test_schema_hash_mismatch_and_missing(classifier_bytes: bytes) -> None:
    with pytest.raises(SchemaMismatchError, match="fedcba9876543210.*0123456789abcdef|"
                                                 "0123456789abcdef.*fedcba9876543210") as caught:
        load_tree_model(classifier_bytes, expected_schema_hash="fedcba9876543210")
    assert caught.value.model_hash == HASH and caught.value.expected_hash == "fedcba9876543210"
    model = onnx.load_from_string(classifier_bytes)
    del model.metadata_props[:]
    with pytest.raises(SchemaMismatchError, match="no sor.feature_schema_hash") as missing:
        load_tree_model(model.SerializeToString(), expected_schema_hash=HASH)
    assert missing.value.model_hash is None
    assert load_tree_model(model.SerializeToString(), expected_schema_hash=None).schema_hash is None


def test_feature_count_must_match_the_schema(classifier_bytes: bytes) -> None:
    with pytest.raises(ModelInputError, match="12 features, the schema has 11"):
        load_tree_model(classifier_bytes, expected_schema_hash=HASH, feature_names=NAMES[:-1])


def test_branch_eq_is_unsupported_and_named(classifier_bytes: bytes) -> None:
    modes = _attribute(classifier_bytes, "nodes_modes")
    modes[0] = b"BRANCH_EQ"
    data = _edit_tree_node(classifier_bytes, nodes_modes=modes)
    with pytest.raises(UnsupportedModelError, match="tree 0 node 0 has mode BRANCH_EQ") as caught:
        load_tree_model(data, expected_schema_hash=HASH)
    assert (caught.value.tree_id, caught.value.node_id) == (0, 0)


def test_missing_value_tracking_on_a_branch_is_unsupported(classifier_bytes: bytes) -> None:
    tracks = _attribute(classifier_bytes, "nodes_missing_value_tracks_true")
    tracks[0] = 1
    data = _edit_tree_node(classifier_bytes, nodes_missing_value_tracks_true=tracks)
    with pytest.raises(UnsupportedModelError, match="tree 0 node 0 sends missing values"):
        load_tree_model(data, expected_schema_hash=HASH)


def test_multiclass_is_unsupported() -> None:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    x, label, _ = _data(600)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(
        x, label + (x[:, 5] > 1).astype(np.int32))
    converted = convert_xgboost(model, initial_types=[("features", FloatTensorType([None, FEATURES]))],
                                target_opset=15)
    with pytest.raises(UnsupportedModelError, match="3 classes"):
        load_tree_model(converted.SerializeToString(), expected_schema_hash=None)


def test_broken_tree_structure_is_named_by_the_core(regressor_bytes: bytes) -> None:
    true_ids = _attribute(regressor_bytes, "nodes_truenodeids")
    true_ids[0] = 999
    data = _edit_tree_node(regressor_bytes, nodes_truenodeids=true_ids)
    with pytest.raises(InvalidModelError, match="tree 0 node 0: true child 999") as caught:
        load_tree_model(data, expected_schema_hash=HASH)
    assert caught.value.reason == "invalid_node" and caught.value.tree_id == 0


def test_parity_failure_reports_the_worst_row(regressor_bytes: bytes) -> None:
    with pytest.raises(ModelParityError, match="reference row") as caught:
        load_tree_model(regressor_bytes, expected_schema_hash=HASH, tolerance=0.0)
    error = caught.value
    assert error.difference > 0 and error.sor_value != error.onnxruntime_value
    assert error.row.shape == (FEATURES,)


def test_nan_and_inf_features_are_refused_with_the_name(classifier_bytes: bytes) -> None:
    model = load_tree_model(classifier_bytes, expected_schema_hash=HASH, feature_names=NAMES)
    rows = np.zeros((3, FEATURES), dtype=np.float32)
    rows[1, 7] = np.nan
    with pytest.raises(FeatureValueError, match=r"row 1, column 7 \(feature_7\)"):
        model.predict(rows)
    rows[1, 7] = 0
    rows[2, 0] = -np.inf
    with pytest.raises(FeatureValueError, match="row 2, column 0") as caught:
        model.predict(rows)
    assert isinstance(caught.value, ModelError) and isinstance(caught.value, ValueError)
    with pytest.raises(FeatureValueError):
        load_tree_model(classifier_bytes, expected_schema_hash=HASH, reference_rows=rows)
