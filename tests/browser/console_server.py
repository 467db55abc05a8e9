"""A real `mailwarden serve` process on a private, migrated database, for the browser to visit.

Everything the process prints (stdout and stderr, in order) is kept in a file that tests read:
on first start the server prints its one-time setup link there.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from tests.functional.cli_helpers import BASE_ENV, console_script
from tests.support.databases import migrated_engine, private_database

STARTUP_SECONDS = 30
STOP_SECONDS = 10


@dataclass
class ConsoleServer:
    base_url: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")

    def output_lines(self) -> list[str]:
        return self.output().splitlines()

    def setup_link(self, timeout: float = 5) -> str:
        """The one-time setup link a first start prints (no admin exists yet)."""
        found = self.wait_for_output(rf"{re.escape(self.base_url)}/setup\?token=\S+", timeout)
        return found.group(0)

    def wait_for_output(self, pattern: str, timeout: float = 5) -> re.Match[str]:
        """The first match of `pattern` in the output, waiting for the server to print it."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.output())) is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"serve never printed {pattern!r}:\n{self.output()}")
            time.sleep(0.05)
        return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(database_url: str, data_dir: Path, temporary: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILWARDEN_")}
    environment.update({k: v for k, v in BASE_ENV.items() if v is not None})
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        MAILWARDEN_DATABASE_URL=database_url,
        MAILWARDEN_DATA_DIR=str(data_dir),
        TMPDIR=str(temporary),
        # Printed lines reach the log file as they are printed, not when the process exits.
        PYTHONUNBUFFERED="1",
    )
    return environment


def _wait_until_healthy(server: ConsoleServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx2.get(server.url("/healthz"), timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mailwarden serve did not come up:\n{server.output()}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextmanager
def running_console_server(directory: Path, backend: str = "sqlite") -> Iterator[ConsoleServer]:
    """Serve a new, empty (migrated) database on a free port of 127.0.0.1 until the block ends."""
    with ExitStack() as stack:
        database_url = stack.enter_context(private_database(backend, directory))
        migrated_engine(database_url).dispose()
        data_dir = directory / "data"
        temporary = directory / "tmp"
        data_dir.mkdir()
        temporary.mkdir()
        log = directory / "serve.log"
        port = _free_port()
        with log.open("wb") as output:
            process = subprocess.Popen(
                [console_script(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=_environment(database_url, data_dir, temporary),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        stack.callback(_stop, process)
        server = ConsoleServer(f"http://127.0.0.1:{port}", database_url, data_dir, process, log)
        _wait_until_healthy(server)
        yield server
