"""The bank service and its consistency invariant, without sockets."""

from __future__ import annotations

import json
import random
import threading

from test_hosts_fakes import Peer

from beaver.records import InFlight
from hosts import wire
from hosts.relay import Relay, relayed
from hosts.services import Send
from hosts.services.bank import Bank, BankConfig
from hosts.services.bank_invariant import check_invariant
from hosts.services.transfers import IdSet
from topologies.secret import RunSecret

CONFIG = BankConfig(accounts_per_node=2, opening_balance=100, max_amount=10)
TOTAL = CONFIG.initial_total(2)
RELAY = ("10.200.0.4", 9100)
UP = frozenset({"a", "b"})


def bank(name: str, *, rate: float = 50.0, external_share: float = 0.0,
         peers: tuple[str, ...] = ("a", "b")) -> Bank:
    config = BankConfig(accounts_per_node=2, opening_balance=100, max_amount=10,
                        external_share=external_share)
    return Bank(name, peers=peers, relays=[RELAY], rate=rate, start=0.0, config=config,
                rng=random.Random(name))


def exchange(banks: dict[str, Bank], until: float) -> list[Send]:
    """Run the workloads to ``until``, delivering in-group credits at once; returns the rest."""
    outside = []
    for now in (t / 100 for t in range(int(until * 100) + 1)):
        for name, node in banks.items():
            for send in node.work(now, frozenset(banks)):
                if isinstance(send.to, str):
                    banks[send.to].deliver(send.message, name, ("0.0.0.0", 0), now)
                else:
                    outside.append(send)
    return outside


def test_in_group_transfers_conserve_money_and_keep_the_invariant():
    banks = {"a": bank("a"), "b": bank("b")}
    assert exchange(banks, until=2.0) == []
    states = {name: node.capture() for name, node in banks.items()}
    assert sum(len(IdSet(s["debited"])) for s in states.values()) > 50
    assert [len(s["debited"][f"{name}.0>{peer}"]) for name, peer, s in
            (("a", "b", states["a"]), ("b", "a", states["b"]))] == [1, 1], \
        "a node's debits to one peer are one range"
    assert sum(sum(s["balances"].values()) for s in states.values()) == TOTAL
    assert check_invariant(states, [], TOTAL) == []


def test_states_stay_one_range_per_series_with_many_peers():
    names = ("a", "b", "c", "d")
    banks = {name: bank(name, rate=20, peers=names) for name in names}
    assert exchange(banks, until=3.0) == []
    states = [node.capture() for node in banks.values()]
    assert sum(len(IdSet(state["credited"])) for state in states) > 100
    assert all(len(spans) == 1 for state in states for ids in ("debited", "credited")
               for spans in state[ids].values())


def test_external_transfers_go_to_a_relay_and_credit_any_backend_account():
    a, b = bank("a", external_share=1.0), bank("b")
    sends = a.work(1.0, UP)
    assert sends and all(send.to == RELAY and "account" not in send.message for send in sends)
    for send in sends:
        b.deliver(send.message, None, RELAY, 1.0)
    assert sum(b.balances.values()) == 200 + sum(s.message["amount"] for s in sends)
    assert list(b.credited) == list(a.debited)


def test_credit_after_the_cut_without_its_debit_is_a_violation():
    a, b = bank("a", external_share=1.0), bank("b")
    a_before = a.capture()
    sends = a.work(1.0, UP)
    for send in sends:
        b.deliver(send.message, None, RELAY, 1.0)
    violations = check_invariant({"a": a_before, "b": b.capture()}, [], TOTAL)
    assert len(violations) >= len(sends) + 1
    assert any("debited nowhere" in v for v in violations)
    assert any("exceed the initial total" in v for v in violations)


def test_in_flight_credit_counts_once():
    a, b = bank("a"), bank("b")
    (send,) = a.work(a.next_work(), UP)
    assert send.to == "b"
    record = InFlight("b", "a", 1, 1, send.message, 0.0)
    states = {"a": a.capture(), "b": b.capture()}
    assert check_invariant(states, [record], TOTAL) == []

    b.deliver(send.message, "a", ("0.0.0.0", 0), 1.0)
    doubled = check_invariant({"a": a.capture(), "b": b.capture()}, [record], TOTAL)
    assert any("also credited" in v for v in doubled)
    assert any("exceed" in v for v in doubled)


def test_malformed_and_repeated_credits_are_ignored():
    b = bank("b")
    credit = {"kind": "credit", "transfer": "a.0>b:1", "amount": 5}
    for message in ({"kind": "credit", "transfer": "a.0>b:2", "amount": -5},
                    {"kind": "credit", "transfer": 3, "amount": 5},
                    {"kind": "credit", "transfer": "a.0>b:x", "amount": 5},
                    {"kind": "debit", "transfer": "a.0>b:3", "amount": 5},
                    credit, credit):
        b.deliver(message, "a", ("0.0.0.0", 0), 0.0)
    assert b.ignored == 5
    assert list(b.credited) == ["a.0>b:1"] and sum(b.balances.values()) == 205


def test_restore_puts_the_state_back_and_new_ids_stay_unique():
    a = bank("a")
    before = a.capture()
    first = [send.message["transfer"] for send in a.work(1.0, UP)]
    a.restore(before)
    assert a.capture() == before
    second = [send.message["transfer"] for send in a.work(2.0, UP)]
    assert second and not set(first) & set(second)
    assert first[0] == "a.0>b:1" and second[0] == "a.1>b:1"


def test_a_restarted_node_restoring_an_old_state_starts_a_newer_series():
    old = bank("a", rate=5)
    old.work(1.0, UP)
    old.restore(old.capture())
    old.work(2.0, UP)
    state = old.capture()
    assert sorted(state["debited"]) == ["a.0>b", "a.1>b"]
    restarted = bank("a", rate=5)
    restarted.restore(state)
    (send, *_) = restarted.work(3.0, UP)
    assert send.message["transfer"] == "a.2>b:1"


def test_negative_balances_are_violations():
    state = {"balances": {"a/0": -1, "a/1": 0}, "debited": {}, "credited": {}}
    assert check_invariant({"a": state}, [], TOTAL) == [
        "account a/0 at a has negative balance -1"
    ]


def test_transfers_go_only_to_peers_known_to_be_up():
    alone = bank("a")
    assert alone.work(1.0, frozenset()) == [] and len(alone.debited) == 0
    outward = bank("a", external_share=0.5)
    assert {send.to for send in outward.work(1.0, frozenset())} == {RELAY}


def test_idle_bank_has_no_work():
    idle = bank("a", rate=0)
    assert idle.next_work() is None and idle.work(100.0, UP) == []


KEY = RunSecret(b"the run's secret")


def signed_by_relay(message: dict, key: RunSecret = KEY) -> dict:
    return json.loads(relayed(message, secret=key))


def test_the_bank_credits_the_out_group_only_for_signed_answers_to_its_transfers():
    """10 forged credits used to pass as 74 'invariant violations' of 100 snapshots."""
    a = bank("a", external_share=1.0)
    b = Bank("b", peers=("a", "b"), relays=[RELAY], rate=0, start=0.0, config=CONFIG,
             partner_secret=KEY)
    (send, *_) = a.work(1.0, UP)
    genuine = signed_by_relay(send.message)
    forgeries = [
        send.message,  # unsigned
        signed_by_relay(send.message, key=RunSecret(b"a guess of the secret")),
        genuine | {"amount": genuine["amount"] + 1},  # tampered after signing
        signed_by_relay({"kind": "credit", "transfer": "a.0>b:1", "amount": 5}),  # no relay's
        signed_by_relay({"kind": "credit", "transfer": "x.0>10.200.0.4:9100:1", "amount": 5}),
    ]
    for forged in forgeries:
        b.deliver(forged, None, RELAY, 1.0)
    assert b.ignored_by == {"forged_credit": 5} and sum(b.balances.values()) == 200
    b.deliver(genuine, None, RELAY, 1.0)
    b.deliver(genuine, None, RELAY, 1.0)
    assert b.ignored_by == {"forged_credit": 5, "repeated_credit": 1}
    assert sum(b.balances.values()) == 200 + genuine["amount"] and b.came_in == genuine["amount"]


def test_money_lost_in_the_group_breaks_the_exact_invariant():
    """Polling snapshots that lost in-group money used to pass ("<= initial total")."""
    a, b = bank("a"), bank("b")
    (send,) = a.work(a.next_work(), UP)
    assert send.to == "b"
    violations = check_invariant({"a": a.capture(), "b": b.capture()}, [], TOTAL)
    assert any("neither credited nor in flight" in v for v in violations)
    assert any("fall short of (money lost)" in v for v in violations)
    in_flight = InFlight("b", "a", 1, 1, send.message, 0.0)
    assert check_invariant({"a": a.capture(), "b": b.capture()}, [in_flight], TOTAL) == []


def test_money_outside_is_accounted_for_by_the_transfers_that_left():
    a, b = bank("a", external_share=1.0), bank("b")
    sends = a.work(1.0, UP)
    states = {"a": a.capture(), "b": b.capture()}
    assert states["a"]["sent_out"] == sum(s.message["amount"] for s in sends) > 0
    assert check_invariant(states, [], TOTAL) == [], "the money is with the relay"
    for send in sends[:2]:
        b.deliver(send.message, None, RELAY, 1.0)
    assert check_invariant({"a": a.capture(), "b": b.capture()}, [], TOTAL) == []
    b.balances["b/0"] += 1
    assert any("exceed the initial total" in v
               for v in check_invariant({"a": a.capture(), "b": b.capture()}, [], TOTAL))


def test_a_relay_seals_only_answers_to_its_partner():
    """Else anyone could have the bank's partner seal a credit for them."""
    bank_side, stranger = Peer("127.0.0.61"), Peer("127.0.0.62")
    sock = wire.open_udp(("127.0.0.63", 0))
    relay = Relay(sock, bank_side.address, delay=0.0, secret=KEY, partner="127.0.0.61")
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        credit = {"kind": "credit", "transfer": "a.0>127.0.0.63:9100:1", "amount": 3}
        stranger.send(credit | {"amount": 999}, sock.getsockname())
        bank_side.send(credit, sock.getsockname())
        answer, _ = bank_side.receive(lambda: None, "the relay's answer")
    finally:
        relay.request_stop()
        thread.join(timeout=5)
        sock.close()
        bank_side.close()
        stranger.close()
    assert answer["amount"] == 3 and KEY.open(answer)["transfer"] == credit["transfer"]
    assert relay.counters.malformed_by == {"not_from_partner": 1}
    assert relay.counters.forwarded == 1
