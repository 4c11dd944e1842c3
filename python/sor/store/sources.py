"""Sources to tables: an audit journal run and market-data events become the store's datasets
(with the partition columns ``date``, ``instrument`` and ``venue`` as string columns)."""

from __future__ import annotations

import datetime as _datetime
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from sor import _core
from sor.errors import StoreError

ALL = "ALL"
_DAY_NS = 86_400 * 1_000_000_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_date(value: Any, *, source: str = "") -> str:
    """Returns `value` (a date, "YYYY-MM-DD" or yyyymmdd) as "YYYY-MM-DD"; raises StoreError."""
    if isinstance(value, _datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, _datetime.date):
        return value.isoformat()
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    try:
        if not _DATE.match(text):
            raise ValueError
        return _datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise StoreError(f"date {value!r} is not YYYY-MM-DD", source=source) from None


def utc_dates(ns: np.ndarray) -> np.ndarray:
    """Returns the UTC dates ("YYYY-MM-DD", object array) of nanosecond timestamps."""
    ns = np.asarray(ns, dtype=np.int64)
    days = np.floor_divide(ns, _DAY_NS)
    unique, inverse = np.unique(days, return_inverse=True)
    names = np.array([(_datetime.date(1970, 1, 1) + _datetime.timedelta(days=int(d))).isoformat()
                      for d in unique.tolist()], dtype=object)
    return names[inverse.reshape(-1)] if len(ns) else np.zeros(0, dtype=object)


def midnight_ns(date: str) -> int:
    """Returns the UTC midnight of "YYYY-MM-DD" in nanoseconds since the epoch."""
    day = _datetime.date.fromisoformat(date)
    return (day - _datetime.date(1970, 1, 1)).days * _DAY_NS


def id_names(ids: np.ndarray, names: Mapping[int, str]) -> np.ndarray:
    """Returns the name of each id (`names`, else ``id-N``) as an object array."""
    ids = np.asarray(ids).astype(np.int64)
    unique, inverse = np.unique(ids, return_inverse=True)
    labels = np.array([names.get(int(i), f"id-{int(i)}") for i in unique.tolist()], dtype=object)
    return labels[inverse.reshape(-1)] if len(ids) else np.zeros(0, dtype=object)


def int_keyed(mapping: Any, what: str, source: str) -> dict[int, str]:
    """Returns a JSON {id: name} mapping (string keys) with integer keys."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise StoreError(f"{what} must be a mapping of id to name, got {type(mapping).__name__}",
                         source=source)
    out: dict[int, str] = {}
    for key, value in mapping.items():
        try:
            out[int(key)] = str(value)
        except (TypeError, ValueError):
            raise StoreError(f"{what}: id {key!r} is not an integer", source=source) from None
    return out


def _with_partitions(table: Any, dates: Any, instruments: Any, venues: Any) -> Any:
    import pyarrow as pa

    n = table.num_rows

    def column(value: Any) -> Any:
        if isinstance(value, str):
            return pa.array([value] * n, pa.string())
        return pa.array(list(value), pa.string())

    for name, value in (("date", dates), ("instrument", instruments), ("venue", venues)):
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, column(value))
    return table


# --- journal --------------------------------------------------------------------------------


def journal_tables(run: Any, source: str) -> dict[str, Any]:
    """Returns the datasets of one journal run: decisions, executions, children, events."""
    import pyarrow as pa

    from sor.monitor.journal import (
        DECISION_CHILD_SENT,
        JournalContents,
        audit_table,
        decisions_table,
        events_table,
        training_rows,
    )

    metadata = run.header.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        metadata = {}
    day = metadata.get("trading_day")
    trading_day = check_date(day, source=source) if day not in (None, "", 0) else None
    venue_names = int_keyed(metadata.get("venues"), "journal metadata 'venues'", source)
    instrument_names = int_keyed(metadata.get("instruments"), "journal metadata 'instruments'",
                                 source)

    def dates(ns: np.ndarray) -> Any:
        return trading_day if trading_day is not None else utc_dates(ns)

    tables: dict[str, Any] = {}
    decisions = decisions_table([run])
    context = run.decisions["context"]
    tables["decisions"] = _with_partitions(
        decisions, dates(context["now_ns"]), id_names(context["instrument_id"], instrument_names),
        id_names(context["venue_id"], venue_names))

    a = run.audit
    audit = audit_table([run])
    executions_mask = a["kind"] == int(_core.AuditKind.EXECUTION)
    audit = audit.filter(pa.array(executions_mask))
    a = a[executions_mask]
    exec_names = {int(v): k for k, v in _core.ExecKind.__members__.items()}
    executions = pa.table({
        "run": audit.column("run"),
        "ts_ns": pa.array(a["ts_ns"]),
        "sequence": pa.array(a["sequence"]),
        "parent_order_id": pa.array(a["parent_order_id"]),
        "child_order_id": pa.array(a["child_order_id"]),
        "instrument_id": pa.array(a["instrument_id"]),
        "venue_id": pa.array(a["venue_id"]),
        "exec_kind": pa.array(a["reference"]),
        "kind_name": pa.array([exec_names.get(int(k), str(int(k)))
                               for k in a["reference"].tolist()], pa.string()),
        "price_ticks": pa.array(a["value_a"].astype(np.int64)),
        "quantity": pa.array(a["value_b"].astype(np.int64)),
        "reason": pa.array(a["reason"]),
        "flags": pa.array(a["flags"]),
    })
    # the engine's clock stamps audit records; without a trading day an execution takes the
    # market date of its child's decision (ts_ns when the child has none in this run)
    sent = run.decisions[(run.decisions["child_order_id"] != 0)]
    child_ids, first_sent = np.unique(sent["child_order_id"], return_index=True)
    exec_ns = a["ts_ns"].astype(np.int64).copy()
    if len(child_ids) and len(a):
        position = np.minimum(np.searchsorted(child_ids, a["child_order_id"]),
                              len(child_ids) - 1)
        known = child_ids[position] == a["child_order_id"]
        exec_ns[known] = sent["context"]["now_ns"][first_sent][position[known]]
    tables["executions"] = _with_partitions(
        executions, dates(exec_ns), id_names(a["instrument_id"], instrument_names),
        id_names(a["venue_id"], venue_names))

    rows = training_rows(JournalContents([run]), finished_only=False)
    # market time and instrument of each child: its (first) decision with the child sent
    d = run.decisions
    d = d[((d["flags"] & DECISION_CHILD_SENT) != 0) & (d["child_order_id"] != 0)]
    ids, first = np.unique(d["child_order_id"], return_index=True)
    child_ids = rows["child_order_id"]
    where = np.searchsorted(ids, child_ids)
    now_ns = d["context"]["now_ns"][first][where].astype(np.int64) if len(child_ids) \
        else np.zeros(0, np.int64)
    instrument_id = d["context"]["instrument_id"][first][where].astype(np.uint32) \
        if len(child_ids) else np.zeros(0, np.uint32)
    children_columns: dict[str, Any] = {}
    for name, values in rows.items():
        if name == "run":
            children_columns[name] = pa.array([str(v) for v in values.tolist()], pa.string())
        else:
            children_columns[name] = pa.array(values)
    children_columns["now_ns"] = pa.array(now_ns)
    children_columns["instrument_id"] = pa.array(instrument_id)
    tables["children"] = _with_partitions(
        pa.table(children_columns), dates(now_ns), id_names(instrument_id, instrument_names),
        id_names(rows["venue_id"], venue_names))

    events = events_table([run])
    tables["events"] = _with_partitions(
        events, dates(events.column("ts_ns").to_numpy()), ALL, ALL)
    return tables


# --- market data ------------------------------------------------------------------------------


def book_type_name(book_type: Any) -> str:
    """Returns "L3" or "L2" for a book type given as text or sor.book.BookType."""
    if isinstance(book_type, _core.BookType):
        name = book_type.name
    else:
        name = str(book_type).upper()
    if name not in ("L3", "L2"):
        raise StoreError(f"book_type must be 'L3' or 'L2', got {book_type!r}")
    return name


def market_data_table(events: np.ndarray, *, book_type: str, dates: Any,
                      venue_names: Mapping[int, str], instrument_names: Mapping[int, str]) -> Any:
    """Returns events (md_event_dtype) as the ``market_data`` table with partition columns."""
    import pyarrow as pa

    columns = {name: pa.array(np.ascontiguousarray(events[name]))
               for name in events.dtype.names}
    columns["book_type"] = pa.array([book_type] * len(events), pa.string())
    return _with_partitions(pa.table(columns), dates,
                            id_names(events["instrument_id"], instrument_names),
                            id_names(events["venue_id"], venue_names))


def quotes_tables(events: np.ndarray, *, book_type: str, dates_override: str | None,
                  venue_names: Mapping[int, str], instrument_names: Mapping[int, str]
                  ) -> tuple[Any, dict[str, int]]:
    """Returns the ``quotes`` table of `events` (every venue in them) and counts of events the
    books refused or gaps they accepted."""
    import pyarrow as pa

    from sor.store.quotes import quotes_table, venue_quotes

    parts = []
    counts = {"book_rejected_events": 0, "book_sequence_gaps": 0}
    # STATUS events go to the books too: they carry sequence numbers the books check
    for venue_id in np.unique(events["venue_id"]).tolist():
        rows = venue_quotes(events[events["venue_id"] == venue_id], int(venue_id), book_type)
        counts["book_rejected_events"] += rows.rejected_events
        counts["book_sequence_gaps"] += rows.sequence_gaps
        if len(rows):
            parts.append(quotes_table(rows))
    if not parts:
        return None, counts
    table = pa.concat_tables(parts)
    ts_event = table.column("ts_event").to_numpy()
    dates = dates_override if dates_override is not None else utc_dates(ts_event)
    table = _with_partitions(table, dates,
                             id_names(table.column("instrument_id").to_numpy(), instrument_names),
                             id_names(table.column("venue_id").to_numpy(), venue_names))
    return table, counts


__all__ = ["journal_tables", "market_data_table", "quotes_tables", "check_date", "utc_dates",
           "midnight_ns", "id_names", "book_type_name", "ALL"]
