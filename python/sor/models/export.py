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


_STACKED_PREFIXES = ("nodes_", "class_", "target_")


def stack_tree_models(base: bytes, correction: bytes, *,
                      metadata: dict[str, str] | None = None) -> bytes:
    """Returns the ONNX bytes of one tree ensemble whose raw score is ``base``'s plus
    ``correction``'s trees: ``base``'s graph, base values and post transform, with
    ``correction``'s trees appended (tree ids shifted past ``base``'s). This is how a model is
    boosted further from a champion: ``correction`` was fitted with the champion's margin as
    XGBoost's ``base_margin``, so its own base value is dropped. Both must be the same kind of
    single TreeEnsemble node (as ``xgboost_to_onnx`` writes them); ``metadata`` is added to
    ``base``'s ``metadata_props``."""
    import onnx
    from onnx import helper

    models = []
    for label, data in (("base", base), ("correction", correction)):
        try:
            model = onnx.load_from_string(bytes(data))
        except Exception as exc:  # noqa: BLE001 - protobuf raises several types
            raise UsageError(f"the {label} model is not ONNX: {exc}") from None
        trees = [n for n in model.graph.node if n.op_type.startswith("TreeEnsemble")]
        if len(trees) != 1:
            raise UsageError(f"the {label} model must have one TreeEnsemble node, found "
                             f"{len(trees)}")
        models.append((model, trees[0]))
    (model, node), (_, extra) = models
    if node.op_type != extra.op_type:
        raise UsageError(f"cannot stack a {extra.op_type} on a {node.op_type}")
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    added = {a.name: helper.get_attribute_value(a) for a in extra.attribute}
    for name in ("post_transform", "n_targets", "classlabels_int64s", "aggregate_function"):
        if attributes.get(name) != added.get(name):
            raise UsageError(f"cannot stack models whose {name} differ: "
                             f"{attributes.get(name)!r} and {added.get(name)!r}")
    tree_key = "class_treeids" if "class_treeids" in attributes else "target_treeids"
    offset = max(attributes["nodes_treeids"]) + 1
    merged = {}
    for name, value in attributes.items():
        if not name.startswith(_STACKED_PREFIXES):
            merged[name] = value
            continue
        if name not in added:
            raise UsageError(f"the correction model lacks the attribute {name}")
        tail = list(added[name])
        if name in ("nodes_treeids", tree_key):
            tail = [t + offset for t in tail]
        merged[name] = list(value) + tail
    new_node = helper.make_node(node.op_type, list(node.input), list(node.output),
                                name=node.name, domain=node.domain, **merged)
    nodes = [new_node if n is node else n for n in model.graph.node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if metadata:
        props = {p.key: p.value for p in model.metadata_props}
        props.update(metadata)
        helper.set_model_props(model, props)
    return model.SerializeToString()
