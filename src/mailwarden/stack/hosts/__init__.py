"""Running commands and reading files on a mail host: this machine, or another one over SSH.

Public contract:

    HostSpec (spec.py)           what mailwarden knows of a host: how to reach it, where its
                                 Postfix/Dovecot tools, configuration and logs are
    open_runner(spec) -> HostRunner (runner.py), a context manager
    HostRunner.run(argv)         one command as an argv list (never a shell string)
    HostRunner.open_read / read_file / write_file / stat / list_dir
    HostError, CommandFailed, HostUnreachable, HostKeyMismatch (errors.py)
"""

from .connect import open_runner
from .errors import CommandFailed, HostError, HostKeyMismatch, HostUnreachable
from .runner import CommandResult, FileInfo, HostRunner
from .spec import HostSpec, LocalTransport, SshTransport

__all__ = [
    "CommandFailed",
    "CommandResult",
    "FileInfo",
    "HostError",
    "HostKeyMismatch",
    "HostRunner",
    "HostSpec",
    "HostUnreachable",
    "LocalTransport",
    "SshTransport",
    "open_runner",
]
