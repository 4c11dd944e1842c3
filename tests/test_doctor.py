"""sor doctor: checks against fake /proc and /sys trees of a tuned and an untuned host, and a
read-only run against this host."""

from __future__ import annotations

import builtins
import json
import os
import types
from pathlib import Path

import pytest

from sor import cli, doctor
from sor.doctor import CHECK_IDS, STATUSES, ProcessLimits
from sor.errors import ConfigError

TUNED_FILES = {
    "proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=managed_irq,domain,3 nohz_full=3 "
                    "rcu_nocbs=3 irqaffinity=0-1 intel_idle.max_cstate=1 -- init_argument",
    "sys/devices/system/cpu/present": "0-3",
    "sys/devices/system/cpu/possible": "0-3",
    "sys/devices/system/cpu/online": "0-3",
    "sys/devices/system/cpu/isolated": "3",
    "sys/devices/system/cpu/nohz_full": "3",
    "sys/devices/system/cpu/smt/control": "off",
    "sys/devices/system/cpu/cpu3/topology/thread_siblings_list": "3",
    "sys/devices/system/cpu/cpu3/cpufreq/scaling_governor": "performance",
    "sys/devices/system/cpu/cpu3/cpuidle/state0/name": "POLL",
    "sys/devices/system/cpu/cpu3/cpuidle/state0/latency": "0",
    "sys/devices/system/cpu/cpu3/cpuidle/state0/disable": "0",
    "sys/devices/system/cpu/cpu3/cpuidle/state1/name": "C1",
    "sys/devices/system/cpu/cpu3/cpuidle/state1/latency": "2",
    "sys/devices/system/cpu/cpu3/cpuidle/state1/disable": "0",
    "sys/devices/system/cpu/cpu3/cpuidle/state2/name": "C6",
    "sys/devices/system/cpu/cpu3/cpuidle/state2/latency": "133",
    "sys/devices/system/cpu/cpu3/cpuidle/state2/disable": "1",
    "proc/irq/default_smp_affinity": "3",
    "proc/irq/24/smp_affinity_list": "0-1",
    "proc/irq/24/effective_affinity_list": "0",
    "proc/irq/40/smp_affinity_list": "0-1",
    "proc/irq/40/effective_affinity_list": "1",
    "proc/irq/50/smp_affinity_list": "3",  # a per-cpu queue
    "proc/irq/50/effective_affinity_list": "3",
    "proc/interrupts": "           CPU0       CPU1       CPU2       CPU3\n"
                       " 24:    1    0    0    0  IO-APIC   2-edge      timer\n"
                       " 40:    9    0    0    0  PCI-MSIX  0-edge      eth2-rx-0\n"
                       " 50:    0    0    0    4  PCI-MSIX  3-edge      nvme0q4\n"
                       "LOC:  100  100  100  100  Local timer interrupts\n",
    "proc/1/comm": "systemd",
    "proc/100/comm": "sshd",
    "proc/self/status": "Name:\tsor\nCapEff:\t0000000000000000\n",
    "proc/sys/kernel/sched_rt_runtime_us": "-1",
    "proc/sys/kernel/sched_rt_period_us": "1000000",
    "proc/sys/kernel/timer_migration": "0",
    "proc/sys/kernel/numa_balancing": "0",
    "proc/sys/vm/swappiness": "10",
    "proc/swaps": "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
    "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc",
    "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet acpi_pm",
    "proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n\n"
                    "processor\t: 1\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n",
    "sys/kernel/mm/transparent_hugepage/enabled": "always madvise [never]",
    "proc/meminfo": "MemTotal:       65536000 kB\nHugePages_Total:    1024\nHugePages_Free:     1000\n"
                    "HugePages_Rsvd:        0\nHugepagesize:       2048 kB\n",
    "proc/mounts": "/dev/sda1 / ext4 rw,relatime 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n"
                   "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    "sys/devices/system/node/online": "0-1",
    "sys/devices/system/node/node0/cpulist": "0-1",
    "sys/devices/system/node/node1/cpulist": "2-3",
    "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages": "512",
    "sys/class/net/eth2/device/numa_node": "1",
    "sys/class/net/lo/mtu": "65536",
}

UNTUNED_CHANGES = {
    # nohz_full after "--" belongs to init and must not count.
    "proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet -- nohz_full=3",
    "sys/devices/system/cpu/isolated": "",
    "sys/devices/system/cpu/nohz_full": "(null)",
    "sys/devices/system/cpu/smt/control": "on",
    "sys/devices/system/cpu/cpu3/topology/thread_siblings_list": "1,3",
    "sys/devices/system/cpu/cpu3/cpufreq/scaling_governor": "powersave",
    "sys/devices/system/cpu/cpu3/cpuidle/state2/disable": "0",
    "proc/irq/default_smp_affinity": "f",
    "proc/irq/24/smp_affinity_list": "0-3",
    "proc/irq/24/effective_affinity_list": "3",
    "proc/200/comm": "irqbalance",
    "proc/sys/kernel/sched_rt_runtime_us": "950000",
    "proc/sys/kernel/timer_migration": "1",
    "proc/sys/kernel/numa_balancing": "1",
    "proc/sys/vm/swappiness": "60",
    "proc/swaps": "Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 8388604 0 -2\n",
    "sys/devices/system/clocksource/clocksource0/current_clocksource": "hpet",
    "sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never",
    "proc/meminfo": "MemTotal:       65536000 kB\nHugePages_Total:       0\nHugePages_Free:        0\n"
                    "Hugepagesize:       2048 kB\n",
    "proc/mounts": "/dev/sda1 / ext4 rw,relatime 0 0\n",
    "sys/class/net/eth2/device/numa_node": "0",
}

UNTUNED_STATUSES = {
    "cpu_online": "ok", "isolcpus": "fail", "nohz_full": "fail", "rcu_nocbs": "warn",
    "irq_affinity": "fail", "irqbalance": "warn", "smt": "warn", "governor": "warn",
    "cstates": "warn", "rt_throttling": "fail", "timer_migration": "warn", "clocksource": "fail",
    "thp": "warn", "hugepages": "warn", "numa": "warn", "numa_balancing": "warn", "swap": "warn",
    "memlock": "warn", "rtprio": "warn", "shm": "fail",
}

TUNED_LIMITS = ProcessLimits(memlock_bytes=None, rtprio=90, effective_uid=1000, effective_capabilities=0)
UNTUNED_LIMITS = ProcessLimits(memlock_bytes=65536, rtprio=0, effective_uid=1000, effective_capabilities=0)
GIBIBYTE = 2**30


def fake_statvfs(free_bytes: int = 8 * GIBIBYTE, total_bytes: int = 16 * GIBIBYTE):
    """Returns a statvfs stand-in reporting the given free and total bytes."""
    block = 4096
    return lambda path: types.SimpleNamespace(
        f_frsize=block, f_bavail=free_bytes // block, f_blocks=total_bytes // block)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Writes a fake host tree: relative path -> contents; returns the root."""
    for relative, contents in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents + ("" if contents.endswith("\n") else "\n"))
    (root / "dev" / "shm").mkdir(parents=True, exist_ok=True)
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Returns every path below root with its contents, mode and modification time."""
    entries = {}
    for directory, directories, files in os.walk(root):
        for name in directories + files:
            path = Path(directory) / name
            status = path.stat()
            contents = path.read_bytes() if path.is_file() else b""
            entries[str(path.relative_to(root))] = (contents, status.st_mode, status.st_mtime_ns)
    return entries


@pytest.fixture
def tuned_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "tuned", TUNED_FILES)


@pytest.fixture
def untuned_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "untuned", {**TUNED_FILES, **UNTUNED_CHANGES})


def statuses(checks: list[doctor.Check]) -> dict[str, str]:
    return {check.id: check.status for check in checks}


def by_id(checks: list[doctor.Check], check_id: str) -> doctor.Check:
    return next(check for check in checks if check.id == check_id)


def run(root: Path, cpu: int = 3, limits: ProcessLimits = TUNED_LIMITS, **keywords) -> list[doctor.Check]:
    keywords.setdefault("statvfs", fake_statvfs())
    return doctor.run_checks(cpu, root=root, limits=limits, **keywords)


def test_tuned_host_passes_every_check(tuned_root: Path) -> None:
    checks = run(tuned_root)
    assert [check.id for check in checks] == list(CHECK_IDS)
    assert statuses(checks) == dict.fromkeys(CHECK_IDS, "ok"), [c for c in checks if c.status != "ok"]
    assert doctor.exit_code(checks) == 0
    assert "1 IRQ(s) bound to cpu 3 alone" in by_id(checks, "irq_affinity").detail
    assert "nvme0q4" in by_id(checks, "irq_affinity").detail
    assert "node 1" in by_id(checks, "numa").detail and "eth2" in by_id(checks, "numa").detail
    assert "512 on node 1" in by_id(checks, "hugepages").detail


def test_untuned_host_fails_the_isolation_checks(untuned_root: Path) -> None:
    checks = run(untuned_root, limits=UNTUNED_LIMITS)
    assert statuses(checks) == UNTUNED_STATUSES
    assert doctor.exit_code(checks) == 1
    assert "24 (timer)" in by_id(checks, "irq_affinity").detail
    assert "50000 us every period" in by_id(checks, "rt_throttling").detail
    assert "tsc is available" in by_id(checks, "clocksource").detail
    assert "sibling cpu(s) 1" in by_id(checks, "smt").detail
    assert "C6 (133 us)" in by_id(checks, "cstates").detail


def test_every_check_names_its_guide_section(untuned_root: Path) -> None:
    for check in run(untuned_root):
        assert check.status in STATUSES
        assert check.fix == f"deploy/TUNING.md, section {check.id}"
        assert check.title and check.detail


def test_runs_leave_the_tree_untouched(tuned_root: Path, untuned_root: Path, capsys) -> None:
    for root in (tuned_root, untuned_root):
        before = snapshot(root)
        run(root)
        cli.main(["doctor", "--root", str(root), "--json"])
        cli.main(["doctor", "--root", str(root)])
        assert snapshot(root) == before
    capsys.readouterr()


def test_cpu_that_does_not_exist_or_is_offline_fails(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {**TUNED_FILES, "sys/devices/system/cpu/online": "0-2"})
    assert by_id(run(root, cpu=9), "cpu_online").status == "fail"
    assert "does not exist" in by_id(run(root, cpu=9), "cpu_online").detail
    offline = by_id(run(root, cpu=3), "cpu_online")
    assert (offline.status, "offline" in offline.detail) == ("fail", True)


def test_virtual_machine_without_cpufreq_or_cpuidle_reports_not_applicable(tmp_path: Path) -> None:
    files = {name: text for name, text in TUNED_FILES.items() if "/cpufreq/" not in name and "/cpuidle/" not in name}
    checks = run(write_tree(tmp_path, files))
    assert by_id(checks, "governor").status == "n/a"
    assert "no cpufreq" in by_id(checks, "governor").detail
    assert by_id(checks, "cstates").status == "n/a"


def test_idle_poll_satisfies_cstates(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "proc/cmdline": "root=/dev/sda1 idle=poll",
             "sys/devices/system/cpu/cpu3/cpuidle/state2/disable": "0"}
    assert by_id(run(write_tree(tmp_path, files)), "cstates").status == "ok"


def test_irq_allowed_on_the_engine_cpu_but_delivered_elsewhere_warns(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "proc/irq/40/smp_affinity_list": "0-3", "proc/irq/40/effective_affinity_list": "1"}
    check = by_id(run(write_tree(tmp_path, files)), "irq_affinity")
    assert check.status == "warn" and "40 (eth2-rx-0)" in check.detail


def test_irq_without_effective_affinity_counts_where_it_is_allowed(tmp_path: Path) -> None:
    files = {name: text for name, text in TUNED_FILES.items() if "effective_affinity" not in name}
    files["proc/irq/40/smp_affinity_list"] = "1-3"
    assert by_id(run(write_tree(tmp_path, files)), "irq_affinity").status == "fail"


def test_default_irq_affinity_including_the_engine_cpu_warns(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "proc/irq/default_smp_affinity": "f"}
    assert by_id(run(write_tree(tmp_path, files)), "irq_affinity").status == "warn"


def test_irqbalance_with_the_engine_cpu_banned_is_ok(untuned_root: Path) -> None:
    (untuned_root / "etc/default").mkdir(parents=True)
    (untuned_root / "etc/default/irqbalance").write_text('IRQBALANCE_BANNED_CPULIST="2-3"\n')
    assert by_id(run(untuned_root), "irqbalance").status == "ok"
    (untuned_root / "etc/default/irqbalance").write_text("IRQBALANCE_BANNED_CPUS=00000004\n")
    assert by_id(run(untuned_root), "irqbalance").status == "warn"
    (untuned_root / "etc/default/irqbalance").write_text("IRQBALANCE_BANNED_CPUS=00000008\n")
    assert by_id(run(untuned_root), "irqbalance").status == "ok"


def test_rcu_nocbs_is_implied_by_nohz_full(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "proc/cmdline": "isolcpus=managed_irq,domain,3 nohz_full=3"}
    check = by_id(run(write_tree(tmp_path, files)), "rcu_nocbs")
    assert check.status == "ok" and "implies" in check.detail


def test_isolcpus_without_managed_irq_is_noted(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "proc/cmdline": "isolcpus=3 nohz_full=3"}
    check = by_id(run(write_tree(tmp_path, files)), "isolcpus")
    assert check.status == "ok" and "managed_irq" in check.detail


def test_kernel_without_nohz_full_support_fails(tmp_path: Path) -> None:
    files = {name: text for name, text in TUNED_FILES.items() if not name.endswith("/nohz_full")}
    files["proc/cmdline"] = "isolcpus=managed_irq,domain,3"
    assert by_id(run(write_tree(tmp_path, files)), "nohz_full").status == "fail"


@pytest.mark.parametrize(("clocksource", "flags", "status"), [
    ("tsc", "fpu tsc constant_tsc", "warn"),
    ("kvm-clock", "fpu tsc constant_tsc nonstop_tsc", "warn"),
    ("arch_sys_counter", None, "ok"),
    ("acpi_pm", "fpu", "fail"),
])
def test_clocksource(tmp_path: Path, clocksource: str, flags: str | None, status: str) -> None:
    files = {**TUNED_FILES, "sys/devices/system/clocksource/clocksource0/current_clocksource": clocksource,
             "proc/cpuinfo": f"processor\t: 0\nflags\t\t: {flags}\n" if flags else "processor\t: 0\n"}
    assert by_id(run(write_tree(tmp_path, files)), "clocksource").status == status


def test_single_numa_node_is_ok_and_hugepages_need_a_mount(tmp_path: Path) -> None:
    files = {name: text for name, text in TUNED_FILES.items() if "node1" not in name}
    files["sys/devices/system/node/node0/cpulist"] = "0-3"
    files["proc/mounts"] = "tmpfs /dev/shm tmpfs rw 0 0\n"
    checks = run(write_tree(tmp_path, files))
    assert by_id(checks, "numa").status == "ok" and "single NUMA node" in by_id(checks, "numa").detail
    assert by_id(checks, "hugepages").status == "warn" and "no hugetlbfs" in by_id(checks, "hugepages").detail


def test_hugepages_missing_on_the_engine_node_warn(tmp_path: Path) -> None:
    files = {**TUNED_FILES, "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages": "0"}
    assert by_id(run(write_tree(tmp_path, files)), "hugepages").status == "warn"


def test_shm_space_and_filesystem(tuned_root: Path) -> None:
    low = run(tuned_root, statvfs=fake_statvfs(free_bytes=64 * 2**20))
    assert by_id(low, "shm").status == "warn"
    (tuned_root / "proc/mounts").write_text("/dev/sda1 / ext4 rw 0 0\n/dev/sda3 /dev/shm ext4 rw 0 0\n")
    assert by_id(run(tuned_root), "shm").status == "fail"


def test_limits_lifted_by_capabilities(tuned_root: Path) -> None:
    capabilities = 1 << 14 | 1 << 23  # CAP_IPC_LOCK, CAP_SYS_NICE
    limits = ProcessLimits(memlock_bytes=65536, rtprio=0, effective_uid=0, effective_capabilities=capabilities)
    checks = run(tuned_root, limits=limits)
    assert (by_id(checks, "memlock").status, by_id(checks, "rtprio").status) == ("ok", "ok")


def test_capabilities_are_read_below_the_root(tuned_root: Path) -> None:
    (tuned_root / "proc/self/status").write_text("CapEff:\t0000000000804000\n")
    limits = ProcessLimits.of_current_process(doctor.Host(tuned_root))
    assert limits.effective_capabilities == 1 << 14 | 1 << 23


@pytest.mark.parametrize(("text", "cpus"), [
    ("0-3,5,8-9", {0, 1, 2, 3, 5, 8, 9}), ("7", {7}), ("", set()), ("(null)", set()),
    ("0-7:2/4", {0, 1, 4, 5}),
])
def test_parse_cpu_list(text: str, cpus: set[int]) -> None:
    assert doctor.parse_cpu_list(text) == cpus
    if cpus:
        assert doctor.parse_cpu_list(doctor.format_cpu_list(cpus)) == cpus


def test_cpu_comes_from_the_option_then_the_configuration_then_the_highest_online(
        tuned_root: Path, tmp_path: Path, capsys) -> None:
    configuration = tmp_path / "colo.toml"
    configuration.write_text('[engine]\nname = "colo"\ncpu = 2\nsched_fifo = true\n')
    reports = []
    for arguments in (["--cpu", "1", "--config", str(configuration)], ["--config", str(configuration)], []):
        cli.main(["doctor", "--json", "--root", str(tuned_root), *arguments])
        reports.append(json.loads(capsys.readouterr().out))
    assert [report["cpu"] for report in reports] == [1, 2, 3]
    assert reports[1]["cpu_source"] == f"[engine] cpu of {configuration}"


@pytest.mark.parametrize("contents", ["[engine]\nname = 'colo'\n", "[engine]\ncpu = true\n", "[engine\ncpu = 3\n"])
def test_bad_configuration_is_a_usage_error(tmp_path: Path, contents: str, capsys) -> None:
    configuration = tmp_path / "bad.toml"
    configuration.write_text(contents)
    with pytest.raises(ConfigError):
        doctor.cpu_from_config(configuration)
    assert cli.main(["doctor", "--config", str(configuration)]) == 2
    assert "sor: error:" in capsys.readouterr().err


def test_text_report_has_a_line_per_check_and_the_exit_code(untuned_root: Path, tuned_root: Path, capsys) -> None:
    assert cli.main(["doctor", "--root", str(untuned_root), "--cpu", "3"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sor doctor: engine cpu 3 (--cpu)")
    assert [line.split()[1] for line in lines[1:-1]] == list(CHECK_IDS)
    assert lines[1:-1][1].split()[0] == "fail"  # isolcpus
    assert lines[-1].startswith("summary: ") and lines[-1].endswith("exit 1")
    # Real process limits and the real filesystem below tmp_path can only warn, so the tuned tree exits 0.
    assert cli.main(["doctor", "--root", str(tuned_root), "--cpu", "3"]) == 0
    capsys.readouterr()


def test_this_host_gives_a_well_formed_report_without_writing(monkeypatch, capsys) -> None:
    real_open = builtins.open

    def read_only_open(file, mode="r", *arguments, **keywords):
        assert not set(str(mode)) & set("wax+"), f"doctor opened {file} with mode {mode}"
        return real_open(file, mode, *arguments, **keywords)

    monkeypatch.setattr(builtins, "open", read_only_open)
    code = cli.main(["doctor", "--json"])
    monkeypatch.undo()
    report = json.loads(capsys.readouterr().out)
    assert [check["id"] for check in report["checks"]] == list(CHECK_IDS)
    for check in report["checks"]:
        assert set(check) == {"id", "title", "status", "detail", "fix"}
        assert check["status"] in STATUSES and check["detail"]
    assert sum(report["summary"].values()) == len(CHECK_IDS)
    assert report["exit_code"] == code == (1 if report["summary"]["fail"] else 0)
    assert isinstance(report["cpu"], int) and report["cpu_source"] == "highest online cpu"
