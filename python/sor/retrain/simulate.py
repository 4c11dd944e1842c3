"""A simulated trading day for the learning loop: the real engine routes parent orders in the
simulator (``sor.monitor.simulate.route_session``); its decision and audit records go to an
audit journal, and the market data it saw to ITCH 5.0 files, one per lit venue, as a live
router's journal and its venues' feed captures would. ``sor data ingest`` takes both.
"""

from __future__ import annotations

import datetime as _datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sor.errors import UsageError

_NS = 1_000_000_000


@dataclass(frozen=True)
class SimulatedDay:
    """What ``simulate_day`` wrote and routed."""

    journal_path: Path
    itch_paths: dict[str, Path]
    trading_day: str
    parents: int
    decisions: int
    children: int
    wall_seconds: float
    market_events: dict[str, int] = field(default_factory=dict)
    scenario: str = "default"
    seed: int = 1
    hours: float = 6.5
    adv_shares: float = 0.0


def trading_day_of(ts_ns: int) -> str:
    """Returns the UTC date ("YYYY-MM-DD") of an epoch-nanosecond time."""
    moment = _datetime.datetime.fromtimestamp(ts_ns / _NS, tz=_datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d")


def _midnight_ns(ts_ns: int) -> int:
    return ts_ns - ts_ns % (86_400 * _NS)


def simulate_day(out_dir: str | os.PathLike[str], *, scenario: str = "default", seed: int = 1,
                 hours: float = 6.5, registry: Any = None, policy: str = "ml_router",
                 step_s: float = 0.5, start_offset_s: float = 600.0) -> SimulatedDay:
    """Routes `hours` of simulated trading on `scenario` (market `seed`) through the engine
    with the models of `registry` (a ModelRegistry, a registry folder, or None for the shipped
    models) and `policy`; writes ``out_dir/audit-<scenario>-<seed>.sorj`` (header metadata
    ``trading_day``, ``venues``, ``instruments``, ``scenario``, ``seed``, ``adv_shares``) and
    ``out_dir/<VENUE>.itch`` per lit venue (file framing, stock directory first). Returns what
    it wrote and counted."""
    from sor import _core
    from sor.feed.itch import ItchWriter
    from sor.models.registry import ModelRegistry
    from sor.monitor.journal import DECISION_CHILD_SENT

    if not 0 < hours <= 24:
        raise UsageError(f"hours must be in (0, 24], got {hours}")
    if not step_s > 0:
        raise UsageError(f"step_s must be > 0, got {step_s}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models: Any = "shipped" if registry is None else (
        registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry))
    if hours * 3600.0 <= start_offset_s:
        raise UsageError(f"hours ({hours}) must be longer than the warm-up "
                         f"({start_offset_s} s)")
    from sor.sim import Market

    with Market(scenario, seed=seed) as market:
        session_start = market.session_start_ns
        venue_names = {int(v.venue_id): str(v.name) for v in market.spec.venues}
        lit = [int(v.venue_id) for v in market.spec.venues
               if v.kind == _core.SimVenueKind.LIT]
    from sor.monitor.simulate import _scenario_adv, router_config

    adv = _scenario_adv(models if models != "shipped" else ModelRegistry(), scenario)
    config = router_config("sorday", adv_shares=adv)
    instruments = {int(i.instrument_id): str(i.symbol) for i in config.instruments}
    day = trading_day_of(session_start)
    midnight = _midnight_ns(session_start)
    locates = {instrument: instrument + 1 for instrument in instruments}
    counts = {venue: 0 for venue in lit}
    itch_paths = {venue_names[venue]: out / f"{venue_names[venue]}-{day}.itch" for venue in lit}
    handles = {}
    try:
        for venue in lit:
            # written under a temporary name, renamed when complete
            handles[venue] = open(itch_paths[venue_names[venue]].with_suffix(".itch.tmp"), "wb")
            with ItchWriter(framing="file", session_date_ns=midnight,
                            stock_locates=locates) as writer:
                for instrument, symbol in sorted(instruments.items()):
                    writer.stock_directory(locates[instrument], symbol)
                writer.system_event("O", session_start)
                handles[venue].write(writer.getvalue())  # type: ignore[arg-type]
        session, journal_path, wall = _route(
            out, scenario, seed, hours, policy, models, step_s, start_offset_s, day,
            venue_names, instruments, adv, session_start, lit, handles, counts, midnight,
            locates)
        for venue, handle in handles.items():
            with ItchWriter(framing="file", session_date_ns=midnight,
                            stock_locates=locates) as writer:
                writer.system_event("C", session_start + int(hours * 3600 * _NS))
                handle.write(writer.getvalue())  # type: ignore[arg-type]
            handle.close()
            os.replace(handle.name, itch_paths[venue_names[venue]])
    finally:
        for handle in handles.values():
            if not handle.closed:
                handle.close()
                os.unlink(handle.name)
    sent = int(np.count_nonzero(session.decisions["flags"] & DECISION_CHILD_SENT))
    return SimulatedDay(journal_path, itch_paths, day, len(session.parents),
                        int(len(session.decisions)), sent, wall,
                        {venue_names[v]: c for v, c in counts.items()}, scenario, int(seed),
                        float(hours), float(adv))


def _route(out: Path, scenario: str, seed: int, hours: float, policy: str, models: Any,
           step_s: float, start_offset_s: float, day: str, venue_names: dict[int, str],
           instruments: dict[int, str], adv: float, session_start: int, lit: list[int],
           handles: dict[int, Any], counts: dict[int, int], midnight: int,
           locates: dict[int, int]) -> tuple[Any, Path, float]:
    """Runs the session, journaling it and appending what the router saw to the ITCH files."""
    from sor.feed.itch import encode
    from sor.monitor.journal import AuditJournal
    from sor.monitor.simulate import route_session

    def on_market_data(events: np.ndarray) -> None:
        for venue in lit:
            mine = events[events["venue_id"] == venue]
            if len(mine):
                handles[venue].write(encode(mine, session_date_ns=midnight,
                                            stock_locates=locates))
                counts[venue] += len(mine)

    journal_path = out / f"audit-{scenario}-{seed}.sorj"
    if journal_path.exists():
        journal_path.unlink()
    metadata = {"trading_day": day,
                "venues": {str(k): v for k, v in venue_names.items()},
                "instruments": {str(k): v for k, v in instruments.items()},
                "scenario": scenario, "seed": int(seed), "policy": policy,
                "adv_shares": {instruments[0]: adv} if 0 in instruments else {},
                "source": "sor.retrain.simulate_day"}
    started = time.monotonic()
    with AuditJournal(journal_path, run_id=f"sim-{scenario}-{seed}-{day}",
                      metadata=metadata, flush_interval_s=1.0) as journal:
        journal.append_event("session_up", ts_ns=session_start, scenario=scenario,
                             seed=int(seed), hours=float(hours),
                             adv_shares=metadata["adv_shares"])

        def on_step(decisions: np.ndarray, audit: np.ndarray) -> None:
            journal.append_decisions(decisions)
            journal.append_audit(audit)

        session = route_session(scenario, seed, minutes=hours * 60.0 - start_offset_s / 60.0,
                                start_offset_s=start_offset_s, policy=policy, models=models,
                                step_s=step_s, on_step=on_step, on_market_data=on_market_data,
                                name=f"sorday{os.getpid()}")
        journal.append_event("session_down", ts_ns=session_start + int(hours * 3600 * _NS),
                             parents=len(session.parents))
    return session, journal_path, time.monotonic() - started


__all__ = ["SimulatedDay", "simulate_day", "trading_day_of"]
