"""Where a gateway's switch daemon spends its CPU: per id update, per main-loop pass, idle.

For each number of gateways (default 1, 8), in one data center each, on the
``ovs-vswitchd`` of the first gateway (its threads read from
``/proc/PID/task``):

* per id update (``set_id`` on every gateway, back to back; no user traffic,
  or with ``--stream-mbps`` an iperf3 stream through the gateways at that
  rate, so that their flow caches hold flows): CPU milliseconds of the
  daemon's main thread (which also forwards the veth ports' packets), its
  RCU thread (``urcu``), its revalidator and the rest, how often the main
  thread blocked in ``poll()`` and woke again (voluntary context switches:
  one per pass of its main loop that found nothing left to do), the
  requests the controller sent it over its unixctl socket and the flow
  translations it made (``coverage/show``: upcalls and revalidations);
  beside it the CPU all gateways' daemons used per update. Each datapath
  sync of ``--datapath-sync`` gets a data center of its own;
* per request that does nothing (``version`` over the daemon's unixctl
  socket): what one extra pass of the main loop costs; per
  ``revalidator/purge`` alone (the default datapath sync of each update)
  and per ``dpctl/dump-flows`` (what the ``watch`` sync sends until the
  flows follow);
* per interface change elsewhere on the machine (a veth pair of this
  benchmark's own added, set up and deleted in the root namespace): the CPU
  every daemon of the data center spends re-reading the machine's routes,
  links and addresses, which other users' data centers cause too;
* idle: the daemon's CPU with nothing to do.

With ``--gateway-daemons shared`` the gateways' bridges share one daemon
(the data center's default), and the first gateway's daemon is all of
theirs. With ``--port-type afxdp`` the bridges' ports are AF_XDP sockets
that a PMD thread polls (its CPU is in ``other``), not the main thread.

Each CPU figure is the busy span less the same span idle. ``/proc`` counts
CPU in 10 ms ticks, so ``--updates 1000`` makes the per-update figures good
to about 0.01 ms. Needs root and Open vSwitch; prints one line per |G| and can
write JSON::

    sudo .venv/bin/python benchmarks/bench_switchd.py --gateways 1,8 --json switchd.json
    sudo .venv/bin/python benchmarks/bench_switchd.py --gateways 1 --stream-mbps 30 \\
        --datapath-sync purge,watch
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_gateways import IPERF_PORT, start_iperf_server  # noqa: E402  (beside this script)
from cpu_time import cpu_seconds  # noqa: E402  (beside this script)
from sweep_arguments import add_sweep_arguments, sweep  # noqa: E402  (beside this script)

from controller.gateways.datapath import Unixctl  # noqa: E402
from testbed.network import DataCenter, machine_problem  # noqa: E402
from testbed.switchd import GATEWAY_DAEMONS, PORT_TYPES, SwitchDaemon  # noqa: E402
from topologies.addressing import DataCenterParams  # noqa: E402
from topologies.claims import NamePool  # noqa: E402

THREAD_ROLES = ("main", "urcu", "revalidator", "other")
COVERAGE_INTERVAL = 1.2
"""Seconds to wait before reading the coverage counters, so every thread has added its own."""
COLUMNS = (  # header, key of the row, digits
    ("|G|", "gateways", 0), ("CPU ms/update", "update_cpu_ms", 3),
    ("main", "update_main_cpu_ms", 3), ("urcu", "update_urcu_cpu_ms", 3),
    ("reval", "update_revalidator_cpu_ms", 3), ("other", "update_other_cpu_ms", 3),
    ("wakeups", "update_main_wakeups", 2), ("requests", "update_requests", 2),
    ("xlates", "update_translations", 2), ("all gw", "update_all_gateway_daemons_cpu_ms", 2),
    ("no-op ms", "noop_request_cpu_ms", 3), ("wakeups", "noop_request_main_wakeups", 2),
    ("purge ms", "purge_cpu_ms", 3), ("dump ms", "dump_flows_cpu_ms", 3),
    ("if change ms", "interface_change_cpu_ms_per_daemon", 2),
    ("idle %", "idle_cpu_percent", 2), ("load", "load_average", 1),
)
"""The printed table: one column per figure of a row."""


def column_width(header: str) -> int:
    return max(len(header), 6) + 1


def thread_role(pid: int, tid: int) -> str:
    if tid == pid:
        return "main"
    name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    return next((role for role in THREAD_ROLES[1:3] if name.startswith(role)), "other")


def threads(pid: int) -> dict[str, tuple[float, int]]:
    """Thread role -> (CPU seconds so far, voluntary context switches so far)."""
    totals = {role: [0.0, 0] for role in THREAD_ROLES}
    for entry in os.listdir(f"/proc/{pid}/task"):
        tid = int(entry)
        try:
            task = Path(f"/proc/{pid}/task/{tid}")
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
            role = thread_role(pid, tid)
        except FileNotFoundError:  # a thread that just ended
            continue
        switches = next(int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("voluntary_ctxt_switches"))
        totals[role][0] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        totals[role][1] += switches
    return {role: (cpu, int(switches)) for role, (cpu, switches) in totals.items()}


def per_call(pid: int, count: int, call: Callable[[int], None]) -> dict[str, float]:
    """Per ``call(i)``: each thread role's CPU milliseconds and the main thread's wakeups,
    beyond the same span idle."""
    before, began = threads(pid), time.monotonic()
    for i in range(count):
        call(i)
    elapsed = time.monotonic() - began
    busy = threads(pid)
    time.sleep(elapsed)
    idle = threads(pid)
    result = {f"{role}_cpu_ms": ((busy[role][0] - before[role][0])
                                 - (idle[role][0] - busy[role][0])) / count * 1e3
              for role in THREAD_ROLES}
    result["cpu_ms"] = sum(result.values())
    result["main_wakeups"] = ((busy["main"][1] - before["main"][1])
                              - (idle["main"][1] - busy["main"][1])) / count
    return result


def extra_cpu_ms(pids: list[int], count: int, run: Callable[[], None]) -> float:
    """CPU milliseconds the processes used per event while ``run()`` made ``count`` events,
    beyond the same span idle."""
    before, began = cpu_seconds(pids), time.monotonic()
    run()
    elapsed = time.monotonic() - began
    busy = cpu_seconds(pids)
    time.sleep(elapsed)
    return ((busy - before) - (cpu_seconds(pids) - busy)) / count * 1e3


def coverage_totals(daemon: SwitchDaemon) -> dict[str, int]:
    """The daemon's event counters so far (``coverage/show``; each thread adds its own to
    them about once a second)."""
    totals = {}
    for line in daemon.appctl("coverage/show").splitlines():
        name, _, total = line.partition("total:")
        if total:
            totals[name.split()[0]] = int(total)
    return totals


def change_interfaces(prefix: str, count: int) -> None:
    """Add, set up and delete a veth pair of this benchmark ``count`` times (root namespace)."""
    name, peer = f"{prefix}chg0", f"{prefix}chg1"
    for _ in range(count):
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer],
                       check=True)
        try:
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
        finally:
            subprocess.run(["ip", "link", "del", name], check=True)


def measure(gateways: int, updates: int, calls: int, changes: int, datapath_sync: str,
            stream_mbps: float, gateway_daemons: str = "own",
            port_type: str = PORT_TYPES[0]) -> dict[str, Any]:
    params = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=gateways,
                              externals=1, relays=0)
    with DataCenter(params, names=NamePool("b", "172.24.0.0/16"),
                    datapath_sync=datapath_sync, gateway_daemons=gateway_daemons,
                    port_type=port_type) as dc:
        assert dc.daemons is not None
        first = dc.switch_daemon(dc.plan.gateways[0].name)
        assert first.switch is not None
        pid = first.switch.pid
        gateway_pids = [d.switch.pid for d in dc.daemons.of_gateways() if d.switch is not None]
        every_pid = [d.switch.pid for d in dc.daemons.daemons.values() if d.switch is not None]
        for snapshot_id in range(1, 51):  # the gateway's flows and the controller warmed up
            dc.controller.set_id(snapshot_id)
        idle_before, idle_began = cpu_seconds([pid]), time.monotonic()
        time.sleep(2)
        idle = (cpu_seconds([pid]) - idle_before) / (time.monotonic() - idle_began)
        unixctl = Unixctl(first.control_socket)
        try:
            noop = per_call(pid, calls, lambda i: unixctl.call("version"))
            purge = per_call(pid, calls, lambda i: unixctl.call("revalidator/purge"))
            dump = per_call(pid, calls, lambda i: unixctl.call("dpctl/dump-flows"))
        finally:
            unixctl.close()
        stream = None
        if stream_mbps:  # user traffic through the gateways, so their flow caches hold flows
            server = start_iperf_server(dc)
            stream = dc.host(dc.plan.externals[0].name).popen(
                ["iperf3", "-c", dc.plan.services[0].vip, "-p", str(IPERF_PORT), "-t", "3600",
                 "-b", f"{stream_mbps}M"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(COVERAGE_INTERVAL)
            counted = coverage_totals(first)
            update = per_call(pid, updates, lambda i: dc.controller.set_id(1000 + i))
            time.sleep(COVERAGE_INTERVAL)
            counts = coverage_totals(first)
            all_gateways = extra_cpu_ms(
                gateway_pids, updates,
                lambda: [dc.controller.set_id(10**6 + i) for i in range(updates)])
        finally:
            if stream is not None:
                for process in (stream, server):
                    process.terminate()
                    process.wait(timeout=10)
        for event, key in (("unixctl_received", "requests"), ("xlate_actions", "translations")):
            update[key] = (counts.get(event, 0) - counted.get(event, 0)) / updates
        change = extra_cpu_ms(every_pid, changes * len(every_pid),
                              lambda: change_interfaces(dc.plan.prefix, changes))
    return {
        "gateways": gateways,
        "datapath_sync": datapath_sync,
        "gateway_daemons": gateway_daemons,
        "port_type": port_type,
        "stream_mbps": stream_mbps,
        "updates": updates,
        **{f"update_{key}": value for key, value in update.items()},
        "update_all_gateway_daemons_cpu_ms": all_gateways,
        "noop_request_cpu_ms": noop["cpu_ms"],
        "noop_request_main_wakeups": noop["main_wakeups"],
        "purge_cpu_ms": purge["cpu_ms"],
        "dump_flows_cpu_ms": dump["cpu_ms"],
        "interface_change_cpu_ms_per_daemon": change,
        "idle_cpu_percent": idle * 100,
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A gateway switch daemon's CPU per update.")
    add_sweep_arguments(parser, gateways="1,8")
    parser.add_argument("--updates", type=int, default=1000, help="id updates per |G|")
    parser.add_argument("--calls", type=int, default=1000,
                        help="unixctl requests (no-op, purge) per |G|")
    parser.add_argument("--interface-changes", type=int, default=30,
                        help="veth pairs added and deleted per |G|")
    parser.add_argument("--stream-mbps", type=float, default=0.0,
                        help="iperf3 through the gateways at this rate during the updates, so "
                        "their flow caches hold flows (0: no user traffic)")
    parser.add_argument("--gateway-daemons", choices=GATEWAY_DAEMONS, default="own",
                        help="each gateway on a switch daemon of its own (default), or all on "
                        "one (the data center's default), whose figures are then all the "
                        "gateways'")
    parser.add_argument("--port-type", choices=PORT_TYPES, default=PORT_TYPES[0],
                        help="how the bridges open their veth ends (default "
                        f"{PORT_TYPES[0]})")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        sizes, modes = sweep(args.gateways, args.datapath_sync)
    except ValueError as error:
        print(f"bench_switchd: {error}", file=sys.stderr)
        return 2
    if min(args.updates, args.calls, args.interface_changes) < 1 or args.stream_mbps < 0:
        print("bench_switchd: --updates, --calls and --interface-changes must be >= 1, "
              "--stream-mbps >= 0", file=sys.stderr)
        return 2
    problem = machine_problem()
    if problem:
        print(f"bench_switchd: {problem}", file=sys.stderr)
        return 1
    print(f"{'sync':>6} " + " ".join(f"{header:>{column_width(header)}}"
                                     for header, _, _ in COLUMNS))
    results = []
    for gateways, mode in ((g, m) for g in sizes for m in modes):
        try:
            row = measure(gateways, args.updates, args.calls, args.interface_changes, mode,
                          args.stream_mbps, args.gateway_daemons, args.port_type)
        except ValueError as error:
            print(f"bench_switchd: {error}", file=sys.stderr)
            return 2
        results.append(row)
        print(f"{mode:>6} " + " ".join(f"{row[key]:>{column_width(header)}.{digits}f}"
                                       for header, key, digits in COLUMNS), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
