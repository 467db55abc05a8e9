"""`mailwarden devstack` itself: what it reports, what it configures, how it fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mailwarden.db.engine import session_factory
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.stack.devstack import DevstackError, StackLayout, StackPorts, down, status, up
from mailwarden.stack.devstack import render as stack_render
from mailwarden.stack.devstack.ports import accepts_connections, ports_in_use

from .conftest import MailStack, free_ports, run_mailwarden, stack_environment


def _mailwarden(stack: MailStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mailwarden(stack_environment(stack.database_url, stack.dir), *args)


def _operator(stack: MailStack) -> tuple[UnitOfWork, Actor]:
    """What `devstack up` is given by the CLI: a read-only unit of work and the operator."""
    uow = UnitOfWork(session_factory(stack.engine)(), stack.settings, dry_run=True)
    return uow, Actor.local_operator(Channel.SYSTEM)


def test_up_on_a_running_stack_reports_it_unchanged(stack: MailStack) -> None:
    result = _mailwarden(stack, "devstack", "up", "--dir", str(stack.dir), "--json")

    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["already_running"] is True
    assert info["ports"] == stack.ports
    status_result = _mailwarden(stack, "devstack", "status", "--dir", str(stack.dir), "--json")
    assert json.loads(status_result.stdout)["running"] is True


def test_the_sieve_master_password_is_never_printed(stack: MailStack) -> None:
    assert stack.settings.sieve_master_password is not None
    secret = stack.settings.sieve_master_password.get_secret_value()
    password_file = Path(stack.info["sieve_master_password_file"])

    text = _mailwarden(stack, "devstack", "status", "--dir", str(stack.dir))

    assert password_file.stat().st_mode & 0o777 == 0o600
    assert f'export MAILWARDEN_SIEVE_MASTER_PASSWORD="$(cat {password_file})"' in text.stdout
    assert f"export MAILWARDEN_MANAGESIEVE_PORT={stack.ports['sieve']}" in text.stdout
    assert secret not in text.stdout + text.stderr
    assert secret not in json.dumps(stack.info)


def test_the_instance_configuration_parses_without_a_warning(stack: MailStack) -> None:
    for argv in (
        ["postconf", "-c", str(stack.dir / "postfix"), "-n"],
        ["doveconf", "-c", str(stack.dir / "dovecot" / "dovecot.conf"), "-n"],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", result.stderr


def test_a_daemon_that_fails_to_start_leaves_nothing_running_and_shows_its_log(
    stack: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A setting Dovecot does not know: Postfix starts, Dovecot refuses its configuration.
    broken = stack_render.dovecot_conf
    monkeypatch.setattr(
        stack_render,
        "dovecot_conf",
        lambda *args, **kwargs: broken(*args, **kwargs) + "no_such_setting_here = yes\n",
    )
    layout = StackLayout(Path(tempfile.mkdtemp(prefix="mw-e2e-fail-", dir="/tmp")))
    layout.root.chmod(0o755)
    ports = StackPorts(*free_ports(6))

    try:
        with pytest.raises(DevstackError) as failure:
            up(*_operator(stack), layout, ports)
        after = status(layout)
    finally:
        down(layout)
        shutil.rmtree(layout.root, ignore_errors=True)

    assert failure.value.message == "dovecot did not start"
    assert "no_such_setting_here" in failure.value.log_tail
    assert not after.postfix_running and not after.dovecot_running
    assert ports_in_use(ports.as_dict().values()) == []


def test_pid_files_naming_another_instances_daemons_are_neither_reported_nor_signalled(
    stack: MailStack,
) -> None:
    """A stale pid file whose pid now belongs to another Postfix and Dovecot (this running stack
    plays the system's): `status` does not count them, `down` never signals them, and no
    `postfix -c DIR` runs the program a main.cf there names (as root)."""
    running = StackLayout(stack.dir)
    other = StackLayout(Path(tempfile.mkdtemp(prefix="mw-e2e-other-", dir="/tmp")))
    try:
        other.root.chmod(0o755)
        other.postfix_pid_file.parent.mkdir(parents=True)
        shutil.copy(running.postfix_pid_file, other.postfix_pid_file)
        other.dovecot_base.mkdir()
        shutil.copy(running.dovecot_pid_file, other.dovecot_pid_file)
        shutil.copy(running.state_file, other.state_file)
        marker = other.root / "postfix-script-ran"
        programs = other.root / "programs"
        programs.mkdir()
        (programs / "postfix-script").write_text(f"#!/bin/sh\ntouch {marker}\n")
        (programs / "postfix-script").chmod(0o755)
        other.postfix_dir.mkdir()
        (other.postfix_dir / "main.cf").write_text(
            f"daemon_directory = {programs}\nqueue_directory = {other.postfix_queue}\n"
        )

        info = status(other)
        stopped = down(other)
    finally:
        shutil.rmtree(other.root, ignore_errors=True)

    assert (info.postfix_running, info.dovecot_running) == (False, False)
    assert stopped == []
    assert not marker.exists()
    assert status(running).running
    assert all(accepts_connections(port) for port in stack.ports.values())
