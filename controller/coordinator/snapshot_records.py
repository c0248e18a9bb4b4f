"""What the store keeps of one finished snapshot, as plain records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from beaver.records import GatewayTiming


@dataclass(frozen=True)
class StoredLocal:
    node: str
    taken_at: float
    state: Any
    state_json: str | None = field(default=None, compare=False, repr=False)
    """The state as the store writes it (:func:`json_text`), if already encoded: a local
    snapshot covering several ids is then encoded once, not once per snapshot."""


def json_text(value: Any) -> str:
    """A JSON column's text: compact, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class StoredInFlight:
    receiver: str
    sender: str
    received_at: float
    message: Any


@dataclass(frozen=True)
class FinishedSnapshot:
    """Everything stored about one snapshot; written in one transaction."""

    snapshot_id: int
    t0: float
    t1: float | None
    valid: bool
    complete: bool
    completed_at: float | None
    states: tuple[StoredLocal, ...]
    in_flight: tuple[StoredInFlight, ...]
    gateways: tuple[GatewayTiming, ...]

    @property
    def update_us(self) -> float | None:
        return None if self.t1 is None else (self.t1 - self.t0) * 1e6

    def node_states(self) -> dict[str, Any]:
        """Each node's recorded state, by node."""
        return {s.node: s.state for s in self.states}
