"""`mailwarden config postfix|dovecot`."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.stack import config as service
from mailwarden.stack.config import Daemon, Difference, FileStatus, WrittenFile
from mailwarden.stack.target import DeployTarget

from .context import read, refusals, state_of
from .exits import fail
from .options import Json
from .output import console, print_json

app = typer.Typer(
    help="Generate the Postfix and Dovecot configuration for this database.\n\n"
    "The files connect the daemons to the database mailwarden uses (MAILWARDEN_DATABASE_URL), "
    "in its SQL dialect: PostgreSQL, MariaDB/MySQL or SQLite. Only what mailwarden needs is "
    "generated; the rest of main.cf, master.cf and dovecot.conf stays yours. Files that hold "
    "the database password are given to the daemon's group (postfix or dovecot) with mode 0640 "
    "when run as root or as a member of that group, else written 0600 (give them to the group "
    "where they are installed); as root, a missing group is refused. Passwords are never "
    "printed. Superadmins only.",
    no_args_is_help=True,
)

Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Write the files into DIR (created if missing). With --check: compare DIR "
        "instead (default: the directory the files are meant for).",
        show_default=False,
    ),
]
Check = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Compare the deployed files with what would be generated; print missing, differs "
        "(with a diff, passwords hidden) or same per file. Exit 0 when all are the same, 1 "
        "otherwise. Writes nothing.",
    ),
]
Stdout = Annotated[
    bool,
    typer.Option(
        "--stdout",
        help="Print the files instead of writing them, passwords hidden (a preview).",
    ),
]
MailRoot = Annotated[
    Path | None,
    typer.Option(
        "--mail-root",
        metavar="DIR",
        help="Where the maildirs live (default: MAILWARDEN_MAIL_ROOT, /var/vmail).",
        show_default=False,
    ),
]

_POSTFIX_EPILOG = """\
Files (paths relative to the Postfix directory):

  main.cf.mailwarden     main.cf settings: domains, mailboxes and aliases from SQL, delivery
                         to Dovecot LMTP, SMTP AUTH through Dovecot, recipient restrictions
  master.cf.mailwarden   the submission service: AUTH and TLS required, users send only as
                         addresses they own
  mailwarden/*.cf        one SQL map per lookup; they hold the database password (mode
                         0640, group postfix; 0600 when they cannot be given to postfix)

Deploy (repeatable: the fragments are marked, an older copy is replaced):

  mailwarden config postfix --out /etc/postfix

  cd /etc/postfix && sed -i '/^# BEGIN mailwarden/,/^# END mailwarden/d' main.cf master.cf

  cat main.cf.mailwarden >> main.cf && cat master.cf.mailwarden >> master.cf

  postfix check && postfix reload

Remove any submission service of your own from master.cf first. TLS on submission is
`encrypt`: main.cf needs smtpd_tls_cert_file and smtpd_tls_key_file.

Examples:

  mailwarden config postfix --out /etc/postfix

  mailwarden config postfix --check

  mailwarden config postfix --check --out /srv/staging/postfix --json

  mailwarden config postfix --stdout | less

  mailwarden config postfix --out /tmp/pf --postfix-dir /etc/postfix   (install later)
"""

_DOVECOT_EPILOG = """\
Files (paths relative to the Dovecot directory):

  conf.d/90-mailwarden.conf      passdb and userdb from SQL, mail_location, quota (counted,
                                 copied to the quota_usage table), Sieve, the LMTP and auth
                                 listeners for Postfix, the ManageSieve master user
  mailwarden-sql.conf.ext        passdb/userdb queries; holds the database password (0640,
                                 group dovecot; 0600 when it cannot be given to dovecot)
  mailwarden-app-passwords-sql.conf.ext
                                 the second passdb: app passwords, asked when the mailbox's
                                 own password fails; holds the password (likewise)
  mailwarden-dict-sql.conf.ext   where quota usage is written; holds the password (likewise)
  mailwarden-master-users        only with MAILWARDEN_SIEVE_MASTER_PASSWORD: the user that
                                 may log in to ManageSieve, and only there, as any mailbox

Deploy:

  mailwarden config dovecot --out /etc/dovecot

  Debian's dovecot.conf includes conf.d/*.conf; elsewhere add
  `!include conf.d/90-mailwarden.conf` to dovecot.conf. Comment out
  `!include auth-system.conf.ext` in conf.d/10-auth.conf, so that only mailwarden's
  mailboxes log in.

  doveconf -n >/dev/null && doveadm reload

With SQLite, the database file and its directory must be readable by postfix and writable by
dovecot: Dovecot writes quota usage back, and SQLite keeps -wal and -shm files beside it.

Examples:

  mailwarden config dovecot --out /etc/dovecot

  mailwarden config dovecot --check --json

  mailwarden config dovecot --out /tmp/dc --dovecot-dir /etc/dovecot --mail-root /srv/vmail
"""


def _target(ctx: typer.Context, **overrides: Path | None) -> DeployTarget:
    target = DeployTarget.production(state_of(ctx).settings)
    chosen: dict[str, Any] = {name: value for name, value in overrides.items() if value}
    return replace(target, **chosen) if chosen else target


def _check_flags(
    out: Path | None, check: bool, to_stdout: bool, json_output: bool, hint: str
) -> None:
    # Before settings or the database: a usage error touches nothing.
    if check and to_stdout:
        raise typer.BadParameter("choose one of --check and --stdout")
    if out and to_stdout:
        # --stdout writes nothing: ignoring --out would leave the caller believing it did.
        raise typer.BadParameter("choose one of --out and --stdout")
    if not (out or check or to_stdout):
        raise typer.BadParameter(f"give --out DIR (e.g. --out {hint}), --check or --stdout")
    if json_output and to_stdout:
        raise typer.BadParameter("--json goes with --check or --out, not --stdout")


def _run(
    ctx: typer.Context,
    daemon: Daemon,
    target: DeployTarget,
    default_dir: Path,
    *,
    out: Path | None,
    check: bool,
    to_stdout: bool,
    json_output: bool,
) -> None:
    if check:
        directory = out or default_dir
        try:
            differences = read(
                ctx, lambda uow, actor: service.check(uow, actor, daemon, target, directory)
            )
        except OSError as exc:
            fail(f"--check: cannot read {exc.filename or directory}: {exc.strerror} [unreadable]")
        _report(differences, json_output)
        if any(difference.status is not FileStatus.SAME for difference in differences):
            raise typer.Exit(1)
        return
    rendered = read(ctx, lambda uow, actor: service.generate(uow, actor, daemon, target))
    if to_stdout:
        for relative in sorted(rendered):
            sys.stdout.write(
                f"==> {relative} <==\n{service.redact(relative, rendered[relative])}\n"
            )
        return
    assert out is not None
    try:
        with refusals():
            written = service.write_rendered(rendered, out, group=daemon.group)
    except OSError as exc:
        fail(f"--out: cannot write {exc.filename or out}: {exc.strerror} [unwritable]")
    if json_output:
        print_json(
            [
                {
                    "file": file.relative,
                    "path": str(file.path),
                    "mode": f"{file.mode:04o}",
                    "group": file.group,
                }
                for file in written
            ]
        )
    else:
        for file in written:
            group = f", group {file.group}" if file.group else ""
            console.print(f"wrote {file.path} (mode {file.mode:04o}{group})", markup=False)
    _note_private(written, daemon)


def _note_private(written: list[WrittenFile], daemon: Daemon) -> None:
    """Secret files that could not be given to the daemon's group: say what to do, on stderr
    (the JSON on stdout stays parseable)."""
    private = [file for file in written if file.needs_daemon_group]
    if not private:
        return
    typer.echo(
        f"mailwarden: note: {len(private)} file(s) hold the database password but could not be "
        f"given to group {daemon.group} (run as root or as a member of it), so only their owner "
        f"can read them (mode 0600). Where they are installed: chgrp {daemon.group} FILE && "
        "chmod 0640 FILE",
        err=True,
    )


def _report(differences: list[Difference], json_output: bool) -> None:
    if json_output:
        print_json([{"file": d.file, "status": d.status.value} for d in differences])
        return
    for difference in differences:
        console.print(f"{difference.status.value:8} {difference.file}", markup=False)
    for difference in differences:
        if difference.diff:
            sys.stdout.write("\n" + difference.diff)


@app.command("postfix", epilog=_POSTFIX_EPILOG)
def postfix(
    ctx: typer.Context,
    out: Out = None,
    check: Check = False,
    to_stdout: Stdout = False,
    json_output: Json = False,
    postfix_dir: Annotated[
        Path | None,
        typer.Option(
            "--postfix-dir",
            metavar="DIR",
            help="Where the files will be installed: paths inside them point there "
            "(default: MAILWARDEN_POSTFIX_DIR, /etc/postfix).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate the Postfix configuration: main.cf and master.cf fragments and SQL maps."""
    _check_flags(out, check, to_stdout, json_output, "/etc/postfix")
    target = _target(ctx, postfix_dir=postfix_dir)
    _run(
        ctx,
        Daemon.POSTFIX,
        target,
        target.postfix_dir,
        out=out,
        check=check,
        to_stdout=to_stdout,
        json_output=json_output,
    )


@app.command("dovecot", epilog=_DOVECOT_EPILOG)
def dovecot(
    ctx: typer.Context,
    out: Out = None,
    check: Check = False,
    to_stdout: Stdout = False,
    json_output: Json = False,
    dovecot_dir: Annotated[
        Path | None,
        typer.Option(
            "--dovecot-dir",
            metavar="DIR",
            help="Where the files will be installed: paths inside them point there "
            "(default: MAILWARDEN_DOVECOT_DIR, /etc/dovecot).",
            show_default=False,
        ),
    ] = None,
    mail_root: MailRoot = None,
) -> None:
    """Generate the Dovecot configuration: a conf.d fragment, its SQL files, the master user."""
    _check_flags(out, check, to_stdout, json_output, "/etc/dovecot")
    target = _target(ctx, dovecot_dir=dovecot_dir, mail_root=mail_root)
    _run(
        ctx,
        Daemon.DOVECOT,
        target,
        target.dovecot_dir,
        out=out,
        check=check,
        to_stdout=to_stdout,
        json_output=json_output,
    )
