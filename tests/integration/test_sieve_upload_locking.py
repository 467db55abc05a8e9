"""The Sieve upload after a vacation change holds no database lock while it talks to the network.

With SQLite every transaction takes the write lock at BEGIN (so Dovecot's quota writes cannot
fail a read-then-write), which makes a transaction left open across a slow ManageSieve exchange
block every other writer: the CLI, and Dovecot's quota_clone.
"""

from __future__ import annotations

import socket
import sqlite3
import threading

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from mailwarden.db.engine import session_factory
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from mailwarden.settings import Settings
from mailwarden.vacation import service as vacations
from mailwarden.vacation.schemas import VacationSet
from tests.factories.world import PASSWORD

OPERATOR = Actor.local_operator(Channel.SYSTEM)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True, scope="session")
def test_no_write_lock_is_held_during_the_managesieve_exchange(
    committed_database: str, engine: Engine, settings: Settings
) -> None:
    with UnitOfWork(session_factory(engine)(), settings) as uow:
        domains.create(uow, OPERATOR, parse(DomainCreate, {"name": "lock.example"}))
        data = parse(MailboxCreate, {"address": "ann@lock.example"})
        mailboxes.create(uow, OPERATOR, data, password=PASSWORD)
        uow.finish()

    # A ManageSieve server that accepts the connection and then says nothing.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    sieve_settings = settings.model_copy(
        update={
            "managesieve_host": "127.0.0.1",
            "managesieve_port": silent.getsockname()[1],
            "sieve_master_password": SecretStr("master secret"),
        }
    )
    outcome: list[UnitOfWork] = []

    def set_vacation() -> None:
        with UnitOfWork(session_factory(engine)(), sieve_settings) as uow:
            away = VacationSet(subject="Away", body="Back soon.")
            vacations.set_vacation(uow, OPERATOR, "ann@lock.example", away)
            uow.finish()
        outcome.append(uow)

    worker = threading.Thread(target=set_vacation)
    worker.start()
    try:
        silent.settimeout(10)
        waiting, _ = silent.accept()  # the upload has begun and waits for the greeting
        with waiting:
            database = make_url(committed_database).database
            assert database is not None
            other = sqlite3.connect(database, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if the upload held it
                other.execute("ROLLBACK")
            finally:
                other.close()
    finally:
        worker.join(15)
        silent.close()
    assert not worker.is_alive()
    [uow] = outcome
    assert len(uow.follow_up_failures) == 1
