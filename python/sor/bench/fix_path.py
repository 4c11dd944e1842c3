"""`sor bench fix-path`: OMS NewOrderSingle in -> first child NewOrderSingle out, through the
whole router (FIX session, gateway, engine, FIX session), against the same router running its
sessions on simplefix (``sor.bench.fix_peer``) in the same run.

Setup, per codec: a router (``sor.fix.gateway.Gateway``: the engine in its thread with the
``spin`` idle strategy, the reactor busy-polling) with one OMS acceptor and one venue
initiator (XNAS). Both counterparties are raw sockets in this process (no session layer: their
messages are encoded before the clock starts), so the one Python thread that runs the reactor
is not shared with them. The engine's book holds a large XNAS offer, so every parent (buy 100
AAPL, market) is answered at once with one IOC child to XNAS; the venue socket fills it, and
the OMS socket drains the reports, before the next parent.

Three clocks per parent:

- **in the router** (the target's clock): ``GatewayCore.order_path_latency_ns()``, from the
  reactor finding the OMS socket readable with the NewOrderSingle (before ``recv``, framing,
  parsing, the session checks, the gateway, the engine, encoding, the store and the journal) to
  the first child written to the venue's socket;
- **OMS send to child written**: ``time_ns`` before the OMS socket's ``send`` to the child
  written (adds one loopback hop and the select that finds it);
- **wire to wire**: ``perf_counter_ns`` before the OMS socket's ``send`` to the venue socket's
  ``recv`` returning the child. The harness has one Python thread, so this also holds the rest
  of the router's pass (the OMS's New, journal and store) before the venue socket is read: an
  upper bound.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from typing import Any

import numpy as np

from sor.bench.book import hardware
from sor.fix import codec
from sor.ring import MD_EVENT_DTYPE

TARGETS = {"in_router_p50_us": 25.0}
CLOCKS = ("in_router", "oms_send_to_child_written", "wire_to_wire")
TICKS = 1_000_100  # the XNAS offer, 100.01 USD


def _percentiles(values_ns: np.ndarray) -> dict[str, float]:
    if values_ns.size == 0:  # e.g. every parent waited past the spin limit (not timed inside)
        nan = float("nan")
        return {"p50_us": nan, "p99_us": nan, "p999_us": nan, "mean_us": nan, "samples": 0}
    p50, p99, p999 = np.percentile(values_ns, [50, 99, 99.9])
    return {"p50_us": float(p50) / 1e3, "p99_us": float(p99) / 1e3,
            "p999_us": float(p999) / 1e3, "mean_us": float(values_ns.mean()) / 1e3,
            "samples": int(values_ns.size)}


class _RawPeer:
    """A counterparty on a bare non-blocking socket: our encoder before the clock, a framer
    after it; no session layer."""

    def __init__(self, sock: socket.socket, sender: str, target: str) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.sender, self.target = sender, target
        self.seq_num = 1
        self.framer = codec.FixFramer()
        self.received: list[Any] = []

    def encode(self, msg_type: str, body: list[tuple[int, Any]]) -> bytes:
        raw = codec.encode("FIX.4.4", msg_type, self.sender, self.target, self.seq_num,
                           time.time_ns(), body)
        self.seq_num += 1
        return raw

    def send(self, raw: bytes) -> None:
        view = memoryview(raw)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                pass

    def poll(self) -> int:
        """Reads what arrived; returns the number of messages."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return 0
        frames = [codec.parse(f) for s, f in self.framer.feed(data) if s == codec.FrameStatus.OK]
        self.received += frames
        return len(frames)

    def take(self, msg_type: str) -> list[Any]:
        taken = [m for m in self.received if m.msg_type == msg_type]
        self.received = [m for m in self.received if m.msg_type != msg_type]
        return taken


def _book() -> np.ndarray:
    """A bid at 100.00 and a large XNAS offer at 100.01 (AAPL)."""
    events = np.zeros(2, MD_EVENT_DTYPE)
    events["kind"] = 1
    events["venue_id"] = 0
    events["side"] = [1, 2]
    events["price_ticks"] = [1_000_000, TICKS]
    events["quantity"] = 1_000_000_000
    events["order_id"] = [1, 2]
    events["ts_event"] = events["ts_recv"] = time.time_ns()
    return events


def _run_router(codec_object: Any, parents: int, warmup: int, *, models: Any = None,
                background: Any = None) -> dict[str, Any]:
    """Runs one router and times `parents` parents after `warmup`. `models`: a registry for
    the engine (None: none); `background(gateway)` is called when the timed parents start and
    returns a function that stops what it started (``sor bench hot-swap``'s model swaps)."""
    from sor.config import default_config, with_changes
    from sor.fix.config import SessionConfig
    from sor.fix.gateway import Gateway

    config = with_changes(default_config(), {
        "engine.name": f"sor-bench-fix-{os.getpid()}", "engine.idle_strategy": "spin",
        "risk.max_orders_per_second": 10_000_000,
        "risk.max_gross_notional_usd": 1e15, "risk.max_order_notional_usd": 1e9})
    venue_listener = socket.create_server(("127.0.0.1", 0))
    common = dict(begin_string="FIX.4.4", sender_comp_id="SOR", host="127.0.0.1",
                  store_dir="fix", logout_timeout_s=0.2, heartbeat_interval_s=30)
    sessions = [
        SessionConfig(name="OMS", role="acceptor", application="oms", target_comp_id="OMS",
                      port=0, **common),
        SessionConfig(name="XNAS", role="initiator", application="venue", venue="XNAS",
                      target_comp_id="XNAS", port=venue_listener.getsockname()[1], **common)]
    with tempfile.TemporaryDirectory(prefix="sor-bench-fix-") as state, venue_listener:
        # with models, the one venue would trip the venue-concentration guard: guards off
        gateway = Gateway(config, sessions, state_dir=state, busy_poll=True, codec=codec_object,
                          models=models, model_guards=models is None)
        oms = venue = None
        stop_background: Any = None
        gateway.start()
        try:
            reactor, engine = gateway.reactor, gateway.engine
            engine.publish_market_data(_book())

            def run_until(predicate: Any, what: str, timeout_s: float = 5.0) -> None:
                reactor.run(stop_when=predicate, timeout_s=timeout_s)
                if not predicate():
                    raise TimeoutError(f"bench fix-path: no {what} within {timeout_s} s")

            venue_listener.setblocking(False)
            accepted: list[socket.socket] = []

            def accept() -> bool:
                if not accepted:
                    try:
                        accepted.append(venue_listener.accept()[0])
                    except BlockingIOError:
                        return False
                return True

            run_until(accept, "venue connection")
            venue = _RawPeer(accepted[0], "XNAS", "SOR")
            run_until(lambda: venue.poll() > 0 or bool(venue.received), "venue Logon")
            venue.take("A")
            venue.send(venue.encode("A", [(98, 0), (108, 30)]))
            oms = _RawPeer(socket.create_connection(("127.0.0.1", gateway.oms_port)), "OMS",
                           "SOR")
            oms.send(oms.encode("A", [(98, 0), (108, 30)]))
            run_until(lambda: oms.poll() > 0 or bool(oms.received), "OMS Logon answer")
            oms.take("A")
            run_until(lambda: gateway.sessions["XNAS"].is_logged_on, "venue session logon")
            engine.wait_idle()

            wire = np.zeros(parents, np.int64)
            to_child = np.zeros(parents, np.int64)
            clock = time.perf_counter_ns
            for i in range(warmup + parents):
                order = oms.encode("D", [(11, f"B{i}"), (21, "1"), (55, "AAPL"), (54, "1"),
                                         (38, 100), (40, "1"),
                                         (60, codec.format_utc_timestamp(time.time_ns()))])
                if i == warmup:
                    gateway.core.reset_latency()
                    if background is not None:
                        stop_background = background(gateway)
                arrived: list[int] = []

                def child_arrived() -> bool:
                    if venue.poll():
                        arrived.append(clock())
                    return bool(arrived)

                sent_wall = time.time_ns()
                started = clock()
                oms.send(order)
                run_until(child_arrived, "child order")
                if i >= warmup:
                    wire[i - warmup] = arrived[0] - started
                    to_child[i - warmup] = gateway.core.first_child_sent_ns - sent_wall
                children = venue.take("D")
                for child in children:
                    venue.send(venue.encode("8", [
                        (37, f"V{i}"), (11, child.get(11)), (17, f"E{i}"), (150, "F"),
                        (39, "2"), (55, "AAPL"), (54, "1"), (38, child.get(38)),
                        (32, child.get(38)), (31, child.get(44) or "100.01"), (14, child.get(38)),
                        (151, 0), (6, child.get(44) or "100.01"), (851, 2),
                        (60, codec.format_utc_timestamp(time.time_ns()))]))

                def parent_filled() -> bool:
                    oms.poll()
                    return any(m.get(11) == f"B{i}" and m.get(39) in ("2", "8")
                               for m in oms.received)

                run_until(parent_filled, "parent's final report")
                oms.received.clear()
            if stop_background is not None:
                stop_background()
                stop_background = None
            inside = gateway.core.order_path_latency_ns()
            counters = dict(gateway.core.counters)
            engine_counters = engine.counters()
        finally:
            if stop_background is not None:
                stop_background()
            for peer in (oms, venue):
                if peer is not None:
                    peer.sock.close()
            gateway.close(logout_timeout_s=0.2)
    return {"wire_to_wire": _percentiles(wire), "in_router": _percentiles(inside),
            "oms_send_to_child_written": _percentiles(to_child),
            "engine_spin_timeouts": int(counters.get("engine_spin_timeouts", 0)),
            "child_orders": int(engine_counters["child_orders"])}


def run(*, parents: int = 2_000, warmup: int = 200, peer_parents: int = 500,
        peers: bool = True) -> dict[str, Any]:
    """Runs the benchmark and returns its report (see the module docstring)."""
    from sor.bench.fix_peer import SIMPLEFIX_CODEC

    report: dict[str, Any] = {"benchmark": "fix-path", "hardware": hardware(),
                              "setup": {"parents": parents, "warmup": warmup,
                                        "peer_parents": peer_parents,
                                        "engine_idle_strategy": "spin",
                                        "reactor": "busy_poll",
                                        "policy": "built-in (best-price sweep)"},
                              "targets": TARGETS, "routers": {}}
    report["routers"]["sor"] = _run_router(None, parents, warmup)
    if peers:
        report["routers"]["simplefix"] = _run_router(SIMPLEFIX_CODEC, peer_parents,
                                                     min(warmup, peer_parents))
        ours = report["routers"]["sor"]
        theirs = report["routers"]["simplefix"]
        report["ratios"] = {
            clock: {q: theirs[clock][q] / ours[clock][q] for q in ("p50_us", "p99_us")}
            for clock in CLOCKS}
    report["target_met"] = report["routers"]["sor"]["in_router"]["p50_us"] <= \
        TARGETS["in_router_p50_us"]
    return report


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as a table for a terminal."""
    hw = report["hardware"]
    lines = [f"sor bench fix-path  (cpu: {hw['cpu']}, {hw['logical_cpus']} logical cpus, "
             f"python {hw['python']}, sor {hw['sor']})",
             "OMS NewOrderSingle in -> first child NewOrderSingle out; engine spinning, reactor "
             "busy-polling, counterparties on raw sockets in this process", "",
             f"{'router sessions on':<20}{'clock':<27}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}"
             f"{'mean us':>9}{'n':>7}"]
    for name, result in report["routers"].items():
        for clock in CLOCKS:
            r = result[clock]
            lines.append(f"{name:<20}{clock:<27}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}"
                         f"{r['p999_us']:>10.1f}{r['mean_us']:>9.1f}{r['samples']:>7}")
    if "ratios" in report:
        for clock, ratio in report["ratios"].items():
            lines.append(f"simplefix / sor, {clock}: p50 {ratio['p50_us']:.2f}x, "
                         f"p99 {ratio['p99_us']:.2f}x")
    lines.append(f"target in-router p50 <= {TARGETS['in_router_p50_us']:.0f} us: "
                 f"{'met' if report['target_met'] else 'NOT met'}")
    return "\n".join(lines)
