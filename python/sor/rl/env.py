"""``ExecutionEnv``: a Gymnasium environment in which one episode is one parent order worked in
the multi-venue market simulator (``sor.sim.Market``).

Episode: a parent order (side, quantity, horizon) arrives after a warm-up of the simulated
market; the arrival mid is the NBBO mid then. Every ``step_interval_s`` the agent either waits
or sends one child order (venue, style, size), the simulator runs to the next decision, fills
and fees come back, and passive children older than ``passive_order_lifetime_steps`` are
cancelled. At the horizon the remainder is swept with marketable orders
(``finish_at_horizon=True``) or charged at the final mid plus a penalty. The reward of a step is
minus the implementation shortfall of that step's fills (price vs the arrival mid, fees
included) in bps of the parent's arrival notional, so an episode's rewards sum to minus its
total shortfall. docs/rl-env.md describes the observation, the action encoding and each rule.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Mapping

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from sor import _core
from sor.errors import ConfigError, UsageError
from sor.rl.observation import ObservationSchema, execution_observation_schema
from sor.sim.market import Market
from sor.sim.scenario import Scenario, load_scenario

_NS_PER_S = 1_000_000_000
_BUY = int(_core.Side.BUY)
_SELL = int(_core.Side.SELL)
_KIND_FILL = int(_core.SimReportKind.FILL)
_KIND_CANCELLED = int(_core.SimReportKind.CANCELLED)
_KIND_REJECTED = int(_core.SimReportKind.REJECTED)
_REJECT_UNKNOWN_ORDER = int(_core.SimRejectReason.UNKNOWN_ORDER)
_TYPE_IOC = int(_core.SimOrderType.IOC)
_TYPE_POST_ONLY = int(_core.SimOrderType.POST_ONLY)
_TYPE_MIDPOINT_PEG = int(_core.SimOrderType.MIDPOINT_PEG)
_DARK = _core.SimVenueKind.DARK

WAIT = 0
"""The action that sends nothing this step."""

FILL_DTYPE = np.dtype([
    ("step", "<i8"),            # Decision step during which the fill was received.
    ("ts_recv", "<i8"),         # When the report reached us, epoch ns.
    ("venue_id", "u1"),
    ("liquidity", "u1"),        # SimLiquidity: added, removed or midpoint.
    ("swept", "?"),             # True for fills of the horizon sweep.
    ("price_ticks", "<i8"),
    ("quantity", "<i8"),
    ("fee_usd", "<f8"),
])


class OrderStyle(IntEnum):
    """How a child order is priced (the second component of an order action)."""

    TAKE = 0  # Immediate: IOC at the NBBO far price (lit), IOC crossing at the mid (dark).
    POST = 1  # Passive at the NBBO near price, post-only (lit only; masked in a dark pool).
    MID = 2   # Passive at the midpoint: midpoint peg (lit) or resting midpoint order (dark).


@dataclass(frozen=True)
class ExecutionEnvConfig:
    """What episodes look like and how the environment works. Ranges are drawn uniformly per
    episode (quantities in whole lots); ``reset(options=...)`` can fix any of them."""

    scenario: str = "default"
    parent_quantity_range_shares: tuple[int, int] = (2_000, 20_000)
    horizon_range_s: tuple[float, float] = (60.0, 300.0)
    buy_probability: float = 0.5
    step_interval_s: float = 5.0
    warm_up_range_s: tuple[float, float] = (30.0, 90.0)
    size_fractions: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 1.00)
    passive_order_lifetime_steps: int = 3
    cancel_lead_s: float = 0.01
    finish_at_horizon: bool = True
    unfilled_penalty_bps: float = 50.0
    depth_levels: int = 3
    volatility_window_s: float = 60.0
    volatility_sample_interval_s: float = 1.0
    fill_rate_weight: float = 0.25
    lot_shares: int = 100
    max_sweep_rounds: int = 500
    # False masks midpoint pegs on lit venues (the dark pool's midpoint orders stay allowed).
    allow_lit_midpoint_peg: bool = True
    market_overrides: tuple[tuple[str, Any], ...] = (("quote_sample_interval_ns", 0),
                                                     ("record_trades", False))
    seed: int | None = None

    def __post_init__(self) -> None:
        def fail(key: str, reason: str) -> None:
            raise ConfigError(reason, source="ExecutionEnvConfig", key=key)

        low_q, high_q = self.parent_quantity_range_shares
        if not 0 < low_q <= high_q or low_q < self.lot_shares:
            fail("parent_quantity_range_shares", "needs lot_shares <= low <= high")
        if not 0 < self.horizon_range_s[0] <= self.horizon_range_s[1]:
            fail("horizon_range_s", "needs 0 < low <= high")
        if not 0.0 <= self.buy_probability <= 1.0:
            fail("buy_probability", "must be in [0, 1]")
        if not self.step_interval_s > 2 * self.cancel_lead_s > 0:
            fail("step_interval_s", "must be positive and more than twice cancel_lead_s")
        if not 0.0 <= self.warm_up_range_s[0] <= self.warm_up_range_s[1]:
            fail("warm_up_range_s", "needs 0 <= low <= high")
        if not self.size_fractions or any(not 0 < f <= 1 for f in self.size_fractions):
            fail("size_fractions", "must be fractions in (0, 1]")
        if self.passive_order_lifetime_steps < 1:
            fail("passive_order_lifetime_steps", "must be at least 1")
        if self.unfilled_penalty_bps < 0:
            fail("unfilled_penalty_bps", "must be >= 0")
        if self.depth_levels < 1:
            fail("depth_levels", "must be at least 1")
        if not 0 < self.volatility_sample_interval_s <= self.volatility_window_s:
            fail("volatility_sample_interval_s", "needs 0 < interval <= volatility_window_s")
        if not 0 < self.fill_rate_weight <= 1:
            fail("fill_rate_weight", "must be in (0, 1]")
        if self.lot_shares < 1 or self.max_sweep_rounds < 1:
            fail("lot_shares", "lot_shares and max_sweep_rounds must be positive")


@dataclass(frozen=True)
class DecodedAction:
    """An action index decoded: WAIT (venue_index -1) or (venue, style, size bucket)."""

    venue_index: int
    style: OrderStyle | None
    size_bucket: int

    @property
    def is_wait(self) -> bool:
        """Returns True for the WAIT action."""
        return self.venue_index < 0


@dataclass(frozen=True)
class ChildOrder:
    """The order an action becomes at a given market state."""

    venue_id: int
    side: int
    order_type: int
    price_ticks: int
    quantity: int


@dataclass(frozen=True)
class Episode:
    """The parent order of one episode."""

    side: int               # +1 buy, -1 sell.
    parent_quantity: int    # Shares.
    horizon_steps: int      # Decision steps before the horizon.
    warm_up_s: float        # Seconds from the open to the arrival.
    market_seed: int        # Seed of the episode's simulated market.


@dataclass
class _Child:
    venue_index: int
    style: OrderStyle
    quantity: int
    submit_step: int
    leaves: int
    filled: int = 0
    cancel_sent: bool = False
    swept: bool = False


@dataclass
class _Venue:
    venue_id: int
    name: str
    dark: bool
    tick_size_ticks: int
    taker_fee_usd: float
    maker_fee_usd: float
    midpoint_fee_usd: float
    latency_ms: float
    min_quantity: int
    fill_rate: float = 0.5
    far_touch: int = 0
    near_touch: int = 0


class ExecutionEnv(gymnasium.Env[np.ndarray, np.int64]):
    """One parent order per episode in the simulated multi-venue market.

    ``ExecutionEnv(config)`` or ``ExecutionEnv(horizon_range_s=(60, 60), ...)`` (keywords
    replace fields of the default ``ExecutionEnvConfig``). Observations follow
    ``self.schema``; actions are ``Discrete(1 + venues * 3 * len(size_fractions))`` with 0 =
    WAIT (see ``decode_action``); ``info["action_mask"]`` (and ``action_masks()``) marks the
    actions the venues would accept now."""

    metadata = {"render_modes": []}

    def __init__(self, config: ExecutionEnvConfig | None = None, **config_overrides: Any) -> None:
        base = config if config is not None else ExecutionEnvConfig()
        if config_overrides:
            base = ExecutionEnvConfig(**{**base.__dict__, **config_overrides})
        self.config = base
        self.scenario: Scenario = load_scenario(base.scenario)
        self._overrides = dict(base.market_overrides)
        spec = self.scenario.market_spec(**self._overrides)
        self._price_tick_usd = float(spec.price_tick_usd)
        longest_s = base.warm_up_range_s[1] + base.horizon_range_s[1] + base.step_interval_s + 60.0
        if longest_s * _NS_PER_S > spec.session_length_ns:
            raise ConfigError(f"warm-up plus horizon (with a minute for the sweep) is "
                              f"{longest_s} s, longer than the session "
                              f"({spec.session_length_ns / _NS_PER_S} s)",
                              source="ExecutionEnvConfig", key="horizon_range_s")
        self._venues = [
            _Venue(venue_id=int(v.venue_id), name=str(v.name), dark=v.kind == _DARK,
                   tick_size_ticks=int(v.tick_size_ticks),
                   taker_fee_usd=float(v.taker_fee_usd_per_share),
                   maker_fee_usd=float(v.maker_fee_usd_per_share),
                   midpoint_fee_usd=float(v.midpoint_fee_usd_per_share),
                   latency_ms=(v.latency.order_entry_ns + v.latency.ack_ns) / 1e6,
                   min_quantity=int(v.min_quantity))
            for v in sorted(spec.venues, key=lambda v: int(v.venue_id))]
        self._index_by_venue_id = {v.venue_id: i for i, v in enumerate(self._venues)}
        self._lit = [i for i, v in enumerate(self._venues) if not v.dark]
        self._grid_ticks = min(self._venues[i].tick_size_ticks for i in self._lit)
        self.schema: ObservationSchema = execution_observation_schema(
            [v.name for v in self._venues], base.depth_levels)
        self._scale = self.schema.scale
        self._low = self.schema.low.astype(np.float64)
        self._high = self.schema.high.astype(np.float64)
        self.observation_space = spaces.Box(self.schema.low, self.schema.high, dtype=np.float32)
        self._styles = len(OrderStyle)
        self._sizes = len(base.size_fractions)
        self.action_space = spaces.Discrete(1 + len(self._venues) * self._styles * self._sizes)
        self._step_ns = int(round(base.step_interval_s * _NS_PER_S))
        self._cancel_lead_ns = int(round(base.cancel_lead_s * _NS_PER_S))
        self._sample_ns = int(round(base.volatility_sample_interval_s * _NS_PER_S))
        self._returns: deque[float] = deque(
            maxlen=max(1, int(round(base.volatility_window_s / base.volatility_sample_interval_s))))
        if base.seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(base.seed)
        self._market: Market | None = None
        self.episode: Episode | None = None
        self._done = True
        self._mask = np.zeros(self.action_space.n, dtype=np.int8)

    # --- actions ----------------------------------------------------------------------------

    @property
    def venue_names(self) -> tuple[str, ...]:
        """Returns the venue names in action/observation order (venue-id order)."""
        return tuple(v.name for v in self._venues)

    def encode_action(self, venue_index: int, style: OrderStyle, size_bucket: int) -> int:
        """Returns the action index of (venue, style, size bucket)."""
        if not (0 <= venue_index < len(self._venues) and 0 <= size_bucket < self._sizes):
            raise UsageError(f"venue_index {venue_index} or size_bucket {size_bucket} out of range")
        return 1 + (venue_index * self._styles + int(style)) * self._sizes + size_bucket

    def decode_action(self, action: int) -> DecodedAction:
        """Returns what action index ``action`` means (WAIT or venue, style, size bucket)."""
        action = int(action)
        if not 0 <= action < self.action_space.n:
            raise UsageError(f"action {action} outside 0..{self.action_space.n - 1}")
        if action == WAIT:
            return DecodedAction(-1, None, -1)
        venue_style, size_bucket = divmod(action - 1, self._sizes)
        venue_index, style = divmod(venue_style, self._styles)
        return DecodedAction(venue_index, OrderStyle(style), size_bucket)

    def action_masks(self) -> np.ndarray:
        """Returns the mask of valid actions now (1 = valid), as in ``info["action_mask"]``."""
        return self._mask.copy()

    def child_order(self, action: int) -> ChildOrder | None:
        """Returns the order ``action`` would send now, or None for WAIT or a masked action."""
        decoded = self.decode_action(action)
        if decoded.is_wait or not self._mask[int(action)]:
            return None
        return self._child_for(decoded)

    # --- gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode: draws the parent order (``options`` may fix ``side`` ("buy" or
        "sell"), ``parent_quantity``, ``horizon_s``, ``warm_up_s``, ``market_seed``), builds a
        fresh market seeded from the env's RNG, runs the warm-up and takes the arrival mid."""
        super().reset(seed=seed)
        self.episode = self._draw_episode(dict(options or {}))
        if self._market is not None:
            self._market.close()
        self._market = Market(self.scenario, seed=self.episode.market_seed, **self._overrides)
        self._orders: dict[int, _Child] = {}
        self._fills: list[tuple[Any, ...]] = []
        self._filled = 0
        self._open_quantity = 0
        self._fees_usd = 0.0
        self._cost_usd = 0.0
        self._step_cost_usd = 0.0
        self._step_fees_usd = 0.0
        self._step_filled = 0
        self._swept = 0
        self._step_index = 0
        self._returns.clear()
        for venue in self._venues:
            venue.fill_rate = 0.5
        start = self._market.session_start_ns
        arrival = start + int(round(self.episode.warm_up_s * _NS_PER_S))
        self._last_mid2 = 0
        self._sample_mid()
        self._run_sampling(arrival)
        for _ in range(10_000):  # A one-sided book at arrival is rare: wait for two sides.
            if self._last_mid2 > 0 and self._two_sided():
                break
            self._market.run_for(0.01)
            self._sample_mid()
        else:
            raise UsageError("the simulated market had no two-sided NBBO for 100 s after warm-up")
        self._market.reports()
        self._decision_ns = self._market.now_ns
        self.arrival_mid2_ticks = self._last_mid2
        self._notional_usd = (self.episode.parent_quantity * self.arrival_mid2_ticks / 2
                              * self._price_tick_usd)
        self._done = False
        observation = self._observe()
        return observation, self._info(invalid=False, child=None, client_id=0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Sends the child order of ``action`` (a masked action is treated as WAIT and flagged
        ``info["invalid_action"]``), runs the market to the next decision, cancels stale
        passive children, and at the horizon finishes the parent; returns the observation,
        minus this step's shortfall in bps, terminated, truncated (always False), info."""
        if self._done or self._market is None:
            raise UsageError("step() called before reset() or after the episode ended")
        action = int(action)
        invalid = not (0 <= action < self.action_space.n) or not self._mask[action]
        self._step_cost_usd = 0.0
        self._step_fees_usd = 0.0
        self._step_filled = 0
        child = None
        client_id = 0
        if action != WAIT and not invalid:
            child = self._child_for(self.decode_action(action))
            client_id = self._send(child, self.decode_action(action).style, swept=False)
        end = self._decision_ns + self._step_ns
        self._run_sampling(end - self._cancel_lead_ns)
        self._process_reports()
        self._cancel_stale(self._step_index + 1)
        self._run_sampling(end)
        self._process_reports()
        self._decision_ns = end
        self._step_index += 1
        remaining = self.episode.parent_quantity - self._filled
        if remaining > 0 and self._step_index >= self.episode.horizon_steps:
            self._finish()
            remaining = self.episode.parent_quantity - self._filled
        terminated = remaining == 0 or self._step_index >= self.episode.horizon_steps
        self._done = terminated
        reward = 0.0 - self._step_cost_usd / self._notional_usd * 1e4
        observation = self._observe()
        return observation, reward, terminated, False, self._info(invalid, child, client_id)

    def close(self) -> None:
        """Frees the simulated market."""
        if self._market is not None:
            self._market.close()
            self._market = None

    # --- results ----------------------------------------------------------------------------

    @property
    def market(self) -> Market:
        """The episode's simulated market (for inspection; stepping it desynchronises the env)."""
        if self._market is None:
            raise UsageError("no market before reset()")
        return self._market

    def fills(self) -> np.ndarray:
        """Returns every fill of the episode so far (``FILL_DTYPE``), in the order received."""
        return np.array(self._fills, dtype=FILL_DTYPE)

    def shortfall_bps(self) -> float:
        """Returns the episode's implementation shortfall so far in bps of arrival notional
        (fills vs the arrival mid plus fees; plus the unfilled charge when not finishing)."""
        return self._cost_usd / self._notional_usd * 1e4

    # --- episode ----------------------------------------------------------------------------

    def _draw_episode(self, options: dict[str, Any]) -> Episode:
        c = self.config
        rng = self.np_random
        lot = c.lot_shares
        side = 1 if rng.random() < c.buy_probability else -1
        lots = rng.integers(-(-c.parent_quantity_range_shares[0] // lot),
                            c.parent_quantity_range_shares[1] // lot + 1)
        horizon_s = rng.uniform(*c.horizon_range_s)
        warm_up_s = rng.uniform(*c.warm_up_range_s)
        market_seed = int(rng.integers(1, 2**63 - 1))
        parent_quantity = int(lots) * lot
        unknown = set(options) - {"side", "parent_quantity", "horizon_s", "warm_up_s",
                                  "market_seed"}
        if unknown:
            raise UsageError(f"unknown reset option(s) {sorted(unknown)}")
        if "side" in options:
            if options["side"] not in ("buy", "sell"):
                raise UsageError(f"side must be 'buy' or 'sell', got {options['side']!r}")
            side = 1 if options["side"] == "buy" else -1
        parent_quantity = int(options.get("parent_quantity", parent_quantity))
        horizon_s = float(options.get("horizon_s", horizon_s))
        warm_up_s = float(options.get("warm_up_s", warm_up_s))
        market_seed = int(options.get("market_seed", market_seed))
        if parent_quantity <= 0 or horizon_s <= 0 or warm_up_s < 0:
            raise UsageError("parent_quantity and horizon_s must be positive, warm_up_s >= 0")
        horizon_steps = max(1, int(round(horizon_s / c.step_interval_s)))
        return Episode(side, parent_quantity, horizon_steps, warm_up_s, market_seed)

    # --- the market -------------------------------------------------------------------------

    def _two_sided(self) -> bool:
        nbbo = self._market.core.nbbo(0)[0]
        return 0 < nbbo[0] < nbbo[2]

    def _sample_mid(self) -> None:
        nbbo = self._market.core.nbbo(0)[0]
        bid, ask = int(nbbo[0]), int(nbbo[2])
        if 0 < bid < ask:
            mid2 = bid + ask
            if self._last_mid2 > 0:
                move_bps = (mid2 - self._last_mid2) / self._last_mid2 * 1e4
                self._returns.append(move_bps * move_bps)
            self._last_mid2 = mid2

    def _run_sampling(self, until_ns: int) -> None:
        """Runs the market to ``until_ns``, sampling the mid every volatility interval."""
        market = self._market
        now = market.now_ns
        while now < until_ns:
            now = min(now + self._sample_ns, until_ns)
            market.run_until(now)
            self._sample_mid()

    def _child_for(self, decoded: DecodedAction) -> ChildOrder:
        venue = self._venues[decoded.venue_index]
        side = self.episode.side
        free = self.episode.parent_quantity - self._filled - self._open_quantity
        quantity = self._size(self.config.size_fractions[decoded.size_bucket], free)
        nbbo = self._market.core.nbbo(0)[0]
        bid, ask = int(nbbo[0]), int(nbbo[2])
        far, near = (ask, bid) if side > 0 else (bid, ask)
        tick = venue.tick_size_ticks
        if decoded.style is OrderStyle.TAKE:
            # A buy limit rounds up to the venue's grid (still marketable), a sell down.
            if venue.dark:
                price = far
            else:
                price = -(-far // tick) * tick if side > 0 else far // tick * tick
            return ChildOrder(venue.venue_id, side, _TYPE_IOC, price, quantity)
        if decoded.style is OrderStyle.POST:
            price = near // tick * tick if side > 0 else -(-near // tick) * tick
            return ChildOrder(venue.venue_id, side, _TYPE_POST_ONLY, price, quantity)
        return ChildOrder(venue.venue_id, side, _TYPE_MIDPOINT_PEG, 0, quantity)

    def _size(self, fraction: float, free: int) -> int:
        lot = self.config.lot_shares
        quantity = int(round(fraction * free / lot)) * lot
        return min(free, max(quantity, lot))

    def _send(self, child: ChildOrder, style: OrderStyle, *, swept: bool) -> int:
        client_id = self._market.submit(child.venue_id, _BUY if child.side > 0 else _SELL,
                                        child.quantity, price_ticks=child.price_ticks,
                                        order_type=child.order_type)
        self._orders[client_id] = _Child(self._index_by_venue_id[child.venue_id], style,
                                         child.quantity, self._step_index, child.quantity,
                                         swept=swept)
        self._open_quantity += child.quantity
        return client_id

    def _process_reports(self) -> None:
        reports = self._market.reports()
        if len(reports) == 0:
            return
        side = self.episode.side
        arrival_mid2 = self.arrival_mid2_ticks
        for kind, client_id, price, quantity, leaves, fee, venue_id, detail, ts_recv in zip(
                reports["kind"].tolist(), reports["client_order_id"].tolist(),
                reports["price_ticks"].tolist(), reports["quantity"].tolist(),
                reports["leaves_quantity"].tolist(), reports["fee_usd"].tolist(),
                reports["venue_id"].tolist(), reports["detail"].tolist(),
                reports["ts_recv"].tolist()):
            child = self._orders.get(client_id)
            if child is None or (kind == _KIND_REJECTED and detail == _REJECT_UNKNOWN_ORDER):
                continue  # A late cancel's reject, or a report of an order already finished.
            if kind == _KIND_FILL:
                child.filled += quantity
                self._filled += quantity
                self._step_filled += quantity
                self._open_quantity -= quantity
                child.leaves -= quantity
                cost = (side * quantity * (2 * price - arrival_mid2) / 2 * self._price_tick_usd
                        + fee)
                self._step_cost_usd += cost
                self._cost_usd += cost
                self._step_fees_usd += fee
                self._fees_usd += fee
                if child.swept:
                    self._swept += quantity
                self._fills.append((self._step_index, ts_recv, venue_id, detail, child.swept,
                                    price, quantity, fee))
                if leaves == 0:
                    self._finish_child(client_id, child)
            elif kind in (_KIND_CANCELLED, _KIND_REJECTED):
                self._finish_child(client_id, child)

    def _finish_child(self, client_id: int, child: _Child) -> None:
        self._open_quantity -= child.leaves
        child.leaves = 0
        del self._orders[client_id]
        if not child.swept:
            venue = self._venues[child.venue_index]
            weight = self.config.fill_rate_weight
            venue.fill_rate += weight * (child.filled / child.quantity - venue.fill_rate)

    def _cancel_stale(self, next_step: int) -> None:
        lifetime = self.config.passive_order_lifetime_steps
        for client_id, child in self._orders.items():
            if (child.style is not OrderStyle.TAKE and not child.cancel_sent
                    and next_step - child.submit_step >= lifetime):
                self._market.cancel(client_id)
                child.cancel_sent = True

    def _settle(self, max_s: float = 2.0) -> None:
        """Advances in 1 ms steps until every child order has finished (or ``max_s``)."""
        for _ in range(int(max_s * 1000)):
            if not self._orders:
                return
            self._market.run_for(0.001)
            self._process_reports()

    def _finish(self) -> None:
        """At the horizon: cancels every open child, then sweeps the remainder or charges it."""
        for client_id, child in self._orders.items():
            if not child.cancel_sent:
                self._market.cancel(client_id)
                child.cancel_sent = True
        self._settle()
        if self.config.finish_at_horizon:
            self._sweep()
        remaining = self.episode.parent_quantity - self._filled - self._open_quantity
        if remaining > 0:
            self._sample_mid()
            move_ticks = (self._last_mid2 - self.arrival_mid2_ticks) / 2
            opportunity = self.episode.side * remaining * move_ticks * self._price_tick_usd
            penalty = (self.config.unfilled_penalty_bps * 1e-4 * remaining
                       * self.arrival_mid2_ticks / 2 * self._price_tick_usd)
            self._step_cost_usd += opportunity + penalty
            self._cost_usd += opportunity + penalty

    def _sweep(self) -> None:
        """Takes the remainder from the lit books, best consolidated prices first: each round
        sends one IOC per venue up to the worst price allocated there, then waits for the
        reports; a round with empty books waits 100 ms for the flow to refill them."""
        side = self.episode.side
        book_side = _core.Side.SELL if side > 0 else _core.Side.BUY
        for _ in range(self.config.max_sweep_rounds):
            remaining = self.episode.parent_quantity - self._filled - self._open_quantity
            if remaining <= 0:
                return
            offers = []
            for index in self._lit:
                venue = self._venues[index]
                levels = self._market.core.levels(venue.venue_id, 0, book_side, 10)
                for price, quantity in zip(levels["price_ticks"].tolist(),
                                           levels["quantity"].tolist()):
                    offers.append((price * side, venue.taker_fee_usd, index, price, quantity))
            if not offers:
                self._market.run_for(0.1)
                continue
            offers.sort()
            plan: dict[int, list[int]] = {}
            for _, _, index, price, quantity in offers:
                if remaining <= 0:
                    break
                take = min(quantity, remaining)
                remaining -= take
                entry = plan.setdefault(index, [0, price])
                entry[0] += take
                entry[1] = price
            for index, (quantity, price) in plan.items():
                child = ChildOrder(self._venues[index].venue_id, side, _TYPE_IOC, price, quantity)
                self._send(child, OrderStyle.TAKE, swept=True)
            self._settle()

    # --- observation ------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        episode = self.episode
        side = episode.side
        parent = episode.parent_quantity
        nbbo = self._market.core.nbbo(0)[0]
        bid, bid_q, ask, ask_q = int(nbbo[0]), int(nbbo[1]), int(nbbo[2]), int(nbbo[3])
        two_sided = 0 < bid < ask
        grid = self._grid_ticks
        depth_levels = self.config.depth_levels
        far_depth = [0] * depth_levels
        near_depth = [0] * depth_levels
        far_price, near_price = (ask, bid) if side > 0 else (bid, ask)
        far_side, near_side = ((_core.Side.SELL, _core.Side.BUY) if side > 0
                               else (_core.Side.BUY, _core.Side.SELL))
        core = self._market.core
        for venue in self._venues:
            venue.far_touch = 0
            venue.near_touch = 0
        for index in self._lit:
            venue = self._venues[index]
            sides = ((far_side, far_price, far_depth, True),
                     (near_side, near_price, near_depth, False))
            for book_side, touch_price, depth, is_far in sides:
                if touch_price <= 0:
                    continue
                levels = core.levels(venue.venue_id, 0, book_side, depth_levels)
                # Far levels get worse away from the touch in our side's direction, near ones
                # in the other: ask levels rise for a buy, bid levels fall.
                direction = side if is_far else -side
                for price, quantity in zip(levels["price_ticks"].tolist(),
                                           levels["quantity"].tolist()):
                    distance, off_grid = divmod((price - touch_price) * direction, grid)
                    if off_grid == 0 and 0 <= distance < depth_levels:
                        depth[distance] += quantity
                        if distance == 0:
                            if is_far:
                                venue.far_touch = quantity
                            else:
                                venue.near_touch = quantity
        if two_sided:
            spread = (ask - bid) / grid
            far_q, near_q = (ask_q, bid_q) if side > 0 else (bid_q, ask_q)
            imbalance = (near_q - far_q) / (near_q + far_q) if near_q + far_q > 0 else 0.0
        else:
            spread, imbalance = 20.0, 0.0
        steps = episode.horizon_steps
        filled_fraction = self._filled / parent
        returns = self._returns
        window_s = len(returns) * self.config.volatility_sample_interval_s
        volatility = math.sqrt(sum(returns) / window_s) if returns else 0.0
        arrival_mid2 = self.arrival_mid2_ticks
        raw = [
            float(side),
            math.log10(parent / self.config.lot_shares),
            (steps - min(self._step_index, steps)) / steps,
            1.0 - filled_fraction,
            self._open_quantity / parent,
            filled_fraction - min(self._step_index, steps) / steps,
            self._cost_usd / self._notional_usd * 1e4,
            side * (self._last_mid2 - arrival_mid2) / arrival_mid2 * 1e4,
            spread,
            imbalance,
            volatility,
        ]
        raw.extend(q / parent for q in far_depth)
        raw.extend(q / parent for q in near_depth)
        open_venues = {child.venue_index for child in self._orders.values()}
        mid_usd = arrival_mid2 / 2 * self._price_tick_usd
        for index, venue in enumerate(self._venues):
            take_fee = venue.midpoint_fee_usd if venue.dark else venue.taker_fee_usd
            post_fee = 0.0 if venue.dark else venue.maker_fee_usd
            raw.extend((
                take_fee / mid_usd * 1e4,
                post_fee / mid_usd * 1e4,
                venue.midpoint_fee_usd / mid_usd * 1e4,
                venue.latency_ms,
                1.0 if venue.dark else 0.0,
                venue.fill_rate,
                venue.far_touch / parent,
                venue.near_touch / parent,
                1.0 if index in open_venues else 0.0,
            ))
        self._update_mask(two_sided)
        values = np.clip(np.array(raw, dtype=np.float64) * self._scale, self._low, self._high)
        return values.astype(np.float32)

    def _update_mask(self, two_sided: bool) -> None:
        mask = self._mask
        mask[:] = 0
        mask[WAIT] = 1
        free = self.episode.parent_quantity - self._filled - self._open_quantity
        if self._done or free <= 0 or not two_sided:
            return
        sizes = [self._size(f, free) for f in self.config.size_fractions]
        for index, venue in enumerate(self._venues):
            for style in OrderStyle:
                if venue.dark and style is OrderStyle.POST:
                    continue
                if (not venue.dark and style is OrderStyle.MID
                        and not self.config.allow_lit_midpoint_peg):
                    continue
                for bucket, quantity in enumerate(sizes):
                    if venue.dark and quantity < venue.min_quantity:
                        continue
                    mask[1 + (index * self._styles + style) * self._sizes + bucket] = 1

    def _info(self, invalid: bool, child: ChildOrder | None, client_id: int) -> dict[str, Any]:
        episode = self.episode
        return {
            "action_mask": self._mask.copy(),
            "invalid_action": invalid,
            "step": self._step_index,
            "side": episode.side,
            "parent_quantity": episode.parent_quantity,
            "horizon_steps": episode.horizon_steps,
            "arrival_mid_ticks": self.arrival_mid2_ticks / 2,
            "filled_quantity": self._filled,
            "open_quantity": self._open_quantity,
            "remaining_quantity": episode.parent_quantity - self._filled,
            "step_filled_quantity": self._step_filled,
            "step_fees_usd": self._step_fees_usd,
            "step_cost_usd": self._step_cost_usd,
            "fees_usd": self._fees_usd,
            "swept_quantity": self._swept,
            "shortfall_usd": self._cost_usd,
            "shortfall_bps": self._cost_usd / self._notional_usd * 1e4,
            "order_client_id": client_id,
            "order_venue_id": -1 if child is None else child.venue_id,
            "order_type": -1 if child is None else child.order_type,
            "order_price_ticks": 0 if child is None else child.price_ticks,
            "order_quantity": 0 if child is None else child.quantity,
        }
