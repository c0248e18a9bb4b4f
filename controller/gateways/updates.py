"""An id update: raising every gateway to one snapshot id, gateway by gateway.

The controller (:class:`controller.gateways.decisions.GatewayController`)
fills one :class:`IdUpdate` in while the flow-mods and barriers go out; the
control interface sends it as a dict (:meth:`IdUpdate.to_dict`) and the
client reads it back (:meth:`IdUpdate.from_dict`). Each gateway's part is
the core's :class:`beaver.records.GatewayTiming`, the same record the
coordinator hands to the snapshot store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beaver.records import GatewayTiming


@dataclass
class IdUpdate:
    """Setting every gateway to ``snapshot_id``: complete only when every gateway acked."""

    snapshot_id: int
    started_at: float
    gateways: dict[str, GatewayTiming] = field(default_factory=dict)

    @property
    def failed(self) -> set[str]:
        return {name for name, part in self.gateways.items() if part.failed}

    @property
    def complete(self) -> bool:
        return all(part.acked_at is not None for part in self.gateways.values())

    @property
    def settled(self) -> bool:
        return all(p.acked_at is not None or p.failed for p in self.gateways.values())

    @property
    def first_sent(self) -> float | None:
        sent = [t.sent_at for t in self.gateways.values() if t.sent_at is not None]
        return min(sent) if sent else None

    @property
    def last_acked(self) -> float | None:
        acked = [t.acked_at for t in self.gateways.values() if t.acked_at is not None]
        return max(acked) if self.complete and acked else None

    def to_dict(self) -> dict[str, object]:
        return {
            "snapshot_id": self.snapshot_id,
            "started_at": self.started_at,
            "complete": self.complete,
            "failed": sorted(self.failed),
            "gateways": {
                name: {"sent_at": p.sent_at, "acked_at": p.acked_at, "failure": p.failure}
                for name, p in sorted(self.gateways.items())
            },
        }

    @classmethod
    def from_dict(cls, update: dict[str, Any]) -> IdUpdate:
        failed = set(update.get("failed", ()))
        gateways = {}
        for name, timing in update["gateways"].items():
            failure = timing.get("failure")
            if failure is None and name in failed:
                failure = "failed"
            gateways[name] = GatewayTiming(name, timing["sent_at"], timing["acked_at"], failure)
        return cls(update["snapshot_id"], update["started_at"], gateways)
