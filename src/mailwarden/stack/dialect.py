"""What the daemons need to know about the database: its SQL dialect and how to connect to it.

Postfix and Dovecot both call their drivers `pgsql`, `mysql` and `sqlite`, and both take the
connection facts mailwarden itself uses (`Settings.effective_database_url`), written in their
own syntax. Every value that ends up in a generated file is checked here first: a value that a
daemon's parser would cut, re-quote or read as a comment is refused, never written half-right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from mailwarden.kernel.errors import ValidationError

Driver = Literal["pgsql", "mysql", "sqlite"]

DRIVER_OF_BACKEND: Final[dict[str, Driver]] = {
    "postgresql": "pgsql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}

# URL query parameters the generated files can express. Anything else (sslmode, ...) would be
# silently lost, so it is refused rather than dropped.
_SOCKET_PARAMETER: Final[dict[Driver, str]] = {"pgsql": "host", "mysql": "unix_socket"}
# Harmless for the daemons: they speak UTF-8 to MariaDB whatever the URL says.
_IGNORED_PARAMETERS: Final[dict[Driver, frozenset[str]]] = {
    "pgsql": frozenset(),
    "mysql": frozenset({"charset"}),
    "sqlite": frozenset(),
}

_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45}")
# Paths written into Postfix lists, Dovecot settings and SQL string literals: no whitespace,
# quotes, comment or expansion characters (`#`, `$`, `%`), list separators or backslashes.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Where a new SQL clause starts on its own continuation line, so the files can be read: before
# a keyword that follows a space and is followed by an even number of quotes (outside literals).
_CLAUSE = re.compile(r" (?=(?:FROM|JOIN|WHERE|AND|UNION|SELECT) )(?=(?:[^']*'[^']*')*[^']*$)")
# Values libpq's conninfo syntax takes without quotes.
_CONNINFO_BARE = re.compile(r"[A-Za-z0-9._@/:+-]+")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one SQL dialect spells the few things the generated queries need."""

    driver: Driver

    def concat(self, *parts: str) -> str:
        # MariaDB reads `||` as a logical OR; SQLite has no concat() before 3.44.
        if self.driver == "mysql":
            return f"CONCAT({', '.join(parts)})"
        return " || ".join(parts)

    def is_true(self, column: str) -> str:
        # PostgreSQL has real booleans; SQLite and MariaDB store 0/1.
        return column if self.driver == "pgsql" else f"{column} = 1"

    def is_false(self, column: str) -> str:
        return f"NOT {column}" if self.driver == "pgsql" else f"{column} = 0"

    def prefix(self, text: str, length: int) -> str:
        """The first `length` characters of `text` (an SQL expression)."""
        # SUBSTRING(x FROM 1 FOR n) is the standard; SQLite only knows substr(), which
        # PostgreSQL and MariaDB also know.
        return f"substr({text}, 1, {length})"

    # --- the rules both daemons apply, written once --------------------------------------------

    def live_mailbox(self, mailbox: str, domain: str) -> str:
        """A mailbox that receives mail and logs in: active, not removed (pending purge), and
        in an active domain. `mailbox` and `domain` are the aliases of the joined tables."""
        return f"{self.live_mailbox_row(mailbox)} AND {self.is_true(f'{domain}.active')}"

    def live_mailbox_row(self, mailbox: str) -> str:
        """The mailbox's own part of `live_mailbox`, for a query that checks the state of the
        mailbox's domain through another join (an alias domain's target)."""
        return f"{self.is_true(f'{mailbox}.active')} AND {mailbox}.deleted_at IS NULL"


@dataclass(frozen=True, slots=True)
class DatabaseConnection:
    """Connection facts in neutral form. For SQLite only `database` is set: an absolute path."""

    driver: Driver
    database: str
    host: str | None = None
    port: int | None = None
    socket: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def dialect(self) -> Dialect:
        return Dialect(self.driver)

    @property
    def is_sqlite(self) -> bool:
        return self.driver == "sqlite"

    # --- Postfix (pgsql_table(5), mysql_table(5), sqlite_table(5)) ----------------------------

    def postfix_lines(self) -> list[str]:
        """The connection part of a Postfix SQL map file; the password comes last."""
        if self.is_sqlite:
            return [f"dbpath = {self.database}"]
        if self.driver == "pgsql" and self.socket and self.port:
            return self._postfix_pgsql_uri_lines()
        lines = [f"hosts = {self._postfix_host()}"]
        if self.user:
            lines.append(f"user = {self.user}")
        lines.append(f"dbname = {self.database}")
        if self.password:
            lines.append(f"password = {self.password}")
        return lines

    def _postfix_pgsql_uri_lines(self) -> list[str]:
        # libpq finds a server's socket as <directory>/.s.PGSQL.<port>, but Postfix's `unix:`
        # form has no port (3.7 takes `unix:/dir:5433` as the directory "/dir:5433"). Only a
        # postgresql:// URI can say both, and with a URI Postfix takes user, password and
        # database from the URI alone: they all go into it, percent-encoded, password last.
        assert self.socket is not None and self.port is not None
        query = [("host", self.socket), ("port", str(self.port))]
        if self.user:
            query.append(("user", self.user))
        if self.password:
            query.append(("password", self.password))
        uri = f"postgresql:///{_uri_quote(self.database)}?" + "&".join(
            f"{key}={_uri_quote(value)}" for key, value in query
        )
        return [
            "# Over a unix socket on a port of its own: only the postgresql:// form of hosts can",
            "# say that port, and Postfix then reads user, password and database from the URI",
            "# alone. It still requires dbname.",
            f"dbname = {self.database}",
            f"hosts = {uri}",
        ]

    def _postfix_host(self) -> str:
        if self.socket:
            return f"unix:{self.socket}"
        assert self.host is not None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"inet:{host}:{self.port}" if self.port else f"inet:{host}"

    # --- Dovecot (dovecot-sql.conf.ext, dict-sql) --------------------------------------------

    def dovecot_connect(self) -> str:
        """The value of Dovecot's `connect` setting, before settings-file quoting."""
        if self.is_sqlite:
            return self.database
        pairs: list[tuple[str, str]] = [("host", self.socket or self.host or "")]
        # libpq names a server's socket after its port (<directory>/.s.PGSQL.<port>), so the
        # port matters over a socket as well; MariaDB's socket is a file, its port unused there.
        if self.port and (self.driver == "pgsql" or not self.socket):
            pairs.append(("port", str(self.port)))
        pairs.append(("dbname", self.database))
        if self.user:
            pairs.append(("user", self.user))
        # Last, so that redacting "password=" up to the end of the line hides exactly it.
        if self.password:
            pairs.append(("password", self.password))
        if self.driver == "pgsql":
            # Dovecot hands the string to libpq as it is: libpq's conninfo quoting applies.
            return " ".join(f"{key}={_conninfo_quote(value)}" for key, value in pairs)
        # Dovecot's MySQL driver splits on spaces itself and knows no quoting; values with
        # whitespace were refused when the URL was read.
        return " ".join(f"{key}={value}" for key, value in pairs)


def split_clauses(query: str) -> list[str]:
    """The query cut before each clause keyword, for files that continue a value over lines.

    Never inside a quoted literal: Postfix and Dovecot join continuation lines with whitespace
    of their own, which would change a literal's value.
    """
    return _CLAUSE.split(query)


def dovecot_quote(value: str) -> str:
    """A Dovecot settings-file value in double quotes: `#` stays literal, escapes are undone."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uri_quote(value: str) -> str:
    # Everything but unreserved characters: Postfix splits `hosts` on whitespace and commas,
    # and libpq decodes %XX in every part of the URI.
    return quote(value, safe="")


def _conninfo_quote(value: str) -> str:
    if _CONNINFO_BARE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _refuse(rule: str, message: str) -> ValidationError:
    return ValidationError("database_url", rule, message)


def _check_value(name: str, value: str, driver: Driver) -> str:
    # The message names the part, never the value: it may be the password.
    if _CONTROL.search(value):
        raise _refuse("unsafe_value", f"the {name} contains control characters")
    if value != value.strip():
        raise _refuse(
            "unsafe_value",
            f"the {name} starts or ends with whitespace, which Postfix would strip",
        )
    if driver == "mysql" and re.search(r"\s", value):
        raise _refuse(
            "unsafe_value",
            f"the {name} contains whitespace, which Dovecot's MySQL driver cannot read",
        )
    return value


def safe_path(value: Path, field: str) -> str:
    """An absolute path that every generated format can hold without quoting."""
    text = str(value)
    if not _SAFE_PATH.fullmatch(text) or "/../" in f"{text}/":
        raise ValidationError(
            field,
            "unsafe_path",
            "must be an absolute path of letters, digits and . _ + @ - / only "
            "(it is written into Postfix lists, Dovecot settings and SQL literals)",
        )
    return text.rstrip("/") or "/"


def check_tcp(host: str, port: int, field: str) -> None:
    """A listener's host (name or IP address) and port, safe in every generated format."""
    if not _HOST.fullmatch(host) or not 0 < port < 65536:
        raise ValidationError(
            field, "invalid_endpoint", "a TCP listener is a host name or IP address and a port"
        )


def connection_from_url(url: str) -> DatabaseConnection:
    """Read an SQLAlchemy URL (as mailwarden uses it) into what the daemons need."""
    try:
        parsed: URL = make_url(url)
    except ArgumentError:
        raise _refuse("invalid_url", "not an SQLAlchemy database URL") from None
    driver = DRIVER_OF_BACKEND.get(parsed.get_backend_name())
    if driver is None:
        raise _refuse(
            "unsupported_backend",
            f"Postfix and Dovecot cannot read {parsed.get_backend_name()} databases; "
            "use PostgreSQL, MariaDB/MySQL or SQLite",
        )
    socket = _socket_of(parsed, driver)
    if driver == "sqlite":
        return _sqlite(parsed)
    if not parsed.database:
        raise _refuse("database_required", "the URL names no database")
    if not parsed.host and socket is None:
        raise _refuse(
            "host_required",
            "the URL names no host: give one (or the socket, ?host=/var/run/postgresql for "
            "PostgreSQL, ?unix_socket=/run/mysqld/mysqld.sock for MariaDB) so the daemons "
            "connect where mailwarden does",
        )
    host = parsed.host
    if host is not None and not _HOST.fullmatch(host):
        raise _refuse("unsafe_value", "the host is not a host name or an IP address")
    return DatabaseConnection(
        driver=driver,
        database=_check_value("database name", parsed.database, driver),
        host=None if socket else host,
        port=parsed.port,
        socket=socket,
        user=_check_value("user name", parsed.username, driver) if parsed.username else None,
        password=_check_value("password", parsed.password, driver) if parsed.password else None,
    )


def _socket_of(parsed: URL, driver: Driver) -> str | None:
    socket: str | None = None
    for name, value in parsed.query.items():
        if name == _SOCKET_PARAMETER.get(driver):
            text = value if isinstance(value, str) else value[-1]
            socket = safe_path(Path(text), "database_url")
        elif name not in _IGNORED_PARAMETERS[driver]:
            raise _refuse(
                "unsupported_parameter",
                f"the URL parameter {name!r} cannot be carried into the Postfix and Dovecot "
                "configuration; remove it",
            )
    return socket


def _sqlite(parsed: URL) -> DatabaseConnection:
    if not parsed.database or parsed.database == ":memory:":
        raise _refuse("database_required", "an SQLite database must be a file")
    # The daemons do not run in mailwarden's working directory: the path must be absolute.
    path = Path(parsed.database).absolute()
    return DatabaseConnection(driver="sqlite", database=safe_path(path, "database_url"))
