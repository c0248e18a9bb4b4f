"""Classroom labs: the lab-2 node exercise judged by the oracle, ``--node-class``, and
lab 3's ``set_id.py`` against a control server with a fake controller behind it.

The solution must behave exactly like the core's node; the starter must run
and fail the check with the failures its README promises; a node whose
snapshots never complete must be reported as stalled, not hang the check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from beaver.protocols import PROTOCOLS
from cli.main import main
from controller.gateways.control import ControlServer

LABS = Path(__file__).resolve().parent.parent / "labs"
LAB = LABS / "02-node-rule"
STARTER = f"{LAB / 'node.py'}:StudentNode"
SOLUTION = f"{LAB / 'solution' / 'node.py'}:StudentNode"
CHECK = LAB / "check.py"


def simulate(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(["simulate", *argv])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def summary(capsys, *argv: str) -> dict[str, object]:
    status, out, err = simulate(capsys, *argv, "--json")
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    del result["wall_s"]
    return result


def check(spec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), spec], capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("protocol", ["beaver", "lai-yang"])
def test_the_solution_runs_exactly_like_the_core_node(capsys, protocol):
    original = PROTOCOLS[protocol]
    solved = summary(capsys, "--protocol", protocol, "--node-class", SOLUTION)
    assert PROTOCOLS[protocol] is original, "the registry must not change"
    assert solved == summary(capsys, "--protocol", protocol)
    assert solved["complete"] == solved["snapshots"] == 200
    assert solved["inconsistent_valid"] == 0 or protocol == "lai-yang"
    assert solved["channel_inexact"] == 0


def test_the_starter_runs_and_fails_the_oracle(capsys):
    status, out, err = simulate(capsys, "--node-class", STARTER, "--json")
    assert status == 0 and err == ""
    assert out.startswith(f"in-group nodes: {STARTER}\n")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["complete"] == result["snapshots"], "notifications alone complete snapshots"
    assert result["inconsistent_valid"] > 0, "ids ignored on receive: effects before causes"
    assert result["channel_inexact"] > 0, "no in-flight messages recorded"


def test_check_passes_the_solution_and_fails_the_starter():
    solved = check(SOLUTION)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert solved.stdout.strip().splitlines()[-1].endswith("PASS (3 of 3 worlds)")
    starter = check(STARTER)
    assert starter.returncode == 1
    assert "inconsistent_valid" in starter.stdout and "channel_inexact" in starter.stdout


def test_check_reports_a_node_that_never_completes_as_stalled(tmp_path):
    uncounted = tmp_path / "uncounted.py"
    uncounted.write_text(
        "from beaver.node import PiggybackNode\n\n\n"
        "class Uncounted(PiggybackNode):\n"
        "    def send(self, peer, now):\n"
        "        return super().send(None, now)\n"
    )
    result = check(f"{uncounted}:Uncounted")
    assert result.returncode == 1
    assert "stalled: snapshot" in result.stdout
    assert "counts expect others" in result.stdout
    stalled = subprocess.run(
        [sys.executable, "-m", "cli", "simulate", "--node-class",
         f"{uncounted}:Uncounted", "--json"], capture_output=True, text=True, timeout=60,
    )
    assert stalled.returncode == 0, stalled.stderr
    result_line = json.loads(stalled.stdout.strip().splitlines()[-1])
    assert result_line["snapshots"] < result_line["requested"] == 200
    assert "stalled: only" in stalled.stdout


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--node-class", "no/such/node.py:StudentNode"], "no Python file"),
        (["--node-class", "README.md:StudentNode"], "no Python file"),
        (["--node-class", f"{LAB / 'node.py'}"], "wants MODULE_PATH:CLASS"),
        (["--node-class", f"{LAB / 'node.py'}:NoSuchNode"], "defines no class 'NoSuchNode'"),
        (["--node-class", f"{LAB / 'node.py'}:REJECTED"], "defines no class 'REJECTED'"),
        (["--node-class", f"{LAB / 'node.py'}:InFlight"], "InFlight has no send, receive"),
        (["--protocol", "polling", "--node-class", STARTER], "piggybacking protocol"),
    ],
)
def test_a_bad_node_class_is_one_line_and_exit_2(capsys, argv, complaint):
    status, out, err = simulate(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and complaint in err


def test_a_node_file_that_does_not_import_is_one_line(capsys, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("class StudentNode(:\n")
    status, out, err = simulate(capsys, "--node-class", f"{broken}:StudentNode")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "SyntaxError" in err


class FakeController:
    """Answers ``set_id`` like the controller: ``dcgw2`` fails when ``failing``."""

    def __init__(self, failing: bool = False):
        self.failing = failing
        self.current = 0

    def status(self) -> dict[str, object]:
        return {}

    def ids(self) -> dict[str, int]:
        return {"dcgw1": self.current, "dcgw2": 0 if self.failing else self.current}

    def begin_set_id(self, snapshot_id: int, timeout: float | None = None):
        self.current = snapshot_id
        return lambda: self.answer(snapshot_id)

    def answer(self, snapshot_id: int) -> dict[str, object]:
        second = ({"sent_at": 10.0, "acked_at": None, "failure": "no barrier reply"}
                  if self.failing else {"sent_at": 10.0005, "acked_at": 10.003, "failure": None})
        return {
            "snapshot_id": snapshot_id, "started_at": 10.0, "complete": not self.failing,
            "failed": ["dcgw2"] if self.failing else [],
            "gateways": {"dcgw1": {"sent_at": 10.0, "acked_at": 10.002, "failure": None},
                         "dcgw2": second},
        }

    def steer(self, gateway: str | None) -> None: ...

    def roundtrip(self, gateway: str) -> dict[str, float]:
        return {}


def set_id(port: int, snapshot_id: int) -> subprocess.CompletedProcess[str]:
    script = LABS / "03-gateway-dscp" / "set_id.py"
    return subprocess.run([sys.executable, str(script), str(port), str(snapshot_id)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("failing", [False, True])
def test_set_id_prints_each_gateway_and_the_update_time(failing):
    target = FakeController(failing)
    server = ControlServer(target, "127.0.0.1", 0)
    server.start()
    try:
        result = set_id(server.address[1], 5)
    finally:
        server.stop()
    assert target.current == 5
    lines = result.stdout.splitlines()
    assert lines[0] == "dcgw1: id 5, flow-mod + barrier 2.000 ms"
    if failing:
        assert result.returncode == 1
        assert lines[1:] == ["dcgw2: failed: no barrier reply", "id 5 incomplete: dcgw2 failed"]
    else:
        assert result.returncode == 0
        assert lines[1:] == ["dcgw2: id 5, flow-mod + barrier 2.500 ms",
                             "id 5 complete: t1 - t0 = 3.000 ms"]


def test_set_id_without_a_controller_is_one_line():
    server = ControlServer(FakeController(), "127.0.0.1", 0)
    port = server.address[1]
    server.stop()
    result = set_id(port, 5)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot reach controller" in result.stderr


def run_check(lab: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LABS / lab / "check.py"), *argv],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("lab, answers", [
    ("01-external-chains", "ANSWERS.md"),
    ("03-gateway-dscp", "ANSWERS.md"),
    ("04-find-the-bot", "detect.py"),
])
def test_every_lab_check_passes_on_its_solution_and_fails_on_its_starter(lab, answers):
    solved = run_check(lab, str(LABS / lab / "solution" / answers))
    assert solved.returncode == 0, solved.stdout + solved.stderr
    starter = run_check(lab)
    assert starter.returncode == 1, starter.stdout + starter.stderr
    first = starter.stdout.splitlines()[0]
    assert "TODO" in first, first


def test_lab_1_check_names_the_figure_an_answer_misses(tmp_path: Path):
    wrong = tmp_path / "ANSWERS.md"
    wrong.write_text("1. TODO\n6. Lai-Yang looked correct: inconsistent none at all.\n")
    done = run_check("01-external-chains", str(wrong))
    assert done.returncode == 1
    assert ("question 6: the answer does not quote inconsistent with --tau-min-us 1000 "
            "(the run gives 0)") in done.stdout.splitlines()


def test_lab_4_check_shows_the_snapshot_a_wrong_detector_misjudges(tmp_path: Path):
    accuse_all = tmp_path / "all.py"
    accuse_all.write_text("def suspects(issued, shown):\n    return {c for c, _ in shown}\n")
    done = run_check("04-find-the-bot", str(accuse_all))
    assert done.returncode == 1
    assert done.stdout.startswith("beaver, snapshot ") and "(consistent)" in done.stdout
