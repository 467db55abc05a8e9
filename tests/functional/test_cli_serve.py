"""`mailwarden serve` as a real process under uvicorn: the API answers over TCP, with several
workers, and /metrics counts the requests of every worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.functional.cli_helpers import BASE_ENV, console_script, run_json, run_process
from tests.support.databases import migrated_engine

STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    key: str
    process: subprocess.Popen[bytes]
    # The server's own TMPDIR, where it keeps the workers' shared metrics.
    temporary: Path
    log: Path

    def metrics_dirs(self) -> list[Path]:
        return list(self.temporary.glob("mailwarden-metrics-*"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{directory / 'mailwarden.db'}"
    migrated_engine(url).dispose()
    run_process(url, "admin", "add", "ops", "--role", "superadmin", "--random-password")
    key = run_json(url, "apikey", "create", "--admin", "ops")["key"]
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILWARDEN_")}
    environment.update({k: v for k, v in BASE_ENV.items() if v is not None})
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment["MAILWARDEN_DATABASE_URL"] = url
    temporary = directory / "tmp"
    temporary.mkdir()
    environment["TMPDIR"] = str(temporary)
    log = directory / "serve.log"
    argv = [console_script(), "serve", "--port", str(port), "--workers", "2"]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*argv, "--log-level", "warning"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx2.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"serve did not come up: {log.read_text()}")
        time.sleep(0.1)
    yield Server(base, key, process, temporary, log)
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def test_it_answers_the_api_over_tcp(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    me = httpx2.get(f"{server.base}/api/v1/me", headers=headers, timeout=10)
    assert me.status_code == 200
    assert me.json()["username"] == "ops"
    assert "server" not in me.headers  # no product banner
    assert httpx2.get(f"{server.base}/api/v1/me", timeout=10).status_code == 401
    docs = httpx2.get(f"{server.base}/api/docs", timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Each use of a key is logged with its id (never the secret).
    key_id = server.key.split("_")[1]
    logged = server.log.read_text()
    assert f"key {key_id} (ops) from 127.0.0.1: GET /api/v1/me -> 200" in logged, logged
    assert server.key[len("mw_") + 13 :] not in logged


def test_metrics_count_the_requests_of_every_worker(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    sent = 40
    # Fresh connections, so that both workers' accept loops get requests.
    for _ in range(sent):
        response = httpx2.get(f"{server.base}/api/v1/domains", headers=headers, timeout=10)
        assert response.status_code == 200
    text = httpx2.get(f"{server.base}/metrics", headers=headers, timeout=10).text
    counted = re.search(
        r'mailwarden_http_requests_total\{method="GET",route="/api/v1/domains",status="200"\}'
        r" ([0-9.e+]+)",
        text,
    )
    assert counted is not None, text
    # Whichever worker answered the scrape reports the requests both of them served.
    assert float(counted.group(1)) == sent
    assert 'mailwarden_objects{kind="admins"} 1.0' in text


def test_it_stops_on_sigterm_and_removes_its_metrics_directory(server: Server) -> None:
    assert len(server.metrics_dirs()) == 1
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
    assert server.metrics_dirs() == []
