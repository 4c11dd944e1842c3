"""The C++ feature engine against the slow Python reference (sor.features.reference): on
simulator events and on random small streams, every feature of every row, exact up to float32
rounding; a mismatch names the feature, the row and both values."""

from __future__ import annotations

import numpy as np
import pytest
from feature_streams import build_stream, feature_venues, random_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sor.features import (
    FEATURE_SCHEMA,
    FeatureEngine,
    FeatureSettings,
    GarchParams,
    build_options,
    empty_contexts,
)
from sor.features.reference import ReferenceInputs, reference_rows
from sor.sim.market import Market

GARCH_10S = GarchParams(omega_bps2=0.5, alpha=0.1, beta=0.8, sample_interval_ns=10_000_000_000)


def assert_rows_match(rows: np.ndarray, reference: np.ndarray, contexts: np.ndarray) -> None:
    assert rows.dtype == np.float32 and np.all(np.isfinite(rows))
    expected = reference.astype(np.float32)
    close = np.isclose(rows, expected, rtol=2e-6, atol=1e-6)
    if close.all():
        return
    problems = []
    for row, column in zip(*np.nonzero(~close)):
        problems.append(f"{FEATURE_SCHEMA.names[column]} row {row}: engine {rows[row, column]!r} "
                        f"reference {expected[row, column]!r} context {contexts[row]}")
    pytest.fail(f"{len(problems)} mismatches:\n" + "\n".join(problems[:12]))


def tell_both(engine: FeatureEngine, rng: np.random.Generator, venues: list[int],
              instruments: int) -> ReferenceInputs:
    """Feeds the same child outcomes, latencies, ADVs and implied vols to both sides."""
    inputs = ReferenceInputs()
    for _ in range(40):
        venue = int(rng.choice(venues))
        side, order_type = int(rng.integers(1, 3)), int(rng.integers(0, 3))
        quantity = int(rng.choice([100, 300, 1_000, 5_000, 20_000]))
        filled = int(rng.integers(0, quantity + 1))
        engine.on_child_done(venue, side, order_type, quantity, filled)
        inputs.child_done.append((venue, side, order_type, quantity, filled))
        latency = int(rng.integers(20_000, 900_000))
        engine.on_latency_sample(venue, latency)
        inputs.latency_samples.append((venue, latency))
    engine.set_adv(0, 3_000_000.0)
    inputs.adv_shares[0] = 3_000_000.0
    engine.set_implied_volatility(instruments - 1, 0.27)
    inputs.implied_annual[instruments - 1] = 0.27
    return inputs


def merged_events(market: Market) -> np.ndarray:
    events = np.concatenate([market.events(v) for v in market.scenario.venue_ids().values()])
    return events[np.argsort(events["ts_recv"], kind="stable")]


def test_engine_matches_reference_on_six_simulated_minutes():
    market = Market("default", seed=11, record_events=True)
    market.run_for(6 * 60)  # past the 5-minute realized-vol window
    events = merged_events(market)
    engine = FeatureEngine.from_scenario(market, FeatureSettings(garch=GARCH_10S))
    rng = np.random.default_rng(3)
    inputs = tell_both(engine, rng, list(engine.venue_ids), 1)
    contexts = random_contexts(rng, events, 48, venues=engine.venue_ids, instruments=1)
    contexts["arrival_mid_ticks"] = np.where(contexts["arrival_mid_ticks"] > 0, 1_000_000.0, 0.0)
    contexts["child_price_ticks"] = np.where(contexts["child_price_ticks"] > 0,
                                             1_000_000 + 100 * rng.integers(-4, 5, 48), 0)
    first, last = int(events["ts_recv"][0]), int(events["ts_recv"][-1])
    contexts["now_ns"] = rng.integers(first, last, 48)
    contexts["now_ns"][-1] = last + 65_000_000_000  # the flow windows emptied by time alone
    contexts["end_ns"] = contexts["now_ns"] + rng.integers(-10**9, 10**12, 48)
    rows = engine.replay(events, contexts)
    assert engine.rejected == 0
    assert_rows_match(rows, reference_rows(engine.options, events, contexts, inputs), contexts)
    # the run exercises what it should: trades on every venue, vol and GARCH under way
    assert np.count_nonzero(rows[:, FEATURE_SCHEMA.index("vol.realized_5m_bps")]) > 30
    assert np.count_nonzero(rows[:, FEATURE_SCHEMA.index("venue.flow_imbalance_10s")]) > 30
    assert rows[-1, FEATURE_SCHEMA.index("flow.volume_60s_shares")] == 0


actions = st.lists(st.tuples(*[st.integers(0, 40)] * 8), min_size=0, max_size=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=actions, seed=st.integers(0, 2**32 - 1),
       flow_bucket_ns=st.sampled_from([10_000_000, 100_000_000, 250_000_000, 1_000_000_000]),
       vol_sample_interval_ns=st.sampled_from([100_000_000, 1_000_000_000, 5_000_000_000]),
       garch_every=st.sampled_from([1, 3, 10]))
def test_engine_matches_reference_on_random_streams(actions, seed, flow_bucket_ns,
                                                    vol_sample_interval_ns, garch_every):
    events = build_stream(actions)
    garch = GarchParams(omega_bps2=1.5, alpha=0.2, beta=0.7,
                        sample_interval_ns=garch_every * vol_sample_interval_ns,
                        initial_variance_bps2=0.0 if seed % 2 else 9.0)
    options = build_options(feature_venues(), price_tick_usd=0.01, max_instruments=2,
                            settings=FeatureSettings(flow_bucket_ns=flow_bucket_ns,
                                                     vol_sample_interval_ns=vol_sample_interval_ns,
                                                     fill_rate_prior_weight_orders=seed % 3,
                                                     garch=garch))
    with FeatureEngine(options) as engine:
        rng = np.random.default_rng(seed)
        inputs = tell_both(engine, rng, [0, 1, 2, 3], 2)
        contexts = random_contexts(rng, events, 12)
        rows = engine.replay(events, contexts)
        assert_rows_match(rows, reference_rows(options, events, contexts, inputs), contexts)


def test_duplicate_events_change_nothing():
    events = build_stream([(3, v % 3, k % 8, k, k, k, k, 0) for k, v in enumerate(range(60))])
    options = build_options(feature_venues(), price_tick_usd=0.01, max_instruments=2)
    contexts = empty_contexts(1)
    contexts[0] = random_contexts(np.random.default_rng(1), events, 1, instruments=1)[0]
    contexts["now_ns"] = events["ts_recv"][-1]
    with FeatureEngine(options) as engine:
        engine.apply(events)
        before = engine.rows(contexts)
        assert engine.apply(events) == events.size  # the books skip them as already seen...
        assert np.array_equal(engine.rows(contexts), before)  # ...and so does the engine
