"""Where the monitor's alerts and recovery notices go: e-mail through a relay, and webhooks.

Each channel delivers one notice or raises DeliveryFailed; the monitor tries every channel,
so one that fails (a relay down, a webhook timing out) blocks none of the others. A notice
holds the host, the check, its status and what the check said: never a secret (details are
the checks' own words, which name no password or key). Webhook URLs often carry a token, so
a failure names the URL's host only.

With `alert_webhook_secret` set, every webhook POST is signed so that a receiver can tell the
monitor's notices from forged ones and from replays:

    X-Mailwarden-Timestamp: 1795266977
    X-Mailwarden-Signature: sha256=<hex HMAC-SHA256 of b"1795266977." + body, keyed by the secret>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares it in
constant time, and refuses timestamps more than a few minutes old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal, Protocol
from urllib.parse import urlsplit

from mailwarden.settings import Settings

Kind = Literal["alert", "recovery"]

TIMESTAMP_HEADER = "X-Mailwarden-Timestamp"
SIGNATURE_HEADER = "X-Mailwarden-Signature"


def webhook_signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: Kind
    host: str
    check: str
    status: str
    detail: str
    opened_at: datetime
    resolved_at: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "host": self.host,
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }

    @property
    def subject(self) -> str:
        if self.kind == "recovery":
            return f"[mailwarden] RECOVERED {self.host} {self.check}"
        return f"[mailwarden] {self.status.upper()} {self.host} {self.check}"

    def text(self) -> str:
        lines = [
            f"Host:    {self.host}",
            f"Check:   {self.check}",
            f"Status:  {self.status}",
            f"Detail:  {self.detail}",
            f"Since:   {self.opened_at:%Y-%m-%d %H:%M:%S} UTC",
        ]
        if self.resolved_at is not None:
            lines.append(f"Ok at:   {self.resolved_at:%Y-%m-%d %H:%M:%S} UTC")
        lines += [
            "",
            "Sent once per incident by `mailwarden monitor`; "
            + (
                "the incident is closed."
                if self.kind == "recovery"
                else "a recovery notice follows when the check is ok again."
            ),
        ]
        return "\n".join(lines) + "\n"


class DeliveryFailed(Exception):
    """A channel could not deliver a notice; the message says why, without secrets."""


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, notice: Notice) -> None: ...


@dataclass(frozen=True, slots=True)
class EmailChannel:
    """One message to every recipient through an SMTP relay (no login; STARTTLS when the
    relay offers it, without verifying its certificate, like Postfix's `may` level: a
    relay is usually local and often self-signed)."""

    recipients: tuple[str, ...]
    sender: str
    relay_host: str
    relay_port: int
    timeout: float

    @property
    def name(self) -> str:
        return f"email {self.relay_host}:{self.relay_port}"

    def send(self, notice: Notice) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Subject"] = notice.subject
        message["Date"] = format_datetime(datetime.now().astimezone())
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        # RFC 3834: no vacation replies or bounces loops to an automatic sender.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(notice.text())
        try:
            with smtplib.SMTP(
                self.relay_host,
                self.relay_port,
                local_hostname=socket.gethostname(),
                timeout=self.timeout,
            ) as client:
                client.ehlo()
                if client.has_extn("starttls"):
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    client.starttls(context=context)
                    client.ehlo()
                refused = client.send_message(message, self.sender, list(self.recipients))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryFailed(f"the relay refused {', '.join(sorted(refused))}")


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """A JSON POST of the notice, signed when there is a secret; any 2xx answer is a
    delivery."""

    url: str
    timeout: float
    secret: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        # The path may hold a token: name the endpoint by scheme and host only.
        parts = urlsplit(self.url)
        return f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def send(self, notice: Notice) -> None:
        body = json.dumps(notice.as_json()).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "mailwarden-monitor"}
        if self.secret is not None:
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = webhook_signature(self.secret, timestamp, body)
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by Settings
            self.url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(f"{type(exc).__name__}: {reason}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"answered {status}")


def channels_from(settings: Settings) -> list[Channel]:
    channels: list[Channel] = []
    if settings.alert_email_to:
        channels.append(
            EmailChannel(
                recipients=tuple(settings.alert_email_to),
                sender=settings.alert_email_from,
                relay_host=settings.alert_smtp_host,
                relay_port=settings.alert_smtp_port,
                timeout=settings.alert_timeout_seconds,
            )
        )
    secret = settings.alert_webhook_secret
    key = secret.get_secret_value().encode() if secret is not None else None
    channels += [
        WebhookChannel(url, settings.alert_timeout_seconds, key) for url in settings.alert_webhooks
    ]
    return channels
