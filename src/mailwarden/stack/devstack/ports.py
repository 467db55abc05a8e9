"""The devstack's listeners: which ports, whether they are free, and waiting for them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

HOST = "127.0.0.1"
# Polling interval while waiting for daemons: short, since startup takes well under a second.
_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class StackPorts:
    """One TCP port per listener, all on 127.0.0.1."""

    smtp: int = 2525
    submission: int = 2587
    imap: int = 10143
    pop3: int = 10110
    lmtp: int = 10024
    sieve: int = 14190

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def duplicates(self) -> list[int]:
        values = list(self.as_dict().values())
        return sorted({port for port in values if values.count(port) > 1})


def accepts_connections(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ports_in_use(ports: Iterable[int], host: str = HOST) -> list[int]:
    """The ports among `ports` that something listens on, or that cannot be bound."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Without SO_REUSEADDR a port in TIME_WAIT would count as busy although a daemon
            # (which sets SO_REUSEADDR itself) can bind it.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


def wait_until_open(ports: Iterable[int], timeout: float, host: str = HOST) -> list[int]:
    """Poll until every port accepts connections; the ports still closed at the deadline."""
    pending = list(ports)
    deadline = time.monotonic() + timeout
    while True:
        pending = [port for port in pending if not accepts_connections(port, host)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(_POLL_SECONDS)


def wait_until_closed(ports: Iterable[int], timeout: float, host: str = HOST) -> list[int]:
    """Poll until no port accepts connections; the ports still open at the deadline."""
    pending = list(ports)
    deadline = time.monotonic() + timeout
    while True:
        pending = [port for port in pending if accepts_connections(port, host)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(_POLL_SECONDS)
