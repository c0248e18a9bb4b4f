"""Snapshot ids on the wire: encoding, serial-number decoding, the window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.ids import (
    IPV4_ID_BITS,
    IPV4_LEAD,
    IPV4_WINDOW,
    TOS_BITS,
    TTL_ENTROPY,
    UNMARKED,
    IdSpace,
    InvalidId,
    OutOfWindow,
    ipv4_code,
    ipv4_marks,
    ipv4_space,
    tos_fields,
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


def test_every_full_id_round_trips_through_the_tos_byte_and_ttl_on_all_1023_codes() -> None:
    space = ipv4_space()
    reference = 1_000
    codes = {space.to_wire(k) for k in range(reference, reference + space.codes)}
    assert codes == set(range(1, 1 << IPV4_ID_BITS)), "every nonzero 10-bit value is a code"
    for full_id in range(reference - space.window, reference + space.window + 1):
        for entropy in (0, 17, TTL_ENTROPY[-1]):
            tos, ttl = ipv4_marks(space.to_wire(full_id), entropy)
            assert 0 <= tos <= 0xFF and 128 <= ttl <= 0xFF, "a stamped TTL keeps its high bit"
            assert ttl >> 2 & 0x1F == entropy, "the entropy sits between high and id bits"
            assert space.from_wire(ipv4_code(tos, ttl), reference) == full_id


def test_the_code_splits_into_the_tos_byte_and_the_ttls_lowest_bits() -> None:
    assert ipv4_marks(0) == (0, 128), "unmarked: TOS 0, TTL 128"
    assert ipv4_marks(0x2A5) == (0xA5, 0x82)
    assert ipv4_marks(0x3FF, 31) == (0xFF, 0xFF)
    assert ipv4_marks(0x100, 1) == (0, 0x85)
    marks = {ipv4_marks(code, entropy) for code in range(1 << IPV4_ID_BITS)
             for entropy in TTL_ENTROPY}
    assert len(marks) == (1 << IPV4_ID_BITS) * len(TTL_ENTROPY), "no two share a header"
    # a TTL nobody stamped (Linux's default 64) still reads as its two lowest bits
    assert ipv4_code(0x12, 64) == 0x12 and ipv4_code(0x12, 67) == 0x312


def test_the_tos_byte_splits_into_dscp_and_ecn_without_losing_a_bit() -> None:
    fields = [tos_fields(tos) for tos in range(1 << TOS_BITS)]
    assert len(set(fields)) == 256
    assert all(0 <= dscp < 64 and 0 <= ecn < 4 for dscp, ecn in fields)
    assert tos_fields(0x18) == (6, 0) and tos_fields(0x01) == (0, 1)
    assert tos_fields(0xFF) == (63, 3) and tos_fields(0x43) == (16, 3)


@pytest.mark.parametrize("bad", [-1, 1024, 1 << 14, True, 1.0, "4", None])
def test_a_code_that_does_not_fit_ten_bits_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        ipv4_marks(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 32, True, 1.5])
def test_entropy_that_does_not_fit_five_bits_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        ipv4_marks(5, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tos", "ttl"), [(256, 128), (-1, 128), (0, 256), (0, -1),
                                          (True, 128), (0, 128.0), ("1", 128)])
def test_header_bytes_that_are_not_bytes_are_refused(tos: object, ttl: object) -> None:
    with pytest.raises(ValueError):
        ipv4_code(tos, ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [256, -1, True, 1.0])
def test_a_tos_field_split_refuses_what_is_not_a_byte(bad: object) -> None:
    with pytest.raises(ValueError):
        tos_fields(bad)  # type: ignore[arg-type]


def test_the_emulation_space_leaves_codes_no_correct_process_sends() -> None:
    space = ipv4_space()
    assert (space.bits, space.codes, space.window) == (10, 1023, IPV4_WINDOW)
    assert space.lead == IPV4_LEAD == 127
    refused = 0
    for code in range(1, space.codes + 1):
        try:
            space.from_wire(code, 5_000)
        except OutOfWindow:
            refused += 1
    assert refused == space.codes - (2 * space.window + 1) > 0
    assert ipv4_space(511).window == 511
    assert ipv4_space(64).lead == 64, "a window below the lead is the lead"
    with pytest.raises(ValueError):
        ipv4_space(512)


def test_a_gateway_sees_only_the_lead_ahead() -> None:
    space = ipv4_space()
    ahead = space.ahead_wires(1_000)
    assert len(ahead) == IPV4_LEAD
    assert [space.from_wire(w, 1_000) for w in ahead] == list(range(1_001, 1_001 + IPV4_LEAD))


@pytest.mark.parametrize("lead", [0, 17, True, 1.0])
def test_a_lead_outside_the_window_is_refused(lead: object) -> None:
    with pytest.raises(InvalidId):
        IdSpace(bits=6, window=16, lead=lead)  # type: ignore[arg-type]
