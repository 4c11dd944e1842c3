"""The configuration a running router holds, updated all at once or not at all."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from sor.config.changes import ConfigChange, diff
from sor.config.codec import from_dict, to_dict
from sor.config.model import RouterConfig
from sor.errors import ConfigError, UsageError

Check = Callable[[RouterConfig, RouterConfig, "list[ConfigChange]"], None]
Listener = Callable[[RouterConfig, "list[ConfigChange]", int], None]

_ENTRY = r"\[[^\]]+\]"
RESTART_ONLY_KEYS: tuple[tuple[str, str], ...] = (
    (r"price_tick_usd", "every price in the engine is counted in it"),
    (r"engine\.(name|cpu|sched_fifo|sched_priority|mlockall|stale_segment_policy)",
     "the engine sets it up when it starts"),
    (r"engine\.\w+_ring_capacity_records", "rings are sized when they are created"),
    (r"venues", "the engine orders its venue books at start"),
    (rf"venues{_ENTRY}", "the engine builds one book per venue at start; set enabled = false "
                         "to stop routing to a venue"),
    (rf"venues{_ENTRY}\.(venue_id|kind|book_type)",
     "the engine builds one book per venue at start"),
    (rf"instruments{_ENTRY}\.instrument_id", "books and orders are keyed by instrument id"),
    (r"guardrails\.fallback_policy(_params)?",
     "the engine makes one fallback policy instance per parent slot at start"),
)
"""Key paths (regular expressions) that a running store refuses to change, and why."""


def restart_only_reason(key: str) -> str | None:
    """Returns why a key path cannot change while the router runs, or None if it can."""
    for pattern, reason in RESTART_ONLY_KEYS:
        if re.fullmatch(pattern, key):
            return reason
    return None


class ConfigStore:
    """Holds the current configuration and its version; updates are validated, then swapped.

    An update is checked in full first: the new configuration is validated again, restart-only
    keys are refused while the store is running, and every registered check may refuse by
    raising :class:`ConfigError`. Only then does the store swap, bump the version by one and
    call its listeners. A refused update leaves the configuration and the version as they
    were. Updates are serialized by a lock; reads never wait.
    """

    def __init__(self, config: RouterConfig, *, running: bool = False) -> None:
        if not isinstance(config, RouterConfig):
            raise UsageError(f"ConfigStore needs a RouterConfig, got {type(config).__name__}")
        self._state: tuple[int, RouterConfig] = (0, config)
        self._running = bool(running)
        self._lock = threading.Lock()
        self._updating_thread: int | None = None
        self._checks: list[Check] = []
        self._listeners: list[Listener] = []

    @property
    def current(self) -> RouterConfig:
        """Returns the configuration in force."""
        return self._state[1]

    @property
    def version(self) -> int:
        """Returns how many updates have been applied (0 for the initial configuration)."""
        return self._state[0]

    def snapshot(self) -> tuple[int, RouterConfig]:
        """Returns the version and the configuration in force, read together."""
        return self._state

    @property
    def running(self) -> bool:
        """Returns whether the router runs, so restart-only keys are refused."""
        return self._running

    def set_running(self, running: bool) -> None:
        """Marks the router as running (restart-only keys refused) or stopped."""
        with self._lock:
            self._running = bool(running)

    def add_check(self, check: Check) -> None:
        """Registers ``check(old, new, changes)``, run before a swap; a ConfigError refuses."""
        with self._lock:
            self._checks.append(check)

    def add_listener(self, listener: Listener) -> None:
        """Registers ``listener(new, changes, version)``, called after each swap in version order.

        A listener runs after the swap, so an exception it raises reaches the caller of
        :meth:`update` with the new configuration already in force.
        """
        with self._lock:
            self._listeners.append(listener)

    def update(self, change: RouterConfig | Callable[[RouterConfig], RouterConfig],
               ) -> list[ConfigChange]:
        """Applies a new configuration, or ``change(current)``; returns what changed.

        A callable runs under the store's lock, so concurrent read-modify-write updates are
        never lost. An update that changes nothing leaves the version as it is.
        """
        if self._updating_thread == threading.get_ident():
            raise UsageError("ConfigStore.update was called from inside a check, listener or "
                             "change callable of the same store")
        with self._lock:
            self._updating_thread = threading.get_ident()
            try:
                return self._update_locked(change)
            finally:
                self._updating_thread = None

    def _update_locked(self, change: Any) -> list[ConfigChange]:
        version, current = self._state
        new = change(current) if callable(change) else change
        if not isinstance(new, RouterConfig):
            raise UsageError(f"update needs a RouterConfig or a callable returning one, "
                             f"got {type(new).__name__}")
        # Validate from plain data, so nothing that bypassed the constructors gets through.
        new = from_dict(to_dict(new), source=new.source)
        changes = diff(current, new)
        if not changes:
            return []
        if self._running:
            for item in changes:
                reason = restart_only_reason(item.key)
                if reason is not None:
                    raise ConfigError(f"restart-only, cannot change while the router runs "
                                      f"({reason}): {item}", source=new.source, key=item.key)
            old_accounts = [a.name for a in current.risk.accounts]
            new_accounts = [a.name for a in new.risk.accounts]
            if new_accounts[:len(old_accounts)] != old_accounts:
                raise ConfigError(f"restart-only, cannot remove or reorder accounts while the "
                                  f"router runs (an account's engine id is its position; "
                                  f"append new accounts at the end): {old_accounts} -> "
                                  f"{new_accounts}", source=new.source, key="risk.accounts")
        for check in self._checks:
            check(current, new, changes)
        self._state = (version + 1, new)
        for listener in self._listeners:
            listener(new, changes, version + 1)
        return changes

    def __repr__(self) -> str:
        version, config = self._state
        return (f"ConfigStore(version={version}, running={self._running}, "
                f"source={config.source!r}, venues={len(config.venues)}, "
                f"instruments={len(config.instruments)})")
