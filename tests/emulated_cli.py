"""Helpers for tests that run ``beaver`` commands against the emulated data center."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def beaver(*argv: str, timeout: float = 150,
           stdin: str | None = None) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``beaver ARGV`` (``stdin``: what it reads); returns the process and its
    data-center prefix."""
    process = subprocess.Popen([sys.executable, "-m", "cli", *argv], cwd=REPO,
                               stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # it cleans up its network on Ctrl-C
        out, err = process.communicate(timeout=60)
        pytest.fail(f"beaver {' '.join(argv)} took over {timeout} s; stderr: {err[-2000:]}")
    print(f"$ beaver {' '.join(argv)}\n{out}{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), \
        prefix_in(err)


def prefix_in(stderr: str) -> str | None:
    """The prefix a command's data center claimed (its stderr says), None if it built none."""
    claimed = re.search(r"^data center (\w+): management network", stderr, re.MULTILINE)
    return claimed[1] if claimed else None


def bridges_of(prefix: str | None) -> list[str]:
    """The Open vSwitch bridges of the data center named ``prefix`` (its switches' names
    are the prefix and a letter), on the system's daemon or on a switch daemon of its
    own still running; none for None: no data center was built."""
    if prefix is None:
        return []
    listed = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True, check=True)
    names = listed.stdout.split()
    for database in Path(tempfile.gettempdir()).glob(f"beaver-{prefix}-*/ovs/*/db.sock"):
        private = subprocess.run(["ovs-vsctl", f"--db=unix:{database}", "--timeout=5", "list-br"],
                                 capture_output=True, text=True)
        names += private.stdout.split()
    return [name for name in names if re.fullmatch(rf"{prefix}[a-z]+\d*", name)]


def workdirs_of(prefix: str | None) -> list[str]:
    """Temporary directories of the data center named ``prefix`` (plan, switch daemons'
    databases, sockets and logs) that still exist."""
    if prefix is None:
        return []
    return sorted(str(p) for p in Path(tempfile.gettempdir()).glob(f"beaver-{prefix}-*"))


SWITCH_DAEMON_PROGRAMS = ("ovsdb-server", "ovs-vswitchd")


def switch_daemons_of(prefix: str | None) -> list[int]:
    """PIDs of the switch daemons (``ovsdb-server``, ``ovs-vswitchd``) still running on the
    files of the data center named ``prefix`` (its temporary directory is in their
    arguments)."""
    if prefix is None:
        return []
    marker = f"{tempfile.gettempdir()}/beaver-{prefix}-"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it just exited
            continue
        if Path(argv[0].decode(errors="replace")).name in SWITCH_DAEMON_PROGRAMS and any(
                marker in arg.decode(errors="replace") for arg in argv[1:]):
            found.append(int(entry.name))
    return found


def last_json(out: str) -> dict[str, Any]:
    """The JSON object on the last line of a command's output."""
    return json.loads(out.strip().splitlines()[-1])


def plot(name: str, results: Path) -> Path:
    """Run ``beaver plot NAME --results RESULTS``; the PNG it wrote."""
    drawn = subprocess.run([sys.executable, "-m", "cli", "plot", name, "--results", str(results)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert drawn.returncode == 0, drawn.stderr
    png = Path(drawn.stdout.strip())
    assert png.read_bytes().startswith(b"\x89PNG")
    return png


def quick_run(name: str, out: Path, columns: tuple[str, ...],
              timeout: float = 240) -> pd.DataFrame:
    """Run ``beaver experiment NAME --quick``: it succeeds, leaves no bridge of its data
    center behind and writes the documented columns; its CSV as a DataFrame."""
    ran, prefix = beaver("experiment", name, "--quick", "--out", str(out), timeout=timeout)
    assert ran.returncode == 0, ran.stderr
    assert bridges_of(prefix) == []
    frame = pd.read_csv(out / name / f"{name}.csv")
    assert tuple(frame.columns) == columns
    return frame
