"""Latency and throughput of the REST API on a big domain, served by `mailwarden serve`.

Creates a private database (mw_bench_api), migrates it with `mailwarden db upgrade`, fills one
domain with --mailboxes mailboxes (realistic names, bulk INSERTs), adds a superadmin and an API
key through the services, starts `mailwarden serve --workers 2` on a free loopback port and
measures, from one client over one keep-alive connection, one request at a time:

  - a list page   GET /api/v1/mailboxes?domain=D&limit=50, walking the cursors, then revisiting
                  the collected cursors in random order
  - a q search    GET /api/v1/mailboxes?q=TERM&limit=50, terms matching one row, thousands of
                  rows and none
  - a single GET  GET /api/v1/mailboxes/{address}, random addresses

and then the requests per second of one single-mailbox GET with --connections concurrent
connections for --seconds seconds (wrk if installed, else an asyncio httpx2 load generator).
The server is stopped and the database dropped at the end (--keep keeps the database).

    .venv/bin/python bench/api.py [--mailboxes 100000] [--backend postgresql] [--keep]

The load generator runs on the same machine as the server and the database: on a small machine
the throughput figure is shared CPU between the three, and says more about that than the API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx2
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.databases import private_database
from tests.support.services import ALL_BACKENDS, ensure_database

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes.models import Mailbox
from mailwarden.settings import Settings

DATABASE = "mw_bench_api"
DOMAIN = "big.example"
CHUNK = 5_000
TARGET_P95_MS = 50.0
# A hash Dovecot would accept in form; nobody logs in during the benchmark.
PASSWORD_HASH = "{SHA512-CRYPT}$6$benchsalt$" + "x" * 86


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = words(
    "Anna Ben Carla David Elena Felix Greta Hannah Ivan Julia Karl Lena Marco Nina Oskar Paula "
    "Quentin Rosa Stefan Tanja Ulrich Vera Walter Xenia Yusuf Zoe Aisha Bruno Chiara Dmitri "
    "Emma Farid Giulia Hugo Ines Jonas Katarina Luca Mia Noah Olga Pedro Rania Sofia Tobias "
    "Ursula Viktor Wen Yara Amir Bianca Cem Daria Emil Fatima Georg Helena Igor Jana Kofi Laura "
    "Maximilian Nora Omar Petra Rafael Sara Theo Valentina William Zeynep Adrian Beatrice "
    "Claude Dorothea Erik Francesca Gabriel Heidi Isaac Johanna Kenji Lucia Mateo Nadia Otto "
    "Priya Ricardo Selin Thomas Uma Vincent Wiebke Yannick Zainab"
)
LAST_NAMES = words(
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter "
    "Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt "
    "Werner Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber "
    "Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Vogel Friedrich Keller Günther "
    "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Garcia Martinez Lopez Gonzalez "
    "Rodriguez Fernandez Silva Santos Oliveira Pereira Dubois Moreau Laurent Lefebvre Leroy "
    "Nguyen Tran Kim Park Chen Wang Li Zhang Yilmaz Kaya Demir Şahin Kowalski Nowak Novak "
    "Horvat Jensen Nielsen Hansen Johansson Andersson Smith Jones Brown Taylor Wilson Evans "
    "O'Brien Murphy Kelly"
)
# Search terms by how much of the domain they match (the "one" terms are drawn per request).
# Search terms, from those matching few rows to those matching many (see search_terms).
COMMON_TERMS = ("an", "er", "ia", "mar", "son", "ann")
ABSENT_TERMS = ("zzqx", "qqq", "nomatch-xyz", "@nowhere")

ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ş": "s", "é": "e", "'": ""})


@dataclass(frozen=True)
class Person:
    local_part: str
    name: str


def people(count: int, rng: random.Random) -> list[Person]:
    """Unique `first.last[N]` local parts with display names, as a company directory has."""
    seen: dict[str, int] = {}
    result = []
    for _ in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower().translate(ASCII)
        seen[base] = seen.get(base, 0) + 1
        local = base if seen[base] == 1 else f"{base}{seen[base]}"
        result.append(Person(local, f"{first} {last}"))
    return result


# --- the database ---------------------------------------------------------------------------


@contextmanager
def bench_database(backend: str, keep: bool, name: str = DATABASE) -> Iterator[str]:
    """A fresh, empty database (the test suite's own helper); dropped afterwards unless `keep`.
    Each benchmark names its own: an earlier database of the same name is dropped first."""
    directory = Path(tempfile.mkdtemp(prefix=f"{name.replace('_', '-')}-"))
    try:
        with private_database(backend, directory, name=name, keep=keep) as url:
            yield url
    finally:
        if keep:
            print(f"kept: {name if backend != 'sqlite' else directory} ({backend})")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def mailwarden_command() -> list[str]:
    script = Path(sys.executable).with_name("mailwarden")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mailwarden.cli.app"]


def run_cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([*mailwarden_command(), *args], env=env, check=True, capture_output=True)


def seed(
    engine: Engine, settings: Settings, count: int, rng: random.Random
) -> tuple[list[Person], str]:
    """The domain, its mailboxes (bulk INSERTs) and a superadmin with a key (the services).
    Returns the mailboxes' people and the API key."""
    directory = people(count, rng)
    with engine.begin() as connection:
        domain_id = connection.execute(
            insert(Domain).values(name=DOMAIN, description="benchmark").returning(Domain.id)
        ).scalar_one()
        for start in range(0, count, CHUNK):
            connection.execute(
                insert(Mailbox),
                [
                    {
                        "domain_id": domain_id,
                        "local_part": person.local_part,
                        "address": f"{person.local_part}@{DOMAIN}",
                        "name": person.name,
                        "password_hash": PASSWORD_HASH,
                        "quota_bytes": 2 * 1024**3,
                        "maildir": f"{DOMAIN}/{person.local_part}/",
                    }
                    for person in directory[start : start + CHUNK]
                ],
            )
    operator = Actor.local_operator(Channel.SYSTEM)
    with Session(engine) as session, UnitOfWork(session, settings) as uow:
        admins.create(
            uow,
            operator,
            parse(AdminCreate, {"username": "bench-root", "role": Role.SUPERADMIN}),
            password=f"bench-{rng.getrandbits(64):x}",
        )
        key = apikeys.create(
            uow, operator, parse(ApiKeyCreate, {"admin": "bench-root", "name": "bench"})
        ).key
        uow.finish()
    with engine.begin() as connection:
        # Fresh statistics, as a database that has lived a while has them.
        if engine.dialect.name in {"mysql", "mariadb"}:
            connection.execute(text("ANALYZE TABLE domains, mailboxes"))
        else:
            connection.execute(text("ANALYZE"))
    return directory, key


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def server(env: dict[str, str], port: int, workers: int) -> Iterator[str]:
    command = [
        *mailwarden_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    # Its own process group: the workers go down with the master whatever happens here.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, log)
            yield base
        finally:
            stop(process)


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise SystemExit(f"mailwarden serve exited with {process.returncode}:\n{output}")
        with suppress(httpx2.TransportError):
            if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("mailwarden serve did not answer /healthz within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Latencies:
    label: str
    milliseconds: list[float]
    failures: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def row(self, target: bool) -> str:
        values = self.milliseconds
        verdict = ""
        if target:
            verdict = "met" if self.percentile(95) < TARGET_P95_MS else "MISSED"
        return (
            f"  {self.label:<50} {len(values):>5} {self.percentile(50):>7.1f} "
            f"{self.percentile(95):>7.1f} {self.percentile(99):>7.1f} "
            f"{statistics.fmean(values):>7.1f} {max(values):>7.1f} {self.failures:>5}  {verdict}"
        )


def timed(
    client: httpx2.Client, url: str, params: dict[str, str | int] | None = None
) -> tuple[float, httpx2.Response]:
    started = time.perf_counter()
    response = client.get(url, params=params)
    response.read()
    return (time.perf_counter() - started) * 1000, response


def measure(
    label: str, client: httpx2.Client, requests: list[tuple[str, dict[str, str | int] | None]]
) -> Latencies:
    result = Latencies(label, [])
    for url, params in requests:
        elapsed, response = timed(client, url, params)
        result.milliseconds.append(elapsed)
        if response.status_code != 200:
            result.failures += 1
    return result


def walk_pages(client: httpx2.Client, count: int) -> tuple[Latencies, list[str]]:
    """Follow next_cursor from the first page (starting over at the end); the cursors seen."""
    result = Latencies("list page, walking next_cursor", [])
    cursors: list[str] = []
    cursor: str | None = None
    for _ in range(count):
        params: dict[str, str | int] = {"domain": DOMAIN, "limit": 50}
        if cursor:
            params["cursor"] = cursor
        elapsed, response = timed(client, "/api/v1/mailboxes", params)
        result.milliseconds.append(elapsed)
        if response.status_code != 200:
            result.failures += 1
            cursor = None
            continue
        cursor = response.json()["next_cursor"]
        if cursor:
            cursors.append(cursor)
    return result, cursors


def search_terms(people: list[Person], rng: random.Random, count: int) -> dict[str, list[str]]:
    """Terms by kind, each labelled with the median number of mailboxes it matches."""
    names = [name.lower() for name in (*FIRST_NAMES, *LAST_NAMES)]
    kinds = {
        "a whole local part": [rng.choice(people).local_part for _ in range(count)],
        "a first or last name": [rng.choice(names) for _ in range(count)],
        "a common substring": [COMMON_TERMS[i % len(COMMON_TERMS)] for i in range(count)],
        "no match": [ABSENT_TERMS[i % len(ABSENT_TERMS)] for i in range(count)],
    }
    labelled = {}
    for kind, terms in kinds.items():
        counts = {term: matches(people, term) for term in set(terms)}
        median = statistics.median(counts[term] for term in terms)
        labelled[f"q search, {kind} (~{median:,.0f} rows)"] = terms
    return labelled


def matches(people: list[Person], term: str) -> int:
    # As the service: the address case-sensitively (it is stored lowercase), the name not.
    folded = term.lower()
    return sum(
        1
        for person in people
        if term in f"{person.local_part}@{DOMAIN}" or folded in person.name.lower()
    )


def wrk_throughput(
    wrk: str, url: str, key: str, connections: int, seconds: float
) -> tuple[float, str]:
    threads = max(1, min(connections, os.cpu_count() or 1))
    completed = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {key}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    output = completed.stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    if bad := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        print(f"  warning: {bad.group(1)} responses were not 2xx")
    latency = re.search(
        r"50%\s+(\S+)\s+75%\s+(\S+)\s+90%\s+(\S+)\s+99%\s+(\S+)", output.replace("\n", " ")
    )
    detail = (
        f"latency p50 {latency.group(1)}, p90 {latency.group(3)}, p99 {latency.group(4)}"
        if latency
        else ""
    )
    return float(match.group(1)), f"wrk, {threads} threads; {detail}"


async def httpx2_throughput(
    base: str, path: str, key: str, connections: int, seconds: float
) -> tuple[float, str]:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    failures = 0
    async with httpx2.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, failures
            while time.perf_counter() < deadline:
                response = await client.get(path)
                done += 1
                failures += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    if failures:
        print(f"  warning: {failures} responses were not 200")
    return done / elapsed, "asyncio httpx2 load generator (one process, one core at most)"


def run(args: argparse.Namespace) -> None:
    backend: str = args.backend
    if backend != "sqlite" and (reason := ensure_database(backend)):
        raise SystemExit(f"{backend}: not available ({reason})")
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="mw-bench-api-data-"))
    try:
        with bench_database(backend, args.keep) as url:
            env = {
                **os.environ,
                "MAILWARDEN_DATABASE_URL": url,
                "MAILWARDEN_DATA_DIR": str(data_dir),
            }
            run_cli(env, "db", "upgrade")
            settings = Settings(data_dir=data_dir, database_url=url)
            engine = create_engine(url)
            started = time.perf_counter()
            directory, key = seed(engine, settings, args.mailboxes, rng)
            engine.dispose()
            print(
                f"{backend}: {len(directory):,} mailboxes in {DOMAIN} "
                f"(loaded in {time.perf_counter() - started:.1f} s); "
                f"{args.workers} workers; {os.cpu_count()} CPUs; "
                f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            with server(env, free_port(), args.workers) as base:
                measure_all(args, base, key, directory, rng)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def measure_all(
    args: argparse.Namespace, base: str, key: str, directory: list[Person], rng: random.Random
) -> None:
    addresses = [f"{person.local_part}@{DOMAIN}" for person in directory]
    n: int = args.requests
    headers = {"Authorization": f"Bearer {key}"}
    rows: list[tuple[Latencies, bool]] = []
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:
        # Warm both the connection and the server's first-request work (imports, pools).
        for address in rng.sample(addresses, 20):
            client.get(f"/api/v1/mailboxes/{address}")
        walked, cursors = walk_pages(client, n)
        rows.append((walked, True))
        revisits: list[tuple[str, dict[str, str | int] | None]] = [
            ("/api/v1/mailboxes", {"domain": DOMAIN, "limit": 50, "cursor": rng.choice(cursors)})
            for _ in range(n)
        ]
        rows.append((measure("list page, random cursor", client, revisits), True))
        searches = search_terms(directory, rng, n)
        every_search = Latencies("q search, all of the above", [])
        for label, terms in searches.items():
            measured = measure(
                label, client, [("/api/v1/mailboxes", {"q": term, "limit": 50}) for term in terms]
            )
            every_search.milliseconds += measured.milliseconds
            every_search.failures += measured.failures
            rows.append((measured, True))
        rows.append((every_search, True))
        singles: list[tuple[str, dict[str, str | int] | None]] = [
            (f"/api/v1/mailboxes/{rng.choice(addresses)}", None) for _ in range(n)
        ]
        rows.append((measure("single GET /mailboxes/{address}", client, singles), False))

    print()
    print("Sequential requests, one client, one keep-alive connection (milliseconds):")
    print(
        f"  {'request':<50} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7} {'max':>7} "
        f"{'fail':>5}  p95 < {TARGET_P95_MS:g} ms"
    )
    for latencies, target in rows:
        print(latencies.row(target))

    address = rng.choice(addresses)
    path = f"/api/v1/mailboxes/{address}"
    wrk = shutil.which("wrk")
    if args.load_generator == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    print()
    print(
        f"Throughput, GET /api/v1/mailboxes/{{address}} of one mailbox ({address}), "
        f"{args.connections} connections for {args.seconds:g} s:"
    )
    if wrk and args.load_generator in {"auto", "wrk"}:
        rate, how = wrk_throughput(wrk, base + path, key, args.connections, args.seconds)
    else:
        rate, how = asyncio.run(httpx2_throughput(base, path, key, args.connections, args.seconds))
    print(f"  {rate:,.0f} requests/s  ({how})")
    if wrk is None:
        print("  wrk is not installed: `apt-get install wrk` gives a load generator that does")
        print("  not compete with the server for a Python interpreter")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=ALL_BACKENDS, default="postgresql")
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument(
        "--requests", type=int, default=300, help="sequential requests per measurement"
    )
    parser.add_argument("--workers", type=int, default=2, help="`mailwarden serve --workers`")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "httpx2"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
