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
  coordinator -> node (``NotifyNode``): messages with latency. Node reports
  (local snapshots, in-flight records) reach the coordinator at once.
- Chandy-Lamport markers travel on the FIFO in-group channels and count as
  extra messages.

The protocol logic is all in :mod:`beaver`: the world only carries
messages and calls the core. It also keeps the ground truth for the oracle
(:mod:`oracle`): every process's sends and receives, and where each
local snapshot falls in its node's event sequence: the position where the
node's capture callback ran, kept by :mod:`simulator.cuts` from the states
the node reported (never where its id changed).

Wire ids rely on a maximum packet lifetime (``packet_lifetime``, see
:mod:`beaver.coordinator`): the coordinator is told it, and the world
checks every stamped packet against it; a run lists the messages that
took longer (``Run.overdue``) and counts nodes that adopted an id the
coordinator had not started (``Run.unstarted_adoptions``), which can only
follow from such a packet.

External causal chains respect the world's true tau_min: an out-group
process that received an in-group message sent at time ts sends nothing
that crosses a gateway before ts + tau_min.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from beaver.coordinator import (
    DEFAULT_PACKET_LIFETIME,
    Coordinator,
    GlobalSnapshot,
    InvalidReport,
    SnapshotStatus,
)
from beaver.gateway import Gateway
from beaver.ids import UNMARKED, IdSpace
from beaver.protocols import PiggybackNodeFactory, Protocol, SnapshotNode, protocol
from beaver.records import (
    NOTHING,
    Command,
    Marker,
    NotifyNode,
    Receipt,
    UpdateGateway,
)
from oracle import EventLog
from simulator.cuts import CutLog, NodeState
from simulator.engine import Engine
from simulator.latency import US, Latencies
from simulator.workload import PoissonSource, Workload

RELAY_RECEIVES_AT = 0.3
"""Share of an external chain's time after which the relay has the message."""
RELAY_SENDS_AT = 0.6
"""Share of an external chain's time after which the relay sends its new message."""
FORGET_EVERY = 64
"""The coordinator drops stored states of finished snapshots every this many starts."""


@dataclass(frozen=True)
class WorldConfig:
    """Everything a simulation run depends on (with the seed, a run is reproducible)."""

    protocol: str = "beaver"
    nodes: int = 16
    gateways: int = 2
    externals: int = 8
    relays: int | None = None
    """How many of the out-group processes are relays (default: half); the rest are clients."""
    snapshots: int = 200
    tau_min: float = 33 * US
    """The true shortest external causal chain of this world (seconds)."""
    controller_tau_min: float | None = None
    """The bound the coordinator checks (default: the true tau_min)."""
    window: int = 16
    id_bits: int = 6
    packet_lifetime: float = DEFAULT_PACKET_LIFETIME
    """The longest a stamped packet may be in flight, as the coordinator assumes (seconds);
    the world's delays stay far below it (a run lists any packet that took longer)."""
    seed: int = 1
    workload: Workload = field(default_factory=Workload)
    latencies: Latencies = field(default_factory=Latencies)
    node_class: PiggybackNodeFactory | None = None
    """Another implementation of the in-group node rule for a piggybacking protocol
    (``beaver simulate --node-class``, the classroom labs); None: the core's node."""

    def __post_init__(self) -> None:
        chosen = self.chosen_protocol
        if self.nodes < 2:
            raise ValueError(f"need at least 2 in-group nodes, got {self.nodes}")
        if self.gateways < 0:
            raise ValueError(f"gateway count must be >= 0, got {self.gateways}")
        if chosen.uses_gateways and self.gateways < 1:
            raise ValueError(f"{self.protocol} needs at least 1 gateway, got {self.gateways}")
        if self.externals < 0:
            raise ValueError(f"out-group process count must be >= 0, got {self.externals}")
        if self.externals and not self.gateways:
            raise ValueError("out-group processes need at least 1 gateway to reach the in-group")
        if not 0 <= self.relay_count <= self.externals:
            raise ValueError(f"relays must be in 0..{self.externals}, got {self.relays}")
        if self.snapshots < 0:
            raise ValueError(f"snapshot count must be >= 0, got {self.snapshots}")
        if not 0 < self.tau_min < math.inf:
            raise ValueError(f"tau_min must be > 0 and finite, got {self.tau_min}")
        if not self.checked_tau_min > 0:
            raise ValueError(f"controller tau_min must be > 0, got {self.checked_tau_min}")
        if not 0 < self.packet_lifetime < math.inf:
            raise ValueError(f"packet lifetime must be > 0 and finite, got {self.packet_lifetime}")
        IdSpace(self.id_bits, self.window)

    @property
    def chosen_protocol(self) -> Protocol:
        """The protocol, with ``node_class`` as its in-group node when one is given."""
        chosen = protocol(self.protocol)
        if self.node_class is None:
            return chosen
        return chosen.with_node_class(self.node_class)

    @property
    def relay_count(self) -> int:
        return self.externals // 2 if self.relays is None else self.relays

    @property
    def checked_tau_min(self) -> float:
        return self.tau_min if self.controller_tau_min is None else self.controller_tau_min


@dataclass
class Run:
    """What one simulation produced: the protocol's view and the ground truth."""

    config: WorldConfig
    statuses: list[SnapshotStatus]
    recorded: dict[int, list[int]]
    """Per snapshot, the message ids the protocol recorded as in flight."""
    log: EventLog
    extra_messages: int
    rejected_messages: int
    rejected_reports: int
    events: int
    simulated_s: float
    overdue: list[int]
    """Stamped messages delivered later than the packet lifetime after their stamp."""
    unstarted_adoptions: int
    """Times a node moved to an id the coordinator had not started."""


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
        self.engine = Engine()
        self.latencies = config.latencies
        self.workload = config.workload
        self.protocol = config.chosen_protocol
        space = IdSpace(config.id_bits, config.window)
        width = len(str(config.nodes - 1))
        self.names = [f"n{i:0{width}d}" for i in range(config.nodes)]
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
        self._sent = [0] * config.nodes
        self._received = [0] * config.nodes
        self._next_message = 0
        self._channel_clear: dict[int, float] = {}
        """Per in-group channel (i * N + j), when its last message is delivered (FIFO)."""
        self._relay_floor = dict.fromkeys(self.relays, 0.0)
        """Per relay, the earliest time its next message may cross a gateway."""
        self._started = 0
        self._last_start = math.inf
        self._waiting_to_start = False
        self._waiting_since = math.inf
        self._wake_at = math.nan
        """When a retry of the waiting start is scheduled (nan: none)."""

    # -- running --------------------------------------------------------------------------

    def run(self, progress: Callable[[], None] | None = None) -> Run:
        """Run until every snapshot is started and the world has drained."""
        sources = [
            PoissonSource(self.engine, self.rng, self.workload.message_rate_hz * len(self.nodes),
                          self._ingroup_message, self._traffic_on),
            PoissonSource(self.engine, self.rng, self.workload.request_rate_hz * len(self.clients),
                          self._client_request, self._traffic_on),
        ]
        for source in sources:
            source.start()
        if self.config.snapshots:
            self.engine.after(self._start_gap(), self._start_tick)
        self.engine.run(progress)
        self._cuts.close()
        return Run(
            config=self.config,
            statuses=self.coordinator.statuses(),
            recorded=dict(self.recorded),
            log=self.log,
            extra_messages=self.extra_messages,
            rejected_messages=self.rejected_messages,
            rejected_reports=self.rejected_reports,
            events=self.engine.events_run,
            simulated_s=self.engine.now,
            overdue=self.overdue,
            unstarted_adoptions=self.unstarted_adoptions,
        )

    @property
    def started(self) -> int:
        return self._started

    @property
    def stalled(self) -> bool:
        """The window stayed full for ``give_up_s``: a snapshot never finishes, so the
        world stops starting snapshots (and drains) instead of waiting forever."""
        return self.engine.now - self._waiting_since >= self.workload.give_up_s

    def _traffic_on(self) -> bool:
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
            self.engine.at(max(wake, self.engine.now), self._start_if_waiting)

    def _start(self) -> None:
        _, commands = self.coordinator.start(self.engine.now)
        self._started += 1
        if self._started % FORGET_EVERY == 0:
            self.coordinator.forget(self.coordinator.oldest_unfinished - 1)
        if self._started < self.config.snapshots:
            self.engine.after(self._start_gap(), self._start_tick)
        else:
            self._last_start = self.engine.now
        self._carry_out(commands)

    def _start_if_waiting(self) -> None:
        if not self._waiting_to_start or self.stalled:
            return
        if self.coordinator.can_start(self.engine.now):
            self._waiting_to_start = False
            self._waiting_since = math.inf
            self._start()
        else:
            self._wake_for_lifetime()

    def _carry_out(self, commands: list[Command]) -> None:
        engine, rng = self.engine, self.rng
        for command in commands:
            if isinstance(command, NotifyNode):
                delay = self.latencies.notification.draw(rng)
                engine.after(delay, self._notify, self.index[command.node], command.snapshot_id)
            elif isinstance(command, UpdateGateway):
                delay = self.latencies.gateway_leg.draw(rng)
                gateway = self.gateway_index[command.gateway]
                engine.after(delay, self._update_gateway, gateway, command.snapshot_id)

    def _update_gateway(self, gateway: int, snapshot_id: int) -> None:
        self.gateways[gateway].set_id(snapshot_id)
        delay = self.latencies.gateway_leg.draw(self.rng)
        self.engine.after(delay, self._gateway_acked, gateway, snapshot_id)

    def _gateway_acked(self, gateway: int, snapshot_id: int) -> None:
        name = self.gateways[gateway].name
        self._carry_out(self.coordinator.gateway_acked(name, snapshot_id, self.engine.now))
        self._start_if_waiting()

    def _notify(self, node: int, snapshot_id: int) -> None:
        self._settle(node, self.nodes[node].notify(snapshot_id, self.engine.now))

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
        now = self.engine.now
        coordinator = self.coordinator
        for local in receipt.snapshots:
            self._cuts.reported(node, local)
            try:
                self._completed(coordinator.add_local(local, now))
            except InvalidReport:
                self.rejected_reports += 1
        for record in receipt.in_flight:
            for k in range(record.first_id, record.last_id + 1):
                self.recorded[k].append(record.message)
            try:
                self._completed(coordinator.add_in_flight(record, now))
            except InvalidReport:
                self.rejected_reports += 1
        for peer, marker in receipt.outgoing:
            self.extra_messages += 1
            self._on_channel(node, self.index[peer], self._deliver_marker, marker)
        if receipt.snapshots or receipt.in_flight:
            self._start_if_waiting()

    def _completed(self, snapshot_ids: list[int]) -> None:
        if self._on_complete is not None:
            for k in snapshot_ids:
                self._on_complete(self.coordinator.assemble(k))

    def _new_message(self) -> int:
        self._next_message += 1
        return self._next_message

    def _on_channel(
        self, sender: int, receiver: int, action: Callable[..., None], *args: object
    ) -> float:
        """Schedule ``action(sender, receiver, *args)`` on the FIFO channel sender -> receiver.

        Returns the arrival time.
        """
        arrival = self.engine.now + self.latencies.ingroup_link.draw(self.rng)
        channel = sender * len(self.nodes) + receiver
        arrival = max(arrival, self._channel_clear.get(channel, 0.0))
        self._channel_clear[channel] = arrival
        self.engine.at(arrival, action, sender, receiver, *args)
        return arrival

    def _ingroup_message(self) -> None:
        rng, count = self.rng, len(self.nodes)
        sender = self._pick(count)
        if self.relays and rng.random() < self.workload.relay_share:
            self._to_relay(sender)
            return
        receiver = self._pick(count - 1)
        if receiver >= sender:
            receiver += 1
        now = self.engine.now
        wire = self.nodes[sender].send(self.names[receiver], now)
        message = self._new_message()
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        arrival = self._on_channel(sender, receiver, self._deliver, message, wire)
        if arrival - now > self._lifetime:
            self.overdue.append(message)
        if self.stamping and rng.random() < self.workload.vip_share:
            gateway = self.gateways[self._pick_gateway()]
            self.engine.at((now + arrival) / 2, gateway.observe_ingroup, wire)

    def _deliver(self, sender: int, receiver: int, message: int, wire: int) -> None:
        node = self.nodes[receiver]
        receipt = node.receive(wire, self.names[sender], self.engine.now, message)
        self._settle(receiver, receipt)
        self._record_receive(receiver, message, receipt)
        if node.current > self.coordinator.newest:
            self.unstarted_adoptions += 1

    def _deliver_marker(self, sender: int, receiver: int, marker: Marker) -> None:
        node = self.nodes[receiver]
        self._settle(receiver, node.receive_marker(marker, self.names[sender], self.engine.now))

    def _deliver_inbound(self, receiver: int, message: int, wire: int) -> None:
        node = self.nodes[receiver]
        receipt = node.receive(wire, None, self.engine.now, message)
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
        rng, now = self.rng, self.engine.now
        relay = self.relays[self._pick(len(self.relays))]
        self.nodes[sender].send(None, now)
        message = self._new_message()
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        chain = self.latencies.chain(self.config.tau_min, rng)
        self.engine.after(chain * RELAY_RECEIVES_AT, self._relay_receive, relay, message, now)
        self.engine.after(chain * RELAY_SENDS_AT, self._relay_forward, relay, sender, now + chain)

    def _relay_receive(self, relay: str, message: int, sent_at: float) -> None:
        self.log.receive(relay, message)
        floor = sent_at + self.config.tau_min
        if floor > self._relay_floor[relay]:
            self._relay_floor[relay] = floor

    def _relay_forward(self, relay: str, origin: int, at_gateway: float) -> None:
        """The relay's new message, caused by what it received, to another in-group node."""
        receiver = self._pick(len(self.nodes) - 1)
        if receiver >= origin:
            receiver += 1
        message = self._new_message()
        self.log.send(relay, message)
        arrival = max(at_gateway, self._relay_floor[relay])
        self.engine.at(arrival, self._cross_gateway, self._pick_gateway(), receiver, message)

    def _client_request(self) -> None:
        rng = self.rng
        client = self.clients[self._pick(len(self.clients))]
        receiver = self._pick(len(self.nodes))
        message = self._new_message()
        self.log.send(client, message)
        delay = self.latencies.client_to_gateway.draw(rng)
        self.engine.after(delay, self._cross_gateway, self._pick_gateway(), receiver, message)

    def _pick_gateway(self) -> int:
        return self._pick(len(self.gateways))

    def _pick(self, count: int) -> int:
        """A uniform choice among ``0..count-1`` (one call into the generator)."""
        return int(self._random() * count)

    def _cross_gateway(self, gateway: int, receiver: int, message: int) -> None:
        wire = self.gateways[gateway].stamp() if self.stamping else UNMARKED
        delay = self.latencies.gateway_to_node.draw(self.rng)
        if delay > self._lifetime and self.stamping:
            self.overdue.append(message)
        self.engine.after(delay, self._deliver_inbound, receiver, message, wire)
