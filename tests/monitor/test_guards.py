"""ModelGuardMonitor: each guard trips once on data that should trip it, never on data that
should not, matches a slow reference child by child, and re-arms on operator re-enable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from monitor_records import decisions, fills_for, guard_settings
from sor.config import GuardrailSettings
from sor.errors import ConfigError, FeatureProfileError, UsageError
from sor.features import FEATURE_SCHEMA
from sor.monitor.guards import MEASURED_DEFAULTS, ModelGuardMonitor, ModelGuardReason
from sor.monitor.profile import FeatureProfile

MONITORED = ("nbbo.spread_bps", "flow.imbalance_10s", "vol.realized_5m_bps")


class Trips:
    """A trip callback that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[ModelGuardReason, str]] = []

    def __call__(self, reason: ModelGuardReason, detail: str) -> None:
        self.calls.append((reason, detail))

    @property
    def reasons(self) -> list[ModelGuardReason]:
        return [reason for reason, _ in self.calls]


def only(**changes):
    """GuardrailSettings with the guards off but those `changes` turn on."""
    return guard_settings(**{"fill_rate_enabled": False, "concentration_enabled": False,
                             "drift_enabled": False, **changes})


@pytest.fixture(scope="module")
def profile() -> FeatureProfile:
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(20_000, FEATURE_SCHEMA.size))
    return FeatureProfile.from_rows(rows, FEATURE_SCHEMA.names, default_features=MONITORED)


# --- fill rate ----------------------------------------------------------------------------


def test_fill_rate_collapse_trips_once_and_rearms() -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(fill_rate_enabled=True, fill_rate_min_children=40,
                                     fill_rate_window_children=100, fill_rate_floor_ratio=0.5),
                                None, trips)
    d = decisions(39, fill_probability=0.8, quantity=200)
    monitor.observe_decisions(d)
    monitor.observe_audit(fills_for(d, 0.25))   # realised 0.25 vs predicted 0.8
    assert trips.calls == []                    # 39 children: below the minimum
    more = decisions(1, start_sequence=40, fill_probability=0.8, quantity=200)
    monitor.observe_decisions(more)
    monitor.observe_audit(fills_for(more, 0.25, start_sequence=1000))
    assert trips.reasons == [ModelGuardReason.FILL_RATE_COLLAPSE]
    reason, detail = trips.calls[0]
    assert "realised fill 0.250 vs predicted 0.800 (ratio 0.312 < floor 0.500)" in detail
    assert "40 model-routed children" in detail
    status = monitor.status()["fill_rate"]
    assert status["tripped"]["reason"] == "FILL_RATE_COLLAPSE" and status["children"] == 40
    later = decisions(60, start_sequence=41, fill_probability=0.8, quantity=200)
    monitor.observe_decisions(later)
    monitor.observe_audit(fills_for(later, 0.0, start_sequence=2000))
    assert len(trips.calls) == 1                # tripped once, until re-armed
    monitor.rearm()
    assert not monitor.tripped and monitor.status()["fill_rate"]["children"] == 0
    fresh = decisions(40, start_sequence=101, fill_probability=0.8, quantity=200)
    monitor.observe_decisions(fresh)
    monitor.observe_audit(fills_for(fresh, 0.25, start_sequence=3000))
    assert trips.reasons == [ModelGuardReason.FILL_RATE_COLLAPSE] * 2


def test_fill_rate_in_line_with_the_prediction_does_not_trip() -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(fill_rate_enabled=True, fill_rate_min_children=50,
                                     fill_rate_window_children=200), None, trips)
    rng = np.random.default_rng(5)
    for batch in range(10):
        p = rng.uniform(0.2, 0.9, 100)
        d = decisions(100, start_sequence=1 + 100 * batch, fill_probability=p, quantity=100)
        monitor.observe_decisions(d)
        monitor.observe_audit(fills_for(d, (rng.random(100) < p).astype(float),
                                        start_sequence=1 + 1000 * batch))
    assert trips.calls == []
    status = monitor.status()["fill_rate"]
    assert status["children"] == 200 and 0.75 < status["ratio"] < 1.25


def test_children_without_a_fill_model_or_not_sent_are_not_judged() -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(fill_rate_enabled=True, fill_rate_min_children=10),
                                None, trips)
    fallback = decisions(50, model_mask=0, fill_probability=0.9)       # fallback policy
    no_fill_model = decisions(50, start_sequence=51, model_mask=0b1000)  # rl: action value only
    monitor.observe_decisions(np.concatenate([fallback, no_fill_model]))
    monitor.observe_audit(fills_for(np.concatenate([fallback, no_fill_model]), 0.0))
    unsent = decisions(50, start_sequence=101, sent=False, fill_probability=0.9)
    monitor.observe_decisions(unsent)
    assert trips.calls == [] and monitor.status()["fill_rate"]["children"] == 0


def fill_rate_reference(children: list[tuple[float, float]], window: int, minimum: int,
                        floor: float) -> int | None:
    """Returns the index of the child whose end first trips the guard (None: never)."""
    for i in range(len(children)):
        recent = children[max(0, i + 1 - window):i + 1]
        predicted = sum(p for p, _ in recent) / len(recent)
        realised = sum(r for _, r in recent) / len(recent)
        if len(recent) >= minimum and predicted > 0 and realised / predicted < floor:
            return i
    return None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 1.0), st.sampled_from([0.0, 0.5, 1.0])),
                min_size=1, max_size=80),
       st.integers(1, 30), st.integers(1, 30), st.floats(0.1, 1.0))
def test_fill_rate_matches_a_slow_reference(children, window, minimum, floor) -> None:
    assume(minimum <= window)  # the configuration refuses a minimum above the window
    trips = Trips()
    monitor = ModelGuardMonitor(only(fill_rate_enabled=True, fill_rate_window_children=window,
                                     fill_rate_min_children=minimum,
                                     fill_rate_floor_ratio=floor), None, trips)
    tripped_at = None
    for i, (p, realised) in enumerate(children):
        d = decisions(1, start_sequence=i + 1, fill_probability=p, quantity=100)
        monitor.observe_decisions(d)
        monitor.observe_audit(fills_for(d, realised, start_sequence=10 * i + 1))
        if trips.calls and tripped_at is None:
            tripped_at = i
    # float32 predictions: compare with the probabilities the records hold
    held = [(float(np.float32(p)), r) for p, r in children]
    assert tripped_at == fill_rate_reference(held, window, max(1, minimum), floor)
    assert len(trips.calls) <= 1


# --- concentration ------------------------------------------------------------------------


def test_venue_concentration_trips_and_names_the_venue() -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(concentration_enabled=True, concentration_min_children=30,
                                     concentration_window_children=60,
                                     concentration_max_share=0.7), None, trips)
    spread = decisions(60, venue_ids=np.arange(60) % 4, quantity=100)
    monitor.observe_decisions(spread)
    assert trips.calls == [] and monitor.status()["concentration"]["share"] == pytest.approx(0.25)
    # the window slides: after k children on venue 2 it holds them and spread children k..59,
    # of which those with index = 2 mod 4 are on venue 2 too
    piled = decisions(40, start_sequence=61, venue_ids=2, quantity=100)
    monitor.observe_decisions(piled[:36])
    assert trips.calls == []                    # (36 + 6) / 60 = 70%, not above
    monitor.observe_decisions(piled[36:37])     # (37 + 6) / 60 = 71.7% at the 37th
    assert trips.reasons == [ModelGuardReason.VENUE_CONCENTRATION]
    assert "71.7% of the shares of the last 60 model-routed children went to venue 2 " \
           "(max 70.0%)" in trips.calls[0][1]


def concentration_reference(children: list[tuple[int, int]], window: int, minimum: int,
                            maximum: float) -> int | None:
    for i in range(len(children)):
        recent = children[max(0, i + 1 - window):i + 1]
        total = sum(q for _, q in recent)
        shares: dict[int, int] = {}
        for venue, q in recent:
            shares[venue] = shares.get(venue, 0) + q
        if len(recent) >= minimum and max(shares.values()) / total > maximum:
            return i
    return None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([100, 200, 500, 1000])),
                min_size=1, max_size=80),
       st.integers(1, 30), st.integers(1, 30), st.floats(0.2, 0.99))
def test_concentration_matches_a_slow_reference(children, window, minimum, maximum) -> None:
    assume(minimum <= window)
    trips = Trips()
    monitor = ModelGuardMonitor(only(concentration_enabled=True,
                                     concentration_window_children=window,
                                     concentration_min_children=minimum,
                                     concentration_max_share=maximum), None, trips)
    tripped_at = None
    for i, (venue, quantity) in enumerate(children):
        monitor.observe_decisions(decisions(1, start_sequence=i + 1, venue_ids=venue,
                                            quantity=quantity))
        if trips.calls and tripped_at is None:
            tripped_at = i
    assert tripped_at == concentration_reference(children, window, max(1, minimum), maximum)


# --- drift --------------------------------------------------------------------------------


def rows(count: int, seed: int, *, scale: dict[str, float] | None = None,
         shift: dict[str, float] | None = None) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(count, FEATURE_SCHEMA.size))
    for name, factor in (scale or {}).items():
        x[:, FEATURE_SCHEMA.index(name)] *= factor
    for name, amount in (shift or {}).items():
        x[:, FEATURE_SCHEMA.index(name)] += amount
    return x.astype(np.float32)


def feed_rows(monitor: ModelGuardMonitor, x: np.ndarray, batch: int = 37) -> None:
    for start in range(0, len(x), batch):
        part = x[start:start + batch]
        monitor.observe_decisions(decisions(len(part), start_sequence=start + 1, features=part))


def test_rows_like_the_training_rows_do_not_trip(profile: FeatureProfile) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=500,
                                     drift_psi_threshold=0.1), profile, trips)
    feed_rows(monitor, rows(5000, seed=1))
    assert trips.calls == []
    status = monitor.status()["drift"]
    assert status["rows"] == 500 and status["features"] == list(MONITORED)
    assert 0 < status["max_psi"] < 0.1


def test_a_scaled_feature_trips_naming_it_and_its_psi(profile: FeatureProfile) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=500,
                                     drift_psi_threshold=0.25), profile, trips)
    shifted = rows(499, seed=2, scale={"flow.imbalance_10s": 3.0})
    feed_rows(monitor, shifted)
    assert trips.calls == []                  # the window is not full yet
    feed_rows(monitor, rows(1, seed=3, scale={"flow.imbalance_10s": 3.0}))
    assert trips.reasons == [ModelGuardReason.FEATURE_DRIFT]
    detail = trips.calls[0][1]
    window = np.concatenate([shifted, rows(1, seed=3, scale={"flow.imbalance_10s": 3.0})])
    expected = profile.psi(window, ["flow.imbalance_10s"])["flow.imbalance_10s"]
    assert expected > 0.25
    assert f"flow.imbalance_10s {expected:.3f}" in detail
    assert "nbbo.spread_bps" not in detail      # not drifted, not named
    assert monitor.status()["drift"]["tripped"]["reason"] == "FEATURE_DRIFT"


def test_a_shift_in_a_feature_not_watched_does_not_trip(profile: FeatureProfile) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=300,
                                     drift_psi_threshold=0.25), profile, trips)
    feed_rows(monitor, rows(1000, seed=4, shift={"book.near_depth_1": 5.0}))
    assert trips.calls == []
    watched = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=300,
                                     drift_psi_threshold=0.25,
                                     drift_features=("book.near_depth_1",)), profile, trips)
    feed_rows(watched, rows(1000, seed=4, shift={"book.near_depth_1": 5.0}))
    assert trips.reasons == [ModelGuardReason.FEATURE_DRIFT]


@settings(max_examples=25, deadline=None)
@given(st.integers(10, 200), st.integers(1, 60), st.integers(0, 400), st.floats(0.2, 4.0))
def test_the_sliding_window_psi_equals_the_psi_of_the_last_rows(window, batch, count, scale):
    rng_rows = rows(count, seed=count, scale={"vol.realized_5m_bps": scale})
    profile = FeatureProfile.from_rows(rows(2000, seed=9), FEATURE_SCHEMA.names,
                                       default_features=("vol.realized_5m_bps",))
    monitor = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=window,
                                     drift_psi_threshold=1e9), profile, Trips())
    feed_rows(monitor, rng_rows, batch=batch)
    status = monitor.status()["drift"]
    assert status["rows"] == min(window, count)
    if count:
        last = rng_rows[-window:]
        assert status["psi"]["vol.realized_5m_bps"] == pytest.approx(
            profile.psi(last, ["vol.realized_5m_bps"])["vol.realized_5m_bps"])


def test_rows_refused_or_not_model_routed_are_ignored(profile: FeatureProfile) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(drift_enabled=True, drift_window_decisions=100,
                                     drift_psi_threshold=0.25), profile, trips)
    bad = rows(300, seed=5, scale={"nbbo.spread_bps": 10.0})
    monitor.observe_decisions(decisions(100, features=bad[:100], model_mask=0))
    refused = decisions(100, start_sequence=101, features=bad[100:200])
    refused["flags"] |= 1
    non_finite = decisions(100, start_sequence=201, features=bad[200:])
    non_finite["flags"] |= 2
    monitor.observe_decisions(np.concatenate([refused, non_finite]))
    assert trips.calls == [] and monitor.status()["drift"]["rows"] == 0


# --- the monitor as a whole -----------------------------------------------------------


def test_a_failing_trip_callback_leaves_the_guard_armed() -> None:
    calls = []

    def trip(reason, detail):
        calls.append(reason)
        if len(calls) == 1:
            raise RuntimeError("engine not reachable")

    monitor = ModelGuardMonitor(only(concentration_enabled=True, concentration_min_children=5),
                                None, trip)  # max share 0.8: 5 of 5 on one venue trips
    with pytest.raises(RuntimeError):
        monitor.observe_decisions(decisions(5, venue_ids=1))
    assert not monitor.tripped
    monitor.observe_decisions(decisions(1, start_sequence=6, venue_ids=1))
    assert calls == [ModelGuardReason.VENUE_CONCENTRATION] * 2 and monitor.tripped


def test_settings_are_checked_and_update_live(profile: FeatureProfile) -> None:
    with pytest.raises(UsageError, match="no feature profile"):
        ModelGuardMonitor(only(drift_enabled=True), None, Trips())
    partial = FeatureProfile.from_rows(rows(100, seed=8)[:, :20], FEATURE_SCHEMA.names[:20],
                                       default_features=())
    with pytest.raises(UsageError, match="no feature is monitored"):
        ModelGuardMonitor(only(drift_enabled=True), partial, Trips())
    with pytest.raises(FeatureProfileError, match="not in the profile"):
        ModelGuardMonitor(only(drift_enabled=True, drift_features=("vol.garch_bps",)), partial,
                          Trips())
    with pytest.raises(ConfigError, match="concentration_max_share"):
        only(concentration_max_share=1.5)  # the configuration refuses it first
    with pytest.raises(UsageError, match="lack"):
        ModelGuardMonitor(object(), None, Trips())
    trips = Trips()
    monitor = ModelGuardMonitor(only(concentration_enabled=True, concentration_min_children=10,
                                     concentration_max_share=0.9), None, trips)
    monitor.observe_decisions(decisions(20, venue_ids=np.arange(20) % 5 // 4))  # 80% venue 0
    assert trips.calls == []
    monitor.update_settings(only(concentration_enabled=True, concentration_min_children=10,
                                 concentration_max_share=0.75))
    assert trips.reasons == [ModelGuardReason.VENUE_CONCENTRATION]


def test_the_configuration_defaults_are_the_measured_ones() -> None:
    defaults = GuardrailSettings()
    assert {k: getattr(defaults, k) for k in MEASURED_DEFAULTS} == MEASURED_DEFAULTS


@pytest.mark.slow
def test_a_real_session_trips_no_guard(routed) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(fill_rate_enabled=True, fill_rate_min_children=20,
                                     concentration_enabled=True,
                                     concentration_min_children=20), None, trips)
    d, a = routed.decisions, routed.audit
    for start in range(0, max(len(d), len(a)), 64):
        monitor.observe_decisions(d[start:start + 64])
        monitor.observe_audit(a[start:start + 64])
    status = monitor.status()
    assert trips.calls == [], status
    assert status["fill_rate"]["children"] >= 20
    assert status["concentration"]["children"] >= 20


def test_the_drift_guard_can_be_switched_on_live(profile: FeatureProfile) -> None:
    trips = Trips()
    monitor = ModelGuardMonitor(only(), profile, trips)
    feed_rows(monitor, rows(300, seed=6, scale={"vol.realized_5m_bps": 4.0}))
    assert monitor.status()["drift"]["rows"] == 0
    monitor.update_settings(only(drift_enabled=True, drift_window_decisions=200,
                                 drift_psi_threshold=0.25))
    feed_rows(monitor, rows(200, seed=7, scale={"vol.realized_5m_bps": 4.0}))
    assert trips.reasons == [ModelGuardReason.FEATURE_DRIFT]


@pytest.mark.slow
def test_the_shipped_defaults_on_a_real_default_session() -> None:
    """The measurement of docs/monitoring.md in small: 35 simulated minutes of the shipped
    models routing on the default scenario do not trip the guards with their defaults; the
    same decisions with one watched feature scaled x3 trip the drift guard, naming it."""
    import os

    from sor.monitor.simulate import route_session

    shipped = FeatureProfile.load()
    session = route_session("default", seed=11, minutes=35.0, start_offset_s=120.0,
                            name=f"sormondrift{os.getpid()}")
    d, a = session.decisions, session.audit
    assert int(np.count_nonzero(d["model_mask"])) >= 1000

    def replay(decision_records: np.ndarray) -> tuple[Trips, dict]:
        trips = Trips()
        monitor = ModelGuardMonitor(guard_settings(), shipped, trips)
        for start in range(0, max(len(decision_records), len(a)), 64):
            monitor.observe_decisions(decision_records[start:start + 64])
            monitor.observe_audit(a[start:start + 64])
        return trips, monitor.status()

    trips, status = replay(d)
    assert trips.calls == [], status
    assert status["drift"]["rows"] == 1000 and status["drift"]["max_psi"] < 1.0
    assert status["fill_rate"]["children"] >= 100
    scaled = d.copy()
    scaled["features"][:, FEATURE_SCHEMA.index("venue.near_touch_shares")] *= 3
    trips, _ = replay(scaled)
    assert trips.reasons == [ModelGuardReason.FEATURE_DRIFT]
    assert "venue.near_touch_shares" in trips.calls[0][1]


def test_executions_read_before_their_decisions_still_count() -> None:
    trips = Trips()
    settings_ = only(fill_rate_enabled=True, fill_rate_min_children=40,
                     fill_rate_window_children=100)
    early = ModelGuardMonitor(settings_, None, trips)
    d = decisions(40, fill_probability=0.8, quantity=200)
    early.observe_audit(fills_for(d, 0.25))   # the audit ring was drained first
    assert trips.calls == []
    early.observe_decisions(d)
    assert trips.reasons == [ModelGuardReason.FILL_RATE_COLLAPSE]
    in_order = ModelGuardMonitor(settings_, None, Trips())
    in_order.observe_decisions(d)
    in_order.observe_audit(fills_for(d, 0.25))
    assert early.status()["fill_rate"]["ratio"] == in_order.status()["fill_rate"]["ratio"]
