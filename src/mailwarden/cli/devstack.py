"""`mailwarden devstack up|down|status`: a private Postfix + Dovecot for trying mailwarden."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.stack import devstack
from mailwarden.stack.devstack import (
    FAST_AUTH_FAILURES_HELP,
    HOST,
    DevstackError,
    StackInfo,
    StackLayout,
    StackPorts,
)

from .context import read
from .exits import EXIT_REFUSED
from .options import Json
from .output import print_json, print_table

app = typer.Typer(
    help="A private Postfix + Dovecot on loopback, for trying mailwarden with real mail.\n\n"
    "The instance lives below one directory (--dir): its configuration is exactly what "
    "`mailwarden config` generates for this database, wrapped in instance settings (queues, "
    "logs, ports on 127.0.0.1, no TLS, clear-text logins). For development and tests only.",
    no_args_is_help=True,
)

Dir = Annotated[
    Path,
    typer.Option(
        "--dir",
        help="Directory of the instance (created if missing). Keep it short (unix socket "
        "paths) and reachable by the users postfix, dovecot and the mail owner. An existing "
        "one must be root's and writable by no one else; symbolic links are refused.",
        file_okay=False,
    ),
]


def _port(name: str) -> Any:
    return typer.Option(f"--{name}-port", min=1, max=65535, help=f"Port of the {name} listener.")


def _fail(error: DevstackError) -> None:
    typer.echo(f"mailwarden: {error}", err=True)
    if error.log_tail.strip():
        typer.echo(error.log_tail.rstrip(), err=True)
    raise typer.Exit(EXIT_REFUSED)


def _exports(info: StackInfo) -> list[str]:
    lines = [f"export {name}={shlex.quote(value)}" for name, value in info.env.items()]
    if info.sieve_password_file is not None:
        # The secret stays in its file; the line reads it when the shell runs it.
        quoted = shlex.quote(str(info.sieve_password_file))
        lines.append(f'export MAILWARDEN_SIEVE_MASTER_PASSWORD="$(cat {quoted})"')
    return lines


def _print_info(info: StackInfo, headline: str) -> None:
    # Plain lines, never wrapped: paths and `export` lines must survive copy and paste.
    typer.echo(headline)
    print_table(
        ["listener", "address"],
        [(name, f"{HOST}:{port}") for name, port in info.ports.as_dict().items()],
    )
    typer.echo(f"mail root: {info.layout.mail_root}")
    typer.echo(f"logs:      {info.layout.postfix_log}")
    typer.echo(f"           {info.layout.dovecot_log}")
    typer.echo("\nFor vacation, forwarding and purge on this instance, export in your shell:")
    for line in _exports(info):
        typer.echo(f"  {line}")
    typer.echo(
        f"\nStop it with: mailwarden devstack down --dir {shlex.quote(str(info.layout.root))}"
    )


@app.command(
    "up",
    epilog="Examples:\n\n"
    "  mailwarden devstack up --dir /tmp/mw-dev\n\n"
    "  mailwarden devstack up --dir /tmp/mw-dev --smtp-port 2526 --imap-port 10144 --json\n\n"
    "Runs as root (Postfix's master needs it). Needs the Debian packages postfix, "
    "postfix-<pgsql|mysql|sqlite>, dovecot-core, dovecot-imapd, dovecot-pop3d, dovecot-lmtpd, "
    "dovecot-<pgsql|mysql|sqlite>, dovecot-sieve and dovecot-managesieved; a missing one is "
    "named with the apt-get command, and nothing is started. The mail owner "
    "(MAILWARDEN_VMAIL_USER, default vmail) is created as a system user when missing.\n\n"
    "A SQLite database inside --dir, in a directory of its own (e.g. DIR/db), is given to "
    "group postfix (file 0660, directory 2770) so that Postfix can read it and Dovecot can "
    "write quota usage into it; a SQLite file elsewhere is only checked, and a clear error "
    "names the commands to run.\n\n"
    "Runs as root in a directory others may have prepared, so nothing there is trusted: a "
    "--dir that is (or lies below) a symbolic link, or that another user owns or can write "
    "to, is refused, and so is any directory inside it the devstack did not make; files are "
    "replaced, never written through a symbolic link.\n\n"
    "ManageSieve (vacation, forwarding) logs in as the Dovecot master user "
    "MAILWARDEN_SIEVE_MASTER_USER: with no MAILWARDEN_SIEVE_MASTER_PASSWORD set, the devstack "
    "generates one into DIR/sieve-master-password (mode 0600) and prints the `export` lines "
    "for MAILWARDEN_MANAGESIEVE_HOST, MAILWARDEN_MANAGESIEVE_PORT and "
    "MAILWARDEN_SIEVE_MASTER_PASSWORD (read from that file, never printed). With --json: "
    '{"dir", "ports", "mail_root", "logs", "env", "sieve_master_password_file", ...}.',
)
def up(
    ctx: typer.Context,
    directory: Dir,
    smtp_port: Annotated[int, _port("smtp")] = 2525,
    submission_port: Annotated[int, _port("submission")] = 2587,
    imap_port: Annotated[int, _port("imap")] = 10143,
    pop3_port: Annotated[int, _port("pop3")] = 10110,
    lmtp_port: Annotated[int, _port("lmtp")] = 10024,
    sieve_port: Annotated[int, _port("sieve")] = 14190,
    fast_auth_failures: Annotated[
        bool,
        typer.Option(
            "--fast-auth-failures",
            help=f"{FAST_AUTH_FAILURES_HELP.capitalize()} (auth_failure_delay 0, no per-IP "
            "penalty; Dovecot still answers a failure at its next 0.5 s tick).",
        ),
    ] = False,
    package_root: Annotated[
        Path,
        typer.Option(
            "--package-root",
            hidden=True,
            help="Filesystem root the package check looks below (tests point it elsewhere).",
        ),
    ] = Path("/"),
    json_output: Json = False,
) -> None:
    """Start the devstack; return once every listener accepts connections (30 s at most)."""
    ports = StackPorts(
        smtp=smtp_port,
        submission=submission_port,
        imap=imap_port,
        pop3=pop3_port,
        lmtp=lmtp_port,
        sieve=sieve_port,
    )
    # The service checks the permission and refuses invalid settings (a master user name, a
    # path) as a MailwardenError, which `read` maps; host failures are DevstackErrors.
    try:
        info = read(
            ctx,
            lambda uow, actor: devstack.up(
                uow,
                actor,
                StackLayout.at(directory),
                ports,
                fast_auth_failures=fast_auth_failures,
                package_root=package_root,
            ),
        )
    except DevstackError as error:
        _fail(error)
        return
    root = info.layout.root
    if json_output:
        print_json(info.as_dict())
    elif info.already_running:
        _print_info(info, f"The devstack in {root} runs already (its ports unchanged).")
    else:
        _print_info(info, f"Devstack running in {root}: Postfix + Dovecot on 127.0.0.1.")


@app.command(
    "down",
    epilog="Example:\n\n  mailwarden devstack down --dir /tmp/mw-dev\n\n"
    "Idempotent: with nothing running it says so and exits 0. It signals only the master "
    "processes of this directory (a pid file whose process /proc does not tie to it is "
    "ignored), runs no command, and does not need the database.",
)
def down(ctx: typer.Context, directory: Dir, json_output: Json = False) -> None:
    """Stop the devstack's Postfix and Dovecot and wait until their ports are closed."""
    layout = StackLayout.at(directory)
    try:
        stopped = devstack.down(layout)
    except DevstackError as error:
        _fail(error)
        return
    root = layout.root
    if json_output:
        print_json({"dir": str(root), "stopped": stopped})
    elif stopped:
        typer.echo(f"Stopped {' and '.join(stopped)} in {root}.")
    else:
        typer.echo(f"Nothing runs in {root}.")


@app.command(
    "status",
    epilog="Example:\n\n  mailwarden devstack status --dir /tmp/mw-dev --json",
)
def status(ctx: typer.Context, directory: Dir, json_output: Json = False) -> None:
    """Show whether the devstack in DIR runs, and its ports."""
    try:
        info = devstack.status(StackLayout.at(directory))
    except DevstackError as error:
        _fail(error)
        return
    root = info.layout.root
    if json_output:
        print_json(info.as_dict())
    elif info.running:
        _print_info(info, f"The devstack in {root} runs.")
    elif info.postfix_running or info.dovecot_running:
        half = "Postfix" if info.postfix_running else "Dovecot"
        typer.echo(
            f"Only {half} runs in {root}: run `mailwarden devstack down --dir "
            f"{shlex.quote(str(root))}`."
        )
    else:
        typer.echo(f"Nothing runs in {root}.")
