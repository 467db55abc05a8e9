from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class Host(Base):
    """A mail host: how to reach it and where its daemons keep tools, configuration and logs.

    The SSH key is a path on the machine mailwarden runs on; the key itself is never stored.
    `ssh_host_key` is the server's public key recorded when the host was added: every later
    connection must be answered by that very key.
    """

    __tablename__ = "hosts"
    __table_args__ = (CheckConstraint("transport IN ('local', 'ssh')", name="transport_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    transport: Mapped[str] = mapped_column(String(8))
    ssh_user: Mapped[str | None] = mapped_column(String(32))
    ssh_address: Mapped[str | None] = mapped_column(String(255))
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    ssh_key_file: Mapped[str | None] = mapped_column(String(1024))
    ssh_host_key: Mapped[str | None] = mapped_column(Text)
    postfix_config_dir: Mapped[str] = mapped_column(String(1024))
    postfix_command_dir: Mapped[str] = mapped_column(String(1024))
    dovecot_config: Mapped[str] = mapped_column(String(1024))
    doveadm: Mapped[str] = mapped_column(String(1024))
    # One absolute path per line: the current log file of each; rotated siblings are found
    # beside it.
    log_paths: Mapped[str] = mapped_column(Text)
    mail_root: Mapped[str] = mapped_column(String(1024))
    # Where the SMTP and IMAP listeners answer for health checks (address and ports).
    probe_address: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer, default=25)
    imap_port: Mapped[int] = mapped_column(Integer, default=143)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
