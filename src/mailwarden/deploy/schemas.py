from __future__ import annotations

from typing import Literal

from mailwarden.kernel.schemas import PublicSchema

FileState = Literal["created", "changed", "unchanged"]
DaemonName = Literal["postfix", "dovecot"]


class ConfigFile(PublicSchema):
    """One generated file against the host's copy; `diff` never shows a secret."""

    path: str
    daemon: DaemonName
    status: FileState
    diff: str


class ApplyReport(PublicSchema):
    """What `apply-config` found and did. On a dry run nothing was written or reloaded:
    `would_reload` says which daemons a real run would reload."""

    host: str
    dry_run: bool
    files: list[ConfigFile]
    reloaded: list[DaemonName]
    would_reload: list[DaemonName]

    @property
    def changed(self) -> list[ConfigFile]:
        return [file for file in self.files if file.status != "unchanged"]
