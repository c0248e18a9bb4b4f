"""The out-group paths of the simulated world: relays, clients, gateways.

Out-group -> in-group messages cross one gateway, chosen at random. Under a
protocol that ``uses_gateways`` the gateway stamps the message with
:meth:`~beaver.gateway.Gateway.stamp` when it crosses; otherwise it enters
unmarked (0). In-group -> out-group messages go direct (the out-group
ignores the stamp).

External causal chains respect the world's true tau_min: an out-group
relay that received an in-group message sent at time ts sends nothing that
crosses a gateway before ts + tau_min (unless the world injects short
chains: :mod:`simulator.faults`). A chain seen shorter than the
coordinator's bound is counted and, when the world learns tau_min, reported
to the control plane.

A relay's receipt of a message is no event of its own: the message waits in
the relay's inbox (a heap by arrival time, then by the ticket the event
would have had), and the relay takes every message that reached it before
it next acts, which is when it forwards (the forward of the same chain comes
later, so nothing is left in an inbox at the end). Only what the relay has
received when it sends matters, and it takes the messages in the order the
events would have run: the same log, one event fewer per chain.

Mixed into :class:`~simulator.world.World`, whose state it uses.
"""

from __future__ import annotations

from heapq import heappop, heappush

from beaver.ids import UNMARKED
from simulator.engine import push

RELAY_RECEIVES_AT = 0.3
"""Share of an external chain's time after which the relay has the message."""
RELAY_SENDS_AT = 0.6
"""Share of an external chain's time after which the relay sends its new message."""
SHORT_CHAIN = (0.05, 0.95)
"""A short chain (an injected fault) takes this share of tau_min, uniformly."""


class OutGroupTraffic:
    """External chains through relays, client requests, and gateway crossings."""

    def _to_relay(self, sender: int) -> None:
        """In-group ``sender`` starts an external chain through a random relay."""
        now, faults, random = self.engine.now, self.faults, self._random
        tau_min = self.config.tau_min
        relay = self.relays[self._pick(len(self.relays))]
        self.nodes[sender].send(None, now + self._clock[sender])
        self._next_message = message = self._next_message + 1
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        if faults.data_loss and random() < faults.data_loss:
            self.counts.data_lost += 1
            return
        short = bool(faults.chain_violation_share) and (
            random() < faults.chain_violation_share)
        if short:
            low, high = SHORT_CHAIN
            chain = tau_min * (low + (high - low) * random())
        else:
            chain = tau_min * (1.0 + self._chain_excess())
        queue, ticket = self._queue, self._ticket
        received_at = now + chain * RELAY_RECEIVES_AT
        if relay not in self.log.events:  # its first receive puts the relay in the log
            push(queue, (received_at, ticket(), self.log.sequence, (relay,)))
        forward = ticket()
        heappush(self._relay_inbox[relay], (received_at, forward - 0.5, message, now, short))
        push(queue, (now + chain * RELAY_SENDS_AT, forward, self._relay_forward,
                     (relay, sender, now, now + chain, short, forward)))

    def _relay_receive(
        self, relay: str, message: int, sent_at: float, short: bool = False
    ) -> None:
        self.log.receive(relay, message)
        floor = sent_at + self.config.tau_min
        if not short and floor > self._relay_floor[relay]:
            self._relay_floor[relay] = floor

    def _relay_forward(
        self, relay: str, origin: int, sent_at: float, at_gateway: float, short: bool,
        ticket: int,
    ) -> None:
        """The relay's new message, caused by what it received, to another in-group node.

        First the relay takes the messages that reached it before this event (by time,
        then ticket: the order the engine would have run them in), its own among them.
        """
        inbox, due = self._relay_inbox[relay], (self.engine.now, ticket)
        if inbox and inbox[0] < due:
            received, floor, tau_min = self.log.events[relay], self._relay_floor[relay], (
                self.config.tau_min)
            while inbox and inbox[0] < due:
                _, _, message, sent, short_chain = heappop(inbox)
                received.append(~message)
                if not short_chain and sent + tau_min > floor:
                    floor = sent + tau_min
            self._relay_floor[relay] = floor
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
        arrival = self.engine.now + self._to_gateway()
        self._inbound(client, self._pick(len(self.nodes)), arrival, self._pick_gateway())

    def _inbound(self, process: str, receiver: int, at_gateway: float, gateway: int) -> None:
        """``process`` sends a message into the in-group; it reaches ``gateway`` at
        ``at_gateway``, unless lost; a duplicate is a second message with the same past."""
        faults = self.faults
        if not (faults.data_duplicate or faults.data_loss):
            self._next_message = message = self._next_message + 1
            self.log.sequence(process).append(message)
            push(self._queue, (at_gateway, self._ticket(), self._cross_gateway,
                               (gateway, receiver, message)))
            return
        copies = 1
        if faults.data_duplicate and self._random() < faults.data_duplicate:
            copies = 2
            self.counts.data_duplicated += 1
        for copy in range(copies):
            message = self._new_message()
            self.log.send(process, message)
            if copy:
                at_gateway += self._to_gateway()
            if faults.data_loss and self._random() < faults.data_loss:
                self.counts.data_lost += 1
                continue
            self.engine.at(at_gateway, self._cross_gateway, gateway, receiver, message)

    def _pick_gateway(self) -> int:
        return self._pick(len(self.gateways))

    def _pick(self, count: int) -> int:
        """A uniform choice among ``0..count-1`` (one call into the generator)."""
        return int(self._random() * count)

    def _cross_gateway(self, gateway: int, receiver: int, message: int) -> None:
        state = self.gateways[gateway]
        if self.control.gateway_down_until[gateway] > self.engine.now or not state.ready:
            self.counts.inbound_dropped += 1
            return
        wire = state.stamp() if self.stamping else UNMARKED
        delay = self._to_node()
        if delay > self._lifetime and self.stamping:
            self.overdue.append(message)
        push(self._queue, (self.engine.now + delay, self._ticket(), self._deliver_inbound,
                           (receiver, message, wire)))
