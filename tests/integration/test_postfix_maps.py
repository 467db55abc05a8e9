"""The generated Postfix maps, asked by the real `postmap` on every backend.

A small world is built through the services and committed (postmap is another process), then
each map file is queried with `postmap -q - <driver>:<file>`, one process per map with all the
keys on stdin. Postfix's virtual alias precedence is replayed from those answers in the order
Postfix uses: `user@domain` in every table of virtual_alias_maps, then `@domain`.

Domain routing (backup_mx, transport) and removed mailboxes (deleted_at) are written with SQL:
the domain and mailbox services are growing those fields in parallel work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL, make_url

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.db.engine import session_factory
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainUpdate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import Scheme
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from mailwarden.settings import Settings
from mailwarden.stack.config import render_postfix
from mailwarden.stack.postfix.render import MAIN_CF, MASTER_CF
from mailwarden.stack.target import DeployTarget, TcpPort
from tests.support.databases import delete_all_rows
from tests.support.services import require_tool

GIB = 1024**3
PASSWORD = "correct horse battery"
BACKUP_TRANSPORT = "smtp:[mx.backup.example]:25"
ALIAS_TABLES = [
    "virtual_alias_maps",
    "virtual_alias_mailboxes",
    "virtual_alias_domain_maps",
    "virtual_alias_domain_catchall_maps",
]

UowFactory = Callable[[], UnitOfWork]


def build_mail_world(make_uow: UowFactory) -> None:
    """Domains, mailboxes, aliases and alias domains covering every rule of the maps.

    - a.example: user1 (2 GiB quota), user2; aliases info (a mailbox and an outside target),
      team (two mailboxes), sales (outside only), old (inactive); a catch-all to user1.
    - b.example: user; paused (inactive mailbox), gone (removed); no catch-all.
    - off.example: inactive, with a mailbox and an alias.
    - backup.example: a backup MX with a transport of its own.
    - Alias domains: alias.example -> a.example, bee.example -> b.example, dormant.example
      (inactive) -> a.example, dead.example -> off.example (inactive target).
    """
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        for name in ("a.example", "b.example", "off.example", "backup.example"):
            domains.create(uow, operator, parse(DomainCreate, {"name": name}))
        for address, extra in (
            ("user1@a.example", {"quota_bytes": 2 * GIB}),
            ("user2@a.example", {}),
            ("user@b.example", {}),
            ("paused@b.example", {}),
            ("gone@b.example", {}),
            ("x@off.example", {}),
        ):
            mailbox = parse(MailboxCreate, {"address": address, **extra})
            mailboxes.create(uow, operator, mailbox, password=PASSWORD)
        for address, targets, active in (
            ("info@a.example", ["user1@a.example", "friend@external.example"], True),
            ("team@a.example", ["user1@a.example", "user2@a.example"], True),
            ("sales@a.example", ["partner@external.example"], True),
            ("old@a.example", ["user1@a.example"], False),
            ("@a.example", ["user1@a.example"], True),
            ("y@off.example", ["x@off.example"], True),
        ):
            alias = parse(AliasCreate, {"address": address, "targets": targets, "active": active})
            aliases.create(uow, operator, alias)
        for name, target, active in (
            ("alias.example", "a.example", True),
            ("bee.example", "b.example", True),
            ("dormant.example", "a.example", False),
            ("dead.example", "off.example", True),
        ):
            alias_domain = parse(
                AliasDomainCreate,
                {"alias_domain": name, "target_domain": target, "active": active},
            )
            alias_domains.create(uow, operator, alias_domain)
        mailboxes.update(uow, operator, "paused@b.example", parse(MailboxUpdate, {"active": False}))
        domains.update(uow, operator, "off.example", parse(DomainUpdate, {"active": False}))
        session = uow.session
        session.execute(
            text("UPDATE domains SET backup_mx = :yes, transport = :transport WHERE name = :name"),
            {"yes": True, "transport": BACKUP_TRANSPORT, "name": "backup.example"},
        )
        session.execute(
            text("UPDATE mailboxes SET deleted_at = CURRENT_TIMESTAMP WHERE address = :address"),
            {"address": "gone@b.example"},
        )
        uow.finish()


def postfix_tool(name: str) -> str:
    return require_tool(name, "postfix postfix-pgsql postfix-mysql postfix-sqlite")


def write_dated(path: Path, text: str) -> None:
    """Postfix waits 1.5 s before reading main.cf or a map file younger than a second, in case
    it is still being edited; a file written in one go can be dated back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = time.time() - 2
    os.utime(path, (stamp, stamp))


def write_main_cf(directory: Path, text: str) -> None:
    write_dated(directory / "main.cf", text)


def write_files(files: dict[str, str], directory: Path) -> None:
    for relative, content in files.items():
        write_dated(directory / relative, content)


@dataclass
class Maps:
    """Answers of every map for a fixed set of keys, from one postmap run per map."""

    answers: dict[str, dict[str, list[str]]]

    def get(self, table: str, key: str) -> list[str] | None:
        return self.answers[table].get(key)

    def found(self, table: str, key: str) -> set[str]:
        return set(self.get(table, key) or [])

    def virtual_alias(self, address: str) -> set[str] | None:
        """One level of virtual alias lookup, as Postfix does it: the full address in every
        table first, then `@domain` in every table; the first table that answers wins."""
        domain = address.partition("@")[2]
        for key in (address, f"@{domain}"):
            for table in ALIAS_TABLES:
                answer = self.get(table, key)
                if answer is not None:
                    return set(answer)
        return None

    def delivered_to(self, address: str) -> set[str] | None:
        """Where mail ends up: virtual aliases expanded until every address maps to itself."""
        pending, final, seen = [address], set(), set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            expansion = self.virtual_alias(current)
            if expansion is None or expansion == {current}:
                final.add(current)
                continue
            pending.extend(expansion)
        return final if self.virtual_alias(address) is not None else None


ADDRESSES = [
    "user1@a.example",
    "user2@a.example",
    "nobody@a.example",
    "info@a.example",
    "team@a.example",
    "sales@a.example",
    "old@a.example",
    "@a.example",
    "user@b.example",
    "paused@b.example",
    "gone@b.example",
    "nobody@b.example",
    "x@off.example",
    "y@off.example",
    "user1@alias.example",
    "user2@alias.example",
    "info@alias.example",
    "team@alias.example",
    "nobody@alias.example",
    "@alias.example",
    "user@bee.example",
    "gone@bee.example",
    "nobody@bee.example",
    "@bee.example",
    "user1@dormant.example",
    "x@dead.example",
    "user1@backup.example",
]
DOMAINS = [
    "a.example",
    "b.example",
    "off.example",
    "backup.example",
    "alias.example",
    "bee.example",
    "dormant.example",
    "dead.example",
    "nothing.example",
]


def query_all(postmap: str, config_dir: Path, files: dict[str, str], driver: str) -> Maps:
    answers: dict[str, dict[str, list[str]]] = {}
    for relative in files:
        if not relative.startswith("mailwarden/"):
            continue
        table = Path(relative).stem
        result = subprocess.run(
            [postmap, "-c", str(config_dir), "-q", "-", f"{driver}:{config_dir / relative}"],
            input="\n".join(ADDRESSES + DOMAINS) + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        # Exit 1 also means "no key found"; a broken map says so on stderr.
        assert result.returncode in (0, 1) and result.stderr == "", (relative, result.stderr)
        answers[table] = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition("\t")
            answers[table][key] = value.split(",")
    return Maps(answers)


Rendered = tuple[Maps, dict[str, str], Path]


@pytest.fixture(scope="module")
def rendered(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rendered]:
    """One committed world and one set of answers per backend, shared by the tests below
    (they only read): building it and running postmap is the slow part."""
    tmp_path = tmp_path_factory.mktemp("postfix-maps")
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, password_scheme=Scheme.SHA256_CRYPT
    )
    delete_all_rows(engine)
    build_mail_world(lambda: UnitOfWork(session_factory(engine)(), settings))
    config_dir = tmp_path / "postfix"
    target = DeployTarget(
        postfix_dir=config_dir,
        dovecot_dir=tmp_path / "dovecot",
        mail_root=tmp_path / "vmail",
        vmail_user="vmail",
        vmail_group="vmail",
    )
    files = render_postfix(settings, target)
    write_files(files, config_dir)
    write_main_cf(config_dir, "compatibility_level = 3.6\n")
    driver = files[MAIN_CF].split("proxy:", 1)[1].split(":", 1)[0]
    try:
        yield query_all(postfix_tool("postmap"), config_dir, files, driver), files, config_dir
    finally:
        delete_all_rows(engine)


def test_domains_are_routed_by_kind_and_state(rendered: Rendered) -> None:
    maps, _, _ = rendered
    hosted = {d for d in DOMAINS if maps.get("virtual_mailbox_domains", d)}
    relayed = {d for d in DOMAINS if maps.get("relay_domains", d)}
    aliased = {d for d in DOMAINS if maps.get("virtual_alias_domains", d)}
    assert hosted == {"a.example", "b.example"}
    assert relayed == {"backup.example"}
    assert aliased == {"alias.example", "bee.example"}
    assert maps.get("transport_maps", "backup.example") == [BACKUP_TRANSPORT]
    # Postfix also asks transport_maps with the whole address first: that must not match.
    assert maps.get("transport_maps", "user1@backup.example") is None
    assert maps.get("transport_maps", "a.example") is None


def test_only_live_mailboxes_receive(rendered: Rendered) -> None:
    maps, _, _ = rendered
    receiving = {a for a in ADDRESSES if maps.get("virtual_mailbox_maps", a)}
    assert receiving == {"user1@a.example", "user2@a.example", "user@b.example"}
    assert maps.get("virtual_mailbox_maps", "user1@a.example") == ["a.example/user1/"]


def test_a_mailbox_beats_the_catch_all_and_unknown_users_fall_to_it(
    rendered: Rendered,
) -> None:
    maps, _, _ = rendered
    assert maps.get("virtual_alias_maps", "@a.example") == ["user1@a.example"]
    assert maps.delivered_to("user2@a.example") == {"user2@a.example"}
    assert maps.delivered_to("nobody@a.example") == {"user1@a.example"}
    assert maps.delivered_to("info@a.example") == {"user1@a.example", "friend@external.example"}
    assert maps.delivered_to("team@a.example") == {"user1@a.example", "user2@a.example"}
    # An inactive alias is no alias: its address falls to the catch-all like any unknown one.
    assert maps.get("virtual_alias_maps", "old@a.example") is None
    assert maps.delivered_to("old@a.example") == {"user1@a.example"}


def test_inactive_removed_and_inactive_domain_things_are_unknown(
    rendered: Rendered,
) -> None:
    maps, _, _ = rendered
    for address in ("paused@b.example", "gone@b.example", "nobody@b.example", "x@off.example"):
        assert maps.delivered_to(address) is None, address
        assert maps.get("virtual_mailbox_maps", address) is None, address
    assert maps.get("virtual_alias_maps", "y@off.example") is None
    assert maps.get("virtual_alias_mailboxes", "@a.example") is None


def test_alias_domains_rewrite_only_existing_addresses(
    rendered: Rendered,
) -> None:
    maps, _, _ = rendered
    assert maps.get("virtual_alias_domain_maps", "user2@alias.example") == ["user2@a.example"]
    assert maps.get("virtual_alias_domain_maps", "info@alias.example") == ["info@a.example"]
    assert maps.delivered_to("user2@alias.example") == {"user2@a.example"}
    assert maps.delivered_to("info@alias.example") == {"user1@a.example", "friend@external.example"}
    assert maps.delivered_to("user@bee.example") == {"user@b.example"}
    # The target domain's catch-all applies to the alias domain as well.
    assert maps.get("virtual_alias_domain_catchall_maps", "@alias.example") == ["user1@a.example"]
    assert maps.delivered_to("nobody@alias.example") == {"user1@a.example"}
    # Unknown users of an alias domain without catch-all, removed mailboxes and inactive alias
    # domains or targets find nothing: Postfix refuses them at RCPT.
    for address in (
        "nobody@bee.example",
        "gone@bee.example",
        "user1@dormant.example",
        "x@dead.example",
    ):
        assert maps.delivered_to(address) is None, address
    # The user form never answers `@domain`; the catch-all form never answers a user.
    assert maps.get("virtual_alias_domain_maps", "@alias.example") is None
    assert maps.get("virtual_alias_domain_catchall_maps", "user2@alias.example") is None
    assert maps.get("virtual_alias_domain_catchall_maps", "@bee.example") is None


def test_sender_login_maps_name_the_mailboxes_that_own_an_address(
    rendered: Rendered,
) -> None:
    maps, _, _ = rendered
    owners = {a: maps.found("smtpd_sender_login_maps", a) for a in ADDRESSES}
    assert owners["user1@a.example"] == {"user1@a.example"}
    assert owners["info@a.example"] == {"user1@a.example"}
    assert owners["team@a.example"] == {"user1@a.example", "user2@a.example"}
    assert owners["user1@alias.example"] == {"user1@a.example"}
    assert owners["team@alias.example"] == {"user1@a.example", "user2@a.example"}
    assert owners["user@bee.example"] == {"user@b.example"}
    # Outside-only aliases, catch-alls, inactive or removed things grant nobody anything.
    for address in (
        "sales@a.example",
        "nobody@a.example",
        "@a.example",
        "old@a.example",
        "paused@b.example",
        "gone@b.example",
        "gone@bee.example",
        "x@off.example",
        "y@off.example",
        "user1@dormant.example",
    ):
        assert owners[address] == set(), address


def test_postconf_accepts_the_fragments_and_every_proxy_map_is_readable(
    rendered: Rendered,
) -> None:
    _, files, config_dir = rendered
    postconf = postfix_tool("postconf")
    write_main_cf(config_dir, "compatibility_level = 3.6\n" + files[MAIN_CF])
    (config_dir / "master.cf").write_text(files[MASTER_CF])

    def run(*args: str) -> str:
        result = subprocess.run(
            [postconf, "-c", str(config_dir), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        # No "unused parameter" or syntax warning: the TLS parameter is used by master.cf.
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return result.stdout

    run("-n")
    proxy_maps = {
        word.rstrip(",")
        for line in files[MAIN_CF].splitlines()
        if not line.startswith("#")
        for word in line.split()
        if word.startswith("proxy:")
    }
    assert len(proxy_maps) == len([f for f in files if f.startswith("mailwarden/")])
    readable = {
        word.rstrip(",").removeprefix("proxy:")
        for word in run("-x", "-h", "proxy_read_maps").split()
    }
    assert {m.removeprefix("proxy:") for m in proxy_maps} <= readable
    assert (
        run("-P", "submission/inet/smtpd_sender_restrictions")
        .strip()
        .endswith("reject_sender_login_mismatch")
    )
    assert run("-P", "submission/inet/smtpd_sasl_auth_enable").strip().endswith("= yes")
    assert run("-x", "-P", "submission/inet/smtpd_tls_security_level").strip().endswith("encrypt")


def test_submission_on_a_loopback_port_with_tcp_listeners(tmp_path: Path) -> None:
    """The devstack's form: master.cf service address:port, Dovecot reached over TCP."""
    postconf = postfix_tool("postconf")
    settings = Settings(data_dir=tmp_path)
    target = DeployTarget(
        postfix_dir=tmp_path,
        dovecot_dir=tmp_path,
        mail_root=tmp_path / "vmail",
        vmail_user="vmail",
        vmail_group="vmail",
        lmtp=TcpPort("127.0.0.1", 10024),
        sasl=TcpPort("127.0.0.1", 10025),
        submission_service="127.0.0.1:10587",
    )
    files = render_postfix(settings, target)
    write_main_cf(
        tmp_path,
        "compatibility_level = 3.6\n" + files[MAIN_CF] + "mailwarden_submission_tls = none\n",
    )
    (tmp_path / "master.cf").write_text(files[MASTER_CF])
    result = subprocess.run(
        [postconf, "-c", str(tmp_path), "-x", "-h", "virtual_transport", "smtpd_sasl_path"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.stdout.split() == ["lmtp:inet:127.0.0.1:10024", "inet:127.0.0.1:10025"]
    result = subprocess.run(
        [
            postconf,
            "-c",
            str(tmp_path),
            "-x",
            "-P",
            "127.0.0.1:10587/inet/smtpd_tls_security_level",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.stdout.strip().endswith("= none"), result


def query_of(map_text: str) -> str:
    """The `query` setting of a map file, its continuation lines joined as Postfix does."""
    lines = map_text.split("\nquery = ", 1)[1].splitlines()
    return " ".join(line.strip() for line in lines)


def full_scans(connection: Connection, query: str) -> list[str]:
    """The steps of the query's plan that read a whole table, in each backend's words.

    PostgreSQL prefers a sequential scan on tables this small, so it is asked to avoid one:
    it still picks it when no index can answer, which is what this looks for.
    """
    backend = connection.dialect.name
    # EXPLAIN through exec_driver_sql: text() would read `:bytes` in a literal as a parameter.
    if backend == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
        return [row[-1] for row in rows if str(row[-1]).startswith("SCAN ")]
    if backend == "postgresql":
        with connection.begin():
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {query}")]
        return [step for step in plan if "Seq Scan" in step]
    # MariaDB plans tables it has no statistics for as if they were tiny, and then scans them;
    # a server in use has statistics, so the test gives it some.
    connection.exec_driver_sql("ANALYZE TABLE domains, alias_domains, mailboxes, aliases").all()
    steps = connection.exec_driver_sql(f"EXPLAIN {query}").mappings().all()
    return [
        f"{row['table']}: {row['type']}"
        for row in steps
        if row["type"] == "ALL" and not str(row["table"]).startswith("<union")
    ]


KEY_OF_MAP = {
    "virtual_mailbox_domains": "a.example",
    "relay_domains": "backup.example",
    "transport_maps": "backup.example",
    "virtual_alias_domains": "alias.example",
    "virtual_alias_domain_catchall_maps": "@alias.example",
    "virtual_alias_domain_maps": "team@alias.example",
    "smtpd_sender_login_maps": "team@alias.example",
}


def test_every_lookup_starts_from_an_index(rendered: Rendered, engine: Engine) -> None:
    _, files, _ = rendered
    with engine.connect() as connection:
        for relative, content in files.items():
            if not relative.startswith("mailwarden/"):
                continue
            key = KEY_OF_MAP.get(Path(relative).stem, "user1@a.example")
            local, _, domain = key.rpartition("@")
            query = query_of(content).replace("%s", key).replace("%u", local).replace("%d", domain)
            assert full_scans(connection, query) == [], relative


def test_backup_mx_domains_do_not_relay_their_subdomains(tmp_path: Path) -> None:
    """The fragment's parent_domain_matches_subdomains is the installed Postfix's default
    without relay_domains: nothing else of the default is lost. (That Postfix then refuses
    x.backup.example at RCPT while relaying backup.example was seen on a running instance.)"""
    postconf = postfix_tool("postconf")
    target = DeployTarget(
        postfix_dir=tmp_path,
        dovecot_dir=tmp_path,
        mail_root=tmp_path / "vmail",
        vmail_user="vmail",
        vmail_group="vmail",
    )
    files = render_postfix(Settings(data_dir=tmp_path), target)
    write_files(files, tmp_path)
    write_main_cf(tmp_path, "compatibility_level = 3.6\n" + files[MAIN_CF])
    (tmp_path / "master.cf").write_text(files[MASTER_CF])

    def features(*args: str) -> list[str]:
        result = subprocess.run(
            [postconf, "-c", str(tmp_path), "-h", *args, "parent_domain_matches_subdomains"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return result.stdout.replace(",", " ").split()

    default = features("-d")
    assert "relay_domains" in default
    assert features() == [feature for feature in default if feature != "relay_domains"]


@dataclass
class SocketAlias:
    """The test PostgreSQL server reached through a socket named for another port."""

    directory: Path
    port: int
    server: URL

    def url(self, *, with_port: bool = True) -> str:
        """The server's URL over the socket directory, with or without the port."""
        return URL.create(
            self.server.drivername,
            username=self.server.username,
            password=self.server.password,
            port=self.port if with_port else None,
            database=self.server.database,
            query={"host": str(self.directory)},
        ).render_as_string(hide_password=False)


@pytest.fixture
def postgresql_socket_on_another_port(engine: Engine, database_url: str) -> Iterator[SocketAlias]:
    with postgresql_socket_alias(engine, database_url) as alias:
        yield alias


@contextmanager
def postgresql_socket_alias(engine: Engine, database_url: str) -> Iterator[SocketAlias]:
    """A directory whose `.s.PGSQL.<port + 1>` is the server's own socket: a client finds it
    only when it passes that port along with the directory (libpq names sockets by port)."""
    assert engine.dialect.name == "postgresql", "unix sockets named by port are PostgreSQL's"
    with engine.connect() as connection:
        directories = connection.exec_driver_sql("SHOW unix_socket_directories").scalar_one()
        port = int(connection.exec_driver_sql("SHOW port").scalar_one())
    server_socket = Path(str(directories).split(",")[0].strip()) / f".s.PGSQL.{port}"
    assert server_socket.exists(), f"the test server has no unix socket at {server_socket}"
    # Short, under /tmp: a unix socket path has at most 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="mw-pgsock-"))
    try:
        (directory / f".s.PGSQL.{port + 1}").symlink_to(server_socket)
        server = make_url(database_url)
        psycopg.connect(
            host=str(directory), port=port + 1, dbname=server.database, user=server.username
        ).close()
        yield SocketAlias(directory, port + 1, server)
    finally:
        shutil.rmtree(directory)


# PostgreSQL only: libpq names its unix sockets by port.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_postmap_reaches_postgresql_over_a_socket_on_a_port_of_its_own(
    rendered: Rendered, postgresql_socket_on_another_port: SocketAlias, tmp_path: Path
) -> None:
    alias = postgresql_socket_on_another_port
    postmap = postfix_tool("postmap")

    def lookup(url: str) -> subprocess.CompletedProcess[str]:
        settings = Settings(data_dir=tmp_path, database_url=url)
        config_dir = tmp_path / "postfix"
        files = render_postfix(settings, DeployTarget.production(settings))
        write_files(files, config_dir)
        write_main_cf(config_dir, "compatibility_level = 3.6\n")
        return subprocess.run(
            [
                postmap,
                "-c",
                str(config_dir),
                "-q",
                "a.example",
                f"pgsql:{config_dir}/mailwarden/virtual_mailbox_domains.cf",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    found = lookup(alias.url())
    assert (found.returncode, found.stdout, found.stderr) == (0, "a.example\n", "")
    # Without the port, libpq looks for .s.PGSQL.5432 in that directory: nothing answers.
    missed = lookup(alias.url(with_port=False))
    assert missed.returncode != 0 and ".s.PGSQL.5432" in missed.stderr
