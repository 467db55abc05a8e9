"""The monitor's webhook POSTs, received by a real HTTP server on loopback: signed with the
configured secret (checked here with an HMAC computed independently), unsigned without one,
and the secret never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from mailwarden.health.alerts import Notice, WebhookChannel, channels_from
from mailwarden.settings import Settings

SECRET = "a-webhook-secret-of-forty-characters-xyz"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    posts: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    posts: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            posts.append(Received(dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()


def notice() -> Notice:
    return Notice(
        kind="alert",
        host="mx1",
        check="dovecot",
        status="critical",
        detail="not running: no master process",
        opened_at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
    )


def settings(**values: Any) -> Settings:
    return Settings(database_url="sqlite://", **values)


def test_a_configured_secret_signs_the_timestamp_and_the_exact_body(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    (channel,) = channels_from(settings(alert_webhooks=[receiver.url], alert_webhook_secret=SECRET))
    before = int(time.time())
    channel.send(notice())
    (post,) = receiver.posts

    timestamp = post.headers["X-Mailwarden-Timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + post.body, hashlib.sha256)
    assert post.headers["X-Mailwarden-Signature"] == f"sha256={expected.hexdigest()}"
    assert json.loads(post.body)["check"] == "dovecot"

    # A receiver checking the signature refuses a changed body or another timestamp.
    forged = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + b"{}", hashlib.sha256)
    assert post.headers["X-Mailwarden-Signature"] != f"sha256={forged.hexdigest()}"
    replayed = hmac.new(SECRET.encode(), f"{before - 3600}.".encode() + post.body, hashlib.sha256)
    assert post.headers["X-Mailwarden-Signature"] != f"sha256={replayed.hexdigest()}"
    # The secret itself never travels, and the channel does not show it.
    assert SECRET.encode() not in post.body
    assert all(SECRET not in value for value in post.headers.values())
    assert SECRET not in repr(channel)
    assert SECRET not in channel.name


def test_without_a_secret_the_post_carries_no_signature(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    (channel,) = channels_from(settings(alert_webhooks=[receiver.url]))
    assert isinstance(channel, WebhookChannel)
    channel.send(notice())
    (post,) = receiver.posts
    assert "X-Mailwarden-Signature" not in post.headers
    assert "X-Mailwarden-Timestamp" not in post.headers


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_short_secret_is_refused_naming_the_setting(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    with pytest.raises(ValidationError, match="alert_webhook_secret") as refused:
        settings(alert_webhook_secret=secret)
    assert "at least 32 characters" in str(refused.value)
    if secret:
        assert secret not in str(refused.value).replace("alert_webhook_secret", "")
