"""The snapshot coordinator service over loopback, with fake agents and fake gateways.

Fake agents are the protocol core's node state machines (the same ones the
host runtime drives) holding a toy bank balance; they exchange transfers
over in-memory FIFO channels that deliver lazily, so transfers cross the
cuts, and they speak :mod:`topologies.management` to the service over real TCP
sockets on 127.0.0.1.
"""

from __future__ import annotations

import json
import queue
import random
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from beaver.protocols import protocol
from beaver.records import GatewayTiming, Receipt
from controller.coordinator.service import SnapshotService, TakeResult
from controller.coordinator.store import Store
from topologies import management
from topologies.secret import RunSecret

SECRET = RunSecret(b"this test run's secret")
INITIAL_BALANCE = 1000
NODES = ("h1", "h2", "h3")


class FakeGateways:
    """Acks every gateway ``delay(k)`` seconds after sending; gateways in ``failing(k)`` fail.

    Updates are pipelined like the controller's: sent in order, each answered
    ``answer_after`` seconds (real time) after it was sent, in order.
    """

    def __init__(self, names=("g1", "g2"), delay=lambda k: 0.0002, failing=lambda k: (),
                 answer_after: float = 0.0):
        self.names, self.delay, self.failing = list(names), delay, failing
        self.answer_after = answer_after
        self.current: dict[str, int] = dict.fromkeys(self.names, 0)
        self.sent: deque[tuple[int, float]] = deque()
        self.order: list[int] = []
        self.most_outstanding = 0

    def gateways(self) -> list[str]:
        return list(self.names)

    def send_set_id(self, snapshot_id: int) -> None:
        self.sent.append((snapshot_id, time.monotonic()))
        self.order.append(snapshot_id)
        self.most_outstanding = max(self.most_outstanding, len(self.sent))

    def next_update(self) -> list[GatewayTiming]:
        snapshot_id, sent = self.sent[0]
        time.sleep(max(0.0, sent + self.answer_after - time.monotonic()))
        self.sent.popleft()
        failed = frozenset(self.failing(snapshot_id))
        timings = []
        for i, name in enumerate(self.names):
            if name in failed:
                timings.append(GatewayTiming(name, sent, None, "no barrier reply"))
            else:
                self.current[name] = snapshot_id
                delay = self.delay(snapshot_id) * (i + 1) / len(self.names)
                timings.append(GatewayTiming(name, sent, sent + delay))
        return timings


@dataclass
class FakeAgent:
    """One in-group node: core state machine, a balance, a management connection."""

    name: str
    protocol_name: str
    peers: tuple[str, ...]
    balance: int = INITIAL_BALANCE
    seq: int = 0
    notifies: queue.Queue = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.node = protocol(self.protocol_name).node(
            self.name, lambda: {"balance": self.balance}, peers=self.peers)

    def connect(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.settimeout(None)
        self.session = secrets.token_hex(8)
        self.hello = management.encode("hello", SECRET, node=self.name,
                                       protocol=self.protocol_name, nonce=self.session)
        self.sock.sendall(self.hello)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.sock.makefile("rb"):
            message = management.decode(line)
            if message["type"] == "notify":
                self.notifies.put(message["snapshot_id"])
            elif message["type"] == "restore":
                self.balance = message["state"]["balance"] + sum(
                    m["message"]["amount"] for m in message["in_flight"])
                self.sock.sendall(self.line(
                    "restored", seq=self.next_seq(), snapshot_id=message["snapshot_id"]))

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def report(self, receipt: Receipt) -> None:
        for local in receipt.snapshots:
            self.sock.sendall(management.encode_local(local, self.next_seq(), SECRET,
                                                      session=self.session))
        for record in receipt.in_flight:
            self.sock.sendall(management.encode_in_flight(record, self.next_seq(), SECRET,
                                                          session=self.session))

    def line(self, kind: str, **fields: Any) -> bytes:
        """A report of this agent's connection, sealed with the run's secret."""
        return management.encode(kind, SECRET, session=self.session, **fields)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


class FakeInGroup:
    """Fake agents moving money among themselves until the service's run is over."""

    def __init__(self, protocol_name: str, gateways: FakeGateways | None, seed: int = 1):
        self.agents = {n: FakeAgent(n, protocol_name, NODES) for n in NODES}
        self.channels: dict[tuple[str, str], deque] = {
            (a, b): deque() for a in NODES for b in NODES if a != b}
        self.gateways = gateways
        self.random = random.Random(seed)
        self.transfer_ids = 0

    def connect(self, service: SnapshotService) -> None:
        address = service.start()
        for agent in self.agents.values():
            agent.connect(address)
        service.wait_agents(timeout=10)

    def drive_until(self, done: Future) -> Any:
        """Run rounds of notifies, transfers, client traffic and deliveries until ``done``."""
        deadline = time.monotonic() + 60
        while not done.done():
            assert time.monotonic() < deadline, "the service never finished taking snapshots"
            for agent in self.agents.values():
                self._notifies(agent)
            self._round()
            wait([done], timeout=0.001)  # one round per millisecond until the run is over
        return done.result()

    def _notifies(self, agent: FakeAgent) -> None:
        while not agent.notifies.empty():
            self._handle(agent, agent.node.notify(agent.notifies.get(), time.monotonic()))

    def _handle(self, agent: FakeAgent, receipt: Receipt) -> None:
        agent.report(receipt)
        for peer, marker in receipt.outgoing:
            self.channels[agent.name, peer].append(("marker", marker))

    def _round(self) -> None:
        sender, receiver = self.random.sample(NODES, 2)
        a = self.agents[sender]
        amount = self.random.randint(1, 20)
        self.transfer_ids += 1
        wire = a.node.send(receiver, time.monotonic())
        a.balance -= amount
        self.channels[sender, receiver].append(
            ("data", wire, {"transfer": self.transfer_ids, "amount": amount}))
        if self.gateways is not None:  # a client request through a gateway
            target = self.agents[self.random.choice(NODES)]
            stamp = target.node.space.to_wire(self.gateways.current["g1"])
            self._handle(target, target.node.receive(stamp, None, time.monotonic()))
        for (source, destination), channel in self.channels.items():
            if channel and self.random.random() < 0.4:
                self._deliver(source, self.agents[destination], channel.popleft())

    def _deliver(self, source: str, agent: FakeAgent, item: tuple) -> None:
        now = time.monotonic()
        if item[0] == "marker":
            self._handle(agent, agent.node.receive_marker(item[1], source, now))
            return
        _, wire, message = item
        receipt = agent.node.receive(wire, source, now, message)
        self._handle(agent, receipt)
        if receipt.deliver:
            agent.balance += message["amount"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "results" / "beaver.db") as db:
        yield db


def run_service(store: Store, protocol_name: str, *, gateways: FakeGateways | None = None,
                tau_min: float = 10.0, count: int = 12, rate: float = 400.0,
                meddle=None, update_window: int = 1, notify_spread: float = 0.0,
                ) -> tuple[SnapshotService, TakeResult, FakeInGroup]:
    run = store.new_run(protocol_name, {"nodes": list(NODES)}, tau_min * 1e6, "given")
    group = FakeInGroup(protocol_name, gateways)
    service = SnapshotService(protocol_name, NODES, store, run, secret=SECRET, gateways=gateways,
                              tau_min=tau_min, update_window=update_window,
                              notify_spread=notify_spread)
    try:
        group.connect(service)
        if meddle:
            meddle(group, service)
        with ThreadPoolExecutor(1) as pool:
            result = group.drive_until(pool.submit(service.take, count, rate, 30))
    finally:
        service.close()
        for agent in group.agents.values():
            agent.close()
    return service, result, group


def bank_total(snapshot) -> int:
    return (sum(s.state["balance"] for s in snapshot.states)
            + sum(m.message["amount"] for m in snapshot.in_flight))


@pytest.mark.parametrize("protocol_name", ["beaver", "lai-yang", "chandy-lamport"])
def test_every_snapshot_completes_and_balances(store: Store, protocol_name: str) -> None:
    gateways = FakeGateways() if protocol_name == "beaver" else None
    service, result, group = run_service(store, protocol_name, gateways=gateways)
    assert result.stalled is None and result.started == result.stored == 12
    rows = store.snapshot_rows(service.run)
    assert [r["snapshot_id"] for r in rows] == list(range(1, 13))
    assert all(r["complete"] and r["valid"] for r in rows)
    for row in rows:
        snapshot = store.snapshot(service.run, row["snapshot_id"])
        assert [s.node for s in snapshot.states] == list(NODES)
        assert bank_total(snapshot) == INITIAL_BALANCE * len(NODES), row
    assert sum(r["in_flight"] for r in rows) > 0, "no transfer crossed a cut: test too weak"
    assert group.transfer_ids > 0


@pytest.mark.parametrize("window", [1, 4])
def test_gateway_updates_are_pipelined_up_to_the_window(store: Store, window: int) -> None:
    gateways = FakeGateways(answer_after=0.005)
    service, result, _ = run_service(store, "beaver", gateways=gateways, count=24, rate=1e5,
                                     update_window=window)
    assert result.stalled is None and result.stored == 24
    assert gateways.order == list(range(1, 25))
    assert gateways.most_outstanding == window
    rows = store.snapshot_rows(service.run)
    assert all(r["valid"] and r["complete"] for r in rows)
    starts = [r["t0"] for r in rows]
    assert result.start_rate_hz == pytest.approx(23 / (starts[-1] - starts[0]))
    if window == 1:  # each start waits for the previous answer, 5 ms after its send
        assert min(b - a for a, b in zip(starts[:-1], starts[1:], strict=True)) >= 0.005
        assert result.start_rate_hz <= 200


def test_the_update_window_cannot_exceed_the_core_window(store: Store) -> None:
    run = store.new_run("beaver", {}, None, "given")
    with pytest.raises(ValueError, match="update window must be in 1..16"):
        SnapshotService("beaver", NODES, store, run, secret=SECRET, gateways=FakeGateways(),
                        update_window=17)


@pytest.mark.parametrize("protocol_name", ["beaver", "polling"])
def test_a_spread_notify_goes_only_to_nodes_that_did_not_report_its_snapshot(
    store: Store, protocol_name: str
) -> None:
    beaver = protocol_name == "beaver"
    # Under Beaver the spread is long beside the fake group's rounds (one per millisecond,
    # each a stamped client request), so traffic reaches most nodes first even on a
    # loaded machine.
    service, result, group = run_service(store, protocol_name, count=20, rate=200.0,
                                         gateways=FakeGateways() if beaver else None,
                                         notify_spread=0.5 if beaver else 0.05)
    assert result.stalled is None and result.stored == 20
    assert all(r["complete"] for r in store.snapshot_rows(service.run))
    notifies = service.agents.notifies  # a notify still waiting at the end is dropped
    assert notifies["sent"] + notifies["skipped"] <= 20 * len(NODES)
    if beaver:  # stamped client traffic got most nodes there first
        assert notifies["skipped"] > notifies["sent"]
    else:  # polled nodes snapshot on notify only
        assert notifies["sent"] >= len(NODES)


def test_polling_completes_without_channel_state(store: Store) -> None:
    service, result, _ = run_service(store, "polling", count=5)
    rows = store.snapshot_rows(service.run)
    assert result.stored == 5 and all(r["complete"] for r in rows)
    assert all(r["in_flight"] == 0 for r in rows)


def test_validity_follows_t1_minus_t0(store: Store) -> None:
    slow = {3, 4, 7}  # acknowledged 20 s after t0 (fake times): longer than any real delay
    gateways = FakeGateways(delay=lambda k: 20.0 if k in slow else 0.0002)
    service, result, _ = run_service(store, "beaver", gateways=gateways, tau_min=10.0, count=8)
    rows = {r["snapshot_id"]: r for r in store.snapshot_rows(service.run)}
    assert {k for k, r in rows.items() if not r["valid"]} == slow
    assert all(r["complete"] for r in rows.values())
    assert all(r["update_us"] >= 20e6 for k, r in rows.items() if k in slow)
    assert all(r["update_us"] < 10e6 for k, r in rows.items() if k not in slow)
    timings = store.snapshot(service.run, 3).gateways
    assert [g.gateway for g in timings] == ["g1", "g2"]
    assert max(g.acked_at for g in timings) == pytest.approx(rows[3]["t1"])


def test_failed_gateway_makes_the_snapshot_invalid(store: Store) -> None:
    gateways = FakeGateways(failing=lambda k: {"g2"} if k == 2 else ())
    service, result, _ = run_service(store, "beaver", gateways=gateways, count=4)
    rows = {r["snapshot_id"]: r for r in store.snapshot_rows(service.run)}
    assert [k for k, r in rows.items() if not r["valid"]] == [2]
    assert rows[2]["t1"] is None and rows[2]["complete"]
    timings = {g.gateway: g for g in store.snapshot(service.run, 2).gateways}
    assert not timings["g1"].failed and timings["g1"].acked_at is not None
    assert timings["g2"].failed and timings["g2"].acked_at is None
    assert timings["g2"].sent_at is not None


def test_bad_reports_are_rejected_counted_and_the_run_goes_on(store: Store) -> None:
    def meddle(group: FakeInGroup, service: SnapshotService) -> None:
        h1, h2 = group.agents["h1"], group.agents["h2"]
        h1.send_raw(b"{not json\n")
        h1.send_raw(h1.line("counters", seq=1, rejected=0, delivered=0)[:-2] + b"\n")
        forged = json.loads(h1.line(
            "in_flight", seq=h1.seq + 1, sender="h3", first_id=1, last_id=1,
            message={"transfer": -1, "amount": 999}, received_at=0.0))
        h1.send_raw(json.dumps(forged | {"node": "h2"}).encode() + b"\n")
        h2.send_raw(h2.line(  # ids never started
            "local", seq=h2.next_seq(), first_id=40, last_id=40, taken_at=0.0,
            state={"balance": 0}, sent={}, received={}))
        h2.send_raw(h2.line("counters", seq=h2.next_seq(), rejected=0, delivered=1))
        h2.send_raw(h2.line("counters", seq=h2.seq, rejected=0, delivered=1))
        imposter = socket.create_connection(service.address, timeout=5)
        imposter.sendall(management.encode("hello", SECRET, node="h3", protocol="beaver",
                                           nonce="fresh"))
        imposter.makefile("rb").readline()  # the service hangs up on a second h3
        imposter.close()

    service, result, _ = run_service(store, "beaver", gateways=FakeGateways(), count=10,
                                     meddle=meddle)
    assert result.rejections == {"malformed": 2, "forged": 3, "sequence": 1}
    assert store.rejections(service.run) == result.rejections
    assert result.stalled is None
    rows = store.snapshot_rows(service.run)
    assert len(rows) == 10 and all(r["complete"] for r in rows)
    for row in rows:  # the forged in-flight message of 999 was not stored
        snapshot = store.snapshot(service.run, row["snapshot_id"])
        assert bank_total(snapshot) == INITIAL_BALANCE * len(NODES)


def test_a_report_rejected_as_forged_still_takes_its_number(store: Store) -> None:
    """It used to leave ``last_seq`` behind, so the agent's next valid report was dropped."""
    def meddle(group: FakeInGroup, service: SnapshotService) -> None:
        h1 = group.agents["h1"]
        h1.send_raw(h1.line(  # ids never started: forged
            "local", seq=h1.next_seq(), first_id=90, last_id=90, taken_at=0.0,
            state={"balance": 0}, sent={}, received={}))
        h1.send_raw(h1.line("counters", seq=h1.next_seq(), rejected=0, delivered=7))

    service, result, _ = run_service(store, "beaver", gateways=FakeGateways(), count=5,
                                     meddle=meddle)
    assert result.rejections == {"forged": 1}, "the next report is in sequence"
    assert service.node_counters["h1"]["delivered"] == 7
    assert result.stalled is None


@contextmanager
def connected(store: Store) -> Iterator[tuple[int, SnapshotService, FakeInGroup]]:
    """A beaver service with its three fake agents connected; all closed afterwards."""
    run = store.new_run("beaver", {}, None, "measured")
    group = FakeInGroup("beaver", None)
    service = SnapshotService("beaver", NODES, store, run, secret=SECRET,
                              gateways=FakeGateways())
    try:
        group.connect(service)
        yield run, service, group
    finally:
        service.close()
        for agent in group.agents.values():
            agent.close()


def test_chain_times_set_tau_min_and_counters_are_stored(store: Store) -> None:
    with connected(store) as (run, service, group):
        for agent, chain in zip(group.agents.values(), (None, 0.004, 0.003), strict=True):
            agent.send_raw(agent.line(
                "counters", seq=agent.next_seq(), rejected=1, delivered=10, chain_min=chain,
                chain_count=0 if chain is None else 2))
        assert service.wait_chain_time(timeout=10, chains=4) == pytest.approx(0.003)
        service.set_tau_min(0.003, "measured")
        assert service.core.tau_min == 0.003
    counters = store.node_counters(run)
    assert counters["h3"]["chain_min_us"] == pytest.approx(3000)
    assert counters["h1"]["chain_min_us"] is None and counters["h1"]["delivered"] == 10


def test_a_shorter_chain_lowers_a_measured_tau_min_and_revokes_validity(store: Store) -> None:
    slow = {2, 3}  # acknowledged 5 s after t0 (fake times): valid under 10 s, not under 1 s
    gateways = FakeGateways(delay=lambda k: 5.0 if k in slow else 0.0002)
    run = store.new_run("beaver", {"nodes": list(NODES)}, 10e6, "measured")
    group = FakeInGroup("beaver", gateways)
    service = SnapshotService("beaver", NODES, store, run, secret=SECRET, gateways=gateways,
                              tau_min=10.0)
    try:
        group.connect(service)
        service.follow_chains()
        with ThreadPoolExecutor(1) as pool:
            result = group.drive_until(pool.submit(service.take, 4, 400.0, 30))
        assert result.stored == 4
        assert all(r["valid"] for r in store.snapshot_rows(run)), "all valid under 10 s"
        agent = group.agents["h2"]
        agent.send_raw(agent.line("counters", seq=agent.next_seq(), rejected=0,
                                         delivered=1, chain_min=1.0, chain_count=1))
        deadline = time.monotonic() + 10
        while any(r["valid"] for r in store.snapshot_rows(run) if r["snapshot_id"] in slow):
            assert time.monotonic() < deadline, "the shorter chain did not revoke validity"
            time.sleep(0.01)
    finally:
        service.close()
        for agent in group.agents.values():
            agent.close()
    rows = {r["snapshot_id"]: r["valid"] for r in store.snapshot_rows(run)}
    assert rows == {1: 1, 2: 0, 3: 0, 4: 1}
    assert service.core.tau_min == 1.0
    assert store.run(run)["tau_min_us"] == pytest.approx(1e6)


def test_restore_sends_states_and_channel_state_and_waits_for_every_ack(store: Store) -> None:
    service, _, group = run_service(store, "lai-yang", count=3)
    snapshot = store.snapshot(service.run, 3)
    states = {s.node: s.state for s in snapshot.states}
    channel: dict[str, list] = {}
    for m in snapshot.in_flight:
        channel.setdefault(m.receiver, []).append({"sender": m.sender, "message": m.message})
    run = store.new_run("lai-yang", {"restore_of": 3}, None, "none")
    group = FakeInGroup("lai-yang", None)
    for agent in group.agents.values():
        agent.balance = -1
    service = SnapshotService("lai-yang", NODES, store, run, secret=SECRET)
    try:
        group.connect(service)
        service.restore(3, states, channel, timeout=10)
        assert service.restored == dict.fromkeys(NODES, 3)
    finally:
        service.close()
        for agent in group.agents.values():
            agent.close()
    assert sum(a.balance for a in group.agents.values()) == INITIAL_BALANCE * len(NODES)


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)


def test_only_holders_of_the_runs_secret_say_hello_or_report(store: Store) -> None:
    """After h2's agent died, nobody takes its place: not without the secret, not with
    another run's, not by replaying its recorded hello. Reports of a connected agent
    without the HMAC, or moved from another connection, are dropped as forged."""
    with connected(store) as (run, service, group):
        h1, h2 = group.agents["h1"], group.agents["h2"]
        h2.sock.shutdown(socket.SHUT_RDWR)  # as its process dying would
        wait_for(lambda: service.agents.missing() == ["h2"], "disconnect of h2")
        hellos = [
            management.encode("hello", node="h2", protocol="beaver", nonce="n1"),
            management.encode("hello", RunSecret(b"another run's secret"), node="h2",
                              protocol="beaver", nonce="n2"),
            h2.hello,
        ]
        for hello in hellos:
            with socket.create_connection(service.address, timeout=5) as imposter:
                imposter.sendall(hello + h2.line("counters", seq=1, rejected=0,
                                                 delivered=1_000_000))
                assert imposter.makefile("rb").readline() == b"", "the service hung up"
        assert service.agents.missing() == ["h2"]
        h1.send_raw(management.encode("counters", seq=1, rejected=0, delivered=999,
                                      session=h1.session))
        h1.send_raw(h2.line("counters", seq=1, rejected=0, delivered=999))
        wait_for(lambda: service.rejections.get("forged") == 5, "five forged messages")
        h1.send_raw(h1.line("counters", seq=1, rejected=0, delivered=7))
        wait_for(lambda: service.node_counters.get("h1", {}).get("delivered") == 7,
                 "h1's own report")
    assert store.node_counters(run)["h1"]["delivered"] == 7
    assert "h2" not in store.node_counters(run)


def test_closing_the_service_closes_a_connection_that_never_said_hello(store: Store) -> None:
    run = store.new_run("beaver", {}, None, "measured")
    service = SnapshotService("beaver", NODES, store, run, secret=SECRET,
                              gateways=FakeGateways())
    address = service.start()
    silent = socket.create_connection(address, timeout=5)
    try:
        # a malformed first line on a second connection: once it is counted, the service
        # has accepted the silent one before it (connections are accepted in order)
        with socket.create_connection(address, timeout=5) as garbage:
            garbage.sendall(b"not a hello\n")
            deadline = time.monotonic() + 5
            while not service.rejections and time.monotonic() < deadline:
                time.sleep(0.01)
        assert service.rejections, "the malformed line was counted"
        service.close()
        assert silent.recv(1) == b"", "the service closed the connection as it stopped"
    finally:
        silent.close()
