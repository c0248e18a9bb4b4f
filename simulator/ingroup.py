"""The in-group paths of the simulated world: FIFO channels, delivery, receipts.

In-group -> in-group messages go direct and FIFO per channel, stamped by
the sender (``node.send``); a lost packet is sent again after the
retransmission timeout and holds its channel meanwhile. Under a stamping
protocol, messages sent to a VIP also pass a gateway on the way, which sees
their stamp (``observe_ingroup``: optimistic marking) and forwards them
unchanged. Chandy-Lamport markers travel on the same channels. A message to
a node that is down waits in the sender's transport until it is back; an
inbound message (from the out-group, through a gateway) to a node that is
down is dropped.

Mixed into :class:`~simulator.world.World`, whose state it uses (nodes,
clocks, crash times, pending notifications, the ground-truth log); a stamped
packet slower than the packet lifetime is listed in ``overdue``.
"""

from __future__ import annotations

from collections.abc import Callable

from beaver.records import NOTHING, Marker, Receipt
from simulator.engine import push


class InGroupTraffic:
    """In-group messages and markers, and the delivery of every message to a node."""

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
        if self._data_faults:
            arrival += self._channel_faults()
        channel = sender * len(self.nodes) + receiver
        clear = self._channel_clear
        held = clear.get(channel, 0.0)
        if held > arrival:
            arrival = held
        clear[channel] = arrival
        push(self._queue, (arrival, self._ticket(), action, (sender, receiver, *args)))
        return arrival

    def _channel_faults(self) -> float:
        """What data loss and duplication do to one packet on a channel: its extra delay."""
        faults = self.faults
        extra = 0.0
        if faults.data_loss:
            lost = faults.retransmissions(faults.data_loss, self.rng)
            self.counts.data_lost += lost
            extra = lost * faults.retransmit_timeout
        if faults.data_duplicate and self._random() < faults.data_duplicate:
            self.counts.data_duplicated += 1
        return extra

    def _ingroup_message(self) -> None:
        """A random in-group node sends: to a relay, or on its channel to a random peer.

        The hot path of a run (one call per in-group message): its events go straight
        onto the engine's heap.
        """
        now, pick = self.engine.now, self._pick
        count = len(self.nodes)
        sender = pick(count)
        if self._down_until[sender] > now:
            return
        if self._pending_at[sender] <= now:
            self._catch_up(sender)
        if self.relays and self._random() < self.workload.relay_share:
            self._to_relay(sender)
            return
        receiver = pick(count - 1)
        if receiver >= sender:
            receiver += 1
        wire = self.nodes[sender].send(self.names[receiver], now + self._clock[sender])
        self._next_message = message = self._next_message + 1
        self._sequences[sender].append(message)
        self._sent[sender] += 1
        arrival = self._on_channel(sender, receiver, self._deliver, message, wire)
        if arrival - now > self._lifetime:
            self.overdue.append(message)
        if self.stamping and self._random() < self.workload.vip_share:
            push(self._queue, ((now + arrival) / 2, self._ticket(), self._observe,
                               (self._pick_gateway(), wire)))

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
        if receipt is NOTHING:  # delivered, nothing else to do (most messages)
            self._sequences[receiver].append(~message)
            self._received[receiver] += 1
        else:
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
        if receipt is NOTHING:  # delivered, nothing else to do (most messages)
            self._sequences[receiver].append(~message)
            self._received[receiver] += 1
        else:
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
