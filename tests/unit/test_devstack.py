"""The devstack's plain parts: ports, packages, the instance files and the filesystem rules,
without daemons (tests/e2e runs them, and the checks that need root)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from mailwarden.kernel.actor import Actor, Role
from mailwarden.kernel.errors import PermissionDenied, ValidationError
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack import dovecot, postfix
from mailwarden.stack.devstack import (
    DevstackError,
    StackLayout,
    StackPorts,
    deploy_target,
    install_command,
    missing_packages,
    ports_in_use,
    required_packages,
    up,
)
from mailwarden.stack.devstack.control import write_instance_files
from mailwarden.stack.devstack.fs import (
    Ownership,
    check_location,
    create_private_file,
    make_directory,
    open_log,
    read_private_file,
    stack_directory,
)
from mailwarden.stack.devstack.instance import dovecot_conf, postfix_main_cf, postfix_master_cf
from mailwarden.stack.devstack.ports import wait_until_closed, wait_until_open
from mailwarden.stack.devstack.render import render_stack
from mailwarden.stack.dialect import connection_from_url
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
    [
        ("sqlite", "sqlite"),
        ("postgresql", "pgsql"),
        ("mysql", "mysql"),
        ("mariadb", "mysql"),
        ("pgsql", "pgsql"),
    ],
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


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/mw.db",
        "postgresql+psycopg://u@db.example/mw",
        "mysql+pymysql://u@db.example/mw",
        "mariadb+pymysql://u@db.example/mw",
    ],
)
def test_packages_follow_the_driver_the_generated_files_load(url: str) -> None:
    """The driver from dialect.py names the packages: postfix-<driver>, dovecot-<driver>."""
    driver = connection_from_url(url).driver

    names = [package.name for package in required_packages(driver)]

    assert names[-2:] == [f"postfix-{driver}", f"dovecot-{driver}"]


def test_a_database_without_daemon_drivers_has_no_packages() -> None:
    with pytest.raises(ValueError, match="oracle"):
        required_packages("oracle")


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


def test_the_instance_embeds_the_fragments_under_the_names_config_exports(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, password_scheme="SHA256-CRYPT")

    files = render_stack(settings, LAYOUT, PORTS, fast_auth_failures=False)

    assert {postfix.MAIN_CF, postfix.MASTER_CF, "main.cf", "master.cf"} <= files.postfix.keys()
    assert {dovecot.CONF_FRAGMENT, "dovecot.conf"} <= files.dovecot.keys()
    main_cf = files.postfix["main.cf"].splitlines()
    assert "virtual_transport = lmtp:inet:127.0.0.1:2605" in main_cf
    assert files.postfix[postfix.MASTER_CF].rstrip() in files.postfix["master.cf"]
    assert files.dovecot["dovecot.conf"].splitlines()[-1] == f"!include {dovecot.CONF_FRAGMENT}"


# --- the service: permission and validation before anything is touched -------------------------


def _uow(settings: Settings) -> UnitOfWork:
    # `up` reads no table: an unbound session is all its unit of work needs here.
    return UnitOfWork(Session(), settings, dry_run=True)


def test_up_requires_the_stack_permission_before_touching_anything(tmp_path: Path) -> None:
    domain_admin = Actor(username="alice", role=Role.DOMAIN_ADMIN, domain_ids=frozenset({1}))
    layout = StackLayout(tmp_path / "stack")

    with pytest.raises(PermissionDenied, match="system:stack:config"):
        up(_uow(Settings(data_dir=tmp_path)), domain_admin, layout, PORTS)

    assert not layout.root.exists()


def test_up_refuses_an_invalid_account_name_before_touching_anything(tmp_path: Path) -> None:
    """Dovecot's rule for account names is the one rule: useradd never sees such a name."""
    settings = Settings(data_dir=tmp_path, vmail_user="-o")
    layout = StackLayout(tmp_path / "stack")
    package_root = fake_root(tmp_path / "root", "sqlite")

    with pytest.raises(ValidationError) as refused:
        up(_uow(settings), Actor.local_operator(), layout, _free_ports(), package_root=package_root)

    assert (refused.value.field, refused.value.rule) == ("vmail_user", "invalid_name")
    assert not layout.root.exists()


def _free_ports() -> StackPorts:
    probes = [socket.socket() for _ in range(6)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return StackPorts(*(probe.getsockname()[1] for probe in probes))
    finally:
        for probe in probes:
            probe.close()


# --- --dir and the directories below it -----------------------------------------------------------


def test_a_dir_that_is_a_symlink_is_refused_not_resolved(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "etc")

    with pytest.raises(DevstackError, match="--dir is a symbolic link"):
        stack_directory(tmp_path / "link")
    with pytest.raises(DevstackError, match="on the way to --dir, is a symbolic link"):
        stack_directory(tmp_path / "link" / "stack")


def test_a_relative_dir_becomes_absolute_without_resolving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert stack_directory(Path("stack")) == tmp_path / "stack"
    assert StackLayout.at(Path("x/../stack")).root == tmp_path / "stack"


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o775, 0o757])
def test_an_existing_dir_others_can_write_is_refused_and_left_alone(
    tmp_path: Path, mode: int
) -> None:
    stack_dir = tmp_path / "shared"
    stack_dir.mkdir()
    stack_dir.chmod(mode)

    with pytest.raises(DevstackError, match="the devstack uses only directories it made"):
        check_location(stack_dir)

    assert stat.S_IMODE(stack_dir.stat().st_mode) == mode


def test_a_dir_below_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    (tmp_path / "sticky").mkdir()
    (tmp_path / "sticky").chmod(0o1777)

    with pytest.raises(DevstackError, match="could replace --dir after it was checked"):
        check_location(tmp_path / "open" / "stack")
    # A sticky directory (/tmp) is fine: nobody else can rename or remove what we create there.
    check_location(tmp_path / "sticky" / "stack")


def test_a_directory_is_created_with_its_mode_or_checked_before_it_is_changed(
    tmp_path: Path,
) -> None:
    ours = Ownership(uid=os.geteuid(), mode=0o755)
    created = tmp_path / "created"
    make_directory(created, ours)
    assert stat.S_IMODE(created.stat().st_mode) == 0o755

    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "file").write_text("")
    (tmp_path / "group-writable").mkdir()
    (tmp_path / "group-writable").chmod(0o770)
    for name in ("link", "file", "group-writable"):
        with pytest.raises(DevstackError, match=f"{tmp_path / name} exists"):
            make_directory(tmp_path / name, ours)
    assert stat.S_IMODE((tmp_path / "elsewhere").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "group-writable").stat().st_mode) == 0o770


def test_a_directory_shared_with_a_group_stays_writable_for_that_group_only(
    tmp_path: Path,
) -> None:
    """The SQLite directory given to group postfix (2770) is the devstack's, and reused."""
    gid = os.getegid()
    shared = Ownership(uid=os.geteuid(), mode=0o2770, gid=gid)
    directory = tmp_path / "db"
    make_directory(directory, shared)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o2770

    make_directory(directory, shared)

    directory.chmod(0o2777)
    with pytest.raises(DevstackError, match="exists, owned by"):
        make_directory(directory, shared)
    directory.chmod(0o2770)
    with pytest.raises(DevstackError, match="exists, owned by"):
        make_directory(directory, Ownership(uid=os.geteuid(), mode=0o2770, gid=gid + 1))


# --- files: written by rename, logs without following, the secret only from a private file -------


def test_instance_files_replace_symlinks_instead_of_writing_through_them(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path / "stack")
    files = render_stack(
        Settings(data_dir=tmp_path, password_scheme="SHA256-CRYPT"),
        layout,
        PORTS,
        fast_auth_failures=False,
    )
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    for directory in (layout.postfix_dir / "mailwarden", layout.dovecot_dir / "conf.d"):
        directory.mkdir(parents=True)
    planted = [
        layout.postfix_dir / "main.cf",
        layout.postfix_dir / postfix.MAIN_CF,
        layout.dovecot_conf,
        layout.dovecot_dir / dovecot.CONF_FRAGMENT,
    ]
    for path in planted:
        path.symlink_to(victim)

    write_instance_files(layout, files)

    assert victim.read_text() == "untouched\n"
    for path in planted:
        assert not path.is_symlink()
    assert (layout.postfix_dir / "main.cf").read_text() == files.postfix["main.cf"]


def test_a_log_is_never_opened_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "startup.log").symlink_to(victim)

    with pytest.raises(DevstackError, match="is a symbolic link"):
        open_log(tmp_path / "startup.log")

    assert victim.read_text() == "untouched\n"


def test_the_master_password_is_read_only_from_a_private_file_of_ours(tmp_path: Path) -> None:
    password = tmp_path / "sieve-master-password"
    create_private_file(password, "secret\n")
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert read_private_file(password) == "secret\n"

    password.chmod(0o644)
    with pytest.raises(DevstackError, match="with mode 0600"):
        read_private_file(password)

    other = tmp_path / "other-password"
    other.write_text("someone else's\n")
    other.chmod(0o600)
    (tmp_path / "link").symlink_to(other)
    with pytest.raises(DevstackError, match="is a symbolic link"):
        read_private_file(tmp_path / "link")
    # A new password never goes through a name that exists, even a dangling symlink.
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DevstackError, match="appeared"):
        create_private_file(tmp_path / "dangling", "secret\n")
    assert not (tmp_path / "nowhere").exists()
