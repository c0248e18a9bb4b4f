"""``overhead`` (the paper's Fig 14a/14b): what snapshots cost user traffic, beside the noise.

In the emulated data center (|G| = 2, 4 in-group hosts, :data:`UPDATE_WINDOW`
gateway updates in flight), user traffic is measured without snapshots and
with snapshots at several rates up to the highest the run sustains (a burst
first, :mod:`testbed.bursts`; the full run adds that rate). Every ratio
comes with an A/A calibration from the same run: each measurement is
``without``, ``with``, then ``without`` once more, so ``ratio`` is with /
without and ``calibration_ratio`` the second without over the first, the
emulator's noise floor. Measurements (:mod:`testbed.traffic`), one
``metric`` each:

* ``iperf_mbps``: iperf3 TCP throughput from an external host through the
  gateways to the VIP, paced at ``load_percent`` of the path's capacity
  (an unpaced iperf3 run first), as in Fig 14a;
* ``bank_credits_per_s``: the bank's delivered datagrams per second;
* ``kv_replies_per_s``, ``kv_p50_ms``, ``kv_p99_ms``: an external key-value
  client's replies and latency through the VIP (its own run, the key-value
  store on the in-group), as Fig 14b's YCSB throughput and p99;
* ``data_bytes_per_s`` and ``extra_bytes_per_snapshot`` for each protocol
  (switch port counters on every data link): the bank's bytes per second,
  and what the snapshots add beyond the workload's bytes per datagram
  (``with`` holds it; ``without`` is empty).

Needs root and a running Open vSwitch; without them it stops with one line
(exit status 1) before building anything.

Its figure (:func:`draw`, from the CSV alone): throughput ratios by offered
load (beside Fig 14a's normalised iperf), and the ratio of every other
metric by snapshot rate (beside Fig 14b's YCSB throughput and p99 ratios),
each with its A/A calibration.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, save
from beaver.protocols import PROTOCOLS
from controller.coordinator.store import Store
from experiments.base import ExperimentError, Plan, Progress, Row
from experiments.emulated import emulated_experiment
from testbed.bursts import PIPELINED_BURST, burst
from testbed.emulation import MAX_UPDATE_WINDOW, Emulation, EmulationSettings
from testbed.traffic import Iperf, client_phase, data_tx_bytes, delivered, phase

NAME = "overhead"
GATEWAYS = 2
UPDATE_WINDOW = MAX_UPDATE_WINDOW
"""Gateway updates in flight: as many as the emulation allows."""
CLIENT_RATE_HZ = 200.0
COLUMNS = ("protocol", "snapshot_rate_hz", "load_percent", "metric", "without", "with",
           "ratio", "calibration_ratio", "gateways", "seed")
ORDER = ("without", "with", "again")
"""Each measurement's three phases: the second ``without`` is the A/A calibration."""


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"snapshot_rate_hz": [20.0] if quick else [10.0, 40.0],
              "load_percent": [20, 80] if quick else [20, 40, 60, 80],
              "protocol": ["beaver"] if quick else list(PROTOCOLS)},
        fixed={"phase_s": 2.0 if quick else 4.0, "gateways": GATEWAYS,
               "update_window": UPDATE_WINDOW, "add_sustained_rate": not quick,
               "burst_snapshots": PIPELINED_BURST, "client_rate_hz": CLIENT_RATE_HZ},
    )


def compared(metric: str, values: dict[str, float | None], **where: object) -> Row:
    """One row: ``with`` against the first ``without``, and the A/A calibration."""
    without, with_, again = (values[name] for name in ORDER)

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 4) if a is not None and b else None

    return {"metric": metric, "without": without, "with": with_,
            "ratio": ratio(with_, without), "calibration_ratio": ratio(again, without),
            **where}


def three_phases(measure: Callable[[float | None], float | None],
                 rate: float) -> dict[str, float | None]:
    """``measure(snapshot_rate or None)`` without, with, and without again."""
    return {name: measure(rate if name == "with" else None) for name in ORDER}


def with_snapshots(emulation: Emulation, seconds: float, rate: float | None,
                   traffic: Callable[[], float]) -> float:
    """``traffic()`` while snapshots are taken at ``rate`` (None: none) for ``seconds``."""
    if rate is None:
        return traffic()
    result: list[float] = []
    runner = threading.Thread(target=lambda: result.append(traffic()))
    runner.start()
    phase(emulation, seconds, rate)
    runner.join()
    if not result:
        raise RuntimeError("the traffic measurement failed while snapshots were taken")
    return result[0]


def per_second(emulation: Emulation, seconds: float, count: Callable[[Emulation], int],
               rate: float | None) -> float:
    before, began = count(emulation), time.monotonic()
    phase(emulation, seconds, rate)
    return (count(emulation) - before) / (time.monotonic() - began)


def bank_rows(plan: Plan, protocol: str, rates: list[float], progress: Progress,
              database: Path) -> Iterator[Row]:
    """The bank (and iperf3 for Beaver) in one emulation of ``protocol``."""
    seconds = plan.fixed["phase_s"]
    settings = EmulationSettings(protocol=protocol, gateways=GATEWAYS,
                                 update_window=UPDATE_WINDOW)
    with Store(database) as store:
        run = store.new_run(protocol, {"experiment": NAME}, None, "pending")
        with Emulation(settings, store, run) as emulation:
            emulation.tau_min(1.0)  # validity does not matter for the cost of snapshots
            if protocol == "beaver" and plan.fixed["add_sustained_rate"]:
                found = burst(emulation, plan.fixed["burst_snapshots"], UPDATE_WINDOW)
                if found.start_rate_hz:
                    rates = [*rates, round(found.start_rate_hz, 1)]
                    progress(f"highest sustained rate: {rates[-1]} Hz")
            for rate in rates:
                where = {"protocol": protocol, "snapshot_rate_hz": rate}
                yield compared("bank_credits_per_s", three_phases(
                    lambda r: per_second(emulation, seconds, delivered, r), rate), **where)
                yield from bytes_rows(emulation, seconds, rate, where)
            if protocol == "beaver":
                yield from iperf_rows(emulation, plan, rates, progress)


def bytes_rows(emulation: Emulation, seconds: float, rate: float,
               where: dict[str, object]) -> Iterator[Row]:
    """Data-link bytes per second, and the bytes the snapshots add per snapshot."""
    measured: dict[str, tuple[int, int]] = {}
    for name in ORDER:
        sent, moved = data_tx_bytes(emulation), delivered(emulation)
        phase(emulation, seconds, rate if name == "with" else None)
        measured[name] = (data_tx_bytes(emulation) - sent, delivered(emulation) - moved)
    yield compared("data_bytes_per_s", {n: b / seconds for n, (b, _) in measured.items()},
                   **where)
    baseline = sum(b for b, _ in (measured["without"], measured["again"]))
    datagrams = sum(d for _, d in (measured["without"], measured["again"]))
    per_datagram = baseline / max(1, datagrams)
    sent, moved = measured["with"]
    extra = (sent - per_datagram * moved) / max(1, round(rate * seconds))
    yield {"metric": "extra_bytes_per_snapshot", "without": None, "with": round(extra, 1),
           "ratio": None, "calibration_ratio": None, **where}


def iperf_rows(emulation: Emulation, plan: Plan, rates: list[float],
               progress: Progress) -> Iterator[Row]:
    seconds = plan.fixed["phase_s"]
    iperf = Iperf(emulation)
    capacity = iperf.run(seconds)
    progress(f"iperf3 capacity through the gateways: {capacity / 1e6:.0f} Mbit/s")
    for load_percent in plan.grid["load_percent"]:
        offered = capacity * load_percent / 100
        for rate in rates:
            values = three_phases(lambda r, o=offered: with_snapshots(
                emulation, seconds, r, lambda: iperf.run(seconds, o)) / 1e6, rate)
            yield compared("iperf_mbps", values, protocol="beaver", snapshot_rate_hz=rate,
                           load_percent=load_percent)


def kv_rows(plan: Plan, rates: list[float], database: Path) -> Iterator[Row]:
    seconds = plan.fixed["phase_s"]
    settings = EmulationSettings(service="kv", gateways=GATEWAYS, update_window=UPDATE_WINDOW)
    with Store(database) as store:
        run = store.new_run("beaver", {"experiment": NAME}, None, "pending")
        with Emulation(settings, store, run) as emulation:
            emulation.tau_min(1.0)
            client_phase(emulation, CLIENT_RATE_HZ, 1.0, None)  # warm-up: ARP, flow rules
            for rate in rates:
                summaries = {name: client_phase(emulation, CLIENT_RATE_HZ, seconds,
                                                rate if name == "with" else None)
                             for name in ORDER}
                where = {"protocol": "beaver", "snapshot_rate_hz": rate}
                yield compared("kv_replies_per_s", {
                    n: s["replies"] / seconds for n, s in summaries.items()}, **where)
                for quantile in ("p50", "p99"):
                    yield compared(f"kv_{quantile}_ms", {
                        n: s["latency_ms"][quantile] for n, s in summaries.items()}, **where)


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    rates = list(plan.grid["snapshot_rate_hz"])
    for seed in range(1, plan.seeds + 1):
        common = {"gateways": GATEWAYS, "seed": seed}
        with tempfile.TemporaryDirectory(prefix="beaver-overhead-") as folder:
            try:
                sustained: list[float] = []
                for protocol in plan.grid["protocol"]:
                    for row in bank_rows(plan, protocol, rates, progress,
                                         Path(folder) / f"{protocol}.db"):
                        if protocol == "beaver" and row["snapshot_rate_hz"] not in rates:
                            sustained = [row["snapshot_rate_hz"]]
                        yield common | row
                    progress(f"{protocol}: bank, bytes{' and iperf3' * (protocol == 'beaver')}"
                             " measured")
                for row in kv_rows(plan, sorted({*rates, *sustained}),
                                   Path(folder) / "kv.db"):
                    yield common | row
                progress("key-value client measured")
            except (TimeoutError, RuntimeError, ValueError) as error:
                raise ExperimentError(f"overhead: {error}") from None


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    fig, (left, right) = figure(panels=2)
    iperf = frame[frame["metric"] == "iperf_mbps"]
    for rate, group in iperf.groupby("snapshot_rate_hz"):
        left.plot(group["load_percent"], group["ratio"], marker="o",
                  label=f"ours, snapshots at {rate:g}/s")
    if not iperf.empty:
        calibration = iperf.groupby("load_percent")["calibration_ratio"].mean()
        left.plot(calibration.index, calibration.to_numpy(), color="gray", marker="x",
                  label="ours, A/A (no snapshots either time)")
    theirs = pd.read_csv(paper.REFERENCE / "paper_fig14a_iperf.csv")
    left.plot(theirs["load_percent"], theirs["normalized"], color="black", marker="s",
              markerfacecolor="none", label="paper, 60 kHz", **PAPER_STYLE)
    left.axhline(1.0, color="gray", linewidth=0.8)
    left.set_xlabel("offered load (% of the path's capacity)")
    left.set_ylabel("iperf3 throughput, with / without")
    left.set_title("iperf3 through the gateways (cf. paper Fig 14a)")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)

    others = frame[(frame["metric"] != "iperf_mbps") & frame["ratio"].notna()]
    labels = []
    for index, ((metric, protocol), group) in enumerate(others.groupby(["metric",
                                                                        "protocol"])):
        labels.append(f"{metric} ({protocol})")
        right.scatter(group["ratio"], [index] * len(group), marker="o", color="tab:blue",
                      label="with / without" if index == 0 else None)
        right.scatter(group["calibration_ratio"], [index] * len(group), marker="x",
                      color="gray", label="A/A" if index == 0 else None)
    ycsb = pd.read_csv(paper.REFERENCE / "paper_fig14b_ycsb.csv")
    for column, name in (("throughput", "YCSB throughput"), ("p99", "YCSB p99")):
        unit = "ops" if column == "throughput" else "us"
        ratios = ycsb[f"{column}_with_{unit}"] / ycsb[f"{column}_without_{unit}"]
        labels.append(f"paper: {name}")
        right.scatter(ratios, [len(labels) - 1] * len(ratios), marker="s", facecolors="none",
                      edgecolors="black", label="paper, 60 kHz" if column == "p99" else None)
    right.set_yticks(range(len(labels)))
    right.set_yticklabels(labels, fontsize=7)
    right.axvline(1.0, color="gray", linewidth=0.8)
    right.set_xscale("log")
    right.set_xlabel("ratio (with snapshots / without, log)")
    right.set_title("Bank, key-value client, bytes (cf. paper Fig 14b)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    extra = frame[frame["metric"] == "extra_bytes_per_snapshot"]
    per_protocol = extra.groupby("protocol")["with"].mean()
    caption = (f"Emulated data center, |G| = {GATEWAYS}; every ratio beside its A/A "
               f"calibration from the same run; dashed/hollow: {paper.SOURCE}. Extra bytes on "
               "data links per snapshot: " + ", ".join(
                   f"{p} {b:.0f} B" for p, b in per_protocol.items()) + ".")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = emulated_experiment(
    name=NAME,
    question="What do snapshots cost user traffic in the emulated data center (iperf3 "
             "through the gateways, the bank, a key-value client, bytes on the links), "
             "beside the emulator's own noise?",
    columns=COLUMNS,
    plan=plan,
    rows=rows,
    draw=draw,
)
