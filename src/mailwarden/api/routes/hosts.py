"""/api/v1/hosts: the mail hosts mailwarden operates on (superadmins only).

Adding an SSH host fetches the server's key now and records it (checked against
`host_key_fingerprint` when given); the answer shows its fingerprint. The private key stays a
file on the machine mailwarden runs on: only its path is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.hosts import service
from mailwarden.hosts.schemas import HostCheck, HostCreate, HostPublic, HostUpdate
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import Limit, ListPage
from ..problems import PROBLEM_JSON, Problem

router = APIRouter(prefix="/hosts", tags=["hosts"])

Name = Annotated[str, Path(max_length=63, description="The host's name in mailwarden, e.g. mx1.")]
# The service pages by name: the cursor is the last name of the previous page.
NameCursor = Annotated[
    str | None, Query(max_length=63, description="`next_cursor` of the previous page.")
]
HOST_FAILED: dict[int | str, dict[str, Any]] = {
    502: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "The host could not be reached or a command there failed",
    }
}


@router.get("", response_model=ListPage[HostPublic], summary="List the registered hosts by name")
@requires(Permission.HOST_READ)
def list_hosts(context: Context, limit: Limit = 50, cursor: NameCursor = None) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_hosts(uow, actor, limit=limit, after=cursor)
    )


@router.post(
    "",
    status_code=201,
    response_model=HostPublic,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Register a host: this machine (local) or one reached over SSH",
    description="For `ssh`: `ssh_target` is USER@HOST[:PORT] and `ssh_key_file` a private key "
    "file on the mailwarden machine (mode 600, no passphrase). The server's key is fetched and "
    "recorded (a dry run fetches it too, to show what would be recorded); with "
    "`host_key_fingerprint` (SHA256:...) any other key is refused (422).",
)
@requires(Permission.HOST_CREATE)
def create_host(context: Context, body: HostCreate, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, body), dry_run=dry_run, status=201
    )


@router.get("/{name}", response_model=HostPublic, summary="Show a host")
@requires(Permission.HOST_READ)
def get_host(context: Context, name: Name) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, name))


@router.patch(
    "/{name}",
    # The union itself: a `responses` model beside a response_model would be merged into one
    # schema demanding both, which no dry-run plan satisfies.
    response_model=HostPublic | DryRunPlan,
    summary="Change where a host keeps its tools, configuration and logs",
    description="How a host is reached does not change: remove it and add it again, so that a "
    "new host key is fetched and shown.",
)
@requires(Permission.HOST_UPDATE)
def update_host(
    context: Context, name: Name, body: HostUpdate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.update(uow, actor, name, body), dry_run=dry_run
    )


@router.delete(
    "/{name}",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Forget a host and its recorded SSH key (nothing on the host changes)",
)
@requires(Permission.HOST_DELETE)
def remove_host(context: Context, name: Name, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.remove(uow, actor, name), dry_run=dry_run)


@router.post(
    "/{name}/check",
    # The union itself (see update_host): the check's result, or a dry run's empty plan.
    response_model=HostCheck | DryRunPlan,
    responses=HOST_FAILED,
    summary="Reach a host and check what mailwarden uses there",
    description="The connection (host key and login), Postfix's tools and configuration, "
    "Dovecot's configuration, the log files and the mail root; `ok` is true when every item "
    "passed. A check changes nothing; it is a POST because it runs commands on the host. Like "
    "every POST it takes `dry_run`: the check runs and the answer is its (empty) plan.",
)
@requires(Permission.HOST_READ)
def check_host(context: Context, name: Name, dry_run: DryRun = False) -> Response:
    if dry_run:
        return context.mutate(lambda uow, actor: service.check(uow, actor, name), dry_run=True)
    return context.respond(lambda uow, actor: service.check(uow, actor, name))
