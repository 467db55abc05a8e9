"""Which running process is this instance's Postfix or Dovecot master, proven from /proc.

A pid file proves nothing: after a crash or a reboot its pid may belong to the system's Postfix,
another devstack, or anything else. A pid counts only when /proc ties the process to this
directory (checked on the real daemons):
- Postfix's master (`master`, run by root) works in its queue directory, so /proc/<pid>/cwd
  is this instance's queue directory. Its command line (`master -w`) is the same for every
  instance, and its cwd can be read by root only.
- Dovecot's master (`dovecot`, run by root) keeps its command line, `dovecot -c <this
  instance's dovecot.conf>`.
The process is held by a pidfd opened before it is inspected, and still alive after: a signal
through that pidfd can only reach the process that was checked, never one that reused its pid.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DevstackError
from .fs import read_small_file
from .instance import StackLayout

# `devstack up` runs as root, and both masters keep running as root.
_DAEMON_UID = 0


@dataclass(frozen=True, slots=True)
class MasterProcess:
    """A verified master process, held by a pidfd (close it)."""

    name: str
    pid: int
    pidfd: int

    def terminate(self) -> None:
        # SIGTERM is what `postfix stop` sends the master too; Dovecot's master stops on it.
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise DevstackError(
                f"only root can stop {self.name} (pid {self.pid}): run this as root"
            ) from None

    def wait(self, timeout: float) -> bool:
        """True once the process has ended, False when it still runs after `timeout` seconds."""
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return bool(poller.poll(max(timeout, 0) * 1000))

    def close(self) -> None:
        os.close(self.pidfd)


def _proc(pid: int, name: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return None


def _real_uid(pid: int) -> int | None:
    for line in (_proc(pid, "status") or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _is_daemon(pid: int, comm: str) -> bool:
    return (_proc(pid, "comm") or "").strip() == comm and _real_uid(pid) == _DAEMON_UID


def is_postfix_master(pid: int, layout: StackLayout) -> bool:
    """`pid` is a Postfix master working in this instance's queue directory."""
    if not _is_daemon(pid, "master"):
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except PermissionError:
        raise DevstackError(
            f"only root can tell whether the Postfix master {pid} is the devstack's in "
            f"{layout.root}: run this as root"
        ) from None
    except OSError:
        return False
    return cwd == str(layout.postfix_queue)


def is_dovecot_master(pid: int, layout: StackLayout) -> bool:
    """`pid` is a Dovecot master started with this instance's dovecot.conf."""
    if not _is_daemon(pid, "dovecot"):
        return False
    argv = (_proc(pid, "cmdline") or "").split("\0")
    conf = str(layout.dovecot_conf)
    return any(option == "-c" and value == conf for option, value in itertools.pairwise(argv[1:]))


def _pid_in(pid_file: Path) -> int | None:
    text = read_small_file(pid_file)
    try:
        pid = int((text or "").split()[0])
    except (ValueError, IndexError):
        return None
    # 0 and negative numbers address process groups, 1 is init: never a master's pid file.
    return pid if pid > 1 else None


def _verified(name: str, pid_file: Path, belongs: Callable[[int], bool]) -> MasterProcess | None:
    pid = _pid_in(pid_file)
    if pid is None:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if not belongs(pid):
            os.close(pidfd)
            return None
        # Alive after the check: /proc/<pid> was the pidfd's process, not a successor. (A
        # process we may not signal, seen by `status` as another user, is alive too.)
        with contextlib.suppress(PermissionError):
            signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        os.close(pidfd)
        return None
    except BaseException:
        os.close(pidfd)
        raise
    return MasterProcess(name, pid, pidfd)


def postfix_master(layout: StackLayout) -> MasterProcess | None:
    return _verified("postfix", layout.postfix_pid_file, lambda pid: is_postfix_master(pid, layout))


def dovecot_master(layout: StackLayout) -> MasterProcess | None:
    return _verified("dovecot", layout.dovecot_pid_file, lambda pid: is_dovecot_master(pid, layout))


def running(layout: StackLayout) -> tuple[bool, bool]:
    """Whether this instance's Postfix and Dovecot masters run."""
    answers = []
    for find in (postfix_master, dovecot_master):
        process = find(layout)
        answers.append(process is not None)
        if process is not None:
            process.close()
    return answers[0], answers[1]
