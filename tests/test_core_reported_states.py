"""The states the coordinator keeps for assembling snapshots: by the ids each covers, until
the snapshots they cover are finished and forgotten."""

from __future__ import annotations

from beaver.reported_states import ReportedStates


def states() -> ReportedStates:
    kept = ReportedStates(["a", "b"])
    kept.add("a", 1, 3, "a@1-3")
    kept.add("a", 4, 4, "a@4")
    kept.add("a", 5, 7, "a@5-7")
    kept.add("b", 1, 1, "b@1")
    kept.add("b", 2, 6, "b@2-6")
    return kept


def test_each_node_s_state_for_a_snapshot_is_the_one_whose_range_covers_it() -> None:
    kept = states()
    assert kept.covering(1) == {"a": "a@1-3", "b": "b@1"}
    assert kept.covering(4) == {"a": "a@4", "b": "b@2-6"}
    assert kept.covering(7) == {"a": "a@5-7"}
    assert kept.covering(8) == {}
    assert kept.covering(0) == {}


def test_forgetting_keeps_the_ranges_that_end_later_or_cover_an_unfinished_snapshot() -> None:
    kept = states()
    kept.forget(4, keep={2, 8})
    assert kept.covering(2) == {"a": "a@1-3", "b": "b@2-6"}
    assert kept.covering(4) == {"b": "b@2-6"}, "a's range 4..4 is finished and gone"
    assert kept.covering(1) == {"a": "a@1-3"}, "b's range 1..1 is gone, a's 1..3 kept for 2"
    assert kept.covering(6) == {"a": "a@5-7", "b": "b@2-6"}
    kept.forget(7, keep=set())
    assert kept.covering(2) == kept.covering(6) == {}


def test_forgetting_with_nothing_unfinished_drops_every_range_up_to_the_id() -> None:
    kept = states()
    kept.forget(3, keep=())
    assert kept.covering(3) == {"b": "b@2-6"}
    assert kept.covering(4) == {"a": "a@4", "b": "b@2-6"}
    kept.add("a", 8, 9, "a@8-9")
    assert kept.covering(9) == {"a": "a@8-9"}


def test_two_holders_are_equal_when_they_keep_the_same_ranges_and_states() -> None:
    assert states() == states()
    other = states()
    other.add("b", 7, 7, "b@7")
    assert other != states()
