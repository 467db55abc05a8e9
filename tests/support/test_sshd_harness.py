"""The sshd harness itself: a real OpenSSH server on loopback answers, proves its identity with
its own host key, lets root in with the generated client key only, serves SFTP, and is gone with
everything it started once the block ends."""

from __future__ import annotations

import base64
import re
import shlex
import socket
from pathlib import Path

import paramiko
import pytest

from tests.support import sshd as sshd_module
from tests.support.services import require_tool
from tests.support.sshd import (
    SshServer,
    descendants,
    generate_key,
    is_running,
    running_sshd,
)

TIMEOUT = 10


def open_client(
    server: SshServer, *, expected_host_key: str, client_key: Path
) -> paramiko.SSHClient:
    """A connection that verifies the host key against `expected_host_key` alone."""
    client = paramiko.SSHClient()
    key_type, key_base64 = expected_host_key.split()
    client.get_host_keys().add(
        server.host_key_name,
        key_type,
        paramiko.PKey.from_type_string(key_type, base64.b64decode(key_base64)),
    )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            server.host,
            port=server.port,
            username=server.user,
            key_filename=str(client_key),
            # Only the key given: no agent, no ~/.ssh.
            allow_agent=False,
            look_for_keys=False,
            timeout=TIMEOUT,
            banner_timeout=TIMEOUT,
            auth_timeout=TIMEOUT,
        )
    except BaseException:
        client.close()
        raise
    return client


def run(client: paramiko.SSHClient, argv: list[str]) -> tuple[int, str]:
    _stdin, stdout, _stderr = client.exec_command(shlex.join(argv), timeout=TIMEOUT)
    output = stdout.read().decode()
    return stdout.channel.recv_exit_status(), output


def test_the_server_answers_on_loopback_with_an_ssh_2_banner(ssh_server: SshServer) -> None:
    assert ssh_server.host == "127.0.0.1"
    assert ssh_server.user == "root"
    with socket.create_connection((ssh_server.host, ssh_server.port), timeout=TIMEOUT) as raw:
        banner = raw.makefile("rb").readline()
    assert banner.startswith(b"SSH-2.0-OpenSSH_"), banner
    assert re.fullmatch(r"ssh-ed25519 AAAA[A-Za-z0-9+/=]+", ssh_server.host_public_key)
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", ssh_server.host_key_fingerprint)


def test_paramiko_verifies_the_host_key_and_runs_a_command_as_root(
    ssh_server: SshServer,
) -> None:
    client = open_client(
        ssh_server,
        expected_host_key=ssh_server.host_public_key,
        client_key=ssh_server.client_key,
    )
    with client:
        transport = client.get_transport()
        assert transport is not None
        # The key the server proved it holds is the one whose fingerprint the harness reports.
        assert transport.get_remote_server_key().fingerprint == ssh_server.host_key_fingerprint
        assert run(client, ["id", "-u"]) == (0, "0\n")
        assert run(client, ["sh", "-c", "exit 3"])[0] == 3
    assert re.search(r"Accepted publickey for root from 127\.0\.0\.1", ssh_server.log())


def test_a_different_host_key_is_refused(ssh_server: SshServer, tmp_path: Path) -> None:
    impostor = generate_key(tmp_path / "other_host_key", "another-host")
    with pytest.raises(paramiko.BadHostKeyException):
        open_client(ssh_server, expected_host_key=impostor, client_key=ssh_server.client_key)


def test_an_unknown_host_is_refused(ssh_server: SshServer) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with client, pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(
            ssh_server.host,
            port=ssh_server.port,
            username=ssh_server.user,
            key_filename=str(ssh_server.client_key),
            allow_agent=False,
            look_for_keys=False,
            timeout=TIMEOUT,
        )


def test_a_client_key_that_is_not_authorized_is_refused(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger_key"
    generate_key(stranger, "stranger")
    with pytest.raises(paramiko.AuthenticationException):
        open_client(ssh_server, expected_host_key=ssh_server.host_public_key, client_key=stranger)


def test_sftp_writes_a_file_and_reads_it_back(ssh_server: SshServer, tmp_path: Path) -> None:
    remote = tmp_path / "written-over-sftp.cf"
    content = b"smtpd_banner = $myhostname ESMTP\n"
    client = open_client(
        ssh_server,
        expected_host_key=ssh_server.host_public_key,
        client_key=ssh_server.client_key,
    )
    with client, client.open_sftp() as sftp:
        with sftp.open(str(remote), "wb") as written:
            written.write(content)
        with sftp.open(str(remote), "rb") as read:
            assert read.read() == content
    # The server wrote on this machine's file system: the same file, seen directly.
    assert remote.read_bytes() == content


def test_the_end_of_the_block_stops_sshd_and_the_connections_it_serves(tmp_path: Path) -> None:
    sshd = require_tool("sshd", "openssh-server")
    with running_sshd(tmp_path, sshd=sshd) as server:
        client = open_client(
            server, expected_host_key=server.host_public_key, client_key=server.client_key
        )
        # The test "forgets" to close its connection: the server's process for it still runs.
        connections = descendants(server.pid)
        assert connections, "sshd serves each connection in a child process"
    try:
        assert not is_running(server.pid)
        assert [pid for pid in connections if is_running(pid)] == []
        with pytest.raises(OSError):
            socket.create_connection((server.host, server.port), timeout=TIMEOUT).close()
    finally:
        client.close()


def test_a_port_another_sshd_took_first_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with two test workers: the port chosen for this server is taken before sshd binds it,
    # by a server that answers with an SSH banner too, and must not be mistaken for ours.
    sshd = require_tool("sshd", "openssh-server")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with running_sshd(tmp_path / "first", sshd=sshd) as first:
        choices = iter([first.port, sshd_module._free_port()])
        monkeypatch.setattr(sshd_module, "_free_port", lambda: next(choices))
        with running_sshd(tmp_path / "second", sshd=sshd) as second:
            assert second.port != first.port
            assert second.host_public_key != first.host_public_key
            client = open_client(
                second, expected_host_key=second.host_public_key, client_key=second.client_key
            )
            with client:
                assert run(client, ["id", "-u"]) == (0, "0\n")
