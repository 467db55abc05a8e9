"""One Settings object: environment variables MAILWARDEN_*, then an optional TOML file.

Precedence (highest first): environment, the TOML file named by MAILWARDEN_CONFIG, defaults.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mailwarden.kernel.passwords import DEFAULT_SCHEME, WRITABLE_SCHEMES, Scheme

# Plain URLs a user copies from their DBA select the driver the package installs.
# Shorter secrets are refused: a webhook signature is only as strong as its key.
WEBHOOK_SECRET_MIN_LENGTH = 32

_DRIVER_FOR_SCHEME = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mailwarden"


def normalize_database_url(url: str) -> str:
    """Give `postgresql://`, `mysql://` and `mariadb://` URLs the installed driver."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("database_url must look like dialect://... (an SQLAlchemy URL)")
    if "+" in scheme:
        return url
    return f"{_DRIVER_FOR_SCHEME.get(scheme, scheme)}://{rest}"


class Settings(BaseSettings):
    # A refused value is not repeated in the error: it may be a secret or a database password.
    model_config = SettingsConfigDict(
        env_prefix="MAILWARDEN_", extra="forbid", hide_input_in_errors=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    password_scheme: Scheme = DEFAULT_SCHEME
    password_min_length: int = Field(default=8, ge=1, le=128)
    password_max_length: int = Field(default=256, ge=16, le=4096)
    # Template for a new mailbox's maildir, relative to the mail root Dovecot uses.
    maildir_template: str = "{domain}/{local_part}/"
    max_alias_targets: int = Field(default=200, ge=1, le=10_000)
    # Local parts a domain admin may not remove: RFC 2142 role addresses.
    protected_local_parts: list[str] = Field(default_factory=lambda: ["postmaster", "abuse"])

    # --- the mail stack ---------------------------------------------------------------------
    # Where maildirs live (Dovecot's homes are mail_root/maildir) and who owns them.
    mail_root: Path = Path("/var/vmail")
    vmail_user: str = "vmail"
    vmail_group: str = "vmail"
    # Where `config postfix|dovecot` output is meant to be installed (paths inside the files).
    postfix_dir: Path = Path("/etc/postfix")
    dovecot_dir: Path = Path("/etc/dovecot")
    # A removed mailbox can be restored for this long; `maintenance purge` removes it after.
    deletion_grace_hours: int = Field(default=48, ge=0, le=24 * 365)
    # What purge does with a removed mailbox's maildir: delete it, or archive it as .tar.gz.
    removed_mail_action: Literal["delete", "archive"] = "delete"
    archive_dir: Path | None = None
    # ManageSieve server that receives vacation and forwarding scripts ("" = store only).
    managesieve_host: str = ""
    managesieve_port: int = Field(default=4190, ge=1, le=65535)
    # A Dovecot master user, allowed to log in to ManageSieve on behalf of any mailbox.
    sieve_master_user: str = "mailwarden-sieve"
    sieve_master_password: SecretStr | None = None
    # The dovecot.conf of the Dovecot on this host. When set, removing or deactivating a mailbox
    # (or a domain) also ends its open sessions with `doveadm kick`; unset, nothing runs.
    doveadm_config: Path | None = None
    # `logs ingest` keeps hourly traffic (and its top lists) this long, then deletes it.
    log_retention_days: int = Field(default=90, ge=1, le=3660)

    # --- the HTTP face (`mailwarden serve`) -------------------------------------------------
    # Failed logins and API keys: this many per account (or key) and per client address within
    # the window, then 429 until the window ends.
    auth_failure_window_seconds: int = Field(default=900, ge=1, le=86_400)
    auth_failures_per_account: int = Field(default=10, ge=1, le=10_000)
    auth_failures_per_client: int = Field(default=50, ge=1, le=100_000)
    # Proxies (addresses or networks) whose X-Forwarded-For / X-Forwarded-Proto are believed.
    # Empty: the peer address is the client, whatever headers say.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Request bodies above this size are refused with 413 before they are read whole.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    # Admin roles that must use a second factor (TOTP): an admin of such a role without one is
    # sent to enrolment after login. Empty: the second factor is each admin's choice.
    require_second_factor: list[Literal["superadmin", "domain-admin"]] = Field(default_factory=list)

    # --- the web console and portal -----------------------------------------------------------
    # A browser session ends after this long without a request, and after session_max_hours
    # whatever happens.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Registration requests one client address may send per auth_failure_window_seconds,
    # accepted or refused (each fills a queue or probes an address, and costs a hash).
    registrations_per_client: int = Field(default=5, ge=1, le=10_000)
    # How long the one-time setup link printed by the first `serve` stays good.
    setup_link_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # The address people reach the console at (https://mail-admin.example.org); links printed
    # by the server start with it. Empty: http://HOST:PORT of `serve`.
    public_url: str = ""

    # --- health checks (`mailwarden health`) and alerts (`mailwarden monitor`) -----------------
    # Thresholds: a figure at or above the warning one makes its check "warning", at or above
    # the critical one "critical". The queue counts every message Postfix holds (deferred too).
    health_queue_messages_warning: int = Field(default=100, ge=1)
    health_queue_messages_critical: int = Field(default=1000, ge=1)
    # Age of the oldest queued message (Postfix retries deferred mail for 5 days by default).
    health_queue_age_warning_minutes: int = Field(default=60, ge=1)
    health_queue_age_critical_minutes: int = Field(default=24 * 60, ge=1)
    # Used share of the file system that holds the mail root, in percent.
    health_disk_percent_warning: int = Field(default=80, ge=1, le=100)
    health_disk_percent_critical: int = Field(default=90, ge=1, le=100)
    # Days left before the SMTP or IMAP certificate expires (Let's Encrypt renews at 30).
    health_cert_days_warning: int = Field(default=21, ge=0)
    health_cert_days_critical: int = Field(default=7, ge=0)
    # How long a banner or TLS probe may take before the listener counts as not answering.
    health_probe_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Where `monitor` sends one alert per incident and one recovery notice: e-mail through a
    # relay (plain SMTP, STARTTLS when the relay offers it; no login), and webhooks (a JSON
    # POST to each URL). Nothing configured: incidents are recorded and printed only.
    alert_email_to: list[str] = Field(default_factory=list)
    alert_email_from: str = "mailwarden@localhost"
    alert_smtp_host: str = "127.0.0.1"
    alert_smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_webhooks: list[str] = Field(default_factory=list)
    # Signs every webhook POST (HMAC-SHA256 over "TIMESTAMP.BODY"; see health/alerts.py) so a
    # receiver can tell the monitor's notices from anyone else's. At least 32 characters.
    alert_webhook_secret: SecretStr | None = None
    # Per delivery attempt: a channel that takes longer counts as failed; the others still run.
    alert_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("alert_webhook_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < WEBHOOK_SECRET_MIN_LENGTH:
            raise ValueError(
                f"the alert webhook secret must be at least {WEBHOOK_SECRET_MIN_LENGTH} characters"
            )
        return value

    @field_validator("alert_webhooks")
    @classmethod
    def _web_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
                raise ValueError("each alert webhook must be an http:// or https:// URL")
        return value

    @field_validator("alert_email_to", "alert_email_from")
    @classmethod
    def _mail_addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            local, at, domain = address.rpartition("@")
            if (
                not at
                or not local
                or not domain
                or any(c.isspace() or c in "<>,;" for c in address)
            ):
                raise ValueError(f"{address!r} is no e-mail address")
        return value

    @field_validator("password_scheme")
    @classmethod
    def _writable(cls, value: Scheme) -> Scheme:
        if value not in WRITABLE_SCHEMES:
            raise ValueError(f"{value} can only be verified, not written")
        return value

    @field_validator("maildir_template")
    @classmethod
    def _safe_template(cls, value: str) -> str:
        if value.startswith("/") or ".." in value or "{local_part}" not in value:
            raise ValueError("must be relative, without '..', and contain {local_part}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("MAILWARDEN_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"MAILWARDEN_CONFIG names a missing file: {config_file}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def effective_archive_dir(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.data_dir / 'mailwarden.db'}"
