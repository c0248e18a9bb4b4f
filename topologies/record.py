"""The record of what one running data center created, kept on disk while it runs.

A run killed with SIGKILL cannot remove its network: Open vSwitch bridges,
root-namespace veth interfaces, the controller process, the Mininet node
shells, the processes started in hosts (which keep their namespaces alive)
and temporary directories stay behind. So, while it runs,
:class:`testbed.network.DataCenter` keeps a :class:`RunRecord` of exactly
what it created, each item written down as soon as it exists, and deletes
the record after a normal cleanup. ``beaver clean``
(:mod:`topologies.leftovers`) removes what the records of dead runs list.

Each item carries what identifies it beyond its name, because names and
PIDs are reused: a process its start time (``/proc/PID/stat`` field 22, in
clock ticks since boot), a bridge its OVSDB ``_uuid`` (``None`` until the
bridge exists: it is written down by name first), an interface its ifindex.
The owner (the process holding the data center) is identified the same way.

Records live in one directory, ``/run/beaver`` unless the environment
variable ``BEAVER_STATE_DIR`` names another, as ``<prefix>-<owner pid>.json``
(unique among concurrent runs: the owner PID is). ``/run`` is emptied at
boot, when no recorded process survives anyway. Each change rewrites the
file atomically: a temporary file ``.<name>.tmp`` beside it, then a rename,
so a reader sees the previous or the new record, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_DIR_VARIABLE = "BEAVER_STATE_DIR"
DEFAULT_STATE_DIR = Path("/run/beaver")
RECORD_VERSION = 1


def state_dir() -> Path:
    """Where records are kept: ``$BEAVER_STATE_DIR``, else ``/run/beaver``."""
    return Path(os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR)


def process_start(pid: int) -> int | None:
    """Start time of a live process (clock ticks since boot); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    state, start = fields[0], int(fields[19])
    return None if state in ("Z", "X") else start


@dataclass(frozen=True)
class RecordedProcess:
    pid: int
    start: int
    role: str
    """What it is, e.g. ``controller``, ``shell of r12h1``, ``hosts.agent on r12h1``."""


@dataclass(frozen=True)
class RecordedBridge:
    name: str
    uuid: str | None = None
    """OVSDB ``_uuid`` once the bridge exists; None while only its name is known."""


@dataclass(frozen=True)
class RecordedInterface:
    name: str
    ifindex: int


@dataclass(frozen=True)
class Record:
    """One run's record: the owner and everything it created that still exists."""

    prefix: str
    owner: RecordedProcess
    created: str
    processes: tuple[RecordedProcess, ...] = ()
    bridges: tuple[RecordedBridge, ...] = ()
    interfaces: tuple[RecordedInterface, ...] = ()
    directories: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.owner.pid}"

    def owner_alive(self) -> bool:
        return process_start(self.owner.pid) == self.owner.start

    def to_json(self) -> str:
        return json.dumps({"version": RECORD_VERSION, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Record:
        """The record in ``text``; ValueError if it is not one this version wrote."""
        try:
            document: dict[str, Any] = json.loads(text)
            if document.pop("version") != RECORD_VERSION:
                raise ValueError("record of another version")
            return cls(
                prefix=document["prefix"], owner=RecordedProcess(**document["owner"]),
                created=document["created"],
                processes=tuple(RecordedProcess(**p) for p in document["processes"]),
                bridges=tuple(RecordedBridge(**b) for b in document["bridges"]),
                interfaces=tuple(RecordedInterface(**i) for i in document["interfaces"]),
                directories=tuple(document["directories"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a run record ({error})") from None


def record_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def temporary_path(directory: Path, name: str) -> Path:
    return directory / f".{name}.tmp"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``: a temporary file beside it, flushed, then renamed."""
    temporary = path.with_name(f".{path.stem}.tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass
class RunRecord:
    """The on-disk record of a running data center, rewritten on every change."""

    record: Record
    directory: Path
    removed: bool = field(default=False)

    @classmethod
    def create(cls, prefix: str, directory: Path | None = None) -> RunRecord:
        """Start the record of a run owned by this process (written at once)."""
        owner = RecordedProcess(os.getpid(), process_start(os.getpid()) or 0, "owner")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        directory = directory or state_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_record = cls(Record(prefix=prefix, owner=owner, created=created), directory)
        run_record._write()
        return run_record

    @property
    def path(self) -> Path:
        return record_path(self.directory, self.record.name)

    def add_process(self, pid: int, role: str) -> None:
        start = process_start(pid)
        if start is None:  # it exited already: nothing is left to remove
            return
        self._change(processes=(*self.record.processes, RecordedProcess(pid, start, role)))

    def forget_process(self, pid: int) -> None:
        """The process ended and was reaped by its owner."""
        self._change(processes=tuple(p for p in self.record.processes if p.pid != pid))

    def add_bridges(self, names: list[str]) -> None:
        """Bridges about to be created, known by name only until :meth:`pin_bridges`."""
        known = {b.name for b in self.record.bridges}
        new = tuple(RecordedBridge(name) for name in names if name not in known)
        self._change(bridges=(*self.record.bridges, *new))

    def pin_bridges(self, uuids: dict[str, str]) -> None:
        """The OVSDB ``_uuid`` of bridges that now exist."""
        self._change(bridges=tuple(replace(b, uuid=uuids.get(b.name, b.uuid))
                                   for b in self.record.bridges))

    def add_interfaces(self, interfaces: dict[str, int]) -> None:
        """Root-namespace interfaces, name -> ifindex."""
        new = tuple(RecordedInterface(name, index) for name, index in interfaces.items())
        self._change(interfaces=(*self.record.interfaces, *new))

    def add_directory(self, path: Path) -> None:
        self._change(directories=(*self.record.directories, str(path)))

    def remove(self) -> None:
        """Everything recorded was removed by its owner: delete the record."""
        self.path.unlink(missing_ok=True)
        self.removed = True

    def _change(self, **changes: Any) -> None:
        self.record = replace(self.record, **changes)
        self._write()

    def _write(self) -> None:
        if not self.removed:
            write_atomically(self.path, self.record.to_json())
