"""The OpenFlow tables, declared as data.

Gateways (the software load balancers) run a small pipeline of named tables;
every other switch of the fabric forwards in one table. Each table lists the
tables it may jump to (always forward, so no loops); :func:`check_rules`
rejects a rule that jumps anywhere else. Rules carry a cookie naming their
purpose, so ``ovs-ofctl -O OpenFlow13 dump-flows`` reads as the pipeline:
the high 16 bits of a cookie are its :class:`Purpose`.

Gateway pipeline::

    current --> classify --out-group--> stamp ---+
                    \\                           v
                     +--in-group--> observe --> balance --> forward --> fabric

* ``current``: the one rule that holds the gateway's current snapshot id: it
  writes the id's wire code, its ``pkt_mark`` and the wire codes ahead of it
  into registers (:mod:`controller.gateways.registers`). An id update rewrites
  this rule and no other.
* ``classify``: traffic from the border toward a VIP; in-group sources go to
  ``observe``, everything else to ``stamp``.
* ``stamp``: one fixed rule copies the code from its register into the TOS byte
  (DSCP and ECN bits, :func:`beaver.ids.tos_fields`) and the TTL's lowest bits
  (:func:`beaver.ids.ipv4_marks`).
* ``observe``: in-group packets keep their own wire code; those carrying an id
  ahead of the gateway's are copied to the controller (optimistic marking):
  one fixed rule per TOS byte, matching it when the registers mark it ahead (the
  controller decodes the whole code from the TOS byte and the TTL).
* ``balance``: one exact 5-tuple rule per flow rewrites VIP -> DIP; a miss
  goes to the controller, which picks the backend and installs the rule.
* ``forward``: DIP -> the spine toward the backend's leaf.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True)
class Table:
    name: str
    table_id: int
    next_tables: tuple[str, ...]
    description: str


GATEWAY_PIPELINE: tuple[Table, ...] = (
    Table("current", 0, ("classify",), "hold the gateway's current snapshot id in registers"),
    Table("classify", 1, ("stamp", "observe"), "split out-group from in-group traffic to VIPs"),
    Table("stamp", 2, ("balance",), "write the gateway's snapshot id into the TOS byte and TTL"),
    Table("observe", 3, ("balance",), "copy in-group packets with a newer id to the controller"),
    Table("balance", 4, ("forward",), "VIP -> DIP per flow (5-tuple), miss to the controller"),
    Table("forward", 5, (), "DIP -> port toward the backend's leaf"),
)
FABRIC_PIPELINE: tuple[Table, ...] = (
    Table("route", 0, (), "destination-based forwarding of a fabric switch"),
)


class Purpose(IntEnum):
    """What a rule is for: the high 16 bits of its cookie."""

    FABRIC = 0x0B01
    CLASSIFY = 0x0B02
    STAMP = 0x0B03
    OBSERVE = 0x0B04
    BALANCE_FLOW = 0x0B05
    BALANCE_MISS = 0x0B06
    FORWARD = 0x0B07
    RESTORE_VIP = 0x0B08
    PASS = 0x0B09
    PROBE = 0x0B0A
    LOSS = 0x0B0B
    CURRENT = 0x0B0C


def cookie(purpose: Purpose, detail: int = 0) -> int:
    """A 64-bit cookie: purpose in the top 16 bits, ``detail`` below."""
    return (int(purpose) << 48) | (detail & ((1 << 48) - 1))


def purpose_of(cookie_value: int) -> Purpose:
    return Purpose(cookie_value >> 48)


def table(pipeline: tuple[Table, ...], name: str) -> Table:
    for declared in pipeline:
        if declared.name == name:
            return declared
    raise KeyError(f"table {name!r} is not declared in the pipeline")


class UndeclaredJump(ValueError):
    """A rule jumps to a table its own table does not declare as next."""


def check_rules(pipeline: tuple[Table, ...], rules: Iterable[object]) -> None:
    """Every rule lives in a declared table and jumps only to a declared next table."""
    for rule in rules:
        source = table(pipeline, rule.table)  # type: ignore[attr-defined]
        goto = rule.goto  # type: ignore[attr-defined]
        if goto is not None and goto not in source.next_tables:
            raise UndeclaredJump(
                f"rule {rule!r} jumps from {source.name!r} to {goto!r};"
                f" allowed: {source.next_tables}"
            )
