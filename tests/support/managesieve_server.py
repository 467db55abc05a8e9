"""A private Dovecot that speaks only ManageSieve, on 127.0.0.1 and a free high port.

Users live in a passwd-file written before the start (Dovecot looks at a passwd-file at most
once a second, so users added later could stay invisible for a moment), and a second
passwd-file holds the master user (`master = yes`, `pass = yes`: the user acted for must exist
in the user passdb); every user's password is USER_PASSWORD. Sieve scripts end up below
`home/<domain>/<local part>/sieve`, the storage of the generated Dovecot configuration, owned
by an unprivileged user (`vmail` when it exists, else `nobody`; the current user when the suite
does not run as root). For tests only: no TLS, plaintext auth allowed, no delay or penalty
after a failed login.

The directory is made with mkdtemp and opened up (0755) because Dovecot's processes run as
other users than the test (the mail user, `dovecot` for auth) and must reach their files;
pytest's own temporary directories are private to the user running it.

Under CI=true a missing Dovecot fails the test instead of skipping it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailwarden.stack.sieve.script import SCRIPT_NAME, SIEVE_BEFORE, SIEVE_STORAGE
from tests.support.services import IN_CI

DOVECOT = "/usr/sbin/dovecot"
MASTER_USER = "mailwarden-sieve"
MASTER_PASSWORD = "test master secret 4 sieve"
USER_PASSWORD = "test user password"
START_TIMEOUT = 15.0


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot") or (DOVECOT if os.path.exists(DOVECOT) else None)
    if found is None:
        return None
    # ManageSieve comes from a separate package (dovecot-managesieved).
    return found if os.path.exists("/usr/lib/dovecot/managesieve-login") else None


def require_dovecot() -> str:
    binary = dovecot_binary()
    if binary is None:
        reason = "Dovecot with ManageSieve not installed (dovecot-core, dovecot-managesieved)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: a missing service fails the run)", pytrace=False)
        pytest.skip(reason)
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_port() -> int:
    """A loopback port nobody listens on (connecting is refused at once)."""
    return free_port()


def _mail_owner() -> tuple[str, str]:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    for name in ("vmail", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, grp.getgrgid(entry.pw_gid).gr_name
    raise RuntimeError("neither a vmail nor a nobody user exists to own test mail")


@dataclass
class ManageSieveServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"
    master_user: str = MASTER_USER
    master_password: str = MASTER_PASSWORD
    users: list[str] = field(default_factory=list)
    # With TLS: STARTTLS offered with a self-signed certificate for `tls_name` (cert.pem).
    tls_name: str | None = None

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def users_file(self) -> Path:
        return self.root / "users"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def sieve_dir(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.root / "home" / domain / local / "sieve"

    def stored_script(self, address: str, name: str = SCRIPT_NAME) -> str | None:
        """The script as Dovecot stored it, byte for byte (no newline translation)."""
        path = self.sieve_dir(address) / f"{name}.sieve"
        return path.read_bytes().decode("utf-8") if path.exists() else None

    def config(self, binary_owner: tuple[str, str]) -> str:
        user, group = binary_owner
        root = self.root
        unprivileged = ""
        if os.geteuid() != 0:
            # Dovecot run by an ordinary user: every process runs as that user.
            unprivileged = f"default_internal_user = {user}\ndefault_login_user = {user}\n"
        if self.tls_name is None:
            tls = "ssl = no\n"
        else:
            tls = f"ssl = yes\nssl_cert = <{self.certificate}\nssl_key = <{root}/key.pem\n"
        return f"""\
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailwarden-test-{self.port}
log_path = {self.log}
{unprivileged}protocols = sieve
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
first_valid_uid = 1
first_valid_gid = 1
mail_uid = {user}
mail_gid = {group}
mail_location = maildir:~/Maildir
service managesieve-login {{
  inet_listener sieve {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = {root}/master-users
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = {self.users_file}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%d/%n
}}
plugin {{
  sieve = {SIEVE_STORAGE}
  sieve_before = {SIEVE_BEFORE}
}}
"""

    @property
    def certificate(self) -> Path:
        return self.root / "cert.pem"

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN={self.tls_name}",
                "-addext",
                f"subjectAltName=DNS:{self.tls_name}",
                "-keyout",
                str(self.root / "key.pem"),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self, binary: str) -> None:
        owner = _mail_owner()
        if self.tls_name is not None:
            self._make_certificate()
        for name in ("run", "state"):
            (self.root / name).mkdir()
        home = self.root / "home"
        home.mkdir()
        shutil.chown(home, *owner)
        self.users_file.write_text(
            "".join(f"{address}:{{PLAIN}}{USER_PASSWORD}\n" for address in self.users)
        )
        (self.root / "master-users").write_text(
            f"{self.master_user}:{{PLAIN}}{self.master_password}\n"
        )
        for path in (self.users_file, self.root / "master-users"):
            path.chmod(0o644)
        conf = self.root / "dovecot.conf"
        conf.write_text(self.config(owner))
        with (self.root / "stdout.log").open("ab") as output:
            self.process = subprocess.Popen(
                [binary, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode}:\n{self._output()}"
                )
            if self._greets():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on port {self.port}:\n{self._output()}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as probe:
                data = b""
                while b"\r\nOK" not in data and not data.startswith(b"OK"):
                    chunk = probe.recv(4096)
                    if not chunk:
                        return False
                    data += chunk
                probe.sendall(b"LOGOUT\r\n")
                return True
        except OSError:
            return False

    def _output(self) -> str:
        stdout = self.root / "stdout.log"
        text = stdout.read_text(errors="replace") if stdout.exists() else ""
        return f"{text}\n{self.log_tail()}"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def running_server(
    users: Iterable[str], *, tls_name: str | None = None
) -> Iterator[ManageSieveServer]:
    """Start a server that knows `users`, yield it, stop it and remove its files.

    For a fixture: `yield from running_server([...])`. With `tls_name` the server offers
    STARTTLS with a self-signed certificate for that name (`server.certificate`).
    """
    binary = require_dovecot()
    if tls_name is not None and shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="mw-managesieve-"))
    root.chmod(0o755)
    server = ManageSieveServer(root=root, port=free_port(), users=list(users), tls_name=tls_name)
    try:
        server.start(binary)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
