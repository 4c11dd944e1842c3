"""The FIX session layer (FIX 4.2 and 4.4): a transport-independent state machine.

A :class:`FixSession` is fed by its transport (the reactor, or a test):
``on_connect(send_bytes, now_ns, close)`` when a TCP connection is up, ``on_bytes(data, now_ns)``
with every chunk received, ``on_timer(now_ns)`` a few times a second, ``on_disconnect()`` when
the connection is gone. It answers through ``send_bytes`` and asks for the connection to be
closed through ``close``. Every callback of the :class:`Application` runs on the caller's
thread (the reactor thread).

Behaviour follows the FIX session layer specification and the FIX Trading Community session
test cases; the numbers in comments (``1S-d``, ``2c``, ``10``) name those cases. In short:

* Logon: the initiator sends it on connect (141=Y and a store reset with ``reset_on_logon``);
  the acceptor validates it, resets on 141=Y or ``reset_on_logon``, takes HeartBtInt from it
  and answers. A first message that is not a Logon ends the connection (logged).
* Sequence numbers: too high -> ResendRequest (EndSeqNo 0) and the message is queued until the
  gap is filled; too low without PossDupFlag -> Logout "MsgSeqNum too low, expecting X but
  received Y" and disconnect; a PossDup copy of a message already received is dropped.
* ResendRequest: stored application messages are resent with PossDupFlag=Y and
  OrigSendingTime; admin messages (never stored) are replaced by SequenceReset-GapFill.
* SequenceReset: GapFill moves the expected number forward; Reset sets it (never lowers it:
  Reject reason 5).
* Validation: garbled frames (bad BodyLength, CheckSum, MsgType not third, ...) are ignored
  without consuming a sequence number. Header errors get a session Reject (35=3) with the
  reason codes of tag 373 and consume the sequence number; CompID and SendingTime problems
  are followed by a Logout; a wrong BeginString gets a Logout.
* Heartbeat after HeartBtInt of outbound silence, TestRequest after 1.2 x HeartBtInt of
  inbound silence, disconnect after 2.4 x HeartBtInt.

Everything sent and received, and every event, is logged to the logger ``sor.fix.<name>``
(messages at DEBUG, events at INFO, protocol errors at WARNING).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Union

from sor.errors import FixFieldError, FixParseError, FixSessionError
from sor.fix import codec as _codec
from sor.fix.codec import FixFramer, FixMessage, FrameStatus
from sor.fix.config import SessionConfig
from sor.fix.store import MessageStore

FieldValue = Union[str, int, bytes]
Body = Sequence[tuple[int, FieldValue]]


class SessionState(enum.Enum):
    """Where a session is in its life: connection, logon, logout."""

    DISCONNECTED = "disconnected"
    AWAITING_LOGON = "awaiting_logon"    # acceptor: connected, waiting for the peer's Logon
    LOGON_SENT = "logon_sent"            # initiator: Logon sent, waiting for the answer
    ACTIVE = "active"                    # logged on
    LOGOUT_SENT = "logout_sent"          # our Logout is out, waiting for the answer


ADMIN_MSG_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
"""Session-level message types: never stored, replaced by gap fills on a resend."""

SESSION_REJECT_REASONS = {
    0: "Invalid tag number",
    1: "Required tag missing",
    2: "Tag not defined for this message type",
    3: "Undefined tag",
    4: "Tag specified without a value",
    5: "Value is incorrect (out of range) for this tag",
    6: "Incorrect data format for value",
    7: "Decryption problem",
    8: "Signature problem",
    9: "CompID problem",
    10: "SendingTime accuracy problem",
    11: "Invalid MsgType",
    12: "XML Validation error",
    13: "Tag appears more than once",
    14: "Tag specified out of required order",
    15: "Repeating group fields out of order",
    16: "Incorrect NumInGroup count for repeating group",
    17: "Non Data value includes field delimiter (SOH character)",
    99: "Other",
}
"""SessionRejectReason (373) codes and their standard texts. FIX 4.2 defines 0-11."""

BUSINESS_REJECT_REASONS = {
    0: "Other",
    1: "Unknown ID",
    2: "Unknown Security",
    3: "Unsupported Message Type",
    4: "Application not available",
    5: "Conditionally Required Field Missing",
    6: "Not authorized",
    7: "DeliverTo firm not available at this time",
}
"""BusinessRejectReason (380) codes and their standard texts."""

# -- the two dictionaries, reduced to what the session layer checks ---------------------------

_MSG_TYPES_42 = frozenset(
    "0 1 2 3 4 5 6 7 8 9 A B C D E F G H J K L M N P Q R S T V W X Y Z "
    "a b c d e f g h i j k l m".split())
_MSG_TYPES_44 = _MSG_TYPES_42 | frozenset(
    "n o p q r s t u v w x y z AA AB AC AD AE AF AG AH AI AJ AK AL AM AN AO AP AQ AR AS AT AU "
    "AV AW AX AY AZ BA BB BC BD BE BF BG BH".split())
_HEADER_42 = frozenset({8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129,
                        145, 43, 97, 52, 122, 212, 213, 347, 369, 370})
_HEADER_44 = (_HEADER_42 - {370}) | frozenset({627, 628, 629, 630})
_TRAILER = frozenset({93, 89, 10})
_UNDEFINED_42 = frozenset({101} | (set(range(220, 262)) - {223, 231}))
_UNDEFINED_44 = frozenset({20, 24, 46, 47, 51, 76, 86, 92, 101, 105, 109, 125, 166, 173, 174, 175,
                           176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 204, 205,
                           219, 261, 314, 319, 370, 439, 440, 449, 450, 465, 653, 685, 809, 831})
_MAX_TAG_42 = 446
_MAX_TAG_44 = 956
# Body fields of the admin messages (the Logon is checked for its required fields only, so that
# counterparties' extra logon fields do not refuse the session).
_ADMIN_BODY = {
    "0": frozenset({112}),
    "1": frozenset({112}),
    "2": frozenset({7, 16}),
    "3": frozenset({45, 371, 372, 373, 58, 354, 355}),
    "4": frozenset({123, 36}),
    "5": frozenset({58, 354, 355}),
}
_ADMIN_REQUIRED = {"1": (112,), "2": (7, 16), "3": (45,), "4": (36,), "A": (98, 108)}
_INT_TAGS = (7, 16, 36, 45, 98, 108, 371, 373, 383)
_BOOLEAN_TAGS = (43, 97, 123, 141)
_HEADER_BOOLEAN_TAGS = (43, 97)
_REGENERATED_HEADER = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 122, 10})

_CONSUMED = object()  # a queued sequence number whose message was already handled (rejected)
_NS = 1_000_000_000


def printable(raw: bytes) -> str:
    """Returns a FIX message with SOH shown as ``|`` (for logs)."""
    return raw.replace(b"\x01", b"|").decode("latin-1")


class Application:
    """What runs on top of a session; subclass it. Every callback runs on the reactor thread."""

    def on_logon(self, session: FixSession) -> None:
        """Called when the session is logged on."""

    def on_logout(self, session: FixSession, reason: str) -> None:
        """Called when a logged-on session ends (logout, disconnect, error); ``reason`` says
        why."""

    def on_message(self, session: FixSession, message: FixMessage) -> None:
        """Called with each application message, in sequence order, exactly once (a PossDup
        copy of a message already processed is dropped by the session). The default refuses it
        with a BusinessMessageReject (380=3 Unsupported Message Type)."""
        session.business_reject(message, 3, BUSINESS_REJECT_REASONS[3])

    def on_session_reject(self, session: FixSession, message: FixMessage) -> None:
        """Called with each session-level Reject (35=3) received."""


class _Problem(Exception):
    """A validation failure of an inbound message: reject reason, referenced tag, text."""

    def __init__(self, reason: int, ref_tag: int | None = None, text: str | None = None) -> None:
        self.reason = reason
        self.ref_tag = ref_tag
        self.text = text or SESSION_REJECT_REASONS.get(reason, "Other")
        super().__init__(self.text)


class _Unparsed:
    """The MsgType and MsgSeqNum of a message that does not parse, for its Reject."""

    __slots__ = ("msg_type", "seq_num")

    def __init__(self, msg_type: str, seq_num: int) -> None:
        self.msg_type = msg_type
        self.seq_num = seq_num

    def __contains__(self, tag: int) -> bool:
        return tag == 34


class FixSession:
    """One FIX session: sequence numbers, store, logon/logout, heartbeats, recovery."""

    def __init__(self, config: SessionConfig, application: Application | None = None,
                 store: MessageStore | None = None, *,
                 clock: Callable[[], int] = time.time_ns, codec: Any = None) -> None:
        self.config = config
        # the codec: sor.fix.codec (C++); the FIX benchmark passes a simplefix one as its peer
        codec = _codec if codec is None else codec
        self._encode = codec.encode
        self._parse = codec.parse
        self._parse_utc_timestamp = codec.parse_utc_timestamp
        self._framer_type = codec.FixFramer
        self.application = application if application is not None else Application()
        self.name = config.name
        self.logger = logging.getLogger(f"sor.fix.{config.name}")
        self._owns_store = store is None
        self.store = store if store is not None else MessageStore(config.resolved_store_path,
                                                                  config.store_sync)
        self._clock = clock
        self.state = SessionState.DISCONNECTED
        self.reconnect = True
        """Initiators: whether the reactor reconnects after a disconnect (False after
        :meth:`logout`; :meth:`Reactor.connect` sets it again)."""
        self._begin = config.begin_string
        self._sender = config.sender_comp_id
        self._target = config.target_comp_id
        self._initiator = config.is_initiator
        fix44 = config.begin_string == "FIX.4.4"
        self._fix44 = fix44
        self._msg_types = _MSG_TYPES_44 if fix44 else _MSG_TYPES_42
        self._header_tags = _HEADER_44 if fix44 else _HEADER_42
        self._max_tag = _MAX_TAG_44 if fix44 else _MAX_TAG_42
        self._undefined_tags = _UNDEFINED_44 if fix44 else _UNDEFINED_42
        self._tolerance_ns = int(config.sending_time_tolerance_s * _NS)
        self._heartbeat_s = config.heartbeat_interval_s
        self._heartbeat_ns = config.heartbeat_interval_s * _NS
        self._next_sender = self.store.next_sender_seq_num
        self._next_target = self.store.next_target_seq_num
        self._send_bytes: Callable[[bytes], Any] | None = None
        self._close_transport: Callable[[], Any] | None = None
        self._framer: FixFramer | None = None
        self._queue: dict[int, Any] = {}
        self._resend_range: tuple[int, int] | None = None
        self._logon_received = False
        self._logon_seq_num = 0
        self._sent_reset = False
        self._test_requests = 0
        self._last_sent_ns = 0
        self._last_received_ns = 0
        self.received_ns = 0
        """When the bytes being processed arrived (epoch ns: the reactor's time for the pass
        that found the socket readable); the router's order-path clock starts here."""
        self._state_since_ns = 0
        self._unsent_from = 0
        # While inbound bytes are processed, what we send is held here and written once the
        # inbound sequence numbers are persisted: a peer that saw our answer to a message
        # never has to send that message again, even if we are killed right after.
        self._deferred: list[bytes] | None = None
        self._closed = False

    # -- public state -------------------------------------------------------------------------

    @property
    def next_sender_seq_num(self) -> int:
        """Returns the sequence number of the next message we send."""
        return self._next_sender

    @property
    def next_target_seq_num(self) -> int:
        """Returns the sequence number we expect next from the peer."""
        return self._next_target

    @property
    def is_logged_on(self) -> bool:
        """Returns True while the session is logged on (ACTIVE)."""
        return self.state is SessionState.ACTIVE

    @property
    def connected(self) -> bool:
        """Returns True while a transport is attached."""
        return self._send_bytes is not None

    @property
    def heartbeat_interval_s(self) -> int:
        """Returns the HeartBtInt in force (the acceptor takes it from the peer's Logon)."""
        return self._heartbeat_s

    # -- sending ------------------------------------------------------------------------------

    def send(self, msg_type: str, body: Body) -> int:
        """Stores an application message, then sends it when logged on; returns its sequence
        number. While not logged on the message is only stored: it reaches the peer by resend
        after the next logon."""
        seq_num = self._next_sender
        now = self._clock()
        raw = self._encode(self._begin, msg_type, self._sender, self._target, seq_num, now, body)
        self.store.append(seq_num, raw)
        self._next_sender = seq_num + 1
        if self.state is SessionState.ACTIVE:
            send_bytes = self._send_bytes
            if send_bytes is not None:
                deferred = self._deferred
                if deferred is None:
                    send_bytes(raw)
                else:
                    deferred.append(raw)
                self._last_sent_ns = now
                if self.logger.isEnabledFor(logging.DEBUG):
                    self.logger.debug("out %s", printable(raw))
        elif not self._unsent_from:
            self._unsent_from = seq_num
        return seq_num

    def reject(self, message: FixMessage, reason: int, text: str,
               ref_tag: int | None = None) -> None:
        """Sends a session-level Reject (35=3) of ``message``: RefSeqNum, RefTagID, RefMsgType,
        SessionRejectReason (omitted in FIX 4.2 for codes above 11) and Text."""
        body: list[tuple[int, FieldValue]] = []
        if message.seq_num or 34 in message:
            body.append((45, message.seq_num))
        if text:
            body.append((58, text))
        if ref_tag is not None:
            body.append((371, ref_tag))
        if message.msg_type:
            body.append((372, message.msg_type))
        if self._fix44 or reason <= 11:
            body.append((373, reason))
        self.logger.warning("rejecting message %d (35=%s): %s%s", message.seq_num,
                            message.msg_type, text,
                            f" (tag {ref_tag})" if ref_tag is not None else "")
        self._send_admin("3", body, self._clock())

    def business_reject(self, message: FixMessage, reason: int, text: str,
                        ref_tag: int | None = None) -> None:
        """Sends a BusinessMessageReject (35=j) of ``message``: RefSeqNum, RefMsgType,
        BusinessRejectReason, Text, and BusinessRejectRefID (379) = the value of ``ref_tag`` in
        ``message`` (e.g. 11 for the ClOrdID) when given and present. It is an application
        message: stored and resent like any other."""
        body: list[tuple[int, FieldValue]] = []
        if message.seq_num or 34 in message:
            body.append((45, message.seq_num))
        if text:
            body.append((58, text))
        body.append((372, message.msg_type))
        if ref_tag is not None:
            ref_value = message.get(ref_tag)
            if ref_value:
                body.append((379, ref_value))
        body.append((380, reason))
        self.logger.warning("business-rejecting message %d (35=%s): %s", message.seq_num,
                            message.msg_type, text)
        self.send("j", body)

    def logout(self, text: str = "") -> None:
        """Starts a logout: sends Logout (58=text) and waits ``logout_timeout_s`` for the answer
        before disconnecting. Initiators then stay down (``reconnect`` becomes False)."""
        self.reconnect = False
        if self.state is SessionState.ACTIVE:
            self._send_logout(text, self._clock())
        elif self.connected and self.state is not SessionState.LOGOUT_SENT:
            self.disconnect(text or "logout before logon completed")

    def disconnect(self, reason: str) -> None:
        """Closes the connection now (what was already sent is flushed by the transport)."""
        if self._send_bytes is None and self.state is SessionState.DISCONNECTED:
            return
        self.logger.info("disconnecting: %s", reason)
        self._flush_deferred()
        close = self._close_transport
        self._send_bytes = None
        self._close_transport = None
        try:
            self._on_disconnected(reason)
        finally:
            if close is not None:
                close()

    def reset(self) -> None:
        """Starts a new session: sequence numbers 1 and 1, stored messages dropped. Only while
        disconnected (a connected session resets through a Logon with 141=Y)."""
        if self.connected:
            raise FixSessionError("cannot reset sequence numbers while connected",
                                  session=self.name)
        self._reset_store("reset requested")

    # -- transport events ---------------------------------------------------------------------

    def on_connect(self, send_bytes: Callable[[bytes], Any], now_ns: int | None = None,
                   close: Callable[[], Any] | None = None) -> None:
        """Attaches a new connection: the initiator sends its Logon, the acceptor waits."""
        if self._send_bytes is not None:
            raise FixSessionError("already connected", session=self.name)
        now = self._clock() if now_ns is None else now_ns
        self._send_bytes = send_bytes
        self._close_transport = close
        self._framer = self._framer_type(self.config.max_message_bytes)
        self._queue.clear()
        self._resend_range = None
        self._logon_received = False
        self._sent_reset = False
        self._test_requests = 0
        self._last_sent_ns = now
        self._last_received_ns = now
        self._state_since_ns = now
        self._heartbeat_s = self.config.heartbeat_interval_s
        self._heartbeat_ns = self._heartbeat_s * _NS
        self.logger.info("connected (%s, next sender %d, next target %d)", self.config.role,
                         self._next_sender, self._next_target)
        if self._initiator:
            self._send_logon(now)
        else:
            self.state = SessionState.AWAITING_LOGON

    def on_bytes(self, data: bytes, now_ns: int | None = None) -> None:
        """Takes bytes received on the connection and processes every complete message."""
        framer = self._framer
        if framer is None:
            return
        now = self._clock() if now_ns is None else now_ns
        self.received_ns = now
        self._deferred = []
        try:
            for status, frame in framer.feed(data):
                if self._send_bytes is None:
                    return  # disconnected while processing this chunk
                if status != FrameStatus.OK:
                    self._on_bad_frame(FrameStatus(status).name, frame)
                    continue
                try:
                    message = self._parse(frame)
                except FixParseError as error:
                    self._on_unparseable(frame, error, now)
                    continue
                if self.logger.isEnabledFor(logging.DEBUG):
                    self.logger.debug("in  %s", printable(frame))
                self._process(message, now)
        finally:
            self._flush_deferred()

    def on_timer(self, now_ns: int | None = None) -> None:
        """Runs the clocks: logon and logout timeouts, heartbeats and test requests."""
        state = self.state
        if state is SessionState.DISCONNECTED:
            return
        now = self._clock() if now_ns is None else now_ns
        if state is SessionState.AWAITING_LOGON or state is SessionState.LOGON_SENT:
            if now - self._state_since_ns >= self.config.logon_timeout_s * _NS:
                self.disconnect("timed out waiting for the Logon")
            return
        if state is SessionState.LOGOUT_SENT:
            if now - self._state_since_ns >= self.config.logout_timeout_s * _NS:
                self.disconnect("timed out waiting for the Logout answer")
            return
        heartbeat = self._heartbeat_ns
        if heartbeat <= 0:
            return
        silence = now - self._last_received_ns
        if silence >= 2.4 * heartbeat:
            self.disconnect(f"no message from the peer for {silence / _NS:.1f} s "
                            f"(HeartBtInt {self._heartbeat_s} s, test request unanswered)")
        elif silence >= 1.2 * heartbeat * (self._test_requests + 1):
            self._test_requests += 1
            self.logger.info("no message for %.1f s: sending TestRequest", silence / _NS)
            self._send_admin("1", [(112, "TEST")], now)
        elif now - self._last_sent_ns >= heartbeat:
            self._send_admin("0", (), now)

    def on_disconnect(self, now_ns: int | None = None, reason: str = "connection closed") -> None:
        """Detaches the connection after the transport lost it (idempotent)."""
        if self._send_bytes is None and self.state is SessionState.DISCONNECTED:
            return
        self._send_bytes = None
        self._close_transport = None
        self.logger.info("disconnected: %s", reason)
        self._on_disconnected(reason)

    def close(self) -> None:
        """Disconnects and closes the store when the session opened it (idempotent)."""
        if self._closed:
            return
        self.disconnect("session closed")
        self._closed = True
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> FixSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"FixSession({self.name!r}, {self.config.role}, {self.state.name}, "
                f"next_sender={self._next_sender}, next_target={self._next_target})")

    # -- outbound helpers ---------------------------------------------------------------------

    def _write(self, raw: bytes, now: int) -> None:
        send_bytes = self._send_bytes
        if send_bytes is None:
            return
        if self._deferred is None:
            send_bytes(raw)
        else:
            self._deferred.append(raw)
        self._last_sent_ns = now
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("out %s", printable(raw))

    def _flush_deferred(self) -> None:
        deferred = self._deferred
        self._deferred = None
        if deferred and self._send_bytes is not None:
            self._send_bytes(deferred[0] if len(deferred) == 1 else b"".join(deferred))

    def _send_admin(self, msg_type: str, body: Iterable[tuple[int, FieldValue]], now: int) -> int:
        if self._send_bytes is None:
            self.logger.warning("not connected: 35=%s not sent", msg_type)
            return 0
        seq_num = self._next_sender
        raw = self._encode(self._begin, msg_type, self._sender, self._target, seq_num, now,
                           list(body))
        self._next_sender = seq_num + 1
        self.store.set_next_sender_seq_num(seq_num + 1)
        self._write(raw, now)
        return seq_num

    def _send_logon(self, now: int) -> None:
        body: list[tuple[int, FieldValue]] = [(98, 0), (108, self._heartbeat_s)]
        if self.config.reset_on_logon:
            self._reset_store("reset_on_logon")
            self._sent_reset = True
            body.append((141, "Y"))
        self.state = SessionState.LOGON_SENT
        self._state_since_ns = now
        self._logon_seq_num = self._send_admin("A", body, now)
        self.logger.info("Logon sent (HeartBtInt %d%s)", self._heartbeat_s,
                         ", ResetSeqNumFlag=Y" if self._sent_reset else "")

    def _send_logout(self, text: str, now: int) -> None:
        self.state = SessionState.LOGOUT_SENT
        self._state_since_ns = now
        self._send_admin("5", [(58, text)] if text else (), now)
        self.logger.info("Logout sent%s", f": {text}" if text else "")

    def _logout_after_error(self, text: str, now: int) -> None:
        """Logout for a protocol error; the session ends on the answer or the timeout."""
        if self.state is SessionState.ACTIVE:
            self._send_logout(text, now)

    def _logout_and_disconnect(self, text: str, now: int) -> None:
        self.logger.warning("%s: Logout and disconnect", text)
        self._send_admin("5", [(58, text)], now)
        self.disconnect(text)

    def _send_gap_fill(self, seq_num: int, new_seq_num: int, now: int) -> None:
        raw = self._encode(self._begin, "4", self._sender, self._target, seq_num, now,
                     [(36, new_seq_num), (123, "Y")], poss_dup=True, orig_sending_time_ns=now)
        self._write(raw, now)
        self.logger.info("SequenceReset-GapFill sent: %d -> %d", seq_num, new_seq_num)

    def _resend(self, seq_num: int, raw: bytes, now: int) -> bool:
        try:
            original = self._parse(raw)
            orig_ns = self._parse_utc_timestamp(original.get(52, ""))
        except (FixParseError, FixFieldError) as error:
            self.logger.error("stored message %d cannot be resent (%s); gap-filled instead",
                              seq_num, error)
            return False
        body = [(tag, value) for tag, value in original.fields()
                if tag not in _REGENERATED_HEADER]
        resent = self._encode(self._begin, original.msg_type, self._sender, self._target,
                              seq_num, now, body, poss_dup=True, orig_sending_time_ns=orig_ns)
        self._write(resent, now)
        return True

    def _resend_range_to_peer(self, begin: int, end: int, now: int) -> None:
        cursor = begin
        for seq_num, raw in self.store.get_messages(begin, end):
            if seq_num > cursor:
                self._send_gap_fill(cursor, seq_num, now)
            if not self._resend(seq_num, raw, now):
                self._send_gap_fill(seq_num, seq_num + 1, now)
            cursor = seq_num + 1
        if cursor <= end:
            self._send_gap_fill(cursor, end + 1, now)

    def _request_resend(self, seq_num: int, now: int) -> None:
        pending = self._resend_range
        if pending is not None and seq_num >= pending[0]:
            if seq_num - 1 > pending[1]:
                self._resend_range = (pending[0], seq_num - 1)
            self.logger.info("MsgSeqNum %d too high (expecting %d); ResendRequest from %d "
                             "already sent", seq_num, self._next_target, pending[0])
            return
        begin = self._next_target
        self.logger.warning("MsgSeqNum too high, expecting %d but received %d: ResendRequest "
                            "%d..0", begin, seq_num, begin)
        self._send_admin("2", [(7, begin), (16, 0)], now)
        self._resend_range = (begin, seq_num - 1)

    # -- inbound ------------------------------------------------------------------------------

    def _on_bad_frame(self, what: str, frame: bytes) -> None:
        preview = printable(frame[:200]) + ("..." if len(frame) > 200 else "")
        if not self._logon_received:
            self.logger.warning("invalid message before logon (%s): %s", what, preview)
            self.disconnect(f"invalid message before logon ({what})")
            return
        self.logger.warning("ignored %s message (%d bytes; sequence number not consumed): %s",
                            what, len(frame), preview)

    def _on_unparseable(self, frame: bytes, error: Exception, now: int) -> None:
        """A frame with a right BodyLength and CheckSum that does not parse. When its only fault
        is a tag number that is an integer but not a valid one (0, -1: 14a) and its header is
        ours, it gets Reject reason 0 and consumes its number; otherwise it is garbled (2d)."""
        fields: dict[bytes, bytes] = {}
        bad_tag: int | None = None
        for item in frame.split(b"\x01")[:-1]:
            tag, equals, value = item.partition(b"=")
            if not equals:
                break
            if tag.isdigit() and not tag.startswith(b"0"):
                fields.setdefault(tag, value)
                continue
            try:
                number = int(tag)
            except ValueError:
                break
            if bad_tag is None:
                bad_tag = number
        else:
            seq_text = fields.get(b"34", b"")
            if (bad_tag is not None and self._logon_received and seq_text.isdigit()
                    and fields.get(b"8", b"").decode("latin-1") == self._begin
                    and fields.get(b"49", b"").decode("latin-1") == self._target
                    and fields.get(b"56", b"").decode("latin-1") == self._sender
                    and b"35" in fields):
                self._reject_inbound(_Unparsed(fields[b"35"].decode("latin-1"), int(seq_text)),
                                     _Problem(0, bad_tag), now)
                return
        self._on_bad_frame(f"GARBLED ({error})", frame)

    def _set_next_target(self, seq_num: int) -> None:
        self._next_target = seq_num
        self.store.set_next_target_seq_num(seq_num)

    def _process(self, message: FixMessage, now: int) -> None:
        try:
            if not self._admit(message, now):
                return
            self._sequence(message, now, queued=False)
            # messages queued behind a gap that is now filled
            queue = self._queue
            while queue and self._send_bytes is not None:
                queued = queue.pop(self._next_target, None)
                if queued is None:
                    break
                if queued is _CONSUMED:
                    self._set_next_target(self._next_target + 1)
                else:
                    self.logger.info("processing queued message %d", queued.seq_num)
                    self._sequence(queued, now, queued=True)
            if self._resend_range is not None and self._next_target > self._resend_range[1]:
                self.logger.info("ResendRequest %d..%d satisfied", *self._resend_range)
                self._resend_range = None
        except Exception:  # an application or store error must not kill the reactor
            self.logger.exception("error while processing message %d (35=%s)",
                                  message.seq_num, message.msg_type)

    def _admit(self, message: FixMessage, now: int) -> bool:
        """Runs the checks that come before sequencing; returns False when the message was
        dealt with (ignored, rejected, or the session ended)."""
        raw = message.raw
        # 2t: BeginString, BodyLength, MsgType must be the first three fields, or it is garbled.
        msg_type = message.msg_type
        third = raw.find(b"\x01", raw.find(b"\x01") + 1) + 1
        if not msg_type or not raw.startswith(b"35=", third):
            self._on_bad_frame("GARBLED (MsgType is not the third field)", raw)
            return False
        seq_text = message.get(34)
        if seq_text is not None and not seq_text.isdigit():
            self._on_bad_frame("GARBLED (MsgSeqNum is not a number)", raw)
            return False

        if not self._logon_received:
            if msg_type == "5" and self._initiator:
                self.logger.warning("Logon refused by the peer: %s", message.get(58, ""))
                self.disconnect(f"Logon refused: {message.get(58, '')}")
                return False
            if msg_type != "A":
                # 1S-e / 1B-e
                self.logger.error("first message not a logon (35=%s): %s", msg_type,
                                  printable(raw))
                if self._initiator:
                    self._logout_and_disconnect("First message not a logon", now)
                else:
                    self.disconnect("first message not a logon")
                return False

        if message.begin_string != self._begin:
            # 2i (QuickFIX: Logout, then wait for the answer)
            self.logger.warning("BeginString %s, expected %s", message.begin_string, self._begin)
            if not self._logon_received:
                self._logout_and_disconnect("Incorrect BeginString", now)
            elif msg_type == "5":
                self._on_logout(message, now)
            else:
                if message.seq_num == self._next_target:
                    self._set_next_target(self._next_target + 1)
                self._logout_after_error("Incorrect BeginString", now)
            return False

        if seq_text is None:
            self._logout_and_disconnect("MsgSeqNum(34) missing", now)
            return False

        try:
            self._check_structure(message)
            if 52 not in message:
                raise _Problem(1, 52)
            try:
                sending_time = self._parse_utc_timestamp(message.get(52))
            except FixFieldError:
                raise _Problem(6, 52) from None
        except _Problem as problem:
            if not self._logon_received:
                self._logout_and_disconnect(f"Invalid Logon: {problem.text}"
                                            + (f" ({problem.ref_tag})"
                                               if problem.ref_tag is not None else ""), now)
            else:
                self._reject_inbound(message, problem, now)
            return False

        if message.sender_comp_id != self._target or message.target_comp_id != self._sender:
            # 2k (1S-c on the acceptor is handled by the reactor: no session matches)
            self.logger.warning("CompID problem: 49=%s 56=%s, expected 49=%s 56=%s",
                                message.sender_comp_id, message.target_comp_id, self._target,
                                self._sender)
            if not self._logon_received:
                self._logout_and_disconnect("CompID problem", now)
            else:
                self._reject_inbound(message, _Problem(9), now)
                self._logout_after_error("CompID problem", now)
            return False

        if abs(now - sending_time) > self._tolerance_ns:
            # 2o / 1S-d
            self.logger.warning("SendingTime %s is %.1f s away from now (tolerance %.0f s)",
                                message.get(52), (sending_time - now) / _NS,
                                self._tolerance_ns / _NS)
            if not self._logon_received:
                self._logout_and_disconnect("SendingTime accuracy problem", now)
            else:
                self._reject_inbound(message, _Problem(10), now)
                self._logout_after_error("SendingTime accuracy problem", now)
            return False

        self._last_received_ns = now
        self._test_requests = 0
        return True

    def _check_structure(self, message: FixMessage) -> None:
        """Raises _Problem for the first structural error (14a-h, 2q)."""
        msg_type = message.msg_type
        admin = msg_type in ADMIN_MSG_TYPES
        if admin:
            self._check_fields(message)
        else:
            self._check_application_fields(message)
        for tag in (49, 56):
            if tag not in message:
                raise _Problem(1, tag)
        if msg_type not in self._msg_types and not msg_type.startswith("U"):
            raise _Problem(11)
        for tag in _BOOLEAN_TAGS if admin else _HEADER_BOOLEAN_TAGS:
            value = message.get(tag)
            if value is not None and value not in ("Y", "N"):
                raise _Problem(5, tag)
        if admin:
            for tag in _ADMIN_REQUIRED.get(msg_type, ()):
                if tag not in message:
                    raise _Problem(1, tag)
            for tag in _INT_TAGS:
                value = message.get(tag)
                if value is not None and not value.isdigit():
                    raise _Problem(6, tag)

    def _check_application_fields(self, message: FixMessage) -> None:
        """The checks of :meth:`_check_fields` that apply to application messages, in the
        fewest Python steps (the order path; the codec already refused tags that are not
        positive numbers)."""
        header = self._header_tags
        seen: set[int] = set()
        in_body = False
        for tag, value in message.fields()[3:]:
            if not value:
                raise _Problem(4, tag)
            if tag in header:
                if in_body:
                    raise _Problem(14, tag)
                if tag in seen:
                    raise _Problem(13, tag)
                seen.add(tag)
            else:
                in_body = True

    def _check_fields(self, message: FixMessage) -> None:
        """Field by field: tag numbers, empty values, header before body, repeated tags, and
        for admin messages the tags each type allows."""
        header = self._header_tags
        admin_body = _ADMIN_BODY.get(message.msg_type)
        seen_header: set[int] = set()
        seen_body: set[int] = set()
        in_body = False
        fields = message.fields()
        for index in range(3, len(fields)):
            tag, value = fields[index]
            if tag <= 0:
                raise _Problem(0, tag)
            if not value:
                raise _Problem(4, tag)
            if tag in header:
                if in_body:
                    raise _Problem(14, tag)
                if tag in seen_header:
                    raise _Problem(13, tag)
                seen_header.add(tag)
            elif tag in _TRAILER:
                if tag == 10 and index != len(fields) - 1:
                    raise _Problem(14, tag)
            else:
                in_body = True
                if admin_body is not None:
                    if tag not in admin_body:
                        defined = tag <= self._max_tag and tag not in self._undefined_tags
                        raise _Problem(2 if defined else 0, tag)
                    if tag in seen_body:
                        raise _Problem(13, tag)
                    seen_body.add(tag)

    def _reject_inbound(self, message: FixMessage | _Unparsed, problem: _Problem,
                        now: int) -> None:
        """Rejects an inbound message for a session-level error; the message consumes its
        sequence number (except Logon and SequenceReset)."""
        self.reject(message, problem.reason, problem.text, problem.ref_tag)
        if message.msg_type in ("A", "4"):
            return
        seq_num = message.seq_num
        if seq_num == self._next_target:
            self._set_next_target(seq_num + 1)
        elif seq_num > self._next_target and self._logon_received:
            self._queue[seq_num] = _CONSUMED
            self._request_resend(seq_num, now)

    def _sequence(self, message: FixMessage, now: int, queued: bool) -> None:
        """Sequence-number handling and dispatch of an admitted message."""
        msg_type = message.msg_type
        seq_num = message.seq_num
        if msg_type == "4" and message.get(123) != "Y":
            self._on_sequence_reset(message, now)           # 11: ignores MsgSeqNum
            return
        if msg_type == "5":
            self._on_logout(message, now)                   # 13: no sequence check
            return
        if msg_type == "A" and not queued:
            self._on_logon(message, now)
            return
        expected = self._next_target
        if seq_num > expected:
            if msg_type == "2":
                self._answer_resend_request(message, now)   # 20: answer at once, count later
                self._queue[seq_num] = _CONSUMED
            else:
                self._queue[seq_num] = message
            self._request_resend(seq_num, now)              # 2b, 10a
            return
        if seq_num < expected:
            if not message.poss_dup:                        # 2c, 10d
                self._logout_and_disconnect(
                    f"MsgSeqNum too low, expecting {expected} but received {seq_num}", now)
                return
            if msg_type != "4" and not self._check_orig_sending_time(message, now):
                return
            self.logger.info("PossDup message %d (35=%s) already received: ignored", seq_num,
                             msg_type)                      # 2e, 10c
            return
        if message.poss_dup and msg_type != "4" and not self._check_orig_sending_time(message,
                                                                                      now):
            return
        if msg_type == "A":
            self._set_next_target(expected + 1)             # queued Logon
        elif msg_type == "0":
            self._set_next_target(expected + 1)
        elif msg_type == "1":
            self._send_admin("0", [(112, message.get(112))], now)   # 4b
            self._set_next_target(expected + 1)
        elif msg_type == "2":
            if not queued:
                self._answer_resend_request(message, now)   # 8
            self._set_next_target(expected + 1)
        elif msg_type == "3":
            self.logger.warning("session Reject received: RefSeqNum %s, reason %s: %s",
                                message.get(45), message.get(373), message.get(58, ""))
            self._set_next_target(expected + 1)             # 7
            self.application.on_session_reject(self, message)
        elif msg_type == "4":                               # gap fill, 10b
            new_seq_num = int(message.get(36))
            if new_seq_num <= seq_num:
                self.reject(message, 5, f"Attempt to lower sequence number, invalid value "
                                        f"NewSeqNo(36)={new_seq_num}", 36)
                return
            self.logger.info("SequenceReset-GapFill: %d -> %d", expected, new_seq_num)
            self._set_next_target(new_seq_num)
        else:
            try:
                self.application.on_message(self, message)
            finally:
                self._set_next_target(expected + 1)

    def _check_orig_sending_time(self, message: FixMessage, now: int) -> bool:
        """2f/2g: a PossDup message needs an OrigSendingTime no later than its SendingTime."""
        orig = message.get(122)
        if orig is None:
            self._reject_inbound(message, _Problem(1, 122), now)
            return False
        try:
            orig_ns = self._parse_utc_timestamp(orig)
        except FixFieldError:
            self._reject_inbound(message, _Problem(6, 122), now)
            return False
        if orig_ns > self._parse_utc_timestamp(message.get(52)):
            self._reject_inbound(message, _Problem(10), now)
            self._logout_after_error("SendingTime accuracy problem", now)
            return False
        return True

    def _on_logon(self, message: FixMessage, now: int) -> None:
        seq_num = message.seq_num
        reset_requested = message.get(141) == "Y"
        heartbeat_s = int(message.get(108))
        if self._logon_received:
            if not reset_requested:
                self.logger.error("Logon received while logged on (141 not Y)")
                self.disconnect("Logon received while logged on")
                return
            # a Logon with 141=Y during the session resets both sides to 1
            self.logger.warning("in-session Logon with ResetSeqNumFlag=Y: sequence numbers "
                                "reset to 1")
            self._reset_store("in-session ResetSeqNumFlag=Y")
            self._send_admin("A", [(98, 0), (108, self._heartbeat_s), (141, "Y")], now)
            self._set_next_target(seq_num + 1 if seq_num == 1 else 2)
            return
        if self._initiator:
            if reset_requested and not self._sent_reset:
                self.logger.warning("Logon answer has ResetSeqNumFlag=Y: sequence numbers reset")
                self._reset_store("peer's ResetSeqNumFlag=Y")
                self._send_admin("A", [(98, 0), (108, self._heartbeat_s), (141, "Y")], now)
        else:
            if reset_requested or self.config.reset_on_logon:
                self._reset_store("ResetSeqNumFlag=Y" if reset_requested else "reset_on_logon")
        expected = self._next_target
        if seq_num < expected and not reset_requested:
            self._logout_and_disconnect(
                f"MsgSeqNum too low, expecting {expected} but received {seq_num}", now)
            return
        if not self._initiator:
            self._heartbeat_s = heartbeat_s
            self._heartbeat_ns = heartbeat_s * _NS
            body: list[tuple[int, FieldValue]] = [(98, 0), (108, heartbeat_s)]
            if reset_requested:
                body.append((141, "Y"))
            self._logon_seq_num = self._send_admin("A", body, now)
        self._logon_received = True
        self.state = SessionState.ACTIVE
        self._state_since_ns = now
        self.logger.info("logged on (HeartBtInt %d s, next sender %d, peer's Logon %d)",
                         self._heartbeat_s, self._next_sender, seq_num)
        if seq_num > expected:
            self._queue[seq_num] = _CONSUMED                # 1S-a / 1B-c: too high
            self._request_resend(seq_num, now)
        else:
            self._set_next_target(expected + 1)
        self._send_unsent(now)
        self.application.on_logon(self)

    def _send_unsent(self, now: int) -> None:
        """Messages stored after our Logon while it was unanswered go out now (PossDup);
        those stored before it reach the peer through its ResendRequest."""
        first = self._unsent_from
        self._unsent_from = 0
        if not first:
            return
        first = max(first, self._logon_seq_num + 1)
        if first < self._next_sender:
            for seq_num, raw in self.store.get_messages(first, self._next_sender - 1):
                self._resend(seq_num, raw, now)

    def _on_logout(self, message: FixMessage, now: int) -> None:
        text = message.get(58, "")
        if message.seq_num == self._next_target:
            self._set_next_target(self._next_target + 1)
        if self.state is SessionState.LOGOUT_SENT:
            self.logger.info("Logout answer received%s", f": {text}" if text else "")
        else:
            self.logger.info("Logout received%s: answering", f": {text}" if text else "")
            self._send_admin("5", (), now)                  # 13b
        if self.config.reset_on_logout:
            self._reset_store("reset_on_logout")
        self.disconnect(f"logout{': ' + text if text else ''}")

    def _on_sequence_reset(self, message: FixMessage, now: int) -> None:
        new_seq_num = int(message.get(36))
        expected = self._next_target
        if new_seq_num > expected:                          # 11a
            self.logger.warning("SequenceReset-Reset: next target %d -> %d", expected,
                                new_seq_num)
            self._set_next_target(new_seq_num)
            for seq_num in [seq for seq in self._queue if seq < new_seq_num]:
                del self._queue[seq_num]
        elif new_seq_num == expected:                       # 11b
            self.logger.warning("SequenceReset-Reset to %d: already expected", new_seq_num)
        else:                                               # 11c
            self.reject(message, 5, SESSION_REJECT_REASONS[5], 36)

    def _answer_resend_request(self, message: FixMessage, now: int) -> None:
        begin = int(message.get(7))
        end = int(message.get(16))
        last_sent = self._next_sender - 1
        if end == 0 or end > last_sent:
            end = last_sent
        begin = max(begin, 1)
        self.logger.info("ResendRequest %s..%s received: resending %d..%d", message.get(7),
                         message.get(16), begin, end)
        if begin > end:
            return
        self._resend_range_to_peer(begin, end, now)

    def _reset_store(self, reason: str) -> None:
        self.store.reset()
        self._next_sender = 1
        self._next_target = 1
        self._queue.clear()
        self._unsent_from = 0
        self.logger.info("sequence numbers reset to 1 (%s)", reason)

    def _on_disconnected(self, reason: str) -> None:
        was_logged_on = self._logon_received
        self.state = SessionState.DISCONNECTED
        self._framer = None
        self._queue.clear()
        self._resend_range = None
        self._logon_received = False
        self._sent_reset = False
        self._test_requests = 0
        if self.config.reset_on_disconnect:
            self._reset_store("reset_on_disconnect")
        if was_logged_on:
            try:
                self.application.on_logout(self, reason)
            except Exception:
                self.logger.exception("Application.on_logout raised")


__all__ = ["FixSession", "Application", "SessionState", "ADMIN_MSG_TYPES",
           "SESSION_REJECT_REASONS", "BUSINESS_REJECT_REASONS", "printable"]
