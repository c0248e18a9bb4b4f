"""Pipelined gateway updates in the emulated data center: their rate, and when they take effect.

In one data center (``--gateways``, default 2), for each number of updates
in flight (``--depths``, default 1, 4, 16):

* rate: ``--updates`` id updates on one connection to the controller,
  that many outstanding at a time (``GatewayClient.send_set_id`` /
  ``next_update``): updates per second, the update p50 (first flow-mod sent
  to last barrier reply), the controller's CPU seconds per update, and how
  many gateways' parts of them were coalesced (acknowledged by a newer
  update's flow-mod, without one of their own: ``coalesced_updates``);
* effect: a datagram stream through one gateway (``stamp_stream.py``, one
  datagram every 0.5 ms, its payload the send time) while the updates run:
  the share of datagrams sent after the gateway acknowledged id k that
  still arrived with an older id, and the longest such delay after the ack.

With ``--lean``, the updates are the benchmark's own lean loop's
(:mod:`lean_updater`, ``bench_gateways.py --updater lean``: the controller's
flow-mod and barrier bytes straight to the gateways' bridges, then the
purge), one at a time (``--depths 1``): the effect columns check that its
ack holds as the controller's does.

Needs root and Open vSwitch; prints one line per depth and can write JSON::

    sudo .venv/bin/python benchmarks/bench_pipeline.py --json pipeline.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu_time import cpu_seconds  # noqa: E402  (beside this script)
from lean_updater import LeanUpdater  # noqa: E402
from pipelined import pipelined_updates  # noqa: E402

from beaver.ids import OutOfWindow, ipv4_space  # noqa: E402
from testbed.network import DataCenter, ovs_problem  # noqa: E402
from topologies.addressing import DataCenterParams  # noqa: E402
from topologies.claims import NamePool  # noqa: E402

STREAM = Path(__file__).with_name("stamp_stream.py")
STREAM_PORT, STREAM_SPORT = 7002, 40100
DECODE = ipv4_space()


def stamped_late(arrivals: list[tuple[float, int, float]], acks: list[tuple[float, int]],
                 sends: list[tuple[float, int]]) -> tuple[int, int, float]:
    """(datagrams sent while updates ran, those that carried an id older than one the
    gateway had acknowledged before they were sent, the longest such delay in s).

    ``arrivals``: (sent, code, arrived) per datagram; ``acks`` and ``sends``: (time, id)
    of the gateway's acks and flow-mods. A datagram that is on time carries an id from
    the newest one acknowledged before it was sent to the newest one whose flow-mod left
    before it arrived (a datagram held up in a queue can get a much newer one); it is late
    if no id of that range has its code."""
    late, during, longest = 0, 0, 0.0
    acked_at = {k: at for at, k in acks}
    for sent, wire, arrived in sorted(arrivals):
        if not acks[0][0] < sent < acks[-1][0]:
            continue
        during += 1
        newest = max(k for at, k in acks if at < sent)
        top = max(k for at, k in sends if at < arrived)
        if wire in {DECODE.to_wire(k) for k in range(newest, top + 1)}:
            continue
        late += 1
        try:
            stamped = DECODE.from_wire(wire, newest)
        except OutOfWindow:  # older than the window: how much later is not known
            continue
        if stamped is not None and stamped < newest:
            longest = max(longest, sent - acked_at[stamped + 1])
    return during, late, longest


def lean_updates(dc: DataCenter, count: int) -> tuple[list[tuple[float, int]],
                                                     list[tuple[float, int]]]:
    """(time, id) of the sends and of the acks of ``count`` updates by the lean loop, past
    the gateways' newest id."""
    first = max(dc.controller.ids().values()) + 1
    sends, acks = [], []
    with LeanUpdater.of_data_center(dc) as lean:
        lean.prepare(first, count)
        for snapshot_id in range(first, first + count):
            sends.append((time.monotonic(), snapshot_id))
            lean.update(snapshot_id)
            acks.append((time.monotonic(), snapshot_id))
    return sends, acks


def measure(dc: DataCenter, depth: int, count: int, lean: bool = False) -> dict[str, Any]:
    gateway = dc.plan.gateways[0].name
    client, vip = dc.plan.externals[0], dc.plan.services[0].vip
    backend = dc.plan.services[0].backends[0]
    dc.controller.steer(gateway)
    receiver = dc.host(backend).popen([sys.executable, str(STREAM), "receive",
                                       str(STREAM_PORT)], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        sender = dc.host(client.name).popen(
            [sys.executable, str(STREAM), "send", vip, str(STREAM_PORT), "--sport",
             str(STREAM_SPORT + depth), "--duration", "60"], stdout=subprocess.PIPE, text=True)
        assert sender.stdout is not None and sender.stdout.readline().strip() == "sending"
        before, began = cpu_seconds([dc.controller_process.pid]), time.monotonic()
        coalesced = sum(dc.controller.status()["coalesced_updates"].values())
        if lean:  # timed from its first send: its connections and bytes are made before
            updates, (sends, acks) = [], lean_updates(dc, count)
            elapsed = acks[-1][0] - sends[0][0]
        else:
            updates = pipelined_updates(dc, count, depth)
            elapsed = time.monotonic() - began
        spent = cpu_seconds([dc.controller_process.pid]) - before
        coalesced = sum(dc.controller.status()["coalesced_updates"].values()) - coalesced
        sender.terminate()
        sender.wait(timeout=10)
    finally:
        receiver.terminate()
        out, _ = receiver.communicate(timeout=10)
        dc.controller.steer(None)
    arrivals = [(float(sent), int(wire), float(arrived)) for sent, wire, arrived in
                (line.split() for line in out.split("\n")[:-1])]
    if not lean:
        acks = sorted((u.gateways[gateway].acked_at, u.snapshot_id) for u in updates
                      if u.gateways[gateway].acked_at is not None)
        sends = sorted((u.gateways[gateway].sent_at, u.snapshot_id) for u in updates
                       if u.gateways[gateway].sent_at is not None)
        spans = [u.last_acked - u.first_sent for u in updates if u.last_acked is not None]
    else:
        spans = [acked - sent for (sent, _), (acked, _) in zip(sends, acks, strict=True)]
    during, late, longest = stamped_late(arrivals, acks, sends)
    return {"depth": depth, "updates": count, "updates_per_s": count / elapsed,
            "update_p50_ms": statistics.median(spans) * 1e3,
            "controller_cpu_ms_per_update": spent / count * 1e3,
            "coalesced_updates": coalesced,
            "datagrams_during": during, "datagrams_stamped_late": late,
            "late_share": late / during if during else None,
            "longest_late_ms": longest * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--depths", default="1,4,16", help="updates in flight, comma-separated")
    parser.add_argument("--updates", type=int, default=400, help="id updates per depth")
    parser.add_argument("--lean", action="store_true",
                        help="updates by the benchmark's own lean loop, not the controller "
                        "(--depths 1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        depths = [int(d) for d in args.depths.split(",")]
    except ValueError:
        print(f"bench_pipeline: --depths must be integers, got {args.depths!r}", file=sys.stderr)
        return 2
    if args.gateways < 1 or args.updates < 2 or min(depths) < 1:
        print("bench_pipeline: --gateways, --updates and --depths must be positive",
              file=sys.stderr)
        return 2
    if args.lean and depths != [1]:
        print("bench_pipeline: --lean sends one update at a time: use --depths 1",
              file=sys.stderr)
        return 2
    if max(depths) > DECODE.window:
        print(f"bench_pipeline: at most {DECODE.window} updates in flight (the window the "
              "datagrams' ids are decoded in)", file=sys.stderr)
        return 2
    problem = ovs_problem()
    if problem:
        print(f"bench_pipeline: the emulated data center {problem}", file=sys.stderr)
        return 1
    # One backend behind the VIP, so the stream reaches the receiver whatever its hash.
    params = DataCenterParams(spines=1, leaves=1, hosts_per_leaf=1, gateways=args.gateways,
                              externals=1, relays=0)
    results = []
    with DataCenter(params, names=NamePool("p", "172.25.0.0/16")) as dc:
        for depth in depths:
            row = measure(dc, depth, args.updates, args.lean)
            results.append(row)
            late = row["late_share"]
            print(f"{depth:>3} in flight: {row['updates_per_s']:.0f} updates/s, update p50 "
                  f"{row['update_p50_ms']:.2f} ms, controller "
                  f"{row['controller_cpu_ms_per_update']:.2f} ms CPU each, "
                  f"{row['coalesced_updates']} gateway parts coalesced; "
                  f"{row['datagrams_stamped_late']} of {row['datagrams_during']}"
                  f" datagrams ({0 if late is None else late * 100:.1f} %) arrived with an id"
                  f" older than one acked before they left, up to {row['longest_late_ms']:.1f}"
                  " ms after the ack", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
