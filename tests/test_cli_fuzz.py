"""Fuzzing the command line: nonsense of every kind ends in one line and exit 2 (or a run),
never a traceback or a hang, and leaves stored files as they were.

Runs stay small: the simulator's work budget is lowered for the test, so any world
larger than a few tens of thousands of events is refused, as a huge one is normally;
experiments that would really run are recorded, not run (their own tests run them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import experiments
from cli.commands import simulate
from cli.main import main

NUMBERS = ["0", "1", "2", "-1", "1.5", "1e9", "5e-324", "inf", "-inf", "nan", "1e400",
           "999999999999999999999", "x", "", "--", "=", "0x10", " 3"]
SIMULATE = ["--protocol", "--nodes", "--gateways", "--externals", "--relays", "--snapshots",
            "--tau-min-us", "--controller-tau-min-us", "--rate-hz", "--window",
            "--message-rate-hz", "--request-rate-hz", "--relay-share", "--slow-gateway-share",
            "--packet-lifetime-us", "--seed", "--node-class"]
SMALL_WORLD = ["--nodes", "2", "--gateways", "1", "--externals", "2", "--snapshots", "2",
               "--message-rate-hz", "200", "--request-rate-hz", "200"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    corrupt = root / "corrupt.db"
    corrupt.write_bytes(b"\x00garbage\xff" * 64)
    foreign = root / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as connection:
        connection.execute("create table t (x)")
        connection.commit()
    good = root / "good.db"
    assert run(["simulate", *SMALL_WORLD, "--db", str(good)])[0] == 0
    results = root / "results"
    for name, text in (("max-rate", "gateways,window\n2,1\n"), ("update-bound", "\x00\xff\xfe"),
                       ("baselines", ""), ("tau-sensitivity", "a,b\nnan,nan\n")):
        (results / name).mkdir(parents=True)
        (results / name / f"{name}.csv").write_text(text, encoding="latin-1")
    exits = root / "exits.py"
    exits.write_text("import sys\nsys.exit(7)\n")
    raises = root / "raises.py"
    raises.write_text("class Node:\n    def __init__(self, *a):\n        raise OSError('no')\n"
                      "    send = receive = notify = None\n")
    return {"corrupt": corrupt, "foreign": foreign, "good": good, "results": results,
            "exits": exits, "raises": raises, "root": root}


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def values(files: dict[str, Path]) -> st.SearchStrategy[str]:
    paths = [str(files[k]) for k in ("corrupt", "foreign", "good", "results", "root")]
    paths += ["/proc/x", "/nonexistent/db", f"{files['exits']}:Node", f"{files['raises']}:Node",
              f"{files['raises']}:Missing", "nofile.py:X", "beaver", "polling", "kv"]
    return st.sampled_from(NUMBERS + paths)


@st.composite
def command_lines(draw: st.DrawFn, files: dict[str, Path]) -> list[str]:
    command = draw(st.sampled_from(["simulate", "show", "experiment", "plot", "restore"]))
    options = {
        "simulate": SIMULATE,
        "show": ["--db", "--run", "--json", "--diagram"],
        "experiment": ["--list", "--quick", "--seeds", "--out"],
        "plot": ["--results", "--snapshot", "--db", "--run"],
        "restore": ["--db", "--run", "--offline", "--json"],
    }[command]
    argv = [command]
    if command == "simulate":
        argv += SMALL_WORLD
    if command == "restore":
        argv.append("--offline")  # a restore into a fresh network is the emulation's test
    if command in ("experiment", "plot", "show", "restore") and draw(st.booleans()):
        argv.append(draw(st.sampled_from(["max-rate", "update-bound", "baselines", "nope",
                                          "tau-sensitivity", "diagram", "1", "0", "-3"])))
    for _ in range(draw(st.integers(0, 4))):
        option = draw(st.sampled_from([*options, "--bogus", "--json"]))
        if option in ("--json", "--list", "--quick", "--offline"):
            argv.append(option)
        elif draw(st.booleans()):
            argv.append(f"{option}={draw(values(files))}")
        else:
            argv += [option, draw(values(files))]
    return argv


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_command_line_ends_in_one_line_or_a_result(files, monkeypatch, data):
    monkeypatch.setattr(simulate, "MAX_WORK", 30_000)
    started: list[str] = []
    monkeypatch.setattr(experiments, "run_experiment",
                        lambda experiment, *args: started.append(experiment.name) or "ran")
    argv = data.draw(command_lines(files))
    stored = {name: digest(files[name]) for name in ("corrupt", "foreign", "good")}
    csvs = {p: digest(p) for p in files["results"].rglob("*.csv")}
    code, out, err = run(argv)
    assert "Traceback" not in err, argv
    assert code in (0, 1, 2), (argv, code, err)
    if code:
        assert err.count("\n") == 1 and err.startswith("beaver"), (argv, err)
    elif "--json" in argv and argv[0] in ("simulate", "show", "restore") and out.strip():
        json.loads(out.splitlines()[-1])
    assert {name: digest(files[name]) for name in stored} == stored, argv
    assert {p: digest(p) for p in csvs} == csvs, argv


def test_node_class_files_that_exit_or_raise_are_one_line(files):
    for spec in (f"{files['exits']}:Node", f"{files['raises']}:Node"):
        code, _, err = run(["simulate", *SMALL_WORLD, "--node-class", spec])
        assert code == 2 and err.count("\n") == 1 and "--node-class" in err, err


def test_a_node_class_is_imported_only_after_every_other_option_is_checked(files):
    code, _, err = run(["simulate", "--nodes", "0", "--node-class", f"{files['exits']}:Node"])
    assert code == 2 and "--nodes" in err and "exit" not in err


def test_every_refused_number_says_its_range_and_why():
    for option, value in (("--rate-hz", "5e-324"), ("--externals", "100000000"),
                          ("--controller-tau-min-us", "inf"), ("--nodes", "1000000")):
        code, _, err = run(["simulate", option, value])
        assert code == 2 and err.count("\n") == 1 and option in err, err
        assert "(" in err, f"{option}: the line says why: {err}"
