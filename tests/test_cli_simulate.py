"""``beaver simulate``: exit codes, the readable summary and the JSON line."""

from __future__ import annotations

import json

import pytest

from cli.main import main

SMALL = ["--nodes", "5", "--snapshots", "30"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(["simulate", *argv])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_is_the_last_stdout_line(capsys):
    status, out, err = run(capsys, *SMALL, "--json", "--seed", "4")
    assert status == 0 and err == ""
    result = json.loads(out.strip().splitlines()[-1])
    assert result["protocol"] == "beaver" and result["seed"] == 4
    assert result["snapshots"] == result["complete"] == 30
    assert result["inconsistent_valid"] == 0 and result["extra_messages"] == 0
    for key in ("valid", "inconsistent", "channel_inexact", "wall_s", "t1_t0_p50_us",
                "t1_t0_p99_us", "tau_min_us", "controller_tau_min_us"):
        assert key in result


def test_the_readable_summary_names_the_oracle_figures(capsys):
    status, out, _ = run(capsys, *SMALL, "--protocol", "polling", "--no-external-chains")
    assert status == 0
    assert "polling: 5 nodes" in out and "oracle: inconsistent" in out
    assert not out.strip().splitlines()[-1].startswith("{")


def test_options_reach_the_world(capsys):
    status, out, _ = run(capsys, *SMALL, "--json", "--protocol", "chandy-lamport",
                         "--tau-min-us", "50", "--controller-tau-min-us", "80",
                         "--relays", "2", "--externals", "4", "--window", "4",
                         "--rate-hz", "500", "--gateways", "1")
    assert status == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["tau_min_us"], result["controller_tau_min_us"]) == (50, 80)
    assert (result["relays"], result["externals"], result["gateways"]) == (2, 4, 1)
    assert result["extra_messages"] == 5 * 4 * 30
    assert result["t1_t0_p50_us"] is None, "Chandy-Lamport has no gateway phase"


@pytest.mark.parametrize(
    "argv",
    [
        ["--nodes", "-3"],
        ["--gateways", "0"],
        ["--protocol", "paxos"],
        ["--tau-min-us", "0"],
        ["--tau-min-us", "-5"],
        ["--controller-tau-min-us", "0"],
        ["--window", "40"],
        ["--snapshots", "-1"],
        ["--relays", "99"],
        ["--rate-hz", "0"],
        ["--no-external-chains", "--relays", "2"],
        ["--slow-gateway-share", "1.5"],
        ["--nodes", "many"],
    ],
)
def test_nonsense_is_one_line_and_exit_2(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("beaver simulate: ")
    if not last.startswith("beaver simulate: error:"):
        assert len(err.strip().splitlines()) == 1
