"""Which Debian packages the devstack needs, found by the files they install.

Files rather than `dpkg -s`: the check then works wherever the daemons came from, and a test can
point it at a fake filesystem root (`root=`) to see the refusal without uninstalling anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, get_args

# Callers with a URL use connection_from_url(url).driver; the test harness names backends.
from mailwarden.stack.dialect import DRIVER_OF_BACKEND, Driver


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    # One file the package installs, absolute; looked up below the checked root.
    marker: str


_BASE = (
    Package("postfix", "/usr/lib/postfix/sbin/master"),
    Package("dovecot-core", "/usr/sbin/dovecot"),
    Package("dovecot-imapd", "/usr/lib/dovecot/imap"),
    Package("dovecot-pop3d", "/usr/lib/dovecot/pop3"),
    Package("dovecot-lmtpd", "/usr/lib/dovecot/lmtp"),
    Package("dovecot-sieve", "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"),
    Package("dovecot-managesieved", "/usr/lib/dovecot/managesieve"),
)

# A driver names itself; a backend name goes through dialect.py's table.
_DRIVER_OF: Final[dict[str, Driver]] = {
    **{name: name for name in get_args(Driver)},
    **DRIVER_OF_BACKEND,
}


def _driver(database: str) -> Driver:
    driver = _DRIVER_OF.get(database)
    if driver is None:
        raise ValueError(f"no Postfix/Dovecot SQL driver for database {database!r}")
    return driver


def required_packages(database: str) -> list[Package]:
    """The packages for a database, named by its driver (`pgsql`, `mysql`, `sqlite`, as
    `connection_from_url` gives it) or by SQLAlchemy's backend name (`postgresql`, `mariadb`).

    Debian names the SQL driver packages of both daemons after the very drivers they load.
    """
    driver = _driver(database)
    return [
        *_BASE,
        Package(f"postfix-{driver}", f"/usr/lib/postfix/postfix-{driver}.so"),
        Package(f"dovecot-{driver}", f"/usr/lib/dovecot/modules/libdriver_{driver}.so"),
    ]


def missing_packages(database: str, root: Path = Path("/")) -> list[str]:
    """Names of the required packages whose files are absent below `root`."""
    return [
        package.name
        for package in required_packages(database)
        if not (root / package.marker.lstrip("/")).exists()
    ]


def install_command(packages: list[str]) -> str:
    # Postfix asks which configuration to install unless told not to; the devstack brings its own.
    return (
        "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections"
        f" && DEBIAN_FRONTEND=noninteractive apt-get install -y {' '.join(packages)}"
    )
