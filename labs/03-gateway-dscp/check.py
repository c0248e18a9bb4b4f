"""Check lab 3's answers: every question answered, each naming what the data center showed.

    .venv/bin/python labs/03-gateway-dscp/check.py [ANSWERS.md]

The lab runs in a live emulated data center whose ports, timings and
backend choice differ from run to run, so the check does not rerun it: it
checks that every answer is filled in and names the observation the
question is about (a DSCP value, a table, a rule), the way
``solution/ANSWERS.md`` does. Your reasoning is for you and your teacher to
compare with the solution. Exit status 0 when every answer passes, 1
otherwise, one line per problem naming the question and what it lacks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAB = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB.parent))  # labs/: the module the check scripts share

from answers import answers, run_check, todo  # noqa: E402

NEEDS: dict[int, list[tuple[str, str]]] = {
    1: [("the backend the gateway picked (a dch... host or a 10.1.x.y DIP)",
         r"\b\w*h\d\b|10\.1\.\d+\.\d+"),
        ("how the border picks a gateway (a hash of the flow)", r"hash|bundle|5-tuple")],
    2: [("the wire code seen before any snapshot (code 1, tos 0x1)", r"code 1\b|tos 0x1\b"),
        ("why code 0 is not used (unmarked)", r"unmarked")],
    3: [("the wire code after set_id 5 (code 6, tos 0x6)", r"code 6\b|tos 0x6\b"),
        ("the t1 - t0 set_id.py printed, in ms", r"\d(\.\d+)?\s*ms")],
    4: [("where replies go (direct server return, not a gateway)",
         r"direct server return|DSR")],
    5: [("what happens to a datagram sent to a DIP (times out, dropped)",
         r"time[sd]? out|dropped|drop")],
    6: [("what the observe rules do with a newer id (optimistic marking)",
         r"optimistic"),
        ("why only 127 ids ahead count (the window, the lead)", r"window|lead")],
}


def problems(path: Path) -> list[str]:
    given = answers(path)
    found = []
    for question, needs in NEEDS.items():
        body = given.get(question, "")
        if todo(body):
            found.append(f"question {question}: still TODO in {path.name} (item {question}.)")
            continue
        found += [f"question {question}: the answer does not name {what}"
                  for what, pattern in needs if not re.search(pattern, body, re.IGNORECASE)]
    return found


def main(argv: list[str]) -> int:
    return run_check(argv, LAB / "ANSWERS.md", problems, "every answer names what it is about")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
