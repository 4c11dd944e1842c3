"""Fixtures of the retraining tests: one short simulated day, ingested into a store, shared by
the tests of this folder (simulating and ingesting is the slow part)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Returns a short simulated day of the volatile scenario (10 minutes of routing after a 2-minute
    warm-up) and a
    store with it ingested twice (the second ingest changes nothing)."""
    from sor.retrain.simulate import simulate_day
    from sor.store import DataStore

    root = tmp_path_factory.mktemp("retrain")
    day = simulate_day(root / "day", scenario="volatile", hours=0.2, start_offset_s=120.0,
                       seed=3)
    store = DataStore(root / "store")
    first = store.ingest(root / "day")
    second = store.ingest(root / "day")
    return {"root": root, "day": day, "store": store, "first": first, "second": second}


@pytest.fixture()
def shipped_copy(tmp_path: Path) -> Path:
    """Returns a copy of the shipped registry in a temporary folder."""
    from sor.models.registry import default_models_dir

    target = tmp_path / "models"
    shutil.copytree(default_models_dir(), target,
                    ignore=shutil.ignore_patterns("retrain", "*.tmp", "*.lock"))
    return target
