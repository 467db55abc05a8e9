"""`mailwarden vacation ...`"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.kernel.addresses import display_address
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.stack.sieve import sync
from mailwarden.stack.sieve.script import SCRIPT_NAME
from mailwarden.vacation import service
from mailwarden.vacation.schemas import (
    DEFAULT_INTERVAL_DAYS,
    SieveStatus,
    VacationPublic,
    VacationSet,
    decode_body,
    parse_date,
)
from mailwarden.vacation.service import MAX_BODY_BYTES

from .context import mutate, read, state_of
from .options import DryRun, Json
from .output import console, print_fields, print_json, print_plan, when, yes_no

# How the store-only mode and the exit codes read in every Sieve command's help.
SIEVE_NOTES = (
    "The database is the truth: the change is stored, then the mailbox's one Sieve script "
    f"('{SCRIPT_NAME}', vacation and forwarding together) is uploaded through ManageSieve "
    "(MAILWARDEN_MANAGESIEVE_HOST, MAILWARDEN_MANAGESIEVE_PORT), logging in as the Dovecot "
    "master user MAILWARDEN_SIEVE_MASTER_USER with MAILWARDEN_SIEVE_MASTER_PASSWORD on behalf "
    "of the mailbox. It is never made the active script: Dovecot runs it before the script the "
    "user activated in their own ManageSieve client (sieve_before in the configuration from "
    "`mailwarden config dovecot`), so the user's own filters keep working, also after vacation "
    "and forwarding end. While forwarding keeps no copy, a message goes to the targets only "
    "and the user's script does not run for it.\n\n"
    "With no ManageSieve server configured the change is stored only (exit 0, with a notice "
    "on stderr); `mailwarden vacation apply` uploads it once one is.\n\n"
    "Exit status: 0 done; 1 refused (invalid input, not permitted, no such mailbox), with one "
    "line on stderr naming the field and the rule; 2 usage error; 3 stored, but the upload "
    "failed (the reason follows 'warning:' on stderr; run `vacation apply` when the server is "
    "back)."
)

app = typer.Typer(
    help="Vacation auto-replies, stored in the database and applied as Sieve through "
    "ManageSieve.\n\n" + SIEVE_NOTES,
    no_args_is_help=True,
)

Address = Annotated[str, typer.Argument(help="The mailbox address, e.g. alice@example.org.")]
# Reading more than this cannot give a valid body, even if every line ends in CRLF.
_READ_LIMIT = 4 * MAX_BODY_BYTES


def notice_if_store_only(ctx: typer.Context, dry_run: bool) -> None:
    """After a stored change: say so when no server receives it (exit status stays 0)."""
    if not dry_run and not sync.is_configured(state_of(ctx).settings):
        typer.echo(f"mailwarden: notice: {sync.NOT_CONFIGURED}", err=True)


def _read_body(body_file: str) -> bytes:
    """The raw text, read before the transaction opens; a file that cannot be read is a
    usage error (exit 2), like any other bad argument."""
    try:
        if body_file == "-":
            return sys.stdin.buffer.read(_READ_LIMIT + 1)
        with Path(body_file).open("rb") as handle:
            return handle.read(_READ_LIMIT + 1)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {body_file!r}: {exc.strerror or exc}", param_hint="'--body-file'"
        ) from None


def _decode_body(raw: bytes) -> str:
    if len(raw) > _READ_LIMIT:
        raise ValidationError(
            "body", "too_long", f"the text is over {_READ_LIMIT} bytes; at most {MAX_BODY_BYTES}"
        )
    return decode_body(raw)


def _describe_schedule(vacation: VacationPublic) -> str:
    starts = f"from {vacation.starts_on.isoformat()}" if vacation.starts_on else "from now"
    ends = f"until {vacation.ends_on.isoformat()}" if vacation.ends_on else "until disabled"
    return (
        f"{starts} {ends}, at most one reply per sender every {vacation.interval_days} "
        f"day{'s' if vacation.interval_days != 1 else ''}"
    )


@app.command(
    "set",
    epilog="Examples:\n\n"
    "  mailwarden vacation set alice@example.org --subject 'Away until 14 July' "
    "--body-file away.txt --from 2025-07-01 --until 2025-07-14\n\n"
    "  printf 'Back on Monday.\\n' | mailwarden vacation set bob@example.org "
    "--subject 'Out of office' --body-file - --interval-days 3\n\n"
    "  mailwarden vacation set alice@example.org --subject 'Away' --body-file away.txt "
    "--dry-run",
)
def set_(
    ctx: typer.Context,
    address: Address,
    subject: Annotated[
        str, typer.Option("--subject", help="Subject of the reply: one line, 1-255 characters.")
    ],
    body_file: Annotated[
        str,
        typer.Option(
            "--body-file",
            metavar="FILE",
            help="File with the reply's text (UTF-8, at most 60 KiB); '-' reads standard input.",
        ),
    ],
    starts_on: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First day (YYYY-MM-DD); default: now."),
    ] = None,
    ends_on: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="DATE", help="Last day, inclusive (YYYY-MM-DD); default: open."
        ),
    ] = None,
    interval_days: Annotated[
        int,
        typer.Option(
            "--interval-days",
            metavar="N",
            help="At most one reply per sender every N days (1-365).",
        ),
    ] = DEFAULT_INTERVAL_DAYS,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Set and enable a mailbox's auto-reply, replacing any previous one.

    Dates are calendar days in the mail server's local time; both ends are inclusive. Without
    --from the reply starts at once, without --until it runs until `vacation disable`.
    """

    raw_body = _read_body(body_file)

    def action(uow: UnitOfWork, actor: Any) -> VacationPublic:
        values: dict[str, Any] = {
            "subject": subject,
            "body": _decode_body(raw_body),
            "interval_days": interval_days,
        }
        if starts_on is not None:
            values["starts_on"] = parse_date(starts_on, "starts_on")
        if ends_on is not None:
            values["ends_on"] = parse_date(ends_on, "ends_on")
        return service.set_vacation(uow, actor, address, parse(VacationSet, values))

    vacation, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
        return
    if json_output:
        print_json(vacation)
    else:
        console.print(
            f"Auto-reply of {display_address(vacation.address)} set: "
            f"{_describe_schedule(vacation)}.",
            markup=False,
        )
    notice_if_store_only(ctx, dry_run)


@app.command(
    "show",
    epilog="Examples:\n\n  mailwarden vacation show alice@example.org\n\n"
    "  mailwarden vacation show alice@example.org --json",
)
def show(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Show a mailbox's auto-reply: state, schedule, subject and text.

    A mailbox that never had one shows as disabled, with every other field empty (null in
    JSON).
    """
    vacation = read(ctx, lambda uow, actor: service.get_vacation(uow, actor, address))
    if json_output:
        print_json(vacation)
        return
    if vacation.subject is None or vacation.body is None:
        console.print(f"{display_address(vacation.address)} has no auto-reply.", markup=False)
        return
    print_fields(
        [
            ("address", display_address(vacation.address)),
            ("enabled", yes_no(vacation.enabled)),
            ("from", vacation.starts_on.isoformat() if vacation.starts_on else "-"),
            ("until", vacation.ends_on.isoformat() if vacation.ends_on else "-"),
            ("interval", f"{vacation.interval_days} days"),
            ("updated", when(vacation.updated_at)),
            ("subject", vacation.subject),
        ]
    )
    # The text exactly as stored: no wrapping, no markup.
    typer.echo("")
    typer.echo(vacation.body, nl=not vacation.body.endswith("\n"))


@app.command(
    "disable",
    epilog="Examples:\n\n  mailwarden vacation disable alice@example.org\n\n"
    "  mailwarden vacation disable alice@example.org --dry-run",
)
def disable(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Stop a mailbox's auto-reply. Its subject and text are kept for the next `set`.

    Disabling a disabled auto-reply changes nothing, but still applies the mailbox's script,
    which repairs a server that missed an earlier change.
    """
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.disable_vacation(uow, actor, address))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
    notice_if_store_only(ctx, dry_run)


@app.command(
    "apply",
    epilog="Examples:\n\n  mailwarden vacation apply alice@example.org\n\n"
    "  MAILWARDEN_MANAGESIEVE_HOST=mail.example.org mailwarden vacation apply alice@example.org "
    "--json",
)
def apply(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Upload the mailbox's Sieve script again from the database.

    For when a change was stored but not applied (exit 3), e.g. while the ManageSieve server
    was down, or after a server was configured. The script holds the vacation reply and the
    forwarding together; when neither is enabled, mailwarden's script is removed. Refused (exit
    1) when no ManageSieve server is configured.
    """
    units: list[UnitOfWork] = []

    def action(uow: UnitOfWork, actor: Any) -> SieveStatus:
        units.append(uow)
        return service.apply_script(uow, actor, address)

    status, _ = mutate(ctx, False, action)
    applied = not units[0].follow_up_failures
    if json_output:
        print_json(status.model_dump(mode="json") | {"applied": applied})
        return
    if not applied:
        return  # the warning with the reason follows, and exit status 3
    shown = display_address(status.address)
    if status.script is None:
        console.print(
            f"Neither vacation nor forwarding is enabled for {shown}: "
            f"Sieve script '{status.script_name}' removed.",
            markup=False,
        )
        return
    parts = [
        f"vacation {'on' if status.vacation_enabled else 'off'}",
        f"forwarding {'on' if status.forward_enabled else 'off'}",
    ]
    console.print(
        f"Sieve script '{status.script_name}' of {shown} uploaded ({', '.join(parts)}).",
        markup=False,
    )
