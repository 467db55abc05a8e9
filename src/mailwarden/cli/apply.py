"""`mailwarden apply-config`: deploy the generated configuration to a host and reload."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mailwarden.deploy import service
from mailwarden.deploy.schemas import ApplyReport

from .context import mutate
from .options import DryRun, Json
from .output import console, print_json

APPLY_EPILOG = (
    "For every file that `mailwarden config postfix|dovecot` generates, the host's copy is read "
    "and reported as created, changed or unchanged, with a diff (passwords hidden). Then, per "
    "daemon whose files differ: the files are replaced atomically (those holding the database "
    "password get mode 0640 and the daemon's group before they become readable), the "
    "configuration is checked (`postfix -c DIR check`, `doveadm -c FILE config -n`) and that "
    "daemon alone is reloaded. When the check fails, the previous files are put back, nothing "
    "is reloaded and the exit status is 1. A second run reports every file unchanged and "
    "reloads nothing.\n\n"
    "Paths come from the host's registration (`mailwarden host show NAME`): Postfix's "
    "directory, Dovecot's (that of its dovecot.conf) and the mail root; the LMTP and auth "
    "sockets go below Postfix's queue directory as the host's postconf reports it. "
    "main.cf.mailwarden and master.cf.mailwarden are fragments: append them to main.cf and "
    "master.cf once (see `mailwarden config postfix --help`); later runs keep the fragments "
    "and the SQL maps current.\n\n"
    "Exit status: 0 done (or nothing to do), 1 refused (not permitted, unknown or unreachable "
    "host, a check or a command failed).\n\n"
    "Examples:\n\n"
    "  mailwarden apply-config --host mx1 --dry-run\n\n"
    "  mailwarden apply-config --host mx1\n\n"
    "  mailwarden apply-config --host mx2 --json\n\n"
)

Host = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="NAME",
        help="The registered host (`mailwarden host list`); may be left out when only one "
        "host is registered.",
        show_default=False,
    ),
]


def apply_config(
    ctx: typer.Context, host: Host = None, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Write the generated Postfix and Dovecot configuration to a host, check it, and reload
    the daemons whose files changed. Superadmins only."""
    report, _plan = mutate(ctx, dry_run, lambda uow, actor: service.apply_config(uow, actor, host))
    if json_output:
        print_json(report)
        return
    _print(report)


def _print(report: ApplyReport) -> None:
    for file in report.files:
        console.print(f"{file.status:9} {file.path}", markup=False)
    for file in report.files:
        if file.diff:
            sys.stdout.write("\n" + file.diff)
    if report.dry_run:
        would = ", ".join(report.would_reload) or "nothing"
        console.print(f"\nDry run: nothing written; would reload {would}.", markup=False)
    elif report.reloaded:
        console.print(f"\nReloaded {', '.join(report.reloaded)}.", markup=False)
    else:
        console.print("\nUp to date; nothing reloaded.", markup=False)
