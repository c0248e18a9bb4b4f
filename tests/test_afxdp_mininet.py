"""A data center with AF_XDP ports leaves nothing behind on Ctrl-C, SIGTERM or SIGKILL.

With ``port_type="afxdp"`` each switch daemon attaches an XDP program and an
AF_XDP socket to every veth end of its data-plane bridges and polls them
from a PMD thread. A process holding such a data center is stopped with
Ctrl-C or SIGTERM (it cleans up itself) or SIGKILL (``beaver clean`` removes
what its record names); afterwards no switch daemon, bridge, interface
(and so no XDP program, which goes with its interface), temporary directory,
record or name claim of it is left. (Leaving normally or on an exception,
and what the ports forward and stamp: ``test_dataplane_mininet.py``.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from emulated_cli import REPO, bridges_of, switch_daemons_of, workdirs_of

from topologies.record import STATE_DIR_VARIABLE

pytestmark = pytest.mark.mininet

HOLDER = """
import sys, time
from testbed.network import DataCenter
from testbed.termination import Terminated, raise_on_termination
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool

raise_on_termination()
params = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=2, externals=1,
                          relays=0)
try:
    with DataCenter(params, names=NamePool("x", "172.31.0.0/16"), port_type="afxdp") as dc:
        print(dc.plan.prefix, flush=True)
        time.sleep(300)
except Terminated as terminated:
    sys.exit(terminated.exit_status)
"""


def interfaces_of(prefix: str) -> list[str]:
    """Root-namespace interfaces whose name carries the data center's prefix."""
    return [name for name in os.listdir("/sys/class/net") if name.startswith(prefix)]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=lambda stop: stop.name)
def test_stopping_a_data_center_with_afxdp_ports_leaves_nothing(
        mininet_machine: None, tmp_path: Path, stop: signal.Signals) -> None:
    state = tmp_path / "state"
    environment = {**os.environ, STATE_DIR_VARIABLE: str(state)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix, left = None, ['not looked at']
    try:
        assert holder.stdout is not None
        prefix = holder.stdout.readline().strip()
        assert prefix, f"the data center did not start: {holder.communicate()[1][-2000:]}"
        assert switch_daemons_of(prefix) and interfaces_of(prefix)
        holder.send_signal(stop)
        status = holder.wait(timeout=60)
        assert status != 0
        if stop == signal.SIGKILL:
            assert switch_daemons_of(prefix), "SIGKILL left the daemons for beaver clean"
            cleaned = subprocess.run([sys.executable, "-m", "cli", "clean"], cwd=REPO,
                                     env=environment, capture_output=True, text=True,
                                     timeout=120)
            assert cleaned.returncode == 0, cleaned.stderr
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if prefix:
            left = (bridges_of(prefix) + workdirs_of(prefix) + interfaces_of(prefix)
                    + [f"switch daemon {pid}" for pid in switch_daemons_of(prefix)])
        subprocess.run([sys.executable, "-m", "cli", "clean"], cwd=REPO, env=environment,
                       capture_output=True, timeout=120)
    assert left == []
    assert list(state.iterdir()) == [], "no record and no name claim is left"
