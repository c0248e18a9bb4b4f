"""The emulated data center as every component shares it.

- :mod:`~topologies.addressing`: the address plan (in-group, gateways, out-group,
  management network);
- :mod:`~topologies.datacenter`: its Mininet topology (:mod:`~topologies.mgmt_rules`:
  what the management bridge forwards);
- :mod:`~topologies.management`: the management network's messages between
  agents and the coordinator;
- :mod:`~topologies.secret`: the run's secret and the HMACs made with it;
- :mod:`~topologies.record`, :mod:`~topologies.claims`,
  :mod:`~topologies.leftovers`: what a run created and claimed, and what
  ``beaver clean`` removes after a kill.
"""
