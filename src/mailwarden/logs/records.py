"""Line shapes and pflogsumm's ways of naming things, ported to bytes.

The regular expressions here are the scanner's: each starts with a literal ("postfix",
"dovecot") so that the regex engine's literal search skips the bytes between matches in C.
The helpers below them are exact ports of pflogsumm 1.1.5's subroutines (`gimme_domain`,
`said_string_trimmer`, `proc_smtpd_reject`, ...), so reasons and domains read the same.
"""

from __future__ import annotations

import re
from datetime import date, datetime

# One pass over a chunk finds every Postfix line the summary uses (possessive quantifiers where
# a retry could never match, so a line that does not matter fails fast). Groups, in order:
#  1 the daemon after "postfix/" (smtpd, qmgr, smtp, submission/smtpd ...; `daemon()` names it
#    as pflogsumm does)
#  2 warning text ("prog[pid]: warning: TEXT")
#  3 kind, 4 rest of "prog[pid]: reject: REST" (also reject_warning, hold, discard)
#  5 queue id, then one of:
#    6 client ("QID: client=CLIENT")
#    7 sender, 8 size ("QID: from=<SENDER>, size=SIZE")
#    9 "removed"
#    10 recipient, 11 relay, 12 status, 13 rest of the line (a delivery attempt)
#    14 kind, 15 rest ("QID: reject: REST", also milter-reject, reject_warning, hold, discard,
#       warning: cleanup's header/body checks and smtpd's NOQUEUE rejects)
#    16 "uid"/"sender" (pickup)
POSTFIX_LINE = re.compile(
    rb"postfix/([^\[:\n]*+)\[\d++\]: "
    rb"(?:warning: ([^\n]*)"
    rb"|(reject|reject_warning|hold|discard): ([^\n]*)"
    rb"|(\w++): (?:client=([^,\n]*)"
    rb"|from=<([^>\n]*)>, size=(\d+)"
    rb"|(removed)\n"
    rb"|to=<([^>\n]*)>, (?:orig_to=<[^>\n]*>, )?relay=([^,\n]+), (?:conn_use=[^,\n]+, )?"
    rb"delay=[^,\n]+, (?:delays=[^,\n]+, )?(?:dsn=[^,\n]+, )?status=(\S+)([^\n]*)"
    rb"|((?:milter-)?reject|reject_warning|hold|discard|warning): ([^\n]*)"
    rb"|(uid|sender)=))"
)

# Dovecot, counted as whole rows (a Counter of tuples, in C): 1 protocol; 2 "Login", 3 its user;
# or 4 the user (when named) and 5 the remote ip of an "(auth failed, N attempts ...)" disconnect;
# or 6 the auth process's verdict on a user.
DOVECOT_LINE = re.compile(
    rb"dovecot(?:\[\d++\])?: (?:(\w++)-login: (?:(Login): user=<([^>\n]*+)>"
    rb"|(?:Disconnected|Aborted login)[^\n]*?\(auth failed, "
    rb"(?:[^\n]*?user=<([^>\n]*+)>)?[^\n]*?rip=([^,\s]*+))"
    rb"|auth(?:-worker\(\d++\))?: (?:Info: )?[\w-]++\([^)\n]*+\): "
    rb"(unknown user|Password mismatch))"
)

# The hour of a line: what precedes the minutes, classic syslog or RFC 3339.
HOUR_KEY = re.compile(rb"(?:[A-Z][a-z][a-z] {1,2}\d{1,2} \d\d|\d{4}-\d\d-\d\dT\d\d):")
_CLASSIC_TIME = re.compile(rb"([A-Z][a-z][a-z]) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) ")
_ISO_TIME = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[+-]\d\d:\d\d|Z) ")
MONTHS = {
    name: number
    for number, name in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}


def daemon(cmd: bytes) -> bytes:
    """pflogsumm's name for a daemon: without the smtps/ or submission/ service prefix."""
    if cmd.startswith(b"submission/"):
        return cmd[11:]
    if cmd.startswith(b"smtps/"):
        return cmd[6:]
    return cmd


CLEANUP_CHECK = re.compile(rb"(header|body|END-OF-MESSAGE) (.*)")
SASL_FAILURE = re.compile(rb"(\S+): SASL \S+ authentication failed")
SASL_USERNAME = re.compile(rb", sasl_username=([^\s,]+)")
DEFERRAL_REASON = re.compile(rb" \(([^)\n]+)")
BOUNCE_REASON = re.compile(rb" \((.+)\)")
PICKUP = b"pickup"


class Clock:
    """Line times as naive datetimes; classic stamps get a year as pflogsumm would give them.

    A classic stamp has no year: the year is the reference's (the file's modification time),
    or the year before when the stamp's month is later than the reference's month.
    """

    def __init__(self, reference: datetime | None) -> None:
        self.reference = reference or datetime.now()
        self._hours: dict[bytes, datetime | None] = {}

    def _year(self, month: int) -> int:
        return self.reference.year - 1 if month > self.reference.month else self.reference.year

    def hour_start(self, key: bytes) -> datetime | None:
        """The hour a HOUR_KEY names (e.g. b"Mar  1 13:"), None if it is not a real date."""
        try:
            return self._hours[key]
        except KeyError:
            pass
        result: datetime | None = None
        try:
            if key[:1].isdigit():
                result = datetime(int(key[0:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]))
            else:
                month = MONTHS.get(key[:3])
                day, hour = key[3:-1].split()
                if month is not None:
                    result = datetime(self._year(month), month, int(day), int(hour))
        except ValueError:
            result = None
        self._hours[key] = result
        return result

    def line_time(self, buf: bytes, pos: int) -> datetime | None:
        """The time of the line starting at `pos`, None when it has no recognised stamp."""
        classic = _CLASSIC_TIME.match(buf, pos)
        try:
            if classic is not None:
                month = MONTHS.get(classic[1])
                if month is None:
                    return None
                day, hour, minute, second = (int(classic[n]) for n in range(2, 6))
                return datetime(self._year(month), month, day, hour, minute, second)
            iso = _ISO_TIME.match(buf, pos)
            if iso is not None:
                year, month, day, hour, minute, second = (int(iso[n]) for n in range(1, 7))
                return datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
        return None


def day_of(hour: datetime) -> date:
    return hour.date()


def normalize_address(address: bytes) -> bytes:
    """pflogsumm's `s/(@.+)/\\L$1/`: everything from the first "@" in lower case."""
    at = address.find(b"@")
    if at < 0 or at == len(address) - 1:
        return address
    domain = address[at:]
    lower = domain.lower()
    return address if lower == domain else address[:at] + lower


def recipient_domain(address: bytes) -> bytes:
    """pflogsumm's `s/^[^@]+\\@//`: what follows the first "@" when something precedes it."""
    at = address.find(b"@")
    return address[at + 1 :] if at > 0 else address


def sender_domain(address: bytes) -> bytes | None:
    """pflogsumm's `s/^[^@]+\\@(.+)$/$1/`; None when the sender has no such domain."""
    at = address.find(b"@")
    if at > 0 and at < len(address) - 1:
        return address[at + 1 :]
    return None


_CLIENT_WITH_IP = re.compile(rb"([^\[]*)\[((?:\d{1,3}\.){3}\d{1,3})\]")
_CLIENT_WITH_SLASH = re.compile(rb"([^/]*)/([0-9a-f.:]+)", re.IGNORECASE)
_CLIENT_OTHER = re.compile(rb"([^\[\(/]*)[\[\(/]([^\]\)]+)[\]\)]:?\d*$")
_HOST_TAIL = re.compile(rb"^(.*)\.([^\.]+)\.([^\.]{3}|[^\.]{2,3}\.[^\.]{2})$")


_IP_CHARACTERS = frozenset(b"0123456789abcdefABCDEF.:")


def gimme_domain(client: bytes) -> bytes:
    """pflogsumm's gimme_domain: "mail.example.org[192.0.2.1]" -> "example.org", or the IP."""
    if client.startswith(b"unknown[") and client.endswith(b"]"):
        address = client[8:-1]
        if address and _IP_CHARACTERS.issuperset(address):
            return address  # what the regular expressions below make of it, sooner
    match = (
        _CLIENT_WITH_IP.match(client)
        or _CLIENT_WITH_SLASH.match(client)
        or _CLIENT_OTHER.match(client)
    )
    domain, address = (match[1], match[2]) if match else (b"", b"")
    if domain in (b"", b"unknown"):
        return address
    tail = _HOST_TAIL.match(domain)
    if tail is None:
        return domain
    return (tail[2] + b"." + tail[3]).lower()


_SAID = re.compile(rb"^.* said: ")
_UP_TO_COLON = re.compile(rb"^.*?: *")


def said_string_trimmer(text: bytes, limit: int) -> bytes:
    """pflogsumm's said_string_trimmer: drop "... said: " and "...: " heads, then cut."""
    while len(text) > limit:
        if _SAID.search(text):
            text = _SAID.sub(b"", text, count=1)
        elif b":" in text:
            text = _UP_TO_COLON.sub(b"", text, count=1)
        else:
            return text[: limit - 3] + b"..."
    return text


def string_trimmer(text: bytes, limit: int) -> bytes:
    return text[: limit - 3] + b"..." if len(text) > limit else text


_THREE_DIGITS = re.compile(rb"^\d{3} ")
_CONNECT_TO = re.compile(rb"^connect to ")


def deferral_reason(rest: bytes) -> bytes:
    """The reason pflogsumm files a "status=deferred (...)" under; `rest` follows the status."""
    match = DEFERRAL_REASON.match(rest)
    reason = said_string_trimmer(match[1], 65) if match else b""
    return _CONNECT_TO.sub(b"", _THREE_DIGITS.sub(b"", reason, count=1), count=1)


def bounce_reason(rest: bytes) -> bytes:
    match = BOUNCE_REASON.match(rest)
    reason = said_string_trimmer(match[1], 66) if match else b""
    return _THREE_DIGITS.sub(b"", reason, count=1)


def warning_reason(text: bytes) -> bytes:
    """pflogsumm's `s/^.*warning: //` and a 66-character cut."""
    cut = text.rfind(b"warning: ")
    return string_trimmer(text[cut + 9 :] if cut >= 0 else text, 66)


def cleanup_check(kind: bytes, rest: bytes) -> tuple[bytes, bytes, bytes] | None:
    """A cleanup header/body check line: (kind, "header"/"body"/..., pflogsumm's detail)."""
    match = CLEANUP_CHECK.match(rest)
    if match is None:
        return None
    detail = re.sub(rb"( from \S+?)?; from=<.*$", b"", match[2], count=1)
    kind = b"reject" if kind == b"milter-reject" else kind
    return kind, match[1], string_trimmer(detail, 64)


_REJECT_LINE = re.compile(rb"^.* \b(?:reject(?:_warning)?|hold|discard): (\S+) from (\S+?): (.*)$")
_REJ_ADDRESS = re.compile(rb"^(\d{3} <).*?(>:)")
_REJ_PROTOCOL = re.compile(rb"(?:\d{3} \d\.\d\.\d )(Protocol error);")
_REJ_FIRST_PHRASE = re.compile(rb"(?:.*?[:;] )(?:\[[^\]]+\] )?([^;,]+)[;,]")
_REJ_ADDRESS_REASON = re.compile(rb"((?:Sender|Recipient) address rejected: [^:]+):")
_REJ_BLOCKED = re.compile(rb"(client|Client host|Sender address) .+? blocked")
_REJ_MAIL = re.compile(rb"\d{3} (?:<.+>: )?([^;:]+)")
_REJ_OTHER = re.compile(rb"(?:.*[:;] )?([^,]+)")
_REJ_TO = re.compile(rb"to=<([^>]+)>")
_REJ_TO_UNKNOWN = re.compile(rb"\d{3} <([^>]+)>: User unknown ")
_REJ_TO_OPEN = re.compile(rb"to=<(.*?)(?:[, ]|$)")
_REJ_FROM = re.compile(rb"from=<([^>]+)>")
_REJ_PIPELINING = re.compile(rb"^.*?\d{3} (Improper use of SMTP command pipelining);.*$")
_REJ_SOURCE = re.compile(rb"^.+? from (\S+?):.*$")
_REJ_SIZE = re.compile(rb"^.*?\d{3} (Message size exceeds fixed limit);.*$")
_REJ_CONFIG = re.compile(rb"^.*?\d{3} (Server configuration (?:error|problem));.*$")
_REJ_USER_REASON = re.compile(rb"^(Recipient address rejected:|User unknown( |$))")


_REJECT_HEAD = re.compile(rb"(\S+) from (\S+?): (.*)")
_OTHER_KIND = re.compile(rb" (?:reject(?:_warning)?|hold|discard): ")


_PHRASE_START = re.compile(rb"[:;] ")
_PHRASE = re.compile(rb"(?:\[[^\]]+\] )?([^;,]+)[;,]")


def _first_phrase(reason: bytes) -> bytes:
    """_REJ_FIRST_PHRASE's group (or `reason`): its lazy head tried at each "[:;] " in turn,
    by a search in C rather than the regex engine's position-by-position retry."""
    for start in _PHRASE_START.finditer(reason):
        phrase = _PHRASE.match(reason, start.end())
        if phrase is not None:
            return phrase[1]
    return reason


def _whole_or_group(pattern: re.Pattern[bytes], text: bytes) -> bytes:
    match = pattern.match(text)
    return text if match is None else match[1]


def smtpd_reject(kind: bytes, rest: bytes) -> tuple[bytes, bytes, bytes]:
    """pflogsumm's proc_smtpd_reject: (stage, reason, detail) of "KIND: REST" (a reject,
    reject_warning, hold or discard line from the kind on)."""
    # pflogsumm takes the line's last " KIND: "; only when REST holds another one does the
    # greedy search find something other than what precedes REST.
    head = (
        _REJECT_LINE.match(b" " + kind + b": " + rest)
        if _OTHER_KIND.search(rest)
        else _REJECT_HEAD.match(rest)
    )
    if head is None:
        return b"", b"", b""
    stage, client, remainder = head[1], head[2], head[3]
    reason = remainder
    # pflogsumm's substitutions replace a whole "^...$" match by a group: taking the group of
    # a match is the same, without reading the rest of the line.
    if stage in (b"RCPT", b"DATA", b"CONNECT"):
        if reason[3:5] == b" <":
            reason = _REJ_ADDRESS.sub(rb"\1\2", reason, count=1)
        if b"Protocol error" in reason:
            reason = _whole_or_group(_REJ_PROTOCOL, reason)
        reason = _first_phrase(reason)
        if reason.startswith((b"Sender", b"Recipient")):
            reason = _whole_or_group(_REJ_ADDRESS_REASON, reason)
        if b" blocked" in reason:
            blocked = _REJ_BLOCKED.search(reason)
            if blocked is not None:
                reason = reason[: blocked.start()] + b"blocked" + reason[blocked.end() :]
    elif stage == b"MAIL":
        reason = _whole_or_group(_REJ_MAIL, reason)
    else:
        reason = _whole_or_group(_REJ_OTHER, reason)
    if reason.startswith(b"Sender address rejected:"):
        sender = _REJ_FROM.search(remainder)
        return stage, reason, sender[1] if sender else b"<>"
    if reason.startswith((b"Recipient address rejected:", b"User unknown")) and (
        _REJ_USER_REASON.match(reason)
    ):
        recipient = (
            _REJ_TO.search(remainder)
            or _REJ_TO_UNKNOWN.search(remainder)
            or _REJ_TO_OPEN.search(remainder)
        )
        return stage, reason, recipient[1] if recipient else b"<>"
    if b"Improper use of SMTP command pipelining" in reason:
        pipelining = _REJ_PIPELINING.match(reason)
        if pipelining is not None:
            source = _REJ_SOURCE.match(b" " + kind + b": " + rest)
            return stage, pipelining[1], source[1] if source else b""
    if b"Message size exceeds fixed limit" in reason:
        size = _REJ_SIZE.match(reason)
        if size is not None:
            return stage, size[1], gimme_domain(client)
    if b"Server configuration" in reason:
        config = _REJ_CONFIG.match(reason)
        if config is not None:
            return stage, b"(Local) " + config[1], gimme_domain(client)
    return stage, reason, gimme_domain(client)
