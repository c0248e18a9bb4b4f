"""``emulated-timings`` (the paper's Fig 12 and 13, on real switches): update time and chain time.

Unlike the other experiments this one runs in the emulated data center
(Mininet, userspace Open vSwitch, the os-ken gateway controller), as
``beaver run`` does: one :class:`~testbed.emulation.Emulation`
per |G| with the bank workload, tau_min measured from relayed chains, S
snapshots at a fixed rate, each stored in a temporary SQLite database.
It needs root and a running Open vSwitch; without them it stops with one
line (exit status 1) before building anything.

Two kinds of rows share one CSV (``kind``):

- ``update``, one per stored snapshot with a t1: ``t1_t0_us`` (the
  coordinator's t1 - t0) and, from the stored gateway timings,
  ``first_ack_us`` / ``last_ack_us``: the first and last gateway
  acknowledgement after t0 (all on the host's one monotonic clock).
- ``chain``, one per external causal chain in the ground-truth event logs
  (:mod:`hosts.truth`, read with :func:`testbed.truth.read_log`). A relay
  logs the receive of an original datagram (message id ``A``) and gives the
  datagram it derives from it the relay's next message id: its n-th logged
  receive derives ``<relay>:n``, which it logs as sent after the WAN delay.
  ``chain_us`` is the time an in-group process logged the receive of
  ``<relay>:n`` minus the time the in-group process that sent ``A`` logged
  that send (a send is logged just before the datagram leaves, a receive
  just after it is read). Chains whose original was not sent by an in-group
  process, or whose derived datagram no in-group process received before
  the run stopped, are not rows.

Every row carries ``tau_min_us``, the shortest relayed chain the agents
measured before the first snapshot (what the coordinator used).

Its figure (:func:`draw`, drawn from the CSV alone): CDFs of t1 - t0 per |G|
and of relayed chain time (Fig 12, 13). Both panels share one true-scale log
axis in microseconds, so the paper's numbers (dashed, drawn as CDFs through
the quantiles it reports) sit where they belong: our switches are userspace
Open vSwitch bridges in one process and our relays add an emulated WAN delay,
so our times are milliseconds where the paper's are microseconds.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, save
from controller.coordinator.store import Store
from experiments.base import ExperimentError, Plan, Progress, Row
from experiments.emulated import emulated_experiment
from hosts.truth import INGROUP, RELAY
from testbed.emulation import Emulation, EmulationSettings
from testbed.truth import ProcessLog, TruthLogError, read_log

NAME = "emulated-timings"

SNAPSHOT_RATE_HZ = 20.0
INGROUP_HOSTS = 4
WAN_DELAY_S = 0.005
COLUMNS = ("kind", "gateways", "seed", "snapshot_id", "t1_t0_us", "first_ack_us",
           "last_ack_us", "valid", "chain_us", "tau_min_us")


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"gateways": [1, 2] if quick else [1, 2, 4]},
        fixed={"snapshots": 20 if quick else 100, "snapshot_rate_hz": SNAPSHOT_RATE_HZ,
               "ingroup": INGROUP_HOSTS, "wan_delay_ms": WAN_DELAY_S * 1e3,
               "service": "bank", "protocol": "beaver"},
    )


def relayed_chains(logs: list[ProcessLog]) -> list[float]:
    """The external chain times (seconds) in the processes' logs; see the module docstring."""
    sent_in_group: dict[str, float] = {}
    received_in_group: dict[str, float] = {}
    for log in logs:
        if log.role != INGROUP:
            continue
        for event in log.events:
            if event.kind == "send":
                sent_in_group.setdefault(event.message_id, event.t)
            elif event.kind == "receive":
                received_in_group.setdefault(event.message_id, event.t)
    chains = []
    for log in logs:
        if log.role != RELAY:
            continue
        receives = (event for event in log.events if event.kind == "receive")
        for n, original in enumerate(receives, start=1):
            derived = f"{log.process}:{n}"
            if original.message_id in sent_in_group and derived in received_in_group:
                chains.append(received_in_group[derived] - sent_in_group[original.message_id])
    return chains


def update_rows(store: Store, run: int) -> Iterator[Row]:
    """One ``update`` row per stored snapshot that has a t1 (times after t0, in us)."""
    for row in store.snapshot_rows(run):
        if row["update_us"] is None:
            continue
        snapshot = store.snapshot(run, row["snapshot_id"])
        acks = [(timing.acked_at - snapshot.t0) * 1e6 for timing in snapshot.gateways
                if timing.acked_at is not None and not timing.failed]
        yield {
            "kind": "update",
            "snapshot_id": row["snapshot_id"],
            "t1_t0_us": round(row["update_us"], 3),
            "first_ack_us": round(min(acks), 3) if acks else None,
            "last_ack_us": round(max(acks), 3) if acks else None,
            "valid": row["valid"],
        }


def emulate(settings: EmulationSettings, snapshots: int, database: Path,
            progress: Progress) -> tuple[float, list[Row], list[float]]:
    """One run: tau_min (us), its update rows and its relayed chain times (seconds)."""
    with Store(database) as store:
        run = store.new_run(settings.protocol, {"gateways": settings.gateways,
                                                "snapshots": snapshots}, None, "pending")
        with Emulation(settings, store, run) as emulation:
            assert emulation.service is not None
            tau = emulation.tau_min(None).seconds
            result = emulation.service.take(snapshots, SNAPSHOT_RATE_HZ,
                                            snapshots / SNAPSHOT_RATE_HZ + 30, lambda *_: None)
            if result.stalled:
                progress(f"gateways={settings.gateways}: {result.stalled}")
            emulation.stop_hosts()
            logs = [read_log(path) for path in emulation.truth_logs()]
        return tau * 1e6, list(update_rows(store, run)), relayed_chains(logs)


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = [(gateways, seed) for gateways in plan.grid["gateways"]
              for seed in range(1, plan.seeds + 1)]
    for index, (gateways, seed) in enumerate(points, start=1):
        settings = EmulationSettings(gateways=gateways, ingroup=INGROUP_HOSTS,
                                     wan_delay=WAN_DELAY_S)
        with tempfile.TemporaryDirectory(prefix="beaver-timings-") as folder:
            try:
                tau_us, updates, chains = emulate(settings, plan.fixed["snapshots"],
                                                  Path(folder) / "beaver.db", progress)
            except (TimeoutError, RuntimeError, ValueError, TruthLogError) as error:
                raise ExperimentError(f"gateways={gateways}: {error}") from None
        progress(f"[{index}/{len(points)}] gateways={gateways} seed={seed}: {len(updates)} "
                 f"snapshots, {len(chains)} relayed chains, tau_min {tau_us:.0f} us")
        common = {"gateways": gateways, "seed": seed, "tau_min_us": round(tau_us, 3)}
        for update in updates:
            yield common | update
        for chain in chains:
            if math.isfinite(chain):
                yield common | {"kind": "chain", "chain_us": round(chain * 1e6, 3)}


FIG13_QUANTILES = {"p0": 0.0, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
FIG12_QUANTILES = {"min": 0.0, "p1": 0.01, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def paper_update_cdf(gateways: int) -> tuple[list[float], list[float]] | None:
    """Fig 13's t1 - t0 quantiles at ``gateways`` as CDF points (None if the paper has none)."""
    wide = pd.read_csv(paper.REFERENCE / "paper_fig13_bound.csv")
    row = wide[wide["gateways"] == gateways]
    if row.empty:
        return None
    values = [float(row[f"t1_t0_{label}_us"].iloc[0]) for label in FIG13_QUANTILES]
    return values, list(FIG13_QUANTILES.values())


def paper_tau_cdf() -> tuple[list[float], list[float]]:
    """Fig 12's intra-data-center tau quantiles as CDF points."""
    wide = pd.read_csv(paper.REFERENCE / "paper_fig12_tau.csv").set_index("setting")
    return ([float(wide.loc["intra-dc", f"{label}_us"]) for label in FIG12_QUANTILES],
            list(FIG12_QUANTILES.values()))


def cdf(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of ``values``: sorted values and the share at or below each."""
    ordered = np.sort(values.dropna().to_numpy())
    return ordered, np.arange(1, len(ordered) + 1) / len(ordered)


def share_below_tau(updates: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """Per |G|: snapshots with t1 - t0 < the run's measured tau_min, and all snapshots."""
    return {int(gateways): (int((group["t1_t0_us"] < group["tau_min_us"]).sum()), len(group))
            for gateways, group in updates.groupby("gateways")}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    updates = frame[frame["kind"] == "update"]
    chains = frame[frame["kind"] == "chain"]
    fig, (left, right) = figure(panels=2)
    for i, (gateways, group) in enumerate(updates.groupby("gateways")):
        color = COLORS[i % len(COLORS)]
        left.step(*cdf(group["t1_t0_us"]), where="post", color=color,
                  label=f"ours |G| = {gateways}")
        theirs = paper_update_cdf(int(gateways))
        if theirs is not None:
            left.plot(*theirs, color=color, label=f"paper |G| = {gateways}", **PAPER_STYLE)
        tau = group["tau_min_us"].min()
        left.axvline(tau, color=color, linestyle=":", linewidth=1.2,
                     label=f"our measured tau_min, |G| = {gateways} ({tau / 1e3:.1f} ms)")
    left.set_xscale("log")
    left.set_xlabel("t1 - t0 (us, log)")
    left.set_ylabel("share of snapshots")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    left.set_title("Gateway update time t1 - t0 (cf. paper Fig 13)")

    for i, (gateways, group) in enumerate(chains.groupby("gateways")):
        right.step(*cdf(group["chain_us"]), where="post", color=COLORS[i % len(COLORS)],
                   label=f"ours |G| = {gateways} ({len(group)} chains)")
    right.plot(*paper_tau_cdf(), color="gray", label="paper intra-DC tau", **PAPER_STYLE)
    right.set_xscale("log")
    right.set_xlabel("external chain time tau (us, log)")
    right.set_ylabel("share of relayed chains")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=7)
    right.set_title("Relayed external chain time (cf. paper Fig 12)")

    shares = "; ".join(f"|G| = {g}: {below} of {total}"
                       for g, (below, total) in share_below_tau(updates).items())
    chain_min = f"{chains['chain_us'].min() / 1e3:.2f} ms" if not chains.empty else "none"
    caption = (f"Emulated data center (userspace Open vSwitch, one process): our times are "
               f"milliseconds where the paper's are microseconds (dashed: {paper.SOURCE}). "
               f"Snapshots with t1 - t0 < the run's measured tau_min: {shares}. "
               f"Shortest relayed chain: {chain_min}.")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = emulated_experiment(
    name=NAME,
    question="In the emulated data center (userspace OVS), how long does a gateway update "
             "take (t1 - t0) per |G|, and how long are the relayed external chains (tau)?",
    columns=COLUMNS,
    plan=plan,
    rows=rows,
    draw=draw,
)
