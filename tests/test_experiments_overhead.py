"""``overhead``: user traffic without and with snapshots in the emulated data center, and the plot.

The Mininet test runs ``beaver experiment overhead --quick`` as a
subprocess and checks its rows; the pure tests check how a measurement
becomes a row (ratio and A/A calibration), draw the figure from a
hand-written CSV (the refusal on a machine that cannot build the data
center is tested for every emulated experiment in test_experiments_emulated).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from emulated_cli import plot, quick_run

from experiments.overhead import COLUMNS, compared, draw

NAME = "overhead"
METRICS = {"bank_credits_per_s", "data_bytes_per_s", "extra_bytes_per_snapshot", "iperf_mbps",
           "kv_replies_per_s", "kv_p50_ms", "kv_p99_ms"}


@pytest.mark.mininet
def test_quick_run_measures_every_metric_beside_its_calibration(mininet_machine: None,
                                                                tmp_path: Path) -> None:
    frame = quick_run(NAME, tmp_path, COLUMNS)
    assert set(frame["metric"]) == METRICS
    assert set(frame[frame["metric"] == "iperf_mbps"]["load_percent"]) == {20, 80}
    compared_rows = frame[frame["metric"] != "extra_bytes_per_snapshot"]
    assert compared_rows["ratio"].notna().all()
    assert compared_rows["calibration_ratio"].notna().all()
    assert (compared_rows["without"] > 0).all() and (compared_rows["with"] > 0).all()
    iperf = frame[frame["metric"] == "iperf_mbps"].set_index("load_percent")["without"]
    assert iperf[80] > iperf[20], "a higher offered load moves more"
    plot(NAME, tmp_path)


def test_a_row_compares_with_against_the_first_without_and_calibrates_on_the_second() -> None:
    row = compared("iperf_mbps", {"without": 100.0, "with": 95.0, "again": 102.0},
                   protocol="beaver", snapshot_rate_hz=20.0, load_percent=40)
    assert row == {"metric": "iperf_mbps", "without": 100.0, "with": 95.0, "ratio": 0.95,
                   "calibration_ratio": 1.02, "protocol": "beaver", "snapshot_rate_hz": 20.0,
                   "load_percent": 40}
    empty = compared("kv_p99_ms", {"without": None, "with": 3.0, "again": 2.0})
    assert empty["ratio"] is None and empty["calibration_ratio"] is None


def test_plot_from_a_hand_written_csv(tmp_path: Path) -> None:
    folder = tmp_path / NAME
    folder.mkdir()
    lines = [",".join(COLUMNS)]
    for load in (20, 40, 60, 80):
        lines.append(f"beaver,20.0,{load},iperf_mbps,{load}.0,{load * 0.99},0.99,1.01,2,1")
    for protocol in ("beaver", "lai-yang"):
        lines.append(f"{protocol},20.0,,bank_credits_per_s,100.0,97.0,0.97,1.02,2,1")
        lines.append(f"{protocol},20.0,,extra_bytes_per_snapshot,,120.0,,,2,1")
    lines.append("beaver,20.0,,kv_p99_ms,3.0,3.3,1.1,0.95,2,1")
    (folder / f"{NAME}.csv").write_text("\n".join(lines) + "\n")
    assert draw(tmp_path) == [folder / f"{NAME}.png"]
    assert (folder / f"{NAME}.png").stat().st_size > 10_000

