"""The configuration types: frozen dataclasses, validated when they are built.

Every field with a unit carries it in its name (``_ns``, ``_ms``, ``_s``, ``_usd``,
``_usd_per_share``, ``_shares``, ``_ticks``, ``_bps``, ``_records``). Prices in sor are int64
price ticks; one price tick is :attr:`RouterConfig.price_tick_usd` (default 0.0001 USD, the ITCH
price unit). A refused value raises :class:`sor.errors.ConfigError` naming the key and the
reason; the loader adds the file and the full key path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from sor._core import BookType, RiskState
from sor.errors import ConfigError

ACCESS_FEE_CAP_USD_PER_SHARE = 0.0030
"""Reg NMS Rule 610(c) cap on the fee for taking a protected quotation priced at $1 or more."""

MAX_FEE_USD_PER_SHARE = 0.01
"""Largest fee or rebate magnitude accepted for any venue (a sanity bound, not a rule)."""

VENUE_ID_LIMIT = 64
"""Venue ids index a 64-bit venue mask, so they lie in 0..63."""

FIX_BEGIN_STRINGS = ("FIX.4.2", "FIX.4.4", "FIXT.1.1")
"""The FIX versions the gateway speaks (BeginString, tag 8)."""

WILDCARD = "*"
"""The routing rule instrument that applies to every instrument without a rule of its own."""

_VENUE_NAME = re.compile(r"[A-Z][A-Z0-9]{0,11}")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.]{0,7}")
_ENGINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,23}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?")
_COMP_ID = re.compile(r"[!-~]{1,64}")   # printable ASCII: a space or an SOH would break the session
_ACCOUNT_NAME = re.compile(r"[!-~]{1,32}")   # FIX Account (1): printable ASCII, no spaces
_UINT32_MAX = 2**32 - 1
_NS_PER_S = 1_000_000_000

MAX_ACCOUNTS = 64
"""Accounts the engine keeps risk state for: 0 (orders without an Account) and 1..63."""

MAX_RISK_INSTRUMENTS = 4096
"""Instrument ids the engine's risk stage covers (restricted list, reference prices)."""

_CORE_ENUMS = (BookType, RiskState)   # pybind11 enums, written by member name


class VenueKind(Enum):
    """Whether a venue displays its book (lit) or not (dark)."""

    LIT = "lit"
    DARK = "dark"


class IdleStrategy(Enum):
    """What the engine thread does when every ring is empty."""

    SPIN = "spin"
    YIELD = "yield"
    SLEEP = "sleep"


class OverflowPolicy(Enum):
    """What a ring producer does when the ring is full."""

    SPIN = "spin"
    REFUSE = "refuse"


class StaleSegmentPolicy(Enum):
    """What the engine does when it finds a shared-memory segment left by a dead process."""

    ERROR = "error"
    TAKEOVER = "takeover"


# --- field checks: each one raises ConfigError naming the field, or normalizes it in place ---

def _refuse(key: str, reason: str) -> ConfigError:
    return ConfigError(reason, key=key)


def _describe(value: Any) -> str:
    if isinstance(value, Enum):
        return repr(value.value)
    if isinstance(value, _CORE_ENUMS):
        return repr(value.name)
    return f"{type(value).__name__} {value!r}"


def _set(instance: Any, name: str, value: Any) -> None:
    object.__setattr__(instance, name, value)


def _check_int(instance: Any, name: str, minimum: int | None = None, maximum: int | None = None,
               unit: str = "") -> int:
    value = getattr(instance, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(name, f"must be an integer, got {_describe(value)}")
    suffix = f" {unit}" if unit else ""
    if minimum is not None and value < minimum:
        raise _refuse(name, f"must be >= {minimum}{suffix}, got {value}")
    if maximum is not None and value > maximum:
        raise _refuse(name, f"must be <= {maximum}{suffix}, got {value}")
    return value


def _check_float(instance: Any, name: str, minimum: float | None = None,
                 maximum: float | None = None, *, unit: str = "", exclusive_minimum: bool = False,
                 ) -> float:
    value = getattr(instance, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(name, f"must be a number, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise _refuse(name, f"must be a finite number, got {value}")
    suffix = f" {unit}" if unit else ""
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise _refuse(name, f"must be > {minimum:g}{suffix}, got {value:g}")
        if value < minimum:
            raise _refuse(name, f"must be >= {minimum:g}{suffix}, got {value:g}")
    if maximum is not None and value > maximum:
        raise _refuse(name, f"must be <= {maximum:g}{suffix}, got {value:g}")
    _set(instance, name, value)
    return value


def _check_bool(instance: Any, name: str) -> bool:
    value = getattr(instance, name)
    if not isinstance(value, bool):
        raise _refuse(name, f"must be true or false, got {_describe(value)}")
    return value


def _check_str(instance: Any, name: str, pattern: re.Pattern[str], rule: str) -> str:
    value = getattr(instance, name)
    if not isinstance(value, str):
        raise _refuse(name, f"must be a string, got {_describe(value)}")
    if not pattern.fullmatch(value):
        raise _refuse(name, f"must be {rule}, got {value!r}")
    return value


def _coerce_enum(key: str, value: Any, enum_type: Any) -> Any:
    if isinstance(value, enum_type):
        return value
    if enum_type in _CORE_ENUMS:
        choices = list(enum_type.__members__)
        if isinstance(value, str) and value in enum_type.__members__:
            return enum_type.__members__[value]
    else:
        choices = [member.value for member in enum_type]
        if isinstance(value, str) and value in choices:
            return enum_type(value)
    raise _refuse(key, f"must be one of {', '.join(map(repr, choices))}, got {_describe(value)}")


def _check_enum(instance: Any, name: str, enum_type: Any) -> Any:
    value = _coerce_enum(name, getattr(instance, name), enum_type)
    _set(instance, name, value)
    return value


def _check_instance(instance: Any, name: str, expected: type) -> Any:
    value = getattr(instance, name)
    if not isinstance(value, expected):
        raise _refuse(name, f"must be a {expected.__name__}, got {_describe(value)}")
    return value


def _check_tuple(instance: Any, name: str, item_type: type) -> tuple[Any, ...]:
    value = getattr(instance, name)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise _refuse(name, f"must be an array, got {_describe(value)}")
    for position, item in enumerate(value):
        if not isinstance(item, item_type):
            raise _refuse(f"{name}[{position}]",
                          f"must be a {_type_word(item_type)}, got {_describe(item)}")
    value = tuple(value)
    _set(instance, name, value)
    return value


def _type_word(item_type: type) -> str:
    return {str: "string"}.get(item_type, item_type.__name__)


def _check_range(instance: Any, name: str) -> tuple[float, float]:
    value = getattr(instance, name)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
        raise _refuse(name, f"must be an array [low, high] of two numbers, got {_describe(value)}")
    bounds = []
    for position, bound in enumerate(value):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise _refuse(f"{name}[{position}]", f"must be a number, got {_describe(bound)}")
        if not math.isfinite(bound):
            raise _refuse(f"{name}[{position}]", f"must be a finite number, got {bound}")
        bounds.append(float(bound))
    if bounds[0] >= bounds[1]:
        raise _refuse(name, f"must have low < high, got [{bounds[0]:g}, {bounds[1]:g}]")
    _set(instance, name, (bounds[0], bounds[1]))
    return bounds[0], bounds[1]


def _check_params(instance: Any, name: str) -> tuple[tuple[str, float], ...]:
    params = getattr(instance, name)
    if isinstance(params, Mapping):
        params = tuple(params.items())
    if isinstance(params, (str, bytes)) or not isinstance(params, (tuple, list)):
        raise _refuse(name, f"must be a table of name = number, got {_describe(params)}")
    normalized = []
    for entry in params:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise _refuse(name, f"must hold (name, number) pairs, got {entry!r}")
        key, value = entry
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(f"{name}.{key}", f"must be a number, got {_describe(value)}")
        normalized.append((str(key), float(value)))
    result = tuple(normalized)
    _set(instance, name, result)
    return result


def _check_policy(instance: Any, name: str, params_name: str) -> None:
    """Refuses an unknown policy or a parameter it does not take, naming the key."""
    from sor import _core
    from sor.errors import PolicyConfigError

    try:
        _core.make_policy(getattr(instance, name), dict(getattr(instance, params_name)))
    except PolicyConfigError as error:
        key = name if "unknown policy" in str(error) else params_name
        raise _refuse(key, str(error)) from None


def _check_trading_day(instance: Any, name: str) -> int:
    value = _check_int(instance, name, 0, 99_991_231)
    if value != 0:
        import datetime

        try:
            datetime.date(value // 10_000, value // 100 % 100, value % 100)
        except ValueError:
            raise _refuse(name, f"must be 0 (today's UTC date at start) or a date as yyyymmdd, "
                                f"got {value}") from None
        if value < 19_700_101:
            raise _refuse(name, f"must be 0 or a date from 19700101 on, got {value}")
    return value


# --- the types ---

class _Replaceable:
    __slots__ = ()

    def replace(self, **changes: Any) -> Any:
        """Returns a copy with these fields changed, validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[misc]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeSchedule(_Replaceable):
    """The per-share fees a venue charges; a negative fee is a rebate paid to us.

    ``maker_fee_usd_per_share`` applies when our order adds liquidity (rests and is hit),
    ``taker_fee_usd_per_share`` when it removes liquidity, ``routing_fee_usd_per_share`` when the
    venue routes our order on to another venue. Inverted venues have a positive maker fee and a
    negative taker fee.
    """

    maker_fee_usd_per_share: float = 0.0
    taker_fee_usd_per_share: float = 0.0030
    routing_fee_usd_per_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("maker_fee_usd_per_share", "taker_fee_usd_per_share",
                     "routing_fee_usd_per_share"):
            value = _check_float(self, name, unit="USD/share")
            if abs(value) > MAX_FEE_USD_PER_SHARE:
                raise _refuse(name, f"must be between -{MAX_FEE_USD_PER_SHARE} and "
                                    f"{MAX_FEE_USD_PER_SHARE} USD/share, got {value:g}")
        if self.routing_fee_usd_per_share < 0:
            raise _refuse("routing_fee_usd_per_share",
                          f"must be >= 0 USD/share (venues do not pay to route away), "
                          f"got {self.routing_fee_usd_per_share:g}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FixEndpoint(_Replaceable):
    """Where and as whom the FIX gateway connects to a venue's order entry."""

    host: str
    port: int
    sender_comp_id: str
    target_comp_id: str
    begin_string: str = "FIX.4.2"
    heartbeat_interval_s: int = 30

    def __post_init__(self) -> None:
        _check_str(self, "host", _HOST, "a host name or IP address")
        _check_int(self, "port", 1, 65535)
        _check_str(self, "sender_comp_id", _COMP_ID,
                   "1 to 64 printable ASCII characters without spaces")
        _check_str(self, "target_comp_id", _COMP_ID,
                   "1 to 64 printable ASCII characters without spaces")
        if "=" in self.sender_comp_id or "=" in self.target_comp_id:
            name = "sender_comp_id" if "=" in self.sender_comp_id else "target_comp_id"
            raise _refuse(name, f"must not contain '=' (the FIX tag separator), "
                                f"got {getattr(self, name)!r}")
        if self.begin_string not in FIX_BEGIN_STRINGS:
            choices = ", ".join(map(repr, FIX_BEGIN_STRINGS))
            raise _refuse("begin_string",
                          f"must be one of {choices}, got {_describe(self.begin_string)}")
        _check_int(self, "heartbeat_interval_s", 1, 300, "s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Venue(_Replaceable):
    """One execution venue: an exchange (lit) or a dark pool (dark).

    ``book_type`` is the market-data book the engine keeps for a lit venue: ``L3`` (order by
    order, the default) or ``L2`` (price levels). A dark venue displays no book, so its
    ``book_type`` is ``None`` and setting one is refused. ``order_latency_ns`` is one-way order
    entry (our send to the venue's matching engine), ``market_data_latency_ns`` one-way from the
    venue's matching engine to our feed handler, ``ack_latency_ns`` our send to the venue's ack
    arriving back (so it is at least ``order_latency_ns``).
    """

    venue_id: int
    name: str
    kind: VenueKind
    book_type: BookType | None = None
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    order_latency_ns: int = 50_000
    market_data_latency_ns: int = 20_000
    ack_latency_ns: int = 100_000
    fix: FixEndpoint | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_int(self, "venue_id", 0, VENUE_ID_LIMIT - 1)
        _check_str(self, "name", _VENUE_NAME,
                   "1 to 12 uppercase letters or digits starting with a letter "
                   "(a MIC, e.g. 'XNAS')")
        kind = _check_enum(self, "kind", VenueKind)
        if kind is VenueKind.DARK:
            if self.book_type is not None:
                raise _refuse("book_type", f"must be absent for a dark venue (a dark pool "
                                           f"displays no book), got {_describe(self.book_type)}")
        else:
            if self.book_type is None:
                _set(self, "book_type", BookType.L3)
            _check_enum(self, "book_type", BookType)
        fees = _check_instance(self, "fees", FeeSchedule)
        if kind is VenueKind.LIT and fees.taker_fee_usd_per_share > ACCESS_FEE_CAP_USD_PER_SHARE:
            raise _refuse("fees.taker_fee_usd_per_share",
                          f"must be <= {ACCESS_FEE_CAP_USD_PER_SHARE:.4f} USD/share (Reg NMS Rule "
                          f"610 access fee cap) for a lit venue, "
                          f"got {fees.taker_fee_usd_per_share:g}")
        for name in ("order_latency_ns", "market_data_latency_ns", "ack_latency_ns"):
            _check_int(self, name, 0, _NS_PER_S, "ns")
        if self.ack_latency_ns < self.order_latency_ns:
            raise _refuse("ack_latency_ns",
                          f"must be >= order_latency_ns ({self.order_latency_ns} ns; an ack "
                          f"cannot come back before the order arrives), got {self.ack_latency_ns}")
        if self.fix is not None:
            _check_instance(self, "fix", FixEndpoint)
        _check_bool(self, "enabled")

    @property
    def lit(self) -> bool:
        """Returns whether the venue displays its book."""
        return self.kind is VenueKind.LIT


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument(_Replaceable):
    """One tradable instrument.

    ``tick_size_ticks`` is the minimum price increment in price ticks (100 ticks = one cent at
    the default price tick of 0.0001 USD). ``venues`` lists the venue names it may trade on;
    empty means every venue. ``average_daily_volume_shares`` scales the order-size features of
    the models (parent and child size as a fraction of ADV); ``implied_volatility_annual`` is
    given to the models when set (0 means none). ``reference_price_ticks`` is the reference
    price of the risk stage's collar (0: the last trade the engine saw on any venue).
    """

    instrument_id: int
    symbol: str
    tick_size_ticks: int = 100
    lot_size_shares: int = 100
    min_quantity_shares: int = 1
    venues: tuple[str, ...] = ()
    average_daily_volume_shares: int = 5_000_000
    implied_volatility_annual: float = 0.0
    reference_price_ticks: int = 0

    def __post_init__(self) -> None:
        _check_int(self, "instrument_id", 0, _UINT32_MAX)
        _check_int(self, "reference_price_ticks", 0, unit="ticks")
        _check_str(self, "symbol", _SYMBOL,
                   "1 to 8 uppercase letters, digits or '.' starting with a letter (as in ITCH)")
        _check_int(self, "tick_size_ticks", 1, unit="ticks")
        _check_int(self, "lot_size_shares", 1, unit="shares")
        _check_int(self, "min_quantity_shares", 1, unit="shares")
        _check_int(self, "average_daily_volume_shares", 1, unit="shares")
        _check_float(self, "implied_volatility_annual", 0.0, 10.0)
        venues = _check_tuple(self, "venues", str)
        _check_unique(venues, "venues", "venue")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingRule(_Replaceable):
    """How the router spreads child orders of one instrument (or of every instrument, ``*``).

    ``venue_weights`` holds ``(venue name, weight >= 0)`` pairs in the order given; a mapping is
    accepted and kept in its order. Weight 0 keeps a venue out. ``dark_first`` pings dark venues
    before lit ones for quantities of at least ``min_dark_quantity_shares``.
    """

    instrument: str = WILDCARD
    venue_weights: tuple[tuple[str, float], ...]
    dark_first: bool = False
    min_dark_quantity_shares: int = 100
    max_venues_per_order: int = 4

    def __post_init__(self) -> None:
        if self.instrument != WILDCARD:
            _check_str(self, "instrument", _SYMBOL, "'*' or an instrument symbol")
        weights = self.venue_weights
        if isinstance(weights, Mapping):
            weights = tuple(weights.items())
        if isinstance(weights, (str, bytes)) or not isinstance(weights, (tuple, list)):
            raise _refuse("venue_weights", f"must be a table of venue name = weight, "
                                           f"got {_describe(weights)}")
        normalized = []
        for entry in weights:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise _refuse("venue_weights",
                              f"must hold (venue name, weight) pairs, got {entry!r}")
            name, weight = entry
            key = f"venue_weights.{name}"
            if not isinstance(name, str) or not _VENUE_NAME.fullmatch(name):
                raise _refuse("venue_weights", f"keys must be venue names, got {name!r}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise _refuse(key, f"must be a number, got {_describe(weight)}")
            weight = float(weight)
            if not math.isfinite(weight) or weight < 0:
                raise _refuse(key, f"must be a finite number >= 0, got {weight:g}")
            normalized.append((name, weight))
        if not normalized or not any(weight > 0 for _, weight in normalized):
            raise _refuse("venue_weights", "must give at least one venue a weight > 0")
        _check_unique([name for name, _ in normalized], "venue_weights", "venue")
        _set(self, "venue_weights", tuple(normalized))
        _check_bool(self, "dark_first")
        _check_int(self, "min_dark_quantity_shares", 0, unit="shares")
        _check_int(self, "max_venues_per_order", 1, VENUE_ID_LIMIT)

    def weight(self, venue_name: str) -> float:
        """Returns the weight of a venue, 0.0 if the rule does not name it."""
        return dict(self.venue_weights).get(venue_name, 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Account(_Replaceable):
    """One trading account (FIX Account, tag 1) with its own credit and position limits.

    ``credit_limit_usd`` caps filled plus open child notional per trading day,
    ``max_position_shares`` the absolute position per instrument. Accounts get engine ids
    1, 2, ... in the order they are listed; orders without an Account use account 0 and the
    ``default_*`` limits of :class:`RiskLimits`.
    """

    name: str
    credit_limit_usd: float
    max_position_shares: int

    def __post_init__(self) -> None:
        _check_str(self, "name", _ACCOUNT_NAME,
                   "1 to 32 printable ASCII characters without spaces (a FIX Account value)")
        _check_float(self, "credit_limit_usd", 0.0, unit="USD", exclusive_minimum=True)
        _check_int(self, "max_position_shares", 1, unit="shares")


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits(_Replaceable):
    """Hard limits the engine enforces on every parent and child order, whatever the model says.

    ``state`` is the risk state (``"ACTIVE"``, ``"REDUCING"``: only position-reducing orders,
    ``"HALTED"``: every open child cancelled, nothing new). ``max_participation_rate`` holds a
    parent's filled + working + new shares within that share of the market volume printed
    since it started, plus ``participation_allowance_shares`` (0 turns it off).
    ``reference_collar_bps`` bounds the aggressive side of children and parent limits around
    the reference price (each instrument's ``reference_price_ticks``, else the last trade; 0
    turns it off). ``trading_day`` (yyyymmdd, 0: today's UTC date at start) scopes credit,
    positions and the duplicate ClOrdID set: a new day resets them. Units and checks:
    docs/guardrails.md.
    """

    state: RiskState = RiskState.ACTIVE
    max_order_quantity_shares: int = 10_000
    max_order_notional_usd: float = 500_000.0
    max_parent_quantity_shares: int = 1_000_000
    max_parent_notional_usd: float = 50_000_000.0
    max_open_orders: int = 500
    max_orders_per_second: int = 200
    max_messages_per_second: int = 500
    price_band_bps: float = 100.0
    reference_collar_bps: float = 1_000.0
    max_participation_rate: float = 0.0
    participation_allowance_shares: int = 0
    max_gross_notional_usd: float = 50_000_000.0
    restricted_symbols: tuple[str, ...] = ()
    default_credit_limit_usd: float = 50_000_000.0
    default_max_position_shares: int = 5_000_000
    accounts: tuple[Account, ...] = ()
    trading_day: int = 0

    def __post_init__(self) -> None:
        _check_enum(self, "state", RiskState)
        _check_int(self, "max_order_quantity_shares", 1, unit="shares")
        _check_float(self, "max_order_notional_usd", 0.0, unit="USD", exclusive_minimum=True)
        _check_int(self, "max_parent_quantity_shares", 1, unit="shares")
        _check_float(self, "max_parent_notional_usd", 0.0, unit="USD", exclusive_minimum=True)
        _check_int(self, "max_open_orders", 1)
        _check_int(self, "max_orders_per_second", 1)
        _check_int(self, "max_messages_per_second", 1)
        _check_float(self, "price_band_bps", 0.0, 10_000.0, unit="bps", exclusive_minimum=True)
        _check_float(self, "reference_collar_bps", 0.0, 10_000.0, unit="bps")
        _check_float(self, "max_participation_rate", 0.0, 1.0)
        _check_int(self, "participation_allowance_shares", 0, unit="shares")
        _check_float(self, "max_gross_notional_usd", 0.0, unit="USD", exclusive_minimum=True)
        symbols = _check_tuple(self, "restricted_symbols", str)
        for position, symbol in enumerate(symbols):
            if not _SYMBOL.fullmatch(symbol):
                raise _refuse(f"restricted_symbols[{position}]",
                              f"must be an instrument symbol, got {symbol!r}")
        _check_unique(symbols, "restricted_symbols", "symbol")
        _check_float(self, "default_credit_limit_usd", 0.0, unit="USD", exclusive_minimum=True)
        _check_int(self, "default_max_position_shares", 1, unit="shares")
        accounts = _check_tuple(self, "accounts", Account)
        if len(accounts) > MAX_ACCOUNTS - 1:
            raise _refuse("accounts", f"must hold at most {MAX_ACCOUNTS - 1} accounts (ids 1.."
                                      f"{MAX_ACCOUNTS - 1}; 0 is the default), got {len(accounts)}")
        _check_unique([a.name for a in accounts], "accounts", "account name", "name")
        _check_trading_day(self, "trading_day")
        if self.max_order_quantity_shares > self.max_parent_quantity_shares:
            raise _refuse("max_order_quantity_shares",
                          f"must be <= max_parent_quantity_shares "
                          f"({self.max_parent_quantity_shares} shares; a child cannot exceed its "
                          f"parent), "
                          f"got {self.max_order_quantity_shares}")
        if self.max_order_notional_usd > self.max_gross_notional_usd:
            raise _refuse("max_order_notional_usd",
                          f"must be <= max_gross_notional_usd ({self.max_gross_notional_usd:g} USD)"
                          f", got {self.max_order_notional_usd:g}")

    def account_id(self, name: str) -> int:
        """Returns the engine id of account `name` ("" is the default account 0)."""
        if name == "":
            return 0
        for position, account in enumerate(self.accounts):
            if account.name == name:
                return position + 1
        raise KeyError(f"no account {name!r}")


_MODEL_POLICIES = ("ml_router", "rl")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardrailSettings(_Replaceable):
    """The model guard: the fallback policy, valid model outputs, the latency budget, and the
    Python guards on fill rate, venue concentration and feature drift (docs/guardrails.md).

    ``fallback_policy`` is the rule-based policy (no models) that routes while the guard is
    tripped; the ``*_range`` pairs are the valid outputs of each model slot; a policy decision
    slower than ``latency_budget_us`` counts as a breach and ``latency_breaches`` in a row trip
    the guard (0 turns the budget off). ``drift_features`` empty means the feature profile's
    default set.
    """

    fallback_policy: str = "best_price"
    fallback_policy_params: tuple[tuple[str, float], ...] = ()
    fill_probability_range: tuple[float, float] = (0.0, 1.0)
    adverse_move_bps_range: tuple[float, float] = (-1_000.0, 1_000.0)
    market_impact_bps_range: tuple[float, float] = (-1_000.0, 1_000.0)
    action_value_range: tuple[float, float] = (-1_000_000.0, 1_000_000.0)
    latency_budget_us: float = 1_000.0
    latency_breaches: int = 5
    fill_rate_enabled: bool = True
    fill_rate_window_children: int = 200
    fill_rate_min_children: int = 100
    fill_rate_floor_ratio: float = 0.5
    concentration_enabled: bool = True
    concentration_window_children: int = 200
    concentration_min_children: int = 200
    concentration_max_share: float = 0.8
    drift_enabled: bool = True
    drift_window_decisions: int = 1_000
    drift_psi_threshold: float = 1.0
    drift_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.fallback_policy, str) or not self.fallback_policy:
            raise _refuse("fallback_policy", f"must be a policy name, got "
                                             f"{_describe(self.fallback_policy)}")
        if self.fallback_policy in _MODEL_POLICIES:
            raise _refuse("fallback_policy", f"must be a rule-based policy that uses no model "
                                             f"(the guard falls back to it when a model "
                                             f"misbehaves), got {self.fallback_policy!r}")
        _check_params(self, "fallback_policy_params")
        _check_policy(self, "fallback_policy", "fallback_policy_params")
        for name in ("fill_probability_range", "adverse_move_bps_range",
                     "market_impact_bps_range", "action_value_range"):
            _check_range(self, name)
        _check_float(self, "latency_budget_us", 0.0, 60_000_000.0, unit="us")
        _check_int(self, "latency_breaches", 1, 1_000_000)
        for prefix in ("fill_rate", "concentration"):
            _check_bool(self, f"{prefix}_enabled")
            window = _check_int(self, f"{prefix}_window_children", 1, 1_000_000)
            minimum = _check_int(self, f"{prefix}_min_children", 1, 1_000_000)
            if minimum > window:
                raise _refuse(f"{prefix}_min_children",
                              f"must be <= {prefix}_window_children ({window}), got {minimum}")
        _check_float(self, "fill_rate_floor_ratio", 0.0, 1.0, exclusive_minimum=True)
        _check_float(self, "concentration_max_share", 0.0, 1.0, exclusive_minimum=True)
        _check_bool(self, "drift_enabled")
        _check_int(self, "drift_window_decisions", 1, 100_000_000)
        _check_float(self, "drift_psi_threshold", 0.0, unit="", exclusive_minimum=True)
        names = _check_tuple(self, "drift_features", str)
        _check_unique(names, "drift_features", "feature")
        if names:
            from sor import _core

            known = [entry[0] for entry in _core.feature_schema()]
            for position, feature in enumerate(names):
                if feature not in known:
                    raise _refuse(f"drift_features[{position}]",
                                  f"names no feature of the schema: {feature!r}"
                                  f"{_suggest(feature, known)}")


RING_NAMES = ("md", "order", "command", "exec", "audit")
"""The engine's shared-memory rings, as they prefix the ring settings."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings(_Replaceable):
    """How the engine runs: its shared-memory name, its core, scheduling, idling and rings.

    Ring capacities are in records and must be powers of two. A producer that finds its ring
    full either spins for at most ``overflow_spin_limit_ns`` and then refuses, or refuses at
    once, as its ring's overflow policy says.

    ``policy`` names the execution policy the engine hosts ("" keeps the built-in liquidity
    taker; otherwise ``ml_router``, ``rl`` or a classical baseline, see docs/ml-router.md),
    ``policy_params`` its parameters (a table of name = number, checked against the policy),
    and ``decision_interval_ms`` its decision grid.
    """

    name: str = "sor"
    cpu: int | None = None
    sched_fifo: bool = False
    sched_priority: int = 50
    mlockall: bool = False
    idle_strategy: IdleStrategy = IdleStrategy.YIELD
    idle_sleep_ns: int = 50_000
    md_ring_capacity_records: int = 65_536
    order_ring_capacity_records: int = 4_096
    command_ring_capacity_records: int = 1_024
    exec_ring_capacity_records: int = 4_096
    audit_ring_capacity_records: int = 65_536
    md_ring_overflow_policy: OverflowPolicy = OverflowPolicy.SPIN
    order_ring_overflow_policy: OverflowPolicy = OverflowPolicy.REFUSE
    command_ring_overflow_policy: OverflowPolicy = OverflowPolicy.SPIN
    exec_ring_overflow_policy: OverflowPolicy = OverflowPolicy.SPIN
    audit_ring_overflow_policy: OverflowPolicy = OverflowPolicy.REFUSE
    overflow_spin_limit_ns: int = 100_000
    heartbeat_timeout_ms: int = 1_000
    stale_segment_policy: StaleSegmentPolicy = StaleSegmentPolicy.ERROR
    policy: str = ""
    policy_params: tuple[tuple[str, float], ...] = ()
    decision_interval_ms: int = 1_000

    def __post_init__(self) -> None:
        _check_str(self, "name", _ENGINE_NAME,
                   "1 to 24 letters, digits, '_' or '-' starting with a letter or digit (it "
                   "prefixes shared-memory names)")
        if self.cpu is not None:
            _check_int(self, "cpu", 0, 1023)
        _check_bool(self, "sched_fifo")
        _check_int(self, "sched_priority", 1, 99)
        _check_bool(self, "mlockall")
        _check_enum(self, "idle_strategy", IdleStrategy)
        _check_int(self, "idle_sleep_ns", 1, _NS_PER_S, "ns")
        for ring in RING_NAMES:
            name = f"{ring}_ring_capacity_records"
            capacity = _check_int(self, name, 16, 2**30, "records")
            if capacity & (capacity - 1):
                raise _refuse(name, f"must be a power of two, got {capacity}")
            _check_enum(self, f"{ring}_ring_overflow_policy", OverflowPolicy)
        _check_int(self, "overflow_spin_limit_ns", 1, _NS_PER_S, "ns")
        _check_int(self, "heartbeat_timeout_ms", 1, 60_000, "ms")
        _check_enum(self, "stale_segment_policy", StaleSegmentPolicy)
        _check_int(self, "decision_interval_ms", 1, 3_600_000, "ms")
        if not isinstance(self.policy, str):
            raise _refuse("policy", f"must be a policy name or \"\", got {_describe(self.policy)}")
        params = self.policy_params
        if isinstance(params, Mapping):
            params = tuple(params.items())
        if isinstance(params, (str, bytes)) or not isinstance(params, (tuple, list)):
            raise _refuse("policy_params", f"must be a table of name = number, got "
                                           f"{_describe(params)}")
        normalized = []
        for entry in params:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise _refuse("policy_params", f"must hold (name, number) pairs, got {entry!r}")
            key, value = entry
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _refuse(f"policy_params.{key}", f"must be a number, got {_describe(value)}")
            normalized.append((str(key), float(value)))
        _set(self, "policy_params", tuple(normalized))
        if self.policy == "" and normalized:
            raise _refuse("policy_params", "given without a policy")
        if self.policy:
            # the core checks the name and every parameter, and names what it refuses
            from sor import _core
            from sor.errors import PolicyConfigError

            try:
                _core.make_policy(self.policy, dict(normalized))
            except PolicyConfigError as error:
                key = "policy" if "unknown policy" in str(error) else "policy_params"
                raise _refuse(key, str(error)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig(_Replaceable):
    """The whole configuration of a router; ``source`` is where it was loaded from.

    ``price_tick_usd`` is the value of one price tick, the unit of every ``_ticks`` field and of
    every price in the engine. ``source`` is not part of equality.
    """

    price_tick_usd: float = 0.0001
    venues: tuple[Venue, ...]
    instruments: tuple[Instrument, ...]
    routing: tuple[RoutingRule, ...]
    risk: RiskLimits = field(default_factory=RiskLimits)
    engine: EngineSettings = field(default_factory=EngineSettings)
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        try:
            self._validate()
        except ConfigError as error:
            raise ConfigError(error.reason, source=self.source, key=error.key) from None

    def _validate(self) -> None:
        tick = _check_float(self, "price_tick_usd", unit="USD")
        if not any(math.isclose(tick, 10.0**-exponent, rel_tol=1e-12) for exponent in range(10)):
            raise _refuse("price_tick_usd",
                          f"must be a power of ten from 1e-09 to 1 USD, got {tick:g}")
        venues = _check_tuple(self, "venues", Venue)
        instruments = _check_tuple(self, "instruments", Instrument)
        routing = _check_tuple(self, "routing", RoutingRule)
        risk = _check_instance(self, "risk", RiskLimits)
        _check_instance(self, "engine", EngineSettings)
        _check_instance(self, "guardrails", GuardrailSettings)
        if self.source is not None and not isinstance(self.source, str):
            raise _refuse("source", f"must be a string, got {_describe(self.source)}")

        _check_unique([v.venue_id for v in venues], "venues", "venue id", "venue_id")
        _check_unique([v.name for v in venues], "venues", "venue name", "name")
        if not any(v.lit for v in venues):
            raise _refuse("venues", "must include at least one lit venue")
        _check_unique([i.instrument_id for i in instruments], "instruments", "instrument id",
                      "instrument_id")
        _check_unique([i.symbol for i in instruments], "instruments", "symbol", "symbol")
        if not instruments:
            raise _refuse("instruments", "must include at least one instrument")
        venue_by_name = {v.name: v for v in venues}
        for position, instrument in enumerate(instruments):
            if instrument.reference_price_ticks and instrument.instrument_id >= MAX_RISK_INSTRUMENTS:
                raise _refuse(f"instruments[{position}].reference_price_ticks",
                              f"needs an instrument_id below {MAX_RISK_INSTRUMENTS} (the risk "
                              f"stage's instruments), got id {instrument.instrument_id}")
            for index, name in enumerate(instrument.venues):
                if name not in venue_by_name:
                    raise _refuse(f"instruments[{position}].venues[{index}]",
                                  f"names no configured venue: {name!r}"
                                  f"{_suggest(name, venue_by_name)}")

        _check_unique([r.instrument for r in routing], "routing", "rule for instrument",
                      "instrument")
        symbols = {i.symbol: i for i in instruments}
        for position, symbol in enumerate(risk.restricted_symbols):
            if symbol not in symbols:
                raise _refuse(f"risk.restricted_symbols[{position}]",
                              f"names no configured instrument: {symbol!r}"
                              f"{_suggest(symbol, symbols)}")
            if symbols[symbol].instrument_id >= MAX_RISK_INSTRUMENTS:
                raise _refuse(f"risk.restricted_symbols[{position}]",
                              f"{symbol!r} has instrument_id {symbols[symbol].instrument_id}; the "
                              f"risk stage covers ids below {MAX_RISK_INSTRUMENTS}")
        for position, rule in enumerate(routing):
            key = f"routing[{position}]"
            if rule.instrument != WILDCARD and rule.instrument not in symbols:
                raise _refuse(f"{key}.instrument",
                              f"names no configured instrument: {rule.instrument!r}"
                              f"{_suggest(rule.instrument, symbols)}")
            for name, _ in rule.venue_weights:
                if name not in venue_by_name:
                    raise _refuse(f"{key}.venue_weights.{name}",
                                  f"names no configured venue{_suggest(name, venue_by_name)}")
            dark_weights = [weight for name, weight in rule.venue_weights
                            if not venue_by_name[name].lit]
            if rule.dark_first and not any(weight > 0 for weight in dark_weights):
                raise _refuse(f"{key}.dark_first",
                              "is true but the rule gives no dark venue a weight > 0")
        rules = {r.instrument: r for r in routing}
        for position, instrument in enumerate(instruments):
            rule = rules.get(instrument.symbol, rules.get(WILDCARD))
            if rule is None:
                raise _refuse("routing", f"has no rule for {instrument.symbol!r} and no '*' rule")
            allowed = set(instrument.venues) or set(venue_by_name)
            if not any(weight > 0 and name in allowed for name, weight in rule.venue_weights):
                raise _refuse(f"instruments[{position}].venues",
                              f"leave {instrument.symbol!r} no venue its routing rule "
                              f"({rule.instrument!r}) gives a weight > 0")

    def venue(self, name_or_id: str | int) -> Venue:
        """Returns the venue with this name or venue id."""
        for venue in self.venues:
            if venue.name == name_or_id or (isinstance(name_or_id, int)
                                            and not isinstance(name_or_id, bool)
                                            and venue.venue_id == name_or_id):
                return venue
        raise KeyError(f"no venue {name_or_id!r}")

    def instrument(self, symbol_or_id: str | int) -> Instrument:
        """Returns the instrument with this symbol or instrument id."""
        for instrument in self.instruments:
            if instrument.symbol == symbol_or_id or (isinstance(symbol_or_id, int)
                                                     and not isinstance(symbol_or_id, bool)
                                                     and instrument.instrument_id == symbol_or_id):
                return instrument
        raise KeyError(f"no instrument {symbol_or_id!r}")

    def routing_rule(self, symbol_or_id: str | int) -> RoutingRule:
        """Returns the routing rule that applies to an instrument (its own, else the ``*`` rule)."""
        symbol = self.instrument(symbol_or_id).symbol
        rules = {rule.instrument: rule for rule in self.routing}
        return rules.get(symbol, rules.get(WILDCARD))  # validation guarantees one of them

    def venue_mask(self, names_or_ids: Any) -> int:
        """Returns the 64-bit venue mask with the bits of these venues set."""
        mask = 0
        for name_or_id in names_or_ids:
            mask |= 1 << self.venue(name_or_id).venue_id
        return mask


def _check_unique(values: Any, key: str, what: str, field_name: str | None = None) -> None:
    first: dict[Any, int] = {}
    for position, value in enumerate(values):
        if value in first:
            location = f"{key}[{position}]" + (f".{field_name}" if field_name else "")
            raise _refuse(location, f"duplicate {what} {value!r} (also {key}[{first[value]}])")
        first[value] = position


def _suggest(word: str, candidates: Any) -> str:
    from difflib import get_close_matches

    close = get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def toml_field_names(cls: type) -> tuple[str, ...]:
    """Returns the keys a TOML table for ``cls`` may hold, in declaration order."""
    return tuple(f.name for f in fields(cls) if f.name != "source")
