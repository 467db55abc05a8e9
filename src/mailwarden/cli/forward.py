"""`mailwarden forward ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.forwarding import service
from mailwarden.forwarding.schemas import ForwardPublic, ForwardSet
from mailwarden.kernel.addresses import display_address
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork

from .context import mutate, read
from .options import DryRun, Json
from .output import console, print_fields, print_json, print_plan, when, yes_no
from .vacation import SIEVE_NOTES, notice_if_store_only

app = typer.Typer(
    help="Forward a mailbox's mail to other addresses, stored in the database and applied as "
    "Sieve `redirect` through ManageSieve.\n\n" + SIEVE_NOTES,
    no_args_is_help=True,
)

Address = Annotated[str, typer.Argument(help="The mailbox address, e.g. alice@example.org.")]


def _copy_note(forward: ForwardPublic) -> str:
    return "a copy stays in the mailbox" if forward.keep_copy else "no copy is kept"


@app.command(
    "set",
    epilog="Examples:\n\n"
    "  mailwarden forward set alice@example.org alice@home.example\n\n"
    "  mailwarden forward set bob@example.org desk@example.org bob+archive@example.net "
    "--no-keep-copy\n\n"
    "  mailwarden forward set alice@example.org alice@home.example --dry-run --json",
)
def set_(
    ctx: typer.Context,
    address: Address,
    targets: Annotated[
        list[str],
        typer.Argument(
            help="One or more addresses to forward to ('+' allowed; not the mailbox itself)."
        ),
    ],
    keep_copy: Annotated[
        bool | None,
        typer.Option(
            "--keep-copy/--no-keep-copy",
            help="Keep a copy in the mailbox as well (default: as before; a copy when new).",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Forward a mailbox's mail to exactly these addresses, replacing earlier targets.

    Each target is checked like an alias target: a full address, no pipes, files or
    :include:, each one once. At most 4 targets: Dovecot's Sieve runs at most 4 redirects per
    message (sieve_max_redirects) and would otherwise forward nothing at all; for more, point
    the forward at an alias that has the targets.
    """

    def action(uow: UnitOfWork, actor: Any) -> ForwardPublic:
        values: dict[str, Any] = {"targets": list(targets)}
        if keep_copy is not None:
            values["keep_copy"] = keep_copy
        return service.set_forward(uow, actor, address, parse(ForwardSet, values))

    forward, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
        return
    if json_output:
        print_json(forward)
    else:
        console.print(
            f"Mail to {display_address(forward.address)} is forwarded to "
            f"{', '.join(forward.targets)}; {_copy_note(forward)}.",
            markup=False,
        )
    notice_if_store_only(ctx, dry_run)


@app.command(
    "show",
    epilog="Examples:\n\n  mailwarden forward show alice@example.org\n\n"
    "  mailwarden forward show alice@example.org --json",
)
def show(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Show a mailbox's forwarding: state, targets, and whether a copy is kept.

    A mailbox that never had forwarding shows as disabled with no targets.
    """
    forward = read(ctx, lambda uow, actor: service.get_forward(uow, actor, address))
    if json_output:
        print_json(forward)
        return
    if not forward.targets:
        console.print(f"{display_address(forward.address)} has no forwarding.", markup=False)
        return
    print_fields(
        [
            ("address", display_address(forward.address)),
            ("enabled", yes_no(forward.enabled)),
            ("targets", ", ".join(forward.targets)),
            ("keep copy", yes_no(forward.keep_copy)),
            ("updated", when(forward.updated_at)),
        ]
    )


@app.command(
    "disable",
    epilog="Examples:\n\n  mailwarden forward disable alice@example.org\n\n"
    "  mailwarden forward disable alice@example.org --dry-run",
)
def disable(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Stop forwarding; mail stays in the mailbox again. The targets are kept for reference.

    Disabling disabled forwarding changes nothing, but still applies the mailbox's script,
    which repairs a server that missed an earlier change.
    """
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.disable_forward(uow, actor, address))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
    notice_if_store_only(ctx, dry_run)
