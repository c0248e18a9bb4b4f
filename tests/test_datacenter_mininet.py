"""The emulated data center end to end: real OVS bridges, OpenFlow 1.3 rules, real packets.

One network for the whole module (its own name prefix and management
subnet, the first free ones from the test process id on, and its own
controller ports). Probe servers run
on every backend; clients run in external hosts. Every wait is for a
condition (a ready line, an answer, a controller status) with a timeout that
says what it waited for.
"""

from __future__ import annotations

import itertools
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from beaver.ids import TTL_ENTROPY, ipv4_marks, ipv4_space
from benchmarks.pipelined import pipelined_updates
from controller.gateways.client import GatewayClient
from controller.gateways.maglev import FlowKey, MaglevTable
from controller.gateways.registers import CODE_REGISTER
from controller.gateways.rules import dropped_entropies
from testbed.network import PROJECT_ROOT, DataCenter
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool

pytestmark = pytest.mark.mininet

UDP_PORT, TCP_PORT = 7000, 7001
PARAMS = DataCenterParams(hosts_per_leaf=2, gateways=2)
NAMES = NamePool("m", "172.28.0.0/16")
"""Names and management subnets claimed free, so concurrent test runs do not clash."""
SPACE = ipv4_space()


class Lines:
    """The stdout lines of a process, read by a thread so waits can time out."""

    def __init__(self, process: subprocess.Popen[str], label: str,
                 into: queue.Queue[tuple[str, str]] | None = None) -> None:
        self.process, self.label = process, label
        self.queue: queue.Queue[tuple[str, str]] = into if into is not None else queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.queue.put((self.label, line.strip()))

    def next(self, timeout: float, waiting_for: str) -> str:
        return next_line(self.queue, timeout, waiting_for)[1]


def next_line(lines: queue.Queue[tuple[str, str]], timeout: float,
              waiting_for: str) -> tuple[str, str]:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no output within {timeout}s while waiting for {waiting_for}") from None


def probe(host: Any, *args: str) -> subprocess.Popen[str]:
    return host.popen([sys.executable, "-m", "hosts.probe", *args], cwd=PROJECT_ROOT,
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


class Backends:
    """Probe servers on every in-group host; ``arrivals`` reads what they reported."""

    def __init__(self, dc: DataCenter) -> None:
        self.reports: queue.Queue[tuple[str, str]] = queue.Queue()
        self.servers = {}
        for host in dc.plan.hosts:
            self.servers[host.name] = probe(dc.host(host.name), "serve", "--udp", str(UDP_PORT),
                                            "--tcp", str(TCP_PORT))
            Lines(self.servers[host.name], host.name, self.reports)
        for _ in self.servers:
            name, line = next_line(self.reports, 10, "probe servers to print ready")
            assert line == "ready", f"{name}: {line}"

    def arrivals(self, expected: int, timeout: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
        """The next ``expected`` reports from any backend, as (backend, report)."""
        found = []
        for index in range(expected):
            name, line = next_line(self.reports, timeout, f"packet {index + 1} of {expected}"
                                   f" at a backend (seen so far: {found})")
            found.append((name, json.loads(line)))
        return found

    def stop(self) -> None:
        for server in self.servers.values():
            server.terminate()
            server.wait(timeout=5)


@pytest.fixture(scope="module")
def dc(mininet_machine: None) -> Iterator[DataCenter]:
    with DataCenter(PARAMS, names=NAMES) as datacenter:
        print(f"data center {datacenter.plan.prefix}: controller log "
              f"{datacenter.controller_log}, OpenFlow port {datacenter.controller_port}")
        yield datacenter
        errors = [line for line in datacenter.controller_log.read_text().splitlines()
                  if " ERROR " in line or "Traceback" in line]
        assert not errors, f"the controller logged errors: {errors}"


@pytest.fixture(scope="module")
def backends(dc: DataCenter) -> Iterator[Backends]:
    servers = Backends(dc)
    yield servers
    servers.stop()


@pytest.fixture
def spread(dc: DataCenter) -> Iterator[GatewayClient]:
    """The controller client; inbound traffic is spread over all gateways again afterwards."""
    yield dc.controller
    dc.controller.steer(None)


def send(dc: DataCenter, client: str, proto: str, sport: int, count: int = 1,
         code: int = 0, flows: int = 1) -> list[dict[str, Any]]:
    process = probe(dc.host(client), "send", proto, dc.plan.services[0].vip,
                    str(UDP_PORT if proto == "udp" else TCP_PORT), "--sport", str(sport),
                    "--count", str(count), "--code", str(code), "--flows", str(flows))
    lines = Lines(process, client)
    replies = []
    while (line := lines.next(10, f"{proto} replies at {client}")) != "done":
        replies.append(json.loads(line))
    process.wait(timeout=5)
    return replies


def predicted_backend(dc: DataCenter, source: str, proto: int, sport: int, dport: int) -> str:
    """The backend the flow from ``source`` (an external's name or any IP) should reach."""
    service = dc.plan.services[0]
    ip = next((x.ip for x in dc.plan.externals if x.name == source), source)
    flow = FlowKey(proto, ip, service.vip, sport, dport)
    return MaglevTable(service.backends).lookup(flow)


def counted(dc: DataCenter, before: dict[str, int], gateway: str | None, packets: int,
            timeout: float = 5.0) -> dict[str, int]:
    """Gateway counters once they show ``packets`` more (OVS updates them lazily).

    ``gateway`` None: summed over all gateways. Returns the first counts that
    reach the target, so a test can check they did not go beyond it.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = gateway_packets(dc)
        names = [gateway] if gateway else list(now)
        if sum(now[n] - before[n] for n in names) >= packets:
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"gateway counters {now} (before {before}) never grew by {packets}")
        time.sleep(0.1)


def gateway_packets(dc: DataCenter) -> dict[str, int]:
    """Packets each gateway has classified (its ``classify`` table): everything that
    entered it from the border toward a VIP.

    Each gateway's revalidator finishes a pass first, so the counts include every
    packet forwarded so far (a gateway's daemon pushes datapath statistics to its
    rules only during those passes).
    """
    counts = {}
    for gateway in dc.plan.gateways:
        dc.switch_daemon(gateway.name).appctl("revalidator/wait")
        output = dc.ofctl("dump-aggregate", gateway.name, "table=classify")
        counts[gateway.name] = int(output.split("packet_count=")[1].split()[0])
    return counts


def test_flow_dumps_name_the_pipeline_tables(dc: DataCenter) -> None:
    dump = dc.ofctl("dump-flows", dc.plan.gateways[0].name)
    for name in ("current", "classify", "stamp", "observe", "balance", "forward"):
        assert f"table={name}," in dump
    # The current rule holds the id's wire code as its TOS byte and TTL; the stamp rule
    # copies them into the packet.
    tos, ttl = ipv4_marks(SPACE.to_wire(max(dc.controller.ids().values())))
    assert f"set_field:{ttl << 8 | tos:#x}->{CODE_REGISTER}" in dump
    register = f"NXM_NX_{CODE_REGISTER.upper()}"
    assert f"move:{register}[2..7]->OXM_OF_IP_DSCP[]" in dump
    assert f"move:{register}[0..1]->NXM_NX_IP_ECN[]" in dump
    assert f"move:{register}[8..15]->NXM_NX_IP_TTL[]" in dump


def test_udp_reaches_predicted_backend_and_replies_bypass_gateways(
        dc: DataCenter, backends: Backends) -> None:
    client = dc.plan.externals[0].name
    before = gateway_packets(dc)
    replies = send(dc, client, "udp", sport=40001, count=5)
    arrivals = backends.arrivals(5)
    expected = predicted_backend(dc, client, 17, 40001, UDP_PORT)
    assert {backend for backend, _ in arrivals} == {expected}
    assert [r.get("reply_from") for r in replies] == [dc.plan.services[0].vip] * 5
    after = counted(dc, before, None, 5)
    assert sum(after.values()) - sum(before.values()) == 5, "replies must not cross a gateway"


def test_border_spreads_flows_over_every_gateway(dc: DataCenter, backends: Backends) -> None:
    before = gateway_packets(dc)
    replies = send(dc, dc.plan.externals[3].name, "udp", sport=41000, flows=24)
    backends.arrivals(24)
    assert len(replies) == 24
    after = counted(dc, before, None, 24)
    assert all(after[g] > before[g] for g in after), f"some gateway got no flow: {after}"


def test_management_network_reaches_the_root_namespace(dc: DataCenter) -> None:
    with socket.create_server((dc.plan.root_mgmt_ip, 0)) as server:
        server.settimeout(10)
        port = server.getsockname()[1]
        dc.open_management(port)
        names = [h.name for h in dc.plan.hosts] + [x.name for x in dc.plan.externals]
        connect = ("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])),"
                   " timeout=5).sendall(sys.argv[3].encode())")
        clients = [dc.host(n).popen([sys.executable, "-c", connect, dc.plan.root_mgmt_ip,
                                     str(port), n]) for n in names]
        heard = set()
        for _ in names:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(5)
                heard.add(connection.recv(64).decode())
        for client in clients:
            assert client.wait(timeout=10) == 0
    assert heard == set(names)


SPOOF = """
import sys
from scapy.all import IP, UDP, Ether, sendp
iface, mac, source, destination, port = sys.argv[1:6]
sendp(Ether(dst=mac) / IP(src=source, dst=destination) / UDP(sport=40999, dport=int(port))
      / b"forged credit", iface=iface, count=5, verbose=False)
"""


def test_management_network_carries_management_traffic_only(
        dc: DataCenter, backends: Backends) -> None:
    """An external host spoofs in-group datagrams out of its management interface (to the
    backend's data and management addresses, at its management MAC): all dropped, while the
    same datagram through the fabric arrives. Hosts cannot reach each other there either."""
    h1, h2 = dc.plan.hosts[0], dc.plan.hosts[1]
    x1 = dc.plan.externals[0]
    sent = probe(dc.host(h1.name), "send", "udp", h2.dip, str(UDP_PORT), "--sport", "40998",
                 "--count", "1", "--timeout", "2")
    [(backend, report)] = backends.arrivals(1)
    sent.wait(timeout=10)
    assert (backend, report["src"]) == (h2.name, h1.dip), "the fabric carries in-group data"

    target_mac = dc.host(h2.name).intf(f"{h2.name}-eth1").MAC()
    for destination in (h2.dip, h2.mgmt_ip):
        spoof = dc.host(x1.name).popen(
            [sys.executable, "-c", SPOOF, f"{x1.name}-eth1", target_mac, h1.dip, destination,
             str(UDP_PORT)], cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
        assert spoof.wait(timeout=30) == 0, spoof.stderr.read()  # type: ignore[union-attr]
    with pytest.raises(TimeoutError):
        arrived = backends.arrivals(1, timeout=2)
        print(f"a spoofed datagram arrived: {arrived}")

    reach = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])),"
             " timeout=2)\nexcept OSError:\n sys.exit(1)")
    for address in (h2.mgmt_ip, dc.plan.root_mgmt_ip):
        connect = dc.host(h1.name).popen([sys.executable, "-c", reach, address, str(TCP_PORT)])
        assert connect.wait(timeout=10) == 1, f"{h1.name} reached {address}:{TCP_PORT}"


def test_tcp_reaches_predicted_backend_with_vip_replies(
        dc: DataCenter, backends: Backends) -> None:
    client = dc.plan.externals[1].name
    replies = send(dc, client, "tcp", sport=40002)
    [(backend, report)] = backends.arrivals(1)
    assert backend == predicted_backend(dc, client, 6, 40002, TCP_PORT)
    assert report["src"] == dc.plan.external(client).ip
    assert replies == [{"reply_from": dc.plan.services[0].vip, "payload": "probe 0"}]


def test_same_flow_through_each_gateway_reaches_same_backend(
        dc: DataCenter, backends: Backends, spread: GatewayClient) -> None:
    client = dc.plan.externals[2].name
    reached = {}
    for gateway in dc.plan.gateways:
        spread.steer(gateway.name)
        before = gateway_packets(dc)
        send(dc, client, "udp", sport=40003)
        [(reached[gateway.name], _)] = backends.arrivals(1)
        assert counted(dc, before, gateway.name, 1)[gateway.name] == before[gateway.name] + 1
    assert set(reached.values()) == {predicted_backend(dc, client, 17, 40003, UDP_PORT)}


def test_backends_see_current_id_and_the_new_one_after_set_id(
        dc: DataCenter, backends: Backends) -> None:
    client = dc.plan.externals[0].name
    current = max(dc.controller.ids().values())
    send(dc, client, "udp", sport=40004, count=3)
    assert {r["code"] for _, r in backends.arrivals(3)} == {SPACE.to_wire(current)}
    for snapshot_id in (current + 1, current + 2):
        result = dc.controller.set_id(snapshot_id)
        assert result.complete and not result.failed
        assert all(t.sent_at <= t.acked_at for t in result.gateways.values())
        for sport in (40004, 40005, 40006):
            send(dc, client, "udp", sport=sport, count=2)
            assert {r["code"] for _, r in backends.arrivals(2)} == {SPACE.to_wire(snapshot_id)}


def with_code(first: int, mask: int) -> int:
    """The first id from ``first`` on whose wire code has every bit of ``mask`` set."""
    return next(k for k in range(first, first + SPACE.codes) if SPACE.to_wire(k) & mask == mask)


TTL_AND_ECN_BITS = 0x303
"""A code with both TTL bits and both ECN bits set needs every header field it takes."""


def test_a_gateway_stamps_all_ten_bits_and_the_backend_reads_them_back(
        dc: DataCenter, backends: Backends) -> None:
    client = dc.plan.externals[0].name
    current = max(dc.controller.ids().values())
    newest = with_code(current + 1, TTL_AND_ECN_BITS)
    assert dc.controller.set_id(newest).complete
    send(dc, client, "udp", sport=40008, count=2)
    assert {r["code"] for _, r in backends.arrivals(2)} == {SPACE.to_wire(newest)}


def test_ingroup_traffic_with_newer_id_raises_the_gateway(
        dc: DataCenter, backends: Backends, spread: GatewayClient) -> None:
    first, second = (g.name for g in dc.plan.gateways)
    # From an id whose code's TOS byte is near its top, the ids ahead wrap the TOS byte
    # and change the TTL bits: the bitmap of TOS bytes still sees them.
    start = max(spread.ids().values())
    current = next(k for k in range(start, start + SPACE.codes) if SPACE.to_wire(k) == 0x2F0)
    assert spread.set_id(current).complete
    spread.steer(first)
    # A sender the flow does not hash back to (a host cannot receive its own packet).
    sender = next(h.name for h in dc.plan.hosts
                  if predicted_backend(dc, h.dip, 17, 40007, UDP_PORT) != h.name)
    newer = with_code(current + 1, TTL_AND_ECN_BITS)
    assert newer - current <= SPACE.lead, "an observe rule catches it"
    send(dc, sender, "udp", sport=40007, code=SPACE.to_wire(newer), count=1)
    [(_, report)] = backends.arrivals(1)
    assert report["code"] == SPACE.to_wire(newer), "in-group packets keep their own id"
    deadline = time.monotonic() + 5
    while spread.ids()[first] != newer and time.monotonic() < deadline:
        time.sleep(0.02)
    assert spread.ids() == {first: newer, second: current}


class OpenFlowRelay:
    """A TCP relay between one switch and the controller that the test can stall and cut."""

    def __init__(self, controller_port: int) -> None:
        self.controller_port = controller_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.holding = threading.Event()
        self.connected_from: int | None = None
        """The relay's local port toward the controller, once the switch connected."""
        self.sent_while_holding = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            switch, _ = self.listener.accept()
        except OSError:
            return
        controller = socket.create_connection(("127.0.0.1", self.controller_port))
        self.sockets += [switch, controller]
        self.connected_from = controller.getsockname()[1]
        threading.Thread(target=self._pump, args=(switch, controller, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(controller, switch, False),
                         daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_switch: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_switch and self.holding.is_set():
                    continue  # the switch's answers (barrier replies) never arrive
                if not from_switch and self.holding.is_set():
                    self.sent_while_holding += len(data)
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # close() alone does not wake a blocked recv
            except OSError:
                pass
            sock.close()


def test_gateway_disconnecting_during_an_update_is_reported_failed(dc: DataCenter) -> None:
    """The barrier reply is held back, then the connection drops while set_id waits."""
    gateway = dc.plan.gateways[-1].name
    relay = OpenFlowRelay(dc.controller_port)
    dc.switch_daemon(gateway).vsctl("set-controller", gateway, f"tcp:127.0.0.1:{relay.port}")
    try:
        deadline = time.monotonic() + 30
        while True:  # the controller serves the gateway's new connection, through the relay
            status = dc.controller.status()
            peer = status["peers"].get(gateway)
            if status["ready"] and peer and peer[1] == relay.connected_from:
                break
            assert time.monotonic() < deadline, f"{gateway} never reconnected via the relay"
            time.sleep(0.02)
        relay.holding.set()
        outcome: list[Any] = []
        update = threading.Thread(target=lambda: outcome.append(
            GatewayClient(dc.control_port, secret=dc.secret).set_id(
                max(dc.controller.ids().values()) + 1, timeout=20)))
        update.start()
        deadline = time.monotonic() + 10
        while relay.sent_while_holding == 0:
            assert time.monotonic() < deadline, "the update never reached the gateway"
            time.sleep(0.01)
        relay.cut()
        update.join(timeout=20)
        [result] = outcome
        assert result.failed == {gateway}
        assert not result.complete and result.last_acked is None
        part = result.gateways[gateway]
        assert part.sent_at is not None and part.acked_at is None
        assert part.failure == "disconnected before the barrier reply"
        others = [t for name, t in result.gateways.items() if name != gateway]
        assert all(t.acked_at is not None for t in others)
    finally:
        relay.cut()
        dc.switch_daemon(gateway).vsctl("set-controller", gateway,
                                        f"tcp:127.0.0.1:{dc.controller_port}")
        dc.controller.wait_ready(30)


FAKE_SWITCH = """
import socket, struct, sys
port, dpid = int(sys.argv[1]), int(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port), timeout=20)
sock.sendall(struct.pack("!BBHI", 4, 0, 8, 1))  # OpenFlow 1.3 HELLO
buffer = b""
while True:
    data = sock.recv(4096)
    if not data:
        print("closed by the controller", flush=True)
        break
    buffer += data
    while len(buffer) >= 8:
        version, kind, length, xid = struct.unpack("!BBHI", buffer[:8])
        if len(buffer) < length:
            break
        buffer = buffer[length:]
        if kind == 5:  # FEATURES_REQUEST: claim the datapath id
            sock.sendall(struct.pack("!BBHIQIBB2xII", 4, 6, 32, xid, dpid, 0, 254, 0, 0, 0))
        elif kind == 2:  # ECHO_REQUEST
            sock.sendall(struct.pack("!BBHI", 4, 3, 8, xid))
"""


def test_a_fake_switch_cannot_take_a_gateways_datapath_id(dc: DataCenter) -> None:
    """A local user's process, and a second root connection, claiming gw1's datapath id are
    refused and logged; the real gateway stays connected and ready."""
    gateway = dc.plan.gateways[0]
    before = dc.controller.status()["peers"][gateway.name]
    for user in (["runuser", "-u", "nobody", "--"], []):
        fake = subprocess.run([*user, sys.executable, "-c", FAKE_SWITCH, str(dc.controller_port),
                               str(gateway.dpid)], capture_output=True, text=True, timeout=30)
        assert fake.stdout.strip() == "closed by the controller", fake.stderr
    log = dc.controller_log.read_text()
    assert f"claiming dpid {gateway.dpid:#x} ({gateway.name}): its socket is not root's" in log
    assert f"claiming dpid {gateway.dpid:#x} ({gateway.name}): {gateway.name} is connected" in log
    status = dc.controller.status()
    assert status["ready"] and status["peers"][gateway.name] == before


def test_invalid_parameter_fails_before_anything_is_created(mininet_machine: None) -> None:
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    with pytest.raises(ValueError, match="spines=0"):
        DataCenter(DataCenterParams(spines=0, prefix="tx"))
    with pytest.raises(ValueError, match="window"):
        DataCenter(DataCenterParams(prefix="tx"), window=512)  # 10 bits decode at most 511
    after = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert after == bridges


def test_leaving_on_an_exception_removes_everything(mininet_machine: None) -> None:
    small = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=1, externals=1,
                             relays=0)
    with pytest.raises(RuntimeError, match="boom"):
        with DataCenter(small, names=NamePool("e", "172.27.0.0/16")) as datacenter:
            process, workdir = datacenter.controller_process, datacenter.workdir
            plan = datacenter.plan
            raise RuntimeError("boom")
    assert process is not None and process.poll() is not None
    assert workdir is not None and not workdir.exists()
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    switches = {s.name for s in plan.switches} | {plan.mgmt_switch}
    assert not switches & set(bridges.split())
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    nodes = switches | {plan.root_name}
    assert not [line for line in links.splitlines()
                if line.split(": ")[1].split("@")[0].split("-eth")[0] in nodes]



def stamped_ids(dc: DataCenter, gateway: str, until: threading.Event) -> list[tuple[float, int]]:
    """(time the dump was asked for, the full id its ``current`` rule showed), until ``until``."""
    seen = []
    while not until.is_set():
        asked = time.monotonic()
        dump = dc.ofctl("dump-flows", gateway, "table=current")
        [cookie] = [int(field.split("=")[1], 16) for field in dump.replace(",", " ").split()
                    if field.startswith("cookie=")]
        seen.append((asked, cookie & ((1 << 48) - 1)))
    return seen


def pipelined_and_watched(dc: DataCenter, gateway: str, count: int,
                          in_flight: int) -> tuple[list[Any], list[tuple[float, int]]]:
    """``count`` updates, ``in_flight`` outstanding at a time, and the ids the gateway's
    ``current`` rule showed meanwhile (:func:`stamped_ids`)."""
    done = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        looks = pool.submit(stamped_ids, dc, gateway, done)
        try:
            updates = pipelined_updates(dc, count, in_flight)
        finally:
            done.set()
        return updates, looks.result(timeout=30)


def assert_never_older_than_acked(updates: list[Any], gateway: str,
                                  seen: list[tuple[float, int]]) -> None:
    """Every look at the gateway's stamp rule taken after it acked id k shows k or newer,
    and the rule's id never goes back."""
    assert all(u.complete for u in updates), [u.failed for u in updates if not u.complete]
    acked = sorted((u.gateways[gateway].acked_at, u.snapshot_id) for u in updates)
    during = [(asked, full) for asked, full in seen if acked[0][0] < asked < acked[-1][0]]
    assert len(during) >= 5, f"only {len(during)} looks at the stamp rule during the updates"
    ids = [full for _, full in seen]
    assert ids == sorted(ids), "the stamp rule went back to an older id"
    for asked, full in during:
        newest_acked = max(k for at, k in acked if at < asked)
        assert full >= newest_acked, (asked, full, newest_acked)


def test_pipelined_updates_never_leave_a_gateway_stamping_an_older_id(dc: DataCenter) -> None:
    """While updates are pipelined (8 outstanding), every look at a gateway's stamp rule
    taken after the gateway acked id k shows k or newer, and the rule's id never goes back."""
    gateway = dc.plan.gateways[0].name
    updates, seen = pipelined_and_watched(dc, gateway, count=400, in_flight=8)
    overlapping = sum(later.gateways[gateway].sent_at < earlier.gateways[gateway].acked_at
                      for earlier, later in zip(updates[:-1], updates[1:], strict=True))
    assert overlapping > 0, "no update was sent before the previous one was acked"
    assert_never_older_than_acked(updates, gateway, seen)


def test_updates_queued_behind_a_busy_gateway_are_coalesced_and_acked_in_order(
        dc: DataCenter) -> None:
    """With 64 of 5,000 updates outstanding (enough for several looks at the rule while they
    run), those that queue while a gateway applies older ones get no flow-mod of their own:
    one for the newest goes out and its ack acknowledges them all. Every update is still
    acknowledged by every gateway, in order, and no ack comes before the gateway's stamp
    rule holds the id."""
    gateway = dc.plan.gateways[0].name
    before = dc.controller.status()["coalesced_updates"]
    updates, seen = pipelined_and_watched(dc, gateway, count=5000, in_flight=64)
    coalesced = {name: count - before[name]
                 for name, count in dc.controller.status()["coalesced_updates"].items()}
    assert coalesced[gateway] > 0, f"no update was coalesced: {coalesced}"
    for name in coalesced:
        parts = [u.gateways[name] for u in updates]
        acks = [part.acked_at for part in parts]
        assert acks == sorted(acks), f"{name} acknowledged updates out of order"
        shared = sum(earlier.sent_at == later.sent_at
                     for earlier, later in zip(parts[:-1], parts[1:], strict=True))
        assert shared == coalesced[name], (name, shared, coalesced[name])
    assert_never_older_than_acked(updates, gateway, seen)


RECEIVE_MARKED = """
import sys
from hosts import wire
sock = wire.open_udp(("0.0.0.0", int(sys.argv[1])))
sock.setblocking(True)
print("ready", flush=True)
while True:
    payload, code, _ = wire.receive(sock)
    print(payload.decode(), code, flush=True)
"""
SEND_MARKED = """
import socket, sys
from hosts import wire
from beaver.ids import TTL_ENTROPY
host, port, codes = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for code in codes:
    for entropy in TTL_ENTROPY:
        wire.send(sock, f"{code} {entropy}".encode(), (host, port), code, entropy)
wire.send(sock, b"end 0", (host, port), 0)
"""
LOSSY = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=2, gateways=1, externals=1,
                         relays=0)


def test_the_loss_rules_drop_the_same_entropy_of_every_id_and_the_rest_arrive_whole(
        mininet_machine: None) -> None:
    """In-group datagrams with every TTL entropy and codes using every header bit: exactly
    those whose entropy the loss rules name are dropped, whatever id they carry, and every
    other arrives with its whole 10-bit code."""
    share = 0.1
    codes = [0x001, 0x0FF, 0x100, 0x2A5, 0x3FF]
    with DataCenter(LOSSY, names=NamePool("l", "172.24.0.0/16"), data_loss=share) as lossy:
        sender, receiver = lossy.plan.hosts
        server = lossy.host(receiver.name).popen(
            [sys.executable, "-c", RECEIVE_MARKED, str(UDP_PORT)], cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            lines = Lines(server, receiver.name)
            assert lines.next(10, "the receiver to print ready") == "ready"
            sent = lossy.host(sender.name).popen(
                [sys.executable, "-c", SEND_MARKED, receiver.dip, str(UDP_PORT),
                 *map(str, codes)], cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
            assert sent.wait(timeout=20) == 0, sent.stderr.read() if sent.stderr else ""
            arrived = []
            while (line := lines.next(10, "the last datagram (entropy 0 is never dropped)")
                   ) != "end 0 0":
                code, entropy, read = map(int, line.split())
                assert read == code, f"datagram {code} {entropy} arrived with code {read}"
                arrived.append((code, entropy))
        finally:
            server.terminate()
            server.wait(timeout=5)
    lost = set(itertools.product(codes, TTL_ENTROPY)) - set(arrived)
    assert len(arrived) == len(set(arrived))
    assert lost == set(itertools.product(codes, dropped_entropies(share)))
    assert len(lost) / (len(codes) * len(TTL_ENTROPY)) == 3 / 32
