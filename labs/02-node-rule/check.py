"""Judge a node class in the simulator, as ``beaver simulate --node-class`` does, and say why.

Runs the default Beaver world for a few seeds with the given class as every
in-group node and checks the oracle's figures: every snapshot complete, no
inconsistent snapshot accepted as valid, channel state exact. When a node's
snapshots never complete, the coordinator's window of snapshots in flight
stays full and the simulator stops starting new ones (the run "stalls");
the check then describes the oldest unfinished snapshot.

    .venv/bin/python labs/02-node-rule/check.py [MODULE_PATH:CLASS]

Exit status: 0 if every world passes, 1 if one fails, 2 for a bad argument.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from beaver.protocols import PiggybackNodeFactory
from cli.errors import UsageError
from cli.node_classes import node_class_for
from simulator import World, WorldConfig, simulate

STARTER = f"{os.path.relpath(Path(__file__).parent / 'node.py')}:StudentNode"
SEEDS = (1, 2, 3)


def stall_diagnosis(world: World) -> list[str]:
    """Why the window stayed full: which node or count kept the oldest snapshot open."""
    coordinator = world.coordinator
    k = coordinator.oldest_unfinished
    snapshot = coordinator.assemble(k)
    silent = sorted(set(coordinator.nodes) - set(snapshot.states))
    lines = [f"stalled: snapshot {k} never completed "
             f"({world.started} of {world.config.snapshots} started, the window is full)"]
    if silent:
        lines.append(f"  no local snapshot for {k} from {', '.join(silent)}: a node moved "
                     f"past {k} without reporting it (TODO 2: take it with self._take)")
    else:
        lines.append(f"  every node reported {k}, {len(snapshot.in_flight)} in-flight "
                     f"messages recorded, but the counts expect others (TODO 1, 3, 4)")
    if world.rejected_reports:
        lines.append(f"  the coordinator refused {world.rejected_reports} reports "
                     f"(duplicate, out of order or for snapshots already complete)")
    return lines


def judge(node_class: PiggybackNodeFactory, seed: int) -> list[str]:
    """The problems of one world (empty when it passes)."""
    outcome = simulate(WorldConfig(protocol="beaver", seed=seed, node_class=node_class))
    summary = outcome.summary
    if summary.snapshots < summary.requested:
        return ["\n".join(stall_diagnosis(outcome.world))]
    problems = []
    if summary.complete != summary.snapshots:
        problems.append(f"complete {summary.complete} of {summary.snapshots} snapshots")
    if summary.inconsistent_valid:
        problems.append(f"inconsistent_valid {summary.inconsistent_valid}: snapshots accepted "
                        f"as valid that are not consistent cuts (TODO 2)")
    if summary.channel_inexact:
        problems.append(f"channel_inexact {summary.channel_inexact}: complete snapshots whose "
                        f"in-flight messages are not the true ones (TODO 1, 3, 4)")
    return problems


def main(argv: list[str]) -> int:
    spec = argv[0] if argv else STARTER
    try:
        node_class = node_class_for("beaver", spec)
    except UsageError as error:
        print(f"check: {error}", file=sys.stderr)
        return 2
    failed = 0
    for seed in SEEDS:
        problems = judge(node_class, seed)
        print(f"seed {seed}: {'FAIL' if problems else 'pass'}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    print(f"{spec}: {'FAIL' if failed else 'PASS'} ({len(SEEDS) - failed} of {len(SEEDS)} worlds)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
