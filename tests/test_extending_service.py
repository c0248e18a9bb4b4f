"""docs/extending.md's worked service: the tally, added through the registry and snapshotted.

The tally module (``docs/examples/tally.py``) is registered the way the docs
say, then three in-group nodes run it in this process: each node is the
host runtime (:class:`hosts.runtime.Runtime`) over a UDP socket on its own
loopback address, built by the registry's kind, reporting to the real
coordinator service over TCP. Every stored snapshot must keep the tally's
invariant; ``beaver show`` and ``beaver restore --offline`` then use the
tally's own view and check through the same registry.
"""

from __future__ import annotations

import importlib.util
import json
import random
import threading
import time
from pathlib import Path

import pytest
from test_hosts_fakes import free_udp_port

from beaver.ids import IdSpace
from beaver.protocols import protocol
from cli.main import main
from controller.coordinator.service import SnapshotService
from controller.coordinator.store import Store
from hosts import link, wire
from hosts.runtime import Runtime
from hosts.services.kind import NodeSetup
from hosts.services.registry import SERVICES
from topologies.secret import RunSecret

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "tally.py"
NODES = {"a": "127.0.0.41", "b": "127.0.0.42", "c": "127.0.0.43"}


def load_example():
    spec = importlib.util.spec_from_file_location("tally_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tally(monkeypatch):
    """The tally registered as docs/extending.md says: one entry in SERVICES."""
    kind = load_example().TallyService()
    monkeypatch.setitem(SERVICES, kind.name, kind)
    return kind


def run_tally(store: Store, run: int, snapshots: int) -> None:
    """Three tally nodes under the coordinator service, ``snapshots`` snapshots taken."""
    port = free_udp_port(*NODES.values())
    peers = {name: (ip, port) for name, ip in NODES.items()}
    secret = RunSecret(b"the tally run's secret")
    service = SnapshotService("beaver", NODES, store, run, secret=secret)
    threads, runtimes, closing = [], [], []
    try:
        address = service.start()
        for name in NODES:
            data = wire.open_udp(peers[name])
            closing.append(data)
            management = link.connect(address, name, "beaver", secret, timeout=5)
            closing.append(management)
            app = SERVICES["tally"].build(NodeSetup(
                name, peers=tuple(peers), shards=tuple(peers), relays=(), rate=100.0,
                start=time.monotonic(), rng=random.Random(name)))
            node = protocol("beaver").node(name, app.capture, peers=peers, space=IdSpace())
            runtime = Runtime(node, app, data, peers, management, report_interval=0.2)
            runtimes.append(runtime)
            threads.append(threading.Thread(target=runtime.run, daemon=True))
            threads[-1].start()
        service.wait_agents(timeout=10)
        deadline = time.monotonic() + 10
        while not all(runtime.counters.sent for runtime in runtimes):
            assert time.monotonic() < deadline, "the tally nodes sent nothing within 10 s"
            time.sleep(0.01)
        result = service.take(snapshots, 20.0, timeout=30)
        assert result.stalled is None and result.stored == snapshots
    finally:
        service.close()  # tells every runtime to stop
        for runtime, thread in zip(runtimes, threads, strict=True):
            thread.join(timeout=10)
            assert not thread.is_alive(), "a tally node did not stop"
            runtime.close()
        for handle in closing:
            handle.close()


def test_a_registered_toy_service_is_snapshotted_consistently(tally, tmp_path: Path,
                                                               capsys) -> None:
    db = tmp_path / "tally.db"
    with Store(db) as store:
        run = store.new_run("beaver", {"service": "tally", "gateways": 0}, None, "none")
        run_tally(store, run, snapshots=8)
        rows = store.snapshot_rows(run)
        assert len(rows) == 8 and all(r["complete"] and r["valid"] for r in rows)
        sent = 0
        for row in rows:
            snapshot = store.snapshot(run, row["snapshot_id"])
            states = {s.node: s.state for s in snapshot.states}
            assert set(states) == set(NODES)
            assert tally.invariant(states, snapshot.in_flight, {}) == [], row
            sent = sum(state["sent"] for state in states.values())
        assert sent > 0, "no add was sent before the last snapshot: the test proves nothing"

    assert main(["show", "8", "--db", str(db), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tally"]["violations"] == [] and set(document["tally"]["nodes"]) == set(NODES)
    assert main(["show", "8", "--db", str(db)]) == 0
    assert "  a: sent " in capsys.readouterr().out
    assert main(["restore", "8", "--db", str(db), "--offline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["ok"] and report["service"] == "tally" and report["mismatched_nodes"] == []


def test_the_toy_invariant_catches_a_lost_message(tally) -> None:
    states = {"a": {"sent": 2, "received": 0}, "b": {"sent": 0, "received": 1}}
    assert tally.invariant(states, [], {}) == ["1 adds received + 0 in flight, but 2 sent"]


def test_the_command_line_takes_the_registered_service(tally, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "tally" in help_text and "--tally-rate" in help_text
    assert main(["run", "--service", "tally", "--tally-rate", "0"]) == 2
    assert "--tally-rate must be a positive number" in capsys.readouterr().err
