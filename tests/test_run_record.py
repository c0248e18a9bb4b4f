"""Run records and ``beaver clean``'s logic, without root: real processes, fake bridges.

The processes are this test's own sleeping children, so PID and start-time
checks run against ``/proc`` for real; bridges and interfaces live in a
:class:`FakeSystem`. Every child is killed at the end, also on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from topologies.leftovers import System, clean
from topologies.record import (
    Record,
    RecordedBridge,
    RecordedInterface,
    RecordedProcess,
    RunRecord,
    process_start,
    record_path,
    write_atomically,
)

REPO = Path(__file__).resolve().parents[1]


class FakeSystem(System):
    """Real processes; bridges (name -> uuid) and interfaces (name -> ifindex) in dicts."""

    def __init__(self, bridges: dict[str, str], interfaces: dict[str, int]) -> None:
        self.bridges = bridges
        self.interfaces = interfaces

    def bridge_uuid(self, name: str) -> str | None:
        return self.bridges.get(name)

    def delete_bridge(self, name: str) -> None:
        del self.bridges[name]

    def interface_index(self, name: str) -> int | None:
        return self.interfaces.get(name)

    def delete_interface(self, name: str) -> None:
        del self.interfaces[name]


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start sleeping children on demand (append to the list); all killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


def sleeper(started: list[subprocess.Popen[bytes]]) -> RecordedProcess:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    started.append(child)
    start = process_start(child.pid)
    assert start is not None
    return RecordedProcess(child.pid, start, "sleeper")


def dead_owner(started: list[subprocess.Popen[bytes]]) -> RecordedProcess:
    owner = sleeper(started)
    started[-1].kill()
    started[-1].wait()
    return owner


def test_the_record_follows_the_run_and_is_written_whole(tmp_path: Path,
                                                         sleepers: list) -> None:
    child = sleeper(sleepers)
    run = RunRecord.create("t1", tmp_path)
    assert run.path == tmp_path / f"t1-{os.getpid()}.json"
    run.add_process(child.pid, "agent")
    run.add_bridges(["t1s1", "t1s2"])
    run.pin_bridges({"t1s1": "uuid-1"})
    run.add_interfaces({"t1s1-eth1": 17})
    run.add_directory(tmp_path / "logs")
    on_disk = Record.from_json(run.path.read_text())
    assert on_disk == run.record and on_disk.owner_alive()
    assert on_disk.processes == (RecordedProcess(child.pid, child.start, "agent"),)
    assert on_disk.bridges == (RecordedBridge("t1s1", "uuid-1"), RecordedBridge("t1s2"))
    assert on_disk.interfaces == (RecordedInterface("t1s1-eth1", 17),)
    run.forget_process(child.pid)
    assert Record.from_json(run.path.read_text()).processes == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.path.name], "no temporary left"
    run.remove()
    assert not run.path.exists()
    run.add_directory(tmp_path)  # after removal nothing is written again
    assert not run.path.exists()


def test_a_live_runs_record_is_left_alone(tmp_path: Path, sleepers: list) -> None:
    child = sleeper(sleepers)
    run = RunRecord.create("t2", tmp_path)  # owned by this (live) process
    run.add_process(child.pid, "agent")
    run.add_bridges(["t2s1"])
    run.pin_bridges({"t2s1": "uuid-live"})
    system = FakeSystem({"t2s1": "uuid-live"}, {})
    outcomes, problems = clean(tmp_path, system)
    assert problems == []
    assert [(o.record, o.owner_alive, o.removed["processes"]) for o in outcomes] == \
        [(run.record.name, True, [])]
    assert sleepers[0].poll() is None and system.bridges == {"t2s1": "uuid-live"}
    assert run.path.exists()


def test_a_dead_runs_leftovers_go_but_nothing_that_merely_shares_a_name(
        tmp_path: Path, sleepers: list) -> None:
    ours, reused = sleeper(sleepers), sleeper(sleepers)
    reused_pid = RecordedProcess(reused.pid, reused.start + 1, "agent")  # PID now another's
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "agent.log").write_text("log")
    live = RunRecord.create("t3", tmp_path / "state")
    live.add_bridges(["t3s4"])  # a live run with the same prefix owns t3s4 now
    dead = Record(
        prefix="t3", owner=dead_owner(sleepers), created="2026-01-01T00:00:00+00:00",
        processes=(ours, reused_pid),
        bridges=(RecordedBridge("t3s1", "u1"), RecordedBridge("t3s2", "u2"),
                 RecordedBridge("t3s3"), RecordedBridge("t3s4"), RecordedBridge("t3gone", "u5")),
        interfaces=(RecordedInterface("t3s1-eth1", 40), RecordedInterface("t3s2-eth1", 41),
                    RecordedInterface("t3s3-eth1", 42)),
        directories=(str(logs),),
    )
    write_atomically(record_path(tmp_path / "state", dead.name), dead.to_json())
    system = FakeSystem(
        bridges={"t3s1": "u1", "t3s2": "another", "t3s3": "u3", "t3s4": "u4", "other": "u9"},
        interfaces={"t3s1-eth1": 40, "t3s2-eth1": 99},
    )

    dry, _ = clean(tmp_path / "state", system, dry_run=True)
    assert [o.removed["bridges"] for o in dry if not o.owner_alive] == [["t3s1", "t3s3"]]
    assert sleepers[0].poll() is None and len(system.bridges) == 5 and logs.exists()

    outcomes, problems = clean(tmp_path / "state", system)
    assert problems == []
    outcome = next(o for o in outcomes if not o.owner_alive)
    assert outcome.error is None
    assert outcome.removed == {
        "processes": [{"pid": ours.pid, "role": "sleeper"}],
        "bridges": ["t3s1", "t3s3"],
        "interfaces": ["t3s1-eth1"],
        "directories": [str(logs)],
    }
    assert sleepers[0].wait(timeout=10) == -9, "the recorded process was killed"
    assert sleepers[1].poll() is None, "a PID with another start time is not ours"
    assert system.bridges == {"t3s2": "another", "t3s4": "u4", "other": "u9"}
    assert system.interfaces == {"t3s2-eth1": 99}
    assert not logs.exists()
    assert not record_path(tmp_path / "state", dead.name).exists()
    assert live.path.exists(), "the live run's record stays"
    assert len(outcome.kept) == 4 and any(str(reused.pid) in k for k in outcome.kept)


def test_an_unreadable_record_is_reported_and_kept(tmp_path: Path) -> None:
    broken = tmp_path / "r1-1.json"
    broken.write_text("{not json")
    outcomes, problems = clean(tmp_path, FakeSystem({}, {}))
    assert outcomes == [] and len(problems) == 1 and problems[0].startswith(str(broken))
    assert broken.exists()


def test_clean_without_root_is_one_line_and_exit_1() -> None:
    command = [sys.executable, "-m", "cli", "clean"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "needs root" in done.stderr
