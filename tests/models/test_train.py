"""`sor train` end to end on a small budget: probe days to Parquet, three models, ONNX, model
cards, a registry that validates on load, and the same bytes when run again."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from sor.cli import main
from sor.errors import ModelError, UsageError
from sor.features import FEATURE_SCHEMA
from sor.models.dataset import (
    LABEL_COLUMNS,
    META_COLUMNS,
    DatasetSpec,
    ProbeSpec,
    build_dataset,
    read_dataset,
)
from sor.models.registry import MODEL_NAMES, ModelRegistry
from sor.models.train import BoostingSpec, TrainSpec, parse_seeds, train_models

pytestmark = pytest.mark.slow

SMALL = TrainSpec(
    dataset=DatasetSpec(scenarios=("toxic_venue",), train_seeds=(11,), validation_seeds=(12,),
                        test_seeds=(13,), probe=ProbeSpec(session_hours=0.3, warmup_s=60.0)),
    boosting=BoostingSpec(max_rounds=25, early_stopping_rounds=5))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    cards = train_models(SMALL, root / "data", root / "models", workers=1)
    return root, cards


def test_dataset_rows_hold_the_schema_and_the_labels(trained):
    root, _ = trained
    data = read_dataset(sorted((root / "data").rglob("*.parquet")))
    for column in (*FEATURE_SCHEMA.names, *META_COLUMNS, *LABEL_COLUMNS):
        assert column in data, column
    n = len(data["filled"])
    assert n > 500
    assert set(np.unique(data["seed"])) == {11, 12, 13}
    assert set(np.unique(data["order_type"])) == {0, 1, 2}
    fraction = data["fill_fraction"]
    assert np.all((fraction >= 0) & (fraction <= 1))
    assert np.array_equal(data["filled"], data["filled_quantity"] >= data["child_quantity"])
    takes = data["order_type"] == 0
    assert np.all(np.isnan(data["impact_bps"][~takes]))
    assert np.all(np.isfinite(data["adverse_move_bps"]))
    # the feature columns are the rows the feature engine computed (never NaN)
    rows = np.column_stack([data[name] for name in FEATURE_SCHEMA.names])
    assert np.all(np.isfinite(rows))
    # an IOC take of the far touch at the venue's best fills more often than a post-only
    assert data["filled"][takes].mean() > data["filled"][data["order_type"] == 1].mean()


def test_cards_carry_metrics_schema_seeds_and_code_revision(trained):
    root, cards = trained
    assert [c["name"] for c in cards] == list(MODEL_NAMES)
    for card in cards:
        assert card["feature_schema"]["hash"] == FEATURE_SCHEMA.version_hash
        assert card["data"]["train"]["seeds"] == [11]
        assert card["data"]["test"]["seeds"] == [13]
        assert card["code"]["git_commit"] is None or len(card["code"]["git_commit"]) == 40
        assert card["parity"]["onnxruntime_max_abs_diff"] <= 1e-5
        assert card["parity"]["xgboost_max_abs_diff"] <= 1e-5
        assert card["feature_settings"]["garch"]["alpha"] >= 0
        assert (root / "models" / card["file"]).exists()
        markdown = (root / "models" / card["file"].replace(".onnx", ".card.md")).read_text()
        assert card["onnx_sha256"] in markdown
    fill = cards[0]["metrics_test"]
    assert 0.5 < fill["auc"] <= 1.0
    assert fill["brier"] < fill["brier_base_rate"]
    assert sum(c["count"] for c in fill["calibration"]) == fill["rows"]
    impact = cards[2]["metrics_test"]
    assert "square_root_law" in impact["baselines"]
    assert (root / "models" / "fill_probability-v1.png").read_bytes()[:4] == b"\x89PNG"


def test_the_registry_validates_every_load(trained, tmp_path):
    root, cards = trained
    registry = ModelRegistry(root / "models")
    models = registry.load_all()
    assert sorted(models) == sorted(MODEL_NAMES)
    rows = np.load(root / "models" / registry.entry("fill_probability").reference_rows)
    p = models["fill_probability"].predict(rows)
    assert np.all((p >= 0) & (p <= 1))
    assert registry.feature_settings().garch is not None
    copy = tmp_path / "models"
    shutil.copytree(root / "models", copy)
    path = copy / registry.entry("adverse_move").file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        ModelRegistry(copy).load("adverse_move")
    with pytest.raises(UsageError, match="no model 'nope'"):
        registry.entry("nope")


def test_training_again_reproduces_the_same_bytes(trained, tmp_path):
    root, cards = trained
    again = train_models(SMALL, root / "data", tmp_path / "models", workers=1)
    for first, second in zip(cards, again):
        assert first["onnx_sha256"] == second["onnx_sha256"], first["name"]


def test_publishing_a_new_model_keeps_the_old_version_for_rollback(trained, tmp_path):
    root, _ = trained
    shutil.copytree(root / "models", tmp_path / "models")
    registry = ModelRegistry(tmp_path / "models")
    old = registry.entry("market_impact")
    card = registry.card("market_impact")
    other = registry.path("adverse_move").read_bytes()
    rows = np.load(tmp_path / "models" / old.reference_rows)
    new = registry.publish("market_impact", other, card, lambda c: "# card\n", rows)
    assert new.version == old.version + 1
    assert (tmp_path / "models" / old.file).exists()
    same = registry.publish("market_impact", other, card, lambda c: "# card\n", rows)
    assert same.version == new.version


def test_seed_lists_and_the_command_line(trained, tmp_path, capsys):
    assert parse_seeds("101-103,105") == (101, 102, 103, 105)
    with pytest.raises(UsageError, match="bad seed list"):
        parse_seeds("9-3")
    root, _ = trained
    assert main(["models", "list", "--registry", str(root / "models"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(c["name"] for c in listed) == sorted(MODEL_NAMES)
    assert main(["models", "check", "--registry", str(root / "models")]) == 0
    assert "agrees with onnxruntime" in capsys.readouterr().out


def test_days_on_disk_are_reused_only_when_they_match(trained, tmp_path):
    root, _ = trained
    spec = SMALL.dataset
    built = build_dataset(spec, root / "data", workers=1)
    stamp = {p: hashlib.sha256(p.read_bytes()).hexdigest() for s in built.paths.values()
             for p in s}
    again = build_dataset(spec, root / "data", workers=1)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for s in again.paths.values()
            for p in s} == stamp
    with pytest.raises(UsageError, match="more than one split"):
        DatasetSpec(train_seeds=(1,), validation_seeds=(1,)).days()
