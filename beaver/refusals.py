"""What the coordinator refuses, and the checks of node reports.

Every argument is checked before any state changes: a report that is
malformed, forged, from or about an unknown node, duplicate or out of order
is refused with :class:`InvalidReport` (and counted), any other bad
argument with :class:`InvalidInput`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from math import isfinite
from typing import NoReturn

import numpy as np

from beaver.records import InFlight, LocalSnapshot, MemberSnapshot, MemberSnapshots


class InvalidInput(ValueError):
    """An argument the coordinator refuses (wrong type, not finite, out of range): no change."""


class InvalidReport(InvalidInput):
    """A report the coordinator refuses: unknown node, duplicate, out of order or forged."""


class ForgedReport(InvalidReport):
    """A report no honest node can send: from a node outside the in-group, or for
    snapshot ids that were never started."""


def require_time(value: object, what: str = "time") -> float:
    """A finite real number (``bool`` is not one); else :class:`InvalidInput`."""
    if type(value) not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
        raise InvalidInput(f"{what} must be a finite number of seconds, got {value!r}")
    return value  # type: ignore[return-value]


class ReportChecks:
    """The coordinator's checks of local snapshots and in-flight records.

    Mixed into :class:`~beaver.coordinator.Coordinator`, whose state they read
    (``_index``, ``_last_reported``, ``_known``, ``_status``, ``newest``): a check either
    passes or raises, counting the refusal in ``rejected_reports``.
    """

    rejected_reports: int
    newest: int
    _known: frozenset[str]
    _index: dict[str, int]
    _last_reported: array
    _group: tuple[str, ...] | None
    _group_indices: array

    def _check_local(self, local: LocalSnapshot) -> int:
        """Refuse ``local`` unless it is the next report of a known node; returns the
        node's number."""
        well_formed = type(local) is LocalSnapshot
        if well_formed:  # the common shape, read in one go
            node, first, last, taken_at, _, sent, received = local
            well_formed = (type(node) is str and type(first) is int and type(last) is int
                           and type(taken_at) is float and isfinite(taken_at)
                           and type(sent) is dict and type(received) is dict)
        if not well_formed:
            problem = self._malformed(local)  # other shapes are judged here
            if problem:
                self._refuse(InvalidReport(problem))
            node, first, last = local.node, local.first_id, local.last_id
            sent, received = local.sent, local.received
        index = self._check_next(node, first, last)
        if not (sent or received):
            return index
        for counts in (sent, received):
            for count in counts.values():
                if type(count) is not int or count < 0:
                    self._refuse_counts(node)
        known = self._known
        if not (known.issuperset(sent) and known.issuperset(received)):
            self._refuse_strangers(node, {*sent, *received})
        return index

    def _check_member(self, local: MemberSnapshot) -> int:
        """Refuse ``local`` unless it is the next report of a known node whose group's
        members are all in-group; returns the node's number."""
        well_formed = type(local) is MemberSnapshot
        if well_formed:
            node, first, last, taken_at, _, sent, received, group = local
            well_formed = (type(node) is str and type(first) is int and type(last) is int
                           and type(taken_at) is float and isfinite(taken_at)
                           and type(group) is tuple)
        if not well_formed:
            self._refuse(InvalidReport(self._malformed_member(local)))
        index = self._check_next(node, first, last)
        if type(sent) is not int or type(received) is not int or sent < 0 or received < 0:
            self._refuse_counts(node)
        if group is not self._group and self._group_numbers(group) is None:
            self._refuse_strangers(node, group)
        return index

    def _check_members(self, batch: MemberSnapshots) -> np.ndarray:
        """Refuse ``batch`` unless each element passes :meth:`_check_member` (raising the
        first refused element's refusal); returns the nodes' numbers."""
        if type(batch) is not MemberSnapshots:
            self._refuse(InvalidReport(f"local snapshots of a group must be MemberSnapshots, "
                                       f"got {type(batch).__name__}"))
        group, members, firsts, lasts, taken_at, states, sent, received = batch
        count = len(states) if type(states) is list else -1
        if not (type(group) is tuple and all(
                type(numbers) is np.ndarray and numbers.shape == (count,)
                and numbers.dtype == np.int64 for numbers in (members, firsts, lasts, sent,
                                                              received))
                and type(taken_at) is np.ndarray and taken_at.shape == (count,)
                and taken_at.dtype == np.float64):
            self._refuse(InvalidReport("local snapshots of a group: its names, int64 arrays "
                                       "of members, ids and counts, a float64 array of times "
                                       "and a list of states, one each"))
        if not count:
            return members
        if (members[0] < 0 or members[-1] >= len(group)
                or count > 1 and not (members[1:] > members[:-1]).all()):
            self._refuse(InvalidReport(f"local snapshots of a group taken at once are of "
                                       f"distinct members, in increasing order, in "
                                       f"0..{len(group) - 1}"))
        group_numbers = self._group_numbers(group)
        if group_numbers is None:
            self._check_member(batch.member(0))  # refused: counts with strangers at least
            self._refuse(InvalidReport("local snapshots of a group with members not in-group"))
        numbers = group_numbers[members]
        last_reported = np.frombuffer(self._last_reported, dtype=np.int64)[numbers]
        last_reported += 1
        if not ((firsts == last_reported).all() and (firsts <= lasts).all()
                and lasts.max() <= self.newest and sent.min() >= 0 and received.min() >= 0
                and np.isfinite(taken_at).all()):
            good = ((firsts == last_reported) & (firsts <= lasts) & (lasts <= self.newest)
                    & (sent >= 0) & (received >= 0) & np.isfinite(taken_at))
            self._check_member(batch.member(int(np.argmin(good))))
            self._refuse(InvalidReport("local snapshots of a group refused"))
        return numbers

    def _group_numbers(self, group: object) -> np.ndarray | None:
        """The numbers of ``group``'s members (the last such group's are kept), or None if
        one is not in-group."""
        if group is not self._group:
            if type(group) is not tuple:
                return None
            numbers = [self._index.get(name, -1) if type(name) is str else -1
                       for name in group]
            if -1 in numbers:
                return None
            self._group, self._group_indices = group, array("q", numbers)
        return np.frombuffer(self._group_indices, dtype=np.int64) if self._group_indices \
            else np.zeros(0, dtype=np.int64)

    def _check_next(self, node: str, first: int, last: int) -> int:
        """Refuse a report of ``first..last`` unless ``node`` is known, the ids were started
        and it follows the node's last report; returns the node's number."""
        index = self._index.get(node)
        if index is None:
            self._refuse(ForgedReport(f"local snapshot from unknown node {node!r}"))
        if not 1 <= first <= last <= self.newest:
            self._check_started(f"local snapshot from {node}", first, last)
        last_reported = self._last_reported[index]
        if first != last_reported + 1:
            self._refuse(InvalidReport(
                f"local snapshot {first}..{last} from {node}: "
                f"expected one starting at {last_reported + 1} (duplicate or out of order)"))
        return index

    def _refuse_counts(self, node: str) -> NoReturn:
        self._refuse(InvalidReport(f"local snapshot from {node} has message counts that are "
                                   f"not ints >= 0 (negative or not whole)"))

    def _refuse_strangers(self, node: str, peers: Iterable[object]) -> NoReturn:
        strangers = sorted(map(repr, set(peers) - self._known))
        self._refuse(InvalidReport(f"local snapshot from {node} counts messages with "
                                   f"{', '.join(strangers)}, not in-group nodes"))

    def _check_in_flight(self, record: InFlight) -> None:
        if not isinstance(record, InFlight):
            self._refuse(InvalidReport(
                f"an in-flight record must be an InFlight, got {type(record).__name__}"))
        if not all(isinstance(name, str) for name in (record.receiver, record.sender)):
            self._refuse(InvalidReport(f"in-flight record between non-string node names "
                                       f"{record.sender!r} -> {record.receiver!r}"))
        if not all(type(k) is int for k in (record.first_id, record.last_id)):
            self._refuse(InvalidReport(f"in-flight record ids must be ints, got "
                                       f"{record.first_id!r}..{record.last_id!r}"))
        if record.receiver not in self._index or record.sender not in self._index:
            self._refuse(ForgedReport(f"in-flight record between unknown nodes "
                                      f"{record.sender!r} -> {record.receiver!r}"))
        self._check_started("in-flight record", record.first_id, record.last_id)
        if any(self._status[k].complete  # type: ignore[attr-defined]
               for k in range(record.first_id, record.last_id + 1)):
            self._refuse(InvalidReport(
                f"in-flight record {record.sender} -> {record.receiver} for a snapshot "
                f"in {record.first_id}..{record.last_id} that is already complete"))

    def _check_started(self, what: str, first_id: int, last_id: int) -> None:
        """A report may only name snapshots that were started (ids 1..newest)."""
        if not 1 <= first_id <= last_id <= self.newest:
            self._refuse(ForgedReport(f"{what} for snapshots {first_id}..{last_id}, "
                                      f"but only 1..{self.newest} were started"))

    def _refuse(self, error: InvalidReport) -> NoReturn:
        self.rejected_reports += 1
        raise error

    @staticmethod
    def _malformed_member(local: object) -> str:
        """What makes ``local`` no well-formed member's local snapshot."""
        if not isinstance(local, MemberSnapshot):
            return f"a member's local snapshot must be a MemberSnapshot, got {type(local).__name__}"
        return (ReportChecks._malformed_fields(local, (float,))
                or f"local snapshot from {local.node}: its group must be a tuple of names")

    @staticmethod
    def _malformed_fields(local: LocalSnapshot | MemberSnapshot,
                          times: tuple[type, ...]) -> str | None:
        """What is wrong with the fields every kind of local snapshot has: the node's name,
        the ids, the time it was taken (of a type in ``times``); None: nothing."""
        if not isinstance(local.node, str):
            return f"local snapshot from a node whose name is not a string: {local.node!r}"
        if not (type(local.first_id) is int and type(local.last_id) is int):
            return (f"local snapshot ids must be ints, got "
                    f"{local.first_id!r}..{local.last_id!r}")
        if type(local.taken_at) not in times or not math.isfinite(local.taken_at):
            return f"local snapshot from {local.node} taken at {local.taken_at!r}, not a time"
        return None

    @staticmethod
    def _malformed(local: object) -> str | None:
        """What makes ``local`` no well-formed local snapshot at all (None: nothing)."""
        if not isinstance(local, LocalSnapshot):
            return f"a local snapshot must be a LocalSnapshot, got {type(local).__name__}"
        problem = ReportChecks._malformed_fields(local, (int, float))
        if problem:
            return problem
        sent, received = local.sent, local.received
        if not ((type(sent) is dict or isinstance(sent, Mapping))
                and (type(received) is dict or isinstance(received, Mapping))):
            return f"local snapshot from {local.node}: message counts must be mappings"
        return None
