"""Host operations against the running stack, reached locally and over a real SSH server; and
the runner's guarantees on both transports: the recorded host key or nothing, every argument
verbatim, large outputs whole, timeouts enforced, files round-tripped."""

from __future__ import annotations

import stat
import time
import uuid
from pathlib import Path

import pytest

from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import parse
from mailwarden.stack.hosts import (
    CommandFailed,
    HostKeyMismatch,
    HostSpec,
    LocalTransport,
    SshTransport,
    open_runner,
)
from tests.support.sshd import SshServer, generate_key

from .conftest import MailStack, StackHost, stack_host_fields


def test_check_reaches_the_stack_and_finds_its_tools_and_logs(stack_host: StackHost) -> None:
    result = stack_host.run(lambda uow, actor: hosts.check(uow, actor, stack_host.name))

    assert result.ok, result.items
    by_check = {item.check: item.detail for item in result.items}
    assert by_check["postfix"].startswith("Postfix 3.")
    assert "base_dir" in by_check["dovecot"]
    assert sum(1 for check in by_check if check.startswith("log ")) == 2


# --- the runner itself, over SSH and on this machine ----------------------------------------


@pytest.fixture(params=["local", "ssh"])
def runner_spec(request: pytest.FixtureRequest) -> HostSpec:
    """This machine, reached directly or through the real SSH server on loopback."""
    if request.param == "local":
        return HostSpec(name="here", transport=LocalTransport())
    server: SshServer = request.getfixturevalue("ssh_server")
    transport = SshTransport(
        user=server.user,
        address=server.host,
        port=server.port,
        key_file=server.client_key,
        host_key=server.host_public_key,
    )
    return HostSpec(name="over-ssh", transport=transport)


def test_a_server_presenting_another_key_is_refused_before_anything_runs(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    other_key = generate_key(tmp_path / "impostor", "not the server's key")
    marker = tmp_path / "ran"
    accepted_before = ssh_server.log().count("Accepted publickey")
    spec = HostSpec(
        name="mx-moved",
        transport=SshTransport(
            user=ssh_server.user,
            address=ssh_server.host,
            port=ssh_server.port,
            key_file=ssh_server.client_key,
            host_key=other_key,
        ),
    )

    with pytest.raises(HostKeyMismatch) as refused, open_runner(spec) as runner:
        runner.run(["touch", str(marker)])

    assert ssh_server.host_key_fingerprint in refused.value.detail
    assert "refusing to connect" in refused.value.detail
    assert not marker.exists()
    # The key exchange failed before authentication: the server never let us in.
    assert ssh_server.log().count("Accepted publickey") == accepted_before


def test_a_registered_host_whose_server_changed_keys_is_refused(
    stack: MailStack, ssh_server: SshServer, tmp_path: Path
) -> None:
    name = f"moved-{uuid.uuid4().hex[:8]}"
    fields = {
        "name": name,
        "transport": "ssh",
        "ssh_target": f"{ssh_server.user}@{ssh_server.host}:{ssh_server.port}",
        "ssh_key_file": str(ssh_server.client_key),
        **stack_host_fields(stack),
    }
    impostor = generate_key(tmp_path / "impostor", "impostor")
    # Registered while the "server" presented another key (as if it was reinstalled since).
    stack.run(
        lambda uow, actor: hosts.create(
            uow, actor, parse(HostCreate, fields), fetch=lambda _address, _port: impostor
        )
    )
    try:
        result = stack.run(lambda uow, actor: hosts.check(uow, actor, name))
        spec = stack.run(
            lambda uow, actor: hosts.spec_for(uow, actor, name, Permission.QUEUE_MANAGE)
        )
        with pytest.raises(HostKeyMismatch), open_runner(spec):
            pass
    finally:
        stack.run(lambda uow, actor: hosts.remove(uow, actor, name))
    assert not result.ok
    assert [item.check for item in result.items] == ["connection"]
    assert "refusing to connect" in result.items[0].detail


HOSTILE_ARGUMENTS = [
    "a b",
    "$(id)",
    "`id`",
    "'",
    '"',
    ";touch x",
    "| cat /etc/passwd",
    "&& echo pwned",
    "$HOME",
    "*",
    "~",
    "\\",
    "two\nlines",
    "",
    "-n",
    "tab\there",
    "ünïcödé",
]


def test_every_argument_arrives_verbatim_as_one_argument(
    runner_spec: HostSpec, tmp_path: Path
) -> None:
    expected = "".join(f"<{argument}>\n" for argument in HOSTILE_ARGUMENTS).encode()

    with open_runner(runner_spec) as runner:
        result = runner.run(["printf", "<%s>\\n", *HOSTILE_ARGUMENTS], timeout=20)
        stat_result = runner.run(["stat", "-c", "%n", "--", f"{tmp_path}/x; touch {tmp_path}/p"])

    assert result.ok, result.error_text()
    assert result.stdout == expected
    # A path with a shell command in it is one (missing) file, and the command never ran.
    assert not stat_result.ok
    assert not (tmp_path / "p").exists()


def test_the_same_argv_gives_the_same_output_locally_and_over_ssh(ssh_server: SshServer) -> None:
    argv = ["printf", "%s|", *HOSTILE_ARGUMENTS]
    ssh = HostSpec(
        "over-ssh",
        SshTransport(
            ssh_server.user,
            ssh_server.host,
            ssh_server.port,
            ssh_server.client_key,
            ssh_server.host_public_key,
        ),
    )

    with open_runner(HostSpec("here", LocalTransport())) as local:
        here = local.run(argv)
    with open_runner(ssh) as remote:
        there = remote.run(argv)

    # stdout only: the remote login shell's start-up files may write to stderr.
    assert here.stdout == there.stdout
    assert here.returncode == there.returncode == 0


LARGE = 4 * 1024 * 1024


def test_megabytes_on_stdout_and_stderr_at_once_arrive_whole(runner_spec: HostSpec) -> None:
    # Both streams written concurrently: a reader that drained one before the other would
    # deadlock once the other's pipe or SSH window filled.
    script = f"yes out | head -c {LARGE} & yes err | head -c {LARGE} >&2; wait; printf done >&2"

    with open_runner(runner_spec) as runner:
        result = runner.run(["sh", "-c", script], timeout=60)

    assert result.ok
    assert result.stdout == b"out\n" * (LARGE // 4)
    # Whatever the remote login shell's start-up files print comes first; then all of ours.
    assert result.stderr.endswith(b"err\n" * (LARGE // 4) + b"done")


def test_a_command_past_its_timeout_is_stopped(runner_spec: HostSpec) -> None:
    started = time.monotonic()

    with pytest.raises(CommandFailed) as stopped, open_runner(runner_spec) as runner:
        runner.run(["sleep", "30"], timeout=1)

    assert stopped.value.returncode == 124
    assert "timed out after 1 s" in stopped.value.detail
    assert time.monotonic() - started < 15


# --- streamed output (postqueue -j of a huge queue) -------------------------------------------


def test_a_streamed_command_delivers_its_output_in_pieces_and_whole(runner_spec: HostSpec) -> None:
    script = f"yes out | head -c {LARGE} & yes err | head -c {LARGE} >&2; wait"

    with open_runner(runner_spec) as runner:
        chunks = list(runner.stream(["sh", "-c", script], timeout=60))

    assert len(chunks) > 1, "the output came in one piece: it was held, not streamed"
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024
    assert b"".join(chunks) == b"out\n" * (LARGE // 4)


def test_a_streamed_command_that_fails_raises_after_its_output(runner_spec: HostSpec) -> None:
    received: list[bytes] = []

    with pytest.raises(CommandFailed) as failed, open_runner(runner_spec) as runner:
        for chunk in runner.stream(["sh", "-c", "echo partial; echo boom >&2; exit 3"]):
            received.append(chunk)

    assert b"".join(received) == b"partial\n"
    assert failed.value.returncode == 3
    assert "boom" in failed.value.detail


def test_a_streamed_command_past_its_timeout_is_stopped(runner_spec: HostSpec) -> None:
    started = time.monotonic()

    with pytest.raises(CommandFailed) as stopped, open_runner(runner_spec) as runner:
        for _chunk in runner.stream(["sh", "-c", "echo started; sleep 30"], timeout=1):
            pass

    assert stopped.value.returncode == 124
    assert "timed out after 1 s" in stopped.value.detail
    assert time.monotonic() - started < 15


def test_a_stream_left_early_stops_the_command(runner_spec: HostSpec) -> None:
    pid_file = Path(f"/tmp/mw-stream-{uuid.uuid4().hex}.pid")
    script = f"echo $$ > {pid_file}; exec yes endless"
    try:
        with open_runner(runner_spec) as runner:
            stream = runner.stream(["sh", "-c", script], timeout=60)
            assert next(stream).startswith(b"endless\n")
            stream.close()  # what a `for` loop left by `break` or an error does
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "the command outlived its reader"
    finally:
        pid_file.unlink(missing_ok=True)


def test_files_round_trip(runner_spec: HostSpec, tmp_path: Path) -> None:
    directory = tmp_path / "files"
    directory.mkdir()
    target = directory / "main.cf"
    data = b"smtpd_banner = $myhostname\n\x00binary\xff\n" * 1000

    with open_runner(runner_spec) as runner:
        assert runner.read_file(str(target)) is None
        assert runner.stat(str(target)) is None
        runner.write_file(str(target), data, 0o640)
        read_back = runner.read_file(str(target))
        info = runner.stat(str(target))
        names = runner.list_dir(str(directory))
        runner.write_file(str(target), b"replaced\n", 0o600)
        replaced = runner.read_file(str(target))
        with runner.open_read(str(target)) as stream:
            streamed = stream.read()
        missing_dir = runner.list_dir(str(directory / "absent"))

    assert read_back == data
    assert info is not None and info.size == len(data)
    assert info.identity.count(":") == 1
    assert names == ["main.cf"], "no temporary file left behind"
    assert replaced == streamed == b"replaced\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert missing_dir == []
