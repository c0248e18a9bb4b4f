"""Every live component of an emulated run under hostile input, while it takes snapshots.

One bank run (Beaver) gets, while 30 snapshots are taken, at least
:data:`COUNT` malformed, truncated, huge, deeply nested, replayed and random
inputs (:mod:`tests.fuzzing`) at each component listening on the network:

* the agents, through the gateways (datagrams to the bank's VIP from an
  external host), and crafted IP packets with scapy (bad checksums, lying and
  truncated headers, fragments, every DSCP and ECN value, spoofed sources);
* the relay, from a host that is not its partner;
* a key-value client, from another external host;
* the coordinator (one TCP connection per input, and a line over its limit);
* the gateway controller's control interface (lines on a few connections);
* the controller's OpenFlow port (garbage and lying OpenFlow headers).

Each must stay alive, the run must store every snapshot complete, the store
must pass ``PRAGMA integrity_check``, and the oracle must find every accepted
snapshot consistent. One datagram of 1,200 ``[`` used to kill an agent.
The test prints what it sent and what each component counted.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import struct
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fuzzing import payloads

from controller.coordinator.store import Store
from hosts.agent import RELAY_PORT, SERVICE_PORT
from hosts.services.bank import BankConfig
from testbed.emulation import Emulation, EmulationSettings
from testbed.truth import judge_run
from topologies.management import MAX_LINE

pytestmark = pytest.mark.mininet

COUNT = 10_000
SNAPSHOTS = 30
ARRIVED = COUNT // 10
"""Datagrams that must reach each component: the userspace switches drop many of the
fragments of the huge and deeply nested ones, and a datagram missing one is lost (a third
arrived here)."""
PACE = ("--rate", "500", "--byte-rate", "1e6")
"""Each datagram sender's pace: three of them through one userspace switch process, which
also carries the gateways' updates (a flood would make those time out)."""


def line_of(data: bytes) -> bytes:
    """One input as one line of a line protocol (its own newlines would split it)."""
    return data.replace(b"\n", b" ") + b"\n"


def fuzz_coordinator(address: tuple[str, int], hello: bytes) -> Counter[str]:
    """One connection per input, each the connection's first line; then a line too long."""
    sent: Counter[str] = Counter()
    for kind, data in payloads(COUNT, seed=2, replay=hello):
        with socket.create_connection(address, timeout=10) as connection:
            connection.sendall(line_of(data))
        sent[kind] += 1
    with socket.create_connection(address, timeout=10) as connection:
        try:
            connection.sendall(b'{"type":"hello","node":"' + b"x" * (MAX_LINE + 10))
        except OSError:  # the coordinator hung up before reading it all
            pass
    sent["over the line limit"] += 1
    return sent


def fuzz_control(port: int) -> Counter[str]:
    """Lines on a few connections, each answered; a refused over-long line closes one."""
    sent: Counter[str] = Counter()
    inputs = payloads(COUNT, seed=3)
    while sum(sent.values()) < COUNT:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            replies = connection.makefile("rb")
            for kind, data in inputs:
                connection.sendall(line_of(data))
                sent[kind] += 1
                if not replies.readline():
                    break
            else:
                return sent
    return sent


def fuzz_openflow(port: int) -> Counter[str]:
    """Garbage and OpenFlow headers that lie (version, type, length), ten per connection,
    about 50 connections a second (the controller is one Python process)."""
    rng = random.Random(4)
    sent: Counter[str] = Counter()
    while sum(sent.values()) < COUNT:
        time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            for n in range(10):
                if n % 2:
                    header = struct.pack("!BBHI", rng.randrange(1, 7), rng.randrange(40),
                                         rng.choice([0, 7, 8, 9, 65535]), rng.randrange(2**32))
                    data, kind = header + rng.randbytes(rng.randrange(16)), "openflow header"
                else:
                    data, kind = rng.randbytes(rng.randrange(1, 200)), "random bytes"
                try:
                    connection.sendall(data)
                except OSError:  # the controller hung up on this connection: a new one
                    break
                sent[kind] += 1
    return sent


def in_thread(results: dict[str, Any], name: str, work: Any, *args: Any) -> threading.Thread:
    def run() -> None:
        results[name] = work(*args)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_every_component_survives_hostile_input_and_the_run_stays_right(
        mininet_machine: None, tmp_path: Path) -> None:
    settings = EmulationSettings()
    db = tmp_path / "fuzz.db"
    store = Store(db)
    run = store.new_run("beaver", {"service": "bank",
                                   "initial_total": BankConfig().initial_total(settings.ingroup)},
                        None, "pending")
    with store, Emulation(settings, store, run) as emulation:
        assert emulation.service is not None and emulation.service.address is not None
        datacenter = emulation.datacenter
        plan = emulation.plan
        tau = emulation.tau_min(None)
        vip = plan.services[0].vip
        client_host = next(x for x in plan.externals if x.role == "client")
        relay_host = next(x for x in plan.externals if x.role == "relay")
        client = emulation.launch(client_host.name, [
            "hosts.client", "--vip", f"{vip}:{SERVICE_PORT}", "--bind", client_host.ip,
            "--rate", "5", "--duration", "3600"])
        client_address = client.wait_line("client ready", 30).split()[2]
        senders = {
            "agents via the VIP": emulation.launch(client_host.name, [
                "tests.fuzzing", "udp", f"{vip}:{SERVICE_PORT}", "--count", str(COUNT), *PACE]),
            "agents, crafted packets": emulation.launch(client_host.name, [
                "tests.fuzzing", "packets", f"{vip}:{SERVICE_PORT}",
                "--spoof", f"{plan.hosts[0].dip},{vip},{relay_host.ip}"]),
            "relay": emulation.launch(client_host.name, [
                "tests.fuzzing", "udp", f"{relay_host.ip}:{RELAY_PORT}", "--count", str(COUNT),
                *PACE]),
            "client": emulation.launch(relay_host.name, [
                "tests.fuzzing", "udp", client_address, "--count", str(COUNT), *PACE]),
        }
        sent: dict[str, Any] = {}
        hello = json.dumps({"type": "hello", "node": plan.hosts[0].name,
                            "protocol": "beaver"}).encode()
        threads = [
            in_thread(sent, "coordinator", fuzz_coordinator, emulation.service.address, hello),
            in_thread(sent, "control interface", fuzz_control, datacenter.control_port),
            in_thread(sent, "OpenFlow port", fuzz_openflow, datacenter.controller_port),
        ]
        result = emulation.service.take(SNAPSHOTS, rate=1.0, timeout=SNAPSHOTS + 120)
        for thread in threads:
            thread.join(timeout=300)
        for name, sender in senders.items():
            sent[name] = json.loads(sender.wait_line("sent", 300).removeprefix("sent"))

        alive = {process.name: process.popen.poll() is None
                 for process in emulation.agents + emulation.relays + [client]}
        assert datacenter.controller_process is not None
        alive["controller"] = datacenter.controller_process.poll() is None
        status = datacenter.controller.status()
        coordinator_rejections = dict(emulation.service.rejections)
        failures = emulation.failures
        emulation.stop_hosts()
        client_summary = json.loads(client.wait_line("summary", 10).removeprefix("summary"))
        verdicts = judge_run(emulation.truth_logs(), store, run)
        counted = store.component_counters(run)
        rows = store.snapshot_rows(run)
        failed_updates = sum(g.acked_at is None for r in rows
                             for g in store.snapshot(run, r["snapshot_id"]).gateways)

    print(f"\ntau_min {tau.seconds * 1e6:.0f} us; inputs sent per component:")
    for name, kinds in sent.items():
        print(f"  {name}: {sum(kinds.values())} {dict(kinds)}")
    print(f"coordinator rejected: {coordinator_rejections}")
    print(f"control interface rejected: {status['rejected']}")
    print(f"client ignored: {client_summary['malformed_by']}")
    for component, counters in sorted(counted.items()):
        ignored = {k: v for k, v in counters.items() if "_by." in k and v}
        print(f"  {component}: {ignored}")
    accepted = [r["snapshot_id"] for r in rows if r["valid"] and r["complete"]]
    print(f"snapshots: {len(rows)} stored, {sum(r['complete'] for r in rows)} complete, "
          f"{len(accepted)} accepted; gateway updates failed: {failed_updates}; "
          f"t1 - t0 (us): {[round(r['update_us'] or -1) for r in rows]}")

    assert all(alive.values()) and failures == [], (alive, failures)
    assert status["ready"]
    assert result.stalled is None and result.stored == SNAPSHOTS
    assert len(rows) == SNAPSHOTS and all(r["complete"] for r in rows)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    by_id = {v.snapshot_id: v for v in verdicts}
    assert accepted and all(by_id[k].consistent and by_id[k].channel_exact for k in accepted)
    for name in ("coordinator", "control interface", "OpenFlow port", "agents via the VIP",
                 "relay", "client"):
        assert sum(sent[name].values()) >= COUNT, name
    assert coordinator_rejections.get("malformed", 0) >= COUNT // 2
    assert sum(status["rejected"].values()) >= COUNT // 2
    assert counted["controller control interface"] == {
        f"malformed_by.{reason}": n for reason, n in status["rejected"].items()}, \
        "the control interface's refusals are in the run's counters (and its summary)"
    relay = next(c for name, c in counted.items() if name.startswith("hosts.relay"))
    assert relay["malformed_by.not_from_partner"] >= ARRIVED, "they arrived and were refused"
    assert client_summary["unexpected"] >= ARRIVED
    ignored_by_agents = sum(v for name, c in counted.items() if name.startswith("hosts.agent")
                            for k, v in c.items() if "_by." in k)
    assert ignored_by_agents >= ARRIVED
    assert any(c.get("service_ignored_by.forged_credit") for c in counted.values()), \
        "crafted credits that crossed a gateway were refused as forged"
