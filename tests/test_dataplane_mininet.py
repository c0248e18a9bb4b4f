"""The data plane's own processes and files, and what an acknowledged id update means on the wire.

* Every switch daemon (``ovsdb-server`` + ``ovs-vswitchd`` per gateway and one
  for the fabric) and every file the data plane creates (databases, sockets,
  logs, the temporary directory) is gone after the data center is left
  normally and on an exception, with either port type. (Ctrl-C, SIGTERM and
  SIGHUP of ``beaver run``: ``test_run_mininet.py``; SIGKILL + ``beaver
  clean``: ``test_crash_mininet.py``; the same with AF_XDP ports:
  ``test_afxdp_mininet.py``.)
* A gateway's part of an id update is acknowledged only once the gateway
  stamps the new id: a datagram of an already cached flow, sent after the
  acknowledgement, carries it. A sender streams timestamped datagrams from an
  external host through the gateways while the ids rise; the backend reports
  each datagram's send time and wire code (its TOS byte). Both datapath
  syncs are checked, and the purge with AF_XDP ports (``port_type="afxdp"``,
  forwarded by PMD threads) too.
* The ``watch`` sync keeps the gateways' cached flows: no datapath miss per
  update, and the flows of the stamp path mark the newest id.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from emulated_cli import bridges_of, switch_daemons_of, workdirs_of

from beaver.ids import ipv4_space
from controller.gateways.datapath import SYNC_MODES, stale_flows
from testbed.network import DataCenter
from testbed.switchd import PORT_TYPES
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool

pytestmark = pytest.mark.mininet

SMALL = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=2, externals=1,
                         relays=0)
NAMES = NamePool("p", "172.30.0.0/16")
STREAM_PORT = 7100
UPDATES = 40
PACE = 0.04
"""Seconds between the ack of one update and the next: datagrams flow in between."""

STREAM_SENDER = """
import socket, struct, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 40100))
print("sending", flush=True)
end = time.monotonic() + seconds
while (now := time.monotonic()) < end:
    sock.sendto(struct.pack("!d", now), (host, port))
    time.sleep(0.0005)
"""
STREAM_RECEIVER = """
import json, socket, struct, sys
from hosts.wire import marked_code, report_marks
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
report_marks(sock)
sock.bind(("0.0.0.0", int(sys.argv[1])))
sock.settimeout(float(sys.argv[2]))
print("ready", flush=True)
seen = []
try:
    while True:
        data, ancillary, _, _ = sock.recvmsg(64, 2 * socket.CMSG_SPACE(4))
        seen.append((struct.unpack("!d", data[:8])[0], marked_code(ancillary)))
        if len(seen) == 20:
            print("flowing", flush=True)
except TimeoutError:
    pass
print(json.dumps(seen), flush=True)
"""


def daemon_processes(dc: DataCenter) -> list[subprocess.Popen[bytes]]:
    assert dc.daemons is not None
    return [process for daemon in dc.daemons.daemons.values()
            for process in (daemon.database, daemon.switch) if process is not None]


def assert_all_gone(pids: list[int], workdir: Path, prefix: str) -> None:
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]]
    assert alive == [], f"switch daemon processes still running: {alive}"
    assert not workdir.exists(), f"{workdir} (databases, sockets, logs) was left behind"
    assert switch_daemons_of(prefix) == [] and bridges_of(prefix) == [] == workdirs_of(prefix)


@pytest.mark.parametrize("gateway_daemons, port_type",
                         [("shared", "system"), ("own", "system"), ("shared", "afxdp")])
def test_leaving_normally_or_on_an_exception_removes_every_daemon_and_file(
        mininet_machine: None, gateway_daemons: str, port_type: str) -> None:
    for ending in ("normal", "exception"):
        with pytest.raises(RuntimeError, match="boom") if ending == "exception" else \
                contextlib.nullcontext():
            with DataCenter(SMALL, names=NAMES, gateway_daemons=gateway_daemons,
                            port_type=port_type) as dc:
                assert dc.workdir is not None
                workdir, prefix = dc.workdir, dc.plan.prefix
                processes = daemon_processes(dc)
                gateway_daemon_count = SMALL.gateways if gateway_daemons == "own" else 1
                assert len(processes) == 2 * (1 + gateway_daemon_count)
                assert sorted(switch_daemons_of(prefix)) == sorted(p.pid for p in processes)
                files = {p.name for p in (workdir / "ovs").rglob("*")}
                assert {"conf.db", "db.sock", "vswitchd.ctl", f"{prefix}gw1.mgmt"} <= files
                if ending == "exception":
                    raise RuntimeError("boom")
        assert_all_gone([p.pid for p in processes], workdir, prefix)


def assert_polled_by_pmds(dc: DataCenter) -> None:
    """Every data-plane port is an AF_XDP socket that a PMD thread of its daemon polls, and
    the gateways' PMD has received packets."""
    assert dc.daemons is not None
    for switch in dc.plan.switches:
        daemon = dc.switch_daemon(switch.name)
        for port in daemon.vsctl("list-ports", switch.name).split():
            assert daemon.vsctl("get", "Interface", port, "type").strip() == "afxdp", port
            assert f"port: {port} " in daemon.appctl("dpif-netdev/pmd-rxq-show"), port
    stats = dc.switch_daemon(dc.plan.gateways[0].name).appctl("dpif-netdev/pmd-stats-show")
    pmd = stats.split("pmd thread", 1)[1].split("main thread", 1)[0]
    received = int(pmd.split("packets received:", 1)[1].split()[0])
    assert received > 0, stats


def start_stream(dc: DataCenter, seconds: float) -> tuple[Any, Any]:
    """(receiver, sender) of a datagram stream from the external host to the VIP, already
    flowing: the flow's datapath entries exist."""
    backend = dc.host(dc.plan.hosts[0].name)
    external = dc.host(dc.plan.externals[0].name)
    receiver = backend.popen([sys.executable, "-c", STREAM_RECEIVER, str(STREAM_PORT), "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    sender = external.popen([sys.executable, "-c", STREAM_SENDER, dc.plan.services[0].vip,
                             str(STREAM_PORT), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert sender.stdout.readline().strip() == "sending"
    assert receiver.stdout.readline().strip() == "flowing"
    return receiver, sender


@pytest.mark.parametrize("sync, port_type",
                         [*((sync, PORT_TYPES[0]) for sync in SYNC_MODES), ("purge", "afxdp")])
def test_a_datagram_sent_after_the_ack_carries_the_new_id(mininet_machine: None, sync: str,
                                                          port_type: str) -> None:
    space = ipv4_space()
    with DataCenter(SMALL, names=NAMES, datapath_sync=sync, port_type=port_type) as dc:
        seconds = 2.0 + UPDATES * (PACE + 0.02)
        receiver, sender = start_stream(dc, seconds)
        if port_type == "afxdp":  # the stream flows through AF_XDP sockets, polled by PMDs
            assert_polled_by_pmds(dc)
        updates: list[tuple[int, float, float]] = []
        for snapshot_id in range(1, UPDATES + 1):
            result = dc.controller.set_id(snapshot_id)
            assert result.complete, result
            updates.append((snapshot_id, result.first_sent, result.last_acked))
            time.sleep(PACE)
        sender.wait(timeout=seconds + 30)
        out, err = receiver.communicate(timeout=seconds + 30)
    seen: list[tuple[float, int]] = json.loads(out)
    assert len(seen) > 500, f"too few datagrams arrived ({len(seen)}): {err}"
    stale: list[dict[str, Any]] = []
    checked = 0
    for index, (snapshot_id, _, acked) in enumerate(updates):
        following = updates[index + 1][1] if index + 1 < len(updates) else float("inf")
        between = [(sent, dscp) for sent, dscp in seen if acked < sent < following]
        checked += bool(between)  # a busy machine can starve the sender for a while
        # this id or a later one (a datagram can reach the gateway after the next update)
        allowed = {space.to_wire(later) for later in range(snapshot_id, UPDATES + 1)}
        wrong = [dscp for _, dscp in between if dscp not in allowed]
        if wrong:
            stale.append({"id": snapshot_id, "wire": space.to_wire(snapshot_id), "seen": wrong})
    assert checked >= UPDATES // 2, f"datagrams followed only {checked} of {UPDATES} acks"
    assert stale == [], f"datagrams sent after an update's ack carried another id: {stale}"


def test_watching_keeps_the_gateways_cached_flows(mininet_machine: None) -> None:
    """The ``watch`` sync lets the revalidator rewrite the cached flows in place: the
    stream's packets keep hitting them (a purge makes one miss per update), and each flow
    of the stamp path marks the newest id when its update is acknowledged."""
    with DataCenter(SMALL, names=NAMES, datapath_sync="watch") as dc:
        seconds = 2.0 + UPDATES * (PACE + 0.02)
        receiver, sender = start_stream(dc, seconds)
        daemons = [dc.switch_daemon(g.name) for g in dc.plan.gateways]
        before = sum(daemon.upcalls() for daemon in daemons)
        for snapshot_id in range(1, UPDATES + 1):
            assert dc.controller.set_id(snapshot_id).complete
            flows = "".join(daemon.appctl("dpctl/dump-flows") for daemon in daemons)
            assert stale_flows(flows, snapshot_id) == []
            marked = [line for line in flows.splitlines() if "set(skb_mark(" in line]
            assert marked, f"no cached flow marks id {snapshot_id}: {flows}"
            time.sleep(PACE)
        misses = sum(daemon.upcalls() for daemon in daemons) - before
        sender.wait(timeout=seconds + 30)
        receiver.communicate(timeout=seconds + 30)
    assert misses < UPDATES // 4, f"{misses} datapath misses during {UPDATES} updates"
