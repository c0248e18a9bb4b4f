"""A gateway's datapath sync: the unixctl commands each mode sends, and failures reported.

A small JSON-RPC server on a unix socket stands in for the switch daemon's
unixctl socket; it records each method and answers it (or refuses one). Its
``dpctl/dump-flows`` answers come from a list of dumps, the last one repeated:
the datapath's flows as the revalidator rewrites them.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from pathlib import Path

import pytest

from controller.gateways import datapath
from controller.gateways.datapath import (
    SYNC_MODES,
    DatapathApplier,
    appliers_by_gateway,
    stale_flows,
)
from controller.gateways.stamping import MARK_SPACE, stamp_mark


class FakeUnixctl:
    """Answers every request on ``path``; methods in ``refuse`` get an error reply."""

    def __init__(self, path: Path, refuse: frozenset[str] = frozenset(),
                 dumps: tuple[str, ...] = ("",)) -> None:
        self.methods: list[str] = []
        self.refuse = refuse
        self.dumps = list(dumps)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        decoder, pending = json.JSONDecoder(), ""
        with connection:
            while chunk := connection.recv(65536):
                pending += chunk.decode()
                try:
                    request, end = decoder.raw_decode(pending)
                except ValueError:
                    continue  # the rest of the request is still on its way
                pending = pending[end:]
                self.methods.append(request["method"])
                refused = request["method"] in self.refuse
                result = ""
                if request["method"] == "dpctl/dump-flows":
                    result = self.dumps.pop(0) if len(self.dumps) > 1 else self.dumps[0]
                reply = {"id": request["id"], "result": None if refused else result,
                         "error": "refused\n" if refused else None}
                connection.sendall(json.dumps(reply).encode() + b"\n")


def flow(mark: int | None) -> str:
    """One line of ``dpctl/dump-flows``: a flow of the stamp path marking ``mark`` (None: a
    flow that sets no mark, such as in-group traffic that keeps its id)."""
    marking = "" if mark is None else f"set(skb_mark({mark:#x})),"
    return ("skb_mark(0),recirc_id(0),in_port(1),eth_type(0x0800),ipv4(src=10.200.0.1,"
            "dst=10.100.0.1,proto=17,tos=0/0xfc,frag=no), packets:9, bytes:450, used:0.001s, "
            f"actions:set(ipv4(dst=10.1.1.1,tos=0x8/0xfc)),{marking}2")


def sync_once(tmp_path: Path, mode: str, refuse: frozenset[str] = frozenset(),
              dumps: tuple[str, ...] = ("",), snapshot_id: int = 7
              ) -> tuple[str | None, list[str]]:
    path = tmp_path / "vswitchd.ctl"
    daemon = FakeUnixctl(path, refuse, dumps)
    applier = DatapathApplier("gw1", path, mode)
    results: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    applier.start()
    applier.after_sync(snapshot_id, results.put)
    failure = results.get(timeout=10)
    applier.stop()
    return failure, daemon.methods


def test_purge_empties_the_flow_cache(tmp_path: Path) -> None:
    failure, sent = sync_once(tmp_path, "purge")
    assert failure is None
    assert sent == ["revalidator/purge"]


def test_watch_reads_the_flows_until_every_marking_flow_has_the_new_mark(
        tmp_path: Path) -> None:
    stale = flow(stamp_mark(6))
    fresh = flow(stamp_mark(7))
    dumps = (stale + "\n" + flow(None), stale, fresh + "\n" + flow(None))
    failure, sent = sync_once(tmp_path, "watch", dumps=dumps, snapshot_id=7)
    assert failure is None
    assert sent == ["dpctl/dump-flows"] * 3


def test_watch_takes_a_later_mark_and_no_flow_as_holding(tmp_path: Path) -> None:
    for dumps in ((flow(stamp_mark(9)),), ("",), (flow(None),)):
        failure, sent = sync_once(tmp_path, "watch", dumps=dumps, snapshot_id=7)
        assert (failure, sent) == (None, ["dpctl/dump-flows"])
        (tmp_path / "vswitchd.ctl").unlink()


def test_watch_purges_flows_that_do_not_follow_in_time(tmp_path: Path) -> None:
    failure, sent = sync_once(tmp_path, "watch", dumps=(flow(stamp_mark(6)),), snapshot_id=7)
    assert failure is None
    assert sent[-1] == "revalidator/purge" and set(sent[:-1]) == {"dpctl/dump-flows"}


def test_marks_compare_as_serial_numbers_across_the_wrap() -> None:
    wrap = MARK_SPACE.codes  # the first id whose mark wraps around to 1
    assert stamp_mark(0) != 0 and stamp_mark(wrap - 1) == wrap and stamp_mark(wrap) == 1
    assert stale_flows(flow(stamp_mark(wrap)), wrap - 1) == []
    assert stale_flows(flow(stamp_mark(wrap - 1)), wrap) != []
    assert stale_flows(flow(stamp_mark(wrap)), wrap - 2) == []


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_a_refused_command_fails_the_update(tmp_path: Path, mode: str) -> None:
    refused = frozenset({"revalidator/purge", "dpctl/dump-flows"})
    failure, _ = sync_once(tmp_path, mode, refused)
    assert failure is not None and "refused" in failure


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync mode"):
        DatapathApplier("gw1", tmp_path / "vswitchd.ctl", "flush")
    assert set(SYNC_MODES) == {"purge", "watch"}


def test_gateways_on_one_daemon_share_its_applier_and_its_purge(tmp_path: Path) -> None:
    """Gateways of a shared daemon get one applier; barriers that came back while it was
    busy are all served by one purge (which empties every gateway's flows of that daemon)."""
    shared, own = tmp_path / "shared.ctl", tmp_path / "own.ctl"
    daemon = FakeUnixctl(shared)
    FakeUnixctl(own)
    appliers = appliers_by_gateway({"gw1": shared, "gw2": shared, "gw3": own})
    assert appliers["gw1"] is appliers["gw2"] is not appliers["gw3"]
    results: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    applier = appliers["gw1"]
    applier.after_sync(7, results.put)  # queued before the thread runs: served together
    applier.after_sync(7, results.put)
    applier.start()
    assert [results.get(timeout=10), results.get(timeout=10)] == [None, None]
    applier.stop()
    assert daemon.methods == ["revalidator/purge"]


def test_watching_needs_a_daemon_per_gateway(tmp_path: Path) -> None:
    shared = tmp_path / "shared.ctl"
    with pytest.raises(ValueError, match="daemon per gateway"):
        appliers_by_gateway({"gw1": shared, "gw2": shared}, "watch")
    own = appliers_by_gateway({"gw1": shared, "gw2": tmp_path / "other.ctl"}, "watch")
    assert own["gw1"] is not own["gw2"]


def test_a_shared_daemon_syncs_once_after_the_last_barrier_of_an_update(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts of one update on a shared daemon get one purge, after the last of their
    barriers came back: a part whose barrier came back first waits for the others out
    then, not for barriers sent later."""
    monkeypatch.setattr(datapath, "SIBLING_WAIT", 60.0)  # only the barriers end the wait
    path = tmp_path / "shared.ctl"
    daemon = FakeUnixctl(path)
    applier = appliers_by_gateway({"gw1": path, "gw2": path})["gw1"]
    applier.start()
    results: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()
    first, second = applier.expect("gw1"), applier.expect("gw2")
    applier.after_sync(7, lambda failure: results.put(("gw1", failure)), first)
    later = applier.expect("gw1")  # the next update's barrier: not waited for
    with pytest.raises(queue.Empty):
        results.get(timeout=0.2)
    assert daemon.methods == []
    applier.after_sync(7, lambda failure: results.put(("gw2", failure)), second)
    assert sorted([results.get(timeout=10), results.get(timeout=10)]) == [
        ("gw1", None), ("gw2", None)]
    applier.after_sync(8, lambda failure: results.put(("gw1", failure)), later)
    assert results.get(timeout=10) == ("gw1", None)
    applier.stop()
    assert daemon.methods == ["revalidator/purge"] * 2


def test_a_barrier_that_never_comes_back_delays_the_sync_only_so_long(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A part whose sibling's barrier is lost is synced after ``SIBLING_WAIT``; later
    syncs wait for that barrier no more."""
    path = tmp_path / "shared.ctl"
    daemon = FakeUnixctl(path)
    applier = appliers_by_gateway({"gw1": path, "gw2": path})["gw1"]
    applier.start()
    results: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    applier.expect("gw1")  # lost
    asked = time.monotonic()
    applier.after_sync(7, results.put, applier.expect("gw2"))
    assert results.get(timeout=10) is None
    assert time.monotonic() - asked >= datapath.SIBLING_WAIT
    monkeypatch.setattr(datapath, "SIBLING_WAIT", 60.0)
    applier.after_sync(8, results.put, applier.expect("gw2"))  # waits for gw1's no more
    assert results.get(timeout=10) is None
    applier.stop()
    assert daemon.methods == ["revalidator/purge"] * 2


def test_a_gateway_seen_gone_no_longer_delays_the_sync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datapath, "SIBLING_WAIT", 60.0)
    path = tmp_path / "shared.ctl"
    daemon = FakeUnixctl(path)
    applier = appliers_by_gateway({"gw1": path, "gw2": path})["gw1"]
    applier.start()
    results: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    applier.expect("gw1")
    applier.after_sync(8, results.put, applier.expect("gw2"))
    with pytest.raises(queue.Empty):
        results.get(timeout=0.2)
    applier.withdraw("gw1")  # gw1's connection is gone: its barriers will never come back
    assert results.get(timeout=10) is None
    applier.stop()
    assert daemon.methods == ["revalidator/purge"]
