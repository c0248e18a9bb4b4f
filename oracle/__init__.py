"""Ground truth: was a snapshot causally consistent, and was its channel state exact?

The oracle judges snapshots from what really happened, independently of any
protocol's bookkeeping. Its input is an :class:`EventLog`:

- every process (in-group node or out-group process) has a sequence of
  events, each the send or the receive of a message with a unique id;
- each in-group node has *capture positions*: snapshot k was captured at
  position p when exactly the node's first p events happened before its
  local state for k was recorded. Those p events are *inside* cut k.

Snapshot k is **consistent** when no in-group event inside cut k has a
causal predecessor (happened-before, through any process, in-group or not)
that is an in-group event outside cut k. Its channel state is **exact**
when the message ids the protocol recorded for k are precisely the in-group
messages (in-group sender and receiver) sent inside cut k and received
outside it.

One pass decides both for every snapshot. Events are replayed in an order
that respects every process's sequence and puts every send before its
receive. Each in-group node has a *level*: the number of snapshots whose
capture point it has passed (its events at level c are inside cuts c+1..
and outside cuts 1..c). Each message carries a *taint*: for an in-group
sender its level at the send, for an out-group sender the highest taint it
has received so far (out-group processes pass causality on). An in-group
receiver at level c that receives taint L > c shows an effect inside cuts
c+1..L of a cause outside them: those snapshots are inconsistent. An
in-group message sent at level ls and received at level lr is in flight
across cuts ls+1..lr. The cost is linear in events plus snapshots plus the
size of the channel states.

Levels and taints depend only on each process's order and on which send
each receive matches, not on the order of the replay, so once the log is
known to have a causal order they follow from whole-array operations
(:class:`_Pass`: numpy over all events at once). A log proves its order
when its ids were handed out in time order, as the simulator's are; any
other log, or a malformed one, is replayed event by event
(:class:`_Replay`), which also says what is wrong with it.

A message that is sent but never received belongs to no channel state (the
log does not say which channel it was on): a run should drain first.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np


class LogError(ValueError):
    """A log that no execution can have produced (receive without send, duplicates, ...)."""


class EventLog:
    """Per-process event sequences and the in-group nodes' capture positions.

    Events are stored compactly: a message id ``m >= 0`` is a send of ``m``,
    ``~m`` (a negative number) a receive of ``m``. ``captures[node][k - 1]``
    is the position at which in-group ``node`` captured snapshot k.
    """

    def __init__(self, ingroup: Iterable[str]):
        self.ingroup = frozenset(ingroup)
        self.events: dict[str, array] = {}
        self.captures: dict[str, list[int]] = {node: [] for node in self.ingroup}

    def sequence(self, process: str) -> array:
        """The event sequence of ``process`` (created empty on first use)."""
        events = self.events.get(process)
        if events is None:
            events = self.events[process] = array("q")
        return events

    def send(self, process: str, message: int) -> None:
        if message < 0:
            raise LogError(f"message ids are non-negative, got {message}")
        self.sequence(process).append(message)

    def receive(self, process: str, message: int) -> None:
        if message < 0:
            raise LogError(f"message ids are non-negative, got {message}")
        self.sequence(process).append(~message)

    def capture(self, node: str, through: int) -> None:
        """``node`` records its state for every snapshot up to ``through`` not yet captured."""
        try:
            positions = self.captures[node]
        except KeyError:
            raise LogError(f"{node!r} is not an in-group node and takes no snapshots") from None
        missing = through - len(positions)
        if missing > 0:
            positions.extend([len(self.sequence(node))] * missing)

    def level(self, node: str) -> int:
        """How many snapshots ``node`` has captured so far."""
        return len(self.captures[node])


@dataclass(frozen=True)
class Verdict:
    """The oracle's judgement of one snapshot."""

    snapshot_id: int
    captured: bool
    """Every in-group node captured this snapshot (otherwise its cut ends at the log's end)."""
    consistent: bool
    channel_exact: bool
    channel_missing: int
    """In-flight in-group messages the protocol did not record."""
    channel_extra: int
    """Recorded messages that were not in flight across this cut."""


def judge(
    log: EventLog, recorded: Mapping[int, Collection[int]], snapshots: int
) -> list[Verdict]:
    """Judge snapshots ``1..snapshots``.

    ``recorded[k]`` holds the message ids the protocol recorded as in flight for k.
    """
    if snapshots < 0:
        raise ValueError(f"snapshot count must be non-negative, got {snapshots}")
    passed = _Pass.of(log, snapshots)
    if passed is None:  # a log the vectorised pass cannot vouch for: replay it event by event
        passed = _Replay(log, snapshots)
        passed.run()
    inconsistent = _covered(passed.inconsistent_ranges, snapshots)
    captured_by_all = min((len(positions) for positions in log.captures.values()), default=0)
    verdicts = []
    for k in range(1, snapshots + 1):
        truth = passed.in_flight.get(k, set())
        got = set(recorded.get(k, ()))
        missing, extra = len(truth - got), len(got - truth)
        verdicts.append(
            Verdict(
                snapshot_id=k,
                captured=k <= captured_by_all,
                consistent=not inconsistent[k],
                channel_exact=missing == 0 and extra == 0,
                channel_missing=missing,
                channel_extra=extra,
            )
        )
    return verdicts


def _covered(ranges: list[tuple[int, int]], snapshots: int) -> list[bool]:
    """Which of 0..snapshots lie in any of the closed ranges (index 0 unused)."""
    depth = [0] * (snapshots + 2)
    for low, high in ranges:
        high = min(high, snapshots)
        if low <= high:
            depth[low] += 1
            depth[high + 1] -= 1
    covered, running = [False] * (snapshots + 1), 0
    for k in range(1, snapshots + 1):
        running += depth[k]
        covered[k] = running > 0
    return covered


class _Replay:
    """One pass over the log in a causal order (see the module docstring)."""

    def __init__(self, log: EventLog, snapshots: int):
        self.log = log
        self.snapshots = snapshots
        sequences = {process: _as_int64(events) for process, events in log.events.items()}
        self._ids, sequences = _dense_ids(sequences)
        """The message ids of the log, if the replay numbers them ``0..`` (None: as they are)."""
        largest = max((int(np.abs(events).max()) for events in sequences.values()
                       if events.size), default=0)
        replayed = {process: events if self._ids is None else array("q", sequences[process])
                    for process, events in log.events.items()}
        self.taint = array("q", [_NOT_SENT]) * (largest + 1)
        """Per message id: twice its taint, plus 1 if its sender is out-group, once sent;
        :data:`_RECEIVED` once received, :data:`_NOT_SENT` before (an array, not a dict:
        millions of messages in a large run, read and written in one flat block)."""
        self.inconsistent_ranges: list[tuple[int, int]] = []
        self.in_flight: dict[int, set[int]] = {}
        self._resume = {
            process: (replayed[process], process in log.ingroup,
                      log.captures.get(process, ()), 0, 0, 0)
            for process in log.events
        }
        """Per process: its events, whether it is in-group, its capture positions, and where
        its replay stopped (position, level and carried taint)."""
        self._waiting: dict[int, str] = {}
        """A process blocked on the receive of a message not sent yet."""

    def _message(self, message: int) -> int:
        """The log's id of the replay's message ``message``."""
        return message if self._ids is None else int(self._ids[message])

    def run(self) -> None:
        ready = list(self.log.events)
        while ready:
            self._advance(ready.pop(), ready)
        if self._waiting:
            message, process = next(iter(self._waiting.items()))
            raise LogError(
                f"{process} receives message {self._message(message)}, which is never sent "
                f"before it (or only after, through a causal cycle)"
            )

    def _advance(self, process: str, ready: list[str]) -> None:
        """Replay ``process`` until it ends or waits for a message not sent yet."""
        events, ingroup, captures, position, level, carried = self._resume[process]
        taint, waiting = self.taint, self._waiting
        end, captured = len(events), len(captures)
        out_group = 0 if ingroup else 1
        next_capture = captures[level] if level < captured else end
        while position < end:
            if position >= next_capture:
                level = bisect_right(captures, position, level)
                next_capture = captures[level] if level < captured else end
            event = events[position]
            if event >= 0:
                if taint[event] != _NOT_SENT:
                    raise LogError(f"message {self._message(event)} is sent twice "
                                   f"(again by {process})")
                taint[event] = 2 * (level if ingroup else carried) + out_group
                if waiting:
                    blocked = waiting.pop(event, None)
                    if blocked is not None:
                        ready.append(blocked)
            else:
                message = ~event
                code = taint[message]
                if code < 0:
                    if code == _RECEIVED or message in waiting:
                        raise LogError(f"message {self._message(message)} is received twice "
                                       f"({process})")
                    waiting[message] = process
                    break
                taint[message] = _RECEIVED
                sent_at = code >> 1
                if ingroup:
                    if sent_at > level:
                        self.inconsistent_ranges.append((level + 1, sent_at))
                    elif sent_at < level and not code & 1:
                        for k in range(sent_at + 1, min(level, self.snapshots) + 1):
                            self.in_flight.setdefault(k, set()).add(self._message(message))
                elif sent_at > carried:
                    carried = sent_at
            position += 1
        self._resume[process] = events, ingroup, captures, position, level, carried


class _Pass:
    """The same judgement as :class:`_Replay`, computed with whole-array operations.

    Once it is known that the log has a causal order, levels and taints no longer need
    a replay: a send's taint is its sender's level at its position (an in-group sender)
    or the highest taint its sender received before it (an out-group one), and a
    receive compares the message's taint with its receiver's level there. The order is
    proved by a witness rather than found: give each event the value ``2m`` (the send
    of ``m``) or ``2m + 1`` (its receive) and each event the highest value its
    process had up to it; if every send of ``m`` has the value ``2m`` that way (nothing
    before it in its process is above it), the values grow along every process and
    strictly along every message, so no causal cycle exists. A simulated run's logs
    pass (message ids are handed out in time order); a log that does not pass, or that
    is not well formed (a message sent or received twice, or never sent, captures out
    of order), is left to :class:`_Replay`, which finds its error.
    """

    def __init__(self, ranges: list[tuple[int, int]], in_flight: dict[int, set[int]]):
        self.inconsistent_ranges = ranges
        self.in_flight = in_flight

    @classmethod
    def of(cls, log: EventLog, snapshots: int, rounds: int = 64) -> _Pass | None:
        """The judgement of ``log``, or None if it needs the replay (``rounds``: how long
        a chain of out-group processes passing a taint on it follows before giving up)."""
        sequences = {process: _as_int64(events) for process, events in log.events.items()}
        ids, sequences = _dense_ids(sequences)
        processes = list(sequences)
        sizes = np.array([sequences[p].size for p in processes], dtype=np.int64)
        if not sizes.sum():
            return cls([], {})
        events = np.concatenate([sequences[p] for p in processes])
        del sequences
        sends = events >= 0
        messages = np.where(sends, events, ~events)
        del events
        count = int(messages.max()) + 1
        owner = np.repeat(np.arange(len(processes), dtype=np.int64), sizes)
        sent_by = np.full(count, -1, dtype=np.int64)
        """Per message, the index of its send (-1: none)."""
        send_at, receive_at = np.flatnonzero(sends), np.flatnonzero(~sends)
        if (np.bincount(messages[send_at], minlength=count).max(initial=0) > 1
                or np.bincount(messages[receive_at], minlength=count).max(initial=0) > 1):
            return None
        sent_by[messages[send_at]] = send_at
        if (sent_by[messages[receive_at]] < 0).any():
            return None
        # the witness of a causal order (see the class docstring)
        value = 2 * messages + ~sends + owner * (2 * count + 2)
        highest = np.maximum.accumulate(value)
        if (highest[send_at - 1][send_at > 0] >= value[send_at][send_at > 0]).any():
            return None
        del value, highest
        # levels of in-group events: how many captures of their node lie at or before them
        starts = (np.cumsum(sizes) - sizes).tolist()
        ingroup = np.array([p in log.ingroup for p in processes])
        inside = ingroup[owner]
        level = np.zeros(messages.size, dtype=np.int64)
        positions_of = np.arange(int(sizes.max()), dtype=np.int64)
        for p in np.flatnonzero(ingroup).tolist():
            captures = np.array(log.captures.get(processes[p], ()), dtype=np.int64)
            size, start = int(sizes[p]), starts[p]
            if captures.size:
                if captures[0] < 0 or captures[-1] > size or (np.diff(captures) < 0).any():
                    return None  # captures out of order, or past their node's events
                level[start:start + size] = np.searchsorted(captures, positions_of[:size],
                                                            side="right")
        # taints: an in-group sender's level; an out-group sender's highest taint received
        taint = np.zeros(count, dtype=np.int64)
        in_sends = send_at[inside[send_at]]
        taint[messages[in_sends]] = level[in_sends]
        outside = np.flatnonzero(~inside)
        if outside.size:
            out_messages, out_owner = messages[outside], owner[outside]
            out_sends = sends[outside]
            out_send_messages = out_messages[out_sends]
            spread = int(level.max()) + 1
            lift = out_owner * spread
            for _ in range(rounds):
                heard = np.where(out_sends, 0, taint[out_messages]) + lift
                carried = (np.maximum.accumulate(heard) - lift)[out_sends]
                if (carried == taint[out_send_messages]).all():
                    break
                taint[out_send_messages] = carried
            else:
                return None
        # what each in-group receive tells
        received = receive_at[inside[receive_at]]
        message = messages[received]
        sent_at, at = taint[message], level[received]
        late = sent_at > at
        ranges = list(zip((at[late] + 1).tolist(), sent_at[late].tolist(), strict=True))
        crossing = (sent_at < at) & inside[sent_by[message]]
        low, high = sent_at[crossing] + 1, np.minimum(at[crossing], snapshots)
        kept = low <= high
        low, high, message = low[kept], high[kept], message[crossing][kept]
        spans = high - low + 1
        total = int(spans.sum())
        first = np.repeat(np.cumsum(spans) - spans, spans)
        snapshot = np.repeat(low, spans) + np.arange(total, dtype=np.int64) - first
        logged = np.repeat(message if ids is None else ids[message], spans)
        order = np.argsort(snapshot, kind="stable")
        snapshot, logged = snapshot[order], logged[order]
        bounds = np.flatnonzero(np.diff(snapshot)) + 1
        in_flight = {int(group[0]): set(found.tolist()) for group, found in zip(
            np.split(snapshot, bounds), np.split(logged, bounds), strict=True) if group.size}
        return cls(ranges, in_flight)


def _as_int64(events: Iterable[int]) -> np.ndarray:
    """A process's events as an array of int64 (``array("q")`` shares its memory)."""
    if isinstance(events, array) and events.typecode == "q":
        return np.frombuffer(events, dtype=np.int64) if len(events) else np.zeros(0, np.int64)
    return np.fromiter(events, dtype=np.int64)


def _dense_ids(sequences: dict[str, np.ndarray]) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Number the messages of a log ``0..`` if its ids are sparse (a log written by hand);
    returns the ids (index: the new number) and the renumbered sequences. A simulated
    run's ids are ``1..`` in order already: kept as they are (ids None)."""
    sizes = [events.size for events in sequences.values()]
    if not sum(sizes):
        return None, sequences
    messages = [np.where(events < 0, ~events, events) for events in sequences.values()]
    largest = max(int(m.max()) for m in messages if m.size)
    if largest < 2 * sum(sizes) + 1024:
        return None, sequences
    ids, numbers = np.unique(np.concatenate(messages), return_inverse=True)
    renumbered, start = {}, 0
    for (process, events), size in zip(sequences.items(), sizes, strict=True):
        number = numbers[start:start + size]
        renumbered[process] = np.where(events < 0, ~number, number)
        start += size
    return ids, renumbered


_RECEIVED, _NOT_SENT = -1, -2
"""Marks in the replay's taint table: a message received already, one not sent yet."""
