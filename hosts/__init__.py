"""Processes that run inside the emulated hosts.

In-group hosts run an agent: the snapshot runtime (UDP with snapshot ids in
DSCP, driven by the protocol core) and the service it snapshots. Out-group
hosts run external clients and relays that create external causal chains.
:mod:`hosts.management` is the protocol agents speak with the coordinator.
"""
