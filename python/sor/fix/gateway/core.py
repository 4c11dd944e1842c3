"""The gateway's order logic, independent of the transport: the parent book (one entry per
OMS order), the child map (one entry per venue order), the aggregation of child fills into
parent reports, the translation between FIX messages and engine records, the journal and the
recovery after a crash.

:class:`GatewayCore` runs on one thread (the reactor's). Its inputs are the OMS's and the
venues' application messages (``on_oms_message``, ``on_venue_message``), session events
(``on_oms_logon``, ``on_venue_logon``) and the engine's output rings (``poll``). Its outputs
are ``send(msg_type, body)`` calls on session objects (``sor.fix.session.FixSession``) and
records written to the engine's command and execution rings. Every state change is appended
to the journal, and the journal is flushed before any message leaves the process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from sor import _core
from sor.errors import OperatorActionError, OrderValidationError, SorError
from sor.fix import codec
from sor.fix.gateway import messages as m
from sor.fix.journal import Journal, JournalRecord, RecordKind
from sor.ring import AUDIT_RECORD_DTYPE, COMMAND_DTYPE, EXEC_REPORT_DTYPE, ORDER_INTENT_DTYPE

log = logging.getLogger("sor.fix.gateway")

# the engine's horizon for a parent that names no end (EngineOptions::default_horizon_ns); the
# gateway sets it explicitly so a deadline survives a restart
DEFAULT_HORIZON_NS = 1_800_000_000_000

# how a parent finished (PARENT_DONE.how in the journal; a parent stopped by risk is
# DONE_CANCELED with a PARENT_STOPPED record before it)
DONE_FILLED, DONE_CANCELED, DONE_EXPIRED, DONE_REJECTED = 0, 1, 2, 3
_DONE_STATUS = {DONE_FILLED: "2", DONE_CANCELED: "4", DONE_EXPIRED: "3", DONE_REJECTED: "8"}

# parent status in the gateway
PENDING_NEW, WORKING, DONE = 0, 1, 2

# engine enums as plain ints (the order path compares ints)
_NEW, _CANCEL = int(_core.OrderAction.NEW), int(_core.OrderAction.CANCEL)
_ACK, _FILL = int(_core.ExecKind.ACK), int(_core.ExecKind.FILL)
_CANCELLED, _REJECTED = int(_core.ExecKind.CANCELLED), int(_core.ExecKind.REJECTED)
_ACCEPTED = int(_core.AuditKind.COMMAND_ACCEPTED)
_CMD_REJECTED = int(_core.AuditKind.COMMAND_REJECTED)
_PARENT_DONE = int(_core.AuditKind.PARENT_DONE)
_CHILD_ORDER = int(_core.AuditKind.CHILD_ORDER)
_RISK_REJECT = int(_core.AuditKind.RISK_REJECT)
_EXECUTION = int(_core.AuditKind.EXECUTION)
_MODEL_GUARD = int(_core.AuditKind.MODEL_GUARD)
_RISK_STATE_AUDIT = int(_core.AuditKind.RISK_STATE)
_CMD_NEW, _CMD_CANCEL = int(_core.CommandKind.NEW_PARENT), int(_core.CommandKind.CANCEL_PARENT)
_CMD_AMEND = int(_core.CommandKind.AMEND_PARENT)
_CMD_ACCOUNT_STATE = int(_core.CommandKind.ACCOUNT_STATE)
_TIF_IOC, _TIF_POST = int(_core.TimeInForce.IOC), int(_core.TimeInForce.POST_ONLY)
_TIF_MID = int(_core.TimeInForce.MIDPOINT_PEG)
_REJECT_NAMES = {int(v): k for k, v in _core.RejectReason.__members__.items()}
_GUARD_NAMES = {int(v): k for k, v in _core.ModelGuardReason.__members__.items()}
_RISK_STATE_NAMES = {int(v): k for k, v in _core.RiskState.__members__.items()}
_HALTED_STATE = int(_core.RiskState.HALTED)
_R = _core.RejectReason
_SLOT_NAMES = ("fill_probability", "adverse_move", "market_impact", "action_value")
# a child refused for one of these stops its parent (PARENT_DONE value_b 3 follows)
PARENT_STOPPING_REASONS = frozenset(int(r) for r in (
    _R.RESTRICTED, _R.CREDIT_LIMIT, _R.POSITION_LIMIT, _R.UNKNOWN_ACCOUNT))
_HALTED_REASON = int(_R.HALTED)
_REDUCING_REASON = int(_R.REDUCING)
_STOPPED_BY_RISK = 3   # PARENT_DONE value_b

_COMMAND = struct.Struct("<qQQqqqQIBBBBQdqII32x")   # sor::Command (128 bytes)
_EXEC = struct.Struct("<qqQQqqqIBBBB")      # sor::ExecReport
assert _COMMAND.size == COMMAND_DTYPE.itemsize == 128
assert _EXEC.size == EXEC_REPORT_DTYPE.itemsize == 64

DEFAULT_RISK_REPORT_INTERVAL_S = 5.0
"""At most one restated report per parent and refusal reason in this many seconds."""

_TERMINAL_STATUS = frozenset(("2", "3", "4", "8", "C"))


def session_active(session: Any) -> bool:
    """Returns whether a FixSession is logged on (state ACTIVE)."""
    return bool(session.is_logged_on)


def client_order_hash(session: str, cl_ord_id: str) -> int:
    """Returns the engine's duplicate key of a ClOrdID on a session: the first 8 bytes
    (little-endian) of blake2b(session + "\\x01" + ClOrdID); never 0 (0 means no check)."""
    digest = hashlib.blake2b(f"{session}\x01{cl_ord_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") or 1


def trading_day_of(ts_ns: int) -> int:
    """Returns the UTC date of an epoch-ns time as yyyymmdd."""
    t = time.gmtime(ts_ns // 1_000_000_000)
    return t.tm_year * 10000 + t.tm_mon * 100 + t.tm_mday


@dataclass
class VenueStats:
    """What the engine's audit records say about one venue since the router started."""

    orders: int = 0            # child orders written (CHILD_ORDER)
    ordered_shares: int = 0
    fills: int = 0             # executions applied (EXECUTION, fill)
    filled_shares: int = 0
    rejects: int = 0           # children the venue (or the gateway for it) rejected
    risk_rejects: int = 0      # children the risk stage refused for this venue


@dataclass
class _RiskReport:
    """Rate limiting of one parent's restated reports for one refusal reason."""

    last_sent_ns: int = 0
    pending: int = 0
    value_a: int = 0
    value_b: int = 0
    venues: set[int] = field(default_factory=set)


class Parent:
    """One parent order of the OMS, as the gateway knows it."""

    __slots__ = ("parent_order_id", "session", "cl_ord_id", "symbol", "instrument_id", "side",
                 "side_code", "quantity", "ord_type", "limit_price_ticks", "time_in_force",
                 "end_time_ns", "urgency", "target_strategy", "received_ns", "cum_quantity",
                 "notional_ticks", "status", "done_how", "pending_cancel", "pending_replace",
                 "engine_base", "submitted", "open_children", "orphans", "account",
                 "account_id", "stop_text", "stop_reason", "router_cancel", "last_risk",
                 "arrival_mid_ticks", "done_ns")

    def __init__(self, parent_order_id: int, session: str, order: m.NewOrder,
                 end_time_ns: int, received_ns: int) -> None:
        self.parent_order_id = parent_order_id
        self.session = session
        self.cl_ord_id = order.cl_ord_id
        self.symbol = order.symbol
        self.instrument_id = order.instrument_id
        self.side = order.side
        self.side_code = order.side_code
        self.quantity = order.quantity
        self.ord_type = order.ord_type
        self.limit_price_ticks = order.limit_price_ticks
        self.time_in_force = order.time_in_force
        self.end_time_ns = end_time_ns
        self.urgency = order.urgency
        self.target_strategy = order.target_strategy
        self.received_ns = received_ns
        self.cum_quantity = 0
        self.notional_ticks = 0          # sum of fill price ticks x shares
        self.status = PENDING_NEW
        self.done_how = -1
        self.pending_cancel: tuple[str, str] | None = None      # (ClOrdID, OrigClOrdID)
        self.pending_replace: m.ReplaceRequest | None = None
        self.engine_base = 0             # CumQty when the engine (re)started working it
        self.submitted = False           # sent to this incarnation's engine
        self.open_children = 0
        self.orphans = 0                 # children of an earlier incarnation still open
        self.account = order.account     # Account (1) as received ("" = account 0)
        self.account_id = 0
        self.stop_text = ""              # why the engine stopped it for risk (Text)
        self.stop_reason = ""            # the RejectReason name that stopped it
        self.router_cancel = ""          # the router cancels it on its own (why)
        self.last_risk: tuple[int, int, int] = (0, 0, 0)   # (reason, value_a, value_b)
        self.arrival_mid_ticks = 0.0     # the NBBO mid when the engine took it (decisions)
        self.done_ns = 0

    @property
    def leaves_quantity(self) -> int:
        """Returns the shares still to work (0 once done)."""
        if self.status == DONE:
            return 0
        return max(0, self.quantity - self.cum_quantity)

    def ord_status(self) -> str:
        """Returns the parent's OrdStatus (39)."""
        if self.status == DONE:
            return _DONE_STATUS[self.done_how]
        if self.pending_cancel is not None:
            return "6"
        if self.status == PENDING_NEW:
            return "A"
        if self.cum_quantity <= 0:
            return "0"
        return "2" if self.cum_quantity >= self.quantity else "1"

    def snapshot(self) -> dict[str, Any]:
        """Returns the parent's state as plain values."""
        return {"parent_order_id": self.parent_order_id, "session": self.session,
                "cl_ord_id": self.cl_ord_id, "symbol": self.symbol, "side": self.side_code,
                "quantity": self.quantity, "cum_quantity": self.cum_quantity,
                "leaves_quantity": self.leaves_quantity, "notional_ticks": self.notional_ticks,
                "ord_status": self.ord_status(), "open_children": self.open_children,
                "orphans": self.orphans, "account": self.account,
                "stop_reason": self.stop_reason or None}

    def implementation_shortfall_bps(self, tick_usd: float = 1.0) -> float | None:
        """Returns the cost of the fills against the arrival mid in bps (positive: worse
        than arrival), None before a fill or without an arrival mid."""
        if self.cum_quantity <= 0 or self.arrival_mid_ticks <= 0:
            return None
        average = self.notional_ticks / self.cum_quantity
        signed = average - self.arrival_mid_ticks if self.side == 1 else \
            self.arrival_mid_ticks - average
        return signed / self.arrival_mid_ticks * 1e4


class Child:
    """One child order at a venue."""

    __slots__ = ("incarnation", "child_order_id", "parent", "venue_id", "quantity", "price_ticks",
                 "time_in_force", "cum_quantity", "done", "cl_ord_id", "orphan",
                 "cancel_sent_ns", "venue_order_id", "pending_replace")

    def __init__(self, incarnation: int, child_order_id: int, parent: Parent | None,
                 venue_id: int, quantity: int, price_ticks: int, time_in_force: int) -> None:
        self.incarnation = incarnation
        self.child_order_id = child_order_id
        self.parent = parent
        self.venue_id = venue_id
        self.quantity = quantity
        self.price_ticks = price_ticks
        self.time_in_force = time_in_force
        self.cum_quantity = 0
        self.done = False
        self.cl_ord_id = f"{incarnation}.{child_order_id}"
        self.orphan = False
        self.cancel_sent_ns = 0
        self.venue_order_id: str | None = None
        self.pending_replace: tuple[str, int, int] | None = None   # (ClOrdID, qty, price)


class GatewayCore:
    """The router's order logic around one engine (see the module docstring).

    `engine` is a started ``sor.Engine`` (this object takes its command and execution rings
    as producer and its order and audit rings as consumer); `journal` an open
    :class:`~sor.fix.journal.Journal`. ``replay()`` must be called once before anything else:
    it rebuilds the state the journal holds and starts a new incarnation.
    """

    def __init__(self, config: Any, engine: Any, journal: Journal, *,
                 is_active: Callable[[Any], bool] = session_active,
                 clock: Callable[[], int] = time.time_ns, spin_limit_ns: int = 200_000,
                 orphan_retry_s: float = 2.0, latency_samples: int = 1 << 16,
                 risk_report_interval_s: float = DEFAULT_RISK_REPORT_INTERVAL_S) -> None:
        self.engine = engine
        self.journal = journal
        self._is_active = is_active
        self._clock = clock
        self._spin_limit_ns = int(spin_limit_ns)
        self._orphan_retry_ns = int(orphan_retry_s * 1e9)
        if not risk_report_interval_s > 0:
            raise SorError(f"risk_report_interval_s must be positive, got "
                           f"{risk_report_interval_s}")
        self._risk_report_ns = int(risk_report_interval_s * 1e9)
        self.tick_usd = float(config.price_tick_usd)
        self._tick = m.tick_decimal(self.tick_usd)
        self.set_config(config)
        self.venue_stats: dict[int, VenueStats] = {v: VenueStats() for v in self.venue_names}
        self.oms_sessions: dict[str, Any] = {}
        self.venue_sessions: dict[int, Any] = {}
        self.parents: dict[int, Parent] = {}
        self.children: dict[tuple[int, int], Child] = {}
        self._cl_ord_ids: dict[str, dict[str, Parent | None]] = {}   # session -> ClOrdID -> parent
        self._venue_exec_ids: dict[int, set[str]] = {}
        self._commands: dict[int, tuple[int, Parent, Any]] = {}
        self._outbox_tail: dict[str, JournalRecord] = {}
        self._waiting: set[int] = set()            # parents waiting for orphans before resuming
        self.incarnation = 0
        self._next_parent_id = 1
        self._next_command = 1
        self._next_exec = 1
        self._next_child_request = 1
        self._replayed = False
        self.audit_listeners: list[Callable[[np.ndarray], None]] = []
        self.decision_listeners: list[Callable[[np.ndarray], None]] = []
        self.event_listeners: list[Callable[..., None]] = []
        """Called as listener(kind, severity, text, **fields) for what an operator must see
        (risk stops and refusals, sessions up and down, guard trips); the router journals
        and shows them."""
        # the risk state the operator set (the engine's is in its parameter block)
        self.risk_state = 0
        self.risk_operator = ""
        self.risk_reason = ""
        self.risk_changed_ns = 0
        self.gate_closed = False      # HALTED: no child leaves the gateway
        # the model guard as the audit trail and the journal say
        self.model_tripped = False
        self.model_guard_reason = 0
        self.model_detail = ""
        self.model_since_ns = 0
        self._pending_model_detail = ""
        self.operator_acting = False  # an operator action runs: it makes its own events
        self._engine_operator = ("", "")
        self.closing = False          # the router is shutting down: no cancel on disconnect
        self._risk_reports: dict[tuple[int, int], _RiskReport] = {}
        self._venues_dropped: set[int] = set()
        # filled position and notional per (trading day, account, instrument) from the fills
        self._account_totals: dict[tuple[int, str, int], list[float]] = {}
        self._account_dirty: set[tuple[int, str, int]] = set()
        self.counters: dict[str, int] = dict.fromkeys((
            "oms_new_orders", "oms_rejects", "oms_duplicate_cl_ord_ids", "oms_cancel_requests",
            "oms_replace_requests", "oms_cancel_rejects", "oms_reports", "oms_possdup_ignored",
            "children_sent", "children_rejected_venue_down", "children_rejected_unknown_venue",
            "child_cancels_sent", "child_cancels_queued_venue_down", "child_replaces_sent",
            "venue_reports", "venue_fills", "venue_duplicate_exec_ids", "venue_unknown_orders",
            "venue_unsupported_reports", "venue_cancel_rejects", "venue_cum_mismatches",
            "sub_tick_fill_prices", "overfills", "orphans", "orphans_resolved",
            "parents_resumed", "outbox_resent", "engine_reports", "engine_commands",
            "engine_spin_timeouts", "engine_heartbeat_late", "children_rejected_halted",
            "risk_rejects", "risk_reports", "parents_stopped_by_risk", "cancel_on_disconnect",
            "halt_child_cancels", "account_states_sent", "oms_unknown_accounts"), 0)
        self._latency = np.zeros(int(latency_samples), np.int64)
        self._latency_count = 0
        self.first_child_sent_ns = 0
        """When the first child of the latest NewOrderSingle was written (epoch ns)."""
        self._order_started_ns = 0
        # preallocated records for the rings
        self._command_buffer = bytearray(128)
        self._command_view = np.frombuffer(self._command_buffer, COMMAND_DTYPE)
        self._exec_buffer = bytearray(64)
        self._exec_view = np.frombuffer(self._exec_buffer, EXEC_REPORT_DTYPE)
        self._orders_in = np.zeros(256, ORDER_INTENT_DTYPE)
        self._audit_in = np.zeros(1024, AUDIT_RECORD_DTYPE)
        self._command_ring = engine.ring("commands")
        self._exec_ring = engine.ring("executions")
        self._order_ring = engine.ring("orders")
        self._audit_ring = engine.ring("audit")

    def set_config(self, config: Any) -> None:
        """Takes a (new) router configuration: instruments, venues and accounts."""
        self.config = config
        self.instruments = {i.symbol: (int(i.instrument_id), int(i.tick_size_ticks))
                            for i in config.instruments}
        self.venue_names = {int(v.venue_id): v.name for v in config.venues}
        self.accounts = {a.name: index + 1 for index, a in enumerate(config.risk.accounts)}
        """Account (1) names -> engine account ids (1..; "" is account 0)."""

    def account_id(self, account: str) -> int | None:
        """Returns the engine account id of an Account (1) value ("" -> 0), None if unknown."""
        if not account:
            return 0
        return self.accounts.get(account)

    def _event(self, kind: str, severity: str, text: str, **fields: Any) -> None:
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
        log.log(level, "%s: %s", kind, text)
        for listener in self.event_listeners:
            try:
                listener(kind, severity, text, **fields)
            except Exception:
                log.exception("event listener failed on %s", kind)

    # --- sessions -----------------------------------------------------------------------

    def add_oms_session(self, session: Any) -> None:
        """Registers an OMS session (its ``config.name`` keys its orders)."""
        self.oms_sessions[session.config.name] = session
        self._cl_ord_ids.setdefault(session.config.name, {})

    def add_venue_session(self, venue_id: int, session: Any) -> None:
        """Registers the session children for venue `venue_id` go to."""
        self.venue_sessions[int(venue_id)] = session
        self._venue_exec_ids.setdefault(int(venue_id), set())

    # --- journal replay and recovery -----------------------------------------------------

    def replay(self) -> dict[str, int]:
        """Rebuilds parents, children, used ClOrdIDs and seen venue ExecIDs from the journal,
        starts a new incarnation (journaled and synced) and returns what was found."""
        if self._replayed:
            raise SorError("GatewayCore.replay() was already called")
        self._replayed = True
        last_incarnation = 0
        for record in self.journal.records:
            last_incarnation = max(last_incarnation, self._apply(record))
        self.incarnation = last_incarnation + 1
        self.journal.append(RecordKind.INCARNATION, self.incarnation, self._clock(), os.getpid())
        self.journal.sync()
        live = [p for p in self.parents.values() if p.status != DONE]
        open_children = [c for c in self.children.values() if not c.done]
        for child in open_children:
            child.orphan = True
            child.cancel_sent_ns = 0
            if child.parent is not None:
                child.parent.orphans += 1
        self.counters["orphans"] = len(open_children)
        self._waiting = {p.parent_order_id for p in live}
        return {"incarnation": self.incarnation, "records": len(self.journal.records),
                "torn_tail_bytes": self.journal.torn_tail_bytes, "parents": len(self.parents),
                "live_parents": len(live), "orphans": len(open_children)}

    def _apply(self, r: JournalRecord) -> int:
        """Applies one journal record to the state; returns its incarnation (0 if none)."""
        f = r.fields
        kind = r.kind
        if kind is RecordKind.CHILD_EXECUTION:
            child = self.children.get((f["incarnation"], f["child_order_id"]))
            if child is None:
                return 0
            if f["exec_id"] and child.venue_id in self._venue_exec_ids:
                self._venue_exec_ids[child.venue_id].add(f["exec_id"])
            elif f["exec_id"]:
                self._venue_exec_ids[child.venue_id] = {f["exec_id"]}
            if f["kind"] == _FILL:
                q, price = f["last_quantity"], f["last_price_ticks"]
                child.cum_quantity += q
                if child.parent is not None:
                    child.parent.cum_quantity += q
                    child.parent.notional_ticks += q * price
                    self._add_account_fill(child.parent, q, price, f["ts_ns"])
                done = f["leaves_quantity"] <= 0 or child.cum_quantity >= child.quantity
            else:
                done = f["kind"] in (_CANCELLED, _REJECTED)
            if done and not child.done:
                child.done = True
                if child.parent is not None:
                    child.parent.open_children -= 1
            return 0
        if kind is RecordKind.CHILD_SENT:
            parent = self.parents.get(f["parent_order_id"])
            child = Child(f["incarnation"], f["child_order_id"], parent, f["venue_id"],
                          f["quantity"], f["price_ticks"], f["time_in_force"])
            self.children[(child.incarnation, child.child_order_id)] = child
            if parent is not None:
                parent.open_children += 1
            return f["incarnation"]
        if kind is RecordKind.OMS_OUT:
            self._outbox_tail[f["session"]] = r
            return 0
        if kind is RecordKind.SESSION_LOGON:
            self._outbox_tail.pop(f["session"], None)
            return 0
        if kind is RecordKind.PARENT_NEW:
            order = m.NewOrder(f["cl_ord_id"], f["symbol"], f["instrument_id"], f["side"],
                               f["side_code"], f["quantity"], f["ord_type"],
                               f["limit_price_ticks"], f["time_in_force"], f["end_time_ns"],
                               f["urgency"], f["target_strategy"])
            parent = Parent(f["parent_order_id"], f["session"], order, f["end_time_ns"], f["ts_ns"])
            self.parents[parent.parent_order_id] = parent
            self._cl_ord_ids.setdefault(parent.session, {})[parent.cl_ord_id] = parent
            self._next_parent_id = max(self._next_parent_id, parent.parent_order_id + 1)
            return 0
        if kind is RecordKind.ENTRY_REJECTED:
            self._cl_ord_ids.setdefault(f["session"], {})[f["cl_ord_id"]] = None
            return 0
        if kind is RecordKind.INCARNATION:
            return f["incarnation"]
        if kind is RecordKind.RISK_STATE:
            self.risk_state = f["state"]
            self.risk_changed_ns = f["ts_ns"]
            self.risk_operator, self.risk_reason = f["operator"], f["reason"]
            return 0
        if kind is RecordKind.MODEL_GUARD:
            self.model_tripped = bool(f["tripped"])
            self.model_guard_reason = f["reason"] if f["tripped"] else 0
            self.model_detail = f["detail"]
            self.model_since_ns = f["ts_ns"]
            return 0
        parent = self.parents.get(f.get("parent_order_id", -1))
        if parent is None:
            return 0
        if kind is RecordKind.PARENT_ACCOUNT:
            parent.account = f["account"]
            parent.account_id = f["account_id"]
        elif kind is RecordKind.PARENT_STOPPED:
            parent.stop_reason = _REJECT_NAMES.get(f["reason"], str(f["reason"]))
            parent.stop_text = f["text"]
        elif kind is RecordKind.ROUTER_CANCEL:
            parent.router_cancel = f["text"]
        elif kind is RecordKind.PARENT_ACCEPTED:
            if parent.status == PENDING_NEW:
                parent.status = WORKING
        elif kind is RecordKind.PARENT_REJECTED:
            parent.status, parent.done_how = DONE, DONE_REJECTED
        elif kind is RecordKind.PARENT_DONE:
            parent.status, parent.done_how = DONE, f["how"]
            parent.pending_cancel = parent.pending_replace = None
        elif kind is RecordKind.CANCEL_REQUEST:
            parent.pending_cancel = (f["cl_ord_id"], f["orig_cl_ord_id"])
            self._cl_ord_ids.setdefault(parent.session, {})[f["cl_ord_id"]] = parent
        elif kind is RecordKind.REPLACE_REQUEST:
            parent.pending_replace = m.ReplaceRequest(f["cl_ord_id"], f["orig_cl_ord_id"],
                                                      f["quantity"], f["ord_type"],
                                                      f["limit_price_ticks"])
            self._cl_ord_ids.setdefault(parent.session, {})[f["cl_ord_id"]] = parent
        elif kind is RecordKind.REPLACED:
            parent.quantity = f["quantity"]
            parent.limit_price_ticks = f["limit_price_ticks"]
            parent.ord_type = f["ord_type"]
            parent.cl_ord_id = f["cl_ord_id"]
            parent.pending_replace = None
        elif kind is RecordKind.REQUEST_REJECTED:
            if f["response_to"] == 1 and parent.pending_cancel and \
                    parent.pending_cancel[0] == f["cl_ord_id"]:
                parent.pending_cancel = None
            elif f["response_to"] == 2 and parent.pending_replace and \
                    parent.pending_replace.cl_ord_id == f["cl_ord_id"]:
                parent.pending_replace = None
        return 0

    def begin_recovery(self) -> None:
        """Sends what the journal says is owed after a crash: the OMS message journaled but
        never stored by its session (outbox tail), cancels for orphaned children at venues
        that are logged on, and resumes every live parent that has no orphan left."""
        for name, record in list(self._outbox_tail.items()):
            session = self.oms_sessions.get(name)
            if session is None:
                log.error("journal holds an unsent message for OMS session %r, which is not "
                          "configured; it is dropped", name)
                continue
            if record.sequence_number >= session.next_sender_seq_num:
                self.counters["outbox_resent"] += 1
                self._send_oms(name, record.msg_type, m.decode_body(record.body))
        self._outbox_tail.clear()
        for child in list(self.children.values()):
            if child.orphan and not child.done:
                session = self.venue_sessions.get(child.venue_id)
                if session is None:
                    log.error("orphaned child %s at venue %s: no session for that venue; its "
                              "parent stays suspended", child.cl_ord_id,
                              self.venue_names.get(child.venue_id, child.venue_id))
                elif self._is_active(session):
                    self._send_child_cancel(child)
        self.gate_closed = self.risk_state == _HALTED_STATE
        self.send_account_states(initial=True)
        for parent_id in sorted(self._waiting):
            parent = self.parents[parent_id]
            if parent.orphans == 0:
                self._resume(parent)

    def _resume(self, parent: Parent) -> None:
        """Puts a live parent of an earlier incarnation back to work in this engine."""
        self._waiting.discard(parent.parent_order_id)
        if parent.status == DONE:
            return
        self.counters["parents_resumed"] += 1
        now = self._clock()
        if parent.pending_cancel is not None:
            return self._finish(parent, DONE_CANCELED)
        if parent.router_cancel:
            return self._finish(parent, DONE_CANCELED, text=parent.router_cancel)
        if parent.cum_quantity >= parent.quantity:
            return self._finish(parent, DONE_FILLED, report=False)
        if parent.end_time_ns and parent.end_time_ns <= now:
            return self._finish(parent, DONE_EXPIRED, text="expired while the router was down")
        account_id = self.account_id(parent.account)
        if account_id is None:
            return self._finish(parent, DONE_CANCELED, risk_reason="UNKNOWN_ACCOUNT",
                                text="not resumed after a router restart: " + m.risk_text(
                                    "UNKNOWN_ACCOUNT",
                                    detail=f"account {parent.account!r} is no longer "
                                           f"configured"))
        parent.account_id = account_id
        parent.engine_base = parent.cum_quantity
        self._submit_new(parent)
        if parent.pending_replace is not None:
            self._submit_amend(parent, parent.pending_replace)

    @property
    def waiting_parents(self) -> list[int]:
        """The live parents still waiting for orphaned children before they resume."""
        return sorted(self._waiting)

    def retry_orphans(self) -> int:
        """Re-sends the cancel of every orphan not answered for orphan_retry_s at a logged-on
        venue; returns how many."""
        now = self._clock()
        sent = 0
        for child in list(self.children.values()):
            if child.orphan and not child.done and \
                    now - child.cancel_sent_ns >= self._orphan_retry_ns:
                session = self.venue_sessions.get(child.venue_id)
                if session is not None and self._is_active(session):
                    self._send_child_cancel(child)
                    sent += 1
        return sent

    # --- engine ----------------------------------------------------------------------------

    def _write_command(self, kind: int, parent_order_id: int, quantity: int, limit: int,
                       end_time_ns: int, instrument_id: int, side: int, urgency: int,
                       account_id: int = 0, client_order_hash: int = 0,
                       notional_usd: float = 0.0, position_shares: int = 0) -> int:
        command_id = (self.incarnation << 40) | self._next_command
        self._next_command += 1
        _COMMAND.pack_into(self._command_buffer, 0, self._clock(), command_id, parent_order_id,
                           quantity, limit, end_time_ns, 0, instrument_id, kind, side, urgency, 0,
                           client_order_hash, notional_usd, position_shares, account_id, 0)
        if self._command_ring.write(self._command_view) != 1:
            raise SorError(f"the engine's command ring is full; parent {parent_order_id} "
                           f"command {kind} refused")
        self.counters["engine_commands"] += 1
        return command_id

    def _command(self, kind: int, parent: Parent, quantity: int = 0, limit: int = 0,
                 extra: Any = None) -> None:
        new = kind == _CMD_NEW
        command_id = self._write_command(
            kind, parent.parent_order_id, quantity, limit, parent.end_time_ns if new else 0,
            parent.instrument_id, parent.side, parent.urgency, parent.account_id,
            client_order_hash(parent.session, parent.cl_ord_id) if new else 0)
        self._commands[command_id] = (kind, parent, extra)

    def _submit_new(self, parent: Parent) -> None:
        parent.submitted = True
        self._command(_CMD_NEW, parent, parent.quantity - parent.engine_base,
                      parent.limit_price_ticks)

    def _submit_amend(self, parent: Parent, request: m.ReplaceRequest) -> None:
        self._command(_CMD_AMEND, parent, request.quantity - parent.engine_base,
                      request.limit_price_ticks, request)

    def _engine_report(self, child: Child, kind: int, last_price: int = 0, last_quantity: int = 0,
                       leaves: int = 0, liquidity: int = 0, ts_event: int = 0) -> None:
        if child.orphan or child.parent is None:
            return  # an earlier incarnation's child: this engine never knew it
        now = self._clock()
        _EXEC.pack_into(self._exec_buffer, 0, ts_event or now, now, child.child_order_id,
                        child.parent.parent_order_id, last_price, last_quantity, leaves,
                        child.parent.instrument_id, child.venue_id, kind, child.parent.side,
                        liquidity)
        if self._exec_ring.write(self._exec_view) != 1:
            raise SorError(f"the engine's execution ring is full; report for child "
                           f"{child.cl_ord_id} refused")
        self.counters["engine_reports"] += 1

    def _reject_intent(self, child_order_id: int, parent_order_id: int, venue_id: int,
                       instrument_id: int, side: int) -> None:
        now = self._clock()
        _EXEC.pack_into(self._exec_buffer, 0, now, now, child_order_id, parent_order_id, 0, 0, 0,
                        instrument_id, venue_id, _REJECTED, side, 0)
        if self._exec_ring.write(self._exec_view) != 1:
            raise SorError("the engine's execution ring is full; a child reject was refused")
        self.counters["engine_reports"] += 1

    def wait_for_engine(self) -> bool:
        """Spins (at most spin_limit_ns) until the engine has consumed every command; returns
        whether it did."""
        ring = self._command_ring
        if not len(ring):
            return True
        deadline = time.perf_counter_ns() + self._spin_limit_ns
        while len(ring):
            if time.perf_counter_ns() > deadline:
                self.counters["engine_spin_timeouts"] += 1
                return False
        return True

    def poll(self) -> int:
        """Handles what the engine wrote: child intents first (they go to the venues), then
        the audit records that answer commands and finish parents; returns records handled."""
        work = 0
        if len(self._order_ring):
            n = self._order_ring.read_into(self._orders_in)
            work += n
            for row in self._orders_in[:n].tolist():
                if row[9] == _NEW:
                    self._on_new_intent(row)
                elif row[9] == _CANCEL:
                    self._on_cancel_intent(row)
        if len(self._audit_ring):
            n = self._audit_ring.read_into(self._audit_in)
            work += n
            batch = self._audit_in[:n]
            for row in batch.tolist():
                kind = row[9]
                if kind == _ACCEPTED or kind == _CMD_REJECTED:
                    self._on_command_answer(row[6], kind == _ACCEPTED, row[10], row[4], row[5])
                elif kind == _CHILD_ORDER:
                    stats = self._venue(row[8])
                    stats.orders += 1
                    stats.ordered_shares += row[5]
                elif kind == _EXECUTION:
                    if row[10] == 0:   # applied to a child the engine knows
                        if row[6] == _FILL:
                            stats = self._venue(row[8])
                            stats.fills += 1
                            stats.filled_shares += row[5]
                        elif row[6] == _REJECTED:
                            self._venue(row[8]).rejects += 1
                elif kind == _PARENT_DONE:
                    self._on_parent_done(row[2], row[4], row[5], row[10])
                elif kind == _RISK_REJECT:
                    self._on_risk_reject(row)
                elif kind == _MODEL_GUARD:
                    self._on_model_guard(row)
                elif kind == _RISK_STATE_AUDIT:
                    self._on_engine_risk_state(int(row[4]))
            if self.audit_listeners:
                records = batch.copy()  # one copy, shared: listeners only read it
                for listener in self.audit_listeners:
                    listener(records)
        return work

    def drain_decisions(self) -> int:
        """Reads the engine's decision ring (so it never fills up), takes each parent's
        arrival mid from it and hands the records to decision_listeners; returns how many."""
        ring = self.engine.ring("decisions")
        if not len(ring):
            return 0
        records = ring.read()
        parents = records["parent_order_id"]
        mids = records["context"]["arrival_mid_ticks"]
        for parent_id, mid in zip(parents.tolist(), mids.tolist()):
            if mid > 0:
                parent = self.parents.get(parent_id)
                if parent is not None and parent.arrival_mid_ticks <= 0:
                    parent.arrival_mid_ticks = mid
        for listener in self.decision_listeners:
            listener(records)
        return len(records)

    def _venue(self, venue_id: int) -> VenueStats:
        stats = self.venue_stats.get(venue_id)
        if stats is None:
            stats = self.venue_stats[venue_id] = VenueStats()
        return stats

    # --- risk: refusals, stops, the operator's risk state ------------------------------------

    def _state_detail(self, reason_name: str) -> str | None:
        """Returns who put routing in the state a HALTED or REDUCING refusal names, or None."""
        if reason_name not in ("HALTED", "REDUCING") or not self.risk_operator:
            return None
        text = f"routing {reason_name} by {self.risk_operator}: {self.risk_reason}"
        if reason_name == "REDUCING":
            text += " (only orders that reduce the account's position)"
        return text

    def _reason_text(self, reason: int, value_a: int = 0, value_b: int = 0) -> tuple[str, str]:
        """Returns (RejectReason name, Text) for an audit record's reason and values."""
        name = _REJECT_NAMES.get(reason, str(reason))
        return name, m.risk_text(name, value_a, value_b, self._state_detail(name))

    def _on_risk_reject(self, row: tuple) -> None:
        parent_id, venue_id, reason, value_a, value_b = row[2], row[8], row[10], row[4], row[5]
        self.counters["risk_rejects"] += 1
        self._venue(venue_id).risk_rejects += 1
        parent = self.parents.get(parent_id)
        if parent is None or parent.status == DONE:
            return
        parent.last_risk = (reason, value_a, value_b)
        if reason in PARENT_STOPPING_REASONS or reason == _HALTED_REASON:
            return  # the stop (PARENT_DONE) or the halt report says it once
        key = (parent_id, reason)
        report = self._risk_reports.get(key)
        if report is None:
            report = self._risk_reports[key] = _RiskReport()
        report.pending += 1
        report.value_a, report.value_b = value_a, value_b
        report.venues.add(venue_id)
        now = self._clock()
        if report.last_sent_ns == 0 or now - report.last_sent_ns >= self._risk_report_ns:
            self._send_risk_report(parent, reason, report, now)

    def _send_risk_report(self, parent: Parent, reason: int, report: _RiskReport,
                          now: int) -> None:
        """Sends the parent a restated ExecutionReport (150=D) naming the refusals."""
        name, text = self._reason_text(reason, report.value_a, report.value_b)
        count = report.pending
        venues = ", ".join(sorted(self.venue_names.get(v, str(v)) for v in report.venues))
        text += (f"; {count} child order{'s' if count != 1 else ''} refused"
                 f"{' since the last report' if report.last_sent_ns else ''} ({venues})")
        report.last_sent_ns = now
        report.pending = 0
        report.venues.clear()
        self.counters["risk_reports"] += 1
        self._report(parent, "D", text=text, risk_reason=name,
                     restatement_reason=m.RESTATED_BROKER_OPTION)
        self._event("risk_reject", "warning", f"parent {parent.cl_ord_id} ({parent.symbol}): "
                    f"{text}", reason=name, parent_order_id=parent.parent_order_id)

    def flush_risk_reports(self) -> int:
        """Sends the restated reports held back by the rate limit whose interval has passed;
        forgets those of finished parents. Returns how many were sent."""
        now = self._clock()
        sent = 0
        for key, report in list(self._risk_reports.items()):
            parent = self.parents.get(key[0])
            if parent is None or parent.status == DONE:
                del self._risk_reports[key]
            elif report.pending and now - report.last_sent_ns >= self._risk_report_ns:
                self._send_risk_report(parent, key[1], report, now)
                sent += 1
        if sent:
            self.journal.flush()
        return sent

    def set_risk_state(self, state: int, operator: str, reason: str) -> dict[str, int]:
        """Records the operator's risk state (journaled), closes the gateway's gate on HALTED
        (no child leaves; a cancel goes to every child known open, once) or opens it, and
        tells every working parent with a restated report. The engine's state is set by the
        caller. Returns what was done."""
        state = int(state)
        name = _RISK_STATE_NAMES.get(state)
        if name is None:
            raise OperatorActionError(f"risk state must be one of "
                                       f"{', '.join(_RISK_STATE_NAMES.values())}, got {state}")
        now = self._clock()
        previous = self.risk_state
        self.risk_state, self.risk_operator, self.risk_reason = state, operator, reason
        self.risk_changed_ns = now
        self.journal.append(RecordKind.RISK_STATE, state, now, operator, reason)
        self.gate_closed = state == _HALTED_STATE
        cancels = self.cancel_open_children() if self.gate_closed else 0
        text = f"routing {name} by {operator}: {reason}"
        told = 0
        for parent in list(self.parents.values()):
            if parent.status != DONE:
                self._report(parent, "D", text=text, risk_reason=name,
                             restatement_reason=m.RESTATED_BROKER_OPTION)
                told += 1
        self.journal.flush()
        self._event("risk_state", "error" if state == _HALTED_STATE else "warning",
                    f"{text} (was {_RISK_STATE_NAMES.get(previous, previous)}; {cancels} child "
                    f"cancels sent, {told} parents told)", operator=operator, reason=reason,
                    state=name, previous=_RISK_STATE_NAMES.get(previous, str(previous)))
        return {"state": state, "previous": previous, "child_cancels": cancels,
                "parents_told": told}

    def note_engine_operator(self, operator: str, reason: str) -> None:
        """Remembers who acted on the engine last (its operator listener), for a risk state
        change the engine reports without the gateway having made it."""
        self._engine_operator = (operator, reason)

    def _on_engine_risk_state(self, state: int) -> None:
        """The engine changed its risk state: when not through set_risk_state (a
        configuration change, a direct engine call), the gateway follows: gate, cancels,
        reports, journal."""
        if self.operator_acting or state == self.risk_state:
            return
        try:  # the record may be stale (a start-up state): the parameter block is the truth
            state = int(self.engine.params()["risk_state"])
        except Exception:
            log.exception("reading the engine's risk state")
        if state == self.risk_state:
            return
        operator, reason = self._engine_operator
        self.set_risk_state(state, operator or "engine", reason or "set on the engine")

    def cancel_open_children(self) -> int:
        """Sends a cancel for every child the gateway knows open whose cancel was not sent
        yet (a venue that is down gets it when it logs on again); returns how many."""
        sent = 0
        for child in list(self.children.values()):
            if not child.done and not child.cancel_sent_ns:
                self._send_child_cancel(child)
                sent += 1
        self.counters["halt_child_cancels"] += sent
        return sent

    # --- the model guard ------------------------------------------------------------------

    def note_model_detail(self, detail: str) -> None:
        """Gives the next MODEL_GUARD trip its detail (a Python guard's or an operator's)."""
        self._pending_model_detail = detail

    def _on_model_guard(self, row: tuple) -> None:
        reason = int(row[5])
        if row[4] == 1:
            detail, self._pending_model_detail = self._pending_model_detail, ""
            if not detail and row[6] < len(_SLOT_NAMES) and reason in (1, 2):
                detail = f"model {_SLOT_NAMES[row[6]]}"
            self.model_trip(reason, detail)
        elif row[4] == 2 and not self.operator_acting:
            self.model_enabled()

    def model_trip(self, reason: int, detail: str) -> None:
        """Records that routing went to the fallback policy (journaled, an error event)."""
        if self.model_tripped and self.model_guard_reason == reason:
            return
        now = self._clock()
        name = _GUARD_NAMES.get(reason, str(reason))
        self.model_tripped = True
        self.model_guard_reason = reason
        self.model_detail = detail
        self.model_since_ns = now
        self.journal.append(RecordKind.MODEL_GUARD, 1, reason, now, detail)
        self.journal.flush()
        self._event("model_guard", "error", f"model guard tripped: {name}"
                    f"{': ' + detail if detail else ''}; routing falls back to the "
                    f"rule-based policy until an operator re-enables the model",
                    reason=name, detail=detail)

    def model_enabled(self, operator: str = "", reason: str = "") -> None:
        """Records that model routing is back (journaled, an event naming who, if known)."""
        if not self.model_tripped and not operator:
            return
        now = self._clock()
        self.model_tripped = False
        self.model_guard_reason = 0
        self.model_detail = ""
        self.model_since_ns = now
        self.journal.append(RecordKind.MODEL_GUARD, 0, 0, now, "")
        self.journal.flush()
        if operator:
            self._event("model_guard", "warning", f"model routing re-enabled by {operator}: "
                        f"{reason}", operator=operator, reason=reason)
        else:
            self._event("model_guard", "info", "model routing re-enabled")

    # --- accounts: credit and positions survive a restart ------------------------------------

    def _add_account_fill(self, parent: Parent, quantity: int, price_ticks: int,
                          ts_ns: int) -> tuple[int, str, int]:
        key = (trading_day_of(ts_ns), parent.account, parent.instrument_id)
        totals = self._account_totals.get(key)
        if totals is None:
            totals = self._account_totals[key] = [0, 0.0]
        totals[0] += quantity if parent.side == 1 else -quantity
        totals[1] += quantity * price_ticks * self.tick_usd
        return key

    def trading_day(self) -> int:
        """Returns the engine's trading day (yyyymmdd), else today's UTC date."""
        try:
            day = int(self.engine.params().get("trading_day", 0))
        except Exception:
            day = 0
        return day or trading_day_of(self._clock())

    def account_totals(self) -> dict[tuple[str, int], tuple[int, float]]:
        """Returns the trading day's filled position (shares, buys positive) and filled
        notional (USD) per (account, instrument id), from every fill the journal holds."""
        day = self.trading_day()
        return {(account, instrument): (int(v[0]), float(v[1]))
                for (d, account, instrument), v in self._account_totals.items() if d == day}

    def send_account_states(self, initial: bool = False) -> int:
        """Sends ACCOUNT_STATE commands: each sets an account's position in one instrument
        and its filled notional (the account's, across instruments: the engine's credit is
        per account). `initial`: every pair of the trading day (after a restart, before
        parents resume); else the pairs that fills of orphans changed, once the engine has
        consumed every execution (a set must not race a fill still in the ring). Returns how
        many were sent."""
        if initial:
            keys = set(self._account_totals)
        else:
            if not self._account_dirty or len(self._exec_ring):
                return 0
            keys = set(self._account_dirty)
        self._account_dirty.clear()
        day = self.trading_day()
        notional_by_account: dict[str, float] = {}
        for (d, account, _), (_, notional) in self._account_totals.items():
            if d == day:
                notional_by_account[account] = notional_by_account.get(account, 0.0) + notional
        sent = 0
        for key in sorted(keys):
            if key[0] != day:
                continue
            _, account, instrument_id = key
            account_id = self.account_id(account)
            if account_id is None:
                log.warning("fills of account %r (not configured any more) are not sent to the "
                            "engine", account)
                continue
            position = self._account_totals[key][0]
            self._write_command(_CMD_ACCOUNT_STATE, 0, 0, 0, 0, instrument_id, 0, 0,
                                account_id, 0, float(notional_by_account[account]),
                                int(position))
            sent += 1
        self.counters["account_states_sent"] += sent
        return sent

    # --- child orders (engine -> venues) -------------------------------------------------

    def _on_new_intent(self, row: tuple) -> None:
        (_, _, child_id, parent_id, price, quantity, _, instrument_id, venue_id, _, side,
         tif) = row
        session = self.venue_sessions.get(venue_id)
        parent = self.parents.get(parent_id)
        if self.gate_closed:  # HALTED: nothing leaves, whatever the engine wrote
            self.counters["children_rejected_halted"] += 1
            self._reject_intent(child_id, parent_id, venue_id, instrument_id, side)
            return
        if session is None or parent is None or not self._is_active(session):
            key = ("children_rejected_unknown_venue" if session is None or parent is None
                   else "children_rejected_venue_down")
            self.counters[key] += 1
            self._reject_intent(child_id, parent_id, venue_id, instrument_id, side)
            return
        child = Child(self.incarnation, child_id, parent, venue_id, quantity, price, tif)
        self.children[(self.incarnation, child_id)] = child
        parent.open_children += 1
        now = self._clock()
        self.journal.append(RecordKind.CHILD_SENT, self.incarnation, child_id, parent_id,
                            venue_id, side, quantity, price, tif, now)
        self.journal.flush()
        body: list[tuple[int, Any]] = [(11, child.cl_ord_id), (21, "1"), (55, parent.symbol),
                                       (54, parent.side_code), (38, quantity)]
        if tif == _TIF_MID:
            body.append((40, "P"))
            if price > 0:
                body.append((44, codec.price_to_fix(price, self.tick_usd)))
            body += [(59, "0"), (18, "M")]
        else:
            body += [(40, "2"), (44, codec.price_to_fix(price, self.tick_usd))]
            if tif == _TIF_IOC:
                body.append((59, "3"))
            elif tif == _TIF_POST:
                body += [(59, "0"), (18, "6")]
            else:
                body.append((59, "0"))
        body.append((60, codec.format_utc_timestamp(now)))
        session.send("D", body)
        self.counters["children_sent"] += 1
        if self._order_started_ns:
            sent = time.time_ns()
            self.first_child_sent_ns = sent
            self._latency[self._latency_count % len(self._latency)] = (
                sent - self._order_started_ns)
            self._latency_count += 1
            self._order_started_ns = 0

    def _on_cancel_intent(self, row: tuple) -> None:
        child = self.children.get((self.incarnation, row[2]))
        if child is None or child.done or child.cancel_sent_ns:
            return
        self._send_child_cancel(child)

    def _send_child_cancel(self, child: Child) -> None:
        session = self.venue_sessions.get(child.venue_id)
        if session is None:
            return
        if not self._is_active(session):
            self.counters["child_cancels_queued_venue_down"] += 1
        request = (f"{child.incarnation}.{child.child_order_id}.c{self.incarnation}-"
                   f"{self._next_child_request}")
        self._next_child_request += 1
        now = self._clock()
        child.cancel_sent_ns = now
        self.journal.append(RecordKind.CHILD_CANCEL_SENT, child.incarnation, child.child_order_id,
                            request)
        self.journal.flush()
        parent = child.parent
        body: list[tuple[int, Any]] = [(41, child.cl_ord_id), (11, request)]
        if child.venue_order_id:
            body.append((37, child.venue_order_id))
        body += [(55, parent.symbol if parent else ""), (54, parent.side_code if parent else "1"),
                 (38, child.quantity), (60, codec.format_utc_timestamp(now))]
        session.send("F", body)
        self.counters["child_cancels_sent"] += 1

    def replace_child(self, incarnation: int, child_order_id: int, quantity: int,
                      price_ticks: int) -> str:
        """Sends an OrderCancelReplaceRequest (35=G) for a working child; returns its ClOrdID.

        The venue's Replaced report changes the child's quantity and price. The engine is not
        told (it has no replace), so only what its risk checks already allow goes: a smaller
        quantity and a price no more aggressive, never while HALTED (OrderValidationError).
        """
        if self.gate_closed:
            raise OrderValidationError("routing is HALTED: no venue-side replace")
        child = self.children.get((int(incarnation), int(child_order_id)))
        if child is None or child.done:
            raise OrderValidationError(f"child {incarnation}.{child_order_id} is not working")
        if quantity <= child.cum_quantity:
            raise OrderValidationError(f"quantity {quantity} must be above the child's filled "
                                       f"{child.cum_quantity} shares")
        # the engine's risk stage checked the child as it is: a venue-side replace may only
        # make it smaller or less aggressive
        if quantity > child.quantity:
            raise OrderValidationError(f"quantity {quantity} is above the child's {child.quantity} "
                                       f"shares: a venue-side replace may only shrink a child")
        side = child.parent.side if child.parent is not None else 1
        if child.price_ticks > 0 and (price_ticks <= 0 or (
                price_ticks > child.price_ticks if side == 1 else price_ticks < child.price_ticks)):
            raise OrderValidationError(
                f"price {codec.price_to_fix(price_ticks, self.tick_usd)} is more aggressive than "
                f"the child's {codec.price_to_fix(child.price_ticks, self.tick_usd)}")
        session = self.venue_sessions.get(child.venue_id)
        if session is None or not self._is_active(session):
            raise OrderValidationError(f"venue {self.venue_names.get(child.venue_id)} is not "
                                       f"logged on")
        request = (f"{child.incarnation}.{child.child_order_id}.r{self.incarnation}-"
                   f"{self._next_child_request}")
        self._next_child_request += 1
        child.pending_replace = (request, int(quantity), int(price_ticks))
        parent = child.parent
        body: list[tuple[int, Any]] = [(41, child.cl_ord_id), (11, request), (21, "1")]
        if child.venue_order_id:
            body.append((37, child.venue_order_id))
        body += [(55, parent.symbol), (54, parent.side_code), (38, int(quantity))]
        if child.time_in_force == _TIF_MID:
            body.append((40, "P"))
            if price_ticks > 0:
                body.append((44, codec.price_to_fix(price_ticks, self.tick_usd)))
            body += [(59, "0"), (18, "M")]
        else:
            body += [(40, "2"), (44, codec.price_to_fix(price_ticks, self.tick_usd)),
                     (59, "3" if child.time_in_force == _TIF_IOC else "0")]
            if child.time_in_force == _TIF_POST:
                body.append((18, "6"))
        body.append((60, codec.format_utc_timestamp(self._clock())))
        self.journal.flush()
        session.send("G", body)
        self.counters["child_replaces_sent"] += 1
        return request

    def cancel_child(self, incarnation: int, child_order_id: int) -> None:
        """Sends an OrderCancelRequest for a working child (the engine learns the outcome
        from the venue's report like any other)."""
        child = self.children.get((int(incarnation), int(child_order_id)))
        if child is None or child.done:
            raise OrderValidationError(f"child {incarnation}.{child_order_id} is not working")
        self._send_child_cancel(child)

    # --- venue reports ----------------------------------------------------------------------

    def _child_for(self, message: Any) -> Child | None:
        for tag in (11, 41):
            text = message.get(tag)
            if not text:
                continue
            parts = text.split(".", 2)
            if len(parts) < 2:
                continue
            try:
                key = (int(parts[0]), int(parts[1]))
            except ValueError:
                continue
            child = self.children.get(key)
            if child is not None:
                return child
        return None

    def on_venue_message(self, venue_id: int, session: Any, message: Any) -> None:
        """Handles an application message from venue `venue_id` (ExecutionReport or
        OrderCancelReject)."""
        msg_type = message.msg_type
        if msg_type == "8":
            self._on_venue_report(venue_id, session, message)
        elif msg_type == "9":
            self._on_venue_cancel_reject(venue_id, message)
        else:
            self.counters["venue_unsupported_reports"] += 1
            session.business_reject(message, 3, f"MsgType {msg_type} is not supported here", 35)
        self.journal.flush()

    def _on_venue_report(self, venue_id: int, session: Any, message: Any) -> None:
        self.counters["venue_reports"] += 1
        exec_id = message.get(17)
        seen = self._venue_exec_ids.setdefault(venue_id, set())
        if exec_id and exec_id in seen:
            self.counters["venue_duplicate_exec_ids"] += 1
            return
        child = self._child_for(message)
        if child is None:
            self.counters["venue_unknown_orders"] += 1
            log.warning("venue %s reported on an order the router does not know: ClOrdID %r",
                        self.venue_names.get(venue_id, venue_id), message.get(11))
            return
        if exec_id:
            seen.add(exec_id)
        exec_type = message.get(150)
        trans = message.get(20)
        if trans is not None and trans not in ("0", "3"):
            self.counters["venue_unsupported_reports"] += 1
            log.error("venue %s sent ExecTransType %s (cancel/correct) for %s; not applied",
                      self.venue_names.get(venue_id), trans, child.cl_ord_id)
            return
        if exec_type in ("F", "1", "2") and trans != "3":
            self._on_venue_fill(child, message, exec_id or "")
        elif exec_type == "0":
            child.venue_order_id = message.get(37) or child.venue_order_id
            self._engine_report(child, _ACK, leaves=child.quantity - child.cum_quantity)
        elif exec_type in ("4", "C", "3"):
            self._child_finished(child, _CANCELLED, exec_id or "")
        elif exec_type == "8":
            self._child_finished(child, _REJECTED, exec_id or "")
        elif exec_type == "5":
            self._on_venue_replaced(child, message)
        elif exec_type in ("G", "H"):
            self.counters["venue_unsupported_reports"] += 1
            log.error("venue %s sent ExecType %s (trade correct/cancel) for %s; not applied",
                      self.venue_names.get(venue_id), exec_type, child.cl_ord_id)

    def _on_venue_fill(self, child: Child, message: Any, exec_id: str) -> None:
        parent = child.parent
        if parent is not None and parent.status == PENDING_NEW and not child.orphan:
            self.poll()  # the engine's acceptance precedes its children: report New first
        quantity = int(message.get(32) or 0)
        price_text = message.get(31) or "0"
        try:
            price = codec.price_from_fix(price_text, self.tick_usd)
        except (SorError, ValueError):
            price = int((Decimal(price_text) / self._tick).to_integral_value(ROUND_HALF_EVEN))
            self.counters["sub_tick_fill_prices"] += 1
        leaves_text = message.get(151)
        child.cum_quantity += quantity
        leaves = (int(leaves_text) if leaves_text is not None
                  else child.quantity - child.cum_quantity)
        cum_text = message.get(14)
        if cum_text is not None and Decimal(cum_text) != child.cum_quantity:
            self.counters["venue_cum_mismatches"] += 1
        done = leaves <= 0 or message.get(39) == "2" or child.cum_quantity >= child.quantity
        if child.cum_quantity > child.quantity:
            self.counters["overfills"] += 1
        self.counters["venue_fills"] += 1
        self.journal.append(RecordKind.CHILD_EXECUTION, child.incarnation, child.child_order_id,
                            _FILL, quantity, price, 0 if done else leaves, self._clock(), exec_id)
        liquidity_text = message.get(851)  # LastLiquidityInd; strict FIX 4.2 venues: 9730
        if liquidity_text is None:
            liquidity_text = {"A": "1", "R": "2"}.get(message.get(9730, ""))
        liquidity = int(liquidity_text) if liquidity_text in ("1", "2") else 0
        if done:
            self._close_child(child)
        filled = False
        if parent is not None:
            parent.cum_quantity += quantity
            parent.notional_ticks += quantity * price
            key = self._add_account_fill(parent, quantity, price, self._clock())
            if child.orphan:  # this engine never sees it: its account state is set again
                self._account_dirty.add(key)
            filled = parent.status != DONE and parent.cum_quantity >= parent.quantity
            if filled:
                self._mark_done(parent, DONE_FILLED)
        self._engine_report(child, _FILL, price, quantity, 0 if done else leaves, liquidity)
        if parent is None:
            return
        self._report(parent, "F", last_quantity=quantity,
                     last_price=codec.price_to_fix(price, self.tick_usd), liquidity=liquidity,
                     last_market=self.venue_names.get(child.venue_id))
        if filled:
            self._reject_pending(parent, "the order is filled")
        if done and child.orphan:
            self._orphan_resolved(child)

    def _close_child(self, child: Child) -> None:
        if child.done:
            return
        child.done = True
        if child.parent is not None:
            child.parent.open_children -= 1

    def _child_finished(self, child: Child, kind: int, exec_id: str) -> None:
        if child.done:
            return
        self.journal.append(RecordKind.CHILD_EXECUTION, child.incarnation, child.child_order_id,
                            kind, 0, 0, 0, self._clock(), exec_id)
        self._close_child(child)
        self._engine_report(child, kind)
        if child.orphan:
            self._orphan_resolved(child)

    def _orphan_resolved(self, child: Child) -> None:
        self.counters["orphans_resolved"] += 1
        parent = child.parent
        if parent is None:
            return
        parent.orphans -= 1
        if parent.orphans == 0 and parent.parent_order_id in self._waiting:
            self._resume(parent)

    def _on_venue_replaced(self, child: Child, message: Any) -> None:
        pending = child.pending_replace
        quantity = int(message.get(38) or (pending[1] if pending else child.quantity))
        price_text = message.get(44)
        price = (codec.price_from_fix(price_text, self.tick_usd) if price_text
                 else (pending[2] if pending else child.price_ticks))
        child.quantity, child.price_ticks = quantity, price
        child.pending_replace = None
        self.journal.append(RecordKind.CHILD_REPLACED, child.incarnation, child.child_order_id,
                            quantity, price)
        self.journal.flush()

    def _on_venue_cancel_reject(self, venue_id: int, message: Any) -> None:
        self.counters["venue_cancel_rejects"] += 1
        child = self._child_for(message)
        if child is None or child.done:
            return
        if message.get(434) == "2":
            child.pending_replace = None
            return
        status = message.get(39)
        if status in _TERMINAL_STATUS or message.get(102) == "1":
            # the venue no longer has the order; its reports came before this reject
            self._child_finished(child, _CANCELLED, "")
        elif not child.orphan:
            child.cancel_sent_ns = 0  # still live: a later cancel intent may try again

    def on_venue_logon(self, venue_id: int) -> None:
        """Sends the cancels owed to a venue that just logged on: orphans after a restart,
        and, when its session has cancel_on_disconnect and it had dropped, every child still
        believed open there."""
        session = self.venue_sessions.get(venue_id)
        dropped = venue_id in self._venues_dropped
        self._venues_dropped.discard(venue_id)
        cancel_all = dropped and session is not None and getattr(
            session.config, "cancel_on_disconnect", False)
        sent = 0
        for child in list(self.children.values()):
            if child.venue_id == venue_id and not child.done and (child.orphan or cancel_all):
                self._send_child_cancel(child)
                sent += 1
        name = self.venue_names.get(venue_id, str(venue_id))
        text = f"venue {name} logged on"
        if cancel_all:
            self.counters["cancel_on_disconnect"] += sent
            text += f"; {sent} cancels sent for children open before it dropped"
        self._event("session", "info", text,
                    session=session.config.name if session is not None else name, up=True)

    def on_venue_logout(self, venue_id: int, reason: str) -> None:
        """Notes that a venue session dropped (new children for it are refused meanwhile)."""
        self._venues_dropped.add(venue_id)
        name = self.venue_names.get(venue_id, str(venue_id))
        if not self.closing:
            self._event("session", "warning", f"venue {name} logged out: {reason}",
                        session=name, up=False)

    # --- OMS messages ----------------------------------------------------------------------

    def on_oms_logon(self, session: Any) -> None:
        """Journals an OMS logon (what the session sent before it is delivered or reset)."""
        self.journal.append(RecordKind.SESSION_LOGON, session.next_sender_seq_num,
                            session.next_target_seq_num, session.config.name)
        self.journal.flush()
        self._event("session", "info", f"OMS session {session.config.name} logged on",
                    session=session.config.name, up=True)

    def on_oms_logout(self, session: Any, reason: str) -> int:
        """Cancels every working parent of an OMS session that dropped (logout, lost socket,
        heartbeat timeout) when its configuration says cancel_on_disconnect, unless the router
        itself is shutting down; the reports wait in the session's store for the next logon.
        Returns how many parents are being cancelled."""
        name = session.config.name
        if self.closing:
            return 0
        cancelled = 0
        if getattr(session.config, "cancel_on_disconnect", False):
            text = f"cancelled on disconnect of session {name} ({reason})"
            for parent in list(self.parents.values()):
                if parent.session == name and parent.status != DONE and \
                        self.cancel_parent(parent, text):
                    cancelled += 1
            self.counters["cancel_on_disconnect"] += cancelled
            self.journal.flush()
        text = f"OMS session {name} logged out: {reason}"
        if cancelled:
            text += f"; {cancelled} working parent{'s' if cancelled != 1 else ''} cancelled"
        self._event("session", "warning" if cancelled else "info", text, session=name,
                    up=False, cancelled=cancelled)
        return cancelled

    def cancel_parent(self, parent: Parent, text: str) -> bool:
        """Cancels a live parent on the router's own account (journaled, so a restart
        finishes it); the OMS gets Canceled with `text`. Returns False when it is done or a
        cancel is already under way."""
        if parent.status == DONE or parent.pending_cancel is not None or parent.router_cancel:
            return False
        parent.router_cancel = text
        self.journal.append(RecordKind.ROUTER_CANCEL, parent.parent_order_id, text)
        if parent.submitted:
            self._command(_CMD_CANCEL, parent)
        elif parent.parent_order_id not in self._waiting:
            self._finish(parent, DONE_CANCELED, text=text)
        return True

    def on_oms_message(self, session: Any, message: Any) -> None:
        """Handles an application message from the OMS (D, F or G)."""
        msg_type = message.msg_type
        if msg_type == "D":
            self._order_started_ns = session.received_ns or time.time_ns()
            self._on_new_order(session, message)
        elif msg_type == "F":
            self._on_cancel_request(session, message)
        elif msg_type == "G":
            self._on_replace_request(session, message)
        else:
            session.business_reject(message, 3, f"MsgType {msg_type} is not supported by the "
                                    f"router (D, F, G)", 35)
        self.journal.flush()  # every input is on file before the session counts it received

    def _on_new_order(self, session: Any, message: Any) -> None:
        name = session.config.name
        used = self._cl_ord_ids.setdefault(name, {})
        cl_ord_id = message.get(11)
        now = self._clock()
        self.counters["oms_new_orders"] += 1
        if cl_ord_id and cl_ord_id in used:
            if message.poss_dup:
                self.counters["oms_possdup_ignored"] += 1
                return
            self.counters["oms_duplicate_cl_ord_ids"] += 1
            return self._reject_entry(
                session, message, cl_ord_id,
                m.risk_text("DUPLICATE_CLIENT_ORDER_ID",
                            detail=f"duplicate ClOrdID {cl_ord_id!r} (already used on session "
                                   f"{name})"),
                m.REJ_DUPLICATE_ORDER, record=False, risk_reason="DUPLICATE_CLIENT_ORDER_ID")
        try:
            order = m.parse_new_order(message, self.instruments, self.tick_usd, now)
        except OrderValidationError as error:
            if not cl_ord_id:
                self.counters["oms_rejects"] += 1
                session.business_reject(message, 5, error.text, 11)
                return
            return self._reject_entry(session, message, cl_ord_id, error.text,
                                      error.ord_rej_reason)
        account_id = self.account_id(order.account)
        if account_id is None:
            self.counters["oms_unknown_accounts"] += 1
            return self._reject_entry(
                session, message, cl_ord_id,
                m.risk_text("UNKNOWN_ACCOUNT", detail=f"account {order.account!r} is not "
                                                      f"configured"),
                m.REJ_UNKNOWN_ACCOUNT, risk_reason="UNKNOWN_ACCOUNT")
        parent_id = self._next_parent_id
        self._next_parent_id += 1
        end = order.end_time_ns or now + DEFAULT_HORIZON_NS
        command_id = self._write_command(_CMD_NEW, parent_id, order.quantity,
                                         order.limit_price_ticks, end, order.instrument_id,
                                         order.side, order.urgency, account_id,
                                         client_order_hash(name, order.cl_ord_id))
        # the engine works on the command while the parent is booked and journaled here; the
        # record reaches the file with the child's, before the child is sent
        parent = Parent(parent_id, name, order, end, now)
        parent.account_id = account_id
        parent.submitted = True
        self._commands[command_id] = (_CMD_NEW, parent, None)
        self.parents[parent_id] = parent
        used[order.cl_ord_id] = parent
        self.journal.append(RecordKind.PARENT_NEW, parent_id, now, order.instrument_id,
                            order.side, order.quantity, order.limit_price_ticks, end,
                            order.urgency, order.ord_type, order.time_in_force,
                            order.target_strategy, name, order.cl_ord_id, order.symbol,
                            order.side_code)
        if order.account:
            self.journal.append(RecordKind.PARENT_ACCOUNT, parent_id, account_id, order.account)
        self.wait_for_engine()
        self.poll()
        self._order_started_ns = 0

    def _reject_entry(self, session: Any, message: Any, cl_ord_id: str, text: str,
                      code: int | None, record: bool = True,
                      risk_reason: str | None = None) -> None:
        self.counters["oms_rejects"] += 1
        name = session.config.name
        begin = session.config.begin_string
        if record:
            self._cl_ord_ids[name][cl_ord_id] = None
            self.journal.append(RecordKind.ENTRY_REJECTED, name, cl_ord_id)
        qty_text = message.get(38) or "0"
        try:
            quantity: Any = int(qty_text)
        except ValueError:
            quantity = 0
        body = m.execution_report(
            begin, order_id="NONE", cl_ord_id=cl_ord_id, exec_id=self._exec_id(),
            exec_type="8", ord_status="8", symbol=message.get(55) or "",
            side_code=message.get(54) or "1", quantity=quantity,
            ord_type=message.get(40) or "2", price=None, leaves=0, cum=0, avg_price="0",
            transact_time=codec.format_utc_timestamp(self._clock()), text=text,
            ord_rej_reason=m.ord_rej_reason_for(begin, code), account=message.get(1),
            risk_reason=risk_reason)
        self._send_oms(name, "8", body)

    def _on_cancel_request(self, session: Any, message: Any) -> None:
        self.counters["oms_cancel_requests"] += 1
        parent = self._request_target(session, message, 1)
        if parent is None:
            return
        cl_ord_id, orig = message.get(11), message.get(41)
        parent.pending_cancel = (cl_ord_id, orig)
        self._cl_ord_ids[parent.session][cl_ord_id] = parent
        self.journal.append(RecordKind.CANCEL_REQUEST, parent.parent_order_id, cl_ord_id, orig)
        if parent.submitted:
            self._command(_CMD_CANCEL, parent)
        self._report(parent, "6", cl_ord_id=cl_ord_id, orig_cl_ord_id=orig)
        if not parent.submitted and parent.parent_order_id not in self._waiting:
            self._finish(parent, DONE_CANCELED)

    def _on_replace_request(self, session: Any, message: Any) -> None:
        self.counters["oms_replace_requests"] += 1
        parent = self._request_target(session, message, 2)
        if parent is None:
            return
        try:
            request = m.parse_replace(message, self.tick_usd, self.instruments[parent.symbol][1])
        except OrderValidationError as error:
            return self._cancel_reject(session, message, parent, 2, m.CXL_BROKER_OPTION,
                                       error.text)
        side, symbol = message.get(54), message.get(55)
        if (side is not None and side != parent.side_code) or \
                (symbol is not None and symbol != parent.symbol):
            return self._cancel_reject(session, message, parent, 2, m.CXL_BROKER_OPTION,
                                       "Side (54) and Symbol (55) cannot be replaced")
        if request.quantity < parent.cum_quantity:
            return self._cancel_reject(session, message, parent, 2, m.CXL_TOO_LATE,
                                       f"OrderQty {request.quantity} is below CumQty "
                                       f"{parent.cum_quantity}")
        parent.pending_replace = request
        self._cl_ord_ids[parent.session][request.cl_ord_id] = parent
        self.journal.append(RecordKind.REPLACE_REQUEST, parent.parent_order_id, request.quantity,
                            request.limit_price_ticks, request.ord_type, request.cl_ord_id,
                            request.orig_cl_ord_id)
        if parent.submitted:
            self._submit_amend(parent, request)
        else:
            self.journal.flush()  # applied when the parent resumes

    def _request_target(self, session: Any, message: Any, response_to: int) -> Parent | None:
        """Returns the live parent a cancel or replace request names, or answers the request
        with an OrderCancelReject and returns None."""
        name = session.config.name
        used = self._cl_ord_ids.setdefault(name, {})
        cl_ord_id, orig = message.get(11), message.get(41)
        if not cl_ord_id or not orig:
            self._cancel_reject(session, message, None, response_to, m.CXL_BROKER_OPTION,
                                "ClOrdID (11) and OrigClOrdID (41) are required")
            return None
        if cl_ord_id in used:
            if message.poss_dup:
                self.counters["oms_possdup_ignored"] += 1
                return None
            self.counters["oms_duplicate_cl_ord_ids"] += 1
            self._cancel_reject(session, message, used[cl_ord_id], response_to,
                                m.CXL_DUPLICATE, "duplicate ClOrdID")
            return None
        parent = used.get(orig)
        if parent is None:
            self._cancel_reject(session, message, None, response_to, m.CXL_UNKNOWN_ORDER,
                                f"unknown order: OrigClOrdID {orig!r}")
            return None
        if parent.status == DONE:
            self._cancel_reject(session, message, parent, response_to, m.CXL_TOO_LATE,
                                "the order is already done")
            return None
        if parent.pending_cancel is not None or parent.pending_replace is not None:
            self._cancel_reject(session, message, parent, response_to, m.CXL_PENDING,
                                "a cancel or replace is already pending")
            return None
        return parent

    def _cancel_reject(self, session: Any, message: Any, parent: Parent | None,
                       response_to: int, reason: int, text: str) -> None:
        self.counters["oms_cancel_rejects"] += 1
        begin = session.config.begin_string
        body = m.cancel_reject(
            order_id=str(parent.parent_order_id) if parent else "NONE",
            cl_ord_id=message.get(11) or "NONE", orig_cl_ord_id=message.get(41) or "NONE",
            ord_status=parent.ord_status() if parent else "8", response_to=response_to,
            reason=m.cxl_rej_reason_for(begin, reason), text=text,
            transact_time=codec.format_utc_timestamp(self._clock()))
        self._send_oms(session.config.name, "9", body)

    def _reject_pending(self, parent: Parent, text: str) -> None:
        """Answers a cancel or replace left pending when the parent finished otherwise."""
        self._reject_pending_one(parent, 1, text)
        self._reject_pending_one(parent, 2, text)

    # --- engine answers ---------------------------------------------------------------------

    def _on_command_answer(self, command_id: int, accepted: bool, reason: int,
                           value_a: int = 0, value_b: int = 0) -> None:
        entry = self._commands.pop(command_id, None)
        if entry is None:
            return
        kind, parent, extra = entry
        reason_name = _REJECT_NAMES.get(reason, str(reason))
        if kind == _CMD_NEW:
            if accepted:
                if parent.status == PENDING_NEW:
                    parent.status = WORKING
                    self.journal.append(RecordKind.PARENT_ACCEPTED, parent.parent_order_id)
                    self._report(parent, "0")
            elif parent.status == PENDING_NEW:
                parent.status, parent.done_how = DONE, DONE_REJECTED
                parent.submitted = False
                self.journal.append(RecordKind.PARENT_REJECTED, parent.parent_order_id, reason)
                session = self.oms_sessions.get(parent.session)
                begin = session.config.begin_string if session is not None else "FIX.4.4"
                _, text = self._reason_text(reason, value_a, value_b)
                self._report(parent, "8", text=text, risk_reason=reason_name,
                             ord_rej_reason=m.ord_rej_reason_for(
                                 begin, m.engine_reject_code(reason_name)))
                self._reject_pending(parent, "the order was rejected")
            elif parent.status != DONE:
                parent.submitted = False
                _, text = self._reason_text(reason, value_a, value_b)
                self._finish(parent, DONE_CANCELED, risk_reason=reason_name,
                             text=f"not resumed after a router restart: {text}")
        elif kind == _CMD_CANCEL:
            if not accepted and parent.status != DONE and parent.pending_cancel is not None:
                self._reject_pending_one(parent, 1, f"engine refused the cancel: {reason_name}")
        elif kind == _CMD_AMEND:
            request: m.ReplaceRequest = extra
            if parent.pending_replace is not request:
                return
            if not accepted:
                self._reject_pending_one(parent, 2, f"engine refused the replace: {reason_name}")
                return
            orig = parent.cl_ord_id
            parent.quantity = request.quantity
            parent.limit_price_ticks = request.limit_price_ticks
            parent.ord_type = request.ord_type
            parent.cl_ord_id = request.cl_ord_id
            parent.pending_replace = None
            self.journal.append(RecordKind.REPLACED, parent.parent_order_id, request.quantity,
                                request.limit_price_ticks, request.ord_type, request.cl_ord_id)
            if parent.cum_quantity >= parent.quantity:
                self._mark_done(parent, DONE_FILLED)
            self._report(parent, "5", orig_cl_ord_id=request.orig_cl_ord_id or orig)

    def _reject_pending_one(self, parent: Parent, response_to: int, text: str) -> None:
        """Answers the pending cancel (`response_to` 1) or replace (2) with a CancelReject."""
        pending = parent.pending_cancel if response_to == 1 else parent.pending_replace
        if pending is None:
            return
        cl_ord_id, orig = pending[0], pending[1]
        if response_to == 1:
            parent.pending_cancel = None
        else:
            parent.pending_replace = None
        self.journal.append(RecordKind.REQUEST_REJECTED, parent.parent_order_id, response_to,
                            cl_ord_id)
        session = self.oms_sessions.get(parent.session)
        if session is None:
            return
        begin = session.config.begin_string
        body = m.cancel_reject(order_id=str(parent.parent_order_id), cl_ord_id=cl_ord_id,
                               orig_cl_ord_id=orig, ord_status=parent.ord_status(),
                               response_to=response_to,
                               reason=m.cxl_rej_reason_for(begin, m.CXL_TOO_LATE), text=text,
                               transact_time=codec.format_utc_timestamp(self._clock()))
        self.counters["oms_cancel_rejects"] += 1
        self._send_oms(parent.session, "9", body)

    def _on_parent_done(self, parent_id: int, filled: int, how: int, reason: int = 0) -> None:
        parent = self.parents.get(parent_id)
        if parent is None or parent.status == DONE or not parent.submitted:
            return
        parent.submitted = False
        if how == _STOPPED_BY_RISK:
            last, value_a, value_b = parent.last_risk
            if last != reason:
                value_a = value_b = 0
            name, text = self._reason_text(reason, value_a, value_b)
            parent.stop_reason, parent.stop_text = name, text
            self.journal.append(RecordKind.PARENT_STOPPED, parent_id, reason, value_a, value_b,
                                text)
            self.counters["parents_stopped_by_risk"] += 1
            self._event("risk_stop", "warning", f"parent {parent.cl_ord_id} ({parent.symbol}) "
                        f"stopped after {parent.cum_quantity} of {parent.quantity} shares: "
                        f"{text}", reason=name, parent_order_id=parent_id)
            self._finish(parent, DONE_CANCELED, text=text, risk_reason=name)
        elif how == 2:
            self._finish(parent, DONE_EXPIRED, text="expired")
        elif how == 1:
            self._finish(parent, DONE_CANCELED, text=parent.router_cancel or None)
        elif parent.cum_quantity >= parent.quantity:
            self._finish(parent, DONE_FILLED, report=False)
        else:
            self._finish(parent, DONE_CANCELED,
                         text=f"the engine finished the order with {parent.cum_quantity} of "
                              f"{parent.quantity} shares filled")

    def _mark_done(self, parent: Parent, how: int) -> None:
        parent.status, parent.done_how = DONE, how
        parent.done_ns = self._clock()
        self._waiting.discard(parent.parent_order_id)
        self.journal.append(RecordKind.PARENT_DONE, parent.parent_order_id, how)

    def _finish(self, parent: Parent, how: int, *, text: str | None = None,
                report: bool = True, risk_reason: str | None = None) -> None:
        """Finishes a parent: journals it, reports it (Canceled to a pending cancel's
        ClOrdID, or unsolicited; DoneForDay) and answers any other pending request."""
        pending_cancel = parent.pending_cancel if how == DONE_CANCELED else None
        if pending_cancel is not None:
            parent.pending_cancel = None
        self._mark_done(parent, how)
        if report and how == DONE_CANCELED:
            if pending_cancel is not None:
                self._report(parent, "4", cl_ord_id=pending_cancel[0],
                             orig_cl_ord_id=pending_cancel[1], text=text,
                             risk_reason=risk_reason)
            else:
                self._report(parent, "4", text=text or "cancelled by the router",
                             risk_reason=risk_reason)
        elif report and how == DONE_EXPIRED:
            self._report(parent, "3", text=text)
        self._reject_pending(parent, "the order is done")

    # --- OMS reports ------------------------------------------------------------------------

    def _exec_id(self) -> str:
        value = f"{self.incarnation}-{self._next_exec}"
        self._next_exec += 1
        return value

    def _report(self, parent: Parent, exec_type: str, *, cl_ord_id: str | None = None,
                orig_cl_ord_id: str | None = None, last_quantity: int = 0,
                last_price: str | None = None, text: str | None = None,
                ord_rej_reason: int | None = None, liquidity: int = 0,
                last_market: str | None = None, risk_reason: str | None = None,
                restatement_reason: int | None = None) -> None:
        session = self.oms_sessions.get(parent.session)
        if session is None:
            log.error("no OMS session %r for the report on parent %d", parent.session,
                      parent.parent_order_id)
            return
        begin = session.config.begin_string
        limit = (codec.price_to_fix(parent.limit_price_ticks, self.tick_usd)
                 if parent.ord_type == m.ORD_TYPE_LIMIT else None)
        body = m.execution_report(
            begin, order_id=str(parent.parent_order_id), cl_ord_id=cl_ord_id or parent.cl_ord_id,
            orig_cl_ord_id=orig_cl_ord_id, exec_id=self._exec_id(), exec_type=exec_type,
            ord_status=parent.ord_status(), symbol=parent.symbol, side_code=parent.side_code,
            quantity=parent.quantity, ord_type=parent.ord_type, price=limit,
            leaves=parent.leaves_quantity, cum=parent.cum_quantity,
            avg_price=m.avg_px(parent.notional_ticks, parent.cum_quantity, self._tick),
            transact_time=codec.format_utc_timestamp(self._clock()),
            last_quantity=last_quantity, last_price=last_price, text=text,
            ord_rej_reason=ord_rej_reason, liquidity=liquidity, last_market=last_market,
            account=parent.account or None, risk_reason=risk_reason,
            restatement_reason=restatement_reason)
        self._send_oms(parent.session, "8", body)

    def _send_oms(self, name: str, msg_type: str, body: list[tuple[int, Any]]) -> None:
        """Journals an OMS message in the outbox, flushes the journal, then sends it."""
        session = self.oms_sessions.get(name)
        if session is None:
            log.error("no OMS session %r; message %s dropped", name, msg_type)
            return
        sequence_number = session.next_sender_seq_num
        self.journal.append(RecordKind.OMS_OUT, sequence_number, name, msg_type,
                            m.encode_body(body))
        self.journal.flush()
        session.send(msg_type, body)
        self.counters["oms_reports"] += 1

    # --- introspection ------------------------------------------------------------------

    def order_path_latency_ns(self) -> np.ndarray:
        """Returns the recorded order-path latencies (ns): from the OMS NewOrderSingle's bytes
        becoming readable (the reactor's time for that pass, before recv, framing, parsing and
        the session checks) to the first child NewOrderSingle written to its venue's socket."""
        n = min(self._latency_count, len(self._latency))
        return self._latency[:n].copy()

    def reset_latency(self) -> None:
        """Forgets the recorded order-path latencies."""
        self._latency_count = 0

    def latency_since(self, mark: int) -> tuple[np.ndarray, int]:
        """Returns the order-path latencies (ns) recorded since `mark` (a count returned by
        an earlier call; 0 at first) and the new mark; at most the buffer's length."""
        count = self._latency_count
        if count < mark:  # reset_latency() was called
            mark = 0
        new = min(count - mark, len(self._latency))
        if new <= 0:
            return self._latency[:0].copy(), count
        start = (count - new) % len(self._latency)
        end = start + new
        if end <= len(self._latency):
            return self._latency[start:end].copy(), count
        return np.concatenate([self._latency[start:],
                               self._latency[:end - len(self._latency)]]), count

    def status(self) -> dict[str, Any]:
        """Returns counters, live parents, open children and parents awaiting recovery."""
        live = [p.snapshot() for p in self.parents.values() if p.status != DONE]
        open_children = sum(1 for c in self.children.values() if not c.done)
        return {"incarnation": self.incarnation, "counters": dict(self.counters),
                "live_parents": live, "open_children": open_children,
                "waiting_parents": self.waiting_parents,
                "risk_state": _RISK_STATE_NAMES.get(self.risk_state, str(self.risk_state)),
                "gate_closed": self.gate_closed, "model_tripped": self.model_tripped}
