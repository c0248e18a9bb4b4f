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

External causal chains respect the world's true tau_min: an out-group
process that received an in-group message sent at time ts sends nothing
that crosses a gateway before ts + tau_min (unless the world injects short
chains: :mod:`simulator.faults`).

Per-node state the world keeps (counters, clock offsets, crash times,
pending notifications) lives in flat lists indexed by node number, and
delays come from vectorised samplers: the cost of an event is a few list
lookups and one core call.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from beaver.coordinator import Coordinator
from beaver.gateway import Gateway
from beaver.ids import UNMARKED, IdSpace
from beaver.protocols import SnapshotNode
from beaver.records import NOTHING, Marker, Receipt
from beaver.snapshot_status import GlobalSnapshot
from oracle import EventLog
from simulator.config import Run, WorldConfig
from simulator.control import ControlPlane
from simulator.cuts import CutLog, NodeState
from simulator.engine import Engine
from simulator.faults import FaultCounts
from simulator.waves import Waves
from simulator.workload import PoissonSource

__all__ = ["NodeState", "Run", "World", "WorldConfig"]

RELAY_RECEIVES_AT = 0.3
"""Share of an external chain's time after which the relay has the message."""
RELAY_SENDS_AT = 0.6
"""Share of an external chain's time after which the relay sends its new message."""
FORGET_EVERY = 64
"""The coordinator drops stored states of finished snapshots every this many starts."""
SHORT_CHAIN = (0.05, 0.95)
"""A short chain (an injected fault) takes this share of tau_min, uniformly."""


class World:
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
        self.nodes: list[SnapshotNode] = [
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
        self._sent = [0] * count
        self._received = [0] * count
        skew = self.faults.clock_skew
        self._clock = [self._random() * 2 * skew - skew if skew else 0.0 for _ in range(count)]
        self._gateway_clock = [self._random() * 2 * skew - skew if skew else 0.0
                               for _ in self.gateways]
        """Clock offsets from the coordinator's clock, per node and per gateway."""
        self._down_until = [0.0] * count
        """Per node, until when it is down after a crash."""
        self._next_message = 0
        self._channel_clear: dict[int, float] = {}
        """Per in-group channel (i * N + j), when its last message is delivered (FIFO)."""
        self._relay_floor = dict.fromkeys(self.relays, 0.0)
        """Per relay, the earliest time its next message may cross a gateway."""
        self.waves = Waves(count)
        self._pending_at = self.waves.pending_at
        self.control = ControlPlane(self)
        self._reports_direct = not self.faults.control_loss
        """Without control loss a report reaches the coordinator at once."""
        self._link = self.delays["ingroup_link"]
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
        if self._started < self.config.snapshots:
            return not self.stalled
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
        now, nodes, pending, down = self.engine.now, self.nodes, self._pending_at, self._down_until
        behind = [i for i, node in enumerate(nodes)
                  if node.current < snapshot_id and pending[i] <= now and down[i] <= now]
        for i in behind:
            self._catch_up(i)
        self.waves.retire(snapshot_id)

    def _catch_up(self, node: int) -> None:
        """``node`` takes the notifications that reached it (their arrival is the moment)."""
        state = self.nodes[node]
        snapshot_id, arrived = self.waves.take_due(node, state.current, self.engine.now)
        if snapshot_id:
            self._settle(node, state.notify(snapshot_id, arrived + self._clock[node]))

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

    def _capturer(self, node: int) -> Callable[[], NodeState]:
        sequence = self.log.sequence(self.names[node])

        def capture() -> NodeState:
            return NodeState(len(sequence), self._sent[node], self._received[node])

        return capture

    def _settle(self, node: int, receipt: Receipt) -> None:
        """After a core call on ``node``: ground truth, reports, markers."""
        if receipt is NOTHING:
            return
        control = self.control
        report = control.deliver_report if self._reports_direct else control.report
        if receipt.snapshots:
            reported = self._cuts.reported
            for local in receipt.snapshots:
                reported(node, local)
                report(local, node)
        for record in receipt.in_flight:
            for k in range(record.first_id, record.last_id + 1):
                self.recorded[k].append(record.message)
            report(record, node)
        for peer, marker in receipt.outgoing:
            self.extra_messages += 1
            self._on_channel(node, self.index[peer], self._deliver_marker, marker)

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

    def _new_message(self) -> int:
        self._next_message += 1
        return self._next_message

    def _on_channel(
        self, sender: int, receiver: int, action: Callable[..., None], *args: object
    ) -> float:
        """Schedule ``action(sender, receiver, *args)`` on the FIFO channel sender -> receiver.

        Returns the arrival time. A lost packet is sent again after the
        retransmission timeout and holds the channel meanwhile.
        """
        arrival = self.engine.now + self._link()
        faults = self.faults
        if faults.data_loss:
            lost = faults.retransmissions(faults.data_loss, self.rng)
            self.counts.data_lost += lost
            arrival += lost * faults.retransmit_timeout
        if faults.data_duplicate and self._random() < faults.data_duplicate:
            self.counts.data_duplicated += 1
        channel = sender * len(self.nodes) + receiver
        arrival = max(arrival, self._channel_clear.get(channel, 0.0))
        self._channel_clear[channel] = arrival
        self.engine.at(arrival, action, sender, receiver, *args)
        return arrival

    def _ingroup_message(self) -> None:
        count, now = len(self.nodes), self.engine.now
        sender = int(self._random() * count)
        if self._down_until[sender] > now:
            return
        if self._pending_at[sender] <= now:
            self._catch_up(sender)
        if self.relays and self._random() < self.workload.relay_share:
            self._to_relay(sender)
            return
        receiver = int(self._random() * (count - 1))
        if receiver >= sender:
            receiver += 1
        wire = self.nodes[sender].send(self.names[receiver], now + self._clock[sender])
        message = self._new_message()
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        arrival = self._on_channel(sender, receiver, self._deliver, message, wire)
        if arrival - now > self._lifetime:
            self.overdue.append(message)
        if self.stamping and self._random() < self.workload.vip_share:
            gateway = self._pick_gateway()
            self.engine.at((now + arrival) / 2, self._observe, gateway, wire)

    def _observe(self, gateway: int, wire: int) -> None:
        if self.control.gateway_down_until[gateway] <= self.engine.now:
            self.gateways[gateway].observe_ingroup(wire)

    def _wait_for_restart(self, node: int, action: Callable[..., None], *args: object) -> bool:
        """Whether ``node`` is down: then ``action`` waits in the sender's transport."""
        up = self._down_until[node]
        if up <= self.engine.now:
            return False
        self.engine.at(up, action, *args)
        return True

    def _deliver(self, sender: int, receiver: int, message: int, wire: int) -> None:
        now = self.engine.now
        if self._down_until[receiver] > now and self._wait_for_restart(
                receiver, self._deliver, sender, receiver, message, wire):
            return
        if self._pending_at[receiver] <= now:
            self._catch_up(receiver)
        node = self.nodes[receiver]
        receipt = node.receive(wire, self.names[sender], now + self._clock[receiver], message)
        self._settle(receiver, receipt)
        self._record_receive(receiver, message, receipt)
        if node.current > self.coordinator.newest:
            self.unstarted_adoptions += 1

    def _deliver_marker(self, sender: int, receiver: int, marker: Marker) -> None:
        now = self.engine.now
        if self._wait_for_restart(receiver, self._deliver_marker, sender, receiver, marker):
            return
        if self._pending_at[receiver] <= now:
            self._catch_up(receiver)
        node = self.nodes[receiver]
        self._settle(receiver, node.receive_marker(marker, self.names[sender],
                                                   now + self._clock[receiver]))

    def _deliver_inbound(self, receiver: int, message: int, wire: int) -> None:
        now = self.engine.now
        if self._down_until[receiver] > now:
            self.counts.inbound_dropped += 1
            return
        if self._pending_at[receiver] <= now:
            self._catch_up(receiver)
        node = self.nodes[receiver]
        receipt = node.receive(wire, None, now + self._clock[receiver], message)
        self._settle(receiver, receipt)
        self._record_receive(receiver, message, receipt)
        if node.current > self.coordinator.newest:
            self.unstarted_adoptions += 1

    def _record_receive(self, receiver: int, message: int, receipt: Receipt) -> None:
        if receipt.deliver:
            self._sequences[receiver].append(~message)
            self._received[receiver] += 1
        else:
            self.rejected_messages += 1

    # -- out-group ------------------------------------------------------------------------

    def _to_relay(self, sender: int) -> None:
        """In-group ``sender`` starts an external chain through a random relay."""
        now, faults, tau_min = self.engine.now, self.faults, self.config.tau_min
        relay = self.relays[self._pick(len(self.relays))]
        self.nodes[sender].send(None, now + self._clock[sender])
        message = self._new_message()
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        if faults.data_loss and self._random() < faults.data_loss:
            self.counts.data_lost += 1
            return
        short = bool(faults.chain_violation_share) and (
            self._random() < faults.chain_violation_share)
        if short:
            low, high = SHORT_CHAIN
            chain = tau_min * (low + (high - low) * self._random())
        else:
            chain = tau_min * (1.0 + self.delays["chain_excess"]())
        self.engine.after(chain * RELAY_RECEIVES_AT, self._relay_receive, relay, message, now,
                          short)
        self.engine.after(chain * RELAY_SENDS_AT, self._relay_forward, relay, sender, now,
                          now + chain, short)

    def _relay_receive(
        self, relay: str, message: int, sent_at: float, short: bool = False
    ) -> None:
        self.log.receive(relay, message)
        floor = sent_at + self.config.tau_min
        if not short and floor > self._relay_floor[relay]:
            self._relay_floor[relay] = floor

    def _relay_forward(
        self, relay: str, origin: int, sent_at: float, at_gateway: float, short: bool
    ) -> None:
        """The relay's new message, caused by what it received, to another in-group node."""
        receiver = self._pick(len(self.nodes) - 1)
        if receiver >= origin:
            receiver += 1
        arrival = at_gateway if short else max(at_gateway, self._relay_floor[relay])
        gateway = self._pick_gateway()
        chain = arrival - sent_at
        if chain < self.coordinator.tau_min:
            self.counts.short_chains += 1
            if self.faults.learn_tau_min:
                measured = chain + self._gateway_clock[gateway] - self._clock[origin]
                self.engine.at(arrival + self.delays["gateway_leg"](),
                               self.control.chain_measured, measured)
        self._inbound(relay, receiver, arrival, gateway)

    def _client_request(self) -> None:
        client = self.clients[self._pick(len(self.clients))]
        arrival = self.engine.now + self.delays["client_to_gateway"]()
        self._inbound(client, self._pick(len(self.nodes)), arrival, self._pick_gateway())

    def _inbound(self, process: str, receiver: int, at_gateway: float, gateway: int) -> None:
        """``process`` sends a message into the in-group; it reaches ``gateway`` at
        ``at_gateway``, unless lost; a duplicate is a second message with the same past."""
        faults = self.faults
        copies = 1
        if faults.data_duplicate and self._random() < faults.data_duplicate:
            copies = 2
            self.counts.data_duplicated += 1
        for copy in range(copies):
            message = self._new_message()
            self.log.send(process, message)
            if copy:
                at_gateway += self.delays["client_to_gateway"]()
            if faults.data_loss and self._random() < faults.data_loss:
                self.counts.data_lost += 1
                continue
            self.engine.at(at_gateway, self._cross_gateway, gateway, receiver, message)

    def _pick_gateway(self) -> int:
        return int(self._random() * len(self.gateways))

    def _pick(self, count: int) -> int:
        """A uniform choice among ``0..count-1`` (one call into the generator)."""
        return int(self._random() * count)

    def _cross_gateway(self, gateway: int, receiver: int, message: int) -> None:
        state = self.gateways[gateway]
        if self.control.gateway_down_until[gateway] > self.engine.now or not state.ready:
            self.counts.inbound_dropped += 1
            return
        wire = state.stamp() if self.stamping else UNMARKED
        delay = self.delays["gateway_to_node"]()
        if delay > self._lifetime and self.stamping:
            self.overdue.append(message)
        self.engine.after(delay, self._deliver_inbound, receiver, message, wire)
