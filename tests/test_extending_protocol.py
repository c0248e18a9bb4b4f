"""docs/extending.md's worked protocol, registered and run by the simulator and the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from beaver.protocols import PROTOCOLS
from cli.main import main
from simulator import WorldConfig, simulate

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "counted.py"


@pytest.fixture
def counted(monkeypatch):
    """The example protocol registered as docs/extending.md says: one entry in PROTOCOLS."""
    spec = importlib.util.spec_from_file_location("counted_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(PROTOCOLS, module.COUNTED.name, module.COUNTED)
    return module.COUNTED


def test_the_registered_protocol_runs_its_own_nodes_under_the_same_rules(counted) -> None:
    config = WorldConfig(protocol=counted.name, nodes=6, gateways=1, externals=0,
                         snapshots=30, seed=3)
    ours = simulate(config)
    theirs = simulate(dataclasses.replace(config, protocol="lai-yang"))
    assert sum(node.recorded_in_flight for node in ours.world.nodes) > 0
    assert ours.summary.inconsistent == 0 and ours.summary.channel_inexact == 0
    same = ("snapshots", "valid", "complete", "inconsistent", "channel_inexact", "messages")
    assert {k: getattr(ours.summary, k) for k in same} == \
        {k: getattr(theirs.summary, k) for k in same}


def test_the_command_line_offers_the_registered_protocol(counted, capsys) -> None:
    assert main(["simulate", "--protocol", counted.name, "--nodes", "4", "--gateways", "1",
                 "--externals", "0", "--snapshots", "5", "--json"]) == 0
    assert f'"protocol": "{counted.name}"' in capsys.readouterr().out
