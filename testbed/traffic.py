"""User traffic in a running emulation, measured while snapshots are taken or not.

The measurements the overhead experiment and ``benchmarks/bench_run.py``
share, each over one *phase* of a run (:func:`phase`: ``duration`` seconds
with snapshots at a rate, or none):

* :func:`delivered`: datagrams the agents delivered (their counters reports);
* :func:`data_tx_bytes`: bytes sent by every port of every data-plane switch
  (``ovs-ofctl dump-ports``; the management network is not counted);
* :func:`client_phase`: one external key-value client's requests through
  the VIP during a phase (its ``summary``: replies, latency percentiles);
* :class:`Iperf`: iperf3 TCP from an external host to the VIP, through the
  gateways, optionally paced at an offered rate (``-b``). The gateways
  spread flows over the backends by a Maglev hash, and iperf3's control and
  data connections are two flows: the client host's ephemeral port range is
  narrowed to one port and ``--cport`` names the other, both chosen so that
  the two flows hash to the backend where the iperf3 server runs.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from typing import Any

from controller.gateways.maglev import FlowKey, MaglevTable
from hosts.agent import SERVICE_PORT
from testbed.emulation import Emulation

TX_BYTES = re.compile(r'port\s+"?([^":\s]+)"?:\s*rx pkts=.*?tx pkts=\d+, bytes=(\d+)', re.S)
"""A port's name or number and its tx bytes in ``ovs-ofctl dump-ports`` output."""
IPERF_PORT = 5201
FIRST_CLIENT_PORT = 20000
"""Client ports are taken from here on, a fresh pair per run (no TIME_WAIT clash)."""
TCP = 6


def delivered(emulation: Emulation) -> int:
    """Datagrams the agents delivered so far (their latest counters reports)."""
    assert emulation.service is not None
    return sum(c.get("delivered") or 0 for c in dict(emulation.service.node_counters).values())


def data_tx_bytes(emulation: Emulation) -> int:
    """Bytes sent so far by every port of every data-plane switch."""
    total = 0
    for switch in emulation.plan.switches:
        ports = emulation.datacenter.ofctl("dump-ports", switch.name)
        total += sum(int(sent) for port, sent in TX_BYTES.findall(ports) if port != "LOCAL")
    return total


def phase(emulation: Emulation, duration: float, rate: float | None) -> None:
    """``duration`` seconds with snapshots at ``rate`` per second (None: just the workload)."""
    assert emulation.service is not None
    if rate is None:
        time.sleep(duration)  # the measurement window itself
    else:
        emulation.service.take(max(1, round(rate * duration)), rate, timeout=duration + 60)


def client_phase(emulation: Emulation, client_rate: float, duration: float,
                 rate: float | None) -> dict[str, Any]:
    """One key-value client through the VIP during a :func:`phase`; its summary."""
    client = next(x for x in emulation.plan.externals if x.role == "client")
    vip = emulation.plan.services[0].vip
    process = emulation.launch(client.name, [
        "hosts.client", "--vip", f"{vip}:{SERVICE_PORT}", "--rate", str(client_rate),
        "--duration", str(duration), "--grace", "1",
    ])
    process.wait_line("client ready", 30)
    phase(emulation, duration, rate)
    line = process.wait_line("summary", duration + 30)
    return dict(json.loads(line.split(" ", 1)[1]))


class IperfFailed(RuntimeError):
    """iperf3 ran but reported no measurement."""


class Iperf:
    """iperf3 TCP from the plan's client host to the VIP, the server on one backend."""

    def __init__(self, emulation: Emulation):
        self.emulation = emulation
        plan = emulation.plan
        self.client = next(x for x in plan.externals if x.role == "client")
        self.vip = plan.services[0].vip
        self.table = MaglevTable(plan.services[0].backends)
        self.backend = plan.services[0].backends[0]
        self._ports = itertools.count(FIRST_CLIENT_PORT)
        server = emulation.launch(self.backend, [
            "iperf3", "-s", "-p", str(IPERF_PORT), "--forceflush"], module=False)
        server.wait_line("Server listening", 30)

    def _to_server(self, port: int) -> bool:
        flow = FlowKey(TCP, self.client.ip, self.vip, port, IPERF_PORT)
        return self.table.lookup(flow) == self.backend

    def run(self, seconds: float, offered_bps: float | None = None) -> float:
        """Received TCP throughput (bit/s) over ``seconds``, paced at ``offered_bps``.

        A run iperf3 itself reports failed (seen once in a long experiment: its control
        connection reset) is tried once more with other ports before the error stands."""
        try:
            return self._run_once(seconds, offered_bps)
        except IperfFailed as first:
            try:
                return self._run_once(seconds, offered_bps)
            except IperfFailed as second:
                raise RuntimeError(f"iperf3 failed twice: {first}; then {second}") from None

    def _run_once(self, seconds: float, offered_bps: float | None) -> float:
        control = next(port for port in self._ports if self._to_server(port))
        data = next(port for port in self._ports if self._to_server(port))
        host = self.emulation.datacenter.host(self.client.name)
        host.cmd(f"sysctl -q -w net.ipv4.ip_local_port_range='{control} {control}'")
        command = ["iperf3", "-c", self.vip, "-p", str(IPERF_PORT), "--cport", str(data),
                   "-t", str(seconds), "-J"]
        if offered_bps is not None:
            command += ["-b", str(int(offered_bps))]
        run = host.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = run.communicate(timeout=seconds + 30)
        try:
            report = json.loads(out)
        except ValueError:
            raise IperfFailed(f"iperf3 printed no report: {err.strip()[-300:]}") from None
        if "error" in report:
            raise IperfFailed(f"iperf3: {report['error']}")
        return float(report["end"]["sum_received"]["bits_per_second"])
