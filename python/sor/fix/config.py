"""FIX session configuration: one TOML file lists the sessions of a process.

```toml
[defaults]                 # optional: any session key, applied to every [[sessions]] entry
store_dir = "var/fix"

[[sessions]]
name = "OMS"
role = "acceptor"
sender_comp_id = "SOR"
target_comp_id = "OMS"
port = 9878
```

Every key not given takes the default of :class:`SessionConfig`. Unknown keys, duplicate
names and impossible values are refused with a :class:`sor.errors.ConfigError` that names the
file and the key (``sessions[1].port``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

BEGIN_STRINGS = ("FIX.4.2", "FIX.4.4")
"""The FIX versions the session layer speaks (BeginString, tag 8)."""

ROLES = ("acceptor", "initiator")
"""Who opens the TCP connection: the initiator connects, the acceptor listens."""

STORE_SYNCS = ("write", "fsync")
"""How the message store persists: ``write`` survives a process kill, ``fsync`` a power loss."""

APPLICATIONS = ("oms", "venue")
"""What the gateway runs on a session: the OMS side or a venue side."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One FIX session: who we are, who the peer is, where to connect and how to behave."""

    name: str
    role: str = "acceptor"
    begin_string: str = "FIX.4.4"
    sender_comp_id: str = "SOR"
    target_comp_id: str = "OMS"
    host: str = "127.0.0.1"
    port: int = 9878
    heartbeat_interval_s: int = 30
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    store_dir: str = "var/fix"
    store_path: str = ""
    store_sync: str = "write"
    sending_time_tolerance_s: float = 120.0
    logon_timeout_s: float = 10.0
    logout_timeout_s: float = 2.0
    reconnect_interval_s: float = 1.0
    max_message_bytes: int = 65536
    application: str = "oms"
    venue: str = ""
    cancel_on_disconnect: bool = False

    def __post_init__(self) -> None:
        _validate(self, source=None, prefix="")

    @property
    def resolved_store_path(self) -> str:
        """Returns the store directory: ``store_path`` when set, else ``<store_dir>/<name>``."""
        return self.store_path or os.path.join(self.store_dir, self.name)

    @property
    def is_initiator(self) -> bool:
        """Returns True when this side opens the connection."""
        return self.role == "initiator"

    def replace(self, **changes: Any) -> SessionConfig:
        """Returns a copy with ``changes`` applied (validated like the original)."""
        return dataclasses.replace(self, **changes)


_FIELDS = {field.name: field for field in dataclasses.fields(SessionConfig)}
_STRING_KEYS = {"name", "role", "begin_string", "sender_comp_id", "target_comp_id", "host",
                "store_dir", "store_path", "store_sync", "application", "venue"}
_INT_KEYS = {"port", "heartbeat_interval_s", "max_message_bytes"}
_FLOAT_KEYS = {"sending_time_tolerance_s", "logon_timeout_s", "logout_timeout_s",
               "reconnect_interval_s"}
_BOOL_KEYS = {"reset_on_logon", "reset_on_logout", "reset_on_disconnect", "cancel_on_disconnect"}


def _fail(reason: str, source: str | None, key: str) -> ConfigError:
    return ConfigError(reason, source=source, key=key)


def _check_type(key: str, value: Any, source: str | None, prefix: str) -> Any:
    full_key = prefix + key
    if key in _STRING_KEYS:
        if not isinstance(value, str):
            raise _fail(f"must be a string, not {type(value).__name__} {value!r}", source,
                        full_key)
        return value
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise _fail(f"must be true or false, not {value!r}", source, full_key)
        return value
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"must be an integer, not {value!r}", source, full_key)
        return value
    if key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(f"must be a number, not {value!r}", source, full_key)
        return float(value)
    raise _fail(f"unknown key (known keys: {', '.join(sorted(_FIELDS))})", source, full_key)


def _validate(config: SessionConfig, source: str | None, prefix: str) -> None:
    for key in _FIELDS:
        _check_type(key, getattr(config, key), source, prefix)

    def refuse(key: str, reason: str) -> ConfigError:
        return _fail(reason, source, prefix + key)

    if not config.name.strip():
        raise refuse("name", "must not be empty")
    if config.role not in ROLES:
        raise refuse("role", f"must be one of {', '.join(ROLES)}, not {config.role!r}")
    if config.begin_string not in BEGIN_STRINGS:
        raise refuse("begin_string",
                     f"must be one of {', '.join(BEGIN_STRINGS)}, not {config.begin_string!r}")
    for key in ("sender_comp_id", "target_comp_id"):
        value = getattr(config, key)
        if not value:
            raise refuse(key, "must not be empty")
        if "\x01" in value or "=" in value or value != value.strip():
            raise refuse(key, f"{value!r} must not contain SOH, '=' or surrounding blanks")
    if not config.host:
        raise refuse("host", "must not be empty")
    if not 0 <= config.port <= 65535:
        raise refuse("port", f"must be in 0..65535, not {config.port}")
    if config.heartbeat_interval_s <= 0:
        raise refuse("heartbeat_interval_s", f"must be positive, not {config.heartbeat_interval_s}")
    for key in ("sending_time_tolerance_s", "logon_timeout_s", "logout_timeout_s",
                "reconnect_interval_s"):
        value = getattr(config, key)
        if not math.isfinite(value) or value <= 0:
            raise refuse(key, f"must be a positive number of seconds, not {value}")
    if config.store_sync not in STORE_SYNCS:
        raise refuse("store_sync",
                     f"must be one of {', '.join(STORE_SYNCS)}, not {config.store_sync!r}")
    if not config.store_path and not config.store_dir:
        raise refuse("store_dir", "must not be empty when store_path is not set")
    if config.max_message_bytes < 256:
        raise refuse("max_message_bytes", f"must be at least 256, not {config.max_message_bytes}")
    if config.application not in APPLICATIONS:
        raise refuse("application",
                     f"must be one of {', '.join(APPLICATIONS)}, not {config.application!r}")


def sessions_from_dict(data: Mapping[str, Any], source: str | None = None) -> list[SessionConfig]:
    """Returns the validated sessions of a parsed TOML document (``defaults`` + ``sessions``)."""
    for key in data:
        if key not in ("defaults", "sessions"):
            raise _fail("unknown table (expected [defaults] and [[sessions]])", source, key)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise _fail("must be a table", source, "defaults")
    for key, value in defaults.items():
        if key == "name":
            raise _fail("a session name cannot have a default", source, "defaults.name")
        _check_type(key, value, source, "defaults.")
    entries = data.get("sessions", [])
    if not isinstance(entries, list):
        raise _fail("must be an array of tables ([[sessions]])", source, "sessions")
    sessions: list[SessionConfig] = []
    names: dict[str, int] = {}
    identities: dict[tuple[str, int, str, str], int] = {}
    for index, entry in enumerate(entries):
        prefix = f"sessions[{index}]."
        if not isinstance(entry, Mapping):
            raise _fail("must be a table", source, f"sessions[{index}]")
        values: dict[str, Any] = {}
        for key, value in {**defaults, **entry}.items():
            values[key] = _check_type(key, value, source, prefix)
        if "name" not in values:
            raise _fail("is required", source, prefix + "name")
        # Built without __init__ so that errors name the entry (sessions[i].key) and the file.
        config = SessionConfig.__new__(SessionConfig)
        for field_name, field in _FIELDS.items():
            object.__setattr__(config, field_name, values.get(field_name, field.default))
        _validate(config, source, prefix)
        if config.name in names:
            raise _fail(f"duplicate session name {config.name!r} "
                        f"(also sessions[{names[config.name]}])", source, prefix + "name")
        names[config.name] = index
        if config.role == "acceptor":
            identity = (config.host, config.port, config.sender_comp_id, config.target_comp_id)
            if identity in identities:
                raise _fail(
                    f"acceptor {config.sender_comp_id}->{config.target_comp_id} on "
                    f"{config.host}:{config.port} is already sessions[{identities[identity]}] "
                    f"(a Logon is matched by its CompIDs)", source, prefix + "target_comp_id")
            identities[identity] = index
        sessions.append(config)
    return sessions


def loads_sessions(text: str, source: str = "<string>") -> list[SessionConfig]:
    """Returns the validated sessions of a TOML document; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", source=source) from None
    return sessions_from_dict(data, source=source)


def load_sessions(path_or_text: str | os.PathLike[str]) -> list[SessionConfig]:
    """Returns the validated sessions of a TOML file, or of TOML text (a string with a newline
    or starting with ``[``)."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text
                                          or path_or_text.lstrip().startswith("[")):
        return loads_sessions(path_or_text)
    source = os.fspath(path_or_text)
    try:
        text = Path(source).read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}",
                          source=source) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text: {error}", source=source) from None
    return loads_sessions(text, source=source)


__all__ = ["SessionConfig", "load_sessions", "loads_sessions", "sessions_from_dict",
           "BEGIN_STRINGS", "ROLES", "STORE_SYNCS", "APPLICATIONS"]
