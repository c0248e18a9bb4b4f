"""CPU time of processes so far, for the benchmarks' CPU-per-update and per-snapshot figures.

:func:`cpu_seconds` reads ``/proc/PID/stat``. :func:`emulation_parts` names
the processes of a running emulation by the part of the run they are, and
:class:`PartsCpu` adds up each part's CPU over the phases of a benchmark
labelled ``without`` and ``with`` (snapshots), so that each part's extra CPU
per snapshot is its CPU in the with phases less what it used in as long
without (its rate without, times the with phases' length).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes have used so far (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        # After "pid (comm) ": comm may hold spaces; utime and stime are fields 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def emulation_parts(emulation: Any) -> dict[str, list[int]]:
    """The processes of a running :class:`testbed.emulation.Emulation`, by part: the
    coordinator (this process: the coordinator service, its store and gateway client, and
    the benchmark's own threads), each agent (``agent <node>``), the relays, the
    background load clients, the gateway controller, the gateways' switch daemons and the
    fabric's (each ``ovs-vswitchd`` with its ``ovsdb-server``)."""
    datacenter = emulation.datacenter
    parts: dict[str, list[int]] = {"coordinator": [os.getpid()]}
    for agent in emulation.agents:
        parts[f"agent {agent.name.rsplit(' ', 1)[-1]}"] = [agent.popen.pid]
    parts["relays"] = [relay.popen.pid for relay in emulation.relays]
    parts["clients"] = [client.popen.pid for client in emulation.clients]
    parts["controller"] = [datacenter.controller_process.pid]
    daemons = datacenter.daemons
    for part, chosen in (("gateway daemons", daemons.of_gateways()),
                         ("fabric daemon", [daemons.daemons[daemons.FABRIC]])):
        parts[part] = [process.pid for daemon in chosen
                       for process in (daemon.switch, daemon.database) if process is not None]
    return parts


class PartsCpu:
    """CPU seconds of each part of a run, added up per phase label."""

    def __init__(self, parts: dict[str, list[int]]):
        self.parts = parts
        self.spent: dict[str, dict[str, float]] = {}
        """Per label, per part, CPU seconds used in the phases of that label."""
        self.seconds: dict[str, float] = {}
        """Per label, the wall seconds of its phases."""

    @contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """Count the CPU used inside the block under ``label``."""
        before = {part: cpu_seconds(pids) for part, pids in self.parts.items()}
        began = time.monotonic()
        yield
        took = time.monotonic() - began
        spent = self.spent.setdefault(label, dict.fromkeys(self.parts, 0.0))
        for part, pids in self.parts.items():
            spent[part] += cpu_seconds(pids) - before[part]
        self.seconds[label] = self.seconds.get(label, 0.0) + took

    def ms_per_snapshot(self, snapshots: int, label: str = "with") -> dict[str, float]:
        """Each part's extra CPU milliseconds per snapshot in the phases of ``label`` (beyond
        its rate in the ``without`` phases), and ``total``, ``agents`` (all of them) and
        ``gateways`` (controller and gateway daemons) summed."""
        without, took = self.seconds["without"], self.seconds[label]
        extra = {part: (self.spent[label][part] - self.spent["without"][part] * took / without)
                 / max(1, snapshots) * 1e3 for part in self.parts}
        extra["agents"] = sum(ms for part, ms in extra.items() if part.startswith("agent "))
        extra["gateways"] = extra["controller"] + extra["gateway daemons"]
        extra["total"] = sum(ms for part, ms in extra.items()
                             if part not in ("agents", "gateways"))
        return extra
