"""deploy/systemd: the engine and gateway units agree with each other, with the tuning guide and
with the example configuration; systemd-analyze accepts them where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sor import doctor
from sor.doctor import parse_cpu_list

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"
ENGINE = "sor-engine@.service"
GATEWAY = "sor-gateway@.service"
TARGET = "sor@.target"
EXAMPLE_ISOLATED_CPU = 3  # the example host of TUNING.md: 4 cpus, cpu 3 isolated


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Returns section -> key -> every value assigned, in order (systemd allows repeats)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw_line in path.read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: assignment outside a section: {line}"
        assert not line.endswith("\\"), "continuation lines make these checks unreliable"
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: not an assignment: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def value(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str | None:
    """Returns the effective (last) value of a key, or None when it is not set."""
    values = unit.get(section, {}).get(key)
    return values[-1] if values else None


def words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> list[str]:
    """Returns the space-separated words of every assignment of a list-valued key."""
    return [word for assignment in unit.get(section, {}).get(key, []) for word in assignment.split()]


@pytest.fixture(scope="module")
def engine() -> dict[str, dict[str, list[str]]]:
    return parse_unit(SYSTEMD / ENGINE)


@pytest.fixture(scope="module")
def gateway() -> dict[str, dict[str, list[str]]]:
    return parse_unit(SYSTEMD / GATEWAY)


def test_commands(engine, gateway) -> None:
    assert value(engine, "Service", "ExecStart") == "/opt/sor/venv/bin/sor engine --config /etc/sor/%i.toml --name %i"
    assert value(gateway, "Service", "ExecStart") == "/opt/sor/venv/bin/sor gateway --config /etc/sor/%i.toml --name %i"


def test_engine_may_lock_memory_and_raise_itself_to_sched_fifo(engine) -> None:
    assert value(engine, "Service", "LimitMEMLOCK") == "infinity"
    rtprio = int(value(engine, "Service", "LimitRTPRIO"))
    assert 1 <= rtprio <= 98  # the kernel's own RT threads keep the top
    assert value(engine, "Service", "RestrictRealtime") in (None, "no")
    assert "@system-service" in words(engine, "Service", "SystemCallFilter")


def test_no_process_wide_sched_fifo(engine, gateway) -> None:
    # A process-wide FIFO policy would starve the engine's SIGTERM-handling thread behind its
    # busy-polling one; the polling thread raises itself (see the comment in the unit).
    for unit in (engine, gateway):
        assert value(unit, "Service", "CPUSchedulingPolicy") in (None, "other")


def test_units_never_share_the_isolated_core(engine, gateway) -> None:
    for unit in (engine, gateway):
        affinity = parse_cpu_list(",".join(words(unit, "Service", "CPUAffinity")))
        assert affinity and EXAMPLE_ISOLATED_CPU not in affinity


def test_stop_drains_then_kills(engine, gateway) -> None:
    for unit in (engine, gateway):
        assert value(unit, "Service", "KillSignal") == "SIGTERM"
        assert value(unit, "Service", "KillMode") == "mixed"
        assert re.fullmatch(r"\d+s", value(unit, "Service", "TimeoutStopSec"))
        assert value(unit, "Service", "Restart") == "on-failure"
        assert value(unit, "Service", "RestartSec")
        assert int(value(unit, "Unit", "StartLimitBurst")) >= 1
        assert value(unit, "Unit", "StartLimitIntervalSec")


def test_gateway_is_bound_to_its_engine(gateway) -> None:
    for key in ("BindsTo", "Requires", "After"):
        assert "sor-engine@%i.service" in words(gateway, "Unit", key), key


def test_target_pulls_both_units(engine, gateway) -> None:
    target = parse_unit(SYSTEMD / TARGET)
    assert set(words(target, "Unit", "Wants")) == {"sor-engine@%i.service", "sor-gateway@%i.service"}
    for unit in (engine, gateway):
        assert words(unit, "Unit", "PartOf") == ["sor@%i.target"]
        assert words(unit, "Install", "WantedBy") == ["sor@%i.target"]


def test_rings_stay_shared_between_engine_and_gateway(engine, gateway) -> None:
    for unit in (engine, gateway):
        service = unit["Service"]
        assert (value(unit, "Service", "User"), value(unit, "Service", "Group")) == ("sor", "sor")
        assert "/dev/shm" in words(unit, "Service", "ReadWritePaths")
        # RemoveIPC (and DynamicUser, which implies it) deletes the user's shm objects on stop.
        assert value(unit, "Service", "RemoveIPC") in (None, "no")
        assert value(unit, "Service", "DynamicUser") in (None, "no")
        assert value(unit, "Service", "PrivateIPC") in (None, "no")
        for hiding_key in ("InaccessiblePaths", "TemporaryFileSystem", "ReadOnlyPaths"):
            assert not any(word.lstrip("-+").startswith("/dev") for word in service.get(hiding_key, [])), hiding_key
        assert value(unit, "Service", "UMask") == "0007"


def test_hardening(engine, gateway) -> None:
    for unit in (engine, gateway):
        assert value(unit, "Service", "ProtectSystem") == "strict"
        assert value(unit, "Service", "NoNewPrivileges") == "yes"
        assert value(unit, "Service", "CapabilityBoundingSet") == ""
        assert value(unit, "Service", "RuntimeDirectory")
    assert value(gateway, "Service", "RestrictRealtime") == "yes"


def test_example_configuration_fits_the_units(engine, gateway) -> None:
    from sor.config import load

    example = DEPLOY / "config" / "colo-example.toml"
    settings = load(example).engine
    assert doctor.cpu_from_config(example) == settings.cpu
    if settings.sched_fifo:
        assert settings.sched_priority <= int(value(engine, "Service", "LimitRTPRIO"))
    for unit in (engine, gateway):
        assert settings.cpu not in parse_cpu_list(",".join(words(unit, "Service", "CPUAffinity")))


def test_tuning_guide_has_a_section_per_doctor_check() -> None:
    guide = (DEPLOY / "TUNING.md").read_text()
    headings = re.findall(r"^## `([a-z_]+)`", guide, flags=re.MULTILINE)
    assert set(doctor.CHECK_IDS) <= set(headings), set(doctor.CHECK_IDS) - set(headings)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists; /opt/sor is absent on a build machine.
    for path in SYSTEMD.iterdir():
        text = path.read_text().replace("/opt/sor/venv/bin/sor", shutil.which("env") or "/usr/bin/env")
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         "sor-engine@colo.service", "sor-gateway@colo.service", "sor@colo.target"],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
