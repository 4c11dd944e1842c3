"""Backtest episodes: determinism, paired seeds, the parent never overfills, the sweep."""

from __future__ import annotations

import numpy as np
import pytest

from sor import _core
from sor.backtest import EpisodeSpec, run_episode
from sor.errors import BacktestConfigError, PolicyConfigError
from sor.sim.scenario import load_scenario

SHORT = dict(start_offset_s=60.0, horizon_s=30.0, markout_tail_s=10.0)


def _episode(policy="twap", params=None, scenario="calm", seed=11, **fields):
    spec = EpisodeSpec(**{**SHORT, "quantity": 20_000, **fields})
    return run_episode(policy, params or {}, scenario, seed, spec=spec, models=None,
                       feature_settings=None, adv_shares=1e8)


def test_same_seed_gives_the_same_episode():
    a = _episode(params={"slices": 5})
    b = _episode(params={"slices": 5})
    assert len(a.fills) > 0
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.children.tobytes() == b.children.tobytes()
    assert a.mids.tobytes() == b.mids.tobytes()
    assert a.counters == b.counters
    c = _episode(params={"slices": 5}, seed=12)
    assert c.mids.tobytes() != a.mids.tobytes()


def test_paired_seeds_share_the_market_until_our_orders():
    a = _episode("best_price")
    b = _episode("twap", {"slices": 5})
    assert a.side == b.side and a.quantity == b.quantity
    assert a.start_ns == b.start_ns
    assert a.arrival_mid_ticks == b.arrival_mid_ticks
    before = a.mids["ts_ns"] < a.start_ns
    assert before.sum() == 600  # 60 s of 100 ms samples before the arrival
    assert a.mids[before].tobytes() == b.mids[before].tobytes()


def test_side_alternates_by_seed_and_is_the_same_for_every_policy():
    assert EpisodeSpec().side_for(9002) == "buy"
    assert EpisodeSpec().side_for(9001) == "sell"
    assert EpisodeSpec(side="buy").side_for(9001) == "buy"
    assert _episode(seed=13).side == -1


def _committed_when_sent(children: np.ndarray) -> np.ndarray:
    """Slow reference: for each child, the parent shares committed when it was sent: children
    already done count their fills, children still open (and itself) their whole size."""
    out = []
    for n, child in enumerate(children):
        t = child["sent_ns"]
        total = 0
        for other in children[: n + 1]:
            done = other["done_ns"] != 0 and other["done_ns"] <= t and \
                other["child_id"] != child["child_id"]
            total += other["filled"] if done else other["quantity"]
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("policy,params", [("best_price", {}), ("twap", {"slices": 4}),
                                           ("best_price", {"depth_levels": 1})])
def test_the_parent_never_overfills(policy, params):
    e = _episode(policy, params, scenario="volatile", quantity=30_000)
    assert e.filled == int(e.fills["quantity"].sum()) == e.quantity
    assert int(e.children["filled"].sum()) == e.filled
    assert (_committed_when_sent(e.children) <= e.quantity).all()
    by_child = {}
    for f in e.fills:
        by_child[int(f["child_id"])] = by_child.get(int(f["child_id"]), 0) + int(f["quantity"])
    for child in e.children:
        assert by_child.get(int(child["child_id"]), 0) == child["filled"] <= child["quantity"]


def test_the_sweep_finishes_the_parent():
    # Two slices of the touch only cannot take 300,000 shares: the sweep takes the rest.
    e = _episode("twap", {"slices": 2, "depth_levels": 1}, quantity=300_000)
    assert e.filled == e.quantity
    swept = e.fills["swept"]
    assert swept.any() and (~swept).any()
    assert e.children["swept"].any()
    assert (e.fills[swept]["ts_ns"] >= e.end_ns).all()
    assert e.counters["sweep_rounds"] >= 1
    kept = _episode("twap", {"slices": 2, "depth_levels": 1}, quantity=300_000,
                    finish_at_horizon=False)
    assert kept.filled < kept.quantity
    assert not kept.fills["swept"].any()
    assert kept.fills.tolist() == e.fills[~swept].tolist()


def test_records_have_the_documented_dtypes():
    e = _episode()
    assert e.fills.dtype == _core.backtest_fill_dtype and e.fills.dtype.itemsize == 48
    assert e.children.dtype == _core.backtest_child_dtype and e.children.dtype.itemsize == 64
    assert e.mids.dtype == _core.mid_sample_dtype and e.mids.dtype.itemsize == 32
    assert np.all(np.diff(e.mids["ts_ns"]) == 100_000_000)
    assert e.mids["ts_ns"][-1] >= e.end_ns + 10 * 10**9 - 100_000_000
    assert e.counters["book_errors"] == 0
    assert np.isfinite(e.market_vwap_ticks) and e.market_volume_shares > 0


def test_factory_and_spec_errors_are_typed():
    with pytest.raises(PolicyConfigError) as unknown:
        _core.make_policy("nope", {})
    assert unknown.value.option == "policy"
    with pytest.raises(PolicyConfigError) as bad:
        _core.make_policy("twap", {"slices": 0})
    assert bad.value.option == "slices"
    with pytest.raises(PolicyConfigError) as extra:
        _core.make_policy("best_price", {"slices": 3})
    assert extra.value.option == "slices" and "unknown parameter" in str(extra.value)
    assert _core.make_policy("twap", {"slices": 3}).name == "twap"
    market = load_scenario("calm").market_spec(seed=1)
    with pytest.raises(BacktestConfigError) as field:
        _core.run_backtest({"market": market, "horizon": 1}, _core.make_policy("twap", {}))
    assert field.value.option == "horizon"
    with pytest.raises(BacktestConfigError) as value:
        _core.run_backtest({"market": market, "quantity": 0}, _core.make_policy("twap", {}))
    assert value.value.option == "quantity"


def test_run_backtest_takes_a_dict_and_models():
    from sor.backtest.runner import shipped_models

    market = load_scenario("calm").market_spec(seed=3)
    spec = {"market": market, "start_offset_ns": 60 * 10**9, "horizon_ns": 5 * 10**9,
            "markout_tail_ns": 0, "quantity": 1_000, "side": _core.Side.SELL}
    result = _core.run_backtest(spec, _core.make_policy("best_price", {}), shipped_models())
    assert result["filled"] == 1_000
    assert result["policy"] == "best_price"
    assert result["side"] == _core.Side.SELL
