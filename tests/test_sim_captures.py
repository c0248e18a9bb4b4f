"""The simulator's ground truth is where each node's capture callback really ran.

Node classes that record their state late (at their next call after adopting
an id) or early (a state captured at an earlier call) run in the simulator;
an independent checker (vector clocks over the world's send/receive log, cut
where the states the classes reported were captured) must agree with the
oracle on every snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.ids import IdSpace
from beaver.node import PiggybackNode
from beaver.records import NOTHING, LocalSnapshot, Receipt
from oracle import LogError
from simulator import Workload, WorldConfig, simulate

BUSY = Workload(message_rate_hz=20_000, request_rate_hz=5_000, relay_share=0.3,
                snapshot_rate_hz=5_000)


class SkewedCapture:
    """The core's node rule, but the state it reports for a snapshot is captured ``lag``
    calls late (``lag`` > 0: after adopting the id) or ``-lag`` calls early (< 0: a state
    captured before). ``reports`` keeps what it reported: (first, last, position)."""

    def __init__(self, name: str, capture: Callable[[], Any], space: IdSpace | None,
                 lag: int) -> None:
        self.name, self.lag = name, lag
        self._capture = capture
        self._node = PiggybackNode(name, lambda: None, space)
        self._owed: list[tuple[int, LocalSnapshot]] = []
        self._earlier: list[Any] = []
        self.reports: list[tuple[int, int, int]] = []

    @property
    def current(self) -> int:
        return self._node.current

    def send(self, peer: str | None, now: float) -> int:
        self._call(pay=False)  # a send carries no reports: they wait for the next receipt
        return self._node.send(peer, now)

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        paid = self._call()
        return self._with(self._node.receive(wire, sender, now, message), paid)

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        paid = self._call()
        return self._with(self._node.notify(snapshot_id, now), paid)

    def _call(self, pay: bool = True) -> tuple[LocalSnapshot, ...]:
        """One more call: capture now, and pay the reports that were waiting this long."""
        state = self._capture()
        self._earlier = [*self._earlier[-8:], state]
        paid = []
        for i, (calls, local) in enumerate(self._owed):
            self._owed[i] = (calls - 1, local)
        while pay and self._owed and self._owed[0][0] <= 0:
            paid.append(self._report(self._owed.pop(0)[1], state))
        return tuple(paid)

    def _with(self, receipt: Receipt, paid: tuple[LocalSnapshot, ...]) -> Receipt:
        taken = []
        for local in receipt.snapshots:
            if self.lag > 0:
                self._owed.append((self.lag, local))
            else:
                back = min(-self.lag, len(self._earlier) - 1)
                state = self._earlier[-1 - back]
                taken.append(self._report(local, state))
        snapshots = (*paid, *taken)
        if receipt is NOTHING and not snapshots:
            return NOTHING
        return Receipt(deliver=receipt.deliver, rejected=receipt.rejected, snapshots=snapshots,
                       in_flight=receipt.in_flight)

    def _report(self, local: LocalSnapshot, state: Any) -> LocalSnapshot:
        self.reports.append((local.first_id, local.last_id, state.position))
        return LocalSnapshot(local.node, local.first_id, local.last_id, local.taken_at, state,
                             local.sent, local.received)


def skewed(lags: dict[int, int], made: list[SkewedCapture]):
    """A node factory: node i captures ``lags.get(i, 0)`` calls late (early if negative)."""

    def make(name: str, capture: Callable[[], Any], space: IdSpace | None) -> SkewedCapture:
        node = SkewedCapture(name, capture, space, lags.get(len(made), 0))
        made.append(node)
        return node

    return make


def vector_clocks(events: dict[str, Any], ingroup: list[str]) -> dict[str, list[list[int]]]:
    """Per in-group node, the vector clock (over in-group nodes) after each of its events."""
    index = {name: i for i, name in enumerate(ingroup)}
    clock = {p: [0] * len(ingroup) for p in events}
    after: dict[str, list[list[int]]] = {n: [] for n in ingroup}
    at_send: dict[int, list[int]] = {}
    position = dict.fromkeys(events, 0)
    progressed = True
    while progressed:
        progressed = False
        for process, sequence in events.items():
            while position[process] < len(sequence):
                event = sequence[position[process]]
                if event < 0 and ~event not in at_send:
                    break
                if event < 0:
                    sent = at_send[~event]
                    clock[process] = [max(a, b) for a, b in zip(clock[process], sent, strict=True)]
                if process in index:
                    clock[process][index[process]] += 1
                    after[process].append(list(clock[process]))
                if event >= 0:
                    at_send[event] = list(clock[process])
                position[process] += 1
                progressed = True
    return after


def consistent(clocks: dict[str, list[list[int]]], cuts: dict[str, list[int]], k: int) -> bool:
    """Snapshot k from scratch: no in-group node's last event inside its cut has seen an
    in-group event outside the cut of that event's node."""
    index = {name: i for i, name in enumerate(clocks)}
    for m, after in clocks.items():
        inside = cuts[m][k - 1]
        seen = after[inside - 1] if inside else [0] * len(index)
        if any(seen[index[n]] > cuts[n][k - 1] for n in clocks):
            return False
    return True


def check_against_vector_clocks(lags: dict[int, int], seed: int, nodes: int = 3) -> int:
    made: list[SkewedCapture] = []
    outcome = simulate(WorldConfig(nodes=nodes, gateways=2, externals=6, snapshots=25,
                                   seed=seed, workload=BUSY, node_class=skewed(lags, made)))
    log = outcome.run.log
    reported = {node.name: node.reports for node in made}
    cuts: dict[str, list[int]] = {}
    for name, reports in reported.items():
        cuts[name] = []
        for first, last, position in reports:
            cuts[name] += [position] * (last + 1 - max(first, len(cuts[name]) + 1))
        assert log.captures[name] == cuts[name], "the log keeps the reported cuts"
    everyone = min(len(c) for c in cuts.values())
    clocks = vector_clocks(log.events, sorted(cuts))
    inconsistent = 0
    for verdict in outcome.verdicts[:everyone]:
        expected = consistent(clocks, cuts, verdict.snapshot_id)
        assert verdict.consistent == expected, verdict
        inconsistent += not expected
    return inconsistent


@settings(max_examples=12, deadline=None)
@given(st.dictionaries(st.integers(0, 2), st.integers(-3, 3), max_size=3),
       st.integers(0, 10**6))
def test_the_oracle_judges_the_states_node_classes_really_captured(lags, seed):
    check_against_vector_clocks(lags, seed)


def test_on_time_captures_are_consistent_and_late_ones_are_caught():
    assert check_against_vector_clocks({}, seed=5) == 0
    assert check_against_vector_clocks({0: 2, 1: 1, 2: 3}, seed=5) > 0
    assert check_against_vector_clocks({0: -2, 1: -2, 2: -1}, seed=5) > 0


def test_a_class_that_adopts_at_once_but_records_later_is_caught():
    """The issue's case: under the old log (cut where the id changed) this showed 0."""
    made: list[SkewedCapture] = []
    summary = simulate(WorldConfig(seed=2, node_class=skewed(dict.fromkeys(range(16), 1),
                                                             made))).summary
    assert summary.inconsistent_valid > 0


def test_a_state_the_capture_callback_did_not_return_is_refused():
    class Forger(PiggybackNode):
        def notify(self, snapshot_id: int, now: float) -> Receipt:
            receipt = super().notify(snapshot_id, now)
            return receipt._replace(snapshots=tuple(
                LocalSnapshot(local.node, local.first_id, local.last_id, now, "forged")
                for local in receipt.snapshots))

    with pytest.raises(LogError, match="did not return"):
        simulate(WorldConfig(snapshots=5, node_class=Forger))
