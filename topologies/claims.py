"""Claiming a data center's names and management network before anything is created.

Bridge and interface names are global in the root namespace, and so are the
addresses on its interfaces. Mininet, starting a switch, first deletes any
bridge of that name, so two data centers with one prefix would destroy each
other, and two with overlapping management networks would route each
other's agents. So :class:`testbed.network.DataCenter` claims its prefix and
management network first, and gives them back after its cleanup.

A claim is a file ``<prefix>.claim`` in the state directory
(:func:`topologies.record.state_dir`) naming the prefix, the management
network and the owner (PID and start time, as in run records). Claiming
happens under an exclusive ``flock`` of the state directory, so two
processes never both see a name free. A prefix is free when no live owner's
claim has it and the machine has none of its names: no bridge named like
one of the plan's switches, no root-namespace interface named like one of
its nodes or their ``<node>-eth<N>`` ports (leftovers of a run killed with
SIGKILL count: ``beaver clean`` removes them). A management network is free
when it overlaps no live claim's and no address on a root-namespace
interface. Claims of dead owners are ignored (and replaced).

:func:`claim` takes exactly the names of given parameters or raises
:class:`NameInUse` with one line saying who has them; :func:`claim_free`
takes the first free prefix and management network of a :class:`NamePool`
(``r0`` ... ``r999`` and the /24s of ``172.29.0.0/16``, starting from a
number such as the PID), so runs started at the same time never collide.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from topologies.addressing import DataCenterParams, build_plan
from topologies.record import RecordedProcess, process_start, state_dir, write_atomically

CLAIM_SUFFIX = ".claim"
PORT_NAME = re.compile(r"(?P<node>.+)-eth\d+")


class NameInUse(RuntimeError):
    """The prefix or management network is taken; the message says by what."""


class Machine:
    """What the root namespace already has: bridges, interfaces, IPv4 networks."""

    def process_start(self, pid: int) -> int | None:
        return process_start(pid)

    def bridges(self) -> set[str]:
        listed = subprocess.run(["ovs-vsctl", "--timeout=10", "list-br"], capture_output=True,
                                text=True, check=True)
        return set(listed.stdout.split())

    def interfaces(self) -> set[str]:
        return {name for _, name in socket.if_nameindex()}

    def networks(self) -> list[tuple[str, ipaddress.IPv4Network]]:
        """(interface, network) of every IPv4 address in the root namespace."""
        listed = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                                text=True, check=True)
        found = []
        for line in listed.stdout.splitlines():
            fields = line.split()
            address = fields[fields.index("inet") + 1]
            found.append((fields[1], ipaddress.IPv4Interface(address).network))
        return found


@dataclass(frozen=True)
class NamePool:
    """Prefixes ``<letter>0`` .. ``<letter>999`` and the /24s of ``network``, tried from
    ``start`` (mod their count) on."""

    letter: str
    network: str
    start: int = field(default_factory=os.getpid)

    def prefixes(self) -> Iterator[str]:
        for step in range(1000):
            yield f"{self.letter}{(self.start + step) % 1000}"

    def subnets(self) -> Iterator[str]:
        subnets = list(ipaddress.IPv4Network(self.network).subnets(new_prefix=24))
        for step in range(len(subnets)):
            yield str(subnets[(self.start % 1000 + step) % len(subnets)])


@dataclass
class Claim:
    """The claimed names: ``params`` carries the prefix and management network."""

    params: DataCenterParams
    path: Path
    owner: RecordedProcess

    def release(self) -> None:
        """Give the names back (after the network is removed); only the owner's claim goes."""
        try:
            if json.loads(self.path.read_text())["owner"] == asdict(self.owner):
                self.path.unlink()
        except (OSError, ValueError, KeyError):
            pass


def claim(params: DataCenterParams, directory: Path | None = None,
          machine: Machine | None = None) -> Claim:
    """Claim exactly the prefix and management network of ``params``, or raise NameInUse."""
    with _Claiming(params, directory, machine) as claiming:
        problem = claiming.prefix_problem(params.prefix) or claiming.subnet_problem(
            params.mgmt_net)
        if problem:
            raise NameInUse(problem)
        return claiming.write(params)


def claim_free(params: DataCenterParams, pool: NamePool, directory: Path | None = None,
               machine: Machine | None = None) -> Claim:
    """Claim the first free prefix and management network of ``pool`` for ``params``."""
    with _Claiming(params, directory, machine) as claiming:
        prefix = next((p for p in pool.prefixes() if not claiming.prefix_problem(p)), None)
        subnet = next((s for s in pool.subnets() if not claiming.subnet_problem(s)), None)
        if prefix is None or subnet is None:
            taken = "prefix" if prefix is None else "management network"
            raise NameInUse(f"every {taken} of {pool.letter}0..{pool.letter}999 / "
                            f"{pool.network} is in use (sudo beaver clean removes leftovers)")
        return claiming.write(replace(params, prefix=prefix, mgmt_net=subnet))


class _Claiming:
    """One look at the claims and the machine, under the state directory's lock."""

    def __init__(self, params: DataCenterParams, directory: Path | None,
                 machine: Machine | None) -> None:
        self.params = params
        """The shape of the data center: which names a prefix gives its nodes."""
        self.directory = directory or state_dir()
        self.machine = machine or Machine()

    def __enter__(self) -> _Claiming:
        self._lock = lock_directory(self.directory)
        self.live = [c for c in self._claims() if self._alive(c["owner"])]
        self.bridges = self.machine.bridges()
        self.interfaces = self.machine.interfaces()
        self.networks = self.machine.networks()
        return self

    def __exit__(self, *exc: Any) -> None:
        os.close(self._lock)  # releases the lock

    def prefix_problem(self, prefix: str) -> str | None:
        for other in self.live:
            if other["prefix"] == prefix:
                return (f"data center prefix {prefix!r} is in use by a running data center"
                        f" (PID {other['owner']['pid']})")
        plan = build_plan(replace(self.params, prefix=prefix))
        switches = {s.name for s in plan.switches} | {plan.mgmt_switch}
        nodes = switches | {plan.root_name} | {h.name for h in plan.hosts} | {
            x.name for x in plan.externals}
        for bridge in sorted(self.bridges & switches):
            return (f"data center prefix {prefix!r} is in use: bridge {bridge} exists "
                    "(another network, or leftovers: sudo beaver clean)")
        for name in sorted(self.interfaces):
            port = PORT_NAME.fullmatch(name)
            if name in nodes or (port and port["node"] in nodes):
                return (f"data center prefix {prefix!r} is in use: interface {name} exists "
                        "(another network, or leftovers: sudo beaver clean)")
        return None

    def subnet_problem(self, subnet: str) -> str | None:
        network = ipaddress.IPv4Network(subnet)
        for other in self.live:
            if ipaddress.IPv4Network(other["mgmt_net"]).overlaps(network):
                return (f"management network {subnet} overlaps {other['mgmt_net']} of the "
                        f"running data center {other['prefix']} (PID {other['owner']['pid']})")
        for interface, taken in self.networks:
            if taken.overlaps(network):
                return f"management network {subnet} overlaps {taken} on interface {interface}"
        return None

    def write(self, params: DataCenterParams) -> Claim:
        build_plan(params)  # valid, or ValueError before anything is written
        owner = RecordedProcess(os.getpid(), process_start(os.getpid()) or 0, "owner")
        path = self.directory / f"{params.prefix}{CLAIM_SUFFIX}"
        write_atomically(path, json.dumps({"prefix": params.prefix, "mgmt_net": params.mgmt_net,
                                           "owner": asdict(owner)}))
        return Claim(params, path, owner)

    def _claims(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.directory.glob(f"*{CLAIM_SUFFIX}")):
            try:
                document = json.loads(path.read_text())
                if {"prefix", "mgmt_net", "owner"} <= set(document):
                    yield document
            except (OSError, ValueError):
                continue

    def _alive(self, owner: dict[str, Any]) -> bool:
        return self.machine.process_start(owner["pid"]) == owner["start"]


def remove_dead_claims(directory: Path, machine: Machine | None = None) -> list[str]:
    """Delete the claims whose owner is dead (``beaver clean``); returns their prefixes."""
    if not directory.is_dir():
        return []
    machine = machine or Machine()
    removed = []
    lock = lock_directory(directory)
    try:
        for path in sorted(directory.glob(f"*{CLAIM_SUFFIX}")):
            try:
                owner = json.loads(path.read_text())["owner"]
                alive = machine.process_start(owner["pid"]) == owner["start"]
            except (OSError, ValueError, KeyError, TypeError):
                alive = False
            if not alive:
                path.unlink(missing_ok=True)
                removed.append(path.name.removesuffix(CLAIM_SUFFIX))
    finally:
        os.close(lock)
    return removed


def lock_directory(directory: Path) -> int:
    """Create ``directory`` if need be and hold its exclusive flock (closing the fd ends it)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor
