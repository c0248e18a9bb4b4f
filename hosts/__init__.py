"""Processes that run inside the emulated hosts.

In-group hosts run an agent: the snapshot runtime (UDP with snapshot ids in
the TOS byte, driven by the protocol core) and the service it snapshots. Out-group
hosts run external clients and relays that create external causal chains.

- :mod:`~hosts.agent`: ``python -m hosts.agent``, one in-group node
- :mod:`~hosts.runtime`: the event loop between sockets and the protocol core
- :mod:`~hosts.loop`: the event-loop skeleton the runtime, relay and client share
- :mod:`~hosts.services`: the bank and the key-value store, and their interface
- :mod:`~hosts.wire`: data-channel datagrams and their wire codes (TOS) on sockets
- :mod:`~hosts.link`: the agent's end of the management connection (its format is
  the core's :mod:`topologies.management`)
- :mod:`~hosts.relay`: ``python -m hosts.relay``, an external partner with WAN delay
- :mod:`~hosts.client`: ``python -m hosts.client``, external key-value load on a VIP
- :mod:`~hosts.probe`: ``python -m hosts.probe``, a UDP/TCP echo server and client that
  print the wire code (TOS) of what they receive (tests and the gateway lab)
"""
