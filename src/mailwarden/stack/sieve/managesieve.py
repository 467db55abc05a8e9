"""A small ManageSieve client (RFC 5804): exactly what mailwarden needs, with bounded waits.

Why not a library: sievelib (the maintained one on PyPI, 1.6.0 when this was written) speaks
SASL PLAIN with an authorization id and STARTTLS, but
- `Client.connect()` opens the TCP connection without a timeout and sets one only afterwards,
  so a filtered port hangs for the kernel's SYN retries (about two minutes) unless the whole
  process changes `socket.setdefaulttimeout()`;
- it reads the capabilities and authenticates inside one call, so a caller cannot decide on
  STARTTLS from what the server offers and where it is (see `requires_tls` below);
- failures come back as `False` with `errmsg` bytes, and a `BYE` loses the server's text;
- it warns (UserWarning) on every unencrypted connection, including loopback, and ships no
  type information.
The subset used here is small: greeting and capabilities, STARTTLS, AUTHENTICATE "PLAIN" with
an initial response, PUTSCRIPT with a non-synchronizing literal `{n+}`, SETACTIVE, DELETESCRIPT,
LISTSCRIPTS, GETSCRIPT (for checks), LOGOUT, and the response grammar: data lines of atoms,
quoted strings and literals, then `OK` / `NO` / `BYE` with an optional `(CODE ...)` and text.

Every socket operation (connect, each read and write) waits at most `timeout` seconds. The
password is only ever written to the socket: it is in no message, exception or log line.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

DEFAULT_TIMEOUT = 5.0
# A server that sends more than this in one line or literal is broken or hostile.
_MAX_LINE = 64 * 1024
_MAX_LITERAL = 16 * 1024 * 1024
# RFC 5804 limits a quoted string to 1024 octets; longer values go as literals.
_MAX_QUOTED = 1024
_ATOM_END = frozenset(b' ()"{}\r\n')

Status = Literal["OK", "NO", "BYE"]
STATUSES = frozenset({"OK", "NO", "BYE"})


class ManageSieveError(Exception):
    """Base of every failure; `str()` is one line meant for an administrator."""


class ConnectFailed(ManageSieveError):
    """No connection (refused, unreachable, timed out, TLS failed) or it broke off."""


class AuthenticationFailed(ManageSieveError):
    """The server refused the login."""


class CommandRefused(ManageSieveError):
    """The server answered NO (or BYE) to a command."""

    def __init__(self, command: str, response: Response) -> None:
        super().__init__(f"{command} refused: {response.describe()}")
        self.command = command
        self.response = response


class ProtocolError(ManageSieveError):
    """The server said something this client cannot parse."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["atom", "string", "open", "close"]
    value: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """One server response: the data lines, then the status line's parts."""

    status: Status
    # The response code's words, e.g. ("NONEXISTENT",), ("QUOTA/MAXSIZE",), ("SASL", "...").
    code: tuple[str, ...] = ()
    text: str = ""
    lines: tuple[tuple[Token, ...], ...] = field(default_factory=tuple)

    def describe(self) -> str:
        code = f"({' '.join(self.code)}) " if self.code else ""
        return one_line(f"{self.status} {code}{self.text}".strip())


def one_line(text: str) -> str:
    """Server text, made safe for one line of a terminal: breaks joined, controls shown."""
    parts = [part.strip() for part in text.replace("\r\n", "\n").split("\n")]
    joined = " / ".join(part for part in parts if part)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in joined)


def encode_string(value: str) -> bytes:
    """A ManageSieve string: quoted when short and plain, else a non-synchronizing literal."""
    raw = value.encode("utf-8")
    if len(raw) <= _MAX_QUOTED and not any(byte in raw for byte in b"\r\n\x00"):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d+}\r\n" % len(raw) + raw


def plain_initial_response(authcid: str, password: str, authzid: str = "") -> str:
    """SASL PLAIN (RFC 4616): authzid NUL authcid NUL password, base64."""
    message = b"\x00".join(part.encode("utf-8") for part in (authzid, authcid, password))
    return base64.b64encode(message).decode("ascii")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class ManageSieveClient:
    """One connection. Use as a context manager; `close()` is safe to call more than once."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.capabilities: dict[str, str] = {}
        self._sock: socket.socket | None = None
        self._buffer = b""

    # --- connection --------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Open the connection and read the greeting (the capabilities)."""
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot resolve {self.host!r}: {exc.strerror}") from None
        except TimeoutError:
            raise ConnectFailed(
                f"cannot connect to {self.where}: no answer within {self.timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise ConnectFailed(f"cannot connect to {self.where}: connection refused") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.where}: {exc.strerror or exc}") from None
        try:
            self._read_capabilities("greeting")
        except ManageSieveError:
            self.close()
            raise

    @property
    def peer_is_loopback(self) -> bool:
        """True when the connected peer is this host (so the wire never leaves it)."""
        if self._sock is None:
            return False
        peer = self._sock.getpeername()
        return is_loopback(str(peer[0]))

    @property
    def encrypted(self) -> bool:
        return isinstance(self._sock, ssl.SSLSocket)

    def starttls(self, context: ssl.SSLContext | None = None, server_hostname: str = "") -> None:
        """Upgrade to TLS, verifying the certificate against `server_hostname` (or the host)."""
        if "STARTTLS" not in self.capabilities:
            raise ConnectFailed(f"{self.where} does not offer STARTTLS")
        self._expect_ok("STARTTLS", self._command(b"STARTTLS"))
        context = context or ssl.create_default_context()
        try:
            self._sock = context.wrap_socket(
                self._socket(), server_hostname=server_hostname or self.host
            )
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            raise ConnectFailed(f"TLS with {self.where} failed: {exc}") from None
        self._buffer = b""
        # RFC 5804 2.2: after TLS the server sends its capabilities again; only these count.
        self.capabilities = {}
        self._read_capabilities("STARTTLS")

    def authenticate_plain(self, authcid: str, password: str, authzid: str = "") -> None:
        """SASL PLAIN with an initial response; `authzid` is the user to act as (if any)."""
        mechanisms = self.capabilities.get("SASL", "").upper().split()
        if "PLAIN" not in mechanisms:
            offered = ", ".join(mechanisms) or "none"
            raise AuthenticationFailed(
                f"{self.where} does not offer SASL PLAIN (offered: {offered}); "
                "Dovecot offers it over TLS or loopback, or with disable_plaintext_auth = no"
            )
        initial = plain_initial_response(authcid, password, authzid)
        self._send(b'AUTHENTICATE "PLAIN" ' + encode_string(initial) + b"\r\n")
        tokens = self._read_line()
        if not _is_status(tokens):
            # A challenge: PLAIN with an initial response has nothing more to say. Cancel it.
            self._send(b'"*"\r\n')
            response = self._read_response()
            raise ProtocolError(
                f"{self.where} sent a SASL challenge to PLAIN ({response.describe()})"
            )
        response = _status_response(tokens, ())
        if response.status != "OK":
            raise AuthenticationFailed(response.describe())

    def logout(self) -> None:
        """Say goodbye. The work is done by now: a server that hangs up early is no failure."""
        try:
            self._command(b"LOGOUT")
        except ManageSieveError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> ManageSieveClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- scripts -----------------------------------------------------------------------------

    def put_script(self, name: str, content: str) -> None:
        """Store (replace) a script; the server compiles it and refuses it with its errors."""
        raw = content.encode("utf-8")
        command = b"PUTSCRIPT " + encode_string(name) + b" {%d+}\r\n" % len(raw) + raw
        self._expect_ok("PUTSCRIPT", self._command(command))

    def set_active(self, name: str) -> None:
        """Make `name` the active script; "" deactivates whichever is active."""
        self._expect_ok("SETACTIVE", self._command(b"SETACTIVE " + encode_string(name)))

    def delete_script(self, name: str) -> None:
        self._expect_ok("DELETESCRIPT", self._command(b"DELETESCRIPT " + encode_string(name)))

    def list_scripts(self) -> list[tuple[str, bool]]:
        """(name, active) of every script."""
        response = self._expect_ok("LISTSCRIPTS", self._command(b"LISTSCRIPTS"))
        scripts = []
        for line in response.lines:
            if not line or line[0].kind != "string":
                raise ProtocolError(f"unexpected LISTSCRIPTS line from {self.where}")
            active = len(line) > 1 and line[1].kind == "atom" and line[1].value.upper() == "ACTIVE"
            scripts.append((line[0].value, active))
        return scripts

    def get_script(self, name: str) -> str:
        response = self._expect_ok("GETSCRIPT", self._command(b"GETSCRIPT " + encode_string(name)))
        if not response.lines or not response.lines[0] or response.lines[0][0].kind != "string":
            raise ProtocolError(f"GETSCRIPT answer from {self.where} holds no script")
        return response.lines[0][0].value

    # --- protocol ----------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise ConnectFailed("not connected")
        return self._sock

    def _send(self, data: bytes) -> None:
        try:
            self._socket().sendall(data)
        except TimeoutError:
            raise ConnectFailed(f"{self.where} stopped reading (over {self.timeout:g} s)") from None
        except OSError as exc:
            raise ConnectFailed(f"connection to {self.where} broke: {exc}") from None

    def _command(self, command: bytes) -> Response:
        self._send(command + b"\r\n")
        return self._read_response()

    def _expect_ok(self, command: str, response: Response) -> Response:
        if response.status != "OK":
            raise CommandRefused(command, response)
        return response

    def _read_capabilities(self, after: str) -> None:
        response = self._read_response()
        if response.status != "OK":
            raise ConnectFailed(
                f"{self.where} refused the session ({after}): {response.describe()}"
            )
        capabilities = {}
        for line in response.lines:
            if not line or line[0].kind != "string":
                raise ProtocolError(f"unexpected capability line from {self.where}")
            value = line[1].value if len(line) > 1 and line[1].kind == "string" else ""
            capabilities[line[0].value.upper()] = value
        self.capabilities = capabilities

    def _read_response(self) -> Response:
        lines: list[tuple[Token, ...]] = []
        while True:
            tokens = self._read_line()
            if _is_status(tokens):
                response = _status_response(tokens, tuple(lines))
                if response.status == "BYE":
                    self.close()
                    raise ConnectFailed(
                        f"{self.where} closed the connection: {response.describe()}"
                    )
                return response
            lines.append(tokens)

    def _fill(self) -> None:
        try:
            chunk = self._socket().recv(65536)
        except TimeoutError:
            raise ConnectFailed(f"{self.where} did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"connection to {self.where} broke: {exc}") from None
        if not chunk:
            raise ConnectFailed(f"{self.where} closed the connection")
        self._buffer += chunk

    def _peek(self) -> int:
        while not self._buffer:
            self._fill()
        return self._buffer[0]

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _take_until(self, stop: frozenset[int]) -> bytes:
        index = 0
        while True:
            while index < len(self._buffer):
                if self._buffer[index] in stop:
                    return self._take(index)
                index += 1
            if index > _MAX_LINE:
                raise ProtocolError(f"{self.where} sent an overlong line")
            self._fill()

    def _read_line(self) -> tuple[Token, ...]:
        """One response line as tokens; literals are read whole, so they may span lines."""
        tokens: list[Token] = []
        while True:
            byte = self._peek()
            if byte == 0x0D:  # CR
                if self._take(2) != b"\r\n":
                    raise ProtocolError(f"{self.where} sent a bare CR")
                return tuple(tokens)
            if byte == 0x0A:  # a bare LF ends the line too; be lenient in what we accept
                self._take(1)
                return tuple(tokens)
            if byte == 0x20:
                self._take(1)
            elif byte == 0x22:
                tokens.append(Token("string", self._read_quoted()))
            elif byte == 0x7B:
                tokens.append(Token("string", self._read_literal()))
            elif byte == 0x28:
                self._take(1)
                tokens.append(Token("open"))
            elif byte == 0x29:
                self._take(1)
                tokens.append(Token("close"))
            else:
                atom = self._take_until(_ATOM_END)
                if not atom:  # a stray "}" where a token should start
                    raise ProtocolError(f"{self.where} sent an unexpected {chr(byte)!r}")
                tokens.append(Token("atom", atom.decode("utf-8", "replace")))
            if len(tokens) > 1024:
                raise ProtocolError(f"{self.where} sent an overlong line")

    def _read_quoted(self) -> str:
        self._take(1)
        out = bytearray()
        while True:
            byte = self._take(1)[0]
            if byte == 0x22:
                return out.decode("utf-8", "replace")
            if byte == 0x5C:
                byte = self._take(1)[0]
            elif byte in (0x0D, 0x0A):
                raise ProtocolError(f"{self.where} sent a line break inside a quoted string")
            out.append(byte)
            if len(out) > _MAX_LINE:
                raise ProtocolError(f"{self.where} sent an overlong string")

    def _read_literal(self) -> str:
        header = self._take_until(frozenset(b"}")) + self._take(1)
        digits = header[1:-1].rstrip(b"+")
        if not digits.isdigit():
            raise ProtocolError(f"{self.where} sent a malformed literal {header!r}")
        size = int(digits)
        if size > _MAX_LITERAL:
            raise ProtocolError(f"{self.where} announced a literal of {size} octets")
        if self._take(2) != b"\r\n":
            raise ProtocolError(f"{self.where} sent a literal without CRLF")
        return self._take(size).decode("utf-8", "replace")


def _is_status(tokens: tuple[Token, ...]) -> bool:
    return bool(tokens) and tokens[0].kind == "atom" and tokens[0].value.upper() in STATUSES


def _status_response(tokens: tuple[Token, ...], lines: tuple[tuple[Token, ...], ...]) -> Response:
    status: Status
    word = tokens[0].value.upper()
    status = "OK" if word == "OK" else "NO" if word == "NO" else "BYE"
    rest = tokens[1:]
    code: tuple[str, ...] = ()
    if rest and rest[0].kind == "open":
        kinds = [token.kind for token in rest]
        if "close" not in kinds:
            raise ProtocolError("unterminated response code")
        end = kinds.index("close")
        code = tuple(token.value for token in rest[1:end])
        rest = rest[end + 1 :]
    text = " ".join(token.value for token in rest if token.kind in ("string", "atom"))
    return Response(status, code, text, lines)
