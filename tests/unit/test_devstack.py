"""The devstack's plain parts: ports, packages and the instance files, without daemons."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mailwarden.settings import Settings
from mailwarden.stack.devstack import (
    StackLayout,
    StackPorts,
    deploy_target,
    install_command,
    missing_packages,
    ports_in_use,
    required_packages,
)
from mailwarden.stack.devstack.instance import dovecot_conf, postfix_main_cf, postfix_master_cf
from mailwarden.stack.devstack.ports import wait_until_closed, wait_until_open
from mailwarden.stack.target import TcpPort, UnixSocket

LAYOUT = StackLayout(Path("/tmp/mw-dev"))
PORTS = StackPorts(smtp=2601, submission=2602, imap=2603, pop3=2604, lmtp=2605, sieve=2606)
FRAGMENT = """\
# Mailwarden: generated.
virtual_mailbox_domains = proxy:sqlite:/tmp/mw-dev/postfix/mailwarden/domains.cf
mailwarden_submission_tls = encrypt
smtpd_sasl_path = private/auth
"""


def fake_root(tmp_path: Path, dialect: str) -> Path:
    """A filesystem root that holds every file the package check looks for."""
    for package in required_packages(dialect):
        marker = tmp_path / package.marker.lstrip("/")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return tmp_path


# --- ports ---------------------------------------------------------------------------------------


def test_ports_given_twice_are_reported() -> None:
    assert StackPorts().duplicates() == []
    assert StackPorts(smtp=2525, imap=2525).duplicates() == [2525]


def test_a_listening_port_is_in_use_and_a_closed_one_is_not() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        assert ports_in_use([busy, free]) == [busy]
        assert wait_until_open([busy], timeout=1) == []
    assert wait_until_closed([busy], timeout=1) == []
    assert wait_until_open([busy], timeout=0.1) == [busy]


# --- packages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "driver"),
    [("sqlite", "sqlite"), ("postgresql", "pgsql"), ("mysql", "mysql"), ("mariadb", "mysql")],
)
def test_every_package_is_missing_below_an_empty_root(
    tmp_path: Path, dialect: str, driver: str
) -> None:
    missing = missing_packages(dialect, tmp_path)

    assert missing == [
        "postfix",
        "dovecot-core",
        "dovecot-imapd",
        "dovecot-pop3d",
        "dovecot-lmtpd",
        "dovecot-sieve",
        "dovecot-managesieved",
        f"postfix-{driver}",
        f"dovecot-{driver}",
    ]


def test_nothing_is_missing_when_every_file_is_there(tmp_path: Path) -> None:
    root = fake_root(tmp_path, "postgresql")

    assert missing_packages("postgresql", root) == []
    # The SQLite drivers are other packages.
    assert missing_packages("sqlite", root) == ["postfix-sqlite", "dovecot-sqlite"]


def test_the_install_command_preseeds_postfix_without_configuration() -> None:
    command = install_command(["postfix", "dovecot-lmtpd"])

    assert "postfix/main_mailer_type select No configuration" in command
    assert command.endswith("apt-get install -y postfix dovecot-lmtpd")


# --- instance files ------------------------------------------------------------------------------


def test_the_deploy_target_points_into_the_instance() -> None:
    target = deploy_target(LAYOUT, PORTS, Settings(vmail_user="vm", vmail_group="vg"))

    assert target.postfix_dir == Path("/tmp/mw-dev/postfix")
    assert target.dovecot_dir == Path("/tmp/mw-dev/dovecot")
    assert target.postfix_spool == Path("/tmp/mw-dev/postfix-queue")
    assert target.mail_root == Path("/tmp/mw-dev/mail")
    assert (target.vmail_user, target.vmail_group) == ("vm", "vg")
    assert target.lmtp == TcpPort("127.0.0.1", 2605)
    assert target.sasl == UnixSocket(Path("/tmp/mw-dev/postfix-queue/private/auth"))
    assert target.sieve_submission == "127.0.0.1:2601"
    assert target.submission_service == "127.0.0.1:2602"


def test_main_cf_wraps_the_generated_fragment_and_turns_submission_tls_off() -> None:
    text = postfix_main_cf(LAYOUT, PORTS, FRAGMENT)

    assert "queue_directory = /tmp/mw-dev/postfix-queue" in text
    assert "maillog_file = /tmp/mw-dev/log/postfix.log" in text
    assert "inet_interfaces = 127.0.0.1" in text
    # The fragment is there line for line, except its TLS level, which is set once, to none.
    for line in FRAGMENT.splitlines():
        if "mailwarden_submission_tls" not in line:
            assert line in text.splitlines()
    assert [line for line in text.splitlines() if line.startswith("mailwarden_submission_tls")] == [
        "mailwarden_submission_tls = none"
    ]


def test_main_cf_sets_the_tls_level_when_the_fragment_does_not() -> None:
    text = postfix_main_cf(LAYOUT, PORTS, "virtual_transport = lmtp:inet:127.0.0.1:2605\n")

    assert text.splitlines().count("mailwarden_submission_tls = none") == 1
    assert "virtual_transport = lmtp:inet:127.0.0.1:2605" in text.splitlines()


def test_master_cf_runs_every_service_unchrooted_and_appends_the_fragment() -> None:
    fragment = "127.0.0.1:2602 inet n - - - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"

    text = postfix_master_cf(LAYOUT, PORTS, fragment)

    services = [
        line.split()
        for line in text.splitlines()
        if line and not line.startswith(("#", " ")) and line not in fragment
    ]
    assert ["127.0.0.1:2601", "inet", "n", "-", "n", "-", "-", "smtpd"] in services
    assert {fields[0] for fields in services} >= {"pickup", "cleanup", "qmgr", "proxymap", "lmtp"}
    assert all(fields[4] == "n" for fields in services), services
    assert fragment.rstrip() in text


@pytest.mark.parametrize("fast", [False, True])
def test_dovecot_conf_listens_on_loopback_and_includes_the_fragment(fast: bool) -> None:
    text = dovecot_conf(LAYOUT, PORTS, fast_auth_failures=fast)

    lines = [line.strip() for line in text.splitlines()]
    assert "listen = 127.0.0.1" in lines
    assert "base_dir = /tmp/mw-dev/dovecot-run" in lines
    assert "log_path = /tmp/mw-dev/log/dovecot.log" in lines
    assert "ssl = no" in lines
    for port in (PORTS.imap, PORTS.pop3, PORTS.sieve):
        assert f"port = {port}" in lines
    assert lines[-1] == "!include conf.d/90-mailwarden.conf"
    assert ("auth_failure_delay = 0" in lines) is fast
    assert ("unix_listener anvil-auth-penalty {" in lines) is fast


def test_each_directory_gets_its_own_dovecot_instance_name() -> None:
    other = StackLayout(Path("/tmp/mw-dev-2"))

    assert LAYOUT.instance_name != other.instance_name
    assert LAYOUT.instance_name == StackLayout(Path("/tmp/mw-dev")).instance_name


def test_a_directory_too_deep_for_unix_sockets_is_refused() -> None:
    assert LAYOUT.socket_path_problem() is None
    deep = StackLayout(Path("/tmp") / ("x" * 90))

    problem = deep.socket_path_problem()

    assert problem is not None
    assert "107 bytes" in problem
