"""Host operations over SSH (paramiko): commands on an exec channel, files over SFTP.

The server must present the very key recorded for the host (RejectPolicy, no system or user
known_hosts consulted), and only the configured key file authenticates: no agent, no keys
looked up in ~/.ssh, no passwords. An argv list is sent as one command line whose every
argument is quoted for the remote POSIX shell, so the remote side sees exactly the same list.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import select
import shlex
import socket
import stat as stat_module
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, cast

import paramiko

from .errors import CommandFailed, HostError, HostKeyMismatch, HostUnreachable
from .runner import (
    DEFAULT_TIMEOUT_SECONDS,
    STREAM_STDERR_LIMIT,
    CommandResult,
    FileInfo,
    check_argv,
)
from .spec import SshTransport

CONNECT_TIMEOUT_SECONDS = 10.0
_READ_SIZE = 65536


def fingerprint(key_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line ("ssh-ed25519 AAAA...")."""
    blob = base64.b64decode(key_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def load_private_key(path: Path) -> paramiko.PKey:
    """The key in `path`, refused when others may read it or it needs a passphrase."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if not stat_module.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    if mode & 0o077:
        raise ValueError(
            f"{path} may be read by other users (mode {stat_module.S_IMODE(mode):o}); "
            "chmod 600 it, as ssh itself insists"
        )
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):
        # An encrypted key in OpenSSH's own format reaches cryptography, which raises
        # TypeError ("Key is password-protected") where paramiko's PEM path raises its own.
        raise ValueError(f"{path} is protected by a passphrase; use a key without one") from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not an OpenSSH private key: {exc}") from None


def fetch_host_key(address: str, port: int, *, name: str) -> str:
    """The public key line the SSH server at address:port presents (nothing is authenticated;
    the caller shows its fingerprint and records it)."""
    try:
        sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS)
    except OSError as exc:
        raise HostUnreachable(name, f"cannot connect to {address}:{port}: {exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT_SECONDS)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostUnreachable(name, f"no SSH server at {address}:{port}: {exc}") from None
    finally:
        transport.close()


def public_key(key_line: str) -> paramiko.PKey:
    """The key of an OpenSSH public key line ("ssh-ed25519 AAAA... [comment]")."""
    key_type, key_data = key_line.split()[:2]
    return paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))


class SshRunner:
    def __init__(self, name: str, transport: SshTransport) -> None:
        self.name = name
        self._transport = transport
        self._client = paramiko.SSHClient()
        self._sftp: paramiko.SFTPClient | None = None
        recorded = public_key(transport.host_key)
        self._client.get_host_keys().add(transport.known_hosts_name, recorded.get_name(), recorded)
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            private_key = load_private_key(transport.key_file)
        except ValueError as exc:
            raise HostUnreachable(name, f"key file: {exc}") from None
        try:
            self._client.connect(
                transport.address,
                port=transport.port,
                username=transport.user,
                pkey=private_key,
                allow_agent=False,
                look_for_keys=False,
                timeout=CONNECT_TIMEOUT_SECONDS,
                banner_timeout=CONNECT_TIMEOUT_SECONDS,
                auth_timeout=CONNECT_TIMEOUT_SECONDS,
            )
        except paramiko.BadHostKeyException as exc:
            self._client.close()
            presented = f"{exc.key.get_name()} {exc.key.get_base64()}"
            raise HostKeyMismatch(
                name,
                f"{transport.address}:{transport.port} presented {fingerprint(presented)}, "
                f"not the recorded {fingerprint(transport.host_key)}: refusing to connect "
                "(if the server was reinstalled, remove and add the host again)",
            ) from None
        except paramiko.AuthenticationException:
            self._client.close()
            raise HostUnreachable(
                name, f"{transport.user}@{transport.address}:{transport.port} refused the key"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._client.close()
            raise HostUnreachable(
                name, f"cannot connect to {transport.address}:{transport.port}: {exc}"
            ) from None

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> CommandResult:
        command = check_argv(argv)
        ssh_transport = self._client.get_transport()
        if ssh_transport is None or not ssh_transport.is_active():
            raise HostUnreachable(self.name, "the SSH connection was lost")
        channel = ssh_transport.open_session(timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            channel.exec_command(shlex.join(command))
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            stdout, stderr = self._collect(channel, command, timeout)
            returncode = channel.recv_exit_status()
        finally:
            channel.close()
        # OpenSSH reports a command the remote shell could not find as 127, like a local shell.
        return CommandResult(self.name, command, returncode, stdout, stderr)

    def stream(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Iterator[bytes]:
        command = check_argv(argv)
        ssh_transport = self._client.get_transport()
        if ssh_transport is None or not ssh_transport.is_active():
            raise HostUnreachable(self.name, "the SSH connection was lost")
        channel = ssh_transport.open_session(timeout=CONNECT_TIMEOUT_SECONDS)
        errors = bytearray()
        try:
            channel.exec_command(shlex.join(command))
            channel.shutdown_write()
            for from_stderr, data in self._received(channel, command, timeout):
                if not from_stderr:
                    yield data
                elif len(errors) < STREAM_STDERR_LIMIT:
                    errors += data[: STREAM_STDERR_LIMIT - len(errors)]
            returncode = channel.recv_exit_status()
        finally:
            # Closing the channel (also when the caller stops reading) ends the remote command.
            channel.close()
        if returncode != 0:
            raise CommandFailed(
                self.name, command, returncode, bytes(errors).decode("utf-8", "replace").strip()
            )

    def _collect(
        self, channel: paramiko.Channel, command: tuple[str, ...], timeout: float
    ) -> tuple[bytes, bytes]:
        out: list[bytes] = []
        err: list[bytes] = []
        for from_stderr, data in self._received(channel, command, timeout):
            (err if from_stderr else out).append(data)
        return b"".join(out), b"".join(err)

    def _received(
        self, channel: paramiko.Channel, command: tuple[str, ...], timeout: float
    ) -> Iterator[tuple[bool, bytes]]:
        """(from standard error?, bytes) as they come, both streams read in turn, so neither
        fills the window while we wait on the other; until the command has exited."""
        deadline = time.monotonic() + timeout
        while True:
            progressed = False
            while channel.recv_ready():
                yield False, channel.recv(_READ_SIZE)
                progressed = True
            while channel.recv_stderr_ready():
                yield True, channel.recv_stderr(_READ_SIZE)
                progressed = True
            if (
                channel.exit_status_ready()
                and not channel.recv_ready()
                and not channel.recv_stderr_ready()
            ) and (channel.eof_received or channel.closed):
                return
            if progressed:
                continue
            if time.monotonic() > deadline:
                raise CommandFailed(self.name, command, 124, f"timed out after {timeout:g} s")
            select.select([channel], [], [], 0.2)

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._client.open_sftp()
            except paramiko.SSHException as exc:
                raise HostError(self.name, f"SFTP is not available: {exc}") from None
        return self._sftp

    def open_read(self, path: str) -> BinaryIO:
        try:
            handle = self._sftp_client().open(path, "rb", bufsize=_READ_SIZE)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise HostError(self.name, f"cannot read {path}: {exc}") from None
        handle.prefetch()
        return cast(BinaryIO, handle)

    def read_file(self, path: str) -> bytes | None:
        try:
            with self.open_read(path) as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        sftp = self._sftp_client()
        directory, _, base = path.rpartition("/")
        temporary = f"{directory}/.{base}.{secrets.token_hex(6)}.tmp"
        try:
            with sftp.open(temporary, "wb") as handle:
                handle.chmod(mode)
                handle.write(data)
            sftp.posix_rename(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # it may never have been created
                sftp.remove(temporary)
            raise HostError(self.name, f"cannot write {path}: {exc}") from None

    def stat(self, path: str) -> FileInfo | None:
        # SFTP's stat has no inode: ask the host, so a rotated log is told from the new one.
        result = self.run(["stat", "-L", "-c", "%d:%i %s %Y", "--", path])
        if not result.ok:
            if b"No such file" in result.stderr:
                return None
            result.checked()
        identity, size, mtime = result.text().split()
        return FileInfo(int(size), float(mtime), identity)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(self._sftp_client().listdir(path))
        except FileNotFoundError:
            return []

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self._client.close()
