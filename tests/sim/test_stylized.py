"""sor.sim.stylized: every estimator against data with a known answer, and its error paths.

The generators below are shared with test_sim_report.py (same directory, imported by name).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sor import _core
from sor.errors import SorError, UsageError
from sor.sim import stylized
from sor.sim.stylized import (
    METAORDER_DTYPE,
    QUOTE_SAMPLE_DTYPE,
    Band,
    ImpactFitError,
    autocorrelation,
    depth_profile,
    excess_kurtosis,
    fit_square_root_impact,
    fit_student_t,
    heavy_tails,
    hill_tail_index,
    mid_log_returns,
    mid_price_ticks,
    queue_depletion,
    spread_distribution,
    stylized_facts,
    trade_signs,
    volatility_clustering,
)

SECOND_NS = 1_000_000_000
START_NS = 1_700_000_000_000_000_000


# --- generators of data with known properties -------------------------------------------------


def garch_returns(count: int, *, seed: int, omega: float = 1e-6, alpha: float = 0.1,
                  beta: float = 0.85) -> np.ndarray:
    """Returns a GARCH(1,1) path with Gaussian innovations: no linear autocorrelation, positive
    and slowly decaying autocorrelation of |r| (persistence alpha + beta)."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(count)
    returns = np.empty(count)
    variance = omega / (1.0 - alpha - beta)
    for index in range(count):
        returns[index] = math.sqrt(variance) * shocks[index]
        variance = omega + alpha * returns[index] ** 2 + beta * variance
    return returns


def make_quotes(bid_price_ticks, ask_price_ticks, bid_quantity, ask_quantity, *,
                interval_ns: int = SECOND_NS) -> np.ndarray:
    """Returns quote samples on a regular clock from equal-length sequences."""
    quotes = np.zeros(len(bid_price_ticks), QUOTE_SAMPLE_DTYPE)
    quotes["ts_ns"] = START_NS + interval_ns * np.arange(len(quotes))
    quotes["bid_price_ticks"] = bid_price_ticks
    quotes["ask_price_ticks"] = ask_price_ticks
    quotes["bid_quantity"] = bid_quantity
    quotes["ask_quantity"] = ask_quantity
    return quotes


def synthetic_market(*, minutes: int = 800, seed: int = 7, levels: int = 5):
    """Returns ``(quotes, bid_depth, ask_depth, trades)`` of a large-tick stock sampled every
    second: the best bid moves one tick at a time with a persistent random activity (stochastic
    volatility: heavy-tailed, clustered minute returns), the spread is one tick 80% of the
    time, queues are small right before they deplete, and the mean depth profile is a hump
    peaking two ticks from the best."""
    rng = np.random.default_rng(seed)
    log_activity = np.zeros(minutes)  # AR(1) log-activity: stochastic volatility by the minute
    shocks = rng.standard_normal(minutes) * 0.25
    for minute in range(1, minutes):
        log_activity[minute] = 0.98 * log_activity[minute - 1] + shocks[minute]
    move_probability = np.repeat(np.clip(0.05 * np.exp(log_activity), 0.0, 0.9), 60)
    count = minutes * 60
    moving = rng.random(count) < move_probability
    direction = np.where(rng.random(count) < 0.5, -1, 1)
    bid = 10_000 + np.concatenate([[0], np.cumsum(np.where(moving, direction, 0))[:-1]])
    ask = bid + np.where(rng.random(count) < 0.8, 1, 2)
    bid_quantity = rng.integers(300, 2_000, count)
    ask_quantity = rng.integers(300, 2_000, count)
    bid_falls = np.flatnonzero(np.diff(bid) < 0)
    ask_rises = np.flatnonzero(np.diff(ask) > 0)
    bid_quantity[bid_falls] = rng.integers(1, 200, len(bid_falls))
    ask_quantity[ask_rises] = rng.integers(1, 200, len(ask_rises))
    quotes = make_quotes(bid, ask, bid_quantity, ask_quantity)
    shape = np.array([1.0, 1.6, 2.0, 1.7, 1.2])[:levels]
    bid_depth = (rng.uniform(0.5, 1.5, (count, levels)) * 800 * shape).astype(np.int64)
    ask_depth = (rng.uniform(0.5, 1.5, (count, levels)) * 800 * shape).astype(np.int64)
    bid_depth[:, 0] = bid_quantity
    ask_depth[:, 0] = ask_quantity
    trade_count = 4_000
    trades = np.zeros(trade_count, _core.sim_trade_dtype)
    trades["ts_event"] = np.sort(rng.integers(START_NS, START_NS + count * SECOND_NS, trade_count))
    persistent = np.cumsum(rng.random(trade_count) < 0.1)  # sign runs: long memory of order flow
    trades["aggressor_side"] = np.where(rng.random(persistent.max() + 1)[persistent] < 0.5, 1, 2)
    trades["quantity"] = 100
    trades["price_ticks"] = 10_000
    return quotes, bid_depth, ask_depth, trades


def synthetic_metaorders(count: int, exponent: float, *, seed: int, prefactor: float = 0.8,
                         relative_noise: float = 1.0) -> np.ndarray:
    """Returns metaorders with I = Y sigma (Q/V)^exponent (1 + noise * N(0, 1)): the mean law is
    exact, single impacts are noisy and about 16% are negative at noise 1."""
    rng = np.random.default_rng(seed)
    participation = np.exp(rng.uniform(math.log(1e-4), math.log(1e-1), count))
    market_volume = rng.integers(1_000_000, 10_000_000, count)
    quantity = np.maximum(np.round(participation * market_volume), 1).astype(np.int64)
    sigma = rng.lognormal(math.log(50.0), 0.3, count)
    mean_impact = prefactor * sigma * (quantity / market_volume) ** exponent
    metaorders = np.zeros(count, METAORDER_DTYPE)
    metaorders["quantity"] = quantity
    metaorders["market_volume"] = market_volume
    metaorders["side"] = rng.integers(1, 3, count)
    metaorders["daily_volatility_ticks"] = sigma
    metaorders["impact_ticks"] = mean_impact * (1.0 + relative_noise * rng.standard_normal(count))
    return metaorders


# --- heavy tails ------------------------------------------------------------------------------


def test_excess_kurtosis_of_known_distributions():
    assert excess_kurtosis(np.tile([1.0, -1.0], 50)) == pytest.approx(-2.0)  # two-point: exact
    laplace = np.random.default_rng(1).laplace(size=200_000)
    assert excess_kurtosis(laplace) == pytest.approx(3.0, abs=0.3)


def test_hill_recovers_the_index_of_an_exact_pareto_sample():
    count = 20_000
    uniform_quantiles = (np.arange(count) + 0.5) / count
    pareto = (1.0 - uniform_quantiles) ** (-1.0 / 2.5)
    estimate = hill_tail_index(pareto, tail_fraction=0.05)
    assert estimate.tail_count == 1_000
    assert estimate.tail_index == pytest.approx(2.5, abs=0.1)
    assert estimate.standard_error == pytest.approx(estimate.tail_index / math.sqrt(1_000))


def test_student_t_three_degrees_of_freedom_is_heavy_tailed():
    returns = 1e-3 * np.random.default_rng(2).standard_t(3, 20_000)
    summary = heavy_tails(returns)
    assert summary.passes
    assert summary.excess_kurtosis > 1.0
    assert 2.4 <= summary.hill.tail_index <= 3.6
    assert abs(summary.hill.tail_index - 3.0) < 3 * summary.hill.standard_error
    assert summary.student_t.degrees_of_freedom == pytest.approx(3.0, abs=0.5)
    assert summary.student_t.scale == pytest.approx(1e-3, rel=0.1)


def test_gaussian_returns_fail_the_heavy_tail_checks():
    returns = 1e-3 * np.random.default_rng(3).standard_normal(20_000)
    summary = heavy_tails(returns)
    assert not summary.passes
    verdicts = {check.name: check.verdict for check in summary.checks}
    assert verdicts == {"excess_kurtosis": "FAIL", "hill_tail_index": "FAIL",
                        "student_t_degrees_of_freedom": "INFO"}
    assert abs(summary.excess_kurtosis) < 0.2
    assert summary.student_t.degrees_of_freedom > 30


def test_student_t_fit_of_a_gaussian_sits_at_the_search_bound():
    fit = fit_student_t(np.random.default_rng(4).standard_normal(5_000),
                        maximum_degrees_of_freedom=50.0)
    assert fit.degrees_of_freedom == pytest.approx(50.0)
    assert fit.scale == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("returns, message", [
    (np.array([]), "at least"),
    (np.zeros(100), "constant"),
    (np.full(100, 1e-4), "constant"),
    (np.array([1e-3, np.nan] * 50), "NaN"),
])
def test_heavy_tails_refuses_unusable_returns(returns, message):
    with pytest.raises(UsageError, match=message):
        heavy_tails(returns)


def test_hill_refuses_too_small_a_tail_and_zero_thresholds():
    with pytest.raises(UsageError, match="at least 10"):
        hill_tail_index(np.random.default_rng(5).standard_normal(100), tail_fraction=0.05)
    mostly_zero = np.zeros(1_000)
    mostly_zero[:5] = [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(UsageError, match="zero returns"):
        hill_tail_index(mostly_zero, tail_fraction=0.025)
    with pytest.raises(UsageError, match="tail_fraction"):
        hill_tail_index(np.arange(1.0, 100.0), tail_fraction=0.7)


# --- volatility clustering --------------------------------------------------------------------


def test_autocorrelation_matches_the_textbook_formula():
    values = np.random.default_rng(6).standard_normal(300)
    centred = values - values.mean()
    expected = [sum(centred[t] * centred[t + lag] for t in range(len(values) - lag))
                / sum(centred ** 2) for lag in range(6)]
    np.testing.assert_allclose(autocorrelation(values, 5), expected, rtol=1e-12)


def test_garch_returns_cluster():
    summary = volatility_clustering(garch_returns(20_000, seed=8))
    assert summary.passes, summary.checks
    absolute = summary.absolute_return_autocorrelation
    assert np.all(absolute[1:21] > summary.significance_level)
    assert absolute[1] > absolute[20] > 0.0  # positive, decaying
    assert np.max(np.abs(summary.return_autocorrelation[2:])) < 0.05


def test_gaussian_returns_do_not_cluster():
    summary = volatility_clustering(np.random.default_rng(9).standard_normal(20_000))
    assert not summary.passes
    verdicts = {check.name: check.verdict for check in summary.checks}
    assert verdicts["return_autocorrelation_beyond_lag_1"] == "PASS"
    assert verdicts["absolute_return_autocorrelation_lag_1"] == "FAIL"
    assert verdicts["absolute_return_far_lag_mean_autocorrelation"] == "FAIL"
    assert summary.absolute_return_autocorrelation[1:].mean() < summary.significance_level


def test_linearly_predictable_returns_fail_the_no_memory_check():
    rng = np.random.default_rng(10)
    shocks = rng.standard_normal(5_000)
    ar = np.empty_like(shocks)
    ar[0] = shocks[0]
    for index in range(1, len(ar)):
        ar[index] = 0.6 * ar[index - 1] + shocks[index]
    summary = volatility_clustering(ar)
    assert summary.return_autocorrelation[2] == pytest.approx(0.36, abs=0.05)
    verdicts = {check.name: check.verdict for check in summary.checks}
    assert verdicts["return_autocorrelation_beyond_lag_1"] == "FAIL"


# --- quotes: mid, returns, spread, depth, depletion -------------------------------------------


def test_mid_carries_forward_over_one_sided_samples_and_returns_use_the_horizon():
    quotes = make_quotes([0, 100, 100, 101, 102, 0, 103],
                         [0, 101, 102, 102, 103, 104, 104],
                         [0, 10, 10, 10, 10, 0, 10],
                         [0, 10, 10, 10, 10, 10, 10])
    np.testing.assert_array_equal(mid_price_ticks(quotes)[1:],
                                  [100.5, 101.0, 101.5, 102.5, 102.5, 103.5])
    assert math.isnan(mid_price_ticks(quotes)[0])
    returns = mid_log_returns(quotes, horizon_ns=2 * SECOND_NS)
    np.testing.assert_allclose(returns, np.diff(np.log([100.5, 101.5, 102.5])))


def test_mid_log_returns_refuses_irregular_clocks_and_odd_horizons():
    quotes = make_quotes([100] * 4, [101] * 4, [5] * 4, [5] * 4)
    with pytest.raises(UsageError, match="multiple"):
        mid_log_returns(quotes, horizon_ns=SECOND_NS // 2)
    irregular = quotes.copy()
    irregular["ts_ns"][3] += 1
    with pytest.raises(UsageError, match="regular clock"):
        mid_log_returns(irregular, horizon_ns=SECOND_NS)
    with pytest.raises(UsageError, match="at least 2"):
        mid_log_returns(quotes[:1], horizon_ns=SECOND_NS)
    with pytest.raises(UsageError, match="constant"):
        heavy_tails(mid_log_returns(make_quotes([100] * 40, [101] * 40, [5] * 40, [5] * 40),
                                    horizon_ns=SECOND_NS))
    with pytest.raises(UsageError, match="structured array"):
        mid_log_returns(np.zeros(4), horizon_ns=SECOND_NS)


def test_spread_distribution_counts_shares_of_time():
    quotes = make_quotes([100, 100, 100, 100, 100], [101, 101, 101, 102, 0],
                         [5, 5, 5, 5, 5], [5, 5, 5, 5, 0])
    spread = spread_distribution(quotes)
    assert spread.two_sided_count == 4
    assert spread.one_tick_share == 0.75
    assert spread.mean_ticks == 1.25
    np.testing.assert_array_equal(spread.spread_values, [1, 2])
    np.testing.assert_allclose(spread.spread_shares, [0.75, 0.25])
    verdicts = {check.name: check.verdict for check in spread.checks}
    assert verdicts["spread_one_tick_share"] == "PASS"
    assert verdicts["one_sided_share"] == "FAIL"  # 20% one-sided is far from a liquid stock
    with pytest.raises(UsageError, match="both a bid and an ask"):
        spread_distribution(quotes[4:])


def test_depth_profile_accepts_a_hump_and_rejects_a_decreasing_book():
    hump = np.array([[5, 8, 10, 7], [7, 10, 12, 9]])
    profile = depth_profile(hump, hump)
    np.testing.assert_allclose(profile.mean_depth, [6, 9, 11, 8])
    assert profile.peak_level == 2 and profile.passes
    decreasing = np.array([[10, 5, 2, 1]])
    assert not depth_profile(decreasing, decreasing).passes
    with pytest.raises(UsageError, match="one shape"):
        depth_profile(hump, hump[:, :3])
    with pytest.raises(UsageError, match="empty"):
        depth_profile(np.zeros((3, 4)), np.zeros((3, 4)))


def test_queue_depletion_finds_each_emptied_best_queue():
    # bid falls at samples 2->3 (queue 3 before) and 5->6 (queue 2); ask rises at 3->4
    # (queue 4); the bid rising at 1->2 is an improvement, not a depletion.
    quotes = make_quotes([99, 99, 100, 99, 99, 99, 98, 98],
                         [101, 101, 101, 101, 102, 102, 102, 102],
                         [50, 50, 3, 60, 60, 2, 40, 40],
                         [50, 50, 50, 4, 70, 70, 70, 70],
                         interval_ns=10 * SECOND_NS)
    depletion = queue_depletion(quotes)
    assert depletion.depletion_count == 3
    assert depletion.duration_minutes == pytest.approx(70 / 60)
    assert depletion.depletions_per_minute == pytest.approx(3 / (70 / 60))
    np.testing.assert_array_equal(depletion.queue_before_depletion, [3, 2, 4])
    # bid changes at samples 2, 3, 6; ask at 4: durations 10 s and 30 s on the bid side
    np.testing.assert_array_equal(depletion.price_change_durations_ns,
                                  [10 * SECOND_NS, 30 * SECOND_NS])
    assert depletion.mean_best_queue == pytest.approx(np.mean([50, 50, 3, 60, 60, 2, 40, 40,
                                                               50, 50, 50, 4, 70, 70, 70, 70]))
    assert depletion.passes
    one_sided = make_quotes([99, 98, 97], [0, 0, 0], [5, 5, 5], [0, 0, 0])
    with pytest.raises(UsageError, match="both a bid and an ask"):
        queue_depletion(one_sided)


def test_trade_signs_see_alternation_and_skip_dark_crosses():
    trades = np.zeros(41, _core.sim_trade_dtype)
    trades["ts_event"] = START_NS + np.arange(41)
    trades["aggressor_side"] = [1, 2] * 20 + [0]
    summary = trade_signs(trades, maximum_lag=4)
    assert summary.trade_count == 40
    np.testing.assert_allclose(summary.sign_autocorrelation[1:3], [-0.975, 0.95])
    with pytest.raises(UsageError, match="same aggressor side"):
        trade_signs(trades[::2], maximum_lag=4)


# --- square-root impact -----------------------------------------------------------------------


def test_square_root_impact_is_recovered_from_noisy_metaorders():
    metaorders = synthetic_metaorders(4_000, 0.5, seed=11)
    assert np.mean(metaorders["impact_ticks"] < 0) > 0.1  # single impacts are noisy
    fit = fit_square_root_impact(metaorders, bootstrap_samples=500)
    low, high = fit.exponent_confidence_interval
    assert low <= 0.5 <= high and high - low < 0.1
    assert fit.passes
    assert fit.prefactor == pytest.approx(0.8, rel=0.15)
    assert fit.r_squared > 0.95
    assert fit.bin_counts.sum() == 4_000 and len(fit.bin_counts) == 10


def test_linear_impact_is_recovered_and_fails_the_band():
    fit = fit_square_root_impact(synthetic_metaorders(4_000, 1.0, seed=12, prefactor=1.0),
                                 bootstrap_samples=300)
    assert fit.exponent == pytest.approx(1.0, abs=0.05)
    assert not fit.passes


def test_impact_fit_matches_a_slow_reference_and_is_deterministic():
    metaorders = synthetic_metaorders(600, 0.5, seed=13, relative_noise=0.3)
    fit = fit_square_root_impact(metaorders, bin_count=6, bootstrap_samples=100, seed=3)
    participation = metaorders["quantity"] / metaorders["market_volume"]
    normalized = metaorders["impact_ticks"] / metaorders["daily_volatility_ticks"]
    ranked = np.argsort(participation, kind="stable")
    bins = np.array_split(ranked, 6)
    x = [np.mean(np.log(participation[members])) for members in bins]
    y = [math.log(np.mean(normalized[members])) for members in bins]
    slope, intercept = np.polyfit(x, y, 1)
    assert fit.exponent == pytest.approx(slope, rel=1e-12)
    assert fit.prefactor == pytest.approx(math.exp(intercept), rel=1e-12)
    again = fit_square_root_impact(metaorders, bin_count=6, bootstrap_samples=100, seed=3)
    assert again.exponent_confidence_interval == fit.exponent_confidence_interval


def test_impact_fit_refuses_a_bin_with_non_positive_mean():
    metaorders = synthetic_metaorders(400, 0.5, seed=14, relative_noise=0.2)
    smallest = np.argsort(metaorders["quantity"] / metaorders["market_volume"])[:40]
    metaorders["impact_ticks"][smallest] = -np.abs(metaorders["impact_ticks"][smallest])
    with pytest.raises(ImpactFitError, match=r"bin 0 \(Q/V from .* has mean impact/sigma") as error:
        fit_square_root_impact(metaorders, bootstrap_samples=10)
    assert error.value.bin_index == 0
    assert isinstance(error.value, (SorError, ValueError))


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m[:5], "at least 20"),
    (lambda m: _set(m, "market_volume", 0), "positive"),
    (lambda m: _set(m, "daily_volatility_ticks", np.nan), "daily_volatility_ticks"),
    (lambda m: _set(m, "side", 0), "side"),
    (lambda m: np.zeros(len(m)), "structured array"),
])
def test_impact_fit_refuses_unusable_metaorders(mutate, message):
    with pytest.raises(UsageError, match=message):
        fit_square_root_impact(mutate(synthetic_metaorders(100, 0.5, seed=15)),
                               bootstrap_samples=10)


def _set(metaorders: np.ndarray, name: str, value) -> np.ndarray:
    changed = metaorders.copy()
    changed[name][0] = value
    return changed


# --- everything at once -----------------------------------------------------------------------


def test_stylized_facts_of_a_synthetic_large_tick_market():
    quotes, bid_depth, ask_depth, trades = synthetic_market()
    facts = stylized_facts(quotes, bid_depth, ask_depth, trades=trades,
                           metaorders=synthetic_metaorders(2_000, 0.5, seed=16),
                           bootstrap_samples=200)
    assert len(facts.returns) == 799
    verdicts = {check.name: check.verdict for check in facts.checks}
    failed = sorted(name for name, verdict in verdicts.items() if verdict == "FAIL")
    assert failed == [], failed
    assert facts.passes
    assert facts.spread.one_tick_share == pytest.approx(0.8, abs=0.02)
    assert facts.depth.peak_level == 2
    assert facts.trade_signs is not None and facts.trade_signs.sign_autocorrelation[1] > 0.5
    assert [title for title, _ in facts.sections][-1] == "Square-root impact"
    names = [check.name for check in facts.checks]
    assert len(names) == len(set(names))


def test_band_text_and_membership():
    assert Band(0.4, 0.7).describe() == "[0.4, 0.7]"
    assert Band(lower=1.0).describe() == ">= 1"
    assert Band(upper=0.01).describe() == "<= 0.01"
    assert Band(0.4, 0.7).contains(0.4) and not Band(0.4, 0.7).contains(0.71)
    assert not Band(lower=0.0).contains(float("nan"))
    assert stylized.format_number(0.123456) == "0.1235"
