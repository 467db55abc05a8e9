"""The hot loop: aggregate a stretch of log bytes into a `Partial`.

A chunk (whole lines, a few MB) is cut into runs of lines that share their clock hour; the
run's hour is checked with two `bytes.count` calls rather than read from every line. Within a
run one `findall` of `records.POSTFIX_LINE` and one of `records.DOVECOT_LINE` (both start with a
literal, so the regex engine skips to the next candidate in C) return only the lines that
matter, and a small Python loop follows pflogsumm's rules for each.

A `Partial` covers one stretch of one source. Message state that crosses its start (a size
logged before the stretch, a client line logged before it) is kept aside as "foreign" items
and resolved by `Partial.absorb` against what came before, in log order. `finish()` turns the
byte-keyed counts into `tallies.Tallies` (decoded, per domain) where the stretch was read, so
the joining process only adds them up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from . import records
from . import tallies as T
from .records import DOVECOT_LINE, HOUR_KEY, PICKUP, POSTFIX_LINE

# Indexes into a per-hour counter list.
RECEIVED, DELIVERED, FORWARDED, DEFERRALS, BOUNCED = 0, 1, 2, 3, 4
REJECTED, REJECT_WARNINGS, HELD, DISCARDED = 5, 6, 7, 8
BYTES_RECEIVED, BYTES_DELIVERED = 9, 10
COUNTERS = 11

REJECT_KINDS = {
    b"reject": REJECTED,
    b"reject_warning": REJECT_WARNINGS,
    b"warning": REJECT_WARNINGS,
    b"hold": HELD,
    b"discard": DISCARDED,
}
_SMTPD = (b"smtpd", b"postscreen")
_CLEANUP_KINDS = (b"reject", b"milter-reject", b"warning", b"hold", b"discard")
_NOT_DELIVERY_AGENTS = (b"smtpd", b"postscreen", b"master")

ReasonCounts = dict[bytes, Counter[bytes]]


class Partial:
    """What one stretch of log said, with byte keys (decoded once, at the end)."""

    def __init__(self, reference: datetime | None, hourly: bool) -> None:
        self.reference = reference
        self.hourly = hourly
        self.lines = 0
        self.bytes = 0
        self.first: bytes | None = None  # the first line's head (parsed at the end)
        self.last: bytes | None = None
        self.hours: dict[bytes, list[int]] = {}
        self.deferred: dict[bytes, set[bytes]] = {}
        self.senders: Counter[bytes] = Counter()
        self.sender_bytes: Counter[bytes] = Counter()
        # Sending domains of senders without one (from=<>): the client's domain.
        self.fallback_domains: Counter[bytes] = Counter()
        self.fallback_domain_bytes: Counter[bytes] = Counter()
        self.recipients: Counter[bytes] = Counter()
        self.recipient_bytes: Counter[bytes] = Counter()
        self.deferred_recipients: Counter[bytes] = Counter()
        # (kind: REJECTED, REJECT_WARNINGS, HELD or DISCARDED, stage, reason, detail) -> count
        self.rejects: Counter[tuple[int, bytes, bytes, bytes]] = Counter()
        self.deferral_reasons: ReasonCounts = {}
        self.bounce_reasons: ReasonCounts = {}
        self.warnings: ReasonCounts = {}
        self.sasl_failures = 0
        self.sasl_clients: Counter[bytes] = Counter()
        self.sasl_usernames: Counter[bytes] = Counter()
        # Dovecot lines as DOVECOT_LINE's groups, counted (see dovecot_activity()).
        self.dovecot: Counter[tuple[bytes, ...]] = Counter()
        self.no_size = 0
        # hour key -> Counter, only when hourly
        self.hour_senders: dict[bytes, Counter[bytes]] = {}
        self.hour_recipients: dict[bytes, Counter[bytes]] = {}
        self.hour_fallback_domains: dict[bytes, Counter[bytes]] = {}
        self.hour_rejects: dict[bytes, Counter[bytes]] = {}
        # Message state: queue id -> size (until "removed"), queue id -> client (until queued).
        self.sizes: dict[bytes, int] = {}
        self.received: dict[bytes, bytes] = {}
        # What `finish()` makes of the counts above.
        self.tallies = T.Tallies()
        self.hour_tallies: dict[bytes, T.HourTallies] = {}
        # Lines about messages this stretch did not see begin.
        self.foreign_activations: list[tuple[bytes, bytes, int, bytes]] = []
        self.foreign_deliveries: list[tuple[bytes, bytes, bytes]] = []
        self.foreign_removals: list[bytes] = []

    # --- scanning ---------------------------------------------------------------------------

    def scan(self, buf: bytes, end: int | None = None) -> None:
        """Add whole lines, `buf[:end]` (ending with a newline), to this stretch."""
        size = len(buf) if end is None else end
        self.bytes += size
        for start, end, key in _hour_runs(buf, size, self):
            self._run(buf, start, end, key)

    def _counts(self, key: bytes) -> list[int]:
        counts = self.hours.get(key)
        if counts is None:
            counts = self.hours[key] = [0] * COUNTERS
        return counts

    def _run(self, buf: bytes, start: int, end: int, key: bytes) -> None:
        counts = self._counts(key)
        sizes = self.sizes
        received = self.received
        senders: list[bytes] = []
        recipients: list[bytes] = []
        sender_bytes = self.sender_bytes
        recipient_bytes = self.recipient_bytes
        # The frequent counts in locals (added to the hour's list at the end), as are
        # the names passed to Counter.update in one call.
        received_count = bytes_received = delivered_bytes = 0
        for (
            cmd,
            warning,
            bare_kind,
            bare_rest,
            qid,
            client,
            sender,
            size,
            removed,
            recipient,
            relay,
            status,
            rest,
            kind,
            kind_rest,
            pickup,
        ) in POSTFIX_LINE.findall(buf, start, end):
            if size:
                if sizes.get(qid) or cmd in _NOT_DELIVERY_AGENTS or (b"/" in cmd and _smtpd(cmd)):
                    continue
                nbytes = int(size)
                sizes[qid] = nbytes
                origin = received.pop(qid, None)
                if origin is None:
                    self.foreign_activations.append((qid, sender, nbytes, key))
                    continue
                bytes_received += nbytes
                sender_bytes[sender] = sender_bytes.get(sender, 0) + nbytes
                senders.append(sender)
                at = sender.find(b"@")
                if at <= 0 or at == len(sender) - 1:  # no domain, as pflogsumm sees it
                    self._count_fallback_domain(key, sender, nbytes, origin)
            elif removed:
                if sizes.pop(qid, None) is None and received.pop(qid, None) is None:
                    self.foreign_removals.append(qid)
            elif status:
                if cmd in _NOT_DELIVERY_AGENTS or (b"/" in cmd and _smtpd(cmd)):
                    continue
                if status == b"sent":
                    if b"forwarded as " in rest:
                        counts[FORWARDED] += 1
                        continue
                    recipients.append(recipient)
                    nbytes = sizes.get(qid, 0)
                    if nbytes:
                        delivered_bytes += nbytes
                        recipient_bytes[recipient] = recipient_bytes.get(recipient, 0) + nbytes
                    else:
                        self.foreign_deliveries.append((qid, recipient, key))
                elif status == b"deferred":
                    counts[DEFERRALS] += 1
                    self.deferred.setdefault(key, set()).add(qid)
                    self.deferred_recipients[recipient] += 1
                    reason = records.deferral_reason(rest)
                    group = records.daemon(cmd)
                    self.deferral_reasons.setdefault(group, Counter())[reason] += 1
                elif status == b"bounced":
                    counts[BOUNCED] += 1
                    reason = records.bounce_reason(rest)
                    self.bounce_reasons.setdefault(relay, Counter())[reason] += 1
            elif client:
                if cmd in _SMTPD or records.daemon(cmd) in _SMTPD:
                    received_count += 1
                    received[qid] = client
            elif kind:
                self._reject_line(key, counts, records.daemon(cmd), kind, kind_rest, queued=True)
            elif warning:
                self._warning(key, counts, records.daemon(cmd), warning)
            elif bare_kind:
                cmd = records.daemon(cmd)
                self._reject_line(key, counts, cmd, bare_kind, bare_rest, queued=False)
            elif pickup and cmd == b"pickup":
                counts[RECEIVED] += 1
                received[qid] = PICKUP
        counts[RECEIVED] += received_count
        counts[BYTES_RECEIVED] += bytes_received
        counts[DELIVERED] += len(recipients)
        counts[BYTES_DELIVERED] += delivered_bytes
        if senders:
            self.senders.update(senders)
            if self.hourly:
                self.hour_senders.setdefault(key, Counter()).update(senders)
        if recipients:
            self.recipients.update(recipients)
            if self.hourly:
                self.hour_recipients.setdefault(key, Counter()).update(recipients)
        self._dovecot(buf, start, end)

    def _count_fallback_domain(self, key: bytes, sender: bytes, nbytes: int, origin: bytes) -> None:
        domain = fallback_domain(sender, origin)
        self.fallback_domains[domain] += 1
        self.fallback_domain_bytes[domain] += nbytes
        if self.hourly:
            self.hour_fallback_domains.setdefault(key, Counter())[domain] += 1

    def _reject_line(
        self, key: bytes, counts: list[int], cmd: bytes, kind: bytes, rest: bytes, queued: bool
    ) -> None:
        if cmd == b"cleanup" and kind in _CLEANUP_KINDS:
            check = records.cleanup_check(kind, rest)
            if check is not None:
                check_kind, stage, detail = check
                self._add_reject(key, counts, REJECT_KINDS[check_kind], cmd, stage, detail)
                return
        if kind == b"warning" or kind == b"milter-reject":
            return
        if queued and cmd not in _SMTPD:
            return
        stage, reason, detail = records.smtpd_reject(kind, rest)
        self._add_reject(key, counts, REJECT_KINDS[kind], stage, reason, detail)

    def _add_reject(
        self, key: bytes, counts: list[int], kind: int, stage: bytes, reason: bytes, detail: bytes
    ) -> None:
        counts[kind] += 1
        row = (kind, stage, reason, detail)
        self.rejects[row] = self.rejects.get(row, 0) + 1
        if self.hourly and kind == REJECTED:
            self.hour_rejects.setdefault(key, Counter())[stage + b": " + reason] += 1

    def _warning(self, key: bytes, counts: list[int], cmd: bytes, text: bytes) -> None:
        if cmd == b"cleanup" and records.cleanup_check(b"warning", text) is not None:
            self._reject_line(key, counts, cmd, b"warning", text, queued=False)
            return
        self.warnings.setdefault(cmd, Counter())[records.warning_reason(text)] += 1
        if cmd == b"smtpd":
            failure = records.SASL_FAILURE.match(text)
            if failure is not None:
                self.sasl_failures += 1
                self.sasl_clients[failure[1]] += 1
                username = records.SASL_USERNAME.search(text, failure.end())
                if username is not None:
                    self.sasl_usernames[username[1]] += 1

    def _dovecot(self, buf: bytes, start: int, end: int) -> None:
        self.dovecot.update(DOVECOT_LINE.findall(buf, start, end))

    # --- joining stretches ------------------------------------------------------------------

    def finish(self) -> None:
        """Trade the byte-keyed counts for their `Tallies` (decoded, domains summed)."""
        self.finish_hours()
        tallies = self.tallies
        tallies.senders, tallies.sender_bytes = T.paired(
            self.senders, self.sender_bytes, sender=True
        )
        self.senders, self.sender_bytes = Counter(), Counter()
        tallies.sending_domains = T.sending_domains(tallies.senders, self.fallback_domains)
        tallies.sending_domain_bytes = T.sending_domains(
            tallies.sender_bytes, self.fallback_domain_bytes
        )
        tallies.recipients, tallies.recipient_bytes = T.paired(
            self.recipients, self.recipient_bytes, sender=False
        )
        self.recipients, self.recipient_bytes = Counter(), Counter()
        tallies.recipient_domains = T.recipient_domains(tallies.recipients)
        tallies.recipient_domain_bytes = T.recipient_domains(tallies.recipient_bytes)
        tallies.recipient_domain_deferrals = T.recipient_domains(
            T.addresses(self.deferred_recipients)
        )
        text = T.text
        rejects = self.rejects
        named: dict[tuple[int, bytes, bytes], Counter[str]] = {}
        while rejects:
            (kind, stage, reason, detail), count = rejects.popitem()
            details = named.get((kind, stage, reason))
            if details is None:
                details = named[(kind, stage, reason)] = Counter()
                tallies.rejects[(kind, text(stage), text(reason))] = details
            details[text(detail)] += count
        tallies.deferral_reasons = T.grouped(self.deferral_reasons)
        tallies.bounce_reasons = T.grouped(self.bounce_reasons)
        tallies.warnings = T.grouped(self.warnings)
        tallies.sasl_clients = T.decoded(self.sasl_clients)
        tallies.sasl_usernames = T.decoded(self.sasl_usernames)
        for row, count in self.dovecot.items():
            tallies.dovecot[tuple(text(value) for value in row)] += count
        self.release()

    def finish_hours(self) -> None:
        """The per-hour counts (`hourly`) as `HourTallies`, still keyed by the hour's stamp."""
        for key in set(self.hour_senders) | set(self.hour_recipients) | set(self.hour_rejects):
            hour = self.hour_tallies.setdefault(key, T.HourTallies())
            hour.senders = T.keyed(self.hour_senders.get(key, Counter()), T.sender_text)
            hour.sender_domains = T.sending_domains(
                hour.senders, self.hour_fallback_domains.get(key, Counter())
            )
            hour.recipients = T.addresses(self.hour_recipients.get(key, Counter()))
            hour.recipient_domains = T.recipient_domains(hour.recipients)
            hour.reject_reasons = T.decoded(self.hour_rejects.get(key, Counter()))
        self.hour_senders, self.hour_recipients = {}, {}
        self.hour_fallback_domains, self.hour_rejects = {}, {}

    def release(self) -> None:
        """Let go of the order-independent tables (counted elsewhere or finished)."""
        for name in _RAW_COUNTERS:
            setattr(self, name, Counter())
        for name in _RAW_GROUPS:
            setattr(self, name, {})

    def count_sender(self, key: bytes, sender: bytes, nbytes: int, origin: bytes) -> None:
        """A received message's first queue activation, seen only when joined: its sender
        and size count (into the finished tallies)."""
        tallies = self.tallies
        self._counts(key)[BYTES_RECEIVED] += nbytes
        name = T.sender_text(sender)
        tallies.senders[name] += 1
        tallies.sender_bytes[name] += nbytes
        domain = T.sender_domain(name)
        if domain is None:
            domain = T.text(fallback_domain(sender, origin))
        tallies.sending_domains[domain] += 1
        tallies.sending_domain_bytes[domain] += nbytes
        if self.hourly:
            hour = self.hour_tallies.setdefault(key, T.HourTallies())
            hour.senders[name] += 1
            hour.sender_domains[domain] += 1

    def absorb(self, later: Partial) -> None:
        """Take over the message state of the (finished) stretch that follows this one,
        resolving its foreign items against what came before."""
        sizes, received = self.sizes, self.received
        for qid, sender, nbytes, key in later.foreign_activations:
            if sizes.get(qid):
                continue  # already queued before: a later activation, counted then
            origin = received.pop(qid, None)
            if origin is None:
                continue  # not received (a bounce Postfix made itself)
            later.count_sender(key, sender, nbytes, origin)
        tallies = later.tallies
        for qid, recipient, key in later.foreign_deliveries:
            nbytes = sizes.get(qid, 0)
            name = T.address_text(recipient)
            domain = T.recipient_domain(name)
            if nbytes:
                later._counts(key)[BYTES_DELIVERED] += nbytes
            else:
                later.no_size += 1
            tallies.recipient_bytes[name] += nbytes
            tallies.recipient_domain_bytes[domain] += nbytes
        for qid in later.foreign_removals:
            sizes.pop(qid, None)
            received.pop(qid, None)
        sizes.update(later.sizes)
        received.update(later.received)
        later.sizes = {}
        later.received = {}
        later.foreign_activations, later.foreign_deliveries, later.foreign_removals = [], [], []


_RAW_COUNTERS = (
    "senders",
    "sender_bytes",
    "fallback_domains",
    "fallback_domain_bytes",
    "recipients",
    "recipient_bytes",
    "deferred_recipients",
    "rejects",
    "sasl_clients",
    "sasl_usernames",
    "dovecot",
)
_RAW_GROUPS = ("deferral_reasons", "bounce_reasons", "warnings")


def _smtpd(cmd: bytes) -> bool:
    """ "submission/smtpd" and "smtps/smtpd" are smtpd to pflogsumm, which never reads a
    delivery or a queue activation from it."""
    return records.daemon(cmd) in _NOT_DELIVERY_AGENTS


def fallback_domain(sender: bytes, origin: bytes) -> bytes:
    """pflogsumm's sending "domain" of a sender without one: the client's, or the sender."""
    return sender or b"from=<>" if origin == PICKUP else records.gimme_domain(origin)


def _hour_runs(buf: bytes, size: int, partial: Partial) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, hour key) of each run of lines in `buf` stamped with one clock hour.

    Lines without a recognised stamp are skipped (pflogsumm skips them too). The common case,
    a log in time order, takes a regex match, an rfind and two counts per run.
    """
    pos = 0
    while pos < size:
        stamp = HOUR_KEY.match(buf, pos)
        line_end = buf.find(b"\n", pos, size) + 1 or size
        if stamp is None:
            partial.lines += 1
            pos = line_end
            continue
        key = stamp[0]
        if partial.first is None:
            partial.first = buf[pos:line_end]
        marker = b"\n" + key
        last = buf.rfind(marker, pos, size)
        end = (buf.find(b"\n", last + 1, size) + 1 or size) if last >= 0 else line_end
        lines = buf.count(b"\n", pos, end)
        if lines != 1 + buf.count(marker, pos, end - 1):
            # Lines from another hour in between (clock steps, merged logs): take this line's
            # neighbours one by one while they share its hour.
            end = line_end
            lines = 1
            while end < size and buf.startswith(key, end, size):
                end = buf.find(b"\n", end, size) + 1 or size
                lines += 1
        partial.lines += lines
        last_start = buf.rfind(b"\n", pos, end - 1) + 1
        partial.last = buf[max(last_start, pos) : end]
        yield pos, end, key
        pos = end
