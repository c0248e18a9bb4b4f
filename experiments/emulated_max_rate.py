"""``emulated-max-rate`` (the paper's Fig 10, in the emulated data center): snapshots per second.

For each |G|, one :class:`~testbed.emulation.Emulation` (the bank on 4
in-group hosts, tau_min measured from relayed chains, ``beaver run``'s
defaults otherwise) takes three bursts of S snapshots asked for far faster
than it can start them (:mod:`testbed.bursts`):

1. ``serial``: one gateway update at a time (``beaver run --window 1``);
2. ``parallel``: up to :data:`PARALLEL_WINDOW` updates in flight, pipelined;
3. ``serial-again``: the first burst once more, an A/A calibration: the
   ratio of the two serial rates is the noise floor of this machine beside
   the parallel / serial ratio.

``rate_hz`` is the start rate of the burst once its windows are full. The core
also bounds it: a wire code is reused only a packet lifetime
(:data:`controller.coordinator.service.PACKET_LIFETIME`) after its id
stopped being stamped, so at most ``window`` ids start per lifetime. Each
row says how many of the burst's snapshots were accepted, how many of
those the ground-truth oracle judged causally inconsistent and how many
break the bank invariant. Needs root and a running Open vSwitch; without
them it stops with one line (exit status 1) before building anything.

Its figure (:func:`draw`, from the CSV alone): rate vs |G|, ours serial
(both bursts) and parallel beside the paper's with and without parallelism.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, save
from controller.coordinator.service import PACKET_LIFETIME
from controller.coordinator.store import Store
from experiments.base import ExperimentError, Plan, Progress, Row
from experiments.emulated import emulated_experiment
from testbed.bursts import PIPELINED_BURST, burst, judge_bursts
from testbed.emulation import MAX_UPDATE_WINDOW, Emulation, EmulationSettings
from testbed.truth import TruthLogError

NAME = "emulated-max-rate"

PARALLEL_WINDOW = MAX_UPDATE_WINDOW
"""Gateway updates in flight in the parallel burst: as many as the emulation allows."""
PHASES = (("serial", 1), ("parallel", PARALLEL_WINDOW), ("serial-again", 1))
PARALLEL_SNAPSHOTS = PIPELINED_BURST
"""Snapshots of the parallel burst (:data:`testbed.bursts.PIPELINED_BURST`)."""
COLUMNS = ("gateways", "parallel", "rate_hz", "phase", "window", "seed", "snapshots",
           "stored", "accepted", "inconsistent_accepted", "invariant_violations",
           "packet_lifetime_ms")


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"gateways": [2] if quick else [1, 2, 4, 8]},
        fixed={"snapshots_per_burst": 600, "parallel_snapshots": PARALLEL_SNAPSHOTS,
               "ingroup": 4,
               "service": "bank", "protocol": "beaver", "phases": [p for p, _ in PHASES],
               "parallel_window": PARALLEL_WINDOW,
               "packet_lifetime_ms": PACKET_LIFETIME * 1e3},
    )


def emulate(gateways: int, snapshots: int, parallel_snapshots: int,
            database: Path) -> Iterator[Row]:
    settings = EmulationSettings(gateways=gateways)
    with Store(database) as store:
        run = store.new_run(settings.protocol, {"gateways": gateways}, None, "pending")
        with Emulation(settings, store, run) as emulation:
            emulation.tau_min(None)
            bursts = [burst(emulation, parallel_snapshots if window > 1 else snapshots, window)
                      for _, window in PHASES]
            emulation.stop_hosts()
            judged = judge_bursts(emulation, store, run, bursts)
    for (phase, window), one, worth in zip(PHASES, bursts, judged, strict=True):
        yield {
            "gateways": gateways, "parallel": window > 1, "phase": phase, "window": window,
            "rate_hz": None if one.start_rate_hz is None else round(one.start_rate_hz, 1),
            "snapshots": one.started, "stored": one.stored, "accepted": worth.accepted,
            "inconsistent_accepted": worth.inconsistent_accepted,
            "invariant_violations": worth.invariant_violations,
            "packet_lifetime_ms": PACKET_LIFETIME * 1e3,
        }


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = [(gateways, seed) for gateways in plan.grid["gateways"]
              for seed in range(1, plan.seeds + 1)]
    for index, (gateways, seed) in enumerate(points, start=1):
        with tempfile.TemporaryDirectory(prefix="beaver-max-rate-") as folder:
            try:
                found = list(emulate(gateways, plan.fixed["snapshots_per_burst"],
                                     plan.fixed["parallel_snapshots"],
                                     Path(folder) / "beaver.db"))
            except (TimeoutError, RuntimeError, ValueError, TruthLogError) as error:
                raise ExperimentError(f"gateways={gateways}: {error}") from None
        progress(f"[{index}/{len(points)}] gateways={gateways} seed={seed}: " + ", ".join(
            f"{row['phase']} {row['rate_hz']} Hz" for row in found))
        for row in found:
            yield row | {"seed": seed}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    theirs = paper.max_rate()
    fig, (axis,) = figure()
    styles = {"serial": ("tab:red", "o"), "serial-again": ("tab:red", "x"),
              "parallel": ("tab:blue", "o")}
    for phase, group in frame.groupby("phase"):
        color, marker = styles.get(str(phase), ("tab:gray", "o"))
        mean = group.groupby("gateways")["rate_hz"].mean()
        axis.plot(mean.index, mean.to_numpy(), color=color, marker=marker,
                  label=f"ours, {phase} (window {int(group['window'].iloc[0])})")
    for parallel, label in ((True, "with parallelism"), (False, "without parallelism")):
        same = theirs[theirs["parallel"] == parallel]
        axis.plot(same["gateways"], same["sustained_rate_hz"],
                  color="tab:blue" if parallel else "tab:red", marker="s",
                  markerfacecolor="none", label=f"paper, {label}", **PAPER_STYLE)
    axis.set_yscale("log")
    axis.set_xlabel("gateways |G|")
    axis.set_ylabel("snapshot start rate (Hz, log)")
    axis.set_xticks(sorted(set(frame["gateways"]) | set(theirs["gateways"])))
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    axis.set_title("Maximum snapshot rate in the emulated data center (cf. paper Fig 10)")
    by = frame.pivot_table(index="gateways", columns="phase", values="rate_hz")
    ratios = "; ".join(
        f"|G| = {g}: parallel/serial {row['parallel'] / row['serial']:.2f}, "
        f"A/A {row['serial-again'] / row['serial']:.2f}" for g, row in by.iterrows())
    bad = int(frame["inconsistent_accepted"].fillna(0).sum())
    broken = int(frame["invariant_violations"].sum())
    caption = (f"Bursts asked for at 1 MHz; dashed: {paper.SOURCE}. {ratios}. Accepted and "
               f"judged inconsistent: {bad}; breaking the invariant: {broken}. A wire code is "
               f"reused {frame['packet_lifetime_ms'].iloc[0]:g} ms after its id was last "
               "stamped: at most the id window starts per packet lifetime.")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = emulated_experiment(
    name=NAME,
    question="In the emulated data center, how many snapshots per second does the "
             "coordinator start, by |G|, with one gateway update at a time and pipelined?",
    columns=COLUMNS,
    plan=plan,
    rows=rows,
    draw=draw,
)
