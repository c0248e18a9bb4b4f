"""Removing what dead runs left behind, exactly as their records list it.

For every record (:mod:`topologies.record`) in the state directory whose
owner is dead (no process with its PID and start time), :func:`clean`
removes, in this order: the recorded processes that are still the same
processes (same PID *and* start time; a PID now used by another process is
left alone), the recorded bridges whose OVSDB ``_uuid`` is still the
recorded one, the root-namespace interfaces whose ifindex is still the
recorded one, and the recorded temporary directories; then the record.
Processes go first: host processes keep namespaces, and with them veth
pairs, alive.

A bridge recorded by name only (the run died between naming and creating
it) is deleted when it exists and no live run's record lists that name:
another run with the same prefix would have taken it over. Records of live
runs are left alone and reported. Nothing is ever chosen by name pattern.

The machine is reached through :class:`System` (``/proc``, signals,
``ovs-vsctl``, ``ip``), so the logic can be tested with fake bridges and
interfaces.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topologies.record import Record, process_start, record_path, temporary_path


class System:
    """The machine as the cleaner sees it: processes, Open vSwitch bridges, interfaces."""

    def process_start(self, pid: int) -> int | None:
        return process_start(pid)

    def kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def bridge_uuid(self, name: str) -> str | None:
        found = subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "get", "Bridge",
                                name, "_uuid"], capture_output=True, text=True, check=True)
        return found.stdout.strip() or None

    def delete_bridge(self, name: str) -> None:
        subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name],
                       capture_output=True, text=True, check=True)

    def interface_index(self, name: str) -> int | None:
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None

    def delete_interface(self, name: str) -> None:
        """Delete a root-namespace interface; one already gone (a veth peer's) is fine."""
        deleted = subprocess.run(["ip", "link", "del", "dev", name], capture_output=True,
                                 text=True)
        if deleted.returncode != 0 and self.interface_index(name) is not None:
            raise RuntimeError(f"ip link del {name}: {deleted.stderr.strip()}")


@dataclass
class Outcome:
    """What :func:`clean` did (or, in a dry run, would do) with one record."""

    record: str
    owner: int
    owner_alive: bool
    removed: dict[str, list[Any]] = field(default_factory=lambda: {
        "processes": [], "bridges": [], "interfaces": [], "directories": []})
    kept: list[str] = field(default_factory=list)
    """Recorded items left alone, each with the reason (reused PID, another bridge)."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "owner": self.owner, "owner_alive": self.owner_alive,
                "removed": self.removed, "kept": self.kept, "error": self.error}


def read_records(directory: Path) -> tuple[list[Record], list[str]]:
    """The records in ``directory`` and one problem line per unreadable file."""
    records, problems = [], []
    if not directory.is_dir():
        return records, problems
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(Record.from_json(path.read_text()))
        except (OSError, ValueError) as error:
            problems.append(f"{path}: {error}")
    return records, problems


def clean(directory: Path, system: System | None = None, dry_run: bool = False,
          exit_timeout: float = 10.0) -> tuple[list[Outcome], list[str]]:
    """Remove the leftovers of every dead run recorded in ``directory``."""
    system = system or System()
    records, problems = read_records(directory)
    live = [r for r in records if system.process_start(r.owner.pid) == r.owner.start]
    claimed_by_live = {b.name for r in live for b in r.bridges}
    outcomes = []
    for record in records:
        outcome = Outcome(record.name, record.owner.pid, owner_alive=record in live)
        if not outcome.owner_alive:
            try:
                remove(record, system, outcome, claimed_by_live, dry_run, exit_timeout)
                if not dry_run:
                    record_path(directory, record.name).unlink(missing_ok=True)
                    temporary_path(directory, record.name).unlink(missing_ok=True)
            except (OSError, RuntimeError, subprocess.CalledProcessError,
                    TimeoutError) as error:
                detail = getattr(error, "stderr", None) or error
                outcome.error = f"{type(error).__name__}: {str(detail).strip()}"
        outcomes.append(outcome)
    return outcomes, problems


def remove(record: Record, system: System, outcome: Outcome, claimed_by_live: set[str],
           dry_run: bool, exit_timeout: float) -> None:
    """Remove what ``record`` lists and is still the same thing, noting it in ``outcome``."""
    ours = []
    for process in record.processes:
        start = system.process_start(process.pid)
        if start == process.start:
            ours.append(process)
        elif start is not None:
            outcome.kept.append(f"PID {process.pid} ({process.role}): now another process")
    if not dry_run:
        for process in ours:
            system.kill(process.pid)
        wait_gone(system, ours, exit_timeout)
    outcome.removed["processes"] = [{"pid": p.pid, "role": p.role} for p in ours]

    for bridge in record.bridges:
        uuid = system.bridge_uuid(bridge.name)
        if uuid is None:
            continue
        if bridge.uuid is None and bridge.name in claimed_by_live:
            outcome.kept.append(f"bridge {bridge.name}: recorded by name only, a live run has it")
        elif bridge.uuid not in (None, uuid):
            outcome.kept.append(f"bridge {bridge.name}: another bridge of that name now")
        else:
            if not dry_run:
                system.delete_bridge(bridge.name)
            outcome.removed["bridges"].append(bridge.name)

    for interface in record.interfaces:
        index = system.interface_index(interface.name)
        if index is None:
            continue  # gone with its namespace or its veth peer
        if index != interface.ifindex:
            outcome.kept.append(f"interface {interface.name}: another interface of that name now")
            continue
        if not dry_run:
            system.delete_interface(interface.name)
        outcome.removed["interfaces"].append(interface.name)

    for directory in map(Path, record.directories):
        if directory.is_dir():
            if not dry_run:
                shutil.rmtree(directory)
            outcome.removed["directories"].append(str(directory))


def wait_gone(system: System, processes: list[Any], timeout: float) -> None:
    """Wait until every killed process has exited (their parent died, so none is ours)."""
    deadline = time.monotonic() + timeout
    remaining = list(processes)
    while remaining:
        remaining = [p for p in remaining if system.process_start(p.pid) == p.start]
        if remaining and time.monotonic() > deadline:
            raise TimeoutError("still running after SIGKILL: "
                               + ", ".join(f"{p.pid} ({p.role})" for p in remaining))
        if remaining:
            time.sleep(0.02)
