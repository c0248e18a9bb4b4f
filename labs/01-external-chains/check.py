"""Check lab 1's answers against the simulator: every answer filled in, quoting the numbers
the runs give.

    .venv/bin/python labs/01-external-chains/check.py [ANSWERS.md]

For each question the script runs the same ``beaver simulate`` commands the
README asks for (they are deterministic) and checks that the answer's
paragraph quotes the figures they print. It does not judge the
explanations: compare those with ``solution/ANSWERS.md``. Exit status 0
when every answer passes, 1 otherwise, with one line per problem naming the
question and the figure it misses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LAB = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB.parent))  # labs/: the module the check scripts share

from answers import answers, run_check, todo  # noqa: E402

REPO = LAB.parents[1]
SMALL_WORLD = ("--protocol", "lai-yang", "--nodes", "4", "--externals", "4", "--snapshots", "30",
               "--seed", "5")
"""The world of question 7, small enough for its diagram to be read."""


def simulate(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "cli", "simulate", *argv, "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


SLOW = ("--protocol", "beaver", "--nodes", "64", "--relay-share", "0.5",
        "--slow-gateway-share", "1")


def lai_yang(*more: str) -> int:
    return simulate("--protocol", "lai-yang", *more)["inconsistent"]


def figures(question: int) -> list[tuple[str, int | str]]:
    """(what, value) pairs the answer to ``question`` must quote (runs only what it needs)."""
    if question == 1:
        return [("inconsistent without relays", lai_yang("--no-external-chains"))]
    if question == 2:
        return [("inconsistent, seed 1", lai_yang()),
                ("inconsistent, --seed 2", lai_yang("--seed", "2")),
                ("inconsistent, --seed 3", lai_yang("--seed", "3")),
                ("inconsistent, --relay-share 0.05", lai_yang("--relay-share", "0.05")),
                ("inconsistent, --relay-share 0.5", lai_yang("--relay-share", "0.5"))]
    if question == 3:
        beaver = simulate("--protocol", "beaver")
        return [("Beaver's inconsistent", beaver["inconsistent"]),
                ("Beaver's valid", beaver["valid"])]
    if question == 4:
        slow = simulate(*SLOW)
        return [("valid", slow["valid"]), ("inconsistent", slow["inconsistent"])]
    if question == 5:
        wrong = simulate(*SLOW, "--controller-tau-min-us", "1000")
        return [("valid with --controller-tau-min-us 1000", wrong["valid"]),
                ("inconsistent accepted as valid", wrong["inconsistent_valid"])]
    if question == 6:
        return [("inconsistent with --tau-min-us 1000", lai_yang("--tau-min-us", "1000"))]
    return [("the relay on the chain", chain_relay())]


QUESTIONS = range(1, 8)


def chain_relay() -> str:
    """The out-group process on the chain that breaks question 7's first broken snapshot."""
    from analysis.diagram import chain_of
    from controller.coordinator.store import open_read_only
    from testbed.truth import stored_logs

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "lab1.db"
        subprocess.run([sys.executable, "-m", "cli", "simulate", *SMALL_WORLD, "--db", str(db)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
        with open_read_only(db) as store:
            broken = min(k for k, v in store.verdicts(1).items() if not v["consistent"])
            logs = stored_logs(store.events(1))
    senders = {e.message_id: log.process for log in logs for e in log.events if e.kind == "send"}
    ingroup = {log.process for log in logs if log.role == "ingroup"}
    return next(senders[m] for m in chain_of(logs, broken) if senders[m] not in ingroup)


def problems(path: Path) -> list[str]:
    given = answers(path)
    found = []
    for question in QUESTIONS:
        body = given.get(question, "")
        if todo(body):
            found.append(f"question {question}: still TODO in {path.name} (item {question}.)")
            continue
        for what, value in figures(question):
            if not re.search(rf"(?<![\w.]){re.escape(str(value))}(?![\w]|\.\d)", body):
                found.append(f"question {question}: the answer does not quote {what} "
                             f"(the run gives {value})")
    return found


def main(argv: list[str]) -> int:
    return run_check(argv, LAB / "ANSWERS.md", problems, "all answers quote the runs' figures")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
