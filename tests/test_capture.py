"""The wire-level stamping check: which wire code a gateway may have stamped at a given moment."""

from __future__ import annotations

from beaver.ids import ipv4_space
from testbed.capture import Captured, Update, mismatches, stamping_periods

SPACE = ipv4_space()
UPDATES = [Update("g1", 1, 10.0, 10.5), Update("g2", 1, 10.0, 11.0),
           Update("g1", 2, 20.0, 20.5), Update("g2", 2, 20.0, None)]


def at(t: float, k: int) -> Captured:
    return Captured(t, SPACE.to_wire(k), "10.200.0.2", "lf1-eth2")


def test_a_gateway_may_stamp_an_id_from_its_update_until_a_later_one_is_acknowledged():
    periods = stamping_periods(UPDATES)
    assert periods["g1"] == [(0, float("-inf"), 10.5), (1, 10.0, 20.5), (2, 20.0, float("inf"))]
    assert periods["g2"][1] == (1, 10.0, float("inf")), "its update to 2 failed"


def test_a_dscp_no_gateway_stamped_then_is_a_mismatch():
    fine = [at(5.0, 0), at(10.2, 0), at(10.2, 1), at(10.6, 0), at(15.0, 1), at(25.0, 1),
            at(25.0, 2), at(11.02, 0)]
    wrong = [at(5.0, 1), at(15.0, 2), at(12.0, 0), at(25.0, 3)]
    assert mismatches(fine + wrong, UPDATES, SPACE, slack=0.05) == wrong
