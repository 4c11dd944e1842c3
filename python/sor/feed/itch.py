"""NASDAQ TotalView-ITCH 5.0: decode to ``md_event_dtype`` arrays, encode from them.

Two framings are supported: ``"file"`` (each message prefixed by its 2-byte big-endian
length, as in NASDAQ's historical files) and ``"moldudp64"`` (one MoldUDP64 packet per
datagram). Decoding runs in the C++ core with the GIL released; every sequenced message
becomes exactly one event, so books downstream see contiguous sequence numbers.

Event mapping: A/F -> ADD, E/C -> EXECUTE, X -> CANCEL, D -> DELETE, U -> REPLACE (order_id
is the original reference, related_id the new one), P -> TRADE, Q -> TRADE with FLAG_CROSS
(order_id holds the cross type character code), B -> BROKEN_TRADE, every other type ->
STATUS with related_id = the message type character. Prices are the raw ITCH ``Price(4)``
integers, i.e. ticks of $0.0001.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Union

import numpy as np

from sor import _core
from sor.errors import FeedDecodeError, UsageError

Framing = Literal["file", "moldudp64"]
_FRAMINGS = {"file": 0, "moldudp64": 1}
_MAX_LOCATE = 0xFFFF
_MAX_UINT32 = 0xFFFFFFFF

#: Instrument id given to events whose stock locate is not bound by the instrument map.
UNMAPPED_INSTRUMENT = _MAX_UINT32


@dataclass(frozen=True)
class DirectoryEntry:
    """One stock directory ('R') entry: the latest seen for its stock locate."""

    stock_locate: int
    symbol: str
    round_lot_size: int = 100
    market_category: str = "Q"
    financial_status: str = "N"
    instrument_id: int = 0


@dataclass(frozen=True)
class ItchBatch:
    """The result of decoding a whole ITCH stream."""

    events: np.ndarray
    directory: tuple[DirectoryEntry, ...] = ()
    message_counts: dict[str, int] = field(default_factory=dict)
    unmapped_messages: int = 0


def _framing_code(framing: str) -> int:
    try:
        return _FRAMINGS[framing]
    except KeyError:
        raise UsageError(f"framing must be 'file' or 'moldudp64', not {framing!r}") from None


def _check_instruments(instruments: Mapping[str, int] | None) -> dict[str, int] | None:
    if instruments is None:
        return None
    checked: dict[str, int] = {}
    for symbol, instrument_id in instruments.items():
        if not isinstance(symbol, str) or not 1 <= len(symbol) <= 8 or not symbol.isascii():
            raise UsageError(f"instrument symbol {symbol!r} must be 1 to 8 ASCII characters")
        instrument_id = int(instrument_id)
        if not 0 <= instrument_id < UNMAPPED_INSTRUMENT:
            raise UsageError(f"instrument id {instrument_id} for {symbol!r} is out of range")
        checked[symbol] = instrument_id
    return checked


def _as_bytes(data: object) -> memoryview:
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"feed data must be a bytes-like object, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise UsageError("feed data must be C-contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=_core.md_event_dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class ItchDecoder:
    """A streaming ITCH 5.0 decoder; options are fixed when it is created.

    With ``framing="file"`` feed any chunks of the stream: a frame split across chunks is
    kept until its remaining bytes arrive, and :meth:`finish` raises ``FeedDecodeError``
    (status ``truncated``) if the stream ends inside one. With ``framing="moldudp64"`` feed
    one whole packet per call. Errors stop the decoder: the call raises
    ``FeedDecodeError`` whose ``events`` hold what that call decoded before the fault, and
    whose ``offset`` counts bytes from the first byte ever fed.

    ``instruments`` maps symbols to instrument ids; when given, only stock locates bound by a
    stock directory message of a mapped symbol produce book events, and messages of other
    locates become STATUS events with ``instrument_id = UNMAPPED_INSTRUMENT``.
    """

    def __init__(self, *, framing: Framing = "file", venue_id: int = 0,
                 session_date_ns: int = 0, ts_recv: int = 0,
                 instruments: Mapping[str, int] | None = None) -> None:
        if not 0 <= int(venue_id) <= 0xFF:
            raise UsageError(f"venue_id must be 0..255, not {venue_id}")
        self._framing = framing
        self._decoder: _core.ItchDecoder | None = _core.ItchDecoder(
            framing=_framing_code(framing), venue_id=int(venue_id),
            session_date_ns=int(session_date_ns), ts_recv=int(ts_recv),
            instruments=_check_instruments(instruments))

    def _open(self) -> _core.ItchDecoder:
        if self._decoder is None:
            raise UsageError("the ITCH decoder is closed")
        return self._decoder

    def feed(self, chunk: bytes | bytearray | memoryview) -> np.ndarray:
        """Decodes a chunk (a MoldUDP64 packet) and returns its events as md_event_dtype."""
        return self._open().decode(_as_bytes(chunk))

    def finish(self) -> None:
        """Ends the stream; raises FeedDecodeError if a partial frame is left over."""
        self._open().finish()

    def close(self) -> None:
        """Releases the decoder's tables; further calls raise UsageError."""
        self._decoder = None

    def __enter__(self) -> ItchDecoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def directory(self) -> tuple[DirectoryEntry, ...]:
        """The stock directory entries seen so far, in order of first appearance."""
        return tuple(DirectoryEntry(*entry) for entry in self._open().directory())

    @property
    def message_counts(self) -> dict[str, int]:
        """How many messages of each type were decoded, by type character."""
        return dict(self._open().message_counts())

    @property
    def unmapped_messages(self) -> int:
        """Messages of a stock locate not bound to an instrument (locate 0 excluded)."""
        return int(self._open().unmapped_messages)

    @property
    def bytes_fed(self) -> int:
        """Bytes fed so far."""
        return int(self._open().bytes_fed)

    @property
    def end_of_session(self) -> bool:
        """True once a MoldUDP64 end-of-session packet was seen."""
        return bool(self._open().end_of_session)


def decode(data: bytes | bytearray | memoryview | Iterable[bytes], *, framing: Framing = "file",
           venue_id: int = 0, session_date_ns: int = 0, ts_recv: int = 0,
           instruments: Mapping[str, int] | None = None) -> ItchBatch:
    """Decodes a whole ITCH stream (file framing) or a sequence of MoldUDP64 packets.

    For ``framing="moldudp64"`` pass one packet (bytes-like) or an iterable of packets.
    Raises ``FeedDecodeError`` at the first fault; its ``events`` hold every event decoded
    before it.
    """
    if framing == "moldudp64" and not isinstance(data, (bytes, bytearray, memoryview)):
        chunks: Iterable[object] = data
    else:
        chunks = [data]
    parts: list[np.ndarray] = []
    with ItchDecoder(framing=framing, venue_id=venue_id, session_date_ns=session_date_ns,
                     ts_recv=ts_recv, instruments=instruments) as decoder:
        try:
            for chunk in chunks:
                parts.append(decoder.feed(chunk))  # type: ignore[arg-type]
            decoder.finish()
        except FeedDecodeError as error:
            error.events = _concatenate([*parts, error.events])
            raise
        return ItchBatch(events=_concatenate(parts), directory=decoder.directory,
                         message_counts=decoder.message_counts,
                         unmapped_messages=decoder.unmapped_messages)


DirectoryInput = Union[Iterable[DirectoryEntry], Mapping[int, str], None]


class ItchWriter:
    """Writes ITCH 5.0 in file framing (bytes) or MoldUDP64 framing (a list of packets).

    Events need ``ts_event`` within 2^48 ns after ``session_date_ns``. ``stock_locates``
    maps instrument ids to stock locates (identity when None). Sequence numbers come from
    the order of writing (MoldUDP64: starting at ``first_sequence``); the events' own
    ``sequence`` fields are not written. Tracking numbers are 0.
    """

    def __init__(self, *, framing: Framing = "file", session_date_ns: int = 0,
                 session: str = "SOR", first_sequence: int = 1, max_packet_bytes: int = 1400,
                 max_messages_per_packet: int = 0xFFFE,
                 stock_locates: Mapping[int, int] | None = None) -> None:
        if len(session) > 10 or not session.isascii():
            raise UsageError(f"MoldUDP64 session {session!r} must be at most 10 ASCII characters")
        if stock_locates is not None:
            for instrument_id, locate in stock_locates.items():
                if not 0 <= int(locate) <= _MAX_LOCATE:
                    raise UsageError(f"stock locate {locate} of instrument {instrument_id} "
                                     "does not fit 16 bits")
            stock_locates = {int(k): int(v) for k, v in stock_locates.items()}
        self._framing = framing
        self._encoder: _core.ItchEncoder | None = _core.ItchEncoder(
            framing=_framing_code(framing), session_date_ns=int(session_date_ns),
            session=session, first_sequence=int(first_sequence),
            max_packet_bytes=int(max_packet_bytes),
            max_messages_per_packet=int(max_messages_per_packet), stock_locates=stock_locates)
        self._session_date_ns = int(session_date_ns)

    def _open(self) -> _core.ItchEncoder:
        if self._encoder is None:
            raise UsageError("the ITCH writer is closed")
        return self._encoder

    def system_event(self, code: str, ts_event: int) -> None:
        """Writes a system event ('S') with event code ``code`` ('O', 'S', 'Q', 'M', 'E', 'C')."""
        if len(code) != 1:
            raise UsageError(f"system event code must be one character, not {code!r}")
        self._open().system_event(code, int(ts_event))

    def stock_directory(self, stock_locate: int, symbol: str, *, round_lot_size: int = 100,
                        ts_event: int | None = None, market_category: str = "Q",
                        financial_status: str = "N") -> None:
        """Writes a stock directory entry ('R'); ts_event defaults to session midnight."""
        if not 0 <= int(stock_locate) <= _MAX_LOCATE:
            raise UsageError(f"stock locate {stock_locate} does not fit 16 bits")
        if not symbol.isascii() or not 1 <= len(symbol) <= 8:
            raise UsageError(f"symbol {symbol!r} must be 1 to 8 ASCII characters")
        if not 0 <= int(round_lot_size) <= _MAX_UINT32:
            raise UsageError(f"round lot size {round_lot_size} does not fit 32 bits")
        self._open().stock_directory(
            int(stock_locate), symbol, int(round_lot_size),
            self._session_date_ns if ts_event is None else int(ts_event),
            market_category, financial_status)

    def write(self, events: np.ndarray) -> None:
        """Writes one message per event; raises UsageError naming the first refused event."""
        self._open().encode(events)

    def end_session(self) -> None:
        """Writes a MoldUDP64 end-of-session packet (file framing: does nothing)."""
        self._open().end_session()

    def getvalue(self) -> bytes | list[bytes]:
        """Returns the file bytes, or every MoldUDP64 packet (closing the open one)."""
        encoder = self._open()
        if self._framing == "file":
            return encoder.bytes()
        encoder.flush()
        return list(encoder.packets())

    def close(self) -> None:
        """Releases the writer's buffers; further calls raise UsageError."""
        self._encoder = None

    def __enter__(self) -> ItchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def encode(events: np.ndarray, *, framing: Framing = "file", directory: DirectoryInput = None,
           session_date_ns: int = 0, session: str = "SOR", first_sequence: int = 1,
           max_packet_bytes: int = 1400, max_messages_per_packet: int = 0xFFFE,
           stock_locates: Mapping[int, int] | None = None) -> bytes | list[bytes]:
    """Encodes events as ITCH 5.0: bytes for file framing, a list of packets for MoldUDP64.

    ``directory`` (DirectoryEntry items, or a mapping of stock locate to symbol) is written
    first as stock directory messages, so it takes the first sequence numbers.
    """
    with ItchWriter(framing=framing, session_date_ns=session_date_ns, session=session,
                    first_sequence=first_sequence, max_packet_bytes=max_packet_bytes,
                    max_messages_per_packet=max_messages_per_packet,
                    stock_locates=stock_locates) as writer:
        if isinstance(directory, Mapping):
            entries: Iterable[DirectoryEntry] = (
                DirectoryEntry(int(locate), symbol) for locate, symbol in directory.items())
        else:
            entries = directory or ()
        for entry in entries:
            writer.stock_directory(entry.stock_locate, entry.symbol,
                                   round_lot_size=entry.round_lot_size,
                                   market_category=entry.market_category,
                                   financial_status=entry.financial_status)
        writer.write(events)
        return writer.getvalue()


__all__ = ["DirectoryEntry", "ItchBatch", "ItchDecoder", "ItchWriter", "UNMAPPED_INSTRUMENT",
           "decode", "encode"]
