"""How long the lookups Postfix and Dovecot make take on a big domain, per database.

Builds one domain with --mailboxes mailboxes (plus aliases with two targets each, a catch-all and
an alias domain) in a private database, then runs every generated Postfix map query and the
Dovecot passdb/userdb queries the way proxymap and Dovecot's auth worker do: one persistent
connection, the key substituted into the query text, half of the keys existing and half not.
Prints p50/p95/max per query in microseconds.

    .venv/bin/python bench/map_lookups.py --backend all --mailboxes 100000 --lookups 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.databases import migrated_engine, private_database
from tests.support.services import ALL_BACKENDS, ensure_database

from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.domains.models import Domain
from mailwarden.mailboxes.models import Mailbox
from mailwarden.stack.dialect import Dialect
from mailwarden.stack.dovecot.render import password_query, user_query
from mailwarden.stack.postfix import maps

DOMAIN = "big.example"
ALIAS_DOMAIN = "alias-of-big.example"
DRIVERS = {"sqlite": "sqlite", "postgresql": "pgsql", "mariadb": "mysql"}
CHUNK = 5_000


def populate(engine: Engine, mailboxes: int) -> None:
    with engine.begin() as connection:
        domain_id = connection.execute(
            insert(Domain).values(name=DOMAIN).returning(Domain.id)
        ).scalar_one()
        connection.execute(
            insert(AliasDomain).values(name=ALIAS_DOMAIN, target_domain_id=domain_id)
        )
        for start in range(0, mailboxes, CHUNK):
            rows = [
                {
                    "domain_id": domain_id,
                    "local_part": f"user{n}",
                    "address": f"user{n}@{DOMAIN}",
                    "password_hash": "{SHA512-CRYPT}$6$benchsalt$notarealhash",
                    "maildir": f"{DOMAIN}/user{n}/",
                }
                for n in range(start, min(start + CHUNK, mailboxes))
            ]
            connection.execute(insert(Mailbox), rows)
        aliases = mailboxes // 5
        for start in range(0, aliases, CHUNK):
            rows = [
                {"domain_id": domain_id, "address": f"list{n}@{DOMAIN}", "target": target}
                for n in range(start, min(start + CHUNK, aliases))
                for target in (f"user{n}@{DOMAIN}", f"user{n + 1}@{DOMAIN}")
            ]
            connection.execute(insert(AliasTarget), rows)
        connection.execute(
            insert(AliasTarget).values(
                domain_id=domain_id, address=f"@{DOMAIN}", target=f"user0@{DOMAIN}"
            )
        )
    with engine.begin() as connection:
        # Fresh statistics, as a database that has lived a while has them.
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
        elif engine.dialect.name in {"mysql", "mariadb"}:
            connection.execute(text("ANALYZE TABLE domains, mailboxes, aliases, alias_domains"))
        else:
            connection.execute(text("ANALYZE"))


def postfix_key(rng: random.Random, mailboxes: int) -> str:
    n = rng.randrange(mailboxes * 2)  # half of them beyond the last mailbox: misses
    kind = rng.random()
    if kind < 0.6:
        return f"user{n}@{DOMAIN}"
    if kind < 0.8:
        return f"list{n // 5}@{DOMAIN}"
    return f"user{n}@{ALIAS_DOMAIN}"


def substitute(query: str, key: str) -> str:
    local, _, domain = key.rpartition("@")
    # Dovecot's %Lu is the lowercased user; keys here are lowercase already.
    quoted = {"%Lu": key, "%s": key, "%u": local, "%d": domain}
    for token, value in quoted.items():
        query = query.replace(token, value.replace("'", "''"))
    return query


def measure(connection: Connection, queries: Callable[[], str], lookups: int) -> list[float]:
    timings = []
    for _ in range(lookups):
        sql = queries()
        started = time.perf_counter()
        connection.exec_driver_sql(sql).fetchall()
        timings.append((time.perf_counter() - started) * 1e6)
    return timings


def run(backend: str, mailboxes: int, lookups: int) -> None:
    if backend != "sqlite" and (reason := ensure_database(backend)):
        print(f"{backend}: not available ({reason})")
        return
    dialect = Dialect(DRIVERS[backend])  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp, private_database(backend, Path(tmp)) as url:
        engine = migrated_engine(url)
        started = time.perf_counter()
        populate(engine, mailboxes)
        print(
            f"\n{backend}: {mailboxes:,} mailboxes, {mailboxes // 5:,} aliases "
            f"(loaded in {time.perf_counter() - started:.1f} s); {lookups:,} lookups per query"
        )
        rng = random.Random(1)
        tables = [
            maps.virtual_mailbox_domains(dialect),
            maps.virtual_mailbox_maps(dialect),
            *maps.virtual_alias_tables(dialect),
            maps.smtpd_sender_login_maps(dialect),
        ]
        named: list[tuple[str, Callable[[], str]]] = [
            (table.name, lambda q=table.query: substitute(q, postfix_key(rng, mailboxes)))
            for table in tables
        ]
        for name, query in (
            ("dovecot password_query", password_query(dialect)),
            ("dovecot user_query", user_query(dialect, "/var/vmail")),
        ):
            named.append(
                (
                    name,
                    lambda q=query: substitute(q, f"user{rng.randrange(mailboxes * 2)}@{DOMAIN}"),
                )
            )
        print(f"  {'query':<40} {'p50 µs':>8} {'p95 µs':>8} {'max µs':>8}")
        with engine.connect() as connection:
            for name, query in named:
                timings = sorted(measure(connection, query, lookups))
                p95 = timings[int(len(timings) * 0.95) - 1]
                print(
                    f"  {name:<40} {statistics.median(timings):8.0f} {p95:8.0f} {timings[-1]:8.0f}"
                )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*ALL_BACKENDS, "all"], default="all")
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    backends = ALL_BACKENDS if args.backend == "all" else (args.backend,)
    for backend in backends:
        run(backend, args.mailboxes, args.lookups)


if __name__ == "__main__":
    main()
