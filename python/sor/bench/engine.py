"""Tick-to-decision latency of the engine: a market-data record written to the md ring until
the child order it triggers is visible in the order ring, with the engine as a thread of this
process and as a separate ``sor engine`` process (run by ``sor bench engine``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from sor import _core
from sor.bench.book import _percentiles, hardware
from sor.config import RouterConfig, default_config, save
from sor.engine import Engine
from sor.ring import EXEC_REPORT_DTYPE, MD_EVENT_DTYPE

TARGETS = {"p50_ns": 1_500.0, "p99_ns": 3_000.0}
ASK_PRICE_TICKS = 1_000_100
BID_PRICE_TICKS = 1_000_000
STAGES = ["book (L3/L2 per venue, consolidated NBBO)", "features: pass-through (issue 5)",
          "models: pass-through (issue 5)", "policy: baseline liquidity taker (all-in price)",
          "risk: hard limits (risk state, venue, restricted, quantity, notional, gross, price "
          "band, reference collar, open orders, order and message rates, participation, "
          "credit, position, model guard)"]


def bench_config() -> RouterConfig:
    """Returns the default configuration with limits wide enough for a long run."""
    config = default_config()
    risk = config.risk.replace(max_parent_quantity_shares=10**9, max_order_quantity_shares=10_000,
                               max_open_orders=10_000, max_orders_per_second=10**7,
                               max_gross_notional_usd=1e13, max_order_notional_usd=1e7,
                               max_parent_notional_usd=1e13, max_messages_per_second=10**7,
                               default_credit_limit_usd=1e13,
                               default_max_position_shares=10**12)
    engine = config.engine.replace(idle_strategy="spin")
    return config.replace(risk=risk, engine=engine)


def _lit_venues(config: RouterConfig) -> list[int]:
    return [v.venue_id for v in config.venues if v.lit and v.book_type == _core.BookType.L3]


def _prepare(engine: Engine) -> None:
    """Seeds a one-level book on every lit L3 venue and starts an unlimited buy parent."""
    venues = _lit_venues(engine.config)
    events = np.zeros(2 * len(venues), MD_EVENT_DTYPE)
    for i, venue in enumerate(venues):
        for j, (side, price) in enumerate(((1, BID_PRICE_TICKS), (2, ASK_PRICE_TICKS))):
            row = events[2 * i + j]
            row["kind"], row["venue_id"], row["side"] = 1, venue, side
            row["price_ticks"], row["quantity"], row["order_id"] = price, 100, 1 + 2 * i + j
    engine.publish_market_data(events)
    engine.submit_parent(1, 0, "buy", 10**9)
    engine.wait_idle()
    orders = engine.read_orders()  # the arrival sweep of the seeded offers: fill them
    fills = np.zeros(len(orders), EXEC_REPORT_DTYPE)
    fills["kind"] = 2
    fills["child_order_id"] = orders["child_order_id"]
    fills["parent_order_id"] = orders["parent_order_id"]
    fills["last_quantity"] = orders["quantity"]
    engine.send_executions(fills)
    engine.wait_idle()
    engine.read_audit()


def _measure(engine: Engine, samples: int, cpu: int) -> dict[str, Any]:
    _prepare(engine)
    engine.release_rings()  # the C++ harness takes the md, exec and order ring ends
    raw = _core.bench_tick_to_decision(engine.name, 0, _lit_venues(engine.config),
                                       ASK_PRICE_TICKS, samples, min(5_000, samples), cpu)
    latency = raw["latency_ns"]
    counters = engine.counters()
    return {
        "samples": int(latency.size), "timeouts": int(raw["timeouts"]),
        "bench_thread_pinned": bool(raw["pinned"]),
        **_percentiles(latency),
        "p999_ns": float(np.percentile(latency, 99.9)) if latency.size else float("nan"),
        "max_ns": float(latency.max()) if latency.size else float("nan"),
        "engine_pinned_cpu": engine.status()["pinned_cpu"],
        "child_orders": counters["child_orders"], "risk_rejects": counters["risk_rejects"],
        "audit_ring_refused": counters["audit_ring_refused"],
    }


def _cpus() -> tuple[int, int | None]:
    """Returns (benchmark cpu, engine cpu): two different cores when there are two."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        return allowed[0], allowed[-1]
    return -1, None


def _thread_mode(samples: int) -> dict[str, Any]:
    bench_cpu, engine_cpu = _cpus()
    with Engine(bench_config(), name=f"sor-bench-{os.getpid()}", cpu=engine_cpu) as engine:
        return _measure(engine, samples, bench_cpu)


def _process_mode(samples: int) -> dict[str, Any]:
    bench_cpu, engine_cpu = _cpus()
    name = f"sor-bench-proc-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.toml")
        save(bench_config(), path)
        command = [sys.executable, "-m", "sor.cli", "engine", "--config", path, "--name", name]
        if engine_cpu is not None:
            command += ["--cpu", str(engine_cpu)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) as process:
            try:
                process.stdout.readline()
                engine = None
                for _ in range(4000):
                    engine = Engine.attach(name, bench_config())
                    if engine.state == "running":
                        break
                    engine.close()
                    time.sleep(0.005)
                result = _measure(engine, samples, bench_cpu)
                result["engine_pid"] = process.pid
                engine.stop()
                process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
    return result


def run(samples: int = 100_000, modes: list[str] | None = None) -> dict[str, Any]:
    """Measures tick-to-decision latency for each engine placement; returns the report."""
    modes = modes or ["thread", "process"]
    results: dict[str, Any] = {}
    for mode in modes:
        results[mode] = _thread_mode(samples) if mode == "thread" else _process_mode(samples)
        for key, target in TARGETS.items():
            results[mode][f"meets_{key}_target"] = results[mode][key] <= target
    return {"benchmark": "engine tick-to-decision", "hardware": hardware(), "stages": STAGES,
            "targets": TARGETS, "results": results,
            "note": "targets apply once the model stages are in (issue 5); measured here with "
                    "the stages that exist"}


def format_report(report: dict[str, Any]) -> str:
    """Formats the report as a table."""
    lines = [f"engine tick-to-decision on {report['hardware']['cpu']} "
             f"({report['hardware']['logical_cpus']} cpus)",
             "stages: " + "; ".join(report["stages"]),
             f"{'mode':8} {'samples':>8} {'p50 ns':>8} {'p99 ns':>8} {'p99.9 ns':>9} "
             f"{'max ns':>9} {'timeouts':>8}  engine cpu"]
    for mode, r in report["results"].items():
        lines.append(f"{mode:8} {r['samples']:>8} {r['p50_ns']:>8.0f} {r['p99_ns']:>8.0f} "
                     f"{r['p999_ns']:>9.0f} {r['max_ns']:>9.0f} {r['timeouts']:>8}  "
                     f"{r['engine_pinned_cpu']}")
    lines.append(f"targets (once models are in): p50 <= {TARGETS['p50_ns']:.0f} ns, "
                 f"p99 <= {TARGETS['p99_ns']:.0f} ns")
    return "\n".join(lines)
