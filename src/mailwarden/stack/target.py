"""Where the generated Postfix and Dovecot configuration will run.

`config postfix|dovecot` renders for a production host (the defaults below: Debian paths, unix
sockets in Postfix's chroot). The devstack renders the very same files for a private instance by
changing only this description: its own directories, and TCP ports on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailwarden.settings import Settings

POSTFIX_SPOOL = Path("/var/spool/postfix")


@dataclass(frozen=True, slots=True)
class UnixSocket:
    path: Path


@dataclass(frozen=True, slots=True)
class TcpPort:
    host: str
    port: int


Endpoint = UnixSocket | TcpPort


@dataclass(frozen=True, slots=True)
class DeployTarget:
    # Directories the files are installed in: paths inside the files point there.
    postfix_dir: Path
    dovecot_dir: Path
    # Dovecot homes are mail_root/<maildir column>; mail is owned by vmail_user:vmail_group.
    mail_root: Path
    vmail_user: str
    vmail_group: str
    # Postfix's queue directory: sockets below it are written as paths relative to it
    # (`private/auth`), which work whether or not a Postfix service runs chrooted.
    postfix_spool: Path = POSTFIX_SPOOL
    # Dovecot's LMTP listener, which Postfix delivers to (virtual_transport).
    lmtp: Endpoint = UnixSocket(POSTFIX_SPOOL / "private" / "dovecot-lmtp")
    # Dovecot's auth listener, which Postfix asks for SMTP AUTH (smtpd_sasl_path).
    sasl: Endpoint = UnixSocket(POSTFIX_SPOOL / "private" / "auth")
    # Where Pigeonhole submits vacation replies and redirects: "host:port" of an SMTP server,
    # or None for the local sendmail binary.
    sieve_submission: str | None = None
    # master.cf service name (or address:port) of the submission listener with SMTP AUTH.
    submission_service: str = "submission"

    @classmethod
    def production(cls, settings: Settings) -> DeployTarget:
        return cls(
            postfix_dir=settings.postfix_dir,
            dovecot_dir=settings.dovecot_dir,
            mail_root=settings.mail_root,
            vmail_user=settings.vmail_user,
            vmail_group=settings.vmail_group,
        )
