"""The control plane of the simulated world: the coordinator and what it talks to.

The coordinator (the core's :class:`~beaver.coordinator.Coordinator`)
starts snapshots, updates gateways, notifies nodes and takes their
reports; this module carries its commands with latency and, when the world
injects them (:mod:`simulator.faults`), with loss, duplication, reordering,
timeouts, retransmission and gateway crashes. Notifications of a whole
snapshot travel as one :mod:`wave <simulator.waves>`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from beaver.records import (
    Command,
    InFlight,
    LocalSnapshot,
    MemberSnapshot,
    MemberSnapshots,
    NotifyNode,
    NotifyNodes,
    UpdateGateway,
)
from beaver.refusals import InvalidReport
from simulator.engine import push
from simulator.faults import REORDER_SPREAD, ROLLBACK_IDS

if TYPE_CHECKING:
    from simulator.world import World


class ControlPlane:
    """Carries the coordinator's commands and the answers to them, faults included."""

    def __init__(self, world: World):
        self.world = world
        self.engine = world.engine
        self.coordinator = world.coordinator
        self.faults = world.config.faults
        self.counts = world.counts
        self._gateway_leg = world.delays["gateway_leg"]
        self._notification = world.latencies.notification
        self._report_clear = [0.0] * len(world.nodes)
        """Per node, when its report stream delivers its last report (FIFO)."""
        self.gateway_down_until = [0.0] * len(world.gateways)
        self._add_member_local = world.coordinator.add_member_local
        self._datagram_faults = bool(self.faults.control_duplicate or self.faults.control_loss
                                     or self.faults.control_reorder)
        self._queue, self._ticket = self.engine.queue, self.engine.ticket
        self.revoked: set[int] = set()

    # -- commands out ---------------------------------------------------------------------

    def carry_out(self, commands: list[Command]) -> None:
        """Send ``commands``: a notification of every node for one snapshot goes as a wave."""
        if not commands:
            return
        world = self.world
        first, last = commands[0], commands[-1]
        if (len(commands) == len(world.nodes) and type(first) is NotifyNode
                and type(last) is NotifyNode and first.snapshot_id == last.snapshot_id):
            self._wave(first.snapshot_id)
            return
        for command in commands:
            kind = type(command)
            if kind is UpdateGateway:
                self._datagram(self._gateway_leg, self._update_gateway,
                               world.gateway_index[command.gateway], command.snapshot_id)
            elif kind is NotifyNodes and len(command.nodes) == len(world.nodes):
                self._wave(command.snapshot_id)
            else:
                for node in command.nodes if kind is NotifyNodes else (command.node,):
                    self._datagram(self._notification_delay, world.notify_one,
                                   world.index[node], command.snapshot_id)

    def _notification_delay(self) -> float:
        return self._notification.draw(self.world.rng)

    def _datagram(self, delay, action, *args) -> None:
        """Send a control datagram: ``action(*args)`` after ``delay()``, unless lost."""
        faults, rng = self.faults, self.world.rng
        if not self._datagram_faults:
            push(self._queue, (self.engine.now + delay(), self._ticket(), action, args))
            return
        copies = 1
        if faults.control_duplicate and rng.random() < faults.control_duplicate:
            copies = 2
            self.counts.control_duplicated += 1
        for _ in range(copies):
            if faults.control_loss and rng.random() < faults.control_loss:
                self.counts.control_lost += 1
                continue
            extra = rng.random() * REORDER_SPREAD if faults.control_reorder else 0.0
            self.engine.after(delay() + extra, action, *args)

    def _wave(self, snapshot_id: int) -> None:
        """Notify every node of ``snapshot_id``: one arrival time per node, one event."""
        world, faults = self.world, self.faults
        count, generator = len(world.nodes), world.generator
        arrivals = self._notification.draw_many(generator, count)
        if faults.control_reorder:
            arrivals += generator.random(count) * REORDER_SPREAD
        if faults.control_loss:
            lost = generator.random(count) < faults.control_loss
            self.counts.control_lost += int(lost.sum())
            arrivals[lost] = math.inf
        if faults.control_duplicate:
            copies = generator.random(count) < faults.control_duplicate
            self.counts.control_duplicated += int(copies.sum())
            again = self._notification.draw_many(generator, count)
            if faults.control_loss:
                again[generator.random(count) < faults.control_loss] = math.inf
            arrivals = np.where(copies, np.minimum(arrivals, again), arrivals)
        end = world.waves.add(snapshot_id, self.engine.now + arrivals)
        if end < math.inf:
            self.engine.at(end, world.wave_end, snapshot_id)
        else:
            world.waves.retire(snapshot_id)

    # -- gateways -------------------------------------------------------------------------

    def _update_gateway(self, gateway: int, snapshot_id: int) -> None:
        if self.gateway_down_until[gateway] > self.engine.now:
            self.counts.control_lost += 1
            return
        self.world.gateways[gateway].set_id(snapshot_id)
        self._datagram(self._gateway_leg, self._gateway_acked, gateway, snapshot_id)

    def _gateway_acked(self, gateway: int, snapshot_id: int) -> None:
        name = self.world.gateways[gateway].name
        self.carry_out(self.coordinator.gateway_acked(name, snapshot_id, self.engine.now))
        self.world.start_if_waiting()

    def gateway_crash(self) -> None:
        """A random gateway crashes; it restarts after the downtime."""
        world, now = self.world, self.engine.now
        gateway = int(world.rng.random() * len(world.gateways))
        if self.gateway_down_until[gateway] <= now:
            self.counts.gateway_crashes += 1
            self.gateway_down_until[gateway] = now + self.faults.downtime
            self.engine.at(now + self.faults.downtime, self._gateway_restart, gateway)
        if world.traffic_on():
            self.engine.after(self._crash_gap(self.faults.gateway_crash_rate_hz,
                                              len(world.gateways)), self.gateway_crash)

    def _crash_gap(self, rate_hz: float, count: int) -> float:
        return self.world.rng.expovariate(rate_hz * count)

    def _gateway_restart(self, gateway: int) -> None:
        world, restart = self.world, self.faults.gateway_restart
        state = world.gateways[gateway]
        if not world.stamping:
            return
        recovered = None
        if restart != "no-id":
            recovered = max(0, state.current - 1 - int(world.rng.random() * ROLLBACK_IDS))
            if recovered < state.current:
                self.counts.gateway_rollbacks += 1
        state.restart(recovered)
        if restart != "silent-old-id":
            delay = self._gateway_leg() + self._retransmissions() * self.faults.retransmit_timeout
            self.engine.after(delay, self._gateway_hello, gateway, recovered)

    def _gateway_hello(self, gateway: int, recovered: int | None) -> None:
        name = self.world.gateways[gateway].name
        commands, revoked = self.coordinator.gateway_restarted(name, recovered, self.engine.now)
        self.revoked.update(revoked)
        self.carry_out(commands)

    def _retransmissions(self) -> int:
        return self.faults.retransmissions(self.faults.control_loss, self.world.rng)

    def chain_measured(self, measured: float) -> None:
        """A gateway reports a chain shorter than the coordinator's bound."""
        self.revoked.update(self.coordinator.lower_tau_min(measured))

    # -- timeouts -------------------------------------------------------------------------

    def tick(self) -> None:
        """Every half timeout: fail overdue gateway updates, re-send what is overdue."""
        now = self.engine.now
        commands = self.coordinator.expire(now)
        again = self.coordinator.retransmit(now)
        self.counts.retransmitted += len(again)
        self.carry_out(commands + again)
        self.world.start_if_waiting()
        if self.world.traffic_on():
            self.engine.after(self.faults.update_timeout / 2, self.tick)

    # -- reports in -----------------------------------------------------------------------

    def report(self, record: LocalSnapshot | InFlight, node: int) -> None:
        """A node's report, over its reliable stream (at once when nothing is lost)."""
        now = self.engine.now
        delay = 0.0
        if self.faults.control_loss:
            lost = self._retransmissions()
            self.counts.report_retransmissions += lost
            delay = lost * self.faults.retransmit_timeout
        if delay == 0.0 and self._report_clear[node] <= now:
            self.deliver_report(record, node)
            return
        arrival = max(now + delay, self._report_clear[node])
        self._report_clear[node] = arrival
        self.engine.at(arrival, self.deliver_report, record, node)

    def deliver_report(self, record: LocalSnapshot | MemberSnapshot | InFlight,
                       node: int) -> None:
        """The coordinator takes ``record`` (from ``node``) now."""
        now, coordinator = self.engine.now, self.coordinator
        try:
            kind = type(record)
            if kind is MemberSnapshot:
                done = coordinator.add_member_local(record, now)
            elif kind is InFlight:
                done = coordinator.add_in_flight(record, now)
            else:
                done = coordinator.add_local(record, now)
        except InvalidReport:
            self.world.rejected_reports += 1
            return
        if done:
            self.world.completed(done)

    def deliver_member_report(self, local: MemberSnapshot, node: int) -> None:
        """:meth:`deliver_report` of a group member's local snapshot (the common report)."""
        try:
            done = self._add_member_local(local, self.engine.now)
        except InvalidReport:
            self.world.rejected_reports += 1
            return
        if done:
            self.world.completed(done)

    def deliver_reports(self, taken: MemberSnapshots) -> None:
        """The coordinator takes the group's local snapshots ``taken`` now: at once, or one
        by one if it refuses them together (then it refuses only the ones it would alone)."""
        try:
            done = self.coordinator.add_locals(taken, self.engine.now)
        except InvalidReport:
            for j, node in enumerate(taken.members.tolist()):
                self.deliver_report(taken.member(j), node)
            return
        if done:
            self.world.completed(done)
