"""JSON from peers nobody vouches for: size and nesting limits checked before parsing.

Every component that listens (agents, relays, clients, the coordinator, the
gateway controller's control interface) reads JSON sent by whoever reaches
its port. ``json.loads`` reads any size and recurses once per nesting level:
a datagram of a thousand ``[`` raises ``RecursionError``, which no caller
expects. :func:`loads_object` checks the size and the nesting depth first
(brackets outside strings, counted without recursion), then parses, and
raises :class:`Rejected` whose ``reason`` is one of :data:`REASONS`, the key
the components count rejections by.

Pure: no I/O. The limits suit every message of the testbed (the deepest, a
bank state inside an in-flight report inside a restore, nests 7 levels).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted."""

TOO_LARGE, TOO_DEEP, NOT_JSON, NOT_OBJECT = "too_large", "too_deep", "not_json", "not_object"
REASONS = (TOO_LARGE, TOO_DEEP, NOT_JSON, NOT_OBJECT)
"""Why bytes were refused: longer than the limit, nested deeper than :data:`MAX_DEPTH`,
not UTF-8 JSON, JSON but not an object."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class Rejected(ValueError):
    """Bytes that are not an acceptable JSON object; ``reason`` says which limit or rule."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason.replace('_', ' ')}: {detail}")
        self.reason = reason


def nesting_depth(payload: bytes, stop_above: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in ``payload`` (stops counting above ``stop_above``)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", payload)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        else:
            depth -= 1
    return deepest


def loads_object(payload: bytes | str, max_size: int,
                 count_depth: bool = True) -> dict[str, Any]:
    """The JSON object in ``payload``; :class:`Rejected` if it breaks a limit or is none.

    ``count_depth`` False skips counting the nesting first, for bytes whose sender was
    authenticated (a nesting too deep for the parser is still refused, as not JSON)."""
    data = payload.encode() if isinstance(payload, str) else payload
    if len(data) > max_size:
        raise Rejected(TOO_LARGE, f"{len(data)} bytes, at most {max_size}")
    if count_depth and nesting_depth(data) > MAX_DEPTH:
        raise Rejected(TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise Rejected(NOT_JSON, str(error)) from None
    if not isinstance(message, dict):
        raise Rejected(NOT_OBJECT, f"a JSON {type(message).__name__}")
    return message
