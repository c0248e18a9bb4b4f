"""``emulated-bot-detection``: the bot-detection rule on snapshots of the emulated data center.

The same session tickets as ``bot-detection`` (:mod:`usecases.bots`), read
from a real run: the bank's relays are chained clients. An in-group
node's transfer to a relay is a reply carrying a ticket (its message id);
the datagram the relay derives from its n-th receive (``<relay>:n``, see
:mod:`hosts.truth`) re-enters through a gateway and shows that ticket. For
every snapshot the protocol accepted, each node's ground-truth log is cut
at the node's capture point for it (the ``capture`` events the agents log
when the core records their state), and the rule
(:func:`usecases.bots.suspects`) runs on what the cut holds. The bank has
no bots, so every client flagged is a false positive; in the simulator's
``bot-detection`` bots are part of the world. Per protocol and seed, one
emulated run; it needs root.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from analysis.frames import figure, load, save
from controller.coordinator.store import Store
from experiments.base import ExperimentError, Plan, Progress, Row
from experiments.emulated import emulated_experiment
from hosts.truth import INGROUP, RELAY
from testbed.emulation import Emulation, EmulationSettings
from testbed.truth import ProcessLog, TruthLogError, judge_run, read_log
from usecases.bots import suspects

NAME = "emulated-bot-detection"
SNAPSHOT_RATE_HZ = 10.0
COLUMNS = ("protocol", "seed", "clients", "bots", "snapshots", "accepted",
           "inconsistent_accepted", "true_positives", "false_positives", "false_negatives",
           "snapshots_with_false_positive")


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(quick=quick, seeds=seeds, grid={"protocol": ["beaver", "lai-yang"]},
                fixed={"snapshots": 20 if quick else 60, "snapshot_rate_hz": SNAPSHOT_RATE_HZ,
                       "service": "bank", "ingroup": 4, "gateways": 2})


def tickets(logs: list[ProcessLog]) -> dict[str, str]:
    """Each relay-derived message id -> the ticket it shows (the original it came from)."""
    shown = {}
    for log in logs:
        if log.role == RELAY:
            receives = (event for event in log.events if event.kind == "receive")
            for n, original in enumerate(receives, start=1):
                shown[f"{log.process}:{n}"] = original.message_id
    return shown


def flagged(logs: list[ProcessLog], snapshot_id: int) -> set[str]:
    """The clients snapshot ``snapshot_id``'s cut shows presenting tickets it did not issue."""
    receiver = {e.message_id: log.process for log in logs for e in log.events
                if e.kind == "receive"}
    relays = {log.process for log in logs if log.role == RELAY}
    shows = tickets(logs)
    issued: dict[int | str, str] = {}
    shown: list[tuple[str, int | str]] = []
    for log in logs:
        if log.role != INGROUP:
            continue
        for event in log.events:
            if event.kind == "capture" and event.snapshots[0] <= snapshot_id <= event.snapshots[1]:
                break
            if event.kind == "send" and receiver.get(event.message_id) in relays:
                issued[event.message_id] = receiver[event.message_id]
            elif event.kind == "receive" and event.message_id in shows:
                shown.append((event.message_id.rsplit(":", 1)[0], shows[event.message_id]))
    return suspects(issued, shown)


def emulate(protocol: str, snapshots: int, database: Path, progress: Progress) -> Row:
    settings = EmulationSettings(protocol=protocol)
    with Store(database) as store:
        run = store.new_run(protocol, {"snapshots": snapshots}, None, "pending")
        with Emulation(settings, store, run) as emulation:
            assert emulation.service is not None
            tau = emulation.tau_min(None)
            if tau.follow:
                emulation.service.follow_chains()
            result = emulation.service.take(snapshots, SNAPSHOT_RATE_HZ,
                                            snapshots / SNAPSHOT_RATE_HZ + 30)
            if result.stalled:
                progress(f"{protocol}: {result.stalled}")
            emulation.stop_hosts()
            paths = emulation.truth_logs()
            verdicts = {v.snapshot_id: v for v in judge_run(paths, store, run)}
            logs = [read_log(path) for path in paths]
        rows = store.snapshot_rows(run)
    accepted = [r["snapshot_id"] for r in rows if r["valid"] and r["complete"]]
    accused, wrong = set(), 0
    for k in accepted:
        found = flagged(logs, k)
        accused |= found
        wrong += bool(found)
    clients = sum(log.role == RELAY for log in logs)
    return {"protocol": protocol, "clients": clients, "bots": 0, "snapshots": len(rows),
            "accepted": len(accepted),
            "inconsistent_accepted": sum(not verdicts[k].consistent for k in accepted
                                         if k in verdicts),
            "true_positives": 0, "false_positives": len(accused), "false_negatives": 0,
            "snapshots_with_false_positive": wrong}


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = [(p, seed) for p in plan.grid["protocol"] for seed in range(1, plan.seeds + 1)]
    for index, (protocol, seed) in enumerate(points, start=1):
        with tempfile.TemporaryDirectory(prefix="beaver-bots-") as folder:
            try:
                row = emulate(protocol, plan.fixed["snapshots"], Path(folder) / "beaver.db",
                              progress)
            except (TimeoutError, RuntimeError, ValueError, TruthLogError) as error:
                raise ExperimentError(f"{protocol}: {error}") from None
        progress(f"[{index}/{len(points)}] {protocol}: {row['snapshots_with_false_positive']} "
                 f"of {row['accepted']} accepted snapshots accuse an honest client")
        yield row | {"seed": seed}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    sums = frame.groupby("protocol", sort=False)[
        ["accepted", "snapshots_with_false_positive", "inconsistent_accepted"]].sum()
    fig, (axis,) = figure(panels=1, width=6.0)
    positions = range(len(sums))
    axis.bar([p - 0.2 for p in positions], sums["snapshots_with_false_positive"], 0.4,
             label="accepted snapshots accusing an honest client", color="tab:red")
    axis.bar([p + 0.2 for p in positions], sums["inconsistent_accepted"], 0.4,
             label="accepted snapshots the oracle finds inconsistent", color="tab:gray")
    axis.set_xticks(list(positions), list(sums.index))
    axis.set_ylabel("snapshots")
    axis.legend(fontsize=8)
    axis.set_title("Bot detection on emulated snapshots (no bots: every flag is false)")
    caption = ("Accepted snapshots per protocol: " + ", ".join(
        f"{p} {int(r.accepted)}" for p, r in sums.iterrows()) + f"; {frame['seed'].nunique()} "
               "seed(s); one emulated bank run per protocol and seed.")
    return [save(fig, root / NAME / f"{NAME}.png", caption)]


EXPERIMENT = emulated_experiment(
    name=NAME,
    question="Does the bot-detection rule accuse honest clients on snapshots of the "
             "emulated data center, per protocol?",
    columns=COLUMNS,
    plan=plan,
    rows=rows,
    draw=draw,
)
