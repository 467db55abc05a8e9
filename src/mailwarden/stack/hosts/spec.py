"""What mailwarden needs to know to work on a mail host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Debian's places for everything; a host registered without options uses these.
DEFAULT_POSTFIX_CONFIG_DIR = "/etc/postfix"
DEFAULT_POSTFIX_COMMAND_DIR = "/usr/sbin"
DEFAULT_DOVECOT_CONFIG = "/etc/dovecot/dovecot.conf"
DEFAULT_DOVEADM = "/usr/bin/doveadm"
DEFAULT_LOG_PATHS = ("/var/log/mail.log",)
DEFAULT_MAIL_ROOT = "/var/vmail"


@dataclass(frozen=True, slots=True)
class LocalTransport:
    """Commands run on the machine mailwarden runs on."""


@dataclass(frozen=True, slots=True)
class SshTransport:
    user: str
    address: str
    port: int
    # A private key file on this machine; the key itself is never stored by mailwarden.
    key_file: Path
    # The server's public key as recorded when the host was added ("ssh-ed25519 AAAA...").
    host_key: str

    @property
    def known_hosts_name(self) -> str:
        """The host's name as OpenSSH writes it in known_hosts."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


Transport = LocalTransport | SshTransport


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    transport: Transport
    postfix_config_dir: str = DEFAULT_POSTFIX_CONFIG_DIR
    postfix_command_dir: str = DEFAULT_POSTFIX_COMMAND_DIR
    dovecot_config: str = DEFAULT_DOVECOT_CONFIG
    doveadm: str = DEFAULT_DOVEADM
    log_paths: tuple[str, ...] = field(default=DEFAULT_LOG_PATHS)
    mail_root: str = DEFAULT_MAIL_ROOT

    @property
    def is_local(self) -> bool:
        return isinstance(self.transport, LocalTransport)

    def postfix_command(self, name: str, *arguments: str) -> list[str]:
        """argv of a Postfix tool, always with `-c` so a non-default instance is addressed."""
        return [f"{self.postfix_command_dir}/{name}", "-c", self.postfix_config_dir, *arguments]

    def doveadm_command(self, *arguments: str) -> list[str]:
        return [self.doveadm, "-c", self.dovecot_config, *arguments]
