"""Exceptions raised by sor. Core statuses are mapped to these in one place
(cpp/bindings/errors.cpp); everything derives from :class:`SorError`."""

from __future__ import annotations

from typing import Any


class SorError(Exception):
    """Base class of every error sor raises on purpose."""


class UsageError(SorError, ValueError):
    """An API was called with arguments it cannot take (wrong dtype, shape or value)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _describe(event: dict[str, Any]) -> str:
    from sor._core import EventKind  # the extension imports this module; import it lazily

    names = {int(v): k.lower() for k, v in EventKind.__members__.items()}
    kind = names.get(int(event.get("kind", 0)), str(event.get("kind")))
    return (f"{kind} venue={event['venue_id']} instrument={event['instrument_id']} "
            f"order_id={event['order_id']} side={event['side']} price_ticks={event['price_ticks']} "
            f"quantity={event['quantity']} sequence={event['sequence']}")


class BookIntegrityError(SorError):
    """An event would break a book's integrity; it was rejected whole.

    Events before ``index`` in the batch were applied; the event at ``index`` and those after
    it were not. ``status`` names the rule (``unknown_order``, ``duplicate_order``,
    ``invalid_quantity``, ``crossed_book``, ...).
    """

    def __init__(self, status: str, index: int, event: dict[str, Any], **_: Any) -> None:
        self.status = status
        self.index = int(index)
        self.event = event
        super().__init__(f"event {self.index} rejected ({status}): {_describe(event)}")


class SequenceGapError(SorError):
    """A venue's sequence number skipped ahead; the event at ``index`` was not applied.

    ``expected_sequence`` is the number the venue's book waits for. Recover (snapshot or
    retransmission), then call ``resync`` on the book to accept the new sequence.
    """

    def __init__(self, status: str, index: int, event: dict[str, Any],
                 expected_sequence: int, **_: Any) -> None:
        self.status = status
        self.index = int(index)
        self.event = event
        self.expected_sequence = int(expected_sequence)
        self.received_sequence = int(event["sequence"])
        self.venue_id = int(event["venue_id"])
        super().__init__(
            f"event {self.index}: sequence gap on venue {self.venue_id}: expected "
            f"{self.expected_sequence}, received {self.received_sequence} "
            f"({self.received_sequence - self.expected_sequence} missing)")


class FeedDecodeError(SorError):
    """Feed bytes could not be decoded; nothing after ``offset`` was consumed.

    ``events`` holds the events decoded from the bytes before ``offset``, so nothing that
    was good is lost.
    """

    def __init__(self, status: str, offset: int, reason: str, events: Any = None) -> None:
        self.status = status
        self.offset = int(offset)
        self.reason = reason
        self.events = events
        super().__init__(f"{status} at byte offset {self.offset}: {reason}")


class ConfigError(SorError, ValueError):
    """A configuration value is impossible; the running configuration is unchanged.

    ``source`` names the file (or ``None``), ``key`` the TOML key path such as
    ``venues[2].fees.taker_fee_usd_per_share`` (or ``None``), ``reason`` what is wrong;
    ``str()`` shows ``source: key: reason``.
    """

    def __init__(self, reason: str, *, source: str | None = None, key: str | None = None) -> None:
        self.reason = reason
        self.source = source
        self.key = key
        super().__init__(reason)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.key, self.reason) if part)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling passes only ``args``; the keywords travel as state.
        return (type(self), (self.reason,), {"source": self.source, "key": self.key})


class RingError(SorError):
    """A shared-memory ring could not be created or attached.

    ``status`` names the rule (``in_use``, ``not_found``, ``layout_mismatch``,
    ``record_mismatch``, ``role_taken``, ``stale``, ``invalid_argument``, ``system_error``).
    """

    def __init__(self, status: str, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{detail} [{status}]")


class EngineError(SorError):
    """The engine could not start, stop or be reached."""


class EngineCrashedError(EngineError):
    """The engine process died or stopped heartbeating while it was supposed to run."""


class SimulationError(SorError):
    """A simulated or replayed market could not take its input (a recorded stream, a venue).

    ``reason`` names the rule (``unsorted``, ``venue_mismatch``, ``book_rejected``,
    ``unknown_venue``, ``already_loaded``, ``already_started``); ``venue_id`` and ``index``
    locate the offending input when there is one; ``str()`` says what was wrong.
    """

    def __init__(self, message: str, *, reason: str = "", venue_id: int | None = None,
                 index: int | None = None) -> None:
        self.reason = reason
        self.venue_id = venue_id
        self.index = index
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0],),
                {"reason": self.reason, "venue_id": self.venue_id, "index": self.index})


class FeatureConfigError(ConfigError):
    """Feature-engine options are impossible; nothing was built.

    ``option`` names the offending option as the message starts with it (``garch.alpha``,
    ``venues``, ``flow_bucket_ns``); ``key`` is set when a Python setting was refused.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(message, source=source, key=key)
        self.option = key if key is not None else message.split(" ", 1)[0].rstrip(":")


class FeatureError(SorError, ValueError):
    """The feature engine refused a call: a decision context (``index`` is its row in the
    batch) or a setter argument. ``status`` names the rule (``unknown_venue``,
    ``unknown_instrument``, ``invalid_side``, ``invalid_order_type``, ``invalid_quantity``,
    ``invalid_time``, ``invalid_price``, ``invalid_value``).
    """

    def __init__(self, status: str, index: int | None = None, detail: str = "") -> None:
        self.status = status
        self.index = index
        self.detail = detail
        where = f"context {index}: " if index is not None else ""
        super().__init__(f"{where}{status}" + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.index, self.detail))


__all__ = [
    "SorError", "UsageError", "BookIntegrityError", "SequenceGapError", "FeedDecodeError",
    "ConfigError", "RingError", "EngineError", "EngineCrashedError", "SimulationError",
    "FeatureConfigError", "FeatureError",
]
