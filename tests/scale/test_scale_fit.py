"""fit_booster on Dask (xgboost.dask) against the local fit on the same rows, and
fit_booster_parquet reading Parquet files on the workers."""

from __future__ import annotations

import numpy as np
import pytest

from sor.features import FEATURE_SCHEMA
from sor.models import metrics
from sor.models.export import xgboost_to_onnx
from sor.models.onnx_trees import load_tree_model
from sor.models.train import BoostingSpec, fit_booster, fit_booster_parquet

BOOSTING = BoostingSpec(max_rounds=60, early_stopping_rounds=10)
FEATURES = 8


def _rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns features, a binary label and a continuous label with a known signal."""
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    signal = x[:, 0] - 0.6 * x[:, 1] * x[:, 2] + 0.4 * np.sin(3 * x[:, 3])
    filled = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(np.float32)
    move = (2.0 * signal + rng.normal(scale=1.0, size=n)).astype(np.float32)
    return x, filled, move


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return {"train": _rows(3000, rng), "valid": _rows(800, rng), "test": _rows(2000, rng)}


def _onnx_parity(booster, test_x):
    # the feature schema's width: pad the synthetic rows with zeros
    wide = np.zeros((len(test_x), FEATURE_SCHEMA.size), dtype=np.float32)
    wide[:, :FEATURES] = test_x
    onnx = xgboost_to_onnx(booster, feature_count=FEATURE_SCHEMA.size,
                           schema_hash=FEATURE_SCHEMA.version_hash, metadata={})
    loaded = load_tree_model(onnx, expected_schema_hash=FEATURE_SCHEMA.version_hash,
                             feature_names=FEATURE_SCHEMA.names, reference_rows=wide[:256])
    return float(np.max(np.abs(loaded.predict(wide) - booster.inplace_predict(wide))))


def _wide(x):
    wide = np.zeros((len(x), FEATURE_SCHEMA.size), dtype=np.float32)
    wide[:, :FEATURES] = x
    return wide


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_dask_fit_learns_like_the_local_fit(dask_cluster, data, kind):
    label = 1 if kind == "classifier" else 2
    train, valid, test = (data[s] for s in ("train", "valid", "test"))
    args = (kind, _wide(train[0]), train[label], _wide(valid[0]), valid[label], BOOSTING)
    local, local_rounds = fit_booster(*args)
    rounds_seen = []
    remote, remote_rounds = fit_booster(*args, client=dask_cluster,
                                        on_round=lambda done, total: rounds_seen.append(total))
    assert rounds_seen == [BOOSTING.max_rounds]
    assert 1 <= remote_rounds <= BOOSTING.max_rounds
    assert remote.num_boosted_rounds() == remote_rounds  # trimmed to the best round
    test_x = _wide(test[0])
    ours = {name: np.asarray(b.inplace_predict(test_x), dtype=np.float64)
            for name, b in (("local", local), ("dask", remote))}
    if kind == "classifier":
        auc = {k: metrics.classifier_metrics(test[1].astype(bool), p, 0.5)["auc"]
               for k, p in ours.items()}
        assert auc["local"] > 0.75 and auc["dask"] > 0.75
        assert abs(auc["local"] - auc["dask"]) < 0.02
    else:
        rmse = {k: float(np.sqrt(np.mean((p - test[2]) ** 2))) for k, p in ours.items()}
        baseline = float(np.std(test[2]))
        assert rmse["local"] < 0.8 * baseline and rmse["dask"] < 0.8 * baseline
        assert abs(rmse["local"] - rmse["dask"]) < 0.05 * rmse["local"]
    # the Dask booster exports and loads like a local one
    assert _onnx_parity(remote, test[0]) < 1e-4
    # reproducible for the same cluster and partitioning
    again, again_rounds = fit_booster(*args, client=dask_cluster)
    assert again_rounds == remote_rounds
    assert np.array_equal(again.inplace_predict(test_x), remote.inplace_predict(test_x))


def test_local_fit_is_bit_reproducible(data):
    train, valid = data["train"], data["valid"]
    first = fit_booster("classifier", train[0], train[1], valid[0], valid[1], BOOSTING)
    second = fit_booster("classifier", train[0], train[1], valid[0], valid[1], BOOSTING)
    assert first[1] == second[1]
    assert first[0].save_raw("json") == second[0].save_raw("json")


def _write_parquet(path, rows, extra):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, filled, move = rows
    columns = {name: x[:, k] for k, name in enumerate(FEATURE_SCHEMA.names[:FEATURES])}
    columns["filled"] = filled.astype(bool)
    move = move.copy()
    move[::17] = np.nan  # unlabelled rows are dropped
    columns["adverse_move_bps"] = move
    columns["order_type"] = extra
    pq.write_table(pa.table(columns), path)


def test_fit_booster_parquet_reads_files_on_the_workers(dask_cluster, data, tmp_path):
    rng = np.random.default_rng(5)
    names = FEATURE_SCHEMA.names[:FEATURES]
    files = {}
    for split in ("train", "valid"):
        x, filled, move = data[split]
        halves = np.array_split(np.arange(len(x)), 2)
        files[split] = []
        for k, rows in enumerate(halves):
            path = tmp_path / f"{split}-{k}.parquet"
            _write_parquet(path, (x[rows], filled[rows], move[rows]),
                           rng.integers(0, 3, size=len(rows)).astype(np.int32))
            files[split].append(path)
    booster, rounds = fit_booster_parquet(dask_cluster, "regressor", files["train"],
                                          files["valid"], names, "adverse_move_bps", BOOSTING,
                                          row_filter=[("order_type", "==", 0)])
    assert 1 <= rounds <= BOOSTING.max_rounds
    assert booster.num_features() == FEATURES
    test_x, _, test_y = data["test"]
    rmse = float(np.sqrt(np.mean((booster.inplace_predict(test_x) - test_y) ** 2)))
    assert rmse < 0.85 * float(np.std(test_y))  # learnt from a third of the rows
    classifier, _ = fit_booster_parquet(dask_cluster, "classifier", files["train"],
                                        files["valid"], names, "filled", BOOSTING)
    auc = metrics.classifier_metrics(data["test"][1].astype(bool),
                                     classifier.inplace_predict(test_x).astype(np.float64),
                                     0.5)["auc"]
    assert auc > 0.75


def test_fit_booster_refuses_an_unknown_kind(data):
    from sor.errors import UsageError

    train = data["train"]
    with pytest.raises(UsageError, match="kind must be 'classifier' or 'regressor'"):
        fit_booster("ranker", train[0], train[1], train[0], train[1], BOOSTING)
