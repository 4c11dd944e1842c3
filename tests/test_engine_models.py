"""The engine's feature and model stages: rows computed online equal the training rows for the
same events, installed models run on every decision, swaps are atomic, and a bad model never
replaces a good one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sor import _core
from sor.config import default_config, with_changes
from sor.engine import MODEL_SLOTS, Engine, feature_options
from sor.errors import ModelError, SchemaMismatchError, UsageError
from sor.features import FEATURE_SCHEMA, FeatureEngine
from sor.models import load_tree_model, xgboost_to_onnx
from sor.sim import Market

_NS = 1_000_000_000


def _config(name: str):
    # the simulator's default market publishes every lit venue order by order
    config = with_changes(default_config(), {"venues[IEXG].book_type": "L3",
                                             "engine.name": name,
                                             "risk.max_open_orders": 10_000,
                                             "risk.max_orders_per_second": 100_000})
    return config


def _session_events(seconds: float, seed: int = 11) -> np.ndarray:
    with Market("default", seed=seed, record_events=True) as market:
        market.run_until(market.session_start_ns + int(seconds * _NS))
        parts = [market.events(int(v.venue_id)) for v in market.spec.venues]
    events = np.concatenate([p for p in parts if len(p)])
    return events[np.argsort(events["ts_recv"], kind="stable")]


def _publish(engine: Engine, events: np.ndarray) -> None:
    for start in range(0, len(events), 16_384):
        chunk = events[start:start + 16_384]
        written = 0
        while written < len(chunk):
            written += engine.publish_market_data(chunk[written:])
            if written < len(chunk):
                time.sleep(0.001)
        engine.wait_idle(30)


def _tiny_model(kind: str, seed: int, *, schema_hash: str | None = None, name: str = "m"):
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, FEATURE_SCHEMA.size)).astype(np.float32)
    if kind == "classifier":
        model = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=seed)
        model.fit(x, (x[:, 0] + x[:, 3] > 0).astype(int))
    else:
        model = xgb.XGBRegressor(n_estimators=8, max_depth=3, n_jobs=1, random_state=seed)
        model.fit(x, x[:, 1] * 2.0 + x[:, 5])
    data = xgboost_to_onnx(model, feature_count=FEATURE_SCHEMA.size,
                           schema_hash=schema_hash or FEATURE_SCHEMA.version_hash,
                           metadata={"sor.model_name": name})
    return load_tree_model(data, expected_schema_hash=None)


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return _session_events(150.0)


def _run(engine: Engine, events: np.ndarray, *, parent_at_s: float = 100.0) -> np.ndarray:
    first = int(events["ts_recv"][0])
    cut = int(np.searchsorted(events["ts_recv"], first + int(parent_at_s * _NS)))
    _publish(engine, events[:cut])
    engine.submit_parent(1, "AAPL", "buy", 20_000, venues=["XNAS", "BATS", "EDGX", "IEXG"])
    engine.wait_idle(10)
    _publish(engine, events[cut:])
    engine.wait_idle(10)
    time.sleep(0.05)
    return engine.read_decisions()


def test_features_computed_online_equal_the_training_rows(events):
    config = _config("sor-test-features-online")
    with Engine(config) as engine:
        decisions = _run(engine, events)
        counters = engine.counters()
    assert len(decisions) >= 2, "the baseline policy made no decision"
    assert counters["decisions"] == len(decisions)
    assert counters["md_rejected"] == 0
    # the training path: the same feature engine class, fed the same events in Python
    with FeatureEngine(feature_options(config)) as offline:
        for instrument in config.instruments:
            offline.set_adv(instrument.instrument_id, instrument.average_daily_volume_shares)
        done = 0
        for record in decisions:
            n = int(record["md_events"])
            offline.apply(events[done:n])
            done = n
            row = offline.rows(np.array([record["context"]]))[0]
            online = record["features"]
            mismatched = [FEATURE_SCHEMA.names[k] for k in np.flatnonzero(row != online)]
            assert not mismatched, f"decision {record['sequence']}: {mismatched}"
    assert np.all(np.isnan(decisions["model_output"]))  # no model installed
    assert np.all(decisions["model_mask"] == 0)
    sent = decisions[(decisions["flags"] & 4) != 0]
    assert len(sent) == counters["child_orders"]
    assert np.all(sent["child_order_id"] > 0)


def test_installed_models_run_on_every_decision_and_match_onnxruntime(events):
    import onnxruntime as ort

    models = {"fill_probability": _tiny_model("classifier", 1, name="fill_probability"),
              "adverse_move": _tiny_model("regressor", 2, name="adverse_move"),
              "market_impact": _tiny_model("regressor", 3, name="market_impact")}
    engine = Engine(_config("sor-test-models-run"))
    for name, model in models.items():
        engine.set_model(name, model)  # before start: installed when the engine starts
    with engine:
        decisions = _run(engine, events)
        counters = engine.counters()
    assert len(decisions) >= 2
    assert np.all(decisions["model_mask"] == 0b111)
    assert counters["model_evaluations"] == 3 * len(decisions)
    rows = np.ascontiguousarray(decisions["features"])
    for name, model in models.items():
        slot = MODEL_SLOTS[name]
        online = decisions["model_output"][:, slot]
        assert np.array_equal(online, model.predict(rows)), name
        session = ort.InferenceSession(model.onnx_bytes, providers=["CPUExecutionProvider"])
        out = session.run(None, {"features": rows})
        oracle = out[1][:, 1] if model.kind == "classifier" else out[0][:, 0]
        np.testing.assert_allclose(online, oracle, atol=1e-5, rtol=1e-5)
    assert np.all(decisions["inference_ns"] > 0)


def test_a_bad_model_never_replaces_the_running_one(events, tmp_path):
    good = _tiny_model("classifier", 4, name="fill_probability")
    with Engine(_config("sor-test-models-bad")) as engine:
        engine.set_model("fill_probability", good)
        generation = engine.counters()["model_generation"][0]
        other_schema = _tiny_model("classifier", 5, schema_hash="0123456789abcdef")
        with pytest.raises(SchemaMismatchError, match="0123456789abcdef"):
            engine.set_model("fill_probability", other_schema)
        corrupt = tmp_path / "fill_probability.onnx"
        corrupt.write_bytes(good.onnx_bytes[: len(good.onnx_bytes) // 2])
        with pytest.raises(ModelError):
            engine.set_model("fill_probability", load_tree_model(
                corrupt, expected_schema_hash=FEATURE_SCHEMA.version_hash))
        with pytest.raises(UsageError, match="takes 3 features"):
            engine._core.set_model(0, _core.TreeEnsemble(
                nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0], nodes_modes=[0],
                nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0],
                leaf_treeids=[0], leaf_nodeids=[0], leaf_weights=[1.0], base_value=0.0,
                post_transform=_core.PostTransform.NONE, kind=_core.TreeEnsembleKind.REGRESSOR,
                feature_count=3))
        assert engine.counters()["model_generation"][0] == generation
        assert engine.models["fill_probability"] is good
        decisions = _run(engine, events)
    assert len(decisions) >= 2
    assert np.all(decisions["model_mask"] == 0b001)
    assert np.array_equal(decisions["model_output"][:, 0],
                          good.predict(np.ascontiguousarray(decisions["features"])))


def test_models_swap_atomically_while_the_engine_decides(events):
    a = _tiny_model("regressor", 6, name="adverse_move")
    b = _tiny_model("regressor", 7, name="adverse_move")
    stop = threading.Event()
    swaps = 0

    def swapper(engine: Engine) -> None:
        nonlocal swaps
        while not stop.is_set():
            engine.set_model("adverse_move", b if swaps % 2 else a)
            swaps += 1
            time.sleep(0.0002)

    engine = Engine(_config("sor-test-models-swap"))
    engine.set_model("adverse_move", a)
    with engine:
        thread = threading.Thread(target=swapper, args=(engine,))
        thread.start()
        try:
            decisions = _run(engine, events, parent_at_s=20.0)
        finally:
            stop.set()
            thread.join()
        counters = engine.counters()
    assert swaps > 10
    assert counters["model_swaps"] >= swaps
    rows = np.ascontiguousarray(decisions["features"])
    out = decisions["model_output"][:, MODEL_SLOTS["adverse_move"]]
    # every output is exactly one of the two models' predictions: never a torn model
    from_a, from_b = out == a.predict(rows), out == b.predict(rows)
    assert np.all(from_a | from_b)


def test_an_engine_built_with_the_shipped_registry_runs_its_models(events):
    from sor.models.registry import ModelRegistry, default_models_dir

    registry = ModelRegistry(default_models_dir())
    with Engine(_config("sor-test-models-shipped"), models=registry) as engine:
        decisions = _run(engine, events)
        models = engine.models
    assert len(decisions) >= 2
    assert sorted(models) == ["action_value", "adverse_move", "fill_probability", "market_impact"]
    assert np.all(decisions["model_mask"] == 0b1111)
    rows = np.ascontiguousarray(decisions["features"])
    for name, model in models.items():
        assert np.array_equal(decisions["model_output"][:, MODEL_SLOTS[name]], model.predict(rows))
    p = decisions["model_output"][:, MODEL_SLOTS["fill_probability"]]
    assert np.all((p >= 0) & (p <= 1))
    # the engine computes GARCH volatility with the fit the models were trained with
    garch = FEATURE_SCHEMA.index("vol.garch_bps")
    assert np.all(rows[:, garch] > 0)
