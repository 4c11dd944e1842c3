"""Scenarios: TOML files that define a simulated market (venues, flow, news, informed traders,
regimes, what to record). The keys are the fields of ``sor::sim::MarketSpec``; a scenario may
name a ``base`` scenario and override only what differs, and ``[venue_overrides.NAME]`` tables
change single venues of the base. Shipped scenarios live in ``sor/sim/scenarios``."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from sor import _core
from sor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_SECTIONS = {
    "market": ("seed", "session_start_ns", "session_length_ns", "instrument_count",
               "initial_price_ticks", "price_tick_usd", "u_shape_amplitude", "fifo_order_entry"),
    "recording": ("record_feeds", "record_events", "record_trades", "quote_sample_interval_ns",
                  "quote_sample_levels", "reserve_orders"),
}
_NESTED = {"flow": _core.SimFlowSpec, "fundamental": _core.SimFundamentalSpec,
           "informed": _core.SimInformedSpec}
_TOP_KEYS = {"scenario", "market", "recording", "flow", "fundamental", "informed", "regimes",
             "venues", "venue_overrides"}
_VENUE_KINDS = {"lit": _core.SimVenueKind.LIT, "dark": _core.SimVenueKind.DARK}


def shipped_scenarios() -> list[str]:
    """Returns the names of the scenarios shipped with sor, sorted."""
    folder = resources.files("sor.sim") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: its name, description, where it came from and the merged TOML data
    (base scenario with this file's overrides applied). ``market_spec()`` builds the core spec."""

    name: str
    description: str
    source: str
    data: Mapping[str, Any]

    def market_spec(self, *, seed: int | None = None, **overrides: Any) -> Any:
        """Returns a new ``_core.SimMarketSpec``; ``seed`` and ``overrides`` (any ``market`` or
        ``recording`` key, e.g. ``record_feeds=True``) replace the scenario's values."""
        spec = _build_spec(self.data, self.source)
        if seed is not None:
            overrides["seed"] = seed
        for key, value in overrides.items():
            if not any(key in keys for keys in _SECTIONS.values()):
                raise ConfigError(f"unknown override {key!r}; expected one of "
                                  f"{sorted(k for keys in _SECTIONS.values() for k in keys)}",
                                  source=self.source)
            _assign(spec, key, value, self.source, key)
        problem = _core.validate_market_spec(spec)
        if problem:
            raise ConfigError(problem, source=self.source)
        return spec

    def venue_ids(self) -> dict[str, int]:
        """Returns venue name -> venue id."""
        return {v["name"]: int(v["venue_id"]) for v in self.data.get("venues", [])}


def load_scenario(name_or_path: str | Path = "default") -> Scenario:
    """Loads a shipped scenario by name (``"calm"``) or a TOML file by path, resolving its
    ``base`` chain; raises ``ConfigError`` naming the file and key of any problem."""
    data, source = _read(name_or_path, seen=())
    info = data.get("scenario", {})
    scenario = Scenario(name=str(info.get("name", Path(source).stem)),
                        description=str(info.get("description", "")), source=source, data=data)
    scenario.market_spec()  # Validates every key and value now, not at first use.
    return scenario


def _read(name_or_path: str | Path, seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("no such scenario file", source=source) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"not valid TOML: {e}", source=source) from None
    else:
        name = str(name_or_path)
        if name not in shipped_scenarios():
            raise ConfigError(f"unknown scenario {name!r}; shipped: {', '.join(shipped_scenarios())}"
                              " (or give a path to a .toml file)")
        source = f"scenario:{name}"
        raw = tomllib.loads((resources.files("sor.sim") / "scenarios" / f"{name}.toml").read_text())
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown table(s) {sorted(unknown)}; expected {sorted(_TOP_KEYS)}",
                          source=source)
    base = raw.get("scenario", {}).get("base")
    if base is None:
        merged = raw
    else:
        if source in seen:
            raise ConfigError(f"base chain loops: {' -> '.join(seen + (source,))}", source=source)
        base_data, _ = _read(base, seen + (source,))
        merged = _merge(base_data, raw)
    overrides = merged.pop("venue_overrides", {})
    venues = merged.get("venues", [])
    for venue_name, changes in overrides.items():
        matches = [v for v in venues if v.get("name") == venue_name]
        if not matches:
            raise ConfigError(f"no venue named {venue_name!r} to override; venues: "
                              f"{[v.get('name') for v in venues]}", source=source,
                              key=f"venue_overrides.{venue_name}")
        matches[0].update(copy.deepcopy(changes))
    return merged, source


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if key == "venue_overrides":
            out.setdefault(key, {})
            for name, changes in value.items():
                out[key].setdefault(name, {}).update(changes)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _assign(target: Any, key: str, value: Any, source: str, path: str) -> None:
    if not hasattr(target, key):
        raise ConfigError(f"unknown key {key!r}", source=source, key=path)
    current = getattr(target, key)
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(current, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"expected {type(current).__name__}, got {value!r}", source=source,
                          key=path)
    try:
        setattr(target, key, value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot take {value!r}: {e}", source=source, key=path) from None


def _build_spec(data: Mapping[str, Any], source: str) -> Any:
    spec = _core.SimMarketSpec()
    for section, keys in _SECTIONS.items():
        for key, value in data.get(section, {}).items():
            if key not in keys:
                raise ConfigError(f"unknown key; expected one of {list(keys)}", source=source,
                                  key=f"{section}.{key}")
            _assign(spec, key, value, source, f"{section}.{key}")
    for section, cls in _NESTED.items():
        part = cls()
        for key, value in data.get(section, {}).items():
            _assign(part, key, value, source, f"{section}.{key}")
        setattr(spec, section, part)
    regimes = []
    for n, table in enumerate(data.get("regimes", [])):
        regime = _core.SimRegimeSpec()
        for key, value in table.items():
            _assign(regime, key, value, source, f"regimes[{n}].{key}")
        regimes.append(regime)
    if regimes:
        spec.regimes = regimes
    venues = []
    for n, table in enumerate(data.get("venues", [])):
        venue = _core.SimVenueSpec()
        for key, value in table.items():
            path = f"venues[{n}].{key}"
            if key == "kind":
                if value not in _VENUE_KINDS:
                    raise ConfigError(f"kind must be one of {sorted(_VENUE_KINDS)}, got {value!r}",
                                      source=source, key=path)
                venue.kind = _VENUE_KINDS[value]
            elif key == "latency":
                latency = _core.SimLatencySpec()
                for lkey, lvalue in value.items():
                    _assign(latency, lkey, lvalue, source, f"{path}.{lkey}")
                venue.latency = latency
            else:
                _assign(venue, key, value, source, path)
        venues.append(venue)
    spec.venues = venues
    return spec
