"""The Beaver protocol core: pure state machines, no I/O, time passed in.

- :mod:`~beaver.core.ids`: snapshot ids and their wire form (DSCP bits)
- :mod:`~beaver.core.gateway`: gateway stamping and optimistic marking
- :mod:`~beaver.core.node`: in-group node rules (Beaver, Lai-Yang)
- :mod:`~beaver.core.baselines`: Chandy-Lamport and polling nodes
- :mod:`~beaver.core.coordinator`: start, gateway phase, validity, completeness, assembly
- :mod:`~beaver.core.records`: what nodes report, what coordinators command
- :mod:`~beaver.core.protocols`: the protocols by name, behind one interface

The simulator, the os-ken gateway app and the host runtime only drive these.
"""
