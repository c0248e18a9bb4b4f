"""The run's secret (topologies.secret): a private file, HMACs that catch any change."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from topologies import management
from topologies.secret import RunSecret, Unauthenticated


def test_the_secret_file_is_readable_by_its_owner_only_and_loads_back(tmp_path: Path) -> None:
    secret = RunSecret.create(tmp_path)
    assert secret.path is not None
    assert stat.S_IMODE(secret.path.stat().st_mode) == 0o600
    message = {"kind": "hello", "node": "r1h1"}
    assert RunSecret.load(secret.path).open(secret.seal(message)) == message
    (tmp_path / "next").mkdir()
    assert RunSecret.create(tmp_path / "next").sign(b"x") != secret.sign(b"x"), "made per run"


def test_a_changed_field_a_missing_or_foreign_mac_is_refused(tmp_path: Path) -> None:
    secret = RunSecret.create(tmp_path)
    sealed = secret.seal({"kind": "report", "node": "r1h2", "state": {"balance": 100}})
    forged = {**sealed, "state": {"balance": 1_000_000}}
    with pytest.raises(Unauthenticated, match="wrong HMAC"):
        secret.open(forged)
    with pytest.raises(Unauthenticated, match="no HMAC"):
        secret.open({k: v for k, v in sealed.items() if k != "mac"})
    other = RunSecret(b"another run's secret")
    with pytest.raises(Unauthenticated):
        other.open(sealed)
    with pytest.raises(Unauthenticated):
        secret.open({**sealed, "mac": 12})


def test_a_file_without_a_secret_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("not hex\n")
    with pytest.raises(ValueError, match="does not hold a run secret"):
        RunSecret.load(tmp_path / "secret")


def test_a_management_line_is_authentic_only_byte_for_byte_under_the_runs_secret() -> None:
    secret = RunSecret(b"this run's secret, 16+ bytes")
    line = management.encode("counters", secret, seq=1, session="s", rejected=0, delivered=5)
    assert secret.authentic_line(line)
    assert management.decode(line, sealed=True)["delivered"] == 5
    changed = line.replace(b'"delivered":5', b'"delivered":6')
    assert not secret.authentic_line(changed)
    assert not RunSecret(b"another run's secret, 16+").authentic_line(line)
    assert not secret.authentic_line(management.encode("counters", seq=1, session="s",
                                                       rejected=0, delivered=5))
    respaced = json.dumps(json.loads(line)).encode() + b"\n"  # same fields, other bytes
    assert json.loads(respaced) == json.loads(line) and not secret.authentic_line(respaced)
