"""The control plane, in two parts that know each other only through an interface.

- :mod:`controller.gateways`: the os-ken gateway app (fabric forwarding, VIP -> DIP
  load balancing, snapshot-id stamping into the TOS byte), its control interface and
  the client the coordinator drives it with.
- :mod:`controller.coordinator`: the snapshot coordinator service (agents' reports
  over the management network, gateway updates through a
  :class:`~controller.coordinator.gateway_phase.GatewayUpdater`, validity and completeness
  by the core) and its SQLite store.
"""
