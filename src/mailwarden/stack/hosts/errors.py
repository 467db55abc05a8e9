"""What can go wrong on a mail host, as errors the faces can report without a traceback."""

from __future__ import annotations

from collections.abc import Sequence


class HostError(Exception):
    """A host operation failed; the message names the host and what was attempted."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host
        self.detail = message


class HostUnreachable(HostError):
    """The host could not be reached or refused our credentials."""


class HostKeyMismatch(HostUnreachable):
    """The SSH server presented a key other than the one recorded for the host."""


class CommandFailed(HostError):
    """A command ran and exited non-zero (or timed out)."""

    def __init__(self, host: str, argv: Sequence[str], returncode: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-3:]
        shown = " ".join(argv[:3]) + (" ..." if len(argv) > 3 else "")
        reason = "; ".join(tail) if tail else "no message"
        super().__init__(host, f"`{shown}` exited {returncode}: {reason}")
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
