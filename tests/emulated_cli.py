"""Helpers for tests that run ``beaver`` commands against the emulated data center."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def beaver(*argv: str, timeout: float = 150) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``beaver ARGV``; returns the process and its data-center prefix."""
    process = subprocess.Popen([sys.executable, "-m", "cli", *argv], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # it cleans up its network on Ctrl-C
        out, err = process.communicate(timeout=60)
        pytest.fail(f"beaver {' '.join(argv)} took over {timeout} s; stderr: {err[-2000:]}")
    print(f"$ beaver {' '.join(argv)}\n{out}{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), \
        f"r{process.pid % 1000}"


def bridges_of(prefix: str) -> list[str]:
    """The Open vSwitch bridges whose names start with ``prefix``."""
    listed = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split() if name.startswith(prefix)]


def last_json(out: str) -> dict[str, Any]:
    """The JSON object on the last line of a command's output."""
    return json.loads(out.strip().splitlines()[-1])
