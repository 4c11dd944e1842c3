"""Labels of the live children: what each child sent by the router turned out to be, from the
store's ``children`` (the journal) and ``quotes`` (the venues' market data), with DuckDB
as-of joins on market time. The labels mean what ``sor.models.dataset``'s probe labels mean,
so ``sor.models.train.TARGETS`` learn from them unchanged:

- ``filled``: the child was filled in full within ``fill_horizon_s`` of its decision (market
  time). ``fill_fraction`` and ``filled_quantity`` keep the whole outcome.
- ``adverse_move_bps``: move of the NBBO mid from the decision (``now_ns``, the router's
  market time) to ``move_horizon_s`` later, in bps of the decision mid, > 0 against the
  child's side (up for a buy).
- ``impact_bps``: the same move for a take (order type 0) that filled at least in part, NaN
  otherwise; ``cost_bps``: the average fill price against the decision mid, > 0 a cost.
- ``adv_shares``: the instrument's average daily volume the router ran with (the journal's
  ``session_up`` event, or given).

The NBBO at a time is the best bid and best ask over the lit venues' last quotes at or before
that time (``ts_event``): one as-of join per venue, then the max/min across venues. The
engine's audit times (``ts_ns``) are its own clock; a fill's market time is interpolated
between the run's decisions before and after it (each decision has both clocks), which is
exact live (the two clocks run together) and within one decision interval in the simulator.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

from sor.errors import RetrainError

_NS = 1_000_000_000

LABELLED_DATASET = "labelled"


def _dates_clause(column: str, dates: Iterable[str] | None) -> str:
    if dates is None:
        return "TRUE"
    quoted = ", ".join("'" + str(d).replace("'", "''") + "'" for d in dates)
    return f"{column} IN ({quoted})" if quoted else "FALSE"


def labels_query(*, dates: Iterable[str] | None = None, fill_horizon_s: float = 10.0,
                 move_horizon_s: float = 10.0) -> str:
    """Returns the DuckDB SQL of the labels over views ``children``, ``decisions`` and
    ``quotes`` (one row per finished child, its columns plus the label columns)."""
    if not (fill_horizon_s > 0 and move_horizon_s > 0):
        raise RetrainError("fill_horizon_s and move_horizon_s must be > 0")
    move_ns = int(round(move_horizon_s * _NS))
    fill_ns = int(round(fill_horizon_s * _NS))
    dates = list(dates) if dates is not None else None
    return f"""
WITH kids AS (
    SELECT * FROM children
    WHERE {_dates_clause('date', dates)} AND (done OR filled)
),
probes AS (
    SELECT run, child_order_id, instrument, 0 AS probe_at, now_ns AS t FROM kids
    UNION ALL
    SELECT run, child_order_id, instrument, 1 AS probe_at, now_ns + {move_ns} AS t FROM kids
),
lit AS (
    SELECT DISTINCT instrument, venue FROM quotes
    WHERE instrument IN (SELECT DISTINCT instrument FROM kids)
),
probe_venue AS (
    SELECT p.*, l.venue FROM probes p JOIN lit l USING (instrument)
),
last_quote AS (
    SELECT pv.run, pv.child_order_id, pv.probe_at, q.bid_price_ticks, q.ask_price_ticks
    FROM probe_venue pv ASOF LEFT JOIN quotes q
      ON pv.instrument = q.instrument AND pv.venue = q.venue AND pv.t >= q.ts_event
),
nbbo AS (
    SELECT run, child_order_id, probe_at,
           max(bid_price_ticks) AS bid, min(ask_price_ticks) AS ask
    FROM last_quote GROUP BY run, child_order_id, probe_at
),
mids AS (
    SELECT run, child_order_id,
           max(CASE WHEN probe_at = 0 THEN bid END) AS bid0,
           max(CASE WHEN probe_at = 0 THEN ask END) AS ask0,
           max(CASE WHEN probe_at = 1 AND bid > 0 AND ask > bid THEN (bid + ask) / 2.0 END) AS mid1
    FROM nbbo GROUP BY run, child_order_id
),
clock AS (
    SELECT run, ts_ns AS wall_ns, min(now_ns) AS market_ns
    FROM decisions GROUP BY run, ts_ns
),
fill_before AS (
    SELECT k.run, k.child_order_id, c.wall_ns AS w0, c.market_ns AS m0
    FROM kids k ASOF LEFT JOIN clock c ON k.run = c.run AND k.filled_in_full_ns >= c.wall_ns
    WHERE k.filled_in_full_ns > 0
),
fill_after AS (
    SELECT k.run, k.child_order_id, c.wall_ns AS w1, c.market_ns AS m1
    FROM kids k ASOF LEFT JOIN clock c ON k.run = c.run AND k.filled_in_full_ns <= c.wall_ns
    WHERE k.filled_in_full_ns > 0
),
fill_time AS (
    SELECT k.run, k.child_order_id,
           CASE WHEN b.w0 IS NULL THEN NULL
                WHEN a.w1 IS NULL OR a.w1 = b.w0 OR a.m1 <= b.m0
                    THEN b.m0 + (k.filled_in_full_ns - b.w0)
                ELSE b.m0 + CAST((k.filled_in_full_ns - b.w0) AS DOUBLE) / (a.w1 - b.w0)
                            * (a.m1 - b.m0)
           END AS filled_in_full_market_ns
    FROM kids k
    LEFT JOIN fill_before b USING (run, child_order_id)
    LEFT JOIN fill_after a USING (run, child_order_id)
)
SELECT k.*,
       k.now_ns AS ts_ns,
       CASE WHEN m.bid0 > 0 AND m.ask0 > m.bid0 THEN (m.bid0 + m.ask0) / 2.0 END AS mid_ticks,
       f.filled_in_full_market_ns,
       k.filled_quantity >= k.child_quantity
           AND f.filled_in_full_market_ns IS NOT NULL
           AND f.filled_in_full_market_ns - k.now_ns <= {fill_ns} AS label_filled,
       m.mid1 AS mid_after_ticks
FROM kids k
JOIN mids m USING (run, child_order_id)
JOIN fill_time f USING (run, child_order_id)
ORDER BY k.now_ns, k.run, k.child_order_id
"""


def label_connection(connection: Any, *, dates: Iterable[str] | None = None,
                     fill_horizon_s: float = 10.0, move_horizon_s: float = 10.0,
                     adv_shares: Mapping[str, float] | float | None = None) -> Any:
    """Returns the labelled children (pyarrow) of a DuckDB connection that has the views
    ``children``, ``decisions`` and ``quotes`` (and optionally ``events``)."""
    import numpy as np
    import pyarrow as pa

    sql = labels_query(dates=dates, fill_horizon_s=fill_horizon_s,
                       move_horizon_s=move_horizon_s)
    relation = connection.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table = fetch()
    if table.num_rows == 0:
        return table
    side = table.column("side").to_numpy(zero_copy_only=False).astype(np.float64)
    mid = _floats(table.column("mid_ticks"))
    after = _floats(table.column("mid_after_ticks"))
    order_type = table.column("order_type").to_numpy(zero_copy_only=False)
    filled_quantity = table.column("filled_quantity").to_numpy(zero_copy_only=False)
    average = _floats(table.column("avg_fill_price_ticks"))
    with np.errstate(invalid="ignore", divide="ignore"):
        move = side * (after - mid) / mid * 1e4
        cost = np.where(filled_quantity > 0, side * (average - mid) / mid * 1e4, np.nan)
    impact = np.where((order_type == 0) & (filled_quantity > 0), move, np.nan)
    filled = table.column("label_filled").fill_null(False)
    adv = _adv_by_instrument(connection, adv_shares)
    instruments = table.column("instrument").to_pylist()
    adv_column = np.array([adv.get(i, math.nan) for i in instruments], dtype=np.float64)
    drop = [n for n in ("filled", "label_filled", "adv_shares", "adverse_move_bps",
                        "impact_bps", "cost_bps") if n in table.column_names]
    table = table.drop_columns(drop)
    table = table.append_column("filled", filled)
    table = table.append_column("adverse_move_bps", pa.array(move, pa.float64()))
    table = table.append_column("impact_bps", pa.array(impact, pa.float64()))
    table = table.append_column("cost_bps", pa.array(cost, pa.float64()))
    table = table.append_column("adv_shares", pa.array(adv_column, pa.float64()))
    return table


def _floats(column: Any) -> Any:
    import numpy as np

    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _adv_by_instrument(connection: Any, adv_shares: Mapping[str, float] | float | None
                       ) -> dict[str, float]:
    """Returns ADV by instrument symbol: `adv_shares` when given (a float applies to every
    instrument), else the latest ``session_up`` event's ``adv_shares`` in the ``events`` view."""
    if isinstance(adv_shares, (int, float)):
        return _Every(float(adv_shares))
    if adv_shares is not None:
        return {str(k): float(v) for k, v in adv_shares.items()}
    out: dict[str, float] = {}
    try:
        relation = connection.sql(
            "SELECT data FROM events WHERE kind = 'session_up' ORDER BY ts_ns")
        rows = relation.fetchall()
    except Exception:  # noqa: BLE001 - a store without events: ADV unknown
        return out
    for (data,) in rows:
        try:
            event = json.loads(data)
        except (TypeError, ValueError):
            continue
        for symbol, value in (event.get("adv_shares") or {}).items():
            out[str(symbol)] = float(value)
    return out


class _Every(dict):  # type: ignore[type-arg]
    """A mapping that answers one value for every key."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def get(self, key: Any, default: Any = None) -> float:  # type: ignore[override]
        return self.value


def label_children(store: Any, *, dates: Iterable[str] | None = None,
                   fill_horizon_s: float = 10.0, move_horizon_s: float = 10.0,
                   adv_shares: Mapping[str, float] | float | None = None,
                   write: bool = True) -> Any:
    """Labels the children in `store` (a ``sor.store.DataStore``) of `dates` (all when None);
    with `write`, stores them as the ``labelled`` dataset, one source per date
    (``labels-<date>``: labelling a date again replaces its rows, an unchanged result changes
    nothing). Returns the labelled rows (pyarrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    connection = store.connect()
    try:
        present = {row[0] for row in connection.sql(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        missing = [name for name in ("children", "decisions", "quotes") if name not in present]
        if missing:
            raise RetrainError(f"the store at {getattr(store, 'root', store)} has no "
                               f"{', '.join(missing)} dataset: ingest a router journal and its "
                               "venues' market data first (sor data ingest)")
        table = label_connection(connection, dates=dates, fill_horizon_s=fill_horizon_s,
                                 move_horizon_s=move_horizon_s, adv_shares=adv_shares)
    finally:
        connection.close()
    if table.num_rows == 0:
        raise RetrainError(f"no finished children to label in the store at "
                           f"{getattr(store, 'root', store)}"
                           f"{'' if dates is None else ' for dates ' + ', '.join(dates)}")
    table = table.replace_schema_metadata({
        **(table.schema.metadata or {}),
        b"sor.labels": json.dumps({"fill_horizon_s": fill_horizon_s,
                                   "move_horizon_s": move_horizon_s}).encode()})
    if write:
        for day in sorted(set(table.column("date").to_pylist())):
            part = table.filter(pc.equal(table.column("date"), pa.scalar(day)))
            store.write_dataset(LABELLED_DATASET, part, source_id=f"labels-{day}")
    return table


__all__ = ["label_children", "label_connection", "labels_query", "LABELLED_DATASET"]
