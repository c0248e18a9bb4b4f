"""Transfer ids and their range-compressed sets."""

from __future__ import annotations

import random

import pytest

from hosts.services.transfers import IdSet, incarnation_of, parse, series_of, transfer_id


def test_ids_round_trip_and_bad_ids_are_refused():
    relayed = transfer_id(series_of("dch1", 2, "10.200.0.2:9100"), 17)
    assert parse(relayed) == ("dch1.2>10.200.0.2:9100", 17)
    assert incarnation_of("dch1.2>dch2", "dch1") == 2
    assert incarnation_of("dch10.2>dch1", "dch1") is None
    for bad in ("dch1.0>dch2", "dch1.0>dch2:0", ":3", "dch1.0>dch2:-1", 5, None):
        with pytest.raises(ValueError):
            parse(bad)


def test_a_set_in_any_order_is_the_same_set_of_ranges():
    numbers = list(range(1, 201)) + [300, 302, 301, 500]
    random.Random(1).shuffle(numbers)
    ids = IdSet()
    assert all(ids.add(transfer_id("a.0", n)) for n in numbers)
    assert not ids.add("a.0:150"), "already there"
    assert ids.to_json() == {"a.0": [[1, 200], [300, 302], [500, 500]]}
    assert len(ids) == 204
    assert "a.0:301" in ids and "a.0:303" not in ids and "b.0:1" not in ids and 7 not in ids
    assert IdSet(ids.to_json()).to_json() == ids.to_json()
    assert list(IdSet({"a.0": [[2, 3]], "b.1": [[1, 1]]})) == ["a.0:2", "a.0:3", "b.1:1"]


def test_loading_merges_overlaps_and_refuses_bad_ranges():
    assert IdSet({"a.0": [[5, 9], [1, 4], [3, 6]]}).to_json() == {"a.0": [[1, 9]]}
    for bad in ([[0, 2]], [[3, 2]], [[1]], [["1", 2]], [1, 2]):
        with pytest.raises(ValueError):
            IdSet({"a.0": bad})
