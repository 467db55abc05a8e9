"""Health checks and the monitor against real daemons, reached locally and over real SSH.

- every check against the running shared stack (which offers no TLS: the certificate checks
  say so and are `unknown`);
- the certificate checks against small STARTTLS servers started here, with fresh self-signed
  certificates of known expiry;
- the monitor against a private stack of this module whose Dovecot is stopped for real: one
  alert per incident (to a webhook receiver here, and by e-mail through the shared stack's
  Postfix into a mailbox read over IMAP), none on the next run, one recovery notice once
  Dovecot runs again; a failing webhook blocks none of the other channels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from mailwarden.audit import service as audit
from mailwarden.db.engine import session_factory
from mailwarden.health import checks
from mailwarden.health import service as health
from mailwarden.health.alerts import Notice
from mailwarden.health.schemas import Status
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.stack.devstack.control import DOVECOT
from mailwarden.stack.devstack.instance import StackLayout
from mailwarden.stack.postfix.queue import stream_lines

from .conftest import (
    PASSWORD,
    MailStack,
    StackHost,
    free_ports,
    run_mailwarden,
    stack_environment,
    stack_host_fields,
    started_stack,
)
from .mail import poll

WEBHOOK_SECRET = "e2e-webhook-secret-0123456789abcdef"

DAY = 86400.0


def test_every_check_is_ok_against_the_running_stack(stack_host: StackHost) -> None:
    result = stack_host.run(lambda uow, actor: health.run_checks(uow, actor, stack_host.name))

    by_name = {item.name: item for item in result.checks}
    assert result.status is Status.OK, result.checks
    for name in ("connection", "postfix", "dovecot", "queue", "queue_age", "disk", "smtp", "imap"):
        assert by_name[name].status is Status.OK, by_name[name]
    assert by_name["database"].status is Status.OK
    ports = stack_host.stack.ports
    assert by_name["smtp"].detail.startswith(f"127.0.0.1:{ports['smtp']} answered 220 ")
    assert "* OK" in by_name["imap"].detail
    assert by_name["queue"].value is not None and by_name["queue"].value >= 0
    disk = by_name["disk"].value
    assert disk is not None and 0 < disk < 1
    # The devstack runs without TLS: said so, and not counted as a failure.
    for name in ("smtp_tls", "imap_tls"):
        assert by_name[name].status is Status.UNKNOWN
        assert "TLS not offered" in by_name[name].detail
    expected = "over SSH" if stack_host.transport == "ssh" else "on this machine"
    assert by_name["connection"].detail == f"reached {expected}"


def test_the_queue_figures_count_messages_and_find_the_oldest() -> None:
    lines = "\n".join(
        json.dumps(
            {
                "queue_name": "deferred",
                "queue_id": f"8E6B720C00{n}",
                "arrival_time": 1_700_000_000 + n * 60,
            }
        )
        for n in (3, 1, 2)
    )
    assert checks.queue_figures(stream_lines([(lines + "\n").encode()])) == (3, 1_700_000_060)
    assert checks.queue_figures(stream_lines([b""])) == (0, None)


# --- certificates ---------------------------------------------------------------------------


def _certificate(directory: Path, not_after: datetime) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate that expires at `not_after`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.health.test")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    prefix = uuid.uuid4().hex
    certificate_file = directory / f"{prefix}.crt"
    key_file = directory / f"{prefix}.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate_file, key_file)
    return context


def _line(connection: socket.socket) -> bytes:
    received = b""
    while not received.endswith(b"\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        received += chunk
    return received


class StartTlsServer:
    """A listener that speaks just enough SMTP or IMAP to offer STARTTLS and hand over its
    certificate: what a mail server's listener does before any login."""

    def __init__(self, protocol: str, context: ssl.SSLContext, offer_tls: bool = True) -> None:
        self.protocol = protocol
        self.context = context
        self.offer_tls = offer_tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        # accept() wakes up now and then to notice close().
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(10)
            try:
                self._session(connection)
            except (OSError, ssl.SSLError):
                pass
            finally:
                connection.close()

    def _session(self, connection: socket.socket) -> None:
        if self.protocol == "smtp":
            connection.sendall(b"220 mx.health.test ESMTP\r\n")
            _line(connection)  # EHLO
            extension = b"250 STARTTLS\r\n" if self.offer_tls else b"250 8BITMIME\r\n"
            connection.sendall(b"250-mx.health.test\r\n" + extension)
            if not _line(connection).upper().startswith(b"STARTTLS"):
                connection.sendall(b"221 bye\r\n")
                return
            connection.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        else:
            capability = b"IMAP4rev1 STARTTLS" if self.offer_tls else b"IMAP4rev1"
            connection.sendall(b"* OK [CAPABILITY " + capability + b"] ready\r\n")
            while True:
                line = _line(connection)
                if not line:
                    return
                tag, _, command = line.strip().partition(b" ")
                if command.upper() == b"STARTTLS":
                    connection.sendall(tag + b" OK Begin TLS negotiation now\r\n")
                    break
                connection.sendall(tag + b" OK done\r\n")
        with self.context.wrap_socket(connection, server_side=True) as secured:
            if self.protocol == "smtp":
                if _line(secured).upper().startswith(b"QUIT"):
                    secured.sendall(b"221 bye\r\n")
                return
            # imaplib asks for the capabilities again once TLS is up.
            while line := _line(secured):
                tag, _, command = line.strip().partition(b" ")
                if command.upper() == b"CAPABILITY":
                    secured.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
                secured.sendall(tag + b" OK done\r\n")

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def tls_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mw-tls-") as directory:
        yield Path(directory)


THRESHOLDS = checks.Thresholds(
    queue_messages=(100, 1000),
    queue_age_seconds=(3600, 86400),
    disk_ratio=(0.8, 0.9),
    cert_seconds=(21 * DAY, 7 * DAY),
    probe_timeout=10,
)


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [(90, Status.OK), (10, Status.WARNING), (3, Status.CRITICAL), (-2, Status.CRITICAL)],
)
@pytest.mark.parametrize("protocol", ["smtp", "imap"])
def test_the_certificate_check_reports_the_days_the_certificate_has_left(
    protocol: str, days_left: int, expected: Status, tls_directory: Path
) -> None:
    not_after = (datetime.now(UTC) + timedelta(days=days_left)).replace(microsecond=0)
    server = StartTlsServer(protocol, _certificate(tls_directory, not_after))
    try:
        now = datetime.now(UTC)
        name, fetch = (
            (checks.SMTP_TLS, checks.smtp_certificate)
            if protocol == "smtp"
            else (checks.IMAP_TLS, checks.imap_certificate)
        )
        found = checks.certificate_check(name, fetch, "127.0.0.1", server.port, THRESHOLDS, now)
    finally:
        server.close()
    assert found.status is expected, found.detail
    assert found.value is not None
    # Exactly the certificate's own date: the seconds left from `now` to its notAfter.
    assert found.value == pytest.approx((not_after - now).total_seconds(), abs=1)
    assert "mx.health.test" in found.detail
    assert f"{not_after:%Y-%m-%d %H:%M} UTC" in found.detail
    word = "expired" if days_left < 0 else "expires"
    assert word in found.detail


@pytest.mark.parametrize("protocol", ["smtp", "imap"])
def test_a_listener_without_tls_is_unknown_not_failed(protocol: str, tls_directory: Path) -> None:
    not_after = datetime.now(UTC) + timedelta(days=90)
    server = StartTlsServer(protocol, _certificate(tls_directory, not_after), offer_tls=False)
    try:
        fetch = checks.smtp_certificate if protocol == "smtp" else checks.imap_certificate
        found = checks.certificate_check(
            "tls", fetch, "127.0.0.1", server.port, THRESHOLDS, datetime.now(UTC)
        )
    finally:
        server.close()
    assert found.status is Status.UNKNOWN
    assert found.detail.startswith(f"TLS not offered at 127.0.0.1:{server.port}")


def test_a_listener_that_does_not_answer_is_critical() -> None:
    (port,) = free_ports(1)
    found = checks.smtp_banner("127.0.0.1", port, 5, datetime.now(UTC))
    assert found.status is Status.CRITICAL
    assert found.detail.startswith(f"no answer at 127.0.0.1:{port}")


# --- the monitor against a stack whose Dovecot stops ---------------------------------------


class WebhookReceiver:
    """An HTTP server collecting the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        unsigned: list[bytes] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                # What a receiver does with the monitor's signature (health/alerts.py).
                timestamp = self.headers.get("X-Mailwarden-Timestamp", "")
                expected = hmac.new(
                    WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
                ).hexdigest()
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                signature = self.headers.get("X-Mailwarden-Signature", "")
                if not fresh or not hmac.compare_digest(signature, f"sha256={expected}"):
                    unsigned.append(body)
                    self.send_response(401)
                    self.end_headers()
                    return
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads what arrived, not the access log."""

        self.received = received
        self.unsigned = unsigned
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def private_stack(mail_stack: MailStack) -> Iterator[MailStack]:
    """A stack of this module alone (its own database, ports and daemons): its Dovecot is
    stopped and started again, which the shared stack's other users must never see."""
    with started_stack(mail_stack.backend, "hl") as stack:
        yield stack


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _stop_dovecot(stack: MailStack) -> None:
    conf = str(StackLayout.at(stack.dir).dovecot_conf)
    subprocess.run(["doveadm", "-c", conf, "stop"], check=True, capture_output=True, timeout=30)
    poll(lambda: True if not _port_open(stack.ports["imap"]) else None, 30, "Dovecot to stop")


def _start_dovecot(stack: MailStack) -> None:
    layout = StackLayout.at(stack.dir)
    with layout.startup_log.open("ab") as log:
        subprocess.run(
            [DOVECOT, "-c", str(layout.dovecot_conf)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            check=True,
            timeout=30,
        )
    poll(lambda: True if _port_open(stack.ports["imap"]) else None, 30, "Dovecot to listen")


def _incidents(stack: MailStack) -> list[dict[str, Any]]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT check_name, status, resolved_at, alert_sent_at, recovery_sent_at "
                "FROM health_incidents ORDER BY id"
            )
        ).mappings()
        return [dict(row) for row in rows]


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_a_stopped_dovecot_raises_one_alert_and_one_recovery_notice(
    transport: str, request: pytest.FixtureRequest, private_stack: MailStack, mail_stack: MailStack
) -> None:
    # Where alerts go: a webhook here, one that is down, and a mailbox on the shared stack.
    inbox_domain = mail_stack.new_domain("alerts")
    inbox = f"ops@{inbox_domain}"
    mail_stack.add_mailbox(inbox)
    receiver = WebhookReceiver()
    (closed_port,) = free_ports(1)
    name = f"{transport}-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {"name": name, "transport": transport}
    fields.update(stack_host_fields(private_stack))
    if transport == "ssh":
        server = request.getfixturevalue("ssh_server")
        fields["ssh_target"] = f"{server.user}@{server.host}:{server.port}"
        fields["ssh_key_file"] = str(server.client_key)
        fields["host_key_fingerprint"] = server.host_key_fingerprint
    private_stack.run(lambda uow, actor: hosts.create(uow, actor, parse(HostCreate, fields)))
    environment = stack_environment(private_stack.database_url, private_stack.dir)
    environment.update(
        {
            "MAILWARDEN_ALERT_WEBHOOKS": json.dumps(
                [f"http://127.0.0.1:{closed_port}/down", receiver.url]
            ),
            "MAILWARDEN_ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MAILWARDEN_ALERT_EMAIL_TO": json.dumps([inbox]),
            "MAILWARDEN_ALERT_EMAIL_FROM": f"monitor@{inbox_domain}",
            "MAILWARDEN_ALERT_SMTP_HOST": "127.0.0.1",
            "MAILWARDEN_ALERT_SMTP_PORT": str(mail_stack.ports["smtp"]),
        }
    )

    def monitor() -> str:
        done = run_mailwarden(environment, "monitor", "--host", name, "--once")
        # The webhook that is down fails on its own; the other channels deliver: exit 0.
        assert done.returncode == 0, done.stderr + done.stdout
        assert WEBHOOK_SECRET not in done.stdout + done.stderr
        return done.stdout

    try:
        first = monitor()
        assert f"{name}: ok" in first
        assert receiver.received == []
        assert _incidents(private_stack) == []
        # The results are stored for /metrics and the dashboard.
        page = private_stack.run(lambda uow, actor: health.stored(uow, actor))
        (stored,) = [item for item in page.items if item.host == name]
        assert stored.status is Status.OK
        assert {item.name for item in stored.checks} >= {"postfix", "dovecot", "queue", "disk"}

        _stop_dovecot(private_stack)
        try:
            checked = run_mailwarden(environment, "health", "--host", name, "--json")
            assert checked.returncode == 1, checked.stderr
            found = {item["name"]: item for item in json.loads(checked.stdout)["checks"]}
            assert found["dovecot"]["status"] == "critical"
            assert found["dovecot"]["detail"].startswith("not running:")
            assert found["imap"]["status"] == "critical"
            assert found["postfix"]["status"] == "ok"

            second = monitor()
            assert "opened incident" in second
            assert "NOT sent" in second  # the webhook that is down, reported
            third = monitor()
            assert "opened incident" not in third
            assert "  alert " not in third
        finally:
            _start_dovecot(private_stack)
        fourth = monitor()
        assert "closed incident" in fourth
        fifth = monitor()
        assert "  recovery " not in fifth
        incidents = _incidents(private_stack)
        # What the operator reads afterwards: both incidents, over.
        listed = run_mailwarden(environment, "incidents", "--host", name, "--json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(
            (item["check"], item["resolved_at"] is not None) for item in json.loads(listed.stdout)
        ) == [("dovecot", True), ("imap", True)]
    finally:
        receiver.close()
        private_stack.run(lambda uow, actor: hosts.remove(uow, actor, name))

    # Stopping Dovecot fails two checks: the daemon, and the IMAP listener it served.
    alerts = [body for body in receiver.received if body["kind"] == "alert"]
    recoveries = [body for body in receiver.received if body["kind"] == "recovery"]
    assert sorted(body["check"] for body in alerts) == ["dovecot", "imap"]
    assert sorted(body["check"] for body in recoveries) == ["dovecot", "imap"]
    assert all(body["host"] == name and body["status"] == "critical" for body in alerts)
    assert all(body["status"] == "ok" and body["resolved_at"] for body in recoveries)
    assert len(receiver.received) == 4
    assert receiver.unsigned == [], "every notice carried a valid, fresh signature"
    # The same notices by e-mail, each exactly once.
    subjects = [
        f"[mailwarden] CRITICAL {name} dovecot",
        f"[mailwarden] CRITICAL {name} imap",
        f"[mailwarden] RECOVERED {name} dovecot",
        f"[mailwarden] RECOVERED {name} imap",
    ]
    for subject in subjects:
        mail_stack.mail.wait_for_message(inbox, PASSWORD, subject)
    assert sorted(mail_stack.mail.imap_subjects(inbox, PASSWORD)) == sorted(subjects)
    # Two incidents, both closed, each alerted and recovered once.
    assert sorted(row["check_name"] for row in incidents) == ["dovecot", "imap"]
    for row in incidents:
        assert row["status"] == "critical"
        assert None not in (row["resolved_at"], row["alert_sent_at"], row["recovery_sent_at"])
    # Removing the host removed its results and incidents with it.
    assert _incidents(private_stack) == []


class RecordingChannel:
    """A channel that keeps what it was given (the real channels are proven above)."""

    name = "recorder"

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.notices.append(notice)


def test_a_dry_run_plans_the_incident_and_stores_and_sends_nothing(stack: MailStack) -> None:
    (closed_port,) = free_ports(1)
    name = f"dry-{uuid.uuid4().hex[:8]}"
    fields = {
        "name": name,
        "transport": "local",
        **stack_host_fields(stack),
        "smtp_port": closed_port,
    }
    stack.run(lambda uow, actor: hosts.create(uow, actor, parse(HostCreate, fields)))
    channel = RecordingChannel()
    operator = Actor.local_operator(Channel.CLI)
    try:
        with UnitOfWork(session_factory(stack.engine)(), stack.settings, dry_run=True) as uow:
            planned = health.monitor_host(uow, operator, name, channels=[channel])
            plan = uow.finish()
        assert [(change.object_type, change.key) for change in plan] == [
            ("health_incident", f"{name}/smtp")
        ]
        assert [incident.check for incident in planned.opened] == ["smtp"]
        assert channel.notices == []
        (unchecked,) = [
            item
            for item in stack.run(lambda uow, actor: health.stored(uow, actor)).items
            if item.host == name
        ]
        assert unchecked.checks == []

        for _round in range(2):
            stack.run(lambda uow, actor: health.monitor_host(uow, actor, name, channels=[channel]))
        assert [(notice.kind, notice.check) for notice in channel.notices] == [("alert", "smtp")]
        assert channel.notices[0].detail.startswith(f"no answer at 127.0.0.1:{closed_port}")
        entries = stack.run(
            lambda uow, actor: audit.list_entries(uow, actor, object_key=f"{name}/smtp")
        )
        assert [entry.action for entry in entries.items] == ["health.incident.open"]
    finally:
        stack.run(lambda uow, actor: hosts.remove(uow, actor, name))
