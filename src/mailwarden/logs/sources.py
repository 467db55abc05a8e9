"""Where log bytes come from: a `LogSource` gives a name and a raw byte stream.

The engine only ever calls `open()`; a source that is a plain local file also names its path
(`plain_path`), which lets the engine split it into byte ranges read in parallel. Compressed and
remote sources are read as one stream.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from mailwarden.kernel.errors import ValidationError

GZIP_MAGIC = b"\x1f\x8b"
_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<number>\d+)|-(?P<date>\d{8}))(?P<gz>\.gz)?$")


class LogSource(Protocol):
    """A mail log to read.

    name: shown in reports and errors. plain_path: the local uncompressed file, or None (then
    the log is read through `open()` as one stream). modified: when the log was last written;
    classic syslog stamps carry no year, and a month after this one's means the year before
    (None: now). open(): the log's bytes, decompressed.
    """

    @property
    def name(self) -> str: ...

    @property
    def plain_path(self) -> Path | None: ...

    @property
    def modified(self) -> datetime | None: ...

    def open(self) -> BinaryIO: ...


class LocalLogFile:
    """A log file on this machine, plain or gzip-compressed (recognised by its magic bytes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with self.path.open("rb") as handle:
                self.compressed = handle.read(2) == GZIP_MAGIC
            stat = self.path.stat()
        except OSError as exc:
            raise ValidationError(
                "file", "readable", f"cannot read {self.path}: {exc.strerror}"
            ) from exc
        if not self.path.is_file():
            raise ValidationError("file", "regular_file", f"{self.path} is not a regular file")
        self.size = stat.st_size
        self._modified = datetime.fromtimestamp(stat.st_mtime)

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def plain_path(self) -> Path | None:
        return None if self.compressed else self.path

    @property
    def modified(self) -> datetime | None:
        return self._modified

    def open(self) -> BinaryIO:
        if self.compressed:
            return cast(BinaryIO, gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def __repr__(self) -> str:
        return f"LocalLogFile({str(self.path)!r})"


def rotated_set(path: str | os.PathLike[str]) -> list[Path]:
    """`mail.log` and its rotated siblings, oldest first.

    logrotate's numbered names (mail.log.3.gz, mail.log.2.gz, mail.log.1, mail.log) and its
    `dateext` names (mail.log-20240301.gz) are recognised; the live file comes last. A path that
    does not exist but has rotated siblings gives just the siblings.
    """
    live = Path(path)
    directory = live.parent if str(live.parent) else Path(".")
    numbered: list[tuple[int, Path]] = []
    dated: list[tuple[str, Path]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise ValidationError(
            "file", "readable", f"cannot list {directory}: {exc.strerror}"
        ) from exc
    for entry in entries:
        match = _ROTATED.match(entry.name)
        if match is None or match["base"] != live.name or not entry.is_file():
            continue
        if match["number"] is not None:
            numbered.append((int(match["number"]), directory / entry.name))
        else:
            dated.append((match["date"], directory / entry.name))
    files = [p for _, p in sorted(dated)] + [p for _, p in sorted(numbered, reverse=True)]
    if live.is_file():
        files.append(live)
    if not files:
        raise ValidationError(
            "file", "exists", f"{live} does not exist and has no rotated siblings"
        )
    return files


def order_rotated(paths: Sequence[Path]) -> list[Path]:
    """`paths` with the members of each rotated set in time order (oldest first).

    Each set takes the place of its first member; a shell glob such as `mail.log*` (mail.log,
    mail.log.1, mail.log.2.gz) becomes mail.log.2.gz, mail.log.1, mail.log.
    """
    sets: dict[tuple[Path, str], list[tuple[tuple[int, int, str], Path]]] = {}
    order: list[tuple[Path, str]] = []
    for path in paths:
        match = _ROTATED.match(path.name)
        base = match["base"] if match else path.name
        if match is None:
            rank = (2, 0, "")
        elif match["number"] is not None:
            rank = (1, -int(match["number"]), "")
        else:
            rank = (0, 0, match["date"])
        key = (path.parent, base)
        if key not in sets:
            sets[key] = []
            order.append(key)
        sets[key].append((rank, path))
    return [path for key in order for _, path in sorted(sets[key])]
