"""Claiming names and management networks (topologies.claims), without root.

The machine (bridges, interfaces, addresses) is a :class:`FakeMachine`;
owners are real processes, this test's own or its sleeping children, so the
liveness checks read ``/proc`` for real. Claims go to a temporary state
directory.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from topologies.addressing import DataCenterParams
from topologies.claims import (
    Machine,
    NameInUse,
    NamePool,
    claim,
    claim_free,
    remove_dead_claims,
)
from topologies.record import process_start

REPO = Path(__file__).resolve().parents[1]
PARAMS = DataCenterParams(prefix="dc", mgmt_net="172.30.0.0/24")


class FakeMachine(Machine):
    """Real processes; bridges, interfaces and root-namespace networks in sets."""

    def __init__(self, bridges: set[str] = frozenset(), interfaces: set[str] = frozenset(),
                 networks: dict[str, str] | None = None) -> None:
        self._bridges, self._interfaces = set(bridges), set(interfaces)
        self._networks = networks or {}

    def bridges(self) -> set[str]:
        return set(self._bridges)

    def interfaces(self) -> set[str]:
        return set(self._interfaces)

    def networks(self) -> list[tuple[str, ipaddress.IPv4Network]]:
        return [(name, ipaddress.IPv4Interface(address).network)
                for name, address in self._networks.items()]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def test_a_prefix_claimed_by_a_live_owner_is_refused_with_one_line(tmp_path: Path) -> None:
    first = claim(PARAMS, tmp_path, FakeMachine())
    with pytest.raises(NameInUse) as refused:
        claim(DataCenterParams(prefix="dc", mgmt_net="172.31.0.0/24"), tmp_path, FakeMachine())
    message = str(refused.value)
    assert "'dc' is in use by a running data center" in message and "\n" not in message
    first.release()
    assert claim(PARAMS, tmp_path, FakeMachine()).params == PARAMS, "released names are free"


def test_an_overlapping_management_network_is_refused(tmp_path: Path) -> None:
    claim(PARAMS, tmp_path, FakeMachine())
    with pytest.raises(NameInUse, match="overlaps 172.30.0.0/24 of the running data center dc"):
        claim(DataCenterParams(prefix="oth", mgmt_net="172.30.0.0/16"), tmp_path,
              FakeMachine())


@pytest.mark.parametrize("machine, what", [
    (FakeMachine(bridges={"dcgw2"}), "bridge dcgw2 exists"),
    (FakeMachine(interfaces={"dclf1-eth3"}), "interface dclf1-eth3 exists"),
    (FakeMachine(interfaces={"dcroot-eth0"}), "interface dcroot-eth0 exists"),
    (FakeMachine(networks={"eth9": "172.30.0.7/16"}),
     "overlaps 172.30.0.0/16 on interface eth9"),
])
def test_names_on_the_machine_without_a_claim_are_in_use(tmp_path: Path, machine: FakeMachine,
                                                         what: str) -> None:
    """Leftovers of a killed run, or a network of older code, block a claim too."""
    with pytest.raises(NameInUse, match=what):
        claim(PARAMS, tmp_path, machine)
    assert list(tmp_path.glob("*.claim")) == []


def test_other_names_on_the_machine_do_not_block(tmp_path: Path) -> None:
    """``dc1gw1`` or ``dcx-eth0`` belong to other prefixes' nodes, not to ``dc``'s."""
    machine = FakeMachine(bridges={"dc1gw1", "dcgw"}, interfaces={"dcx-eth0", "dch10-eth0"},
                          networks={"eth0": "172.31.4.2/24"})
    assert claim(PARAMS, tmp_path, machine).params.prefix == "dc"


def test_a_dead_owners_claim_is_replaced_and_given_back_by_clean(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    dead = {"prefix": "dc", "mgmt_net": "172.30.0.0/24",
            "owner": {"pid": sleeper.pid, "start": process_start(sleeper.pid), "role": "owner"}}
    (tmp_path / "dc.claim").write_text(json.dumps(dead))
    (tmp_path / "dd.claim").write_text(json.dumps(dead | {"prefix": "dd"}))
    with pytest.raises(NameInUse, match="PID"):
        claim(PARAMS, tmp_path, FakeMachine())
    sleeper.kill()
    sleeper.wait()
    mine = claim(PARAMS, tmp_path, FakeMachine())
    assert json.loads(mine.path.read_text())["owner"]["pid"] != sleeper.pid
    assert remove_dead_claims(tmp_path, FakeMachine()) == ["dd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dc.claim"]


def test_runs_whose_numbers_agree_get_different_names(tmp_path: Path) -> None:
    """Two pools starting at the same number (PIDs equal mod 1000): the second moves on."""
    machine = FakeMachine(bridges={"r42sp1"}, networks={"eth1": "172.29.42.1/24"})
    first = claim_free(PARAMS, NamePool("r", "172.29.0.0/16", start=1042), tmp_path, machine)
    second = claim_free(PARAMS, NamePool("r", "172.29.0.0/16", start=42), tmp_path, machine)
    assert (first.params.prefix, first.params.mgmt_net) == ("r43", "172.29.43.0/24")
    assert (second.params.prefix, second.params.mgmt_net) == ("r44", "172.29.44.0/24")
    assert first.params.gateways == PARAMS.gateways


CLAIMER = """
import sys
from pathlib import Path
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool, claim_free
from tests.test_claims import FakeMachine
got = claim_free(DataCenterParams(), NamePool("r", "172.29.0.0/16", start=7), Path(sys.argv[1]),
                 FakeMachine())
print(got.params.prefix, got.params.mgmt_net, flush=True)
sys.stdin.read()
"""


def test_concurrent_claims_never_share_a_name(tmp_path: Path) -> None:
    """Six processes claim from the same pool at once: the lock gives each its own names."""
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path)], cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(6)]
    try:
        got = [c.stdout.readline().split() for c in claimers]  # type: ignore[union-attr]
    finally:
        for child in claimers:
            child.communicate("", timeout=30)
    assert all(len(names) == 2 for names in got), got
    assert len({prefix for prefix, _ in got}) == 6 and len({net for _, net in got}) == 6
