"""Loads tree-ensemble models from ONNX, validates them and checks the C++ evaluator against
onnxruntime on every load.

A model is one ``TreeEnsembleClassifier`` (binary, LOGISTIC) or ``TreeEnsembleRegressor`` (one
target) node of domain ``ai.onnx.ml`` over a float input ``[N, F]``, optionally followed by
ZipMap/Identity/Cast nodes on its outputs. It carries the hash of the feature schema it was
trained on in its ``metadata_props`` (key ``sor.feature_schema_hash``). See docs/models.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sor import _core
from sor.errors import (
    FeatureValueError,
    InvalidModelError,
    ModelFileError,
    ModelInputError,
    ModelParityError,
    NotATreeModelError,
    SchemaMismatchError,
    UnsupportedModelError,
    UsageError,
)

SCHEMA_HASH_KEY = "sor.feature_schema_hash"
MODEL_NAME_KEY = "sor.model_name"
PARITY_TOLERANCE = 1e-5
"""Largest accepted |sor - onnxruntime| (scaled by max(1, |value|) for large regressions)."""

_TREE_OPS = {"TreeEnsembleClassifier": "classifier", "TreeEnsembleRegressor": "regressor"}
_HARMLESS_OPS = {"ZipMap", "Identity", "Cast"}
_MODES = {"LEAF": _core.TreeNodeMode.LEAF, "BRANCH_LT": _core.TreeNodeMode.BRANCH_LT,
          "BRANCH_LEQ": _core.TreeNodeMode.BRANCH_LEQ, "BRANCH_GT": _core.TreeNodeMode.BRANCH_GT,
          "BRANCH_GTE": _core.TreeNodeMode.BRANCH_GTE}
_SIMD = {"auto": _core.SimdPath.AVX512, "avx512": _core.SimdPath.AVX512,
         "avx2": _core.SimdPath.AVX2, "scalar": _core.SimdPath.SCALAR}


@dataclass(frozen=True)
class ParityCheck:
    """What the load-time comparison with onnxruntime measured."""

    max_abs_difference: float  # Largest |sor - onnxruntime| over the reference rows.
    rows: int                  # Reference rows compared.
    tolerance: float           # The bound it had to stay under (before value scaling).
    simd_path: str             # Evaluator path that was checked.


class TreeModel:
    """A validated tree-ensemble model: its C++ evaluator and where it came from.

    ``predict`` refuses NaN/inf features; ``evaluator`` is the immutable ``_core.TreeEnsemble``
    the engine holds (safe to share across threads).
    """

    def __init__(self, *, name: str, kind: str, schema_hash: str | None,
                 metadata: dict[str, str], evaluator: Any, onnx_bytes: bytes,
                 feature_names: tuple[str, ...] | None, parity: ParityCheck) -> None:
        self.name = name
        self.kind = kind
        self.schema_hash = schema_hash
        self.metadata = dict(metadata)
        self.evaluator = evaluator
        self.onnx_bytes = onnx_bytes
        self.sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        self.feature_names = feature_names
        self.parity = parity

    @property
    def tree_count(self) -> int:
        """Trees in the ensemble."""
        return int(self.evaluator.tree_count)

    @property
    def depth(self) -> int:
        """Depth of the deepest tree (every tree is padded to it)."""
        return int(self.evaluator.depth)

    @property
    def feature_count(self) -> int:
        """Values in a feature row."""
        return int(self.evaluator.feature_count)

    @property
    def simd_path(self) -> str:
        """The evaluator's instruction-set path: 'avx512', 'avx2' or 'scalar'."""
        return str(self.evaluator.simd_path)

    def predict(self, rows: Any) -> np.ndarray:
        """Returns float32 predictions of rows ``[n, F]`` (or one row ``[F]``: shape ``[1]``):
        the probability of class 1 for a classifier, the value for a regressor. Raises
        FeatureValueError naming the first NaN/inf feature."""
        checked = _finite_rows(rows, self.feature_count, self.feature_names)
        return self.evaluator.predict(checked)

    def __repr__(self) -> str:
        return (f"TreeModel(name={self.name!r}, kind={self.kind!r}, trees={self.tree_count}, "
                f"depth={self.depth}, features={self.feature_count}, "
                f"schema_hash={self.schema_hash!r}, simd_path={self.simd_path!r})")


def _finite_rows(rows: Any, feature_count: int, names: Sequence[str] | None) -> np.ndarray:
    array = np.ascontiguousarray(rows, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != feature_count:
        raise UsageError(f"rows must have shape [n, {feature_count}], got {list(np.shape(rows))}")
    finite = np.isfinite(array)
    if not finite.all():
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise FeatureValueError(row, column, float(array[row, column]),
                                names[column] if names is not None else None)
    return array


def _read(source: str | PathLike[str] | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as error:
        raise ModelFileError(f"cannot read: {error.strerror or error}", source=str(path)) from None


def _parse(data: bytes, origin: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as error:
        raise ModelFileError(f"not an ONNX model (corrupt or truncated protobuf: {error})",
                             source=origin) from None
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ModelFileError("not an ONNX model (no IR version or no graph)", source=origin)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid"
        raise InvalidModelError(f"{origin}: onnx.checker refused the model: {first}",
                                reason="onnx_checker") from None
    return model


def _tree_node(model: Any, origin: str) -> Any:
    nodes = list(model.graph.node)
    found = tuple(f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in nodes)
    trees = [n for n in nodes if n.op_type in _TREE_OPS and n.domain == "ai.onnx.ml"]
    others = [n for n in nodes if n not in trees]
    if len(trees) != 1 or any(n.op_type not in _HARMLESS_OPS for n in others):
        raise NotATreeModelError(
            f"{origin}: expected one ai.onnx.ml TreeEnsembleClassifier or TreeEnsembleRegressor "
            f"node (optionally followed by ZipMap/Identity/Cast), found: "
            f"{', '.join(found) or 'no node'}", op_types=found)
    tree = trees[0]
    graph_inputs = [i.name for i in model.graph.input
                    if i.name not in {init.name for init in model.graph.initializer}]
    if list(tree.input) != graph_inputs or len(graph_inputs) != 1:
        raise NotATreeModelError(
            f"{origin}: the tree node must read the graph's only input directly (it reads "
            f"{list(tree.input)}, the graph inputs are {graph_inputs})", op_types=found)
    return tree


def _feature_count(model: Any, origin: str, feature_names: Sequence[str] | None) -> int:
    import onnx

    graph_input = next(i for i in model.graph.input
                       if i.name not in {init.name for init in model.graph.initializer})
    tensor = graph_input.type.tensor_type
    dims = list(tensor.shape.dim) if tensor.HasField("shape") else []
    if (not graph_input.type.HasField("tensor_type")
            or tensor.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2
            or not dims[1].HasField("dim_value")):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        elem = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else "?"
        raise ModelInputError(f"{origin}: input {graph_input.name!r} must be float [N, F] with a "
                              f"fixed F, it is {elem} {shape}")
    count = int(dims[1].dim_value)
    if feature_names is not None and count != len(feature_names):
        raise ModelInputError(f"{origin}: model takes {count} features, the schema has "
                              f"{len(feature_names)}")
    return count


def _attributes(node: Any) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    out: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.TENSOR:
            out[attribute.name] = numpy_helper.to_array(attribute.t)
        else:
            out[attribute.name] = onnx.helper.get_attribute_value(attribute)
    return out


def _float_thresholds(values: np.ndarray, modes: list[str]) -> np.ndarray:
    """Returns float32 thresholds deciding every float32 input as the given (possibly double)
    thresholds do: x < t and x >= t need the smallest float >= t; x <= t and x > t the
    largest float <= t."""
    if values.dtype == np.float32:
        return values
    as_double = values.astype(np.float64)
    single = as_double.astype(np.float32)
    up = np.where(single.astype(np.float64) < as_double, np.nextafter(single, np.float32(np.inf)),
                  single)
    down = np.where(single.astype(np.float64) > as_double,
                    np.nextafter(single, np.float32(-np.inf)), single)
    use_down = np.array([m in ("BRANCH_LEQ", "BRANCH_GT") for m in modes], dtype=bool)
    return np.where(use_down, down, up).astype(np.float32)


def _spec(node: Any, kind: str, origin: str) -> dict[str, Any]:
    a = _attributes(node)

    def ints(name: str) -> np.ndarray:
        return np.asarray(a.get(name, []), dtype=np.int64)

    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in a.get("nodes_modes", [])]
    treeids, nodeids = ints("nodes_treeids"), ints("nodes_nodeids")
    for index, mode in enumerate(modes):
        if mode not in _MODES:
            where = (f"tree {treeids[index]} node {nodeids[index]}"
                     if index < min(len(treeids), len(nodeids)) else f"node {index}")
            raise UnsupportedModelError(f"{origin}: {where} has mode {mode}, which the evaluator "
                                        f"does not run (LEAF, BRANCH_LT/LEQ/GT/GTE only)",
                                        reason="unsupported_mode",
                                        tree_id=int(treeids[index]) if index < len(treeids) else None,
                                        node_id=int(nodeids[index]) if index < len(nodeids) else None)
    tracks = ints("nodes_missing_value_tracks_true")
    for index in np.flatnonzero(tracks)[:1]:
        if index < len(modes) and modes[index] != "LEAF":
            raise UnsupportedModelError(
                f"{origin}: tree {treeids[index]} node {nodeids[index]} sends missing values "
                f"(NaN) to its true branch; sor features are always finite and the evaluator "
                f"does not track missing values", reason="missing_value_tracking",
                tree_id=int(treeids[index]), node_id=int(nodeids[index]))
    if "nodes_values_as_tensor" in a:
        values = _float_thresholds(np.asarray(a["nodes_values_as_tensor"]).ravel(), modes)
    else:
        values = np.asarray(a.get("nodes_values", []), dtype=np.float32)
    base = a.get("base_values_as_tensor", a.get("base_values", []))
    base = np.asarray(base, dtype=np.float64).ravel()
    post = a.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    prefix = "class" if kind == "classifier" else "target"
    if kind == "classifier":
        labels = list(a.get("classlabels_int64s", [])) or list(a.get("classlabels_strings", []))
        if len(labels) != 2:
            raise UnsupportedModelError(f"{origin}: classifier has {len(labels)} classes; only "
                                        f"binary classifiers are supported",
                                        reason="not_binary")
        if post != "LOGISTIC":
            raise UnsupportedModelError(f"{origin}: binary classifier with post_transform {post}; "
                                        f"only LOGISTIC is supported", reason="post_transform")
    else:
        if int(a.get("n_targets", 1)) != 1:
            raise UnsupportedModelError(f"{origin}: regressor has n_targets={a.get('n_targets')};"
                                        f" only one target is supported", reason="n_targets")
        aggregate = a.get("aggregate_function", b"SUM")
        aggregate = aggregate.decode() if isinstance(aggregate, bytes) else str(aggregate)
        if aggregate != "SUM":
            raise UnsupportedModelError(f"{origin}: aggregate_function {aggregate}; only SUM is "
                                        f"supported", reason="aggregate_function")
        if post not in ("NONE", "LOGISTIC"):
            raise UnsupportedModelError(f"{origin}: post_transform {post}; only NONE and "
                                        f"LOGISTIC are supported", reason="post_transform")
    ids = ints(f"{prefix}_ids")
    if ids.size and np.any(ids != 0):
        raise UnsupportedModelError(f"{origin}: leaf weights for {prefix} ids "
                                    f"{sorted(set(ids.tolist()))}; only {prefix} 0 is supported "
                                    f"(a binary classifier or a single target)",
                                    reason="not_binary" if kind == "classifier" else "n_targets")
    if base.size > 1:
        raise UnsupportedModelError(f"{origin}: {base.size} base values; one is supported",
                                    reason="base_values")
    weights_name = f"{prefix}_weights_as_tensor"
    weights = a[weights_name] if weights_name in a else a.get(f"{prefix}_weights", [])
    return {
        "nodes_treeids": treeids, "nodes_nodeids": nodeids,
        "nodes_featureids": ints("nodes_featureids"),
        "nodes_modes": np.asarray([int(_MODES[m]) for m in modes], dtype=np.uint8),
        "nodes_values": values,
        "nodes_truenodeids": ints("nodes_truenodeids"),
        "nodes_falsenodeids": ints("nodes_falsenodeids"),
        "leaf_treeids": ints(f"{prefix}_treeids"), "leaf_nodeids": ints(f"{prefix}_nodeids"),
        "leaf_weights": np.asarray(weights, dtype=np.float32).ravel(),
        "base_value": float(base[0]) if base.size else 0.0,
        "post_transform": _core.PostTransform.LOGISTIC if post == "LOGISTIC"
        else _core.PostTransform.NONE,
        "kind": _core.TreeEnsembleKind.BINARY_CLASSIFIER if kind == "classifier"
        else _core.TreeEnsembleKind.REGRESSOR,
    }


def threshold_reference_rows(spec: dict[str, Any], feature_count: int, *, threshold_rows: int = 192,
                   random_rows: int = 64, seed: int = 0) -> np.ndarray:
    """Returns deterministic rows that straddle the model's thresholds: each feature takes one
    of its thresholds (chosen at random) exactly, or the next float above or below it, in turn;
    then random rows spanning each feature's threshold range."""
    rng = np.random.default_rng(seed)
    branch = spec["nodes_modes"] != int(_core.TreeNodeMode.LEAF)
    features, values = spec["nodes_featureids"][branch], spec["nodes_values"][branch]
    by_feature = [np.unique(values[features == f]) for f in range(feature_count)]
    rows = np.empty((threshold_rows + random_rows, feature_count), dtype=np.float32)
    for f, thresholds in enumerate(by_feature):
        if thresholds.size == 0:
            rows[:, f] = rng.standard_normal(rows.shape[0])
            continue
        chosen = thresholds[rng.integers(0, thresholds.size, threshold_rows)]
        variant = np.arange(threshold_rows) % 3
        rows[:threshold_rows, f] = np.where(
            variant == 0, chosen,
            np.where(variant == 1, np.nextafter(chosen, np.float32(np.inf)),
                     np.nextafter(chosen, np.float32(-np.inf))))
        low, high = float(thresholds[0]), float(thresholds[-1])
        margin = max(high - low, 1.0) * 0.1
        rows[threshold_rows:, f] = rng.uniform(low - margin, high + margin, random_rows)
    return rows


def _oracle(model: Any, tree: Any, kind: str) -> Any:
    """Returns an onnxruntime session over the tree node alone (its own outputs)."""
    import onnx
    import onnxruntime

    graph = model.graph
    if kind == "classifier":
        outputs = [onnx.helper.make_tensor_value_info(tree.output[0], onnx.TensorProto.INT64, None),
                   onnx.helper.make_tensor_value_info(tree.output[1], onnx.TensorProto.FLOAT, None)]
    else:
        outputs = [onnx.helper.make_tensor_value_info(tree.output[0], onnx.TensorProto.FLOAT, None)]
    stripped = onnx.helper.make_model(
        onnx.helper.make_graph([tree], graph.name or "trees", list(graph.input), outputs),
        opset_imports=list(model.opset_import))
    stripped.ir_version = model.ir_version
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(stripped.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own unexported exception types
        raise InvalidModelError(f"onnxruntime cannot load the model: {error}",
                                reason="onnxruntime") from None


def _check_parity(evaluator: Any, session: Any, kind: str, rows: np.ndarray,
                  tolerance: float) -> float:
    ours = evaluator.predict(rows).astype(np.float64)
    outputs = session.run(None, {session.get_inputs()[0].name: rows})
    theirs = np.asarray(outputs[1] if kind == "classifier" else outputs[0], dtype=np.float64)
    theirs = theirs[:, 1] if kind == "classifier" else theirs[:, 0]
    difference = np.abs(ours - theirs)
    allowed = tolerance * np.maximum(1.0, np.abs(theirs))
    worst = int(np.argmax(difference - allowed))
    if not difference[worst] <= allowed[worst]:
        raise ModelParityError(worst, rows[worst].copy(), ours[worst], theirs[worst],
                               float(allowed[worst]))
    return float(difference.max()) if difference.size else 0.0


def load_tree_model(source: str | PathLike[str] | bytes, *, expected_schema_hash: str | None,
                    feature_names: Sequence[str] | None = None,
                    reference_rows: np.ndarray | None = None, simd: str = "auto",
                    tolerance: float = PARITY_TOLERANCE) -> TreeModel:
    """Loads, validates and parity-checks an ONNX tree-ensemble model.

    ``source`` is a path or the file's bytes. ``expected_schema_hash`` is the serving feature
    schema's hash (``None`` skips the check). ``feature_names`` (optional) fixes the feature
    count and names features in errors. ``reference_rows`` are added to the generated
    reference rows of the parity check. ``simd`` caps the evaluator's path ('auto', 'avx512',
    'avx2', 'scalar'). Raises a ModelError subclass naming what is wrong.
    """
    if simd not in _SIMD:
        raise UsageError(f"simd must be one of {sorted(_SIMD)}, got {simd!r}")
    data, origin = _read(source)
    model = _parse(data, origin)
    tree = _tree_node(model, origin)
    kind = _TREE_OPS[tree.op_type]
    feature_count = _feature_count(model, origin, feature_names)
    metadata = {p.key: p.value for p in model.metadata_props}
    schema_hash = metadata.get(SCHEMA_HASH_KEY)
    if expected_schema_hash is not None and schema_hash != expected_schema_hash:
        raise SchemaMismatchError(expected_schema_hash, schema_hash)
    spec = _spec(tree, kind, origin)
    try:
        evaluator = _core.TreeEnsemble(**spec, feature_count=feature_count,
                                       widest_simd_path=_SIMD[simd])
    except InvalidModelError as error:
        raise type(error)(f"{origin}: {error}", reason=error.reason, tree_id=error.tree_id,
                          node_id=error.node_id) from None
    names = tuple(feature_names) if feature_names is not None else None
    rows = threshold_reference_rows(spec, feature_count)
    if reference_rows is not None:
        rows = np.concatenate([rows, _finite_rows(reference_rows, feature_count, names)])
    worst = _check_parity(evaluator, _oracle(model, tree, kind), kind, rows, tolerance)
    if MODEL_NAME_KEY in metadata:
        name = metadata[MODEL_NAME_KEY]
    elif origin != "<bytes>":
        name = Path(origin).stem
    else:
        name = model.graph.name or kind
    return TreeModel(name=name, kind=kind, schema_hash=schema_hash, metadata=metadata,
                     evaluator=evaluator, onnx_bytes=data, feature_names=names,
                     parity=ParityCheck(worst, int(rows.shape[0]), tolerance,
                                        str(evaluator.simd_path)))
