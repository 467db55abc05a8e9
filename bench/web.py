"""Page timings of the web console's mailbox list on a big domain, served by `mailwarden serve`.

Seeds a private database (mw_bench_web) the way bench/api.py does (one domain with --mailboxes
mailboxes, realistic names, bulk INSERTs; a superadmin), adds a domain admin of that domain,
opens a console session for each straight through the session service (no login form, so no
password hashing or 2FA in the figures), starts `mailwarden serve --workers 2` on a free loopback
port and measures, per admin, from one client over one keep-alive connection, one request at a
time:

  - the whole page     GET /mailboxes?domain=D, the first page again and again
  - walking pages      following the page's "Next page" link (rel="next") from the first page
  - search fragments   GET /mailboxes?q=TERM with `HX-Request: true`, the parameters the filter
                       form sends while typing; terms matching one mailbox, a name (about a
                       thousand), a common substring (many thousands) and none

A superadmin's list is unscoped; a domain admin's goes through the scoping of its domains, which
is another query. The server is stopped and the database dropped at the end (--keep keeps it).

    .venv/bin/python bench/web.py [--mailboxes 100000] [--backend postgresql|sqlite] [--keep]

Client, server and database share the machine: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx2
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# bench/ is the script's directory, so bench/api.py is importable as `api`: its seeding, server
# and timing are reused here.
import api as bench_api
from tests.support.services import ALL_BACKENDS, ensure_database

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.schemas import AdminCreate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.web.sessions import ADMIN_COOKIE
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

DATABASE = "mw_bench_web"
DOMAIN = bench_api.DOMAIN
# The superadmin bench_api.seed creates.
SUPERADMIN = "bench-root"
DOMAIN_ADMIN = "bench-domain-admin"
# What the filter form of mailboxes/list.html sends besides the search while one types.
FORM_DEFAULTS = {"domain": "", "active": "", "show": "", "sort": "address"}
HTMX_REQUEST = {"HX-Request": "true"}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the admins -----------------------------------------------------------------------------


def console_sessions(engine: Engine, settings: Settings, rng: random.Random) -> dict[str, str]:
    """A domain admin of DOMAIN beside the seeded superadmin, and a console session for each:
    the token that goes into the cookie, by a label for the tables."""
    operator = Actor.local_operator(Channel.SYSTEM)
    with Session(engine) as session, UnitOfWork(session, settings) as uow:
        admins.create(
            uow,
            operator,
            parse(
                AdminCreate,
                {"username": DOMAIN_ADMIN, "role": Role.DOMAIN_ADMIN, "domains": [DOMAIN]},
            ),
            password=f"bench-{rng.getrandbits(64):x}",
        )
        usernames = {"superadmin": SUPERADMIN, f"domain admin of {DOMAIN}": DOMAIN_ADMIN}
        rows = uow.session.execute(
            select(Admin.username, Admin.id).where(Admin.username.in_(usernames.values()))
        )
        ids = {username: admin_id for username, admin_id in rows}
        tokens = {
            label: websessions.start(uow, SessionKind.ADMIN, ids[username]).token
            for label, username in usernames.items()
        }
        uow.finish()
    return tokens


# --- measuring ------------------------------------------------------------------------------


@dataclass
class PageTimings(bench_api.Latencies):
    """Latencies with the size of each answer's body."""

    viewer: str = ""
    sizes: list[int] = field(default_factory=list)

    def fetch(
        self, client: httpx2.Client, url: str, params: dict[str, str | int] | None = None
    ) -> httpx2.Response:
        elapsed, response = bench_api.timed(client, url, params)
        self.milliseconds.append(elapsed)
        self.sizes.append(len(response.content))
        if response.status_code != 200:
            self.failures += 1
        return response

    def table_row(self) -> str:
        return (
            f"  {self.viewer:<28} {self.label:<52} {len(self.milliseconds):>5} "
            f"{self.percentile(50):>7.1f} {self.percentile(95):>7.1f} "
            f"{max(self.milliseconds):>7.1f} {statistics.median(self.sizes):>8,.0f} "
            f"{self.failures:>5}"
        )


TABLE_HEAD = (
    f"  {'viewer':<28} {'page':<52} {'n':>5} {'p50':>7} {'p95':>7} {'max':>7} "
    f"{'bytes':>8} {'fail':>5}"
)


class NextLink(HTMLParser):
    """The href of the page's rel="next" link (the parser undoes the HTML escaping)."""

    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and "next" in (attributes.get("rel") or "").split():
            self.href = attributes.get("href")


def next_link(html: str) -> str | None:
    parser = NextLink()
    parser.feed(html)
    parser.close()
    return parser.href


def first_page(client: httpx2.Client, viewer: str, count: int) -> PageTimings:
    timings = PageTimings("whole page, first page", [], viewer=viewer)
    for _ in range(count):
        timings.fetch(client, "/mailboxes", {"domain": DOMAIN})
    return timings


def walk_pages(client: httpx2.Client, viewer: str, count: int) -> PageTimings:
    """Follow "Next page" from the first page (starting over should the links run out)."""
    timings = PageTimings("whole page, walking the Next links", [], viewer=viewer)
    href: str | None = None
    for _ in range(count):
        if href is None:
            response = timings.fetch(client, "/mailboxes", {"domain": DOMAIN})
        else:
            response = timings.fetch(client, href)
        href = next_link(response.text) if response.status_code == 200 else None
    return timings


def search_fragments(
    client: httpx2.Client, viewer: str, searches: dict[str, list[str]]
) -> list[PageTimings]:
    result = []
    for label, terms in searches.items():
        timings = PageTimings(label, [], viewer=viewer)
        for term in terms:
            timings.fetch(client, "/mailboxes", {"q": term, **FORM_DEFAULTS})
        result.append(timings)
    return result


def check_pages(client: httpx2.Client, viewer: str, address: str) -> None:
    """Refuse to time pages that are not what they should be (a login page, an error)."""
    page = client.get("/mailboxes", params={"domain": DOMAIN})
    second = next_link(page.text)
    if page.status_code != 200 or second is None or address in page.text:
        raise SystemExit(f"{viewer}: /mailboxes is not the first of many pages")
    if next_link(client.get(second).text) in (None, second):
        raise SystemExit(f"{viewer}: the Next link of {second} does not lead further")
    fragment = client.get(
        "/mailboxes", params={"q": address, **FORM_DEFAULTS}, headers=HTMX_REQUEST
    )
    if fragment.status_code != 200 or address not in fragment.text or "<html" in fragment.text:
        raise SystemExit(f"{viewer}: the search fragment is not the rows of {address}")


def measure_viewer(
    base: str,
    viewer: str,
    token: str,
    count: int,
    searches: dict[str, list[str]],
    probe: str,
) -> list[PageTimings]:
    with httpx2.Client(base_url=base, cookies={ADMIN_COOKIE: token}, timeout=30) as client:
        check_pages(client, viewer, probe)
        # Warm the connection and each worker's first-request work (imports, pools, templates).
        for _ in range(10):
            client.get("/mailboxes", params={"domain": DOMAIN})
        rows = [first_page(client, viewer, count), walk_pages(client, viewer, count)]
        client.headers.update(HTMX_REQUEST)
        return rows + search_fragments(client, viewer, searches)


def run(args: argparse.Namespace) -> None:
    backend: str = args.backend
    if backend != "sqlite" and (reason := ensure_database(backend)):
        raise SystemExit(f"{backend}: not available ({reason})")
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="mw-bench-web-data-"))
    try:
        with bench_api.bench_database(backend, args.keep, DATABASE) as url:
            env = {
                **os.environ,
                "MAILWARDEN_DATABASE_URL": url,
                "MAILWARDEN_DATA_DIR": str(data_dir),
            }
            bench_api.run_cli(env, "db", "upgrade")
            settings = Settings(data_dir=data_dir, database_url=url)
            engine = create_engine(url)
            started = time.perf_counter()
            directory, _ = bench_api.seed(engine, settings, args.mailboxes, rng)
            tokens = console_sessions(engine, settings, rng)
            engine.dispose()
            print(
                f"{backend}: {len(directory):,} mailboxes in {DOMAIN} "
                f"(loaded in {time.perf_counter() - started:.1f} s); "
                f"{args.workers} workers; {os.cpu_count()} CPUs; load average {load_average()}"
            )
            searches = {
                label.replace("q search", "search fragment"): terms
                for label, terms in bench_api.search_terms(directory, rng, args.requests).items()
            }
            # A mailbox past the first page: the first page must not show it, its search must.
            probe = f"{max(person.local_part for person in directory)}@{DOMAIN}"
            rows: list[PageTimings] = []
            with bench_api.server(env, bench_api.free_port(), args.workers) as base:
                for viewer, token in tokens.items():
                    rows += measure_viewer(base, viewer, token, args.requests, searches, probe)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    print()
    print(
        "Console mailbox list, sequential requests, one keep-alive connection per viewer "
        "(milliseconds; bytes: median body size):"
    )
    print(TABLE_HEAD)
    for row in rows:
        print(row.table_row())
    print(f"load average at end: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=ALL_BACKENDS, default="postgresql")
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument(
        "--requests", type=int, default=200, help="sequential requests per measurement"
    )
    parser.add_argument("--workers", type=int, default=2, help="`mailwarden serve --workers`")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
