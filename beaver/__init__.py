"""The Beaver protocol core: pure state machines, no I/O, time passed in.

- :mod:`~beaver.ids`: snapshot ids and their wire form (the TOS byte in the emulation)
- :mod:`~beaver.gateway`: gateway stamping and optimistic marking
- :mod:`~beaver.node_group`: the in-group node rule (Beaver, Lai-Yang), for many nodes in arrays
- :mod:`~beaver.node`: one in-group node on its own (a group of one)
- :mod:`~beaver.baselines`: Chandy-Lamport and polling nodes
- :mod:`~beaver.coordinator`: start, gateway phase, validity, completeness, assembly
- :mod:`~beaver.wire_floor`: which ids may still be on the wire, so when a snapshot may start
- :mod:`~beaver.refusals`: what the coordinator refuses, and the checks of node reports
- :mod:`~beaver.snapshot_status`: a snapshot's status, an assembled snapshot
- :mod:`~beaver.records`: what nodes report, what coordinators command
- :mod:`~beaver.protocols`: the protocols by name, behind one interface

This package imports nothing of the testbed outside itself. The simulator
(:mod:`simulator`), the os-ken gateway app (:mod:`controller.gateways`),
the snapshot coordinator (:mod:`controller.coordinator`) and the host
runtime (:mod:`hosts`) only drive it.
"""

__version__ = "0.1.0"
