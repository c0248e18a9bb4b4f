"""The snapshot coordinator: start, gateway phase, validity, completeness, assembly.

To start snapshot k the coordinator records t0 and asks every gateway to
stamp k (:class:`UpdateGateway`); t1 is when the last gateway acknowledged.
Beaver's validity rule: if ``t1 - t0 < tau_min``, where tau_min is the
shortest time any external causal chain (in-group -> out-group -> gateway)
takes, no message caused by a post-snapshot event can cross a gateway that
still stamps an older id, so the snapshot is causally consistent; otherwise
it is reported invalid. After t1 (or at start, for protocols without
gateways) the coordinator tells in-group nodes directly, so idle nodes
snapshot too.

Completeness, for counting protocols (Beaver, Lai-Yang): every node has
reported a local snapshot covering k, and the in-flight messages recorded
for k equal the in-group messages sent with ids below k minus those
received before the receivers' snapshot k (the per-peer counts in the
local snapshots). For marker protocols a node reports only when its
channels are closed, and polling records no channel state: there, every
node having reported is completeness.

Which ids may still be on the wire, and so when a snapshot may start, is
:mod:`beaver.wire_floor`; the checks that refuse a report are
:mod:`beaver.refusals`.

Times passed in are the coordinator's clock; every argument is checked
before any state changes.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from math import isfinite

import numpy as np

from beaver.ids import IdSpace, InvalidId, require_id
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
from beaver.refusals import InvalidInput, ReportChecks, require_time
from beaver.reported_states import ReportedStates
from beaver.snapshot_status import GlobalSnapshot, Notify, SnapshotStatus
from beaver.wire_floor import DEFAULT_PACKET_LIFETIME, WireFloor


class Coordinator(WireFloor, ReportChecks):
    """Protocol-independent snapshot bookkeeping, parameterised by the protocol's rules."""

    def __init__(
        self,
        nodes: Iterable[str],
        *,
        gateways: Iterable[str] = (),
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        notify: Notify = Notify.ALL,
        counts_channels: bool = True,
        update_timeout: float = math.inf,
        packet_lifetime: float = DEFAULT_PACKET_LIFETIME,
        broadcast: bool = False,
    ):
        """``broadcast``: tell every node with one :class:`NotifyNodes` command rather than a
        :class:`NotifyNode` per node (for a runtime that sends them all at once)."""
        self.nodes = tuple(sorted(set(nodes)))
        if not self.nodes:
            raise InvalidInput("a snapshot needs at least one in-group node")
        self.gateways = tuple(sorted(set(gateways)))
        for name in (*self.nodes, *self.gateways):
            if not isinstance(name, str):
                raise InvalidInput(f"node and gateway names are strings, got {name!r}")
        if type(tau_min) not in (int, float) or not tau_min >= 0:
            raise InvalidInput(f"tau_min must be a number of seconds >= 0, got {tau_min!r}")
        if type(update_timeout) not in (int, float) or not update_timeout > 0:
            raise InvalidInput(f"update_timeout must be a number of seconds > 0, "
                               f"got {update_timeout!r}")
        require_time(packet_lifetime, "packet_lifetime")
        if packet_lifetime < 0:
            raise InvalidInput(f"packet_lifetime must be >= 0 seconds, got {packet_lifetime}")
        self.tau_min = tau_min
        self.space = space or IdSpace()
        self.notify = notify
        self.counts_channels = counts_channels
        self.update_timeout = update_timeout
        self.broadcast = broadcast
        self.newest = 0
        self.rejected_reports = 0
        self._status: dict[int, SnapshotStatus] = {}
        self._unfinished: set[int] = set()
        self._gateway_ids = dict.fromkeys(self.gateways, 0)
        """The newest id each gateway acknowledged (it stamps at least that one)."""
        self._known = frozenset(self.nodes)
        self._index = {name: i for i, name in enumerate(self.nodes)}
        """Each node's number: its place in ``nodes``."""
        self._last_reported = array("q", [0]) * len(self.nodes)
        """Per node (by number), the last id it reported."""
        self._group: tuple[str, ...] | None = None
        self._group_indices = array("q")
        """The last group whose members were all found in-group, and their numbers."""
        self._states = ReportedStates(self.nodes)
        self._in_flight: dict[int, list[InFlight]] = {}
        self._reported_through: dict[int, int] = {0: len(self.nodes)}
        """How many nodes' last reported id is each id (ids no node stopped at: absent)."""
        self._everyone_through = 0
        self._balance_from: dict[int, int] = {}
        """Sent minus received in-group messages, by the first id of the reporting snapshot."""
        self._balance_through = 0
        """The same, summed over every id every node has reported."""
        self._missing: dict[int, int] = {}
        """Per snapshot every node reported: in-flight messages not recorded yet."""
        self._init_floor(packet_lifetime)

    # -- starting and the gateway phase -------------------------------------------------

    @property
    def oldest_unfinished(self) -> int:  # type: ignore[override]
        """The oldest started snapshot that is not finished (``newest + 1`` if none)."""
        return min(self._unfinished, default=self.newest + 1)

    def start(self, now: float) -> tuple[int, list[Command]]:
        """Start the next snapshot at ``now`` (t0); returns its id and what to send."""
        require_time(now)
        if not self.can_start(now):
            raise RuntimeError(f"{self.window} snapshots in flight; "
                               f"wait for {self.start_holdup(now)}")
        self.newest += 1
        k = self.newest
        status = SnapshotStatus(k, t0=now, pending_gateways=set(self.gateways))
        self._status[k] = status
        self._unfinished.add(k)
        self._in_flight[k] = []
        if self.gateways:
            return k, [UpdateGateway(gateway, k) for gateway in self.gateways]
        status.t1, status.valid = now, True
        return k, self._notify_nodes(k)

    def gateway_acked(self, gateway: str, snapshot_id: int, now: float) -> list[Command]:
        """Gateway ``gateway`` acknowledged stamping ``snapshot_id`` at ``now``.

        A late acknowledgement (after the update was failed) does not change
        the snapshot, but shows the gateway no longer stamps older ids.
        """
        self._check_gateway_event(gateway, snapshot_id, now)
        status = self._status.get(snapshot_id)
        if status is not None and self._gateway_ids.get(gateway, snapshot_id) < snapshot_id:
            self._gateway_ids[gateway] = snapshot_id
            self._raise_floor()
        if status is None or gateway not in status.pending_gateways:
            return []
        status.pending_gateways.discard(gateway)
        status.gateway_acks[gateway] = now
        return self._gateway_progress(status, now)

    def lower_tau_min(self, tau_min: float) -> list[int]:
        """An external causal chain shorter than the bound was seen: lower the bound.

        Validity is decided again with the lower bound for every snapshot the
        coordinator remembers; a snapshot can only lose validity, never gain
        it. Returns the ids that did. A higher value changes nothing: a bound
        that turned out too low stays on the safe side.
        """
        if type(tau_min) not in (int, float) or tau_min != tau_min:
            raise InvalidInput(f"tau_min must be a number of seconds, got {tau_min!r}")
        if not 0 < tau_min < self.tau_min:
            return []
        self.tau_min = tau_min
        revoked = []
        for status in self._status.values():
            if status.valid and status.t1 is not None and status.t1 - status.t0 >= tau_min:
                status.valid = False
                revoked.append(status.snapshot_id)
        return revoked

    def gateway_failed(self, gateway: str, snapshot_id: int, now: float) -> list[Command]:
        """The update of ``gateway`` to ``snapshot_id`` failed: the snapshot is invalid."""
        self._check_gateway_event(gateway, snapshot_id, now)
        status = self._status.get(snapshot_id)
        if status is None or gateway not in status.pending_gateways:
            return []
        status.pending_gateways.discard(gateway)
        status.failed_gateways.add(gateway)
        return self._gateway_progress(status, now)

    def expire(self, now: float) -> list[Command]:
        """Fail every gateway update older than ``update_timeout``."""
        self._tick(require_time(now))
        commands: list[Command] = []
        for k in sorted(self._unfinished):
            status = self._status[k]
            if status.pending_gateways and now - status.t0 >= self.update_timeout:
                for gateway in sorted(status.pending_gateways):
                    commands += self.gateway_failed(gateway, k, now)
        return commands

    def _check_gateway_event(self, gateway: object, snapshot_id: object, now: object) -> None:
        if not isinstance(gateway, str):
            raise InvalidInput(f"gateway names are strings, got {gateway!r}")
        try:
            require_id(snapshot_id)
        except InvalidId as error:
            raise InvalidInput(str(error)) from None
        self._tick(require_time(now))

    def gateway_restarted(
        self, gateway: str, stamping: int | None, now: float
    ) -> tuple[list[Command], list[int]]:
        """Gateway ``gateway`` came back after a crash, stamping ``stamping``.

        ``None`` is the safe restart: the gateway has no id and forwards no
        out-group traffic until it is set. A gateway that stamps an id older
        than one it acknowledged breaks the protocol's assumption for every
        snapshot after that id: those lose their validity (the ones decided
        already are returned) and the gateway's id counts as alive again (the
        live floor goes back to it).
        Returns the update that brings the gateway to the newest id, and the
        revoked snapshot ids.
        """
        self._check_gateway_event(gateway, 0 if stamping is None else stamping, now)
        if gateway not in self._gateway_ids:
            raise InvalidInput(f"unknown gateway {gateway!r}")
        revoked = []
        if stamping is not None and stamping < self._gateway_ids[gateway]:
            self._gateway_ids[gateway] = stamping
            self._lower_floor(stamping)
            for k in range(stamping + 1, self.newest + 1):
                status = self._status[k]
                if status.valid is None:
                    status.failed_gateways.add(gateway)
                elif status.valid:
                    status.valid = False
                    revoked.append(k)
        commands: list[Command] = [UpdateGateway(gateway, self.newest)] if self.newest else []
        return commands, revoked

    def retransmit(self, now: float) -> list[Command]:
        """What to send again when answers are ``update_timeout`` overdue.

        Every gateway that has not acknowledged the newest snapshot started
        at least ``update_timeout`` ago is sent the newest id (its update or
        ack was lost, or it restarted); every node that has not reported the
        newest such snapshot whose gateway phase is over, while it is
        unfinished, is told about it again (its notification was lost).
        Duplicates are harmless: ids only grow.
        """
        self._tick(require_time(now))
        overdue = self.newest
        while overdue > 0 and now - self._status[overdue].t0 < self.update_timeout:
            overdue -= 1
        if overdue == 0:
            return []
        commands: list[Command] = [
            UpdateGateway(gateway, self.newest)
            for gateway, acked in self._gateway_ids.items() if acked < overdue
        ]
        told = overdue
        while told > 0 and self._status[told].valid is None:
            told -= 1
        if told >= self.oldest_unfinished:
            targets = self.nodes[:1] if self.notify is Notify.INITIATOR else self.nodes
            commands += [NotifyNode(node, told) for node in targets
                         if self.needs_notify(node, told)]
        return commands

    def needs_notify(self, node: str, snapshot_id: int) -> bool:
        """Whether telling ``node`` about snapshot ``snapshot_id`` can still change anything.

        Not once the node reported a local snapshot that covers the id: its id
        only grows, so the notification would find it at or past the id and do
        nothing. A service that delays notifications (a spread) asks again
        when it is about to send one."""
        return self._last_reported[self._index[node]] < snapshot_id

    def _gateway_progress(self, status: SnapshotStatus, now: float) -> list[Command]:
        """After the last gateway answered: t1, validity, then tell the nodes.

        A gateway that failed leaves t1 unknown, so the snapshot is invalid;
        the nodes still move on to it, so later snapshots are not held up.
        """
        if status.pending_gateways:
            return []
        if status.failed_gateways:
            status.valid = False
        else:
            status.t1 = max(status.gateway_acks.values())
            status.valid = status.t1 - status.t0 < self.tau_min
        self._check_finished(status.snapshot_id)
        return self._notify_nodes(status.snapshot_id)

    def _notify_nodes(self, k: int) -> list[Command]:
        if self.notify is Notify.INITIATOR:
            return [NotifyNode(self.nodes[0], k)]
        if self.broadcast:
            return [NotifyNodes(self.nodes, k)]
        return [NotifyNode(node, k) for node in self.nodes]

    # -- reports from the nodes ---------------------------------------------------------

    def add_local(self, local: LocalSnapshot, now: float) -> list[int]:
        """Take a node's local snapshot; returns the snapshots it completed.

        The report is checked whole first: a refused one changes nothing."""
        if type(now) is not float or not isfinite(now):
            require_time(now)
        index = self._check_local(local)
        _, first, last, _, state, sent, received = local
        balance = sum(sent.values()) - sum(received.values()) if sent or received else 0
        return self._record_local(index, first, last, state, balance, now)

    def add_member_local(self, local: MemberSnapshot, now: float) -> list[int]:
        """Take the local snapshot of a group's member (:class:`MemberSnapshot`); returns
        the snapshots it completed, as :meth:`add_local` does."""
        if type(now) is not float or not isfinite(now):
            require_time(now)
        # the common case checked in one go (a hot path); anything else by _check_member
        if type(local) is MemberSnapshot:
            node, first, last, taken_at, state, sent, received, group = local
            try:
                index = self._index[node]
            except (KeyError, TypeError):
                index = -1
            if (index >= 0 and group is self._group
                    and type(first) is type(last) is type(sent) is type(received) is int
                    and first == self._last_reported[index] + 1 <= last <= self.newest
                    and sent >= 0 <= received and type(taken_at) is float
                    and isfinite(taken_at)):
                return self._record_local(index, first, last, state, sent - received, now)
        index = self._check_member(local)
        _, first, last, _, state, sent, received, _ = local
        return self._record_local(index, first, last, state, sent - received, now)

    def add_locals(self, batch: MemberSnapshots, now: float) -> list[int]:
        """Take the local snapshots of distinct members of a group at once; returns the
        snapshots they completed, in the order :meth:`add_member_local` of each in turn
        would, and leaves the coordinator as that would.

        The batch is checked whole first, with the refusals a report alone gets (the first
        refused element's): a refused batch changes nothing and counts as one refusal."""
        require_time(now)
        indices = self._check_members(batch)
        if not indices.size:
            return []
        if now > self._clock:
            self._tick(now)
        _, _, firsts, lasts, _, states, sent, received = batch
        np.frombuffer(self._last_reported, dtype=np.int64)[indices] = lasts
        nodes = self.nodes
        self._states.add_many([nodes[i] for i in indices.tolist()], firsts, lasts, states)
        through = self._reported_through
        # each node's report moves it from its last reported id to its new last id
        for value, count in Counter((firsts - 1).tolist()).items():
            left = through[value] - count
            if left:
                through[value] = left
            else:
                del through[value]
        for value, count in Counter(lasts.tolist()).items():
            through[value] = through.get(value, 0) + count
        if self.counts_channels:
            balances = sent - received
            counted = np.flatnonzero(balances)
            if counted.size:
                balance_from = self._balance_from
                for first, balance in zip(firsts[counted].tolist(), balances[counted].tolist(),
                                          strict=True):
                    balance_from[first] = balance_from.get(first, 0) + balance
        if self._everyone_through in through:
            return []
        return self._advance(now)

    def _record_local(self, index: int, first: int, last: int, state: object, balance: int,
                      now: float) -> list[int]:
        """Record node ``index``'s checked report of ``first..last`` (``balance``: the
        in-group messages it sent minus those it received since its previous one)."""
        if now > self._clock:
            self._tick(now)
        self._last_reported[index] = last
        self._states.add(self.nodes[index], first, last, state)
        through = self._reported_through
        left = through[first - 1] - 1
        if left:
            through[first - 1] = left
        else:
            del through[first - 1]
        through[last] = through.get(last, 0) + 1
        if balance and self.counts_channels:
            self._balance_from[first] = self._balance_from.get(first, 0) + balance
        if self._everyone_through in through:
            return []
        return self._advance(now)

    def _advance(self, now: float) -> list[int]:
        """Every node has reported past ``_everyone_through``: the snapshots that makes
        decidable, and those of them now complete."""
        through, done = self._reported_through, []
        while self._everyone_through not in through:
            k = self._everyone_through = self._everyone_through + 1
            self._balance_through += self._balance_from.pop(k, 0)
            if self.counts_channels:
                self._missing[k] = self._balance_through - len(self._in_flight[k])
            else:
                self._missing[k] = 0
            if self._missing[k] == 0:
                done.append(self._complete(k, now))
        return done

    def add_in_flight(self, record: InFlight, now: float) -> list[int]:
        """Take an in-flight message; returns the snapshots it completed."""
        require_time(now)
        self._check_in_flight(record)
        self._tick(now)
        done = []
        for k in range(record.first_id, record.last_id + 1):
            self._in_flight[k].append(record)
            if k in self._missing:
                self._missing[k] -= 1
                if self._missing[k] == 0:
                    done.append(self._complete(k, now))
        return done

    def _complete(self, k: int, now: float) -> int:
        del self._missing[k]
        status = self._status[k]
        status.complete, status.completed_at = True, now
        self._check_finished(k)
        return k

    def _check_finished(self, k: int) -> None:
        if self._status[k].finished and k in self._unfinished:
            self._unfinished.discard(k)
            self._raise_floor()

    # -- reading --------------------------------------------------------------------------

    def status(self, k: int) -> SnapshotStatus:
        try:
            return self._status[k]
        except KeyError:
            raise KeyError(f"no snapshot {k}") from None

    def statuses(self) -> list[SnapshotStatus]:
        return [self._status[k] for k in sorted(self._status)]

    def assemble(self, k: int) -> GlobalSnapshot:
        """The global snapshot k from what the nodes reported (complete or not)."""
        status = self.status(k)
        states = self._states.covering(k)
        return GlobalSnapshot(k, status, states, tuple(self._in_flight.get(k, ())))

    def forget(self, k: int) -> None:
        """Drop the stored states and messages of finished snapshots up to ``k``."""
        self._states.forget(k, self._unfinished)
        for old in [s for s in self._in_flight if s <= k and s not in self._unfinished]:
            del self._in_flight[old]
