"""Gateway stamping, coordinator updates and optimistic marking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beaver.gateway import Gateway
from beaver.ids import UNMARKED, IdSpace

SPACE = IdSpace(bits=6, window=16)


def test_a_new_gateway_stamps_epoch_zero_and_never_unmarked() -> None:
    gateway = Gateway("g1", SPACE)
    assert gateway.stamp() == SPACE.to_wire(0) != UNMARKED


@given(st.lists(st.integers(0, 500), max_size=40))
def test_ids_only_grow_and_the_stamp_follows_the_current_id(updates: list[int]) -> None:
    gateway = Gateway("g1", SPACE)
    highest = 0
    for snapshot_id in updates:
        changed = gateway.set_id(snapshot_id)
        assert changed == (snapshot_id > highest)
        highest = max(highest, snapshot_id)
        assert gateway.current == highest
        assert SPACE.from_wire(gateway.stamp(), highest) == highest


@pytest.mark.parametrize("start", [0, 5, 61, 62, 63, 200])
@pytest.mark.parametrize("step", [1, 7, 16])
def test_optimistic_marking_adopts_a_newer_in_group_id(start: int, step: int) -> None:
    gateway = Gateway("g1", SPACE, current=start)
    assert gateway.observe_ingroup(SPACE.to_wire(start + step))
    assert gateway.current == start + step
    assert gateway.stamp() == SPACE.to_wire(start + step)
    assert gateway.rejected == 0


@pytest.mark.parametrize("back", [0, 1, 16])
def test_optimistic_marking_ignores_the_same_or_older_ids(back: int) -> None:
    gateway = Gateway("g1", SPACE, current=100)
    assert not gateway.observe_ingroup(SPACE.to_wire(100 - back))
    assert gateway.current == 100
    assert gateway.rejected == 0


def test_optimistic_marking_ignores_unmarked_traffic() -> None:
    gateway = Gateway("g1", SPACE, current=3)
    assert not gateway.observe_ingroup(UNMARKED)
    assert gateway.current == 3
    assert gateway.rejected == 0


@pytest.mark.parametrize("offset", [17, 30, -17, -30])
def test_out_of_window_ids_are_counted_and_ignored(offset: int) -> None:
    gateway = Gateway("g1", SPACE, current=100)
    stamp = gateway.stamp()
    assert not gateway.observe_ingroup(SPACE.to_wire(100 + offset))
    assert not gateway.observe_ingroup(SPACE.to_wire(100 + offset))
    assert gateway.rejected == 2
    assert gateway.current == 100
    assert gateway.stamp() == stamp


def test_a_pessimistic_gateway_never_adopts_in_group_ids() -> None:
    gateway = Gateway("g1", SPACE, optimistic=False, current=10)
    for newer in range(11, 27):
        assert not gateway.observe_ingroup(SPACE.to_wire(newer))
    assert gateway.current == 10
    assert gateway.set_id(12)
    assert gateway.current == 12


def test_optimistic_marking_never_undoes_a_coordinator_update() -> None:
    gateway = Gateway("g1", SPACE)
    assert gateway.set_id(8)
    assert not gateway.observe_ingroup(SPACE.to_wire(5))
    assert gateway.observe_ingroup(SPACE.to_wire(9))
    assert not gateway.set_id(9)
    assert gateway.current == 9
