"""What the coordinator refuses, and the checks of node reports.

Every argument is checked before any state changes: a report that is
malformed, forged, from or about an unknown node, duplicate or out of order
is refused with :class:`InvalidReport` (and counted), any other bad
argument with :class:`InvalidInput`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from math import isfinite
from typing import NoReturn

from beaver.records import InFlight, LocalSnapshot


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
    (``_last_reported``, ``_known``, ``_status``, ``newest``): a check either
    passes or raises, counting the refusal in ``rejected_reports``.
    """

    rejected_reports: int
    newest: int
    _known: frozenset[str]
    _last_reported: dict[str, int]

    def _check_local(self, local: LocalSnapshot) -> None:
        """Refuse ``local`` unless it is the next report of a known node."""
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
        last_reported = self._last_reported.get(node)
        if last_reported is None:
            self._refuse(ForgedReport(f"local snapshot from unknown node {node!r}"))
        if not 1 <= first <= last <= self.newest:
            self._check_started(f"local snapshot from {node}", first, last)
        if first != last_reported + 1:
            self._refuse(InvalidReport(
                f"local snapshot {first}..{last} from {node}: "
                f"expected one starting at {last_reported + 1} (duplicate or out of order)"))
        if not (sent or received):
            return
        for counts in (sent, received):
            for count in counts.values():
                if type(count) is not int or count < 0:
                    self._refuse(InvalidReport(
                        f"local snapshot from {node} has message counts that are not "
                        f"ints >= 0 (negative or not whole)"))
        known = self._known
        if not (known.issuperset(sent) and known.issuperset(received)):
            strangers = sorted(map(repr, {*sent, *received} - known))
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
        if record.receiver not in self._last_reported or record.sender not in self._last_reported:
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
    def _malformed(local: object) -> str | None:
        """What makes ``local`` no well-formed local snapshot at all (None: nothing)."""
        if not isinstance(local, LocalSnapshot):
            return f"a local snapshot must be a LocalSnapshot, got {type(local).__name__}"
        if not isinstance(local.node, str):
            return f"local snapshot from a node whose name is not a string: {local.node!r}"
        if not (type(local.first_id) is int and type(local.last_id) is int):
            return (f"local snapshot ids must be ints, got "
                    f"{local.first_id!r}..{local.last_id!r}")
        if type(local.taken_at) not in (int, float) or not math.isfinite(local.taken_at):
            return f"local snapshot from {local.node} taken at {local.taken_at!r}, not a time"
        sent, received = local.sent, local.received
        if not ((type(sent) is dict or isinstance(sent, Mapping))
                and (type(received) is dict or isinstance(received, Mapping))):
            return f"local snapshot from {local.node}: message counts must be mappings"
        return None
