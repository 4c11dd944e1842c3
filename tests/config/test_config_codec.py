"""sor.config.codec: TOML in with file, key and reason on refusal; TOML out, exactly."""

from __future__ import annotations

import os
import stat
from importlib import resources
from pathlib import Path

import pytest
from config_strategies import router_configs
from hypothesis import HealthCheck, given, settings

from sor.config import (
    BookType,
    ConfigError,
    FixEndpoint,
    IdleStrategy,
    RouterConfig,
    VenueKind,
    default_config,
    diff,
    dump,
    from_dict,
    load,
    loads,
    save,
    to_dict,
)

REPOSITORY = Path(__file__).resolve().parents[2]
COLO_EXAMPLE = REPOSITORY / "deploy" / "config" / "colo-example.toml"

MINIMAL = """\
[[venues]]
venue_id = 0
name = "XNAS"
kind = "lit"

[[venues]]
venue_id = 1
name = "DARK"
kind = "dark"

[[instruments]]
instrument_id = 0
symbol = "AAPL"

[[routing]]
venue_weights = { XNAS = 1.0, DARK = 1 }
"""


def refusal(text: str, source: str = "desk.toml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        loads(text, source=source)
    assert caught.value.source == source
    return caught.value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(router_configs())
def test_dump_then_load_gives_back_the_same_config(config):
    text = dump(config)
    again = loads(text)
    assert again == config and diff(config, again) == []
    assert dump(again) == text
    assert from_dict(to_dict(config)) == config


def test_minimal_file_fills_in_the_defaults():
    config = loads(MINIMAL, source="minimal.toml")
    assert config.source == "minimal.toml" and config.price_tick_usd == 0.0001
    assert config.venue("XNAS").book_type is BookType.L3 and config.venue("DARK").book_type is None
    assert config.routing[0].instrument == "*" and config.routing[0].venue_weights == (
        ("XNAS", 1.0), ("DARK", 1.0))
    assert config.engine.name == "sor" and config.risk.max_open_orders == 500


def test_the_embedded_default_loads_and_matches_the_demo_venues():
    config = default_config()
    assert [(v.venue_id, v.name, v.kind, v.book_type) for v in config.venues] == [
        (0, "XNAS", VenueKind.LIT, BookType.L3), (1, "BATS", VenueKind.LIT, BookType.L3),
        (2, "EDGX", VenueKind.LIT, BookType.L3), (3, "IEXG", VenueKind.LIT, BookType.L2),
        (4, "DARK", VenueKind.DARK, None)]
    assert [i.symbol for i in config.instruments] == ["AAPL", "MSFT", "SPY"]
    assert config.source.endswith("default.toml")
    shipped = resources.files("sor.config").joinpath("default.toml")
    assert shipped.is_file() and loads(shipped.read_text(encoding="utf-8")) == config
    assert default_config() is config   # built once; frozen, so safe to share


def test_the_colo_example_loads():
    config = load(COLO_EXAMPLE)
    assert config.source == str(COLO_EXAMPLE)
    engine = config.engine
    assert (engine.cpu, engine.sched_fifo, engine.mlockall, engine.idle_strategy) == (
        3, True, True, IdleStrategy.SPIN)
    assert any(not v.lit for v in config.venues) and any(not v.enabled for v in config.venues)
    assert all(v.fix is not None and v.fix.host.startswith("10.") for v in config.venues)
    assert config.routing_rule("SPY").instrument == "SPY"
    assert config.routing_rule("BRK.B").instrument == "*"
    assert loads(dump(config)) == config


def test_every_key_has_a_unit_or_is_unitless_by_nature():
    unitless = {"price_tick_usd", "venue_id", "name", "kind", "book_type", "enabled", "host",
                "port", "sender_comp_id", "target_comp_id", "begin_string", "instrument_id",
                "symbol", "venues", "instrument", "venue_weights", "dark_first", "max_open_orders",
                "max_orders_per_second", "max_messages_per_second", "max_participation_rate",
                "state", "restricted_symbols", "accounts", "trading_day", "guardrails",
                "fallback_policy", "fallback_policy_params", "latency_breaches",
                "fill_rate_enabled", "fill_rate_floor_ratio", "concentration_enabled",
                "concentration_max_share", "drift_enabled", "drift_psi_threshold",
                "drift_features", "cpu", "sched_fifo", "sched_priority", "mlockall",
                "idle_strategy", "stale_segment_policy", "max_venues_per_order", "fees", "fix",
                "instruments", "routing", "risk", "engine", "policy", "policy_params"}
    units = ("_ns", "_ms", "_s", "_usd", "_usd_per_share", "_shares", "_ticks", "_bps",
             "_records", "_policy", "_annual", "_range", "_us", "_children", "_decisions")

    def keys(table):
        for key, value in table.items():
            yield key
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, dict) and key != "venue_weights":
                    yield from keys(child)

    for key in keys(to_dict(load(COLO_EXAMPLE))):
        assert key in unitless or key.endswith(units), key


@pytest.mark.parametrize(("text", "key", "reason"), [
    (MINIMAL.replace('kind = "lit"', 'kind = "lit"\nfee = 0.003'), "venues[0].fee",
     "unknown key 'fee'; did you mean 'fees'?"),
    (MINIMAL.replace('kind = "lit"', 'kind = "lit"\ntaker_fee = 0.003'), "venues[0].taker_fee",
     "unknown key 'taker_fee'; did you mean 'fees.taker_fee_usd_per_share'?"),
    (MINIMAL.replace('kind = "lit"', 'kind = "lit"\nhost = "h"'), "venues[0].host",
     "unknown key 'host'; did you mean 'fix.host'?"),
    (MINIMAL.replace('kind = "lit"', 'kind = "lit"\nlatency_ns = 5'), "venues[0].latency_ns",
     "did you mean 'ack_latency_ns'?"),
    (MINIMAL + "[venues.fees]\ntaker_fee = 0.001\n", "venues[1].fees.taker_fee",
     "unknown key 'taker_fee'; did you mean 'taker_fee_usd_per_share'?"),
    (MINIMAL + "[risk]\nmax_oder_quantity_shares = 5\n", "risk.max_oder_quantity_shares",
     "did you mean 'max_order_quantity_shares'?"),
    (MINIMAL + "[engin]\n", "engin", "unknown key 'engin'; did you mean 'engine'?"),
    (MINIMAL + "[zzz]\n", "zzz", "unknown key 'zzz'"),
    (MINIMAL.replace('name = "XNAS"\n', ""), "venues[0].name", "is required and missing"),
    (MINIMAL.replace('[[routing]]\nvenue_weights = { XNAS = 1.0, DARK = 1 }\n', ""), "routing",
     "is required and missing"),
    (MINIMAL.replace("venue_id = 1", "venue_id = true"), "venues[1].venue_id",
     "must be an integer, got bool True"),
    (MINIMAL.replace("venue_id = 1", "venue_id = 1.0"), "venues[1].venue_id",
     "must be an integer, got float 1.0"),
    (MINIMAL.replace("venue_id = 1", 'venue_id = "1"'), "venues[1].venue_id",
     "must be an integer, got str '1'"),
    (MINIMAL + "[risk]\nmax_order_notional_usd = \"1e6\"\n", "risk.max_order_notional_usd",
     "must be a number"),
    (MINIMAL + "[engine]\ncpu = 3.0\n", "engine.cpu",
     "must be an integer"),
    ("risk = 5\n" + MINIMAL, "risk", "must be a table, got int 5"),
    ("venues = 5\n" + MINIMAL[MINIMAL.index("[[instruments]]"):], "venues",
     "must be an array of tables, got int 5"),
    (MINIMAL + "[venues.fees]\ntaker_fee_usd_per_share = 0.0031\n", None, None),
    (MINIMAL.replace('kind = "lit"', 'kind = "lit"\n[venues.fees]\n'
                     'taker_fee_usd_per_share = 0.005'), "venues[0].fees.taker_fee_usd_per_share",
     "must be <= 0.0030 USD/share (Reg NMS Rule 610 access fee cap) for a lit venue, got 0.005"),
    (MINIMAL.replace('kind = "dark"', 'kind = "dark"\nbook_type = "L2"'), "venues[1].book_type",
     "must be absent for a dark venue"),
    (MINIMAL.replace("DARK = 1", "DRAK = 1"), "routing[0].venue_weights.DRAK",
     "names no configured venue; did you mean 'DARK'?"),
    (MINIMAL.replace("venue_weights = {", "venue_weights = [1]\n#"), "routing[0].venue_weights",
     "pairs"),
    (MINIMAL + "[engine]\nmd_ring_capacity_records = 65535\n", "engine.md_ring_capacity_records",
     "must be a power of two, got 65535"),
])
def test_bad_values_are_refused_with_file_key_and_reason(text, key, reason):
    if key is None:   # a dark venue may charge above the lit cap: accepted
        assert loads(text).venue("DARK").fees.taker_fee_usd_per_share == 0.0031
        return
    error = refusal(text)
    assert error.key == key and reason in error.reason, str(error)
    assert str(error) == f"desk.toml: {key}: {error.reason}"


def test_syntax_errors_and_unreadable_files_name_the_file(tmp_path):
    error = refusal("[[venues]\n")
    assert error.key is None and error.reason.startswith("not valid TOML")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "missing.toml")
    assert caught.value.source == str(tmp_path / "missing.toml")
    assert "cannot read the file" in caught.value.reason
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(binary)


def test_strings_with_quotes_and_backslashes_round_trip():
    config = loads(MINIMAL)
    endpoint = FixEndpoint(host="h", port=1, sender_comp_id='A"B\\C', target_comp_id="~!#'")
    odd = config.replace(venues=(config.venues[0].replace(fix=endpoint), config.venues[1]))
    assert loads(dump(odd)).venue("XNAS").fix == endpoint


def test_save_writes_atomically_and_keeps_the_file_mode(tmp_path):
    path = tmp_path / "router.toml"
    save(default_config(), path)
    assert load(path) == default_config()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    os.chmod(path, 0o600)
    save(loads(MINIMAL), path)
    assert load(path) == loads(MINIMAL) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["router.toml"]


def test_from_dict_accepts_enum_members_and_built_objects():
    data = to_dict(loads(MINIMAL))
    data["venues"][1]["kind"] = VenueKind.DARK
    data["venues"][0]["book_type"] = BookType.L2
    data["risk"] = default_config().risk
    config = from_dict(data, source="built")
    assert isinstance(config, RouterConfig) and config.source == "built"
    assert config.venue("XNAS").book_type is BookType.L2
    with pytest.raises(ConfigError, match="must be a table"):
        from_dict([])  # type: ignore[arg-type]


def test_the_engine_policy_is_configured_and_checked_by_name():
    base = MINIMAL + '\n[engine]\npolicy = "ml_router"\ndecision_interval_ms = 500\n' \
        'policy_params = { schedule_power = 0.5, passive_lifetime_s = 5 }\n'
    config = loads(base)
    assert config.engine.policy == "ml_router"
    assert dict(config.engine.policy_params) == {"schedule_power": 0.5, "passive_lifetime_s": 5.0}
    assert loads(dump(config)) == config
    with pytest.raises(ConfigError, match="engine.policy: .*unknown policy 'nope'"):
        loads(MINIMAL + '\n[engine]\npolicy = "nope"\n')
    with pytest.raises(ConfigError, match="engine.policy_params: .*schedule_power"):
        loads(MINIMAL + '\n[engine]\npolicy = "ml_router"\npolicy_params = { schedule_power = -1 }\n')
    with pytest.raises(ConfigError, match="engine.policy_params: given without a policy"):
        loads(MINIMAL + '\n[engine]\npolicy_params = { slices = 3 }\n')
