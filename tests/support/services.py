"""Find, start or install the real services the suite needs.

Outside CI a missing service skips the tests that need it (with the reason). Under CI=true
nothing may be skipped for a missing service: `ensure_all()` (run by scripts/test before
pytest) starts or installs what is missing, and the fixtures fail instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

IN_CI = os.environ.get("CI", "").lower() == "true"

POSTGRES_URL = os.environ.get(
    "MAILWARDEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_URL = os.environ.get(
    "MAILWARDEN_TEST_MARIADB_URL", "mariadb+pymysql://root@127.0.0.1:3306/"
)
ALL_BACKENDS = ("sqlite", "postgresql", "mariadb")


def selected_backends() -> list[str]:
    wanted = os.environ.get("MAILWARDEN_TEST_BACKENDS", ",".join(ALL_BACKENDS))
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise SystemExit(f"MAILWARDEN_TEST_BACKENDS names unknown backends: {sorted(unknown)}")
    return names


def require_tool(name: str, packages: str) -> str:
    """The path of a daemon's command-line tool; a missing one fails under CI, else skips."""
    import pytest

    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is not None:
        return path
    message = f"{name} is not installed (Debian packages: {packages})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true: a missing service fails the run", pytrace=False)
    pytest.skip(message)


def reachable(url: str) -> str | None:
    """None when a server answers at `url`, else the reason."""
    engine = create_engine(url, connect_args=_timeout(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any driver error means "not usable"
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


def _timeout(url: str) -> dict[str, int]:
    backend = make_url(url).get_backend_name()
    return {"connect_timeout": 3} if backend in {"postgresql", "mysql", "mariadb"} else {}


def _run(argv: list[str]) -> None:
    print(f"[bootstrap] {' '.join(argv)}", file=sys.stderr)
    subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, timeout=600)


_apt_updated = False


def apt_install(*packages: str) -> None:
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        _apt_updated = True
    print(f"[bootstrap] apt-get install {' '.join(packages)}", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )


def _wait_for(url: str, seconds: float = 30) -> str | None:
    deadline = time.monotonic() + seconds
    reason = reachable(url)
    while reason and time.monotonic() < deadline:
        time.sleep(0.5)
        reason = reachable(url)
    return reason


def _start_postgres() -> None:
    if not shutil.which("pg_ctlcluster") and not os.path.isdir("/usr/lib/postgresql"):
        apt_install("postgresql")
    clusters = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    for version in clusters:
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])


def _start_mariadb() -> None:
    if not shutil.which("mariadbd") and not os.path.exists("/usr/sbin/mariadbd"):
        apt_install("mariadb-server")
    os.makedirs("/run/mysqld", exist_ok=True)
    if _user_exists("mysql"):
        shutil.chown("/run/mysqld", "mysql", "mysql")
    _run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"]
    )


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    start: Callable[[], None]


SERVICES = {
    "postgresql": Service("postgresql", POSTGRES_URL, _start_postgres),
    "mariadb": Service("mariadb", MARIADB_URL, _start_mariadb),
}


def ensure_database(backend: str) -> str | None:
    """Make the backend's server answer; None when it does, else why not."""
    service = SERVICES[backend]
    reason = reachable(service.url)
    if reason is None:
        return None
    service.start()
    return _wait_for(service.url)


def ensure_doveadm() -> str | None:
    if shutil.which("doveadm") is None:
        apt_install("dovecot-core")
    return None if shutil.which("doveadm") else "doveadm not found (Debian package dovecot-core)"


# The Debian packages of a real Postfix + Dovecot with every SQL driver (docs: mail-stack-notes).
MAIL_STACK_PACKAGES = (
    "postfix",
    "postfix-pgsql",
    "postfix-mysql",
    "postfix-sqlite",
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-pop3d",
    "dovecot-lmtpd",
    "dovecot-pgsql",
    "dovecot-mysql",
    "dovecot-sqlite",
    "dovecot-sieve",
    "dovecot-managesieved",
)


def missing_mail_stack() -> list[str]:
    """Packages the e2e devstack needs for the selected backends and does not find."""
    from mailwarden.stack.devstack.packages import missing_packages

    return sorted({name for backend in selected_backends() for name in missing_packages(backend)})


def ensure_mail_stack() -> str | None:
    """Install Postfix and Dovecot when missing; None when present, else what is missing."""
    if missing_mail_stack() and os.geteuid() == 0 and shutil.which("debconf-set-selections"):
        # Without the preseed Postfix's installer asks which configuration to create; the
        # devstack brings its own, so "No configuration".
        subprocess.run(
            ["debconf-set-selections"],
            input=b"postfix postfix/main_mailer_type select No configuration\n",
            check=False,
            timeout=60,
        )
        apt_install(*MAIL_STACK_PACKAGES)
    missing = missing_mail_stack()
    return f"Debian packages missing: {' '.join(missing)}" if missing else None


# Debian's build, so the browser tests never download one (no `playwright install`).
CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> str | None:
    """Install Debian's Chromium when missing; None when present, else what is missing."""
    if not os.path.exists(CHROMIUM):
        apt_install("chromium")
    return None if os.path.exists(CHROMIUM) else f"{CHROMIUM} not found (Debian package chromium)"


# Debian's OpenSSH: the tests of the operations over SSH run a private sshd (tests/support/sshd.py).
SSHD = "/usr/sbin/sshd"


def ensure_openssh() -> str | None:
    """Install Debian's OpenSSH when missing; None when present, else what is missing."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        apt_install("openssh-server", "openssh-client")
    missing = []
    if not os.path.exists(SSHD):
        missing.append(f"{SSHD} (Debian package openssh-server)")
    if shutil.which("ssh-keygen") is None:
        missing.append("ssh-keygen (Debian package openssh-client)")
    return f"not found: {', '.join(missing)}" if missing else None


# Debian's pflogsumm: the reference the log summary is checked against (tests/unit/logs).
PFLOGSUMM = "/usr/sbin/pflogsumm"


def ensure_pflogsumm() -> str | None:
    """Install Debian's pflogsumm when missing; None when present, else what is missing."""
    if not os.path.exists(PFLOGSUMM):
        apt_install("pflogsumm")
    missing = f"{PFLOGSUMM} not found (Debian package pflogsumm)"
    return None if os.path.exists(PFLOGSUMM) else missing


def ensure_all() -> int:
    """Start or install every service the suite needs; exit status for scripts/test."""
    problems = []
    for backend in selected_backends():
        if backend in SERVICES and (reason := ensure_database(backend)):
            problems.append(f"{backend}: {reason}")
    if reason := ensure_doveadm():
        problems.append(reason)
    if reason := ensure_mail_stack():
        problems.append(reason)
    if reason := ensure_chromium():
        problems.append(reason)
    if reason := ensure_openssh():
        problems.append(reason)
    if reason := ensure_pflogsumm():
        problems.append(reason)
    for problem in problems:
        print(f"[bootstrap] not available: {problem}", file=sys.stderr)
    return 1 if problems and IN_CI else 0


if __name__ == "__main__":
    raise SystemExit(ensure_all())
