"""What the labs' check scripts share: reading a lab's ``ANSWERS.md``, and the run of a
check (one line per problem, exit status 0 when there is none)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path


def answers(path: Path) -> dict[int, str]:
    """Question number -> its paragraph (numbered items ``1.`` .. at the start of a line)."""
    text = path.read_text(encoding="utf-8")
    parts = re.split(r"^(\d+)\.\s", text, flags=re.MULTILINE)
    return {int(number): body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def todo(body: str) -> bool:
    """An answer not written yet."""
    return not body.strip() or "TODO" in body


def the_file(argv: list[str], default: Path) -> Path | None:
    """The file a check reads (its argument, else ``default``); None, said on stderr, if
    there is none."""
    path = Path(argv[0]) if argv else default
    if path.is_file():
        return path
    print(f"check: no such file {path}", file=sys.stderr)
    return None


def run_check(argv: list[str], default: Path, problems: Callable[[Path], list[str]],
              passed: str) -> int:
    """Print ``problems(file)`` one per line, then ``passed`` or a count; the exit status."""
    path = the_file(argv, default)
    if path is None:
        return 2
    found = problems(path)
    for line in found:
        print(line)
    print(passed if not found else f"{len(found)} problem(s); see the TODO list in README.md")
    return 1 if found else 0
