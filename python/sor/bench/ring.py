"""`sor bench ring`: one-way latency and throughput of sor's shared-memory ring with 64-byte
records, across threads and across processes, and of the IPC a Python user would otherwise
pick (multiprocessing.Queue, a POSIX message queue via posix_ipc, a ZeroMQ ipc:// socket) on
the same traffic in the same run.

Latency is paced: the sender stamps a record, the receiver takes the clock when it sees it and
echoes that stamp back, and the sender waits for the echo before the next record, so no record
ever queues behind another. One way = receiver's clock on receipt minus the sender's stamp (the
TSC in C++, CLOCK_MONOTONIC via time.perf_counter_ns in Python; both are shared by the cores
and processes of one host); the round trip halved is reported as a cross-check. Throughput is
unpaced: records/s from the first send until the receiver has taken the last one.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import struct
import tempfile
import threading
import time
from importlib import metadata
from typing import Any, Callable

import numpy as np

from sor import _core
from sor.bench.book import hardware as _base_hardware
from sor.errors import SorError

TARGETS = {"one_way_p50_ns": 100.0, "throughput_per_s": 50e6, "vs_multiprocessing_queue": 100.0}
RECORD_SIZE = 64
PEERS = ("multiprocessing_queue", "posix_ipc", "zmq")

_MESSAGE = struct.Struct("<qq48x")  # sequence, stamp in ns, padding to 64 bytes
_RING_DTYPE = np.dtype([("sequence", "<i8"), ("stamp_ns", "<i8"), ("padding", "<u8", (6,))])
_BATCH_RECORDS = 4096
_TIMEOUT_S = 60.0
assert _MESSAGE.size == RECORD_SIZE == _RING_DTYPE.itemsize == _core.RING_BENCH_RECORD_SIZE


# ----------------------------------------------------------------------------- host


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def hardware() -> dict[str, Any]:
    """Returns what the benchmark ran on, with the counter and virtualisation flags."""
    flags = _cpu_flags()
    base = _base_hardware()
    if not base["sor"]:  # an extension built outside scikit-build carries no version
        try:
            base["sor"] = metadata.version("sor") + " (extension built from a checkout)"
        except metadata.PackageNotFoundError:
            base["sor"] = "unknown"
    return {**base,
            "allowed_cpus": sorted(os.sched_getaffinity(0)),
            "invariant_tsc": {"constant_tsc", "nonstop_tsc"} <= flags,
            "virtualised": "hypervisor" in flags}


def placement() -> dict[str, Any]:
    """Returns the cores for the sender and the receiver (None each when fewer than two)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {"producer_cpu": None, "consumer_cpu": None}
    return {"producer_cpu": cpus[0], "consumer_cpu": cpus[1]}


class _Pinned:
    """Pins the calling thread to `cpu` for a block and restores its affinity afterwards."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.pinned = False
        self._saved: set[int] = set()

    def __enter__(self) -> _Pinned:
        if self.cpu is not None:
            self._saved = os.sched_getaffinity(0)
            try:
                os.sched_setaffinity(0, {self.cpu})
                self.pinned = True
            except OSError:
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pinned:
            os.sched_setaffinity(0, self._saved)


def _pin_child(cpu: int | None) -> bool:
    if cpu is None:
        return False
    try:
        os.sched_setaffinity(0, {cpu})
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- summaries


def _latency_summary(one_way_ns: np.ndarray, round_trip_half_ns: np.ndarray) -> dict[str, Any]:
    p50, p99, p999 = np.percentile(one_way_ns, [50, 99, 99.9])
    half50, half99 = np.percentile(round_trip_half_ns, [50, 99])
    return {"p50_ns": float(p50), "p99_ns": float(p99), "p999_ns": float(p999),
            "max_ns": float(one_way_ns.max()), "mean_ns": float(one_way_ns.mean()),
            "samples": int(len(one_way_ns)),
            "round_trip_half_p50_ns": float(half50), "round_trip_half_p99_ns": float(half99)}


def _check(result: dict[str, Any], what: str) -> dict[str, Any]:
    if result["status"] != "ok":
        raise SorError(f"{what}: {result['status']}: {result['detail']}")
    return result


def _unique(tag: str) -> str:
    return f"sor-bench-{tag}-{os.getpid()}-{time.monotonic_ns() % 1_000_000_000}"


def _spawn() -> Any:
    # spawn, not fork: the parent may hold threads (ZeroMQ's, multiprocessing's feeders).
    return multiprocessing.get_context("spawn")


def _join(process: Any, what: str) -> None:
    process.join(_TIMEOUT_S)
    if process.is_alive():
        process.kill()
        process.join()
        raise SorError(f"{what}: the receiving process did not finish")
    if process.exitcode != 0:
        raise SorError(f"{what}: the receiving process exited with {process.exitcode}")


# ----------------------------------------------------------------------------- sor, C++


def _options(name: str, *, samples: int, warmup: int, throughput_records: int,
             cpu: int | None) -> Any:
    options = _core.RingBenchOptions()
    options.name = name
    options.samples = samples
    options.warmup = warmup
    options.throughput_records = throughput_records
    options.cpu = -1 if cpu is None else cpu
    options.peer_timeout_ns = int(_TIMEOUT_S * 1e9)
    return options


def _cpp_child(kind: str, fields: dict[str, Any]) -> None:
    """Runs the receiving side of a C++ run in a spawned process, then leaves at once."""
    options = _core.RingBenchOptions()
    for key, value in fields.items():
        setattr(options, key, value)
    if kind == "latency":
        result = _core.bench_ring_latency_echo(options)
    else:
        result = _core.bench_ring_throughput_receive(options)
    os._exit(0 if result["status"] == "ok" else 1)


def _fields(options: Any) -> dict[str, Any]:
    return {key: getattr(options, key) for key in
            ("name", "samples", "warmup", "gap_ns", "throughput_records", "batch_records",
             "capacity_records", "cpu", "peer_timeout_ns")}


def _run_cpp(samples: int, warmup: int, throughput_records: int,
             cpus: dict[str, Any]) -> dict[str, Any]:
    producer_cpu, consumer_cpu = cpus["producer_cpu"], cpus["consumer_cpu"]
    echo_cpu = -1 if consumer_cpu is None else consumer_cpu
    sizes = {"samples": samples, "warmup": warmup, "throughput_records": throughput_records}
    out: dict[str, Any] = {}

    options = _options(_unique("threads"), cpu=producer_cpu, **sizes)
    latency = _check(_core.bench_ring_latency_threads(options, echo_cpu), "C++ threads latency")
    throughput = _check(_core.bench_ring_throughput_threads(options, echo_cpu),
                        "C++ threads throughput")
    out["cpp_threads"] = _cpp_side(latency, throughput, "two threads of one process")

    options = _options(_unique("processes"), cpu=producer_cpu, **sizes)
    child = _options(options.name, cpu=consumer_cpu, **sizes)
    context = _spawn()
    echo = context.Process(target=_cpp_child, args=("latency", _fields(child)), daemon=True)
    echo.start()
    latency = _check(_core.bench_ring_latency_send(options), "C++ processes latency")
    _join(echo, "C++ processes latency")
    receiver = context.Process(target=_cpp_child, args=("throughput", _fields(child)), daemon=True)
    receiver.start()
    throughput = _check(_core.bench_ring_throughput_send(options), "C++ processes throughput")
    _join(receiver, "C++ processes throughput")
    out["cpp_processes"] = _cpp_side(latency, throughput, "two processes (spawned receiver)")
    # The receiver's pinning is not reported back across processes; it uses the same call.
    return out


def _cpp_side(latency: dict[str, Any], throughput: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "latency": {**_latency_summary(latency["one_way_ns"], latency["round_trip_half_ns"]),
                    "negative_samples": int(latency["negative_samples"]),
                    "timer_overhead_ns": float(latency["timer_overhead_ns"])},
        "throughput": {"records": int(throughput["records"]),
                       "throughput_per_s": float(throughput["throughput_per_s"]),
                       "batch_records": 256},
        "pinned": bool(latency["pinned"]) and bool(throughput["pinned"]),
        "api": f"C++ sor::Ring between {where}: latency try_write / peek+release busy-poll, "
               "rdtsc stamps; throughput claim+publish / peek+release in batches of 256",
    }


# ----------------------------------------------------------------------------- Python transports


class _Endpoint:
    """One side of a two-way channel: send(sequence, stamp_ns) and recv() -> (sequence, stamp)."""

    def send(self, sequence: int, stamp_ns: int) -> None:
        raise NotImplementedError

    def recv(self) -> tuple[int, int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _QueueEndpoint(_Endpoint):
    def __init__(self, outbox: Any, inbox: Any) -> None:
        self.outbox, self.inbox = outbox, inbox

    def send(self, sequence: int, stamp_ns: int) -> None:
        self.outbox.put(_MESSAGE.pack(sequence, stamp_ns))

    def recv(self) -> tuple[int, int]:
        message = self.inbox.get()
        if message is None:
            raise SorError("multiprocessing.Queue peer: the other side failed")
        return _MESSAGE.unpack(message)

    def close(self) -> None:
        self.outbox.close()
        self.outbox.join_thread()  # the feeder thread must flush before the process leaves


class _PosixEndpoint(_Endpoint):
    def __init__(self, outbox: str, inbox: str) -> None:
        import posix_ipc

        self.outbox = posix_ipc.MessageQueue(outbox)
        self.inbox = posix_ipc.MessageQueue(inbox)

    def send(self, sequence: int, stamp_ns: int) -> None:
        self.outbox.send(_MESSAGE.pack(sequence, stamp_ns))

    def recv(self) -> tuple[int, int]:
        message, _ = self.inbox.receive(_TIMEOUT_S)
        return _MESSAGE.unpack(message)

    def close(self) -> None:
        self.outbox.close()
        self.inbox.close()


class _ZmqEndpoint(_Endpoint):
    def __init__(self, outbox: str, inbox: str, bind: bool) -> None:
        import zmq

        self.context = zmq.Context()
        self.outbox = self.context.socket(zmq.PUSH)
        self.inbox = self.context.socket(zmq.PULL)
        self.inbox.setsockopt(zmq.RCVTIMEO, int(_TIMEOUT_S * 1000))
        self.inbox.setsockopt(zmq.LINGER, 0)
        self.outbox.setsockopt(zmq.LINGER, int(_TIMEOUT_S * 1000))  # deliver the last message
        if bind:
            self.outbox.bind(outbox)
            self.inbox.bind(inbox)
        else:
            self.outbox.connect(outbox)
            self.inbox.connect(inbox)

    def send(self, sequence: int, stamp_ns: int) -> None:
        self.outbox.send(_MESSAGE.pack(sequence, stamp_ns))

    def recv(self) -> tuple[int, int]:
        return _MESSAGE.unpack(self.inbox.recv())

    def close(self) -> None:
        self.outbox.close()
        self.inbox.close()
        self.context.term()


class _RingEndpoint(_Endpoint):
    """sor.ring driven from Python one record per call, busy-polling like the engine does."""

    def __init__(self, outbox: Any, inbox: Any) -> None:
        self.outbox, self.inbox = outbox, inbox
        self.out_record = np.zeros(1, dtype=_RING_DTYPE)
        self.out_words = self.out_record.view(np.int64)
        self.in_record = np.zeros(1, dtype=_RING_DTYPE)
        self.in_words = self.in_record.view(np.int64)
        self.batch = np.zeros(_BATCH_RECORDS, dtype=_RING_DTYPE)
        self.deadline = 0.0

    def send(self, sequence: int, stamp_ns: int) -> None:
        self.out_words[0] = sequence
        self.out_words[1] = stamp_ns
        polls = 0
        while not self.outbox.write(self.out_record):
            polls += 1
            if polls & 0xFFFFF == 0:
                self.check_peer(polls, self.outbox)

    def recv(self) -> tuple[int, int]:
        polls = 0
        while not self.inbox.read_into(self.in_record):
            polls += 1
            if polls & 0xFFFFF == 0:
                self.check_peer(polls, self.inbox)
        return int(self.in_words[0]), int(self.in_words[1])

    def check_peer(self, polls: int, ring: Any) -> None:
        # Called only after a million empty polls (or full writes): the wait's deadline starts
        # then, so the clock is never read on the hot path.
        now = time.monotonic()
        if polls == 0x100000:
            self.deadline = now + _TIMEOUT_S
        if ring.peer_state() in ("dead", "closed") or now > self.deadline:
            raise SorError(f"sor ring peer: the other end of ring {ring.name} is gone or stuck")

    def close(self) -> None:
        self.outbox.close()
        self.inbox.close()


def _child_endpoint(kind: str, spec: Any) -> _Endpoint:
    if kind == "multiprocessing_queue":
        return _QueueEndpoint(spec[1], spec[0])
    if kind == "posix_ipc":
        return _PosixEndpoint(spec[1], spec[0])
    if kind == "zmq":
        return _ZmqEndpoint(spec[1], spec[0], bind=False)
    from sor.ring import Ring

    inbox = Ring.attach(spec[0], _RING_DTYPE, role="consumer")
    outbox = Ring.attach(spec[1], _RING_DTYPE, role="producer")
    return _RingEndpoint(outbox, inbox)


def _peer_child(kind: str, spec: Any, cpu: int | None, total: int, records: int,
                batch_records: int) -> None:
    """The receiving process: echoes `total` stamps, receives `records` one by one (and, for
    the ring, `batch_records` in batches), answering each phase with one message."""
    _pin_child(cpu)
    endpoint = _child_endpoint(kind, spec)
    clock = time.perf_counter_ns
    bad = 0
    for i in range(total):
        sequence, _ = endpoint.recv()
        endpoint.send(sequence, clock())
        bad += sequence != i
    for i in range(records):
        sequence, _ = endpoint.recv()
        bad += sequence != i
    endpoint.send(records, bad)
    if batch_records and isinstance(endpoint, _RingEndpoint):
        got = 0
        polls = 0
        while got < batch_records:
            n = endpoint.inbox.read_into(endpoint.batch)
            got += n
            polls = 0 if n else polls + 1
            if polls and polls & 0xFFFFF == 0:
                endpoint.check_peer(polls, endpoint.inbox)
        endpoint.send(got, 0)
    endpoint.close()
    os._exit(0 if bad == 0 else 3)


def _peer_setup(kind: str, tag: str) -> tuple[_Endpoint, Any, Callable[[], None], Callable[[], None]]:
    """Returns (parent endpoint, spec for the child, poison, cleanup) for one transport."""
    if kind == "multiprocessing_queue":
        context = _spawn()
        outbox, inbox = context.Queue(), context.Queue()
        return (_QueueEndpoint(outbox, inbox), (outbox, inbox),
                lambda: inbox.put(None), lambda: None)
    if kind == "posix_ipc":
        import posix_ipc

        names = (f"/{tag}-out", f"/{tag}-back")
        for name in names:
            posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_message_size=RECORD_SIZE).close()

        def unlink() -> None:
            for name in names:
                try:
                    posix_ipc.unlink_message_queue(name)
                except posix_ipc.ExistentialError:
                    pass

        return _PosixEndpoint(*names), names, lambda: None, unlink
    if kind == "zmq":
        folder = tempfile.mkdtemp(prefix="sor-bench-zmq-")
        paths = (os.path.join(folder, "out"), os.path.join(folder, "back"))
        addresses = tuple(f"ipc://{path}" for path in paths)

        def remove() -> None:
            for path in paths:
                if os.path.exists(path):
                    os.unlink(path)
            os.rmdir(folder)

        return _ZmqEndpoint(*addresses, bind=True), addresses, lambda: None, remove
    from sor.ring import Ring

    names = (f"{tag}-out", f"{tag}-back")
    outbox = Ring.create(names[0], _RING_DTYPE, 1 << 16, role="producer")
    inbox = Ring.create(names[1], _RING_DTYPE, 1 << 16, role="consumer")
    return _RingEndpoint(outbox, inbox), names, lambda: None, lambda: None


def _run_python(kind: str, samples: int, warmup: int, records: int, batch_records: int,
                cpus: dict[str, Any]) -> dict[str, Any]:
    """Runs one transport from Python across two processes: paced latency, then throughput."""
    tag = _unique(kind.replace("_", "-"))
    endpoint, spec, poison, cleanup = _peer_setup(kind, tag)
    total = warmup + samples
    batch_records = batch_records if kind == "sor_ring" else 0
    child = _spawn().Process(target=_peer_child, daemon=True,
                             args=(kind, spec, cpus["consumer_cpu"], total, records, batch_records))
    try:
        child.start()

        finished = threading.Event()

        def watch() -> None:
            # A blocking get() would wait forever for a child that died. Waits on the sentinel,
            # not join(): two threads reaping one child race, and the loser sees it alive.
            multiprocessing.connection.wait([child.sentinel])
            if not finished.is_set():
                try:
                    poison()
                except (OSError, ValueError):
                    pass

        threading.Thread(target=watch, daemon=True).start()
        one_way = np.empty(samples)
        half = np.empty(samples)
        clock = time.perf_counter_ns
        with _Pinned(cpus["producer_cpu"]) as pin:
            for i in range(total):
                sent = clock()
                endpoint.send(i, sent)
                _, received = endpoint.recv()
                answered = clock()
                if i >= warmup:
                    one_way[i - warmup] = received - sent
                    half[i - warmup] = (answered - sent) / 2
            start = clock()
            for i in range(records):
                endpoint.send(i, 0)
            count, bad = endpoint.recv()
            elapsed = clock() - start
            if bad or count != records:
                raise SorError(f"{kind}: {bad} records arrived out of order")
            batched = None
            if batch_records:
                block = np.zeros(_BATCH_RECORDS, dtype=_RING_DTYPE)
                start = clock()
                sent_records = 0
                polls = 0
                while sent_records < batch_records:
                    n = endpoint.outbox.write(block[:batch_records - sent_records])
                    sent_records += n
                    polls = 0 if n else polls + 1
                    if polls and polls & 0xFFFFF == 0:
                        endpoint.check_peer(polls, endpoint.outbox)
                endpoint.recv()
                batched = batch_records / ((clock() - start) / 1e9)
        finished.set()
        _join(child, kind)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        endpoint.close()
        cleanup()
    result: dict[str, Any] = {
        "latency": _latency_summary(np.maximum(one_way, 0), half),
        "throughput": {"records": records, "throughput_per_s": records / (elapsed / 1e9)},
        "pinned": pin.pinned,
        "api": _API[kind],
    }
    if batched is not None:
        result["batch_throughput"] = {"records": batch_records, "batch_records": _BATCH_RECORDS,
                                      "throughput_per_s": batched}
    return result


_API = {
    "sor_ring": "sor.ring.Ring from Python: write(1-record array) / read_into(1-record array) "
                "busy-poll; stamps time.perf_counter_ns",
    "multiprocessing_queue": "multiprocessing.Queue (spawn context) put/get of 64-byte bytes, "
                             "blocking get",
    "posix_ipc": "posix_ipc.MessageQueue send/receive of 64-byte messages, blocking receive",
    "zmq": "pyzmq PUSH/PULL over ipc://, send/recv of 64-byte frames, blocking recv",
}


def _available(kind: str) -> str | None:
    module = {"posix_ipc": "posix_ipc", "zmq": "zmq"}.get(kind)
    if module is None:
        return None
    try:
        __import__(module)
    except ModuleNotFoundError:
        return (f"{module} is not installed: pip install \"sor[bench]\" "
                "(or pip install \".[bench]\" from a checkout)")
    return None


# ----------------------------------------------------------------------------- the report


def run(*, samples: int = 200_000, throughput_records: int = 20_000_000,
        python_samples: int = 20_000, python_records: int = 200_000,
        python_batch_records: int = 5_000_000, peers: bool = True) -> dict[str, Any]:
    """Runs the benchmark and returns its report (see bench/README.md)."""
    if min(samples, throughput_records, python_samples, python_records) < 1:
        raise SorError("sample and record counts must be at least 1")
    cpus = placement()
    warmup = max(samples // 10, 1)
    python_warmup = max(python_samples // 10, 1)
    report: dict[str, Any] = {
        "benchmark": "ring",
        "hardware": hardware(),
        "placement": cpus,
        "record_size": RECORD_SIZE,
        "parameters": {"samples": samples, "warmup": warmup,
                       "throughput_records": throughput_records,
                       "python_samples": python_samples, "python_warmup": python_warmup,
                       "python_records": python_records,
                       "python_batch_records": python_batch_records},
        "sor": _run_cpp(samples, warmup, throughput_records, cpus),
        "peers": {},
        "targets": TARGETS,
    }
    report["sor"]["python_processes"] = _run_python(
        "sor_ring", python_samples, python_warmup, python_records, python_batch_records, cpus)
    for kind in PEERS if peers else ():
        missing = _available(kind)
        if missing:
            report["peers"][kind] = {"skipped": missing}
            continue
        report["peers"][kind] = _run_python(kind, python_samples, python_warmup, python_records,
                                            0, cpus)
    report["ratios"] = _ratios(report)
    report["targets_met"] = _targets_met(report)
    return report


def _ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Peer / sor for p50 latency and sor / peer for throughput: above 1, sor is faster."""
    ratios: dict[str, Any] = {}
    sides = {"cpp": report["sor"]["cpp_processes"], "python": report["sor"]["python_processes"]}
    for name, peer in report["peers"].items():
        if "skipped" in peer:
            continue
        ratios[name] = {}
        for label, ours in sides.items():
            ratios[name][f"sor_{label}_p50"] = peer["latency"]["p50_ns"] / max(
                ours["latency"]["p50_ns"], 1e-9)
            ratios[name][f"sor_{label}_throughput"] = (ours["throughput"]["throughput_per_s"]
                                                      / peer["throughput"]["throughput_per_s"])
    return ratios


def _targets_met(report: dict[str, Any]) -> dict[str, Any]:
    sor = report["sor"]
    met: dict[str, Any] = {
        "one_way_p50_threads": sor["cpp_threads"]["latency"]["p50_ns"] <= TARGETS["one_way_p50_ns"],
        "one_way_p50_processes":
            sor["cpp_processes"]["latency"]["p50_ns"] <= TARGETS["one_way_p50_ns"],
        "throughput_threads":
            sor["cpp_threads"]["throughput"]["throughput_per_s"] >= TARGETS["throughput_per_s"],
        "throughput_processes":
            sor["cpp_processes"]["throughput"]["throughput_per_s"] >= TARGETS["throughput_per_s"],
    }
    queue = report["ratios"].get("multiprocessing_queue")
    for key in ("sor_cpp_p50", "sor_cpp_throughput", "sor_python_p50", "sor_python_throughput"):
        met[f"vs_multiprocessing_queue_{key[4:]}"] = (
            None if queue is None else queue[key] >= TARGETS["vs_multiprocessing_queue"])
    return met


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a table for a terminal."""
    hw, cpus = report["hardware"], report["placement"]
    pinned = ("producer cpu {producer_cpu}, consumer cpu {consumer_cpu}".format(**cpus)
              if cpus["producer_cpu"] is not None else "not pinned (fewer than two cpus)")
    lines = [f"sor bench ring  (cpu: {hw['cpu']}, {hw['logical_cpus']} logical cpus"
             f"{', virtualised' if hw['virtualised'] else ''}, python {hw['python']}, "
             f"sor {hw['sor']})",
             f"64-byte records; {pinned}; one way = receiver's clock minus sender's stamp, paced",
             "",
             f"{'path':<42}{'p50 ns':>10}{'p99 ns':>10}{'p99.9 ns':>11}{'rt/2 p50':>10}"
             f"{'M rec/s':>10}  pinned"]

    def row(label: str, side: dict[str, Any]) -> str:
        lat, tput = side["latency"], side["throughput"]
        return (f"{label:<42}{lat['p50_ns']:>10.1f}{lat['p99_ns']:>10.1f}{lat['p999_ns']:>11.1f}"
                f"{lat['round_trip_half_p50_ns']:>10.1f}{tput['throughput_per_s'] / 1e6:>10.2f}"
                f"  {'yes' if side['pinned'] else 'no'}")

    sor = report["sor"]
    lines.append(row("sor ring, C++, threads", sor["cpp_threads"]))
    lines.append(row("sor ring, C++, processes", sor["cpp_processes"]))
    lines.append(row("sor ring, Python, processes", sor["python_processes"]))
    for name, peer in report["peers"].items():
        if "skipped" not in peer:
            lines.append(row(f"{name}, Python, processes", peer))
    batch = sor["python_processes"].get("batch_throughput")
    if batch:
        lines.append(f"sor ring from Python in batches of {batch['batch_records']}: "
                     f"{batch['throughput_per_s'] / 1e6:.1f} M records/s")
    for name, peer in report["peers"].items():
        if "skipped" in peer:
            lines.append(f"{name}: skipped: {peer['skipped']}")
    if report["ratios"]:
        lines += ["", f"{'ratio vs peer (above 1: sor faster)':<38}{'C++ p50':>9}{'C++ tput':>10}"
                      f"{'Py p50':>9}{'Py tput':>9}"]
        for name, r in report["ratios"].items():
            lines.append(f"{name:<38}{r['sor_cpp_p50']:>9.0f}{r['sor_cpp_throughput']:>10.0f}"
                         f"{r['sor_python_p50']:>9.1f}{r['sor_python_throughput']:>9.1f}")
    targets = report["targets"]
    lines += ["", f"targets: one-way p50 <= {targets['one_way_p50_ns']:.0f} ns, "
                  f">= {targets['throughput_per_s'] / 1e6:.0f} M records/s, "
                  f">= {targets['vs_multiprocessing_queue']:.0f}x multiprocessing.Queue"]
    for key, value in report["targets_met"].items():
        lines.append(f"  {key:<44}{'n/a' if value is None else 'met' if value else 'NOT met'}")
    return "\n".join(lines)
