"""Maglev-style consistent hashing: balanced, identical everywhere, minimal disruption."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.gateways.maglev import FlowKey, MaglevTable

BACKENDS = [f"h{i}" for i in range(1, 6)]
FLOWS = [FlowKey(proto, f"10.200.0.{i % 200 + 1}", "10.100.0.1", 1024 + i, 80)
         for i in range(2000) for proto in (6, 17)]


def test_slots_are_shared_almost_evenly() -> None:
    share = MaglevTable(BACKENDS).share()
    assert sum(share.values()) == 1021
    assert max(share.values()) - min(share.values()) <= 1


def test_every_instance_computes_the_same_table_whatever_the_backend_order() -> None:
    one, other = MaglevTable(BACKENDS), MaglevTable(list(reversed(BACKENDS)))
    assert [one.lookup(f) for f in FLOWS] == [other.lookup(f) for f in FLOWS]


def test_flows_spread_over_all_backends() -> None:
    table = MaglevTable(BACKENDS)
    counts = {b: 0 for b in BACKENDS}
    for flow in FLOWS[:1000]:
        counts[table.lookup(flow)] += 1
    assert all(120 <= count <= 280 for count in counts.values()), counts


@settings(max_examples=15, deadline=None)
@given(removed=st.sampled_from(BACKENDS), size=st.sampled_from([31, 251, 1021]))
def test_removing_a_backend_moves_only_its_flows(removed: str, size: int) -> None:
    before = MaglevTable(BACKENDS, size)
    after = before.without(removed)
    for flow in FLOWS[:500]:
        owner = before.lookup(flow)
        if owner == removed:
            assert after.lookup(flow) != removed
        else:
            assert after.lookup(flow) == owner
    share = after.share()
    assert max(share.values()) - min(share.values()) <= 2


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="prime"):
        MaglevTable(BACKENDS, 100)
    with pytest.raises(ValueError, match="at least one"):
        MaglevTable([])
    with pytest.raises(ValueError, match="duplicate"):
        MaglevTable(["a", "a"])
    with pytest.raises(ValueError, match="last backend"):
        MaglevTable(["a"]).without("a")
