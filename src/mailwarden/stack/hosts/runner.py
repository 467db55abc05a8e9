"""The one interface every host operation uses, whatever the transport."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .errors import CommandFailed

# A command that has not finished in this long is stopped: no host operation is that slow.
DEFAULT_TIMEOUT_SECONDS = 60.0
# What a streamed command's error message keeps of its standard error.
STREAM_STDERR_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommandResult:
    host: str
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def error_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def checked(self) -> CommandResult:
        """This result, or CommandFailed when the command did not exit 0."""
        if not self.ok:
            raise CommandFailed(self.host, self.argv, self.returncode, self.error_text())
        return self


@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    mtime: float
    # Identifies the file across renames (log rotation): (device, inode) where known.
    identity: str


class HostRunner(Protocol):
    """Commands and files on one host. Arguments are passed as they are: never through a shell
    on this machine, and quoted one by one for the remote login shell over SSH."""

    name: str

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> CommandResult: ...

    def stream(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Iterator[bytes]:
        """The command's standard output in chunks as it arrives, never whole in memory (a
        queue of a million messages). After the last chunk, a non-zero exit raises
        CommandFailed with what the command wrote to standard error (its first 64 KiB); so does
        running past `timeout` in all. Leaving the loop early stops the command."""
        ...

    def open_read(self, path: str) -> BinaryIO:
        """The file's bytes as a stream (read in chunks, never whole)."""
        ...

    def read_file(self, path: str) -> bytes | None:
        """The whole (small) file, or None when it does not exist."""
        ...

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        """Replace the file atomically (a temporary file beside it, then a rename)."""
        ...

    def stat(self, path: str) -> FileInfo | None: ...

    def list_dir(self, path: str) -> list[str]:
        """The names in a directory (an empty list when it does not exist)."""
        ...

    def close(self) -> None: ...


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Refuse what no command line can carry; values are validated before they get here, this
    only guards the transport."""
    if not argv:
        raise ValueError("an empty command")
    for argument in argv:
        if "\x00" in argument:
            raise ValueError("a command argument holds a NUL byte")
    return tuple(argv)
