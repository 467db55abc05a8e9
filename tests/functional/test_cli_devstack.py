"""`mailwarden devstack` refusals that start nothing: permission, packages, ports, nothing to stop.

The daemons themselves are exercised by tests/e2e, which runs `devstack up` for real.
"""

from __future__ import annotations

import socket
from pathlib import Path

from mailwarden.stack.devstack import required_packages
from tests.functional.cli_helpers import Cli


def _complete_root(root: Path) -> Path:
    """A filesystem root with every package marker file, whatever this machine has installed."""
    for dialect in ("sqlite", "postgresql", "mysql"):
        for package in required_packages(dialect):
            marker = root / package.marker.lstrip("/")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return root


def _port_options(smtp: int) -> list[str]:
    """--smtp-port as given, every other listener on a port the kernel reports free."""
    options = ["--smtp-port", str(smtp)]
    probes = [socket.socket() for _ in range(5)]
    try:
        for name, probe in zip(
            ("submission", "imap", "pop3", "lmtp", "sieve"), probes, strict=True
        ):
            probe.bind(("127.0.0.1", 0))
            options += [f"--{name}-port", str(probe.getsockname()[1])]
    finally:
        for probe in probes:
            probe.close()
    return options


def test_up_names_the_missing_packages_and_the_command_and_starts_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "stack"
    empty_root = tmp_path / "root"
    empty_root.mkdir()

    line = cli.refused("devstack", "up", "--dir", str(stack_dir), "--package-root", str(empty_root))

    assert "needs the Debian packages postfix, dovecot-core" in line
    assert "dovecot-managesieved" in line
    assert "apt-get install -y" in line
    assert "postfix/main_mailer_type select No configuration" in line
    assert not stack_dir.exists()


def test_up_refuses_a_port_in_use_and_starts_nothing(cli: Cli, tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    root = _complete_root(tmp_path / "root")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]

        line = cli.refused(
            "devstack",
            "up",
            "--dir",
            str(stack_dir),
            "--package-root",
            str(root),
            *_port_options(busy),
        )

    assert line.endswith(
        f"ports already in use on 127.0.0.1: {busy} (smtp); choose others with --smtp-port, "
        "--imap-port, ..."
    )
    assert not stack_dir.exists()


def test_up_refuses_one_port_for_two_listeners(cli: Cli, tmp_path: Path) -> None:
    root = _complete_root(tmp_path / "root")

    line = cli.refused(
        "devstack",
        "up",
        "--dir",
        str(tmp_path / "stack"),
        "--package-root",
        str(root),
        "--smtp-port",
        "40001",
        "--imap-port",
        "40001",
    )

    assert "each listener needs its own port; given twice: [40001]" in line


def test_up_needs_the_stack_permission(cli: Cli, tmp_path: Path) -> None:
    cli.add_domain("a.example")
    cli.add_admin("alice", "domain-admin", "a.example")

    line = cli.refused("devstack", "up", "--dir", str(tmp_path / "stack"), as_admin="alice")

    assert line == "mailwarden: not permitted: system:stack:config"
    assert not (tmp_path / "stack").exists()


def test_down_and_status_with_nothing_running_say_so(cli: Cli, tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"

    assert cli.ok("devstack", "down", "--dir", str(stack_dir)).stdout == (
        f"Nothing runs in {stack_dir}.\n"
    )
    assert cli.json("devstack", "down", "--dir", str(stack_dir)) == {
        "dir": str(stack_dir),
        "stopped": [],
    }
    status = cli.json("devstack", "status", "--dir", str(stack_dir))
    assert status["running"] is False
    assert status["postfix_running"] is False
    assert status["dovecot_running"] is False


def test_up_down_and_status_refuse_a_dir_that_is_a_symlink(cli: Cli, tmp_path: Path) -> None:
    """`--dir /tmp/mw-dev` planted as a symlink to /etc must never lead root into /etc."""
    target = tmp_path / "etc"
    (target / "postfix").mkdir(parents=True)
    link = tmp_path / "mw-dev"
    link.symlink_to(target)
    empty_root = tmp_path / "root"
    empty_root.mkdir()

    for argv in (
        ["up", "--dir", str(link), "--package-root", str(empty_root)],
        ["down", "--dir", str(link)],
        ["status", "--dir", str(link)],
    ):
        line = cli.refused("devstack", *argv)
        assert line.startswith(f"mailwarden: --dir is a symbolic link (to {target})"), line

    assert [path.name for path in target.iterdir()] == ["postfix"]
    assert list((target / "postfix").iterdir()) == []


def test_up_refuses_an_existing_dir_others_can_write_and_leaves_its_mode(
    cli: Cli, tmp_path: Path
) -> None:
    """`--dir /tmp` must not turn a 1777 directory into 0755 (nor use it)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    empty_root = tmp_path / "root"
    empty_root.mkdir()

    line = cli.refused("devstack", "up", "--dir", str(shared), "--package-root", str(empty_root))

    assert f"mailwarden: {shared} exists, owned by" in line
    assert "the devstack uses only directories it made itself" in line
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert list(shared.iterdir()) == []


def test_up_refuses_an_invalid_mail_owner_name_before_touching_anything(
    cli: Cli, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "s"
    root = _complete_root(tmp_path / "root")

    line = cli.refused(
        "devstack",
        "up",
        "--dir",
        str(stack_dir),
        "--package-root",
        str(root),
        *_port_options(_free_port()),
        env={"MAILWARDEN_VMAIL_USER": "--badname"},
    )

    assert line.startswith("mailwarden: vmail_user: "), line
    assert line.endswith("[invalid_name]"), line
    assert not stack_dir.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
