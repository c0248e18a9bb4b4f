"""The snapshot runtime over loopback, driven step by step, with a fake coordinator.

The node under test ("a") listens on 127.0.0.2; its in-group peer "b" is a
raw socket on 127.0.0.3 and an out-group host sits on 127.0.0.9. The wire code (the TOS
byte and the TTL's two lowest bits, as in the emulation) is really written and read on lo
(IP_TOS and IP_TTL / IP_RECVTOS and IP_RECVTTL).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from test_hosts_fakes import FakeCoordinator, Peer, wait_until

from beaver.ids import ipv4_space
from beaver.protocols import protocol
from beaver.records import LocalSnapshot
from hosts import link, wire
from hosts.runtime import Runtime
from hosts.services import Address, Send
from topologies import management
from topologies.secret import RunSecret

SPACE = ipv4_space()


class Echo:
    """A test service: records what it got, answers each message to its sender."""

    def __init__(self) -> None:
        self.delivered: list[Any] = []

    def capture(self) -> dict[str, Any]:
        return {"delivered": list(self.delivered)}

    def restore(self, state: Any) -> None:
        self.delivered = list(state["delivered"])

    def deliver(
        self, message: dict[str, Any], sender: str | None, source: Address, now: float
    ) -> list[Send]:
        self.delivered.append(message["n"])
        return [Send(sender or source, {"kind": "echo", "n": message["n"]})]

    def next_work(self) -> float | None:
        return None

    def work(self, now: float, reachable: frozenset[str]) -> list[Send]:
        return []


class Harness:
    """Node "a" under a runtime, peer "b", an out-group host and the coordinator."""

    def __init__(self, protocol_name: str):
        self.coordinator = FakeCoordinator()
        self.peer = Peer("127.0.0.3", ingroup=True)
        self.outsider = Peer("127.0.0.9")
        self.data = wire.open_udp(("127.0.0.2", 0))
        self.address = self.data.getsockname()
        peers = {"a": self.address, "b": self.peer.address}
        self.link = link.connect(self.coordinator.address, "a", protocol_name,
                                 RunSecret(b"a test run's secret"), timeout=2)
        self.service = Echo()
        node = protocol(protocol_name).node("a", self.service.capture, peers=peers, space=SPACE)
        self.runtime = Runtime(node, self.service, self.data, peers, self.link,
                               gateways_stamp=protocol(protocol_name).uses_gateways,
                               report_interval=60)
        wait_until(lambda: self.coordinator.of_type("hello"), "hello", self.pump)

    def pump(self) -> None:
        self.runtime.step(0.005)
        self.coordinator.poll()

    def wait(self, condition: Any, what: str) -> Any:
        return wait_until(condition, what, self.pump)

    def notify(self, snapshot_id: int) -> None:
        self.coordinator.send("notify", snapshot_id=snapshot_id)
        self.wait(lambda: self.runtime.node.current >= snapshot_id, f"node at {snapshot_id}")

    def close(self) -> None:
        self.runtime.close()
        self.link.close()
        self.data.close()
        self.peer.close()
        self.outsider.close()
        self.coordinator.close()


@pytest.fixture
def beaver():
    harness = Harness("beaver")
    yield harness
    harness.close()


def test_newer_id_snapshots_before_delivery_and_replies_carry_it(beaver):
    beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=SPACE.to_wire(0))
    beaver.peer.receive(beaver.pump, "echo of the first datagram")

    beaver.peer.send({"kind": "data", "n": 2}, beaver.address, code=SPACE.to_wire(3))
    echo, code = beaver.peer.receive(beaver.pump, "echo of the datagram stamped 3")

    local = beaver.wait(lambda: beaver.coordinator.of_type("local"), "a local snapshot")[0]
    assert (local["first_id"], local["last_id"]) == (1, 3)
    assert local["state"] == {"delivered": [1]}, "state captured before delivering datagram 2"
    assert local["sent"] == {"b": 1} and local["received"] == {"b": 1}
    assert beaver.service.delivered == [1, 2]
    assert echo["n"] == 2 and code == SPACE.to_wire(3)
    assert beaver.runtime.reachable == {"b"}, "a peer that sent data is up"


def test_an_id_whose_code_needs_the_ttl_bits_is_adopted_and_sent_back_whole(beaver):
    newest = SPACE.window  # the farthest id ahead a node adopts
    assert SPACE.to_wire(newest) >= 256, "the code does not fit in the TOS byte"
    beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=SPACE.to_wire(newest))
    echo, code = beaver.peer.receive(beaver.pump, f"echo of the datagram stamped {newest}")
    assert beaver.runtime.node.current == newest
    assert echo["n"] == 1 and code == SPACE.to_wire(newest)


def test_older_id_is_recorded_in_flight_and_delivered(beaver):
    beaver.notify(2)
    beaver.peer.send({"kind": "data", "n": 7}, beaver.address, code=SPACE.to_wire(1))
    beaver.peer.receive(beaver.pump, "echo of the late datagram")

    record = beaver.wait(lambda: beaver.coordinator.of_type("in_flight"), "in-flight report")[0]
    assert record["sender"] == "b"
    assert (record["first_id"], record["last_id"]) == (2, 2)
    assert record["message"]["n"] == 7
    assert beaver.service.delivered == [7]


def test_out_of_window_datagram_is_rejected_counted_and_run_goes_on(beaver, caplog):
    far = SPACE.to_wire(SPACE.window + 10)
    with caplog.at_level(logging.WARNING, logger="hosts.runtime"):
        beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=far)
        beaver.wait(lambda: beaver.runtime.counters.rejected == 1, "the rejection")
    assert [r for r in caplog.records if "rejected datagram" in r.getMessage()]
    assert beaver.service.delivered == [] and beaver.runtime.node.current == 0

    beaver.peer.send({"kind": "data", "n": 2}, beaver.address, code=SPACE.to_wire(1))
    beaver.peer.receive(beaver.pump, "echo after the rejection")
    assert beaver.service.delivered == [2]


def test_malformed_datagrams_are_logged_and_ignored(beaver, caplog):
    with caplog.at_level(logging.WARNING, logger="hosts.runtime"):
        for junk in (b"\xff not json", b"[1, 2]", b'{"n": 1}'):
            beaver.peer.send(junk, beaver.address, code=SPACE.to_wire(0))
        beaver.wait(lambda: beaver.runtime.counters.malformed == 3, "three malformed datagrams")
    assert len([r for r in caplog.records if "malformed datagram" in r.getMessage()]) == 3
    beaver.peer.send({"kind": "data", "n": 5}, beaver.address, code=SPACE.to_wire(0))
    beaver.peer.receive(beaver.pump, "echo after the junk")
    assert beaver.service.delivered == [5]


def test_out_group_datagram_is_answered_at_its_source_and_chain_time_measured(beaver):
    started = time.monotonic() - 0.05
    beaver.outsider.send({"kind": "data", "n": 3, "chain_started": started}, beaver.address,
                         code=SPACE.to_wire(0))
    echo, _code = beaver.outsider.receive(beaver.pump, "reply to the out-group host")
    assert echo["n"] == 3 and echo["sent_at"] >= started
    assert beaver.runtime.counters.chain_count == 1
    assert 0.05 <= beaver.runtime.counters.chain_min < 5


def test_notify_reports_a_local_snapshot_and_counters_follow(beaver):
    beaver.notify(1)
    local = beaver.wait(lambda: beaver.coordinator.of_type("local"), "a local snapshot")[0]
    assert (local["first_id"], local["last_id"], local["seq"]) == (1, 1, 1)
    beaver.runtime.report_counters()
    counters = beaver.wait(lambda: beaver.coordinator.of_type("counters"), "counters")[0]
    assert counters["seq"] == 2 and counters["delivered"] == 0


def test_restore_replaces_state_replays_in_flight_and_acknowledges(beaver):
    beaver.coordinator.send(
        "restore", snapshot_id=4, state={"delivered": [10, 11]},
        in_flight=[{"sender": "b", "message": {"kind": "data", "n": 12}}],
    )
    beaver.wait(lambda: beaver.coordinator.of_type("restored"), "restored acknowledgement")
    assert beaver.service.delivered == [10, 11, 12]
    echo, _ = beaver.peer.receive(beaver.pump, "answer to the replayed message")
    assert echo["n"] == 12


def test_restore_with_a_foreign_state_is_refused_and_the_run_goes_on(beaver, caplog):
    with caplog.at_level(logging.ERROR, logger="hosts.runtime"):
        beaver.coordinator.send("restore", snapshot_id=2, state={"balances": {}})
        beaver.wait(lambda: caplog.records, "the refusal")
    assert "ignored restore of snapshot 2" in caplog.records[0].getMessage()
    beaver.peer.send({"kind": "data", "n": 9}, beaver.address, code=SPACE.to_wire(0))
    beaver.peer.receive(beaver.pump, "echo after the refused restore")
    assert beaver.coordinator.of_type("restored") == [] and beaver.service.delivered == [9]


def test_stop_ends_the_run_with_final_counters(beaver):
    beaver.coordinator.send("stop")
    beaver.runtime.run()
    assert beaver.runtime.stopped
    beaver.wait(lambda: beaver.coordinator.of_type("counters"), "final counters")


def test_coordinator_hanging_up_ends_the_run(beaver):
    beaver.coordinator.hang_up()
    beaver.runtime.run()
    assert beaver.runtime.stopped


def test_a_joining_peer_becomes_reachable_and_is_answered(beaver):
    beaver.peer.send({"kind": "join"}, beaver.address)
    answer, code = beaver.peer.receive(beaver.pump, "the answer to join")
    assert answer["kind"] == "join" and answer["answer"] is True and code == 0
    assert beaver.runtime.reachable == {"b"}
    beaver.peer.send({"kind": "join", "answer": True}, beaver.address)
    beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=SPACE.to_wire(0))
    echo, _ = beaver.peer.receive(beaver.pump, "the echo (an answer is not answered)")
    assert echo["kind"] == "echo"
    assert beaver.runtime.counters.delivered == 1, "joins never reach the service"


@pytest.mark.parametrize(("protocol_name", "rejected"), [("lai-yang", 0), ("beaver", 1)])
def test_out_group_dscp_counts_only_where_gateways_stamp(protocol_name, rejected):
    """A stamp far behind the node: noise under Lai-Yang, out of window under Beaver."""
    harness = Harness(protocol_name)
    try:
        far = SPACE.window + 5
        harness.notify(far)
        harness.outsider.send({"kind": "data", "n": 1}, harness.address, code=SPACE.to_wire(0))
        harness.wait(lambda: harness.runtime.counters.delivered + harness.runtime.counters.rejected,
                     "the out-group datagram to be handled")
        assert harness.runtime.counters.rejected == rejected
        assert harness.service.delivered == ([1] if rejected == 0 else [])
    finally:
        harness.close()


def test_chandy_lamport_sends_markers_and_reports_when_channels_close():
    harness = Harness("chandy-lamport")
    try:
        harness.notify(1)
        marker, code = harness.peer.receive(harness.pump, "a marker to b")
        assert marker["kind"] == "marker" and marker["snapshot_id"] == 1 and code == 0
        assert harness.coordinator.of_type("local") == []

        harness.peer.send({"kind": "data", "n": 4}, harness.address)
        harness.wait(lambda: harness.coordinator.of_type("in_flight"), "channel state from b")
        harness.peer.send({"kind": "marker", "snapshot_id": 1}, harness.address)
        local = harness.wait(lambda: harness.coordinator.of_type("local"), "local snapshot")[0]
        assert local["state"] == {"delivered": []}
        assert harness.runtime.counters.markers_sent == 1
    finally:
        harness.close()


def test_reports_of_one_turn_leave_in_one_write_each_its_own_sealed_line() -> None:
    secret = RunSecret(b"a secret for batching reports")
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    management_link = link.ManagementLink(ours, secret, "session")
    try:
        for k in (1, 2, 3):
            management_link.send_local(LocalSnapshot("a", k, k, float(k), {"n": k}, {}, {}))
        with pytest.raises(BlockingIOError):
            theirs.recv(1 << 16)  # held until the runtime's turn ends
        management_link.flush()
        lines = theirs.recv(1 << 16).splitlines(keepends=True)
    finally:
        management_link.close()
        theirs.close()
    assert len(lines) == 3 and all(secret.authentic_line(line) for line in lines)
    assert [management.decode(line)["first_id"] for line in lines] == [1, 2, 3]
