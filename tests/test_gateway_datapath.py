"""A gateway's datapath sync: the unixctl commands each mode sends, and failures reported.

A small JSON-RPC server on a unix socket stands in for the switch daemon's
unixctl socket; it records each method and answers it (or refuses one).
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from pathlib import Path

import pytest

from controller.gateways.datapath import SYNC_MODES, DatapathApplier


class FakeUnixctl:
    """Answers every request on ``path``; methods in ``refuse`` get an error reply."""

    def __init__(self, path: Path, refuse: frozenset[str] = frozenset()) -> None:
        self.methods: list[str] = []
        self.refuse = refuse
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        decoder, pending = json.JSONDecoder(), ""
        with connection:
            while chunk := connection.recv(65536):
                pending += chunk.decode()
                try:
                    request, end = decoder.raw_decode(pending)
                except ValueError:
                    continue  # the rest of the request is still on its way
                pending = pending[end:]
                self.methods.append(request["method"])
                refused = request["method"] in self.refuse
                reply = {"id": request["id"], "result": None if refused else "",
                         "error": "refused\n" if refused else None}
                connection.sendall(json.dumps(reply).encode() + b"\n")


def sync_once(tmp_path: Path, mode: str, refuse: frozenset[str] = frozenset()
              ) -> tuple[str | None, list[str]]:
    path = tmp_path / "vswitchd.ctl"
    daemon = FakeUnixctl(path, refuse)
    applier = DatapathApplier("gw1", path, mode)
    results: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    applier.start()
    applier.after_sync(results.put)
    failure = results.get(timeout=10)
    applier.stop()
    return failure, daemon.methods


@pytest.mark.parametrize(("mode", "methods"), [
    ("purge", ["revalidator/purge"]),
    ("revalidate", ["revalidator/wait", "revalidator/wait"]),
])
def test_each_mode_sends_its_commands(tmp_path: Path, mode: str, methods: list[str]) -> None:
    failure, sent = sync_once(tmp_path, mode)
    assert failure is None
    assert sent == methods


def test_a_refused_command_fails_the_update(tmp_path: Path) -> None:
    failure, _ = sync_once(tmp_path, "revalidate", frozenset({"revalidator/wait"}))
    assert failure is not None and "refused" in failure


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync mode"):
        DatapathApplier("gw1", tmp_path / "vswitchd.ctl", "flush")
    assert "purge" in SYNC_MODES
