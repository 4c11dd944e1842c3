"""`sor demo`: the whole router on one host, on embedded defaults.

1. The simulated venues (``sor.fix.venue.VenueServer``: the default scenario's four lit
   exchanges and dark pool, in real time) listen as FIX acceptors and publish their market
   data over UDP.
2. The router (``sor.fix.gateway.Gateway``: the C++ engine hosting the ML router with the
   shipped models, its FIX gateway and its market-data receiver) logs on to every venue and
   listens for the OMS.
3. An OMS client (``sor.fix.oms.OmsClient``) sends a set of parent orders over FIX and follows
   them through their ExecutionReports; progress is printed as they work.
4. At the end, a TCA summary: each parent's implementation shortfall against the arrival mid
   (fees included), and the same orders backtested with the classical baselines on the same
   simulated market.

Everything runs on localhost on free ports, with its state in a temporary folder.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import sor
from sor.config import RouterConfig, default_config, with_changes
from sor.errors import UsageError
from sor.fix import codec

DEFAULT_POLICY = "ml_router"
BASELINES = ("best_price", "twap", "vwap", "almgren_chriss")
"""The classical policies the demo's orders are backtested with for the TCA summary."""
BASELINE_SEEDS = tuple(range(9001, 9009))


@dataclass(frozen=True)
class DemoOrder:
    """One parent order the demo's OMS sends: `delay_s` after the first, due `horizon_s` later
    (TimeInForce GTD with ExpireTime: the router finishes it by then)."""

    symbol: str
    side: str
    quantity: int
    horizon_s: float
    delay_s: float


DEFAULT_ORDERS = (
    DemoOrder("AAPL", "buy", 20_000, 30.0, 0.0),
    DemoOrder("MSFT", "sell", 20_000, 30.0, 2.0),
    DemoOrder("AAPL", "buy", 10_000, 20.0, 8.0),
    DemoOrder("MSFT", "sell", 15_000, 20.0, 10.0),
)
"""Two symbols, one side each (the router never trades against itself)."""


@dataclass
class LiveOrder:
    """A demo order as it happened: arrival, fills (ticks, shares, venue, liquidity), end."""

    order: DemoOrder
    cl_ord_id: str
    side_sign: int
    instrument_id: int
    sent_ns: int
    arrival_mid_ticks: float
    end_mid_ticks: float = math.nan
    fills: list[tuple[int, int, str, int]] | None = None
    view: Any = None  # the OMS client's OrderView of it


def _dollars(ticks: float, tick_usd: float) -> str:
    return f"{ticks * tick_usd:,.4f}"


def _true_mid(venues: Any, instrument_id: int) -> float:
    """Returns the simulator's NBBO mid now (ticks; nan when one-sided)."""
    def read() -> float:
        nbbo = venues.market.nbbo(instrument_id)
        bid, ask = int(nbbo["bid_price_ticks"]), int(nbbo["ask_price_ticks"])
        return 0.5 * (bid + ask) if bid > 0 and ask > bid else math.nan

    return float(venues.call(read))


def _fee_usd(config: RouterConfig, venue_name: str, liquidity: int, shares: int) -> float:
    """Returns the fee of one fill (rebates negative): maker fee when it added liquidity,
    taker fee otherwise (a midpoint fill that crossed on arrival is a take)."""
    try:
        fees = config.venue(venue_name).fees
    except Exception:
        return 0.0
    per_share = fees.maker_fee_usd_per_share if liquidity == 1 else fees.taker_fee_usd_per_share
    return (per_share + fees.routing_fee_usd_per_share) * shares


def router_sessions(venue_port: int, *, oms_port: int = 0) -> list[Any]:
    """Returns the router's embedded sessions pointed at venues listening on `venue_port`, its
    OMS acceptor on `oms_port` (0: a free port)."""
    from sor.fix.gateway.runner import default_sessions

    sessions = []
    for config in default_sessions():
        if config.application == "venue":
            config = config.replace(port=venue_port)
        elif config.application == "oms":
            config = config.replace(port=oms_port)
        sessions.append(config)
    return sessions


def _backtest(orders: Sequence[LiveOrder], policies: Sequence[str], seeds: Sequence[int],
              scenario: str) -> dict[str, list[float]]:
    """Returns, per policy, each order's mean implementation shortfall (bps) over `seeds`."""
    from sor.backtest.metrics import episode_metrics
    from sor.backtest.runner import SHIPPED, EpisodeSpec, run_episode

    results: dict[str, list[float]] = {}
    for policy in policies:
        per_order = []
        for live in orders:
            spec = EpisodeSpec(side=live.order.side, quantity=live.order.quantity,
                               horizon_s=live.order.horizon_s, start_offset_s=60.0)
            values = [episode_metrics(run_episode(policy, None, scenario, seed, spec=spec,
                                                  models=SHIPPED))["is_bps"] for seed in seeds]
            per_order.append(float(np.mean(values)))
        results[policy] = per_order
    return results


def run_demo(*, seed: int = 2026, policy: str = DEFAULT_POLICY,
             orders: Sequence[DemoOrder] = DEFAULT_ORDERS, time_scale: float = 1.0,
             baseline_seeds: Sequence[int] = BASELINE_SEEDS, progress_interval_s: float = 2.0,
             console_port: int | None = 0, hold_s: float = 0.0,
             audit_dir: str | os.PathLike[str] | None = None,
             out: Callable[[str], Any] = print) -> int:
    """Runs the demo and prints its progress and TCA; returns the process exit code (0 when
    every order finished, every parent's CumQty, LeavesQty and AvgPx agree with its fills and
    the fat-finger order was refused by the pre-trade controls with its reason).

    The router serves its operator console on `console_port` (0: a free port, None: none) and
    stays up `hold_s` seconds after the orders are done so it can be looked at; its audit
    journal goes to `audit_dir` (None: the temporary state folder, gone at the end)."""
    if not orders:
        raise UsageError("the demo needs at least one order")
    if not time_scale > 0:
        raise UsageError(f"time_scale must be > 0, got {time_scale}")
    if not hold_s >= 0:
        raise UsageError(f"hold_s must be >= 0, got {hold_s}")
    from sor.backtest.metrics import implementation_shortfall
    from sor.fix.gateway import Gateway
    from sor.fix.oms import OmsClient
    from sor.fix.venue.server import VenueServer
    from sor.models.registry import ModelRegistry

    # an engine name of its own: another router (or demo) on this host keeps its segments
    config = with_changes(default_config(), {"engine.name": f"sor-demo-{os.getpid()}"})
    tick_usd = config.price_tick_usd
    scenario = "default"
    registry = ModelRegistry()
    out(f"sor {sor.__version__} demo: simulated venues ({', '.join(v.name for v in config.venues)})"
        f" as FIX acceptors, the router ({policy}, models: {', '.join(registry.names())}), an "
        f"OMS with {len(orders)} parent orders; seed {seed}")
    with tempfile.TemporaryDirectory(prefix="sor-demo-") as state, \
            VenueServer(seed=seed, fix_port=0, md_port=0) as venues:
        venue_port = venues.fix_address()[1]
        out(f"venues: FIX on 127.0.0.1:{venue_port}, market data on udp "
            f"{venues.md_address[0]}:{venues.md_address[1]}")
        gateway = Gateway(config, router_sessions(venue_port), state_dir=state, models=registry,
                          policy=policy, market_data=venues.md_address,
                          console_port=console_port, audit_dir=audit_dir)
        with gateway:
            gateway.start_thread()
            _wait(lambda: all(s["state"] == "active" for name, s in
                              gateway.status()["sessions"].items() if not name.startswith("OMS")),
                  10.0, "the router's venue sessions to log on")
            _wait(lambda: gateway.engine.counters()["md_events"] > 1_000, 10.0,
                  "market data to reach the engine")
            out(f"router: logged on to {len(config.venues)} venues; engine has "
                f"{gateway.engine.counters()['md_events']:,} market-data events; OMS acceptor on "
                f"127.0.0.1:{gateway.oms_port}")
            if gateway.console is not None:
                out(f"operator console: {gateway.console.url} (Prometheus metrics at "
                    f"{gateway.console.url.rstrip('/')}/metrics)")
            with OmsClient("127.0.0.1", gateway.oms_port, store_dir=state + "/oms") as oms:
                oms.wait_logged_on()
                fat_finger = _fat_finger(oms, config, out)
                live = _send_and_follow(oms, venues, config, orders, time_scale,
                                        progress_interval_s, out, gateway)
                if hold_s > 0:
                    out(f"orders done; the router and its console stay up {hold_s:g} s")
                    time.sleep(hold_s)
            counters = gateway.engine.counters()
            status = gateway.status()
            model = gateway.engine.model_status()
            journal_path = gateway.audit_journal.path if gateway.audit_journal is not None \
                else None
            receiver = gateway.market_data_receiver
            feed_stats = dict(receiver.stats) if receiver is not None else {}
        out(f"\nrouter: {counters['child_orders']:,} child orders, "
            f"{counters['filled_quantity']:,} shares filled, {counters['policy_decisions']:,} "
            f"policy decisions, {counters['risk_rejects']} risk rejects; "
            f"{status['counters'].get('children_sent', 0)} children over FIX; market data: "
            f"{counters['md_events']:,} events, {counters['md_rejected']} refused by the books, "
            f"receiver {feed_stats}")
        ok = _guardrail_summary(fat_finger, counters, model, journal_path, audit_dir is not None,
                                out)

    out("\nTCA: implementation shortfall against the arrival mid, bps of arrival notional, fees "
        "included (> 0 costs)")
    header = f"  {'order':<24}{'filled':>14}{'avg px':>12}{'arrival':>12}{'IS':>8}{'fees':>7}"
    out(header)
    live_is: list[float] = []
    for item in live:
        view = item.view
        prices = np.array([p for p, _, _, _ in item.fills or []], dtype=np.int64)
        shares = np.array([q for _, q, _, _ in item.fills or []], dtype=np.int64)
        fees = sum(_fee_usd(config, venue, liquidity, q) for _, q, venue, liquidity in item.fills or [])
        parts = implementation_shortfall(item.side_sign, item.order.quantity, prices, shares,
                                         fees, item.arrival_mid_ticks, item.end_mid_ticks,
                                         tick_usd)
        live_is.append(parts["is_bps"])
        consistent = _consistent(view, prices, shares, tick_usd)
        ok = ok and consistent and view.done
        avg = float((prices * shares).sum() / shares.sum()) if shares.sum() else math.nan
        name = f"{item.order.symbol} {item.order.side} {item.order.quantity:,}"
        out(f"  {name:<24}{view.cum_quantity:>8,}/{item.order.quantity:<5,}"
            f"{_dollars(avg, tick_usd):>12}{_dollars(item.arrival_mid_ticks, tick_usd):>12}"
            f"{parts['is_bps']:>8.2f}{parts['fees_bps']:>7.2f}"
            f"{'' if consistent else '  CumQty/AvgPx DISAGREE with the fills'}")
    weights = np.array([i.order.quantity for i in live], dtype=np.float64)
    live_mean = float(np.average(live_is, weights=weights))
    out(f"  {'all (share-weighted)':<24}{'':>26}{'':>12}{live_mean:>8.2f}")

    policies = (*BASELINES, policy) if policy not in BASELINES else BASELINES
    out(f"\nthe same orders backtested on the simulated market (scenario {scenario}, seeds "
        f"{baseline_seeds[0]}-{baseline_seeds[-1]}), mean IS in bps:")
    t0 = time.perf_counter()
    backtested = _backtest(live, policies, baseline_seeds, scenario)
    names = [f"{i.order.symbol} {i.order.side} {i.order.quantity:,}" for i in live]
    out(f"  {'policy':<16}" + "".join(f"{n:>22}" for n in names) + f"{'all':>10}")
    out(f"  {policy + ' (live)':<16}" + "".join(f"{v:>22.2f}" for v in live_is) +
        f"{live_mean:>10.2f}")
    best_baseline = math.inf
    for name, values in backtested.items():
        mean = float(np.average(values, weights=weights))
        if name in BASELINES:
            best_baseline = min(best_baseline, mean)
        out(f"  {name:<16}" + "".join(f"{v:>22.2f}" for v in values) + f"{mean:>10.2f}")
    out(f"  ({len(policies) * len(live) * len(baseline_seeds)} backtests in "
        f"{time.perf_counter() - t0:.1f} s)")
    out(f"\nlive {policy}: {live_mean:.2f} bps; best classical baseline in backtest: "
        f"{best_baseline:.2f} bps")
    out("every parent finished and its CumQty/LeavesQty/AvgPx match its fills; the fat finger "
        "was refused" if ok else
        "SOME PARENTS DID NOT FINISH OR DISAGREE WITH THEIR FILLS, OR THE FAT FINGER WENT THROUGH")
    return 0 if ok else 1


def _fat_finger(oms: Any, config: RouterConfig, out: Callable[[str], Any]) -> Any:
    """Sends an order far above the parent notional limit, as a fat finger would; returns the
    OMS's view of it (the pre-trade controls refuse it, with the reason, at once)."""
    quantity = config.risk.max_parent_quantity_shares
    cl_ord_id = oms.new_order("AAPL", "buy", quantity, time_in_force="0")
    view = oms.order(cl_ord_id)
    _wait(lambda: view.done, 10.0, "the router's answer to the fat-finger order")
    rejects = [r for r in view.reports if r.msg_type == "8" and r.ord_status == "8"]
    text = rejects[-1].text if rejects else None
    out(f"  0.0s  OMS -> router: buy {quantity:,} AAPL (a fat finger): "
        f"{'rejected: ' + str(text) if rejects else 'NOT REJECTED'}")
    return view


def _guardrail_summary(fat_finger: Any, counters: dict[str, Any], model: dict[str, Any],
                       journal_path: str | None, kept: bool, out: Callable[[str], Any]) -> bool:
    """Prints what the guardrails did; returns whether the fat-finger order was refused."""
    refused = fat_finger.ord_status == "8"
    from sor import _core

    names = {int(v): k for k, v in _core.RejectReason.__members__.items()}
    reasons = ", ".join(f"{names.get(i, i)} {n}" for i, n in
                        enumerate(counters.get("risk_rejects_by_reason") or ()) if n) or "none"
    out(f"guardrails: risk state {counters['risk_state']}, routing on {model['mode']} "
        f"(policy {model['policy']}, fallback {model['fallback_policy']}, guard trips "
        f"{model['trips']}); refusals by reason: {reasons}")
    if journal_path is not None:
        from sor.monitor.journal import read_journal

        summary = read_journal(journal_path).summary()
        out(f"audit journal: {summary['decisions']:,} decisions ({summary['children_sent']:,} "
            f"children sent, {summary['risk_rejected']} refused by risk), {summary['audit']:,} "
            f"engine audit records, {summary['events']} events; " +
            (f"query it with `sor audit {journal_path}`" if kept else
             "it goes with the temporary folder (--audit-dir keeps it)"))
    return refused


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: waited {timeout_s} s for {what}")
        time.sleep(0.02)


def _send_and_follow(oms: Any, venues: Any, config: RouterConfig, orders: Sequence[DemoOrder],
                     time_scale: float, progress_interval_s: float,
                     out: Callable[[str], Any], gateway: Any) -> list[LiveOrder]:
    """Sends the orders on their schedule and prints progress until all are done."""
    tick_usd = config.price_tick_usd
    start = time.monotonic()
    pending = sorted(orders, key=lambda o: o.delay_s)
    live: list[LiveOrder] = []
    deadline = start + max(o.delay_s + o.horizon_s for o in orders) * time_scale + 30.0
    next_progress = start
    while True:
        now = time.monotonic()
        while pending and now - start >= pending[0].delay_s * time_scale:
            order = pending.pop(0)
            instrument_id = config.instrument(order.symbol).instrument_id
            arrival = _true_mid(venues, instrument_id)
            horizon_ns = int(order.horizon_s * time_scale * 1e9)
            cl_ord_id = oms.new_order(order.symbol, order.side, order.quantity,
                                      time_in_force="6", expire_time_ns=time.time_ns() + horizon_ns)
            item = LiveOrder(order, cl_ord_id, 1 if order.side == "buy" else -1, instrument_id,
                             time.time_ns(), arrival)
            item.view = oms.order(cl_ord_id)
            live.append(item)
            out(f"{now - start:6.1f}s  OMS -> router: {order.side} {order.quantity:,} "
                f"{order.symbol}, due in {order.horizon_s * time_scale:.0f} s ({cl_ord_id}); "
                f"arrival mid {_dollars(arrival, tick_usd)}")
        for item in live:
            if item.view.done and math.isnan(item.end_mid_ticks):
                item.end_mid_ticks = _true_mid(venues, item.instrument_id)
        if now >= next_progress:
            next_progress = now + progress_interval_s
            parts = []
            for item in live:
                view = item.view
                state = {"2": "filled", "3": "done for day", "4": "canceled",
                         "8": "rejected"}.get(view.ord_status or "", "working")
                parts.append(f"{item.order.symbol} {view.cum_quantity:>6,}/{item.order.quantity:,}"
                             f" @ {view.avg_price or '-'} {state}")
            if parts:
                receiver = gateway.market_data_receiver
                feed = (f"md {gateway.engine.counters()['md_events']:,} "
                        f"{receiver.state.name.lower()}" if receiver is not None else "")
                out(f"{now - start:6.1f}s  " + " | ".join(parts) + f" | {feed}")
        if not pending and all(i.view.done for i in live):
            break
        if now > deadline:
            out("demo: orders still working past their deadline; stopping")
            break
        time.sleep(0.05)
    for item in live:
        view = item.view
        item.fills = [(codec.price_from_fix(r.last_price, tick_usd), r.last_quantity,
                       r.last_market or "", r.liquidity or 0)
                      for r in view.reports if r.msg_type == "8" and r.is_fill]
        if math.isnan(item.end_mid_ticks):
            item.end_mid_ticks = _true_mid(venues, item.instrument_id)
    return live


def _consistent(view: Any, prices: np.ndarray, shares: np.ndarray, tick_usd: float) -> bool:
    """Returns whether the order's last CumQty, LeavesQty and AvgPx agree with its fills."""
    filled = int(shares.sum())
    if view.cum_quantity != filled:
        return False
    if view.ord_status in ("0", "1", "2") and view.leaves_quantity != view.quantity - filled:
        return False
    if filled == 0:
        return True
    avg = float((prices * shares).sum()) / filled * tick_usd
    return abs(float(view.avg_price) - avg) <= 1e-6 * max(1.0, avg)
