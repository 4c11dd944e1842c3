"""Read-only checks of a host against deploy/TUNING.md, behind ``sor doctor``.

Every check reads files under /proc and /sys (below a root prefix, so tests can use a fake
tree), resource limits and filesystem statistics; nothing on the host is ever written.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable
from pathlib import Path

from sor.errors import ConfigError

__all__ = [
    "Check", "ProcessLimits", "Host", "STATUSES", "CHECK_IDS", "SHM_MINIMUM_FREE_BYTES",
    "run_checks", "default_cpu", "cpu_from_config", "summarize", "exit_code", "format_report",
    "report_as_dict",
]

STATUSES = ("ok", "warn", "fail", "n/a")

CHECK_IDS = (
    "cpu_online", "isolcpus", "nohz_full", "rcu_nocbs", "irq_affinity", "irqbalance", "smt",
    "governor", "cstates", "rt_throttling", "timer_migration", "clocksource", "thp", "hugepages",
    "numa", "numa_balancing", "swap", "memlock", "rtprio", "shm",
)

SHM_MINIMUM_FREE_BYTES = 512 * 1024 * 1024
"""Free space /dev/shm needs for the rings of one engine at the example capacities."""

CSTATE_MAXIMUM_EXIT_LATENCY_US = 10
"""Deepest acceptable enabled C-state exit latency on the engine core, in microseconds."""

SWAPPINESS_MAXIMUM = 10

_CAP_IPC_LOCK = 14
_CAP_SYS_NICE = 23
_RLIMIT_RTPRIO = getattr(resource, "RLIMIT_RTPRIO", None)


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one check: ``status`` is one of STATUSES, ``fix`` names the guide section."""

    id: str
    title: str
    status: str
    detail: str
    fix: str


@dataclasses.dataclass(frozen=True)
class ProcessLimits:
    """Resource limits and capabilities of a process (None for an unlimited memlock)."""

    memlock_bytes: int | None
    rtprio: int
    effective_uid: int
    effective_capabilities: int

    @classmethod
    def of_current_process(cls, host: Host) -> ProcessLimits:
        """Returns the limits of this process, capabilities read from ``proc/self/status``."""
        memlock_soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        rtprio_soft = resource.getrlimit(_RLIMIT_RTPRIO)[0] if _RLIMIT_RTPRIO is not None else 0
        return cls(
            memlock_bytes=None if memlock_soft == resource.RLIM_INFINITY else int(memlock_soft),
            rtprio=99 if rtprio_soft == resource.RLIM_INFINITY else int(rtprio_soft),
            effective_uid=os.geteuid(),
            effective_capabilities=_effective_capabilities(host))


class Host:
    """A read-only view of /proc and /sys below a filesystem root prefix."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)

    def path(self, absolute: str) -> Path:
        """Returns the path of ``absolute`` (e.g. "/proc/cmdline") below the root prefix."""
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str) -> str | None:
        """Returns a file's stripped text, or None when it is missing or unreadable."""
        try:
            with open(self.path(absolute), encoding="utf-8", errors="replace") as file:
                return file.read().strip()
        except OSError:
            return None

    def list_directory(self, absolute: str) -> list[str]:
        """Returns the names in a directory, or an empty list when it is missing or unreadable."""
        try:
            return sorted(os.listdir(self.path(absolute)))
        except OSError:
            return []

    def kernel_parameters(self) -> dict[str, str]:
        """Returns the kernel command line as name -> value ("" for bare flags)."""
        parameters: dict[str, str] = {}
        for token in (self.read("/proc/cmdline") or "").split():
            if token == "--":  # what follows belongs to init
                break
            name, _, value = token.partition("=")
            parameters[name] = value
        return parameters

    def cpu_list(self, absolute: str) -> set[int] | None:
        """Returns the CPUs of a cpulist file, or None when the file is missing."""
        text = self.read(absolute)
        return None if text is None else parse_cpu_list(text)

    def mounts(self) -> list[tuple[str, str, str]]:
        """Returns (device, mount point, filesystem type) for each line of /proc/mounts."""
        entries = []
        for line in (self.read("/proc/mounts") or "").splitlines():
            fields = line.split()
            if len(fields) >= 3:
                entries.append((fields[0], fields[1], fields[2]))
        return entries

    def meminfo(self) -> dict[str, int]:
        """Returns /proc/meminfo as name -> number (kB for sizes, a count for HugePages_*)."""
        values: dict[str, int] = {}
        for line in (self.read("/proc/meminfo") or "").splitlines():
            name, _, rest = line.partition(":")
            fields = rest.split()
            if fields and fields[0].isdigit():
                values[name.strip()] = int(fields[0])
        return values

    def cpu_flags(self) -> set[str] | None:
        """Returns the flags of the first CPU in /proc/cpuinfo, or None without a flags line."""
        for line in (self.read("/proc/cpuinfo") or "").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "flags":
                return set(value.split())
        return None

    def process_names(self) -> set[str]:
        """Returns the command names (``comm``) of the running processes."""
        names = set()
        for entry in self.list_directory("/proc"):
            if entry.isdigit():
                name = self.read(f"/proc/{entry}/comm")
                if name:
                    names.add(name)
        return names


def parse_cpu_list(text: str) -> set[int]:
    """Returns the CPUs of a kernel cpulist such as "0-3,5,8-11" (empty for "" or "(null)")."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part or not part[0].isdigit():
            continue
        span, _, grouping = part.partition(":")
        first, _, last = span.partition("-")
        if not last:
            cpus.add(int(first))
            continue
        used, _, group = grouping.partition("/")  # "0-15:2/4": the first 2 of every 4
        group_size = int(group) if group else 1
        used_count = int(used) if used else group_size
        for start in range(int(first), int(last) + 1, group_size):
            cpus.update(range(start, min(start + used_count, int(last) + 1)))
    return cpus


def format_cpu_list(cpus: set[int] | list[int]) -> str:
    """Returns a compact cpulist ("0-3,5") for a set of CPUs."""
    ordered = sorted(cpus)
    ranges: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        ranges.append(str(ordered[index]) if end == index else f"{ordered[index]}-{ordered[end]}")
        index = end + 1
    return ",".join(ranges) or "none"


def _isolcpus_cpus(value: str) -> tuple[set[int], set[str]]:
    """Splits an ``isolcpus=`` value into its CPUs and its flags (domain, managed_irq, nohz)."""
    flags = {part for part in value.split(",") if part and not part[0].isdigit()}
    cpus = parse_cpu_list(",".join(part for part in value.split(",") if part and part[0].isdigit()))
    return cpus, flags


def _effective_capabilities(host: Host) -> int:
    for line in (host.read("/proc/self/status") or "").splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _check(check_id: str, title: str, status: str, detail: str) -> Check:
    return Check(check_id, title, status, detail, f"deploy/TUNING.md, section {check_id}")


def default_cpu(root: str | os.PathLike[str] = "/") -> int:
    """Returns the highest-numbered online CPU, the conventional engine core."""
    online = Host(root).cpu_list("/sys/devices/system/cpu/online")
    if not online:
        raise ConfigError("cannot read /sys/devices/system/cpu/online; pass --cpu")
    return max(online)


def cpu_from_config(path: str | os.PathLike[str]) -> int:
    """Returns ``[engine] cpu`` from a sor TOML configuration file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as file:
            configuration = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from error
    cpu = configuration.get("engine", {}).get("cpu")
    if not isinstance(cpu, int) or isinstance(cpu, bool) or cpu < 0:
        raise ConfigError(f"{path}: [engine] cpu must be a non-negative integer, found {cpu!r}")
    return cpu


def _check_cpu_online(host: Host, cpu: int) -> Check:
    title = "engine cpu exists and is online"
    present = host.cpu_list("/sys/devices/system/cpu/present")
    online = host.cpu_list("/sys/devices/system/cpu/online")
    if present is None or online is None:
        return _check("cpu_online", title, "fail", "cannot read /sys/devices/system/cpu/present or online")
    if cpu not in present:
        return _check("cpu_online", title, "fail",
                      f"cpu {cpu} does not exist (present: {format_cpu_list(present)})")
    if cpu not in online:
        return _check("cpu_online", title, "fail",
                      f"cpu {cpu} is offline (online: {format_cpu_list(online)})")
    return _check("cpu_online", title, "ok", f"cpu {cpu} is online (online: {format_cpu_list(online)})")


def _isolated_cpus(host: Host) -> set[int]:
    isolated = host.cpu_list("/sys/devices/system/cpu/isolated")
    if isolated is None:
        isolated, _ = _isolcpus_cpus(host.kernel_parameters().get("isolcpus", ""))
    return isolated


def _nohz_full_cpus(host: Host) -> set[int] | None:
    nohz_full = host.cpu_list("/sys/devices/system/cpu/nohz_full")
    if nohz_full is None and "nohz_full" in host.kernel_parameters():
        nohz_full = parse_cpu_list(host.kernel_parameters()["nohz_full"])
    return nohz_full


def _check_isolcpus(host: Host, cpu: int) -> Check:
    title = "engine cpu removed from the scheduler's load balancing"
    parameters = host.kernel_parameters()
    isolated = _isolated_cpus(host)
    _, flags = _isolcpus_cpus(parameters.get("isolcpus", ""))
    if cpu not in isolated:
        shown = format_cpu_list(isolated) if isolated else "none"
        return _check("isolcpus", title, "fail",
                      f"cpu {cpu} is not isolated (isolated: {shown}); other tasks can be scheduled on it")
    detail = f"cpu {cpu} is isolated (isolated: {format_cpu_list(isolated)})"
    if "isolcpus" in parameters and "managed_irq" not in flags:
        detail += "; isolcpus= lacks managed_irq, so managed device IRQs may still target it"
    return _check("isolcpus", title, "ok", detail)


def _check_nohz_full(host: Host, cpu: int) -> Check:
    title = "scheduler tick stopped on the engine cpu"
    nohz_full = _nohz_full_cpus(host)
    if nohz_full is None:
        return _check("nohz_full", title, "fail",
                      "no /sys/devices/system/cpu/nohz_full and no nohz_full= on the kernel command "
                      "line; the kernel may lack CONFIG_NO_HZ_FULL")
    if cpu not in nohz_full:
        shown = format_cpu_list(nohz_full) if nohz_full else "none"
        return _check("nohz_full", title, "fail",
                      f"cpu {cpu} is not in nohz_full (nohz_full: {shown}); it takes a timer tick every jiffy")
    return _check("nohz_full", title, "ok", f"cpu {cpu} is in nohz_full ({format_cpu_list(nohz_full)})")


def _check_rcu_nocbs(host: Host, cpu: int) -> Check:
    title = "RCU callbacks offloaded from the engine cpu"
    parameters = host.kernel_parameters()
    rcu_nocbs = parse_cpu_list(parameters.get("rcu_nocbs", ""))
    if cpu in rcu_nocbs:
        return _check("rcu_nocbs", title, "ok", f"cpu {cpu} is in rcu_nocbs= ({format_cpu_list(rcu_nocbs)})")
    nohz_full = _nohz_full_cpus(host) or set()
    if cpu in nohz_full:
        return _check("rcu_nocbs", title, "ok", f"cpu {cpu} is in nohz_full, which implies rcu_nocbs")
    return _check("rcu_nocbs", title, "warn",
                  f"cpu {cpu} is neither in rcu_nocbs= nor in nohz_full; RCU callbacks run on it")


def _interrupt_names(host: Host) -> dict[str, str]:
    names = {}
    for line in (host.read("/proc/interrupts") or "").splitlines()[1:]:
        number, _, rest = line.partition(":")
        fields = rest.split()
        if number.strip().isdigit() and fields:
            names[number.strip()] = fields[-1]
    return names


def _describe_irqs(host: Host, irqs: list[str], limit: int = 6) -> str:
    names = _interrupt_names(host)
    shown = [f"{irq} ({names[irq]})" if irq in names else irq for irq in irqs[:limit]]
    more = f" and {len(irqs) - limit} more" if len(irqs) > limit else ""
    return ", ".join(shown) + more


def _check_irq_affinity(host: Host, cpu: int) -> Check:
    title = "device interrupts kept off the engine cpu"
    irqs = sorted((entry for entry in host.list_directory("/proc/irq") if entry.isdigit()), key=int)
    if not irqs:
        return _check("irq_affinity", title, "n/a", "no /proc/irq entries to inspect")
    landed: list[str] = []       # delivered to the engine cpu now
    allowed_only: list[str] = []  # allowed there, delivered elsewhere for now
    pinned_alone: list[str] = []  # per-cpu queues (or deliberate pins) on the engine cpu only
    for irq in irqs:
        allowed = host.cpu_list(f"/proc/irq/{irq}/smp_affinity_list")
        if allowed is None or cpu not in allowed:
            continue
        if allowed == {cpu}:
            pinned_alone.append(irq)
            continue
        effective = host.cpu_list(f"/proc/irq/{irq}/effective_affinity_list")
        if effective is None or not effective or cpu in effective:
            landed.append(irq)
        else:
            allowed_only.append(irq)
    default_mask_text = host.read("/proc/irq/default_smp_affinity")
    default_includes_cpu = False
    if default_mask_text:
        try:
            default_includes_cpu = bool(int(default_mask_text.replace(",", ""), 16) >> cpu & 1)
        except ValueError:
            pass
    notes = []
    if pinned_alone:
        notes.append(f"{len(pinned_alone)} IRQ(s) bound to cpu {cpu} alone, taken as per-cpu queues: "
                     f"{_describe_irqs(host, pinned_alone)}")
    if default_includes_cpu:
        notes.append(f"default_smp_affinity {default_mask_text} includes cpu {cpu}, so new IRQs may land there")
    suffix = ("; " + "; ".join(notes)) if notes else ""
    if landed:
        return _check("irq_affinity", title, "fail",
                      f"{len(landed)} of {len(irqs)} IRQs can be delivered to cpu {cpu}: "
                      f"{_describe_irqs(host, landed)}{suffix}")
    if allowed_only or default_includes_cpu:
        head = (f"{len(allowed_only)} IRQ(s) allow cpu {cpu} in smp_affinity_list though none is "
                f"delivered there now: {_describe_irqs(host, allowed_only)}" if allowed_only
                else f"no IRQ allows cpu {cpu}")
        return _check("irq_affinity", title, "warn", head + suffix)
    return _check("irq_affinity", title, "ok",
                  f"none of {len(irqs)} IRQs is allowed on cpu {cpu}{suffix}")


def _check_irqbalance(host: Host, cpu: int) -> Check:
    title = "irqbalance cannot move interrupts onto the engine cpu"
    if "irqbalance" not in host.process_names():
        return _check("irqbalance", title, "ok", "irqbalance is not running")
    for configuration in ("/etc/default/irqbalance", "/etc/sysconfig/irqbalance"):
        for line in (host.read(configuration) or "").splitlines():
            name, _, value = line.strip().partition("=")
            value = value.strip().strip("\"'")
            banned: set[int] = set()
            if name == "IRQBALANCE_BANNED_CPULIST":
                banned = parse_cpu_list(value)
            elif name == "IRQBALANCE_BANNED_CPUS" and value:
                try:
                    mask = int(value.replace(",", ""), 16)
                    banned = {bit for bit in range(mask.bit_length()) if mask >> bit & 1}
                except ValueError:
                    banned = set()
            if cpu in banned:
                return _check("irqbalance", title, "ok",
                              f"irqbalance is running with cpu {cpu} banned in {configuration}")
    if cpu in _isolated_cpus(host) | (_nohz_full_cpus(host) or set()):
        return _check("irqbalance", title, "warn",
                      f"irqbalance is running without cpu {cpu} banned; irqbalance >= 1.8 skips isolated "
                      "and nohz_full cpus by itself, older versions need IRQBALANCE_BANNED_CPULIST")
    return _check("irqbalance", title, "warn",
                  f"irqbalance is running and may move IRQs onto cpu {cpu}; ban it with "
                  "IRQBALANCE_BANNED_CPULIST")


def _check_smt(host: Host, cpu: int) -> Check:
    title = "engine cpu's SMT siblings idle or isolated"
    siblings = host.cpu_list(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    if siblings is None:
        return _check("smt", title, "n/a", f"no topology for cpu {cpu}")
    others = siblings - {cpu}
    if not others:
        control = host.read("/sys/devices/system/cpu/smt/control")
        note = f" (smt/control: {control})" if control else ""
        return _check("smt", title, "ok", f"cpu {cpu} has no SMT sibling{note}")
    online = host.cpu_list("/sys/devices/system/cpu/online") or set()
    isolated = _isolated_cpus(host)
    busy = sorted(sibling for sibling in others if sibling in online and sibling not in isolated)
    if busy:
        return _check("smt", title, "warn",
                      f"sibling cpu(s) {format_cpu_list(busy)} of cpu {cpu} are online and not isolated; "
                      "work there shares the core's execution units and L1/L2 caches")
    return _check("smt", title, "ok",
                  f"sibling cpu(s) {format_cpu_list(others)} of cpu {cpu} are offline or isolated")


def _check_governor(host: Host, cpu: int) -> Check:
    title = "engine cpu runs the performance governor"
    governor = host.read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
    if governor is None:
        return _check("governor", title, "n/a",
                      f"no cpufreq for cpu {cpu}: the kernel does not control its frequency (a VM, or "
                      "firmware-managed); set the BIOS power profile to maximum performance instead")
    if governor == "performance":
        return _check("governor", title, "ok", f"cpu {cpu} governor is performance")
    return _check("governor", title, "warn",
                  f"cpu {cpu} governor is {governor}; the clock ramps down between bursts")


def _check_cstates(host: Host, cpu: int) -> Check:
    title = "no deep C-states on the engine cpu"
    if host.kernel_parameters().get("idle") == "poll":
        return _check("cstates", title, "ok", "idle=poll: cpus never enter a C-state")
    base = f"/sys/devices/system/cpu/cpu{cpu}/cpuidle"
    states = [entry for entry in host.list_directory(base) if entry.startswith("state")]
    if not states:
        return _check("cstates", title, "n/a", f"no cpuidle states for cpu {cpu}")
    deep = []
    deepest = ("none", 0)
    for state in states:
        if host.read(f"{base}/{state}/disable") == "1":
            continue
        name = host.read(f"{base}/{state}/name") or state
        latency_text = host.read(f"{base}/{state}/latency") or "0"
        latency_us = int(latency_text) if latency_text.isdigit() else 0
        if latency_us >= deepest[1]:
            deepest = (name, latency_us)
        if latency_us > CSTATE_MAXIMUM_EXIT_LATENCY_US:
            deep.append(f"{name} ({latency_us} us)")
    if deep:
        return _check("cstates", title, "warn",
                      f"cpu {cpu} may enter {', '.join(deep)}; a busy-polling engine never idles, but any "
                      "other idle strategy pays that exit latency on the next message")
    return _check("cstates", title, "ok",
                  f"deepest enabled state on cpu {cpu} is {deepest[0]} ({deepest[1]} us exit latency)")


def _check_rt_throttling(host: Host, cpu: int) -> Check:
    title = "real-time throttling off"
    runtime = host.read("/proc/sys/kernel/sched_rt_runtime_us")
    if runtime is None:
        return _check("rt_throttling", title, "n/a", "no /proc/sys/kernel/sched_rt_runtime_us")
    if runtime == "-1":
        return _check("rt_throttling", title, "ok", "sched_rt_runtime_us is -1")
    period = host.read("/proc/sys/kernel/sched_rt_period_us") or "1000000"
    try:
        stall_us = int(period) - int(runtime)
    except ValueError:
        stall_us = -1
    return _check("rt_throttling", title, "fail",
                  f"sched_rt_runtime_us is {runtime} of a {period} us period: a SCHED_FIFO engine that "
                  f"never sleeps is stopped for {stall_us} us every period")


def _check_timer_migration(host: Host, cpu: int) -> Check:
    title = "timers stay on the cpu that armed them"
    value = host.read("/proc/sys/kernel/timer_migration")
    if value is None:
        return _check("timer_migration", title, "n/a", "no /proc/sys/kernel/timer_migration")
    if value == "0":
        return _check("timer_migration", title, "ok", "timer_migration is 0")
    return _check("timer_migration", title, "warn",
                  f"timer_migration is {value}: timers from idle cpus may move to the busy engine cpu")


def _check_clocksource(host: Host, cpu: int) -> Check:
    title = "TSC clocksource (clock_gettime without a system call)"
    current = host.read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    if current is None:
        return _check("clocksource", title, "n/a", "no current_clocksource")
    flags = host.cpu_flags()
    if current == "tsc":
        missing = sorted({"constant_tsc", "nonstop_tsc"} - (flags or set()))
        if missing:
            return _check("clocksource", title, "warn",
                          f"clocksource is tsc but the cpu lacks {', '.join(missing)}; TSC rate may vary")
        return _check("clocksource", title, "ok", "clocksource is tsc, with constant_tsc and nonstop_tsc")
    if current == "arch_sys_counter":
        return _check("clocksource", title, "ok", "clocksource is arch_sys_counter (the arm64 timer)")
    available = (host.read("/sys/devices/system/clocksource/clocksource0/available_clocksource") or "").split()
    hint = "; tsc is available" if "tsc" in available else ""
    if current in {"kvm-clock", "hyperv_clocksource_tsc_page", "xen"}:
        return _check("clocksource", title, "warn",
                      f"clocksource is {current} (a VM clock, read in the vDSO but slower than tsc){hint}")
    return _check("clocksource", title, "fail",
                  f"clocksource is {current}: every timestamp costs a system call{hint}")


def _check_thp(host: Host, cpu: int) -> Check:
    title = "transparent huge pages never or madvise"
    enabled = host.read("/sys/kernel/mm/transparent_hugepage/enabled")
    if enabled is None:
        return _check("thp", title, "ok", "the kernel has no transparent huge pages")
    selected = next((word[1:-1] for word in enabled.split() if word.startswith("[")), enabled)
    if selected in {"never", "madvise"}:
        return _check("thp", title, "ok", f"transparent_hugepage/enabled is {selected}")
    return _check("thp", title, "warn",
                  f"transparent_hugepage/enabled is {selected}: khugepaged compaction and collapse "
                  "stall processes at unpredictable times")


def _node_of_cpu(host: Host, cpu: int) -> int | None:
    for entry in host.list_directory("/sys/devices/system/node"):
        if entry.startswith("node") and entry[4:].isdigit():
            cpus = host.cpu_list(f"/sys/devices/system/node/{entry}/cpulist")
            if cpus is not None and cpu in cpus:
                return int(entry[4:])
    return None


def _numa_nodes(host: Host) -> list[int]:
    return sorted(int(entry[4:]) for entry in host.list_directory("/sys/devices/system/node")
                  if entry.startswith("node") and entry[4:].isdigit())


def _check_hugepages(host: Host, cpu: int) -> Check:
    title = "explicit huge pages reserved and hugetlbfs mounted"
    meminfo = host.meminfo()
    total = meminfo.get("HugePages_Total", 0)
    free = meminfo.get("HugePages_Free", 0)
    size_kb = meminfo.get("Hugepagesize", 0)
    mount_points = [point for _, point, kind in host.mounts() if kind == "hugetlbfs"]
    if total == 0:
        return _check("hugepages", title, "warn",
                      "no huge pages reserved (vm.nr_hugepages is 0); rings fall back to 4 KiB pages and more TLB misses")
    detail = f"{free} of {total} {size_kb} kB huge pages free"
    nodes = _numa_nodes(host)
    node = _node_of_cpu(host, cpu)
    if len(nodes) > 1 and node is not None and size_kb:
        on_node = host.read(f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages")
        detail += f", {on_node or 0} on node {node}"
        if on_node in {None, "0"}:
            return _check("hugepages", title, "warn", detail + f": none on the engine cpu's node {node}")
    if not mount_points:
        return _check("hugepages", title, "warn", detail + "; no hugetlbfs mounted")
    return _check("hugepages", title, "ok", detail + f"; hugetlbfs at {', '.join(mount_points)}")


def _check_numa(host: Host, cpu: int) -> Check:
    title = "engine cpu, NIC and memory on one NUMA node"
    nodes = _numa_nodes(host)
    node = _node_of_cpu(host, cpu)
    if len(nodes) <= 1:
        return _check("numa", title, "ok",
                      f"single NUMA node{f' (node {nodes[0]})' if nodes else ''}; placement cannot go wrong")
    if node is None:
        return _check("numa", title, "warn", f"{len(nodes)} NUMA nodes; cannot tell which holds cpu {cpu}")
    nics: dict[str, int] = {}
    for interface in host.list_directory("/sys/class/net"):
        value = host.read(f"/sys/class/net/{interface}/device/numa_node")
        if value is not None and value.lstrip("-").isdigit():
            nics[interface] = int(value)
    if not nics:
        return _check("numa", title, "warn",
                      f"cpu {cpu} is on node {node} of {len(nodes)}; no NIC reports its node, check placement by hand")
    local = sorted(name for name, nic_node in nics.items() if nic_node == node)
    if not local:
        placed = ", ".join(f"{name} on node {nic_node}" for name, nic_node in sorted(nics.items()))
        return _check("numa", title, "warn",
                      f"cpu {cpu} is on node {node} but no NIC is ({placed}); every packet crosses the interconnect")
    return _check("numa", title, "ok",
                  f"cpu {cpu} is on node {node} of {len(nodes)}, with NIC(s) {', '.join(local)}; "
                  "bind memory there with numactl --membind")


def _check_numa_balancing(host: Host, cpu: int) -> Check:
    title = "automatic NUMA balancing off"
    value = host.read("/proc/sys/kernel/numa_balancing")
    if value is None:
        return _check("numa_balancing", title, "ok", "the kernel has no automatic NUMA balancing")
    if value == "0":
        return _check("numa_balancing", title, "ok", "numa_balancing is 0")
    if len(_numa_nodes(host)) <= 1:
        return _check("numa_balancing", title, "ok", f"numa_balancing is {value}, without effect on one node")
    return _check("numa_balancing", title, "warn",
                  f"numa_balancing is {value}: the kernel unmaps pages to sample accesses, faulting the engine")


def _check_swap(host: Host, cpu: int) -> Check:
    title = "swap unused or swappiness low"
    swaps = (host.read("/proc/swaps") or "").splitlines()[1:]
    swappiness = host.read("/proc/sys/vm/swappiness")
    if not swaps:
        return _check("swap", title, "ok", f"no swap devices (swappiness {swappiness})")
    if swappiness is not None and swappiness.isdigit() and int(swappiness) <= SWAPPINESS_MAXIMUM:
        return _check("swap", title, "ok", f"{len(swaps)} swap device(s), swappiness {swappiness}")
    return _check("swap", title, "warn",
                  f"{len(swaps)} swap device(s) and swappiness {swappiness}: unlocked pages of the "
                  "gateway can be swapped out")


def _check_memlock(limits: ProcessLimits) -> Check:
    title = "memory can be locked (mlockall)"
    scope = "this process; the engine unit sets LimitMEMLOCK=infinity for its own"
    if limits.memlock_bytes is None:
        return _check("memlock", title, "ok", f"RLIMIT_MEMLOCK is unlimited ({scope})")
    if limits.effective_capabilities >> _CAP_IPC_LOCK & 1:
        return _check("memlock", title, "ok",
                      f"RLIMIT_MEMLOCK is {limits.memlock_bytes} bytes, lifted by CAP_IPC_LOCK ({scope})")
    return _check("memlock", title, "warn",
                  f"RLIMIT_MEMLOCK is {limits.memlock_bytes} bytes without CAP_IPC_LOCK ({scope})")


def _check_rtprio(limits: ProcessLimits) -> Check:
    title = "SCHED_FIFO allowed"
    scope = "this process; the engine unit sets LimitRTPRIO for its own"
    if limits.effective_capabilities >> _CAP_SYS_NICE & 1:
        return _check("rtprio", title, "ok", f"CAP_SYS_NICE allows any real-time priority ({scope})")
    if limits.rtprio > 0:
        return _check("rtprio", title, "ok", f"RLIMIT_RTPRIO allows priorities up to {limits.rtprio} ({scope})")
    return _check("rtprio", title, "warn", f"RLIMIT_RTPRIO is 0 and no CAP_SYS_NICE ({scope})")


def _check_shm(host: Host, statvfs: Callable[[str], os.statvfs_result], minimum_free_bytes: int) -> Check:
    title = "/dev/shm is tmpfs with room for the rings"
    kinds = [kind for _, point, kind in host.mounts() if point == "/dev/shm"]
    if not kinds:
        return _check("shm", title, "fail", "/dev/shm is not a mount point; shm_open would use the root filesystem")
    if kinds[-1] != "tmpfs":
        return _check("shm", title, "fail", f"/dev/shm is {kinds[-1]}, not tmpfs")
    try:
        statistics = statvfs(str(host.path("/dev/shm")))
    except OSError as error:
        return _check("shm", title, "fail", f"cannot stat /dev/shm: {error.strerror}")
    free = statistics.f_bavail * statistics.f_frsize
    total = statistics.f_blocks * statistics.f_frsize
    detail = f"tmpfs, {free // 2**20} MiB free of {total // 2**20} MiB"
    if free < minimum_free_bytes:
        return _check("shm", title, "warn", detail + f"; rings want at least {minimum_free_bytes // 2**20} MiB")
    return _check("shm", title, "ok", detail)


def run_checks(cpu: int, root: str | os.PathLike[str] = "/", limits: ProcessLimits | None = None,
               statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
               shm_minimum_free_bytes: int = SHM_MINIMUM_FREE_BYTES) -> list[Check]:
    """Returns one Check per id in CHECK_IDS for engine core ``cpu``; reads, never writes."""
    host = Host(root)
    if limits is None:
        limits = ProcessLimits.of_current_process(host)
    host_checks = (
        _check_cpu_online, _check_isolcpus, _check_nohz_full, _check_rcu_nocbs, _check_irq_affinity,
        _check_irqbalance, _check_smt, _check_governor, _check_cstates, _check_rt_throttling,
        _check_timer_migration, _check_clocksource, _check_thp, _check_hugepages, _check_numa,
        _check_numa_balancing, _check_swap,
    )
    checks = [check(host, cpu) for check in host_checks]
    checks += [_check_memlock(limits), _check_rtprio(limits),
               _check_shm(host, statvfs, shm_minimum_free_bytes)]
    return checks


def summarize(checks: list[Check]) -> dict[str, int]:
    """Returns the number of checks per status."""
    return {status: sum(check.status == status for check in checks) for status in STATUSES}


def exit_code(checks: list[Check]) -> int:
    """Returns 1 when any check failed, else 0."""
    return 1 if any(check.status == "fail" for check in checks) else 0


def report_as_dict(checks: list[Check], cpu: int, cpu_source: str, root: str) -> dict[str, object]:
    """Returns the report as JSON-ready data: engine cpu, checks, summary and exit code."""
    return {
        "cpu": cpu, "cpu_source": cpu_source, "root": str(root),
        "checks": [dataclasses.asdict(check) for check in checks],
        "summary": summarize(checks), "exit_code": exit_code(checks),
    }


def format_report(checks: list[Check], cpu: int, cpu_source: str) -> str:
    """Returns the report as aligned text: one line per check and a summary line."""
    id_width = max(len(check.id) for check in checks)
    lines = [f"sor doctor: engine cpu {cpu} ({cpu_source}); nothing on this host is changed"]
    lines += [f"{check.status:<5} {check.id:<{id_width}}  {check.detail}" for check in checks]
    counts = summarize(checks)
    lines.append(f"summary: {counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, "
                 f"{counts['n/a']} n/a; fixes in deploy/TUNING.md under each check's id; "
                 f"exit {exit_code(checks)}")
    return "\n".join(lines)
