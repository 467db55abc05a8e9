"""Host operations on this machine: subprocess with an argv list, files through the OS."""

from __future__ import annotations

import os
import secrets
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from .errors import CommandFailed
from .runner import (
    DEFAULT_TIMEOUT_SECONDS,
    STREAM_STDERR_LIMIT,
    CommandResult,
    FileInfo,
    check_argv,
)

_READ_SIZE = 65536


class LocalRunner:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> CommandResult:
        command = check_argv(argv)
        try:
            done = subprocess.run(  # noqa: S603 - an argv list of validated values, no shell
                command,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CommandFailed(self.name, command, 124, f"timed out after {timeout:g} s") from None
        except OSError as exc:
            raise CommandFailed(self.name, command, 127, exc.strerror or str(exc)) from None
        return CommandResult(self.name, command, done.returncode, done.stdout, done.stderr)

    def stream(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Iterator[bytes]:
        command = check_argv(argv)
        try:
            process = subprocess.Popen(  # noqa: S603 - an argv list of validated values
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise CommandFailed(self.name, command, 127, exc.strerror or str(exc)) from None
        assert process.stdout is not None and process.stderr is not None
        errors = bytearray()
        deadline = time.monotonic() + timeout
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                selector.register(process.stderr, selectors.EVENT_READ)
                # Both pipes are drained as they fill: a command that writes much to standard
                # error while we wait on its output would otherwise block for ever.
                while selector.get_map():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise CommandFailed(
                            self.name, command, 124, f"timed out after {timeout:g} s"
                        )
                    for key, _events in selector.select(min(left, 1.0)):
                        data = os.read(key.fd, _READ_SIZE)
                        if not data:
                            selector.unregister(key.fileobj)
                        elif key.fileobj is process.stdout:
                            yield data
                        elif len(errors) < STREAM_STDERR_LIMIT:
                            errors += data[: STREAM_STDERR_LIMIT - len(errors)]
            returncode = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise CommandFailed(self.name, command, 124, f"timed out after {timeout:g} s") from None
        finally:
            # Also when the caller stops reading early: the command must not outlive it.
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            process.stderr.close()
        if returncode != 0:
            raise CommandFailed(
                self.name, command, returncode, bytes(errors).decode("utf-8", "replace").strip()
            )

    def open_read(self, path: str) -> BinaryIO:
        return open(path, "rb")

    def read_file(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        directory, base = os.path.split(path)
        temporary = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, mode)  # the umask may have narrowed it
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def stat(self, path: str) -> FileInfo | None:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        return FileInfo(info.st_size, info.st_mtime, f"{info.st_dev}:{info.st_ino}")

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def close(self) -> None:
        """Nothing to release."""
