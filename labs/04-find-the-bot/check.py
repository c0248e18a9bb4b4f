"""Run lab 4's detector on every snapshot of each protocol, and score it.

    .venv/bin/python labs/04-find-the-bot/check.py [detect.py]

The world: 8 in-group backends behind 2 gateways, 20 chained clients (each
request shows the newest ticket it got), 20 open-loop ones, 4 of them bots
(forged tickets), 60 snapshots per protocol. For Beaver, Lai-Yang and
polling it calls your ``suspects(issued, shown)`` on every snapshot the
protocol accepted, compares each answer with the testbed's own detector
(``usecases/bots.py``) and prints, per protocol, the bots found and the
honest clients accused. Exit status 0 when your detector agrees with the
testbed's on every snapshot, 1 otherwise (the first disagreement is shown).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from simulator import WorldConfig
from usecases.bots import bots_among, flagged, sessions, views
from usecases.history import observe

LAB = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB.parent))  # labs/: the module the check scripts share

from answers import the_file  # noqa: E402

PROTOCOLS = ("beaver", "lai-yang", "polling")
WORLD = {"nodes": 8, "gateways": 2, "externals": 40, "relays": 20, "snapshots": 60, "seed": 1}
BOTS = 4


def load(path: Path):
    spec = importlib.util.spec_from_file_location("student_detect", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.suspects


def score(protocol: str, suspects) -> tuple[str, str | None]:
    """A result line for ``protocol`` and the first disagreement (None: none)."""
    observed = observe(WorldConfig(protocol=protocol, **WORLD))
    bots = bots_among(observed.world.clients, BOTS)
    tickets = sessions(observed, bots)
    accepted = observed.accepted()
    reference = {snapshot.snapshot_id: found
                 for snapshot, found in flagged(observed, accepted, tickets)}
    caught: set[str] = set()
    accused: set[str] = set()
    for snapshot, issued, shown in views(observed, accepted, tickets):
        theirs = set(suspects(dict(issued), list(shown)))
        expected = reference[snapshot.snapshot_id]
        if theirs != expected:
            verdict = "consistent" if observed.verdicts[snapshot.snapshot_id].consistent \
                else "inconsistent"
            return "", (f"{protocol}, snapshot {snapshot.snapshot_id} ({verdict}): suspects() "
                        f"returned {sorted(theirs)}, the snapshot shows {sorted(expected)} "
                        "presenting tickets it did not issue them; see the TODO in detect.py")
        caught |= theirs & bots
        accused |= theirs - bots
    return (f"{protocol:9s} {len(accepted):3d} accepted snapshots: bots found "
            f"{len(caught)}/{len(bots)}, honest clients accused {len(accused)}"), None


def main(argv: list[str]) -> int:
    path = the_file(argv, LAB / "detect.py")
    if path is None:
        return 2
    suspects = load(path)
    for protocol in PROTOCOLS:
        line, problem = score(protocol, suspects)
        if problem:
            print(problem)
            return 1
        print(line)
    print("your detector agrees with the testbed's on every snapshot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
