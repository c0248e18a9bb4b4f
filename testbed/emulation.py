"""An in-group under the snapshot coordinator, in an emulated data center.

:class:`Emulation` is a context manager that starts, in this order, and
removes in reverse order (also on Ctrl-C or an error, by the handles it
kept): the data center (:class:`testbed.network.DataCenter`: Mininet
and the os-ken gateway controller), the coordinator service
(:class:`controller.coordinator.service.SnapshotService`, listening on the root
namespace's management address, reaching the gateways through a
:class:`~controller.gateways.client.GatewayClient` connection of its own, on which
its id updates are pipelined), one relay
per relay host (external partner banks with the WAN delay, answering each
node's transfers on a flow the gateways give to another node:
:mod:`testbed.relay_ports`)
and one agent per
in-group host running the service (the bank, or the key-value store), then,
for a service loaded by external clients (the key-value store), one load client
(:mod:`hosts.client`) per client host of the plan, sending requests to the
service's VIP. Starting waits for
conditions, never for a fixed time: each process's ready line, then every
agent's hello, then each client's ready line. The relays run for either
service; the key-value store never sends to them (its only out-group
partners are the clients), so under it they carry no traffic.

Once everything is up, a :class:`testbed.watch.Watch` notices within half a
second an agent, relay, client, the controller or a bridge that died, and
tells the coordinator service, which ends the take at once and stores its
open snapshots as they stand (incomplete); :attr:`Emulation.failures` names
them.

Processes' stderr goes to log files in a temporary directory, removed on
exit; a process that dies before its ready line is reported with the end of
its log. That directory and every process started in a host are added to
the data center's run record (:mod:`topologies.record`) as soon as they
exist, so ``beaver clean`` can remove them after a SIGKILL.

Agents and relays also write their ground-truth event logs
(:mod:`hosts.truth`) into that directory: :meth:`Emulation.stop_hosts` ends
every process, so the logs are whole, and :meth:`Emulation.truth_logs` lists
them for the oracle (:mod:`testbed.truth`) before the directory goes.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from beaver.ids import IPV4_LEAD, IPV4_WINDOW, ipv4_space
from controller.coordinator.service import SnapshotService
from controller.coordinator.store import Store
from controller.gateways.client import ControllerError, GatewayClient
from hosts.agent import RELAY_PORT, SERVICE_PORT
from hosts.services.registry import DEFAULT_SERVICE, SERVICES
from testbed.gateway_updater import ControllerGateways
from testbed.network import PROJECT_ROOT, DataCenter
from testbed.relay_ports import answer_ports
from testbed.scoped import Scoped
from testbed.tau_policy import TauChoice, choose_tau_min
from testbed.watch import Check, Failure, Watch, bridges_gone, exit_reason
from topologies.addressing import AddressPlan, DataCenterParams
from topologies.claims import NamePool

MAX_INGROUP = 16
RUN_NAMES = ("r", "172.29.0.0/16")
"""Emulated runs are named ``r<N>`` with a /24 of this network, the first free from the PID on."""
CLIENT_DURATION = 24 * 3600.0
"""Seconds of load a client is asked for: it runs until it is stopped."""


MAX_UPDATE_WINDOW = IPV4_LEAD
"""Gateway updates in flight at most: a gateway recognises in-group ids only that far ahead
of its own (:data:`beaver.ids.IPV4_LEAD`), and the coordinator starts no id further ahead
of a gateway's acknowledged one, so more would only wait."""

@dataclass(frozen=True)
class EmulationSettings:
    """What ``beaver run`` and ``beaver restore`` build."""

    protocol: str = "beaver"
    service: str = DEFAULT_SERVICE
    """What the in-group runs: a name in :data:`hosts.services.registry.SERVICES`."""
    gateways: int = 2
    ingroup: int = 4
    wan_delay: float = 0.040
    """Seconds a relay holds a transfer before sending it to the bank's VIP. The default
    emulates partners in another data center (the paper's inter-DC external chains,
    ~39 ms); an update across the emulated gateways takes milliseconds here
    (docs/dataplane.md), so intra-DC chains (33 us in the paper) cannot be emulated."""
    workload_rate: float = 20.0
    """The agents' workload per second per node, as the service defines it (bank
    transfers, key-value replication flushes; 0: no workload)."""
    client_rate: float = 50.0
    """Requests per second of each external client, for a service loaded by them."""
    external_share: float = 0.5
    """Share of the workload sent through the relays, for a service that uses them."""
    notify_spread: float = 0.1
    """Seconds over which the coordinator's notifications of one snapshot reach the nodes."""
    window: int = IPV4_WINDOW
    """Snapshot ids alive at once: the core's window, 10-bit wire codes in the TOS byte and
    two TTL bits (:func:`beaver.ids.ipv4_space`)."""
    update_window: int = 1
    """Snapshots whose gateway update may be outstanding at once (1: one at a time; at most
    :data:`MAX_UPDATE_WINDOW`)."""
    update_timeout: float = 1.0
    ready_timeout: float = 30.0
    data_loss: float = 0.0
    """Share of in-group datagrams the fabric's leaves drop (the runtime retransmits them)."""
    datapath_sync: str | None = None
    """How the gateways' acks wait for their datapath (the controller's
    ``--datapath-sync``, :mod:`controller.gateways.datapath`; None: its default)."""
    relay_ports_per_backend: int = 1
    """1: the relays answer each node's transfers from a port of its own, whose flow the
    gateways give to another node (:mod:`testbed.relay_ports`); 0: from one flow, the
    relay's listening socket, which the gateways give to one backend."""

    def params(self) -> DataCenterParams:
        """The data center: the in-group on up to 2 leaves, one relay, one client (its prefix
        and management network come from :data:`RUN_NAMES` when it starts)."""
        leaves = 2 if self.ingroup % 2 == 0 else 1
        return DataCenterParams(
            spines=1, leaves=leaves, hosts_per_leaf=self.ingroup // leaves,
            gateways=self.gateways, externals=2, relays=1, services=1,
        )


def integer_counters(final: dict[str, Any]) -> dict[str, int]:
    """The integer fields of a process's final line; one in a field that maps reasons to
    counts (``malformed_by``) becomes ``malformed_by.<reason>``."""
    counters = {name: value for name, value in final.items() if type(value) is int}
    for name, value in final.items():
        if isinstance(value, dict):
            counters |= {f"{name}.{reason}": count for reason, count in value.items()
                         if type(count) is int}
    return counters


class HostProcess:
    """A process in an emulated host: stdout lines queued by a thread, stderr to a log."""

    def __init__(self, host: Any, args: list[str], log_path: Path, module: bool = True):
        self.name = f"{args[0]} on {host.name}"
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # closed by stop()
        self.popen: subprocess.Popen[bytes] = host.popen(
            [sys.executable, "-m", *args] if module else args, cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, stderr=self._log,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The first stdout line starting with ``prefix``; explains a death or a timeout."""
        try:
            while (line := self.lines.get(timeout=timeout)) is not None:
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
        except queue.Empty:
            raise TimeoutError(f"{self.name} printed no {prefix!r} line within {timeout:g} s; "
                               f"its log ends: {self.log_tail()}") from None
        raise RuntimeError(f"{self.name} exited ({self.popen.wait()}) before printing "
                           f"{prefix!r}; its log ends: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        if not self._log.closed:  # a stopped process's log is closed (and whole)
            self._log.flush()
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int:
        """Wait ``grace`` seconds for it to exit by itself, then SIGTERM, then SIGKILL."""
        try:
            code = self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.terminate()
            try:
                code = self.popen.wait(5.0)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                code = self.popen.wait()
        self._log.close()
        return code


class Emulation(Scoped):
    """Data center, coordinator service, relays and agents, up while inside ``with``."""

    def __init__(self, settings: EmulationSettings, store: Store, run: int):
        self.settings = settings
        self.store = store
        self.run = run
        self.datacenter = DataCenter(settings.params(), update_timeout=settings.update_timeout,
                                     window=settings.window, names=NamePool(*RUN_NAMES),
                                     data_loss=settings.data_loss,
                                     datapath_sync=settings.datapath_sync)
        self.service: SnapshotService | None = None
        self.updates: GatewayClient | None = None
        """The service's own connection to the controller, carrying its pipelined updates."""
        self.relays: list[HostProcess] = []
        self.agents: list[HostProcess] = []
        self.clients: list[HostProcess] = []
        """The external load clients (for a service loaded by them), each stopped by its
        handle."""
        self.extras: list[HostProcess] = []
        """Processes started with :meth:`launch`."""
        self.logs: Path | None = None
        self._hosts_stopped = False
        self.watch: Watch | None = None

    @property
    def plan(self) -> AddressPlan:
        """The address plan, with the names claimed once the data center is up."""
        return self.datacenter.plan

    @property
    def nodes(self) -> list[str]:
        return [host.name for host in self.plan.hosts]

    def _start(self) -> None:
        settings = self.settings
        self.datacenter.__enter__()
        assert self.datacenter.controller is not None and self.datacenter.record is not None
        self.logs = Path(tempfile.mkdtemp(prefix="beaver-run-"))
        self.datacenter.record.add_directory(self.logs)
        self.updates = GatewayClient(self.datacenter.control_port, secret=self.datacenter.secret)
        self.service = SnapshotService(
            settings.protocol, self.nodes, self.store, self.run,
            secret=self.datacenter.secret,
            gateways=ControllerGateways(self.updates),
            space=ipv4_space(settings.window),
            update_timeout=settings.update_timeout, update_window=settings.update_window,
            notify_spread=settings.notify_spread,
            listen=(self.plan.root_mgmt_ip, 0),
        )
        host, port = self.service.start()
        self.datacenter.open_management(port)
        vip = self.plan.services[0].vip
        for relay in (x for x in self.plan.externals if x.role == "relay"):
            process = self._launch(relay.name, [
                "hosts.relay", "--listen", f"{relay.ip}:{RELAY_PORT}",
                "--forward", f"{vip}:{SERVICE_PORT}", "--delay", str(settings.wan_delay),
                "--netem-dev", self.datacenter.host(relay.name).defaultIntf().name,
                "--truth-log", str(self.logs / f"{relay.name}.truth"),
                "--secret-file", str(self.datacenter.secret_file), "--partner", vip,
                "--answer-ports", self._relay_answer_ports(relay.ip, vip),
            ])
            self.relays.append(process)
            process.wait_line("relay ready", settings.ready_timeout)
        for node in self.nodes:
            self.agents.append(self._launch(node, [
                "hosts.agent", "--plan", str(self.datacenter.plan_file), "--node", node,
                "--secret-file", str(self.datacenter.secret_file),
                "--service", settings.service, "--protocol", settings.protocol,
                "--coordinator", f"{host}:{port}", "--rate", str(settings.workload_rate),
                "--external-share", str(settings.external_share),
                "--window", str(settings.window), "--report-interval", "0.2",
                "--truth-log", str(self.logs / f"{node}.truth"),
                "--secret-file", str(self.datacenter.secret_file),
            ]))
        for agent in self.agents:
            agent.wait_line("ready", settings.ready_timeout)
        self.service.wait_agents(settings.ready_timeout)
        if SERVICES[settings.service].external_clients and settings.client_rate > 0:
            self._start_clients(f"{vip}:{SERVICE_PORT}")
        self.watch = Watch(self._liveness_checks(), self._component_failed)
        self.watch.start()

    def _relay_answer_ports(self, relay_ip: str, vip: str) -> str:
        if not self.settings.relay_ports_per_backend:
            return ""
        ports = answer_ports(relay_ip, vip, SERVICE_PORT, list(self.plan.services[0].backends))
        return ",".join(f"{node}={port}" for node, port in ports.items())

    def _liveness_checks(self) -> dict[str, Check]:
        """What must stay alive while snapshots are taken (:mod:`testbed.watch`)."""
        assert self.datacenter.controller_process is not None
        processes = {p.name: p.popen for p in self.agents + self.relays + self.clients}
        processes["controller"] = self.datacenter.controller_process
        checks: dict[str, Check] = {name: (lambda p=popen: exit_reason(p.poll()))
                                    for name, popen in processes.items()}
        checks["bridges"] = bridges_gone([s.name for s in self.plan.switches]
                                         + [self.plan.mgmt_switch], self.datacenter.bridges)
        return checks

    def _component_failed(self, failure: Failure) -> None:
        print(f"beaver: {failure.component} failed: {failure.reason}", file=sys.stderr,
              flush=True)
        if self.service is not None:
            self.service.fail(f"{failure.component} failed: {failure.reason}")

    @property
    def failures(self) -> list[Failure]:
        """The components that died while watched, first noticed first."""
        return list(self.watch.failures) if self.watch is not None else []

    def _start_clients(self, vip: str) -> None:
        """One load client per client host; it runs until :meth:`stop_hosts` ends it."""
        for client in (x for x in self.plan.externals if x.role == "client"):
            process = self._launch(client.name, [
                "hosts.client", "--vip", vip, "--bind", client.ip,
                "--rate", str(self.settings.client_rate), "--duration", str(CLIENT_DURATION),
            ])
            self.clients.append(process)
            process.wait_line("client ready", self.settings.ready_timeout)

    def launch(self, host: str, args: list[str], module: bool = True) -> HostProcess:
        """Start ``python -m ARGS`` in ``host`` (``module`` False: the program ``ARGS``);
        it is stopped when the emulation ends."""
        process = self._launch(host, args, module)
        self.extras.append(process)
        return process

    def _launch(self, host: str, args: list[str], module: bool = True) -> HostProcess:
        assert self.logs is not None and self.datacenter.record is not None
        process = HostProcess(self.datacenter.host(host), args,
                              self.logs / f"{host}.{args[0]}.log" if not module
                              else self.logs / f"{host}.log", module)
        self.datacenter.record.add_process(process.popen.pid, process.name)
        return process

    def stop_hosts(self) -> None:
        """Stop the coordinator service and every host process (once); the network stays."""
        if self._hosts_stopped:
            return
        self._hosts_stopped = True
        if self.watch is not None:
            self.watch.stop()  # what is stopped from now on is stopped on purpose
        for process in self.clients:  # first, so no request meets a stopped backend
            process.stop(grace=0.0)
            self._forget(process)
        if self.service is not None:
            self.service.close()  # tells the agents to stop
        for process in self.agents:
            process.stop(grace=5.0)
            self._forget(process)
        for process in self.relays + self.extras:
            process.stop(grace=0.0)
            self._forget(process)
        for process in self.agents + self.relays:
            self._store_counters(process, "stopped")
        self._store_control_rejections()

    def _store_control_rejections(self) -> None:
        """The control interface's refused requests by reason, as the component
        ``controller control interface`` (``malformed_by.<reason>``)."""
        if self.datacenter.controller is None:
            return
        try:
            rejected = self.datacenter.controller.status().get("rejected", {})
        except ControllerError:
            return  # the controller is gone: the watch named it
        self.store.set_component_counters(
            self.run, "controller control interface",
            {f"malformed_by.{reason}": count for reason, count in rejected.items()})

    def _store_counters(self, process: HostProcess, prefix: str) -> dict[str, Any] | None:
        """The JSON of a stopped process's last line (``prefix {json}``), its integer
        counters stored as the component ``process.name``; None if it printed none."""
        try:
            line = process.wait_line(prefix, timeout=5.0)
        except (TimeoutError, RuntimeError):
            return None
        final = json.loads(line.removeprefix(prefix))
        self.store.set_component_counters(self.run, process.name, integer_counters(final))
        return final

    def client_summaries(self) -> list[dict[str, Any]]:
        """Each client's ``summary`` line (requests, replies, latency), once stopped."""
        return [summary for client in self.clients
                if (summary := self._store_counters(client, "summary")) is not None]

    def backend_ports(self) -> list[str]:
        """The fabric's interfaces facing the in-group hosts (root namespace)."""
        ports = []
        for node in self.nodes:
            link = self.datacenter.host(node).defaultIntf().link
            ports.append(link.intf1.name if link.intf2.node.name == node else link.intf2.name)
        return ports

    def truth_logs(self) -> list[Path]:
        """The agents' and relays' event logs (whole once :meth:`stop_hosts` returned)."""
        return sorted(self.logs.glob("*.truth")) if self.logs is not None else []

    def _stop(self) -> None:
        self.stop_hosts()
        if self.updates is not None:
            self.updates.close()
        self.datacenter.__exit__(None, None, None)
        if self.logs is not None:
            shutil.rmtree(self.logs, ignore_errors=True)

    def _forget(self, process: HostProcess) -> None:
        if self.datacenter.record is not None:
            self.datacenter.record.forget_process(process.popen.pid)

    def tau_min(self, given: float | None, timeout: float = 20.0) -> TauChoice:
        """tau_min in seconds (``given``, or as :mod:`testbed.tau_policy` decides), set on
        the coordinator and stored."""
        assert self.service is not None
        return choose_tau_min(self.service, protocol=self.settings.protocol,
                              service_name=self.settings.service,
                              wan_delay=self.settings.wan_delay, given=given, timeout=timeout)
