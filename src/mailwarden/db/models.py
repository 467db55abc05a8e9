"""Every mapped class, imported once so the metadata is complete (for Alembic and checks)."""

from mailwarden.admins.models import Admin, AdminDomain
from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.apikeys.models import ApiKey, ApiKeyDomain
from mailwarden.db.base import Base
from mailwarden.domains.models import Domain
from mailwarden.forwarding.models import Forward
from mailwarden.kernel.audit import AuditEntry
from mailwarden.mailboxes.models import Mailbox, QuotaUsage
from mailwarden.throttle.models import AuthFailure
from mailwarden.vacation.models import Vacation

__all__ = [
    "Admin",
    "AdminDomain",
    "AliasDomain",
    "AliasTarget",
    "ApiKey",
    "ApiKeyDomain",
    "AuditEntry",
    "AuthFailure",
    "Base",
    "Domain",
    "Forward",
    "Mailbox",
    "QuotaUsage",
    "Vacation",
]
