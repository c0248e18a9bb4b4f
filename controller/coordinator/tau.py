"""tau_min of a run, with one owner: seconds everywhere, microseconds only in the store.

The validity threshold lives on the protocol core's coordinator
(``Coordinator.tau_min``, seconds). :class:`TauMin` is the only code that
changes it during a service's life and the only code that writes it to the
store's ``runs.tau_min_us`` column (None there for an infinite bound):

* :meth:`TauMin.set` before the first snapshot: the bound given, measured
  from the agents' external causal chains, or assumed, with where it came
  from;
* :meth:`TauMin.follow`, once following is switched on: a shorter chain an
  agent reports during the run lowers a measured bound. The core decides
  validity again (:meth:`~beaver.coordinator.Coordinator.lower_tau_min`), and
  the stored snapshots it revokes are revoked in the store too.

The agents' chain measurements arrive in their ``counters`` reports
(``chain_min`` seconds, ``chain_count``): :func:`shortest_chain` and
:func:`chains_counted` read them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from typing import Any

from beaver.coordinator import Coordinator
from controller.coordinator.store import Store

log = logging.getLogger("beaver.snapshots")

TAU_FOLLOWED = "measured: the shortest relayed chain seen during the run"
"""The tau_min source once a chain reported during the run lowered the measured bound."""

Counters = Mapping[str, Mapping[str, Any]]
"""Each agent's latest ``counters`` report, by node."""


def _chain(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def shortest_chain(counters: Counters) -> float | None:
    """The shortest external causal chain any agent measured (seconds), or None."""
    chains = [c for report in counters.values()
              if (c := _chain(report.get("chain_min"))) is not None]
    return min(chains, default=None)


def chains_counted(counters: Counters) -> int:
    """How many external causal chains the agents measured in all."""
    return sum(report.get("chain_count") or 0 for report in counters.values())


class TauMin:
    """The run's tau_min: on the core, and stored for ``run``."""

    def __init__(self, core: Coordinator, store: Store, run: int):
        self.core = core
        self.store = store
        self.run = run
        self.following = False

    @property
    def seconds(self) -> float:
        return self.core.tau_min

    def set(self, tau_min: float, source: str) -> None:
        """Set the bound before the first snapshot starts, and store it with its source."""
        if self.core.newest:
            raise RuntimeError("tau_min must be set before the first snapshot")
        self.core.tau_min = tau_min
        self._store(tau_min, source)

    def follow(self, chain: object, stored: Collection[int]) -> None:
        """A reported chain (seconds) shorter than the bound lowers it, when following.

        ``stored``: the snapshots already in the store, whose validity the store
        revokes if the core does.
        """
        length = _chain(chain)
        if not self.following or length is None:
            return
        before = self.core.tau_min
        revoked = self.core.lower_tau_min(length)
        if self.core.tau_min == before:
            return
        log.warning("an external chain of %.0f us lowers tau_min; %d accepted snapshots "
                    "become invalid", length * 1e6, len(revoked))
        self._store(length, TAU_FOLLOWED)
        self.store.revoke_validity(self.run, [k for k in revoked if k in stored])

    def _store(self, tau_min: float, source: str) -> None:
        self.store.set_tau_min(self.run, tau_min * 1e6 if math.isfinite(tau_min) else None,
                               source)
