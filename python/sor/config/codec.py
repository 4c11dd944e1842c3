"""TOML in and out: load and validate a file, write a configuration back exactly.

The reader refuses unknown keys (suggesting the closest known one), missing required keys and
values of the wrong type or range, naming the file and the key path. The writer emits every
field, defaults included, so ``loads(dump(config)) == config`` holds for every valid config.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from sor._core import BookType, RiskState
from sor.config.model import (
    Account,
    EngineSettings,
    GuardrailSettings,
    FeeSchedule,
    FixEndpoint,
    Instrument,
    RiskLimits,
    RouterConfig,
    RoutingRule,
    Venue,
    toml_field_names,
)
from sor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_TABLES: dict[type, dict[str, type]] = {
    RouterConfig: {"risk": RiskLimits, "engine": EngineSettings, "guardrails": GuardrailSettings},
    Venue: {"fees": FeeSchedule, "fix": FixEndpoint},
}
_ARRAYS: dict[type, dict[str, type]] = {
    RouterConfig: {"venues": Venue, "instruments": Instrument, "routing": RoutingRule},
    RiskLimits: {"accounts": Account},
}
_INLINE_TABLES = frozenset({"venue_weights", "policy_params", "fallback_policy_params"})


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _suggestion(key: str, cls: type) -> str:
    from difflib import get_close_matches

    known = toml_field_names(cls)
    # Keys of the tables nested here, for a key written one level too high ("fees.maker_...").
    nested = [f"{table}.{name}" for table, table_cls in _TABLES.get(cls, {}).items()
              for name in toml_field_names(table_cls)]
    # A key written without its unit ("taker_fee") is the commonest slip; catch it first.
    for candidates in (known, nested):
        by_prefix = [name for name in candidates if name.rpartition(".")[2].startswith(f"{key}_")]
        if by_prefix:
            return f"; did you mean {by_prefix[0]!r}?"
    close = get_close_matches(key, known, n=1, cutoff=0.6) or get_close_matches(
        key, [name.rpartition(".")[2] for name in nested], n=1, cutoff=0.6)
    if close and close[0] not in known:
        close = [name for name in nested if name.endswith(f".{close[0]}")]
    return f"; did you mean {close[0]!r}?" if close else ""


def _build(cls: type, data: Any, prefix: str, source: str | None) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a table, got {type(data).__name__} {data!r}",
                          source=source, key=prefix or None)
    known = toml_field_names(cls)
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key {key!r}{_suggestion(str(key), cls)}",
                              source=source, key=_join(prefix, str(key)))
    for item in dataclasses.fields(cls):
        required = (item.default is dataclasses.MISSING
                    and item.default_factory is dataclasses.MISSING)
        if required and item.name not in data:
            raise ConfigError("is required and missing", source=source,
                              key=_join(prefix, item.name))
    values: dict[str, Any] = {}
    tables, arrays = _TABLES.get(cls, {}), _ARRAYS.get(cls, {})
    for key, value in data.items():
        key_path = _join(prefix, key)
        if key in tables:
            value = _build(tables[key], value, key_path, source)
        elif key in arrays:
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
                raise ConfigError(f"must be an array of tables, got {type(value).__name__} "
                                  f"{value!r}", source=source, key=key_path)
            value = tuple(_build(arrays[key], item, f"{key_path}[{position}]", source)
                          for position, item in enumerate(value))
        values[key] = value
    if cls is RouterConfig:
        values["source"] = source
    try:
        return cls(**values)
    except ConfigError as error:
        key = _join(prefix, error.key) if error.key else (prefix or None)
        raise ConfigError(error.reason, source=source, key=key) from None


def from_dict(data: Mapping[str, Any], *, source: str | None = None) -> RouterConfig:
    """Returns the validated configuration described by plain data shaped like the TOML."""
    return _build(RouterConfig, data, "", source)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (BookType, RiskState)):
        return value.name
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Returns a configuration (or any part of one) as plain data shaped like its TOML."""
    result: dict[str, Any] = {}
    for name in toml_field_names(type(config)):
        value = getattr(config, name)
        if value is None:
            continue
        if name in _INLINE_TABLES:
            value = dict(value)
        result[name] = _plain(value)
    return result


def loads(text: str, source: str = "<string>") -> RouterConfig:
    """Returns the validated configuration in a TOML document; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", source=source) from None
    return from_dict(data, source=source)


def load(path: str | os.PathLike[str]) -> RouterConfig:
    """Returns the validated configuration in a TOML file."""
    source = os.fspath(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}",
                          source=source) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text: {error.reason} at byte {error.start}",
                          source=source) from None
    return loads(text, source=source)


# --- the writer ---

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for character in text:
        if character in _ESCAPES:
            out.append(_ESCAPES[character])
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            out.append(f"\\u{ord(character):04X}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def format_value(value: Any) -> str:
    """Returns a plain value (as in :func:`to_dict`) written as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot write the non-finite number {value} as TOML")
        return repr(value)   # shortest text that reads back as the same double
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(str(key))} = {format_value(item)}"
                          for key, item in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise ConfigError(f"cannot write a {type(value).__name__} as TOML: {value!r}")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, Mapping) for i in value)


def _emit(lines: list[str], path: str, table: Mapping[str, Any]) -> None:
    nested = []
    for key, value in table.items():
        if (isinstance(value, Mapping) and key not in _INLINE_TABLES) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {format_value(value)}")
    for key, value in nested:
        child = _join(path, _toml_key(key))
        if isinstance(value, Mapping):
            lines += ["", f"[{child}]"]
            _emit(lines, child, value)
        else:
            for item in value:
                lines += ["", f"[[{child}]]"]
                _emit(lines, child, item)


def dump(config: RouterConfig) -> str:
    """Returns the configuration as a TOML document with every field written out."""
    lines = ["# sor router configuration, written by sor.config.dump: every field that has a value"]
    _emit(lines, "", to_dict(config))
    return "\n".join(lines) + "\n"


def save(config: RouterConfig, path: str | os.PathLike[str]) -> None:
    """Writes the configuration to a TOML file, replacing it atomically."""
    text = dump(config)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".sor-config-", suffix=".toml", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes the file private; a config file keeps the mode it had, else rw-r--r--.
        os.chmod(temporary, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


@functools.lru_cache(maxsize=1)
def default_config() -> RouterConfig:
    """Returns the embedded default configuration (the one ``sor demo`` runs on)."""
    resource = resources.files("sor.config").joinpath("default.toml")
    return loads(resource.read_text(encoding="utf-8"), source=str(resource))
