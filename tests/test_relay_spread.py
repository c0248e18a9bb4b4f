"""A relay answers each node's transfers on a flow of its own, which lands at another node."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from test_hosts_fakes import free_udp_port, wait_until

from controller.gateways.maglev import FlowKey, MaglevTable
from hosts import wire
from hosts.relay import Relay, parse_answer_ports
from testbed.relay_ports import UDP, answer_ports

BACKENDS = ["h1", "h2", "h3", "h4"]


def test_each_node_is_answered_on_a_flow_that_reaches_the_next_node() -> None:
    ports = answer_ports("10.200.0.2", "10.100.0.1", 9000, BACKENDS)
    table = MaglevTable(BACKENDS)
    lands = {node: table.lookup(FlowKey(UDP, "10.200.0.2", "10.100.0.1", port, 9000))
             for node, port in ports.items()}
    assert lands == {"h1": "h2", "h2": "h3", "h3": "h4", "h4": "h1"}
    one_flow = {table.lookup(FlowKey(UDP, "10.200.0.2", "10.100.0.1", 9100, 9000))
                for _ in BACKENDS}
    assert len(one_flow) == 1, "from one port, every answer goes to one backend"
    assert answer_ports("10.200.0.2", "10.100.0.1", 9000, ["h1"]).keys() == {"h1"}


def test_a_relay_answers_each_node_from_its_port() -> None:
    bank_side = wire.open_udp(("127.0.0.71", 0))
    listening = wire.open_udp(("127.0.0.72", 0))
    ports = {node: free_udp_port("127.0.0.72") for node in ("a", "b")}
    answer_from = {node: wire.open_udp(("127.0.0.72", port)) for node, port in ports.items()}
    relay = Relay(listening, bank_side.getsockname(), delay=0.0, answer_from=answer_from)
    listening_port = listening.getsockname()[1]
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    answered_from = []
    transfers = ["a.0>x:1", "b.0>x:1", "a.1>x:1", "c.0>x:1", None, "b.0>x:2"]
    try:
        for transfer in transfers:
            fields = {} if transfer is None else {"transfer": transfer}
            bank_side.sendto(json.dumps({"kind": "credit", "amount": 1, **fields}).encode(),
                             listening.getsockname())
            _, _, source = wait_until(lambda: wire.receive(bank_side), "the relayed datagram",
                                      lambda: None)
            answered_from.append(source[1])
    finally:
        relay.request_stop()
        thread.join(timeout=5)
        for sock in (bank_side, listening, *answer_from.values()):
            sock.close()
    a, b = ports["a"], ports["b"]
    assert answered_from == [a, b, a, listening_port, listening_port, b], (
        "a node's transfers keep its flow; a node not named, or no transfer: the listening "
        "port")


def test_answer_ports_are_checked() -> None:
    assert parse_answer_ports("") == {}
    assert parse_answer_ports("h1=30001, h2=30002") == {"h1": 30001, "h2": 30002}
    for bad in ("h1=30001,h2=30001", "h1=0", "h1=70000", "h1", "=5", "h1=1,h1=2"):
        with pytest.raises(ValueError):
            parse_answer_ports(bad)
    done = subprocess.run([sys.executable, "-m", "hosts.relay", "--listen", "127.0.0.73:9100",
                           "--forward", "127.0.0.74:9000", "--answer-ports", "h1=1,h2=1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--answer-ports" in done.stderr
