"""Maglev-style consistent hashing of flows onto backends.

Each backend walks its own permutation of the table slots (offset and skip
from two stable hashes of its name); backends take turns claiming their next
free slot until the table is full, so each owns nearly ``size / n`` slots.
A flow's backend is the owner of slot ``hash(5-tuple) mod size``. Hashes are
stable (BLAKE2b, not Python's salted ``hash``), so every gateway and every
process computes the same table and the same answer for the same flow.

Removing a backend frees only its slots, which the remaining backends claim
by continuing their permutations: flows of other backends never move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SIZE = 1021
"""Table size: a prime well above the number of backends."""


def stable_hash(data: bytes, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt[:16]).digest(), "big")


@dataclass(frozen=True)
class FlowKey:
    """The 5-tuple of a flow (ports are 0 for protocols without them)."""

    proto: int
    src: str
    dst: str
    sport: int = 0
    dport: int = 0

    def to_bytes(self) -> bytes:
        return f"{self.proto}|{self.src}|{self.dst}|{self.sport}|{self.dport}".encode()


class MaglevTable:
    """The slot -> backend table of one service."""

    def __init__(self, backends: Sequence[str], size: int = DEFAULT_SIZE) -> None:
        if not backends:
            raise ValueError("a Maglev table needs at least one backend")
        if len(set(backends)) != len(backends):
            raise ValueError(f"duplicate backends: {list(backends)}")
        if size < len(backends) or any(size % d == 0 for d in range(2, int(size**0.5) + 1)):
            raise ValueError(f"table size must be a prime >= the backend count, got {size}")
        self.size = size
        self.backends = tuple(sorted(backends))
        self._slots: list[str | None] = [None] * size
        self._fill()

    def _permutation_step(self, backend: str) -> tuple[int, int]:
        offset = stable_hash(backend.encode(), b"offset") % self.size
        skip = stable_hash(backend.encode(), b"skip") % (self.size - 1) + 1
        return offset, skip

    def _fill(self) -> None:
        free = self._slots.count(None)
        walks = {b: (0, *self._permutation_step(b)) for b in self.backends}
        while free:
            for backend in self.backends:
                position, offset, skip = walks[backend]
                slot = (offset + position * skip) % self.size
                while self._slots[slot] is not None:
                    position += 1
                    slot = (offset + position * skip) % self.size
                self._slots[slot] = backend
                walks[backend] = (position + 1, offset, skip)
                free -= 1
                if not free:
                    break

    def lookup(self, flow: FlowKey) -> str:
        owner = self._slots[stable_hash(flow.to_bytes()) % self.size]
        assert owner is not None
        return owner

    def without(self, backend: str) -> MaglevTable:
        """The table after ``backend`` leaves: only its slots change owner."""
        if backend not in self.backends:
            raise KeyError(f"{backend!r} is not a backend of this table")
        if len(self.backends) == 1:
            raise ValueError("cannot remove the last backend")
        smaller = object.__new__(MaglevTable)
        smaller.size = self.size
        smaller.backends = tuple(b for b in self.backends if b != backend)
        smaller._slots = [None if owner == backend else owner for owner in self._slots]
        smaller._fill()
        return smaller

    def share(self) -> dict[str, int]:
        """How many slots each backend owns."""
        return {b: self._slots.count(b) for b in self.backends}
