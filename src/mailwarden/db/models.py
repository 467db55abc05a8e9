"""Every mapped class, imported once so the metadata is complete (for Alembic and checks)."""

from mailwarden.admins.models import Admin, AdminDomain
from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.apikeys.models import ApiKey, ApiKeyDomain
from mailwarden.apppasswords.models import AppPassword
from mailwarden.db.base import Base
from mailwarden.domains.models import Domain
from mailwarden.forwarding.models import Forward
from mailwarden.health.models import HealthIncident, HealthResult
from mailwarden.hosts.models import Host
from mailwarden.kernel.audit import AuditEntry
from mailwarden.logs.models import LogCursor, TrafficHour, TrafficTop
from mailwarden.mailboxes.models import Mailbox, QuotaUsage
from mailwarden.registrations.models import RegistrationRequest
from mailwarden.setup.models import SetupToken
from mailwarden.throttle.models import AuthFailure
from mailwarden.twofactor.models import RecoveryCode, TotpEnrolment
from mailwarden.vacation.models import Vacation
from mailwarden.websessions.models import WebSession

__all__ = [
    "Admin",
    "AdminDomain",
    "AliasDomain",
    "AliasTarget",
    "ApiKey",
    "ApiKeyDomain",
    "AppPassword",
    "AuditEntry",
    "AuthFailure",
    "Base",
    "Domain",
    "Forward",
    "HealthIncident",
    "HealthResult",
    "Host",
    "LogCursor",
    "Mailbox",
    "QuotaUsage",
    "RecoveryCode",
    "RegistrationRequest",
    "SetupToken",
    "TotpEnrolment",
    "TrafficHour",
    "TrafficTop",
    "Vacation",
    "WebSession",
]
