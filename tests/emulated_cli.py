"""Helpers for tests that run ``beaver`` commands against the emulated data center."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
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
    are the prefix and a letter); none for None: no data center was built."""
    if prefix is None:
        return []
    listed = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split()
            if re.fullmatch(rf"{prefix}[a-z]+\d*", name)]


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
