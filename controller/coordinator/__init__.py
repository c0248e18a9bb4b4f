"""The snapshot coordinator service and the SQLite store of every snapshot it assembles."""
