"""Latency distributions of the simulated data center (all times in seconds).

Every delay is a *floor* plus a lognormal part (``median``, ``sigma``) and,
optionally, a rare *tail*: with probability ``tail_probability`` a second
lognormal delay is added, capped at ``tail_cap``. The defaults follow the
paper's measurements:

- coordinator -> gateway update and the gateway's acknowledgement: one leg
  each way, so t1 - t0 (the slowest of |G| round trips) has p50 ~7-9 us and a
  rare tail up to ~400 us (Fig 13);
- in-group links: tens of microseconds;
- coordinator -> node notifications: spread over hundreds of microseconds,
  so a node told late can receive traffic from a node told early;
- external causal chains (in-group -> out-group -> gateway): never shorter
  than the world's true tau_min; the excess over tau_min is shaped like the
  intra-DC curve of Fig 12 (p50 ~1.24 tau_min, a long tail).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

US = 1e-6
"""One microsecond, in seconds."""


@dataclass(frozen=True)
class Delay:
    """``floor + lognormal(median, sigma)``, plus a rare capped tail."""

    floor: float
    median: float
    sigma: float
    tail_probability: float = 0.0
    tail_median: float = 0.0
    tail_cap: float = math.inf

    def __post_init__(self) -> None:
        if self.floor < 0 or self.median <= 0 or self.sigma < 0:
            raise ValueError(f"a delay needs floor >= 0, median > 0, sigma >= 0: {self}")
        if not 0 <= self.tail_probability <= 1:
            raise ValueError(f"tail probability must be in 0..1: {self}")

    def draw(self, rng: random.Random) -> float:
        delay = self.floor + self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        if self.tail_probability and rng.random() < self.tail_probability:
            delay += min(self.tail_cap, self.tail_median * math.exp(rng.gauss(0.0, 1.0)))
        return delay

    def draw_many(self, generator: np.random.Generator, count: int) -> np.ndarray:
        """``count`` independent delays at once (the same distribution as :meth:`draw`)."""
        delays = self.floor + self.median * np.exp(self.sigma * generator.standard_normal(count))
        if self.tail_probability:
            slow = generator.random(count) < self.tail_probability
            tails = self.tail_median * np.exp(generator.standard_normal(int(slow.sum())))
            delays[slow] += np.minimum(self.tail_cap, tails)
        return delays


def sampler(delay: Delay, generator: np.random.Generator,
            block: int = 4096) -> Callable[[], float]:
    """A call that returns one :class:`Delay` value at a time, from blocks drawn vectorised.

    A block of ``block`` delays is drawn with numpy when the one before is used up and
    handed out as Python floats; the stream of values is a pure function of the
    generator's seed. The call is the ``__next__`` of an iterator made of C parts only
    (the block is drawn in Python), so a draw costs no Python call.
    """
    blocks = map(lambda _: delay.draw_many(generator, block).tolist(), itertools.count())
    return itertools.chain.from_iterable(blocks).__next__


@dataclass(frozen=True)
class Latencies:
    """The delays of every kind of hop in the simulated world."""

    ingroup_link: Delay = field(default_factory=lambda: Delay(10 * US, 25 * US, 0.6))
    """In-group node -> in-group node (also the path through a VIP)."""
    gateway_leg: Delay = field(
        default_factory=lambda: Delay(
            3.5 * US, 0.1 * US, 1.0,
            tail_probability=0.002, tail_median=40 * US, tail_cap=400 * US,
        )
    )
    """Coordinator -> gateway update, and the gateway's acknowledgement back."""
    notification: Delay = field(default_factory=lambda: Delay(5 * US, 100 * US, 0.8))
    """Coordinator -> in-group node (snapshot notification)."""
    client_to_gateway: Delay = field(default_factory=lambda: Delay(5 * US, 20 * US, 0.5))
    """Out-group client -> gateway."""
    gateway_to_node: Delay = field(default_factory=lambda: Delay(2 * US, 8 * US, 0.5))
    """Gateway -> in-group node."""
    chain_excess: Delay = field(default_factory=lambda: Delay(0.0, 0.24, 1.6))
    """External chain time above tau_min, as a multiple of tau_min."""

    def chain(self, tau_min: float, rng: random.Random) -> float:
        """An external causal chain time: in-group send -> out-group -> gateway, >= tau_min."""
        return tau_min * (1.0 + self.chain_excess.draw(rng))

    def samplers(self, generator: np.random.Generator) -> dict[str, Callable[[], float]]:
        """One :func:`sampler` per kind of hop, all drawing from ``generator``."""
        return {name: sampler(getattr(self, name), generator) for name in (
            "ingroup_link", "gateway_leg", "notification", "client_to_gateway",
            "gateway_to_node", "chain_excess")}
