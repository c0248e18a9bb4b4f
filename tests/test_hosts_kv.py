"""The key-value service, without sockets."""

from __future__ import annotations

from hosts.services.kv import KeyValueStore

CLIENT = ("10.200.0.1", 40000)
UP = frozenset({"a", "b", "c"})


def store(name: str = "a", rate: float = 10.0) -> KeyValueStore:
    return KeyValueStore(name, peers=["a", "b", "c"], rate=rate, start=0.0)


def test_put_then_get_answers_the_client_address():
    kv = store()
    (put,) = kv.deliver({"kind": "put", "rid": 1, "key": "x", "value": 42}, None, CLIENT, 0.0)
    (get,) = kv.deliver({"kind": "get", "rid": 2, "key": "x"}, None, CLIENT, 0.0)
    assert put.to == CLIENT and put.message == {"kind": "reply", "rid": 1, "ok": True}
    assert get.to == CLIENT and get.message["value"] == 42


def test_writes_replicate_to_every_peer_at_the_flush_rate():
    kv = store()
    kv.deliver({"kind": "put", "rid": 1, "key": "x", "value": 1}, None, CLIENT, 0.0)
    assert kv.work(0.05, UP) == []
    sends = kv.work(0.1, UP)
    assert sorted(send.to for send in sends) == ["b", "c"]
    assert all(send.message == {"kind": "replicate", "writes": {"x": 1}} for send in sends)
    assert kv.work(0.2, UP) == [], "nothing new to replicate"
    kv.deliver({"kind": "put", "rid": 2, "key": "y", "value": 2}, None, CLIENT, 0.2)
    assert [send.to for send in kv.work(0.35, frozenset({"a", "c"}))] == ["c"]

    replica = store("b")
    replica.deliver(sends[0].message, "a", ("10.1.1.1", 9000), 0.1)
    (get,) = replica.deliver({"kind": "get", "rid": 3, "key": "x"}, None, CLIENT, 0.2)
    assert get.message["value"] == 1


def test_many_writes_replicate_in_several_datagrams():
    kv = KeyValueStore("a", peers=["a", "b"], rate=10, start=0.0)
    for n in range(600):
        kv.deliver({"kind": "put", "rid": n, "key": f"k{n}", "value": n}, None, CLIENT, 0.0)
    sends = kv.work(0.1, UP)
    assert [len(send.message["writes"]) for send in sends] == [256, 256, 88]
    assert all(send.to == "b" for send in sends)


def test_replication_from_the_out_group_and_bad_requests_are_ignored():
    kv = store()
    assert kv.deliver({"kind": "replicate", "writes": {"x": 9}}, None, CLIENT, 0.0) == []
    assert kv.deliver({"kind": "get", "key": "x"}, None, CLIENT, 0.0) == []
    assert kv.ignored == 2 and kv.data == {}


def test_capture_includes_unreplicated_writes_and_restore_puts_them_back():
    kv = store()
    kv.deliver({"kind": "put", "rid": 1, "key": "x", "value": 1}, None, CLIENT, 0.0)
    state = kv.capture()
    assert state == {"data": {"x": 1}, "unreplicated": {"x": 1}}
    kv.work(1.0, UP)
    kv.deliver({"kind": "put", "rid": 2, "key": "y", "value": 2}, None, CLIENT, 1.0)
    kv.restore(state)
    assert kv.capture() == state


def test_rate_zero_never_replicates():
    kv = store(rate=0)
    kv.deliver({"kind": "put", "rid": 1, "key": "x", "value": 1}, None, CLIENT, 0.0)
    assert kv.next_work() is None and kv.work(10.0, UP) == []
