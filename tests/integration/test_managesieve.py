"""The ManageSieve client and the Sieve sync against a real Dovecot (Pigeonhole) server.

The server (tests/support/managesieve_server.py) is a private Dovecot on 127.0.0.1 with a user
passdb and a master passdb. A few protocol corners that Dovecot will not produce on request (a
server that never answers, a BYE greeting, a non-loopback server without STARTTLS) are played by
a scripted socket peer at the end.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from mailwarden.forwarding import service as forwards
from mailwarden.forwarding.schemas import ForwardSet
from mailwarden.kernel.errors import FollowUpFailed
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.sieve import sync
from mailwarden.stack.sieve.managesieve import (
    AuthenticationFailed,
    CommandRefused,
    ConnectFailed,
    ManageSieveClient,
    encode_string,
    plain_initial_response,
)
from mailwarden.stack.sieve.script import SCRIPT_NAME
from mailwarden.vacation import service as vacations
from mailwarden.vacation.schemas import VacationSet
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.support.managesieve_server import (
    USER_PASSWORD,
    ManageSieveServer,
    closed_port,
    running_server,
)

ADDRESS = "user1@a.example"
SCRIPT = 'require "vacation";\r\nvacation :days 3 :subject "Away" "I am away.";\r\n'


@pytest.fixture(scope="module")
def server() -> Iterator[ManageSieveServer]:
    yield from running_server([ADDRESS, "postmaster@a.example"])


@pytest.fixture
def sieve_settings(server: ManageSieveServer, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        password_scheme="SHA256-CRYPT",
        managesieve_host=server.host,
        managesieve_port=server.port,
        sieve_master_user=server.master_user,
        sieve_master_password=SecretStr(server.master_password),
    )


def _session(
    server: ManageSieveServer, authcid: str, password: str, authzid: str = ""
) -> ManageSieveClient:
    client = ManageSieveClient(server.host, server.port)
    try:
        client.connect()
        client.authenticate_plain(authcid, password, authzid)
    except BaseException:
        client.close()
        raise
    return client


def as_user(server: ManageSieveServer, address: str = ADDRESS) -> ManageSieveClient:
    """A session as the user themselves, with their own password (not the master's)."""
    return _session(server, address, USER_PASSWORD)


def as_master(server: ManageSieveServer, address: str = ADDRESS) -> ManageSieveClient:
    return _session(server, server.master_user, server.master_password, address)


@pytest.fixture(autouse=True)
def clean_scripts(server: ManageSieveServer) -> Iterator[None]:
    """Each test starts with no scripts for the test users."""
    yield
    for address in server.users:
        with as_user(server, address) as client:
            client.set_active("")
            for name, _ in client.list_scripts():
                client.delete_script(name)
            client.logout()


# --- the client ---------------------------------------------------------------------------------


def test_the_greeting_lists_the_capabilities(server: ManageSieveServer) -> None:
    with ManageSieveClient(server.host, server.port) as client:
        client.connect()
        assert "vacation" in client.capabilities["SIEVE"].split()
        assert "PLAIN" in client.capabilities["SASL"].split()
        assert client.peer_is_loopback and not client.encrypted
        client.logout()


def test_it_uploads_activates_lists_replaces_and_deletes(server: ManageSieveServer) -> None:
    with as_master(server) as client:
        client.put_script(SCRIPT_NAME, SCRIPT)
        assert client.list_scripts() == [(SCRIPT_NAME, False)]
        client.set_active(SCRIPT_NAME)
        assert client.list_scripts() == [(SCRIPT_NAME, True)]
        assert client.get_script(SCRIPT_NAME) == SCRIPT
        replacement = 'require "copy";\r\nredirect :copy "a@elsewhere.example";\r\n'
        client.put_script(SCRIPT_NAME, replacement)
        assert client.get_script(SCRIPT_NAME) == replacement
        assert client.list_scripts() == [(SCRIPT_NAME, True)]
        with pytest.raises(CommandRefused) as refused:
            client.delete_script(SCRIPT_NAME)
        assert refused.value.response.code == ("ACTIVE",)
        client.set_active("")
        client.delete_script(SCRIPT_NAME)
        assert client.list_scripts() == []
        with pytest.raises(CommandRefused) as missing:
            client.delete_script(SCRIPT_NAME)
        assert missing.value.response.code == ("NONEXISTENT",)
        client.logout()
    assert server.stored_script(ADDRESS) is None


def test_the_master_login_acts_as_the_user(server: ManageSieveServer) -> None:
    with as_master(server) as client:
        client.put_script(SCRIPT_NAME, SCRIPT)
        client.set_active(SCRIPT_NAME)
        client.logout()
    # The user, logging in with their own password, sees the script as theirs.
    with as_user(server) as client:
        assert client.list_scripts() == [(SCRIPT_NAME, True)]
        client.logout()
    assert server.stored_script(ADDRESS) == SCRIPT


def test_a_script_with_errors_is_refused_with_the_servers_message(
    server: ManageSieveServer,
) -> None:
    with as_master(server) as client:
        with pytest.raises(CommandRefused) as refused:
            client.put_script(SCRIPT_NAME, 'vacation "unterminated;\r\n')
        # Dovecot sends the compiler's errors as a literal; they arrive whole.
        assert "error" in refused.value.response.text
        assert refused.value.response.status == "NO"
        # The session survives a refused command.
        assert client.list_scripts() == []
        client.logout()


def test_strings_with_quotes_and_line_breaks_go_as_literals() -> None:
    assert encode_string('a"b\\c') == b'"a\\"b\\\\c"'
    assert encode_string("two\r\nlines") == b"{10+}\r\ntwo\r\nlines"
    assert encode_string("x" * 1025).startswith(b"{1025+}\r\n")
    assert plain_initial_response("master", "pw", "user@a.example") == (
        "dXNlckBhLmV4YW1wbGUAbWFzdGVyAHB3"
    )


def test_wrong_master_password_is_an_authentication_failure(server: ManageSieveServer) -> None:
    with ManageSieveClient(server.host, server.port) as client:
        client.connect()
        with pytest.raises(AuthenticationFailed) as failed:
            client.authenticate_plain(server.master_user, "wrong password", authzid=ADDRESS)
    assert "Authentication failed" in str(failed.value)
    assert "wrong password" not in str(failed.value)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[ManageSieveServer]:
    yield from running_server([ADDRESS], tls_name="sieve.test.example")


def test_starttls_verifies_the_certificate_and_reads_the_capabilities_again(
    tls_server: ManageSieveServer,
) -> None:
    trusting = ssl.create_default_context(cafile=str(tls_server.certificate))
    with ManageSieveClient(tls_server.host, tls_server.port) as client:
        client.connect()
        assert "STARTTLS" in client.capabilities
        client.starttls(trusting, server_hostname="sieve.test.example")
        assert client.encrypted
        # After TLS the server announces its capabilities anew; STARTTLS is gone from them.
        assert "STARTTLS" not in client.capabilities
        assert "PLAIN" in client.capabilities["SASL"].split()
        client.authenticate_plain(
            tls_server.master_user, tls_server.master_password, authzid=ADDRESS
        )
        client.put_script(SCRIPT_NAME, SCRIPT)
        client.set_active(SCRIPT_NAME)
        assert client.list_scripts() == [(SCRIPT_NAME, True)]
        client.set_active("")
        client.delete_script(SCRIPT_NAME)
        client.logout()


@pytest.mark.parametrize(
    ("cafile", "name"),
    [(False, "sieve.test.example"), (True, "other.test.example")],
    ids=["untrusted-certificate", "wrong-name"],
)
def test_starttls_refuses_a_certificate_it_cannot_verify(
    tls_server: ManageSieveServer, cafile: bool, name: str
) -> None:
    context = ssl.create_default_context(cafile=str(tls_server.certificate) if cafile else None)
    with ManageSieveClient(tls_server.host, tls_server.port) as client:
        client.connect()
        with pytest.raises(ConnectFailed, match=r"TLS with .* failed"):
            client.starttls(context, server_hostname=name)


# --- push_script: the follow-up -----------------------------------------------------------------


def test_it_uploads_without_activating_then_removes(
    server: ManageSieveServer, sieve_settings: Settings
) -> None:
    assert sync.push_script(sieve_settings, ADDRESS, SCRIPT) is sync.Outcome.UPLOADED
    with as_user(server) as client:
        # Stored where Dovecot's sieve_before finds it, and not the active script.
        assert client.list_scripts() == [(SCRIPT_NAME, False)]
        assert client.get_script(SCRIPT_NAME) == SCRIPT
        client.logout()
    assert server.stored_script(ADDRESS) == SCRIPT
    assert sync.push_script(sieve_settings, ADDRESS, None) is sync.Outcome.REMOVED
    assert sync.push_script(sieve_settings, ADDRESS, None) is sync.Outcome.ABSENT
    with as_user(server) as client:
        assert client.list_scripts() == []
        client.logout()
    assert server.stored_script(ADDRESS) is None


OWN = 'require "fileinto";\r\nfileinto "Filed";\r\n'


def test_the_script_the_user_activated_stays_active_through_upload_and_removal(
    server: ManageSieveServer, sieve_settings: Settings
) -> None:
    with as_user(server) as client:
        client.put_script("own", OWN)
        client.set_active("own")
        client.logout()
    assert sync.push_script(sieve_settings, ADDRESS, SCRIPT) is sync.Outcome.UPLOADED
    replacement = 'require "copy";\r\nredirect :copy "a@elsewhere.example";\r\n'
    assert sync.push_script(sieve_settings, ADDRESS, replacement) is sync.Outcome.UPLOADED
    with as_user(server) as client:
        assert sorted(client.list_scripts()) == [(SCRIPT_NAME, False), ("own", True)]
        assert client.get_script("own") == OWN
        client.logout()
    assert server.stored_script(ADDRESS) == replacement
    assert sync.push_script(sieve_settings, ADDRESS, None) is sync.Outcome.REMOVED
    with as_user(server) as client:
        assert client.list_scripts() == [("own", True)]
        assert client.get_script("own") == OWN
        client.logout()


def _activated_by_an_older_mailwarden(server: ManageSieveServer) -> None:
    """What mailwarden did before sieve_before: upload and SETACTIVE its own script."""
    with as_master(server) as client:
        client.put_script(SCRIPT_NAME, SCRIPT)
        client.set_active(SCRIPT_NAME)
        client.logout()


def test_an_upload_deactivates_the_script_an_older_mailwarden_activated(
    server: ManageSieveServer, sieve_settings: Settings
) -> None:
    _activated_by_an_older_mailwarden(server)
    # Dovecot would now run it twice: as the active script and from sieve_before.
    assert sync.push_script(sieve_settings, ADDRESS, SCRIPT) is sync.Outcome.UPLOADED
    with as_user(server) as client:
        assert client.list_scripts() == [(SCRIPT_NAME, False)]
        client.logout()
    assert not (server.sieve_dir(ADDRESS).parent / ".dovecot.sieve").exists()


def test_a_removal_deletes_the_script_an_older_mailwarden_activated(
    server: ManageSieveServer, sieve_settings: Settings
) -> None:
    _activated_by_an_older_mailwarden(server)
    with as_user(server) as client:
        client.put_script("own", OWN)
        client.logout()
    assert sync.push_script(sieve_settings, ADDRESS, None) is sync.Outcome.REMOVED
    with as_user(server) as client:
        # Nothing is activated in its place: which script was active before is unknown.
        assert client.list_scripts() == [("own", False)]
        client.logout()
    assert server.stored_script(ADDRESS) is None


def test_a_wrong_master_password_fails_clearly_and_never_shows_it(
    server: ManageSieveServer,
    sieve_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "wrong-but-secret master password"
    settings = sieve_settings.model_copy(update={"sieve_master_password": SecretStr(secret)})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(settings, ADDRESS, SCRIPT)
    assert failed.value.what == f"the Sieve script of {ADDRESS} was not applied"
    assert "refused the login of master user 'mailwarden-sieve'" in failed.value.reason
    assert "Authentication failed" in failed.value.reason
    captured = capsys.readouterr()
    shown = [str(failed.value), repr(failed.value), captured.out, captured.err, caplog.text]
    assert all(secret not in text for text in shown)
    assert all(server.master_password not in text for text in shown)
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    assert server.stored_script(ADDRESS) is None


def test_an_unknown_user_fails_clearly(server: ManageSieveServer, sieve_settings: Settings) -> None:
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(sieve_settings, "nobody@a.example", SCRIPT)
    assert "for nobody@a.example" in failed.value.reason
    assert "Authorization failed" in failed.value.reason


def test_a_rejected_script_fails_with_the_servers_message(
    server: ManageSieveServer, sieve_settings: Settings
) -> None:
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(sieve_settings, ADDRESS, 'require "nonsense";\r\n')
    assert "rejected the script" in failed.value.reason
    assert "nonsense" in failed.value.reason
    assert "\n" not in failed.value.reason


def test_a_closed_port_fails_with_connection_refused(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        managesieve_host="127.0.0.1",
        managesieve_port=closed_port(),
        sieve_master_password=SecretStr("x"),
    )
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(settings, ADDRESS, SCRIPT)
    assert failed.value.reason.endswith("connection refused")


def test_no_master_password_fails_before_connecting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, managesieve_host="127.0.0.1", managesieve_port=1)
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(settings, ADDRESS, SCRIPT)
    assert "MAILWARDEN_SIEVE_MASTER_PASSWORD" in failed.value.reason


def test_store_only_mode_does_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert sync.push_script(settings, ADDRESS, SCRIPT) is sync.Outcome.NOT_CONFIGURED


# --- the services, end to end, on every backend ------------------------------------------------


def test_the_services_apply_the_combined_script_after_commit(
    world: World, make_uow: UowFactory, server: ManageSieveServer, sieve_settings: Settings
) -> None:
    def run(action: Callable[[UnitOfWork], object]) -> list[FollowUpFailed]:
        with make_uow() as uow:
            uow.settings = sieve_settings
            action(uow)
            uow.finish()
        return uow.follow_up_failures

    vacation = VacationSet(
        subject='Away "for now"',
        body="Back on Monday.\n",
        starts_on=date(2025, 7, 1),
        interval_days=3,
    )
    assert run(lambda uow: vacations.set_vacation(uow, world.domain_admin, ADDRESS, vacation)) == []
    script = server.stored_script(ADDRESS)
    assert script is not None
    assert 'vacation :days 3 :subject "Away \\"for now\\"" "Back on Monday.\r\n";' in script
    assert 'currentdate :value "ge" "date" "2025-07-01"' in script

    forward = parse(ForwardSet, {"targets": ["deputy@b.example"], "keep_copy": True})
    assert run(lambda uow: forwards.set_forward(uow, world.domain_admin, ADDRESS, forward)) == []
    script = server.stored_script(ADDRESS)
    assert script is not None
    assert "vacation :days 3" in script and 'redirect :copy "deputy@b.example";' in script
    assert 'require ["copy", "date", "relational", "vacation"];' in script

    assert run(lambda uow: vacations.disable_vacation(uow, world.domain_admin, ADDRESS)) == []
    script = server.stored_script(ADDRESS)
    assert script is not None and "vacation" not in script

    assert run(lambda uow: forwards.disable_forward(uow, world.domain_admin, ADDRESS)) == []
    assert server.stored_script(ADDRESS) is None
    with as_user(server) as client:
        assert client.list_scripts() == []
        client.logout()

    # `apply` puts back what the database says, e.g. after someone deleted it by hand.
    assert run(lambda uow: forwards.set_forward(uow, world.domain_admin, ADDRESS, forward)) == []
    with as_user(server) as client:
        client.delete_script(SCRIPT_NAME)
        client.logout()
    assert run(lambda uow: vacations.apply_script(uow, world.domain_admin, ADDRESS)) == []
    assert 'redirect :copy "deputy@b.example";' in (server.stored_script(ADDRESS) or "")


def test_a_dry_run_never_touches_the_server(
    world: World, make_uow: UowFactory, server: ManageSieveServer, sieve_settings: Settings
) -> None:
    forward = parse(ForwardSet, {"targets": ["deputy@b.example"]})
    with make_uow(dry_run=True) as uow:
        uow.settings = sieve_settings
        forwards.set_forward(uow, world.domain_admin, ADDRESS, forward)
        uow.finish()
    assert server.stored_script(ADDRESS) is None


# --- protocol corners, played by a scripted peer ------------------------------------------------


class ScriptedPeer:
    """Accepts one connection on `host`, sends `greeting`, and records what the client sends
    until it hangs up (or `close()`)."""

    def __init__(self, host: str, greeting: bytes) -> None:
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.greeting = greeting
        self.received = b""
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            if self.greeting:
                connection.sendall(self.greeting)
            connection.settimeout(0.1)
            while not self.done.is_set():
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                self.received += chunk

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def peer_factory() -> Iterator[list[ScriptedPeer]]:
    peers: list[ScriptedPeer] = []
    yield peers
    for peer in peers:
        peer.close()


def test_a_silent_server_times_out(peer_factory: list[ScriptedPeer]) -> None:
    peer = ScriptedPeer("127.0.0.1", b"")
    peer_factory.append(peer)
    client = ManageSieveClient("127.0.0.1", peer.port, timeout=0.3)
    with pytest.raises(ConnectFailed, match=r"did not answer within 0.3 s"):
        client.connect()
    client.close()


def test_a_bye_greeting_is_reported_with_its_text(peer_factory: list[ScriptedPeer]) -> None:
    peer = ScriptedPeer("127.0.0.1", b'BYE (TRYLATER) "Too many connections"\r\n')
    peer_factory.append(peer)
    with pytest.raises(ConnectFailed) as failed:
        ManageSieveClient("127.0.0.1", peer.port, timeout=2).connect()
    assert str(failed.value).endswith("closed the connection: BYE (TRYLATER) Too many connections")


def _non_loopback_address() -> str | None:
    """An address of this host that is not loopback (no packet is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_master_password_is_never_sent_in_clear_off_loopback(
    peer_factory: list[ScriptedPeer], tmp_path: Path
) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    peer = ScriptedPeer(address, b'"SASL" "PLAIN"\r\n"SIEVE" "vacation"\r\nOK "ready"\r\n')
    peer_factory.append(peer)
    settings = Settings(
        data_dir=tmp_path,
        managesieve_host=address,
        managesieve_port=peer.port,
        sieve_master_password=SecretStr("must not travel in clear"),
    )
    with pytest.raises(FollowUpFailed) as failed:
        sync.push_script(settings, ADDRESS, SCRIPT)
    assert "offers no STARTTLS" in failed.value.reason
    peer.close()
    assert b"AUTHENTICATE" not in peer.received
