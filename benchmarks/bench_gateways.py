"""Gateway id updates and user traffic in the emulated data center, for several |G|.

For each number of gateways (default 1, 2, 4, 8), in one run:

* id-update latency: ``set_id(k)`` on every gateway (one flow-mod + barrier
  each, sent in parallel), from the first send to the last barrier reply,
  p50 and p99 over ``--updates`` updates, beside the round trip of a single
  flow-mod + barrier to one gateway measured the same way in the same run;
* user traffic: iperf3 TCP throughput (``-J``) from an external client to a
  service VIP (through the gateways), without and with continuous id updates,
  and their ratio; beside it the A/A calibration ratio (two phases without
  updates, from the same rounds), the noise floor of this machine right now;
* the CPU time the updates cost: milliseconds the controller process and the
  switch daemons' ``ovs-vswitchd`` processes used per id update while the
  latency phase sent them back to back without user traffic, beyond what they
  use in the same time idle (with traffic, the daemons' forwarding CPU falls
  with the throughput and hides the updates' cost); beside it the
  controller's own CPU per update during iperf3 (it forwards nothing);
* what the updates do to forwarding: TCP retransmissions iperf3 reported
  without and with updates, datapath misses the gateways sent through an
  upcall per update while iperf3 ran, and how often a ``watch`` sync fell
  back to purging (the controller's log);
* with ``--in-flight N``, the updates during iperf3 are pipelined, N
  outstanding at a time as the coordinator's window keeps them: how many
  gateway parts the controller coalesced (acknowledged by a newer update's
  flow-mod, so they cost no flow-mod, barrier or sync of their own);
* with ``--updater lean``, the updates (latency phase and during iperf3) are
  not the controller's but the benchmark's own: the same flow-mod, barrier
  and purge sequence, written straight to the gateways' bridges and daemon
  from one thread (:mod:`lean_updater`), so that the data plane's cost of an
  update is nearly all there is; its throughput ratio bounds what any
  leaner controller could reach. ``--updater controller,lean`` measures
  both, a data center each. The ``benchmark`` CPU column is this process's
  own (the lean loop, or the control-protocol client asking the controller).

A gateway's part of an update is its one flow-mod (the ``current`` rule), the barrier and the
sync of its datapath (:mod:`controller.gateways.datapath`); the single round
trip is the same three steps to one gateway. ``--datapath-sync watch,purge``
measures each way of that sync in turn, with a data center of its own per |G| and
mode, so that their figures come from the same minutes of this machine.

Needs root and Open vSwitch; prints one line per |G| and can write JSON::

    sudo .venv/bin/python benchmarks/bench_gateways.py --gateways 1,2,4,8 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu_time import cpu_seconds  # noqa: E402  (beside this script)
from lean_updater import UPDATERS, LeanUpdater, chosen_updaters  # noqa: E402
from pipelined import pipelined  # noqa: E402
from sweep_arguments import add_sweep_arguments, named, sweep  # noqa: E402  (beside this script)

from controller.gateways.client import GatewayClient  # noqa: E402
from controller.gateways.datapath import FALLBACK_PURGE_LOG  # noqa: E402
from stats import percentile  # noqa: E402
from testbed.network import DataCenter, machine_problem  # noqa: E402
from testbed.switchd import GATEWAY_DAEMONS, PORT_TYPES, PortsUnavailable  # noqa: E402
from topologies.addressing import DataCenterParams  # noqa: E402
from topologies.claims import NamePool  # noqa: E402

IPERF_PORT = 5201
LEAN_PREPARED_RATE = 3000
"""Updates per second of iperf3 whose bytes the lean loop encodes beforehand when they go
back to back (more than it reaches; any beyond are encoded as they are sent, and counted)."""
Updates = Callable[[Iterable[int]], Iterator[object]]
"""Send an update to each id in turn; yields once per acknowledged update."""


def update_latencies(dc: DataCenter, first_id: int, count: int) -> list[float]:
    """(first send -> last ack) per complete update by the controller."""
    latencies = []
    for snapshot_id in range(first_id, first_id + count):
        result = dc.controller.set_id(snapshot_id)
        if not result.complete:
            raise RuntimeError(f"update {snapshot_id} failed on {sorted(result.failed)}")
        latencies.append(result.last_acked - result.first_sent)
    return latencies


def lean_latencies(lean: LeanUpdater, first_id: int, count: int) -> list[float]:
    """(first send -> last ack) per update by the lean loop (bytes prepared beforehand)."""
    latencies = []
    for snapshot_id in range(first_id, first_id + count):
        began = time.monotonic()
        lean.update(snapshot_id)
        latencies.append(time.monotonic() - began)
    return latencies


def controller_updates(dc: DataCenter, in_flight: int) -> Updates:
    """Updates asked of the controller on a connection of their own, ``in_flight``
    outstanding at a time."""
    def run(ids: Iterable[int]) -> Iterator[object]:
        with GatewayClient(dc.control_port, secret=dc.secret) as client:
            yield from pipelined(client, ids, in_flight)
    return run


def lean_updates(lean: LeanUpdater) -> Updates:
    """Updates by the lean loop, one at a time."""
    def run(ids: Iterable[int]) -> Iterator[object]:
        for snapshot_id in ids:
            lean.update(snapshot_id)
            yield snapshot_id
    return run


def iperf(dc: DataCenter, seconds: float, attempts: int = 2) -> tuple[float, int]:
    """TCP throughput (bit/s) and retransmitted segments from the first external host to
    the first VIP (a run whose control connection broke, which happens on a very busy
    machine, is run again)."""
    client = dc.host(dc.plan.externals[0].name)
    vip = dc.plan.services[0].vip
    errors = []
    while len(errors) < attempts:
        run = client.popen(["iperf3", "-c", vip, "-p", str(IPERF_PORT), "-t", str(seconds),
                            "-J"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, _ = run.communicate(timeout=seconds + 30)
        report = json.loads(out)
        if "error" not in report:
            end = report["end"]
            return (float(end["sum_received"]["bits_per_second"]),
                    int(end["sum_sent"].get("retransmits", 0)))
        errors.append(report["error"])
    raise RuntimeError(f"iperf3: {'; '.join(errors)}")


def start_iperf_server(dc: DataCenter) -> subprocess.Popen[str]:
    server = dc.host(dc.plan.hosts[0].name).popen(
        ["iperf3", "-s", "-p", str(IPERF_PORT), "--forceflush"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()  # type: ignore[union-attr]
    if "Server listening" not in line and not line.startswith("-"):
        raise RuntimeError(f"iperf3 server did not start: {line!r}")
    return server


def iperf_while_updating(dc: DataCenter, seconds: float, first_id: int, rate: float,
                         updates: Updates) -> tuple[float, tuple[float, int]]:
    """(id updates per second, iperf3 bit/s and retransmits) with id updates during the run.

    ``rate`` 0: back to back; otherwise paced at ``rate`` updates per second (started at
    that rate, as many outstanding at most as ``updates`` keeps).
    """
    stop = threading.Event()
    updated = [0]

    def ids() -> Iterator[int]:
        due = time.monotonic()
        for snapshot_id in itertools.count(first_id):
            if stop.is_set():
                return
            yield snapshot_id
            if rate > 0:
                due += 1 / rate
                stop.wait(max(0.0, due - time.monotonic()))

    def keep_updating() -> None:
        for _ in updates(ids()):
            updated[0] += 1

    updater = threading.Thread(target=keep_updating)
    started = time.monotonic()
    updater.start()
    try:
        throughput = iperf(dc, seconds)
    finally:
        stop.set()
        updater.join()
    return updated[0] / (time.monotonic() - started), throughput


def cpu_ms_per_update(groups: dict[str, list[int]],
                      run: Callable[[], int]) -> tuple[dict[str, float], dict[str, float]]:
    """CPU milliseconds each group of processes used per update while ``run()`` made its
    updates (it returns how many), beyond what the group uses in as long idle; and the
    cores each group used in that idle span."""
    used, began = {name: cpu_seconds(pids) for name, pids in groups.items()}, time.monotonic()
    count = run()
    elapsed = time.monotonic() - began
    busy = {name: cpu_seconds(pids) - used[name] for name, pids in groups.items()}
    used = {name: cpu_seconds(pids) for name, pids in groups.items()}
    time.sleep(elapsed)  # the same span without updates: the daemons' own background work
    idle = {name: cpu_seconds(pids) - used[name] for name, pids in groups.items()}
    return ({name: (busy[name] - idle[name]) / max(1, count) * 1e3 for name in groups},
            {name: idle[name] / elapsed for name in groups})


def gateway_upcalls(dc: DataCenter) -> int:
    """Datapath misses the gateways' daemons have sent through an upcall so far."""
    assert dc.daemons is not None
    return sum(daemon.upcalls() for daemon in dc.daemons.of_gateways())


def fallback_purges(dc: DataCenter) -> int:
    """How often a gateway's flows did not follow in time and were purged (controller log)."""
    return dc.controller_log.read_text(errors="replace").count(FALLBACK_PURGE_LOG)


def coalesced_updates(dc: DataCenter) -> int:
    """Gateway parts of updates so far acknowledged by a newer update's flow-mod."""
    return sum(dc.controller.status()["coalesced_updates"].values())


def measure(gateways: int, updates: int, seconds: float, rounds: int, update_rate: float,
            prefix: str, datapath_sync: str, in_flight: int = 1,
            gateway_daemons: str | None = None, port_type: str = PORT_TYPES[0],
            updater: str = UPDATERS[0]) -> dict[str, Any]:
    # One backend behind the VIP, so iperf3's control and data connections meet.
    params = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=gateways,
                              externals=1, relays=0)
    with DataCenter(params, names=NamePool(prefix, "172.24.0.0/16"),
                    datapath_sync=datapath_sync, gateway_daemons=gateway_daemons,
                    port_type=port_type) as dc, ExitStack() as closing:
        gateway_names = [g.name for g in dc.plan.gateways]
        roundtrips = [dc.controller.roundtrip(gateway_names[i % gateways])
                      for i in range(updates)]
        assert dc.daemons is not None and dc.controller_process is not None
        controller = [dc.controller_process.pid]
        switchds = [d.switch.pid for d in dc.daemons.daemons.values() if d.switch is not None]
        latencies: list[float] = []
        lean = closing.enter_context(LeanUpdater.of_data_center(dc)) \
            if updater == "lean" else None

        def latency_phase() -> int:
            latencies.extend(update_latencies(dc, 1, updates) if lean is None
                             else lean_latencies(lean, 1, updates))
            return updates

        if lean is not None:  # encoded before the CPU is counted, as the iperf3 phases' are
            lean.prepare(1, updates)
        cpu_ms, idle_cores = cpu_ms_per_update({"controller": controller,
                                                "switchd": switchds,
                                                "benchmark": [os.getpid()]}, latency_phase)
        send_updates = (controller_updates(dc, in_flight) if lean is None
                        else lean_updates(lean))
        next_id = 10**6
        server = start_iperf_server(dc)
        quiet, calibration, busy, update_rates = [], [], [], []
        retransmits: dict[str, list[int]] = {"quiet": [], "updating": []}
        controller_busy: list[float] = []
        upcalls: list[float] = []
        coalesced = 0
        try:
            for _ in range(rounds):  # alternate, so drifting background load hits all alike
                bits, resent = iperf(dc, seconds)
                quiet.append(bits)
                retransmits["quiet"].append(resent)
                if lean is not None:
                    lean.prepare(next_id, int(seconds * (update_rate or LEAN_PREPARED_RATE)))
                used, began = cpu_seconds(controller), time.monotonic()
                missed, merged = gateway_upcalls(dc), coalesced_updates(dc)
                rate, (bits, resent) = iperf_while_updating(dc, seconds, next_id, update_rate,
                                                            send_updates)
                coalesced += coalesced_updates(dc) - merged
                elapsed = time.monotonic() - began
                upcalls.append((gateway_upcalls(dc) - missed) / max(1.0, rate * elapsed))
                controller_used = cpu_seconds(controller) - used
                next_id += 10**6
                update_rates.append(rate)
                busy.append(bits)
                retransmits["updating"].append(resent)
                used, began = cpu_seconds(controller), time.monotonic()
                calibration.append(iperf(dc, seconds)[0])
                idle = (cpu_seconds(controller) - used) * elapsed / (time.monotonic() - began)
                controller_busy.append((controller_used - idle) / max(1.0, rate * elapsed))
        finally:
            server.terminate()
            server.wait(timeout=10)
        purged = fallback_purges(dc)
    without = statistics.median(quiet + calibration)
    return {
        "gateways": gateways,
        "datapath_sync": datapath_sync,
        "updater": updater,
        "gateway_daemons": dc.gateway_daemons,
        "port_type": port_type,
        "updates": updates,
        "update_rate_requested": update_rate,
        "update_p50_ms": percentile(latencies, 0.5) * 1e3,
        "update_p99_ms": percentile(latencies, 0.99) * 1e3,
        "roundtrip_p50_ms": percentile(roundtrips, 0.5) * 1e3,
        "roundtrip_p99_ms": percentile(roundtrips, 0.99) * 1e3,
        "iperf_quiet_mbps": without / 1e6,
        "iperf_updating_mbps": statistics.median(busy) / 1e6,
        "throughput_ratio": statistics.median(busy) / without,
        "calibration_ratio": statistics.median(calibration) / statistics.median(quiet),
        "updates_per_s_during_iperf": statistics.median(update_rates),
        "update_mean_ms": statistics.fmean(latencies) * 1e3,
        "controller_cpu_ms_per_update": cpu_ms["controller"],
        "switchd_cpu_ms_per_update": cpu_ms["switchd"],
        "benchmark_cpu_ms_per_update": cpu_ms["benchmark"],
        "lean_encoded_in_loop": 0 if lean is None else lean.encoded_in_loop,
        "switchd_idle_cores": idle_cores["switchd"],
        "controller_cpu_ms_per_update_during_iperf": statistics.median(controller_busy) * 1e3,
        "iperf_retransmits_quiet": statistics.median(retransmits["quiet"]),
        "iperf_retransmits_updating": statistics.median(retransmits["updating"]),
        "gateway_upcalls_per_update": statistics.median(upcalls),
        "fallback_purges": purged,
        "in_flight": in_flight,
        "coalesced_updates_during_iperf": coalesced,
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gateway id-update latency and throughput.")
    add_sweep_arguments(parser, gateways="1,2,4,8")
    parser.add_argument("--updates", type=int, default=200, help="id updates per |G|")
    parser.add_argument("--iperf-seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="iperf3 runs without and with updates, alternated")
    parser.add_argument("--update-rate", type=float, default=0.0,
                        help="id updates per second during iperf3 (0: back to back)")
    parser.add_argument("--in-flight", type=int, default=1,
                        help="id updates outstanding at a time during iperf3 (pipelined)")
    parser.add_argument("--gateway-daemons",
                        help="comma-separated: all gateways on one switch daemon, or each on "
                        f"its own, each in a data center of its own ({', '.join(GATEWAY_DAEMONS)};"
                        " default: the data center's, shared unless the sync is watch)")
    parser.add_argument("--port-type", default=PORT_TYPES[0],
                        help="comma-separated: how the bridges open their veth ends, each in a "
                        f"data center of its own ({', '.join(PORT_TYPES)}; default "
                        f"{PORT_TYPES[0]})")
    parser.add_argument("--updater", default=UPDATERS[0],
                        help="comma-separated: who sends the updates, each in a data center of "
                        f"its own ({', '.join(UPDATERS)}: the benchmark's own loop, nearly no "
                        "controller cost)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        sizes, modes = sweep(args.gateways, args.datapath_sync)
        gateway_daemons: list[str | None] = [*named(
            args.gateway_daemons, GATEWAY_DAEMONS, "--gateway-daemons")] \
            if args.gateway_daemons else [None]
        port_types = named(args.port_type, PORT_TYPES, "--port-type")
    except ValueError as error:
        print(f"bench_gateways: {error}", file=sys.stderr)
        return 2
    if args.in_flight < 1:
        print("bench_gateways: --in-flight must be at least 1", file=sys.stderr)
        return 2
    try:
        updaters = chosen_updaters(args.updater, args.in_flight, modes)
    except ValueError as error:
        print(f"bench_gateways: {error}", file=sys.stderr)
        return 2
    problem = machine_problem()
    if problem:
        print(f"bench_gateways: {problem}", file=sys.stderr)
        return 1
    results = []
    print(f"{'|G|':>4} {'sync,daemons,ports,updater':>30} {'update p50':>11} {'p99':>8}"
          f" {'1 gateway p50':>14} {'p99':>8}"
          f" {'iperf Mb/s':>11} {'w/ updates':>11} {'ratio':>6} {'A/A':>6} {'upd/s':>7}"
          f" {'CPU ms/update ctl':>18} {'switchd':>8} {'bench':>6} {'ctl in iperf':>12}"
          f" {'retransmits':>12} {'w/ upd':>7} {'upcalls/upd':>11} {'purged':>6}"
          f" {'coalesced':>9} {'switchd idle':>12} {'load':>5}")
    for gateways, daemons, ports, mode, updater in itertools.product(
            sizes, gateway_daemons, port_types, modes, updaters):
        try:
            row = measure(gateways, args.updates, args.iperf_seconds, args.rounds,
                          args.update_rate, prefix="b", datapath_sync=mode,
                          in_flight=args.in_flight, gateway_daemons=daemons, port_type=ports,
                          updater=updater)
        except ValueError as error:
            print(f"bench_gateways: {error}", file=sys.stderr)
            return 2
        except PortsUnavailable as error:
            print(f"bench_gateways: {error}", file=sys.stderr)
            return 1
        results.append(row)
        label = f"{mode},{row['gateway_daemons']},{ports},{updater}"
        print(f"{gateways:>4} {label:>30} {row['update_p50_ms']:>9.2f}ms"
              f" {row['update_p99_ms']:>6.2f}ms"
              f" {row['roundtrip_p50_ms']:>12.2f}ms {row['roundtrip_p99_ms']:>6.2f}ms"
              f" {row['iperf_quiet_mbps']:>11.1f} {row['iperf_updating_mbps']:>11.1f}"
              f" {row['throughput_ratio']:>6.3f} {row['calibration_ratio']:>6.3f}"
              f" {row['updates_per_s_during_iperf']:>7.0f}"
              f" {row['controller_cpu_ms_per_update']:>18.2f}"
              f" {row['switchd_cpu_ms_per_update']:>8.2f}"
              f" {row['benchmark_cpu_ms_per_update']:>6.2f}"
              f" {row['controller_cpu_ms_per_update_during_iperf']:>12.2f}"
              f" {row['iperf_retransmits_quiet']:>12.0f} {row['iperf_retransmits_updating']:>7.0f}"
              f" {row['gateway_upcalls_per_update']:>11.2f}"
              f" {row['fallback_purges']:>6} {row['coalesced_updates_during_iperf']:>9}"
              f" {row['switchd_idle_cores']:>12.3f} {row['load_average']:>5.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
