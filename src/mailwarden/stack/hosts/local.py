"""Host operations on this machine: subprocess with an argv list, files through the OS."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Sequence
from typing import BinaryIO

from .errors import CommandFailed
from .runner import DEFAULT_TIMEOUT_SECONDS, CommandResult, FileInfo, check_argv


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
