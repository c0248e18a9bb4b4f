"""The run's secret: made per data center, handed out of band, an HMAC on every message.

:class:`testbed.network.DataCenter` makes a fresh secret (32 random bytes)
when it starts and writes it, hex-encoded, to ``secret`` in its private work
directory (the directory is 0700, the file 0600, both root's). Every
component it starts gets the path on its command line (``--secret-file``)
and reads the file; the secret never travels over any network, data or
management. It dies with the run: the work directory is removed on exit.

Messages are authenticated with HMAC-SHA256 under the secret:
:meth:`RunSecret.sign` tags bytes; :meth:`RunSecret.seal` adds a ``mac``
field to a JSON-able message (the tag of its canonical JSON without
``mac``: sorted keys, no spaces) and :meth:`RunSecret.open` checks and
strips it, raising :class:`Unauthenticated` when it is missing or wrong.
:meth:`RunSecret.seal_line` seals a line of JSON instead: a last field ``mac``
holds the tag of the line's own bytes before it (with the object closed), which
:meth:`RunSecret.authentic_line` checks on the bytes as they arrive, before
anything parses them, and neither end serialises the message a second time.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

SECRET_FILE = "secret"
SECRET_BYTES = 32
MAC_FIELD = "mac"
SEALED_MAC = b',"' + MAC_FIELD.encode() + b'":"'
"""How the ``mac`` field of a sealed line starts: it is the line's last field."""


class Unauthenticated(ValueError):
    """A message without a valid HMAC under the run's secret."""


class RunSecret:
    """One run's key, and the HMACs made with it."""

    def __init__(self, key: bytes, path: Path | None = None) -> None:
        if len(key) < 16:
            raise ValueError("a run secret has at least 16 bytes")
        self._key = key
        self.path = path
        """The file it was read from or written to (what ``--secret-file`` is given)."""

    @classmethod
    def create(cls, directory: Path) -> RunSecret:
        """A new random secret, written to ``directory/secret`` readable by its owner only."""
        key = secrets.token_bytes(SECRET_BYTES)
        path = directory / SECRET_FILE
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key.hex())
        return cls(key, path)

    @classmethod
    def load(cls, path: Path) -> RunSecret:
        """The secret in ``path`` (ValueError if the file does not hold one)."""
        try:
            key = bytes.fromhex(Path(path).read_text().strip())
        except ValueError:
            raise ValueError(f"{path} does not hold a run secret") from None
        return cls(key, Path(path))

    def sign(self, payload: bytes) -> str:
        """The HMAC-SHA256 of ``payload``, hex."""
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def verify(self, payload: bytes, tag: object) -> bool:
        return isinstance(tag, str) and hmac.compare_digest(self.sign(payload), tag)

    def seal(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` with its ``mac``."""
        body = {k: v for k, v in message.items() if k != MAC_FIELD}
        return {**body, MAC_FIELD: self.sign(canonical(body))}

    def seal_line(self, line: bytes) -> bytes:
        """``line``, the JSON of an object with at least one field, with a last field
        ``mac``: the HMAC of ``line`` itself."""
        return line[:-1] + SEALED_MAC + self.sign(line).encode() + b'"}'

    def authentic_line(self, line: bytes) -> bool:
        """Whether ``line`` (a trailing newline aside) was sealed by :meth:`seal_line` with
        this secret, checked on its bytes before any parsing."""
        line = line.rstrip(b"\n")
        cut = line.rfind(SEALED_MAC)
        if cut < 0 or not line.endswith(b'"}'):
            return False
        try:
            tag = line[cut + len(SEALED_MAC):-2].decode("ascii")
        except UnicodeDecodeError:
            return False
        return self.verify(line[:cut] + b"}", tag)

    def open(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` without its ``mac``, which must be right; else Unauthenticated."""
        body = {k: v for k, v in message.items() if k != MAC_FIELD}
        if not self.verify(canonical(body), message.get(MAC_FIELD)):
            raise Unauthenticated("wrong HMAC" if MAC_FIELD in message else "no HMAC")
        return body


def canonical(message: dict[str, Any]) -> bytes:
    """The bytes an HMAC covers: JSON with sorted keys and no spaces."""
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
