"""A relay's answers reach every backend of the VIP alike: ports chosen by Maglev, sent in turn."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter

import pytest
from test_hosts_fakes import free_udp_port, wait_until

from controller.gateways.maglev import FlowKey, MaglevTable
from hosts import wire
from hosts.relay import Relay, parse_ports
from testbed.relay_ports import UDP, spread_source_ports

BACKENDS = ["h1", "h2", "h3", "h4"]


def test_the_chosen_ports_give_each_backend_its_share_in_turn() -> None:
    ports = spread_source_ports("10.200.0.2", "10.100.0.1", 9000, BACKENDS, per_backend=3)
    table = MaglevTable(BACKENDS)
    owners = [table.lookup(FlowKey(UDP, "10.200.0.2", "10.100.0.1", port, 9000))
              for port in ports]
    assert len(set(ports)) == 12
    assert Counter(owners) == dict.fromkeys(BACKENDS, 3)
    assert owners[:4] == sorted(BACKENDS) and owners[4:8] == sorted(BACKENDS)
    one_flow = Counter(table.lookup(FlowKey(UDP, "10.200.0.2", "10.100.0.1", 9100, 9000))
                       for _ in ports)
    assert len(one_flow) == 1, "from one port, every answer goes to one backend"


def test_a_relay_answers_each_series_from_a_port_of_its_own_in_turn() -> None:
    bank_side = wire.open_udp(("127.0.0.71", 0))
    listening = wire.open_udp(("127.0.0.72", 0))
    ports = [free_udp_port("127.0.0.72") for _ in range(3)]
    senders = [wire.open_udp(("127.0.0.72", port)) for port in ports]
    relay = Relay(listening, bank_side.getsockname(), delay=0.0, senders=senders)
    listening_port = listening.getsockname()[1]
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    answered_from = []
    series = ["a.0>x", "b.0>x", "a.0>x", "c.0>x", "d.0>x", "b.0>x", "a.0>x", "e.0>x"]
    try:
        for n, one in enumerate([*series, None]):
            transfer = {} if one is None else {"transfer": f"{one}:{n + 1}"}
            bank_side.sendto(json.dumps({"kind": "credit", "amount": 1, **transfer}).encode(),
                             listening.getsockname())
            _, _, source = wait_until(lambda: wire.receive(bank_side), "the relayed datagram",
                                      lambda: None)
            answered_from.append(source[1])
    finally:
        relay.request_stop()
        thread.join(timeout=5)
        for sock in (bank_side, listening, *senders):
            sock.close()
    a, b, c = ports
    assert answered_from[:-1] == [a, b, a, c, a, b, a, b], "a series keeps its flow"
    assert answered_from[-1] == listening_port, "no transfer: from the listening port"


def test_source_ports_are_checked() -> None:
    assert parse_ports("") == [] and parse_ports("30001, 30002") == [30001, 30002]
    for bad in ("30001,30001", "0", "70000", "x"):
        with pytest.raises(ValueError):
            parse_ports(bad)
    done = subprocess.run([sys.executable, "-m", "hosts.relay", "--listen", "127.0.0.73:9100",
                           "--forward", "127.0.0.74:9000", "--source-ports", "1,1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--source-ports" in done.stderr
