"""A runner for a host spec, closed when the work is done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .local import LocalRunner
from .runner import HostRunner
from .spec import HostSpec, SshTransport
from .ssh import SshRunner


@contextmanager
def open_runner(spec: HostSpec) -> Iterator[HostRunner]:
    runner: HostRunner
    if isinstance(spec.transport, SshTransport):
        runner = SshRunner(spec.name, spec.transport)
    else:
        runner = LocalRunner(spec.name)
    try:
        yield runner
    finally:
        runner.close()
