"""bench_kv_hops splits a request's round trip by the captures of the client and the backend."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pytest

from benchmarks.bench_kv_hops import datagrams, hops

CLIENT, VIP, BACKEND = "10.200.0.3", "10.100.0.1", "10.0.1.1"


def frame(source: tuple[str, int], destination: tuple[str, int], payload: dict) -> bytes:
    data = json.dumps(payload).encode()
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(source[0]), socket.inet_aton(destination[0]))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    records = b"".join(struct.pack("<IIII", int(t), round(t % 1 * 1e6), len(f), len(f)) + f
                       for t, f in packets)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    return path


def test_a_round_trip_splits_into_its_three_hops(tmp_path: Path) -> None:
    request = {"kind": "get", "rid": 7, "key": "k1"}
    reply = {"kind": "reply", "rid": 7, "ok": True}
    client = pcap(tmp_path / "client.pcap", [
        (100.000, frame((CLIENT, 40000), (VIP, 9000), request)),
        (100.010, frame((VIP, 9000), (CLIENT, 40000), reply)),
        (100.020, frame((CLIENT, 40001), (VIP, 9000), request)),  # another client: no reply
    ])
    backend = pcap(tmp_path / "backend.pcap", [
        (100.002, frame((CLIENT, 40000), (BACKEND, 9000), request)),
        (100.003, frame((BACKEND, 9000), (BACKEND.replace(".1", ".2", 1), 9000),
                        {"kind": "replicate", "writes": {}})),
        (100.006, frame((BACKEND, 9000), (CLIENT, 40000), reply)),
    ])
    assert len(datagrams(client)) == 3
    split = hops(client, [backend], CLIENT, (99.0, 101.0))
    assert split == {name: [pytest.approx(seconds, abs=1e-6)] for name, seconds in (
        ("to_backend", 0.002), ("in_backend", 0.004), ("back", 0.004), ("round_trip", 0.010))}
    assert hops(client, [backend], CLIENT, (100.5, 101.0))["round_trip"] == [], \
        "requests sent outside the window are left out"
