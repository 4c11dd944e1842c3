"""sor.config.store: updates validated in full, then swapped; refusals change nothing."""

from __future__ import annotations

import threading

import pytest

from sor.config import (
    ConfigError,
    ConfigStore,
    RiskState,
    Venue,
    VenueKind,
    default_config,
    restart_only_reason,
    with_changes,
)
from sor.errors import UsageError


def bump_open_orders(config):
    return with_changes(config, "risk.max_open_orders", config.risk.max_open_orders + 1)


def test_an_update_swaps_bumps_the_version_and_returns_the_changes():
    store = ConfigStore(default_config())
    assert store.version == 0 and store.current is default_config()
    changes = store.update(with_changes(default_config(), "risk.state", "HALTED"))
    assert [str(c) for c in changes] == ['risk.state: "ACTIVE" -> "HALTED"']
    assert store.version == 1 and store.current.risk.state is RiskState.HALTED
    assert store.snapshot() == (1, store.current)
    assert store.update(store.current) == [] and store.version == 1   # nothing changed


def test_a_refused_update_leaves_config_and_version_as_they_were():
    store = ConfigStore(default_config())
    store.update(bump_open_orders)
    before = store.snapshot()
    with pytest.raises(ConfigError) as caught:
        store.update(lambda c: with_changes(c, "risk.max_participation_rate", 2.0))
    assert caught.value.key == "risk.max_participation_rate"
    assert store.snapshot() == before and store.snapshot()[1] is before[1]
    with pytest.raises(UsageError):
        store.update(lambda c: "not a config")  # type: ignore[arg-type, return-value]
    with pytest.raises(UsageError):
        ConfigStore({"venues": []})  # type: ignore[arg-type]
    assert store.snapshot() == before


def test_objects_tampered_with_after_construction_are_still_refused():
    store = ConfigStore(default_config())
    tampered = with_changes(default_config(), "risk.max_open_orders", 7)
    object.__setattr__(tampered.risk, "max_open_orders", -7)
    with pytest.raises(ConfigError) as caught:
        store.update(tampered)
    assert caught.value.key == "risk.max_open_orders" and store.version == 0


@pytest.mark.parametrize(("changes", "key"), [
    ({"engine.md_ring_capacity_records": 1024}, "engine.md_ring_capacity_records"),
    ({"engine.name": "other"}, "engine.name"),
    ({"engine.cpu": 5}, "engine.cpu"),
    ({"engine.mlockall": True}, "engine.mlockall"),
    ({"price_tick_usd": 0.01}, "price_tick_usd"),
    ({"venues[BATS].venue_id": 9}, "venues[BATS].venue_id"),
    ({"venues[IEXG].book_type": "L3"}, "venues[IEXG].book_type"),
    ({"instruments[AAPL].instrument_id": 77}, "instruments[AAPL].instrument_id"),
])
def test_a_running_store_refuses_restart_only_keys(changes, key):
    config = default_config()
    running = ConfigStore(config, running=True)
    with pytest.raises(ConfigError) as caught:
        running.update(with_changes(config, changes))
    assert caught.value.key == key and caught.value.reason.startswith("restart-only")
    assert running.snapshot() == (0, config)
    stopped = ConfigStore(config)
    assert [c.key for c in stopped.update(with_changes(config, changes))] == [key]
    assert stopped.version == 1


def test_a_running_store_refuses_adding_a_venue_but_takes_live_changes():
    config = default_config()
    store = ConfigStore(config)
    store.set_running(True)
    grown = config.replace(venues=config.venues + (Venue(venue_id=9, name="XNYS", kind="lit"),))
    with pytest.raises(ConfigError, match="set enabled = false") as caught:
        store.update(grown)
    assert caught.value.key == "venues[XNYS]" and store.version == 0
    live = with_changes(config, {"venues[XNAS].enabled": False, "risk.price_band_bps": 25,
                                 "engine.idle_strategy": "spin",
                                 "routing[*].venue_weights.DARK": 2.5,
                                 "instruments[SPY].lot_size_shares": 1})
    assert len(store.update(live)) == 5 and store.version == 1
    assert restart_only_reason("engine.idle_strategy") is None
    assert "rings are sized" in restart_only_reason("engine.exec_ring_capacity_records")


def test_checks_may_refuse_and_listeners_hear_every_swap_in_order():
    store = ConfigStore(default_config())
    heard = []
    store.add_listener(lambda new, changes, version: heard.append((version, [c.key for c in changes])))

    def no_dark_first(old, new, changes):
        if any(rule.dark_first for rule in new.routing) and new.venue("DARK").enabled is False:
            raise ConfigError("dark_first needs the dark pool enabled", key="venues[DARK].enabled")

    store.add_check(no_dark_first)
    with pytest.raises(ConfigError, match="dark pool enabled"):
        store.update(lambda c: with_changes(c, "venues[DARK].enabled", False))
    assert store.version == 0 and heard == []
    store.update(lambda c: with_changes(c, "routing[*].dark_first", False))
    store.update(lambda c: with_changes(c, "venues[DARK].enabled", False))
    assert heard == [(1, ["routing[*].dark_first"]), (2, ["venues[DARK].enabled"])]


def test_an_update_from_inside_a_check_is_refused():
    store = ConfigStore(default_config())
    store.add_check(lambda old, new, changes: store.update(bump_open_orders))
    with pytest.raises(UsageError, match="inside a check"):
        store.update(bump_open_orders)
    assert store.version == 0


def test_concurrent_updates_are_neither_lost_nor_torn():
    store = ConfigStore(default_config(), running=True)
    start = store.current.risk.max_open_orders
    threads_count, updates_each = 8, 60
    barrier = threading.Barrier(threads_count + 1)
    torn = []
    done = threading.Event()

    def writer(index):
        barrier.wait()
        for step in range(updates_each):
            store.update(bump_open_orders)
            if step % 10 == index % 10:   # a refused update now and then changes nothing
                with pytest.raises(ConfigError):
                    store.update(lambda c: with_changes(c, "engine.cpu", 7))

    def reader():
        barrier.wait()
        while not done.is_set():
            version, config = store.snapshot()
            if config.risk.max_open_orders != start + version:
                torn.append((version, config.risk.max_open_orders))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    watcher = threading.Thread(target=reader)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert store.version == threads_count * updates_each
    assert store.current.risk.max_open_orders == start + threads_count * updates_each
    assert torn == []
    assert "version=480" in repr(store)
