"""`sor bench sim`: the market simulator's speed on one 6.5-hour day with five venues, with
and without ITCH feeds, its determinism, and nautilus_trader's BacktestEngine on a comparable
stream as the ratio peer."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from sor.bench.book import hardware
from sor.sim import Market

TARGETS = {"events_per_second": 5_000_000.0, "day_seconds": 10.0}
_NS_PER_S = 1_000_000_000


def _chunked_day(scenario: str, seed: int, *, feeds: bool, chunk_s: float,
                 session_s: float | None) -> dict[str, Any]:
    """Runs one session in chunks of simulated time; returns totals and per-chunk rates."""
    extra = {} if session_s is None else {"session_length_ns": int(session_s * _NS_PER_S)}
    with Market(scenario, seed=seed, record_feeds=feeds, record_trades=False,
                quote_sample_interval_ns=0, **extra) as market:
        venues = [v.name for v in market.spec.venues]
        rates = []
        feed_bytes = 0
        digest = hashlib.sha256()
        events_before = market.counters()["events"]
        start = time.perf_counter()
        busy = 0.0
        while market.now_ns < market.session_end_ns:
            t0 = time.perf_counter()
            e0 = market.counters()["events"]
            market.run_until(min(market.now_ns + int(chunk_s * _NS_PER_S), market.session_end_ns))
            elapsed = time.perf_counter() - t0
            busy += elapsed
            events = market.counters()["events"] - e0
            if elapsed > 0 and events > 0:
                rates.append(events / elapsed)
            if feeds:
                for name in venues:
                    chunk = market.feed(name)
                    feed_bytes += len(chunk)
                    digest.update(chunk)
        wall = time.perf_counter() - start
        events = market.counters()["events"] - events_before
        counters = market.counters()
        return {
            "events": events,
            "day_seconds": wall,
            "simulate_seconds": busy,
            "events_per_second": events / busy if busy > 0 else 0.0,
            "chunk_events_per_second": {
                "p1": float(np.percentile(rates, 1)), "p50": float(np.percentile(rates, 50)),
                "p99": float(np.percentile(rates, 99))},
            "feed_bytes": feed_bytes,
            "feed_sha256": digest.hexdigest() if feeds else None,
            "trades": counters["trades"],
            "book_errors": counters["book_errors"],
            "venues": len(venues),
        }


def _fingerprint(scenario: str, seed: int, seconds: float) -> str:
    """Returns a hash of every venue's ITCH bytes and the tape over the first `seconds`."""
    with Market(scenario, seed=seed, record_feeds=True, quote_sample_interval_ns=0) as market:
        market.run_for(seconds)
        digest = hashlib.sha256(market.trades().tobytes())
        for v in market.spec.venues:
            digest.update(market.feed(v.name))
        return digest.hexdigest()


def run(*, scenario: str = "default", seed: int = 1, chunk_s: float = 60.0,
        peer_events: int = 1_000_000, with_peer: bool = True,
        session_s: float | None = None) -> dict[str, Any]:
    """Runs the benchmark and returns the report (see bench/README.md); ``session_s`` shortens
    the session (the targets are about the full 6.5 hours)."""
    core = _chunked_day(scenario, seed, feeds=False, chunk_s=chunk_s, session_s=session_s)
    feeds = _chunked_day(scenario, seed, feeds=True, chunk_s=chunk_s, session_s=session_s)
    check_s = 600.0 if session_s is None else min(600.0, session_s)
    same = _fingerprint(scenario, seed, check_s) == _fingerprint(scenario, seed, check_s)
    report: dict[str, Any] = {
        "benchmark": "sim",
        "hardware": hardware(),
        "scenario": scenario,
        "seed": seed,
        "session_hours": (23_400.0 if session_s is None else session_s) / 3600.0,
        "sor_sim": core,
        "sor_sim_with_itch_feeds": feeds,
        "deterministic_same_seed": same,
        "targets": TARGETS,
        "meets_targets": {
            "events_per_second": core["events_per_second"] >= TARGETS["events_per_second"],
            "day_seconds": core["day_seconds"] <= TARGETS["day_seconds"],
        },
    }
    if with_peer:
        from sor.bench.sim_peer import comparable_stream, run_nautilus_backtest

        stream = comparable_stream(seed, peer_events, venue_count=5)
        peer = run_nautilus_backtest(stream)
        report["nautilus_backtest"] = {
            "events": peer.event_count, "run_seconds": peer.run_seconds,
            "setup_seconds": peer.setup_seconds, "events_per_second": peer.events_per_second,
            "version": peer.nautilus_version,
            "day_seconds_extrapolated": core["events"] / peer.events_per_second,
        }
        report["ratio_events_per_second_vs_nautilus"] = core["events_per_second"] / peer.events_per_second
    return report


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a human-readable table."""
    core, feeds = report["sor_sim"], report["sor_sim_with_itch_feeds"]
    lines = [
        f"sor bench sim  scenario={report['scenario']} seed={report['seed']}  "
        f"({core['venues']} venues, one {report['session_hours']:.2f}-hour session)",
        f"  hardware: {report['hardware'].get('cpu', '?')}",
        f"  {'run':<34}{'events':>12}{'day (s)':>10}{'events/s':>14}{'chunk p1/p50/p99 (M/s)':>26}",
    ]
    for name, r in (("sor sim (core)", core), ("sor sim + ITCH 5.0 feeds", feeds)):
        c = r["chunk_events_per_second"]
        lines.append(f"  {name:<34}{r['events']:>12,}{r['day_seconds']:>10.2f}"
                     f"{r['events_per_second']:>14,.0f}"
                     f"{c['p1'] / 1e6:>10.2f}/{c['p50'] / 1e6:.2f}/{c['p99'] / 1e6:.2f}")
    if "nautilus_backtest" in report:
        p = report["nautilus_backtest"]
        lines.append(f"  {'nautilus_trader BacktestEngine ' + p['version']:<34}{p['events']:>12,}"
                     f"{p['day_seconds_extrapolated']:>10.1f}{p['events_per_second']:>14,.0f}"
                     "   (day extrapolated)")
        lines.append(f"  ratio sor/nautilus events per second: "
                     f"{report['ratio_events_per_second_vs_nautilus']:.1f}x")
    lines.append(f"  ITCH bytes per day: {feeds['feed_bytes']:,}; book errors: {core['book_errors']}")
    lines.append(f"  same seed, same bytes (ITCH feeds and tape, 10 minutes, twice): "
                 f"{'yes' if report['deterministic_same_seed'] else 'NO'}")
    t, m = report["targets"], report["meets_targets"]
    lines.append(f"  targets: >= {t['events_per_second'] / 1e6:.0f}M events/s: "
                 f"{'met' if m['events_per_second'] else 'NOT met'}; day <= {t['day_seconds']:.0f} s: "
                 f"{'met' if m['day_seconds'] else 'NOT met'}")
    return "\n".join(lines)
