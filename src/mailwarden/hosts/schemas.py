from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class HostPaths(InputSchema):
    """Where a host keeps things; unset fields keep their value (Debian's on a new host)."""

    postfix_config_dir: str | None = None
    postfix_command_dir: str | None = None
    dovecot_config: str | None = None
    doveadm: str | None = None
    log_paths: list[str] | None = None
    mail_root: str | None = None
    probe_address: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    imap_port: int | None = Field(default=None, ge=1, le=65535)


class HostCreate(HostPaths):
    name: str
    transport: Literal["local", "ssh"]
    # For ssh: user@host[:port] (an IPv6 address in brackets), and a private key file here.
    ssh_target: str | None = None
    ssh_key_file: str | None = None
    # OpenSSH's "SHA256:..." of the server's host key, as `ssh-keygen -lf` prints it on the
    # host. Given: the key the server presents must match it. Not given: the presented key is
    # recorded as it is (trust on first use) and its fingerprint reported.
    host_key_fingerprint: str | None = None


class HostUpdate(HostPaths):
    pass


class HostPublic(PublicSchema):
    name: str
    transport: Literal["local", "ssh"]
    ssh_user: str | None
    ssh_address: str | None
    ssh_port: int | None
    ssh_key_file: str | None
    host_key_fingerprint: str | None
    postfix_config_dir: str
    postfix_command_dir: str
    dovecot_config: str
    doveadm: str
    log_paths: list[str]
    mail_root: str
    probe_address: str
    smtp_port: int
    imap_port: int
    created_at: datetime
    updated_at: datetime


class HostCheckItem(PublicSchema):
    check: str
    ok: bool
    detail: str


class HostCheck(PublicSchema):
    name: str
    ok: bool
    items: list[HostCheckItem]
