"""sor.fix.config: sessions from TOML ([defaults] + [[sessions]]), defaults as documented,
every refusal names the file and the key."""

from __future__ import annotations

import dataclasses

import pytest

from sor.errors import ConfigError
from sor.fix.config import SessionConfig, load_sessions, loads_sessions

EXAMPLE = """
[defaults]
store_dir = "var/test"
begin_string = "FIX.4.2"

[[sessions]]
name = "OMS"
role = "acceptor"
sender_comp_id = "SOR"
target_comp_id = "OMS"
port = 9878
reset_on_logon = true

[[sessions]]
name = "XNAS"
role = "initiator"
begin_string = "FIX.4.4"
sender_comp_id = "SOR"
target_comp_id = "XNAS"
port = 9001
heartbeat_interval_s = 5
application = "venue"
venue = "XNAS"
store_path = "/tmp/xnas-store"
"""


def test_example_file_loads_with_defaults(tmp_path):
    path = tmp_path / "sessions.toml"
    path.write_text(EXAMPLE)
    oms, xnas = load_sessions(path)
    assert oms == SessionConfig(name="OMS", role="acceptor", begin_string="FIX.4.2",
                                sender_comp_id="SOR", target_comp_id="OMS", port=9878,
                                reset_on_logon=True, store_dir="var/test")
    assert oms.resolved_store_path == "var/test/OMS"
    assert (oms.heartbeat_interval_s, oms.sending_time_tolerance_s, oms.logon_timeout_s,
            oms.logout_timeout_s, oms.max_message_bytes, oms.store_sync) == (30, 120.0, 10.0,
                                                                          2.0, 65536, "write")
    assert xnas.is_initiator and xnas.begin_string == "FIX.4.4"
    assert xnas.resolved_store_path == "/tmp/xnas-store"
    assert (xnas.application, xnas.venue, xnas.heartbeat_interval_s) == ("venue", "XNAS", 5)
    assert load_sessions(EXAMPLE) == [oms, xnas]          # text works as well as a path


def test_documented_defaults():
    config = SessionConfig(name="S")
    expected = dict(role="acceptor", begin_string="FIX.4.4", sender_comp_id="SOR",
                    target_comp_id="OMS", host="127.0.0.1", port=9878, heartbeat_interval_s=30,
                    reset_on_logon=False, reset_on_logout=False, reset_on_disconnect=False,
                    store_path="", store_sync="write", sending_time_tolerance_s=120,
                    logon_timeout_s=10, logout_timeout_s=2, reconnect_interval_s=1.0,
                    max_message_bytes=65536, application="oms", venue="", store_dir="var/fix")
    assert {key: getattr(config, key) for key in expected} == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("entry, key, reason", [
    ('begin_string = "FIX.4.3"', "sessions[0].begin_string", "must be one of FIX.4.2, FIX.4.4"),
    ('sender_comp_id = ""', "sessions[0].sender_comp_id", "must not be empty"),
    ('target_comp_id = ""', "sessions[0].target_comp_id", "must not be empty"),
    ('target_comp_id = "A=B"', "sessions[0].target_comp_id", "must not contain"),
    ("port = 70000", "sessions[0].port", "0..65535"),
    ("port = -1", "sessions[0].port", "0..65535"),
    ('port = "9878"', "sessions[0].port", "must be an integer"),
    ("heartbeat_interval_s = 0", "sessions[0].heartbeat_interval_s", "must be positive"),
    ("logout_timeout_s = 0.0", "sessions[0].logout_timeout_s", "positive number of seconds"),
    ("reconnect_interval_s = -1", "sessions[0].reconnect_interval_s", "positive number"),
    ('role = "both"', "sessions[0].role", "must be one of acceptor, initiator"),
    ('store_sync = "never"', "sessions[0].store_sync", "must be one of write, fsync"),
    ("reset_on_logon = 1", "sessions[0].reset_on_logon", "must be true or false"),
    ("max_message_bytes = 10", "sessions[0].max_message_bytes", "at least 256"),
    ('application = "x"', "sessions[0].application", "must be one of oms, venue"),
    ("hearbeat_interval_s = 5", "sessions[0].hearbeat_interval_s", "unknown key"),
])
def test_impossible_values_are_refused_naming_file_and_key(tmp_path, entry, key, reason):
    path = tmp_path / "bad.toml"
    path.write_text(f'[[sessions]]\nname = "OMS"\n{entry}\n')
    with pytest.raises(ConfigError) as caught:
        load_sessions(path)
    assert caught.value.source == str(path) and caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_structure_errors_are_refused():
    with pytest.raises(ConfigError, match="duplicate session name 'A'") as caught:
        loads_sessions('[[sessions]]\nname = "A"\n[[sessions]]\nname = "A"\nport = 1\n')
    assert caught.value.key == "sessions[1].name"
    with pytest.raises(ConfigError, match="is required") as caught:
        loads_sessions('[[sessions]]\nport = 1\n')
    assert caught.value.key == "sessions[0].name"
    with pytest.raises(ConfigError, match="unknown table") as caught:
        loads_sessions('[session]\nname = "A"\n')
    assert caught.value.key == "session"
    with pytest.raises(ConfigError, match="unknown key") as caught:
        loads_sessions('[defaults]\nport_number = 1\n[[sessions]]\nname = "A"\n')
    assert caught.value.key == "defaults.port_number"
    with pytest.raises(ConfigError, match="cannot have a default"):
        loads_sessions('[defaults]\nname = "A"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads_sessions('[[sessions]\nname = "A"\n')
    with pytest.raises(ConfigError, match="already sessions\\[0\\]") as caught:
        loads_sessions('[[sessions]]\nname = "A"\n[[sessions]]\nname = "B"\n')
    assert caught.value.key == "sessions[1].target_comp_id"


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file") as caught:
        load_sessions(tmp_path / "missing.toml")
    assert caught.value.source == str(tmp_path / "missing.toml")


def test_direct_construction_is_validated():
    with pytest.raises(ConfigError, match="port"):
        SessionConfig(name="S", port=65536)
    assert SessionConfig(name="S").replace(port=1).port == 1
    with pytest.raises(ConfigError, match="begin_string"):
        SessionConfig(name="S").replace(begin_string="FIXT.1.1")
