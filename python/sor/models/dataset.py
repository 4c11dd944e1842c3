"""Training datasets from the simulator: probe child orders with features and labels.

A probe day runs one simulated session. Every ``interval_s`` of simulated time (after a
warm-up) it draws one candidate child order (venue, order type, side, size), computes its
decision row with the C++ feature engine from the market data the router would have seen by
then (events applied in ``ts_recv`` order), sends the child to the simulated venue and follows
it. The labels, fixed once the horizons have passed, are:

- ``filled``: the child was filled in full within ``fill_horizon_s`` (an IOC at once; post-only
  and midpoint children are cancelled at the horizon). ``fill_fraction`` keeps the fraction.
- ``adverse_move_bps``: move of the true NBBO mid from the decision to ``move_horizon_s`` later,
  in bps of the decision mid, signed so > 0 is against the child's side (up for a buy).
- ``impact_bps`` (filled takes): the same move after our take, the child's realised market
  impact; ``cost_bps``: fill price against the decision mid plus fees, in bps, signed so > 0
  is a cost.

Probes are real orders: they consume liquidity and queue like any child would. Days are
independent (one seed each), so datasets split by seed give honest held-out validation.
The rows are written as Parquet, one file per (scenario, seed), with the schema hash in the
file metadata.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from sor import _core
from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA, FeatureEngine, FeatureSettings, empty_contexts
from sor.features.garch import GarchParams, fit_garch
from sor.sim import Market

_NS = 1_000_000_000
_TYPE_TAKE, _TYPE_POST, _TYPE_MID = 0, 1, 2
ORDER_TYPE_NAMES = ("take", "post", "midpoint")
_SIM_TYPE = {_TYPE_TAKE: int(_core.SimOrderType.IOC), _TYPE_POST: int(_core.SimOrderType.POST_ONLY),
             _TYPE_MID: int(_core.SimOrderType.MIDPOINT_PEG)}
_FILL = int(_core.SimReportKind.FILL)
_DONE = (int(_core.SimReportKind.CANCELLED), int(_core.SimReportKind.REJECTED))
_ACK = int(_core.SimReportKind.ACK)
_BUY, _SELL = int(_core.Side.BUY), int(_core.Side.SELL)

LABEL_COLUMNS = ("filled", "fill_fraction", "filled_quantity", "adverse_move_bps", "impact_bps",
                 "cost_bps", "rejected")
META_COLUMNS = ("scenario", "seed", "probe", "ts_ns", "venue_id", "venue", "side", "order_type",
                "child_quantity", "price_ticks", "mid_ticks", "adv_shares")


@dataclass(frozen=True)
class ProbeSpec:
    """How probe children are drawn and followed."""

    interval_s: float = 1.0               # Simulated seconds between probes.
    warmup_s: float = 120.0               # No probe before this long after the open.
    session_hours: float = 6.5            # Simulated hours per day (from the open).
    fill_horizon_s: float = 10.0          # Post-only and midpoint children rest this long.
    move_horizon_s: float = 10.0          # Horizon of the adverse-move and impact labels.
    min_child_shares: int = 100           # Child sizes are log-uniform in [min, max], in lots.
    max_child_shares: int = 5000
    lot_shares: int = 100
    order_type_weights: tuple[float, float, float] = (0.4, 0.35, 0.25)  # take, post, midpoint
    max_parent_shares: int = 200_000      # Order context: parent sizes are log-uniform up to this.

    def __post_init__(self) -> None:
        problems = []
        if not self.interval_s > 0:
            problems.append(f"interval_s must be > 0, got {self.interval_s}")
        if not 0 < self.session_hours <= 24:
            problems.append(f"session_hours must be in (0, 24], got {self.session_hours}")
        if not (self.fill_horizon_s > 0 and self.move_horizon_s > 0):
            problems.append("fill_horizon_s and move_horizon_s must be > 0")
        if not 0 < self.min_child_shares <= self.max_child_shares:
            problems.append(f"need 0 < min_child_shares <= max_child_shares, got "
                            f"{self.min_child_shares}, {self.max_child_shares}")
        if len(self.order_type_weights) != 3 or min(self.order_type_weights) < 0 \
                or sum(self.order_type_weights) <= 0:
            problems.append(f"order_type_weights must be 3 non-negative weights, got "
                            f"{self.order_type_weights}")
        if problems:
            raise UsageError("invalid probe spec: " + "; ".join(problems))


@dataclass
class _Probe:
    index: int
    ts_ns: int
    venue_id: int
    side: int
    order_type: int
    quantity: int
    price_ticks: int
    mid_ticks: float
    row: np.ndarray
    filled: int = 0
    notional_ticks: float = 0.0
    fee_usd: float = 0.0
    done: bool = False
    rejected: bool = False
    fill_end_ns: int = 0
    mid_after: float = math.nan


@dataclass(frozen=True)
class Calibration:
    """What the probes and the features take from a scenario's calibration day (seed 0, in
    no split): its average daily volume and its mid returns for the GARCH fit."""

    scenario: str
    adv_shares: float
    returns_bps: tuple[float, ...]


def calibrate(scenario: str, *, seed: int = 0, hours: float = 6.5,
              garch_interval_s: float = 60.0) -> Calibration:
    """Runs one session of ``scenario``: the shares it trades (scaled to a 6.5-hour day) and
    the NBBO mid returns every ``garch_interval_s``, in bps."""
    with Market(scenario, seed=seed, record_trades=True) as market:
        mids = []
        end = market.session_start_ns + int(hours * 3600 * _NS)
        t = market.session_start_ns
        while t < end:
            t += int(garch_interval_s * _NS)
            market.run_until(t)
            mid = _mid(market.nbbo())
            if math.isfinite(mid):
                mids.append(mid)
        volume = float(market.trades()["quantity"].sum()) * 6.5 / hours
    returns = np.diff(np.log(np.asarray(mids))) * 1e4
    return Calibration(scenario, volume, tuple(float(r) for r in returns))


def fit_feature_settings(calibrations: Sequence[Calibration], *,
                         garch_interval_s: float = 60.0) -> FeatureSettings:
    """Returns the feature settings of a dataset: GARCH(1,1) fitted (``arch``) to the pooled
    calibration returns, every other setting at its default."""
    returns = np.concatenate([np.asarray(c.returns_bps) for c in calibrations])
    return FeatureSettings(garch=fit_garch(returns=returns, sample_interval_s=garch_interval_s))


def settings_to_json(settings: FeatureSettings) -> dict[str, Any]:
    """Returns the feature settings as JSON-ready data (stored with datasets and models)."""
    out = {f.name: getattr(settings, f.name) for f in fields(FeatureSettings) if f.name != "garch"}
    out["garch"] = None if settings.garch is None else {
        "omega_bps2": settings.garch.omega_bps2, "alpha": settings.garch.alpha,
        "beta": settings.garch.beta, "sample_interval_ns": settings.garch.sample_interval_ns,
        "initial_variance_bps2": settings.garch.initial_variance_bps2}
    return out


def settings_from_json(data: dict[str, Any]) -> FeatureSettings:
    """Inverse of ``settings_to_json``."""
    data = dict(data)
    garch = data.pop("garch", None)
    return FeatureSettings(**data, garch=GarchParams(**garch) if garch else None)


def probe_day(scenario: str, seed: int, spec: ProbeSpec = ProbeSpec(), *,
              adv_shares: float, settings: FeatureSettings | None = None,
              progress: Callable[[float], None] | None = None) -> dict[str, np.ndarray]:
    """Runs one simulated day of ``scenario`` with probe children; returns the columns
    (features under their schema names, ``META_COLUMNS`` and ``LABEL_COLUMNS``).
    ``progress`` is called with the fraction of the day done."""
    adv = float(adv_shares)
    rng = np.random.default_rng([seed, 0x5052_4F42])  # "PROB"
    with Market(scenario, seed=seed, record_events=True, record_trades=False) as market, \
            FeatureEngine.from_scenario(market, settings) as features:
        features.set_adv(0, adv)
        venues = list(market.spec.venues)
        venue_ids = [int(v.venue_id) for v in venues]
        dark = {int(v.venue_id): v.kind != _core.SimVenueKind.LIT for v in venues}
        names = {int(v.venue_id): str(v.name) for v in venues}
        tick_size = {int(v.venue_id): int(v.tick_size_ticks) for v in venues}
        start = market.session_start_ns
        end = start + int(spec.session_hours * 3600 * _NS)
        step = int(spec.interval_s * _NS)
        fill_ns = int(spec.fill_horizon_s * _NS)
        move_ns = int(spec.move_horizon_s * _NS)
        horizon = max(fill_ns, move_ns) + 2 * step
        held: np.ndarray | None = None
        probes: dict[int, _Probe] = {}
        finished: list[_Probe] = []
        seen_mids: deque[float] = deque(maxlen=600)
        mid_at: dict[int, float] = {}
        cancelled: set[int] = set()
        weights = np.asarray(spec.order_type_weights, dtype=float)
        weights = weights / weights.sum()
        log_lo, log_hi = math.log(spec.min_child_shares), math.log(spec.max_child_shares)
        context = empty_contexts(1)
        t = start
        while t < end + horizon:
            t += step
            market.run_until(t)
            # the market data the router has seen by t, in arrival order
            parts = [b for b in (market.events(v) for v in venue_ids) if len(b)]
            if held is not None:
                parts.insert(0, held)
            held = None
            if parts:
                pending = np.concatenate(parts)
                pending = pending[np.argsort(pending["ts_recv"], kind="stable")]
                cut = int(np.searchsorted(pending["ts_recv"], t, side="right"))
                features.apply(pending[:cut])
                if cut < len(pending):
                    held = pending[cut:]
            _follow(market.reports(), probes, features)
            true_mid = _mid(market.nbbo())
            mid_at[t] = true_mid
            for client, probe in list(probes.items()):
                if probe.order_type != _TYPE_TAKE and not probe.done and \
                        t >= probe.ts_ns + fill_ns and client not in cancelled:
                    market.cancel(client)
                    cancelled.add(client)
                if math.isnan(probe.mid_after) and t >= probe.ts_ns + move_ns:
                    probe.mid_after = mid_at.get(probe.ts_ns + move_ns, true_mid)
                if probe.done and not math.isnan(probe.mid_after):
                    finished.append(probes.pop(client))
                    cancelled.discard(client)
            mid_at.pop(t - horizon, None)
            book_nbbo = features.book.nbbo(0)
            bid, ask = int(book_nbbo.bid_price_ticks), int(book_nbbo.ask_price_ticks)
            seen_mid = (bid + ask) / 2.0 if 0 < bid < ask else math.nan
            if math.isfinite(seen_mid):
                seen_mids.append(seen_mid)
            if t > end or t < start + int(spec.warmup_s * _NS):
                continue
            if not (math.isfinite(seen_mid) and math.isfinite(true_mid)):
                continue
            order_type = int(rng.choice(3, p=weights))
            candidates = venue_ids if order_type == _TYPE_MID else \
                [v for v in venue_ids if not dark[v]]
            venue = int(candidates[int(rng.integers(len(candidates)))])
            side = 1 if rng.random() < 0.5 else -1
            lots = max(1, int(round(math.exp(rng.uniform(log_lo, log_hi)) / spec.lot_shares)))
            quantity = lots * spec.lot_shares
            price = _child_price(bid, ask, side, order_type, tick_size[venue])
            parent = int(round(math.exp(rng.uniform(
                math.log(quantity), math.log(max(quantity, spec.max_parent_shares))))))
            parent = max(parent, quantity)
            remaining = int(rng.integers(quantity, parent + 1))
            elapsed = float(rng.random())
            horizon_ns = int(rng.uniform(60, 3600) * _NS)
            c = context[0]
            c["now_ns"] = t
            c["start_ns"] = t - int(elapsed * horizon_ns)
            c["end_ns"] = c["start_ns"] + horizon_ns
            c["child_price_ticks"] = price
            c["child_quantity"] = quantity
            c["parent_quantity"] = parent
            c["remaining_quantity"] = remaining
            c["arrival_mid_ticks"] = seen_mids[int(rng.integers(len(seen_mids)))]
            c["instrument_id"] = 0
            c["venue_id"] = venue
            c["side"] = _BUY if side > 0 else _SELL
            c["order_type"] = order_type
            row = features.rows(context)[0].copy()
            client = market.submit(venue, "buy" if side > 0 else "sell", quantity,
                                   price_ticks=price, order_type=_SIM_TYPE[order_type])
            probes[client] = _Probe(len(finished) + len(probes), t, venue, side, order_type,
                                    quantity, price, true_mid, row)
            if progress is not None and (t - start) // step % 600 == 0:
                progress(min(1.0, (t - start) / (end - start)))
        finished.extend(probes.values())
        tick_usd = float(market.spec.price_tick_usd)
    if progress is not None:
        progress(1.0)
    return _columns(finished, scenario, seed, adv, names, tick_usd)


def _mid(nbbo: Any) -> float:
    bid, ask = int(nbbo["bid_price_ticks"]), int(nbbo["ask_price_ticks"])
    if bid <= 0 or ask <= 0 or ask <= bid:
        return math.nan
    return (bid + ask) / 2.0


def _child_price(bid: int, ask: int, side: int, order_type: int, tick: int) -> int:
    """Returns the limit price of a probe: the far touch for a take (rounded to the venue's
    grid, still marketable), the near touch for a post, 0 (the peg) for a midpoint child."""
    far, near = (ask, bid) if side > 0 else (bid, ask)
    if order_type == _TYPE_TAKE:
        return -(-far // tick) * tick if side > 0 else far // tick * tick
    if order_type == _TYPE_POST:
        return near // tick * tick if side > 0 else -(-near // tick) * tick
    return 0


def _follow(reports: np.ndarray, probes: dict[int, _Probe], features: FeatureEngine) -> None:
    """Applies the venue reports to the probes; a finished probe teaches the feature engine
    its venue's fill rate, and acknowledgements its latency."""
    if len(reports) == 0:
        return
    for kind, client, price, quantity, leaves, fee, ts_recv in zip(
            reports["kind"].tolist(), reports["client_order_id"].tolist(),
            reports["price_ticks"].tolist(), reports["quantity"].tolist(),
            reports["leaves_quantity"].tolist(), reports["fee_usd"].tolist(),
            reports["ts_recv"].tolist()):
        probe = probes.get(client)
        if probe is None or probe.done:
            continue
        if kind == _ACK:
            features.on_latency_sample(probe.venue_id, ts_recv - probe.ts_ns)
            continue
        if kind == _FILL:
            probe.filled += quantity
            probe.notional_ticks += price * quantity
            probe.fee_usd += fee
            if leaves == 0:
                probe.done = True
        elif kind in _DONE:
            probe.done = True
            probe.rejected = kind == _DONE[1] and probe.filled == 0
        if probe.done:
            probe.fill_end_ns = ts_recv
            features.on_child_done(probe.venue_id, _BUY if probe.side > 0 else _SELL,
                                   probe.order_type,
                                   probe.quantity, probe.filled)


def _columns(probes: list[_Probe], scenario: str, seed: int, adv: float,
             names: dict[int, str], tick_usd: float) -> dict[str, np.ndarray]:
    probes = sorted(probes, key=lambda p: p.index)
    n = len(probes)
    rows = np.stack([p.row for p in probes]) if n else np.zeros((0, FEATURE_SCHEMA.size),
                                                               dtype=np.float32)
    columns: dict[str, np.ndarray] = {name: rows[:, k].astype(np.float32)
                                      for k, name in enumerate(FEATURE_SCHEMA.names)}
    side = np.array([p.side for p in probes], dtype=np.int8)
    mid = np.array([p.mid_ticks for p in probes], dtype=np.float64)
    after = np.array([p.mid_after for p in probes], dtype=np.float64)
    filled = np.array([p.filled for p in probes], dtype=np.int64)
    quantity = np.array([p.quantity for p in probes], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_price = np.array([p.notional_ticks for p in probes]) / filled
        fee_usd = np.array([p.fee_usd for p in probes])
        move = side * (after - mid) / mid * 1e4
        take = np.array([p.order_type == _TYPE_TAKE for p in probes])
        fee_bps = fee_usd / (filled * mid * tick_usd) * 1e4
        cost = side * (avg_price - mid) / mid * 1e4 + fee_bps
    columns.update({
        "scenario": np.array([scenario] * n, dtype=object),
        "seed": np.full(n, seed, dtype=np.int64),
        "probe": np.arange(n, dtype=np.int64),
        "ts_ns": np.array([p.ts_ns for p in probes], dtype=np.int64),
        "venue_id": np.array([p.venue_id for p in probes], dtype=np.int16),
        "venue": np.array([names[p.venue_id] for p in probes], dtype=object),
        "side": side,
        "order_type": np.array([p.order_type for p in probes], dtype=np.int8),
        "child_quantity": quantity,
        "price_ticks": np.array([p.price_ticks for p in probes], dtype=np.int64),
        "mid_ticks": mid,
        "adv_shares": np.full(n, adv),
        "filled": filled >= quantity,
        "fill_fraction": filled / np.maximum(quantity, 1),
        "filled_quantity": filled,
        "adverse_move_bps": move,
        "impact_bps": np.where(take & (filled > 0), move, np.nan),
        "cost_bps": np.where(filled > 0, cost, np.nan),
        "rejected": np.array([p.rejected for p in probes]),
    })
    return columns


# --- Parquet -------------------------------------------------------------------------------

def day_path(root: str | Path, scenario: str, seed: int) -> Path:
    """Returns where the probe day of (scenario, seed) is stored under ``root``
    (hive-style partitions, so DuckDB and pyarrow read the folder as one dataset)."""
    return Path(root) / f"scenario={scenario}" / f"seed={seed}" / "probes.parquet"


def write_day(columns: dict[str, np.ndarray], path: str | Path, *,
              spec: ProbeSpec, adv_shares: float, settings: FeatureSettings) -> Path:
    """Writes one probe day as Parquet with the feature schema and probe spec in the file
    metadata; returns the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(v) for k, v in columns.items()
                      if k not in ("scenario", "seed")})
    metadata = {
        b"sor.feature_schema_hash": FEATURE_SCHEMA.version_hash.encode(),
        b"sor.feature_names": json.dumps(list(FEATURE_SCHEMA.names)).encode(),
        b"sor.probe_spec": json.dumps(asdict(spec)).encode(),
        b"sor.adv_shares": repr(float(adv_shares)).encode(),
        b"sor.feature_settings": json.dumps(settings_to_json(settings), sort_keys=True).encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def read_dataset(paths: Iterable[str | Path], *, expected_schema_hash: str | None = None
                 ) -> dict[str, np.ndarray]:
    """Reads probe days into one set of columns (``scenario`` and ``seed`` from the
    partition folders). A file written under another feature schema is refused, naming it."""
    import pyarrow.parquet as pq

    expected = expected_schema_hash or FEATURE_SCHEMA.version_hash
    parts: list[dict[str, np.ndarray]] = []
    for path in paths:
        path = Path(path)
        table = pq.read_table(path)
        found = (table.schema.metadata or {}).get(b"sor.feature_schema_hash", b"").decode()
        if found != expected:
            raise UsageError(f"{path} was built with feature schema {found or 'unknown'}, "
                             f"this code uses {expected}; rebuild the dataset")
        columns = {name: table.column(name).to_numpy(zero_copy_only=False)
                   for name in table.column_names}
        n = table.num_rows
        columns["scenario"] = np.array([path.parent.parent.name.split("=", 1)[1]] * n,
                                       dtype=object)
        columns["seed"] = np.full(n, int(path.parent.name.split("=", 1)[1]), dtype=np.int64)
        parts.append(columns)
    if not parts:
        raise UsageError("no dataset files to read")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass(frozen=True)
class DatasetSpec:
    """Which simulated days a dataset holds, split by seed."""

    scenarios: tuple[str, ...] = ("default", "calm", "volatile", "toxic_venue", "dark_rich")
    train_seeds: tuple[int, ...] = (101, 102, 103)
    validation_seeds: tuple[int, ...] = (104,)
    test_seeds: tuple[int, ...] = (105,)
    probe: ProbeSpec = field(default_factory=ProbeSpec)

    def days(self) -> list[tuple[str, int, str]]:
        """Returns (scenario, seed, split) for every day, in a fixed order."""
        splits = (("train", self.train_seeds), ("validation", self.validation_seeds),
                  ("test", self.test_seeds))
        seen: set[int] = set()
        for name, seeds in splits:
            overlap = seen & set(seeds)
            if overlap:
                raise UsageError(f"seeds {sorted(overlap)} are in more than one split")
            seen |= set(seeds)
        return [(scenario, seed, name) for name, seeds in splits for seed in seeds
                for scenario in self.scenarios]


def _build_one(args: tuple[str, int, ProbeSpec, float, str, dict[str, Any]]) -> str:
    scenario, seed, spec, adv, root, settings_json = args
    settings = settings_from_json(settings_json)
    columns = probe_day(scenario, seed, spec, adv_shares=adv, settings=settings)
    return str(write_day(columns, day_path(root, scenario, seed), spec=spec, adv_shares=adv,
                         settings=settings))


@dataclass(frozen=True)
class BuiltDataset:
    """The files of a dataset by split, and the feature settings its rows were computed with."""

    paths: dict[str, list[Path]]
    settings: FeatureSettings
    adv_shares: dict[str, float]


def build_dataset(spec: DatasetSpec, root: str | Path, *, workers: int = 2,
                  on_day: Callable[[str, int, str], None] | None = None,
                  reuse: bool = True) -> BuiltDataset:
    """Calibrates each scenario (ADV, GARCH fit), then simulates every day of ``spec``
    (``workers`` processes) into Parquet under ``root``. With ``reuse``, a day already on disk
    with the same probe spec, feature schema and settings is kept. ``on_day(scenario, seed,
    split)`` follows progress."""
    import pyarrow.parquet as pq

    root = Path(root)
    days = spec.days()
    calibrations = [calibrate(scenario) for scenario in spec.scenarios]
    settings = fit_feature_settings(calibrations)
    settings_json = settings_to_json(settings)
    adv = {c.scenario: c.adv_shares for c in calibrations}
    wanted = {b"sor.feature_schema_hash": FEATURE_SCHEMA.version_hash,
              b"sor.probe_spec": json.dumps(asdict(spec.probe)),
              b"sor.feature_settings": json.dumps(settings_json, sort_keys=True)}
    todo = []
    for scenario, seed, split in days:
        path = day_path(root, scenario, seed)
        if reuse and path.exists():
            meta = pq.read_schema(path).metadata or {}
            if all(meta.get(k, b"").decode() == v for k, v in wanted.items()):
                if on_day:
                    on_day(scenario, seed, split)
                continue
        todo.append((scenario, seed, split))
    args = [(scenario, seed, spec.probe, adv[scenario], str(root), settings_json)
            for scenario, seed, _ in todo]
    if workers > 1 and len(args) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(args))) as pool:
            for (scenario, seed, split), _ in zip(todo, pool.imap(_build_one, args)):
                if on_day:
                    on_day(scenario, seed, split)
    else:
        for (scenario, seed, split), a in zip(todo, args):
            _build_one(a)
            if on_day:
                on_day(scenario, seed, split)
    paths: dict[str, list[Path]] = {"train": [], "validation": [], "test": []}
    for scenario, seed, split in days:
        paths[split].append(day_path(root, scenario, seed))
    return BuiltDataset(paths, settings, adv)
