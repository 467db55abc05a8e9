"""Every router of the console and the portal, in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    account,
    admins,
    alias_domains,
    aliases,
    api_keys,
    audit,
    auth,
    dashboard,
    domains,
    hosts,
    incidents,
    mailboxes,
    portal,
    queue,
    register,
    registrations,
    traffic,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    account.router,
    dashboard.router,
    admins.router,
    api_keys.router,
    audit.router,
    portal.router,
    register.router,
    registrations.router,
    domains.router,
    aliases.router,
    alias_domains.router,
    mailboxes.router,
    traffic.router,
    queue.router,
    hosts.router,
    incidents.router,
]
