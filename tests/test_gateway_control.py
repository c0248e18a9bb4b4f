"""The controller's JSON-lines control interface and its client, against a stand-in target."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.gateways.client import ControllerError, GatewayClient
from controller.gateways.control import MAX_REQUEST, ControlServer
from controller.gateways.decisions import GatewayController
from controller.gateways.peers import tcp_peer_uid
from topologies.addressing import DataCenterParams, build_plan
from topologies.secret import RunSecret

PLAN = build_plan(DataCenterParams(gateways=2))


class Target:
    """Plays the app: real decisions, acks arrive at once except from ``silent``."""

    def __init__(self) -> None:
        self.decisions = GatewayController(PLAN)
        for switch in PLAN.switches:
            self.decisions.on_connect(switch.name)
        self.silent: set[str] = set()
        self.steered: list[str | None] = []

    def status(self) -> dict[str, Any]:
        return {"ready": True, "switches": [], "connected": [], "ready_switches": [],
                "gateways": [g.name for g in PLAN.gateways]}

    def ids(self) -> dict[str, int]:
        return self.decisions.ids()

    def begin_set_id(self, snapshot_id: int,
                     timeout: float | None = None) -> Callable[[], dict[str, Any]]:
        update, _ = self.decisions.start_update(snapshot_id, now=1.0)
        for name in self.decisions.gateways:
            self.decisions.stamp_sent(name, now=1.5)
            if name not in self.silent:
                self.decisions.stamp_acked(name, now=2.0)
        self.decisions.expire(update, "no barrier reply before the timeout")
        return update.to_dict

    def roundtrip(self, gateway: str) -> dict[str, float]:
        if gateway not in self.decisions.gateways:
            raise KeyError(f"no connected gateway named {gateway!r}")
        return {"sent_at": 5.0, "acked_at": 5.25}

    def steer(self, gateway: str | None) -> None:
        if gateway is not None and gateway not in self.decisions.gateways:
            raise KeyError(f"no gateway named {gateway!r}")
        self.steered.append(gateway)


@pytest.fixture
def served() -> Iterator[tuple[Target, GatewayClient]]:
    target = Target()
    server = ControlServer(target, "127.0.0.1", 0)
    server.start()
    with GatewayClient(server.address[1], timeout=5) as client:
        yield target, client
    server.stop()


def test_set_id_reports_times_per_gateway(served: tuple[Target, GatewayClient]) -> None:
    target, client = served
    client.wait_ready(timeout=5)
    result = client.set_id(4)
    assert result.complete and result.failed == frozenset()
    assert (result.first_sent, result.last_acked) == (1.5, 2.0)
    assert client.ids() == dict.fromkeys(client.gateways(), 4)


def test_a_failed_gateway_is_reported_and_the_update_never_complete(
        served: tuple[Target, GatewayClient]) -> None:
    target, client = served
    target.silent.add(PLAN.gateways[1].name)
    result = client.set_id(1)
    assert not result.complete and result.last_acked is None
    assert result.failed == {PLAN.gateways[1].name}
    assert result.gateways[PLAN.gateways[1].name].failure == "no barrier reply before the timeout"


def test_roundtrip_is_the_time_between_flow_mod_and_barrier_reply(
        served: tuple[Target, GatewayClient]) -> None:
    _, client = served
    assert client.roundtrip(PLAN.gateways[0].name) == 0.25
    with pytest.raises(ControllerError, match="no connected gateway named 'x'"):
        client.roundtrip("x")


def test_bad_requests_get_one_clear_error(served: tuple[Target, GatewayClient]) -> None:
    target, client = served
    with pytest.raises(ControllerError, match="non-negative integer id"):
        client.request("set_id", id="seven")
    with pytest.raises(ControllerError, match="unknown op 'launch'"):
        client.request("launch")
    with pytest.raises(ControllerError, match="no gateway named 'gw9'"):
        client.steer("gw9")
    client.steer(None)
    assert target.steered == [None]


def test_unreachable_controller_is_a_clear_error() -> None:
    server = ControlServer(Target(), "127.0.0.1", 0)
    port = server.address[1]
    server.stop()
    with pytest.raises(ControllerError, match="cannot reach controller"):
        GatewayClient(port, timeout=1).status()


def test_with_the_runs_secret_only_signed_requests_are_answered(tmp_path, caplog) -> None:
    """A local user who can connect but cannot read the secret changes no gateway id."""
    secret = RunSecret.create(tmp_path)
    target = Target()
    server = ControlServer(target, "127.0.0.1", 0, secret)
    server.start()
    port = server.address[1]
    try:
        for stranger in (GatewayClient(port, timeout=5),
                         GatewayClient(port, timeout=5, secret=RunSecret(b"another run's key"))):
            with stranger, pytest.raises(ControllerError, match="refused"):
                stranger.set_id(7)
        assert set(target.ids().values()) == {0}, "a refused request changed nothing"
        assert "refused a control request" in caplog.text
        with GatewayClient(port, timeout=5, secret=RunSecret.load(secret.path)) as insider:
            assert insider.set_id(7).complete
        assert set(target.ids().values()) == {7}
    finally:
        server.stop()


class HeldTarget(Target):
    """Starts every update at once but settles update k only once ``release(k)`` was called."""

    def __init__(self) -> None:
        super().__init__()
        self.begun: list[tuple[int, float]] = []
        self.released: dict[int, threading.Event] = {}
        self.settled: list[int] = []

    def begin_set_id(self, snapshot_id: int,
                     timeout: float | None = None) -> Callable[[], dict[str, Any]]:
        self.begun.append((snapshot_id, time.monotonic()))
        gate = self.released.setdefault(snapshot_id, threading.Event())
        settle = super().begin_set_id(snapshot_id, timeout)

        def held() -> dict[str, Any]:
            assert gate.wait(5), f"update {snapshot_id} was never released"
            self.settled.append(snapshot_id)
            return settle()
        return held

    def release(self, snapshot_id: int) -> None:
        self.released.setdefault(snapshot_id, threading.Event()).set()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_pipelined_updates_all_start_before_the_first_is_answered() -> None:
    target = HeldTarget()
    server = ControlServer(target, "127.0.0.1", 0)
    server.start()
    try:
        with GatewayClient(server.address[1], timeout=5) as client:
            for k in (1, 2, 3):
                client.send_set_id(k)
            wait_until(lambda: len(target.begun) == 3, "three updates to start")
            assert [k for k, _ in target.begun] == [1, 2, 3]
            assert client.outstanding == 3
            with pytest.raises(RuntimeError, match="3 id updates are outstanding"):
                client.ids()
            target.release(2)
            target.release(3)
            target.release(1)
            assert [client.next_update().snapshot_id for _ in range(3)] == [1, 2, 3]
            assert client.outstanding == 0 and client.ids() == dict.fromkeys(client.gateways(), 3)
    finally:
        for k in (1, 2, 3):
            target.release(k)
        server.stop()


def test_updates_whose_client_left_are_still_settled() -> None:
    target = HeldTarget()
    server = ControlServer(target, "127.0.0.1", 0)
    server.start()
    try:
        client = GatewayClient(server.address[1], timeout=5)
        client.send_set_id(1)
        client.send_set_id(2)
        wait_until(lambda: len(target.begun) == 2, "two updates to start")
        client.close()
        target.release(1)
        target.release(2)
        wait_until(lambda: target.settled == [1, 2], "both updates to settle")
    finally:
        server.stop()


def test_the_socket_table_names_the_user_at_the_other_end(tmp_path) -> None:
    """Root's connections are root's (uid 0); a user's are the user's."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()
        with socket.create_connection(address) as client:
            accepted, peer = server.accept()
            with accepted:
                assert tcp_peer_uid(peer, address) == os.geteuid()
                assert client.getsockname() == peer
        assert tcp_peer_uid(("127.0.0.1", 1), address) is None
    table = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
             "   0: 0100007F:8A62 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000 "
             "65534        0 1 1 0 100 0 0 10 0\n")
    assert tcp_peer_uid(("127.0.0.1", 0x8A62), ("127.0.0.1", 0x1A0B), table) == 65534


def test_deep_huge_and_malformed_requests_are_refused_counted_and_the_server_goes_on() -> None:
    """Deep nesting raised RecursionError in the handler; a huge line was read whole."""
    server = ControlServer(Target(), "127.0.0.1", 0)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=5) as raw:
            replies = raw.makefile("rb")
            for junk in (b"[" * 5000, b"\xff\xfe", b"[1, 2]", b'{"op": "status"'):
                raw.sendall(junk + b"\n")
                assert b"bad request" in replies.readline()
            raw.sendall(b'"' + b"x" * (MAX_REQUEST + 10) + b'"\n')
            assert b"too large" in replies.readline()
            assert replies.readline() == b"", "the connection of an over-long line is closed"
        with GatewayClient(server.address[1], timeout=5) as client:
            status = client.status()
        assert status["rejected"] == {"too_deep": 1, "not_json": 2, "not_object": 1,
                                      "too_large": 1}
        assert server.rejected == status["rejected"]
    finally:
        server.stop()
