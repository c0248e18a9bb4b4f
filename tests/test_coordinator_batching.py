"""The coordinator service's work per turn of its loop, with fake agents and gateways.

What one wake-up of the loop brought is handled together: the snapshots that
finished in it are stored in one transaction, the notifications due in it
leave once per node (the newest id), and the gateways' answers are read by
one thread and taken in batches. None of it may lose a snapshot, a report or
an answer: a run killed mid-way leaves every snapshot it stored whole.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_coordinator_service import (
    INITIAL_BALANCE,
    NODES,
    FakeGateways,
    bank_total,
    run_service,
)
from test_store import killed_after

from controller.coordinator.notify_queue import NotifyQueue
from controller.coordinator.store import Store, open_existing


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "results" / "beaver.db") as db:
        yield db


class BreakingGateways(FakeGateways):
    """Fake gateways whose connection breaks when the answer to ``breaks_at`` is due."""

    def __init__(self, breaks_at: int, **kwargs):
        super().__init__(**kwargs)
        self.breaks_at = breaks_at
        self.readers: list[threading.Thread] = []
        """The thread of every answer read (or broken), in order."""

    def next_update(self):
        self.readers.append(threading.current_thread())
        if self.sent[0][0] == self.breaks_at:
            self.sent.clear()  # a broken connection's answers never come
            raise ConnectionError("controller hung up")
        return super().next_update()


def test_a_broken_gateway_connection_fails_its_update_and_later_ones_are_read_again(
    store: Store,
) -> None:
    gateways = BreakingGateways(breaks_at=5)
    service, result, _ = run_service(store, "beaver", gateways=gateways, count=12)
    assert result.stalled is None and result.stored == 12
    assert gateways.order == list(range(1, 13))
    rows = {r["snapshot_id"]: r for r in store.snapshot_rows(service.run)}
    assert [k for k, r in rows.items() if not r["valid"]] == [5]
    assert all(r["complete"] for r in rows.values())
    timings = store.snapshot(service.run, 5).gateways
    assert [(g.gateway, g.failed, g.acked_at) for g in timings] == [("g1", True, None),
                                                                     ("g2", True, None)]
    before, after = gateways.readers[:5], gateways.readers[5:]
    assert len(set(before)) == 1, "one thread reads the answers while the connection holds"
    assert len(set(after)) == 1 and set(after) != set(before), "a new one after the break"


def test_notifications_due_together_leave_once_per_node_and_every_node_reports(
    store: Store,
) -> None:
    # Polled nodes snapshot only when told: a node told about id k covers every id up to k.
    service, result, _ = run_service(store, "polling", count=48, rate=1e5)
    assert result.stalled is None and result.stored == 48
    for row in store.snapshot_rows(service.run):
        assert row["complete"]
        snapshot = store.snapshot(service.run, row["snapshot_id"])
        assert [s.node for s in snapshot.states] == list(NODES)
    notifies = service.agents.notifies
    assert notifies["sent"] + notifies["skipped"] == 48 * len(NODES)
    assert notifies["sent"] < 48 * len(NODES) / 2, "a burst's notifications were coalesced"


KILLED_WRITER = textwrap.dedent("""
    from concurrent.futures import ThreadPoolExecutor
    from test_coordinator_service import NODES, SECRET, FakeGateways, FakeInGroup
    from controller.coordinator.service import SnapshotService
    from controller.coordinator.store import Store

    store = Store({path!r})
    run = store.new_run("beaver", {{}}, 10e6, "given")
    group = FakeInGroup("beaver", FakeGateways(answer_after=0.001))
    service = SnapshotService("beaver", NODES, store, run, secret=SECRET,
                              gateways=group.gateways, tau_min=10.0, update_window=8)
    group.connect(service)
    shown = 0

    def progress(started, stored):
        global shown
        if stored > shown:
            shown = stored
            print(stored, flush=True)

    with ThreadPoolExecutor(1) as pool:
        group.drive_until(pool.submit(service.take, 100_000, 2000.0, 300, progress))
""")


def test_a_run_killed_mid_way_leaves_every_stored_snapshot_whole(tmp_path: Path) -> None:
    path = tmp_path / "beaver.db"
    acknowledged = killed_after(KILLED_WRITER.format(path=str(path)), 100)
    with open_existing(path) as store:
        rows = store.snapshot_rows(1)
        assert len(rows) >= acknowledged
        for row in rows:
            assert row["complete"] and row["valid"]
            snapshot = store.snapshot(1, row["snapshot_id"])
            assert [s.node for s in snapshot.states] == list(NODES)
            assert [g.gateway for g in snapshot.gateways] == ["g1", "g2"]
            assert bank_total(snapshot) == INITIAL_BALANCE * len(NODES)


def test_a_notification_made_useless_before_its_time_is_dropped_then(store: Store) -> None:
    # Under Beaver stamped traffic reaches nodes before most of a long spread is over: once
    # a node reported a snapshot, its notification waiting for its point of the spread is
    # dropped at once, so none is left waiting when the last snapshot is stored.
    service, result, _ = run_service(store, "beaver", gateways=FakeGateways(), count=20,
                                     rate=200.0, notify_spread=2.0)
    assert result.stalled is None and result.stored == 20
    notifies = service.agents.notifies
    assert notifies["sent"] + notifies["skipped"] == 20 * len(NODES)


def test_a_node_keeps_only_the_waiting_notifications_no_newer_one_overtakes() -> None:
    async def scenario() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        sent: list[int] = []
        dropped: list[int] = []
        all_sent = asyncio.Event()

        def due(snapshot_id: int) -> None:
            sent.append(snapshot_id)
            if len(sent) == 3:
                all_sent.set()

        queue = NotifyQueue(loop, due, dropped.append)
        now = loop.time()
        queue.add(1, now + 0.03)
        queue.add(2, now + 0.01)  # goes before 1, which it covers: 1 is dropped
        queue.add(3, now + 0.02)
        queue.add(3, now + 0.005)  # waiting already
        queue.add(5, now + 0.05)
        queue.add(4, now + 0.045)  # older than 5 but due before it: kept
        queue.add(1, now + 0.06)  # 2 covers it and goes first
        queue.drop_through(lambda k: k <= 2)  # the node reported 2
        assert len(queue) == 3
        await asyncio.wait_for(all_sent.wait(), 5)
        return sent, sum(dropped)

    sent, dropped = asyncio.run(scenario())
    assert sent == [3, 4, 5]
    assert dropped == 4
