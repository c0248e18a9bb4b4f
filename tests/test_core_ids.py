"""Snapshot ids on the wire: encoding, serial-number decoding, the window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.ids import (
    TOS_BITS,
    TOS_WINDOW,
    UNMARKED,
    IdSpace,
    OutOfWindow,
    code_to_tos,
    tos_fields,
    tos_space,
    tos_to_code,
)

SPACES = [
    IdSpace(),
    IdSpace(bits=6, window=31),
    IdSpace(bits=3, window=3),
    IdSpace(bits=2, window=1),
]
WIDE = IdSpace(bits=14, window=8191)


@st.composite
def space_and_ids(draw: st.DrawFn) -> tuple[IdSpace, int, int]:
    """A space, a reference id and an id within the window of it."""
    space = draw(st.sampled_from([*SPACES, WIDE]))
    reference = draw(st.integers(0, 10**6))
    full_id = draw(st.integers(max(0, reference - space.window), reference + space.window))
    return space, reference, full_id


@given(st.sampled_from([*SPACES, WIDE]), st.integers(0, 10**9))
def test_wire_code_is_never_unmarked_and_fits_the_bits(space: IdSpace, full_id: int) -> None:
    wire = space.to_wire(full_id)
    assert wire != UNMARKED
    assert 0 < wire < 1 << space.bits


@given(space_and_ids())
def test_decode_inverts_encode_within_the_window(case: tuple[IdSpace, int, int]) -> None:
    space, reference, full_id = case
    assert space.from_wire(space.to_wire(full_id), reference) == full_id


@settings(max_examples=40)
@given(st.sampled_from(SPACES), st.integers(0, 2**32), st.integers(4, 16))
def test_random_walk_wraps_around_many_full_cycles(
    space: IdSpace, seed: int, in_flight: int
) -> None:
    """A reference id walks over thousands of ids; snapshots in flight stay decodable.

    Every step keeps ``in_flight`` ids alive, drawn within the window either
    side of the reference, as a busy node would see them; each one must
    decode to itself, however many times the code space wrapped.
    """
    rng = random.Random(seed)
    reference = 0
    steps = 0
    while reference < 40 * space.codes:
        reference += rng.randint(0, space.window)
        low = max(0, reference - space.window)
        alive = [rng.randint(low, reference + space.window) for _ in range(in_flight)]
        wires = [space.to_wire(full_id) for full_id in alive]
        assert [space.from_wire(wire, reference) for wire in wires] == alive
        steps += 1
    assert reference // space.codes >= 40
    assert steps > 40


@pytest.mark.parametrize("space", SPACES, ids=lambda s: f"{s.bits}bits-w{s.window}")
def test_every_code_decodes_once_and_the_rest_are_out_of_window(space: IdSpace) -> None:
    """Around any reference, each id within the window owns one code; other codes are refused."""
    for reference in range(3 * space.codes):
        window_ids = range(max(0, reference - space.window), reference + space.window + 1)
        own = {space.to_wire(full_id): full_id for full_id in window_ids}
        assert len(own) == len(window_ids)
        for wire in range(1, space.codes + 1):
            if wire in own:
                assert space.from_wire(wire, reference) == own[wire]
            else:
                with pytest.raises(OutOfWindow):
                    space.from_wire(wire, reference)


def test_unmarked_decodes_to_none() -> None:
    assert IdSpace().from_wire(UNMARKED, 40) is None


def test_ids_just_outside_the_window_are_out_of_window() -> None:
    space = IdSpace(bits=6, window=16)
    reference = 1000
    for full_id in (reference + 17, reference - 17):
        with pytest.raises(OutOfWindow, match="outside the window"):
            space.from_wire(space.to_wire(full_id), reference)


def test_a_code_that_would_decode_below_zero_is_out_of_window() -> None:
    space = IdSpace(bits=6, window=16)
    before_zero = space.codes  # the code of id -1 modulo the code space
    with pytest.raises(OutOfWindow):
        space.from_wire(before_zero, 0)


@pytest.mark.parametrize("wire", [-1, 64, 1000])
def test_codes_that_do_not_fit_raise_value_error(wire: int) -> None:
    with pytest.raises(ValueError, match="does not fit") as raised:
        IdSpace(bits=6, window=16).from_wire(wire, 5)
    assert not isinstance(raised.value, OutOfWindow)


def test_negative_ids_have_no_wire_form() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        IdSpace().to_wire(-1)


@pytest.mark.parametrize(
    ("bits", "window"), [(6, 32), (6, 0), (14, 8192), (3, 4), (1, 1), (33, 1)]
)
def test_spaces_with_ambiguous_or_empty_windows_are_rejected(bits: int, window: int) -> None:
    with pytest.raises(ValueError):
        IdSpace(bits=bits, window=window)


@pytest.mark.parametrize(("bits", "window"), [(6, 31), (14, 8191), (2, 1), (32, 1)])
def test_the_largest_unambiguous_windows_are_accepted(bits: int, window: int) -> None:
    space = IdSpace(bits=bits, window=window)
    assert 2 * space.window + 1 <= space.codes


@given(st.integers(0, 10**7), st.integers(-8191, 8191))
def test_fourteen_bit_space_with_window_8191(reference: int, offset: int) -> None:
    full_id = max(0, reference + offset)
    assert WIDE.codes == 16383
    assert WIDE.from_wire(WIDE.to_wire(full_id), reference) == full_id


@pytest.mark.parametrize("space", [*SPACES, WIDE], ids=lambda s: f"{s.bits}bits-w{s.window}")
@pytest.mark.parametrize("full_id", [0, 5, 62, 63, 64, 10_000])
def test_ahead_wires_are_the_codes_of_the_next_window_ids(space: IdSpace, full_id: int) -> None:
    wires = space.ahead_wires(full_id)
    assert len(wires) == len(set(wires)) == space.window
    assert space.to_wire(full_id) not in wires
    assert UNMARKED not in wires
    assert [space.from_wire(wire, full_id) for wire in wires] == list(
        range(full_id + 1, full_id + space.window + 1)
    )


def test_every_full_id_round_trips_through_the_tos_byte_on_all_255_codes() -> None:
    space = tos_space()
    reference = 1_000
    ids = range(reference - space.window, reference + space.window + 1)
    codes = {space.to_wire(k) for k in range(reference, reference + space.codes)}
    assert codes == set(range(1, 256)), "every nonzero TOS byte is a code"
    for full_id in ids:
        tos = code_to_tos(space.to_wire(full_id))
        assert 0 < tos <= 0xFF
        assert space.from_wire(tos_to_code(tos), reference) == full_id


def test_the_tos_byte_splits_into_dscp_and_ecn_without_losing_a_bit() -> None:
    fields = [tos_fields(code) for code in range(1 << TOS_BITS)]
    assert len(set(fields)) == 256
    assert all(0 <= dscp < 64 and 0 <= ecn < 4 for dscp, ecn in fields)
    assert tos_fields(0x18) == (6, 0) and tos_fields(0x01) == (0, 1)
    assert tos_fields(0xFF) == (63, 3) and tos_fields(0x43) == (16, 3)


@pytest.mark.parametrize("bad", [-1, 256, 1 << 14, True, 1.0, "4"])
def test_a_code_that_is_not_a_tos_byte_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        code_to_tos(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tos_to_code(bad)  # type: ignore[arg-type]


def test_the_emulation_space_leaves_codes_no_correct_process_sends() -> None:
    space = tos_space()
    assert (space.bits, space.codes, space.window) == (8, 255, TOS_WINDOW)
    refused = 0
    for code in range(1, space.codes + 1):
        try:
            space.from_wire(code, 500)
        except OutOfWindow:
            refused += 1
    assert refused == space.codes - (2 * space.window + 1) > 0
    assert tos_space(127).window == 127
    with pytest.raises(ValueError):
        tos_space(128)

