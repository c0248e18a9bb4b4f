"""Snapshots of a simulated world, and each node's state read as its history.

In the simulator an in-group node records, as its state, its position in its
own event sequence (:class:`simulator.world.NodeState`): the local snapshot
holds everything the node sent and received before it. A service whose state
is a function of what it received and sent (a request log, a lock table) is
therefore fully described by that prefix, and a use case replays it. Which
prefix each node contributes is decided by the protocol core alone: the
world hands the core's assembled snapshots to :func:`observe` as they
complete.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from beaver.snapshot_status import GlobalSnapshot
from oracle import EventLog, Verdict, judge
from simulator import Run, World, WorldConfig


@dataclass(frozen=True)
class Traffic:
    """Who sent and who received every message of a run (from its event log)."""

    sender: dict[int, str]
    receiver: dict[int, str]

    @classmethod
    def of(cls, log: EventLog) -> Traffic:
        sender, receiver = {}, {}
        for process, events in log.events.items():
            for event in events:
                if event >= 0:
                    sender[event] = process
                else:
                    receiver[~event] = process
        return cls(sender, receiver)


@dataclass
class Observed:
    """A finished run with every snapshot its coordinator assembled."""

    world: World
    run: Run
    snapshots: list[GlobalSnapshot]
    """In the order they completed."""
    verdicts: dict[int, Verdict]
    """The oracle's verdict per snapshot id."""

    def accepted(self) -> list[GlobalSnapshot]:
        """The complete snapshots the protocol itself calls valid: what a user would read."""
        return [s for s in self.snapshots if s.status.complete and s.status.valid]

    def history(self, snapshot: GlobalSnapshot) -> dict[str, array]:
        """Each in-group node's events inside ``snapshot`` (its recorded prefix)."""
        return self._events_between(snapshot, {})

    def advancing(
        self, snapshots: Iterable[GlobalSnapshot]
    ) -> Iterator[tuple[GlobalSnapshot, dict[str, array]]]:
        """``snapshots`` in id order, each with the events every node recorded since the
        previous one: a later snapshot's cut never comes before an earlier one's at any
        node, so a use case can replay a run once however many snapshots it reads."""
        done: dict[str, int] = {}
        for snapshot in sorted(snapshots, key=lambda s: s.snapshot_id):
            yield snapshot, self._events_between(snapshot, done)

    def _events_between(self, snapshot: GlobalSnapshot, done: dict[str, int]) -> dict[str, array]:
        events = self.run.log.events
        fresh = {}
        for node, state in snapshot.states.items():
            start = done.get(node, 0)
            if state.position < start:
                raise ValueError(f"snapshot {snapshot.snapshot_id} cuts {node} before "
                                 f"an earlier snapshot did")
            fresh[node] = events.get(node, array("q"))[start:state.position]
            done[node] = state.position
        return fresh


def observe(
    config: WorldConfig, world_class: Callable[..., World] = World
) -> Observed:
    """Run ``config`` in ``world_class``, keep every assembled snapshot, judge them all."""
    kept: list[GlobalSnapshot] = []
    world = world_class(config, on_complete=kept.append)
    run = world.run()
    verdicts = judge(run.log, run.recorded, len(run.statuses))
    return Observed(world, run, kept, {v.snapshot_id: v for v in verdicts})
