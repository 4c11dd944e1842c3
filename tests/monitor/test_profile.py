"""FeatureProfile: decile bins with open ends, PSI against a plain reference, save/load, the
schema-hash check, the registry entry, and the shipped profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sor.errors import FeatureProfileError, ModelError
from sor.features import FEATURE_SCHEMA
from sor.models.registry import ModelRegistry, default_models_dir
from sor.monitor.profile import (DEFAULT_DRIFT_FEATURES, PSI_EPSILON, FeatureProfile, psi)

NAMES = ("nbbo.spread_bps", "nbbo.two_sided", "child.order_type", "vol.garch_bps")


def training_rows(count: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.lognormal(0.0, 0.3, count),                    # continuous
        (rng.random(count) < 0.95).astype(float),          # a flag, mostly 1
        rng.choice([0, 1, 2], count, p=[0.4, 0.35, 0.25]),  # a category
        rng.gamma(2.0, 2.0, count)])


def test_bins_are_deduplicated_deciles_with_open_ends() -> None:
    x = training_rows()
    profile = FeatureProfile.from_rows(x, NAMES, default_features=("nbbo.spread_bps",))
    spread = profile.features["nbbo.spread_bps"]
    assert len(spread.edges) == 9
    assert np.allclose(spread.edges, np.quantile(x[:, 0], np.arange(1, 10) / 10,
                                                 method="inverted_cdf"))
    assert np.allclose(spread.fractions, 0.1, atol=0.002)
    # values beyond the training range land in the open end bins
    assert spread.bin_indices(np.array([-1e9, 1e9])).tolist() == [0, 9]
    flag = profile.features["nbbo.two_sided"]
    assert flag.edges.tolist() == [1.0]           # every decile is 1: one edge, two bins
    assert flag.fractions.tolist() == pytest.approx([np.mean(x[:, 1] < 1), np.mean(x[:, 1] >= 1)])
    category = profile.features["child.order_type"]
    assert category.edges.tolist() == [0.0, 1.0, 2.0]
    assert category.fractions.tolist() == pytest.approx(
        [0.0] + [float(np.mean(x[:, 2] == v)) for v in (0, 1, 2)])
    assert profile.names == ("child.order_type", "nbbo.two_sided", "nbbo.spread_bps",
                             "vol.garch_bps")  # schema order


def psi_reference(expected: list[float], actual: list[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, PSI_EPSILON), max(a, PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return total


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=12), st.integers(0, 10**6))
def test_psi_equals_the_textbook_formula(weights, seed) -> None:
    expected = np.asarray(weights) + 0.01
    expected /= expected.sum()
    actual = np.random.default_rng(seed).dirichlet(np.ones(len(expected)))
    assert psi(expected, actual) == pytest.approx(psi_reference(expected.tolist(),
                                                                actual.tolist()))
    assert psi(expected, expected) == 0.0


def test_psi_of_live_rows_grows_with_the_shift() -> None:
    x = training_rows()
    profile = FeatureProfile.from_rows(x, NAMES)
    rows = np.zeros((3000, FEATURE_SCHEMA.size), np.float32)
    same = training_rows(3000, seed=1)
    for k, name in enumerate(NAMES):
        rows[:, FEATURE_SCHEMA.index(name)] = same[:, k]
    unshifted = profile.psi(rows)
    assert max(unshifted.values()) < 0.02
    column = FEATURE_SCHEMA.index("nbbo.spread_bps")
    values = []
    for factor in (1.1, 1.5, 3.0):
        scaled = rows.copy()
        scaled[:, column] *= factor
        values.append(profile.psi(scaled, ["nbbo.spread_bps"])["nbbo.spread_bps"])
    assert values == sorted(values) and values[-1] > 2
    with pytest.raises(FeatureProfileError, match="N x 52"):
        profile.psi(rows[:, :10])
    assert math.isnan(profile.features["nbbo.spread_bps"].psi(np.zeros(0)))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    profile = FeatureProfile.from_rows(training_rows(), NAMES,
                                       default_features=("vol.garch_bps",),
                                       source={"seeds": [1, 2]})
    path = profile.save(tmp_path / "p.json")
    loaded = FeatureProfile.load(path)
    assert loaded.names == profile.names
    assert loaded.default_features == ("vol.garch_bps",)
    assert loaded.rows == 5000 and loaded.source == {"seeds": [1, 2]}
    for name in NAMES:
        assert loaded.features[name].edges.tolist() == profile.features[name].edges.tolist()
        assert loaded.features[name].fractions == pytest.approx(profile.features[name].fractions)
    assert loaded.to_bytes() == profile.to_bytes()  # deterministic bytes
    assert path.read_bytes() == profile.to_bytes()


def test_another_schema_or_a_bad_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    profile = FeatureProfile.from_rows(training_rows(), NAMES)
    data = profile.to_json()
    data["feature_schema"]["hash"] = "0123456789abcdef"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FeatureProfileError) as raised:
        FeatureProfile.load(path)
    assert f"built on feature schema 0123456789abcdef, the serving feature schema is " \
           f"{FEATURE_SCHEMA.version_hash}" in str(raised.value)
    assert str(path) in str(raised.value)
    path.write_text("{not json")
    with pytest.raises(FeatureProfileError, match="not JSON"):
        FeatureProfile.load(path)
    with pytest.raises(FeatureProfileError, match="cannot read"):
        FeatureProfile.load(tmp_path / "missing.json")
    data = profile.to_json()
    data["features"]["nbbo.spread_bps"]["fractions"] = [0.5, 0.5]
    path.write_text(json.dumps(data))
    with pytest.raises(FeatureProfileError, match="nbbo.spread_bps"):
        FeatureProfile.load(path)
    data = profile.to_json()
    data["format"] = "something else"
    path.write_text(json.dumps(data))
    with pytest.raises(FeatureProfileError, match="not a feature profile"):
        FeatureProfile.load(path)


def test_bad_training_rows_are_refused() -> None:
    with pytest.raises(FeatureProfileError, match="N x 4"):
        FeatureProfile.from_rows(np.zeros((100, 3)), NAMES)
    with pytest.raises(FeatureProfileError, match="not features"):
        FeatureProfile.from_rows(np.zeros((100, 1)), ["no.such"])
    bad = training_rows()
    bad[5, 3] = np.nan
    with pytest.raises(FeatureProfileError, match="vol.garch_bps"):
        FeatureProfile.from_rows(bad, NAMES)
    with pytest.raises(FeatureProfileError, match="not in the profile"):
        FeatureProfile.from_rows(training_rows(), NAMES, default_features=("book.near_depth_1",))


def test_the_registry_publishes_a_profile_once_per_content(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.feature_profile() is None
    profile = FeatureProfile.from_rows(training_rows(), NAMES)
    first = registry.publish_feature_profile(profile)
    assert first.name == "feature_profile-v1.json"
    assert registry.publish_feature_profile(profile) == first   # same bytes: same version
    other = FeatureProfile.from_rows(training_rows(seed=3), NAMES)
    second = registry.publish_feature_profile(other)
    assert second.name == "feature_profile-v2.json" and first.exists()
    assert registry.feature_profile().to_bytes() == other.to_bytes()
    second.write_bytes(second.read_bytes().replace(b'"rows": 5000', b'"rows": 5001'))
    with pytest.raises(ModelError, match="SHA-256"):
        registry.feature_profile()


def test_the_shipped_profile_describes_the_shipped_models_training_rows() -> None:
    registry = ModelRegistry(default_models_dir())
    profile = registry.feature_profile()
    assert profile is not None
    assert profile.schema_hash == FEATURE_SCHEMA.version_hash
    assert profile.names == FEATURE_SCHEMA.names
    card = registry.card("fill_probability")
    assert profile.rows == card["data"]["train"]["rows"]
    assert profile.source["seeds"] == card["data"]["train"]["seeds"]
    assert profile.source["scenarios"] == card["data"]["train"]["scenarios"]
    assert profile.default_features == DEFAULT_DRIFT_FEATURES
    assert FeatureProfile.load().to_bytes() == profile.to_bytes()
