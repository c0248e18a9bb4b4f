"""A simulated run stored like an emulated one, so ``beaver show`` reads both.

``beaver simulate --db FILE`` writes the run's snapshots (as the
coordinator assembled them), the oracle's verdicts and the ground-truth
event logs into the snapshot database. The simulator's event log has no
clock, so its events get *logical* times (:func:`logical_times`: a Lamport
clock, one step per event, a receive one step after its send); a capture
point sits half a step after the last event inside its cut. A node's
stored state is the simulator's :class:`~simulator.world.NodeState`
(position in its log, messages sent and received); every in-flight message
carries its id under :data:`hosts.truth.MESSAGE_ID`, as emulated ones do.
"""

from __future__ import annotations

from beaver.protocols import protocol
from beaver.snapshot_status import GlobalSnapshot
from controller.coordinator.store import FinishedSnapshot, Store, StoredInFlight, StoredLocal
from hosts.truth import INGROUP, MESSAGE_ID
from oracle import EventLog
from simulator import US, Outcome
from testbed.truth import Event, ProcessLog, event_rows

RELAY = "relay"


def logical_times(log: EventLog) -> dict[str, list[int]]:
    """A Lamport time for every event of every process (receives after their sends)."""
    times: dict[str, list[int]] = {process: [] for process in log.events}
    sent: dict[int, int] = {}
    waiting: dict[int, str] = {}
    ready = list(log.events)
    while ready:
        process = ready.pop()
        events, stamped = log.events[process], times[process]
        while len(stamped) < len(events):
            event = events[len(stamped)]
            previous = stamped[-1] if stamped else 0
            if event >= 0:
                stamped.append(previous + 1)
                sent[event] = stamped[-1]
                if event in waiting:
                    ready.append(waiting.pop(event))
            elif ~event in sent:
                stamped.append(max(previous, sent[~event]) + 1)
            else:
                waiting[~event] = process
                break
    return times


def process_logs(log: EventLog) -> list[ProcessLog]:
    """The simulated run's event log as the testbed's process logs, with logical times."""
    times = logical_times(log)
    logs = []
    for process, events in log.events.items():
        ingroup = process in log.ingroup
        stamped = times[process]
        result = ProcessLog(process, INGROUP if ingroup else RELAY)
        captures = log.captures.get(process, [])
        k = 0
        for position in range(len(events) + 1):
            first = k
            while k < len(captures) and captures[k] == position:
                k += 1
            if k > first:
                t = (stamped[position - 1] if position else 0) + 0.5
                result.events.append(Event(t, "capture", snapshots=(first + 1, k)))
            if position < len(events):
                event = events[position]
                kind, message = ("send", event) if event >= 0 else ("receive", ~event)
                result.events.append(Event(float(stamped[position]), kind, str(message)))
        logs.append(result)
    return logs


def store_simulated(store: Store, outcome: Outcome, snapshots: list[GlobalSnapshot]) -> int:
    """Write a simulated run with its assembled ``snapshots``; returns the run id."""
    config = outcome.run.config
    parameters = {
        "simulated": True, "nodes": config.nodes, "gateways": config.gateways,
        "externals": config.externals, "relays": config.relay_count, "seed": config.seed,
        "snapshots": config.snapshots, "time": "logical (Lamport steps)",
    }
    run = store.new_run(config.protocol, parameters, config.checked_tau_min / US,
                        "simulated world")
    logs = process_logs(outcome.run.log)
    captured_at = {
        (log.process, k): event.t
        for log in logs for event in log.events if event.kind == "capture"
        for k in range(event.snapshots[0], event.snapshots[1] + 1)
    }
    for snapshot in sorted(snapshots, key=lambda s: s.snapshot_id):
        status, k = snapshot.status, snapshot.snapshot_id
        store.add_snapshot(run, protocol(config.protocol).name, FinishedSnapshot(
            snapshot_id=k, t0=status.t0, t1=status.t1, valid=bool(status.valid),
            complete=status.complete, completed_at=status.completed_at,
            states=tuple(StoredLocal(node, captured_at.get((node, k), 0.0), state._asdict())
                         for node, state in sorted(snapshot.states.items())),
            in_flight=tuple(StoredInFlight(r.receiver, r.sender, r.received_at,
                                           {MESSAGE_ID: str(r.message)})
                            for r in snapshot.in_flight),
            gateways=(),
        ))
    stored = {s.snapshot_id for s in snapshots}
    store.set_verdicts(run, [v for v in outcome.verdicts if v.snapshot_id in stored])
    store.set_events(run, event_rows(logs))
    return run

