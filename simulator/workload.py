"""What the simulated world does: message rates, traffic mix, snapshot rate.

- In-group traffic: every in-group node sends at ``message_rate_hz``
  (Poisson) to a random peer, or, with probability ``relay_share`` (when
  relays exist), to a random relay. A share ``vip_share`` of in-group
  messages goes to the peer's VIP and so crosses a gateway, which lets
  optimistic marking see their ids; the message keeps the sender's stamp.
- External requests: every out-group *client* sends at ``request_rate_hz``
  to a random in-group node, through a random gateway. Clients are
  open-loop and receive nothing: a reply a client read would make each of
  its later requests an external causal chain; relays model those chains.
- External causal chains: a relay that receives a message from an in-group
  node sends a new message, through a gateway, to another in-group node; the
  time from the in-group send to the gateway is an external chain time,
  never below the world's true tau_min.
- Snapshots: the coordinator starts one at ``snapshot_rate_hz`` (Poisson),
  waiting whenever its window of snapshots in flight is full. Traffic goes
  on until every snapshot has finished, or ``give_up_s`` after the last
  start; then the world drains.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator.engine import Engine, push

_log = math.log


@dataclass(frozen=True)
class Workload:
    message_rate_hz: float = 2000.0
    """In-group messages sent per second by each in-group node."""
    relay_share: float = 0.2
    """Share of in-group nodes' messages that go to a relay (if there is one)."""
    vip_share: float = 0.1
    """Share of in-group messages sent to a VIP, through a gateway."""
    request_rate_hz: float = 2000.0
    """Requests per second of each out-group client."""
    snapshot_rate_hz: float = 1000.0
    give_up_s: float = 0.05
    """How long after the last start traffic keeps going for unfinished snapshots."""

    def __post_init__(self) -> None:
        for name in ("message_rate_hz", "request_rate_hz", "give_up_s"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        if not 0 < self.snapshot_rate_hz < math.inf:
            raise ValueError(f"snapshot rate must be > 0 and finite, got {self.snapshot_rate_hz}")
        for name in ("relay_share", "vip_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in 0..1, got {getattr(self, name)}")


class PoissonSource:
    """Calls ``emit`` at the arrivals of a Poisson process while ``active()`` holds.

    One event per arrival: the gap to the next one is drawn after ``emit`` (as
    ``random.expovariate`` draws it, inline) and pushed straight onto the engine's heap.
    """

    def __init__(
        self,
        engine: Engine,
        rng: random.Random,
        rate_hz: float,
        emit: Callable[[], None],
        active: Callable[[], bool],
    ):
        self._engine, self._rng, self._rate = engine, rng, rate_hz
        self._emit, self._active = emit, active
        self._random, self._queue, self._ticket = rng.random, engine.queue, engine.ticket
        self._fire_next = self._fire

    def start(self) -> None:
        if self._rate > 0:
            self._engine.after(self._rng.expovariate(self._rate), self._fire)

    def _fire(self) -> None:
        if not self._active():
            return
        self._emit()
        gap = -_log(1.0 - self._random()) / self._rate  # rng.expovariate(rate)
        push(self._queue, (self._engine.now + gap, self._ticket(), self._fire_next, ()))
