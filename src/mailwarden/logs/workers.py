"""Worker processes for the log engine, started with only this package imported.

`multiprocessing` would re-import the parent's `__main__` in every child (for `mailwarden`,
the whole CLI: seconds and ~100 MB each), so the engine starts its own small interpreters:
`python -c "...serve()"` reads pickled tasks from stdin and writes pickled results to stdout,
one at a time. Only the parent talks to them, over their own pipes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

Task = tuple[str, tuple[Any, ...]]


def _send(stream: IO[bytes], value: object) -> None:
    # Pickled straight into the pipe (in frames), never whole in memory next to the value.
    pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    try:
        return pickle.load(stream)  # noqa: S301 - our own child's pipe
    except EOFError:
        raise
    except pickle.UnpicklingError as exc:
        raise EOFError(str(exc)) from exc


def serve() -> None:
    """The worker's loop: run tasks until stdin closes."""
    from . import engine  # the task functions live there

    functions: dict[str, Callable[..., object]] = {
        "scan_file_range": engine.scan_file_range,
        "scan_bytes": engine.scan_bytes,
    }
    # Ctrl-C is the parent's to handle; it closes the pipes, which ends this loop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            name, arguments = _receive(stdin)
        except EOFError:
            return
        try:
            result = ("ok", functions[name](*arguments))
        except Exception:  # reported to the parent, which raises
            result = ("error", traceback.format_exc())
        try:
            _send(stdout, result)
        except BrokenPipeError:  # the parent stopped listening
            return


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


class WorkerPool:
    """N worker processes; `run()` maps tasks to results in task order."""

    def __init__(self, workers: int) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = os.environ | {"PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        argv = [sys.executable, "-c", "from mailwarden.logs.workers import serve; serve()"]
        self.processes = [
            # A fixed argv: this interpreter and a constant program text.
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)  # noqa: S603
            for _ in range(workers)
        ]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # Closing both pipes ends every worker: an idle one reads EOF, a busy one (after an
        # error elsewhere) fails to write its result.
        for process in self.processes:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None and not pipe.closed:
                    with contextlib.suppress(OSError):
                        pipe.close()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(self, tasks: Iterable[Task]) -> Iterator[Any]:
        """Results of `tasks`, in their order; tasks are taken from the iterable only as
        workers become free, so a generator of big tasks is never read far ahead."""
        pending = iter(tasks)
        idle = list(self.processes)
        busy: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
        done: dict[int, Any] = {}
        next_task = 0
        next_result = 0
        exhausted = False
        with selectors.DefaultSelector() as selector:
            while True:
                while idle and not exhausted:
                    task = next(pending, None)
                    if task is None:
                        exhausted = True
                        break
                    process = idle.pop()
                    assert process.stdin is not None and process.stdout is not None
                    _send(process.stdin, task)
                    busy[process.stdout.fileno()] = (process, next_task)
                    selector.register(process.stdout, selectors.EVENT_READ)
                    next_task += 1
                while next_result in done:
                    yield done.pop(next_result)
                    next_result += 1
                if not busy:
                    if exhausted:
                        return
                    continue
                for key, _ in selector.select():
                    process, index = busy.pop(key.fd)
                    selector.unregister(key.fileobj)
                    assert process.stdout is not None
                    try:
                        status, value = _receive(process.stdout)
                    except EOFError:
                        raise WorkerError(f"log worker {process.pid} ended unexpectedly") from None
                    if status != "ok":
                        raise WorkerError(value)
                    done[index] = value
                    idle.append(process)
