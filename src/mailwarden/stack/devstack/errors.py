"""The one error the devstack raises: what went wrong on the host, and the log lines to show."""

from __future__ import annotations


class DevstackError(Exception):
    """The devstack could not be started or stopped; nothing it started is left running."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        # The last lines of the log that explain the failure, when a daemon failed.
        self.log_tail = log_tail

    def __str__(self) -> str:
        return self.message
