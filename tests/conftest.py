"""Shared test configuration.

Tests marked ``mininet`` need root, Open vSwitch and Mininet; they are skipped
with the reason when the machine cannot run them (not root, no OVS).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mininet_machine() -> None:
    """Skip (with the reason) unless this machine can build an emulated data center."""
    from testbed.network import ovs_problem

    problem = ovs_problem()
    if problem is not None:
        pytest.skip(f"emulated data center unavailable: {problem}")
