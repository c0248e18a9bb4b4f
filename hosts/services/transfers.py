"""Transfer ids and compact sets of them.

A transfer id is ``<series>:<n>``. A series is one node's run of transfers
to one destination, ``<node>.<incarnation>><destination>`` (a peer's name or
a relay's address): a restore starts a new incarnation, so ids never repeat;
``n`` counts from 1. A node debits each series in order and one destination
receives it mostly in order, so a set of ids is kept as sorted inclusive
ranges per series, ``{series: [[first, last], ...]}`` in JSON: a captured
state stays small however long a run lasts.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping


def transfer_id(series: str, n: int) -> str:
    return f"{series}:{n}"


def parse(transfer: object) -> tuple[str, int]:
    """(series, n) of a transfer id; ValueError if it is not one."""
    if not isinstance(transfer, str):
        raise ValueError(f"not a transfer id: {transfer!r}")
    series, sep, number = transfer.rpartition(":")
    if not sep or not series or not number.isdigit() or int(number) < 1:
        raise ValueError(f"not a transfer id: {transfer!r}")
    return series, int(number)


def series_of(node: str, incarnation: int, destination: str) -> str:
    return f"{node}.{incarnation}>{destination}"


def origin_of(series: str) -> str:
    """The node that debits ``series``."""
    return series.partition(">")[0].rpartition(".")[0]


def destination_of(series: str) -> str:
    """Where ``series`` goes: a peer's name, or a relay's ``ip:port``."""
    return series.partition(">")[2]


def is_external(series: str) -> bool:
    """Whether ``series`` goes to the out-group (a relay's ``ip:port``, never a node name)."""
    return ":" in destination_of(series)


def incarnation_of(series: str, node: str) -> int | None:
    """The incarnation if ``series`` is one of ``node``'s, else None."""
    origin = series.partition(">")[0]
    prefix, _, number = origin.rpartition(".")
    return int(number) if prefix == node and number.isdigit() else None


class IdSet:
    """A set of transfer ids stored as ranges per series."""

    def __init__(self, ranges: Mapping[str, list[list[int]]] | None = None):
        self._ranges: dict[str, list[list[int]]] = {}
        for series, spans in (ranges or {}).items():
            merged: list[list[int]] = []
            for first, last in sorted(_span(span) for span in spans):
                if merged and first <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], last)
                else:
                    merged.append([first, last])
            if merged:
                self._ranges[str(series)] = merged

    def add(self, transfer: str) -> bool:
        """Add ``transfer``; False if it was already there."""
        series, n = parse(transfer)
        spans = self._ranges.setdefault(series, [])
        i = bisect.bisect_right(spans, n, key=lambda span: span[0])
        before = spans[i - 1] if i > 0 else None
        after = spans[i] if i < len(spans) else None
        if before is not None and before[1] >= n:
            return False
        if before is not None and before[1] == n - 1:
            before[1] = n
            if after is not None and after[0] == n + 1:
                before[1] = after[1]
                del spans[i]
        elif after is not None and after[0] == n + 1:
            after[0] = n
        else:
            spans.insert(i, [n, n])
        return True

    def __contains__(self, transfer: object) -> bool:
        if not isinstance(transfer, str):
            return False
        try:
            series, n = parse(transfer)
        except ValueError:
            return False
        spans = self._ranges.get(series, [])
        i = bisect.bisect_right(spans, n, key=lambda span: span[0])
        return i > 0 and spans[i - 1][1] >= n

    def __iter__(self) -> Iterator[str]:
        for series, spans in sorted(self._ranges.items()):
            for first, last in spans:
                for n in range(first, last + 1):
                    yield transfer_id(series, n)

    def __len__(self) -> int:
        return sum(last - first + 1 for spans in self._ranges.values() for first, last in spans)

    def series(self) -> list[str]:
        return sorted(self._ranges)

    def to_json(self) -> dict[str, list[list[int]]]:
        return {series: [list(span) for span in spans] for series, spans in self._ranges.items()}


def _span(span: object) -> tuple[int, int]:
    if (
        not isinstance(span, list | tuple)
        or len(span) != 2
        or not all(type(n) is int for n in span)
        or not 1 <= span[0] <= span[1]
    ):
        raise ValueError(f"not a range of transfer numbers: {span!r}")
    return span[0], span[1]
