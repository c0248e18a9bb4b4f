"""The emulated data center: address plan, Mininet topology and its lifecycle."""
