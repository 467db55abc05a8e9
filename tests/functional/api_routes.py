"""One example request per API route, and the rules that say how each persona is answered.

The authorization matrix (test_api_authorization.py) sends every example as every persona and
compares the answer with `expected_status`, computed from the route's declaration
(api/access.py). A declared route without an entry in EXAMPLES fails the matrix: a new route
forces an example, and with it a check of who may call it.

Paths and bodies may name the caller's own account and key, and another admin's, as
{me}, {them}, {my_key} and {their_key}; they are filled in per persona. Objects whose ids the
database chooses are named the same way once a `prepare` step made them ({request_a}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.api.access import Access
from mailwarden.apikeys.service import parse_token
from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationSubmit
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD

NEW_PASSWORD = "another horse battery"


class Kind(StrEnum):
    """What a request acts on, as seen from the caller."""

    A = "a"  # an object in a.example
    B = "b"  # an object in b.example
    OWN = "own"  # the caller's own admin account or API key
    OTHERS = "others"  # another admin's account or key
    GLOBAL = "global"  # no object of one domain or admin: lists, system objects, health


@dataclass(frozen=True)
class Persona:
    # The admin the key acts for; None: no key at all.
    admin: str | None
    # The one domain it acts in; None: every domain (a superadmin's unnarrowed key).
    reach: Kind | None
    read_only: bool
    # "them": an admin whose account and keys are outside the persona's reach (if it has one).
    other: str


PERSONAS: dict[str, Persona] = {
    "anonymous": Persona(None, None, False, "alice"),
    "superadmin": Persona("root", None, False, "alice"),
    "domain_admin_a": Persona("alice", Kind.A, False, "bob"),
    "domain_admin_b": Persona("bob", Kind.B, False, "alice"),
    "read_only": Persona("root", None, True, "alice"),
    "narrowed_a": Persona("root", Kind.A, False, "bob"),
}
DOMAIN_OF = {Kind.A: "a.example", Kind.B: "b.example"}
# The persona whose key is "their key" for each admin.
KEY_PERSONA_OF = {"root": "superadmin", "alice": "domain_admin_a", "bob": "domain_admin_b"}
DOMAIN_PERSONAS = ("domain_admin_a", "domain_admin_b", "narrowed_a")
# Placeholders for the objects the last prepare step made, by the ids the database gave them.
PREPARED: dict[str, str] = {}


def expected_status(method: str, access: Access, persona_name: str, kind: Kind) -> int:
    """The status the rules give: 200 for success (a mutation is sent as a dry run)."""
    if not access.authenticated:
        return 200
    persona = PERSONAS[persona_name]
    if persona.admin is None:
        return 401
    if persona.read_only and method != "GET":
        return 403
    if persona.reach is None:
        return 200
    permission = access.permission
    held = permission is None or permission.is_domain_scoped
    if kind in (Kind.A, Kind.B):
        # Another domain's objects are not visible at all: the same answer as a missing one.
        return 404 if kind != persona.reach else (200 if held else 403)
    if kind is Kind.OWN:
        return 200 if access.own_objects or held else 403
    if kind is Kind.OTHERS:
        return 404 if access.own_objects else (200 if held else 403)
    return 200 if access.own_objects or held else 403


def key_id(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None, "not an API key token"
    return parsed[0]


def placeholders(persona_name: str, keys: dict[str, str]) -> dict[str, str]:
    """What {me}, {them}, {my_key} and {their_key} stand for, for this persona."""
    persona = PERSONAS[persona_name]
    # Anonymous has no key of its own: it tries the superadmin's objects.
    own_key = keys[persona_name if persona.admin else "superadmin"]
    return {
        "{me}": persona.admin or "root",
        "{them}": persona.other,
        "{my_key}": key_id(own_key),
        "{their_key}": key_id(keys[KEY_PERSONA_OF[persona.other]]),
        **PREPARED,
    }


def fill(value: Any, names: dict[str, str]) -> Any:
    """`value` (a path or a JSON body) with the placeholders of `names` filled in."""
    if isinstance(value, str):
        for placeholder, name in names.items():
            value = value.replace(placeholder, name)
        return value
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Call:
    kind: Kind
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    calls: tuple[Call, ...]
    # For lists: the field of each item that names its domain, or its admin.
    item_domain: str | None = None
    item_admin: str | None = None
    # Objects the route needs that the world does not have.
    prepare: Callable[[UowFactory], None] | None = None
    # Runtime settings the route needs to get past its own preconditions.
    settings: dict[str, Any] = field(default_factory=dict)
    # (persona, kind) -> status where the rules do not hold; each entry says why.
    overrides: dict[tuple[str, Kind], int] = field(default_factory=dict)


def on_both(path: str, body: dict[str, Any] | None = None, **query: str) -> tuple[Call, ...]:
    """The call on the object of a.example and on its twin in b.example ({d}: the domain)."""

    def fill(value: Any, domain: str) -> Any:
        if isinstance(value, str):
            return value.replace("{d}", domain)
        if isinstance(value, list):
            return [fill(item, domain) for item in value]
        if isinstance(value, dict):
            return {key: fill(item, domain) for key, item in value.items()}
        return value

    return tuple(
        Call(kind, fill(path, DOMAIN_OF[kind]), fill(body, DOMAIN_OF[kind]), query)
        for kind in (Kind.A, Kind.B)
    )


def own_and_others(
    path: str, body: dict[str, Any] | None = None, others_body: dict[str, Any] | None = None
) -> tuple[Call, ...]:
    own_path = path.replace("{who}", "{me}").replace("{key}", "{my_key}")
    others_path = path.replace("{who}", "{them}").replace("{key}", "{their_key}")
    return (
        Call(Kind.OWN, own_path, body),
        Call(Kind.OTHERS, others_path, body if others_body is None else others_body),
    )


def one(path: str, body: dict[str, Any] | None = None, **query: str) -> tuple[Call, ...]:
    return (Call(Kind.GLOBAL, path, body, query),)


def for_domain_personas(kind: Kind, status: int) -> dict[tuple[str, Kind], int]:
    return {(persona, kind): status for persona in DOMAIN_PERSONAS}


def outside_reach(status: int) -> dict[tuple[str, Kind], int]:
    """For each domain-bound persona, the object of the domain it does not act in."""
    return {
        (name, Kind.B if persona.reach is Kind.A else Kind.A): status
        for name, persona in PERSONAS.items()
        if persona.reach is not None
    }


def remove_user1_mailboxes(make_uow: UowFactory) -> None:
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        for address in ("user1@a.example", "user1@b.example"):
            mailboxes.remove(uow, operator, address)
        uow.finish()


def add_alias_domains(make_uow: UowFactory) -> None:
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        for target in ("a.example", "b.example"):
            data = {"alias_domain": f"alias-{target}", "target_domain": target}
            alias_domains.create(uow, operator, parse(AliasDomainCreate, data))
        uow.finish()


V1 = "/api/v1"
MAILBOX = f"{V1}/mailboxes/user1@{{d}}"
REGISTRATION = f"{V1}/registrations/{{request_id}}"
APP_PASSWORD = "phone"


def add_app_passwords(make_uow: UowFactory) -> None:
    """An app password named APP_PASSWORD on user1 of each domain."""
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        for domain in DOMAIN_OF.values():
            data = parse(AppPasswordCreate, {"name": APP_PASSWORD})
            apppasswords.create(uow, operator, f"user1@{domain}", data)
        uow.finish()


def request_registrations(make_uow: UowFactory) -> None:
    """Open registration in both domains and leave a pending request in each: {request_a} and
    {request_b}."""
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        for kind, domain in DOMAIN_OF.items():
            domains.update(uow, operator, domain, parse(DomainUpdate, {"registration_open": True}))
            data = {"address": f"newcomer@{domain}", "name": "Newcomer", "password": PASSWORD}
            registrations.submit(uow, parse(RegistrationSubmit, data), client_address=None)
            pending = registrations.list_requests(uow, operator, domain=domain).items
            PREPARED[f"{{request_{kind.value}}}"] = str(pending[0].id)
        uow.finish()


def on_both_requests(suffix: str = "", body: dict[str, Any] | None = None) -> tuple[Call, ...]:
    """The call on the pending request of a.example and on that of b.example."""
    return tuple(
        Call(kind, f"{V1}/registrations/{{request_{kind.value}}}{suffix}", body)
        for kind in (Kind.A, Kind.B)
    )


HOST = f"{V1}/hosts/mx1"


def add_host(make_uow: UowFactory) -> None:
    """This machine registered as the host mx1."""
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        hosts.create(uow, operator, parse(HostCreate, {"name": "mx1", "transport": "local"}))
        uow.finish()


QUEUE = f"{V1}/hosts/mx-queue/queue"


def add_queue_host(make_uow: UowFactory) -> None:
    """A host whose Postfix configuration directory does not exist: the functional tests have
    no Postfix, so a permitted queue call gets past authorization and fails at the host (502,
    the answer to a failing host). tests/e2e/test_queue.py proves the 200s on a real Postfix."""
    operator = Actor.local_operator(Channel.SYSTEM)
    data = {
        "name": "mx-queue",
        "transport": "local",
        "postfix_config_dir": "/nonexistent/mailwarden-functional/postfix",
    }
    with make_uow() as uow:
        hosts.create(uow, operator, parse(HostCreate, data))
        uow.finish()


def reaches_the_host(method: str) -> dict[tuple[str, Kind], int]:
    """The personas a queue route lets through, answered 502 by the missing Postfix."""
    allowed = ["superadmin"] + (["read_only"] if method == "GET" else [])
    return {(persona, Kind.GLOBAL): 502 for persona in allowed}


# These services check the system permission before they look the object up, so every name,
# visible or not, existing or not, gets the same 403: it tells no more than a 404 would.
CHECKED_BEFORE_LOOKUP = 403

EXAMPLES: dict[tuple[str, str], Example] = {
    # --- domains ----------------------------------------------------------------------------
    ("GET", f"{V1}/domains"): Example(one(f"{V1}/domains"), item_domain="name"),
    ("POST", f"{V1}/domains"): Example(one(f"{V1}/domains", {"name": "new.example"})),
    ("GET", f"{V1}/domains/{{name}}"): Example(on_both(f"{V1}/domains/{{d}}")),
    ("PATCH", f"{V1}/domains/{{name}}"): Example(
        on_both(f"{V1}/domains/{{d}}", {"description": "changed"})
    ),
    # cascade: without it, removing a domain that holds mailboxes is a 409 for everyone.
    ("DELETE", f"{V1}/domains/{{name}}"): Example(on_both(f"{V1}/domains/{{d}}", cascade="true")),
    # --- mailboxes --------------------------------------------------------------------------
    ("GET", f"{V1}/mailboxes"): Example(one(f"{V1}/mailboxes"), item_domain="domain"),
    ("POST", f"{V1}/mailboxes"): Example(
        on_both(f"{V1}/mailboxes", {"address": "new@{d}", "password": NEW_PASSWORD})
    ),
    ("GET", f"{V1}/mailboxes/{{address}}"): Example(on_both(MAILBOX)),
    ("PATCH", f"{V1}/mailboxes/{{address}}"): Example(on_both(MAILBOX, {"name": "Changed"})),
    ("DELETE", f"{V1}/mailboxes/{{address}}"): Example(on_both(MAILBOX)),
    ("POST", f"{V1}/mailboxes/{{address}}/restore"): Example(
        on_both(f"{MAILBOX}/restore"), prepare=remove_user1_mailboxes
    ),
    ("POST", f"{V1}/mailboxes/{{address}}/password"): Example(
        on_both(f"{MAILBOX}/password", {"password": NEW_PASSWORD})
    ),
    ("GET", f"{V1}/mailboxes/{{address}}/vacation"): Example(on_both(f"{MAILBOX}/vacation")),
    ("PUT", f"{V1}/mailboxes/{{address}}/vacation"): Example(
        on_both(f"{MAILBOX}/vacation", {"subject": "Away", "body": "Back on Monday."})
    ),
    ("DELETE", f"{V1}/mailboxes/{{address}}/vacation"): Example(on_both(f"{MAILBOX}/vacation")),
    ("GET", f"{V1}/mailboxes/{{address}}/forward"): Example(on_both(f"{MAILBOX}/forward")),
    ("PUT", f"{V1}/mailboxes/{{address}}/forward"): Example(
        on_both(f"{MAILBOX}/forward", {"targets": ["someone@elsewhere.example"]})
    ),
    ("DELETE", f"{V1}/mailboxes/{{address}}/forward"): Example(on_both(f"{MAILBOX}/forward")),
    # Without a ManageSieve server there is nothing to apply to (409 for everyone); the dry run
    # never connects to it.
    ("POST", f"{V1}/mailboxes/{{address}}/sieve/apply"): Example(
        on_both(f"{MAILBOX}/sieve/apply"), settings={"managesieve_host": "sieve.invalid"}
    ),
    # --- app passwords ----------------------------------------------------------------------
    ("GET", f"{V1}/mailboxes/{{address}}/app-passwords"): Example(
        on_both(f"{MAILBOX}/app-passwords"), prepare=add_app_passwords
    ),
    ("POST", f"{V1}/mailboxes/{{address}}/app-passwords"): Example(
        on_both(f"{MAILBOX}/app-passwords", {"name": "laptop"})
    ),
    ("DELETE", f"{V1}/mailboxes/{{address}}/app-passwords/{{name_or_id}}"): Example(
        on_both(f"{MAILBOX}/app-passwords/{APP_PASSWORD}"), prepare=add_app_passwords
    ),
    # --- aliases ----------------------------------------------------------------------------
    ("GET", f"{V1}/aliases"): Example(one(f"{V1}/aliases"), item_domain="domain"),
    ("POST", f"{V1}/aliases"): Example(
        on_both(f"{V1}/aliases", {"address": "new@{d}", "targets": ["user1@{d}"]})
    ),
    ("GET", f"{V1}/aliases/{{address}}"): Example(on_both(f"{V1}/aliases/info@{{d}}")),
    ("PATCH", f"{V1}/aliases/{{address}}"): Example(
        on_both(f"{V1}/aliases/info@{{d}}", {"active": False})
    ),
    ("DELETE", f"{V1}/aliases/{{address}}"): Example(on_both(f"{V1}/aliases/info@{{d}}")),
    # --- alias domains ----------------------------------------------------------------------
    ("GET", f"{V1}/alias-domains"): Example(
        one(f"{V1}/alias-domains"), item_domain="target_domain", prepare=add_alias_domains
    ),
    ("POST", f"{V1}/alias-domains"): Example(
        on_both(f"{V1}/alias-domains", {"alias_domain": "new-{d}", "target_domain": "{d}"}),
        overrides=outside_reach(CHECKED_BEFORE_LOOKUP),
    ),
    ("GET", f"{V1}/alias-domains/{{name}}"): Example(
        on_both(f"{V1}/alias-domains/alias-{{d}}"), prepare=add_alias_domains
    ),
    ("DELETE", f"{V1}/alias-domains/{{name}}"): Example(
        on_both(f"{V1}/alias-domains/alias-{{d}}"),
        prepare=add_alias_domains,
        overrides=outside_reach(CHECKED_BEFORE_LOOKUP),
    ),
    # --- admins -----------------------------------------------------------------------------
    ("GET", f"{V1}/admins"): Example(one(f"{V1}/admins"), item_admin="username"),
    ("POST", f"{V1}/admins"): Example(
        one(
            f"{V1}/admins",
            {
                "username": "carol",
                "role": "domain-admin",
                "domains": ["a.example"],
                "password": NEW_PASSWORD,
            },
        )
    ),
    ("GET", f"{V1}/admins/{{username}}"): Example(
        own_and_others(f"{V1}/admins/{{who}}"),
        overrides=for_domain_personas(Kind.OTHERS, CHECKED_BEFORE_LOOKUP),
    ),
    ("PATCH", f"{V1}/admins/{{username}}"): Example(
        own_and_others(f"{V1}/admins/{{who}}", {"active": True})
    ),
    ("DELETE", f"{V1}/admins/{{username}}"): Example(
        own_and_others(f"{V1}/admins/{{who}}"),
        # Nobody removes their own account, superadmins included.
        overrides={("superadmin", Kind.OWN): 409},
    ),
    ("POST", f"{V1}/admins/{{username}}/password"): Example(
        own_and_others(f"{V1}/admins/{{who}}/password", {"password": NEW_PASSWORD})
    ),
    # --- audit ------------------------------------------------------------------------------
    ("GET", f"{V1}/audit"): Example(one(f"{V1}/audit"), item_domain="domain"),
    # --- API keys ---------------------------------------------------------------------------
    ("GET", f"{V1}/api-keys"): Example(one(f"{V1}/api-keys"), item_admin="admin"),
    ("POST", f"{V1}/api-keys"): Example(
        own_and_others(f"{V1}/api-keys", {"name": "ci"}, {"admin": "{them}", "name": "ci"}),
        # The other admin is named in the body, not looked up by path: the permission
        # refuses it.
        overrides=for_domain_personas(Kind.OTHERS, 403),
    ),
    ("GET", f"{V1}/api-keys/{{key_id}}"): Example(own_and_others(f"{V1}/api-keys/{{key}}")),
    ("DELETE", f"{V1}/api-keys/{{key_id}}"): Example(own_and_others(f"{V1}/api-keys/{{key}}")),
    # --- registrations ----------------------------------------------------------------------
    ("GET", f"{V1}/registrations"): Example(
        one(f"{V1}/registrations"), item_domain="domain", prepare=request_registrations
    ),
    ("GET", REGISTRATION): Example(on_both_requests(), prepare=request_registrations),
    ("POST", f"{REGISTRATION}/approve"): Example(
        on_both_requests("/approve"), prepare=request_registrations
    ),
    ("POST", f"{REGISTRATION}/reject"): Example(
        on_both_requests("/reject", {"reason": "not a member"}), prepare=request_registrations
    ),
    # --- me ---------------------------------------------------------------------------------
    ("GET", f"{V1}/me"): Example((Call(Kind.OWN, f"{V1}/me"),)),
    ("POST", f"{V1}/me/password"): Example(
        (
            Call(
                Kind.OWN,
                f"{V1}/me/password",
                {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            ),
        )
    ),
    # --- hosts ------------------------------------------------------------------------------
    ("GET", f"{V1}/hosts"): Example(one(f"{V1}/hosts"), prepare=add_host),
    ("POST", f"{V1}/hosts"): Example(one(f"{V1}/hosts", {"name": "mx2", "transport": "local"})),
    ("GET", f"{V1}/hosts/{{name}}"): Example(one(HOST), prepare=add_host),
    ("PATCH", f"{V1}/hosts/{{name}}"): Example(
        one(HOST, {"mail_root": "/srv/vmail"}), prepare=add_host
    ),
    ("DELETE", f"{V1}/hosts/{{name}}"): Example(one(HOST), prepare=add_host),
    ("POST", f"{V1}/hosts/{{name}}/check"): Example(
        one(f"{HOST}/check"),
        prepare=add_host,
        # A POST because it runs commands on the host, but it changes nothing: a read-only key
        # holds its permission (system:host:read).
        overrides={("read_only", Kind.GLOBAL): 200},
    ),
    # --- health ---------------------------------------------------------------------------
    # A live run on this machine's default paths: whatever it finds, the answer is 200.
    ("GET", f"{V1}/hosts/{{host}}/health"): Example(one(f"{HOST}/health"), prepare=add_host),
    ("GET", f"{V1}/health"): Example(one(f"{V1}/health"), prepare=add_host),
    ("GET", f"{V1}/health/incidents"): Example(
        one(f"{V1}/health/incidents", state="open"), prepare=add_host
    ),
    # --- traffic (what `logs ingest` stored; none here, so zero points and empty lists) ----
    ("GET", f"{V1}/hosts/{{host}}/traffic"): Example(one(f"{HOST}/traffic"), prepare=add_host),
    ("GET", f"{V1}/hosts/{{host}}/traffic/top"): Example(
        one(f"{HOST}/traffic/top", kind="recipient"), prepare=add_host
    ),
    # --- mail queue (see add_queue_host) ----------------------------------------------------
    ("GET", f"{V1}/hosts/{{host}}/queue"): Example(
        one(QUEUE, queue="deferred"), prepare=add_queue_host, overrides=reaches_the_host("GET")
    ),
    ("GET", f"{V1}/hosts/{{host}}/queue/{{queue_id}}"): Example(
        one(f"{QUEUE}/ABCDEF12345"), prepare=add_queue_host, overrides=reaches_the_host("GET")
    ),
    ("POST", f"{V1}/hosts/{{host}}/queue/{{action}}"): Example(
        one(f"{QUEUE}/hold", {"ids": ["ABCDEF12345"]}),
        prepare=add_queue_host,
        overrides=reaches_the_host("POST"),
    ),
    ("POST", f"{V1}/hosts/{{host}}/queue/flush"): Example(
        one(f"{QUEUE}/flush"), prepare=add_queue_host, overrides=reaches_the_host("POST")
    ),
    # --- operations -------------------------------------------------------------------------
    ("GET", "/healthz"): Example(one("/healthz")),
    ("GET", "/metrics"): Example(one("/metrics")),
}

# (method, path, persona, kind) -> what is wrong. The matrix expects the rule's answer and
# reports these as expected failures until fixed (and fails once one is fixed, so the entry
# goes).
KNOWN_BUGS: dict[tuple[str, str, str, Kind], str] = {}
