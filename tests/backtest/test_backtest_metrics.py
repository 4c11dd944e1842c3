"""Episode metrics against hand-computed cases and slow, obvious loops; bootstrap statistics."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from sor import _core
from sor.backtest import (
    FILL_DTYPE,
    MID_DTYPE,
    EpisodeSpec,
    bootstrap_mean_ci,
    bootstrap_regime_average,
    episode_metrics,
    fill_mix,
    implementation_shortfall,
    markouts_bps,
    paired_bootstrap_ci,
    relative_improvement_ci,
    run_episode,
    vwap_slippage_bps,
)

S = 1_000_000_000
ADDED, REMOVED, MIDPOINT = (int(_core.SimLiquidity.ADDED), int(_core.SimLiquidity.REMOVED),
                            int(_core.SimLiquidity.MIDPOINT))


def _fills(rows):
    out = np.zeros(len(rows), dtype=FILL_DTYPE)
    for n, (ts, venue, price, qty, fee, liquidity, swept) in enumerate(rows):
        out[n]["ts_ns"] = ts
        out[n]["child_id"] = n + 1
        out[n]["venue_id"] = venue
        out[n]["price_ticks"] = price
        out[n]["quantity"] = qty
        out[n]["fee_usd"] = fee
        out[n]["liquidity"] = liquidity
        out[n]["swept"] = swept
    return out


def _mids(start, values, step=S // 10):
    out = np.zeros(len(values), dtype=MID_DTYPE)
    out["ts_ns"] = start + step * np.arange(len(values))
    out["mid_ticks"] = values
    return out


def test_implementation_shortfall_by_hand():
    # Buy 1000 at arrival mid 10000 ticks of $0.01: 600 @ 10001 and 400 @ 10003 cost
    # (600 * 1 + 400 * 3) * 0.01 = $18, fees $2, notional $100,000: 2.0 bps.
    parts = implementation_shortfall(1, 1000, [10001, 10003], [600, 400], 2.0, 10000.0,
                                     10005.0, 0.01)
    assert parts["is_bps"] == pytest.approx(2.0)
    assert parts["price_bps"] == pytest.approx(1.8)
    assert parts["fees_bps"] == pytest.approx(0.2)
    assert parts["unfilled_bps"] == 0
    # The same prices on a sell are a gain: -1.8 bps, fees still cost.
    assert implementation_shortfall(-1, 1000, [10001, 10003], [600, 400], 2.0, 10000.0, 0,
                                    0.01)["is_bps"] == pytest.approx(-1.6)
    # 400 unfilled, end mid 10010: 400 * 10 * 0.01 = $40 of drift plus 50 bps of
    # 400 * $100 = $200 penalty; with the $6 of the fill: 24.6 bps.
    unfilled = implementation_shortfall(1, 1000, [10001], [600], 0.0, 10000.0, 10010.0, 0.01)
    assert unfilled["unfilled_bps"] == pytest.approx(24.0)
    assert unfilled["is_bps"] == pytest.approx(24.6)


def test_vwap_slippage_by_hand():
    # Average 10001.8 against a market VWAP of 10000: a buy paid 1.8 bps more, a sell got more.
    assert vwap_slippage_bps(1, [10001, 10003], [600, 400], 10000.0) == pytest.approx(1.8)
    assert vwap_slippage_bps(-1, [10001, 10003], [600, 400], 10000.0) == pytest.approx(-1.8)
    assert math.isnan(vwap_slippage_bps(1, [], [], 10000.0))


def test_markouts_by_hand():
    t0 = 1_700_000_000 * S
    # Mid 10000 for 1 s, then 10010 (up 10 bps) for 9 s, then 9990.
    values = [10000.0] * 10 + [10010.0] * 90 + [9990.0] * 700
    mids = _mids(t0, values)
    fills = _fills([(t0 + S // 2, 0, 10001, 100, 0.0, REMOVED, False),
                    (t0 + S // 2, 1, 10000, 300, 0.0, ADDED, False)])
    buy = markouts_bps(1, fills, mids, {0: "A", 1: "B"})
    # A buy at t0 + 0.5 s: mid at +1 s is 10010 (+10 bps: in our favour, markout -10);
    # at +10 s 9990 (-10 bps: against us, +10); at +60 s still 9990.
    assert buy["A"]["1s"] == pytest.approx(-10.0)
    assert buy["A"]["10s"] == pytest.approx(10.0)
    assert buy["A"]["60s"] == pytest.approx(10.0)
    assert buy["all"]["shares"] == 400 and buy["B"]["shares"] == 300
    sell = markouts_bps(-1, fills, mids)
    assert sell["all"]["1s"] == pytest.approx(10.0)
    # Beyond the last sample the markout is unknown.
    late = _fills([(t0 + 79 * S, 0, 10000, 100, 0.0, REMOVED, False)])
    assert markouts_bps(1, late, mids)["all"]["60s"] is None


def test_fill_mix_by_hand():
    fills = _fills([(0, 0, 1, 100, 0, ADDED, False), (0, 0, 1, 200, 0, MIDPOINT, False),
                    (0, 0, 1, 300, 0, REMOVED, False), (0, 0, 1, 400, 0, REMOVED, True)])
    assert fill_mix(fills) == pytest.approx({"passive": 0.1, "midpoint": 0.2,
                                             "aggressive": 0.3, "swept": 0.4})


def _slow_metrics(e, penalty_bps=50.0):
    """The metrics by their definitions, one fill at a time."""
    cost = 0.0
    filled = 0
    notional_fill = 0.0
    for f in e.fills:
        cost += e.side * int(f["quantity"]) * (int(f["price_ticks"]) - e.arrival_mid_ticks) \
            * e.price_tick_usd + float(f["fee_usd"])
        filled += int(f["quantity"])
        notional_fill += int(f["quantity"]) * int(f["price_ticks"])
    left = e.quantity - filled
    if left:
        cost += e.side * left * (e.end_mid_ticks - e.arrival_mid_ticks) * e.price_tick_usd
        cost += penalty_bps * 1e-4 * left * e.arrival_mid_ticks * e.price_tick_usd
    is_bps = cost / (e.quantity * e.arrival_mid_ticks * e.price_tick_usd) * 1e4
    vwap = e.side * (notional_fill / filled - e.market_vwap_ticks) / e.market_vwap_ticks * 1e4
    marks = {}
    for h in (1, 10, 60):
        num = den = 0.0
        for f in e.fills:
            t = int(f["ts_ns"])
            before = [m for m in e.mids if m["ts_ns"] <= t]
            after = [m for m in e.mids if m["ts_ns"] <= t + h * S]
            if not before or t + h * S > e.mids["ts_ns"][-1]:
                continue
            m0, m1 = float(before[-1]["mid_ticks"]), float(after[-1]["mid_ticks"])
            if math.isnan(m0) or math.isnan(m1):
                continue
            num += -e.side * (m1 - m0) / m0 * 1e4 * int(f["quantity"])
            den += int(f["quantity"])
        marks[f"{h}s"] = num / den if den else None
    return is_bps, vwap, marks


@pytest.mark.parametrize("policy,params,seed,finish", [("twap", {"slices": 3}, 21, True),
                                                       ("best_price", {}, 22, True),
                                                       ("twap", {"slices": 2, "depth_levels": 1},
                                                        23, False)])
def test_episode_metrics_match_slow_definitions(policy, params, seed, finish):
    spec = EpisodeSpec(start_offset_s=60.0, horizon_s=20.0, markout_tail_s=60.0,
                       quantity=40_000 if finish else 400_000, finish_at_horizon=finish)
    e = run_episode(policy, params, "toxic_venue", seed, spec=spec, models=None,
                    feature_settings=None, adv_shares=1e8)
    m = episode_metrics(e)
    is_bps, vwap, marks = _slow_metrics(e)
    assert m["is_bps"] == pytest.approx(is_bps, rel=1e-9, abs=1e-9)
    assert m["vwap_slippage_bps"] == pytest.approx(vwap, rel=1e-9)
    for key, value in marks.items():
        if value is None:
            assert m["markouts_bps"]["all"][key] is None
        else:
            assert m["markouts_bps"]["all"][key] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert m["fill_rate"] == pytest.approx(e.filled / e.quantity)
    assert m["participation"] == pytest.approx(e.filled / (e.market_volume_shares + e.filled))
    assert sum(m["fill_mix"].values()) == pytest.approx(1.0)
    assert (m["is_unfilled_bps"] > 0) == (not finish)


def test_bootstrap_interval_contains_the_mean_and_is_reproducible():
    values = np.random.default_rng(5).normal(3.0, 2.0, size=16)
    a = bootstrap_mean_ci(values, resamples=2000, seed=7)
    b = bootstrap_mean_ci(values, resamples=2000, seed=7)
    assert a == b
    assert a["ci_low"] < a["mean"] < a["ci_high"]
    assert a["mean"] == pytest.approx(values.mean())
    assert bootstrap_mean_ci(values, seed=8) != a
    single = bootstrap_mean_ci([4.0])
    assert single["ci_low"] == single["mean"] == single["ci_high"] == 4.0


def test_paired_and_regime_statistics():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    same = paired_bootstrap_ci(x, x)
    assert same["mean"] == same["ci_low"] == same["ci_high"] == 0.0
    shifted = paired_bootstrap_ci(x + 1.5, x)
    assert shifted["mean"] == shifted["ci_low"] == shifted["ci_high"] == 1.5
    average = bootstrap_regime_average([x, x + 10])
    assert average["mean"] == pytest.approx(7.5)
    assert average["ci_low"] <= 7.5 <= average["ci_high"]
    # The candidate is 20% cheaper in every pair: the improvement is exactly 0.2.
    baseline = [np.array([10.0, 12.0, 8.0]), np.array([20.0, 18.0, 22.0])]
    candidate = [0.8 * b for b in baseline]
    r = relative_improvement_ci(candidate, baseline)
    assert r["improvement"] == pytest.approx(0.2)
    assert r["ci_low"] == pytest.approx(0.2) and r["ci_high"] == pytest.approx(0.2)


def test_summary_picks_the_best_baseline_and_reports_the_target():
    from sor.backtest import summarize

    rows = []
    for regime, scale in (("a", 1.0), ("b", 2.0)):
        for seed in range(4):
            for policy, is_bps in (("best_price", 10.0), ("twap", 8.0), ("cand", 5.0)):
                rows.append({"policy": policy, "policy_name": policy, "regime": regime,
                             "seed": seed, "is_bps": scale * is_bps + seed,
                             "vwap_slippage_bps": 0.0, "fill_rate": 1.0, "participation": 0.01,
                             "fees_bps": 0.1, "is_price_bps": 0.0, "is_fees_bps": 0.0,
                             "is_unfilled_bps": 0.0, "completion_s": 1.0,
                             "fill_mix": {"passive": 0, "midpoint": 0, "aggressive": 1,
                                          "swept": 0},
                             "markouts_bps": {}, "counters": {"requests_refused": 0,
                                                              "book_errors": 0}})
    s = summarize(rows, policies=["best_price", "twap", "cand"], regimes=["a", "b"],
                  reference="best_price", candidate="cand", resamples=500)
    imp = s["improvement_vs_best_baseline"]
    assert imp["best_baseline"] == "twap"
    # twap averages (8+1.5 + 16+1.5)/2 = 13.5, cand (5+1.5 + 10+1.5)/2 = 9: 1/3 lower.
    assert imp["improvement"] == pytest.approx(4.5 / 13.5)
    assert imp["ci_excludes_zero"] and imp["meets_target"]
    assert imp["worst_regime"] == "a"
    assert s["paired_vs_reference"]["by_regime"]["a"]["twap"]["mean"] == pytest.approx(-2.0)
    assert "skipped" in summarize(rows, policies=["best_price", "twap"], regimes=["a"],
                                  reference=None, candidate="ml_router")[
        "improvement_vs_best_baseline"]


def test_episode_metrics_keys_are_json_ready():
    import json

    e = SimpleNamespace(
        policy="twap", params={}, scenario="x", seed=1, side=1, quantity=100,
        fills=_fills([(10 * S, 0, 10001, 100, 0.3, REMOVED, False)]),
        children=np.zeros(1, dtype=_core.backtest_child_dtype),
        mids=_mids(0, [10000.0] * 1000), arrival_mid_ticks=10000.0, end_mid_ticks=math.nan,
        start_ns=0, end_ns=50 * S, finished_ns=11 * S, filled=100, fees_usd=0.3,
        market_vwap_ticks=math.nan, market_volume_shares=0, price_tick_usd=0.01,
        venue_names={0: "A"}, counters={})
    m = episode_metrics(e)
    json.dumps(m, allow_nan=False)
    assert m["vwap_slippage_bps"] is None and m["end_mid_ticks"] is None
    assert m["participation"] == 1.0
