"""Bytes from anyone: size and nesting limits before parsing, rejections by reason.

One datagram of 1,200 ``[`` used to kill a bank agent or a relay: ``json.loads``
let ``RecursionError`` through ``hosts.wire.decode``.
"""

from __future__ import annotations

import json
import logging

import pytest
from test_hosts_runtime import SPACE, Harness

from beaver import untrusted
from hosts import wire
from topologies import management

DEEP = b"[" * 1200


def test_deep_nesting_is_refused_before_parsing_as_too_deep():
    with pytest.raises(wire.MalformedDatagram) as datagram:
        wire.decode(DEEP)
    assert datagram.value.reason == untrusted.TOO_DEEP
    with pytest.raises(management.MalformedMessage, match="too deep"):
        management.decode(b'{"type": "hello", "node": ' + DEEP + b"}")
    nested = {"kind": "x", "v": json.loads("[" * 30 + "]" * 30)}
    assert wire.decode(json.dumps(nested).encode()) == nested, "30 levels are fine"


def test_brackets_inside_strings_do_not_count_and_every_reason_is_named():
    brackets = {"kind": "x", "text": "[[[{{{" * 500 + '\\"[['}
    assert wire.decode(json.dumps(brackets).encode()) == brackets
    cases = {b"x" * (wire.MAX_DATAGRAM + 1): untrusted.TOO_LARGE, b"\xff\xfe": untrusted.NOT_JSON,
             b"[1, 2]": untrusted.NOT_OBJECT, b'{"n": 1}': wire.NO_KIND,
             b"1" * 5000: untrusted.NOT_JSON}
    for payload, reason in cases.items():
        with pytest.raises(wire.MalformedDatagram) as error:
            wire.decode(payload)
        assert error.value.reason == reason, payload[:20]


@pytest.fixture
def beaver():
    harness = Harness("beaver")
    yield harness
    harness.close()


def test_a_runtime_survives_a_deep_datagram_and_counts_it_by_reason(beaver, caplog):
    with caplog.at_level(logging.WARNING, logger="hosts.runtime"):
        beaver.outsider.send(DEEP, beaver.address)
        beaver.peer.send(DEEP, beaver.address)
        beaver.wait(lambda: beaver.runtime.counters.malformed == 2, "two rejections")
    assert beaver.runtime.counters.malformed_by == {untrusted.TOO_DEEP: 2}
    assert len([r for r in caplog.records if "(too_deep)" in r.getMessage()]) == 2
    beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=SPACE.to_wire(0))
    beaver.peer.receive(beaver.pump, "an echo after the attack")
    assert beaver.service.delivered == [1]


def test_a_management_message_whose_type_is_no_string_is_malformed():
    """A dict as ``type`` raised TypeError (unhashable) inside the coordinator."""
    for line in (b'{"type": {"a": 1}}', b'{"type": [1]}', b'{"type": 7}'):
        with pytest.raises(management.MalformedMessage, match="unknown message type"):
            management.decode(line)
