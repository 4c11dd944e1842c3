"""Comparing and editing configurations by key path.

Key paths name list entries by identity, not position, so they survive reordering:
``venues[XNAS].fees.taker_fee_usd_per_share``, ``instruments[AAPL].lot_size_shares``,
``routing[*].venue_weights.XNAS``, ``engine.cpu``. :func:`with_changes` also accepts a
position (``venues[0]``), as error messages give them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sor.config.codec import _plain, format_value, from_dict, to_dict
from sor.config.model import RouterConfig, toml_field_names
from sor.errors import ConfigError

IDENTITY_FIELDS = {"venues": "name", "instruments": "symbol", "routing": "instrument",
                   "accounts": "name"}
"""The field that names an entry of each list in a key path (``risk.accounts[NAME]`` too)."""

_NESTED_LISTS = {("risk", "accounts")}


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One difference between two configurations: a key path, its old and its new value.

    ``old`` is ``None`` when the key was added, ``new`` is ``None`` when it was removed.
    """

    key: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        """Returns ``"added"``, ``"removed"`` or ``"changed"``."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.key}: added {_show(self.new)}"
        if self.new is None:
            return f"{self.key}: removed (was {_show(self.old)})"
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    return format_value(_plain(value))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def diff(old: RouterConfig, new: RouterConfig) -> list[ConfigChange]:
    """Returns every difference from ``old`` to ``new``, in field order; empty when equal."""
    changes: list[ConfigChange] = []
    _diff_objects(old, new, "", changes)
    return changes


def _diff_objects(old: Any, new: Any, prefix: str, out: list[ConfigChange]) -> None:
    for name in toml_field_names(type(old)):
        before, after = getattr(old, name), getattr(new, name)
        key = _join(prefix, name)
        if before == after:
            continue
        if (name in IDENTITY_FIELDS and prefix == "") or (prefix, name) in _NESTED_LISTS:
            _diff_entries(before, after, key, IDENTITY_FIELDS[name], out)
        elif name == "venue_weights":
            _diff_pairs(dict(before), dict(after), key, out)
        elif (dataclasses.is_dataclass(before) and type(before) is type(after)):
            _diff_objects(before, after, key, out)
        else:
            out.append(ConfigChange(key, before, after))


def _diff_entries(before: tuple[Any, ...], after: tuple[Any, ...], key: str, identity: str,
                  out: list[ConfigChange]) -> None:
    old_by_name = {getattr(entry, identity): entry for entry in before}
    new_by_name = {getattr(entry, identity): entry for entry in after}
    kept_old = [name for name in old_by_name if name in new_by_name]
    kept_new = [name for name in new_by_name if name in old_by_name]
    if kept_old != kept_new:
        out.append(ConfigChange(key, tuple(old_by_name), tuple(new_by_name)))
    for name, entry in old_by_name.items():
        entry_key = f"{key}[{name}]"
        if name not in new_by_name:
            out.append(ConfigChange(entry_key, entry, None))
        elif entry != new_by_name[name]:
            _diff_objects(entry, new_by_name[name], entry_key, out)
    for name, entry in new_by_name.items():
        if name not in old_by_name:
            out.append(ConfigChange(f"{key}[{name}]", None, entry))


def _diff_pairs(before: dict[str, float], after: dict[str, float], key: str,
                out: list[ConfigChange]) -> None:
    if list(before) != list(after) and set(before) == set(after):
        out.append(ConfigChange(key, tuple(before), tuple(after)))
    for name in [*before, *(name for name in after if name not in before)]:
        if before.get(name) != after.get(name):
            out.append(ConfigChange(f"{key}.{name}", before.get(name), after.get(name)))


_NO_VALUE = object()
_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[([^\]]+)\]")


def _parse_key(key: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(key):
        match = _TOKEN.match(key, position)
        if not match or (position == 0 and key.startswith((".", "["))):
            raise ConfigError(f"is not a key path (expected e.g. "
                              f"'venues[XNAS].fees.taker_fee_usd_per_share')", key=key)
        name, selector = match.groups()
        tokens.append(("name", name) if name is not None else ("select", selector))
        position = match.end()
    if not tokens:
        raise ConfigError("is an empty key path", key=key)
    return tokens


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    tokens = _parse_key(key)
    node: Any = data
    list_name = ""
    for index, (kind, token) in enumerate(tokens):
        last = index == len(tokens) - 1
        if kind == "name":
            if not isinstance(node, dict):
                raise ConfigError(f"{token!r} does not name a table here", key=key)
            if last:
                if value is None:
                    node.pop(token, None)
                else:
                    node[token] = _plain(value)
                return
            list_name = token
            node = node.setdefault(token, {} if tokens[index + 1][0] == "name" else [])
        else:
            if not isinstance(node, list):
                raise ConfigError(f"[{token}] selects from something that is not a list", key=key)
            position = _find(node, list_name, token, key)
            if last:
                if value is None:
                    del node[position]
                else:
                    node[position] = _plain(value)
                return
            node = node[position]


def _find(entries: list[Any], list_name: str, selector: str, key: str) -> int:
    if selector.isdigit():
        if int(selector) < len(entries):
            return int(selector)
        raise ConfigError(f"{list_name} has {len(entries)} entries, no [{selector}]", key=key)
    identity = IDENTITY_FIELDS.get(list_name)
    for position, entry in enumerate(entries):
        if identity and isinstance(entry, Mapping) and entry.get(identity) == selector:
            return position
    raise ConfigError(f"{list_name} has no entry {selector!r}", key=key)


def with_changes(config: RouterConfig, changes: str | Mapping[str, Any],
                 value: Any = _NO_VALUE) -> RouterConfig:
    """Returns a copy of ``config`` with values set at key paths, validated again.

    Call it as ``with_changes(config, "risk.max_open_orders", 800)`` or with a mapping of key
    paths to values. ``None`` removes the key (back to its default) or the list entry.
    """
    if isinstance(changes, str):
        if value is _NO_VALUE:
            raise ConfigError("needs a value", key=changes)
        changes = {changes: value}
    elif value is not _NO_VALUE:
        raise ConfigError("give either a key and a value or a mapping of keys to values")
    data = to_dict(config)
    for key, new_value in changes.items():
        try:
            _assign(data, key, new_value)
        except ConfigError as error:
            raise ConfigError(error.reason, source=config.source, key=error.key) from None
    return from_dict(data, source=config.source)
