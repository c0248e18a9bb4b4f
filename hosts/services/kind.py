"""What the testbed knows about a kind of service, beyond the runtime interface.

A :class:`ServiceKind` is registered under its name in
:mod:`hosts.services.registry`; ``beaver run --service``, the agent's
``--service``, ``beaver show`` and ``beaver restore`` all take their choices,
help and checks from there. A kind says:

* how an agent builds one node's service (:meth:`ServiceKind.build`, from a
  :class:`NodeSetup`), with its workload rate named by ``workload`` among its
  ``beaver run`` :attr:`~ServiceKind.options`;
* its load generators beyond the agents' own workload: with ``clients``
  naming the option of their rate, one :mod:`hosts.client` per client host of
  the plan sends requests to the VIP;
* its tau policy: measured from relayed chains, or, with ``assumed_tau`` saying
  why there is nothing to measure, assumed to be the emulated WAN delay;
* the parameters a run stores for it, its invariant if it has one, its view for
  ``beaver show`` and how ``beaver restore`` reports a restored state.

Everything but :meth:`~ServiceKind.build` has a default, so a new service is one
subclass and one line in the registry (``docs/extending.md``).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from hosts.services import Address, Service
from topologies.secret import RunSecret


class ChannelRecord(Protocol):
    """An in-flight message as the core (``InFlight``) or the store records it."""

    @property
    def sender(self) -> str: ...

    @property
    def receiver(self) -> str: ...

    @property
    def message(self) -> Any: ...


States = Mapping[str, Any]
"""Each node's captured state, by node name."""
Channel = Sequence[ChannelRecord]


@dataclass(frozen=True)
class NodeSetup:
    """What an agent knows when it builds its node's service."""

    name: str
    peers: tuple[str, ...]
    """Every in-group node, this one included."""
    shards: tuple[str, ...]
    """The in-group nodes backing the same plan service as this one (itself included)."""
    relays: tuple[Address, ...]
    """The out-group relays (external partners)."""
    rate: float
    """The workload per second (0: none)."""
    start: float
    rng: random.Random
    external_share: float = 0.0
    """Share of the workload sent through a relay, for services that use relays."""
    secret: RunSecret | None = None
    """The run's secret (:mod:`topologies.secret`), for services that check what relays
    seal with it."""


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


MAX_AGENT_RATE = 1000.0
"""The most events a second (transfers, requests, flushes) a service option may ask of one
host or client: each is one Python process, and past this it falls behind what was asked,
so relayed chains and reports come late and the run times out."""
AGENT_RATE_PROBLEM = (f"must be a positive number <= {MAX_AGENT_RATE:g} (each host and client "
                      f"is one Python process: faster, it falls behind and the run times out)")


def agent_rate(value: float) -> bool:
    """A positive rate one agent or client can keep up with."""
    return positive(value) and value <= MAX_AGENT_RATE


def share(value: float) -> bool:
    return 0 <= value <= 1


@dataclass(frozen=True)
class Option:
    """A numeric ``beaver run`` option of a service, checked before anything starts."""

    flag: str
    default: float
    help: str
    valid: Callable[[float], bool]
    problem: str
    """What is wrong when not ``valid``, after the flag: ``must be >= 0``."""

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


class ServiceKind:
    """A kind of service the in-group can run (subclass it; override :meth:`build`)."""

    name: ClassVar[str]
    title: ClassVar[str]
    """How texts name it: ``bank``, ``key-value store``."""
    options: ClassVar[tuple[Option, ...]] = ()
    workload: ClassVar[str | None] = None
    """The option (its ``dest``) that sets the agents' workload rate; None: no workload."""
    clients: ClassVar[str | None] = None
    """The option (its ``dest``) that sets each external client's request rate; None: the
    service has no external clients."""
    assumed_tau: ClassVar[str | None] = None
    """Why tau_min cannot be measured (it is then the WAN delay); None: measured."""
    invariant_name: ClassVar[str | None] = None
    """What :meth:`invariant` checks (``bank invariant``); None: the service has none."""

    def build(self, setup: NodeSetup) -> Service:
        raise NotImplementedError

    @property
    def external_clients(self) -> bool:
        return self.clients is not None

    def parameters(self, ingroup: int) -> dict[str, Any]:
        """What a run stores about the service beyond its options (by in-group size)."""
        return {}

    def invariant(self, states: States, in_flight: Channel,
                  parameters: Mapping[str, Any]) -> list[str]:
        """The invariant's violations in a snapshot (empty: it holds)."""
        return []

    def view(self, states: States, in_flight: Channel,
             parameters: Mapping[str, Any]) -> dict[str, Any] | None:
        """The service's view of a snapshot (``beaver show ID --json`` carries it)."""
        return None

    def node_line(self, view: dict[str, Any] | None, node: str, state: Any) -> str:
        """One node of a snapshot in ``beaver show ID``'s text."""
        return f"{node}: {json.dumps(state)[:200]}"

    def view_lines(self, view: dict[str, Any] | None) -> list[str]:
        """Lines ``beaver show ID`` ends with (a check over the whole snapshot)."""
        return []

    def restore_report(self, states: States, in_flight: Channel, expected: States,
                       restored: States, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """``beaver restore``'s verdict: every node holds what restoring should give."""
        return {"ok": not mismatched(expected, restored),
                "mismatched_nodes": mismatched(expected, restored)}

    def restore_text(self, report: Mapping[str, Any]) -> str:
        lines = [f"restored snapshot {report['snapshot_id']} of run {report['run']} "
                 f"({self.title}) in {report['where']}"]
        lines.append("  state " + ("matches at every node" if not report["mismatched_nodes"]
                                   else "differs at: " + ", ".join(report["mismatched_nodes"])))
        return "\n".join(lines)


def mismatched(expected: States, restored: States) -> list[str]:
    """The nodes whose restored state is not the expected one."""
    return sorted(node for node in expected if restored.get(node) != expected[node])
