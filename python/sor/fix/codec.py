"""FIX tag=value framing, parsing and encoding (C++ in ``sor._core``; reference: simplefix).

Bytes on the wire use SOH (``\\x01``). Everything here is implemented in
``cpp/include/sor/fix.hpp`` and bound in ``cpp/bindings/fix.cpp``; this module only gives the
bound names their public spelling. See docs/fix.md, "Codec".

- :class:`FixFramer` splits a byte stream into frames ``(FrameStatus, bytes)``, checking
  BodyLength (9) and CheckSum (10) in bounded memory and resyncing on the next ``8=FIX``.
- :func:`parse` turns one frame into a :class:`FixMessage` (fields in wire order, values
  decoded to ``str`` only when asked for); it raises :class:`sor.errors.FixParseError`.
- :func:`encode` writes a whole message with BodyLength and CheckSum.
- :func:`format_utc_timestamp` / :func:`parse_utc_timestamp` convert UTCTimestamps and int64
  nanoseconds since the epoch; :func:`price_to_fix` / :func:`price_from_fix` convert prices in
  ticks and FIX decimals exactly.
"""

from __future__ import annotations

from sor._core import FIX_MAX_FIELDS as MAX_FIELDS
from sor._core import FixFrameStatus as FrameStatus
from sor._core import FixFramer, FixMessage
from sor._core import fix_checksum as checksum
from sor._core import fix_encode as encode
from sor._core import fix_format_utc_timestamp as format_utc_timestamp
from sor._core import fix_parse as parse
from sor._core import fix_parse_utc_timestamp as parse_utc_timestamp
from sor._core import fix_price_from_fix as price_from_fix
from sor._core import fix_price_to_fix as price_to_fix

SOH = b"\x01"
"""The FIX field delimiter."""

__all__ = [
    "MAX_FIELDS", "SOH", "FrameStatus", "FixFramer", "FixMessage", "checksum", "encode",
    "format_utc_timestamp", "parse", "parse_utc_timestamp", "price_from_fix", "price_to_fix",
]
