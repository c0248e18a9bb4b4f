"""A bank whose accounts are sharded over the in-group nodes.

Each node opens ``accounts_per_node`` accounts (``<node>/<i>``) with
``opening_balance`` each, so the bank's initial total is known. The
workload makes transfers at ``rate`` per second (Poisson arrivals): the
node debits one of its accounts and sends a ``credit`` datagram carrying a
unique transfer id and the amount, either

- to another in-group node's DIP (naming the account to credit; only nodes
  known to be up, so no credit is lost to a socket not bound yet), or
- to an out-group relay (an external partner bank), which later sends a new
  datagram to the bank's VIP; whichever backend the gateway picks credits one
  of its own accounts. This is the external causal chain Beaver guards.

A credit from the out-group is accepted only as the partner's answer to a
transfer the bank sent: sealed by the relay with the run's secret
(:mod:`topologies.secret`; without a secret, the bank takes such credits on
trust), for a series one of the bank's nodes sends to a relay. Anything else
is ignored and counted by reason in ``ignored_by`` (:data:`IGNORED_REASONS`).

A node's state (what ``capture`` returns) is its balances, the transfer ids
it debited and credited, as ranges per series
(:mod:`hosts.services.transfers`), and the money that left through relays
(``sent_out``) and came back from them (``came_in``). A consistent global
snapshot with its exact channel state satisfies
:func:`~hosts.services.bank_invariant.check_invariant`:
every transfer credited somewhere was debited somewhere in the same
snapshot; every in-group transfer debited is credited or in flight, once;
and the balances plus the in-group amounts in flight plus the money outside
(sent out minus come back) equal the initial total.

:class:`BankService` registers the bank (:mod:`hosts.services.registry`): its
``beaver run`` options, tau_min measured from the relayed transfers, its
view for ``beaver show`` and its check after ``beaver restore``.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hosts.services import Address, Send
from hosts.services.bank_invariant import CREDIT, check_invariant, credits_in_flight
from hosts.services.kind import (
    AGENT_RATE_PROBLEM,
    Channel,
    NodeSetup,
    Option,
    ServiceKind,
    States,
    agent_rate,
    mismatched,
    share,
)
from hosts.services.transfers import (
    IdSet,
    destination_of,
    incarnation_of,
    origin_of,
    parse,
    series_of,
    transfer_id,
)
from topologies.secret import RunSecret, Unauthenticated

log = logging.getLogger(__name__)

NOT_CREDIT, REPEATED, FORGED = "not_credit", "repeated_credit", "forged_credit"
IGNORED_REASONS = (NOT_CREDIT, REPEATED, FORGED)
"""Why a datagram was not credited: not a well-formed credit; a transfer already credited
here; a credit from the out-group that is no signed answer to a transfer the bank sent."""


@dataclass(frozen=True)
class BankConfig:
    """The bank's opening position and transfer sizes (the same on every node)."""

    accounts_per_node: int = 4
    opening_balance: int = 1000
    max_amount: int = 10
    external_share: float = 0.25
    """Share of transfers sent through a relay (when there is one)."""

    def initial_total(self, nodes: int) -> int:
        return nodes * self.accounts_per_node * self.opening_balance


class Bank:
    """One node's shard of the bank."""

    def __init__(
        self,
        name: str,
        *,
        peers: Sequence[str],
        relays: Sequence[Address],
        rate: float,
        start: float,
        config: BankConfig | None = None,
        rng: random.Random | None = None,
        partner_secret: RunSecret | None = None,
    ):
        self.name = name
        self.config = config or BankConfig()
        self.peers = tuple(sorted(set(peers) - {name}))
        self.relays = tuple(relays)
        self.rate = rate
        self.rng = rng or random.Random(name)
        self.balances = {
            f"{name}/{i}": self.config.opening_balance
            for i in range(self.config.accounts_per_node)
        }
        self.partner_secret = partner_secret
        """The run's secret, which the relays seal their credits with (None: trust them)."""
        self.debited = IdSet()
        self.credited = IdSet()
        self.sent_out = 0
        """Money debited here for transfers through relays."""
        self.came_in = 0
        """Money credited here from relays."""
        self.ignored = 0
        """Datagrams that were not valid credits, or repeated a credited transfer."""
        self.ignored_by: dict[str, int] = {}
        """``ignored`` by reason (:data:`IGNORED_REASONS`)."""
        self._incarnation = 0
        self._transfers: dict[str, int] = {}
        """Transfers made per destination in this incarnation (a restore starts a new one)."""
        self._next = start + self.rng.expovariate(rate) if rate > 0 else None

    # -- snapshot hooks -------------------------------------------------------------------

    def capture(self) -> dict[str, Any]:
        return {
            "balances": dict(self.balances),
            "debited": self.debited.to_json(),
            "credited": self.credited.to_json(),
            "sent_out": self.sent_out,
            "came_in": self.came_in,
        }

    def restore(self, state: Any) -> None:
        self.balances = dict(state["balances"])
        self.debited = IdSet(state["debited"])
        self.credited = IdSet(state["credited"])
        self.sent_out, self.came_in = int(state.get("sent_out", 0)), int(state.get("came_in", 0))
        mine = [
            n for series in self.debited.series()
            if (n := incarnation_of(series, self.name)) is not None
        ]
        self._incarnation = max([self._incarnation, *mine]) + 1
        self._transfers = {}

    # -- traffic --------------------------------------------------------------------------

    def deliver(
        self, message: dict[str, Any], sender: str | None, source: Address, now: float
    ) -> list[Send]:
        transfer, amount = message.get("transfer"), message.get("amount")
        try:
            if message["kind"] != CREDIT or type(amount) is not int or amount <= 0:
                raise ValueError("not a credit")
            series, _ = parse(transfer)
        except ValueError:
            return self._ignore(NOT_CREDIT, f"a datagram that is not a credit: {message}")
        if sender is None and not self._partner_answer(series, message):
            return self._ignore(FORGED, f"credit {transfer} from {source[0]}:{source[1]}: "
                                        "no signed answer of a relay to a transfer sent")
        if not self.credited.add(transfer):
            return self._ignore(REPEATED, f"transfer {transfer}: already credited")
        account = message.get("account")
        if account not in self.balances:
            accounts = sorted(self.balances)
            account = accounts[zlib.crc32(transfer.encode()) % len(accounts)]
        self.balances[account] += amount
        if sender is None:
            self.came_in += amount
        return []

    def _partner_answer(self, series: str, message: dict[str, Any]) -> bool:
        """Whether an out-group credit answers a transfer of the bank's through a relay."""
        relays = {f"{ip}:{port}" for ip, port in self.relays}
        if origin_of(series) not in {self.name, *self.peers} or \
                destination_of(series) not in relays:
            return False
        try:
            if self.partner_secret is not None:
                self.partner_secret.open(message)
        except Unauthenticated:
            return False
        return True

    def _ignore(self, reason: str, what: str) -> list[Send]:
        self.ignored += 1
        self.ignored_by[reason] = self.ignored_by.get(reason, 0) + 1
        log.warning("bank %s ignored %s", self.name, what)
        return []

    def next_work(self) -> float | None:
        return self._next

    def work(self, now: float, reachable: frozenset[str]) -> list[Send]:
        sends = []
        peers = [peer for peer in self.peers if peer in reachable]
        while self._next is not None and self._next <= now:
            self._next += self.rng.expovariate(self.rate)
            send = self._transfer(peers)
            if send is not None:
                sends.append(send)
        return sends

    def _transfer(self, peers: list[str]) -> Send | None:
        funded = [account for account, balance in sorted(self.balances.items()) if balance > 0]
        external = bool(self.relays) and self.rng.random() < self.config.external_share
        if not funded or not (external or peers):
            return None
        source = self.rng.choice(funded)
        amount = self.rng.randint(1, min(self.config.max_amount, self.balances[source]))
        to: str | Address = self.rng.choice(self.relays) if external else self.rng.choice(peers)
        destination = to if isinstance(to, str) else f"{to[0]}:{to[1]}"
        number = self._transfers[destination] = self._transfers.get(destination, 0) + 1
        transfer = transfer_id(series_of(self.name, self._incarnation, destination), number)
        self.balances[source] -= amount
        self.debited.add(transfer)
        if not isinstance(to, str):
            self.sent_out += amount
        credit: dict[str, Any] = {"kind": CREDIT, "transfer": transfer, "amount": amount}
        if isinstance(to, str):
            credit["account"] = f"{to}/{self.rng.randrange(self.config.accounts_per_node)}"
        return Send(to, credit)


class BankService(ServiceKind):
    """The sharded bank: transfers between nodes and through the relays."""

    name = "bank"
    title = "bank"
    options = (
        Option("--bank-rate", 20.0, "bank transfers per second per host (default 20)",
               agent_rate, AGENT_RATE_PROBLEM),
        Option("--external-share", 0.5, "share of transfers paid through the external "
               "partner (relay), each an external causal chain (default 0.5)",
               share, "must be in 0..1"),
    )
    workload = "bank_rate"
    invariant_name = "bank invariant"

    def build(self, setup: NodeSetup) -> Bank:
        return Bank(setup.name, peers=setup.shards, relays=setup.relays, rate=setup.rate,
                    start=setup.start, config=BankConfig(external_share=setup.external_share),
                    rng=setup.rng, partner_secret=setup.secret)

    def parameters(self, ingroup: int) -> dict[str, Any]:
        return {"initial_total": BankConfig().initial_total(ingroup)}

    def invariant(self, states: States, in_flight: Channel,
                  parameters: Mapping[str, Any]) -> list[str]:
        return check_invariant(states, in_flight, parameters["initial_total"])

    def view(self, states: States, in_flight: Channel,
             parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The bank's books in a snapshot, and the violations of its invariant."""
        transfers = credits_in_flight(in_flight)
        return {
            "initial_total": parameters["initial_total"],
            "nodes": {
                node: {
                    "balances": state["balances"], "total": sum(state["balances"].values()),
                    "debited": list(IdSet(state["debited"])),
                    "credited": list(IdSet(state["credited"])),
                }
                for node, state in sorted(states.items())
            },
            "in_flight": transfers,
            "held": sum(sum(state["balances"].values()) for state in states.values()),
            "in_flight_total": sum(t["amount"] for t in transfers if type(t["amount"]) is int),
            "violations": self.invariant(states, in_flight, parameters),
        }

    def node_line(self, view: dict[str, Any] | None, node: str, state: Any) -> str:
        assert view is not None
        books = view["nodes"][node]
        return (f"{node}: balance {books['total']}, {len(books['debited'])} debited, "
                f"{len(books['credited'])} credited")

    def view_lines(self, view: dict[str, Any] | None) -> list[str]:
        assert view is not None
        return [f"bank: held {view['held']} + in flight {view['in_flight_total']} "
                f"of initial {view['initial_total']}: "
                + ("invariant holds" if not view["violations"]
                   else f"{len(view['violations'])} violations"),
                *(f"  {violation}" for violation in view["violations"])]

    def restore_report(self, states: States, in_flight: Channel, expected: States,
                       restored: States, parameters: Mapping[str, Any]) -> dict[str, Any]:
        initial_total = parameters["initial_total"]
        held = sum(sum(state["balances"].values()) for state in states.values())
        moving = sum(c["amount"] or 0 for c in credits_in_flight(in_flight))
        totals = {node: sum(state["balances"].values()) for node, state in restored.items()}
        violations = check_invariant(restored, [], initial_total)
        wrong = mismatched(expected, restored)
        return {
            "ok": not violations and not wrong,
            "balances": totals, "restored_total": sum(totals.values()),
            "snapshot_total": held + moving, "initial_total": initial_total,
            "violations": violations, "mismatched_nodes": wrong,
        }

    def restore_text(self, report: Mapping[str, Any]) -> str:
        lines = [f"restored snapshot {report['snapshot_id']} of run {report['run']} "
                 f"in {report['where']}"]
        lines += [f"  {node}: balance {total}"
                  for node, total in sorted(report["balances"].items())]
        lines.append(f"  total {report['restored_total']} (snapshot: balances + in flight = "
                     f"{report['snapshot_total']}; initial {report['initial_total']})")
        if report["mismatched_nodes"]:
            lines.append("  state differs from the snapshot's at: "
                         + ", ".join(report["mismatched_nodes"]))
        lines.append("  bank invariant: " + ("holds" if not report["violations"]
                                             else f"{len(report['violations'])} violations"))
        lines += [f"    {violation}" for violation in report["violations"]]
        return "\n".join(lines)
