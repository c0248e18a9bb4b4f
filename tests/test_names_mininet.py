"""Names and management networks of concurrent data centers never collide.

``beaver run`` used to name its data center ``r<PID mod 1000>`` with the
management network ``172.29.<PID mod 1000 mod 250>.0/24``: a second run
whose PID agreed mod 1000 deleted the first one's bridges. Here two runs are
started so that their PIDs agree mod 1000 (the kernel's last PID is set
before the second starts) and both must finish with every snapshot. And
``python -m testbed.network`` given a prefix in use says so in one line
and leaves the other network alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulated_cli import REPO, bridges_of, last_json, prefix_in

from testbed.network import DataCenter
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool

pytestmark = pytest.mark.mininet
LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
RUN = ("run", "--snapshots", "10", "--ingroup", "2", "--gateways", "1", "--json")


def popen_with_pid_like(other: int, argv: list[str], **options) -> subprocess.Popen[str]:
    """Start ``argv`` with a PID equal to ``other`` mod 1000 (root sets the last PID)."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for _ in range(50):
        wanted = int(LAST_PID.read_text()) + 1
        wanted += (other - wanted) % 1000
        if wanted >= pid_max:
            wanted = 1000 + other % 1000
        LAST_PID.write_text(str(wanted - 1))
        process = subprocess.Popen(argv, **options)
        if process.pid % 1000 == other % 1000:
            return process
        process.kill()  # another process took that PID first: try again
        process.wait()
    pytest.fail(f"could not start a process with a PID equal to {other} mod 1000")


class Run:
    """A ``beaver run`` subprocess whose stderr is collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.stderr: list[str] = []
        self.named = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if prefix_in(line):
                self.named.set()

    def finish(self, timeout: float) -> tuple[int, str, str]:
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        code = self.process.wait(timeout)
        return code, out, "".join(self.stderr)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.process.send_signal(2)  # Ctrl-C: it removes its network
            run.process.wait(60)


def test_two_runs_whose_pids_agree_mod_1000_both_finish(mininet_machine: None, tmp_path: Path,
                                                         runs: list[Run]) -> None:
    options = {"cwd": REPO, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    first = Run(subprocess.Popen([sys.executable, "-m", "cli", *RUN, "--db",
                                  str(tmp_path / "first.db")], **options))
    runs.append(first)
    assert first.named.wait(120), f"the first run named no data center: {first.stderr}"
    second = Run(popen_with_pid_like(first.process.pid, [
        sys.executable, "-m", "cli", *RUN, "--db", str(tmp_path / "second.db")], **options))
    runs.append(second)
    print(f"PIDs {first.process.pid} and {second.process.pid}")
    results = [run.finish(timeout=300) for run in (first, second)]
    prefixes = []
    for code, out, err in results:
        print(err[-1500:])
        assert code == 0, err[-2000:]
        summary = last_json(out)
        assert summary["snapshots"] == summary["complete"] == 10
        assert summary["invariant_violations"] == 0
        prefixes.append(prefix_in(err))
    assert prefixes[0] != prefixes[1]
    assert bridges_of(prefixes[0]) == bridges_of(prefixes[1]) == []


def bridge_uuids(dc: DataCenter, names: set[str]) -> dict[str, str]:
    """OVSDB ``_uuid`` of each named bridge, asked of the switch daemon running it."""
    return {name: dc.switch_daemon(name).vsctl("--if-exists", "get", "Bridge", name,
                                               "_uuid").strip() for name in names}


def test_a_prefix_in_use_is_one_line_and_the_other_network_stays(mininet_machine: None) -> None:
    small = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=1, externals=1,
                             relays=0)
    with DataCenter(small, names=NamePool("n", "172.25.0.0/16")) as dc:
        switches = {s.name for s in dc.plan.switches} | {dc.plan.mgmt_switch}
        before = bridge_uuids(dc, switches)
        assert set(before) == switches and all(before.values())
        again = subprocess.run(
            [sys.executable, "-m", "testbed.network", f"prefix={dc.plan.prefix}", "spines=1",
             "leaves=1", "gateways=1"], cwd=REPO, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert again.returncode == 1, again.stderr
        assert again.stderr.count("\n") == 1 and "is in use" in again.stderr, again.stderr
        assert bridge_uuids(dc, switches) == before, "the other network's bridges were touched"
        assert dc.controller is not None and dc.controller.status()
