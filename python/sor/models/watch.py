"""Hot swap: a running engine follows its model registry.

``RegistryWatcher(engine, registry)`` polls ``registry.json``'s fingerprint on its own thread.
When it changes and the versions in use differ from the engine's, it loads every changed model
(SHA-256, feature schema, tree graph, parity with onnxruntime) on the watcher thread, never on
the gateway's reactor, then installs them together with ``Engine.swap_models``. A model that
fails validation refuses the whole change: the engine keeps every model it runs, and the
watcher tries again only when ``registry.json`` changes again (a rollback or a new promotion).

Events (``on_event(event)``, also kept in ``events``)::

    {"kind": "models_swapped", "models": {name: {"from": v, "to": v}}, "load_ms",
     "install_us", "operator", "reason", "generations": {name: slot generation},
     "fingerprint"}
    {"kind": "model_swap_refused", "name", "version", "error", "fingerprint"}
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Any, Callable, Iterator

from sor.errors import SorError

log = logging.getLogger(__name__)

EventListener = Callable[[dict[str, Any]], None]
LOAD_SWITCH_INTERVAL_S: float | None = None  # measured: no gain on a 2-vCPU host (docs)


class RegistryWatcher:
    """Follows a registry's versions in use and hot-swaps them into an engine."""

    def __init__(self, engine: Any, registry: Any, *, interval_s: float = 1.0,
                 on_event: EventListener | None = None,
                 load_switch_interval_s: float | None = LOAD_SWITCH_INTERVAL_S) -> None:
        from sor.engine import MODEL_SLOTS
        from sor.models.registry import ModelRegistry

        self.engine = engine
        self.registry = registry if isinstance(registry, ModelRegistry) else \
            ModelRegistry(registry)
        self.interval_s = float(interval_s)
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        """Every event reported, oldest first."""
        self.load_switch_interval_s = load_switch_interval_s
        """The GIL switch interval while models load (None: leave Python's, 5 ms). The load is
        mostly Python code holding the GIL up to a switch interval at a time; a shorter one
        did not measurably shorten the reactor's stalls on a 2-vCPU host (docs/models.md,
        hot swap), so it is off by default."""
        self._slots = MODEL_SLOTS
        self._seen: str | None = None  # fingerprint last acted on (installed or refused)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0
        """How many polls found a changed fingerprint."""

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> RegistryWatcher:
        """Starts the polling thread; returns self."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sor-registry-watcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the polling thread (waits for a check in progress)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    close = stop

    def __enter__(self) -> RegistryWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_now()
            except Exception:  # a poll never kills the watcher; the next one tries again
                log.exception("registry watcher: check of %s failed", self.registry.root)
            self._stop.wait(self.interval_s)

    # --- one poll ------------------------------------------------------------------------

    @property
    def installed(self) -> dict[str, dict[str, Any]]:
        """The engine's models: name -> ``{"version", "sha256"}``."""
        return self.engine.model_versions

    def check_now(self) -> dict[str, Any] | None:
        """Polls the registry once on the caller's thread: loads and installs what changed.
        Returns the event reported (models_swapped or model_swap_refused), None when the
        engine already runs the versions in use."""
        with self._lock:
            return self._check()

    def _check(self) -> dict[str, Any] | None:
        try:
            fingerprint, data = self.registry.snapshot()
        except SorError as error:  # a damaged registry.json: keep running, report once
            fingerprint = f"unreadable:{error}"
            if fingerprint == self._seen:
                return None
            self._seen = fingerprint
            return self._report({"kind": "model_swap_refused", "name": None, "version": None,
                                 "error": str(error), "fingerprint": None})
        if fingerprint == self._seen:
            return None
        self.checks += 1
        installed = self.installed
        wanted = {name: entry for name, entry in data["models"].items() if name in self._slots}
        changed: dict[str, dict[str, Any]] = {}
        for name, entry in sorted(wanted.items()):
            current = installed.get(name)
            if current is None or current["sha256"] != entry["sha256"] or \
                    current["version"] != int(entry["version"]):
                changed[name] = {"from": None if current is None else current["version"],
                                 "to": int(entry["version"])}
        for name in sorted(set(installed) - set(wanted)):
            if installed[name]["version"] is not None:  # a registry model taken out of use
                changed[name] = {"from": installed[name]["version"], "to": None}
        if not changed:
            self._seen = fingerprint
            return None
        started = time.perf_counter()
        models: dict[str, Any] = {}
        with short_switch_interval(self.load_switch_interval_s):
            for name, change in changed.items():
                if change["to"] is None:
                    models[name] = None
                    continue
                try:
                    models[name] = self.registry.load(name, change["to"], data=data)
                except Exception as error:  # noqa: BLE001 - any failure refuses the change
                    self._seen = fingerprint
                    return self._report({"kind": "model_swap_refused", "name": name,
                                         "version": change["to"],
                                         "error": f"{type(error).__name__}: {error}",
                                         "fingerprint": fingerprint})
        load_ms = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        try:
            generations = self.engine.swap_models(
                models, {name: change["to"] for name, change in changed.items()})
        except Exception as error:  # noqa: BLE001 - e.g. schema mismatch: nothing installed
            self._seen = fingerprint
            name = next(iter(changed))
            return self._report({"kind": "model_swap_refused", "name": name,
                                 "version": changed[name]["to"],
                                 "error": f"{type(error).__name__}: {error}",
                                 "fingerprint": fingerprint})
        install_us = (time.perf_counter() - started) * 1e6
        self._seen = fingerprint
        last = _last_record_for(data.get("history", []), changed)
        return self._report({"kind": "models_swapped", "models": changed,
                             "load_ms": round(load_ms, 3), "install_us": round(install_us, 1),
                             "operator": last.get("operator"), "reason": last.get("reason"),
                             "generations": generations, "fingerprint": fingerprint})

    def _report(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"ts_ns": time.time_ns(), **event}
        self.events.append(event)
        if event["kind"] == "models_swapped":
            log.info("models swapped: %s", event["models"])
        else:
            log.warning("model swap refused: %s v%s: %s", event.get("name"),
                        event.get("version"), event.get("error"))
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("registry watcher: event listener failed")
        return event


_SWITCH_LOCK = threading.Lock()
_SWITCH_USERS = 0
_SWITCH_SAVED = 0.0


@contextlib.contextmanager
def short_switch_interval(interval_s: float | None) -> Iterator[None]:
    """Lowers the interpreter's GIL switch interval to `interval_s` inside the block (None:
    unchanged); nested and concurrent users restore it once, when the last one leaves."""
    global _SWITCH_USERS, _SWITCH_SAVED
    if interval_s is None:
        yield
        return
    with _SWITCH_LOCK:
        if _SWITCH_USERS == 0:
            _SWITCH_SAVED = sys.getswitchinterval()
            sys.setswitchinterval(min(interval_s, _SWITCH_SAVED))
        _SWITCH_USERS += 1
    try:
        yield
    finally:
        with _SWITCH_LOCK:
            _SWITCH_USERS -= 1
            if _SWITCH_USERS == 0:
                sys.setswitchinterval(_SWITCH_SAVED)


def _last_record_for(history: list[dict[str, Any]],
                     changed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The newest history record that put one of the changed models at its new version."""
    for record in reversed(history):
        for name, change in record.get("changes", {}).items():
            if name in changed and change.get("to") == changed[name]["to"]:
                return record
    return {}


__all__ = ["RegistryWatcher", "short_switch_interval", "LOAD_SWITCH_INTERVAL_S"]
