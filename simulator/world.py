"""The simulated world: in-group nodes, gateways, out-group processes, one coordinator.

Paths (all delays from :mod:`simulator.latency`):

- out-group -> in-group: through one gateway, chosen at random. Under a
  protocol that ``uses_gateways`` the gateway stamps the message with
  :meth:`Gateway.stamp` when it crosses; otherwise it enters unmarked (0).
- in-group -> out-group: direct, stamped by the sender (out-group ignores it).
- in-group -> in-group: direct and FIFO per channel, stamped by the sender
  (``node.send``). Under a stamping protocol, messages sent to a VIP also
  pass a gateway on the way, which sees their stamp (``observe_ingroup``:
  optimistic marking) and forwards them unchanged.
- coordinator -> gateway (``UpdateGateway``) and the acknowledgement back,
  coordinator -> node (``NotifyNode``, one wave per snapshot: see
  :mod:`simulator.waves`): messages with latency, carried by
  :mod:`simulator.control`. Node reports (local snapshots, in-flight
  records) reach the coordinator at once unless control messages are lost.
- Chandy-Lamport markers travel on the FIFO in-group channels and count as
  extra messages.

The in-group paths are :mod:`simulator.ingroup`, the out-group ones
(relays, clients, the gateways they cross) :mod:`simulator.outgroup`; the
world mixes both in and keeps the snapshots' starts and notifications.

The protocol logic is all in :mod:`beaver`: the world only carries
messages and calls the core. It also keeps the ground truth for the oracle
(:mod:`oracle`): every process's sends and receives, and where each
local snapshot falls in its node's event sequence: the position where the
node's capture callback ran, kept by :mod:`simulator.cuts` from the states
the node reported (never where its id changed).

Wire ids rely on a maximum packet lifetime (``packet_lifetime``, see
:mod:`beaver.wire_floor`): the coordinator is told it, and the world
checks every stamped packet against it; a run lists the messages that
took longer (``Run.overdue``) and counts nodes that adopted an id the
coordinator had not started (``Run.unstarted_adoptions``), which can only
follow from such a packet.

Per-node state the world keeps (counters, clock offsets, crash times,
pending notifications) lives in flat lists and arrays indexed by node number, and
delays come from vectorised samplers: the cost of an event is a few list
lookups and one core call. Under Beaver and Lai-Yang the nodes themselves are
one :class:`~beaver.node_group.NodeGroup` (their snapshot state in arrays):
a node catching up on its notifications takes its local snapshot in one group
call whose report goes straight to the coordinator, and a wave's end takes every
told node's at once (numpy over the waves' arrivals and the group's arrays,
one batch to :meth:`Coordinator.add_locals`). A ``node_class`` runs one object
per node, as any other protocol does.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from beaver.coordinator import Coordinator
from beaver.gateway import Gateway
from beaver.ids import IdSpace
from beaver.protocols import SnapshotNode
from beaver.records import NOTHING, MemberSnapshots, Receipt
from beaver.snapshot_status import GlobalSnapshot
from oracle import EventLog
from simulator.config import Run, WorldConfig
from simulator.control import ControlPlane
from simulator.cuts import CutLog, NodeState
from simulator.engine import Engine
from simulator.faults import FaultCounts
from simulator.ingroup import InGroupTraffic
from simulator.outgroup import OutGroupTraffic
from simulator.waves import Waves
from simulator.workload import PoissonSource

__all__ = ["NodeState", "Run", "World", "WorldConfig"]

_record = tuple.__new__
FORGET_EVERY = 64
"""The coordinator drops stored states of finished snapshots every this many starts."""


class World(InGroupTraffic, OutGroupTraffic):
    """Builds the processes of a :class:`WorldConfig` and runs them to the end."""

    def __init__(
        self, config: WorldConfig, on_complete: Callable[[GlobalSnapshot], None] | None = None
    ):
        """``on_complete`` receives every snapshot the coordinator assembles once complete
        (its status object keeps being updated: validity may be decided later)."""
        self.config = config
        self._on_complete = on_complete
        self.rng = random.Random(config.seed)
        self._random = self.rng.random
        self.generator = np.random.default_rng(config.seed)
        self.engine = Engine()
        self.latencies = config.latencies
        self.delays = config.latencies.samplers(self.generator)
        self.workload = config.workload
        self.faults = config.faults
        self.counts = FaultCounts()
        self.protocol = config.chosen_protocol
        space = IdSpace(config.id_bits, config.window)
        count = config.nodes
        width = len(str(count - 1))
        self.names = [f"n{i:0{width}d}" for i in range(count)]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.log = EventLog(self.names)
        self._sequences = [self.log.sequence(name) for name in self.names]
        self._cuts = CutLog(self.log, self.names)
        """Each node's event sequence and capture positions, as kept in :class:`EventLog`."""
        self._log_cut = self._cuts.log_cut
        self._sent = array("q", [0]) * count
        self._received = array("q", [0]) * count
        """Per node, the messages it sent and received (flat: no int object per node to reach)."""
        self.group = self.protocol.node_group(self.names, self._member_capture(), space=space,
                                              capture_many=self._capture_many)
        """Every node in one :class:`NodeGroup` when the protocol's nodes are the core's
        (None: one object per node, e.g. a ``node_class``)."""
        self.nodes: list[SnapshotNode] = self.group.members() if self.group else [
            self.protocol.node(name, self._capturer(i), peers=self.names, space=space)
            for i, name in enumerate(self.names)
        ]
        self.gateways = [Gateway(f"g{g}", space) for g in range(config.gateways)]
        self.stamping = self.protocol.uses_gateways
        relays = config.relay_count
        self.relays = [f"r{r}" for r in range(relays)]
        self.clients = [f"c{c}" for c in range(config.externals - relays)]
        self.coordinator: Coordinator = self.protocol.coordinator(
            self.names,
            gateways=[gateway.name for gateway in self.gateways],
            tau_min=config.checked_tau_min,
            space=space,
            packet_lifetime=config.packet_lifetime,
            update_timeout=self.faults.update_timeout if self.faults.control else math.inf,
            broadcast=True,
        )
        self.gateway_index = {gateway.name: g for g, gateway in enumerate(self.gateways)}
        self.recorded: dict[int, list[int]] = defaultdict(list)
        self.extra_messages = 0
        self.rejected_messages = 0
        self.rejected_reports = 0
        self.overdue: list[int] = []
        self.unstarted_adoptions = 0
        self._lifetime = config.packet_lifetime if self.protocol.piggybacks_ids else math.inf
        """Stamped packets slower than this break the wire-id assumption (no stamps: never)."""
        skew = self.faults.clock_skew
        self._clock = [self._random() * 2 * skew - skew if skew else 0.0 for _ in range(count)]
        self._gateway_clock = [self._random() * 2 * skew - skew if skew else 0.0
                               for _ in self.gateways]
        """Clock offsets from the coordinator's clock, per node and per gateway."""
        self._clock_array = np.array(self._clock)
        self._down_until = [0.0] * count
        """Per node, until when it is down after a crash."""
        self._next_message = 0
        self._channel_clear: dict[int, float] = {}
        """Per in-group channel (i * N + j), when its last message is delivered (FIFO)."""
        self._relay_floor = dict.fromkeys(self.relays, 0.0)
        """Per relay, the earliest time its next message may cross a gateway."""
        self._relay_inbox: dict[str, list[tuple[float, int, int, float, bool]]] = {
            relay: [] for relay in self.relays}
        """Per relay, the messages on their way to it (a heap by arrival, then ticket)."""
        self.waves = Waves(count)
        self._pending_at = self.waves.pending_at
        self._take_due = self.waves.take_due
        self.control = ControlPlane(self)
        self._report = self.control.report if self.faults.control_loss else (
            self.control.deliver_report)
        """Without control loss a report reaches the coordinator at once."""
        self._report_member = self.control.report if self.faults.control_loss else (
            self.control.deliver_member_report)
        """The same, for a group member's local snapshot."""
        if self.group is not None:
            self._catch_up = self._member_catch_up()
        self._link = self.delays["ingroup_link"]
        self._data_faults = bool(self.faults.data_loss or self.faults.data_duplicate)
        self._queue, self._ticket = self.engine.queue, self.engine.ticket
        """The engine's heap and tickets, for the paths that schedule an event per message."""
        self._chain_excess = self.delays["chain_excess"]
        self._to_gateway = self.delays["client_to_gateway"]
        self._to_node = self.delays["gateway_to_node"]
        self._started = 0
        self._last_start = math.inf
        self._waiting_to_start = False
        self._waiting_since = math.inf
        self._wake_at = math.nan
        """When a retry of the waiting start is scheduled (nan: none)."""

    # -- running --------------------------------------------------------------------------

    def run(self, progress: Callable[[], None] | None = None) -> Run:
        """Run until every snapshot is started and the world has drained."""
        workload, faults, engine = self.workload, self.faults, self.engine
        sources = [
            PoissonSource(engine, self.rng, workload.message_rate_hz * len(self.nodes),
                          self._ingroup_message, self.traffic_on),
            PoissonSource(engine, self.rng, workload.request_rate_hz * len(self.clients),
                          self._client_request, self.traffic_on),
        ]
        for source in sources:
            source.start()
        if self.config.snapshots:
            engine.after(self._start_gap(), self._start_tick)
        if faults.control:
            engine.after(faults.update_timeout / 2, self.control.tick)
        if faults.gateway_crash_rate_hz and self.gateways:
            engine.after(self.rng.expovariate(faults.gateway_crash_rate_hz * len(self.gateways)),
                         self.control.gateway_crash)
        if faults.node_crash_rate_hz:
            engine.after(self.rng.expovariate(faults.node_crash_rate_hz * len(self.nodes)),
                         self._node_crash)
        engine.run(progress)
        self._cuts.close()
        statuses = self.coordinator.statuses()
        self.counts.failed_updates = sum(len(status.failed_gateways) for status in statuses)
        return Run(
            config=self.config,
            statuses=statuses,
            recorded=dict(self.recorded),
            log=self.log,
            extra_messages=self.extra_messages,
            rejected_messages=self.rejected_messages,
            rejected_reports=self.rejected_reports,
            events=engine.events_run,
            simulated_s=engine.now,
            overdue=self.overdue,
            unstarted_adoptions=self.unstarted_adoptions,
            faults=self.counts,
            revoked=frozenset(self.control.revoked),
        )

    @property
    def started(self) -> int:
        return self._started

    @property
    def stalled(self) -> bool:
        """The window stayed full for ``give_up_s``: a snapshot never finishes, so the
        world stops starting snapshots (and drains) instead of waiting forever."""
        return self.engine.now - self._waiting_since >= self.workload.give_up_s

    def traffic_on(self) -> bool:
        """Whether traffic goes on (asked once per message: :attr:`stalled` written out)."""
        if self._started < self.config.snapshots:
            return not self.engine.now - self._waiting_since >= self.workload.give_up_s
        coordinator = self.coordinator
        unfinished = coordinator.oldest_unfinished <= coordinator.newest
        return unfinished and self.engine.now < self._last_start + self.workload.give_up_s

    # -- snapshots ------------------------------------------------------------------------

    def _start_gap(self) -> float:
        return self.rng.expovariate(self.workload.snapshot_rate_hz)

    def _start_tick(self) -> None:
        if self.coordinator.can_start(self.engine.now):
            self._start()
        else:
            self._waiting_to_start = True
            self._waiting_since = self.engine.now
            self._wake_for_lifetime()

    def _wake_for_lifetime(self) -> None:
        """Retry when old stamps have left the network, if only they hold the start up."""
        wake = self.coordinator.next_start_at()
        if wake is not None and wake != self._wake_at:
            self._wake_at = wake
            self.engine.at(max(wake, self.engine.now), self.start_if_waiting)

    def _start(self) -> None:
        _, commands = self.coordinator.start(self.engine.now)
        self._started += 1
        if self._started % FORGET_EVERY == 0:
            self.coordinator.forget(self.coordinator.oldest_unfinished - 1)
            now = self.engine.now
            self._channel_clear = {c: t for c, t in self._channel_clear.items() if t > now}
        if self._started < self.config.snapshots:
            self.engine.after(self._start_gap(), self._start_tick)
        else:
            self._last_start = self.engine.now
        self.control.carry_out(commands)

    def start_if_waiting(self) -> None:
        if not self._waiting_to_start or self.stalled:
            return
        if self.coordinator.can_start(self.engine.now):
            self._waiting_to_start = False
            self._waiting_since = math.inf
            self._start()
        else:
            self._wake_for_lifetime()

    # -- notifications --------------------------------------------------------------------

    def wave_end(self, snapshot_id: int) -> None:
        """The last notification of ``snapshot_id`` arrived: every node told takes it now."""
        if self.group is not None:
            self._group_wave_end(snapshot_id)
            return
        now, nodes, down = self.engine.now, self.nodes, self._down_until
        take_due, clock = self.waves.take_due, self._clock
        receipts = []
        for i in self.waves.told_by(now):
            state = nodes[i]
            if state.current < snapshot_id and down[i] <= now:
                due, arrived = take_due(i, state.current, now)
                if due:
                    receipts.append((i, state.notify(due, arrived + clock[i])))
        for node, receipt in receipts:
            self._settle(node, receipt)
        self.waves.retire(snapshot_id)

    def _group_wave_end(self, snapshot_id: int) -> None:
        """:meth:`wave_end` of the group: every told node behind takes its due notification
        at once (numpy over the waves' arrivals and the group's arrays)."""
        now, group = self.engine.now, self.group
        told = self.waves.told(now)
        current = np.frombuffer(group.current, dtype=np.int64)
        behind = told[current[told] < snapshot_id]
        if self.faults.node_crash_rate_hz:
            behind = behind[np.array(self._down_until)[behind] <= now]
        due, arrived = self.waves.take_due_many(behind, current[behind], now)
        taking = due > 0
        if taking.any():
            members = behind[taking]
            self._settle_many(group.notify_many(members, due[taking],
                                                arrived[taking] + self._clock_array[members]))
        self.waves.retire(snapshot_id)

    def _catch_up(self, node: int) -> None:
        """``node`` takes the notifications that reached it (their arrival is the moment).
        A group's world replaces this with :meth:`_member_catch_up`'s function."""
        state = self.nodes[node]
        snapshot_id, arrived = self._take_due(node, state.current, self.engine.now)
        if snapshot_id:
            self._settle(node, state.notify(snapshot_id, arrived + self._clock[node]))

    def _member_catch_up(self) -> Callable[[int], None]:
        """:meth:`_catch_up` of a group member: its local snapshot in one group call, the
        report straight to the coordinator (or over the lossy stream). A hot path (once per
        node touched after a notification reached it): what it reads is bound here."""
        take_due, current, notify = self._take_due, self.group.current, self.group.notify
        engine, clock, report = self.engine, self._clock, self._report_member

        def catch_up(node: int) -> None:
            snapshot_id, arrived = take_due(node, current[node], engine.now)
            if snapshot_id:  # newer than the node's id: it takes a local snapshot
                report(notify(node, snapshot_id, arrived + clock[node]), node)

        return catch_up

    def notify_one(self, node: int, snapshot_id: int) -> None:
        """A single notification (a marker protocol's initiator, or one sent again)."""
        now = self.engine.now
        if self._down_until[node] > now:
            self.counts.control_lost += 1
            return
        if self._pending_at[node] <= now:
            self._catch_up(node)
        self._settle(node, self.nodes[node].notify(snapshot_id, now + self._clock[node]))

    # -- in-group nodes -------------------------------------------------------------------

    def _member_capture(self) -> Callable[[int, int, int], NodeState]:
        """The capture callback of the group's members: ``capture(node, first, last)`` is the
        state of ``node`` for its local snapshot of ``first..last``, its position in its event
        sequence and its message counters. The cut of ``first..last`` is that position, logged
        where the capture ran. Once per local snapshot: what it reads is bound here."""
        sequences, log_cut, sent, received = (self._sequences, self._log_cut, self._sent,
                                              self._received)

        def capture(node: int, first: int, last: int) -> NodeState:
            position = len(sequences[node])
            log_cut((node, last, position))
            # NodeState(...) without a Python call
            return _record(NodeState, (position, sent[node], received[node]))

        return capture

    def _capture_many(self, nodes: np.ndarray, firsts: np.ndarray,
                      lasts: np.ndarray) -> list[NodeState]:
        """The members' capture callback (:meth:`_member_capture`) of each of ``nodes``
        (distinct) with its ``firsts`` and ``lasts`` entries."""
        sequences = self._sequences
        positions = [len(sequences[node]) for node in nodes.tolist()]
        self._cuts.captured_many(nodes, lasts, positions)
        sent = np.frombuffer(self._sent, dtype=np.int64)[nodes].tolist()
        received = np.frombuffer(self._received, dtype=np.int64)[nodes].tolist()
        return [_record(NodeState, state) for state in zip(positions, sent, received,
                                                            strict=True)]

    def _capturer(self, node: int) -> Callable[[], NodeState]:
        sequence, sent, received = self.log.sequence(self.names[node]), self._sent, self._received
        record = tuple.__new__  # NodeState(...) without a Python call: once per local snapshot

        def capture() -> NodeState:
            return record(NodeState, (len(sequence), sent[node], received[node]))

        return capture

    def _settle(self, node: int, receipt: Receipt) -> None:
        """After a core call on ``node``: ground truth, reports, markers."""
        if receipt is NOTHING:
            return
        report = self._report
        if receipt.snapshots:
            reported = self._cuts.reported
            for local in receipt.snapshots:
                if self.group is None:  # a group's members log their cuts where they capture
                    reported(node, local)
                report(local, node)
        for record in receipt.in_flight:
            for k in range(record.first_id, record.last_id + 1):
                self.recorded[k].append(record.message)
            report(record, node)
        for peer, marker in receipt.outgoing:
            self.extra_messages += 1
            self._on_channel(node, self.index[peer], self._deliver_marker, marker)

    def _settle_many(self, taken: MemberSnapshots | None) -> None:
        """After the group took local snapshots at once: ground truth and reports."""
        if taken is None:
            return
        if self._report == self.control.deliver_report:
            self.control.deliver_reports(taken)
            return
        report = self._report
        for j, node in enumerate(taken.members.tolist()):
            report(taken.member(j), node)

    def completed(self, snapshot_ids: list[int]) -> None:
        """The coordinator completed ``snapshot_ids``: hand them to ``on_complete``, and start
        a waiting snapshot if that made room (completions are what frees the window)."""
        if self._on_complete is not None:
            for k in snapshot_ids:
                self._on_complete(self.coordinator.assemble(k))
        self.start_if_waiting()

    def _node_crash(self) -> None:
        """A random node crashes: down for the downtime, then on where its log ends."""
        now, node = self.engine.now, self._pick(len(self.nodes))
        if self._down_until[node] <= now:
            if self._pending_at[node] <= now:
                self._catch_up(node)
            self.counts.node_crashes += 1
            self._down_until[node] = now + self.faults.downtime
            self.engine.at(now + self.faults.downtime, self._node_restart, node)
        if self.traffic_on():
            self.engine.after(self.rng.expovariate(
                self.faults.node_crash_rate_hz * len(self.nodes)), self._node_crash)

    def _node_restart(self, node: int) -> None:
        """Notifications that arrived while ``node`` was down are lost."""
        lost, _ = self.waves.take_due(node, self.nodes[node].current, self.engine.now)
        self.counts.control_lost += bool(lost)
