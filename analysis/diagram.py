"""A space-time diagram of one snapshot: where each node cut, what was in flight, and,
for an inconsistent snapshot, the causal chain that breaks it.

The input is a run's ground-truth event logs (:class:`testbed.truth.ProcessLog`:
each process's sends, receives and capture points with times), stored with
the run (``events`` table, :mod:`controller.coordinator.store`), and the
channel state the protocol recorded. One horizontal line per in-group node
(top) and out-group relay (bottom); time runs left to right. Messages are
grey arrows from send to receive; the cut is the blue line through each
node's capture point for the snapshot; messages the protocol recorded as in
flight are orange; the chain the oracle finds crossing the cut backwards
(:func:`oracle.chains.violating_chain`) is red, its first send (outside the
cut) and last receive (inside it) circled. Only a window of time around the
cut (and the chain) is drawn.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from analysis.frames import save
from hosts.truth import INGROUP
from oracle.chains import violating_chain
from testbed.truth import MessageIds, ProcessLog, event_log

CUT, IN_FLIGHT, CHAIN, OTHER = "tab:blue", "tab:orange", "tab:red", "0.7"
MAX_MESSAGES = 400
"""Grey arrows drawn at most (those nearest the cut): beyond that a diagram is unreadable."""


@dataclass(frozen=True)
class Title:
    """What the diagram says about its snapshot."""

    run: int
    protocol: str
    valid: bool | None
    consistent: bool | None
    time_unit: str
    """The unit of the logs' ``t`` after scaling (``ms``, or ``steps`` for logical time)."""
    scale: float = 1.0
    """Multiplies the logs' ``t`` into ``time_unit``."""


def cut_times(logs: list[ProcessLog], snapshot_id: int) -> dict[str, float | None]:
    """Each in-group node's capture time for ``snapshot_id`` (None: never captured)."""
    cuts: dict[str, float | None] = {}
    for log in logs:
        if log.role != INGROUP:
            continue
        cuts[log.process] = next(
            (e.t for e in log.events
             if e.kind == "capture" and e.snapshots[0] <= snapshot_id <= e.snapshots[1]), None)
    return cuts


def chain_of(logs: list[ProcessLog], snapshot_id: int) -> list[str]:
    """The message ids of a causal chain breaking the snapshot (empty: consistent)."""
    ids = MessageIds()
    log = event_log(logs, ids)
    names = ids.names()
    return [names[m] for m in violating_chain(log, snapshot_id)]


def draw(logs: list[ProcessLog], snapshot_id: int, recorded: Collection[str], title: Title,
         path: Path) -> Path:
    """Draw snapshot ``snapshot_id`` to ``path`` (PNG); returns ``path``."""
    scale = title.scale
    ingroup = sorted((log.process for log in logs if log.role == INGROUP), key=_natural)
    sends, receives = {}, {}
    for log in logs:
        for event in log.events:
            if event.kind == "send":
                sends[event.message_id] = (log.process, event.t * scale)
            elif event.kind == "receive":
                receives[event.message_id] = (log.process, event.t * scale)
    cuts = {node: (None if t is None else t * scale)
            for node, t in cut_times(logs, snapshot_id).items()}
    origin = min((t for t in cuts.values() if t is not None), default=0.0)
    sends = {m: (p, t - origin) for m, (p, t) in sends.items()}
    receives = {m: (p, t - origin) for m, (p, t) in receives.items()}
    cuts = {node: (None if t is None else t - origin) for node, t in cuts.items()}
    chain = chain_of(logs, snapshot_id)
    recorded = set(recorded)
    low, high = _window(cuts, [sends[m][1] for m in chain] + [receives[m][1] for m in chain],
                        [t for _, t in sends.values()])
    messages = [m for m in sends if m in receives
                and (low <= sends[m][1] <= high or low <= receives[m][1] <= high)]
    middle = (low + high) / 2
    messages.sort(key=lambda m: abs(sends[m][1] - middle))
    plain = [m for m in messages if m not in recorded and m not in chain][:MAX_MESSAGES]
    # out-group lanes: the relays that receive a drawn message (open-loop clients only
    # send, and a relay idle in this window would be an empty line)
    drawn = {receives[m][0] for m in (*plain, *recorded, *chain) if m in receives}
    outgroup = sorted(drawn - set(ingroup), key=_natural)
    lanes = {name: len(ingroup) + len(outgroup) - i for i, name in enumerate(ingroup + outgroup)}
    fig, axis = plt.subplots(figsize=(11, 1.2 + 0.55 * len(lanes)))
    for name, y in lanes.items():
        axis.axhline(y, color="black", linewidth=0.8,
                     linestyle="-" if name in ingroup else ":")
    for group, colour, width in ((plain, OTHER, 0.6), (sorted(recorded & set(messages)),
                                                        IN_FLIGHT, 1.8), (chain, CHAIN, 2.4)):
        for message in group:
            (sender, sent), (receiver, got) = sends[message], receives[message]
            if sender not in lanes or receiver not in lanes:
                continue
            axis.annotate("", xy=(got, lanes[receiver]), xytext=(sent, lanes[sender]),
                          arrowprops={"arrowstyle": "->", "color": colour, "linewidth": width,
                                      "shrinkA": 0, "shrinkB": 0},
                          zorder=3 if colour != OTHER else 1)
    if chain:
        first, last = sends[chain[0]], receives[chain[-1]]
        for process, t in (first, last):
            axis.plot(t, lanes[process], "o", markersize=13, markerfacecolor="none",
                      markeredgecolor=CHAIN, markeredgewidth=2, zorder=4)
    points = [(t if t is not None else high, lanes[node]) for node, t in cuts.items()]
    points.sort(key=lambda point: -point[1])
    axis.plot([p[0] for p in points], [p[1] for p in points], color=CUT, linewidth=2.2,
              marker="s", markersize=7, zorder=5)
    for node, t in cuts.items():
        if t is None:
            axis.annotate("never captured", (high, lanes[node]), fontsize=7, color=CUT,
                          xytext=(3, 4), textcoords="offset points")
    axis.set_yticks(list(lanes.values()), list(lanes))
    axis.set_xlim(low, high)
    axis.set_ylim(0.3, len(lanes) + 0.7)
    axis.set_xlabel(f"time since the first capture point ({title.time_unit})")
    verdict = {True: "consistent", False: "INCONSISTENT", None: "not judged"}[title.consistent]
    accepted = {True: "accepted", False: "rejected", None: "validity unknown"}[title.valid]
    axis.set_title(f"run {title.run}, snapshot {snapshot_id} ({title.protocol}): "
                   f"{accepted} by the protocol, {verdict} by the oracle")
    axis.legend(handles=[
        Line2D([], [], color=CUT, linewidth=2.2, marker="s", label="cut (capture points)"),
        Line2D([], [], color=IN_FLIGHT, linewidth=1.8, label="recorded in flight"),
        Line2D([], [], color=CHAIN, linewidth=2.4, label="chain breaking the cut"),
        Line2D([], [], color=OTHER, linewidth=0.8, label="other messages"),
        Line2D([], [], color="black", linestyle=":", linewidth=0.8, label="out-group process"),
    ], fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    caption = (f"{len(ingroup)} in-group nodes; the {len(outgroup)} relay(s) active in this "
               "window (open-loop clients' requests not drawn); "
               f"{len(recorded)} message(s) recorded in flight. ")
    if chain:
        caption += (f"Chain: {' -> '.join(chain)}: sent by {sends[chain[0]][0]} after its cut, "
                    f"it reaches {receives[chain[-1]][0]} before its cut.")
    elif title.consistent is not False:
        caption += "No message crosses the cut backwards."
    return save(fig, path, caption)


def _natural(name: str) -> list:
    """``r2`` before ``r10``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _window(cuts: dict[str, float | None], chain_times: list[float],
            all_times: list[float]) -> tuple[float, float]:
    """The time range drawn: the cut and the chain, with a margin on both sides."""
    marks = [t for t in cuts.values() if t is not None] + chain_times
    if not marks:
        marks = all_times[-1:] or [0.0]
    low, high = min(marks), max(marks)
    margin = max((high - low) * 0.25, _typical_gap(all_times) * 6)
    return low - margin, high + margin


def _typical_gap(times: list[float]) -> float:
    ordered = sorted(times)
    gaps = sorted(b - a for a, b in zip(ordered, ordered[1:], strict=False) if b > a)
    return gaps[len(gaps) // 2] if gaps else 1.0


def draw_stored(store, run: int, snapshot_id: int, path: Path) -> Path:
    """Draw a stored snapshot (simulated or emulated) from its run's stored event logs.

    Raises ``KeyError`` for a snapshot the run does not hold and ``LookupError`` when
    the run kept no event logs."""
    from hosts.truth import MESSAGE_ID
    from testbed.truth import stored_logs

    snapshot = store.snapshot(run, snapshot_id)
    rows = store.events(run)
    if not rows:
        raise LookupError(f"run {run} kept no event logs to draw from")
    run_row = store.run(run)
    simulated = bool(run_row["parameters"].get("simulated"))
    verdict = store.verdicts(run).get(snapshot_id)
    title = Title(
        run=run, protocol=run_row["protocol"], valid=snapshot.valid,
        consistent=None if verdict is None else verdict["consistent"],
        time_unit="logical steps" if simulated else "ms", scale=1.0 if simulated else 1e3,
    )
    recorded = [m.message.get(MESSAGE_ID) for m in snapshot.in_flight
                if isinstance(m.message, dict)]
    return draw(stored_logs(rows), snapshot_id, [m for m in recorded if m], title, path)
