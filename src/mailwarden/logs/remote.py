"""Mail logs on a registered host, read through its `HostRunner` (locally or over SFTP).

`host_sources(runner, path)` gives a `LogSource` for a log path and each of its rotated
siblings (mail.log.2.gz, mail.log.1, mail.log; mail.log-20261120.gz), oldest first.
`HostLogFile` can also read a window of a file (from a byte offset up to an end), which is how
`logs ingest` reads only what was written since its last run.

gzip is recognised by its magic bytes, not the name, and decompressed while streaming.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import re
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast

from mailwarden.stack.hosts import FileInfo, HostRunner

from .sources import GZIP_MAGIC

_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<number>\d+)|-(?P<date>\d{8}))(?P<gz>\.gz)?$")
# How far back from the end to look for the last newline at a time.
_TAIL_CHUNK = 65_536


class _Window(io.RawIOBase):
    """At most `limit` bytes of an open stream (None: all of it); closes the stream."""

    def __init__(self, stream: BinaryIO, limit: int | None) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._left is None else min(len(view), self._left)
        if wanted == 0:
            return 0
        data = self._stream.read(wanted)
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


class _OwningGzipFile(gzip.GzipFile):
    """A GzipFile that also closes the stream it decompresses (GzipFile leaves it open)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(fileobj=stream, mode="rb")
        self._owned = stream

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


class HostLogFile:
    """A log file on a host; `start`/`end` choose a byte window of a plain file (a compressed
    file is always read whole)."""

    def __init__(
        self,
        runner: HostRunner,
        path: str,
        info: FileInfo,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        self.runner = runner
        self.path = path
        self.info = info
        self.start = start
        self.end = end
        with runner.open_read(path) as handle:
            self.compressed = handle.read(2) == GZIP_MAGIC

    @property
    def name(self) -> str:
        return f"{self.runner.name}:{self.path}"

    @property
    def plain_path(self) -> Path | None:
        # Read as one stream: the engine splits only files it can open itself.
        return None

    @property
    def modified(self) -> datetime | None:
        return datetime.fromtimestamp(self.info.mtime)

    def open(self) -> BinaryIO:
        handle = self.runner.open_read(self.path)
        if self.compressed:
            return cast(BinaryIO, _OwningGzipFile(handle))
        if self.start:
            handle.seek(self.start)
        limit = None if self.end is None else max(0, self.end - self.start)
        return cast(BinaryIO, io.BufferedReader(_Window(handle, limit)))

    def __repr__(self) -> str:
        return f"HostLogFile({self.name!r}, start={self.start}, end={self.end})"


def rotated_names(names: list[str], live: str) -> list[str]:
    """Of the `names` in a directory, the rotated siblings of `live` (a file name), oldest
    first: dateext names by date, then numbered names from the highest number down."""
    numbered: list[tuple[int, str]] = []
    dated: list[tuple[str, str]] = []
    for name in names:
        match = _ROTATED.match(name)
        if match is None or match["base"] != live:
            continue
        if match["number"] is not None:
            numbered.append((int(match["number"]), name))
        else:
            dated.append((match["date"], name))
    return [n for _, n in sorted(dated)] + [n for _, n in sorted(numbered, reverse=True)]


def rotated_siblings(runner: HostRunner, path: str) -> list[tuple[str, FileInfo]]:
    """The rotated siblings of the log `path` on the host that are regular files, oldest
    first, with what stat says of each."""
    directory, live = posixpath.split(path)
    found: list[tuple[str, FileInfo]] = []
    for name in rotated_names(runner.list_dir(directory or "/"), live):
        sibling = posixpath.join(directory, name)
        info = runner.stat(sibling)
        if info is not None:
            found.append((sibling, info))
    return found


def host_sources(runner: HostRunner, path: str) -> list[HostLogFile]:
    """A source for `path` and each of its rotated siblings, oldest first (the live file
    last, when it exists)."""
    sources = [
        HostLogFile(runner, sibling, info) for sibling, info in rotated_siblings(runner, path)
    ]
    info = runner.stat(path)
    if info is not None:
        sources.append(HostLogFile(runner, path, info))
    return sources


def last_line_end(runner: HostRunner, path: str, start: int, size: int) -> int:
    """The offset just after the last newline in bytes [start, size) of a plain file, or
    `start` when that range holds no complete line (a line being written is left for later)."""
    if size <= start:
        return start
    with runner.open_read(path) as handle:
        end = size
        while end > start:
            begin = max(start, end - _TAIL_CHUNK)
            handle.seek(begin)
            chunk = handle.read(end - begin)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return begin + newline + 1
            end = begin
    return start
