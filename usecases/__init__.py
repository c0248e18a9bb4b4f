"""What snapshots are for: analyses that read the snapshots a protocol produced.

Each use case is a detector over assembled snapshots (the states the core's
coordinator put together) and a judge of the detector's answers against
ground truth:

- :mod:`~usecases.bots`: bot detection (the paper's Table 3): session tickets
  that travel through clients, forged by bots;
- :mod:`~usecases.deadlock`: deadlock detection from each snapshot's
  wait-for graph, in the lock service of :mod:`simulator.locks`;
- :mod:`~usecases.inflight`: in-flight message detection, the channel state
  a snapshot recorded next to the messages really crossing its cut.

:mod:`~usecases.history` runs a simulated world keeping every snapshot and
reads each node's state as the prefix of its own history.
"""
