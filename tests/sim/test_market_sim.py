"""The multi-venue market simulator: scenarios, determinism, feeds, the agent's orders on lit
venues and dark pools, latency, fees, errors, informed flow and impact."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sor import _core
from sor.book import L3Book, Side
from sor.config import default_config
from sor.errors import ConfigError, UsageError
from sor.feed import itch
from sor.sim import Market, MarketClosedError, load_scenario, shipped_scenarios
from sor.sim.market import Liquidity, OrderType, RejectReason, ReportKind

SHORT = {"session_length_ns": 600 * 10**9, "quote_sample_interval_ns": 0}


def _fingerprint(market: Market) -> str:
    digest = hashlib.sha256(market.trades().tobytes())
    for venue in market.spec.venues:
        digest.update(market.feed(venue.name))
    return digest.hexdigest()


def _wait_for(market: Market, kinds: set[int], seconds: float = 5.0) -> np.ndarray:
    """Advances in small steps until a report of one of `kinds` arrives; returns all reports."""
    out = []
    for _ in range(int(seconds * 100)):
        market.run_for(0.01)
        got = market.reports()
        out.append(got)
        if np.isin(got["kind"], list(kinds)).any():
            break
    return np.concatenate(out)


def test_every_shipped_scenario_loads_and_runs_clean():
    assert {"default", "calm", "volatile", "toxic_venue", "dark_rich"} <= set(shipped_scenarios())
    for name in shipped_scenarios():
        with Market(name, **SHORT) as market:
            market.run_for(60)
            counters = market.counters()
            assert counters["events"] > 10_000, name
            assert counters["book_errors"] == 0, name
            q = market.nbbo()
            assert 0 < q["bid_price_ticks"] < q["ask_price_ticks"], name


def test_default_scenario_venues_mirror_the_router_configuration():
    spec = load_scenario("default").market_spec()
    config = default_config()
    assert spec.price_tick_usd == config.price_tick_usd
    for venue in config.venues:
        sim = next(v for v in spec.venues if v.venue_id == venue.venue_id)
        assert sim.name == venue.name
        assert (sim.kind == _core.SimVenueKind.DARK) == (venue.kind.name == "DARK")
        if sim.kind == _core.SimVenueKind.LIT:
            assert sim.maker_fee_usd_per_share == venue.fees.maker_fee_usd_per_share
            assert sim.taker_fee_usd_per_share == venue.fees.taker_fee_usd_per_share


def test_same_seed_same_bytes_and_time_slicing_does_not_matter():
    with Market(seed=11, record_feeds=True, **SHORT) as one:
        one.run_for(90)
        first = _fingerprint(one)
    with Market(seed=11, record_feeds=True, **SHORT) as two:
        for _ in range(90):
            two.run_for(1)
        second = _fingerprint(two)
    with Market(seed=12, record_feeds=True, **SHORT) as other:
        other.run_for(90)
        third = _fingerprint(other)
    assert first == second
    assert first != third


def test_recording_feeds_does_not_change_the_market():
    with Market(seed=5, record_feeds=False, **SHORT) as plain:
        plain.run_for(60)
        plain_trades = plain.trades()
    with Market(seed=5, record_feeds=True, record_events=True, **SHORT) as recorded:
        recorded.run_for(60)
        assert np.array_equal(plain_trades, recorded.trades())


def test_itch_feed_decodes_to_the_recorded_events_and_rebuilds_each_book():
    with Market(seed=3, record_feeds=True, record_events=True, **SHORT) as market:
        market.run_for(120)
        session_date = market.session_start_ns - market.session_start_ns % (86_400 * 10**9)
        for venue in market.spec.venues:
            events = market.events(venue.name)
            decoded = itch.decode(market.feed(venue.name), venue_id=int(venue.venue_id),
                                  session_date_ns=session_date).events
            decoded = decoded[decoded["kind"] != int(_core.EventKind.STATUS)]
            assert len(decoded) == len(events) > 0
            for field in ("ts_event", "order_id", "kind", "quantity"):
                assert np.array_equal(decoded[field], events[field]), (venue.name, field)
            sided = np.isin(events["kind"], [int(_core.EventKind.ADD), int(_core.EventKind.TRADE)])
            assert np.array_equal(decoded["side"][sided], events["side"][sided])  # D/X/E carry none
            if venue.kind != _core.SimVenueKind.LIT:
                assert set(events["kind"]) == {int(_core.EventKind.TRADE)}
                continue
            book = L3Book(int(venue.venue_id))
            decoded = decoded.copy()
            decoded["instrument_id"] = 0
            decoded["sequence"] = 0
            book.apply(decoded)
            for side in (Side.BUY, Side.SELL):
                expected = market.levels(venue.name, "buy" if side == Side.BUY else "sell", depth=5)
                got = book.depth(side, 5)
                assert np.array_equal(got["price_ticks"], expected["price_ticks"])
                assert np.array_equal(got["quantity"], expected["quantity"])


def test_marketable_ioc_takes_at_the_touch_with_latency_and_taker_fee():
    with Market(seed=2, **SHORT) as market:
        market.run_for(5)
        venue = market.spec.venues[0]
        ask = int(market.levels(venue.name, "sell", 1)["price_ticks"][0])
        sent = market.now_ns
        client = market.submit(venue.name, "buy", 300, price_ticks=ask, order_type=OrderType.IOC)
        reports = _wait_for(market, {int(ReportKind.FILL), int(ReportKind.CANCELLED)})
        mine = reports[reports["client_order_id"] == client]
        assert mine["kind"][0] == int(ReportKind.ACK)
        assert mine["ts_event"][0] >= sent + venue.latency.order_entry_ns
        assert np.all(mine["ts_recv"] >= mine["ts_event"] + venue.latency.ack_ns)
        fills = mine[mine["kind"] == int(ReportKind.FILL)]
        assert fills["quantity"].sum() > 0
        assert np.all(fills["price_ticks"] <= ask)
        assert np.all(fills["detail"] == int(Liquidity.REMOVED))
        assert fills["fee_usd"] == pytest.approx(fills["quantity"] * venue.taker_fee_usd_per_share)


def test_post_only_that_would_take_is_rejected_and_a_resting_order_earns_the_rebate():
    with Market(seed=4, **SHORT) as market:
        market.run_for(5)
        venue = market.spec.venues[0]
        ask = int(market.levels(venue.name, "sell", 1)["price_ticks"][0])
        client = market.submit(venue.name, "buy", 100, price_ticks=ask,
                               order_type=OrderType.POST_ONLY)
        reports = _wait_for(market, {int(ReportKind.REJECTED)})
        assert reports["client_order_id"][-1] == client
        assert reports["detail"][-1] == int(RejectReason.WOULD_TAKE)
        # Join the best bid and wait for the flow to reach it.
        bid = int(market.nbbo()["bid_price_ticks"])
        resting = market.submit(venue.name, "buy", 100, price_ticks=bid)
        fills = []
        for _ in range(600):
            market.run_for(1)
            got = market.reports()
            fills.append(got[(got["client_order_id"] == resting) & (got["kind"] == int(ReportKind.FILL))])
            if market.open_orders == 0:
                break
        fills = np.concatenate(fills)
        assert fills["quantity"].sum() == 100
        assert np.all(fills["detail"] == int(Liquidity.ADDED))
        assert np.all(fills["fee_usd"] < 0)  # maker rebate


def test_dark_pool_fills_at_the_midpoint_and_refuses_market_orders():
    with Market("dark_rich", seed=6, **SHORT) as market:
        market.run_for(120)
        assert market.hidden_quantity("DARK", "sell") + market.hidden_quantity("DARK", "buy") > 0
        side = "buy" if market.hidden_quantity("DARK", "sell") >= market.hidden_quantity("DARK", "buy") else "sell"
        q = market.nbbo()
        mid = (int(q["bid_price_ticks"]) + int(q["ask_price_ticks"])) // 2
        client = market.submit("DARK", side, 500, order_type=OrderType.IOC,
                               price_ticks=mid)
        reports = _wait_for(market, {int(ReportKind.FILL), int(ReportKind.CANCELLED)})
        fills = reports[(reports["client_order_id"] == client) & (reports["kind"] == int(ReportKind.FILL))]
        assert fills["quantity"].sum() > 0
        assert np.all(fills["detail"] == int(Liquidity.MIDPOINT))
        assert np.all(fills["price_ticks"] == mid)
        bad = market.submit("DARK", "buy", 100, order_type=OrderType.MARKET)
        reports = _wait_for(market, {int(ReportKind.REJECTED)})
        assert reports[reports["client_order_id"] == bad]["detail"][0] == int(RejectReason.UNSUPPORTED_TYPE)


def test_bad_orders_and_late_cancels_are_rejected_with_a_reason_and_the_market_goes_on():
    with Market(seed=8, **SHORT) as market:
        market.run_for(2)
        bid = int(market.nbbo()["bid_price_ticks"])
        cases = {
            market.submit("XNAS", "buy", 100, price_ticks=bid + 1): RejectReason.BAD_PRICE,
            market.submit("XNAS", "buy", 0, price_ticks=bid): RejectReason.BAD_QUANTITY,
            market.submit(17, "buy", 100, price_ticks=bid): RejectReason.UNKNOWN_VENUE,
            market.submit("XNAS", "buy", 100, price_ticks=bid, instrument_id=9):
                RejectReason.UNKNOWN_INSTRUMENT,
        }
        market.cancel(999_999)
        market.run_for(1)
        reports = market.reports()
        for client, reason in cases.items():
            row = reports[reports["client_order_id"] == client]
            assert row["kind"][0] == int(ReportKind.REJECTED)
            assert row["detail"][0] == int(reason)
        late = reports[reports["client_order_id"] == 999_999]
        assert late["detail"][0] == int(RejectReason.UNKNOWN_ORDER)
        resting = market.submit("XNAS", "buy", 100, price_ticks=bid - 1000)
        market.run_for(0.5)
        market.cancel(resting)
        market.run_for(0.5)
        reports = market.reports()
        assert int(ReportKind.CANCELLED) in reports[reports["client_order_id"] == resting]["kind"]
        assert market.counters()["book_errors"] == 0
        before = market.counters()["events"]
        market.run_for(10)
        assert market.counters()["events"] > before


def test_impossible_scenarios_name_what_is_wrong(tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text('[scenario]\nbase = "default"\n[venue_overrides.XNAS]\ntick_size_ticks = 101\n')
    with pytest.raises(ConfigError, match="XNAS.*even"):
        load_scenario(path)
    path.write_text('[scenario]\nbase = "default"\n[flow]\nlimit_rate_per_sec = 3.0\n')
    with pytest.raises(ConfigError, match="limit_rate_per_sec"):
        load_scenario(path)
    path.write_text('[scenario]\nbase = "default"\n[flow]\nhawkes_branching_ratio = 1.2\n')
    with pytest.raises(ConfigError, match="explodes"):
        load_scenario(path)
    with pytest.raises(ConfigError, match="unknown scenario"):
        load_scenario("nonesuch")
    with pytest.raises(UsageError):
        _core.MarketSimulatorCore(_core.SimMarketSpec())  # no venues


def test_closed_market_says_so():
    market = Market(**SHORT)
    market.close()
    with pytest.raises(MarketClosedError):
        market.run_for(1)


def test_toxic_venue_concentrates_informed_trades():
    with Market("toxic_venue", seed=9, session_length_ns=3600 * 10**9,
                quote_sample_interval_ns=0) as market:
        market.run_session()
        trades = market.trades()
        informed = trades[trades["informed"] == 1]
        assert len(informed) > 50
        edgx = int(market.venue_id("EDGX"))
        assert np.mean(informed["venue_id"] == edgx) > 0.8


def test_our_buying_raises_the_price_against_the_same_seed_without_us():
    from sor.sim.experiments import MetaorderExperiment, _baseline, _execute

    experiment = MetaorderExperiment(warmup_s=30, duration_s=120, child_interval_s=5)
    scenario = load_scenario("default")
    _, end_without, _ = _baseline(scenario, 4, experiment)
    end_with, executed = _execute(scenario, 4, 100_000, "buy", experiment)
    assert executed > 90_000
    assert end_with - end_without > 500  # ticks: more than five cents


@pytest.mark.slow
def test_metaorder_experiment_gives_the_square_root_law():
    from sor.sim.experiments import MetaorderExperiment, run_metaorder_experiment
    from sor.sim.stylized import fit_square_root_impact

    experiment = MetaorderExperiment(seeds=tuple(range(1, 17)))
    metaorders = run_metaorder_experiment(experiment)
    fit = fit_square_root_impact(metaorders, bin_count=len(experiment.sizes_shares),
                                 bootstrap_samples=200)
    assert 0.4 <= fit.exponent <= 0.7, fit


@pytest.mark.slow
def test_default_scenario_passes_the_stylized_facts():
    from sor.sim.experiments import record_days
    from sor.sim.stylized import stylized_facts

    recording = record_days("default", (1, 2))
    facts = stylized_facts(recording.quotes, recording.bid_depth, recording.ask_depth,
                           trades=recording.trades, return_horizon_ns=30 * 10**9)
    failing = [c.name for group in (facts.heavy_tails, facts.volatility_clustering, facts.spread,
                                    facts.depth, facts.queue_depletion)
               for c in group.checks if c.band is not None and not c.band.contains(c.value)]
    assert failing == []


def test_lit_midpoint_peg_fills_at_the_midpoint_and_keeps_the_book_consistent():
    with Market(seed=1, **SHORT) as market:
        market.run_for(30)
        client = market.submit("BATS", "buy", 5_000, order_type=OrderType.MIDPOINT_PEG)
        market.run_for(60)
        reports = market.reports()
        fills = reports[(reports["client_order_id"] == client) & (reports["kind"] == int(ReportKind.FILL))]
        assert fills["quantity"].sum() > 0
        assert np.all(fills["detail"] == int(Liquidity.MIDPOINT))
        assert np.all(fills["price_ticks"] % 50 == 0)  # a midpoint of the one-cent grid
        assert market.counters()["book_errors"] == 0
