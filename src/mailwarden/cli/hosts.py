"""`mailwarden host ...`: the mail hosts mailwarden operates on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.hosts import service
from mailwarden.hosts.schemas import HostCheck, HostCreate, HostPublic, HostUpdate
from mailwarden.kernel.schemas import parse

from .context import mutate, read
from .exits import fail
from .options import All, DryRun, Json, Limit
from .output import console, print_fields, print_json, print_plan, when
from .paging import emit

app = typer.Typer(
    help="Mail hosts: the machines whose Postfix and Dovecot mailwarden operates (queue, logs, "
    "health, configuration). A host is this machine (--local) or one reached over SSH "
    "(--ssh USER@HOST[:PORT] --key FILE).\n\n"
    "Commands run as argument lists, never through a shell on this side; over SSH every "
    "argument is quoted for the remote shell. The SSH server's key is recorded when the host "
    "is added (checked against --host-key-fingerprint when given, else shown to you to compare "
    "with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host); every later "
    "connection must present that very key. The key file stays where it is; only its path is "
    "stored. Recorded keys are also written to ~/.local/share/mailwarden/known_hosts.",
    epilog="Examples:\n\n"
    "  mailwarden host add mx1 --local\n\n"
    "  mailwarden host add mx2 --ssh root@mx2.example.org --key /etc/mailwarden/id_ed25519 "
    "--host-key-fingerprint SHA256:...\n\n"
    "  mailwarden host update mx2 --log /var/log/mail.log --log /var/log/dovecot.log\n\n"
    "  mailwarden host check mx2",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The host's name in mailwarden, e.g. mx1.")]
PostfixDir = Annotated[
    str | None,
    typer.Option("--postfix-dir", help="Postfix's configuration directory (default /etc/postfix)."),
]
PostfixCommandDir = Annotated[
    str | None,
    typer.Option(
        "--postfix-command-dir",
        help="Where postqueue, postsuper, postcat live (default /usr/sbin).",
    ),
]
DovecotConfig = Annotated[
    str | None,
    typer.Option("--dovecot-config", help="dovecot.conf (default /etc/dovecot/dovecot.conf)."),
]
Doveadm = Annotated[
    str | None, typer.Option("--doveadm", help="The doveadm binary (default /usr/bin/doveadm).")
]
Logs = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="A mail log file; repeat for several (default /var/log/mail.log). Rotated "
        "siblings (mail.log.1, mail.log.2.gz) are found beside it.",
    ),
]
MailRoot = Annotated[
    str | None, typer.Option("--mail-root", help="Where the maildirs are (default /var/vmail).")
]
ProbeAddress = Annotated[
    str | None,
    typer.Option(
        "--probe-address",
        help="Address health checks connect to for the SMTP/IMAP banners (default: the SSH "
        "host, or 127.0.0.1).",
    ),
]
SmtpPort = Annotated[int | None, typer.Option("--smtp-port", help="SMTP port (default 25).")]
ImapPort = Annotated[int | None, typer.Option("--imap-port", help="IMAP port (default 143).")]


def _paths(
    postfix_dir: str | None,
    postfix_command_dir: str | None,
    dovecot_config: str | None,
    doveadm: str | None,
    logs: list[str] | None,
    mail_root: str | None,
    probe_address: str | None,
    smtp_port: int | None,
    imap_port: int | None,
) -> dict[str, Any]:
    given = {
        "postfix_config_dir": postfix_dir,
        "postfix_command_dir": postfix_command_dir,
        "dovecot_config": dovecot_config,
        "doveadm": doveadm,
        "log_paths": logs or None,
        "mail_root": mail_root,
        "probe_address": probe_address,
        "smtp_port": smtp_port,
        "imap_port": imap_port,
    }
    return {key: value for key, value in given.items() if value is not None}


def _show(host: HostPublic) -> None:
    reach = (
        f"ssh {host.ssh_user}@{host.ssh_address} port {host.ssh_port}, key {host.ssh_key_file}"
        if host.transport == "ssh"
        else "this machine"
    )
    pairs: list[tuple[str, Any]] = [("Name", host.name), ("Reached", reach)]
    if host.host_key_fingerprint:
        pairs.append(("Host key", host.host_key_fingerprint))
    pairs += [
        ("Postfix config", host.postfix_config_dir),
        ("Postfix commands", host.postfix_command_dir),
        ("Dovecot config", host.dovecot_config),
        ("doveadm", host.doveadm),
        ("Logs", ", ".join(host.log_paths)),
        ("Mail root", host.mail_root),
        ("Probes", f"{host.probe_address} smtp {host.smtp_port} imap {host.imap_port}"),
        ("Added", when(host.created_at)),
        ("Changed", when(host.updated_at)),
    ]
    print_fields(pairs)


@app.command(
    "add",
    epilog="Exactly one of --local and --ssh.\n\n"
    "Examples:\n\n  mailwarden host add mx1 --local --log /var/log/mail.log\n\n"
    "  mailwarden host add mx2 --ssh root@192.0.2.7:2222 --key ~/.ssh/mailwarden "
    "--host-key-fingerprint SHA256:uN5...\n\n"
    "  mailwarden host add mx3 --ssh admin@[2001:db8::25] --key /etc/mailwarden/key --dry-run",
)
def add(
    ctx: typer.Context,
    name: Name,
    local: Annotated[bool, typer.Option("--local", help="The host is this machine.")] = False,
    ssh: Annotated[
        str | None,
        typer.Option("--ssh", help="USER@HOST[:PORT] of the host's SSH server (port 22)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Private key file for --ssh (mode 600, no passphrase)."),
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--host-key-fingerprint",
            help="The SSH server's key fingerprint (SHA256:...); the host is refused when it "
            "presents another key. Without it the presented key is recorded and shown.",
        ),
    ] = None,
    postfix_dir: PostfixDir = None,
    postfix_command_dir: PostfixCommandDir = None,
    dovecot_config: DovecotConfig = None,
    doveadm: Doveadm = None,
    logs: Logs = None,
    mail_root: MailRoot = None,
    probe_address: ProbeAddress = None,
    smtp_port: SmtpPort = None,
    imap_port: ImapPort = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Register a mail host."""
    if local == (ssh is not None):
        fail("give exactly one of --local and --ssh USER@HOST[:PORT]")
    fields: dict[str, Any] = {"name": name, "transport": "local" if local else "ssh"}
    if ssh is not None:
        fields["ssh_target"] = ssh
        if key is not None:
            fields["ssh_key_file"] = str(_absolute(key))
        if fingerprint is not None:
            fields["host_key_fingerprint"] = fingerprint
    elif key is not None or fingerprint is not None:
        fail("--key and --host-key-fingerprint go with --ssh")
    fields.update(
        _paths(
            postfix_dir,
            postfix_command_dir,
            dovecot_config,
            doveadm,
            logs,
            mail_root,
            probe_address,
            smtp_port,
            imap_port,
        )
    )
    created, plan = mutate(
        ctx, dry_run, lambda uow, actor: service.create(uow, actor, parse(HostCreate, fields))
    )
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(created)
    else:
        console.print(f"Added host {created.name}.", markup=False)
        if created.host_key_fingerprint and fingerprint is None:
            console.print(
                f"Recorded its SSH host key {created.host_key_fingerprint}: compare it with "
                "`ssh-keygen -lf` of the key on the host, and remove the host if they differ.",
                markup=False,
            )


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute())


@app.command("list", epilog="Examples:\n\n  mailwarden host list\n\n  mailwarden host list --json")
def list_(
    ctx: typer.Context,
    limit: Limit = 100,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue the listing after this name.")
    ] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List the registered hosts by name."""
    emit(
        lambda cursor: read(
            ctx, lambda uow, actor: service.list_hosts(uow, actor, limit=limit, after=cursor)
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["NAME", "REACHED", "POSTFIX", "LOGS"],
        row=lambda host: [
            host.name,
            f"ssh {host.ssh_user}@{host.ssh_address}:{host.ssh_port}"
            if host.transport == "ssh"
            else "local",
            host.postfix_config_dir,
            ", ".join(host.log_paths),
        ],
        empty="No hosts. Add one with `mailwarden host add NAME --local`.",
    )


@app.command("show", epilog="Examples:\n\n  mailwarden host show mx1 --json")
def show(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
    """Show how a host is reached and where its daemons keep things."""
    host = read(ctx, lambda uow, actor: service.get(uow, actor, name))
    if json_output:
        print_json(host)
    else:
        _show(host)


@app.command(
    "update",
    epilog="How a host is reached does not change: remove it and add it again, so that a "
    "new host key is fetched and shown.\n\n"
    "Examples:\n\n  mailwarden host update mx1 --postfix-dir /etc/postfix-out --dry-run\n\n"
    "  mailwarden host update mx1 --log /var/log/mail.log --log /var/log/dovecot.log",
)
def update(
    ctx: typer.Context,
    name: Name,
    postfix_dir: PostfixDir = None,
    postfix_command_dir: PostfixCommandDir = None,
    dovecot_config: DovecotConfig = None,
    doveadm: Doveadm = None,
    logs: Logs = None,
    mail_root: MailRoot = None,
    probe_address: ProbeAddress = None,
    smtp_port: SmtpPort = None,
    imap_port: ImapPort = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Change where a host keeps its tools, configuration and logs."""
    fields = _paths(
        postfix_dir,
        postfix_command_dir,
        dovecot_config,
        doveadm,
        logs,
        mail_root,
        probe_address,
        smtp_port,
        imap_port,
    )
    if not fields:
        fail("nothing to change: give at least one option")
    updated, plan = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.update(uow, actor, name, parse(HostUpdate, fields)),
    )
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(updated)


@app.command("remove", epilog="Examples:\n\n  mailwarden host remove mx2 --dry-run")
def remove(
    ctx: typer.Context, name: Name, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Forget a host (nothing on the host changes) and its recorded SSH key."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, name))
    print_plan(plan, dry_run=dry_run, as_json=json_output)


@app.command(
    "check",
    epilog="Exit status 0 when every check passed, 1 otherwise.\n\n"
    "Examples:\n\n  mailwarden host check mx1\n\n  mailwarden host check mx2 --json",
)
def check(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
    """Connect to a host and check what mailwarden uses there: the SSH connection (host key
    and login), Postfix's tools and configuration, Dovecot's configuration, the log files and
    the mail root."""
    result: HostCheck = read(ctx, lambda uow, actor: service.check(uow, actor, name))
    if json_output:
        print_json(result)
    else:
        for item in result.items:
            mark = "ok  " if item.ok else "FAIL"
            console.print(f"{mark} {item.check}: {item.detail}", markup=False)
    if not result.ok:
        raise typer.Exit(1)
