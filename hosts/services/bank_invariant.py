"""The bank's consistency check over a global snapshot.

A bank node's captured state (:class:`hosts.services.bank.Bank`) holds its
balances, the transfer ids it debited and credited (ranges per series,
:mod:`hosts.services.transfers`) and the money that left through relays and came
back. A snapshot is consistent for the bank when no transfer is credited without
its debit (an effect without its cause), every in-group debit is credited or in
flight exactly once, and the balances plus the credits in flight plus the money
outside equal the initial total. :func:`check_invariant` lists what breaks that;
:func:`credits_in_flight` lists the credits of a snapshot's channel state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hosts.services.kind import ChannelRecord
from hosts.services.transfers import IdSet, is_external, parse

CREDIT = "credit"
"""The ``kind`` of a credit datagram, the only message the bank moves money with."""


def check_invariant(
    states: Mapping[str, Any], in_flight: Iterable[ChannelRecord], initial_total: int
) -> list[str]:
    """The violations of bank consistency in a global snapshot (empty: consistent).

    ``states`` maps each node to its captured bank state, ``in_flight`` are the
    snapshot's channel-state records (messages other than credits are skipped),
    ``initial_total`` the bank's opening total (:meth:`BankConfig.initial_total`).
    The checks are exact for a complete snapshot: every in-group debit is credited or
    in flight, and money is conserved with what is outside (states captured before
    ``sent_out`` existed are only checked not to exceed the total).
    """
    violations = []
    debited = {node: IdSet(state["debited"]) for node, state in sorted(states.items())}
    credited = {node: IdSet(state["credited"]) for node, state in sorted(states.items())}
    for node, state in sorted(states.items()):
        for account, balance in sorted(state["balances"].items()):
            if balance < 0:
                violations.append(f"account {account} at {node} has negative balance {balance}")
    for node, ids in credited.items():
        for transfer in ids:
            if not any(transfer in ids for ids in debited.values()):
                violations.append(
                    f"transfer {transfer} is credited at {node} but debited nowhere "
                    "in the snapshot (an effect without its cause)"
                )
    moving, moving_ids = 0, set()
    for record in in_flight:
        message = record.message
        if not isinstance(message, dict) or message.get("kind") != CREDIT:
            continue
        transfer, amount = message.get("transfer"), message.get("amount")
        moving_ids.add(transfer)
        if type(amount) is int:
            moving += amount
        if not any(transfer in ids for ids in debited.values()):
            violations.append(
                f"transfer {transfer} in flight {record.sender} -> {record.receiver} "
                "was debited nowhere in the snapshot"
            )
        for node, ids in credited.items():
            if transfer in ids:
                violations.append(
                    f"transfer {transfer} in flight {record.sender} -> {record.receiver} "
                    f"is also credited at {node}"
                )
    for node, ids in debited.items():
        for transfer in ids:
            if not is_external(parse(transfer)[0]) and transfer not in moving_ids and not any(
                    transfer in credits for credits in credited.values()):
                violations.append(f"transfer {transfer} is debited at {node} but neither "
                                  "credited nor in flight (money lost)")
    held = sum(sum(state["balances"].values()) for state in states.values())
    if not all("sent_out" in state for state in states.values()):
        if held + moving > initial_total:
            violations.append(f"balances {held} + in flight {moving} = {held + moving} exceed "
                              f"the initial total {initial_total}")
        return violations
    outside = max(0, sum(state["sent_out"] - state["came_in"] for state in states.values()))
    total = held + moving + outside
    if total != initial_total:
        how = "exceed" if total > initial_total else "fall short of (money lost)"
        violations.append(f"balances {held} + in flight {moving} + outside {outside} = "
                          f"{total} {how} the initial total {initial_total}")
    return violations


def credits_in_flight(in_flight: Iterable[ChannelRecord]) -> list[dict[str, Any]]:
    """The credits in a snapshot's channel state: transfer, amount, sender, receiver."""
    return [
        {"transfer": m.message.get("transfer"), "amount": m.message.get("amount"),
         "sender": m.sender, "receiver": m.receiver}
        for m in in_flight
        if isinstance(m.message, dict) and m.message.get("kind") == CREDIT
    ]
