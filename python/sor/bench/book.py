"""`sor bench book`: per-update latency and throughput of sor's L3 and L2 books, and of the
peers a user would otherwise pick (hftbacktest, nautilus_trader) on the same stream, same run."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import numpy as np

import sor
from sor import _core
from sor.sim import level_updates, synthetic_order_flow

TARGETS = {"l2_p50_ns": 20.0, "l3_p50_ns": 40.0, "l3_p99_ns": 150.0,
           "vs_hftbacktest": 3.0, "vs_nautilus_trader": 10.0}


def hardware() -> dict[str, Any]:
    """Returns what the benchmark ran on."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "logical_cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "sor": sor.__version__}


def _percentiles(latency_ns: np.ndarray) -> dict[str, float]:
    p50, p99, p999 = np.percentile(latency_ns, [50, 99, 99.9])
    return {"p50_ns": float(p50), "p99_ns": float(p99), "p999_ns": float(p999),
            "mean_ns": float(latency_ns.mean())}


def _final_top(book) -> dict[str, int | None]:
    bid, ask = book.best_bid(), book.best_ask()
    return {"bid_price_ticks": bid[0] if bid else None, "bid_quantity": bid[1] if bid else None,
            "ask_price_ticks": ask[0] if ask else None, "ask_quantity": ask[1] if ask else None}


def _sor_side(events: np.ndarray, l3: bool) -> dict[str, Any]:
    measured = _core.bench_book(events, l3)
    book = sor.L3Book(0) if l3 else sor.L2Book(0)
    t0 = time.perf_counter_ns()
    book.apply(events)
    python_ns = time.perf_counter_ns() - t0
    return {
        **_percentiles(measured["latency_ns"]),
        "events": len(events),
        "throughput_per_s": measured["throughput_per_s"],
        "python_batch_throughput_per_s": len(events) / (python_ns / 1e9),
        "timer_overhead_ns": measured["timer_overhead_ns"],
        "per_update": "measured",
        "api": ("C++ L3Book::apply per event (rdtsc around each call)" if l3 else
                "C++ L2Book::apply per event (rdtsc around each call)")
               + "; throughput via apply_batch; python_batch = book.apply(numpy array), one call",
        "final_top": _final_top(book),
    }


def run(*, events: int = 500_000, seed: int = 7, peers: bool = True) -> dict[str, Any]:
    """Runs the benchmark and returns its report (see README / bench/README.md)."""
    l3 = synthetic_order_flow(seed=seed, event_count=events)
    l2 = level_updates(l3)
    mix = {name: int((l3["kind"] == int(kind)).sum()) for name, kind in sor.EventKind.__members__.items()
           if (l3["kind"] == int(kind)).any()}
    report: dict[str, Any] = {
        "benchmark": "book",
        "hardware": hardware(),
        "stream": {"generator": "sor.sim.synthetic_order_flow", "seed": seed, "l3_events": len(l3),
                   "l2_events": len(l2), "l3_mix": mix, "venues": 1, "instruments": 1},
        "sor": {"l3": _sor_side(l3, True), "l2": _sor_side(l2, False)},
        "peers": {},
        "targets": TARGETS,
    }
    if peers:
        from sor.bench import peers as peer_module
        for name, runner in (("hftbacktest", peer_module.run_hftbacktest),
                             ("nautilus_trader", peer_module.run_nautilus)):
            try:
                result = runner(l3, l2)
            except ModuleNotFoundError as missing:
                report["peers"][name] = {"error": str(missing)}
                continue
            for key in ("l3", "l2"):
                side = result.get(key)
                if not side:
                    continue
                ours = report["sor"][key]
                side["same_final_top_as_sor"] = side.get("final_top") == ours["final_top"]
                side["p50_ratio"] = side["p50_ns"] / max(ours["p50_ns"], 1e-9)
                side["p99_ratio"] = side["p99_ns"] / max(ours["p99_ns"], 1e-9)
                side["throughput_ratio"] = ours["throughput_per_s"] / side["throughput_per_s"]
            report["peers"][name] = result
    return report


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a table for a terminal."""
    hw = report["hardware"]
    lines = [f"sor bench book  (cpu: {hw['cpu']}, {hw['logical_cpus']} logical cpus, "
             f"python {hw['python']}, sor {hw['sor']})",
             f"stream: {report['stream']['l3_events']:,} L3 events, "
             f"{report['stream']['l2_events']:,} L2 events (seed {report['stream']['seed']})", "",
             f"{'book':<26}{'p50 ns':>9}{'p99 ns':>10}{'p99.9 ns':>10}{'Mevents/s':>11}"
             f"{'p50 x':>8}{'tput x':>8}  same state"]

    def row(label: str, r: dict[str, Any], ratio: bool) -> str:
        extra = (f"{r['p50_ratio']:>8.1f}{r['throughput_ratio']:>8.1f}  "
                 f"{'yes' if r['same_final_top_as_sor'] else 'NO'}") if ratio else f"{'':>8}{'':>8}"
        return (f"{label:<26}{r['p50_ns']:>9.1f}{r['p99_ns']:>10.1f}{r['p999_ns']:>10.1f}"
                f"{r['throughput_per_s'] / 1e6:>11.2f}{extra}")

    for key in ("l3", "l2"):
        lines.append(row(f"sor {key.upper()}", report["sor"][key], False))
        for name, result in report["peers"].items():
            if key in result:
                lines.append(row(f"{name} {key.upper()}", result[key], True))
    for name, result in report["peers"].items():
        if "error" in result:
            lines.append(f"{name}: not run: {result['error']}")
    lines.append("")
    lines.append("ratios are peer / sor for p50 and sor / peer for throughput: above 1 means "
                 "sor is faster. sor from Python, one apply() call per array: "
                 f"L3 {report['sor']['l3']['python_batch_throughput_per_s'] / 1e6:.1f} M/s, "
                 f"L2 {report['sor']['l2']['python_batch_throughput_per_s'] / 1e6:.1f} M/s.")
    return "\n".join(lines)
