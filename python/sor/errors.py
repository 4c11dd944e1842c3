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


class ModelError(SorError):
    """A model could not be loaded, validated or used; the running model is unchanged."""


class ModelFileError(ModelError):
    """A model file cannot be read or is not a valid ONNX protobuf (corrupt, truncated).

    ``source`` names the file (or ``"<bytes>"``), ``reason`` what went wrong.
    """

    def __init__(self, reason: str, *, source: str = "<bytes>") -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,), {"source": self.source})


class NotATreeModelError(ModelError):
    """The ONNX graph is not one TreeEnsembleClassifier/Regressor node of domain ai.onnx.ml.

    ``op_types`` lists the operators found (``domain:op_type``).
    """

    def __init__(self, message: str, *, op_types: tuple[str, ...] = ()) -> None:
        self.op_types = tuple(op_types)
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0],), {"op_types": self.op_types})


class InvalidModelError(ModelError):
    """The model breaks a rule: ``onnx.checker`` fails, or its trees are not proper trees.

    ``reason`` names the rule (``onnx_checker``, ``invalid_arrays``, ``invalid_node``,
    ``not_a_tree``, ``invalid_feature``, ``non_finite``, ``invalid_leaf``, ...); ``tree_id``
    and ``node_id`` locate it when they apply.
    """

    def __init__(self, message: str, *, reason: str = "", tree_id: int | None = None,
                 node_id: int | None = None) -> None:
        self.reason = reason
        self.tree_id = tree_id
        self.node_id = node_id
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0],),
                {"reason": self.reason, "tree_id": self.tree_id, "node_id": self.node_id})


class UnsupportedModelError(InvalidModelError):
    """A valid model uses something the evaluator does not run: multi-class, several targets,
    BRANCH_EQ/BRANCH_NEQ, missing-value tracking on a branch, a post transform other than
    NONE/LOGISTIC, or trees deeper than ``sor._core.MAX_TREE_DEPTH``."""


class ModelInputError(ModelError):
    """The model's input is not float32 [N, F] with F the number of features of the schema."""


class SchemaMismatchError(ModelError):
    """The model was trained on another feature schema (or says nothing about it).

    ``expected_hash`` is the serving schema's hash; ``model_hash`` the one in the model's
    ``sor.feature_schema_hash`` metadata (``None`` when missing).
    """

    def __init__(self, expected_hash: str | None, model_hash: str | None) -> None:
        self.expected_hash = expected_hash
        self.model_hash = model_hash
        if model_hash is None:
            message = (f"model has no sor.feature_schema_hash metadata; the serving feature "
                       f"schema is {expected_hash}")
        else:
            message = (f"model was trained on feature schema {model_hash}, the serving feature "
                       f"schema is {expected_hash}")
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.expected_hash, self.model_hash))


class ModelParityError(ModelError):
    """sor's evaluator and onnxruntime disagree on a reference row by more than the tolerance.

    ``row_index`` is the worst row, ``row`` its values, ``sor_value`` and
    ``onnxruntime_value`` the two predictions, ``difference`` their absolute difference.
    """

    def __init__(self, row_index: int, row: Any, sor_value: float, onnxruntime_value: float,
                 tolerance: float) -> None:
        self.row_index = int(row_index)
        self.row = row
        self.sor_value = float(sor_value)
        self.onnxruntime_value = float(onnxruntime_value)
        self.difference = abs(self.sor_value - self.onnxruntime_value)
        self.tolerance = float(tolerance)
        super().__init__(
            f"evaluator disagrees with onnxruntime on reference row {self.row_index}: sor "
            f"{self.sor_value!r}, onnxruntime {self.onnxruntime_value!r} (difference "
            f"{self.difference:.3g} > {self.tolerance:.3g})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.row_index, self.row, self.sor_value, self.onnxruntime_value,
                             self.tolerance))


class FeatureValueError(ModelError, ValueError):
    """A feature value is NaN or infinite; models only take finite features.

    ``row`` and ``column`` locate it, ``feature`` names it (``None`` when names are unknown).
    """

    def __init__(self, row: int, column: int, value: float, feature: str | None = None) -> None:
        self.row = int(row)
        self.column = int(column)
        self.value = float(value)
        self.feature = feature
        name = f" ({feature})" if feature else ""
        super().__init__(f"row {self.row}, column {self.column}{name}: feature value "
                         f"{self.value} is not finite")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.row, self.column, self.value, self.feature))

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


class PolicyConfigError(ConfigError):
    """An execution policy could not be made: the name is unknown, or a parameter is unknown
    or impossible. ``option`` names the parameter as the message starts with it (``slices``),
    or ``policy`` for an unknown policy name."""

    def __init__(self, message: str, *, source: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(message, source=source, key=key)
        self.option = key if key is not None else message.split(" ", 1)[0].rstrip(":")


class BacktestConfigError(ConfigError):
    """A backtest spec is impossible; nothing ran. ``option`` names the offending field as the
    message starts with it (``horizon_ns``, ``market``, ``venues[2]``)."""

    def __init__(self, message: str, *, source: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(message, source=source, key=key)
        self.option = key if key is not None else message.split(" ", 1)[0].rstrip(":")


class FixStoreError(SorError):
    """A FIX message store cannot be opened or written (in use, unreadable, not a store, disk
    full); ``path`` names its directory. Nothing stored before the error is lost."""

    def __init__(self, reason: str, *, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,), {"path": self.path})


class FixSessionError(SorError):
    """A FIX session or reactor was asked for something it cannot do (``session`` names it)."""

    def __init__(self, reason: str, *, session: str = "") -> None:
        self.reason = reason
        self.session = session
        super().__init__(f"session {session}: {reason}" if session else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,), {"session": self.session})


__all__ = [
    "SorError", "UsageError", "BookIntegrityError", "SequenceGapError", "FeedDecodeError",
    "ConfigError", "RingError", "EngineError", "EngineCrashedError", "SimulationError",
    "ModelError", "ModelFileError", "NotATreeModelError", "InvalidModelError",
    "UnsupportedModelError", "ModelInputError", "SchemaMismatchError", "ModelParityError",
    "FeatureValueError",

    "FeatureConfigError", "FeatureError", "PolicyConfigError", "BacktestConfigError",
    "FixStoreError", "FixSessionError",
]


class FixCodecError(SorError, ValueError):
    """FIX bytes or a FIX value could not be parsed or encoded (base of the codec's errors)."""


class FixParseError(FixCodecError):
    """A FIX message does not parse; nothing of it was returned.

    ``status`` names the rule (``empty``, ``empty_tag``, ``bad_tag``, ``missing_equals``,
    ``unterminated``, ``too_many_fields``, ``bad_data_length``, ``too_long``), ``offset`` is
    the byte offset of the offending field and ``reason`` says what is wrong with it.
    """

    def __init__(self, status: str, offset: int, reason: str) -> None:
        self.status = status
        self.offset = int(offset)
        self.reason = reason
        super().__init__(f"FIX message does not parse at byte {self.offset}: {reason} [{status}]")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.offset, self.reason))


class FixFieldError(FixCodecError):
    """A FIX field value is not what its type requires (an int, a UTCTimestamp, a price in
    whole ticks), or a field cannot be encoded.

    ``tag`` is the field's tag (``None`` for a bare value), ``value`` the offending text
    (``None`` when there is none) and ``reason`` what is wrong.
    """

    def __init__(self, tag: int | None, value: str | None, reason: str) -> None:
        self.tag = tag
        self.value = value
        self.reason = reason
        where = f"tag {tag}" if tag is not None else "value"
        shown = f" {value!r}" if value is not None else ""
        super().__init__(f"{where}{shown}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tag, self.value, self.reason))


__all__ += ["FixCodecError", "FixParseError", "FixFieldError"]


class JournalError(SorError):
    """The router's order-state journal could not be read or written (``sor.fix.journal``)."""


class JournalCorruptError(JournalError):
    """A journal is damaged in the middle (a bad frame followed by valid ones), not merely
    torn at its end; nothing was replayed. ``path``, ``offset`` (of the first bad frame) and
    ``damaged_bytes`` (from there to the end of the file) locate it."""

    def __init__(self, path: str, offset: int, damaged_bytes: int) -> None:
        self.path = path
        self.offset = int(offset)
        self.damaged_bytes = int(damaged_bytes)
        super().__init__(f"journal {path} is damaged at offset {self.offset}: a frame fails its "
                         f"length or CRC check and valid frames follow it ({self.damaged_bytes} "
                         f"bytes from there to the end); refusing to replay it")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.offset, self.damaged_bytes))


class GatewayError(SorError):
    """The FIX gateway (``sor.fix.gateway``) cannot start or go on: a bad session list, a
    state folder in use by another router, an engine that died."""


class OrderValidationError(GatewayError, ValueError):
    """An order message from the OMS cannot be accepted. ``text`` says why (it is sent back in
    Text, tag 58); ``ord_rej_reason`` is the OrdRejReason (103) code, None when none fits."""

    def __init__(self, text: str, ord_rej_reason: int | None = None) -> None:
        self.text = text
        self.ord_rej_reason = ord_rej_reason
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text, self.ord_rej_reason))


__all__ += ["JournalError", "JournalCorruptError", "GatewayError", "OrderValidationError"]


class AuditJournalError(SorError):
    """The audit journal (``sor.monitor.journal``) could not be written or read: a closed
    journal, a file that is not an audit journal, a record of the wrong dtype."""


class AuditJournalCorruptError(AuditJournalError):
    """An audit journal is damaged in the middle (a bad frame followed by valid ones), not
    merely torn at its end. ``path``, ``offset`` (of the first bad frame) and ``damaged_bytes``
    (up to the next valid frame) locate it; ``read_journal(..., on_corrupt="skip")`` reads
    around it."""

    def __init__(self, path: str, offset: int, damaged_bytes: int) -> None:
        self.path = path
        self.offset = int(offset)
        self.damaged_bytes = int(damaged_bytes)
        super().__init__(f"audit journal {path} is damaged at offset {self.offset}: a frame "
                         f"fails its length or CRC check and a valid frame follows "
                         f"{self.damaged_bytes} bytes later; read it with on_corrupt='skip' to "
                         f"skip the damaged bytes")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.offset, self.damaged_bytes))


class AuditJournalLayoutError(AuditJournalError):
    """An audit journal was written with another file format, record layout or feature
    schema than this code reads; ``path`` names it and ``reason`` says what differs."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"audit journal {path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


class _SourcedError(SorError):
    """An error with a ``reason`` and the ``source`` file it concerns ("" when none); the
    message is ``"source: reason"``."""

    def __init__(self, reason: str, *, source: str = "") -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,), {"source": self.source})


class FeatureProfileError(_SourcedError):
    """A feature profile (``sor.monitor.profile``) cannot be built, read or used: a bad file,
    another feature schema, unknown feature names. ``source`` names the file when there is
    one."""


__all__ += ["AuditJournalError", "AuditJournalCorruptError", "AuditJournalLayoutError",
            "FeatureProfileError"]


class ConsoleError(SorError):
    """The operator console (``sor.monitor.console``) cannot start (the address is taken or
    cannot be bound) or its control object cannot serve it."""


__all__ += ["ConsoleError"]


class OperatorActionError(GatewayError, ValueError):
    """An operator action on the router (risk state, model re-enable, configuration change)
    was refused before anything changed: no operator or reason given, an unknown risk state.
    ``text`` says what was wrong."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text,))


__all__ += ["OperatorActionError"]


class StoreError(_SourcedError):
    """The data store (``sor.store``) cannot ingest, list or query: an unreadable or corrupt
    source file (journal, ITCH), a damaged Parquet file or manifest, a bad query. ``source``
    names the file when there is one; the store is left as it was."""


class RegistryError(ModelError):
    """A model registry operation was refused before anything changed: an unknown model or
    version, a promotion or rollback with nothing to do, a damaged ``registry.json``."""


class RetrainError(SorError):
    """``sor retrain`` cannot run: no labelled rows in the store, too few rows for a model, a
    champion missing from the registry. Names what was missing."""


class ScaleOutError(SorError):
    """Dask scale-out cannot run: the scheduler cannot be reached, a worker failed a task, the
    cluster lacks a package. Names the scheduler address or the task."""


__all__ += ["StoreError", "RegistryError", "RetrainError", "ScaleOutError"]
