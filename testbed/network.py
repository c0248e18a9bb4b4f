"""The running data center: a context manager over Mininet and the controller process.

``DataCenter(params)`` checks the parameters before creating anything (bad
ones raise one ``ValueError``). Entering it writes the address plan to a
temporary directory, starts the data center's own switch daemons there (one
``ovsdb-server`` + ``ovs-vswitchd`` for the gateways and one for the fabric,
:mod:`testbed.switchd`), starts ``python -m controller.gateways`` (kept by its
PID), builds and starts the Mininet network on those daemons, and waits until
every switch has connected and its proactive rules are installed. Leaving
it, also after an exception or Ctrl-C, stops the network (Mininet deletes
exactly the links and namespaces it created for this topology), then the
switch daemons (their bridges go with them), then the controller process,
and removes the temporary directory (databases, sockets, logs).

While it runs, a record of exactly what it created (bridges, root-namespace
interfaces, the controller's and node shells' PIDs, the temporary
directory; :mod:`topologies.record`) is kept in the state directory, so
that ``beaver clean`` can remove what a run killed with SIGKILL left. Code
that starts processes in hosts adds them with ``dc.record.add_process``.
The record is deleted after a normal cleanup.

    with DataCenter(DataCenterParams(gateways=4)) as dc:
        client = dc.hosts["dcx1"]
        dc.controller.set_id(1)
        agent = dc.hosts["dch1"].popen([sys.executable, "-m", "hosts.agent", ...])

Names carry the plan's prefix, so two data centers with different prefixes
and management networks can run side by side. Before creating anything,
entering claims the prefix and management network (:mod:`topologies.claims`):
exactly those of the parameters, or, given ``names=NamePool(...)``, the first
free ones of the pool (printed on stderr). Names in use raise
:class:`~topologies.claims.NameInUse` with one line; another network's
bridges are never touched. The claim is given back after the cleanup.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from beaver.ids import ipv4_space
from controller.gateways.client import ControllerError, GatewayClient
from controller.gateways.datapath import check_sync
from controller.gateways.rules import dropped_entropies
from testbed.scoped import Scoped
from testbed.switchd import (
    GATEWAY_DAEMONS,
    PORT_TYPES,
    PortsUnavailable,
    SwitchDaemon,
    SwitchDaemons,
    check_gateway_daemons,
    check_port_type,
    daemon_problem,
    terminate,
)
from testbed.termination import Terminated, raise_on_termination
from topologies.addressing import AddressPlan, DataCenterParams, build_plan
from topologies.claims import Claim, NamePool, claim, claim_free
from topologies.mgmt_rules import coordinator_flows, management_flows
from topologies.record import RunRecord
from topologies.secret import RunSecret

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PortTaken(RuntimeError):
    """The controller could not listen: another process took the port first."""


def ovs_problem() -> str | None:
    """Why this machine cannot build the data center, or ``None`` if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, Open vSwitch)"
    if shutil.which("ovs-vsctl") is None:
        return "ovs-vsctl not found: Open vSwitch is not installed"
    probe = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"Open vSwitch is not reachable: {probe.stderr.strip() or 'ovs-vsctl show failed'}"
    problem = daemon_problem()
    if problem:
        return problem
    try:
        import mininet.net  # noqa: F401
    except ImportError as error:
        return f"Mininet does not import: {error}"
    return None


SETUP_ADVICE = "run as root after ./setup.sh (which starts Open vSwitch)"


def machine_problem(advice: str = SETUP_ADVICE) -> str | None:
    """Why this machine cannot run the emulation, as one line saying what to do; None if
    it can."""
    problem = ovs_problem()
    return None if problem is None else f"the emulated data center {problem}; {advice}"


class DataCenter(Scoped):
    """Topology + controller, created on ``__enter__`` and removed on ``__exit__``."""

    def __init__(self, params: DataCenterParams | None = None, controller_port: int | None = None,
                 control_port: int | None = None, ready_timeout: float = 60.0,
                 update_timeout: float = 2.0, window: int | None = None,
                 mininet_log: str = "warning", state_dir: Path | None = None,
                 names: NamePool | None = None, data_loss: float = 0.0,
                 datapath_sync: str | None = None,
                 gateway_daemons: str | None = None, port_type: str = PORT_TYPES[0]) -> None:
        check_port_type(port_type)
        if gateway_daemons is None:
            gateway_daemons = "own" if datapath_sync == "watch" else GATEWAY_DAEMONS[0]
        check_gateway_daemons(gateway_daemons)  # checked now, before anything is created
        if datapath_sync is not None:
            check_sync(datapath_sync, shared_daemon=gateway_daemons == "shared")
        self.params = params or DataCenterParams()
        self.plan: AddressPlan = build_plan(self.params)
        self.controller_port = controller_port
        self.control_port = control_port
        self.ready_timeout = ready_timeout
        self.update_timeout = update_timeout
        if window is not None:
            ipv4_space(window)  # checked now, before anything is created
        dropped_entropies(data_loss)  # checked now too
        self.data_loss = data_loss
        self.datapath_sync = datapath_sync
        """The controller's ``--datapath-sync`` (None: its default)."""
        self.gateway_daemons = gateway_daemons
        """All gateways on one switch daemon, or each on its own (:data:`GATEWAY_DAEMONS`;
        None: shared, but each on its own with the ``watch`` sync, which needs that)."""
        self.port_type = port_type
        """How the data-plane bridges open their veth ends (:data:`testbed.switchd.PORT_TYPES`:
        polled by each daemon's main thread, or AF_XDP sockets polled by a PMD thread)."""
        """Share of in-group datagrams the leaves drop (``rules.loss_rules``)."""
        self.window = window
        """Snapshot ids in flight (the window of :func:`beaver.ids.ipv4_space`); None: its
        default."""
        self.mininet_log = mininet_log
        self.state_dir = state_dir
        """Where the run record goes; None: ``topologies.record.state_dir()``."""
        self.names = names
        """Take the prefix and management network from this pool (None: those of params)."""
        self.claim: Claim | None = None
        self.record: RunRecord | None = None
        self.workdir: Path | None = None
        self.controller_process: subprocess.Popen[bytes] | None = None
        self.daemons: SwitchDaemons | None = None
        self.net: Any = None
        self.hosts: dict[str, Any] = {}
        self._mgmt_ports: dict[str, int] = {}
        """Node name -> its OpenFlow port on the management bridge."""
        self.controller: GatewayClient | None = None
        self.secret: RunSecret | None = None
        """The run's secret (:mod:`topologies.secret`), made on entering; components get
        :attr:`secret_file` on their command line."""

    @property
    def plan_file(self) -> Path:
        assert self.workdir is not None, "the data center is not running"
        return self.workdir / "plan.json"

    @property
    def secret_file(self) -> Path:
        assert self.secret is not None and self.secret.path is not None, "not running"
        return self.secret.path

    @property
    def controller_log(self) -> Path:
        assert self.workdir is not None, "the data center is not running"
        return self.workdir / "controller.log"

    def _start(self) -> None:
        from mininet.log import setLogLevel
        from mininet.node import RemoteController

        from topologies.datacenter import PlannedTopo, PrivateOVSSwitch
        from topologies.recorded_mininet import RecordedMininet

        problem = ovs_problem()
        if problem:
            raise RuntimeError(f"cannot build the data center: {problem}")
        self._claim_names()
        self.record = RunRecord.create(self.plan.prefix, self.state_dir)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"beaver-{self.plan.prefix}-"))
        self.record.add_directory(self.workdir)
        self.plan_file.write_text(self.plan.to_json())
        self.secret = RunSecret.create(self.workdir)
        self.daemons = SwitchDaemons(self.workdir / "ovs", [g.name for g in self.plan.gateways],
                                     self.gateway_daemons, self.port_type)
        self.daemons.rundir.mkdir()
        self.daemons.start(self.record.add_process)
        self._start_controller_on_free_ports()

        setLogLevel(self.mininet_log)
        daemons = self.daemons
        self.net = RecordedMininet(
            topo=PlannedTopo(plan=self.plan,
                             rundir_of=lambda switch: str(daemons.of_switch(switch).rundir),
                             port_type=self.port_type),
            switch=PrivateOVSSwitch, build=False, autoSetMacs=False,
            controller=None, cleanup=False, record=self.record,
        )
        self.net.addController(RemoteController(f"{self.plan.prefix}c0", ip="127.0.0.1",
                                                port=self.controller_port))
        self.net.build()
        self.net.start()
        self.net.pin_bridges()
        errors = self.daemons.port_errors()
        if errors:
            raise PortsUnavailable(f"cannot build the data center with {self.port_type} ports: "
                               f"{errors[0]} ({len(errors)} ports)")
        self.daemons.link_bridges([s.name for s in self.plan.switches] + [self.plan.mgmt_switch])
        names = [h.name for h in self.plan.hosts] + [x.name for x in self.plan.externals]
        self.hosts = {name: self.net.get(name) for name in names}
        self._close_management()
        self._name_tables()
        self.controller.wait_ready(self.ready_timeout)

    def _claim_names(self) -> None:
        if self.names is None:
            self.claim = claim(self.params, self.state_dir)
        else:
            self.claim = claim_free(self.params, self.names, self.state_dir)
            print(f"data center {self.claim.params.prefix}: management network "
                  f"{self.claim.params.mgmt_net}", file=sys.stderr, flush=True)
        self.params = self.claim.params
        self.plan = build_plan(self.params)

    def _close_management(self) -> None:
        """Management traffic only (:mod:`topologies.mgmt_rules`): the bridge's table,
        strict reverse-path filtering in every host."""
        bridge = self.net.get(self.plan.mgmt_switch)
        for intf, port in bridge.ports.items():
            link = intf.link
            if link is not None:
                peer = link.intf2 if link.intf1 is intf else link.intf1
                self._mgmt_ports[peer.node.name] = port
        subprocess.run(["ovs-ofctl", "del-flows", self.plan.mgmt_switch], check=True,
                       capture_output=True,
                       env=self.switch_daemon(self.plan.mgmt_switch).environment())
        self._add_mgmt_flows(management_flows(self.plan, self._mgmt_ports))
        for host in self.hosts.values():
            host.cmd("sysctl -qw net.ipv4.conf.all.rp_filter=1")

    def open_management(self, tcp_port: int) -> None:
        """Let every host reach the root namespace's management address on ``tcp_port``
        (the coordinator's); nothing else crosses the management network."""
        self._add_mgmt_flows(coordinator_flows(self.plan, self._mgmt_ports, tcp_port))

    def _add_mgmt_flows(self, flows: list[str]) -> None:
        subprocess.run(["ovs-ofctl", "add-flows", self.plan.mgmt_switch, "-"],
                       input="\n".join(flows) + "\n", text=True, check=True,
                       capture_output=True,
                       env=self.switch_daemon(self.plan.mgmt_switch).environment())

    def _name_tables(self) -> None:
        """Give the OpenFlow tables their pipeline names (``ovs-ofctl --names dump-flows``).

        The Flow_Table rows belong to the bridges and go away with them.
        """
        from controller.gateways.pipeline import FABRIC_PIPELINE, GATEWAY_PIPELINE

        gateways = {g.name for g in self.plan.gateways}
        for switch in self.plan.switches:
            pipeline = GATEWAY_PIPELINE if switch.name in gateways else FABRIC_PIPELINE
            command: list[str] = []
            for table in pipeline:
                command += ["--", f"--id=@t{table.table_id}", "create", "Flow_Table",
                            f"name={table.name}", "--", "set", "Bridge", switch.name,
                            f"flow_tables:{table.table_id}=@t{table.table_id}"]
            self.switch_daemon(switch.name).vsctl(*command)

    def _start_controller_on_free_ports(self, attempts: int = 3) -> None:
        """Start the controller; ports probed free can be taken before it binds, so retry."""
        chosen = (self.controller_port, self.control_port)
        for attempt in range(1, attempts + 1):
            self.controller_port = chosen[0] or free_port()
            self.control_port = chosen[1] or free_port()
            try:
                self._start_controller()
                return
            except PortTaken:
                if all(chosen) or attempt == attempts:
                    raise

    def _start_controller(self) -> None:
        command = [
            sys.executable, "-m", "controller.gateways", "--plan", str(self.plan_file),
            "--ofp-tcp-listen-port", str(self.controller_port),
            "--control-port", str(self.control_port),
            "--update-timeout", str(self.update_timeout),
            "--secret-file", str(self.secret_file),
        ]
        assert self.daemons is not None
        for gateway, control in self.daemons.control_sockets().items():
            command += ["--datapath-control", f"{gateway}={control}"]
        if self.window is not None:
            command += ["--window", str(self.window)]
        if self.data_loss:
            command += ["--data-loss", str(self.data_loss)]
        if self.datapath_sync is not None:
            command += ["--datapath-sync", self.datapath_sync]
        with open(self.controller_log, "wb") as log:
            self.controller_process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert self.record is not None
        self.record.add_process(self.controller_process.pid, "controller")
        self.controller = GatewayClient(self.control_port, secret=self.secret)
        deadline = time.monotonic() + 30
        while True:
            if self.controller_process.poll() is not None:
                self.record.forget_process(self.controller_process.pid)
                log = self.controller_log.read_text(errors="replace")
                problem = PortTaken if "Address already in use" in log else RuntimeError
                raise problem(
                    f"controller exited with {self.controller_process.returncode}: {log[-2000:]}"
                )
            try:
                self.controller.status()
                return
            except ControllerError:
                self.controller.close()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"controller did not answer on 127.0.0.1:{self.control_port} within 30s"
                )
            time.sleep(0.05)

    def _stop(self) -> None:
        if self.controller is not None:
            self.controller.close()
        if self.net is not None:
            self.net.stop()
            self.net = None
        if self.daemons is not None:
            record = self.record
            self.daemons.stop(record.forget_process if record is not None else lambda pid: None)
            self.daemons = None
        if self.controller_process is not None:
            terminate(self.controller_process)
        if self.workdir is not None and self.workdir.exists():
            shutil.rmtree(self.workdir)
        if self.record is not None:
            self.record.remove()
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    # -- conveniences --------------------------------------------------------------------------
    def host(self, name: str) -> Any:
        return self.hosts[name]

    def bridges(self) -> set[str] | None:
        """The bridges the data center's switch daemons have now (None: one did not answer;
        a daemon that exited has none)."""
        assert self.daemons is not None, "the data center is not running"
        return self.daemons.bridges()

    def switch_daemon(self, switch: str) -> SwitchDaemon:
        """The private switch daemon running ``switch``'s bridge."""
        assert self.daemons is not None, "the data center is not running"
        return self.daemons.of_switch(switch)

    def ofctl(self, *args: str) -> str:
        """Run ``ovs-ofctl -O OpenFlow13 --names args...`` (any bridge) and return its output."""
        assert self.daemons is not None, "the data center is not running"
        return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--names", *args],
                              capture_output=True, text=True, check=True,
                              env=self.daemons.environment()).stdout


def main(argv: list[str] | None = None) -> int:
    """Build a data center, open the Mininet CLI, remove everything on exit."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m testbed.network", description=main.__doc__)
    parser.add_argument("options", nargs="*", metavar="NAME=VALUE",
                        help="data center parameters, e.g. gateways=4 prefix=dc")
    args = parser.parse_args(argv)
    try:
        options = dict(option.split("=", 1) for option in args.options)
        datacenter = DataCenter(DataCenterParams.from_options(**options), mininet_log="output")
    except ValueError as error:
        print(f"python -m testbed.network: {error}", file=sys.stderr)
        return 2
    from mininet.cli import CLI

    raise_on_termination()
    try:
        with datacenter as dc:
            print(f"plan: {dc.plan_file}\ncontroller: OpenFlow 127.0.0.1:{dc.controller_port},"
                  f" control 127.0.0.1:{dc.control_port}, log {dc.controller_log}\n"
                  f"secret: {dc.secret_file}")
            # ``sh ovs-ofctl ... <bridge>`` at the prompt reaches the data center's bridges
            previous = os.environ.get("OVS_RUNDIR")
            os.environ["OVS_RUNDIR"] = dc.daemons.environment()["OVS_RUNDIR"]  # type: ignore
            try:
                CLI(dc.net)
            finally:
                os.environ.pop("OVS_RUNDIR")
                if previous is not None:
                    os.environ["OVS_RUNDIR"] = previous
    except RuntimeError as error:  # names in use, or a machine that cannot run it
        print(f"python -m testbed.network: {error}", file=sys.stderr)
        return 1
    except Terminated as terminated:  # SIGTERM or SIGHUP: removed like on exit
        return terminated.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
