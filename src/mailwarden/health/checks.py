"""The health checks: each one small, returning one CheckResult (name, status, value, detail).

Checks that need the host's own tools run through its HostRunner (this machine or SSH): Postfix
and Dovecot running, the queue, the disk of the mail root. Checks of the listeners connect from
mailwarden to the host's probe address, as a client would: the SMTP and IMAP banners, and the
certificates they present after STARTTLS (or at once on 465 and 993).

A certificate is read without being trusted: the check is about its expiry date, and a
self-signed or mismatched certificate must still have its date reported. Nothing is sent over
those connections after the handshake.

Values: queue in messages, queue_age in seconds, disk as the used ratio (0..1), smtp/imap in
seconds to the banner, smtp_tls/imap_tls in seconds left before the certificate expires.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from mailwarden.settings import Settings
from mailwarden.stack.hosts import CommandFailed, HostRunner, HostSpec
from mailwarden.stack.postfix.queue import parse_queue, stream_lines

from .schemas import CheckResult, Status

CONNECTION = "connection"
POSTFIX = "postfix"
DOVECOT = "dovecot"
QUEUE = "queue"
QUEUE_AGE = "queue_age"
DISK = "disk"
SMTP = "smtp"
IMAP = "imap"
SMTP_TLS = "smtp_tls"
IMAP_TLS = "imap_tls"
DATABASE = "database"
# The checks that run on the host; when it cannot be reached they are reported as unknown.
ON_HOST = (POSTFIX, DOVECOT, QUEUE, QUEUE_AGE, DISK)
# Ports where TLS starts at once instead of after STARTTLS.
IMPLICIT_TLS_PORTS = {465: SMTP, 993: IMAP}
# No command of a check should take this long; a hung daemon must not hang the monitor.
COMMAND_TIMEOUT_SECONDS = 30.0
_BANNER_BYTES = 512
_DETAIL_CHARS = 500
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    queue_messages: tuple[int, int]
    queue_age_seconds: tuple[float, float]
    disk_ratio: tuple[float, float]
    cert_seconds: tuple[float, float]
    probe_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            queue_messages=(
                settings.health_queue_messages_warning,
                settings.health_queue_messages_critical,
            ),
            queue_age_seconds=(
                settings.health_queue_age_warning_minutes * 60.0,
                settings.health_queue_age_critical_minutes * 60.0,
            ),
            disk_ratio=(
                settings.health_disk_percent_warning / 100,
                settings.health_disk_percent_critical / 100,
            ),
            cert_seconds=(
                settings.health_cert_days_warning * _DAY,
                settings.health_cert_days_critical * _DAY,
            ),
            probe_timeout=settings.health_probe_timeout_seconds,
        )


def result(
    name: str, status: Status, detail: str, now: datetime, value: float | None = None
) -> CheckResult:
    clean = " ".join(detail.split())  # one line, whatever a daemon printed
    return CheckResult(
        name=name, status=status, value=value, detail=clean[:_DETAIL_CHARS], checked_at=now
    )


def at_least(value: float, limits: tuple[float, float]) -> Status:
    """Critical at or above the second limit, warning at or above the first."""
    warning, critical = limits
    if value >= critical:
        return Status.CRITICAL
    return Status.WARNING if value >= warning else Status.OK


def at_most(value: float, limits: tuple[float, float]) -> Status:
    """Critical at or below the second limit, warning at or below the first."""
    warning, critical = limits
    if value <= critical:
        return Status.CRITICAL
    return Status.WARNING if value <= warning else Status.OK


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# --- on the host ------------------------------------------------------------------------------


def postfix_running(runner: HostRunner, spec: HostSpec, now: datetime) -> CheckResult:
    """`postfix status` exits 0 only while the master process runs."""
    try:
        done = runner.run(
            spec.postfix_command("postfix", "status"), timeout=COMMAND_TIMEOUT_SECONDS
        )
    except CommandFailed as exc:
        return result(POSTFIX, Status.CRITICAL, exc.detail, now)
    if done.ok:
        return result(POSTFIX, Status.OK, "running", now)
    # Postfix writes its reason to its log, not to a pipe: say what we know.
    reason = _first_line(done.error_text()) if done.stderr.strip() else "the master is not running"
    return result(POSTFIX, Status.CRITICAL, f"not running: {reason}", now)


def dovecot_running(runner: HostRunner, spec: HostSpec, now: datetime) -> CheckResult:
    """`doveadm service status` talks to the master process: it fails when Dovecot is down."""
    try:
        done = runner.run(
            spec.doveadm_command("service", "status"), timeout=COMMAND_TIMEOUT_SECONDS
        )
    except CommandFailed as exc:
        return result(DOVECOT, Status.CRITICAL, exc.detail, now)
    if done.ok:
        return result(DOVECOT, Status.OK, "running", now)
    return result(DOVECOT, Status.CRITICAL, f"not running: {_first_line(done.error_text())}", now)


def queue_figures(lines: Iterable[bytes]) -> tuple[int, int | None]:
    """(messages, oldest arrival time) from `postqueue -j`, read by the queue's own parser.
    Only the count and the minimum are kept, however long the queue."""
    count = 0
    oldest: int | None = None
    for entry in parse_queue(lines):
        count += 1
        if oldest is None or entry.arrival_time < oldest:
            oldest = entry.arrival_time
    return count, oldest


def queue(
    runner: HostRunner, spec: HostSpec, thresholds: Thresholds, now: datetime
) -> list[CheckResult]:
    """The queue's size and the age of its oldest message (deferred mail that does not leave),
    streamed: a queue of a million messages is counted, never held."""
    command = spec.postfix_command("postqueue", "-j")
    try:
        count, oldest = queue_figures(
            stream_lines(runner.stream(command, timeout=COMMAND_TIMEOUT_SECONDS))
        )
    except CommandFailed as exc:
        return [result(QUEUE, Status.UNKNOWN, exc.detail, now), _age_unknown(now)]
    except (ValueError, AttributeError) as exc:
        detail = f"postqueue -j printed what is not its JSON format: {exc}"
        return [result(QUEUE, Status.UNKNOWN, detail, now), _age_unknown(now)]
    size = result(
        QUEUE,
        at_least(count, thresholds.queue_messages),
        f"{count} message{'s' if count != 1 else ''} queued",
        now,
        float(count),
    )
    if oldest is None:
        return [size, result(QUEUE_AGE, Status.OK, "the queue is empty", now, 0.0)]
    age = max(0.0, now.timestamp() - oldest)
    return [
        size,
        result(
            QUEUE_AGE,
            at_least(age, thresholds.queue_age_seconds),
            f"the oldest message arrived {_duration(age)} ago",
            now,
            age,
        ),
    ]


def _age_unknown(now: datetime) -> CheckResult:
    return result(QUEUE_AGE, Status.UNKNOWN, "the queue could not be read", now)


def disk_figures(output: str) -> tuple[int, int, str]:
    """(used KiB, available KiB, mount point) from `df -P -k`: its second line."""
    lines = output.strip().splitlines()
    if len(lines) < 2:
        raise ValueError("df printed no file system line")
    fields = lines[-1].split(None, 5)
    if len(fields) < 6:
        raise ValueError(f"unexpected df line: {lines[-1]!r}")
    return int(fields[2]), int(fields[3]), fields[5]


def disk(runner: HostRunner, spec: HostSpec, thresholds: Thresholds, now: datetime) -> CheckResult:
    """How full the file system of the mail root is (used / (used + available), as df shows
    it: the blocks reserved for root count as unavailable)."""
    try:
        done = runner.run(["df", "-P", "-k", "--", spec.mail_root], timeout=COMMAND_TIMEOUT_SECONDS)
    except CommandFailed as exc:
        return result(DISK, Status.UNKNOWN, exc.detail, now)
    if not done.ok:
        return result(DISK, Status.UNKNOWN, f"df failed: {_first_line(done.error_text())}", now)
    try:
        used, available, mount = disk_figures(done.text())
    except ValueError as exc:
        return result(DISK, Status.UNKNOWN, str(exc), now)
    total = used + available
    ratio = used / total if total else 1.0
    detail = (
        f"{ratio:.0%} used of {total / 1024 / 1024:.1f} GiB on {mount} "
        f"({available / 1024 / 1024:.1f} GiB free) for {spec.mail_root}"
    )
    return result(DISK, at_least(ratio, thresholds.disk_ratio), detail, now, ratio)


# --- the listeners, from mailwarden -----------------------------------------------------------


def _banner(address: str, port: int, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    with socket.create_connection((address, port), timeout=timeout) as connection:
        connection.settimeout(timeout)
        received = b""
        while b"\n" not in received and len(received) < _BANNER_BYTES:
            chunk = connection.recv(_BANNER_BYTES)
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    return received.decode("utf-8", "replace").strip(), elapsed


def _banner_check(
    name: str, expected: tuple[str, ...], address: str, port: int, timeout: float, now: datetime
) -> CheckResult:
    where = f"{address}:{port}"
    try:
        banner, elapsed = _banner(address, port, timeout)
    except OSError as exc:
        return result(name, Status.CRITICAL, f"no answer at {where}: {exc}", now)
    if banner.startswith(expected):
        return result(name, Status.OK, f"{where} answered {banner}", now, elapsed)
    shown = banner or "nothing (the connection was closed)"
    return result(name, Status.CRITICAL, f"{where} answered {shown}", now, elapsed)


def smtp_banner(address: str, port: int, timeout: float, now: datetime) -> CheckResult:
    """A greeting that starts with 220 (554 means the server refuses service)."""
    if port in IMPLICIT_TLS_PORTS:
        return _tls_banner_check(SMTP, ("220 ",), address, port, timeout, now)
    return _banner_check(SMTP, ("220 ", "220-"), address, port, timeout, now)


def imap_banner(address: str, port: int, timeout: float, now: datetime) -> CheckResult:
    """A greeting `* OK` (or `* PREAUTH`); `* BYE` means it refuses the connection."""
    if port in IMPLICIT_TLS_PORTS:
        return _tls_banner_check(IMAP, ("* OK", "* PREAUTH"), address, port, timeout, now)
    return _banner_check(IMAP, ("* OK", "* PREAUTH"), address, port, timeout, now)


def _tls_banner_check(
    name: str, expected: tuple[str, ...], address: str, port: int, timeout: float, now: datetime
) -> CheckResult:
    where = f"{address}:{port}"
    started = time.monotonic()
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            _unverified_context().wrap_socket(raw) as connection,
        ):
            banner = connection.recv(_BANNER_BYTES).decode("utf-8", "replace").strip()
    except OSError as exc:
        return result(name, Status.CRITICAL, f"no answer at {where}: {exc}", now)
    elapsed = time.monotonic() - started
    status = Status.OK if banner.startswith(expected) else Status.CRITICAL
    return result(name, status, f"{where} answered {banner or 'nothing'} over TLS", now, elapsed)


def _unverified_context() -> ssl.SSLContext:
    """TLS that accepts any certificate: the expiry check must read self-signed, expired and
    mismatched certificates too. Nothing secret travels over these connections."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class NotOffered(Exception):
    """The listener does not offer TLS."""


def smtp_certificate(address: str, port: int, timeout: float) -> bytes:
    """The DER certificate the SMTP listener presents after STARTTLS (at once on 465)."""
    context = _unverified_context()
    client: smtplib.SMTP
    if port in IMPLICIT_TLS_PORTS:
        client = smtplib.SMTP_SSL(
            address, port, local_hostname=socket.gethostname(), timeout=timeout, context=context
        )
    else:
        client = smtplib.SMTP(address, port, local_hostname=socket.gethostname(), timeout=timeout)
    with client:
        if port not in IMPLICIT_TLS_PORTS:
            client.ehlo()
            if not client.has_extn("starttls"):
                raise NotOffered("the server does not offer STARTTLS")
            client.starttls(context=context)
        return _peer_certificate(client.sock)


def imap_certificate(address: str, port: int, timeout: float) -> bytes:
    """The DER certificate the IMAP listener presents after STARTTLS (at once on 993)."""
    context = _unverified_context()
    client: imaplib.IMAP4
    if port in IMPLICIT_TLS_PORTS:
        client = imaplib.IMAP4_SSL(address, port, ssl_context=context, timeout=timeout)
    else:
        client = imaplib.IMAP4(address, port, timeout=timeout)
    try:
        if port not in IMPLICIT_TLS_PORTS:
            if "STARTTLS" not in client.capabilities:
                raise NotOffered("the server does not offer STARTTLS")
            client.starttls(ssl_context=context)
        return _peer_certificate(client.sock)
    finally:
        client.shutdown()


def _peer_certificate(connection: socket.socket | None) -> bytes:
    if not isinstance(connection, ssl.SSLSocket):
        raise ssl.SSLError("the connection is not encrypted")
    certificate = connection.getpeercert(binary_form=True)
    if not certificate:
        raise ssl.SSLError("the server presented no certificate")
    return certificate


def certificate_check(
    name: str,
    fetch: Callable[[str, int, float], bytes],
    address: str,
    port: int,
    thresholds: Thresholds,
    now: datetime,
) -> CheckResult:
    """Days left on the certificate of a listener. Unknown when TLS is not offered or the
    listener does not answer at all (its banner check reports that); critical when the TLS
    handshake fails or the certificate is (nearly) expired."""
    where = f"{address}:{port}"
    try:
        der = fetch(address, port, thresholds.probe_timeout)
    except NotOffered as exc:
        return result(name, Status.UNKNOWN, f"TLS not offered at {where}: {exc}", now)
    except (ssl.SSLError, smtplib.SMTPException, imaplib.IMAP4.error) as exc:
        return result(name, Status.CRITICAL, f"TLS failed at {where}: {exc}", now)
    except OSError as exc:
        return result(name, Status.UNKNOWN, f"could not connect to {where}: {exc}", now)
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return result(
            name, Status.CRITICAL, f"{where} presented an unreadable certificate: {exc}", now
        )
    expires = certificate.not_valid_after_utc
    left = (expires - now).total_seconds()
    subject = _common_name(certificate) or certificate.subject.rfc4514_string() or "(no subject)"
    when = f"{expires:%Y-%m-%d %H:%M} UTC"
    if left < 0:
        detail = f"the certificate of {subject} at {where} expired {when}"
    else:
        detail = (
            f"the certificate of {subject} at {where} expires {when}, in {left / _DAY:.1f} days"
        )
    return result(name, at_most(left, thresholds.cert_seconds), detail, now, left)


def _common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def database(reachable: bool, now: datetime) -> CheckResult:
    if reachable:
        return result(DATABASE, Status.OK, "the database answers", now)
    return result(DATABASE, Status.CRITICAL, "the database does not answer", now)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * _DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / _DAY:.1f} days"
