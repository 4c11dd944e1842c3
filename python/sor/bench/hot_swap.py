"""`sor bench hot-swap`: what swapping models in a running router costs the order path.

Three measurements, each without swaps and with a swap every ``interval_ms``:

- **engine**: an engine (ML router, the shipped models, sleep idle strategy) fed a recorded
  simulated session (``sor.sim.Market``, default scenario) in chunks of 64 events by this
  thread, four parents working. Per chunk: the time from ``publish_market_data`` to the
  engine having consumed the chunk (``md_consumed``; a chunk every millisecond); per decision: ``inference_ns`` (feature
  row plus every installed model). Swaps: ``Engine.swap_models`` of two preloaded versions of
  fill_probability and adverse_move, alternately, from another thread (install only).
- **fix path**: ``sor bench fix-path``'s router (OMS NewOrderSingle in -> first child out,
  engine spinning, reactor busy-polling) with the shipped models installed; swaps either
  install preloaded models (``install``) or go through the registry as in production
  (``registry``: promote in a registry copy, then ``RegistryWatcher.check_now`` on the swap
  thread: registry read, ONNX parse, validation, parity with onnxruntime, install).
- **gil**: a Python thread that only reads the clock in a loop (as the reactor's thread does
  between sockets) and records the gaps; while another thread loads (validates) the two
  models again and again, the gaps show how long the load holds the GIL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sor.bench.book import hardware

_NS = 1_000_000_000
SWAPPED = ("fill_probability", "adverse_move")
FEED_PAUSE_S = 0.001  # between chunks of 64 market-data events


def _percentiles(values_ns: np.ndarray) -> dict[str, float]:
    values = np.asarray(values_ns, dtype=np.float64)
    if values.size == 0:
        return {"p50_us": float("nan"), "p99_us": float("nan"), "p999_us": float("nan"),
                "max_us": float("nan"), "samples": 0}
    p50, p99, p999 = np.percentile(values, [50, 99, 99.9])
    return {"p50_us": p50 / 1e3, "p99_us": p99 / 1e3, "p999_us": p999 / 1e3,
            "max_us": float(values.max()) / 1e3, "samples": int(values.size)}


def variant_bytes(data: bytes, shift: float) -> bytes:
    """Returns an ONNX tree model with its base value shifted by `shift`: a valid model whose
    every output differs (what a retrained version looks like to the router)."""
    import onnx

    model = onnx.load_from_string(data)
    node = model.graph.node[0]
    for attribute in node.attribute:
        if attribute.name == "base_values":
            values = list(attribute.floats)
            del attribute.floats[:]
            attribute.floats.extend(v + shift for v in values)
            break
    else:
        node.attribute.append(onnx.helper.make_attribute("base_values", [shift]))
    return model.SerializeToString()


def registry_with_variants(folder: str | Path) -> Any:
    """Copies the shipped registry into `folder` and stages version 2 of fill_probability and
    adverse_move (variants of version 1); returns the ModelRegistry."""
    from sor.models.registry import ModelRegistry, default_models_dir

    target = Path(folder) / "models"
    shutil.copytree(default_models_dir(), target)
    registry = ModelRegistry(target)
    for name in SWAPPED:
        card = registry.card(name)
        reference = np.load(registry.root / registry.entry(name).reference_rows)
        registry.stage(name, variant_bytes(registry.onnx_bytes(name), 0.25), card,
                       lambda c: "card\n", reference)
    return registry


class _Swapper:
    """Calls `swap()` every `interval_s` on its own thread until stopped."""

    def __init__(self, swap: Callable[[int], Any], interval_s: float) -> None:
        self.swap = swap
        self.interval_s = interval_s
        self.count = 0
        self.swap_ns: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sor-bench-swapper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.perf_counter_ns()
            self.swap(self.count)
            self.swap_ns.append(time.perf_counter_ns() - started)
            self.count += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _install_swap(engine: Any, versions: dict[int, dict[str, Any]]) -> Callable[[int], Any]:
    def swap(count: int) -> None:
        version = 2 if count % 2 == 0 else 1
        engine.swap_models(versions[version], {name: version for name in SWAPPED})
    return swap


def _registry_swap(engine: Any, registry: Any) -> Callable[[int], Any]:
    from sor.models.watch import RegistryWatcher

    watcher = RegistryWatcher(engine, registry)

    def swap(count: int) -> None:
        version = 2 if count % 2 == 0 else 1
        registry.promote({name: version for name in SWAPPED}, operator="bench", reason="bench")
        event = watcher.check_now()
        if event is None or event["kind"] != "models_swapped":
            raise RuntimeError(f"bench hot-swap: the watcher did not swap: {event}")
    return swap


def _session_events(seconds: float) -> np.ndarray:
    from sor.sim import Market

    with Market("default", seed=5, record_events=True) as market:
        market.run_until(market.session_start_ns + int(seconds * _NS))
        parts = [market.events(int(v.venue_id)) for v in market.spec.venues]
    events = np.concatenate([p for p in parts if len(p)])
    return events[np.argsort(events["ts_recv"], kind="stable")]


def _engine_run(events: np.ndarray, registry: Any, interval_s: float | None) -> dict[str, Any]:
    from sor.engine import Engine
    from sor.monitor.simulate import router_config

    name = f"sorbhs{os.getpid()}"
    with Engine(router_config(name), models=registry, policy="ml_router",
                decision_interval_s=0.05) as engine:
        versions = {v: {n: registry.load(n, v) for n in SWAPPED} for v in (1, 2)}
        warmup = int(np.searchsorted(events["ts_recv"], events["ts_recv"][0] + 20 * _NS))
        _publish(engine, events[:warmup])
        engine.wait_idle(30)
        for parent in range(1, 5):
            engine.submit_parent(parent, 0, "buy" if parent % 2 else "sell", 200_000,
                                 venues=["XNAS", "BATS", "EDGX", "IEXG"])
        engine.wait_idle(10)
        engine.read_decisions()
        ring = engine.ring("market_data")
        swapper = _Swapper(_install_swap(engine, versions), interval_s) if interval_s else None
        consumed = []
        decisions = []
        try:
            for start in range(warmup, len(events), 64):
                chunk = events[start:start + 64]
                target = ring.stats()["read_records"] + len(chunk)
                started = time.perf_counter_ns()
                _publish(engine, chunk)
                while ring.stats()["read_records"] < target:
                    pass
                consumed.append(time.perf_counter_ns() - started)
                batch = engine.read_decisions()
                if len(batch):
                    decisions.append(batch)
                time.sleep(FEED_PAUSE_S)  # a feed's pace, not one burst
        finally:
            if swapper is not None:
                swapper.stop()
        engine.wait_idle(30)
        batch = engine.read_decisions()
        if len(batch):
            decisions.append(batch)
        counters = engine.counters()
    records = np.concatenate(decisions) if decisions else np.zeros(0)
    inference = records["inference_ns"][records["model_mask"] != 0] if len(records) else []
    return {"md_consumed": _percentiles(np.array(consumed)),
            "inference": _percentiles(np.asarray(inference)),
            "swaps": swapper.count if swapper else 0,
            "swap_call": _percentiles(np.array(swapper.swap_ns)) if swapper else None,
            "decisions": int(counters["decisions"]),
            "md_events": int(counters["md_events"]),
            "decision_ring_refused": int(counters["decision_ring_refused"])}


def _publish(engine: Any, events: np.ndarray) -> None:
    written = 0
    while written < len(events):
        written += engine.publish_market_data(events[written:])


def _gil_probe(registry: Any, seconds: float, loading: bool,
               switch_interval_s: float | None = None) -> dict[str, Any]:
    """Gaps between iterations of a clock-reading loop, with or without a thread loading the
    models at the same time (the GIL switch interval lowered to `switch_interval_s` during
    each load, as the watcher does, when given)."""
    from sor.models.watch import short_switch_interval

    stop = threading.Event()
    loads: list[int] = []

    def load() -> None:
        while not stop.is_set():
            started = time.perf_counter_ns()
            with short_switch_interval(switch_interval_s):
                for name in SWAPPED:
                    registry.load(name, 2)
            loads.append(time.perf_counter_ns() - started)

    thread = threading.Thread(target=load, daemon=True) if loading else None
    if thread is not None:
        thread.start()
    gaps = []
    clock = time.perf_counter_ns
    end = clock() + int(seconds * _NS)
    previous = clock()
    while previous < end:
        now = clock()
        gaps.append(now - previous)
        previous = now
    stop.set()
    if thread is not None:
        thread.join()
    gaps_array = np.array(gaps)
    return {"gap": _percentiles(gaps_array),
            "gaps_over_1ms": int(np.count_nonzero(gaps_array > 1_000_000)),
            "gaps_over_5ms": int(np.count_nonzero(gaps_array > 5_000_000)),
            "loads": len(loads), "load": _percentiles(np.array(loads)) if loads else None}


def run(*, interval_ms: float = 20.0, seconds: float = 60.0, parents: int = 1_000,
        warmup: int = 100, probe_s: float = 2.0, fix: bool = True) -> dict[str, Any]:
    """Runs the benchmark and returns its report (see the module docstring)."""
    import sys

    from sor.bench.fix_path import _run_router

    interval_s = interval_ms / 1e3
    report: dict[str, Any] = {
        "benchmark": "hot-swap", "hardware": hardware(),
        "setup": {"interval_ms": interval_ms, "market_seconds": seconds, "parents": parents,
                  "warmup": warmup, "probe_s": probe_s, "swapped": list(SWAPPED),
                  "switch_interval_s": sys.getswitchinterval()}}
    with tempfile.TemporaryDirectory(prefix="sor-bench-hot-swap-") as folder:
        registry = registry_with_variants(folder)
        events = _session_events(20.0 + seconds)
        report["engine"] = {"no_swaps": _engine_run(events, registry, None),
                            "swaps": _engine_run(events, registry, interval_s)}
        if fix:
            versions = {v: {n: registry.load(n, v) for n in SWAPPED} for v in (1, 2)}
            runs: dict[str, Any] = {"no_swaps": _run_router(None, parents, warmup,
                                                            models=registry.root)}

            def install(gateway: Any) -> Callable[[], None]:
                swapper = _Swapper(_install_swap(gateway.engine, versions), interval_s)
                runs["_install_swapper"] = swapper
                return swapper.stop

            def through_registry(gateway: Any) -> Callable[[], None]:
                swapper = _Swapper(_registry_swap(gateway.engine, registry), interval_s)
                runs["_registry_swapper"] = swapper
                return swapper.stop

            runs["install"] = _run_router(None, parents, warmup, models=registry.root,
                                          background=install)
            runs["install"]["swaps"] = runs.pop("_install_swapper").count
            # the registry run starts from version 1 in use whatever the last swap left
            if registry.in_use()["fill_probability"] != 1:
                registry.promote({n: 1 for n in SWAPPED}, operator="bench", reason="reset")
            runs["registry"] = _run_router(None, parents, warmup, models=registry.root,
                                           background=through_registry)
            swapper = runs.pop("_registry_swapper")
            runs["registry"]["swaps"] = swapper.count
            runs["registry"]["swap_call"] = _percentiles(np.array(swapper.swap_ns))
            report["fix_path"] = runs
        from sor.models.watch import LOAD_SWITCH_INTERVAL_S

        report["gil"] = {"idle": _gil_probe(registry, probe_s, False),
                         "loading": _gil_probe(registry, probe_s, True),
                         "loading_short_switch": _gil_probe(
                             registry, probe_s, True, LOAD_SWITCH_INTERVAL_S or 0.0002)}
    report["ratios"] = _ratios(report)
    return report


def _ratios(report: dict[str, Any]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}

    def ratio(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return {q: (b[q] / a[q] if a[q] else float("nan")) for q in ("p50_us", "p99_us",
                                                                        "p999_us")}

    engine = report["engine"]
    ratios["engine_md_consumed"] = ratio(engine["no_swaps"]["md_consumed"],
                                         engine["swaps"]["md_consumed"])
    ratios["engine_inference"] = ratio(engine["no_swaps"]["inference"],
                                       engine["swaps"]["inference"])
    if "fix_path" in report:
        base = report["fix_path"]["no_swaps"]
        for mode in ("install", "registry"):
            for clock in ("in_router", "wire_to_wire"):
                ratios[f"fix_{mode}_{clock}"] = ratio(base[clock],
                                                      report["fix_path"][mode][clock])
    return ratios


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a table for a terminal."""
    hw = report["hardware"]
    setup = report["setup"]
    lines = [f"sor bench hot-swap  (cpu: {hw['cpu']}, {hw['logical_cpus']} logical cpus, "
             f"python {hw['python']}, sor {hw['sor']})",
             f"swap every {setup['interval_ms']:g} ms of {', '.join(setup['swapped'])} "
             f"(two versions, alternately)", "",
             f"{'measurement':<44}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'max us':>10}"
             f"{'n':>8}{'swaps':>7}"]

    def row(label: str, r: dict[str, float], swaps: Any = "") -> None:
        lines.append(f"{label:<44}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}{r['p999_us']:>10.1f}"
                     f"{r.get('max_us', float('nan')):>10.1f}{r['samples']:>8}{swaps!s:>7}")

    for mode, result in report["engine"].items():
        row(f"engine md chunk consumed, {mode}", result["md_consumed"], result["swaps"])
        row(f"engine decision inference, {mode}", result["inference"], result["swaps"])
    for mode, result in report.get("fix_path", {}).items():
        for clock in ("in_router", "wire_to_wire"):
            row(f"fix path {clock}, {mode}", result[clock], result.get("swaps", 0))
        lines.append(f"{'':<4}({mode}: {result['engine_spin_timeouts']} parents waited past "
                     "the engine spin limit; in_router times only the others)")
    for mode, result in report["gil"].items():
        row(f"gil probe loop gap, {mode}", result["gap"], "")
    for mode in ("loading", "loading_short_switch"):
        result = report["gil"][mode]
        if result["load"]:
            row(f"model load (2 models, validated), {mode}", result["load"], "")
    lines.append("gil probe gaps > 1 ms / > 5 ms: " + ", ".join(
        f"{mode} {r['gaps_over_1ms']} / {r['gaps_over_5ms']}"
        for mode, r in report["gil"].items()))
    lines.append("")
    for name, r in report["ratios"].items():
        lines.append(f"{name:<36} with / without swaps: p50 {r['p50_us']:.2f}x, "
                     f"p99 {r['p99_us']:.2f}x, p99.9 {r['p999_us']:.2f}x")
    return "\n".join(lines)


__all__ = ["run", "format_report", "variant_bytes", "registry_with_variants"]
