"""Which switch daemon runs which bridge: the gateways on one daemon of their own (the
default) or each on its own, the fabric's bridges always apart from them; and the PMD
threads a daemon runs with AF_XDP ports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.network import DataCenter
from testbed.switchd import GATEWAY_DAEMONS, PMD_MAX_SLEEP_US, PORT_TYPES, SwitchDaemons

GATEWAYS = ["r1gw1", "r1gw2", "r1gw3"]


def test_shared_gateways_run_on_one_daemon_apart_from_the_fabric(tmp_path: Path) -> None:
    daemons = SwitchDaemons(tmp_path, GATEWAYS)
    assert GATEWAY_DAEMONS[0] == "shared"
    assert sorted(daemons.daemons) == [SwitchDaemons.FABRIC, SwitchDaemons.SHARED]
    gateway_daemon = daemons.daemons[SwitchDaemons.SHARED]
    assert {daemons.of_switch(g).name for g in GATEWAYS} == {SwitchDaemons.SHARED}
    assert daemons.of_gateways() == [gateway_daemon]
    assert daemons.of_switch("r1leaf1").name == SwitchDaemons.FABRIC
    assert set(daemons.control_sockets().values()) == {gateway_daemon.control_socket}


def test_own_daemons_give_each_gateway_its_socket(tmp_path: Path) -> None:
    daemons = SwitchDaemons(tmp_path, GATEWAYS, "own")
    assert sorted(daemons.daemons) == sorted([SwitchDaemons.FABRIC, *GATEWAYS])
    assert [d.name for d in daemons.of_gateways()] == GATEWAYS
    assert len(set(daemons.control_sockets().values())) == len(GATEWAYS)


def test_unknown_gateway_daemons_and_watching_a_shared_daemon_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown gateway daemons"):
        DataCenter(gateway_daemons="many")
    with pytest.raises(ValueError, match="daemon per gateway"):
        DataCenter(datapath_sync="watch", gateway_daemons="shared")
    assert DataCenter(datapath_sync="watch").gateway_daemons == "own"
    assert DataCenter().gateway_daemons == "shared"


def test_afxdp_ports_give_each_daemon_one_sleeping_pmd_on_a_core_of_its_own(
        tmp_path: Path) -> None:
    assert PORT_TYPES[0] == "system"
    assert all(d.other_config is None for d in SwitchDaemons(tmp_path, GATEWAYS).daemons.values())
    daemons = SwitchDaemons(tmp_path, GATEWAYS, port_type="afxdp").daemons.values()
    configs = [d.other_config or {} for d in daemons]
    assert [c["pmd-maxsleep"] for c in configs] == [str(PMD_MAX_SLEEP_US)] * 2
    masks = [int(c["pmd-cpu-mask"], 16) for c in configs]
    assert all(bin(mask).count("1") == 1 for mask in masks)  # one core: one PMD thread
    assert len(set(masks)) == min(2, os.cpu_count() or 1)


def test_unknown_port_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown port type"):
        DataCenter(port_type="dpdk")
    assert DataCenter().port_type == "system"
