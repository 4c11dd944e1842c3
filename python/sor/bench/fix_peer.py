"""The FIX codec a Python user would otherwise pick: simplefix, shaped like ``sor.fix.codec``
so a :class:`sor.fix.session.FixSession` (and the gateway on top of it) can run on it as the
benchmark's ratio peer (``FixSession(..., codec=SIMPLEFIX_CODEC)``).

Parsing and encoding are simplefix's (``FixParser``, ``FixMessage.encode``). simplefix has no
framer that hands back a frame's bytes, so framing is a plain scan for the ``<SOH>10=nnn<SOH>``
trailer, checking neither BodyLength nor CheckSum (simplefix checks neither either).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import simplefix

from sor.errors import FixFieldError, FixParseError, UsageError
from sor.fix.codec import FrameStatus

_SOH = b"\x01"
_TRAILER = b"\x0110="


class SimplefixMessage:
    """One message parsed by simplefix, with the accessors of ``sor.fix.codec.FixMessage``."""

    __slots__ = ("raw", "_pairs")

    def __init__(self, raw: bytes, pairs: list[tuple[int, bytes]]) -> None:
        self.raw = raw
        self._pairs = pairs

    def _first(self, tag: int) -> bytes | None:
        for key, value in self._pairs:
            if key == tag:
                return value
        return None

    def get(self, tag: int, default: Any = None) -> Any:
        """Returns the first value of `tag` as str, else `default`."""
        value = self._first(tag)
        return default if value is None else value.decode()

    def get_bytes(self, tag: int, default: Any = None) -> Any:
        """Returns the first value of `tag` as bytes, else `default`."""
        value = self._first(tag)
        return default if value is None else value

    def get_int(self, tag: int, default: Any = None) -> Any:
        """Returns the first value of `tag` as int, else `default`."""
        value = self._first(tag)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise FixFieldError(tag, value.decode(errors="replace"), "not an integer") from None

    def get_price(self, tag: int, default: Any = None, *, tick_usd: float = 0.0001) -> Any:
        """Returns the first value of `tag` in ticks, else `default`."""
        value = self._first(tag)
        if value is None:
            return default
        ticks = Decimal(value.decode()) / Decimal(str(tick_usd))
        if ticks != ticks.to_integral_value():
            raise FixFieldError(tag, value.decode(), "finer than the tick")
        return int(ticks)

    def get_all(self, tag: int) -> list[str]:
        """Returns every value of `tag`."""
        return [value.decode() for key, value in self._pairs if key == tag]

    def fields(self) -> list[tuple[int, bytes]]:
        """Returns every field in wire order."""
        return list(self._pairs)

    def __contains__(self, tag: int) -> bool:
        return self._first(tag) is not None

    def count(self, tag: int) -> int:
        """Returns how many times `tag` occurs."""
        return sum(1 for key, _ in self._pairs if key == tag)

    def __len__(self) -> int:
        return len(self._pairs)

    @property
    def msg_type(self) -> str:
        """Tag 35."""
        return self.get(35, "")

    @property
    def seq_num(self) -> int:
        """Tag 34 (0 when absent or not a number)."""
        value = self._first(34)
        return int(value) if value is not None and value.isdigit() else 0

    @property
    def begin_string(self) -> str:
        """Tag 8."""
        return self.get(8, "")

    @property
    def sender_comp_id(self) -> str:
        """Tag 49."""
        return self.get(49, "")

    @property
    def target_comp_id(self) -> str:
        """Tag 56."""
        return self.get(56, "")

    @property
    def poss_dup(self) -> bool:
        """Tag 43 = Y."""
        return self._first(43) == b"Y"


def parse(frame: bytes) -> SimplefixMessage:
    """Parses one frame with simplefix's FixParser."""
    parser = simplefix.FixParser()
    parser.append_buffer(frame)
    message = parser.get_message()
    if message is None:
        raise FixParseError("unterminated", 0, "simplefix found no whole message")
    return SimplefixMessage(bytes(frame), [(int(tag), value) for tag, value in message.pairs])


class SimplefixFramer:
    """Splits a byte stream at each ``<SOH>10=nnn<SOH>`` trailer (no BodyLength or CheckSum
    check: simplefix checks neither)."""

    def __init__(self, max_message_bytes: int = 65536) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[FrameStatus, bytes]]:
        """Returns every complete frame in the bytes received so far."""
        buffer = self._buffer + bytes(data)
        frames = []
        start = 0
        while True:
            end = buffer.find(_TRAILER, start)
            if end < 0 or len(buffer) < end + 8:
                break
            frames.append((FrameStatus.OK, buffer[start:end + 8]))
            start = end + 8
        self._buffer = buffer[start:]
        return frames

    def clear(self) -> None:
        """Drops buffered bytes."""
        self._buffer = b""

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)


def encode(begin_string: str, msg_type: str, sender_comp_id: str, target_comp_id: str,
           seq_num: int, sending_time_ns: int, body: Sequence[tuple[int, Any]], *,
           poss_dup: bool = False, orig_sending_time_ns: int = 0,
           max_message_bytes: int = 65536) -> bytes:
    """Encodes one message with simplefix (it writes BodyLength and CheckSum)."""
    message = simplefix.FixMessage()
    message.append_pair(8, begin_string, header=True)
    message.append_pair(35, msg_type, header=True)
    message.append_pair(49, sender_comp_id, header=True)
    message.append_pair(56, target_comp_id, header=True)
    message.append_pair(34, seq_num, header=True)
    message.append_utc_timestamp(52, sending_time_ns / 1e9, precision=3, header=True)
    if poss_dup:
        message.append_pair(43, "Y", header=True)
        message.append_utc_timestamp(122, (orig_sending_time_ns or sending_time_ns) / 1e9,
                                     precision=3, header=True)
    for tag, value in body:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "Y" if value else "N"
        elif isinstance(value, float):
            raise UsageError(f"tag {tag}: write prices as decimal strings, not floats")
        message.append_pair(tag, value)
    return message.encode()


def parse_utc_timestamp(text: str | bytes, *, tag: int | None = None) -> int:
    """Parses a UTCTimestamp (seconds, ms, us or ns) with the standard library."""
    if isinstance(text, bytes):
        text = text.decode()
    if text is None:
        raise FixFieldError(tag, None, "missing UTCTimestamp")
    whole, _, fraction = text.partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y%m%d-%H:%M:%S"))
    except ValueError:
        raise FixFieldError(tag, text, "not a UTCTimestamp") from None
    if fraction and (not fraction.isdigit() or len(fraction) not in (3, 6, 9)):
        raise FixFieldError(tag, text, "not a UTCTimestamp")
    return seconds * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)


SIMPLEFIX_CODEC = SimpleNamespace(FixFramer=SimplefixFramer, parse=parse, encode=encode,
                                  parse_utc_timestamp=parse_utc_timestamp)
"""The codec object a FixSession takes (``codec=SIMPLEFIX_CODEC``)."""

__all__ = ["SIMPLEFIX_CODEC", "SimplefixFramer", "SimplefixMessage", "encode", "parse",
           "parse_utc_timestamp"]
