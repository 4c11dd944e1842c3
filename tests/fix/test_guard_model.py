"""A model that misbehaves mid-run: the ML router works a parent over the simulated venues
when a model returning non-finite values is installed through the engine's set_model. The
model guard trips, every parent goes to the rule-based fallback, routing goes on, the trip is
an event (and journaled), and an operator's enable_model brings the model back."""

from __future__ import annotations

import time

import pytest

from gateway_support import LiveRouters, wait_until
from sor import _core
from sor.features import FEATURE_SCHEMA
from sor.fix.journal import RecordKind, read
from sor.models.onnx_trees import ParityCheck, TreeModel


@pytest.fixture
def make_live(tmp_path):
    routers = LiveRouters(tmp_path)
    yield routers.make
    routers.close()


def non_finite_model(name: str) -> TreeModel:
    """Returns a model for the engine's feature schema whose every output is +inf: two trees
    of 3e38 each overflow float32 (the evaluator refuses NaN leaves, so a misbehaving model
    shows itself this way; the guard treats NaN and infinity alike)."""
    count = len(FEATURE_SCHEMA.names)
    evaluator = _core.TreeEnsemble(
        nodes_treeids=[0, 1], nodes_nodeids=[0, 0], nodes_featureids=[0, 0],
        nodes_modes=[int(_core.TreeNodeMode.LEAF)] * 2, nodes_values=[0.0, 0.0],
        nodes_truenodeids=[0, 0], nodes_falsenodeids=[0, 0], leaf_treeids=[0, 1],
        leaf_nodeids=[0, 0], leaf_weights=[3e38, 3e38], base_value=0.0,
        post_transform=_core.PostTransform.NONE, kind=_core.TreeEnsembleKind.REGRESSOR,
        feature_count=count)
    return TreeModel(name=name, kind="regressor", schema_hash=FEATURE_SCHEMA.version_hash,
                     metadata={}, evaluator=evaluator, onnx_bytes=b"", feature_names=None,
                     parity=ParityCheck(0.0, 0, 0.0, str(evaluator.simd_path)))


@pytest.mark.slow
def test_a_non_finite_model_output_switches_to_the_fallback_and_enable_model_restores(
        make_live):
    gateway, venues, oms = make_live()
    engine = gateway.engine
    assert engine.model_status()["mode"] == "model"
    deadline = time.time_ns() + 60 * 10**9
    parent = oms.new_order("AAPL", "buy", 30_000, time_in_force="6", expire_time_ns=deadline)
    wait_until(lambda: gateway.status()["counters"]["children_sent"] > 0, 20, "children")
    good = engine.models["adverse_move"]
    engine.set_model("adverse_move", non_finite_model("adverse_move"))
    wait_until(lambda: engine.model_status()["mode"] == "fallback", 20, "the fallback")
    status = engine.model_status()
    assert status["reason"] == "NON_FINITE_OUTPUT" and status["trips"] == 1
    wait_until(lambda: any(e["kind"] == "model_guard" for e in gateway.events()), 5,
               "the guard event")
    event = [e for e in gateway.events() if e["kind"] == "model_guard"][0]
    assert event["severity"] == "error" and "NON_FINITE_OUTPUT" in event["text"]
    assert "adverse_move" in event["text"]
    state = gateway.console_state()
    assert state["model"]["mode"] == "FALLBACK"
    assert state["model"]["reason"] == "NON_FINITE_OUTPUT"
    # the child refused in the decision that tripped reached the OMS as a restated report
    oms.wait_for(lambda: any(r.exec_type == "D" and b"\x017929=MODEL_GUARD\x01" in r.raw
                             for r in oms.order(parent).reports), 5, "the MODEL_GUARD report")
    # routing goes on under the fallback policy: a new order is worked and filled
    sent = gateway.status()["counters"]["children_sent"]
    other = oms.new_order("MSFT", "buy", 300)
    oms.wait_for(lambda: oms.order(other).cum_quantity > 0, 20, "fills under the fallback")
    assert gateway.status()["counters"]["children_sent"] > sent
    # the operator puts a good model back and re-enables model routing
    engine.set_model("adverse_move", good)
    status = gateway.enable_model(operator="dave", reason="model replaced")
    assert status["mode"] == "MODEL"
    events = [e for e in gateway.events() if e["kind"] == "model_guard"]
    assert events[-1]["operator"] == "dave" and events[-1]["reason"] == "model replaced"
    records, _ = read(f"{gateway.state_dir}/journal")
    guard = [r for r in records if r.kind is RecordKind.MODEL_GUARD]
    assert guard[0].tripped == 1 and guard[-1].tripped == 0
