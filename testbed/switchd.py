"""Private Open vSwitch daemons: the data center's bridges run on switch daemons of their own.

The system's ``ovs-vswitchd`` is one process for every bridge of the machine:
one main thread handles every flow-mod and barrier of every bridge, and one
set of revalidators re-checks every cached datapath flow of every bridge
after any flow-mod anywhere. A data center therefore runs its bridges on
daemons it starts itself (docs/dataplane.md has the measurements behind this):

* one :class:`SwitchDaemon` for the gateways, whose main loop handles an
  update's flow-mods to every gateway in the same passes and whose one
  purge empties every gateway's cached flows (or, for comparison, one per
  gateway, so that an update to one never waits for another's main thread:
  about three times the CPU per update at |G| = 8 on two cores), and
* one for the fabric (border, spines, leaves, internet switch) and the
  management bridge, so that the gateways' updates never stop the fabric's
  forwarding.

Each daemon is an ``ovsdb-server`` with its own database file and an
``ovs-vswitchd`` on it, both children of this process, with their database,
sockets, pid files, logs and its bridges' OpenFlow management sockets
(``<bridge>.mgmt``) in a run directory of its own under the data center's
temporary directory: ``OVS_RUNDIR=<that directory>`` points ``ovs-vsctl``,
``ovs-ofctl`` and ``ovs-appctl`` at it. :meth:`SwitchDaemons.link_bridges`
adds one more directory holding a link to every bridge's management socket,
so ``OVS_RUNDIR=<it> ovs-ofctl dump-flows <bridge>`` reaches any bridge
(:meth:`SwitchDaemons.environment`). Nothing of the system's Open vSwitch
configuration is read or changed.

The bridges use the ``dummy`` datapath type (``ovs-vswitchd --enable-dummy``):
the same userspace datapath as ``netdev``, but its datapath and bridge ports
are not kernel tap devices, so a private daemon creates no interface in the
root namespace (a ``netdev`` datapath would create ``ovs-netdev``, which the
system daemon's own userspace datapath uses too). Bridge ports are ordinary
veth ends (``type=system``), which the daemon's main thread polls and forwards
between its flow-mods, barriers and purges; or, for comparison
(:data:`PORT_TYPES`), AF_XDP sockets on the same veth ends (``type=afxdp``),
which one PMD thread per daemon polls apart from the main thread, sleeping up
to :data:`PMD_MAX_SLEEP_US` when idle (``other_config:pmd-maxsleep``) and
pinned to a core of its own (``pmd-cpu-mask``, :func:`pmd_cpu_mask`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VSWITCH_SCHEMA_CANDIDATES = (Path("/usr/share/openvswitch/vswitch.ovsschema"),
                             Path("/usr/local/share/openvswitch/vswitch.ovsschema"))
DAEMON_OTHER_CONFIG = {"n-handler-threads": "1", "n-revalidator-threads": "1"}
"""Per-daemon ``Open_vSwitch other_config``: one handler and one revalidator each (the
userspace datapath handles misses in the forwarding thread; 2 cores are shared by
all daemons)."""
START_TIMEOUT = 20.0

PORT_TYPES = ("system", "afxdp")
"""How the data-plane bridges' veth ends are opened, the default first: as ``system``
ports polled by the daemon's main thread, or as AF_XDP sockets polled by a PMD thread."""
PMD_MAX_SLEEP_US = 500
"""``other_config:pmd-maxsleep`` with AF_XDP ports: an idle PMD thread sleeps up to this many
microseconds between polls instead of spinning on its core."""


class PortsUnavailable(RuntimeError):
    """The daemons could not open the bridges' ports as asked (AF_XDP not available here)."""


def check_port_type(port_type: str) -> None:
    """ValueError unless ``port_type`` is one of :data:`PORT_TYPES`."""
    if port_type not in PORT_TYPES:
        raise ValueError(f"unknown port type {port_type!r}; one of {', '.join(PORT_TYPES)}")


def pmd_cpu_mask(index: int) -> str:
    """``pmd-cpu-mask`` of the ``index``-th daemon: one PMD thread, on core ``index`` modulo
    the machine's cores (so the fabric's and the gateways' PMDs poll different cores)."""
    return f"0x{1 << (index % (os.cpu_count() or 1)):x}"


def vswitch_schema() -> Path | None:
    return next((p for p in VSWITCH_SCHEMA_CANDIDATES if p.is_file()), None)


def daemon_problem() -> str | None:
    """Why private switch daemons cannot start here, or ``None`` if they can."""
    for program in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"):
        if shutil.which(program) is None:
            return f"{program} not found: Open vSwitch is not installed"
    if vswitch_schema() is None:
        return "the Open vSwitch database schema (vswitch.ovsschema) is not installed"
    return None


def terminate(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM a child, SIGKILL it if it has not exited after ``grace`` seconds; reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class SwitchDaemon:
    """One ``ovsdb-server`` + ``ovs-vswitchd`` pair with its files in ``rundir``."""

    name: str
    rundir: Path
    other_config: dict[str, str] | None = None
    """``Open_vSwitch other_config`` beyond :data:`DAEMON_OTHER_CONFIG` (PMD settings)."""
    database: subprocess.Popen[bytes] | None = None
    switch: subprocess.Popen[bytes] | None = None

    def path(self, file: str) -> Path:
        return self.rundir / file

    @property
    def db_socket(self) -> Path:
        return self.path("db.sock")

    @property
    def control_socket(self) -> Path:
        """The ``ovs-vswitchd`` unixctl socket (``ovs-appctl -t``)."""
        return self.path("vswitchd.ctl")

    def vsctl_command(self, *args: str) -> list[str]:
        return ["ovs-vsctl", f"--db=unix:{self.db_socket}", "--timeout=20", *args]

    def vsctl(self, *args: str) -> str:
        done = subprocess.run(self.vsctl_command(*args), capture_output=True, text=True,
                              env=self.environment())
        if done.returncode != 0:
            raise RuntimeError(f"switch daemon {self.name}: ovs-vsctl {' '.join(args)}: "
                               f"{done.stderr.strip()}")
        return done.stdout

    def appctl(self, *args: str) -> str:
        return subprocess.run(["ovs-appctl", "-t", str(self.control_socket), "--timeout=20",
                               *args], capture_output=True, text=True, check=True).stdout

    def environment(self) -> dict[str, str]:
        return {**os.environ, "OVS_RUNDIR": str(self.rundir)}

    def upcalls(self) -> int:
        """Datapath misses this daemon has handled through an upcall so far (its cached
        flows did not cover the packet)."""
        stats = self.appctl("dpif-netdev/pmd-stats-show")
        return sum(int(line.rsplit(":", 1)[1]) for line in stats.splitlines()
                   if line.strip().startswith("miss with success upcall:"))

    def start(self, on_process: Callable[[int, str], None]) -> None:
        """Create the database, start both processes, wait until ``ovs-vsctl`` is answered.

        ``on_process(pid, role)`` is called as soon as each process exists (the run record).
        """
        schema = vswitch_schema()
        assert schema is not None, daemon_problem()
        self.rundir.mkdir(mode=0o700)
        subprocess.run(["ovsdb-tool", "create", str(self.path("conf.db")), str(schema)],
                       check=True, capture_output=True)
        self.database = self._spawn([
            "ovsdb-server", str(self.path("conf.db")), f"--remote=punix:{self.db_socket}",
            f"--unixctl={self.path('ovsdb.ctl')}", f"--pidfile={self.path('ovsdb.pid')}",
            f"--log-file={self.path('ovsdb.log')}", "--no-chdir", "-vconsole:off",
        ], "ovsdb-server", on_process)
        self._wait_for(self.db_socket, self.database)
        settings = [f"other_config:{key}={value}" for key, value
                    in {**DAEMON_OTHER_CONFIG, **(self.other_config or {})}.items()]
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the socket file exists a moment before the server listens on it
            init = subprocess.run(self.vsctl_command("--no-wait", "init", "--", "set",
                                                     "Open_vSwitch", ".", *settings),
                                  capture_output=True, text=True)
            if init.returncode == 0:
                break
            if time.monotonic() > deadline or self.database.poll() is not None:
                raise RuntimeError(f"switch daemon {self.name}: ovsdb-server does not answer: "
                                   f"{init.stderr.strip()}")
            time.sleep(0.02)
        self.switch = self._spawn([
            "ovs-vswitchd", f"unix:{self.db_socket}", "--enable-dummy",
            f"--unixctl={self.control_socket}", f"--pidfile={self.path('vswitchd.pid')}",
            f"--log-file={self.path('vswitchd.log')}", "--no-chdir", "-vconsole:off",
        ], "ovs-vswitchd", on_process)
        self._wait_for(self.control_socket, self.switch)
        self.vsctl("show")  # without --no-wait: answered once the daemon read the database

    def _spawn(self, command: list[str], role: str,
               on_process: Callable[[int, str], None]) -> subprocess.Popen[bytes]:
        with open(self.path(f"{role}.stderr"), "wb") as errors:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=errors,
                                       env=self.environment(), start_new_session=True)
        on_process(process.pid, f"{role} of switch daemon {self.name}")
        return process

    def _wait_for(self, socket_path: Path, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not socket_path.exists():
            if process.poll() is not None:
                log = self.path(f"{Path(process.args[0]).name}.stderr")  # type: ignore[index]
                raise RuntimeError(f"{process.args[0]} of switch daemon {self.name} exited with "
                                   f"{process.returncode}: {log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{socket_path} did not appear within {START_TIMEOUT}s")
            time.sleep(0.01)

    def stop(self, on_exit: Callable[[int], None]) -> None:
        """Stop ``ovs-vswitchd`` (its bridges go with it), then ``ovsdb-server``."""
        for process in (self.switch, self.database):
            if process is not None:
                terminate(process)
                on_exit(process.pid)
        self.switch = self.database = None


GATEWAY_DAEMONS = ("shared", "own")
"""Where the gateways' bridges run, the default first: all on one daemon of their own (apart
from the fabric's), or each on a daemon of its own (see docs/dataplane.md for both)."""


def check_gateway_daemons(gateway_daemons: str) -> None:
    """ValueError unless ``gateway_daemons`` is one of :data:`GATEWAY_DAEMONS`."""
    if gateway_daemons not in GATEWAY_DAEMONS:
        raise ValueError(f"unknown gateway daemons {gateway_daemons!r}; "
                         f"one of {', '.join(GATEWAY_DAEMONS)}")


class SwitchDaemons:
    """The switch daemons of one data center: the fabric's, and the gateways' (one per
    gateway, or one for all of them: ``gateway_daemons``, one of :data:`GATEWAY_DAEMONS`)."""

    FABRIC = "fabric"

    SHARED = "gateways"
    """The name of the one daemon running every gateway's bridge, when they share one."""

    BRIDGES = "bridges"

    def __init__(self, rundir: Path, gateways: list[str],
                 gateway_daemons: str = GATEWAY_DAEMONS[0],
                 port_type: str = PORT_TYPES[0]) -> None:
        check_gateway_daemons(gateway_daemons)
        check_port_type(port_type)
        self.rundir = rundir
        self.gateways = list(gateways)
        self.port_type = port_type
        names = list(gateways) if gateway_daemons == "own" else [self.SHARED] if gateways else []
        self._gateway_daemon = {gateway: gateway if gateway_daemons == "own" else self.SHARED
                                for gateway in gateways}
        self.daemons = {name: SwitchDaemon(name, rundir / name, self._pmd_config(index))
                        for index, name in enumerate([self.FABRIC, *names])}

    def _pmd_config(self, index: int) -> dict[str, str] | None:
        if self.port_type == "system":
            return None
        return {"pmd-maxsleep": str(PMD_MAX_SLEEP_US), "pmd-cpu-mask": pmd_cpu_mask(index)}

    def port_errors(self) -> list[str]:
        """``<interface>: <error>`` for every port a daemon could not open (an AF_XDP socket
        the kernel or this Open vSwitch cannot make, for one)."""
        errors = []
        for daemon in self.daemons.values():
            listed = daemon.vsctl("--format=json", "--columns=name,error", "list", "Interface")
            for name, error in json.loads(listed)["data"]:
                if isinstance(error, str) and error:
                    errors.append(f"{name}: {error}")
        return errors

    def of_gateways(self) -> list[SwitchDaemon]:
        """The daemons running the gateways' bridges, each once."""
        return list({id(d): d for d in map(self.of_switch, self.gateways)}.values())

    def of_switch(self, switch: str) -> SwitchDaemon:
        """The daemon running ``switch``'s bridge."""
        return self.daemons[self._gateway_daemon.get(switch, self.FABRIC)]

    @property
    def bridges_dir(self) -> Path:
        return self.rundir / self.BRIDGES

    def environment(self) -> dict[str, str]:
        """Environment under which ``ovs-ofctl <bridge>`` reaches any of the bridges."""
        return {**os.environ, "OVS_RUNDIR": str(self.bridges_dir)}

    def link_bridges(self, switches: list[str]) -> None:
        """Link every bridge's management socket into :attr:`bridges_dir` (once they exist)."""
        self.bridges_dir.mkdir(mode=0o700, exist_ok=True)
        for switch in switches:
            link = self.bridges_dir / f"{switch}.mgmt"
            if not link.is_symlink():
                link.symlink_to(self.of_switch(switch).path(f"{switch}.mgmt"))

    def start(self, on_process: Callable[[int, str], None]) -> None:
        for daemon in self.daemons.values():
            daemon.start(on_process)

    def stop(self, on_exit: Callable[[int], None]) -> None:
        for daemon in self.daemons.values():
            daemon.stop(on_exit)

    def bridges(self) -> set[str] | None:
        """Bridges of every daemon (a daemon that exited has none; None: one is busy)."""
        names: set[str] = set()
        for daemon in self.daemons.values():
            if daemon.switch is None or daemon.switch.poll() is not None:
                continue
            listed = subprocess.run(daemon.vsctl_command("--timeout=5", "list-br"),
                                    capture_output=True, text=True)
            if listed.returncode != 0:
                return None
            names.update(listed.stdout.split())
        return names

    def control_sockets(self) -> dict[str, Path]:
        """Gateway name -> its ``ovs-vswitchd`` unixctl socket (for the controller)."""
        return {name: self.of_switch(name).control_socket for name in self.gateways}
