"""``beaver run``: take snapshots of a service running in an emulated data center.

It builds the data center (Mininet + the os-ken gateway controller), starts
the coordinator service, the relays (external partner banks, with the WAN
delay) and one agent per in-group host
(:class:`testbed.emulation.Emulation`); learns tau_min (given,
or the shortest relayed chain the agents measured before the first
snapshot); takes the snapshots at the given rate with a progress line on
stderr; stops the hosts and has the ground-truth oracle judge every
snapshot from the agents' and relays' event logs (:mod:`testbed.truth`;
the verdicts are stored too); and prints a summary: accepted (valid) and
complete snapshots, bank-invariant violations among accepted complete
snapshots, the oracle's causally inconsistent snapshots (among all, among
accepted) and inexact channel states (among complete), t1 - t0 p50 and
p99, tau_min and its source. Every snapshot is stored in the SQLite
database (``beaver show`` reads it). Everything started is removed on exit,
also on Ctrl-C or an error. With ``--json`` the last stdout line is one JSON
object.

``--service kv`` runs the replicated key-value store (:mod:`hosts.services.kv`)
instead of the bank, loaded by the plan's external clients
(:mod:`hosts.client`, ``--client-rate`` requests per second each) through
the VIP; the agents flush replicated writes ``--replication-rate`` times a
second. The relays still run but carry nothing: the store never sends to
them. The clients are open loop (no request depends on a reply), so the run
has no external causal chain: tau_min cannot be measured and, unless
``--tau-min-us`` is given, is taken to be the emulated WAN delay. The bank
invariant does not apply (the summary says so; in JSON
``invariant_violations`` is null). The oracle judges kv runs the same way:
the replication datagrams between backends are in the agents' event logs;
the clients keep no log and their requests carry no message id, so a
request's receipt is not an event, and a reply is a send nobody in the logs
receives (a dropped message for the oracle).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from beaver.ids import ipv4_space
from cli.progress import Progress
from cli.runs.arguments import add_arguments, run_parameters, settings_of
from cli.runs.summary import summarize
from cli.runs.text import format_summary
from controller.coordinator.service import TakeResult
from controller.coordinator.store import Store, StoreError
from hosts.agent import SERVICE_PORT
from hosts.services.registry import titles
from testbed.capture import Capture, stored_updates
from testbed.emulation import Emulation, EmulationSettings
from testbed.network import machine_problem
from testbed.truth import TruthLogError, judge_run

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "run"
HELP = f"take snapshots of a service ({titles()}) in an emulated data center"


def run(args: argparse.Namespace) -> int:
    return emulate(args, take, NAME)


Session = Callable[[Emulation, argparse.Namespace], dict[str, Any]]
"""What a command does with the emulation while it is up (after tau_min is chosen,
before the hosts stop and the oracle judges the run); it returns the summary's
``given_up_snapshots`` and ``given_up_reason``."""


def emulate(args: argparse.Namespace, session: Session, command: str) -> int:
    """Build the emulated data center for ``args``, run ``session`` in it, store and print
    the run's summary: ``beaver run`` and ``beaver cli`` differ only in their session."""
    settings = settings_of(args)
    problem = machine_problem()
    if problem:
        print(f"beaver {command}: {problem}", file=sys.stderr)
        return 1
    try:
        store = Store(args.db)
    except StoreError as error:
        print(f"beaver {command}: {error}", file=sys.stderr)
        return 1
    with store:
        run_id = store.new_run(args.protocol, run_parameters(args), args.tau_min_us,
                               "pending")
        try:
            with store.discarding_if_empty(run_id):
                summary = within(settings, store, run_id, args, session, command)
        except (TimeoutError, RuntimeError, ValueError) as error:
            print(f"beaver {command}: {error}", file=sys.stderr)
            return 1
    print(format_summary(summary))
    if args.json:
        print(json.dumps(summary))
    return 1 if summary["failures"] else 0


def within(settings: EmulationSettings, store: Store, run_id: int, args: argparse.Namespace,
           session: Session, command: str) -> dict[str, Any]:
    print(f"beaver {command}: building the data center ({settings.ingroup} in-group hosts "
          f"running {settings.service}, {settings.gateways} gateways) ...", file=sys.stderr,
          flush=True)
    with Emulation(settings, store, run_id) as emulation:
        assert emulation.service is not None
        given = None if args.tau_min_us is None else args.tau_min_us / 1e6
        tau = emulation.tau_min(given)
        print(f"beaver {command}: tau_min {tau.seconds * 1e6:.0f} us, {tau.source}",
              file=sys.stderr)
        if tau.follow:
            emulation.service.follow_chains()
        taken = session(emulation, args)
        emulation.stop_hosts()
        clients = emulation.client_summaries()
        record_verdicts(emulation.truth_logs(), store, run_id)
        failures = [failure.to_dict() for failure in emulation.failures]
    return summarize(store, run_id, args.db) | {"clients": clients, "failures": failures} | taken


def take(emulation: Emulation, args: argparse.Namespace) -> dict[str, Any]:
    """``beaver run``'s session: ``--snapshots`` at ``--rate``, with a progress line."""
    assert emulation.service is not None
    bar = Progress(args.snapshots, "snapshots")

    def progress(started: int, stored: int) -> None:
        bar.update(started, f"{stored} stored")

    timeout = args.snapshots / args.rate + 30
    with bar, Capture(emulation.backend_ports(), SERVICE_PORT) if args.capture \
            else nullcontext() as capture:
        result = emulation.service.take(args.snapshots, args.rate, timeout, progress)
    if result.stalled:
        print(f"beaver run: {result.stalled}", file=sys.stderr)
    if capture is None:
        return given_up(result)
    return given_up(result) | {"capture": wire_check(emulation, capture)}


def wire_check(emulation: Emulation, capture: Capture) -> dict[str, Any]:
    """``--capture``: the captured wire codes against the stored gateway timings of the run."""
    store, run = emulation.store, emulation.run
    snapshots = [store.snapshot(run, row["snapshot_id"]) for row in store.snapshot_rows(run)]
    return dict(capture.report(stored_updates(snapshots),
                               ipv4_space(emulation.settings.window)))


def given_up(result: TakeResult) -> dict[str, Any]:
    """The summary's account of snapshots a take gave up on."""
    return {"given_up_snapshots": list(result.given_up), "given_up_reason": result.stalled}


def record_verdicts(logs: list[Path], store: Store, run_id: int) -> None:
    """Store the oracle's verdicts on the run; logs it cannot judge leave none (and say why)."""
    try:
        store.set_verdicts(run_id, judge_run(logs, store, run_id))
    except TruthLogError as error:
        print(f"beaver run: the oracle did not judge this run: {error}", file=sys.stderr)


