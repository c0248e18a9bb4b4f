"""An emulated testbed put together: the one place that combines the parts.

- :mod:`~testbed.network`: ``DataCenter``, the Mininet topology with the gateway
  controller process, created and removed by reference
- :mod:`~testbed.emulation`: a whole run (data center, coordinator, agents, relays)
- :mod:`~testbed.truth`: the hosts' ground-truth logs turned into the oracle's verdicts
"""
