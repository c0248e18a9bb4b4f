"""Which tau_min an emulated run uses, and where it comes from.

* Given (``--tau-min-us``): that bound.
* A service with nothing to measure (:attr:`~hosts.services.kind.ServiceKind.assumed_tau`
  says why; the key-value store's clients are open loop): the bound is assumed
  to be the emulated WAN delay.
* Otherwise measured: the shortest relayed chain the agents saw before the
  first snapshot; shorter chains seen later lower it (:meth:`TauChoice.follow`).
* A protocol without gateways does not use the bound: a run that measured no
  chain goes on with an infinite one.

The bound is in seconds; the coordinator sets it and stores it
(:mod:`controller.coordinator.tau`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from beaver.protocols import protocol as protocol_named
from controller.coordinator.service import SnapshotService
from hosts.services.registry import SERVICES

GIVEN = "given (--tau-min-us)"
MEASURED = "measured: the shortest relayed chain before the first snapshot"
ASSUMED = "assumed: the WAN delay (--wan-delay-ms); "
NOT_MEASURED = "not measured: no relayed chain"


@dataclass(frozen=True)
class TauChoice:
    seconds: float
    source: str
    follow: bool
    """Whether shorter chains reported during the run lower it (a measured bound only)."""


def choose_tau_min(service: SnapshotService, *, protocol: str, service_name: str,
                   wan_delay: float, given: float | None, timeout: float = 20.0) -> TauChoice:
    """Decide tau_min (seconds) for the run, set it on the coordinator and store it."""
    uses_gateways = protocol_named(protocol).uses_gateways
    assumed = SERVICES[service_name].assumed_tau
    try:
        if given is not None:
            tau, source = given, GIVEN
        elif assumed is not None:
            tau, source = wan_delay, ASSUMED + assumed
        else:
            tau, source = service.wait_chain_time(timeout), MEASURED
        if not math.isfinite(tau) or tau <= 0:
            raise ValueError(f"tau_min must be a positive number of seconds, got {tau}")
    except TimeoutError:
        if uses_gateways:
            raise
        tau, source = math.inf, NOT_MEASURED
    if not uses_gateways:
        source += f"; {protocol} has no gateways, so it does not use it"
    service.set_tau_min(tau, source)
    measured = given is None and assumed is None
    return TauChoice(tau, source, follow=measured and uses_gateways)
