"""`sor bench fix-codec`: latency of sor's FIX codec from Python against simplefix, the codec a
Python user would otherwise pick, on the same messages in the same run.

Workloads (a pool of distinct messages, cycled, one message per call):

- ``parse``: one ~200-byte FIX 4.4 ExecutionReport; sor ``codec.parse(frame)`` against
  simplefix ``FixParser.append_buffer(frame)`` + ``get_message()``.
- ``parse_and_read``: the same, then what the router reads from a fill (MsgType, MsgSeqNum,
  ClOrdID, ExecType, LastQty, LastPx in ticks; simplefix leaves LastPx as bytes).
- ``frame_and_parse``: the frame arrives as bytes from a socket; sor ``FixFramer.feed`` then
  ``parse`` (BodyLength and CheckSum checked) against the same simplefix calls (which check
  neither).
- ``encode``: a NewOrderSingle from its fields; sor ``codec.encode`` against building a
  ``simplefix.FixMessage`` with ``append_pair`` and ``encode()``.

Method: every call is timed alone with ``time.perf_counter_ns`` and the mean cost of an empty
timed pair is subtracted; percentiles are over those per-call times. ``loop_ns_per_call`` is a
tight loop over the same calls divided by the count (no per-call timer). Both codecs' outputs
are compared on the whole pool first (``agrees``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sor.bench.book import hardware
from sor.bench.model import _percentiles
from sor.bench.model import _python_timer_overhead_ns as _timer_overhead_ns
from sor.fix import codec

TARGETS = {"parse_p50_ns": 1000.0}
SENDING_TIME_NS = 1_710_513_001_123_000_000  # 2024-03-15 14:30:01.123 UTC


def _time(call: Callable[[Any], Any], inputs: list[Any], calls: int, warmup: int,
          overhead_ns: float) -> dict[str, float]:
    """Times call(inputs[i % len(inputs)]) one call at a time; returns percentiles."""
    count = len(inputs)
    for i in range(warmup):
        call(inputs[i % count])
    clock = time.perf_counter_ns
    latency = np.empty(calls, dtype=np.float64)
    for i in range(calls):
        item = inputs[i % count]
        t0 = clock()
        call(item)
        latency[i] = clock() - t0
    result = _percentiles(np.maximum(latency - overhead_ns, 0.0))
    loop_inputs = [inputs[i % count] for i in range(calls)]
    t0 = clock()
    for item in loop_inputs:
        call(item)
    result["loop_ns_per_call"] = (clock() - t0) / calls
    result["timer_overhead_ns"] = overhead_ns
    return result


def _execution_reports(count: int, seed: int) -> list[bytes]:
    """Returns `count` distinct FIX 4.4 ExecutionReports (partial fills) of about 200 bytes."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        last_qty = int(rng.integers(1, 10)) * 100
        leaves = int(rng.integers(0, 50)) * 100
        price = 1_870_000 + int(rng.integers(-5000, 5000))
        body = [(37, f"O{100000 + n}"), (11, f"7.{n + 1}"), (17, f"E{500000 + n}"),
                (150, "F"), (39, "1" if leaves else "2"), (55, "AAPL"), (54, "1"),
                (38, last_qty + leaves), (44, codec.price_to_fix(price)), (32, last_qty),
                (31, codec.price_to_fix(price)), (151, leaves), (14, last_qty),
                (6, codec.price_to_fix(price)), (60, "20240315-14:30:01.122")]
        out.append(codec.encode("FIX.4.4", "8", "VENUE1", "SOR", 1000 + n,
                                SENDING_TIME_NS + n * 1_000_000, body))
    return out


def _new_order_singles(count: int, seed: int) -> list[tuple[int, list[tuple[int, str | int]]]]:
    rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        body: list[tuple[int, str | int]] = [
            (11, f"3.{n + 1}"), (1, "ACC-1"), (55, "MSFT"), (54, "2"),
            (60, "20240315-14:30:01.123"), (38, int(rng.integers(1, 50)) * 100), (40, "2"),
            (44, codec.price_to_fix(4_021_500 + int(rng.integers(-500, 500)))), (59, "3"),
            (18, "6"), (7928, int(rng.integers(0, 256)))]
        out.append((n + 1, body))
    return out


def _simplefix_encode(simplefix: Any, seq_num: int, body: list[tuple[int, Any]]) -> bytes:
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.4")
    message.append_pair(35, "D")
    message.append_pair(49, "SOR")
    message.append_pair(56, "VENUE1")
    message.append_pair(34, seq_num)
    message.append_pair(52, "20240315-14:30:01.123")
    for tag, value in body:
        message.append_pair(tag, value)
    return message.encode()


def _peer(result: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    for key in ("p50", "p99", "p999"):
        result[f"{key}_ratio"] = result[f"{key}_ns"] / max(ours[f"{key}_ns"], 1e-9)
    return result


def run(*, calls: int = 200_000, peer_calls: int = 5_000, warmup: int = 20_000,
        pool: int = 1024, peers: bool = True, seed: int = 3) -> dict[str, Any]:
    """Runs the benchmark and returns its report (see the module docstring)."""
    reports = _execution_reports(pool, seed)
    orders = _new_order_singles(pool, seed + 1)
    overhead = _timer_overhead_ns()
    parse = codec.parse

    def read(frame: bytes) -> tuple[Any, ...]:
        message = parse(frame)
        return (message.msg_type, message.seq_num, message.get(11), message.get(150),
                message.get_int(32), message.get_price(31))

    framer = codec.FixFramer()

    def frame_and_parse(data: bytes) -> list[Any]:
        return [parse(frame) for _, frame in framer.feed(data)]

    def encode(order: tuple[int, list[tuple[int, Any]]]) -> bytes:
        return codec.encode("FIX.4.4", "D", "SOR", "VENUE1", order[0], SENDING_TIME_NS, order[1])

    workloads: dict[str, dict[str, Any]] = {
        "parse": {"sor": _time(parse, reports, calls, warmup, overhead)},
        "parse_and_read": {"sor": _time(read, reports, calls, warmup, overhead)},
        "frame_and_parse": {"sor": _time(frame_and_parse, reports, calls, warmup, overhead)},
        "encode": {"sor": _time(encode, orders, calls, warmup, overhead)},
    }
    workloads["parse"]["sor"]["api"] = "sor.fix.codec.parse(frame)"
    workloads["parse_and_read"]["sor"]["api"] = (
        "parse, then msg_type, seq_num, get(11), get(150), get_int(32), get_price(31) "
        "(LastPx in ticks)")
    workloads["frame_and_parse"]["sor"]["api"] = "FixFramer.feed(bytes), parse each frame"
    workloads["encode"]["sor"]["api"] = "sor.fix.codec.encode(header..., body)"
    sizes = [len(r) for r in reports]
    encoded = [encode(order) for order in orders]
    report: dict[str, Any] = {
        "benchmark": "fix-codec",
        "hardware": hardware(),
        "setup": {"execution_report_bytes_mean": float(np.mean(sizes)),
                  "new_order_single_bytes_mean": float(np.mean([len(e) for e in encoded])),
                  "pool": pool, "calls": calls, "peer_calls": peer_calls, "warmup": warmup,
                  "seed": seed, "timer_overhead_ns": overhead,
                  "method": "perf_counter_ns around each call minus the mean empty timed "
                            "pair; loop_ns_per_call from an untimed tight loop"},
        "workloads": workloads,
        "targets": TARGETS,
    }
    if peers:
        _run_peers(report, reports, orders, encoded, peer_calls, min(warmup, peer_calls),
                   overhead)
    ours = workloads["parse"]["sor"]["p50_ns"]
    report["targets_met"] = {"parse_p50_ns": ours <= TARGETS["parse_p50_ns"]}
    return report


def _run_peers(report: dict[str, Any], reports: list[bytes],
               orders: list[tuple[int, list[tuple[int, Any]]]], encoded: list[bytes],
               calls: int, warmup: int, overhead: float) -> None:
    workloads = report["workloads"]
    try:
        import simplefix
    except ModuleNotFoundError:
        for workload in workloads.values():
            workload["simplefix"] = {"skipped": "simplefix is not installed"}
        return
    version = getattr(simplefix, "__version__", None)
    if version is None:
        from importlib.metadata import version as package_version

        version = package_version("simplefix")
    parser = simplefix.FixParser()

    def parse(frame: bytes) -> Any:
        parser.append_buffer(frame)
        return parser.get_message()

    def read(frame: bytes) -> tuple[Any, ...]:
        message = parse(frame)
        return (message.get(35), int(message.get(34)), message.get(11), message.get(150),
                int(message.get(32)), message.get(31))

    def encode(order: tuple[int, list[tuple[int, Any]]]) -> bytes:
        return _simplefix_encode(simplefix, order[0], order[1])

    agrees_parse = all(
        [(int(t), v) for t, v in parse(r).pairs] == codec.parse(r).fields() for r in reports)
    agrees_encode = all(encode(order) == ours for order, ours in zip(orders, encoded))
    apis = {"parse": "FixParser.append_buffer(frame) + get_message()",
            "parse_and_read": "the same, then get(35), int(get(34)), get(11), get(150), "
                              "int(get(32)), get(31) (bytes: no price conversion)",
            "frame_and_parse": "FixParser.append_buffer(bytes) + get_message() (frames by "
                               "tag 10; checks neither BodyLength nor CheckSum)",
            "encode": "FixMessage() + append_pair per field + encode()"}
    calls_by_workload = {"parse": parse, "parse_and_read": read, "frame_and_parse": parse,
                         "encode": encode}
    for name, call in calls_by_workload.items():
        inputs = orders if name == "encode" else reports
        measured = _time(call, inputs, calls, warmup, overhead)
        measured.update(api=apis[name], version=version,
                        agrees=agrees_encode if name == "encode" else agrees_parse)
        workloads[name]["simplefix"] = _peer(measured, workloads[name]["sor"])


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a table for a terminal."""
    hw = report["hardware"]
    setup = report["setup"]
    lines = [f"sor bench fix-codec  (cpu: {hw['cpu']}, {hw['logical_cpus']} logical cpus, "
             f"python {hw['python']}, sor {hw['sor']})",
             f"ExecutionReport {setup['execution_report_bytes_mean']:.0f} bytes, NewOrderSingle "
             f"{setup['new_order_single_bytes_mean']:.0f} bytes; {setup['pool']} distinct "
             f"messages cycled; timer overhead {setup['timer_overhead_ns']:.0f} ns subtracted",
             "",
             f"{'workload':<17}{'codec':<11}{'p50 ns':>10}{'p99 ns':>10}{'p99.9 ns':>10}"
             f"{'loop ns':>10}{'p50 x':>8}{'p99 x':>8}  agrees"]
    for name, workload in report["workloads"].items():
        ours = workload["sor"]
        lines.append(f"{name:<17}{'sor':<11}{ours['p50_ns']:>10.0f}{ours['p99_ns']:>10.0f}"
                     f"{ours['p999_ns']:>10.0f}{ours['loop_ns_per_call']:>10.0f}")
        peer = workload.get("simplefix")
        if peer is None:
            continue
        if "skipped" in peer:
            lines.append(f"{'':<17}{'simplefix':<11}skipped: {peer['skipped']}")
            continue
        lines.append(f"{'':<17}{'simplefix':<11}{peer['p50_ns']:>10.0f}{peer['p99_ns']:>10.0f}"
                     f"{peer['p999_ns']:>10.0f}{peer['loop_ns_per_call']:>10.0f}"
                     f"{peer['p50_ratio']:>8.1f}{peer['p99_ratio']:>8.1f}  "
                     f"{'yes' if peer['agrees'] else 'NO'}")
    lines.append("")
    lines.append(f"target: parse p50 <= {report['targets']['parse_p50_ns']:.0f} ns; met: "
                 f"{report['targets_met']}")
    lines.append("ratios are simplefix / sor: above 1 means sor is faster. Per-call "
                 "perf_counter_ns, empty-pair overhead subtracted; 'loop' is an untimed loop.")
    return "\n".join(lines)
