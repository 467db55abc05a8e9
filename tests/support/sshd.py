"""A private OpenSSH server on loopback, for the operations that reach mail hosts over SSH.

`running_sshd(directory)` starts Debian's /usr/sbin/sshd as a real process on 127.0.0.1 and a
port the kernel chose, with everything it reads inside `directory`: its configuration, its own
ed25519 host key, the authorized keys and the log. Nothing of /etc/ssh or ~/.ssh is used. Only
public key authentication is allowed, with the client key generated next to it; root may log in
with it (the tests run as root, and the operations need root to run postqueue and postsuper).

A client must verify the host key: `SshServer.host_public_key` is the line to expect, under the
name `SshServer.host_key_name` ("[127.0.0.1]:PORT", the form known_hosts uses for a port other
than 22).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
HOST = "127.0.0.1"
USER = "root"
# sshd refuses to start without its privilege separation directory (Debian creates it only in
# the service's start script, which we do not run).
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")

STARTUP_SECONDS = 10
STOP_SECONDS = 5
PORT_ATTEMPTS = 5
BANNER_PREFIX = b"SSH-2.0-"


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    client_key: Path
    """The private key (OpenSSH format, no passphrase) the server accepts for `user`."""
    host_public_key: str
    """The server's host key as in known_hosts: "ssh-ed25519 AAAA..."."""
    host_key_fingerprint: str
    """OpenSSH's form of the host key's fingerprint: "SHA256:..."."""
    log_file: Path
    pid: int
    """The listening sshd process (each connection is served by a child of it)."""

    @property
    def host_key_name(self) -> str:
        """The name the host key is known under (known_hosts form for a port other than 22)."""
        return f"[{self.host}]:{self.port}"

    def log(self) -> str:
        """Everything sshd logged so far (LogLevel VERBOSE: connections, keys accepted, errors)."""
        return _read(self.log_file)


def generate_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair without passphrase at `path` (+ .pub); the public key line."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    key_type, key_base64, *_comment = public_key_file(path).read_text().split()
    return f"{key_type} {key_base64}"


def public_key_file(private_key: Path) -> Path:
    return private_key.with_name(private_key.name + ".pub")


def fingerprint(public_key: Path) -> str:
    """The SHA256 fingerprint ssh-keygen prints ("256 SHA256:... comment (ED25519)")."""
    result = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    found = re.search(r"\bSHA256:[A-Za-z0-9+/]+", result.stdout)
    if found is None:
        raise RuntimeError(f"ssh-keygen printed no SHA256 fingerprint: {result.stdout!r}")
    return found.group(0)


def _config(directory: Path, port: int, host_key: Path, authorized_keys: Path) -> str:
    return "\n".join(
        [
            f"ListenAddress {HOST}",
            f"Port {port}",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            # Without PAM sshd does the account checks itself; PAM would read /etc/pam.d.
            "UsePAM no",
            # The key files live in a temporary directory, not in a home directory sshd checks.
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "PrintMotd no",
            # Tests on several threads may open many connections at once; the default (10)
            # drops unauthenticated connections beyond the tenth at random.
            "MaxStartups 100",
            "",
        ]
    )


def _free_port() -> int:
    """A port nothing listens on, chosen by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _banner(port: int) -> bytes | None:
    """The first line the server at `port` sends, or None while nothing answers."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            received = b""
            while b"\n" not in received and len(received) < 256:
                chunk = connection.recv(256)
                if not chunk:
                    break
                received += chunk
            return received.split(b"\n", 1)[0]
    except OSError:
        return None


def _wait_for_banner(process: subprocess.Popen[bytes], port: int, log_file: Path) -> None:
    """Return once our sshd listens on `port` and answers there with an SSH-2.0 banner."""
    # A banner alone is not enough: when another process (another worker's sshd) took the port
    # first, that one answers while ours fails to bind. Ours logs this line once it listens.
    listening = f"Server listening on {HOST} port {port}."
    deadline = time.monotonic() + STARTUP_SECONDS
    banner = None
    while True:
        if process.poll() is not None:
            raise _StartFailed(_read(log_file))
        if listening in _read(log_file):
            banner = _banner(port)
            if banner is not None and banner.startswith(BANNER_PREFIX):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"sshd on port {port} did not answer with an SSH-2.0 banner within "
                f"{STARTUP_SECONDS}s (last answer {banner!r}):\n{_read(log_file)}"
            )
        time.sleep(0.02)


def _read(log_file: Path) -> str:
    try:
        return log_file.read_text(errors="replace")
    except FileNotFoundError:  # sshd has not opened it yet
        return ""


class _StartFailed(Exception):
    """sshd exited before answering; the argument is its log."""


def descendants(pid: int) -> list[int]:
    """Processes below `pid`: sshd serves each connection in a child of its own session."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # "pid (command) state ppid ...": the command may contain spaces and parentheses.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (reaping orphans is init's business)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # Stopping the listener leaves its connections running (that is how sshd restarts without
    # cutting sessions), so a connection a test left open is ended here too.
    connections = descendants(process.pid) if process.poll() is None else []
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
    _signal_all(connections, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while any(is_running(pid) for pid in connections) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_all(connections, signal.SIGKILL)


def _signal_all(pids: list[int], signal_number: signal.Signals) -> None:
    for pid in pids:
        if is_running(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal_number)


def _prepare_privilege_separation_dir() -> None:
    if not PRIVILEGE_SEPARATION_DIR.is_dir():
        PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        # mkdir's mode is reduced by the umask; sshd wants exactly root-owned 0755.
        PRIVILEGE_SEPARATION_DIR.chmod(0o755)


def _start(sshd: str, config: Path, log_file: Path) -> subprocess.Popen[bytes]:
    # An earlier attempt's log would make this one's failure look like that one's.
    log_file.unlink(missing_ok=True)
    return subprocess.Popen(
        # -D: stay in the foreground, so this is the listening process; -E: log to the file.
        [sshd, "-D", "-f", str(config), "-E", str(log_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def running_sshd(directory: Path, sshd: str = SSHD) -> Iterator[SshServer]:
    """Run a private sshd on 127.0.0.1 (files in `directory`) until the block ends."""
    if not os.path.isabs(sshd):
        # sshd re-executes itself for every connection and refuses a relative path.
        raise ValueError(f"sshd must be given as an absolute path, not {sshd!r}")
    _prepare_privilege_separation_dir()
    host_key = directory / "ssh_host_ed25519_key"
    client_key = directory / "client_ed25519_key"
    authorized_keys = directory / "authorized_keys"
    config = directory / "sshd_config"
    log_file = directory / "sshd.log"
    host_public_key = generate_key(host_key, "mailwarden-test-host")
    authorized_keys.write_text(generate_key(client_key, "mailwarden-test-client") + "\n")
    host_key_fingerprint = fingerprint(public_key_file(host_key))

    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = _free_port()
        config.write_text(_config(directory, port, host_key, authorized_keys))
        process = _start(sshd, config, log_file)
        try:
            _wait_for_banner(process, port, log_file)
            break
        except _StartFailed as failed:
            _stop(process)
            # Between choosing the port and binding it another process may have taken it.
            if "Address already in use" not in str(failed) or attempt == PORT_ATTEMPTS:
                raise RuntimeError(f"sshd exited while starting:\n{failed}") from None
        except BaseException:
            _stop(process)
            raise

    try:
        yield SshServer(
            host=HOST,
            port=port,
            user=USER,
            client_key=client_key,
            host_public_key=host_public_key,
            host_key_fingerprint=host_key_fingerprint,
            log_file=log_file,
            pid=process.pid,
        )
    finally:
        _stop(process)
