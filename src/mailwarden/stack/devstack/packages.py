"""Which Debian packages the devstack needs, found by the files they install.

Files rather than `dpkg -s`: the check then works wherever the daemons came from, and a test can
point it at a fake filesystem root (`root=`) to see the refusal without uninstalling anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


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

# Debian names the SQL drivers after the server; MariaDB is served by the MySQL drivers.
_DRIVER_SUFFIX = {"sqlite": "sqlite", "postgresql": "pgsql", "mysql": "mysql", "mariadb": "mysql"}


def database_dialect(database_url: str) -> str:
    """`sqlite`, `postgresql`, `mysql` or `mariadb` for an SQLAlchemy URL."""
    return make_url(database_url).get_backend_name()


def required_packages(dialect: str) -> list[Package]:
    suffix = _DRIVER_SUFFIX.get(dialect)
    if suffix is None:
        raise ValueError(f"no Postfix/Dovecot SQL driver for database dialect {dialect!r}")
    return [
        *_BASE,
        Package(f"postfix-{suffix}", f"/usr/lib/postfix/postfix-{suffix}.so"),
        Package(f"dovecot-{suffix}", f"/usr/lib/dovecot/modules/libdriver_{suffix}.so"),
    ]


def missing_packages(dialect: str, root: Path = Path("/")) -> list[str]:
    """Names of the required packages whose files are absent below `root`."""
    return [
        package.name
        for package in required_packages(dialect)
        if not (root / package.marker.lstrip("/")).exists()
    ]


def install_command(packages: list[str]) -> str:
    # Postfix asks which configuration to install unless told not to; the devstack brings its own.
    return (
        "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections"
        f" && DEBIAN_FRONTEND=noninteractive apt-get install -y {' '.join(packages)}"
    )
