"""Which switch daemon runs which bridge: the gateways on one daemon of their own (the
default) or each on its own, the fabric's bridges always apart from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.network import DataCenter
from testbed.switchd import GATEWAY_DAEMONS, SwitchDaemons

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
