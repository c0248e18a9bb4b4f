"""Ranges of the numbers commands take, each with the reason for its limits.

:func:`check` refuses a value outside its range, or a float that is not
finite, with a :class:`~cli.errors.UsageError` that names the option, the
range and why (one line, exit 2).
"""

from __future__ import annotations

import argparse
import math

from cli.errors import UsageError

MAX_RECORD_ID = 2**63 - 1
"""The largest id SQLite stores (a signed 64-bit integer)."""


def check(option: str, value: float | None, low: float, high: float, why: str = "",
          *, low_open: bool = False) -> None:
    """``value`` (None: not given) must be finite and in ``low..high`` (``low`` excluded when
    ``low_open``); else a UsageError saying so and ``why``."""
    if value is None:
        return
    inside = (low < value if low_open else low <= value) and value <= high
    if not (math.isfinite(value) and inside):
        bound = f"> {low:g} and <= {high:g}" if low_open else f"in {low:g}..{high:g}"
        shown = f"{value:g}" if isinstance(value, float) else f"{value}"
        raise UsageError(f"{option} must be {bound}, got {shown}" + (f" ({why})" if why else ""))


def record_id(text: str) -> int:
    """An argparse type: a run or snapshot id, a whole number in 1..2**63-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_RECORD_ID:
        raise argparse.ArgumentTypeError(f"ids are in 1..{MAX_RECORD_ID}, got {value}")
    return value
