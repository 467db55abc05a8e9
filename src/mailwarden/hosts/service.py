"""The host registry: add, list, show, change and remove mail hosts, and check that mailwarden
can work on one. Superadmins only: a host carries every domain's mail.

Other services reach a host through `spec_for(uow, actor, name, permission)`, which checks the
caller's permission for what it is about to do there and returns what `stack.hosts.open_runner`
needs. Adding an SSH host records the server's public key: from then on only that key is
accepted. The private key stays a file on this machine; its path is stored, never its content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import paramiko
from sqlalchemy import func, select

from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import Conflict, NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit, page_of
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.stack.hosts import (
    HostError,
    HostSpec,
    LocalTransport,
    SshTransport,
    open_runner,
)
from mailwarden.stack.hosts import spec as defaults
from mailwarden.stack.hosts.ssh import fetch_host_key, fingerprint, load_private_key, public_key

from . import validation
from .models import Host
from .schemas import HostCheck, HostCheckItem, HostCreate, HostPaths, HostPublic, HostUpdate

KNOWN_HOSTS_FILE: Final = "known_hosts"
LOCAL_PROBE_ADDRESS: Final = "127.0.0.1"

HostKeyFetcher = Callable[[str, int], str]


def _log_paths(host: Host) -> list[str]:
    paths: list[str] = json.loads(host.log_paths)
    return paths


def snapshot(host: Host) -> dict[str, Any]:
    """The audit view: everything but the recorded host key, shown by its fingerprint."""
    return {
        "transport": host.transport,
        "ssh": f"{host.ssh_user}@{host.ssh_address}:{host.ssh_port}" if host.ssh_user else None,
        "ssh_key_file": host.ssh_key_file,
        "host_key_fingerprint": fingerprint(host.ssh_host_key) if host.ssh_host_key else None,
        "postfix_config_dir": host.postfix_config_dir,
        "postfix_command_dir": host.postfix_command_dir,
        "dovecot_config": host.dovecot_config,
        "doveadm": host.doveadm,
        "log_paths": _log_paths(host),
        "mail_root": host.mail_root,
        "probe_address": host.probe_address,
        "smtp_port": host.smtp_port,
        "imap_port": host.imap_port,
    }


def to_public(host: Host) -> HostPublic:
    return HostPublic(
        name=host.name,
        transport="ssh" if host.transport == "ssh" else "local",
        ssh_user=host.ssh_user,
        ssh_address=host.ssh_address,
        ssh_port=host.ssh_port,
        ssh_key_file=host.ssh_key_file,
        host_key_fingerprint=fingerprint(host.ssh_host_key) if host.ssh_host_key else None,
        postfix_config_dir=host.postfix_config_dir,
        postfix_command_dir=host.postfix_command_dir,
        dovecot_config=host.dovecot_config,
        doveadm=host.doveadm,
        log_paths=_log_paths(host),
        mail_root=host.mail_root,
        probe_address=host.probe_address,
        smtp_port=host.smtp_port,
        imap_port=host.imap_port,
        created_at=host.created_at,
        updated_at=host.updated_at,
    )


def to_spec(host: Host) -> HostSpec:
    transport: SshTransport | LocalTransport
    if host.transport == "ssh":
        assert host.ssh_user and host.ssh_address and host.ssh_port and host.ssh_key_file
        assert host.ssh_host_key
        transport = SshTransport(
            user=host.ssh_user,
            address=host.ssh_address,
            port=host.ssh_port,
            key_file=Path(host.ssh_key_file),
            host_key=host.ssh_host_key,
        )
    else:
        transport = LocalTransport()
    return HostSpec(
        name=host.name,
        transport=transport,
        postfix_config_dir=host.postfix_config_dir,
        postfix_command_dir=host.postfix_command_dir,
        dovecot_config=host.dovecot_config,
        doveadm=host.doveadm,
        log_paths=tuple(_log_paths(host)),
        mail_root=host.mail_root,
    )


def _find(uow: UnitOfWork, name: str, *, to_change: bool = False) -> Host:
    validation.check_host_name(name, "host")
    stmt = select(Host).where(Host.name == name)
    if to_change:
        stmt = stmt.with_for_update()
    host = uow.session.scalars(stmt).one_or_none()
    if host is None:
        raise NotFound("host", name)
    return host


def _apply_paths(host: Host, data: HostPaths) -> None:
    check = validation.check_absolute_path
    if data.postfix_config_dir is not None:
        host.postfix_config_dir = check(data.postfix_config_dir, "postfix_config_dir")
    if data.postfix_command_dir is not None:
        host.postfix_command_dir = check(data.postfix_command_dir, "postfix_command_dir")
    if data.dovecot_config is not None:
        host.dovecot_config = check(data.dovecot_config, "dovecot_config")
    if data.doveadm is not None:
        host.doveadm = check(data.doveadm, "doveadm")
    if data.log_paths is not None:
        host.log_paths = json.dumps(validation.check_log_paths(list(data.log_paths)))
    if data.mail_root is not None:
        host.mail_root = check(data.mail_root, "mail_root")
    if data.probe_address is not None:
        host.probe_address = validation.check_address(data.probe_address, "probe_address")
    if data.smtp_port is not None:
        host.smtp_port = validation.check_port(data.smtp_port, "smtp_port")
    if data.imap_port is not None:
        host.imap_port = validation.check_port(data.imap_port, "imap_port")


def _record_host_key(data: HostCreate, address: str, port: int, fetch: HostKeyFetcher) -> str:
    try:
        key_line = fetch(address, port)
    except HostError as exc:
        raise ValidationError("ssh_target", "unreachable", exc.detail) from None
    presented = fingerprint(key_line)
    if data.host_key_fingerprint is not None:
        expected = validation.check_fingerprint(data.host_key_fingerprint)
        if presented != expected:
            raise ValidationError(
                "host_key_fingerprint",
                "mismatch",
                f"{address}:{port} presented {presented}, not {expected}: not added",
            )
    return key_line


def _default_fetch(name: str) -> HostKeyFetcher:
    return lambda address, port: fetch_host_key(address, port, name=name)


def create(
    uow: UnitOfWork,
    actor: Actor,
    data: HostCreate,
    *,
    fetch: HostKeyFetcher | None = None,
) -> HostPublic:
    """Register a host. For SSH, the server's key is fetched now and recorded (after checking
    it against `host_key_fingerprint` when one is given); the key file must be usable."""
    require(actor, Permission.HOST_CREATE)
    name = validation.check_host_name(data.name)
    if uow.session.scalar(select(Host.id).where(Host.name == name)) is not None:
        raise Conflict("name", "duplicate", f"a host named {name} exists already")
    host = Host(
        name=name,
        transport=data.transport,
        postfix_config_dir=defaults.DEFAULT_POSTFIX_CONFIG_DIR,
        postfix_command_dir=defaults.DEFAULT_POSTFIX_COMMAND_DIR,
        dovecot_config=defaults.DEFAULT_DOVECOT_CONFIG,
        doveadm=defaults.DEFAULT_DOVEADM,
        log_paths=json.dumps(list(defaults.DEFAULT_LOG_PATHS)),
        mail_root=defaults.DEFAULT_MAIL_ROOT,
        probe_address=LOCAL_PROBE_ADDRESS,
        smtp_port=25,
        imap_port=143,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    if data.transport == "ssh":
        if data.ssh_target is None:
            raise ValidationError("ssh_target", "required", "an SSH host needs USER@HOST[:PORT]")
        if data.ssh_key_file is None:
            raise ValidationError("ssh_key_file", "required", "an SSH host needs --key FILE")
        target = validation.parse_ssh_target(data.ssh_target)
        key_file = validation.check_absolute_path(data.ssh_key_file, "ssh_key_file")
        try:
            load_private_key(Path(key_file))
        except ValueError as exc:
            raise ValidationError("ssh_key_file", "unusable_key", str(exc)) from None
        host.ssh_user, host.ssh_address, host.ssh_port = target.user, target.address, target.port
        host.ssh_key_file = key_file
        host.ssh_host_key = _record_host_key(
            data, target.address, target.port, fetch or _default_fetch(name)
        )
        host.probe_address = target.address
    else:
        for field in ("ssh_target", "ssh_key_file", "host_key_fingerprint"):
            if getattr(data, field) is not None:
                raise ValidationError(field, "not_for_local", "only an SSH host takes it")
    _apply_paths(host, data)
    uow.session.add(host)
    uow.session.flush()
    uow.record(actor, ChangeKind.CREATE, "host", name, domain=None, after=snapshot(host))
    if host.ssh_host_key is not None:
        known = SshTransport(
            host.ssh_user or "",
            host.ssh_address or "",
            host.ssh_port or 22,
            Path(),
            host.ssh_host_key,
        )
        known_hosts = uow.settings.data_dir / KNOWN_HOSTS_FILE
        uow.after_commit(lambda: _remember_key(known_hosts, known))
    return to_public(host)


def list_hosts(
    uow: UnitOfWork, actor: Actor, *, limit: int = 50, after: str | None = None
) -> Page[HostPublic]:
    """Hosts by name; `after`: the last name of the previous page."""
    require(actor, Permission.HOST_READ)
    check_limit(limit)
    stmt = select(Host)
    if after:
        stmt = stmt.where(Host.name > validation.check_host_name(after, "cursor"))
    rows = uow.session.scalars(stmt.order_by(Host.name).limit(limit + 1)).all()
    return page_of([to_public(row) for row in rows], limit, lambda item: item.name)


def get(uow: UnitOfWork, actor: Actor, name: str) -> HostPublic:
    require(actor, Permission.HOST_READ)
    return to_public(_find(uow, name))


def update(uow: UnitOfWork, actor: Actor, name: str, data: HostUpdate) -> HostPublic:
    """Change where a host keeps its tools, configuration and logs (not how it is reached:
    remove and add it again for that, so a new host key is always fetched and shown)."""
    require(actor, Permission.HOST_UPDATE)
    host = _find(uow, name, to_change=True)
    before = snapshot(host)
    _apply_paths(host, data)
    host.updated_at = utcnow()
    uow.session.flush()
    uow.record_update(actor, "host", name, domain=None, before=before, after=snapshot(host))
    return to_public(host)


def remove(uow: UnitOfWork, actor: Actor, name: str) -> None:
    require(actor, Permission.HOST_DELETE)
    host = _find(uow, name, to_change=True)
    before = snapshot(host)
    known_name = None
    if host.ssh_address is not None and host.ssh_port is not None:
        known_name = SshTransport("", host.ssh_address, host.ssh_port, Path(), "").known_hosts_name
    uow.session.delete(host)
    uow.session.flush()
    uow.record(actor, ChangeKind.DELETE, "host", name, domain=None, before=before)
    if known_name is not None:
        known_hosts = uow.settings.data_dir / KNOWN_HOSTS_FILE
        uow.after_commit(lambda: _forget_key(known_hosts, known_name))


def spec_for(uow: UnitOfWork, actor: Actor, name: str | None, permission: Permission) -> HostSpec:
    """What `open_runner` needs for the host `name`, once `actor` may do `permission` there.
    No name: the only registered host, when there is exactly one."""
    require(actor, permission)
    if name is not None:
        return to_spec(_find(uow, name))
    rows = uow.session.scalars(select(Host).order_by(Host.name).limit(2)).all()
    if len(rows) == 1:
        return to_spec(rows[0])
    count = uow.session.scalar(select(func.count()).select_from(Host)) or 0
    if count == 0:
        raise ValidationError(
            "host", "no_hosts", "no host is registered; add one with `mailwarden host add`"
        )
    raise ValidationError("host", "required", f"{count} hosts are registered; name one")


def check(uow: UnitOfWork, actor: Actor, name: str) -> HostCheck:
    """Reach the host and look at what mailwarden will use there: the connection, Postfix's
    and Dovecot's tools and configuration, the log files and the mail root."""
    spec = spec_for(uow, actor, name, Permission.HOST_READ)
    items: list[HostCheckItem] = []
    try:
        with open_runner(spec) as runner:
            whoami = runner.run(["uname", "-n"])
            items.append(
                HostCheckItem(
                    check="connection",
                    ok=whoami.ok,
                    detail=_first_line(whoami.text() or whoami.error_text()),
                )
            )
            postfix = runner.run(spec.postfix_command("postconf", "-h", "mail_version"))
            items.append(
                HostCheckItem(
                    check="postfix",
                    ok=postfix.ok,
                    detail=f"Postfix {_first_line(postfix.text())}"
                    if postfix.ok
                    else _first_line(postfix.error_text()),
                )
            )
            dovecot = runner.run(spec.doveadm_command("config", "-h", "base_dir"))
            items.append(
                HostCheckItem(
                    check="dovecot",
                    ok=dovecot.ok,
                    detail=f"configuration readable (base_dir {_first_line(dovecot.text())})"
                    if dovecot.ok
                    else _first_line(dovecot.error_text()),
                )
            )
            for path in spec.log_paths:
                info = runner.stat(path)
                items.append(
                    HostCheckItem(
                        check=f"log {path}",
                        ok=info is not None,
                        detail=f"{info.size} bytes" if info is not None else "missing",
                    )
                )
            root = runner.stat(spec.mail_root)
            items.append(
                HostCheckItem(
                    check="mail root",
                    ok=root is not None,
                    detail=spec.mail_root if root else f"{spec.mail_root} missing",
                )
            )
    except HostError as exc:
        items.append(HostCheckItem(check="connection", ok=False, detail=exc.detail))
    return HostCheck(name=spec.name, ok=all(item.ok for item in items), items=items)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _remember_key(path: Path, transport: SshTransport) -> None:
    """Keep the operator's view (ssh -o UserKnownHostsFile=...) in step with the registry."""
    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    key = public_key(transport.host_key)
    keys.add(transport.known_hosts_name, key.get_name(), key)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys.save(str(path))


def _forget_key(path: Path, known_name: str) -> None:
    if not path.exists():
        return
    keys = paramiko.HostKeys()
    keys.load(str(path))
    if known_name in keys:
        del keys[known_name]
        keys.save(str(path))
